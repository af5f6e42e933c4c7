//! The geometry and the sampler, independent of learning: integrating the *exact* marginal
//! Fisher-Flow vector field of a categorical distribution must reproduce it.
//!
//! For one position with probabilities `p` on K categories, `x_t = slerp(x0, e_k; t)` with `x0`
//! uniform on the positive orthant contracts geodesic polar coordinates around `e_k` by
//! `1 - t`, so the conditional density is `ρ_t(x | e_k) ∝ (sin r0 / sin r)^(K-2)` with
//! `r = d(x, e_k)`, `r0 = r / (1 - t) ≤ π/2` (the orthant), and the marginal field is
//! `v(x, t) = Σ_k w_k u_t(x | e_k)`, `w_k ∝ p_k ρ_t(x | e_k)`, `u_t(x | e_k) = log_x(e_k)/(1 - t)`.

use fisherflow::data::metrics::kl_to_target;
use fisherflow::data::toy::ToyTarget;
use fisherflow::data::SequenceDataset;
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
