//! Training-step throughput of the Fisher-Flow MLP (toy model: L = 4, K = 20, hidden 512,
//! batch 512): GPU steps/s against the CPU backend's steps/s measured in the same run.

use crate::autodiff::{CpuExecutor, Executor, GpuExecutor, OptimConfig, Rng};
use crate::bench::{time_cpu, time_recording, Measurement};
use crate::error::Result;
use crate::gpu::GpuContext;
use crate::nn::{Mlp, MlpConfig};

/// Run the benchmark (`quick`: fewer repetitions).
pub fn run(ctx: &GpuContext, quick: bool) -> Result<Vec<Measurement>> {
    let cfg = MlpConfig::default();
    let batch = 512;
    let m = Mlp::new(cfg, 0)?;
    let opt = OptimConfig::default();
    let lk = cfg.width();
    let mut rng = Rng::new(1);
    let x = rng.vec_f32(batch * lk, 0.0, 1.0);
    let t = rng.vec_f32(batch, 0.0, 1.0);
    let u = rng.vec_f32(batch * lk, -1.0, 1.0);
    let feed = |ex: &mut dyn Executor| -> Result<()> {
        ex.set_input(Mlp::X, &x)?;
        ex.set_input(Mlp::T, &t)?;
        ex.set_input(Mlp::TARGET, &u)
    };
    let reps = if quick { 3 } else { 10 };

    let mut gx = GpuExecutor::new(ctx, &m.graph, batch, &[m.out], Some(m.loss), opt)?;
    feed(&mut gx)?;
    let timing = time_recording(ctx, gx.step_recording(), 2, reps)?;

    let mut cpu = CpuExecutor::<f32>::new(&m.graph, batch, &[m.out], Some(m.loss), opt)?;
    feed(&mut cpu)?;
    let mut err = None;
    let cpu_s = time_cpu(reps, || {
        if let Err(e) = cpu.step() {
            err = Some(e);
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    let name = format!(
        "mlp step L={} K={} B={batch} H={} ({} params, {} dispatches)",
        cfg.seq_len,
        cfg.categories,
        cfg.hidden,
        m.param_count(),
        gx.step_recording().dispatches()
    );
    let device = ctx.describe();
    let mut rows = vec![Measurement::new(
        "train",
        &name,
        1.0 / timing.best_s(),
        "steps/s",
        "CPU backend (gemm crate)",
        1.0 / cpu_s,
        &device,
        timing.timer(),
    )];
    if timing.gpu_s.is_some() {
        rows.push(Measurement::new(
            "train",
            &format!("{name}, submit+wait"),
            1.0 / timing.wall_s,
            "steps/s",
            "CPU backend (gemm crate)",
            1.0 / cpu_s,
            &device,
            "wall-clock",
        ));
    }
    Ok(rows)
}
