//! The likelihood: the prior's constant; the exact divergence of the model's field against the
//! analytic divergence of a projected linear field and against finite differences; the
//! input-gradient path of the autodiff by finite differences; Hutchinson's mean within three
//! standard errors of the exact value; the density integrating to one over the quarter circle;
//! a zero field giving exactly the prior; the probe kernels against their CPU reference; the
//! GPU and CPU paths agreeing; and the order of the joint integration, measured.

use fisherflow::autodiff::{CpuExecutor, Executor, OptimConfig};
use fisherflow::data::SequenceDataset;
use fisherflow::device::Device;
use fisherflow::flow::nll::field::{vjp_graph, COT};
use fisherflow::flow::nll::kernels::{self as nk, Probes};
use fisherflow::flow::nll::{
    divergence, log_density, log_prior, sequence_nll, Divergence, Given, NllConfig, Protocol,
};
use fisherflow::flow::{FlowConfig, FlowModel, Geometry, Solver};
use fisherflow::gpu::testing::{devices, gpu};
use fisherflow::gpu::GpuTensor;
use fisherflow::kernels::rng::cpu::sphere_prior;
use fisherflow::nn::{Mlp, MlpConfig};
use fisherflow::rng::Rng;

/// A model whose field is exactly `f(x) = A·x` (`A`: `[LK, LK]` row-major): LeakyReLU of
/// slope 1 is the identity, the input layer applies `Aᵀ` on the right, the block adds zero and
/// the output layer copies.
fn linear_model(l: usize, k: usize, a: &[f64]) -> FlowModel {
    let w = l * k;
    let config = FlowConfig {
        mlp: MlpConfig {
            seq_len: l,
            categories: k,
            hidden: w,
            blocks: 1,
            time_dim: 4,
            slope: 1.0,
            project: true,
        },
        ..FlowConfig::new(l, k, w, Geometry::Sphere)
    };
    let mut m = FlowModel::untrained(config, 1).unwrap();
    for p in &mut m.params {
        p.data.iter_mut().for_each(|v| *v = 0.0);
        let cols = *p.shape.last().unwrap();
        match p.name.as_str() {
            // x·W with W[i][j] = A[j][i] on the first LK input rows.
            "input.weight" => {
                (0..w).for_each(|i| (0..w).for_each(|j| p.data[i * cols + j] = a[j * w + i] as f32))
            }
            "output.weight" => (0..w).for_each(|i| p.data[i * cols + i] = 1.0),
            _ => {}
        }
    }
    m
}

/// An untrained (nonlinear) model.
fn random_model(l: usize, k: usize, seed: u64) -> FlowModel {
    let mut cfg = FlowConfig::new(l, k, 24, Geometry::Sphere);
    cfg.mlp.time_dim = 8;
    let mut m = FlowModel::untrained(cfg, seed).unwrap();
    // Larger weights than the initialisation, so that the field and its divergence are O(1).
    for p in &mut m.params {
        p.data.iter_mut().for_each(|v| *v *= 2.0);
    }
    m
}

fn random_matrix(n: usize, seed: u64) -> Vec<f64> {
    let mut r = Rng::new(seed);
    (0..n * n).map(|_| r.range(-1.0, 1.0)).collect()
}

/// `Σ_l [tr A_ll − x_lᵀ A_ll x_l − (K−1)⟨x_l, (Ax)_l⟩]`: the divergence of `P_x A x` on the
/// product of spheres.
fn analytic_div(a: &[f64], x: &[f32], l: usize, k: usize) -> f64 {
    let w = l * k;
    let xs: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let f: Vec<f64> = (0..w)
        .map(|i| (0..w).map(|j| a[i * w + j] * xs[j]).sum())
        .collect();
    (0..l)
        .map(|p| {
            let o = p * k;
            let tr: f64 = (0..k).map(|i| a[(o + i) * w + o + i]).sum();
            let xax: f64 = (0..k)
                .flat_map(|i| (0..k).map(move |j| (i, j)))
                .map(|(i, j)| xs[o + i] * a[(o + i) * w + o + j] * xs[o + j])
                .sum();
            let xf: f64 = (0..k).map(|i| xs[o + i] * f[o + i]).sum();
            tr - xax - (k as f64 - 1.0) * xf
        })
        .sum()
}

fn exact() -> NllConfig {
    NllConfig {
        divergence: Divergence::Exact,
        ..Default::default()
    }
}

