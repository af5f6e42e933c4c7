//! Host modules for the WGSL kernel families: typed launch functions, each with a CPU
//! reference of the same maths beside it.

pub mod linalg;
pub mod optim;
pub mod reduce;
pub mod rng;
pub mod sphere;
pub mod util;

use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::gpu::{GpuContext, Shader};

/// Storage precision of the tensors a kernel reads and writes. Arithmetic is f32 either way:
/// `F16` halves memory traffic and footprint, accumulations stay in f32 registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    /// 32-bit floats.
    #[default]
    F32,
    /// 16-bit IEEE floats; needs the adapter's `SHADER_F16` feature.
    F16,
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

/// The header a storage-generic shader starts its declarations with: its storage types.
pub const F32_HEADER: &str = "alias E = f32;\nalias E4 = vec4<f32>;\n";
const F16_HEADER: &str = "enable f16;\nalias E = f16;\nalias E4 = vec4<f16>;\n";

/// A shader written once against the storage aliases `E` / `E4` ([`F32_HEADER`]) and
/// compiled in either [`Precision`]: the f16 variant swaps the header for
/// `enable f16; alias E = f16; …`. Loads convert to f32 (`f32(x[i])`), stores back (`E(v)`).
#[derive(Debug)]
pub struct StorageGeneric {
    name_f32: &'static str,
    name_f16: &'static str,
    source: &'static str,
    f16: OnceLock<String>,
}

impl StorageGeneric {
    /// A storage-generic shader; `source` must contain [`F32_HEADER`].
    pub const fn new(name_f32: &'static str, name_f16: &'static str, source: &'static str) -> Self {
        Self {
            name_f32,
            name_f16,
            source,
            f16: OnceLock::new(),
        }
    }

    /// The shader in precision `p`.
    pub fn shader(&'static self, p: Precision) -> Shader {
        match p {
            Precision::F32 => Shader::new(self.name_f32, self.source),
            Precision::F16 => {
                let src = self.f16.get_or_init(|| {
                    assert!(
                        self.source.contains(F32_HEADER),
                        "{}: storage-generic shader without the storage header",
                        self.name_f32
                    );
                    self.source.replacen(F32_HEADER, F16_HEADER, 1)
                });
                Shader::new(self.name_f16, src)
            }
        }
    }
}

/// Every shader of the crate as compiled (storage-generic ones in both precisions): the list
/// the portability test translates for Vulkan, Metal and DX12.
pub fn all_shaders() -> Vec<Shader> {
    let mut v = vec![
        util::SHADER,
        sphere::SHADER,
        reduce::SHADER,
        optim::SHADER,
        rng::SHADER,
        crate::autodiff::kernels::SHADER,
        crate::flow::kernels::SHADER,
        crate::flow::ot::SHADER,
        crate::sdflow::SHADER,
        crate::tensornet::SHADER,
    ];
    let generic: [&'static StorageGeneric; 3] = [
        &linalg::MATMUL,
        &linalg::MATMUL_CPU,
        &crate::flow::field::SHADER,
    ];
    for g in generic {
        v.push(g.shader(Precision::F32));
        v.push(g.shader(Precision::F16));
    }
    v
}
