//! Where the time of one Fisher-Flow training step goes: per kernel on the GPU (timestamp
//! queries), per instruction kind on the CPU backend (wall clock, median of `--reps` steps).
//!
//! `cargo run --release --example profile_step -- [K] [hidden] [batch] [cpu] [reps=N]`

use std::collections::BTreeMap;

use fisherflow::data::toy::ToyTarget;
use fisherflow::device::Device;
use fisherflow::flow::{FlowConfig, Geometry, TrainConfig, Trainer};
use fisherflow::gpu::GpuContext;

fn main() -> fisherflow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let nums: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let cpu = args.iter().any(|a| a == "cpu");
    let reps = args
        .iter()
        .find_map(|a| a.strip_prefix("reps=")?.parse().ok())
        .unwrap_or(if cpu { 9 } else { 1usize })
        .max(1);
    let (k, hidden, batch) = (
        nums.first().copied().unwrap_or(20),
        nums.get(1).copied().unwrap_or(512),
        nums.get(2).copied().unwrap_or(512),
    );
    let ctx = if cpu { None } else { Some(GpuContext::new()?) };
    let device = ctx.as_ref().map_or(Device::Cpu, Device::Gpu);
    let target = ToyTarget::from_spec(&format!("toy:L=4,K={k}"))?;
    let data = target.sample(10_000, 0)?;
    let flow = FlowConfig::new(4, k, hidden, Geometry::Sphere);
    let cfg = TrainConfig {
        batch,
        ..Default::default()
    };
    let mut tr = Trainer::new(device, flow, cfg, data)?;
    tr.train_steps(2)?;
    tr.take_mean_loss()?;
    // Per label: count in one step and the time of every repetition.
    let mut by: BTreeMap<String, (usize, Vec<f64>)> = BTreeMap::new();
    let mut totals = Vec::new();
    for _ in 0..reps {
        let times = tr.profile_step()?;
        totals.push(times.iter().map(|(_, ns)| ns).sum::<f64>());
        let mut step: BTreeMap<&str, (usize, f64)> = BTreeMap::new();
        for (l, ns) in &times {
            let e = step.entry(l).or_default();
            e.0 += 1;
            e.1 += ns;
        }
        for (l, (n, ns)) in step {
            let e = by.entry(l.to_string()).or_default();
            e.0 = n;
            e.1.push(ns);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let total = median(&mut totals);
    let what = match &ctx {
        Some(c) => format!("{} (GPU timestamps)", c.describe()),
        None => format!(
            "CPU backend, {} threads (wall clock, median of {reps} steps)",
            fisherflow::kernels::cpu::threads()
        ),
    };
    println!(
        "{what} — one step, K={k}, hidden {hidden}, batch {batch}: {} parts, {:.3} ms",
        by.values().map(|(n, _)| n).sum::<usize>(),
        total * 1e-6
    );
    let mut rows: Vec<(String, usize, f64)> = by
        .into_iter()
        .map(|(l, (n, mut v))| (l, n, median(&mut v)))
        .collect();
    rows.sort_by(|a, b| b.2.total_cmp(&a.2));
    for (l, n, ns) in rows {
        println!(
            "{:>8.3} ms {:>5.1}%  {n:>3}×  {l}",
            ns * 1e-6,
            100.0 * ns / total
        );
    }
    Ok(())
}
