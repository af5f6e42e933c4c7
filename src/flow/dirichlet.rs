//! Dirichlet flow matching (Stark et al. 2024), the simplex baseline of the toy benchmark.
//!
//! Probability path: given the data point `x1 = e_i`, `x_t ~ Dir(1 + t·e_i)` for `t ≥ 0`
//! (`α = 1 + t` on the data's category, 1 elsewhere): uniform on the simplex at `t = 0`,
//! concentrating at the vertex `e_i` as `t` grows. The coordinate `x_i` is then
//! `Beta(1 + t, K − 1)`, and the conditional field that transports the path is
//! `u_t(x | e_i) = C(x_i, t) (e_i − x)` with
//! `C(x, t) = −∂_a I_x(a, K − 1) · B(a, K − 1) / (x^{a−1} (1 − x)^{K−1})`, `a = 1 + t`,
//! `I` the regularised incomplete beta function ([`c_factor`]).
//!
//! Training: the network predicts the denoising posterior `p̂(x1 | x_t)` as logits per
//! position, trained by cross-entropy against the one-hot data ([`MlpLoss::SoftmaxXent`]);
//! times are drawn as `t ~ Exp(mean 2)` and paths by Gamma draws ([`host_batch`]).
//! Sampling: from `Dir(1)` at `t = 0` integrate the marginal field
//! `v = Σ_i p̂_i u_t(x | e_i)` to [`T_MAX`] and read out `argmax p̂` there. The time scale 2,
//! `T_MAX = 7` (`α` from 1 to 8) and the read-out are those of the reference implementation.
//!
//! `C` is computed in f64 ([`c_factor`]) and, for sampling, tabulated once per time on a grid
//! in `√x` ([`CTable`]) that the CPU sampler and the GPU kernel interpolate linearly.
//!
//! [`MlpLoss::SoftmaxXent`]: crate::nn::MlpLoss::SoftmaxXent

use crate::error::{Error, Result};
use crate::gpu::{GpuContext, GpuTensor, Recorder, Work};
use crate::kernels::rng::PhiloxStream;

use super::paths::{params, rows_k, DIRICHLET_MIX};

/// The end of the sampling path (`α_max = 8` in the reference implementation).
pub const T_MAX: f32 = 7.0;
/// The mean of the training times `t ~ Exp(mean)` (`alpha_scale` of the reference
/// implementation).
pub const TIME_SCALE: f64 = 2.0;
/// The largest K the sampler's tables support (their cost grows with K).
pub const MAX_K: usize = 1024;
/// Intervals of a [`CTable`].
pub const TABLE_INTERVALS: usize = 2048;

/// `H_j(a) = Σ_{m<j} 1/(a + m)`, the derivative in `a` of `ln (a)_j`.
fn harmonic(a: f64, j: usize) -> f64 {
    (0..j).map(|m| 1.0 / (a + m as f64)).sum()
}

/// The regularised incomplete beta function `I_x(a, n)` for an integer `n ≥ 1`:
/// `x^a Σ_{j<n} (a)_j / j! (1 − x)^j`.
pub fn beta_cdf(x: f64, a: f64, n: usize) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let y = 1.0 - x;
    let (mut term, mut s) = (1.0, 0.0);
    for j in 0..n {
        s += term;
        term *= (a + j as f64) / (j as f64 + 1.0) * y;
    }
    (a * x.ln()).exp() * s
}

