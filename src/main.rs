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
    /// Tensor-network discrete diffusion: Ising and Fredkin models
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
