//! Host modules for the WGSL kernel families: typed launch functions, each with a CPU
//! reference of the same maths beside it.

pub mod linalg;
pub mod optim;
pub mod reduce;
pub mod rng;
pub mod sphere;
pub mod util;
