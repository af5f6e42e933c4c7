//! The CPU backend: runs a [`Plan`] in plain Rust, products through the `gemm` crate and
//! element-wise work on the same threads ([`crate::kernels::cpu`]). Generic over f32 and f64
//! (f64 for finite-difference gradient checks). Every buffer is made when the plan is
//! compiled: a step allocates nothing.

use crate::autodiff::graph::{Graph, NodeId, ParamInfo};
use crate::autodiff::op::{Instr, Loc, Mem};
use crate::autodiff::plan::{Plan, GRADS, PARAMS};
use crate::autodiff::{match_tensors, Executor, NamedTensor, OptimConfig, OptimizerState};
use crate::error::{Error, Result};
#[cfg(doc)]
use crate::kernels::optim::adam_cpu;
use crate::kernels::optim::{clip_scale, OptimKind};
use crate::kernels::{cpu, Real};

/// A float the CPU backend runs instructions in (f32, or f64 for gradient checks).
pub trait CpuReal: Real {
    /// Run `ins` on `mem`.
    fn run(ins: &dyn Instr, mem: &mut Mem<Self>);
}

impl CpuReal for f32 {
    fn run(ins: &dyn Instr, mem: &mut Mem<f32>) {
        ins.run_f32(mem)
    }
}

impl CpuReal for f64 {
    fn run(ins: &dyn Instr, mem: &mut Mem<f64>) {
        ins.run_f64(mem)
    }
}

/// The CPU executor; see [`Executor`].
#[derive(Debug)]
pub struct CpuExecutor<T: CpuReal = f32> {
    params_info: Vec<ParamInfo>,
    inputs: Vec<(String, NodeId)>,
    plan: Plan,
    mem: Mem<T>,
    m: Vec<T>,
    v: Vec<T>,
    step: u64,
    cfg: OptimConfig,
    last_norm: f64,
    loss_sum: f64,
    loss_steps: u64,
}

impl<T: CpuReal> CpuExecutor<T> {
    /// Compile `graph` for batch size `batch`, computing `outputs` and (when given) the loss
    /// and its gradients. Parameters start at [`Graph::initial_params`].
    pub fn new(
        graph: &Graph,
        batch: usize,
        outputs: &[NodeId],
        loss: Option<NodeId>,
        cfg: OptimConfig,
    ) -> Result<Self> {
        cfg.validate()?;
        cpu::init()?;
        let plan = Plan::build(graph, batch, outputs, loss)?;
        let mem = Mem::planned(&plan.buf_lens, plan.forward.iter().chain(&plan.backward));
        let total = plan.buf_lens[PARAMS];
        let mut ex = Self {
            params_info: graph.params().to_vec(),
            inputs: graph.inputs().to_vec(),
            plan,
            mem,
            m: vec![T::default(); total],
            v: vec![T::default(); total],
            step: 0,
            cfg,
            last_norm: 0.0,
            loss_sum: 0.0,
            loss_steps: 0,
        };
        ex.load_params(&graph.initial_params())?;
        Ok(ex)
    }

    /// The lowered program.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Set a parameter from f64 values (finite-difference checks).
    pub fn set_param_f64(&mut self, index: usize, data: &[f64]) -> Result<()> {
        let loc = *self
            .plan
            .param_locs
            .get(index)
            .ok_or_else(|| Error::InvalidArgument(format!("no parameter {index}")))?;
        if data.len() != loc.len {
            return Err(Error::Shape(format!(
                "parameter {index} has {} elements, {} given",
                loc.len,
                data.len()
            )));
        }
        for (d, s) in self.mem.bufs[PARAMS][loc.off..loc.off + loc.len]
            .iter_mut()
            .zip(data)
        {
            *d = T::from_f64(*s);
        }
        Ok(())
    }

    /// A parameter as f64.
    pub fn param_f64(&self, index: usize) -> Result<Vec<f64>> {
        let loc = *self
            .plan
            .param_locs
            .get(index)
            .ok_or_else(|| Error::InvalidArgument(format!("no parameter {index}")))?;
        Ok(self.sl(loc).iter().map(|v| v.to_f64()).collect())
    }

    /// A parameter's gradient as f64 (after [`Executor::forward_backward`]).
    pub fn grad_f64(&self, index: usize) -> Result<Vec<f64>> {
        let loc = *self
            .plan
            .param_locs
            .get(index)
            .ok_or_else(|| Error::InvalidArgument(format!("no parameter {index}")))?;
        Ok(self
            .sl(Loc { buf: GRADS, ..loc })
            .iter()
            .map(|v| v.to_f64())
            .collect())
    }

    /// The loss as f64.
    pub fn loss_f64(&self) -> Result<f64> {
        let l = self.loss_loc()?;
        Ok(self.sl(l)[0].to_f64())
    }

