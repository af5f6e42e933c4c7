//! `Concat`: concatenation along the feature axis, with the `Concat2` (two whole parts in one
//! pass) and `ColCopy` (a block of columns copied between row-major matrices) instructions.

use crate::autodiff::graph::{Dim, Graph, NodeId};
use crate::autodiff::kernels::{self as k, AutodiffParams};
use crate::autodiff::op::{Backward, Forward, GpuRun, Instr, Loc, Mem, Op};
use crate::autodiff::ops::elementwise::launch;
use crate::error::{Error, Result};
use crate::gpu::u32_of;
use crate::kernels::{cpu, Real};

/// `y[r, y_off + j] (+)= x[r, x_off + j]` for `j < width`.
#[derive(Debug)]
pub struct ColCopy {
    /// Source.
    pub x: Loc,
    /// Destination.
    pub y: Loc,
    /// Rows.
    pub rows: usize,
    /// Columns of the source.
    pub x_cols: usize,
    /// Columns of the destination.
    pub y_cols: usize,
    /// First source column.
    pub x_off: usize,
    /// First destination column.
    pub y_off: usize,
    /// Columns copied.
    pub width: usize,
    /// Add into `y`.
    pub acc: bool,
}

impl ColCopy {
    fn run<T: Real>(&self, mem: &mut Mem<T>) {
        let (xc, yc, w) = (self.x_cols, self.y_cols, self.width);
        mem.with_dst(self.y, |y, r| {
            let xs = r.get(self.x);
            let rows = &mut y[..self.rows * yc];
            cpu::for_chunks_by(rows, yc, self.rows * w, |o, ys| {
                for (i, yr) in ys.chunks_mut(yc).enumerate() {
                    let row = o / yc + i;
                    let src = &xs[row * xc + self.x_off..][..w];
                    let dst = &mut yr[self.y_off..][..w];
                    if self.acc {
                        for (d, s) in dst.iter_mut().zip(src) {
                            *d = T::from_f64(d.to_f64() + s.to_f64());
                        }
                    } else {
                        dst.copy_from_slice(src);
                    }
                }
            })
        })
    }
}

impl Instr for ColCopy {
    fn dst(&self) -> Loc {
        self.y
    }
    fn srcs(&self) -> Vec<Loc> {
        vec![self.x]
    }
    crate::cpu_instr!();
    fn record(&self, gpu: &mut GpuRun<'_>) -> Result<()> {
        let p = AutodiffParams {
            rows: u32_of(self.rows, "rows")?,
            x_cols: u32_of(self.x_cols, "columns")?,
            y_cols: u32_of(self.y_cols, "columns")?,
            x_off: u32_of(self.x_off, "column offset")?,
            y_off: u32_of(self.y_off, "column offset")?,
            width: u32_of(self.width, "columns")?,
            acc: self.acc as u32,
            ..Default::default()
        };
        let n = self.rows * self.width;
        launch(gpu, &k::COL_COPY, &[self.x, self.y], n, p)
    }
    fn f16_storage(&self) -> bool {
        true
    }
}

/// `y[r, :] = [a[r, :], b[r, :]]`: a whole two-part concatenation in one pass.
#[derive(Debug)]
pub struct Concat2 {
    /// First part `[rows, a_cols]`.
    pub a: Loc,
    /// Second part `[rows, b_cols]`.
    pub b: Loc,
    /// Output `[rows, a_cols + b_cols]`.
    pub y: Loc,
    /// Rows.
    pub rows: usize,
    /// Columns of `a`.
    pub a_cols: usize,
    /// Columns of `b`.
    pub b_cols: usize,
}

