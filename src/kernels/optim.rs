//! Optimizer kernels: global gradient norm (a two-stage sum of squares) and a fused Adam/AdamW
//! update that clips the gradient by a factor computed on the GPU (no host read-back). The step
//! count lives on the GPU too, so a recorded training step replays with no host writes.
//!
//! CPU references: [`clip_scale`] and [`adam_cpu`].

use crate::autodiff::{OptimConfig, OptimKind, Real};
use crate::error::{Error, Result};
use crate::gpu::{GpuContext, GpuTensor, Recorder, Shader};

/// `shaders/optim.wgsl`.
pub const SHADER: Shader = Shader::new("optim", include_str!("../../shaders/optim.wgsl"));

/// Threads per workgroup of both kernels (and the most partial sums the update reduces).
const WG: u32 = 256;

/// Multiplier PyTorch's `clip_grad_norm_` applies: `min(1, max_norm / (norm + 1e-6))`.
pub fn clip_scale(norm: f64, max_norm: Option<f32>) -> f64 {
    match max_norm {
        Some(mx) => (mx as f64 / (norm + 1e-6)).min(1.0),
        None => 1.0,
    }
}

/// CPU reference of one Adam/AdamW update (step `t ≥ 1`, gradients multiplied by `scale`
/// first), computed in f64.
pub fn adam_cpu<T: Real>(
    cfg: &OptimConfig,
    t: u64,
    scale: f64,
    p: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
) {
    let (b1, b2) = (cfg.beta1 as f64, cfg.beta2 as f64);
    let bc1 = 1.0 - b1.powf(t as f64);
    let bc2 = 1.0 - b2.powf(t as f64);
    let (lr, wd, eps) = (cfg.lr as f64, cfg.weight_decay as f64, cfg.eps as f64);
    for i in 0..p.len() {
        let mut pi = p[i].to_f64();
        let mut gi = g[i].to_f64() * scale;
        match cfg.kind {
            OptimKind::AdamW => pi *= 1.0 - lr * wd,
            OptimKind::Adam => gi += wd * pi,
        }
        let mi = b1 * m[i].to_f64() + (1.0 - b1) * gi;
        let vi = b2 * v[i].to_f64() + (1.0 - b2) * gi * gi;
        pi -= lr * (mi / bc1) / ((vi / bc2).sqrt() + eps);
        p[i] = T::from_f64(pi);
        m[i] = T::from_f64(mi);
        v[i] = T::from_f64(vi);
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Uniform {
    n: u32,
    n_partials: u32,
    decoupled: u32,
    clip: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    wd: f32,
    max_norm: f32,
    _pad: [u32; 2],
}

/// The GPU optimizer for `n` contiguous parameters: its settings (a uniform), the partial sums
/// of the gradient norm, the step count and the last gradient norm.
#[derive(Debug)]
pub struct GpuOptimizer {
    n: u32,
    groups: u32,
    cfg: OptimConfig,
    uniform: wgpu::Buffer,
    partial: GpuTensor<f32>,
    step: GpuTensor<u32>,
    stats: GpuTensor<f32>,
}

impl GpuOptimizer {
    /// An optimizer for `n` parameters with step count 0.
    pub fn new(ctx: &GpuContext, cfg: OptimConfig, n: usize) -> Result<Self> {
        cfg.validate()?;
        let n = u32::try_from(n)
            .map_err(|_| Error::Limit(format!("{n} parameters exceed one dispatch")))?;
        if n == 0 {
            return Err(Error::Shape("an optimizer over no parameters".into()));
        }
        let bytes = n as u64 * 4;
        if bytes > ctx.limits().max_storage_buffer_binding_size {
            return Err(Error::Limit(format!(
                "{n} parameters ({bytes} bytes) exceed the adapter's storage binding limit"
            )));
        }
        // Enough partial sums to fill the GPU, at most one workgroup's worth.
        let groups = n.div_ceil(WG * 16).clamp(1, WG);
        let uniform = ctx.uniform(&Self::pack(&cfg, n, groups));
        Ok(Self {
            n,
            groups,
            cfg,
            uniform,
            partial: GpuTensor::zeros(ctx, &[groups as usize])?,
            step: GpuTensor::zeros(ctx, &[1])?,
            stats: GpuTensor::zeros(ctx, &[2])?,
        })
    }

    fn pack(cfg: &OptimConfig, n: u32, groups: u32) -> Uniform {
        Uniform {
            n,
            n_partials: groups,
            decoupled: (cfg.kind == OptimKind::AdamW) as u32,
            clip: cfg.max_grad_norm.is_some() as u32,
            lr: cfg.lr,
            beta1: cfg.beta1,
            beta2: cfg.beta2,
            eps: cfg.eps,
            wd: cfg.weight_decay,
            max_norm: cfg.max_grad_norm.unwrap_or(0.0),
            _pad: [0; 2],
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &OptimConfig {
        &self.cfg
    }

    /// Change the settings (takes effect at the next submit; a queue write, no read-back).
    pub fn set_config(&mut self, ctx: &GpuContext, cfg: OptimConfig) -> Result<()> {
        cfg.validate()?;
        self.cfg = cfg;
        ctx.queue().write_buffer(
            &self.uniform,
            0,
            bytemuck::bytes_of(&Self::pack(&cfg, self.n, self.groups)),
        );
        Ok(())
    }

    /// Number of steps taken (reads the GPU).
    pub fn step_count(&self, ctx: &GpuContext) -> Result<u64> {
        Ok(self.step.to_vec(ctx)?[0] as u64)
    }

    /// Set the step count (restoring a checkpoint).
    pub fn set_step_count(&self, ctx: &GpuContext, step: u64) -> Result<()> {
        let s = u32::try_from(step)
            .map_err(|_| Error::InvalidArgument(format!("step count {step} exceeds u32")))?;
        self.step.write(ctx, &[s])
    }

    /// Gradient norm of the last step, before clipping (reads the GPU).
    pub fn grad_norm(&self, ctx: &GpuContext) -> Result<f32> {
        Ok(self.stats.to_vec(ctx)?[0])
    }

    /// Record one step: partial sums of squares, the norm, clip factor and step count (one
    /// workgroup), and the fused clip + Adam update of `params`, `m` and `v`. All four tensors hold `n`
    /// elements (more is allowed; the rest is untouched).
    pub fn record(
        &self,
        ctx: &GpuContext,
        rec: &mut Recorder,
        params: &GpuTensor<f32>,
        grads: &GpuTensor<f32>,
        m: &GpuTensor<f32>,
        v: &GpuTensor<f32>,
    ) -> Result<()> {
        for (name, t) in [("params", params), ("grads", grads), ("m", m), ("v", v)] {
            if t.len() < self.n as usize {
                return Err(Error::Shape(format!(
                    "optimizer over {} parameters given {name} of {} elements",
                    self.n,
                    t.len()
                )));
            }
        }
        let n = self.n as u64;
        fn bind(t: &GpuTensor<f32>, n: u64) -> wgpu::BindingResource<'_> {
            wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: t.buffer(),
                offset: 0,
                size: std::num::NonZeroU64::new(n * 4),
            })
        }
        let k1 = ctx.kernel(&SHADER, "grad_sumsq")?;
        let bg1 = ctx.bind(
            &k1,
            &[
                self.uniform.as_entire_binding(),
                bind(grads, n),
                self.partial.binding(),
            ],
        )?;
        rec.dispatch(&k1, &bg1, [self.groups, 1, 1]);
        let k2 = ctx.kernel(&SHADER, "grad_norm")?;
        let bg2 = ctx.bind(
            &k2,
            &[
                self.uniform.as_entire_binding(),
                self.partial.binding(),
                self.step.binding(),
                self.stats.binding(),
            ],
        )?;
        rec.dispatch(&k2, &bg2, [1, 1, 1]);
        let k3 = ctx.kernel(&SHADER, "adam")?;
        let bg3 = ctx.bind(
            &k3,
            &[
                self.uniform.as_entire_binding(),
                bind(params, n),
                bind(grads, n),
                bind(m, n),
                bind(v, n),
                self.stats.binding(),
                self.step.binding(),
            ],
        )?;
        // Grid-stride: about 8 elements per thread.
        rec.dispatch(&k3, &bg3, ctx.grid(self.n.div_ceil(WG * 8).max(1))?);
        Ok(())
    }
}
