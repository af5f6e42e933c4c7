//! f16 storage: the gemm kernels and the sampler's field network in f16 against their f32 CPU
//! references, and f16 sampling against f32 sampling of the same trained model.

use fisherflow::autodiff::{CpuExecutor, Executor, OptimConfig};
use fisherflow::data::metrics::kl_to_target;
use fisherflow::data::toy::ToyTarget;
use fisherflow::device::Device;
use fisherflow::flow::{
    sample, FieldNet, FlowConfig, FlowModel, Geometry, SampleConfig, TrainConfig, Trainer,
};
use fisherflow::gpu::{testing::gpu, GpuContext, GpuTensor, Recorder};
use fisherflow::kernels::linalg::{gemm_cpu, gemm_with, subgroup8_suits, Gemm, GemmKernel, View};
use fisherflow::kernels::Activation;
use fisherflow::kernels::Precision;
use fisherflow::nn::Mlp;
use fisherflow::Error;
use half::f16;

/// SplitMix64 uniforms in [-1, 1), rounded to f16.
fn halves(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            let u = ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
            f16::from_f32(u).to_f32()
        })
        .collect()
}

fn to_f16(v: &[f32]) -> Vec<f16> {
    v.iter().map(|&x| f16::from_f32(x)).collect()
}

/// f16 adapters only: on an adapter without SHADER_F16 every f16 entry point must refuse.
fn f16_ctx() -> Option<&'static GpuContext> {
    let ctx = gpu()?;
    if !ctx.has_f16() {
        let err = Precision::F16.check(ctx);
        assert!(matches!(err, Err(Error::InvalidArgument(_))), "{err:?}");
        return None;
    }
    Some(ctx)
}

/// Run `g` in f16 with every operand at an odd offset inside shared f16 buffers (or at offset 0
/// with `aligned`, which takes the vec4 path) and compare with `gemm_cpu` on the same f16
/// values; c's neighbours must be untouched.
fn check(ctx: &GpuContext, kern: GemmKernel, g: Gemm, aligned: bool, seed: u64) {
    let g = g.precision(Precision::F16);
    let (m, n, k) = (g.m, g.n, g.k);
    let a = halves(seed, m * k);
    let b = halves(seed + 1, k * n);
    let bias = halves(seed + 2, n);
    let c0 = halves(seed + 3, m * n);
    let pad = if aligned { [0, 0, 0, 0] } else { [3, 5, 1, 5] };
    let (oa, ob) = (pad[0], pad[0] + a.len() + pad[1]);
    let obias = ob + b.len() + pad[2];
    let mut packed = vec![7.0f32; obias + n + 2];
    packed[oa..oa + a.len()].copy_from_slice(&a);
    packed[ob..ob + b.len()].copy_from_slice(&b);
    packed[obias..obias + n].copy_from_slice(&bias);
    let oc = pad[3];
    let mut cbuf = vec![-9.0f32; oc + m * n + 3];
    cbuf[oc..oc + m * n].copy_from_slice(&c0);
    let inputs = GpuTensor::from_slice(ctx, &to_f16(&packed), &[packed.len()]).unwrap();
    let out = GpuTensor::from_slice(ctx, &to_f16(&cbuf), &[cbuf.len()]).unwrap();
    let (ia, ib) = if aligned {
        // Separate buffers at offset 0 for the vec4 path.
        (
            GpuTensor::from_slice(ctx, &to_f16(&a), &[a.len()]).unwrap(),
            GpuTensor::from_slice(ctx, &to_f16(&b), &[b.len()]).unwrap(),
        )
    } else {
        (inputs.clone(), inputs.clone())
    };
    let (va, vb) = if aligned {
        (View::of(&ia), View::of(&ib))
    } else {
        (
            View::slice(&inputs, oa as u64, a.len() as u64).unwrap(),
            View::slice(&inputs, ob as u64, b.len() as u64).unwrap(),
        )
    };
    let vbias = View::slice(&inputs, obias as u64, n as u64).unwrap();
    let vc = View::slice(&out, oc as u64, (m * n) as u64).unwrap();
    let mut rec = Recorder::new();
    gemm_with(ctx, &mut rec, &g, va, vb, Some(vbias), vc, kern).unwrap();
    rec.run(ctx).unwrap();
    let got: Vec<f32> = out
        .to_vec(ctx)
        .unwrap()
        .iter()
        .map(|h| h.to_f32())
        .collect();
    let mut want = c0;
    gemm_cpu(&g, &a, &b, Some(&bias), &mut want).unwrap();
    let what = format!("{kern:?} {g:?} aligned={aligned}");
    for (i, (&x, &w)) in got[oc..oc + m * n].iter().zip(&want).enumerate() {
        // f32 sums of exact f16 products; one f16 rounding of the result (2^-11 relative).
        let e = (x - w).abs() / (1.0 + w.abs());
        assert!(e < 1e-3, "{what}: element {i}: got {x}, want {w}");
    }
    assert!(
        got[..oc].iter().all(|&v| v == -9.0),
        "{what}: wrote before c"
    );
    assert!(
        got[oc + m * n..].iter().all(|&v| v == -9.0),
        "{what}: wrote after c"
    );
}

