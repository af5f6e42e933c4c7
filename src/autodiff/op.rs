//! The op layer: what every autodiff op provides, in one place per op.
//!
//! An [`Op`] is a node's computation. It lowers itself into [`Instr`]uctions: the forward pass
//! ([`Op::forward`], writing the node's value) and the backward pass ([`Op::backward`],
//! accumulating each operand's gradient from the node's). An instruction runs on both
//! backends: on the CPU ([`Instr::run_f32`], [`Instr::run_f64`], usually one generic body via
//! [`cpu_instr!`](crate::cpu_instr)) and on the GPU ([`Instr::record`], through the kernel
//! layer). Ops live in [`super::ops`], one module each with the instructions only it uses;
//! adding an op touches its module (and its WGSL, when it needs a kernel of its own).

use std::fmt::Debug;
use std::sync::Arc;

use crate::autodiff::graph::NodeId;
use crate::error::Result;
use crate::gpu::{Arg, GpuContext, GpuTensor, Recorder};
use crate::kernels::linalg::View;
use crate::kernels::{Precision, Real};

/// A range of a buffer: `len` elements from element `off` of buffer `buf`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loc {
    /// Buffer index (see [`super::plan::PARAMS`], [`super::plan::GRADS`]; others are
    /// per-node buffers).
    pub buf: usize,
    /// First element.
    pub off: usize,
    /// Number of elements.
    pub len: usize,
}

/// One instruction of a lowered program: writes (or, where it says so, adds into) `dst`
/// from `srcs`, which never share `dst`'s buffer.
pub trait Instr: Debug + Send + Sync {
    /// The location written.
    fn dst(&self) -> Loc;
    /// The locations read (the destination of an accumulating instruction not included).
    fn srcs(&self) -> Vec<Loc>;
    /// Run on the CPU in f32.
    fn run_f32(&self, mem: &mut Mem<f32>);
    /// Run on the CPU in f64 (gradient checks).
    fn run_f64(&self, mem: &mut Mem<f64>);
    /// Record on the GPU.
    fn record(&self, gpu: &mut GpuRun<'_>) -> Result<()>;
    /// Whether [`Instr::record`] runs in f16 storage ([`GpuRun::precision`]); instructions that
    /// do not are given f32 buffers by inference plans.
    fn f16_storage(&self) -> bool {
        false
    }
    /// Elements of scratch memory [`Instr::run_f32`] and [`Instr::run_f64`] use
    /// ([`Mem::with_dst_scratch`]); the CPU backend plans it once.
    fn scratch(&self) -> usize {
        0
    }
}

/// Implement [`Instr::run_f32`] and [`Instr::run_f64`] with a generic inherent method
/// `fn run<T: Real>(&self, mem: &mut Mem<T>)`.
#[macro_export]
macro_rules! cpu_instr {
    () => {
        fn run_f32(&self, mem: &mut $crate::autodiff::Mem<f32>) {
            self.run(mem)
        }
        fn run_f64(&self, mem: &mut $crate::autodiff::Mem<f64>) {
            self.run(mem)
        }
    };
}

/// The CPU backend's memory: one vector per plan buffer, and the scratch space of the
/// instructions that need one.
#[derive(Debug)]
pub struct Mem<T> {
    pub(crate) bufs: Vec<Vec<T>>,
    scratch: Vec<T>,
}

/// Read access to every buffer but the one an instruction writes.
pub struct Reader<'a, T> {
    bufs: &'a [Vec<T>],
}

impl<T: Real> Reader<'_, T> {
    /// The elements of `l`.
    pub fn get(&self, l: Loc) -> &[T] {
        &self.bufs[l.buf][l.off..l.off + l.len]
    }
    /// The elements of `l` in f64.
    pub fn f64(&self, l: Loc) -> Vec<f64> {
        self.get(l).iter().map(|v| v.to_f64()).collect()
    }
}

impl<T: Real> Mem<T> {
    /// Zeroed buffers of the given lengths.
    pub fn new(lens: &[usize]) -> Self {
        Self {
            bufs: lens.iter().map(|&n| vec![T::default(); n]).collect(),
            scratch: Vec::new(),
        }
    }

