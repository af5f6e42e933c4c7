//! Generated DNA judged against the true source ([`DnaSource`]), every figure beside its scale:
//! held-out data of the source (the data's own value) and uniformly random bases (noise).
//!
//! - **log-likelihood per base**: mean of `ln p(x) / L` under the true source (exact, forward
//!   algorithm). A uniform model would give `ln ¼`; noise sequences score below it.
//! - **k-mer spectrum JSD**, k = 1..=[`KMER_MAX`]: Jensen–Shannon divergence (nats) between the
//!   k-mer frequencies of the set and those of a reference set of the source (split
//!   [`Split::Reference`], at least [`MIN_REFERENCE`] sequences). The held-out set has as many
//!   sequences as the samples, so its value is the finite-sample floor.
//! - **motif hit rate** per class c: the fraction of sequences holding a hit of one of c's
//!   motifs ([`Motif::occurs_in`](super::dna::Motif::occurs_in)); with labels, also among the
//!   sequences labelled c.
//! - **conditional accuracy** (labelled sets): the fraction whose most probable class under the
//!   source, `argmax_c p(c | x)`, is their label. Held-out data give the Bayes accuracy; noise,
//!   labelled at random, chance.
//! - **duplicates**: the fraction of sequences equal to a training sequence.

use super::dna::{DnaSource, Split};
use super::metrics::{accuracy, duplicate_fraction, jensen_shannon, kmer_spectrum};
use super::{Labels, SequenceDataset};
use crate::error::Result;
use crate::kernels::rng::PhiloxStream;

/// The longest k-mers compared.
pub const KMER_MAX: usize = 6;
/// The smallest reference set for the k-mer spectra.
pub const MIN_REFERENCE: usize = 10_000;
/// Seed of the held-out and reference sets (their splits keep them apart from training sets).
pub const EVAL_SEED: u64 = 0;
const STREAM_NOISE: u32 = 0x646e_6121;

/// The figures of one set of sequences (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct DnaFigures {
    /// Number of sequences.
    pub n: usize,
    /// Mean `ln p(x) / L` under the source, nats per base.
    pub log_likelihood_per_base: f64,
    /// `(k, JSD)` of the k-mer spectra against the reference set, k = 1..=min(KMER_MAX, L).
    pub kmer_jsd: Vec<(usize, f64)>,
    /// Per class c: the fraction of sequences with a hit of one of c's motifs.
    pub motif_hit_rate: Vec<f64>,
    /// Per class c, with labels: that fraction among the sequences labelled c (`None` when no
    /// sequence is labelled c).
    pub motif_hit_rate_own: Option<Vec<Option<f64>>>,
    /// With labels: the fraction whose most probable class under the source is their label.
    pub conditional_accuracy: Option<f64>,
    /// The fraction of sequences equal to a training sequence.
    pub duplicate_fraction: f64,
}

impl DnaFigures {
    /// The figures of `ds` against `source`, the k-mer spectra of its reference set
    /// (`reference[k − 1]`, from [`reference_spectra`]) and its `train` set.
    pub fn compute(
        source: &DnaSource,
        ds: &SequenceDataset,
        reference: &[Vec<f64>],
        train: &SequenceDataset,
    ) -> Result<Self> {
        source.check(ds, "sequences")?;
        let classes = source.classes();
        let mut ll_sum = 0.0;
        let mut predicted = Vec::with_capacity(ds.n);
        let mut hits = vec![0usize; classes];
        let mut own = vec![(0usize, 0usize); classes];
        for i in 0..ds.n {
            let x = ds.row(i);
            let ll = source.class_log_likelihoods(x)?;
            ll_sum += source.mixture_log_likelihood(&ll);
            let best = (0..classes).fold(0, |b, c| if ll[c] > ll[b] { c } else { b });
            predicted.push(best as u32);
            let h = source.motif_hits(x);
            for c in 0..classes {
                hits[c] += h[c] as usize;
            }
            if let Some(c) = ds.label(i) {
                own[c as usize].0 += h[c as usize] as usize;
                own[c as usize].1 += 1;
            }
        }
        let kmer = (1..=reference.len())
            .map(|k| Ok((k, jensen_shannon(&kmer_spectrum(ds, k)?, &reference[k - 1]))))
            .collect::<Result<_>>()?;
        let n = ds.n as f64;
        Ok(Self {
            n: ds.n,
            log_likelihood_per_base: ll_sum / (n * ds.len as f64),
            kmer_jsd: kmer,
            motif_hit_rate: hits.iter().map(|&h| h as f64 / n).collect(),
            motif_hit_rate_own: ds.labels().map(|_| {
                own.iter()
                    .map(|&(h, m)| (m > 0).then(|| h as f64 / m as f64))
                    .collect()
            }),
            conditional_accuracy: ds.labels().map(|l| accuracy(&predicted, l)).transpose()?,
            duplicate_fraction: duplicate_fraction(ds, train)?,
        })
    }
}

/// The k-mer spectra of `reference` for k = 1..=min(KMER_MAX, L).
pub fn reference_spectra(reference: &SequenceDataset) -> Result<Vec<Vec<f64>>> {
    (1..=KMER_MAX.min(reference.len))
        .map(|k| kmer_spectrum(reference, k))
        .collect()
}

/// Samples, held-out data and noise, side by side.
#[derive(Clone, Debug, PartialEq)]
pub struct DnaReport {
    /// The generated sequences.
    pub samples: DnaFigures,
    /// As many held-out sequences of the source, with their true classes: the data's own values.
    pub data: DnaFigures,
    /// As many uniformly random sequences with uniformly random labels: the noise values.
    pub noise: DnaFigures,
    /// Size of the reference set of the k-mer spectra.
    pub reference_n: usize,
}

/// `n` sequences of uniformly random bases, with uniformly random labels of `classes` classes.
pub fn uniform_noise(n: usize, len: usize, classes: usize, seed: u64) -> Result<SequenceDataset> {
    if n.checked_mul(len)
        .is_none_or(|t| t > super::dna::MAX_TOKENS)
        || classes == 0
    {
        return Err(crate::Error::Shape(format!(
            "{n} noise sequences of length {len} with {classes} classes"
        )));
    }
    let mut rng = PhiloxStream::new(seed, 0, STREAM_NOISE);
    let tokens = (0..n * len).map(|_| rng.below(4) as u32).collect();
    let labels = (0..n).map(|_| rng.below(classes as u64) as u32).collect();
    SequenceDataset::new(tokens, n, len, 4, Some(super::dna::ALPHABET.into()))?
        .with_labels(Labels::new(labels, Some(classes))?)
}

impl DnaSource {
    /// Evaluates `samples` (labelled or not) against this source; `train` is the training set
    /// duplicates are counted against. See [`DnaReport`] and the module docs.
    pub fn evaluate(
        &self,
        samples: &SequenceDataset,
        train: &SequenceDataset,
    ) -> Result<DnaReport> {
        self.check(samples, "samples")?;
        self.check(train, "training set")?;
        let n = samples.n;
        let reference_n = n.max(MIN_REFERENCE);
        let reference =
            reference_spectra(&self.sample_split(reference_n, EVAL_SEED, Split::Reference)?)?;
        let data = self.sample_split(n, EVAL_SEED, Split::HeldOut)?;
        let noise = uniform_noise(n, self.len(), self.classes(), EVAL_SEED)?;
        let figures = |ds: &SequenceDataset| DnaFigures::compute(self, ds, &reference, train);
        Ok(DnaReport {
            samples: figures(samples)?,
            data: figures(&data)?,
            noise: figures(&noise)?,
            reference_n,
        })
    }
}
