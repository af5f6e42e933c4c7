//! Optimizer kernels: global gradient norm (a two-stage sum of squares) and a fused Adam/AdamW
//! update that clips the gradient by a factor computed on the GPU (no host read-back). The step
//! count lives on the GPU too, so a recorded training step replays with no host writes.
//!
//! CPU references: [`clip_scale`] and [`adam_cpu`].

use crate::error::{Error, Result};
use crate::gpu::{
    lib, Arg, GpuContext, GpuTensor, KernelDef, NoParams, Recorder, ShaderDef, Work, WG,
};
use crate::kernels::Real;

/// `shaders/optim.wgsl` with the grid and tree-sum preludes.
pub static SHADER: ShaderDef = ShaderDef::new(
    "optim",
    &[
        lib::GRID,
        lib::TREE,
        include_str!("../../shaders/optim.wgsl"),
    ],
)
.slots(&[
    "cfg", "grads", "partial", "step", "stats", "params", "m", "v",
]);

/// Partial sums of g² per workgroup.
pub static GRAD_SUMSQ: KernelDef =
    KernelDef::new(&SHADER, "grad_sumsq", &["cfg", "grads", "partial"]);
/// The global norm, clip factor and step count.
pub static GRAD_NORM: KernelDef =
    KernelDef::new(&SHADER, "grad_norm", &["cfg", "partial", "step", "stats"]);
/// The fused clip + Adam(W) update.
pub static ADAM: KernelDef = KernelDef::new(
    &SHADER,
    "adam",
    &["cfg", "params", "grads", "m", "v", "stats", "step"],
);

/// Every kernel of the family.
pub fn kernels() -> Vec<&'static KernelDef> {
    vec![&GRAD_SUMSQ, &GRAD_NORM, &ADAM]
}

/// Which Adam variant the optimizer runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum OptimKind {
    /// Adam with decoupled weight decay (`p ← p − lr·wd·p` before the update).
    AdamW,
    /// Adam with L2 weight decay (`g ← g + wd·p`).
    Adam,
}

/// Optimizer settings (defaults: AdamW, lr 1e-3, betas 0.9/0.999, eps 1e-8, no decay, global
/// grad-norm clipped to 1).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OptimConfig {
    /// AdamW or Adam.
    pub kind: OptimKind,
    /// Learning rate.
    pub lr: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Denominator guard.
    pub eps: f32,
    /// Weight decay (decoupled for AdamW, L2 for Adam).
    pub weight_decay: f32,
    /// Clip the global gradient norm to this value (`None`: no clipping).
    pub max_grad_norm: Option<f32>,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            kind: OptimKind::AdamW,
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            max_grad_norm: Some(1.0),
        }
    }
}

impl OptimConfig {
    /// Check the ranges of every setting.
    pub fn validate(&self) -> Result<()> {
        let ok = self.lr.is_finite()
            && self.lr >= 0.0
            && (0.0..1.0).contains(&self.beta1)
            && (0.0..1.0).contains(&self.beta2)
            && self.eps.is_finite()
            && self.eps > 0.0
            && self.weight_decay.is_finite()
            && self.weight_decay >= 0.0
            && self.max_grad_norm.is_none_or(|m| m.is_finite() && m > 0.0);
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!(
                "optimizer settings out of range: {self:?}"
            )))
        }
    }
}

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

crate::gpu_params! {
    /// The optimizer's settings as the kernels read them (a uniform rewritten when they change).
    pub struct OptimParams {
        /// Parameters.
        pub n: u32,
        /// Partial sums of the gradient norm.
        pub n_partials: u32,
        /// 1: AdamW, 0: Adam with L2 decay.
        pub decoupled: u32,
        /// 1: clip to `max_norm`.
        pub clip: u32,
        /// Learning rate.
        pub lr: f32,
        /// First-moment decay.
        pub beta1: f32,
        /// Second-moment decay.
        pub beta2: f32,
        /// Denominator guard.
        pub eps: f32,
        /// Weight decay.
        pub wd: f32,
        /// Clipping norm.
        pub max_norm: f32,
        /// Padding.
        pub _pad0: u32,
        /// Padding.
        pub _pad1: u32,
    }
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
        if bytes > ctx.max_binding() {
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

    fn pack(cfg: &OptimConfig, n: u32, groups: u32) -> OptimParams {
        OptimParams {
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
            ..Default::default()
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
    pub fn record<'a>(
        &'a self,
        ctx: &GpuContext,
        rec: &mut Recorder,
        params: &'a GpuTensor<f32>,
        grads: &'a GpuTensor<f32>,
        m: &'a GpuTensor<f32>,
        v: &'a GpuTensor<f32>,
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
        let range = |t: &'a GpuTensor<f32>| Arg::Range {
            buffer: t.buffer(),
            offset: 0,
            size: self.n as u64 * 4,
        };
        let cfg = Arg::Whole(&self.uniform);
        let partial = Arg::from(&self.partial);
        let step = Arg::from(&self.step);
        let stats = Arg::from(&self.stats);
        let groups = Work::Groups(self.groups as u64);
        let none = |_| NoParams;
        let args = [cfg.clone(), range(grads), partial.clone()];
        GRAD_SUMSQ.launch(ctx, rec, groups, &args, none)?;
        let args = [cfg.clone(), partial, step.clone(), stats.clone()];
        GRAD_NORM.launch(ctx, rec, Work::Groups(1), &args, none)?;
        let args = [
            cfg,
            range(params),
            range(grads),
            range(m),
            range(v),
            stats,
            step,
        ];
        // Grid-stride: about 8 elements per thread.
        let work = Work::Groups(self.n.div_ceil(WG * 8).max(1) as u64);
        ADAM.launch(ctx, rec, work, &args, none)?;
        Ok(())
    }
}
