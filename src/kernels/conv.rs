//! 1D convolutions over sequences (`[B·L, C]`: row `r` is position `r % L` of sequence
//! `r / L`) with kernel size, dilation and same padding, as implicit gemms on the tiled gemm
//! of [`super::linalg`] (`shaders/conv.wgsl` reads the im2col matrix on the fly). One launch
//! covers the forward pass and both gradients ([`ConvMode`]); [`conv_cpu`] is the reference
//! (and the CPU backend): one strided gemm per sequence and tap.

use crate::error::{Error, Result};
use crate::gpu::{lib, u32_of, Arg, GpuContext, KernelDef, Recorder, ShaderDef, Work};
use crate::kernels::linalg::{GemmParams, View, GEMM_PRELUDE, GEMM_SLOTS, TILES};
use crate::kernels::{Precision, Real};

/// The implicit-gemm convolution shader, in f32 or f16 storage.
pub static CONV: ShaderDef = ShaderDef::storage_generic(
    "conv",
    &[
        lib::ACT,
        GEMM_PRELUDE,
        TILES,
        include_str!("../../shaders/conv.wgsl"),
    ],
)
.slots(GEMM_SLOTS);

/// The convolution product.
pub static CONV_GEMM: KernelDef =
    KernelDef::new(&CONV, "conv_gemm", GEMM_SLOTS).params::<GemmParams>();

/// Every kernel of the family.
pub fn kernels() -> Vec<&'static KernelDef> {
    vec![&CONV_GEMM]
}

/// Rows and columns of the output computed by one workgroup.
const TILE: usize = 64;

/// Which product of a convolution layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvMode {
    /// `y = conv(x, w) + bias`: `a = x [rows, cin]`, `b = w [taps·cin, cout]`, `c = y [rows, cout]`.
    Forward,
    /// `gx = conv_transposed(gy, w)`: `a = gy [rows, cout]`, `b = w`, `c = gx [rows, cin]`.
    InputGrad,
    /// `gw = Σ im2col(x)ᵀ·gy`: `a = x`, `b = gy`, `c = gw [taps·cin, cout]`.
    WeightGrad,
}

/// A convolution layer's geometry and one of its products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvSpec {
    /// The product.
    pub mode: ConvMode,
    /// Rows (positions of all sequences).
    pub rows: usize,
    /// Positions per sequence.
    pub seq: usize,
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Kernel size.
    pub taps: usize,
    /// Dilation.
    pub dil: usize,
    /// Add into `c`.
    pub acc: bool,
}

impl ConvSpec {
    /// `(m, n, k)` of the product and the channels of its convolved operand.
    fn gemm(&self) -> (usize, usize, usize, usize) {
        let (rows, cin, cout, t) = (self.rows, self.cin, self.cout, self.taps);
        match self.mode {
            ConvMode::Forward => (rows, cout, t * cin, cin),
            ConvMode::InputGrad => (rows, cin, t * cout, cout),
            ConvMode::WeightGrad => (t * cin, cout, rows, cin),
        }
    }

    /// Element counts of `a`, `b` and `c`.
    fn lens(&self) -> [usize; 3] {
        let (rows, cin, cout) = (self.rows, self.cin, self.cout);
        let w = self.taps * cin * cout;
        match self.mode {
            ConvMode::Forward => [rows * cin, w, rows * cout],
            ConvMode::InputGrad => [rows * cout, w, rows * cin],
            ConvMode::WeightGrad => [rows * cin, rows * cout, w],
        }
    }

    /// Check the geometry and the operand lengths `[a, b, c]` (and the bias's).
    pub fn check(&self, lens: [usize; 3], bias: Option<usize>) -> Result<()> {
        let s = self;
        if s.seq == 0 || s.taps == 0 || s.dil == 0 || s.cin == 0 || s.cout == 0 {
            return Err(Error::InvalidArgument(format!(
                "conv1d: sequence length {}, kernel {}, dilation {}, channels {}→{} must all be positive",
                s.seq, s.taps, s.dil, s.cin, s.cout
            )));
        }
        if !s.rows.is_multiple_of(s.seq) {
            return Err(Error::Shape(format!(
                "conv1d: {} rows are not whole sequences of length {}",
                s.rows, s.seq
            )));
        }
        let w = s
            .taps
            .checked_mul(s.cin)
            .and_then(|v| v.checked_mul(s.cout));
        let r = s.rows.checked_mul(s.cin.max(s.cout));
        if w.is_none() || r.is_none() {
            return Err(Error::Limit("conv1d: sizes overflow".into()));
        }
        if lens != self.lens() {
            return Err(Error::Shape(format!(
                "conv1d {:?}: operands of {lens:?} elements, expected {:?}",
                s.mode,
                self.lens()
            )));
        }
        match (bias, s.mode) {
            (Some(n), ConvMode::Forward) if n != s.cout => Err(Error::Shape(format!(
                "conv1d: bias of {n} elements for {} output channels",
                s.cout
            ))),
            (Some(_), ConvMode::Forward) | (None, _) => Ok(()),
            (Some(_), _) => Err(Error::InvalidArgument(
                "conv1d: only the forward product takes a bias".into(),
            )),
        }
    }

    /// Offset of tap `t` (negated for the transposed convolution).
    fn offset(&self, t: usize) -> isize {
        let o = (t as isize - (self.taps as isize - 1) / 2) * self.dil as isize;
        if self.mode == ConvMode::InputGrad {
            -o
        } else {
            o
        }
    }
}

