//! Metropolis–Hastings chains on the GPU (`GpuChains`): the energy kernel against the targets'
//! CPU energies, every GPU step against the CPU step from the same state with the same draws,
//! the stationary law against exact enumeration, and bad input.

use fisherflow::gpu::testing::gpu;
use fisherflow::rng::Rng;
use fisherflow::tensornet::*;

const BETA_C: f64 = 0.440_686_793_509_771_5;

fn random_configs(n: usize, m: usize, g: &mut Rng) -> Vec<u8> {
    (0..n * m).map(|_| g.below(2) as u8).collect()
}

/// Ising with couplings and fields drawn from `j` and `h`.
fn ising(
    lat: IsingLattice,
    beta: f64,
    g: &mut Rng,
    j: impl Fn(&mut Rng) -> f64,
    h: impl Fn(&mut Rng) -> f64,
) -> IsingModel {
    let jv = (0..lat.bonds().len()).map(|_| j(g)).collect();
    let hv = (0..lat.n()).map(|_| h(g)).collect();
    IsingModel::with_couplings(lat, beta, jv, hv).unwrap()
}

#[test]
fn gpu_energies_equal_cpu_energies() {
    let Some(ctx) = gpu() else { return };
    let mut g = Rng::new(4);
    let shapes = [
        (3, 5, Boundary::Open),
        (4, 4, Boundary::Cylinder),
        (5, 3, Boundary::Torus),
        (7, 2, Boundary::Open),
        (16, 16, Boundary::Cylinder),
        (12, 20, Boundary::Torus),
    ];
    for (lx, ly, b) in shapes {
        let lat = IsingLattice::new(lx, ly, b).unwrap();
        let n = lat.n();
        let xs = random_configs(n, 300, &mut g);
        // Integer couplings and fields: the f32 energy is exact, bit for bit the CPU's.
        let t = ising(
            lat,
            0.37,
            &mut g,
            |g| g.below(5) as f64 - 2.0,
            |g| g.below(3) as f64 - 1.0,
        );
        let out = gpu_energies(ctx, &t, &xs).unwrap();
        for (x, o) in xs.chunks(n).zip(&out) {
            assert_eq!(o[0], t.energy(x), "{lx}x{ly} {b:?}: exact");
            let lw = t.log_weight(x);
            assert!(
                (o[1] - lw).abs() <= 1e-6 * lw.abs().max(1.0),
                "{} vs {lw}",
                o[1]
            );
            let obs = t.observables(x);
            assert!((o[2] - obs[0]).abs() <= 1e-6 * obs[0].abs().max(1.0));
            assert!((o[3] - obs[1]).abs() <= 1e-6, "|m| {} vs {}", o[3], obs[1]);
        }
        // Real couplings and fields: equal within f32 rounding of the sum.
        let t = ising(
            lat,
            0.81,
            &mut g,
            |g| g.range(-1.5, 1.5),
            |g| g.range(-1.0, 1.0),
        );
        let out = gpu_energies(ctx, &t, &xs).unwrap();
        let scale = 4.0 * n as f64;
        for (x, o) in xs.chunks(n).zip(&out) {
            let e = t.energy(x);
            assert!((o[0] - e).abs() <= 2e-6 * scale, "{} vs {e}", o[0]);
            assert!((o[1] - t.log_weight(x)).abs() <= 2e-6 * scale);
        }
    }
    // Fredkin: E = −A on Dyck paths (exact), weight zero elsewhere.
    for n in [2, 12, 64] {
        let f = FredkinWeight::new(n, 0.3).unwrap();
        let mut xs = random_configs(n, 200, &mut g);
        // Half of them Dyck paths: up steps then down steps, and a zigzag.
        xs.extend((0..n).map(|i| (i >= n / 2) as u8));
        xs.extend((0..n).map(|i| (i % 2) as u8));
        let out = gpu_energies(ctx, &f, &xs).unwrap();
        let mut dyck = 0;
        for (x, o) in xs.chunks(n).zip(&out) {
            let obs = f.observables(x);
            match dyck_area(x) {
                Some(a) => {
                    dyck += 1;
                    assert_eq!(o[0], -(a as f64));
                    let lw = f.log_weight(x);
                    assert!((o[1] - lw).abs() <= 1e-6 * lw.abs().max(1.0));
                    assert!((o[2] - obs[0]).abs() <= 1e-6 * obs[0].abs().max(1.0));
                    assert_eq!(o[3], obs[1], "heights are exact");
                }
                None => assert_eq!(o[1], f64::NEG_INFINITY),
            }
        }
        assert!(dyck >= 2);
    }
}

