//! Manifold kernels of Fisher-Flow on the positive orthant of the unit sphere `S^{K-1}_+`:
//! the maps between simplex and sphere, `exp_map`, `log_map`, `slerp`, the fused training
//! target [`interpolant_target`], [`proj_tangent`], [`geodesic_distance`] and the sampler's
//! [`euler_step`]. The f64 CPU reference of the same maths is in [`reference`](mod@reference).
//!
//! Tensors are `[.., K]` f32, row-major; a row (one sequence position) is a point of the sphere
//! or a tangent vector. The interpolants take `[B, L, K]` points and a `[B]` tensor of times.
//!
//! # Work layout
//! A row is processed by `T` invocations ([`lanes_on`]: a power of two from K), a workgroup of
//! 256 invocations handles `256 / T` rows, lanes stride over K and the row's dot products are
//! reduced in workgroup memory. Tensors larger than one storage binding are split into row
//! chunks bound at offsets.
//!
//! # Numerics
//! Angles are evaluated as `θ = 2·atan2(‖y−x‖, ‖y+x‖)`, which equals `arccos(clamp(⟨x,y⟩))` on
//! the unit sphere and keeps full precision for nearby points (arccos loses half the digits
//! there). Only the Euler step folds its result back into the orthant (`abs`), as in the paper's
//! sampler; `exp_map` itself is the plain sphere map.

use std::cell::Cell;
use std::num::NonZeroU64;

use crate::error::{Error, Result};
use crate::gpu::{GpuContext, GpuTensor, Recorder, Shader};

/// `shaders/sphere.wgsl` after `shaders/lib/rows.wgsl`.
pub const SHADER: Shader = Shader::new(
    "sphere",
    concat!(
        include_str!("../../shaders/lib/rows.wgsl"),
        include_str!("../../shaders/sphere.wgsl")
    ),
);

/// Workgroup size of every sphere kernel.
const WG: u32 = 256;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    k: u32,
    lanes: u32,
    row0: u32,
    seq: u32,
    dt: f32,
    _pad: [u32; 2],
}

/// Invocations per row for rows of length `k`: `min(256, next_pow2(ceil(k / 4)))`, so each
/// lane handles about four elements of short rows and rows of any length are covered.
pub fn lanes_for(k: usize) -> u32 {
    (k.div_ceil(4).max(1).next_power_of_two()).min(WG as usize) as u32
}

/// Invocations per row on `ctx`'s adapter: [`lanes_for`] on GPUs; 1 on CPU adapters (Mesa's
/// lavapipe), which run a workgroup's invocations as SIMD loops where cross-lane reductions
/// (workgroup barriers) cost more than walking a whole row in one invocation.
pub fn lanes_on(ctx: &GpuContext, k: usize) -> u32 {
    if let Some(forced) = FORCE_LANES.with(|c| c.get()) {
        return if forced == 0 { lanes_for(k) } else { forced };
    }
    if ctx.adapter_info().device_type == wgpu::DeviceType::Cpu {
        1
    } else {
        lanes_for(k)
    }
}

thread_local! {
    static MAX_BINDING: Cell<Option<u64>> = const { Cell::new(None) };
    static FORCE_LANES: Cell<Option<u32>> = const { Cell::new(None) };
}

/// Test hook: on the calling thread, use `lanes` invocations per row (a power of two up to 256;
/// 0: the GPU choice [`lanes_for`] on any adapter). `None` restores [`lanes_on`]'s choice.
#[doc(hidden)]
pub fn force_lanes(lanes: Option<u32>) {
    let lanes = lanes.map(|n| {
        if n == 0 {
            0
        } else {
            n.next_power_of_two().min(WG)
        }
    });
    FORCE_LANES.with(|c| c.set(lanes));
}

