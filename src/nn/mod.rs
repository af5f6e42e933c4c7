//! Layers built on [`crate::autodiff`]: [`Linear`] and the Fisher-Flow vector-field networks,
//! the [`Mlp`] over flattened sequences and the convolutional network of [`conv`], one builder
//! each behind [`Arch`].

pub mod conv;

use crate::autodiff::{Graph, Init, NodeId};
use crate::error::{Error, Result};

/// The architecture of the field network (stored in checkpoints; sizes are in [`MlpConfig`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Arch {
    /// The MLP over the flattened `[B, L·K]` input ([`Mlp`]).
    #[default]
    Mlp,
    /// Residual blocks of dilated 1D convolutions over `[B·L, K]` ([`conv::build`]).
    Conv {
        /// Kernel size.
        kernel: usize,
    },
}

impl Arch {
    /// The kernel size of the convolutional network by default (the Fisher-Flow DNA models').
    pub const KERNEL: usize = 9;

    /// Values of the widest activation of one sequence.
    pub fn widest_row(&self, m: &MlpConfig) -> usize {
        match self {
            Arch::Mlp => m.hidden.max(m.width()) + m.time_dim,
            Arch::Conv { .. } => m.seq_len.saturating_mul(m.hidden.max(m.categories)),
        }
    }

    /// `mlp` or `conv(kernel 9)`, for messages.
    pub fn describe(&self) -> String {
        match self {
            Arch::Mlp => "mlp".into(),
            Arch::Conv { kernel } => format!("conv (kernel {kernel})"),
        }
    }
}

/// A built field network: its graph and the nodes a trainer or sampler reads and writes. The
/// inputs `x` and `target` hold `L·K` values per sequence either way (`[B, L·K]` for the MLP,
/// `[B·L, K]` for the convolutional network: the same row-major memory).
#[derive(Clone, Debug)]
pub struct Network {
    /// The graph.
    pub graph: Graph,
    /// Input node `x`.
    pub x: NodeId,
    /// Input node `t` `[B, 1]`.
    pub t: NodeId,
    /// Input node `target`.
    pub target: NodeId,
    /// Input node of the class labels `[B, 1]`, when conditioned.
    pub labels: Option<NodeId>,
    /// Input node of the signal tracks `[B·L, S]` (S channels per position), when the network
    /// reads them.
    pub signal: Option<NodeId>,
    /// The vector field.
    pub out: NodeId,
    /// The loss `[1, 1]`: `Σ_{L,K} (v − target)²` averaged over sequences.
    pub loss: NodeId,
}

impl Network {
    /// Input name of `x_t`.
    pub const X: &'static str = "x";
    /// Input name of `t`.
    pub const T: &'static str = "t";
    /// Input name of the regression target.
    pub const TARGET: &'static str = "target";
    /// Input name of the class labels (conditioned networks).
    pub const LABELS: &'static str = "labels";
    /// Input name of the per-position signal tracks (networks conditioned on a track).
    pub const SIGNAL: &'static str = "signal";

    /// Build the network of architecture `arch` with sizes `cfg` and the loss `loss`, reading
    /// class labels when `classes > 0` and a signal track of `signal` channels per position
    /// when `signal > 0` (the convolutional network only); `seed` fixes the initial parameters.
    pub fn build(
        cfg: &MlpConfig,
        arch: Arch,
        classes: usize,
        signal: usize,
        loss: MlpLoss,
        seed: u64,
    ) -> Result<Network> {
        cfg.validate()?;
        match (arch, loss) {
            (Arch::Mlp, _) if signal > 0 => Err(Error::InvalidArgument(
                "a signal track (--signal) is read by the convolutional network only: train \
                 with --arch conv"
                    .into(),
            )),
            (Arch::Mlp, _) => Ok(Mlp::build(*cfg, classes, seed, loss)?.into()),
            (Arch::Conv { kernel }, MlpLoss::Mse) => {
                conv::build(cfg, kernel, classes, signal, seed)
            }
            (Arch::Conv { .. }, MlpLoss::SoftmaxXent) => Err(Error::InvalidArgument(
                "the convolutional network is trained as a vector field; the cross-entropy \
                 denoiser (Dirichlet flow matching) needs --arch mlp"
                    .into(),
            )),
        }
    }

    /// Number of trainable scalars.
    pub fn param_count(&self) -> usize {
        self.graph.param_count()
    }
}

