//! Fisher-Flow end to end: the whole training step (on-device batch: Philox draws, one-hot
//! gather, fused interpolant and target, then forward, backward, clipping and AdamW in one
//! submit) and the sampler (the whole integration in one submit), each against the CPU
//! backend measured in the same run; the f16 sampler against the f32 one.

use std::time::Instant;

use crate::autodiff::{Executor, GpuExecutor, OptimConfig};
use crate::bench::time_recording;
use crate::bench::Measurement;
use crate::data::toy::ToyTarget;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::flow::FieldNet;
use crate::flow::{sample, FlowConfig, FlowModel, Geometry, SampleConfig, TrainConfig, Trainer};
use crate::gpu::{GpuContext, Recorder};
use crate::kernels::Precision;

fn steps_per_s(tr: &mut Trainer<'_>, steps: usize) -> Result<f64> {
    tr.train_steps(2)?;
    tr.take_mean_loss()?;
    let t0 = Instant::now();
    tr.train_steps(steps)?;
    tr.take_mean_loss()?; // waits for the GPU
    Ok(steps as f64 / t0.elapsed().as_secs_f64())
}

/// Sizes of the Fisher-Flow benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowBenchSize {
    /// Hidden width of the MLP.
    pub hidden: usize,
    /// Sequences per training step.
    pub batch: usize,
    /// Timed training steps (after two untimed ones).
    pub steps: usize,
    /// Sequences drawn by the timed sampler run.
    pub samples: usize,
    /// Euler steps of the sampler.
    pub sample_steps: usize,
}

/// Environment variable overriding [`FlowBenchSize`] fields, e.g.
/// `FISHERFLOW_BENCH_FLOW=steps=10,samples=1024` (keys: `hidden`, `batch`, `steps`,
/// `samples`, `sample_steps`).
pub const SIZE_ENV: &str = "FISHERFLOW_BENCH_FLOW";

impl FlowBenchSize {
    /// The toy model (hidden 512, batch 512, 20 steps, 4096 samples, 100 Euler steps); `quick`:
    /// hidden 128, batch 128, 5 steps, 512 samples, 20 Euler steps.
    pub fn preset(quick: bool) -> Self {
        if quick {
            Self {
                hidden: 128,
                batch: 128,
                steps: 5,
                samples: 512,
                sample_steps: 20,
            }
        } else {
            Self {
                hidden: 512,
                batch: 512,
                steps: 20,
                samples: 4096,
                sample_steps: 100,
            }
        }
    }

    /// `self` with the `key=value` pairs of `spec` (comma-separated) applied; an error for an
    /// unknown key or a value that is not a positive integer.
    pub fn with_overrides(mut self, spec: &str) -> Result<Self> {
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| {
                Error::Parse(format!("{SIZE_ENV}: expected key=value, got {part:?}"))
            })?;
            let v: usize = value
                .trim()
                .parse()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| {
                    Error::Parse(format!(
                        "{SIZE_ENV}: {key} must be a positive integer, got {value:?}"
                    ))
                })?;
            match key.trim() {
                "hidden" => self.hidden = v,
                "batch" => self.batch = v,
                "steps" => self.steps = v,
                "samples" => self.samples = v,
                "sample_steps" => self.sample_steps = v,
                k => {
                    return Err(Error::Parse(format!(
                        "{SIZE_ENV}: unknown key {k:?}; keys: hidden, batch, steps, samples, sample_steps"
                    )))
                }
            }
        }
        Ok(self)
    }

    /// The preset with the overrides of [`SIZE_ENV`] when it is set.
    pub fn from_env(quick: bool) -> Result<Self> {
        let base = Self::preset(quick);
        match std::env::var(SIZE_ENV) {
            Ok(spec) => base.with_overrides(&spec),
            Err(_) => Ok(base),
        }
    }
}

