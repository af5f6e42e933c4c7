//! Lowering a [`Graph`] for one batch size into a flat, backend-neutral program: buffer
//! locations and forward and backward instructions. Each op lowers itself ([`Op::forward`](crate::autodiff::Op::forward),
//! [`Op::backward`](crate::autodiff::Op::backward)); the backward instructions come from one reverse topological walk over
//! the nodes the loss depends on. Both backends run the same program, so they agree by
//! construction on what is computed.
//!
//! One fusion: a linear layer read only by an activation whose derivative follows from its
//! output (LeakyReLU, ReLU) is one gemm with the activation in its epilogue; the
//! pre-activation is never stored.

use std::sync::Arc;

use crate::autodiff::graph::{Dim, Graph, NodeId, NodeKind};
use crate::autodiff::op::{Backward, Forward, GpuRun, Instr, Loc, Mem};
use crate::autodiff::ops::matmul::{Gemm, GemmSpec};
use crate::error::{Error, Result};
use crate::kernels::Real;

/// Buffer 0 holds every parameter, contiguously.
pub const PARAMS: usize = 0;
/// Buffer 1 holds every parameter gradient, same layout as [`PARAMS`].
pub const GRADS: usize = 1;

/// Parameters start on multiples of this many elements (256 bytes, the largest storage
/// offset alignment adapters ask for), so each can be bound on its own.
pub const PARAM_ALIGN: usize = 64;

/// `y = 0`: the gradient of a parameter the loss does not depend on.
#[derive(Debug)]
pub struct Zero {
    /// The location cleared.
    pub y: Loc,
}

impl Zero {
    fn run<T: Real>(&self, mem: &mut Mem<T>) {
        mem.get_mut(self.y)
            .iter_mut()
            .for_each(|v| *v = T::default());
    }
}

impl Instr for Zero {
    fn dst(&self) -> Loc {
        self.y
    }
    fn srcs(&self) -> Vec<Loc> {
        vec![]
    }
    crate::cpu_instr!();
    fn record(&self, gpu: &mut GpuRun<'_>) -> Result<()> {
        let buf = gpu.bufs[self.y.buf].buffer();
        gpu.rec
            .clear(buf, self.y.off as u64 * 4, Some(self.y.len as u64 * 4));
        Ok(())
    }
}

/// The linear layers whose only reader is an activation that keeps no use for its input
/// ([`crate::kernels::Activation::derivative_from_output`]): each is computed by its
/// activation's gemm and has no value of its own. Outputs and the loss are never folded.
fn folded_linears(graph: &Graph, needed: &[NodeId], targets: &[NodeId]) -> Vec<bool> {
    let nodes = graph.nodes();
    let mut readers = vec![0usize; nodes.len()];
    for &id in needed {
        for o in nodes[id].kind.operands() {
            readers[o] += 1;
        }
    }
    let mut folded = vec![false; nodes.len()];
    for &id in needed {
        let Some((z, f)) = nodes[id].kind.op().and_then(|o| o.as_activation()) else {
            continue;
        };
        let linear = nodes[z].kind.op().and_then(|o| o.as_linear()).is_some();
        if linear && f.derivative_from_output() && readers[z] == 1 && !targets.contains(&z) {
            folded[z] = true;
        }
    }
    folded
}

/// A graph lowered for one batch size.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Batch size the plan was made for.
    pub batch: usize,
    /// Element count of every buffer (index = [`Loc::buf`]).
    pub buf_lens: Vec<usize>,
    /// Where each parameter lives in [`PARAMS`] (and its gradient in [`GRADS`]).
    pub param_locs: Vec<Loc>,
    /// Resolved `[rows, cols]` of every node.
    pub shapes: Vec<[usize; 2]>,
    /// Value location of every computed node (`None` for nodes not needed).
    pub values: Vec<Option<Loc>>,
    /// Gradient location of every node that gets one.
    pub grads: Vec<Option<Loc>>,
    /// Forward instructions.
    pub forward: Vec<Arc<dyn Instr>>,
    /// Backward instructions (empty without a loss).
    pub backward: Vec<Arc<dyn Instr>>,
    /// The loss node, if any.
    pub loss: Option<NodeId>,
    /// A one-element location the backend sets to 1 before the backward pass (the loss
    /// gradient).
    pub seed: Option<Loc>,
}

