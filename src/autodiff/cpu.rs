//! The CPU backend: runs a [`Plan`] in plain Rust, products through `matrixmultiply`. Generic
//! over f32 and f64 (f64 for finite-difference gradient checks).

use crate::autodiff::graph::{Graph, NodeId, ParamInfo};
use crate::autodiff::plan::{BinOp, Instr, Loc, Plan, GRADS, PARAMS};
use crate::autodiff::{match_tensors, Executor, NamedTensor, OptimConfig, OptimizerState};
use crate::error::{Error, Result};
use crate::kernels::optim::{adam_cpu, clip_scale};
use crate::kernels::Real;

/// The CPU executor; see [`Executor`].
#[derive(Debug)]
pub struct CpuExecutor<T: Real = f32> {
    params_info: Vec<ParamInfo>,
    inputs: Vec<(String, NodeId)>,
    plan: Plan,
    bufs: Vec<Vec<T>>,
    m: Vec<T>,
    v: Vec<T>,
    step: u64,
    cfg: OptimConfig,
    last_norm: f64,
    loss_sum: f64,
    loss_steps: u64,
}

impl<T: Real> CpuExecutor<T> {
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
        let plan = Plan::build(graph, batch, outputs, loss)?;
        let bufs: Vec<Vec<T>> = plan
            .buf_lens
            .iter()
            .map(|&n| vec![T::default(); n])
            .collect();
        let total = plan.buf_lens[PARAMS];
        let mut ex = Self {
            params_info: graph.params().to_vec(),
            inputs: graph.inputs().to_vec(),
            plan,
            bufs,
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
        for (d, s) in self.bufs[PARAMS][loc.off..loc.off + loc.len]
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
        &self.bufs[l.buf][l.off..l.off + l.len]
    }

    fn run(&mut self, backward: bool) -> Result<()> {
        let n_fwd = self.plan.forward.len();
        let n_bwd = if backward {
            if self.plan.loss.is_none() {
                return Err(Error::InvalidArgument(
                    "the graph was compiled without a loss; there is nothing to differentiate"
                        .into(),
                ));
            }
            self.plan.backward.len()
        } else {
            0
        };
        if let (true, Some(s)) = (backward, self.plan.seed) {
            self.bufs[s.buf][s.off] = T::from_f64(1.0);
        }
        for i in 0..n_fwd + n_bwd {
            let ins = if i < n_fwd {
                self.plan.forward[i].clone()
            } else {
                self.plan.backward[i - n_fwd].clone()
            };
            self.exec(&ins);
        }
        Ok(())
    }

