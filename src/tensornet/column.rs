//! The exact MPS of an Ising model on an open or cylinder lattice, contracted in its sparse
//! form, as a sampler and a Monte Carlo proposal.
//!
//! In column-major order (`k = c·ly + r`) the bond after site `k` of the exact MPS is a shift
//! register of the last `ly` spins (`χ = 2^ly`, [`super::ising_2d`]), and each site tensor has
//! one non-zero entry per (register, spin): the register moves to `(reg << 1 | s) & mask` with
//! weight `w_k(reg, s) = exp(β (J_up σ σ_up + J_wrap σ σ_wrap + J_left σ σ_left + h_k σ))`,
//! the neighbours read from bits 0, `ly − 2` and `ly − 1` of the register. Contracted as a
//! dense MPS that is `O(N χ²)` per sample; kept sparse, the right environments
//! `R_k(reg) = Σ_s w_k(reg, s) R_{k+1}(reg′)` cost `O(N 2^ly)` once, and a perfect sample
//! costs `O(N)`: at each site the two candidate registers differ in bit 0, so both
//! environments are neighbours in memory. This is what makes `ly = 16` (`χ = 65,536`)
//! affordable where a dense MPS of that bond dimension is not.
//!
//! Stored are not the environments but the conditionals they give: for each site and
//! register, the probability of the less likely spin state, its sign bit naming the state
//! (f32, `N · 2^ly · 4` bytes; the smaller of `p0`, `p1` keeps full relative precision down to
//! f32's 10⁻³⁸ and is representable down to 10⁻⁴⁵, so a state the model allows gets
//! probability 0 only below that, and then the sign of the zero still says which state it is).
//! A sample then costs one table read, one comparison and one multiply per site. The
//! probability a sample reports is the product of the conditionals it was drawn with, so a
//! Metropolis–Hastings ratio built on it is exact for the sampler as stored; it differs from
//! the model's `P(x)` only by the f32 rounding of the
//! conditionals (checked in the tests against the f64 `ln Z`).
//!
//! As a proposal ([`ColumnProposer`]) it serves targets the exact MPS cannot reach at a
//! feasible bond dimension: a torus (the periodic x bonds would double the register to
//! `χ = 2^{2 ly}`), other couplings or fields, another temperature. Metropolis–Hastings corrects
//! the difference ([`IsingModel::cylinder_part`] gives the natural proposal model of a torus).

use super::column_gpu::GpuColumnMps;
use super::models::IsingLattice;
use super::proposal::{derive_key, ProposalBlock, Proposals, Proposer};
use super::target::{spin, IsingModel, LogWeight};
use crate::budget;
use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::rng::Rng;

/// Widest column handled: `2^24` registers per site.
const MAX_LY: usize = 24;
/// Largest conditional table, whatever the host has.
const MAX_TABLE_BYTES: u128 = 16 << 30;
/// Philox tag of the proposals' seeds.
const TAG_COLUMN: u32 = 4;
/// Samples drawn per block by [`ColumnProposer`] (independence proposals do not depend on
/// the chains' states, so a block of steps is drawn at once, sites outermost).
const BLOCK_SAMPLES: usize = 8192;

/// The exact sparse MPS of an [`IsingModel`] on an open or cylinder lattice: exact `ln Z`,
/// perfect samples and their probabilities.
#[derive(Clone, Debug)]
pub struct ColumnMps {
    n: usize,
    ly: usize,
    /// Per site `k` and register: `p(s_k = 1 | reg)` when that is at most ½, else
    /// `−p(s_k = 0 | reg)`, the state read from the sign bit (`−0.0` is `p(s_k = 0) = 0`).
    /// Row `k` holds `2^ly` entries.
    cond: Vec<f32>,
    log_z: f64,
}

/// Bytes of the conditional table of an `n`-site lattice with columns of `ly` spins.
pub fn column_table_bytes(n: usize, ly: usize) -> u128 {
    if ly >= 64 {
        return u128::MAX;
    }
    budget::bytes(&[n, 1usize << ly], 4)
}

