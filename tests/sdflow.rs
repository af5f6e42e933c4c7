//! Score-difference flow: kernel vs f64 reference, Gaussian oracle, leave-one-out, metrics,
//! toy targets, point files, and a particle flow reaching the ring of 8 Gaussians.

use fisherflow::gpu::testing::gpu;
use fisherflow::gpu::{GpuContext, GpuTensor};
use fisherflow::sdflow::{self, plot, ParticleConfig, ParticleFlow, Rng};
use fisherflow::Error;

fn upload(ctx: &GpuContext, v: &[f32], d: usize) -> GpuTensor {
    GpuTensor::from_slice(ctx, v, &[v.len() / d, d]).unwrap()
}

/// Largest |gpu − cpu| relative to 1 + max |cpu|.
fn rel_err(gpu: &[f32], cpu: &[f64]) -> f64 {
    assert_eq!(gpu.len(), cpu.len());
    let scale = 1.0 + cpu.iter().fold(0.0f64, |a, &b| a.max(b.abs()));
    gpu.iter()
        .zip(cpu)
        .map(|(&g, &c)| (g as f64 - c).abs())
        .fold(0.0, f64::max)
        / scale
}

#[test]
fn tiled_and_naive_kernels_match_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let mut r = Rng::new(1);
    // (n_queries, n_target, n_source, d, σ): ragged sizes around the 64-point tiles and the
    // 32-coordinate chunks, d from 1 to 3 chunks.
    let cases = [
        (1, 1, 1, 1, 0.5f32),
        (37, 53, 71, 2, 0.3),
        (130, 65, 129, 3, 1.0),
        (64, 200, 17, 33, 3.0),
        (20, 70, 90, 70, 5.0),
        (3, 70, 66, sdflow::MAX_DIM, 16.0),
        (5, 6000, 3000, 2, 0.4),
    ];
    for (nq, nt, ns, d, sigma) in cases {
        let q = r.gaussian_points(nq, d, &[0.2], 1.0);
        let y = r.gaussian_points(nt, d, &[0.5], 0.8);
        let x = r.gaussian_points(ns, d, &[-0.3], 1.1);
        let (tq, ty, tx) = (upload(ctx, &q, d), upload(ctx, &y, d), upload(ctx, &x, d));
        let cpu = sdflow::score_difference_cpu(&q, &y, &x, d, sigma as f64, false).unwrap();
        let g = sdflow::score_difference(ctx, &tq, &ty, &tx, sigma, false)
            .unwrap()
            .to_vec(ctx)
            .unwrap();
        let e = rel_err(&g, &cpu);
        assert!(e < 1e-4, "tiled {nq}x{nt}x{ns} d={d}: rel err {e}");
        let gn = sdflow::score_difference_naive(ctx, &tq, &ty, &tx, sigma, false)
            .unwrap()
            .to_vec(ctx)
            .unwrap();
        let e = rel_err(&gn, &cpu);
        assert!(e < 1e-4, "naive {nq}x{nt}x{ns} d={d}: rel err {e}");
    }
}

#[test]
fn far_queries_do_not_underflow() {
    // Queries far from every sample have logits around −10⁴; the online max keeps the weights
    // finite and the result equals the reference.
    let Some(ctx) = gpu() else { return };
    let mut r = Rng::new(2);
    let d = 2;
    let q = r.gaussian_points(10, d, &[30.0, -30.0], 1.0);
    let y = r.gaussian_points(100, d, &[0.0], 1.0);
    let x = r.gaussian_points(90, d, &[1.0], 1.0);
    let cpu = sdflow::score_difference_cpu(&q, &y, &x, d, 0.3, false).unwrap();
    let (tq, ty, tx) = (upload(ctx, &q, d), upload(ctx, &y, d), upload(ctx, &x, d));
    let g = sdflow::score_difference(ctx, &tq, &ty, &tx, 0.3, false)
        .unwrap()
        .to_vec(ctx)
        .unwrap();
    assert!(g.iter().all(|v| v.is_finite()));
    assert!(rel_err(&g, &cpu) < 1e-4, "{}", rel_err(&g, &cpu));
}

