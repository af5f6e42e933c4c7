//! Model optimisation of score-difference flow: one step against a CPU reference, fresh
//! latents every step, a generator learning ring8 from scratch, and configuration errors.

use fisherflow::autodiff::{Activation, CpuExecutor, Executor, OptimConfig};
use fisherflow::gpu::testing::gpu;
use fisherflow::gpu::{GpuContext, GpuTensor};
use fisherflow::sdflow::{self, model, ModelConfig, ModelFlow, ParticleConfig};
use fisherflow::Error;

fn upload(ctx: &GpuContext, v: &[f32], d: usize) -> GpuTensor {
    GpuTensor::from_slice(ctx, v, &[v.len() / d, d]).unwrap()
}

fn small(steps: usize, batch: usize, loo: bool) -> ModelConfig {
    ModelConfig {
        flow: ParticleConfig {
            steps,
            sigma_max: 0.8,
            sigma_min: 0.2,
            eta: 1.0,
            seed: 7,
            leave_one_out: loo,
            progress_every: steps,
        },
        batch,
        latent_dim: 3,
        width: 8,
        depth: 2,
        activation: Activation::Silu,
        optim: OptimConfig {
            lr: 1e-2,
            weight_decay: 0.01,
            ..OptimConfig::default()
        },
        init_seed: 11,
    }
}

fn max_abs_diff(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn one_step_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let d = 2;
    let target = sdflow::toy_target("moons", 40, 3).unwrap();
    let tt = upload(ctx, &target, d);
    for (loo, act) in [
        (false, Activation::Silu),
        (true, Activation::LeakyRelu(0.2)),
    ] {
        let b = 16;
        let cfg = ModelConfig {
            activation: act,
            ..small(5, b, loo)
        };
        let mut m = ModelFlow::new(ctx, &tt, cfg.clone()).unwrap();
        let p0 = m.params().unwrap();
        assert_eq!(m.advance(1).unwrap(), 1);
        let z = m.latents().unwrap().to_vec(ctx).unwrap();
        let x = m.generated().to_vec(ctx).unwrap();
        let xt = m.flow().noisy().to_vec(ctx).unwrap();
        let tgt = m.targets().to_vec(ctx).unwrap();
        assert_eq!(m.flow().state().to_vec(ctx).unwrap()[0], 1);
        // The perturbation is σ ε with ε standard normal (loose sanity bound).
        let sigma = cfg.flow.sigma_at(0) as f64;
        let eps2: f64 = xt
            .iter()
            .zip(&x)
            .map(|(&a, &b)| ((a - b) as f64 / sigma).powi(2))
            .sum::<f64>()
            / x.len() as f64;
        assert!((0.3..2.5).contains(&eps2), "mean ε² = {eps2}");

        // Forward pass, score difference and regression target on the CPU in f64.
        let gen = m.generator();
        let mut cpu =
            CpuExecutor::<f64>::new(&gen.graph, b, &[gen.out], Some(gen.loss), cfg.optim).unwrap();
        cpu.load_params(&p0).unwrap();
        cpu.set_input(model::LATENT, &z).unwrap();
        cpu.forward().unwrap();
        let x_cpu = cpu.output(gen.out).unwrap();
        let e = max_abs_diff(&x, &x_cpu.iter().map(|&v| v as f64).collect::<Vec<_>>());
        assert!(e < 1e-5, "g_θ(z): GPU vs CPU {e}");
        let v = sdflow::score_difference_cpu(&xt, &target, &x, d, sigma, loo).unwrap();
        let want: Vec<f64> = x
            .iter()
            .zip(&v)
            .map(|(&xi, &vi)| xi as f64 + cfg.flow.eta as f64 * sigma * sigma * vi)
            .collect();
        let scale = 1.0 + want.iter().fold(0.0f64, |a, b| a.max(b.abs()));
        let e = max_abs_diff(&tgt, &want) / scale;
        assert!(
            e < 1e-4,
            "regression target: GPU vs CPU rel {e} (loo {loo})"
        );
        let moved = max_abs_diff(&tgt, &x.iter().map(|&v| v as f64).collect::<Vec<_>>());
        assert!(moved > 1e-3, "the target should differ from x");

        // One AdamW step on the same (z, target): loss and parameters agree.
        cpu.set_input(model::TARGET, &tgt).unwrap();
        cpu.step().unwrap();
        let want_loss: f64 = x_cpu
            .iter()
            .zip(&tgt)
            .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
            .sum::<f64>()
            / b as f64;
        let gpu_loss = m.executor_mut().take_mean_loss().unwrap().unwrap() as f64;
        let cpu_loss = cpu.loss().unwrap() as f64;
        assert!((gpu_loss - want_loss).abs() < 1e-4 * (1.0 + want_loss));
        assert!((cpu_loss - want_loss).abs() < 1e-5 * (1.0 + want_loss));
        let pg = m.params().unwrap();
        let pc = cpu.params().unwrap();
        let mut changed = 0.0f64;
        for ((g, c), o) in pg.iter().zip(&pc).zip(&p0) {
            assert_eq!(g.name, c.name);
            let cd: Vec<f64> = c.data.iter().map(|&v| v as f64).collect();
            let e = max_abs_diff(&g.data, &cd);
            assert!(e < 2e-5, "{}: GPU vs CPU params after one step {e}", g.name);
            let od: Vec<f64> = o.data.iter().map(|&v| v as f64).collect();
            changed = changed.max(max_abs_diff(&g.data, &od));
        }
        assert!(changed > 1e-3, "the step should move θ");
        assert_eq!(m.executor().step_count().unwrap(), 1);
    }
}

