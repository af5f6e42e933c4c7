//! Matrix products: `MatMul` (`op(a)·op(b)`), `Linear` (`x·w + b`) and the `Gemm` instruction
//! both lower to (with the fused bias, activation and accumulation of the gemm kernels).

use crate::autodiff::graph::{fmt_shape, Dim, Graph, NodeId};
use crate::autodiff::op::{Backward, Forward, GpuRun, Instr, LinearParts, Loc, Mem, Op};
use crate::autodiff::ops::reduce::ColSum;
use crate::error::{Error, Result};
use crate::kernels::linalg::{gemm, Gemm as GemmKernel};
use crate::kernels::{cpu, Activation, Real};

/// Sizes and transposes of one matrix product `c (+)= op(a)·op(b) (+ bias)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmSpec {
    /// Rows of `c`.
    pub m: usize,
    /// Columns of `c`.
    pub n: usize,
    /// Inner dimension.
    pub k: usize,
    /// `a` is stored `[k, m]`.
    pub ta: bool,
    /// `b` is stored `[n, k]`.
    pub tb: bool,
    /// Add into `c` instead of overwriting it.
    pub acc: bool,
}

/// `c = act(op(a)·op(b) + bias)`, or `c += act(…)` with [`GemmSpec::acc`].
#[derive(Debug)]
pub struct Gemm {
    /// Sizes, transposes, accumulation.
    pub g: GemmSpec,
    /// Epilogue activation.
    pub act: Activation,
    /// Left operand.
    pub a: Loc,
    /// Right operand.
    pub b: Loc,
    /// Bias `[n]`.
    pub bias: Option<Loc>,
    /// Output `[m, n]`.
    pub c: Loc,
}

impl Gemm {
    /// A plain product `c (+)= op(a)·op(b)`.
    pub fn product(g: GemmSpec, a: Loc, b: Loc, c: Loc) -> Self {
        Self {
            g,
            act: Activation::Identity,
            a,
            b,
            bias: None,
            c,
        }
    }

    /// Whether the product goes to scratch memory first: an activation applied to the
    /// product and added into `c`.
    fn staged(&self) -> bool {
        self.g.acc && self.act != Activation::Identity
    }

    fn run<T: Real>(&self, mem: &mut Mem<T>) {
        let g = self.g;
        let sa = if g.ta {
            (1, g.m as isize)
        } else {
            (g.k as isize, 1)
        };
        let sb = if g.tb {
            (1, g.k as isize)
        } else {
            (g.n as isize, 1)
        };
        let epilogue = self.bias.is_some() || self.act != Activation::Identity;
        let staged = self.staged();
        let scratch = if staged { g.m * g.n } else { 0 };
        mem.with_dst_scratch(self.c, scratch, |y, z, r| {
            let (a, b) = (r.get(self.a), r.get(self.b));
            let bias = self.bias.map(|l| r.get(l));
            if staged {
                T::gemm(g.m, g.k, g.n, a, sa, b, sb, T::default(), z);
                cpu::epilogue(y, Some(z), bias, g.n, self.act);
            } else {
                let beta = T::from_f64(if g.acc { 1.0 } else { 0.0 });
                T::gemm(g.m, g.k, g.n, a, sa, b, sb, beta, y);
                if epilogue {
                    cpu::epilogue(y, None, bias, g.n, self.act);
                }
            }
        })
    }
}

impl Instr for Gemm {
    fn dst(&self) -> Loc {
        self.c
    }
    fn srcs(&self) -> Vec<Loc> {
        let mut v = vec![self.a, self.b];
        v.extend(self.bias);
        v
    }
    crate::cpu_instr!();
    fn record(&self, gpu: &mut GpuRun<'_>) -> Result<()> {
        let g = self.g;
        let spec = GemmKernel::new(g.m, g.n, g.k)
            .trans_a(g.ta)
            .trans_b(g.tb)
            .accumulate(g.acc)
            .activation(self.act)
            .precision(gpu.precision);
        let bias = self.bias.map(|l| gpu.view(l));
        let (a, b, c) = (gpu.view(self.a), gpu.view(self.b), gpu.view(self.c));
        gemm(gpu.ctx, gpu.rec, &spec, a, b, bias, c)
    }
    fn f16_storage(&self) -> bool {
        true
    }
    fn scratch(&self) -> usize {
        if self.staged() {
            self.g.m * self.g.n
        } else {
            0
        }
    }
}

/// `op(a)·op(b)` with optional transposes.
#[derive(Debug)]
pub struct MatMul {
    a: NodeId,
    b: NodeId,
    ta: bool,
    tb: bool,
}

impl MatMul {
    /// Add `op(a)·op(b)` to `g`.
    pub fn build(g: &mut Graph, a: NodeId, b: NodeId, ta: bool, tb: bool) -> Result<NodeId> {
        let sa = g.shape(a)?;
        let sb = g.shape(b)?;
        let (m, ka) = if ta { (sa[1], sa[0]) } else { (sa[0], sa[1]) };
        let (kb, n) = if tb { (sb[1], sb[0]) } else { (sb[0], sb[1]) };
        if ka != kb {
            return Err(Error::Shape(format!(
                "matmul: op(a) is [{m}, {ka}] and op(b) is [{kb}, {n}]; inner dimensions differ"
            )));
        }
        g.add_op(MatMul { a, b, ta, tb }, [m, n])
    }
}

