//! `fisherflow sdflow`: score-difference flow on 2-D toy targets or point files.

use std::path::PathBuf;
use std::time::Instant;

use fisherflow::autodiff::{Activation, OptimConfig};
use fisherflow::device::{self, Backend};
use fisherflow::gpu::{ContextOptions, GpuContext, GpuTensor, Recorder};
use fisherflow::plot::ScatterChart;
use fisherflow::sdflow::{self, ModelConfig, ModelFlow, ParticleConfig, ParticleFlow, Rng};
use fisherflow::{Error, Result};

/// Arguments of `fisherflow sdflow`.
#[derive(clap::Args)]
pub struct Args {
    /// Target: ring8, moons, checkerboard, swissroll, or a file of points (one a line,
    /// whitespace or comma separated).
    #[arg(long)]
    target: String,
    /// `particles` (move samples directly) or `model` (train a generator MLP g_θ(z) regressed
    /// onto the moved particles).
    #[arg(long, default_value = "particles")]
    mode: String,
    /// Number of particles, or of fresh generator samples evaluated in model mode (and of
    /// toy-target samples unless --target-n is given).
    #[arg(long, default_value_t = 4096)]
    n: usize,
    /// Number of samples drawn from a toy target.
    #[arg(long)]
    target_n: Option<usize>,
    /// Number of steps.
    #[arg(long, default_value_t = 500)]
    steps: usize,
    /// σ at the first step.
    #[arg(long, default_value_t = 2.0)]
    sigma_max: f32,
    /// σ at the last step (geometric schedule in between) [default: 0.05 for particles, 0.3
    /// for model].
    #[arg(long)]
    sigma_min: Option<f32>,
    /// Step size η (particles move by η σ² v) [default: 0.5 for particles, 1.0 for model].
    #[arg(long)]
    eta: Option<f32>,
    /// Model mode: generated samples per step.
    #[arg(long, default_value_t = 512)]
    batch: usize,
    /// Model mode: latent dimension of the generator.
    #[arg(long, default_value_t = 4)]
    latent_dim: usize,
    /// Model mode: hidden width of the generator MLP.
    #[arg(long, default_value_t = 128)]
    width: usize,
    /// Model mode: number of hidden layers.
    #[arg(long, default_value_t = 3)]
    depth: usize,
    /// Model mode: hidden activation, `silu` or `leaky-relu`.
    #[arg(long, default_value = "silu")]
    activation: String,
    /// Model mode: AdamW learning rate.
    #[arg(long, default_value_t = 2e-3)]
    lr: f32,
    /// Model mode: AdamW (decoupled) weight decay.
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f32,
    /// Seed of the target sample, the initial particles and the GPU noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Leave each particle out of its own source sum.
    #[arg(long)]
    leave_one_out: bool,
    /// Steps between progress lines (the only read-backs).
    #[arg(long, default_value_t = 50)]
    progress_every: usize,
    /// Gaussian-kernel bandwidth of the MMD (default: median heuristic on the final sets).
    #[arg(long)]
    bandwidth: Option<f64>,
    /// Write a scatter plot of the generated points (orange) over the target (light blue): PNG
    /// when the name ends in .png, else SVG.
    #[arg(long)]
    plot: Option<PathBuf>,
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
    let model = match args.mode.as_str() {
        "particles" => false,
        "model" => true,
        m => {
            return Err(Error::InvalidArgument(format!(
                "unknown --mode {m:?}; expected particles or model"
            )))
        }
    };
    if args.n < 2 {
        return Err(Error::InvalidArgument("--n must be at least 2".into()));
    }
    let toy = sdflow::TOY_TARGETS.contains(&args.target.as_str());
    let (target, d) = if toy {
        let m = args.target_n.unwrap_or(args.n);
        (sdflow::toy_target(&args.target, m, args.seed)?, 2)
    } else {
        let path = PathBuf::from(&args.target);
        if !path.exists() {
            return Err(Error::InvalidArgument(format!(
                "--target {:?} is neither a toy target ({}) nor an existing file",
                args.target,
                sdflow::TOY_TARGETS.join(", ")
            )));
        }
        sdflow::read_points(&path)?
    };
    let m = target.len() / d;
    if m < 2 {
        return Err(Error::InvalidArgument(
            "the target needs at least 2 points".into(),
        ));
    }
    let config = ParticleConfig {
        steps: args.steps,
        sigma_max: args.sigma_max,
        sigma_min: args.sigma_min.unwrap_or(if model { 0.3 } else { 0.05 }),
        eta: args.eta.unwrap_or(if model { 1.0 } else { 0.5 }),
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
    println!(
        "sdflow: target {} ({m} points, d = {d}), {} particles from N(0, I), {} steps, σ {} → {}, η = {}, on {}",
        args.target,
        args.n,
        args.steps,
        args.sigma_max,
        config.sigma_min,
        config.eta,
        ctx.describe()
    );
    let init = Rng::new(args.seed.wrapping_add(1)).gaussian_points(args.n, d, &[0.0], 1.0);
    let target_t = GpuTensor::from_slice(ctx, &target, &[m, d])?;
    let init_t = GpuTensor::from_slice(ctx, &init, &[args.n, d])?;
    // Progress metric: MMD² between the first 1024 particles and 1024 target points, with the
    // median-heuristic bandwidth of the initial sets.
    let sub = 1024;
    let target_sub = head(ctx, &target_t, sub)?;
    let h_progress = match args.bandwidth {
        Some(h) => h,
        None => sdflow::median_bandwidth(&init, &target, d)?,
    };
    let mut flow = ParticleFlow::new(ctx, &target_t, &init_t, config)?;
    let t0 = Instant::now();
    let init_sub = head(ctx, &init_t, sub)?;
    let mmd_init = sdflow::mmd2(ctx, &init_sub, &target_sub, h_progress)?;
    let energy_init = sdflow::energy_distance(ctx, &init_sub, &target_sub)?;
    println!(
        "step {:>6}  MMD² {mmd_init:.5}  energy {energy_init:.5}  (progress on ≤ {sub} points, MMD h = {h_progress:.3})",
        0
    );
    flow.run(ctx, |p, x| {
        let xs = head(ctx, x, sub)?;
        let mmd = sdflow::mmd2(ctx, &xs, &target_sub, h_progress)?;
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
    let (h, how) = match args.bandwidth {
        Some(h) => (h, "given"),
        None => (
            sdflow::median_bandwidth(&out, &target, d)?,
            "median heuristic",
        ),
    };
    let mmd = sdflow::mmd2(ctx, flow.particles(), &target_t, h)?;
    let energy = sdflow::energy_distance(ctx, flow.particles(), &target_t)?;
    // With small σ the particles settle on the target samples themselves, so metrics against
    // the samples they were fitted to read below zero; a held-out sample measures the fit.
    let held_out = if toy {
        let fresh = sdflow::toy_target(&args.target, m, args.seed ^ 0x005e_ed0f_ba5e)?;
        let fresh_t = GpuTensor::from_slice(ctx, &fresh, &[m, d])?;
        Some((
            sdflow::mmd2(ctx, flow.particles(), &fresh_t, h)?,
            sdflow::energy_distance(ctx, flow.particles(), &fresh_t)?,
            sdflow::mmd2(ctx, &target_t, &fresh_t, h)?,
            sdflow::energy_distance(ctx, &target_t, &fresh_t)?,
        ))
    } else {
        None
    };
    println!(
        "done: {} steps in {secs:.2} s ({:.1} steps/s)",
        args.steps,
        args.steps as f64 / secs
    );
    println!(
        "final vs the fitted target sample: MMD² {mmd:.6} (Gaussian kernel, h = {h:.4}, {how}; unbiased, all {} vs {m} points), energy distance {energy:.6}",
        args.n
    );
    if let Some((mh, eh, mf, ef)) = held_out {
        println!(
            "final vs a held-out target sample: MMD² {mh:.6}, energy distance {eh:.6} (two target samples: MMD² {mf:.6}, energy {ef:.6})"
        );
    }
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
            "{} particles after {} steps; against the target sample: MMD² {mmd:.4} (h = \
             {h:.3}), energy distance {energy:.4}",
            args.n, args.steps
        ))
        .names("target sample", "particles");
        chart.write(path)?;
        println!("wrote {}", path.display());
    }
    Ok(())
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
    let activation = match args.activation.as_str() {
        "silu" => Activation::Silu,
        "leaky-relu" | "leaky_relu" => Activation::LeakyRelu(0.2),
        a => {
            return Err(Error::InvalidArgument(format!(
                "unknown --activation {a:?}; expected silu or leaky-relu"
            )))
        }
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
    // Held-out target sample for toy targets; otherwise the fitted points themselves.
    let eval_target = if toy {
        sdflow::toy_target(&args.target, m, args.seed ^ 0x005e_ed0f_ba5e)?
    } else {
        target.to_vec()
    };
    let eval_t = GpuTensor::from_slice(ctx, &eval_target, &[m, d])?;
    let sub = 1024;
    let eval_sub = head(ctx, &eval_t, sub)?;
    let sample_seed = args.seed.wrapping_add(17);
    let init = gen.sample(args.n, sample_seed)?;
    let h = match args.bandwidth {
        Some(h) => h,
        None => sdflow::median_bandwidth(&init, &eval_target, d)?,
    };
    let init_t = GpuTensor::from_slice(ctx, &init, &[args.n, d])?;
    let mmd0 = sdflow::mmd2(ctx, &init_t, &eval_t, h)?;
    let e0 = sdflow::energy_distance(ctx, &init_t, &eval_t)?;
    println!(
        "step {:>6}  fresh samples: MMD² {mmd0:.5}  energy {e0:.5}  (MMD h = {h:.3})",
        0
    );
    let t0 = Instant::now();
    gen.run(|p, g| {
        let xs = head(ctx, g.generated(), sub)?;
        let mmd = sdflow::mmd2(ctx, &xs, &eval_sub, h)?;
        let energy = sdflow::energy_distance(ctx, &xs, &eval_sub)?;
        println!(
            "step {:>6}/{}  σ {:.4}  loss {:.5}  batch MMD² {mmd:.5}  energy {energy:.5}  ({:.1} s)",
            p.step,
            p.steps,
            p.sigma,
            p.loss,
            t0.elapsed().as_secs_f64()
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
    let mmd = sdflow::mmd2(ctx, &out_t, &eval_t, h)?;
    let energy = sdflow::energy_distance(ctx, &out_t, &eval_t)?;
    let which = if toy { "a held-out" } else { "the fitted" };
    println!(
        "final: {} fresh samples vs {which} target sample ({m} points): MMD² {mmd:.6} (Gaussian \
         kernel, h = {h:.4}, unbiased), energy distance {energy:.6}",
        args.n
    );
    if toy {
        println!(
            "  (two target samples: MMD² {:.6}, energy {:.6})",
            sdflow::mmd2(ctx, &target_t, &eval_t, h)?,
            sdflow::energy_distance(ctx, &target_t, &eval_t)?
        );
    }
    if let Some(path) = &args.plot {
        let chart = ScatterChart::from_rows(
            &format!(
                "Score-difference flow on {}: generator samples over the target",
                args.target
            ),
            &eval_target,
            &out,
            d,
        )?
        .subtitle(format!(
            "{} fresh samples after {} steps; against {which} target sample: MMD² {mmd:.4} \
             (h = {h:.3}), energy distance {energy:.4}",
            args.n, config.flow.steps
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
