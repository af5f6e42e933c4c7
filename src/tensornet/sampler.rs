//! Perfect sampling and sequential log-probabilities on the CPU (f64): the reference for the
//! WGSL kernel, drawing the same Philox uniforms.

use super::rng::uniform_at;
use super::Mps;
use crate::error::{Error, Result};

/// Right environments folded into the site tensors: `M_k[s][l] = Σ_r A_k[l, s, r] R_k[r]`,
/// each `R_k` rescaled to max 1, and `log Z`.
///
/// With per-site state factors `f_k[s]` ([`Environments::scaled`]) the environments are those
/// of `W(x) Π_k f_k[x_k]` without building that MPS: the one-shot denoiser `P(x0 | x_T)` of
/// the flip channel is `P0` times such factors.
#[derive(Clone, Debug, Default)]
pub struct Environments {
    /// Per site, `d × χ_{k-1}` row-major (`M_k[s]` is row `s`).
    pub m: Vec<Vec<f64>>,
    /// `log Z` of the MPS (times the factors, when scaled).
    pub log_z: f64,
    /// Per-site state factors `[N · d]`, empty for none.
    factors: Vec<f64>,
}

impl Environments {
    /// Contract the right environments of `mps` (right to left, rescaled).
    pub fn new(mps: &Mps) -> Result<Self> {
        let mut e = Self::default();
        e.recompute(mps, None)?;
        Ok(e)
    }

    /// The environments of `W(x) Π_k factors[k·d + x_k]` (non-negative factors).
    pub fn scaled(mps: &Mps, factors: &[f64]) -> Result<Self> {
        let mut e = Self::default();
        e.recompute(mps, Some(factors))?;
        Ok(e)
    }

