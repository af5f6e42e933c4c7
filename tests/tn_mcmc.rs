//! Monte Carlo on energies with tensor-network proposals: the targets against their
//! definitions, every chain against exact enumeration, GPU proposals against the CPU path, the
//! learn–propose–accept loop against exact values, exact zeros of masked models.

use fisherflow::gpu::testing::gpu;
use fisherflow::rng::Rng;
use fisherflow::tensornet::*;

const BETA_C: f64 = 0.440_686_793_509_771_5;

#[path = "support/chi2.rs"]
mod chi2;
use chi2::{chi2, chi2_crit};

/// Every configuration of `n` sites with `d` states, index `Σ x_i d^i`.
fn all_configs(n: usize, d: usize) -> Vec<Vec<u8>> {
    (0..d.pow(n as u32))
        .map(|mut i| {
            (0..n)
                .map(|_| {
                    let s = (i % d) as u8;
                    i /= d;
                    s
                })
                .collect()
        })
        .collect()
}

fn index(x: &[u8], d: usize) -> usize {
    x.iter().rev().fold(0, |i, &s| i * d + s as usize)
}

/// Normalised exact probabilities of a target over `all_configs`.
fn exact_law(t: &dyn LogWeight) -> Vec<f64> {
    let w: Vec<f64> = all_configs(t.n_sites(), t.d())
        .iter()
        .map(|x| t.log_weight(x))
        .collect();
    let m = w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = w.iter().map(|v| (v - m).exp()).collect();
    let z: f64 = e.iter().sum();
    e.into_iter().map(|v| v / z).collect()
}

fn histogram(states: &[u8], n: usize, d: usize) -> Vec<u64> {
    let mut h = vec![0u64; d.pow(n as u32)];
    for x in states.chunks(n) {
        h[index(x, d)] += 1;
    }
    h
}

fn random_ising(lat: IsingLattice, beta: f64, seed: u64) -> IsingModel {
    let mut g = Rng::new(seed);
    let j = (0..lat.bonds().len()).map(|_| g.range(-1.0, 1.5)).collect();
    let h = (0..lat.n()).map(|_| g.range(-0.5, 0.5)).collect();
    IsingModel::with_couplings(lat, beta, j, h).unwrap()
}

#[test]
fn energy_targets_agree_with_their_definitions() {
    let mut g = Rng::new(2);
    // Per-bond couplings and per-site fields on every boundary, by direct summation.
    for b in [Boundary::Open, Boundary::Cylinder, Boundary::Torus] {
        let lat = IsingLattice::new(3, 4, b).unwrap();
        let t = random_ising(lat, 0.7, 5);
        let bonds = lat.bonds();
        let expect_bonds = match b {
            Boundary::Open => 2 * 4 + 3 * 3,
            Boundary::Cylinder => 2 * 4 + 3 * 4,
            Boundary::Torus => 3 * 4 + 3 * 4,
        };
        assert_eq!(bonds.len(), expect_bonds, "{b:?}");
        let mut g2 = Rng::new(5);
        let j: Vec<f64> = (0..bonds.len()).map(|_| g2.range(-1.0, 1.5)).collect();
        let h: Vec<f64> = (0..12).map(|_| g2.range(-0.5, 0.5)).collect();
        for _ in 0..20 {
            let x: Vec<u8> = (0..12).map(|_| g.below(2) as u8).collect();
            let s = |i: usize| 1.0 - 2.0 * x[i] as f64;
            let e: f64 = -bonds
                .iter()
                .zip(&j)
                .map(|(&(a, c), jv)| jv * s(a) * s(c))
                .sum::<f64>()
                - (0..12).map(|i| h[i] * s(i)).sum::<f64>();
            assert!((t.log_weight(&x) + 0.7 * e).abs() < 1e-12);
            assert!((t.observables(&x)[0] - e / 12.0).abs() < 1e-12);
            // The chains record observables from the weight they carry.
            let o = t.observables_at(&x, t.log_weight(&x));
            assert!((o[0] - e / 12.0).abs() < 1e-12 && o[1] == t.observables(&x)[1]);
            for k in [0, 5, 11] {
                let mut y = x.clone();
                y[k] = 1 - y[k];
                let want = t.log_weight(&y) - t.log_weight(&x);
                assert!((t.log_weight_change(&x, k, y[k]) - want).abs() < 1e-12);
                assert_eq!(t.log_weight_change(&x, k, x[k]), 0.0);
            }
        }
        assert!(!t.flip_symmetric());
        assert!(IsingModel::new(lat, 0.7).unwrap().flip_symmetric());
    }
    // The ferromagnet's weights are the exact MPS's up to a constant.
    let lat = IsingLattice::new(4, 3, Boundary::Cylinder).unwrap();
    let t = IsingModel::new(lat, 0.35).unwrap();
    let mps = ising_2d(&lat, 0.35).unwrap();
    let x0 = vec![0u8; 12];
    let c = mps.log_weight(&x0).unwrap() - t.log_weight(&x0);
    for _ in 0..20 {
        let x: Vec<u8> = (0..12).map(|_| g.below(2) as u8).collect();
        assert!((mps.log_weight(&x).unwrap() - t.log_weight(&x) - c).abs() < 1e-10);
    }
    // Fredkin: the exact MPS's weights on Dyck paths, −∞ exactly elsewhere.
    let (n, cr) = (10, 0.7);
    let f = FredkinWeight::new(n, cr).unwrap();
    let fm = fredkin(n, cr).unwrap();
    let mut dyck = 0;
    for x in all_configs(n, 2) {
        let (a, b) = (f.log_weight(&x), fm.log_weight(&x).unwrap());
        assert_eq!(a == f64::NEG_INFINITY, b == f64::NEG_INFINITY);
        if a.is_finite() {
            dyck += 1;
            assert!((a - b).abs() < 1e-10);
        }
    }
    assert_eq!(dyck, 42);
    // Tables: indexing, normalisation, refusals.
    let w: Vec<f64> = (0..27)
        .map(|i| {
            if i == 4 {
                f64::NEG_INFINITY
            } else {
                0.1 * i as f64
            }
        })
        .collect();
    let tab = TableWeight::new(3, 3, w.clone()).unwrap();
    assert_eq!(tab.index(&[1, 1, 0]), 4);
    assert_eq!(tab.log_weight(&[2, 0, 1]), w[2 + 9]);
    assert!((tab.probabilities().iter().sum::<f64>() - 1.0).abs() < 1e-12);
    assert!(TableWeight::new(3, 3, w[..26].to_vec()).is_err());
    let mut bad = w.clone();
    bad[3] = f64::NAN;
    assert!(TableWeight::new(3, 3, bad).is_err());
    assert!(TableWeight::new(3, 3, vec![f64::NEG_INFINITY; 27]).is_err());
    assert!(TableWeight::new(40, 2, vec![]).is_err());
    let parsed = TableWeight::parse("# a comment\n0\n-inf\n\n1.5\n2\n", 2, "w.txt").unwrap();
    assert_eq!(parsed.n_sites(), 2);
    let e = TableWeight::parse("0\nx\n", 2, "w.txt")
        .unwrap_err()
        .to_string();
    assert!(e.contains("w.txt:2"), "{e}");
    assert!(TableWeight::parse("0\n1\n2\n", 2, "w.txt").is_err());
    assert!(TableWeight::parse("0\nNaN\n", 2, "w.txt").is_err());
    // Bad energies.
    assert!(IsingModel::new(lat, f64::NAN).is_err());
    assert!(IsingModel::with_couplings(lat, 0.3, vec![1.0; 3], vec![0.0; 12]).is_err());
    assert!(IsingLattice::new(0, 3, Boundary::Open).is_err());
    assert!(IsingLattice::new(100_000, 100_000, Boundary::Open).is_err());
    assert!(FredkinWeight::new(7, 0.5).is_err());
}

