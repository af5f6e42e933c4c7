// The Fisher-Flow vector field v(x, t) for sampling, with its weights and activations stored as
// E (f32, or f16 in the f16 variant) and every sum computed in f32. The dense layers are the
// gemm kernels; this file holds the glue around them:
//   embed:    cat0 = [E(x), temb(t)] and the temb columns of cath, temb = t * w_time + b_time
//   put_cols: cath[:, :h] = h
//   finish:   out = v - <v, x> x per position (tangent projection, f32) or out = v
// Storage-generic: E is f32 or f16.

struct FieldParams {
    rows: u32,     // sequences in the chunk
    lk: u32,       // L * K
    e: u32,        // time-embedding width
    h: u32,        // hidden width
    k: u32,        // categories
    project: u32,  // 1: project the output onto the tangent space at x
    t: f32,        // time of this evaluation
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: FieldParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;            // [rows, lk] points
@group(0) @binding(2) var<storage, read> w: array<E>;              // [e] time weight
@group(0) @binding(3) var<storage, read> b: array<E>;              // [e] time bias
@group(0) @binding(4) var<storage, read_write> cat0: array<E>;     // [rows, lk + e]
@group(0) @binding(5) var<storage, read_write> cath: array<E>;     // [rows, h + e]
@group(0) @binding(6) var<storage, read> h: array<E>;              // [rows, h]
@group(0) @binding(7) var<storage, read> v: array<E>;              // [rows, lk] raw output
@group(0) @binding(8) var<storage, read_write> out: array<f32>;    // [rows, lk] the field

// ---- embed ----

@compute @workgroup_size(256)
fn embed(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    let w0 = p.lk + p.e;
    if (i >= p.rows * w0) { return; }
    let r = i / w0;
    let j = i % w0;
    if (j < p.lk) {
        cat0[i] = E(x[r * p.lk + j]);
    } else {
        let q = j - p.lk;
        let v = E(fma(p.t, f32(w[q]), f32(b[q])));
        cat0[i] = v;
        cath[r * (p.h + p.e) + p.h + q] = v;
    }
}

// ---- put_cols ----

@compute @workgroup_size(256)
fn put_cols(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= p.rows * p.h) { return; }
    let r = i / p.h;
    let j = i % p.h;
    cath[r * (p.h + p.e) + j] = h[i];
}

// ---- finish: one invocation per (row, position) ----

@compute @workgroup_size(256)
fn finish(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let g = thread_index(wid, nwg, lid);
    if (g >= p.rows * (p.lk / p.k)) { return; }
    let base = g * p.k;
    var d = 0.0;
    if (p.project != 0u) {
        for (var c = 0u; c < p.k; c++) { d = fma(f32(v[base + c]), x[base + c], d); }
    }
    for (var c = 0u; c < p.k; c++) {
        out[base + c] = f32(v[base + c]) - d * x[base + c];
    }
}