#[test]
fn gaussian_oracle_is_reproduced_from_samples() {
    // p = N(μp, sp² I), q = N(μq, sq² I): v(x) = −(x−μp)/(sp²+σ²) + (x−μq)/(sq²+σ²).
    // The sample estimate is a self-normalised weighted mean of 60 000 samples per set. The
    // posterior of y given x has std sp·σ/√(sp²+σ²) ≈ 0.53 (p) / 0.61 (q), and for queries within
    // about one std of the means the effective sample size stays above ~20 000, so each mean has
    // a standard error ≲ 0.005 and v (divided by σ² = 0.49) ≲ 0.01 per term. The tolerance
    // 0.06 is > 4 standard errors of the difference.
    let Some(ctx) = gpu() else { return };
    let d = 2;
    let (mp, sp) = ([1.0, -0.5], 0.8);
    let (mq, sq) = ([-0.5, 0.5], 1.2);
    let sigma = 0.7f64;
    let mut r = Rng::new(3);
    let n = 60_000;
    let y = r.gaussian_points(n, d, &mp, sp);
    let x = r.gaussian_points(n, d, &mq, sq);
    let q = r.gaussian_points(24, d, &[0.25, 0.0], 0.6);
    let (tq, ty, tx) = (upload(ctx, &q, d), upload(ctx, &y, d), upload(ctx, &x, d));
    let g = sdflow::score_difference(ctx, &tq, &ty, &tx, sigma as f32, false)
        .unwrap()
        .to_vec(ctx)
        .unwrap();
    let mut worst = 0.0f64;
    for i in 0..24 {
        for k in 0..d {
            let xk = q[i * d + k] as f64;
            let oracle = -(xk - mp[k]) / (sp * sp + sigma * sigma)
                + (xk - mq[k]) / (sq * sq + sigma * sigma);
            worst = worst.max((g[i * d + k] as f64 - oracle).abs());
        }
    }
    assert!(worst < 0.06, "max |v − oracle| = {worst}");
}

#[test]
fn identical_sets_give_zero() {
    let Some(ctx) = gpu() else { return };
    let mut r = Rng::new(4);
    let d = 5;
    let y = r.gaussian_points(300, d, &[0.0], 1.0);
    let q = r.gaussian_points(100, d, &[0.0], 1.5);
    let (tq, ty) = (upload(ctx, &q, d), upload(ctx, &y, d));
    let ty2 = upload(ctx, &y, d);
    let g = sdflow::score_difference(ctx, &tq, &ty, &ty2, 0.4, false)
        .unwrap()
        .to_vec(ctx)
        .unwrap();
    let m = g.iter().fold(0.0f32, |a, &b| a.max(b.abs()));
    assert!(m < 1e-5, "max |v| = {m}");
}

