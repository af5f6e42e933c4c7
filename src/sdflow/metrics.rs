//! Two-sample metrics between point clouds: MMD² with a Gaussian kernel and the energy
//! distance, as GPU pairwise-sum kernels (summed in f64 on the host) with f64 CPU references.
//!
//! Both are U-statistics (within-set pairs i = j are left out), so each is an unbiased
//! estimate of the population value and may be slightly negative when the sets agree.
//! - MMD²: mean k(x,x') + mean k(y,y') − 2 mean k(x,y), k(a,b) = exp(−‖a−b‖²/2h²).
//! - Energy distance: 2 mean ‖x−y‖ − mean ‖x−x'‖ − mean ‖y−y'‖.

use crate::error::{Error, Result};
use crate::gpu::{GpuContext, GpuTensor, KernelDef, Recorder, Work};

use super::score::points_shape;
use super::FLOW_SHADER;

crate::gpu_params! {
    /// Parameters of the pairwise sums.
    pub struct PairParams {
        /// Points in the first set.
        pub n_a: u32,
        /// Points in the second set.
        pub n_b: u32,
        /// Dimension.
        pub d: u32,
        /// 0: Gaussian kernel, 1: distance.
        pub kind: u32,
        /// 1: the sets are one set (skip j = i).
        pub same: u32,
        /// Workgroups.
        pub n_wg: u32,
        /// `1/(2h²)`.
        pub inv_2h2: f32,
        /// 1: add into the output.
        pub accumulate: u32,
        /// First row of the second set in this dispatch.
        pub b_begin: u32,
        /// End of the rows of the second set in this dispatch.
        pub b_end: u32,
        /// Padding.
        pub _pad0: u32,
        /// Padding.
        pub _pad1: u32,
    }
}

/// `sums[i] (+)= Σ_j f(‖a_i − b_j‖)` over a range of rows of `b`.
pub static PAIR_SUMS: KernelDef = KernelDef::new(&FLOW_SHADER, "pair_sums", &["a", "b", "sums"])
    .params::<PairParams>()
    .workgroup(64);

/// Σ_i Σ_j f(‖a_i − b_j‖) on the GPU (`same`: a and b are one set and j = i is skipped).
fn pair_sum(
    ctx: &GpuContext,
    a: &GpuTensor,
    b: &GpuTensor,
    kind: u32,
    same: bool,
    h: f64,
) -> Result<f64> {
    let (na, d) = points_shape(ctx, a, "first point set")?;
    let (nb, db) = points_shape(ctx, b, "second point set")?;
    if d != db {
        return Err(Error::Shape(format!(
            "point sets of dimensions {d} and {db} cannot be compared"
        )));
    }
    let n_wg = (na as u32).div_ceil(64);
    let out = GpuTensor::<f32>::zeros(ctx, &[na])?;
    // Split the b rows so one invocation stays within a software adapter's loop budget.
    let per_row = 64 + d.div_ceil(32) * (32 + d.min(32) * 65) + 64;
    let rows = match super::score::loop_budget(ctx) {
        Some(b) => ((b / per_row).max(1) * 64).min(nb),
        None => nb,
    };
    let mut rec = Recorder::new();
    let mut b0 = 0;
    while b0 < nb {
        let b1 = (b0 + rows).min(nb);
        let p = PairParams {
            n_a: na as u32,
            n_b: nb as u32,
            d: d as u32,
            kind,
            same: same as u32,
            n_wg,
            inv_2h2: (1.0 / (2.0 * h * h)) as f32,
            accumulate: (b0 > 0) as u32,
            b_begin: b0 as u32,
            b_end: b1 as u32,
            ..Default::default()
        };
        let args = [a.into(), b.into(), (&out).into()];
        PAIR_SUMS.launch(ctx, &mut rec, Work::Groups(n_wg as u64), &args, |_| p)?;
        b0 = b1;
    }
    rec.run(ctx)?;
    Ok(out.to_vec(ctx)?.iter().map(|&v| v as f64).sum())
}

fn sizes(x: &GpuTensor, y: &GpuTensor) -> Result<(f64, f64)> {
    let (n, m) = (x.shape()[0], y.shape()[0]);
    if n < 2 || m < 2 {
        return Err(Error::Shape(format!(
            "two-sample metrics need at least 2 points per set, got {n} and {m}"
        )));
    }
    Ok((n as f64, m as f64))
}

fn check_h(h: f64) -> Result<()> {
    if !(h.is_finite() && h > 0.0) {
        return Err(Error::InvalidArgument(format!(
            "kernel bandwidth must be positive, got {h}"
        )));
    }
    Ok(())
}

