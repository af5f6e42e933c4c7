//! Where work runs: the CPU backend or a GPU context. One choice, made once, serves training,
//! sampling, score-difference flow and the tensor networks.

use crate::error::{Error, Result};
use crate::gpu::{ContextOptions, GpuContext};

/// The device a run uses: the CPU backend, or a GPU (any adapter wgpu reaches).
#[derive(Clone, Copy, Debug)]
pub enum Device<'c> {
    /// The CPU backend (plain Rust, threaded products).
    Cpu,
    /// A GPU context.
    Gpu(&'c GpuContext),
}

impl<'c> Device<'c> {
    /// The GPU context, when the device is a GPU.
    pub fn gpu(self) -> Option<&'c GpuContext> {
        match self {
            Device::Cpu => None,
            Device::Gpu(ctx) => Some(ctx),
        }
    }

    /// The GPU context, or an error saying that `what` runs on a GPU only.
    pub fn require_gpu(self, what: &str) -> Result<&'c GpuContext> {
        self.gpu().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{what} runs on a GPU adapter only; it has no CPU backend"
            ))
        })
    }

    /// `CPU backend` or `GPU, <adapter> (<backend>, <type>)`.
    pub fn describe(self) -> String {
        match self {
            Device::Cpu => "CPU backend".into(),
            Device::Gpu(ctx) => format!("GPU, {}", ctx.describe()),
        }
    }
}

/// Which device to prefer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// A hardware GPU when there is one, else the CPU backend (see [`choose`]).
    #[default]
    Auto,
    /// The CPU backend.
    Cpu,
    /// A GPU adapter, even a software one.
    Gpu,
}

/// The outcome of [`choose`]: the GPU context (when a GPU was chosen) and why.
#[derive(Debug)]
pub struct Choice {
    /// The context, `None` for the CPU backend.
    pub context: Option<GpuContext>,
    /// One line on what was chosen and why, for the user.
    pub reason: String,
}

impl Choice {
    /// The device this choice stands for.
    pub fn device(&self) -> Device<'_> {
        match &self.context {
            Some(ctx) => Device::Gpu(ctx),
            None => Device::Cpu,
        }
    }
}

/// Whether an adapter is a software renderer (Mesa's llvmpipe/lavapipe, WARP).
pub fn is_software(ctx: &GpuContext) -> bool {
    ctx.adapter_info().device_type == wgpu::DeviceType::Cpu
}

/// Choose the device: [`Backend::Cpu`] and [`Backend::Gpu`] are obeyed (a GPU that cannot be
/// created is an error). With [`Backend::Auto`] a hardware adapter is used; a software
/// adapter runs the kernels on the CPU more slowly than the CPU backend does, so it is used
/// only when named (`opts.adapter`) or asked for; without any adapter the CPU backend runs.
pub fn choose(opts: &ContextOptions, backend: Backend) -> Result<Choice> {
    let cpu = |reason: String| Choice {
        context: None,
        reason,
    };
    if backend == Backend::Cpu {
        return Ok(cpu("CPU backend (asked for)".into()));
    }
    match GpuContext::with_options(opts) {
        Ok(ctx) if is_software(&ctx) && backend == Backend::Auto && opts.adapter.is_none() => {
            Ok(cpu(format!(
                "CPU backend (the only adapter, {}, is a software renderer and slower than the \
                 CPU backend; ask for the GPU backend to use it)",
                ctx.describe()
            )))
        }
        Ok(ctx) => Ok(Choice {
            reason: format!("GPU, {}", ctx.describe()),
            context: Some(ctx),
        }),
        Err(Error::NoAdapter(why)) if backend == Backend::Auto && opts.adapter.is_none() => {
            Ok(cpu(format!("CPU backend (no GPU adapter: {why})")))
        }
        Err(e) => Err(e),
    }
}