    fn loss_loc(&self) -> Result<Loc> {
        let l = self.plan.loss.ok_or_else(|| {
            Error::InvalidArgument("the graph was compiled without a loss".into())
        })?;
        Ok(self.plan.values[l].expect("loss value"))
    }

    fn sl(&self, l: Loc) -> &[T] {
        self.mem.get(l)
    }

    fn run(&mut self, backward: bool) -> Result<()> {
        if backward && self.plan.loss.is_none() {
            return Err(Error::InvalidArgument(
                "the graph was compiled without a loss; there is nothing to differentiate".into(),
            ));
        }
        for ins in &self.plan.forward {
            T::run(ins.as_ref(), &mut self.mem);
        }
        if backward {
            if let Some(s) = self.plan.seed {
                self.mem.bufs[s.buf][s.off] = T::from_f64(1.0);
            }
            for ins in &self.plan.backward {
                T::run(ins.as_ref(), &mut self.mem);
            }
        }
        Ok(())
    }

    /// One training step with a clock around every instruction and the optimizer: each
    /// one's label (`forward: Gemm`, `backward: ColSum`, `optimizer`, …) and time in
    /// nanoseconds.
    pub fn profile_step(&mut self) -> Result<Vec<(String, f64)>> {
        self.loss_loc()?;
        let mut out = Vec::new();
        let mut timed = |label: String, f: &mut dyn FnMut()| {
            let t0 = std::time::Instant::now();
            f();
            out.push((label, t0.elapsed().as_nanos() as f64));
        };
        let kind = |ins: &dyn Instr| {
            let d = format!("{ins:?}");
            d.split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or("")
                .to_string()
        };
        for ins in &self.plan.forward {
            let m = &mut self.mem;
            timed(format!("forward: {}", kind(ins.as_ref())), &mut || {
                T::run(ins.as_ref(), m)
            });
        }
        if let Some(s) = self.plan.seed {
            self.mem.bufs[s.buf][s.off] = T::from_f64(1.0);
        }
        for ins in &self.plan.backward {
            let m = &mut self.mem;
            timed(format!("backward: {}", kind(ins.as_ref())), &mut || {
                T::run(ins.as_ref(), m)
            });
        }
        timed("optimizer (clip + AdamW)".into(), &mut || self.optimize());
        let l = self.loss_f64()?;
        self.loss_sum += l;
        self.loss_steps += 1;
        Ok(out)
    }

    fn optimize(&mut self) {
        let g = &self.mem.bufs[GRADS];
        let sumsq = cpu::sum_chunks(g.len(), 1, |r| {
            g[r].iter().map(|v| v.to_f64() * v.to_f64()).sum()
        });
        self.last_norm = sumsq.sqrt();
        let scale = clip_scale(self.last_norm, self.cfg.max_grad_norm);
        self.step += 1;
        let (cfg, step) = (self.cfg, self.step);
        let [p, g] = self
            .mem
            .bufs
            .get_disjoint_mut([PARAMS, GRADS])
            .expect("parameters and gradients are two buffers");
        let g: &[T] = g;
        cpu::for_chunks3(p, &mut self.m, &mut self.v, 1, |o, p, m, v| {
            adam_chunk(&cfg, step, scale, p, &g[o..o + p.len()], m, v)
        });
    }

    fn named(&self, buf: &[T], prefix: &str) -> Vec<NamedTensor> {
        self.params_info
            .iter()
            .zip(&self.plan.param_locs)
            .map(|(p, l)| NamedTensor {
                name: format!("{prefix}{}", p.name),
                shape: p.shape.clone(),
                data: buf[l.off..l.off + l.len]
                    .iter()
                    .map(|v| v.to_f64() as f32)
                    .collect(),
            })
            .collect()
    }
}

/// One Adam/AdamW update of a chunk of parameters: the update of [`adam_cpu`] computed in `T`
/// (f32 like the GPU kernel, or f64), its constants out of the loop.
fn adam_chunk<T: Real>(
    cfg: &OptimConfig,
    t: u64,
    scale: f64,
    p: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
) {
    let (b1, b2) = (cfg.beta1 as f64, cfg.beta2 as f64);
    let (lr, wd) = (cfg.lr as f64, cfg.weight_decay as f64);
    let (decay, l2) = match cfg.kind {
        OptimKind::AdamW => (1.0 - lr * wd, 0.0),
        OptimKind::Adam => (1.0, wd),
    };
    let c = |v: f64| T::from_f64(v);
    let (b1, nb1, b2, nb2) = (c(b1), c(1.0 - b1), c(b2), c(1.0 - b2));
    let step = c(lr / (1.0 - (b1.to_f64()).powf(t as f64)));
    let inv_bc2 = c(1.0 / (1.0 - (b2.to_f64()).powf(t as f64)));
    let (scale, decay, l2, eps) = (c(scale), c(decay), c(l2), c(cfg.eps as f64));
    for (((pi, &gi), mi), vi) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let p0 = *pi;
        let gs = gi * scale + l2 * p0;
        let mn = b1 * *mi + nb1 * gs;
        let vn = b2 * *vi + nb2 * gs * gs;
        *pi = p0 * decay - step * mn / ((vn * inv_bc2).sqrt() + eps);
        *mi = mn;
        *vi = vn;
    }
}

