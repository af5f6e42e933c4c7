//! A trainable non-negative MPS with masked parameters, `A = mask ⊙ e^θ`, fitted to samples by
//! minibatch Adam on the negative log-likelihood and warm-started from round to round.
//!
//! The mask gives exact zeros: an entry outside it is 0 for every θ, so a model built on the
//! zero pattern of a constraint's automaton (e.g. the Fredkin chain's height counter,
//! [`dyck_support`]) puts probability exactly 0 outside the constraint, and every sample obeys
//! it. [`MpsModel::with_support`] takes the Kronecker product of such a pattern with a free bond
//! of dimension `χ`, so the model has extra capacity inside the constraint.

use super::{Mps, Site};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// Largest number of parameters of a model: θ, two Adam moments and the MPS take
/// `32 · 2^25` bytes = 1 GiB.
const MAX_PARAMS: usize = 1 << 25;

/// A masked, non-negative MPS `A_k = mask_k ⊙ exp(θ_k)` with its Adam state.
#[derive(Clone, Debug)]
pub struct MpsModel {
    shapes: Vec<(usize, usize, usize)>,
    theta: Vec<Vec<f64>>,
    mask: Vec<Vec<bool>>,
    m1: Vec<Vec<f64>>,
    m2: Vec<Vec<f64>>,
    t: i32,
}

/// Options of [`MpsModel::fit`].
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// Adam steps.
    pub steps: usize,
    /// Configurations per minibatch (drawn with replacement from the data).
    pub batch: usize,
    /// Adam learning rate on θ.
    pub lr: f64,
    /// Also train on every configuration with all states exchanged (`s ↦ 1 − s`, two states):
    /// for targets symmetric under a global flip.
    pub flip_augment: bool,
    /// Seed of the minibatch draws.
    pub seed: u64,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            steps: 200,
            batch: 256,
            lr: 0.02,
            flip_augment: false,
            seed: 1,
        }
    }
}

/// What a fit did: the NLL (nats per configuration) on (at most 2048 of) the data before and
/// after.
#[derive(Clone, Copy, Debug)]
pub struct FitReport {
    /// NLL before the first step.
    pub nll_before: f64,
    /// NLL after the last step.
    pub nll_after: f64,
}

/// The zero pattern of the Dyck-path constraint on `n` sites (even): the Fredkin MPS with all
/// allowed weights 1, whose bond carries the height.
pub fn dyck_support(n: usize) -> Result<Mps> {
    super::models::fredkin(n, 0.5)
}

fn check_size(shapes: impl IntoIterator<Item = (usize, usize, usize)>) -> Result<()> {
    let mut total = 0usize;
    for (dl, d, dr) in shapes {
        let p = dl
            .checked_mul(d)
            .and_then(|v| v.checked_mul(dr))
            .ok_or_else(|| Error::Limit("MPS site size overflows".into()))?;
        total = total.saturating_add(p);
    }
    if total > MAX_PARAMS {
        return Err(Error::Limit(format!(
            "an MPS of {total} parameters is over the {MAX_PARAMS} this trainer holds in memory; \
             lower the bond dimension"
        )));
    }
    Ok(())
}

/// Site shapes of a product-start model: bonds `chi` capped by the dimension of either side.
fn product_shapes(n: usize, d: usize, chi: usize) -> impl Iterator<Item = (usize, usize, usize)> {
    (0..n).map(move |k| {
        let dl = if k == 0 {
            1
        } else {
            capped_bond(n, d, chi, k - 1)
        };
        let dr = if k + 1 == n {
            1
        } else {
            capped_bond(n, d, chi, k)
        };
        (dl, d, dr)
    })
}

/// Bond after site `k` of `n`, capped by `d^{k+1}` and `d^{n-1-k}`.
fn capped_bond(n: usize, d: usize, chi: usize, k: usize) -> usize {
    let cap = |e: usize| -> usize {
        let mut v = 1usize;
        for _ in 0..e {
            v = v.saturating_mul(d);
            if v >= chi {
                return chi;
            }
        }
        v
    };
    chi.min(cap(k + 1)).min(cap(n - 1 - k))
}

impl MpsModel {
    fn from_parts(
        shapes: Vec<(usize, usize, usize)>,
        theta: Vec<Vec<f64>>,
        mask: Vec<Vec<bool>>,
    ) -> Self {
        let m1: Vec<Vec<f64>> = theta.iter().map(|t| vec![0.0; t.len()]).collect();
        Self {
            shapes,
            theta,
            m2: m1.clone(),
            m1,
            mask,
            t: 0,
        }
    }

