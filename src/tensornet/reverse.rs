//! Step-wise reverse (denoising) dynamics of the flip noise on an MPS.
//!
//! Forward, every site flips at rate `γ`, so `P_t = e^{tW} P_0` is an MPS of the same bond
//! dimension ([`noised`]). The reverse process is Markov with jump rates
//! `γ P_t(x^{(i)}) / P_t(x)` for flipping site `i` ([`reverse_rates`]), and its transition over
//! a finite step `dt` is known exactly:
//! `P(x_{t−dt} = z | x_t = x) = P_{t−dt}(z) Π_i K_dt(x_i | z_i) / P_t(x)`,
//! an MPS in `z` ([`ReverseDynamics::step`]), so a reverse step is an exact perfect sample and
//! `S` steps from `x_T` end exactly in the one-shot denoiser's law `P_0(x_0 | x_T)`, for any `S`.

use super::diffusion::{flip_kernel, noised};
use super::proposal::{derive_key, keyed_uniform};
use super::sampler::Environments;
use super::Mps;
use crate::error::{Error, Result};

/// The reverse dynamics of `P_0` under flips at rate `γ`, from time `T` to 0 in `S` equal
/// steps.
#[derive(Clone, Debug)]
pub struct ReverseDynamics {
    /// `P_{t_j}` for `t_j = j T / S`, `j = 0..S` (`P_{t_0} = P_0`).
    priors: Vec<Mps>,
    /// `K_dt` as `[a, b]`: keep and flip probabilities of one step.
    keep_flip: [f64; 2],
    times: Vec<f64>,
}

impl ReverseDynamics {
    /// Precompute the noised MPS at every step time (`S + 1` of them, each of `P_0`'s bond
    /// dimension).
    pub fn new(p0: &Mps, gamma: f64, t: f64, steps: usize) -> Result<Self> {
        if p0.d() != 2 {
            return Err(Error::InvalidArgument(format!(
                "the flip noise acts on two states per site; this MPS has {}",
                p0.d()
            )));
        }
        if steps == 0 || steps > 1 << 20 {
            return Err(Error::InvalidArgument(format!(
                "reverse steps must be in 1..=2^20, got {steps}"
            )));
        }
        if !(gamma.is_finite() && gamma > 0.0 && t.is_finite() && t > 0.0) {
            return Err(Error::InvalidArgument(format!(
                "reverse dynamics need γ > 0 and T > 0, got γ = {gamma}, T = {t}"
            )));
        }
        let dt = t / steps as f64;
        let times: Vec<f64> = (0..=steps).map(|j| j as f64 * dt).collect();
        let priors = times
            .iter()
            .map(|&tj| noised(p0, gamma, tj))
            .collect::<Result<Vec<_>>>()?;
        let k = flip_kernel(gamma, dt)?;
        Ok(Self {
            priors,
            keep_flip: [k[0], k[1]],
            times,
        })
    }

    /// Number of steps `S`.
    pub fn steps(&self) -> usize {
        self.times.len() - 1
    }
    /// The step times `t_j = j T / S`.
    pub fn times(&self) -> &[f64] {
        &self.times
    }
    /// `P_{t_j}`.
    pub fn marginal(&self, j: usize) -> Option<&Mps> {
        self.priors.get(j)
    }

    /// The MPS factors of the step from `t_j` to `t_{j−1}` given `x = x_{t_j}`: the posterior is
    /// `P_{t_{j−1}}(z) Π_i factors[2i + z_i]`.
    fn factors(&self, x: &[u8]) -> Vec<f64> {
        let [a, b] = self.keep_flip;
        x.iter()
            .flat_map(|&xi| if xi == 0 { [a, b] } else { [b, a] })
            .collect()
    }

    /// One exact reverse step from `t_j` to `t_{j−1}` (`1 ≤ j ≤ S`): draws
    /// `z ~ P_{t_{j−1}}(z) K_dt(x | z) / P_{t_j}(x)` with the uniform `u(site)`.
    pub fn step(&self, j: usize, x: &[u8], u: impl FnMut(usize) -> f64) -> Result<Vec<u8>> {
        if j == 0 || j > self.steps() {
            return Err(Error::InvalidArgument(format!(
                "reverse step index {j} is outside 1..={}",
                self.steps()
            )));
        }
        let prior = &self.priors[j - 1];
        prior.check_config(x)?;
        let env = Environments::scaled(prior, &self.factors(x))?;
        let mut z = vec![0u8; x.len()];
        env.sample_with(prior, &mut z, u)?;
        Ok(z)
    }

