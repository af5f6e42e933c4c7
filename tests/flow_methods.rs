//! The simplex baselines (Dirichlet FM, the Fisher–Rao flow on the simplex) and the toy
//! protocol end to end: device batches against the host reference, GPU and CPU samplers,
//! learning on the CPU backend, fresh draws, OT pairs sampled on the GPU, the method stored in
//! checkpoints, and the warmup-cosine and reduce-on-plateau schedules.

use fisherflow::checkpoint::Checkpoint;
use fisherflow::data::metrics::kl_to_target;
use fisherflow::data::toy::ToyTarget;
use fisherflow::device::Device;
use fisherflow::flow::meta::META_MODEL;
use fisherflow::flow::pairing::{couple_gpu, couple_host, OtPairing};
use fisherflow::flow::train::host_batch_from;
use fisherflow::flow::{
    sample_with_stats, DataSource, FlowConfig, FlowModel, Geometry, LrSchedule, OtMode,
    SampleConfig, ScheduleKind, Solver, TrainConfig, Trainer,
};
use fisherflow::gpu::{testing::gpu, GpuTensor, Recorder};
use fisherflow::kernels::rng::{self, GpuRng};
use fisherflow::Error;

fn toy(l: usize, k: usize) -> (ToyTarget, fisherflow::data::SequenceDataset) {
    let target = ToyTarget::from_spec(&format!("toy:L={l},K={k},seed=0")).unwrap();
    let data = target.sample(20_000, 1).unwrap();
    (target, data)
}

fn worst(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(p, q)| (p - q).abs())
        .fold(0f32, f32::max)
}

#[test]
fn device_batches_of_every_method_and_source_match_the_host() {
    let Some(ctx) = gpu() else { return };
    let (target, data) = toy(3, 7);
    let sources = [DataSource::from(data), DataSource::fresh(&target)];
    for geometry in [
        Geometry::FisherRaoSimplex,
        Geometry::Dirichlet,
        Geometry::Sphere,
    ] {
        for source in &sources {
            let flow = FlowConfig::new(3, 7, 32, geometry);
            let cfg = TrainConfig {
                batch: 16,
                seed: 11,
                ..Default::default()
            };
            let mut tr = Trainer::new(Device::Gpu(ctx), flow, cfg, source.clone()).unwrap();
            tr.train_steps(3).unwrap();
            let (xt, t, ut) = tr.gpu_batch().unwrap();
            let (hx, ht, hu) = host_batch_from(&flow, &cfg, source, 2).unwrap();
            assert_eq!(t, ht, "{geometry:?}: times");
            for (name, a, b) in [("x_t", &xt, &hx), ("target", &ut, &hu)] {
                let w = worst(a, b);
                assert!(w < 2e-4, "{geometry:?} {name}: GPU and host differ by {w}");
            }
        }
    }
}

#[test]
fn gpu_and_cpu_samplers_agree_for_the_simplex_methods() {
    let Some(ctx) = gpu() else { return };
    for geometry in [Geometry::Dirichlet, Geometry::FisherRaoSimplex] {
        let model = FlowModel::untrained(FlowConfig::new(3, 6, 32, geometry), 2).unwrap();
        for solver in [Solver::Euler, Solver::Rk4] {
            let sc = SampleConfig {
                n: 300,
                steps: 10,
                solver,
                seed: 4,
                chunk: Some(128),
                ..Default::default()
            };
            let none = &mut |_, _| {};
            let (g, _) = sample_with_stats(Device::Gpu(ctx), &model, &sc, none).unwrap();
            let (c, _) = sample_with_stats(Device::Cpu, &model, &sc, none).unwrap();
            let same = g
                .tokens
                .iter()
                .zip(&c.tokens)
                .filter(|(a, b)| a == b)
                .count();
            let frac = same as f64 / g.tokens.len() as f64;
            assert!(
                frac > 0.97,
                "{geometry:?} {solver:?}: devices agree on {frac}"
            );
        }
    }
}

