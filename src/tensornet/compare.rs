//! The paper's kind of comparison on the `L × L` Ising model: over a list of inverse
//! temperatures, local single-spin Metropolis against Metropolis–Hastings with disconnected and
//! connected proposals from an MPS learned by the learn–propose–accept loop, with acceptance,
//! integrated autocorrelation times and effective samples per second of `E/N` and `|m|`;
//! optionally ([`CompareOptions::column`]) also independence proposals from the exact column
//! MPS of the lattice's cylinder part ([`super::ColumnProposer`]): the target's own law on a
//! cylinder, a learned proposal ([`super::ColumnModel`]) with a moving cut on a torus.
//!
//! The temperatures are visited in the given order; the model and the chains of one are the
//! starting point of the next (annealing), the first model is a near-uniform product. At each
//! temperature the three samplers start from the same equilibrated states; the learning time is
//! reported separately from the sampling times.

use std::time::Instant;

use super::chains::{check_run_size, run_local, run_mh, ChainTrace, Chains, CpuAccept, RunOptions};
use super::column::{check_column_size, ColumnModel, ColumnProposer};
use super::fit::FitOptions;
use super::fit::MpsModel;
use super::learn::{run_disconnected, summarise, LearnOptions, Learner, RoundReport};
use super::models::{
    enumerate_ising, ising_transfer, kaufman_torus, Boundary, IsingExact, IsingLattice,
};
use super::proposal::{ConnectedProposer, Proposer};
use super::stats::Estimate;
use super::target::{onsager_energy, onsager_magnetisation, IsingModel, LogWeight};
use crate::error::{Error, Result};
use crate::gpu::GpuContext;

/// Perfect samples of the column model per fit step (its side of the statistics).
const COLUMN_FIT_SAMPLES: usize = 4096;
/// Adam rate of the column model's fit (on `βJ`, `βh`).
const COLUMN_FIT_LR: f64 = 0.02;

/// Steps between moves of the column proposal's cut on a torus ([`ColumnProposer::rotating`]):
/// each move costs one `log Pθ` pass over the chains, and at 16 × 16 near β_c moving every 64
/// steps gave the most effective samples per second of 1, 4, 16 and 64.
const COLUMN_ROTATE_EVERY: usize = 64;

/// Metropolis states kept per temperature to measure the model's NLL.
const MODEL_NLL_SAMPLES: usize = 4096;

/// Options of [`compare`].
#[derive(Clone, Debug)]
pub struct CompareOptions {
    /// Linear size `L` (`L × L` spins).
    pub l: usize,
    /// Boundary conditions.
    pub boundary: Boundary,
    /// Inverse temperatures, visited in order.
    pub betas: Vec<f64>,
    /// Bond dimension of the model.
    pub chi: usize,
    /// Learning rounds at each temperature (chains, then fit), with `learn` as options; its
    /// `chains` is the number of chains of every sampler.
    pub rounds: usize,
    /// Options of the learning rounds.
    pub learn: LearnOptions,
    /// Recorded Metropolis sweeps per chain.
    pub sweeps: usize,
    /// Recorded MPS-proposal steps per chain (each sampler).
    pub tn_steps: usize,
    /// Unrecorded steps (sweeps) before each measurement.
    pub burn_in: usize,
    /// Noise time of the connected proposals.
    pub connected_t: f64,
    /// Also run disconnected proposals from the exact column MPS ([`ColumnProposer`]) of the
    /// target's open or cylinder part: the target's own law on those lattices, the cylinder's
    /// law corrected by Metropolis–Hastings on a torus.
    pub column: bool,
    /// Fit steps of the column model after each learning round on a torus (0: propose from
    /// the torus's cylinder part as it is). Open and cylinder lattices need none: there the
    /// column MPS is exact.
    pub column_fit_steps: usize,
    /// Seed.
    pub seed: u64,
}

/// One sampler at one temperature.
#[derive(Clone, Debug)]
pub struct MethodResult {
    /// `"metropolis"`, `"disconnected"`, `"connected"` or `"column MPS"`.
    pub method: &'static str,
    /// Acceptance (per single-spin move for Metropolis, per proposal otherwise).
    pub acceptance: f64,
    /// `E/N` and `|m|`: means, standard errors, `τ_int` (in steps: sweeps for Metropolis).
    pub estimates: [Estimate; 2],
    /// Effective samples per second of `E/N` and `|m|`.
    pub ess_per_second: [f64; 2],
    /// Seconds of the recorded steps.
    pub seconds: f64,
    /// Recorded steps per chain.
    pub steps: usize,
}

