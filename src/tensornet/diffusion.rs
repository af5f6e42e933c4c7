//! Discrete diffusion with MPS: the independent-flip noise channel `e^{tW}`, the noised law
//! `P_T`, one-shot denoising `P(x0 | x_T)`, and single-chain MCMC with MPS proposals on an
//! unnormalised target.

use super::chains::{run_mh, Chains, CpuAccept, RunOptions};
use super::proposal::{ConnectedProposer, IndependentProposer, Proposals, Proposer};
use super::target::LogWeight;
use super::{Mpo, Mps};
use crate::error::{Error, Result};

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

fn check_pair(target: &dyn LogWeight, model: &Mps) -> Result<()> {
    if target.n_sites() != model.len() || target.d() != model.d() {
        return Err(Error::Shape(format!(
            "target ({} sites, d = {}) and model ({} sites, d = {}) differ",
            target.n_sites(),
            target.d(),
            model.len(),
            model.d()
        )));
    }
    Ok(())
}

/// Run one chain for `steps` recorded states and return them with the statistics.
fn one_chain(
    target: &dyn LogWeight,
    proposer: &mut dyn Proposer,
    start: Vec<u8>,
    steps: usize,
    seed: u64,
) -> Result<(Vec<u8>, McmcStats)> {
    let mut chains = Chains::new(target, start)?;
    let opts = RunOptions {
        burn_in: 0,
        steps,
        seed,
        local_sweeps: 0,
        keep_every: 1,
    };
    let trace = run_mh(target, proposer, &mut chains, &opts, &CpuAccept)?;
    Ok((
        trace.kept,
        McmcStats {
            steps: trace.proposed,
            accepted: trace.accepted,
        },
    ))
}

/// Disconnected MCMC on an unnormalised target (e.g. an energy, or an MPS): independent
/// proposals `x′ ~ Pθ` (exact samples of `model`), accepted with
/// `min(1, π(x′)Pθ(x) / (π(x)Pθ(x′)))`. Returns the chain (`[steps, N]`, the first state is the
/// first proposal) and the acceptance statistics. For many chains at once see
/// [`run_mh`](super::run_mh).
pub fn mcmc_disconnected(
    target: &dyn LogWeight,
    model: &Mps,
    steps: usize,
    seed: u64,
) -> Result<(Vec<u8>, McmcStats)> {
    check_pair(target, model)?;
    if steps == 0 {
        return Ok((Vec::new(), McmcStats::default()));
    }
    let mut prop = IndependentProposer::new(model, None, seed)?;
    let mut first = Proposals::default();
    prop.propose(&vec![0u8; model.len()], 0, &mut first)?;
    if target.log_weight(&first.states) == f64::NEG_INFINITY {
        return Err(Error::InvalidArgument(
            "the model proposed a state of zero target probability as the start".into(),
        ));
    }
    let mut chain = first.states.clone();
    if steps > 1 {
        let (rest, stats) = one_chain(target, &mut prop, first.states, steps - 1, seed)?;
        chain.extend_from_slice(&rest);
        return Ok((chain, stats));
    }
    Ok((chain, McmcStats::default()))
}

/// Connected MCMC on an unnormalised target: from `x`, noise for time `t` (independent flips
/// at rate `gamma`) to `x_T`, then draw `x′ ~ Pθ(x0 | x_T)` exactly; this kernel is in detailed
/// balance with `Pθ`, so `x′` is accepted with `min(1, π(x′)Pθ(x) / (π(x)Pθ(x′)))`. Starts
/// from `start`; returns the `steps` states after each step.
pub fn mcmc_connected(
    target: &dyn LogWeight,
    model: &Mps,
    gamma: f64,
    t: f64,
    start: &[u8],
    steps: usize,
    seed: u64,
) -> Result<(Vec<u8>, McmcStats)> {
    check_pair(target, model)?;
    check_binary(model)?;
    target.check(start)?;
    flip_kernel(gamma, t)?;
    if steps == 0 {
        return Ok((Vec::new(), McmcStats::default()));
    }
    let mut prop = ConnectedProposer::new(model, gamma * t, seed)?;
    one_chain(target, &mut prop, start.to_vec(), steps, seed)
}
