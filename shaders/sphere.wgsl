// Manifold kernels of Fisher-Flow on the positive orthant of the unit sphere S^{K-1}_+.
//
// Tensors are [rows, K] f32, row-major (rows = B*L positions). A row is handled by a group of
// `lanes` invocations (a power of two, chosen on the host from K); a workgroup of 256
// invocations handles 256 / lanes rows. Lanes stride over the row, so any K works, and the dot
// products a row needs are reduced in workgroup memory (lib/rows.wgsl). Every invocation
// reaches every barrier (rows past the end are masked, never returned from), so control flow
// stays uniform.
//
// The file is written once for a row element type V: f32, or vec4<f32> when K is a multiple
// of 4 (the host compiles both; params.k then counts vec4s). vdot(a, b) is the dot product of
// two elements. Each lane keeps its first element of the row in registers between the
// reduction and the output pass (`Head`), so rows of up to `lanes` elements are read once.
//
// Angles are computed as theta = 2 atan2(|y - x|, |y + x|): on the unit sphere this equals
// arccos<x, y>, and unlike arccos it stays accurate for nearby points in f32.

struct Params {
    rows: u32,   // rows (elements for the element-wise kernels) in this dispatch
    k: u32,      // row length, in elements of V
    lanes: u32,  // invocations per row, a power of two dividing 256
    row0: u32,   // global index of this dispatch's first row (chunked launches)
    seq: u32,    // L: rows per batch element, to look up t per batch element
    dt: f32,     // step size of the geodesic steps
    acc: u32,    // 1: add into `out` instead of overwriting it
    fold: u32,   // 1: fold the result of a step back into the orthant (abs)
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<V>;
@group(0) @binding(2) var<storage, read> y: array<V>;
@group(0) @binding(3) var<storage, read> z: array<V>;
@group(0) @binding(4) var<storage, read> t: array<f32>;        // one time per batch element
@group(0) @binding(5) var<storage, read_write> out: array<V>;
@group(0) @binding(6) var<storage, read_write> out2: array<V>;
@group(0) @binding(7) var<storage, read_write> row_out: array<f32>; // one value per row

// Below this tangent norm, exp_x(u) is evaluated as normalise(x + u).
const EXP_TINY: f32 = 1e-6;

// The row machinery (lib/rows.wgsl) reads the layout from these parameters.
fn row_lanes() -> u32 { return params.lanes; }
fn row_count() -> u32 { return params.rows; }
fn row_len() -> u32 { return params.k; }

// theta from the reduced |y - x|^2 and |y + x|^2.
fn angle(d2: f32, s2: f32) -> f32 {
    let a = sqrt(max(d2, 0.0));
    let b = sqrt(max(s2, 0.0));
    if (a == 0.0) {
        return 0.0;
    }
    return 2.0 * atan_pos(a, b);
}

fn time_of(row: u32) -> f32 {
    return clamp(t[(params.row0 + row) / params.seq], 0.0, 1.0);
}

// Write (or, with params.acc, add) element i of `out`.
fn put(i: u32, v: V) {
    if (params.acc != 0u) {
        out[i] = out[i] + v;
    } else {
        out[i] = v;
    }
}

// A lane's first element of its row, of x and y.
struct Head {
    on: bool,
    i: u32,
    x: V,
    y: V,
}

fn head(s: Slot) -> Head {
    var h: Head;
    h.on = s.valid && s.lane < params.k;
    h.i = s.base + s.lane;
    h.x = V(0.0);
    h.y = V(0.0);
    if (h.on) {
        h.x = x[h.i];
        h.y = y[h.i];
    }
    return h;
}

// The first index of the rest of a lane's row (after its head), and the row's end.
fn rest(s: Slot) -> vec2<u32> {
    return vec2<u32>(s.base + s.lane + params.lanes, select(0u, s.base + params.k, s.valid));
}

// ---- element-wise maps between the simplex and the sphere ----

@compute @workgroup_size(256)
fn to_sphere(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i < params.rows) {
        out[i] = sqrt(max(x[i], V(0.0)));
    }
}

@compute @workgroup_size(256)
fn to_simplex(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i < params.rows) {
        out[i] = x[i] * x[i];
    }
}

// ---- row kernels ----

// Partial sums of exp_map: (|u|^2, |x+u|^2).
fn exp_terms(a: V, u: V) -> vec4<f32> {
    let w = a + u;
    return vec4<f32>(vdot(u, u), vdot(w, w), 0.0, 0.0);
}