    /// A near-uniform, near-product model: every entry `e^{noise · N(0,1)}` on bonds of
    /// dimension `chi` (capped near the ends). With `noise = 0` it is exactly the uniform
    /// independent-site distribution; a small noise lets the bond learn correlations.
    pub fn product(n: usize, d: usize, chi: usize, noise: f64, seed: u64) -> Result<Self> {
        if n == 0 || d < 2 || chi == 0 || !(noise.is_finite() && noise >= 0.0) {
            return Err(Error::InvalidArgument(format!(
                "a model needs n ≥ 1, d ≥ 2, chi ≥ 1 and a finite noise ≥ 0 (n = {n}, d = {d}, chi = {chi}, noise = {noise})"
            )));
        }
        Self::check_product(n, d, chi)?;
        let shapes: Vec<(usize, usize, usize)> = product_shapes(n, d, chi).collect();
        let mut g = Rng::new(seed);
        let theta: Vec<Vec<f64>> = shapes
            .iter()
            .map(|&(dl, d, dr)| (0..dl * d * dr).map(|_| noise * g.normal()).collect())
            .collect();
        let mask = theta.iter().map(|t| vec![true; t.len()]).collect();
        Ok(Self::from_parts(shapes, theta, mask))
    }

    /// Refuses, before anything is allocated, a [`MpsModel::product`] model over the size this
    /// trainer holds.
    pub fn check_product(n: usize, d: usize, chi: usize) -> Result<()> {
        check_size(product_shapes(n, d, chi))
    }

    /// The model equal to a non-negative MPS, with its zero entries masked (kept exactly 0).
    pub fn from_mps(mps: &Mps) -> Result<Self> {
        mps.validate()?;
        if !mps.is_nonnegative() {
            return Err(Error::InvalidArgument(
                "a model needs an MPS with non-negative entries".into(),
            ));
        }
        let shapes = mps.sites.iter().map(|s| (s.dl, s.d, s.dr)).collect();
        let theta = mps
            .sites
            .iter()
            .map(|s| {
                s.data
                    .iter()
                    .map(|&v| if v > 0.0 { v.ln() } else { 0.0 })
                    .collect()
            })
            .collect();
        let mask = mps
            .sites
            .iter()
            .map(|s| s.data.iter().map(|&v| v > 0.0).collect())
            .collect();
        Ok(Self::from_parts(shapes, theta, mask))
    }

