//! Tensor-network discrete diffusion (Causer, Rotskoff, Garrahan 2024): probability
//! distributions over `N` discrete sites held as matrix product states (MPS), exact
//! constructions (1D/2D Ising, Fredkin chain), noising by a product channel `e^{tW}`, one-shot
//! denoising and step-wise reverse dynamics ([`ReverseDynamics`]), exact (perfect) sampling on
//! the CPU and on the GPU, maximum-likelihood training, and Monte Carlo on Boltzmann weights
//! known up to normalisation with the MPS as the proposal.
//!
//! # Monte Carlo with MPS proposals
//! A target is a [`LogWeight`] — `−βE(x)` up to a constant, `−∞` outside a hard constraint:
//! [`IsingModel`] (per-bond couplings, per-site fields, open/cylinder/torus), [`FredkinWeight`],
//! [`TableWeight`], or an [`Mps`]. Batches of chains ([`Chains`]) move by
//! Metropolis–Hastings with disconnected ([`IndependentProposer`]: fresh exact samples of the
//! model `Pθ`, on the GPU when a context is given) or connected ([`ConnectedProposer`]: flip
//! noise, then exact denoising) proposals, both accepted with
//! `min(1, π(x′)Pθ(x) / (π(x)Pθ(x′)))` by a batched accept step ([`AcceptStep`]), or by local
//! single-site Metropolis ([`run_local`]). With a GPU, disconnected chains on Ising and
//! Fredkin targets ([`EnergyForm`]) run whole on it ([`GpuChains`], [`run_mh_gpu`]): one
//! recording per step, the same random numbers as the CPU path. The learn–propose–accept loop ([`Learner`],
//! [`learn`]) refits a masked non-negative MPS ([`MpsModel`], `A = mask ⊙ e^θ`: exact zeros
//! outside a constraint) to the chains' states after every round and reports acceptance,
//! Sokal-windowed integrated autocorrelation times ([`integrated_autocorrelation`]) and
//! effective samples per second; [`compare`] runs the paper's kind of comparison over β.
//! [`ColumnMps`] keeps the exact MPS of an open or cylinder Ising lattice (`χ = 2^ly`) in its
//! sparse shift-register form — `O(N)` per perfect sample — and [`ColumnProposer`] proposes
//! from it for targets it does not contain exactly (a torus, other couplings or fields).
//!
//! # Conventions
//! An [`Mps`] holds site tensors `A_k[l, s, r]` of shape `[χ_{k-1}, d, χ_k]` (row-major, `r`
//! fastest) with `χ_{-1} = χ_{N-1} = 1`, and a scalar `log_scale`: the unnormalised weight of a
//! configuration is `W(x) = exp(log_scale) · A_0[x_0] A_1[x_1] ⋯ A_{N-1}[x_{N-1}]` and
//! `P(x) = W(x) / Z`. All CPU maths is f64 with log-scaled contractions (no overflow at
//! `N = 256`); the GPU works in f32 on rescaled vectors.
//!
//! # Perfect sampling (Ferris & Vidal 2012)
//! Right environments `R_k = Σ_{s_{k+1..}} A_{k+1}[s] ⋯` are contracted once (CPU, f64, each
//! rescaled to max 1) and folded into the site tensors: `M_k[s] = A_k[s] R_k` (a vector over
//! the left bond). A sample is then drawn site by site: `p(s_k | s_<k) ∝ ℓ_{k-1} · M_k[s_k]`,
//! and the left vector is updated as `ℓ_k = ℓ_{k-1} A_k[s_k] / (ℓ_{k-1} · M_k[s_k])`, which keeps
//! `ℓ_k · R_k = 1` (no drift of scale). The product of the chosen conditionals is the exact
//! normalised probability, so the same loop with given `s_k` computes `log P(x)`.
//!
//! # GPU strategy (`shaders/tensornet.wgsl`)
//! For `χ ≤ 64` (`run_small`) each invocation draws one sample with its left vector in private
//! memory: no workgroup memory, no barriers, 64 independent samples per workgroup, and the same
//! summation order as the CPU reference. For larger `χ` (`run`) one workgroup of 64 lanes owns
//! a batch of `B = min(256, 1536 / χ_max)` samples whose left vectors live in workgroup memory
//! (double-buffered, 12 KiB, inside WebGPU's default 16 KiB). Per site: (1) one lane per sample
//! forms the `d` weights `ℓ · M_k[s]`, draws `s` with the crate's counter-based Philox4x32-10
//! generator (key: the seed; counter: the global sample index and the site), and records it; (2) the `B · χ_k` entries of the new left vectors are spread over the 64 lanes
//! (lane ↔ (sample, right-bond column)); each is a length-`χ_{k-1}` dot product reading `A_k`
//! rows contiguously in the column index, so neighbouring lanes read neighbouring addresses and
//! the `B` samples of a workgroup share the tensor through the cache. Work per site is
//! `O(B d χ²)` spread over 64 lanes. A bitmask in workgroup memory marks the non-zero entries
//! of every left vector and both loops visit only those (in ascending order, so results do not
//! depend on scheduling): the exact constructions (shift registers, heights) have one-hot left
//! vectors, which makes a site `O(χ)` per sample; fully dense words take a plain loop; small `χ` packs many samples in a workgroup, large `χ`
//! (up to 1536) spreads one sample's vector–matrix product over all lanes. Thousands of
//! workgroups (independent samples) run per dispatch; there is no autocorrelation.
//! The CPU reference ([`sample_cpu`]) runs the same algorithm in f64 with the same random
//! numbers, so GPU and CPU samples agree draw for draw except where f32 rounding moves a
//! uniform across a threshold.
//!
//! # GPU chains (`shaders/tn_chains.wgsl`)
//! A Metropolis–Hastings step of `B` chains is one recording: the sampler above draws the `B`
//! proposals with their `log Pθ` (sample index `t·B + c`, the step `t` read from a counter
//! buffer), `energy` evaluates `(E, −βE, observables)` of each proposal (one invocation per
//! chain; Ising from a CSR neighbour table with couplings and fields, Fredkin by its heights),
//! `accept` draws a Philox uniform per chain and moves accepted chains, `local` runs the local
//! sweeps, the sampler in scoring mode and `energy` refresh `log Pθ` and `−βE` after them,
//! `record` writes the observables (and kept states) into a trace buffer, and `advance`
//! increments the counter. Replays need no host writes; the host reads the trace buffer once
//! per trace buffer of steps. The CPU path ([`mh_step`]) draws the same numbers in f64.

