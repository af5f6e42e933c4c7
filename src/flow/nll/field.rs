//! The likelihood's ODE: the points and their accumulated log-density change integrated
//! together, on either device.
//!
//! The state is a pair (points on the product of spheres, one real number per sequence): a
//! point of `M × ℝ^B`. [`Joint`] makes an [`OdeDevice`] of it from two devices of the same
//! kind, the first for the points (geodesic steps, pull-backs) and the second for the reals
//! (flat: `exp` is `ℓ + h·u`, the pull-back is the identity), so the Runge–Kutta–Munthe-Kaas
//! driver integrates both with the method's order. The fields ([`GpuDivField`],
//! [`CpuDivField`]) evaluate the model's velocity and, through vector-Jacobian products of
//! the autodiff, its divergence (on the product of spheres, or within the simplex).

use std::collections::hash_map::{Entry, HashMap};

use crate::autodiff::{CpuExecutor, Executor, GpuExecutor, GpuForward, NodeId, OptimConfig};
use crate::error::{Error, Result};
use crate::flow::devices::{CpuOde, GpuOde};
use crate::flow::dirichlet::{self as dfm, TableCache};
use crate::flow::kernels as fk;
use crate::flow::nll::dirichlet as nd;
use crate::flow::nll::kernels::{self as nk, Probes};
use crate::flow::ode::{OdeDevice, VectorField};
use crate::flow::sample::FlowModel;
use crate::flow::train::Geometry;
use crate::gpu::{GpuContext, GpuTensor};
use crate::kernels::util;
use crate::nn::Network;

/// Name of the cotangent input of the vector-Jacobian-product graph.
pub const COT: &str = "cot";

/// A device that can pass what it has recorded to another of its kind, so that two devices
/// append to one ordered stream of work.
pub trait Handover: OdeDevice {
    /// Move the work recorded so far into `to` (whose own recording is empty).
    fn hand_over(&mut self, to: &mut Self);
}

impl Handover for GpuOde<'_> {
    fn hand_over(&mut self, to: &mut Self) {
        debug_assert!(
            to.rec.is_empty(),
            "the receiving device has work of its own"
        );
        std::mem::swap(&mut self.rec, &mut to.rec);
    }
}

impl Handover for CpuOde {
    fn hand_over(&mut self, _to: &mut Self) {}
}

/// Points and one real per sequence, integrated together (see the [module docs](self)).
pub struct Joint<D> {
    /// The points' device (`[B, L, K]`).
    pub x: D,
    /// The reals' device (`B` values).
    pub l: D,
}

impl<D: Handover> Joint<D> {
    /// Run `f` on the reals' device, in order with the work recorded on the points' device.
    fn reals<R>(&mut self, f: impl FnOnce(&mut D) -> Result<R>) -> Result<R> {
        self.x.hand_over(&mut self.l);
        let r = f(&mut self.l);
        self.l.hand_over(&mut self.x);
        r
    }
}

impl<D: Handover> OdeDevice for Joint<D> {
    type Buf = (D::Buf, D::Buf);
    fn buffer(&mut self) -> Result<Self::Buf> {
        Ok((self.x.buffer()?, self.l.buffer()?))
    }
    fn exp(
        &mut self,
        x: &Self::Buf,
        u: &Self::Buf,
        h: f32,
        fold: bool,
        out: &Self::Buf,
    ) -> Result<()> {
        self.x.exp(&x.0, &u.0, h, fold, &out.0)?;
        self.reals(|d| {
            d.axpby(1.0, &x.1, 0.0, &out.1)?;
            d.axpby(h, &u.1, 1.0, &out.1)
        })
    }
    fn pull_back(
        &mut self,
        x: &Self::Buf,
        u: &Self::Buf,
        h: f32,
        w: &Self::Buf,
        out: &Self::Buf,
    ) -> Result<()> {
        self.x.pull_back(&x.0, &u.0, h, &w.0, &out.0)?;
        self.reals(|d| d.axpby(1.0, &w.1, 0.0, &out.1))
    }
    fn axpby(&mut self, a: f32, v: &Self::Buf, b: f32, out: &Self::Buf) -> Result<()> {
        self.x.axpby(a, &v.0, b, &out.0)?;
        self.reals(|d| d.axpby(a, &v.1, b, &out.1))
    }
    /// The larger of the two parts' norms: the points and the log-density each meet the
    /// tolerances.
    fn error_norm(
        &mut self,
        x: &Self::Buf,
        y: &Self::Buf,
        e: &Self::Buf,
        atol: f64,
        rtol: f64,
    ) -> Result<f64> {
        let ex = self.x.error_norm(&x.0, &y.0, &e.0, atol, rtol)?;
        let el = self.reals(|d| d.error_norm(&x.1, &y.1, &e.1, atol, rtol))?;
        Ok(ex.max(el))
    }
}

