//! Proposals from an MPS model `Pθ` for Metropolis–Hastings chains, one per chain per step:
//!
//! - [`IndependentProposer`] ("disconnected"): fresh exact samples `x′ ~ Pθ`, drawn in large
//!   blocks on the CPU or, given a GPU context, by the WGSL sampler ([`GpuMps`]); the same
//!   `(seed, sample index)` streams on both, so the two paths propose the same states.
//! - [`ConnectedProposer`] ("connected"): noise the current state with independent flips for
//!   time `T`, `y ~ K_T(· | x)`, then draw `x′ ~ Pθ(x0 | y)` exactly from the one-shot denoiser.
//!   The kernel is in detailed balance with `Pθ`, and `log Pθ(x′)` comes from the same pass:
//!   `log Pθ(x′) = log Pθ(x′ | y) + log Z(y) − log Zθ − Σ_k log K_T(y_k | x′_k)`.
//!
//! Every proposal carries `log Pθ(x′)`; the chain's accept step then needs no further
//! contraction. Random numbers are counter-based (Philox keyed by the seed, counters
//! `(step, chain · N + site)`), so a batched GPU implementation can reproduce them.

use super::diffusion::flip_kernel;
use super::sampler::Environments;
use super::{GpuMps, Mps};
use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::kernels::rng::philox4x32_10;

/// Proposed states of a batch of chains with their `log Pθ`.
#[derive(Clone, Debug, Default)]
pub struct Proposals {
    /// `[chains, N]` states.
    pub states: Vec<u8>,
    /// `log Pθ(x′)` per chain.
    pub log_q: Vec<f64>,
}

/// A source of MCMC proposals whose kernel is in detailed balance with a model `Pθ`, so that
/// Metropolis–Hastings accepts with `min(1, π(x′)Pθ(x) / (π(x)Pθ(x′)))`.
pub trait Proposer {
    /// A short name for reports.
    fn name(&self) -> &'static str;
    /// `log Pθ(x)` of configurations (row-major `[M, N]`).
    fn log_q(&mut self, xs: &[u8]) -> Result<Vec<f64>>;
    /// One proposal for each of the chains in `current` (`[chains, N]`) at step `step`.
    fn propose(&mut self, current: &[u8], step: u64, out: &mut Proposals) -> Result<()>;
    /// Called before the proposals of step `step`: whether the proposal kernel changes at this
    /// step (a kernel chosen by the step alone, never by the chains' states, keeps every step
    /// in detailed balance), so that the chains' `log Pθ` must be recomputed by
    /// [`Proposer::log_q`]. The default never changes.
    fn kernel_changes(&mut self, _step: u64) -> bool {
        false
    }
}

