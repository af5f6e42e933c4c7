//! `fisherflow tn`: exact tensor-network models, perfect sampling (GPU or CPU) and the
//! statistics of the samples.

use std::time::Instant;

use fisherflow::gpu::{ContextOptions, GpuContext};
use fisherflow::tensornet::{
    dyck_area, enumerate_ising, fredkin, ising_2d, mcmc_connected, mcmc_disconnected, Environments,
    GpuMps, IsingLattice, Mps,
};
use fisherflow::{Error, Result};

/// Arguments of `fisherflow tn`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    model: Model,
}

#[derive(clap::Subcommand)]
enum Model {
    /// 2D Ising on an lx × ly cylinder (periodic within columns) or torus.
    Ising {
        /// Number of columns.
        #[arg(long, default_value_t = 4)]
        lx: usize,
        /// Spins per column (bond dimension 2^ly, 4^ly on the torus).
        #[arg(long, default_value_t = 4)]
        ly: usize,
        /// Inverse temperature (J = 1); β_c = 0.44068679350977151.
        #[arg(long, default_value_t = 0.440_686_793_509_771_5)]
        beta: f64,
        /// Number of exact samples.
        #[arg(long, default_value_t = 100_000)]
        samples: usize,
        /// Periodic in both directions.
        #[arg(long)]
        torus: bool,
        #[command(flatten)]
        dev: Device,
    },
    /// Fredkin chain stationary law: Dyck paths weighted by (c/(1−c))^{A/2}.
    Fredkin {
        /// Number of sites (even).
        #[arg(long, default_value_t = 10)]
        n: usize,
        /// Valley-to-peak rate c in (0, 1).
        #[arg(long, default_value_t = 0.5)]
        c: f64,
        /// Number of exact samples.
        #[arg(long, default_value_t = 100_000)]
        samples: usize,
        #[command(flatten)]
        dev: Device,
    },
}

#[derive(clap::Args)]
struct Device {
    /// Sample on the GPU (default).
    #[arg(long, conflicts_with = "cpu")]
    gpu: bool,
    /// Sample with the CPU reference sampler.
    #[arg(long)]
    cpu: bool,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u32,
}

/// Draw samples; returns (states, seconds, device name).
fn draw(
    opts: &ContextOptions,
    mps: &Mps,
    n: usize,
    dev: &Device,
) -> Result<(Vec<u8>, f64, String)> {
    if dev.cpu {
        let env = Environments::new(mps)?;
        let t0 = Instant::now();
        let xs = env.sample(mps, 0, n, dev.seed, 0)?;
        return Ok((xs, t0.elapsed().as_secs_f64(), "CPU (f64 reference)".into()));
    }
    let ctx = GpuContext::with_options(opts)?;
    let g = GpuMps::new(&ctx, mps)?;
    // Warm-up (pipeline compilation), then the timed run.
    g.sample(&ctx, n.min(64), dev.seed ^ 0xFFFF)?;
    let t0 = Instant::now();
    let (xs, _) = g.sample(&ctx, n, dev.seed)?;
    Ok((xs, t0.elapsed().as_secs_f64(), ctx.describe()))
}

