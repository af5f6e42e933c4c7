//! `fisherflow train | sample | eval`: Fisher-Flow on toy targets and sequence files.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use fisherflow::autodiff::OptimConfig;
use fisherflow::checkpoint::Checkpoint;
use fisherflow::data::dna::{DnaSource, DnaSpec, DEFAULT_TRAIN_SEQUENCES};
use fisherflow::data::metrics::{
    joint_divergence, kl_to_target, marginal_kl, JointOver, DEFAULT_SMOOTHING,
};
use fisherflow::data::toy::ToyTarget;
use fisherflow::data::{Alphabet, Format, SequenceDataset};
use fisherflow::device::Device;
use fisherflow::device::{self, Backend, Choice};
use fisherflow::flow::train::META_DATA;
use fisherflow::flow::{
    sample_with_progress, FlowConfig, FlowModel, Geometry, LrSchedule, OtMode, SampleConfig,
    Solver, TrainConfig, Trainer,
};
use fisherflow::gpu::ContextOptions;
use fisherflow::kernels::Precision;
use fisherflow::plot::{LineChart, Scale};
use fisherflow::{Error, Result};

/// Sequences drawn from a toy target to train on.
const TOY_TRAIN_SEQUENCES: usize = 100_000;
/// Checkpoint metadata key of the data alphabet.
const META_ALPHABET: &str = "fisherflow.alphabet";

/// Where the data come from.
#[derive(clap::Args, Clone, Debug)]
pub struct DataArgs {
    /// `toy:L=4,K=20,seed=0` (independent categoricals, probs softmax(U[0,1))),
    /// `dna:L=128,classes=3,seed=0` (synthetic DNA with exact likelihood; see `fisherflow data`)
    /// or a file: token ids separated by spaces, one sequence a line; characters with
    /// --alphabet; FASTA.
    #[arg(long)]
    data: Option<String>,
    /// Characters of the tokens (e.g. ACGT), for character and FASTA files.
    #[arg(long)]
    alphabet: Option<String>,
    /// File format: ids, chars or fasta (default: fasta for .fa/.fasta/.fna or a leading '>',
    /// chars when --alphabet is given, else ids).
    #[arg(long)]
    format: Option<String>,
}

/// The data set and, for toy data, the true distribution.
struct Loaded {
    spec: String,
    data: SequenceDataset,
    target: Option<ToyTarget>,
}

pub(super) fn parse_format(s: &str) -> Result<Format> {
    match s.to_ascii_lowercase().as_str() {
        "ids" => Ok(Format::Ids),
        "chars" => Ok(Format::Chars),
        "fasta" => Ok(Format::Fasta),
        _ => Err(Error::InvalidArgument(format!(
            "unknown format {s:?}; use ids, chars or fasta"
        ))),
    }
}

pub(super) fn guess_format(path: &Path, alphabet: bool) -> Format {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let fasta_ext = matches!(ext.as_str(), "fa" | "fasta" | "fna" | "ffn");
    let leading = std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim_start().starts_with('>'))
        })
        .unwrap_or(false);
    if fasta_ext || leading {
        Format::Fasta
    } else if alphabet {
        Format::Chars
    } else {
        Format::Ids
    }
}

fn load(spec: &str, args: &DataArgs, seed: u64) -> Result<Loaded> {
    if spec == "toy" || spec.starts_with("toy:") {
        let target = ToyTarget::from_spec(if spec == "toy" { "toy:" } else { spec })?;
        let data = target.sample(TOY_TRAIN_SEQUENCES, seed ^ 0x5eed)?;
        return Ok(Loaded {
            spec: spec.to_string(),
            data,
            target: Some(target),
        });
    }
    if DnaSpec::is_spec(spec) {
        let data = DnaSource::from_spec(spec)?.sample(DEFAULT_TRAIN_SEQUENCES, seed)?;
        return Ok(Loaded {
            spec: spec.to_string(),
            data,
            target: None,
        });
    }
    let path = Path::new(spec);
    if !path.exists() {
        return Err(Error::InvalidArgument(format!(
            "--data {spec:?}: no such file (use toy:L=4,K=20 for the toy target)"
        )));
    }
    let alphabet = args
        .alphabet
        .as_deref()
        .map(|a| Alphabet::new(a, true))
        .transpose()?;
    let format = match &args.format {
        Some(f) => parse_format(f)?,
        None => guess_format(path, alphabet.is_some()),
    };
    let data = SequenceDataset::read(path, format, None, alphabet.as_ref())?;
    Ok(Loaded {
        spec: spec.to_string(),
        data,
        target: None,
    })
}

