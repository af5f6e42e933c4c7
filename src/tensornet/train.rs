//! Maximum-likelihood training of a non-negative MPS (`A = e^θ` entrywise) by full-batch Adam
//! on the negative log-likelihood, with gradients from environment contractions.

use super::{Mps, Site};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// Mean negative log-likelihood `−(1/M) Σ_m log P(x_m)` of configurations (row-major).
pub fn nll(mps: &Mps, data: &[u8]) -> Result<f64> {
    let lp = mps.log_prob(data)?;
    if lp.is_empty() {
        return Err(Error::Shape("no configurations".into()));
    }
    Ok(-lp.iter().sum::<f64>() / lp.len() as f64)
}

/// Normalised left vectors `L_{k}` (after sites `0..=k`, `L_{-1} = [1]`) for a fixed
/// configuration (`Some`) or summed over states (`None`).
fn lefts(mps: &Mps, x: Option<&[u8]>) -> Vec<Vec<f64>> {
    let mut out = vec![vec![1.0]];
    for (k, a) in mps.sites.iter().enumerate() {
        let l = out.last().unwrap();
        let mut nl = vec![0.0; a.dr];
        for (i, &li) in l.iter().enumerate() {
            for s in 0..a.d {
                if x.is_some_and(|x| x[k] as usize != s) {
                    continue;
                }
                let row = &a.data[(i * a.d + s) * a.dr..][..a.dr];
                for (o, &v) in nl.iter_mut().zip(row) {
                    *o += li * v;
                }
            }
        }
        let m = nl.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        if m > 0.0 {
            nl.iter_mut().for_each(|v| *v /= m);
        }
        out.push(nl);
    }
    out
}

/// Normalised right vectors; entry `k` is `R_k` (the bond right of site `k`), `R_{N-1} = [1]`.
fn rights(mps: &Mps, x: Option<&[u8]>) -> Vec<Vec<f64>> {
    let n = mps.len();
    let mut out = vec![Vec::new(); n];
    out[n - 1] = vec![1.0];
    for k in (1..n).rev() {
        let a = &mps.sites[k];
        let r = &out[k];
        let mut nr = vec![0.0; a.dl];
        for (l, o) in nr.iter_mut().enumerate() {
            for s in 0..a.d {
                if x.is_some_and(|x| x[k] as usize != s) {
                    continue;
                }
                let row = &a.data[(l * a.d + s) * a.dr..][..a.dr];
                *o += row.iter().zip(r).map(|(p, q)| p * q).sum::<f64>();
            }
        }
        let m = nr.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        if m > 0.0 {
            nr.iter_mut().for_each(|v| *v /= m);
        }
        out[k - 1] = nr;
    }
    out
}

/// Add `coef · ∂ log W / ∂A` (for configuration `x`, or `log Z` when `None`) into `grad`.
fn add_log_grad(mps: &Mps, x: Option<&[u8]>, coef: f64, grad: &mut [Vec<f64>]) {
    let ls = lefts(mps, x);
    let rs = rights(mps, x);
    for (k, a) in mps.sites.iter().enumerate() {
        let l = &ls[k];
        let r = &rs[k];
        // W (scaled) = Σ_{i,s,j} l[i] A[i,s,j] r[j] over the allowed s.
        let mut w = 0.0;
        for (i, &li) in l.iter().enumerate() {
            for s in 0..a.d {
                if x.is_some_and(|x| x[k] as usize != s) {
                    continue;
                }
                let row = &a.data[(i * a.d + s) * a.dr..][..a.dr];
                w += li * row.iter().zip(r).map(|(p, q)| p * q).sum::<f64>();
            }
        }
        if w == 0.0 {
            continue;
        }
        let c = coef / w;
        for (i, &li) in l.iter().enumerate() {
            for s in 0..a.d {
                if x.is_some_and(|x| x[k] as usize != s) {
                    continue;
                }
                let g = &mut grad[k][(i * a.d + s) * a.dr..][..a.dr];
                for (o, &rj) in g.iter_mut().zip(r) {
                    *o += c * li * rj;
                }
            }
        }
    }
}

