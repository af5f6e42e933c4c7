//! Riemannian minibatch OT: exact assignment, Sinkhorn (CPU and GPU), pair sampling.

use fisherflow::flow::ot::{self, GpuSinkhorn, SinkhornOptions};
use fisherflow::gpu::{testing::gpu, GpuTensor, Recorder};
use fisherflow::kernels::rng::{cpu, PhiloxStream};
use fisherflow::Error;

fn random_cost(n: usize, m: usize, seed: u64) -> Vec<f64> {
    let mut r = PhiloxStream::new(seed, 0, 0);
    (0..n * m).map(|_| r.next_f64() * 10.0).collect()
}

/// Points on (S^{K-1}_+)^L: the CPU sphere prior and, for x1, one-hot rows.
fn batches(b: usize, l: usize, k: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let x0 = cpu::sphere_prior(seed, 0, 0, b * l, k);
    let mut r = PhiloxStream::new(seed, 0, 1);
    let mut x1 = vec![0.0f32; b * l * k];
    for p in 0..b * l {
        x1[p * k + r.below(k as u64) as usize] = 1.0;
    }
    (x0, x1)
}

fn brute_force(cost: &[f64], n: usize) -> f64 {
    fn rec(cost: &[f64], n: usize, row: usize, used: &mut Vec<bool>, acc: f64, best: &mut f64) {
        if row == n {
            *best = best.min(acc);
            return;
        }
        for j in 0..n {
            if !used[j] {
                used[j] = true;
                rec(cost, n, row + 1, used, acc + cost[row * n + j], best);
                used[j] = false;
            }
        }
    }
    let mut best = f64::INFINITY;
    rec(cost, n, 0, &mut vec![false; n], 0.0, &mut best);
    best
}

#[test]
fn hungarian_matches_brute_force() {
    for n in 1..=7 {
        for seed in 0..6 {
            let c = random_cost(n, n, seed * 31 + n as u64);
            let col = ot::hungarian(&c, n, n).unwrap();
            let mut seen = col.clone();
            seen.sort();
            assert_eq!(seen, (0..n).collect::<Vec<_>>(), "not a permutation");
            let got = ot::assignment_cost(&c, n, &col);
            let best = brute_force(&c, n);
            assert!((got - best).abs() < 1e-9, "n={n}: {got} vs optimum {best}");
        }
    }
    // Ties and integer costs.
    let c = vec![1.0; 16];
    assert_eq!(
        ot::assignment_cost(&c, 4, &ot::hungarian(&c, 4, 4).unwrap()),
        4.0
    );
    // Rectangular: 2 rows, 3 columns.
    let c = vec![5.0, 1.0, 9.0, 1.0, 2.0, 9.0];
    assert_eq!(ot::hungarian(&c, 2, 3).unwrap(), vec![1, 0]);
    // Bad input.
    assert!(matches!(ot::hungarian(&c, 3, 2), Err(Error::Shape(_))));
    assert!(matches!(
        ot::hungarian(&[f64::NAN], 1, 1),
        Err(Error::NonFinite(_))
    ));
    assert!(ot::hungarian(&[], 0, 0).is_err());
}

#[test]
fn hungarian_on_sphere_cost_beats_identity_pairing() {
    let (b, l, k) = (64, 4, 20);
    let (x0, x1) = batches(b, l, k, 1);
    let c = ot::cost_matrix(&x0, &x1, b, b, l, k).unwrap();
    let col = ot::hungarian(&c, b, b).unwrap();
    let opt = ot::assignment_cost(&c, b, &col);
    let ident: f64 = (0..b).map(|i| c[i * b + i]).sum();
    assert!(opt < ident);
    // Optimality certificate: no 2-swap improves the assignment.
    for i in 0..b {
        for j in i + 1..b {
            let swap =
                c[i * b + col[j]] + c[j * b + col[i]] - c[i * b + col[i]] - c[j * b + col[j]];
            assert!(swap > -1e-9);
        }
    }
    // Cost of a point with itself is 0; orthogonal one-hots cost (π/2)² per position.
    let e0 = [1.0f32, 0.0];
    let e1 = [0.0f32, 1.0];
    let c = ot::cost_matrix(&e0, &e1, 1, 1, 1, 2).unwrap();
    assert!((c[0] - (std::f64::consts::FRAC_PI_2).powi(2)).abs() < 1e-12);
    assert_eq!(ot::cost_matrix(&e0, &e0, 1, 1, 1, 2).unwrap()[0], 0.0);
    assert!(ot::cost_matrix(&e0, &e1, 2, 1, 1, 2).is_err());
}

