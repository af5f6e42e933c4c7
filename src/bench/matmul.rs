//! Matrix multiplication throughput: [`crate::kernels::linalg::gemm`] against the CPU
//! backend's threaded sgemm ([`crate::kernels::cpu::gemm`]) on the same shape in the same run,
//! and (where the adapter has `SHADER_F16`) the f16-storage gemm against the f32 one.

use crate::bench::{time_cpu, time_recording, Measurement};
use crate::error::Result;
use crate::gpu::{Element, GpuContext, GpuTensor, Recorder};
use crate::kernels::linalg::{gemm, Gemm, View};
use crate::kernels::Precision;

/// Deterministic inputs in [-1, 1) (a small LCG; quality is irrelevant here).
fn fill(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// The shapes measured: `(label, gemm)`. The toy model's layers with a batch of 512 (forward,
/// and the two backward products of the 576→512 layer), then square sizes.
fn shapes(quick: bool) -> Vec<(String, Gemm)> {
    let mut v: Vec<(String, Gemm)> = [(224, 512), (512, 512), (576, 512), (512, 224), (576, 80)]
        .into_iter()
        .map(|(k, n)| (format!("toy fwd m=512 k={k} n={n}"), Gemm::new(512, n, k)))
        .collect();
    v.push((
        "toy dX m=512 k=512 n=576 (b^T)".into(),
        Gemm::new(512, 576, 512).trans_b(true),
    ));
    v.push((
        "toy dW m=576 k=512 n=512 (a^T)".into(),
        Gemm::new(576, 512, 512).trans_a(true),
    ));
    v.push(("square 1024^3".into(), Gemm::new(1024, 1024, 1024)));
    if !quick {
        v.push(("square 4096^3".into(), Gemm::new(4096, 4096, 4096)));
    }
    v
}

/// Best-of-`reps` GFLOP/s of `g` on the GPU with inputs `a`, `b` stored in `g.precision`.
fn gpu_gflops(
    ctx: &GpuContext,
    g: &Gemm,
    a: &[f32],
    b: &[f32],
    reps: usize,
) -> Result<(f64, &'static str)> {
    match g.precision {
        Precision::F32 => time_gemm(ctx, g, a, b, reps),
        Precision::F16 => {
            let h = |v: &[f32]| {
                v.iter()
                    .map(|&x| half::f16::from_f32(x))
                    .collect::<Vec<_>>()
            };
            time_gemm(ctx, g, &h(a), &h(b), reps)
        }
    }
}

/// [`gpu_gflops`] for operands already in their storage type `T`.
fn time_gemm<T: Element>(
    ctx: &GpuContext,
    g: &Gemm,
    a: &[T],
    b: &[T],
    reps: usize,
) -> Result<(f64, &'static str)> {
    let flops = 2.0 * (g.m * g.n * g.k) as f64;
    let ta = GpuTensor::from_slice(ctx, a, &[a.len()])?;
    let tb = GpuTensor::from_slice(ctx, b, &[b.len()])?;
    let tc = GpuTensor::<T>::zeros(ctx, &[g.m, g.n])?;
    let mut rec = Recorder::new();
    let (va, vb, vc) = (View::of(&ta), View::of(&tb), View::of(&tc));
    gemm(ctx, &mut rec, g, va, vb, None, vc)?;
    let t = time_recording(ctx, &rec, 1, reps)?;
    Ok((flops / t.best_s() * 1e-9, t.timer()))
}

/// GFLOP/s of `gemm` for the toy-model shapes, 1024³ and (unless `quick`) 4096³, each with the
/// CPU sgemm of the same shape as its baseline; then, with `SHADER_F16`, the f16-storage gemm
/// of the largest toy shape and the square sizes against the f32 gemm of the same shape.
pub fn run(ctx: &GpuContext, quick: bool) -> Result<Vec<Measurement>> {
    let device = ctx.adapter_info().name.clone();
    let mut out = Vec::new();
    let mut halves = Vec::new();
    for (label, g) in shapes(quick) {
        let (m, n, k) = (g.m, g.n, g.k);
        let flops = 2.0 * (m * n * k) as f64;
        let big = flops > 1e10;
        let reps = if big {
            3
        } else if quick {
            5
        } else {
            10
        };
        let a = fill(m * k, 1);
        let b = fill(k * n, 2);
        let (gpu, timer) = gpu_gflops(ctx, &g, &a, &b, reps)?;
        if ctx.has_f16() && (label.contains("square") || label.contains("k=576 n=512")) {
            let (half, _) = gpu_gflops(ctx, &g.precision(Precision::F16), &a, &b, reps)?;
            halves.push(Measurement::new(
                "matmul",
                &format!("{label}, f16 storage"),
                half,
                "GFLOP/s",
                "f32 gemm, same shape",
                gpu,
                &device,
                timer,
            ));
        }

        // Row-major strides for op(a) [m, k] and op(b) [k, n].
        let (rsa, csa) = if g.trans_a {
            (1, m as isize)
        } else {
            (k as isize, 1)
        };
        let (rsb, csb) = if g.trans_b {
            (1, k as isize)
        } else {
            (n as isize, 1)
        };
        let mut c = vec![0f32; m * n];
        let cpu_s = time_cpu(reps, || {
            crate::kernels::cpu::gemm(m, k, n, &a, (rsa, csa), &b, (rsb, csb), 0.0, &mut c)
        });
        let cpu = flops / cpu_s * 1e-9;
        out.push(Measurement::new(
            "matmul",
            &label,
            gpu,
            "GFLOP/s",
            "CPU sgemm (threaded)",
            cpu,
            &device,
            timer,
        ));
    }
    out.extend(halves);
    Ok(out)
}
