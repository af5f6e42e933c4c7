//! The negative log-likelihood of token sequences under a [`Protocol`](super::Protocol).

use super::STREAM_DEQUANT;
use super::{
    check, log_density_given, log_dirichlet1, log_prior, t_end, Given, NllConfig, Protocol,
};
use crate::data::SequenceDataset;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::flow::sample::FlowModel;
use crate::flow::train::Geometry;
use crate::kernels::rng;

/// Negative log-likelihoods of sequences under one [`Protocol`].
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceNll {
    /// Nats per sequence.
    pub nats: Vec<f64>,
    /// Sequence length.
    pub len: usize,
    /// Field evaluations per sequence.
    pub evaluations: usize,
}

/// Mean and standard error over `v` (not empty).
fn mean_se(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, (var / n).sqrt())
}

impl SequenceNll {
    /// Mean nats per sequence and its standard error over sequences.
    pub fn mean_se(&self) -> (f64, f64) {
        mean_se(&self.nats)
    }
}

/// The negative log-likelihood of the sequences of one class.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassNll {
    /// The class.
    pub class: u32,
    /// Its sequences.
    pub n: usize,
    /// Mean nats per sequence.
    pub mean: f64,
    /// Standard error of the mean.
    pub se: f64,
}

/// [`SequenceNll`] grouped by `labels` (one per sequence), classes in increasing order.
pub fn class_nll(nll: &SequenceNll, labels: &[u32]) -> Vec<ClassNll> {
    let mut classes: Vec<u32> = labels.to_vec();
    classes.sort_unstable();
    classes.dedup();
    classes
        .into_iter()
        .map(|c| {
            let v: Vec<f64> = nll
                .nats
                .iter()
                .zip(labels)
                .filter(|(_, &l)| l == c)
                .map(|(&a, _)| a)
                .collect();
            let (mean, se) = mean_se(&v);
            ClassNll {
                class: c,
                n: v.len(),
                mean,
                se,
            }
        })
        .collect()
}

/// One point uniform in the argmax cell of `tok` (`y`, a uniform point of the orthant, is
/// moved by swapping its largest coordinate onto `tok`: a measure-preserving map of each cell
/// onto the token's), then contracted towards the vertex `e_tok` along the great circle, the
/// angle scaled by `lambda`; returns `log q` of the point, the density of this draw with
/// respect to the sphere's area: `log(K·p_0) − log λ + (K−2)·log(sin θ / sin λθ)`, `θ` the
/// angle of `y` from the vertex (the geodesic polar area element is `sin^{K−2}θ dθ dω`).
fn cell_draw(y: &mut [f32], tok: usize, lambda: f64) -> f64 {
    let k = y.len();
    let top = (0..k).fold(0, |m, j| if y[j] > y[m] { j } else { m });
    y.swap(top, tok);
    let ys: Vec<f64> = y.iter().map(|&v| v as f64).collect();
    let along = ys[tok].clamp(-1.0, 1.0);
    let norm_w = (1.0 - along * along).max(0.0).sqrt();
    let theta = norm_w.atan2(along);
    let cell = (k as f64).ln() + log_prior(k) - lambda.ln();
    if norm_w < 1e-12 {
        return cell - (k as f64 - 2.0) * lambda.ln();
    }
    let phi = lambda * theta;
    for (j, v) in y.iter_mut().enumerate() {
        let w = if j == tok { 0.0 } else { ys[j] / norm_w };
        let e = (j == tok) as u8 as f64;
        *v = (phi.cos() * e + phi.sin() * w) as f32;
    }
    cell + (k as f64 - 2.0) * (theta.sin().ln() - phi.sin().ln())
}

/// [`cell_draw`] on the simplex: a `Dir(1)` point `y` moved into the argmax cell of `tok` by
/// the same swap, then contracted linearly towards the vertex, `e + λ(y − e)`; returns `log q`
/// with respect to the Lebesgue measure of the simplex: `log(K·(K−1)!) − (K−1)·log λ`.
fn simplex_cell_draw(y: &mut [f32], tok: usize, lambda: f64) -> f64 {
    let k = y.len();
    let top = (0..k).fold(0, |m, j| if y[j] > y[m] { j } else { m });
    y.swap(top, tok);
    for (j, v) in y.iter_mut().enumerate() {
        let e = (j == tok) as u8 as f64;
        *v = (e + lambda * (*v as f64 - e)) as f32;
    }
    (k as f64).ln() + log_dirichlet1(k) - (k as f64 - 1.0) * lambda.ln()
}