#[test]
fn the_simplex_methods_learn_on_the_cpu_from_fresh_draws() {
    let (target, _) = toy(2, 4);
    let uniform = fisherflow::flow::toybench::uniform_kl(&target);
    for geometry in [Geometry::Dirichlet, Geometry::FisherRaoSimplex] {
        let flow = FlowConfig::new(2, 4, 64, geometry);
        let steps = 1500;
        let cfg = TrainConfig {
            batch: 128,
            seed: 5,
            schedule: ScheduleKind::Cosine.schedule(steps),
            ..Default::default()
        };
        let sc = SampleConfig {
            n: 8000,
            steps: 50,
            ..Default::default()
        };
        let kl_of = |m: &FlowModel| {
            let s = fisherflow::flow::sample(Device::Cpu, m, &sc).unwrap();
            kl_to_target(&s, &target.probs).unwrap()
        };
        let kl0 = kl_of(&FlowModel::untrained(flow, 5).unwrap());
        let mut tr = Trainer::new(Device::Cpu, flow, cfg, DataSource::fresh(&target)).unwrap();
        tr.train_steps(steps as usize).unwrap();
        let loss = tr.take_mean_loss().unwrap().unwrap();
        let kl = kl_of(&FlowModel::from_trainer(&tr).unwrap());
        eprintln!(
            "{geometry:?}: untrained KL {kl0:.4}, trained {kl:.5}, uniform {uniform:.5}, loss {loss:.4}"
        );
        assert!(
            kl < 0.1 * kl0 && kl < 0.5 * uniform,
            "{geometry:?}: KL {kl0} -> {kl} (uniform noise {uniform})"
        );
    }
}

#[test]
fn sampled_pairs_on_the_gpu_are_the_hosts() {
    let Some(ctx) = gpu() else { return };
    let (b, l, k) = (32usize, 3usize, 5usize);
    let (_, data) = toy(l, k);
    let sink = OtMode::Sinkhorn {
        eps: 0.1,
        iters: 200,
    };
    let (mut agree, mut total) = (0, 0);
    for step in 0..4u64 {
        let x0 = rng::cpu::sphere_prior(3, step, 2, b * l, k);
        let x1 = DataSource::from(data.clone()).x1_host(3, step, 1, b);
        let (mut h0, mut h1) = (x0.clone(), x1.clone());
        couple_host(
            sink,
            OtPairing::Sample,
            &mut h0,
            &mut h1,
            (b, l, k),
            3,
            step,
            4,
        )
        .unwrap();
        let shape = [b, l, k];
        let g0 = GpuTensor::from_slice(ctx, &x0, &shape).unwrap();
        let g1 = GpuTensor::from_slice(ctx, &x1, &shape).unwrap();
        let rng = GpuRng::new(ctx, 3, step);
        let mut rec = Recorder::new();
        let (p0, p1) = couple_gpu(ctx, &mut rec, &rng, sink, OtPairing::Sample, g0, g1, 4).unwrap();
        rec.run(ctx).unwrap();
        // The prior rows are drawn by the same uniforms: identical.
        assert_eq!(p0.to_vec(ctx).unwrap(), h0, "step {step}: prior rows");
        // Partners come from f32 and f64 plans: equal but for draws at a boundary.
        let p1 = p1.to_vec(ctx).unwrap();
        for (a, c) in p1.chunks(l * k).zip(h1.chunks(l * k)) {
            agree += (a == c) as usize;
            total += 1;
        }
    }
    assert!(
        agree as f64 > 0.9 * total as f64,
        "{agree} of {total} partners agree"
    );
}

