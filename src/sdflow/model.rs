//! Model optimisation: a generator MLP g_θ: R^{d_z} → R^d regressed onto the moved particles.
//!
//! Each step, on the GPU in one recording and without read-back:
//! 1. `latent`: z ~ N(0, I) `[batch, d_z]` from a counter-based hash of (seed, step, element);
//! 2. the forward pass x = g_θ(z), copied into the particles of a [`ParticleFlow`];
//! 3. one particle step: x̃ = x + σε, target = x + η σ² v(x̃) with the target samples and the
//!    generated batch as source (optionally leave-one-out), then σ advances geometrically;
//! 4. the target is copied into the regression input (a stop-gradient constant) and one
//!    training step runs on `loss = mean_rows ‖g_θ(z) − target‖²` (AdamW by default).

use crate::autodiff::{Activation, Executor, GpuExecutor, Graph, NamedTensor, NodeId, OptimConfig};
use crate::error::{Error, Result};
use crate::gpu::{GpuContext, GpuTensor, KernelDef, Recorder, Work};
use crate::nn::Linear;

use super::data::Rng;
use super::particles::{ParticleConfig, ParticleFlow};
use super::score::points_shape;
use super::FLOW_SHADER;

/// Name of the latent input of the generator graph.
pub const LATENT: &str = "z";
/// Name of the regression-target input of the generator graph.
pub const TARGET: &str = "target";

/// Largest latent dimension and hidden width accepted.
pub const MAX_WIDTH: usize = 4096;

/// Settings of model optimisation.
///
/// The defaults stop the σ schedule at 0.3 rather than the particle mode's 0.05: on ring8 the
/// MMD² of fresh samples rose again once σ went below about 0.2 (at small σ the flow acts only
/// locally, so nothing restores the balance between distant modes against optimizer noise).
#[derive(Clone, Debug)]
pub struct ModelConfig {
    /// The flow: steps, σ schedule, η, noise seed, leave-one-out, progress interval.
    pub flow: ParticleConfig,
    /// Generated samples per step (the source set of the score).
    pub batch: usize,
    /// Latent dimension d_z.
    pub latent_dim: usize,
    /// Hidden width.
    pub width: usize,
    /// Number of hidden layers (≥ 1); the output layer is linear.
    pub depth: usize,
    /// Hidden activation (SiLU or leaky ReLU).
    pub activation: Activation,
    /// Optimizer of θ.
    pub optim: OptimConfig,
    /// Seed of the parameter initialisation.
    pub init_seed: u64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            flow: ParticleConfig {
                steps: 2000,
                sigma_min: 0.3,
                eta: 1.0,
                ..ParticleConfig::default()
            },
            batch: 512,
            latent_dim: 4,
            width: 128,
            depth: 3,
            activation: Activation::Silu,
            optim: OptimConfig {
                lr: 2e-3,
                ..OptimConfig::default()
            },
            init_seed: 0,
        }
    }
}

impl ModelConfig {
    /// Check the settings.
    pub fn validate(&self) -> Result<()> {
        self.flow.validate()?;
        self.optim.validate()?;
        if self.batch == 0 || self.batch > u32::MAX as usize / 4 {
            return Err(Error::InvalidArgument(format!(
                "batch must be ≥ 1, got {}",
                self.batch
            )));
        }
        if self.flow.leave_one_out && self.batch < 2 {
            return Err(Error::InvalidArgument(
                "leave-one-out needs a batch of at least 2".into(),
            ));
        }
        for (what, v) in [("latent_dim", self.latent_dim), ("width", self.width)] {
            if v == 0 || v > MAX_WIDTH {
                return Err(Error::InvalidArgument(format!(
                    "{what} must be in 1..={MAX_WIDTH}, got {v}"
                )));
            }
        }
        if self.depth == 0 || self.depth > 64 {
            return Err(Error::InvalidArgument(format!(
                "depth (hidden layers) must be in 1..=64, got {}",
                self.depth
            )));
        }
        match self.activation {
            Activation::Silu => {}
            Activation::LeakyRelu(s) if s.is_finite() => {}
            a => {
                return Err(Error::InvalidArgument(format!(
                "activation {a:?} is not supported; use SiLU or a leaky ReLU with a finite slope"
            )))
            }
        }
        Ok(())
    }

