//! Fisher-Flow training: one [`Trainer`] over two backends.
//!
//! On the GPU a whole step is one recording replayed with one submit: draw batch indices, the
//! prior `x0` and the times `t` with the counter-based Philox generator (counter = step, so a
//! run is reproducible and resumable), gather the one-hot data batch `x1`, optionally pair
//! `x0` and `x1` by Sinkhorn optimal transport, compute `x_t` and the target `u_t` in one fused
//! kernel straight into the network's input buffers, then forward, backward, clipping and AdamW.
//! The loss is accumulated on the GPU and read back only when asked. With exact OT the batch
//! is built on the host (the assignment problem is solved there) and uploaded.
//!
//! On the CPU backend the same batches are built with the CPU references of the same kernels.

use serde::{Deserialize, Serialize};

use crate::autodiff::{
    CpuExecutor, Executor, GpuExecutor, NamedTensor, OptimConfig, OptimizerState,
};
use crate::checkpoint::Checkpoint;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::flow::cond::{batch_labels, batch_signal, Conditioning};
use crate::flow::dirichlet;
use crate::flow::pairing::OtPairing;
use crate::flow::plateau::PlateauState;
use crate::flow::source::DataSource;
use crate::gpu::Recorder;
use crate::kernels::rng::GpuRng;
use crate::nn::{Arch, MlpConfig, MlpLoss, Network};

pub use crate::flow::batch::{host_batch, host_batch_from};
use crate::flow::batch::{record_device_batch, HostBatcher};

/// Philox stream of the batch indices.
pub const STREAM_INDEX: u32 = 1;
/// Philox stream of the prior `x0`.
pub const STREAM_PRIOR: u32 = 2;
/// Philox stream of the times `t`.
pub const STREAM_TIME: u32 = 3;
/// Philox stream of the OT pair draws.
pub const STREAM_PAIRS: u32 = 4;

/// Where the flow lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Geometry {
    /// Fisher-Flow: `x = √p` on the positive orthant of the sphere, geodesic interpolant.
    #[cfg_attr(feature = "cli", value(name = "fisher", alias = "sphere"))]
    Sphere,
    /// The linear flow-matching baseline on the simplex: `x_t = t x1 + (1 − t) x0`,
    /// `x0 ~ Dirichlet(1)`.
    #[cfg_attr(feature = "cli", value(name = "linear", alias = "simplex"))]
    Simplex,
    /// Dirichlet flow matching on the simplex ([`super::dirichlet`]): paths
    /// `x_t ~ Dir(1 + t·e_{x1})`, a denoiser trained by cross-entropy, sampled by the mixture
    /// of conditional fields.
    #[cfg_attr(feature = "cli", value(name = "dirichlet"))]
    Dirichlet,
    /// The Fisher–Rao flow on the simplex ([`super::simplex_fr`]): Fisher-Flow's geodesics
    /// pulled back by `p = x²`, the network seeing and predicting simplex coordinates, sampled
    /// on the simplex.
    #[cfg_attr(feature = "cli", value(name = "fisher-rao-simplex"))]
    FisherRaoSimplex,
}

/// Minibatch coupling of prior and data points.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum OtMode {
    /// Independent pairs.
    None,
    /// The optimal assignment for cost `Σ_positions arccos²⟨x0, x1⟩` (solved on the host).
    Exact,
    /// Pairs drawn from an entropic Sinkhorn plan computed on the GPU.
    Sinkhorn {
        /// Entropic regularisation ε.
        eps: f32,
        /// Sinkhorn iterations per step.
        iters: u32,
    },
}

/// The model: what a checkpoint needs to rebuild the vector field.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowConfig {
    /// The MLP vector field.
    pub mlp: MlpConfig,
    /// Sphere (Fisher-Flow) or simplex (linear baseline).
    pub geometry: Geometry,
    /// The network's architecture (checkpoints written before it read as the MLP).
    #[serde(default)]
    pub arch: Arch,
    /// Class conditioning (none in checkpoints written before it).
    #[serde(default)]
    pub cond: Conditioning,
}

impl FlowConfig {
    /// The toy-experiment model for `L` positions and `K` categories with hidden width `hidden`.
    pub fn new(seq_len: usize, categories: usize, hidden: usize, geometry: Geometry) -> Self {
        Self {
            mlp: MlpConfig {
                seq_len,
                categories,
                hidden,
                // Only the sphere has a tangent space to project onto; the simplex sampler
                // removes the mean of the velocity itself.
                project: geometry == Geometry::Sphere,
                ..MlpConfig::default()
            },
            geometry,
            arch: Arch::Mlp,
            cond: Conditioning::default(),
        }
    }

