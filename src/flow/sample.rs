//! Sampling a trained flow: integrate `dx/dt = v_θ(x, t)` from the prior at `t = 0` to `t = 1`
//! along geodesics (tangent Euler, midpoint or RK4 on the product of spheres; Euler-type steps
//! on the simplex for the linear baseline), then read out `argmax x²`.
//!
//! On the GPU the whole integration of a chunk of samples is one recording (prior, every
//! network evaluation, every step, argmax) replayed once per chunk with a new RNG counter;
//! chunks keep every buffer inside the adapter's binding limits. The network runs as a
//! [`FieldNet`] with weights and activations in f32 or, where the adapter has `SHADER_F16`,
//! f16 ([`SampleConfig::precision`]); the points and the geodesic steps stay f32.

use crate::autodiff::{CpuExecutor, Executor, NamedTensor, OptimConfig};
use crate::checkpoint::Checkpoint;
use crate::data::SequenceDataset;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::flow::field::FieldNet;
use crate::flow::kernels as fk;
use crate::flow::train::{
    params_from, parse_meta, write_model_meta, FlowConfig, Geometry, Trainer, META_MODEL,
};
use crate::gpu::{GpuContext, GpuTensor, Recorder};
use crate::kernels::rng::{self, GpuRng};
use crate::kernels::{sphere, Precision};
use crate::nn::Mlp;

/// Philox stream of the sampler's prior.
pub const STREAM_SAMPLE_PRIOR: u32 = 16;

/// ODE integrator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Solver {
    /// One field evaluation per step.
    Euler,
    /// Two evaluations per step (second order).
    Midpoint,
    /// Four evaluations per step (classic Runge–Kutta).
    Rk4,
}

impl std::str::FromStr for Solver {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "euler" => Ok(Solver::Euler),
            "midpoint" => Ok(Solver::Midpoint),
            "rk4" => Ok(Solver::Rk4),
            _ => Err(Error::InvalidArgument(format!(
                "unknown solver {s:?}; use euler, midpoint or rk4"
            ))),
        }
    }
}

/// Sampling settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleConfig {
    /// Number of sequences.
    pub n: usize,
    /// Integration steps from t = 0 to 1.
    pub steps: usize,
    /// Integrator.
    pub solver: Solver,
    /// Seed of the prior draws.
    pub seed: u64,
    /// Sequences integrated together (`None`: chosen from the adapter's limits).
    pub chunk: Option<usize>,
    /// Storage of the network's weights and activations on the GPU (f16 needs the adapter's
    /// `SHADER_F16`; the CPU sampler runs f32 only).
    pub precision: Precision,
}

