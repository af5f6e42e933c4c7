//! The smoothed score difference v(x̃) over two sample sets: a tiled GPU kernel (online
//! softmax, no N×M matrix), a naive baseline that materialises the logits, and an f64 CPU
//! reference.
//!
//! σ is read by the kernels from a two-word state buffer (`[step, σ bits]`, see
//! [`sigma_state`]) so that a recorded particle loop can anneal it on the GPU.

use crate::error::{Error, Result};
use crate::gpu::{u32_of, Arg, GpuContext, GpuTensor, KernelDef, Recorder, Work};

use super::SCORE_SHADER;

const PARTIAL: &[&str] = &["queries", "samples", "state", "part_ml", "part_sum"];
/// One split of the tiled pass, any d.
pub static SCORE_PARTIAL: KernelDef = KernelDef::new(&SCORE_SHADER, "score_partial", PARTIAL)
    .params::<ScoreParams>()
    .workgroup(64);
/// One split of the tiled pass, d ≤ 4.
pub static SCORE_PARTIAL4: KernelDef = KernelDef::new(&SCORE_SHADER, "score_partial4", PARTIAL)
    .params::<ScoreParams>()
    .workgroup(64);
/// Merge of the splits into v.
pub static SCORE_COMBINE: KernelDef = KernelDef::new(
    &SCORE_SHADER,
    "score_combine",
    &["state", "t_ml", "t_sum", "s_ml", "s_sum", "out"],
)
.params::<CombineParams>();
/// The naive baseline's logits.
pub static NAIVE_LOGITS: KernelDef = KernelDef::new(
    &SCORE_SHADER,
    "naive_logits",
    &["queries", "samples", "state", "logits"],
)
.params::<NaiveParams>();
/// The naive baseline's softmax and weighted mean.
pub static NAIVE_REDUCE: KernelDef = KernelDef::new(
    &SCORE_SHADER,
    "naive_reduce",
    &["samples", "state", "logits", "out"],
)
.params::<NaiveParams>()
.workgroup(64);

/// Largest supported dimension d. The kernel streams coordinates in chunks of 32 through the
/// same workgroup memory for any d; the bound keeps one 64-sample tile of work per invocation
/// within the loop-iteration cap of software adapters (at d = 512 about 37 000 iterations).
pub const MAX_DIM: usize = 512;

const QUERIES_PER_WG: u32 = 64;

crate::gpu_params! {
    /// Parameters of the tiled partial pass.
    pub struct ScoreParams {
        /// Queries.
        pub n_q: u32,
        /// Samples in the set.
        pub n_set: u32,
        /// Dimension.
        pub d: u32,
        /// 1: leave sample q out for query q.
        pub loo: u32,
        /// Tiles per split.
        pub tps: u32,
        /// Splits.
        pub n_splits: u32,
        /// Query blocks.
        pub n_qblocks: u32,
        /// Workgroups.
        pub n_wg: u32,
    }
}

crate::gpu_params! {
    /// Parameters of the merge.
    pub struct CombineParams {
        /// Queries.
        pub n_q: u32,
        /// Dimension.
        pub d: u32,
        /// Splits of the target set.
        pub splits_t: u32,
        /// Splits of the source set.
        pub splits_s: u32,
    }
}

/// Loop iterations one invocation may run on software adapters (llvmpipe/lavapipe stop a
/// loop after 65 535 iterations per invocation); `None` on hardware.
pub(crate) fn loop_budget(ctx: &GpuContext) -> Option<usize> {
    (ctx.adapter_info().device_type == wgpu::DeviceType::Cpu).then_some(40_000)
}

/// Loop iterations of one invocation of `score_partial` per 64-sample tile.
fn iters_per_tile(d: usize) -> usize {
    let chunks: usize = (0..d.div_ceil(32))
        .map(|c| {
            let kc = (d - 32 * c).min(32);
            32 + kc + 64 * (kc + 1)
        })
        .sum();
    chunks + 3 * 64 + 32 + 65 * d.min(32)
}

crate::gpu_params! {
    /// Parameters of the naive baseline.
    pub struct NaiveParams {
        /// Queries.
        pub n_q: u32,
        /// Samples in the set.
        pub n_set: u32,
        /// Dimension.
        pub d: u32,
        /// 1: exclude the pair (i, i).
        pub loo: u32,
        /// 0: out ← mean; 1: out ← (out − mean)/σ².
        pub mode: u32,
        /// Workgroups.
        pub n_wg: u32,
        /// Padding.
        pub _pad0: u32,
        /// Padding.
        pub _pad1: u32,
    }
}

