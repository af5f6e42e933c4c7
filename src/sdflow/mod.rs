//! Score-difference flow (Weber 2023) on point clouds in R^d.
//!
//! The flow v(x) = ∇log p_σ(x) − ∇log q_σ(x) between Gaussian-smoothed target and source
//! distributions has a closed form over samples {y_j} of the target and {x_i} of the source:
//!
//! v(x̃) = (1/σ²) [ Σ_j w_j(x̃) y_j − Σ_i u_i(x̃) x_i ],  w = softmax_j(−‖x̃−y_j‖²/2σ²), u likewise.
//!
//! - [`score`]: the tiled (flash-attention style) GPU kernel for v, a naive two-pass baseline
//!   and an f64 CPU reference.
//! - [`particles`]: particle optimisation x ← x + η σ² v(x + σε) with a geometric σ schedule,
//!   entirely on the GPU.
//! - [`model`]: model optimisation, a generator MLP regressed onto the moved particles
//!   (stop-gradient targets g_θ(z) + η σ² v), one recording per step.
//! - [`data`]: seeded toy targets (ring8, moons, checkerboard, swissroll) and a point-file reader.
//! - [`metrics`]: MMD² (Gaussian kernel) and energy distance, GPU and CPU.
//! - [`plot`]: an SVG scatter plot of target vs generated points.

pub mod data;
pub mod metrics;
pub mod model;
pub mod particles;
pub mod plot;
pub mod score;

use crate::gpu::{lib, KernelDef, ShaderDef};

/// `shaders/sdflow_score.wgsl`: the tiled score difference and the naive baseline.
pub static SCORE_SHADER: ShaderDef = ShaderDef::new(
    "sdflow_score",
    &[lib::GRID, include_str!("../../shaders/sdflow_score.wgsl")],
)
.slots(&[
    "queries", "samples", "state", "part_ml", "part_sum", "t_ml", "t_sum", "s_ml", "s_sum",
    "logits", "out",
]);

/// `shaders/sdflow_flow.wgsl`: particle steps, latents and pairwise sums.
pub static FLOW_SHADER: ShaderDef = ShaderDef::new(
    "sdflow_flow",
    &[
        lib::GRID,
        lib::PHILOX,
        include_str!("../../shaders/sdflow_flow.wgsl"),
    ],
)
.slots(&["state", "v", "x", "xt", "z", "a", "b", "sums"]);

/// Every kernel of the family.
pub fn kernels() -> Vec<&'static KernelDef> {
    vec![
        &score::SCORE_PARTIAL,
        &score::SCORE_PARTIAL4,
        &score::SCORE_COMBINE,
        &score::NAIVE_LOGITS,
        &score::NAIVE_REDUCE,
        &particles::PERTURB,
        &particles::UPDATE,
        &particles::ADVANCE,
        &model::DRAW_LATENTS,
        &metrics::PAIR_SUMS,
    ]
}

pub use data::{parse_points, read_points, toy_target, Rng, TOY_TARGETS};
pub use metrics::{energy_distance, energy_distance_cpu, median_bandwidth, mmd2, mmd2_cpu};
pub use model::{Generator, ModelConfig, ModelFlow, ModelProgress};
pub use particles::{ParticleConfig, ParticleFlow, Progress};
pub use score::{
    score_difference, score_difference_cpu, score_difference_naive, sigma_state, NaiveScoreDiff,
    ScoreDiff, MAX_DIM,
};
