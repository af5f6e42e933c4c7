//! The `fisherflow` command line: `devices`, and the training, sampling and benchmark
//! commands of each method.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    Train(cli::flow::TrainArgs),
    /// Draw sequences from a trained model.
    Sample(cli::flow::SampleArgs),
    /// Compare generated sequences with a toy target, a dna: source or a data file.
    Eval(cli::flow::EvalArgs),
    /// Draw a synthetic data set (dna:…) to a FASTA file with class labels.
    Data(cli::data::Args),
    /// KL on the toy target over K for Fisher-Flow, Fisher-Flow+OT and linear flow matching.
    ToyBench(cli::flow::ToyBenchArgs),
    /// Benchmarks with same-run baselines (table or --json).
    Bench(cli::bench::Args),
    /// Score-difference flow on point clouds.
    Sdflow(cli::sdflow::Args),
    /// Tensor-network discrete diffusion: Ising and Fredkin models.
    Tn(cli::tn::Args),
}

fn main() -> ExitCode {
    let args = Cli::parse();
    let opts = fisherflow::gpu::ContextOptions {
        adapter: args.adapter.clone(),
        backends: None,
    };
    let result = match args.command {
        Command::Devices(a) => cli::devices::run(&opts, a),
        Command::Train(a) => cli::flow::train(&opts, a),
        Command::Sample(a) => cli::flow::sample(&opts, a),
        Command::Eval(a) => cli::flow::eval(a),
        Command::Data(a) => cli::data::run(a),
        Command::ToyBench(a) => cli::flow::toy_bench(&opts, a),
        Command::Bench(a) => cli::bench::run(&opts, a),
        Command::Sdflow(a) => cli::sdflow::run(&opts, a),
        Command::Tn(a) => cli::tn::run(&opts, a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