#[test]
fn f16_gemm_matches_the_reference_on_every_kernel_and_layout() {
    let Some(ctx) = f16_ctx() else { return };
    let mut kernels = vec![GemmKernel::Tiled];
    if subgroup8_suits(ctx) {
        kernels.push(GemmKernel::Subgroup8);
    }
    let mut seed = 100;
    for kern in kernels {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            for (m, n, k) in [(1, 1, 1), (17, 33, 65), (70, 36, 44)] {
                let g = Gemm::new(m, n, k).trans_a(ta).trans_b(tb);
                check(ctx, kern, g, false, seed);
                check(
                    ctx,
                    kern,
                    g.activation(Activation::LeakyRelu(0.01)),
                    true,
                    seed + 10,
                );
                let residual = g.accumulate(true).activation(Activation::Gelu);
                check(ctx, kern, residual, false, seed + 20);
                seed += 1;
            }
        }
    }
}

#[test]
fn f16_gemm_refuses_views_past_their_buffer() {
    let Some(ctx) = f16_ctx() else { return };
    // 12 f16 values occupy 24 bytes; a view of 12 elements read as f16 fits, as f32 it would not.
    let t = GpuTensor::<f16>::zeros(ctx, &[12]).unwrap();
    let c = GpuTensor::<f16>::zeros(ctx, &[9]).unwrap();
    let g = Gemm::new(3, 3, 4).precision(Precision::F16);
    let v = View::slice(&t, 0, 12).unwrap();
    let mut rec = Recorder::new();
    let vc = View::of(&c);
    gemm_with(ctx, &mut rec, &g, v, v, None, vc, GemmKernel::Auto).unwrap();
    let a = View::slice(&t, 0, 12).unwrap();
    let b = View {
        buffer: t.buffer(),
        offset: 4,
        len: 12,
    };
    let r = gemm_with(ctx, &mut rec, &g, a, b, None, vc, GemmKernel::Auto);
    assert!(matches!(r, Err(Error::Shape(_))), "{r:?}");
}

fn tiny(project: bool, blocks: usize) -> FlowConfig {
    let geometry = if project {
        Geometry::Sphere
    } else {
        Geometry::Simplex
    };
    let mut f = FlowConfig::new(3, 5, 48, geometry);
    f.mlp.time_dim = 12;
    f.mlp.blocks = blocks;
    f
}

/// Points on the positive orthant of the sphere per position, `rows × L × K`.
fn points(rows: usize, l: usize, k: usize, seed: u64) -> Vec<f32> {
    let u = halves(seed, rows * l * k);
    let mut x: Vec<f32> = u.iter().map(|v| v.abs() + 0.05).collect();
    for p in x.chunks_mut(k) {
        let n = p.iter().map(|v| v * v).sum::<f32>().sqrt();
        p.iter_mut().for_each(|v| *v /= n);
    }
    x
}

