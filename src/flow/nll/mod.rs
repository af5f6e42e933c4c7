//! Likelihood of a flow model of any method, architecture and conditioning: the continuous
//! normalizing flow's change of variables on the product of spheres (Fisher-Flow) or within the
//! simplices (the simplex methods), with the divergence from the autodiff's vector-Jacobian
//! products.
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
//! The network is the model's own graph ([`crate::nn::Network`]: the MLP over `[B, L·K]` or
//! the convolutional network over `[B·L, K]`, the same memory), so both architectures go
//! through the same products. The exact divergence's `L·K` products per evaluation grow with
//! the sequence: at DNA lengths (`L·K = 512` at `L = 128`) Hutchinson's few probes are the
//! practical estimator (BENCHMARKS.md).
//!
//! # Class-conditional models
//! A model conditioned on a class `c` has a field `v_t(x | c)` and so a density `p_t(x | c)`
//! for every class: the likelihood of a sequence is given its label ([`sequence_nll`] reads
//! the data's labels; [`sequence_nll_given`] scores every sequence under one class). The
//! network reads the label at every evaluation; classifier-free guidance is not part of the
//! likelihood (the field is the conditional one, guidance weight 1).
//!
//! A model trained with a per-position signal track has a density `p_t(x | s)` for every
//! track `s`: each sequence is scored given its own track (the data's,
//! [`SequenceDataset::with_signal`](crate::data::SequenceDataset::with_signal)), read by every
//! probe row of the sequence like its label ([`Given`]).
//!
//! # The simplex methods
//! Linear FM, the Fisher–Rao flow on the simplex and Dirichlet FM integrate on the simplex with
//! the sampler's step (the velocity's mean removed, so the motion stays in `Σ p = 1`; a point
//! leaving the simplex is clamped back onto a face, as in the sampler). The flat geometry of
//! the affine simplex gives the divergence `tr(Π J_v Π)`, `Π = I − 11ᵀ/K` the orthogonal
//! projection onto its tangent space per position, computed as above with cotangents `Π z`;
//! densities are with respect to the Lebesgue measure of the first `K − 1` coordinates. The
//! priors ([`prior`]): `Dir(1)`, density `(K−1)!` per position (linear and Dirichlet FM), and
//! `Dir(½)`, density `Γ(K/2) π^{−K/2} Π p_i^{−1/2}` (the Fisher–Rao flow: the sphere's prior
//! pushed forward by `p = x²`), which depends on where the trajectory ends, so the end points
//! are read back; a trajectory that reaches a face has an infinite `Dir(½)` density there and
//! is reported as an error.
//!
//! Dirichlet FM's field is `v = Σ_i q_i C(x_i, t)(e_i − x)` with `q = softmax` of the
//! network's logits and `C` the sampler's table; its divergence is one vector-Jacobian product
//! of the network per probe with the logits' cotangent `S Mᵀ Π z`, plus the divergence at fixed
//! logits, `Σ_i q_i (C′(x_i)(1 − x_i) − (K − 1) C(x_i))`, added exactly ([`dirichlet`]).
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
//!
//! The simplex methods use the same protocols on the simplex: the vertex is the one-hot point
//! itself, and the dequantized draws are `Dir(1)` points moved into the argmax cell by the same
//! swap (density `K·(K−1)!` per position), contracted linearly towards the vertex. Dirichlet FM
//! differs in two ways:
//! - its time runs to [`T_MAX`](crate::flow::dirichlet::T_MAX) (= 7), where its path
//!   `Dir(1 + T e_s)` is still smooth, so the points are taken at `t = T_MAX`, not `1 − ε`;
//! - the vertex itself cannot be used: at a face `x_i = 0` the learned field's divergence is
//!   infinite (`C′(x) ~ −ln x` as `x → 0`, weighted by `q_i > 0`; the exact posterior would
//!   weight it by `x_i^t`). [`Protocol::Vertex`] therefore reports `−log p_{T}(x_ε)` at the
//!   vertex moved by `ε` towards the simplex's centre, `x_ε = (1 − ε)e_s + ε/K`. The exact
//!   marginal at `T` has density `P(s) · (Γ(K+T)/Γ(1+T))^L` at the vertex of `s` (the other
//!   components of the mixture vanish there), so an exact model reports the data's NLL minus
//!   `L · ln(Γ(K+T)/Γ(1+T))` ([`dirichlet_vertex_offset`]) up to `O(ε)`: the figure is in the
//!   units of the data's entropy up to that constant. The dequantized bound is taken at `T`
//!   for the argmax of `x`, while the sampler reads out the argmax of the denoiser's `q`: it
//!   bounds the NLL of a different decoder than the sampler's.

mod density;
pub mod dirichlet;
pub mod field;
pub mod kernels;
pub mod prior;
mod sequences;

pub use density::{divergence, log_density, log_density_given, Density, Given};
pub use prior::{
    dirichlet_vertex_offset, log_dirichlet1, log_dirichlet_half, log_prior, log_prior_of,
};
pub use sequences::{
    class_nll, sequence_nll, sequence_nll_given, start_points, ClassNll, SequenceNll,
};

use crate::error::{Error, Result};
use crate::flow::ode::Adaptive;
use crate::flow::sample::FlowModel;
use crate::flow::train::Geometry;
use crate::flow::Solver;
use kernels::Probes;

/// The largest `L·K` for the exact divergence (`L·K` vector-Jacobian products per evaluation).
pub const MAX_EXACT_WIDTH: usize = 1024;
/// The most Hutchinson probes per sequence.
pub const MAX_PROBES: usize = 4096;
/// Philox stream of the dequantisation draws.
pub const STREAM_DEQUANT: u32 = 24;
/// The most bytes of one activation of a batch of vector-Jacobian products.
const HOST_ACTIVATION_BYTES: u64 = 1 << 26;

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
        flat: model.config.geometry != Geometry::Sphere,
    }
}

/// The end of the method's time span: where the data points are taken (the vertex protocol
/// takes them at `1 − ε` on the methods whose field diverges at `t = 1`).
pub fn t_end(model: &FlowModel, cfg: &NllConfig, protocol: Protocol) -> f32 {
    match (model.config.geometry, protocol) {
        (Geometry::Dirichlet, _) => crate::flow::dirichlet::T_MAX,
        (_, Protocol::Dequantized) => 1.0,
        (_, Protocol::Vertex) => (1.0 - cfg.eps) as f32,
    }
}

/// Refuse what cannot be computed, before any work.
pub fn check(model: &FlowModel, cfg: &NllConfig) -> Result<()> {
    model.config.validate()?;
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
    let per_row = (model.config.widest_row() * 4) as u64;
    // On the host, at most about 64 MiB per activation.
    let rows = rows.min(((HOST_ACTIVATION_BYTES / per_row) as usize).max(4));
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