#[test]
fn the_prior_is_uniform_on_the_orthant() {
    use std::f64::consts::PI;
    // S⁰₊ is one point; the quarter circle has length π/2; the octant of S² has area π/2; the
    // orthant of S³ has volume 2π²/16.
    for (k, want) in [(1, 1.0), (2, 2.0 / PI), (3, 2.0 / PI), (4, 8.0 / (PI * PI))] {
        assert!((log_prior(k) - f64::ln(want)).abs() < 1e-12, "K = {k}");
    }
    // The areas of the spheres: |S^{K+1}| = 2π/K · |S^{K−1}|, and the orthant of S^{K+1} is a
    // quarter of the share of S^{K−1}'s: the density grows by 2K/π.
    for k in 1..60 {
        let ratio = log_prior(k + 2) - log_prior(k);
        assert!(
            (ratio - f64::ln(2.0 * k as f64 / PI)).abs() < 1e-9,
            "K = {k}"
        );
    }
}

#[test]
fn exact_divergence_of_a_projected_linear_field_is_analytic() {
    for (l, k) in [(1, 3), (2, 4), (3, 5)] {
        let w = l * k;
        let a = random_matrix(w, 7 + w as u64);
        let model = linear_model(l, k, &a);
        let n = 6;
        let x = sphere_prior(3, 0, 0, n * l, k);
        for dev in devices() {
            let got = divergence(dev, &model, &x, Given::default(), 0.3, &exact()).unwrap();
            for (s, g) in got.iter().enumerate() {
                let want = analytic_div(&a, &x[s * w..(s + 1) * w], l, k);
                assert!(
                    (g - want).abs() < 1e-4 * (1.0 + want.abs()),
                    "L={l} K={k} seq {s}: {g} vs {want} on {dev:?}"
                );
            }
        }
    }
}

/// `tr(𝒫 J_v)` with `J_v` by central differences of the model's field (f64 executor).
fn fd_divergence(model: &FlowModel, x: &[f32], t: f32) -> f64 {
    let (l, k) = (model.config.mlp.seq_len, model.config.mlp.categories);
    let mlp = Mlp::new(model.config.mlp, 0).unwrap();
    let mut ex =
        CpuExecutor::<f64>::new(&mlp.graph, 1, &[mlp.out], None, OptimConfig::default()).unwrap();
    ex.load_params(&model.params).unwrap();
    ex.set_input(Mlp::T, &[t]).unwrap();
    let h = 1e-3f32;
    let mut v = |xs: &[f32]| -> Vec<f64> {
        ex.set_input(Mlp::X, xs).unwrap();
        ex.forward().unwrap();
        ex.output(mlp.out)
            .unwrap()
            .iter()
            .map(|&a| a as f64)
            .collect()
    };
    let mut div = 0.0;
    for j in 0..l * k {
        let (mut up, mut dn) = (x.to_vec(), x.to_vec());
        up[j] += h;
        dn[j] -= h;
        let step = (up[j] - dn[j]) as f64;
        let (vu, vd) = (v(&up), v(&dn));
        let col: Vec<f64> = vu.iter().zip(&vd).map(|(a, b)| (a - b) / step).collect();
        let o = (j / k) * k;
        let xc: f64 = (0..k).map(|i| x[o + i] as f64 * col[o + i]).sum();
        div += col[j] - x[j] as f64 * xc;
    }
    div
}

#[test]
fn exact_divergence_of_a_network_matches_finite_differences() {
    let (l, k) = (2, 3);
    let model = random_model(l, k, 11);
    let x = sphere_prior(5, 0, 0, 3 * l, k);
    for dev in devices() {
        let got = divergence(dev, &model, &x, Given::default(), 0.6, &exact()).unwrap();
        for (s, g) in got.iter().enumerate() {
            let want = fd_divergence(&model, &x[s * l * k..(s + 1) * l * k], 0.6);
            assert!(
                (g - want).abs() < 2e-3 * (1.0 + want.abs()),
                "seq {s}: {g} vs {want} on {dev:?}"
            );
        }
    }
}

