//! The GPU backend: a [`Plan`] compiled once into recordings. Every buffer and bind group is
//! made at compile time; a training step (forward, backward, global grad-norm clipping, AdamW,
//! loss accumulation) is one [`Recorder`] replayed with one submit and no host read-back.
//!
//! All parameters live in one buffer (gradients and Adam moments likewise, same layout), so
//! the gradient norm and the optimizer are single dispatches over contiguous memory.

use crate::autodiff::graph::{Graph, NodeId, ParamInfo};
use crate::autodiff::kernels::{self as k, AutodiffParams};
use crate::autodiff::op::{GpuRun, Loc};
use crate::autodiff::plan::{Plan, GRADS, PARAMS};
use crate::autodiff::{match_tensors, Executor, NamedTensor, OptimConfig, OptimizerState};
use crate::error::{Error, Result};
use crate::gpu::{Arg, GpuContext, GpuTensor, Recorder, Work};
use crate::kernels::optim::GpuOptimizer;
use crate::kernels::Precision;

/// A plan with its buffers and recordings.
struct Compiled {
    plan: Plan,
    bufs: Vec<GpuTensor<f32>>,
    inputs: Vec<(String, NodeId, GpuTensor<f32>)>,
    fwd: Recorder,
    bwd: Recorder,
}

fn arg(bufs: &[GpuTensor<f32>], l: Loc) -> Arg<'_> {
    Arg::Range {
        buffer: bufs[l.buf].buffer(),
        offset: l.off as u64 * 4,
        size: l.len.max(1) as u64 * 4,
    }
}

fn compile(
    ctx: &GpuContext,
    graph: &Graph,
    batch: usize,
    outputs: &[NodeId],
    loss: Option<NodeId>,
    shared_params: Option<&GpuTensor<f32>>,
    wrt: &[NodeId],
) -> Result<Compiled> {
    let plan = Plan::build_wrt(graph, batch, outputs, loss, wrt)?;
    let max = ctx.max_binding();
    let mut bufs = Vec::with_capacity(plan.buf_lens.len());
    for (i, &n) in plan.buf_lens.iter().enumerate() {
        if n as u64 * 4 > max {
            return Err(Error::Limit(format!(
                "a tensor of {n} f32 at batch {batch} exceeds the adapter's storage binding \
                 limit of {max} bytes; use a smaller batch"
            )));
        }
        match (i, shared_params) {
            (PARAMS, Some(p)) => {
                if p.len() != n {
                    return Err(Error::Shape(format!(
                        "shared parameter buffer holds {} values, the graph needs {n}",
                        p.len()
                    )));
                }
                bufs.push(p.clone());
            }
            _ => bufs.push(GpuTensor::zeros(ctx, &[n])?),
        }
    }
    let mut inputs = Vec::new();
    for (name, id) in graph.inputs() {
        if let Some(l) = plan.values[*id] {
            inputs.push((name.clone(), *id, bufs[l.buf].reshape(&plan.shapes[*id])?));
        }
    }
    let record = |instrs: &[std::sync::Arc<dyn crate::autodiff::Instr>]| -> Result<Recorder> {
        let mut rec = Recorder::new();
        let mut run = GpuRun {
            ctx,
            bufs: &bufs,
            precision: Precision::F32,
            rec: &mut rec,
        };
        for ins in instrs {
            ins.record(&mut run)?;
        }
        Ok(rec)
    };
    let fwd = record(&plan.forward)?;
    let bwd = record(&plan.backward)?;
    if let Some(s) = plan.seed {
        ctx.queue().write_buffer(
            bufs[s.buf].buffer(),
            s.off as u64 * 4,
            bytemuck::bytes_of(&1f32),
        );
    }
    Ok(Compiled {
        plan,
        bufs,
        inputs,
        fwd,
        bwd,
    })
}