#[test]
fn sinkhorn_marginals_and_concentration() {
    let n = 8;
    // Continuous points on both sides, so the optimal assignment is unique.
    let x0 = cpu::sphere_prior(3, 0, 0, n * 2, 5);
    let x1 = cpu::sphere_prior(3, 0, 1, n * 2, 5);
    let c = ot::cost_matrix(&x0, &x1, n, n, 2, 5).unwrap();
    // The marginal error falls as the iterations go on.
    let mut errs = Vec::new();
    for iters in [1, 10, 100, 1000, 5000] {
        let r = ot::sinkhorn(
            &c,
            n,
            n,
            &SinkhornOptions {
                eps: ot::DEFAULT_EPS,
                iters,
            },
        )
        .unwrap();
        errs.push(ot::marginal_error(&r.plan(&c), n, n));
    }
    eprintln!("marginal error vs iterations: {errs:?}");
    assert!(errs.windows(2).all(|w| w[1] <= w[0] + 1e-15), "{errs:?}");
    assert!(
        errs[3] < 1e-3 / n as f64 && errs[4] < 2e-4 / n as f64,
        "{errs:?}"
    );
    // With a larger ε the iteration contracts fast and the marginals are exact to rounding.
    let r = ot::sinkhorn(
        &c,
        n,
        n,
        &SinkhornOptions {
            eps: 1.0,
            iters: 200,
        },
    )
    .unwrap();
    assert!(ot::marginal_error(&r.plan(&c), n, n) < 1e-12);
    let r = ot::sinkhorn(
        &c,
        n,
        n,
        &SinkhornOptions {
            eps: ot::DEFAULT_EPS,
            iters: 5000,
        },
    )
    .unwrap();
    let plan = r.plan(&c);
    assert!((plan.iter().sum::<f64>() - 1.0).abs() < 1e-6);
    // As ε shrinks the plan concentrates on the exact assignment.
    let col = ot::hungarian(&c, n, n).unwrap();
    let mut last = 0.0;
    for eps in [1.0, 0.1, 0.01, 0.002] {
        let r = ot::sinkhorn(&c, n, n, &SinkhornOptions { eps, iters: 20_000 }).unwrap();
        let p = r.plan(&c);
        let on: f64 = (0..n).map(|i| p[i * n + col[i]]).sum();
        eprintln!("ε={eps}: mass on the exact assignment {on}");
        assert!(
            on > last - 1e-9,
            "ε={eps}: mass on the assignment {on} fell from {last}"
        );
        last = on;
    }
    assert!(
        last > 0.99,
        "mass on the exact assignment at ε=0.002: {last}"
    );
    assert!(ot::sinkhorn(&c, n, n, &SinkhornOptions { eps: 0.0, iters: 1 }).is_err());
}

#[test]
fn sampling_pairs_follows_the_plan() {
    let w = vec![0.0, 1.0, 3.0, 2.0, 0.0, 0.0];
    assert_eq!(
        ot::sample_pairs(&w, 2, 3, &[0.0, 0.99]).unwrap(),
        vec![1, 0]
    );
    assert_eq!(
        ot::sample_pairs(&w, 2, 3, &[0.26, 0.5]).unwrap(),
        vec![2, 0]
    );
    assert!(ot::sample_pairs(&[-1.0, 1.0], 1, 2, &[0.5]).is_err());
    assert!(ot::sample_pairs(&[0.0, 0.0], 1, 2, &[0.5]).is_err());
    // Frequencies over many uniforms match the row's probabilities.
    let n = 20_000;
    let row = [0.1, 0.6, 0.3];
    let w: Vec<f64> = (0..n).flat_map(|_| row).collect();
    let u = cpu::uniform(1, 0, 0, n);
    let picks = ot::sample_pairs(&w, n, 3, &u).unwrap();
    for (j, &p) in row.iter().enumerate() {
        let f = picks.iter().filter(|&&x| x as usize == j).count() as f64 / n as f64;
        assert!((f - p).abs() < 0.015, "{j}: {f} vs {p}");
    }
}

