//! Minibatch OT couplings of a training batch: how pairs `(x0_i, x1_j)` are taken from the
//! exact or entropic plan between the prior draws and the data batch.
//!
//! - [`OtPairing::Assign`]: every prior point is used once. Exact OT pairs it with its partner
//!   in the optimal assignment; Sinkhorn draws a partner from its row of the plan.
//! - [`OtPairing::Sample`]: `B` pairs drawn from the plan with replacement, as the reference
//!   implementation does (a prior point may be used twice or not at all): the row `i` is
//!   uniform (the plan's row marginal; exact for the assignment, and for Sinkhorn up to its
//!   marginal error since its last half-iteration fixes the columns), then `j` from row `i`.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::flow::kernels as fk;
use crate::flow::paths::{gather_rows_u, gather_rows_u_cpu, uniform_row};
use crate::flow::{ot, OtMode};
use crate::gpu::{GpuContext, GpuTensor, Recorder};
use crate::kernels::rng::{self, GpuRng};

/// How pairs are taken from a minibatch OT plan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum OtPairing {
    /// Each prior point once, with its assigned (exact) or drawn (Sinkhorn) partner.
    #[default]
    Assign,
    /// Pairs drawn from the plan with replacement.
    Sample,
}

/// Philox stream of the rows of sampled pairs.
pub const STREAM_PAIR_ROWS: u32 = 5;

/// Rows of `x` (rows of `per` floats) in the order `idx`.
fn take(x: &[f32], per: usize, idx: impl Iterator<Item = usize>) -> Vec<f32> {
    idx.flat_map(|i| x[i * per..(i + 1) * per].iter().copied())
        .collect()
}

/// Couple the host batch `(x0, x1)` (`[B, L, K]` each) in place by `ot` and `pairing`, with
/// the draws of `step`.
#[allow(clippy::too_many_arguments)]
pub fn couple_host(
    ot_mode: OtMode,
    pairing: OtPairing,
    x0: &mut Vec<f32>,
    x1: &mut Vec<f32>,
    (b, l, k): (usize, usize, usize),
    seed: u64,
    step: u64,
    pairs_stream: u32,
) -> Result<()> {
    if ot_mode == OtMode::None {
        return Ok(());
    }
    let per = l * k;
    let cost = ot::cost_matrix(x0, x1, b, b, l, k)?;
    let rows: Vec<usize> = match pairing {
        OtPairing::Assign => (0..b).collect(),
        OtPairing::Sample => rng::cpu::uniform(seed, step, STREAM_PAIR_ROWS, b)
            .into_iter()
            .map(|u| uniform_row(u, b))
            .collect(),
    };
    let cols: Vec<usize> = match ot_mode {
        OtMode::Exact => {
            let assign = ot::hungarian(&cost, b, b)?;
            rows.iter().map(|&i| assign[i]).collect()
        }
        OtMode::Sinkhorn { eps, iters } => {
            let opts = ot::SinkhornOptions {
                eps: eps as f64,
                iters: iters as usize,
            };
            let plan = ot::sinkhorn(&cost, b, b, &opts)?.plan(&cost);
            let plan_rows = take_f64(&plan, b, &rows);
            let up = rng::cpu::uniform(seed, step, pairs_stream, b);
            ot::sample_pairs(&plan_rows, b, b, &up)?
                .into_iter()
                .map(|j| j as usize)
                .collect()
        }
        OtMode::None => unreachable!("returned above"),
    };
    if pairing == OtPairing::Sample {
        *x0 = take(x0, per, rows.iter().copied());
    }
    *x1 = take(x1, per, cols.into_iter());
    Ok(())
}

fn take_f64(plan: &[f64], m: usize, rows: &[usize]) -> Vec<f64> {
    rows.iter()
        .flat_map(|&i| plan[i * m..(i + 1) * m].iter().copied())
        .collect()
}

/// Record the Sinkhorn coupling of the device batch: returns the coupled `(x0, x1)` (new
/// tensors, or the inputs for independent pairs). Exact OT is solved on the host
/// ([`couple_host`]).
#[allow(clippy::too_many_arguments)]
pub fn couple_gpu(
    ctx: &GpuContext,
    rec: &mut Recorder,
    rng: &GpuRng,
    ot_mode: OtMode,
    pairing: OtPairing,
    x0: GpuTensor<f32>,
    x1: GpuTensor<f32>,
    pairs_stream: u32,
) -> Result<(GpuTensor<f32>, GpuTensor<f32>)> {
    let OtMode::Sinkhorn { eps, iters } = ot_mode else {
        return Ok((x0, x1));
    };
    let shape = x0.shape().to_vec();
    let b = shape[0];
    let cost = GpuTensor::<f32>::zeros(ctx, &[b, b])?;
    let solver = ot::GpuSinkhorn::new(ctx, b, b, eps as f64)?;
    ot::cost_matrix_gpu(ctx, rec, &x0, &x1, &cost)?;
    solver.solve(ctx, rec, &cost, iters as usize)?;
    let (x0, cost) = match pairing {
        OtPairing::Assign => (x0, cost),
        OtPairing::Sample => {
            let ur = GpuTensor::<f32>::zeros(ctx, &[b])?;
            rng::uniform(ctx, rec, rng, STREAM_PAIR_ROWS, &ur)?;
            let (x0s, costs) = (
                GpuTensor::<f32>::zeros(ctx, &shape)?,
                GpuTensor::<f32>::zeros(ctx, &[b, b])?,
            );
            gather_rows_u(ctx, rec, &x0, &ur, &x0s)?;
            gather_rows_u(ctx, rec, &cost, &ur, &costs)?;
            (x0s, costs)
        }
    };
    let up = GpuTensor::<f32>::zeros(ctx, &[b])?;
    rng::uniform(ctx, rec, rng, pairs_stream, &up)?;
    let picks = GpuTensor::<u32>::zeros(ctx, &[b])?;
    solver.sample(ctx, rec, &cost, &up, &picks)?;
    let paired = GpuTensor::<f32>::zeros(ctx, &shape)?;
    fk::permute_rows(ctx, rec, &x1, &picks, &paired)?;
    Ok((x0, paired))
}

/// CPU reference of the row draws of [`OtPairing::Sample`]: `x0`'s rows at the uniforms of
/// `step` (rows of `per` floats).
pub fn sampled_rows_cpu(x0: &[f32], per: usize, seed: u64, step: u64, b: usize) -> Vec<f32> {
    gather_rows_u_cpu(x0, per, &rng::cpu::uniform(seed, step, STREAM_PAIR_ROWS, b))
}
