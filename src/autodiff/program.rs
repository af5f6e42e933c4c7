//! Running an [`InferencePlan`]: [`GpuProgram`] (every buffer made once, the forward pass one
//! replayable recording, f32 or f16 storage) and [`CpuProgram`] (the same instructions on the
//! CPU backend).

use crate::autodiff::graph::{Graph, NodeId};
use crate::autodiff::infer::{Fill, InferencePlan, PARAMS};
use crate::autodiff::op::{GpuRun, Instr, Loc, Mem};
use crate::autodiff::{match_tensors, NamedTensor};
use crate::error::{Error, Result};
use crate::gpu::{GpuContext, GpuTensor, Recorder};
use crate::kernels::Precision;

/// The largest magnitude an f16 holds.
const F16_MAX: f32 = 65504.0;

/// The parameters of `graph` from `params` (names and shapes checked), laid out as the plan
/// stores them.
fn param_values(graph: &Graph, plan: &InferencePlan, params: &[NamedTensor]) -> Result<Vec<f32>> {
    let data = match_tensors(graph.params(), "", params)?;
    let mut all = vec![0f32; plan.buf_lens[PARAMS]];
    for ((d, l), p) in data.iter().zip(&plan.param_locs).zip(graph.params()) {
        if plan.precision == Precision::F16 {
            if let Some(v) = d.iter().find(|v| v.abs() > F16_MAX) {
                return Err(Error::InvalidArgument(format!(
                    "parameter {:?} holds {v}, which f16 cannot represent (|x| ≤ {F16_MAX})",
                    p.name
                )));
            }
        }
        all[l.off..l.off + l.len].copy_from_slice(d);
    }
    Ok(all)
}

/// An inference program on the GPU: its buffers, parameters and recorded forward pass.
pub struct GpuProgram<'c> {
    ctx: &'c GpuContext,
    plan: InferencePlan,
    bufs: Vec<GpuTensor<f32>>,
    rec: Recorder,
}

impl std::fmt::Debug for GpuProgram<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuProgram")
            .field("batch", &self.plan.batch)
            .field("precision", &self.plan.precision)
            .field("dispatches", &self.rec.dispatches())
            .finish()
    }
}

impl<'c> GpuProgram<'c> {
    /// Compile `graph`'s forward pass of `outputs` for batch size `batch` with the
    /// parameters `params`, its f16-capable buffers in `precision`.
    pub fn new(
        ctx: &'c GpuContext,
        graph: &Graph,
        batch: usize,
        outputs: &[NodeId],
        precision: Precision,
        params: &[NamedTensor],
    ) -> Result<Self> {
        precision.check(ctx)?;
        let plan = InferencePlan::build(graph, batch, outputs, precision)?;
        let values = param_values(graph, &plan, params)?;
        let max = ctx.max_binding();
        let mut bufs = Vec::with_capacity(plan.buf_lens.len());
        for (&n, &storage) in plan.buf_lens.iter().zip(&plan.buf_storage) {
            let elem = if storage { precision.bytes() } else { 4 };
            let bytes = n as u64 * elem;
            if bytes > max {
                return Err(Error::Limit(format!(
                    "a tensor of {n} values at batch {batch} needs {bytes} bytes; the adapter \
                     binds at most {max}: use a smaller batch"
                )));
            }
            bufs.push(GpuTensor::zeros(ctx, &[(bytes as usize).div_ceil(4)])?);
        }
        match precision {
            Precision::F32 => bufs[PARAMS].write(ctx, &values)?,
            Precision::F16 => {
                let mut h: Vec<half::f16> =
                    values.iter().map(|&v| half::f16::from_f32(v)).collect();
                h.resize(bufs[PARAMS].len() * 2, half::f16::ZERO);
                bufs[PARAMS].write(ctx, bytemuck::cast_slice(&h))?;
            }
        }
        let mut rec = Recorder::new();
        let mut run = GpuRun {
            ctx,
            bufs: &bufs,
            precision,
            rec: &mut rec,
        };
        for ins in &plan.instrs {
            ins.record(&mut run)?;
        }
        Ok(Self {
            ctx,
            plan,
            bufs,
            rec,
        })
    }

