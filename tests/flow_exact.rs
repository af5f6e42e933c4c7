//! The geometry and the sampler, independent of learning: integrating the *exact* marginal
//! Fisher-Flow vector field of a categorical distribution must reproduce it.
//!
//! For one position with probabilities `p` on K categories, `x_t = slerp(x0, e_k; t)` with `x0`
//! uniform on the positive orthant contracts geodesic polar coordinates around `e_k` by
//! `1 - t`, so the conditional density is `ρ_t(x | e_k) ∝ (sin r0 / sin r)^(K-2)` with
//! `r = d(x, e_k)`, `r0 = r / (1 - t) ≤ π/2` (the orthant), and the marginal field is
//! `v(x, t) = Σ_k w_k u_t(x | e_k)`, `w_k ∝ p_k ρ_t(x | e_k)`, `u_t(x | e_k) = log_x(e_k)/(1 - t)`.
//!
//! The simplex methods are checked the same way, through the library's own integrator and
//! simplex steps: the Fisher–Rao flow on the simplex integrates the sphere's exact field pulled
//! back by `p = x²`; Dirichlet flow matching integrates `Σ_i w_i C(x_i, t)(e_i − x)` with the
//! exact posterior `w_i ∝ p_i x_i^t` of its path `Dir(1 + t·e_i)` and reads out `argmax w` at
//! the end, as its sampler reads out the network's posterior. `C` itself is checked against the
//! transport equation of the path's marginal `x_i ~ Beta(1 + t, K − 1)`.

use fisherflow::data::metrics::kl_to_target;
use fisherflow::data::toy::ToyTarget;
use fisherflow::data::SequenceDataset;
use fisherflow::flow::devices::CpuOde;
use fisherflow::flow::dirichlet::{self, TableCache};
use fisherflow::flow::methods;
use fisherflow::flow::ode::{integrate_fixed, VectorField};
use fisherflow::flow::{Geometry, Solver};
use fisherflow::kernels::rng;
use fisherflow::kernels::sphere::reference;

fn exact_field(x: &[f64], t: f64, p: &[f64]) -> Vec<f64> {
    let k = x.len();
    let mut logw = vec![f64::NEG_INFINITY; k];
    for c in 0..k {
        let r = x[c].clamp(-1.0, 1.0).acos();
        let r0 = r / (1.0 - t);
        if r0 <= std::f64::consts::FRAC_PI_2 && p[c] > 0.0 {
            let ratio = if r < 1e-9 {
                1.0 / (1.0 - t)
            } else {
                r0.sin() / r.sin()
            };
            logw[c] = p[c].ln() + (k as f64 - 2.0) * ratio.ln();
        }
    }
    let m = logw.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        // Off every conditional path (numerical drift): head for the nearest vertex.
        let c = (0..k).max_by(|&a, &b| x[a].total_cmp(&x[b])).unwrap();
        logw = vec![f64::NEG_INFINITY; k];
        logw[c] = 0.0;
    }
    let m = logw.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = logw.iter().map(|l| (l - m).exp()).collect();
    let z: f64 = w.iter().sum();
    let mut v = vec![0.0; k];
    for c in 0..k {
        if w[c] == 0.0 {
            continue;
        }
        let mut e = vec![0.0; k];
        e[c] = 1.0;
        let u = reference::log_row(x, &e);
        for j in 0..k {
            v[j] += w[c] / z * u[j] / (1.0 - t);
        }
    }
    v
}

fn sample_exact(p: &[f64], k: usize, n: usize, steps: usize) -> Vec<u32> {
    let x0 = rng::cpu::sphere_prior(3, 0, 9, n, k);
    let dt = 1.0 / steps as f64;
    x0.chunks(k)
        .map(|row| {
            let mut x: Vec<f64> = row.iter().map(|&a| a as f64).collect();
            for s in 0..steps {
                let v = exact_field(&x, s as f64 * dt, p);
                x = reference::euler_row(&x, &v, dt);
            }
            (0..k).max_by(|&a, &b| x[a].total_cmp(&x[b])).unwrap() as u32
        })
        .collect()
}

#[test]
fn integrating_the_exact_field_reproduces_the_target() {
    for k in [5usize, 20] {
        let target = ToyTarget::from_spec(&format!("toy:L=1,K={k}")).unwrap();
        let n = 20_000;
        let tokens = sample_exact(&target.probs, k, n, 100);
        let samples = SequenceDataset::new(tokens, n, 1, k, None).unwrap();
        let kl = kl_to_target(&samples, &target.probs).unwrap();
        let floor = kl_to_target(&target.sample(n, 5).unwrap(), &target.probs).unwrap();
        let uniform = {
            let u: Vec<f64> = vec![1.0 / k as f64; k];
            fisherflow::data::metrics::kl(&u, &target.probs)
        };
        eprintln!("K={k}: exact-field KL {kl:.5}, exact samples {floor:.5}, uniform {uniform:.5}");
        assert!(
            kl < 3.0 * floor + 2e-3,
            "K={k}: the exact field gives KL {kl} (floor {floor})"
        );
        assert!(
            kl < 0.2 * uniform,
            "K={k}: KL {kl} not far below uniform's {uniform}"
        );
    }
}

