//! The integrator's devices ([`OdeDevice`]) for both geometries: recorded GPU kernels
//! ([`GpuOde`]) and the CPU backend ([`CpuOde`], f64 arithmetic on f32 storage), and the
//! vector fields the samplers integrate: a trained model (on either device) or a linear field
//! `x ↦ x·Aᵀ` (for measuring orders).

use crate::autodiff::CpuProgram;
use crate::error::{Error, Result};
use crate::flow::field::FieldNet;
use crate::flow::kernels as fk;
use crate::flow::ode::{OdeDevice, VectorField};
use crate::flow::sample::FlowModel;
use crate::flow::train::Geometry;
use crate::gpu::{GpuContext, GpuTensor, Recorder};
use crate::kernels::linalg::{gemm, Gemm, View};
use crate::kernels::reduce::{self, SumOf};
use crate::kernels::sphere;
use crate::nn::Network;

/// Recorded GPU kernels over `[rows, L, K]` tensors. The recording is the caller's to run
/// (fixed steps); [`OdeDevice::error_norm`] runs what was recorded so far.
pub struct GpuOde<'c> {
    ctx: &'c GpuContext,
    geometry: Geometry,
    shape: [usize; 3],
    /// The recording the integrator appends to.
    pub rec: Recorder,
    scratch: Option<(GpuTensor<f32>, GpuTensor<f32>)>,
}

impl<'c> GpuOde<'c> {
    /// A device for states of `shape` (`[rows, L, K]`) in `geometry`.
    pub fn new(ctx: &'c GpuContext, geometry: Geometry, shape: [usize; 3]) -> Self {
        Self {
            ctx,
            geometry,
            shape,
            rec: Recorder::new(),
            scratch: None,
        }
    }
    /// The context.
    pub fn context(&self) -> &'c GpuContext {
        self.ctx
    }
}

impl OdeDevice for GpuOde<'_> {
    type Buf = GpuTensor<f32>;
    fn buffer(&mut self) -> Result<GpuTensor<f32>> {
        GpuTensor::zeros(self.ctx, &self.shape)
    }
    fn exp(
        &mut self,
        x: &GpuTensor,
        u: &GpuTensor,
        h: f32,
        fold: bool,
        out: &GpuTensor,
    ) -> Result<()> {
        match self.geometry {
            Geometry::Sphere => sphere::geodesic_step(self.ctx, &mut self.rec, x, u, h, fold, out),
            // Every simplex method steps on the simplex.
            _ => fk::simplex_step(self.ctx, &mut self.rec, x, u, h, out),
        }
    }
    fn pull_back(
        &mut self,
        x: &GpuTensor,
        u: &GpuTensor,
        h: f32,
        w: &GpuTensor,
        out: &GpuTensor,
    ) -> Result<()> {
        match self.geometry {
            Geometry::Sphere => sphere::pull_back(self.ctx, &mut self.rec, x, u, h, w, out),
            // Flat: the differential of x + u is the identity.
            _ => fk::axpby(self.ctx, &mut self.rec, 1.0, w, 0.0, out),
        }
    }
    fn axpby(&mut self, a: f32, v: &GpuTensor, b: f32, out: &GpuTensor) -> Result<()> {
        fk::axpby(self.ctx, &mut self.rec, a, v, b, out)
    }
    fn error_norm(
        &mut self,
        x: &GpuTensor,
        y: &GpuTensor,
        e: &GpuTensor,
        atol: f64,
        rtol: f64,
    ) -> Result<f64> {
        if self.scratch.is_none() {
            self.scratch = Some((self.buffer()?, GpuTensor::zeros(self.ctx, &[1])?));
        }
        let (terms, total) = self.scratch.as_ref().expect("made above");
        let (at, rt) = (atol as f32, rtol as f32);
        fk::err_terms(self.ctx, &mut self.rec, x, y, e, at, rt, terms)?;
        reduce::sum_reduce(
            self.ctx,
            &mut self.rec,
            SumOf::Values,
            View::of(terms),
            None,
            1.0 / terms.len() as f32,
            View::of(total),
        )?;
        std::mem::take(&mut self.rec).run(self.ctx)?;
        Ok((total.to_vec(self.ctx)?[0] as f64).sqrt())
    }
}

/// The CPU backend's device: buffers in an arena, maths in f64 on f32 storage.
pub struct CpuOde {
    geometry: Geometry,
    k: usize,
    len: usize,
    /// The buffers ([`OdeDevice::Buf`] indexes them).
    pub bufs: Vec<Vec<f32>>,
}

impl CpuOde {
    /// A device for states of `len` values in rows of `k` in `geometry`.
    pub fn new(geometry: Geometry, len: usize, k: usize) -> Self {
        Self {
            geometry,
            k,
            len,
            bufs: Vec::new(),
        }
    }

