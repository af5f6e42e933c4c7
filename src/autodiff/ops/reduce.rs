//! Reductions: `Sum` (or the mean) of all elements and `MseLoss` (squared error summed over
//! features, averaged over rows), with the `Total`, `Broadcast`, `SqDiffGrad` and `ColSum`
//! instructions (the tree and column sums of `kernels::reduce` on the GPU).

use crate::autodiff::graph::{Dim, Graph, NodeId};
use crate::autodiff::kernels::{self as k, AutodiffParams};
use crate::autodiff::op::{Backward, Forward, GpuRun, Instr, Loc, Mem, Op};
use crate::autodiff::ops::elementwise::launch;
use crate::autodiff::ops::same_shape;
use crate::error::Result;
use crate::gpu::u32_of;
use crate::kernels::reduce::{self, SumOf};
use crate::kernels::{cpu, Real};

const SCALAR: [Dim; 2] = [Dim::Fixed(1), Dim::Fixed(1)];

/// `y[0] = s · Σ x` (or `s · Σ (x − z)²` with [`SumOf::SquaredDiffs`]).
#[derive(Debug)]
pub struct Total {
    /// What is summed.
    pub of: SumOf,
    /// Input.
    pub x: Loc,
    /// Second input of the squared differences.
    pub z: Option<Loc>,
    /// Output (one element).
    pub y: Loc,
    /// Scale.
    pub s: f32,
}

impl Total {
    fn run<T: Real>(&self, mem: &mut Mem<T>) {
        mem.with_dst(self.y, |y, r| {
            let xs = r.get(self.x);
            let t = match (self.of, self.z) {
                (SumOf::SquaredDiffs, Some(z)) => {
                    let zs = r.get(z);
                    cpu::sum_chunks(xs.len(), 1, |rg| {
                        let (p, q) = (&xs[rg.clone()], &zs[rg]);
                        p.iter()
                            .zip(q)
                            .map(|(p, q)| (p.to_f64() - q.to_f64()).powi(2))
                            .sum()
                    })
                }
                (SumOf::Squares, _) => cpu::sum_chunks(xs.len(), 1, |rg| {
                    xs[rg].iter().map(|v| v.to_f64() * v.to_f64()).sum()
                }),
                _ => cpu::sum_chunks(xs.len(), 1, |rg| xs[rg].iter().map(|v| v.to_f64()).sum()),
            };
            y[0] = T::from_f64(self.s as f64 * t);
        })
    }
}

impl Instr for Total {
    fn dst(&self) -> Loc {
        self.y
    }
    fn srcs(&self) -> Vec<Loc> {
        let mut v = vec![self.x];
        v.extend(self.z);
        v
    }
    crate::cpu_instr!();
    fn record(&self, gpu: &mut GpuRun<'_>) -> Result<()> {
        let (x, z, y) = (
            gpu.view(self.x),
            self.z.map(|l| gpu.view(l)),
            gpu.view(self.y),
        );
        reduce::sum_reduce(gpu.ctx, gpu.rec, self.of, x, z, self.s, y)
    }
}

/// `y (+)= s · g[0]` everywhere.
#[derive(Debug)]
pub struct Broadcast {
    /// The scalar.
    pub g: Loc,
    /// Output.
    pub y: Loc,
    /// Scale.
    pub s: f32,
    /// Add into `y`.
    pub acc: bool,
}

impl Broadcast {
    fn run<T: Real>(&self, mem: &mut Mem<T>) {
        mem.with_dst(self.y, |y, r| {
            let v = self.s as f64 * r.get(self.g)[0].to_f64();
            cpu::for_chunks(y, 1, |_, ys| {
                for yv in ys {
                    *yv = T::from_f64(if self.acc { yv.to_f64() + v } else { v });
                }
            })
        });
    }
}

impl Instr for Broadcast {
    fn dst(&self) -> Loc {
        self.y
    }
    fn srcs(&self) -> Vec<Loc> {
        vec![self.g]
    }
    crate::cpu_instr!();
    fn record(&self, gpu: &mut GpuRun<'_>) -> Result<()> {
        let p = AutodiffParams {
            n: u32_of(self.y.len, "elements")?,
            s: self.s,
            acc: self.acc as u32,
            ..Default::default()
        };
        launch(gpu, &k::BROADCAST, &[self.g, self.y], self.y.len, p)
    }
}

/// `y (+)= s · g[0] · (a − b)`.
#[derive(Debug)]
pub struct SqDiffGrad {
    /// Prediction.
    pub a: Loc,
    /// Target.
    pub b: Loc,
    /// The loss gradient (one element).
    pub g: Loc,
    /// Output.
    pub y: Loc,
    /// Scale.
    pub s: f32,
    /// Add into `y`.
    pub acc: bool,
}

impl SqDiffGrad {
    fn run<T: Real>(&self, mem: &mut Mem<T>) {
        mem.with_dst(self.y, |y, r| {
            let sg = self.s as f64 * r.get(self.g)[0].to_f64();
            let (a, b) = (r.get(self.a), r.get(self.b));
            cpu::map2(y, a, b, self.acc, |p, q| sg * (p - q));
        });
    }
}

