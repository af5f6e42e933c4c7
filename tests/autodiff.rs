//! Autodiff: finite-difference gradient checks of every op (CPU, f64), GPU vs CPU agreement of
//! every op forward and backward, optimizer kernels vs their CPU reference, clipping, errors.

use fisherflow::autodiff::{
    CpuExecutor, Dim, Executor, GpuExecutor, Graph, Init, NodeId, OptimConfig, OptimKind, Rng,
};
use fisherflow::gpu::testing::gpu;
use fisherflow::gpu::{GpuTensor, Recorder};
use fisherflow::kernels::optim::{adam_cpu, clip_scale, GpuOptimizer};
use fisherflow::Error;

#[path = "support/grad.rs"]
mod grad;
use grad::{check_param_gradients, close, set_inputs};

const B: usize = 5;

/// One op under test: a graph whose loss is `Σ y ⊙ R` for the op's output `y` and random `R`,
/// plus the inputs to set.
struct Case {
    name: &'static str,
    graph: Graph,
    y: NodeId,
    loss: NodeId,
    inputs: Vec<(String, Vec<f32>)>,
}

fn values(rng: &mut Rng, n: usize) -> Init {
    // Away from zero so that LeakyReLU's kink is never within a finite-difference step.
    Init::Values(
        (0..n)
            .map(|_| {
                let v = rng.range(0.1, 1.2) as f32;
                if rng.uniform() < 0.5 {
                    -v
                } else {
                    v
                }
            })
            .collect(),
    )
}

fn case(
    name: &'static str,
    seed: u64,
    build: impl FnOnce(&mut Graph, &mut Rng, &mut Vec<(String, Vec<f32>)>) -> NodeId,
) -> Case {
    let mut g = Graph::new(seed);
    let mut rng = Rng::new(seed);
    let mut inputs = Vec::new();
    let y = build(&mut g, &mut rng, &mut inputs);
    let s = g.shape(y).unwrap();
    let r = if s[0] == Dim::Batch {
        let Dim::Fixed(c) = s[1] else { unreachable!() };
        let r = g.input("R", c).unwrap();
        inputs.push(("R".into(), rng.vec_f32(B * c, -1.0, 1.0)));
        r
    } else {
        let (Dim::Fixed(a), Dim::Fixed(b)) = (s[0], s[1]) else {
            unreachable!()
        };
        let init = values(&mut rng, a * b);
        g.param("R", &[a, b], init).unwrap()
    };
    let m = g.mul(y, r).unwrap();
    let loss = g.sum(m).unwrap();
    Case {
        name,
        graph: g,
        y,
        loss,
        inputs,
    }
}

fn p(g: &mut Graph, rng: &mut Rng, name: &str, r: usize, c: usize) -> NodeId {
    let init = values(rng, r * c);
    g.param(name, &[r, c], init).unwrap()
}

fn inp(
    g: &mut Graph,
    rng: &mut Rng,
    inputs: &mut Vec<(String, Vec<f32>)>,
    name: &str,
    c: usize,
) -> NodeId {
    inputs.push((name.into(), rng.vec_f32(B * c, -1.0, 1.0)));
    g.input(name, c).unwrap()
}

/// Unit vectors per group of k (for proj_tangent's base point).
fn sphere_values(rng: &mut Rng, rows: usize, k: usize, groups: usize) -> Init {
    let mut v = Vec::new();
    for _ in 0..rows * groups {
        let z: Vec<f64> = (0..k).map(|_| rng.normal().abs() + 0.05).collect();
        let n = z.iter().map(|x| x * x).sum::<f64>().sqrt();
        v.extend(z.iter().map(|x| (x / n) as f32));
    }
    Init::Values(v)
}

fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    for (i, (ta, tb)) in [(false, false), (true, false), (false, true), (true, true)]
        .into_iter()
        .enumerate()
    {
        v.push(case("matmul", 10 + i as u64, |g, rng, _| {
            let a = if ta {
                p(g, rng, "a", 4, 3)
            } else {
                p(g, rng, "a", 3, 4)
            };
            let b = if tb {
                p(g, rng, "b", 5, 4)
            } else {
                p(g, rng, "b", 4, 5)
            };
            g.matmul_t(a, b, ta, tb).unwrap()
        }));
    }
    v.push(case("matmul batch input", 20, |g, rng, ins| {
        let x = inp(g, rng, ins, "x", 4);
        let w = p(g, rng, "w", 4, 3);
        g.matmul(x, w).unwrap()
    }));
    v.push(case("matmul batch param", 21, |g, rng, _| {
        let w = p(g, rng, "w", 3, 4);
        let x = p(g, rng, "x", 4, 6);
        g.matmul(w, x).unwrap()
    }));
    v.push(case("linear", 22, |g, rng, ins| {
        let x = inp(g, rng, ins, "x", 4);
        let w = p(g, rng, "w", 4, 3);
        let b = p(g, rng, "b", 1, 3);
        g.linear(x, w, Some(b)).unwrap()
    }));
    v.push(case("linear param input", 23, |g, rng, _| {
        let x = p(g, rng, "x", 3, 4);
        let w = p(g, rng, "w", 4, 6);
        let b = p(g, rng, "b", 1, 6);
        g.linear(x, w, Some(b)).unwrap()
    }));
    v.push(case("bias_add", 24, |g, rng, _| {
        let x = p(g, rng, "x", 3, 4);
        let b = p(g, rng, "b", 1, 4);
        g.bias_add(x, b).unwrap()
    }));
    v.push(case("add", 25, |g, rng, _| {
        let a = p(g, rng, "a", 3, 4);
        let b = p(g, rng, "b", 3, 4);
        let s = g.add(a, b).unwrap();
        g.add(s, a).unwrap()
    }));
    v.push(case("mul", 26, |g, rng, _| {
        let a = p(g, rng, "a", 3, 4);
        let b = p(g, rng, "b", 3, 4);
        let s = g.mul(a, b).unwrap();
        let sq = g.mul(a, a).unwrap();
        g.add(s, sq).unwrap()
    }));
    v.push(case("scale, add_scalar", 27, |g, rng, _| {
        let a = p(g, rng, "a", 3, 4);
        let s = g.scale(a, -1.7).unwrap();
        g.add_scalar(s, 0.3).unwrap()
    }));
    v.push(case("leaky_relu", 28, |g, rng, _| {
        let a = p(g, rng, "a", 4, 5);
        g.leaky_relu(a, 0.01).unwrap()
    }));
    for (i, slope) in [0.1f32, 0.0].into_iter().enumerate() {
        // Slope 0.1: one gemm with the activation in its epilogue; slope 0 (a ReLU whose
        // derivative the output does not give): the linear layer and the activation apart.
        v.push(case(
            "linear + leaky_relu",
            36 + i as u64,
            move |g, rng, ins| {
                let x = inp(g, rng, ins, "x", 4);
                let w = p(g, rng, "w", 4, 3);
                let b = p(g, rng, "b", 1, 3);
                let z = g.linear(x, w, Some(b)).unwrap();
                let a = g.leaky_relu(z, slope).unwrap();
                let w2 = p(g, rng, "w2", 3, 2);
                let z2 = g.linear(a, w2, None).unwrap();
                g.leaky_relu(z2, slope).unwrap()
            },
        ));
    }
    v.push(case("silu", 29, |g, rng, _| {
        let a = p(g, rng, "a", 4, 5);
        g.silu(a).unwrap()
    }));
    v.push(case("gelu", 30, |g, rng, _| {
        let a = p(g, rng, "a", 4, 5);
        g.gelu(a).unwrap()
    }));
    v.push(case("concat", 31, |g, rng, ins| {
        let a = p(g, rng, "a", 3, 2);
        let b = p(g, rng, "b", 3, 3);
        g.concat(&[a, b, a]).unwrap();
        let x = inp(g, rng, ins, "x", 2);
        let w = p(g, rng, "w", 2, 3);
        let h = g.matmul(x, w).unwrap();
        g.concat(&[x, h, h]).unwrap()
    }));
    v.push(case("sum", 32, |g, rng, _| {
        let a = p(g, rng, "a", 3, 4);
        g.sum(a).unwrap()
    }));
    v.push(case("mean", 33, |g, rng, _| {
        let a = p(g, rng, "a", 3, 4);
        g.mean(a).unwrap()
    }));
    v.push(case("mse_loss", 34, |g, rng, _| {
        let a = p(g, rng, "v", 3, 4);
        let b = p(g, rng, "u", 3, 4);
        g.mse_loss(a, b).unwrap()
    }));
    v.push(case("softmax_xent", 36, |g, rng, _| {
        // Two groups of k = 4 per row; targets are non-negative weights (not one-hot) so
        // that their gradient is checked too.
        let z = p(g, rng, "z", 3, 8);
        let t: Vec<f32> = (0..24).map(|_| rng.range(0.0, 1.0) as f32).collect();
        let t = g.param("t", &[3, 8], Init::Values(t)).unwrap();
        g.softmax_xent(z, t, 4).unwrap()
    }));
    v.push(case("softmax_xent batch input", 37, |g, rng, ins| {
        let x = inp(g, rng, ins, "x", 3);
        let w = p(g, rng, "w", 3, 10);
        let z = g.matmul(x, w).unwrap();
        let onehot: Vec<f32> = (0..B * 10)
            .map(|i| if i % 5 == (i / 5) % 5 { 1.0 } else { 0.0 })
            .collect();
        ins.push(("t".into(), onehot));
        let t = g.input("t", 10).unwrap();
        g.softmax_xent(z, t, 5).unwrap()
    }));
    v.push(case("proj_tangent", 35, |g, rng, _| {
        let k = 4;
        let vv = p(g, rng, "v", 3, 3 * k);
        let init = sphere_values(rng, 3, k, 3);
        let x = g.param("x", &[3, 3 * k], init).unwrap();
        g.proj_tangent(vv, x, k).unwrap()
    }));
    v
}