#[test]
fn input_gradients_match_finite_differences() {
    let (l, k) = (2, 3);
    let w = l * k;
    let model = random_model(l, k, 3);
    let (mlp, loss) = vjp_graph(&model).unwrap();
    let b = 3;
    let mut ex = CpuExecutor::<f64>::with_input_grads(
        &mlp.graph,
        b,
        &[mlp.out],
        Some(loss),
        OptimConfig::default(),
        &[Mlp::X],
    )
    .unwrap();
    ex.load_params(&model.params).unwrap();
    let x = sphere_prior(1, 0, 0, b * l, k);
    let cot = Rng::new(2).vec_f32(b * w, -1.0, 1.0);
    ex.set_input(Mlp::T, &[0.2, 0.5, 0.9]).unwrap();
    ex.set_input(COT, &cot).unwrap();
    ex.set_input(Mlp::X, &x).unwrap();
    ex.forward_backward().unwrap();
    let g = ex.input_grad(Mlp::X).unwrap();
    // The parameters get no gradient in this mode.
    assert!(ex
        .grads()
        .unwrap()
        .iter()
        .all(|t| t.data.iter().all(|&v| v == 0.0)));
    let h = 1e-3f32;
    for i in 0..b * w {
        let mut f = |d: f32| {
            let mut xs = x.clone();
            xs[i] += d;
            ex.set_input(Mlp::X, &xs).unwrap();
            ex.forward().unwrap();
            ((xs[i] - x[i]) as f64, ex.loss_f64().unwrap())
        };
        let ((du, lu), (dd, ld)) = (f(h), f(-h));
        let fd = (lu - ld) / (du - dd);
        assert!(
            (g[i] - fd).abs() < 1e-4 * (1.0 + fd.abs()),
            "x[{i}]: {} vs {fd}",
            g[i]
        );
    }
    // Asking for a gradient of something that is not an input is refused.
    let bad = CpuExecutor::<f64>::with_input_grads(
        &mlp.graph,
        b,
        &[mlp.out],
        Some(loss),
        OptimConfig::default(),
        &["nope"],
    );
    assert!(bad.is_err());
}

#[test]
fn hutchinson_is_within_three_standard_errors_of_exact() {
    let (l, k) = (2, 4);
    let model = random_model(l, k, 5);
    let n = 400;
    let one = sphere_prior(9, 0, 0, l, k);
    let x: Vec<f32> = one.iter().copied().cycle().take(n * l * k).collect();
    for dev in devices() {
        let ex = divergence(dev, &model, &one, Given::default(), 0.4, &exact()).unwrap()[0];
        let cfg = NllConfig {
            divergence: Divergence::Hutchinson,
            probes: 1,
            seed: 17,
            ..Default::default()
        };
        let est = divergence(dev, &model, &x, Given::default(), 0.4, &cfg).unwrap();
        let mean = est.iter().sum::<f64>() / n as f64;
        let var = est.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let se = (var / n as f64).sqrt();
        assert!(se > 1e-3, "the probes vary: se {se}");
        assert!(
            (mean - ex).abs() < 3.0 * se,
            "{dev:?}: Hutchinson {mean} ± {se}, exact {ex}"
        );
        // More probes per sequence: a smaller spread.
        let cfg16 = NllConfig { probes: 16, ..cfg };
        let est16 =
            divergence(dev, &model, &x[..50 * l * k], Given::default(), 0.4, &cfg16).unwrap();
        let sd16 = (est16.iter().map(|v| (v - ex).powi(2)).sum::<f64>() / 50.0).sqrt();
        assert!(
            sd16 < var.sqrt() * 0.5,
            "16 probes: sd {sd16} vs {}",
            var.sqrt()
        );
    }
}

/// `∫ exp(log p_1)` over the quarter circle by the midpoint rule on the angle.
fn quarter_circle_mass(dev: Device, model: &FlowModel, cfg: &NllConfig) -> f64 {
    let m = 600;
    let dth = std::f64::consts::FRAC_PI_2 / m as f64;
    let x: Vec<f32> = (0..m)
        .flat_map(|i| {
            let th = (i as f64 + 0.5) * dth;
            [th.cos() as f32, th.sin() as f32]
        })
        .collect();
    let d = log_density(dev, model, &x, 1.0, cfg).unwrap();
    d.log_p.iter().map(|lp| lp.exp() * dth).sum()
}

