//! Host launchers for `shaders/nll.wgsl` (the rows of a batch of vector-Jacobian products and
//! the contraction of their gradients), each with its CPU reference.
//!
//! A batch of `B` sequences of width `W = L·K` with `M` probes each has `M·B` rows, probe-major:
//! row `r = m·B + b` holds sequence `b` and probe `m`.

use crate::error::{Error, Result};
use crate::gpu::{lib, u32_of, Arg, GpuContext, GpuTensor, KernelDef, Recorder, ShaderDef, Work};

/// `shaders/nll.wgsl` with the grid prelude.
pub static SHADER: ShaderDef = ShaderDef::new(
    "nll",
    &[lib::GRID, include_str!("../../../shaders/nll.wgsl")],
)
.slots(&["x", "z", "y", "out", "out2"]);

/// Rows of the batch: the points repeated per probe, and the projected probes.
pub static PROBE_ROWS: KernelDef =
    KernelDef::new(&SHADER, "probe_rows", &["x", "z", "out", "out2"]).params::<NllParams>();
/// Per sequence, the scaled sum over its rows of `⟨gradient, cotangent⟩`.
pub static PROBE_DOT: KernelDef =
    KernelDef::new(&SHADER, "probe_dot", &["x", "y", "out"]).params::<NllParams>();

/// Every kernel of the family (with Dirichlet FM's, [`super::dirichlet`]).
pub fn kernels() -> Vec<&'static KernelDef> {
    vec![
        &PROBE_ROWS,
        &PROBE_DOT,
        &super::dirichlet::COTANGENT,
        &super::dirichlet::DIV_TERMS,
    ]
}

crate::gpu_params! {
    /// Parameters of the probe kernels.
    pub struct NllParams {
        /// Sequences `B`.
        pub b: u32,
        /// Probes per sequence `M`.
        pub m: u32,
        /// Width `W = L·K`.
        pub w: u32,
        /// Categories `K`.
        pub k: u32,
        /// 1: probe `m` is the basis vector `e_m` (`M = W`).
        pub exact: u32,
        /// Factor of [`probe_dot`].
        pub scale: f32,
        /// 1: the flat projection `Π = I − 11ᵀ/K` (the simplex) instead of `P_x = I − x xᵀ`.
        pub flat: u32,
        /// Padding.
        pub _pad1: u32,
    }
}

/// The shape of a probe batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probes {
    /// Sequences `B`.
    pub b: usize,
    /// Probes per sequence `M`.
    pub m: usize,
    /// Positions `L`.
    pub l: usize,
    /// Categories `K`.
    pub k: usize,
    /// Probe `m` is the basis vector `e_m` (then `M = L·K` and no probe values are read).
    pub exact: bool,
    /// The probes are projected by `Π = I − 11ᵀ/K` onto the tangent space of the simplex
    /// (`Σ p = 1`) instead of by `P_x = I − x xᵀ` onto the sphere's.
    pub flat: bool,
}

impl Probes {
    /// Width of a row, `L·K`.
    pub fn width(&self) -> usize {
        self.l * self.k
    }
    /// Rows of the batch, `M·B`.
    pub fn rows(&self) -> usize {
        self.m * self.b
    }
    fn check(&self) -> Result<()> {
        if self.b == 0 || self.m == 0 || self.l == 0 || self.k == 0 {
            return Err(Error::Shape(format!("empty probe batch {self:?}")));
        }
        if self.exact && self.m != self.width() {
            return Err(Error::Shape(format!(
                "exact probes need M = L·K = {}, not {}",
                self.width(),
                self.m
            )));
        }
        self.rows()
            .checked_mul(self.width())
            .map(|_| ())
            .ok_or_else(|| Error::Limit(format!("probe batch {self:?} overflows")))
    }
    fn params(&self, scale: f32) -> Result<NllParams> {
        Ok(NllParams {
            b: u32_of(self.b, "sequences")?,
            m: u32_of(self.m, "probes")?,
            w: u32_of(self.width(), "L·K")?,
            k: u32_of(self.k, "K")?,
            exact: self.exact as u32,
            scale,
            flat: self.flat as u32,
            ..Default::default()
        })
    }
    /// Probe `m`'s value at column `c` of row `r` (`z`: `[M·B, W]` values, unused when exact).
    fn probe(&self, z: &[f32], r: usize, c: usize) -> f64 {
        if self.exact {
            (c == r / self.b) as u8 as f64
        } else {
            z[r * self.width() + c] as f64
        }
    }
}