impl Op for MatMul {
    fn name(&self) -> &'static str {
        "matmul"
    }
    fn operands(&self) -> Vec<NodeId> {
        vec![self.a, self.b]
    }
    fn forward(&self, cx: &mut Forward<'_>) {
        let [m, n] = cx.y_shape();
        let sa = cx.shape(self.a);
        let k = if self.ta { sa[0] } else { sa[1] };
        let g = GemmSpec {
            m,
            n,
            k,
            ta: self.ta,
            tb: self.tb,
            acc: false,
        };
        let (a, b, y) = (cx.value(self.a), cx.value(self.b), cx.y());
        cx.emit(Gemm::product(g, a, b, y));
    }
    fn backward(&self, cx: &mut Backward<'_>) {
        let (ta, tb) = (self.ta, self.tb);
        let [m, n] = cx.y_shape();
        let sa = cx.shape(self.a);
        let k = if ta { sa[0] } else { sa[1] };
        let (va, vb, gy) = (cx.value(self.a), cx.value(self.b), cx.gy());
        cx.grad(self.a, |d, acc| {
            if !ta {
                // da[m,k] = dc · op(b)ᵀ
                let g = GemmSpec {
                    m,
                    n: k,
                    k: n,
                    ta: false,
                    tb: !tb,
                    acc,
                };
                Gemm::product(g, gy, vb, d)
            } else {
                // da[k,m] = op(b) · dcᵀ
                let g = GemmSpec {
                    m: k,
                    n: m,
                    k: n,
                    ta: tb,
                    tb: true,
                    acc,
                };
                Gemm::product(g, vb, gy, d)
            }
        });
        cx.grad(self.b, |d, acc| {
            if !tb {
                // db[k,n] = op(a)ᵀ · dc
                let g = GemmSpec {
                    m: k,
                    n,
                    k: m,
                    ta: !ta,
                    tb: false,
                    acc,
                };
                Gemm::product(g, va, gy, d)
            } else {
                // db[n,k] = dcᵀ · op(a)
                let g = GemmSpec {
                    m: n,
                    n: k,
                    k: m,
                    ta: true,
                    tb: ta,
                    acc,
                };
                Gemm::product(g, gy, va, d)
            }
        });
    }
}

/// `x·w + b` with `w: [in, out]`, `b: [1, out]` (optional).
#[derive(Debug)]
pub struct Linear {
    x: NodeId,
    w: NodeId,
    b: Option<NodeId>,
}

impl Linear {
    /// Add `x·w + b` to `g`.
    pub fn build(g: &mut Graph, x: NodeId, w: NodeId, b: Option<NodeId>) -> Result<NodeId> {
        let sx = g.shape(x)?;
        let sw = g.shape(w)?;
        if sx[1] != sw[0] || matches!(sw[1], Dim::Batch) {
            return Err(Error::Shape(format!(
                "linear: x {} times w {} (w must be [in, out])",
                fmt_shape(&sx),
                fmt_shape(&sw)
            )));
        }
        if let Some(b) = b {
            let sb = g.shape(b)?;
            if sb != [Dim::Fixed(1), sw[1]] {
                return Err(Error::Shape(format!(
                    "linear: bias {} must be [1, {}]",
                    fmt_shape(&sb),
                    sw[1]
                )));
            }
        }
        g.add_op(Linear { x, w, b }, [sx[0], sw[1]])
    }
}

impl Op for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }
    fn operands(&self) -> Vec<NodeId> {
        let mut v = vec![self.x, self.w];
        v.extend(self.b);
        v
    }
    fn forward(&self, cx: &mut Forward<'_>) {
        let [rows, cols] = cx.y_shape();
        let g = GemmSpec {
            m: rows,
            n: cols,
            k: cx.shape(self.x)[1],
            ta: false,
            tb: false,
            acc: false,
        };
        let gemm = Gemm {
            bias: self.b.map(|b| cx.value(b)),
            ..Gemm::product(g, cx.value(self.x), cx.value(self.w), cx.y())
        };
        cx.emit(gemm);
    }
    fn backward(&self, cx: &mut Backward<'_>) {
        let [rows, cols] = cx.y_shape();
        let inp = cx.shape(self.x)[1];
        let (vx, vw, gy) = (cx.value(self.x), cx.value(self.w), cx.gy());
        cx.grad(self.x, |d, acc| {
            let g = GemmSpec {
                m: rows,
                n: inp,
                k: cols,
                ta: false,
                tb: true,
                acc,
            };
            Gemm::product(g, gy, vw, d)
        });
        cx.grad(self.w, |d, acc| {
            let g = GemmSpec {
                m: inp,
                n: cols,
                k: rows,
                ta: true,
                tb: false,
                acc,
            };
            Gemm::product(g, vx, gy, d)
        });
        if let Some(b) = self.b {
            cx.grad(b, |d, acc| ColSum {
                x: gy,
                y: d,
                rows,
                cols,
                acc,
            });
        }
    }
    fn as_linear(&self) -> Option<LinearParts> {
        Some(LinearParts {
            x: self.x,
            w: self.w,
            b: self.b,
        })
    }
}
