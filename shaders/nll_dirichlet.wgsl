// Dirichlet FM's part of the likelihood (flow/nll/dirichlet.rs). The field of a position is
// v = sum_i q_i C(x_i) (e_i - x), q = softmax(z) of the network's logits z, C read from a table
// of n + 1 values at x = (j / n)^2 interpolated linearly in sqrt(x) (the sampler's C).
//
// cotangent: the cotangent of the logits for a probe u (tangent to the simplex):
// w = J_softmax M^T u, M = diag(C) - x C^T, so that <w, J_z u> = u^T (dv/dz) J_z u.
// div_terms: the divergence of v at fixed logits, sum_i q_i (C'(x_i) (1 - x_i) - (K - 1) C(x_i)),
// summed over positions and added, scaled, to out[b].
//
// A batch of B sequences of width W = L * K with M probes each has M * B rows, probe-major:
// row r = m * B + b holds sequence b and probe m.

struct DirParams {
    b: u32,        // sequences
    m: u32,        // probes per sequence
    w: u32,        // L * K
    k: u32,        // categories
    n: u32,        // intervals of the table
    scale: f32,    // div_terms: factor on the sum
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: DirParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;     // points [B, W]
@group(0) @binding(2) var<storage, read> z: array<f32>;     // logits [B, W]
@group(0) @binding(3) var<storage, read> u: array<f32>;     // projected probes [M * B, W]
@group(0) @binding(4) var<storage, read> tab: array<f32>;   // C at x = (j / n)^2
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

fn c_at(xv: f32) -> f32 {
    let f = sqrt(clamp(xv, 0.0, 1.0)) * f32(p.n);
    let j = min(u32(f), p.n - 1u);
    let w = f - f32(j);
    return tab[j] * (1.0 - w) + tab[j + 1u] * w;
}

// dC/dx of the interpolant: the slope in sqrt(x) over 2 sqrt(x) (sqrt(x) floored at half the
// first interval, where the slope in x is unbounded).
fn c_slope(xv: f32) -> f32 {
    let nf = f32(p.n);
    let s = sqrt(clamp(xv, 0.0, 1.0));
    let j = min(u32(s * nf), p.n - 1u);
    return (tab[j + 1u] - tab[j]) * nf / (2.0 * max(s, 0.5 / nf));
}

// The largest logit of a position (for a stable softmax) and the sum of exp(z - max).
fn softmax_norm(base: u32) -> vec2<f32> {
    var mx = z[base];
    for (var c = 1u; c < p.k; c++) {
        mx = max(mx, z[base + c]);
    }
    var se = 0.0;
    for (var c = 0u; c < p.k; c++) {
        se += exp(z[base + c] - mx);
    }
    return vec2<f32>(mx, se);
}

@compute @workgroup_size(256)
fn cotangent(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    let l = p.w / p.k;
    if (i >= p.m * p.b * l) { return; }
    let r = i / l;
    let pos = i % l;
    let src = (r % p.b) * p.w + pos * p.k;
    let dst = r * p.w + pos * p.k;
    let sm = softmax_norm(src);
    var xu = 0.0;
    for (var j = 0u; j < p.k; j++) {
        xu += x[src + j] * u[dst + j];
    }
    // m_j = C_j (u_j - <x, u>); w_j = q_j (m_j - <q, m>).
    var qm = 0.0;
    for (var j = 0u; j < p.k; j++) {
        let q = exp(z[src + j] - sm.x) / sm.y;
        qm += q * c_at(x[src + j]) * (u[dst + j] - xu);
    }
    for (var j = 0u; j < p.k; j++) {
        let q = exp(z[src + j] - sm.x) / sm.y;
        out[dst + j] = q * (c_at(x[src + j]) * (u[dst + j] - xu) - qm);
    }
}

@compute @workgroup_size(256)
fn div_terms(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let b = thread_index(wid, nwg, lid);
    if (b >= p.b) { return; }
    let l = p.w / p.k;
    let k1 = f32(p.k) - 1.0;
    var s = 0.0;
    for (var pos = 0u; pos < l; pos++) {
        let base = b * p.w + pos * p.k;
        let sm = softmax_norm(base);
        for (var j = 0u; j < p.k; j++) {
            let xv = x[base + j];
            let q = exp(z[base + j] - sm.x) / sm.y;
            s += q * (c_slope(xv) * (1.0 - xv) - k1 * c_at(xv));
        }
    }
    out[b] += p.scale * s;
}
