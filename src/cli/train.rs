//! `fisherflow train`: Fisher-Flow (or the linear baseline) on a toy target, a dna: source or a
//! sequence file, with checkpoints, resume, a clean stop on SIGINT/SIGTERM and an evaluation.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use fisherflow::autodiff::OptimConfig;
use fisherflow::budget::{self, TrainSizes, MAX_BLOCKS, MAX_KERNEL};
use fisherflow::checkpoint::Checkpoint;
use fisherflow::data::file::{check_not_input, check_output};
use fisherflow::data::signal::MAX_CHANNELS;
use fisherflow::flow::meta::{demo, SINKHORN_EPS, SINKHORN_ITERS};
use fisherflow::flow::{
    DataInfo, FlowConfig, FlowModel, Geometry, LrSchedule, OtKind, OtPairing, RunConfig,
    ScheduleKind, TrainConfig, Trainer,
};
use fisherflow::gpu::ContextOptions;
use fisherflow::nn::{Arch, MlpConfig};
use fisherflow::{Error, Result};

use super::common::{self, planned_shape, DataArgs, DeviceArgs, Loaded};
pub(super) use super::train_sizes::check_sizes;
use super::{report, signals, tracks};

/// The quick demo.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Preset {
    /// Toy target L=4, K=5; trains 2,000 steps, samples and reports KL against its baselines.
    Toy,
}

/// The field network.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchKind {
    /// An MLP over the flattened sequence (the papers' toy model).
    Mlp,
    /// Residual blocks of dilated 1D convolutions over the positions (for long sequences).
    Conv,
}

