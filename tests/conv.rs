//! The sequence-model ops: 1D convolution (kernel size, dilation, same padding), layer norm
//! over channels, per-sequence broadcast addition, embedding lookup and the sine of Fourier
//! features. Each is checked by
//! finite differences (CPU, f64), the GPU against the CPU forward and backward, the
//! convolution against a direct sum, and the inference programs (f32, f16) against training.

use fisherflow::autodiff::{
    CpuExecutor, CpuProgram, Dim, Executor, GpuExecutor, GpuProgram, Graph, Init, NodeId,
    OptimConfig, Rng,
};
use fisherflow::gpu::testing::gpu;
use fisherflow::kernels::conv::{conv_cpu, ConvMode, ConvSpec};
use fisherflow::kernels::Precision;
use fisherflow::Error;

#[path = "support/grad.rs"]
mod grad;
use grad::{check_param_gradients, close, set_inputs};

const B: usize = 2;

/// A graph with loss `Σ y ⊙ R` for the op output `y` and a random `R`, and its inputs.
struct Case {
    name: String,
    graph: Graph,
    y: NodeId,
    loss: NodeId,
    inputs: Vec<(String, Vec<f32>)>,
}

fn p(g: &mut Graph, rng: &mut Rng, name: &str, r: usize, c: usize) -> NodeId {
    let v = rng.vec_f32(r * c, -1.0, 1.0);
    g.param(name, &[r, c], Init::Values(v)).unwrap()
}