mod chains;
mod column;
mod column_gpu;
mod compare;
mod diffusion;
mod energy;
mod fit;
mod gpu;
mod gpu_chains;
mod learn;
mod linalg;
mod models;
mod proposal;
mod reverse;
mod rng;
mod sampler;
mod stats;
mod target;
mod train;

pub use chains::{
    check_run_size, mh_step, run_local, run_mh, AcceptStep, ChainTrace, Chains, CpuAccept,
    RunOptions,
};
pub use column::{check_column_size, column_table_bytes, ColumnModel, ColumnMps, ColumnProposer};
pub use column_gpu::{ColumnParams, GpuColumnMps, COLUMN_RUN, COLUMN_SHADER};
pub use compare::{compare, BetaResult, CompareOptions, MethodResult};
pub use diffusion::{
    condition_on_noisy, flip_kernel, mcmc_connected, mcmc_disconnected, noised, McmcStats,
};
pub use energy::{gpu_energies, EnergyForm, MAX_GPU_SITES};
pub use fit::{dyck_support, model_nll_grad, FitOptions, FitReport, MpsModel};
pub use gpu::{kernels, GpuMps, SHADER};
pub use gpu_chains::{run_mh_gpu, ChainParams, GpuChains};
pub use learn::{
    chains_on_gpu, learn, run_disconnected, summarise, LearnOptions, Learner, ProposalKind,
    RoundReport,
};
pub use linalg::{svd, Svd};
pub use models::{
    check_mps_size, dyck_area, enumerate_ising, fredkin, ising_2d, ising_chain, ising_cylinder,
    ising_torus, ising_transfer, kaufman_torus, random_mps, Boundary, IsingExact, IsingLattice,
    MAX_MPS_ENTRIES,
};
pub use proposal::{
    derive_key, keyed_uniform, ConnectedProposer, IndependentProposer, Proposals, Proposer,
};
pub use reverse::{reverse_rates, ReverseDynamics};
pub use rng::{open_uniform, uniform, uniform_at};
pub use sampler::{sample_cpu, Environments};
pub use stats::{estimate, integrated_autocorrelation, Autocorrelation, Estimate, SOKAL_C};
pub use target::{
    abs_magnetisation, enumerate_observables, onsager_energy, onsager_magnetisation, FredkinWeight,
    IsingModel, LogWeight, TableWeight,
};
pub use train::{nll, nll_grad, train_mps, TrainOptions, TrainReport};