/// The device for `--cpu` / `--gpu` (neither: the library's automatic choice), reported on
/// stderr.
fn context(opts: &ContextOptions, cpu: bool, gpu: bool) -> Result<Choice> {
    let backend = match (cpu, gpu) {
        (true, true) => {
            return Err(Error::InvalidArgument(
                "--cpu and --gpu exclude each other".into(),
            ))
        }
        (true, false) => Backend::Cpu,
        (false, true) => Backend::Gpu,
        (false, false) => Backend::Auto,
    };
    let choice = device::choose(opts, backend)?;
    eprintln!("backend: {}", choice.reason);
    Ok(choice)
}

/// Arguments of `fisherflow train`.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// `toy`: the quick demo (toy target L=4, K=5; trains, samples and reports KL).
    preset: Option<String>,
    #[command(flatten)]
    data: DataArgs,
    /// Training steps (total, counting steps done before --resume).
    #[arg(long)]
    steps: Option<u64>,
    /// Sequences per step.
    #[arg(long)]
    batch: Option<usize>,
    /// Hidden width of the MLP.
    #[arg(long)]
    hidden: Option<usize>,
    /// Residual blocks of the MLP.
    #[arg(long)]
    blocks: Option<usize>,
    /// Learning rate (AdamW).
    #[arg(long)]
    lr: Option<f32>,
    /// Learning-rate schedule: cosine (the default: decays to 1% of --lr over --steps) or
    /// constant (the papers' setting).
    #[arg(long)]
    lr_schedule: Option<String>,
    /// Decoupled weight decay.
    #[arg(long)]
    weight_decay: Option<f32>,
    /// Clip the global gradient norm (0: no clipping).
    #[arg(long)]
    clip: Option<f32>,
    /// Minibatch coupling: none, exact or sinkhorn.
    #[arg(long)]
    ot: Option<String>,
    /// Sinkhorn's entropic regularisation.
    #[arg(long, default_value_t = 0.05)]
    ot_eps: f32,
    /// Sinkhorn iterations per step.
    #[arg(long, default_value_t = 50)]
    ot_iters: u32,
    /// fisher (flow on the sphere) or linear (flow matching on the simplex, the baseline).
    #[arg(long)]
    method: Option<String>,
    /// Seed of the parameters and every random draw.
    #[arg(long)]
    seed: Option<u64>,
    /// Checkpoint file (safetensors), written atomically.
    #[arg(long, default_value = "model.safetensors")]
    out: PathBuf,
    /// Continue from the checkpoint at --out.
    #[arg(long)]
    resume: bool,
    /// Start a new run even though --out exists (it is replaced at the first checkpoint).
    #[arg(long)]
    force: bool,
    /// Write a checkpoint every N steps (0: only at the end).
    #[arg(long, default_value_t = 500)]
    checkpoint_every: u64,
    /// Read the loss back every N steps.
    #[arg(long, default_value_t = 50)]
    log_every: u64,
    /// Train on the CPU backend even when a GPU is available.
    #[arg(long)]
    cpu: bool,
    /// Train on the GPU adapter even when it is a software renderer.
    #[arg(long)]
    gpu: bool,
    /// Samples drawn for the final evaluation (0: none).
    #[arg(long)]
    eval_samples: Option<usize>,
    /// Integration steps of the evaluation sampler (default 100; 50 for the demo).
    #[arg(long)]
    sample_steps: Option<usize>,
    /// Write the loss curve (mean loss of each --log-every interval against the step) to this
    /// file: PNG when the name ends in .png, else SVG.
    #[arg(long)]
    loss_curve: Option<PathBuf>,
}