    /// Recompute in place (reusing the buffers) for `mps` with optional state factors.
    pub fn recompute(&mut self, mps: &Mps, factors: Option<&[f64]>) -> Result<()> {
        mps.validate()?;
        let n = mps.len();
        let d = mps.d();
        self.factors.clear();
        if let Some(f) = factors {
            if f.len() != n * d {
                return Err(Error::Shape(format!(
                    "{} state factors for {n} sites of {d} states",
                    f.len()
                )));
            }
            if f.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
                return Err(Error::InvalidArgument(
                    "state factors must be finite and non-negative".into(),
                ));
            }
            self.factors.extend_from_slice(f);
        }
        self.m.resize(n, Vec::new());
        let mut r = vec![1.0f64];
        let mut rl = Vec::new();
        let mut log_z = mps.log_scale;
        for k in (0..n).rev() {
            let a = &mps.sites[k];
            let mk = &mut self.m[k];
            mk.clear();
            mk.resize(d * a.dl, 0.0);
            rl.clear();
            rl.resize(a.dl, 0.0);
            for l in 0..a.dl {
                for s in 0..d {
                    let row = &a.data[(l * d + s) * a.dr..][..a.dr];
                    let mut v: f64 = row.iter().zip(&r).map(|(x, y)| x * y).sum();
                    if !self.factors.is_empty() {
                        v *= self.factors[k * d + s];
                    }
                    mk[s * a.dl + l] = v;
                    rl[l] += v;
                }
            }
            let c = rl.iter().fold(0.0f64, |c, v| c.max(v.abs()));
            if c == 0.0 || !c.is_finite() {
                return Err(Error::InvalidArgument(format!(
                    "the MPS has zero (or non-finite) total weight (right environment at site {k})"
                )));
            }
            rl.iter_mut().for_each(|v| *v /= c);
            log_z += c.ln();
            std::mem::swap(&mut r, &mut rl);
        }
        // r is now the 1-vector R_{-1} = 1 after the last rescale.
        self.log_z = log_z + r[0].ln();
        Ok(())
    }

    /// Draw samples `first .. first + n` (row-major `[n, N]` states) with `(seed, stream)`.
    /// Requires a non-negative MPS.
    pub fn sample(
        &self,
        mps: &Mps,
        first: u32,
        n: usize,
        seed: u32,
        stream: u32,
    ) -> Result<Vec<u8>> {
        Ok(self.sample_scored(mps, first as u64, n, seed, stream)?.0)
    }

    /// As [`Environments::sample`], also returning each sample's `log P` (normalised, of the
    /// scaled weight when the environments are scaled) from the same pass; sample indices are
    /// 64-bit here (`first .. first + n`, see [`super::rng::uniform_at`]).
    pub fn sample_scored(
        &self,
        mps: &Mps,
        first: u64,
        n: usize,
        seed: u32,
        stream: u32,
    ) -> Result<(Vec<u8>, Vec<f64>)> {
        if !mps.is_nonnegative() {
            return Err(Error::InvalidArgument(
                "sampling needs an MPS with non-negative entries".into(),
            ));
        }
        if self.m.len() != mps.len() {
            return Err(Error::Shape("environments of another MPS".into()));
        }
        let len = mps.len();
        let mut out = vec![0u8; n * len];
        let mut lps = Vec::with_capacity(n);
        for (b, x) in out.chunks_mut(len).enumerate() {
            let id = first.wrapping_add(b as u64);
            lps.push(self.walk(mps, x, |k| Some(uniform_at(seed, stream, id, k as u32))));
        }
        Ok((out, lps))
    }

    /// Draw one configuration into `x` with the uniform `u(k)` in `[0, 1)` at site `k`, and
    /// return its `log P`. `mps` is the (non-negative) MPS these environments were computed
    /// for.
    pub fn sample_with(
        &self,
        mps: &Mps,
        x: &mut [u8],
        mut u: impl FnMut(usize) -> f64,
    ) -> Result<f64> {
        if x.len() != mps.len() || self.m.len() != mps.len() {
            return Err(Error::Shape(format!(
                "a configuration of {} sites for an MPS of {} and environments of {}",
                x.len(),
                mps.len(),
                self.m.len()
            )));
        }
        Ok(self.walk(mps, x, |k| Some(u(k))))
    }

    /// `log P(x)` of each configuration by the sequential conditionals (the sampler's loop with
    /// given states).
    pub fn log_prob(&self, mps: &Mps, xs: &[u8]) -> Result<Vec<f64>> {
        let len = mps.len();
        if !xs.len().is_multiple_of(len) {
            return Err(Error::Shape(format!(
                "{} states is not a whole number of {len}-site configurations",
                xs.len()
            )));
        }
        if self.m.len() != len {
            return Err(Error::Shape("environments of another MPS".into()));
        }
        let mut buf = vec![0u8; len];
        xs.chunks(len)
            .map(|x| {
                mps.check_config(x)?;
                buf.copy_from_slice(x);
                Ok(self.walk(mps, &mut buf, |_| None))
            })
            .collect()
    }

    /// The shared loop: when `u(k)` is `Some`, draw `x[k]` with it, else read `x[k]`. Returns
    /// `log P(x)`.
    fn walk(&self, mps: &Mps, x: &mut [u8], mut u: impl FnMut(usize) -> Option<f64>) -> f64 {
        let d = mps.d();
        let mut l = vec![1.0f64];
        let mut nl = Vec::new();
        let mut w = vec![0.0f64; d];
        let mut lp = 0.0;
        for (k, a) in mps.sites.iter().enumerate() {
            let mk = &self.m[k];
            let mut total = 0.0;
            for s in 0..d {
                w[s] = l
                    .iter()
                    .zip(&mk[s * a.dl..(s + 1) * a.dl])
                    .map(|(p, q)| p * q)
                    .sum();
                total += w[s];
            }
            let s = match u(k) {
                Some(u) => {
                    let r = u * total;
                    let mut cum = 0.0;
                    let mut pick = (0..d).rev().find(|&s| w[s] > 0.0).unwrap_or(0);
                    for (s, &ws) in w.iter().enumerate() {
                        cum += ws;
                        if r < cum {
                            pick = s;
                            break;
                        }
                    }
                    x[k] = pick as u8;
                    pick
                }
                None => x[k] as usize,
            };
            let ws = w[s];
            if ws <= 0.0 || total <= 0.0 {
                return f64::NEG_INFINITY;
            }
            lp += (ws / total).ln();
            if k + 1 < mps.len() {
                nl.clear();
                nl.resize(a.dr, 0.0);
                for (i, &li) in l.iter().enumerate() {
                    if li == 0.0 {
                        continue;
                    }
                    let row = &a.data[(i * d + s) * a.dr..][..a.dr];
                    for (o, &v) in nl.iter_mut().zip(row) {
                        *o += li * v;
                    }
                }
                // ℓ_k = ℓ_{k-1} f_k[s] A_k[s] / w_s keeps ℓ_k · R_k = 1.
                let f = if self.factors.is_empty() {
                    1.0
                } else {
                    self.factors[k * d + s]
                };
                let inv = f / ws;
                nl.iter_mut().for_each(|v| *v *= inv);
                std::mem::swap(&mut l, &mut nl);
            }
        }
        lp
    }
}

/// Draw `n` exact samples from a non-negative MPS on the CPU (row-major `[n, N]`), with the
/// same random numbers as [`GpuMps::sample`](super::GpuMps::sample) for the same seed.
pub fn sample_cpu(mps: &Mps, n: usize, seed: u32) -> Result<Vec<u8>> {
    Environments::new(mps)?.sample(mps, 0, n, seed, 0)
}
