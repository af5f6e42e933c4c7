//! A synthetic DNA source with exact likelihood: a class-conditional hidden Markov model over
//! ACGT (`dna:L=128,classes=3,seed=0`).
//!
//! Every class has its own HMM ([`Hmm`]) with two background regimes and its own planted motifs:
//! - **GC-rich** and **AT-rich** regimes emit `(A, C, G, T)` with probabilities
//!   `(0.15, 0.35, 0.35, 0.15)` and `(0.35, 0.15, 0.15, 0.35)`. A regime switches to the other
//!   with probability [`REGIME_SWITCH`] per base (mean run 50 bases) and starts a motif with
//!   probability [`MOTIF_RATE`], split evenly over the class's motifs.
//! - A **motif** is a position weight matrix of `width` columns, planted as a chain of `width`
//!   HMM states that emit its columns in order; after the last column the chain returns to
//!   either regime with probability ½. Motif occurrences are thus part of the hidden path and
//!   the likelihood stays exact.
//! - Sequences start in either regime with probability ½; the class is uniform over `classes`.
//!
//! The motifs are drawn from the seed (Philox): a consensus base per column, uniform, with
//! probability `0.70 + 0.25 u` and the rest spread over the other three bases; any two motifs,
//! of the same class or not, differ in at least half of their consensus positions. Sampling is
//! reproducible from its own seed, and sequence i of a sample depends only on (seed, i, split),
//! so a smaller sample is a prefix of a larger one.
//!
//! `ln p(x | c)` is computed by the forward algorithm for each class and `ln p(x)` is the
//! mixture `ln Σ_c p(x | c) / C`; the class posterior `p(c | x)` follows.

use std::fmt;

use super::hmm::Hmm;
use super::{Labels, SequenceDataset};
use crate::error::{Error, Result};
use crate::kernels::rng::PhiloxStream;

/// The token characters: token id = position in this string.
pub const ALPHABET: &str = "ACGT";
/// Sequences in the training set that `train --data dna:…` draws (split [`Split::Train`]).
pub const DEFAULT_TRAIN_SEQUENCES: usize = 100_000;
/// Probability per base of switching between the GC-rich and AT-rich regimes.
pub const REGIME_SWITCH: f64 = 0.02;
/// Probability per background base of starting a motif.
pub const MOTIF_RATE: f64 = 0.04;
/// A window is a motif hit when its log-odds score against uniform bases is at least this
/// fraction of the motif's consensus score.
pub const HIT_FRACTION: f64 = 0.6;
/// The most tokens one sample may hold.
pub const MAX_TOKENS: usize = 1 << 30;

const GC_RICH: [f64; 4] = [0.15, 0.35, 0.35, 0.15];
const AT_RICH: [f64; 4] = [0.35, 0.15, 0.15, 0.35];
const STREAM_MOTIFS: u32 = 0x646e_6101;
/// Redraws allowed per motif before the distinctness requirement is declared unsatisfiable.
const MOTIF_ATTEMPTS: usize = 10_000;

/// A key of the spec with its allowed range.
struct Key {
    name: &'static str,
    min: u64,
    max: u64,
}

const KEYS: [Key; 5] = [
    Key {
        name: "L",
        min: 1,
        max: 1 << 20,
    },
    Key {
        name: "classes",
        min: 1,
        max: 256,
    },
    Key {
        name: "motifs",
        min: 1,
        max: 16,
    },
    Key {
        name: "width",
        min: 1,
        max: 32,
    },
    Key {
        name: "seed",
        min: 0,
        max: u64::MAX,
    },
];

/// Parsed `dna:L=128,classes=3,motifs=2,width=8,seed=0` specification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnaSpec {
    /// Sequence length L (`L`, default 128, at most 2²⁰).
    pub len: usize,
    /// Number of classes (`classes`, default 3, at most 256).
    pub classes: usize,
    /// Motifs per class (`motifs`, default 2, at most 16).
    pub motifs: usize,
    /// Columns of every motif (`width`, default 8, at most 32).
    pub width: usize,
    /// Seed of the motifs (`seed`, default 0); sampling has its own seed.
    pub seed: u64,
}

impl Default for DnaSpec {
    fn default() -> Self {
        Self {
            len: 128,
            classes: 3,
            motifs: 2,
            width: 8,
            seed: 0,
        }
    }
}

impl fmt::Display for DnaSpec {
    /// The canonical spec, every key given.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dna:L={},classes={},motifs={},width={},seed={}",
            self.len, self.classes, self.motifs, self.width, self.seed
        )
    }
}

impl DnaSpec {
    /// Whether `s` names this source (`dna` or `dna:…`), as opposed to a file.
    pub fn is_spec(s: &str) -> bool {
        s == "dna" || s.starts_with("dna:")
    }