    /// The field network (its graph and nodes); `seed` fixes the initial parameters.
    pub fn network(&self, seed: u64) -> Result<Network> {
        let c = self.cond;
        Network::build(&self.mlp, self.arch, c.classes, c.signal, self.loss(), seed)
    }

    /// What the network's output is trained against: Dirichlet FM's denoiser is trained by
    /// cross-entropy, every other method regresses a vector field.
    pub fn loss(&self) -> MlpLoss {
        match self.geometry {
            Geometry::Dirichlet => MlpLoss::SoftmaxXent,
            _ => MlpLoss::Mse,
        }
    }

    /// Values of the widest activation of one sequence.
    pub fn widest_row(&self) -> usize {
        self.arch.widest_row(&self.mlp)
    }

    /// An error unless the model fits its method: only Fisher-Flow projects its output onto
    /// the sphere's tangent space, and Dirichlet FM supports K up to its tables' bound.
    pub fn validate(&self) -> Result<()> {
        if self.mlp.project != (self.geometry == Geometry::Sphere) {
            return Err(Error::InvalidArgument(format!(
                "the model's output is {}projected but its method is {:?}",
                if self.mlp.project { "" } else { "not " },
                self.geometry
            )));
        }
        if self.geometry == Geometry::Dirichlet {
            dirichlet::check_k(self.mlp.categories)?;
        }
        Ok(())
    }

    fn check_data(&self, data: &DataSource) -> Result<()> {
        let (l, k) = data.shape();
        if l != self.mlp.seq_len || k != self.mlp.categories {
            return Err(Error::Shape(format!(
                "the model is for L={}, K={} but the data have L={l}, K={k}",
                self.mlp.seq_len, self.mlp.categories
            )));
        }
        data.validate()?;
        self.cond.check(data.dataset())
    }
}

/// Training settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Sequences per step.
    pub batch: usize,
    /// Optimizer (AdamW, learning rate, clipping, ...).
    pub optim: OptimConfig,
    /// Minibatch OT coupling.
    pub ot: OtMode,
    /// Seed of the initial parameters and of every random draw.
    pub seed: u64,
    /// Learning-rate schedule (checkpoints written before schedules existed read as constant).
    #[serde(default)]
    pub schedule: LrSchedule,
    /// How OT pairs are taken from the plan (checkpoints written before read as assignment).
    #[serde(default)]
    pub ot_pairing: OtPairing,
}

impl Default for TrainConfig {
    /// The toy experiment: batch 512, AdamW lr 1e-3, no weight decay, grad-norm clip 1, the
    /// rate reduced tenfold on a plateau of the training loss (the reference implementation's
    /// schedule; BENCHMARKS.md found it never worse than a constant rate by more than the
    /// seed-to-seed noise at 2,000 and 4,000 steps, while the cosine decay was, at 2,000 steps
    /// on K = 20).
    fn default() -> Self {
        Self {
            batch: 512,
            optim: OptimConfig::default(),
            ot: OtMode::None,
            seed: 0,
            schedule: super::meta::ScheduleKind::Plateau.schedule(super::meta::DEFAULT_STEPS),
            ot_pairing: OtPairing::Assign,
        }
    }
}

enum Backend<'c> {
    Cpu(Box<CpuExecutor<f32>>),
    Gpu {
        exe: Box<GpuExecutor<'c>>,
        rng: GpuRng,
        /// The whole step; with `host_batches` only the network's part.
        rec: Recorder,
        host_batches: bool,
        /// Whether `rec` draws the batch's labels and signal tracks itself (else the host
        /// uploads them each step).
        device_conditions: bool,
    },
}

/// A Fisher-Flow (or linear baseline) model under training, on the GPU or the CPU.
pub struct Trainer<'c> {
    flow: FlowConfig,
    cfg: TrainConfig,
    model: Network,
    data: DataSource,
    step: u64,
    backend: Backend<'c>,
    /// Losses read back but not yet taken: `(sum, steps)`.
    taken: (f64, u64),
    /// Steps whose loss the executor holds unread.
    unread: u64,
    plateau: PlateauState,
    host: HostBatcher,
}