/// `C(x, t)` for K categories, in f64: the factor of the conditional field
/// `u_t(x | e_i) = C(x_i, t)(e_i − x)` (see the [module docs](self)); 0 at `x = 0`.
///
/// With `a = 1 + t`, `n = K − 1`, `y = 1 − x` and `H_j = Σ_{m<j} 1/(a + m)`:
/// `∂_a I_x(a, n) = x^a Σ_{j<n} (a)_j/j! y^j (ln x + H_j) = −x^a Σ_{j≥n} (…)`, so
/// `C = −x Σ_{j<n} d_j (ln x + H_j)` with `d_{n−1} = 1/((a + n − 1) y)`,
/// `d_{j−1} = d_j · j / ((a + j − 1) y)`, or `C = (x/n) Σ_{j≥n} r_j (ln x + H_j)` with
/// `r_n = 1`, `r_{j+1} = r_j (a + j)/(j + 1) · y`. Below `x* = e^{−H_n}` every term of the
/// first sum is negative, above it every term of the second is positive: each side is summed
/// without cancellation.
pub fn c_factor(x: f64, t: f64, k: usize) -> f64 {
    if x.is_nan() || t.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 || k < 2 {
        return 0.0;
    }
    let (a, n) = (1.0 + t.max(0.0), k - 1);
    let x = x.min(1.0);
    let (y, lx) = (1.0 - x, x.ln());
    let hn = harmonic(a, n);
    if lx + hn <= 0.0 {
        let mut h = hn - 1.0 / (a + (n - 1) as f64);
        let mut d = 1.0 / ((a + (n - 1) as f64) * y);
        let mut s = 0.0;
        for j in (0..n).rev() {
            s += d * (lx + h);
            if j > 0 {
                let am = a + (j - 1) as f64;
                d *= j as f64 / (am * y);
                h -= 1.0 / am;
            }
        }
        -x * s
    } else {
        let (mut r, mut h, mut s) = (1.0, hn, 0.0);
        let mut j = n;
        loop {
            let term = r * (lx + h);
            s += term;
            let ratio = (a + j as f64) / (j as f64 + 1.0) * y;
            if (term <= 1e-17 * s && ratio < 1.0) || r == 0.0 || j > n + 50_000_000 {
                break;
            }
            r *= ratio;
            h += 1.0 / (a + j as f64);
            j += 1;
        }
        x * s / n as f64
    }
}

/// `C(·, t)` for K categories at `x = (j / N)²`, `j = 0..=N` ([`TABLE_INTERVALS`] = N),
/// interpolated linearly in `√x`.
#[derive(Clone, Debug, PartialEq)]
pub struct CTable {
    /// The values, `N + 1` of them.
    pub values: Vec<f64>,
}

impl CTable {
    /// The table of time `t` for `k` categories.
    pub fn new(t: f64, k: usize) -> Self {
        let n = TABLE_INTERVALS;
        let values = (0..=n)
            .map(|j| {
                let u = j as f64 / n as f64;
                c_factor(u * u, t, k)
            })
            .collect();
        Self { values }
    }

    /// `C(x, t)` by linear interpolation in `√x` (the GPU kernel's arithmetic, in f64).
    pub fn at(&self, x: f64) -> f64 {
        let n = self.values.len() - 1;
        let f = x.clamp(0.0, 1.0).sqrt() * n as f64;
        let j = (f as usize).min(n - 1);
        let w = f - j as f64;
        self.values[j] * (1.0 - w) + self.values[j + 1] * w
    }
}

/// Tables by time, built once each (the sampler evaluates the same times chunk after chunk).
#[derive(Debug, Default)]
pub struct TableCache {
    k: usize,
    tables: std::collections::HashMap<u32, CTable>,
}

impl TableCache {
    /// An empty cache for `k` categories.
    pub fn new(k: usize) -> Self {
        Self {
            k,
            tables: Default::default(),
        }
    }
    /// The table of time `t`.
    pub fn get(&mut self, t: f32) -> &CTable {
        let k = self.k;
        self.tables
            .entry(t.to_bits())
            .or_insert_with(|| CTable::new(t as f64, k))
    }
}

/// An error unless K is in the range the Dirichlet sampler supports.
pub fn check_k(k: usize) -> Result<()> {
    if !(2..=MAX_K).contains(&k) {
        return Err(Error::InvalidArgument(format!(
            "Dirichlet flow matching supports 2 ≤ K ≤ {MAX_K} (its sampler tabulates an \
             incomplete-beta derivative whose cost grows with K); got K = {k}"
        )));
    }
    Ok(())
}

/// The marginal field of one row: `v = Σ_i p_i C(x_i) (e_i − x)` with `p = softmax(z)`,
/// written into `out` (f64 arithmetic, the GPU kernel's formula).
pub fn mix_row(x: &[f32], z: &[f32], table: &CTable, out: &mut [f32]) {
    let m = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let e: Vec<f64> = z.iter().map(|&v| (v as f64 - m).exp()).collect();
    let se: f64 = e.iter().sum();
    let pc: Vec<f64> = e
        .iter()
        .zip(x)
        .map(|(ei, &xi)| ei / se * table.at(xi as f64))
        .collect();
    let mean_c: f64 = pc.iter().sum();
    for ((o, &p), &xi) in out.iter_mut().zip(&pc).zip(x) {
        *o = (p - xi as f64 * mean_c) as f32;
    }
}