/// CPU reference and CPU backend: `c (+)= product` (see [`ConvMode`]), one strided gemm per
/// sequence and tap, accumulated in `T`.
pub fn conv_cpu<T: Real>(s: &ConvSpec, a: &[T], b: &[T], bias: Option<&[T]>, c: &mut [T]) {
    if !s.acc {
        c.iter_mut().for_each(|v| *v = T::default());
    }
    let (l, cin, cout) = (s.seq as isize, s.cin, s.cout);
    let one = T::from_f64(1.0);
    for seq in 0..s.rows / s.seq {
        let base = seq * s.seq;
        for t in 0..s.taps {
            let o = s.offset(t);
            let (lo, hi) = (0.max(-o), l.min(l - o));
            if lo >= hi {
                continue;
            }
            let len = (hi - lo) as usize;
            let (dst, src) = (base + lo as usize, (base as isize + lo + o) as usize);
            let tap = t * cin * cout;
            match s.mode {
                ConvMode::Forward => {
                    let (x, w) = (&a[src * cin..], &b[tap..]);
                    let y = &mut c[dst * cout..];
                    T::gemm(
                        len,
                        cin,
                        cout,
                        x,
                        (cin as isize, 1),
                        w,
                        (cout as isize, 1),
                        one,
                        y,
                    );
                }
                ConvMode::InputGrad => {
                    let (gy, w) = (&a[src * cout..], &b[tap..]);
                    let gx = &mut c[dst * cin..];
                    T::gemm(
                        len,
                        cout,
                        cin,
                        gy,
                        (cout as isize, 1),
                        w,
                        (1, cout as isize),
                        one,
                        gx,
                    );
                }
                ConvMode::WeightGrad => {
                    let (x, gy) = (&a[src * cin..], &b[dst * cout..]);
                    let gw = &mut c[tap..];
                    T::gemm(
                        cin,
                        len,
                        cout,
                        x,
                        (1, cin as isize),
                        gy,
                        (cout as isize, 1),
                        one,
                        gw,
                    );
                }
            }
        }
    }
    if let Some(bv) = bias {
        for (i, v) in c.iter_mut().enumerate() {
            *v = T::from_f64(v.to_f64() + bv[i % cout].to_f64());
        }
    }
}

/// Record `c (+)= product` (see [`ConvMode`]) in storage `precision`; `c` must be in another
/// buffer than the operands.
#[allow(clippy::too_many_arguments)]
pub fn conv_gemm(
    ctx: &GpuContext,
    rec: &mut Recorder,
    s: &ConvSpec,
    a: View,
    b: View,
    bias: Option<View>,
    c: View,
    precision: Precision,
) -> Result<()> {
    s.check(
        [a.len as usize, b.len as usize, c.len as usize],
        bias.map(|v| v.len as usize),
    )?;
    precision.check(ctx)?;
    let elem = precision.bytes();
    for (name, v) in [("a", Some(a)), ("b", Some(b)), ("bias", bias)] {
        let Some(v) = v else { continue };
        v.check_elems(&format!("conv1d {name}"), elem)?;
        if v.buffer == c.buffer {
            return Err(Error::InvalidArgument(format!(
                "conv1d: the output shares a buffer with {name}"
            )));
        }
    }
    c.check_elems("conv1d c", elem)?;
    let (m, n, k, chans) = s.gemm();
    let (ra, a_off) = a.bind_elems(ctx, "conv1d a", elem, elem)?;
    let (rb, b_off) = b.bind_elems(ctx, "conv1d b", elem, elem)?;
    let (rc, c_off) = c.bind_elems(ctx, "conv1d c", elem, elem)?;
    let (rbias, bias_off) = bias
        .unwrap_or(a)
        .bind_elems(ctx, "conv1d bias", elem, elem)?;
    let flags = (s.mode == ConvMode::WeightGrad) as u32
        | if s.acc { 4 } else { 0 }
        | if bias.is_some() { 8 } else { 0 };
    let p = GemmParams {
        m: u32_of(m, "conv1d rows")?,
        n: u32_of(n, "conv1d columns")?,
        k: u32_of(k, "conv1d inner dimension")?,
        flags,
        a_off,
        b_off,
        c_off,
        bias_off,
        alpha: 1.0,
        seq: u32_of(s.seq, "conv1d sequence length")?,
        chans: u32_of(chans, "conv1d channels")?,
        taps: u32_of(s.taps, "conv1d kernel size")?,
        dil: u32_of(s.dil, "conv1d dilation")?,
        flip: (s.mode == ConvMode::InputGrad) as u32,
        ..Default::default()
    };
    let grid = [
        u32_of(n.div_ceil(TILE), "conv1d column tiles")?,
        u32_of(m.div_ceil(TILE), "conv1d row tiles")?,
        1,
    ];
    let max = ctx.limits().max_compute_workgroups_per_dimension;
    if grid[0] > max || grid[1] > max {
        return Err(Error::Limit(format!(
            "conv1d m={m} n={n}: {}×{} tiles exceed {max} workgroups per dimension",
            grid[1], grid[0]
        )));
    }
    let args = [ra, rb, rbias, rc].map(Arg::Resource);
    CONV_GEMM.launch_as(ctx, rec, precision, Work::Grid(grid), &args, |_| p)
}
