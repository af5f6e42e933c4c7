//! Exact MPS sampling throughput: the GPU perfect sampler against the CPU reference sampler
//! (f64, one thread) on the same random MPS in the same run.

use crate::bench::{time_cpu, time_recording, Measurement};
use crate::error::Result;
use crate::gpu::GpuContext;
use crate::tensornet::{random_mps, Environments, GpuMps};

/// Samples per second at `N` sites and bond dimension `χ` (random non-negative MPS, `d = 2`),
/// GPU vs CPU. `quick` runs a reduced grid.
pub fn run(ctx: &GpuContext, quick: bool) -> Result<Vec<Measurement>> {
    let grid: Vec<(usize, usize)> = if quick {
        vec![(64, 16), (64, 64)]
    } else {
        vec![
            (64, 16),
            (128, 16),
            (256, 16),
            (64, 64),
            (128, 64),
            (256, 64),
            (64, 256),
            (128, 256),
        ]
    };
    let device = ctx.describe();
    let mut out = Vec::new();
    for (n, chi) in grid {
        let mps = random_mps(n, 2, chi, (n * 1000 + chi) as u64)?;
        let env = Environments::new(&mps)?;
        let g = GpuMps::with_environments(ctx, &mps, &env)?;
        // Enough samples to fill the device: at least 64 workgroups, ~2^27 / (N χ²) samples.
        let work = (n * chi * chi) as f64;
        let gpu_samples = ((1u64 << 27) as f64 / work).clamp(256.0, 16384.0) as usize;
        let gpu_samples = gpu_samples.max(64 * g.batch());
        let (rec, _, _) = g.sampling_recording(ctx, gpu_samples, 7)?;
        let t = time_recording(ctx, &rec, 1, if quick { 2 } else { 3 })?;
        let gpu_rate = gpu_samples as f64 / t.best_s();
        let cpu_samples = ((1u64 << 25) as f64 / work).clamp(4.0, 4096.0) as usize;
        let cpu_s = time_cpu(if quick { 1 } else { 2 }, || {
            let _ = env.sample(&mps, 0, cpu_samples, 7, 0);
        });
        let cpu_rate = cpu_samples as f64 / cpu_s;
        out.push(Measurement::new(
            "tensornet",
            &format!("sample N={n} chi={chi} ({gpu_samples} samples)"),
            gpu_rate,
            "samples/s",
            "CPU f64 sampler, 1 thread",
            cpu_rate,
            &device,
            t.timer(),
        ));
    }
    Ok(out)
}
