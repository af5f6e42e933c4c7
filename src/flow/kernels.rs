//! Host launchers for `shaders/flow.wgsl` (one-hot batches, row permutation, argmax, the
//! linear simplex baseline), each with its CPU reference.

use crate::error::{Error, Result};
use crate::gpu::{lib, u32_of, Arg, GpuContext, GpuTensor, KernelDef, Recorder, ShaderDef, Work};

/// `shaders/flow.wgsl` with the grid prelude.
pub static SHADER: ShaderDef = ShaderDef::new(
    "flow",
    &[lib::GRID, include_str!("../../shaders/flow.wgsl")],
)
.slots(&[
    "tokens", "u", "x", "y", "perm", "t", "out", "out2", "ids", "z",
]);

/// One-hot rows of sampled sequences.
pub static GATHER_ONEHOT: KernelDef =
    KernelDef::new(&SHADER, "gather_onehot", &["tokens", "u", "out"]).params::<FlowParams>();
/// The rows of the sequences a batch draws (signal tracks).
pub static GATHER_ROWS: KernelDef =
    KernelDef::new(&SHADER, "gather_rows", &["x", "u", "out"]).params::<FlowParams>();
/// The labels of the sequences a batch draws, with label dropout.
pub static GATHER_LABELS: KernelDef =
    KernelDef::new(&SHADER, "gather_labels", &["x", "u", "z", "out"]).params::<FlowParams>();
/// `out[b] = x[perm[b]]`.
pub static PERMUTE_ROWS: KernelDef =
    KernelDef::new(&SHADER, "permute_rows", &["x", "perm", "out"]).params::<FlowParams>();
/// Row-wise argmax.
pub static ARGMAX: KernelDef =
    KernelDef::new(&SHADER, "argmax", &["x", "ids"]).params::<FlowParams>();
/// The linear interpolant and its target.
pub static LINEAR_INTERPOLANT: KernelDef = KernelDef::new(
    &SHADER,
    "linear_interpolant",
    &["x", "y", "t", "out", "out2"],
)
.params::<FlowParams>();
/// The simplex Euler step.
pub static SIMPLEX_STEP: KernelDef =
    KernelDef::new(&SHADER, "simplex_step", &["x", "y", "out"]).params::<FlowParams>();
/// `out ← a·x + b·out`.
pub static AXPBY: KernelDef =
    KernelDef::new(&SHADER, "axpby", &["x", "out"]).params::<FlowParams>();

/// Scaled squared errors of an embedded Runge–Kutta pair.
pub static ERR_TERMS: KernelDef =
    KernelDef::new(&SHADER, "err_terms", &["x", "y", "z", "out"]).params::<FlowParams>();

/// Every kernel of the family.
pub fn kernels() -> Vec<&'static KernelDef> {
    vec![
        &ERR_TERMS,
        &GATHER_ONEHOT,
        &GATHER_ROWS,
        &GATHER_LABELS,
        &PERMUTE_ROWS,
        &ARGMAX,
        &LINEAR_INTERPOLANT,
        &SIMPLEX_STEP,
        &AXPBY,
    ]
}

crate::gpu_params! {
    /// Parameters of the flow kernels.
    pub struct FlowParams {
        /// `B·L` rows.
        pub rows: u32,
        /// Categories.
        pub k: u32,
        /// Positions per sequence.
        pub l: u32,
        /// Sequences in the data set (gather) or the batch (permute).
        pub n: u32,
        /// Simplex step size; `a` of axpby.
        pub dt: f32,
        /// `b` of axpby.
        pub b: f32,
        /// Padding.
        pub _pad0: u32,
        /// Padding.
        pub _pad1: u32,
    }
}

fn params(rows: usize, k: usize, l: usize, n: usize, dt: f32) -> Result<FlowParams> {
    Ok(FlowParams {
        rows: u32_of(rows, "rows")?,
        k: u32_of(k, "K")?,
        l: u32_of(l, "L")?,
        n: u32_of(n, "n")?,
        dt,
        ..Default::default()
    })
}

/// `[B, L, K]` of a tensor, checking its rank.
fn blk(t: &GpuTensor<f32>, what: &str) -> Result<(usize, usize, usize)> {
    match *t.shape() {
        [b, l, k] if b > 0 && l > 0 && k > 0 => Ok((b, l, k)),
        _ => Err(Error::Shape(format!(
            "{what} must be a non-empty [B, L, K] tensor, got {:?}",
            t.shape()
        ))),
    }
}