/// One evaluation of the vector field for `rows` sequences: the sampler's [`FieldNet`] in f32
/// (and f16 where the adapter has it) against the training graph's compiled forward pass
/// ([`GpuExecutor::compile_forward`]), the way the sampler evaluated the network before.
fn field_rows(ctx: &GpuContext, model: &FlowModel, rows: usize) -> Result<Vec<Measurement>> {
    let rows = rows.div_ceil(4) * 4;
    let mlp = model.config.network(0)?;
    let mut holder =
        GpuExecutor::new(ctx, &mlp.graph, 4, &[mlp.out], None, OptimConfig::default())?;
    holder.load_params(&model.params)?;
    let fwd = holder.compile_forward(rows, &[mlp.out])?;
    let base = time_recording(ctx, fwd.recording(), 1, 5)?;
    let per_s = |t: f64| rows as f64 / t;
    let device = ctx.describe();
    let h = model.config.mlp.hidden;
    let mut out = Vec::new();
    for p in [Precision::F32, Precision::F16] {
        if p == Precision::F16 && !ctx.has_f16() {
            continue;
        }
        let net = FieldNet::new(ctx, model, rows, p)?;
        let mut rec = Recorder::new();
        net.record(&mut rec, 0.5)?;
        let t = time_recording(ctx, &rec, 1, 5)?;
        out.push(Measurement::new(
            "flow",
            &format!(
                "field evaluation, {p} FieldNet ({} dispatches), {rows} rows, H={h}",
                rec.dispatches()
            ),
            per_s(t.best_s()),
            "rows/s",
            &format!(
                "autodiff forward ({} dispatches)",
                fwd.recording().dispatches()
            ),
            per_s(base.best_s()),
            &device,
            t.timer(),
        ));
    }
    Ok(out)
}

/// Samples per second of the GPU sampler with settings `sc`, after a tiny untimed run that
/// compiles its kernels.
fn samples_per_s(ctx: &GpuContext, model: &FlowModel, sc: &SampleConfig) -> Result<f64> {
    let warm = SampleConfig {
        n: 8,
        steps: 2,
        ..sc.clone()
    };
    sample(Device::Gpu(ctx), model, &warm)?;
    let t0 = Instant::now();
    sample(Device::Gpu(ctx), model, sc)?;
    Ok(sc.n as f64 / t0.elapsed().as_secs_f64())
}

/// Run the benchmark at the sizes of [`FlowBenchSize::from_env`].
pub fn run(ctx: &GpuContext, quick: bool) -> Result<Vec<Measurement>> {
    run_with(ctx, FlowBenchSize::from_env(quick)?)
}

/// Run the benchmark on the toy target (L = 4, K = 20) at the given sizes.
pub fn run_with(ctx: &GpuContext, size: FlowBenchSize) -> Result<Vec<Measurement>> {
    let FlowBenchSize {
        hidden,
        batch,
        steps,
        samples: n,
        sample_steps,
    } = size;
    let target = ToyTarget::from_spec("toy:L=4,K=20")?;
    let data = target.sample(10_000, 0)?;
    let flow = FlowConfig::new(4, 20, hidden, Geometry::Sphere);
    let cfg = TrainConfig {
        batch,
        ..Default::default()
    };
    let device = ctx.describe();
    let mut gpu = Trainer::new(Device::Gpu(ctx), flow, cfg, data.clone())?;
    let mut cpu = Trainer::new(Device::Cpu, flow, cfg, data)?;
    let g = steps_per_s(&mut gpu, steps)?;
    let c = steps_per_s(&mut cpu, steps)?;
    let mut rows = vec![Measurement::new(
        "flow",
        &format!(
            "train step K=20 L=4 B={batch} H={hidden} ({} dispatches, 1 submit)",
            gpu.dispatches_per_step()
        ),
        g,
        "steps/s",
        "CPU backend, same step",
        c,
        &device,
        "wall-clock",
    )];
    let model = FlowModel::from_trainer(&gpu)?;
    let sc = SampleConfig {
        n,
        steps: sample_steps,
        ..Default::default()
    };
    let gs = samples_per_s(ctx, &model, &sc)?;
    let t0 = Instant::now();
    sample(Device::Cpu, &model, &sc)?;
    let cs = n as f64 / t0.elapsed().as_secs_f64();
    rows.push(Measurement::new(
        "flow",
        &format!("sampler {sample_steps} Euler steps, {n} samples, H={hidden}"),
        gs,
        "samples/s",
        "CPU backend, same sampler",
        cs,
        &device,
        "wall-clock",
    ));
    rows.extend(field_rows(ctx, &model, n.min(8192))?);
    if ctx.has_f16() {
        let half = SampleConfig {
            precision: Precision::F16,
            ..sc
        };
        let hs = samples_per_s(ctx, &model, &half)?;
        rows.push(Measurement::new(
            "flow",
            &format!("sampler, f16 weights and activations, {sample_steps} Euler steps, {n} samples, H={hidden}"),
            hs,
            "samples/s",
            "f32 GPU sampler, same run",
            gs,
            &device,
            "wall-clock",
        ));
    }
    Ok(rows)
}