/// The graph of the vector-Jacobian products: the model's network (its field `v = P_x f(x, t)`
/// on the sphere, `f` on the simplex, the logits for Dirichlet FM; either architecture) and the
/// loss `Σ out ⊙ cot`, whose gradient with respect to `x` is `cotᵀ ∂out/∂x` row by row.
pub fn vjp_graph(model: &FlowModel) -> Result<(Network, NodeId)> {
    let mut net = model.config.network(0)?;
    let g = &mut net.graph;
    let shape = g.shape(net.out)?;
    let cot = g.input_shaped(COT, shape)?;
    let prod = g.mul(net.out, cot)?;
    let loss = g.sum(prod)?;
    Ok((net, loss))
}

/// The time of the model at integration time `s` (from `t1` at `s = 0` to 0 at `s = 1`), and
/// the factor `dt/ds = −t1` on the velocity and the divergence.
#[derive(Clone, Copy, Debug)]
pub struct Reverse {
    /// The time of the data points.
    pub t1: f32,
}

impl Reverse {
    fn time(self, s: f32) -> f32 {
        self.t1 * (1.0 - s)
    }
    fn rate(self) -> f32 {
        -self.t1
    }
}

/// `1` for the exact divergence (a sum over the basis), `1/N` for `N` Hutchinson probes.
fn probe_weight(p: &Probes) -> f32 {
    if p.exact {
        1.0
    } else {
        1.0 / p.m as f32
    }
}

/// The input of `rows` network rows from that of the `B` sequences (`per` values each; row
/// `r` reads sequence `r % B`, as the probe rows do).
fn repeat_rows(values: &[f32], per: usize, rows: usize) -> Vec<f32> {
    values.iter().copied().cycle().take(rows * per).collect()
}

/// Dirichlet FM's part of a [`GpuDivField`]: the logits of the sequences, the projected probes,
/// and `C(·, t)` by time.
struct GpuDirichlet<'c> {
    fwd: GpuForward<'c>,
    logits: GpuTensor<f32>,
    u: GpuTensor<f32>,
    v: GpuTensor<f32>,
    tables: TableCache,
    uploaded: HashMap<u32, GpuTensor<f32>>,
}

/// The field and its divergence on the GPU, for a fixed batch of sequences and probes.
pub struct GpuDivField<'c> {
    ex: GpuExecutor<'c>,
    probes: Probes,
    z: GpuTensor<f32>,
    v: GpuTensor<f32>,
    g: GpuTensor<f32>,
    time: Reverse,
    conditional: bool,
    /// Signal values per sequence (`L·S`; 0 without a track).
    signal: usize,
    dirichlet: Option<GpuDirichlet<'c>>,
}

impl<'c> GpuDivField<'c> {
    /// Compile the field of `model` for `probes` (`probes.b` sequences).
    pub fn new(
        ctx: &'c GpuContext,
        model: &FlowModel,
        probes: Probes,
        time: Reverse,
    ) -> Result<Self> {
        let (net, loss) = vjp_graph(model)?;
        let rows = probes.rows();
        let mut ex = GpuExecutor::with_input_grads(
            ctx,
            &net.graph,
            rows,
            &[net.out],
            Some(loss),
            OptimConfig::default(),
            &[Network::X],
        )?;
        ex.load_params(&model.params)?;
        let shape = [probes.b, probes.l, probes.k];
        let v = ex.output_tensor(net.out)?.view(0, &shape)?;
        let g = ex.input_grad_tensor(Network::X)?;
        let zlen = if probes.exact { 4 } else { g.len() };
        let dirichlet = match model.config.geometry {
            Geometry::Dirichlet => {
                let fwd = ex.compile_forward(probes.b, &[net.out])?;
                let logits = fwd.output_tensor(net.out)?.view(0, &shape)?;
                Some(GpuDirichlet {
                    fwd,
                    logits,
                    u: GpuTensor::zeros(ctx, &[g.len()])?,
                    v: GpuTensor::zeros(ctx, &shape)?,
                    tables: TableCache::new(probes.k),
                    uploaded: HashMap::new(),
                })
            }
            _ => None,
        };
        let field = Self {
            z: GpuTensor::zeros(ctx, &[zlen])?,
            ex,
            probes,
            v,
            g,
            time,
            conditional: net.labels.is_some(),
            signal: model.config.cond.signal * probes.l,
            dirichlet,
        };
        let (null, track) = (model.config.cond.null(), field.signal * probes.b);
        field.set_conditions(&vec![null; probes.b], &vec![0.0; track])?;
        Ok(field)
    }
    /// Replace the probe values (`[M·B, L·K]`; not used by the exact divergence).
    pub fn set_probes(&self, z: &[f32]) -> Result<()> {
        self.z.write(self.ex.context(), z)
    }
    /// Set the class labels of the `B` sequences (class-conditional models; the null class
    /// until set) and their signal tracks (`[B, L, S]`, models that read a track, zero until
    /// set; ignored otherwise).
    pub fn set_conditions(&self, labels: &[f32], signal: &[f32]) -> Result<()> {
        let ctx = self.ex.context();
        let given = (labels, signal);
        for (name, per_sequence, per_row) in
            condition_inputs(self.conditional, self.signal, &self.probes, given)?
        {
            self.ex.input_tensor(name)?.write(ctx, &per_row)?;
            if let Some(d) = &self.dirichlet {
                d.fwd.set_input(name, per_sequence)?;
            }
        }
        Ok(())
    }
}

