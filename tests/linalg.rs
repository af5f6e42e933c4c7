//! Matrix multiplication and reductions: GPU kernels against their CPU references.

use fisherflow::gpu::{testing::gpu, GpuContext, GpuTensor, Recorder};
use fisherflow::kernels::linalg::{
    gemm, gemm_cpu, gemm_with, subgroup8_suits, Gemm, GemmKernel, View,
};
use fisherflow::kernels::Activation;
use fisherflow::Error;

/// SplitMix64, for reproducible test inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    fn f(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f()).collect()
    }
}

fn assert_close(got: &[f32], want: &[f32], k: usize, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let tol = 1e-5 * (k as f32).sqrt() * 4.0 + 1e-5;
    let mut worst = (0.0f32, 0usize);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let e = (g - w).abs() / (1.0 + w.abs());
        assert!(
            e.is_finite() || g == w,
            "{what}: element {i}: got {g}, want {w}"
        );
        if e > worst.0 {
            worst = (e, i);
        }
    }
    let i = worst.1;
    assert!(
        worst.0 <= tol,
        "{what}: element {i}: got {}, want {} (relative error {} > {tol})",
        got[i],
        want[i],
        worst.0
    );
}

/// Run `g` on the GPU with a, b and bias packed at odd offsets in one shared buffer and c at an
/// odd offset of another, and compare with `gemm_cpu`; also checks c's neighbours are untouched.
fn check(ctx: &GpuContext, kern: GemmKernel, g: Gemm, with_bias: bool, seed: u64) {
    let mut rng = Rng(seed);
    let (m, n, k) = (g.m, g.n, g.k);
    let a = rng.vec(m * k);
    let b = rng.vec(k * n);
    let bias = rng.vec(n);
    let c0 = rng.vec(m * n);
    // Shared input buffer: [pad 3][a][pad 5][b][pad 1][bias][pad 2]
    let (oa, ob) = (3, 3 + a.len() + 5);
    let obias = ob + b.len() + 1;
    let mut packed = vec![7.0f32; obias + n + 2];
    packed[oa..oa + a.len()].copy_from_slice(&a);
    packed[ob..ob + b.len()].copy_from_slice(&b);
    packed[obias..obias + n].copy_from_slice(&bias);
    let inputs = GpuTensor::from_slice(ctx, &packed, &[packed.len()]).unwrap();
    let oc = 5;
    let mut cbuf = vec![-9.0f32; oc + m * n + 3];
    cbuf[oc..oc + m * n].copy_from_slice(&c0);
    let out = GpuTensor::from_slice(ctx, &cbuf, &[cbuf.len()]).unwrap();

    let mut rec = Recorder::new();
    let va = View::slice(&inputs, oa as u64, a.len() as u64).unwrap();
    let vb = View::slice(&inputs, ob as u64, b.len() as u64).unwrap();
    let vbias = View::slice(&inputs, obias as u64, n as u64).unwrap();
    let vc = View::slice(&out, oc as u64, (m * n) as u64).unwrap();
    gemm_with(
        ctx,
        &mut rec,
        &g,
        va,
        vb,
        with_bias.then_some(vbias),
        vc,
        kern,
    )
    .unwrap();
    rec.run(ctx).unwrap();
    let got = out.to_vec(ctx).unwrap();

    let mut want = c0.clone();
    gemm_cpu(&g, &a, &b, with_bias.then_some(&bias[..]), &mut want).unwrap();
    let what = format!("{kern:?} {g:?} bias={with_bias}");
    assert_close(&got[oc..oc + m * n], &want, k, &what);
    assert!(
        got[..oc].iter().all(|&v| v == -9.0),
        "{what}: wrote before c"
    );
    assert!(
        got[oc + m * n..].iter().all(|&v| v == -9.0),
        "{what}: wrote after c"
    );
}