impl Default for SampleConfig {
    /// 100 tangent-Euler steps, as in the paper.
    fn default() -> Self {
        Self {
            n: 1000,
            steps: 100,
            solver: Solver::Euler,
            seed: 0,
            chunk: None,
            precision: Precision::F32,
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
        let m = Mlp::new(config.mlp, seed)?;
        Ok(Self {
            config,
            params: m.graph.initial_params(),
        })
    }
    /// Read the model from a checkpoint (a training checkpoint or a model-only one).
    pub fn from_checkpoint(ck: &Checkpoint) -> Result<Self> {
        let config: FlowConfig = parse_meta(ck, META_MODEL)?;
        let m = Mlp::new(config.mlp, 0)?;
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

/// Sequences integrated together: a multiple of 4, at most 8192, and small enough that the
/// widest activation fits one storage binding.
fn chunk_size(ctx: Option<&GpuContext>, model: &FlowModel, cfg: &SampleConfig) -> usize {
    let m = &model.config.mlp;
    let widest = (m.hidden.max(m.width()) + m.time_dim) * 4;
    let limit = ctx.map_or(u64::MAX, |c| c.limits().max_storage_buffer_binding_size) as usize;
    let by_limit = (limit / widest).max(4);
    let want = cfg
        .chunk
        .unwrap_or(8192)
        .min(cfg.n.div_ceil(4) * 4)
        .min(by_limit);
    (want.max(4) / 4) * 4
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
    let (l, k) = (model.config.mlp.seq_len, model.config.mlp.categories);
    let mut tokens = Vec::with_capacity(cfg.n.saturating_mul(l).min(1 << 24));
    sample_into(device, model, cfg, &mut |rows| {
        tokens.extend_from_slice(rows);
        progress(tokens.len() / l, cfg.n);
        Ok(())
    })?;
    SequenceDataset::new(tokens, cfg.n, l, k, None)
}

/// [`sample`] chunk by chunk: `sink` receives the tokens of each chunk's sequences (whole rows,
/// `cfg.n` sequences in all) as soon as they are drawn, so no more than a chunk is held; an
/// error from `sink` stops the sampling.
pub fn sample_into(
    device: Device,
    model: &FlowModel,
    cfg: &SampleConfig,
    sink: &mut dyn FnMut(&[u32]) -> Result<()>,
) -> Result<()> {
    match device {
        Device::Gpu(ctx) => sample_gpu(ctx, model, cfg, sink),
        Device::Cpu => sample_cpu(model, cfg, sink),
    }
}

fn sample_gpu(
    ctx: &GpuContext,
    model: &FlowModel,
    cfg: &SampleConfig,
    sink: &mut dyn FnMut(&[u32]) -> Result<()>,
) -> Result<()> {
    check(cfg)?;
    let (l, k) = (model.config.mlp.seq_len, model.config.mlp.categories);
    let c = chunk_size(Some(ctx), model, cfg);
    let net = FieldNet::new(ctx, model, c, cfg.precision)?;
    let shape = [c, l, k];
    let x = net.input();
    let v = net.output();
    let start = GpuTensor::<f32>::zeros(ctx, &shape)?;
    let acc = GpuTensor::<f32>::zeros(ctx, &shape)?;
    let ids = GpuTensor::<u32>::zeros(ctx, &[c * l])?;
    let rng = GpuRng::new(ctx, cfg.seed, 0);
    let geometry = model.config.geometry;
    let step = |rec: &mut Recorder,
                from: &GpuTensor,
                vel: &GpuTensor,
                dt: f32,
                out: &GpuTensor|
     -> Result<()> {
        match geometry {
            Geometry::Sphere => sphere::euler_step(ctx, rec, from, vel, dt, out),
            Geometry::Simplex => fk::simplex_step(ctx, rec, from, vel, dt, out),
        }
    };
    let bytes = x.bytes();
    let mut rec = Recorder::new();
    match geometry {
        Geometry::Sphere => rng::sphere_prior(ctx, &mut rec, &rng, STREAM_SAMPLE_PRIOR, x)?,
        Geometry::Simplex => rng::dirichlet1(ctx, &mut rec, &rng, STREAM_SAMPLE_PRIOR, x)?,
    }
    let dt = 1.0 / cfg.steps as f32;
    let field = |rec: &mut Recorder, time: f32| net.record(rec, time);
    for s in 0..cfg.steps {
        let t0 = s as f32 * dt;
        // `start` holds x at the beginning of the step; stages write the network input `x`.
        rec.copy(x.buffer(), 0, start.buffer(), 0, bytes);
        match cfg.solver {
            Solver::Euler => {
                field(&mut rec, t0)?;
                step(&mut rec, &start, v, dt, x)?;
            }
            Solver::Midpoint => {
                field(&mut rec, t0)?;
                step(&mut rec, &start, v, 0.5 * dt, x)?;
                field(&mut rec, t0 + 0.5 * dt)?;
                step(&mut rec, &start, v, dt, x)?;
            }
            Solver::Rk4 => {
                field(&mut rec, t0)?;
                rec.copy(v.buffer(), 0, acc.buffer(), 0, bytes);
                step(&mut rec, &start, v, 0.5 * dt, x)?;
                field(&mut rec, t0 + 0.5 * dt)?;
                fk::axpby(ctx, &mut rec, 2.0, v, 1.0, &acc)?;
                step(&mut rec, &start, v, 0.5 * dt, x)?;
                field(&mut rec, t0 + 0.5 * dt)?;
                fk::axpby(ctx, &mut rec, 2.0, v, 1.0, &acc)?;
                step(&mut rec, &start, v, dt, x)?;
                field(&mut rec, t0 + dt)?;
                fk::axpby(ctx, &mut rec, 1.0, v, 1.0, &acc)?;
                step(&mut rec, &start, &acc, dt / 6.0, x)?;
            }
        }
    }
    fk::argmax(ctx, &mut rec, x, &ids)?;
    let mut rng = rng;
    let mut done = 0;
    let mut chunk = 0u64;
    while done < cfg.n {
        rng.set_counter(ctx, chunk);
        rec.submit(ctx)?;
        let got = ids.to_vec(ctx)?;
        let rows = (cfg.n - done).min(c);
        sink(&got[..rows * l])?;
        done += rows;
        chunk += 1;
    }
    Ok(())
}

/// The CPU backend's sampler: the same integrators, in f64 for the manifold steps.
fn sample_cpu(
    model: &FlowModel,
    cfg: &SampleConfig,
    sink: &mut dyn FnMut(&[u32]) -> Result<()>,
) -> Result<()> {
    check(cfg)?;
    if cfg.precision != Precision::F32 {
        return Err(Error::InvalidArgument(format!(
            "the CPU sampler runs in f32 only; {} sampling needs the GPU backend",
            cfg.precision
        )));
    }
    let mlp = Mlp::new(model.config.mlp, 0)?;
    let (l, k) = (model.config.mlp.seq_len, model.config.mlp.categories);
    let c = chunk_size(None, model, cfg).min(1024);
    let mut exe = CpuExecutor::<f32>::new(&mlp.graph, c, &[mlp.out], None, OptimConfig::default())?;
    exe.load_params(&model.params)?;
    let geometry = model.config.geometry;
    let mut field = |x: &[f32], time: f32| -> Result<Vec<f32>> {
        exe.set_input(Mlp::X, x)?;
        exe.set_input(Mlp::T, &vec![time; c])?;
        exe.forward()?;
        exe.output(mlp.out)
    };
    let step = |from: &[f32], vel: &[f32], dt: f32| -> Vec<f32> {
        match geometry {
            Geometry::Sphere => {
                let f = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<f64>>();
                sphere::reference::euler_step(&f(from), &f(vel), dt as f64, k)
                    .into_iter()
                    .map(|a| a as f32)
                    .collect()
            }
            Geometry::Simplex => {
                let mut out = from.to_vec();
                fk::simplex_step_cpu(&mut out, vel, k, dt);
                out
            }
        }
    };
    let dt = 1.0 / cfg.steps as f32;
    let mut done = 0;
    let mut chunk = 0u64;
    while done < cfg.n {
        let mut x = match geometry {
            Geometry::Sphere => {
                rng::cpu::sphere_prior(cfg.seed, chunk, STREAM_SAMPLE_PRIOR, c * l, k)
            }
            Geometry::Simplex => {
                rng::cpu::dirichlet1(cfg.seed, chunk, STREAM_SAMPLE_PRIOR, c * l, k)
            }
        };
        for s in 0..cfg.steps {
            let t0 = s as f32 * dt;
            x = match cfg.solver {
                Solver::Euler => step(&x, &field(&x, t0)?, dt),
                Solver::Midpoint => {
                    let mid = step(&x, &field(&x, t0)?, 0.5 * dt);
                    step(&x, &field(&mid, t0 + 0.5 * dt)?, dt)
                }
                Solver::Rk4 => {
                    let k1 = field(&x, t0)?;
                    let k2 = field(&step(&x, &k1, 0.5 * dt), t0 + 0.5 * dt)?;
                    let k3 = field(&step(&x, &k2, 0.5 * dt), t0 + 0.5 * dt)?;
                    let k4 = field(&step(&x, &k3, dt), t0 + dt)?;
                    let comb: Vec<f32> = (0..x.len())
                        .map(|i| k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i])
                        .collect();
                    step(&x, &comb, dt / 6.0)
                }
            };
        }
        let got = fk::argmax_cpu(&x, k);
        let rows = (cfg.n - done).min(c);
        sink(&got[..rows * l])?;
        done += rows;
        chunk += 1;
    }
    Ok(())
}