/// Arguments of `fisherflow train`.
#[derive(clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct TrainArgs {
    /// `toy`: the quick demo (toy target L=4, K=5; trains, samples and reports KL).
    #[arg(value_enum)]
    pub preset: Option<Preset>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Training steps (total, counting steps done before --resume) [default: 5000; 2000 for
    /// the demo].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: Option<u64>,
    /// Sequences per step.
    #[arg(long, default_value_t = TrainConfig::default().batch,
          value_parser = super::common::count(1, u64::MAX))]
    batch: usize,
    /// The field network: mlp (flattened sequence) or conv (dilated convolutions over the
    /// positions).
    #[arg(long, value_enum, default_value_t = ArchKind::Mlp)]
    arch: ArchKind,
    /// Kernel size of the convolutions (--arch conv).
    #[arg(long, default_value_t = Arch::KERNEL,
          value_parser = super::common::count(1, MAX_KERNEL as u64))]
    kernel: usize,
    /// Hidden width (channels of --arch conv).
    #[arg(long, default_value_t = MlpConfig::default().hidden,
          value_parser = super::common::count(1, u64::MAX))]
    hidden: usize,
    /// Condition the model on the class labels of the data (FASTA `class=C` headers, --labels,
    /// or a dna: source).
    #[arg(long)]
    conditional: bool,
    /// Probability of training a label as the null class (for classifier-free guidance).
    #[arg(long, default_value_t = 0.0, requires = "conditional",
          value_parser = common::probability)]
    cond_drop: f32,
    /// Class labels of the sequences of a --data file, one integer a line.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Condition the model on a per-position signal track of the data's sequences: L reals a
    /// line, line i for sequence i (--arch conv). Repeat for more channels, one file each.
    #[arg(long)]
    signal: Vec<PathBuf>,
    /// Residual blocks.
    #[arg(long, default_value_t = MlpConfig::default().blocks,
          value_parser = super::common::count(0, MAX_BLOCKS as u64))]
    blocks: usize,
    /// Learning rate (AdamW).
    #[arg(long, default_value_t = OptimConfig::default().lr, value_parser = common::positive)]
    lr: f32,
    /// Learning-rate schedule: plateau cuts --lr tenfold after 10 windows of 196 steps
    /// without a lower mean loss (the reference code's choice, constant until then); cosine
    /// decays to 1% of --lr over --steps; constant is the papers' setting.
    #[arg(long, value_enum, default_value_t = ScheduleKind::Plateau)]
    lr_schedule: ScheduleKind,
    /// Decoupled weight decay.
    #[arg(long, default_value_t = OptimConfig::default().weight_decay,
          value_parser = common::non_negative)]
    weight_decay: f32,
    /// Clip the global gradient norm (0: no clipping).
    #[arg(long, default_value_t = OptimConfig::default().max_grad_norm.unwrap_or(0.0),
          value_parser = common::non_negative)]
    clip: f32,
    /// Minibatch coupling.
    #[arg(long, value_enum, default_value_t = OtKind::None)]
    ot: OtKind,
    /// Sinkhorn's entropic regularisation.
    #[arg(long, default_value_t = SINKHORN_EPS, value_parser = common::positive)]
    ot_eps: f32,
    /// Sinkhorn iterations per step.
    #[arg(long, default_value_t = SINKHORN_ITERS, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    ot_iters: u32,
    /// How pairs are taken from the OT plan: sample draws B pairs from the plan with
    /// replacement (the reference implementation); assign pairs every prior point once.
    #[arg(long, value_enum, default_value_t = OtPairing::Assign)]
    ot_pairing: OtPairing,
    /// fisher (flow on the sphere), linear (flow matching on the simplex), dirichlet
    /// (Dirichlet flow matching) or fisher-rao-simplex (the sphere flow on the simplex).
    #[arg(long, value_enum, default_value_t = Geometry::Sphere)]
    method: Geometry,
    /// Seed of the parameters and every random draw.
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    seed: u64,
    /// Checkpoint file (safetensors), written atomically.
    #[arg(long, default_value = "model.safetensors")]
    out: PathBuf,
    /// Continue from the checkpoint at --out.
    #[arg(long)]
    resume: bool,
    /// Resume although the data's content differs from the data the checkpoint was trained on.
    #[arg(long, requires = "resume")]
    accept_changed_data: bool,
    /// Start a new run even though --out (or --loss-curve) exists, replacing it.
    #[arg(long)]
    force: bool,
    /// Write a checkpoint every N steps (0: only at the end).
    #[arg(long, default_value_t = RunConfig::default().checkpoint_every)]
    checkpoint_every: u64,
    /// Read the loss back every N steps.
    #[arg(long, default_value_t = RunConfig::default().log_every,
          value_parser = clap::value_parser!(u64).range(1..))]
    log_every: u64,
    #[command(flatten)]
    device: DeviceArgs,
    /// Samples drawn for the final evaluation (0: none) [default: 8192 when the target is
    /// known, else 0].
    #[arg(long)]
    eval_samples: Option<usize>,
    /// Integration steps of the evaluation sampler [default: 100; 50 for the demo].
    #[arg(long, value_parser = super::common::count(1, budget::MAX_SAMPLE_STEPS as u64))]
    sample_steps: Option<usize>,
    /// Write the loss curve (mean loss of each --log-every interval against the step) to this
    /// SVG file.
    #[arg(long)]
    loss_curve: Option<PathBuf>,
    /// The flags given on the command line (filled in by `main`).
    #[arg(skip)]
    pub given: Vec<String>,
}

/// The training settings the flags describe.
fn settings(a: &TrainArgs, (len, vocab): (usize, usize), steps: u64) -> (FlowConfig, TrainConfig) {
    let mut flow = FlowConfig::new(len, vocab, a.hidden, a.method);
    flow.mlp.blocks = a.blocks;
    if a.arch == ArchKind::Conv {
        flow.arch = Arch::Conv { kernel: a.kernel };
    }
    flow.cond.signal = a.signal.len();
    let cfg = TrainConfig {
        batch: a.batch,
        optim: OptimConfig {
            lr: a.lr,
            weight_decay: a.weight_decay,
            max_grad_norm: (a.clip > 0.0).then_some(a.clip),
            ..OptimConfig::default()
        },
        ot: a.ot.mode(a.ot_eps, a.ot_iters),
        seed: a.seed,
        schedule: a.lr_schedule.schedule(steps),
        ot_pairing: a.ot_pairing,
    };
    (flow, cfg)
}

