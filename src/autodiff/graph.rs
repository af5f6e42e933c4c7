//! The graph builder: inputs, parameters and ops on 2-D tensors `[rows, cols]` whose row count
//! may be the batch size, fixed only when the graph is compiled.

use std::collections::HashSet;
use std::sync::Arc;

use crate::autodiff::op::Op;
use crate::autodiff::{ops, NamedTensor};
use crate::error::{Error, Result};
use crate::kernels::Activation;
use crate::rng::Rng;

/// A node of a [`Graph`] (its index, in creation order, which is a topological order).
pub type NodeId = usize;

/// One dimension of a node's shape: the batch size (chosen at compile time) or a fixed size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dim {
    /// The batch size, fixed when the graph is compiled.
    Batch,
    /// A fixed size.
    Fixed(usize),
    /// The batch size times a fixed factor (`[B·L, C]`: every position of `B` sequences of
    /// length `L`).
    BatchTimes(usize),
}

impl Dim {
    /// The size for batch size `batch`.
    pub fn resolve(self, batch: usize) -> usize {
        match self {
            Dim::Batch => batch,
            Dim::Fixed(n) => n,
            Dim::BatchTimes(n) => batch.saturating_mul(n),
        }
    }

    /// This dimension times `n` (`Batch` becomes `BatchTimes(n)`).
    pub fn times(self, n: usize) -> Dim {
        match self {
            Dim::Batch => Dim::BatchTimes(n),
            Dim::Fixed(m) => Dim::Fixed(m * n),
            Dim::BatchTimes(m) => Dim::BatchTimes(m * n),
        }
    }
}

impl std::fmt::Display for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dim::Batch => write!(f, "B"),
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::BatchTimes(n) => write!(f, "B·{n}"),
        }
    }
}

/// A node's shape `[rows, cols]`.
pub type Shape = [Dim; 2];

/// `[rows, cols]` for messages.
pub fn fmt_shape(s: &Shape) -> String {
    format!("[{}, {}]", s[0], s[1])
}

/// How a parameter is initialised (deterministically from the graph's seed and the parameter's
/// index).
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    /// All zeros.
    Zeros,
    /// Every element equal to the value.
    Const(f32),
    /// Uniform in `[low, high)`.
    Uniform {
        /// Lower bound.
        low: f32,
        /// Upper bound.
        high: f32,
    },
    /// Uniform in `±1/√fan_in` (PyTorch's default for `nn.Linear` weights and biases, i.e.
    /// Kaiming-uniform with `a = √5`).
    KaimingUniform {
        /// Number of inputs of the layer.
        fan_in: usize,
    },
    /// Normal with mean 0 and the given standard deviation.
    Normal {
        /// Standard deviation.
        std: f32,
    },
    /// Explicit values (row-major; length must match the shape).
    Values(Vec<f32>),
}

/// What a node is: an input, a parameter, or an op over other nodes.
#[derive(Clone, Debug)]
pub enum NodeKind {
    /// A named input `[B, cols]` (or fixed rows), set before each step.
    Input(String),
    /// A trainable parameter (index into [`Graph::params`]).
    Param(usize),
    /// A computation (see [`super::ops`]).
    Op(Arc<dyn Op>),
}

impl NodeKind {
    /// The nodes it reads.
    pub fn operands(&self) -> Vec<NodeId> {
        match self {
            NodeKind::Input(_) | NodeKind::Param(_) => vec![],
            NodeKind::Op(op) => op.operands(),
        }
    }
    /// The op, when the node is one.
    pub fn op(&self) -> Option<&dyn Op> {
        match self {
            NodeKind::Op(op) => Some(op.as_ref()),
            _ => None,
        }
    }
}

/// One node: what it is and its shape.
#[derive(Clone, Debug)]
pub struct Node {
    /// What it computes.
    pub kind: NodeKind,
    /// Its shape.
    pub shape: Shape,
}

