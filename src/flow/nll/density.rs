//! The integration of the points and their log-density change from the data back to the
//! prior, chunk by chunk, on either device; and the divergence at one time.

use super::field::{CpuDivField, GpuDivField, Handover, Joint, Reverse};
use super::kernels::Probes;
use super::prior::{depends_on_point, log_prior_of};
use super::{check, chunk_size, probes_of, NllConfig};
use crate::data::SignalTracks;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::flow::devices::{CpuOde, GpuOde};
use crate::flow::ode::{integrate_adaptive, integrate_fixed, OdeDevice, VectorField};
use crate::flow::sample::FlowModel;
use crate::flow::Solver;
use crate::gpu::{GpuContext, GpuTensor};
use crate::rng::Rng;

/// Log-densities per sequence and the work they took.
#[derive(Clone, Debug, PartialEq)]
pub struct Density {
    /// `log p_{t₁}(x)` of every sequence (nats, with respect to the area of `(S^{K−1})^L` or
    /// the Lebesgue measure of the simplices).
    pub log_p: Vec<f64>,
    /// Field evaluations per sequence.
    pub evaluations: usize,
}

/// The joint state's buffers.
type Pair<D> = (<D as OdeDevice>::Buf, <D as OdeDevice>::Buf);

/// Integrate the joint state from `a` (the points at `t₁`, zero log-density change) to `t = 0`.
fn integrate<D: Handover, F: VectorField<Joint<D>>>(
    dev: &mut Joint<D>,
    field: &mut F,
    cfg: &NllConfig,
    a: &Pair<D>,
    b: &Pair<D>,
) -> Result<(Pair<D>, usize)> {
    match cfg.solver {
        Solver::Dopri5 => {
            let (x, st) = integrate_adaptive(dev, field, a, b, 0.0, 1.0, &cfg.adaptive, true)?;
            Ok((x, st.evaluations))
        }
        s => {
            let x = integrate_fixed(dev, field, s, a, b, 0.0, 1.0, cfg.steps, true)?;
            Ok((x, cfg.steps * s.tableau().stages()))
        }
    }
}

/// Rademacher probes of chunk `chunk`.
fn rademacher(seed: u64, chunk: usize, len: usize) -> Vec<f32> {
    let mut r = Rng::fork(seed, 0x0d1f_0000 + chunk as u64);
    (0..len)
        .map(|_| if r.next_u64() >> 63 == 0 { 1.0 } else { -1.0 })
        .collect()
}

/// Rows `from..from+b` of `rows` (`[n, w]`), the last row repeated past the end.
fn padded<T: Copy>(rows: &[T], w: usize, from: usize, b: usize) -> Vec<T> {
    let n = rows.len() / w;
    (from..from + b)
        .flat_map(|i| &rows[i.min(n - 1) * w..(i.min(n - 1) + 1) * w])
        .copied()
        .collect()
}

/// What a conditional model's density is taken given: the class of every sequence and its
/// per-position signal track. The default is nothing: the null class, and no track (a model
/// that reads a track cannot be evaluated without one).
#[derive(Clone, Copy, Debug, Default)]
pub struct Given<'a> {
    /// The class of every sequence (`None`: the null class).
    pub labels: Option<&'a [u32]>,
    /// The signal track of every sequence (models trained with a track).
    pub signal: Option<&'a SignalTracks>,
}

impl Given<'_> {
    /// Errors unless the labels and tracks are those of `n` sequences that `model` reads.
    fn check(&self, model: &FlowModel, n: usize) -> Result<()> {
        let cond = model.config.cond;
        if let Some(ids) = self.labels {
            if ids.len() != n {
                return Err(Error::Shape(format!(
                    "{} labels for {n} sequences",
                    ids.len()
                )));
            }
            for &c in ids {
                cond.check_class(Some(c))?;
            }
        }
        cond.check_signal(self.signal.map_or(0, |t| t.channels), "--signal")?;
        match self.signal {
            Some(t) if (t.n, t.len) != (n, model.config.mlp.seq_len) => Err(Error::Shape(format!(
                "--signal: {} tracks of length {} for {n} sequences of length {}",
                t.n, t.len, model.config.mlp.seq_len
            ))),
            _ => Ok(()),
        }
    }

    /// The label input of the chunk of `b` sequences from `from` (the null class without
    /// labels), and its signal input `[b, L, S]` (empty without a track).
    fn chunk(&self, model: &FlowModel, from: usize, b: usize) -> (Vec<f32>, Vec<f32>) {
        let labels = match self.labels {
            Some(ids) => padded(ids, 1, from, b).iter().map(|&c| c as f32).collect(),
            None => vec![model.config.cond.null(); b],
        };
        let signal = self
            .signal
            .map_or_else(Vec::new, |t| padded(&t.values, t.len * t.channels, from, b));
        (labels, signal)
    }
}