    /// Zeroed buffers of the given lengths and the scratch space `instrs` need, so that
    /// running them allocates nothing.
    pub fn planned<'a>(
        lens: &[usize],
        instrs: impl IntoIterator<Item = &'a Arc<dyn Instr>>,
    ) -> Self {
        let mut mem = Self::new(lens);
        let need = instrs.into_iter().map(|i| i.scratch()).max().unwrap_or(0);
        mem.scratch = vec![T::default(); need];
        mem
    }

    /// The elements of `l`.
    pub fn get(&self, l: Loc) -> &[T] {
        &self.bufs[l.buf][l.off..l.off + l.len]
    }

    /// The elements of `l`, mutably.
    pub fn get_mut(&mut self, l: Loc) -> &mut [T] {
        &mut self.bufs[l.buf][l.off..l.off + l.len]
    }

    /// Run `f` with the destination `dst` writable and every other buffer readable.
    pub fn with_dst<R>(&mut self, dst: Loc, f: impl FnOnce(&mut [T], &Reader<'_, T>) -> R) -> R {
        let mut out = std::mem::take(&mut self.bufs[dst.buf]);
        let r = f(
            &mut out[dst.off..dst.off + dst.len],
            &Reader { bufs: &self.bufs },
        );
        self.bufs[dst.buf] = out;
        r
    }

    /// [`Mem::with_dst`] with `len` elements of scratch space (grown here only when the memory
    /// was not [planned](Mem::planned) for the instruction).
    pub fn with_dst_scratch<R>(
        &mut self,
        dst: Loc,
        len: usize,
        f: impl FnOnce(&mut [T], &mut [T], &Reader<'_, T>) -> R,
    ) -> R {
        if self.scratch.len() < len {
            self.scratch.resize(len, T::default());
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let r = self.with_dst(dst, |y, rd| f(y, &mut scratch[..len], rd));
        self.scratch = scratch;
        r
    }

    /// `dst[i] = v(i)` or, with `acc`, `dst[i] += v(i)`, from f64 values.
    pub fn put(&mut self, dst: Loc, acc: bool, v: impl Fn(usize, &Reader<'_, T>) -> f64) {
        self.with_dst(dst, |y, r| {
            for (i, yv) in y.iter_mut().enumerate() {
                let x = v(i, r);
                *yv = T::from_f64(if acc { yv.to_f64() + x } else { x });
            }
        })
    }
}

/// What an instruction records into on the GPU: the context, the plan's buffers and the
/// storage precision of the program.
pub struct GpuRun<'a> {
    /// The context.
    pub ctx: &'a GpuContext,
    /// The plan's buffers, by [`Loc::buf`] (each in f32, or in [`GpuRun::precision`] when the
    /// program stores it that way).
    pub bufs: &'a [GpuTensor<f32>],
    /// Storage of the buffers of f16-capable instructions.
    pub precision: Precision,
    /// The recording.
    pub rec: &'a mut Recorder,
}

impl<'a> GpuRun<'a> {
    /// `l` as a gemm/reduction view (element offsets in the buffer's storage type).
    pub fn view(&self, l: Loc) -> View<'a> {
        View {
            buffer: self.bufs[l.buf].buffer(),
            offset: l.off as u64,
            len: l.len as u64,
        }
    }

    /// `l` as a kernel argument (bound at its byte offset, which the planner aligns).
    pub fn arg(&self, l: Loc, elem_bytes: u64) -> Arg<'a> {
        Arg::Range {
            buffer: self.bufs[l.buf].buffer(),
            offset: l.off as u64 * elem_bytes,
            size: (l.len.max(1) as u64 * elem_bytes).div_ceil(4) * 4,
        }
    }

    /// `l` as an f32 `[len / k, k]` tensor (for the row kernels).
    pub fn rows(&self, l: Loc, k: usize) -> Result<GpuTensor<f32>> {
        self.bufs[l.buf].view(l.off, &[l.len / k, k])
    }
}

/// What an op's forward lowering sees: its node, every shape and every computed value.
pub struct Forward<'a> {
    pub(crate) node: NodeId,
    pub(crate) shapes: &'a [[usize; 2]],
    pub(crate) values: &'a [Option<Loc>],
    pub(crate) out: &'a mut Vec<Arc<dyn Instr>>,
}