/// A trainable parameter.
#[derive(Clone, Debug)]
pub struct ParamInfo {
    /// Unique name (used in checkpoints).
    pub name: String,
    /// Shape as given (`[n]` or `[rows, cols]`).
    pub shape: Vec<usize>,
    /// Initialisation.
    pub init: Init,
    /// The node holding it.
    pub node: NodeId,
}

impl ParamInfo {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    /// Whether it has no elements (never true for a built graph).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A computation graph over 2-D f32 tensors, built op by op; see the [module docs](super).
#[derive(Clone, Debug)]
pub struct Graph {
    nodes: Vec<Node>,
    params: Vec<ParamInfo>,
    inputs: Vec<(String, NodeId)>,
    seed: u64,
}

impl Graph {
    /// An empty graph; `seed` fixes the parameter initialisation.
    pub fn new(seed: u64) -> Self {
        Self {
            nodes: Vec::new(),
            params: Vec::new(),
            inputs: Vec::new(),
            seed,
        }
    }

    /// The nodes, in creation (topological) order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }
    /// The parameters, in creation order.
    pub fn params(&self) -> &[ParamInfo] {
        &self.params
    }
    /// The inputs: name and node.
    pub fn inputs(&self) -> &[(String, NodeId)] {
        &self.inputs
    }
    /// The initialisation seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// Total number of trainable scalars.
    pub fn param_count(&self) -> usize {
        self.params.iter().map(|p| p.len()).sum()
    }
    /// The shape of a node.
    pub fn shape(&self, id: NodeId) -> Result<Shape> {
        self.node(id).map(|n| n.shape)
    }
    /// The input node called `name`.
    pub fn input_node(&self, name: &str) -> Result<NodeId> {
        self.inputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
            .ok_or_else(|| Error::InvalidArgument(format!("the graph has no input {name:?}")))
    }

    fn node(&self, id: NodeId) -> Result<&Node> {
        self.nodes
            .get(id)
            .ok_or_else(|| Error::InvalidArgument(format!("node {id} does not exist")))
    }

    fn push(&mut self, kind: NodeKind, shape: Shape) -> NodeId {
        self.nodes.push(Node { kind, shape });
        self.nodes.len() - 1
    }

    /// Add a node computing `op`, of shape `shape` (the op's builder checks its operands'
    /// shapes first; see [`super::ops`]). Every operand must already exist.
    pub fn add_op(&mut self, op: impl Op + 'static, shape: Shape) -> Result<NodeId> {
        for o in op.operands() {
            self.node(o)?;
        }
        Ok(self.push(NodeKind::Op(Arc::new(op)), shape))
    }

    fn check_name(&self, name: &str) -> Result<()> {
        if name.is_empty() {
            return Err(Error::InvalidArgument("empty input/parameter name".into()));
        }
        if self.inputs.iter().any(|(n, _)| n == name) || self.params.iter().any(|p| p.name == name)
        {
            return Err(Error::InvalidArgument(format!(
                "the name {name:?} is already used by an input or parameter"
            )));
        }
        Ok(())
    }

    /// An input of shape `[B, cols]` (B = batch size at compile time).
    pub fn input(&mut self, name: &str, cols: usize) -> Result<NodeId> {
        self.input_shaped(name, [Dim::Batch, Dim::Fixed(cols)])
    }

    /// An input of any shape (rows and/or columns may be the batch size).
    pub fn input_shaped(&mut self, name: &str, shape: Shape) -> Result<NodeId> {
        self.check_name(name)?;
        if shape.contains(&Dim::Fixed(0)) {
            return Err(Error::Shape(format!(
                "input {name:?} has an empty shape {}",
                fmt_shape(&shape)
            )));
        }
        let id = self.push(NodeKind::Input(name.to_string()), shape);
        self.inputs.push((name.to_string(), id));
        Ok(id)
    }

