//! Inference programs: the forward pass of a graph compiled with fusions and reused buffers
//! computes what the training executor computes, on the CPU and the GPU, and fuses what it
//! should (the sampler's field network is the training MLP compiled this way).

use std::sync::Arc;

use fisherflow::autodiff::{
    CpuExecutor, CpuProgram, Executor, GpuProgram, Graph, InferencePlan, Init, Instr, NodeId,
    OptimConfig,
};
use fisherflow::gpu::testing::gpu;
use fisherflow::kernels::{Activation, Precision};
use fisherflow::nn::{Mlp, MlpConfig};

/// A graph that fuses in some places and must not in others: a linear layer read twice (no
/// fusion), a residual whose summand is read again later (no accumulation), a three-part
/// concatenation, a standalone activation.
fn odd_graph() -> (Graph, NodeId) {
    let mut g = Graph::new(5);
    let x = g.input("x", 6).unwrap();
    let t = g.input("t", 1).unwrap();
    let init = |n: usize| Init::KaimingUniform { fan_in: n };
    let w1 = g.param("w1", &[6, 8], init(6)).unwrap();
    let b1 = g.param("b1", &[8], init(6)).unwrap();
    let z = g.linear(x, w1, Some(b1)).unwrap();
    let a = g.gelu(z).unwrap();
    let twice = g.add(z, a).unwrap(); // z is read twice: no fusion of its gemm
    let wt = g.param("wt", &[1, 3], init(1)).unwrap();
    let te = g.matmul(t, wt).unwrap();
    let cat = g.concat(&[twice, te, x]).unwrap();
    let w2 = g.param("w2", &[17, 8], init(17)).unwrap();
    let z2 = g.linear(cat, w2, None).unwrap();
    let a2 = g.silu(z2).unwrap();
    let res = g.add(twice, a2).unwrap();
    let again = g.mul(res, twice).unwrap(); // `twice` is read after the residual
    let w3 = g.param("w3", &[8, 6], init(8)).unwrap();
    let v = g.matmul(again, w3).unwrap();
    let out = g.proj_tangent(v, x, 3).unwrap();
    (g, out)
}

fn mlp() -> (Graph, NodeId) {
    let cfg = MlpConfig {
        seq_len: 3,
        categories: 4,
        hidden: 16,
        blocks: 2,
        time_dim: 8,
        ..Default::default()
    };
    let m = Mlp::new(cfg, 2).unwrap();
    (m.graph, m.out)
}

/// Unit vectors per group of 3 (valid points for the projection).
fn inputs(batch: usize, width: usize) -> (Vec<f32>, Vec<f32>) {
    let mut x: Vec<f32> = (0..batch * width)
        .map(|i| ((i * 37 % 17) as f32 / 17.0) + 0.05)
        .collect();
    for g in x.chunks_mut(width.clamp(1, 3)) {
        let n = g.iter().map(|v| v * v).sum::<f32>().sqrt();
        g.iter_mut().for_each(|v| *v /= n);
    }
    let t = (0..batch).map(|i| i as f32 / batch as f32).collect();
    (x, t)
}

fn reference(g: &Graph, out: NodeId, batch: usize, x: &[f32], t: &[f32]) -> Vec<f32> {
    let mut ex = CpuExecutor::<f64>::new(g, batch, &[out], None, OptimConfig::default()).unwrap();
    ex.set_input("x", x).unwrap();
    ex.set_input("t", t).unwrap();
    ex.forward().unwrap();
    ex.output(out).unwrap()
}

fn close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= tol * scale, "{what}[{i}]: {a} vs {b}");
    }
}

