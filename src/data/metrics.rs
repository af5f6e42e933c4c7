//! Distribution metrics between samples, data and known targets.
//!
//! Conventions:
//! - KL terms use `0 · log(0/q) = 0`, so `KL(empirical ‖ true)` is finite whenever the true
//!   distribution is positive wherever a sample landed (the toy target is positive everywhere);
//!   a sample outside the support gives `+∞`.
//! - Comparisons of two sample sets ([`marginal_kl`], [`joint_divergence`]) smooth both
//!   distributions with `p̃ = (p + ε)/(1 + S ε)` over the S states (default
//!   [`DEFAULT_SMOOTHING`]) so a state seen in only one set costs a large but finite amount.
//!   Total variation is computed without smoothing.
//! - Jensen–Shannon divergences ([`jensen_shannon`], [`kmer_jsd`]) need no smoothing: they are
//!   finite, in nats, between 0 and ln 2.

use std::collections::HashMap;

use super::SequenceDataset;
use crate::error::{Error, Result};

/// Default smoothing ε of [`marginal_kl`] and [`joint_divergence`].
pub const DEFAULT_SMOOTHING: f64 = 1e-6;

/// Full sequences are compared jointly when `K^L` is at most this; otherwise over bigrams.
pub const MAX_JOINT_STATES: u64 = 1_000_000;

/// `KL(p ‖ q) = Σ p log(p/q)` with `0 log 0 = 0` (`+∞` where `p > 0 = q`).
pub fn kl(p: &[f64], q: &[f64]) -> f64 {
    p.iter()
        .zip(q)
        .map(|(&a, &b)| {
            if a <= 0.0 {
                0.0
            } else if b <= 0.0 {
                f64::INFINITY
            } else {
                a * (a / b).ln()
            }
        })
        .sum()
}

/// Total variation `½ Σ |p − q|`.
pub fn tv(p: &[f64], q: &[f64]) -> f64 {
    0.5 * p.iter().zip(q).map(|(a, b)| (a - b).abs()).sum::<f64>()
}

/// Empirical per-position marginals, `L × K` (each row sums to 1).
pub fn marginals(ds: &SequenceDataset) -> Vec<f64> {
    let (l, k) = (ds.len, ds.vocab);
    let mut m = vec![0.0; l * k];
    for row in ds.tokens.chunks(l) {
        for (p, &t) in row.iter().enumerate() {
            m[p * k + t as usize] += 1.0;
        }
    }
    let inv = 1.0 / ds.n as f64;
    m.iter_mut().for_each(|v| *v *= inv);
    m
}

/// Per-position `KL(empirical ‖ true)` averaged over positions; `probs` is `L × K`.
pub fn kl_to_target(samples: &SequenceDataset, probs: &[f64]) -> Result<f64> {
    let (l, k) = (samples.len, samples.vocab);
    if probs.len() != l * k {
        return Err(Error::Shape(format!(
            "target has {} probabilities; samples need L × K = {l} × {k}",
            probs.len()
        )));
    }
    let m = marginals(samples);
    Ok((0..l)
        .map(|p| kl(&m[p * k..(p + 1) * k], &probs[p * k..(p + 1) * k]))
        .sum::<f64>()
        / l as f64)
}

fn smooth(p: f64, eps: f64, states: f64) -> f64 {
    (p + eps) / (1.0 + states * eps)
}

fn check_pair(a: &SequenceDataset, b: &SequenceDataset) -> Result<()> {
    if a.len != b.len || a.vocab != b.vocab {
        return Err(Error::Shape(format!(
            "comparing sequences of L={}, K={} with L={}, K={}",
            a.len, a.vocab, b.len, b.vocab
        )));
    }
    Ok(())
}

