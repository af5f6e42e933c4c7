//! Fisher-Flow end to end: the whole training step (on-device batch: Philox draws, one-hot
//! gather, fused interpolant and target, then forward, backward, clipping and AdamW in one
//! submit) and the sampler (the whole integration in one submit), each against the CPU
//! backend measured in the same run.

use std::time::Instant;

use crate::bench::Measurement;
use crate::data::toy::ToyTarget;
use crate::error::Result;
use crate::flow::{
    sample_cpu, sample_gpu, FlowConfig, FlowModel, Geometry, SampleConfig, TrainConfig, Trainer,
};
use crate::gpu::GpuContext;

fn steps_per_s(tr: &mut Trainer<'_>, steps: usize) -> Result<f64> {
    tr.train_steps(2)?;
    tr.take_mean_loss()?;
    let t0 = Instant::now();
    tr.train_steps(steps)?;
    tr.take_mean_loss()?; // waits for the GPU
    Ok(steps as f64 / t0.elapsed().as_secs_f64())
}

/// Run the benchmark: the toy model (K = 20, L = 4, hidden 512, batch 512); `quick` uses
/// hidden 128, batch 128 and fewer steps.
pub fn run(ctx: &GpuContext, quick: bool) -> Result<Vec<Measurement>> {
    let (hidden, batch, steps, n, sample_steps) = if quick {
        (128, 128, 5, 512, 20)
    } else {
        (512, 512, 20, 4096, 100)
    };
    let target = ToyTarget::from_spec("toy:L=4,K=20")?;
    let data = target.sample(10_000, 0)?;
    let flow = FlowConfig::new(4, 20, hidden, Geometry::Sphere);
    let cfg = TrainConfig {
        batch,
        ..Default::default()
    };
    let device = ctx.describe();
    let mut gpu = Trainer::new(Some(ctx), flow, cfg, data.clone())?;
    let mut cpu = Trainer::new(None, flow, cfg, data)?;
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
    sample_gpu(
        ctx,
        &model,
        &SampleConfig {
            n: 8,
            steps: 2,
            ..sc
        },
    )?;
    let t0 = Instant::now();
    sample_gpu(ctx, &model, &sc)?;
    let gs = n as f64 / t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    sample_cpu(&model, &sc)?;
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
    Ok(rows)
}
