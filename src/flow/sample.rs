//! Sampling a trained flow: integrate `dx/dt = v_θ(x, t)` from the prior at `t = 0` to `t = 1`
//! with one of the integrators of [`ode`](super::ode) (geodesic Euler, midpoint, RK4 or
//! adaptive Dormand–Prince on the product of spheres; the same methods in the flat geometry of
//! the simplex baseline), then read out `argmax x²`.
//!
//! On the GPU the whole integration of a chunk of samples is one recording (prior, every
//! network evaluation, every step, argmax) replayed once per chunk with a new RNG counter
//! (adaptive steps are decided on the host between steps); chunks keep every buffer inside the
//! adapter's binding limits. The network runs as a [`FieldNet`] (the training graph compiled
//! for inference) with weights and activations in f32 or, where the adapter has `SHADER_F16`,
//! f16 ([`SampleConfig::precision`]); the points and the geodesic steps stay f32. The CPU
//! backend runs the same integrators on the same graph's inference program. The per-sample
//! inputs of a conditioned model (class labels, signal tracks) are written into the network's
//! inputs chunk by chunk, before each chunk's integration.

use std::sync::Arc;

use crate::autodiff::NamedTensor;
use crate::checkpoint::Checkpoint;
use crate::data::{Labels, SequenceDataset, SignalTracks};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::flow::cond::{chunk_signal, SampleClasses};
use crate::flow::devices::guided;
use crate::flow::devices::{CpuOde, GpuOde};
use crate::flow::field::FieldNet;
use crate::flow::methods::{self, CpuField, GpuField};
pub use crate::flow::ode::Solver;
use crate::flow::ode::{integrate_adaptive, integrate_fixed, Adaptive, OdeDevice, VectorField};
use crate::flow::train::{
    params_from, parse_meta, write_model_meta, FlowConfig, Trainer, META_MODEL,
};
use crate::gpu::{GpuContext, GpuTensor};
use crate::kernels::rng::GpuRng;
use crate::kernels::Precision;

/// Philox stream of the sampler's prior.
pub const STREAM_SAMPLE_PRIOR: u32 = 16;

/// Sampling settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleConfig {
    /// Number of sequences.
    pub n: usize,
    /// Integration steps from t = 0 to 1 (fixed-step solvers).
    pub steps: usize,
    /// Integrator.
    pub solver: Solver,
    /// Tolerances of [`Solver::Dopri5`].
    pub adaptive: Adaptive,
    /// Seed of the prior draws.
    pub seed: u64,
    /// Sequences integrated together (`None`: chosen from the adapter's limits).
    pub chunk: Option<usize>,
    /// Storage of the network's weights and activations on the GPU (f16 needs the adapter's
    /// `SHADER_F16`; the CPU sampler runs f32 only).
    pub precision: Precision,
    /// The classes of the samples (class-conditional models; default: the null class).
    pub classes: SampleClasses,
    /// Classifier-free guidance weight `w`: the field is `v_null + w·(v_c − v_null)`
    /// (1: the class-conditional field alone, one evaluation per step; otherwise two, the
    /// class's and the null class's, in one network call of twice the rows).
    pub guidance: f32,
    /// The per-position signal track of each sample, `n` tracks (models conditioned on a
    /// track; shared, not copied, by clones).
    pub signal: Option<Arc<SignalTracks>>,
}

impl Default for SampleConfig {
    /// 100 tangent-Euler steps, as in the paper.
    fn default() -> Self {
        Self {
            n: 1000,
            steps: 100,
            solver: Solver::Euler,
            adaptive: Adaptive::default(),
            seed: 0,
            chunk: None,
            precision: Precision::F32,
            classes: SampleClasses::Null,
            guidance: 1.0,
            signal: None,
        }
    }
}

/// A trained vector field: settings and parameters.
#[derive(Clone, Debug)]
pub struct FlowModel {
    /// Model settings.
    pub config: FlowConfig,
    /// Parameters by name.
    pub params: Vec<NamedTensor>,
}