    /// Run `f` with buffer `out` writable and the others readable (an operation never reads
    /// the buffer it writes: that one reads as empty).
    pub(crate) fn with_out<R>(
        &mut self,
        out: usize,
        f: impl FnOnce(&mut [f32], &[Vec<f32>]) -> R,
    ) -> R {
        let mut o = std::mem::take(&mut self.bufs[out]);
        let r = f(&mut o, &self.bufs);
        self.bufs[out] = o;
        r
    }
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&p, &q)| p as f64 * q as f64).sum()
}

/// `x ← ψ_x(h·v)` per row of `k`: the sphere's geodesic step (the same maths as the
/// `geodesic_step` kernel, in f64) or the simplex step.
fn exp_rows(geometry: Geometry, k: usize, x: &mut [f32], v: &[f32], h: f32, fold: bool) {
    if geometry != Geometry::Sphere {
        return fk::simplex_step_cpu(x, v, k, h);
    }
    let h = h as f64;
    for (xr, vr) in x.chunks_mut(k).zip(v.chunks(k)) {
        let c = dot(xr, vr);
        // The step u = h·(v − ⟨x, v⟩x), its length, and y = cos|u|·x + sinc|u|·u (folded into
        // the orthant on request), normalised; computed in place, without scratch memory.
        let u = |x: f32, v: f32| h * (v as f64 - c * x as f64);
        let n = xr
            .iter()
            .zip(vr)
            .map(|(&x, &v)| u(x, v).powi(2))
            .sum::<f64>()
            .sqrt();
        let (a, b) = if n < sphere::reference::EXP_TINY {
            (1.0, 1.0)
        } else {
            (n.cos(), n.sin() / n)
        };
        let y = |x: f32, v: f32| {
            let y = a * x as f64 + b * u(x, v);
            if fold {
                y.abs()
            } else {
                y
            }
        };
        let m = xr
            .iter()
            .zip(vr)
            .map(|(&x, &v)| y(x, v).powi(2))
            .sum::<f64>()
            .sqrt();
        for (x, &v) in xr.iter_mut().zip(vr) {
            *x = (y(*x, v) / m) as f32;
        }
    }
}

/// One row of the pull-back ([`sphere::reference::pull_back_row`], the same maths on f32
/// storage in f64 arithmetic, without scratch memory): with θ = |dt·u|, û = dt·u/θ and
/// e = −sin θ·x + cos θ·û, `out = β·û + θ/sin θ·(w − β·e)` where β = ⟨w, e⟩.
fn pull_back_row(x: &[f32], u: &[f32], dt: f64, w: &[f32], out: &mut [f32]) {
    let theta = dt.abs() * u.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
    if theta < sphere::reference::EXP_TINY {
        let c = dot(w, x);
        for ((o, &wi), &xi) in out.iter_mut().zip(w).zip(x) {
            *o = (wi as f64 - c * xi as f64) as f32;
        }
        return;
    }
    let (sin, cos) = theta.sin_cos();
    let uh = |i: usize| dt * u[i] as f64 / theta;
    let e = |i: usize| -sin * x[i] as f64 + cos * uh(i);
    let beta: f64 = (0..x.len()).map(|i| w[i] as f64 * e(i)).sum();
    let c = theta / sin;
    for (i, o) in out.iter_mut().enumerate() {
        *o = (beta * uh(i) + c * (w[i] as f64 - beta * e(i))) as f32;
    }
}

impl OdeDevice for CpuOde {
    type Buf = usize;
    fn buffer(&mut self) -> Result<usize> {
        self.bufs.push(vec![0.0; self.len]);
        Ok(self.bufs.len() - 1)
    }
    fn exp(&mut self, x: &usize, u: &usize, h: f32, fold: bool, out: &usize) -> Result<()> {
        let (k, geometry) = (self.k, self.geometry);
        self.with_out(*out, |o, bufs| {
            o.copy_from_slice(&bufs[*x]);
            exp_rows(geometry, k, o, &bufs[*u], h, fold)
        });
        Ok(())
    }
    fn pull_back(&mut self, x: &usize, u: &usize, h: f32, w: &usize, out: &usize) -> Result<()> {
        let (k, geometry) = (self.k, self.geometry);
        self.with_out(*out, |o, bufs| match geometry {
            // Flat: the differential of x + u is the identity.
            Geometry::Simplex | Geometry::Dirichlet | Geometry::FisherRaoSimplex => {
                o.copy_from_slice(&bufs[*w])
            }
            Geometry::Sphere => {
                let rows = bufs[*x]
                    .chunks(k)
                    .zip(bufs[*u].chunks(k))
                    .zip(bufs[*w].chunks(k));
                for (orow, ((xr, ur), wr)) in o.chunks_mut(k).zip(rows) {
                    pull_back_row(xr, ur, h as f64, wr, orow);
                }
            }
        });
        Ok(())
    }
    fn axpby(&mut self, a: f32, v: &usize, b: f32, out: &usize) -> Result<()> {
        self.with_out(*out, |o, bufs| {
            for (d, s) in o.iter_mut().zip(&bufs[*v]) {
                *d = if b == 0.0 {
                    a * s
                } else {
                    (a as f64 * *s as f64 + b as f64 * *d as f64) as f32
                };
            }
        });
        Ok(())
    }
    fn error_norm(&mut self, x: &usize, y: &usize, e: &usize, atol: f64, rtol: f64) -> Result<f64> {
        let (xs, ys, es) = (&self.bufs[*x], &self.bufs[*y], &self.bufs[*e]);
        let s: f64 = (0..xs.len())
            .map(|i| {
                let sc = atol + rtol * (xs[i].abs().max(ys[i].abs()) as f64);
                (es[i] as f64 / sc).powi(2)
            })
            .sum();
        Ok((s / xs.len() as f64).sqrt())
    }
}

