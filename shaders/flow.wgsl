// Fisher-Flow training and sampling pieces that are not sphere maths: building one-hot data
// batches from token ids (and gathering their labels and signal tracks), permuting rows (minibatch OT pairs), argmax read-out, and the linear
// flow-matching baseline on the simplex.
//
// Tensors are rows of K floats: [rows, K] with rows = B * L.

struct FlowParams {
    rows: u32,     // B * L
    k: u32,        // categories
    l: u32,        // positions per sequence
    n: u32,        // sequences in the data set (gather) / batch size (permute)
    dt: f32,       // simplex Euler step; axpby: a
    b: f32,        // axpby: b
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: FlowParams;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;   // [n, l] token ids
@group(0) @binding(2) var<storage, read> u: array<f32>;        // [B] uniforms in [0, 1)
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> y: array<f32>;
@group(0) @binding(5) var<storage, read> perm: array<u32>;     // [B] row indices
@group(0) @binding(6) var<storage, read> t: array<f32>;        // [B] times
@group(0) @binding(7) var<storage, read_write> out: array<f32>;
@group(0) @binding(8) var<storage, read_write> out2: array<f32>;
@group(0) @binding(9) var<storage, read_write> ids: array<u32>;
@group(0) @binding(10) var<storage, read> z: array<f32>;

// The data set's sequence that batch row b draws: floor(u[b] * n), at most n - 1.
fn data_row(b: u32) -> u32 {
    return min(u32(u[b] * f32(p.n)), p.n - 1u);
}

// ---- gather_onehot: out[b, l, :] = onehot(tokens[data_row(b), l]) ----

@compute @workgroup_size(256)
fn gather_onehot(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= p.rows * p.k) { return; }
    let row = i / p.k;
    let c = i % p.k;
    let b = row / p.l;
    let pos = row % p.l;
    let tok = tokens[data_row(b) * p.l + pos];
    out[i] = select(0.0, 1.0, tok == c);
}

// ---- gather_rows: out[b, :] = x[data_row(b), :] over rows of k floats (p.rows = B) ----

@compute @workgroup_size(256)
fn gather_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= p.rows * p.k) { return; }
    out[i] = x[data_row(i / p.k) * p.k + i % p.k];
}

// ---- gather_labels: out[b] = x[data_row(b)], or the null class p.b where the dropout uniform
// z[b] is below the dropout probability p.dt (p.rows = B) ----

@compute @workgroup_size(256)
fn gather_labels(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let b = thread_index(wid, nwg, lid);
    if (b >= p.rows) { return; }
    out[b] = select(x[data_row(b)], p.b, z[b] < p.dt);
}

// ---- permute_rows: out[b, :] = src[perm[b], :] over sequences of l*k floats ----

@compute @workgroup_size(256)
fn permute_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    let per = p.l * p.k;
    if (i >= p.n * per) { return; }
    let b = i / per;
    out[i] = x[perm[b] * per + i % per];
}

// ---- argmax over each row of k (ties: the lowest index) ----

@compute @workgroup_size(256)
fn argmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let row = thread_index(wid, nwg, lid);
    if (row >= p.rows) { return; }
    let base = row * p.k;
    var best = 0u;
    var bv = x[base];
    for (var c = 1u; c < p.k; c++) {
        let v = x[base + c];
        if (v > bv) { bv = v; best = c; }
    }
    ids[row] = best;
}

// ---- linear flow matching on the simplex: x_t = t x1 + (1 - t) x0, u = x1 - x0 ----

@compute @workgroup_size(256)
fn linear_interpolant(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= p.rows * p.k) { return; }
    let ti = t[i / (p.l * p.k)];
    let a = x[i];
    let b = y[i];
    out[i] = ti * b + (1.0 - ti) * a;
    out2[i] = b - a;
}

// ---- simplex Euler step: out <- x + dt * (v - mean(v)), clamped at 0 and renormalised ----

@compute @workgroup_size(256)
fn simplex_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let row = thread_index(wid, nwg, lid);
    if (row >= p.rows) { return; }
    let base = row * p.k;
    var mean = 0.0;
    for (var c = 0u; c < p.k; c++) { mean += y[base + c]; }
    mean /= f32(p.k);
    var total = 0.0;
    for (var c = 0u; c < p.k; c++) {
        let y = max(x[base + c] + p.dt * (y[base + c] - mean), 0.0);
        out[base + c] = y;
        total += y;
    }
    for (var c = 0u; c < p.k; c++) {
        out[base + c] = select(out[base + c] / total, 1.0 / f32(p.k), total <= 0.0);
    }
}

// ---- axpby: out <- a * x + b * out (combining ODE stages); a = dt ----

@compute @workgroup_size(256)
fn axpby(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= p.rows * p.k) { return; }
    out[i] = p.dt * x[i] + p.b * out[i];
}

// ---- err_terms: out <- (z / (atol + rtol * max(|x|, |y|)))^2, the scaled squared error of
// an embedded Runge-Kutta pair (z the error, x and y the points before and after); atol = dt,
// rtol = b ----
@compute @workgroup_size(256)
fn err_terms(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= p.rows * p.k) { return; }
    let e = z[i] / (p.dt + p.b * max(abs(x[i]), abs(y[i])));
    out[i] = e * e;
}
