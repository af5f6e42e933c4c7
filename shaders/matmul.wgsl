// Dense matrix multiplication c = act(alpha * op(a) * op(b) + bias), or c += alpha * op(a) * op(b)
// (+ bias), all row-major f32. Operands are bound as (aligned) buffer ranges; the element offset
// of each matrix inside its binding is a parameter.

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
    slope: f32,     // leaky relu slope
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

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

// The fused epilogue for element (i, j) of c holding the raw product `acc`.
fn store(i: u32, j: u32, acc: f32) {
    var v = params.alpha * acc;
    if ((params.flags & 8u) != 0u) {
        v += bias[params.bias_off + j];
    }
    let idx = params.c_off + i * params.n + j;
    if ((params.flags & 4u) != 0u) {
        c[idx] = c[idx] + v;
    } else {
        c[idx] = activate(v);
    }
}

// ---- scalar path ----
@group(0) @binding(1) var<storage, read> a_s: array<f32>;
@group(0) @binding(2) var<storage, read> b_s: array<f32>;

@compute @workgroup_size(16, 16)
fn gemm_scalar(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let m = params.m;
    let n = params.n;
    let k = params.k;
    let ta = (params.flags & 1u) != 0u;
    let tb = (params.flags & 2u) != 0u;
    for (var di = 0u; di < 4u; di++) {
        for (var dj = 0u; dj < 4u; dj++) {
            let i = wid.y * 64u + lid.y * 4u + di;
            let j = wid.x * 64u + lid.x * 4u + dj;
            if (i >= m || j >= n) { continue; }
            var acc = 0.0;
            for (var p = 0u; p < k; p++) {
                let av = select(a_s[params.a_off + i * k + p], a_s[params.a_off + p * m + i], ta);
                let bv = select(b_s[params.b_off + p * n + j], b_s[params.b_off + j * k + p], tb);
                acc += av * bv;
            }
            store(i, j, acc);
        }
    }
}

// ---- vec4 path ----
@group(0) @binding(1) var<storage, read> a_v: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b_v: array<vec4<f32>>;

fn av4(e: u32) -> f32 { return a_v[e / 4u][e % 4u]; }
fn bv4(e: u32) -> f32 { return b_v[e / 4u][e % 4u]; }

@compute @workgroup_size(16, 16)
fn gemm_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let m = params.m;
    let n = params.n;
    let k = params.k;
    let ta = (params.flags & 1u) != 0u;
    let tb = (params.flags & 2u) != 0u;
    for (var di = 0u; di < 4u; di++) {
        for (var dj = 0u; dj < 4u; dj++) {
            let i = wid.y * 64u + lid.y * 4u + di;
            let j = wid.x * 64u + lid.x * 4u + dj;
            if (i >= m || j >= n) { continue; }
            var acc = 0.0;
            for (var p = 0u; p < k; p++) {
                var av: f32;
                if (ta) { av = av4(params.a_off + p * m + i); } else { av = av4(params.a_off + i * k + p); }
                var bv: f32;
                if (tb) { bv = bv4(params.b_off + j * k + p); } else { bv = bv4(params.b_off + p * n + j); }
                acc += av * bv;
            }
            store(i, j, acc);
        }
    }
}
