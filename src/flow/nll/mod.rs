//! Likelihood of a Fisher-Flow model: the continuous normalizing flow's change of variables
//! on the product of spheres, with the divergence from the autodiff's vector-Jacobian products.
//!
//! # The log-density
//! A model moves the prior `p_0` (uniform on the positive orthant of every sphere factor) along
//! `dx/dt = v_t(x)`, `v_t(x) = P_x f_θ(x, t)` with `P_x = I − x xᵀ` per position. Its marginal
//! density with respect to the area measure of `(S^{K−1})^L` obeys
//! `d/dt log p_t(x_t) = −div v_t(x_t)`, so for a point `x` at time `t₁`
//!
//! `log p_{t₁}(x) = log p_0(x_0) − ∫_0^{t₁} div v_t(x_t) dt`,
//!
//! with `x_t` the trajectory through `x`, integrated backward from `t₁` to 0 together with the
//! integral ([`field::Joint`]: the Runge–Kutta–Munthe-Kaas driver of [`crate::flow::ode`] on
//! `(S^{K−1})^L × ℝ`, so every solver keeps its order). As in the samplers, each step is folded
//! back into the orthant with `|·|`.
//!
//! # The divergence on the sphere
//! For a tangent field `v` on `S^{K−1}` and an orthonormal basis `e_i` of `T_x S^{K−1}`, the
//! Riemannian divergence is `Σ_i ⟨∇_{e_i} v, e_i⟩`; the Levi-Civita connection of the embedded
//! sphere is `∇_u v = P_x (Dv·u)`, so `div v = Σ_i e_iᵀ J_v e_i = tr(P_x J_v P_x)`, with `J_v`
//! the ambient Jacobian of any smooth extension of `v` (only tangent derivatives enter). For
//! `v = f − ⟨x, f⟩x` this is `tr(J_f) − xᵀJ_f x − (K−1)⟨x, f⟩`. On the product of spheres the
//! divergence is the sum over positions: `tr(𝒫 J_v 𝒫)` with `𝒫` the block-diagonal projection
//! (the cross-position blocks of `J_v` do not enter). Both estimators use vector-Jacobian
//! products `wᵀ J_v` of the autodiff (the gradient of `Σ v ⊙ w` with respect to the input `x`,
//! see [`field::vjp_graph`]) with cotangents `w = 𝒫 z`, contracted as `⟨wᵀ J_v, 𝒫 z⟩`:
//! - exact ([`Divergence::Exact`]): `z` runs over the `L·K` basis vectors `e_j`, and
//!   `Σ_j e_jᵀ 𝒫 J_v 𝒫 e_j = tr(𝒫 J_v 𝒫)`: `L·K` products per field evaluation, refused above
//!   [`MAX_EXACT_WIDTH`];
//! - Hutchinson ([`Divergence::Hutchinson`]): `N` Rademacher vectors `z` (`E[zzᵀ] = I`), the
//!   mean of `zᵀ𝒫 J_v 𝒫 z`, an unbiased estimate; the probes of a sequence are drawn once and
//!   kept along its trajectory, so the integral is an unbiased estimate too.
//!
//! Every evaluation is one forward and backward pass over `B·M` rows (`B` sequences, `M`
//! products each; kernels in [`kernels`]).
//!
//! # The prior
//! The positive orthant is `2^{−K}` of `S^{K−1}`, whose area is `2π^{K/2}/Γ(K/2)`: the uniform
//! density is `p_0 = 2^K Γ(K/2) / (2π^{K/2})` per position ([`log_prior`]; `2/π` on the
//! quarter circle).
//!
//! # What is reported for discrete data ([`Protocol`])
//! A sequence of tokens is a vertex of the orthants (`x = √onehot`, on their boundary). The
//! flow is trained to carry the prior onto these vertices, so its density at `t = 1` is a sum
//! of ever narrower bumps around them, and the model's field at `t = 1` itself (never seen in
//! training, `t ∈ [0, 1)`) follows a target that diverges like `1/(1−t)`. Two quantities are
//! offered:
//! - [`Protocol::Vertex`] (the default) reports `−log p_{1−ε}(x)` at the vertex itself: the
//!   negative log-density of the model's marginal at time `1 − ε` (`ε = 10⁻³` by default),
//!   integrated from `t = 1 − ε` back to 0. It is a density with respect to the area of
//!   `(S^{K−1})^L`, not a probability: it falls as the model concentrates its mass on the data
//!   and can be negative; its reference points are the prior's `−log p_0` per position (a zero
//!   field) and the same figure for other models at the same `ε`, not the data's entropy.
//! - [`Protocol::Dequantized`] bounds the negative log-likelihood of the discrete model the
//!   sampler draws from, `P(s) = ∫_{A_s} p_1`, where `A_s` is the cell of points whose argmax
//!   is `s` at every position (the sampler reads out `argmax x²`). With any density `q(x|s)`
//!   supported in `A_s`, Jensen's inequality gives `−log P(s) ≤ E_q[log q(x|s) − log p_1(x)]`.
//!   `q` draws a point uniform in the cell (density `K·p_0` per position: the cells split the
//!   orthant into `K` congruent parts) and contracts it towards the vertex along the great
//!   circle, the angle scaled by [`NllConfig::contract`]. One draw per sequence estimates the
//!   bound without bias (the standard error over sequences includes the draw); the points are
//!   inside the orthant and the integration starts at `t = 1`. It is in the units of the
//!   data's entropy (a zero field gives exactly `log K` per token with `contract = 1`), but it
//!   is tight only when `q` matches `p_1`, and a trained flow's `p_1` is concentrated far more
//!   sharply than any such `q`: on the toy models the bound stays well above `log K`
//!   (BENCHMARKS.md).

