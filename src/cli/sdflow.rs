//! `fisherflow sdflow`: score-difference flow on 2-D toy targets or point files.

use std::path::PathBuf;
use std::time::Instant;

use fisherflow::autodiff::{Activation, OptimConfig};
use fisherflow::budget;
use fisherflow::data::file::check_output;
use fisherflow::device::{self, Backend};
use fisherflow::gpu::{ContextOptions, GpuContext, GpuTensor, Recorder};
use fisherflow::plot::ScatterChart;
use fisherflow::sdflow::model::MAX_WIDTH;
use fisherflow::sdflow::{self, ModelConfig, ModelFlow, ParticleConfig, ParticleFlow, Rng};
use fisherflow::{Error, Result};

use super::common::{count, non_negative, positive};

/// `particles` (move samples directly) or `model` (train a generator MLP g_θ(z) regressed
/// onto the moved particles).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Move the samples themselves.
    Particles,
    /// Train a generator MLP regressed onto the moved particles.
    Model,
}

/// Hidden activation of the generator.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// x·sigmoid(x).
    Silu,
    /// LeakyReLU with slope 0.2.
    #[value(alias = "leaky_relu")]
    LeakyRelu,
}

fn pdef() -> ParticleConfig {
    ParticleConfig::default()
}
fn mdef() -> ModelConfig {
    ModelConfig::default()
}

/// Points a run may hold (the particles and the target, each `n × d` f32 on the GPU).
const MAX_POINTS: u64 = 1 << 28;

/// Arguments of `fisherflow sdflow`.
#[derive(clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct Args {
    /// Target: ring8, moons, checkerboard, swissroll, or a file of points (one a line,
    /// whitespace or comma separated).
    #[arg(long)]
    target: String,
    /// What moves.
    #[arg(long, value_enum, default_value_t = Mode::Particles)]
    mode: Mode,
    /// Number of particles, or of fresh generator samples evaluated in model mode (and of
    /// toy-target samples unless --target-n is given).
    #[arg(long, default_value_t = 4096, value_parser = count(2, MAX_POINTS))]
    n: usize,
    /// Number of samples drawn from a toy target [default: --n].
    #[arg(long, value_parser = count(2, MAX_POINTS))]
    target_n: Option<usize>,
    /// Number of steps [default: 500 for particles, 2000 for model].
    #[arg(long, value_parser = count(1, u32::MAX as u64))]
    steps: Option<usize>,
    /// σ at the first step.
    #[arg(long, default_value_t = pdef().sigma_max, value_parser = positive)]
    sigma_max: f32,
    /// σ at the last step (geometric schedule in between) [default: 0.05 for particles, 0.3
    /// for model].
    #[arg(long, value_parser = positive)]
    sigma_min: Option<f32>,
    /// Step size η (particles move by η σ² v) [default: 0.5 for particles, 1.0 for model].
    #[arg(long, value_parser = positive)]
    eta: Option<f32>,
    /// Model mode: generated samples per step.
    #[arg(long, default_value_t = mdef().batch, value_parser = count(1, MAX_POINTS))]
    batch: usize,
    /// Model mode: latent dimension of the generator.
    #[arg(long, default_value_t = mdef().latent_dim, value_parser = count(1, MAX_WIDTH as u64))]
    latent_dim: usize,
    /// Model mode: hidden width of the generator MLP.
    #[arg(long, default_value_t = mdef().width, value_parser = count(1, MAX_WIDTH as u64))]
    width: usize,
    /// Model mode: number of hidden layers.
    #[arg(long, default_value_t = mdef().depth, value_parser = count(1, 64))]
    depth: usize,
    /// Model mode: hidden activation.
    #[arg(long, value_enum, default_value_t = Act::Silu)]
    activation: Act,
    /// Model mode: AdamW learning rate.
    #[arg(long, default_value_t = mdef().optim.lr, value_parser = positive)]
    lr: f32,
    /// Model mode: AdamW (decoupled) weight decay.
    #[arg(long, default_value_t = mdef().optim.weight_decay, value_parser = non_negative)]
    weight_decay: f32,
    /// Seed of the target sample, the initial particles and the GPU noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Leave each particle out of its own source sum.
    #[arg(long)]
    leave_one_out: bool,
    /// Steps between progress lines (the only read-backs).
    #[arg(long, default_value_t = pdef().progress_every, value_parser = count(1, u64::MAX))]
    progress_every: usize,
    /// Gaussian-kernel bandwidth of every MMD² [default: the median distance within the
    /// target sample].
    #[arg(long, value_parser = positive)]
    bandwidth: Option<f32>,
    /// Write a scatter plot of the generated points (orange) over the target (light blue): PNG
    /// when the name ends in .png, else SVG.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Replace an existing --plot.
    #[arg(long)]
    force: bool,
}

