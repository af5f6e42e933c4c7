//! Training batches built on the host: [`host_batch`], the reference of the on-device batch
//! (and the batch of exact minibatch OT), and [`HostBatcher`], the CPU backend's batches:
//! the same values, bit for bit, from buffers made once and filled on the CPU backend's
//! threads (one Philox block per four normals, rows of whole sequences per thread).

use crate::data::SequenceDataset;
use crate::error::Result;
use crate::flow::train::{
    FlowConfig, Geometry, OtMode, TrainConfig, STREAM_INDEX, STREAM_PAIRS, STREAM_PRIOR,
    STREAM_TIME,
};
use crate::flow::{kernels as fk, ot};
use crate::kernels::cpu;
use crate::kernels::rng::{self, unit_f32};
use crate::kernels::sphere::{self, reference::interpolant_coefficients};

/// One training batch built on the host: `(x_t, t, u_t)`, row-major.
pub fn host_batch(
    flow: &FlowConfig,
    cfg: &TrainConfig,
    data: &SequenceDataset,
    step: u64,
) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
    let (b, l, k) = (cfg.batch, flow.mlp.seq_len, flow.mlp.categories);
    let seed = cfg.seed;
    let u = rng::cpu::uniform(seed, step, STREAM_INDEX, b);
    let idx: Vec<u32> = u
        .iter()
        .map(|&v| ((v * data.n as f32) as u32).min(data.n as u32 - 1))
        .collect();
    let x0 = match flow.geometry {
        Geometry::Sphere => rng::cpu::sphere_prior(seed, step, STREAM_PRIOR, b * l, k),
        Geometry::Simplex => rng::cpu::dirichlet1(seed, step, STREAM_PRIOR, b * l, k),
    };
    let t = rng::cpu::uniform(seed, step, STREAM_TIME, b);
    let onehot = |i: u32| {
        let mut row = vec![0f32; l * k];
        for (pos, &tok) in data.row(i as usize).iter().enumerate() {
            row[pos * k + tok as usize] = 1.0;
        }
        row
    };
    let mut x1: Vec<f32> = Vec::with_capacity(b * l * k);
    for &i in &idx {
        x1.extend(onehot(i));
    }
    let pairs: Option<Vec<u32>> = match cfg.ot {
        OtMode::None => None,
        OtMode::Exact | OtMode::Sinkhorn { .. } => {
            let cost = ot::cost_matrix(&x0, &x1, b, b, l, k)?;
            Some(match cfg.ot {
                OtMode::Exact => ot::hungarian(&cost, b, b)?
                    .into_iter()
                    .map(|j| j as u32)
                    .collect(),
                OtMode::Sinkhorn { eps, iters } => {
                    let opts = ot::SinkhornOptions {
                        eps: eps as f64,
                        iters: iters as usize,
                    };
                    let plan = ot::sinkhorn(&cost, b, b, &opts)?.plan(&cost);
                    let up = rng::cpu::uniform(seed, step, STREAM_PAIRS, b);
                    ot::sample_pairs(&plan, b, b, &up)?
                }
                OtMode::None => unreachable!(),
            })
        }
    };
    if let Some(p) = pairs {
        let per = l * k;
        let mut paired = Vec::with_capacity(x1.len());
        for &j in &p {
            paired.extend_from_slice(&x1[j as usize * per..(j as usize + 1) * per]);
        }
        x1 = paired;
    }
    Ok(match flow.geometry {
        Geometry::Sphere => {
            let f = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<f64>>();
            let tt: Vec<f64> = t.iter().map(|&a| a as f64).collect();
            let (xt, ut) = sphere::reference::interpolant_target(&f(&x0), &f(&x1), &tt, l, k);
            let g = |v: Vec<f64>| v.into_iter().map(|a| a as f32).collect::<Vec<f32>>();
            (g(xt), t, g(ut))
        }
        Geometry::Simplex => {
            let (xt, ut) = fk::linear_interpolant_cpu(&x0, &x1, &t, l * k);
            (xt, t, ut)
        }
    })
}