pub mod field;
pub mod kernels;
mod sequences;

pub use sequences::{sequence_nll, start_points, SequenceNll};

use crate::device::Device;
use crate::error::{Error, Result};
use crate::flow::devices::{CpuOde, GpuOde};
use crate::flow::ode::{integrate_adaptive, integrate_fixed, Adaptive, OdeDevice, VectorField};
use crate::flow::sample::FlowModel;
use crate::flow::train::Geometry;
use crate::flow::Solver;
use crate::gpu::{GpuContext, GpuTensor};
use crate::rng::Rng;
use field::{CpuDivField, GpuDivField, Handover, Joint, Reverse};
use kernels::Probes;

/// The largest `L·K` for the exact divergence (`L·K` vector-Jacobian products per evaluation).
pub const MAX_EXACT_WIDTH: usize = 1024;
/// The most Hutchinson probes per sequence.
pub const MAX_PROBES: usize = 4096;
/// Philox stream of the dequantisation draws.
pub const STREAM_DEQUANT: u32 = 24;

/// How the divergence is computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Divergence {
    /// `L·K` vector-Jacobian products per field evaluation.
    #[default]
    Exact,
    /// Rademacher probes (their number in [`NllConfig::probes`]).
    Hutchinson,
}

/// Which quantity is reported for discrete sequences (see the [module docs](self)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Protocol {
    /// The negative log-density of the model at time `1 − ε` at the one-hot points.
    #[default]
    Vertex,
    /// An upper bound on the NLL of the argmax-decoded model (dequantisation in the argmax
    /// cells), in the units of the data's entropy.
    Dequantized,
}

/// Likelihood settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NllConfig {
    /// Exact or Hutchinson divergence.
    pub divergence: Divergence,
    /// Hutchinson probes per sequence.
    pub probes: usize,
    /// Integrator.
    pub solver: Solver,
    /// Steps of a fixed-step solver.
    pub steps: usize,
    /// Tolerances of [`Solver::Dopri5`].
    pub adaptive: Adaptive,
    /// Seed of the probes and of the dequantisation.
    pub seed: u64,
    /// What is reported for sequences.
    pub protocol: Protocol,
    /// [`Protocol::Vertex`]: the points are taken at `t = 1 − eps`.
    pub eps: f64,
    /// [`Protocol::Dequantized`]: the draws in the argmax cells are contracted towards the
    /// vertices, their angle scaled by this factor in `(0, 1]` (1: uniform in the cells).
    pub contract: f64,
    /// Sequences integrated together (`None`: chosen from the sizes).
    pub chunk: Option<usize>,
}

impl Default for NllConfig {
    /// Exact divergence, 20 RK4 steps, the density at the vertices at `t = 1 − 10⁻³`.
    fn default() -> Self {
        Self {
            divergence: Divergence::Exact,
            probes: 16,
            solver: Solver::Rk4,
            steps: 20,
            adaptive: Adaptive::default(),
            seed: 0,
            protocol: Protocol::Vertex,
            eps: 1e-3,
            contract: 1.0,
            chunk: None,
        }
    }
}

/// `ln Γ(n/2)` for `n ≥ 1`, exactly from `Γ(1) = 1`, `Γ(1/2) = √π` and `Γ(x+1) = xΓ(x)`.
fn ln_gamma_half(n: usize) -> f64 {
    let even = n.is_multiple_of(2);
    let mut x = if even { 1.0 } else { 0.5 };
    let mut acc = if even {
        0.0
    } else {
        0.5 * std::f64::consts::PI.ln()
    };
    while x < n as f64 / 2.0 {
        acc += x.ln();
        x += 1.0;
    }
    acc
}

