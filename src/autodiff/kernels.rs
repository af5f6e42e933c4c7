//! Host side of `shaders/autodiff.wgsl`: the uniform block and a launcher. The CPU reference of
//! every kernel is the matching instruction in [`CpuExecutor`](super::CpuExecutor); the tests
//! compare the two backends op by op.

use crate::error::{Error, Result};
use crate::gpu::{GpuContext, Recorder, Shader};

/// `shaders/autodiff.wgsl`.
pub const SHADER: Shader = Shader::new("autodiff", include_str!("../../shaders/autodiff.wgsl"));

/// Threads per workgroup of every kernel in the file.
pub const WG: u32 = 256;

/// The uniform block shared by every kernel of `autodiff.wgsl` (fields unused by a kernel are
/// ignored).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Uniform {
    /// Elements, rows, groups or columns, per kernel.
    pub n: u32,
    /// Rows.
    pub rows: u32,
    /// Columns.
    pub cols: u32,
    /// Group size.
    pub k: u32,
    /// Kernel mode (activation, binary op, reduction).
    pub mode: u32,
    /// 1: accumulate into the output.
    pub acc: u32,
    /// Columns of the input (column copy).
    pub x_cols: u32,
    /// Columns of the output (column copy).
    pub y_cols: u32,
    /// First input column (column copy).
    pub x_off: u32,
    /// First output column (column copy).
    pub y_off: u32,
    /// Columns copied.
    pub width: u32,
    /// Padding.
    pub _pad0: u32,
    /// Scale.
    pub s: f32,
    /// Additive constant.
    pub c: f32,
    /// LeakyReLU slope.
    pub slope: f32,
    /// Padding.
    pub _pad1: u32,
}

/// A `u32` from a size, or a limit error naming `what`.
pub fn u32_of(x: usize, what: &str) -> Result<u32> {
    u32::try_from(x).map_err(|_| Error::Limit(format!("{what} = {x} exceeds u32")))
}

/// Record `entry` with uniform `u`, buffer bindings `bindings` (after the uniform) and
/// `threads` threads (workgroups of [`WG`], 2-D grid when large).
pub fn launch(
    ctx: &GpuContext,
    rec: &mut Recorder,
    entry: &str,
    u: &Uniform,
    bindings: &[wgpu::BindingResource<'_>],
    threads: usize,
) -> Result<()> {
    let k = ctx.kernel(&SHADER, entry)?;
    let p = ctx.uniform(u);
    let mut all = vec![p.as_entire_binding()];
    all.extend(bindings.iter().cloned());
    let bg = ctx.bind(&k, &all)?;
    let groups = u32_of(threads.div_ceil(WG as usize), "workgroups")?;
    rec.dispatch(&k, &bg, ctx.grid(groups)?);
    Ok(())
}

/// Record a reduction that needs exactly `groups` workgroups (grid-stride kernels).
pub fn launch_groups(
    ctx: &GpuContext,
    rec: &mut Recorder,
    entry: &str,
    u: &Uniform,
    bindings: &[wgpu::BindingResource<'_>],
    groups: u32,
) -> Result<()> {
    let k = ctx.kernel(&SHADER, entry)?;
    let p = ctx.uniform(u);
    let mut all = vec![p.as_entire_binding()];
    all.extend(bindings.iter().cloned());
    let bg = ctx.bind(&k, &all)?;
    rec.dispatch(&k, &bg, [groups, 1, 1]);
    Ok(())
}
