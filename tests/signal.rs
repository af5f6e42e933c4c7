//! Models conditioned on a per-position signal track: the gradient through the track's input
//! channels by finite differences, the batch's tracks following the batch's sequences, the same
//! training steps on the CPU backend and the GPU, the setting kept by checkpoints and checked,
//! a model that learns to follow the track it is sampled with, and the likelihood given each
//! sequence's track.

use fisherflow::autodiff::{CpuExecutor, Executor, OptimConfig, Rng};
use fisherflow::data::{SequenceDataset, SignalTracks};
use fisherflow::device::Device;
use fisherflow::flow::cond::{batch_labels, batch_rows, batch_signal};
use fisherflow::flow::nll::{sequence_nll, Divergence, NllConfig};
use fisherflow::flow::train::STREAM_INDEX;
use fisherflow::flow::Solver;
use fisherflow::flow::{
    sample, DataSource, FlowConfig, FlowModel, Geometry, LrSchedule, SampleClasses, SampleConfig,
    TrainConfig, Trainer,
};
use fisherflow::gpu::testing::{devices, gpu};
use fisherflow::nn::{Arch, MlpLoss, Network};
use std::sync::Arc;

#[path = "support/grad.rs"]
mod grad;
use grad::{check_param_gradients, sphere_points};

fn conv_config(l: usize, k: usize, hidden: usize, signal: usize) -> FlowConfig {
    method_config(l, k, hidden, signal, Geometry::Sphere)
}

fn method_config(l: usize, k: usize, hidden: usize, signal: usize, g: Geometry) -> FlowConfig {
    let mut f = FlowConfig::new(l, k, hidden, g);
    f.mlp.blocks = 2;
    f.mlp.time_dim = 8;
    f.arch = Arch::Conv { kernel: 3 };
    f.cond.signal = signal;
    f
}

/// `n` sequences of length `l` over two tokens whose token at each position is the sign of a
/// random track there (1 where the track is positive), with the track attached.
fn sign_data(n: usize, l: usize, seed: u64) -> SequenceDataset {
    let mut rng = Rng::new(seed);
    let track = signed_tracks(&mut rng, n * l);
    let tokens = track.iter().map(|&v| (v > 0.0) as u32).collect();
    let data = SequenceDataset::new(tokens, n, l, 2, None).unwrap();
    let t = SignalTracks::new(track, n, l, 1).unwrap();
    data.with_signal(t).unwrap()
}

/// Values of magnitude in [0.5, 1.5) and random sign.
fn signed_tracks(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let m = rng.range(0.5, 1.5) as f32;
            if rng.below(2) == 0 {
                -m
            } else {
                m
            }
        })
        .collect()
}

#[test]
fn the_gradient_through_the_signal_channels_matches_finite_differences() {
    let (l, k, s, b) = (5, 3, 2, 2);
    let flow = conv_config(l, k, 4, s);
    for classes in [0, 2] {
        let net = Network::build(&flow.mlp, flow.arch, classes, s, MlpLoss::Mse, 3).unwrap();
        assert!(net.signal.is_some());
        let cfg = OptimConfig::default();
        let mut ex =
            CpuExecutor::<f64>::new(&net.graph, b, &[net.out], Some(net.loss), cfg).unwrap();
        let mut rng = Rng::new(9);
        ex.set_input(Network::X, &sphere_points(&mut rng, b * l, k))
            .unwrap();
        ex.set_input(Network::T, &[0.3, 0.8]).unwrap();
        ex.set_input(Network::TARGET, &rng.vec_f32(b * l * k, -1.0, 1.0))
            .unwrap();
        let signal = rng.vec_f32(b * l * s, -2.0, 2.0);
        ex.set_input(Network::SIGNAL, &signal).unwrap();
        if classes > 0 {
            ex.set_input(Network::LABELS, &[0.0, 2.0]).unwrap();
        }
        ex.forward_backward().unwrap();
        // Every entry of every parameter, the input projection's rows of the track included.
        check_param_gradients(&mut ex, &net.graph, &[], &format!("classes {classes}"));
        // The track changes the field.
        let before = ex.output(net.out).unwrap();
        let moved: Vec<f32> = signal.iter().map(|v| v + 0.5).collect();
        ex.set_input(Network::SIGNAL, &moved).unwrap();
        ex.forward().unwrap();
        assert_ne!(ex.output(net.out).unwrap(), before);
    }
    // The MLP reads no track.
    let e = Network::build(&flow.mlp, Arch::Mlp, 0, 1, MlpLoss::Mse, 0).unwrap_err();
    assert!(e.to_string().contains("--arch conv"), "{e}");
}

