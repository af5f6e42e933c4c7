// Kernels of the sequence-model ops on `[rows, cols]` tensors whose rows are the positions of
// sequences of `seq` rows each: normalisation over channels, a per-channel affine map, column
// dot products (its parameter gradients), per-sequence broadcast and its sum, and embedding
// lookups. Outputs are written `out = v` or, with params.acc == 1, `out = out + v`.
// Storage-generic: buffers hold E (f32, or f16 in inference programs), arithmetic is f32.

struct SeqParams {
    rows: u32,
    cols: u32,
    seq: u32,       // rows per sequence
    n: u32,         // embedding: rows of the table (classes)
    acc: u32,
    eps: f32,       // normalisation
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: SeqParams;
@group(0) @binding(1) var<storage, read> x: array<E>;
@group(0) @binding(2) var<storage, read> y: array<E>;
@group(0) @binding(3) var<storage, read> z: array<E>;
@group(0) @binding(4) var<storage, read_write> out: array<E>;

fn put(i: u32, v: f32) {
    if (params.acc == 1u) {
        out[i] = E(f32(out[i]) + v);
    } else {
        out[i] = E(v);
    }
}

// Mean and 1/σ of row r of x.
fn row_stats(r: u32) -> vec2<f32> {
    let c = params.cols;
    var s = 0.0;
    for (var j = 0u; j < c; j++) { s += f32(x[r * c + j]); }
    let mu = s / f32(c);
    var q = 0.0;
    for (var j = 0u; j < c; j++) {
        let d = f32(x[r * c + j]) - mu;
        q += d * d;
    }
    return vec2<f32>(mu, inverseSqrt(q / f32(c) + params.eps));
}

// out[r, :] = (x[r, :] − mean) / sqrt(var + eps); one thread per row.
@compute @workgroup_size(256)
fn norm_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let r = thread_index(wid, nwg, lid);
    if (r >= params.rows) { return; }
    let st = row_stats(r);
    for (var j = 0u; j < params.cols; j++) {
        let i = r * params.cols + j;
        out[i] = E((f32(x[i]) - st.x) * st.y);
    }
}

// out[r, :] (+)= (g − mean(g) − n·mean(g⊙n)) / σ with g = y the output gradient and n the
// normalised row; one thread per row.
@compute @workgroup_size(256)
fn norm_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let r = thread_index(wid, nwg, lid);
    if (r >= params.rows) { return; }
    let st = row_stats(r);
    let c = params.cols;
    var sg = 0.0;
    var sgn = 0.0;
    for (var j = 0u; j < c; j++) {
        let g = f32(y[r * c + j]);
        sg += g;
        sgn += g * (f32(x[r * c + j]) - st.x) * st.y;
    }
    let mg = sg / f32(c);
    let mgn = sgn / f32(c);
    for (var j = 0u; j < c; j++) {
        let i = r * c + j;
        let nv = (f32(x[i]) - st.x) * st.y;
        put(i, (f32(y[i]) - mg - nv * mgn) * st.y);
    }
}

// out = x ⊙ y[col] + z[col] (scale y, shift z per channel).
@compute @workgroup_size(256)
fn chan_affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= params.rows * params.cols) { return; }
    let j = i % params.cols;
    out[i] = E(f32(x[i]) * f32(y[j]) + f32(z[j]));
}

// out (+)= x ⊙ y[col].
@compute @workgroup_size(256)
fn chan_scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= params.rows * params.cols) { return; }
    put(i, f32(x[i]) * f32(y[i % params.cols]));
}

// out[col] (+)= Σ_r x[r, col]·y[r, col]; one workgroup per column.
@compute @workgroup_size(256)
fn col_dot(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let j = group_index(wid, nwg);
    var s = 0.0;
    if (j < params.cols) {
        for (var r = lid; r < params.rows; r += WG) {
            let i = r * params.cols + j;
            s += f32(x[i]) * f32(y[i]);
        }
    }
    let total = tree_sum(lid, s);
    if (lid == 0u && j < params.cols) { put(j, total); }
}

// out[r, col] = x[r, col] + y[r / seq, col]: a per-sequence vector added at every position.
@compute @workgroup_size(256)
fn seq_add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= params.rows * params.cols) { return; }
    let r = i / params.cols;
    out[i] = E(f32(x[i]) + f32(y[(r / params.seq) * params.cols + i % params.cols]));
}

// out[s, col] (+)= Σ over the seq rows of sequence s of x[r, col]; one thread per (s, col).
@compute @workgroup_size(256)
fn seq_sum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    let nseq = params.rows / params.seq;
    if (i >= nseq * params.cols) { return; }
    let s = i / params.cols;
    let j = i % params.cols;
    var t = 0.0;
    for (var l = 0u; l < params.seq; l++) {
        t += f32(x[(s * params.seq + l) * params.cols + j]);
    }
    put(i, t);
}

// The row of table y that label x[r] names, or -1 when it names none.
fn label(r: u32) -> i32 {
    let v = f32(x[r]);
    if (v >= 0.0 && v < f32(params.n) && v == floor(v)) { return i32(v); }
    return -1;
}

// out[r, :] = y[x[r], :] (zeros for a label outside the table).
@compute @workgroup_size(256)
fn embed(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= params.rows * params.cols) { return; }
    let l = label(i / params.cols);
    var v = 0.0;
    if (l >= 0) { v = f32(y[u32(l) * params.cols + i % params.cols]); }
    out[i] = E(v);
}

// out[c, :] (+)= Σ over rows r with x[r] = c of y[r, :]; one thread per table element.
@compute @workgroup_size(256)
fn embed_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= params.n * params.cols) { return; }
    let c = i32(i / params.cols);
    let j = i % params.cols;
    var t = 0.0;
    for (var r = 0u; r < params.rows; r++) {
        if (label(r) == c) { t += f32(y[r * params.cols + j]); }
    }
    put(i, t);
}