#[test]
fn the_density_integrates_to_one_over_the_quarter_circle() {
    // A = diag(1.5, −0.5): the field P·A·x vanishes at both vertices, so the flow keeps the
    // quarter circle and moves mass towards e₁.
    let model = linear_model(1, 2, &[1.5, 0.0, 0.0, -0.5]);
    let cfg = NllConfig {
        solver: Solver::Rk4,
        steps: 32,
        ..exact()
    };
    for dev in devices() {
        let mass = quarter_circle_mass(dev, &model, &cfg);
        assert!((mass - 1.0).abs() < 1e-3, "{dev:?}: mass {mass}");
        // Not the prior: the density moved.
        let d = log_density(dev, &model, &[1.0, 0.0, 0.0, 1.0], 1.0, &cfg).unwrap();
        assert!(d.log_p[0] > log_prior(2) + 1.0 && d.log_p[1] < log_prior(2) - 1.0);
    }
    let adaptive = NllConfig {
        solver: Solver::Dopri5,
        ..cfg
    };
    let mass = quarter_circle_mass(Device::Cpu, &model, &adaptive);
    assert!((mass - 1.0).abs() < 1e-3, "dopri5: mass {mass}");
}

#[test]
fn the_dequantized_figure_bounds_the_argmax_probability() {
    // K = 2, L = 1: P(token 0) = ∫ p_1 over the arc θ ∈ [0, π/4] (the argmax cell of e₁).
    let model = linear_model(1, 2, &[1.5, 0.0, 0.0, -0.5]);
    let cfg = NllConfig {
        steps: 32,
        protocol: Protocol::Dequantized,
        ..exact()
    };
    let m = 400;
    let dth = std::f64::consts::FRAC_PI_4 / m as f64;
    let x: Vec<f32> = (0..m)
        .flat_map(|i| {
            let th = (i as f64 + 0.5) * dth;
            [th.cos() as f32, th.sin() as f32]
        })
        .collect();
    let d = log_density(Device::Cpu, &model, &x, 1.0, &cfg).unwrap();
    let p0: f64 = d.log_p.iter().map(|lp| lp.exp() * dth).sum();
    let exact_nll = -p0.ln();
    let n = 1000;
    let data = SequenceDataset::new(vec![0; n], n, 1, 2, None).unwrap();
    let mut figures = Vec::new();
    for contract in [1.0, 0.5, 0.25] {
        let c = NllConfig { contract, ..cfg };
        let (mean, se) = sequence_nll(Device::Cpu, &model, &data, &c)
            .unwrap()
            .mean_se();
        assert!(
            mean > exact_nll - 3.0 * se,
            "λ {contract}: {mean} ± {se} < {exact_nll}"
        );
        figures.push(mean);
    }
    // Uniform in the cell is loose here; draws contracted towards the vertex, where the
    // model's mass is, come closer.
    assert!(figures[1] < figures[0] - 0.05, "{figures:?} vs {exact_nll}");
}

#[test]
fn a_zero_field_gives_exactly_the_prior() {
    let (l, k) = (3, 5);
    let mut model = random_model(l, k, 2);
    for p in &mut model.params {
        p.data.iter_mut().for_each(|v| *v = 0.0);
    }
    let x = sphere_prior(4, 0, 0, 5 * l, k);
    let data = SequenceDataset::new(vec![0, 4, 2, 1, 1, 3], 2, l, k, None).unwrap();
    for dev in devices() {
        for div in [Divergence::Exact, Divergence::Hutchinson] {
            let cfg = NllConfig {
                divergence: div,
                steps: 3,
                protocol: Protocol::Dequantized,
                ..Default::default()
            };
            let d = log_density(dev, &model, &x, 1.0, &cfg).unwrap();
            assert!(d.log_p.iter().all(|&v| v == l as f64 * log_prior(k)));
            let nll = sequence_nll(dev, &model, &data, &cfg).unwrap();
            let want = l as f64 * (k as f64).ln();
            assert!(nll.nats.iter().all(|v| (v - want).abs() < 1e-9), "{nll:?}");
            let vertex = NllConfig {
                protocol: Protocol::Vertex,
                ..cfg
            };
            let nll = sequence_nll(dev, &model, &data, &vertex).unwrap();
            assert!(nll.nats.iter().all(|&v| v == -(l as f64) * log_prior(k)));
        }
    }
}

