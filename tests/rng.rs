//! Philox4x32-10: known-answer vectors, GPU vs CPU bit-exactness, statistics of every kernel.

use fisherflow::gpu::{testing::gpu, GpuContext, GpuTensor, Recorder, Tuning};
use fisherflow::kernels::rng::{self, cpu, philox4x32_10, GpuRng, PhiloxStream};

#[test]
fn philox_known_answer_vectors() {
    // Random123 kat_vectors for philox4x32 with 10 rounds.
    assert_eq!(
        philox4x32_10([0; 4], [0; 2]),
        [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
    );
    assert_eq!(
        philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
        [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
    );
    assert_eq!(
        philox4x32_10(
            [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            [0xa4093822, 0x299f31d0]
        ),
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
    );
}

#[test]
fn cpu_stream_is_reproducible_and_unbiased() {
    let mut a = PhiloxStream::new(7, 3, 1);
    let mut b = PhiloxStream::new(7, 3, 1);
    let xs: Vec<u32> = (0..10).map(|_| a.next_u32()).collect();
    assert_eq!(xs, (0..10).map(|_| b.next_u32()).collect::<Vec<_>>());
    assert_eq!(xs, cpu::words(7, 3, 1, 10));
    let mut c = PhiloxStream::new(7, 4, 1);
    assert_ne!(xs[0], c.next_u32());
    let mut r = PhiloxStream::new(1, 0, 0);
    let mut counts = [0usize; 3];
    for _ in 0..30_000 {
        counts[r.below(3) as usize] += 1;
    }
    assert!(
        counts.iter().all(|&c| (9_500..10_500).contains(&c)),
        "{counts:?}"
    );
}

fn run_fill(
    ctx: &GpuContext,
    f: impl Fn(&mut Recorder, &GpuRng, &GpuTensor<f32>),
    seed: u64,
    counter: u64,
    shape: &[usize],
) -> Vec<f32> {
    let rng = GpuRng::new(ctx, seed, counter);
    let out = GpuTensor::<f32>::zeros(ctx, shape).unwrap();
    let mut rec = Recorder::new();
    f(&mut rec, &rng, &out);
    rec.run(ctx).unwrap();
    out.to_vec(ctx).unwrap()
}

#[test]
fn gpu_uniform_is_bit_exact_and_counter_driven() {
    let Some(ctx) = gpu() else { return };
    for (seed, counter, stream, n) in [
        (0u64, 0u64, 0u32, 1usize),
        (0x0123_4567_89ab_cdef, u64::MAX, 7, 1023),
        (u64::MAX, 1 << 40, u32::MAX, 4096 + 3),
    ] {
        let g = run_fill(
            ctx,
            |rec, rng, out| rng::uniform(ctx, rec, rng, stream, out).unwrap(),
            seed,
            counter,
            &[n],
        );
        let c = cpu::uniform(seed, counter, stream, n);
        assert_eq!(g, c, "seed {seed:#x} counter {counter:#x}");
        assert!(g.iter().all(|&u| (0.0..1.0).contains(&u)));
    }
    // Writing a new counter and replaying the same recording draws the next numbers.
    let mut rng = GpuRng::new(ctx, 11, 100);
    let out = GpuTensor::<f32>::zeros(ctx, &[64]).unwrap();
    let mut rec = Recorder::new();
    rng::times(ctx, &mut rec, &rng, 2, &out).unwrap();
    rec.run(ctx).unwrap();
    assert_eq!(out.to_vec(ctx).unwrap(), cpu::uniform(11, 100, 2, 64));
    rng.step(ctx);
    rec.run(ctx).unwrap();
    assert_eq!(out.to_vec(ctx).unwrap(), cpu::uniform(11, 101, 2, 64));
    // Resuming from (seed, counter) reproduces the stream.
    rng.set_counter(ctx, 100);
    rec.run(ctx).unwrap();
    assert_eq!(out.to_vec(ctx).unwrap(), cpu::uniform(11, 100, 2, 64));
}

fn mean_var(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, var)
}

#[test]
fn uniform_and_normal_statistics() {
    let Some(ctx) = gpu() else { return };
    let n = 1 << 18;
    let u = run_fill(
        ctx,
        |rec, rng, out| rng::uniform(ctx, rec, rng, 0, out).unwrap(),
        5,
        9,
        &[n],
    );
    let (m, v) = mean_var(&u);
    // Standard errors: 1/sqrt(12 n) ≈ 5.6e-4 for the mean.
    assert!((m - 0.5).abs() < 3e-3, "mean {m}");
    assert!((v - 1.0 / 12.0).abs() < 2e-3, "var {v}");
    let z = run_fill(
        ctx,
        |rec, rng, out| rng::normal(ctx, rec, rng, 1, out).unwrap(),
        5,
        9,
        &[n],
    );
    let (m, v) = mean_var(&z);
    assert!(m.abs() < 1e-2, "mean {m}");
    assert!((v - 1.0).abs() < 2e-2, "var {v}");
    let kurt = z.iter().map(|&x| (x as f64).powi(4)).sum::<f64>() / n as f64;
    assert!((kurt - 3.0).abs() < 0.1, "E z^4 {kurt}");
    // GPU vs CPU reference (transcendentals differ by a few ulps).
    let c = cpu::normal(5, 9, 1, n);
    for (i, (&a, &b)) in z.iter().zip(&c).enumerate() {
        assert!(
            (a - b).abs() <= 2e-5 * (1.0 + b.abs()),
            "normal {i}: gpu {a} cpu {b}"
        );
    }
}

/// Invocations per row the row kernels are run with: the adapter's choice (one on lavapipe),
/// the GPU choice from K (cross-lane reductions), and fixed counts.
const LANES: [Option<u32>; 4] = [None, Some(0), Some(4), Some(256)];

fn each_lanes(ctx: &GpuContext, mut f: impl FnMut(&GpuContext)) {
    for lanes in LANES {
        let tuned = ctx.tuned(Tuning {
            row_lanes: lanes,
            ..Default::default()
        });
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&tuned)));
        if let Err(e) = r {
            eprintln!("failed with lanes {lanes:?}");
            std::panic::resume_unwind(e);
        }
    }
}

