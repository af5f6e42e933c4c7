//! Utility kernels: the vec4 copy used as the bandwidth baseline, and fill.

use crate::error::{Error, Result};
use crate::gpu::{lib, GpuContext, GpuTensor, KernelDef, Recorder, ShaderDef, Work};

/// `shaders/util.wgsl` with the grid prelude.
pub static SHADER: ShaderDef = ShaderDef::new(
    "util",
    &[lib::GRID, include_str!("../../shaders/util.wgsl")],
)
.slots(&["src", "dst"]);

/// `dst ← src` in vec4s.
pub static COPY: KernelDef =
    KernelDef::new(&SHADER, "copy", &["src", "dst"]).params::<UtilParams>();
/// `dst ← value`.
pub static FILL: KernelDef = KernelDef::new(&SHADER, "fill", &["dst"]).params::<UtilParams>();

/// Every kernel of the family.
pub fn kernels() -> Vec<&'static KernelDef> {
    vec![&COPY, &FILL]
}

crate::gpu_params! {
    /// Parameters of the utility kernels.
    pub struct UtilParams {
        /// Number of vec4 elements.
        pub n4: u32,
        /// Fill value.
        pub value: f32,
        /// Padding.
        pub _pad0: u32,
        /// Padding.
        pub _pad1: u32,
    }
}

fn vec4_len(t: &GpuTensor<f32>) -> Result<u32> {
    if !t.len().is_multiple_of(4) {
        return Err(Error::Shape(format!(
            "copy/fill work on whole vec4s; {} elements is not a multiple of 4",
            t.len()
        )));
    }
    u32::try_from(t.len() / 4).map_err(|_| Error::Limit("tensor too long for one dispatch".into()))
}

/// Record `dst ← src` with the vec4 copy kernel (same length, a multiple of 4).
pub fn copy(
    ctx: &GpuContext,
    rec: &mut Recorder,
    src: &GpuTensor<f32>,
    dst: &GpuTensor<f32>,
) -> Result<()> {
    if src.len() != dst.len() {
        return Err(Error::Shape(format!(
            "copy from {:?} into {:?}",
            src.shape(),
            dst.shape()
        )));
    }
    let n4 = vec4_len(src)?;
    let p = UtilParams {
        n4,
        ..Default::default()
    };
    COPY.launch(
        ctx,
        rec,
        Work::Threads(n4 as u64),
        &[src.into(), dst.into()],
        |_| p,
    )
}

/// Record `out ← value` everywhere (length a multiple of 4).
pub fn fill(ctx: &GpuContext, rec: &mut Recorder, out: &GpuTensor<f32>, value: f32) -> Result<()> {
    let n4 = vec4_len(out)?;
    let p = UtilParams {
        n4,
        value,
        ..Default::default()
    };
    FILL.launch(ctx, rec, Work::Threads(n4 as u64), &[out.into()], |_| p)
}