impl<'c> Trainer<'c> {
    /// A trainer on `device` (`data`: a [`SequenceDataset`](crate::data::SequenceDataset) or any [`DataSource`]).
    pub fn new(
        device: Device<'c>,
        flow: FlowConfig,
        cfg: TrainConfig,
        data: impl Into<DataSource>,
    ) -> Result<Self> {
        let data = data.into();
        flow.check_data(&data)?;
        if cfg.batch == 0 {
            return Err(Error::InvalidArgument("batch size must be positive".into()));
        }
        let on_sphere = matches!(flow.geometry, Geometry::Sphere | Geometry::FisherRaoSimplex);
        if !on_sphere && cfg.ot != OtMode::None {
            return Err(Error::InvalidArgument(
                "minibatch OT uses the sphere's geodesic cost: use it with Fisher-Flow or the Fisher-Rao flow on the simplex".into(),
            ));
        }
        flow.validate()?;
        if let OtMode::Sinkhorn { eps, iters } = cfg.ot {
            if !(eps.is_finite() && eps > 0.0) || iters == 0 {
                return Err(Error::InvalidArgument(format!(
                    "Sinkhorn needs eps > 0 and iters > 0 (got {eps}, {iters})"
                )));
            }
        }
        cfg.schedule.validate()?;
        flow.cond.check_ot(cfg.ot != OtMode::None)?;
        let model = flow.network(cfg.seed)?;
        let backend = match device.gpu() {
            None => Backend::Cpu(Box::new(CpuExecutor::new(
                &model.graph,
                cfg.batch,
                &[model.out],
                Some(model.loss),
                cfg.optim,
            )?)),
            Some(ctx) => {
                let exe = GpuExecutor::new(
                    ctx,
                    &model.graph,
                    cfg.batch,
                    &[model.out],
                    Some(model.loss),
                    cfg.optim,
                )?;
                let rng = GpuRng::new(ctx, cfg.seed, 0);
                // The assignment problem and the Dirichlet paths' Gamma draws are solved and
                // drawn on the host.
                let host_batches = cfg.ot == OtMode::Exact || flow.geometry == Geometry::Dirichlet;
                let mut rec = Recorder::new();
                let device_conditions = !host_batches
                    && record_device_batch(ctx, &mut rec, &exe, &rng, &flow, &cfg, &data)?;
                exe.record_step(&mut rec)?;
                Backend::Gpu {
                    exe: Box::new(exe),
                    rng,
                    rec,
                    host_batches,
                    device_conditions,
                }
            }
        };
        Ok(Self {
            host: HostBatcher::new(&flow, &cfg),
            flow,
            cfg,
            model,
            data,
            step: 0,
            backend,
            taken: (0.0, 0),
            unread: 0,
            plateau: PlateauState::default(),
        })
    }

    /// The model settings.
    pub fn flow_config(&self) -> &FlowConfig {
        &self.flow
    }
    /// The training settings.
    pub fn train_config(&self) -> &TrainConfig {
        &self.cfg
    }
    /// Steps taken so far.
    pub fn steps_done(&self) -> u64 {
        self.step
    }
    /// The network graph and its nodes.
    pub fn model(&self) -> &Network {
        &self.model
    }
    /// Which backend runs the steps.
    pub fn backend_name(&self) -> String {
        self.exe().backend_name()
    }
    /// Dispatches in one GPU step (0 on the CPU).
    pub fn dispatches_per_step(&self) -> usize {
        match &self.backend {
            Backend::Gpu { rec, .. } => rec.dispatches(),
            Backend::Cpu(_) => 0,
        }
    }

    fn exe(&self) -> &dyn Executor {
        match &self.backend {
            Backend::Cpu(e) => e.as_ref(),
            Backend::Gpu { exe, .. } => exe.as_ref(),
        }
    }
    fn exe_mut(&mut self) -> &mut dyn Executor {
        match &mut self.backend {
            Backend::Cpu(e) => e.as_mut(),
            Backend::Gpu { exe, .. } => exe.as_mut(),
        }
    }

    /// The learning rate of the next step (the schedule applied to the optimizer's rate).
    pub fn learning_rate(&self) -> f32 {
        let lr = self.cfg.schedule.lr_at(self.cfg.optim.lr, self.step);
        match self.cfg.schedule {
            LrSchedule::Plateau { .. } => lr * self.plateau.scale,
            _ => lr,
        }
    }

    /// Where the reduce-on-plateau schedule stands.
    pub fn plateau(&self) -> &PlateauState {
        &self.plateau
    }