/// Unbiased MMD² between `x` `[n, d]` and `y` `[m, d]` with a Gaussian kernel of bandwidth
/// `h` (GPU).
pub fn mmd2(ctx: &GpuContext, x: &GpuTensor, y: &GpuTensor, h: f64) -> Result<f64> {
    check_h(h)?;
    points_shape(ctx, x, "first point set")?;
    points_shape(ctx, y, "second point set")?;
    let (n, m) = sizes(x, y)?;
    let kxx = pair_sum(ctx, x, x, 0, true, h)?;
    let kyy = pair_sum(ctx, y, y, 0, true, h)?;
    let kxy = pair_sum(ctx, x, y, 0, false, h)?;
    Ok(kxx / (n * (n - 1.0)) + kyy / (m * (m - 1.0)) - 2.0 * kxy / (n * m))
}

/// Energy distance between `x` `[n, d]` and `y` `[m, d]` (GPU).
pub fn energy_distance(ctx: &GpuContext, x: &GpuTensor, y: &GpuTensor) -> Result<f64> {
    points_shape(ctx, x, "first point set")?;
    points_shape(ctx, y, "second point set")?;
    let (n, m) = sizes(x, y)?;
    let dxx = pair_sum(ctx, x, x, 1, true, 1.0)?;
    let dyy = pair_sum(ctx, y, y, 1, true, 1.0)?;
    let dxy = pair_sum(ctx, x, y, 1, false, 1.0)?;
    Ok(2.0 * dxy / (n * m) - dxx / (n * (n - 1.0)) - dyy / (m * (m - 1.0)))
}

fn dist(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&p, &q)| (p as f64 - q as f64).powi(2))
        .sum::<f64>()
        .sqrt()
}

fn cpu_sum(a: &[f32], b: &[f32], d: usize, same: bool, f: impl Fn(f64) -> f64) -> f64 {
    let (na, nb) = (a.len() / d, b.len() / d);
    let mut s = 0.0;
    for i in 0..na {
        for j in 0..nb {
            if !(same && i == j) {
                s += f(dist(&a[i * d..(i + 1) * d], &b[j * d..(j + 1) * d]));
            }
        }
    }
    s
}

fn cpu_sizes(x: &[f32], y: &[f32], d: usize) -> Result<(f64, f64)> {
    if d == 0
        || !x.len().is_multiple_of(d)
        || !y.len().is_multiple_of(d)
        || x.len() < 2 * d
        || y.len() < 2 * d
    {
        return Err(Error::Shape(format!(
            "point sets of {} and {} values do not hold ≥ 2 points of dimension {d}",
            x.len(),
            y.len()
        )));
    }
    Ok(((x.len() / d) as f64, (y.len() / d) as f64))
}

/// f64 CPU reference of [`mmd2`] on row-major slices.
pub fn mmd2_cpu(x: &[f32], y: &[f32], d: usize, h: f64) -> Result<f64> {
    check_h(h)?;
    let (n, m) = cpu_sizes(x, y, d)?;
    let k = |r: f64| (-r * r / (2.0 * h * h)).exp();
    Ok(
        cpu_sum(x, x, d, true, k) / (n * (n - 1.0)) + cpu_sum(y, y, d, true, k) / (m * (m - 1.0))
            - 2.0 * cpu_sum(x, y, d, false, k) / (n * m),
    )
}

/// f64 CPU reference of [`energy_distance`] on row-major slices.
pub fn energy_distance_cpu(x: &[f32], y: &[f32], d: usize) -> Result<f64> {
    let (n, m) = cpu_sizes(x, y, d)?;
    let id = |r: f64| r;
    Ok(2.0 * cpu_sum(x, y, d, false, id) / (n * m)
        - cpu_sum(x, x, d, true, id) / (n * (n - 1.0))
        - cpu_sum(y, y, d, true, id) / (m * (m - 1.0)))
}

/// Median heuristic bandwidth: the median distance between distinct points of the pooled
/// sets, over an evenly strided subsample of at most 256 points from each set.
pub fn median_bandwidth(x: &[f32], y: &[f32], d: usize) -> Result<f64> {
    cpu_sizes(x, y, d)?;
    let pick = |s: &[f32]| -> Vec<f32> {
        let n = s.len() / d;
        let stride = n.div_ceil(256).max(1);
        (0..n)
            .step_by(stride)
            .flat_map(|i| s[i * d..(i + 1) * d].to_vec())
            .collect()
    };
    let mut pool = pick(x);
    pool.extend(pick(y));
    let np = pool.len() / d;
    let mut ds = Vec::with_capacity(np * (np - 1) / 2);
    for i in 0..np {
        for j in i + 1..np {
            ds.push(dist(&pool[i * d..(i + 1) * d], &pool[j * d..(j + 1) * d]));
        }
    }
    ds.sort_by(|a, b| a.total_cmp(b));
    let h = ds[ds.len() / 2];
    if h > 0.0 {
        Ok(h)
    } else {
        Ok(1.0)
    }
}
