//! `fisherflow tn`: exact tensor-network models with perfect sampling (GPU or CPU) and
//! step-wise reverse dynamics; `tn learn`, the learn–propose–accept loop on an energy; and
//! `tn compare`, local Metropolis against MPS proposals on the `L × L` Ising model.

use std::path::{Path, PathBuf};
use std::time::Instant;

use fisherflow::gpu::ContextOptions;
use fisherflow::tensornet::{
    dyck_area, dyck_support, enumerate_ising, enumerate_observables, fredkin, ising_2d,
    mcmc_connected, mcmc_disconnected, onsager_energy, onsager_magnetisation, Boundary,
    Environments, FitOptions, FredkinWeight, GpuMps, IsingLattice, IsingModel, LearnOptions,
    LogWeight, Mps, MpsModel, ProposalKind, ReverseDynamics, TableWeight,
};
use fisherflow::{Error, Result};

use super::common::DeviceArgs;

#[path = "tn_learn.rs"]
mod study;

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
        /// Inverse temperature (J = 1, > 0); β_c = 0.44068679350977151.
        #[arg(
            long,
            default_value_t = 0.440_686_793_509_771_5,
            allow_hyphen_values = true
        )]
        beta: f64,
        /// Number of exact samples.
        #[arg(long, default_value_t = 100_000)]
        samples: usize,
        /// Periodic in both directions.
        #[arg(long)]
        torus: bool,
        #[command(flatten)]
        reverse: Reverse,
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
        reverse: Reverse,
        #[command(flatten)]
        dev: Device,
    },
    /// Monte Carlo on an energy with a learned MPS as the proposal, refitted every round.
    Learn(study::LearnArgs),
    /// Local Metropolis vs disconnected and connected MPS proposals on L × L Ising over β.
    Compare(study::CompareArgs),
}

#[derive(clap::Args)]
struct Device {
    #[command(flatten)]
    backend: DeviceArgs,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u32,
}

/// Step-wise reverse dynamics from the noised law.
#[derive(clap::Args)]
struct Reverse {
    /// Also generate by S exact reverse steps from x_T ~ P_T (0: off).
    #[arg(long, default_value_t = 0)]
    reverse_steps: usize,
    /// Noise time T of the reverse dynamics (flip rate 1).
    #[arg(long, default_value_t = 0.5, allow_hyphen_values = true)]
    noise_time: f64,
    /// Trajectories of the reverse dynamics.
    #[arg(long, default_value_t = 20_000)]
    reverse_samples: usize,
}

impl Reverse {
    fn check(&self) -> Result<()> {
        if self.reverse_steps > 0 {
            finite_positive("--noise-time", self.noise_time)?;
            if self.reverse_samples < 2 || self.reverse_steps > 1 << 20 {
                return Err(Error::InvalidArgument(
                    "--reverse-samples must be ≥ 2 and --reverse-steps ≤ 2^20".into(),
                ));
            }
        }
        Ok(())
    }

    /// Refuse trajectories of `n` sites over 2 GiB of states (when the dynamics are on).
    fn check_samples(&self, n: usize) -> Result<()> {
        if self.reverse_steps == 0 {
            return Ok(());
        }
        check_samples("--reverse-samples", self.reverse_samples, n)
    }
}

/// Refuse `count` samples of `n` sites over 2 GiB of states before any work.
fn check_samples(flag: &str, count: usize, n: usize) -> Result<()> {
    if count.saturating_mul(n) > 1 << 31 {
        return Err(Error::Limit(format!(
            "{flag} {count} samples of {n} sites exceed 2 GiB of states"
        )));
    }
    Ok(())
}

/// An error unless `v` is finite and > 0.
pub(crate) fn finite_positive(flag: &str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "{flag} must be finite and > 0, got {v}"
        )))
    }
}

/// Draw samples; returns (states, seconds, device name).
fn draw(
    opts: &ContextOptions,
    mps: &Mps,
    n: usize,
    dev: &Device,
) -> Result<(Vec<u8>, f64, String)> {
    let Some(ctx) = dev.backend.choose(opts)?.context else {
        let env = Environments::new(mps)?;
        let t0 = Instant::now();
        let xs = env.sample(mps, 0, n, dev.seed, 0)?;
        return Ok((xs, t0.elapsed().as_secs_f64(), "CPU (f64 reference)".into()));
    };
    let g = GpuMps::new(&ctx, mps)?;
    // Warm-up (pipeline compilation), then the timed run.
    g.sample(&ctx, n.min(64), dev.seed ^ 0xFFFF)?;
    let t0 = Instant::now();
    let (xs, _) = g.sample(&ctx, n, dev.seed)?;
    Ok((xs, t0.elapsed().as_secs_f64(), ctx.describe()))
}