/// Test hook: on the calling thread, pretend storage bindings hold at most `bytes` bytes so that
/// small tensors exercise the chunked path. `None` restores the adapter's limit.
#[doc(hidden)]
pub fn force_max_binding(bytes: Option<u64>) {
    MAX_BINDING.with(|c| c.set(bytes));
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Split `rows` rows into consecutive `(first_row, rows)` chunks so that, for every tensor in
/// the launch (one row of it is `row_bytes[i]` bytes), each chunk fits in `max_binding` bytes
/// and starts at an offset that is a multiple of `align`.
pub fn plan_chunks(
    max_binding: u64,
    align: u64,
    row_bytes: &[u64],
    rows: u64,
) -> Result<Vec<(u64, u64)>> {
    let align = align.max(1);
    let mut step = 1u64;
    let mut per = u64::MAX;
    for &rb in row_bytes {
        if rb == 0 {
            return Err(Error::Shape("rows of zero bytes".into()));
        }
        if rb > max_binding {
            return Err(Error::Limit(format!(
                "one row of {rb} bytes exceeds the storage binding limit of {max_binding} bytes"
            )));
        }
        let s = align / gcd(rb, align);
        step = step / gcd(step, s) * s;
        per = per.min(max_binding / rb);
    }
    per -= per % step;
    if per == 0 {
        return Err(Error::Limit(format!(
            "rows of {row_bytes:?} bytes cannot be chunked to offset alignment {align} within \
             {max_binding} bytes"
        )));
    }
    let mut out = Vec::new();
    let mut start = 0;
    while start < rows {
        let n = per.min(rows - start);
        out.push((start, n));
        start += n;
    }
    Ok(out)
}

fn chunks(ctx: &GpuContext, row_bytes: &[u64], rows: u64) -> Result<Vec<(u64, u64)>> {
    let lim = ctx.limits();
    let adapter_max = lim.max_storage_buffer_binding_size.min(lim.max_buffer_size);
    let max = MAX_BINDING
        .with(|c| c.get())
        .map_or(adapter_max, |m| m.min(adapter_max));
    plan_chunks(
        max,
        lim.min_storage_buffer_offset_alignment as u64,
        row_bytes,
        rows,
    )
}

/// `(rows, K)` of a tensor whose last dimension is K.
fn rows_k(name: &str, t: &GpuTensor) -> Result<(usize, usize)> {
    let shape = t.shape();
    let Some(&k) = shape.last() else {
        return Err(Error::Shape(format!(
            "{name} must have at least one dimension (the last is K)"
        )));
    };
    if k == 0 {
        return Err(Error::Shape(format!("{name} {shape:?} has K = 0")));
    }
    let rows = t.len() / k;
    if rows == 0 {
        return Err(Error::Shape(format!("{name} {shape:?} is empty")));
    }
    if t.len() > u32::MAX as usize {
        return Err(Error::Limit(format!(
            "{name} {shape:?} has more than 2^32 elements"
        )));
    }
    Ok((rows, k))
}

fn same_shape(a_name: &str, a: &GpuTensor, b_name: &str, b: &GpuTensor) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(Error::Shape(format!(
            "{b_name} {:?} does not match {a_name} {:?}",
            b.shape(),
            a.shape()
        )));
    }
    Ok(())
}

/// One buffer of a launch: the tensor and the bytes of one row of it (`None`: bound whole).
struct Arg<'a> {
    t: &'a GpuTensor,
    row_bytes: Option<u64>,
}

fn row_arg(t: &GpuTensor, k: usize) -> Arg<'_> {
    Arg {
        t,
        row_bytes: Some(4 * k as u64),
    }
}

