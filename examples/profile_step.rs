//! Where the time of one Fisher-Flow training step goes, per kernel (GPU timestamps).
//!
//! `cargo run --release --example profile_step -- [K] [hidden] [batch]`

use fisherflow::data::toy::ToyTarget;
use fisherflow::device::Device;
use fisherflow::flow::{FlowConfig, Geometry, TrainConfig, Trainer};
use fisherflow::gpu::GpuContext;

fn main() -> fisherflow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (k, hidden, batch) = (
        args.first().copied().unwrap_or(20),
        args.get(1).copied().unwrap_or(512),
        args.get(2).copied().unwrap_or(512),
    );
    let ctx = GpuContext::new()?;
    let target = ToyTarget::from_spec(&format!("toy:L=4,K={k}"))?;
    let data = target.sample(10_000, 0)?;
    let flow = FlowConfig::new(4, k, hidden, Geometry::Sphere);
    let cfg = TrainConfig {
        batch,
        ..Default::default()
    };
    let mut tr = Trainer::new(Device::Gpu(&ctx), flow, cfg, data)?;
    tr.train_steps(2)?;
    tr.take_mean_loss()?;
    let times = tr.profile_step()?;
    let total: f64 = times.iter().map(|(_, ns)| ns).sum();
    println!(
        "{} — one step, K={k}, hidden {hidden}, batch {batch}: {} dispatches, {:.3} ms GPU",
        ctx.describe(),
        times.len(),
        total * 1e-6
    );
    let mut by: std::collections::BTreeMap<String, (usize, f64)> = Default::default();
    for (l, ns) in &times {
        let e = by.entry(l.clone()).or_default();
        e.0 += 1;
        e.1 += ns;
    }
    let mut rows: Vec<_> = by.into_iter().collect();
    rows.sort_by(|a, b| b.1 .1.total_cmp(&a.1 .1));
    for (l, (n, ns)) in rows {
        println!(
            "{:>8.3} ms {:>5.1}%  {n:>3}×  {l}",
            ns * 1e-6,
            100.0 * ns / total
        );
    }
    Ok(())
}
