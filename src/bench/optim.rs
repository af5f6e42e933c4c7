//! The optimizer step as a memory-bound kernel: global grad-norm clipping and AdamW over one
//! contiguous parameter buffer, in bytes moved per second against the vec4 copy of the same
//! bytes measured in the same run.

use crate::autodiff::OptimConfig;
use crate::bench::sphere::copy_recording;
use crate::bench::{time_recording, Measurement};
use crate::error::Result;
use crate::gpu::{GpuContext, GpuTensor, Recorder};
use crate::kernels::optim::GpuOptimizer;
use crate::nn::MlpConfig;

/// AdamW with clipping for the toy model's parameter count and (unless `quick`) 16 Mi
/// parameters. Bytes counted: the norm pass reads the gradients, the update reads parameters,
/// gradients and both moments and writes parameters and moments: 32 bytes per parameter.
pub fn run(ctx: &GpuContext, quick: bool) -> Result<Vec<Measurement>> {
    let toy = MlpConfig::default().param_count();
    let sizes: Vec<(String, usize)> = if quick {
        vec![(format!("toy model, {toy} params"), toy)]
    } else {
        vec![
            (format!("toy model, {toy} params"), toy),
            ("16 Mi params".to_string(), 1 << 24),
        ]
    };
    let device = ctx.describe();
    let mut out = Vec::new();
    for (label, n) in sizes {
        let opt = GpuOptimizer::new(ctx, OptimConfig::default(), n)?;
        let ones = vec![1e-3f32; n];
        let p = GpuTensor::from_slice(ctx, &ones, &[n])?;
        let g = GpuTensor::from_slice(ctx, &ones, &[n])?;
        let m = GpuTensor::<f32>::zeros(ctx, &[n])?;
        let v = GpuTensor::<f32>::zeros(ctx, &[n])?;
        let mut rec = Recorder::new();
        opt.record(ctx, &mut rec, &p, &g, &m, &v)?;
        let bytes = 32 * n as u64;
        let (copy, _keep) = copy_recording(ctx, bytes)?;
        let reps = if quick { 5 } else { 10 };
        let t = time_recording(ctx, &rec, 2, reps)?;
        let tc = time_recording(ctx, &copy, 2, reps)?;
        out.push(Measurement::new(
            "optim",
            &format!("AdamW + grad-norm clip, {label} (3 dispatches)"),
            bytes as f64 / t.best_s() / 1e9,
            "GB/s",
            "vec4 copy of the same bytes",
            bytes as f64 / tc.best_s() / 1e9,
            &device,
            t.timer(),
        ));
    }
    Ok(out)
}