fn alloc(lens: &mut Vec<usize>, len: usize) -> Loc {
    lens.push(len);
    Loc {
        buf: lens.len() - 1,
        off: 0,
        len,
    }
}

impl Plan {
    /// Lower `graph` for batch size `batch`, computing `outputs` and, when `loss` is given,
    /// the loss and every parameter gradient.
    pub fn build(
        graph: &Graph,
        batch: usize,
        outputs: &[NodeId],
        loss: Option<NodeId>,
    ) -> Result<Plan> {
        Self::build_wrt(graph, batch, outputs, loss, &[])
    }

    /// [`Plan::build`], differentiating the loss with respect to the input nodes `inputs`
    /// instead of the parameters when `inputs` is not empty (vector-Jacobian products: with a
    /// loss `Σ v ⊙ w`, the gradient of input `x` is `wᵀ ∂v/∂x` row by row). The parameter
    /// gradients are then not computed and stay zero.
    pub fn build_wrt(
        graph: &Graph,
        batch: usize,
        outputs: &[NodeId],
        loss: Option<NodeId>,
        inputs: &[NodeId],
    ) -> Result<Plan> {
        if let Some(&bad) = inputs.iter().find(|&&i| {
            !matches!(
                graph.nodes().get(i).map(|n| &n.kind),
                Some(NodeKind::Input(..))
            )
        }) {
            return Err(Error::InvalidArgument(format!(
                "node {bad} is not an input; gradients are taken with respect to inputs"
            )));
        }
        if batch == 0 {
            return Err(Error::InvalidArgument("batch size must be positive".into()));
        }
        let mut targets = outputs.to_vec();
        if let Some(l) = loss {
            if graph.shape(l)? != [Dim::Fixed(1), Dim::Fixed(1)] {
                return Err(Error::Shape(format!(
                    "the loss node {l} must be a scalar [1, 1], not {:?}",
                    graph.shape(l)?
                )));
            }
            targets.push(l);
        }
        let needed = graph.ancestors(&targets)?;
        let folded = folded_linears(graph, &needed, &targets);
        let kept: Vec<NodeId> = needed.iter().copied().filter(|&id| !folded[id]).collect();
        let mut plan = Self::layout(graph, batch, &kept)?;
        plan.loss = loss;
        for &id in &kept {
            if let Some(gemm) = plan.activated_gemm(graph, id, &folded) {
                plan.forward.push(Arc::new(gemm));
            } else if let NodeKind::Op(op) = &graph.nodes()[id].kind {
                op.forward(&mut Forward {
                    node: id,
                    shapes: &plan.shapes,
                    values: &plan.values,
                    out: &mut plan.forward,
                });
            }
        }
        if let Some(loss) = loss {
            plan.lower_backward(graph, loss, inputs)?;
        }
        plan.check()?;
        Ok(plan)
    }

    /// Node `id` as one gemm with its activation in the epilogue, when it is an activation
    /// whose linear layer is folded into it.
    fn activated_gemm(&self, graph: &Graph, id: NodeId, folded: &[bool]) -> Option<Gemm> {
        let (z, f) = graph.nodes()[id].kind.op()?.as_activation()?;
        if !folded[z] {
            return None;
        }
        let parts = graph.nodes()[z].kind.op()?.as_linear()?;
        let [m, n] = self.shapes[z];
        let g = GemmSpec {
            m,
            n,
            k: self.shapes[parts.x][1],
            ta: false,
            tb: false,
            acc: false,
        };
        let value = |n: NodeId| self.values[n].expect("operands are laid out");
        Some(Gemm {
            act: f,
            bias: parts.b.map(value),
            ..Gemm::product(g, value(parts.x), value(parts.w), value(id))
        })
    }