/// The chain run of the 3 × 3 torus tests: 64 chains' worth of steps kept every sixth step.
fn small_torus_run() -> RunOptions {
    RunOptions {
        burn_in: 20,
        steps: 1200,
        seed: 3,
        local_sweeps: 0,
        keep_every: 6,
    }
}

/// Every recorded observable of `tr` (kept every step) against the kept state's own.
fn assert_records_match_states(what: &str, t: &dyn LogWeight, tr: &ChainTrace) {
    let n = t.n_sites();
    assert_eq!(tr.kept.len(), tr.chains * tr.steps * n, "{what}");
    for (i, x) in tr.kept.chunks(n).enumerate() {
        let (step, c) = (i / tr.chains, i % tr.chains);
        let want = t.observables(x);
        for (o, w) in tr.obs.iter().zip(want) {
            let got = o[c * tr.steps + step];
            assert!(
                (got - w).abs() < 1e-9,
                "{what}: chain {c} step {step}: {got} vs {w}"
            );
        }
    }
}

#[test]
fn recorded_observables_are_those_of_the_recorded_states() {
    // The chains carry log π̃ through accepted proposals and local moves (updated by weight
    // changes); the energy recorded from it must stay the state's own.
    let t = random_ising(IsingLattice::new(4, 3, Boundary::Torus).unwrap(), 0.5, 9);
    let run = RunOptions {
        burn_in: 5,
        steps: 300,
        seed: 1,
        local_sweeps: 0,
        keep_every: 1,
    };
    let mut c = Chains::new(&t, vec![1u8; 12 * 8]).unwrap();
    let tr = run_local(&t, &mut c, &run).unwrap();
    assert_records_match_states("local", &t, &tr);
    let mut p = ColumnProposer::new(&t.cylinder_part().unwrap(), None, 2).unwrap();
    let mut c = Chains::new(&t, vec![0u8; 12 * 8]).unwrap();
    let tr = run_mh(&t, &mut p, &mut c, &run, &CpuAccept).unwrap();
    assert!(tr.accepted > 0 && tr.accepted < tr.proposed);
    assert_records_match_states("column MH", &t, &tr);
    let hybrid = RunOptions {
        local_sweeps: 1,
        ..run
    };
    let tr = run_mh(&t, &mut p, &mut c, &hybrid, &CpuAccept).unwrap();
    assert_records_match_states("column MH with local sweeps", &t, &tr);
}

