// The scalar loads of the tiled gemm: any shapes and offsets. After matmul.wgsl.
@group(0) @binding(1) var<storage, read> a: array<E>;
@group(0) @binding(2) var<storage, read> b: array<E>;

// Element `idx` of a tile load of an operand with `rows` rows (m for a, n for b) and `k`
// columns, whose tile has `tile_rows` rows from `r0` and BK columns from `k0`, stored with k
// contiguous (`k_fast`) or with the rows contiguous. Consecutive `idx` walk the contiguous
// dimension, so the loads coalesce. Returns (row in the tile, k in the tile, element index,
// 1 if inside the matrix). One function serves a and b: a is [m, k] (k_fast) or transposed,
// b is [n, k] (k_fast, transposed) or [k, n].
fn tile_elem(idx: u32, tile_rows: u32, r0: u32, k0: u32, rows: u32, k: u32, k_fast: bool) -> vec4<u32> {
    var r: u32;
    var kk: u32;
    if (k_fast) { kk = idx % BK; r = idx / BK; } else { r = idx % tile_rows; kk = idx / tile_rows; }
    let gr = r0 + r;
    let gk = k0 + kk;
    return vec4<u32>(r, kk, select(gk * rows + gr, gr * k + gk, k_fast), u32(gr < rows && gk < k));
}

fn load_a(m0: u32, k0: u32, t: u32) {
    let k_fast = (params.flags & 1u) == 0u;
    for (var s = 0u; s < BM * BK / 256u; s++) {
        let e = tile_elem(s * 256u + t, BM, m0, k0, params.m, params.k, k_fast);
        var v = 0.0;
        if (e.w != 0u) { v = f32(a[params.a_off + e.z]); }
        put_a(e.y, e.x, v);
    }
}

fn load_b(n0: u32, k0: u32, t: u32) {
    let k_fast = (params.flags & 2u) != 0u;
    for (var s = 0u; s < BN * BK / 256u; s++) {
        let e = tile_elem(s * 256u + t, BN, n0, k0, params.n, params.k, k_fast);
        var v = 0.0;
        if (e.w != 0u) { v = f32(b[params.b_off + e.z]); }
        put_b(e.y, e.x, v);
    }
}

@compute @workgroup_size(16, 16)
fn gemm_scalar(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
               @builtin(local_invocation_index) t: u32) {
    tiled(wid, lid, t);
}
