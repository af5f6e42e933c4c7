// Forward and backward kernels of the autodiff ops (everything but the matrix products).
// Every output is written as `out = v` or, with params.acc == 1, `out = out + v`.
// Bindings come in three layouts: (params, in, out), (params, in0, in1, out) and
// (params, in0, in1, in2, out); each entry point uses all bindings of its layout.

struct Params {
    n: u32,          // elements (or rows / groups / columns, per kernel)
    rows: u32,
    cols: u32,
    k: u32,          // group size (proj_*)
    mode: u32,       // activation: 0 leaky relu, 1 silu, 2 gelu; binary: 0 add, 1 mul; reduce: 0 x, 1 x²
    acc: u32,
    x_cols: u32,
    y_cols: u32,
    x_off: u32,
    y_off: u32,
    width: u32,
    _pad0: u32,
    s: f32,          // scale
    c: f32,          // additive constant
    slope: f32,      // leaky relu slope
    _pad1: u32,
}

const WG: u32 = 256u;
const GELU_C: f32 = 0.7978845608028654; // sqrt(2/pi)

@group(0) @binding(0) var<uniform> params: Params;

@group(0) @binding(1) var<storage, read> a_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> a_out: array<f32>;

@group(0) @binding(1) var<storage, read> b_in0: array<f32>;
@group(0) @binding(2) var<storage, read> b_in1: array<f32>;
@group(0) @binding(3) var<storage, read_write> b_out: array<f32>;

@group(0) @binding(1) var<storage, read> c_in0: array<f32>;
@group(0) @binding(2) var<storage, read> c_in1: array<f32>;
@group(0) @binding(3) var<storage, read> c_in2: array<f32>;
@group(0) @binding(4) var<storage, read_write> c_out: array<f32>;

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * WG + lid;
}

fn act(x: f32) -> f32 {
    switch params.mode {
        case 0u: { return select(params.slope * x, x, x >= 0.0); }
        case 1u: { return x / (1.0 + exp(-x)); }
        default: {
            let u = GELU_C * (x + 0.044715 * x * x * x);
            return 0.5 * x * (1.0 + tanh(u));
        }
    }
}

fn act_grad(x: f32) -> f32 {
    switch params.mode {
        case 0u: { return select(params.slope, 1.0, x >= 0.0); }
        case 1u: {
            let sg = 1.0 / (1.0 + exp(-x));
            return sg * (1.0 + x * (1.0 - sg));
        }
        default: {
            let u = GELU_C * (x + 0.044715 * x * x * x);
            let th = tanh(u);
            return 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * GELU_C * (1.0 + 0.134145 * x * x);
        }
    }
}

// ---- layout (params, in, out) ----

@compute @workgroup_size(256)
fn act_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if (i >= params.n) { return; }
    a_out[i] = act(a_in[i]);
}

// out = [out] + s * x + c
@compute @workgroup_size(256)
fn scale_add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if (i >= params.n) { return; }
    var v = params.s * a_in[i] + params.c;
    if (params.acc == 1u) { v = v + a_out[i]; }
    a_out[i] = v;
}

// out[c] = [out[c]] + sum_r in[r, c]; one thread per column.
@compute @workgroup_size(256)
fn col_sum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let c = index(wid, nwg, lid);
    if (c >= params.cols) { return; }
    var v = 0.0;
    for (var r = 0u; r < params.rows; r = r + 1u) {
        v = v + a_in[r * params.cols + c];
    }
    if (params.acc == 1u) { v = v + a_out[c]; }
    a_out[c] = v;
}

// out[r, y_off + j] = [..] + in[r, x_off + j], j < width; one thread per (r, j).
@compute @workgroup_size(256)
fn col_copy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if (i >= params.rows * params.width) { return; }
    let r = i / params.width;
    let j = i % params.width;
    let o = r * params.y_cols + params.y_off + j;
    var v = a_in[r * params.x_cols + params.x_off + j];
    if (params.acc == 1u) { v = v + a_out[o]; }
    a_out[o] = v;
}

// out = [out] + s * g[0] everywhere.
@compute @workgroup_size(256)
fn broadcast(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if (i >= params.n) { return; }
    var v = params.s * a_in[0];
    if (params.acc == 1u) { v = v + a_out[i]; }
    a_out[i] = v;
}

// out[0] += in[0]; out[1] += s (a running loss sum and step count).
@compute @workgroup_size(1)
fn loss_accum() {
    a_out[0] = a_out[0] + a_in[0];
    a_out[1] = a_out[1] + params.s;
}

