//! The toy benchmark of Dirichlet FM and Fisher-Flow: L = 4 independent categoricals with
//! probabilities softmax(U[0,1)) per position; the score is KL(empirical ‖ true) per
//! position, averaged, from argmax samples of the trained model.

use std::time::Instant;

use crate::data::metrics::kl_to_target;
use crate::data::toy::ToyTarget;
use crate::device::Device;
use crate::error::Result;
use crate::flow::{
    sample, FlowConfig, FlowModel, Geometry, LrSchedule, OtMode, SampleConfig, TrainConfig, Trainer,
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

/// Fisher-Flow, Fisher-Flow with exact minibatch OT, and linear flow matching on the simplex.
pub const METHODS: [Method; 3] = [
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
        name: "linear-FM",
        geometry: Geometry::Simplex,
        ot: OtMode::None,
    },
];

/// Settings shared by every run of the benchmark.
#[derive(Clone, Copy, Debug)]
pub struct ToyBenchConfig {
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
    /// Decay the learning rate along a cosine over the run (else constant, as in the papers).
    pub cosine: bool,
}

impl Default for ToyBenchConfig {
    /// The benchmark of BENCHMARKS.md: 1,000 steps of batch 256, hidden 256, KL from 16,384
    /// samples of 100 Euler steps, the papers' constant rate.
    fn default() -> Self {
        Self {
            steps: 1000,
            batch: 256,
            hidden: 256,
            samples: 16_384,
            sample_steps: 100,
            seed: 0,
            cosine: false,
        }
    }
}

/// One row of the result table.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ToyRow {
    /// Method name.
    pub method: String,
    /// Categories.
    pub k: usize,
    /// KL of the trained model's samples.
    pub kl: f64,
    /// KL of independent samples of the true distribution of the same size (the noise floor).
    pub kl_floor: f64,
    /// Training steps.
    pub steps: usize,
    /// Samples used.
    pub samples: usize,
    /// Training steps per second.
    pub steps_per_s: f64,
    /// Backend (`cpu-f32` or `gpu (...)`).
    pub backend: String,
}

/// Train and score one method at one K.
pub fn run_one(device: Device, method: &Method, k: usize, c: &ToyBenchConfig) -> Result<ToyRow> {
    let target = ToyTarget::from_spec(&format!("toy:L=4,K={k},seed={}", c.seed))?;
    let data = target.sample(100_000, c.seed ^ 0x5eed)?;
    let flow = FlowConfig::new(4, k, c.hidden, method.geometry);
    let cfg = TrainConfig {
        batch: c.batch,
        ot: method.ot,
        seed: c.seed,
        schedule: if c.cosine {
            LrSchedule::Cosine {
                steps: c.steps as u64,
                floor: 0.01,
            }
        } else {
            LrSchedule::Constant
        },
        ..Default::default()
    };
    let mut tr = Trainer::new(device, flow, cfg, data)?;
    let t0 = Instant::now();
    tr.train_steps(c.steps)?;
    tr.take_mean_loss()?;
    let secs = t0.elapsed().as_secs_f64();
    let sc = SampleConfig {
        n: c.samples,
        steps: c.sample_steps,
        seed: c.seed + 1,
        ..Default::default()
    };
    let model = FlowModel::from_trainer(&tr)?;
    let samples = sample(device, &model, &sc)?;
    let floor = target.sample(c.samples, c.seed + 2)?;
    Ok(ToyRow {
        method: method.name.to_string(),
        k,
        kl: kl_to_target(&samples, &target.probs)?,
        kl_floor: kl_to_target(&floor, &target.probs)?,
        steps: c.steps,
        samples: c.samples,
        steps_per_s: c.steps as f64 / secs,
        backend: tr.backend_name(),
    })
}
