//! Class conditioning of a Fisher-Flow model: how many classes it reads and how often
//! training replaces a label by the null class (for classifier-free guidance), and the labels
//! of a training batch.

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

    /// The null class (the label meaning "no class").
    pub fn null(&self) -> f32 {
        self.classes as f32
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
