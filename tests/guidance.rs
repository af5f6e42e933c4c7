//! Classifier-free guidance and per-sample classes: the guided field is `v_null + w·(v_c −
//! v_null)` on both backends, each sample is drawn for its own class, guidance sharpens what a
//! trained conditional model draws, and bad settings are refused before any work.

use fisherflow::data::{Labels, SequenceDataset};
use fisherflow::device::Device;
use fisherflow::flow::devices::{CpuModelField, CpuOde, GpuModelField, GpuOde};
use fisherflow::flow::ode::{OdeDevice, VectorField};
use fisherflow::flow::{
    sample, Conditioning, FieldNet, FlowConfig, FlowModel, Geometry, SampleClasses, SampleConfig,
    TrainConfig, Trainer,
};
use fisherflow::gpu::testing::gpu;
use fisherflow::gpu::GpuTensor;
use fisherflow::kernels::Precision;

#[path = "support/cli.rs"]
mod cli;

const L: usize = 3;
const K: usize = 4;
const CLASSES: usize = 3;

fn conditional(drop: f32) -> FlowConfig {
    let mut f = FlowConfig::new(L, K, 16, Geometry::Sphere);
    f.cond = Conditioning {
        classes: CLASSES,
        drop,
        ..Conditioning::default()
    };
    f
}

/// An untrained conditional model whose parameters are spread out, so that the class moves
/// the field by a visible amount.
fn model() -> FlowModel {
    let mut m = FlowModel::untrained(conditional(0.1), 3).unwrap();
    let mut rng = fisherflow::autodiff::Rng::new(11);
    for p in &mut m.params {
        for v in &mut p.data {
            *v += 0.3 * rng.normal() as f32;
        }
    }
    m
}

/// `rows` points on the product of spheres.
fn points(rows: usize) -> Vec<f32> {
    let mut rng = fisherflow::autodiff::Rng::new(5);
    let mut v = Vec::new();
    for _ in 0..rows * L {
        let z: Vec<f64> = (0..K).map(|_| rng.normal().abs() + 0.05).collect();
        let n = z.iter().map(|x| x * x).sum::<f64>().sqrt();
        v.extend(z.iter().map(|x| (x / n) as f32));
    }
    v
}

/// The CPU field of `model` at `x` for network labels `labels`, guidance `w`.
fn cpu_field(model: &FlowModel, x: &[f32], labels: &[f32], w: f32) -> Vec<f32> {
    let rows = x.len() / (L * K);
    let mut dev = CpuOde::new(Geometry::Sphere, x.len(), K);
    let (a, b) = (dev.buffer().unwrap(), dev.buffer().unwrap());
    dev.bufs[a].copy_from_slice(x);
    let mut f = CpuModelField::new(model, rows, w).unwrap();
    f.set_labels(labels).unwrap();
    f.eval(&mut dev, &a, 0.4, &b).unwrap();
    dev.bufs[b].clone()
}