/// Refuses flag combinations that cannot go together, before any work.
fn check_coupling(a: &TrainArgs) -> Result<()> {
    if a.ot == OtKind::None && a.ot_pairing != OtPairing::Assign {
        return Err(Error::InvalidArgument(
            "--ot-pairing sample draws pairs from an OT plan: give --ot exact or --ot sinkhorn"
                .into(),
        ));
    }
    if a.ot != OtKind::None && !matches!(a.method, Geometry::Sphere | Geometry::FisherRaoSimplex) {
        return Err(Error::InvalidArgument(format!(
            "--ot uses the sphere's geodesic cost: use it with --method fisher or \
             fisher-rao-simplex, not {}",
            clap::ValueEnum::to_possible_value(&a.method)
                .map_or_else(String::new, |v| v.get_name().to_string())
        )));
    }
    if !a.signal.is_empty() {
        if a.ot != OtKind::None {
            return Err(Error::InvalidArgument(
                "--signal: minibatch OT (--ot) reorders the sequences against their tracks".into(),
            ));
        }
        if !a.resume && a.arch != ArchKind::Conv {
            return Err(Error::InvalidArgument(
                "--signal: a signal track is read by the convolutional network: give --arch conv"
                    .into(),
            ));
        }
        if a.signal.len() > MAX_CHANNELS {
            return Err(Error::InvalidArgument(format!(
                "--signal given {} times: at most {MAX_CHANNELS} channels",
                a.signal.len()
            )));
        }
        tracks::check_files(&a.signal)?;
    }
    Ok(())
}

/// Refuses to resume `flow` with other signal tracks than it was trained with.
fn check_resumed_signal(flow: &FlowConfig, given: usize) -> Result<()> {
    match (flow.cond.signal, given) {
        (want, have) if want == have => Ok(()),
        (0, _) => Err(Error::InvalidArgument(
            "--signal: cannot resume: the checkpoint's model was trained without a signal track"
                .into(),
        )),
        (want, have) => Err(Error::InvalidArgument(format!(
            "cannot resume: the checkpoint's model reads a signal track of {want} channel(s); \
             give --signal {want} time(s), the same files it was trained with (got {have})"
        ))),
    }
}

