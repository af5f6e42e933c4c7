//! Sizes checked before anything is allocated: the bytes a run needs, computed with saturating
//! (never wrapping) arithmetic, against the memory the host has available and the adapter's
//! limits. A refusal names the setting that caused it, the size and the limit.
//!
//! A run's needs are a function of its settings ([`Estimate`]). When they exceed a limit, the
//! setting to blame is the one whose reset to its usual value lowers the need the most, so the
//! message says "lower --batch" only when the batch is what made the run too large.

use crate::error::{Error, Result};

/// Bytes of `n` values of `width` bytes each, saturating at `u128::MAX`.
pub fn bytes(n: &[usize], width: u64) -> u128 {
    n.iter()
        .fold(width as u128, |acc, &x| acc.saturating_mul(x as u128))
}

/// `a + b + …`, saturating.
pub fn sum(parts: &[u128]) -> u128 {
    parts.iter().fold(0u128, |a, &b| a.saturating_add(b))
}

/// A size for people: `3.2 GiB`, `512 B`; saturated values read as "more than 16 EiB".
pub fn human(b: u128) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if b > u64::MAX as u128 {
        return "more than 16 EiB".into();
    }
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Memory the host can give a new allocation now: `MemAvailable` of `/proc/meminfo` on Linux;
/// `None` where that is unknown (then only the arithmetic and the adapter's limits are checked).
pub fn host_available() -> Option<u128> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u128 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Free bytes on the file system holding `dir` (for an unprivileged writer); `None` where
/// unknown.
pub fn disk_available(dir: &std::path::Path) -> Option<u128> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `c` is a NUL-terminated path and `s` a writable statvfs the call fills in.
        if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
            return None;
        }
        Some(s.f_bavail as u128 * s.f_frsize as u128)
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// A setting that can be blamed for a size: its name as the user gave it (`--batch`,
/// `K of --data seqs.txt`), its value, and how to put the usual value in its place.
pub struct Knob<S> {
    /// The setting as the user knows it, e.g. `--batch` or `K of the data`.
    pub name: String,
    /// Its value, as shown.
    pub value: String,
    /// Sets the usual value of the setting in a copy of the settings.
    pub reset: Box<dyn Fn(&mut S)>,
}

impl<S> Knob<S> {
    /// A knob named `name` whose value is `value`, reset by `reset`.
    pub fn new(name: &str, value: impl ToString, reset: impl Fn(&mut S) + 'static) -> Self {
        Self {
            name: name.to_string(),
            value: value.to_string(),
            reset: Box::new(reset),
        }
    }
}

/// One limit the needs of a run are checked against.
pub struct Estimate<'a, S> {
    /// What is limited, e.g. `host memory` or `the adapter's storage binding`.
    pub what: &'a str,
    /// The limit in bytes (`None`: unknown, nothing is checked).
    pub limit: Option<u128>,
    /// The bytes needed under some settings.
    pub need: &'a dyn Fn(&S) -> u128,
}

/// Checks every estimate of `settings`; on the first one over its limit, blames the knob whose
/// reset lowers the need the most and says so.
pub fn check<S: Clone>(
    settings: &S,
    estimates: &[Estimate<'_, S>],
    knobs: &[Knob<S>],
) -> Result<()> {
    for e in estimates {
        let Some(limit) = e.limit else { continue };
        let need = (e.need)(settings);
        if need <= limit {
            continue;
        }
        let blamed = knobs
            .iter()
            .map(|k| {
                let mut s = settings.clone();
                (k.reset)(&mut s);
                (k, (e.need)(&s))
            })
            .filter(|(_, n)| *n < need)
            .min_by_key(|(_, n)| *n);
        let msg = match blamed {
            Some((k, _)) => format!(
                "{} {}: the run needs {} of {}, more than the {} available{}",
                k.name,
                k.value,
                human(need),
                e.what,
                human(limit),
                if k.name.starts_with("--") {
                    format!("; lower {}", k.name)
                } else {
                    String::new()
                }
            ),
            None => format!(
                "the run needs {} of {}, more than the {} available",
                human(need),
                e.what,
                human(limit)
            ),
        };
        return Err(Error::InvalidArgument(msg));
    }
    Ok(())
}

/// The sizes of a Fisher-Flow training run: its parameters, host and device bytes and largest
/// binding, checked before any work.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainSizes {
    /// Sequence length L.
    pub len: usize,
    /// Categories K.
    pub vocab: usize,
    /// Hidden width.
    pub hidden: usize,
    /// Residual blocks.
    pub blocks: usize,
    /// Width of the time embedding.
    pub time_dim: usize,
    /// Sequences per step.
    pub batch: usize,
    /// Whether minibatch OT builds a `batch × batch` cost matrix.
    pub ot: bool,
    /// Sequences of training data held in memory.
    pub data_n: usize,
    /// Samples drawn for the final evaluation.
    pub eval_n: usize,
    /// Kernel size of the convolutional network (0: the MLP).
    pub kernel: usize,
}