/// Run `fisherflow tn`.
pub fn run(opts: &ContextOptions, args: Args) -> Result<()> {
    match args.model {
        Model::Ising {
            lx,
            ly,
            beta,
            samples,
            torus,
            dev,
        } => {
            if samples < 2 {
                return Err(Error::InvalidArgument(
                    "--samples must be at least 2".into(),
                ));
            }
            let lat = IsingLattice {
                lx,
                ly,
                periodic_x: torus,
                periodic_y: ly >= 3,
            };
            let mps = ising_2d(&lat, beta)?;
            let n = lat.n();
            let lz = mps.log_norm();
            println!(
                "Ising {lx}x{ly} {} at beta = {beta}: N = {n}, chi = {}",
                if torus { "torus" } else { "cylinder" },
                mps.chi_max()
            );
            println!(
                "ln Z = {lz:.10}   Z = {:.6e}   -beta f = ln Z / N = {:.10}",
                lz.exp(),
                lz / n as f64
            );
            let exact = if n <= 20 {
                Some(enumerate_ising(&lat, beta)?)
            } else {
                None
            };
            let (xs, dt, device) = draw(opts, &mps, samples, &dev)?;
            let bonds = lat.bonds();
            let mut am = Vec::with_capacity(samples);
            let mut en = Vec::with_capacity(samples);
            for x in xs.chunks(n) {
                let s: f64 = x.iter().map(|&v| 1.0 - 2.0 * v as f64).sum();
                am.push(s.abs() / n as f64);
                let e: f64 = bonds
                    .iter()
                    .map(|&(i, j)| if x[i] == x[j] { -1.0 } else { 1.0 })
                    .sum();
                en.push(e / n as f64);
            }
            let (m, sm) = mean_se(&am);
            let (u, su) = mean_se(&en);
            println!(
                "sampler: {device}: {samples} exact samples in {dt:.3} s = {:.0} samples/s",
                samples as f64 / dt
            );
            match exact {
                Some(ex) => {
                    println!(
                        "<|m|> = {m:.6} ± {sm:.6}   (exact {:.6}, {:+.2} s.e.)",
                        ex.abs_m,
                        (m - ex.abs_m) / sm
                    );
                    println!(
                        "u = <E>/N = {u:.6} ± {su:.6}   (exact {:.6}, {:+.2} s.e.)",
                        ex.energy,
                        (u - ex.energy) / su
                    );
                    println!("ln Z by enumeration = {:.10}", ex.log_z);
                }
                None => {
                    println!("<|m|> = {m:.6} ± {sm:.6}");
                    println!("u = <E>/N = {u:.6} ± {su:.6}");
                }
            }
            // MCMC with an imperfect model (β · 0.9) as proposal distribution.
            let model = ising_2d(&lat, 0.9 * beta)?;
            let steps = 2000.min(samples);
            let (_, sd) = mcmc_disconnected(&mps, &model, steps, dev.seed as u64)?;
            let start = &xs[..n];
            let (_, sc) = mcmc_connected(
                &mps,
                &model,
                1.0,
                0.2,
                start,
                steps.min(500),
                dev.seed as u64,
            )?;
            println!(
                "MCMC with model beta' = {:.4}: acceptance disconnected {:.3} ({} steps), connected (gamma T = 0.2) {:.3} ({} steps)",
                0.9 * beta,
                sd.acceptance(),
                sd.steps,
                sc.acceptance(),
                sc.steps
            );
        }
        Model::Fredkin { n, c, samples, dev } => {
            if samples < 2 {
                return Err(Error::InvalidArgument(
                    "--samples must be at least 2".into(),
                ));
            }
            let mps = fredkin(n, c)?;
            let lz = mps.log_norm();
            println!(
                "Fredkin N = {n}, c = {c}: chi = {}, ln Z = {lz:.10}, Z = {:.6}",
                mps.chi_max(),
                lz.exp()
            );
            let (xs, dt, device) = draw(opts, &mps, samples, &dev)?;
            let mut area = Vec::with_capacity(samples);
            let mut bad = 0usize;
            for x in xs.chunks(n) {
                match dyck_area(x) {
                    Some(a) => area.push(a as f64),
                    None => bad += 1,
                }
            }
            let (a, sa) = mean_se(&area);
            println!(
                "sampler: {device}: {samples} exact samples in {dt:.3} s = {:.0} samples/s",
                samples as f64 / dt
            );
            println!("Dyck paths: {} of {samples} (non-Dyck: {bad})", area.len());
            // A = Σ_k h_k and step k enters the N − k heights after it.
            let mut mean_h = 0.0;
            for k in 0..n {
                mean_h += mps.expect_product(&vec_unit(n, k))? * (n - k) as f64;
            }
            println!("<A> = {a:.4} ± {sa:.4}   (exact {mean_h:.4})");
        }
    }
    Ok(())
}

/// Step ±1 at site k, 1 elsewhere.
fn vec_unit(n: usize, k: usize) -> Vec<Vec<f64>> {
    (0..n)
        .map(|i| {
            if i == k {
                vec![1.0, -1.0]
            } else {
                vec![1.0, 1.0]
            }
        })
        .collect()
}

fn mean_se(v: &[f64]) -> (f64, f64) {
    if v.len() < 2 {
        return (v.first().copied().unwrap_or(f64::NAN), f64::NAN);
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
    (m, (var / v.len() as f64).sqrt())
}
