//! The likelihood of every kind of model `train` makes: convolutional networks,
//! class-conditional models and the simplex methods (linear FM, the Fisher–Rao flow on the
//! simplex, Dirichlet FM). The exact divergence against an analytic one and against finite
//! differences of the field along tangent directions; Hutchinson within three standard errors
//! of exact; a zero field giving the prior; the density integrating to one over the segment
//! (K = 2, L = 1); the Dirichlet kernels and the flat probe projection against their CPU
//! references; the GPU and CPU paths agreeing; a trained conditional model scoring sequences
//! better under their own class.

use fisherflow::autodiff::{CpuExecutor, Executor, OptimConfig};
use fisherflow::data::{Labels, SequenceDataset};
use fisherflow::device::Device;
use fisherflow::flow::dirichlet::CTable;
use fisherflow::flow::nll::kernels::{self as nk, Probes};
use fisherflow::flow::nll::{
    self, dirichlet as nd, divergence, log_density, log_density_given, log_dirichlet1,
    log_dirichlet_half, log_prior, sequence_nll, sequence_nll_given, Divergence, Given, NllConfig,
    Protocol,
};
use fisherflow::flow::{
    Conditioning, FlowConfig, FlowModel, Geometry, Solver, TrainConfig, Trainer,
};
use fisherflow::gpu::testing::{devices, gpu};
use fisherflow::gpu::{GpuTensor, Recorder};
use fisherflow::kernels::rng::cpu::{dirichlet1, sphere_prior};
use fisherflow::nn::{Arch, Network};
use fisherflow::rng::Rng;

fn exact() -> NllConfig {
    NllConfig {
        divergence: Divergence::Exact,
        ..Default::default()
    }
}

/// An untrained model of method `g` with weights large enough for an O(1) field.
fn model(l: usize, k: usize, g: Geometry, arch: Arch, classes: usize, seed: u64) -> FlowModel {
    let mut cfg = FlowConfig::new(l, k, 16, g);
    cfg.mlp.time_dim = 8;
    cfg.arch = arch;
    cfg.cond = Conditioning {
        classes,
        drop: 0.0,
        ..Conditioning::default()
    };
    let mut m = FlowModel::untrained(cfg, seed).unwrap();
    for p in &mut m.params {
        p.data.iter_mut().for_each(|v| *v *= 1.5);
    }
    m
}

fn scaled(mut m: FlowModel, f: f32) -> FlowModel {
    for p in &mut m.params {
        p.data.iter_mut().for_each(|v| *v *= f);
    }
    m
}

const CONV: Arch = Arch::Conv { kernel: 3 };

/// The kinds of model beyond the unconditional MLP on the sphere.
fn kinds() -> Vec<(&'static str, FlowModel)> {
    vec![
        ("conv", model(3, 3, Geometry::Sphere, CONV, 0, 1)),
        (
            "conditional mlp",
            model(2, 3, Geometry::Sphere, Arch::Mlp, 3, 2),
        ),
        (
            "conditional conv",
            model(3, 3, Geometry::Sphere, CONV, 2, 3),
        ),
        ("linear FM", model(2, 4, Geometry::Simplex, Arch::Mlp, 0, 4)),
        ("linear FM conv", model(3, 3, Geometry::Simplex, CONV, 0, 5)),
        // A weak field: an arbitrary one carries points out of the simplex, where the
        // sampler's clamp puts them on a face and Dir(½) is infinite.
        (
            "Fisher-Rao simplex",
            scaled(
                model(2, 3, Geometry::FisherRaoSimplex, Arch::Mlp, 0, 6),
                0.3,
            ),
        ),
        (
            "Dirichlet FM",
            model(2, 3, Geometry::Dirichlet, Arch::Mlp, 0, 7),
        ),
        (
            "conditional Dirichlet FM",
            model(2, 4, Geometry::Dirichlet, Arch::Mlp, 2, 8),
        ),
    ]
}

/// Points where a model of method `g` lives: the orthants, or the simplices (halfway from
/// `Dir(1)` draws to the centre, away from the faces, where an arbitrary field can carry a
/// point out of the simplex within a few steps).
fn points(g: Geometry, n: usize, l: usize, k: usize, seed: u64) -> Vec<f32> {
    match g {
        Geometry::Sphere => sphere_prior(seed, 0, 0, n * l, k),
        _ => dirichlet1(seed, 0, 0, n * l, k)
            .iter()
            .map(|&p| 0.5 * p + 0.5 / k as f32)
            .collect(),
    }
}