impl TrainSizes {
    /// Trainable scalars of the MLP (the formula of [`crate::nn::MlpConfig::param_count`]),
    /// saturating.
    pub fn params(&self) -> u128 {
        if self.kernel > 0 {
            return self.conv_params();
        }
        let (lk, h, e) = (
            (self.len as u128).saturating_mul(self.vocab as u128),
            self.hidden as u128,
            self.time_dim as u128,
        );
        let block = (h + e).saturating_mul(h).saturating_add(h);
        sum(&[
            2 * e,
            (lk.saturating_add(e)).saturating_mul(h),
            h,
            block.saturating_mul(self.blocks as u128),
            (h + e).saturating_mul(lk),
            lk,
        ])
    }

    /// Trainable scalars of the convolutional network.
    fn conv_params(&self) -> u128 {
        let (k, h, e) = (
            self.vocab as u128,
            self.hidden as u128,
            self.time_dim as u128,
        );
        let block = sum(&[
            5 * h,
            h.saturating_mul(h),
            (self.kernel as u128).saturating_mul(h).saturating_mul(h),
        ]);
        sum(&[
            k.saturating_mul(h) + h,
            e + e.saturating_mul(h) + h,
            block.saturating_mul(self.blocks as u128),
            2 * h + h.saturating_mul(k) + k,
        ])
    }

    /// f32 values of the activations of one sequence through forward and backward.
    pub fn per_sequence(&self) -> u128 {
        let lk = (self.len as u128).saturating_mul(self.vocab as u128);
        let (h, e) = (self.hidden as u128, self.time_dim as u128);
        if self.kernel > 0 {
            // inputs, target, output and gradients; per block (and the output's norm) the
            // normalised, shifted, activated and convolved values, the residual sum and their
            // gradients, all [L, H].
            let lh = (self.len as u128).saturating_mul(h);
            return sum(&[
                lk.saturating_mul(8),
                lh.saturating_mul(12)
                    .saturating_mul(self.blocks as u128 + 1),
            ]);
        }
        // inputs, target, output and their gradients; per layer the concatenated input, the
        // pre-activation, the activation and their gradients.
        sum(&[
            lk.saturating_add(e).saturating_mul(8),
            (h + e)
                .saturating_mul(6)
                .saturating_mul(self.blocks as u128 + 1),
        ])
    }

    /// Host bytes: the data, parameters with gradients, Adam moments and the checkpoint's
    /// copies, a batch's activations (on the CPU backend), the OT cost matrix and the samples
    /// of the evaluation.
    pub fn host_bytes(&self, cpu: bool) -> u128 {
        let params = self.params();
        let acts = if cpu {
            self.per_sequence()
                .saturating_mul(self.batch as u128)
                .saturating_mul(4)
        } else {
            0
        };
        sum(&[
            bytes(&[self.data_n, self.len], 4),
            params.saturating_mul(if cpu { 40 } else { 24 }),
            acts,
            bytes(&[self.batch, self.len, self.vocab], 4 * 3),
            if self.ot {
                bytes(&[self.batch, self.batch], 16)
            } else {
                0
            },
            bytes(&[self.eval_n, self.len], 4 * 4),
        ])
    }

    /// Device bytes: parameters, gradients and moments, a batch's activations, the data.
    pub fn device_bytes(&self) -> u128 {
        sum(&[
            self.params().saturating_mul(16),
            self.per_sequence()
                .saturating_mul(self.batch as u128)
                .saturating_mul(4),
            bytes(&[self.data_n, self.len], 4),
        ])
    }

    /// The largest single buffer the GPU backend binds: the parameters, the widest
    /// activation of a batch, or the data's tokens.
    pub fn largest_binding(&self) -> u128 {
        let lk = (self.len as u128).saturating_mul(self.vocab as u128);
        let (h, e) = (self.hidden as u128, self.time_dim as u128);
        let widest = if self.kernel > 0 {
            (self.len as u128).saturating_mul(h.max(self.vocab as u128))
        } else {
            lk.max(h).saturating_add(e)
        };
        [
            self.params().saturating_mul(4),
            widest.saturating_mul(self.batch as u128).saturating_mul(4),
            bytes(&[self.data_n, self.len], 4),
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
    }
}

/// Bounds on settings that shape a network rather than its memory (a graph of a million
/// blocks takes long to build even when it would fit).
pub const MAX_BLOCKS: usize = 256;
/// The largest convolution kernel.
pub const MAX_KERNEL: usize = 1025;
/// The most integration steps of one sampling run (the steps are recorded ahead).
pub const MAX_SAMPLE_STEPS: usize = 100_000;
