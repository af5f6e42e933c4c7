//! A discrete hidden Markov model with sparse transitions: exact log-likelihood by the scaled
//! forward algorithm and ancestral sampling.
//!
//! A sequence `x₀ … x_{L−1}` has probability `Σ_z π(z₀) e(z₀, x₀) Π_t T(z_{t−1}, z_t) e(z_t, x_t)`
//! over hidden paths `z`. The forward pass keeps `α_t(s) = p(z_t = s | x₀..x_t)` normalised at
//! every step and sums the logarithms of the normalisers, so it neither underflows at long
//! lengths nor loses the exactness of the sum (each step is one exact matrix-vector product).

use crate::error::{Error, Result};
use crate::kernels::rng::PhiloxStream;

/// Tolerance on a probability row summing to one.
const ROW_TOLERANCE: f64 = 1e-9;

/// A hidden Markov model over `states` hidden states emitting tokens `0..vocab`.
#[derive(Clone, Debug, PartialEq)]
pub struct Hmm {
    vocab: usize,
    init: Vec<f64>,
    /// The transitions of state s are `edges[offsets[s]..offsets[s + 1]]`.
    offsets: Vec<usize>,
    edges: Vec<(usize, f64)>,
    /// `emit[s · vocab + token]`.
    emit: Vec<f64>,
    /// `by_token[token · states + s]`: the emissions regrouped for the forward pass.
    by_token: Vec<f64>,
}

fn check_row(what: &str, row: impl Iterator<Item = f64>) -> Result<()> {
    let mut sum = 0.0;
    for p in row {
        if !(p.is_finite() && p >= 0.0) {
            return Err(Error::InvalidArgument(format!(
                "{what}: probability {p} is not in [0, 1]"
            )));
        }
        sum += p;
    }
    if (sum - 1.0).abs() > ROW_TOLERANCE {
        return Err(Error::InvalidArgument(format!(
            "{what}: probabilities sum to {sum}, not 1"
        )));
    }
    Ok(())
}

impl Hmm {
    /// A model from its initial distribution `init` (one entry per state), sparse transition
    /// rows `trans[s] = [(next state, probability), …]` and emissions `emit[s · vocab + token]`.
    /// Every row must be a probability distribution (within 1e-9) and every target a state.
    pub fn new(
        vocab: usize,
        init: Vec<f64>,
        trans: Vec<Vec<(usize, f64)>>,
        emit: Vec<f64>,
    ) -> Result<Self> {
        let states = init.len();
        if states == 0 || vocab == 0 {
            return Err(Error::Shape(format!(
                "HMM with {states} states over {vocab} tokens: both must be positive"
            )));
        }
        if trans.len() != states || states.checked_mul(vocab) != Some(emit.len()) {
            return Err(Error::Shape(format!(
                "HMM with {states} states over {vocab} tokens has {} transition rows and {} emissions",
                trans.len(),
                emit.len()
            )));
        }
        check_row("initial distribution", init.iter().copied())?;
        for (s, row) in trans.iter().enumerate() {
            if let Some(&(t, _)) = row.iter().find(|&&(t, _)| t >= states) {
                return Err(Error::Shape(format!(
                    "transition from state {s} to state {t}, but there are {states} states"
                )));
            }
            check_row(
                &format!("transitions of state {s}"),
                row.iter().map(|e| e.1),
            )?;
            check_row(
                &format!("emissions of state {s}"),
                emit[s * vocab..(s + 1) * vocab].iter().copied(),
            )?;
        }
        let mut offsets = vec![0];
        let mut edges = Vec::new();
        for row in trans {
            edges.extend(row);
            offsets.push(edges.len());
        }
        let by_token = (0..vocab * states)
            .map(|i| emit[(i % states) * vocab + i / states])
            .collect();
        Ok(Self {
            vocab,
            init,
            offsets,
            edges,
            emit,
            by_token,
        })
    }

    /// Number of hidden states.
    pub fn states(&self) -> usize {
        self.init.len()
    }

    /// Number of tokens.
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// `p(z₀ = s)` for every state.
    pub fn init(&self) -> &[f64] {
        &self.init
    }