#[test]
fn onsager_and_enumeration_references() {
    // u(β_c) = −√2; spontaneous magnetisation at K = 0.5; the limits of u.
    assert!((onsager_energy(BETA_C) + 2f64.sqrt()).abs() < 1e-9);
    assert!((onsager_energy(BETA_C + 1e-7) + 2f64.sqrt()).abs() < 1e-5);
    assert!((onsager_magnetisation(0.5) - 0.911319377877).abs() < 1e-11);
    assert_eq!(onsager_magnetisation(0.4), 0.0);
    assert!((onsager_energy(3.0) + 2.0).abs() < 1e-6);
    assert!((onsager_energy(0.01) + 2.0 * 0.01).abs() < 1e-5);
    // Generic enumeration against the Ising oracle and the Fredkin MPS.
    let lat = IsingLattice::new(4, 4, Boundary::Cylinder).unwrap();
    let ex = enumerate_ising(&lat, BETA_C).unwrap();
    let en = enumerate_observables(&IsingModel::new(lat, BETA_C).unwrap()).unwrap();
    assert!((en[0] - ex.energy).abs() < 1e-10 && (en[1] - ex.abs_m).abs() < 1e-10);
    // The transfer contraction against enumeration and the exact MPS.
    for (lx, ly, b) in [
        (4, 4, Boundary::Cylinder),
        (5, 3, Boundary::Open),
        (3, 5, Boundary::Cylinder),
    ] {
        let lat = IsingLattice::new(lx, ly, b).unwrap();
        for beta in [0.2, BETA_C, 0.8] {
            let (lz, u) = ising_transfer(&lat, beta).unwrap();
            let ex = enumerate_ising(&lat, beta).unwrap();
            assert!((lz - ex.log_z).abs() < 1e-10 && (u - ex.energy).abs() < 1e-10);
        }
    }
    let lat = IsingLattice::new(7, 8, Boundary::Cylinder).unwrap();
    let (lz, _) = ising_transfer(&lat, 0.5).unwrap();
    assert!((lz - ising_2d(&lat, 0.5).unwrap().log_norm()).abs() < 1e-9);
    // At 16×16 the cylinder's energy per bond follows Onsager's infinite-lattice trend: the
    // same order and monotone in β, a finite-size gap largest just above β_c.
    let lat = IsingLattice::new(16, 16, Boundary::Cylinder).unwrap();
    let per_bond = 256.0 / lat.bonds().len() as f64;
    let mut last = 0.0;
    for beta in [0.3, 0.4, 0.5, 0.6] {
        let (_, u) = ising_transfer(&lat, beta).unwrap();
        let (ub, ob) = (u * per_bond, onsager_energy(beta) / 2.0);
        eprintln!("β = {beta}: 16×16 cylinder {ub:.4} per bond, infinite lattice {ob:.4}");
        assert!(ub > ob && ub - ob < 0.05, "β = {beta}: {ub} vs {ob}");
        assert!(ub < last, "not monotone at β = {beta}");
        last = ub;
    }
    assert!(ising_transfer(&IsingLattice::new(4, 4, Boundary::Torus).unwrap(), 0.4).is_err());
    // Kaufman's torus against enumeration, both orientations of rectangles, on both sides of
    // β_c and at it (where γ_0 = 0); at 64 × 64 off β_c it is Onsager's lattice (the torus's
    // finite-size gap falls exponentially there).
    for (lx, ly) in [(4, 4), (3, 5), (5, 3), (4, 3), (3, 6)] {
        let lat = IsingLattice::new(lx, ly, Boundary::Torus).unwrap();
        for beta in [0.15, 0.3, BETA_C, 0.6, 1.1] {
            let (lz, u) = kaufman_torus(&lat, beta).unwrap();
            let ex = enumerate_ising(&lat, beta).unwrap();
            assert!(
                (lz - ex.log_z).abs() < 1e-9 && (u - ex.energy).abs() < 1e-7,
                "{lx}×{ly} torus at β = {beta}: ln Z {lz} vs {}, E/N {u} vs {}",
                ex.log_z,
                ex.energy
            );
        }
    }
    let big = IsingLattice::new(64, 64, Boundary::Torus).unwrap();
    for beta in [0.3, 0.6] {
        let (_, u) = kaufman_torus(&big, beta).unwrap();
        assert!((u - onsager_energy(beta)).abs() < 1e-6, "β = {beta}: {u}");
    }
    assert!(kaufman_torus(&lat, 0.4).is_err() && kaufman_torus(&big, f64::NAN).is_err());
    let f = FredkinWeight::new(12, 0.3).unwrap();
    let (a, b) = (
        enumerate_observables(&f).unwrap(),
        f.exact_observables().unwrap(),
    );
    assert!(
        (a[0] - b[0]).abs() < 1e-10 && (a[1] - b[1]).abs() < 1e-10,
        "{a:?} {b:?}"
    );
}

/// Thinned states of `run` on `target`, tested against the exact law by χ².
fn check_law(name: &str, target: &dyn LogWeight, trace: &ChainTrace) {
    let (n, d) = (target.n_sites(), target.d());
    let (stat, df) = chi2(&histogram(&trace.kept, n, d), &exact_law(target));
    eprintln!(
        "{name}: acceptance {:.3}, {} samples, χ² = {stat:.1} ({df} dof)",
        trace.acceptance(),
        trace.kept.len() / n
    );
    assert!(
        stat < chi2_crit(df, 4.0),
        "{name}: χ² = {stat} with {df} dof"
    );
}

