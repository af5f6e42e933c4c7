//! Conditioning of a Fisher-Flow model: how many classes it reads and how often training
//! replaces a label by the null class (for classifier-free guidance), whether it reads a
//! per-position signal track and of how many channels, and the labels and tracks of a training
//! batch.
//!
//! The signal track is never dropped: label dropout replaces the class only, so the null-class
//! field of guidance still sees the track, and guidance `v_null + w·(v_c − v_null)` amplifies
//! the class alone, at the same track.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::data::{SequenceDataset, SignalTracks};
use crate::error::{Error, Result};
use crate::flow::train::{FlowConfig, TrainConfig, STREAM_INDEX};
use crate::kernels::rng;

/// Stream of the label-dropout draws.
pub const STREAM_COND_DROP: u32 = 5;

/// Conditioning (none: `classes == 0` and `signal == 0`, what checkpoints written before it
/// read as).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Conditioning {
    /// Classes the model reads (label `classes` is the null class).
    pub classes: usize,
    /// Probability that a training label is replaced by the null class.
    pub drop: f32,
    /// Channels of the per-position signal track the model reads (0: none; checkpoints
    /// written before signal tracks read as none).
    #[serde(default)]
    pub signal: usize,
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
        self.check_signal_data(data)?;
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

    /// An error unless the data carry the signal tracks the model reads (and none when it
    /// reads none).
    fn check_signal_data(&self, data: Option<&SequenceDataset>) -> Result<()> {
        let have = data.map_or(0, |d| d.signal_channels());
        match (self.signal, have) {
            (want, have) if want == have => Ok(()),
            (0, have) => Err(Error::InvalidArgument(format!(
                "the data carry a signal track of {have} channels but the model reads none"
            ))),
            (want, 0) => Err(Error::InvalidArgument(format!(
                "the model reads a signal track of {want} channels but the data have none \
                 (--signal FILE)"
            ))),
            (want, have) => Err(Error::Shape(format!(
                "the model reads a signal track of {want} channels but the data's has {have}"
            ))),
        }
    }

    /// An error when minibatch OT (`ot`) would pair sequences against their labels or tracks.
    pub fn check_ot(&self, ot: bool) -> Result<()> {
        if (self.classes > 0 || self.signal > 0) && ot {
            return Err(Error::InvalidArgument(
                "minibatch OT reorders the data against their labels and signal tracks: train \
                 a conditional model without OT"
                    .into(),
            ));
        }
        Ok(())
    }

    /// An error unless `tracks` are `n` tracks of length `len` with the model's channels, or
    /// none for a model without a signal track.
    pub fn check_sample_signal(
        &self,
        tracks: Option<&SignalTracks>,
        n: usize,
        len: usize,
    ) -> Result<()> {
        self.check_signal(tracks.map_or(0, |t| t.channels), "--signal")?;
        match tracks {
            Some(t) if (t.n, t.len) != (n, len) => Err(Error::InvalidArgument(format!(
                "--signal: {} tracks of length {} for {n} samples of length {len} (one track \
                 per sample, one value per position)",
                t.n, t.len
            ))),
            _ => Ok(()),
        }
    }

    /// An error unless `channels` (those of the tracks given for sampling, 0: none) are the
    /// channels of the model's signal track; the message names `flag`.
    pub fn check_signal(&self, channels: usize, flag: &str) -> Result<()> {
        match (self.signal, channels) {
            (want, have) if want == have => Ok(()),
            (0, _) => Err(Error::InvalidArgument(format!(
                "{flag}: the model reads no signal track (train it with --signal)"
            ))),
            (want, 0) => Err(Error::InvalidArgument(format!(
                "the model reads a signal track of {want} channel{}: give it with {flag} FILE \
                 (one track a line, one line per sequence)",
                if want == 1 { "" } else { "s" }
            ))),
            (want, have) => Err(Error::InvalidArgument(format!(
                "{flag}: {have} channels given but the model reads a signal track of {want}"
            ))),
        }
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

/// The signal input of the network rows of samples `first..first + rows` of a sampling run:
/// the samples' tracks, `[rows, L, channels]`, repeated for the null-class rows when `guided`
/// (the null-class field sees the same track). Rows past the last track (a partial last chunk)
/// read zeros.
pub fn chunk_signal(tracks: &SignalTracks, first: usize, rows: usize, guided: bool) -> Vec<f32> {
    let w = tracks.len * tracks.channels;
    let mut out = vec![0.0; rows * w];
    let have = tracks.n.saturating_sub(first).min(rows);
    out[..have * w].copy_from_slice(&tracks.values[first * w..][..have * w]);
    if guided {
        out.extend_from_within(..);
    }
    out
}

/// The sequences the batch of `step` draws from `n` (the rows of
/// [`super::train::host_batch`]'s and the on-device batch's `x1`).
pub fn batch_rows(cfg: &TrainConfig, n: usize, step: u64) -> Vec<usize> {
    rng::cpu::uniform(cfg.seed, step, STREAM_INDEX, cfg.batch)
        .iter()
        .map(|&v| ((v * n as f32) as usize).min(n - 1))
        .collect()
}

/// The labels of the batch of `step` (the sequences [`batch_rows`] draws, each replaced by the
/// null class with probability [`Conditioning::drop`]), or `None` for a model without classes.
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
    let drop = rng::cpu::uniform(cfg.seed, step, STREAM_COND_DROP, cfg.batch);
    Some(
        batch_rows(cfg, data.n, step)
            .into_iter()
            .zip(&drop)
            .map(|(i, &d)| match data.label(i) {
                Some(l) if d >= c.drop => l as f32,
                _ => c.null(),
            })
            .collect(),
    )
}

/// The signal tracks of the batch of `step` (those of the sequences [`batch_rows`] draws,
/// `[B, L, channels]`; never dropped), or `None` for a model without a signal track.
pub fn batch_signal(
    flow: &FlowConfig,
    cfg: &TrainConfig,
    data: &SequenceDataset,
    step: u64,
) -> Option<Vec<f32>> {
    let tracks = data.signal().filter(|_| flow.cond.signal > 0)?;
    Some(tracks.gather(&batch_rows(cfg, data.n, step)))
}
