//! Fisher-Flow end to end: training on the GPU and the CPU, sampling, resume, NaN guard.

use fisherflow::checkpoint::Checkpoint;
use fisherflow::data::metrics::kl_to_target;
use fisherflow::data::toy::ToyTarget;
use fisherflow::device::Device;
use fisherflow::flow::{
    sample, sample_with_stats, FlowConfig, FlowModel, Geometry, LrSchedule, OtMode, SampleConfig,
    ScheduleKind, Solver, TrainConfig, Trainer,
};
use fisherflow::gpu::testing::gpu;
use fisherflow::Error;

fn toy(l: usize, k: usize) -> (ToyTarget, fisherflow::data::SequenceDataset) {
    let target = ToyTarget::from_spec(&format!("toy:L={l},K={k},seed=0")).unwrap();
    let data = target.sample(20_000, 1).unwrap();
    (target, data)
}

#[test]
fn toy_model_learns_on_the_gpu() {
    let Some(ctx) = gpu() else { return };
    let (target, data) = toy(4, 5);
    let flow = FlowConfig::new(4, 5, 64, Geometry::Sphere);
    let cfg = TrainConfig {
        batch: 128,
        seed: 3,
        ..Default::default()
    };
    let sc = SampleConfig {
        n: 2048,
        steps: 25,
        ..Default::default()
    };
    let untrained = sample(
        Device::Gpu(ctx),
        &FlowModel::untrained(flow, 3).unwrap(),
        &sc,
    )
    .unwrap();
    let kl0 = kl_to_target(&untrained, &target.probs).unwrap();
    let mut tr = Trainer::new(Device::Gpu(ctx), flow, cfg, data).unwrap();
    let t0 = std::time::Instant::now();
    tr.train_steps(300).unwrap();
    let loss = tr.take_mean_loss().unwrap().unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let samples = sample(
        Device::Gpu(ctx),
        &FlowModel::from_trainer(&tr).unwrap(),
        &sc,
    )
    .unwrap();
    let kl = kl_to_target(&samples, &target.probs).unwrap();
    eprintln!(
        "untrained KL {kl0:.4}, trained KL {kl:.4}, loss {loss:.4}, {:.1} steps/s",
        300.0 / secs
    );
    assert!(kl < 0.25 * kl0, "KL {kl} not far below untrained {kl0}");
    assert!(kl < 0.03, "KL {kl} above the bound 0.03");
}

#[test]
fn device_batches_match_the_host_reference() {
    let Some(ctx) = gpu() else { return };
    let (_, data) = toy(3, 7);
    for geometry in [Geometry::Sphere, Geometry::Simplex] {
        let flow = FlowConfig::new(3, 7, 32, geometry);
        let cfg = TrainConfig {
            batch: 16,
            seed: 11,
            ..Default::default()
        };
        let mut tr = Trainer::new(Device::Gpu(ctx), flow, cfg, data.clone()).unwrap();
        tr.train_steps(3).unwrap();
        // The network's inputs now hold the batch of step 2.
        let (xt, t, ut) = tr.gpu_batch().unwrap();
        let (hx, ht, hu) = fisherflow::flow::train::host_batch(&flow, &cfg, &data, 2).unwrap();
        assert_eq!(t, ht, "times are bit-exact Philox uniforms");
        for (name, a, b) in [("x_t", &xt, &hx), ("u_t", &ut, &hu)] {
            let worst = a
                .iter()
                .zip(b)
                .map(|(p, q)| (p - q).abs())
                .fold(0f32, f32::max);
            assert!(
                worst < 2e-4,
                "{geometry:?} {name}: GPU and host batches differ by {worst}"
            );
        }
    }
}

