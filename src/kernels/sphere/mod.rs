//! Manifold kernels of Fisher-Flow on the positive orthant of the unit sphere `S^{K-1}_+`:
//! the maps between simplex and sphere, `exp_map`, `log_map`, `slerp`, the fused training
//! target [`interpolant_target`], [`proj_tangent`], [`geodesic_distance`] and the sampler's
//! [`euler_step`]. The f64 CPU reference of the same maths is in [`reference`](mod@reference).
//!
//! Tensors are `[.., K]` f32, row-major; a row (one sequence position) is a point of the sphere
//! or a tangent vector. The interpolants take `[B, L, K]` points and a `[B]` tensor of times.
//!
//! # Work layout
//! A row is processed by `T` invocations ([`row_lanes`]: a power of two from K), a workgroup
//! of 256 invocations handles `256 / T` rows, lanes stride over K and the row's dot products
//! are reduced in workgroup memory. Rows whose length is a multiple of 4 run the `vec4`
//! variant of each kernel. Tensors larger than one storage binding are split into row chunks
//! bound at offsets ([`Work::Rows`]).
//!
//! # Numerics
//! Angles are evaluated as `θ = 2·atan2(‖y−x‖, ‖y+x‖)`, which equals `arccos(clamp(⟨x,y⟩))` on
//! the unit sphere and keeps full precision for nearby points (arccos loses half the digits
//! there). Only the Euler step folds its result back into the orthant (`abs`), as in the paper's
//! sampler; `exp_map` itself is the plain sphere map.

pub mod reference;

use crate::error::{Error, Result};
use crate::gpu::{
    lib, row_lanes, Arg, Chunk, GpuContext, GpuTensor, KernelDef, Recorder, ShaderDef, Variant,
    Work, WG,
};

/// `shaders/sphere.wgsl` with the grid, row and trigonometry preludes, in scalar and vec4
/// rows.
pub static SHADER: ShaderDef = ShaderDef::width_generic(
    "sphere",
    &[
        lib::GRID,
        lib::ROWS,
        lib::TRIG,
        include_str!("../../../shaders/sphere.wgsl"),
    ],
)
.slots(&["x", "y", "z", "t", "out", "out2", "row_out"]);

const XO: &[&str] = &["x", "out"];
const XYO: &[&str] = &["x", "y", "out"];
const XYTO: &[&str] = &["x", "y", "t", "out"];

/// `out ← √p` element-wise.
pub static TO_SPHERE: KernelDef = KernelDef::new(&SHADER, "to_sphere", XO).params::<Params>();
/// `out ← x²` element-wise.
pub static TO_SIMPLEX: KernelDef = KernelDef::new(&SHADER, "to_simplex", XO).params::<Params>();
/// `out ← exp_x(u)` per row.
pub static EXP_MAP: KernelDef = KernelDef::new(&SHADER, "exp_map", XYO).params::<Params>();
/// `out ← log_x(y)` per row.
pub static LOG_MAP: KernelDef = KernelDef::new(&SHADER, "log_map", XYO).params::<Params>();
/// `out (+)= v − ⟨x,v⟩x` per row.
pub static PROJ_TANGENT: KernelDef =
    KernelDef::new(&SHADER, "proj_tangent", XYO).params::<Params>();
/// `out (+)= −(⟨x,g⟩v + ⟨x,v⟩g)` per row (the projection's gradient with respect to `x`).
pub static PROJ_TANGENT_GRAD_X: KernelDef =
    KernelDef::new(&SHADER, "proj_tangent_grad_x", &["x", "y", "z", "out"]).params::<Params>();
/// `row_out[r] ← d(x_r, y_r)`.
pub static GEODESIC_DISTANCE: KernelDef =
    KernelDef::new(&SHADER, "geodesic_distance", &["x", "y", "row_out"]).params::<Params>();