/// `x_T ~ P_T`, then `S` exact reverse steps: samples of `P_0`, and the seconds taken.
fn reverse_samples(mps: &Mps, r: &Reverse, seed: u32) -> Result<(Vec<u8>, f64)> {
    let t0 = Instant::now();
    let rd = ReverseDynamics::new(mps, 1.0, r.noise_time, r.reverse_steps)?;
    let pt = rd.marginal(r.reverse_steps).expect("S + 1 marginals");
    let xt = Environments::new(pt)?.sample(pt, 0, r.reverse_samples, seed, 7)?;
    let x0 = rd.run_many(&xt, seed as u64, 0)?;
    Ok((x0, t0.elapsed().as_secs_f64()))
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
            reverse,
            dev,
        } => ising(opts, lx, ly, beta, samples, torus, &reverse, &dev),
        Model::Fredkin {
            n,
            c,
            samples,
            reverse,
            dev,
        } => fredkin_cmd(opts, n, c, samples, &reverse, &dev),
        Model::Learn(a) => study::learn(opts, a),
        Model::Compare(a) => study::compare(opts, a),
    }
}

#[allow(clippy::too_many_arguments)]
fn ising(
    opts: &ContextOptions,
    lx: usize,
    ly: usize,
    beta: f64,
    samples: usize,
    torus: bool,
    reverse: &Reverse,
    dev: &Device,
) -> Result<()> {
    finite_positive("--beta", beta)?;
    reverse.check()?;
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
    check_samples("--samples", samples, lat.lx.saturating_mul(lat.ly))?;
    reverse.check_samples(lat.lx.saturating_mul(lat.ly))?;
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
    let target = IsingModel::new(lat, beta)?;
    let report = |label: &str, xs: &[u8]| {
        let (m, sm) = mean_se(xs.chunks(n).map(|x| target.observables(x)[1]));
        let (u, su) = mean_se(xs.chunks(n).map(|x| target.observables(x)[0]));
        match exact {
            Some(ex) => {
                println!(
                    "{label}<|m|> = {m:.6} ± {sm:.6}   (exact {:.6}, {:+.2} s.e.)",
                    ex.abs_m,
                    (m - ex.abs_m) / sm
                );
                println!(
                    "{label}u = <E>/N = {u:.6} ± {su:.6}   (exact {:.6}, {:+.2} s.e.)",
                    ex.energy,
                    (u - ex.energy) / su
                );
            }
            None => {
                println!("{label}<|m|> = {m:.6} ± {sm:.6}");
                println!("{label}u = <E>/N = {u:.6} ± {su:.6}");
            }
        }
    };
    let (xs, dt, device) = draw(opts, &mps, samples, dev)?;
    println!(
        "sampler: {device}: {samples} exact samples in {dt:.3} s = {:.0} samples/s",
        samples as f64 / dt
    );
    report("", &xs);
    if let Some(ex) = exact {
        println!("ln Z by enumeration = {:.10}", ex.log_z);
    }
    if reverse.reverse_steps > 0 {
        let (x0, dt) = reverse_samples(&mps, reverse, dev.seed)?;
        println!(
            "reverse dynamics: {} trajectories of {} exact steps from T = {} in {dt:.2} s (CPU)",
            reverse.reverse_samples, reverse.reverse_steps, reverse.noise_time
        );
        report("  ", &x0);
    }
    // MCMC on the energy with an imperfect model (the exact MPS at 0.9 β) as proposal.
    let model = ising_2d(&lat, 0.9 * beta)?;
    let steps = 2000.min(samples);
    let (_, sd) = mcmc_disconnected(&target, &model, steps, dev.seed as u64)?;
    let (_, sc) = mcmc_connected(
        &target,
        &model,
        1.0,
        0.2,
        &xs[..n],
        steps.min(500),
        dev.seed as u64,
    )?;
    println!(
        "MCMC on the energy with model beta' = {:.4}: acceptance disconnected {:.3} ({} steps), connected (gamma T = 0.2) {:.3} ({} steps)",
        0.9 * beta,
        sd.acceptance(),
        sd.steps,
        sc.acceptance(),
        sc.steps
    );
    Ok(())
}

fn fredkin_cmd(
    opts: &ContextOptions,
    n: usize,
    c: f64,
    samples: usize,
    reverse: &Reverse,
    dev: &Device,
) -> Result<()> {
    reverse.check()?;
    if samples < 2 {
        return Err(Error::InvalidArgument(
            "--samples must be at least 2".into(),
        ));
    }
    check_samples("--samples", samples, n)?;
    reverse.check_samples(n)?;
    let mps = fredkin(n, c)?;
    let lz = mps.log_norm();
    println!(
        "Fredkin N = {n}, c = {c}: chi = {}, ln Z = {lz:.10}, Z = {:.6}",
        mps.chi_max(),
        lz.exp()
    );
    let mean_h = FredkinWeight::new(n, c)?.exact_observables()?[0] * n as f64;
    let report = |label: &str, xs: &[u8]| {
        let mut area = Vec::with_capacity(xs.len() / n);
        let mut bad = 0usize;
        for x in xs.chunks(n) {
            match dyck_area(x) {
                Some(a) => area.push(a as f64),
                None => bad += 1,
            }
        }
        let (a, sa) = mean_se(area.iter().copied());
        println!(
            "{label}Dyck paths: {} of {} (non-Dyck: {bad})",
            area.len(),
            xs.len() / n
        );
        println!("{label}<A> = {a:.4} ± {sa:.4}   (exact {mean_h:.4})");
    };
    let (xs, dt, device) = draw(opts, &mps, samples, dev)?;
    println!(
        "sampler: {device}: {samples} exact samples in {dt:.3} s = {:.0} samples/s",
        samples as f64 / dt
    );
    report("", &xs);
    if reverse.reverse_steps > 0 {
        let (x0, dt) = reverse_samples(&mps, reverse, dev.seed)?;
        println!(
            "reverse dynamics: {} trajectories of {} exact steps from T = {} in {dt:.2} s (CPU)",
            reverse.reverse_samples, reverse.reverse_steps, reverse.noise_time
        );
        report("  ", &x0);
    }
    Ok(())
}