impl Compiled {
    fn input(&self, name: &str) -> Result<&GpuTensor<f32>> {
        self.inputs
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, t)| t)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "no input {name:?} (or it is not used by what was compiled)"
                ))
            })
    }

    fn set_input(
        &self,
        ctx: &GpuContext,
        graph_inputs: &[(String, NodeId)],
        name: &str,
        data: &[f32],
    ) -> Result<()> {
        if crate::autodiff::cpu::input_loc(graph_inputs, &self.plan, name, data.len())?.is_some() {
            self.input(name)?.write(ctx, data)?;
        }
        Ok(())
    }

    fn value_loc(&self, node: NodeId) -> Result<Loc> {
        self.plan
            .values
            .get(node)
            .copied()
            .flatten()
            .ok_or_else(|| {
                Error::InvalidArgument(format!("node {node} is not computed by this executable"))
            })
    }

    fn read(&self, ctx: &GpuContext, l: Loc) -> Result<Vec<f32>> {
        let raw = crate::gpu::read_buffer(
            ctx,
            self.bufs[l.buf].buffer(),
            l.off as u64 * 4,
            l.len as u64 * 4,
        )?;
        Ok(bytemuck::cast_slice::<u8, f32>(&raw)[..l.len].to_vec())
    }

    fn output_tensor(&self, node: NodeId) -> Result<GpuTensor<f32>> {
        let l = self.value_loc(node)?;
        if l.buf == PARAMS {
            return Err(Error::InvalidArgument(format!(
                "node {node} is a parameter; read it with params()"
            )));
        }
        self.bufs[l.buf].reshape(&self.plan.shapes[node])
    }
}

fn split(params: &[ParamInfo], locs: &[Loc], all: &[f32], prefix: &str) -> Vec<NamedTensor> {
    params
        .iter()
        .zip(locs)
        .map(|(p, l)| NamedTensor {
            name: format!("{prefix}{}", p.name),
            shape: p.shape.clone(),
            data: all[l.off..l.off + l.len].to_vec(),
        })
        .collect()
}

/// The GPU executor; see the [module docs](self) and [`Executor`].
pub struct GpuExecutor<'c> {
    ctx: &'c GpuContext,
    graph: Graph,
    c: Compiled,
    m: GpuTensor<f32>,
    v: GpuTensor<f32>,
    opt: Option<GpuOptimizer>,
    loss_acc: GpuTensor<f32>,
    grad_rec: Recorder,
    step_rec: Recorder,
}

impl std::fmt::Debug for GpuExecutor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuExecutor")
            .field("batch", &self.c.plan.batch)
            .field("params", &self.graph.param_count())
            .field("step_dispatches", &self.step_rec.dispatches())
            .finish()
    }
}

impl<'c> GpuExecutor<'c> {
    /// Compile `graph` for batch size `batch` on `ctx`, computing `outputs` and (when given)
    /// the loss, its gradients and the optimizer step. Parameters start at
    /// [`Graph::initial_params`].
    pub fn new(
        ctx: &'c GpuContext,
        graph: &Graph,
        batch: usize,
        outputs: &[NodeId],
        loss: Option<NodeId>,
        cfg: OptimConfig,
    ) -> Result<Self> {
        Self::with_input_grads(ctx, graph, batch, outputs, loss, cfg, &[])
    }

    /// [`GpuExecutor::new`], differentiating the loss with respect to the named inputs instead
    /// of the parameters when `inputs` is not empty (see [`Plan::build_wrt`]); the gradients
    /// are in [`GpuExecutor::input_grad_tensor`] after a forward and backward pass.
    pub fn with_input_grads(
        ctx: &'c GpuContext,
        graph: &Graph,
        batch: usize,
        outputs: &[NodeId],
        loss: Option<NodeId>,
        cfg: OptimConfig,
        inputs: &[&str],
    ) -> Result<Self> {
        cfg.validate()?;
        let wrt = inputs
            .iter()
            .map(|n| graph.input_node(n))
            .collect::<Result<Vec<_>>>()?;
        let c = compile(ctx, graph, batch, outputs, loss, None, &wrt)?;
        let total = c.plan.buf_lens[PARAMS];
        let m = GpuTensor::zeros(ctx, &[total])?;
        let v = GpuTensor::zeros(ctx, &[total])?;
        let loss_acc = GpuTensor::zeros(ctx, &[2])?;
        let mut grad_rec = c.fwd.clone();
        grad_rec.extend(&c.bwd);
        let mut step_rec = grad_rec.clone();
        let opt = match loss {
            Some(l) => {
                let opt = GpuOptimizer::new(ctx, cfg, total)?;
                opt.record(ctx, &mut step_rec, &c.bufs[PARAMS], &c.bufs[GRADS], &m, &v)?;
                let ll = c.value_loc(l)?;
                let p = AutodiffParams {
                    s: 1.0,
                    ..Default::default()
                };
                let args = [arg(&c.bufs, ll), Arg::from(&loss_acc)];
                k::LOSS_ACCUM.launch(ctx, &mut step_rec, Work::Groups(1), &args, |_| p)?;
                Some(opt)
            }
            None => None,
        };
        let mut ex = Self {
            ctx,
            graph: graph.clone(),
            c,
            m,
            v,
            opt,
            loss_acc,
            grad_rec,
            step_rec,
        };
        ex.load_params(&graph.initial_params())?;
        Ok(ex)
    }