/// Record `entry` over `rows` rows (chunked), binding params then `args` in order.
#[allow(clippy::too_many_arguments)]
fn launch(
    ctx: &GpuContext,
    rec: &mut Recorder,
    entry: &str,
    rows: usize,
    k: usize,
    lanes: u32,
    seq: usize,
    dt: f32,
    args: &[Arg<'_>],
) -> Result<()> {
    // Rows of a multiple of 4 elements use the vec4 variant, which counts K in vec4s.
    let (kernel, pk) = if k.is_multiple_of(4) {
        (ctx.kernel(&SHADER, &format!("{entry}_v4"))?, k / 4)
    } else {
        (ctx.kernel(&SHADER, entry)?, k)
    };
    let row_bytes: Vec<u64> = args.iter().filter_map(|a| a.row_bytes).collect();
    let rows_per_wg = (WG / lanes) as u64;
    let plan = chunks(ctx, &row_bytes, rows as u64)?;
    // Build everything first so that an error leaves `rec` untouched.
    let mut ops = Vec::with_capacity(plan.len());
    for (row0, n) in plan {
        let p = ctx.uniform(&Params {
            rows: n as u32,
            k: pk as u32,
            lanes,
            row0: u32::try_from(row0).map_err(|_| Error::Limit("more than 2^32 rows".into()))?,
            seq: seq.max(1) as u32,
            dt,
            _pad: [0; 2],
        });
        let mut res = vec![p.as_entire_binding()];
        for a in args {
            res.push(match a.row_bytes {
                None => a.t.binding(),
                Some(rb) => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: a.t.buffer(),
                    offset: row0 * rb,
                    size: NonZeroU64::new(n * rb),
                }),
            });
        }
        let bg = ctx.bind(&kernel, &res)?;
        let grid = ctx.grid(
            u32::try_from(n.div_ceil(rows_per_wg))
                .map_err(|_| Error::Limit(format!("{n} rows need more than 2^32 workgroups")))?,
        )?;
        ops.push((bg, grid));
    }
    for (bg, grid) in ops {
        rec.dispatch(&kernel, &bg, grid);
    }
    Ok(())
}

fn elementwise(
    ctx: &GpuContext,
    rec: &mut Recorder,
    entry: &str,
    src: &GpuTensor,
    out: &GpuTensor,
) -> Result<()> {
    rows_k("input", src)?;
    same_shape("input", src, "output", out)?;
    // Whole vec4s when the length allows (one vec4 per invocation), else one element each.
    let n = src.len();
    let k = if n.is_multiple_of(4) { 4 } else { 1 };
    launch(
        ctx,
        rec,
        entry,
        n / k,
        k,
        1,
        1,
        0.0,
        &[row_arg(src, k), row_arg(out, k)],
    )
}

/// Record `out ← √p` element-wise (simplex → sphere). Negative entries map to 0.
pub fn to_sphere(
    ctx: &GpuContext,
    rec: &mut Recorder,
    p: &GpuTensor,
    out: &GpuTensor,
) -> Result<()> {
    elementwise(ctx, rec, "to_sphere", p, out)
}

/// Record `out ← x²` element-wise (sphere → simplex).
pub fn to_simplex(
    ctx: &GpuContext,
    rec: &mut Recorder,
    x: &GpuTensor,
    out: &GpuTensor,
) -> Result<()> {
    elementwise(ctx, rec, "to_simplex", x, out)
}

/// A binary row kernel: `a`, `b`, `out` all `[.., K]`.
fn binary_rows(
    ctx: &GpuContext,
    rec: &mut Recorder,
    entry: &str,
    names: [&str; 2],
    a: &GpuTensor,
    b: &GpuTensor,
    out: &GpuTensor,
) -> Result<()> {
    let (rows, k) = rows_k(names[0], a)?;
    same_shape(names[0], a, names[1], b)?;
    same_shape(names[0], a, "out", out)?;
    launch(
        ctx,
        rec,
        entry,
        rows,
        k,
        lanes_on(ctx, k),
        1,
        0.0,
        &[row_arg(a, k), row_arg(b, k), row_arg(out, k)],
    )
}

/// Record `out ← exp_x(u) = cos‖u‖ x + sin‖u‖ u/‖u‖` per row (`normalise(x + u)` when
/// `‖u‖ < 1e-6`). No orthant folding: see [`euler_step`] for the sampler's step.
pub fn exp_map(
    ctx: &GpuContext,
    rec: &mut Recorder,
    x: &GpuTensor,
    u: &GpuTensor,
    out: &GpuTensor,
) -> Result<()> {
    binary_rows(ctx, rec, "exp_map", ["x", "u"], x, u, out)
}

