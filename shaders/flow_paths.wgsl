// The pieces of the simplex baselines and of the toy protocol that are not sphere maths:
// Dirichlet flow matching's mixture field, the Fisher-Rao pull-back of sphere batches to the
// simplex, fresh draws from a product of categoricals, and row gathers for OT pair draws.
//
// Tensors are rows of K floats: [rows, K] with rows = B * L.

struct PathParams {
    rows: u32,     // rows (B * L), or the batch (gather_rows_u)
    k: u32,        // categories; gather_rows_u: floats per gathered row
    l: u32,        // positions per sequence (categorical_onehot)
    n: u32,        // rows of the source (gather_rows_u); intervals of the table (dirichlet_mix)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    _pad3: u32,
}

@group(0) @binding(0) var<uniform> p: PathParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> z: array<f32>;        // logits
@group(0) @binding(4) var<storage, read> tab: array<f32>;      // C(x, t) at x = (j / n)^2
@group(0) @binding(5) var<storage, read> u: array<f32>;        // uniforms in [0, 1)
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
@group(0) @binding(7) var<storage, read_write> out2: array<f32>;

// ---- Dirichlet FM: v = sum_i p_i C(x_i, t) (e_i - x), p = softmax(z) per row ----

// C(x, t) by linear interpolation in sqrt(x) over the table of n + 1 values.
fn c_factor(xv: f32) -> f32 {
    let f = sqrt(clamp(xv, 0.0, 1.0)) * f32(p.n);
    let j = min(u32(f), p.n - 1u);
    let w = f - f32(j);
    return tab[j] * (1.0 - w) + tab[j + 1u] * w;
}

@compute @workgroup_size(256)
fn dirichlet_mix(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let row = thread_index(wid, nwg, lid);
    if (row >= p.rows) { return; }
    let base = row * p.k;
    var m = z[base];
    for (var c = 1u; c < p.k; c++) {
        m = max(m, z[base + c]);
    }
    var se = 0.0;
    for (var c = 0u; c < p.k; c++) {
        se += exp(z[base + c] - m);
    }
    var mean_c = 0.0;
    for (var c = 0u; c < p.k; c++) {
        mean_c += exp(z[base + c] - m) / se * c_factor(x[base + c]);
    }
    for (var c = 0u; c < p.k; c++) {
        let i = base + c;
        out[i] = exp(z[i] - m) / se * c_factor(x[i]) - x[i] * mean_c;
    }
}

// ---- Fisher-Rao flow on the simplex: p = x^2, v_p = 2 x v_x ----

@compute @workgroup_size(256)
fn to_simplex(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= p.rows * p.k) { return; }
    let xv = x[i];
    out[i] = xv * xv;
    out2[i] = 2.0 * xv * y[i];
}

// out = out^2 in place (the sphere prior pushed to the simplex).
@compute @workgroup_size(256)
fn square(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= p.rows * p.k) { return; }
    out[i] = out[i] * out[i];
}

// ---- fresh one-hot draws: row r = (b, pos) takes the first c whose running sum of
// x[pos, :] (the probabilities) exceeds u[r] times their total ----

@compute @workgroup_size(256)
fn categorical_onehot(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let row = thread_index(wid, nwg, lid);
    if (row >= p.rows) { return; }
    let pb = (row % p.l) * p.k;
    var total = 0.0;
    for (var c = 0u; c < p.k; c++) {
        total += x[pb + c];
    }
    let goal = u[row] * total;
    var acc = 0.0;
    var pick = p.k - 1u;
    for (var c = 0u; c < p.k; c++) {
        acc += x[pb + c];
        if (acc > goal) { pick = c; break; }
    }
    for (var c = 0u; c < p.k; c++) {
        out[row * p.k + c] = select(0.0, 1.0, c == pick);
    }
}

// ---- out[b, :] = x[min(floor(u[b] n), n - 1), :] over rows of k floats ----

@compute @workgroup_size(256)
fn gather_rows_u(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= p.rows * p.k) { return; }
    let b = i / p.k;
    let src = min(u32(u[b] * f32(p.n)), p.n - 1u);
    out[i] = x[src * p.k + i % p.k];
}
