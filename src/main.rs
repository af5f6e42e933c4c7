//! The `fisherflow` command line: `devices`, and the training, sampling and benchmark
//! commands of each method.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

mod cli;

#[derive(Parser)]
#[command(
    name = "fisherflow",
    version,
    about = "Geometric generative models of discrete data on any GPU wgpu reaches"
)]
struct Cli {
    /// Use the adapter whose name contains this text (case-insensitive); see `fisherflow devices`.
    #[arg(long, global = true, env = "FISHERFLOW_ADAPTER")]
    adapter: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List GPU adapters and mark the one fisherflow would use.
    Devices(cli::devices::Args),
    /// Train a Fisher-Flow model (`train toy`: the quick demo with its KL report).
    Train(cli::train::TrainArgs),
    /// Draw sequences from a trained model.
    Sample(cli::sample::SampleArgs),
    /// Negative log-likelihood of sequences under a trained model (exact or Hutchinson
    /// divergence; see `fisherflow nll --help` for the quantity reported).
    ///
    /// Each data sequence (one-hot points x = √onehot on the positive orthants) is integrated
    /// back to t = 0 along the model's flow while the divergence of the projected field on the
    /// product of spheres is accumulated; the prior's log-density (uniform on the orthants,
    /// p_0 = 2^K Γ(K/2)/(2π^{K/2}) per position) is added. The default protocol (vertex)
    /// reports −log p_{1−eps}(x), the negative log-density of the model at t = 1 − eps at the
    /// one-hot points (the field diverges at t = 1 on the vertices and was trained on t < 1): a
    /// density on the spheres, not a probability, which falls as the model concentrates on the
    /// data and can be negative. `--protocol dequantized` reports an upper bound on the NLL of
    /// the discrete model the sampler draws from (argmax at t = 1), with draws in the argmax
    /// cells (contracted towards the vertices by --contract): in the units of the data's
    /// entropy, but loose for a trained flow, whose mass is far more concentrated than the
    /// draws.
    Nll(cli::nll::NllArgs),
    /// Compare generated sequences with a toy target, a dna: source or a data file.
    Eval(cli::sample::EvalArgs),
    /// Draw a synthetic data set (dna:…) to a FASTA file with class labels.
    Data(cli::data::Args),
    /// KL on the toy target over K for Fisher-Flow, Fisher-Flow+OT and linear flow matching.
    ToyBench(cli::toybench::Args),
    /// Benchmarks with same-run baselines (table or --json).
    Bench(cli::bench::Args),
    /// Score-difference flow on point clouds.
    Sdflow(cli::sdflow::Args),
    /// Tensor-network discrete diffusion: Ising and Fredkin models.
    Tn(cli::tn::Args),
}

/// The arguments, with the flags given explicitly to `train` recorded (a resumed run says
/// which of them it ignores).
fn parse() -> Cli {
    let matches = Cli::command().get_matches();
    let mut args = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let (Command::Train(t), Some(m)) = (&mut args.command, matches.subcommand_matches("train")) {
        t.given = m
            .ids()
            .filter(|id| {
                m.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine)
            })
            .map(|id| id.to_string())
            .collect();
        if t.preset.is_none() && t.data.data.is_none() && !t.given.iter().any(|g| g == "resume") {
            let mut cmd = Cli::command();
            cmd.build();
            let train = cmd
                .find_subcommand_mut("train")
                .expect("train is a subcommand");
            eprintln!("{}", train.render_usage());
            eprintln!(
                "fisherflow train needs data: `fisherflow train toy` (the quick demo), \
                 --data toy:L=4,K=20 | dna:L=128,classes=3 | FILE, or --resume; see --help"
            );
            std::process::exit(2);
        }
    }
    args
}

fn main() -> ExitCode {
    cli::signals::install();
    let args = parse();
    let opts = fisherflow::gpu::ContextOptions {
        adapter: args.adapter.clone(),
        backends: None,
    };
    let result = match args.command {
        Command::Devices(a) => cli::devices::run(&opts, a),
        Command::Train(a) => cli::train::train(&opts, a),
        Command::Sample(a) => cli::sample::sample(&opts, a),
        Command::Eval(a) => cli::sample::eval(a),
        Command::Nll(a) => cli::nll::run(&opts, a),
        Command::Data(a) => cli::data::run(a),
        Command::ToyBench(a) => cli::toybench::run(&opts, a),
        Command::Bench(a) => cli::bench::run(&opts, a),
        Command::Sdflow(a) => cli::sdflow::run(&opts, a),
        Command::Tn(a) => cli::tn::run(&opts, a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            match cli::signals::received() {
                Some(sig) => ExitCode::from((128 + sig) as u8),
                None => ExitCode::FAILURE,
            }
        }
    }
}
