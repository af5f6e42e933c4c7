//! The GPU sampler: an MPS and its right environments uploaded once, then any number of
//! batched perfect-sampling or log-probability dispatches (`shaders/tensornet.wgsl`).

use super::sampler::Environments;
use super::Mps;
use crate::error::{Error, Result};
use crate::gpu::{lib, GpuContext, GpuTensor, KernelDef, Recorder, ShaderDef, Work};

/// `shaders/tensornet.wgsl` with the grid and Philox preludes.
pub static SHADER: ShaderDef = ShaderDef::new(
    "tensornet",
    &[
        lib::GRID,
        lib::PHILOX,
        include_str!("../../shaders/tensornet.wgsl"),
    ],
)
.slots(&["tens", "sites", "samples", "logp", "ctr"]);

const BINDINGS: &[&str] = &["tens", "sites", "samples", "logp", "ctr"];
/// A workgroup of 64 lanes per batch of samples (bonds above 64).
pub static RUN: KernelDef = KernelDef::new(&SHADER, "run", BINDINGS)
    .params::<TnParams>()
    .workgroup(64);
/// One sample per invocation (bonds up to 64).
pub static RUN_SMALL: KernelDef = KernelDef::new(&SHADER, "run_small", BINDINGS)
    .params::<TnParams>()
    .workgroup(64);

/// Every kernel of the family: the sampler and the chain kernels.
pub fn kernels() -> Vec<&'static KernelDef> {
    let mut k = vec![&RUN, &RUN_SMALL, &super::column_gpu::COLUMN_RUN];
    k.extend(super::gpu_chains::kernels());
    k
}

/// Workgroup memory per half (floats): `batch · χ_max` must fit.
const HALF: usize = 1536;
const MAX_BATCH: usize = 256;
const MAX_D: usize = 4;
/// Largest bond dimension of the one-sample-per-invocation kernel (`run_small`).
const SMALL_CHI: usize = 64;
/// Log-probabilities at or below this are `-inf` (the kernel's marker for weight 0).
const DEAD: f32 = -1.0e38;

crate::gpu_params! {
    /// Parameters of the sampler.
    pub struct TnParams {
        /// Sites.
        pub n_sites: u32,
        /// States per site.
        pub d: u32,
        /// Samples in this dispatch.
        pub n_samples: u32,
        /// Samples per workgroup.
        pub batch: u32,
        /// Philox key.
        pub seed: u32,
        /// Philox stream.
        pub stream: u32,
        /// 0: sample, 1: log-probabilities of given samples.
        pub mode: u32,
        /// Low word of the global index of the dispatch's first sample.
        pub first: u32,
        /// Largest bond dimension.
        pub chi_max: u32,
        /// High word of the first sample's index.
        pub first_hi: u32,
        /// The index advances by `ctr[0] · stride` (a step counter on the GPU).
        pub stride: u32,
        /// Padding.
        pub _pad2: u32,
    }
}

/// An MPS resident on the GPU with its right environments, ready for batched exact sampling
/// and log-probabilities. See the [module docs](super) for the parallel strategy.
pub struct GpuMps {
    tens: GpuTensor<f32>,
    sites: GpuTensor<u32>,
    kernel: &'static KernelDef,
    n_sites: usize,
    d: usize,
    chi_max: usize,
    batch: usize,
    log_z: f64,
    /// A zero step counter for dispatches outside a chain recording.
    zero: GpuTensor<u32>,
}

/// What one sampler dispatch does: its random stream and mode.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Draw {
    /// Global index of the first sample (64-bit).
    pub first: u64,
    /// The index advances by `ctr[0] · stride`.
    pub stride: u32,
    /// Philox key.
    pub seed: u32,
    /// Philox stream.
    pub stream: u32,
    /// 0: sample, 1: log-probabilities of given samples.
    pub mode: u32,
}

impl std::fmt::Debug for GpuMps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuMps")
            .field("n_sites", &self.n_sites)
            .field("d", &self.d)
            .field("chi_max", &self.chi_max)
            .field("batch", &self.batch)
            .finish()
    }
}

impl GpuMps {
    /// Contract the right environments on the CPU (f64) and upload tensors and environments
    /// as f32. Needs a non-negative MPS, `d ≤ 4` and `χ ≤ 1536`.
    pub fn new(ctx: &GpuContext, mps: &Mps) -> Result<Self> {
        let env = Environments::new(mps)?;
        Self::with_environments(ctx, mps, &env)
    }