impl VectorField<Joint<GpuOde<'_>>> for GpuDivField<'_> {
    fn eval(
        &mut self,
        dev: &mut Joint<GpuOde<'_>>,
        x: &(GpuTensor, GpuTensor),
        s: f32,
        out: &(GpuTensor, GpuTensor),
    ) -> Result<()> {
        let ctx = self.ex.context();
        let rec = &mut dev.x.rec;
        let (xr, cot) = (
            self.ex.input_tensor(Network::X)?,
            self.ex.input_tensor(COT)?,
        );
        let (t, rate) = (self.time.time(s), self.time.rate());
        let w = rate * probe_weight(&self.probes);
        util::fill(ctx, rec, self.ex.input_tensor(Network::T)?, t)?;
        let Some(d) = &mut self.dirichlet else {
            nk::probe_rows(ctx, rec, &self.probes, &x.0, &self.z, xr, cot)?;
            self.ex.record_forward_backward(rec)?;
            fk::axpby(ctx, rec, rate, &self.v, 0.0, &out.0)?;
            return nk::probe_dot(ctx, rec, &self.probes, &self.g, cot, w, &out.1);
        };
        let table = match d.uploaded.entry(t.to_bits()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let v: Vec<f32> = d.tables.get(t).values.iter().map(|&c| c as f32).collect();
                e.insert(GpuTensor::from_slice(ctx, &v, &[v.len()])?)
            }
        };
        nk::probe_rows(ctx, rec, &self.probes, &x.0, &self.z, xr, &d.u)?;
        fk::axpby(ctx, rec, 1.0, &x.0, 0.0, d.fwd.input_tensor(Network::X)?)?;
        util::fill(ctx, rec, d.fwd.input_tensor(Network::T)?, t)?;
        rec.extend(d.fwd.recording());
        nd::cotangent(ctx, rec, &self.probes, &x.0, &d.logits, &d.u, table, cot)?;
        self.ex.record_forward_backward(rec)?;
        dfm::mix(ctx, rec, &x.0, &d.logits, table, &d.v)?;
        fk::axpby(ctx, rec, rate, &d.v, 0.0, &out.0)?;
        nk::probe_dot(ctx, rec, &self.probes, &self.g, &d.u, w, &out.1)?;
        nd::div_terms(ctx, rec, &self.probes, &x.0, &d.logits, table, rate, &out.1)
    }
}

/// The field and its divergence on the CPU backend (f32 network, f64 probe arithmetic).
pub struct CpuDivField {
    ex: CpuExecutor<f32>,
    out: NodeId,
    probes: Probes,
    /// Probe values `[M·B, L·K]` (empty for the exact divergence).
    pub z: Vec<f32>,
    time: Reverse,
    conditional: bool,
    /// Signal values per sequence (`L·S`; 0 without a track).
    signal: usize,
    /// Dirichlet FM: the network at the `B` sequences (the logits) and `C(·, t)` by time.
    dirichlet: Option<(CpuExecutor<f32>, TableCache)>,
}

