//! The negative log-likelihood of token sequences under a [`Protocol`](super::Protocol).

use super::{check, log_density, log_prior, NllConfig, Protocol, STREAM_DEQUANT};
use crate::data::SequenceDataset;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::flow::sample::FlowModel;
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

impl SequenceNll {
    /// Mean nats per sequence and its standard error over sequences.
    pub fn mean_se(&self) -> (f64, f64) {
        let n = self.nats.len() as f64;
        let mean = self.nats.iter().sum::<f64>() / n;
        let var = self.nats.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        (mean, (var / n).sqrt())
    }
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

/// The starting points of `data` under `cfg.protocol` and the log-density `log q` of each
/// sequence's draw: draws in the argmax cells of the tokens, contracted towards the vertices
/// by [`NllConfig::contract`] ([`Protocol::Dequantized`]), or the one-hot vertices (`log q`
/// zero).
pub fn start_points(data: &SequenceDataset, k: usize, cfg: &NllConfig) -> (Vec<f32>, Vec<f64>) {
    let rows = data.tokens.len();
    match cfg.protocol {
        Protocol::Vertex => {
            let mut x = vec![0.0; rows * k];
            for (r, &tok) in data.tokens.iter().enumerate() {
                x[r * k + tok as usize] = 1.0;
            }
            (x, vec![0.0; data.n])
        }
        Protocol::Dequantized => {
            let mut x = rng::cpu::sphere_prior(cfg.seed, 0, STREAM_DEQUANT, rows, k);
            let per_row: Vec<f64> = x
                .chunks_mut(k)
                .zip(&data.tokens)
                .map(|(row, &tok)| cell_draw(row, tok as usize, cfg.contract))
                .collect();
            let log_q = per_row.chunks(data.len).map(|r| r.iter().sum()).collect();
            (x, log_q)
        }
    }
}

/// The negative log-likelihood of every sequence of `data` under `model` (see [`Protocol`]).
pub fn sequence_nll(
    device: Device,
    model: &FlowModel,
    data: &SequenceDataset,
    cfg: &NllConfig,
) -> Result<SequenceNll> {
    check(model, cfg)?;
    let (l, k) = (model.config.mlp.seq_len, model.config.mlp.categories);
    if data.len != l || data.vocab > k {
        return Err(Error::Shape(format!(
            "the data are sequences of length {} over {} tokens; the model expects length {l} \
             over at most {k}",
            data.len, data.vocab
        )));
    }
    let (x, log_q) = start_points(data, k, cfg);
    let t1 = match cfg.protocol {
        Protocol::Dequantized => 1.0,
        Protocol::Vertex => (1.0 - cfg.eps) as f32,
    };
    let d = log_density(device, model, &x, t1, cfg)?;
    Ok(SequenceNll {
        nats: log_q.iter().zip(&d.log_p).map(|(q, lp)| q - lp).collect(),
        len: l,
        evaluations: d.evaluations,
    })
}
