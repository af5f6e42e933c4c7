//! Exact MPS sampling throughput: the GPU perfect sampler against the CPU reference sampler
//! (f64, one thread) on the same random MPS in the same run; and Metropolis–Hastings chains
//! with MPS proposals, all on the GPU ([`GpuChains`]) against the CPU path ([`mh_step`]); and
//! the exact column MPS of `L × L` Ising lattices, GPU against CPU.

use std::time::Instant;

use crate::bench::{time_cpu, time_recording, Measurement};
use crate::error::Result;
use crate::gpu::GpuContext;
use crate::rng::Rng;
use crate::tensornet::{
    mh_step, random_mps, Boundary, Chains, ColumnMps, CpuAccept, Environments, GpuChains,
    GpuColumnMps, GpuMps, IndependentProposer, IsingLattice, IsingModel, Proposer, RunOptions,
};

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

/// Metropolis–Hastings on the 16 × 16 Ising cylinder at β = 0.44 with disconnected proposals
/// from a random χ = 16 MPS: proposals (chain steps) per second and batched steps per second
/// over the number of chains, every step on the GPU against the CPU path (f64, one thread) on
/// the same chains and random numbers. `quick` skips 4096 chains.
pub fn mcmc(ctx: &GpuContext, quick: bool) -> Result<Vec<Measurement>> {
    let lat = IsingLattice::new(16, 16, Boundary::Cylinder)?;
    let target = IsingModel::new(lat, 0.44)?;
    let model = random_mps(256, 2, 16, 7)?;
    let device = ctx.describe();
    let mut out = Vec::new();
    let sizes: &[usize] = if quick { &[16, 256] } else { &[16, 256, 4096] };
    for &b in sizes {
        let opts = RunOptions {
            burn_in: 0,
            steps: 1,
            seed: 1,
            local_sweeps: 0,
            keep_every: 0,
        };
        let chains = Chains::new(&target, vec![0; 256 * b])?;
        let mut g = GpuChains::new(ctx, &target, &model, &chains, &opts)?;
        let steps = (8192 / b).clamp(4, 64);
        g.run_steps(1)?;
        ctx.wait()?;
        let mut best = f64::INFINITY;
        for _ in 0..if quick { 1 } else { 2 } {
            let t0 = Instant::now();
            g.run_steps(steps)?;
            ctx.wait()?;
            best = best.min(t0.elapsed().as_secs_f64() / steps as f64);
        }
        let mut cpu = chains.clone();
        let mut prop = IndependentProposer::new(&model, None, opts.seed)?;
        cpu.log_q = prop.log_q(&cpu.states)?;
        let cpu_steps = (1024 / b).clamp(1, 16);
        let mut step = 0u64;
        let cpu_s = time_cpu(1, || {
            for _ in 0..cpu_steps {
                let _ = mh_step(&target, &mut prop, &mut cpu, step, 1, 0, &CpuAccept);
                step += 1;
            }
        }) / cpu_steps as f64;
        let name = format!("MH 16x16 chi=16, {b} chains");
        let base = "CPU path, f64, 1 thread";
        out.push(Measurement::new(
            "tn-mcmc",
            &name,
            b as f64 / best,
            "proposals/s",
            base,
            b as f64 / cpu_s,
            &device,
            "wall-clock",
        ));
        out.push(Measurement::new(
            "tn-mcmc",
            &name,
            1.0 / best,
            "MH steps/s",
            base,
            1.0 / cpu_s,
            &device,
            "wall-clock",
        ));
    }
    Ok(out)
}

/// Perfect samples per second of the exact column MPS ([`ColumnMps`], `χ = 2^L` kept sparse)
/// of the `L × L` Ising cylinder at β = 0.44: one invocation per sample on the GPU against the
/// CPU sampler (one thread, blocks of 8,192 samples, sites outermost) drawing the same samples.
/// `quick` runs `L = 8` only.
pub fn column(ctx: &GpuContext, quick: bool) -> Result<Vec<Measurement>> {
    let sizes: &[usize] = if quick { &[8] } else { &[8, 12, 16] };
    let device = ctx.describe();
    let mut out = Vec::new();
    for &l in sizes {
        let lat = IsingLattice::new(l, l, Boundary::Cylinder)?;
        let mps = ColumnMps::new(&IsingModel::new(lat, 0.44)?)?;
        let g = GpuColumnMps::new(ctx, &mps)?;
        let gpu_samples = if quick { 1 << 14 } else { 1 << 18 };
        let (rec, _, _) = g.sampling_recording(ctx, gpu_samples, 7)?;
        let t = time_recording(ctx, &rec, 1, if quick { 2 } else { 3 })?;
        let cpu_samples = 8192;
        let mut xs = Vec::new();
        let cpu_s = time_cpu(if quick { 1 } else { 3 }, || {
            let mut rngs: Vec<Rng> = (0..cpu_samples as u64).map(|i| Rng::fork(7, i)).collect();
            let _ = mps.sample_rows(&mut rngs, &mut xs);
        });
        out.push(Measurement::new(
            "tn-column",
            &format!(
                "column MPS {l}x{l} (chi = 2^{l}, {} MiB table)",
                mps.table_bytes() >> 20
            ),
            gpu_samples as f64 / t.best_s(),
            "samples/s",
            "CPU sampler, 1 thread",
            cpu_samples as f64 / cpu_s,
            &device,
            t.timer(),
        ));
    }
    Ok(out)
}