/// Log-density of the prior on one position: `ln(2^K Γ(K/2) / (2π^{K/2}))`, the uniform
/// density on the positive orthant of `S^{K−1}` with respect to its area (`K ≥ 1`).
pub fn log_prior(k: usize) -> f64 {
    let kf = k as f64;
    kf * std::f64::consts::LN_2 + ln_gamma_half(k)
        - std::f64::consts::LN_2
        - 0.5 * kf * std::f64::consts::PI.ln()
}

/// The probes of one batch of `b` sequences.
fn probes_of(model: &FlowModel, cfg: &NllConfig, b: usize) -> Probes {
    let (l, k) = (model.config.mlp.seq_len, model.config.mlp.categories);
    let exact = cfg.divergence == Divergence::Exact;
    Probes {
        b,
        m: if exact { l * k } else { cfg.probes },
        l,
        k,
        exact,
    }
}

/// Refuse what cannot be computed, before any work.
pub fn check(model: &FlowModel, cfg: &NllConfig) -> Result<()> {
    if model.config.geometry != Geometry::Sphere {
        return Err(Error::InvalidArgument(
            "the likelihood is computed for models on the sphere; this model uses the linear \
             simplex geometry"
                .into(),
        ));
    }
    if model.config.arch != crate::nn::Arch::Mlp || model.config.cond.classes > 0 {
        return Err(Error::InvalidArgument(
            "the likelihood is computed for unconditional MLP models; this model is \
             convolutional or class-conditional"
                .into(),
        ));
    }
    let width = model.config.mlp.width();
    match cfg.divergence {
        Divergence::Exact if width > MAX_EXACT_WIDTH => {
            return Err(Error::InvalidArgument(format!(
                "the exact divergence needs L·K = {width} vector-Jacobian products per field \
                 evaluation, more than {MAX_EXACT_WIDTH}; use --div hutchinson"
            )))
        }
        Divergence::Hutchinson if cfg.probes == 0 || cfg.probes > MAX_PROBES => {
            return Err(Error::InvalidArgument(format!(
                "--probes {} must be in 1..={MAX_PROBES}",
                cfg.probes
            )))
        }
        _ => {}
    }
    if cfg.solver != Solver::Dopri5 && cfg.steps == 0 {
        return Err(Error::InvalidArgument("--steps must be at least 1".into()));
    }
    if !(cfg.eps > 0.0 && cfg.eps < 1.0) {
        return Err(Error::InvalidArgument(format!(
            "--eps {} must be in (0, 1)",
            cfg.eps
        )));
    }
    if !(cfg.contract > 0.0 && cfg.contract <= 1.0) {
        return Err(Error::InvalidArgument(format!(
            "--contract {} must be in (0, 1]",
            cfg.contract
        )));
    }
    if cfg.chunk == Some(0) {
        return Err(Error::InvalidArgument("chunk size must be positive".into()));
    }
    Ok(())
}

/// Sequences per batch: a multiple of 4 such that the `B·M` rows of the widest activation fit
/// one storage binding (and at most `rows` rows, at least 4 sequences).
fn chunk_size(
    model: &FlowModel,
    cfg: &NllConfig,
    n: usize,
    limit: u64,
    rows: usize,
) -> Result<usize> {
    let m = &model.config.mlp;
    let per_row = ((m.hidden.max(m.width()) + m.time_dim) * 4) as u64;
    let probes = probes_of(model, cfg, 1).m;
    let by_limit = (limit / per_row) as usize / probes;
    if by_limit < 4 {
        return Err(Error::Limit(format!(
            "{probes} vector-Jacobian products for 4 sequences exceed the device's binding \
             limit of {limit} bytes; use --div hutchinson with fewer --probes"
        )));
    }
    let want = cfg
        .chunk
        .unwrap_or(usize::MAX)
        .min(n.div_ceil(4) * 4)
        .min((rows / probes).max(4))
        .min(by_limit);
    Ok((want.max(4) / 4) * 4)
}

/// Log-densities per sequence and the work they took.
#[derive(Clone, Debug, PartialEq)]
pub struct Density {
    /// `log p_{t₁}(x)` of every sequence (nats, with respect to the area of `(S^{K−1})^L`).
    pub log_p: Vec<f64>,
    /// Field evaluations per sequence.
    pub evaluations: usize,
}

/// The joint state's buffers.
type Pair<D> = (<D as OdeDevice>::Buf, <D as OdeDevice>::Buf);

