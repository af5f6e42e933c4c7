// Implicit-gemm 1D convolutions over sequences with same padding, on the tiles, product and
// fused store of the tiled gemm (after lib/gemm_prelude.wgsl and matmul.wgsl). Row r of a
// `[rows, chans]` operand is position r % seq of sequence r / seq. The convolved operand `a`
// is read as its im2col matrix: element (r, t·chans + ch) is a[r + o(t), ch] with tap offset
// o(t) = (t − (taps − 1) / 2)·dil (negated with flip), zero outside the sequence.
//   forward      y  = im2col(x)·w + bias        w: [taps·cin, cout]
//   input grad   gx = im2col_flip(gy)·w̃         w̃[(t, co), ci] = w[(t, ci), co]  (flip)
//   weight grad  gw = im2col(x)ᵀ·gy             (trans_a)
@group(0) @binding(1) var<storage, read> a: array<E>;
@group(0) @binding(2) var<storage, read> b: array<E>;

// Element (r, q) of im2col(a).
fn im2col(r: u32, q: u32) -> f32 {
    let t = q / params.chans;
    let ch = q % params.chans;
    var o = (i32(t) - i32((params.taps - 1u) / 2u)) * i32(params.dil);
    if (params.flip == 1u) { o = -o; }
    let src = i32(r % params.seq) + o;
    if (src < 0 || src >= i32(params.seq)) { return 0.0; }
    return f32(a[params.a_off + u32(i32(r) + o) * params.chans + ch]);
}

fn load_a(m0: u32, k0: u32, t: u32) {
    let ta = (params.flags & 1u) != 0u;
    for (var s = 0u; s < BM * BK / 256u; s++) {
        let idx = s * 256u + t;
        var row: u32;
        var kk: u32;
        if (ta) { row = idx % BM; kk = idx / BM; } else { kk = idx % BK; row = idx / BK; }
        let gi = m0 + row;
        let gk = k0 + kk;
        var v = 0.0;
        if (gi < params.m && gk < params.k) {
            if (ta) { v = im2col(gk, gi); } else { v = im2col(gi, gk); }
        }
        put_a(kk, row, v);
    }
}

fn load_b(n0: u32, k0: u32, t: u32) {
    for (var s = 0u; s < BN * BK / 256u; s++) {
        let idx = s * 256u + t;
        let col = idx % BN;
        let kk = idx / BN;
        let gj = n0 + col;
        let gk = k0 + kk;
        var v = 0.0;
        if (gj < params.n && gk < params.k) {
            var i = gk * params.n + gj;
            if (params.flip == 1u) {
                i = ((gk / params.chans) * params.n + gj) * params.chans + gk % params.chans;
            }
            v = f32(b[params.b_off + i]);
        }
        put_b(kk, col, v);
    }
}

@compute @workgroup_size(16, 16)
fn conv_gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
             @builtin(local_invocation_index) t: u32) {
    tiled(wid, lid, t);
}