/// All samplers at one temperature.
#[derive(Clone, Debug)]
pub struct BetaResult {
    /// Inverse temperature.
    pub beta: f64,
    /// The learning rounds at this temperature.
    pub rounds: Vec<RoundReport>,
    /// Seconds spent learning (chains and fits).
    pub learn_seconds: f64,
    /// Metropolis, disconnected, connected, then column MPS when asked for.
    pub methods: Vec<MethodResult>,
    /// Onsager's infinite-lattice `u(β)` and spontaneous magnetisation.
    pub onsager: (f64, f64),
    /// Exact values by enumeration (at most 20 spins).
    pub exact: Option<IsingExact>,
    /// Exact `(ln Z, ⟨E⟩/N)` of this finite lattice: the transfer contraction (open or
    /// cylinder, `L ≤ 20`) or Kaufman's formula (torus, any `L`).
    pub transfer: Option<(f64, f64)>,
    /// Mean `−log Pθ(x)` of the model over states of the Metropolis chains (nats).
    pub model_nll: f64,
    /// Seconds spent learning the column model (0 when it is exact or not learned).
    pub column_learn_seconds: f64,
    /// `KL(π ‖ Pθ) = ⟨−log Pθ⟩_π − S`, with the exact entropy `S = ln Z + β⟨E⟩` (when the
    /// exact `ln Z` is known): the gap that independence proposals pay for.
    pub model_kl: Option<f64>,
}

impl CompareOptions {
    /// Check every option, sizes and memory included, before any work.
    pub fn validate(&self) -> Result<()> {
        check(self)
    }
}

fn check(o: &CompareOptions) -> Result<()> {
    if o.l < 2 {
        return Err(Error::InvalidArgument(format!(
            "the comparison needs L ≥ 2, got {}",
            o.l
        )));
    }
    if o.betas.is_empty() {
        return Err(Error::InvalidArgument(
            "no inverse temperatures given".into(),
        ));
    }
    if let Some(b) = o.betas.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
        return Err(Error::InvalidArgument(format!(
            "inverse temperatures must be finite and > 0, got {b}"
        )));
    }
    if o.rounds == 0 || o.sweeps < 2 || o.tn_steps < 2 {
        return Err(Error::InvalidArgument(
            "the comparison needs rounds ≥ 1 and at least 2 recorded steps per sampler".into(),
        ));
    }
    let n = o.l.saturating_mul(o.l);
    IsingLattice::new(o.l, o.l, o.boundary)?;
    check_run_size(o.learn.chains, n, o.sweeps.max(o.tn_steps), 0)?;
    o.learn.validate(n)?;
    MpsModel::product(n, 2, o.chi, 0.0, 0)?;
    if o.column {
        let lat = IsingLattice::new(o.l, o.l, o.boundary)?;
        check_column_size(&IsingLattice {
            periodic_x: false,
            ..lat
        })
        .map_err(|e| Error::Limit(format!("column proposals at L = {}: {e}", o.l)))?;
    }
    if !(o.connected_t.is_finite() && o.connected_t > 0.0) {
        return Err(Error::InvalidArgument(format!(
            "the connected noise time must be finite and > 0, got {}",
            o.connected_t
        )));
    }
    Ok(())
}

fn method(name: &'static str, trace: &ChainTrace) -> MethodResult {
    let (estimates, ess_per_second) = summarise(trace);
    MethodResult {
        method: name,
        acceptance: trace.acceptance(),
        estimates,
        ess_per_second,
        seconds: trace.seconds,
        steps: trace.steps,
    }
}

