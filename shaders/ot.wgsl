// Riemannian minibatch optimal transport on (S^{K-1}_+)^L.
//
// cost:       C[i, j] = Σ_l arccos²(clamp(<x0[i, l, :], x1[j, l, :]>, -1, 1))
// row_update: f_i = ε log a − ε LSE_j((g_j − C_ij)/ε)       (log-domain Sinkhorn, a = 1/n)
// col_update: g_j = ε log b − ε LSE_i((f_i − C_ij)/ε)       (b = 1/m)
// plan:       P_ij = exp((f_i + g_j − C_ij)/ε)
// sample:     for each row i, j ~ P[i, :] by inverse CDF with the given uniform u_i.

struct Params {
    n: u32,       // rows (x0 batch)
    m: u32,       // columns (x1 batch)
    l: u32,       // positions
    k: u32,       // categories
    eps: f32,
    log_a: f32,
    log_b: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;

const WG: u32 = 256u;
const NEG: f32 = -3.0e38;

fn gid(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// ---- cost matrix: one thread per (i, j)
@group(0) @binding(1) var<storage, read> x0: array<f32>;
@group(0) @binding(2) var<storage, read> x1: array<f32>;
@group(0) @binding(3) var<storage, read_write> cost_out: array<f32>;

@compute @workgroup_size(256)
fn cost(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let idx = gid(wid, nwg) * WG + lid;
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
    cost_out[idx] = c;
}

// ---- workgroup log-sum-exp
var<workgroup> wmax: array<f32, 256>;
var<workgroup> wsum: array<f32, 256>;

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

// ---- row update: one workgroup per row i
@group(0) @binding(1) var<storage, read> c_in: array<f32>;
@group(0) @binding(2) var<storage, read> other: array<f32>;
@group(0) @binding(3) var<storage, read_write> pot: array<f32>;

@compute @workgroup_size(256)
fn row_update(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg);
    if (i >= params.n) {
        return;
    }
    let inv = 1.0 / params.eps;
    var mx = NEG;
    var s = 0.0;
    for (var j = lid; j < params.m; j = j + WG) {
        let v = (other[j] - c_in[i * params.m + j]) * inv;
        if (v > mx) {
            s = s * exp(mx - v) + 1.0;
            mx = v;
        } else {
            s = s + exp(v - mx);
        }
    }
    let lse = lse_combine(lid, mx, s);
    if (lid == 0u) {
        pot[i] = params.eps * (params.log_a - lse);
    }
}

// ---- column update: one workgroup per column j
@compute @workgroup_size(256)
fn col_update(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let j = gid(wid, nwg);
    if (j >= params.m) {
        return;
    }
    let inv = 1.0 / params.eps;
    var mx = NEG;
    var s = 0.0;
    for (var i = lid; i < params.n; i = i + WG) {
        let v = (other[i] - c_in[i * params.m + j]) * inv;
        if (v > mx) {
            s = s * exp(mx - v) + 1.0;
            mx = v;
        } else {
            s = s + exp(v - mx);
        }
    }
    let lse = lse_combine(lid, mx, s);
    if (lid == 0u) {
        pot[j] = params.eps * (params.log_b - lse);
    }
}

// ---- plan: one thread per (i, j)
@group(0) @binding(1) var<storage, read> pc: array<f32>;
@group(0) @binding(2) var<storage, read> pf: array<f32>;
@group(0) @binding(3) var<storage, read> pg: array<f32>;
@group(0) @binding(4) var<storage, read_write> plan_out: array<f32>;

@compute @workgroup_size(256)
fn plan(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let idx = gid(wid, nwg) * WG + lid;
    if (idx >= params.n * params.m) {
        return;
    }
    let i = idx / params.m;
    let j = idx % params.m;
    plan_out[idx] = exp((pf[i] + pg[j] - pc[idx]) / params.eps);
}

// ---- sample: one thread per row, inverse CDF over the unnormalised row exp((g_j − C_ij)/ε)
// relative to the row maximum (f_i cancels).
@group(0) @binding(2) var<storage, read> sg: array<f32>;
@group(0) @binding(3) var<storage, read> su: array<f32>;
@group(0) @binding(4) var<storage, read_write> picks: array<u32>;

@compute @workgroup_size(64)
fn sample(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg) * 64u + lid;
    if (i >= params.n) {
        return;
    }
    let inv = 1.0 / params.eps;
    let row = i * params.m;
    var mx = NEG;
    for (var j = 0u; j < params.m; j = j + 1u) {
        mx = max(mx, (sg[j] - pc[row + j]) * inv);
    }
    var total = 0.0;
    for (var j = 0u; j < params.m; j = j + 1u) {
        total = total + exp((sg[j] - pc[row + j]) * inv - mx);
    }
    let goal = su[i] * total;
    var acc = 0.0;
    var pick = params.m - 1u;
    for (var j = 0u; j < params.m; j = j + 1u) {
        acc = acc + exp((sg[j] - pc[row + j]) * inv - mx);
        if (acc > goal) {
            pick = j;
            break;
        }
    }
    picks[i] = pick;
}