/// A GPU state buffer `[step = 0, σ bits]` read by the score kernels.
pub fn sigma_state(ctx: &GpuContext, sigma: f32) -> Result<GpuTensor<u32>> {
    check_sigma(sigma)?;
    GpuTensor::from_slice(ctx, &[0u32, sigma.to_bits()], &[2])
}

pub(crate) fn check_sigma(sigma: f32) -> Result<()> {
    if !(sigma.is_finite() && sigma > 0.0) {
        return Err(Error::InvalidArgument(format!(
            "σ must be finite and positive, got {sigma}"
        )));
    }
    Ok(())
}

/// `(n, d)` of a point set of shape `[n, d]`, checked against [`MAX_DIM`] and binding limits.
pub(crate) fn points_shape(ctx: &GpuContext, t: &GpuTensor, what: &str) -> Result<(usize, usize)> {
    let s = t.shape();
    if s.len() != 2 || s[0] == 0 || s[1] == 0 {
        return Err(Error::Shape(format!(
            "{what} must have shape [n, d] with n, d ≥ 1, got {s:?}"
        )));
    }
    check_dim(s[1])?;
    let bytes = t.bytes();
    let max = ctx.max_binding();
    if bytes > max || t.len() > u32::MAX as usize / 2 {
        return Err(Error::Limit(format!(
            "{what} of shape {s:?} needs {bytes} bytes; the adapter binds at most {max} bytes"
        )));
    }
    Ok((s[0], s[1]))
}

pub(crate) fn check_dim(d: usize) -> Result<()> {
    if d == 0 || d > MAX_DIM {
        return Err(Error::Shape(format!(
            "dimension d = {d} is outside the supported range 1..={MAX_DIM}"
        )));
    }
    Ok(())
}

/// The tiled score-difference kernel bound to its buffers, ready to record.
///
/// Computes `out[q] = v(queries[q])` with target samples `target` and source samples
/// `source`, σ read from `state[1]`. With `leave_one_out`, query q is the source particle q
/// and is left out of its own source sum. Each sample set is split into ranges of tiles
/// (one `score_partial` dispatch per set, partial (max, sum, weighted sum) per range) and a
/// `score_combine` dispatch merges them.
pub struct ScoreDiff {
    rec: Recorder,
    _parts: Vec<GpuTensor>,
}

fn check_sets(
    ctx: &GpuContext,
    queries: &GpuTensor,
    target: &GpuTensor,
    source: &GpuTensor,
    out: &GpuTensor,
    leave_one_out: bool,
) -> Result<(usize, usize, usize, usize)> {
    let (nq, d) = points_shape(ctx, queries, "queries")?;
    let (nt, dt) = points_shape(ctx, target, "target samples")?;
    let (ns, ds) = points_shape(ctx, source, "source samples")?;
    if dt != d || ds != d {
        return Err(Error::Shape(format!(
            "dimensions differ: queries d = {d}, target d = {dt}, source d = {ds}"
        )));
    }
    if out.shape() != queries.shape() {
        return Err(Error::Shape(format!(
            "output shape {:?} must equal the queries' shape {:?}",
            out.shape(),
            queries.shape()
        )));
    }
    if leave_one_out && (nq != ns || ns < 2) {
        return Err(Error::InvalidArgument(format!(
            "leave-one-out needs the queries to be the source particles (n_queries = n_source \
             ≥ 2), got n_queries = {nq}, n_source = {ns}"
        )));
    }
    Ok((nq, nt, ns, d))
}