#[test]
fn every_op_passes_a_finite_difference_gradient_check() {
    for c in cases() {
        let mut ex =
            CpuExecutor::<f64>::new(&c.graph, B, &[c.y], Some(c.loss), OptimConfig::default())
                .unwrap();
        set_inputs(&mut ex, &c.inputs);
        ex.forward_backward().unwrap();
        check_param_gradients(&mut ex, &c.graph, &[], c.name);
    }
}

#[test]
fn every_op_agrees_between_gpu_and_cpu_forward_and_backward() {
    let Some(ctx) = gpu() else { return };
    for c in cases() {
        let cfg = OptimConfig::default();
        let mut cpu = CpuExecutor::<f64>::new(&c.graph, B, &[c.y], Some(c.loss), cfg).unwrap();
        let mut gpu = GpuExecutor::new(ctx, &c.graph, B, &[c.y], Some(c.loss), cfg).unwrap();
        set_inputs(&mut cpu, &c.inputs);
        set_inputs(&mut gpu, &c.inputs);
        cpu.forward_backward().unwrap();
        gpu.forward_backward().unwrap();
        close(
            &gpu.output(c.y).unwrap(),
            &cpu.output(c.y).unwrap(),
            2e-5,
            &format!("{} forward", c.name),
        );
        close(
            &[gpu.loss().unwrap()],
            &[cpu.loss().unwrap()],
            2e-5,
            &format!("{} loss", c.name),
        );
        for (gg, cg) in gpu.grads().unwrap().iter().zip(cpu.grads().unwrap()) {
            assert_eq!(gg.name, cg.name);
            close(
                &gg.data,
                &cg.data,
                2e-5,
                &format!("{} grad {}", c.name, gg.name),
            );
        }
    }
}

