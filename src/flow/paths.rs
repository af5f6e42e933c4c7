//! Host launchers for `shaders/flow_paths.wgsl`, each with its CPU reference: the Fisher-Rao
//! pull-back of sphere points and velocities to the simplex, fresh one-hot draws from a product
//! of categoricals, and row gathers by uniform draws (OT pairs drawn with replacement). The
//! Dirichlet mixture field of the same shader is launched from [`super::dirichlet`].

use crate::error::{Error, Result};
use crate::gpu::{lib, u32_of, Arg, GpuContext, GpuTensor, KernelDef, Recorder, ShaderDef, Work};

/// `shaders/flow_paths.wgsl` with the grid prelude.
pub static SHADER: ShaderDef = ShaderDef::new(
    "flow_paths",
    &[lib::GRID, include_str!("../../shaders/flow_paths.wgsl")],
)
.slots(&["x", "y", "z", "tab", "u", "out", "out2"]);

/// Dirichlet FM's mixture field.
pub static DIRICHLET_MIX: KernelDef =
    KernelDef::new(&SHADER, "dirichlet_mix", &["x", "z", "tab", "out"]).params::<PathParams>();
/// `p = x²`, `v_p = 2 x ⊙ v_x`.
pub static TO_SIMPLEX: KernelDef =
    KernelDef::new(&SHADER, "to_simplex", &["x", "y", "out", "out2"]).params::<PathParams>();
/// `out ← out²`.
pub static SQUARE: KernelDef = KernelDef::new(&SHADER, "square", &["out"]).params::<PathParams>();
/// One-hot draws from per-position categoricals.
pub static CATEGORICAL_ONEHOT: KernelDef =
    KernelDef::new(&SHADER, "categorical_onehot", &["x", "u", "out"]).params::<PathParams>();
/// Rows gathered at uniform draws.
pub static GATHER_ROWS_U: KernelDef =
    KernelDef::new(&SHADER, "gather_rows_u", &["x", "u", "out"]).params::<PathParams>();

/// Every kernel of the family.
pub fn kernels() -> Vec<&'static KernelDef> {
    vec![
        &DIRICHLET_MIX,
        &TO_SIMPLEX,
        &SQUARE,
        &CATEGORICAL_ONEHOT,
        &GATHER_ROWS_U,
    ]
}

crate::gpu_params! {
    /// Parameters of `shaders/flow_paths.wgsl`.
    pub struct PathParams {
        /// Rows (`B·L`), or the batch of a gather.
        pub rows: u32,
        /// Categories; floats per row of a gather.
        pub k: u32,
        /// Positions per sequence.
        pub l: u32,
        /// Rows of a gather's source; intervals of a Dirichlet table.
        pub n: u32,
        /// Padding.
        pub _pad0: u32,
        /// Padding.
        pub _pad1: u32,
        /// Padding.
        pub _pad2: u32,
        /// Padding.
        pub _pad3: u32,
    }
}

pub(crate) fn params(rows: usize, k: usize, l: usize, n: usize) -> Result<PathParams> {
    Ok(PathParams {
        rows: u32_of(rows, "rows")?,
        k: u32_of(k, "K")?,
        l: u32_of(l, "L")?,
        n: u32_of(n, "n")?,
        ..Default::default()
    })
}

/// `(rows, k)` of a `[B, L, K]` tensor.
pub(crate) fn rows_k(t: &GpuTensor<f32>, what: &str) -> Result<(usize, usize)> {
    match *t.shape() {
        [b, l, k] if b > 0 && l > 0 && k > 0 => Ok((b * l, k)),
        _ => Err(Error::Shape(format!(
            "{what} must be a non-empty [B, L, K] tensor, got {:?}",
            t.shape()
        ))),
    }
}

fn same(a: &GpuTensor<f32>, b: &GpuTensor<f32>, what: &str) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(Error::Shape(format!(
            "{what}: shapes {:?} and {:?} differ",
            a.shape(),
            b.shape()
        )));
    }
    Ok(())
}

/// Record `p ← x²`, `v ← 2 x ⊙ u`: sphere points `x` and tangent vectors `u` (`[B, L, K]`)
/// pulled back to the simplex.
pub fn to_simplex(
    ctx: &GpuContext,
    rec: &mut Recorder,
    x: &GpuTensor<f32>,
    u: &GpuTensor<f32>,
    p: &GpuTensor<f32>,
    v: &GpuTensor<f32>,
) -> Result<()> {
    let (rows, k) = rows_k(x, "x")?;
    for (t, name) in [(u, "u"), (p, "p"), (v, "v")] {
        same(x, t, name)?;
    }
    let pp = params(rows, k, 1, 1)?;
    let args = [x.into(), u.into(), p.into(), v.into()];
    TO_SIMPLEX.launch(ctx, rec, Work::Threads((rows * k) as u64), &args, |_| pp)
}