    /// The transitions out of state `s`: `(next state, probability)` (absent pairs are 0).
    pub fn transitions(&self, s: usize) -> &[(usize, f64)] {
        &self.edges[self.offsets[s]..self.offsets[s + 1]]
    }

    /// The emission distribution of state `s` over the tokens.
    pub fn emission(&self, s: usize) -> &[f64] {
        &self.emit[s * self.vocab..(s + 1) * self.vocab]
    }

    /// `ln p(x)` by the scaled forward algorithm (`−∞` for an impossible sequence, 0 for an
    /// empty one). Errors on a token outside `0..vocab`.
    pub fn log_likelihood(&self, x: &[u32]) -> Result<f64> {
        if let Some(&t) = x.iter().find(|&&t| t as usize >= self.vocab) {
            return Err(Error::Shape(format!(
                "token {t} is outside the HMM's vocabulary 0..{}",
                self.vocab
            )));
        }
        let Some((&first, rest)) = x.split_first() else {
            return Ok(0.0);
        };
        let states = self.states();
        let mut alpha: Vec<f64> = (0..states)
            .map(|s| self.init[s] * self.emit[s * self.vocab + first as usize])
            .collect();
        let mut next = vec![0.0; states];
        let mut log = LogProduct::default();
        let mut scale = normalise(&mut alpha);
        for &tok in rest {
            if scale <= 0.0 {
                return Ok(f64::NEG_INFINITY);
            }
            log.mul(scale);
            next.fill(0.0);
            for (s, &a) in alpha.iter().enumerate() {
                if a != 0.0 {
                    for &(t, p) in self.transitions(s) {
                        next[t] += a * p;
                    }
                }
            }
            let e = &self.by_token[tok as usize * states..(tok as usize + 1) * states];
            next.iter_mut().zip(e).for_each(|(v, &p)| *v *= p);
            std::mem::swap(&mut alpha, &mut next);
            scale = normalise(&mut alpha);
        }
        Ok(if scale > 0.0 {
            log.mul(scale);
            log.ln()
        } else {
            f64::NEG_INFINITY
        })
    }

    /// Appends `len` tokens drawn from the model (ancestral sampling with inverse CDFs) to `out`.
    pub fn sample_into(&self, rng: &mut PhiloxStream, len: usize, out: &mut Vec<u32>) {
        if len == 0 {
            return;
        }
        let mut s = draw(self.init.iter().copied().enumerate(), rng.next_f64());
        for i in 0..len {
            out.push(draw(self.emission(s).iter().copied().enumerate(), rng.next_f64()) as u32);
            if i + 1 < len {
                s = draw(self.transitions(s).iter().copied(), rng.next_f64());
            }
        }
    }
}

/// The logarithm of a product of factors in `(0, 1]`, taken once per run of factors whose
/// product stays far from underflow rather than once per factor.
#[derive(Default)]
struct LogProduct {
    sum: f64,
    run: Option<f64>,
}

impl LogProduct {
    fn mul(&mut self, f: f64) {
        let run = self.run.unwrap_or(1.0) * f;
        if run < 1e-200 {
            self.sum += self.run.unwrap_or(1.0).ln() + f.ln();
            self.run = None;
        } else {
            self.run = Some(run);
        }
    }

    fn ln(&self) -> f64 {
        self.sum + self.run.map_or(0.0, f64::ln)
    }
}

/// Divides `v` by its sum (when positive) and returns the sum.
fn normalise(v: &mut [f64]) -> f64 {
    let sum: f64 = v.iter().sum();
    if sum > 0.0 {
        let inv = 1.0 / sum;
        v.iter_mut().for_each(|a| *a *= inv);
    }
    sum
}

/// The first outcome whose cumulative probability exceeds `u ∈ [0, 1)`; rounding past the end
/// gives the last outcome of positive probability.
fn draw(outcomes: impl Iterator<Item = (usize, f64)>, u: f64) -> usize {
    let mut acc = 0.0;
    let mut last = 0;
    for (o, p) in outcomes {
        if p <= 0.0 {
            continue;
        }
        acc += p;
        last = o;
        if u < acc {
            return o;
        }
    }
    last
}