    /// Shapes, parameter slots (every parameter has one: checkpoints hold them all) and a
    /// buffer for every needed node.
    fn layout(graph: &Graph, batch: usize, needed: &[NodeId]) -> Result<Plan> {
        let nodes = graph.nodes();
        let mut param_locs = Vec::new();
        let mut off = 0usize;
        for p in graph.params() {
            let len = p.len();
            param_locs.push(Loc {
                buf: PARAMS,
                off,
                len,
            });
            off = (off + len).div_ceil(PARAM_ALIGN) * PARAM_ALIGN;
        }
        let total = off.max(PARAM_ALIGN);
        let shapes: Vec<[usize; 2]> = nodes
            .iter()
            .map(|n| [n.shape[0].resolve(batch), n.shape[1].resolve(batch)])
            .collect();
        let mut buf_lens = vec![total, total];
        let mut values = vec![None; nodes.len()];
        for &id in needed {
            let [r, c] = shapes[id];
            let len = r.checked_mul(c).ok_or_else(|| {
                Error::Limit(format!(
                    "node {id} of shape [{r}, {c}] overflows at batch {batch}"
                ))
            })?;
            values[id] = Some(match &nodes[id].kind {
                NodeKind::Param(i) => param_locs[*i],
                _ => alloc(&mut buf_lens, len),
            });
        }
        Ok(Plan {
            batch,
            buf_lens,
            param_locs,
            grads: vec![None; nodes.len()],
            shapes,
            values,
            forward: Vec::new(),
            backward: Vec::new(),
            loss: None,
            seed: None,
        })
    }

    /// Gradient slots for every node on a path from a parameter (or, when `inputs` is not
    /// empty, from one of those inputs) to the loss, then each op's backward lowering in
    /// reverse topological order.
    fn lower_backward(&mut self, graph: &Graph, loss: NodeId, inputs: &[NodeId]) -> Result<()> {
        let nodes = graph.nodes();
        let on_path = graph.ancestors(&[loss])?;
        let mut req = vec![false; nodes.len()];
        for &id in &on_path {
            let leaf = if inputs.is_empty() {
                matches!(nodes[id].kind, NodeKind::Param(_))
            } else {
                inputs.contains(&id)
            };
            req[id] = leaf || nodes[id].kind.operands().iter().any(|&o| req[o]);
        }
        for &id in &on_path {
            if req[id] {
                self.grads[id] = Some(match &nodes[id].kind {
                    NodeKind::Param(i) => Loc {
                        buf: GRADS,
                        ..self.param_locs[*i]
                    },
                    _ => alloc(&mut self.buf_lens, self.shapes[id][0] * self.shapes[id][1]),
                });
            }
        }
        self.seed = self.grads[loss];
        let mut written = vec![false; nodes.len()];
        written[loss] = true;
        for &id in on_path.iter().rev() {
            if let (true, NodeKind::Op(op)) = (req[id], &nodes[id].kind) {
                op.backward(&mut Backward {
                    node: id,
                    shapes: &self.shapes,
                    values: &self.values,
                    grads: &self.grads,
                    req: &req,
                    written: &mut written,
                    out: &mut self.backward,
                });
            }
        }
        // Parameters the loss does not depend on get a zero gradient.
        for (i, p) in graph
            .params()
            .iter()
            .enumerate()
            .filter(|_| inputs.is_empty())
        {
            if !written[p.node] {
                self.backward.push(Arc::new(Zero {
                    y: Loc {
                        buf: GRADS,
                        ..self.param_locs[i]
                    },
                }));
            }
        }
        Ok(())
    }

    /// Every instruction reads buffers other than the one it writes (one GPU dispatch cannot
    /// bind a buffer both read-only and writable).
    fn check(&self) -> Result<()> {
        for ins in self.forward.iter().chain(&self.backward) {
            let d = ins.dst();
            if ins.srcs().iter().any(|s| s.buf == d.buf) {
                return Err(Error::InvalidArgument(format!(
                    "internal: an instruction reads and writes buffer {}: {ins:?}",
                    d.buf
                )));
            }
        }
        Ok(())
    }
}