#[test]
fn programs_compute_the_forward_pass_on_the_cpu_and_the_gpu() {
    for (name, (g, out)) in [("odd", odd_graph()), ("mlp", mlp())] {
        let params = g.initial_params();
        let batch = 7;
        let width = g.shape(g.input_node("x").unwrap()).unwrap()[1];
        let fisherflow::autodiff::Dim::Fixed(width) = width else {
            unreachable!()
        };
        let (x, t) = inputs(batch, width);
        let want = reference(&g, out, batch, &x, &t);
        let mut cpu = CpuProgram::new(&g, batch, &[out], &params).unwrap();
        cpu.set_input("x", &x).unwrap();
        cpu.set_input("t", &t).unwrap();
        cpu.run();
        close(
            cpu.output(out).unwrap(),
            &want,
            1e-5,
            &format!("{name} cpu"),
        );
        let Some(ctx) = gpu() else { continue };
        for p in [Precision::F32, Precision::F16] {
            if p == Precision::F16 && !ctx.has_f16() {
                continue;
            }
            let prog = GpuProgram::new(ctx, &g, batch, &[out], p, &params).unwrap();
            prog.input("x").unwrap().write(ctx, &x).unwrap();
            prog.input("t").unwrap().write(ctx, &t).unwrap();
            prog.run().unwrap();
            let got = prog.output(out).unwrap().to_vec(ctx).unwrap();
            let tol = if p == Precision::F16 { 4e-3 } else { 1e-5 };
            close(&got, &want, tol, &format!("{name} gpu {p}"));
        }
    }
}

fn gemms(plan: &InferencePlan) -> Vec<String> {
    plan.instrs
        .iter()
        .map(|i: &Arc<dyn Instr>| format!("{i:?}"))
        .filter(|s| s.starts_with("Gemm"))
        .collect()
}

#[test]
fn the_mlp_fuses_activations_residuals_and_time_embedding_copies() {
    let (g, out) = mlp();
    let plan = InferencePlan::build(&g, 16, &[out], Precision::F32).unwrap();
    let gemm = gemms(&plan);
    // time embedding, input layer, two blocks, output layer: five gemms, no separate
    // activation or addition, the blocks accumulating into the hidden state.
    assert_eq!(gemm.len(), 5, "{gemm:#?}");
    let leaky = format!("{:?}", Activation::LeakyRelu(0.01));
    assert_eq!(gemm.iter().filter(|s| s.contains(&leaky)).count(), 3);
    assert_eq!(gemm.iter().filter(|s| s.contains("acc: true")).count(), 2);
    let kinds: Vec<String> = plan
        .instrs
        .iter()
        .map(|i| {
            format!("{i:?}")
                .split([' ', '{'])
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        !kinds.iter().any(|k| k == "ActFwd" || k == "Binary"),
        "{kinds:?}"
    );
    // Four concatenations with the time embedding: it is copied into each distinct buffer
    // once (the input layer's and the blocks' shared one), the hidden state every time.
    let copies = kinds
        .iter()
        .filter(|k| k.starts_with("ColCopy") || k.starts_with("Concat2"));
    assert_eq!(copies.count(), 4, "{kinds:?}");
    assert!(
        plan.instrs.len() <= 11,
        "{} instructions",
        plan.instrs.len()
    );
    // Buffers are reused: fewer than one per node.
    assert!(plan.buf_lens.len() < 10, "{} buffers", plan.buf_lens.len());
}

#[test]
fn nothing_is_fused_that_is_read_elsewhere() {
    let (g, out) = odd_graph();
    let plan = InferencePlan::build(&g, 4, &[out], Precision::F32).unwrap();
    let dbg: Vec<String> = plan.instrs.iter().map(|i| format!("{i:?}")).collect();
    // z is read by gelu and by the addition: its gemm stands alone and gelu runs on its own.
    assert!(dbg.iter().any(|s| s.starts_with("ActFwd")), "{dbg:#?}");
    // The residual's summand is read after it: no gemm accumulates.
    assert!(!dbg.iter().any(|s| s.contains("acc: true")), "{dbg:#?}");
    // The silu layer still fuses its activation into its gemm.
    let silu = format!("{:?}", Activation::Silu);
    assert!(dbg
        .iter()
        .any(|s| s.starts_with("Gemm") && s.contains(&silu)));
}
