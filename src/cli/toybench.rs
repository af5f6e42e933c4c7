//! `fisherflow toy-bench`: KL after a fixed number of steps for Fisher-Flow with and without
//! OT and for linear flow matching, over several K.

use std::path::PathBuf;

use fisherflow::budget::{TrainSizes, MAX_SAMPLE_STEPS};
use fisherflow::data::file::check_output;
use fisherflow::data::MAX_VOCAB;
use fisherflow::flow::toybench::{run_one, ToyBenchConfig, ToyRow, METHODS};
use fisherflow::flow::ScheduleKind;
use fisherflow::gpu::ContextOptions;
use fisherflow::nn::MlpConfig;
use fisherflow::plot::{LineChart, Scale};
use fisherflow::{Error, Result};

use super::common::DeviceArgs;

fn d() -> ToyBenchConfig {
    ToyBenchConfig::default()
}

/// Arguments of `fisherflow toy-bench`.
#[derive(clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct Args {
    /// Category counts K (L = 4).
    #[arg(long, value_delimiter = ',', default_value = "5,20,80,160",
          value_parser = super::common::count(2, MAX_VOCAB as u64))]
    k: Vec<usize>,
    /// Training steps per run.
    #[arg(long, default_value_t = d().steps,
          value_parser = super::common::count(1, u64::MAX))]
    steps: usize,
    /// Batch size.
    #[arg(long, default_value_t = d().batch,
          value_parser = super::common::count(1, u64::MAX))]
    batch: usize,
    /// Hidden width.
    #[arg(long, default_value_t = d().hidden,
          value_parser = super::common::count(1, u64::MAX))]
    hidden: usize,
    /// Samples drawn for each KL.
    #[arg(long, default_value_t = d().samples,
          value_parser = super::common::count(1, u64::MAX))]
    samples: usize,
    /// Sampler steps.
    #[arg(long, default_value_t = d().sample_steps,
          value_parser = super::common::count(1, MAX_SAMPLE_STEPS as u64))]
    sample_steps: usize,
    /// Seed.
    #[arg(long, default_value_t = d().seed)]
    seed: u64,
    /// Learning-rate schedule (constant: the papers' setting; cosine: to 1% over --steps).
    #[arg(long, value_enum, default_value_t = ScheduleKind::Constant)]
    lr_schedule: ScheduleKind,
    #[command(flatten)]
    device: DeviceArgs,
    /// Write a KL-vs-K chart: PNG when the name ends in .png, else SVG.
    #[arg(long)]
    chart: Option<PathBuf>,
    /// Replace an existing --chart.
    #[arg(long)]
    force: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// `fisherflow toy-bench`.
pub fn run(opts: &ContextOptions, a: Args) -> Result<()> {
    if let Some(path) = &a.chart {
        check_output(path, a.force)?;
    }
    let c = ToyBenchConfig {
        steps: a.steps,
        batch: a.batch,
        hidden: a.hidden,
        samples: a.samples,
        sample_steps: a.sample_steps,
        seed: a.seed,
        cosine: a.lr_schedule == ScheduleKind::Cosine,
    };
    let choice = a.device.choose(opts)?;
    for &k in &a.k {
        let sizes = TrainSizes {
            len: 4,
            vocab: k,
            hidden: c.hidden,
            blocks: MlpConfig::default().blocks,
            time_dim: MlpConfig::default().time_dim,
            batch: c.batch,
            ot: true,
            data_n: 100_000,
            eval_n: c.samples,
            kernel: 0,
        };
        super::train::check_sizes(&sizes, choice.device(), "--k")?;
    }
    let mut rows = Vec::new();
    for &k in &a.k {
        for m in &METHODS {
            let r = run_one(choice.device(), m, k, &c)?;
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
            "KL(samples || target) after {} steps, {} samples; the floor is the KL of as many exact samples (lower is better)",
            c.steps, c.samples
        );
        println!(
            "{:>6}  {:<16} {:>9} {:>9} {:>7} {:>9}  backend",
            "K", "method", "KL", "floor", "steps", "steps/s"
        );
        for r in &rows {
            println!(
                "{:>6}  {:<16} {:>9.5} {:>9.5} {:>7} {:>9.1}  {}",
                r.k, r.method, r.kl, r.kl_floor, r.steps, r.steps_per_s, r.backend
            );
        }
    }
    if let Some(path) = &a.chart {
        chart(&rows, &c).write(path)?;
        eprintln!("chart written to {}", path.display());
    }
    Ok(())
}

fn chart(rows: &[ToyRow], c: &ToyBenchConfig) -> LineChart {
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
    METHODS
        .iter()
        .fold(chart, |ch, m| ch.series(m.name, points(m.name, false)))
        .reference_series(
            format!("exact-sample floor ({} true samples)", c.samples),
            points(METHODS[0].name, true),
        )
}