/// The model's field at one sequence `x` (f64 network; Dirichlet FM's mixture in f64 with the
/// sampler's table), for the null class or `label`.
fn field_f64(model: &FlowModel, x: &[f64], t: f32, label: Option<u32>) -> Vec<f64> {
    let k = model.config.mlp.categories;
    let net = model.config.network(0).unwrap();
    let mut ex =
        CpuExecutor::<f64>::new(&net.graph, 1, &[net.out], None, OptimConfig::default()).unwrap();
    ex.load_params(&model.params).unwrap();
    ex.set_input(Network::T, &[t]).unwrap();
    if net.labels.is_some() {
        let c = label.map_or(model.config.cond.null(), |c| c as f32);
        ex.set_input(Network::LABELS, &[c]).unwrap();
    }
    let xs: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    ex.set_input(Network::X, &xs).unwrap();
    ex.forward().unwrap();
    let out: Vec<f64> = ex
        .output(net.out)
        .unwrap()
        .iter()
        .map(|&v| v as f64)
        .collect();
    if model.config.geometry != Geometry::Dirichlet {
        return out;
    }
    let table = CTable::new(t as f64, k);
    let mut v = vec![0.0; x.len()];
    for ((o, xr), zr) in v.chunks_mut(k).zip(x.chunks(k)).zip(out.chunks(k)) {
        let m = zr.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = zr.iter().map(|z| (z - m).exp()).collect();
        let se: f64 = e.iter().sum();
        let pc: Vec<f64> = e
            .iter()
            .zip(xr)
            .map(|(a, &xi)| a / se * table.at(xi))
            .collect();
        let s: f64 = pc.iter().sum();
        for ((oj, &p), &xj) in o.iter_mut().zip(&pc).zip(xr) {
            *oj = p - xj * s;
        }
    }
    v
}

/// `tr(𝒫 J_v 𝒫) = Σ_j d_jᵀ J_v d_j` over the projected basis `d_j = 𝒫 e_j` (`P_x` on the
/// sphere, `I − 11ᵀ/K` on the simplex), `J_v d_j` by central differences along `d_j`.
fn fd_divergence(model: &FlowModel, x: &[f32], t: f32, label: Option<u32>) -> f64 {
    let k = model.config.mlp.categories;
    let flat = model.config.geometry != Geometry::Sphere;
    let xs: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let h = 1e-4;
    let mut div = 0.0;
    for j in 0..x.len() {
        let o = (j / k) * k;
        let mut d = vec![0.0; x.len()];
        for i in o..o + k {
            let e = (i == j) as u8 as f64;
            d[i] = if flat {
                e - 1.0 / k as f64
            } else {
                e - xs[j] * xs[i]
            };
        }
        let at = |s: f64| -> Vec<f64> {
            let y: Vec<f64> = xs.iter().zip(&d).map(|(a, b)| a + s * b).collect();
            field_f64(model, &y, t, label)
        };
        let (up, dn) = (at(h), at(-h));
        div += (0..x.len())
            .map(|i| d[i] * (up[i] - dn[i]) / (2.0 * h))
            .sum::<f64>();
    }
    div
}

#[test]
fn exact_divergence_matches_finite_differences_for_every_kind() {
    for (name, m) in kinds() {
        let (l, k, g) = (
            m.config.mlp.seq_len,
            m.config.mlp.categories,
            m.config.geometry,
        );
        let x = points(g, 3, l, k, 5);
        let t = if g == Geometry::Dirichlet { 2.5 } else { 0.6 };
        for dev in devices() {
            let got = divergence(dev, &m, &x, Given::default(), t, &exact()).unwrap();
            for (s, gv) in got.iter().enumerate() {
                let want = fd_divergence(&m, &x[s * l * k..(s + 1) * l * k], t, None);
                assert!(
                    (gv - want).abs() < 3e-3 * (1.0 + want.abs()),
                    "{name} seq {s}: {gv} vs {want} on {dev:?}"
                );
            }
        }
    }
}