/// Step the GPU chains one step at a time; from each GPU state, the CPU path's step with the
/// same draws must give the GPU's next state. Returns (chain steps, mismatches).
fn step_by_step(
    target: &dyn LogWeight,
    model: &Mps,
    start: Vec<u8>,
    seed: u64,
    local_sweeps: usize,
    steps: usize,
) -> (usize, usize) {
    let ctx = gpu().unwrap();
    let opts = RunOptions {
        burn_in: 0,
        steps: 1,
        seed,
        local_sweeps,
        keep_every: 0,
    };
    let mut state = Chains::new(target, start).unwrap();
    let b = state.len();
    let n = state.n_sites();
    let mut g = GpuChains::new(ctx, target, model, &state, &opts).unwrap();
    let mut prop = IndependentProposer::new(model, None, seed).unwrap();
    let (mut mismatched, mut accepted_cpu) = (0, 0);
    for t in 0..steps {
        let mut cpu = Chains::new(target, state.states.clone()).unwrap();
        cpu.log_q = prop.log_q(&cpu.states).unwrap();
        accepted_cpu += mh_step(
            target,
            &mut prop,
            &mut cpu,
            t as u64,
            seed,
            local_sweeps,
            &CpuAccept,
        )
        .unwrap();
        g.run_steps(1).unwrap();
        g.download(&mut state).unwrap();
        for c in 0..b {
            let (x, y) = (&cpu.states[c * n..][..n], &state.states[c * n..][..n]);
            if x != y {
                mismatched += 1;
                continue;
            }
            let (a, e) = (state.log_pi[c], cpu.log_pi[c]);
            assert!((a - e).abs() <= 1e-5 * e.abs().max(1.0), "log π̃ {a} vs {e}");
            let (a, e) = (state.log_q[c], cpu.log_q[c]);
            assert!(
                (a - e).abs() <= 1e-4 * e.abs().max(1.0),
                "log Pθ {a} vs {e}"
            );
        }
    }
    let accepted_gpu: u32 = g.accepted().unwrap().iter().sum();
    eprintln!(
        "{} chain steps, {mismatched} differ; accepted CPU {accepted_cpu}, GPU {accepted_gpu}",
        b * steps
    );
    assert!(accepted_cpu > 0, "the test needs accepted proposals");
    assert!(
        (accepted_cpu as i64 - accepted_gpu as i64).unsigned_abs() as usize <= mismatched,
        "acceptance counters differ by more than the mismatched steps"
    );
    (b * steps, mismatched)
}

#[test]
fn gpu_chains_equal_cpu_chains_step_by_step() {
    if gpu().is_none() {
        return;
    }
    let mut g = Rng::new(9);
    let lat = IsingLattice::new(4, 4, Boundary::Cylinder).unwrap();
    let model = ising_2d(&lat, 0.8 * BETA_C).unwrap();
    let target = ising(
        lat,
        BETA_C,
        &mut g,
        |g| g.range(0.5, 1.5),
        |g| g.range(-0.2, 0.2),
    );
    let start = random_configs(16, 128, &mut g);
    for sweeps in [0, 2] {
        let (total, bad) = step_by_step(&target, &model, start.clone(), 21, sweeps, 25);
        assert!(bad * 1000 <= total, "{bad} of {total} chain steps differ");
    }
    // A larger lattice with a random proposal and one local sweep.
    let lat = IsingLattice::new(6, 5, Boundary::Torus).unwrap();
    let target = ising(lat, 0.3, &mut g, |g| g.range(-1.0, 1.0), |_| 0.1);
    let model = random_mps(30, 2, 6, 3).unwrap();
    let (total, bad) = step_by_step(&target, &model, random_configs(30, 96, &mut g), 4, 1, 15);
    assert!(bad * 1000 <= total, "{bad} of {total} chain steps differ");
    // The Fredkin chain: a Dyck-masked model, so proposals are Dyck paths.
    let f = FredkinWeight::new(12, 0.7).unwrap();
    let model = MpsModel::with_support(&dyck_support(12).unwrap(), 2, 0.5, 3)
        .unwrap()
        .mps()
        .unwrap();
    let start: Vec<u8> = [0, 1].repeat(6 * 64);
    let (total, bad) = step_by_step(&f, &model, start, 8, 1, 20);
    assert!(bad * 1000 <= total, "{bad} of {total} chain steps differ");
}