/// `out ← slerp(x0, x1; t)`.
pub static SLERP: KernelDef = KernelDef::new(&SHADER, "slerp", XYTO).params::<Params>();
/// `out ← x_t`, `out2 ← u_t`.
pub static INTERPOLANT_TARGET: KernelDef = KernelDef::new(
    &SHADER,
    "interpolant_target",
    &["x", "y", "t", "out", "out2"],
)
.params::<Params>();
/// `out ← exp_x(dt·proj_x(v))`, renormalised, optionally folded into the orthant.
pub static GEODESIC_STEP: KernelDef =
    KernelDef::new(&SHADER, "geodesic_step", XYO).params::<Params>();

/// `out ← dexp_{dt·u}^{-1}(w)`, a tangent vector at `exp_x(dt·u)` pulled back to `x`.
pub static PULL_BACK: KernelDef =
    KernelDef::new(&SHADER, "pull_back", &["x", "y", "z", "out"]).params::<Params>();

/// Every kernel of the family.
pub fn kernels() -> Vec<&'static KernelDef> {
    vec![
        &PULL_BACK,
        &TO_SPHERE,
        &TO_SIMPLEX,
        &EXP_MAP,
        &LOG_MAP,
        &PROJ_TANGENT,
        &PROJ_TANGENT_GRAD_X,
        &GEODESIC_DISTANCE,
        &SLERP,
        &INTERPOLANT_TARGET,
        &GEODESIC_STEP,
    ]
}

crate::gpu_params! {
    /// Parameters of every sphere kernel.
    pub struct Params {
        /// Rows (elements for the element-wise kernels) in this dispatch.
        pub rows: u32,
        /// Row length, in elements of the variant (scalars or vec4s).
        pub k: u32,
        /// Invocations per row.
        pub lanes: u32,
        /// Global index of the dispatch's first row.
        pub row0: u32,
        /// Rows per batch element (L), to look up a row's time.
        pub seq: u32,
        /// Step size of the geodesic steps.
        pub dt: f32,
        /// 1: add into the output.
        pub acc: u32,
        /// 1: fold a step's result into the positive orthant.
        pub fold: u32,
    }
}