struct Settings {
    flow: FlowConfig,
    cfg: TrainConfig,
}

/// `--lr-schedule`: `constant`, or `cosine` decaying to 1 % of the rate over `steps`.
fn parse_schedule(name: &str, steps: u64) -> Result<LrSchedule> {
    match name {
        "constant" => Ok(LrSchedule::Constant),
        "cosine" => Ok(LrSchedule::Cosine { steps, floor: 0.01 }),
        s => Err(Error::InvalidArgument(format!(
            "unknown --lr-schedule {s:?}; use constant or cosine"
        ))),
    }
}

fn settings(a: &TrainArgs, loaded: &Loaded, steps: u64) -> Result<Settings> {
    let geometry = match a.method.as_deref().unwrap_or("fisher") {
        "fisher" | "sphere" => Geometry::Sphere,
        "linear" | "simplex" => Geometry::Simplex,
        m => {
            return Err(Error::InvalidArgument(format!(
                "unknown method {m:?}; use fisher or linear"
            )))
        }
    };
    let hidden = a.hidden.unwrap_or(512);
    let mut flow = FlowConfig::new(loaded.data.len, loaded.data.vocab, hidden, geometry);
    if let Some(b) = a.blocks {
        flow.mlp.blocks = b;
    }
    let ot = match a.ot.as_deref().unwrap_or("none") {
        "none" => OtMode::None,
        "exact" => OtMode::Exact,
        "sinkhorn" => OtMode::Sinkhorn {
            eps: a.ot_eps,
            iters: a.ot_iters,
        },
        o => {
            return Err(Error::InvalidArgument(format!(
                "unknown --ot {o:?}; use none, exact or sinkhorn"
            )))
        }
    };
    let clip = a.clip.unwrap_or(1.0);
    let schedule = parse_schedule(a.lr_schedule.as_deref().unwrap_or("cosine"), steps)?;
    let cfg = TrainConfig {
        batch: a.batch.unwrap_or(512),
        optim: OptimConfig {
            lr: a.lr.unwrap_or(1e-3),
            weight_decay: a.weight_decay.unwrap_or(0.0),
            max_grad_norm: if clip > 0.0 { Some(clip) } else { None },
            ..OptimConfig::default()
        },
        ot,
        seed: a.seed.unwrap_or(0),
        schedule,
    };
    Ok(Settings { flow, cfg })
}

fn save(tr: &Trainer<'_>, out: &Path, loaded: &Loaded) -> Result<()> {
    let mut ck = tr.checkpoint()?;
    ck.set_meta(META_DATA, loaded.spec.clone());
    if let Some(a) = &loaded.data.alphabet {
        ck.set_meta(META_ALPHABET, a.clone());
    }
    ck.save(out)
}