/// Per-position `KL(sample marginals ‖ data marginals)` averaged over positions, both smoothed
/// with `eps` (see the module docs).
pub fn marginal_kl(samples: &SequenceDataset, data: &SequenceDataset, eps: f64) -> Result<f64> {
    check_pair(samples, data)?;
    let (l, k) = (samples.len, samples.vocab);
    let (ms, md) = (marginals(samples), marginals(data));
    let s: Vec<f64> = ms.iter().map(|&p| smooth(p, eps, k as f64)).collect();
    let d: Vec<f64> = md.iter().map(|&p| smooth(p, eps, k as f64)).collect();
    Ok((0..l)
        .map(|p| kl(&s[p * k..(p + 1) * k], &d[p * k..(p + 1) * k]))
        .sum::<f64>()
        / l as f64)
}

/// Over which states [`joint_divergence`] compared the distributions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JointOver {
    /// Whole sequences (`K^L` states).
    Sequences,
    /// Adjacent-position bigrams (`K²` states), averaged over the `L − 1` pairs (L = 1: unigrams).
    Bigrams,
}

/// KL and total variation between the distributions of two sample sets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JointDivergence {
    /// `KL(samples ‖ data)`, smoothed.
    pub kl: f64,
    /// Total variation in `[0, 1]`, unsmoothed.
    pub tv: f64,
    /// The state space used.
    pub over: JointOver,
}

fn histogram(keys: impl Iterator<Item = u64>, n: usize) -> HashMap<u64, f64> {
    let mut h: HashMap<u64, f64> = HashMap::new();
    for key in keys {
        *h.entry(key).or_insert(0.0) += 1.0;
    }
    let inv = 1.0 / n as f64;
    h.values_mut().for_each(|v| *v *= inv);
    h
}

fn divergence(p: &HashMap<u64, f64>, q: &HashMap<u64, f64>, eps: f64, states: f64) -> (f64, f64) {
    let (mut kl_sum, mut tv_sum) = (0.0, 0.0);
    for (key, &a) in p {
        let b = q.get(key).copied().unwrap_or(0.0);
        let (sa, sb) = (smooth(a, eps, states), smooth(b, eps, states));
        kl_sum += sa * (sa / sb).ln();
        tv_sum += (a - b).abs();
    }
    for (key, &b) in q {
        if !p.contains_key(key) {
            let (sa, sb) = (smooth(0.0, eps, states), smooth(b, eps, states));
            if sa > 0.0 {
                kl_sum += sa * (sa / sb).ln();
            }
            tv_sum += b;
        }
    }
    // States seen in neither set have equal smoothed mass and contribute nothing.
    (kl_sum.max(0.0), (0.5 * tv_sum).clamp(0.0, 1.0))
}

/// Joint KL(samples ‖ data) (smoothed with `eps`) and TV over whole sequences when
/// `K^L <= MAX_JOINT_STATES`, else averaged over adjacent-position bigrams.
pub fn joint_divergence(
    samples: &SequenceDataset,
    data: &SequenceDataset,
    eps: f64,
) -> Result<JointDivergence> {
    check_pair(samples, data)?;
    let (l, k) = (samples.len, samples.vocab as u64);
    let states = (0..l).try_fold(1u64, |a, _| {
        a.checked_mul(k).filter(|&s| s <= MAX_JOINT_STATES)
    });
    if let Some(states) = states {
        let key = |row: &[u32]| row.iter().fold(0u64, |a, &t| a * k + t as u64);
        let p = histogram(samples.tokens.chunks(l).map(key), samples.n);
        let q = histogram(data.tokens.chunks(l).map(key), data.n);
        let (kl, tv) = divergence(&p, &q, eps, states as f64);
        return Ok(JointDivergence {
            kl,
            tv,
            over: JointOver::Sequences,
        });
    }
    let pairs: Vec<(usize, usize)> = if l == 1 {
        vec![(0, 0)]
    } else {
        (0..l - 1).map(|i| (i, i + 1)).collect()
    };
    let states = (k as f64) * (k as f64);
    let (mut kl_sum, mut tv_sum) = (0.0, 0.0);
    for &(i, j) in &pairs {
        let key = |row: &[u32]| row[i] as u64 * k + row[j] as u64;
        let p = histogram(samples.tokens.chunks(l).map(key), samples.n);
        let q = histogram(data.tokens.chunks(l).map(key), data.n);
        let (a, b) = divergence(&p, &q, eps, states);
        kl_sum += a;
        tv_sum += b;
    }
    let m = pairs.len() as f64;
    Ok(JointDivergence {
        kl: kl_sum / m,
        tv: tv_sum / m,
        over: JointOver::Bigrams,
    })
}