/// `log p_{t₁}(x)` of `points` (`[n, L, K]` points of the closed positive orthants, or of the
/// simplices) under `model` on `device` (see the [module docs](super)); a class-conditional
/// model is evaluated for the null class.
pub fn log_density(
    device: Device,
    model: &FlowModel,
    points: &[f32],
    t1: f32,
    cfg: &NllConfig,
) -> Result<Density> {
    log_density_given(device, model, points, Given::default(), t1, cfg)
}

/// [`log_density`] of a conditional model given the class and the signal track of every
/// sequence.
pub fn log_density_given(
    device: Device,
    model: &FlowModel,
    points: &[f32],
    given: Given,
    t1: f32,
    cfg: &NllConfig,
) -> Result<Density> {
    check(model, cfg)?;
    let w = model.config.mlp.width();
    if points.is_empty() || !points.len().is_multiple_of(w) {
        return Err(Error::Shape(format!(
            "{} values are not whole sequences of L·K = {w}",
            points.len()
        )));
    }
    if let Some(bad) = points.iter().find(|v| !v.is_finite()) {
        return Err(Error::NonFinite(format!("a point holds {bad}")));
    }
    let t_max = super::t_end(model, cfg, super::Protocol::Dequantized);
    if !(t1 > 0.0 && t1 <= t_max) {
        return Err(Error::InvalidArgument(format!(
            "t1 = {t1} must be in (0, {t_max}]"
        )));
    }
    let n = points.len() / w;
    given.check(model, n)?;
    let (mut density, ends) = match device {
        Device::Gpu(ctx) => log_density_gpu(ctx, model, points, given, n, t1, cfg)?,
        Device::Cpu => log_density_cpu(model, points, given, n, t1, cfg)?,
    };
    let k = model.config.mlp.categories;
    for (i, v) in density.log_p.iter_mut().enumerate() {
        *v += match &ends {
            Some(x0) => log_prior_of(model.config.geometry, k, &x0[i * w..(i + 1) * w]),
            None => log_prior_of(model.config.geometry, k, &vec![1.0; w]),
        };
        if !v.is_finite() {
            return Err(Error::NonFinite(
                "the log-density is not finite (the divergence integral, or the prior at a \
                 point on the simplex's boundary); use more --steps or --solver dopri5"
                    .into(),
            ));
        }
    }
    Ok(density)
}

/// The joint device of `b` sequences on the GPU.
fn gpu_joint<'c>(ctx: &'c GpuContext, model: &FlowModel, b: usize) -> Joint<GpuOde<'c>> {
    let (l, k) = (model.config.mlp.seq_len, model.config.mlp.categories);
    let g = model.config.geometry;
    Joint {
        x: GpuOde::new(ctx, g, [b, l, k]),
        l: GpuOde::new(ctx, g, [b, 1, 1]),
    }
}

/// The joint device of `b` sequences on the CPU backend.
fn cpu_joint(model: &FlowModel, b: usize) -> Joint<CpuOde> {
    let (k, w, g) = (
        model.config.mlp.categories,
        model.config.mlp.width(),
        model.config.geometry,
    );
    Joint {
        x: CpuOde::new(g, b * w, k),
        l: CpuOde::new(g, b, 1),
    }
}

/// The log-density changes, and the end points when the prior's density needs them.
type Integrated = (Density, Option<Vec<f32>>);

fn log_density_gpu(
    ctx: &GpuContext,
    model: &FlowModel,
    points: &[f32],
    given: Given,
    n: usize,
    t1: f32,
    cfg: &NllConfig,
) -> Result<Integrated> {
    let w = model.config.mlp.width();
    let b = chunk_size(model, cfg, n, ctx.max_binding(), 8192)?;
    let probes = probes_of(model, cfg, b);
    let mut field = GpuDivField::new(ctx, model, probes, Reverse { t1 })?;
    let mut dev = gpu_joint(ctx, model, b);
    let (a, c) = (dev.buffer()?, dev.buffer()?);
    let mut fixed = None;
    let mut out = Density {
        log_p: Vec::with_capacity(n),
        evaluations: 0,
    };
    let mut ends = depends_on_point(model.config.geometry).then(Vec::new);
    for (chunk, from) in (0..n).step_by(b).enumerate() {
        a.0.write(ctx, &padded(points, w, from, b))?;
        a.1.write(ctx, &vec![0.0; b])?;
        let (labels, signal) = given.chunk(model, from, b);
        field.set_conditions(&labels, &signal)?;
        if !probes.exact {
            field.set_probes(&rademacher(cfg.seed, chunk, probes.rows() * w))?;
        }
        let res: (GpuTensor, GpuTensor) = if cfg.solver == Solver::Dopri5 {
            let (res, evals) = integrate(&mut dev, &mut field, cfg, &a, &c)?;
            std::mem::take(&mut dev.x.rec).run(ctx)?;
            out.evaluations = out.evaluations.max(evals);
            res
        } else {
            if fixed.is_none() {
                // One recording of the whole integration, replayed per chunk.
                let (res, evals) = integrate(&mut dev, &mut field, cfg, &a, &c)?;
                fixed = Some((std::mem::take(&mut dev.x.rec), res));
                out.evaluations = evals;
            }
            let (rec, res) = fixed.as_ref().expect("recorded above");
            rec.run(ctx)?;
            res.clone()
        };
        let take = (n - from).min(b);
        let dl = res.1.to_vec(ctx)?;
        out.log_p.extend(dl.iter().take(take).map(|&v| v as f64));
        if let Some(e) = &mut ends {
            e.extend_from_slice(&res.0.to_vec(ctx)?[..take * w]);
        }
    }
    Ok((out, ends))
}