// out = exp_x(u) = cos|u| x + sin|u| u/|u|; normalise(x + u) for tiny |u|. y = u.
@compute @workgroup_size(256)
fn exp_map(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let s = slot(wid, nwg, lid);
    let h = head(s);
    let e = rest(s);
    var acc = exp_terms(h.x, h.y);
    for (var i = e.x; i < e.y; i += params.lanes) {
        acc += exp_terms(x[i], y[i]);
    }
    let r = row_sum(acc, lid, s.lane);
    let n = sqrt(r.x);
    var a = cos_acc(n);
    var b = sinc(n);
    if (n < EXP_TINY) {
        a = inverseSqrt(max(r.y, 1e-30));
        b = a;
    }
    if (h.on) {
        out[h.i] = a * h.x + b * h.y;
        for (var i = e.x; i < e.y; i += params.lanes) {
            out[i] = a * x[i] + b * y[i];
        }
    }
}

// Partial sums of log_map: (<x,y>, |y-x|^2, |y+x|^2).
fn log_terms(a: V, b: V) -> vec4<f32> {
    let d = b - a;
    let p = b + a;
    return vec4<f32>(vdot(a, b), vdot(d, d), vdot(p, p), 0.0);
}

// out = log_x(y) = theta (y - <x,y> x) / sin(theta); zero when theta is 0.
@compute @workgroup_size(256)
fn log_map(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let s = slot(wid, nwg, lid);
    let h = head(s);
    let e = rest(s);
    var acc = log_terms(h.x, h.y);
    for (var i = e.x; i < e.y; i += params.lanes) {
        acc += log_terms(x[i], y[i]);
    }
    let r = row_sum(acc, lid, s.lane);
    let c = r.x;
    var f = 0.0;
    if (r.y > 0.0) {
        f = 1.0 / sinc(angle(r.y, r.z));
    }
    if (h.on) {
        out[h.i] = f * (h.y - c * h.x);
        for (var i = e.x; i < e.y; i += params.lanes) {
            out[i] = f * (y[i] - c * x[i]);
        }
    }
}

// out (+)= v - <x,v> x, v = y: the tangent projection (and its gradient with respect to v).
@compute @workgroup_size(256)
fn proj_tangent(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let s = slot(wid, nwg, lid);
    let h = head(s);
    let e = rest(s);
    var acc = vec4<f32>(vdot(h.x, h.y), 0.0, 0.0, 0.0);
    for (var i = e.x; i < e.y; i += params.lanes) {
        acc.x += vdot(x[i], y[i]);
    }
    let c = row_sum(acc, lid, s.lane).x;
    if (h.on) {
        put(h.i, h.y - c * h.x);
        for (var i = e.x; i < e.y; i += params.lanes) {
            put(i, y[i] - c * x[i]);
        }
    }
}

// The gradient of the projection v - <x,v> x with respect to x, for the output gradient g = z
// and v = y: out (+)= -(<x,g> v + <x,v> g).
@compute @workgroup_size(256)
fn proj_tangent_grad_x(@builtin(workgroup_id) wid: vec3<u32>,
                       @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) lid: u32) {
    let s = slot(wid, nwg, lid);
    let h = head(s);
    var hz = V(0.0);
    if (h.on) {
        hz = z[h.i];
    }
    let e = rest(s);
    var acc = vec4<f32>(vdot(h.x, hz), vdot(h.x, h.y), 0.0, 0.0);
    for (var i = e.x; i < e.y; i += params.lanes) {
        acc += vec4<f32>(vdot(x[i], z[i]), vdot(x[i], y[i]), 0.0, 0.0);
    }
    let r = row_sum(acc, lid, s.lane);
    if (h.on) {
        put(h.i, -(r.x * h.y + r.y * hz));
        for (var i = e.x; i < e.y; i += params.lanes) {
            put(i, -(r.x * y[i] + r.y * z[i]));
        }
    }
}

// Partial sums of the angle: (|y-x|^2, |y+x|^2).
fn angle_terms(a: V, b: V) -> vec4<f32> {
    let d = b - a;
    let p = b + a;
    return vec4<f32>(vdot(d, d), vdot(p, p), 0.0, 0.0);
}

// The row sums of the angle between the rows of x and y.
fn angle_sums(s: Slot, h: Head, lid: u32) -> vec4<f32> {
    let e = rest(s);
    var acc = angle_terms(h.x, h.y);
    for (var i = e.x; i < e.y; i += params.lanes) {
        acc += angle_terms(x[i], y[i]);
    }
    return row_sum(acc, lid, s.lane);
}

