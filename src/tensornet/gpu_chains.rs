//! Metropolis–Hastings chains on the GPU: every step of every chain — an exact sample of the
//! model as the proposal with its `log Pθ` (`shaders/tensornet.wgsl`), the target's energy of
//! the proposals, the accept step, local sweeps and the recording of observables
//! (`shaders/tn_chains.wgsl`) — is one [`Recorder`] replayed once per step. The step number
//! lives in a counter buffer that the last dispatch of a step advances, so replays need no host
//! writes; the host reads back only the observables and kept states, once per trace buffer of
//! recorded steps.
//!
//! The chains draw exactly the random numbers of the CPU path — [`run_mh`](super::run_mh) with
//! [`IndependentProposer`](super::IndependentProposer)`::new(model, None, opts.seed)` and
//! [`CpuAccept`](super::CpuAccept) — so the two agree step for step within float tolerance:
//! the GPU computes in f32 and the CPU in f64, and a chain's step differs only where the
//! accept ratio lies within rounding of its uniform, or a sampler uniform within rounding of a
//! conditional's threshold.

use std::time::Instant;

use super::chains::{check_run, run_keys, ChainTrace, Chains, RunOptions};
use super::energy::GpuTarget;
use super::gpu::{to_logp, Draw};
use super::proposal::proposal_key;
use super::target::LogWeight;
use super::{GpuMps, Mps};
use crate::error::{Error, Result};
use crate::gpu::{lib, GpuContext, GpuTensor, KernelDef, Recorder, ShaderDef, Work};

/// `shaders/tn_chains.wgsl` with the grid and Philox preludes.
pub static SHADER: ShaderDef = ShaderDef::new(
    "tn_chains",
    &[
        lib::GRID,
        lib::PHILOX,
        include_str!("../../shaders/tn_chains.wgsl"),
    ],
)
.slots(&[
    "ctr", "states", "prop", "cw", "pw", "lq", "plq", "acc", "tgt_u", "tgt_f", "trace", "kept",
    "x", "e",
]);

/// `(E, log w, obs0, obs1)` of a batch of configurations.
pub static ENERGY: KernelDef = KernelDef::new(&SHADER, "energy", &["x", "e", "tgt_u", "tgt_f"])
    .params::<ChainParams>()
    .workgroup(64);
/// The Metropolis–Hastings accept step of every chain.
pub static ACCEPT: KernelDef = KernelDef::new(
    &SHADER,
    "accept",
    &["ctr", "states", "prop", "cw", "pw", "lq", "plq", "acc"],
)
.params::<ChainParams>()
.workgroup(64);
/// One local Metropolis sweep of every Ising chain.
pub static LOCAL: KernelDef =
    KernelDef::new(&SHADER, "local", &["ctr", "states", "tgt_u", "tgt_f"])
        .params::<ChainParams>()
        .workgroup(64);
/// Observables and kept states of a recorded step.
pub static RECORD: KernelDef =
    KernelDef::new(&SHADER, "record", &["ctr", "states", "cw", "trace", "kept"])
        .params::<ChainParams>()
        .workgroup(64);
/// Advance the step counters.
pub static ADVANCE: KernelDef = KernelDef::new(&SHADER, "advance", &["ctr"])
    .params::<ChainParams>()
    .workgroup(1);

/// Every kernel of the family.
pub fn kernels() -> Vec<&'static KernelDef> {
    vec![&ENERGY, &ACCEPT, &LOCAL, &RECORD, &ADVANCE]
}

crate::gpu_params! {
    /// Parameters of the chain kernels.
    pub struct ChainParams {
        /// Sites per chain.
        pub n_sites: u32,
        /// Chains (or configurations of `energy`).
        pub chains: u32,
        /// 0: Ising, 1: Fredkin.
        pub kind: u32,
        /// Philox key of the kernel's draws.
        pub key: u32,
        /// `β` of `−βE`.
        pub beta: f32,
        /// Local sweep within the step.
        pub sweep: u32,
        /// Recorded steps per trace buffer.
        pub slots: u32,
        /// Keep every k-th recorded state (0: none).
        pub keep_every: u32,
        /// Neighbour entries of an Ising target.
        pub n_edges: u32,
        /// `advance`: also count a recorded step.
        pub recorded: u32,
        /// Padding.
        pub _p0: u32,
        /// Padding.
        pub _p1: u32,
    }
}