    /// The lowered program.
    pub fn plan(&self) -> &InferencePlan {
        &self.plan
    }

    fn tensor(&self, l: Loc, shape: &[usize]) -> Result<GpuTensor<f32>> {
        self.bufs[l.buf].view(l.off, shape)
    }

    /// The f32 tensor of input `name` (`[rows, cols]`): write it, or record into it, before
    /// the forward pass.
    pub fn input(&self, name: &str) -> Result<GpuTensor<f32>> {
        let (_, id, l) = self
            .plan
            .inputs
            .iter()
            .find(|(n, _, _)| n == name)
            .ok_or_else(|| {
                Error::InvalidArgument(format!("the program reads no input {name:?}"))
            })?;
        self.tensor(*l, &self.plan.shapes[*id])
    }

    /// The f32 tensor of output `node` after a forward pass.
    pub fn output(&self, node: NodeId) -> Result<GpuTensor<f32>> {
        self.tensor(self.plan.output_loc(node)?, &self.plan.shapes[node])
    }

    /// Record `input ← value` everywhere (an input that is the same for every row, such as
    /// the time of a field evaluation, set inside a recording).
    pub fn record_fill(&self, rec: &mut Recorder, input: &str, value: f32) -> Result<()> {
        let l = self
            .plan
            .input_loc(input, self.input(input)?.len())?
            .expect("the input exists");
        let mut run = GpuRun {
            ctx: self.ctx,
            bufs: &self.bufs,
            precision: self.plan.precision,
            rec,
        };
        Fill { y: l, c: value }.record(&mut run)
    }

    /// The recorded forward pass (append it to a larger recording).
    pub fn recording(&self) -> &Recorder {
        &self.rec
    }

    /// Run the forward pass (one submit, waits).
    pub fn run(&self) -> Result<()> {
        self.rec.run(self.ctx)
    }
}

/// An inference program on the CPU backend (f32): every buffer made once, so a run allocates
/// nothing.
#[derive(Debug)]
pub struct CpuProgram {
    plan: InferencePlan,
    mem: Mem<f32>,
}

impl CpuProgram {
    /// Compile `graph`'s forward pass of `outputs` for batch size `batch` with the
    /// parameters `params`.
    pub fn new(
        graph: &Graph,
        batch: usize,
        outputs: &[NodeId],
        params: &[NamedTensor],
    ) -> Result<Self> {
        crate::kernels::cpu::init()?;
        let plan = InferencePlan::build(graph, batch, outputs, Precision::F32)?;
        let values = param_values(graph, &plan, params)?;
        let mut mem = Mem::planned(&plan.buf_lens, &plan.instrs);
        mem.bufs[PARAMS].copy_from_slice(&values);
        Ok(Self { plan, mem })
    }

    /// The lowered program.
    pub fn plan(&self) -> &InferencePlan {
        &self.plan
    }

    /// Set input `name` (row-major, exactly its size).
    pub fn set_input(&mut self, name: &str, data: &[f32]) -> Result<()> {
        let l = self.plan.input_loc(name, data.len())?.ok_or_else(|| {
            Error::InvalidArgument(format!("the program reads no input {name:?}"))
        })?;
        self.mem.get_mut(l).copy_from_slice(data);
        Ok(())
    }

    /// Input `name`'s values, mutably (to write them in place).
    pub fn input_mut(&mut self, name: &str) -> Result<&mut [f32]> {
        let l = self
            .plan
            .inputs
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, l)| *l)
            .ok_or_else(|| {
                Error::InvalidArgument(format!("the program reads no input {name:?}"))
            })?;
        Ok(self.mem.get_mut(l))
    }

    /// Run the forward pass.
    pub fn run(&mut self) {
        for ins in &self.plan.instrs {
            ins.run_f32(&mut self.mem);
        }
    }

    /// Output `node` after [`CpuProgram::run`].
    pub fn output(&self, node: NodeId) -> Result<&[f32]> {
        Ok(self.mem.get(self.plan.output_loc(node)?))
    }
}