/// Integrate the joint state from `a` (the points at `t₁`, zero log-density change) to `t = 0`.
fn integrate<D: Handover, F: VectorField<Joint<D>>>(
    dev: &mut Joint<D>,
    field: &mut F,
    cfg: &NllConfig,
    a: &Pair<D>,
    b: &Pair<D>,
) -> Result<(Pair<D>, usize)> {
    match cfg.solver {
        Solver::Dopri5 => {
            let (x, st) = integrate_adaptive(dev, field, a, b, 0.0, 1.0, &cfg.adaptive, true)?;
            Ok((x, st.evaluations))
        }
        s => {
            let x = integrate_fixed(dev, field, s, a, b, 0.0, 1.0, cfg.steps, true)?;
            Ok((x, cfg.steps * s.tableau().stages()))
        }
    }
}

/// Rademacher probes of chunk `chunk`.
fn rademacher(seed: u64, chunk: usize, len: usize) -> Vec<f32> {
    let mut r = Rng::fork(seed, 0x0d1f_0000 + chunk as u64);
    (0..len)
        .map(|_| if r.next_u64() >> 63 == 0 { 1.0 } else { -1.0 })
        .collect()
}

/// Rows `from..from+b` of `points` (`[n, W]`), the last row repeated past the end.
fn padded(points: &[f32], w: usize, from: usize, b: usize) -> Vec<f32> {
    let n = points.len() / w;
    (from..from + b)
        .flat_map(|i| &points[i.min(n - 1) * w..(i.min(n - 1) + 1) * w])
        .copied()
        .collect()
}

/// `log p_{t₁}(x)` of `points` (`[n, L, K]` points of the closed positive orthants) under
/// `model` on `device` (see the [module docs](self)).
pub fn log_density(
    device: Device,
    model: &FlowModel,
    points: &[f32],
    t1: f32,
    cfg: &NllConfig,
) -> Result<Density> {
    check(model, cfg)?;
    let w = model.config.mlp.width();
    if points.is_empty() || !points.len().is_multiple_of(w) {
        return Err(Error::Shape(format!(
            "{} values are not whole sequences of L·K = {w}",
            points.len()
        )));
    }
    if let Some(bad) = points.iter().find(|v| !v.is_finite()) {
        return Err(Error::NonFinite(format!("a point holds {bad}")));
    }
    if !(t1 > 0.0 && t1 <= 1.0) {
        return Err(Error::InvalidArgument(format!(
            "t1 = {t1} must be in (0, 1]"
        )));
    }
    let n = points.len() / w;
    let mut density = match device {
        Device::Gpu(ctx) => log_density_gpu(ctx, model, points, n, t1, cfg)?,
        Device::Cpu => log_density_cpu(model, points, n, t1, cfg)?,
    };
    let prior = model.config.mlp.seq_len as f64 * log_prior(model.config.mlp.categories);
    for v in &mut density.log_p {
        if !v.is_finite() {
            return Err(Error::NonFinite(
                "the divergence integral is not finite; use more --steps or --solver dopri5".into(),
            ));
        }
        *v += prior;
    }
    Ok(density)
}

fn log_density_gpu(
    ctx: &GpuContext,
    model: &FlowModel,
    points: &[f32],
    n: usize,
    t1: f32,
    cfg: &NllConfig,
) -> Result<Density> {
    let (l, k, w) = (
        model.config.mlp.seq_len,
        model.config.mlp.categories,
        model.config.mlp.width(),
    );
    let b = chunk_size(model, cfg, n, ctx.max_binding(), 8192)?;
    let probes = probes_of(model, cfg, b);
    let mut field = GpuDivField::new(ctx, model, probes, Reverse { t1 })?;
    let mut dev = Joint {
        x: GpuOde::new(ctx, Geometry::Sphere, [b, l, k]),
        l: GpuOde::new(ctx, Geometry::Sphere, [b, 1, 1]),
    };
    let (a, c) = (dev.buffer()?, dev.buffer()?);
    let mut fixed = None;
    let mut out = Density {
        log_p: Vec::with_capacity(n),
        evaluations: 0,
    };
    for (chunk, from) in (0..n).step_by(b).enumerate() {
        a.0.write(ctx, &padded(points, w, from, b))?;
        a.1.write(ctx, &vec![0.0; b])?;
        if !probes.exact {
            field.set_probes(&rademacher(cfg.seed, chunk, probes.rows() * w))?;
        }
        let res: (GpuTensor, GpuTensor) = if cfg.solver == Solver::Dopri5 {
            let (res, evals) = integrate(&mut dev, &mut field, cfg, &a, &c)?;
            std::mem::take(&mut dev.x.rec).run(ctx)?;
            out.evaluations = out.evaluations.max(evals);
            res
        } else {
            if fixed.is_none() {
                // One recording of the whole integration, replayed per chunk.
                let (res, evals) = integrate(&mut dev, &mut field, cfg, &a, &c)?;
                fixed = Some((std::mem::take(&mut dev.x.rec), res));
                out.evaluations = evals;
            }
            let (rec, res) = fixed.as_ref().expect("recorded above");
            rec.run(ctx)?;
            res.clone()
        };
        let dl = res.1.to_vec(ctx)?;
        out.log_p
            .extend(dl.iter().take(n - from).map(|&v| v as f64));
    }
    Ok(out)
}