#[test]
fn the_guided_field_is_the_weighted_combination_on_both_backends() {
    let m = model();
    let cond = m.config.cond;
    let rows = 6;
    let x = points(rows);
    let classes = SampleClasses::Each(vec![0, 1, 2, 2, 1, 0].into());
    let own = cond.chunk_labels(&classes, 0, rows, false);
    let null = vec![cond.null(); rows];
    let vc = cpu_field(&m, &x, &own, 1.0);
    let vn = cpu_field(&m, &x, &null, 1.0);
    let gap = vc
        .iter()
        .zip(&vn)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(gap > 1e-2, "the class moves the field by only {gap}");
    for w in [0.0f32, 2.5] {
        let guided = cpu_field(&m, &x, &cond.chunk_labels(&classes, 0, rows, true), w);
        for (i, ((g, c), n)) in guided.iter().zip(&vc).zip(&vn).enumerate() {
            let want = n + w * (c - n);
            assert!(
                (g - want).abs() <= 1e-5 * (1.0 + want.abs()),
                "w {w}, entry {i}: {g} vs {want}"
            );
        }
        // Still tangent: x · v = 0 per position.
        for (xr, vr) in x.chunks(K).zip(guided.chunks(K)) {
            let d: f32 = xr.iter().zip(vr).map(|(a, b)| a * b).sum();
            assert!(d.abs() < 1e-4, "x·v = {d}");
        }
    }
    let Some(ctx) = gpu() else { return };
    let w = 2.5;
    let want = cpu_field(&m, &x, &cond.chunk_labels(&classes, 0, rows, true), w);
    let mut dev = GpuOde::new(ctx, Geometry::Sphere, [rows, L, K]);
    let net = FieldNet::new(ctx, &m, 2 * rows, Precision::F32).unwrap();
    net.set_labels(&cond.chunk_labels(&classes, 0, rows, true))
        .unwrap();
    let mut field = GpuModelField::new(&mut dev, net, w).unwrap();
    let xs = GpuTensor::from_slice(ctx, &x, &[rows, L, K]).unwrap();
    let out = dev.buffer().unwrap();
    field.eval(&mut dev, &xs, 0.4, &out).unwrap();
    std::mem::take(&mut dev.rec).submit(ctx).unwrap();
    let got = out.to_vec(ctx).unwrap();
    for (i, (g, c)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - c).abs() <= 1e-4 * (1.0 + c.abs()),
            "entry {i}: gpu {g}, cpu {c}"
        );
    }
    // A network of the wrong number of rows for guidance is refused.
    let mut dev = GpuOde::new(ctx, Geometry::Sphere, [rows, L, K]);
    let net = FieldNet::new(ctx, &m, rows, Precision::F32).unwrap();
    assert!(GpuModelField::new(&mut dev, net, w).is_err());
}

#[test]
fn each_sample_is_drawn_for_its_own_class_and_guidance_zero_is_the_null_field() {
    let m = model();
    let n = 10;
    let list: Vec<u32> = (0..n as u32)
        .map(|i| (i * 7 + 1) % CLASSES as u32)
        .collect();
    let base = SampleConfig {
        n,
        steps: 6,
        chunk: Some(4),
        ..SampleConfig::default()
    };
    let with = |classes: SampleClasses, guidance: f32| SampleConfig {
        classes,
        guidance,
        ..base.clone()
    };
    for device in [Some(Device::Cpu), gpu().map(Device::Gpu)]
        .into_iter()
        .flatten()
    {
        let each = sample(
            device,
            &m,
            &with(SampleClasses::Each(list.clone().into()), 2.0),
        )
        .unwrap();
        assert_eq!(
            each.labels.as_ref().map(|l| l.ids.clone()),
            Some(list.clone())
        );
        for c in 0..CLASSES as u32 {
            let all = sample(device, &m, &with(SampleClasses::All(c), 2.0)).unwrap();
            for (i, _) in list.iter().enumerate().filter(|(_, &l)| l == c) {
                assert_eq!(each.row(i), all.row(i), "sample {i} of class {c}");
            }
        }
        // w = 0 is the null-class field: the samples of an unguided null-class run.
        let null = sample(device, &m, &base).unwrap();
        let zero = sample(device, &m, &with(SampleClasses::All(1), 0.0)).unwrap();
        assert_eq!(null.tokens, zero.tokens);
        assert!(null.labels.is_none());
    }
    let Some(ctx) = gpu() else { return };
    // The backends agree on guided samples, for the sphere and for Dirichlet FM (guided
    // logits).
    let mut dfm = FlowConfig::new(L, K, 16, Geometry::Dirichlet);
    dfm.cond = conditional(0.1).cond;
    let dfm = FlowModel::untrained(dfm, 4).unwrap();
    for model in [&m, &dfm] {
        let cfg = with(SampleClasses::Each(list.clone().into()), 2.0);
        let g = sample(Device::Gpu(ctx), model, &cfg).unwrap();
        let c = sample(Device::Cpu, model, &cfg).unwrap();
        let same = g
            .tokens
            .iter()
            .zip(&c.tokens)
            .filter(|(a, b)| a == b)
            .count();
        let what = model.config.geometry;
        assert!(
            same * 20 >= g.tokens.len() * 19,
            "{what:?}: {same} of {} tokens agree",
            g.tokens.len()
        );
    }
}

