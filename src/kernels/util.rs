//! Utility kernels: the vec4 copy used as the bandwidth baseline, and fill.

use crate::error::{Error, Result};
use crate::gpu::{GpuContext, GpuTensor, Recorder, Shader};

/// `shaders/util.wgsl`.
pub const SHADER: Shader = Shader::new("util", include_str!("../../shaders/util.wgsl"));

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n4: u32,
    value: f32,
    _pad: [u32; 2],
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
    let k = ctx.kernel(&SHADER, "copy")?;
    let p = ctx.uniform(&Params {
        n4,
        value: 0.0,
        _pad: [0; 2],
    });
    let bg = ctx.bind(&k, &[p.as_entire_binding(), src.binding(), dst.binding()])?;
    rec.dispatch(&k, &bg, ctx.grid(n4.div_ceil(256))?);
    Ok(())
}

/// Record `out ← value` everywhere (length a multiple of 4).
pub fn fill(ctx: &GpuContext, rec: &mut Recorder, out: &GpuTensor<f32>, value: f32) -> Result<()> {
    let n4 = vec4_len(out)?;
    let k = ctx.kernel(&SHADER, "fill")?;
    let p = ctx.uniform(&Params {
        n4,
        value,
        _pad: [0; 2],
    });
    let bg = ctx.bind(&k, &[p.as_entire_binding(), out.binding()])?;
    rec.dispatch(&k, &bg, ctx.grid(n4.div_ceil(256))?);
    Ok(())
}