/// `fisherflow train`.
pub fn train(opts: &ContextOptions, a: TrainArgs) -> Result<()> {
    let is_demo = a.preset.is_some();
    check_coupling(&a)?;
    if !a.resume && !a.force && a.out.exists() {
        return Err(Error::InvalidArgument(format!(
            "--out {} exists: pass --resume to continue it, --force to replace it, or another --out",
            a.out.display()
        )));
    }
    check_output(&a.out, true).map_err(|e| common::flag_error("--out", e))?;
    if let Some(curve) = &a.loss_curve {
        check_output(curve, a.force).map_err(|e| common::flag_error("--loss-curve", e))?;
        check_not_input(curve, &[&a.out]).map_err(|e| common::flag_error("--loss-curve", e))?;
    }
    let resumed = if a.resume {
        Some(Checkpoint::load(&a.out).map_err(|e| match e {
            Error::Checkpoint(m) => Error::Checkpoint(format!("cannot resume: {m}")),
            e => e,
        })?)
    } else {
        None
    };
    let stored = resumed.as_ref().map(DataInfo::read).transpose()?;
    let spec = match (&a.data.data, &stored, is_demo) {
        (Some(s), _, _) => s.clone(),
        (None, Some(info), _) => info.spec.clone(),
        (None, None, true) => demo::DATA.to_string(),
        (None, None, false) => unreachable!("main asks for --data first"),
    };
    if let Some(data) = a
        .data
        .data
        .as_deref()
        .map(Path::new)
        .filter(|p| p.is_file())
    {
        check_not_input(&a.out, &[data]).map_err(|e| common::flag_error("--out", e))?;
    }
    let steps = a.steps.unwrap_or(if is_demo {
        demo::STEPS
    } else {
        RunConfig::default().steps
    });
    let mut data_args = a.data.clone();
    data_args.labels = a.labels.clone();
    if let (None, Some(info)) = (&data_args.alphabet, &stored) {
        data_args.alphabet = info.alphabet.clone();
    }
    let (flow, cfg) = match &resumed {
        Some(ck) => {
            note_ignored(&a);
            let flow = FlowModel::from_checkpoint(ck)?.config;
            check_resumed_signal(&flow, a.signal.len())?;
            (flow, TrainConfig::from_checkpoint(ck)?)
        }
        None => {
            // The model's width is the data's; a file is read to learn it, a generated source
            // is sized before it is drawn.
            let shape = planned_shape(&spec)?.map_or((1, 1), |(_, l, k)| (l, k));
            if a.method == Geometry::Dirichlet && shape.1 > 1 {
                fisherflow::flow::dirichlet::check_k(shape.1)
                    .map_err(|e| common::flag_error("--method dirichlet:", e))?;
            }
            settings(&a, shape, steps)
        }
    };
    let choice = a.device.choose(opts)?;
    let device = choice.device();
    // Sampling a signal model needs tracks for its samples: `fisherflow sample --signal`.
    if flow.cond.signal > 0 && a.eval_samples.is_some_and(|n| n > 0) {
        return Err(Error::InvalidArgument(
            "--eval-samples: a model conditioned on a signal track is sampled with tracks; use \
             `fisherflow sample --signal FILE`"
                .into(),
        ));
    }
    let eval_default = if spec.starts_with("toy") && flow.cond.signal == 0 {
        RunConfig::default().eval_samples
    } else {
        0
    };
    let mut sizes = TrainSizes {
        len: flow.mlp.seq_len,
        vocab: flow.mlp.categories,
        hidden: flow.mlp.hidden,
        blocks: flow.mlp.blocks,
        time_dim: flow.mlp.time_dim,
        batch: cfg.batch,
        ot: cfg.ot != fisherflow::flow::OtMode::None,
        data_n: 0,
        eval_n: a.eval_samples.unwrap_or(eval_default),
        kernel: match flow.arch {
            Arch::Mlp => 0,
            Arch::Conv { kernel } => kernel,
        },
    };
    let data_flag = format!("--data {spec}");
    if let Some((n, l, k)) = planned_shape(&spec)? {
        (sizes.data_n, sizes.len, sizes.vocab) = (n, l, k);
        check_sizes(&sizes, device, &data_flag)?;
    }
    let mut loaded = common::load(&spec, &data_args, a.seed)?;
    let what = format!("--data {spec} has");
    if let Some(t) = tracks::read(&a.signal, loaded.data.len, loaded.data.n, &what)? {
        loaded.data = loaded.data.with_signal(t)?;
    }
    (sizes.data_n, sizes.len, sizes.vocab) = (loaded.data.n, loaded.data.len, loaded.data.vocab);
    check_sizes(&sizes, device, &data_flag)?;
    let (flow, cfg) = match &resumed {
        Some(_) => (flow, cfg),
        None => {
            let (mut flow, cfg) = settings(&a, (loaded.data.len, loaded.data.vocab), steps);
            if a.conditional {
                let classes = loaded.data.classes().ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "--conditional: --data {spec} has no class labels (write class=C in \
                         every FASTA header, or give --labels FILE)"
                    ))
                })?;
                flow.cond.classes = classes;
                flow.cond.drop = a.cond_drop;
            }
            (flow, cfg)
        }
    };
    if let Some(info) = &stored {
        if !a.accept_changed_data {
            info.check_same(&loaded.data, &spec).map_err(|e| {
                Error::Checkpoint(format!(
                    "{}; pass --accept-changed-data to resume anyway",
                    strip(e)
                ))
            })?;
        }
    }
    if let LrSchedule::Cosine { steps: end, .. } = cfg.schedule {
        if steps > end {
            eprintln!(
                "note: the run's cosine schedule ends at step {end} (set when it started); \
                 the steps after it run at its final rate"
            );
        }
    }
    eprintln!(
        "data: {} ({} sequences, L={}, K={}); model: {:?} flow, {}, hidden {}, {} blocks; batch {}, lr {} ({}), OT {:?}",
        loaded.spec, loaded.data.n, loaded.data.len, loaded.data.vocab, flow.geometry,
        flow.arch.describe(), flow.mlp.hidden, flow.mlp.blocks, cfg.batch, cfg.optim.lr,
        cfg.schedule, cfg.ot
    );
    eprintln!(
        "memory per step: {} MiB of activations{}, {} MiB of parameters, gradients and moments",
        (sizes.per_sequence() * sizes.batch as u128 * 4) >> 20,
        if device.gpu().is_some() {
            " on the device"
        } else {
            ""
        },
        (sizes.params() * 16) >> 20
    );
    let mut tr = Trainer::new(device, flow, cfg, loaded.data.clone())?;
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
    signals::graceful();
    run_loop(&mut tr, steps, &a, &loaded)?;
    if sizes.eval_n > 0 {
        let sample_steps = a.sample_steps.unwrap_or(if is_demo {
            demo::SAMPLE_STEPS
        } else {
            RunConfig::default().sample_steps
        });
        report::after_training(device, &tr, &loaded, sizes.eval_n, sample_steps)?;
    }
    Ok(())
}