#[test]
fn bad_classes_and_guidance_are_refused_before_any_work() {
    let m = model();
    let cfg = |classes: SampleClasses, guidance: f32| SampleConfig {
        n: 4,
        steps: 2,
        classes,
        guidance,
        ..SampleConfig::default()
    };
    let err = |c: SampleConfig, model: &FlowModel| {
        sample(Device::Cpu, model, &c).unwrap_err().to_string()
    };
    let e = err(cfg(SampleClasses::Each(vec![0, 1, 2].into()), 1.0), &m);
    assert!(e.contains("3 labels for 4 samples"), "{e}");
    let e = err(cfg(SampleClasses::Each(vec![0, 1, 3, 0].into()), 1.0), &m);
    assert!(e.contains("sample 2") && e.contains("3 classes"), "{e}");
    let e = err(cfg(SampleClasses::Null, 2.0), &m);
    assert!(e.contains("needs --class"), "{e}");
    let e = err(cfg(SampleClasses::All(0), f32::NAN), &m);
    assert!(e.contains("finite"), "{e}");
    let plain = FlowModel::untrained(FlowConfig::new(L, K, 16, Geometry::Sphere), 0).unwrap();
    let e = err(cfg(SampleClasses::All(0), 1.0), &plain);
    assert!(e.contains("unconditional"), "{e}");
    let e = err(cfg(SampleClasses::Null, 2.0), &plain);
    assert!(e.contains("unconditional"), "{e}");
    // Guidance on a model trained without label dropout warns; with dropout it does not.
    let warn = conditional(0.0).cond.guidance_warning(2.0).unwrap();
    assert!(warn.contains("label dropout"), "{warn}");
    assert!(conditional(0.1).cond.guidance_warning(2.0).is_none());
    assert!(conditional(0.0).cond.guidance_warning(1.0).is_none());
}

/// Sequences of class `c`: each token is `c` with probability 0.6, else uniform over the
/// others.
fn labelled_data(n: usize) -> SequenceDataset {
    let mut rng = fisherflow::autodiff::Rng::new(2);
    let mut tokens = Vec::new();
    let mut ids = Vec::new();
    for i in 0..n {
        let c = (i % CLASSES) as u32;
        ids.push(c);
        for _ in 0..L {
            let u = rng.uniform();
            tokens.push(if u < 0.6 {
                c
            } else {
                let o = ((u - 0.6) / 0.4 * (K - 1) as f64) as u32 % (K as u32 - 1);
                if o >= c {
                    o + 1
                } else {
                    o
                }
            });
        }
    }
    let mut d = SequenceDataset::new(tokens, n, L, K, None).unwrap();
    d.labels = Some(Labels::new(ids, Some(CLASSES)).unwrap());
    d
}

/// The fraction of tokens equal to their sequence's label.
fn on_class(s: &SequenceDataset) -> f64 {
    let ids = &s.labels.as_ref().unwrap().ids;
    let hits = (0..s.n)
        .map(|i| s.row(i).iter().filter(|&&t| t == ids[i]).count())
        .sum::<usize>();
    hits as f64 / (s.n * s.len) as f64
}

