//! What each method ([`Geometry`]) adds to the shared sampler: its prior, the end of its time
//! span, the vector field made from the network's output, and the read-out of a token.
//!
//! | method | prior | time | field | read-out |
//! |---|---|---|---|---|
//! | Fisher-Flow | uniform on the orthant | 0 → 1 | the network (tangent) | `argmax x` |
//! | linear FM | `Dir(1)` | 0 → 1 | the network | `argmax x` |
//! | Fisher–Rao on the simplex | `Dir(½)` (the squared sphere prior) | 0 → 1 | the network | `argmax p` |
//! | Dirichlet FM | `Dir(1)` | 0 → [`T_MAX`](dirichlet::T_MAX) | `Σ_i p̂_i C(x_i, t)(e_i − x)` | `argmax p̂` at the end |
//!
//! Classifier-free guidance combines the network's outputs for the sample's class and the null
//! class, `o_null + w·(o_c − o_null)` ([`GpuModelField`]): for every method but Dirichlet FM
//! that is the field itself; for Dirichlet FM the outputs are the logits of `p̂`, so the guided
//! posterior is `p̂ ∝ p̂_null^(1−w)·p̂_c^w` and the field stays a mixture of `C(x_i, t)(e_i − x)`.

use std::collections::hash_map::{Entry, HashMap};

use crate::error::Result;
use crate::flow::devices::{CpuModelField, CpuOde, GpuModelField, GpuOde};
use crate::flow::dirichlet::{self, TableCache};
use crate::flow::field::FieldNet;
use crate::flow::kernels as fk;
use crate::flow::ode::{OdeDevice, VectorField};
use crate::flow::paths;
use crate::flow::sample::FlowModel;
use crate::flow::train::Geometry;
use crate::gpu::{GpuContext, GpuTensor, Recorder};
use crate::kernels::rng::{self, GpuRng};

/// The end of the method's time span (it starts at 0).
pub fn t_end(g: Geometry) -> f32 {
    match g {
        Geometry::Dirichlet => dirichlet::T_MAX,
        _ => 1.0,
    }
}

/// Whether the sampler folds its geodesic steps into the positive orthant (the sphere).
pub fn folds(g: Geometry) -> bool {
    g == Geometry::Sphere
}

/// `rows × k` prior points of chunk `counter` (what [`prior_gpu`] writes).
pub fn prior_cpu(
    g: Geometry,
    seed: u64,
    counter: u64,
    stream: u32,
    rows: usize,
    k: usize,
) -> Vec<f32> {
    match g {
        Geometry::Sphere => rng::cpu::sphere_prior(seed, counter, stream, rows, k),
        Geometry::Simplex | Geometry::Dirichlet => {
            rng::cpu::dirichlet1(seed, counter, stream, rows, k)
        }
        Geometry::FisherRaoSimplex => rng::cpu::sphere_prior(seed, counter, stream, rows, k)
            .into_iter()
            .map(|x| x * x)
            .collect(),
    }
}

/// Record the prior into `out` (`[B, L, K]`) with the draws `rng` points at.
pub fn prior_gpu(
    ctx: &GpuContext,
    rec: &mut Recorder,
    rng: &GpuRng,
    g: Geometry,
    stream: u32,
    out: &GpuTensor<f32>,
) -> Result<()> {
    match g {
        Geometry::Sphere => rng::sphere_prior(ctx, rec, rng, stream, out),
        Geometry::Simplex | Geometry::Dirichlet => rng::dirichlet1(ctx, rec, rng, stream, out),
        Geometry::FisherRaoSimplex => {
            rng::sphere_prior(ctx, rec, rng, stream, out)?;
            paths::square(ctx, rec, out)
        }
    }
}

/// The sampler's field on the CPU backend: the network, mixed into Dirichlet FM's field where
/// the method is Dirichlet FM.
pub struct CpuField {
    net: CpuModelField,
    k: usize,
    /// Dirichlet FM: the buffer of the logits and `C(·, t)` by time.
    dirichlet: Option<(usize, TableCache)>,
}

impl CpuField {
    /// The field of `model` for `rows` sequences on `dev`, with classifier-free guidance
    /// weight `guidance` (1: none).
    pub fn new(dev: &mut CpuOde, model: &FlowModel, rows: usize, guidance: f32) -> Result<Self> {
        let k = model.config.mlp.categories;
        let dirichlet = match model.config.geometry {
            Geometry::Dirichlet => Some((dev.buffer()?, TableCache::new(k))),
            _ => None,
        };
        Ok(Self {
            net: CpuModelField::new(model, rows, guidance)?,
            k,
            dirichlet,
        })
    }

