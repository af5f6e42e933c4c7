//! The wgpu runtime: [`GpuContext`] (owned or borrowed device, pipeline cache, error scopes),
//! [`GpuTensor`] (typed buffers), [`Recorder`] (many dispatches, one submission, replayable,
//! encodable into a host's command encoder) and GPU timestamps ([`Recorder::run_profiled`]).
//!
//! # Kernel conventions
//! - Every binding lives in group 0, numbered from 0 in the order the host passes them to
//!   [`GpuContext::bind`]; uniform parameters (when any) come first.
//! - Every entry point uses all the bindings of its (automatic) layout.
//! - Large launches use [`GpuContext::grid`]: the linear workgroup index is
//!   `wid.x + wid.y * num_workgroups.x`, and kernels return early past the end.
//! - A shader is one file of `shaders/`, optionally after a prelude of `shaders/lib/` joined at
//!   compile time (`concat!` of `include_str!`); storage-generic shaders declare their storage
//!   type in a header that [`crate::kernels::StorageGeneric`] swaps for f16. Every compiled
//!   shader is listed by [`crate::kernels::all_shaders`].

mod context;
mod recorder;
mod tensor;
pub mod testing;

pub use context::{
    list_adapters, AdapterSummary, ContextOptions, GpuContext, Kernel, Shader, ADAPTER_ENV,
};
pub use recorder::Recorder;
pub use tensor::{read_buffer, Element, GpuTensor, TENSOR_USAGE};