/// Check that the column MPS of `lat` can be built here, before anything is allocated: open
/// or cylinder, at most 24 spins per column, a conditional table of at most 16 GiB and half
/// the memory the host has available.
pub fn check_column_size(lat: &IsingLattice) -> Result<()> {
    if lat.periodic_x {
        return Err(Error::InvalidArgument(
            "the column MPS needs an open or cylinder lattice (a torus doubles the register to \
             2^(2 ly)); use IsingModel::cylinder_part as the proposal model"
                .into(),
        ));
    }
    if lat.ly > MAX_LY {
        return Err(Error::Limit(format!(
            "a column of {} spins needs 2^{} registers per site; at most {MAX_LY} spins per column",
            lat.ly, lat.ly
        )));
    }
    let need = column_table_bytes(lat.n(), lat.ly);
    let avail = budget::host_available().unwrap_or(u128::MAX);
    if need > MAX_TABLE_BYTES || need > avail / 2 {
        return Err(Error::Limit(format!(
            "the conditionals of a {}×{} column MPS take {}; the limit is {} (half the available memory, at most {})",
            lat.lx,
            lat.ly,
            budget::human(need),
            budget::human((avail / 2).min(MAX_TABLE_BYTES)),
            budget::human(MAX_TABLE_BYTES)
        )));
    }
    Ok(())
}

/// The neighbour bits of site state tables: spin above (bit 0 of the register), the column's
/// first spin closing the cylinder (bit `ly − 2`) and the spin to the left (bit `ly − 1`).
#[inline]
fn neighbours(reg: usize, ly: usize) -> usize {
    (reg & 1) << 1 | ((reg >> ly.saturating_sub(2)) & 1) << 2 | ((reg >> (ly - 1)) & 1) << 3
}

impl ColumnMps {
    /// Contract `model` (open or cylinder lattice, `ly ≤ 24`); refuses a table larger than
    /// 16 GiB or than half the memory the host has available, before allocating it.
    pub fn new(model: &IsingModel) -> Result<Self> {
        let lat = *model.lattice();
        check_column_size(&lat)?;
        let (n, ly) = (lat.n(), lat.ly);
        let beta = model.beta();
        let field = model.field();
        let size = 1usize << ly;
        let mask = size - 1;
        let mut cond = vec![0f32; n * size];
        // next[reg] = R_{k+1}(reg), rescaled to max 1 (f64), starting from R_N = 1.
        let mut next = vec![1.0f64; size];
        let mut cur = vec![0.0f64; size];
        let mut log_scale = 0.0f64;
        for k in (0..n).rev() {
            let (c, r) = (k / ly, k % ly);
            let j_up = if r > 0 { model.coupling(k - 1, k) } else { 0.0 };
            let j_wrap = if lat.periodic_y && r == ly - 1 {
                model.coupling(c * ly, k)
            } else {
                0.0
            };
            let j_left = if c > 0 {
                model.coupling(k - ly, k)
            } else {
                0.0
            };
            // w[s | up << 1 | wrap << 2 | left << 3] (a missing bond has coupling 0).
            let mut w = [0.0f64; 16];
            for (i, v) in w.iter_mut().enumerate() {
                let sg = |b: usize| if (i >> b) & 1 == 0 { 1.0 } else { -1.0 };
                *v = (beta * sg(0) * (j_up * sg(1) + j_wrap * sg(2) + j_left * sg(3) + field[k]))
                    .exp();
            }
            let row = &mut cond[k * size..(k + 1) * size];
            for (reg, (out, p)) in cur.iter_mut().zip(row.iter_mut()).enumerate() {
                let nb = neighbours(reg, ly);
                let to = (reg << 1) & mask;
                let (a0, a1) = (w[nb] * next[to], w[nb | 1] * next[to | 1]);
                *out = a0 + a1;
                // An unreachable register (both 0 in f64) gets ½: it is never visited.
                *p = if a1 <= a0 {
                    if a0 > 0.0 {
                        (a1 / (a0 + a1)) as f32
                    } else {
                        0.5
                    }
                } else {
                    -(a0 / (a0 + a1)) as f32
                };
            }
            let m = cur.iter().fold(0.0f64, |m, &x| m.max(x));
            if !(m.is_finite() && m > 0.0) {
                return Err(Error::NonFinite(format!(
                    "the column MPS's environment at site {k} (β = {beta})"
                )));
            }
            cur.iter_mut().for_each(|x| *x /= m);
            log_scale += m.ln();
            std::mem::swap(&mut cur, &mut next);
        }
        // The register before site 0 is empty (0); its bits meet only couplings that are 0.
        let log_z = log_scale + next[0].ln();
        Ok(Self { n, ly, cond, log_z })
    }