    /// Run `n` training steps. On the GPU each is one submit and nothing is read back (under
    /// a plateau schedule, the loss once per window and at the end of the call).
    pub fn train_steps(&mut self, n: usize) -> Result<()> {
        for _ in 0..n {
            self.prepare_step()?;
            match &mut self.backend {
                Backend::Cpu(exe) => exe.step()?,
                Backend::Gpu { exe, rec, .. } => {
                    rec.submit(exe.context())?;
                }
            }
            self.step += 1;
            self.unread += 1;
            if let LrSchedule::Plateau {
                factor,
                patience,
                window,
            } = self.cfg.schedule
            {
                if self.step.is_multiple_of(window) {
                    self.read_loss()?;
                    self.plateau.end_window(factor, patience);
                }
            }
        }
        if matches!(self.cfg.schedule, LrSchedule::Plateau { .. }) {
            // A checkpoint then holds the whole window so far.
            self.read_loss()?;
        }
        Ok(())
    }

    /// Read the executor's mean loss of the unread steps into the running sums. A NaN or
    /// infinite loss is an [`Error::NonFinite`].
    fn read_loss(&mut self) -> Result<()> {
        if self.unread == 0 {
            return Ok(());
        }
        let step = self.step;
        if let Some(v) = self.exe_mut().take_mean_loss()? {
            if !v.is_finite() {
                return Err(Error::NonFinite(format!(
                    "the training loss became {v} by step {step}; lower the learning rate or check the data"
                )));
            }
            self.taken.0 += v as f64 * self.unread as f64;
            self.taken.1 += self.unread;
            self.plateau.observe(v as f64, self.unread);
        }
        self.unread = 0;
        Ok(())
    }

    /// Make the batch of the current step available: upload a host-built batch (CPU backend,
    /// exact OT), or point the on-device generator at the step's counter.
    fn prepare_step(&mut self) -> Result<()> {
        let step = self.step;
        if self.cfg.schedule != LrSchedule::Constant {
            let lr = self.learning_rate();
            self.exe_mut().set_lr(lr)?;
        }
        let (host, host_conditions) = match &mut self.backend {
            Backend::Cpu(_) => (true, true),
            Backend::Gpu {
                exe,
                rng,
                host_batches,
                device_conditions,
                ..
            } => {
                if !*host_batches {
                    rng.set_counter(exe.context(), step);
                }
                (*host_batches, !*device_conditions)
            }
        };
        if host {
            let (xt, t, ut) = self.host.fill(&self.flow, &self.cfg, &self.data, step)?;
            let exe: &mut dyn Executor = match &mut self.backend {
                Backend::Cpu(e) => e.as_mut(),
                Backend::Gpu { exe, .. } => exe.as_mut(),
            };
            exe.set_input(Network::X, xt)?;
            exe.set_input(Network::T, t)?;
            exe.set_input(Network::TARGET, ut)?;
        }
        // The labels and signal tracks of the sequences the batch draws, from the host unless
        // the GPU step draws them.
        let Some(d) = self.data.dataset().filter(|_| host_conditions) else {
            return Ok(());
        };
        let labels = batch_labels(&self.flow, &self.cfg, d, step);
        let signal = batch_signal(&self.flow, &self.cfg, d, step);
        if let Some(labels) = labels {
            self.exe_mut().set_input(Network::LABELS, &labels)?;
        }
        if let Some(signal) = signal {
            self.exe_mut().set_input(Network::SIGNAL, &signal)?;
        }
        Ok(())
    }

    /// Run one training step with a timer around every part and return each part's label
    /// and time in nanoseconds: on the GPU every dispatch (timestamp queries); on the CPU the
    /// host batch, every instruction and the optimizer (wall clock).
    pub fn profile_step(&mut self) -> Result<Vec<(String, f64)>> {
        let t0 = std::time::Instant::now();
        self.prepare_step()?;
        let batch_ns = t0.elapsed().as_nanos() as f64;
        let times = match &mut self.backend {
            Backend::Cpu(exe) => {
                let mut t = vec![("host batch".to_string(), batch_ns)];
                t.extend(exe.profile_step()?);
                t
            }
            Backend::Gpu { exe, rec, .. } => rec.run_profiled(exe.context())?,
        };
        self.step += 1;
        self.unread += 1;
        Ok(times)
    }