use crate::error::{Error, Result};

/// One site tensor `A[l, s, r]` of shape `[dl, d, dr]`, row-major (`r` fastest).
#[derive(Clone, Debug, PartialEq)]
pub struct Site {
    /// Left bond dimension.
    pub dl: usize,
    /// Physical dimension.
    pub d: usize,
    /// Right bond dimension.
    pub dr: usize,
    /// `dl · d · dr` entries.
    pub data: Vec<f64>,
}

impl Site {
    /// A zero tensor.
    pub fn zeros(dl: usize, d: usize, dr: usize) -> Self {
        Self {
            dl,
            d,
            dr,
            data: vec![0.0; dl * d * dr],
        }
    }
    /// Entry `A[l, s, r]`.
    #[inline]
    pub fn at(&self, l: usize, s: usize, r: usize) -> f64 {
        self.data[(l * self.d + s) * self.dr + r]
    }
    /// Mutable entry `A[l, s, r]`.
    #[inline]
    pub fn at_mut(&mut self, l: usize, s: usize, r: usize) -> &mut f64 {
        &mut self.data[(l * self.d + s) * self.dr + r]
    }
}

/// A matrix product state representing a non-negative weight over `d^N` configurations.
/// See the [module docs](self) for the conventions.
#[derive(Clone, Debug, PartialEq)]
pub struct Mps {
    /// Site tensors, left to right.
    pub sites: Vec<Site>,
    /// Natural log of a global factor multiplying every weight.
    pub log_scale: f64,
}

/// A matrix product operator: site tensors `W[l, out, in, r]` of shape `[Dl, d, d, Dr]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mpo {
    /// Site tensors as `(Dl, d, Dr, data)` with data indexed `((l·d + out)·d + in)·Dr + r`.
    pub sites: Vec<(usize, usize, usize, Vec<f64>)>,
}

impl Mpo {
    /// A product (bond-dimension-1) operator from one `d × d` matrix `K[out][in]` per site.
    pub fn product(mats: &[Vec<f64>], d: usize) -> Result<Self> {
        let mut sites = Vec::with_capacity(mats.len());
        for (i, m) in mats.iter().enumerate() {
            if m.len() != d * d {
                return Err(Error::Shape(format!(
                    "MPO site {i}: a {d}×{d} matrix needs {} entries, got {}",
                    d * d,
                    m.len()
                )));
            }
            sites.push((1, d, 1, m.clone()));
        }
        Ok(Self { sites })
    }
}

impl Mps {
    /// An MPS from site tensors, checking that bonds chain and the ends are 1.
    pub fn new(sites: Vec<Site>, log_scale: f64) -> Result<Self> {
        let m = Self { sites, log_scale };
        m.validate()?;
        Ok(m)
    }