    /// A trainable parameter of shape `[n]` (a row vector `[1, n]`) or `[rows, cols]`.
    pub fn param(&mut self, name: &str, shape: &[usize], init: Init) -> Result<NodeId> {
        self.check_name(name)?;
        let (r, c) = match shape {
            [n] => (1, *n),
            [r, c] => (*r, *c),
            _ => {
                return Err(Error::Shape(format!(
                    "parameter {name:?}: shape {shape:?} must have 1 or 2 dimensions"
                )))
            }
        };
        if r == 0 || c == 0 {
            return Err(Error::Shape(format!(
                "parameter {name:?} has an empty shape {shape:?}"
            )));
        }
        if let Init::Values(v) = &init {
            if v.len() != r * c {
                return Err(Error::Shape(format!(
                    "parameter {name:?}: {} initial values for shape {shape:?}",
                    v.len()
                )));
            }
        }
        let idx = self.params.len();
        let id = self.push(NodeKind::Param(idx), [Dim::Fixed(r), Dim::Fixed(c)]);
        self.params.push(ParamInfo {
            name: name.to_string(),
            shape: shape.to_vec(),
            init,
            node: id,
        });
        Ok(id)
    }

    /// `a·b`.
    pub fn matmul(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.matmul_t(a, b, false, false)
    }

    /// `op(a)·op(b)` where `op` transposes when `ta` / `tb` is set.
    pub fn matmul_t(&mut self, a: NodeId, b: NodeId, ta: bool, tb: bool) -> Result<NodeId> {
        ops::matmul::MatMul::build(self, a, b, ta, tb)
    }

    /// `x·w + b` with `w: [in, out]` and optional `b: [out]`.
    pub fn linear(&mut self, x: NodeId, w: NodeId, b: Option<NodeId>) -> Result<NodeId> {
        ops::matmul::Linear::build(self, x, w, b)
    }

    /// `x + b`, `b: [1, cols]` broadcast over the rows of `x`.
    pub fn bias_add(&mut self, x: NodeId, b: NodeId) -> Result<NodeId> {
        ops::elementwise::BiasAdd::build(self, x, b)
    }

    /// `a + b` (same shapes).
    pub fn add(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        ops::elementwise::Elementwise::build(self, ops::elementwise::BinOp::Add, a, b)
    }

    /// `a ⊙ b` (same shapes).
    pub fn mul(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        ops::elementwise::Elementwise::build(self, ops::elementwise::BinOp::Mul, a, b)
    }

    /// `s·a`.
    pub fn scale(&mut self, a: NodeId, s: f32) -> Result<NodeId> {
        ops::elementwise::Affine::build(self, a, s, 0.0)
    }

    /// `a + s` elementwise.
    pub fn add_scalar(&mut self, a: NodeId, s: f32) -> Result<NodeId> {
        ops::elementwise::Affine::build(self, a, 1.0, s)
    }

    /// An elementwise activation.
    pub fn act(&mut self, a: NodeId, f: Activation) -> Result<NodeId> {
        ops::act::Act::build(self, a, f)
    }

    /// LeakyReLU with the given negative slope.
    pub fn leaky_relu(&mut self, a: NodeId, slope: f32) -> Result<NodeId> {
        self.act(a, Activation::LeakyRelu(slope))
    }
    /// SiLU (`x·sigmoid(x)`).
    pub fn silu(&mut self, a: NodeId) -> Result<NodeId> {
        self.act(a, Activation::Silu)
    }
    /// GELU (tanh approximation).
    pub fn gelu(&mut self, a: NodeId) -> Result<NodeId> {
        self.act(a, Activation::Gelu)
    }

    /// Concatenate along the last (feature) axis; all parts have the same rows.
    pub fn concat(&mut self, parts: &[NodeId]) -> Result<NodeId> {
        ops::concat::Concat::build(self, parts)
    }

    /// 1D convolution over sequences of `seq` rows (same padding): `x: [rows, cin]`,
    /// `w: [taps·cin, cout]` (tap-major), dilation `dil`, optional bias `b: [1, cout]`.
    pub fn conv1d(
        &mut self,
        x: NodeId,
        w: NodeId,
        b: Option<NodeId>,
        seq: usize,
        dil: usize,
    ) -> Result<NodeId> {
        ops::conv::Conv1d::build(self, x, w, b, seq, dil)
    }