    /// Mean loss over the steps since the last call (waits for the GPU); `None` when no step
    /// ran. A NaN or infinite loss is an [`Error::NonFinite`].
    pub fn take_mean_loss(&mut self) -> Result<Option<f32>> {
        self.read_loss()?;
        let (sum, steps) = std::mem::take(&mut self.taken);
        Ok((steps > 0).then(|| (sum / steps as f64) as f32))
    }

    /// The network inputs `(x_t, t, u_t)` of the last GPU step (for checking the on-device
    /// batch against [`host_batch`]); an error on the CPU backend.
    pub fn gpu_batch(&self) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
        Ok((
            self.gpu_input(Network::X)?,
            self.gpu_input(Network::T)?,
            self.gpu_input(Network::TARGET)?,
        ))
    }

    /// The network input `name` ([`Network::X`], [`Network::LABELS`], …) of the last GPU step;
    /// an error on the CPU backend or for an input the network does not have.
    pub fn gpu_input(&self, name: &str) -> Result<Vec<f32>> {
        match &self.backend {
            Backend::Gpu { exe, .. } => exe.input_tensor(name)?.to_vec(exe.context()),
            Backend::Cpu(_) => Err(Error::InvalidArgument(
                "the CPU backend keeps no GPU batch".into(),
            )),
        }
    }

    /// The current parameters.
    pub fn params(&self) -> Result<Vec<NamedTensor>> {
        self.exe().params()
    }

    /// Everything needed to resume: parameters, Adam moments, step, model and training
    /// settings. Errors when a parameter is not finite (a diverged model is never saved).
    pub fn checkpoint(&self) -> Result<Checkpoint> {
        let params = self.params()?;
        let mut ck = Checkpoint::new();
        for p in &params {
            if p.data.iter().any(|v| !v.is_finite()) {
                return Err(Error::NonFinite(format!(
                    "parameter {} is not finite at step {}; not saving",
                    p.name, self.step
                )));
            }
            ck.insert(&p.name, &p.shape, p.data.clone())?;
        }
        let opt = self.exe().optimizer_state()?;
        for t in &opt.tensors {
            ck.insert(&t.name, &t.shape, t.data.clone())?;
        }
        write_model_meta(&mut ck, &self.flow)?;
        ck.set_meta(META_TRAIN, json(&self.cfg)?);
        ck.set_meta(META_STEP, self.step.to_string());
        ck.set_meta(META_OPT_STEP, opt.step.to_string());
        if matches!(self.cfg.schedule, LrSchedule::Plateau { .. }) {
            ck.set_meta(super::meta::META_PLATEAU, json(&self.plateau)?);
        }
        Ok(ck)
    }

    /// Restore parameters, optimizer state and step from `ck`, which must have been written
    /// for the same model and training settings.
    pub fn restore(&mut self, ck: &Checkpoint) -> Result<()> {
        let flow: FlowConfig = parse_meta(ck, META_MODEL)?;
        if flow != self.flow {
            return Err(Error::Checkpoint(format!(
                "the checkpoint is for model {flow:?}, not {:?}",
                self.flow
            )));
        }
        let cfg: TrainConfig = parse_meta(ck, META_TRAIN)?;
        if cfg != self.cfg {
            return Err(Error::Checkpoint(format!(
                "the checkpoint was trained with {cfg:?}; resuming needs the same settings, got {:?}",
                self.cfg
            )));
        }
        let step: u64 = parse_num(ck, META_STEP)?;
        let opt_step: u64 = parse_num(ck, META_OPT_STEP)?;
        let params = params_from(ck, &self.model)?;
        let mut moments = Vec::new();
        for p in self.model.graph.params() {
            for prefix in ["adam_m.", "adam_v."] {
                let name = format!("{prefix}{}", p.name);
                moments.push(NamedTensor {
                    data: ck.expect(&name, &p.shape)?.to_vec(),
                    name,
                    shape: p.shape.clone(),
                });
            }
        }
        let exe = self.exe_mut();
        exe.load_params(&params)?;
        exe.load_optimizer_state(&OptimizerState {
            step: opt_step,
            tensors: moments,
        })?;
        self.step = step;
        if ck.metadata.contains_key(super::meta::META_PLATEAU) {
            self.plateau = parse_meta(ck, super::meta::META_PLATEAU)?;
        }
        Ok(())
    }
}

use super::meta::{json, parse_num};
pub(crate) use super::meta::{params_from, parse_meta, write_model_meta};
pub use super::meta::{LrSchedule, META_DATA, META_MODEL, META_OPT_STEP, META_STEP, META_TRAIN};