#[test]
fn checkpoints_store_the_method_and_sampling_checks_it() {
    let (_, data) = toy(2, 4);
    for geometry in [Geometry::Dirichlet, Geometry::FisherRaoSimplex] {
        let flow = FlowConfig::new(2, 4, 16, geometry);
        let cfg = TrainConfig {
            batch: 8,
            ..Default::default()
        };
        let mut tr = Trainer::new(Device::Cpu, flow, cfg, data.clone()).unwrap();
        tr.train_steps(2).unwrap();
        let ck = tr.checkpoint().unwrap();
        let back = Checkpoint::from_bytes(&ck.to_bytes().unwrap(), "ck").unwrap();
        let model = FlowModel::from_checkpoint(&back).unwrap();
        assert_eq!(model.config.geometry, geometry);
        // A method that does not fit the stored network is refused by name.
        let mut bad = back.clone();
        let meta = bad.meta(META_MODEL).unwrap().to_string();
        let other = if geometry == Geometry::Dirichlet {
            "\"Sphere\""
        } else {
            "\"Bogus\""
        };
        let name = format!("{geometry:?}");
        bad.set_meta(META_MODEL, meta.replace(&format!("\"{name}\""), other));
        let e = FlowModel::from_checkpoint(&bad).unwrap_err();
        assert!(matches!(e, Error::Checkpoint(_)), "{e}");
    }
    // Dirichlet FM's sampler tables bound K.
    let big = FlowConfig::new(1, 5000, 8, Geometry::Dirichlet);
    assert!(FlowModel::untrained(big, 0).is_err());
}

#[test]
fn warmup_cosine_rises_then_decays() {
    let s = ScheduleKind::WarmupCosine.schedule(200);
    let LrSchedule::WarmupCosine { warmup, .. } = s else {
        panic!("{s:?}")
    };
    assert_eq!(warmup, 10);
    let lr = |i| s.lr_at(1e-3, i);
    assert!((lr(0) - 1e-4).abs() < 1e-9);
    assert!((lr(9) - 1e-3).abs() < 1e-9);
    assert!((1..10).all(|i| lr(i) > lr(i - 1)));
    assert!((11..200).all(|i| lr(i) < lr(i - 1)));
    assert!((lr(200) - 1e-5).abs() < 1e-9);
}

#[test]
fn plateau_reduces_the_rate_after_patience_and_resumes_exactly() {
    use fisherflow::flow::plateau::PlateauState;
    let mut p = PlateauState::default();
    p.observe(1.0, 4);
    assert!(!p.end_window(0.1, 2));
    for _ in 0..2 {
        p.observe(1.0, 4);
        assert!(!p.end_window(0.1, 2), "within patience");
    }
    p.observe(0.99999, 4);
    assert!(
        p.end_window(0.1, 2),
        "a gain below the threshold is no gain"
    );
    assert!((p.scale - 0.1).abs() < 1e-7 && p.reductions == 1);
    p.observe(0.5, 4);
    assert!(!p.end_window(0.1, 2));
    assert_eq!(p.best, Some(0.5));

    // In a trainer: a tiny learning problem plateaus, the rate falls, and a resumed run
    // continues the same state.
    let (_, data) = toy(2, 3);
    let flow = FlowConfig::new(2, 3, 8, Geometry::Sphere);
    let schedule = LrSchedule::Plateau {
        factor: 0.5,
        patience: 0,
        window: 3,
    };
    let cfg = TrainConfig {
        batch: 8,
        seed: 1,
        schedule,
        ..Default::default()
    };
    let mut straight = Trainer::new(Device::Cpu, flow, cfg, data.clone()).unwrap();
    straight.train_steps(60).unwrap();
    assert!(
        straight.plateau().reductions > 0,
        "{:?}",
        straight.plateau()
    );
    assert!(straight.learning_rate() < cfg.optim.lr);
    let mut first = Trainer::new(Device::Cpu, flow, cfg, data.clone()).unwrap();
    first.train_steps(31).unwrap();
    let ck = first.checkpoint().unwrap();
    let mut second = Trainer::new(Device::Cpu, flow, cfg, data).unwrap();
    second.restore(&ck).unwrap();
    second.train_steps(29).unwrap();
    // The window sums are read in different pieces: equal up to rounding.
    let (p, q) = (second.plateau(), straight.plateau());
    assert_eq!(
        (p.scale, p.reductions, p.bad),
        (q.scale, q.reductions, q.bad)
    );
    let (a, b) = (straight.params().unwrap(), second.params().unwrap());
    assert!(a.iter().zip(&b).all(|(x, y)| x.data == y.data));
}
