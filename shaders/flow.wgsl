// Fisher-Flow training and sampling pieces that are not sphere maths: building one-hot data
// batches from token ids, permuting rows (minibatch OT pairs), argmax read-out, and the linear
// flow-matching baseline on the simplex.
//
// Tensors are rows of K floats: [rows, K] with rows = B * L.

struct Params {
    rows: u32,     // B * L
    k: u32,        // categories
    l: u32,        // positions per sequence
    n: u32,        // sequences in the data set (gather) / batch size (permute)
    dt: f32,       // simplex Euler step
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const WG: u32 = 256u;

fn linear_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * WG + lid;
}

@group(0) @binding(0) var<uniform> p: Params;

// ---- gather_onehot: out[b, l, :] = onehot(tokens[idx(b), l]), idx(b) = floor(u[b] * n) ----
@group(0) @binding(1) var<storage, read> g_tokens: array<u32>;   // [n, l]
@group(0) @binding(2) var<storage, read> g_u: array<f32>;        // [B] uniforms in [0, 1)
@group(0) @binding(3) var<storage, read_write> g_out: array<f32>; // [B, l, k]

@compute @workgroup_size(256)
fn gather_onehot(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.rows * p.k) { return; }
    let row = i / p.k;
    let c = i % p.k;
    let b = row / p.l;
    let pos = row % p.l;
    let seq = min(u32(g_u[b] * f32(p.n)), p.n - 1u);
    let tok = g_tokens[seq * p.l + pos];
    g_out[i] = select(0.0, 1.0, tok == c);
}

// ---- permute_rows: out[b, :] = src[perm[b], :] over sequences of l*k floats ----
@group(0) @binding(1) var<storage, read> pr_src: array<f32>;
@group(0) @binding(2) var<storage, read> pr_perm: array<u32>;
@group(0) @binding(3) var<storage, read_write> pr_out: array<f32>;

@compute @workgroup_size(256)
fn permute_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    let per = p.l * p.k;
    if (i >= p.n * per) { return; }
    let b = i / per;
    pr_out[i] = pr_src[pr_perm[b] * per + i % per];
}

// ---- argmax over each row of k (ties: the lowest index) ----
@group(0) @binding(1) var<storage, read> am_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> am_out: array<u32>;

@compute @workgroup_size(256)
fn argmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let row = linear_id(wid, nwg, lid);
    if (row >= p.rows) { return; }
    let base = row * p.k;
    var best = 0u;
    var bv = am_x[base];
    for (var c = 1u; c < p.k; c++) {
        let v = am_x[base + c];
        if (v > bv) { bv = v; best = c; }
    }
    am_out[row] = best;
}

// ---- linear flow matching on the simplex: x_t = t x1 + (1 - t) x0, u = x1 - x0 ----
@group(0) @binding(1) var<storage, read> li_x0: array<f32>;
@group(0) @binding(2) var<storage, read> li_x1: array<f32>;
@group(0) @binding(3) var<storage, read> li_t: array<f32>;        // [B]
@group(0) @binding(4) var<storage, read_write> li_xt: array<f32>;
@group(0) @binding(5) var<storage, read_write> li_u: array<f32>;

@compute @workgroup_size(256)
fn linear_interpolant(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.rows * p.k) { return; }
    let t = li_t[i / (p.l * p.k)];
    let a = li_x0[i];
    let b = li_x1[i];
    li_xt[i] = t * b + (1.0 - t) * a;
    li_u[i] = b - a;
}

// ---- simplex Euler step: out <- x + dt * (v - mean(v)), clamped at 0 and renormalised ----
@group(0) @binding(1) var<storage, read> se_x: array<f32>;
@group(0) @binding(2) var<storage, read> se_v: array<f32>;
@group(0) @binding(3) var<storage, read_write> se_out: array<f32>;

@compute @workgroup_size(256)
fn simplex_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let row = linear_id(wid, nwg, lid);
    if (row >= p.rows) { return; }
    let base = row * p.k;
    var mean = 0.0;
    for (var c = 0u; c < p.k; c++) { mean += se_v[base + c]; }
    mean /= f32(p.k);
    var total = 0.0;
    for (var c = 0u; c < p.k; c++) {
        let y = max(se_x[base + c] + p.dt * (se_v[base + c] - mean), 0.0);
        se_out[base + c] = y;
        total += y;
    }
    for (var c = 0u; c < p.k; c++) {
        se_out[base + c] = select(se_out[base + c] / total, 1.0 / f32(p.k), total <= 0.0);
    }
}

// ---- axpby: out <- a * v + b * out (combining ODE stages); a = dt, b = bitcast(_pad0) ----
@group(0) @binding(1) var<storage, read> ax_v: array<f32>;
@group(0) @binding(2) var<storage, read_write> ax_out: array<f32>;

@compute @workgroup_size(256)
fn axpby(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.rows * p.k) { return; }
    ax_out[i] = p.dt * ax_v[i] + bitcast<f32>(p._pad0) * ax_out[i];
}
