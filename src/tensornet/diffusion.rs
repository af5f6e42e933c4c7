//! Discrete diffusion with MPS: the independent-flip noise channel `e^{tW}`, the noised law
//! `P_T`, one-shot denoising `P(x0 | x_T)`, and MCMC with MPS proposals.

use super::sampler::Environments;
use super::{Mpo, Mps};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// The flip channel at time `t` for rate `gamma`: `K[y][x] = a` if `y = x` else `b`, with
/// `a = (1 + e^{−2γt})/2`, `b = (1 − e^{−2γt})/2`, row-major `[[a, b], [b, a]]`.
pub fn flip_kernel(gamma: f64, t: f64) -> Result<[f64; 4]> {
    if !(gamma >= 0.0 && t >= 0.0 && gamma.is_finite() && t.is_finite()) {
        return Err(Error::InvalidArgument(format!(
            "flip channel needs γ ≥ 0 and t ≥ 0, got γ = {gamma}, t = {t}"
        )));
    }
    let e = (-2.0 * gamma * t).exp();
    let (a, b) = ((1.0 + e) / 2.0, (1.0 - e) / 2.0);
    Ok([a, b, b, a])
}

fn check_binary(p: &Mps) -> Result<()> {
    if p.d() != 2 {
        return Err(Error::InvalidArgument(format!(
            "the flip channel acts on two states per site; this MPS has {}",
            p.d()
        )));
    }
    Ok(())
}

/// `P_t = e^{tW} P_0` for independent flips at rate `gamma`: a bond-dimension-1 MPO, so the
/// bond dimensions are unchanged.
pub fn noised(p0: &Mps, gamma: f64, t: f64) -> Result<Mps> {
    check_binary(p0)?;
    let k = flip_kernel(gamma, t)?;
    let mpo = Mpo::product(&vec![k.to_vec(); p0.len()], 2)?;
    p0.apply_mpo(&mpo)
}

/// One-shot denoising: the MPS of `P(x0 | x_T) ∝ P0(x0) Π_i K_T(x_T,i | x0,i)`.
pub fn condition_on_noisy(p0: &Mps, x_t: &[u8], gamma: f64, t: f64) -> Result<Mps> {
    check_binary(p0)?;
    p0.check_config(x_t)?;
    let k = flip_kernel(gamma, t)?;
    let f: Vec<Vec<f64>> = x_t
        .iter()
        .map(|&y| (0..2).map(|x| k[y as usize * 2 + x]).collect())
        .collect();
    p0.scale_states(&f)
}

/// Acceptance statistics of an MCMC run.
#[derive(Clone, Copy, Debug, Default)]
pub struct McmcStats {
    /// Proposals made.
    pub steps: usize,
    /// Proposals accepted.
    pub accepted: usize,
}

impl McmcStats {
    /// `accepted / steps`.
    pub fn acceptance(&self) -> f64 {
        if self.steps == 0 {
            0.0
        } else {
            self.accepted as f64 / self.steps as f64
        }
    }
}

fn check_pair(target: &Mps, model: &Mps) -> Result<()> {
    if target.len() != model.len() || target.d() != model.d() {
        return Err(Error::Shape(format!(
            "target ({} sites, d = {}) and model ({} sites, d = {}) differ",
            target.len(),
            target.d(),
            model.len(),
            model.d()
        )));
    }
    Ok(())
}

/// Disconnected MCMC: independent proposals `x′ ~ Pθ` (exact samples of `model`), accepted
/// with `min(1, π(x′)Pθ(x) / (π(x)Pθ(x′)))`. Returns the chain (`[steps, N]`, the first state
/// is the first proposal) and the acceptance statistics.
pub fn mcmc_disconnected(
    target: &Mps,
    model: &Mps,
    steps: usize,
    seed: u64,
) -> Result<(Vec<u8>, McmcStats)> {
    check_pair(target, model)?;
    let n = target.len();
    let env_t = Environments::new(target)?;
    let env_m = Environments::new(model)?;
    let props = env_m.sample(model, 0, steps, seed as u32, (seed >> 32) as u32 ^ 0x5EED)?;
    let lp_t = env_t.log_prob(target, &props)?;
    let lp_m = env_m.log_prob(model, &props)?;
    let mut g = Rng::from_state(seed ^ 0xD1CE);
    let mut chain = Vec::with_capacity(steps * n);
    let mut stats = McmcStats::default();
    let mut cur = 0usize;
    for i in 0..steps {
        if i > 0 {
            stats.steps += 1;
            let log_a = lp_t[i] + lp_m[cur] - lp_t[cur] - lp_m[i];
            if log_a >= 0.0 || g.uniform().ln() < log_a {
                cur = i;
                stats.accepted += 1;
            }
        } else if !lp_t[0].is_finite() {
            return Err(Error::InvalidArgument(
                "the model proposed a state of zero target probability as the start".into(),
            ));
        }
        chain.extend_from_slice(&props[cur * n..(cur + 1) * n]);
    }
    Ok((chain, stats))
}

/// Connected MCMC: from `x`, noise for time `t` (independent flips at rate `gamma`) to `x_T`,
/// then draw `x′ ~ Pθ(x0 | x_T)` exactly; this kernel is in detailed balance with `Pθ`, so
/// `x′` is accepted with `min(1, π(x′)Pθ(x) / (π(x)Pθ(x′)))`. Starts from `start`.
#[allow(clippy::too_many_arguments)]
pub fn mcmc_connected(
    target: &Mps,
    model: &Mps,
    gamma: f64,
    t: f64,
    start: &[u8],
    steps: usize,
    seed: u64,
) -> Result<(Vec<u8>, McmcStats)> {
    check_pair(target, model)?;
    check_binary(model)?;
    target.check_config(start)?;
    let n = target.len();
    let k = flip_kernel(gamma, t)?;
    let flip_p = k[1];
    let env_t = Environments::new(target)?;
    let env_m = Environments::new(model)?;
    let mut g = Rng::from_state(seed);
    let mut x = start.to_vec();
    let mut lpt_x = env_t.log_prob(target, &x)?[0];
    let mut lpm_x = env_m.log_prob(model, &x)?[0];
    if !lpt_x.is_finite() {
        return Err(Error::InvalidArgument(
            "the start state has zero target probability".into(),
        ));
    }
    let mut chain = Vec::with_capacity(steps * n);
    let mut stats = McmcStats::default();
    let mut y = vec![0u8; n];
    for i in 0..steps {
        for (yi, &xi) in y.iter_mut().zip(&x) {
            *yi = if g.uniform() < flip_p { 1 - xi } else { xi };
        }
        let cond = condition_on_noisy(model, &y, gamma, t)?;
        let env_c = Environments::new(&cond)?;
        let xp = env_c.sample(&cond, i as u32, 1, seed as u32, 0xC0DE)?;
        let lpt = env_t.log_prob(target, &xp)?[0];
        let lpm = env_m.log_prob(model, &xp)?[0];
        stats.steps += 1;
        let log_a = lpt + lpm_x - lpt_x - lpm;
        if log_a >= 0.0 || g.uniform().ln() < log_a {
            x = xp;
            lpt_x = lpt;
            lpm_x = lpm;
            stats.accepted += 1;
        }
        chain.extend_from_slice(&x);
    }
    Ok((chain, stats))
}
