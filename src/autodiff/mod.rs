//! A minimal reverse-mode autodiff over 2-D f32 tensors with two backends.
//!
//! Build a [`Graph`] (inputs, parameters, ops), then compile it for a fixed batch size into an
//! [`Executor`]: [`CpuExecutor`] (plain Rust, the `gemm` crate for products, generic over f32 and
//! f64 so gradients can be checked by finite differences in f64) or [`GpuExecutor`] (every
//! buffer and bind group made once; a whole training step -- forward, backward, global
//! grad-norm clipping and AdamW -- is one recording replayed with one submit and no read-back).
//!
//! Both backends run the same lowered program ([`plan::Plan`]): the backward instructions come
//! from one reverse topological walk over the nodes the loss depends on.
//!
//! ```
//! use fisherflow::autodiff::{CpuExecutor, Executor, Graph, Init, OptimConfig};
//! # fn main() -> fisherflow::Result<()> {
//! let mut g = Graph::new(7);
//! let x = g.input("x", 3)?;
//! let y = g.input("y", 1)?;
//! let w = g.param("w", &[3, 1], Init::Zeros)?;
//! let b = g.param("b", &[1], Init::Zeros)?;
//! let p = g.linear(x, w, Some(b))?;
//! let loss = g.mse_loss(p, y)?;
//! let mut ex = CpuExecutor::<f32>::new(&g, 2, &[p], Some(loss), OptimConfig::default())?;
//! ex.set_input("x", &[1.0, 2.0, 3.0, 0.0, 1.0, 0.0])?;
//! ex.set_input("y", &[1.0, -1.0])?;
//! for _ in 0..3 {
//!     ex.step()?;
//! }
//! assert!(ex.loss()? < 1.0);
//! # Ok(()) }
//! ```

pub mod cpu;
pub mod gpu;
pub mod graph;
pub mod infer;
pub mod kernels;
pub mod op;
pub mod ops;
pub mod plan;
pub mod program;

pub use crate::kernels::optim::{OptimConfig, OptimKind};
pub use crate::kernels::Activation;
pub use crate::kernels::Real;
pub use crate::rng::Rng;
pub use cpu::{CpuExecutor, CpuReal};
pub use gpu::{GpuExecutor, GpuForward};
pub use graph::{Dim, Graph, Init, NodeId, NodeKind, ParamInfo, Shape};
pub use infer::InferencePlan;
pub use op::{Backward, Forward, GpuRun, Instr, LinearParts, Loc, Mem, Op, Reader};
pub use program::{CpuProgram, GpuProgram};

use crate::error::{Error, Result};

/// A named f32 tensor (parameters, gradients, optimizer moments) for checkpoints.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    /// Unique name.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Row-major data.
    pub data: Vec<f32>,
}

/// Adam moments and step count, for checkpoints. Tensors are named `adam_m.<param>` and
/// `adam_v.<param>`.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState {
    /// Number of optimizer steps taken.
    pub step: u64,
    /// First and second moments of every parameter.
    pub tensors: Vec<NamedTensor>,
}

/// A compiled graph that can run forward, backward and optimizer steps.
pub trait Executor {
    /// `cpu-f32`, `cpu-f64` or `gpu (<adapter>)`.
    fn backend_name(&self) -> String;
    /// The batch size the graph was compiled for.
    fn batch(&self) -> usize;
    /// Set input `name` (row-major, exactly the input's size for this batch).
    fn set_input(&mut self, name: &str, data: &[f32]) -> Result<()>;
    /// Compute the outputs (and the loss, when compiled with one).
    fn forward(&mut self) -> Result<()>;
    /// Forward, then every parameter gradient (no optimizer step).
    fn forward_backward(&mut self) -> Result<()>;
    /// One training step: forward, backward, gradient clipping, optimizer update. The GPU
    /// backend submits it and returns without waiting; reading anything back waits.
    fn step(&mut self) -> Result<()>;
    /// The loss of the last forward pass.
    fn loss(&mut self) -> Result<f32>;
    /// Mean loss over the steps since the last call (`None` when no step ran).
    fn take_mean_loss(&mut self) -> Result<Option<f32>>;
    /// The value of a node computed by the last forward pass.
    fn output(&mut self, node: NodeId) -> Result<Vec<f32>>;
    /// Parameter gradients of the last backward pass (before clipping).
    fn grads(&mut self) -> Result<Vec<NamedTensor>>;
    /// Global gradient norm of the last training step (before clipping).
    fn last_grad_norm(&mut self) -> Result<f32>;
    /// Current parameter values.
    fn params(&self) -> Result<Vec<NamedTensor>>;
    /// Replace parameter values (names and shapes must match; all parameters required).
    fn load_params(&mut self, params: &[NamedTensor]) -> Result<()>;
    /// Adam moments and step count.
    fn optimizer_state(&self) -> Result<OptimizerState>;
    /// Restore Adam moments and step count.
    fn load_optimizer_state(&mut self, state: &OptimizerState) -> Result<()>;
    /// Change the learning rate for the following steps.
    fn set_lr(&mut self, lr: f32) -> Result<()>;
    /// Number of optimizer steps taken.
    fn step_count(&self) -> Result<u64>;
}

/// Match `given` against the graph's parameters by name and shape; returns the data in
/// parameter order.
pub(crate) fn match_tensors<'a>(
    graph_params: &[ParamInfo],
    prefix: &str,
    given: &'a [NamedTensor],
) -> Result<Vec<&'a [f32]>> {
    graph_params
        .iter()
        .map(|p| {
            let name = format!("{prefix}{}", p.name);
            let t = given
                .iter()
                .find(|t| t.name == name)
                .ok_or_else(|| Error::Checkpoint(format!("tensor {name:?} is missing")))?;
            let n: usize = t.shape.iter().product();
            if t.shape != p.shape || t.data.len() != n {
                return Err(Error::Checkpoint(format!(
                    "tensor {name:?} has shape {:?} ({} values); the model expects {:?}",
                    t.shape,
                    t.data.len(),
                    p.shape
                )));
            }
            if let Some(bad) = t.data.iter().find(|v| !v.is_finite()) {
                return Err(Error::NonFinite(format!("tensor {name:?} holds {bad}")));
            }
            Ok(t.data.as_slice())
        })
        .collect()
}