impl CpuDivField {
    /// Compile the field of `model` for `probes`.
    pub fn new(model: &FlowModel, probes: Probes, time: Reverse) -> Result<Self> {
        let (net, loss) = vjp_graph(model)?;
        let mut ex = CpuExecutor::with_input_grads(
            &net.graph,
            probes.rows(),
            &[net.out],
            Some(loss),
            OptimConfig::default(),
            &[Network::X],
        )?;
        ex.load_params(&model.params)?;
        let dirichlet = match model.config.geometry {
            Geometry::Dirichlet => {
                let mut fwd =
                    CpuExecutor::new(&net.graph, probes.b, &[net.out], None, Default::default())?;
                fwd.load_params(&model.params)?;
                Some((fwd, TableCache::new(probes.k)))
            }
            _ => None,
        };
        let mut field = Self {
            ex,
            out: net.out,
            probes,
            z: Vec::new(),
            time,
            conditional: net.labels.is_some(),
            signal: model.config.cond.signal * probes.l,
            dirichlet,
        };
        let (null, track) = (model.config.cond.null(), field.signal * probes.b);
        field.set_conditions(&vec![null; probes.b], &vec![0.0; track])?;
        Ok(field)
    }
    /// Set the class labels of the `B` sequences (class-conditional models; the null class
    /// until set) and their signal tracks (`[B, L, S]`, models that read a track, zero until
    /// set; ignored otherwise).
    pub fn set_conditions(&mut self, labels: &[f32], signal: &[f32]) -> Result<()> {
        let given = (labels, signal);
        for (name, per_sequence, per_row) in
            condition_inputs(self.conditional, self.signal, &self.probes, given)?
        {
            self.ex.set_input(name, &per_row)?;
            if let Some((fwd, _)) = &mut self.dirichlet {
                fwd.set_input(name, per_sequence)?;
            }
        }
        Ok(())
    }
}

/// One condition input: its name, the values of the `B` sequences, the values per probe row.
type ConditionInput<'a> = (&'static str, &'a [f32], Vec<f32>);

/// The condition inputs of a divergence field, for both backends: the input name, the values
/// of the `B` sequences, and those values repeated for every probe row of their sequence; for
/// the labels of a class-conditional model and the tracks (`S` values per sequence) of a model
/// that reads a signal. Errors unless `given.1` holds `B · S` track values.
fn condition_inputs<'a>(
    conditional: bool,
    signal_width: usize,
    probes: &Probes,
    given: (&'a [f32], &'a [f32]),
) -> Result<Vec<ConditionInput<'a>>> {
    let (labels, signal) = given;
    let rows = probes.rows();
    let mut out = Vec::with_capacity(2);
    if conditional {
        out.push((Network::LABELS, labels, repeat_rows(labels, 1, rows)));
    }
    if signal_width > 0 {
        let want = probes.b * signal_width;
        if signal.len() != want {
            return Err(Error::Shape(format!(
                "{} signal values for a batch that reads {want} (the model reads a signal track)",
                signal.len()
            )));
        }
        out.push((
            Network::SIGNAL,
            signal,
            repeat_rows(signal, signal_width, rows),
        ));
    }
    Ok(out)
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&a| a as f32).collect()
}

impl VectorField<Joint<CpuOde>> for CpuDivField {
    fn eval(
        &mut self,
        dev: &mut Joint<CpuOde>,
        x: &(usize, usize),
        s: f32,
        out: &(usize, usize),
    ) -> Result<()> {
        let p = self.probes;
        let (t, rate) = (self.time.time(s), self.time.rate());
        let xs = &dev.x.bufs[x.0];
        let (xr, u) = nk::probe_rows_cpu(&p, xs, &self.z)?;
        // Dirichlet FM: the logits at the sequences, and the logits' cotangents.
        let logits = match &mut self.dirichlet {
            Some((fwd, tables)) => {
                fwd.set_input(Network::X, xs)?;
                fwd.set_input(Network::T, &vec![t; p.b])?;
                fwd.forward()?;
                let out = self.out;
                Some((fwd.output(out)?, tables.get(t).clone()))
            }
            None => None,
        };
        let cot = match &logits {
            Some((z, table)) => nd::cotangent_cpu(&p, xs, z, &u, table),
            None => u.clone(),
        };
        self.ex.set_input(Network::X, &to_f32(&xr))?;
        self.ex.set_input(COT, &to_f32(&cot))?;
        self.ex.set_input(Network::T, &vec![t; p.rows()])?;
        self.ex.forward_backward()?;
        let v = match &logits {
            Some((z, table)) => {
                let mut v = vec![0.0; xs.len()];
                let rows = v.chunks_mut(p.k).zip(xs.chunks(p.k)).zip(z.chunks(p.k));
                for ((o, xrow), zrow) in rows {
                    dfm::mix_row(xrow, zrow, table, o);
                }
                v
            }
            None => self.ex.output(self.out)?,
        };
        let g = self.ex.input_grad(Network::X)?;
        let w = (rate * probe_weight(&p)) as f64;
        let mut div = nk::probe_dot_cpu(&p, &g, &u, w);
        if let Some((z, table)) = &logits {
            let terms = nd::div_terms_cpu(&p, &dev.x.bufs[x.0], z, table);
            for (d, a) in div.iter_mut().zip(terms) {
                *d += rate as f64 * a;
            }
        }
        for (d, &a) in dev.x.bufs[out.0].iter_mut().zip(&v) {
            *d = rate * a;
        }
        dev.l.bufs[out.1] = to_f32(&div);
        Ok(())
    }
}
