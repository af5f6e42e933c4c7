//! Reductions: column sums of a matrix ([`sum_rows`], e.g. bias gradients) and the sum of a
//! vector, of its squares or of the squared differences of two vectors ([`sum`],
//! [`sum_squares`], [`sum_reduce`]) by a deterministic multi-stage tree.

use crate::error::{Error, Result};
use crate::gpu::{lib, u32_of, Arg, GpuContext, GpuTensor, KernelDef, Recorder, ShaderDef, Work};
use crate::kernels::linalg::View;

/// `shaders/reduce.wgsl` with the grid and tree-sum preludes.
pub static SHADER: ShaderDef = ShaderDef::new(
    "reduce",
    &[
        lib::GRID,
        lib::TREE,
        include_str!("../../shaders/reduce.wgsl"),
    ],
)
.slots(&["x", "y", "out"]);

/// Column sums of a matrix.
pub static SUM_ROWS: KernelDef =
    KernelDef::new(&SHADER, "sum_rows", &["x", "out"]).params::<RowSumParams>();
/// One stage of a tree sum.
pub static SUM_STAGE: KernelDef =
    KernelDef::new(&SHADER, "sum_stage", &["x", "y", "out"]).params::<SumParams>();

/// Every kernel of the family.
pub fn kernels() -> Vec<&'static KernelDef> {
    vec![&SUM_ROWS, &SUM_STAGE]
}

/// Elements one workgroup of `sum_stage` reduces (256 invocations × 16).
const CHUNK: u64 = 4096;

crate::gpu_params! {
    /// Parameters of `sum_rows`.
    pub struct RowSumParams {
        /// Rows.
        pub m: u32,
        /// Columns.
        pub n: u32,
        /// Element offset of `x` in its binding.
        pub x_off: u32,
        /// Element offset of `out` in its binding.
        pub out_off: u32,
        /// Scale of the sums.
        pub scale: f32,
        /// 1: add into `out`.
        pub accumulate: u32,
        /// Padding.
        pub _pad0: u32,
        /// Padding.
        pub _pad1: u32,
    }
}

crate::gpu_params! {
    /// Parameters of one `sum_stage`.
    pub struct SumParams {
        /// Elements reduced.
        pub len: u32,
        /// Element offset of `x` in its binding.
        pub x_off: u32,
        /// Element offset of `y` in its binding.
        pub y_off: u32,
        /// 0: x, 1: x², 2: (x − y)².
        pub mode: u32,
        /// Scale of the stage's output.
        pub scale: f32,
        /// Element offset of `out` in its binding.
        pub out_off: u32,
        /// Padding.
        pub _pad1: u32,
        /// Padding.
        pub _pad2: u32,
    }
}

/// What a tree sum adds up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SumOf {
    /// `Σ x`.
    Values,
    /// `Σ x²`.
    Squares,
    /// `Σ (x − y)²`.
    SquaredDiffs,
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
    let p = RowSumParams {
        m: u32_of(m, "sum_rows rows")?,
        n: u32_of(n, "sum_rows columns")?,
        x_off,
        out_off,
        scale,
        accumulate: accumulate as u32,
        ..Default::default()
    };
    let args = [Arg::Resource(rx), Arg::Resource(ro)];
    SUM_ROWS.launch(ctx, rec, Work::Groups(n.div_ceil(64) as u64), &args, |_| p)
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

/// Record `out[0] = scale · Σ term` over the `len` elements of `x` (and `y` for
/// [`SumOf::SquaredDiffs`]), a multi-stage tree reduction in f32 with a fixed order. `out` is
/// one element in another buffer than the inputs.
pub fn sum_reduce(
    ctx: &GpuContext,
    rec: &mut Recorder,
    of: SumOf,
    x: View,
    y: Option<View>,
    scale: f32,
    out: View,
) -> Result<()> {
    let what = "sum";
    if x.len == 0 {
        return Err(Error::Shape(format!("{what} of an empty view")));
    }
    if out.len != 1 {
        return Err(Error::Shape(format!(
            "{what}: out must be one element, its view has {}",
            out.len
        )));
    }
    let y = match (of, y) {
        (SumOf::SquaredDiffs, Some(y)) if y.len == x.len => y,
        (SumOf::SquaredDiffs, _) => {
            return Err(Error::Shape(format!(
                "{what}: squared differences need a y of {} elements",
                x.len
            )))
        }
        _ => x,
    };
    for v in [&x, &y, &out] {
        v.check(what)?;
    }
    distinct(&x, &out, what)?;
    distinct(&y, &out, what)?;
    // Stage 0 reads the views; every later stage reads the previous stage's partials (one per
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
    let (ro, out_off) = out.bind(ctx, what, 4)?;
    let mut stages = Recorder::new();
    for stage in 0..=partials.len() {
        let (len, args, p) = if stage == 0 {
            let (rx, x_off) = x.bind(ctx, what, 4)?;
            let (ry, y_off) = y.bind(ctx, what, 4)?;
            let mode = match of {
                SumOf::Values => 0,
                SumOf::Squares => 1,
                SumOf::SquaredDiffs => 2,
            };
            (
                x.len,
                [Arg::Resource(rx), Arg::Resource(ry)],
                (x_off, y_off, mode),
            )
        } else {
            let prev = Arg::from(&partials[stage - 1]);
            (sizes[stage - 1], [prev.clone(), prev], (0, 0, 0))
        };
        let output = match partials.get(stage) {
            Some(t) => Arg::from(t),
            None => Arg::Resource(ro.clone()),
        };
        let last = stage == partials.len();
        let params = SumParams {
            len: u32_of(len, "sum length")?,
            x_off: p.0,
            y_off: p.1,
            mode: p.2,
            scale: if last { scale } else { 1.0 },
            out_off: if last { out_off } else { 0 },
            ..Default::default()
        };
        let [a0, a1] = args;
        let work = Work::Groups(len.div_ceil(CHUNK));
        SUM_STAGE.launch(ctx, &mut stages, work, &[a0, a1, output], |_| params)?;
    }
    rec.extend(&stages);
    Ok(())
}

/// Record `out[0] = Σ x` (a multi-stage tree reduction in f32 with a fixed order). `out` is a
/// 1-element tensor in another buffer than `x`.
pub fn sum(ctx: &GpuContext, rec: &mut Recorder, x: View, out: &GpuTensor<f32>) -> Result<()> {
    sum_reduce(ctx, rec, SumOf::Values, x, None, 1.0, View::of(out))
}

/// Record `out[0] = Σ x²`, like [`sum`].
pub fn sum_squares(
    ctx: &GpuContext,
    rec: &mut Recorder,
    x: View,
    out: &GpuTensor<f32>,
) -> Result<()> {
    sum_reduce(ctx, rec, SumOf::Squares, x, None, 1.0, View::of(out))
}

/// CPU reference for [`sum`] (f64 accumulation).
pub fn sum_cpu(x: &[f32]) -> f32 {
    x.iter().map(|&v| v as f64).sum::<f64>() as f32
}

/// CPU reference for [`sum_squares`] (f64 accumulation).
pub fn sum_squares_cpu(x: &[f32]) -> f32 {
    x.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() as f32
}
