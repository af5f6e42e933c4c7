//! The simplex baselines' and the toy protocol's kernels against their CPU references
//! (Dirichlet FM's mixture field, the Fisher–Rao pull-back, fresh one-hot draws, row gathers),
//! and OT pairs drawn from the plan with replacement following the plan's marginals.

use fisherflow::flow::dirichlet::{self, CTable};
use fisherflow::flow::pairing::{couple_host, OtPairing};
use fisherflow::flow::{ot, paths, OtMode};
use fisherflow::gpu::{testing::gpu, GpuTensor, Recorder};
use fisherflow::kernels::rng;

fn close(what: &str, a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}[{i}]: GPU {x}, CPU {y}"
        );
    }
}

#[test]
fn dirichlet_mixture_matches_reference() {
    let Some(ctx) = gpu() else { return };
    for (b, l, k, t) in [
        (7usize, 3usize, 5usize, 0.4f64),
        (33, 4, 20, 6.5),
        (2, 1, 2, 0.0),
    ] {
        let rows = b * l;
        let mut x = rng::cpu::dirichlet1(1, 0, 0, rows, k);
        // Edge cases: a vertex and a point on an edge.
        x[..k]
            .iter_mut()
            .enumerate()
            .for_each(|(c, v)| *v = (c == 0) as u8 as f32);
        let z: Vec<f32> = rng::cpu::uniform(2, 0, 0, rows * k)
            .iter()
            .map(|u| 8.0 * u - 4.0)
            .collect();
        let table = CTable::new(t, k);
        let mut want = vec![0f32; rows * k];
        for ((xr, zr), o) in x.chunks(k).zip(z.chunks(k)).zip(want.chunks_mut(k)) {
            dirichlet::mix_row(xr, zr, &table, o);
        }
        let tab: Vec<f32> = table.values.iter().map(|&v| v as f32).collect();
        let shape = [b, l, k];
        let (xg, zg) = (
            GpuTensor::from_slice(ctx, &x, &shape).unwrap(),
            GpuTensor::from_slice(ctx, &z, &shape).unwrap(),
        );
        let tg = GpuTensor::from_slice(ctx, &tab, &[tab.len()]).unwrap();
        let out = GpuTensor::<f32>::zeros(ctx, &shape).unwrap();
        let mut rec = Recorder::new();
        dirichlet::mix(ctx, &mut rec, &xg, &zg, &tg, &out).unwrap();
        rec.run(ctx).unwrap();
        let got = out.to_vec(ctx).unwrap();
        close("dirichlet_mix", &got, &want, 2e-4);
        // The field is tangent to the simplex.
        for r in got.chunks(k) {
            assert!(
                r.iter().sum::<f32>().abs() < 1e-3 * (1.0 + r.iter().map(|v| v.abs()).sum::<f32>())
            );
        }
    }
}

#[test]
fn pull_back_square_draws_and_gathers_match_reference() {
    let Some(ctx) = gpu() else { return };
    let (b, l, k) = (9usize, 4usize, 6usize);
    let shape = [b, l, k];
    let x = rng::cpu::sphere_prior(3, 0, 0, b * l, k);
    let u: Vec<f32> = rng::cpu::uniform(4, 0, 0, b * l * k);
    let xg = GpuTensor::from_slice(ctx, &x, &shape).unwrap();
    let ug = GpuTensor::from_slice(ctx, &u, &shape).unwrap();
    let (p, v) = (
        GpuTensor::<f32>::zeros(ctx, &shape).unwrap(),
        GpuTensor::<f32>::zeros(ctx, &shape).unwrap(),
    );
    let sq = GpuTensor::from_slice(ctx, &x, &shape).unwrap();
    // Probabilities with a zero and uniforms at both ends.
    let mut probs: Vec<f32> = rng::cpu::uniform(5, 0, 0, l * k);
    probs[1] = 0.0;
    let pg = GpuTensor::from_slice(ctx, &probs, &[l, k]).unwrap();
    let mut ud = rng::cpu::uniform(6, 0, 0, b * l);
    ud[0] = 0.0;
    ud[1] = 0.999_999_9;
    let udg = GpuTensor::from_slice(ctx, &ud, &[b * l]).unwrap();
    let onehot = GpuTensor::<f32>::zeros(ctx, &shape).unwrap();
    let ur: Vec<f32> = rng::cpu::uniform(7, 0, 0, 5);
    let urg = GpuTensor::from_slice(ctx, &ur, &[5]).unwrap();
    let gathered = GpuTensor::<f32>::zeros(ctx, &[5, l, k]).unwrap();
    let mut rec = Recorder::new();
    paths::to_simplex(ctx, &mut rec, &xg, &ug, &p, &v).unwrap();
    paths::square(ctx, &mut rec, &sq).unwrap();
    paths::categorical_onehot(ctx, &mut rec, &pg, &udg, &onehot).unwrap();
    paths::gather_rows_u(ctx, &mut rec, &xg, &urg, &gathered).unwrap();
    rec.run(ctx).unwrap();
    let (wp, wv) = paths::to_simplex_cpu(&x, &u);
    close("to_simplex p", &p.to_vec(ctx).unwrap(), &wp, 1e-6);
    close("to_simplex v", &v.to_vec(ctx).unwrap(), &wv, 1e-6);
    close("square", &sq.to_vec(ctx).unwrap(), &wp, 1e-6);
    let oh = onehot.to_vec(ctx).unwrap();
    assert_eq!(oh, paths::categorical_onehot_cpu(&probs, l, k, &ud));
    // Every row is one-hot, and token 1 of position 0 (probability 0) is never drawn.
    assert!(oh.chunks(k).all(|r| r.iter().sum::<f32>() == 1.0));
    assert!(oh.chunks(k).step_by(l).all(|r| r[1] == 0.0));
    let g = gathered.to_vec(ctx).unwrap();
    assert_eq!(g, paths::gather_rows_u_cpu(&x, l * k, &ur));
    // Bad shapes are errors, not dispatches.
    let mut rec = Recorder::new();
    assert!(paths::to_simplex(ctx, &mut rec, &xg, &pg, &p, &v).is_err());
    assert!(paths::gather_rows_u(ctx, &mut rec, &xg, &urg, &xg).is_err());
}