#[test]
fn sphere_prior_rows_are_on_the_positive_orthant() {
    let Some(ctx) = gpu() else { return };
    each_lanes(ctx, |ctx| {
        sphere_prior_matches_cpu(ctx);
        sphere_prior_tail(ctx);
    });
}

fn sphere_prior_tail(ctx: &fisherflow::GpuContext) {
    // E[x_k²] = 1/K for every coordinate.
    let (rows, k) = (20_000, 5);
    let x = run_fill(
        ctx,
        |rec, rng, out| rng::sphere_prior(ctx, rec, rng, 0, out).unwrap(),
        9,
        0,
        &[rows, k],
    );
    for c in 0..k {
        let m: f64 = (0..rows)
            .map(|r| (x[r * k + c] as f64).powi(2))
            .sum::<f64>()
            / rows as f64;
        // Var(x_k²) for Beta(1/2, 2) is about 0.0457; sd of the mean ≈ 1.5e-3.
        assert!((m - 0.2).abs() < 8e-3, "coordinate {c}: {m}");
    }
    // A [B, L, K] tensor is treated as B·L rows.
    let x = run_fill(
        ctx,
        |rec, rng, out| rng::sphere_prior(ctx, rec, rng, 0, out).unwrap(),
        9,
        0,
        &[8, 4, 20],
    );
    assert_eq!(
        x,
        run_fill(
            ctx,
            |rec, rng, out| rng::sphere_prior(ctx, rec, rng, 0, out).unwrap(),
            9,
            0,
            &[32, 20]
        )
    );
}

fn sphere_prior_matches_cpu(ctx: &fisherflow::GpuContext) {
    for &(rows, k) in &[(3000usize, 5usize), (40, 300), (4, 4096), (2, 5000), (7, 1)] {
        let x = run_fill(
            ctx,
            |rec, rng, out| rng::sphere_prior(ctx, rec, rng, 3, out).unwrap(),
            42,
            1,
            &[rows, k],
        );
        let c = cpu::sphere_prior(42, 1, 3, rows, k);
        for r in 0..rows {
            let row = &x[r * k..(r + 1) * k];
            assert!(row.iter().all(|&v| v >= 0.0));
            let nrm: f64 = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>();
            assert!((nrm - 1.0).abs() < 1e-5, "row {r} norm² {nrm}");
        }
        for (i, (&a, &b)) in x.iter().zip(&c).enumerate() {
            assert!(
                (a - b).abs() <= 2e-5 * (1.0 + b.abs()),
                "K={k} elt {i}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn dirichlet1_rows_are_on_the_simplex() {
    let Some(ctx) = gpu() else { return };
    each_lanes(ctx, dirichlet1_matches_cpu);
}

fn dirichlet1_matches_cpu(ctx: &fisherflow::GpuContext) {
    let (rows, k) = (10_000, 4);
    let p = run_fill(
        ctx,
        |rec, rng, out| rng::dirichlet1(ctx, rec, rng, 4, out).unwrap(),
        3,
        2,
        &[rows, k],
    );
    let c = cpu::dirichlet1(3, 2, 4, rows, k);
    for r in 0..rows {
        let s: f64 = p[r * k..(r + 1) * k].iter().map(|&v| v as f64).sum();
        assert!((s - 1.0).abs() < 1e-5);
    }
    for (&a, &b) in p.iter().zip(&c) {
        assert!(
            a >= 0.0 && (a - b).abs() <= 2e-5 * (1.0 + b.abs()),
            "{a} vs {b}"
        );
    }
    // Dirichlet(1) on K=4: E p = 1/4, Var p = (K-1)/(K²(K+1)) = 3/80.
    let col: Vec<f32> = (0..rows).map(|r| p[r * k]).collect();
    let (m, v) = mean_var(&col);
    assert!(
        (m - 0.25).abs() < 6e-3 && (v - 3.0 / 80.0).abs() < 3e-3,
        "{m} {v}"
    );
    // Large rows reduce correctly too.
    let p = run_fill(
        ctx,
        |rec, rng, out| rng::dirichlet1(ctx, rec, rng, 4, out).unwrap(),
        3,
        2,
        &[3, 4100],
    );
    for r in 0..3 {
        let s: f64 = p[r * 4100..(r + 1) * 4100].iter().map(|&v| v as f64).sum();
        assert!((s - 1.0).abs() < 1e-4);
    }
}

#[test]
fn bad_outputs_are_errors() {
    let Some(ctx) = gpu() else { return };
    let rng = GpuRng::new(ctx, 0, 0);
    let mut rec = Recorder::new();
    let empty = GpuTensor::<f32>::zeros(ctx, &[0]).unwrap();
    assert!(rng::uniform(ctx, &mut rec, &rng, 0, &empty).is_err());
    assert!(rng::sphere_prior(ctx, &mut rec, &rng, 0, &empty).is_err());
    assert_eq!(rec.dispatches(), 0);
}