/// `fisherflow train`.
pub fn train(opts: &ContextOptions, a: TrainArgs) -> Result<()> {
    let demo = match a.preset.as_deref() {
        None => false,
        Some("toy") => true,
        Some(p) => {
            return Err(Error::InvalidArgument(format!(
                "unknown preset {p:?}; the preset is `toy`"
            )))
        }
    };
    let resumed = if a.resume {
        Some(Checkpoint::load(&a.out).map_err(|e| match e {
            Error::Checkpoint(m) => Error::Checkpoint(format!("cannot resume: {m}")),
            e => e,
        })?)
    } else {
        if a.out.exists() && !demo && !a.force {
            return Err(Error::InvalidArgument(format!(
                "{} exists: pass --resume to continue it, --force to replace it, or another --out",
                a.out.display()
            )));
        }
        None
    };
    let spec = match (&a.data.data, &resumed) {
        (Some(s), Some(ck)) => {
            let stored = ck.meta(META_DATA)?;
            if stored != s {
                return Err(Error::InvalidArgument(format!(
                    "the checkpoint was trained on {stored:?}, not {s:?}"
                )));
            }
            s.clone()
        }
        (Some(s), None) => s.clone(),
        (None, Some(ck)) => ck.meta(META_DATA)?.to_string(),
        // The demo uses K = 5, where a minute of CPU training gets well below uniform noise.
        (None, None) if demo => "toy:L=4,K=5,seed=0".to_string(),
        (None, None) => "toy:L=4,K=20,seed=0".to_string(),
    };
    let seed = a.seed.unwrap_or(0);
    let mut data_args = a.data.clone();
    if let (None, Some(ck)) = (&data_args.alphabet, &resumed) {
        data_args.alphabet = ck.meta(META_ALPHABET).ok().map(str::to_string);
    }
    let loaded = load(&spec, &data_args, seed)?;
    let steps = a.steps.unwrap_or(if demo { 2000 } else { 5000 });
    if resumed.is_some() {
        let given: Vec<&str> = [
            ("--hidden", a.hidden.is_some()),
            ("--blocks", a.blocks.is_some()),
            ("--batch", a.batch.is_some()),
            ("--lr", a.lr.is_some()),
            ("--lr-schedule", a.lr_schedule.is_some()),
            ("--weight-decay", a.weight_decay.is_some()),
            ("--clip", a.clip.is_some()),
            ("--method", a.method.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        if !given.is_empty() {
            eprintln!(
                "note: {} ignored: a resumed run keeps the settings stored in its checkpoint",
                given.join(", ")
            );
        }
    }
    let (flow, cfg) = match &resumed {
        Some(ck) => {
            let model = FlowModel::from_checkpoint(ck)?;
            let cfg: TrainConfig = serde_json::from_str(
                ck.meta(fisherflow::flow::train::META_TRAIN)?,
            )
            .map_err(|e| Error::Checkpoint(format!("training settings are malformed: {e}")))?;
            (model.config, cfg)
        }
        None => {
            let s = settings(&a, &loaded, steps)?;
            (s.flow, s.cfg)
        }
    };
    if let LrSchedule::Cosine { steps: end, .. } = cfg.schedule {
        if steps > end {
            eprintln!(
                "note: the run's cosine schedule ends at step {end} (set when it started); \
                 the steps after it run at its final rate"
            );
        }
    }
    let ctx = context(opts, a.cpu, a.gpu)?;
    eprintln!(
        "data: {} ({} sequences, L={}, K={}); model: {:?} flow, hidden {}, {} blocks; batch {}, lr {} ({}), OT {:?}",
        loaded.spec,
        loaded.data.n,
        loaded.data.len,
        loaded.data.vocab,
        flow.geometry,
        flow.mlp.hidden,
        flow.mlp.blocks,
        cfg.batch,
        cfg.optim.lr,
        match cfg.schedule {
            LrSchedule::Constant => "constant".to_string(),
            LrSchedule::Cosine { steps, floor } => {
                format!("cosine to {floor} of it over {steps} steps")
            }
        },
        cfg.ot
    );
    let mut tr = Trainer::new(ctx.device(), flow, cfg, loaded.data.clone())?;
    if let Some(ck) = &resumed {
        tr.restore(ck)?;
        eprintln!(
            "resumed from {} at step {}",
            a.out.display(),
            tr.steps_done()
        );
    }
    eprintln!(
        "{} parameters; {}",
        tr.model().param_count(),
        tr.backend_name()
    );
    run_loop(&mut tr, steps, &a, &loaded)?;

    let n_eval = a
        .eval_samples
        .unwrap_or(if loaded.target.is_some() { 8192 } else { 0 });
    if n_eval > 0 {
        let sample_steps = a.sample_steps.unwrap_or(if demo { 50 } else { 100 });
        evaluate(ctx.device(), &tr, &loaded, n_eval, sample_steps)?;
    }
    Ok(())
}

fn run_loop(tr: &mut Trainer<'_>, steps: u64, a: &TrainArgs, loaded: &Loaded) -> Result<()> {
    let start = tr.steps_done();
    if start >= steps {
        eprintln!("already at step {start} of {steps}; nothing to train");
        return Ok(());
    }
    let tty = std::io::stderr().is_terminal();
    let bar = if tty {
        let pb = indicatif::ProgressBar::new(steps);
        pb.set_position(start);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} steps  {msg}  [{elapsed_precise} < {eta}]",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(pb)
    } else {
        None
    };
    let log_every = a.log_every.max(1);
    let t0 = Instant::now();
    let mut last_saved: Option<u64> = None;
    let mut done = start;
    let mut curve: Vec<(f64, f64)> = Vec::new();
    while done < steps {
        let n = log_every.min(steps - done);
        tr.train_steps(n as usize)?;
        done += n;
        let loss = match tr.take_mean_loss() {
            Ok(l) => l.unwrap_or(f32::NAN),
            Err(e) => {
                if let Some(pb) = &bar {
                    pb.abandon();
                }
                let kept = match last_saved {
                    Some(s) => format!(
                        "the last good checkpoint ({}, step {s}) is kept",
                        a.out.display()
                    ),
                    None if a.resume => {
                        format!("the checkpoint {} is left as it was", a.out.display())
                    }
                    None => "no checkpoint was written".to_string(),
                };
                if let Some(path) = &a.loss_curve {
                    // Keep the curve up to the failure; the training error is what is reported.
                    let _ = write_loss_curve(path, &curve, log_every, &tr.backend_name());
                }
                return Err(Error::NonFinite(format!("{e}; training stopped, {kept}")));
            }
        };
        curve.push((done as f64, loss as f64));
        let rate = (done - start) as f64 / t0.elapsed().as_secs_f64();
        let mut msg = format!("loss {loss:.4}  {rate:.1} steps/s");
        if tr.train_config().schedule != LrSchedule::Constant {
            msg += &format!("  lr {:.2e}", tr.learning_rate());
        }
        match &bar {
            Some(pb) => {
                pb.set_position(done);
                pb.set_message(msg);
            }
            None => eprintln!("step {done}/{steps}  {msg}"),
        }
        let due = a.checkpoint_every > 0 && done.is_multiple_of(a.checkpoint_every);
        if due || done == steps {
            save(tr, &a.out, loaded)?;
            last_saved = Some(done);
        }
    }
    if let Some(pb) = &bar {
        pb.finish();
    }
    eprintln!(
        "trained {} steps in {:.1}s ({:.1} steps/s); checkpoint: {}",
        steps - start,
        t0.elapsed().as_secs_f64(),
        (steps - start) as f64 / t0.elapsed().as_secs_f64(),
        a.out.display()
    );
    if let Some(path) = &a.loss_curve {
        write_loss_curve(path, &curve, log_every, &tr.backend_name())?;
    }
    Ok(())
}

fn write_loss_curve(
    path: &std::path::Path,
    curve: &[(f64, f64)],
    every: u64,
    backend: &str,
) -> Result<()> {
    LineChart::new(
        "Training loss",
        "training step",
        "loss (mean squared error of the vector field)",
    )
    .subtitle(format!("mean over every {every} steps, {backend}"))
    .lower_is_better()
    .series("loss", curve.to_vec())
    .write(path)?;
    eprintln!("loss curve written to {}", path.display());
    Ok(())
}

fn evaluate(
    device: Device,
    tr: &Trainer<'_>,
    loaded: &Loaded,
    n: usize,
    steps: usize,
) -> Result<()> {
    let sc = SampleConfig {
        n,
        steps,
        solver: Solver::Euler,
        seed: 12345,
        ..Default::default()
    };
    let t0 = Instant::now();
    let samples = fisherflow::flow::sample(device, &FlowModel::from_trainer(tr)?, &sc)?;
    let secs = t0.elapsed().as_secs_f64();
    let untrained = fisherflow::flow::sample(
        device,
        &FlowModel::untrained(*tr.flow_config(), tr.train_config().seed)?,
        &sc,
    )?;
    let noise = uniform_noise(n, loaded.data.len, loaded.data.vocab)?;
    eprintln!(
        "sampled {n} sequences with {steps} Euler steps in {secs:.1}s ({:.0} samples/s)",
        n as f64 / secs
    );
    match &loaded.target {
        Some(target) => {
            let kl = kl_to_target(&samples, &target.probs)?;
            let kl0 = kl_to_target(&untrained, &target.probs)?;
            let kln = kl_to_target(&noise, &target.probs)?;
            println!("KL(samples || target), mean over positions, {n} samples:");
            println!("  trained model    {kl:.5}");
            println!("  untrained model  {kl0:.5}");
            println!("  uniform noise    {kln:.5}");
            let exact = target.sample(n, 777)?;
            println!(
                "  (exact samples of the target: {:.5})",
                kl_to_target(&exact, &target.probs)?
            );
        }
        None => {
            let eps = DEFAULT_SMOOTHING;
            println!("divergence from the data ({n} samples):");
            for (name, s) in [
                ("trained model", &samples),
                ("untrained model", &untrained),
                ("uniform noise", &noise),
            ] {
                let m = marginal_kl(s, &loaded.data, eps)?;
                let j = joint_divergence(s, &loaded.data, eps)?;
                println!(
                    "  {name:<16} per-position KL {m:.5}  joint KL {:.5}  TV {:.5} ({})",
                    j.kl,
                    j.tv,
                    over(j.over)
                );
            }
        }
    }
    Ok(())
}

fn over(o: JointOver) -> &'static str {
    match o {
        JointOver::Sequences => "whole sequences",
        JointOver::Bigrams => "adjacent bigrams",
    }
}