/// Aligned variant: every operand its own tensor at offset 0 (takes the vec4 path when the
/// contiguous dimensions are multiples of 4).
fn check_plain(ctx: &GpuContext, kern: GemmKernel, g: Gemm, with_bias: bool, seed: u64) {
    let mut rng = Rng(seed);
    let (m, n, k) = (g.m, g.n, g.k);
    let a = rng.vec(m * k);
    let b = rng.vec(k * n);
    let bias = rng.vec(n);
    let ta = GpuTensor::from_slice(ctx, &a, &[a.len()]).unwrap();
    let tb = GpuTensor::from_slice(ctx, &b, &[b.len()]).unwrap();
    let tbias = GpuTensor::from_slice(ctx, &bias, &[n]).unwrap();
    let c0 = rng.vec(m * n);
    let tc = GpuTensor::from_slice(ctx, &c0, &[m, n]).unwrap();
    let mut rec = Recorder::new();
    let bias_view = with_bias.then(|| View::of(&tbias));
    gemm_with(
        ctx,
        &mut rec,
        &g,
        View::of(&ta),
        View::of(&tb),
        bias_view,
        View::of(&tc),
        kern,
    )
    .unwrap();
    rec.run(ctx).unwrap();
    let mut want = c0;
    gemm_cpu(&g, &a, &b, with_bias.then_some(&bias[..]), &mut want).unwrap();
    assert_close(
        &tc.to_vec(ctx).unwrap(),
        &want,
        k,
        &format!("{g:?} bias={with_bias}"),
    );
}

/// Every kernel the adapter can run.
fn kernels(ctx: &GpuContext) -> Vec<GemmKernel> {
    let mut v = vec![GemmKernel::Tiled];
    if subgroup8_suits(ctx) {
        v.push(GemmKernel::Subgroup8);
    }
    v
}

const COMBOS: [(bool, bool); 4] = [(false, false), (true, false), (false, true), (true, true)];

#[test]
fn small_odd_shapes_all_transposes() {
    let Some(ctx) = gpu() else { return };
    let mut seed = 1;
    for (m, n, k) in [
        (1, 1, 1),
        (3, 5, 7),
        (17, 33, 65),
        (64, 64, 64),
        (129, 257, 63),
    ] {
        for (ta, tb) in COMBOS {
            seed += 1;
            let g = Gemm::new(m, n, k).trans_a(ta).trans_b(tb);
            for kern in kernels(ctx) {
                check(ctx, kern, g, seed % 2 == 0, seed);
                check_plain(ctx, kern, g, seed % 2 == 1, seed + 100);
            }
        }
    }
}

#[test]
fn aligned_shapes_all_transposes() {
    // Multiples of 4 (vec4 path) with ragged tile edges.
    let Some(ctx) = gpu() else { return };
    for (i, (m, n, k)) in [(4, 4, 4), (68, 132, 36), (100, 8, 260)].iter().enumerate() {
        for (j, (ta, tb)) in COMBOS.iter().enumerate() {
            let g = Gemm::new(*m, *n, *k).trans_a(*ta).trans_b(*tb);
            for kern in kernels(ctx) {
                check_plain(ctx, kern, g, (i + j) % 2 == 0, (10 * i + j) as u64);
            }
        }
    }
}

#[test]
fn toy_model_shapes() {
    let Some(ctx) = gpu() else { return };
    // What `gemm` picks on this adapter, on all three shapes; the tiled kernel on one.
    let auto = GemmKernel::Auto;
    let silu = Gemm::new(512, 224, 512).activation(Activation::Silu);
    check_plain(ctx, auto, silu, true, 7);
    check_plain(ctx, auto, Gemm::new(512, 576, 512).trans_b(true), true, 8);
    check(
        ctx,
        auto,
        Gemm::new(512, 224, 512).trans_a(true).alpha(0.5),
        false,
        9,
    );
    check_plain(ctx, GemmKernel::Tiled, silu, true, 10);
}