    /// Number of sites.
    pub fn n_sites(&self) -> usize {
        self.n
    }

    /// `ln Z` of the model (f64 contraction).
    pub fn log_z(&self) -> f64 {
        self.log_z
    }

    /// Bytes of the stored conditionals.
    pub fn table_bytes(&self) -> usize {
        self.cond.len() * 4
    }

    /// Spins per column.
    pub fn ly(&self) -> usize {
        self.ly
    }

    /// The stored conditionals, `2^ly` per site (see the struct).
    pub(crate) fn table(&self) -> &[f32] {
        &self.cond
    }

    /// Draw one sample per generator into `states` (`[rows, N]`, resized), row `i` from
    /// `rngs[i]`, and return `ln p(x)` of each: the product of the conditionals it was drawn
    /// with. Sites are the outer loop, so all rows read one site's table while it is in cache.
    pub fn sample_rows(&self, rngs: &mut [Rng], states: &mut Vec<u8>) -> Vec<f64> {
        let rows = rngs.len();
        let lx = self.n / self.ly;
        let mut cols = vec![0u32; lx * rows];
        let lp = self.walk::<true>(rows, &mut cols, rngs);
        states.clear();
        states.resize(rows * self.n, 0);
        for (row, x) in states.chunks_exact_mut(self.n).enumerate() {
            for (c, col) in x.chunks_exact_mut(self.ly).enumerate() {
                unpack_column(cols[c * rows + row], col);
            }
        }
        lp
    }

    /// `ln p(x)` of configurations (`[M, N]`) under the stored sampler.
    pub fn log_prob(&self, xs: &[u8]) -> Result<Vec<f64>> {
        check_configurations(self.n, xs)?;
        let rows = xs.len() / self.n;
        let lx = self.n / self.ly;
        let mut cols = vec![0u32; lx * rows];
        for (row, x) in xs.chunks_exact(self.n).enumerate() {
            for (c, col) in x.chunks_exact(self.ly).enumerate() {
                cols[c * rows + row] = pack_column(col);
            }
        }
        Ok(self.walk::<false>(rows, &mut cols, &mut []))
    }

    /// Mean `−ln p(x)` of configurations (`[M, N]`, `M ≥ 1`) under the stored sampler.
    pub fn mean_nll(&self, xs: &[u8]) -> Result<f64> {
        let lp = self.log_prob(xs)?;
        Ok(-lp.iter().sum::<f64>() / lp.len().max(1) as f64)
    }

