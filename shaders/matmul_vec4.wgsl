// The vec4 loads of the tiled gemm: the contiguous dimension of a and b and their offsets are
// multiples of 4. After matmul.wgsl.
@group(0) @binding(1) var<storage, read> a: array<E4>;
@group(0) @binding(2) var<storage, read> b: array<E4>;

fn load_a(m0: u32, k0: u32, t: u32) {
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
            if (gk < k && gi < m) { v = vec4<f32>(a[base + (gk * m + gi) / 4u]); }
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
            if (gi < m && gk < k) { v = vec4<f32>(a[base + (gi * k + gk) / 4u]); }
            for (var e = 0u; e < 4u; e++) { put_a(kq * 4u + e, row, v[e]); }
        }
    }
}

fn load_b(n0: u32, k0: u32, t: u32) {
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
            if (gj < n && gk < k) { v = vec4<f32>(b[base + (gj * k + gk) / 4u]); }
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
            if (gk < k && gj < n) { v = vec4<f32>(b[base + (gk * n + gj) / 4u]); }
            Bs[kk * (BN / 4u) + cq] = v;
        }
    }
}

@compute @workgroup_size(16, 16)
fn gemm_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
             @builtin(local_invocation_index) t: u32) {
    tiled(wid, lid, t);
}