#[test]
fn cpu_backend_learns_and_agrees_with_itself_on_resume() {
    let (target, data) = toy(2, 4);
    let flow = FlowConfig::new(2, 4, 32, Geometry::Sphere);
    let cfg = TrainConfig {
        batch: 64,
        seed: 5,
        ..Default::default()
    };
    let sc = SampleConfig {
        n: 2000,
        steps: 20,
        ..Default::default()
    };
    let kl0 = kl_to_target(
        &sample(Device::Cpu, &FlowModel::untrained(flow, 5).unwrap(), &sc).unwrap(),
        &target.probs,
    )
    .unwrap();
    let mut tr = Trainer::new(Device::Cpu, flow, cfg, data.clone()).unwrap();
    assert!(tr.backend_name().starts_with("cpu"));
    tr.train_steps(200).unwrap();
    let kl = kl_to_target(
        &sample(Device::Cpu, &FlowModel::from_trainer(&tr).unwrap(), &sc).unwrap(),
        &target.probs,
    )
    .unwrap();
    eprintln!("CPU backend: untrained KL {kl0:.4}, trained KL {kl:.4}");
    assert!(
        kl < 0.5 * kl0 && kl < 0.05,
        "CPU training did not learn: {kl0} -> {kl}"
    );
}

fn resume_matches(ctx: Device, ot: OtMode) {
    resume_matches_with(ctx, ot, LrSchedule::Constant);
}