/// Uniformly random tokens: the reference point of "no model at all".
fn uniform_noise(n: usize, l: usize, k: usize) -> Result<SequenceDataset> {
    let mut s = fisherflow::kernels::rng::PhiloxStream::new(99, 0, 0);
    let tokens = (0..n * l).map(|_| s.below(k as u64) as u32).collect();
    SequenceDataset::new(tokens, n, l, k, None)
}

/// Arguments of `fisherflow sample`.
#[derive(clap::Args)]
pub struct SampleArgs {
    /// A checkpoint written by `fisherflow train`.
    #[arg(long)]
    model: PathBuf,
    /// Number of sequences.
    #[arg(long, default_value_t = 1000)]
    n: usize,
    /// Integration steps.
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// euler, midpoint or rk4.
    #[arg(long, default_value = "euler")]
    solver: String,
    /// Seed of the prior draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output file (ids, or characters when the model was trained on an alphabet).
    #[arg(long)]
    out: PathBuf,
    /// Output format: ids, chars or fasta.
    #[arg(long)]
    format: Option<String>,
    /// Sample on the CPU backend.
    #[arg(long)]
    cpu: bool,
    /// Sample on the GPU adapter even when it is a software renderer.
    #[arg(long)]
    gpu: bool,
    /// Storage of the network's weights and activations: f32, or f16 (GPU only; needs the
    /// adapter's SHADER_F16 feature; implies --gpu).
    #[arg(long, default_value = "f32")]
    precision: String,
}