// row_out[row] = d(x, y) = arccos<x, y>.
@compute @workgroup_size(256)
fn geodesic_distance(@builtin(workgroup_id) wid: vec3<u32>,
                     @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    let s = slot(wid, nwg, lid);
    let r = angle_sums(s, head(s), lid);
    if (s.valid && s.lane == 0u) {
        row_out[s.row] = angle(r.x, r.y);
    }
}

// Coefficients of the geodesic x_t from x0 to x1 at angle theta:
//   x_t = x0 + a1 (x1 - x0) + g x0,
//   a1 = sin(t theta)/sin(theta),  g = 2 sin(t theta/2) sin((1-t) theta/2) / cos(theta/2)
// (the same as sin((1-t)theta)/sin(theta) x0 + sin(t theta)/sin(theta) x1, written so that
// nearby x0, x1 lose no precision), and its velocity
//   u_t = theta/sin(theta) (cos(t theta) x1 - cos((1-t) theta) x0)
//       = [cos(t theta) (x1 - x0) - 2 sin(theta/2) sin((t - 1/2) theta) x0] / sinc(theta).
struct Geo {
    a1: f32,
    g: f32,
    c1: f32,
    c0: f32,
}

fn geodesic(theta: f32, t: f32) -> Geo {
    var o: Geo;
    let sc = sinc(theta);
    o.a1 = t * sinc(t * theta) / sc;
    o.g = 2.0 * sin_acc(0.5 * t * theta) * sin_acc(0.5 * (1.0 - t) * theta) / cos_acc(0.5 * theta);
    o.c1 = cos_acc(t * theta) / sc;
    o.c0 = -2.0 * sin_acc(0.5 * theta) * sin_acc((t - 0.5) * theta) / sc;
    return o;
}

// The geodesic from x0 = x to x1 = y at this row's time: the row, the lane's head and the
// coefficients.
struct Interp {
    s: Slot,
    h: Head,
    o: Geo,
}

fn interp(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> Interp {
    var c: Interp;
    c.s = slot(wid, nwg, lid);
    c.h = head(c.s);
    let r = angle_sums(c.s, c.h, lid);
    c.o = geodesic(angle(r.x, r.y), time_of(c.s.row));
    return c;
}

// x_t and u_t of one element from its x0 and x1.
fn point_at(o: Geo, x0: V, x1: V) -> V {
    return x0 + o.a1 * (x1 - x0) + o.g * x0;
}

fn velocity_at(o: Geo, x0: V, x1: V) -> V {
    return o.c1 * (x1 - x0) + o.c0 * x0;
}

// out = x_t = slerp(x0, x1; t), t per batch element.
@compute @workgroup_size(256)
fn slerp(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let c = interp(wid, nwg, lid);
    if (c.h.on) {
        out[c.h.i] = point_at(c.o, c.h.x, c.h.y);
        let e = rest(c.s);
        for (var i = e.x; i < e.y; i += params.lanes) {
            out[i] = point_at(c.o, x[i], y[i]);
        }
    }
}

// The fused training target: out = x_t and out2 = u_t = d/dt x_t = log_{x_t}(x1) / (1 - t).
@compute @workgroup_size(256)
fn interpolant_target(@builtin(workgroup_id) wid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let c = interp(wid, nwg, lid);
    if (c.h.on) {
        out[c.h.i] = point_at(c.o, c.h.x, c.h.y);
        out2[c.h.i] = velocity_at(c.o, c.h.x, c.h.y);
        let e = rest(c.s);
        for (var i = e.x; i < e.y; i += params.lanes) {
            out[i] = point_at(c.o, x[i], y[i]);
            out2[i] = velocity_at(c.o, x[i], y[i]);
        }
    }
}

// The geodesic step x -> exp_x(dt (v - <x,v> x)), renormalised: coefficients of x and v from
// the row sums r1 = (<x,v>, |x|^2) and r2 = (|u|^2, |x+u|^2), u = dt (v - <x,v> x).
struct Step {
    a: f32,  // coefficient of x
    b: f32,  // coefficient of v
}

fn step_coeffs(r1: vec4<f32>, r2: vec4<f32>) -> Step {
    let c = r1.x;
    let dt = params.dt;
    let n = sqrt(r2.x);
    var ca = cos_acc(n);
    var cb = sinc(n);
    // |ca x + cb u|^2, with <x,u> = dt c (1 - |x|^2).
    var nrm2 = ca * ca * r1.y + 2.0 * ca * cb * dt * c * (1.0 - r1.y) + cb * cb * r2.x;
    if (n < EXP_TINY) {
        ca = 1.0;
        cb = 1.0;
        nrm2 = r2.y;
    }
    let inv = inverseSqrt(max(nrm2, 1e-30));
    // ca x + cb dt (v - c x) = (ca - cb dt c) x + cb dt v
    var o: Step;
    o.a = (ca - cb * dt * c) * inv;
    o.b = cb * dt * inv;
    return o;
}

// Partial sums of the step's second pass: (|u|^2, |x+u|^2), u = dt (v - c x).
fn step_terms(a: V, v: V, c: f32) -> vec4<f32> {
    let u = params.dt * (v - c * a);
    let w = a + u;
    return vec4<f32>(vdot(u, u), vdot(w, w), 0.0, 0.0);
}

// out = exp_x(dt (v - <x,v> x)) for v = y, renormalised, folded into the orthant (abs) with
// params.fold: the geodesic step of the samplers.
@compute @workgroup_size(256)
fn geodesic_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let s = slot(wid, nwg, lid);
    let h = head(s);
    let e = rest(s);
    var acc = vec4<f32>(vdot(h.x, h.y), vdot(h.x, h.x), 0.0, 0.0);
    for (var i = e.x; i < e.y; i += params.lanes) {
        acc += vec4<f32>(vdot(x[i], y[i]), vdot(x[i], x[i]), 0.0, 0.0);
    }
    let r1 = row_sum(acc, lid, s.lane);
    acc = step_terms(h.x, h.y, r1.x);
    for (var i = e.x; i < e.y; i += params.lanes) {
        acc += step_terms(x[i], y[i], r1.x);
    }
    let r2 = row_sum(acc, lid, s.lane);
    let o = step_coeffs(r1, r2);
    if (h.on) {
        let fold = params.fold != 0u;
        let v0 = o.a * h.x + o.b * h.y;
        out[h.i] = select(v0, abs(v0), fold);
        for (var i = e.x; i < e.y; i += params.lanes) {
            let v = o.a * x[i] + o.b * y[i];
            out[i] = select(v, abs(v), fold);
        }
    }
}