fn resume_matches_with(ctx: Device, ot: OtMode, schedule: LrSchedule) {
    let (_, data) = toy(3, 5);
    let flow = FlowConfig::new(3, 5, 32, Geometry::Sphere);
    let cfg = TrainConfig {
        batch: 32,
        seed: 9,
        ot,
        schedule,
        ..Default::default()
    };
    let mut straight = Trainer::new(ctx, flow, cfg, data.clone()).unwrap();
    straight.train_steps(12).unwrap();
    let want = straight.params().unwrap();

    let dir = std::env::temp_dir().join(format!(
        "ff-resume-{}-{:?}-{}",
        std::process::id(),
        ctx.gpu().is_some(),
        schedule != LrSchedule::Constant
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{ot:?}.safetensors").replace([' ', '{', '}', ':', ','], "_"));
    let mut first = Trainer::new(ctx, flow, cfg, data.clone()).unwrap();
    first.train_steps(5).unwrap();
    first.checkpoint().unwrap().save(&path).unwrap();
    drop(first);
    let mut second = Trainer::new(ctx, flow, cfg, data).unwrap();
    second.restore(&Checkpoint::load(&path).unwrap()).unwrap();
    assert_eq!(second.steps_done(), 5);
    second.train_steps(7).unwrap();
    let got = second.params().unwrap();
    for (a, b) in want.iter().zip(&got) {
        assert_eq!(a.name, b.name);
        assert_eq!(
            a.data, b.data,
            "parameter {} differs after resume ({ot:?})",
            a.name
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn interrupted_and_uninterrupted_runs_end_identical() {
    resume_matches(Device::Cpu, OtMode::None);
    let cosine = LrSchedule::Cosine {
        steps: 10,
        floor: 0.1,
    };
    resume_matches_with(Device::Cpu, OtMode::None, cosine);
    let Some(ctx) = gpu() else { return };
    resume_matches_with(Device::Gpu(ctx), OtMode::None, cosine);
    resume_matches(Device::Gpu(ctx), OtMode::None);
    resume_matches(Device::Gpu(ctx), OtMode::Exact);
    resume_matches(
        Device::Gpu(ctx),
        OtMode::Sinkhorn {
            eps: 0.05,
            iters: 20,
        },
    );
}

#[test]
fn divergence_is_caught_and_the_last_checkpoint_survives() {
    let Some(ctx) = gpu() else { return };
    let (_, data) = toy(2, 3);
    let flow = FlowConfig::new(2, 3, 16, Geometry::Sphere);
    let mut cfg = TrainConfig {
        batch: 16,
        seed: 1,
        ..Default::default()
    };
    let dir = std::env::temp_dir().join(format!("ff-nan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    let mut good = Trainer::new(Device::Gpu(ctx), flow, cfg, data.clone()).unwrap();
    good.train_steps(3).unwrap();
    good.checkpoint().unwrap().save(&path).unwrap();
    let before = std::fs::read(&path).unwrap();

    cfg.optim.lr = 1e30;
    cfg.optim.max_grad_norm = None;
    // At a constant rate nothing is read back until the loss is asked for; a plateau schedule
    // reads the loss at the end of every call and stops there.
    cfg.schedule = LrSchedule::Constant;
    let mut bad = Trainer::new(Device::Gpu(ctx), flow, cfg, data.clone()).unwrap();
    bad.train_steps(5).unwrap();
    assert!(matches!(bad.take_mean_loss(), Err(Error::NonFinite(_))));
    assert!(matches!(bad.checkpoint(), Err(Error::NonFinite(_))));
    cfg.schedule = ScheduleKind::Plateau.schedule(5);
    let mut bad = Trainer::new(Device::Gpu(ctx), flow, cfg, data).unwrap();
    assert!(matches!(bad.train_steps(5), Err(Error::NonFinite(_))));
    assert!(matches!(bad.checkpoint(), Err(Error::NonFinite(_))));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the good checkpoint was touched"
    );
    assert!(Checkpoint::load(&path).is_ok());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn gpu_and_cpu_samplers_agree_for_every_solver() {
    let Some(ctx) = gpu() else { return };
    for geometry in [Geometry::Sphere, Geometry::Simplex] {
        let model = FlowModel::untrained(FlowConfig::new(3, 6, 32, geometry), 2).unwrap();
        for solver in [Solver::Euler, Solver::Midpoint, Solver::Rk4, Solver::Dopri5] {
            let sc = SampleConfig {
                n: 300,
                steps: 8,
                solver,
                seed: 4,
                chunk: Some(128),
                ..Default::default()
            };
            let none = &mut |_, _| {};
            let (g, gs) = sample_with_stats(Device::Gpu(ctx), &model, &sc, none).unwrap();
            let (c, cs) = sample_with_stats(Device::Cpu, &model, &sc, none).unwrap();
            assert_eq!(g.n, 300);
            let stages = solver.tableau().stages();
            if solver == Solver::Dopri5 {
                // Adaptive: whole steps of seven evaluations, about as many on both devices.
                assert!(gs.evaluations % stages == 0 && gs.evaluations >= stages);
                assert!(
                    gs.evaluations.abs_diff(cs.evaluations) <= 2 * stages,
                    "{gs:?} {cs:?}"
                );
            } else {
                assert_eq!(gs.evaluations, 8 * stages);
                assert_eq!(cs.evaluations, 8 * stages);
            }
            let same = g
                .tokens
                .iter()
                .zip(&c.tokens)
                .filter(|(a, b)| a == b)
                .count();
            let frac = same as f64 / g.tokens.len() as f64;
            assert!(
                frac > 0.97,
                "{geometry:?} {solver:?}: GPU and CPU samples agree on only {frac}"
            );
        }
    }
}

#[test]
fn bad_settings_are_errors() {
    let (_, data) = toy(4, 5);
    let wrong = FlowConfig::new(4, 6, 16, Geometry::Sphere);
    assert!(matches!(
        Trainer::new(Device::Cpu, wrong, TrainConfig::default(), data.clone()),
        Err(Error::Shape(_))
    ));
    let flow = FlowConfig::new(4, 5, 16, Geometry::Simplex);
    let ot = TrainConfig {
        ot: OtMode::Exact,
        ..Default::default()
    };
    assert!(Trainer::new(Device::Cpu, flow, ot, data.clone()).is_err());
    let zero = TrainConfig {
        batch: 0,
        ..Default::default()
    };
    assert!(Trainer::new(Device::Cpu, flow, zero, data).is_err());
    let model = FlowModel::untrained(flow, 0).unwrap();
    let none = SampleConfig {
        n: 0,
        ..Default::default()
    };
    assert!(sample(Device::Cpu, &model, &none).is_err());
    assert!("leapfrog".parse::<Solver>().is_err());
}

#[test]
fn cosine_schedule_decays_the_rate_and_reaches_the_optimizer() {
    let s = LrSchedule::Cosine {
        steps: 100,
        floor: 0.1,
    };
    let close = |a: f32, b: f32| (a - b).abs() < 1e-7;
    assert!(close(s.lr_at(1e-3, 0), 1e-3));
    assert!(close(s.lr_at(1e-3, 50), 0.55e-3));
    assert!(close(s.lr_at(1e-3, 100), 1e-4));
    assert!(close(s.lr_at(1e-3, 5000), 1e-4));
    assert!((1..100).all(|i| s.lr_at(1e-3, i) < s.lr_at(1e-3, i - 1)));
    assert_eq!(LrSchedule::Constant.lr_at(3e-4, 77), 3e-4);

    let (_, data) = toy(2, 4);
    let flow = FlowConfig::new(2, 4, 16, Geometry::Sphere);
    let run = |schedule: LrSchedule| {
        let cfg = TrainConfig {
            batch: 16,
            seed: 2,
            schedule,
            ..Default::default()
        };
        let mut tr = Trainer::new(Device::Cpu, flow, cfg, data.clone()).unwrap();
        tr.train_steps(6).unwrap();
        tr.params().unwrap()
    };
    let constant = run(LrSchedule::Constant);
    // A floor of 1 is the constant rate, bit for bit; a decay to 0 changes the parameters.
    let flat = run(LrSchedule::Cosine {
        steps: 6,
        floor: 1.0,
    });
    let decayed = run(LrSchedule::Cosine {
        steps: 6,
        floor: 0.0,
    });
    assert!(constant.iter().zip(&flat).all(|(a, b)| a.data == b.data));
    assert!(constant.iter().zip(&decayed).any(|(a, b)| a.data != b.data));

    for bad in [
        LrSchedule::Cosine {
            steps: 0,
            floor: 0.1,
        },
        LrSchedule::Cosine {
            steps: 10,
            floor: 1.5,
        },
    ] {
        let cfg = TrainConfig {
            schedule: bad,
            ..Default::default()
        };
        let r = Trainer::new(Device::Cpu, flow, cfg, data.clone());
        assert!(matches!(r, Err(Error::InvalidArgument(_))), "{bad:?}");
    }
}

#[test]
fn samplers_report_progress_chunk_by_chunk() {
    let model = FlowModel::untrained(FlowConfig::new(2, 3, 16, Geometry::Sphere), 1).unwrap();
    let sc = SampleConfig {
        n: 300,
        steps: 2,
        chunk: Some(128),
        ..Default::default()
    };
    let want = vec![(128, 300), (256, 300), (300, 300)];
    let mut seen = Vec::new();
    let s = fisherflow::flow::sample_with_progress(Device::Cpu, &model, &sc, &mut |d, n| {
        seen.push((d, n))
    })
    .unwrap();
    assert_eq!(s.n, 300);
    assert_eq!(seen, want);
    let Some(ctx) = gpu() else { return };
    let mut seen = Vec::new();
    fisherflow::flow::sample_with_progress(Device::Gpu(ctx), &model, &sc, &mut |d, n| {
        seen.push((d, n))
    })
    .unwrap();
    assert_eq!(seen, want);
}

#[test]
fn cpu_batches_equal_the_host_reference_bit_for_bit() {
    use fisherflow::flow::batch::{host_batch, HostBatcher};
    // K = 7 puts prior rows across Philox blocks; batch 801 is built on several threads (when
    // there are several) in uneven chunks.
    let (_, data) = toy(3, 7);
    let source = fisherflow::flow::DataSource::from(data.clone());
    let settings = [
        (Geometry::Sphere, OtMode::None, 801),
        (Geometry::Sphere, OtMode::None, 3),
        (Geometry::Sphere, OtMode::Exact, 37),
        (Geometry::Simplex, OtMode::None, 37),
    ];
    for (geometry, ot, batch) in settings {
        let flow = FlowConfig::new(3, 7, 16, geometry);
        let cfg = TrainConfig {
            batch,
            seed: 11,
            ot,
            ..Default::default()
        };
        let mut batcher = HostBatcher::new(&flow, &cfg);
        for step in [0u64, 5, 1 << 33] {
            let (xt, t, ut) = batcher.fill(&flow, &cfg, &source, step).unwrap();
            let (hx, ht, hu) = host_batch(&flow, &cfg, &data, step).unwrap();
            assert_eq!(t, &ht[..], "{geometry:?} {ot:?} step {step}: t");
            assert_eq!(xt, &hx[..], "{geometry:?} {ot:?} step {step}: x_t");
            assert_eq!(ut, &hu[..], "{geometry:?} {ot:?} step {step}: u_t");
        }
    }
}

#[test]
fn fast_prior_normals_equal_the_per_element_reference() {
    use fisherflow::kernels::rng::cpu::{normal_at, normals_into};
    for first in [0usize, 1, 2, 3, 5, 38] {
        let mut out = vec![0f64; 23];
        normals_into(9, 4, 2, first, &mut out);
        for (i, v) in out.iter().enumerate() {
            assert_eq!(*v, normal_at(9, 4, 2, first + i), "element {}", first + i);
        }
    }
}