    /// Check shapes: non-empty, one physical dimension, chained bonds, open ends.
    pub fn validate(&self) -> Result<()> {
        if self.sites.is_empty() {
            return Err(Error::Shape("an MPS needs at least one site".into()));
        }
        let d = self.sites[0].d;
        if d == 0 {
            return Err(Error::Shape("physical dimension 0".into()));
        }
        for (k, s) in self.sites.iter().enumerate() {
            if s.d != d {
                return Err(Error::Shape(format!(
                    "site {k} has physical dimension {} but site 0 has {d}",
                    s.d
                )));
            }
            if s.dl == 0 || s.dr == 0 || s.data.len() != s.dl * s.d * s.dr {
                return Err(Error::Shape(format!(
                    "site {k}: shape [{}, {}, {}] does not match {} entries",
                    s.dl,
                    s.d,
                    s.dr,
                    s.data.len()
                )));
            }
            if k > 0 && self.sites[k - 1].dr != s.dl {
                return Err(Error::Shape(format!(
                    "bond {k}: site {} has right dimension {} but site {k} has left dimension {}",
                    k - 1,
                    self.sites[k - 1].dr,
                    s.dl
                )));
            }
        }
        if self.sites[0].dl != 1 || self.sites.last().unwrap().dr != 1 {
            return Err(Error::Shape("the outer bonds of an MPS must be 1".into()));
        }
        if !self.log_scale.is_finite() {
            return Err(Error::NonFinite("MPS log_scale".into()));
        }
        Ok(())
    }

    /// Number of sites `N`.
    pub fn len(&self) -> usize {
        self.sites.len()
    }
    /// Whether there are no sites (never true for a validated MPS).
    pub fn is_empty(&self) -> bool {
        self.sites.is_empty()
    }
    /// Physical dimension `d`.
    pub fn d(&self) -> usize {
        self.sites[0].d
    }
    /// Largest bond dimension.
    pub fn chi_max(&self) -> usize {
        self.sites.iter().map(|s| s.dl.max(s.dr)).max().unwrap_or(1)
    }
    /// Whether every entry is non-negative (then every weight is, and sampling is valid).
    pub fn is_nonnegative(&self) -> bool {
        self.sites.iter().all(|s| s.data.iter().all(|&v| v >= 0.0))
    }

    /// `log Z = log Σ_x W(x)`, contracted left to right with per-step rescaling.
    pub fn log_norm(&self) -> f64 {
        let mut l = vec![1.0];
        let mut acc = self.log_scale;
        for s in &self.sites {
            let mut nl = vec![0.0; s.dr];
            for (i, &li) in l.iter().enumerate() {
                if li == 0.0 {
                    continue;
                }
                for p in 0..s.d {
                    let row = &s.data[(i * s.d + p) * s.dr..(i * s.d + p + 1) * s.dr];
                    for (o, &a) in nl.iter_mut().zip(row) {
                        *o += li * a;
                    }
                }
            }
            let m = nl.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            if m == 0.0 {
                return f64::NEG_INFINITY;
            }
            nl.iter_mut().for_each(|v| *v /= m);
            acc += m.ln();
            l = nl;
        }
        acc + l[0].ln()
    }

    /// `⟨Π_k f_k(x_k)⟩ = Σ_x P(x) Π_k f[k][x_k]` for a product of one-site functions (e.g.
    /// spins `[1, −1]` at two sites for a correlation), by a rescaled contraction.
    pub fn expect_product(&self, f: &[Vec<f64>]) -> Result<f64> {
        if f.len() != self.len() || f.iter().any(|v| v.len() != self.d()) {
            return Err(Error::Shape(format!(
                "expect_product needs {} vectors of length {}",
                self.len(),
                self.d()
            )));
        }
        let mut l = vec![1.0];
        let mut lf = vec![1.0];
        for (s, fk) in self.sites.iter().zip(f) {
            let mut nl = vec![0.0; s.dr];
            let mut nf = vec![0.0; s.dr];
            for i in 0..s.dl {
                for (p, &fp) in fk.iter().enumerate() {
                    let row = &s.data[(i * s.d + p) * s.dr..][..s.dr];
                    for j in 0..s.dr {
                        nl[j] += l[i] * row[j];
                        nf[j] += lf[i] * fp * row[j];
                    }
                }
            }
            let m = nl.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            if m == 0.0 {
                return Err(Error::InvalidArgument(
                    "the MPS has zero total weight".into(),
                ));
            }
            nl.iter_mut().for_each(|v| *v /= m);
            nf.iter_mut().for_each(|v| *v /= m);
            l = nl;
            lf = nf;
        }
        Ok(lf[0] / l[0])
    }

