//! `fisherflow toy-bench`: KL after a fixed number of steps for Fisher-Flow with and without
//! OT, Dirichlet FM, the Fisher–Rao flow on the simplex and linear flow matching, over
//! several K, under the quick or the published protocol (resumable from a state directory).

use std::path::{Path, PathBuf};

use fisherflow::budget::{TrainSizes, MAX_SAMPLE_STEPS};
use fisherflow::data::file::{check_output, write_atomic};
use fisherflow::data::MAX_VOCAB;
use fisherflow::flow::toybench::{
    method, run_one, Method, Protocol, ToyBenchConfig, ToyRow, QUICK_DATA, QUICK_METHODS,
};
use fisherflow::flow::{OtMode, OtPairing, ScheduleKind};
use fisherflow::gpu::ContextOptions;
use fisherflow::nn::MlpConfig;
use fisherflow::plot::{LineChart, Scale};
use fisherflow::{Error, Result};

use super::common::DeviceArgs;

/// Arguments of `fisherflow toy-bench`.
#[derive(clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct Args {
    /// quick: a fixed training set and a short run (the numbers below); paper: fresh draws
    /// every batch, the published model, optimiser, schedule (reduce on plateau) and 450,000
    /// steps, KL from 524,288 samples, resumable with --state.
    #[arg(long, value_enum, default_value_t = Protocol::Quick)]
    protocol: Protocol,
    /// Category counts K (L = 4).
    #[arg(long, value_delimiter = ',', default_value = "5,20,80,160",
          value_parser = super::common::count(2, MAX_VOCAB as u64))]
    k: Vec<usize>,
    /// Methods, comma-separated: fisher-flow, fisher-flow+OT, dirichlet-FM,
    /// fisher-rao-simplex, linear-FM [default: quick: fisher-flow,fisher-flow+OT,linear-FM;
    /// paper: all].
    #[arg(long, value_delimiter = ',', value_parser = parse_method)]
    methods: Option<Vec<Method>>,
    /// Training steps per run [default: quick 1000, paper 450000].
    #[arg(long, value_parser = super::common::count(1, u64::MAX))]
    steps: Option<usize>,
    /// Batch size [default: quick 256, paper 512].
    #[arg(long, value_parser = super::common::count(1, u64::MAX))]
    batch: Option<usize>,
    /// Hidden width [default: quick 256, paper 512].
    #[arg(long, value_parser = super::common::count(1, u64::MAX))]
    hidden: Option<usize>,
    /// Samples drawn for each KL [default: quick 16384, paper 524288].
    #[arg(long, value_parser = super::common::count(1, u64::MAX))]
    samples: Option<usize>,
    /// Sampler steps.
    #[arg(long, default_value_t = 100,
          value_parser = super::common::count(1, MAX_SAMPLE_STEPS as u64))]
    sample_steps: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Learning-rate schedule [default: quick constant, paper plateau].
    #[arg(long, value_enum)]
    lr_schedule: Option<ScheduleKind>,
    /// How fisher-flow+OT takes pairs from the exact plan [default: quick assign, paper
    /// sample].
    #[arg(long, value_enum)]
    ot_pairing: Option<OtPairing>,
    /// Directory of checkpoints and finished rows: a run interrupted there continues where it
    /// stopped, finished rows are not run again (required by --protocol paper).
    #[arg(long)]
    state: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArgs,
    /// Write a KL-vs-K chart: PNG when the name ends in .png, else SVG.
    #[arg(long)]
    chart: Option<PathBuf>,
    /// Replace an existing --chart; start --state afresh when its settings differ.
    #[arg(long)]
    force: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn parse_method(s: &str) -> std::result::Result<Method, String> {
    method(s).map_err(|e| match e {
        Error::InvalidArgument(m) => m,
        e => e.to_string(),
    })
}

impl Args {
    fn config(&self) -> ToyBenchConfig {
        let d = ToyBenchConfig::of(self.protocol);
        ToyBenchConfig {
            protocol: self.protocol,
            steps: self.steps.unwrap_or(d.steps),
            batch: self.batch.unwrap_or(d.batch),
            hidden: self.hidden.unwrap_or(d.hidden),
            samples: self.samples.unwrap_or(d.samples),
            sample_steps: self.sample_steps,
            seed: self.seed,
            schedule: self.lr_schedule.unwrap_or(d.schedule),
            ot_pairing: self.ot_pairing.unwrap_or(d.ot_pairing),
        }
    }

    fn methods(&self) -> Vec<Method> {
        match (&self.methods, self.protocol) {
            (Some(m), _) => m.clone(),
            (None, Protocol::Quick) => QUICK_METHODS.iter().map(|n| method(n).unwrap()).collect(),
            (None, Protocol::Paper) => fisherflow::flow::toybench::METHODS.to_vec(),
        }
    }
}

