//! Ops of sequence models on `[B·L, C]` tensors (row `r` is position `r % L` of sequence
//! `r / L`): `Normalize` (each row to mean 0, variance 1: layer norm's statistics),
//! `ChannelAffine` (`x ⊙ γ + β` per channel: layer norm's affine part), `SeqAdd` (a
//! per-sequence vector `[B, C]` added at every position) and `Embedding` (rows of a table
//! picked by integer labels). Their instructions are [`SeqInstr`]s.

use crate::autodiff::graph::{fmt_shape, Dim, Graph, NodeId, NodeKind};
use crate::autodiff::op::{Backward, Forward, Op};
use crate::autodiff::ops::elementwise::ScaleAdd;
use crate::autodiff::ops::finite;
use crate::autodiff::ops::reduce::ColSum;
use crate::autodiff::ops::seq_instr::{SeqInstr, SeqKind};
use crate::error::{Error, Result};

/// Whether `rows` is a whole number of sequences of length `seq`.
pub fn whole_sequences(rows: Dim, seq: usize) -> bool {
    match rows {
        Dim::Batch => seq == 1,
        Dim::Fixed(n) | Dim::BatchTimes(n) => seq > 0 && n.is_multiple_of(seq),
    }
}

fn fixed_cols(g: &Graph, what: &str, x: NodeId) -> Result<usize> {
    match g.shape(x)?[1] {
        Dim::Fixed(c) => Ok(c),
        d => Err(Error::Shape(format!(
            "{what}: needs a fixed number of columns, not {d}"
        ))),
    }
}

fn row_vector(g: &Graph, what: &str, v: NodeId, cols: usize) -> Result<()> {
    let s = g.shape(v)?;
    if s != [Dim::Fixed(1), Dim::Fixed(cols)] {
        return Err(Error::Shape(format!(
            "{what}: {} must be [1, {cols}]",
            fmt_shape(&s)
        )));
    }
    Ok(())
}

/// Every row normalised: `(x − mean) / sqrt(var + eps)` over its columns.
#[derive(Debug)]
pub struct Normalize {
    x: NodeId,
    eps: f32,
}

impl Normalize {
    /// Add the normalisation of `x`'s rows to `g`.
    pub fn build(g: &mut Graph, x: NodeId, eps: f32) -> Result<NodeId> {
        finite("normalize eps", eps)?;
        if eps <= 0.0 {
            return Err(Error::InvalidArgument(format!(
                "normalize: eps = {eps} must be positive"
            )));
        }
        fixed_cols(g, "normalize", x)?;
        let s = g.shape(x)?;
        g.add_op(Normalize { x, eps }, s)
    }
}

impl Op for Normalize {
    fn name(&self) -> &'static str {
        "normalize"
    }
    fn operands(&self) -> Vec<NodeId> {
        vec![self.x]
    }
    fn forward(&self, cx: &mut Forward<'_>) {
        let [rows, cols] = cx.y_shape();
        let (x, y) = (cx.value(self.x), cx.y());
        let mut i = SeqInstr::new(SeqKind::NormFwd, vec![x], y, rows, cols);
        i.eps = self.eps;
        cx.emit(i);
    }
    fn backward(&self, cx: &mut Backward<'_>) {
        let [rows, cols] = cx.y_shape();
        let (x, gy, eps) = (cx.value(self.x), cx.gy(), self.eps);
        cx.grad(self.x, |d, acc| SeqInstr {
            eps,
            acc,
            ..SeqInstr::new(SeqKind::NormBwd, vec![x, gy], d, rows, cols)
        });
    }
}

/// `x ⊙ γ + β` with `γ, β: [1, cols]` per column.
#[derive(Debug)]
pub struct ChannelAffine {
    x: NodeId,
    gamma: NodeId,
    beta: NodeId,
}

impl ChannelAffine {
    /// Add `x ⊙ γ + β` to `g`.
    pub fn build(g: &mut Graph, x: NodeId, gamma: NodeId, beta: NodeId) -> Result<NodeId> {
        let cols = fixed_cols(g, "channel_affine", x)?;
        row_vector(g, "channel_affine scale", gamma, cols)?;
        row_vector(g, "channel_affine shift", beta, cols)?;
        let s = g.shape(x)?;
        g.add_op(ChannelAffine { x, gamma, beta }, s)
    }
}

impl Op for ChannelAffine {
    fn name(&self) -> &'static str {
        "channel_affine"
    }
    fn operands(&self) -> Vec<NodeId> {
        vec![self.x, self.gamma, self.beta]
    }
    fn forward(&self, cx: &mut Forward<'_>) {
        let [rows, cols] = cx.y_shape();
        let srcs = vec![cx.value(self.x), cx.value(self.gamma), cx.value(self.beta)];
        let y = cx.y();
        cx.emit(SeqInstr::new(SeqKind::ChanAffine, srcs, y, rows, cols));
    }
    fn backward(&self, cx: &mut Backward<'_>) {
        let [rows, cols] = cx.y_shape();
        let (x, gamma, gy) = (cx.value(self.x), cx.value(self.gamma), cx.gy());
        let with = |kind, srcs, d, acc| SeqInstr {
            acc,
            ..SeqInstr::new(kind, srcs, d, rows, cols)
        };
        cx.grad(self.x, |d, acc| {
            with(SeqKind::ChanScale, vec![gy, gamma], d, acc)
        });
        cx.grad(self.gamma, |d, acc| {
            with(SeqKind::ColDot, vec![gy, x], d, acc)
        });
        cx.grad(self.beta, |d, acc| ColSum {
            x: gy,
            y: d,
            rows,
            cols,
            acc,
        });
    }
}