    /// `log W(x)` (unnormalised) of one configuration; `-inf` when the weight is 0.
    pub fn log_weight(&self, x: &[u8]) -> Result<f64> {
        self.check_config(x)?;
        let mut l = vec![1.0];
        let mut acc = self.log_scale;
        for (s, &xi) in self.sites.iter().zip(x) {
            let mut nl = vec![0.0; s.dr];
            for (i, &li) in l.iter().enumerate() {
                if li == 0.0 {
                    continue;
                }
                let row = &s.data[(i * s.d + xi as usize) * s.dr..][..s.dr];
                for (o, &a) in nl.iter_mut().zip(row) {
                    *o += li * a;
                }
            }
            let m = nl.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            if m == 0.0 {
                return Ok(f64::NEG_INFINITY);
            }
            nl.iter_mut().for_each(|v| *v /= m);
            acc += m.ln();
            l = nl;
        }
        Ok(if l[0] > 0.0 {
            acc + l[0].ln()
        } else {
            f64::NEG_INFINITY
        })
    }

    /// `log P(x) = log W(x) − log Z` for each configuration of `xs` (row-major `[n, N]`).
    pub fn log_prob(&self, xs: &[u8]) -> Result<Vec<f64>> {
        let n = self.len();
        if !xs.len().is_multiple_of(n) {
            return Err(Error::Shape(format!(
                "{} states is not a whole number of {n}-site configurations",
                xs.len()
            )));
        }
        let lz = self.log_norm();
        xs.chunks(n).map(|x| Ok(self.log_weight(x)? - lz)).collect()
    }

    pub(crate) fn check_config(&self, x: &[u8]) -> Result<()> {
        if x.len() != self.len() {
            return Err(Error::Shape(format!(
                "configuration of {} sites for an MPS of {}",
                x.len(),
                self.len()
            )));
        }
        let d = self.d();
        if let Some(p) = x.iter().position(|&v| v as usize >= d) {
            return Err(Error::InvalidArgument(format!(
                "state {} at site {p} is outside 0..{d}",
                x[p]
            )));
        }
        Ok(())
    }

    /// Apply an MPO: `|P'⟩ = O |P⟩`, with bond dimensions multiplied (`χ·D`).
    pub fn apply_mpo(&self, mpo: &Mpo) -> Result<Mps> {
        if mpo.sites.len() != self.len() {
            return Err(Error::Shape(format!(
                "MPO of {} sites applied to an MPS of {}",
                mpo.sites.len(),
                self.len()
            )));
        }
        let d = self.d();
        let mut out = Vec::with_capacity(self.len());
        for (k, (a, (wl, wd, wr, w))) in self.sites.iter().zip(&mpo.sites).enumerate() {
            if *wd != d || w.len() != wl * d * d * wr {
                return Err(Error::Shape(format!(
                    "MPO site {k}: shape [{wl}, {wd}, {wd}, {wr}] with {} entries does not act on d = {d}",
                    w.len()
                )));
            }
            if (k == 0 && *wl != 1) || (k + 1 == self.len() && *wr != 1) {
                return Err(Error::Shape("the outer bonds of an MPO must be 1".into()));
            }
            let (dl, dr) = (a.dl * wl, a.dr * wr);
            let mut t = Site::zeros(dl, d, dr);
            for al in 0..a.dl {
                for bl in 0..*wl {
                    for o in 0..d {
                        for i in 0..d {
                            for br in 0..*wr {
                                let wv = w[((bl * d + o) * d + i) * wr + br];
                                if wv == 0.0 {
                                    continue;
                                }
                                for ar in 0..a.dr {
                                    *t.at_mut(al * wl + bl, o, ar * wr + br) +=
                                        wv * a.at(al, i, ar);
                                }
                            }
                        }
                    }
                }
            }
            out.push(t);
        }
        Mps::new(out, self.log_scale)
    }