fn log_density_cpu(
    model: &FlowModel,
    points: &[f32],
    n: usize,
    t1: f32,
    cfg: &NllConfig,
) -> Result<Density> {
    let (k, w) = (model.config.mlp.categories, model.config.mlp.width());
    let b = chunk_size(model, cfg, n, u64::MAX, 2048)?;
    let probes = probes_of(model, cfg, b);
    let mut field = CpuDivField::new(model, probes, Reverse { t1 })?;
    let mut dev = Joint {
        x: CpuOde::new(Geometry::Sphere, b * w, k),
        l: CpuOde::new(Geometry::Sphere, b, 1),
    };
    let (a, c) = (dev.buffer()?, dev.buffer()?);
    let mut out = Density {
        log_p: Vec::with_capacity(n),
        evaluations: 0,
    };
    for (chunk, from) in (0..n).step_by(b).enumerate() {
        dev.x.bufs[a.0] = padded(points, w, from, b);
        dev.l.bufs[a.1] = vec![0.0; b];
        if !probes.exact {
            field.z = rademacher(cfg.seed, chunk, probes.rows() * w);
        }
        let (res, evals) = integrate(&mut dev, &mut field, cfg, &a, &c)?;
        out.evaluations = out.evaluations.max(evals);
        out.log_p
            .extend(dev.l.bufs[res.1].iter().take(n - from).map(|&v| v as f64));
    }
    Ok(out)
}

/// The divergence of `model`'s field at `points` (`[n, L, K]`) and time `t`, one value per
/// sequence (exact, or the Hutchinson estimate with the probes of `cfg.seed`).
pub fn divergence(
    device: Device,
    model: &FlowModel,
    points: &[f32],
    t: f32,
    cfg: &NllConfig,
) -> Result<Vec<f64>> {
    check(model, cfg)?;
    let (l, k, w) = (
        model.config.mlp.seq_len,
        model.config.mlp.categories,
        model.config.mlp.width(),
    );
    if points.is_empty() || !points.len().is_multiple_of(w) {
        return Err(Error::Shape(format!(
            "{} values are not whole sequences of L·K = {w}",
            points.len()
        )));
    }
    let n = points.len() / w;
    let b = n.div_ceil(4) * 4;
    let probes = probes_of(model, cfg, b);
    let z = rademacher(cfg.seed, 0, probes.rows() * w);
    // With t1 = 1 the joint field at s = 1 − t is (−v, −div v) at time t.
    let time = Reverse { t1: 1.0 };
    let div = match device {
        Device::Gpu(ctx) => {
            let mut field = GpuDivField::new(ctx, model, probes, time)?;
            if !probes.exact {
                field.set_probes(&z)?;
            }
            let mut dev = Joint {
                x: GpuOde::new(ctx, Geometry::Sphere, [b, l, k]),
                l: GpuOde::new(ctx, Geometry::Sphere, [b, 1, 1]),
            };
            let (a, c) = (dev.buffer()?, dev.buffer()?);
            a.0.write(ctx, &padded(points, w, 0, b))?;
            field.eval(&mut dev, &a, 1.0 - t, &c)?;
            std::mem::take(&mut dev.x.rec).run(ctx)?;
            c.1.to_vec(ctx)?
        }
        Device::Cpu => {
            let mut field = CpuDivField::new(model, probes, time)?;
            field.z = z;
            let mut dev = Joint {
                x: CpuOde::new(Geometry::Sphere, b * w, k),
                l: CpuOde::new(Geometry::Sphere, b, 1),
            };
            let (a, c) = (dev.buffer()?, dev.buffer()?);
            dev.x.bufs[a.0] = padded(points, w, 0, b);
            field.eval(&mut dev, &a, 1.0 - t, &c)?;
            dev.l.bufs[c.1].clone()
        }
    };
    Ok(div.iter().take(n).map(|&d| -(d as f64)).collect())
}