impl From<Mlp> for Network {
    fn from(m: Mlp) -> Self {
        Network {
            graph: m.graph,
            x: m.x,
            t: m.t,
            target: m.target,
            labels: m.labels,
            signal: None,
            out: m.out,
            loss: m.loss,
        }
    }
}

/// A fully connected layer `y = x·W + b`, `W: [in, out]`, initialised like PyTorch's
/// `nn.Linear` (uniform in `±1/√in` for weight and bias).
#[derive(Clone, Copy, Debug)]
pub struct Linear {
    /// Weight node `[in, out]`.
    pub w: NodeId,
    /// Bias node `[1, out]`.
    pub b: Option<NodeId>,
    /// Input features.
    pub inputs: usize,
    /// Output features.
    pub outputs: usize,
}

impl Linear {
    /// Register parameters `<name>.weight` and (with `bias`) `<name>.bias`.
    pub fn new(
        g: &mut Graph,
        name: &str,
        inputs: usize,
        outputs: usize,
        bias: bool,
    ) -> Result<Self> {
        let init = Init::KaimingUniform { fan_in: inputs };
        let w = g.param(&format!("{name}.weight"), &[inputs, outputs], init.clone())?;
        let b = if bias {
            Some(g.param(&format!("{name}.bias"), &[outputs], init)?)
        } else {
            None
        };
        Ok(Self {
            w,
            b,
            inputs,
            outputs,
        })
    }

    /// Apply the layer to `x: [rows, in]`.
    pub fn forward(&self, g: &mut Graph, x: NodeId) -> Result<NodeId> {
        g.linear(x, self.w, self.b)
    }

    /// Number of trainable scalars.
    pub fn param_count(&self) -> usize {
        self.inputs * self.outputs + if self.b.is_some() { self.outputs } else { 0 }
    }
}

/// Settings of the Fisher-Flow vector field (serialisable for checkpoints).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MlpConfig {
    /// Sequence length L.
    pub seq_len: usize,
    /// Categories K.
    pub categories: usize,
    /// Hidden width.
    pub hidden: usize,
    /// Residual blocks.
    pub blocks: usize,
    /// Width of the time embedding.
    pub time_dim: usize,
    /// LeakyReLU slope.
    pub slope: f32,
    /// Project the output onto the tangent space at `x_t`, per position.
    pub project: bool,
}

impl Default for MlpConfig {
    /// The toy-experiment model: L = 4, K = 20, hidden 512, two residual blocks, time
    /// embedding 64, LeakyReLU(0.01), projected output.
    fn default() -> Self {
        Self {
            seq_len: 4,
            categories: 20,
            hidden: 512,
            blocks: 2,
            time_dim: 64,
            slope: 0.01,
            project: true,
        }
    }
}

impl MlpConfig {
    /// `L·K`, the flattened width of a sequence.
    pub fn width(&self) -> usize {
        self.seq_len * self.categories
    }

    /// Number of trainable scalars of the model.
    pub fn param_count(&self) -> usize {
        let (lk, h, e) = (self.width(), self.hidden, self.time_dim);
        (e + e) + (lk + e) * h + h + self.blocks * ((h + e) * h + h) + (h + e) * lk + lk
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.seq_len == 0 || self.categories == 0 || self.hidden == 0 || self.time_dim == 0 {
            return Err(Error::InvalidArgument(format!(
                "MLP sizes must be positive: {self:?}"
            )));
        }
        if !self.slope.is_finite() {
            return Err(Error::InvalidArgument(format!(
                "LeakyReLU slope {} is not finite",
                self.slope
            )));
        }
        Ok(())
    }
}

/// What the [`Mlp`]'s output is trained against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MlpLoss {
    /// `Σ_{L,K} (v − target)²` averaged over the batch: a vector field.
    #[default]
    Mse,
    /// Softmax cross-entropy per position against one-hot targets, averaged over the batch
    /// and the positions: the output is the logits of a categorical per position (a
    /// denoiser, as in Dirichlet flow matching). Needs an unprojected output.
    SoftmaxXent,
}