    /// Multiply the weight of state `s` at site `k` by `f[k][s]` (a diagonal product operator).
    pub fn scale_states(&self, f: &[Vec<f64>]) -> Result<Mps> {
        if f.len() != self.len() || f.iter().any(|v| v.len() != self.d()) {
            return Err(Error::Shape(format!(
                "scale_states needs {} vectors of length {}",
                self.len(),
                self.d()
            )));
        }
        let mut out = self.clone();
        for (s, fk) in out.sites.iter_mut().zip(f) {
            let dr = s.dr;
            for (idx, v) in s.data.iter_mut().enumerate() {
                *v *= fk[(idx / dr) % fk.len()];
            }
        }
        Ok(out)
    }

    /// Compress by SVD: a left-to-right sweep to left-orthonormal form, then a right-to-left
    /// sweep keeping at most `max_chi` singular values per bond and dropping those below
    /// `rel_tol` times the largest. Exact (up to rounding) when nothing is dropped. The
    /// entries may change sign, so check [`Mps::is_nonnegative`] before sampling a truncation.
    pub fn compress(&self, max_chi: usize, rel_tol: f64) -> Result<Mps> {
        if max_chi == 0 {
            return Err(Error::InvalidArgument("max_chi must be at least 1".into()));
        }
        let n = self.len();
        let d = self.d();
        let mut sites = self.sites.clone();
        let mut log_scale = self.log_scale;
        // Left sweep: A_k = U S V^T, A_k ← U, A_{k+1} ← S V^T A_{k+1}.
        for k in 0..n - 1 {
            let s = &sites[k];
            let (m, c) = (s.dl * d, s.dr);
            let f = linalg::svd(&s.data, m, c)?;
            let r = f.s.iter().filter(|&&v| v > f.s[0] * 1e-15).count().max(1);
            let top = f.s[0].max(f64::MIN_POSITIVE);
            log_scale += top.ln();
            let mut u = Site::zeros(s.dl, d, r);
            for row in 0..m {
                for j in 0..r {
                    u.data[row * r + j] = f.u[row * f.k + j];
                }
            }
            // SV^T (r × c), divided by the top singular value.
            let mut sv = vec![0.0; r * c];
            for j in 0..r {
                for col in 0..c {
                    sv[j * c + col] = f.s[j] / top * f.vt[j * c + col];
                }
            }
            let next = &sites[k + 1];
            let mut nt = Site::zeros(r, d, next.dr);
            for j in 0..r {
                for col in 0..c {
                    let w = sv[j * c + col];
                    if w == 0.0 {
                        continue;
                    }
                    let src = &next.data[col * d * next.dr..(col + 1) * d * next.dr];
                    for (o, &v) in nt.data[j * d * next.dr..(j + 1) * d * next.dr]
                        .iter_mut()
                        .zip(src)
                    {
                        *o += w * v;
                    }
                }
            }
            sites[k] = u;
            sites[k + 1] = nt;
        }
        // Right sweep with truncation: A_k = U S V^T (rows l, columns (s, r)); A_k ← V^T,
        // A_{k-1} ← A_{k-1} U S.
        for k in (1..n).rev() {
            let s = &sites[k];
            let (m, c) = (s.dl, d * s.dr);
            let f = linalg::svd(&s.data, m, c)?;
            let top = f.s[0].max(f64::MIN_POSITIVE);
            let keep =
                f.s.iter()
                    .take(max_chi)
                    .filter(|&&v| v > top * rel_tol.max(1e-15))
                    .count()
                    .max(1);
            log_scale += top.ln();
            let mut v = Site::zeros(keep, d, s.dr);
            v.data.copy_from_slice(&f.vt[..keep * c]);
            let prev = &sites[k - 1];
            let mut pt = Site::zeros(prev.dl, d, keep);
            for row in 0..prev.dl * d {
                for j in 0..keep {
                    let mut acc = 0.0;
                    for t in 0..m {
                        acc += prev.data[row * m + t] * f.u[t * f.k + j];
                    }
                    pt.data[row * keep + j] = acc * f.s[j] / top;
                }
            }
            sites[k] = v;
            sites[k - 1] = pt;
        }
        Mps::new(sites, log_scale)
    }
}
