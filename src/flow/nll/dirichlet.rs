//! Dirichlet FM's divergence: host launchers for `shaders/nll_dirichlet.wgsl`, each with its
//! CPU reference.
//!
//! The field of a position is `v = Σ_i q_i C(x_i, t)(e_i − x)` with `q = softmax(z)` of the
//! network's logits `z(x, t)` and `C` the sampler's table ([`CTable`], linear in `√x`). Its
//! Jacobian is `J_v = (∂v/∂z) J_z + G`, the first part through the network, the second at fixed
//! logits. With `u` tangent to the simplex (`Π z` for a probe `z`):
//! - `uᵀ (∂v/∂z) J_z u = ⟨wᵀ J_z, u⟩` with the logits' cotangent `w = S Mᵀ u`, `S = diag(q) −
//!   q qᵀ` (the softmax's Jacobian) and `M = diag(C) − x Cᵀ` ([`cotangent`]): one
//!   vector-Jacobian product of the network per probe, as for the other methods;
//! - `G = diag(q ⊙ C′) − x (q ⊙ C′)ᵀ − (Σ q C) I` has `tr(Π G Π) = Σ_i q_i (C′(x_i)(1 − x_i) −
//!   (K − 1) C(x_i))` on the simplex, added exactly ([`div_terms`]) for either estimator.
//!
//! `C′` is the derivative of the interpolant the sampler integrates, so the divergence is that
//! of the field integrated (`√x` is floored at half the table's first interval, where the
//! interpolant's slope in `x` is unbounded).

use super::kernels::Probes;
use crate::error::{Error, Result};
use crate::flow::dirichlet::CTable;
use crate::gpu::{lib, u32_of, Arg, GpuContext, GpuTensor, KernelDef, Recorder, ShaderDef, Work};

/// `shaders/nll_dirichlet.wgsl` with the grid prelude.
pub static SHADER: ShaderDef = ShaderDef::new(
    "nll_dirichlet",
    &[
        lib::GRID,
        include_str!("../../../shaders/nll_dirichlet.wgsl"),
    ],
)
.slots(&["x", "z", "u", "tab", "out"]);

/// The logits' cotangents of a probe batch.
pub static COTANGENT: KernelDef =
    KernelDef::new(&SHADER, "cotangent", &["x", "z", "u", "tab", "out"]).params::<DirParams>();
/// The divergence at fixed logits, per sequence, added scaled to the output.
pub static DIV_TERMS: KernelDef =
    KernelDef::new(&SHADER, "div_terms", &["x", "z", "tab", "out"]).params::<DirParams>();

crate::gpu_params! {
    /// Parameters of the Dirichlet kernels.
    pub struct DirParams {
        /// Sequences `B`.
        pub b: u32,
        /// Probes per sequence `M`.
        pub m: u32,
        /// Width `W = L·K`.
        pub w: u32,
        /// Categories `K`.
        pub k: u32,
        /// Intervals of the table.
        pub n: u32,
        /// Factor of [`div_terms`].
        pub scale: f32,
        /// Padding.
        pub _pad0: u32,
        /// Padding.
        pub _pad1: u32,
    }
}

fn params(s: &Probes, table: &GpuTensor<f32>, scale: f32) -> Result<DirParams> {
    if table.len() < 2 {
        return Err(Error::Shape("a C table needs at least two values".into()));
    }
    Ok(DirParams {
        b: u32_of(s.b, "sequences")?,
        m: u32_of(s.m, "probes")?,
        w: u32_of(s.width(), "L·K")?,
        k: u32_of(s.k, "K")?,
        n: u32_of(table.len() - 1, "table intervals")?,
        scale,
        ..Default::default()
    })
}

fn need(t: &GpuTensor<f32>, len: usize, what: &str) -> Result<()> {
    if t.len() != len {
        return Err(Error::Shape(format!(
            "{what} holds {} values, the probe batch needs {len}",
            t.len()
        )));
    }
    Ok(())
}

/// `dC/dx` of the table's interpolant (the kernels' arithmetic, in f64).
pub fn c_slope(table: &CTable, x: f64) -> f64 {
    let n = (table.values.len() - 1) as f64;
    let s = x.clamp(0.0, 1.0).sqrt();
    let j = ((s * n) as usize).min(table.values.len() - 2);
    (table.values[j + 1] - table.values[j]) * n / (2.0 * s.max(0.5 / n))
}