#[test]
fn chains_on_energies_sample_the_exact_law() {
    // Ising with random couplings and fields; a random (poor) MPS as the proposal.
    let lat = IsingLattice::new(3, 2, Boundary::Open).unwrap();
    let target = random_ising(lat, 0.8, 11);
    let model = random_mps(6, 2, 3, 4).unwrap();
    let start = vec![0u8; 6 * 64];
    let run = RunOptions {
        burn_in: 20,
        steps: 1200,
        seed: 3,
        local_sweeps: 0,
        keep_every: 12,
    };
    let mut c = Chains::new(&target, start.clone()).unwrap();
    check_law("local", &target, &run_local(&target, &mut c, &run).unwrap());
    let mut c = Chains::new(&target, start.clone()).unwrap();
    let mut p = IndependentProposer::new(&model, None, 9).unwrap();
    check_law(
        "disconnected",
        &target,
        &run_mh(&target, &mut p, &mut c, &run, &CpuAccept).unwrap(),
    );
    let mut c = Chains::new(&target, start.clone()).unwrap();
    let mut p = ConnectedProposer::new(&model, 0.3, 9).unwrap();
    check_law(
        "connected",
        &target,
        &run_mh(&target, &mut p, &mut c, &run, &CpuAccept).unwrap(),
    );
    let mut c = Chains::new(&target, start).unwrap();
    let mut p = IndependentProposer::new(&model, None, 9).unwrap();
    let hybrid = RunOptions {
        local_sweeps: 1,
        ..run.clone()
    };
    check_law(
        "hybrid",
        &target,
        &run_mh(&target, &mut p, &mut c, &hybrid, &CpuAccept).unwrap(),
    );
    // Three states per site, a table target: local moves and independent proposals.
    let mut g = Rng::new(8);
    let w: Vec<f64> = (0..81).map(|_| 2.0 * g.normal()).collect();
    let tab = TableWeight::new(4, 3, w).unwrap();
    let m3 = random_mps(4, 3, 2, 6).unwrap();
    let start = vec![1u8; 4 * 64];
    let mut c = Chains::new(&tab, start.clone()).unwrap();
    check_law("table local", &tab, &run_local(&tab, &mut c, &run).unwrap());
    let mut c = Chains::new(&tab, start).unwrap();
    let mut p = IndependentProposer::new(&m3, None, 2).unwrap();
    check_law(
        "table disconnected",
        &tab,
        &run_mh(&tab, &mut p, &mut c, &run, &CpuAccept).unwrap(),
    );
    // The Fredkin constraint: a model on the Dyck support with connected moves; every state
    // visited is a Dyck path.
    let f = FredkinWeight::new(8, 0.7).unwrap();
    let model = MpsModel::with_support(&dyck_support(8).unwrap(), 2, 0.5, 3)
        .unwrap()
        .mps()
        .unwrap();
    let start: Vec<u8> = [0, 1].repeat(4 * 64);
    let mut c = Chains::new(&f, start).unwrap();
    let mut p = ConnectedProposer::new(&model, 0.4, 1).unwrap();
    let tr = run_mh(&f, &mut p, &mut c, &run, &CpuAccept).unwrap();
    assert!(tr.kept.chunks(8).all(|x| dyck_area(x).is_some()));
    check_law("fredkin connected", &f, &tr);
    // The old single-chain API on an energy.
    let (chain, st) = mcmc_disconnected(&target, &model_for(&target), 400, 5).unwrap();
    assert_eq!(chain.len(), 400 * 6);
    assert_eq!(st.steps, 399);
    assert!(
        Chains::new(&f, vec![1u8; 8]).is_err(),
        "a start outside the support"
    );
}

fn model_for(t: &IsingModel) -> Mps {
    random_mps(t.n_sites(), 2, 2, 1).unwrap()
}

#[test]
fn gpu_proposals_match_the_cpu_path() {
    let Some(ctx) = gpu() else { return };
    let lat = IsingLattice::new(4, 4, Boundary::Cylinder).unwrap();
    let target = IsingModel::new(lat, BETA_C).unwrap();
    let model = ising_2d(&lat, 0.8 * BETA_C).unwrap();
    let cpu = IndependentProposer::new(&model, None, 42).unwrap();
    let gpu_p = IndependentProposer::new(&model, Some(ctx), 42).unwrap();
    let (xc, lc) = cpu.draw_steps(3, 20, 100).unwrap();
    let (xg, lg) = gpu_p.draw_steps(3, 20, 100).unwrap();
    let differ = xc
        .chunks(16)
        .zip(xg.chunks(16))
        .filter(|(a, b)| a != b)
        .count();
    assert!(differ * 200 <= 2000, "{differ} of 2000 proposals differ");
    for ((a, b), (x, y)) in lc.iter().zip(&lg).zip(xc.chunks(16).zip(xg.chunks(16))) {
        if x == y {
            assert!((a - b).abs() < 1e-4 * (1.0 + a.abs()), "{a} vs {b}");
        }
    }
    // Whole chains: the same proposals and uniforms give (nearly) the same acceptances, and
    // the GPU-driven chains reproduce the exact 4×4 values.
    let ex = enumerate_ising(&lat, BETA_C).unwrap();
    let run = RunOptions {
        burn_in: 20,
        steps: 300,
        seed: 7,
        local_sweeps: 0,
        keep_every: 0,
    };
    let start = sample_cpu(&model, 32, 1).unwrap();
    let mut stats = Vec::new();
    for dev in [None, Some(ctx)] {
        let mut c = Chains::new(&target, start.clone()).unwrap();
        let mut p = IndependentProposer::new(&model, dev, 42).unwrap();
        let tr = run_mh(&target, &mut p, &mut c, &run, &CpuAccept).unwrap();
        let (e, _) = summarise(&tr);
        assert!(
            (e[0].mean - ex.energy).abs() < 4.0 * e[0].se,
            "{} vs {}",
            e[0].mean,
            ex.energy
        );
        assert!((e[1].mean - ex.abs_m).abs() < 4.0 * e[1].se);
        stats.push((tr.accepted, e[1].mean));
    }
    eprintln!(
        "accepted CPU {} GPU {} of {}",
        stats[0].0,
        stats[1].0,
        32 * 300
    );
    assert!((stats[0].0 as f64 - stats[1].0 as f64).abs() <= 0.01 * stats[0].0 as f64);
}