/// KL of `tokens` (one position, K categories) to `p`, beside the KL of as many exact samples
/// and of the uniform distribution.
fn score(tokens: Vec<u32>, target: &ToyTarget) -> (f64, f64, f64) {
    let (n, k) = (tokens.len(), target.vocab);
    let samples = SequenceDataset::new(tokens, n, 1, k, None).unwrap();
    let kl = kl_to_target(&samples, &target.probs).unwrap();
    let floor = kl_to_target(&target.sample(n, 5).unwrap(), &target.probs).unwrap();
    let u: Vec<f64> = vec![1.0 / k as f64; k];
    (kl, floor, fisherflow::data::metrics::kl(&u, &target.probs))
}

fn check(what: &str, k: usize, (kl, floor, uniform): (f64, f64, f64)) {
    eprintln!(
        "{what} K={k}: exact-field KL {kl:.5}, exact samples {floor:.5}, uniform {uniform:.5}"
    );
    assert!(
        kl < 3.0 * floor + 2e-3,
        "{what} K={k}: the exact field gives KL {kl} (floor {floor})"
    );
    assert!(
        kl < 0.2 * uniform,
        "{what} K={k}: KL {kl} not far below {uniform}"
    );
}

/// The exact marginal field of the Fisher–Rao flow on the simplex: the sphere's, pulled back.
struct FisherRaoSimplexField {
    p: Vec<f64>,
}

impl VectorField<CpuOde> for FisherRaoSimplexField {
    fn eval(&mut self, dev: &mut CpuOde, x: &usize, t: f32, out: &usize) -> fisherflow::Result<()> {
        let k = self.p.len();
        let v: Vec<f32> = dev.bufs[*x]
            .chunks(k)
            .flat_map(|row| {
                let s: Vec<f64> = row.iter().map(|&q| (q.max(0.0) as f64).sqrt()).collect();
                let n = s.iter().map(|a| a * a).sum::<f64>().sqrt();
                let s: Vec<f64> = s.iter().map(|a| a / n).collect();
                let u = exact_field(&s, t as f64, &self.p);
                s.iter()
                    .zip(u)
                    .map(|(a, b)| (2.0 * a * b) as f32)
                    .collect::<Vec<_>>()
            })
            .collect();
        dev.bufs[*out] = v;
        Ok(())
    }
}

/// Dirichlet FM's exact marginal field, through the library's tables and mixture.
struct DirichletField {
    p: Vec<f64>,
    tables: TableCache,
}

impl DirichletField {
    fn logits(&self, x: &[f32], t: f32) -> Vec<f32> {
        let x: Vec<f64> = x.iter().map(|&a| a as f64).collect();
        let w = dirichlet::posterior(&x, t as f64, &self.p);
        w.iter().map(|&a| (a.max(1e-300)).ln() as f32).collect()
    }
}

impl VectorField<CpuOde> for DirichletField {
    fn eval(&mut self, dev: &mut CpuOde, x: &usize, t: f32, out: &usize) -> fisherflow::Result<()> {
        let k = self.p.len();
        let mut v = vec![0f32; dev.bufs[*x].len()];
        for (row, o) in dev.bufs[*x].chunks(k).zip(v.chunks_mut(k)) {
            let z = self.logits(row, t);
            dirichlet::mix_row(row, &z, self.tables.get(t), o);
        }
        dev.bufs[*out] = v;
        Ok(())
    }
}

fn integrate_rows<F: VectorField<CpuOde>>(
    g: Geometry,
    field: &mut F,
    k: usize,
    n: usize,
) -> Vec<f32> {
    let mut dev = CpuOde::new(g, n * k, k);
    let a = fisherflow::flow::ode::OdeDevice::buffer(&mut dev).unwrap();
    let b = fisherflow::flow::ode::OdeDevice::buffer(&mut dev).unwrap();
    dev.bufs[a] = methods::prior_cpu(g, 3, 0, 9, n, k);
    let end = methods::t_end(g);
    let x = integrate_fixed(&mut dev, field, Solver::Euler, &a, &b, 0.0, end, 100, false).unwrap();
    dev.bufs[x].clone()
}

