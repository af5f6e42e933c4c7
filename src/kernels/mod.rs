//! Host modules for the WGSL kernel families: typed launch functions, each with a CPU
//! reference of the same maths beside it.

<<<<<<< HEAD
pub mod linalg;
pub mod optim;
=======
pub mod sphere;
>>>>>>> sphere
pub mod util;
