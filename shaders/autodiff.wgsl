// Element-wise kernels of the autodiff ops (matrix products, reductions and tangent
// projections are the gemm, reduce and sphere kernels). Every output is written as `out = v`
// or, with params.acc == 1, `out = out + v`. Storage-generic: buffers hold E (f32, or f16 in
// inference programs), arithmetic is f32.

struct AutodiffParams {
    n: u32,          // elements (or rows / columns, per kernel)
    rows: u32,
    cols: u32,
    mode: u32,       // act_*: an ACT_* code of lib/act.wgsl; binary: 0 add, 1 mul
    acc: u32,
    x_cols: u32,
    y_cols: u32,
    x_off: u32,
    y_off: u32,
    width: u32,
    s: f32,          // scale
    c: f32,          // additive constant
    slope: f32,      // leaky relu slope
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: AutodiffParams;
@group(0) @binding(1) var<storage, read> x: array<E>;
@group(0) @binding(2) var<storage, read> y: array<E>;
@group(0) @binding(3) var<storage, read> z: array<E>;
@group(0) @binding(4) var<storage, read_write> out: array<E>;
@group(0) @binding(5) var<storage, read> xf: array<f32>;           // an f32 source
@group(0) @binding(6) var<storage, read_write> outf: array<f32>;   // an f32 destination

fn ld_x(i: u32) -> f32 { return f32(x[i]); }
fn ld_y(i: u32) -> f32 { return f32(y[i]); }
fn ld_z(i: u32) -> f32 { return f32(z[i]); }

// Write (or, with params.acc, add) element i of `out`.
fn put(i: u32, v: f32) {
    if (params.acc == 1u) {
        out[i] = E(f32(out[i]) + v);
    } else {
        out[i] = E(v);
    }
}

// out = f(x)
@compute @workgroup_size(256)
fn act_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= params.n) { return; }
    out[i] = E(act_apply(params.mode, params.slope, ld_x(i)));
}

// out (+)= gy * f'(x), gy = y.
@compute @workgroup_size(256)
fn act_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= params.n) { return; }
    put(i, ld_y(i) * act_deriv(params.mode, params.slope, ld_x(i)));
}

// out (+)= s * x + c
@compute @workgroup_size(256)
fn scale_add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= params.n) { return; }
    put(i, params.s * ld_x(i) + params.c);
}

// out[r, y_off + j] (+)= x[r, x_off + j], j < width; one thread per (r, j).
@compute @workgroup_size(256)
fn col_copy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= params.rows * params.width) { return; }
    let r = i / params.width;
    let j = i % params.width;
    put(r * params.y_cols + params.y_off + j, ld_x(r * params.x_cols + params.x_off + j));
}

// out[r, :] = [x[r, :], y[r, :]], x with x_cols columns and y with y_cols; one thread per
// output element.
@compute @workgroup_size(256)
fn concat2(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    let cols = params.x_cols + params.y_cols;
    if (i >= params.rows * cols) { return; }
    let r = i / cols;
    let j = i % cols;
    if (j < params.x_cols) {
        out[i] = x[r * params.x_cols + j];
    } else {
        out[i] = y[r * params.y_cols + j - params.x_cols];
    }
}

// out (+)= s * x[0] everywhere.
@compute @workgroup_size(256)
fn broadcast(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= params.n) { return; }
    put(i, params.s * ld_x(0u));
}

// out[0] += x[0]; out[1] += s (a running loss sum and step count).
@compute @workgroup_size(1)
fn loss_accum() {
    out[0] = E(f32(out[0]) + ld_x(0u));
    out[1] = E(f32(out[1]) + params.s);
}

// out = x + y[col]
@compute @workgroup_size(256)
fn bias_add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= params.n) { return; }
    out[i] = E(ld_x(i) + ld_y(i % params.cols));
}

// out (+)= (x + y) or (x * y)
@compute @workgroup_size(256)
fn binary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= params.n) { return; }
    let a = ld_x(i);
    let b = ld_y(i);
    put(i, select(a + b, a * b, params.mode == 1u));
}

// out (+)= s * g[0] * (a - b); a = x, b = y, g = z.
@compute @workgroup_size(256)
fn sqdiff_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= params.n) { return; }
    put(i, params.s * ld_z(0u) * (ld_x(i) - ld_y(i)));
}

// ---- storage conversions and fills of inference programs ----

// out = E(xf): an f32 buffer into storage precision.
@compute @workgroup_size(256)
fn to_storage(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= params.n) { return; }
    out[i] = E(xf[i]);
}

// outf = f32(x): a storage-precision buffer into f32.
@compute @workgroup_size(256)
fn to_f32(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= params.n) { return; }
    outf[i] = ld_x(i);
}

// outf = c everywhere (an input set inside a recording, e.g. the time of a field evaluation).
@compute @workgroup_size(256)
fn fill_f32(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= params.n) { return; }
    outf[i] = params.c;
}
