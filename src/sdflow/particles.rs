//! Particle optimisation: x ← x + η σ² v(x + σε), ε ~ N(0, I), σ annealed geometrically from
//! σ_max to σ_min, the whole loop recorded once and replayed on the GPU.
//!
//! One step is four dispatches: `perturb` (x̃ = x + σε from a counter-based hash of
//! (seed, step, element)), the tiled score difference v(x̃) with the target samples and the
//! current particles as source, `update` (x += η σ² v) and `advance` (step += 1, next σ).
//! Step and σ live in a GPU state buffer, so nothing is read back between progress reports.
//!
//! Model optimisation plugs in through the same step: write generator outputs g_θ(z) into
//! [`ParticleFlow::particles`], record one step, and the particles then hold the
//! stop-gradient regression targets g_θ(z) + η σ² v(g_θ(z) + σε).

use crate::error::{Error, Result};
use crate::gpu::{GpuContext, GpuTensor, KernelDef, Recorder, Work};

use super::score::{check_sigma, points_shape, ScoreDiff};
use super::FLOW_SHADER;

/// Settings of the particle flow.
#[derive(Clone, Debug)]
pub struct ParticleConfig {
    /// Number of steps (≥ 1).
    pub steps: usize,
    /// σ at the first step.
    pub sigma_max: f32,
    /// σ at the last step (0 < σ_min ≤ σ_max); σ_t = σ_max (σ_min/σ_max)^(t/(steps−1)).
    pub sigma_min: f32,
    /// Step size η; particles move by η σ² v.
    pub eta: f32,
    /// Seed of the GPU noise.
    pub seed: u32,
    /// Leave each particle out of its own source sum.
    pub leave_one_out: bool,
    /// Steps between progress reports (read-backs).
    pub progress_every: usize,
}

impl Default for ParticleConfig {
    fn default() -> Self {
        Self {
            steps: 500,
            sigma_max: 2.0,
            sigma_min: 0.05,
            eta: 0.5,
            seed: 0,
            leave_one_out: false,
            progress_every: 50,
        }
    }
}

impl ParticleConfig {
    /// Check the settings.
    pub fn validate(&self) -> Result<()> {
        check_sigma(self.sigma_max)?;
        check_sigma(self.sigma_min)?;
        if self.sigma_min > self.sigma_max {
            return Err(Error::InvalidArgument(format!(
                "σ_min = {} exceeds σ_max = {}",
                self.sigma_min, self.sigma_max
            )));
        }
        if self.steps == 0 || self.steps > u32::MAX as usize {
            return Err(Error::InvalidArgument(format!(
                "steps must be in 1..=2^32-1, got {}",
                self.steps
            )));
        }
        if !(self.eta.is_finite() && self.eta > 0.0) {
            return Err(Error::InvalidArgument(format!(
                "η must be finite and positive, got {}",
                self.eta
            )));
        }
        if self.progress_every == 0 {
            return Err(Error::InvalidArgument("progress_every must be ≥ 1".into()));
        }
        Ok(())
    }

    /// σ at `step` (clamped to the last step), as the GPU computes it.
    pub fn sigma_at(&self, step: usize) -> f32 {
        if self.steps <= 1 {
            return self.sigma_max;
        }
        let t = step.min(self.steps - 1) as f32 / (self.steps - 1) as f32;
        self.sigma_max * (self.sigma_min / self.sigma_max).powf(t)
    }
}

/// A progress report from [`ParticleFlow::run`].
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Steps done so far.
    pub step: usize,
    /// Total steps.
    pub steps: usize,
    /// σ of the last step done.
    pub sigma: f32,
}

crate::gpu_params! {
    /// Parameters of the particle kernels.
    pub struct ParticleParams {
        /// Particle coordinates (n·d).
        pub n_el: u32,
        /// Seed of the perturbation.
        pub seed: u32,
        /// Step size.
        pub eta: f32,
        /// Schedule length.
        pub steps: u32,
        /// First σ.
        pub sigma_max: f32,
        /// Last σ.
        pub sigma_min: f32,
        /// Padding.
        pub _pad0: u32,
        /// Padding.
        pub _pad1: u32,
    }
}

/// `xt ← x + σ ε`.
pub static PERTURB: KernelDef =
    KernelDef::new(&FLOW_SHADER, "perturb", &["state", "x", "xt"]).params::<ParticleParams>();
/// `x ← x + η σ² v`.
pub static UPDATE: KernelDef =
    KernelDef::new(&FLOW_SHADER, "update", &["state", "v", "x"]).params::<ParticleParams>();
/// The step counter and the next σ.
pub static ADVANCE: KernelDef = KernelDef::new(&FLOW_SHADER, "advance", &["state"])
    .params::<ParticleParams>()
    .workgroup(1);

/// Particles flowing towards a target sample set. See the [module docs](self).
pub struct ParticleFlow {
    config: ParticleConfig,
    n: usize,
    d: usize,
    target: GpuTensor,
    particles: GpuTensor,
    noisy: GpuTensor,
    velocity: GpuTensor,
    state: GpuTensor<u32>,
    score: ScoreDiff,
    perturb: Recorder,
    update: Recorder,
    done: usize,
}