#[test]
fn reductions_over_many_workgroups_agree() {
    let Some(ctx) = gpu() else { return };
    // Large enough for the two-stage reductions and a 2-D activation grid.
    let n = 3000;
    let mut g = Graph::new(3);
    let x = g.input("x", n).unwrap();
    let u = g.input("u", n).unwrap();
    let w = g
        .param(
            "w",
            &[1, n],
            Init::Uniform {
                low: -1.0,
                high: 1.0,
            },
        )
        .unwrap();
    let wx = g.bias_add(x, w).unwrap();
    let a = g.gelu(wx).unwrap();
    let m = g.mean(a).unwrap();
    let l = g.mse_loss(a, u).unwrap();
    let loss = g.add(m, l).unwrap();
    let batch = 7;
    let mut rng = Rng::new(9);
    let xs = rng.vec_f32(batch * n, -2.0, 2.0);
    let us = rng.vec_f32(batch * n, -1.0, 1.0);
    let cfg = OptimConfig::default();
    let mut cpu = CpuExecutor::<f64>::new(&g, batch, &[], Some(loss), cfg).unwrap();
    let mut gpu = GpuExecutor::new(ctx, &g, batch, &[], Some(loss), cfg).unwrap();
    for ex in [&mut cpu as &mut dyn Executor, &mut gpu] {
        ex.set_input("x", &xs).unwrap();
        ex.set_input("u", &us).unwrap();
        ex.forward_backward().unwrap();
    }
    close(&[gpu.loss().unwrap()], &[cpu.loss().unwrap()], 1e-5, "loss");
    close(
        &gpu.grads().unwrap()[0].data,
        &cpu.grads().unwrap()[0].data,
        1e-5,
        "grad",
    );
}

#[test]
fn optimizer_kernel_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let n = 5000;
    for (kind, clip) in [
        (OptimKind::AdamW, Some(0.5)),
        (OptimKind::Adam, None),
        (OptimKind::AdamW, Some(1e4)),
    ] {
        let cfg = OptimConfig {
            kind,
            lr: 1e-2,
            weight_decay: 0.1,
            max_grad_norm: clip,
            ..Default::default()
        };
        let mut rng = Rng::new(5);
        let mut p = rng.vec_f32(n, -1.0, 1.0);
        let mut m = vec![0f32; n];
        let mut v = vec![0f32; n];
        let pt = GpuTensor::from_slice(ctx, &p, &[n]).unwrap();
        let gt = GpuTensor::<f32>::zeros(ctx, &[n]).unwrap();
        let mt = GpuTensor::<f32>::zeros(ctx, &[n]).unwrap();
        let vt = GpuTensor::<f32>::zeros(ctx, &[n]).unwrap();
        let opt = GpuOptimizer::new(ctx, cfg, n).unwrap();
        let mut rec = Recorder::new();
        opt.record(ctx, &mut rec, &pt, &gt, &mt, &vt).unwrap();
        for t in 1..=3u64 {
            let g = rng.vec_f32(n, -0.2, 0.2);
            gt.write(ctx, &g).unwrap();
            rec.run(ctx).unwrap();
            let norm = g.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            adam_cpu(&cfg, t, clip_scale(norm, clip), &mut p, &g, &mut m, &mut v);
            assert_eq!(opt.step_count(ctx).unwrap(), t);
            let gn = opt.grad_norm(ctx).unwrap() as f64;
            assert!((gn - norm).abs() < 1e-4 * norm, "norm {gn} vs {norm}");
        }
        close(&pt.to_vec(ctx).unwrap(), &p, 1e-5, "params");
        close(&mt.to_vec(ctx).unwrap(), &m, 1e-5, "m");
        close(&vt.to_vec(ctx).unwrap(), &v, 1e-5, "v");
    }
}

fn huge_gradient_graph() -> (Graph, NodeId) {
    let mut g = Graph::new(1);
    let w = g.param("w", &[4, 4], Init::Const(0.5)).unwrap();
    let s = g.scale(w, 1e6).unwrap();
    let loss = g.sum(s).unwrap();
    (g, loss)
}

