//! `fisherflow bench`: every benchmark family on the current adapter, as a table or JSON.

use fisherflow::bench::{families, print_table, Measurement};
use fisherflow::gpu::{ContextOptions, GpuContext};
use fisherflow::{Error, Result};

/// Arguments of `fisherflow bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Run only these families (comma-separated); `--list` shows them.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Smaller sizes and fewer repetitions.
    #[arg(long)]
    quick: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// List the benchmark families and exit.
    #[arg(long)]
    list: bool,
}

pub fn run(opts: &ContextOptions, args: Args) -> Result<()> {
    let fams = families();
    if args.list {
        for (name, _) in &fams {
            println!("{name}");
        }
        return Ok(());
    }
    for o in &args.only {
        if !fams.iter().any(|(n, _)| n == o) {
            let names: Vec<_> = fams.iter().map(|(n, _)| *n).collect();
            return Err(Error::InvalidArgument(format!(
                "unknown benchmark family {o:?}; families: {}",
                names.join(", ")
            )));
        }
    }
    let ctx = GpuContext::with_options(opts)?;
    eprintln!("adapter: {}", ctx.describe());
    let mut rows: Vec<Measurement> = Vec::new();
    for (name, f) in fams {
        if !args.only.is_empty() && !args.only.iter().any(|o| o == name) {
            continue;
        }
        eprintln!("running {name} ...");
        rows.extend(f(&ctx, args.quick)?);
    }
    if args.json {
        let s = serde_json::to_string_pretty(&rows)
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        println!("{s}");
    } else {
        print_table(&rows);
    }
    Ok(())
}
