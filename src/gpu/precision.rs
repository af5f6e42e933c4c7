//! Storage precision of the tensors a kernel reads and writes.

use crate::error::{Error, Result};
use crate::gpu::GpuContext;

/// Storage precision of the tensors a kernel reads and writes. Arithmetic is f32 either way:
/// `F16` halves memory traffic and footprint, accumulations stay in f32 registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Precision {
    /// 32-bit floats.
    #[default]
    F32 = 0,
    /// 16-bit IEEE floats; needs the adapter's `SHADER_F16` feature.
    F16 = 1,
}

impl Precision {
    /// Bytes per element.
    pub fn bytes(self) -> u64 {
        match self {
            Precision::F32 => 4,
            Precision::F16 => 2,
        }
    }
    /// `"f32"` or `"f16"`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
        }
    }
    /// An error when the adapter cannot run kernels in this precision.
    pub fn check(self, ctx: &GpuContext) -> Result<()> {
        if self == Precision::F16 && !ctx.has_f16() {
            return Err(Error::InvalidArgument(format!(
                "f16 kernels need the SHADER_F16 feature, which {} does not offer",
                ctx.describe()
            )));
        }
        Ok(())
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" => Ok(Precision::F32),
            "f16" | "fp16" | "half" => Ok(Precision::F16),
            _ => Err(Error::InvalidArgument(format!(
                "unknown precision {s:?}; use f32 or f16"
            ))),
        }
    }
}
