//! The learn–propose–accept loop: Monte Carlo on an energy with a tensor network as the
//! proposal, the network refitted to the chains' samples after every round.
//!
//! A round runs a batch of chains whose step is one MPS proposal (disconnected or connected)
//! accepted by Metropolis–Hastings against the target's Boltzmann weight, followed by
//! `local_sweeps` local Metropolis sweeps (0 for pure MPS moves; a few help while the proposal
//! is still poor). It reports acceptance, the integrated autocorrelation time of the two
//! observables and effective samples per second, then fits the MPS to the states the chains
//! visited by NLL, continuing from its current parameters. The chains carry over to the next
//! round. The first proposal is cheap: a near-uniform product ([`MpsModel::product`]) or any
//! model the caller builds.

use std::time::Instant;

use super::chains::{check_run_size, run_mh, ChainTrace, Chains, CpuAccept, RunOptions};
use super::fit::{FitOptions, FitReport, MpsModel};
use super::gpu_chains::run_mh_gpu;
use super::proposal::{derive_key, keyed_uniform, ConnectedProposer, IndependentProposer};
use super::sampler::Environments;
use super::stats::{estimate, Estimate};
use super::target::LogWeight;
use super::Mps;
use crate::error::{Error, Result};
use crate::gpu::GpuContext;

/// Which MPS move a chain step makes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ProposalKind {
    /// Fresh exact samples of the model (independence sampler).
    Disconnected,
    /// Flip noise for time `t`, then exact denoising by the model.
    Connected {
        /// Noise time (flip rate 1).
        t: f64,
    },
}

/// Options of [`Learner`].
#[derive(Clone, Debug)]
pub struct LearnOptions {
    /// Number of chains.
    pub chains: usize,
    /// Unrecorded steps at the start of each round.
    pub burn_in: usize,
    /// Recorded steps per round.
    pub steps: usize,
    /// Local Metropolis sweeps after each MPS move.
    pub local_sweeps: usize,
    /// Keep every `keep_every`-th recorded state of each chain as training data.
    pub keep_every: usize,
    /// The MPS move.
    pub proposal: ProposalKind,
    /// The fit after each round (`steps = 0` skips it).
    pub fit: FitOptions,
    /// Train on globally flipped copies too when the target is flip-symmetric.
    pub symmetrise: bool,
    /// Seed of the chains.
    pub seed: u64,
}

impl Default for LearnOptions {
    fn default() -> Self {
        Self {
            chains: 64,
            burn_in: 50,
            steps: 400,
            local_sweeps: 1,
            keep_every: 2,
            proposal: ProposalKind::Disconnected,
            fit: FitOptions::default(),
            symmetrise: true,
            seed: 1,
        }
    }
}

/// One round of the loop.
#[derive(Clone, Debug)]
pub struct RoundReport {
    /// Round number (0-based).
    pub round: usize,
    /// Fraction of MPS proposals accepted.
    pub acceptance: f64,
    /// Mean, standard error and `τ_int` of the target's two observables.
    pub estimates: [Estimate; 2],
    /// Effective samples per second of each observable (chain time only).
    pub ess_per_second: [f64; 2],
    /// Seconds of the recorded chain steps.
    pub seconds_mcmc: f64,
    /// The fit after the chains (None when fitting is off).
    pub fit: Option<FitReport>,
    /// Seconds of the fit.
    pub seconds_fit: f64,
}

/// Summarise a chain trace: estimates, effective samples per second.
pub fn summarise(trace: &ChainTrace) -> ([Estimate; 2], [f64; 2]) {
    let e = [
        estimate(&trace.obs[0], trace.chains),
        estimate(&trace.obs[1], trace.chains),
    ];
    let per_s = |x: &Estimate| x.effective_samples() / trace.seconds.max(1e-12);
    (e, [per_s(&e[0]), per_s(&e[1])])
}

/// The learning loop's state: target, model, chains.
pub struct Learner<'a> {
    target: &'a dyn LogWeight,
    model: MpsModel,
    chains: Option<Chains>,
    round: usize,
    opts: LearnOptions,
}

/// Most tries per chain to draw a start state of positive target weight from the model.
const START_TRIES: usize = 10_000;