    /// Site by site for `rows` rows, the columns of each row packed in `cols` (`[lx, rows]`,
    /// the spin of row `r` of a column in bit `ly − 1 − r`, as the register holds it once the
    /// column is read): draws each state from `rngs[row]` and stores the columns when
    /// `SAMPLE`, reads them otherwise; returns `ln p` of each row's path. Sites are the outer
    /// loop, so every row reads one site's table (2^ly conditionals) while it is in cache.
    fn walk<const SAMPLE: bool>(
        &self,
        rows: usize,
        cols: &mut [u32],
        rngs: &mut [Rng],
    ) -> Vec<f64> {
        let ly = self.ly;
        let mask = (1u32 << ly) - 1;
        let size = 1usize << ly;
        let mut regs = vec![0u32; rows];
        // Products of conditionals, moved into the logarithm before they can underflow.
        let mut prod = vec![1.0f64; rows];
        let mut lp = vec![0.0f64; rows];
        for k in 0..self.n {
            let (c, r) = (k / ly, k % ly);
            let col = &mut cols[c * rows..(c + 1) * rows];
            let table = &self.cond[k * size..(k + 1) * size];
            // The rows read the table at random; ask for the entry of a row a little ahead so
            // its load overlaps this row's work (without that, first reads from memory dominate).
            touch_ahead(table, rows);
            for row in 0..rows {
                if let Some(&ahead) = regs.get(row + PREFETCH_ROWS) {
                    prefetch(table, ahead as usize);
                }
                let t = table[regs[row] as usize];
                // Sign bit clear: p(1) = |t|; set: p(0) = |t| (so −0.0, a p(0) that rounded to
                // zero, still names state 0). Kept free of branches on the state: which way a
                // row goes is a coin flip the branch predictor cannot learn.
                let rare = t.abs() as f64;
                let rare_state = t.is_sign_positive() as u32;
                let s = if SAMPLE {
                    rare_state ^ (rngs[row].uniform() >= rare) as u32
                } else {
                    (col[row] >> (ly - 1 - r)) & 1
                };
                let p = &mut prod[row];
                *p *= if s == rare_state { rare } else { 1.0 - rare };
                if *p < 1e-200 {
                    lp[row] += p.ln();
                    *p = 1.0;
                }
                regs[row] = ((regs[row] << 1) & mask) | s;
                if SAMPLE && r == ly - 1 {
                    col[row] = regs[row];
                }
            }
        }
        lp.iter().zip(&prod).map(|(l, p)| l + p.ln()).collect()
    }
}

/// The spins of one column as the register holds them after its last site (row `r` in bit
/// `ly − 1 − r`).
pub(super) fn pack_column(col: &[u8]) -> u32 {
    col.iter().fold(0u32, |b, &s| b << 1 | s as u32)
}

/// The spins of a column packed by [`pack_column`], into `col`.
pub(super) fn unpack_column(bits: u32, col: &mut [u8]) {
    let ly = col.len();
    for (r, s) in col.iter_mut().enumerate() {
        *s = (bits >> (ly - 1 - r)) as u8 & 1;
    }
}

/// Refuse anything but whole configurations of `n` two-state sites.
pub(super) fn check_configurations(n: usize, xs: &[u8]) -> Result<()> {
    if !xs.len().is_multiple_of(n) || xs.iter().any(|&s| s > 1) {
        return Err(Error::Shape(format!(
            "configurations of {n} two-state sites expected, got {} states",
            xs.len()
        )));
    }
    Ok(())
}

/// How many rows ahead [`ColumnMps::walk`] asks for a table entry.
const PREFETCH_ROWS: usize = 32;

/// Hint that `table[i]` will be read soon (`i` in bounds).
#[inline(always)]
fn prefetch(table: &[f32], i: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        debug_assert!(i < table.len());
        // SAFETY: a prefetch never faults and `i` indexes `table`; SSE is part of x86_64.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(table.as_ptr().wrapping_add(i) as *const i8);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (table, i);
}

/// Where there is no prefetch hint, read the table once in order before `rows` random reads
/// (sequential reads stream from memory far faster than first random ones).
#[inline]
fn touch_ahead(table: &[f32], rows: usize) {
    if cfg!(target_arch = "x86_64") || rows < table.len() / 16 {
        return;
    }
    let sum: f32 = table.iter().step_by(16).sum();
    std::hint::black_box(sum);
}

/// Independence proposals from a [`ColumnMps`]. The proposal of chain `c` at step `t` of a run
/// with `B` chains is the sample drawn with the generator `Rng::fork(key, t·B + c)`, whatever
/// the block it is drawn in, on the CPU or (the same states, f32 `log q`) on the GPU.
pub struct ColumnProposer<'a> {
    mps: ColumnMps,
    gpu: Option<(&'a GpuContext, GpuColumnMps)>,
    /// Spins per column and number of columns.
    ly: usize,
    lx: usize,
    /// Change the cut every this many steps (0: never).
    rotate_every: usize,
    /// The current cut: proposals are samples with their columns moved right by `shift`.
    shift: usize,
    key: u64,
    block: ProposalBlock,
}

