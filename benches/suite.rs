//! Every benchmark family of `fisherflow bench`, without the CLI:
//! `cargo bench --bench suite [-- --quick] [-- --only optim,flow]`.

fn main() -> fisherflow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.split(',').map(str::to_string).collect());
    let ctx = fisherflow::GpuContext::new()?;
    println!("adapter: {}", ctx.describe());
    let mut rows = Vec::new();
    for (name, family) in fisherflow::bench::families() {
        if only.as_ref().is_some_and(|o| !o.iter().any(|n| n == name)) {
            continue;
        }
        eprintln!("running {name} ...");
        rows.extend(family(&ctx, quick)?);
    }
    fisherflow::bench::print_table(&rows);
    Ok(())
}
