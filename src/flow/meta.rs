//! What a Fisher-Flow checkpoint says besides its tensors, read and written here only: the
//! model and training settings, the step, the data it was trained on (its name, alphabet and a
//! hash of its content); and the defaults of a training run.

use serde::{Deserialize, Serialize};

use crate::autodiff::NamedTensor;
use crate::checkpoint::Checkpoint;
use crate::data::SequenceDataset;
use crate::error::{Error, Result};
use crate::flow::train::{FlowConfig, TrainConfig};
use crate::nn::Network;

/// Training steps of a run when none are given.
pub const DEFAULT_STEPS: u64 = 5000;
/// The final fraction of the learning rate under the cosine schedule.
pub const COSINE_FLOOR: f32 = 0.01;

/// How the learning rate evolves over training.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum LrSchedule {
    /// The optimizer's learning rate at every step (the papers' setting).
    #[default]
    Constant,
    /// Half a cosine from the optimizer's rate at step 0 down to `floor` times it at step
    /// `steps`, then `floor` times it. Late small steps average out the gradient noise that
    /// the sharply varying targets of Fisher-Flow produce.
    Cosine {
        /// Steps of the decay (usually the length of the run).
        steps: u64,
        /// Final fraction of the rate, in [0, 1].
        floor: f32,
    },
    /// A linear rise from 0 to the optimizer's rate over `warmup` steps, then the cosine decay
    /// to `floor` times it at step `steps`.
    WarmupCosine {
        /// Steps of the rise.
        warmup: u64,
        /// Step at which the decay ends (usually the length of the run).
        steps: u64,
        /// Final fraction of the rate, in [0, 1].
        floor: f32,
    },
    /// Reduce on plateau (the reference implementation's schedule): the rate is multiplied by
    /// `factor` after more than `patience` windows of `window` steps whose mean training loss
    /// did not improve on the best ([`super::plateau`]). The trainer keeps its state.
    Plateau {
        /// Factor of a reduction, in (0, 1).
        factor: f32,
        /// Windows without improvement tolerated.
        patience: u32,
        /// Steps of a window.
        window: u64,
    },
}

impl LrSchedule {
    /// The learning rate of step `step` (counted from 0) for base rate `lr`; for
    /// [`LrSchedule::Plateau`] the base rate (the trainer scales it by its plateau state).
    pub fn lr_at(&self, lr: f32, step: u64) -> f32 {
        let cosine = |from: u64, to: u64, floor: f32| {
            let x = (step.clamp(from, to) - from) as f64 / (to - from).max(1) as f64;
            let c = 0.5 * (1.0 + (std::f64::consts::PI * x).cos());
            (lr as f64 * (floor as f64 + (1.0 - floor as f64) * c)) as f32
        };
        match *self {
            LrSchedule::Constant | LrSchedule::Plateau { .. } => lr,
            LrSchedule::Cosine { steps, floor } => cosine(0, steps, floor),
            LrSchedule::WarmupCosine { warmup, .. } if step < warmup => {
                (lr as f64 * (step + 1) as f64 / warmup as f64) as f32
            }
            LrSchedule::WarmupCosine {
                warmup,
                steps,
                floor,
            } => cosine(warmup, steps.max(warmup), floor),
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        match *self {
            LrSchedule::Cosine { steps, floor } if steps == 0 || !(0.0..=1.0).contains(&floor) => {
                bad(format!(
                    "a cosine schedule needs steps > 0 and a floor in [0, 1] (got {steps}, {floor})"
                ))
            }
            LrSchedule::WarmupCosine {
                warmup,
                steps,
                floor,
            } if warmup == 0 || steps < warmup || !(0.0..=1.0).contains(&floor) => bad(format!(
                "a warmup-cosine schedule needs 0 < warmup ≤ steps and a floor in [0, 1] (got \
                 {warmup}, {steps}, {floor})"
            )),
            LrSchedule::Plateau {
                factor,
                patience: _,
                window,
            } if window == 0 || !(factor > 0.0 && factor < 1.0) => bad(format!(
                "a plateau schedule needs a window > 0 and a factor in (0, 1) (got {window}, \
                 {factor})"
            )),
            _ => Ok(()),
        }
    }
}

/// The kind of [`LrSchedule`], as a run is told it (the cosine's length is the run's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum ScheduleKind {
    /// Decay to 1 % of the rate along half a cosine over the run's steps.
    Cosine,
    /// The same rate throughout (the papers' setting).
    Constant,
    /// A linear warmup over the first 5 % of the steps, then the cosine decay to 1 %.
    WarmupCosine,
    /// Reduce the rate tenfold after more than 10 windows of 196 steps without a lower mean
    /// loss (the reference implementation's `ReduceLROnPlateau`, a window being its epoch).
    Plateau,
}

