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
