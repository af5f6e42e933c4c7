//! The column MPS on the GPU (`shaders/tn_column.wgsl`): its table of conditionals uploaded
//! once, then batched perfect samples and log-probabilities, one invocation per sample. The
//! samples are those of [`ColumnMps::sample_rows`] with the generators `Rng::fork(key, i)`,
//! bit for bit (the kernel runs the same SplitMix64 streams in 32-bit words); log-probabilities
//! are summed in f32.

use super::column::{check_configurations, pack_column, unpack_column, ColumnMps};
use super::gpu::to_logp;
use crate::error::{Error, Result};
use crate::gpu::{
    lib, Arg, Chunk, GpuContext, GpuTensor, KernelDef, Recorder, ShaderDef, Work, WG,
};

/// `shaders/tn_column.wgsl` with the grid and Philox preludes (its 64-bit product).
pub static COLUMN_SHADER: ShaderDef = ShaderDef::new(
    "tn_column",
    &[
        lib::GRID,
        lib::PHILOX,
        include_str!("../../shaders/tn_column.wgsl"),
    ],
)
.slots(&["cond", "cols", "logp"]);

/// Samples (or log-probabilities of given samples), one per invocation.
pub static COLUMN_RUN: KernelDef =
    KernelDef::new(&COLUMN_SHADER, "run", &["cond", "cols", "logp"]).params::<ColumnParams>();

crate::gpu_params! {
    /// Parameters of the column sampler.
    pub struct ColumnParams {
        /// Sites.
        pub n_sites: u32,
        /// Spins per column.
        pub ly: u32,
        /// Samples in this chunk.
        pub rows: u32,
        /// 0: sample, 1: log-probabilities of given samples.
        pub mode: u32,
        /// Low word of the generator key.
        pub key_lo: u32,
        /// High word of the generator key.
        pub key_hi: u32,
        /// Low word of the stream index of the chunk's first sample.
        pub first_lo: u32,
        /// High word of that index.
        pub first_hi: u32,
    }
}

/// Most samples of one dispatch.
const MAX_ROWS: usize = 1 << 20;

/// A [`ColumnMps`] resident on the GPU.
#[derive(Debug)]
pub struct GpuColumnMps {
    cond: GpuTensor<f32>,
    n: usize,
    ly: usize,
}

impl GpuColumnMps {
    /// Upload the table of `mps` (`N · 2^ly` f32); refuses one larger than a storage binding.
    pub fn new(ctx: &GpuContext, mps: &ColumnMps) -> Result<Self> {
        let bytes = mps.table_bytes() as u64;
        if bytes > ctx.max_binding() {
            return Err(Error::Limit(format!(
                "the column MPS's table of {bytes} bytes exceeds the adapter's storage binding \
                 of {} bytes; use fewer spins per column or the CPU",
                ctx.max_binding()
            )));
        }
        let table = mps.table();
        Ok(Self {
            cond: GpuTensor::from_slice(ctx, table, &[table.len()])?,
            n: mps.n_sites(),
            ly: mps.ly(),
        })
    }

    /// Samples of stream indices `first .. first + rows` under `key` (`[rows, N]` states, the
    /// same as [`ColumnMps::sample_rows`] with `Rng::fork(key, first + i)`) and their
    /// `ln p` (f32 sums).
    pub fn sample_from(
        &self,
        ctx: &GpuContext,
        key: u64,
        first: u64,
        rows: usize,
    ) -> Result<(Vec<u8>, Vec<f64>)> {
        let lx = self.n / self.ly;
        let mut xs = vec![0u8; rows * self.n];
        let mut lps = Vec::with_capacity(rows);
        for start in (0..rows).step_by(MAX_ROWS) {
            let m = MAX_ROWS.min(rows - start);
            let cols = GpuTensor::<u32>::zeros(ctx, &[m, lx])?;
            let lp = self.dispatch(ctx, &cols, m, 0, key, first.wrapping_add(start as u64))?;
            let bits = cols.to_vec(ctx)?;
            let out = &mut xs[start * self.n..(start + m) * self.n];
            for (x, row) in out.chunks_exact_mut(self.n).zip(bits.chunks_exact(lx)) {
                for (col, &b) in x.chunks_exact_mut(self.ly).zip(row) {
                    unpack_column(b, col);
                }
            }
            lps.extend(lp);
        }
        Ok((xs, lps))
    }

