//! The floating-point types the CPU backend and the CPU references compute in: f32, and f64
//! for finite-difference gradient checks.

/// A floating-point element the CPU backend computes in.
pub trait Real: Copy + Default + Send + Sync + std::fmt::Debug + 'static {
    /// `cpu-f32` or `cpu-f64`.
    const NAME: &'static str;
    /// Convert from f64 (rounding for f32).
    fn from_f64(v: f64) -> Self;
    /// Convert to f64.
    fn to_f64(self) -> f64;
    /// `c = alpha·op(a)·op(b) + beta·c` with strides (row, column) as in `matrixmultiply`.
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
    );
}

impl Real for f32 {
    const NAME: &'static str = "cpu-f32";
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn gemm(
        m: usize,
        k: usize,
        n: usize,
        a: &[f32],
        (rsa, csa): (isize, isize),
        b: &[f32],
        (rsb, csb): (isize, isize),
        beta: f32,
        c: &mut [f32],
    ) {
        assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
        // SAFETY: the slices hold at least m·k, k·n and m·n elements and the strides describe
        // row-major or transposed row-major layouts of exactly those sizes.
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                a.as_ptr(),
                rsa,
                csa,
                b.as_ptr(),
                rsb,
                csb,
                beta,
                c.as_mut_ptr(),
                n as isize,
                1,
            )
        }
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
    fn gemm(
        m: usize,
        k: usize,
        n: usize,
        a: &[f64],
        (rsa, csa): (isize, isize),
        b: &[f64],
        (rsb, csb): (isize, isize),
        beta: f64,
        c: &mut [f64],
    ) {
        assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
        // SAFETY: as for f32.
        unsafe {
            matrixmultiply::dgemm(
                m,
                k,
                n,
                1.0,
                a.as_ptr(),
                rsa,
                csa,
                b.as_ptr(),
                rsb,
                csb,
                beta,
                c.as_mut_ptr(),
                n as isize,
                1,
            )
        }
    }
}