impl Forward<'_> {
    /// Where node `id`'s value lives (an operand, or this node: [`Forward::y`]).
    pub fn value(&self, id: NodeId) -> Loc {
        self.values[id].expect("operand of a needed node is needed")
    }
    /// This node's value.
    pub fn y(&self) -> Loc {
        self.value(self.node)
    }
    /// `[rows, cols]` of node `id` at the plan's batch size.
    pub fn shape(&self, id: NodeId) -> [usize; 2] {
        self.shapes[id]
    }
    /// This node's `[rows, cols]`.
    pub fn y_shape(&self) -> [usize; 2] {
        self.shapes[self.node]
    }
    /// Append an instruction.
    pub fn emit(&mut self, i: impl Instr + 'static) {
        self.out.push(Arc::new(i));
    }
}

/// What an op's backward lowering sees: its node's gradient, every value and shape, and the
/// gradient slots of its operands.
pub struct Backward<'a> {
    pub(crate) node: NodeId,
    pub(crate) shapes: &'a [[usize; 2]],
    pub(crate) values: &'a [Option<Loc>],
    pub(crate) grads: &'a [Option<Loc>],
    pub(crate) req: &'a [bool],
    pub(crate) written: &'a mut [bool],
    pub(crate) out: &'a mut Vec<Arc<dyn Instr>>,
}

impl Backward<'_> {
    /// This node's gradient (the seed for the loss).
    pub fn gy(&self) -> Loc {
        self.grads[self.node].expect("gradient slot")
    }
    /// Where node `id`'s value lives.
    pub fn value(&self, id: NodeId) -> Loc {
        self.values[id].expect("operand of a needed node is needed")
    }
    /// This node's value.
    pub fn y(&self) -> Loc {
        self.value(self.node)
    }
    /// `[rows, cols]` of node `id`.
    pub fn shape(&self, id: NodeId) -> [usize; 2] {
        self.shapes[id]
    }
    /// This node's `[rows, cols]`.
    pub fn y_shape(&self) -> [usize; 2] {
        self.shapes[self.node]
    }
    /// When `operand` needs a gradient, emit `f(slot, acc)`: an instruction writing (first
    /// contribution, `acc = false`) or adding (`acc = true`) the operand's gradient into `slot`.
    pub fn grad<I: Instr + 'static>(&mut self, operand: NodeId, f: impl FnOnce(Loc, bool) -> I) {
        if self.req[operand] {
            let acc = self.written[operand];
            self.written[operand] = true;
            let slot = self.grads[operand].expect("gradient slot");
            self.out.push(Arc::new(f(slot, acc)));
        }
    }
}

/// A node's computation: its operands, shape rules (checked when the node is built) and its
/// lowering for both passes. See the [module docs](self).
pub trait Op: Debug + Send + Sync {
    /// A short name, for messages.
    fn name(&self) -> &'static str;
    /// The nodes it reads.
    fn operands(&self) -> Vec<NodeId>;
    /// Emit the instructions that compute the node's value ([`Forward::y`]).
    fn forward(&self, cx: &mut Forward<'_>);
    /// Emit, through [`Backward::grad`], the instructions that accumulate each operand's
    /// gradient.
    fn backward(&self, cx: &mut Backward<'_>);
    /// For inference plans: the op as a linear layer `x·w + b` (fused with an activation and
    /// a residual addition into one gemm).
    fn as_linear(&self) -> Option<LinearParts> {
        None
    }
    /// For inference plans: the activation this op applies, when it is one.
    fn as_activation(&self) -> Option<(NodeId, crate::kernels::Activation)> {
        None
    }
    /// For inference plans: the two summands, when the op is an addition.
    fn as_add(&self) -> Option<(NodeId, NodeId)> {
        None
    }
    /// For inference plans: the parts, when the op is a column concatenation.
    fn as_concat(&self) -> Option<Vec<NodeId>> {
        None
    }
}

/// A linear layer's operands, for fusion.
#[derive(Clone, Copy, Debug)]
pub struct LinearParts {
    /// Input `[rows, in]`.
    pub x: NodeId,
    /// Weight `[in, out]`.
    pub w: NodeId,
    /// Bias `[1, out]`.
    pub b: Option<NodeId>,
}
