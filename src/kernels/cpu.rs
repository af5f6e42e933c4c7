//! The CPU backend's threads and loops: one pool of worker threads, shared by the products
//! ([`Real::gemm`]) and by the element-wise work of the instructions, the optimizer and the
//! host batches, sized once from [`THREADS_ENV`] (default: every core the process may use).
//!
//! Loops split their output into one chunk of whole rows per thread; small loops run on the
//! calling thread, where a hand-off would cost more than the work. Sums add fixed per-chunk
//! partial sums in order, so a result depends on the thread count only, never on scheduling.

use std::ops::Range;
use std::sync::OnceLock;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::kernels::{Activation, Real};

/// Environment variable setting the CPU backend's thread count (a positive integer).
pub const THREADS_ENV: &str = "FISHERFLOW_THREADS";

/// The largest thread count [`THREADS_ENV`] may ask for.
pub const MAX_THREADS: usize = 256;

/// Loops over fewer elements than this run on the calling thread.
const PAR_MIN: usize = 1 << 14;

/// Products of fewer multiply-adds than this run on the calling thread.
const GEMM_PAR_MIN: usize = 1 << 18;

static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();

/// A thread count as [`THREADS_ENV`] gives it: an integer from 1 to [`MAX_THREADS`].
pub fn parse_threads(s: &str) -> Result<usize> {
    s.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_THREADS).contains(n))
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{THREADS_ENV}={s:?}: expected a thread count from 1 to {MAX_THREADS}"
            ))
        })
}

/// The thread count the environment asks for, or every core the process may use.
fn requested() -> Result<usize> {
    match std::env::var_os(THREADS_ENV) {
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
        Some(v) => parse_threads(&v.to_string_lossy()),
    }
}

fn pool() -> &'static rayon::ThreadPool {
    POOL.get_or_init(|| {
        let n = requested().unwrap_or(1);
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("fisherflow-cpu-{i}"))
            .build()
            .or_else(|_| rayon::ThreadPoolBuilder::new().num_threads(1).build())
            .expect("a one-thread pool")
    })
}

/// Check [`THREADS_ENV`] and start the pool; the thread count. The CPU executors call this
/// before any work, so a malformed setting is an error there rather than a silent default.
pub fn init() -> Result<usize> {
    requested()?;
    Ok(threads())
}

/// Threads of the pool.
pub fn threads() -> usize {
    pool().current_num_threads()
}

/// Chunk length (whole `unit`s) splitting `len` elements of `work` total cost over the pool.
fn chunk_len(len: usize, unit: usize, work: usize) -> usize {
    let t = threads();
    let unit = unit.max(1);
    if t == 1 || work < PAR_MIN || len <= unit {
        return len.max(1);
    }
    (len / unit).div_ceil(t).max(1) * unit
}

/// `f(offset, chunk)` over `y` in chunks of whole `unit`s (rows), in parallel for large `y`.
pub fn for_chunks<T: Send>(y: &mut [T], unit: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let work = y.len();
    for_chunks_by(y, unit, work, f)
}

/// [`for_chunks`] with the loop's total cost `work` (in element operations) deciding whether
/// threads pay off.
pub fn for_chunks_by<T: Send>(
    y: &mut [T],
    unit: usize,
    work: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let c = chunk_len(y.len(), unit, work);
    if c >= y.len() {
        f(0, y);
        return;
    }
    pool().install(|| {
        y.par_chunks_mut(c)
            .enumerate()
            .for_each(|(i, ch)| f(i * c, ch))
    });
}

/// `f(offset, a, b, c)` over three equally long slices in matching chunks of whole `unit`s,
/// in parallel for long ones.
pub fn for_chunks3<A: Send, B: Send, C: Send>(
    a: &mut [A],
    b: &mut [B],
    c: &mut [C],
    unit: usize,
    f: impl Fn(usize, &mut [A], &mut [B], &mut [C]) + Sync,
) {
    assert!(a.len() == b.len() && b.len() == c.len());
    let n = chunk_len(a.len(), unit, a.len());
    if n >= a.len() {
        f(0, a, b, c);
        return;
    }
    pool().install(|| {
        a.par_chunks_mut(n)
            .zip(b.par_chunks_mut(n))
            .zip(c.par_chunks_mut(n))
            .enumerate()
            .for_each(|(i, ((x, y), z))| f(i * n, x, y, z))
    });
}

/// `Σ f(range)` over `0..len` split into ranges of whole `unit`s, the partial sums added in
/// order.
pub fn sum_chunks(len: usize, unit: usize, f: impl Fn(Range<usize>) -> f64 + Sync) -> f64 {
    let c = chunk_len(len, unit, len);
    if c >= len {
        return f(0..len);
    }
    let mut parts = [0f64; MAX_THREADS];
    let n = len.div_ceil(c);
    pool().install(|| {
        parts[..n]
            .par_iter_mut()
            .enumerate()
            .for_each(|(i, p)| *p = f(i * c..((i + 1) * c).min(len)))
    });
    parts[..n].iter().sum()
}