impl FlowModel {
    /// The model as it stands in a trainer.
    pub fn from_trainer(t: &Trainer<'_>) -> Result<Self> {
        Ok(Self {
            config: *t.flow_config(),
            params: t.params()?,
        })
    }
    /// A freshly initialised (untrained) model.
    pub fn untrained(config: FlowConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        let m = config.network(seed)?;
        Ok(Self {
            config,
            params: m.graph.initial_params(),
        })
    }
    /// Read the model from a checkpoint (a training checkpoint or a model-only one).
    pub fn from_checkpoint(ck: &Checkpoint) -> Result<Self> {
        let config: FlowConfig = parse_meta(ck, META_MODEL)?;
        config.validate().map_err(|e| {
            Error::Checkpoint(format!(
                "the checkpoint's model does not fit its method: {e}"
            ))
        })?;
        let m = config.network(0)?;
        Ok(Self {
            config,
            params: params_from(ck, &m)?,
        })
    }
    /// A model-only checkpoint.
    pub fn to_checkpoint(&self) -> Result<Checkpoint> {
        let mut ck = Checkpoint::new();
        for p in &self.params {
            ck.insert(&p.name, &p.shape, p.data.clone())?;
        }
        write_model_meta(&mut ck, &self.config)?;
        Ok(ck)
    }
}

fn check(cfg: &SampleConfig) -> Result<()> {
    if cfg.n == 0 || cfg.steps == 0 {
        return Err(Error::InvalidArgument(format!(
            "need at least one sample and one step (n = {}, steps = {})",
            cfg.n, cfg.steps
        )));
    }
    if cfg.chunk == Some(0) {
        return Err(Error::InvalidArgument("chunk size must be positive".into()));
    }
    Ok(())
}

/// Whether sampling `model` with `cfg` evaluates the null-class field too (guidance).
fn is_guided(model: &FlowModel, cfg: &SampleConfig) -> bool {
    let cond = model.config.cond;
    guided((cond.classes > 0).then_some(&cond), cfg.guidance)
}

/// Sequences integrated together: a multiple of 4, at most 8192, and small enough that the
/// widest activation (of twice the rows when guided) fits one storage binding.
fn chunk_size(ctx: Option<&GpuContext>, model: &FlowModel, cfg: &SampleConfig) -> usize {
    let per_row = if is_guided(model, cfg) { 2 } else { 1 };
    let widest = model.config.widest_row() * 4 * per_row;
    let limit = ctx.map_or(u64::MAX, |c| c.limits().max_storage_buffer_binding_size) as usize;
    let by_limit = (limit / widest).max(4);
    let want = cfg
        .chunk
        .unwrap_or(8192)
        .min(cfg.n.div_ceil(4) * 4)
        .min(by_limit);
    (want.max(4) / 4) * 4
}

/// What a sampling run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SampleStats {
    /// Field evaluations per sequence (over the whole integration).
    pub evaluations: usize,
    /// Chunks of sequences integrated.
    pub chunks: usize,
}

/// Draw `cfg.n` sequences from `model` on `device`.
pub fn sample(device: Device, model: &FlowModel, cfg: &SampleConfig) -> Result<SequenceDataset> {
    sample_with_progress(device, model, cfg, &mut |_, _| {})
}

