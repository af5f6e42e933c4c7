//! The likelihood's ODE: the points and their accumulated log-density change integrated
//! together, on either device.
//!
//! The state is a pair (points on the product of spheres, one real number per sequence): a
//! point of `M × ℝ^B`. [`Joint`] makes an [`OdeDevice`] of it from two devices of the same
//! kind, the first for the points (geodesic steps, pull-backs) and the second for the reals
//! (flat: `exp` is `ℓ + h·u`, the pull-back is the identity), so the Runge–Kutta–Munthe-Kaas
//! driver integrates both with the method's order. The fields ([`GpuDivField`],
//! [`CpuDivField`]) evaluate the network's velocity and, through vector-Jacobian products of
//! the autodiff, its divergence on the product of spheres.

use crate::autodiff::{CpuExecutor, Executor, GpuExecutor, NodeId, OptimConfig};
use crate::error::Result;
use crate::flow::devices::{CpuOde, GpuOde};
use crate::flow::kernels as fk;
use crate::flow::nll::kernels::{self as nk, Probes};
use crate::flow::ode::{OdeDevice, VectorField};
use crate::flow::sample::FlowModel;
use crate::gpu::{GpuContext, GpuTensor};
use crate::kernels::util;
use crate::nn::Mlp;

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

/// The graph of the vector-Jacobian products: the model's field `v = P_x f(x, t)` (projected
/// whatever the model's setting: the samplers step along `P_x f` in any case) and the loss
/// `Σ v ⊙ cot`, whose gradient with respect to `x` is `cotᵀ ∂v/∂x` row by row.
pub fn vjp_graph(model: &FlowModel) -> Result<(Mlp, NodeId)> {
    let cfg = crate::nn::MlpConfig {
        project: true,
        ..model.config.mlp
    };
    let mut mlp = Mlp::new(cfg, 0)?;
    let g = &mut mlp.graph;
    let cot = g.input(COT, cfg.width())?;
    let prod = g.mul(mlp.out, cot)?;
    let loss = g.sum(prod)?;
    Ok((mlp, loss))
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

/// The field and its divergence on the GPU, for a fixed batch of sequences and probes.
pub struct GpuDivField<'c> {
    ex: GpuExecutor<'c>,
    probes: Probes,
    z: GpuTensor<f32>,
    v: GpuTensor<f32>,
    g: GpuTensor<f32>,
    time: Reverse,
}

impl<'c> GpuDivField<'c> {
    /// Compile the field of `model` for `probes` (`probes.b` sequences).
    pub fn new(
        ctx: &'c GpuContext,
        model: &FlowModel,
        probes: Probes,
        time: Reverse,
    ) -> Result<Self> {
        let (mlp, loss) = vjp_graph(model)?;
        let rows = probes.rows();
        let mut ex = GpuExecutor::with_input_grads(
            ctx,
            &mlp.graph,
            rows,
            &[mlp.out],
            Some(loss),
            OptimConfig::default(),
            &[Mlp::X],
        )?;
        ex.load_params(&model.params)?;
        let v = ex.output_tensor(mlp.out)?;
        let v = v.view(0, &[probes.b, probes.l, probes.k])?;
        let g = ex.input_grad_tensor(Mlp::X)?;
        let zlen = if probes.exact { 4 } else { g.len() };
        Ok(Self {
            z: GpuTensor::zeros(ctx, &[zlen])?,
            ex,
            probes,
            v,
            g,
            time,
        })
    }
    /// Replace the probe values (`[M·B, L·K]`; not used by the exact divergence).
    pub fn set_probes(&self, z: &[f32]) -> Result<()> {
        self.z.write(self.ex.context(), z)
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
        let (xr, cot) = (self.ex.input_tensor(Mlp::X)?, self.ex.input_tensor(COT)?);
        util::fill(ctx, rec, self.ex.input_tensor(Mlp::T)?, self.time.time(s))?;
        nk::probe_rows(ctx, rec, &self.probes, &x.0, &self.z, xr, cot)?;
        self.ex.record_forward_backward(rec)?;
        let rate = self.time.rate();
        fk::axpby(ctx, rec, rate, &self.v, 0.0, &out.0)?;
        let w = rate * probe_weight(&self.probes);
        nk::probe_dot(ctx, rec, &self.probes, &self.g, cot, w, &out.1)
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
}

impl CpuDivField {
    /// Compile the field of `model` for `probes`.
    pub fn new(model: &FlowModel, probes: Probes, time: Reverse) -> Result<Self> {
        let (mlp, loss) = vjp_graph(model)?;
        let mut ex = CpuExecutor::with_input_grads(
            &mlp.graph,
            probes.rows(),
            &[mlp.out],
            Some(loss),
            OptimConfig::default(),
            &[Mlp::X],
        )?;
        ex.load_params(&model.params)?;
        Ok(Self {
            ex,
            out: mlp.out,
            probes,
            z: Vec::new(),
            time,
        })
    }
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
        let (xr, cot) = nk::probe_rows_cpu(&p, &dev.x.bufs[x.0], &self.z)?;
        self.ex.set_input(Mlp::X, &to_f32(&xr))?;
        self.ex.set_input(COT, &to_f32(&cot))?;
        self.ex
            .set_input(Mlp::T, &vec![self.time.time(s); p.rows()])?;
        self.ex.forward_backward()?;
        let rate = self.time.rate();
        let v = self.ex.output(self.out)?;
        for (d, &a) in dev.x.bufs[out.0].iter_mut().zip(&v) {
            *d = rate * a;
        }
        let g = self.ex.input_grad(Mlp::X)?;
        let w = (rate * probe_weight(&p)) as f64;
        let div = nk::probe_dot_cpu(&p, &g, &cot, w);
        dev.l.bufs[out.1] = to_f32(&div);
        Ok(())
    }
}