/// Most kept training states (`kept · N` bytes).
const MAX_KEPT_BYTES: usize = 1 << 30;

fn check_options(target: &dyn LogWeight, model: &MpsModel, o: &LearnOptions) -> Result<()> {
    if model.n_sites() != target.n_sites() || model.d() != target.d() {
        return Err(Error::Shape(format!(
            "the model has {} sites of {} states, the target {} of {}",
            model.n_sites(),
            model.d(),
            target.n_sites(),
            target.d()
        )));
    }
    o.validate(target.n_sites())
}

impl LearnOptions {
    /// Check the options for a target of `n_sites` sites: counts, the noise time, and the
    /// memory of chains, traces, kept states and minibatches — before any work.
    pub fn validate(&self, n_sites: usize) -> Result<()> {
        let (o, n) = (self, n_sites);
        if o.chains == 0 || o.steps == 0 {
            return Err(Error::InvalidArgument(
                "learning needs at least one chain and one step per round".into(),
            ));
        }
        check_run_size(o.chains, n, o.steps, o.keep_every)?;
        if o.chains.saturating_mul(n) > MAX_KEPT_BYTES
            || o.fit.batch.saturating_mul(n) > MAX_KEPT_BYTES
        {
            return Err(Error::Limit(format!(
                "{} chains or a batch of {} of {n} sites exceed {MAX_KEPT_BYTES} bytes",
                o.chains, o.fit.batch
            )));
        }
        if let ProposalKind::Connected { t } = o.proposal {
            if !(t.is_finite() && t > 0.0) {
                return Err(Error::InvalidArgument(format!(
                    "the noise time of connected proposals must be finite and > 0, got {t}"
                )));
            }
        }
        let kept = o
            .steps
            .checked_div(o.keep_every)
            .map_or(0, |k| o.chains.saturating_mul(k));
        if o.fit.steps > 0 && kept == 0 {
            return Err(Error::InvalidArgument(
                "fitting needs kept states: keep_every must be in 1..=steps".into(),
            ));
        }
        if kept.saturating_mul(n) > MAX_KEPT_BYTES {
            return Err(Error::Limit(format!(
                "{kept} kept states of {n} sites exceed {MAX_KEPT_BYTES} bytes; raise keep_every"
            )));
        }
        Ok(())
    }
}

impl<'a> Learner<'a> {
    /// A loop on `target` starting from `model`.
    pub fn new(target: &'a dyn LogWeight, model: MpsModel, opts: LearnOptions) -> Result<Self> {
        check_options(target, &model, &opts)?;
        Ok(Self {
            target,
            model,
            chains: None,
            round: 0,
            opts,
        })
    }

    /// The current model.
    pub fn model(&self) -> &MpsModel {
        &self.model
    }
    /// The chains (after the first round).
    pub fn chains(&self) -> Option<&Chains> {
        self.chains.as_ref()
    }
    /// Replace the chains' states (e.g. carried over from a neighbouring temperature).
    pub fn set_states(&mut self, states: Vec<u8>) -> Result<()> {
        self.chains = Some(Chains::new(self.target, states)?);
        Ok(())
    }
    /// The options.
    pub fn options(&self) -> &LearnOptions {
        &self.opts
    }
    /// Change the options for the next rounds.
    pub fn set_options(&mut self, opts: LearnOptions) -> Result<()> {
        check_options(self.target, &self.model, &opts)?;
        self.opts = opts;
        Ok(())
    }

    /// Start states: exact samples of the model, redrawn until the target weight is positive.
    fn start_states(&self, mps: &Mps) -> Result<Vec<u8>> {
        let n = self.target.n_sites();
        let env = Environments::new(mps)?;
        let key = derive_key(self.opts.seed, 31);
        let mut out = Vec::with_capacity(self.opts.chains * n);
        let mut x = vec![0u8; n];
        for c in 0..self.opts.chains {
            let mut found = false;
            for tries in 0..START_TRIES {
                let id = (c * START_TRIES + tries) as u32;
                env.sample_with(mps, &mut x, |k| keyed_uniform(key, id, k as u32))?;
                let lw = self.target.log_weight(&x);
                if lw.is_finite() {
                    found = true;
                    break;
                }
            }
            if !found {
                return Err(Error::InvalidArgument(format!(
                    "{START_TRIES} samples of the model all have zero target weight; start from a model \
                     on the target's support (e.g. MpsModel::with_support)"
                )));
            }
            out.extend_from_slice(&x);
        }
        Ok(out)
    }