#[test]
fn every_activation_alpha_and_accumulate() {
    let Some(ctx) = gpu() else { return };
    let acts = [
        Activation::Identity,
        Activation::Relu,
        Activation::LeakyRelu(0.1),
        Activation::Silu,
        Activation::Gelu,
    ];
    for (i, act) in acts.into_iter().enumerate() {
        for kern in kernels(ctx) {
            let g = Gemm::new(37, 20, 19).activation(act).alpha(1.5);
            check(ctx, kern, g, true, 50 + i as u64);
            let g = Gemm::new(36, 20, 16).activation(act).trans_b(true);
            check_plain(ctx, kern, g, i % 2 == 0, 60);
        }
    }
    for (ta, tb) in COMBOS {
        for kern in kernels(ctx) {
            let g = Gemm::new(33, 18, 21).trans_a(ta).trans_b(tb);
            check(ctx, kern, g.accumulate(true).alpha(-0.75), ta, 70);
            check_plain(ctx, kern, Gemm::new(32, 16, 8).accumulate(true), tb, 71);
        }
    }
    // Accumulation through an activation: the fused residual c += act(a·b + bias).
    for kern in kernels(ctx) {
        let g = Gemm::new(35, 20, 17).accumulate(true);
        check(
            ctx,
            kern,
            g.activation(Activation::LeakyRelu(0.1)),
            true,
            72,
        );
        let g = Gemm::new(32, 24, 12).accumulate(true);
        check_plain(ctx, kern, g.activation(Activation::Silu), true, 73);
    }
}

#[test]
fn kernel_choice() {
    let Some(ctx) = gpu() else { return };
    let t = |n: usize| GpuTensor::<f32>::zeros(ctx, &[n]).unwrap();
    let (a, b, c) = (t(4), t(4), t(4));
    let (va, vb, vc) = (View::of(&a), View::of(&b), View::of(&c));
    let g = Gemm::new(2, 2, 2);
    let mut rec = Recorder::new();
    let r = gemm_with(ctx, &mut rec, &g, va, vb, None, vc, GemmKernel::Subgroup8);
    assert_eq!(r.is_ok(), subgroup8_suits(ctx), "{r:?}");
    let is_cpu = ctx.adapter_info().device_type == wgpu::DeviceType::Cpu;
    if !is_cpu {
        assert!(!subgroup8_suits(ctx));
    }
    gemm(ctx, &mut rec, &g, va, vb, None, vc).unwrap();
    let want = if subgroup8_suits(ctx) {
        "gemm_sg8"
    } else {
        "gemm_vec4"
    };
    assert!(rec.dispatch_labels().last().unwrap().ends_with(want));
}

#[test]
fn activation_reference_values() {
    assert_eq!(Activation::Relu.apply_f32(-2.0), 0.0);
    assert_eq!(Activation::LeakyRelu(0.1).apply_f32(-2.0), -0.2);
    assert!((Activation::Silu.apply_f32(1.0) - 0.731_058_6).abs() < 1e-6);
    // tanh-approximate GELU at 1: 0.5 (1 + tanh(0.7978845608 * 1.044715)) = 0.8411920
    assert!((Activation::Gelu.apply_f32(1.0) - 0.841_192).abs() < 1e-6);
    assert!((Activation::Gelu.apply_f32(-20.0)).abs() < 1e-6);
}

#[test]
fn large_activation_inputs_stay_finite() {
    let Some(ctx) = gpu() else { return };
    // k = 1, a = ±100: the products are ±100 · b, far into the saturated range.
    let a = [100.0f32, -100.0, 50.0, -50.0];
    let b: Vec<f32> = (0..8).map(|i| i as f32 - 3.5).collect();
    let ta = GpuTensor::from_slice(ctx, &a, &[4, 1]).unwrap();
    let tb = GpuTensor::from_slice(ctx, &b, &[1, 8]).unwrap();
    for act in [Activation::Silu, Activation::Gelu] {
        let tc = GpuTensor::<f32>::zeros(ctx, &[4, 8]).unwrap();
        let g = Gemm::new(4, 8, 1).activation(act);
        let mut rec = Recorder::new();
        gemm(
            ctx,
            &mut rec,
            &g,
            View::of(&ta),
            View::of(&tb),
            None,
            View::of(&tc),
        )
        .unwrap();
        rec.run(ctx).unwrap();
        let mut want = vec![0.0; 32];
        gemm_cpu(&g, &a, &b, None, &mut want).unwrap();
        let got = tc.to_vec(ctx).unwrap();
        assert!(got.iter().all(|v| v.is_finite()), "{act:?}: {got:?}");
        assert_close(&got, &want, 1, &format!("{act:?}"));
    }
}

