//! The toy benchmark of Dirichlet FM and Fisher-Flow: L = 4 independent categoricals with
//! probabilities softmax(U[0,1)) per position; the score is KL(empirical ‖ true) per
//! position, averaged, from argmax samples of the trained model, printed beside the KL of as
//! many exact samples (the floor a perfect model reaches) and of the uniform distribution (the
//! noise baseline).
//!
//! Two protocols ([`Protocol`]):
//! - [`Protocol::Quick`]: a fixed set of 100,000 training sequences, 1,000 steps of batch 256,
//!   hidden 256, 16,384 samples: minutes on a CPU.
//! - [`Protocol::Paper`]: the published setting. Fresh draws from the target every batch (the
//!   reference implementation's `toy_sampled` data set), the model and optimiser of the papers
//!   (hidden 512, two residual blocks, time embedding 64; AdamW lr 1e-3, no weight decay,
//!   gradient norm clipped to 1; batch 512), reduce-on-plateau (the Fisher-Flow code's
//!   `ReduceLROnPlateau(factor 0.1, patience 10)`), 450,000 steps (the default `--max_steps` of
//!   the Dirichlet FM code, which its README's toy commands keep), OT pairs drawn from the exact
//!   plan with replacement, and the KL from 2¹⁹ = 524,288 samples. Runs checkpoint into a state
//!   directory and resume from it ([`run_one`]).

use std::path::PathBuf;
use std::time::Instant;

use crate::checkpoint::Checkpoint;
use crate::data::metrics::{kl, kl_to_target};
use crate::data::toy::ToyTarget;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::flow::{
    sample, DataSource, FlowConfig, FlowModel, Geometry, OtMode, OtPairing, SampleConfig,
    ScheduleKind, TrainConfig, Trainer,
};

/// One method of the comparison.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Method {
    /// Short name for tables.
    pub name: &'static str,
    /// Geometry of the flow.
    pub geometry: Geometry,
    /// Minibatch coupling.
    pub ot: OtMode,
}

/// Every method: Fisher-Flow, Fisher-Flow with exact minibatch OT, Dirichlet FM, the
/// Fisher–Rao flow on the simplex and linear flow matching on the simplex.
pub const METHODS: [Method; 5] = [
    Method {
        name: "fisher-flow",
        geometry: Geometry::Sphere,
        ot: OtMode::None,
    },
    Method {
        name: "fisher-flow+OT",
        geometry: Geometry::Sphere,
        ot: OtMode::Exact,
    },
    Method {
        name: "dirichlet-FM",
        geometry: Geometry::Dirichlet,
        ot: OtMode::None,
    },
    Method {
        name: "fisher-rao-simplex",
        geometry: Geometry::FisherRaoSimplex,
        ot: OtMode::None,
    },
    Method {
        name: "linear-FM",
        geometry: Geometry::Simplex,
        ot: OtMode::None,
    },
];

/// The methods of the quick protocol by default.
pub const QUICK_METHODS: [&str; 3] = ["fisher-flow", "fisher-flow+OT", "linear-FM"];

/// The method called `name` (case-insensitive).
pub fn method(name: &str) -> Result<Method> {
    METHODS
        .iter()
        .find(|m| m.name.eq_ignore_ascii_case(name))
        .copied()
        .ok_or_else(|| {
            let names: Vec<&str> = METHODS.iter().map(|m| m.name).collect();
            Error::InvalidArgument(format!(
                "unknown method '{name}': expected one of {}",
                names.join(", ")
            ))
        })
}

/// How the benchmark trains and scores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Protocol {
    /// A fixed training set, a short run, a small sample: minutes.
    #[default]
    Quick,
    /// The published protocol (see the [module docs](self)).
    Paper,
}

/// Steps of the paper protocol: the default `--max_steps` of the Dirichlet FM code.
pub const PAPER_STEPS: usize = 450_000;
/// Samples for the KL under the paper protocol.
pub const PAPER_SAMPLES: usize = 1 << 19;
/// Training sequences of the quick protocol's fixed set.
pub const QUICK_DATA: usize = 100_000;

/// Settings shared by every run of the benchmark.
#[derive(Clone, Copy, Debug)]
pub struct ToyBenchConfig {
    /// The protocol.
    pub protocol: Protocol,
    /// Training steps per run.
    pub steps: usize,
    /// Batch size.
    pub batch: usize,
    /// Hidden width.
    pub hidden: usize,
    /// Samples drawn for the KL.
    pub samples: usize,
    /// Integration steps of the sampler.
    pub sample_steps: usize,
    /// Seed.
    pub seed: u64,
    /// Learning-rate schedule.
    pub schedule: ScheduleKind,
    /// How OT pairs are taken from the plan (for the methods with OT).
    pub ot_pairing: OtPairing,
}

