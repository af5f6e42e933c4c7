//! `SoftmaxXent`: the softmax cross-entropy of logits `z` against targets `t` (one-hot rows or
//! any non-negative weights) over groups of `k` consecutive columns (one categorical per
//! position), averaged over rows and groups:
//! `loss = mean_groups Σ_c t_c (lse(z) − z_c)`, `lse` the group's log-sum-exp.
//!
//! Gradients: `∂/∂z_c = (softmax(z)_c Σ_j t_j − t_c) / groups`, `∂/∂t_c = (lse − z_c) / groups`.
//! On the GPU each group is one invocation of `shaders/xent.wgsl`; the forward pass writes the
//! groups' losses into a scratch buffer that the tree sum of `kernels::reduce` adds up.

use crate::autodiff::graph::{Dim, Graph, NodeId};
use crate::autodiff::op::{Backward, Forward, GpuRun, Instr, Loc, Mem, Op};
use crate::autodiff::ops::same_shape;
use crate::error::{Error, Result};
use crate::gpu::{lib, u32_of, Arg, GpuTensor, KernelDef, ShaderDef, Work};
use crate::kernels::linalg::View;
use crate::kernels::reduce::{self, SumOf};
use crate::kernels::Real;

/// `shaders/xent.wgsl` with the grid prelude.
pub static SHADER: ShaderDef = ShaderDef::new(
    "xent",
    &[lib::GRID, include_str!("../../../shaders/xent.wgsl")],
)
.slots(&["z", "tg", "g", "out"]);

/// Each group's cross-entropy.
pub static XENT_ROWS: KernelDef =
    KernelDef::new(&SHADER, "xent_rows", &["z", "tg", "out"]).params::<XentParams>();
/// The gradient for the logits or the targets.
pub static XENT_GRAD: KernelDef =
    KernelDef::new(&SHADER, "xent_grad", &["z", "tg", "g", "out"]).params::<XentParams>();

/// Every kernel of the op.
pub fn kernels() -> Vec<&'static KernelDef> {
    vec![&XENT_ROWS, &XENT_GRAD]
}

crate::gpu_params! {
    /// Parameters of `shaders/xent.wgsl`.
    pub struct XentParams {
        /// Groups (rows × columns / k).
        pub groups: u32,
        /// Columns of a group.
        pub k: u32,
        /// `xent_grad`: 0 for the logits, 1 for the targets.
        pub mode: u32,
        /// 1: add into the output.
        pub acc: u32,
        /// Scale.
        pub s: f32,
        /// Padding.
        pub _pad0: u32,
        /// Padding.
        pub _pad1: u32,
        /// Padding.
        pub _pad2: u32,
    }
}

/// The log-sum-exp of a group (f64).
fn lse(z: &[f64]) -> f64 {
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

/// `y[0] = s · Σ_groups Σ_c t_c (lse − z_c)`.
#[derive(Debug)]
pub struct XentLoss {
    /// Logits.
    pub z: Loc,
    /// Targets.
    pub t: Loc,
    /// Output (one element).
    pub y: Loc,
    /// Group size.
    pub k: usize,
    /// Scale.
    pub s: f32,
}

impl XentLoss {
    fn run<T: Real>(&self, mem: &mut Mem<T>) {
        let k = self.k;
        mem.with_dst(self.y, |y, r| {
            let (z, t) = (r.f64(self.z), r.f64(self.t));
            let total: f64 = z
                .chunks(k)
                .zip(t.chunks(k))
                .map(|(zg, tg)| {
                    let l = lse(zg);
                    zg.iter().zip(tg).map(|(zc, tc)| tc * (l - zc)).sum::<f64>()
                })
                .sum();
            y[0] = T::from_f64(self.s as f64 * total);
        })
    }
}

fn params(groups: usize, k: usize, mode: u32, acc: bool, s: f32) -> Result<XentParams> {
    Ok(XentParams {
        groups: u32_of(groups, "cross-entropy groups")?,
        k: u32_of(k, "cross-entropy group size")?,
        mode,
        acc: acc as u32,
        s,
        ..Default::default()
    })
}

impl Instr for XentLoss {
    fn dst(&self) -> Loc {
        self.y
    }
    fn srcs(&self) -> Vec<Loc> {
        vec![self.z, self.t]
    }
    crate::cpu_instr!();
    fn record(&self, gpu: &mut GpuRun<'_>) -> Result<()> {
        let groups = self.z.len / self.k;
        let scratch = GpuTensor::<f32>::zeros(gpu.ctx, &[groups])?;
        let p = params(groups, self.k, 0, false, 1.0)?;
        let args = [gpu.arg(self.z, 4), gpu.arg(self.t, 4), Arg::from(&scratch)];
        let work = Work::Threads(groups as u64);
        XENT_ROWS.launch(gpu.ctx, gpu.rec, work, &args, |_| p)?;
        let out = gpu.view(self.y);
        reduce::sum_reduce(
            gpu.ctx,
            gpu.rec,
            SumOf::Values,
            View::of(&scratch),
            None,
            self.s,
            out,
        )
    }
}

/// Which operand a [`XentGrad`] differentiates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XentWrt {
    /// The logits.
    Logits,
    /// The targets.
    Targets,
}