/// `x[r] + v[r / seq]`: `v: [sequences, cols]` added at every position of its sequence.
#[derive(Debug)]
pub struct SeqAdd {
    x: NodeId,
    v: NodeId,
    seq: usize,
}

impl SeqAdd {
    /// Add `x + v` broadcast over the `seq` positions of each sequence to `g`.
    pub fn build(g: &mut Graph, x: NodeId, v: NodeId, seq: usize) -> Result<NodeId> {
        let sx = g.shape(x)?;
        let sv = g.shape(v)?;
        if seq == 0 || sv[1] != sx[1] || sv[0].times(seq) != sx[0] {
            return Err(Error::Shape(format!(
                "seq_add: x {} and per-sequence v {} with {seq} positions per sequence (need v \
                 [rows / {seq}, cols])",
                fmt_shape(&sx),
                fmt_shape(&sv)
            )));
        }
        fixed_cols(g, "seq_add", x)?;
        g.add_op(SeqAdd { x, v, seq }, sx)
    }
}

impl Op for SeqAdd {
    fn name(&self) -> &'static str {
        "seq_add"
    }
    fn operands(&self) -> Vec<NodeId> {
        vec![self.x, self.v]
    }
    fn forward(&self, cx: &mut Forward<'_>) {
        let [rows, cols] = cx.y_shape();
        let (x, v, y) = (cx.value(self.x), cx.value(self.v), cx.y());
        let mut i = SeqInstr::new(SeqKind::SeqAdd, vec![x, v], y, rows, cols);
        i.seq = self.seq;
        cx.emit(i);
    }
    fn backward(&self, cx: &mut Backward<'_>) {
        let [rows, cols] = cx.y_shape();
        let (gy, seq) = (cx.gy(), self.seq);
        cx.grad(self.x, |d, acc| ScaleAdd::copy(gy, d, acc));
        cx.grad(self.v, |d, acc| SeqInstr {
            seq,
            acc,
            ..SeqInstr::new(SeqKind::SeqSum, vec![gy], d, rows, cols)
        });
    }
}

/// Row `labels[r]` of `table: [n, cols]` for every row (zeros for a label that is not an
/// integer in `[0, n)`); `labels: [rows, 1]` must be an input.
#[derive(Debug)]
pub struct Embedding {
    labels: NodeId,
    table: NodeId,
}

impl Embedding {
    /// Add the lookup of `labels` in `table` to `g`.
    pub fn build(g: &mut Graph, labels: NodeId, table: NodeId) -> Result<NodeId> {
        let sl = g.shape(labels)?;
        if !matches!(g.nodes()[labels].kind, NodeKind::Input(_)) || sl[1] != Dim::Fixed(1) {
            return Err(Error::Shape(format!(
                "embedding: labels must be an input of one column, not {}",
                fmt_shape(&sl)
            )));
        }
        let st = g.shape(table)?;
        let (Dim::Fixed(_), Dim::Fixed(cols)) = (st[0], st[1]) else {
            return Err(Error::Shape(format!(
                "embedding: the table {} must have a fixed shape",
                fmt_shape(&st)
            )));
        };
        g.add_op(Embedding { labels, table }, [sl[0], Dim::Fixed(cols)])
    }
}

impl Op for Embedding {
    fn name(&self) -> &'static str {
        "embedding"
    }
    fn operands(&self) -> Vec<NodeId> {
        vec![self.labels, self.table]
    }
    fn forward(&self, cx: &mut Forward<'_>) {
        let [rows, cols] = cx.y_shape();
        let n = cx.shape(self.table)[0];
        let (l, t, y) = (cx.value(self.labels), cx.value(self.table), cx.y());
        let mut i = SeqInstr::new(SeqKind::Embed, vec![l, t], y, rows, cols);
        i.n = n;
        cx.emit(i);
    }
    fn backward(&self, cx: &mut Backward<'_>) {
        let [rows, cols] = cx.y_shape();
        let n = cx.shape(self.table)[0];
        let (l, gy) = (cx.value(self.labels), cx.gy());
        cx.grad(self.table, |d, acc| SeqInstr {
            n,
            acc,
            ..SeqInstr::new(SeqKind::EmbedGrad, vec![l, gy], d, rows, cols)
        });
    }
}

/// The shape check shared with the convolution: `x`'s rows are whole sequences.
pub fn check_sequences(g: &Graph, what: &str, x: NodeId, seq: usize) -> Result<()> {
    let s = g.shape(x)?;
    if !whole_sequences(s[0], seq) {
        return Err(Error::Shape(format!(
            "{what}: rows {} are not whole sequences of length {seq}",
            s[0]
        )));
    }
    Ok(())
}
