// The divergence probes of the likelihood (flow/nll): rows of the vector-Jacobian-product batch
// and the contraction of their gradients.
//
// A batch of B sequences of width W = L * K is evaluated with M probes each: row r = m * B + b
// (probe-major) holds sequence b and probe m. A probe z (a Rademacher vector, or the basis
// vector e_m for the exact divergence) enters as the cotangent P_x z, its projection onto the
// tangent space of each sphere factor at x (or Pi z, Pi = I - 11^T / K, onto the tangent space
// of the simplex when p.flat is 1).

struct NllParams {
    b: u32,        // sequences
    m: u32,        // probes per sequence
    w: u32,        // L * K
    k: u32,        // categories
    exact: u32,    // 1: probe m is the basis vector e_m (z unused)
    scale: f32,    // probe_dot: factor on the sum over probes
    flat: u32,     // 1: project by I - 11^T / K (the simplex) instead of I - x x^T
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: NllParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> z: array<f32>;
@group(0) @binding(3) var<storage, read> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> out2: array<f32>;

fn probe(r: u32, c: u32) -> f32 {
    if (p.exact == 1u) {
        return select(0.0, 1.0, c == r / p.b);
    }
    return z[r * p.w + c];
}

// ---- probe_rows: out[r] = x[b], out2[r] = P_x z_r (per position), one thread per (row,
// position) ----

@compute @workgroup_size(256)
fn probe_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    let l = p.w / p.k;
    if (i >= p.m * p.b * l) { return; }
    let r = i / l;
    let pos = i % l;
    let b = r % p.b;
    let src = b * p.w + pos * p.k;
    let dst = r * p.w + pos * p.k;
    let flat = p.flat == 1u;
    var d = 0.0;
    for (var j = 0u; j < p.k; j++) {
        d += select(x[src + j], 1.0, flat) * probe(r, pos * p.k + j);
    }
    if (flat) { d /= f32(p.k); }
    for (var j = 0u; j < p.k; j++) {
        let xv = x[src + j];
        out[dst + j] = xv;
        out2[dst + j] = probe(r, pos * p.k + j) - d * select(xv, 1.0, flat);
    }
}

// ---- probe_dot: out[b] = scale * sum_m <x[r], y[r]>, r = m * B + b (x the gradients, y the
// cotangents) ----

@compute @workgroup_size(256)
fn probe_dot(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let b = thread_index(wid, nwg, lid);
    if (b >= p.b) { return; }
    var s = 0.0;
    for (var m = 0u; m < p.m; m++) {
        let o = (m * p.b + b) * p.w;
        var t = 0.0;
        for (var c = 0u; c < p.w; c++) {
            t += x[o + c] * y[o + c];
        }
        s += t;
    }
    out[b] = p.scale * s;
}
