//! Where a trainer's data points `x1` come from: a fixed data set (batches drawn from it with
//! replacement) or a known product of categoricals (every batch drawn afresh, as the toy
//! experiment of the papers does). Both draw from the counter-based Philox generator with the
//! step as counter, so a run is reproducible and resumes exactly; the GPU and the host draw
//! the same batches.

use crate::data::toy::ToyTarget;
use crate::data::SequenceDataset;
use crate::error::{Error, Result};
use crate::flow::kernels as fk;
use crate::flow::paths;
use crate::gpu::{GpuContext, GpuTensor, Recorder};
use crate::kernels::rng::{self, GpuRng};

/// The source of training data.
#[derive(Clone, Debug)]
pub enum DataSource {
    /// Batches of sequences drawn with replacement from a data set.
    Dataset(SequenceDataset),
    /// Every batch drawn afresh from independent categoricals per position:
    /// `probs[l·K + k]` = P(token k at position l).
    Product {
        /// Positions L.
        len: usize,
        /// Categories K.
        vocab: usize,
        /// The probabilities, `[L, K]`.
        probs: Vec<f64>,
    },
}

impl From<SequenceDataset> for DataSource {
    fn from(d: SequenceDataset) -> Self {
        DataSource::Dataset(d)
    }
}

impl DataSource {
    /// Fresh draws from a toy target.
    pub fn fresh(target: &ToyTarget) -> Self {
        DataSource::Product {
            len: target.len,
            vocab: target.vocab,
            probs: target.probs.clone(),
        }
    }

    /// The data set, unless batches are fresh draws.
    pub fn dataset(&self) -> Option<&SequenceDataset> {
        match self {
            DataSource::Dataset(d) => Some(d),
            DataSource::Product { .. } => None,
        }
    }

    /// `(L, K)`.
    pub fn shape(&self) -> (usize, usize) {
        match self {
            DataSource::Dataset(d) => (d.len, d.vocab),
            DataSource::Product { len, vocab, .. } => (*len, *vocab),
        }
    }

    /// An error unless the source can be drawn from.
    pub fn validate(&self) -> Result<()> {
        match self {
            DataSource::Dataset(d) if d.n == 0 => Err(Error::Shape("the data set is empty".into())),
            DataSource::Product { len, vocab, probs } => {
                let ok = probs.len() == len * vocab
                    && probs.iter().all(|p| p.is_finite() && *p >= 0.0)
                    && probs
                        .chunks(*vocab.max(&1))
                        .all(|r| r.iter().sum::<f64>() > 0.0);
                if ok && *len > 0 && *vocab > 0 {
                    Ok(())
                } else {
                    Err(Error::InvalidArgument(format!(
                        "a product source needs {len} × {vocab} non-negative, finite probabilities \
                         with positive mass per position (got {})",
                        probs.len()
                    )))
                }
            }
            _ => Ok(()),
        }
    }

    /// The one-hot batch `[B, L, K]` of `step` (what [`DataSource::record_x1`] writes).
    pub fn x1_host(&self, seed: u64, step: u64, stream: u32, b: usize) -> Vec<f32> {
        match self {
            DataSource::Dataset(d) => {
                let u = rng::cpu::uniform(seed, step, stream, b);
                fk::gather_onehot_cpu(&d.tokens, d.n, d.len, d.vocab, &u)
            }
            DataSource::Product { len, vocab, probs } => {
                let u = rng::cpu::uniform(seed, step, stream, b * len);
                let p: Vec<f32> = probs.iter().map(|&v| v as f32).collect();
                paths::categorical_onehot_cpu(&p, *len, *vocab, &u)
            }
        }
    }

    /// Record the one-hot batch of the step `rng` points at into `x1` (`[B, L, K]`): the
    /// source's data are uploaded once, here. For a data set, returns the uniforms that chose
    /// the batch's sequences (`[B]`, row `b` is sequence `floor(u[b]·n)`), for gathering what
    /// else belongs to them.
    pub fn record_x1(
        &self,
        ctx: &GpuContext,
        rec: &mut Recorder,
        rng: &GpuRng,
        stream: u32,
        x1: &GpuTensor<f32>,
    ) -> Result<Option<GpuTensor<f32>>> {
        let (b, l) = (x1.shape()[0], x1.shape()[1]);
        match self {
            DataSource::Dataset(d) => {
                let tokens = GpuTensor::from_slice(ctx, &d.tokens, &[d.n, l])?;
                if tokens.bytes() > ctx.limits().max_storage_buffer_binding_size {
                    return Err(Error::Limit(format!(
                        "the data set ({} MiB of tokens) exceeds the adapter's storage binding \
                         limit of {} MiB",
                        tokens.bytes() >> 20,
                        ctx.limits().max_storage_buffer_binding_size >> 20
                    )));
                }
                let u = GpuTensor::<f32>::zeros(ctx, &[b])?;
                rng::uniform(ctx, rec, rng, stream, &u)?;
                fk::gather_onehot(ctx, rec, &tokens, &u, x1)?;
                Ok(Some(u))
            }
            DataSource::Product { len, vocab, probs } => {
                let p: Vec<f32> = probs.iter().map(|&v| v as f32).collect();
                let p = GpuTensor::from_slice(ctx, &p, &[*len, *vocab])?;
                let u = GpuTensor::<f32>::zeros(ctx, &[b * l])?;
                rng::uniform(ctx, rec, rng, stream, &u)?;
                paths::categorical_onehot(ctx, rec, &p, &u, x1)?;
                Ok(None)
            }
        }
    }
}