/// Options of a row launch beyond its tensors.
#[derive(Clone, Copy, Debug, Default)]
struct Opts {
    seq: usize,
    dt: f32,
    acc: bool,
    fold: bool,
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

/// One tensor of a row launch: rows of K (`per_row = false`) or one value per row.
enum Bind<'a> {
    Rows(&'a GpuTensor),
    PerRow(&'a GpuTensor),
    Whole(&'a GpuTensor),
}

/// Record `kernel` over `rows` rows of length `k`: the vec4 variant when `k` is a multiple of
/// 4, row chunks that fit one binding each.
fn launch(
    ctx: &GpuContext,
    rec: &mut Recorder,
    kernel: &'static KernelDef,
    rows: usize,
    k: usize,
    opts: Opts,
    tensors: &[Bind<'_>],
) -> Result<()> {
    let (variant, pk) = if k.is_multiple_of(4) {
        (Variant::Vec4, k / 4)
    } else {
        (Variant::Base, k)
    };
    let lanes = row_lanes(ctx, k);
    let args: Vec<Arg> = tensors
        .iter()
        .map(|b| match b {
            Bind::Rows(t) => Arg::rows(*t, k),
            Bind::PerRow(t) => Arg::rows(*t, 1),
            Bind::Whole(t) => Arg::from(*t),
        })
        .collect();
    let work = Work::Rows {
        rows: rows as u64,
        per_group: WG / lanes,
    };
    let params = |c: Chunk| Params {
        rows: c.rows as u32,
        k: pk as u32,
        lanes,
        row0: c.first as u32,
        seq: opts.seq.max(1) as u32,
        dt: opts.dt,
        acc: opts.acc as u32,
        fold: opts.fold as u32,
    };
    kernel.launch_as(ctx, rec, variant, work, &args, params)
}

fn elementwise(
    ctx: &GpuContext,
    rec: &mut Recorder,
    kernel: &'static KernelDef,
    src: &GpuTensor,
    out: &GpuTensor,
) -> Result<()> {
    rows_k("input", src)?;
    same_shape("input", src, "output", out)?;
    // Whole vec4s when the length allows (one vec4 per invocation), else one element each; the
    // elements are the rows of a one-lane launch.
    let n = src.len();
    let k = if n.is_multiple_of(4) { 4 } else { 1 };
    let opts = Opts::default();
    let (variant, rows) = if k == 4 {
        (Variant::Vec4, n / 4)
    } else {
        (Variant::Base, n)
    };
    let args = [Arg::rows(src, k), Arg::rows(out, k)];
    let work = Work::Rows {
        rows: rows as u64,
        per_group: WG,
    };
    kernel.launch_as(ctx, rec, variant, work, &args, |c: Chunk| Params {
        rows: c.rows as u32,
        k: 1,
        lanes: 1,
        row0: c.first as u32,
        seq: opts.seq.max(1) as u32,
        ..Default::default()
    })
}

/// Record `out ← √p` element-wise (simplex → sphere). Negative entries map to 0.
pub fn to_sphere(
    ctx: &GpuContext,
    rec: &mut Recorder,
    p: &GpuTensor,
    out: &GpuTensor,
) -> Result<()> {
    elementwise(ctx, rec, &TO_SPHERE, p, out)
}

/// Record `out ← x²` element-wise (sphere → simplex).
pub fn to_simplex(
    ctx: &GpuContext,
    rec: &mut Recorder,
    x: &GpuTensor,
    out: &GpuTensor,
) -> Result<()> {
    elementwise(ctx, rec, &TO_SIMPLEX, x, out)
}

/// A binary row kernel: `a`, `b`, `out` all `[.., K]`.
#[allow(clippy::too_many_arguments)]
fn binary_rows(
    ctx: &GpuContext,
    rec: &mut Recorder,
    kernel: &'static KernelDef,
    names: [&str; 2],
    a: &GpuTensor,
    b: &GpuTensor,
    out: &GpuTensor,
    opts: Opts,
) -> Result<()> {
    let (rows, k) = rows_k(names[0], a)?;
    same_shape(names[0], a, names[1], b)?;
    same_shape(names[0], a, "out", out)?;
    let t = [Bind::Rows(a), Bind::Rows(b), Bind::Rows(out)];
    launch(ctx, rec, kernel, rows, k, opts, &t)
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
    let o = Opts::default();
    binary_rows(ctx, rec, &EXP_MAP, ["x", "u"], x, u, out, o)
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
    let o = Opts::default();
    binary_rows(ctx, rec, &LOG_MAP, ["x", "y"], x, y, out, o)
}

/// Record `out ← v − ⟨x,v⟩x` per row (projection onto the tangent space at `x`), or
/// `out += …` with `accumulate`.
pub fn proj_tangent_acc(
    ctx: &GpuContext,
    rec: &mut Recorder,
    x: &GpuTensor,
    v: &GpuTensor,
    out: &GpuTensor,
    accumulate: bool,
) -> Result<()> {
    let o = Opts {
        acc: accumulate,
        ..Default::default()
    };
    binary_rows(ctx, rec, &PROJ_TANGENT, ["x", "v"], x, v, out, o)
}

/// Record `out ← v − ⟨x,v⟩x` per row (projection onto the tangent space at `x`).
pub fn proj_tangent(
    ctx: &GpuContext,
    rec: &mut Recorder,
    x: &GpuTensor,
    v: &GpuTensor,
    out: &GpuTensor,
) -> Result<()> {
    proj_tangent_acc(ctx, rec, x, v, out, false)
}

/// Record the gradient of the projection `v − ⟨x,v⟩x` with respect to `x` for the output
/// gradient `g`: `out (+)= −(⟨x,g⟩v + ⟨x,v⟩g)` per row.
pub fn proj_tangent_grad_x(
    ctx: &GpuContext,
    rec: &mut Recorder,
    x: &GpuTensor,
    v: &GpuTensor,
    g: &GpuTensor,
    out: &GpuTensor,
    accumulate: bool,
) -> Result<()> {
    let (rows, k) = rows_k("x", x)?;
    same_shape("x", x, "v", v)?;
    same_shape("x", x, "g", g)?;
    same_shape("x", x, "out", out)?;
    let o = Opts {
        acc: accumulate,
        ..Default::default()
    };
    let t = [Bind::Rows(x), Bind::Rows(v), Bind::Rows(g), Bind::Rows(out)];
    launch(ctx, rec, &PROJ_TANGENT_GRAD_X, rows, k, o, &t)
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
    let t = [Bind::Rows(x), Bind::Rows(y), Bind::PerRow(out)];
    launch(ctx, rec, &GEODESIC_DISTANCE, rows, k, Opts::default(), &t)
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
    let o = Opts {
        seq: l,
        ..Default::default()
    };
    let b = [
        Bind::Rows(x0),
        Bind::Rows(x1),
        Bind::Whole(t),
        Bind::Rows(xt),
    ];
    launch(ctx, rec, &SLERP, rows, k, o, &b)
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
    let o = Opts {
        seq: l,
        ..Default::default()
    };
    let b = [
        Bind::Rows(x0),
        Bind::Rows(x1),
        Bind::Whole(t),
        Bind::Rows(xt),
        Bind::Rows(ut),
    ];
    launch(ctx, rec, &INTERPOLANT_TARGET, rows, k, o, &b)
}

fn check_dt(dt: f32) -> Result<()> {
    if !dt.is_finite() {
        return Err(Error::InvalidArgument(format!(
            "step size dt = {dt} is not finite"
        )));
    }
    Ok(())
}

/// Record the geodesic step `out ← exp_x(dt·proj_x(v)) / ‖·‖`: the velocity is projected to
/// the tangent space at `x`, the step follows the geodesic and the result is renormalised to
/// the unit sphere; with `fold`, `abs` folds it back into the positive orthant.
#[allow(clippy::too_many_arguments)]
pub fn geodesic_step(
    ctx: &GpuContext,
    rec: &mut Recorder,
    x: &GpuTensor,
    v: &GpuTensor,
    dt: f32,
    fold: bool,
    out: &GpuTensor,
) -> Result<()> {
    check_dt(dt)?;
    let o = Opts {
        dt,
        fold,
        ..Default::default()
    };
    binary_rows(ctx, rec, &GEODESIC_STEP, ["x", "v"], x, v, out, o)
}

/// Record the pull-back of `w`, a tangent vector at `y = exp_x(dt·u)` (`u` tangent at `x`),
/// to the tangent space at `x` through the inverse differential of `exp_x` at `dt·u`:
/// `out ← dexp_{dt·u}^{-1}(w)`. Runge–Kutta stage velocities pulled back this way integrate in
/// normal coordinates at `x` (Runge–Kutta–Munthe-Kaas), so every integrator keeps its order.
#[allow(clippy::too_many_arguments)]
pub fn pull_back(
    ctx: &GpuContext,
    rec: &mut Recorder,
    x: &GpuTensor,
    u: &GpuTensor,
    dt: f32,
    w: &GpuTensor,
    out: &GpuTensor,
) -> Result<()> {
    check_dt(dt)?;
    let (rows, k) = rows_k("x", x)?;
    same_shape("x", x, "u", u)?;
    same_shape("x", x, "w", w)?;
    same_shape("x", x, "out", out)?;
    let o = Opts {
        dt,
        ..Default::default()
    };
    let t = [Bind::Rows(x), Bind::Rows(u), Bind::Rows(w), Bind::Rows(out)];
    launch(ctx, rec, &PULL_BACK, rows, k, o, &t)
}

/// Record the sampler's tangent Euler step `out ← |exp_x(dt·proj_x(v))| / ‖·‖`: the
/// [`geodesic_step`] folded back into the positive orthant, as in the paper's sampler.
pub fn euler_step(
    ctx: &GpuContext,
    rec: &mut Recorder,
    x: &GpuTensor,
    v: &GpuTensor,
    dt: f32,
    out: &GpuTensor,
) -> Result<()> {
    geodesic_step(ctx, rec, x, v, dt, true, out)
}
