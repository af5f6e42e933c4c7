// Storage type of every operand (f16 variants replace these two lines; arithmetic is f32).
alias E = f32;
alias E4 = vec4<f32>;

// Matrix multiplication for CPU adapters (software Vulkan such as Mesa's lavapipe), which run
// invocations as SIMD lanes and load memory lane by lane at non-uniform addresses. Each memory
// load here therefore brings 8 *different* useful values (one per lane), and the A values are
// spread across the subgroup with subgroupBroadcast, a register operation. Host code uses this
// kernel only when the adapter is a CPU whose subgroups are exactly 8 invocations wide.
//
// A workgroup is one subgroup of 8 invocations and computes a 32×16 block of c: lane l loads
// rows i0 + 8q + l (q < 4) of op(a) and columns j0 + 8c + l (c < 2) of op(b) for each k, and
// accumulates the 32×2 outputs (i0 + row, j0 + 8c + l). The inner loop is written out by hand
// so every accumulator is a register. Same parameters, bindings and epilogue as matmul.wgsl.
// Rows and columns past the edges load clamped indices and are never stored.
// (Subgroup builtins need the device's SUBGROUP feature; naga does not yet take
// `enable subgroups;`.)


struct Params {
    m: u32,
    n: u32,
    k: u32,
    flags: u32,     // 1 trans_a, 2 trans_b, 4 accumulate, 8 has bias
    act: u32,       // 0 identity, 1 relu, 2 leaky relu, 3 silu, 4 gelu (tanh)
    a_off: u32,
    b_off: u32,
    c_off: u32,
    bias_off: u32,
    alpha: f32,
    slope: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<E>;
@group(0) @binding(2) var<storage, read> b: array<E>;
@group(0) @binding(3) var<storage, read> bias: array<E>;
@group(0) @binding(4) var<storage, read_write> c: array<E>;

fn activate(x: f32) -> f32 {
    switch params.act {
        case 1u: { return max(x, 0.0); }
        case 2u: { return select(params.slope * x, x, x >= 0.0); }
        case 3u: { return x / (1.0 + exp(-x)); }
        case 4u: {
            let u = clamp(0.7978845608028654 * (x + 0.044715 * x * x * x), -15.0, 15.0);
            return 0.5 * x * (1.0 + tanh(u));
        }
        default: { return x; }
    }
}

fn store(i: u32, j: u32, acc: f32) {
    if (i >= params.m || j >= params.n) { return; }
    var v = params.alpha * acc;
    if ((params.flags & 8u) != 0u) {
        v += f32(bias[params.bias_off + j]);
    }
    let idx = params.c_off + i * params.n + j;
    if ((params.flags & 4u) != 0u) {
        c[idx] = E(f32(c[idx]) + activate(v));
    } else {
        c[idx] = E(activate(v));
    }
}
@compute @workgroup_size(8)
fn gemm_sg8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_invocation_id) l: u32) {
    let m = params.m;
    let n = params.n;
    let k = params.k;
    let ta = (params.flags & 1u) != 0u;
    let tb = (params.flags & 2u) != 0u;
    // a[row, kk] = a[a_off + row * ra + kk * ka]; b[kk, col] = b[b_off + kk * kb + col * cb]
    let ra = select(k, 1u, ta);
    let ka = select(1u, m, ta);
    let kb = select(n, 1u, tb);
    let cb = select(1u, k, tb);
    let i0 = wid.y * 32u;
    let j0 = wid.x * 16u;
    var pa0 = params.a_off + min(i0 + 0u + l, m - 1u) * ra;
    var pa1 = params.a_off + min(i0 + 8u + l, m - 1u) * ra;
    var pa2 = params.a_off + min(i0 + 16u + l, m - 1u) * ra;
    var pa3 = params.a_off + min(i0 + 24u + l, m - 1u) * ra;
    var pb0 = params.b_off + min(j0 + 0u + l, n - 1u) * cb;
    var pb1 = params.b_off + min(j0 + 8u + l, n - 1u) * cb;
    var c0_0 = 0.0;
    var c0_1 = 0.0;
    var c1_0 = 0.0;
    var c1_1 = 0.0;
    var c2_0 = 0.0;
    var c2_1 = 0.0;
    var c3_0 = 0.0;
    var c3_1 = 0.0;
    var c4_0 = 0.0;
    var c4_1 = 0.0;
    var c5_0 = 0.0;
    var c5_1 = 0.0;
    var c6_0 = 0.0;
    var c6_1 = 0.0;
    var c7_0 = 0.0;
    var c7_1 = 0.0;
    var c8_0 = 0.0;
    var c8_1 = 0.0;
    var c9_0 = 0.0;
    var c9_1 = 0.0;
    var c10_0 = 0.0;
    var c10_1 = 0.0;
    var c11_0 = 0.0;
    var c11_1 = 0.0;
    var c12_0 = 0.0;
    var c12_1 = 0.0;
    var c13_0 = 0.0;
    var c13_1 = 0.0;
    var c14_0 = 0.0;
    var c14_1 = 0.0;
    var c15_0 = 0.0;
    var c15_1 = 0.0;
    var c16_0 = 0.0;
    var c16_1 = 0.0;
    var c17_0 = 0.0;
    var c17_1 = 0.0;
    var c18_0 = 0.0;
    var c18_1 = 0.0;
    var c19_0 = 0.0;
    var c19_1 = 0.0;
    var c20_0 = 0.0;
    var c20_1 = 0.0;
    var c21_0 = 0.0;
    var c21_1 = 0.0;
    var c22_0 = 0.0;
    var c22_1 = 0.0;
    var c23_0 = 0.0;
    var c23_1 = 0.0;
    var c24_0 = 0.0;
    var c24_1 = 0.0;
    var c25_0 = 0.0;
    var c25_1 = 0.0;
    var c26_0 = 0.0;
    var c26_1 = 0.0;
    var c27_0 = 0.0;
    var c27_1 = 0.0;
    var c28_0 = 0.0;
    var c28_1 = 0.0;
    var c29_0 = 0.0;
    var c29_1 = 0.0;
    var c30_0 = 0.0;
    var c30_1 = 0.0;
    var c31_0 = 0.0;
    var c31_1 = 0.0;
    for (var kk = 0u; kk < k; kk++) {
        let av0 = f32(a[pa0]);
        pa0 += ka;
        let av1 = f32(a[pa1]);
        pa1 += ka;
        let av2 = f32(a[pa2]);
        pa2 += ka;
        let av3 = f32(a[pa3]);
        pa3 += ka;
        let bv0 = f32(b[pb0]);
        pb0 += kb;
        let bv1 = f32(b[pb1]);
        pb1 += kb;
        let x0 = subgroupBroadcast(av0, 0u);
        c0_0 = fma(x0, bv0, c0_0);
        c0_1 = fma(x0, bv1, c0_1);
        let x1 = subgroupBroadcast(av0, 1u);
        c1_0 = fma(x1, bv0, c1_0);
        c1_1 = fma(x1, bv1, c1_1);
        let x2 = subgroupBroadcast(av0, 2u);
        c2_0 = fma(x2, bv0, c2_0);
        c2_1 = fma(x2, bv1, c2_1);
        let x3 = subgroupBroadcast(av0, 3u);
        c3_0 = fma(x3, bv0, c3_0);
        c3_1 = fma(x3, bv1, c3_1);
        let x4 = subgroupBroadcast(av0, 4u);
        c4_0 = fma(x4, bv0, c4_0);
        c4_1 = fma(x4, bv1, c4_1);
        let x5 = subgroupBroadcast(av0, 5u);
        c5_0 = fma(x5, bv0, c5_0);
        c5_1 = fma(x5, bv1, c5_1);
        let x6 = subgroupBroadcast(av0, 6u);
        c6_0 = fma(x6, bv0, c6_0);
        c6_1 = fma(x6, bv1, c6_1);
        let x7 = subgroupBroadcast(av0, 7u);
        c7_0 = fma(x7, bv0, c7_0);
        c7_1 = fma(x7, bv1, c7_1);
        let x8 = subgroupBroadcast(av1, 0u);
        c8_0 = fma(x8, bv0, c8_0);
        c8_1 = fma(x8, bv1, c8_1);
        let x9 = subgroupBroadcast(av1, 1u);
        c9_0 = fma(x9, bv0, c9_0);
        c9_1 = fma(x9, bv1, c9_1);
        let x10 = subgroupBroadcast(av1, 2u);
        c10_0 = fma(x10, bv0, c10_0);
        c10_1 = fma(x10, bv1, c10_1);
        let x11 = subgroupBroadcast(av1, 3u);
        c11_0 = fma(x11, bv0, c11_0);
        c11_1 = fma(x11, bv1, c11_1);
        let x12 = subgroupBroadcast(av1, 4u);
        c12_0 = fma(x12, bv0, c12_0);
        c12_1 = fma(x12, bv1, c12_1);
        let x13 = subgroupBroadcast(av1, 5u);
        c13_0 = fma(x13, bv0, c13_0);
        c13_1 = fma(x13, bv1, c13_1);
        let x14 = subgroupBroadcast(av1, 6u);
        c14_0 = fma(x14, bv0, c14_0);
        c14_1 = fma(x14, bv1, c14_1);
        let x15 = subgroupBroadcast(av1, 7u);
        c15_0 = fma(x15, bv0, c15_0);
        c15_1 = fma(x15, bv1, c15_1);
        let x16 = subgroupBroadcast(av2, 0u);
        c16_0 = fma(x16, bv0, c16_0);
        c16_1 = fma(x16, bv1, c16_1);
        let x17 = subgroupBroadcast(av2, 1u);
        c17_0 = fma(x17, bv0, c17_0);
        c17_1 = fma(x17, bv1, c17_1);
        let x18 = subgroupBroadcast(av2, 2u);
        c18_0 = fma(x18, bv0, c18_0);
        c18_1 = fma(x18, bv1, c18_1);
        let x19 = subgroupBroadcast(av2, 3u);
        c19_0 = fma(x19, bv0, c19_0);
        c19_1 = fma(x19, bv1, c19_1);
        let x20 = subgroupBroadcast(av2, 4u);
        c20_0 = fma(x20, bv0, c20_0);
        c20_1 = fma(x20, bv1, c20_1);
        let x21 = subgroupBroadcast(av2, 5u);
        c21_0 = fma(x21, bv0, c21_0);
        c21_1 = fma(x21, bv1, c21_1);
        let x22 = subgroupBroadcast(av2, 6u);
        c22_0 = fma(x22, bv0, c22_0);
        c22_1 = fma(x22, bv1, c22_1);
        let x23 = subgroupBroadcast(av2, 7u);
        c23_0 = fma(x23, bv0, c23_0);
        c23_1 = fma(x23, bv1, c23_1);
        let x24 = subgroupBroadcast(av3, 0u);
        c24_0 = fma(x24, bv0, c24_0);
        c24_1 = fma(x24, bv1, c24_1);
        let x25 = subgroupBroadcast(av3, 1u);
        c25_0 = fma(x25, bv0, c25_0);
        c25_1 = fma(x25, bv1, c25_1);
        let x26 = subgroupBroadcast(av3, 2u);
        c26_0 = fma(x26, bv0, c26_0);
        c26_1 = fma(x26, bv1, c26_1);
        let x27 = subgroupBroadcast(av3, 3u);
        c27_0 = fma(x27, bv0, c27_0);
        c27_1 = fma(x27, bv1, c27_1);
        let x28 = subgroupBroadcast(av3, 4u);
        c28_0 = fma(x28, bv0, c28_0);
        c28_1 = fma(x28, bv1, c28_1);
        let x29 = subgroupBroadcast(av3, 5u);
        c29_0 = fma(x29, bv0, c29_0);
        c29_1 = fma(x29, bv1, c29_1);
        let x30 = subgroupBroadcast(av3, 6u);
        c30_0 = fma(x30, bv0, c30_0);
        c30_1 = fma(x30, bv1, c30_1);
        let x31 = subgroupBroadcast(av3, 7u);
        c31_0 = fma(x31, bv0, c31_0);
        c31_1 = fma(x31, bv1, c31_1);
    }
    store(i0 + 0u, j0 + 0u + l, c0_0);
    store(i0 + 0u, j0 + 8u + l, c0_1);
    store(i0 + 1u, j0 + 0u + l, c1_0);
    store(i0 + 1u, j0 + 8u + l, c1_1);
    store(i0 + 2u, j0 + 0u + l, c2_0);
    store(i0 + 2u, j0 + 8u + l, c2_1);
    store(i0 + 3u, j0 + 0u + l, c3_0);
    store(i0 + 3u, j0 + 8u + l, c3_1);
    store(i0 + 4u, j0 + 0u + l, c4_0);
    store(i0 + 4u, j0 + 8u + l, c4_1);
    store(i0 + 5u, j0 + 0u + l, c5_0);
    store(i0 + 5u, j0 + 8u + l, c5_1);
    store(i0 + 6u, j0 + 0u + l, c6_0);
    store(i0 + 6u, j0 + 8u + l, c6_1);
    store(i0 + 7u, j0 + 0u + l, c7_0);
    store(i0 + 7u, j0 + 8u + l, c7_1);
    store(i0 + 8u, j0 + 0u + l, c8_0);
    store(i0 + 8u, j0 + 8u + l, c8_1);
    store(i0 + 9u, j0 + 0u + l, c9_0);
    store(i0 + 9u, j0 + 8u + l, c9_1);
    store(i0 + 10u, j0 + 0u + l, c10_0);
    store(i0 + 10u, j0 + 8u + l, c10_1);
    store(i0 + 11u, j0 + 0u + l, c11_0);
    store(i0 + 11u, j0 + 8u + l, c11_1);
    store(i0 + 12u, j0 + 0u + l, c12_0);
    store(i0 + 12u, j0 + 8u + l, c12_1);
    store(i0 + 13u, j0 + 0u + l, c13_0);
    store(i0 + 13u, j0 + 8u + l, c13_1);
    store(i0 + 14u, j0 + 0u + l, c14_0);
    store(i0 + 14u, j0 + 8u + l, c14_1);
    store(i0 + 15u, j0 + 0u + l, c15_0);
    store(i0 + 15u, j0 + 8u + l, c15_1);
    store(i0 + 16u, j0 + 0u + l, c16_0);
    store(i0 + 16u, j0 + 8u + l, c16_1);
    store(i0 + 17u, j0 + 0u + l, c17_0);
    store(i0 + 17u, j0 + 8u + l, c17_1);
    store(i0 + 18u, j0 + 0u + l, c18_0);
    store(i0 + 18u, j0 + 8u + l, c18_1);
    store(i0 + 19u, j0 + 0u + l, c19_0);
    store(i0 + 19u, j0 + 8u + l, c19_1);
    store(i0 + 20u, j0 + 0u + l, c20_0);
    store(i0 + 20u, j0 + 8u + l, c20_1);
    store(i0 + 21u, j0 + 0u + l, c21_0);
    store(i0 + 21u, j0 + 8u + l, c21_1);
    store(i0 + 22u, j0 + 0u + l, c22_0);
    store(i0 + 22u, j0 + 8u + l, c22_1);
    store(i0 + 23u, j0 + 0u + l, c23_0);
    store(i0 + 23u, j0 + 8u + l, c23_1);
    store(i0 + 24u, j0 + 0u + l, c24_0);
    store(i0 + 24u, j0 + 8u + l, c24_1);
    store(i0 + 25u, j0 + 0u + l, c25_0);
    store(i0 + 25u, j0 + 8u + l, c25_1);
    store(i0 + 26u, j0 + 0u + l, c26_0);
    store(i0 + 26u, j0 + 8u + l, c26_1);
    store(i0 + 27u, j0 + 0u + l, c27_0);
    store(i0 + 27u, j0 + 8u + l, c27_1);
    store(i0 + 28u, j0 + 0u + l, c28_0);
    store(i0 + 28u, j0 + 8u + l, c28_1);
    store(i0 + 29u, j0 + 0u + l, c29_0);
    store(i0 + 29u, j0 + 8u + l, c29_1);
    store(i0 + 30u, j0 + 0u + l, c30_0);
    store(i0 + 30u, j0 + 8u + l, c30_1);
    store(i0 + 31u, j0 + 0u + l, c31_0);
    store(i0 + 31u, j0 + 8u + l, c31_1);
}