/// CPU reference of [`to_simplex`]: `(x², 2 x ⊙ u)`.
pub fn to_simplex_cpu(x: &[f32], u: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let p = x.iter().map(|a| a * a).collect();
    let v = x.iter().zip(u).map(|(a, b)| 2.0 * a * b).collect();
    (p, v)
}

/// Record `x ← x²` in place (a `[B, L, K]` tensor).
pub fn square(ctx: &GpuContext, rec: &mut Recorder, x: &GpuTensor<f32>) -> Result<()> {
    let (rows, k) = rows_k(x, "x")?;
    let pp = params(rows, k, 1, 1)?;
    SQUARE.launch(
        ctx,
        rec,
        Work::Threads((rows * k) as u64),
        &[x.into()],
        |_| pp,
    )
}

/// Record one-hot draws: row `(b, pos)` of `out` (`[B, L, K]`) is the first category whose
/// running sum of `probs[pos, :]` (`[L, K]`) exceeds `u[b·L + pos]` times their total.
pub fn categorical_onehot(
    ctx: &GpuContext,
    rec: &mut Recorder,
    probs: &GpuTensor<f32>,
    u: &GpuTensor<f32>,
    out: &GpuTensor<f32>,
) -> Result<()> {
    let (rows, k) = rows_k(out, "one-hot batch")?;
    let l = out.shape()[1];
    if probs.shape() != [l, k] || u.len() != rows {
        return Err(Error::Shape(format!(
            "one-hot draws into {:?} need probabilities [{l}, {k}] and {rows} uniforms, got {:?} and {}",
            out.shape(),
            probs.shape(),
            u.len()
        )));
    }
    let pp = params(rows, k, l, 1)?;
    let args = [probs.into(), u.into(), out.into()];
    CATEGORICAL_ONEHOT.launch(ctx, rec, Work::Threads(rows as u64), &args, |_| pp)
}

/// CPU reference of [`categorical_onehot`] (the same f32 arithmetic): `probs` `[L, K]`, one
/// uniform per row of the `[u.len() / L, L, K]` output.
pub fn categorical_onehot_cpu(probs: &[f32], l: usize, k: usize, u: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; u.len() * k];
    for (row, &ur) in u.iter().enumerate() {
        let pr = &probs[(row % l) * k..(row % l + 1) * k];
        let total: f32 = pr.iter().fold(0.0, |s, &v| s + v);
        let goal = ur * total;
        let mut acc = 0f32;
        let mut pick = k - 1;
        for (c, &v) in pr.iter().enumerate() {
            acc += v;
            if acc > goal {
                pick = c;
                break;
            }
        }
        out[row * k + pick] = 1.0;
    }
    out
}

/// Record `out[b] ← src[min(⌊u[b]·n⌋, n − 1)]` over rows of `src` (`[n, …]`) into `out`
/// (`[B, …]`, the same row width), `u` holding `B` uniforms.
pub fn gather_rows_u(
    ctx: &GpuContext,
    rec: &mut Recorder,
    src: &GpuTensor<f32>,
    u: &GpuTensor<f32>,
    out: &GpuTensor<f32>,
) -> Result<()> {
    let (n, b) = (src.shape()[0], out.shape()[0]);
    let width = out.len() / b.max(1);
    if n == 0 || b == 0 || src.len() != n * width || u.len() != b {
        return Err(Error::Shape(format!(
            "gathering rows of {:?} into {:?} with {} uniforms",
            src.shape(),
            out.shape(),
            u.len()
        )));
    }
    if src.buffer() == out.buffer() {
        return Err(Error::InvalidArgument(
            "gather_rows_u cannot work in place".into(),
        ));
    }
    let pp = params(b, width, 1, n)?;
    let args = [Arg::from(src), Arg::from(u), Arg::from(out)];
    GATHER_ROWS_U.launch(ctx, rec, Work::Threads((b * width) as u64), &args, |_| pp)
}

/// The source row [`gather_rows_u`] takes for uniform `u` among `n` rows.
pub fn uniform_row(u: f32, n: usize) -> usize {
    ((u * n as f32) as usize).min(n - 1)
}

/// CPU reference of [`gather_rows_u`] over rows of `width` floats.
pub fn gather_rows_u_cpu(src: &[f32], width: usize, u: &[f32]) -> Vec<f32> {
    let n = src.len() / width;
    let mut out = Vec::with_capacity(u.len() * width);
    for &ub in u {
        let r = uniform_row(ub, n);
        out.extend_from_slice(&src[r * width..(r + 1) * width]);
    }
    out
}
