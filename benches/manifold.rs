//! Bandwidth of the sphere (manifold) kernels against a same-run vec4 copy.
//!
//! `cargo bench --bench manifold` (full sizes) or `cargo bench --bench manifold -- --quick`.

fn main() -> fisherflow::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let ctx = fisherflow::GpuContext::new()?;
    println!("adapter: {}", ctx.describe());
    let rows = fisherflow::bench::sphere::run(&ctx, quick)?;
    fisherflow::bench::print_table(&rows);
    Ok(())
}