impl ToyBenchConfig {
    /// The defaults of `protocol`.
    pub fn of(protocol: Protocol) -> Self {
        match protocol {
            // The benchmark of BENCHMARKS.md before the paper protocol: 1,000 steps of batch
            // 256, hidden 256, KL from 16,384 samples of 100 Euler steps, constant rate.
            Protocol::Quick => Self {
                protocol,
                steps: 1000,
                batch: 256,
                hidden: 256,
                samples: 16_384,
                sample_steps: 100,
                seed: 0,
                schedule: ScheduleKind::Constant,
                ot_pairing: OtPairing::Assign,
            },
            Protocol::Paper => Self {
                protocol,
                steps: PAPER_STEPS,
                batch: 512,
                hidden: 512,
                samples: PAPER_SAMPLES,
                sample_steps: 100,
                seed: 0,
                schedule: ScheduleKind::Plateau,
                ot_pairing: OtPairing::Sample,
            },
        }
    }
}

impl Default for ToyBenchConfig {
    fn default() -> Self {
        Self::of(Protocol::Quick)
    }
}

/// One row of the result table.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ToyRow {
    /// Method name.
    pub method: String,
    /// Categories.
    pub k: usize,
    /// KL of the trained model's samples.
    pub kl: f64,
    /// KL of independent samples of the true distribution of the same size (the floor).
    pub kl_floor: f64,
    /// KL of the uniform distribution to the target (the noise baseline).
    #[serde(default)]
    pub kl_uniform: f64,
    /// Training steps.
    pub steps: usize,
    /// Samples used.
    pub samples: usize,
    /// Training steps per second (of this invocation's steps).
    pub steps_per_s: f64,
    /// Seconds of training and sampling in this invocation.
    #[serde(default)]
    pub seconds: f64,
    /// Backend (`cpu-f32` or `gpu (...)`).
    pub backend: String,
}

/// The target of K categories.
pub fn target(k: usize, seed: u64) -> Result<ToyTarget> {
    ToyTarget::from_spec(&format!("toy:L=4,K={k},seed={seed}"))
}

/// KL of the uniform distribution to the target, per position, averaged.
pub fn uniform_kl(t: &ToyTarget) -> f64 {
    let u = vec![1.0 / t.vocab as f64; t.vocab];
    t.probs.chunks(t.vocab).map(|p| kl(&u, p)).sum::<f64>() / t.len as f64
}

/// Steps between checkpoints of a resumable run.
pub const CHECKPOINT_EVERY: usize = 2000;

/// Train and score one method at one K. With `state` (a checkpoint path), the run starts from
/// the checkpoint there when one exists and writes one every [`CHECKPOINT_EVERY`] steps.
pub fn run_one(
    device: Device,
    method: &Method,
    k: usize,
    c: &ToyBenchConfig,
    state: Option<&PathBuf>,
) -> Result<ToyRow> {
    let target = target(k, c.seed)?;
    let data = match c.protocol {
        Protocol::Quick => DataSource::from(target.sample(QUICK_DATA, c.seed ^ 0x5eed)?),
        Protocol::Paper => DataSource::fresh(&target),
    };
    let flow = FlowConfig::new(4, k, c.hidden, method.geometry);
    let cfg = TrainConfig {
        batch: c.batch,
        ot: method.ot,
        ot_pairing: if method.ot == OtMode::None {
            OtPairing::Assign
        } else {
            c.ot_pairing
        },
        seed: c.seed,
        schedule: c.schedule.schedule(c.steps as u64),
        ..Default::default()
    };
    let mut tr = Trainer::new(device, flow, cfg, data)?;
    if let Some(path) = state.filter(|p| p.exists()) {
        let ck = Checkpoint::load(path)?;
        tr.restore(&ck)?;
    }
    let t0 = Instant::now();
    let start = tr.steps_done() as usize;
    while (tr.steps_done() as usize) < c.steps {
        let n = (c.steps - tr.steps_done() as usize).min(CHECKPOINT_EVERY);
        tr.train_steps(n)?;
        tr.take_mean_loss()?;
        if let Some(path) = state {
            tr.checkpoint()?.save(path)?;
        }
    }
    let train_secs = t0.elapsed().as_secs_f64();
    let sc = SampleConfig {
        n: c.samples,
        steps: c.sample_steps,
        seed: c.seed + 1,
        ..Default::default()
    };
    let model = FlowModel::from_trainer(&tr)?;
    let samples = sample(device, &model, &sc)?;
    let floor = target.sample(c.samples, c.seed + 2)?;
    let done = (c.steps - start.min(c.steps)) as f64;
    Ok(ToyRow {
        method: method.name.to_string(),
        k,
        kl: kl_to_target(&samples, &target.probs)?,
        kl_floor: kl_to_target(&floor, &target.probs)?,
        kl_uniform: uniform_kl(&target),
        steps: c.steps,
        samples: c.samples,
        steps_per_s: done / train_secs.max(1e-9),
        seconds: t0.elapsed().as_secs_f64(),
        backend: tr.backend_name(),
    })
}