/// Record the marginal field `out ← Σ_i softmax(z)_i C(x_i) (e_i − x)` per row of `[B, L, K]`
/// tensors, `C` read from `table` (the [`CTable`] values in f32).
pub fn mix(
    ctx: &GpuContext,
    rec: &mut Recorder,
    x: &GpuTensor<f32>,
    z: &GpuTensor<f32>,
    table: &GpuTensor<f32>,
    out: &GpuTensor<f32>,
) -> Result<()> {
    let (rows, k) = rows_k(x, "x")?;
    if z.shape() != x.shape() || out.shape() != x.shape() || table.len() < 2 {
        return Err(Error::Shape(format!(
            "Dirichlet field of x {:?}, logits {:?} into {:?} with a table of {}",
            x.shape(),
            z.shape(),
            out.shape(),
            table.len()
        )));
    }
    let p = params(rows, k, 1, table.len() - 1)?;
    let args = [x.into(), z.into(), table.into(), out.into()];
    DIRICHLET_MIX.launch(ctx, rec, Work::Threads(rows as u64), &args, |_| p)
}

/// A standard normal from two uniforms (Box–Muller).
fn normal(s: &mut PhiloxStream) -> f64 {
    let u1 = 1.0 - s.next_f64();
    let u2 = s.next_f64();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A `Gamma(shape, 1)` draw for `shape ≥ 1` (Marsaglia–Tsang).
pub fn gamma(s: &mut PhiloxStream, shape: f64) -> f64 {
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let z = normal(s);
        let v = (1.0 + c * z).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = 1.0 - s.next_f64();
        if u.ln() < 0.5 * z * z + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// A training time `t ~ Exp(mean TIME_SCALE)` from a uniform in `[0, 1)`.
pub fn time_of(u: f32) -> f32 {
    (-TIME_SCALE * (1.0 - u as f64).ln()) as f32
}

/// Points of the conditional paths: row `r` (one position of batch element `r / l`) is drawn
/// from `Dir(1 + t[r / l]·e_{tok})`, `tok` the hot category of `onehot`'s row `r`, by Gamma
/// draws from `stream` (rows of `k`).
pub fn conditional_points(
    onehot: &[f32],
    t: &[f32],
    l: usize,
    k: usize,
    s: &mut PhiloxStream,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(onehot.len());
    for (r, row) in onehot.chunks(k).enumerate() {
        let tb = t[r / l] as f64;
        let g: Vec<f64> = row
            .iter()
            .map(|&h| {
                if h > 0.5 {
                    gamma(s, 1.0 + tb)
                } else {
                    -(1.0 - s.next_f64()).ln()
                }
            })
            .collect();
        let total: f64 = g.iter().sum();
        out.extend(g.iter().map(|v| (v / total) as f32));
    }
    out
}

/// A training batch `(x_t, t, x1)` of the Dirichlet paths: times `t = time_of(u)` per
/// sequence from the uniforms `u`, points by [`conditional_points`] with the draws of
/// `(seed, step, stream)`, the target the one-hot data `x1` (`[B, L, K]`).
pub fn host_batch(
    x1: Vec<f32>,
    u: &[f32],
    l: usize,
    k: usize,
    seed: u64,
    step: u64,
    stream: u32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let t: Vec<f32> = u.iter().map(|&v| time_of(v)).collect();
    let mut s = PhiloxStream::new(seed, step, stream);
    let xt = conditional_points(&x1, &t, l, k, &mut s);
    (xt, t, x1)
}

/// The exact posterior `p(x1 = e_i | x_t = x) ∝ p_i x_i^t` of the path for a categorical `p`
/// (the weights of the exact marginal field).
pub fn posterior(x: &[f64], t: f64, p: &[f64]) -> Vec<f64> {
    let logw: Vec<f64> = x
        .iter()
        .zip(p)
        .map(|(&xi, &pi)| {
            if pi > 0.0 && xi > 0.0 {
                pi.ln() + t * xi.ln()
            } else {
                f64::NEG_INFINITY
            }
        })
        .collect();
    let m = logw.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = logw.iter().map(|l| (l - m).exp()).collect();
    let z: f64 = w.iter().sum();
    w.iter().map(|v| v / z).collect()
}
