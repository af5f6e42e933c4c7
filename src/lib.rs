//! # fisherflow
//!
//! WGSL compute kernels, a small wgpu runtime and a minimal autodiff for geometric generative
//! models of discrete data: Fisher-Flow (flow matching on the positive orthant of the sphere),
//! score-difference flow and tensor-network discrete diffusion. Runs on any GPU wgpu reaches
//! (Vulkan, Metal, DX12) and, through Mesa's software Vulkan, on machines without one.
//!
//! ```no_run
//! use fisherflow::gpu::{GpuContext, GpuTensor};
//! # fn main() -> fisherflow::Result<()> {
//! let ctx = GpuContext::new()?; // or GpuContext::from_device(device, queue)
//! let x = GpuTensor::from_slice(&ctx, &[1.0f32, 2.0, 3.0], &[3])?;
//! assert_eq!(x.to_vec(&ctx)?, vec![1.0, 2.0, 3.0]);
//! # Ok(()) }
//! ```

pub mod autodiff;
pub mod bench;
pub mod checkpoint;
pub mod data;
pub mod error;
pub mod flow;
pub mod gpu;
pub mod kernels;
pub mod nn;
pub mod plot;
pub mod rng;
pub mod sdflow;
pub mod tensornet;

pub use error::{Error, Result};
pub use gpu::{GpuContext, GpuTensor, Recorder};