fn launch(
    ctx: &GpuContext,
    rec: &mut Recorder,
    kernel: &'static KernelDef,
    p: FlowParams,
    threads: usize,
    args: &[Arg<'_>],
) -> Result<()> {
    kernel.launch(ctx, rec, Work::Threads(threads as u64), args, |_| p)
}

/// Record `out[b] = onehot(tokens[floor(u[b] * n)])`: a random data batch from a data set of
/// `n` sequences of length L held on the GPU (`tokens`: `[n, L]`), `u`: `[B]` uniforms,
/// `out`: `[B, L, K]`.
pub fn gather_onehot(
    ctx: &GpuContext,
    rec: &mut Recorder,
    tokens: &GpuTensor<u32>,
    u: &GpuTensor<f32>,
    out: &GpuTensor<f32>,
) -> Result<()> {
    let (b, l, k) = blk(out, "one-hot batch")?;
    let [n, tl] = *tokens.shape() else {
        return Err(Error::Shape(format!(
            "tokens must be [n, L], got {:?}",
            tokens.shape()
        )));
    };
    if tl != l || n == 0 {
        return Err(Error::Shape(format!(
            "tokens {:?} do not match a batch of length {l}",
            tokens.shape()
        )));
    }
    if u.len() != b {
        return Err(Error::Shape(format!(
            "{} uniforms for a batch of {b}",
            u.len()
        )));
    }
    launch(
        ctx,
        rec,
        &GATHER_ONEHOT,
        params(b * l, k, l, n, 0.0)?,
        b * l * k,
        &[Arg::from(tokens), Arg::from(u), Arg::from(out)],
    )
}

/// Record `out[b, :] = rows[min(floor(u[b]·n), n − 1), :]`: the rows of the sequences a batch
/// draws with the uniforms `u` (`[B]`, those of [`gather_onehot`]) from `rows` (`[n, w]`, one
/// row per sequence of the data set); `out`: `[B, w]`. The reference is
/// [`crate::data::SignalTracks::gather`] of [`crate::flow::cond::batch_rows`].
pub fn gather_rows(
    ctx: &GpuContext,
    rec: &mut Recorder,
    rows: &GpuTensor<f32>,
    u: &GpuTensor<f32>,
    out: &GpuTensor<f32>,
) -> Result<()> {
    let b = u.len();
    let (n, w) = match *rows.shape() {
        [n, w] if n > 0 && w > 0 => (n, w),
        _ => {
            return Err(Error::Shape(format!(
                "rows must be a non-empty [n, w] tensor, got {:?}",
                rows.shape()
            )))
        }
    };
    if b == 0 || out.len() != b * w {
        return Err(Error::Shape(format!(
            "{} values out for {b} rows of {w}",
            out.len()
        )));
    }
    launch(
        ctx,
        rec,
        &GATHER_ROWS,
        params(b, w, 1, n, 0.0)?,
        b * w,
        &[Arg::from(rows), Arg::from(u), Arg::from(out)],
    )
}

/// Record `out[b] = labels[min(floor(u[b]·n), n − 1)]`, or `null` where `drop_u[b] < drop`:
/// the labels of the sequences a batch draws (`labels`: `[n]` class ids as floats, `u` and
/// `drop_u`: `[B]` uniforms), with label dropout. The reference is
/// [`crate::flow::cond::batch_labels`].
#[allow(clippy::too_many_arguments)]
pub fn gather_labels(
    ctx: &GpuContext,
    rec: &mut Recorder,
    labels: &GpuTensor<f32>,
    u: &GpuTensor<f32>,
    drop_u: &GpuTensor<f32>,
    drop: f32,
    null: f32,
    out: &GpuTensor<f32>,
) -> Result<()> {
    let (n, b) = (labels.len(), u.len());
    if n == 0 || b == 0 || drop_u.len() != b || out.len() != b {
        return Err(Error::Shape(format!(
            "{n} labels, {b} and {} uniforms, {} labels out",
            drop_u.len(),
            out.len()
        )));
    }
    let p = FlowParams {
        b: null,
        ..params(b, 1, 1, n, drop)?
    };
    launch(
        ctx,
        rec,
        &GATHER_LABELS,
        p,
        b,
        &[
            Arg::from(labels),
            Arg::from(u),
            Arg::from(drop_u),
            Arg::from(out),
        ],
    )
}

/// CPU reference of [`gather_onehot`].
pub fn gather_onehot_cpu(tokens: &[u32], n: usize, l: usize, k: usize, u: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; u.len() * l * k];
    for (b, &ub) in u.iter().enumerate() {
        let seq = ((ub * n as f32) as usize).min(n - 1);
        for pos in 0..l {
            let tok = tokens[seq * l + pos] as usize;
            if tok < k {
                out[(b * l + pos) * k + tok] = 1.0;
            }
        }
    }
    out
}

