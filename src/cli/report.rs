//! Quality figures printed with their scale: beside every sample figure, the same figure for
//! uniform noise (no model at all) and for exact samples of the target or a resample of the
//! data (the finite-sample floor), all at the same number of sequences.

use std::time::Instant;

use fisherflow::data::metrics::{
    joint_divergence, kl_to_target, marginal_kl, JointOver, DEFAULT_SMOOTHING,
};
use fisherflow::data::SequenceDataset;
use fisherflow::device::Device;
use fisherflow::flow::{FlowModel, SampleConfig, Solver, Trainer};
use fisherflow::kernels::rng::PhiloxStream;
use fisherflow::Result;

use super::common::Loaded;

/// Uniformly random tokens: the reference point of "no model at all".
pub fn uniform_noise(n: usize, l: usize, k: usize) -> Result<SequenceDataset> {
    let mut s = PhiloxStream::new(99, 0, 0);
    let tokens = (0..n * l).map(|_| s.below(k as u64) as u32).collect();
    SequenceDataset::new(tokens, n, l, k, None)
}

/// `n` sequences drawn with replacement from `data`: what a perfect model's samples score
/// against the data at this sample size.
fn resample(data: &SequenceDataset, n: usize) -> Result<SequenceDataset> {
    let mut s = PhiloxStream::new(7, 0, 0);
    let mut tokens = Vec::with_capacity(n * data.len);
    for _ in 0..n {
        tokens.extend_from_slice(data.row(s.below(data.n as u64) as usize));
    }
    SequenceDataset::new(tokens, n, data.len, data.vocab, None)
}

fn over(o: JointOver) -> &'static str {
    match o {
        JointOver::Sequences => "whole sequences",
        JointOver::Bigrams => "adjacent bigrams",
    }
}

/// Prints the figures of `rows` (name, sequences) against the data or the toy target, with
/// the noise baseline and the finite-sample floor.
pub fn print_scaled(rows: &[(&str, &SequenceDataset)], loaded: &Loaded) -> Result<()> {
    let n = rows.first().map_or(0, |r| r.1.n);
    let (l, k) = (loaded.data.len, loaded.data.vocab);
    let noise = uniform_noise(n, l, k)?;
    match &loaded.target {
        Some(target) => {
            let exact = target.sample(n, 777)?;
            println!("KL(samples || target), mean over positions, {n} sequences each (lower is better; 0: the target itself):");
            for (name, s) in rows {
                println!("  {name:<28} {:.5}", kl_to_target(s, &target.probs)?);
            }
            println!(
                "  {:<28} {:.5}   (no model at all)",
                "uniform noise",
                kl_to_target(&noise, &target.probs)?
            );
            println!(
                "  {:<28} {:.5}   (the floor at this sample size)",
                "exact samples of the target",
                kl_to_target(&exact, &target.probs)?
            );
        }
        None => {
            let eps = DEFAULT_SMOOTHING;
            let floor = resample(&loaded.data, n)?;
            println!(
                "divergence from the data, {n} sequences each (lower is better; 0: the data's own distribution):"
            );
            let floor_row = ("resample of the data", &floor);
            let noise_row = ("uniform noise", &noise);
            for (name, s) in rows.iter().chain([&noise_row, &floor_row]) {
                let m = marginal_kl(s, &loaded.data, eps)?;
                let j = joint_divergence(s, &loaded.data, eps)?;
                let note = match *name {
                    "uniform noise" => "  (no model at all)",
                    "resample of the data" => "  (the floor at this sample size)",
                    _ => "",
                };
                println!(
                    "  {name:<22} per-position KL {m:.5}  joint KL {:.5}  TV {:.5} (over {}){note}",
                    j.kl,
                    j.tv,
                    over(j.over)
                );
            }
        }
    }
    Ok(())
}

/// The evaluation after training: `n` samples of the trained and of the untrained model.
pub fn after_training(
    device: Device,
    tr: &Trainer<'_>,
    loaded: &Loaded,
    n: usize,
    steps: usize,
) -> Result<()> {
    let sc = SampleConfig {
        n,
        steps,
        solver: Solver::Euler,
        seed: 12345,
        ..SampleConfig::default()
    };
    let t0 = Instant::now();
    let samples = fisherflow::flow::sample(device, &FlowModel::from_trainer(tr)?, &sc)?;
    let secs = t0.elapsed().as_secs_f64();
    let untrained = FlowModel::untrained(*tr.flow_config(), tr.train_config().seed)?;
    let untrained = fisherflow::flow::sample(device, &untrained, &sc)?;
    eprintln!(
        "sampled {n} sequences with {steps} Euler steps in {secs:.1}s ({:.0} samples/s)",
        n as f64 / secs
    );
    print_scaled(
        &[("trained model", &samples), ("untrained model", &untrained)],
        loaded,
    )
}