    /// Parse `dna` or `dna:key=value,…` with the keys `L`, `classes`, `motifs`, `width`, `seed`
    /// (case-sensitive; defaults on [`DnaSpec`]'s fields). Unknown or repeated keys, values that
    /// are not integers and values out of range are errors naming the key.
    pub fn parse(spec: &str) -> Result<Self> {
        let bad = |m: String| Error::Parse(format!("dna spec {spec:?}: {m}"));
        let body = match spec.strip_prefix("dna") {
            Some("") => "",
            Some(rest) => rest
                .strip_prefix(':')
                .ok_or_else(|| bad("expected 'dna:' followed by key=value pairs".into()))?,
            None => return Err(bad("does not start with 'dna'".into())),
        };
        let mut values: [Option<u64>; KEYS.len()] = [None; KEYS.len()];
        for item in body.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Some((name, value)) = item.split_once('=') else {
                return Err(bad(format!("{item:?} is not key=value")));
            };
            let (name, value) = (name.trim(), value.trim());
            let Some(i) = KEYS.iter().position(|k| k.name == name) else {
                let names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
                return Err(bad(format!(
                    "unknown key {name:?} (the keys are {})",
                    names.join(", ")
                )));
            };
            let key = &KEYS[i];
            if values[i].is_some() {
                return Err(bad(format!("key {name:?} given twice")));
            }
            let v: u64 = value
                .parse()
                .map_err(|_| bad(format!("{name}={value:?} is not a non-negative integer")))?;
            if v < key.min || v > key.max {
                return Err(bad(format!(
                    "{name}={v} is outside {}..={}",
                    key.min, key.max
                )));
            }
            values[i] = Some(v);
        }
        let d = Self::default();
        let get = |i: usize, default: usize| values[i].map_or(default, |v| v as usize);
        Ok(Self {
            len: get(0, d.len),
            classes: get(1, d.classes),
            motifs: get(2, d.motifs),
            width: get(3, d.width),
            seed: values[4].unwrap_or(d.seed),
        })
    }
}

/// A planted motif: a position weight matrix over `(A, C, G, T)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Motif {
    class: usize,
    pwm: Vec<[f64; 4]>,
    /// `ln(4 · pwm)`: the log-odds against uniform bases.
    log_odds: Vec<[f64; 4]>,
    threshold: f64,
}

impl Motif {
    /// The motif of `class` with columns `pwm`.
    pub fn new(class: usize, pwm: Vec<[f64; 4]>) -> Self {
        let log_odds: Vec<[f64; 4]> = pwm.iter().map(|col| col.map(|p| (4.0 * p).ln())).collect();
        let max: f64 = log_odds.iter().map(|col| col[argmax(col)]).sum();
        Self {
            class,
            pwm,
            log_odds,
            threshold: HIT_FRACTION * max,
        }
    }

    /// The class whose HMM plants it.
    pub fn class(&self) -> usize {
        self.class
    }

    /// One distribution over the four bases per column.
    pub fn pwm(&self) -> &[[f64; 4]] {
        &self.pwm
    }

    /// The most likely base of every column, as characters.
    pub fn consensus(&self) -> String {
        self.pwm
            .iter()
            .map(|col| ALPHABET.as_bytes()[argmax(col)] as char)
            .collect()
    }

    /// The log-odds score `Σ_w ln(4 · pwm[w][x_w])` of a window of `width` tokens against
    /// uniform bases (tokens must be `< 4`).
    pub fn score(&self, window: &[u32]) -> f64 {
        self.log_odds
            .iter()
            .zip(window)
            .map(|(col, &t)| col[t as usize])
            .sum()
    }

    /// The consensus's score, the largest any window reaches.
    pub fn max_score(&self) -> f64 {
        self.threshold / HIT_FRACTION
    }

    /// Whether some window of `x` scores at least [`HIT_FRACTION`] of
    /// [`max_score`](Self::max_score).
    pub fn occurs_in(&self, x: &[u32]) -> bool {
        x.windows(self.pwm.len())
            .any(|w| self.score(w) >= self.threshold)
    }
}

fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// `ln Σ exp(v)`, exact for `−∞` entries.
fn log_sum_exp(v: &[f64]) -> f64 {
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + v.iter().map(|&x| (x - m).exp()).sum::<f64>().ln()
}

/// Independent sample streams of a source: sets drawn with the same seed from different splits
/// share no random numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// The training set (`train --data dna:…` and `fisherflow data` draw from it).
    Train,
    /// Held-out data (evaluation's comparison set).
    HeldOut,
    /// A reference set (what k-mer spectra are compared against in evaluation).
    Reference,
}