impl ScoreDiff {
    /// Bind the kernels (allocates the per-split partial results).
    pub fn new(
        ctx: &GpuContext,
        queries: &GpuTensor,
        target: &GpuTensor,
        source: &GpuTensor,
        state: &GpuTensor<u32>,
        out: &GpuTensor,
        leave_one_out: bool,
    ) -> Result<Self> {
        let (nq, nt, ns, d) = check_sets(ctx, queries, target, source, out, leave_one_out)?;
        if state.len() < 2 {
            return Err(Error::Shape("the σ state buffer needs 2 words".into()));
        }
        // d ≤ 4: the vec4 variant (same bindings), no per-invocation arrays.
        let small = d <= 4;
        let kernel = if small {
            &SCORE_PARTIAL4
        } else {
            &SCORE_PARTIAL
        };
        let budget = loop_budget(ctx);
        let n_qblocks = nq.div_ceil(QUERIES_PER_WG as usize);
        let nch = d.div_ceil(32);
        let max_bind = ctx.max_binding();
        let mut rec = Recorder::new();
        let mut parts = Vec::new();
        let mut splits = [0usize; 2];
        for (si, (set, n_set, loo)) in [(target, nt, false), (source, ns, leave_one_out)]
            .into_iter()
            .enumerate()
        {
            let ntiles = n_set.div_ceil(64);
            let per_tile = if small { 2 * 64 + 2 } else { iters_per_tile(d) };
            let tps = match budget {
                Some(b) => (b / per_tile).max(1),
                None => ntiles.div_ceil(8).max(16),
            }
            .min(ntiles);
            let n_splits = ntiles.div_ceil(tps);
            let sum_bytes = (n_splits * nq * d * 4) as u64;
            if sum_bytes > max_bind {
                return Err(Error::Limit(format!(
                    "{n_splits} partial sums of {nq}×{d} need {sum_bytes} bytes; the adapter \
                     binds at most {max_bind}: use fewer queries per call"
                )));
            }
            let n_wg = u32_of(n_qblocks * nch * n_splits, "score workgroups")?;
            let ml = GpuTensor::zeros(ctx, &[n_splits, nq, 2])?;
            let sum = GpuTensor::zeros(ctx, &[n_splits, nq, d])?;
            let p = ScoreParams {
                n_q: nq as u32,
                n_set: n_set as u32,
                d: d as u32,
                loo: loo as u32,
                tps: tps as u32,
                n_splits: n_splits as u32,
                n_qblocks: n_qblocks as u32,
                n_wg,
            };
            let args = [
                queries.into(),
                set.into(),
                state.into(),
                (&ml).into(),
                (&sum).into(),
            ];
            kernel.launch(ctx, &mut rec, Work::Groups(n_wg as u64), &args, |_| p)?;
            parts.push(ml);
            parts.push(sum);
            splits[si] = n_splits;
        }
        let p = CombineParams {
            n_q: nq as u32,
            d: d as u32,
            splits_t: splits[0] as u32,
            splits_s: splits[1] as u32,
        };
        let mut args: Vec<Arg> = vec![state.into()];
        args.extend(parts.iter().map(Arg::from));
        args.push(out.into());
        let work = Work::Threads((nq * d) as u64);
        SCORE_COMBINE.launch(ctx, &mut rec, work, &args, |_| p)?;
        Ok(Self { rec, _parts: parts })
    }

    /// Append the dispatches (two partial passes and the combine) to `rec`.
    pub fn record(&self, rec: &mut Recorder) {
        rec.extend(&self.rec);
    }
}

/// The naive baseline bound to its buffers: logits of every pair materialised in an
/// `[n_queries, max(n_target, n_source)]` matrix, then a row softmax and weighted mean, once
/// per sample set (four dispatches).
pub struct NaiveScoreDiff {
    rec: Recorder,
    _logits: GpuTensor,
}

impl NaiveScoreDiff {
    /// Bind the four dispatches; errors when the logit matrix exceeds a storage binding.
    pub fn new(
        ctx: &GpuContext,
        queries: &GpuTensor,
        target: &GpuTensor,
        source: &GpuTensor,
        state: &GpuTensor<u32>,
        out: &GpuTensor,
        leave_one_out: bool,
    ) -> Result<Self> {
        let (nq, nt, ns, d) = check_sets(ctx, queries, target, source, out, leave_one_out)?;
        let cols = nt.max(ns);
        let cells = nq
            .checked_mul(cols)
            .filter(|&c| c < u32::MAX as usize)
            .ok_or_else(|| Error::Limit(format!("{nq}×{cols} logits do not fit u32 indexing")))?;
        let max = ctx.max_binding();
        if cells as u64 * 4 > max {
            return Err(Error::Limit(format!(
                "the naive baseline's {nq}×{cols} logit matrix needs {} bytes; the adapter binds at most {max}",
                cells * 4
            )));
        }
        if let Some(b) = loop_budget(ctx) {
            if cols * (d + 2) > b {
                return Err(Error::Limit(format!(
                    "the naive baseline loops {} times per query over {cols} samples of d = {d}; \
                     this software adapter allows about {b}",
                    cols * (d + 2)
                )));
            }
        }
        let logits = GpuTensor::zeros(ctx, &[cells])?;
        let mut rec = Recorder::new();
        for (mode, set, n_set) in [(0u32, target, nt), (1u32, source, ns)] {
            let loo = (mode == 1 && leave_one_out) as u32;
            let n_wg_l = ((nq * n_set) as u32).div_ceil(256);
            let p = NaiveParams {
                n_q: nq as u32,
                n_set: n_set as u32,
                d: d as u32,
                loo,
                mode,
                n_wg: n_wg_l,
                ..Default::default()
            };
            let args = [queries.into(), set.into(), state.into(), (&logits).into()];
            NAIVE_LOGITS.launch(ctx, &mut rec, Work::Groups(n_wg_l as u64), &args, |_| p)?;
            let n_wg_r = (nq as u32).div_ceil(64);
            let p = NaiveParams { n_wg: n_wg_r, ..p };
            let args = [set.into(), state.into(), (&logits).into(), out.into()];
            NAIVE_REDUCE.launch(ctx, &mut rec, Work::Groups(n_wg_r as u64), &args, |_| p)?;
        }
        Ok(Self {
            rec,
            _logits: logits,
        })
    }

