//! Class conditioning of a Fisher-Flow model: how many classes it reads and how often
//! training replaces a label by the null class (for classifier-free guidance), and the labels
//! of a training batch.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::data::SequenceDataset;
use crate::error::{Error, Result};
use crate::flow::train::{FlowConfig, TrainConfig, STREAM_INDEX};
use crate::kernels::rng;

/// Stream of the label-dropout draws.
pub const STREAM_COND_DROP: u32 = 5;

/// Class conditioning (none: `classes == 0`, what checkpoints written before it read as).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Conditioning {
    /// Classes the model reads (label `classes` is the null class).
    pub classes: usize,
    /// Probability that a training label is replaced by the null class.
    pub drop: f32,
}

impl Conditioning {
    /// Check the settings against the data: labelled, with the model's number of classes
    /// (`None`: fresh draws from a target, which carry no labels).
    pub fn check(&self, data: Option<&SequenceDataset>) -> Result<()> {
        if !(0.0..1.0).contains(&self.drop) {
            return Err(Error::InvalidArgument(format!(
                "label dropout {} must be in [0, 1)",
                self.drop
            )));
        }
        if self.classes == 0 {
            return Ok(());
        }
        match data.and_then(|d| d.classes()) {
            None => Err(Error::InvalidArgument(
                "a class-conditional model needs labelled data (class=C in every FASTA header, \
                 a labels file, or a dna: source)"
                    .into(),
            )),
            Some(c) if c != self.classes => Err(Error::Shape(format!(
                "the model reads {} classes but the data have {c}",
                self.classes
            ))),
            Some(_) => Ok(()),
        }
    }

    /// An error when minibatch OT (`ot`) would pair sequences against their labels.
    pub fn check_ot(&self, ot: bool) -> Result<()> {
        if self.classes > 0 && ot {
            return Err(Error::InvalidArgument(
                "minibatch OT reorders the data against their labels: train a class-conditional \
                 model without OT"
                    .into(),
            ));
        }
        Ok(())
    }

    /// An error unless `class` is one of the model's classes (or `None`).
    pub fn check_class(&self, class: Option<u32>) -> Result<()> {
        match class {
            Some(_) if self.classes == 0 => Err(Error::InvalidArgument(
                "--class: the model is unconditional (train it with --conditional)".into(),
            )),
            Some(c) if c as usize >= self.classes => Err(Error::InvalidArgument(format!(
                "--class {c}: the model has {} classes (0..{})",
                self.classes, self.classes
            ))),
            _ => Ok(()),
        }
    }

    /// The labels input of `rows` sequences of `class` (`None`: the null class).
    pub fn labels(&self, class: Option<u32>, rows: usize) -> Result<Vec<f32>> {
        self.check_class(class)?;
        Ok(vec![class.map_or(self.null(), |c| c as f32); rows])
    }

    /// An error unless `classes` fits the model and `n` samples, and `guidance` the model: a
    /// class or a guidance weight other than 1 needs a class-conditional model, a list needs
    /// one class per sample, and every class must be one of the model's.
    pub fn check_sampling(&self, classes: &SampleClasses, guidance: f32, n: usize) -> Result<()> {
        if !guidance.is_finite() {
            return Err(Error::InvalidArgument(format!(
                "--guidance {guidance} is not a finite number"
            )));
        }
        match classes {
            SampleClasses::Null => self.check_class(None)?,
            SampleClasses::All(c) => self.check_class(Some(*c))?,
            SampleClasses::Each(list) => {
                if list.len() != n {
                    return Err(Error::InvalidArgument(format!(
                        "--class: {} labels for {n} samples (give one label per sample)",
                        list.len()
                    )));
                }
                if let Some((i, &c)) = list
                    .iter()
                    .enumerate()
                    .find(|(_, &c)| self.check_class(Some(c)).is_err())
                {
                    return Err(Error::InvalidArgument(format!(
                        "--class: the label of sample {i} is {c}, but {}",
                        match self.classes {
                            0 => "the model is unconditional (train it with --conditional)".into(),
                            k => format!("the model has {k} classes (0..{k})"),
                        }
                    )));
                }
            }
        }
        if guidance != 1.0 && self.classes > 0 && *classes == SampleClasses::Null {
            return Err(Error::InvalidArgument(format!(
                "--guidance {guidance} needs --class: guidance pushes the null-class field \
                 towards a class's"
            )));
        }
        if guidance != 1.0 && self.classes == 0 {
            return Err(Error::InvalidArgument(format!(
                "--guidance {guidance}: the model is unconditional (guidance mixes the \
                 class-conditional and the null-class fields of a model trained with \
                 --conditional --cond-drop)"
            )));
        }
        Ok(())
    }

    /// A warning when `guidance` extrapolates from a null-class field the model never learned
    /// (trained without label dropout), else `None`.
    pub fn guidance_warning(&self, guidance: f32) -> Option<String> {
        (self.classes > 0 && guidance != 1.0 && self.drop == 0.0).then(|| {
            format!(
                "warning: --guidance {guidance} on a model trained without label dropout \
                 (--cond-drop 0): its null-class field was never trained, so the guided field \
                 is not meaningful; train with --cond-drop 0.1 or sample with --guidance 1"
            )
        })
    }

    /// The labels input of the network rows of samples `first..first + rows` of a sampling
    /// run: the samples' classes, followed by as many null-class rows when `guided` (the
    /// field of classifier-free guidance evaluates both). Rows past the last sample (a
    /// partial last chunk) read the null class.
    pub fn chunk_labels(
        &self,
        classes: &SampleClasses,
        first: usize,
        rows: usize,
        guided: bool,
    ) -> Vec<f32> {
        let mut out: Vec<f32> = (first..first + rows)
            .map(|i| classes.of(i).map_or(self.null(), |c| c as f32))
            .collect();
        if guided {
            out.resize(2 * rows, self.null());
        }
        out
    }

    /// The null class (the label meaning "no class").
    pub fn null(&self) -> f32 {
        self.classes as f32
    }
}

/// The classes of the samples a sampling run draws from a class-conditional model.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum SampleClasses {
    /// The null class for every sample (the unconditional field).
    #[default]
    Null,
    /// One class for every sample.
    All(u32),
    /// Class `list[i]` for sample `i`, one per sample.
    Each(Arc<[u32]>),
}

impl SampleClasses {
    /// The class of sample `i` (`None`: the null class, or `i` past the list).
    pub fn of(&self, i: usize) -> Option<u32> {
        match self {
            Self::Null => None,
            Self::All(c) => Some(*c),
            Self::Each(list) => list.get(i).copied(),
        }
    }
}

/// The labels of the batch of `step` (the sequences [`super::train::host_batch`] draws, each
/// replaced by the null class with probability [`Conditioning::drop`]), or `None` for an
/// unconditional model.
pub fn batch_labels(
    flow: &FlowConfig,
    cfg: &TrainConfig,
    data: &SequenceDataset,
    step: u64,
) -> Option<Vec<f32>> {
    let c = flow.cond;
    if c.classes == 0 {
        return None;
    }
    let b = cfg.batch;
    let u = rng::cpu::uniform(cfg.seed, step, STREAM_INDEX, b);
    let drop = rng::cpu::uniform(cfg.seed, step, STREAM_COND_DROP, b);
    Some(
        u.iter()
            .zip(&drop)
            .map(|(&v, &d)| {
                let i = ((v * data.n as f32) as usize).min(data.n - 1);
                match data.label(i) {
                    Some(l) if d >= c.drop => l as f32,
                    _ => c.null(),
                }
            })
            .collect(),
    )
}
