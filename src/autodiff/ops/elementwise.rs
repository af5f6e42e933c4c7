//! Element-wise ops: `Elementwise` (`a + b`, `a ⊙ b`), `Affine` (`s·a + c`: scale and
//! add-scalar) and `BiasAdd`
//! (a row vector added to every row), with the `ScaleAdd`, `Binary` and `BiasAddRows`
//! instructions (kernels of `shaders/autodiff.wgsl`).

use crate::autodiff::graph::{fmt_shape, Dim, Graph, NodeId};
use crate::autodiff::kernels::{self as k, AutodiffParams};
use crate::autodiff::op::{Backward, Forward, GpuRun, Instr, Loc, Mem, Op};
use crate::autodiff::ops::reduce::ColSum;
use crate::autodiff::ops::{finite, same_shape};
use crate::error::{Error, Result};
use crate::gpu::{u32_of, KernelDef, Work};
use crate::kernels::{cpu, Activation, Real};

/// Record an element-wise kernel of `autodiff.wgsl` over `n` items, `locs` bound in order.
pub(crate) fn launch(
    gpu: &mut GpuRun<'_>,
    kernel: &'static KernelDef,
    locs: &[Loc],
    n: usize,
    p: AutodiffParams,
) -> Result<()> {
    let elem = gpu.precision.bytes();
    let args: Vec<_> = locs.iter().map(|l| gpu.arg(*l, elem)).collect();
    let (ctx, precision) = (gpu.ctx, gpu.precision);
    kernel.launch_as(
        ctx,
        gpu.rec,
        precision,
        Work::Threads(n as u64),
        &args,
        |_| p,
    )
}

/// `y (+)= s·x + c`.
#[derive(Debug)]
pub struct ScaleAdd {
    /// Input.
    pub x: Loc,
    /// Output.
    pub y: Loc,
    /// Scale.
    pub s: f32,
    /// Additive constant.
    pub c: f32,
    /// Add into `y`.
    pub acc: bool,
}

impl ScaleAdd {
    /// `y (+)= x`.
    pub fn copy(x: Loc, y: Loc, acc: bool) -> Self {
        Self {
            x,
            y,
            s: 1.0,
            c: 0.0,
            acc,
        }
    }
    fn run<T: Real>(&self, mem: &mut Mem<T>) {
        let (s, c) = (self.s as f64, self.c as f64);
        mem.with_dst(self.y, |y, r| {
            cpu::map(y, r.get(self.x), self.acc, |v| s * v + c)
        });
    }
}

impl Instr for ScaleAdd {
    fn dst(&self) -> Loc {
        self.y
    }
    fn srcs(&self) -> Vec<Loc> {
        vec![self.x]
    }
    crate::cpu_instr!();
    fn record(&self, gpu: &mut GpuRun<'_>) -> Result<()> {
        let p = AutodiffParams {
            n: u32_of(self.y.len, "elements")?,
            s: self.s,
            c: self.c,
            acc: self.acc as u32,
            ..Default::default()
        };
        launch(gpu, &k::SCALE_ADD, &[self.x, self.y], self.y.len, p)
    }
    fn f16_storage(&self) -> bool {
        true
    }
}

/// Element-wise binary operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `a + b`.
    Add,
    /// `a ⊙ b`.
    Mul,
}

/// `y (+)= a op b`.
#[derive(Debug)]
pub struct Binary {
    /// The operation.
    pub op: BinOp,
    /// Left operand.
    pub a: Loc,
    /// Right operand.
    pub b: Loc,
    /// Output.
    pub y: Loc,
    /// Add into `y`.
    pub acc: bool,
}

impl Binary {
    fn run<T: Real>(&self, mem: &mut Mem<T>) {
        mem.with_dst(self.y, |y, r| {
            let (a, b) = (r.get(self.a), r.get(self.b));
            match self.op {
                BinOp::Add => cpu::map2(y, a, b, self.acc, |p, q| p + q),
                BinOp::Mul => cpu::map2(y, a, b, self.acc, |p, q| p * q),
            }
        });
    }
}

impl Instr for Binary {
    fn dst(&self) -> Loc {
        self.y
    }
    fn srcs(&self) -> Vec<Loc> {
        vec![self.a, self.b]
    }
    crate::cpu_instr!();
    fn record(&self, gpu: &mut GpuRun<'_>) -> Result<()> {
        let p = AutodiffParams {
            n: u32_of(self.y.len, "elements")?,
            mode: (self.op == BinOp::Mul) as u32,
            acc: self.acc as u32,
            ..Default::default()
        };
        launch(gpu, &k::BINARY, &[self.a, self.b, self.y], self.y.len, p)
    }
    fn f16_storage(&self) -> bool {
        true
    }
}

/// `y[r, c] = x[r, c] + b[c]`.
#[derive(Debug)]
pub struct BiasAddRows {
    /// Input `[rows, cols]`.
    pub x: Loc,
    /// Row vector `[cols]`.
    pub b: Loc,
    /// Output.
    pub y: Loc,
    /// Columns.
    pub cols: usize,
}

impl BiasAddRows {
    fn run<T: Real>(&self, mem: &mut Mem<T>) {
        mem.with_dst(self.y, |y, r| {
            y.copy_from_slice(r.get(self.x));
            let b = Some(r.get(self.b));
            cpu::epilogue(y, None, b, self.cols, Activation::Identity);
        });
    }
}