/// `y (+)= s · g[0] · ∂(group loss)/∂operand`.
#[derive(Debug)]
pub struct XentGrad {
    /// Logits.
    pub z: Loc,
    /// Targets.
    pub t: Loc,
    /// The loss gradient (one element).
    pub g: Loc,
    /// Output.
    pub y: Loc,
    /// Group size.
    pub k: usize,
    /// Scale.
    pub s: f32,
    /// The operand.
    pub wrt: XentWrt,
    /// Add into `y`.
    pub acc: bool,
}

impl XentGrad {
    fn run<T: Real>(&self, mem: &mut Mem<T>) {
        let k = self.k;
        mem.with_dst(self.y, |y, r| {
            let (z, t) = (r.f64(self.z), r.f64(self.t));
            let sg = self.s as f64 * r.get(self.g)[0].to_f64();
            for ((yg, zg), tg) in y.chunks_mut(k).zip(z.chunks(k)).zip(t.chunks(k)) {
                let l = lse(zg);
                let mass: f64 = tg.iter().sum();
                for (c, yv) in yg.iter_mut().enumerate() {
                    let d = match self.wrt {
                        XentWrt::Logits => (zg[c] - l).exp() * mass - tg[c],
                        XentWrt::Targets => l - zg[c],
                    };
                    let v = sg * d;
                    *yv = T::from_f64(if self.acc { yv.to_f64() + v } else { v });
                }
            }
        })
    }
}

impl Instr for XentGrad {
    fn dst(&self) -> Loc {
        self.y
    }
    fn srcs(&self) -> Vec<Loc> {
        vec![self.z, self.t, self.g]
    }
    crate::cpu_instr!();
    fn record(&self, gpu: &mut GpuRun<'_>) -> Result<()> {
        let groups = self.z.len / self.k;
        let mode = match self.wrt {
            XentWrt::Logits => 0,
            XentWrt::Targets => 1,
        };
        let p = params(groups, self.k, mode, self.acc, self.s)?;
        let args: Vec<Arg> = [self.z, self.t, self.g, self.y]
            .iter()
            .map(|l| gpu.arg(*l, 4))
            .collect();
        let work = Work::Threads(groups as u64);
        XENT_GRAD.launch(gpu.ctx, gpu.rec, work, &args, |_| p)
    }
}

/// The softmax cross-entropy of `z` against `t` per group of `k` columns, averaged over rows
/// and groups, `[1, 1]`.
#[derive(Debug)]
pub struct SoftmaxXent {
    z: NodeId,
    t: NodeId,
    k: usize,
}

impl SoftmaxXent {
    /// Add the loss of logits `z` against targets `t` to `g`.
    pub fn build(g: &mut Graph, z: NodeId, t: NodeId, k: usize) -> Result<NodeId> {
        let s = same_shape(g, "softmax_xent", z, t)?;
        match s[1] {
            Dim::Fixed(c) if k > 0 && c.is_multiple_of(k) => {}
            _ => {
                return Err(Error::Shape(format!(
                    "softmax_xent: {} columns are not whole groups of k = {k}",
                    s[1]
                )))
            }
        }
        g.add_op(SoftmaxXent { z, t, k }, [Dim::Fixed(1), Dim::Fixed(1)])
    }

    /// `1 / groups`.
    fn scale(&self, shape: [usize; 2]) -> f32 {
        (self.k as f64 / (shape[0] * shape[1]) as f64) as f32
    }
}

impl Op for SoftmaxXent {
    fn name(&self) -> &'static str {
        "softmax_xent"
    }
    fn operands(&self) -> Vec<NodeId> {
        vec![self.z, self.t]
    }
    fn forward(&self, cx: &mut Forward<'_>) {
        let s = self.scale(cx.shape(self.z));
        let (z, t, y, k) = (cx.value(self.z), cx.value(self.t), cx.y(), self.k);
        cx.emit(XentLoss { z, t, y, k, s });
    }
    fn backward(&self, cx: &mut Backward<'_>) {
        let s = self.scale(cx.shape(self.z));
        let (z, t, g, k) = (cx.value(self.z), cx.value(self.t), cx.gy(), self.k);
        for (operand, wrt) in [(self.z, XentWrt::Logits), (self.t, XentWrt::Targets)] {
            cx.grad(operand, |y, acc| XentGrad {
                z,
                t,
                g,
                y,
                k,
                s,
                wrt,
                acc,
            });
        }
    }
}
