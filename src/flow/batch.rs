//! Training batches built on the host: the reference of the device batches, and the path
//! of the batches that need the host (exact OT, Dirichlet FM's Gamma draws).

use crate::data::SequenceDataset;
use crate::error::Result;
use crate::flow::pairing;
use crate::flow::source::DataSource;
use crate::flow::train::{
    FlowConfig, Geometry, TrainConfig, STREAM_INDEX, STREAM_PAIRS, STREAM_PRIOR, STREAM_TIME,
};
use crate::flow::{dirichlet, kernels as fk, simplex_fr};
use crate::kernels::rng;

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