/// Most bytes of one trace buffer (observables and kept states of its recorded steps).
const TRACE_BYTES: usize = 1 << 26;

/// A batch of chains resident on the GPU with its model and target.
pub struct GpuChains<'c> {
    ctx: &'c GpuContext,
    target: GpuTarget,
    n: usize,
    chains: usize,
    opts: RunOptions,
    states: GpuTensor<u32>,
    cw: GpuTensor<f32>,
    lq: GpuTensor<f32>,
    acc: GpuTensor<u32>,
    ctr: GpuTensor<u32>,
    /// Steps run so far (the value of `ctr[0]`).
    done: u64,
    /// One step without recording.
    step: Recorder,
    /// Buffers of one step (kept alive with the recording).
    _work: (GpuMps, GpuTensor<u32>, GpuTensor<f32>, GpuTensor<f32>),
}

impl std::fmt::Debug for GpuChains<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuChains")
            .field("n_sites", &self.n)
            .field("chains", &self.chains)
            .finish()
    }
}

impl<'c> GpuChains<'c> {
    /// Upload `chains` (on `target`, with the disconnected proposals of `model`) and record
    /// one step: `opts.seed` keys every random number, `opts.local_sweeps` local sweeps follow
    /// each proposal. Checks sizes, the target's GPU form (Ising with `β > 0`, Fredkin) and the
    /// model before any work.
    pub fn new(
        ctx: &'c GpuContext,
        target: &dyn LogWeight,
        model: &Mps,
        chains: &Chains,
        opts: &RunOptions,
    ) -> Result<Self> {
        check_run(target, chains, opts)?;
        let (n, b) = (chains.n_sites(), chains.len());
        let gt = GpuTarget::new(ctx, target)?;
        if model.len() != n || model.d() != target.d() {
            return Err(Error::Shape(format!(
                "a model of {} sites and {} states for a target of {n} and {}",
                model.len(),
                model.d(),
                target.d()
            )));
        }
        let total = opts.burn_in.checked_add(opts.steps);
        if total.is_none_or(|t| t > u32::MAX as usize) {
            return Err(Error::Limit(
                "more than 2^32 steps in one GPU chain run".into(),
            ));
        }
        Self::check_size(ctx, b, n)?;
        let mps = GpuMps::new(ctx, model)?;
        let data: Vec<u32> = chains.states.iter().map(|&v| v as u32).collect();
        let states = GpuTensor::from_slice(ctx, &data, &[b, n])?;
        let prop = GpuTensor::<u32>::zeros(ctx, &[b, n])?;
        let cw = GpuTensor::<f32>::zeros(ctx, &[b, 4])?;
        let pw = GpuTensor::<f32>::zeros(ctx, &[b, 4])?;
        let lq = GpuTensor::<f32>::zeros(ctx, &[b])?;
        let plq = GpuTensor::<f32>::zeros(ctx, &[b])?;
        let acc = GpuTensor::<u32>::zeros(ctx, &[b])?;
        let ctr = GpuTensor::<u32>::zeros(ctx, &[4])?;
        let score = Draw {
            mode: 1,
            ..Default::default()
        };
        // The current states' log-weights and model log-probabilities.
        let mut init = Recorder::new();
        gt.record_energy(ctx, &mut init, &states, &cw, b)?;
        mps.record(ctx, &mut init, &states, &lq, b, score, None)?;
        init.run(ctx)?;
        let (accept_key, local_key) = run_keys(opts.seed);
        let p = gt.params(b);
        let draw = Draw {
            stride: b as u32,
            seed: proposal_key(opts.seed),
            ..Default::default()
        };
        let mut step = Recorder::new();
        mps.record(ctx, &mut step, &prop, &plq, b, draw, Some(&ctr))?;
        gt.record_energy(ctx, &mut step, &prop, &pw, b)?;
        let args = [
            (&ctr).into(),
            (&states).into(),
            (&prop).into(),
            (&cw).into(),
            (&pw).into(),
            (&lq).into(),
            (&plq).into(),
            (&acc).into(),
        ];
        let work = Work::Threads(b as u64);
        let pa = ChainParams {
            key: accept_key,
            ..p
        };
        ACCEPT.launch(ctx, &mut step, work, &args, |_| pa)?;
        if opts.local_sweeps > 0 && gt.form.has_local_moves() {
            let args = [
                (&ctr).into(),
                (&states).into(),
                (&gt.tgt_u).into(),
                (&gt.tgt_f).into(),
            ];
            for sweep in 0..opts.local_sweeps {
                let pl = ChainParams {
                    key: local_key,
                    sweep: sweep as u32,
                    ..p
                };
                LOCAL.launch(ctx, &mut step, work, &args, |_| pl)?;
            }
            mps.record(ctx, &mut step, &states, &lq, b, score, None)?;
            gt.record_energy(ctx, &mut step, &states, &cw, b)?;
        }
        Ok(Self {
            ctx,
            target: gt,
            n,
            chains: b,
            opts: opts.clone(),
            states,
            cw,
            lq,
            acc,
            ctr,
            done: 0,
            step,
            _work: (mps, prop, pw, plq),
        })
    }