/// The fraction of a run that [`ScheduleKind::WarmupCosine`] warms up over.
pub const WARMUP_FRACTION: f64 = 0.05;

impl ScheduleKind {
    /// The schedule of this kind for a run of `steps` steps.
    pub fn schedule(self, steps: u64) -> LrSchedule {
        match self {
            ScheduleKind::Cosine => LrSchedule::Cosine {
                steps,
                floor: COSINE_FLOOR,
            },
            ScheduleKind::Constant => LrSchedule::Constant,
            ScheduleKind::WarmupCosine => LrSchedule::WarmupCosine {
                warmup: ((steps as f64 * WARMUP_FRACTION) as u64).clamp(1, steps.max(1)),
                steps,
                floor: COSINE_FLOOR,
            },
            ScheduleKind::Plateau => LrSchedule::Plateau {
                factor: super::plateau::FACTOR,
                patience: super::plateau::PATIENCE,
                window: super::plateau::WINDOW,
            },
        }
    }
}

impl std::fmt::Display for LrSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LrSchedule::Constant => write!(f, "constant"),
            LrSchedule::Cosine { steps, floor } => {
                write!(f, "cosine to {floor} of it over {steps} steps")
            }
            LrSchedule::WarmupCosine {
                warmup,
                steps,
                floor,
            } => write!(
                f,
                "linear warmup over {warmup} steps, then cosine to {floor} of it by step {steps}"
            ),
            LrSchedule::Plateau {
                factor,
                patience,
                window,
            } => write!(
                f,
                "times {factor} after more than {patience} windows of {window} steps without improvement"
            ),
        }
    }
}

/// The minibatch coupling, as a run is told it (the Sinkhorn settings come separately).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum OtKind {
    /// Independent pairs.
    #[default]
    None,
    /// The optimal assignment (solved on the host).
    Exact,
    /// Pairs drawn from an entropic plan.
    Sinkhorn,
}

/// Sinkhorn's entropic regularisation when none is given.
pub const SINKHORN_EPS: f32 = 0.05;
/// Sinkhorn iterations per step when none are given.
pub const SINKHORN_ITERS: u32 = 50;

impl OtKind {
    /// The coupling of this kind (`eps` and `iters` matter to Sinkhorn only).
    pub fn mode(self, eps: f32, iters: u32) -> super::OtMode {
        match self {
            OtKind::None => super::OtMode::None,
            OtKind::Exact => super::OtMode::Exact,
            OtKind::Sinkhorn => super::OtMode::Sinkhorn { eps, iters },
        }
    }
}

/// How a training run proceeds, beyond the model and optimizer settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunConfig {
    /// Training steps in all (counting steps done before a resume).
    pub steps: u64,
    /// Write a checkpoint every this many steps (0: only at the end).
    pub checkpoint_every: u64,
    /// Read the loss back every this many steps.
    pub log_every: u64,
    /// Samples drawn for the evaluation after training (when the target is known).
    pub eval_samples: usize,
    /// Integration steps of the evaluation sampler.
    pub sample_steps: usize,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            steps: DEFAULT_STEPS,
            checkpoint_every: 500,
            log_every: 50,
            eval_samples: 8192,
            sample_steps: 100,
        }
    }
}

/// The quick demo (`fisherflow train toy`): a minute of CPU training on 4 positions over 5
/// tokens, which gets well below the KL of uniform noise.
pub mod demo {
    /// Its data.
    pub const DATA: &str = "toy:L=4,K=5,seed=0";
    /// Its training steps.
    pub const STEPS: u64 = 2000;
    /// Integration steps of its evaluation sampler.
    pub const SAMPLE_STEPS: usize = 50;
}

/// Checkpoint metadata key of the data alphabet.
pub const META_ALPHABET: &str = "fisherflow.alphabet";
/// Checkpoint metadata key of the hash of the training data ([`SequenceDataset::content_hash`]).
pub const META_DATA_HASH: &str = "fisherflow.data_hash";