#[test]
fn latents_are_standard_normal_and_fresh_each_step() {
    let Some(ctx) = gpu() else { return };
    let tt = upload(ctx, &sdflow::toy_target("ring8", 64, 1).unwrap(), 2);
    let mut cfg = small(10, 256, false);
    cfg.latent_dim = 8;
    let mut m = ModelFlow::new(ctx, &tt, cfg).unwrap();
    m.advance(1).unwrap();
    let z1 = m.latents().unwrap().to_vec(ctx).unwrap();
    m.advance(1).unwrap();
    let z2 = m.latents().unwrap().to_vec(ctx).unwrap();
    let same = z1.iter().zip(&z2).filter(|(a, b)| a == b).count();
    assert!(same < 4, "{same} latents repeated between steps");
    for z in [&z1, &z2] {
        let n = z.len() as f64;
        let mean = z.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = z.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 0.08, "latent mean {mean}");
        assert!((var - 1.0).abs() < 0.12, "latent variance {var}");
    }
    // The latents differ from the perturbation noise of the same seed and step.
    let xt = m.flow().noisy().to_vec(ctx).unwrap();
    let x = m.generated().to_vec(ctx).unwrap();
    let sigma = m.config().flow.sigma_at(1);
    let close = xt
        .iter()
        .zip(&x)
        .zip(&z2)
        .filter(|((&a, &b), &z)| ((a - b) / sigma - z).abs() < 1e-3)
        .count();
    assert!(close < 4, "{close} latents equal the perturbation noise");
    // advance clamps to the schedule.
    assert_eq!(m.advance(100).unwrap(), 8);
    assert_eq!(m.advance(1).unwrap(), 0);
    assert_eq!(m.steps_done(), 10);
}

#[test]
fn generator_learns_ring8_from_scratch() {
    let Some(ctx) = gpu() else { return };
    let d = 2;
    let target = sdflow::toy_target("ring8", 512, 1).unwrap();
    let held = sdflow::toy_target("ring8", 512, 2).unwrap();
    let (tt, ht) = (upload(ctx, &target, d), upload(ctx, &held, d));
    let steps = 480;
    let cfg = ModelConfig {
        flow: ParticleConfig {
            steps,
            sigma_max: 2.0,
            sigma_min: 0.3,
            eta: 1.0,
            seed: 3,
            leave_one_out: false,
            progress_every: 160,
        },
        batch: 256,
        latent_dim: 4,
        width: 64,
        depth: 2,
        activation: Activation::Silu,
        optim: OptimConfig {
            lr: 3e-3,
            ..OptimConfig::default()
        },
        init_seed: 5,
    };
    let mut m = ModelFlow::new(ctx, &tt, cfg).unwrap();
    let h = 1.0;
    let mmd0 = sdflow::mmd2(ctx, &m.sample_tensor(512, 9).unwrap(), &ht, h).unwrap();
    let mut losses = Vec::new();
    m.run(|p, _| {
        losses.push(p.loss);
        Ok(())
    })
    .unwrap();
    assert_eq!(losses.len(), 3);
    assert_eq!(m.steps_done(), steps);
    let fresh = m.sample(512, 9).unwrap();
    assert!(fresh.iter().all(|v| v.is_finite()));
    let mmd = sdflow::mmd2(ctx, &upload(ctx, &fresh, d), &ht, h).unwrap();
    let mmd_cpu = sdflow::mmd2_cpu(&fresh, &held, d, h).unwrap();
    assert!((mmd - mmd_cpu).abs() < 1e-3, "{mmd} vs CPU {mmd_cpu}");
    // Two target samples differ by about 0.002 at this size.
    let floor = sdflow::mmd2(ctx, &tt, &ht, h).unwrap();
    println!("ring8 generator: MMD² {mmd0:.4} → {mmd:.4} (floor {floor:.4}), losses {losses:?}");
    assert!(mmd0 > 0.3, "initial MMD² {mmd0}");
    assert!(mmd < 0.03, "final MMD² {mmd} (initial {mmd0})");
    assert!(mmd < mmd0 / 20.0);
    // Fresh samples reach the ring: mean radius near 2.
    let r: f64 = fresh
        .chunks(2)
        .map(|p| ((p[0] as f64).powi(2) + (p[1] as f64).powi(2)).sqrt())
        .sum::<f64>()
        / 512.0;
    assert!((r - 2.0).abs() < 0.3, "mean radius {r}");
    // Every one of the 8 modes receives samples (no mode collapse): nearest centre by angle.
    let mut counts = [0usize; 8];
    for p in fresh.chunks(2) {
        let a = (p[1] as f64)
            .atan2(p[0] as f64)
            .rem_euclid(2.0 * std::f64::consts::PI);
        counts[(a / (std::f64::consts::PI / 4.0)).round() as usize % 8] += 1;
    }
    println!("samples per mode: {counts:?}");
    assert!(
        counts.iter().all(|&c| c > 512 / 8 / 3),
        "mode counts {counts:?}"
    );
    // Sampling is deterministic in the seed.
    assert_eq!(fresh, m.sample(512, 9).unwrap());
}

