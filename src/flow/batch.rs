//! Training batches built on the host: [`host_batch_from`], the reference of the on-device batch
//! (and the batch of exact OT and of Dirichlet FM), and [`HostBatcher`], the CPU backend's batches:
//! the same values, bit for bit, from buffers made once and filled on the CPU backend's
//! threads (one Philox block per four normals, rows of whole sequences per thread).

use crate::autodiff::GpuExecutor;
use crate::data::SequenceDataset;
use crate::error::Error;
use crate::error::Result;
use crate::flow::cond::STREAM_COND_DROP;
use crate::flow::pairing;
use crate::flow::source::DataSource;
use crate::flow::train::{
    FlowConfig, Geometry, OtMode, TrainConfig, STREAM_INDEX, STREAM_PAIRS, STREAM_PRIOR,
    STREAM_TIME,
};
use crate::flow::{dirichlet, kernels as fk, simplex_fr};
use crate::gpu::{GpuContext, GpuTensor, Recorder};
use crate::kernels::cpu;
use crate::kernels::rng::GpuRng;
use crate::kernels::rng::{self, unit_f32};
use crate::kernels::sphere;
use crate::kernels::sphere::reference::interpolant_coefficients;
use crate::nn::Network;

/// One training batch built on the host: `(x_t, t, u_t)` (for Dirichlet FM the target is the
/// one-hot `x1`), row-major.
pub fn host_batch(
    flow: &FlowConfig,
    cfg: &TrainConfig,
    data: &SequenceDataset,
    step: u64,
) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
    host_batch_from(flow, cfg, &DataSource::Dataset(data.clone()), step)
}

