//! The wgpu runtime and the kernel layer: [`GpuContext`] (owned or borrowed device, pipeline
//! cache, error scopes), [`GpuTensor`] (typed buffers), [`Recorder`] (many dispatches, one
//! submission, replayable, encodable into a host's command encoder), GPU timestamps
//! ([`Recorder::run_profiled`]), and [`KernelDef`]: the one way every kernel is defined,
//! launched and checked.
//!
//! # Kernel conventions
//! - A shader is a [`ShaderDef`]: preludes of `shaders/lib/` ([`lib`]) and one file of
//!   `shaders/`, joined at compile time; storage-generic shaders are written against the
//!   aliases `E`/`E4` and compile in f32 or f16 storage ([`Precision`]).
//! - Every binding lives in group 0: the parameters (a [`gpu_params!`](crate::gpu_params)
//!   struct) at binding 0, then the arguments in the order of [`KernelDef::bindings`].
//! - Large launches fold their workgroups into two dimensions ([`Work`]); kernels recover the
//!   linear index with `group_index` / `thread_index` of `shaders/lib/grid.wgsl`.
//! - Every kernel of the crate is listed by [`crate::all_kernels()`]; tests translate each of their
//!   shaders to SPIR-V, MSL and HLSL and compare every parameter struct, binding name and
//!   workgroup size with the WGSL.

mod binding;
mod context;
mod kernel;
mod precision;
mod recorder;
mod tensor;
pub mod testing;

pub use binding::{plan_chunks, Arg, Chunk};
pub use context::{
    list_adapters, AdapterSummary, ContextOptions, GpuContext, Kernel, Shader, Tuning, ADAPTER_ENV,
};
pub use kernel::{
    u32_of, Field, KernelDef, NoParams, Params, ParamsLayout, ShaderDef, Variant, Work, WG,
};
pub use precision::Precision;
pub use recorder::Recorder;
pub use tensor::{read_buffer, Element, GpuTensor, TENSOR_USAGE};

/// The shared WGSL library (`shaders/lib/`): preludes that shaders list before their body.
pub mod lib {
    /// `WG`, `group_index`, `thread_index`: the launch grid of [`super::Work`].
    pub const GRID: &str = include_str!("../../shaders/lib/grid.wgsl");
    /// Rows of K handled by a power-of-two number of lanes, with row sums (after `GRID`).
    pub const ROWS: &str = include_str!("../../shaders/lib/rows.wgsl");
    /// `tree_sum`: a deterministic workgroup sum (after `GRID`).
    pub const TREE: &str = include_str!("../../shaders/lib/tree.wgsl");
    /// Activation codes and functions (`act_apply`, `act_deriv`), the codes of
    /// [`crate::kernels::Activation`].
    pub const ACT: &str = include_str!("../../shaders/lib/act.wgsl");
    /// The Philox4x32-10 generator and its uniform and normal conversions.
    pub const PHILOX: &str = include_str!("../../shaders/lib/philox.wgsl");
    /// `sin_acc`, `cos_acc`, `atan_pos`, `sinc`: trigonometry to about 1 ulp in f32.
    pub const TRIG: &str = include_str!("../../shaders/lib/trig.wgsl");
}

/// Invocations that share one row of length `k` in the row kernels (`shaders/lib/rows.wgsl`):
/// on GPUs `min(256, next_pow2(ceil(k / 4)))`, so each lane handles about four elements; on
/// CPU adapters (Mesa's lavapipe) one, since they run a workgroup's invocations as SIMD loops
/// where cross-lane reductions cost more than walking a whole row. [`Tuning::row_lanes`]
/// overrides the choice.
pub fn row_lanes(ctx: &GpuContext, k: usize) -> u32 {
    match ctx.tuning().row_lanes {
        Some(0) => return row_lanes_for(k),
        Some(n) => return n.min(WG).next_power_of_two().min(WG),
        None => {}
    }
    if ctx.adapter_info().device_type == wgpu::DeviceType::Cpu {
        1
    } else {
        row_lanes_for(k)
    }
}

/// The GPU choice of [`row_lanes`] for rows of length `k`.
pub fn row_lanes_for(k: usize) -> u32 {
    (k.div_ceil(4).max(1).next_power_of_two()).min(WG as usize) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_cover_rows() {
        assert_eq!(row_lanes_for(2), 1);
        assert_eq!(row_lanes_for(4), 1);
        assert_eq!(row_lanes_for(20), 8);
        assert_eq!(row_lanes_for(160), 64);
        assert_eq!(row_lanes_for(4096), 256);
        assert_eq!(row_lanes_for(100_000), 256);
    }
}