/// `fisherflow sample`.
pub fn sample(opts: &ContextOptions, a: SampleArgs) -> Result<()> {
    let ck = Checkpoint::load(&a.model)?;
    let model = FlowModel::from_checkpoint(&ck)?;
    let solver: Solver = a.solver.parse()?;
    let precision: Precision = a.precision.parse()?;
    if precision == Precision::F16 && a.cpu {
        return Err(Error::InvalidArgument(
            "--precision f16 runs on the GPU backend; drop --cpu".into(),
        ));
    }
    let ctx = context(opts, a.cpu, a.gpu || precision == Precision::F16)?;
    let sc = SampleConfig {
        n: a.n,
        steps: a.steps,
        solver,
        seed: a.seed,
        precision,
        ..Default::default()
    };
    let t0 = Instant::now();
    let bar = std::io::stderr().is_terminal().then(|| {
        let pb = indicatif::ProgressBar::new(sc.n as u64);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} sequences  {per_sec}  [{elapsed_precise} < {eta}]",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let mut progress = |done: usize, n: usize| match &bar {
        Some(pb) => pb.set_position(done as u64),
        None if done < n => eprintln!("sampled {done}/{n} sequences"),
        None => {}
    };
    let mut samples = sample_with_progress(ctx.device(), &model, &sc, &mut progress)?;
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    let secs = t0.elapsed().as_secs_f64();
    samples.alphabet = ck.meta(META_ALPHABET).ok().map(str::to_string);
    let format = match &a.format {
        Some(f) => parse_format(f)?,
        None if samples.alphabet.is_some() => Format::Chars,
        None => Format::Ids,
    };
    samples.write(&a.out, format)?;
    eprintln!(
        "wrote {} sequences to {} ({} steps of {:?}, {} network, {:.1}s, {:.0} samples/s)",
        a.n,
        a.out.display(),
        a.steps,
        solver,
        precision,
        secs,
        a.n as f64 / secs
    );
    Ok(())
}