/// The starting points of `data` for a model of method `geometry` under `cfg.protocol` and
/// the log-density `log q` of each sequence's draw: draws in the argmax cells of the tokens,
/// contracted towards the vertices by [`NllConfig::contract`] ([`Protocol::Dequantized`]), or
/// the one-hot vertices (`log q` zero; for Dirichlet FM the vertices moved by `ε` towards the
/// simplex's centre, see the [module docs](super)).
pub fn start_points(
    data: &SequenceDataset,
    k: usize,
    geometry: Geometry,
    cfg: &NllConfig,
) -> (Vec<f32>, Vec<f64>) {
    let rows = data.tokens.len();
    match cfg.protocol {
        Protocol::Vertex => {
            let inset = if geometry == Geometry::Dirichlet {
                cfg.eps
            } else {
                0.0
            };
            let mut x = vec![(inset / k as f64) as f32; rows * k];
            for (r, &tok) in data.tokens.iter().enumerate() {
                x[r * k + tok as usize] += (1.0 - inset) as f32;
            }
            (x, vec![0.0; data.n])
        }
        Protocol::Dequantized => {
            let sphere = geometry == Geometry::Sphere;
            let mut x = if sphere {
                rng::cpu::sphere_prior(cfg.seed, 0, STREAM_DEQUANT, rows, k)
            } else {
                rng::cpu::dirichlet1(cfg.seed, 0, STREAM_DEQUANT, rows, k)
            };
            let draw = if sphere { cell_draw } else { simplex_cell_draw };
            let per_row: Vec<f64> = x
                .chunks_mut(k)
                .zip(&data.tokens)
                .map(|(row, &tok)| draw(row, tok as usize, cfg.contract))
                .collect();
            let log_q = per_row.chunks(data.len).map(|r| r.iter().sum()).collect();
            (x, log_q)
        }
    }
}

/// The class each sequence is scored under: the data's labels, or one class for all.
fn labels_for(
    model: &FlowModel,
    data: &SequenceDataset,
    class: Option<u32>,
) -> Result<Option<Vec<u32>>> {
    let cond = model.config.cond;
    if cond.classes == 0 {
        return match class {
            Some(_) => cond.check_class(class).map(|_| None),
            None => Ok(None),
        };
    }
    if let Some(c) = class {
        cond.check_class(Some(c))?;
        return Ok(Some(vec![c; data.n]));
    }
    let labels = data.labels.as_ref().ok_or_else(|| {
        Error::InvalidArgument(
            "the model is class-conditional: the likelihood of a sequence is given its class, \
             and the data have no labels (class=C in every FASTA header, --labels FILE, or a \
             dna: source; or score every sequence under one --class)"
                .into(),
        )
    })?;
    if labels.classes > cond.classes {
        if let Some((i, &c)) = labels
            .ids
            .iter()
            .enumerate()
            .find(|(_, &c)| c as usize >= cond.classes)
        {
            return Err(Error::InvalidArgument(format!(
                "sequence {i} has class {c}, but the model has {} classes (0..{})",
                cond.classes, cond.classes
            )));
        }
    }
    Ok(Some(labels.ids.clone()))
}

/// The negative log-likelihood of every sequence of `data` under `model` (see [`Protocol`]);
/// a class-conditional model scores each sequence given its label in `data`.
pub fn sequence_nll(
    device: Device,
    model: &FlowModel,
    data: &SequenceDataset,
    cfg: &NllConfig,
) -> Result<SequenceNll> {
    sequence_nll_given(device, model, data, None, cfg)
}

/// [`sequence_nll`] with every sequence scored under `class` (`None`: the data's labels for a
/// class-conditional model). A model trained with a signal track reads each sequence's track
/// from the data ([`SequenceDataset::with_signal`]). Errors on a class or label outside the
/// model's classes, on a conditional model without labels or class, and on tracks missing or
/// of other channels than the model reads.
pub fn sequence_nll_given(
    device: Device,
    model: &FlowModel,
    data: &SequenceDataset,
    class: Option<u32>,
    cfg: &NllConfig,
) -> Result<SequenceNll> {
    check(model, cfg)?;
    let labels = labels_for(model, data, class)?;
    let (l, k) = (model.config.mlp.seq_len, model.config.mlp.categories);
    if data.len != l || data.vocab > k {
        return Err(Error::Shape(format!(
            "the data are sequences of length {} over {} tokens; the model expects length {l} \
             over at most {k}",
            data.len, data.vocab
        )));
    }
    let (x, log_q) = start_points(data, k, model.config.geometry, cfg);
    let t1 = t_end(model, cfg, cfg.protocol);
    let given = Given {
        labels: labels.as_deref(),
        signal: data.signal(),
    };
    let d = log_density_given(device, model, &x, given, t1, cfg)?;
    Ok(SequenceNll {
        nats: log_q.iter().zip(&d.log_p).map(|(q, lp)| q - lp).collect(),
        len: l,
        evaluations: d.evaluations,
    })
}