#[test]
fn guidance_sharpens_the_classes_of_a_trained_conditional_model() {
    let flow = conditional(0.2);
    let cfg = TrainConfig {
        batch: 128,
        optim: fisherflow::autodiff::OptimConfig {
            lr: 3e-3,
            ..Default::default()
        },
        ..TrainConfig::default()
    };
    let mut tr = Trainer::new(Device::Cpu, flow, cfg, labelled_data(3000)).unwrap();
    tr.train_steps(600).unwrap();
    let m = FlowModel::from_trainer(&tr).unwrap();
    let n = 3000;
    let list: Vec<u32> = (0..n as u32).map(|i| i % CLASSES as u32).collect();
    let acc = |w: f32| {
        let sc = SampleConfig {
            n,
            steps: 40,
            classes: SampleClasses::Each(list.clone().into()),
            guidance: w,
            ..SampleConfig::default()
        };
        on_class(&sample(Device::Cpu, &m, &sc).unwrap())
    };
    let (a0, a1, a2) = (acc(0.0), acc(1.0), acc(2.0));
    // The data put 60 % of tokens on the class; the null field knows no class (~1/K of them
    // on an unrelated label, here a third by the data's mixture), guidance 2 more than 60 %.
    assert!(a0 < 0.4, "guidance 0: {a0}");
    assert!(a1 > 0.5, "guidance 1: {a1}");
    assert!(a2 > a1 + 0.03, "guidance 2: {a2}, guidance 1: {a1}");
}

#[test]
fn sample_cli_takes_a_labels_file_and_writes_class_headers() {
    let dir = cli::tmpdir("guidance-cli");
    let model = dir.join("m.safetensors");
    let m = model.to_str().unwrap();
    let train = |drop: &str, out: &str| {
        cli::run(&[
            "train",
            "--data",
            "dna:L=8,classes=3,seed=1",
            "--conditional",
            "--cond-drop",
            drop,
            "--steps",
            "3",
            "--batch",
            "8",
            "--hidden",
            "8",
            "--cpu",
            "--out",
            out,
        ])
    };
    let o = train("0.2", m);
    assert!(o.status.success(), "{}", cli::text(&o));
    let labels = dir.join("labels.txt");
    std::fs::write(&labels, "2\n0\n1\n2\n").unwrap();
    let out = dir.join("s.fa");
    let o = cli::run(&[
        "sample",
        "--model",
        m,
        "--n",
        "4",
        "--steps",
        "4",
        "--class",
        labels.to_str().unwrap(),
        "--guidance",
        "2",
        "--cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", cli::text(&o));
    let fa = std::fs::read_to_string(&out).unwrap();
    let heads: Vec<&str> = fa.lines().filter(|l| l.starts_with('>')).collect();
    assert_eq!(heads.len(), 4, "{fa}");
    for (h, c) in heads.iter().zip(["2", "0", "1", "2"]) {
        assert!(h.ends_with(&format!("class={c}")), "{h}");
    }
    // Three labels for four samples, a class the model lacks, guidance without a class.
    std::fs::write(&labels, "2\n0\n1\n").unwrap();
    let bad = |extra: &[&str], want: &[&str]| {
        let mut args = vec![
            "sample", "--model", m, "--n", "4", "--cpu", "--force", "--out",
        ];
        args.push(out.to_str().unwrap());
        args.extend_from_slice(extra);
        let o = cli::run(&args);
        let t = cli::text(&o);
        assert!(!o.status.success(), "{extra:?} ran: {t}");
        for w in want {
            assert!(t.contains(w), "{extra:?}: {t}");
        }
    };
    bad(
        &["--class", labels.to_str().unwrap()],
        &["--class", "3 labels for 4 samples"],
    );
    bad(&["--class", "7"], &["--class 7", "3 classes"]);
    bad(&["--guidance", "2"], &["--guidance", "--class"]);
    bad(&["--class", "no-such-file"], &["--class no-such-file"]);
    // A model trained without label dropout samples with a warning.
    let plain = dir.join("p.safetensors");
    let o = train("0", plain.to_str().unwrap());
    assert!(o.status.success(), "{}", cli::text(&o));
    let o = cli::run(&[
        "sample",
        "--model",
        plain.to_str().unwrap(),
        "--n",
        "4",
        "--steps",
        "2",
        "--class",
        "1",
        "--guidance",
        "2",
        "--cpu",
        "--force",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", cli::text(&o));
    assert!(
        cli::text(&o).contains("without label dropout"),
        "{}",
        cli::text(&o)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