impl<'a> ColumnProposer<'a> {
    /// Proposals from the exact sparse MPS of `model` (open or cylinder lattice); with `gpu`,
    /// drawn and scored by the WGSL sampler ([`GpuColumnMps`]) in blocks of steps.
    pub fn new(model: &IsingModel, gpu: Option<&'a GpuContext>, seed: u64) -> Result<Self> {
        let lat = *model.lattice();
        let mps = ColumnMps::new(model)?;
        let gpu = match gpu {
            Some(ctx) => Some((ctx, GpuColumnMps::new(ctx, &mps)?)),
            None => None,
        };
        Ok(Self {
            mps,
            gpu,
            ly: lat.ly,
            lx: lat.lx,
            rotate_every: 0,
            shift: 0,
            key: derive_key(seed, TAG_COLUMN) as u64,
            block: ProposalBlock::default(),
        })
    }

    /// The sampler.
    pub fn mps(&self) -> &ColumnMps {
        &self.mps
    }

    /// Move the cut of the column order every `every` steps (0: never) to a column drawn from
    /// the seed and the step: proposals are the model's samples with their columns moved
    /// cyclically by that shift. Each cut is a proposal kernel of its own, chosen without
    /// looking at the chains, so every step stays in detailed balance; on a torus, where the
    /// model misses the bonds across its cut, a chain stuck where one cut's model is poor
    /// moves on at the next cut. Meant for translation-invariant targets: on others a moved
    /// model no longer lines up with the couplings, and its proposals are rarely accepted.
    pub fn rotating(mut self, every: usize) -> Self {
        self.rotate_every = every;
        self
    }
}

/// `x` (`lx` columns of `ly` sites) with its columns moved right by `shift` (cyclically), into
/// `out`.
fn shifted(x: &[u8], shift: usize, lx: usize, ly: usize, out: &mut [u8]) {
    for c in 0..lx {
        let to = (c + shift) % lx;
        out[to * ly..(to + 1) * ly].copy_from_slice(&x[c * ly..(c + 1) * ly]);
    }
}

impl Proposer for ColumnProposer<'_> {
    fn name(&self) -> &'static str {
        "column MPS"
    }
    fn log_q(&mut self, xs: &[u8]) -> Result<Vec<f64>> {
        // Back to the model's own column order.
        let n = self.mps.n;
        let mut back = xs.to_vec();
        if self.shift != 0 {
            for (x, b) in xs.chunks(n).zip(back.chunks_mut(n)) {
                shifted(x, self.lx - self.shift, self.lx, self.ly, b);
            }
        }
        match &self.gpu {
            Some((ctx, g)) => g.log_prob(ctx, &back),
            None => self.mps.log_prob(&back),
        }
    }
    fn kernel_changes(&mut self, step: u64) -> bool {
        if self.rotate_every == 0 || !step.is_multiple_of(self.rotate_every as u64) {
            return false;
        }
        let mut g = Rng::fork(self.key ^ 0x5EED, step / self.rotate_every as u64);
        let shift = g.below(self.lx as u64) as usize;
        let changed = shift != self.shift;
        self.shift = shift;
        changed
    }
    fn propose(&mut self, current: &[u8], step: u64, out: &mut Proposals) -> Result<()> {
        let n = self.mps.n;
        if !current.len().is_multiple_of(n) {
            return Err(Error::Shape(format!(
                "chains of {n} sites expected, got {} states",
                current.len()
            )));
        }
        let chains = current.len() / n;
        let (mps, gpu, key) = (&self.mps, &self.gpu, self.key);
        let (states, log_q) = self.block.step(step, chains, n, |first, chains| {
            let steps = (BLOCK_SAMPLES / chains.max(1)).max(1);
            let index = first * chains as u64;
            if let Some((ctx, g)) = gpu {
                let (xs, lq) = g.sample_from(ctx, key, index, steps * chains)?;
                return Ok((steps, xs, lq));
            }
            let mut rngs: Vec<Rng> = (0..steps * chains)
                .map(|i| Rng::fork(key, index + i as u64))
                .collect();
            let mut xs = Vec::new();
            let lq = mps.sample_rows(&mut rngs, &mut xs);
            Ok((steps, xs, lq))
        })?;
        out.states.clear();
        out.states.resize(chains * n, 0);
        for (y, x) in states.chunks(n).zip(out.states.chunks_mut(n)) {
            shifted(y, self.shift, self.lx, self.ly, x);
        }
        out.log_q.clear();
        out.log_q.extend_from_slice(log_q);
        Ok(())
    }
}