/// Exact expectations of a target's observables where they are known: enumeration up to 2^20
/// configurations, the exact MPS for the Fredkin chain.
pub(crate) fn exact_observables(target: &Target) -> Result<Option<[f64; 2]>> {
    match target {
        Target::Fredkin(w) => Ok(Some(w.exact_observables()?)),
        _ => {
            let t = target.as_dyn();
            let size = (t.n_sites() as f64) * (t.d() as f64).log2();
            if size <= 20.0 {
                Ok(Some(enumerate_observables(t)?))
            } else {
                Ok(None)
            }
        }
    }
}

/// The targets `tn learn` knows.
pub(crate) enum Target {
    Ising(IsingModel),
    Fredkin(FredkinWeight),
    Table(TableWeight),
}

impl Target {
    pub(crate) fn as_dyn(&self) -> &dyn LogWeight {
        match self {
            Target::Ising(t) => t,
            Target::Fredkin(w) => w,
            Target::Table(t) => t,
        }
    }
    /// The starting model: the Dyck support for the Fredkin chain, else a near-uniform product.
    pub(crate) fn start_model(&self, chi: usize, seed: u64) -> Result<MpsModel> {
        match self {
            Target::Fredkin(w) => {
                MpsModel::with_support(&dyck_support(w.n_sites())?, chi, 0.05, seed)
            }
            _ => {
                let t = self.as_dyn();
                MpsModel::product(t.n_sites(), t.d(), chi, 0.05, seed)
            }
        }
    }
}

/// Learning options from the command line.
pub(crate) fn learn_options(
    a: &study::LearnCommon,
    proposal: ProposalKind,
    seed: u64,
) -> LearnOptions {
    LearnOptions {
        chains: a.chains,
        burn_in: a.burn_in,
        steps: a.steps,
        local_sweeps: a.local_sweeps,
        keep_every: a.keep_every,
        proposal,
        fit: FitOptions {
            steps: a.fit_steps,
            batch: a.batch,
            lr: a.lr,
            flip_augment: false,
            seed,
        },
        symmetrise: true,
        seed,
    }
}

/// Parse a boundary name.
pub(crate) fn boundary(s: &str) -> Result<Boundary> {
    match s {
        "open" => Ok(Boundary::Open),
        "cylinder" => Ok(Boundary::Cylinder),
        "torus" => Ok(Boundary::Torus),
        _ => Err(Error::InvalidArgument(format!(
            "--boundary must be open, cylinder or torus, got `{s}`"
        ))),
    }
}

/// Refuse an output path before any work: an existing file without `--force`, or anything
/// that is not a regular file.
pub(crate) fn check_output(path: Option<&PathBuf>, force: bool) -> Result<()> {
    let Some(p) = path else { return Ok(()) };
    if let Ok(meta) = std::fs::symlink_metadata(p) {
        if !meta.is_file() {
            return Err(Error::InvalidArgument(format!(
                "{} exists and is not a regular file",
                p.display()
            )));
        }
        if !force {
            return Err(Error::InvalidArgument(format!(
                "{} exists: pass --force to replace it",
                p.display()
            )));
        }
    }
    Ok(())
}

/// Write `bytes` to `path` through a temporary file in the same directory and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::InvalidArgument(format!("{}: not a file path", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let io = |e| Error::Io(path.display().to_string(), e);
    let result = std::fs::write(&tmp, bytes)
        .map_err(io)
        .and_then(|_| std::fs::rename(&tmp, path).map_err(io));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Mean and standard error of independent values (`NaN` error below two values).
pub(crate) fn mean_se(v: impl Iterator<Item = f64>) -> (f64, f64) {
    let v: Vec<f64> = v.collect();
    if v.len() < 2 {
        return (v.first().copied().unwrap_or(f64::NAN), f64::NAN);
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
    (m, (var / v.len() as f64).sqrt())
}

/// Onsager's infinite-lattice `u(β)` and spontaneous magnetisation, for reports.
pub(crate) fn onsager(beta: f64) -> (f64, f64) {
    (onsager_energy(beta), onsager_magnetisation(beta))
}
