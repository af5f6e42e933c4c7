//! The toy target of the Dirichlet-FM / Fisher-Flow experiments: L independent categoricals
//! over K tokens with probabilities `softmax(U[0,1)^K)` per position.

use super::SequenceDataset;
use crate::error::{Error, Result};
use crate::kernels::rng::PhiloxStream;

/// Parsed `toy:L=4,K=20,seed=0` specification (defaults L=4, K=20, seed=0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ToySpec {
    /// Sequence length L.
    pub len: usize,
    /// Vocabulary size K.
    pub vocab: usize,
    /// Seed of the target's probabilities.
    pub seed: u64,
}

impl Default for ToySpec {
    fn default() -> Self {
        Self {
            len: 4,
            vocab: 20,
            seed: 0,
        }
    }
}

impl ToySpec {
    /// Parse `toy` or `toy:key=value,...` with keys `L`, `K`, `seed` (case-sensitive). Unknown
    /// keys, repeated keys, malformed values and L or K of zero are errors.
    pub fn parse(spec: &str) -> Result<Self> {
        let bad = |m: String| Error::Parse(format!("toy spec {spec:?}: {m}"));
        let rest = match spec.strip_prefix("toy") {
            Some("") => return Ok(Self::default()),
            Some(r) => r
                .strip_prefix(':')
                .ok_or_else(|| bad("expected 'toy:' followed by key=value pairs".into()))?,
            None => return Err(bad("does not start with 'toy'".into())),
        };
        let mut out = Self::default();
        let mut seen: Vec<&str> = Vec::new();
        for item in rest.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| bad(format!("{item:?} is not key=value")))?;
            let (k, v) = (k.trim(), v.trim());
            if seen.contains(&k) {
                return Err(bad(format!("key {k:?} given twice")));
            }
            seen.push(k);
            let num = |what: &str| -> Result<u64> {
                v.parse::<u64>()
                    .map_err(|_| bad(format!("{what}={v:?} is not a non-negative integer")))
            };
            match k {
                "L" => out.len = num("L")? as usize,
                "K" => out.vocab = num("K")? as usize,
                "seed" => out.seed = num("seed")?,
                _ => return Err(bad(format!("unknown key {k:?} (expected L, K, seed)"))),
            }
        }
        if out.len == 0 || out.vocab == 0 {
            return Err(bad("L and K must be positive".into()));
        }
        if out.vocab > super::MAX_VOCAB {
            return Err(bad(format!("K exceeds {}", super::MAX_VOCAB)));
        }
        if out.len.checked_mul(out.vocab).is_none_or(|n| n > 1 << 28) {
            return Err(bad("L × K is too large".into()));
        }
        Ok(out)
    }
}

/// The toy target distribution: `probs[l * K + k]` = P(token k at position l).
#[derive(Clone, Debug, PartialEq)]
pub struct ToyTarget {
    /// Sequence length L.
    pub len: usize,
    /// Vocabulary size K.
    pub vocab: usize,
    /// `L × K` probabilities, each row summing to 1.
    pub probs: Vec<f64>,
}

/// Philox stream id of the target's logits.
const STREAM_LOGITS: u32 = 0x746f_7901;
/// Philox stream id of sampling.
const STREAM_SAMPLES: u32 = 0x746f_7902;

impl ToyTarget {
    /// The target of `spec`: logits `U[0, 1)` drawn from Philox (key = seed), softmax per
    /// position.
    pub fn new(spec: &ToySpec) -> Self {
        let (l, k) = (spec.len, spec.vocab);
        let mut rng = PhiloxStream::new(spec.seed, 0, STREAM_LOGITS);
        let logits: Vec<f64> = (0..l * k).map(|_| rng.next_f64()).collect();
        let mut probs = Vec::with_capacity(l * k);
        for row in logits.chunks(k) {
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = row.iter().map(|v| (v - m).exp()).collect();
            let s: f64 = e.iter().sum();
            probs.extend(e.iter().map(|v| v / s));
        }
        Self {
            len: l,
            vocab: k,
            probs,
        }
    }

    /// Parse a spec and build its target.
    pub fn from_spec(spec: &str) -> Result<Self> {
        Ok(Self::new(&ToySpec::parse(spec)?))
    }

    /// `n` independent sequences (inverse-CDF sampling from a Philox stream seeded by `seed`).
    pub fn sample(&self, n: usize, seed: u64) -> Result<SequenceDataset> {
        if n == 0 {
            return Err(Error::Shape("sampling 0 sequences".into()));
        }
        let mut rng = PhiloxStream::new(seed, 0, STREAM_SAMPLES);
        let mut cdf = self.probs.clone();
        for row in cdf.chunks_mut(self.vocab) {
            let mut acc = 0.0;
            for v in row.iter_mut() {
                acc += *v;
                *v = acc;
            }
        }
        let mut tokens = Vec::with_capacity(n * self.len);
        for _ in 0..n {
            for row in cdf.chunks(self.vocab) {
                let u = rng.next_f64() * row[self.vocab - 1];
                let k = row.partition_point(|&c| c <= u).min(self.vocab - 1);
                tokens.push(k as u32);
            }
        }
        SequenceDataset::new(tokens, n, self.len, self.vocab, None)
    }
}