    /// Refuse `chains` chains of `n_sites` sites whose states do not fit one storage binding
    /// of `ctx` (to check flags before any work).
    pub fn check_size(ctx: &GpuContext, chains: usize, n_sites: usize) -> Result<()> {
        let bytes = (chains as u64)
            .saturating_mul(n_sites as u64)
            .saturating_mul(4);
        if bytes > ctx.max_binding() || chains > u32::MAX as usize / 64 {
            return Err(Error::Limit(format!(
                "{chains} chains of {n_sites} sites need {bytes} bytes of states on the GPU; one \
                 storage binding holds {}",
                ctx.max_binding()
            )));
        }
        Ok(())
    }

    fn advance(&self, rec: &mut Recorder, recorded: bool) -> Result<()> {
        let p = ChainParams {
            recorded: recorded as u32,
            ..self.target.params(self.chains)
        };
        ADVANCE.launch(self.ctx, rec, Work::Groups(1), &[(&self.ctr).into()], |_| p)
    }

    /// Run `steps` unrecorded steps (one submission each, no read-back).
    pub fn run_steps(&mut self, steps: usize) -> Result<()> {
        let mut rec = self.step.clone();
        self.advance(&mut rec, false)?;
        for _ in 0..steps {
            rec.submit(self.ctx)?;
        }
        self.done += steps as u64;
        Ok(())
    }

    /// Accepted proposals per chain since the start (or the last [`GpuChains::run`]'s burn-in).
    pub fn accepted(&self) -> Result<Vec<u32>> {
        self.acc.to_vec(self.ctx)
    }

    /// Write the chains' states, `log π̃` and `log Pθ` (f32 on the GPU) into `chains`.
    pub fn download(&self, chains: &mut Chains) -> Result<()> {
        if chains.len() != self.chains || chains.n_sites() != self.n {
            return Err(Error::Shape(format!(
                "{} chains of {} sites cannot hold {} of {}",
                chains.len(),
                chains.n_sites(),
                self.chains,
                self.n
            )));
        }
        let s = self.states.to_vec(self.ctx)?;
        chains
            .states
            .iter_mut()
            .zip(&s)
            .for_each(|(o, &v)| *o = v as u8);
        let cw = self.cw.to_vec(self.ctx)?;
        let lq = self.lq.to_vec(self.ctx)?;
        for c in 0..self.chains {
            chains.log_pi[c] = to_logp(cw[4 * c + 1]);
            chains.log_q[c] = to_logp(lq[c]);
        }
        Ok(())
    }