/// Look up input `name` and check `data` against its size for this plan.
pub(crate) fn input_loc(
    inputs: &[(String, NodeId)],
    plan: &Plan,
    name: &str,
    len: usize,
) -> Result<Option<Loc>> {
    let (_, id) = inputs
        .iter()
        .find(|(n, _)| n == name)
        .ok_or_else(|| Error::InvalidArgument(format!("the graph has no input {name:?}")))?;
    let [r, c] = plan.shapes[*id];
    if len != r * c {
        return Err(Error::Shape(format!(
            "input {name:?} is [{r}, {c}] ({} values) at batch {}; {len} values given",
            r * c,
            plan.batch
        )));
    }
    Ok(plan.values[*id])
}

impl<T: CpuReal> Executor for CpuExecutor<T> {
    fn backend_name(&self) -> String {
        T::NAME.to_string()
    }
    fn batch(&self) -> usize {
        self.plan.batch
    }
    fn set_input(&mut self, name: &str, data: &[f32]) -> Result<()> {
        if let Some(l) = input_loc(&self.inputs, &self.plan, name, data.len())? {
            for (d, s) in self.mem.bufs[l.buf][l.off..l.off + l.len]
                .iter_mut()
                .zip(data)
            {
                *d = T::from_f64(*s as f64);
            }
        }
        Ok(())
    }
    fn forward(&mut self) -> Result<()> {
        self.run(false)
    }
    fn forward_backward(&mut self) -> Result<()> {
        self.run(true)
    }
    fn step(&mut self) -> Result<()> {
        self.run(true)?;
        self.optimize();
        let l = self.loss_f64()?;
        self.loss_sum += l;
        self.loss_steps += 1;
        Ok(())
    }
    fn loss(&mut self) -> Result<f32> {
        Ok(self.loss_f64()? as f32)
    }
    fn take_mean_loss(&mut self) -> Result<Option<f32>> {
        let out = (self.loss_steps > 0).then(|| (self.loss_sum / self.loss_steps as f64) as f32);
        self.loss_sum = 0.0;
        self.loss_steps = 0;
        Ok(out)
    }
    fn output(&mut self, node: NodeId) -> Result<Vec<f32>> {
        let l = self
            .plan
            .values
            .get(node)
            .copied()
            .flatten()
            .ok_or_else(|| {
                Error::InvalidArgument(format!("node {node} is not computed by this executor"))
            })?;
        Ok(self.sl(l).iter().map(|v| v.to_f64() as f32).collect())
    }
    fn grads(&mut self) -> Result<Vec<NamedTensor>> {
        Ok(self.named(&self.mem.bufs[GRADS], ""))
    }
    fn last_grad_norm(&mut self) -> Result<f32> {
        Ok(self.last_norm as f32)
    }
    fn params(&self) -> Result<Vec<NamedTensor>> {
        Ok(self.named(&self.mem.bufs[PARAMS], ""))
    }
    fn load_params(&mut self, params: &[NamedTensor]) -> Result<()> {
        let data = match_tensors(&self.params_info, "", params)?;
        for (d, l) in data.iter().zip(&self.plan.param_locs) {
            for (dst, s) in self.mem.bufs[PARAMS][l.off..l.off + l.len]
                .iter_mut()
                .zip(*d)
            {
                *dst = T::from_f64(*s as f64);
            }
        }
        Ok(())
    }
    fn optimizer_state(&self) -> Result<OptimizerState> {
        let mut tensors = self.named(&self.m, "adam_m.");
        tensors.extend(self.named(&self.v, "adam_v."));
        Ok(OptimizerState {
            step: self.step,
            tensors,
        })
    }
    fn load_optimizer_state(&mut self, state: &OptimizerState) -> Result<()> {
        let m = match_tensors(&self.params_info, "adam_m.", &state.tensors)?;
        let v = match_tensors(&self.params_info, "adam_v.", &state.tensors)?;
        for ((dm, dv), l) in m.iter().zip(&v).zip(&self.plan.param_locs) {
            for i in 0..l.len {
                self.m[l.off + i] = T::from_f64(dm[i] as f64);
                self.v[l.off + i] = T::from_f64(dv[i] as f64);
            }
        }
        self.step = state.step;
        Ok(())
    }
    fn set_lr(&mut self, lr: f32) -> Result<()> {
        let cfg = OptimConfig { lr, ..self.cfg };
        cfg.validate()?;
        self.cfg = cfg;
        Ok(())
    }
    fn step_count(&self) -> Result<u64> {
        Ok(self.step)
    }
}