/// `c = op(a)·op(b) + beta·c` (`c` row-major `[m, n]`, `a` and `b` given by their (row,
/// column) strides) through the `gemm` crate's kernels for the machine's vector extension,
/// on the pool when the product is large.
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Real>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    (rsa, csa): (isize, isize),
    b: &[T],
    (rsb, csb): (isize, isize),
    beta: T,
    c: &mut [T],
) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    let read_c = beta.to_f64() != 0.0;
    let go = |c: &mut [T], par: gemm::Parallelism| {
        // SAFETY: the slices hold at least m·k, k·n and m·n elements and the strides describe
        // row-major or transposed row-major layouts of exactly those sizes; `c` does not
        // overlap `a` or `b` (it is borrowed mutably).
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                c.as_mut_ptr(),
                1,
                n as isize,
                read_c,
                a.as_ptr(),
                csa,
                rsa,
                b.as_ptr(),
                csb,
                rsb,
                beta,
                T::from_f64(1.0),
                false,
                false,
                false,
                par,
            )
        }
    };
    let t = threads();
    if t == 1 || m.saturating_mul(n).saturating_mul(k) < GEMM_PAR_MIN {
        go(c, gemm::Parallelism::None);
    } else {
        pool().install(|| go(c, gemm::Parallelism::Rayon(t)));
    }
}

/// `y[i] (+)= f(x[i])`, computed in f64.
pub fn map<T: Real>(y: &mut [T], x: &[T], acc: bool, f: impl Fn(f64) -> f64 + Sync) {
    assert_eq!(y.len(), x.len());
    for_chunks(y, 1, |o, ys| {
        let xs = &x[o..o + ys.len()];
        if acc {
            for (yv, xv) in ys.iter_mut().zip(xs) {
                *yv = T::from_f64(yv.to_f64() + f(xv.to_f64()));
            }
        } else {
            for (yv, xv) in ys.iter_mut().zip(xs) {
                *yv = T::from_f64(f(xv.to_f64()));
            }
        }
    });
}

/// `y[i] (+)= f(a[i], b[i])`, computed in f64.
pub fn map2<T: Real>(y: &mut [T], a: &[T], b: &[T], acc: bool, f: impl Fn(f64, f64) -> f64 + Sync) {
    assert!(y.len() == a.len() && a.len() == b.len());
    for_chunks(y, 1, |o, ys| {
        let (aa, bb) = (&a[o..o + ys.len()], &b[o..o + ys.len()]);
        if acc {
            for ((yv, p), q) in ys.iter_mut().zip(aa).zip(bb) {
                *yv = T::from_f64(yv.to_f64() + f(p.to_f64(), q.to_f64()));
            }
        } else {
            for ((yv, p), q) in ys.iter_mut().zip(aa).zip(bb) {
                *yv = T::from_f64(f(p.to_f64(), q.to_f64()));
            }
        }
    });
}

/// Run `body` with the activation `f` as a closure of its own type, so that loops over it
/// compile to one branch-free body per kind.
pub fn with_act<R>(f: Activation, body: impl ActBody<R>) -> R {
    match f {
        Activation::Identity => body.run(|v| v),
        Activation::Relu => body.run(|v: f64| v.max(0.0)),
        Activation::LeakyRelu(s) => {
            let s = s as f64;
            body.run(move |v: f64| if v >= 0.0 { v } else { s * v })
        }
        _ => body.run(move |v| f.apply(v)),
    }
}

/// A loop generic over the activation closure ([`with_act`]).
pub trait ActBody<R> {
    /// Run with `f`.
    fn run(self, f: impl Fn(f64) -> f64 + Sync + Copy) -> R;
}

/// `y[r, c] = f(y[r, c] + bias[c])`, or with `z`, `y[r, c] += f(z[r, c] + bias[c])`: the
/// epilogue of a product with `n` columns.
pub fn epilogue<T: Real>(
    y: &mut [T],
    z: Option<&[T]>,
    bias: Option<&[T]>,
    n: usize,
    f: Activation,
) {
    struct Pass<'a, T> {
        y: &'a mut [T],
        z: Option<&'a [T]>,
        bias: Option<&'a [T]>,
        n: usize,
    }
    impl<T: Real> ActBody<()> for Pass<'_, T> {
        fn run(self, f: impl Fn(f64) -> f64 + Sync + Copy) {
            let (z, bias, n) = (self.z, self.bias, self.n);
            for_chunks(self.y, n, |o, ys| {
                for (r, row) in ys.chunks_mut(n).enumerate() {
                    let at = o + r * n;
                    match (z, bias) {
                        (Some(z), Some(b)) => {
                            for ((yv, zv), bv) in row.iter_mut().zip(&z[at..at + n]).zip(b) {
                                *yv = T::from_f64(yv.to_f64() + f(zv.to_f64() + bv.to_f64()));
                            }
                        }
                        (Some(z), None) => {
                            for (yv, zv) in row.iter_mut().zip(&z[at..at + n]) {
                                *yv = T::from_f64(yv.to_f64() + f(zv.to_f64()));
                            }
                        }
                        (None, Some(b)) => {
                            for (yv, bv) in row.iter_mut().zip(b) {
                                *yv = T::from_f64(f(yv.to_f64() + bv.to_f64()));
                            }
                        }
                        (None, None) => {
                            for yv in row.iter_mut() {
                                *yv = T::from_f64(f(yv.to_f64()));
                            }
                        }
                    }
                }
            });
        }
    }
    with_act(f, Pass { y, z, bias, n })
}