#[test]
fn recording_replays_with_new_inputs() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng(3);
    let (m, n, k) = (9, 10, 11);
    let ta = GpuTensor::<f32>::zeros(ctx, &[m, k]).unwrap();
    let tb = GpuTensor::from_slice(ctx, &rng.vec(k * n), &[k, n]).unwrap();
    let tc = GpuTensor::<f32>::zeros(ctx, &[m, n]).unwrap();
    let g = Gemm::new(m, n, k);
    let mut rec = Recorder::new();
    gemm(
        ctx,
        &mut rec,
        &g,
        View::of(&ta),
        View::of(&tb),
        None,
        View::of(&tc),
    )
    .unwrap();
    let b = tb.to_vec(ctx).unwrap();
    for _ in 0..2 {
        let a = rng.vec(m * k);
        ta.write(ctx, &a).unwrap();
        rec.run(ctx).unwrap();
        let mut want = vec![0.0; m * n];
        gemm_cpu(&g, &a, &b, None, &mut want).unwrap();
        assert_close(&tc.to_vec(ctx).unwrap(), &want, k, "replay");
    }
}

#[test]
fn bad_gemm_inputs_are_errors() {
    let Some(ctx) = gpu() else { return };
    let t = |n: usize| GpuTensor::<f32>::zeros(ctx, &[n]).unwrap();
    let (a, b, c, bias, big) = (t(6), t(12), t(8), t(4), t(64));
    let g = Gemm::new(2, 4, 3);
    let mut rec = Recorder::new();
    let (va, vb, vc) = (View::of(&a), View::of(&b), View::of(&c));
    // Correct call first, so the failures below are about the one thing changed.
    gemm(ctx, &mut rec, &g, va, vb, Some(View::of(&bias)), vc).unwrap();
    let shape = |r: fisherflow::Result<()>| assert!(matches!(r, Err(Error::Shape(_))), "{r:?}");
    shape(gemm(ctx, &mut rec, &Gemm::new(3, 4, 3), va, vb, None, vc));
    shape(gemm(ctx, &mut rec, &g, View::of(&b), vb, None, vc));
    shape(gemm(ctx, &mut rec, &g, va, vb, Some(va), vc));
    shape(gemm(ctx, &mut rec, &Gemm::new(0, 4, 3), va, vb, None, vc));
    shape(gemm(ctx, &mut rec, &Gemm::new(2, 4, 0), va, vb, None, vc));
    // A view running past its buffer (built by hand; View::slice refuses it).
    assert!(matches!(View::slice(&a, 2, 6), Err(Error::Shape(_))));
    let past = View {
        buffer: a.buffer(),
        offset: 2,
        len: 6,
    };
    shape(gemm(ctx, &mut rec, &g, past, vb, None, vc));
    // c overlapping a, and c in the same buffer as b without overlap.
    let overlap = View::slice(&big, 4, 8).unwrap();
    let a_in_big = View::slice(&big, 0, 6).unwrap();
    let r = gemm(ctx, &mut rec, &g, a_in_big, vb, None, overlap);
    assert!(
        matches!(&r, Err(Error::InvalidArgument(m)) if m.contains("overlaps")),
        "{r:?}"
    );
    let b_in_big = View::slice(&big, 20, 12).unwrap();
    let c_in_big = View::slice(&big, 40, 8).unwrap();
    let r = gemm(ctx, &mut rec, &g, va, b_in_big, None, c_in_big);
    assert!(
        matches!(&r, Err(Error::InvalidArgument(m)) if m.contains("buffer")),
        "{r:?}"
    );
    let r = gemm(
        ctx,
        &mut rec,
        &g,
        va,
        vb,
        Some(View::slice(&c, 0, 4).unwrap()),
        vc,
    );
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    // CPU reference checks the same things.
    let mut out = vec![0.0; 8];
    assert!(gemm_cpu(&g, &[0.0; 5], &[0.0; 12], None, &mut out).is_err());
    assert!(gemm_cpu(&g, &[0.0; 6], &[0.0; 12], Some(&[0.0; 3]), &mut out).is_err());
    // Only the first, valid call was recorded.
    assert_eq!(rec.dispatches(), 1);
}