    /// A model that is exactly zero wherever `support` is: bonds `D_k · chi` (the support's bond
    /// times a free bond of dimension `chi`), entry `[(a,i), s, (b,j)]` allowed iff
    /// `support[a, s, b] ≠ 0`, parameters `noise · N(0,1)`.
    pub fn with_support(support: &Mps, chi: usize, noise: f64, seed: u64) -> Result<Self> {
        support.validate()?;
        if chi == 0 || !(noise.is_finite() && noise >= 0.0) {
            return Err(Error::InvalidArgument(format!(
                "with_support needs chi ≥ 1 and a finite noise ≥ 0 (chi = {chi}, noise = {noise})"
            )));
        }
        let n = support.len();
        let d = support.d();
        let free = |k: usize| capped_bond(n, d, chi, k);
        let shapes: Vec<(usize, usize, usize)> = support
            .sites
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let fl = if k == 0 { 1 } else { free(k - 1) };
                let fr = if k + 1 == n { 1 } else { free(k) };
                (s.dl * fl, d, s.dr * fr)
            })
            .collect();
        check_size(shapes.iter().copied())?;
        let mut g = Rng::new(seed);
        let mut theta = Vec::with_capacity(n);
        let mut mask = Vec::with_capacity(n);
        for (s, &(dl, _, dr)) in support.sites.iter().zip(&shapes) {
            let (fl, fr) = (dl / s.dl, dr / s.dr);
            let mut mk = vec![false; dl * d * dr];
            for l in 0..dl {
                for p in 0..d {
                    for r in 0..dr {
                        mk[(l * d + p) * dr + r] = s.at(l / fl, p, r / fr) != 0.0;
                    }
                }
            }
            theta.push((0..mk.len()).map(|_| noise * g.normal()).collect());
            mask.push(mk);
        }
        Ok(Self::from_parts(shapes, theta, mask))
    }

    /// Number of sites.
    pub fn n_sites(&self) -> usize {
        self.shapes.len()
    }
    /// States per site.
    pub fn d(&self) -> usize {
        self.shapes[0].1
    }
    /// Largest bond dimension.
    pub fn chi_max(&self) -> usize {
        self.shapes.iter().map(|s| s.0.max(s.2)).max().unwrap_or(1)
    }
    /// Number of free (unmasked) parameters.
    pub fn n_params(&self) -> usize {
        self.mask.iter().flatten().filter(|&&m| m).count()
    }

    /// The MPS `A_k = mask ⊙ e^{θ_k − c_k}` with `c_k = max θ_k` moved into the log-scale, so
    /// entries lie in `[0, 1]` (safe for f32).
    pub fn mps(&self) -> Result<Mps> {
        let mut log_scale = 0.0;
        let mut sites = Vec::with_capacity(self.shapes.len());
        for ((&(dl, d, dr), th), mk) in self.shapes.iter().zip(&self.theta).zip(&self.mask) {
            let c = th
                .iter()
                .zip(mk)
                .filter(|(_, &m)| m)
                .fold(f64::NEG_INFINITY, |c, (&v, _)| c.max(v));
            let c = if c.is_finite() { c } else { 0.0 };
            log_scale += c;
            let data = th
                .iter()
                .zip(mk)
                .map(|(&v, &m)| if m { (v - c).exp() } else { 0.0 })
                .collect();
            sites.push(Site { dl, d, dr, data });
        }
        let mps = Mps::new(sites, log_scale)?;
        if mps.log_norm() == f64::NEG_INFINITY {
            return Err(Error::InvalidArgument(
                "the mask leaves no configuration with positive weight".into(),
            ));
        }
        Ok(mps)
    }

    fn check_data(&self, data: &[u8]) -> Result<usize> {
        let n = self.n_sites();
        if data.is_empty() || !data.len().is_multiple_of(n) {
            return Err(Error::Shape(format!(
                "{} states is not a whole, non-zero number of {n}-site configurations",
                data.len()
            )));
        }
        if let Some(p) = data.iter().position(|&v| v as usize >= self.d()) {
            return Err(Error::InvalidArgument(format!(
                "state {} at position {p} is outside 0..{}",
                data[p],
                self.d()
            )));
        }
        Ok(data.len() / n)
    }

    /// Fit to configurations `data` (row-major `[M, N]`) by `opts.steps` Adam steps on
    /// minibatches, continuing from the current parameters and Adam moments.
    pub fn fit(&mut self, data: &[u8], opts: &FitOptions) -> Result<FitReport> {
        let m = self.check_data(data)?;
        if opts.batch == 0 || !(opts.lr.is_finite() && opts.lr > 0.0) {
            return Err(Error::InvalidArgument(format!(
                "fitting needs batch ≥ 1 and a finite lr > 0 (batch = {}, lr = {})",
                opts.batch, opts.lr
            )));
        }
        if opts.flip_augment && self.d() != 2 {
            return Err(Error::InvalidArgument(
                "flip augmentation needs two states per site".into(),
            ));
        }
        let n = self.n_sites();
        let eval = &data[..m.min(2048) * n];
        let nll_before = mean_nll(&self.mps()?, eval)?;
        let mut g = Rng::new(opts.seed);
        let mut batch = vec![0u8; opts.batch * n];
        for _ in 0..opts.steps {
            for x in batch.chunks_mut(n) {
                let i = g.below(m as u64) as usize;
                x.copy_from_slice(&data[i * n..(i + 1) * n]);
                if opts.flip_augment && g.uniform() < 0.5 {
                    x.iter_mut().for_each(|v| *v = 1 - *v);
                }
            }
            let mps = self.mps()?;
            let grad = nll_grad_theta(&mps, &batch);
            self.adam(&grad, opts.lr)?;
        }
        let nll_after = mean_nll(&self.mps()?, eval)?;
        Ok(FitReport {
            nll_before,
            nll_after,
        })
    }

    fn adam(&mut self, grad: &[Vec<f64>], lr: f64) -> Result<()> {
        self.t = self.t.saturating_add(1);
        for (k, gk) in grad.iter().enumerate() {
            let (th, mk) = (&mut self.theta[k], &self.mask[k]);
            let (m1, m2) = (&mut self.m1[k], &mut self.m2[k]);
            for (i, &gi) in gk.iter().enumerate() {
                if !mk[i] {
                    continue;
                }
                if !gi.is_finite() {
                    return Err(Error::NonFinite(format!("NLL gradient at site {k}")));
                }
                adam_step(&mut th[i], &mut m1[i], &mut m2[i], gi, lr, self.t);
            }
        }
        Ok(())
    }
}

/// One Adam step (β = 0.9, 0.999, ε = 1e-8) on parameter `th` with moments `m1`, `m2`,
/// gradient `g`, rate `lr`, at step `t ≥ 1`.
#[inline]
pub(super) fn adam_step(th: &mut f64, m1: &mut f64, m2: &mut f64, g: f64, lr: f64, t: i32) {
    let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8);
    let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
    *m1 = b1 * *m1 + (1.0 - b1) * g;
    *m2 = b2 * *m2 + (1.0 - b2) * g * g;
    *th -= lr * (*m1 / c1) / ((*m2 / c2).sqrt() + eps);
}

/// Mean `−log P(x)` over configurations.
fn mean_nll(mps: &Mps, data: &[u8]) -> Result<f64> {
    let lp = mps.log_prob(data)?;
    Ok(-lp.iter().sum::<f64>() / lp.len() as f64)
}