    /// The context this executor runs on.
    pub fn context(&self) -> &'c GpuContext {
        self.ctx
    }

    /// The lowered program.
    pub fn plan(&self) -> &Plan {
        &self.c.plan
    }

    /// The GPU tensor of input `name` (`[rows, cols]`), for kernels that write inputs in the
    /// same submission as the step.
    pub fn input_tensor(&self, name: &str) -> Result<&GpuTensor<f32>> {
        self.c.input(name)
    }

    /// The GPU tensor holding a computed (non-parameter) node.
    pub fn output_tensor(&self, node: NodeId) -> Result<GpuTensor<f32>> {
        self.c.output_tensor(node)
    }

    /// The GPU tensor holding the gradient of input `name` (`[rows, cols]`), for an executor
    /// made by [`GpuExecutor::with_input_grads`].
    pub fn input_grad_tensor(&self, name: &str) -> Result<GpuTensor<f32>> {
        let id = self.graph.input_node(name)?;
        let l = self.c.plan.grads[id].ok_or_else(|| {
            Error::InvalidArgument(format!(
                "input {name:?} has no gradient (not asked for, or the loss does not depend on it)"
            ))
        })?;
        self.c.bufs[l.buf].view(l.off, &self.c.plan.shapes[id])
    }

    /// Append the forward and backward passes (no optimizer step) to `rec`.
    pub fn record_forward_backward(&self, rec: &mut Recorder) -> Result<()> {
        self.need_loss()?;
        rec.extend(&self.grad_rec);
        Ok(())
    }

    /// The buffer holding every parameter (see [`Plan::param_locs`] for the layout).
    pub fn params_tensor(&self) -> &GpuTensor<f32> {
        &self.c.bufs[PARAMS]
    }

    /// Append the forward pass to `rec`.
    pub fn record_forward(&self, rec: &mut Recorder) {
        rec.extend(&self.c.fwd);
    }

    /// Append a whole training step (forward, backward, clipping, optimizer, loss
    /// accumulation) to `rec`. Errors when compiled without a loss.
    pub fn record_step(&self, rec: &mut Recorder) -> Result<()> {
        self.need_loss()?;
        rec.extend(&self.step_rec);
        Ok(())
    }

    /// The recording of one training step.
    pub fn step_recording(&self) -> &Recorder {
        &self.step_rec
    }

    /// Compile a forward-only executable of `outputs` for another batch size that reads this
    /// executor's parameter buffer (so it always sees the current parameters).
    pub fn compile_forward(&self, batch: usize, outputs: &[NodeId]) -> Result<GpuForward<'c>> {
        let c = compile(
            self.ctx,
            &self.graph,
            batch,
            outputs,
            None,
            Some(&self.c.bufs[PARAMS]),
            &[],
        )?;
        Ok(GpuForward {
            ctx: self.ctx,
            graph_inputs: self.graph.inputs().to_vec(),
            c,
        })
    }

    /// Submit one training step without waiting (the step's one submit).
    pub fn submit_step(&mut self) -> Result<()> {
        self.need_loss()?;
        self.step_rec.submit(self.ctx)?;
        Ok(())
    }

    fn need_loss(&self) -> Result<&GpuOptimizer> {
        self.opt
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("the graph was compiled without a loss".into()))
    }

    fn read_all(&self, t: &GpuTensor<f32>) -> Result<Vec<f32>> {
        t.to_vec(self.ctx)
    }

    fn write_split(&self, t: &GpuTensor<f32>, data: &[&[f32]]) -> Result<()> {
        let mut all = vec![0f32; t.len()];
        for (d, l) in data.iter().zip(&self.c.plan.param_locs) {
            all[l.off..l.off + l.len].copy_from_slice(d);
        }
        t.write(self.ctx, &all)
    }
}