/// [`host_batch`] from any [`DataSource`].
pub fn host_batch_from(
    flow: &FlowConfig,
    cfg: &TrainConfig,
    data: &DataSource,
    step: u64,
) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
    let (b, l, k) = (cfg.batch, flow.mlp.seq_len, flow.mlp.categories);
    let seed = cfg.seed;
    let mut x1 = data.x1_host(seed, step, STREAM_INDEX, b);
    let t = rng::cpu::uniform(seed, step, STREAM_TIME, b);
    if flow.geometry == Geometry::Dirichlet {
        return Ok(dirichlet::host_batch(
            x1,
            &t,
            l,
            k,
            seed,
            step,
            STREAM_PRIOR,
        ));
    }
    let mut x0 = match flow.geometry {
        Geometry::Simplex => rng::cpu::dirichlet1(seed, step, STREAM_PRIOR, b * l, k),
        _ => rng::cpu::sphere_prior(seed, step, STREAM_PRIOR, b * l, k),
    };
    let shape = (b, l, k);
    pairing::couple_host(
        cfg.ot,
        cfg.ot_pairing,
        &mut x0,
        &mut x1,
        shape,
        seed,
        step,
        STREAM_PAIRS,
    )?;
    let (xt, ut) = match flow.geometry {
        Geometry::Simplex => fk::linear_interpolant_cpu(&x0, &x1, &t, l * k),
        g => simplex_fr::interpolant_target_cpu(&x0, &x1, &t, l, k, g != Geometry::Sphere),
    };
    Ok((xt, t, ut))
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
        data: &DataSource,
        step: u64,
    ) -> Result<(&[f32], &[f32], &[f32])> {
        let data = match data {
            DataSource::Dataset(d)
                if flow.geometry == Geometry::Sphere && cfg.ot == OtMode::None =>
            {
                d
            }
            _ => {
                let (xt, t, ut) = host_batch_from(flow, cfg, data, step)?;
                self.xt.copy_from_slice(&xt);
                self.t.copy_from_slice(&t);
                self.ut.copy_from_slice(&ut);
                return Ok((&self.xt, &self.t, &self.ut));
            }
        };
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

/// Record the on-device batch of one step: data, prior, times, optional Sinkhorn pairing,
/// and the fused interpolant written into the network's inputs; and the labels and signal
/// tracks of the batch's sequences where the model reads them. Returns whether those were
/// recorded (when `false` the host uploads them each step: a data set's tracks larger than
/// one storage binding stay on the host).
pub(crate) fn record_device_batch(
    ctx: &GpuContext,
    rec: &mut Recorder,
    exe: &GpuExecutor<'_>,
    rng: &GpuRng,
    flow: &FlowConfig,
    cfg: &TrainConfig,
    data: &DataSource,
) -> Result<bool> {
    let (b, l, k) = (cfg.batch, flow.mlp.seq_len, flow.mlp.categories);
    let shape = [b, l, k];
    let x0 = GpuTensor::<f32>::zeros(ctx, &shape)?;
    let x1 = GpuTensor::<f32>::zeros(ctx, &shape)?;
    let xt = exe.input_tensor(Network::X)?.reshape(&shape)?;
    let ut = exe.input_tensor(Network::TARGET)?.reshape(&shape)?;
    let t = exe.input_tensor(Network::T)?.reshape(&[b])?;
    let rows = data.record_x1(ctx, rec, rng, STREAM_INDEX, &x1)?;
    let conditions = match (rows, data) {
        (Some(u), DataSource::Dataset(d)) => record_conditions(ctx, rec, exe, rng, flow, d, &u)?,
        _ => true,
    };
    match flow.geometry {
        Geometry::Simplex => rng::dirichlet1(ctx, rec, rng, STREAM_PRIOR, &x0)?,
        _ => rng::sphere_prior(ctx, rec, rng, STREAM_PRIOR, &x0)?,
    }
    rng::times(ctx, rec, rng, STREAM_TIME, &t)?;
    let (x0, x1) =
        pairing::couple_gpu(ctx, rec, rng, cfg.ot, cfg.ot_pairing, x0, x1, STREAM_PAIRS)?;
    match flow.geometry {
        Geometry::Sphere => sphere::interpolant_target(ctx, rec, &x0, &x1, &t, &xt, &ut)?,
        Geometry::Simplex => fk::linear_interpolant(ctx, rec, &x0, &x1, &t, &xt, &ut)?,
        Geometry::FisherRaoSimplex => {
            simplex_fr::interpolant_target(ctx, rec, &x0, &x1, &t, &xt, &ut)?
        }
        Geometry::Dirichlet => {
            return Err(Error::InvalidArgument(
                "Dirichlet FM batches are drawn on the host".into(),
            ))
        }
    }
    Ok(conditions)
}

/// Record the labels (with label dropout) and the signal tracks of the sequences the batch
/// draws (`u`: the uniforms that chose them) into the network's inputs, the same values as
/// [`crate::flow::cond::batch_labels`] and [`crate::flow::cond::batch_signal`]. The data set's
/// labels and tracks are uploaded once, here; `false` (nothing recorded) when the tracks exceed
/// one storage binding.
fn record_conditions(
    ctx: &GpuContext,
    rec: &mut Recorder,
    exe: &GpuExecutor<'_>,
    rng: &GpuRng,
    flow: &FlowConfig,
    data: &SequenceDataset,
    u: &GpuTensor<f32>,
) -> Result<bool> {
    let (c, b) = (flow.cond, u.len());
    let tracks = data.signal().filter(|_| c.signal > 0);
    if let Some(t) = tracks {
        if (t.values.len() * 4) as u64 > ctx.max_binding() {
            return Ok(false);
        }
    }
    if let (true, Some(labels)) = (c.classes > 0, &data.labels) {
        let ids: Vec<f32> = labels.ids.iter().map(|&v| v as f32).collect();
        let ids = GpuTensor::from_slice(ctx, &ids, &[ids.len()])?;
        let drop_u = GpuTensor::<f32>::zeros(ctx, &[b])?;
        rng::uniform(ctx, rec, rng, STREAM_COND_DROP, &drop_u)?;
        let out = exe.input_tensor(Network::LABELS)?;
        fk::gather_labels(ctx, rec, &ids, u, &drop_u, c.drop, c.null(), out)?;
    }
    if let Some(t) = tracks {
        let w = t.len * t.channels;
        let rows = GpuTensor::from_slice(ctx, &t.values, &[t.n, w])?;
        let out = exe.input_tensor(Network::SIGNAL)?.reshape(&[b, w])?;
        fk::gather_rows(ctx, rec, &rows, u, &out)?;
    }
    Ok(true)
}
