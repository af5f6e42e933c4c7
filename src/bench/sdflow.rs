//! Score-difference kernel throughput: the tiled online-softmax kernel against the naive
//! two-pass version that materialises the N×M logits, same sizes, same run.

use crate::bench::{time_recording, Measurement};
use crate::error::Result;
use crate::gpu::{GpuContext, GpuTensor, Recorder};
use crate::sdflow::{sigma_state, NaiveScoreDiff, Rng, ScoreDiff};

/// Pairs per second (query × target and query × source pairs) of both kernels at a few sizes.
pub fn run(ctx: &GpuContext, quick: bool) -> Result<Vec<Measurement>> {
    let sizes: &[(usize, usize)] = if quick {
        &[(1024, 2), (1024, 16)]
    } else {
        &[(1024, 2), (4096, 2), (1024, 16), (2048, 16)]
    };
    let reps = if quick { 3 } else { 5 };
    let mut out = Vec::new();
    for &(n, d) in sizes {
        let mut r = Rng::new(n as u64);
        let q = r.gaussian_points(n, d, &[0.0], 1.0);
        let y = r.gaussian_points(n, d, &[1.0], 0.5);
        let x = r.gaussian_points(n, d, &[0.0], 1.0);
        let tq = GpuTensor::from_slice(ctx, &q, &[n, d])?;
        let ty = GpuTensor::from_slice(ctx, &y, &[n, d])?;
        let tx = GpuTensor::from_slice(ctx, &x, &[n, d])?;
        let state = sigma_state(ctx, 0.5)?;
        let o1 = GpuTensor::zeros(ctx, &[n, d])?;
        let o2 = GpuTensor::zeros(ctx, &[n, d])?;
        let tiled = ScoreDiff::new(ctx, &tq, &ty, &tx, &state, &o1, false)?;
        let naive = NaiveScoreDiff::new(ctx, &tq, &ty, &tx, &state, &o2, false)?;
        let mut rt = Recorder::new();
        tiled.record(&mut rt);
        let mut rn = Recorder::new();
        naive.record(&mut rn);
        let tt = time_recording(ctx, &rt, 1, reps)?;
        let tn = time_recording(ctx, &rn, 1, reps)?;
        let pairs = (2 * n * n) as f64;
        let timer = if tt.gpu_s.is_some() && tn.gpu_s.is_some() {
            "gpu-timestamps"
        } else {
            "wall-clock"
        };
        let (st, sn) = if timer == "gpu-timestamps" {
            (tt.best_s(), tn.best_s())
        } else {
            (tt.wall_s, tn.wall_s)
        };
        out.push(Measurement::new(
            "sdflow",
            &format!("score_diff tiled N=M={n} d={d}"),
            pairs / st * 1e-6,
            "Mpairs/s",
            "naive two-pass (N×M logits)",
            pairs / sn * 1e-6,
            &ctx.describe(),
            timer,
        ));
    }
    Ok(out)
}