fn case(
    name: String,
    seed: u64,
    build: impl FnOnce(&mut Graph, &mut Rng, &mut Vec<(String, Vec<f32>)>) -> NodeId,
) -> Case {
    let mut g = Graph::new(seed);
    let mut rng = Rng::new(seed);
    let mut inputs = Vec::new();
    let y = build(&mut g, &mut rng, &mut inputs);
    let [rows, Dim::Fixed(c)] = g.shape(y).unwrap() else {
        unreachable!()
    };
    let r = match rows {
        Dim::Fixed(n) => p(&mut g, &mut rng, "R", n, c),
        d => {
            let n = d.resolve(B);
            inputs.push(("R".into(), rng.vec_f32(n * c, -1.0, 1.0)));
            g.input_shaped("R", [d, Dim::Fixed(c)]).unwrap()
        }
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

/// `(seq, sequences, cin, cout, taps, dilation)`.
const CONVS: [(usize, usize, usize, usize, usize, usize); 5] = [
    (7, 2, 3, 4, 3, 1),
    (6, 2, 2, 3, 5, 2),
    (5, 3, 2, 2, 4, 3), // an even kernel: one more tap after the centre than before
    (4, 2, 3, 2, 3, 8), // dilation past the sequence: only the centre tap sees data
    (1, 4, 2, 3, 3, 1), // sequences of one position
];

fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    for (i, &(l, n, cin, cout, taps, dil)) in CONVS.iter().enumerate() {
        let name = format!("conv1d L={l} taps={taps} dil={dil}");
        v.push(case(name, 40 + i as u64, |g, rng, _| {
            let x = p(g, rng, "x", n * l, cin);
            let w = p(g, rng, "w", taps * cin, cout);
            let b = p(g, rng, "b", 1, cout);
            let y = g.conv1d(x, w, Some(b), l, dil).unwrap();
            // The input read twice: its gradient accumulates.
            let w2 = p(g, rng, "w2", taps * cin, cout);
            let y2 = g.conv1d(x, w2, None, l, dil + 1).unwrap();
            g.add(y, y2).unwrap()
        }));
    }
    v.push(case("conv1d of a batch input".into(), 50, |g, rng, ins| {
        let l = 5;
        let x = g
            .input_shaped("x", [Dim::BatchTimes(l), Dim::Fixed(3)])
            .unwrap();
        ins.push(("x".into(), rng.vec_f32(B * l * 3, -1.0, 1.0)));
        let w = p(g, rng, "w", 9 * 3, 4);
        g.conv1d(x, w, None, l, 1).unwrap()
    }));
    v.push(case("layer_norm".into(), 51, |g, rng, _| {
        let x = p(g, rng, "x", 6, 5);
        let gamma = p(g, rng, "gamma", 1, 5);
        let beta = p(g, rng, "beta", 1, 5);
        let y = g.layer_norm(x, gamma, beta).unwrap();
        g.mul(y, x).unwrap()
    }));
    v.push(case("seq_add".into(), 52, |g, rng, _| {
        let x = p(g, rng, "x", 3 * 4, 5);
        let t = p(g, rng, "t", 3, 5);
        let y = g.seq_add(x, t, 4).unwrap();
        g.mul(y, y).unwrap()
    }));
    v.push(case("embedding".into(), 53, |g, rng, ins| {
        let labels = g.input("labels", 1).unwrap();
        // Repeated labels (gradients add up), the last row, and labels that name no row.
        ins.push(("labels".into(), vec![2.0, 0.0][..B].to_vec()));
        let table = p(g, rng, "table", 4, 3);
        let e = g.embedding(labels, table).unwrap();
        let l2 = g.input("labels2", 1).unwrap();
        ins.push(("labels2".into(), vec![2.0, 3.0][..B].to_vec()));
        let e2 = g.embedding(l2, table).unwrap();
        let l3 = g.input("labels3", 1).unwrap();
        ins.push(("labels3".into(), vec![4.0, -1.0][..B].to_vec()));
        let e3 = g.embedding(l3, table).unwrap();
        let s = g.add(e, e2).unwrap();
        g.add(s, e3).unwrap()
    }));
    v.push(case("sin (Fourier features)".into(), 55, |g, rng, ins| {
        let t = g.input("t", 1).unwrap();
        ins.push(("t".into(), vec![0.3, 0.85]));
        let freq = p(g, rng, "freq", 1, 3);
        let z = g.matmul(t, freq).unwrap();
        let s = g.add_scalar(z, std::f32::consts::FRAC_PI_2).unwrap();
        let cat = g.concat(&[z, s]).unwrap();
        g.act(cat, fisherflow::kernels::Activation::Sin).unwrap()
    }));
    v.push(case("a residual conv block".into(), 54, |g, rng, ins| {
        let (l, c) = (6, 4);
        let x = g
            .input_shaped("x", [Dim::BatchTimes(l), Dim::Fixed(2)])
            .unwrap();
        ins.push(("x".into(), rng.vec_f32(B * l * 2, -1.0, 1.0)));
        let labels = g.input("labels", 1).unwrap();
        ins.push(("labels".into(), vec![1.0, 0.0]));
        let w_in = p(g, rng, "w_in", 2, c);
        let h = g.linear(x, w_in, None).unwrap();
        let table = p(g, rng, "table", 2, c);
        let e = g.embedding(labels, table).unwrap();
        let gamma = p(g, rng, "gamma", 1, c);
        let beta = p(g, rng, "beta", 1, c);
        let n = g.layer_norm(h, gamma, beta).unwrap();
        let n = g.seq_add(n, e, l).unwrap();
        let a = g.gelu(n).unwrap();
        let w = p(g, rng, "w", 3 * c, c);
        let b = p(g, rng, "b", 1, c);
        let y = g.conv1d(a, w, Some(b), l, 2).unwrap();
        g.add(h, y).unwrap()
    }));
    v
}

#[test]
fn every_sequence_op_passes_a_finite_difference_gradient_check() {
    for c in cases() {
        let cfg = OptimConfig::default();
        let mut ex = CpuExecutor::<f64>::new(&c.graph, B, &[c.y], Some(c.loss), cfg).unwrap();
        set_inputs(&mut ex, &c.inputs);
        ex.forward_backward().unwrap();
        check_param_gradients(&mut ex, &c.graph, &["R"], &c.name);
    }
}

/// Larger than one tile of the GPU kernels in every dimension.
fn big_conv() -> Case {
    case("big conv1d".into(), 60, |g, rng, _| {
        let (l, n, cin, cout) = (50, 3, 40, 70);
        let x = p(g, rng, "x", n * l, cin);
        let w = p(g, rng, "w", 9 * cin, cout);
        let b = p(g, rng, "b", 1, cout);
        let y = g.conv1d(x, w, Some(b), l, 4).unwrap();
        let gamma = p(g, rng, "gamma", 1, cout);
        let beta = p(g, rng, "beta", 1, cout);
        let y = g.layer_norm(y, gamma, beta).unwrap();
        let t = p(g, rng, "t", n, cout);
        g.seq_add(y, t, l).unwrap()
    })
}

#[test]
fn every_sequence_op_agrees_between_gpu_and_cpu_forward_and_backward() {
    let Some(ctx) = gpu() else { return };
    let mut all = cases();
    all.push(big_conv());
    for c in all {
        let cfg = OptimConfig::default();
        let mut cpu = CpuExecutor::<f64>::new(&c.graph, B, &[c.y], Some(c.loss), cfg).unwrap();
        let mut gpu = GpuExecutor::new(ctx, &c.graph, B, &[c.y], Some(c.loss), cfg).unwrap();
        set_inputs(&mut cpu, &c.inputs);
        set_inputs(&mut gpu, &c.inputs);
        cpu.forward_backward().unwrap();
        gpu.forward_backward().unwrap();
        let what = |s: &str| format!("{} {s}", c.name);
        close(
            &gpu.output(c.y).unwrap(),
            &cpu.output(c.y).unwrap(),
            2e-5,
            &what("forward"),
        );
        for (gg, cg) in gpu.grads().unwrap().iter().zip(cpu.grads().unwrap()) {
            assert_eq!(gg.name, cg.name);
            close(
                &gg.data,
                &cg.data,
                5e-5,
                &what(&format!("grad {}", gg.name)),
            );
        }
    }
}

/// `y[s, l, co] = b[co] + Σ_{t, ci} x[s, l + o(t), ci] · w[t, ci, co]`, summed directly.
fn direct_conv(s: &ConvSpec, x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
    let (l, cin, cout) = (s.seq as isize, s.cin, s.cout);
    let mut y = vec![0.0; s.rows * cout];
    for r in 0..s.rows {
        let (q, pos) = (r / s.seq, (r % s.seq) as isize);
        for co in 0..cout {
            let mut acc = b[co];
            for t in 0..s.taps {
                let src = pos + (t as isize - (s.taps as isize - 1) / 2) * s.dil as isize;
                if (0..l).contains(&src) {
                    let row = q * s.seq + src as usize;
                    for ci in 0..cin {
                        acc += x[row * cin + ci] * w[(t * cin + ci) * cout + co];
                    }
                }
            }
            y[r * cout + co] = acc;
        }
    }
    y
}

#[test]
fn the_convolution_is_the_direct_sum_with_same_padding() {
    let mut rng = Rng::new(9);
    for &(seq, n, cin, cout, taps, dil) in &CONVS {
        let s = ConvSpec {
            mode: ConvMode::Forward,
            rows: n * seq,
            seq,
            cin,
            cout,
            taps,
            dil,
            acc: false,
        };
        let x: Vec<f64> = (0..s.rows * cin).map(|_| rng.normal()).collect();
        let w: Vec<f64> = (0..taps * cin * cout).map(|_| rng.normal()).collect();
        let b: Vec<f64> = (0..cout).map(|_| rng.normal()).collect();
        let mut y = vec![7.0; s.rows * cout];
        conv_cpu(&s, &x, &w, Some(&b), &mut y);
        let want = direct_conv(&s, &x, &w, &b);
        for (i, (a, e)) in y.iter().zip(&want).enumerate() {
            assert!((a - e).abs() < 1e-12, "{s:?} [{i}]: {a} vs {e}");
        }
    }
}

#[test]
fn inference_programs_compute_the_sequence_ops() {
    let c = big_conv();
    let params = c.graph.initial_params();
    let mut ex =
        CpuExecutor::<f64>::new(&c.graph, B, &[c.y], None, OptimConfig::default()).unwrap();
    ex.forward().unwrap();
    let want = ex.output(c.y).unwrap();
    let mut cpu = CpuProgram::new(&c.graph, B, &[c.y], &params).unwrap();
    cpu.run();
    close(cpu.output(c.y).unwrap(), &want, 1e-5, "cpu program");
    let Some(ctx) = gpu() else { return };
    for p in [Precision::F32, Precision::F16] {
        if p == Precision::F16 && !ctx.has_f16() {
            continue;
        }
        let prog = GpuProgram::new(ctx, &c.graph, B, &[c.y], p, &params).unwrap();
        prog.run().unwrap();
        let got = prog.output(c.y).unwrap().to_vec(ctx).unwrap();
        let tol = if p == Precision::F16 { 2e-2 } else { 1e-5 };
        close(&got, &want, tol, &format!("gpu program {p}"));
    }
}

#[test]
fn bad_sequence_shapes_are_errors() {
    let mut g = Graph::new(1);
    let x = g
        .input_shaped("x", [Dim::BatchTimes(6), Dim::Fixed(3)])
        .unwrap();
    let w = g.param("w", &[9, 4], Init::Zeros).unwrap();
    let w_bad = g.param("w_bad", &[10, 4], Init::Zeros).unwrap();
    let b_bad = g.param("b_bad", &[5], Init::Zeros).unwrap();
    let t = g.input("t", 3).unwrap();
    let t4 = g.input("t4", 4).unwrap();
    let bad = |r: fisherflow::Result<NodeId>| {
        matches!(r, Err(Error::Shape(_) | Error::InvalidArgument(_)))
    };
    assert!(g.conv1d(x, w, None, 6, 1).is_ok());
    assert!(
        bad(g.conv1d(x, w, None, 4, 1)),
        "rows are not whole sequences of 4"
    );
    assert!(
        bad(g.conv1d(x, w_bad, None, 6, 1)),
        "10 rows of w are not taps × 3"
    );
    assert!(
        bad(g.conv1d(x, w, Some(b_bad), 6, 1)),
        "bias of 5 for 4 channels"
    );
    assert!(bad(g.conv1d(x, w, None, 6, 0)), "dilation 0");
    assert!(
        bad(g.conv1d(t, w, None, 6, 1)),
        "a [B, 3] input is not sequences of 6"
    );
    assert!(g.seq_add(x, t, 6).is_ok());
    assert!(bad(g.seq_add(x, t, 3)), "B·6 rows are not B sequences of 3");
    assert!(bad(g.seq_add(x, t4, 6)), "columns differ");
    assert!(bad(g.embedding(x, w)), "labels of 3 columns");
    assert!(bad(g.embedding(w, w)), "labels that are not an input");
    let gamma = g.param("gamma", &[4], Init::Zeros).unwrap();
    assert!(bad(g.layer_norm(x, gamma, gamma)), "γ of 4 for 3 channels");
}
