// Riemannian minibatch optimal transport on (S^{K-1}_+)^L.
//
// cost:       C[i, j] = Σ_l arccos²(clamp(<x0[i, l, :], x1[j, l, :]>, -1, 1))
// potential (axis 0): f_i = ε log a − ε LSE_j((g_j − C_ij)/ε)       (log-domain Sinkhorn, a = 1/n)
// potential (axis 1): g_j = ε log b − ε LSE_i((f_i − C_ij)/ε)       (b = 1/m)
// plan:       P_ij = exp((f_i + g_j − C_ij)/ε)
// sample:     for each row i, j ~ P[i, :] by inverse CDF with the given uniform u_i.

struct OtParams {
    n: u32,       // rows (x0 batch)
    m: u32,       // columns (x1 batch)
    l: u32,       // positions
    k: u32,       // categories
    eps: f32,
    log_a: f32,
    log_b: f32,
    axis: u32,    // potential: 0 updates f (rows), 1 updates g (columns)
}

@group(0) @binding(0) var<uniform> params: OtParams;
@group(0) @binding(1) var<storage, read> x0: array<f32>;
@group(0) @binding(2) var<storage, read> x1: array<f32>;
@group(0) @binding(3) var<storage, read_write> cost: array<f32>;  // [n, m]
@group(0) @binding(4) var<storage, read_write> f: array<f32>;     // [n] row potentials
@group(0) @binding(5) var<storage, read_write> g: array<f32>;     // [m] column potentials
@group(0) @binding(6) var<storage, read> u: array<f32>;           // [n] uniforms
@group(0) @binding(7) var<storage, read_write> plan_out: array<f32>;
@group(0) @binding(8) var<storage, read_write> picks: array<u32>;

const NEG: f32 = -3.0e38;

// ---- cost matrix: one thread per (i, j)
@compute @workgroup_size(256)
fn cost_matrix(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let idx = thread_index(wid, nwg, lid);
    if (idx >= params.n * params.m) {
        return;
    }
    let i = idx / params.m;
    let j = idx % params.m;
    let lk = params.l * params.k;
    var c = 0.0;
    for (var p = 0u; p < params.l; p = p + 1u) {
        let a = i * lk + p * params.k;
        let b = j * lk + p * params.k;
        var d = 0.0;
        for (var q = 0u; q < params.k; q = q + 1u) {
            d = d + x0[a + q] * x1[b + q];
        }
        let th = acos(clamp(d, -1.0, 1.0));
        c = c + th * th;
    }
    cost[idx] = c;
}

// ---- workgroup log-sum-exp
var<workgroup> wmax: array<f32, WG>;
var<workgroup> wsum: array<f32, WG>;

fn lse_combine(lid: u32, mx: f32, s: f32) -> f32 {
    wmax[lid] = mx;
    wsum[lid] = s;
    workgroupBarrier();
    for (var st = WG / 2u; st > 0u; st = st >> 1u) {
        if (lid < st) {
            let m1 = wmax[lid];
            let m2 = wmax[lid + st];
            let mm = max(m1, m2);
            wsum[lid] = wsum[lid] * exp(m1 - mm) + wsum[lid + st] * exp(m2 - mm);
            wmax[lid] = mm;
        }
        workgroupBarrier();
    }
    return wmax[0] + log(wsum[0]);
}

// ---- one half of a Sinkhorn iteration: one workgroup per row (axis 0) or column (axis 1)
@compute @workgroup_size(256)
fn potential(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let rows = params.axis == 0u;
    let i = group_index(wid, nwg);
    let count = select(params.n, params.m, rows);   // the other side's size
    if (i >= select(params.m, params.n, rows)) {
        return;
    }
    let inv = 1.0 / params.eps;
    var mx = NEG;
    var s = 0.0;
    for (var j = lid; j < count; j = j + WG) {
        var v: f32;
        if (rows) {
            v = (g[j] - cost[i * params.m + j]) * inv;
        } else {
            v = (f[j] - cost[j * params.m + i]) * inv;
        }
        if (v > mx) {
            s = s * exp(mx - v) + 1.0;
            mx = v;
        } else {
            s = s + exp(v - mx);
        }
    }
    let lse = lse_combine(lid, mx, s);
    if (lid == 0u) {
        if (rows) {
            f[i] = params.eps * (params.log_a - lse);
        } else {
            g[i] = params.eps * (params.log_b - lse);
        }
    }
}

// ---- plan: one thread per (i, j)
@compute @workgroup_size(256)
fn plan(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let idx = thread_index(wid, nwg, lid);
    if (idx >= params.n * params.m) {
        return;
    }
    let i = idx / params.m;
    let j = idx % params.m;
    plan_out[idx] = exp((f[i] + g[j] - cost[idx]) / params.eps);
}

// ---- sample: one thread per row, inverse CDF over the unnormalised row exp((g_j − C_ij)/ε)
// relative to the row maximum (f_i cancels).
@compute @workgroup_size(64)
fn sample(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = group_index(wid, nwg) * 64u + lid;
    if (i >= params.n) {
        return;
    }
    let inv = 1.0 / params.eps;
    let row = i * params.m;
    var mx = NEG;
    for (var j = 0u; j < params.m; j = j + 1u) {
        mx = max(mx, (g[j] - cost[row + j]) * inv);
    }
    var total = 0.0;
    for (var j = 0u; j < params.m; j = j + 1u) {
        total = total + exp((g[j] - cost[row + j]) * inv - mx);
    }
    let goal = u[i] * total;
    var acc = 0.0;
    var pick = params.m - 1u;
    for (var j = 0u; j < params.m; j = j + 1u) {
        acc = acc + exp((g[j] - cost[row + j]) * inv - mx);
        if (acc > goal) {
            pick = j;
            break;
        }
    }
    picks[i] = pick;
}