// Partial sums of the pull-back: (|u|^2, <w,x>, <w,u>), u scaled by dt.
fn pull_terms(a: V, u: V, w: V) -> vec4<f32> {
    let us = params.dt * u;
    return vec4<f32>(vdot(us, us), vdot(w, a), vdot(w, us), 0.0);
}

// The inverse differential of exp_x at u_s = dt u (u = y, tangent at x), applied to w = z
// (tangent at exp_x(u_s)): out = dexp_{u_s}^{-1}(w), tangent at x. With theta = |u_s|,
// u_hat = u_s / theta and e = -sin(theta) x + cos(theta) u_hat the geodesic's direction at
// exp_x(u_s), w = beta e + w_perp and out = beta u_hat + theta / sin(theta) w_perp, which is
// A w + B u + C x with A = theta / sin(theta), B = dt beta (1 - theta cot(theta)) / theta and
// C = theta beta. Runge-Kutta stages pulled back this way integrate in normal coordinates at
// x, so the classical orders hold on the sphere.
@compute @workgroup_size(256)
fn pull_back(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let s = slot(wid, nwg, lid);
    let h = head(s);
    var hz = V(0.0);
    if (h.on) {
        hz = z[h.i];
    }
    let e = rest(s);
    var acc = pull_terms(h.x, h.y, hz);
    for (var i = e.x; i < e.y; i += params.lanes) {
        acc += pull_terms(x[i], y[i], z[i]);
    }
    let r = row_sum(acc, lid, s.lane);
    let theta = sqrt(r.x);
    var a = 1.0;
    var b = 0.0;
    var c = -r.y;
    if (theta >= EXP_TINY) {
        let sc = sincos(theta);
        let beta = -sc.x * r.y + sc.y * r.z / theta;
        var g = theta / 3.0 + theta * theta * theta / 45.0; // (1 - theta cot theta) / theta
        if (theta > 1e-2) {
            g = (1.0 - theta * sc.y / sc.x) / theta;
        }
        a = 1.0 / sinc(theta);
        b = params.dt * beta * g;
        c = theta * beta;
    }
    if (h.on) {
        out[h.i] = a * hz + b * h.y + c * h.x;
        for (var i = e.x; i < e.y; i += params.lanes) {
            out[i] = a * z[i] + b * y[i] + c * x[i];
        }
    }
}