#[test]
fn the_column_mps_keeps_vanishing_probabilities_on_their_state() {
    // Deep in the ordered phase a conditional underflows f32 to ±0; its sign must still name
    // the state (a −0.0 read as +0.0 would take the impossible state with probability 1).
    let lat = IsingLattice::new(4, 4, Boundary::Cylinder).unwrap();
    for beta in [10.0, 13.0, 20.0, 40.0] {
        let model = IsingModel::new(lat, beta).unwrap();
        let mps = ColumnMps::new(&model).unwrap();
        let exact = |x: &[u8]| model.log_weight(x) - mps.log_z();
        let ground = [vec![0u8; 16], vec![1u8; 16]].concat();
        for lp in mps.log_prob(&ground).unwrap() {
            assert!(
                (lp + 2f64.ln()).abs() < 1e-6,
                "β = {beta}: ground state ln p {lp}"
            );
        }
        let mut rngs: Vec<Rng> = (0..2000).map(|i| Rng::fork(5, i)).collect();
        let mut xs = Vec::new();
        let lps = mps.sample_rows(&mut rngs, &mut xs);
        for (x, lp) in xs.chunks(16).zip(&lps) {
            assert!(
                (lp - exact(x)).abs() < 1e-4,
                "β = {beta}: ln p {lp} vs {}",
                exact(x)
            );
        }
        // One flipped spin: ln p = −ln 2 − 8β at a bulk site, finite while f32 holds it.
        let mut one = vec![0u8; 16];
        one[5] = 1;
        let lp = mps.log_prob(&one).unwrap()[0];
        if exact(&one) > -90.0 {
            assert!(
                (lp - exact(&one)).abs() < 1e-3,
                "β = {beta}: {lp} vs {}",
                exact(&one)
            );
        } else {
            assert!(lp < -90.0, "β = {beta}: {lp}");
        }
        if let Some(ctx) = gpu() {
            let g = GpuColumnMps::new(ctx, &mps).unwrap();
            let (xg, lg) = g.sample_from(ctx, 5, 0, 2000).unwrap();
            assert_eq!(xg, xs, "β = {beta}: the GPU's samples");
            for (a, b) in lg.iter().zip(&lps) {
                assert!((a - b).abs() < 1e-4, "β = {beta}: GPU ln p {a} vs {b}");
            }
            for lp in g.log_prob(ctx, &ground).unwrap() {
                assert!(
                    (lp + 2f64.ln()).abs() < 1e-5,
                    "β = {beta}: GPU ground ln p {lp}"
                );
            }
        }
    }
}

#[test]
fn the_gpu_column_sampler_draws_the_cpu_samples() {
    let Some(ctx) = gpu() else { return };
    // Random couplings and fields on a small cylinder; the 16 × 16 ferromagnet at β_c (a
    // 64 MiB table). Stream indices and keys past 2^32 exercise the 64-bit arithmetic.
    let small = random_ising(IsingLattice::new(5, 4, Boundary::Cylinder).unwrap(), 0.7, 3);
    let big = IsingModel::new(
        IsingLattice::new(16, 16, Boundary::Cylinder).unwrap(),
        BETA_C,
    )
    .unwrap();
    for (model, rows, key, first) in [
        (&small, 3000usize, 7u64, 11u64),
        (&big, 700, 0x1_2345_6789, (1u64 << 32) + 5),
    ] {
        let n = model.n_sites();
        let mps = ColumnMps::new(model).unwrap();
        let g = GpuColumnMps::new(ctx, &mps).unwrap();
        let (xg, lg) = g.sample_from(ctx, key, first, rows).unwrap();
        let mut rngs: Vec<Rng> = (0..rows as u64)
            .map(|i| Rng::fork(key, first + i))
            .collect();
        let mut xc = Vec::new();
        let lc = mps.sample_rows(&mut rngs, &mut xc);
        assert_eq!(xg.len(), xc.len());
        let differ = xg
            .chunks(n)
            .zip(xc.chunks(n))
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(differ, 0, "{differ} of {rows} samples differ ({n} sites)");
        for (a, b) in lg.iter().zip(&lc) {
            assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "ln p {a} vs {b}");
        }
        let lp = g.log_prob(ctx, &xc).unwrap();
        for (a, b) in lp.iter().zip(&lc) {
            assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "ln p {a} vs {b}");
        }
        assert!(g.log_prob(ctx, &xc[1..]).is_err());
    }
    // Chains on a torus with GPU proposals and a moving cut (a translation-invariant torus,
    // where every cut fits): the CPU's proposals, (nearly) its acceptances, and the torus's
    // exact law (χ²).
    let lat = IsingLattice::new(3, 3, Boundary::Torus).unwrap();
    let torus = IsingModel::with_couplings(lat, 0.5, vec![1.0; 18], vec![0.2; 9]).unwrap();
    let cyl = torus.cylinder_part().unwrap();
    let run = small_torus_run();
    let mut accepted = Vec::new();
    for dev in [None, Some(ctx)] {
        let mut c = Chains::new(&torus, vec![0u8; 9 * 64]).unwrap();
        let mut p = ColumnProposer::new(&cyl, dev, 4).unwrap().rotating(3);
        let tr = run_mh(&torus, &mut p, &mut c, &run, &CpuAccept).unwrap();
        check_law(
            &format!(
                "column proposals on a torus ({})",
                if dev.is_some() { "GPU" } else { "CPU" }
            ),
            &torus,
            &tr,
        );
        accepted.push(tr.accepted as f64);
    }
    assert!(
        (accepted[0] - accepted[1]).abs() <= 0.01 * accepted[0],
        "{accepted:?}"
    );
}

#[test]
fn learning_from_energies_reproduces_the_exact_4x4_cylinder() {
    let lat = IsingLattice::new(4, 4, Boundary::Cylinder).unwrap();
    let target = IsingModel::new(lat, 0.4407).unwrap();
    let ex = enumerate_ising(&lat, 0.4407).unwrap();
    let opts = LearnOptions {
        chains: 48,
        burn_in: 40,
        steps: 400,
        local_sweeps: 1,
        keep_every: 2,
        proposal: ProposalKind::Disconnected,
        fit: FitOptions {
            steps: 150,
            batch: 256,
            lr: 0.03,
            ..Default::default()
        },
        symmetrise: true,
        seed: 3,
    };
    let model = MpsModel::product(16, 2, 8, 0.05, 1).unwrap();
    let (model, reports) = learn(&target, model, &opts, 4, None, &mut |_| {}).unwrap();
    for r in &reports {
        eprintln!(
            "round {}: acceptance {:.3}, E/N {:.4} ± {:.4}, |m| {:.4} ± {:.4}, NLL {:?}",
            r.round,
            r.acceptance,
            r.estimates[0].mean,
            r.estimates[0].se,
            r.estimates[1].mean,
            r.estimates[1].se,
            r.fit.map(|f| (f.nll_before, f.nll_after))
        );
    }
    // The proposal improves: acceptance rises from the product's.
    assert!(reports[0].acceptance < 0.2 && reports[3].acceptance > 0.4);
    let last = &reports[3].estimates;
    assert!((last[0].mean - ex.energy).abs() < 3.0 * last[0].se);
    assert!((last[1].mean - ex.abs_m).abs() < 3.0 * last[1].se);
    // The learned MPS is close to the target: KL by enumeration below 0.1 nats.
    let mps = model.mps().unwrap();
    let law = exact_law(&target);
    let all: Vec<u8> = all_configs(16, 2).concat();
    let lq = mps.log_prob(&all).unwrap();
    let kl: f64 = law.iter().zip(&lq).map(|(p, q)| p * (p.ln() - q)).sum();
    let kl0: f64 = law.iter().map(|p| p * (p.ln() + 16.0 * 2f64.ln())).sum();
    eprintln!("KL(target || model) = {kl:.4} (uniform start: {kl0:.4})");
    assert!(kl < 0.5 && kl < kl0 / 8.0);
}