/// A learnable column MPS: an Ising model on an open or cylinder lattice whose couplings and
/// fields (`θ = (βJ_b, βh_i)`) are fitted to configurations by maximum likelihood. The exact
/// gradient of the mean NLL in `θ` is the difference of the sufficient statistics,
/// `⟨σ_a σ_b⟩_model − ⟨σ_a σ_b⟩_data` per bond and `⟨σ_i⟩_model − ⟨σ_i⟩_data` per site; the
/// model's side is estimated from perfect samples of the [`ColumnMps`], so a step costs one
/// contraction (`O(N 2^ly)`) and `batch` samples (`O(N)` each). The NLL itself is exact.
/// The network stays the exact sparse MPS of *some* cylinder Ising model, learned to
/// approximate a target it cannot contain (a torus): the proposal of
/// [`ColumnProposer`] in the learn–propose–accept loop.
#[derive(Clone, Debug)]
pub struct ColumnModel {
    model: IsingModel,
    bonds: Vec<(usize, usize)>,
    /// `βJ` per bond (in `bonds` order), then `βh` per site.
    theta: Vec<f64>,
    m1: Vec<f64>,
    m2: Vec<f64>,
    t: i32,
}

impl ColumnModel {
    /// Start from `model` (open or cylinder lattice).
    pub fn new(model: &IsingModel) -> Result<Self> {
        let lat = *model.lattice();
        check_column_size(&lat)?;
        let bonds = lat.bonds();
        let beta = model.beta();
        let theta: Vec<f64> = bonds
            .iter()
            .map(|&(a, b)| beta * model.coupling(a, b))
            .chain(model.field().iter().map(|h| beta * h))
            .collect();
        let p = theta.len();
        Ok(Self {
            model: model.clone(),
            bonds,
            theta,
            m1: vec![0.0; p],
            m2: vec![0.0; p],
            t: 0,
        })
    }

    /// The current model.
    pub fn model(&self) -> &IsingModel {
        &self.model
    }

    /// Number of parameters (bonds + sites).
    pub fn n_params(&self) -> usize {
        self.theta.len()
    }

    /// Mean sufficient statistics `(σ_a σ_b per bond, σ_i per site)` of configurations.
    fn statistics(&self, xs: &[u8]) -> Vec<f64> {
        let n = self.model.n_sites();
        let rows = (xs.len() / n).max(1) as f64;
        let mut st = vec![0.0; self.theta.len()];
        let nb = self.bonds.len();
        for x in xs.chunks(n) {
            for (v, &(a, b)) in st.iter_mut().zip(&self.bonds) {
                *v += spin(x[a]) * spin(x[b]);
            }
            for (v, &s) in st[nb..].iter_mut().zip(x) {
                *v += spin(s);
            }
        }
        st.iter_mut().for_each(|v| *v /= rows);
        st
    }

    /// The parameters `θ`: `βJ` per bond (in [`super::IsingLattice::bonds`] order), then `βh`
    /// per site.
    pub fn theta(&self) -> &[f64] {
        &self.theta
    }