    /// The generator graph for outputs in R^`d`.
    pub fn generator(&self, d: usize) -> Result<Generator> {
        self.validate()?;
        if d == 0 || d > super::MAX_DIM {
            return Err(Error::Shape(format!(
                "dimension d = {d} is outside the supported range 1..={}",
                super::MAX_DIM
            )));
        }
        let mut g = Graph::new(self.init_seed);
        let z = g.input(LATENT, self.latent_dim)?;
        let target = g.input(TARGET, d)?;
        let mut h = z;
        let mut fan_in = self.latent_dim;
        for i in 0..self.depth {
            let l = Linear::new(&mut g, &format!("hidden{i}"), fan_in, self.width, true)?;
            h = l.forward(&mut g, h)?;
            h = g.act(h, self.activation)?;
            fan_in = self.width;
        }
        let l = Linear::new(&mut g, "out", fan_in, d, true)?;
        let out = l.forward(&mut g, h)?;
        let loss = g.mse_loss(out, target)?;
        Ok(Generator {
            graph: g,
            out,
            loss,
            latent_dim: self.latent_dim,
            d,
        })
    }
}

/// The generator MLP as an autodiff graph: inputs [`LATENT`] `[B, d_z]` and [`TARGET`]
/// `[B, d]`, output `out` `[B, d]`, loss `mean_rows ‖out − target‖²`.
#[derive(Clone, Debug)]
pub struct Generator {
    /// The graph.
    pub graph: Graph,
    /// Output node g_θ(z).
    pub out: NodeId,
    /// Regression loss node.
    pub loss: NodeId,
    /// Latent dimension.
    pub latent_dim: usize,
    /// Output dimension.
    pub d: usize,
}

/// A progress report from [`ModelFlow::run`].
#[derive(Clone, Copy, Debug)]
pub struct ModelProgress {
    /// Steps done so far.
    pub step: usize,
    /// Total steps.
    pub steps: usize,
    /// σ of the last step done.
    pub sigma: f32,
    /// Mean regression loss over the steps since the last report.
    pub loss: f32,
}

crate::gpu_params! {
    /// Parameters of the latent draws.
    pub struct LatentParams {
        /// Latent coordinates.
        pub n_el: u32,
        /// Seed.
        pub seed: u32,
        /// Padding.
        pub _pad0: u32,
        /// Padding.
        pub _pad1: u32,
    }
}

/// `z ← N(0, I)` for the generator, from the flow's step.
pub static DRAW_LATENTS: KernelDef =
    KernelDef::new(&FLOW_SHADER, "latent", &["state", "z"]).params::<LatentParams>();

/// A generator trained by score-difference flow. See the [module docs](self).
pub struct ModelFlow<'c> {
    ctx: &'c GpuContext,
    config: ModelConfig,
    gen: Generator,
    exec: GpuExecutor<'c>,
    flow: ParticleFlow,
    out: GpuTensor,
    step_rec: Recorder,
    done: usize,
}

impl<'c> ModelFlow<'c> {
    /// A fresh generator for the target samples `target` `[m, d]`.
    pub fn new(ctx: &'c GpuContext, target: &GpuTensor, config: ModelConfig) -> Result<Self> {
        config.validate()?;
        let (_, d) = points_shape(ctx, target, "target samples")?;
        let gen = config.generator(d)?;
        let b = config.batch;
        let exec = GpuExecutor::new(ctx, &gen.graph, b, &[gen.out], Some(gen.loss), config.optim)?;
        let init = GpuTensor::zeros(ctx, &[b, d])?;
        let flow = ParticleFlow::new(ctx, target, &init, config.flow.clone())?;
        let out = exec.output_tensor(gen.out)?;
        let z = exec.input_tensor(LATENT)?;
        let tgt = exec.input_tensor(TARGET)?;
        let bytes = (b * d * 4) as u64;
        if out.bytes() < bytes || tgt.bytes() < bytes {
            return Err(Error::Shape(format!(
                "generator buffers hold {} and {} bytes; a batch needs {bytes}",
                out.bytes(),
                tgt.bytes()
            )));
        }
        let n_z = (b * config.latent_dim) as u32;
        let p = LatentParams {
            n_el: n_z,
            // Its own Philox stream: independent of the perturbation of the same seed.
            seed: config.flow.seed,
            ..Default::default()
        };
        let mut rec = Recorder::new();
        let args = [flow.state().into(), z.into()];
        DRAW_LATENTS.launch(ctx, &mut rec, Work::Threads(n_z as u64), &args, |_| p)?;
        exec.record_forward(&mut rec);
        rec.copy(out.buffer(), 0, flow.particles().buffer(), 0, bytes);
        flow.record_step(&mut rec);
        rec.copy(flow.particles().buffer(), 0, tgt.buffer(), 0, bytes);
        exec.record_step(&mut rec)?;
        Ok(Self {
            ctx,
            config,
            gen,
            exec,
            flow,
            out,
            step_rec: rec,
            done: 0,
        })
    }