#[test]
fn field_net_matches_the_cpu_forward_in_both_precisions() {
    let Some(ctx) = gpu() else { return };
    let rows = 7;
    for (project, blocks) in [(true, 2), (false, 0), (true, 1)] {
        let flow = tiny(project, blocks);
        let model = FlowModel::untrained(flow, 5).unwrap();
        let (l, k) = (flow.mlp.seq_len, flow.mlp.categories);
        let x = points(rows, l, k, 9);
        let mlp = Mlp::new(flow.mlp, 0).unwrap();
        let mut cpu =
            CpuExecutor::<f64>::new(&mlp.graph, rows, &[mlp.out], None, OptimConfig::default())
                .unwrap();
        cpu.load_params(&model.params).unwrap();
        for t in [0.0f32, 0.37, 0.99] {
            cpu.set_input(Mlp::X, &x).unwrap();
            cpu.set_input(Mlp::T, &vec![t; rows]).unwrap();
            cpu.forward().unwrap();
            let want = cpu.output(mlp.out).unwrap();
            let scale = want.iter().fold(0f32, |a, v| a.max(v.abs()));
            for p in [Precision::F32, Precision::F16] {
                if p == Precision::F16 && !ctx.has_f16() {
                    continue;
                }
                let net = FieldNet::new(ctx, &model, rows, p).unwrap();
                net.input().write(ctx, &x).unwrap();
                let mut rec = Recorder::new();
                net.record(&mut rec, t).unwrap();
                rec.run(ctx).unwrap();
                let got = net.output().to_vec(ctx).unwrap();
                let err = got
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                // f16 keeps 11 significant bits of every weight and activation.
                let tol = match p {
                    Precision::F32 => 1e-5 * (1.0 + scale),
                    Precision::F16 => 3e-3 * (1.0 + scale),
                };
                eprintln!("project={project} blocks={blocks} t={t} {p}: max error {err:.2e} (|v| ≤ {scale:.3})");
                assert!(err <= tol, "{p}: field differs by {err} > {tol}");
                if project {
                    for (xs, vs) in x.chunks(k).zip(got.chunks(k)) {
                        let d: f32 = xs.iter().zip(vs).map(|(a, b)| a * b).sum();
                        assert!(d.abs() < 1e-4, "{p}: <x, v> = {d}");
                    }
                }
            }
        }
    }
}

#[test]
fn f16_sampling_follows_f32_sampling_of_a_trained_model() {
    let Some(ctx) = f16_ctx() else { return };
    let target = ToyTarget::from_spec("toy:L=4,K=5,seed=0").unwrap();
    let data = target.sample(20_000, 1).unwrap();
    let flow = FlowConfig::new(4, 5, 64, Geometry::Sphere);
    let cfg = TrainConfig {
        batch: 128,
        seed: 3,
        ..Default::default()
    };
    let mut tr = Trainer::new(Device::Cpu, flow, cfg, data).unwrap();
    tr.train_steps(300).unwrap();
    let model = FlowModel::from_trainer(&tr).unwrap();
    let sc = SampleConfig {
        n: 4096,
        steps: 25,
        ..Default::default()
    };
    let s32 = sample(Device::Gpu(ctx), &model, &sc).unwrap();
    let s16 = sample(
        Device::Gpu(ctx),
        &model,
        &SampleConfig {
            precision: Precision::F16,
            ..sc
        },
    )
    .unwrap();
    // Same prior draws, so the two integrations should end at the same vertex almost always.
    let same = s32
        .tokens
        .iter()
        .zip(&s16.tokens)
        .filter(|(a, b)| a == b)
        .count() as f64
        / s32.tokens.len() as f64;
    let kl32 = kl_to_target(&s32, &target.probs).unwrap();
    let kl16 = kl_to_target(&s16, &target.probs).unwrap();
    eprintln!("tokens agreeing {same:.4}; KL f32 {kl32:.5}, f16 {kl16:.5}");
    assert!(
        same > 0.97,
        "only {same} of the tokens agree between f16 and f32"
    );
    assert!(kl32 < 0.03, "f32 KL {kl32}");
    assert!(
        (kl16 - kl32).abs() < 0.005 + 0.25 * kl32,
        "f16 KL {kl16} far from f32 KL {kl32}"
    );
}

#[test]
fn f16_requests_that_cannot_work_are_refused() {
    let flow = tiny(true, 1);
    let mut model = FlowModel::untrained(flow, 1).unwrap();
    let sc = SampleConfig {
        n: 8,
        steps: 2,
        precision: Precision::F16,
        ..Default::default()
    };
    let r = sample(Device::Cpu, &model, &sc);
    assert!(
        matches!(&r, Err(Error::InvalidArgument(m)) if m.contains("GPU")),
        "{r:?}"
    );
    let Some(ctx) = f16_ctx() else { return };
    // A weight beyond f16's range.
    model.params[0].data[0] = 1e6;
    let r = FieldNet::new(ctx, &model, 4, Precision::F16);
    assert!(
        matches!(&r, Err(Error::InvalidArgument(m)) if m.contains("f16")),
        "{r:?}"
    );
    FieldNet::new(ctx, &model, 4, Precision::F32).unwrap();
    // A missing parameter.
    model.params.retain(|p| p.name != "output.bias");
    let r = FieldNet::new(ctx, &model, 4, Precision::F32);
    assert!(
        matches!(&r, Err(Error::Checkpoint(m)) if m.contains("output.bias")),
        "{r:?}"
    );
}
