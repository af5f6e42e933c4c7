//! `SeqInstr`: the instructions of the sequence-model ops ([`super::seq`]), one CPU body and
//! one kernel of `shaders/seq.wgsl` per [`SeqKind`].

use crate::autodiff::kernels::{self as k, SeqParams};
use crate::autodiff::op::{GpuRun, Instr, Loc, Mem, Reader};
use crate::autodiff::ops::elementwise::launch_work;
use crate::error::Result;
use crate::gpu::{u32_of, KernelDef, Work};
use crate::kernels::Real;

/// What a [`SeqInstr`] computes; `srcs` are its sources in the order given here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqKind {
    /// `[x]`: every row of `x` normalised to mean 0 and variance 1 (with `eps`).
    NormFwd,
    /// `[x, gy]`: the input gradient of [`SeqKind::NormFwd`].
    NormBwd,
    /// `[x, γ, β]`: `x ⊙ γ[col] + β[col]`.
    ChanAffine,
    /// `[x, γ]`: `x ⊙ γ[col]`.
    ChanScale,
    /// `[x, z]`: `Σ_rows x ⊙ z`, one value per column.
    ColDot,
    /// `[x, v]`: `x[r] + v[r / seq]`.
    SeqAdd,
    /// `[x]`: `Σ` over each sequence's `seq` rows, one row per sequence.
    SeqSum,
    /// `[labels, table]`: row `labels[r]` of the `[n, cols]` table (zeros for a label that
    /// names no row).
    Embed,
    /// `[labels, gy]`: the table gradient of [`SeqKind::Embed`].
    EmbedGrad,
}

/// One sequence-model instruction: `y (+)= kind(srcs)` over `[rows, cols]` inputs.
#[derive(Debug)]
pub struct SeqInstr {
    /// What it computes.
    pub kind: SeqKind,
    /// Sources (see [`SeqKind`]).
    pub srcs: Vec<Loc>,
    /// Output.
    pub y: Loc,
    /// Rows of the first source.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Rows per sequence ([`SeqKind::SeqAdd`], [`SeqKind::SeqSum`]).
    pub seq: usize,
    /// Rows of the embedding table.
    pub n: usize,
    /// Normalisation epsilon.
    pub eps: f32,
    /// Add into `y` (gradient kinds).
    pub acc: bool,
}

/// The table row `v` names, if any (the rule of `label` in `seq.wgsl`).
pub fn label_row(v: f64, n: usize) -> Option<usize> {
    (v >= 0.0 && v < n as f64 && v == v.floor()).then_some(v as usize)
}

fn row_stats(x: &[f64], eps: f64) -> (f64, f64) {
    let c = x.len() as f64;
    let mu = x.iter().sum::<f64>() / c;
    let var = x.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / c;
    (mu, 1.0 / (var + eps).sqrt())
}

impl SeqInstr {
    /// A non-accumulating instruction over `[rows, cols]`.
    pub fn new(kind: SeqKind, srcs: Vec<Loc>, y: Loc, rows: usize, cols: usize) -> Self {
        Self {
            kind,
            srcs,
            y,
            rows,
            cols,
            seq: 1,
            n: 0,
            eps: 0.0,
            acc: false,
        }
    }