#[test]
fn binding_over_the_storage_limit_is_a_limit_error() {
    let Some(ctx) = gpu() else { return };
    let max = ctx.limits().max_storage_buffer_binding_size;
    let elems = max / 4 + 64;
    if elems * 4 > ctx.limits().max_buffer_size || elems * 4 > (1u64 << 30) {
        eprintln!("skipping: cannot allocate a buffer larger than one binding");
        return;
    }
    let big = GpuTensor::<f32>::zeros(ctx, &[elems as usize]).unwrap();
    let b = GpuTensor::<f32>::zeros(ctx, &[64]).unwrap();
    let c = GpuTensor::<f32>::zeros(ctx, &[elems as usize]).unwrap();
    // a is [elems/64, 64]: one binding cannot hold it.
    let m = (elems / 64) as usize;
    let g = Gemm::new(m, 1, 64);
    let mut rec = Recorder::new();
    let cv = View::slice(&c, 0, m as u64).unwrap();
    let r = gemm(ctx, &mut rec, &g, View::of(&big), View::of(&b), None, cv);
    assert!(matches!(r, Err(Error::Limit(_))), "{r:?}");
    // A small view near the end of the same big buffer binds fine.
    let tail = View::slice(&big, elems - 128, 128).unwrap();
    let g = Gemm::new(2, 1, 64);
    let cv = View::slice(&c, 0, 2).unwrap();
    gemm(ctx, &mut rec, &g, tail, View::of(&b), None, cv).unwrap();
    rec.run(ctx).unwrap();
}

// ---- reductions ----

use fisherflow::kernels::reduce::{
    sum, sum_cpu, sum_rows, sum_rows_cpu, sum_squares, sum_squares_cpu,
};

#[test]
fn sum_rows_matches_cpu() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng(11);
    for (m, n, scale, acc) in [
        (1, 1, 1.0, false),
        (7, 3, 0.5, true),
        (513, 130, -2.0, false),
        (64, 65, 1.0, true),
    ] {
        let x = rng.vec(m * n);
        let o0 = rng.vec(n);
        // x at an odd offset in a shared buffer, out at an odd offset in another.
        let mut packed = vec![0.0f32; 3 + m * n];
        packed[3..].copy_from_slice(&x);
        let tx = GpuTensor::from_slice(ctx, &packed, &[packed.len()]).unwrap();
        let mut ob = vec![5.0f32; n + 2];
        ob[1..=n].copy_from_slice(&o0);
        let to = GpuTensor::from_slice(ctx, &ob, &[n + 2]).unwrap();
        let mut rec = Recorder::new();
        let xv = View::slice(&tx, 3, (m * n) as u64).unwrap();
        let ov = View::slice(&to, 1, n as u64).unwrap();
        sum_rows(ctx, &mut rec, m, n, xv, ov, scale, acc).unwrap();
        rec.run(ctx).unwrap();
        let got = to.to_vec(ctx).unwrap();
        let mut want = o0.clone();
        sum_rows_cpu(m, n, &x, &mut want, scale, acc).unwrap();
        assert_close(&got[1..=n], &want, m, &format!("sum_rows {m}x{n}"));
        assert_eq!(
            (got[0], got[n + 1]),
            (5.0, 5.0),
            "sum_rows wrote outside out"
        );
    }
}