/// The batches of the CPU backend's trainer: `(x_t, t, u_t)` equal to [`host_batch`]'s, built
/// into buffers made once. Fisher-Flow without minibatch OT is built in place on the CPU
/// backend's threads; the other settings (the simplex baseline, OT couplings) go through
/// [`host_batch`] and are copied in.
#[derive(Debug)]
pub struct HostBatcher {
    xt: Vec<f32>,
    t: Vec<f32>,
    ut: Vec<f32>,
    /// The prior points in f64, one row of K per position.
    x0: Vec<f64>,
}

impl HostBatcher {
    /// Buffers for the batches of `flow` at `cfg.batch`.
    pub fn new(flow: &FlowConfig, cfg: &TrainConfig) -> Self {
        let n = cfg.batch * flow.mlp.width();
        Self {
            xt: vec![0.0; n],
            t: vec![0.0; cfg.batch],
            ut: vec![0.0; n],
            x0: vec![0.0; n],
        }
    }

    /// The batch of step `step`: `(x_t, t, u_t)`.
    pub fn fill(
        &mut self,
        flow: &FlowConfig,
        cfg: &TrainConfig,
        data: &SequenceDataset,
        step: u64,
    ) -> Result<(&[f32], &[f32], &[f32])> {
        if flow.geometry != Geometry::Sphere || cfg.ot != OtMode::None {
            let (xt, t, ut) = host_batch(flow, cfg, data, step)?;
            self.xt.copy_from_slice(&xt);
            self.t.copy_from_slice(&t);
            self.ut.copy_from_slice(&ut);
            return Ok((&self.xt, &self.t, &self.ut));
        }
        let (l, k, seed) = (flow.mlp.seq_len, flow.mlp.categories, cfg.seed);
        for (i, tv) in self.t.iter_mut().enumerate() {
            *tv = unit_f32(rng::cpu::word(seed, step, STREAM_TIME, i));
        }
        let t = &self.t;
        let per = l * k;
        cpu::for_chunks3(
            &mut self.xt,
            &mut self.ut,
            &mut self.x0,
            per,
            |o, xt, ut, x0| {
                for (j, z) in x0.chunks_mut(k).enumerate() {
                    let row = o / k + j;
                    let seq = row / l;
                    let u = unit_f32(rng::cpu::word(seed, step, STREAM_INDEX, seq));
                    let pick = ((u * data.n as f32) as u32).min(data.n as u32 - 1);
                    let tok = data.row(pick as usize)[row % l] as usize;
                    let (xr, ur) = (&mut xt[j * k..][..k], &mut ut[j * k..][..k]);
                    interpolate_row(seed, step, row, tok, t[seq] as f64, z, xr, ur);
                }
            },
        );
        Ok((&self.xt, &self.t, &self.ut))
    }
}

/// Row `row` of a Fisher-Flow batch: its prior point (into `z`), then `x_t` and `u_t` towards
/// the one-hot point of token `tok` at time `t`, with the arithmetic of
/// [`sphere::reference::interpolant_row`].
#[allow(clippy::too_many_arguments)]
fn interpolate_row(
    seed: u64,
    step: u64,
    row: usize,
    tok: usize,
    t: f64,
    z: &mut [f64],
    xt: &mut [f32],
    ut: &mut [f32],
) {
    // x0 as host_batch holds it: the f32 prior point (in `xt` for now), widened again.
    let prior = rng::cpu::sphere_prior_row(seed, step, STREAM_PRIOR, row, z);
    for (dst, v) in xt.iter_mut().zip(prior) {
        *dst = v;
    }
    for (zv, &x) in z.iter_mut().zip(xt.iter()) {
        *zv = x as f64;
    }
    let (mut d2, mut s2) = (0.0, 0.0);
    for (c, a) in z.iter().enumerate() {
        let b = if c == tok { 1.0 } else { 0.0 };
        d2 += (b - a) * (b - a);
        s2 += (b + a) * (b + a);
    }
    let th = 2.0 * f64::sqrt(d2).atan2(s2.sqrt());
    let (a0, a1, c0, c1) = interpolant_coefficients(th, t);
    for (c, ((a, x), u)) in z.iter().zip(xt.iter_mut()).zip(ut.iter_mut()).enumerate() {
        let b = if c == tok { 1.0 } else { 0.0 };
        *x = (a0 * a + a1 * b) as f32;
        *u = (c0 * a + c1 * b) as f32;
    }
}