/// A 53-bit uniform in `(0, 1)` from the crate's Philox4x32-10 with `key` and counter
/// `(c0, c1, 0, 0)`.
#[inline]
pub fn keyed_uniform(key: u32, c0: u32, c1: u32) -> f64 {
    let [a, b, _, _] = philox4x32_10([c0, c1, 0, 0], [key, 0]);
    let bits = ((a as u64) << 21) | (b as u64 >> 11);
    (bits as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
}

/// A 32-bit key for one purpose (`tag`) of a 64-bit seed.
pub fn derive_key(seed: u64, tag: u32) -> u32 {
    philox4x32_10([tag, 0, 0, 0], [seed as u32, (seed >> 32) as u32])[0]
}

const TAG_BLOCK: u32 = 1;
const TAG_NOISE: u32 = 2;
const TAG_DENOISE: u32 = 3;

/// Most samples of one GPU block of independent proposals.
const BLOCK_SAMPLES: usize = 1 << 14;

/// Independence ("disconnected") proposals: exact samples of `Pθ`. The proposal of chain `c`
/// at step `t` of a batch of `B` chains is the sample of index `t·B + c` under the key
/// `derive_key(seed, 1)` ([`Environments::sample_scored`], [`GpuMps::sample_from`]): the same
/// on the CPU, on the GPU and in the GPU chains ([`super::GpuChains`]).
pub struct IndependentProposer<'a> {
    mps: &'a Mps,
    env: Environments,
    gpu: Option<(&'a GpuContext, GpuMps)>,
    key: u32,
    block: ProposalBlock,
}

/// Independence proposals drawn ahead, a block of steps at a time: the states and `log Pθ` of
/// steps `first .. first + steps` for `chains` chains (step-major). Their proposals do not
/// depend on the chains' states, so a sampler can draw many steps in one pass.
#[derive(Clone, Debug, Default)]
pub(crate) struct ProposalBlock {
    states: Vec<u8>,
    log_q: Vec<f64>,
    first: u64,
    steps: u64,
    chains: usize,
}

impl ProposalBlock {
    /// The proposals of step `step` for `chains` chains of `n` sites, drawing a new block with
    /// `draw(first, chains) -> (steps, states, log_q)` when the step lies outside the buffer.
    pub(crate) fn step(
        &mut self,
        step: u64,
        chains: usize,
        n: usize,
        draw: impl FnOnce(u64, usize) -> Result<(usize, Vec<u8>, Vec<f64>)>,
    ) -> Result<(&[u8], &[f64])> {
        let inside = self.chains == chains && step >= self.first && step < self.first + self.steps;
        if !inside {
            let (steps, states, log_q) = draw(step, chains)?;
            *self = Self {
                states,
                log_q,
                first: step,
                steps: steps as u64,
                chains,
            };
        }
        let row = (step - self.first) as usize * chains;
        Ok((
            &self.states[row * n..(row + chains) * n],
            &self.log_q[row..row + chains],
        ))
    }
}

impl<'a> IndependentProposer<'a> {
    /// Proposals from `mps` (non-negative); with `gpu`, drawn and scored by the WGSL sampler
    /// (f32 log-probabilities) in blocks of steps, else by the CPU reference (f64) step by step.
    pub fn new(mps: &'a Mps, gpu: Option<&'a GpuContext>, seed: u64) -> Result<Self> {
        let env = Environments::new(mps)?;
        if !mps.is_nonnegative() {
            return Err(Error::InvalidArgument(
                "proposals need an MPS with non-negative entries".into(),
            ));
        }
        let gpu = match gpu {
            Some(ctx) => Some((ctx, GpuMps::with_environments(ctx, mps, &env)?)),
            None => None,
        };
        Ok(Self {
            mps,
            env,
            gpu,
            key: proposal_key(seed),
            block: ProposalBlock::default(),
        })
    }

    /// The states and `log Pθ` of the proposals of steps `first .. first + steps` for `chains`
    /// chains (step-major), identical on the CPU and the GPU.
    pub fn draw_steps(
        &self,
        first: u64,
        steps: usize,
        chains: usize,
    ) -> Result<(Vec<u8>, Vec<f64>)> {
        draw_independent(
            self.mps, &self.env, &self.gpu, self.key, first, steps, chains,
        )
    }
}

/// [`IndependentProposer::draw_steps`] from the proposer's parts.
fn draw_independent(
    mps: &Mps,
    env: &Environments,
    gpu: &Option<(&GpuContext, GpuMps)>,
    key: u32,
    first: u64,
    steps: usize,
    chains: usize,
) -> Result<(Vec<u8>, Vec<f64>)> {
    let rows = steps
        .checked_mul(chains)
        .ok_or_else(|| Error::Limit(format!("{steps} steps of {chains} proposals overflow")))?;
    let index = first.wrapping_mul(chains as u64);
    match gpu {
        Some((ctx, g)) => g.sample_from(ctx, index, rows, key),
        None => env.sample_scored(mps, index, rows, key, 0),
    }
}

/// The Philox key of the independent proposals of a run seeded `seed`.
pub(crate) fn proposal_key(seed: u64) -> u32 {
    derive_key(seed, TAG_BLOCK)
}

impl Proposer for IndependentProposer<'_> {
    fn name(&self) -> &'static str {
        "disconnected"
    }
    fn log_q(&mut self, xs: &[u8]) -> Result<Vec<f64>> {
        match &self.gpu {
            Some((ctx, g)) => g.log_prob(ctx, xs),
            None => self.env.log_prob(self.mps, xs),
        }
    }
    fn propose(&mut self, current: &[u8], step: u64, out: &mut Proposals) -> Result<()> {
        let n = self.mps.len();
        let chains = current.len() / n;
        let (mps, env, gpu, key) = (self.mps, &self.env, &self.gpu, self.key);
        // The CPU draws step by step; the GPU a block of steps per dispatch.
        let steps = match gpu {
            Some(_) => (BLOCK_SAMPLES / chains.max(1)).clamp(1, 64),
            None => 1,
        };
        let (states, log_q) = self.block.step(step, chains, n, |first, chains| {
            let (xs, lq) = draw_independent(mps, env, gpu, key, first, steps, chains)?;
            Ok((steps, xs, lq))
        })?;
        out.states.clear();
        out.states.extend_from_slice(states);
        out.log_q.clear();
        out.log_q.extend_from_slice(log_q);
        Ok(())
    }
}