    /// Append one model step (latents, forward, particle step, regression step) to `rec`.
    pub fn record_step(&self, rec: &mut Recorder) {
        rec.extend(&self.step_rec);
    }

    /// Run `k` more steps (clamped to the steps left) in one submission, without reading
    /// anything back. Returns the number of steps run.
    pub fn advance(&mut self, k: usize) -> Result<usize> {
        let k = k.min(self.config.flow.steps - self.done);
        if k == 0 {
            return Ok(0);
        }
        let mut rec = Recorder::new();
        for _ in 0..k {
            self.record_step(&mut rec);
        }
        rec.submit(self.ctx)?;
        self.done += k;
        Ok(k)
    }

    /// Run the remaining steps, calling `on_progress` every `progress_every` steps and at the
    /// end (the only points where anything is read back).
    pub fn run(
        &mut self,
        mut on_progress: impl FnMut(&ModelProgress, &Self) -> Result<()>,
    ) -> Result<()> {
        let every = self.config.flow.progress_every;
        let steps = self.config.flow.steps;
        let mut chunk = Recorder::new();
        for _ in 0..every.min(steps) {
            self.record_step(&mut chunk);
        }
        while self.done < steps {
            let k = every.min(steps - self.done);
            if k == every {
                chunk.run(self.ctx)?;
                self.done += k;
            } else {
                self.advance(k)?;
            }
            let st = self.flow.state().to_vec(self.ctx)?;
            if st[0] as usize != self.done {
                return Err(Error::Device(format!(
                    "GPU step counter is {} after {} steps",
                    st[0], self.done
                )));
            }
            let loss = self.exec.take_mean_loss()?.unwrap_or(f32::NAN);
            if !loss.is_finite() {
                return Err(Error::NonFinite(format!(
                    "the regression loss is {loss} by step {}",
                    self.done
                )));
            }
            let p = ModelProgress {
                step: self.done,
                steps,
                sigma: self.config.flow.sigma_at(self.done - 1),
                loss,
            };
            on_progress(&p, self)?;
        }
        Ok(())
    }

    /// `n` fresh samples g_θ(z) (row-major `[n, d]`) as a GPU tensor, z ~ N(0, I) drawn on the
    /// host from `seed`.
    pub fn sample_tensor(&self, n: usize, seed: u64) -> Result<GpuTensor> {
        if n == 0 {
            return Err(Error::InvalidArgument("sample at least one point".into()));
        }
        let fwd = self.exec.compile_forward(n, &[self.gen.out])?;
        let z = Rng::new(seed).gaussian_points(n, self.gen.latent_dim, &[0.0], 1.0);
        fwd.set_input(LATENT, &z)?;
        fwd.run()?;
        let t = fwd.output_tensor(self.gen.out)?;
        let out = GpuTensor::zeros(self.ctx, &[n, self.gen.d])?;
        let mut rec = Recorder::new();
        rec.copy(t.buffer(), 0, out.buffer(), 0, out.bytes());
        rec.run(self.ctx)?;
        Ok(out)
    }

    /// `n` fresh samples g_θ(z) (row-major `[n, d]`), z ~ N(0, I) drawn on the host from `seed`.
    pub fn sample(&self, n: usize, seed: u64) -> Result<Vec<f32>> {
        self.sample_tensor(n, seed)?.to_vec(self.ctx)
    }

    /// The settings.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }
    /// The generator graph.
    pub fn generator(&self) -> &Generator {
        &self.gen
    }
    /// The compiled training step of θ.
    pub fn executor(&self) -> &GpuExecutor<'c> {
        &self.exec
    }
    /// The compiled training step of θ (mutable: losses, parameters, optimizer state).
    pub fn executor_mut(&mut self) -> &mut GpuExecutor<'c> {
        &mut self.exec
    }
    /// The particle flow that computes the regression targets.
    pub fn flow(&self) -> &ParticleFlow {
        &self.flow
    }
    /// Steps done.
    pub fn steps_done(&self) -> usize {
        self.done
    }
    /// Current parameters θ.
    pub fn params(&self) -> Result<Vec<NamedTensor>> {
        self.exec.params()
    }
    /// Latents z of the last step `[batch, d_z]`.
    pub fn latents(&self) -> Result<&GpuTensor> {
        self.exec.input_tensor(LATENT)
    }
    /// Generated batch g_θ(z) of the last step's forward pass `[batch, d]`.
    pub fn generated(&self) -> &GpuTensor {
        &self.out
    }
    /// Regression targets x + η σ² v(x̃) of the last step `[batch, d]`.
    pub fn targets(&self) -> &GpuTensor {
        self.flow.particles()
    }
}