var<workgroup> red: array<f32, 256>;

fn tree_sum(lid: u32, v: f32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (lid < s) {
            red[lid] = red[lid] + red[lid + s];
        }
        workgroupBarrier();
    }
    return red[0];
}

// out[workgroup] = s * sum (x or x²) over a grid-stride share of the n inputs.
@compute @workgroup_size(256)
fn reduce_sum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    var v = 0.0;
    for (var i = wid.x * WG + lid; i < params.n; i = i + nwg.x * WG) {
        let x = a_in[i];
        v = v + select(x, x * x, params.mode == 1u);
    }
    let t = tree_sum(lid, v);
    if (lid == 0u) {
        a_out[wid.x] = params.s * t;
    }
}

// ---- layout (params, in0, in1, out) ----

// gx = [gx] + gy * f'(x); in0 = x, in1 = gy.
@compute @workgroup_size(256)
fn act_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if (i >= params.n) { return; }
    var v = b_in1[i] * act_grad(b_in0[i]);
    if (params.acc == 1u) { v = v + b_out[i]; }
    b_out[i] = v;
}

// y = x + b[col]
@compute @workgroup_size(256)
fn bias_add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if (i >= params.n) { return; }
    b_out[i] = b_in0[i] + b_in1[i % params.cols];
}

// y = [y] + (a + b) or (a * b)
@compute @workgroup_size(256)
fn binary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if (i >= params.n) { return; }
    let a = b_in0[i];
    let b = b_in1[i];
    var v = select(a + b, a * b, params.mode == 1u);
    if (params.acc == 1u) { v = v + b_out[i]; }
    b_out[i] = v;
}

// out[workgroup] = s * sum (a - b)² over a grid-stride share.
@compute @workgroup_size(256)
fn reduce_sqdiff(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    var v = 0.0;
    for (var i = wid.x * WG + lid; i < params.n; i = i + nwg.x * WG) {
        let d = b_in0[i] - b_in1[i];
        v = v + d * d;
    }
    let t = tree_sum(lid, v);
    if (lid == 0u) {
        b_out[wid.x] = params.s * t;
    }
}

// Per group of k: y = v - <x, v> x; in0 = v, in1 = x; one thread per group.
@compute @workgroup_size(256)
fn proj(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let r = index(wid, nwg, lid);
    if (r >= params.n) { return; }
    let o = r * params.k;
    var d = 0.0;
    for (var j = 0u; j < params.k; j = j + 1u) {
        d = d + b_in0[o + j] * b_in1[o + j];
    }
    for (var j = 0u; j < params.k; j = j + 1u) {
        b_out[o + j] = b_in0[o + j] - d * b_in1[o + j];
    }
}

// Per group: y = [y] + g - <x, g> x; in0 = x, in1 = g.
@compute @workgroup_size(256)
fn proj_grad_v(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let r = index(wid, nwg, lid);
    if (r >= params.n) { return; }
    let o = r * params.k;
    var d = 0.0;
    for (var j = 0u; j < params.k; j = j + 1u) {
        d = d + b_in0[o + j] * b_in1[o + j];
    }
    for (var j = 0u; j < params.k; j = j + 1u) {
        var v = b_in1[o + j] - d * b_in0[o + j];
        if (params.acc == 1u) { v = v + b_out[o + j]; }
        b_out[o + j] = v;
    }
}

// ---- layout (params, in0, in1, in2, out) ----

// y = [y] + s * g[0] * (a - b); in0 = a, in1 = b, in2 = g.
@compute @workgroup_size(256)
fn sqdiff_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if (i >= params.n) { return; }
    var v = params.s * c_in2[0] * (c_in0[i] - c_in1[i]);
    if (params.acc == 1u) { v = v + c_out[i]; }
    c_out[i] = v;
}

// Per group: y = [y] - (<x, g> v + <x, v> g); in0 = v, in1 = x, in2 = g.
@compute @workgroup_size(256)
fn proj_grad_x(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let r = index(wid, nwg, lid);
    if (r >= params.n) { return; }
    let o = r * params.k;
    var xg = 0.0;
    var xv = 0.0;
    for (var j = 0u; j < params.k; j = j + 1u) {
        xg = xg + c_in1[o + j] * c_in2[o + j];
        xv = xv + c_in1[o + j] * c_in0[o + j];
    }
    for (var j = 0u; j < params.k; j = j + 1u) {
        var v = -(xg * c_in0[o + j] + xv * c_in2[o + j]);
        if (params.acc == 1u) { v = v + c_out[o + j]; }
        c_out[o + j] = v;
    }
}
