//! Reductions: column sums of a matrix ([`sum_rows`], e.g. bias gradients) and the sum or sum of
//! squares of a vector ([`sum`], [`sum_squares`]) by a deterministic multi-stage tree.

use crate::error::{Error, Result};
use crate::gpu::{GpuContext, GpuTensor, Recorder, Shader};
use crate::kernels::linalg::View;

/// `shaders/reduce.wgsl`.
pub const SHADER: Shader = Shader::new("reduce", include_str!("../../shaders/reduce.wgsl"));

/// Elements one workgroup of `sum_stage` reduces (256 invocations × 16).
const CHUNK: u64 = 4096;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct RowParams {
    m: u32,
    n: u32,
    x_off: u32,
    out_off: u32,
    scale: f32,
    accumulate: u32,
    _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct SumParams {
    len: u32,
    off: u32,
    square: u32,
    _pad: u32,
}

fn distinct(x: &View, out: &View, what: &str) -> Result<()> {
    if x.buffer == out.buffer {
        return Err(Error::InvalidArgument(format!(
            "{what}: the output must be in a different buffer from the input (one dispatch \
             cannot bind a buffer both read-only and read-write)"
        )));
    }
    Ok(())
}

fn rows_check(m: usize, n: usize, x: u64, out: u64) -> Result<()> {
    if m == 0 || n == 0 {
        return Err(Error::Shape(format!(
            "sum_rows of an empty [{m}, {n}] matrix"
        )));
    }
    let want = (m as u64).checked_mul(n as u64);
    if want != Some(x) {
        return Err(Error::Shape(format!(
            "sum_rows: x must hold [{m}, {n}] elements, its view has {x}"
        )));
    }
    if out != n as u64 {
        return Err(Error::Shape(format!(
            "sum_rows: out must hold n = {n} elements, its view has {out}"
        )));
    }
    Ok(())
}

/// Record `out[j] = scale · Σᵢ x[i, j]` for a row-major `[m, n]` matrix `x` (column sums), or
/// `out[j] += …` with `accumulate`. `out` must be in another buffer than `x`.
#[allow(clippy::too_many_arguments)]
pub fn sum_rows(
    ctx: &GpuContext,
    rec: &mut Recorder,
    m: usize,
    n: usize,
    x: View,
    out: View,
    scale: f32,
    accumulate: bool,
) -> Result<()> {
    rows_check(m, n, x.len, out.len)?;
    x.check("sum_rows x")?;
    out.check("sum_rows out")?;
    distinct(&x, &out, "sum_rows")?;
    let (rx, x_off) = x.bind(ctx, "sum_rows x", 4)?;
    let (ro, out_off) = out.bind(ctx, "sum_rows out", 4)?;
    let dim =
        |v: usize| u32::try_from(v).map_err(|_| Error::Limit(format!("sum_rows: {v} exceeds u32")));
    let p = ctx.uniform(&RowParams {
        m: dim(m)?,
        n: dim(n)?,
        x_off,
        out_off,
        scale,
        accumulate: accumulate as u32,
        _pad: [0; 2],
    });
    let k = ctx.kernel(&SHADER, "sum_rows")?;
    let bg = ctx.bind(&k, &[p.as_entire_binding(), rx, ro])?;
    rec.dispatch(&k, &bg, ctx.grid(dim(n.div_ceil(64))?)?);
    Ok(())
}

/// CPU reference for [`sum_rows`] (f64 sums).
pub fn sum_rows_cpu(
    m: usize,
    n: usize,
    x: &[f32],
    out: &mut [f32],
    scale: f32,
    accumulate: bool,
) -> Result<()> {
    rows_check(m, n, x.len() as u64, out.len() as u64)?;
    for (j, o) in out.iter_mut().enumerate() {
        let s: f64 = (0..m).map(|i| x[i * n + j] as f64).sum();
        let v = scale as f64 * s;
        *o = if accumulate {
            (*o as f64 + v) as f32
        } else {
            v as f32
        };
    }
    Ok(())
}

fn reduce(
    ctx: &GpuContext,
    rec: &mut Recorder,
    x: View,
    out: &GpuTensor<f32>,
    square: bool,
    what: &str,
) -> Result<()> {
    if x.len == 0 {
        return Err(Error::Shape(format!("{what} of an empty view")));
    }
    if out.len() != 1 {
        return Err(Error::Shape(format!(
            "{what}: out must be a 1-element tensor, got shape {:?}",
            out.shape()
        )));
    }
    x.check(what)?;
    distinct(&x, &View::of(out), what)?;
    let k = ctx.kernel(&SHADER, "sum_stage")?;
    let len32 = |v: u64| {
        u32::try_from(v).map_err(|_| Error::Limit(format!("{what}: {v} elements exceed u32")))
    };
    // Stage 0 reads the view; every later stage reads the previous stage's partials (one per
    // workgroup), until one workgroup is left, which writes `out`.
    let mut sizes = Vec::new();
    let mut l = x.len;
    while l > CHUNK {
        l = l.div_ceil(CHUNK);
        sizes.push(l);
    }
    let partials = sizes
        .iter()
        .map(|&s| GpuTensor::<f32>::zeros(ctx, &[s as usize]))
        .collect::<Result<Vec<_>>>()?;
    for stage in 0..=partials.len() {
        let (input, off, len) = if stage == 0 {
            let (r, o) = x.bind(ctx, what, 4)?;
            (r, o, x.len)
        } else {
            (partials[stage - 1].binding(), 0, sizes[stage - 1])
        };
        let output = match partials.get(stage) {
            Some(t) => t.binding(),
            None => out.binding(),
        };
        let p = ctx.uniform(&SumParams {
            len: len32(len)?,
            off,
            square: (square && stage == 0) as u32,
            _pad: 0,
        });
        let bg = ctx.bind(&k, &[p.as_entire_binding(), input, output])?;
        rec.dispatch(&k, &bg, ctx.grid(len32(len.div_ceil(CHUNK))?)?);
    }
    Ok(())
}

/// Record `out[0] = Σ x` (a multi-stage tree reduction in f32 with a fixed order). `out` is a
/// 1-element tensor in another buffer than `x`.
pub fn sum(ctx: &GpuContext, rec: &mut Recorder, x: View, out: &GpuTensor<f32>) -> Result<()> {
    reduce(ctx, rec, x, out, false, "sum")
}

/// Record `out[0] = Σ x²`, like [`sum`].
pub fn sum_squares(
    ctx: &GpuContext,
    rec: &mut Recorder,
    x: View,
    out: &GpuTensor<f32>,
) -> Result<()> {
    reduce(ctx, rec, x, out, true, "sum_squares")
}

/// CPU reference for [`sum`] (f64 accumulation).
pub fn sum_cpu(x: &[f32]) -> f32 {
    x.iter().map(|&v| v as f64).sum::<f64>() as f32
}

/// CPU reference for [`sum_squares`] (f64 accumulation).
pub fn sum_squares_cpu(x: &[f32]) -> f32 {
    x.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() as f32
}