/// Record `out ← log_x(y) = θ w/‖w‖`, `w = y − ⟨x,y⟩x`, `θ = d(x, y)`, per row; zero when
/// `y = x`.
pub fn log_map(
    ctx: &GpuContext,
    rec: &mut Recorder,
    x: &GpuTensor,
    y: &GpuTensor,
    out: &GpuTensor,
) -> Result<()> {
    binary_rows(ctx, rec, "log_map", ["x", "y"], x, y, out)
}

/// Record `out ← v − ⟨x,v⟩x` per row (projection onto the tangent space at `x`).
pub fn proj_tangent(
    ctx: &GpuContext,
    rec: &mut Recorder,
    x: &GpuTensor,
    v: &GpuTensor,
    out: &GpuTensor,
) -> Result<()> {
    binary_rows(ctx, rec, "proj_tangent", ["x", "v"], x, v, out)
}

/// Record `out[..] ← d(x, y) = arccos⟨x, y⟩` per row; `x`, `y` are `[.., K]`, `out` is their
/// shape without the last dimension (`[B, L]` for `[B, L, K]` inputs).
pub fn geodesic_distance(
    ctx: &GpuContext,
    rec: &mut Recorder,
    x: &GpuTensor,
    y: &GpuTensor,
    out: &GpuTensor,
) -> Result<()> {
    let (rows, k) = rows_k("x", x)?;
    same_shape("x", x, "y", y)?;
    let want = &x.shape()[..x.shape().len() - 1];
    if out.len() != rows || (out.shape() != want && !(want.is_empty() && out.len() == 1)) {
        return Err(Error::Shape(format!(
            "distance output {:?} should be {want:?} for inputs {:?}",
            out.shape(),
            x.shape()
        )));
    }
    launch(
        ctx,
        rec,
        "geodesic_distance",
        rows,
        k,
        lanes_on(ctx, k),
        1,
        0.0,
        &[row_arg(x, k), row_arg(y, k), row_arg(out, 1)],
    )
}

/// Check `[B, L, K]` endpoints and a `[B]` time tensor; returns `(rows, L, K)`.
fn check_interp(x0: &GpuTensor, x1: &GpuTensor, t: &GpuTensor) -> Result<(usize, usize, usize)> {
    let (rows, k) = rows_k("x0", x0)?;
    same_shape("x0", x0, "x1", x1)?;
    if x0.shape().len() != 3 {
        return Err(Error::Shape(format!(
            "interpolant endpoints must be [B, L, K], got {:?}",
            x0.shape()
        )));
    }
    let (b, l) = (x0.shape()[0], x0.shape()[1]);
    if t.shape() != [b] {
        return Err(Error::Shape(format!(
            "times {:?} should be [{b}] (one per batch element of {:?})",
            t.shape(),
            x0.shape()
        )));
    }
    Ok((rows, l, k))
}

/// A `[B]` time tensor from host values, each checked to lie in `[0, 1]`.
pub fn times_tensor(ctx: &GpuContext, t: &[f32]) -> Result<GpuTensor> {
    check_times(t)?;
    GpuTensor::from_slice(ctx, t, &[t.len()])
}

/// Check host times: non-empty and every value in `[0, 1]` (NaN rejected).
pub fn check_times(t: &[f32]) -> Result<()> {
    if t.is_empty() {
        return Err(Error::Shape("no times given".into()));
    }
    if let Some((i, v)) = t
        .iter()
        .enumerate()
        .find(|(_, v)| !(0.0..=1.0).contains(*v))
    {
        return Err(Error::InvalidArgument(format!(
            "time t[{i}] = {v} is outside [0, 1]"
        )));
    }
    Ok(())
}

