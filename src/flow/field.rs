//! The trained vector field as an inference network for the samplers: the training graph of
//! the [`Network`] compiled as an inference program ([`GpuProgram`]), with its weights and
//! activations stored in f32 or f16 ([`Precision`]) and every dot product accumulated in f32.
//!
//! The program is derived from the graph, not written again: each residual block is one gemm
//! whose epilogue adds `LeakyReLU(·)` into the hidden state, the time-embedding columns of the
//! blocks' inputs are written once, and the tangent projection reads the f32 points.

use crate::autodiff::GpuProgram;
use crate::error::Result;
use crate::flow::sample::FlowModel;
use crate::gpu::{GpuContext, GpuTensor, Recorder};
use crate::kernels::Precision;
use crate::nn::Network;

/// The vector field of a [`FlowModel`] for a fixed number of rows, ready to record.
#[derive(Debug)]
pub struct FieldNet<'c> {
    ctx: &'c GpuContext,
    program: GpuProgram<'c>,
    cond: Option<crate::flow::Conditioning>,
    /// Whether the network reads a signal track.
    signal: bool,
    precision: Precision,
    rows: usize,
    x: GpuTensor<f32>,
    out: GpuTensor<f32>,
}

impl<'c> FieldNet<'c> {
    /// Compile `model`'s field for `rows` sequences with weights and activations in precision
    /// `p`. Errors when the adapter lacks f16 support, when a parameter is missing or
    /// misshapen, or (f16) when a parameter lies outside f16's range.
    pub fn new(ctx: &'c GpuContext, model: &FlowModel, rows: usize, p: Precision) -> Result<Self> {
        let mlp = model.config.network(0)?;
        let (l, k) = (model.config.mlp.seq_len, model.config.mlp.categories);
        let program = GpuProgram::new(ctx, &mlp.graph, rows, &[mlp.out], p, &model.params)?;
        let x = program.input(Network::X)?.reshape(&[rows, l, k])?;
        let out = program.output(mlp.out)?.reshape(&[rows, l, k])?;
        let net = Self {
            ctx,
            program,
            cond: mlp.labels.map(|_| model.config.cond),
            signal: mlp.signal.is_some(),
            precision: p,
            rows,
            x,
            out,
        };
        net.set_class(None)?;
        Ok(net)
    }

    /// Evaluate the field for `class` (`None`: the null class) in every row; a no-op for an
    /// unconditional model.
    pub fn set_class(&self, class: Option<u32>) -> Result<()> {
        match &self.cond {
            Some(c) => self.set_labels(&c.labels(class, self.rows)?),
            None => Ok(()),
        }
    }

    /// Evaluate row `i` for class `labels[i]` (the null class is
    /// [`Conditioning::null`](crate::flow::Conditioning::null)); a no-op for an unconditional
    /// model. Takes effect at the next submission.
    pub fn set_labels(&self, labels: &[f32]) -> Result<()> {
        if self.cond.is_none() {
            return Ok(());
        }
        if labels.len() != self.rows {
            return Err(crate::error::Error::Shape(format!(
                "{} labels for a field of {} rows",
                labels.len(),
                self.rows
            )));
        }
        let input = self.program.input(Network::LABELS)?;
        input.write(self.ctx, labels)
    }

    /// Evaluate every row with the signal track `values` (`[rows, L, channels]`); a no-op for
    /// a model without a signal track. Takes effect at the next submission.
    pub fn set_signal(&self, values: &[f32]) -> Result<()> {
        if self.signal {
            self.program
                .input(Network::SIGNAL)?
                .write(self.ctx, values)?;
        }
        Ok(())
    }

    /// The model's class conditioning (`None`: unconditional).
    pub fn conditioning(&self) -> Option<&crate::flow::Conditioning> {
        self.cond.as_ref()
    }

    /// The input points `x` `[rows, L, K]` (f32): write or record into it before
    /// [`FieldNet::record`].
    pub fn input(&self) -> &GpuTensor<f32> {
        &self.x
    }

    /// The field `v(x, t)` `[rows, L, K]` (f32) after a recorded evaluation.
    pub fn output(&self) -> &GpuTensor<f32> {
        &self.out
    }

    /// Rows evaluated together.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Storage precision of weights and activations.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Dispatches of one evaluation.
    pub fn dispatches(&self) -> usize {
        1 + self.program.recording().dispatches()
    }

    /// Record one evaluation of `v(x, t)` at time `t` for every row: reads
    /// [`FieldNet::input`], writes [`FieldNet::output`].
    pub fn record(&self, rec: &mut Recorder, t: f32) -> Result<()> {
        self.program.record_fill(rec, Network::T, t)?;
        rec.extend(self.program.recording());
        Ok(())
    }
}