impl ParticleFlow {
    /// Particles starting at `init` `[n, d]` (copied), moving towards the samples `target`
    /// `[m, d]`.
    pub fn new(
        ctx: &GpuContext,
        target: &GpuTensor,
        init: &GpuTensor,
        config: ParticleConfig,
    ) -> Result<Self> {
        config.validate()?;
        let (n, d) = points_shape(ctx, init, "initial particles")?;
        let (_, dt) = points_shape(ctx, target, "target samples")?;
        if d != dt {
            return Err(Error::Shape(format!(
                "particles have d = {d} but the target has d = {dt}"
            )));
        }
        if config.leave_one_out && n < 2 {
            return Err(Error::InvalidArgument(
                "leave-one-out needs at least 2 particles".into(),
            ));
        }
        let particles = GpuTensor::zeros(ctx, &[n, d])?;
        let noisy = GpuTensor::zeros(ctx, &[n, d])?;
        let velocity = GpuTensor::zeros(ctx, &[n, d])?;
        let state = GpuTensor::from_slice(ctx, &[0u32, config.sigma_at(0).to_bits()], &[2])?;
        let mut init_rec = Recorder::new();
        init_rec.copy(init.buffer(), 0, particles.buffer(), 0, init.bytes());
        init_rec.run(ctx)?;
        let score = ScoreDiff::new(
            ctx,
            &noisy,
            target,
            &particles,
            &state,
            &velocity,
            config.leave_one_out,
        )?;
        let n_el = (n * d) as u32;
        let p = ParticleParams {
            n_el,
            seed: config.seed,
            eta: config.eta,
            steps: config.steps as u32,
            sigma_max: config.sigma_max,
            sigma_min: config.sigma_min,
            ..Default::default()
        };
        let work = Work::Threads(n_el as u64);
        let mut perturb = Recorder::new();
        let args = [(&state).into(), (&particles).into(), (&noisy).into()];
        PERTURB.launch(ctx, &mut perturb, work, &args, |_| p)?;
        let mut update = Recorder::new();
        let args = [(&state).into(), (&velocity).into(), (&particles).into()];
        UPDATE.launch(ctx, &mut update, work, &args, |_| p)?;
        ADVANCE.launch(ctx, &mut update, Work::Groups(1), &[(&state).into()], |_| p)?;
        Ok(Self {
            config,
            n,
            d,
            target: target.clone(),
            particles,
            noisy,
            velocity,
            state,
            score,
            perturb,
            update,
            done: 0,
        })
    }

    /// Append one step (perturb, score difference, update, advance) to `rec`.
    pub fn record_step(&self, rec: &mut Recorder) {
        rec.extend(&self.perturb);
        self.score.record(rec);
        rec.extend(&self.update);
    }

    /// Run the remaining steps, calling `on_progress` with the particles every
    /// `progress_every` steps and at the end (the only points where anything is read back).
    pub fn run(
        &mut self,
        ctx: &GpuContext,
        mut on_progress: impl FnMut(&Progress, &GpuTensor) -> Result<()>,
    ) -> Result<()> {
        let every = self.config.progress_every;
        let mut chunk = Recorder::new();
        for _ in 0..every.min(self.config.steps) {
            self.record_step(&mut chunk);
        }
        while self.done < self.config.steps {
            let k = every.min(self.config.steps - self.done);
            if k == every {
                chunk.run(ctx)?;
            } else {
                let mut rest = Recorder::new();
                for _ in 0..k {
                    self.record_step(&mut rest);
                }
                rest.run(ctx)?;
            }
            self.done += k;
            let st = self.state.to_vec(ctx)?;
            if st[0] as usize != self.done {
                return Err(Error::Device(format!(
                    "GPU step counter is {} after {} steps",
                    st[0], self.done
                )));
            }
            on_progress(
                &Progress {
                    step: self.done,
                    steps: self.config.steps,
                    sigma: self.config.sigma_at(self.done - 1),
                },
                &self.particles,
            )?;
        }
        Ok(())
    }

    /// The settings.
    pub fn config(&self) -> &ParticleConfig {
        &self.config
    }
    /// Number of particles and dimension.
    pub fn dims(&self) -> (usize, usize) {
        (self.n, self.d)
    }
    /// Steps done.
    pub fn steps_done(&self) -> usize {
        self.done
    }
    /// The particles `[n, d]` (read and write: a generator may overwrite them each step).
    pub fn particles(&self) -> &GpuTensor {
        &self.particles
    }
    /// The perturbed particles x̃ of the last step.
    pub fn noisy(&self) -> &GpuTensor {
        &self.noisy
    }
    /// v(x̃) of the last step.
    pub fn velocity(&self) -> &GpuTensor {
        &self.velocity
    }
    /// The target samples.
    pub fn target(&self) -> &GpuTensor {
        &self.target
    }
    /// The GPU state `[step, σ bits]`.
    pub fn state(&self) -> &GpuTensor<u32> {
        &self.state
    }
}