/// Refuses point sets that do not fit one storage binding of the adapter or the host memory.
fn check_points(ctx: &GpuContext, sets: &[(&str, usize)], d: usize) -> Result<()> {
    let binding = ctx.max_binding() as u128;
    for &(flag, n) in sets {
        let b = budget::bytes(&[n, d], 4);
        if b > binding {
            return Err(Error::InvalidArgument(format!(
                "{flag} {n}: {} points of dimension {d} take {}, more than one storage binding of \
                 the adapter ({})",
                n,
                budget::human(b),
                budget::human(binding)
            )));
        }
    }
    check_host(sets, d)
}

/// Refuses point sets that do not fit the host memory (checked before a toy target is drawn).
fn check_host(sets: &[(&str, usize)], d: usize) -> Result<()> {
    let total = sets.iter().fold(0u128, |t, &(_, n)| {
        t.saturating_add(budget::bytes(&[n, d], 4))
    });
    match budget::host_available() {
        // The host keeps a copy of each set and of the plotted points.
        Some(avail) if total.saturating_mul(3) > avail => Err(Error::InvalidArgument(format!(
            "{}: the point sets need {} of host memory, more than the {} available",
            sets.iter()
                .map(|(f, n)| format!("{f} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            budget::human(total.saturating_mul(3)),
            budget::human(avail)
        ))),
        _ => Ok(()),
    }
}

/// The first `rows` rows of `t` as a new tensor (a GPU copy).
fn head(ctx: &GpuContext, t: &GpuTensor, rows: usize) -> Result<GpuTensor> {
    let d = t.shape()[1];
    let rows = rows.min(t.shape()[0]);
    let out = GpuTensor::zeros(ctx, &[rows, d])?;
    let mut rec = Recorder::new();
    rec.copy(t.buffer(), 0, out.buffer(), 0, (rows * d * 4) as u64);
    rec.run(ctx)?;
    Ok(out)
}

pub fn run(opts: &ContextOptions, args: Args) -> Result<()> {
    let model = args.mode == Mode::Model;
    if let Some(path) = &args.plot {
        check_output(path, args.force).map_err(|e| super::common::flag_error("--plot", e))?;
    }
    let toy = sdflow::TOY_TARGETS.contains(&args.target.as_str());
    let (target, d) = if toy {
        let m = args.target_n.unwrap_or(args.n);
        check_host(&[("--n", args.n), ("--target-n", m)], 2)?;
        (sdflow::toy_target(&args.target, m, args.seed)?, 2)
    } else {
        let path = PathBuf::from(&args.target);
        if !path.is_file() {
            return Err(Error::InvalidArgument(format!(
                "--target {:?} is neither a toy target ({}) nor an existing file",
                args.target,
                sdflow::TOY_TARGETS.join(", ")
            )));
        }
        super::common::check_file_fits(&path)?;
        sdflow::read_points(&path)?
    };
    let m = target.len() / d;
    if m < 2 {
        return Err(Error::InvalidArgument(
            "the target needs at least 2 points".into(),
        ));
    }
    let steps = args.steps.unwrap_or(if model {
        mdef().flow.steps
    } else {
        pdef().steps
    });
    let config = ParticleConfig {
        steps,
        sigma_max: args.sigma_max,
        sigma_min: args.sigma_min.unwrap_or(if model {
            mdef().flow.sigma_min
        } else {
            pdef().sigma_min
        }),
        eta: args
            .eta
            .unwrap_or(if model { mdef().flow.eta } else { pdef().eta }),
        seed: (args.seed ^ (args.seed >> 32)) as u32,
        leave_one_out: args.leave_one_out,
        progress_every: args.progress_every,
    };
    config.validate()?;
    if model {
        return run_model(opts, &args, config, &target, d, toy);
    }
    let choice = device::choose(opts, Backend::Gpu)?;
    let ctx = choice.device().require_gpu("score-difference flow")?;
    check_points(ctx, &[("--n", args.n), ("--target-n", m)], d)?;
    println!(
        "sdflow: target {} ({m} points, d = {d}), {} particles from N(0, I), {} steps, σ {} → {}, η = {}, on {}",
        args.target, args.n, config.steps, args.sigma_max, config.sigma_min, config.eta, ctx.describe()
    );
    let init = Rng::new(args.seed.wrapping_add(1)).gaussian_points(args.n, d, &[0.0], 1.0);
    let target_t = GpuTensor::from_slice(ctx, &target, &[m, d])?;
    let init_t = GpuTensor::from_slice(ctx, &init, &[args.n, d])?;
    let h = bandwidth(&args, &target, d)?;
    // Progress: MMD² between the first 1024 particles and 1024 target points.
    let sub = 1024;
    let target_sub = head(ctx, &target_t, sub)?;
    let mut flow = ParticleFlow::new(ctx, &target_t, &init_t, config.clone())?;
    let t0 = Instant::now();
    let init_sub = head(ctx, &init_t, sub)?;
    let mmd_init = sdflow::mmd2(ctx, &init_sub, &target_sub, h)?;
    let energy_init = sdflow::energy_distance(ctx, &init_sub, &target_sub)?;
    println!(
        "step {:>6}  MMD² {mmd_init:.5}  energy {energy_init:.5}  (progress on ≤ {sub} points; the starting noise)",
        0
    );
    flow.run(ctx, |p, x| {
        let xs = head(ctx, x, sub)?;
        let mmd = sdflow::mmd2(ctx, &xs, &target_sub, h)?;
        let energy = sdflow::energy_distance(ctx, &xs, &target_sub)?;
        if !(mmd.is_finite() && energy.is_finite()) {
            return Err(Error::NonFinite(format!(
                "particles diverged by step {}",
                p.step
            )));
        }
        println!(
            "step {:>6}/{}  σ {:.4}  MMD² {mmd:.5}  energy {energy:.5}  ({:.1} s)",
            p.step,
            p.steps,
            p.sigma,
            t0.elapsed().as_secs_f64()
        );
        Ok(())
    })?;
    let secs = t0.elapsed().as_secs_f64();
    let out = flow.particles().to_vec(ctx)?;
    if out.iter().any(|v| !v.is_finite()) {
        return Err(Error::NonFinite("particles are not finite".into()));
    }
    println!(
        "done: {} steps in {secs:.2} s ({:.1} steps/s)",
        config.steps,
        config.steps as f64 / secs
    );
    // With small σ the particles settle on the target samples themselves, so figures against
    // the sample they were fitted to read below zero; a held-out sample measures the fit.
    let (reference, which) = held_out(&args, &target, m, d, toy)?;
    let ref_t = GpuTensor::from_slice(ctx, &reference, &[reference.len() / d, d])?;
    let fitted = if toy {
        target_t
    } else {
        head(ctx, &target_t, m / 2)?
    };
    let fig = Figures::measure(ctx, [flow.particles(), &init_t, &fitted], &ref_t, h)?;
    fig.print(&format!("{} particles", args.n), which, h);
    if let Some(path) = &args.plot {
        let chart = ScatterChart::from_rows(
            &format!(
                "Score-difference flow on {}: particles over the target",
                args.target
            ),
            &target,
            &out,
            d,
        )?
        .subtitle(format!(
            "{} particles after {} steps; against {which}: MMD² {:.4} (h = {h:.3}), energy \
             distance {:.4}",
            args.n, config.steps, fig.mmd, fig.energy
        ))
        .names("target sample", "particles");
        chart.write(path)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// The kernel bandwidth of every MMD² of a run: given, or the median distance within the
/// target sample (one value for the progress lines and the final figures alike).
fn bandwidth(args: &Args, target: &[f32], d: usize) -> Result<f64> {
    match args.bandwidth {
        Some(h) => Ok(h as f64),
        None => sdflow::median_bandwidth(target, target, d),
    }
}

/// The sample the final figures are measured against: a fresh draw of a toy target, or the
/// second half of a target file (the first half then stands for "the target itself").
fn held_out(
    args: &Args,
    target: &[f32],
    m: usize,
    d: usize,
    toy: bool,
) -> Result<(Vec<f32>, &'static str)> {
    if toy {
        let fresh = sdflow::toy_target(&args.target, m, args.seed ^ 0x005e_ed0f_ba5e)?;
        Ok((fresh, "a held-out sample of the target"))
    } else {
        Ok((
            target[(m / 2) * d..].to_vec(),
            "the second half of the target file",
        ))
    }
}

/// The final figures with their scale.
struct Figures {
    mmd: f64,
    energy: f64,
    noise_mmd: f64,
    noise_energy: f64,
    floor_mmd: f64,
    floor_energy: f64,
}

impl Figures {
    /// MMD² and energy distance to `reference` of the result, the starting noise and the fitted
    /// target sample (in that order in `sets`).
    fn measure(
        ctx: &GpuContext,
        sets: [&GpuTensor; 3],
        reference: &GpuTensor,
        h: f64,
    ) -> Result<Self> {
        let mmd = |t: &GpuTensor| sdflow::mmd2(ctx, t, reference, h);
        let energy = |t: &GpuTensor| sdflow::energy_distance(ctx, t, reference);
        Ok(Self {
            mmd: mmd(sets[0])?,
            energy: energy(sets[0])?,
            noise_mmd: mmd(sets[1])?,
            noise_energy: energy(sets[1])?,
            floor_mmd: mmd(sets[2])?,
            floor_energy: energy(sets[2])?,
        })
    }

    fn print(&self, what: &str, against: &str, h: f64) {
        println!(
            "final, against {against} (lower is better; both are unbiased estimates whose value \
             for two samples of one distribution is 0 on average and may read slightly below 0):"
        );
        println!("  {:<32} {:>10} {:>10}", "", "MMD²", "energy");
        for (name, m, e) in [
            (what, self.mmd, self.energy),
            (
                "the starting noise N(0, I)",
                self.noise_mmd,
                self.noise_energy,
            ),
            (
                "another target sample (floor)",
                self.floor_mmd,
                self.floor_energy,
            ),
        ] {
            println!("  {name:<32} {m:>10.6} {e:>10.6}");
        }
        println!(
            "  (Gaussian kernel of bandwidth h = {h:.4} for every MMD² of this run; energy \
             distance needs none)"
        );
    }
}

/// `--mode model`: train a generator, report progress on its training batch and the final
/// metrics of fresh samples.
fn run_model(
    opts: &ContextOptions,
    args: &Args,
    flow: ParticleConfig,
    target: &[f32],
    d: usize,
    toy: bool,
) -> Result<()> {
    let activation = match args.activation {
        Act::Silu => Activation::Silu,
        Act::LeakyRelu => Activation::LeakyRelu(0.2),
    };
    let config = ModelConfig {
        flow,
        batch: args.batch,
        latent_dim: args.latent_dim,
        width: args.width,
        depth: args.depth,
        activation,
        optim: OptimConfig {
            lr: args.lr,
            weight_decay: args.weight_decay,
            ..OptimConfig::default()
        },
        init_seed: args.seed,
    };
    config.validate()?;
    let m = target.len() / d;
    let choice = device::choose(opts, Backend::Gpu)?;
    let ctx = choice.device().require_gpu("score-difference flow")?;
    check_points(
        ctx,
        &[("--n", args.n), ("--target-n", m), ("--batch", args.batch)],
        d,
    )?;
    let target_t = GpuTensor::from_slice(ctx, target, &[m, d])?;
    let mut gen = ModelFlow::new(ctx, &target_t, config.clone())?;
    println!(
        "sdflow model: target {} ({m} points, d = {d}), generator {} → {}×{} ({:?}) → {d} \
         ({} parameters), batch {}, {} steps, σ {} → {}, η = {}, lr {}, on {}",
        args.target,
        config.latent_dim,
        config.depth,
        config.width,
        activation,
        gen.generator().graph.param_count(),
        config.batch,
        config.flow.steps,
        config.flow.sigma_max,
        config.flow.sigma_min,
        config.flow.eta,
        config.optim.lr,
        ctx.describe()
    );
    let (reference, which) = held_out(args, target, m, d, toy)?;
    let ref_t = GpuTensor::from_slice(ctx, &reference, &[reference.len() / d, d])?;
    let sub = 1024;
    let ref_sub = head(ctx, &ref_t, sub)?;
    let h = bandwidth(args, target, d)?;
    let sample_seed = args.seed.wrapping_add(17);
    let init_t = GpuTensor::from_slice(ctx, &gen.sample(args.n, sample_seed)?, &[args.n, d])?;
    let mmd0 = sdflow::mmd2(ctx, &init_t, &ref_t, h)?;
    let e0 = sdflow::energy_distance(ctx, &init_t, &ref_t)?;
    println!(
        "step {:>6}  fresh samples: MMD² {mmd0:.5}  energy {e0:.5}  (the untrained generator)",
        0
    );
    let t0 = Instant::now();
    gen.run(|p, g| {
        let xs = head(ctx, g.generated(), sub)?;
        let mmd = sdflow::mmd2(ctx, &xs, &ref_sub, h)?;
        let energy = sdflow::energy_distance(ctx, &xs, &ref_sub)?;
        println!(
            "step {:>6}/{}  σ {:.4}  loss {:.5}  batch MMD² {mmd:.5}  energy {energy:.5}  ({:.1} s)",
            p.step, p.steps, p.sigma, p.loss, t0.elapsed().as_secs_f64()
        );
        Ok(())
    })?;
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "done: {} steps in {secs:.2} s ({:.1} steps/s)",
        config.flow.steps,
        config.flow.steps as f64 / secs
    );
    let out_t = gen.sample_tensor(args.n, sample_seed)?;
    let out = out_t.to_vec(ctx)?;
    if out.iter().any(|v| !v.is_finite()) {
        return Err(Error::NonFinite("generator samples are not finite".into()));
    }
    let noise = Rng::new(args.seed.wrapping_add(1)).gaussian_points(args.n, d, &[0.0], 1.0);
    let noise_t = GpuTensor::from_slice(ctx, &noise, &[args.n, d])?;
    let fitted = if toy {
        target_t
    } else {
        head(ctx, &target_t, m / 2)?
    };
    let fig = Figures::measure(ctx, [&out_t, &noise_t, &fitted], &ref_t, h)?;
    fig.print(&format!("{} fresh generator samples", args.n), which, h);
    if let Some(path) = &args.plot {
        let chart = ScatterChart::from_rows(
            &format!(
                "Score-difference flow on {}: generator samples over the target",
                args.target
            ),
            &reference,
            &out,
            d,
        )?
        .subtitle(format!(
            "{} fresh samples after {} steps; against {which}: MMD² {:.4} (h = {h:.3}), energy \
             distance {:.4}",
            args.n, config.flow.steps, fig.mmd, fig.energy
        ))
        .names(
            if toy {
                "held-out target sample"
            } else {
                "target sample"
            },
            "generated",
        );
        chart.write(path)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