#[test]
fn whole_gpu_runs_reproduce_the_cpu_path() {
    let Some(ctx) = gpu() else { return };
    let lat = IsingLattice::new(4, 4, Boundary::Cylinder).unwrap();
    let target = IsingModel::new(lat, BETA_C).unwrap();
    let model = ising_2d(&lat, 0.9 * BETA_C).unwrap();
    let start = sample_cpu(&model, 64, 2).unwrap();
    let opts = RunOptions {
        burn_in: 5,
        steps: 40,
        seed: 13,
        local_sweeps: 1,
        keep_every: 4,
    };
    let mut cg = Chains::new(&target, start.clone()).unwrap();
    let tg = run_mh_gpu(ctx, &target, &model, &mut cg, &opts).unwrap();
    let mut cc = Chains::new(&target, start).unwrap();
    let mut p = IndependentProposer::new(&model, None, opts.seed).unwrap();
    let tc = run_mh(&target, &mut p, &mut cc, &opts, &CpuAccept).unwrap();
    assert_eq!(tg.kept.len(), tc.kept.len());
    assert_eq!(tg.kept.len(), 64 * 10 * 16);
    assert_eq!((tg.proposed, tg.steps), (tc.proposed, tc.steps));
    // Chains whose whole record agrees (a chain that differs once differs from then on).
    let same: Vec<usize> = (0..64)
        .filter(|&c| {
            (0..10)
                .all(|k| tg.kept[(k * 64 + c) * 16..][..16] == tc.kept[(k * 64 + c) * 16..][..16])
        })
        .collect();
    assert!(same.len() >= 60, "{} of 64 chains agree", same.len());
    for &c in &same {
        for t in 0..40 {
            for i in 0..2 {
                let (a, e) = (tg.obs[i][c * 40 + t], tc.obs[i][c * 40 + t]);
                assert!((a - e).abs() < 1e-5, "chain {c} step {t}: {a} vs {e}");
            }
        }
    }
    if same.len() == 64 {
        assert_eq!(tg.accepted, tc.accepted);
        assert_eq!(cg.states, cc.states);
    }
}

fn within(name: &str, e: &Estimate, exact: f64, z: f64) {
    eprintln!("{name}: {:.5} ± {:.5} (exact {exact:.5})", e.mean, e.se);
    assert!(
        (e.mean - exact).abs() <= z * e.se,
        "{name}: {} ± {} vs exact {exact}",
        e.mean,
        e.se
    );
}

#[test]
fn gpu_chains_sample_the_exact_4x4_law() {
    let Some(ctx) = gpu() else { return };
    let lat = IsingLattice::new(4, 4, Boundary::Cylinder).unwrap();
    let target = IsingModel::new(lat, BETA_C).unwrap();
    let ex = enumerate_ising(&lat, BETA_C).unwrap();
    let model = ising_2d(&lat, 0.8 * BETA_C).unwrap();
    let opts = RunOptions {
        burn_in: 30,
        steps: 400,
        seed: 17,
        local_sweeps: 0,
        keep_every: 0,
    };
    let mut c = Chains::new(&target, vec![0; 16 * 256]).unwrap();
    let tr = run_mh_gpu(ctx, &target, &model, &mut c, &opts).unwrap();
    let (e, _) = summarise(&tr);
    eprintln!("acceptance {:.3}", tr.acceptance());
    within("E/N", &e[0], ex.energy, 3.0);
    within("|m|", &e[1], ex.abs_m, 3.0);
    // Random couplings and fields with a poor proposal and local sweeps, on the torus.
    let mut g = Rng::new(1);
    let lat = IsingLattice::new(4, 4, Boundary::Torus).unwrap();
    let target = ising(
        lat,
        0.6,
        &mut g,
        |g| g.range(-0.5, 1.5),
        |g| g.range(-0.3, 0.3),
    );
    let exact = enumerate_observables(&target).unwrap();
    let model = random_mps(16, 2, 4, 6).unwrap();
    let opts = RunOptions {
        local_sweeps: 1,
        ..opts
    };
    let mut c = Chains::new(&target, vec![1; 16 * 256]).unwrap();
    let (e, _) = summarise(&run_mh_gpu(ctx, &target, &model, &mut c, &opts).unwrap());
    within("random E/N", &e[0], exact[0], 3.0);
    within("random |m|", &e[1], exact[1], 3.0);
    // The Fredkin chain at c = 0.7 with the exact MPS at c = 0.6 as the proposal (zero off
    // the Dyck paths): every kept state is a Dyck path.
    let f = FredkinWeight::new(12, 0.7).unwrap();
    let exact = f.exact_observables().unwrap();
    let model = fredkin(12, 0.6).unwrap();
    let opts = RunOptions {
        keep_every: 10,
        ..opts
    };
    let mut c = Chains::new(&f, [0, 1].repeat(6 * 256)).unwrap();
    let tr = run_mh_gpu(ctx, &f, &model, &mut c, &opts).unwrap();
    assert!(tr.kept.chunks(12).all(|x| dyck_area(x).is_some()));
    assert_eq!(tr.kept.len(), 40 * 256 * 12);
    eprintln!("Fredkin acceptance {:.3}", tr.acceptance());
    assert!(tr.acceptance() > 0.1 && tr.acceptance() < 1.0);
    let (e, _) = summarise(&tr);
    within("A/N", &e[0], exact[0], 3.0);
    within("h(N/2)", &e[1], exact[1], 3.0);
}