#[test]
fn bad_configs_are_errors() {
    let Some(ctx) = gpu() else { return };
    let tt = upload(ctx, &sdflow::toy_target("ring8", 32, 1).unwrap(), 2);
    let ok = small(4, 8, false);
    assert!(ModelFlow::new(ctx, &tt, ok.clone()).is_ok());
    let bad: Vec<(&str, ModelConfig)> = vec![
        (
            "batch 0",
            ModelConfig {
                batch: 0,
                ..ok.clone()
            },
        ),
        (
            "latent 0",
            ModelConfig {
                latent_dim: 0,
                ..ok.clone()
            },
        ),
        (
            "width 0",
            ModelConfig {
                width: 0,
                ..ok.clone()
            },
        ),
        (
            "depth 0",
            ModelConfig {
                depth: 0,
                ..ok.clone()
            },
        ),
        (
            "gelu",
            ModelConfig {
                activation: Activation::Gelu,
                ..ok.clone()
            },
        ),
        (
            "nan slope",
            ModelConfig {
                activation: Activation::LeakyRelu(f32::NAN),
                ..ok.clone()
            },
        ),
        (
            "loo with batch 1",
            ModelConfig {
                batch: 1,
                ..small(4, 1, true)
            },
        ),
        (
            "negative lr",
            ModelConfig {
                optim: OptimConfig {
                    lr: -1.0,
                    ..ok.optim
                },
                ..ok.clone()
            },
        ),
        (
            "σ_min > σ_max",
            ModelConfig {
                flow: ParticleConfig {
                    sigma_min: 2.0,
                    ..ok.flow.clone()
                },
                ..ok.clone()
            },
        ),
        (
            "0 steps",
            ModelConfig {
                flow: ParticleConfig {
                    steps: 0,
                    ..ok.flow.clone()
                },
                ..ok.clone()
            },
        ),
        (
            "η = 0",
            ModelConfig {
                flow: ParticleConfig {
                    eta: 0.0,
                    ..ok.flow.clone()
                },
                ..ok.clone()
            },
        ),
    ];
    for (what, cfg) in bad {
        assert!(cfg.validate().is_err(), "{what}: validate");
        match ModelFlow::new(ctx, &tt, cfg) {
            Err(Error::InvalidArgument(_)) => {}
            Err(e) => panic!("{what}: unexpected error {e}"),
            Ok(_) => panic!("{what}: accepted"),
        }
    }
    // Target shapes.
    let flat = GpuTensor::from_slice(ctx, &[1.0f32; 8], &[8]).unwrap();
    assert!(matches!(
        ModelFlow::new(ctx, &flat, ok.clone()),
        Err(Error::Shape(_))
    ));
    let wide = GpuTensor::zeros(ctx, &[2, sdflow::MAX_DIM + 1]).unwrap();
    assert!(matches!(
        ModelFlow::new(ctx, &wide, ok.clone()),
        Err(Error::Shape(_))
    ));
    assert!(ok.generator(0).is_err());
    let m = ModelFlow::new(ctx, &tt, ok).unwrap();
    assert!(m.sample(0, 1).is_err());
}
