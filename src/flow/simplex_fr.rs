//! The Fisher–Rao flow on the simplex: Fisher-Flow expressed in the simplex's own coordinates.
//!
//! The sphere map `x = √p` is an isometry from the simplex with the Fisher–Rao metric (up to
//! a factor 4) to the positive orthant of the sphere, so Fisher-Flow's geodesic paths are the
//! Fisher–Rao geodesics of the simplex: `p_t = x_t²`, with velocity `v_p = 2 x_t ⊙ u_t` for the
//! sphere's `u_t`, and back `u = v_p / (2 x)` (tangent: `Σ v_p = 2⟨x, u⟩ = 0`). The prior
//! `|z|/‖z‖` on the sphere is `Dir(½)` on the simplex. Training draws the sphere batch (and its
//! OT coupling) and pulls it back ([`interpolant_target`], [`interpolant_target_cpu`]); the
//! network sees and predicts simplex coordinates; the sampler integrates `dp/dt = v_θ(p, t)`
//! on the simplex (Euler steps in `p`, clamped to the simplex as the linear baseline's are),
//! from the squared sphere prior, and reads out `argmax p`.

use crate::error::Result;
use crate::gpu::{GpuContext, GpuTensor, Recorder};
use crate::kernels::sphere;

use super::paths::{to_simplex, to_simplex_cpu};

/// Record the sphere interpolant `(x_t, u_t)` of `(x0, x1)` at times `t` pulled back to the
/// simplex: `p ← x_t²`, `v ← 2 x_t ⊙ u_t` (`[B, L, K]`; `t`: one time per sequence).
pub fn interpolant_target(
    ctx: &GpuContext,
    rec: &mut Recorder,
    x0: &GpuTensor<f32>,
    x1: &GpuTensor<f32>,
    t: &GpuTensor<f32>,
    p: &GpuTensor<f32>,
    v: &GpuTensor<f32>,
) -> Result<()> {
    let xt = GpuTensor::<f32>::zeros(ctx, x0.shape())?;
    let ut = GpuTensor::<f32>::zeros(ctx, x0.shape())?;
    sphere::interpolant_target(ctx, rec, x0, x1, t, &xt, &ut)?;
    to_simplex(ctx, rec, &xt, &ut, p, v)
}

/// The sphere interpolant `(x_t, u_t)` of `(x0, x1)` (`[B, L, K]`, one time per sequence) in
/// f64, returned in f32, pulled back to the simplex with `pull_back` (CPU reference of
/// [`interpolant_target`] and of the sphere's fused kernel).
pub fn interpolant_target_cpu(
    x0: &[f32],
    x1: &[f32],
    t: &[f32],
    l: usize,
    k: usize,
    pull_back: bool,
) -> (Vec<f32>, Vec<f32>) {
    let f = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<f64>>();
    let (xt, ut) = sphere::reference::interpolant_target(&f(x0), &f(x1), &f(t), l, k);
    let g = |v: Vec<f64>| v.into_iter().map(|a| a as f32).collect::<Vec<f32>>();
    let (xt, ut) = (g(xt), g(ut));
    if pull_back {
        to_simplex_cpu(&xt, &ut)
    } else {
        (xt, ut)
    }
}

/// A sphere velocity `u` at `x` from a simplex velocity `v` at `p = x²`: `u = v / (2x)` (0
/// where `x = 0`), per element.
pub fn to_sphere_velocity(p: &[f64], v: &[f64]) -> Vec<f64> {
    p.iter()
        .zip(v)
        .map(|(&pi, &vi)| {
            let x = pi.max(0.0).sqrt();
            if x > 0.0 {
                vi / (2.0 * x)
            } else {
                0.0
            }
        })
        .collect()
}