/// Record the geodesic interpolant `x_t = slerp(x0, x1; t)` (`x0`, `x1`, `xt`: `[B, L, K]`,
/// `t`: `[B]`, clamped to `[0, 1]` on the GPU; build it with [`times_tensor`]).
pub fn slerp(
    ctx: &GpuContext,
    rec: &mut Recorder,
    x0: &GpuTensor,
    x1: &GpuTensor,
    t: &GpuTensor,
    xt: &GpuTensor,
) -> Result<()> {
    let (rows, l, k) = check_interp(x0, x1, t)?;
    same_shape("x0", x0, "xt", xt)?;
    launch(
        ctx,
        rec,
        "slerp",
        rows,
        k,
        lanes_on(ctx, k),
        l,
        0.0,
        &[
            row_arg(x0, k),
            row_arg(x1, k),
            Arg { t, row_bytes: None },
            row_arg(xt, k),
        ],
    )
}

/// Record the fused Fisher-Flow training target in one kernel: `xt ← x_t = slerp(x0, x1; t)`
/// and `ut ← u_t = d/dt x_t = log_{x_t}(x1)/(1−t)`, evaluated in the closed form
/// `u_t = θ/sinθ (cos(tθ) x1 − cos((1−t)θ) x0)` (θ = d(x0, x1)), which is exact at `t = 1` and
/// tends to `x1 − x0` as θ → 0. `‖u_t‖ = d(x0, x1)`. Shapes as in [`slerp`].
pub fn interpolant_target(
    ctx: &GpuContext,
    rec: &mut Recorder,
    x0: &GpuTensor,
    x1: &GpuTensor,
    t: &GpuTensor,
    xt: &GpuTensor,
    ut: &GpuTensor,
) -> Result<()> {
    let (rows, l, k) = check_interp(x0, x1, t)?;
    same_shape("x0", x0, "xt", xt)?;
    same_shape("x0", x0, "ut", ut)?;
    launch(
        ctx,
        rec,
        "interpolant_target",
        rows,
        k,
        lanes_on(ctx, k),
        l,
        0.0,
        &[
            row_arg(x0, k),
            row_arg(x1, k),
            Arg { t, row_bytes: None },
            row_arg(xt, k),
            row_arg(ut, k),
        ],
    )
}

fn check_dt(dt: f32) -> Result<()> {
    if !dt.is_finite() {
        return Err(Error::InvalidArgument(format!(
            "step size dt = {dt} is not finite"
        )));
    }
    Ok(())
}

/// Record the sampler's tangent Euler step `out ← |exp_x(dt·proj_x(v))| / ‖·‖`: the velocity
/// is projected to the tangent space at `x`, the step follows the geodesic, `abs` folds the
/// result back into the positive orthant and it is renormalised to the unit sphere.
pub fn euler_step(
    ctx: &GpuContext,
    rec: &mut Recorder,
    x: &GpuTensor,
    v: &GpuTensor,
    dt: f32,
    out: &GpuTensor,
) -> Result<()> {
    check_dt(dt)?;
    let (rows, k) = rows_k("x", x)?;
    same_shape("x", x, "v", v)?;
    same_shape("x", x, "out", out)?;
    launch(
        ctx,
        rec,
        "euler_step",
        rows,
        k,
        lanes_on(ctx, k),
        1,
        dt,
        &[row_arg(x, k), row_arg(v, k), row_arg(out, k)],
    )
}

/// [`euler_step`] updating `x` in place.
pub fn euler_step_inplace(
    ctx: &GpuContext,
    rec: &mut Recorder,
    x: &GpuTensor,
    v: &GpuTensor,
    dt: f32,
) -> Result<()> {
    check_dt(dt)?;
    let (rows, k) = rows_k("x", x)?;
    same_shape("x", x, "v", v)?;
    launch(
        ctx,
        rec,
        "euler_step_inplace",
        rows,
        k,
        lanes_on(ctx, k),
        1,
        dt,
        &[row_arg(x, k), row_arg(v, k)],
    )
}