    fn values<T: Real>(&self, r: &Reader<'_, T>) -> Vec<f64> {
        let (rows, cols, s) = (self.rows, self.cols, &self.srcs);
        let at = |i: usize, j: usize| r.get(s[i])[j].to_f64();
        let rowv = |i: usize, row: usize| -> Vec<f64> {
            r.get(s[i])[row * cols..(row + 1) * cols]
                .iter()
                .map(|v| v.to_f64())
                .collect()
        };
        let eps = self.eps as f64;
        match self.kind {
            SeqKind::NormFwd | SeqKind::NormBwd => (0..rows)
                .flat_map(|row| {
                    let x = rowv(0, row);
                    let (mu, inv) = row_stats(&x, eps);
                    let nv: Vec<f64> = x.iter().map(|v| (v - mu) * inv).collect();
                    if self.kind == SeqKind::NormFwd {
                        return nv;
                    }
                    let g = rowv(1, row);
                    let mg = g.iter().sum::<f64>() / cols as f64;
                    let mgn = g.iter().zip(&nv).map(|(a, b)| a * b).sum::<f64>() / cols as f64;
                    g.iter()
                        .zip(&nv)
                        .map(|(gv, n)| (gv - mg - n * mgn) * inv)
                        .collect()
                })
                .collect(),
            SeqKind::ChanAffine => (0..rows * cols)
                .map(|i| at(0, i) * at(1, i % cols) + at(2, i % cols))
                .collect(),
            SeqKind::ChanScale => (0..rows * cols)
                .map(|i| at(0, i) * at(1, i % cols))
                .collect(),
            SeqKind::ColDot => (0..cols)
                .map(|j| {
                    (0..rows)
                        .map(|q| at(0, q * cols + j) * at(1, q * cols + j))
                        .sum()
                })
                .collect(),
            SeqKind::SeqAdd => (0..rows * cols)
                .map(|i| at(0, i) + at(1, (i / cols / self.seq) * cols + i % cols))
                .collect(),
            SeqKind::SeqSum => (0..rows / self.seq * cols)
                .map(|i| {
                    let (q, j) = (i / cols, i % cols);
                    (0..self.seq)
                        .map(|l| at(0, (q * self.seq + l) * cols + j))
                        .sum()
                })
                .collect(),
            SeqKind::Embed => (0..rows * cols)
                .map(|i| {
                    label_row(at(0, i / cols), self.n).map_or(0.0, |c| at(1, c * cols + i % cols))
                })
                .collect(),
            SeqKind::EmbedGrad => {
                let mut t = vec![0.0; self.n * cols];
                for q in 0..rows {
                    if let Some(c) = label_row(at(0, q), self.n) {
                        for j in 0..cols {
                            t[c * cols + j] += at(1, q * cols + j);
                        }
                    }
                }
                t
            }
        }
    }

    fn run<T: Real>(&self, mem: &mut Mem<T>) {
        let mut v = Vec::new();
        mem.with_dst(self.y, |_, r| v = self.values(r));
        mem.put(self.y, self.acc, |i, _| v[i]);
    }

    fn kernel(&self) -> (&'static KernelDef, Work) {
        let (rows, cols) = (self.rows as u64, self.cols as u64);
        match self.kind {
            SeqKind::NormFwd => (&k::NORM_FWD, Work::Threads(rows)),
            SeqKind::NormBwd => (&k::NORM_BWD, Work::Threads(rows)),
            SeqKind::ChanAffine => (&k::CHAN_AFFINE, Work::Threads(rows * cols)),
            SeqKind::ChanScale => (&k::CHAN_SCALE, Work::Threads(rows * cols)),
            SeqKind::ColDot => (&k::COL_DOT, Work::Groups(cols)),
            SeqKind::SeqAdd => (&k::SEQ_ADD, Work::Threads(rows * cols)),
            SeqKind::SeqSum => (&k::SEQ_SUM, Work::Threads(rows / self.seq as u64 * cols)),
            SeqKind::Embed => (&k::EMBED, Work::Threads(rows * cols)),
            SeqKind::EmbedGrad => (&k::EMBED_GRAD, Work::Threads(self.n as u64 * cols)),
        }
    }
}

impl Instr for SeqInstr {
    fn dst(&self) -> Loc {
        self.y
    }
    fn srcs(&self) -> Vec<Loc> {
        self.srcs.clone()
    }
    crate::cpu_instr!();
    fn record(&self, gpu: &mut GpuRun<'_>) -> Result<()> {
        let p = SeqParams {
            rows: u32_of(self.rows, "rows")?,
            cols: u32_of(self.cols, "columns")?,
            seq: u32_of(self.seq, "sequence length")?,
            n: u32_of(self.n, "embedding rows")?,
            acc: self.acc as u32,
            eps: self.eps,
            ..Default::default()
        };
        let (kernel, work) = self.kernel();
        let mut locs = self.srcs.clone();
        locs.push(self.y);
        launch_work(gpu, kernel, &locs, work, p)
    }
    fn f16_storage(&self) -> bool {
        true
    }
}