/// The state directory: its settings file, checked against this run's (or replaced with
/// `force`), and the rows it holds.
fn open_state(dir: &Path, settings: &str, force: bool) -> Result<Vec<ToyRow>> {
    let bad = |e: std::io::Error| Error::InvalidArgument(format!("--state {}: {e}", dir.display()));
    if dir.exists() && !dir.is_dir() {
        return Err(Error::InvalidArgument(format!(
            "--state {} exists and is not a directory",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(bad)?;
    let file = dir.join("settings.json");
    match std::fs::read_to_string(&file) {
        Ok(old) if old == settings => {}
        Ok(_) if !force => {
            return Err(Error::InvalidArgument(format!(
                "--state {} holds a run with other settings ({}): give another directory, or \
                 --force to start it afresh",
                dir.display(),
                file.display()
            )))
        }
        _ => {
            for e in std::fs::read_dir(dir).map_err(bad)?.flatten() {
                let p = e.path();
                let ours = p
                    .extension()
                    .is_some_and(|x| x == "safetensors" || x == "json");
                if ours && p.is_file() {
                    std::fs::remove_file(&p).map_err(bad)?;
                }
            }
            write_atomic(&file, settings.as_bytes(), true)?;
        }
    }
    match std::fs::read(dir.join("rows.json")) {
        Ok(b) => serde_json::from_slice(&b)
            .map_err(|e| Error::Parse(format!("--state {}: rows.json: {e}", dir.display()))),
        Err(_) => Ok(Vec::new()),
    }
}

/// `fisherflow toy-bench`.
pub fn run(opts: &ContextOptions, a: Args) -> Result<()> {
    if let Some(path) = &a.chart {
        check_output(path, a.force)?;
    }
    let c = a.config();
    let methods = a.methods();
    if c.protocol == Protocol::Paper && a.state.is_none() {
        return Err(Error::InvalidArgument(
            "--protocol paper trains for hours: give --state DIR so that it checkpoints and can \
             resume"
                .into(),
        ));
    }
    if c.ot_pairing == OtPairing::Sample && !methods.iter().any(|m| m.ot != OtMode::None) {
        return Err(Error::InvalidArgument(
            "--ot-pairing sample applies to the OT methods: add fisher-flow+OT to --methods".into(),
        ));
    }
    for m in &methods {
        if m.geometry == fisherflow::flow::Geometry::Dirichlet {
            if let Some(&k) =
                a.k.iter()
                    .find(|&&k| k > fisherflow::flow::dirichlet::MAX_K)
            {
                return Err(super::common::flag_error(
                    "--k",
                    fisherflow::flow::dirichlet::check_k(k).unwrap_err(),
                ));
            }
        }
    }
    let choice = a.device.choose(opts)?;
    for &k in &a.k {
        let sizes = TrainSizes {
            len: 4,
            vocab: k,
            hidden: c.hidden,
            blocks: MlpConfig::default().blocks,
            time_dim: MlpConfig::default().time_dim,
            batch: c.batch,
            ot: methods.iter().any(|m| m.ot != OtMode::None),
            data_n: if c.protocol == Protocol::Quick {
                QUICK_DATA
            } else {
                0
            },
            eval_n: c.samples,
            kernel: 0,
        };
        super::train::check_sizes(&sizes, choice.device(), "--k")?;
    }
    let settings = format!(
        "{c:?} methods {:?}",
        methods.iter().map(|m| m.name).collect::<Vec<_>>()
    );
    let mut rows = match &a.state {
        Some(dir) => open_state(dir, &settings, a.force)?,
        None => Vec::new(),
    };
    for &k in &a.k {
        for m in &methods {
            if rows.iter().any(|r| r.k == k && r.method == m.name) {
                continue;
            }
            let ck = a
                .state
                .as_ref()
                .map(|d| d.join(format!("{}-K{k}.safetensors", m.name)));
            let r = run_one(choice.device(), m, k, &c, ck.as_ref())?;
            eprintln!(
                "K={k:<4} {:<18} KL {:.5} (floor {:.5}, uniform {:.5}), {:.1} steps/s, {:.0} s",
                r.method, r.kl, r.kl_floor, r.kl_uniform, r.steps_per_s, r.seconds
            );
            rows.push(r);
            if let Some(dir) = &a.state {
                let json = serde_json::to_vec_pretty(&rows)
                    .map_err(|e| Error::InvalidArgument(e.to_string()))?;
                write_atomic(&dir.join("rows.json"), &json, true)?;
            }
        }
    }
    rows.retain(|r| a.k.contains(&r.k) && methods.iter().any(|m| m.name == r.method));
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows)
                .map_err(|e| Error::InvalidArgument(e.to_string()))?
        );
    } else {
        println!(
            "KL(samples || target) after {} steps, {} samples ({:?} protocol, {} schedule); \
             floor: the KL of as many exact samples; uniform: the noise baseline (lower is better)",
            c.steps,
            c.samples,
            c.protocol,
            c.schedule.schedule(c.steps as u64)
        );
        println!(
            "{:>6}  {:<18} {:>9} {:>9} {:>9} {:>7} {:>9}  backend",
            "K", "method", "KL", "floor", "uniform", "steps", "steps/s"
        );
        for r in &rows {
            println!(
                "{:>6}  {:<18} {:>9.5} {:>9.5} {:>9.5} {:>7} {:>9.1}  {}",
                r.k, r.method, r.kl, r.kl_floor, r.kl_uniform, r.steps, r.steps_per_s, r.backend
            );
        }
    }
    if let Some(path) = &a.chart {
        chart(&rows, &c, &methods).write(path)?;
        eprintln!("chart written to {}", path.display());
    }
    Ok(())
}

fn chart(rows: &[ToyRow], c: &ToyBenchConfig, methods: &[Method]) -> LineChart {
    let points = |name: &str, kl: fn(&ToyRow) -> f64| -> Vec<(f64, f64)> {
        let rows = rows.iter().filter(|r| r.method == name);
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
    let first = methods[0].name;
    methods
        .iter()
        .fold(chart, |ch, m| ch.series(m.name, points(m.name, |r| r.kl)))
        .reference_series(
            format!("exact-sample floor ({} true samples)", c.samples),
            points(first, |r| r.kl_floor),
        )
        .reference_series(
            format!("uniform noise ({} random samples)", c.samples),
            points(first, |r| r.kl_uniform),
        )
}