fn argmax(row: &[f32]) -> u32 {
    (0..row.len())
        .max_by(|&a, &b| row[a].total_cmp(&row[b]))
        .unwrap() as u32
}

#[test]
fn the_fisher_rao_flow_on_the_simplex_reproduces_the_target() {
    for k in [5usize, 20] {
        let target = ToyTarget::from_spec(&format!("toy:L=1,K={k}")).unwrap();
        let mut field = FisherRaoSimplexField {
            p: target.probs.clone(),
        };
        let g = Geometry::FisherRaoSimplex;
        let x = integrate_rows(g, &mut field, k, 20_000);
        check(
            "Fisher-Rao simplex",
            k,
            score(x.chunks(k).map(argmax).collect(), &target),
        );
    }
}

#[test]
fn dirichlet_flow_matching_reproduces_the_target() {
    for k in [5usize, 20] {
        let target = ToyTarget::from_spec(&format!("toy:L=1,K={k}")).unwrap();
        let mut field = DirichletField {
            p: target.probs.clone(),
            tables: TableCache::new(k),
        };
        let x = integrate_rows(Geometry::Dirichlet, &mut field, k, 20_000);
        let end = methods::t_end(Geometry::Dirichlet);
        let tokens = x.chunks(k).map(|r| argmax(&field.logits(r, end))).collect();
        check("Dirichlet FM", k, score(tokens, &target));
    }
}

/// `ln B(a, n)` for an integer `n ≥ 1`.
fn ln_beta(a: f64, n: usize) -> f64 {
    (1..n).map(|j| (j as f64).ln()).sum::<f64>() - (0..n).map(|j| (a + j as f64).ln()).sum::<f64>()
}

#[test]
fn dirichlet_c_transports_the_beta_marginal() {
    // The hot coordinate x ~ Beta(a, n), a = 1 + t, n = K − 1, moves at C(x, t)(1 − x); its CDF
    // I_x(a, n) then obeys ∂_t I + ρ · C (1 − x) = 0 with ρ the Beta density.
    for k in [2usize, 5, 20, 80] {
        let n = k - 1;
        for t in [0.0, 0.3, 2.0, 7.0] {
            let a = 1.0 + t;
            for x in [1e-3, 0.02, 0.1, 0.3, 0.5, 0.8, 0.97] {
                let h = 1e-5;
                let di = (dirichlet::beta_cdf(x, a + h, n) - dirichlet::beta_cdf(x, a - h, n))
                    / (2.0 * h);
                let rho = ((a - 1.0) * f64::ln(x) + (n as f64 - 1.0) * (1.0 - x).ln()
                    - ln_beta(a, n))
                .exp();
                let c = dirichlet::c_factor(x, t, k);
                let residual = di + rho * c * (1.0 - x);
                let scale = di.abs().max(1e-12);
                assert!(
                    residual.abs() < 1e-5 * scale + 1e-9,
                    "K={k} t={t} x={x}: ∂_t I = {di}, ρ C (1 − x) = {}",
                    rho * c * (1.0 - x)
                );
            }
        }
    }
}

#[test]
fn dirichlet_beta_cdf_is_the_integral_of_the_density() {
    for (a, n) in [(1.0, 1usize), (1.5, 4), (8.0, 19), (3.0, 79)] {
        for x in [0.05, 0.3, 0.9] {
            // Simpson's rule on [0, x].
            let m = 20_000;
            let f = |u: f64| {
                ((a - 1.0) * u.max(1e-300).ln() + (n as f64 - 1.0) * (1.0 - u).ln() - ln_beta(a, n))
                    .exp()
            };
            let hh = x / m as f64;
            let s: f64 = (0..=m)
                .map(|i| {
                    let w = if i == 0 || i == m {
                        1.0
                    } else if i % 2 == 1 {
                        4.0
                    } else {
                        2.0
                    };
                    w * f(i as f64 * hh)
                })
                .sum::<f64>()
                * hh
                / 3.0;
            let i = dirichlet::beta_cdf(x, a, n);
            assert!((s - i).abs() < 1e-6, "I_{x}({a}, {n}) = {i}, integral {s}");
        }
    }
}

#[test]
fn dirichlet_tables_interpolate_c_closely() {
    for k in [5usize, 80] {
        for t in [0.1f32, 1.0, 6.9] {
            let table = dirichlet::CTable::new(t as f64, k);
            let worst = (1..200)
                .map(|j| {
                    let x = j as f64 / 200.0;
                    let exact = dirichlet::c_factor(x, t as f64, k);
                    (table.at(x) - exact).abs() / exact.abs().max(1.0)
                })
                .fold(0.0, f64::max);
            assert!(worst < 1e-3, "K={k} t={t}: table off by {worst} (relative)");
        }
    }
}
