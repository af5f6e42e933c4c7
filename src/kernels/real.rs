//! The floating-point types the CPU backend and the CPU references compute in: f32, and f64
//! for finite-difference gradient checks.

/// A floating-point element the CPU backend computes in.
pub trait Real:
    Copy
    + Default
    + Send
    + Sync
    + std::fmt::Debug
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + 'static
{
    /// `cpu-f32` or `cpu-f64`.
    const NAME: &'static str;
    /// Convert from f64 (rounding for f32).
    fn from_f64(v: f64) -> Self;
    /// Convert to f64.
    fn to_f64(self) -> f64;
    /// The square root.
    fn sqrt(self) -> Self;
    /// `c = op(a)·op(b) + beta·c` with strides (row, column) of `a` and `b`; `c` is row-major
    /// `[m, n]`. See [`cpu::gemm`](crate::kernels::cpu::gemm).
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        m: usize,
        k: usize,
        n: usize,
        a: &[Self],
        a_strides: (isize, isize),
        b: &[Self],
        b_strides: (isize, isize),
        beta: Self,
        c: &mut [Self],
    ) {
        crate::kernels::cpu::gemm(m, k, n, a, a_strides, b, b_strides, beta, c)
    }
}

impl Real for f32 {
    const NAME: &'static str = "cpu-f32";
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
}

impl Real for f64 {
    const NAME: &'static str = "cpu-f64";
    fn from_f64(v: f64) -> Self {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
}