#[test]
fn leave_one_out_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let mut r = Rng::new(5);
    for (n, m, d) in [(2, 3, 1), (77, 130, 2), (129, 40, 35)] {
        let x = r.gaussian_points(n, d, &[0.0], 1.0);
        let y = r.gaussian_points(m, d, &[1.0], 0.5);
        let (tx, ty) = (upload(ctx, &x, d), upload(ctx, &y, d));
        let sigma = 0.5 * (d as f32).sqrt();
        let cpu = sdflow::score_difference_cpu(&x, &y, &x, d, sigma as f64, true).unwrap();
        let cpu_all = sdflow::score_difference_cpu(&x, &y, &x, d, sigma as f64, false).unwrap();
        let g = sdflow::score_difference(ctx, &tx, &ty, &tx, sigma, true)
            .unwrap()
            .to_vec(ctx)
            .unwrap();
        assert!(
            rel_err(&g, &cpu) < 1e-4,
            "loo n={n} d={d}: {}",
            rel_err(&g, &cpu)
        );
        // Leaving the particle out changes the answer (so the test can fail).
        assert!(rel_err(&g, &cpu_all) > 1e-3, "loo had no effect");
        let gn = sdflow::score_difference_naive(ctx, &tx, &ty, &tx, sigma, true)
            .unwrap()
            .to_vec(ctx)
            .unwrap();
        assert!(
            rel_err(&gn, &cpu) < 1e-4,
            "naive loo: {}",
            rel_err(&gn, &cpu)
        );
    }
    // Leave-one-out needs queries = source particles.
    let x = upload(ctx, &[0.0, 1.0, 2.0], 1);
    let y = upload(ctx, &[0.0, 1.0], 1);
    assert!(matches!(
        sdflow::score_difference(ctx, &y, &x, &x, 1.0, true),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn bad_inputs_are_errors() {
    let Some(ctx) = gpu() else { return };
    let a = upload(ctx, &[0.0; 6], 2);
    let b = upload(ctx, &[0.0; 6], 3);
    assert!(matches!(
        sdflow::score_difference(ctx, &a, &a, &b, 1.0, false),
        Err(Error::Shape(_))
    ));
    for s in [0.0, -1.0, f32::NAN] {
        assert!(matches!(
            sdflow::score_difference(ctx, &a, &a, &a, s, false),
            Err(Error::InvalidArgument(_))
        ));
    }
    let wide = GpuTensor::<f32>::zeros(ctx, &[2, sdflow::MAX_DIM + 1]).unwrap();
    assert!(matches!(
        sdflow::score_difference(ctx, &wide, &wide, &wide, 1.0, false),
        Err(Error::Shape(_))
    ));
    let cfg = ParticleConfig {
        sigma_min: 3.0,
        ..Default::default()
    };
    assert!(ParticleFlow::new(ctx, &a, &a, cfg).is_err());
}

#[test]
fn metrics_match_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let mut r = Rng::new(6);
    for (n, m, d) in [(2, 2, 1), (100, 70, 2), (65, 130, 40), (10, 2000, 40)] {
        let x = r.gaussian_points(n, d, &[0.0], 1.0);
        let y = r.gaussian_points(m, d, &[0.7], 1.3);
        let h = sdflow::median_bandwidth(&x, &y, d).unwrap();
        let (tx, ty) = (upload(ctx, &x, d), upload(ctx, &y, d));
        let g = sdflow::mmd2(ctx, &tx, &ty, h).unwrap();
        let c = sdflow::mmd2_cpu(&x, &y, d, h).unwrap();
        assert!((g - c).abs() < 1e-5 + 1e-4 * c.abs(), "mmd2 {g} vs {c}");
        let g = sdflow::energy_distance(ctx, &tx, &ty).unwrap();
        let c = sdflow::energy_distance_cpu(&x, &y, d).unwrap();
        assert!((g - c).abs() < 1e-4 * (1.0 + c.abs()), "energy {g} vs {c}");
    }
    // Equal distributions give ~0, different ones clearly more.
    let x = r.gaussian_points(400, 2, &[0.0], 1.0);
    let y = r.gaussian_points(400, 2, &[0.0], 1.0);
    let z = r.gaussian_points(400, 2, &[1.0], 1.0);
    let same = sdflow::mmd2_cpu(&x, &y, 2, 1.0).unwrap();
    let diff = sdflow::mmd2_cpu(&x, &z, 2, 1.0).unwrap();
    assert!(same.abs() < 0.01 && diff > 0.05, "{same} {diff}");
}

#[test]
fn gpu_noise_is_standard_normal() {
    let Some(ctx) = gpu() else { return };
    let d = 2;
    let init = vec![0.0f32; 4096 * d];
    let target = upload(ctx, &[0.0, 0.0, 1.0, 1.0], d);
    let cfg = ParticleConfig {
        steps: 1,
        sigma_max: 1.5,
        sigma_min: 1.5,
        progress_every: 1,
        seed: 9,
        ..Default::default()
    };
    let mut flow = ParticleFlow::new(ctx, &target, &upload(ctx, &init, d), cfg).unwrap();
    flow.run(ctx, |_, _| Ok(())).unwrap();
    let e: Vec<f64> = flow
        .noisy()
        .to_vec(ctx)
        .unwrap()
        .iter()
        .map(|&v| v as f64 / 1.5)
        .collect();
    let n = e.len() as f64;
    let mean = e.iter().sum::<f64>() / n;
    let var = e.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let kurt = e.iter().map(|v| (v - mean).powi(4)).sum::<f64>() / n / (var * var);
    // 8192 draws: standard errors 0.011 (mean), 0.016 (variance), 0.05 (kurtosis).
    assert!(
        mean.abs() < 0.05 && (var - 1.0).abs() < 0.07 && (kurt - 3.0).abs() < 0.3,
        "mean {mean} var {var} kurtosis {kurt}"
    );
}

#[test]
fn particles_reach_ring_of_eight() {
    let Some(ctx) = gpu() else { return };
    let (n, d) = (512, 2);
    let target = sdflow::toy_target("ring8", n, 11).unwrap();
    let init = Rng::new(12).gaussian_points(n, d, &[0.0], 1.0);
    let h = 0.5; // bandwidth of the MMD kernel (about the distance between neighbouring modes / 3)
    let mmd0 = sdflow::mmd2_cpu(&init, &target, d, h).unwrap();
    let cfg = ParticleConfig {
        steps: 150,
        sigma_max: 2.0,
        sigma_min: 0.05,
        eta: 0.5,
        seed: 0,
        leave_one_out: false,
        progress_every: 50,
    };
    let (tt, ti) = (upload(ctx, &target, d), upload(ctx, &init, d));
    let mut flow = ParticleFlow::new(ctx, &tt, &ti, cfg).unwrap();
    let mut reports = Vec::new();
    flow.run(ctx, |p, x| {
        assert_eq!(x.shape(), &[n, d]);
        reports.push(p.step);
        Ok(())
    })
    .unwrap();
    assert_eq!(reports, vec![50, 100, 150]);
    let out = flow.particles().to_vec(ctx).unwrap();
    let mmd = sdflow::mmd2(ctx, flow.particles(), &tt, h).unwrap();
    let mmd_cpu = sdflow::mmd2_cpu(&out, &target, d, h).unwrap();
    assert!((mmd - mmd_cpu).abs() < 1e-4);
    // A fresh target sample of the same size sets the noise floor of the estimate.
    let fresh = sdflow::toy_target("ring8", n, 99).unwrap();
    let floor = sdflow::mmd2_cpu(&fresh, &target, d, h).unwrap();
    // The particles settle on the fitted samples; against a held-out sample they must still
    // match the ring.
    let held_out = sdflow::mmd2_cpu(&out, &fresh, d, h).unwrap();
    eprintln!(
        "ring8: MMD² initial {mmd0:.4}, final {mmd:.5}, held-out {held_out:.5}, two target samples {floor:.5}"
    );
    assert!(held_out < 0.01, "held-out MMD² {held_out}");
    assert!(mmd.abs() < 0.01, "final MMD² {mmd}");
    assert!(mmd < mmd0 / 20.0, "MMD² {mmd0} -> {mmd}");
    // Every particle ends near the ring.
    let far = out
        .chunks(2)
        .filter(|p| ((p[0] * p[0] + p[1] * p[1]).sqrt() - 2.0).abs() > 0.5)
        .count();
    assert!(far < n / 50, "{far} particles off the ring");
    let svg = plot::scatter_svg(&target, &out, d, "ring8").unwrap();
    // Every point of both sets, and one legend dot for each set.
    assert!(svg.starts_with("<svg") && svg.matches("<circle").count() == 2 * n + 2);
}

#[test]
fn toy_targets_are_seeded_and_shaped() {
    for name in sdflow::TOY_TARGETS {
        let a = sdflow::toy_target(name, 1000, 1).unwrap();
        let b = sdflow::toy_target(name, 1000, 1).unwrap();
        let c = sdflow::toy_target(name, 1000, 2).unwrap();
        assert_eq!(a.len(), 2000);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.iter().all(|v| v.is_finite() && v.abs() < 4.0), "{name}");
    }
    let ring = sdflow::toy_target("ring8", 1000, 3).unwrap();
    assert!(ring
        .chunks(2)
        .all(|p| ((p[0] * p[0] + p[1] * p[1]).sqrt() - 2.0).abs() < 0.6));
    let cb = sdflow::toy_target("checkerboard", 1000, 3).unwrap();
    assert!(cb
        .chunks(2)
        .all(|p| ((p[0] + 2.0).floor() as i32 + (p[1] + 2.0).floor() as i32) % 2 == 0));
    assert!(sdflow::toy_target("spiral", 10, 0).is_err());
}

#[test]
fn point_files_parse_and_errors_name_the_line() {
    let (v, d) = sdflow::parse_points("# header\n1 2 3\n4,5,6\n\n 7, 8 ,9 \n", "pts").unwrap();
    assert_eq!(d, 3);
    assert_eq!(v, vec![1., 2., 3., 4., 5., 6., 7., 8., 9.]);
    let e = sdflow::parse_points("1 2\n3\n", "pts")
        .unwrap_err()
        .to_string();
    assert!(e.contains("pts:2"), "{e}");
    let e = sdflow::parse_points("1 2\n3 x\n", "pts")
        .unwrap_err()
        .to_string();
    assert!(e.contains("pts:2") && e.contains("\"x\""), "{e}");
    let e = sdflow::parse_points("1 2\n , \n", "pts")
        .unwrap_err()
        .to_string();
    assert!(e.contains("pts:2"), "{e}");
    assert!(sdflow::parse_points("\n# nothing\n", "pts").is_err());
    assert!(sdflow::read_points(std::path::Path::new("/nonexistent/points.txt")).is_err());
}