    /// Layer norm over the columns: every row normalised (`eps` 1e-5), then `⊙ γ + β` with
    /// `γ, β: [1, cols]`.
    pub fn layer_norm(&mut self, x: NodeId, gamma: NodeId, beta: NodeId) -> Result<NodeId> {
        let n = ops::seq::Normalize::build(self, x, 1e-5)?;
        ops::seq::ChannelAffine::build(self, n, gamma, beta)
    }

    /// `x[r] + v[r / seq]`: a per-sequence vector `v: [rows / seq, cols]` added at every
    /// position.
    pub fn seq_add(&mut self, x: NodeId, v: NodeId, seq: usize) -> Result<NodeId> {
        ops::seq::SeqAdd::build(self, x, v, seq)
    }

    /// Rows of `table: [n, cols]` picked by the labels of input `labels: [rows, 1]`.
    pub fn embedding(&mut self, labels: NodeId, table: NodeId) -> Result<NodeId> {
        ops::seq::Embedding::build(self, labels, table)
    }

    /// Sum of all elements (`[1, 1]`).
    pub fn sum(&mut self, a: NodeId) -> Result<NodeId> {
        ops::reduce::Sum::build(self, a, false)
    }

    /// Mean of all elements (`[1, 1]`).
    pub fn mean(&mut self, a: NodeId) -> Result<NodeId> {
        ops::reduce::Sum::build(self, a, true)
    }

    /// `Σ_features (v − u)²` averaged over rows (the Fisher-Flow loss), `[1, 1]`.
    pub fn mse_loss(&mut self, v: NodeId, u: NodeId) -> Result<NodeId> {
        ops::reduce::MseLoss::build(self, v, u)
    }

    /// The softmax cross-entropy of logits `z` against targets `t` per group of `k` columns,
    /// averaged over rows and groups, `[1, 1]`.
    pub fn softmax_xent(&mut self, z: NodeId, t: NodeId, k: usize) -> Result<NodeId> {
        ops::xent::SoftmaxXent::build(self, z, t, k)
    }

    /// Per group of `k` consecutive columns (one sphere per position): `v − ⟨x, v⟩ x`.
    pub fn proj_tangent(&mut self, v: NodeId, x: NodeId, k: usize) -> Result<NodeId> {
        ops::proj::ProjTangent::build(self, v, x, k)
    }

    /// Every node `targets` depend on (themselves included), sorted.
    pub fn ancestors(&self, targets: &[NodeId]) -> Result<Vec<NodeId>> {
        let mut seen = HashSet::new();
        let mut stack = Vec::new();
        for &t in targets {
            self.node(t)?;
            stack.push(t);
        }
        while let Some(n) = stack.pop() {
            if seen.insert(n) {
                stack.extend(self.nodes[n].kind.operands());
            }
        }
        let mut v: Vec<_> = seen.into_iter().collect();
        v.sort_unstable();
        Ok(v)
    }

    /// The initial parameter values (deterministic from the seed), in parameter order.
    pub fn initial_params(&self) -> Vec<NamedTensor> {
        self.params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let n = p.len();
                let mut rng = Rng::fork(self.seed, i as u64);
                let data = match &p.init {
                    Init::Zeros => vec![0.0; n],
                    Init::Const(c) => vec![*c; n],
                    Init::Uniform { low, high } => rng.vec_f32(n, *low as f64, *high as f64),
                    Init::KaimingUniform { fan_in } => {
                        let bound = 1.0 / (*fan_in.max(&1) as f64).sqrt();
                        rng.vec_f32(n, -bound, bound)
                    }
                    Init::Normal { std } => (0..n)
                        .map(|_| (rng.normal() * *std as f64) as f32)
                        .collect(),
                    Init::Values(v) => v.clone(),
                };
                NamedTensor {
                    name: p.name.clone(),
                    shape: p.shape.clone(),
                    data,
                }
            })
            .collect()
    }
}
