//! Bandwidth of the sphere kernels: bytes read + written per second, as a ratio against the vec4
//! copy of the same number of bytes measured in the same run.

use crate::bench::{time_recording, Measurement};
use crate::error::Result;
use crate::gpu::{GpuContext, GpuTensor, Recorder};
use crate::kernels::{sphere, util};

const WARMUP: usize = 2;

/// Deterministic points of the positive orthant (rows of length `k`), cheap to generate.
fn orthant_points(rows: usize, k: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(rows * k);
    let mut row = vec![0f32; k];
    for _ in 0..rows {
        let mut n2 = 0.0f32;
        for v in row.iter_mut() {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            *v = ((s >> 40) as f32 / (1u64 << 24) as f32) + 1e-3;
            n2 += *v * *v;
        }
        let inv = 1.0 / n2.sqrt();
        out.extend(row.iter().map(|v| v * inv));
    }
    out
}

/// Time each sphere kernel for K in {4, 20, 160, 4096} over about 16 Mi floats per tensor
/// (`quick`: 256 Ki) and report GB/s against the vec4 copy of the same bytes.
pub fn run(ctx: &GpuContext, quick: bool) -> Result<Vec<Measurement>> {
    let n_target: usize = if quick { 1 << 18 } else { 1 << 24 };
    let reps = if quick { 3 } else { 5 };
    let device = ctx.describe();
    let mut out = Vec::new();
    for &k in &[4usize, 20, 160, 4096] {
        let l = 4usize;
        let b = (n_target / (l * k)).max(1);
        let rows = b * l;
        let n = rows * k;
        let shape = [b, l, k];
        let x0 = GpuTensor::from_slice(ctx, &orthant_points(rows, k, 1), &shape)?;
        let x1 = GpuTensor::from_slice(ctx, &orthant_points(rows, k, 2), &shape)?;
        let o1 = GpuTensor::zeros(ctx, &shape)?;
        let o2 = GpuTensor::zeros(ctx, &shape)?;
        let dist = GpuTensor::zeros(ctx, &[b, l])?;
        let tv: Vec<f32> = (0..b).map(|i| (i as f32 + 0.5) / b as f32).collect();
        let t = sphere::times_tensor(ctx, &tv)?;
        let f = 4 * n as u64; // bytes of one [B, L, K] tensor
        let t_bytes = 4 * b as u64;
        type Launch<'a> = Box<dyn Fn(&mut Recorder) -> Result<()> + 'a>;
        let cases: Vec<(&str, u64, Launch)> = vec![
            (
                "to_sphere",
                2 * f,
                Box::new(|r| sphere::to_sphere(ctx, r, &x0, &o1)),
            ),
            (
                "exp_map",
                3 * f,
                Box::new(|r| sphere::exp_map(ctx, r, &x0, &x1, &o1)),
            ),
            (
                "log_map",
                3 * f,
                Box::new(|r| sphere::log_map(ctx, r, &x0, &x1, &o1)),
            ),
            (
                "proj_tangent",
                3 * f,
                Box::new(|r| sphere::proj_tangent(ctx, r, &x0, &x1, &o1)),
            ),
            (
                "geodesic_distance",
                2 * f + 4 * rows as u64,
                Box::new(|r| sphere::geodesic_distance(ctx, r, &x0, &x1, &dist)),
            ),
            (
                "slerp",
                3 * f + t_bytes,
                Box::new(|r| sphere::slerp(ctx, r, &x0, &x1, &t, &o1)),
            ),
            (
                "interpolant_target",
                4 * f + t_bytes,
                Box::new(|r| sphere::interpolant_target(ctx, r, &x0, &x1, &t, &o1, &o2)),
            ),
            (
                "euler_step",
                3 * f,
                Box::new(|r| sphere::euler_step(ctx, r, &x0, &x1, 0.01, &o1)),
            ),
        ];
        for (name, bytes, launch) in cases {
            let mut rec = Recorder::new();
            launch(&mut rec)?;
            let (copy, _keep) = copy_recording(ctx, bytes)?;
            // Kernel and copy timed alternately, so both see the same machine state.
            time_recording(ctx, &rec, WARMUP, 1)?;
            time_recording(ctx, &copy, WARMUP, 1)?;
            let (mut tk, mut tc) = (Vec::new(), Vec::new());
            let mut timer = "";
            for _ in 0..reps {
                let t = time_recording(ctx, &rec, 0, 1)?;
                timer = t.timer();
                tk.push(t.best_s());
                tc.push(time_recording(ctx, &copy, 0, 1)?.best_s());
            }
            out.push(Measurement::new(
                "sphere",
                &format!("{name} K={k} rows={rows}"),
                bytes as f64 / median(tk) / 1e9,
                "GB/s",
                "vec4 copy of the same bytes",
                bytes as f64 / median(tc) / 1e9,
                &device,
                timer,
            ));
        }
    }
    Ok(out)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// A recording of the vec4 copy moving `bytes` bytes in total (half read, half written), split
/// into copies that each fit one storage binding, and the tensors it uses.
pub(crate) fn copy_recording(ctx: &GpuContext, bytes: u64) -> Result<(Recorder, Vec<GpuTensor>)> {
    let lim = ctx.limits();
    let max = lim.max_storage_buffer_binding_size.min(lim.max_buffer_size);
    let mut floats = (bytes / 8).div_ceil(4) * 4; // per side
    let mut rec = Recorder::new();
    let mut keep = Vec::new();
    while floats > 0 {
        let n = floats.min(max / 4 / 4 * 4);
        let src = GpuTensor::<f32>::zeros(ctx, &[n as usize])?;
        let dst = GpuTensor::<f32>::zeros(ctx, &[n as usize])?;
        util::copy(ctx, &mut rec, &src, &dst)?;
        keep.push(src);
        keep.push(dst);
        floats -= n;
    }
    Ok((rec, keep))
}