fn need(t: &GpuTensor<f32>, len: usize, what: &str) -> Result<()> {
    if t.len() != len {
        return Err(Error::Shape(format!(
            "{what} holds {} values, the probe batch needs {len}",
            t.len()
        )));
    }
    Ok(())
}

/// Record the rows of a probe batch: `xr[r] = x[b]` and `cot[r] = P_x z_r` per position
/// (`Π z_r` when [`Probes::flat`]; `x`: `[B, W]` points; `z`: `[M·B, W]` probes, any tensor
/// when exact).
pub fn probe_rows(
    ctx: &GpuContext,
    rec: &mut Recorder,
    s: &Probes,
    x: &GpuTensor<f32>,
    z: &GpuTensor<f32>,
    xr: &GpuTensor<f32>,
    cot: &GpuTensor<f32>,
) -> Result<()> {
    s.check()?;
    need(x, s.b * s.width(), "the points")?;
    if !s.exact {
        need(z, s.rows() * s.width(), "the probes")?;
    }
    need(xr, s.rows() * s.width(), "the repeated points")?;
    need(cot, s.rows() * s.width(), "the cotangents")?;
    let p = s.params(1.0)?;
    let args = [x.into(), z.into(), Arg::from(xr), Arg::from(cot)];
    PROBE_ROWS.launch(
        ctx,
        rec,
        Work::Threads((s.rows() * s.l) as u64),
        &args,
        |_| p,
    )
}

/// CPU reference of [`probe_rows`]: `(xr, cot)`, in f64.
pub fn probe_rows_cpu(s: &Probes, x: &[f32], z: &[f32]) -> Result<(Vec<f64>, Vec<f64>)> {
    s.check()?;
    let (w, k) = (s.width(), s.k);
    let mut xr = vec![0.0; s.rows() * w];
    let mut cot = vec![0.0; s.rows() * w];
    for r in 0..s.rows() {
        let b = r % s.b;
        for pos in 0..s.l {
            let src = &x[b * w + pos * k..b * w + (pos + 1) * k];
            let zc = |j: usize| s.probe(z, r, pos * k + j);
            // The component removed: along x (sphere) or along 1 (simplex).
            let along = |j: usize| if s.flat { 1.0 } else { src[j] as f64 };
            let d: f64 =
                (0..k).map(|j| along(j) * zc(j)).sum::<f64>() / if s.flat { k as f64 } else { 1.0 };
            for (j, &xv) in src.iter().enumerate() {
                let o = r * w + pos * k + j;
                xr[o] = xv as f64;
                cot[o] = zc(j) - d * along(j);
            }
        }
    }
    Ok((xr, cot))
}

/// Record `out[b] = scale · Σ_m ⟨g[r], cot[r]⟩`, `r = m·B + b` (`g`, `cot`: `[M·B, W]`;
/// `out`: `[B]`).
pub fn probe_dot(
    ctx: &GpuContext,
    rec: &mut Recorder,
    s: &Probes,
    g: &GpuTensor<f32>,
    cot: &GpuTensor<f32>,
    scale: f32,
    out: &GpuTensor<f32>,
) -> Result<()> {
    s.check()?;
    need(g, s.rows() * s.width(), "the gradients")?;
    need(cot, s.rows() * s.width(), "the cotangents")?;
    need(out, s.b, "the divergences")?;
    let p = s.params(scale)?;
    let args = [g.into(), cot.into(), Arg::from(out)];
    PROBE_DOT.launch(ctx, rec, Work::Threads(s.b as u64), &args, |_| p)
}

/// CPU reference of [`probe_dot`], in f64.
pub fn probe_dot_cpu(s: &Probes, g: &[f64], cot: &[f64], scale: f64) -> Vec<f64> {
    let w = s.width();
    (0..s.b)
        .map(|b| {
            let sum: f64 = (0..s.m)
                .map(|m| {
                    let o = (m * s.b + b) * w;
                    (0..w).map(|c| g[o + c] * cot[o + c]).sum::<f64>()
                })
                .sum();
            scale * sum
        })
        .collect()
}