impl Instr for BiasAddRows {
    fn dst(&self) -> Loc {
        self.y
    }
    fn srcs(&self) -> Vec<Loc> {
        vec![self.x, self.b]
    }
    crate::cpu_instr!();
    fn record(&self, gpu: &mut GpuRun<'_>) -> Result<()> {
        let p = AutodiffParams {
            n: u32_of(self.y.len, "elements")?,
            cols: u32_of(self.cols, "columns")?,
            ..Default::default()
        };
        launch(gpu, &k::BIAS_ADD, &[self.x, self.b, self.y], self.y.len, p)
    }
    fn f16_storage(&self) -> bool {
        true
    }
}

/// `a + b` or `a ⊙ b` (same shape).
#[derive(Debug)]
pub struct Elementwise {
    op: BinOp,
    a: NodeId,
    b: NodeId,
}

impl Elementwise {
    /// Add `a op b` to `g`.
    pub fn build(g: &mut Graph, op: BinOp, a: NodeId, b: NodeId) -> Result<NodeId> {
        let what = match op {
            BinOp::Add => "add",
            BinOp::Mul => "mul",
        };
        let s = same_shape(g, what, a, b)?;
        g.add_op(Elementwise { op, a, b }, s)
    }
}

impl Op for Elementwise {
    fn name(&self) -> &'static str {
        match self.op {
            BinOp::Add => "add",
            BinOp::Mul => "mul",
        }
    }
    fn operands(&self) -> Vec<NodeId> {
        vec![self.a, self.b]
    }
    fn forward(&self, cx: &mut Forward<'_>) {
        let (a, b, y) = (cx.value(self.a), cx.value(self.b), cx.y());
        cx.emit(Binary {
            op: self.op,
            a,
            b,
            y,
            acc: false,
        });
    }
    fn backward(&self, cx: &mut Backward<'_>) {
        let (va, vb, gy) = (cx.value(self.a), cx.value(self.b), cx.gy());
        for (o, other) in [(self.a, vb), (self.b, va)] {
            match self.op {
                BinOp::Add => cx.grad(o, |d, acc| ScaleAdd::copy(gy, d, acc)),
                BinOp::Mul => cx.grad(o, |d, acc| Binary {
                    op: BinOp::Mul,
                    a: gy,
                    b: other,
                    y: d,
                    acc,
                }),
            }
        }
    }
    fn as_add(&self) -> Option<(NodeId, NodeId)> {
        (self.op == BinOp::Add).then_some((self.a, self.b))
    }
}

/// `s·a + c` element-wise (scale and add-scalar).
#[derive(Debug)]
pub struct Affine {
    a: NodeId,
    s: f32,
    c: f32,
}

impl Affine {
    /// Add `s·a + c` to `g`.
    pub fn build(g: &mut Graph, a: NodeId, s: f32, c: f32) -> Result<NodeId> {
        finite("scale", s)?;
        finite("add_scalar", c)?;
        let sh = g.shape(a)?;
        g.add_op(Affine { a, s, c }, sh)
    }
}

impl Op for Affine {
    fn name(&self) -> &'static str {
        "affine"
    }
    fn operands(&self) -> Vec<NodeId> {
        vec![self.a]
    }
    fn forward(&self, cx: &mut Forward<'_>) {
        let (x, y) = (cx.value(self.a), cx.y());
        cx.emit(ScaleAdd {
            x,
            y,
            s: self.s,
            c: self.c,
            acc: false,
        });
    }
    fn backward(&self, cx: &mut Backward<'_>) {
        let (gy, s) = (cx.gy(), self.s);
        cx.grad(self.a, |d, acc| ScaleAdd {
            x: gy,
            y: d,
            s,
            c: 0.0,
            acc,
        });
    }
}

/// `x + b` with `b: [1, cols]` broadcast over rows.
#[derive(Debug)]
pub struct BiasAdd {
    x: NodeId,
    b: NodeId,
}

impl BiasAdd {
    /// Add `x + b` to `g`.
    pub fn build(g: &mut Graph, x: NodeId, b: NodeId) -> Result<NodeId> {
        let sx = g.shape(x)?;
        let sb = g.shape(b)?;
        if sb != [Dim::Fixed(1), sx[1]] {
            return Err(Error::Shape(format!(
                "bias_add: bias {} does not match x {} (need [1, {}])",
                fmt_shape(&sb),
                fmt_shape(&sx),
                sx[1]
            )));
        }
        g.add_op(BiasAdd { x, b }, sx)
    }
}

impl Op for BiasAdd {
    fn name(&self) -> &'static str {
        "bias_add"
    }
    fn operands(&self) -> Vec<NodeId> {
        vec![self.x, self.b]
    }
    fn forward(&self, cx: &mut Forward<'_>) {
        let cols = cx.y_shape()[1];
        let (x, b, y) = (cx.value(self.x), cx.value(self.b), cx.y());
        cx.emit(BiasAddRows { x, b, y, cols });
    }
    fn backward(&self, cx: &mut Backward<'_>) {
        let [rows, cols] = cx.y_shape();
        let gy = cx.gy();
        cx.grad(self.x, |d, acc| ScaleAdd::copy(gy, d, acc));
        cx.grad(self.b, |d, acc| ColSum {
            x: gy,
            y: d,
            rows,
            cols,
            acc,
        });
    }
}