#[test]
fn probe_kernels_match_their_reference() {
    let Some(ctx) = gpu() else { return };
    for exact in [false, true] {
        let (b, l, k) = (8, 3, 5);
        let w = l * k;
        let m = if exact { w } else { 6 };
        let s = Probes {
            b,
            m,
            l,
            k,
            exact,
            flat: false,
        };
        let x = sphere_prior(2, 0, 0, b * l, k);
        let mut r = Rng::new(4);
        let z: Vec<f32> = (0..m * b * w).map(|_| r.range(-1.0, 1.0) as f32).collect();
        let g: Vec<f32> = (0..m * b * w).map(|_| r.range(-1.0, 1.0) as f32).collect();
        let t = |v: &[f32]| GpuTensor::from_slice(ctx, v, &[v.len()]).unwrap();
        let (xt, zt, gt) = (t(&x), t(&z), t(&g));
        let (xr, cot, out) = (
            t(&vec![0.0; m * b * w]),
            t(&vec![0.0; m * b * w]),
            t(&[0.0; 8]),
        );
        let mut rec = fisherflow::gpu::Recorder::new();
        nk::probe_rows(ctx, &mut rec, &s, &xt, &zt, &xr, &cot).unwrap();
        nk::probe_dot(ctx, &mut rec, &s, &gt, &cot, -0.5, &out).unwrap();
        rec.run(ctx).unwrap();
        let (wxr, wcot) = nk::probe_rows_cpu(&s, &x, &z).unwrap();
        let gd: Vec<f64> = g.iter().map(|&v| v as f64).collect();
        let wdot = nk::probe_dot_cpu(&s, &gd, &wcot, -0.5);
        let close = |a: &[f32], b: &[f64], tol: f64| {
            a.iter().zip(b).all(|(&p, &q)| (p as f64 - q).abs() < tol)
        };
        assert!(close(&xr.to_vec(ctx).unwrap(), &wxr, 1e-7));
        assert!(close(&cot.to_vec(ctx).unwrap(), &wcot, 1e-6));
        assert!(
            close(&out.to_vec(ctx).unwrap(), &wdot, 1e-4),
            "exact {exact}"
        );
        // The projected probes are tangent at every position (up to the f32 points' norm).
        for (row, xrow) in wcot.chunks(k).zip(wxr.chunks(k)) {
            let d: f64 = row.iter().zip(xrow).map(|(a, b)| a * b).sum();
            assert!(d.abs() < 1e-6, "{d}");
        }
    }
    // A mismatched size is refused.
    let s = Probes {
        b: 4,
        m: 3,
        l: 1,
        k: 2,
        exact: true,
        flat: false,
    };
    assert!(nk::probe_rows_cpu(&s, &[0.0; 8], &[]).is_err());
}

#[test]
fn gpu_and_cpu_paths_agree() {
    let Some(ctx) = gpu() else { return };
    let (l, k) = (2, 3);
    let model = random_model(l, k, 8);
    let x = sphere_prior(6, 0, 0, 10 * l, k);
    for (div, solver) in [
        (Divergence::Exact, Solver::Rk4),
        (Divergence::Hutchinson, Solver::Midpoint),
        (Divergence::Exact, Solver::Dopri5),
    ] {
        let cfg = NllConfig {
            divergence: div,
            probes: 4,
            solver,
            steps: 8,
            chunk: Some(4),
            ..Default::default()
        };
        let c = log_density(Device::Cpu, &model, &x, 0.9, &cfg).unwrap();
        let g = log_density(Device::Gpu(ctx), &model, &x, 0.9, &cfg).unwrap();
        if solver != Solver::Dopri5 {
            assert_eq!(c.evaluations, g.evaluations, "{div:?} {solver:?}");
        }
        for (a, b) in c.log_p.iter().zip(&g.log_p) {
            assert!(
                (a - b).abs() < 2e-3 * (1.0 + a.abs()),
                "{div:?} {solver:?}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn the_joint_integration_keeps_the_order_of_rk4() {
    let (l, k) = (1, 3);
    let a = random_matrix(3, 21);
    let model = linear_model(l, k, &a);
    let x = sphere_prior(8, 0, 0, 4, k);
    let at = |solver, steps| {
        let cfg = NllConfig {
            solver,
            steps,
            ..exact()
        };
        log_density(Device::Cpu, &model, &x, 1.0, &cfg)
            .unwrap()
            .log_p
    };
    let reference = at(Solver::Rk4, 256);
    let err = |v: Vec<f64>| -> f64 {
        v.iter()
            .zip(&reference)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f64::max)
    };
    for (solver, order, base) in [(Solver::Euler, 1.0, 16), (Solver::Rk4, 4.0, 4)] {
        let (e1, e2) = (err(at(solver, base)), err(at(solver, 2 * base)));
        let observed = (e1 / e2).log2();
        assert!(
            (observed - order).abs() < 0.35,
            "{solver:?}: observed order {observed} ({e1} → {e2})"
        );
    }
}
