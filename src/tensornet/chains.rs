//! Batched Markov chains on a [`LogWeight`] target: Metropolis–Hastings with MPS proposals
//! ([`run_mh`]) and local single-site Metropolis ([`run_local`]), recording two observables
//! per chain per step.
//!
//! A step of [`run_mh`] is: one proposal per chain ([`Proposer`]), the target's log-weight of
//! each proposal, then the batched accept step ([`AcceptStep`]) on arrays only — current and
//! proposed `log π̃`, `log Pθ` and a keyed uniform per chain. [`CpuAccept`] is the reference.
//! Every random number of a step is counter-based (Philox keyed by the seed and the step), so
//! [`mh_step`] can replay any step from any state and the GPU chains ([`super::GpuChains`],
//! all of a step on the device) draw the same numbers.

use std::time::Instant;

use super::proposal::{derive_key, Proposals, Proposer};
use super::rng::{open_uniform, second_word};
use super::target::LogWeight;
use crate::error::{Error, Result};
use crate::rng::Rng;

/// The current states of a batch of chains with their log target weights and log model
/// probabilities.
#[derive(Clone, Debug)]
pub struct Chains {
    n: usize,
    /// `[chains, N]` states.
    pub states: Vec<u8>,
    /// `log π̃(x)` per chain.
    pub log_pi: Vec<f64>,
    /// `log Pθ(x)` per chain under the current proposer (set by [`run_mh`]).
    pub log_q: Vec<f64>,
}

impl Chains {
    /// Chains starting from `states` (`[chains, N]`); every start must have positive target
    /// weight.
    pub fn new(target: &dyn LogWeight, states: Vec<u8>) -> Result<Self> {
        let n = target.n_sites();
        if states.is_empty() || !states.len().is_multiple_of(n) {
            return Err(Error::Shape(format!(
                "{} states is not a whole, non-zero number of {n}-site configurations",
                states.len()
            )));
        }
        if states.len() > u32::MAX as usize {
            return Err(Error::Limit(format!(
                "{} chain states exceed the 2^32 counters of the random streams",
                states.len()
            )));
        }
        let mut log_pi = Vec::with_capacity(states.len() / n);
        for (c, x) in states.chunks(n).enumerate() {
            target.check(x)?;
            let lw = target.log_weight(x);
            if lw.is_nan() || lw == f64::NEG_INFINITY {
                return Err(Error::InvalidArgument(format!(
                    "chain {c} starts outside the target's support (log weight {lw})"
                )));
            }
            log_pi.push(lw);
        }
        let chains = log_pi.len();
        Ok(Self {
            n,
            states,
            log_pi,
            log_q: vec![f64::NAN; chains],
        })
    }
    /// Number of chains.
    pub fn len(&self) -> usize {
        self.log_pi.len()
    }
    /// Whether there are no chains (never true after [`Chains::new`]).
    pub fn is_empty(&self) -> bool {
        self.log_pi.is_empty()
    }
    /// Sites per chain.
    pub fn n_sites(&self) -> usize {
        self.n
    }
}

/// The batched Metropolis–Hastings accept step: chain `c` moves to its proposal when
/// `u_c < π̃(x′_c) Pθ(x_c) / (π̃(x_c) Pθ(x′_c))`.
pub trait AcceptStep {
    /// Accept or reject every chain's proposal (`uniforms[c]` in `(0, 1)`), updating states,
    /// `log_pi` and `log_q` of the accepted ones; returns how many were accepted.
    fn accept(
        &self,
        chains: &mut Chains,
        props: &Proposals,
        prop_log_pi: &[f64],
        uniforms: &[f64],
    ) -> Result<usize>;
}

/// The CPU accept step.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuAccept;

impl AcceptStep for CpuAccept {
    fn accept(
        &self,
        chains: &mut Chains,
        props: &Proposals,
        prop_log_pi: &[f64],
        uniforms: &[f64],
    ) -> Result<usize> {
        let (b, n) = (chains.len(), chains.n);
        if props.log_q.len() != b || prop_log_pi.len() != b || uniforms.len() != b {
            return Err(Error::Shape(format!(
                "accept step for {b} chains given {} proposals, {} weights, {} uniforms",
                props.log_q.len(),
                prop_log_pi.len(),
                uniforms.len()
            )));
        }
        let mut accepted = 0;
        for c in 0..b {
            let log_a = prop_log_pi[c] - chains.log_pi[c] + chains.log_q[c] - props.log_q[c];
            // NaN (a proposal of zero model probability) and −∞ are rejected.
            if uniforms[c].ln() < log_a {
                chains.states[c * n..(c + 1) * n]
                    .copy_from_slice(&props.states[c * n..(c + 1) * n]);
                chains.log_pi[c] = prop_log_pi[c];
                chains.log_q[c] = props.log_q[c];
                accepted += 1;
            }
        }
        Ok(accepted)
    }
}