/// The message of `e` without its kind's prefix.
fn strip(e: Error) -> String {
    match e {
        Error::Checkpoint(m) | Error::InvalidArgument(m) => m,
        e => e.to_string(),
    }
}

/// Says which given flags a resumed run ignores (it keeps the checkpoint's settings).
fn note_ignored(a: &TrainArgs) {
    const KEPT: [&str; 16] = [
        "conditional",
        "cond_drop",
        "arch",
        "kernel",
        "hidden",
        "blocks",
        "batch",
        "lr",
        "lr_schedule",
        "weight_decay",
        "clip",
        "method",
        "ot",
        "ot_eps",
        "ot_iters",
        "ot_pairing",
    ];
    let given: Vec<String> = KEPT
        .iter()
        .filter(|k| a.given.iter().any(|g| g == *k))
        .map(|k| format!("--{}", k.replace('_', "-")))
        .collect();
    if !given.is_empty() {
        eprintln!(
            "note: {} ignored: a resumed run keeps the settings stored in its checkpoint",
            given.join(", ")
        );
    }
}

fn save(tr: &Trainer<'_>, out: &Path, loaded: &Loaded) -> Result<()> {
    let mut ck = tr.checkpoint()?;
    DataInfo::of(&loaded.spec, &loaded.data).write(&mut ck);
    ck.save(out)
}

fn progress_bar(start: u64, steps: u64) -> Option<indicatif::ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let pb = indicatif::ProgressBar::new(steps);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} steps  {msg}  [{elapsed_precise} < {eta}]",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb.set_position(start);
        pb
    })
}

fn run_loop(tr: &mut Trainer<'_>, steps: u64, a: &TrainArgs, loaded: &Loaded) -> Result<()> {
    let start = tr.steps_done();
    if start >= steps {
        eprintln!("already at step {start} of {steps}; nothing to train");
        return Ok(());
    }
    let bar = progress_bar(start, steps);
    let t0 = Instant::now();
    let mut curve: Vec<(f64, f64)> = Vec::new();
    let mut last_saved: Option<u64> = None;
    let mut done = start;
    while done < steps {
        let stop = signals::stop_requested();
        let step = if stop { Ok(()) } else { tr.train_steps(1) };
        if !stop {
            done += 1;
        }
        let log = done.is_multiple_of(a.log_every) || done == steps || stop;
        let result = step.and_then(|()| if log { tr.take_mean_loss() } else { Ok(None) });
        let loss = match result {
            Ok(l) => l,
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
                    let _ = write_loss_curve(path, &curve, a.log_every, &tr.backend_name());
                }
                return Err(match e {
                    Error::NonFinite(m) => {
                        Error::NonFinite(format!("{m}; training stopped, {kept}"))
                    }
                    e => e,
                });
            }
        };
        if let Some(loss) = loss {
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
        }
        let due = a.checkpoint_every > 0 && done.is_multiple_of(a.checkpoint_every);
        if (due || done == steps || stop) && last_saved != Some(done) {
            save(tr, &a.out, loaded)?;
            last_saved = Some(done);
        }
        if stop {
            if let Some(pb) = &bar {
                pb.abandon();
            }
            if let Some(path) = &a.loss_curve {
                write_loss_curve(path, &curve, a.log_every, &tr.backend_name())?;
            }
            return Err(signals::stopped(&format!(
                "checkpoint of step {done} written to {}; continue with `fisherflow train --resume --out {} --steps {steps}`",
                a.out.display(),
                a.out.display()
            )));
        }
    }
    if let Some(pb) = &bar {
        pb.finish();
    }
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "trained {} steps in {secs:.1}s ({:.1} steps/s); checkpoint: {}",
        steps - start,
        (steps - start) as f64 / secs,
        a.out.display()
    );
    if let Some(path) = &a.loss_curve {
        write_loss_curve(path, &curve, a.log_every, &tr.backend_name())?;
    }
    Ok(())
}

fn write_loss_curve(path: &Path, curve: &[(f64, f64)], every: u64, backend: &str) -> Result<()> {
    fisherflow::plot::LineChart::new(
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