#[test]
fn sum_and_sum_squares_match_cpu_and_are_deterministic() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng(12);
    // One stage, exactly one chunk, two stages, three stages (4096² + 5 > 4096·4096).
    for len in [1usize, 4096, 4097, 100_003, 4096 * 4096 + 5] {
        let x = rng.vec(len + 1);
        let tx = GpuTensor::from_slice(ctx, &x, &[len + 1]).unwrap();
        let view = View::slice(&tx, 1, len as u64).unwrap();
        let s = GpuTensor::<f32>::zeros(ctx, &[1]).unwrap();
        let q = GpuTensor::<f32>::zeros(ctx, &[1]).unwrap();
        let mut rec = Recorder::new();
        sum(ctx, &mut rec, view, &s).unwrap();
        sum_squares(ctx, &mut rec, view, &q).unwrap();
        rec.run(ctx).unwrap();
        let (gs, gq) = (s.to_vec(ctx).unwrap()[0], q.to_vec(ctx).unwrap()[0]);
        let abs: f64 = x[1..].iter().map(|v| v.abs() as f64).sum();
        let ws = sum_cpu(&x[1..]);
        let wq = sum_squares_cpu(&x[1..]);
        assert!(
            ((gs - ws).abs() as f64) <= 1e-6 * abs + 1e-6,
            "sum {len}: {gs} vs {ws}"
        );
        assert!(
            (gq - wq).abs() <= 1e-5 * wq + 1e-6,
            "sum_squares {len}: {gq} vs {wq}"
        );
        rec.run(ctx).unwrap();
        assert_eq!(
            s.to_vec(ctx).unwrap()[0].to_bits(),
            gs.to_bits(),
            "sum not deterministic"
        );
    }
}

#[test]
fn bad_reduction_inputs_are_errors() {
    let Some(ctx) = gpu() else { return };
    let x = GpuTensor::<f32>::zeros(ctx, &[12]).unwrap();
    let o = GpuTensor::<f32>::zeros(ctx, &[4]).unwrap();
    let one = GpuTensor::<f32>::zeros(ctx, &[1]).unwrap();
    let mut rec = Recorder::new();
    let (xv, ov) = (View::of(&x), View::of(&o));
    sum_rows(ctx, &mut rec, 3, 4, xv, ov, 1.0, false).unwrap();
    assert!(matches!(
        sum_rows(ctx, &mut rec, 4, 4, xv, ov, 1.0, false),
        Err(Error::Shape(_))
    ));
    assert!(matches!(
        sum_rows(ctx, &mut rec, 0, 4, xv, ov, 1.0, false),
        Err(Error::Shape(_))
    ));
    let same = View::slice(&x, 0, 4).unwrap();
    let xs = View::slice(&x, 4, 8).unwrap();
    assert!(matches!(
        sum_rows(ctx, &mut rec, 2, 4, xs, same, 1.0, false),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(sum(ctx, &mut rec, xv, &o), Err(Error::Shape(_))));
    assert!(matches!(
        sum(ctx, &mut rec, View::slice(&x, 0, 0).unwrap(), &one),
        Err(Error::Shape(_))
    ));
    assert!(matches!(
        sum_squares(ctx, &mut rec, View::of(&one), &one),
        Err(Error::InvalidArgument(_))
    ));
    let past = View {
        buffer: x.buffer(),
        offset: 10,
        len: 4,
    };
    assert!(matches!(
        sum(ctx, &mut rec, past, &one),
        Err(Error::Shape(_))
    ));
    assert!(sum_rows_cpu(2, 2, &[0.0; 3], &mut [0.0; 2], 1.0, false).is_err());
    assert_eq!(rec.dispatches(), 1);
}
