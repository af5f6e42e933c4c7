//! # fisherflow
//!
//! WGSL compute kernels, a small wgpu runtime and a minimal autodiff for geometric generative
//! models of discrete data: Fisher-Flow (flow matching on the positive orthant of the sphere),
//! score-difference flow and tensor-network discrete diffusion. Runs on any GPU wgpu reaches
//! (Vulkan, Metal, DX12) and, through Mesa's software Vulkan, on machines without one.
//!
//! | module | what |
//! |---|---|
//! | [`gpu`] | context (owned or borrowed device), pipeline cache, tensors, [`Recorder`], profiler |
//! | [`kernels`] | WGSL families with CPU references: sphere maps, matmul (f32 or f16 storage), reductions, AdamW, Philox |
//! | [`autodiff`], [`nn`] | graph, CPU and GPU executors (one submit per step), Linear, the MLP field |
//! | [`flow`] | Fisher-Flow training ([`flow::Trainer`]), samplers with an f32 or f16 network ([`flow::FieldNet`]), minibatch OT, toy benchmark |
//! | [`data`], [`checkpoint`] | sequence files, toy targets, metrics; safetensors checkpoints |
//! | [`sdflow`], [`tensornet`] | score-difference flow; matrix-product-state diffusion |
//! | [`bench`](mod@bench), [`plot`], [`rng`] | same-run-baseline benchmarks, SVG/PNG charts, the host generator |
//!
//! Train the toy model and sample it (GPU when there is one, else the CPU backend):
//!
//! ```no_run
//! use fisherflow::data::{metrics::kl_to_target, toy::ToyTarget};
//! use fisherflow::device::Device;
//! use fisherflow::flow::{sample, FlowConfig, FlowModel, Geometry, LrSchedule, SampleConfig, TrainConfig, Trainer};
//! use fisherflow::gpu::GpuContext;
//! # fn main() -> fisherflow::Result<()> {
//! let ctx = GpuContext::new()?;
//! let target = ToyTarget::from_spec("toy:L=4,K=5")?;
//! let flow = FlowConfig::new(4, 5, 512, Geometry::Sphere);
//! let cfg = TrainConfig { schedule: LrSchedule::Cosine { steps: 2000, floor: 0.01 }, ..Default::default() };
//! let mut trainer = Trainer::new(Device::Gpu(&ctx), flow, cfg, target.sample(100_000, 1)?)?;
//! trainer.train_steps(2000)?; // one submit per step, nothing read back
//! println!("loss {:?}", trainer.take_mean_loss()?);
//! let model = FlowModel::from_trainer(&trainer)?;
//! let samples = sample(Device::Gpu(&ctx), &model, &SampleConfig { n: 8192, ..Default::default() })?;
//! println!("KL {}", kl_to_target(&samples, &target.probs)?);
//! # Ok(()) }
//! ```
//!
//! The runtime alone:
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
pub mod budget;
pub mod checkpoint;
pub mod data;
pub mod device;
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

/// Every kernel of the crate, family by family: what the tests translate for Vulkan, Metal and
/// DX12 and check against the WGSL (parameter layouts, binding names, workgroup sizes).
pub fn all_kernels() -> Vec<&'static gpu::KernelDef> {
    [
        kernels::kernels(),
        autodiff::kernels::kernels(),
        autodiff::ops::xent::kernels(),
        flow::kernels(),
        sdflow::kernels(),
        tensornet::kernels(),
    ]
    .concat()
}

/// The uniform structs bound besides a kernel's parameters (shared state a host rewrites
/// between replays), for the same layout check.
pub fn shared_uniforms() -> Vec<gpu::ParamsLayout> {
    use gpu::Params;
    vec![
        kernels::rng::RngParams::LAYOUT,
        kernels::optim::OptimParams::LAYOUT,
    ]
}
