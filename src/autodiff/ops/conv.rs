//! `Conv1d`: a 1D convolution over sequences with same padding, `[B·L, cin] → [B·L, cout]`
//! with weights `[taps·cin, cout]` (tap-major) and an optional bias, and its `ConvInstr` (the
//! implicit-gemm kernel of [`crate::kernels::conv`] on the GPU, strided gemms on the CPU).

use crate::autodiff::graph::{fmt_shape, Dim, Graph, NodeId};
use crate::autodiff::op::{Backward, Forward, GpuRun, Instr, Loc, Mem, Op};
use crate::autodiff::ops::reduce::ColSum;
use crate::autodiff::ops::seq::check_sequences;
use crate::error::{Error, Result};
use crate::kernels::conv::{conv_cpu, conv_gemm, ConvMode, ConvSpec};
use crate::kernels::Real;

/// `c (+)= product` of a convolution layer (see [`ConvMode`]).
#[derive(Debug)]
pub struct ConvInstr {
    /// Geometry and product.
    pub spec: ConvSpec,
    /// First operand.
    pub a: Loc,
    /// Second operand.
    pub b: Loc,
    /// Bias (forward only).
    pub bias: Option<Loc>,
    /// Output.
    pub c: Loc,
}

impl ConvInstr {
    fn run<T: Real>(&self, mem: &mut Mem<T>) {
        mem.with_dst(self.c, |c, r| {
            let bias = self.bias.map(|l| r.get(l));
            conv_cpu(&self.spec, r.get(self.a), r.get(self.b), bias, c)
        })
    }
}

impl Instr for ConvInstr {
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
        let (a, b, c) = (gpu.view(self.a), gpu.view(self.b), gpu.view(self.c));
        let bias = self.bias.map(|l| gpu.view(l));
        conv_gemm(gpu.ctx, gpu.rec, &self.spec, a, b, bias, c, gpu.precision)
    }
    fn f16_storage(&self) -> bool {
        true
    }
}

/// A 1D convolution over sequences of `seq` rows (see the [module docs](self)).
#[derive(Debug)]
pub struct Conv1d {
    x: NodeId,
    w: NodeId,
    b: Option<NodeId>,
    seq: usize,
    taps: usize,
    dil: usize,
}

impl Conv1d {
    /// Add the convolution of `x: [rows, cin]` (rows: whole sequences of `seq`) with
    /// `w: [taps·cin, cout]`, dilation `dil` and optional bias `b: [1, cout]` to `g`.
    pub fn build(
        g: &mut Graph,
        x: NodeId,
        w: NodeId,
        b: Option<NodeId>,
        seq: usize,
        dil: usize,
    ) -> Result<NodeId> {
        check_sequences(g, "conv1d", x, seq)?;
        let (sx, sw) = (g.shape(x)?, g.shape(w)?);
        let (Dim::Fixed(cin), Dim::Fixed(kc), Dim::Fixed(cout)) = (sx[1], sw[0], sw[1]) else {
            return Err(Error::Shape(format!(
                "conv1d: x {} and w {} need fixed channels",
                fmt_shape(&sx),
                fmt_shape(&sw)
            )));
        };
        if dil == 0 || kc == 0 || !kc.is_multiple_of(cin) {
            return Err(Error::Shape(format!(
                "conv1d: w {} is not [taps·{cin}, cout], or dilation {dil} is 0",
                fmt_shape(&sw)
            )));
        }
        if let Some(b) = b {
            let sb = g.shape(b)?;
            if sb != [Dim::Fixed(1), Dim::Fixed(cout)] {
                return Err(Error::Shape(format!(
                    "conv1d: bias {} must be [1, {cout}]",
                    fmt_shape(&sb)
                )));
            }
        }
        let taps = kc / cin;
        let op = Conv1d {
            x,
            w,
            b,
            seq,
            taps,
            dil,
        };
        g.add_op(op, [sx[0], Dim::Fixed(cout)])
    }

    fn spec(&self, mode: ConvMode, rows: usize, cin: usize, cout: usize, acc: bool) -> ConvSpec {
        ConvSpec {
            mode,
            rows,
            seq: self.seq,
            cin,
            cout,
            taps: self.taps,
            dil: self.dil,
            acc,
        }
    }
}

impl Op for Conv1d {
    fn name(&self) -> &'static str {
        "conv1d"
    }
    fn operands(&self) -> Vec<NodeId> {
        let mut v = vec![self.x, self.w];
        v.extend(self.b);
        v
    }
    fn forward(&self, cx: &mut Forward<'_>) {
        let [rows, cout] = cx.y_shape();
        let cin = cx.shape(self.x)[1];
        let spec = self.spec(ConvMode::Forward, rows, cin, cout, false);
        let bias = self.b.map(|b| cx.value(b));
        let (a, b, c) = (cx.value(self.x), cx.value(self.w), cx.y());
        cx.emit(ConvInstr {
            spec,
            a,
            b,
            bias,
            c,
        });
    }
    fn backward(&self, cx: &mut Backward<'_>) {
        let [rows, cout] = cx.y_shape();
        let cin = cx.shape(self.x)[1];
        let (x, w, gy) = (cx.value(self.x), cx.value(self.w), cx.gy());
        let product = |mode, a, b, c, acc| ConvInstr {
            spec: self.spec(mode, rows, cin, cout, acc),
            a,
            b,
            bias: None,
            c,
        };
        cx.grad(self.x, |d, acc| product(ConvMode::InputGrad, gy, w, d, acc));
        cx.grad(self.w, |d, acc| {
            product(ConvMode::WeightGrad, x, gy, d, acc)
        });
        if let Some(b) = self.b {
            cx.grad(b, |d, acc| ColSum {
                x: gy,
                y: d,
                rows,
                cols: cout,
                acc,
            });
        }
    }
}