    /// All `S` steps from `x_T` to `t = 0` for trajectory `index` of `seed`; returns `x_0`.
    pub fn run(&self, x_t: &[u8], seed: u64, index: u32) -> Result<Vec<u8>> {
        let key = derive_key(seed, 21);
        let n = x_t.len() as u32;
        let mut x = x_t.to_vec();
        for j in (1..=self.steps()).rev() {
            let c0 = index;
            let base = (j as u32).wrapping_mul(n);
            x = self.step(j, &x, |k| {
                keyed_uniform(key, c0, base.wrapping_add(k as u32))
            })?;
        }
        Ok(x)
    }

    /// [`ReverseDynamics::run`] for each configuration of `x_ts` (`[M, N]`, trajectory `i`
    /// uses index `first + i`).
    pub fn run_many(&self, x_ts: &[u8], seed: u64, first: u32) -> Result<Vec<u8>> {
        let n = self.priors[0].len();
        if !x_ts.len().is_multiple_of(n) {
            return Err(Error::Shape(format!(
                "{} states is not a whole number of {n}-site configurations",
                x_ts.len()
            )));
        }
        let mut out = Vec::with_capacity(x_ts.len());
        for (i, x) in x_ts.chunks(n).enumerate() {
            out.extend(self.run(x, seed, first.wrapping_add(i as u32))?);
        }
        Ok(out)
    }
}

/// The exact reverse jump rates at time `t`: entry `i` is `γ P_t(x^{(i)}) / P_t(x)`, the rate of
/// flipping site `i` in reverse time (`x^{(i)}` is `x` with site `i` flipped), by one left and
/// one right contraction (`O(N χ²)`). An error when `P_t(x) = 0`.
pub fn reverse_rates(p0: &Mps, gamma: f64, t: f64, x: &[u8]) -> Result<Vec<f64>> {
    if !(gamma.is_finite() && gamma > 0.0) {
        return Err(Error::InvalidArgument(format!(
            "reverse rates need γ > 0, got {gamma}"
        )));
    }
    let pt = noised(p0, gamma, t)?;
    pt.check_config(x)?;
    let n = pt.len();
    // Normalised left vectors ℓ_k (before site k) and right vectors r_k (after site k).
    let contract_left = |l: &[f64], k: usize| -> Vec<f64> {
        let a = &pt.sites[k];
        let mut nl = vec![0.0; a.dr];
        for (i, &li) in l.iter().enumerate() {
            let row = &a.data[(i * 2 + x[k] as usize) * a.dr..][..a.dr];
            for (o, &v) in nl.iter_mut().zip(row) {
                *o += li * v;
            }
        }
        scale_to_one(nl)
    };
    let mut lefts = vec![vec![1.0]];
    for k in 0..n - 1 {
        let next = contract_left(&lefts[k], k);
        lefts.push(next);
    }
    let mut rates = vec![0.0; n];
    let mut r = vec![1.0];
    for k in (0..n).rev() {
        let a = &pt.sites[k];
        let weight = |s: usize| -> f64 {
            let mut w = 0.0;
            for (i, &li) in lefts[k].iter().enumerate() {
                let row = &a.data[(i * 2 + s) * a.dr..][..a.dr];
                w += li * row.iter().zip(&r).map(|(p, q)| p * q).sum::<f64>();
            }
            w
        };
        let (here, flipped) = (weight(x[k] as usize), weight(1 - x[k] as usize));
        if here <= 0.0 {
            return Err(Error::InvalidArgument(
                "the configuration has probability 0 at time t".into(),
            ));
        }
        rates[k] = gamma * flipped / here;
        let mut nr = vec![0.0; a.dl];
        for (i, o) in nr.iter_mut().enumerate() {
            let row = &a.data[(i * 2 + x[k] as usize) * a.dr..][..a.dr];
            *o = row.iter().zip(&r).map(|(p, q)| p * q).sum();
        }
        r = scale_to_one(nr);
    }
    Ok(rates)
}

fn scale_to_one(mut v: Vec<f64>) -> Vec<f64> {
    let m = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    if m > 0.0 {
        v.iter_mut().for_each(|x| *x /= m);
    }
    v
}