    #[allow(clippy::needless_range_loop)] // index loops mirror the kernels
    fn exec(&mut self, ins: &Instr) {
        let d = ins.dst();
        let mut out = std::mem::take(&mut self.bufs[d.buf]);
        {
            let y = &mut out[d.off..d.off + d.len];
            let r = |l: Loc| -> Vec<f64> { self.sl(l).iter().map(|v| v.to_f64()).collect() };
            let put = |y: &mut [T], i: usize, acc: bool, v: f64| {
                y[i] = T::from_f64(if acc { y[i].to_f64() + v } else { v });
            };
            match ins {
                Instr::Gemm { g, a, b, bias, .. } => {
                    let sa = if g.ta {
                        (1, g.m as isize)
                    } else {
                        (g.k as isize, 1)
                    };
                    let sb = if g.tb {
                        (1, g.k as isize)
                    } else {
                        (g.n as isize, 1)
                    };
                    let beta = T::from_f64(if g.acc { 1.0 } else { 0.0 });
                    T::gemm(g.m, g.k, g.n, self.sl(*a), sa, self.sl(*b), sb, beta, y);
                    if let Some(bl) = bias {
                        let bv = r(*bl);
                        for (i, yv) in y.iter_mut().enumerate() {
                            *yv = T::from_f64(yv.to_f64() + bv[i % g.n]);
                        }
                    }
                }
                Instr::Act { f, x, .. } => {
                    for (yv, xv) in y.iter_mut().zip(self.sl(*x)) {
                        *yv = T::from_f64(f.apply(xv.to_f64()));
                    }
                }
                Instr::ActGrad { f, x, gy, acc, .. } => {
                    let (xs, gs) = (self.sl(*x), self.sl(*gy));
                    for i in 0..y.len() {
                        put(y, i, *acc, gs[i].to_f64() * f.deriv(xs[i].to_f64()));
                    }
                }
                Instr::BiasAdd { x, b, cols, .. } => {
                    let (xs, bs) = (self.sl(*x), self.sl(*b));
                    for i in 0..y.len() {
                        y[i] = T::from_f64(xs[i].to_f64() + bs[i % cols].to_f64());
                    }
                }
                Instr::ColSum {
                    x, rows, cols, acc, ..
                } => {
                    let xs = self.sl(*x);
                    for c in 0..*cols {
                        let s: f64 = (0..*rows).map(|r| xs[r * cols + c].to_f64()).sum();
                        put(y, c, *acc, s);
                    }
                }
                Instr::Binary { op, a, b, acc, .. } => {
                    let (av, bv) = (self.sl(*a), self.sl(*b));
                    for i in 0..y.len() {
                        let (p, q) = (av[i].to_f64(), bv[i].to_f64());
                        let v = match op {
                            BinOp::Add => p + q,
                            BinOp::Mul => p * q,
                        };
                        put(y, i, *acc, v);
                    }
                }
                Instr::ScaleAdd { x, s, c, acc, .. } => {
                    let xs = self.sl(*x);
                    for i in 0..y.len() {
                        put(y, i, *acc, *s as f64 * xs[i].to_f64() + *c as f64);
                    }
                }
                Instr::ColCopy {
                    x,
                    rows,
                    x_cols,
                    y_cols,
                    x_off,
                    y_off,
                    width,
                    acc,
                    ..
                } => {
                    let xs = self.sl(*x);
                    for r in 0..*rows {
                        for j in 0..*width {
                            put(
                                y,
                                r * y_cols + y_off + j,
                                *acc,
                                xs[r * x_cols + x_off + j].to_f64(),
                            );
                        }
                    }
                }
                Instr::Sum { x, s, .. } => {
                    let t: f64 = self.sl(*x).iter().map(|v| v.to_f64()).sum();
                    y[0] = T::from_f64(*s as f64 * t);
                }
                Instr::SqDiffSum { a, b, s, .. } => {
                    let t: f64 = self
                        .sl(*a)
                        .iter()
                        .zip(self.sl(*b))
                        .map(|(p, q)| (p.to_f64() - q.to_f64()).powi(2))
                        .sum();
                    y[0] = T::from_f64(*s as f64 * t);
                }
                Instr::Broadcast { g, s, acc, .. } => {
                    let gv = self.sl(*g)[0].to_f64() * *s as f64;
                    for i in 0..y.len() {
                        put(y, i, *acc, gv);
                    }
                }
                Instr::SqDiffGrad {
                    a, b, g, s, acc, ..
                } => {
                    let gv = self.sl(*g)[0].to_f64() * *s as f64;
                    let (av, bv) = (self.sl(*a), self.sl(*b));
                    for i in 0..y.len() {
                        put(y, i, *acc, gv * (av[i].to_f64() - bv[i].to_f64()));
                    }
                }
                Instr::Proj { v, x, k, .. } => {
                    let (vs, xs) = (r(*v), r(*x));
                    for (row, yr) in y.chunks_mut(*k).enumerate() {
                        let o = row * k;
                        let dot: f64 = (0..*k).map(|j| xs[o + j] * vs[o + j]).sum();
                        for j in 0..*k {
                            yr[j] = T::from_f64(vs[o + j] - dot * xs[o + j]);
                        }
                    }
                }
                Instr::ProjGradV { x, g, k, acc, .. } => {
                    let (xs, gs) = (r(*x), r(*g));
                    for row in 0..y.len() / k {
                        let o = row * k;
                        let xg: f64 = (0..*k).map(|j| xs[o + j] * gs[o + j]).sum();
                        for j in 0..*k {
                            put(y, o + j, *acc, gs[o + j] - xg * xs[o + j]);
                        }
                    }
                }
                Instr::ProjGradX {
                    v, x, g, k, acc, ..
                } => {
                    let (vs, xs, gs) = (r(*v), r(*x), r(*g));
                    for row in 0..y.len() / k {
                        let o = row * k;
                        let xg: f64 = (0..*k).map(|j| xs[o + j] * gs[o + j]).sum();
                        let xv: f64 = (0..*k).map(|j| xs[o + j] * vs[o + j]).sum();
                        for j in 0..*k {
                            put(y, o + j, *acc, -(xg * vs[o + j] + xv * gs[o + j]));
                        }
                    }
                }
                Instr::Zero { .. } => y.iter_mut().for_each(|v| *v = T::default()),
            }
        }
        self.bufs[d.buf] = out;
    }

    fn optimize(&mut self) {
        let n = self.bufs[PARAMS].len();
        let sumsq: f64 = self.bufs[GRADS].iter().map(|g| g.to_f64().powi(2)).sum();
        self.last_norm = sumsq.sqrt();
        let scale = clip_scale(self.last_norm, self.cfg.max_grad_norm);
        self.step += 1;
        let mut p = std::mem::take(&mut self.bufs[PARAMS]);
        adam_cpu(
            &self.cfg,
            self.step,
            scale,
            &mut p[..n],
            &self.bufs[GRADS],
            &mut self.m,
            &mut self.v,
        );
        self.bufs[PARAMS] = p;
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

impl<T: Real> Executor for CpuExecutor<T> {
    fn backend_name(&self) -> String {
        T::NAME.to_string()
    }
    fn batch(&self) -> usize {
        self.plan.batch
    }
    fn set_input(&mut self, name: &str, data: &[f32]) -> Result<()> {
        if let Some(l) = input_loc(&self.inputs, &self.plan, name, data.len())? {
            for (d, s) in self.bufs[l.buf][l.off..l.off + l.len].iter_mut().zip(data) {
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
        Ok(self.named(&self.bufs[GRADS], ""))
    }
    fn last_grad_norm(&mut self) -> Result<f32> {
        Ok(self.last_norm as f32)
    }
    fn params(&self) -> Result<Vec<NamedTensor>> {
        Ok(self.named(&self.bufs[PARAMS], ""))
    }
    fn load_params(&mut self, params: &[NamedTensor]) -> Result<()> {
        let data = match_tensors(&self.params_info, "", params)?;
        for (d, l) in data.iter().zip(&self.plan.param_locs) {
            for (dst, s) in self.bufs[PARAMS][l.off..l.off + l.len].iter_mut().zip(*d) {
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