impl Concat2 {
    fn run<T: Real>(&self, mem: &mut Mem<T>) {
        let (wa, wb) = (self.a_cols, self.b_cols);
        mem.with_dst(self.y, |y, r| {
            let (a, b) = (r.get(self.a), r.get(self.b));
            cpu::for_chunks(y, wa + wb, |o, ys| {
                for (i, yr) in ys.chunks_mut(wa + wb).enumerate() {
                    let row = o / (wa + wb) + i;
                    yr[..wa].copy_from_slice(&a[row * wa..][..wa]);
                    yr[wa..].copy_from_slice(&b[row * wb..][..wb]);
                }
            })
        })
    }
}

impl Instr for Concat2 {
    fn dst(&self) -> Loc {
        self.y
    }
    fn srcs(&self) -> Vec<Loc> {
        vec![self.a, self.b]
    }
    crate::cpu_instr!();
    fn record(&self, gpu: &mut GpuRun<'_>) -> Result<()> {
        let p = AutodiffParams {
            rows: u32_of(self.rows, "rows")?,
            x_cols: u32_of(self.a_cols, "columns")?,
            y_cols: u32_of(self.b_cols, "columns")?,
            ..Default::default()
        };
        let n = self.rows * (self.a_cols + self.b_cols);
        launch(gpu, &k::CONCAT2, &[self.a, self.b, self.y], n, p)
    }
    fn f16_storage(&self) -> bool {
        true
    }
}

/// Concatenation along the last axis.
#[derive(Debug)]
pub struct Concat {
    parts: Vec<NodeId>,
}

impl Concat {
    /// Add the concatenation of `parts` (same rows, fixed columns) to `g`.
    pub fn build(g: &mut Graph, parts: &[NodeId]) -> Result<NodeId> {
        if parts.is_empty() {
            return Err(Error::InvalidArgument("concat of no tensors".into()));
        }
        let rows = g.shape(parts[0])?[0];
        let mut cols = 0usize;
        for &p in parts {
            let s = g.shape(p)?;
            if s[0] != rows {
                return Err(Error::Shape(format!(
                    "concat: part {} has rows {} but the first part has {}",
                    p, s[0], rows
                )));
            }
            match s[1] {
                Dim::Fixed(c) => cols += c,
                Dim::Batch => {
                    return Err(Error::Shape(
                        "concat: parts must have a fixed number of columns".into(),
                    ))
                }
            }
        }
        let c = Concat {
            parts: parts.to_vec(),
        };
        g.add_op(c, [rows, Dim::Fixed(cols)])
    }
}

impl Op for Concat {
    fn name(&self) -> &'static str {
        "concat"
    }
    fn operands(&self) -> Vec<NodeId> {
        self.parts.clone()
    }
    fn forward(&self, cx: &mut Forward<'_>) {
        let [rows, cols] = cx.y_shape();
        let y = cx.y();
        if let [p, q] = self.parts[..] {
            let (a, b) = (cx.value(p), cx.value(q));
            let (a_cols, b_cols) = (cx.shape(p)[1], cx.shape(q)[1]);
            cx.emit(Concat2 {
                a,
                b,
                y,
                rows,
                a_cols,
                b_cols,
            });
            return;
        }
        let mut y_off = 0;
        for &p in &self.parts {
            let w = cx.shape(p)[1];
            let x = cx.value(p);
            cx.emit(ColCopy {
                x,
                y,
                rows,
                x_cols: w,
                y_cols: cols,
                x_off: 0,
                y_off,
                width: w,
                acc: false,
            });
            y_off += w;
        }
    }
    fn backward(&self, cx: &mut Backward<'_>) {
        let [rows, cols] = cx.y_shape();
        let gy = cx.gy();
        let mut x_off = 0;
        for &p in &self.parts {
            let w = cx.shape(p)[1];
            cx.grad(p, |d, acc| ColCopy {
                x: gy,
                y: d,
                rows,
                x_cols: cols,
                y_cols: w,
                x_off,
                y_off: 0,
                width: w,
                acc,
            });
            x_off += w;
        }
    }
    fn as_concat(&self) -> Option<Vec<NodeId>> {
        Some(self.parts.clone())
    }
}