#[test]
fn the_batch_tracks_are_those_of_the_batch_sequences() {
    // The track of every sequence is its tokens: the batch's tracks must be its one-hot x1's
    // argmax, row for row.
    let (n, l, k) = (37, 6, 4);
    let mut rng = Rng::new(3);
    let tokens: Vec<u32> = (0..n * l).map(|_| rng.below(k as u64) as u32).collect();
    let track = tokens.iter().map(|&t| t as f32).collect();
    let data = SequenceDataset::new(tokens, n, l, k, None)
        .unwrap()
        .with_signal(SignalTracks::new(track, n, l, 1).unwrap())
        .unwrap();
    let flow = conv_config(l, k, 4, 1);
    let cfg = TrainConfig {
        batch: 16,
        seed: 11,
        ..TrainConfig::default()
    };
    for step in [0, 1, 57] {
        let signal = batch_signal(&flow, &cfg, &data, step).unwrap();
        let x1 = DataSource::from(data.clone()).x1_host(cfg.seed, step, STREAM_INDEX, cfg.batch);
        for (r, (s, onehot)) in signal.iter().zip(x1.chunks(k)).enumerate() {
            let tok = onehot.iter().position(|&v| v == 1.0).unwrap();
            assert_eq!(*s as usize, tok, "step {step}, row {r}");
        }
        let rows = batch_rows(&cfg, n, step);
        assert!(rows.iter().any(|&i| i != rows[0]), "one sequence drawn");
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
fn signal_training_agrees_between_backends_and_the_setting_is_checked() {
    let flow = conv_config(12, 2, 8, 1);
    let data = sign_data(100, 12, 1);
    let cpu = losses(Device::Cpu, flow, &data, 3);
    // Data without a track, a model without one, other channels: refused.
    let mut bare = data.clone();
    bare.signal = None;
    let tc = TrainConfig::default();
    let e = Trainer::new(Device::Cpu, flow, tc, bare.clone())
        .err()
        .unwrap();
    assert!(e.to_string().contains("--signal"), "{e}");
    let mut none = flow;
    none.cond.signal = 0;
    assert!(Trainer::new(Device::Cpu, none, tc, data.clone()).is_err());
    let mut two = flow;
    two.cond.signal = 2;
    assert!(Trainer::new(Device::Cpu, two, tc, data.clone()).is_err());
    // Minibatch OT would reorder the sequences against their tracks.
    let ot = TrainConfig {
        ot: fisherflow::flow::OtMode::Exact,
        ..tc
    };
    assert!(Trainer::new(Device::Cpu, flow, ot, data.clone()).is_err());
    // The setting is kept by checkpoints; older ones read as no track.
    let model = FlowModel::untrained(flow, 0).unwrap();
    let back = FlowModel::from_checkpoint(&model.to_checkpoint().unwrap()).unwrap();
    assert_eq!(back.config.cond.signal, 1);
    let mut json = serde_json::to_value(flow).unwrap();
    json["cond"].as_object_mut().unwrap().remove("signal");
    let old: FlowConfig = serde_json::from_value(json).unwrap();
    assert_eq!(old.cond.signal, 0);
    // A trainer for the model without a track refuses the checkpoint of the model with one.
    let mut tr = Trainer::new(Device::Cpu, flow, tc, data.clone()).unwrap();
    let ck = tr.checkpoint().unwrap();
    let mut plain = Trainer::new(Device::Cpu, none, tc, bare).unwrap();
    assert!(plain.restore(&ck).is_err());
    tr.restore(&ck).unwrap();
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
fn signal_samples_agree_between_backends_with_guidance_and_tracks_are_checked() {
    let mut flow = conv_config(10, 3, 8, 2);
    flow.cond.classes = 2;
    flow.cond.drop = 0.1;
    let model = FlowModel::untrained(flow, 4).unwrap();
    let (n, l) = (10, 10);
    let mut rng = Rng::new(2);
    let tracks = SignalTracks::new(rng.vec_f32(n * l * 2, -2.0, 2.0), n, l, 2).unwrap();
    let cfg = SampleConfig {
        n,
        steps: 6,
        chunk: Some(4),
        classes: SampleClasses::All(1),
        guidance: 2.0,
        signal: Some(Arc::new(tracks.clone())),
        ..SampleConfig::default()
    };
    let cpu = sample(Device::Cpu, &model, &cfg).unwrap();
    // Other tracks, other samples from the same prior.
    let moved = SignalTracks::new(tracks.values.iter().map(|v| -v).collect(), n, l, 2).unwrap();
    let other = SampleConfig {
        signal: Some(Arc::new(moved)),
        ..cfg.clone()
    };
    assert_ne!(
        sample(Device::Cpu, &model, &other).unwrap().tokens,
        cpu.tokens
    );
    // No track, a track of other channels, count or length: refused.
    let refuse = |signal: Option<SignalTracks>, want: &str| {
        let c = SampleConfig {
            signal: signal.map(Arc::new),
            ..cfg.clone()
        };
        let e = sample(Device::Cpu, &model, &c).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    };
    refuse(None, "--signal FILE");
    let one = SignalTracks::new(vec![0.5; n * l], n, l, 1).unwrap();
    refuse(Some(one), "1 channels given");
    let few = SignalTracks::new(vec![0.5; 9 * l * 2], 9, l, 2).unwrap();
    refuse(Some(few), "9 tracks");
    let short = SignalTracks::new(vec![0.5; n * 9 * 2], n, 9, 2).unwrap();
    refuse(Some(short), "length 9");
    let plain = FlowModel::untrained(conv_config(10, 3, 8, 0), 4).unwrap();
    let e = sample(
        Device::Cpu,
        &plain,
        &SampleConfig {
            classes: SampleClasses::Null,
            guidance: 1.0,
            ..cfg.clone()
        },
    );
    assert!(e.unwrap_err().to_string().contains("no signal track"));
    let Some(ctx) = gpu() else { return };
    let g = sample(Device::Gpu(ctx), &model, &cfg).unwrap();
    assert_eq!(g.tokens, cpu.tokens, "GPU and CPU samples differ");
}

/// Fraction of the tokens of `tokens` that are the sign of `track` at their position.
fn follows(tokens: &[u32], track: &[f32]) -> f64 {
    let hits = tokens
        .iter()
        .zip(track)
        .filter(|(&t, &v)| t == (v > 0.0) as u32)
        .count();
    hits as f64 / tokens.len() as f64
}

#[test]
fn a_model_learns_to_follow_its_signal_track() {
    // Every token is the sign of the track at its position: without the track each token is a
    // fair coin (0.5 of the tokens right); with it the model can get them all.
    let (l, steps) = (16, 300);
    let flow = conv_config(l, 2, 16, 1);
    let data = sign_data(2000, l, 7);
    let cfg = TrainConfig {
        batch: 32,
        schedule: LrSchedule::Constant,
        optim: fisherflow::autodiff::OptimConfig {
            lr: 3e-3,
            ..Default::default()
        },
        ..TrainConfig::default()
    };
    let mut tr = Trainer::new(Device::Cpu, flow, cfg, data).unwrap();
    tr.train_steps(steps).unwrap();
    let model = FlowModel::from_trainer(&tr).unwrap();
    // Fresh tracks, in chunks of 8 with a partial last one: sample i must follow track i.
    let n = 20;
    let mut rng = Rng::new(99);
    let track = signed_tracks(&mut rng, n * l);
    let sc = SampleConfig {
        n,
        steps: 20,
        chunk: Some(8),
        signal: Some(Arc::new(SignalTracks::new(track.clone(), n, l, 1).unwrap())),
        ..SampleConfig::default()
    };
    let s = sample(Device::Cpu, &model, &sc).unwrap();
    let all = follows(&s.tokens, &track);
    let worst = (0..n)
        .map(|i| follows(&s.tokens[i * l..][..l], &track[i * l..][..l]))
        .fold(1.0, f64::min);
    eprintln!("tokens following the track: {all:.3} (worst sample {worst:.3}; chance 0.5)");
    assert!(all >= 0.9, "{all} of the tokens follow the track");
    assert!(worst >= 0.75, "a sample follows its track at {worst}");
    // Its likelihood reads the track: held-out sequences score far better given their own
    // tracks than given the opposite ones.
    let held = sign_data(12, l, 8);
    let cfg = NllConfig {
        steps: 8,
        ..NllConfig::default()
    };
    let own = mean(&sequence_nll(Device::Cpu, &model, &held, &cfg).unwrap().nats);
    let t = held.signal().unwrap();
    let flipped = t.values.iter().map(|v| -v).collect();
    let other = SignalTracks::new(flipped, t.n, t.len, 1).unwrap();
    let plain = SequenceDataset::new(held.tokens.clone(), held.n, l, 2, None).unwrap();
    let opposite = plain.with_signal(other).unwrap();
    let against = mean(
        &sequence_nll(Device::Cpu, &model, &opposite, &cfg)
            .unwrap()
            .nats,
    );
    eprintln!("nats per sequence given its own track {own:.2}, the opposite track {against:.2}");
    assert!(own + l as f64 * 0.5 < against, "{own} against {against}");
    // The untrained model is at chance.
    let untrained = FlowModel::untrained(flow, 0).unwrap();
    let u = follows(
        &sample(Device::Cpu, &untrained, &sc).unwrap().tokens,
        &track,
    );
    assert!(u < 0.75, "untrained: {u}");
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// `n` random sequences over `k` tokens with random tracks of `s` channels attached.
fn tracked_data(rng: &mut Rng, n: usize, l: usize, k: usize, s: usize) -> SequenceDataset {
    let tokens = (0..n * l).map(|_| rng.below(k as u64) as u32).collect();
    let values = (0..n * l * s)
        .map(|_| rng.range(-1.5, 1.5) as f32)
        .collect();
    let t = SignalTracks::new(values, n, l, s).unwrap();
    SequenceDataset::new(tokens, n, l, k, None)
        .unwrap()
        .with_signal(t)
        .unwrap()
}

#[test]
fn the_likelihood_reads_each_sequences_own_track_on_both_backends() {
    // The sphere and the simplex (the Fisher–Rao flow on the simplex integrates the same way
    // and differs in its prior, infinite at the faces where a random field may take the
    // vertices; Dirichlet FM has no convolutional network, so no track).
    for g in [Geometry::Sphere, Geometry::Simplex] {
        likelihood_reads_each_sequences_own_track(g);
    }
}

/// The likelihood of a signal model of method `g`, given each sequence's track.
fn likelihood_reads_each_sequences_own_track(g: Geometry) {
    let (l, k, s, n) = (6, 3, 2, 7);
    let mut model = FlowModel::untrained(method_config(l, k, 8, s, g), 3).unwrap();
    for p in &mut model.params {
        p.data.iter_mut().for_each(|v| *v *= 1.5);
    }
    let mut rng = Rng::new(21);
    let data = tracked_data(&mut rng, n, l, k, s);
    // Chunks of 4 sequences: one whole and one partial.
    let cfg = NllConfig {
        solver: Solver::Rk4,
        steps: 6,
        chunk: Some(4),
        ..NllConfig::default()
    };
    let mut runs = Vec::new();
    for dev in devices() {
        for div in [Divergence::Exact, Divergence::Hutchinson] {
            let c = NllConfig {
                divergence: div,
                probes: 3,
                ..cfg
            };
            runs.push((dev, div, sequence_nll(dev, &model, &data, &c).unwrap().nats));
        }
    }
    // The GPU agrees with the CPU backend, for both estimators (the same probes).
    for (dev, div, v) in &runs[2..] {
        let cpu = &runs[if *div == Divergence::Exact { 0 } else { 1 }].2;
        for (a, b) in v.iter().zip(cpu) {
            assert!(
                (a - b).abs() < 2e-3 * (1.0 + b.abs()),
                "{g:?} {dev:?} {div:?}: {a} vs {b}"
            );
        }
    }
    // Each sequence is scored given its own track: alone, with its track, it scores the same.
    let exact = &runs[0].2;
    let t = data.signal().unwrap();
    for i in [0, 4, 6] {
        let one = SequenceDataset::new(data.tokens[i * l..][..l].to_vec(), 1, l, k, None)
            .unwrap()
            .with_signal(SignalTracks::new(t.row(i).to_vec(), 1, l, s).unwrap())
            .unwrap();
        let alone = sequence_nll(Device::Cpu, &model, &one, &cfg).unwrap().nats[0];
        assert!(
            (alone - exact[i]).abs() < 1e-4 * (1.0 + alone.abs()),
            "{g:?} sequence {i}: {alone} vs {}",
            exact[i]
        );
    }
    // Other tracks give other values: the track is read.
    let rolled: Vec<usize> = (0..n).map(|i| (i + 1) % n).collect();
    let shuffled = SignalTracks::new(t.gather(&rolled), n, l, s).unwrap();
    let plain = SequenceDataset::new(data.tokens.clone(), n, l, k, None).unwrap();
    let other = sequence_nll(
        Device::Cpu,
        &model,
        &plain.clone().with_signal(shuffled).unwrap(),
        &cfg,
    )
    .unwrap()
    .nats;
    let moved = other
        .iter()
        .zip(exact)
        .filter(|(a, b)| (*a - *b).abs() > 1e-3)
        .count();
    assert!(moved >= n - 1, "{g:?}: {other:?} against {exact:?}");
    // No tracks, or tracks of another channel count: refused, naming the track.
    let e = sequence_nll(Device::Cpu, &model, &plain, &cfg)
        .unwrap_err()
        .to_string();
    assert!(e.contains("signal track"), "{e}");
    let one_channel = SignalTracks::new(vec![0.5; n * l], n, l, 1).unwrap();
    let e = sequence_nll(
        Device::Cpu,
        &model,
        &plain.with_signal(one_channel).unwrap(),
        &cfg,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("signal track of 2"), "{e}");
}

#[test]
fn the_gpu_step_draws_the_labels_and_tracks_of_its_batch() {
    let Some(ctx) = gpu() else { return };
    let (l, n) = (5, 37);
    let mut flow = conv_config(l, 2, 8, 1);
    flow.cond.classes = 3;
    flow.cond.drop = 0.3;
    let mut data = sign_data(n, l, 4);
    let ids = (0..n as u32).map(|i| (i * 7 + 1) % 3).collect();
    data.labels = Some(fisherflow::data::Labels::new(ids, Some(3)).unwrap());
    let cfg = TrainConfig {
        batch: 16,
        seed: 11,
        ..TrainConfig::default()
    };
    let mut tr = Trainer::new(Device::Gpu(ctx), flow, cfg, data.clone()).unwrap();
    let mut dropped = 0;
    for step in 0..6 {
        tr.train_steps(1).unwrap();
        let want = batch_labels(&flow, &cfg, &data, step).unwrap();
        assert_eq!(
            tr.gpu_input(Network::LABELS).unwrap(),
            want,
            "labels of step {step}"
        );
        dropped += want.iter().filter(|&&c| c == flow.cond.null()).count();
        let tracks = batch_signal(&flow, &cfg, &data, step).unwrap();
        assert_eq!(
            tr.gpu_input(Network::SIGNAL).unwrap(),
            tracks,
            "tracks of step {step}"
        );
    }
    // Label dropout took place (0.3 of 96 labels expected).
    assert!(
        (10..=50).contains(&dropped),
        "{dropped} of 96 labels dropped"
    );
}
