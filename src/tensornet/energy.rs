//! Targets on the GPU: the energy and log-weight `−βE(x)` of a batch of configurations by the
//! `energy` kernel of `shaders/tn_chains.wgsl`, for the targets that have an [`EnergyForm`]
//! (the 2D Ising model with any couplings and fields, the Fredkin chain with its Dyck-path
//! constraint). A user table ([`super::TableWeight`]) has none: its chains run on the CPU.
//!
//! The kernel works in f32. With integer couplings and fields (and every partial sum below
//! 2^24 in magnitude, as on any lattice of [`MAX_GPU_SITES`] sites with couplings of a few
//! units) every sum is an exact integer, so the energy equals the CPU's `E(x)` exactly; the
//! log-weight `−βE` and the observables then differ from the CPU's f64 by f32 rounding only.

use super::gpu_chains::{ChainParams, ENERGY};
use super::target::LogWeight;
use crate::error::{Error, Result};
use crate::gpu::{GpuContext, GpuTensor, Recorder, Work};

/// Most sites of a GPU target.
pub const MAX_GPU_SITES: usize = 1 << 13;

/// A target as the GPU chain kernels evaluate it: `log π̃ = −βE`.
#[derive(Clone, Debug, PartialEq)]
pub enum EnergyForm {
    /// `E = −½ Σ_i s_i Σ_{j ∈ nbr(i)} J_ij s_j − Σ_i h_i s_i` with spins `s = 1 − 2x`:
    /// the neighbours of site `i` are `neighbours[offsets[i]..offsets[i + 1]]` with couplings
    /// `couplings[…]` (every bond listed from both ends).
    Ising {
        /// Inverse temperature.
        beta: f64,
        /// `N + 1` offsets into `neighbours`.
        offsets: Vec<u32>,
        /// Neighbour sites.
        neighbours: Vec<u32>,
        /// The coupling of each neighbour entry.
        couplings: Vec<f64>,
        /// Field per site.
        field: Vec<f64>,
    },
    /// The Fredkin chain: `E = −A` (area under the path, state 0 an up step) on Dyck paths,
    /// weight zero elsewhere; `β = ½ ln(c/(1−c))`.
    Fredkin {
        /// Sites.
        n: usize,
        /// `½ ln(c/(1−c))`.
        beta: f64,
    },
}

impl EnergyForm {
    /// Number of sites.
    pub fn n_sites(&self) -> usize {
        match self {
            EnergyForm::Ising { field, .. } => field.len(),
            EnergyForm::Fredkin { n, .. } => *n,
        }
    }

    /// The `β` of `−βE`.
    pub fn beta(&self) -> f64 {
        match self {
            EnergyForm::Ising { beta, .. } | EnergyForm::Fredkin { beta, .. } => *beta,
        }
    }

    /// Whether local single-site moves can change the state (never for Fredkin: one flip
    /// leaves the Dyck paths).
    pub fn has_local_moves(&self) -> bool {
        matches!(self, EnergyForm::Ising { .. })
    }

    /// Check the form before upload: sizes, `β > 0` for Ising, finite f32 values.
    pub fn validate(&self) -> Result<()> {
        let n = self.n_sites();
        if n == 0 || n > MAX_GPU_SITES {
            return Err(Error::Limit(format!(
                "the GPU chains handle 1..={MAX_GPU_SITES} sites, got {n}"
            )));
        }
        let f32_ok = |v: f64| v.is_finite() && (v as f32).is_finite();
        if !f32_ok(self.beta()) {
            return Err(Error::NonFinite(format!(
                "β = {} is not a finite f32",
                self.beta()
            )));
        }
        if let EnergyForm::Ising {
            beta,
            offsets,
            neighbours,
            couplings,
            field,
        } = self
        {
            if *beta <= 0.0 {
                return Err(Error::InvalidArgument(format!(
                    "the Ising chains need β > 0, got {beta}"
                )));
            }
            let m = neighbours.len();
            if offsets.len() != n + 1
                || couplings.len() != m
                || offsets.last() != Some(&(m as u32))
                || offsets.windows(2).any(|w| w[0] > w[1])
                || neighbours.iter().any(|&j| j as usize >= n)
            {
                return Err(Error::Shape(format!(
                    "a malformed neighbour table for {n} sites ({} offsets, {m} entries)",
                    offsets.len()
                )));
            }
            if let Some(i) = couplings.iter().chain(field).position(|&v| !f32_ok(v)) {
                return Err(Error::NonFinite(format!(
                    "{} {} is not a finite f32",
                    if i < m {
                        "coupling entry"
                    } else {
                        "field of site"
                    },
                    if i < m { i } else { i - m }
                )));
            }
        }
        Ok(())
    }
}

