//! Shared checks of the autodiff tests: central finite differences of every parameter against
//! the backward pass (CPU, f64), and element-wise closeness relative to the largest value.

#![allow(dead_code)]

use fisherflow::autodiff::{CpuExecutor, Executor, Graph};

/// Sets every named input of a test case.
pub fn set_inputs(ex: &mut dyn Executor, inputs: &[(String, Vec<f32>)]) {
    for (n, d) in inputs {
        ex.set_input(n, d).unwrap();
    }
}

/// Compares the backward pass of `ex` (inputs set, forward and backward run) with central
/// finite differences of its loss in every element of every parameter of `graph` except those
/// named in `skip`; `what` names the case in failures.
pub fn check_param_gradients(ex: &mut CpuExecutor<f64>, graph: &Graph, skip: &[&str], what: &str) {
    check_param_gradients_with(ex, graph, skip, usize::MAX, 1e-6, what)
}

/// [`check_param_gradients`] on at most about `entries` elements spread over each parameter,
/// within `rtol · (1 + |fd|)`.
pub fn check_param_gradients_with(
    ex: &mut CpuExecutor<f64>,
    graph: &Graph,
    skip: &[&str],
    entries: usize,
    rtol: f64,
    what: &str,
) {
    let h = 1e-6;
    let mut checked = 0;
    for (pi, info) in graph.params().iter().enumerate() {
        if skip.contains(&info.name.as_str()) {
            continue;
        }
        let analytic = ex.grad_f64(pi).unwrap();
        let base = ex.param_f64(pi).unwrap();
        for j in (0..base.len()).step_by(base.len().div_ceil(entries).max(1)) {
            let mut at = |d: f64| {
                let mut x = base.clone();
                x[j] += d;
                ex.set_param_f64(pi, &x).unwrap();
                ex.forward().unwrap();
                ex.loss_f64().unwrap()
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            ex.set_param_f64(pi, &base).unwrap();
            let tol = rtol * (1.0 + fd.abs());
            assert!(
                (fd - analytic[j]).abs() <= tol,
                "{what}: d loss / d {}[{j}]: finite difference {fd}, backward {}",
                info.name,
                analytic[j]
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "{what}: nothing checked");
}

/// `a` and `b` agree element-wise within `rtol` times the largest `|b|` (at least 1).
pub fn close(a: &[f32], b: &[f32], rtol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= rtol * scale,
            "{what}[{i}]: {x} vs {y} (scale {scale})"
        );
    }
}

/// Unit vectors per group of `k` (points on the spheres).
pub fn sphere_points(rng: &mut fisherflow::autodiff::Rng, rows: usize, k: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(rows * k);
    for _ in 0..rows {
        let z: Vec<f64> = (0..k).map(|_| rng.normal()).collect();
        let n = z.iter().map(|x| x * x).sum::<f64>().sqrt();
        v.extend(z.iter().map(|x| (x / n) as f32));
    }
    v
}