/// [`sample`], calling `progress(done, n)` after every chunk of sequences.
pub fn sample_with_progress(
    device: Device,
    model: &FlowModel,
    cfg: &SampleConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SequenceDataset> {
    Ok(sample_with_stats(device, model, cfg, progress)?.0)
}

/// [`sample_with_progress`], also returning what the integration did.
pub fn sample_with_stats(
    device: Device,
    model: &FlowModel,
    cfg: &SampleConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(SequenceDataset, SampleStats)> {
    let (l, k) = (model.config.mlp.seq_len, model.config.mlp.categories);
    let mut tokens = Vec::with_capacity(cfg.n.saturating_mul(l).min(1 << 24));
    let stats = sample_into(device, model, cfg, &mut |rows| {
        tokens.extend_from_slice(rows);
        progress(tokens.len() / l, cfg.n);
        Ok(())
    })?;
    let mut data = SequenceDataset::new(tokens, cfg.n, l, k, None)?;
    data.labels = sample_labels(model, cfg)?;
    Ok((data, stats))
}

/// The labels of the samples of `cfg` for sequences `0..cfg.n` (`None` when they are drawn
/// for the null class), as the samplers attach them.
pub fn sample_labels(model: &FlowModel, cfg: &SampleConfig) -> Result<Option<Labels>> {
    let ids: Option<Vec<u32>> = (0..cfg.n).map(|i| cfg.classes.of(i)).collect();
    ids.filter(|v| !v.is_empty())
        .map(|v| Labels::new(v, Some(model.config.cond.classes)))
        .transpose()
}

/// [`sample`] chunk by chunk: `sink` receives the tokens of each chunk's sequences (whole rows,
/// `cfg.n` sequences in all) as soon as they are drawn, so no more than a chunk is held; an
/// error from `sink` stops the sampling.
pub fn sample_into(
    device: Device,
    model: &FlowModel,
    cfg: &SampleConfig,
    sink: &mut dyn FnMut(&[u32]) -> Result<()>,
) -> Result<SampleStats> {
    check(cfg)?;
    model
        .config
        .cond
        .check_sampling(&cfg.classes, cfg.guidance, cfg.n)?;
    let len = model.config.mlp.seq_len;
    let signal = cfg.signal.as_deref();
    model.config.cond.check_sample_signal(signal, cfg.n, len)?;
    match device {
        Device::Gpu(ctx) => sample_gpu(ctx, model, cfg, sink),
        Device::Cpu => sample_cpu(model, cfg, sink),
    }
}

/// Integrate `a` (holding the prior) from 0 to `end`; returns the buffer holding the result
/// and the field evaluations it took.
#[allow(clippy::too_many_arguments)]
fn integrate<D: OdeDevice, F: VectorField<D>>(
    dev: &mut D,
    field: &mut F,
    cfg: &SampleConfig,
    fold: bool,
    end: f32,
    a: &D::Buf,
    b: &D::Buf,
) -> Result<(D::Buf, usize)> {
    match cfg.solver {
        Solver::Dopri5 => {
            let (x, st) = integrate_adaptive(dev, field, a, b, 0.0, end, &cfg.adaptive, fold)?;
            Ok((x, st.evaluations))
        }
        s => {
            let x = integrate_fixed(dev, field, s, a, b, 0.0, end, cfg.steps, fold)?;
            Ok((x, cfg.steps * s.tableau().stages()))
        }
    }
}

/// Hand the first rows of a chunk's tokens `got` to `sink`, up to `n` sequences of `l` in all
/// (`done` so far); returns the new count.
fn emit(
    sink: &mut dyn FnMut(&[u32]) -> Result<()>,
    got: &[u32],
    done: usize,
    n: usize,
    l: usize,
) -> Result<usize> {
    let rows = (n - done).min(got.len() / l);
    sink(&got[..rows * l])?;
    Ok(done + rows)
}

fn sample_gpu(
    ctx: &GpuContext,
    model: &FlowModel,
    cfg: &SampleConfig,
    sink: &mut dyn FnMut(&[u32]) -> Result<()>,
) -> Result<SampleStats> {
    let (l, k) = (model.config.mlp.seq_len, model.config.mlp.categories);
    let c = chunk_size(Some(ctx), model, cfg);
    let geometry = model.config.geometry;
    let mut dev = GpuOde::new(ctx, geometry, [c, l, k]);
    let guided = is_guided(model, cfg);
    let net = FieldNet::new(ctx, model, c * if guided { 2 } else { 1 }, cfg.precision)?;
    let mut field = GpuField::new(&mut dev, model, net, cfg.guidance)?;
    let cond = model.config.cond;
    let (a, b) = (dev.buffer()?, dev.buffer()?);
    let ids = GpuTensor::<u32>::zeros(ctx, &[c * l])?;
    let mut rng = GpuRng::new(ctx, cfg.seed, 0);
    let (fold, end) = (methods::folds(geometry), methods::t_end(geometry));
    let prior = |dev: &mut GpuOde<'_>, rng: &GpuRng| {
        methods::prior_gpu(ctx, &mut dev.rec, rng, geometry, STREAM_SAMPLE_PRIOR, &a)
    };
    let mut stats = SampleStats::default();
    if cfg.solver != Solver::Dopri5 {
        // One recording for the whole integration, replayed per chunk.
        prior(&mut dev, &rng)?;
        let (x, evals) = integrate(&mut dev, &mut field, cfg, fold, end, &a, &b)?;
        field.readout(&mut dev, &x, end, &ids)?;
        stats.evaluations = evals;
    }
    let mut done = 0;
    while done < cfg.n {
        rng.set_counter(ctx, stats.chunks as u64);
        (field.net()).set_labels(&cond.chunk_labels(&cfg.classes, done, c, guided))?;
        if let Some(s) = &cfg.signal {
            field.net().set_signal(&chunk_signal(s, done, c, guided))?;
        }
        if cfg.solver == Solver::Dopri5 {
            prior(&mut dev, &rng)?;
            let (x, evals) = integrate(&mut dev, &mut field, cfg, fold, end, &a, &b)?;
            field.readout(&mut dev, &x, end, &ids)?;
            std::mem::take(&mut dev.rec).submit(ctx)?;
            stats.evaluations = stats.evaluations.max(evals);
        } else {
            dev.rec.submit(ctx)?;
        }
        done = emit(sink, &ids.to_vec(ctx)?, done, cfg.n, l)?;
        stats.chunks += 1;
    }
    Ok(stats)
}

/// The CPU backend's sampler: the same integrators on the model's inference program, the
/// manifold maths in f64.
fn sample_cpu(
    model: &FlowModel,
    cfg: &SampleConfig,
    sink: &mut dyn FnMut(&[u32]) -> Result<()>,
) -> Result<SampleStats> {
    if cfg.precision != Precision::F32 {
        return Err(Error::InvalidArgument(format!(
            "the CPU sampler runs in f32 only; {} sampling needs the GPU backend",
            cfg.precision
        )));
    }
    let (l, k) = (model.config.mlp.seq_len, model.config.mlp.categories);
    let c = chunk_size(None, model, cfg).min(1024);
    let geometry = model.config.geometry;
    let mut dev = CpuOde::new(geometry, c * l * k, k);
    let mut field = CpuField::new(&mut dev, model, c, cfg.guidance)?;
    let (cond, guided) = (model.config.cond, is_guided(model, cfg));
    let (a, b) = (dev.buffer()?, dev.buffer()?);
    let (fold, end) = (methods::folds(geometry), methods::t_end(geometry));
    let mut stats = SampleStats::default();
    let mut done = 0;
    while done < cfg.n {
        let chunk = stats.chunks as u64;
        let labels = cond.chunk_labels(&cfg.classes, done, c, guided);
        field.net().set_labels(&labels)?;
        if let Some(s) = &cfg.signal {
            field.net().set_signal(&chunk_signal(s, done, c, guided))?;
        }
        let prior = methods::prior_cpu(geometry, cfg.seed, chunk, STREAM_SAMPLE_PRIOR, c * l, k);
        dev.bufs[a] = prior;
        let (x, evals) = integrate(&mut dev, &mut field, cfg, fold, end, &a, &b)?;
        let ids = field.readout(&mut dev, x, end)?;
        done = emit(sink, &ids, done, cfg.n, l)?;
        stats.evaluations = stats.evaluations.max(evals);
        stats.chunks += 1;
    }
    Ok(stats)
}
