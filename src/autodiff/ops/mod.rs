//! The autodiff ops, one module each: the op (shape rules, forward and backward lowering) and
//! the instructions only it uses, with their CPU and GPU execution.
//!
//! | module | ops | instructions |
//! |---|---|---|
//! | [`matmul`] | `MatMul`, `Linear` | `Gemm` (bias, activation, accumulation) |
//! | [`elementwise`] | `Elementwise` (add, mul), `Affine` (scale, add scalar), `BiasAdd` | `ScaleAdd`, `Binary`, `BiasAddRows` |
//! | [`act`] | `Act` | `ActFwd`, `ActBwd` |
//! | [`concat`](mod@concat) | `Concat` | `ColCopy` |
//! | [`reduce`] | `Sum` (and mean), `MseLoss` | `SumOf`, `Broadcast`, `SqDiffGrad`, `ColSum` |
//! | [`proj`] | `ProjTangent` | `Proj`, `ProjGradX` |
//! | [`conv`] | `Conv1d` | `ConvInstr` (implicit gemm) |
//! | [`seq`] | `Normalize`, `ChannelAffine`, `SeqAdd`, `Embedding` | `SeqInstr` ([`seq_instr`]) |
//! | [`xent`] | `SoftmaxXent` | `XentLoss`, `XentGrad` |
//!
//! Adding an op: a module here with a struct implementing [`Op`](super::Op) and a `build`
//! function that checks shapes and calls [`Graph::add_op`]; its instructions implement
//! [`Instr`](super::Instr) (CPU body once, generic over f32/f64, and a GPU recording through
//! the kernel layer). A builder method on [`Graph`] is optional sugar.

pub mod act;
pub mod concat;
pub mod conv;
pub mod elementwise;
pub mod matmul;
pub mod proj;
pub mod reduce;
pub mod seq;
pub mod seq_instr;
pub mod xent;

use crate::autodiff::graph::{fmt_shape, Graph, NodeId, Shape};
use crate::error::{Error, Result};

/// The shape shared by `a` and `b`, or an error naming `what`.
pub fn same_shape(g: &Graph, what: &str, a: NodeId, b: NodeId) -> Result<Shape> {
    let sa = g.shape(a)?;
    let sb = g.shape(b)?;
    if sa != sb {
        return Err(Error::Shape(format!(
            "{what}: shapes {} and {} differ",
            fmt_shape(&sa),
            fmt_shape(&sb)
        )));
    }
    Ok(sa)
}

/// An error unless `v` is finite.
pub fn finite(what: &str, v: f32) -> Result<()> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!("{what}: {v} is not finite")))
    }
}