    /// Run one round: chains with the current model as proposal, then the fit. With `gpu`,
    /// disconnected chains run on the GPU ([`run_disconnected`]).
    pub fn round(&mut self, gpu: Option<&GpuContext>) -> Result<RoundReport> {
        let mps = self.model.mps()?;
        if self.chains.is_none() {
            let states = self.start_states(&mps)?;
            self.chains = Some(Chains::new(self.target, states)?);
        }
        let seed = self.opts.seed ^ (self.round as u64).wrapping_mul(0xA24B_AED4_963E_E407);
        let run = RunOptions {
            burn_in: self.opts.burn_in,
            steps: self.opts.steps,
            seed,
            local_sweeps: self.opts.local_sweeps,
            keep_every: self.opts.keep_every,
        };
        let chains = self.chains.as_mut().expect("chains were set above");
        let trace = match self.opts.proposal {
            ProposalKind::Disconnected => run_disconnected(self.target, &mps, gpu, chains, &run)?,
            ProposalKind::Connected { t } => {
                let mut p = ConnectedProposer::new(&mps, t, seed)?;
                run_mh(self.target, &mut p, chains, &run, &CpuAccept)?
            }
        };
        let (estimates, ess_per_second) = summarise(&trace);
        let t0 = Instant::now();
        let fit = if self.opts.fit.steps > 0 {
            let mut fo = self.opts.fit.clone();
            fo.flip_augment = self.opts.symmetrise && self.target.flip_symmetric();
            fo.seed ^= seed;
            Some(self.model.fit(&trace.kept, &fo)?)
        } else {
            None
        };
        let report = RoundReport {
            round: self.round,
            acceptance: trace.acceptance(),
            estimates,
            ess_per_second,
            seconds_mcmc: trace.seconds,
            fit,
            seconds_fit: t0.elapsed().as_secs_f64(),
        };
        self.round += 1;
        Ok(report)
    }
}

/// Whether [`run_disconnected`] runs whole chains on the GPU for `target` (given a GPU): for
/// targets with an [`EnergyForm`](super::EnergyForm), not for a table.
pub fn chains_on_gpu(target: &dyn LogWeight) -> bool {
    target.energy_form().is_some()
}

/// Metropolis–Hastings with disconnected proposals from `mps` (seeded `run.seed`): with `gpu`
/// and a target of [`chains_on_gpu`], every step on the GPU ([`run_mh_gpu`]); with `gpu` and a
/// table target, proposals drawn on the GPU and accepted on the CPU; else all on the CPU. The
/// three draw the same random numbers.
pub fn run_disconnected(
    target: &dyn LogWeight,
    mps: &Mps,
    gpu: Option<&GpuContext>,
    chains: &mut Chains,
    run: &RunOptions,
) -> Result<ChainTrace> {
    match gpu {
        Some(ctx) if chains_on_gpu(target) => run_mh_gpu(ctx, target, mps, chains, run),
        _ => {
            let mut p = IndependentProposer::new(mps, gpu, run.seed)?;
            run_mh(target, &mut p, chains, run, &CpuAccept)
        }
    }
}

/// Run `rounds` rounds of the loop; `on_round` sees each report as it is made. Returns the
/// fitted model and the reports.
pub fn learn(
    target: &dyn LogWeight,
    model: MpsModel,
    opts: &LearnOptions,
    rounds: usize,
    gpu: Option<&GpuContext>,
    on_round: &mut dyn FnMut(&RoundReport),
) -> Result<(MpsModel, Vec<RoundReport>)> {
    if rounds == 0 {
        return Err(Error::InvalidArgument("learning needs rounds ≥ 1".into()));
    }
    let mut l = Learner::new(target, model, opts.clone())?;
    let mut reports = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let r = l.round(gpu)?;
        on_round(&r);
        reports.push(r);
    }
    Ok((l.model, reports))
}