impl Split {
    fn stream(self) -> u32 {
        match self {
            Split::Train => 0x646e_6111,
            Split::HeldOut => 0x646e_6112,
            Split::Reference => 0x646e_6113,
        }
    }
}

/// The source of a [`DnaSpec`]: per-class HMMs and their motifs.
#[derive(Clone, Debug, PartialEq)]
pub struct DnaSource {
    spec: DnaSpec,
    motifs: Vec<Motif>,
    hmms: Vec<Hmm>,
}

/// Draws `count` motifs whose consensuses pairwise differ in at least half their positions.
fn draw_motifs(spec: &DnaSpec) -> Result<Vec<Motif>> {
    let (w, count) = (spec.width, spec.classes * spec.motifs);
    let min_distance = w.div_ceil(2);
    let mut rng = PhiloxStream::new(spec.seed, 0, STREAM_MOTIFS);
    let mut consensuses: Vec<Vec<usize>> = Vec::with_capacity(count);
    let mut motifs = Vec::with_capacity(count);
    for m in 0..count {
        let mut attempts = 0;
        let consensus = loop {
            let c: Vec<usize> = (0..w).map(|_| rng.below(4) as usize).collect();
            let distinct = consensuses
                .iter()
                .all(|o| o.iter().zip(&c).filter(|(a, b)| a != b).count() >= min_distance);
            if distinct {
                break c;
            }
            attempts += 1;
            if attempts == MOTIF_ATTEMPTS {
                return Err(Error::InvalidArgument(format!(
                    "{spec}: cannot draw {count} motifs of width {w} that differ in at least \
                     {min_distance} positions; use a larger width, fewer motifs or fewer classes"
                )));
            }
        };
        let pwm = consensus
            .iter()
            .map(|&b| {
                let top = 0.80 + 0.15 * rng.next_f64();
                let mut col = [0.0; 4];
                let weights: Vec<f64> = (0..3).map(|_| 0.2 + rng.next_f64()).collect();
                let total: f64 = weights.iter().sum();
                let others = (0..4).filter(|&o| o != b);
                for (o, wt) in others.zip(&weights) {
                    col[o] = (1.0 - top) * wt / total;
                }
                col[b] = top;
                col
            })
            .collect();
        consensuses.push(consensus);
        motifs.push(Motif::new(m / spec.motifs, pwm));
    }
    Ok(motifs)
}

/// The HMM of one class: states 0 (GC-rich), 1 (AT-rich), then `width` states per motif.
fn class_hmm(motifs: &[Motif]) -> Result<Hmm> {
    let width = motifs[0].pwm().len();
    let states = 2 + motifs.len() * width;
    let mut init = vec![0.0; states];
    init[..2].fill(0.5);
    let mut trans = Vec::with_capacity(states);
    let mut emit = Vec::with_capacity(states * 4);
    for (regime, emission) in [GC_RICH, AT_RICH].iter().enumerate() {
        let mut row = vec![
            (regime, 1.0 - REGIME_SWITCH - MOTIF_RATE),
            (1 - regime, REGIME_SWITCH),
        ];
        let start = MOTIF_RATE / motifs.len() as f64;
        row.extend((0..motifs.len()).map(|j| (2 + j * width, start)));
        trans.push(row);
        emit.extend_from_slice(emission);
    }
    for (j, m) in motifs.iter().enumerate() {
        for (col, probs) in m.pwm().iter().enumerate() {
            let s = 2 + j * width + col;
            trans.push(if col + 1 < width {
                vec![(s + 1, 1.0)]
            } else {
                vec![(0, 0.5), (1, 0.5)]
            });
            emit.extend_from_slice(probs);
        }
    }
    Hmm::new(4, init, trans, emit)
}

impl DnaSource {
    /// The source of `spec` (deterministic in `spec.seed`).
    pub fn new(spec: &DnaSpec) -> Result<Self> {
        let motifs = draw_motifs(spec)?;
        let hmms = motifs
            .chunks(spec.motifs)
            .map(class_hmm)
            .collect::<Result<_>>()?;
        Ok(Self {
            spec: *spec,
            motifs,
            hmms,
        })
    }

    /// Parse a spec and build its source.
    pub fn from_spec(spec: &str) -> Result<Self> {
        Self::new(&DnaSpec::parse(spec)?)
    }

    /// The spec.
    pub fn spec(&self) -> &DnaSpec {
        &self.spec
    }

    /// Sequence length L.
    pub fn len(&self) -> usize {
        self.spec.len
    }

    /// Always false (L ≥ 1).
    pub fn is_empty(&self) -> bool {
        self.spec.len == 0
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.spec.classes
    }

    /// The HMM of class `c` (panics when `c >= classes`).
    pub fn hmm(&self, c: usize) -> &Hmm {
        &self.hmms[c]
    }