/// A linear FM model whose network is exactly `f(p) = A·p` (LeakyReLU of slope 1, the block
/// adding zero, the output layer copying), unprojected.
fn linear_simplex_model(l: usize, k: usize, a: &[f64]) -> FlowModel {
    let w = l * k;
    let mut cfg = FlowConfig::new(l, k, w, Geometry::Simplex);
    (cfg.mlp.blocks, cfg.mlp.time_dim, cfg.mlp.slope) = (1, 4, 1.0);
    let mut m = FlowModel::untrained(cfg, 1).unwrap();
    for p in &mut m.params {
        p.data.iter_mut().for_each(|v| *v = 0.0);
        let cols = *p.shape.last().unwrap();
        match p.name.as_str() {
            "input.weight" => {
                (0..w).for_each(|i| (0..w).for_each(|j| p.data[i * cols + j] = a[j * w + i] as f32))
            }
            "output.weight" => (0..w).for_each(|i| p.data[i * cols + i] = 1.0),
            _ => {}
        }
    }
    m
}

#[test]
fn exact_divergence_of_a_linear_field_on_the_simplex_is_analytic() {
    for (l, k) in [(1, 3), (2, 4)] {
        let w = l * k;
        let mut r = Rng::new(3 + w as u64);
        let a: Vec<f64> = (0..w * w).map(|_| r.range(-1.0, 1.0)).collect();
        let m = linear_simplex_model(l, k, &a);
        // tr(Π A_ll Π) = tr A_ll − 1ᵀA_ll1/K per position, whatever the point.
        let want: f64 = (0..l)
            .map(|p| {
                let o = p * k;
                let blk = |i: usize, j: usize| a[(o + i) * w + o + j];
                let tr: f64 = (0..k).map(|i| blk(i, i)).sum();
                let all: f64 = (0..k)
                    .flat_map(|i| (0..k).map(move |j| (i, j)))
                    .map(|(i, j)| blk(i, j))
                    .sum();
                tr - all / k as f64
            })
            .sum();
        let x = dirichlet1(2, 0, 0, 4 * l, k);
        for dev in devices() {
            for got in divergence(dev, &m, &x, Given::default(), 0.3, &exact()).unwrap() {
                assert!(
                    (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                    "{got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn hutchinson_is_within_three_standard_errors_of_exact_for_every_kind() {
    for (name, m) in kinds() {
        let (l, k, g) = (
            m.config.mlp.seq_len,
            m.config.mlp.categories,
            m.config.geometry,
        );
        let one = points(g, 1, l, k, 9);
        let n = 300;
        let x: Vec<f32> = one.iter().copied().cycle().take(n * l * k).collect();
        let t = if g == Geometry::Dirichlet { 1.5 } else { 0.4 };
        for dev in devices() {
            let ex = divergence(dev, &m, &one, Given::default(), t, &exact()).unwrap()[0];
            let cfg = NllConfig {
                divergence: Divergence::Hutchinson,
                probes: 1,
                seed: 17,
                ..Default::default()
            };
            let est = divergence(dev, &m, &x, Given::default(), t, &cfg).unwrap();
            let mean = est.iter().sum::<f64>() / n as f64;
            let var = est.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            let se = (var / n as f64).sqrt();
            assert!(se > 1e-4, "{name}: the probes vary: se {se}");
            assert!(
                (mean - ex).abs() < 3.0 * se,
                "{name} on {dev:?}: Hutchinson {mean} ± {se}, exact {ex}"
            );
        }
    }
}

#[test]
fn a_zero_field_gives_exactly_the_prior_for_every_method_and_network() {
    let (l, k) = (3, 4);
    for (g, arch, classes) in [
        (Geometry::Sphere, CONV, 0),
        (Geometry::Sphere, Arch::Mlp, 2),
        (Geometry::Simplex, Arch::Mlp, 0),
        (Geometry::Simplex, CONV, 0),
        (Geometry::FisherRaoSimplex, Arch::Mlp, 0),
    ] {
        let mut m = model(l, k, g, arch, classes, 2);
        for p in &mut m.params {
            p.data.iter_mut().for_each(|v| *v = 0.0);
        }
        let x = points(g, 5, l, k, 4);
        let labels = (classes > 0).then(|| vec![0, 1, 1, 0, 1]);
        for dev in devices() {
            for div in [Divergence::Exact, Divergence::Hutchinson] {
                let cfg = NllConfig {
                    divergence: div,
                    steps: 3,
                    ..Default::default()
                };
                let d =
                    log_density_given(dev, &m, &x, given(labels.as_deref()), 0.9, &cfg).unwrap();
                for (s, &v) in d.log_p.iter().enumerate() {
                    let want = match g {
                        Geometry::Sphere => l as f64 * log_prior(k),
                        Geometry::FisherRaoSimplex => x[s * l * k..(s + 1) * l * k]
                            .chunks(k)
                            .map(log_dirichlet_half)
                            .sum(),
                        _ => l as f64 * log_dirichlet1(k),
                    };
                    assert!((v - want).abs() < 1e-5, "{g:?} {arch:?}: {v} vs {want}");
                }
            }
        }
    }
}

/// A K = 2, L = 1 model on the simplex whose field is `a·tent(p₀)·(1, −1)` (after the mean is
/// removed), `tent(p) = min(p, 1 − p)`: ReLU hidden units `p₀` and `(p₀ − ½)⁺`, zero blocks.
/// It vanishes at both vertices, so the flow keeps the segment.
fn tent_model(g: Geometry, a: f32) -> FlowModel {
    let mut cfg = FlowConfig::new(1, 2, 2, g);
    (cfg.mlp.blocks, cfg.mlp.time_dim, cfg.mlp.slope) = (1, 4, 0.0);
    let mut m = FlowModel::untrained(cfg, 1).unwrap();
    for p in &mut m.params {
        p.data.iter_mut().for_each(|v| *v = 0.0);
        let cols = *p.shape.last().unwrap();
        match p.name.as_str() {
            // Hidden 0 = p₀, hidden 1 = p₀ − ½ (then ReLU).
            "input.weight" => (p.data[0], p.data[1]) = (1.0, 1.0),
            "input.bias" => p.data[1] = -0.5,
            // v = a·(h₀ − 2h₁)·(1, −1), tangent to the segment.
            "output.weight" => {
                (p.data[0], p.data[1]) = (a, -a);
                (p.data[cols], p.data[cols + 1]) = (-2.0 * a, 2.0 * a);
            }
            _ => {}
        }
    }
    m
}

/// `∫ exp(log p_{t1})` over the segment `p = (s, 1 − s)` by the midpoint rule in `θ`,
/// `s = sin²θ` (`ds = sin 2θ dθ`; smooth where `Dir(½)` is not).
fn segment_mass(dev: Device, m: &FlowModel, t1: f32, cfg: &NllConfig) -> f64 {
    let n = 500;
    let dth = std::f64::consts::FRAC_PI_2 / n as f64;
    let th: Vec<f64> = (0..n).map(|i| (i as f64 + 0.5) * dth).collect();
    let x: Vec<f32> = th
        .iter()
        .flat_map(|t| {
            let s = t.sin().powi(2);
            [s as f32, (1.0 - s) as f32]
        })
        .collect();
    let d = log_density(dev, m, &x, t1, cfg).unwrap();
    d.log_p
        .iter()
        .zip(&th)
        .map(|(lp, t)| lp.exp() * (2.0 * t).sin() * dth)
        .sum()
}

#[test]
fn the_density_integrates_to_one_over_the_segment() {
    let cfg = NllConfig {
        solver: Solver::Rk4,
        steps: 64,
        ..exact()
    };
    let dirichlet = model(1, 2, Geometry::Dirichlet, Arch::Mlp, 0, 12);
    for (name, m, t1) in [
        ("linear FM", tent_model(Geometry::Simplex, 1.5), 1.0),
        (
            "Fisher-Rao simplex",
            tent_model(Geometry::FisherRaoSimplex, 1.5),
            1.0,
        ),
        (
            "Dirichlet FM",
            dirichlet,
            fisherflow::flow::dirichlet::T_MAX,
        ),
    ] {
        for dev in devices() {
            let mass = segment_mass(dev, &m, t1, &cfg);
            assert!((mass - 1.0).abs() < 1e-3, "{name} on {dev:?}: mass {mass}");
        }
        // Not the prior: the density moved.
        let d = log_density(Device::Cpu, &m, &[0.3, 0.7, 0.6, 0.4], t1, &cfg).unwrap();
        let prior = |p: f32| match m.config.geometry {
            Geometry::FisherRaoSimplex => log_dirichlet_half(&[p, 1.0 - p]),
            _ => 0.0,
        };
        assert!(
            (d.log_p[0] - prior(0.3)).abs() > 0.1 && (d.log_p[1] - prior(0.6)).abs() > 0.1,
            "{name}: {:?}",
            d.log_p
        );
    }
}

#[test]
fn dirichlet_and_flat_probe_kernels_match_their_reference() {
    let Some(ctx) = gpu() else { return };
    let (b, l, k) = (8, 3, 5);
    let w = l * k;
    let table = CTable::new(2.0, k);
    let tab: Vec<f32> = table.values.iter().map(|&v| v as f32).collect();
    for exact in [false, true] {
        let m = if exact { w } else { 6 };
        let s = Probes {
            b,
            m,
            l,
            k,
            exact,
            flat: true,
        };
        let mut x = dirichlet1(2, 0, 0, b * l, k);
        x[3] = 0.0; // a point on a face
        let mut r = Rng::new(4);
        let z: Vec<f32> = (0..m * b * w).map(|_| r.range(-1.0, 1.0) as f32).collect();
        let logits: Vec<f32> = (0..b * w).map(|_| r.range(-2.0, 2.0) as f32).collect();
        let t = |v: &[f32]| GpuTensor::from_slice(ctx, v, &[v.len()]).unwrap();
        let (xt, zt, lt, tt) = (t(&x), t(&z), t(&logits), t(&tab));
        let zeros = || t(&vec![0.0; m * b * w]);
        let (xr, u, cot, out) = (zeros(), zeros(), zeros(), t(&[0.5; 8]));
        let mut rec = Recorder::new();
        nk::probe_rows(ctx, &mut rec, &s, &xt, &zt, &xr, &u).unwrap();
        nd::cotangent(ctx, &mut rec, &s, &xt, &lt, &u, &tt, &cot).unwrap();
        nd::div_terms(ctx, &mut rec, &s, &xt, &lt, &tt, -0.5, &out).unwrap();
        rec.run(ctx).unwrap();
        let (_, wu) = nk::probe_rows_cpu(&s, &x, &z).unwrap();
        // Flat projections are tangent to the simplex.
        for row in wu.chunks(k) {
            assert!(row.iter().sum::<f64>().abs() < 1e-9);
        }
        let wcot = nd::cotangent_cpu(&s, &x, &logits, &wu, &table);
        let wdiv = nd::div_terms_cpu(&s, &x, &logits, &table);
        let close = |a: &[f32], b: &[f64], tol: f64| {
            a.iter()
                .zip(b)
                .all(|(&p, &q)| (p as f64 - q).abs() < tol * (1.0 + q.abs()))
        };
        assert!(close(&u.to_vec(ctx).unwrap(), &wu, 1e-6));
        assert!(
            close(&cot.to_vec(ctx).unwrap(), &wcot, 1e-4),
            "exact {exact}"
        );
        let want: Vec<f64> = wdiv.iter().map(|v| 0.5 - 0.5 * v).collect();
        assert!(close(&out.to_vec(ctx).unwrap(), &want, 1e-4), "{want:?}");
    }
}

#[test]
fn gpu_and_cpu_paths_agree_for_every_kind() {
    let Some(ctx) = gpu() else { return };
    for (name, m) in kinds() {
        let (l, k, g) = (
            m.config.mlp.seq_len,
            m.config.mlp.categories,
            m.config.geometry,
        );
        let n = 10;
        let x = points(g, n, l, k, 6);
        let labels: Option<Vec<u32>> = (m.config.cond.classes > 0).then(|| {
            (0..n as u32)
                .map(|i| i % m.config.cond.classes as u32)
                .collect()
        });
        let t1 = if g == Geometry::Dirichlet { 4.0 } else { 0.9 };
        for (div, solver) in [
            (Divergence::Exact, Solver::Rk4),
            (Divergence::Hutchinson, Solver::Midpoint),
        ] {
            let cfg = NllConfig {
                divergence: div,
                probes: 3,
                solver,
                steps: 6,
                chunk: Some(4),
                ..Default::default()
            };
            let ls = labels.as_deref();
            let run = |dev| log_density_given(dev, &m, &x, given(ls), t1, &cfg);
            let c = run(Device::Cpu).unwrap_or_else(|e| panic!("{name} {div:?}: {e}"));
            let gp = run(Device::Gpu(ctx)).unwrap();
            assert_eq!(c.evaluations, gp.evaluations);
            for (a, b) in c.log_p.iter().zip(&gp.log_p) {
                assert!(
                    (a - b).abs() < 2e-3 * (1.0 + a.abs()),
                    "{name} {div:?}: {a} vs {b}"
                );
            }
        }
    }
}

/// Two classes of sequences over K = 3, L = 2: class 0 all token 0, class 1 all token 1.
fn two_class_data(n: usize) -> SequenceDataset {
    let (l, k) = (2, 3);
    let labels: Vec<u32> = (0..n as u32).map(|i| i % 2).collect();
    let tokens: Vec<u32> = labels.iter().flat_map(|&c| [c; 2]).collect();
    let mut d = SequenceDataset::new(tokens, n, l, k, None).unwrap();
    d.labels = Some(Labels::new(labels, Some(2)).unwrap());
    d
}

#[test]
fn a_trained_conditional_model_scores_sequences_best_under_their_class() {
    let data = two_class_data(512);
    let mut flow = FlowConfig::new(2, 3, 32, Geometry::Sphere);
    flow.cond = Conditioning {
        classes: 2,
        drop: 0.0,
        ..Conditioning::default()
    };
    let cfg = TrainConfig {
        batch: 64,
        seed: 3,
        ..Default::default()
    };
    let mut tr = Trainer::new(Device::Cpu, flow, cfg, data).unwrap();
    tr.train_steps(300).unwrap();
    let m = FlowModel::from_trainer(&tr).unwrap();
    let test = two_class_data(16);
    let nll_cfg = NllConfig {
        protocol: Protocol::Dequantized,
        contract: 0.5,
        steps: 10,
        ..exact()
    };
    for dev in devices() {
        let own = sequence_nll(dev, &m, &test, &nll_cfg).unwrap();
        for wrong in [0u32, 1] {
            let other = sequence_nll_given(dev, &m, &test, Some(wrong), &nll_cfg).unwrap();
            for (i, (a, b)) in own.nats.iter().zip(&other.nats).enumerate() {
                let label = i as u32 % 2;
                if label == wrong {
                    assert!((a - b).abs() < 1e-9, "the same class, the same figure");
                } else {
                    assert!(
                        *a < b - 1.0,
                        "{dev:?} seq {i}: {a} under its class {label}, {b} under {wrong}"
                    );
                }
            }
        }
        let per = nll::class_nll(&own, &test.labels.as_ref().unwrap().ids);
        assert_eq!(per.len(), 2);
        assert!(per.iter().all(|c| c.n == 8));
    }
}

#[test]
fn labels_and_classes_are_checked() {
    let m = model(2, 3, Geometry::Sphere, Arch::Mlp, 2, 1);
    let plain = SequenceDataset::new(vec![0, 1, 2, 0], 2, 2, 3, None).unwrap();
    let cfg = NllConfig {
        steps: 2,
        ..exact()
    };
    // No labels and no class: refused, naming the remedy.
    let e = sequence_nll(Device::Cpu, &m, &plain, &cfg).unwrap_err();
    assert!(e.to_string().contains("--class"), "{e}");
    // A class outside the model's.
    let e = sequence_nll_given(Device::Cpu, &m, &plain, Some(2), &cfg).unwrap_err();
    assert!(e.to_string().contains("2 classes"), "{e}");
    // A label outside the model's classes.
    let mut three = plain.clone();
    three.labels = Some(Labels::new(vec![0, 2], Some(3)).unwrap());
    let e = sequence_nll(Device::Cpu, &m, &three, &cfg).unwrap_err();
    assert!(e.to_string().contains("sequence 1 has class 2"), "{e}");
    // A class for an unconditional model.
    let u = model(2, 3, Geometry::Sphere, Arch::Mlp, 0, 1);
    assert!(sequence_nll_given(Device::Cpu, &u, &plain, Some(0), &cfg).is_err());
    // Labels of the wrong count.
    let x = sphere_prior(1, 0, 0, 4, 3);
    assert!(log_density_given(Device::Cpu, &m, &x, given(Some(&[0])), 0.5, &cfg).is_err());
}

/// The labels of the sequences as what their density is given.
fn given(labels: Option<&[u32]>) -> Given<'_> {
    Given {
        labels,
        signal: None,
    }
}