/// Options of a chain run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Steps run before recording (not timed).
    pub burn_in: usize,
    /// Recorded steps.
    pub steps: usize,
    /// Seed of the accept (and local-move) random numbers.
    pub seed: u64,
    /// Local Metropolis sweeps after each proposal step of [`run_mh`] (0: pure MPS proposals).
    pub local_sweeps: usize,
    /// Keep every `keep_every`-th recorded state of every chain (0: keep none).
    pub keep_every: usize,
}

/// What a run recorded.
#[derive(Clone, Debug)]
pub struct ChainTrace {
    /// Number of chains.
    pub chains: usize,
    /// Recorded steps per chain.
    pub steps: usize,
    /// The two observables of the target, each `[chains, steps]`.
    pub obs: [Vec<f64>; 2],
    /// Proposals made during the recorded steps.
    pub proposed: usize,
    /// Proposals accepted during the recorded steps.
    pub accepted: usize,
    /// Wall-clock seconds of the recorded steps.
    pub seconds: f64,
    /// Kept states (`[kept, N]`).
    pub kept: Vec<u8>,
}

impl ChainTrace {
    pub(crate) fn new(chains: usize, steps: usize) -> Self {
        Self {
            chains,
            steps,
            obs: [vec![0.0; chains * steps], vec![0.0; chains * steps]],
            proposed: 0,
            accepted: 0,
            seconds: 0.0,
            kept: Vec::new(),
        }
    }
    /// `accepted / proposed`.
    pub fn acceptance(&self) -> f64 {
        if self.proposed == 0 {
            0.0
        } else {
            self.accepted as f64 / self.proposed as f64
        }
    }
    fn record(&mut self, target: &dyn LogWeight, chains: &Chains, t: usize, keep_every: usize) {
        let n = chains.n;
        for (c, x) in chains.states.chunks(n).enumerate() {
            let o = target.observables_at(x, chains.log_pi[c]);
            self.obs[0][c * self.steps + t] = o[0];
            self.obs[1][c * self.steps + t] = o[1];
            if keep_every > 0 && (t + 1).is_multiple_of(keep_every) {
                self.kept.extend_from_slice(x);
            }
        }
    }
}

const TAG_ACCEPT: u32 = 11;
const TAG_LOCAL: u32 = 12;

/// The random numbers of a local sweep: a uniform in `(0, 1]` for the accept test of site `k`
/// of chain `c`, and the new state when `d > 2`.
trait SiteDraws {
    fn uniform(&mut self, c: usize, k: usize) -> f64;
    /// A uniformly chosen state of `0..d` other than `x`.
    fn other(&mut self, c: usize, k: usize, x: u8, d: usize) -> u8;
}

/// Sequential per-chain streams ([`run_local`]).
struct ChainRngs(Vec<Rng>);

impl SiteDraws for ChainRngs {
    fn uniform(&mut self, c: usize, _k: usize) -> f64 {
        self.0[c].uniform()
    }
    fn other(&mut self, c: usize, _k: usize, x: u8, d: usize) -> u8 {
        let r = self.0[c].below(d as u64 - 1) as u8;
        if r >= x {
            r + 1
        } else {
            r
        }
    }
}

/// Counter-based draws ([`mh_step`], and the GPU chains): Philox with counter
/// `(chain, site, step, sweep)` under the run's local-move key.
struct KeyedDraws {
    key: u32,
    step: u32,
    sweep: u32,
}

impl KeyedDraws {
    fn ctr(&self, c: usize, k: usize) -> [u32; 4] {
        [c as u32, k as u32, self.step, self.sweep]
    }
}

impl SiteDraws for KeyedDraws {
    fn uniform(&mut self, c: usize, k: usize) -> f64 {
        open_uniform(self.key, self.ctr(c, k))
    }
    fn other(&mut self, c: usize, k: usize, x: u8, d: usize) -> u8 {
        let w = second_word(self.key, self.ctr(c, k)) as u64;
        let r = ((w * (d as u64 - 1)) >> 32) as u8;
        if r >= x {
            r + 1
        } else {
            r
        }
    }
}