/// The mean NLL and its gradient with respect to every site entry `A_k[l, s, r]` (same
/// layout as [`Site::data`]).
pub fn nll_grad(mps: &Mps, data: &[u8]) -> Result<(f64, Vec<Vec<f64>>)> {
    let n = mps.len();
    if data.is_empty() || !data.len().is_multiple_of(n) {
        return Err(Error::Shape(format!(
            "{} states is not a whole, non-zero number of {n}-site configurations",
            data.len()
        )));
    }
    let m = data.len() / n;
    let value = nll(mps, data)?;
    let mut grad: Vec<Vec<f64>> = mps.sites.iter().map(|s| vec![0.0; s.data.len()]).collect();
    for x in data.chunks(n) {
        add_log_grad(mps, Some(x), -1.0 / m as f64, &mut grad);
    }
    add_log_grad(mps, None, 1.0, &mut grad);
    Ok((value, grad))
}

/// Options of [`train_mps`].
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Bond dimension of the model.
    pub chi: usize,
    /// Full-batch Adam steps.
    pub steps: usize,
    /// Adam learning rate on `θ = log A`.
    pub lr: f64,
    /// Seed of the initialisation.
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            chi: 4,
            steps: 300,
            lr: 0.05,
            seed: 1,
        }
    }
}

/// What training did.
#[derive(Clone, Debug)]
pub struct TrainReport {
    /// NLL (nats per configuration) on the training data before each step, and after the last.
    pub nll: Vec<f64>,
}

/// Fit a non-negative MPS (`A = e^θ`) of bond dimension `opts.chi` to configurations `data`
/// (row-major `[M, n_sites]`, states `< d`) by minimising the NLL with Adam.
pub fn train_mps(
    data: &[u8],
    n_sites: usize,
    d: usize,
    opts: &TrainOptions,
) -> Result<(Mps, TrainReport)> {
    if n_sites == 0 || d < 2 || opts.chi == 0 {
        return Err(Error::InvalidArgument(
            "training needs n_sites ≥ 1, d ≥ 2, chi ≥ 1".into(),
        ));
    }
    if data.is_empty() || !data.len().is_multiple_of(n_sites) {
        return Err(Error::Shape(format!(
            "{} states is not a whole, non-zero number of {n_sites}-site configurations",
            data.len()
        )));
    }
    if let Some(p) = data.iter().position(|&v| v as usize >= d) {
        return Err(Error::InvalidArgument(format!(
            "state {} at position {p} is outside 0..{d}",
            data[p]
        )));
    }
    let mut g = Rng::from_state(opts.seed);
    let mut theta: Vec<Site> = (0..n_sites)
        .map(|k| {
            let dl = if k == 0 { 1 } else { opts.chi };
            let dr = if k + 1 == n_sites { 1 } else { opts.chi };
            let mut s = Site::zeros(dl, d, dr);
            s.data.iter_mut().for_each(|v| *v = 0.3 * g.normal());
            s
        })
        .collect();
    let build = |theta: &[Site]| -> Result<Mps> {
        let sites = theta
            .iter()
            .map(|t| Site {
                data: t.data.iter().map(|v| v.exp()).collect(),
                ..t.clone()
            })
            .collect();
        Mps::new(sites, 0.0)
    };
    let (b1, b2, eps) = (0.9, 0.999, 1e-8);
    let mut m1: Vec<Vec<f64>> = theta.iter().map(|s| vec![0.0; s.data.len()]).collect();
    let mut m2 = m1.clone();
    let mut hist = Vec::with_capacity(opts.steps + 1);
    for step in 0..opts.steps {
        let mps = build(&theta)?;
        let (v, grad) = nll_grad(&mps, data)?;
        if !v.is_finite() {
            return Err(Error::NonFinite(format!("NLL at step {step}")));
        }
        hist.push(v);
        let t = (step + 1) as i32;
        for k in 0..n_sites {
            for (idx, th) in theta[k].data.iter_mut().enumerate() {
                // Chain rule through A = e^θ.
                let gk = grad[k][idx] * mps.sites[k].data[idx];
                m1[k][idx] = b1 * m1[k][idx] + (1.0 - b1) * gk;
                m2[k][idx] = b2 * m2[k][idx] + (1.0 - b2) * gk * gk;
                let mh = m1[k][idx] / (1.0 - b1.powi(t));
                let vh = m2[k][idx] / (1.0 - b2.powi(t));
                *th -= opts.lr * mh / (vh.sqrt() + eps);
            }
        }
    }
    let mps = build(&theta)?;
    hist.push(nll(&mps, data)?);
    Ok((mps, TrainReport { nll: hist }))
}
