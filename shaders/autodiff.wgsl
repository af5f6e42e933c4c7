// Element-wise kernels of the autodiff ops (matrix products, reductions and tangent
// projections are the gemm, reduce and sphere kernels). Every output is written as `out = v`
// or, with params.acc == 1, `out = out + v`.

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
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> z: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// Write (or, with params.acc, add) element i of `out`.
fn put(i: u32, v: f32) {
    if (params.acc == 1u) {
        out[i] = out[i] + v;
    } else {
        out[i] = v;
    }
}

// out = f(x)
@compute @workgroup_size(256)
fn act_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= params.n) { return; }
    out[i] = act_apply(params.mode, params.slope, x[i]);
}

// out (+)= gy * f'(x), gy = y.
@compute @workgroup_size(256)
fn act_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= params.n) { return; }
    put(i, y[i] * act_deriv(params.mode, params.slope, x[i]));
}

// out (+)= s * x + c
@compute @workgroup_size(256)
fn scale_add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= params.n) { return; }
    put(i, params.s * x[i] + params.c);
}

// out[r, y_off + j] (+)= x[r, x_off + j], j < width; one thread per (r, j).
@compute @workgroup_size(256)
fn col_copy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= params.rows * params.width) { return; }
    let r = i / params.width;
    let j = i % params.width;
    put(r * params.y_cols + params.y_off + j, x[r * params.x_cols + params.x_off + j]);
}

// out (+)= s * x[0] everywhere.
@compute @workgroup_size(256)
fn broadcast(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= params.n) { return; }
    put(i, params.s * x[0]);
}

// out[0] += x[0]; out[1] += s (a running loss sum and step count).
@compute @workgroup_size(1)
fn loss_accum() {
    out[0] = out[0] + x[0];
    out[1] = out[1] + params.s;
}

// out = x + y[col]
@compute @workgroup_size(256)
fn bias_add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= params.n) { return; }
    out[i] = x[i] + y[i % params.cols];
}

// out (+)= (x + y) or (x * y)
@compute @workgroup_size(256)
fn binary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= params.n) { return; }
    let a = x[i];
    let b = y[i];
    put(i, select(a + b, a * b, params.mode == 1u));
}

// out (+)= s * g[0] * (a - b); a = x, b = y, g = z.
@compute @workgroup_size(256)
fn sqdiff_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i >= params.n) { return; }
    put(i, params.s * z[0] * (x[i] - y[i]));
}