/// Classifier-free guidance of a model field: the network evaluates every point twice, as
/// its sample's class (the first half of its rows) and as the null class (the second half),
/// and the field is `v_null + w·(v_c − v_null)`. Both are tangent at the same point, so their
/// combination is too: no second projection is needed.
struct Guide<B> {
    /// The guidance weight `w` (1: the class-conditional field alone, 0: the null class's).
    w: f32,
    /// The null-class field.
    null: B,
}

/// A trained model's vector field on the GPU.
pub struct GpuModelField<'c> {
    net: FieldNet<'c>,
    guide: Option<Guide<GpuTensor>>,
}

impl<'c> GpuModelField<'c> {
    /// The field of the network `net`, whose rows are the points' (`guidance == 1` or an
    /// unconditional model) or twice as many: each point as its class and as the null class,
    /// combined with guidance weight `guidance`.
    pub fn new(dev: &mut GpuOde<'c>, net: FieldNet<'c>, guidance: f32) -> Result<Self> {
        let guide = match guided(net.conditioning(), guidance) {
            true => Some(Guide {
                w: guidance,
                null: dev.buffer()?,
            }),
            false => None,
        };
        let want = dev.shape[0] * if guide.is_some() { 2 } else { 1 };
        if net.rows() != want {
            return Err(Error::Shape(format!(
                "a field of {} points needs a network of {want} rows, not {}",
                dev.shape[0],
                net.rows()
            )));
        }
        Ok(Self { net, guide })
    }

    /// The network (to set its labels).
    pub fn net(&self) -> &FieldNet<'c> {
        &self.net
    }
}

/// Whether sampling `cond` with guidance weight `w` evaluates the null-class field too.
pub fn guided(cond: Option<&crate::flow::Conditioning>, w: f32) -> bool {
    cond.is_some() && w != 1.0
}

impl VectorField<GpuOde<'_>> for GpuModelField<'_> {
    fn eval(&mut self, dev: &mut GpuOde<'_>, x: &GpuTensor, t: f32, out: &GpuTensor) -> Result<()> {
        let (inp, res, n) = (self.net.input(), self.net.output(), x.bytes());
        dev.rec.copy(x.buffer(), 0, inp.buffer(), 0, n);
        if self.guide.is_some() {
            dev.rec.copy(x.buffer(), 0, inp.buffer(), n, n);
        }
        self.net.record(&mut dev.rec, t)?;
        dev.rec.copy(res.buffer(), 0, out.buffer(), 0, n);
        if let Some(g) = &self.guide {
            dev.rec.copy(res.buffer(), n, g.null.buffer(), 0, n);
            dev.axpby(1.0 - g.w, &g.null, g.w, out)?;
        }
        Ok(())
    }
}

/// A trained model's vector field on the CPU backend (its inference program).
pub struct CpuModelField {
    program: CpuProgram,
    out: crate::autodiff::NodeId,
    cond: Option<crate::flow::Conditioning>,
    /// Whether the network reads a signal track.
    signal: bool,
    /// The guidance weight, when the program evaluates each point twice (see [`GpuModelField`]).
    guide: Option<f32>,
}

impl CpuModelField {
    /// The field of `model` for `rows` points, with classifier-free guidance weight
    /// `guidance` (1: none; the program then has `2·rows` rows, see [`GpuModelField`]).
    pub fn new(model: &FlowModel, rows: usize, guidance: f32) -> Result<Self> {
        let mlp = model.config.network(0)?;
        let cond = mlp.labels.map(|_| model.config.cond);
        let guide = guided(cond.as_ref(), guidance).then_some(guidance);
        let program_rows = rows * if guide.is_some() { 2 } else { 1 };
        let program = CpuProgram::new(&mlp.graph, program_rows, &[mlp.out], &model.params)?;
        let mut f = Self {
            program,
            out: mlp.out,
            cond,
            signal: mlp.signal.is_some(),
            guide,
        };
        f.set_class(None)?;
        Ok(f)
    }

