//! Fisher-Flow batch kernels against their CPU references.

use approx::assert_abs_diff_eq;
use fisherflow::flow::kernels as fk;
use fisherflow::gpu::{testing::gpu, GpuTensor, Recorder};

/// A small deterministic generator for test inputs.
fn lcg(seed: &mut u64) -> f32 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*seed >> 40) as f32) / (1u64 << 24) as f32
}

#[test]
fn gather_onehot_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let mut s = 1;
    for &(n, l, k, b) in &[
        (1usize, 1usize, 2usize, 3usize),
        (37, 4, 20, 64),
        (100, 7, 5, 33),
    ] {
        let tokens: Vec<u32> = (0..n * l)
            .map(|_| (lcg(&mut s) * k as f32) as u32 % k as u32)
            .collect();
        let mut u: Vec<f32> = (0..b).map(|_| lcg(&mut s)).collect();
        u[0] = 0.0;
        u[b - 1] = 0.999_999_9;
        let tg = GpuTensor::from_slice(ctx, &tokens, &[n, l]).unwrap();
        let ug = GpuTensor::from_slice(ctx, &u, &[b]).unwrap();
        let out = GpuTensor::<f32>::zeros(ctx, &[b, l, k]).unwrap();
        let mut rec = Recorder::new();
        fk::gather_onehot(ctx, &mut rec, &tg, &ug, &out).unwrap();
        rec.run(ctx).unwrap();
        let got = out.to_vec(ctx).unwrap();
        assert_eq!(got, fk::gather_onehot_cpu(&tokens, n, l, k, &u));
        // Every row is one-hot.
        for r in got.chunks(k) {
            assert_eq!(r.iter().sum::<f32>(), 1.0);
        }
    }
}

#[test]
fn permute_and_argmax_match_reference() {
    let Some(ctx) = gpu() else { return };
    let (b, l, k) = (9, 3, 11);
    let mut s = 7;
    let x: Vec<f32> = (0..b * l * k).map(|_| lcg(&mut s)).collect();
    let perm: Vec<u32> = vec![3, 1, 4, 0, 8, 5, 2, 7, 6];
    let xg = GpuTensor::from_slice(ctx, &x, &[b, l, k]).unwrap();
    let pg = GpuTensor::from_slice(ctx, &perm, &[b]).unwrap();
    let out = GpuTensor::<f32>::zeros(ctx, &[b, l, k]).unwrap();
    let ids = GpuTensor::<u32>::zeros(ctx, &[b * l]).unwrap();
    let mut rec = Recorder::new();
    fk::permute_rows(ctx, &mut rec, &xg, &pg, &out).unwrap();
    fk::argmax(ctx, &mut rec, &out, &ids).unwrap();
    rec.run(ctx).unwrap();
    let got = out.to_vec(ctx).unwrap();
    let per = l * k;
    for bi in 0..b {
        let p = perm[bi] as usize;
        assert_eq!(&got[bi * per..(bi + 1) * per], &x[p * per..(p + 1) * per]);
    }
    assert_eq!(ids.to_vec(ctx).unwrap(), fk::argmax_cpu(&got, k));
    // Ties go to the lowest index.
    assert_eq!(fk::argmax_cpu(&[0.5, 0.5, 0.1], 3), vec![0]);
    // In place is refused.
    assert!(fk::permute_rows(ctx, &mut Recorder::new(), &xg, &pg, &xg).is_err());
}

#[test]
fn linear_baseline_kernels_match_reference() {
    let Some(ctx) = gpu() else { return };
    let (b, l, k) = (17, 4, 6);
    let mut s = 3;
    let simplex = |s: &mut u64| {
        let mut v: Vec<f32> = (0..b * l * k).map(|_| lcg(s) + 1e-3).collect();
        for r in v.chunks_mut(k) {
            let t: f32 = r.iter().sum();
            r.iter_mut().for_each(|a| *a /= t);
        }
        v
    };
    let x0 = simplex(&mut s);
    let x1 = simplex(&mut s);
    let t: Vec<f32> = (0..b).map(|i| i as f32 / (b - 1) as f32).collect();
    let g = |v: &[f32]| GpuTensor::from_slice(ctx, v, &[b, l, k]).unwrap();
    let (x0g, x1g) = (g(&x0), g(&x1));
    let tg = GpuTensor::from_slice(ctx, &t, &[b]).unwrap();
    let xt = GpuTensor::<f32>::zeros(ctx, &[b, l, k]).unwrap();
    let u = GpuTensor::<f32>::zeros(ctx, &[b, l, k]).unwrap();
    let mut rec = Recorder::new();
    fk::linear_interpolant(ctx, &mut rec, &x0g, &x1g, &tg, &xt, &u).unwrap();
    let stepped = GpuTensor::<f32>::zeros(ctx, &[b, l, k]).unwrap();
    fk::simplex_step(ctx, &mut rec, &xt, &u, 0.3, &stepped).unwrap();
    // Runge–Kutta stage combination: acc = 0.5 u + 2 acc.
    let acc = g(&x0);
    fk::axpby(ctx, &mut rec, 0.5, &u, 2.0, &acc).unwrap();
    rec.run(ctx).unwrap();
    let (mut want_xt, want_u) = fk::linear_interpolant_cpu(&x0, &x1, &t, l * k);
    let got_acc = acc.to_vec(ctx).unwrap();
    for i in 0..x0.len() {
        assert_abs_diff_eq!(got_acc[i], 0.5 * want_u[i] + 2.0 * x0[i], epsilon = 1e-6);
    }
    fk::simplex_step_cpu(&mut want_xt, &want_u, k, 0.3);
    let got = stepped.to_vec(ctx).unwrap();
    for (a, b) in got.iter().zip(&want_xt) {
        assert_abs_diff_eq!(a, b, epsilon = 1e-6);
    }
    for (a, b) in u.to_vec(ctx).unwrap().iter().zip(&want_u) {
        assert_abs_diff_eq!(a, b, epsilon = 1e-6);
    }
    for r in got.chunks(k) {
        assert_abs_diff_eq!(r.iter().sum::<f32>(), 1.0, epsilon = 1e-5);
        assert!(r.iter().all(|&a| a >= 0.0));
    }
}

#[test]
fn bad_shapes_are_errors() {
    let Some(ctx) = gpu() else { return };
    let x = GpuTensor::<f32>::zeros(ctx, &[2, 3, 4]).unwrap();
    let flat = GpuTensor::<f32>::zeros(ctx, &[24]).unwrap();
    let ids = GpuTensor::<u32>::zeros(ctx, &[5]).unwrap();
    let mut rec = Recorder::new();
    assert!(fk::argmax(ctx, &mut rec, &x, &ids).is_err());
    assert!(fk::argmax(ctx, &mut rec, &flat, &ids).is_err());
    let tokens = GpuTensor::<u32>::zeros(ctx, &[4, 2]).unwrap();
    let u = GpuTensor::<f32>::zeros(ctx, &[2]).unwrap();
    assert!(fk::gather_onehot(ctx, &mut rec, &tokens, &u, &x).is_err());
    let y = GpuTensor::<f32>::zeros(ctx, &[2, 3, 4]).unwrap();
    assert!(fk::simplex_step(ctx, &mut rec, &x, &x, f32::NAN, &y).is_err());
    assert!(fk::simplex_step(ctx, &mut rec, &x, &y, 0.1, &x).is_err());
    assert!(fk::axpby(ctx, &mut rec, 1.0, &x, 1.0, &x).is_err());
    assert_eq!(rec.dispatches(), 0);
}
