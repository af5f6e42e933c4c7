// The vec4 loads of the tiled gemm: the contiguous dimension of a and b and their offsets are
// multiples of 4. After matmul.wgsl.
@group(0) @binding(1) var<storage, read> a: array<E4>;
@group(0) @binding(2) var<storage, read> b: array<E4>;

// vec4 `idx` of a tile load of an operand with `rows` rows (m for a, n for b) and `k` columns,
// whose tile has `tile_rows` rows from `r0` and BK columns from `k0`. With k contiguous
// (`k_fast`) the vec4 runs along k: returns (row, k/4 in the tile, vec4 index, in bounds);
// otherwise it runs along the rows: returns (row/4, k in the tile, vec4 index, in bounds).
// One function serves a ([m, k] or transposed) and b ([n, k] or [k, n]).
fn tile_vec(idx: u32, tile_rows: u32, r0: u32, k0: u32, rows: u32, k: u32, k_fast: bool) -> vec4<u32> {
    var x: u32;
    var y: u32;
    var gr: u32;
    var gk: u32;
    if (k_fast) {
        x = idx / (BK / 4u);
        y = idx % (BK / 4u);
        gr = r0 + x;
        gk = k0 + y * 4u;
    } else {
        y = idx / (tile_rows / 4u);
        x = idx % (tile_rows / 4u);
        gk = k0 + y;
        gr = r0 + x * 4u;
    }
    let i = select(gk * rows + gr, gr * k + gk, k_fast) / 4u;
    return vec4<u32>(x, y, i, u32(gr < rows && gk < k));
}

fn load_a(m0: u32, k0: u32, t: u32) {
    let k_fast = (params.flags & 1u) == 0u;
    for (var s = 0u; s < BM * BK / 1024u; s++) {
        let e = tile_vec(s * 256u + t, BM, m0, k0, params.m, params.k, k_fast);
        var v = vec4<f32>(0.0);
        if (e.w != 0u) { v = vec4<f32>(a[params.a_off / 4u + e.z]); }
        if (k_fast) {
            for (var i = 0u; i < 4u; i++) { put_a(e.y * 4u + i, e.x, v[i]); }
        } else {
            As[e.y * (BM / 4u) + e.x] = v;
        }
    }
}

fn load_b(n0: u32, k0: u32, t: u32) {
    let k_fast = (params.flags & 2u) != 0u;
    for (var s = 0u; s < BN * BK / 1024u; s++) {
        let e = tile_vec(s * 256u + t, BN, n0, k0, params.n, params.k, k_fast);
        var v = vec4<f32>(0.0);
        if (e.w != 0u) { v = vec4<f32>(b[params.b_off / 4u + e.z]); }
        if (k_fast) {
            for (var i = 0u; i < 4u; i++) { put_b(e.y * 4u + i, e.x, v[i]); }
        } else {
            Bs[e.y * (BN / 4u) + e.x] = v;
        }
    }
}

@compute @workgroup_size(16, 16)
fn gemm_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
             @builtin(local_invocation_index) t: u32) {
    tiled(wid, lid, t);
}