#[test]
fn fredkin_learning_keeps_exact_zeros_and_matches_the_exact_mps() {
    let (n, c) = (12, 0.7);
    let target = FredkinWeight::new(n, c).unwrap();
    let exact = target.exact_observables().unwrap();
    let model = MpsModel::with_support(&dyck_support(n).unwrap(), 2, 0.05, 2).unwrap();
    let opts = LearnOptions {
        chains: 32,
        burn_in: 20,
        steps: 300,
        local_sweeps: 0,
        keep_every: 2,
        proposal: ProposalKind::Connected { t: 0.3 },
        fit: FitOptions {
            steps: 80,
            lr: 0.05,
            ..Default::default()
        },
        symmetrise: true,
        seed: 5,
    };
    let (model, reports) = learn(&target, model, &opts, 3, None, &mut |_| {}).unwrap();
    let last = &reports[2];
    eprintln!(
        "fredkin: acceptance {:.3}; A/N {:.4} ± {:.4} (exact {:.4}); h {:.4} ± {:.4} (exact {:.4})",
        last.acceptance,
        last.estimates[0].mean,
        last.estimates[0].se,
        exact[0],
        last.estimates[1].mean,
        last.estimates[1].se,
        exact[1]
    );
    for (e, x) in last.estimates.iter().zip(exact) {
        assert!((e.mean - x).abs() < 3.0 * e.se);
    }
    // Exact zeros by enumeration: every non-Dyck path has probability exactly 0, the Dyck
    // paths carry all of it, and samples are always Dyck paths.
    let mps = model.mps().unwrap();
    let mut total = 0.0;
    for x in all_configs(n, 2) {
        let lp = mps.log_prob(&x).unwrap()[0];
        match dyck_area(&x) {
            Some(_) => total += lp.exp(),
            None => assert_eq!(lp, f64::NEG_INFINITY, "{x:?}"),
        }
    }
    assert!((total - 1.0).abs() < 1e-10);
    assert!(sample_cpu(&mps, 5000, 3)
        .unwrap()
        .chunks(n)
        .all(|x| dyck_area(x).is_some()));
    // A model that (almost) never proposes the support: learning refuses to start.
    let mut w = vec![f64::NEG_INFINITY; 1 << 20];
    w[12345] = 0.0;
    let needle = TableWeight::new(20, 2, w).unwrap();
    let prod = MpsModel::product(20, 2, 2, 0.0, 1).unwrap();
    match learn(&needle, prod, &opts, 1, None, &mut |_| {}) {
        Err(e) => assert!(e.to_string().contains("support"), "{e}"),
        Ok(_) => panic!("learning started outside the support"),
    }
}

#[test]
fn masked_model_gradient_matches_finite_differences() {
    let mut model = MpsModel::with_support(&dyck_support(6).unwrap(), 2, 0.4, 9).unwrap();
    let data: Vec<u8> = sample_cpu(&fredkin(6, 0.6).unwrap(), 30, 2).unwrap();
    let (v, grad) = model_nll_grad(&model, &data).unwrap();
    let nll = |m: &MpsModel| model_nll_grad(m, &data).unwrap().0;
    let h = 1e-6;
    let mut checked = 0;
    for (k, gk) in grad.iter().enumerate() {
        for (i, &g) in gk.iter().enumerate() {
            let t = model.theta()[k][i];
            model.set_theta(k, i, t + h).unwrap();
            let up = nll(&model);
            model.set_theta(k, i, t - h).unwrap();
            let down = nll(&model);
            model.set_theta(k, i, t).unwrap();
            let fd = (up - down) / (2.0 * h);
            assert!(
                (fd - g).abs() < 1e-6 * (1.0 + fd.abs()),
                "site {k} #{i}: {fd} vs {g}"
            );
            checked += (fd != 0.0) as usize;
        }
    }
    assert!(checked > 10 && v.is_finite());
    assert!(
        MpsModel::product(256, 2, 1 << 20, 0.0, 1).is_err(),
        "memory limit"
    );
    assert!(MpsModel::product(4, 2, 2, f64::NAN, 1).is_err());
}