/// The f64 CPU reference of every kernel above. Slices hold `rows × k` values, row-major.
pub mod reference {
    /// Below this tangent norm `exp_map` returns `normalise(x + u)` (as on the GPU).
    pub const EXP_TINY: f64 = 1e-6;

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    fn norm(a: &[f64]) -> f64 {
        dot(a, a).sqrt()
    }

    /// `θ = 2·atan2(‖y−x‖, ‖y+x‖)`, equal to `arccos(clamp(⟨x,y⟩, −1, 1))` for unit vectors.
    pub fn angle(x: &[f64], y: &[f64]) -> f64 {
        let (mut d2, mut s2) = (0.0, 0.0);
        for (a, b) in x.iter().zip(y) {
            d2 += (b - a) * (b - a);
            s2 += (b + a) * (b + a);
        }
        2.0 * d2.sqrt().atan2(s2.sqrt())
    }

    /// `arccos(clamp(⟨x,y⟩, −1, 1))`, the textbook form of [`angle`].
    pub fn angle_acos(x: &[f64], y: &[f64]) -> f64 {
        dot(x, y).clamp(-1.0, 1.0).acos()
    }

    /// `√max(p, 0)` element-wise.
    pub fn to_sphere(p: &[f64]) -> Vec<f64> {
        p.iter().map(|v| v.max(0.0).sqrt()).collect()
    }

    /// `x²` element-wise.
    pub fn to_simplex(x: &[f64]) -> Vec<f64> {
        x.iter().map(|v| v * v).collect()
    }

    /// `exp_x(u)` of one row.
    pub fn exp_row(x: &[f64], u: &[f64]) -> Vec<f64> {
        let n = norm(u);
        if n < EXP_TINY {
            let s: Vec<f64> = x.iter().zip(u).map(|(a, b)| a + b).collect();
            let m = norm(&s);
            return s.iter().map(|v| v / m).collect();
        }
        let (c, s) = (n.cos(), n.sin() / n);
        x.iter().zip(u).map(|(a, b)| c * a + s * b).collect()
    }

    /// `log_x(y)` of one row; zero when `θ < 1e-12`.
    pub fn log_row(x: &[f64], y: &[f64]) -> Vec<f64> {
        let theta = angle(x, y);
        let c = dot(x, y);
        let w: Vec<f64> = y.iter().zip(x).map(|(b, a)| b - c * a).collect();
        let m = norm(&w);
        if theta < 1e-12 || m == 0.0 {
            return vec![0.0; x.len()];
        }
        w.iter().map(|v| theta * v / m).collect()
    }

    fn rowwise(a: &[f64], b: &[f64], k: usize, f: impl Fn(&[f64], &[f64]) -> Vec<f64>) -> Vec<f64> {
        assert_eq!(a.len(), b.len());
        a.chunks(k)
            .zip(b.chunks(k))
            .flat_map(|(x, y)| f(x, y))
            .collect()
    }

    /// `exp_x(u)` per row.
    pub fn exp_map(x: &[f64], u: &[f64], k: usize) -> Vec<f64> {
        rowwise(x, u, k, exp_row)
    }

    /// `log_x(y)` per row.
    pub fn log_map(x: &[f64], y: &[f64], k: usize) -> Vec<f64> {
        rowwise(x, y, k, log_row)
    }

    /// `v − ⟨x,v⟩x` per row.
    pub fn proj_tangent(x: &[f64], v: &[f64], k: usize) -> Vec<f64> {
        rowwise(x, v, k, |x, v| {
            let c = dot(x, v);
            v.iter().zip(x).map(|(b, a)| b - c * a).collect()
        })
    }

    /// `d(x, y)` per row.
    pub fn geodesic_distance(x: &[f64], y: &[f64], k: usize) -> Vec<f64> {
        x.chunks(k)
            .zip(y.chunks(k))
            .map(|(a, b)| angle(a, b))
            .collect()
    }