#[test]
fn gpu_cost_sinkhorn_plan_and_sampling_match_cpu() {
    let Some(ctx) = gpu() else { return };
    for &(n, m, l, k, iters) in &[
        (16usize, 16usize, 4usize, 20usize, 50usize),
        (300, 300, 2, 5, 30),
        (5, 9, 1, 3, 200),
    ] {
        let (x0, _) = batches(n, l, k, 5);
        let (_, x1) = batches(m, l, k, 6);
        let c = ot::cost_matrix(&x0, &x1, n, m, l, k).unwrap();
        let gx0 = GpuTensor::from_slice(ctx, &x0, &[n, l, k]).unwrap();
        let gx1 = GpuTensor::from_slice(ctx, &x1, &[m, l, k]).unwrap();
        let gc = GpuTensor::<f32>::zeros(ctx, &[n, m]).unwrap();
        let gp = GpuTensor::<f32>::zeros(ctx, &[n, m]).unwrap();
        let u = cpu::uniform(8, 0, 0, n);
        let gu = GpuTensor::from_slice(ctx, &u, &[n]).unwrap();
        let picks = GpuTensor::<u32>::zeros(ctx, &[n]).unwrap();
        let sk = GpuSinkhorn::new(ctx, n, m, ot::DEFAULT_EPS).unwrap();
        let mut rec = Recorder::new();
        ot::cost_matrix_gpu(ctx, &mut rec, &gx0, &gx1, &gc).unwrap();
        sk.solve(ctx, &mut rec, &gc, iters).unwrap();
        sk.plan(ctx, &mut rec, &gc, &gp).unwrap();
        sk.sample(ctx, &mut rec, &gc, &gu, &picks).unwrap();
        rec.run(ctx).unwrap();

        let gcv = gc.to_vec(ctx).unwrap();
        for (p, (&a, &b)) in gcv.iter().zip(&c).enumerate() {
            assert!(
                (a as f64 - b).abs() < 2e-3 * l as f64,
                "cost {p}: gpu {a} cpu {b}"
            );
        }
        // CPU Sinkhorn on the GPU's own (f32) cost isolates the iteration from the cost kernel.
        let c32: Vec<f64> = gcv.iter().map(|&v| v as f64).collect();
        let r = ot::sinkhorn(
            &c32,
            n,
            m,
            &SinkhornOptions {
                eps: ot::DEFAULT_EPS,
                iters,
            },
        )
        .unwrap();
        let (gf, gg) = (sk.f.to_vec(ctx).unwrap(), sk.g.to_vec(ctx).unwrap());
        let scale = c32.iter().cloned().fold(0.0, f64::max) + 1.0;
        for (a, b) in gf.iter().zip(&r.f).chain(gg.iter().zip(&r.g)) {
            assert!(
                (*a as f64 - b).abs() < 2e-5 * scale,
                "potential gpu {a} cpu {b}"
            );
        }
        let plan = r.plan(&c32);
        let gpv: Vec<f64> = gp.to_vec(ctx).unwrap().iter().map(|&v| v as f64).collect();
        let total: f64 = gpv.iter().sum();
        assert!((total - 1.0).abs() < 1e-3, "plan mass {total}");
        for (a, b) in gpv.iter().zip(&plan) {
            assert!(
                (a - b).abs() < 1e-3 * (1.0 / (n * m) as f64) + 1e-2 * b,
                "plan gpu {a} cpu {b}"
            );
        }
        let (ge, ce) = (
            ot::marginal_error(&gpv, n, m),
            ot::marginal_error(&plan, n, m),
        );
        assert!(
            (ge - ce).abs() < 1e-3 / n as f64,
            "marginal error gpu {ge} cpu {ce}"
        );
        let want = ot::sample_pairs(&plan, n, m, &u).unwrap();
        let got = picks.to_vec(ctx).unwrap();
        let same = got.iter().zip(&want).filter(|(a, b)| a == b).count();
        assert!(got.iter().all(|&j| (j as usize) < m));
        assert!(same as f64 >= 0.97 * n as f64, "{same}/{n} picks agree");
    }
}

#[test]
fn gpu_shape_errors() {
    let Some(ctx) = gpu() else { return };
    let a = GpuTensor::<f32>::zeros(ctx, &[4, 2, 3]).unwrap();
    let b = GpuTensor::<f32>::zeros(ctx, &[5, 2, 4]).unwrap();
    let c = GpuTensor::<f32>::zeros(ctx, &[4, 5]).unwrap();
    let mut rec = Recorder::new();
    assert!(matches!(
        ot::cost_matrix_gpu(ctx, &mut rec, &a, &b, &c),
        Err(Error::Shape(_))
    ));
    assert!(GpuSinkhorn::new(ctx, 4, 5, -1.0).is_err());
    let sk = GpuSinkhorn::new(ctx, 4, 4, 0.05).unwrap();
    assert!(sk.solve(ctx, &mut rec, &c, 3).is_err());
    assert_eq!(rec.dispatches(), 0);
}

#[test]
fn hungarian_on_a_512_batch_is_fast_and_optimal() {
    let (b, l, k) = (512, 4, 20);
    let x0 = cpu::sphere_prior(7, 0, 0, b * l, k);
    let x1 = cpu::sphere_prior(7, 0, 1, b * l, k);
    let c = ot::cost_matrix(&x0, &x1, b, b, l, k).unwrap();
    let t = std::time::Instant::now();
    let col = ot::hungarian(&c, b, b).unwrap();
    let dt = t.elapsed().as_secs_f64();
    eprintln!("hungarian B={b}: {:.1} ms", dt * 1e3);
    // Generous bound: debug builds on a shared CPU; release takes a small fraction of this.
    assert!(dt < 10.0);
    let opt = ot::assignment_cost(&c, b, &col);
    // Random 2-swaps never improve an optimal assignment.
    let mut r = PhiloxStream::new(1, 0, 0);
    for _ in 0..20_000 {
        let (i, j) = (r.below(b as u64) as usize, r.below(b as u64) as usize);
        let d = c[i * b + col[j]] + c[j * b + col[i]] - c[i * b + col[i]] - c[j * b + col[j]];
        assert!(d > -1e-9);
    }
    assert!(opt < (0..b).map(|i| c[i * b + i]).sum::<f64>());
}