fn log_density_cpu(
    model: &FlowModel,
    points: &[f32],
    given: Given,
    n: usize,
    t1: f32,
    cfg: &NllConfig,
) -> Result<Integrated> {
    let w = model.config.mlp.width();
    let b = chunk_size(model, cfg, n, u64::MAX, 2048)?;
    let probes = probes_of(model, cfg, b);
    let mut field = CpuDivField::new(model, probes, Reverse { t1 })?;
    let mut dev = cpu_joint(model, b);
    let (a, c) = (dev.buffer()?, dev.buffer()?);
    let mut out = Density {
        log_p: Vec::with_capacity(n),
        evaluations: 0,
    };
    let mut ends = depends_on_point(model.config.geometry).then(Vec::new);
    for (chunk, from) in (0..n).step_by(b).enumerate() {
        dev.x.bufs[a.0] = padded(points, w, from, b);
        dev.l.bufs[a.1] = vec![0.0; b];
        let (labels, signal) = given.chunk(model, from, b);
        field.set_conditions(&labels, &signal)?;
        if !probes.exact {
            field.z = rademacher(cfg.seed, chunk, probes.rows() * w);
        }
        let (res, evals) = integrate(&mut dev, &mut field, cfg, &a, &c)?;
        out.evaluations = out.evaluations.max(evals);
        let take = (n - from).min(b);
        out.log_p
            .extend(dev.l.bufs[res.1].iter().take(take).map(|&v| v as f64));
        if let Some(e) = &mut ends {
            e.extend_from_slice(&dev.x.bufs[res.0][..take * w]);
        }
    }
    Ok((out, ends))
}

/// The divergence of `model`'s field at `points` (`[n, L, K]`) and time `t`, one value per
/// sequence (exact, or the Hutchinson estimate with the probes of `cfg.seed`), given the class
/// and signal track of every sequence ([`Given::default`]: the null class).
pub fn divergence(
    device: Device,
    model: &FlowModel,
    points: &[f32],
    given: Given,
    t: f32,
    cfg: &NllConfig,
) -> Result<Vec<f64>> {
    check(model, cfg)?;
    let w = model.config.mlp.width();
    if points.is_empty() || !points.len().is_multiple_of(w) {
        return Err(Error::Shape(format!(
            "{} values are not whole sequences of L·K = {w}",
            points.len()
        )));
    }
    let n = points.len() / w;
    given.check(model, n)?;
    let b = n.div_ceil(4) * 4;
    let (labels, signal) = given.chunk(model, 0, b);
    let probes: Probes = probes_of(model, cfg, b);
    let z = rademacher(cfg.seed, 0, probes.rows() * w);
    // With t1 = 1 the joint field at s = 1 − t is (−v, −div v) at time t.
    let time = Reverse { t1: 1.0 };
    let div = match device {
        Device::Gpu(ctx) => {
            let mut field = GpuDivField::new(ctx, model, probes, time)?;
            field.set_conditions(&labels, &signal)?;
            if !probes.exact {
                field.set_probes(&z)?;
            }
            let mut dev = gpu_joint(ctx, model, b);
            let (a, c) = (dev.buffer()?, dev.buffer()?);
            a.0.write(ctx, &padded(points, w, 0, b))?;
            field.eval(&mut dev, &a, 1.0 - t, &c)?;
            std::mem::take(&mut dev.x.rec).run(ctx)?;
            c.1.to_vec(ctx)?
        }
        Device::Cpu => {
            let mut field = CpuDivField::new(model, probes, time)?;
            field.set_conditions(&labels, &signal)?;
            field.z = z;
            let mut dev = cpu_joint(model, b);
            let (a, c) = (dev.buffer()?, dev.buffer()?);
            dev.x.bufs[a.0] = padded(points, w, 0, b);
            field.eval(&mut dev, &a, 1.0 - t, &c)?;
            dev.l.bufs[c.1].clone()
        }
    };
    Ok(div.iter().take(n).map(|&d| -(d as f64)).collect())
}