impl Executor for GpuExecutor<'_> {
    fn backend_name(&self) -> String {
        format!("gpu ({})", self.ctx.adapter_info().name)
    }
    fn batch(&self) -> usize {
        self.c.plan.batch
    }
    fn set_input(&mut self, name: &str, data: &[f32]) -> Result<()> {
        self.c.set_input(self.ctx, self.graph.inputs(), name, data)
    }
    fn forward(&mut self) -> Result<()> {
        self.c.fwd.run(self.ctx)
    }
    fn forward_backward(&mut self) -> Result<()> {
        self.need_loss()?;
        self.grad_rec.run(self.ctx)
    }
    fn step(&mut self) -> Result<()> {
        self.submit_step()
    }
    fn loss(&mut self) -> Result<f32> {
        let l = self.c.plan.loss.ok_or_else(|| {
            Error::InvalidArgument("the graph was compiled without a loss".into())
        })?;
        Ok(self.c.read(self.ctx, self.c.value_loc(l)?)?[0])
    }
    fn take_mean_loss(&mut self) -> Result<Option<f32>> {
        self.need_loss()?;
        let v = self.loss_acc.to_vec(self.ctx)?;
        self.loss_acc.write(self.ctx, &[0.0, 0.0])?;
        Ok((v[1] > 0.0).then(|| v[0] / v[1]))
    }
    fn output(&mut self, node: NodeId) -> Result<Vec<f32>> {
        self.c.read(self.ctx, self.c.value_loc(node)?)
    }
    fn grads(&mut self) -> Result<Vec<NamedTensor>> {
        self.need_loss()?;
        let all = self.read_all(&self.c.bufs[GRADS])?;
        Ok(split(
            self.graph.params(),
            &self.c.plan.param_locs,
            &all,
            "",
        ))
    }
    fn last_grad_norm(&mut self) -> Result<f32> {
        self.need_loss()?.grad_norm(self.ctx)
    }
    fn params(&self) -> Result<Vec<NamedTensor>> {
        let all = self.read_all(&self.c.bufs[PARAMS])?;
        Ok(split(
            self.graph.params(),
            &self.c.plan.param_locs,
            &all,
            "",
        ))
    }
    fn load_params(&mut self, params: &[NamedTensor]) -> Result<()> {
        let data = match_tensors(self.graph.params(), "", params)?;
        self.write_split(&self.c.bufs[PARAMS], &data)
    }
    fn optimizer_state(&self) -> Result<OptimizerState> {
        let opt = self.need_loss()?;
        let m = self.read_all(&self.m)?;
        let v = self.read_all(&self.v)?;
        let mut tensors = split(self.graph.params(), &self.c.plan.param_locs, &m, "adam_m.");
        tensors.extend(split(
            self.graph.params(),
            &self.c.plan.param_locs,
            &v,
            "adam_v.",
        ));
        Ok(OptimizerState {
            step: opt.step_count(self.ctx)?,
            tensors,
        })
    }
    fn load_optimizer_state(&mut self, state: &OptimizerState) -> Result<()> {
        self.need_loss()?;
        let m = match_tensors(self.graph.params(), "adam_m.", &state.tensors)?;
        let v = match_tensors(self.graph.params(), "adam_v.", &state.tensors)?;
        self.write_split(&self.m, &m)?;
        self.write_split(&self.v, &v)?;
        self.need_loss()?.set_step_count(self.ctx, state.step)
    }
    fn set_lr(&mut self, lr: f32) -> Result<()> {
        let ctx = self.ctx;
        let opt = self.opt.as_mut().ok_or_else(|| {
            Error::InvalidArgument("the graph was compiled without a loss".into())
        })?;
        let cfg = OptimConfig {
            lr,
            ..*opt.config()
        };
        opt.set_config(ctx, cfg)
    }
    fn step_count(&self) -> Result<u64> {
        self.need_loss()?.step_count(self.ctx)
    }
}

/// A forward-only executable for its own batch size that reads the parameter buffer of the
/// [`GpuExecutor`] it came from (for sampling).
pub struct GpuForward<'c> {
    ctx: &'c GpuContext,
    graph_inputs: Vec<(String, NodeId)>,
    c: Compiled,
}

impl GpuForward<'_> {
    /// The batch size it was compiled for.
    pub fn batch(&self) -> usize {
        self.c.plan.batch
    }
    /// The GPU tensor of input `name`.
    pub fn input_tensor(&self, name: &str) -> Result<&GpuTensor<f32>> {
        self.c.input(name)
    }
    /// Set input `name` from host memory.
    pub fn set_input(&self, name: &str, data: &[f32]) -> Result<()> {
        self.c.set_input(self.ctx, &self.graph_inputs, name, data)
    }
    /// The GPU tensor holding a computed node.
    pub fn output_tensor(&self, node: NodeId) -> Result<GpuTensor<f32>> {
        self.c.output_tensor(node)
    }
    /// The forward recording (append it to a sampler's recording).
    pub fn recording(&self) -> &Recorder {
        &self.c.fwd
    }
    /// Run the forward pass (one submit, waits).
    pub fn run(&self) -> Result<()> {
        self.c.fwd.run(self.ctx)
    }
    /// Read a computed node back.
    pub fn output(&self, node: NodeId) -> Result<Vec<f32>> {
        self.c.read(self.ctx, self.c.value_loc(node)?)
    }
}
