//! The convolutional field network (`Arch::Conv`): its gradient by finite differences, the
//! same training steps and samples on the CPU backend and the GPU (f32, and f16 storage close
//! by), the architecture kept by checkpoints, and sequences of L = 1024 training on both
//! backends.

use fisherflow::autodiff::{CpuExecutor, Executor, OptimConfig, Rng};
use fisherflow::data::dna::DnaSource;
use fisherflow::data::SequenceDataset;
use fisherflow::device::Device;
use fisherflow::flow::{
    sample, Conditioning, FlowConfig, FlowModel, Geometry, SampleClasses, SampleConfig,
    TrainConfig, Trainer,
};
use fisherflow::gpu::testing::gpu;
use fisherflow::kernels::Precision;
use fisherflow::nn::{Arch, MlpLoss, Network};

#[path = "support/grad.rs"]
mod grad;
use grad::{check_param_gradients_with, sphere_points};

fn conv_config(l: usize, k: usize, hidden: usize, blocks: usize, kernel: usize) -> FlowConfig {
    let mut f = FlowConfig::new(l, k, hidden, Geometry::Sphere);
    f.mlp.blocks = blocks;
    f.mlp.time_dim = 8;
    f.arch = Arch::Conv { kernel };
    f
}

fn dna(l: usize, n: usize) -> SequenceDataset {
    DnaSource::from_spec(&format!("dna:L={l},classes=3,seed=0"))
        .unwrap()
        .sample(n, 1)
        .unwrap()
}

#[test]
fn the_conv_network_has_finite_difference_gradients() {
    let flow = conv_config(6, 3, 4, 2, 3);
    for (arch, classes) in [(flow.arch, 0), (flow.arch, 2), (Arch::Mlp, 2)] {
        let net = Network::build(&flow.mlp, arch, classes, 0, MlpLoss::Mse, 3).unwrap();
        let b = 2;
        let cfg = OptimConfig::default();
        let mut ex =
            CpuExecutor::<f64>::new(&net.graph, b, &[net.out], Some(net.loss), cfg).unwrap();
        let mut rng = Rng::new(5);
        ex.set_input(Network::X, &sphere_points(&mut rng, b * 6, 3))
            .unwrap();
        ex.set_input(Network::T, &[0.2, 0.7]).unwrap();
        ex.set_input(Network::TARGET, &rng.vec_f32(b * 18, -1.0, 1.0))
            .unwrap();
        if classes > 0 {
            ex.set_input(Network::LABELS, &[1.0, 2.0]).unwrap();
        }
        ex.forward_backward().unwrap();
        let what = format!("{arch:?}, classes {classes}");
        // A spread of entries of every parameter.
        check_param_gradients_with(&mut ex, &net.graph, &[], 5, 1e-5, &what);
    }
}

fn losses(device: Device, flow: FlowConfig, data: &SequenceDataset, steps: usize) -> Vec<f32> {
    let cfg = TrainConfig {
        batch: 8,
        ..TrainConfig::default()
    };
    let mut tr = Trainer::new(device, flow, cfg, data.clone()).unwrap();
    (0..steps)
        .map(|_| {
            tr.train_steps(1).unwrap();
            tr.take_mean_loss().unwrap().unwrap()
        })
        .collect()
}

#[test]
fn conv_training_lowers_the_loss_and_agrees_between_backends() {
    let flow = conv_config(16, 4, 16, 3, 9);
    let data = dna(16, 500);
    let cpu = losses(Device::Cpu, flow, &data, 60);
    let head: f32 = cpu[..10].iter().sum();
    let tail: f32 = cpu[50..].iter().sum();
    assert!(
        tail < 0.8 * head,
        "loss {head} over the first 10 steps, {tail} over the last"
    );
    let Some(ctx) = gpu() else { return };
    let g = losses(Device::Gpu(ctx), flow, &data, 3);
    for (i, (a, b)) in g.iter().zip(&cpu).enumerate() {
        assert!(
            (a - b).abs() <= 1e-3 * b.abs(),
            "step {i}: gpu {a}, cpu {b}"
        );
    }
}