/// Connected proposals: flip noise for time `T` (rate 1), then exact denoising by `Pθ`.
pub struct ConnectedProposer<'a> {
    mps: &'a Mps,
    env: Environments,
    cond: Environments,
    factors: Vec<f64>,
    log_factors: Vec<f64>,
    flip: f64,
    noise_key: u32,
    denoise_key: u32,
}

impl<'a> ConnectedProposer<'a> {
    /// Proposals from `mps` (two states per site, non-negative) with noise time `t > 0`
    /// (flip probability `(1 − e^{−2t})/2` per site).
    pub fn new(mps: &'a Mps, t: f64, seed: u64) -> Result<Self> {
        if mps.d() != 2 {
            return Err(Error::InvalidArgument(format!(
                "connected proposals use the two-state flip channel; this model has {} states",
                mps.d()
            )));
        }
        if !(t.is_finite() && t > 0.0) {
            return Err(Error::InvalidArgument(format!(
                "the noise time of connected proposals must be finite and > 0, got {t}"
            )));
        }
        if !mps.is_nonnegative() {
            return Err(Error::InvalidArgument(
                "proposals need an MPS with non-negative entries".into(),
            ));
        }
        let k = flip_kernel(1.0, t)?;
        Ok(Self {
            mps,
            env: Environments::new(mps)?,
            cond: Environments::default(),
            factors: vec![0.0; 2 * mps.len()],
            log_factors: vec![0.0; 2 * mps.len()],
            flip: k[1],
            noise_key: derive_key(seed, TAG_NOISE),
            denoise_key: derive_key(seed, TAG_DENOISE),
        })
    }

    /// The flip probability per site.
    pub fn flip_probability(&self) -> f64 {
        self.flip
    }
}

impl Proposer for ConnectedProposer<'_> {
    fn name(&self) -> &'static str {
        "connected"
    }
    fn log_q(&mut self, xs: &[u8]) -> Result<Vec<f64>> {
        self.env.log_prob(self.mps, xs)
    }
    fn propose(&mut self, current: &[u8], step: u64, out: &mut Proposals) -> Result<()> {
        let n = self.mps.len();
        let chains = current.len() / n;
        out.states.clear();
        out.states.resize(current.len(), 0);
        out.log_q.clear();
        let (a, b) = (1.0 - self.flip, self.flip);
        let (la, lb) = (a.ln(), b.ln());
        let step = step as u32;
        for c in 0..chains {
            let x = &current[c * n..(c + 1) * n];
            let base = (c * n) as u32;
            // y_k = x_k flipped with probability b; the factors are K_T(y_k | s).
            for (k, &xk) in x.iter().enumerate() {
                let u = keyed_uniform(self.noise_key, step, base.wrapping_add(k as u32));
                let yk = if u < b { 1 - xk } else { xk } as usize;
                for s in 0..2 {
                    let same = s == yk;
                    self.factors[2 * k + s] = if same { a } else { b };
                    self.log_factors[2 * k + s] = if same { la } else { lb };
                }
            }
            self.cond.recompute(self.mps, Some(&self.factors))?;
            let xp = &mut out.states[c * n..(c + 1) * n];
            let key = self.denoise_key;
            let lp_cond = self.cond.sample_with(self.mps, xp, |k| {
                keyed_uniform(key, step, base.wrapping_add(k as u32))
            })?;
            let log_k: f64 = xp
                .iter()
                .enumerate()
                .map(|(k, &s)| self.log_factors[2 * k + s as usize])
                .sum();
            out.log_q
                .push(lp_cond + self.cond.log_z - self.env.log_z - log_k);
        }
        Ok(())
    }
}
