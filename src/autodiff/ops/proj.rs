//! `ProjTangent`: per group of `k` columns (one sphere per position), `v − ⟨x, v⟩ x`, the
//! projection onto the tangent space of the unit sphere at `x`. Its instructions run the
//! sphere kernels (`kernels::sphere`) on the GPU.

use crate::autodiff::graph::{Dim, Graph, NodeId};
use crate::autodiff::op::{Backward, Forward, GpuRun, Instr, Loc, Mem, Op};
use crate::autodiff::ops::same_shape;
use crate::error::{Error, Result};
use crate::kernels::{cpu, sphere, Real};

/// Per group of `k`: `y (+)= v − ⟨x, v⟩ x` (also the gradient with respect to `v`, with the
/// output gradient in place of `v`).
#[derive(Debug)]
pub struct Proj {
    /// The vector field (or the output gradient).
    pub v: Loc,
    /// Base points.
    pub x: Loc,
    /// Output.
    pub y: Loc,
    /// Group size.
    pub k: usize,
    /// Add into `y`.
    pub acc: bool,
}

impl Proj {
    fn run<T: Real>(&self, mem: &mut Mem<T>) {
        let k = self.k;
        mem.with_dst(self.y, |y, r| {
            let (vs, xs) = (r.get(self.v), r.get(self.x));
            cpu::for_chunks(y, k, |o, ys| {
                for (i, yr) in ys.chunks_mut(k).enumerate() {
                    let at = o + i * k;
                    let (v, x) = (&vs[at..at + k], &xs[at..at + k]);
                    let dot = dot(x, v);
                    for ((yv, vv), xv) in yr.iter_mut().zip(v).zip(x) {
                        let p = vv.to_f64() - dot * xv.to_f64();
                        *yv = T::from_f64(if self.acc { yv.to_f64() + p } else { p });
                    }
                }
            })
        })
    }
}

/// `⟨a, b⟩` in f64.
fn dot<T: Real>(a: &[T], b: &[T]) -> f64 {
    a.iter().zip(b).map(|(p, q)| p.to_f64() * q.to_f64()).sum()
}

impl Instr for Proj {
    fn dst(&self) -> Loc {
        self.y
    }
    fn srcs(&self) -> Vec<Loc> {
        vec![self.v, self.x]
    }
    crate::cpu_instr!();
    fn record(&self, gpu: &mut GpuRun<'_>) -> Result<()> {
        let t = |l: Loc| gpu.rows(l, self.k);
        let (x, v, y) = (t(self.x)?, t(self.v)?, t(self.y)?);
        sphere::proj_tangent_acc(gpu.ctx, gpu.rec, &x, &v, &y, self.acc)
    }
}

/// Per group: `y (+)= −(⟨x, g⟩ v + ⟨x, v⟩ g)`, the gradient with respect to `x`.
#[derive(Debug)]
pub struct ProjGradX {
    /// The vector field.
    pub v: Loc,
    /// Base points.
    pub x: Loc,
    /// The output gradient.
    pub g: Loc,
    /// Output.
    pub y: Loc,
    /// Group size.
    pub k: usize,
    /// Add into `y`.
    pub acc: bool,
}

impl ProjGradX {
    fn run<T: Real>(&self, mem: &mut Mem<T>) {
        let k = self.k;
        mem.with_dst(self.y, |y, r| {
            let (vs, xs, gs) = (r.get(self.v), r.get(self.x), r.get(self.g));
            cpu::for_chunks(y, k, |o, ys| {
                for (i, yr) in ys.chunks_mut(k).enumerate() {
                    let at = o + i * k;
                    let (v, x, g) = (&vs[at..at + k], &xs[at..at + k], &gs[at..at + k]);
                    let (xg, xv) = (dot(x, g), dot(x, v));
                    for ((yv, vv), gv) in yr.iter_mut().zip(v).zip(g) {
                        let p = -(xg * vv.to_f64() + xv * gv.to_f64());
                        *yv = T::from_f64(if self.acc { yv.to_f64() + p } else { p });
                    }
                }
            })
        })
    }
}

impl Instr for ProjGradX {
    fn dst(&self) -> Loc {
        self.y
    }
    fn srcs(&self) -> Vec<Loc> {
        vec![self.v, self.x, self.g]
    }
    crate::cpu_instr!();
    fn record(&self, gpu: &mut GpuRun<'_>) -> Result<()> {
        let t = |l: Loc| gpu.rows(l, self.k);
        let (x, v, g, y) = (t(self.x)?, t(self.v)?, t(self.g)?, t(self.y)?);
        sphere::proj_tangent_grad_x(gpu.ctx, gpu.rec, &x, &v, &g, &y, self.acc)
    }
}

/// The tangent projection `v − ⟨x, v⟩ x` per group of `k` columns.
#[derive(Debug)]
pub struct ProjTangent {
    v: NodeId,
    x: NodeId,
    k: usize,
}

impl ProjTangent {
    /// Add the projection of `v` at `x` to `g`.
    pub fn build(g: &mut Graph, v: NodeId, x: NodeId, k: usize) -> Result<NodeId> {
        let s = same_shape(g, "proj_tangent", v, x)?;
        match s[1] {
            Dim::Fixed(c) if k > 0 && c.is_multiple_of(k) => {}
            _ => {
                return Err(Error::Shape(format!(
                    "proj_tangent: {} columns are not whole groups of k = {k}",
                    s[1]
                )))
            }
        }
        g.add_op(ProjTangent { v, x, k }, s)
    }
}

impl Op for ProjTangent {
    fn name(&self) -> &'static str {
        "proj_tangent"
    }
    fn operands(&self) -> Vec<NodeId> {
        vec![self.v, self.x]
    }
    fn forward(&self, cx: &mut Forward<'_>) {
        let (v, x, y, k) = (cx.value(self.v), cx.value(self.x), cx.y(), self.k);
        cx.emit(Proj {
            v,
            x,
            y,
            k,
            acc: false,
        });
    }
    fn backward(&self, cx: &mut Backward<'_>) {
        let (v, x, g, k) = (cx.value(self.v), cx.value(self.x), cx.gy(), self.k);
        cx.grad(self.v, |y, acc| Proj { v: g, x, y, k, acc });
        cx.grad(self.x, |y, acc| ProjGradX { v, x, g, y, k, acc });
    }
}