/// One local Metropolis sweep over every site of every chain: site `k` proposes a uniformly
/// chosen other state (the flipped one for `d = 2`); `log_pi` is updated.
fn local_sweep(target: &dyn LogWeight, chains: &mut Chains, draws: &mut dyn SiteDraws) -> usize {
    let (n, d) = (chains.n, target.d());
    let mut accepted = 0;
    let mut exps = ExpMemo::default();
    for c in 0..chains.len() {
        let x = &mut chains.states[c * n..(c + 1) * n];
        for k in 0..n {
            let s = if d == 2 {
                1 - x[k]
            } else {
                draws.other(c, k, x[k], d)
            };
            let delta = target.log_weight_change(x, k, s);
            if delta >= 0.0 || draws.uniform(c, k) < exps.exp(delta) {
                x[k] = s;
                chains.log_pi[c] += delta;
                accepted += 1;
            }
        }
    }
    accepted
}

/// `exp` of the few distinct weight changes a lattice model's local moves produce, remembered
/// by their bits (a miss computes it exactly, so results are those of `f64::exp`).
struct ExpMemo {
    keys: [u64; 64],
    vals: [f64; 64],
}

impl Default for ExpMemo {
    fn default() -> Self {
        // No weight change has these bits (a NaN payload), so every slot starts empty.
        Self {
            keys: [u64::MAX; 64],
            vals: [0.0; 64],
        }
    }
}

impl ExpMemo {
    #[inline]
    fn exp(&mut self, x: f64) -> f64 {
        let bits = x.to_bits();
        let slot = (bits ^ bits >> 29 ^ bits >> 47) as usize & 63;
        if self.keys[slot] != bits {
            self.keys[slot] = bits;
            self.vals[slot] = x.exp();
        }
        self.vals[slot]
    }
}

fn chain_rngs(seed: u64, chains: usize) -> ChainRngs {
    ChainRngs((0..chains).map(|c| Rng::fork(seed, c as u64)).collect())
}

pub(crate) fn check_run(target: &dyn LogWeight, chains: &Chains, opts: &RunOptions) -> Result<()> {
    if chains.n != target.n_sites() {
        return Err(Error::Shape(format!(
            "chains of {} sites for a target of {}",
            chains.n,
            target.n_sites()
        )));
    }
    if opts.steps == 0 {
        return Err(Error::InvalidArgument("a chain run needs steps ≥ 1".into()));
    }
    check_run_size(chains.len(), target.n_sites(), opts.steps, opts.keep_every)
}

/// Most bytes of recorded observables and kept states of one run.
const MAX_RUN_BYTES: usize = 1 << 31;

/// Refuse a run whose recorded observables (`16` bytes per chain and step) or kept states
/// would exceed 2 GiB, before anything is allocated.
pub fn check_run_size(
    chains: usize,
    n_sites: usize,
    steps: usize,
    keep_every: usize,
) -> Result<()> {
    let obs = chains.saturating_mul(steps).saturating_mul(16);
    let kept = steps
        .checked_div(keep_every)
        .map_or(0, |k| chains.saturating_mul(k).saturating_mul(n_sites));
    if obs > MAX_RUN_BYTES || kept > MAX_RUN_BYTES {
        return Err(Error::Limit(format!(
            "{chains} chains × {steps} steps of {n_sites} sites would record {} MiB; the limit is {} MiB",
            obs.max(kept) >> 20,
            MAX_RUN_BYTES >> 20
        )));
    }
    Ok(())
}

/// The Philox keys of a run seeded `seed`: the accept uniforms (counter `(step, chain, 0, 0)`)
/// and the local moves (counter `(chain, site, step, sweep)`).
pub(crate) fn run_keys(seed: u64) -> (u32, u32) {
    (derive_key(seed, TAG_ACCEPT), derive_key(seed, TAG_LOCAL))
}