    /// Set `θ` (same layout as [`ColumnModel::theta`]); the Adam moments are kept.
    pub fn set_theta(&mut self, theta: &[f64]) -> Result<()> {
        if theta.len() != self.theta.len() {
            return Err(Error::Shape(format!(
                "{} parameters for a column model of {}",
                theta.len(),
                self.theta.len()
            )));
        }
        if let Some(i) = theta.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite(format!("column model parameter {i}")));
        }
        let nb = self.bonds.len();
        let beta = self.model.beta();
        let j = theta[..nb].iter().map(|v| v / beta).collect();
        let h = theta[nb..].iter().map(|v| v / beta).collect();
        self.model = IsingModel::with_couplings(*self.model.lattice(), beta, j, h)?;
        self.theta.copy_from_slice(theta);
        Ok(())
    }

    fn check_data(&self, data: &[u8]) -> Result<()> {
        let n = self.model.n_sites();
        if data.is_empty() || !data.len().is_multiple_of(n) || data.iter().any(|&s| s > 1) {
            return Err(Error::Shape(format!(
                "a column model of {n} two-state sites needs [M, {n}] configurations of states \
                 0 and 1, got {} states",
                data.len()
            )));
        }
        Ok(())
    }

    /// The exact mean NLL (nats per configuration) of `data` under the current model.
    pub fn nll(&self, data: &[u8]) -> Result<f64> {
        self.check_data(data)?;
        ColumnMps::new(&self.model)?.mean_nll(data)
    }

    /// The gradient of [`ColumnModel::nll`] in `θ`, `⟨T⟩_model − ⟨T⟩_data`, with the model's
    /// statistics from `samples` perfect samples (generators `Rng::fork(seed, i)`) of `mps`,
    /// the current model's sampler; `flip_augment` sets the data's field statistics to 0.
    fn gradient_with(
        &self,
        mps: &ColumnMps,
        data_stats: &[f64],
        samples: usize,
        seed: u64,
    ) -> Vec<f64> {
        let mut rngs: Vec<Rng> = (0..samples).map(|i| Rng::fork(seed, i as u64)).collect();
        let mut states = Vec::new();
        mps.sample_rows(&mut rngs, &mut states);
        let model_stats = self.statistics(&states);
        model_stats
            .iter()
            .zip(data_stats)
            .map(|(m, d)| m - d)
            .collect()
    }

    fn data_statistics(&self, data: &[u8], flip_augment: bool) -> Vec<f64> {
        let mut st = self.statistics(data);
        if flip_augment {
            st[self.bonds.len()..].iter_mut().for_each(|v| *v = 0.0);
        }
        st
    }

    /// The gradient of the mean NLL of `data` in `θ` (see the type), the model's side from
    /// `samples` perfect samples drawn with `seed`.
    pub fn gradient(
        &self,
        data: &[u8],
        samples: usize,
        flip_augment: bool,
        seed: u64,
    ) -> Result<Vec<f64>> {
        self.check_data(data)?;
        let mps = ColumnMps::new(&self.model)?;
        let stats = self.data_statistics(data, flip_augment);
        Ok(self.gradient_with(&mps, &stats, samples, seed))
    }

    /// `opts.steps` Adam steps (rate `opts.lr`) on the mean NLL of `data` (`[M, N]`, two
    /// states), each with `opts.batch` perfect samples of the current model for its
    /// statistics; `opts.flip_augment` adds every configuration flipped (a flip-symmetric
    /// target: the fields' data statistics are then 0). Continues from the current parameters
    /// and Adam moments; reports the exact NLL (of at most 4,096 configurations) before and
    /// after.
    pub fn fit(&mut self, data: &[u8], opts: &super::FitOptions) -> Result<super::FitReport> {
        self.check_data(data)?;
        if opts.batch == 0 || !(opts.lr.is_finite() && opts.lr > 0.0) {
            return Err(Error::InvalidArgument(format!(
                "fitting needs batch ≥ 1 and a finite lr > 0 (batch = {}, lr = {})",
                opts.batch, opts.lr
            )));
        }
        let n = self.model.n_sites();
        let stats = self.data_statistics(data, opts.flip_augment);
        let eval = &data[..(data.len() / n).min(4096) * n];
        let mut mps = ColumnMps::new(&self.model)?;
        let nll_before = mps.mean_nll(eval)?;
        let mut theta = self.theta.clone();
        for step in 0..opts.steps {
            let seed = opts.seed ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let grad = self.gradient_with(&mps, &stats, opts.batch, seed);
            self.t = self.t.saturating_add(1);
            for (i, g) in grad.into_iter().enumerate() {
                let (m1, m2) = (&mut self.m1[i], &mut self.m2[i]);
                super::fit::adam_step(&mut theta[i], m1, m2, g, opts.lr, self.t);
            }
            self.set_theta(&theta)?;
            mps = ColumnMps::new(&self.model)?;
        }
        Ok(super::FitReport {
            nll_before,
            nll_after: mps.mean_nll(eval)?,
        })
    }
}