    /// `ln p(x)` of configurations (`[M, N]`) in f32 sums.
    pub fn log_prob(&self, ctx: &GpuContext, xs: &[u8]) -> Result<Vec<f64>> {
        check_configurations(self.n, xs)?;
        let lx = self.n / self.ly;
        let rows = xs.len() / self.n;
        let mut lps = Vec::with_capacity(rows);
        for start in (0..rows).step_by(MAX_ROWS) {
            let m = MAX_ROWS.min(rows - start);
            let packed: Vec<u32> = xs[start * self.n..(start + m) * self.n]
                .chunks_exact(self.ly)
                .map(pack_column)
                .collect();
            let cols = GpuTensor::from_slice(ctx, &packed, &[m, lx])?;
            lps.extend(self.dispatch(ctx, &cols, m, 1, 0, 0)?);
        }
        Ok(lps)
    }

    /// One launch over `rows` samples whose packed columns are `cols`; returns their `ln p`.
    fn dispatch(
        &self,
        ctx: &GpuContext,
        cols: &GpuTensor<u32>,
        rows: usize,
        mode: u32,
        key: u64,
        first: u64,
    ) -> Result<Vec<f64>> {
        let logp = GpuTensor::<f32>::zeros(ctx, &[rows])?;
        let mut rec = Recorder::new();
        self.record(ctx, &mut rec, cols, &logp, rows, mode, key, first)?;
        rec.run(ctx)?;
        Ok(logp.to_vec(ctx)?.into_iter().map(to_logp).collect())
    }

    /// Record one launch over `rows` samples (`cols`: `[rows, lx]` packed columns, `logp`:
    /// `[rows]`) in `mode` 0 (sample streams `first ..` under `key`) or 1 (score `cols`).
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        ctx: &GpuContext,
        rec: &mut Recorder,
        cols: &GpuTensor<u32>,
        logp: &GpuTensor<f32>,
        rows: usize,
        mode: u32,
        key: u64,
        first: u64,
    ) -> Result<()> {
        let lx = self.n / self.ly;
        if cols.len() < rows * lx || logp.len() < rows {
            return Err(Error::Shape(format!(
                "buffers for {rows} samples of {lx} columns are too small"
            )));
        }
        let args = [(&self.cond).into(), Arg::rows(cols, lx), Arg::rows(logp, 1)];
        let work = Work::Rows {
            rows: rows as u64,
            per_group: WG,
        };
        let (n, ly) = (self.n as u32, self.ly as u32);
        COLUMN_RUN.launch(ctx, rec, work, &args, |c: Chunk| {
            let index = first.wrapping_add(c.first);
            ColumnParams {
                n_sites: n,
                ly,
                rows: c.rows as u32,
                mode,
                key_lo: key as u32,
                key_hi: (key >> 32) as u32,
                first_lo: index as u32,
                first_hi: (index >> 32) as u32,
            }
        })
    }

    /// Buffers and a one-launch recording that draws `rows` samples (streams `0..rows` under
    /// `key`): for replaying in benchmarks.
    pub fn sampling_recording(
        &self,
        ctx: &GpuContext,
        rows: usize,
        key: u64,
    ) -> Result<(Recorder, GpuTensor<u32>, GpuTensor<f32>)> {
        if rows == 0 || rows > MAX_ROWS {
            return Err(Error::Limit(format!(
                "{rows} samples in one recording (1 to {MAX_ROWS})"
            )));
        }
        let cols = GpuTensor::<u32>::zeros(ctx, &[rows, self.n / self.ly])?;
        let logp = GpuTensor::<f32>::zeros(ctx, &[rows])?;
        let mut rec = Recorder::new();
        self.record(ctx, &mut rec, &cols, &logp, rows, 0, key, 0)?;
        Ok((rec, cols, logp))
    }
}
