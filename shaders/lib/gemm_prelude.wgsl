// The part of every gemm kernel that is not the product itself: the parameters, the bias and
// output bindings and the fused epilogue (activations from lib/act.wgsl). Operands are stored
// as E (f32 or f16: the kernels are storage-generic); arithmetic is f32. Shared by the tiled
// kernels (matmul*.wgsl) and the subgroup kernel (matmul_cpu.wgsl), which bind a and b.

// c = act(alpha * op(a) * op(b) + bias), or with accumulation c += act(alpha * op(a) * op(b) +
// bias); all matrices row-major, stored as E. Operands are bound as (aligned) buffer ranges;
// the element offset of each matrix inside its binding is a parameter.

struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    flags: u32,     // 1 trans_a, 2 trans_b, 4 accumulate, 8 has bias
    act: u32,       // an ACT_* code of lib/act.wgsl
    a_off: u32,
    b_off: u32,
    c_off: u32,
    bias_off: u32,
    alpha: f32,
    slope: f32,     // leaky relu slope
    seq: u32,       // the implicit-gemm convolutions of conv.wgsl: positions per sequence,
    chans: u32,     // channels per position of the convolved operand,
    taps: u32,      // kernel size,
    dil: u32,       // dilation,
    flip: u32,      // 1: the transposed convolution (input gradient)
}

@group(0) @binding(0) var<uniform> params: GemmParams;
@group(0) @binding(3) var<storage, read> bias: array<E>;
@group(0) @binding(4) var<storage, read_write> c: array<E>;

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
        c[idx] = E(f32(c[idx]) + act_apply(params.act, params.slope, v));
    } else {
        c[idx] = E(act_apply(params.act, params.slope, v));
    }
}

