// Tiled matrix multiplication for GPUs: the tiles, their product and the store, shared by the
// scalar and vec4 kernels (matmul_scalar.wgsl, matmul_vec4.wgsl, which define load_a and
// load_b). After lib/gemm_prelude.wgsl (parameters, bias and output bindings, epilogue).

// ---- tiled kernels ----
// A workgroup of 16×16 invocations computes a BM×BN block of c (BM = 16·TM, BN = 16·TN), walking
// k in steps of BK. Each step stages an A tile (BK×BM, k-major) and a B tile (BK×BN) in
// workgroup memory; each invocation then accumulates a TM×TN register block. Invocation (tx, ty)
// owns rows p·64 + 4·ty + [0, 4) for p < TM/4 and columns q·64 + 4·tx + [0, 4) for q < TN/4, so
// its workgroup-memory reads are vec4s and neighbouring invocations read neighbouring vec4s.
// Loads outside the matrices read as zero, so ragged edges need no special case until the store.

const TM: u32 = 4u;
const TN: u32 = 4u;
const BK: u32 = 32u;
const BM: u32 = 16u * TM;
const BN: u32 = 16u * TN;
const MQ: u32 = TM / 4u;        // vec4 row groups per invocation
const NQ: u32 = TN / 4u;        // vec4 column groups per invocation

var<workgroup> As: array<vec4<f32>, BK * BM / 4u>;   // As[kk][row], row in vec4s
var<workgroup> Bs: array<vec4<f32>, BK * BN / 4u>;   // Bs[kk][col], col in vec4s

fn put_a(kk: u32, row: u32, v: f32) { As[kk * (BM / 4u) + row / 4u][row % 4u] = v; }
fn put_b(kk: u32, col: u32, v: f32) { Bs[kk * (BN / 4u) + col / 4u][col % 4u] = v; }

// Multiply the staged tiles into the register block.
fn mac(acc: ptr<function, array<vec4<f32>, TM * NQ>>, tx: u32, ty: u32) {
    for (var kk = 0u; kk < BK; kk++) {
        var a: array<vec4<f32>, MQ>;
        var b: array<vec4<f32>, NQ>;
        for (var p = 0u; p < MQ; p++) { a[p] = As[kk * (BM / 4u) + p * 16u + ty]; }
        for (var q = 0u; q < NQ; q++) { b[q] = Bs[kk * (BN / 4u) + q * 16u + tx]; }
        for (var p = 0u; p < MQ; p++) {
            for (var e = 0u; e < 4u; e++) {
                for (var q = 0u; q < NQ; q++) {
                    let r = (p * 4u + e) * NQ + q;
                    (*acc)[r] = fma(vec4<f32>(a[p][e]), b[q], (*acc)[r]);
                }
            }
        }
    }
}

fn store_block(acc: ptr<function, array<vec4<f32>, TM * NQ>>, m0: u32, n0: u32, tx: u32, ty: u32) {
    for (var p = 0u; p < MQ; p++) {
        for (var e = 0u; e < 4u; e++) {
            let i = m0 + p * 64u + ty * 4u + e;
            if (i >= params.m) { continue; }
            for (var q = 0u; q < NQ; q++) {
                let v = (*acc)[(p * 4u + e) * NQ + q];
                for (var f = 0u; f < 4u; f++) {
                    let j = n0 + q * 64u + tx * 4u + f;
                    if (j < params.n) { store(i, j, v[f]); }
                }
            }
        }
    }
}

// The whole product of one workgroup's block: stage tiles, multiply, store.
fn tiled(wid: vec3<u32>, lid: vec3<u32>, t: u32) {
    let m0 = wid.y * BM;
    let n0 = wid.x * BN;
    var acc: array<vec4<f32>, TM * NQ>;
    for (var k0 = 0u; k0 < params.k; k0 += BK) {
        load_a(m0, k0, t);
        load_b(n0, k0, t);
        workgroupBarrier();
        mac(&acc, lid.x, lid.y);
        workgroupBarrier();
    }
    store_block(&acc, m0, n0, lid.x, lid.y);
}