#[test]
fn fresh_draws_follow_the_probabilities() {
    let (l, k, n) = (2usize, 4usize, 200_000usize);
    let probs = [0.1f32, 0.2, 0.3, 0.4, 0.0, 0.5, 0.5, 0.0];
    let u = rng::cpu::uniform(9, 0, 0, n * l);
    let draws = paths::categorical_onehot_cpu(&probs, l, k, &u);
    for pos in 0..l {
        for c in 0..k {
            let count = (0..n)
                .filter(|&s| draws[(s * l + pos) * k + c] == 1.0)
                .count();
            let (f, p) = (count as f64 / n as f64, probs[pos * k + c] as f64);
            let sd = (p * (1.0 - p) / n as f64).sqrt();
            assert!(
                (f - p).abs() <= 5.0 * sd + 1e-12,
                "position {pos}, token {c}: {f} vs {p}"
            );
        }
    }
}

/// The index of each row of `rows` among the rows of `of` (rows of `per` floats).
fn indices(rows: &[f32], of: &[f32], per: usize) -> Vec<usize> {
    rows.chunks(per)
        .map(|r| {
            of.chunks(per)
                .position(|o| o == r)
                .expect("a row of the batch")
        })
        .collect()
}

#[test]
fn sampled_pairs_follow_the_plan() {
    let (b, l, k) = (6usize, 2usize, 3usize);
    let per = l * k;
    let x0 = rng::cpu::sphere_prior(1, 0, 0, b * l, k);
    let x1: Vec<f32> = {
        let u = rng::cpu::uniform(2, 0, 0, b * l);
        u.iter()
            .flat_map(|&v| {
                let c = ((v * k as f32) as usize).min(k - 1);
                (0..k).map(move |j| (j == c) as u8 as f32)
            })
            .collect()
    };
    // Make the data rows distinct so that pairs can be identified.
    let x1: Vec<f32> = x1
        .iter()
        .enumerate()
        .map(|(i, v)| v + (i / per) as f32 * 1e-3)
        .collect();
    let cost = ot::cost_matrix(&x0, &x1, b, b, l, k).unwrap();
    let sink = OtMode::Sinkhorn {
        eps: 0.5,
        iters: 500,
    };
    let opts = ot::SinkhornOptions {
        eps: 0.5,
        iters: 500,
    };
    let plan = ot::sinkhorn(&cost, b, b, &opts).unwrap().plan(&cost);
    let total: f64 = plan.iter().sum();
    let assign = ot::hungarian(&cost, b, b).unwrap();
    let steps = 20_000u64;
    let mut joint = vec![0f64; b * b];
    let mut exact_rows = vec![0f64; b];
    let mut repeated = 0;
    for step in 0..steps {
        let (mut a0, mut a1) = (x0.clone(), x1.clone());
        couple_host(
            sink,
            OtPairing::Sample,
            &mut a0,
            &mut a1,
            (b, l, k),
            7,
            step,
            4,
        )
        .unwrap();
        for (i, j) in indices(&a0, &x0, per)
            .into_iter()
            .zip(indices(&a1, &x1, per))
        {
            joint[i * b + j] += 1.0;
        }
        let (mut e0, mut e1) = (x0.clone(), x1.clone());
        couple_host(
            OtMode::Exact,
            OtPairing::Sample,
            &mut e0,
            &mut e1,
            (b, l, k),
            7,
            step,
            4,
        )
        .unwrap();
        let ri = indices(&e0, &x0, per);
        for (&i, j) in ri.iter().zip(indices(&e1, &x1, per)) {
            assert_eq!(j, assign[i], "exact pairs are pairs of the assignment");
            exact_rows[i] += 1.0;
        }
        let mut seen = ri.clone();
        seen.sort();
        seen.dedup();
        repeated += (seen.len() < b) as usize;
    }
    let n = (steps * b as u64) as f64;
    for i in 0..b {
        for j in 0..b {
            let (f, p) = (joint[i * b + j] / n, plan[i * b + j] / total);
            let sd = (p * (1.0 - p) / n).sqrt();
            assert!(
                (f - p).abs() <= 5.0 * sd + 1e-4,
                "pair ({i}, {j}): {f} vs the plan's {p}"
            );
        }
        let f = exact_rows[i] / n;
        let sd = (f * (1.0 - f) / n).sqrt();
        assert!(
            (f - 1.0 / b as f64).abs() <= 5.0 * sd,
            "exact plan row {i}: {f}"
        );
    }
    // With replacement: most batches use some prior point twice (1 − 6!/6⁶ ≈ 98 %).
    assert!(
        repeated as f64 > 0.9 * steps as f64,
        "{repeated} of {steps} batches repeat a row"
    );
    // Assignment uses every prior point once.
    let (mut a0, mut a1) = (x0.clone(), x1.clone());
    couple_host(
        OtMode::Exact,
        OtPairing::Assign,
        &mut a0,
        &mut a1,
        (b, l, k),
        7,
        0,
        4,
    )
    .unwrap();
    assert_eq!(a0, x0);
    assert_eq!(indices(&a1, &x1, per), assign);
}