/// The exact column MPS (sparse shift register): `ln Z` against enumeration and the dense
/// transfer, probabilities against the exact law, samples by χ², and as a proposal on a torus
/// against enumeration.
#[test]
fn the_column_mps_is_the_exact_law_of_its_lattice() {
    for (lat, beta, seed) in [
        (IsingLattice::new(3, 4, Boundary::Cylinder).unwrap(), 0.7, 1),
        (IsingLattice::new(4, 3, Boundary::Open).unwrap(), 0.5, 2),
        (IsingLattice::new(5, 3, Boundary::Cylinder).unwrap(), 1.3, 3),
        (IsingLattice::new(3, 1, Boundary::Open).unwrap(), 0.9, 4),
    ] {
        let model = random_ising(lat, beta, seed);
        let col = ColumnMps::new(&model).unwrap();
        let configs = all_configs(lat.n(), 2);
        let lw: Vec<f64> = configs.iter().map(|x| model.log_weight(x)).collect();
        let m = lw.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let log_z = m + lw.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        assert!(
            (col.log_z() - log_z).abs() < 1e-10,
            "{lat:?}: ln Z {} against {log_z}",
            col.log_z()
        );
        // ln p of every configuration: the exact law up to the f32 conditionals.
        let flat: Vec<u8> = configs.concat();
        let lp = col.log_prob(&flat).unwrap();
        for (l, w) in lp.iter().zip(&lw) {
            assert!(
                (l - (w - log_z)).abs() < 1e-5,
                "{lat:?}: {l} against {}",
                w - log_z
            );
        }
        let total: f64 = lp.iter().map(|l| l.exp()).sum();
        assert!((total - 1.0).abs() < 1e-5, "{lat:?}: total {total}");
        // Samples: χ² against the exact law, and the probabilities they report.
        let mut rngs: Vec<Rng> = (0..60_000).map(|i| Rng::fork(seed, i)).collect();
        let mut states = Vec::new();
        let lq = col.sample_rows(&mut rngs, &mut states);
        let again = col.log_prob(&states).unwrap();
        assert!(lq.iter().zip(&again).all(|(a, b)| (a - b).abs() < 1e-9));
        let probs: Vec<f64> = lp.iter().map(|l| l.exp()).collect();
        let (stat, df) = chi2(&histogram(&states, lat.n(), 2), &probs);
        assert!(stat < chi2_crit(df, 4.0), "{lat:?}: χ² = {stat} ({df} dof)");
    }
    // The 16 × 16 ferromagnet (χ = 2^16): the same ln Z as the dense transfer contraction.
    let lat = IsingLattice::new(16, 16, Boundary::Cylinder).unwrap();
    let col = ColumnMps::new(&IsingModel::new(lat, BETA_C).unwrap()).unwrap();
    let (log_z, _) = ising_transfer(&lat, BETA_C).unwrap();
    assert!((col.log_z() - log_z).abs() < 1e-9 * log_z.abs());
    assert_eq!(col.table_bytes(), 256 << 18);
}

#[test]
fn column_proposals_sample_a_torus_they_do_not_contain() {
    // The cylinder part of a torus (random couplings and fields): the wrap bonds are exactly
    // the difference of the two energies.
    let torus = random_ising(IsingLattice::new(3, 3, Boundary::Torus).unwrap(), 0.6, 5);
    let cyl = torus.cylinder_part().unwrap();
    assert!(!cyl.lattice().periodic_x && cyl.lattice().periodic_y);
    let mut g = Rng::new(2);
    for _ in 0..20 {
        let x: Vec<u8> = (0..9).map(|_| g.below(2) as u8).collect();
        let wrap: f64 = (0..3)
            .map(|r| {
                let s = |k: usize| 1.0 - 2.0 * x[k] as f64;
                torus.coupling(r, 6 + r) * s(r) * s(6 + r)
            })
            .sum();
        assert!((torus.energy(&x) - (cyl.energy(&x) - wrap)).abs() < 1e-12);
    }
    // Metropolis–Hastings with proposals from the cylinder samples the torus: χ² on the 3 × 3
    // torus, and the 4 × 4 ferromagnetic torus at β_c against enumeration.
    let run = small_torus_run();
    let mut c = Chains::new(&torus, vec![0u8; 9 * 64]).unwrap();
    let mut p = ColumnProposer::new(&cyl, None, 4).unwrap();
    let tr = run_mh(&torus, &mut p, &mut c, &run, &CpuAccept).unwrap();
    check_law("column on a torus", &torus, &tr);
    // With the cut moved every other step (each step's kernel chosen by the step alone), on a
    // translation-invariant torus (uniform couplings and field), where every cut fits.
    let lat3 = IsingLattice::new(3, 3, Boundary::Torus).unwrap();
    let nb = lat3.bonds().len();
    let uniform = IsingModel::with_couplings(lat3, 0.6, vec![1.0; nb], vec![0.2; 9]).unwrap();
    let mut c = Chains::new(&uniform, vec![0u8; 9 * 64]).unwrap();
    let cut = uniform.cylinder_part().unwrap();
    let mut p = ColumnProposer::new(&cut, None, 4).unwrap().rotating(2);
    let tr = run_mh(&uniform, &mut p, &mut c, &run, &CpuAccept).unwrap();
    check_law("rotating column on a torus", &uniform, &tr);
    // Under every cut, the probability a proposal reports is the one log_q gives it.
    let asym = random_ising(IsingLattice::new(4, 3, Boundary::Torus).unwrap(), 0.5, 9);
    let mut p = ColumnProposer::new(&asym.cylinder_part().unwrap(), None, 2)
        .unwrap()
        .rotating(1);
    let mut props = Proposals::default();
    let mut distinct = std::collections::HashSet::new();
    for step in 0..40 {
        p.kernel_changes(step);
        p.propose(&[0u8; 12 * 4], step, &mut props).unwrap();
        let again = p.log_q(&props.states).unwrap();
        for (a, b) in props.log_q.iter().zip(&again) {
            assert!((a - b).abs() < 1e-9, "step {step}: {a} against {b}");
        }
        distinct.insert(props.states.clone());
    }
    assert!(distinct.len() > 30);
    let lat = IsingLattice::new(4, 4, Boundary::Torus).unwrap();
    let target = IsingModel::new(lat, BETA_C).unwrap();
    let exact = enumerate_ising(&lat, BETA_C).unwrap();
    let mut c = Chains::new(&target, vec![0u8; 16 * 64]).unwrap();
    let mut p = ColumnProposer::new(&target.cylinder_part().unwrap(), None, 7).unwrap();
    let tr = run_mh(
        &target,
        &mut p,
        &mut c,
        &RunOptions {
            burn_in: 50,
            steps: 1500,
            seed: 8,
            local_sweeps: 0,
            keep_every: 0,
        },
        &CpuAccept,
    )
    .unwrap();
    let (est, _) = summarise(&tr);
    for (e, x) in est.iter().zip([exact.energy, exact.abs_m]) {
        assert!(
            (e.mean - x).abs() < 3.0 * e.se,
            "{} ± {} against {x}",
            e.mean,
            e.se
        );
    }
    let a = tr.acceptance();
    assert!(a > 0.2 && a < 1.0, "acceptance {a}");
    // Proposing the target's own law: every proposal accepted.
    let own = target.cylinder_part().unwrap();
    let mut c = Chains::new(&own, vec![0u8; 16 * 8]).unwrap();
    let mut p = ColumnProposer::new(&own, None, 1).unwrap();
    let tr = run_mh(&own, &mut p, &mut c, &run, &CpuAccept).unwrap();
    assert!(tr.acceptance() > 0.9999, "{}", tr.acceptance());
}