/// Run the comparison; `progress` sees each temperature's result as it is made.
pub fn compare(
    opts: &CompareOptions,
    gpu: Option<&GpuContext>,
    progress: &mut dyn FnMut(&BetaResult),
) -> Result<Vec<BetaResult>> {
    check(opts)?;
    let lat = IsingLattice::new(opts.l, opts.l, opts.boundary)?;
    let n = lat.n();
    let mut model = MpsModel::product(n, 2, opts.chi, 0.05, opts.seed)?;
    let mut states: Option<Vec<u8>> = None;
    let mut out = Vec::with_capacity(opts.betas.len());
    for (bi, &beta) in opts.betas.iter().enumerate() {
        let target = IsingModel::new(lat, beta)?;
        let mut lo = opts.learn.clone();
        lo.seed = opts.seed ^ (bi as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let t0 = Instant::now();
        let mut learner = Learner::new(&target, model, lo.clone())?;
        if let Some(s) = states.take() {
            learner.set_states(s)?;
        }
        let mut rounds = Vec::with_capacity(opts.rounds);
        for _ in 0..opts.rounds {
            rounds.push(learner.round(gpu)?);
        }
        let learn_seconds = t0.elapsed().as_secs_f64();
        let start = learner
            .chains()
            .expect("a round sets the chains")
            .states
            .clone();
        model = learner.model().clone();
        let mps = model.mps()?;
        let run = |steps: usize, salt: u64| RunOptions {
            burn_in: opts.burn_in,
            steps,
            seed: lo.seed ^ salt,
            local_sweeps: 0,
            keep_every: 0,
        };
        let mut methods = Vec::with_capacity(3);
        let mut chains = Chains::new(&target, start.clone())?;
        let keep = (opts.learn.chains * opts.sweeps).div_ceil(MODEL_NLL_SAMPLES);
        let local = RunOptions {
            keep_every: keep.clamp(1, opts.sweeps),
            ..run(opts.sweeps, 1)
        };
        let tr = run_local(&target, &mut chains, &local)?;
        let lq = mps.log_prob(&tr.kept)?;
        let model_nll = -lq.iter().sum::<f64>() / lq.len().max(1) as f64;
        methods.push(method("metropolis", &tr));
        let mut chains = Chains::new(&target, start.clone())?;
        let tr = run_disconnected(&target, &mps, gpu, &mut chains, &run(opts.tn_steps, 2))?;
        methods.push(method("disconnected", &tr));
        // Metropolis–Hastings with `prop` from the equilibrated states: the trace and the
        // final states.
        let mh_from_start = |prop: &mut dyn Proposer, salt: u64| -> Result<(ChainTrace, Vec<u8>)> {
            let mut chains = Chains::new(&target, start.clone())?;
            let tr = run_mh(
                &target,
                prop,
                &mut chains,
                &run(opts.tn_steps, salt),
                &CpuAccept,
            )?;
            Ok((tr, chains.states))
        };
        let mut prop = ConnectedProposer::new(&mps, opts.connected_t, lo.seed ^ 3)?;
        let (tr, last) = mh_from_start(&mut prop, 3)?;
        methods.push(method("connected", &tr));
        states = Some(last);
        let mut column_learn_seconds = 0.0;
        if opts.column {
            let t0 = Instant::now();
            let proposal = learn_column(&target, opts, gpu, &start, lo.seed ^ 5)?;
            column_learn_seconds = t0.elapsed().as_secs_f64();
            let mut prop = ColumnProposer::new(&proposal, gpu, lo.seed ^ 4)?;
            if target.lattice().periodic_x {
                prop = prop.rotating(COLUMN_ROTATE_EVERY);
            }
            let (tr, _) = mh_from_start(&mut prop, 4)?;
            methods.push(method("column MPS", &tr));
        }
        let exact = if n <= 20 {
            Some(enumerate_ising(&lat, beta)?)
        } else {
            None
        };
        let transfer = if lat.periodic_x && lat.periodic_y {
            Some(kaufman_torus(&lat, beta)?)
        } else if lat.periodic_x || opts.l > 20 {
            None
        } else {
            Some(ising_transfer(&lat, beta)?)
        };
        let model_kl = transfer.map(|(lz, u)| model_nll - (lz + beta * u * n as f64));
        let r = BetaResult {
            beta,
            rounds,
            learn_seconds,
            methods,
            onsager: (onsager_energy(beta), onsager_magnetisation(beta)),
            exact,
            transfer,
            model_nll,
            column_learn_seconds,
            model_kl,
        };
        progress(&r);
        out.push(r);
    }
    Ok(out)
}

/// The column proposal model of `target`: its cylinder part, exact on open and cylinder
/// lattices; on a torus refitted after each of `opts.rounds` rounds of chains (from `start`)
/// that propose from the current model, with the learning rounds' local sweeps.
fn learn_column(
    target: &IsingModel,
    opts: &CompareOptions,
    gpu: Option<&GpuContext>,
    start: &[u8],
    seed: u64,
) -> Result<IsingModel> {
    let cyl = target.cylinder_part()?;
    if !target.lattice().periodic_x || opts.column_fit_steps == 0 {
        return Ok(cyl);
    }
    let mut model = ColumnModel::new(&cyl)?;
    let mut states = start.to_vec();
    let lo = &opts.learn;
    for round in 0..opts.rounds {
        let rs = seed ^ (round as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D);
        let mut prop = ColumnProposer::new(model.model(), gpu, rs)?;
        let mut chains = Chains::new(target, states)?;
        let run = RunOptions {
            burn_in: lo.burn_in,
            steps: lo.steps,
            seed: rs,
            local_sweeps: lo.local_sweeps,
            keep_every: lo.keep_every.max(1),
        };
        let tr = run_mh(target, &mut prop, &mut chains, &run, &CpuAccept)?;
        let fit = FitOptions {
            steps: opts.column_fit_steps,
            batch: COLUMN_FIT_SAMPLES,
            lr: COLUMN_FIT_LR,
            flip_augment: target.flip_symmetric(),
            seed: rs,
        };
        model.fit(&tr.kept, &fit)?;
        states = chains.states;
    }
    Ok(model.model().clone())
}