/// The Fisher-Flow vector field `v_θ(x_t, t)` as a graph, with its regression loss.
///
/// Inputs: `x` `[B, L·K]` (points on the product of spheres, flattened), `t` `[B, 1]` and
/// `target` `[B, L·K]` (the conditional vector field). The time embedding `e = Linear(1→E)(t)`
/// is concatenated to every block input: `h = LeakyReLU(Linear(LK+E→H)([x, e]))`, then per
/// residual block `h = h + LeakyReLU(Linear(H+E→H)([h, e]))`, then
/// `v = Linear(H+E→LK)([h, e])`, optionally projected onto the tangent space at `x` per
/// position. Loss: `Σ_{L,K} (v − target)²` averaged over the batch.
#[derive(Clone, Debug)]
pub struct Mlp {
    /// The settings.
    pub config: MlpConfig,
    /// The graph.
    pub graph: Graph,
    /// Input node `x`.
    pub x: NodeId,
    /// Input node `t`.
    pub t: NodeId,
    /// Input node `target`.
    pub target: NodeId,
    /// Input node of the class labels, when conditioned.
    pub labels: Option<NodeId>,
    /// The vector field `[B, L·K]`.
    pub out: NodeId,
    /// The loss `[1, 1]`.
    pub loss: NodeId,
}

impl Mlp {
    /// Input name of `x_t`.
    pub const X: &'static str = "x";
    /// Input name of `t`.
    pub const T: &'static str = "t";
    /// Input name of the regression target.
    pub const TARGET: &'static str = "target";

    /// Build the model; `seed` fixes the initial parameters.
    pub fn new(config: MlpConfig, seed: u64) -> Result<Self> {
        Self::build(config, 0, seed, MlpLoss::Mse)
    }

    /// [`Mlp::new`] with the loss `kind`.
    pub fn with_loss(config: MlpConfig, seed: u64, kind: MlpLoss) -> Result<Self> {
        Self::build(config, 0, seed, kind)
    }

    /// Build the model with the loss `kind`, reading class labels when `classes > 0` (a
    /// learned embedding of `classes + 1` rows, the last the null class, added to the time
    /// embedding).
    pub fn build(config: MlpConfig, classes: usize, seed: u64, kind: MlpLoss) -> Result<Self> {
        config.validate()?;
        if kind == MlpLoss::SoftmaxXent && config.project {
            return Err(Error::InvalidArgument(
                "a cross-entropy model outputs logits: its output cannot be projected".into(),
            ));
        }
        let (lk, h, e) = (config.width(), config.hidden, config.time_dim);
        let mut g = Graph::new(seed);
        let x = g.input(Self::X, lk)?;
        let t = g.input(Self::T, 1)?;
        let target = g.input(Self::TARGET, lk)?;
        let mut temb = Linear::new(&mut g, "time", 1, e, true)?.forward(&mut g, t)?;
        let labels = if classes > 0 {
            let labels = g.input(Network::LABELS, 1)?;
            let init = Init::Normal { std: 1.0 };
            let table = g.param("class.embed", &[classes + 1, e], init)?;
            let emb = g.embedding(labels, table)?;
            temb = g.add(temb, emb)?;
            Some(labels)
        } else {
            None
        };
        let inp = Linear::new(&mut g, "input", lk + e, h, true)?;
        let cat = g.concat(&[x, temb])?;
        let z = inp.forward(&mut g, cat)?;
        let mut hid = g.leaky_relu(z, config.slope)?;
        for i in 0..config.blocks {
            let lin = Linear::new(&mut g, &format!("block{i}"), h + e, h, true)?;
            let cat = g.concat(&[hid, temb])?;
            let z = lin.forward(&mut g, cat)?;
            let a = g.leaky_relu(z, config.slope)?;
            hid = g.add(hid, a)?;
        }
        let head = Linear::new(&mut g, "output", h + e, lk, true)?;
        let cat = g.concat(&[hid, temb])?;
        let mut out = head.forward(&mut g, cat)?;
        if config.project {
            out = g.proj_tangent(out, x, config.categories)?;
        }
        let loss = match kind {
            MlpLoss::Mse => g.mse_loss(out, target)?,
            MlpLoss::SoftmaxXent => g.softmax_xent(out, target, config.categories)?,
        };
        let table = if classes > 0 { (classes + 1) * e } else { 0 };
        debug_assert_eq!(g.param_count(), config.param_count() + table);
        Ok(Self {
            config,
            graph: g,
            x,
            t,
            target,
            labels,
            out,
            loss,
        })
    }

    /// Number of trainable scalars.
    pub fn param_count(&self) -> usize {
        self.graph.param_count()
    }
}