    /// As [`GpuMps::new`] with environments already computed.
    pub fn with_environments(ctx: &GpuContext, mps: &Mps, env: &Environments) -> Result<Self> {
        mps.validate()?;
        if !mps.is_nonnegative() {
            return Err(Error::InvalidArgument(
                "the GPU sampler needs an MPS with non-negative entries".into(),
            ));
        }
        let d = mps.d();
        if d > MAX_D {
            return Err(Error::InvalidArgument(format!(
                "the GPU sampler handles up to {MAX_D} states per site, got {d}"
            )));
        }
        let chi_max = mps.chi_max();
        if chi_max > HALF {
            return Err(Error::Limit(format!(
                "bond dimension {chi_max} exceeds the GPU sampler's {HALF}"
            )));
        }
        if env.m.len() != mps.len() {
            return Err(Error::Shape("environments of another MPS".into()));
        }
        let mut data: Vec<f32> = Vec::new();
        let mut info: Vec<u32> = Vec::with_capacity(4 * mps.len());
        for (a, m) in mps.sites.iter().zip(&env.m) {
            let off_a = data.len();
            data.extend(a.data.iter().map(|&v| v as f32));
            let off_m = data.len();
            data.extend(m.iter().map(|&v| v as f32));
            info.extend([off_a as u32, off_m as u32, a.dl as u32, a.dr as u32]);
        }
        if data.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFinite(
                "MPS entries overflow f32; rescale the site tensors".into(),
            ));
        }
        let max_bind = ctx.max_binding();
        if (data.len() * 4) as u64 > max_bind || data.len() > u32::MAX as usize {
            return Err(Error::Limit(format!(
                "the MPS needs {} bytes on the GPU; one storage binding holds {max_bind}",
                data.len() * 4
            )));
        }
        let tens = GpuTensor::from_slice(ctx, &data, &[data.len()])?;
        let sites = GpuTensor::from_slice(ctx, &info, &[info.len()])?;
        // Small bonds: one sample per invocation (`run_small`); else a workgroup per batch.
        let (kernel, batch) = if chi_max <= SMALL_CHI {
            (&RUN_SMALL, 64)
        } else {
            (&RUN, (HALF / chi_max).clamp(1, MAX_BATCH))
        };
        Ok(Self {
            tens,
            sites,
            kernel,
            n_sites: mps.len(),
            d,
            chi_max,
            batch,
            log_z: env.log_z,
            zero: GpuTensor::zeros(ctx, &[4])?,
        })
    }

    /// `log Z` of the uploaded MPS (from the CPU contraction).
    pub fn log_z(&self) -> f64 {
        self.log_z
    }
    /// Samples per workgroup.
    pub fn batch(&self) -> usize {
        self.batch
    }
    /// Number of sites.
    pub fn n_sites(&self) -> usize {
        self.n_sites
    }

    fn rows_per_dispatch(&self, ctx: &GpuContext) -> usize {
        let max = ctx.max_binding() as usize;
        (max / (4 * self.n_sites)).clamp(1, 1 << 22)
    }

    /// Number of states per site.
    pub fn d(&self) -> usize {
        self.d
    }

    /// Record one dispatch over buffers for `n` samples; `ctr` (the zero counter when `None`)
    /// holds the step that advances the stream by `ctr[0] · draw.stride`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record(
        &self,
        ctx: &GpuContext,
        rec: &mut Recorder,
        samples: &GpuTensor<u32>,
        logp: &GpuTensor<f32>,
        n: usize,
        draw: Draw,
        ctr: Option<&GpuTensor<u32>>,
    ) -> Result<()> {
        if samples.len() < n * self.n_sites || logp.len() < n {
            return Err(Error::Shape(format!(
                "buffers for {n} samples of {} sites are too small",
                self.n_sites
            )));
        }
        let p = TnParams {
            n_sites: self.n_sites as u32,
            d: self.d as u32,
            n_samples: n as u32,
            batch: self.batch as u32,
            seed: draw.seed,
            stream: draw.stream,
            mode: draw.mode,
            first: draw.first as u32,
            chi_max: self.chi_max as u32,
            first_hi: (draw.first >> 32) as u32,
            stride: draw.stride,
            ..Default::default()
        };
        let args = [
            (&self.tens).into(),
            (&self.sites).into(),
            samples.into(),
            logp.into(),
            ctr.unwrap_or(&self.zero).into(),
        ];
        let groups = n.div_ceil(self.batch) as u64;
        self.kernel
            .launch(ctx, rec, Work::Groups(groups), &args, |_| p)?;
        Ok(())
    }

    /// Buffers and a one-dispatch recording that draws `n` samples (sample indices
    /// `0..n`, key `seed`) into `samples` (`[n, N]` u32) and their `log P` into `logp` —
    /// for replaying in benchmarks.
    pub fn sampling_recording(
        &self,
        ctx: &GpuContext,
        n: usize,
        seed: u32,
    ) -> Result<(Recorder, GpuTensor<u32>, GpuTensor<f32>)> {
        if n == 0 || n > self.rows_per_dispatch(ctx) {
            return Err(Error::Limit(format!(
                "{n} samples of {} sites do not fit one dispatch (at most {})",
                self.n_sites,
                self.rows_per_dispatch(ctx)
            )));
        }
        let samples = GpuTensor::<u32>::zeros(ctx, &[n, self.n_sites])?;
        let logp = GpuTensor::<f32>::zeros(ctx, &[n])?;
        let mut rec = Recorder::new();
        let draw = Draw {
            seed,
            ..Default::default()
        };
        self.record(ctx, &mut rec, &samples, &logp, n, draw, None)?;
        Ok((rec, samples, logp))
    }

    /// Draw `n` exact samples (row-major `[n, N]` states) and their `log P` (f32 precision).
    /// Sample `i` uses the Philox stream `(seed, i)`, the same as [`super::sample_cpu`].
    pub fn sample(&self, ctx: &GpuContext, n: usize, seed: u32) -> Result<(Vec<u8>, Vec<f64>)> {
        self.sample_from(ctx, 0, n, seed)
    }

    /// As [`GpuMps::sample`] for the samples of 64-bit indices `first .. first + n`, the same
    /// as [`super::Environments::sample_scored`].
    pub fn sample_from(
        &self,
        ctx: &GpuContext,
        first: u64,
        n: usize,
        seed: u32,
    ) -> Result<(Vec<u8>, Vec<f64>)> {
        if n > u32::MAX as usize {
            return Err(Error::Limit("more than 2^32 samples in one call".into()));
        }
        let per = self.rows_per_dispatch(ctx);
        let mut xs = Vec::with_capacity(n * self.n_sites);
        let mut lps = Vec::with_capacity(n);
        let mut done = 0usize;
        while done < n {
            let m = per.min(n - done);
            let samples = GpuTensor::<u32>::zeros(ctx, &[m, self.n_sites])?;
            let logp = GpuTensor::<f32>::zeros(ctx, &[m])?;
            let mut rec = Recorder::new();
            let draw = Draw {
                first: first.wrapping_add(done as u64),
                seed,
                ..Default::default()
            };
            self.record(ctx, &mut rec, &samples, &logp, m, draw, None)?;
            rec.run(ctx)?;
            xs.extend(samples.to_vec(ctx)?.into_iter().map(|v| v as u8));
            lps.extend(logp.to_vec(ctx)?.into_iter().map(to_logp));
            done += m;
        }
        Ok((xs, lps))
    }

    /// `log P(x)` of configurations (row-major `[n, N]`) by the sequential conditionals, in f32.
    pub fn log_prob(&self, ctx: &GpuContext, xs: &[u8]) -> Result<Vec<f64>> {
        let len = self.n_sites;
        if !xs.len().is_multiple_of(len) {
            return Err(Error::Shape(format!(
                "{} states is not a whole number of {len}-site configurations",
                xs.len()
            )));
        }
        if let Some(p) = xs.iter().position(|&v| v as usize >= self.d) {
            return Err(Error::InvalidArgument(format!(
                "state {} at position {p} is outside 0..{}",
                xs[p], self.d
            )));
        }
        let n = xs.len() / len;
        let per = self.rows_per_dispatch(ctx);
        let mut out = Vec::with_capacity(n);
        let mut first = 0usize;
        while first < n {
            let m = per.min(n - first);
            let data: Vec<u32> = xs[first * len..(first + m) * len]
                .iter()
                .map(|&v| v as u32)
                .collect();
            let samples = GpuTensor::<u32>::from_slice(ctx, &data, &[m, len])?;
            let logp = GpuTensor::<f32>::zeros(ctx, &[m])?;
            let mut rec = Recorder::new();
            let draw = Draw {
                mode: 1,
                ..Default::default()
            };
            self.record(ctx, &mut rec, &samples, &logp, m, draw, None)?;
            rec.run(ctx)?;
            out.extend(logp.to_vec(ctx)?.into_iter().map(to_logp));
            first += m;
        }
        Ok(out)
    }
}

pub(crate) fn to_logp(v: f32) -> f64 {
    if v <= DEAD {
        f64::NEG_INFINITY
    } else {
        v as f64
    }
}