fn check_clipped(ex: &mut dyn Executor) {
    ex.step().unwrap();
    // Gradient 1e6 in each of 16 entries: norm 4e6, clipped to 1, so m = (1 − β1)·g/‖g‖.
    let norm = ex.last_grad_norm().unwrap();
    assert!(
        (norm - 4e6).abs() < 4.0,
        "{}: norm {norm}",
        ex.backend_name()
    );
    let st = ex.optimizer_state().unwrap();
    assert_eq!(st.step, 1);
    let m = &st
        .tensors
        .iter()
        .find(|t| t.name == "adam_m.w")
        .unwrap()
        .data;
    let mnorm = m.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!(
        (mnorm - 0.1).abs() < 1e-5,
        "{}: |m| = {mnorm}",
        ex.backend_name()
    );
    assert!(m.iter().all(|&x| (x - 0.025).abs() < 1e-6));
}

#[test]
fn clipping_scales_a_huge_gradient_to_the_max_norm() {
    let (g, loss) = huge_gradient_graph();
    let cfg = OptimConfig::default();
    let mut cpu = CpuExecutor::<f32>::new(&g, 1, &[], Some(loss), cfg).unwrap();
    check_clipped(&mut cpu);
    if let Some(ctx) = gpu() {
        let mut gx = GpuExecutor::new(ctx, &g, 1, &[], Some(loss), cfg).unwrap();
        check_clipped(&mut gx);
    }
    // Without clipping, m holds the raw gradient.
    let cfg = OptimConfig {
        max_grad_norm: None,
        ..cfg
    };
    let mut cpu = CpuExecutor::<f32>::new(&g, 1, &[], Some(loss), cfg).unwrap();
    cpu.step().unwrap();
    let st = cpu.optimizer_state().unwrap();
    assert!((st.tensors[0].data[0] - 1e5).abs() < 1.0);
}

#[test]
fn bad_shapes_and_names_are_errors() {
    let mut g = Graph::new(0);
    let x = g.input("x", 3).unwrap();
    let w = g.param("w", &[4, 2], Init::Zeros).unwrap();
    let b = g.param("b", &[3], Init::Zeros).unwrap();
    assert!(matches!(g.matmul(x, w), Err(Error::Shape(_))));
    assert!(matches!(g.linear(x, w, None), Err(Error::Shape(_))));
    assert!(matches!(g.bias_add(w, b), Err(Error::Shape(_))));
    assert!(matches!(g.add(x, w), Err(Error::Shape(_))));
    assert!(matches!(g.concat(&[x, w]), Err(Error::Shape(_))));
    assert!(g.concat(&[]).is_err());
    assert!(matches!(g.proj_tangent(x, x, 2), Err(Error::Shape(_))));
    assert!(g.input("x", 2).is_err(), "duplicate name");
    assert!(g.param("p", &[2, 0], Init::Zeros).is_err());
    assert!(g.param("p", &[2, 2, 2], Init::Zeros).is_err());
    assert!(g.param("p", &[2], Init::Values(vec![1.0])).is_err());
    assert!(g.scale(x, f32::NAN).is_err());
    assert!(g.add(x, 99).is_err());
    let y = g.bias_add(x, b).unwrap();
    let cfg = OptimConfig::default();
    // A non-scalar loss, batch 0, bad optimizer settings.
    assert!(CpuExecutor::<f32>::new(&g, 2, &[y], Some(y), cfg).is_err());
    assert!(CpuExecutor::<f32>::new(&g, 0, &[y], None, cfg).is_err());
    let bad = OptimConfig { lr: -1.0, ..cfg };
    assert!(CpuExecutor::<f32>::new(&g, 2, &[y], None, bad).is_err());
    let loss = g.sum(y).unwrap();
    let mut ex = CpuExecutor::<f32>::new(&g, 2, &[y], Some(loss), cfg).unwrap();
    assert!(matches!(ex.set_input("x", &[1.0; 5]), Err(Error::Shape(_))));
    assert!(ex.set_input("nope", &[1.0; 6]).is_err());
    assert!(ex.output(w + 100).is_err());
    let mut params = ex.params().unwrap();
    params[0].shape = vec![2, 4];
    assert!(ex.load_params(&params).is_err());
    assert!(ex.load_params(&params[1..]).is_err());
    // A loss that depends on no parameter: zero gradients, no panic.
    let xs = g.sum(x).unwrap();
    let mut nograd = CpuExecutor::<f32>::new(&g, 2, &[], Some(xs), cfg).unwrap();
    nograd.set_input("x", &[1.0; 6]).unwrap();
    nograd.step().unwrap();
    assert_eq!(nograd.loss().unwrap(), 6.0);
    assert!(nograd
        .grads()
        .unwrap()
        .iter()
        .all(|t| t.data.iter().all(|&v| v == 0.0)));
    let mut fwd_only = CpuExecutor::<f32>::new(&g, 2, &[y], None, cfg).unwrap();
    assert!(fwd_only.step().is_err());
    if let Some(ctx) = gpu() {
        let mut gx = GpuExecutor::new(ctx, &g, 2, &[y], Some(loss), cfg).unwrap();
        assert!(matches!(gx.set_input("x", &[1.0; 7]), Err(Error::Shape(_))));
        assert!(gx.set_input("nope", &[1.0; 6]).is_err());
        assert!(gx.load_params(&params).is_err());
        assert!(gx.output_tensor(w).is_err());
        let mut ng = GpuExecutor::new(ctx, &g, 2, &[], Some(xs), cfg).unwrap();
        ng.set_input("x", &[1.0; 6]).unwrap();
        ng.step().unwrap();
        assert_eq!(ng.loss().unwrap(), 6.0);
        assert!(ng
            .grads()
            .unwrap()
            .iter()
            .all(|t| t.data.iter().all(|&v| v == 0.0)));
        let mut fo = GpuExecutor::new(ctx, &g, 2, &[y], None, cfg).unwrap();
        assert!(fo.step().is_err());
        assert!(fo.loss().is_err());
    }
}

