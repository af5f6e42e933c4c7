//! `cargo bench --bench matmul [-- --quick]`: gemm GFLOP/s against the CPU sgemm.

fn main() -> fisherflow::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let ctx = fisherflow::GpuContext::new()?;
    println!("adapter: {}", ctx.describe());
    let rows = fisherflow::bench::matmul::run(&ctx, quick)?;
    fisherflow::bench::print_table(&rows);
    Ok(())
}