/// Arguments of `fisherflow eval`.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// Generated sequences (same formats as the data).
    #[arg(long)]
    samples: PathBuf,
    /// Format of the samples file: ids, chars or fasta (default: guessed as for --data).
    #[arg(long)]
    samples_format: Option<String>,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    dna: super::data::DnaEvalArgs,
}

/// `fisherflow eval`.
pub fn eval(a: EvalArgs) -> Result<()> {
    let spec =
        a.data.data.clone().ok_or_else(|| {
            Error::InvalidArgument("--data is required (toy:... or a file)".into())
        })?;
    if DnaSpec::is_spec(&spec) {
        let (fmt, alphabet) = (a.samples_format.as_deref(), a.data.alphabet.as_deref());
        return super::data::eval_dna(&spec, &a.samples, fmt, alphabet, &a.dna);
    }
    super::data::refuse_dna_options(&a.dna)?;
    let loaded = load(&spec, &a.data, 0)?;
    let alphabet = a
        .data
        .alphabet
        .as_deref()
        .or(loaded.data.alphabet.as_deref())
        .map(|s| Alphabet::new(s, true))
        .transpose()?;
    let format = match &a.samples_format {
        Some(f) => parse_format(f)?,
        None => guess_format(&a.samples, alphabet.is_some()),
    };
    let samples = SequenceDataset::read(
        &a.samples,
        format,
        Some(loaded.data.vocab),
        alphabet.as_ref(),
    )?;
    if samples.len != loaded.data.len {
        return Err(Error::Shape(format!(
            "the samples have length {}, the data {}",
            samples.len, loaded.data.len
        )));
    }
    println!(
        "{} samples of length {} over {} tokens",
        samples.n, samples.len, samples.vocab
    );
    match &loaded.target {
        Some(t) => println!(
            "per-position KL(samples || target): {:.5}",
            kl_to_target(&samples, &t.probs)?
        ),
        None => {
            let m = marginal_kl(&samples, &loaded.data, DEFAULT_SMOOTHING)?;
            let j = joint_divergence(&samples, &loaded.data, DEFAULT_SMOOTHING)?;
            println!("per-position KL(samples || data): {m:.5}");
            println!(
                "joint KL {:.5}, total variation {:.5} (over {})",
                j.kl,
                j.tv,
                over(j.over)
            );
        }
    }
    Ok(())
}