    /// The model's network field (to set its labels).
    pub fn net(&mut self) -> &mut CpuModelField {
        &mut self.net
    }

    /// The tokens of the integrated points `x` at the end of the span, `t_end`.
    pub fn readout(&mut self, dev: &mut CpuOde, x: usize, t_end: f32) -> Result<Vec<u32>> {
        let src = match &self.dirichlet {
            Some((logits, _)) => {
                self.net.eval(dev, &x, t_end, logits)?;
                *logits
            }
            None => x,
        };
        Ok(fk::argmax_cpu(&dev.bufs[src], self.k))
    }
}

impl VectorField<CpuOde> for CpuField {
    fn eval(&mut self, dev: &mut CpuOde, x: &usize, t: f32, out: &usize) -> Result<()> {
        let Some((logits, tables)) = &mut self.dirichlet else {
            return self.net.eval(dev, x, t, out);
        };
        self.net.eval(dev, x, t, logits)?;
        let (table, k, x, z) = (tables.get(t), self.k, *x, *logits);
        dev.with_out(*out, |o, bufs| {
            let rows = o.chunks_mut(k).zip(bufs[x].chunks(k));
            for ((orow, xrow), zrow) in rows.zip(bufs[z].chunks(k)) {
                dirichlet::mix_row(xrow, zrow, table, orow);
            }
        });
        Ok(())
    }
}

/// Dirichlet FM's part of a [`GpuField`].
struct GpuDirichlet {
    logits: GpuTensor<f32>,
    tables: TableCache,
    /// The tables in f32 on the GPU, by the time's bits.
    uploaded: HashMap<u32, GpuTensor<f32>>,
}

/// The sampler's field on the GPU: the network, mixed into Dirichlet FM's field where the
/// method is Dirichlet FM.
pub struct GpuField<'c> {
    net: GpuModelField<'c>,
    dirichlet: Option<GpuDirichlet>,
}

impl<'c> GpuField<'c> {
    /// The field of `model`'s network `net` on `dev`, with classifier-free guidance weight
    /// `guidance` (1: none; `net` then evaluates each point twice, see [`GpuModelField`]).
    pub fn new(
        dev: &mut GpuOde<'c>,
        model: &FlowModel,
        net: FieldNet<'c>,
        guidance: f32,
    ) -> Result<Self> {
        let dirichlet = match model.config.geometry {
            Geometry::Dirichlet => Some(GpuDirichlet {
                logits: dev.buffer()?,
                tables: TableCache::new(model.config.mlp.categories),
                uploaded: HashMap::new(),
            }),
            _ => None,
        };
        Ok(Self {
            net: GpuModelField::new(dev, net, guidance)?,
            dirichlet,
        })
    }

    /// The model's network (to set its labels).
    pub fn net(&self) -> &FieldNet<'c> {
        self.net.net()
    }

    /// Record the tokens of the integrated points `x` at the end of the span, `t_end`, into
    /// `ids`.
    pub fn readout(
        &mut self,
        dev: &mut GpuOde<'c>,
        x: &GpuTensor<f32>,
        t_end: f32,
        ids: &GpuTensor<u32>,
    ) -> Result<()> {
        let src = match &self.dirichlet {
            Some(d) => {
                self.net.eval(dev, x, t_end, &d.logits)?;
                &d.logits
            }
            None => x,
        };
        fk::argmax(dev.context(), &mut dev.rec, src, ids)
    }
}

impl<'c> VectorField<GpuOde<'c>> for GpuField<'c> {
    fn eval(&mut self, dev: &mut GpuOde<'c>, x: &GpuTensor, t: f32, out: &GpuTensor) -> Result<()> {
        let Some(d) = &mut self.dirichlet else {
            return self.net.eval(dev, x, t, out);
        };
        self.net.eval(dev, x, t, &d.logits)?;
        let ctx = dev.context();
        let table = match d.uploaded.entry(t.to_bits()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let v: Vec<f32> = d.tables.get(t).values.iter().map(|&c| c as f32).collect();
                e.insert(GpuTensor::from_slice(ctx, &v, &[v.len()])?)
            }
        };
        dirichlet::mix(ctx, &mut dev.rec, x, &d.logits, table, out)
    }
}
