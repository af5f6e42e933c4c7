// Tiled matrix multiplication for GPUs. The host prepends lib/gemm_prelude.wgsl (storage
// type, parameters, bias and output bindings, epilogue).

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

// ---- scalar path: any shapes and offsets ----
@group(0) @binding(1) var<storage, read> a_s: array<E>;
@group(0) @binding(2) var<storage, read> b_s: array<E>;

fn load_a_scalar(m0: u32, k0: u32, t: u32) {
    let m = params.m;
    let k = params.k;
    let ta = (params.flags & 1u) != 0u;
    for (var s = 0u; s < BM * BK / 256u; s++) {
        let idx = s * 256u + t;
        var row: u32;
        var kk: u32;
        if (ta) { row = idx % BM; kk = idx / BM; } else { kk = idx % BK; row = idx / BK; }
        let gi = m0 + row;
        let gk = k0 + kk;
        var v = 0.0;
        if (gi < m && gk < k) {
            v = f32(a_s[params.a_off + select(gi * k + gk, gk * m + gi, ta)]);
        }
        put_a(kk, row, v);
    }
}

fn load_b_scalar(n0: u32, k0: u32, t: u32) {
    let n = params.n;
    let k = params.k;
    let tb = (params.flags & 2u) != 0u;
    for (var s = 0u; s < BN * BK / 256u; s++) {
        let idx = s * 256u + t;
        var col: u32;
        var kk: u32;
        if (tb) { kk = idx % BK; col = idx / BK; } else { col = idx % BN; kk = idx / BN; }
        let gj = n0 + col;
        let gk = k0 + kk;
        var v = 0.0;
        if (gj < n && gk < k) {
            v = f32(b_s[params.b_off + select(gk * n + gj, gj * k + gk, tb)]);
        }
        put_b(kk, col, v);
    }
}

@compute @workgroup_size(16, 16)
fn gemm_scalar(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
               @builtin(local_invocation_index) t: u32) {
    let m0 = wid.y * BM;
    let n0 = wid.x * BN;
    var acc: array<vec4<f32>, TM * NQ>;
    for (var k0 = 0u; k0 < params.k; k0 += BK) {
        load_a_scalar(m0, k0, t);
        load_b_scalar(n0, k0, t);
        workgroupBarrier();
        mac(&acc, lid.x, lid.y);
        workgroupBarrier();
    }
    store_block(&acc, m0, n0, lid.x, lid.y);
}

// ---- vec4 path: the contiguous dimension of a and b and their offsets are multiples of 4 ----
@group(0) @binding(1) var<storage, read> a_v: array<E4>;
@group(0) @binding(2) var<storage, read> b_v: array<E4>;

fn load_a_vec4(m0: u32, k0: u32, t: u32) {
    let m = params.m;
    let k = params.k;
    let base = params.a_off / 4u;
    if ((params.flags & 1u) != 0u) {
        // a stored [k, m]: vec4s run along m.
        for (var s = 0u; s < BM * BK / 1024u; s++) {
            let idx = s * 256u + t;
            let kk = idx / (BM / 4u);
            let rq = idx % (BM / 4u);
            let gk = k0 + kk;
            let gi = m0 + rq * 4u;
            var v = vec4<f32>(0.0);
            if (gk < k && gi < m) { v = vec4<f32>(a_v[base + (gk * m + gi) / 4u]); }
            As[kk * (BM / 4u) + rq] = v;
        }
    } else {
        // a stored [m, k]: vec4s run along k.
        for (var s = 0u; s < BM * BK / 1024u; s++) {
            let idx = s * 256u + t;
            let row = idx / (BK / 4u);
            let kq = idx % (BK / 4u);
            let gi = m0 + row;
            let gk = k0 + kq * 4u;
            var v = vec4<f32>(0.0);
            if (gi < m && gk < k) { v = vec4<f32>(a_v[base + (gi * k + gk) / 4u]); }
            for (var e = 0u; e < 4u; e++) { put_a(kq * 4u + e, row, v[e]); }
        }
    }
}

fn load_b_vec4(n0: u32, k0: u32, t: u32) {
    let n = params.n;
    let k = params.k;
    let base = params.b_off / 4u;
    if ((params.flags & 2u) != 0u) {
        // b stored [n, k]: vec4s run along k.
        for (var s = 0u; s < BN * BK / 1024u; s++) {
            let idx = s * 256u + t;
            let col = idx / (BK / 4u);
            let kq = idx % (BK / 4u);
            let gj = n0 + col;
            let gk = k0 + kq * 4u;
            var v = vec4<f32>(0.0);
            if (gj < n && gk < k) { v = vec4<f32>(b_v[base + (gj * k + gk) / 4u]); }
            for (var e = 0u; e < 4u; e++) { put_b(kq * 4u + e, col, v[e]); }
        }
    } else {
        // b stored [k, n]: vec4s run along n.
        for (var s = 0u; s < BN * BK / 1024u; s++) {
            let idx = s * 256u + t;
            let kk = idx / (BN / 4u);
            let cq = idx % (BN / 4u);
            let gk = k0 + kk;
            let gj = n0 + cq * 4u;
            var v = vec4<f32>(0.0);
            if (gk < k && gj < n) { v = vec4<f32>(b_v[base + (gk * n + gj) / 4u]); }
            Bs[kk * (BN / 4u) + cq] = v;
        }
    }
}

@compute @workgroup_size(16, 16)
fn gemm_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
             @builtin(local_invocation_index) t: u32) {
    let m0 = wid.y * BM;
    let n0 = wid.x * BN;
    var acc: array<vec4<f32>, TM * NQ>;
    for (var k0 = 0u; k0 < params.k; k0 += BK) {
        load_a_vec4(m0, k0, t);
        load_b_vec4(n0, k0, t);
        workgroupBarrier();
        mac(&acc, lid.x, lid.y);
        workgroupBarrier();
    }
    store_block(&acc, m0, n0, lid.x, lid.y);
}