#[test]
fn a_linear_layer_under_a_leaky_relu_is_one_gemm() {
    for (slope, fused) in [(0.1f32, true), (0.0, false)] {
        let mut g = Graph::new(3);
        let x = g.input("x", 4).unwrap();
        let w = g.param("w", &[4, 3], Init::Const(0.5)).unwrap();
        let z = g.linear(x, w, None).unwrap();
        let a = g.leaky_relu(z, slope).unwrap();
        let loss = g.sum(a).unwrap();
        let ex = CpuExecutor::<f32>::new(&g, 2, &[a], Some(loss), OptimConfig::default()).unwrap();
        let plan = ex.plan();
        assert_eq!(plan.values[z].is_none(), fused, "slope {slope}");
        let acts = plan
            .forward
            .iter()
            .filter(|i| format!("{i:?}").starts_with("ActFwd"));
        assert_eq!(acts.count(), usize::from(!fused), "slope {slope}");
        // The pre-activation is kept when an output needs it.
        let ex = CpuExecutor::<f32>::new(&g, 2, &[z, a], Some(loss), OptimConfig::default());
        assert!(ex.unwrap().plan().values[z].is_some());
    }
}

#[test]
fn cpu_thread_counts_are_checked() {
    use fisherflow::kernels::cpu::{parse_threads, threads, MAX_THREADS};
    assert_eq!(parse_threads("3").unwrap(), 3);
    assert_eq!(parse_threads(" 1\n").unwrap(), 1);
    assert_eq!(parse_threads("256").unwrap(), MAX_THREADS);
    for bad in [
        "0",
        "-2",
        "two",
        "",
        "257",
        "1.5",
        "99999999999999999999999",
    ] {
        let e = parse_threads(bad).unwrap_err().to_string();
        assert!(e.contains("FISHERFLOW_THREADS"), "{bad:?}: {e}");
    }
    assert!((1..=MAX_THREADS).contains(&threads()));
}
