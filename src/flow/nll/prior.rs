//! The prior's log-density of each method, per position, with respect to the measure the
//! divergence is taken in: the area of the sphere (Fisher-Flow) or the Lebesgue measure of the
//! simplex's first `K − 1` coordinates (the simplex methods; the flow moves within the affine
//! simplex, so any translation-invariant measure on it gives the same divergence).

use crate::flow::train::Geometry;

/// `ln Γ(n/2)` for `n ≥ 1`, exactly from `Γ(1) = 1`, `Γ(1/2) = √π` and `Γ(x+1) = xΓ(x)`.
pub(super) fn ln_gamma_half(n: usize) -> f64 {
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

/// `ln (K−1)!`: the `Dir(1)` density on the simplex, uniform (`K ≥ 1`).
pub fn log_dirichlet1(k: usize) -> f64 {
    (1..k).map(|i| (i as f64).ln()).sum()
}

/// `ln Dir(½)(p) = ln Γ(K/2) − (K/2) ln π − ½ Σ ln p_i` for one position's `p`.
pub fn log_dirichlet_half(p: &[f32]) -> f64 {
    let k = p.len();
    ln_gamma_half(k)
        - 0.5 * k as f64 * std::f64::consts::PI.ln()
        - 0.5 * p.iter().map(|&v| (v as f64).ln()).sum::<f64>()
}

/// Whether the prior's density depends on the point (then the end points are read back).
pub fn depends_on_point(g: Geometry) -> bool {
    g == Geometry::FisherRaoSimplex
}

/// The prior's log-density of one sequence's points `x0` (`[L, K]`) under method `g`: uniform
/// on the orthants (Fisher-Flow), `Dir(1)` (linear and Dirichlet FM) or `Dir(½)` (the
/// Fisher–Rao flow on the simplex, whose prior is the sphere's pushed forward by `p = x²`).
pub fn log_prior_of(g: Geometry, k: usize, x0: &[f32]) -> f64 {
    let l = (x0.len() / k) as f64;
    match g {
        Geometry::Sphere => l * log_prior(k),
        Geometry::Simplex | Geometry::Dirichlet => l * log_dirichlet1(k),
        Geometry::FisherRaoSimplex => x0.chunks(k).map(log_dirichlet_half).sum(),
    }
}

/// `ln(Γ(K + T)/Γ(1 + T))` at `T = T_MAX` (an integer): the log-density of `Dir(1 + T·e_s)`
/// at its vertex `e_s`. Dirichlet FM's exact marginal at `T` has density `P(s)` times this per
/// position at the vertex of a sequence `s` (the other components vanish there), so an exact
/// model's `−log p_T` at the vertices is the data's NLL minus `L` times this.
pub fn dirichlet_vertex_offset(k: usize) -> f64 {
    let t = crate::flow::dirichlet::T_MAX as usize;
    (t + 1..t + k).map(|j| (j as f64).ln()).sum()
}