#[test]
fn the_column_mps_refuses_what_it_cannot_hold() {
    let torus = IsingModel::new(IsingLattice::new(4, 4, Boundary::Torus).unwrap(), 0.4).unwrap();
    let e = ColumnMps::new(&torus).unwrap_err().to_string();
    assert!(e.contains("cylinder_part"), "{e}");
    let wide = IsingModel::new(IsingLattice::new(2, 30, Boundary::Cylinder).unwrap(), 0.4).unwrap();
    let e = ColumnMps::new(&wide).unwrap_err().to_string();
    assert!(e.contains("spins per column"), "{e}");
    // 24 spins per column over 4,096 columns: terabytes of conditionals, refused before
    // allocating.
    let huge = IsingModel::new(
        IsingLattice::new(4096, 24, Boundary::Cylinder).unwrap(),
        0.4,
    )
    .unwrap();
    let e = ColumnMps::new(&huge).unwrap_err().to_string();
    assert!(e.contains("limit"), "{e}");
    let col = ColumnMps::new(
        &IsingModel::new(IsingLattice::new(3, 3, Boundary::Cylinder).unwrap(), 0.4).unwrap(),
    )
    .unwrap();
    assert!(col.log_prob(&[0u8; 8]).is_err());
    assert!(col.log_prob(&[2u8; 9]).is_err());
}

/// The learnable column model: its NLL gradient (sufficient statistics, the model's side from
/// perfect samples) against finite differences of the exact NLL, and a fit that recovers the
/// couplings and fields of the model that drew the data.
#[test]
fn the_column_model_learns_couplings_by_maximum_likelihood() {
    let lat = IsingLattice::new(4, 3, Boundary::Cylinder).unwrap();
    let truth = random_ising(lat, 0.8, 21);
    let truth_col = ColumnMps::new(&truth).unwrap();
    let mut rngs: Vec<Rng> = (0..50_000).map(|i| Rng::fork(77, i)).collect();
    let mut data = Vec::new();
    truth_col.sample_rows(&mut rngs, &mut data);
    let start = IsingModel::new(lat, 0.8).unwrap();
    let mut model = ColumnModel::new(&start).unwrap();
    assert_eq!(model.n_params(), lat.bonds().len() + lat.n());
    // Gradient: 400,000 model samples (standard error ≲ 0.002 per statistic) against central
    // differences of the exact NLL.
    let grad = model.gradient(&data, 400_000, false, 5).unwrap();
    let theta = model.theta().to_vec();
    let eps = 1e-4;
    for (i, g) in grad.iter().enumerate() {
        let mut m = model.clone();
        let mut t = theta.clone();
        t[i] += eps;
        m.set_theta(&t).unwrap();
        let up = m.nll(&data).unwrap();
        t[i] -= 2.0 * eps;
        m.set_theta(&t).unwrap();
        let down = m.nll(&data).unwrap();
        let fd = (up - down) / (2.0 * eps);
        assert!((fd - g).abs() < 0.01, "parameter {i}: {g} against {fd}");
    }
    // The fit: from the uniform ferromagnet to the truth's NLL and parameters.
    let truth_nll = ColumnModel::new(&truth).unwrap().nll(&data).unwrap();
    let opts = FitOptions {
        steps: 1500,
        batch: 4096,
        lr: 0.05,
        flip_augment: false,
        seed: 3,
    };
    let first = model.fit(&data, &opts).unwrap();
    // Then a smaller rate, for the noise of the sampled statistics.
    let r = model
        .fit(
            &data,
            &FitOptions {
                steps: 500,
                lr: 0.01,
                ..opts.clone()
            },
        )
        .unwrap();
    assert!(
        first.nll_before > truth_nll + 0.5,
        "{} {truth_nll}",
        first.nll_before
    );
    // Within 1 % of the starting gap of the truth's NLL (the sampled statistics make the last
    // per cent slow), and every parameter close to the truth's.
    let gap = r.nll_after - truth_nll;
    assert!(
        gap > -0.01 && gap < 0.01 * (first.nll_before - truth_nll),
        "NLL {} against the truth's {truth_nll} (from {})",
        r.nll_after,
        first.nll_before
    );
    let truth_theta = ColumnModel::new(&truth).unwrap().theta().to_vec();
    let worst = model
        .theta()
        .iter()
        .zip(&truth_theta)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(worst < 0.1, "largest parameter error {worst}");
    // Bad input.
    assert!(model.fit(&data[..5], &opts).is_err());
    assert!(model.set_theta(&[f64::NAN; 1]).is_err());
    let mut bad = model.theta().to_vec();
    bad[0] = f64::INFINITY;
    assert!(model.set_theta(&bad).is_err());
    assert!(ColumnModel::new(
        &IsingModel::new(IsingLattice::new(3, 3, Boundary::Torus).unwrap(), 0.5).unwrap()
    )
    .is_err());
}