#[test]
fn conv_samples_agree_between_backends_and_checkpoints_keep_the_architecture() {
    let flow = conv_config(12, 4, 8, 2, 5);
    let model = FlowModel::untrained(flow, 2).unwrap();
    let back = FlowModel::from_checkpoint(&model.to_checkpoint().unwrap()).unwrap();
    assert_eq!(back.config.arch, Arch::Conv { kernel: 5 });
    assert_eq!(back.params, model.params);
    // A model written before the architecture was stored reads as the MLP.
    let json = serde_json::to_value(FlowConfig::new(4, 5, 8, Geometry::Sphere)).unwrap();
    let mut obj = json.as_object().unwrap().clone();
    obj.remove("arch");
    let old: FlowConfig = serde_json::from_value(obj.into()).unwrap();
    assert_eq!(old.arch, Arch::Mlp);
    let cfg = SampleConfig {
        n: 16,
        steps: 8,
        ..SampleConfig::default()
    };
    let cpu = sample(Device::Cpu, &model, &cfg).unwrap();
    assert_eq!((cpu.n, cpu.len, cpu.vocab), (16, 12, 4));
    let Some(ctx) = gpu() else { return };
    let g = sample(Device::Gpu(ctx), &model, &cfg).unwrap();
    assert_eq!(
        g.tokens, cpu.tokens,
        "f32 samples differ between the GPU and the CPU"
    );
    if ctx.has_f16() {
        let h = SampleConfig {
            precision: Precision::F16,
            ..cfg.clone()
        };
        let half = sample(Device::Gpu(ctx), &model, &h).unwrap();
        let same = half
            .tokens
            .iter()
            .zip(&cpu.tokens)
            .filter(|(a, b)| a == b)
            .count();
        assert!(
            same * 10 >= cpu.tokens.len() * 9,
            "f16 storage: {same} of {} tokens as in f32",
            cpu.tokens.len()
        );
    }
}

#[test]
fn sequences_of_1024_train_on_both_backends() {
    let flow = conv_config(1024, 4, 8, 2, 9);
    let data = dna(1024, 16);
    let cfg = TrainConfig {
        batch: 2,
        ..TrainConfig::default()
    };
    let mut tr = Trainer::new(Device::Cpu, flow, cfg, data.clone()).unwrap();
    tr.train_steps(2).unwrap();
    let cpu = tr.take_mean_loss().unwrap().unwrap();
    // Σ over 1024 positions of a velocity of norm ~ π/2 per position at mid-time: large,
    // finite.
    assert!(cpu.is_finite() && cpu > 0.0, "loss {cpu}");
    let Some(ctx) = gpu() else { return };
    let mut tr = Trainer::new(Device::Gpu(ctx), flow, cfg, data).unwrap();
    tr.train_steps(2).unwrap();
    let g = tr.take_mean_loss().unwrap().unwrap();
    assert!((g - cpu).abs() <= 1e-3 * cpu, "gpu {g}, cpu {cpu}");
}

#[test]
fn conditional_training_agrees_between_backends_and_labels_are_checked() {
    let mut flow = conv_config(16, 4, 8, 2, 5);
    flow.cond = Conditioning {
        classes: 3,
        drop: 0.25,
        ..Conditioning::default()
    };
    let data = dna(16, 200);
    let cpu = losses(Device::Cpu, flow, &data, 3);
    let model = FlowModel::untrained(flow, 0).unwrap();
    let cfg = SampleConfig {
        n: 8,
        steps: 4,
        classes: SampleClasses::All(1),
        ..SampleConfig::default()
    };
    let a = sample(Device::Cpu, &model, &cfg).unwrap();
    // The class changes the field: another class gives other samples from the same prior.
    let other = sample(
        Device::Cpu,
        &model,
        &SampleConfig {
            classes: SampleClasses::All(2),
            ..cfg.clone()
        },
    )
    .unwrap();
    assert_ne!(a.tokens, other.tokens);
    let bad = sample(
        Device::Cpu,
        &model,
        &SampleConfig {
            classes: SampleClasses::All(3),
            ..cfg.clone()
        },
    );
    assert!(bad.unwrap_err().to_string().contains("--class 3"));
    let unconditional = FlowModel::untrained(conv_config(16, 4, 8, 2, 5), 0).unwrap();
    let bad = sample(Device::Cpu, &unconditional, &cfg);
    assert!(bad.unwrap_err().to_string().contains("unconditional"));
    // Unlabelled data, or data with another number of classes, are refused.
    let mut unlabelled = data.clone();
    unlabelled.labels = None;
    let tc = TrainConfig::default();
    assert!(Trainer::new(Device::Cpu, flow, tc, unlabelled).is_err());
    let mut two = flow;
    two.cond.classes = 2;
    assert!(Trainer::new(Device::Cpu, two, tc, data.clone()).is_err());
    let Some(ctx) = gpu() else { return };
    let g = losses(Device::Gpu(ctx), flow, &data, 3);
    for (i, (a, b)) in g.iter().zip(&cpu).enumerate() {
        assert!(
            (a - b).abs() <= 1e-3 * b.abs(),
            "step {i}: gpu {a}, cpu {b}"
        );
    }
    let gs = sample(Device::Gpu(ctx), &model, &cfg).unwrap();
    assert_eq!(gs.tokens, a.tokens);
}