    /// Network rows per evaluation (twice the points' when guided).
    pub fn rows(&self) -> usize {
        self.program.plan().batch
    }

    /// Evaluate every row for `class` (`None`: the null class); a no-op for an unconditional
    /// model.
    pub fn set_class(&mut self, class: Option<u32>) -> Result<()> {
        match &self.cond {
            Some(c) => {
                let l = c.labels(class, self.rows())?;
                self.set_labels(&l)
            }
            None => Ok(()),
        }
    }

    /// Evaluate network row `i` for class `labels[i]` (see [`FieldNet::set_labels`]); a no-op
    /// for an unconditional model.
    pub fn set_labels(&mut self, labels: &[f32]) -> Result<()> {
        if self.cond.is_some() {
            self.program.set_input(Network::LABELS, labels)?;
        }
        Ok(())
    }

    /// Evaluate every row with the signal track `values` (see [`FieldNet::set_signal`]); a
    /// no-op for a model without a signal track.
    pub fn set_signal(&mut self, values: &[f32]) -> Result<()> {
        if self.signal {
            self.program.set_input(Network::SIGNAL, values)?;
        }
        Ok(())
    }

    /// The model's class conditioning (`None`: unconditional).
    pub fn conditioning(&self) -> Option<&crate::flow::Conditioning> {
        self.cond.as_ref()
    }
}

impl VectorField<CpuOde> for CpuModelField {
    fn eval(&mut self, dev: &mut CpuOde, x: &usize, t: f32, out: &usize) -> Result<()> {
        let xs = &dev.bufs[*x];
        let n = xs.len();
        let input = self.program.input_mut(Network::X)?;
        input[..n].copy_from_slice(xs);
        if self.guide.is_some() {
            input[n..].copy_from_slice(xs);
        }
        self.program.input_mut(Network::T)?.fill(t);
        self.program.run();
        let res = self.program.output(self.out)?;
        let o = &mut dev.bufs[*out];
        match self.guide {
            None => o.copy_from_slice(res),
            Some(w) => {
                let (cond, null) = res.split_at(n);
                for ((d, &c), &u) in o.iter_mut().zip(cond).zip(null) {
                    *d = u + w * (c - u);
                }
            }
        }
        Ok(())
    }
}

/// The linear field `f(x) = x·Aᵀ` per row of length `k` (`A` is `[k, k]`, row-major); for a
/// skew-symmetric `A` it is tangent to the sphere and its flow is `exp(tA)·x`.
pub struct LinearField {
    a: Vec<f32>,
    k: usize,
    gpu: Option<GpuTensor<f32>>,
}

impl LinearField {
    /// The field of `a` (`[k, k]`).
    pub fn new(a: Vec<f32>, k: usize) -> Result<Self> {
        if a.len() != k * k || k == 0 {
            return Err(Error::Shape(format!(
                "a linear field needs a [{k}, {k}] matrix, got {} values",
                a.len()
            )));
        }
        Ok(Self { a, k, gpu: None })
    }
}

impl VectorField<CpuOde> for LinearField {
    fn eval(&mut self, dev: &mut CpuOde, x: &usize, _t: f32, out: &usize) -> Result<()> {
        let k = self.k;
        dev.with_out(*out, |o, bufs| {
            for (orow, xrow) in o.chunks_mut(k).zip(bufs[*x].chunks(k)) {
                for (i, d) in orow.iter_mut().enumerate() {
                    *d = dot(&self.a[i * k..(i + 1) * k], xrow) as f32;
                }
            }
        });
        Ok(())
    }
}

impl VectorField<GpuOde<'_>> for LinearField {
    fn eval(
        &mut self,
        dev: &mut GpuOde<'_>,
        x: &GpuTensor,
        _t: f32,
        out: &GpuTensor,
    ) -> Result<()> {
        let ctx = dev.context();
        if self.gpu.is_none() {
            self.gpu = Some(GpuTensor::from_slice(ctx, &self.a, &[self.k, self.k])?);
        }
        let a = self.gpu.as_ref().expect("uploaded above");
        let rows = x.len() / self.k;
        let g = Gemm::new(rows, self.k, self.k).trans_b(true);
        gemm(
            ctx,
            &mut dev.rec,
            &g,
            View::of(x),
            View::of(a),
            None,
            View::of(out),
        )
    }
}