#[test]
fn gpu_chains_refuse_bad_input() {
    let Some(ctx) = gpu() else { return };
    let lat = IsingLattice::new(4, 4, Boundary::Cylinder).unwrap();
    for beta in [0.0, -0.4, f64::NAN, f64::INFINITY] {
        let e = IsingModel::new(lat, beta).unwrap_err().to_string();
        assert!(e.contains("inverse temperature"), "{e}");
    }
    let nb = lat.bonds().len();
    let mut j = vec![1.0; nb];
    j[3] = f64::NAN;
    let e = IsingModel::with_couplings(lat, 0.4, j, vec![0.0; 16]).unwrap_err();
    assert!(e.to_string().contains("coupling 3"), "{e}");
    // Couplings finite in f64 but not in f32.
    let t = IsingModel::with_couplings(lat, 0.4, vec![1e39; nb], vec![0.0; 16]).unwrap();
    let e = gpu_energies(ctx, &t, &[0; 16]).unwrap_err().to_string();
    assert!(e.contains("finite f32"), "{e}");
    let t = IsingModel::new(lat, 0.4).unwrap();
    assert!(Chains::new(&t, Vec::new()).is_err(), "zero chains");
    assert!(gpu_energies(ctx, &t, &[]).is_err());
    assert!(gpu_energies(ctx, &t, &[0; 15]).is_err());
    assert!(
        gpu_energies(ctx, &t, &[2; 16]).is_err(),
        "a state outside 0..2"
    );
    let model = ising_2d(&lat, 0.3).unwrap();
    let chains = Chains::new(&t, vec![0; 16 * 4]).unwrap();
    let opts = RunOptions {
        burn_in: usize::MAX / 2,
        steps: usize::MAX / 2,
        seed: 1,
        local_sweeps: 0,
        keep_every: 0,
    };
    let e = GpuChains::new(ctx, &t, &model, &chains, &opts).unwrap_err();
    assert!(
        e.to_string().contains("MiB") || e.to_string().contains("2^32"),
        "{e}"
    );
    let opts = RunOptions {
        burn_in: u32::MAX as usize,
        steps: 10,
        ..opts
    };
    let e = GpuChains::new(ctx, &t, &model, &chains, &opts).unwrap_err();
    assert!(e.to_string().contains("2^32 steps"), "{e}");
    let opts = RunOptions { burn_in: 0, ..opts };
    // A model of another size, a table target, too many sites.
    let small = ising_2d(&IsingLattice::new(3, 4, Boundary::Cylinder).unwrap(), 0.3).unwrap();
    assert!(GpuChains::new(ctx, &t, &small, &chains, &opts).is_err());
    let tab = TableWeight::new(4, 2, vec![0.0; 16]).unwrap();
    let tc = Chains::new(&tab, vec![0; 8]).unwrap();
    let e = GpuChains::new(ctx, &tab, &random_mps(4, 2, 2, 1).unwrap(), &tc, &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("run on the CPU"), "{e}");
    assert!(!chains_on_gpu(&tab) && chains_on_gpu(&t));
    let big = FredkinWeight::new(MAX_GPU_SITES + 2, 0.6).unwrap();
    let e = gpu_energies(ctx, &big, &vec![0; MAX_GPU_SITES + 2])
        .unwrap_err()
        .to_string();
    assert!(e.contains("sites"), "{e}");
}
