// The part of every gemm kernel that is not the product itself: the storage type, parameters,
// the bias and output bindings, the activations and the fused epilogue. Prepended by the host
// to matmul.wgsl and matmul_cpu.wgsl (which hold the kernels and bind a and b themselves).
//
// Storage type of every operand (f16 variants replace these two lines; arithmetic is f32).
alias E = f32;
alias E4 = vec4<f32>;

// c = act(alpha * op(a) * op(b) + bias), or with accumulation c += act(alpha * op(a) * op(b) +
// bias); all matrices row-major, stored as E. Operands are bound as (aligned) buffer ranges;
// the element offset of each matrix inside its binding is a parameter.

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

// The fused epilogue for element (i, j) of c holding the raw product `acc`; elements outside c
// are skipped.
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

