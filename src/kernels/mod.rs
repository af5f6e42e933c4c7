//! Host modules for the WGSL kernel families: typed launch functions, each with a CPU
//! reference of the same maths beside it. Every kernel is a [`KernelDef`](crate::gpu::KernelDef)
//! of the kernel layer.

mod act;
pub mod cpu;
pub mod linalg;
pub mod optim;
mod real;
pub mod reduce;
pub mod rng;
pub mod sphere;
pub mod util;

pub use crate::gpu::Precision;
pub use act::Activation;
pub use real::Real;

/// Every kernel of the families in this module.
pub fn kernels() -> Vec<&'static crate::gpu::KernelDef> {
    [
        util::kernels(),
        sphere::kernels(),
        reduce::kernels(),
        optim::kernels(),
        rng::kernels(),
        linalg::kernels(),
    ]
    .concat()
}