/// `JS(p, q) = ½ KL(p ‖ m) + ½ KL(q ‖ m)` with `m = (p + q)/2`, in nats (`0 ≤ JS ≤ ln 2`).
pub fn jensen_shannon(p: &[f64], q: &[f64]) -> f64 {
    let half = |a: f64, b: f64| {
        let m = 0.5 * (a + b);
        if a > 0.0 {
            0.5 * a * (a / m).ln()
        } else {
            0.0
        }
    };
    p.iter()
        .zip(q)
        .map(|(&a, &b)| half(a, b) + half(b, a))
        .sum::<f64>()
        .clamp(0.0, std::f64::consts::LN_2)
}

/// The k-mer spectrum of a dataset: the frequency of every word of `k` tokens over all windows
/// of all sequences, indexed by the word read as a base-K number (first token most
/// significant). Errors unless `1 <= k <= L` and `K^k <= MAX_JOINT_STATES`.
pub fn kmer_spectrum(ds: &SequenceDataset, k: usize) -> Result<Vec<f64>> {
    let (l, vocab) = (ds.len, ds.vocab as u64);
    let states = (0..k).try_fold(1u64, |a, _| {
        a.checked_mul(vocab).filter(|&s| s <= MAX_JOINT_STATES)
    });
    let states = match states {
        Some(s) if (1..=l).contains(&k) => s as usize,
        _ => {
            return Err(Error::Shape(format!(
                "{k}-mers of sequences of length {l} over {vocab} tokens (need 1 <= k <= L and \
                 K^k <= {MAX_JOINT_STATES})"
            )))
        }
    };
    let mut counts = vec![0.0; states];
    for row in ds.tokens.chunks(l) {
        let mut word = 0usize;
        for (i, &t) in row.iter().enumerate() {
            word = (word * vocab as usize + t as usize) % states;
            if i + 1 >= k {
                counts[word] += 1.0;
            }
        }
    }
    let inv = 1.0 / (ds.n * (l + 1 - k)) as f64;
    counts.iter_mut().for_each(|v| *v *= inv);
    Ok(counts)
}

/// Jensen–Shannon divergence (nats) between the k-mer spectra of two datasets.
pub fn kmer_jsd(a: &SequenceDataset, b: &SequenceDataset, k: usize) -> Result<f64> {
    if a.vocab != b.vocab {
        return Err(Error::Shape(format!(
            "comparing k-mers over {} and {} tokens",
            a.vocab, b.vocab
        )));
    }
    Ok(jensen_shannon(&kmer_spectrum(a, k)?, &kmer_spectrum(b, k)?))
}

/// The fraction of the sequences of `samples` that equal some sequence of `train`.
pub fn duplicate_fraction(samples: &SequenceDataset, train: &SequenceDataset) -> Result<f64> {
    check_pair(samples, train)?;
    let seen: std::collections::HashSet<&[u32]> = train.tokens.chunks(train.len).collect();
    let dup = samples
        .tokens
        .chunks(samples.len)
        .filter(|row| seen.contains(row))
        .count();
    Ok(dup as f64 / samples.n as f64)
}

/// The fraction of positions where `predicted` equals `labels` (equal lengths, not empty).
pub fn accuracy(predicted: &[u32], labels: &[u32]) -> Result<f64> {
    if predicted.len() != labels.len() || labels.is_empty() {
        return Err(Error::Shape(format!(
            "{} predictions for {} labels",
            predicted.len(),
            labels.len()
        )));
    }
    let hits = predicted.iter().zip(labels).filter(|(a, b)| a == b).count();
    Ok(hits as f64 / labels.len() as f64)
}