    /// Recorded steps per trace buffer: a multiple of `keep_every` (when states are kept),
    /// within [`TRACE_BYTES`] where possible.
    fn slots(&self, steps: usize, keep: usize) -> usize {
        let per = 8 * self.chains + (4 * self.chains * self.n).checked_div(keep).unwrap_or(0);
        let s = (TRACE_BYTES / per.max(1)).clamp(1, steps);
        s.checked_div(keep).map_or(s, |k| k.max(1) * keep)
    }

    /// `opts.burn_in` unrecorded then `opts.steps` recorded steps, as [`run_mh`](super::run_mh)
    /// does on the CPU; the observables and kept states are read back once per trace buffer.
    pub fn run(&mut self) -> Result<ChainTrace> {
        let (b, n) = (self.chains, self.n);
        let steps = self.opts.steps;
        let keep = if self.opts.keep_every > steps {
            0
        } else {
            self.opts.keep_every
        };
        self.run_steps(self.opts.burn_in)?;
        let slots = self.slots(steps, keep);
        let kept_rows = slots.checked_div(keep).unwrap_or(0) * b;
        let trace_buf = GpuTensor::<f32>::zeros(self.ctx, &[slots * b * 2])?;
        let kept_buf = GpuTensor::<u32>::zeros(self.ctx, &[kept_rows.max(1) * n])?;
        let mut rec = self.step.clone();
        let p = ChainParams {
            slots: slots as u32,
            keep_every: keep as u32,
            ..self.target.params(b)
        };
        let args = [
            (&self.ctr).into(),
            (&self.states).into(),
            (&self.cw).into(),
            (&trace_buf).into(),
            (&kept_buf).into(),
        ];
        RECORD.launch(self.ctx, &mut rec, Work::Threads(b as u64), &args, |_| p)?;
        self.advance(&mut rec, true)?;
        self.acc.write(self.ctx, &vec![0; b])?;
        self.ctr.write(self.ctx, &[self.done as u32, 0, 0, 0])?;
        self.ctx.wait()?;
        let mut trace = ChainTrace::new(b, steps);
        let t0 = Instant::now();
        let mut done = 0;
        while done < steps {
            let m = slots.min(steps - done);
            for _ in 0..m {
                rec.submit(self.ctx)?;
            }
            let obs = trace_buf.to_vec(self.ctx)?;
            for t in 0..m {
                for c in 0..b {
                    for (i, o) in trace.obs.iter_mut().enumerate() {
                        o[c * steps + done + t] = obs[(t * b + c) * 2 + i] as f64;
                    }
                }
            }
            if let Some(rows) = m.checked_div(keep) {
                let k = kept_buf.to_vec(self.ctx)?;
                trace
                    .kept
                    .extend(k[..rows * b * n].iter().map(|&v| v as u8));
            }
            done += m;
            self.done += m as u64;
        }
        trace.accepted = self.accepted()?.iter().map(|&a| a as usize).sum();
        trace.proposed = b * steps;
        trace.seconds = t0.elapsed().as_secs_f64();
        Ok(trace)
    }
}

/// [`run_mh`](super::run_mh) with disconnected proposals from `model` on the GPU: the chains
/// move on the device and come back in `chains` at the end. The same draws as the CPU path
/// (see the module docs of [`crate::tensornet`]).
pub fn run_mh_gpu(
    ctx: &GpuContext,
    target: &dyn LogWeight,
    model: &Mps,
    chains: &mut Chains,
    opts: &RunOptions,
) -> Result<ChainTrace> {
    let mut g = GpuChains::new(ctx, target, model, chains, opts)?;
    let trace = g.run()?;
    g.download(chains)?;
    Ok(trace)
}