/// Record `out[b] = src[perm[b]]` for `[B, L, K]` tensors (pairing rows by an OT plan).
pub fn permute_rows(
    ctx: &GpuContext,
    rec: &mut Recorder,
    src: &GpuTensor<f32>,
    perm: &GpuTensor<u32>,
    out: &GpuTensor<f32>,
) -> Result<()> {
    let (b, l, k) = blk(src, "permuted tensor")?;
    if out.shape() != src.shape() || perm.len() != b {
        return Err(Error::Shape(format!(
            "permute {:?} by {} indices into {:?}",
            src.shape(),
            perm.len(),
            out.shape()
        )));
    }
    if src.buffer() == out.buffer() {
        return Err(Error::InvalidArgument(
            "permute_rows cannot work in place".into(),
        ));
    }
    launch(
        ctx,
        rec,
        &PERMUTE_ROWS,
        params(b * l, k, l, b, 0.0)?,
        b * l * k,
        &[Arg::from(src), Arg::from(perm), Arg::from(out)],
    )
}

/// Record `out[row] = argmax_k x[row, k]` (lowest index on ties); `out` holds `B * L` ids.
pub fn argmax(
    ctx: &GpuContext,
    rec: &mut Recorder,
    x: &GpuTensor<f32>,
    out: &GpuTensor<u32>,
) -> Result<()> {
    let (b, l, k) = blk(x, "argmax input")?;
    if out.len() != b * l {
        return Err(Error::Shape(format!(
            "argmax of {:?} needs {} outputs, got {}",
            x.shape(),
            b * l,
            out.len()
        )));
    }
    launch(
        ctx,
        rec,
        &ARGMAX,
        params(b * l, k, l, b, 0.0)?,
        b * l,
        &[Arg::from(x), Arg::from(out)],
    )
}

/// CPU reference of [`argmax`] over rows of `k`.
pub fn argmax_cpu(x: &[f32], k: usize) -> Vec<u32> {
    x.chunks(k)
        .map(|r| {
            let mut best = 0;
            for (i, &v) in r.iter().enumerate() {
                if v > r[best] {
                    best = i;
                }
            }
            best as u32
        })
        .collect()
}

/// Record the linear simplex interpolant `x_t = t x1 + (1 - t) x0` and its target `x1 - x0`
/// (`t`: one time per batch element).
pub fn linear_interpolant(
    ctx: &GpuContext,
    rec: &mut Recorder,
    x0: &GpuTensor<f32>,
    x1: &GpuTensor<f32>,
    t: &GpuTensor<f32>,
    xt: &GpuTensor<f32>,
    u: &GpuTensor<f32>,
) -> Result<()> {
    let (b, l, k) = blk(x0, "x0")?;
    for (name, other) in [("x1", x1), ("x_t", xt), ("u_t", u)] {
        if other.shape() != x0.shape() {
            return Err(Error::Shape(format!(
                "{name} has shape {:?}, x0 has {:?}",
                other.shape(),
                x0.shape()
            )));
        }
    }
    if t.len() != b {
        return Err(Error::Shape(format!(
            "{} times for a batch of {b}",
            t.len()
        )));
    }
    launch(
        ctx,
        rec,
        &LINEAR_INTERPOLANT,
        params(b * l, k, l, b, 0.0)?,
        b * l * k,
        &[
            Arg::from(x0),
            Arg::from(x1),
            Arg::from(t),
            Arg::from(xt),
            Arg::from(u),
        ],
    )
}