/// The data a checkpoint was trained on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataInfo {
    /// How the run named them (`toy:…`, `dna:…` or a path).
    pub spec: String,
    /// Their alphabet, for character data.
    pub alphabet: Option<String>,
    /// [`SequenceDataset::content_hash`] (absent in checkpoints older than the hash).
    pub hash: Option<String>,
}

impl DataInfo {
    /// The description of `data`, named `spec`.
    pub fn of(spec: &str, data: &SequenceDataset) -> Self {
        Self {
            spec: spec.to_string(),
            alphabet: data.alphabet.clone(),
            hash: Some(data.content_hash()),
        }
    }

    /// Stores it in `ck`.
    pub fn write(&self, ck: &mut Checkpoint) {
        ck.set_meta(META_DATA, self.spec.clone());
        if let Some(a) = &self.alphabet {
            ck.set_meta(META_ALPHABET, a.clone());
        }
        if let Some(h) = &self.hash {
            ck.set_meta(META_DATA_HASH, h.clone());
        }
    }

    /// Reads it from `ck`.
    pub fn read(ck: &Checkpoint) -> Result<Self> {
        Ok(Self {
            spec: ck.meta(META_DATA)?.to_string(),
            alphabet: ck.metadata.get(META_ALPHABET).cloned(),
            hash: ck.metadata.get(META_DATA_HASH).cloned(),
        })
    }

    /// An error unless `data` are the data this checkpoint was trained on (by content).
    pub fn check_same(&self, data: &SequenceDataset, spec: &str) -> Result<()> {
        match &self.hash {
            Some(h) if *h != data.content_hash() => Err(Error::Checkpoint(format!(
                "the checkpoint was trained on other data than {spec} now holds (content hash \
                 {h}, now {}; it was trained on {})",
                data.content_hash(),
                self.spec
            ))),
            _ => Ok(()),
        }
    }
}

/// The alphabet stored in a checkpoint, if any.
pub fn alphabet(ck: &Checkpoint) -> Option<String> {
    ck.metadata.get(META_ALPHABET).cloned()
}

impl TrainConfig {
    /// The training settings stored in a checkpoint.
    pub fn from_checkpoint(ck: &Checkpoint) -> Result<Self> {
        parse_meta(ck, META_TRAIN)
    }
}

/// Checkpoint metadata key of the model settings (JSON).
pub const META_MODEL: &str = "fisherflow.model";
/// Checkpoint metadata key of the training settings (JSON).
pub const META_TRAIN: &str = "fisherflow.train";
/// Checkpoint metadata key of the step count.
pub const META_STEP: &str = "fisherflow.step";
/// Checkpoint metadata key of the optimizer's step count.
pub const META_OPT_STEP: &str = "fisherflow.optimizer_step";
/// Checkpoint metadata key of the state of a reduce-on-plateau schedule (JSON).
pub const META_PLATEAU: &str = "fisherflow.plateau";
/// Checkpoint metadata key of the data the model was trained on.
pub const META_DATA: &str = "fisherflow.data";

pub(crate) fn json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v)
        .map_err(|e| Error::InvalidArgument(format!("serialising settings: {e}")))
}

pub(crate) fn write_model_meta(ck: &mut Checkpoint, flow: &FlowConfig) -> Result<()> {
    ck.set_meta(META_MODEL, json(flow)?);
    Ok(())
}

pub(crate) fn parse_meta<T: for<'de> Deserialize<'de>>(ck: &Checkpoint, key: &str) -> Result<T> {
    let s = ck.meta(key)?;
    serde_json::from_str(s)
        .map_err(|e| Error::Checkpoint(format!("metadata {key:?} is malformed: {e}")))
}

pub(crate) fn parse_num(ck: &Checkpoint, key: &str) -> Result<u64> {
    let s = ck.meta(key)?;
    s.parse()
        .map_err(|_| Error::Checkpoint(format!("metadata {key:?} = {s:?} is not a step count")))
}

/// The model's parameters as stored in `ck` (names and shapes checked).
pub(crate) fn params_from(ck: &Checkpoint, model: &Network) -> Result<Vec<NamedTensor>> {
    model
        .graph
        .params()
        .iter()
        .map(|p| {
            Ok(NamedTensor {
                name: p.name.clone(),
                shape: p.shape.clone(),
                data: ck.expect(&p.name, &p.shape)?.to_vec(),
            })
        })
        .collect()
}
