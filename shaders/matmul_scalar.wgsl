// The scalar loads of the tiled gemm: any shapes and offsets. After matmul.wgsl.
@group(0) @binding(1) var<storage, read> a: array<E>;
@group(0) @binding(2) var<storage, read> b: array<E>;

fn load_a(m0: u32, k0: u32, t: u32) {
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
            v = f32(a[params.a_off + select(gi * k + gk, gk * m + gi, ta)]);
        }
        put_a(kk, row, v);
    }
}

fn load_b(n0: u32, k0: u32, t: u32) {
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
            v = f32(b[params.b_off + select(gk * n + gj, gj * k + gk, tb)]);
        }
        put_b(kk, col, v);
    }
}

@compute @workgroup_size(16, 16)
fn gemm_scalar(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
               @builtin(local_invocation_index) t: u32) {
    tiled(wid, lid, t);
}