    /// `x_t = exp_{x0}(t·log_{x0}(x1))` of one row.
    pub fn slerp_row(x0: &[f64], x1: &[f64], t: f64) -> Vec<f64> {
        let l = log_row(x0, x1);
        let u: Vec<f64> = l.iter().map(|v| t * v).collect();
        exp_row(x0, &u)
    }

    /// `(x_t, u_t)` of one row in closed form:
    /// `x_t = (sin((1−t)θ) x0 + sin(tθ) x1)/sinθ`, `u_t = θ/sinθ (cos(tθ) x1 − cos((1−t)θ) x0)`,
    /// with the θ → 0 limits `(1−t) x0 + t x1` and `x1 − x0`.
    pub fn interpolant_row(x0: &[f64], x1: &[f64], t: f64) -> (Vec<f64>, Vec<f64>) {
        let th = angle(x0, x1);
        let (a0, a1, c0, c1) = if th < 1e-9 {
            (1.0 - t, t, -1.0, 1.0)
        } else {
            let s = th.sin();
            (
                ((1.0 - t) * th).sin() / s,
                (t * th).sin() / s,
                -th / s * ((1.0 - t) * th).cos(),
                th / s * (t * th).cos(),
            )
        };
        let xt = x0.iter().zip(x1).map(|(a, b)| a0 * a + a1 * b).collect();
        let ut = x0.iter().zip(x1).map(|(a, b)| c0 * a + c1 * b).collect();
        (xt, ut)
    }

    /// `u_t = log_{x_t}(x1)/(1−t)` of one row, the definition of the target (`t < 1`).
    pub fn target_by_log_row(x0: &[f64], x1: &[f64], t: f64) -> Vec<f64> {
        let xt = slerp_row(x0, x1, t);
        log_row(&xt, x1).iter().map(|v| v / (1.0 - t)).collect()
    }

    /// `x_t` per row of `[B, L, K]` data, `t` per batch element.
    pub fn slerp(x0: &[f64], x1: &[f64], t: &[f64], l: usize, k: usize) -> Vec<f64> {
        interpolant_target(x0, x1, t, l, k).0
    }

    /// `(x_t, u_t)` per row of `[B, L, K]` data, `t` per batch element (closed form).
    pub fn interpolant_target(
        x0: &[f64],
        x1: &[f64],
        t: &[f64],
        l: usize,
        k: usize,
    ) -> (Vec<f64>, Vec<f64>) {
        let mut xt = Vec::with_capacity(x0.len());
        let mut ut = Vec::with_capacity(x0.len());
        for (r, (a, b)) in x0.chunks(k).zip(x1.chunks(k)).enumerate() {
            let (p, q) = interpolant_row(a, b, t[r / l]);
            xt.extend(p);
            ut.extend(q);
        }
        (xt, ut)
    }

    /// The tangent Euler step of one row: `|exp_x(dt·proj_x(v))|`, renormalised.
    pub fn euler_row(x: &[f64], v: &[f64], dt: f64) -> Vec<f64> {
        let c = dot(x, v);
        let u: Vec<f64> = v.iter().zip(x).map(|(b, a)| dt * (b - c * a)).collect();
        let y: Vec<f64> = exp_row(x, &u).iter().map(|v| v.abs()).collect();
        let m = norm(&y);
        y.iter().map(|v| v / m).collect()
    }

    /// The tangent Euler step per row.
    pub fn euler_step(x: &[f64], v: &[f64], dt: f64, k: usize) -> Vec<f64> {
        rowwise(x, v, k, |x, v| euler_row(x, v, dt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_cover_rows() {
        assert_eq!(lanes_for(2), 1);
        assert_eq!(lanes_for(4), 1);
        assert_eq!(lanes_for(20), 8);
        assert_eq!(lanes_for(160), 64);
        assert_eq!(lanes_for(4096), 256);
        assert_eq!(lanes_for(100_000), 256);
    }
}
