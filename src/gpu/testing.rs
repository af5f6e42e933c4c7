//! Test support: one shared [`GpuContext`] per test binary.
//!
//! With `FISHERFLOW_REQUIRE_GPU=1` (CI sets it) a missing adapter fails the test; otherwise a
//! GPU test prints why it was skipped and returns early.

use std::sync::OnceLock;

use crate::gpu::GpuContext;

/// Environment variable that turns a missing adapter into a test failure.
pub const REQUIRE_GPU_ENV: &str = "FISHERFLOW_REQUIRE_GPU";

/// The shared context, or `None` (after printing why) when there is no adapter and
/// `FISHERFLOW_REQUIRE_GPU` is not set. Panics when the GPU is required but missing.
pub fn gpu() -> Option<&'static GpuContext> {
    static CTX: OnceLock<Result<GpuContext, String>> = OnceLock::new();
    match CTX.get_or_init(|| GpuContext::new().map_err(|e| e.to_string())) {
        Ok(ctx) => Some(ctx),
        Err(e) => {
            let required = std::env::var(REQUIRE_GPU_ENV).is_ok_and(|v| v != "0" && !v.is_empty());
            if required {
                panic!("{REQUIRE_GPU_ENV} is set but no GPU context could be created: {e}");
            }
            eprintln!("skipping GPU test: {e}");
            None
        }
    }
}

/// The devices a test runs on: the CPU backend and, when there is one, the shared GPU
/// ([`gpu`]).
pub fn devices() -> Vec<crate::device::Device<'static>> {
    let mut d = vec![crate::device::Device::Cpu];
    d.extend(gpu().map(crate::device::Device::Gpu));
    d
}