    /// The motifs of class `c` (panics when `c >= classes`).
    pub fn motifs(&self, c: usize) -> &[Motif] {
        &self.motifs[c * self.spec.motifs..(c + 1) * self.spec.motifs]
    }

    /// `n` labelled sequences of `split` (class uniform, then the class's HMM), reproducible
    /// from `seed`; sequence i depends only on `(seed, i, split)`. Alphabet `ACGT`.
    pub fn sample_split(&self, n: usize, seed: u64, split: Split) -> Result<SequenceDataset> {
        let l = self.spec.len;
        if n == 0 || n.checked_mul(l).is_none_or(|t| t > MAX_TOKENS) {
            return Err(Error::Shape(format!(
                "{n} sequences of length {l}: need 1 to {MAX_TOKENS} tokens"
            )));
        }
        let mut tokens = Vec::with_capacity(n * l);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let mut rng = PhiloxStream::new(seed, i as u64, split.stream());
            let c = rng.below(self.spec.classes as u64) as usize;
            labels.push(c as u32);
            self.hmms[c].sample_into(&mut rng, l, &mut tokens);
        }
        SequenceDataset::new(tokens, n, l, 4, Some(ALPHABET.into()))?
            .with_labels(Labels::new(labels, Some(self.spec.classes))?)
    }

    /// `n` labelled sequences of the training split (see [`sample_split`](Self::sample_split)).
    pub fn sample(&self, n: usize, seed: u64) -> Result<SequenceDataset> {
        self.sample_split(n, seed, Split::Train)
    }

    /// `ln p(x | c)` for every class c (tokens must be `< 4`; any length).
    pub fn class_log_likelihoods(&self, x: &[u32]) -> Result<Vec<f64>> {
        self.hmms.iter().map(|h| h.log_likelihood(x)).collect()
    }

    /// `ln p(x | c)`.
    pub fn log_likelihood_given(&self, x: &[u32], c: usize) -> Result<f64> {
        let h = self.hmms.get(c).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "class {c} of a source with {} classes",
                self.spec.classes
            ))
        })?;
        h.log_likelihood(x)
    }

    /// `ln p(x) = ln Σ_c p(x | c) / C`.
    pub fn log_likelihood(&self, x: &[u32]) -> Result<f64> {
        Ok(self.mixture_log_likelihood(&self.class_log_likelihoods(x)?))
    }

    /// `ln p(x)` from the per-class values of [`class_log_likelihoods`](Self::class_log_likelihoods).
    pub fn mixture_log_likelihood(&self, class_ll: &[f64]) -> f64 {
        log_sum_exp(class_ll) - (self.spec.classes as f64).ln()
    }

    /// The class posterior `p(c | x)` under the uniform class prior.
    pub fn class_posterior(&self, x: &[u32]) -> Result<Vec<f64>> {
        let ll = self.class_log_likelihoods(x)?;
        let z = log_sum_exp(&ll);
        Ok(ll.iter().map(|&v| (v - z).exp()).collect())
    }

    /// The most probable class of `x` (the lowest on a tie).
    pub fn classify(&self, x: &[u32]) -> Result<u32> {
        Ok(argmax(&self.class_log_likelihoods(x)?) as u32)
    }

    /// For every class c, whether `x` holds a hit of one of c's motifs ([`Motif::occurs_in`]).
    pub fn motif_hits(&self, x: &[u32]) -> Vec<bool> {
        (0..self.spec.classes)
            .map(|c| self.motifs(c).iter().any(|m| m.occurs_in(x)))
            .collect()
    }

    /// Checks that `ds` holds sequences of this source: length L over the four bases.
    pub fn check(&self, ds: &SequenceDataset, what: &str) -> Result<()> {
        if ds.len != self.spec.len || ds.vocab != 4 {
            return Err(Error::Shape(format!(
                "{what}: sequences of length {} over {} tokens, but {} has length {} over ACGT",
                ds.len, ds.vocab, self.spec, self.spec.len
            )));
        }
        let c = self.spec.classes;
        if let Some(i) = ds
            .labels()
            .and_then(|l| l.iter().position(|&v| v as usize >= c))
        {
            return Err(Error::Shape(format!(
                "{what}: sequence {i} has class {}, but {} has classes 0..{c}",
                ds.labels().map_or(0, |l| l[i]),
                self.spec
            )));
        }
        Ok(())
    }

    /// Mean over the sequences of `ln p(x) / L`, in nats per base.
    pub fn mean_log_likelihood_per_base(&self, ds: &SequenceDataset) -> Result<f64> {
        self.check(ds, "data")?;
        let mut sum = 0.0;
        for i in 0..ds.n {
            sum += self.log_likelihood(ds.row(i))?;
        }
        Ok(sum / (ds.n * ds.len) as f64)
    }
}