impl Instr for SqDiffGrad {
    fn dst(&self) -> Loc {
        self.y
    }
    fn srcs(&self) -> Vec<Loc> {
        vec![self.a, self.b, self.g]
    }
    crate::cpu_instr!();
    fn record(&self, gpu: &mut GpuRun<'_>) -> Result<()> {
        let p = AutodiffParams {
            n: u32_of(self.y.len, "elements")?,
            s: self.s,
            acc: self.acc as u32,
            ..Default::default()
        };
        let locs = [self.a, self.b, self.g, self.y];
        launch(gpu, &k::SQDIFF_GRAD, &locs, self.y.len, p)
    }
}

/// `y[c] (+)= Σ_r x[r, c]` (bias gradients).
#[derive(Debug)]
pub struct ColSum {
    /// Input `[rows, cols]`.
    pub x: Loc,
    /// Output `[cols]`.
    pub y: Loc,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Add into `y`.
    pub acc: bool,
}

impl ColSum {
    fn run<T: Real>(&self, mem: &mut Mem<T>) {
        /// Columns summed together (their partial sums stay in registers).
        const BLOCK: usize = 64;
        let (rows, cols) = (self.rows, self.cols);
        mem.with_dst(self.y, |y, r| {
            let xs = r.get(self.x);
            cpu::for_chunks_by(y, BLOCK, rows * cols, |o, ys| {
                for (bi, yb) in ys.chunks_mut(BLOCK).enumerate() {
                    let c0 = o + bi * BLOCK;
                    let mut acc = [0f64; BLOCK];
                    for row in 0..rows {
                        let xr = &xs[row * cols + c0..][..yb.len()];
                        for (a, v) in acc.iter_mut().zip(xr) {
                            *a += v.to_f64();
                        }
                    }
                    for (yv, a) in yb.iter_mut().zip(acc) {
                        *yv = T::from_f64(if self.acc { yv.to_f64() + a } else { a });
                    }
                }
            })
        });
    }
}

impl Instr for ColSum {
    fn dst(&self) -> Loc {
        self.y
    }
    fn srcs(&self) -> Vec<Loc> {
        vec![self.x]
    }
    crate::cpu_instr!();
    fn record(&self, gpu: &mut GpuRun<'_>) -> Result<()> {
        let (x, y) = (gpu.view(self.x), gpu.view(self.y));
        reduce::sum_rows(gpu.ctx, gpu.rec, self.rows, self.cols, x, y, 1.0, self.acc)
    }
}

/// The sum (or, with `mean`, the mean) of all elements, `[1, 1]`.
#[derive(Debug)]
pub struct Sum {
    a: NodeId,
    mean: bool,
}

impl Sum {
    /// Add `Σ a` (or the mean) to `g`.
    pub fn build(g: &mut Graph, a: NodeId, mean: bool) -> Result<NodeId> {
        g.shape(a)?;
        g.add_op(Sum { a, mean }, SCALAR)
    }

    fn scale(&self, shape: [usize; 2]) -> f32 {
        if self.mean {
            1.0 / (shape[0] * shape[1]) as f32
        } else {
            1.0
        }
    }
}

impl Op for Sum {
    fn name(&self) -> &'static str {
        if self.mean {
            "mean"
        } else {
            "sum"
        }
    }
    fn operands(&self) -> Vec<NodeId> {
        vec![self.a]
    }
    fn forward(&self, cx: &mut Forward<'_>) {
        let s = self.scale(cx.shape(self.a));
        let (x, y) = (cx.value(self.a), cx.y());
        cx.emit(Total {
            of: SumOf::Values,
            x,
            z: None,
            y,
            s,
        });
    }
    fn backward(&self, cx: &mut Backward<'_>) {
        let (s, g) = (self.scale(cx.shape(self.a)), cx.gy());
        cx.grad(self.a, |y, acc| Broadcast { g, y, s, acc });
    }
}

/// `Σ_features (v − u)²` averaged over rows, `[1, 1]`.
#[derive(Debug)]
pub struct MseLoss {
    v: NodeId,
    u: NodeId,
}

impl MseLoss {
    /// Add the loss of `v` against `u` to `g`.
    pub fn build(g: &mut Graph, v: NodeId, u: NodeId) -> Result<NodeId> {
        same_shape(g, "mse_loss", v, u)?;
        g.add_op(MseLoss { v, u }, SCALAR)
    }
}

impl Op for MseLoss {
    fn name(&self) -> &'static str {
        "mse_loss"
    }
    fn operands(&self) -> Vec<NodeId> {
        vec![self.v, self.u]
    }
    fn forward(&self, cx: &mut Forward<'_>) {
        let s = 1.0 / cx.shape(self.v)[0] as f32;
        let (x, z, y) = (cx.value(self.v), cx.value(self.u), cx.y());
        cx.emit(Total {
            of: SumOf::SquaredDiffs,
            x,
            z: Some(z),
            y,
            s,
        });
    }
    fn backward(&self, cx: &mut Backward<'_>) {
        let s = 2.0 / cx.shape(self.v)[0] as f32;
        let (a, b, g) = (cx.value(self.v), cx.value(self.u), cx.gy());
        for (o, sign) in [(self.v, 1.0), (self.u, -1.0)] {
            cx.grad(o, |y, acc| SqDiffGrad {
                a,
                b,
                g,
                y,
                s: sign * s,
                acc,
            });
        }
    }
}