/// Step `step` of [`run_mh`] with seed `seed`: one proposal per chain, the accept step, then
/// `local_sweeps` local sweeps (after which `log_q` and `log_pi` are recomputed). Returns the
/// number of accepted proposals. Every random number is keyed by `(seed, step)`, so a step can
/// be replayed from any state — the GPU chains ([`super::GpuChains`]) draw the same numbers.
pub fn mh_step(
    target: &dyn LogWeight,
    proposer: &mut dyn Proposer,
    chains: &mut Chains,
    step: u64,
    seed: u64,
    local_sweeps: usize,
    accept: &dyn AcceptStep,
) -> Result<usize> {
    let (b, n) = (chains.len(), chains.n);
    let (accept_key, local_key) = run_keys(seed);
    let mut props = Proposals::default();
    if proposer.kernel_changes(step) {
        chains.log_q = proposer.log_q(&chains.states)?;
    }
    proposer.propose(&chains.states, step, &mut props)?;
    let prop_pi: Vec<f64> = props
        .states
        .chunks(n)
        .map(|x| target.log_weight(x))
        .collect();
    let uniforms: Vec<f64> = (0..b)
        .map(|c| open_uniform(accept_key, [step as u32, c as u32, 0, 0]))
        .collect();
    let acc = accept.accept(chains, &props, &prop_pi, &uniforms)?;
    if local_sweeps > 0 {
        for sweep in 0..local_sweeps {
            let mut draws = KeyedDraws {
                key: local_key,
                step: step as u32,
                sweep: sweep as u32,
            };
            local_sweep(target, chains, &mut draws);
        }
        chains.log_q = proposer.log_q(&chains.states)?;
        for (lp, x) in chains.log_pi.iter_mut().zip(chains.states.chunks(n)) {
            *lp = target.log_weight(x);
        }
    }
    Ok(acc)
}

/// Metropolis–Hastings with proposals from `proposer` (plus `opts.local_sweeps` local sweeps
/// per step), `opts.burn_in` unrecorded then `opts.steps` recorded steps ([`mh_step`]); each
/// chain records the target's observables after every step.
pub fn run_mh(
    target: &dyn LogWeight,
    proposer: &mut dyn Proposer,
    chains: &mut Chains,
    opts: &RunOptions,
    accept: &dyn AcceptStep,
) -> Result<ChainTrace> {
    check_run(target, chains, opts)?;
    let b = chains.len();
    chains.log_q = proposer.log_q(&chains.states)?;
    let mut trace = ChainTrace::new(b, opts.steps);
    let mut t0 = Instant::now();
    for step in 0..opts.burn_in + opts.steps {
        if step == opts.burn_in {
            t0 = Instant::now();
        }
        let acc = mh_step(
            target,
            proposer,
            chains,
            step as u64,
            opts.seed,
            opts.local_sweeps,
            accept,
        )?;
        if step >= opts.burn_in {
            trace.proposed += b;
            trace.accepted += acc;
            trace.record(target, chains, step - opts.burn_in, opts.keep_every);
        }
    }
    trace.seconds = t0.elapsed().as_secs_f64();
    Ok(trace)
}

/// Local single-site Metropolis: one step is a sweep over all sites of every chain (each
/// proposes a uniformly chosen other state), recorded after every sweep. The acceptance is
/// per single-site move.
pub fn run_local(
    target: &dyn LogWeight,
    chains: &mut Chains,
    opts: &RunOptions,
) -> Result<ChainTrace> {
    check_run(target, chains, opts)?;
    let b = chains.len();
    let mut rngs = chain_rngs(opts.seed, b);
    let mut trace = ChainTrace::new(b, opts.steps);
    for _ in 0..opts.burn_in {
        local_sweep(target, chains, &mut rngs);
    }
    let t0 = Instant::now();
    for t in 0..opts.steps {
        trace.accepted += local_sweep(target, chains, &mut rngs);
        trace.proposed += b * chains.n;
        trace.record(target, chains, t, opts.keep_every);
    }
    trace.seconds = t0.elapsed().as_secs_f64();
    // Resynchronise the incrementally updated log-weights.
    for (lp, x) in chains.log_pi.iter_mut().zip(chains.states.chunks(chains.n)) {
        *lp = target.log_weight(x);
    }
    Ok(trace)
}

#[cfg(test)]
mod tests {
    use super::ExpMemo;

    #[test]
    fn the_exp_memo_returns_exp_bit_for_bit() {
        let mut m = ExpMemo::default();
        let mut g = crate::rng::Rng::new(4);
        // Few distinct values (hits) mixed with many (misses and slot collisions).
        let few = [-0.88, -1.76, -0.44, 0.0, -3.52];
        for i in 0..5000 {
            let x = if i % 3 == 0 {
                g.range(-20.0, 1.0)
            } else {
                few[g.below(5) as usize]
            };
            assert_eq!(m.exp(x).to_bits(), x.exp().to_bits(), "{x}");
        }
    }
}