/// Scale a vector to max-abs 1 (left alone when zero).
fn normalise(v: &mut [f64]) {
    let m = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    if m > 0.0 {
        let inv = 1.0 / m;
        v.iter_mut().for_each(|x| *x *= inv);
    }
}

/// Add `coef · ∂ log W / ∂A` for configuration `x` (or `log Z` when `None`) into `grad`,
/// contracting left vectors once and right vectors on the way back: `O(N χ²)` per
/// configuration (`O(N d χ²)` for `Z`).
fn add_log_grad(
    mps: &Mps,
    x: Option<&[u8]>,
    coef: f64,
    lefts: &mut Vec<Vec<f64>>,
    grad: &mut [Vec<f64>],
) {
    let n = mps.len();
    let d = mps.d();
    let states = |k: usize| match x {
        Some(x) => x[k] as usize..x[k] as usize + 1,
        None => 0..d,
    };
    lefts.resize(n, Vec::new());
    lefts[0].clear();
    lefts[0].push(1.0);
    for k in 0..n - 1 {
        let a = &mps.sites[k];
        let (head, tail) = lefts.split_at_mut(k + 1);
        let (l, nl) = (&head[k], &mut tail[0]);
        nl.clear();
        nl.resize(a.dr, 0.0);
        for (i, &li) in l.iter().enumerate() {
            if li == 0.0 {
                continue;
            }
            for s in states(k) {
                let row = &a.data[(i * d + s) * a.dr..][..a.dr];
                for (o, &v) in nl.iter_mut().zip(row) {
                    *o += li * v;
                }
            }
        }
        normalise(nl);
    }
    let mut r = vec![1.0f64];
    let mut t = Vec::new();
    for k in (0..n).rev() {
        let a = &mps.sites[k];
        let l = &lefts[k];
        // t[l] = Σ_{s,r} A[l, s, r] R[r]; the weight (scaled) is ℓ · t.
        t.clear();
        t.resize(a.dl, 0.0);
        for (i, ti) in t.iter_mut().enumerate() {
            for s in states(k) {
                let row = &a.data[(i * d + s) * a.dr..][..a.dr];
                *ti += row.iter().zip(&r).map(|(p, q)| p * q).sum::<f64>();
            }
        }
        let w: f64 = l.iter().zip(&t).map(|(p, q)| p * q).sum();
        if w > 0.0 {
            let c = coef / w;
            for (i, &li) in l.iter().enumerate() {
                if li == 0.0 {
                    continue;
                }
                for s in states(k) {
                    let g = &mut grad[k][(i * d + s) * a.dr..][..a.dr];
                    for (o, &rj) in g.iter_mut().zip(&r) {
                        *o += c * li * rj;
                    }
                }
            }
        }
        normalise(&mut t);
        std::mem::swap(&mut r, &mut t);
    }
}

/// Gradient of the mean NLL of `data` with respect to θ (`A = mask ⊙ e^θ`, so
/// `∂/∂θ = A ∂/∂A`; masked entries have `A = 0` and gradient 0).
fn nll_grad_theta(mps: &Mps, data: &[u8]) -> Vec<Vec<f64>> {
    let n = mps.len();
    let m = data.len() / n;
    let mut grad: Vec<Vec<f64>> = mps.sites.iter().map(|s| vec![0.0; s.data.len()]).collect();
    let mut lefts = Vec::new();
    for x in data.chunks(n) {
        add_log_grad(mps, Some(x), -1.0 / m as f64, &mut lefts, &mut grad);
    }
    add_log_grad(mps, None, 1.0, &mut lefts, &mut grad);
    for (g, s) in grad.iter_mut().zip(&mps.sites) {
        g.iter_mut().zip(&s.data).for_each(|(g, a)| *g *= a);
    }
    grad
}

/// The mean NLL of `data` under `model` and its gradient with respect to the model's θ, in the
/// layout of [`Site::data`] (for finite-difference checks).
pub fn model_nll_grad(model: &MpsModel, data: &[u8]) -> Result<(f64, Vec<Vec<f64>>)> {
    model.check_data(data)?;
    let mps = model.mps()?;
    Ok((mean_nll(&mps, data)?, nll_grad_theta(&mps, data)))
}

impl MpsModel {
    /// The parameters θ (layout of [`Site::data`]); masked entries are ignored.
    pub fn theta(&self) -> &[Vec<f64>] {
        &self.theta
    }
    /// Set one parameter (for finite-difference checks).
    pub fn set_theta(&mut self, site: usize, index: usize, value: f64) -> Result<()> {
        let v = self
            .theta
            .get_mut(site)
            .and_then(|t| t.get_mut(index))
            .ok_or_else(|| Error::Shape(format!("no parameter {index} at site {site}")))?;
        *v = value;
        Ok(())
    }
}
