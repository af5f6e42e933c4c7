//! `Act`: an element-wise activation, with its `ActFwd` and `ActBwd` instructions.

use crate::autodiff::graph::{Graph, NodeId};
use crate::autodiff::kernels::{self as k, AutodiffParams};
use crate::autodiff::op::{Backward, Forward, GpuRun, Instr, Loc, Mem, Op};
use crate::autodiff::ops::elementwise::launch;
use crate::autodiff::ops::finite;
use crate::error::Result;
use crate::gpu::u32_of;
use crate::kernels::{cpu, Activation, Real};

/// `y = f(x)`.
#[derive(Debug)]
pub struct ActFwd {
    /// The activation.
    pub f: Activation,
    /// Input.
    pub x: Loc,
    /// Output.
    pub y: Loc,
}

impl ActFwd {
    fn run<T: Real>(&self, mem: &mut Mem<T>) {
        mem.with_dst(self.y, |y, r| {
            let x = r.get(self.x);
            match self.f {
                Activation::LeakyRelu(s) => {
                    let s = s as f64;
                    cpu::map(y, x, false, |v| if v >= 0.0 { v } else { s * v })
                }
                f => cpu::map(y, x, false, |v| f.apply(v)),
            }
        });
    }
}

impl Instr for ActFwd {
    fn dst(&self) -> Loc {
        self.y
    }
    fn srcs(&self) -> Vec<Loc> {
        vec![self.x]
    }
    crate::cpu_instr!();
    fn record(&self, gpu: &mut GpuRun<'_>) -> Result<()> {
        let (mode, slope) = self.f.code();
        let p = AutodiffParams {
            n: u32_of(self.y.len, "elements")?,
            mode,
            slope,
            ..Default::default()
        };
        launch(gpu, &k::ACT_FWD, &[self.x, self.y], self.y.len, p)
    }
    fn f16_storage(&self) -> bool {
        true
    }
}

/// `gx (+)= gy · f'(x)`.
#[derive(Debug)]
pub struct ActBwd {
    /// The activation.
    pub f: Activation,
    /// The forward input, or its output where the derivative is a function of the output
    /// ([`Activation::derivative_from_output`]).
    pub x: Loc,
    /// The output gradient.
    pub gy: Loc,
    /// The input gradient.
    pub gx: Loc,
    /// Add into `gx`.
    pub acc: bool,
}

impl ActBwd {
    fn run<T: Real>(&self, mem: &mut Mem<T>) {
        mem.with_dst(self.gx, |gx, r| {
            let (gy, x) = (r.get(self.gy), r.get(self.x));
            match self.f {
                Activation::LeakyRelu(s) => {
                    let s = s as f64;
                    cpu::map2(gx, gy, x, self.acc, |g, v| if v >= 0.0 { g } else { g * s })
                }
                f => cpu::map2(gx, gy, x, self.acc, |g, v| g * f.deriv(v)),
            }
        });
    }
}

impl Instr for ActBwd {
    fn dst(&self) -> Loc {
        self.gx
    }
    fn srcs(&self) -> Vec<Loc> {
        vec![self.x, self.gy]
    }
    crate::cpu_instr!();
    fn record(&self, gpu: &mut GpuRun<'_>) -> Result<()> {
        let (mode, slope) = self.f.code();
        let p = AutodiffParams {
            n: u32_of(self.gx.len, "elements")?,
            mode,
            slope,
            acc: self.acc as u32,
            ..Default::default()
        };
        let locs = [self.x, self.gy, self.gx];
        launch(gpu, &k::ACT_BWD, &locs, self.gx.len, p)
    }
}

/// An element-wise activation.
#[derive(Debug)]
pub struct Act {
    a: NodeId,
    f: Activation,
}

impl Act {
    /// Add `f(a)` to `g`.
    pub fn build(g: &mut Graph, a: NodeId, f: Activation) -> Result<NodeId> {
        if let Activation::LeakyRelu(s) = f {
            finite("leaky_relu slope", s)?;
        }
        let sh = g.shape(a)?;
        g.add_op(Act { a, f }, sh)
    }
}

impl Op for Act {
    fn name(&self) -> &'static str {
        "act"
    }
    fn operands(&self) -> Vec<NodeId> {
        vec![self.a]
    }
    fn forward(&self, cx: &mut Forward<'_>) {
        let (x, y) = (cx.value(self.a), cx.y());
        cx.emit(ActFwd { f: self.f, x, y });
    }
    fn backward(&self, cx: &mut Backward<'_>) {
        // From the output where it determines the derivative: the input then need not be
        // kept (a linear layer under the activation becomes one gemm, see `plan`).
        let x = if self.f.derivative_from_output() {
            cx.y()
        } else {
            cx.value(self.a)
        };
        let (gy, f) = (cx.gy(), self.f);
        cx.grad(self.a, |gx, acc| ActBwd { f, x, gy, gx, acc });
    }
    fn as_activation(&self) -> Option<(NodeId, Activation)> {
        Some((self.a, self.f))
    }
}