/// CPU reference of [`linear_interpolant`]: returns `(x_t, u_t)`.
pub fn linear_interpolant_cpu(
    x0: &[f32],
    x1: &[f32],
    t: &[f32],
    per: usize,
) -> (Vec<f32>, Vec<f32>) {
    let xt = (0..x0.len())
        .map(|i| {
            let tt = t[i / per];
            tt * x1[i] + (1.0 - tt) * x0[i]
        })
        .collect();
    let u = x0.iter().zip(x1).map(|(a, b)| b - a).collect();
    (xt, u)
}

/// Record one Euler step on the simplex: `out <- x + dt (v - mean v)`, clamped at 0 and
/// renormalised (a row that would vanish becomes uniform). `out` must be another buffer.
pub fn simplex_step(
    ctx: &GpuContext,
    rec: &mut Recorder,
    x: &GpuTensor<f32>,
    v: &GpuTensor<f32>,
    dt: f32,
    out: &GpuTensor<f32>,
) -> Result<()> {
    let (b, l, k) = blk(x, "x")?;
    if v.len() != x.len() || out.len() != x.len() {
        return Err(Error::Shape(format!(
            "v has {} and out {} elements, x {:?}",
            v.len(),
            out.len(),
            x.shape()
        )));
    }
    if !dt.is_finite() {
        return Err(Error::InvalidArgument(format!("step size {dt}")));
    }
    if out.buffer() == x.buffer() || out.buffer() == v.buffer() {
        return Err(Error::InvalidArgument(
            "simplex_step cannot work in place".into(),
        ));
    }
    launch(
        ctx,
        rec,
        &SIMPLEX_STEP,
        params(b * l, k, l, b, dt)?,
        b * l,
        &[Arg::from(x), Arg::from(v), Arg::from(out)],
    )
}

/// CPU reference of [`simplex_step`] over rows of `k`, in place.
pub fn simplex_step_cpu(x: &mut [f32], v: &[f32], k: usize, dt: f32) {
    for (xr, vr) in x.chunks_mut(k).zip(v.chunks(k)) {
        let mean = vr.iter().sum::<f32>() / k as f32;
        let mut total = 0.0;
        for (a, &b) in xr.iter_mut().zip(vr) {
            *a = (*a + dt * (b - mean)).max(0.0);
            total += *a;
        }
        for a in xr.iter_mut() {
            *a = if total <= 0.0 {
                1.0 / k as f32
            } else {
                *a / total
            };
        }
    }
}

/// Record `out <- a v + b out` element-wise (combining Runge–Kutta stages).
pub fn axpby(
    ctx: &GpuContext,
    rec: &mut Recorder,
    a: f32,
    v: &GpuTensor<f32>,
    b: f32,
    out: &GpuTensor<f32>,
) -> Result<()> {
    if v.len() != out.len() || v.is_empty() {
        return Err(Error::Shape(format!(
            "axpby of {:?} into {:?}",
            v.shape(),
            out.shape()
        )));
    }
    if v.buffer() == out.buffer() {
        return Err(Error::InvalidArgument("axpby needs two buffers".into()));
    }
    let p = FlowParams {
        b,
        ..params(v.len(), 1, 1, 1, a)?
    };
    launch(
        ctx,
        rec,
        &AXPBY,
        p,
        v.len(),
        &[Arg::from(v), Arg::from(out)],
    )
}

/// Record `out ← (e / (atol + rtol·max(|x|, |y|)))²` element-wise (all four the same length).
#[allow(clippy::too_many_arguments)]
pub fn err_terms(
    ctx: &GpuContext,
    rec: &mut Recorder,
    x: &GpuTensor<f32>,
    y: &GpuTensor<f32>,
    e: &GpuTensor<f32>,
    atol: f32,
    rtol: f32,
    out: &GpuTensor<f32>,
) -> Result<()> {
    let n = x.len();
    if [y.len(), e.len(), out.len()].iter().any(|&l| l != n) || n == 0 {
        return Err(Error::Shape(format!(
            "err_terms of {:?}, {:?}, {:?} into {:?}",
            x.shape(),
            y.shape(),
            e.shape(),
            out.shape()
        )));
    }
    let p = FlowParams {
        b: rtol,
        ..params(n, 1, 1, 1, atol)?
    };
    let args = [x.into(), y.into(), e.into(), out.into()];
    launch(ctx, rec, &ERR_TERMS, p, n, &args)
}