/// Record the logits' cotangents `out[r] = S Mᵀ u[r]` per position (`x`, `z`: `[B, W]` points
/// and logits; `u`, `out`: `[M·B, W]`; `table`: the [`CTable`] values in f32).
#[allow(clippy::too_many_arguments)]
pub fn cotangent(
    ctx: &GpuContext,
    rec: &mut Recorder,
    s: &Probes,
    x: &GpuTensor<f32>,
    z: &GpuTensor<f32>,
    u: &GpuTensor<f32>,
    table: &GpuTensor<f32>,
    out: &GpuTensor<f32>,
) -> Result<()> {
    need(x, s.b * s.width(), "the points")?;
    need(z, s.b * s.width(), "the logits")?;
    need(u, s.rows() * s.width(), "the probes")?;
    need(out, s.rows() * s.width(), "the cotangents")?;
    let p = params(s, table, 1.0)?;
    let args = [x.into(), z.into(), u.into(), table.into(), Arg::from(out)];
    let work = Work::Threads((s.rows() * s.l) as u64);
    COTANGENT.launch(ctx, rec, work, &args, |_| p)
}

/// The softmax of one position's logits, in f64.
fn softmax(z: &[f32]) -> Vec<f64> {
    let m = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let e: Vec<f64> = z.iter().map(|&v| (v as f64 - m).exp()).collect();
    let se: f64 = e.iter().sum();
    e.iter().map(|v| v / se).collect()
}

/// CPU reference of [`cotangent`], in f64.
pub fn cotangent_cpu(s: &Probes, x: &[f32], z: &[f32], u: &[f64], table: &CTable) -> Vec<f64> {
    let (w, k) = (s.width(), s.k);
    let mut out = vec![0.0; s.rows() * w];
    for r in 0..s.rows() {
        for pos in 0..s.l {
            let src = (r % s.b) * w + pos * k;
            let dst = r * w + pos * k;
            let q = softmax(&z[src..src + k]);
            let c: Vec<f64> = (0..k).map(|j| table.at(x[src + j] as f64)).collect();
            let xu: f64 = (0..k).map(|j| x[src + j] as f64 * u[dst + j]).sum();
            let m: Vec<f64> = (0..k).map(|j| c[j] * (u[dst + j] - xu)).collect();
            let qm: f64 = (0..k).map(|j| q[j] * m[j]).sum();
            for j in 0..k {
                out[dst + j] = q[j] * (m[j] - qm);
            }
        }
    }
    out
}

/// Record `out[b] += scale · Σ_positions Σ_i q_i (C′(x_i)(1 − x_i) − (K − 1) C(x_i))` (`x`,
/// `z`: `[B, W]`; `out`: `[B]`).
#[allow(clippy::too_many_arguments)]
pub fn div_terms(
    ctx: &GpuContext,
    rec: &mut Recorder,
    s: &Probes,
    x: &GpuTensor<f32>,
    z: &GpuTensor<f32>,
    table: &GpuTensor<f32>,
    scale: f32,
    out: &GpuTensor<f32>,
) -> Result<()> {
    need(x, s.b * s.width(), "the points")?;
    need(z, s.b * s.width(), "the logits")?;
    need(out, s.b, "the divergences")?;
    let p = params(s, table, scale)?;
    let args = [x.into(), z.into(), table.into(), Arg::from(out)];
    DIV_TERMS.launch(ctx, rec, Work::Threads(s.b as u64), &args, |_| p)
}

/// CPU reference of [`div_terms`] without the factor: one value per sequence, in f64.
pub fn div_terms_cpu(s: &Probes, x: &[f32], z: &[f32], table: &CTable) -> Vec<f64> {
    let k = s.k;
    (0..s.b)
        .map(|b| {
            (0..s.l)
                .map(|pos| {
                    let base = b * s.width() + pos * k;
                    let q = softmax(&z[base..base + k]);
                    (0..k)
                        .map(|j| {
                            let xv = x[base + j] as f64;
                            let (c, dc) = (table.at(xv), c_slope(table, xv));
                            q[j] * (dc * (1.0 - xv) - (k as f64 - 1.0) * c)
                        })
                        .sum::<f64>()
                })
                .sum()
        })
        .collect()
}
