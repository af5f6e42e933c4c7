//! Step-wise reverse dynamics of the flip noise: S exact reverse steps from a fixed x_T end in
//! the one-shot denoiser's law P_0(x_0 | x_T) (χ² against enumeration), the reverse rates are
//! the small-step limit of the exact step, and a full reverse run from x_T ~ P_T regenerates P_0.

use fisherflow::tensornet::*;

#[path = "support/chi2.rs"]
mod chi2;
use chi2::{chi2, chi2_crit};

fn config(i: usize, n: usize) -> Vec<u8> {
    (0..n).map(|k| ((i >> k) & 1) as u8).collect()
}

fn index(x: &[u8]) -> usize {
    x.iter().enumerate().map(|(k, &v)| (v as usize) << k).sum()
}

/// The one-shot denoiser's law `P_0(x_0 | x_T)` over all configurations, by enumeration.
fn one_shot_law(p0: &Mps, x_t: &[u8], gamma: f64, t: f64) -> Vec<f64> {
    let cond = condition_on_noisy(p0, x_t, gamma, t).unwrap();
    let n = p0.len();
    (0..1usize << n)
        .map(|i| cond.log_prob(&config(i, n)).unwrap()[0].exp())
        .collect()
}

fn reverse_histogram(rd: &ReverseDynamics, x_t: &[u8], runs: usize, seed: u64) -> Vec<u64> {
    let n = x_t.len();
    let starts: Vec<u8> = x_t.repeat(runs);
    let out = rd.run_many(&starts, seed, 0).unwrap();
    let mut h = vec![0u64; 1 << n];
    for x in out.chunks(n) {
        h[index(x)] += 1;
    }
    h
}

#[test]
fn reverse_steps_from_x_t_end_in_the_one_shot_denoiser_law() {
    let (gamma, t) = (1.0, 0.6);
    // A 3×2 Ising lattice and a Fredkin chain (x_T not a Dyck path: the noise leaves the
    // constraint, the reverse dynamics returns to it).
    let ising = ising_2d(&IsingLattice::new(3, 2, Boundary::Open).unwrap(), 0.7).unwrap();
    let fk = fredkin(8, 0.7).unwrap();
    let cases: [(&str, &Mps, Vec<u8>); 2] = [
        ("ising", &ising, vec![0, 1, 1, 0, 0, 1]),
        ("fredkin", &fk, vec![1, 1, 0, 1, 0, 0, 0, 1]),
    ];
    for (name, p0, x_t) in cases {
        let law = one_shot_law(p0, &x_t, gamma, t);
        for steps in [1usize, 4, 16] {
            let rd = ReverseDynamics::new(p0, gamma, t, steps).unwrap();
            let h = reverse_histogram(&rd, &x_t, 6000, steps as u64);
            let (stat, df) = chi2(&h, &law);
            eprintln!("{name}, S = {steps}: χ² = {stat:.1} ({df} dof)");
            assert!(
                stat < chi2_crit(df, 4.0),
                "{name} S = {steps}: χ² = {stat} with {df} dof"
            );
            if name == "fredkin" {
                for (i, &c) in h.iter().enumerate() {
                    if c > 0 {
                        assert!(dyck_area(&config(i, 8)).is_some());
                    }
                }
            }
        }
    }
}

#[test]
fn reverse_rates_are_the_small_step_limit_of_the_exact_step() {
    let p0 = ising_2d(&IsingLattice::new(2, 3, Boundary::Open).unwrap(), 0.9).unwrap();
    let (gamma, t) = (0.8, 0.4);
    let x = vec![0u8, 1, 0, 0, 1, 1];
    let rates = reverse_rates(&p0, gamma, t, &x).unwrap();
    // The rate equals γ P_t(x^(i)) / P_t(x), by direct evaluation.
    let pt = noised(&p0, gamma, t).unwrap();
    let lx = pt.log_weight(&x).unwrap();
    for (i, &r) in rates.iter().enumerate() {
        let mut y = x.clone();
        y[i] = 1 - y[i];
        let want = gamma * (pt.log_weight(&y).unwrap() - lx).exp();
        assert!(
            (r - want).abs() < 1e-12 * (1.0 + want),
            "site {i}: {r} vs {want}"
        );
    }
    // The exact step's probability of flipping site i over dt, divided by dt, tends to the
    // rate at first order in dt.
    let mut errs = Vec::new();
    for dt in [1e-3, 5e-4] {
        let prior = noised(&p0, gamma, t - dt).unwrap();
        let post = condition_on_noisy(&prior, &x, gamma, dt).unwrap();
        let mut worst: f64 = 0.0;
        for (i, &r) in rates.iter().enumerate() {
            let mut y = x.clone();
            y[i] = 1 - y[i];
            let p = post.log_prob(&y).unwrap()[0].exp();
            worst = worst.max((p / dt - r).abs() / r);
        }
        errs.push(worst);
    }
    eprintln!("relative error of rate·dt: {errs:?}");
    assert!(
        errs[0] < 0.01 && errs[1] < 0.6 * errs[0],
        "first order: {errs:?}"
    );
}

#[test]
fn reverse_dynamics_from_the_noised_law_regenerates_p0() {
    let p0 = fredkin(10, 0.3).unwrap();
    let rd = ReverseDynamics::new(&p0, 1.0, 1.0, 5).unwrap();
    assert_eq!(rd.steps(), 5);
    assert!((rd.times()[5] - 1.0).abs() < 1e-15);
    let pt = rd.marginal(5).unwrap();
    let xt = sample_cpu(pt, 5000, 4).unwrap();
    let x0 = rd.run_many(&xt, 9, 0).unwrap();
    let mut law = vec![0.0; 1 << 10];
    let mut h = vec![0u64; 1 << 10];
    for (i, p) in law.iter_mut().enumerate() {
        *p = p0.log_prob(&config(i, 10)).unwrap()[0].exp();
    }
    for x in x0.chunks(10) {
        assert!(dyck_area(x).is_some());
        h[index(x)] += 1;
    }
    let (stat, df) = chi2(&h, &law);
    assert!(stat < chi2_crit(df, 4.0), "χ² = {stat} with {df} dof");
    // Bad input.
    assert!(ReverseDynamics::new(&p0, 1.0, 0.0, 5).is_err());
    assert!(ReverseDynamics::new(&p0, f64::NAN, 1.0, 5).is_err());
    assert!(ReverseDynamics::new(&p0, 1.0, 1.0, 0).is_err());
    assert!(ReverseDynamics::new(&random_mps(4, 3, 2, 1).unwrap(), 1.0, 1.0, 2).is_err());
    assert!(rd.step(0, &xt[..10], |_| 0.5).is_err());
    assert!(rd.step(1, &xt[..9], |_| 0.5).is_err());
    assert!(reverse_rates(&p0, 1.0, 0.5, &[1u8; 10]).is_ok());
    assert!(reverse_rates(&p0, 0.0, 0.5, &[1u8; 10]).is_err());
}