/// A target's [`EnergyForm`] uploaded: the neighbour table (`tgt_u`) and couplings and fields
/// (`tgt_f`) of the `energy` and `local` kernels.
pub(crate) struct GpuTarget {
    pub form: EnergyForm,
    pub tgt_u: GpuTensor<u32>,
    pub tgt_f: GpuTensor<f32>,
}

impl GpuTarget {
    /// Check and upload the form of `target`, or say why its chains cannot run on the GPU.
    pub fn new(ctx: &GpuContext, target: &dyn LogWeight) -> Result<Self> {
        let form = target.energy_form().ok_or_else(|| {
            Error::InvalidArgument(
                "this target has no GPU form (a table target): its chains run on the CPU".into(),
            )
        })?;
        form.validate()?;
        let (u, f): (Vec<u32>, Vec<f32>) = match &form {
            EnergyForm::Ising {
                offsets,
                neighbours,
                couplings,
                field,
                ..
            } => (
                offsets.iter().chain(neighbours).copied().collect(),
                couplings.iter().chain(field).map(|&v| v as f32).collect(),
            ),
            EnergyForm::Fredkin { .. } => (vec![0], vec![0.0]),
        };
        Ok(Self {
            tgt_u: GpuTensor::from_slice(ctx, &u, &[u.len()])?,
            tgt_f: GpuTensor::from_slice(ctx, &f, &[f.len()])?,
            form,
        })
    }

    /// The kernel parameters of this target for `chains` configurations.
    pub fn params(&self, chains: usize) -> ChainParams {
        let (kind, n_edges) = match &self.form {
            EnergyForm::Ising { neighbours, .. } => (0, neighbours.len() as u32),
            EnergyForm::Fredkin { .. } => (1, 0),
        };
        ChainParams {
            n_sites: self.form.n_sites() as u32,
            chains: chains as u32,
            kind,
            beta: self.form.beta() as f32,
            n_edges,
            ..Default::default()
        }
    }

    /// Record the `energy` kernel: `(E, log w, obs0, obs1)` of `count` configurations `x`
    /// (`[count, N]`) into `e` (`[count, 4]`).
    pub fn record_energy(
        &self,
        ctx: &GpuContext,
        rec: &mut Recorder,
        x: &GpuTensor<u32>,
        e: &GpuTensor<f32>,
        count: usize,
    ) -> Result<()> {
        let p = self.params(count);
        let args = [
            x.into(),
            e.into(),
            (&self.tgt_u).into(),
            (&self.tgt_f).into(),
        ];
        ENERGY.launch(ctx, rec, Work::Threads(count as u64), &args, |_| p)
    }
}

/// The energy `E`, log-weight `−βE` (`−∞` off a hard constraint) and the two observables
/// ([`LogWeight::observables`]) of each configuration in `xs` (`[M, N]`), on the GPU in f32.
/// The CPU reference is the target itself.
pub fn gpu_energies(ctx: &GpuContext, target: &dyn LogWeight, xs: &[u8]) -> Result<Vec<[f64; 4]>> {
    let t = GpuTarget::new(ctx, target)?;
    let n = t.form.n_sites();
    if xs.is_empty() || !xs.len().is_multiple_of(n) {
        return Err(Error::Shape(format!(
            "{} states is not a whole, non-zero number of {n}-site configurations",
            xs.len()
        )));
    }
    for x in xs.chunks(n) {
        target.check(x)?;
    }
    let m = xs.len() / n;
    let bytes = (xs.len() as u64).saturating_mul(4);
    if bytes > ctx.max_binding() || m > u32::MAX as usize / 64 {
        return Err(Error::Limit(format!(
            "{m} configurations of {n} sites need {bytes} bytes; one storage binding holds {}",
            ctx.max_binding()
        )));
    }
    let data: Vec<u32> = xs.iter().map(|&v| v as u32).collect();
    let x = GpuTensor::from_slice(ctx, &data, &[m, n])?;
    let e = GpuTensor::<f32>::zeros(ctx, &[m, 4])?;
    let mut rec = Recorder::new();
    t.record_energy(ctx, &mut rec, &x, &e, m)?;
    rec.run(ctx)?;
    let out = e.to_vec(ctx)?;
    Ok(out
        .chunks(4)
        .map(|v| {
            let lw = super::gpu::to_logp(v[1]);
            [v[0] as f64, lw, v[2] as f64, v[3] as f64]
        })
        .collect())
}