/// Arguments of `fisherflow toy-bench`.
#[derive(clap::Args)]
pub struct ToyBenchArgs {
    /// Category counts K (L = 4).
    #[arg(long, value_delimiter = ',', default_value = "5,20,80,160")]
    k: Vec<usize>,
    /// Training steps per run.
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    /// Batch size.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Hidden width.
    #[arg(long, default_value_t = 256)]
    hidden: usize,
    /// Samples drawn for each KL.
    #[arg(long, default_value_t = 16_384)]
    samples: usize,
    /// Sampler steps.
    #[arg(long, default_value_t = 100)]
    sample_steps: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Learning-rate schedule: constant (the papers' setting) or cosine (to 1% over --steps).
    #[arg(long, default_value = "constant")]
    lr_schedule: String,
    /// Use the CPU backend.
    #[arg(long)]
    cpu: bool,
    /// Use the GPU adapter even when it is a software renderer.
    #[arg(long)]
    gpu: bool,
    /// Write a KL-vs-K chart: PNG when the name ends in .png, else SVG.
    #[arg(long)]
    chart: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// `fisherflow toy-bench`: KL after a fixed number of steps for Fisher-Flow with and without
/// OT and for linear flow matching, over several K.
pub fn toy_bench(opts: &ContextOptions, a: ToyBenchArgs) -> Result<()> {
    use fisherflow::flow::toybench::{run_one, ToyBenchConfig, ToyRow, METHODS};
    let cosine = parse_schedule(&a.lr_schedule, a.steps as u64)? != LrSchedule::Constant;
    let ctx = context(opts, a.cpu, a.gpu)?;
    let c = ToyBenchConfig {
        steps: a.steps,
        batch: a.batch,
        hidden: a.hidden,
        samples: a.samples,
        sample_steps: a.sample_steps,
        seed: a.seed,
        cosine,
    };
    let mut rows = Vec::new();
    for &k in &a.k {
        for m in &METHODS {
            let r = run_one(ctx.device(), m, k, &c)?;
            eprintln!(
                "K={k:<4} {:<15} KL {:.5} (floor {:.5}), {:.1} steps/s",
                r.method, r.kl, r.kl_floor, r.steps_per_s
            );
            rows.push(r);
        }
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows)
                .map_err(|e| Error::InvalidArgument(e.to_string()))?
        );
    } else {
        println!(
            "| K | method | KL | KL of {} true samples | train steps | steps/s | backend |",
            c.samples
        );
        println!("|---|---|---|---|---|---|---|");
        for r in &rows {
            println!(
                "| {} | {} | {:.5} | {:.5} | {} | {:.1} | {} |",
                r.k, r.method, r.kl, r.kl_floor, r.steps, r.steps_per_s, r.backend
            );
        }
    }
    if let Some(path) = &a.chart {
        let points = |name: &str, floor: bool| -> Vec<(f64, f64)> {
            let rows = rows.iter().filter(|r| r.method == name);
            let kl = |r: &ToyRow| if floor { r.kl_floor } else { r.kl };
            rows.map(|r| (r.k as f64, kl(r))).collect()
        };
        let chart = LineChart::new(
            "Toy benchmark: KL of the samples to the target against K",
            "K (categories at each of the L = 4 positions)",
            "KL(samples || target), nats",
        )
        .subtitle(format!(
            "{} training steps, {} samples per model, {} sampling steps",
            c.steps, c.samples, c.sample_steps
        ))
        .scales(Scale::Log, Scale::Log)
        .lower_is_better();
        let chart = METHODS
            .iter()
            .fold(chart, |ch, m| ch.series(m.name, points(m.name, false)))
            .reference_series(
                format!("exact-sample floor ({} true samples)", c.samples),
                points(METHODS[0].name, true),
            );
        chart.write(path)?;
        eprintln!("chart written to {}", path.display());
    }
    Ok(())
}