    /// Append the four dispatches to `rec`.
    pub fn record(&self, rec: &mut Recorder) {
        rec.extend(&self.rec);
    }
}

/// Run a score-difference plan built by `build(state, out)` once and return its output.
fn run_once(
    ctx: &GpuContext,
    queries: &GpuTensor,
    sigma: f32,
    build: impl FnOnce(&GpuTensor<u32>, &GpuTensor) -> Result<Recorder>,
) -> Result<GpuTensor> {
    let state = sigma_state(ctx, sigma)?;
    let out = GpuTensor::zeros(ctx, queries.shape())?;
    build(&state, &out)?.run(ctx)?;
    Ok(out)
}

/// v at every query (tiled kernel), shape `[n_queries, d]`.
pub fn score_difference(
    ctx: &GpuContext,
    queries: &GpuTensor,
    target: &GpuTensor,
    source: &GpuTensor,
    sigma: f32,
    leave_one_out: bool,
) -> Result<GpuTensor> {
    run_once(ctx, queries, sigma, |state, out| {
        Ok(ScoreDiff::new(ctx, queries, target, source, state, out, leave_one_out)?.rec)
    })
}

/// v at every query with the naive two-pass baseline, shape `[n_queries, d]`.
pub fn score_difference_naive(
    ctx: &GpuContext,
    queries: &GpuTensor,
    target: &GpuTensor,
    source: &GpuTensor,
    sigma: f32,
    leave_one_out: bool,
) -> Result<GpuTensor> {
    run_once(ctx, queries, sigma, |state, out| {
        Ok(NaiveScoreDiff::new(ctx, queries, target, source, state, out, leave_one_out)?.rec)
    })
}

/// Softmax-weighted mean Σ_j w_j s_j of `set` at `q` in f64, with index `skip` left out.
fn weighted_mean(q: &[f32], set: &[f32], d: usize, sigma: f64, skip: Option<usize>) -> Vec<f64> {
    let n = set.len() / d;
    let logits: Vec<f64> = (0..n)
        .map(|j| {
            if Some(j) == skip {
                return f64::NEG_INFINITY;
            }
            let r2: f64 = (0..d)
                .map(|k| (q[k] as f64 - set[j * d + k] as f64).powi(2))
                .sum();
            -r2 / (2.0 * sigma * sigma)
        })
        .collect();
    let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mut mean = vec![0.0; d];
    let mut l = 0.0;
    for (j, &lg) in logits.iter().enumerate() {
        let p = (lg - m).exp();
        l += p;
        for k in 0..d {
            mean[k] += p * set[j * d + k] as f64;
        }
    }
    mean.iter().map(|a| a / l).collect()
}

/// f64 CPU reference of v at every query (row-major `[n, d]` slices), returned row-major.
pub fn score_difference_cpu(
    queries: &[f32],
    target: &[f32],
    source: &[f32],
    d: usize,
    sigma: f64,
    leave_one_out: bool,
) -> Result<Vec<f64>> {
    check_dim(d)?;
    for (name, s) in [("queries", queries), ("target", target), ("source", source)] {
        if s.is_empty() || !s.len().is_multiple_of(d) {
            return Err(Error::Shape(format!(
                "{name} holds {} values, not a positive multiple of d = {d}",
                s.len()
            )));
        }
    }
    if !(sigma.is_finite() && sigma > 0.0) {
        return Err(Error::InvalidArgument(format!(
            "σ must be positive, got {sigma}"
        )));
    }
    let nq = queries.len() / d;
    let ns = source.len() / d;
    if leave_one_out && (nq != ns || ns < 2) {
        return Err(Error::InvalidArgument(
            "leave-one-out needs n_queries = n_source ≥ 2".into(),
        ));
    }
    let mut out = Vec::with_capacity(queries.len());
    for i in 0..nq {
        let q = &queries[i * d..(i + 1) * d];
        let mt = weighted_mean(q, target, d, sigma, None);
        let ms = weighted_mean(q, source, d, sigma, leave_one_out.then_some(i));
        out.extend((0..d).map(|k| (mt[k] - ms[k]) / (sigma * sigma)));
    }
    Ok(out)
}
