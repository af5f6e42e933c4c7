// Manifold kernels of Fisher-Flow on the positive orthant of the unit sphere S^{K-1}_+.
//
// Tensors are [rows, K] f32, row-major (rows = B*L positions). A row is handled by a group of
// `lanes` invocations (a power of two, chosen on the host from K); a workgroup of 256
// invocations handles 256 / lanes rows. Lanes stride over K, so any K works, and the dot
// products a row needs are reduced in workgroup memory (lib/rows.wgsl, prepended by the host).
// Every invocation reaches every barrier (rows past the end are masked, never returned from),
// so control flow stays uniform.
//
// Angles are computed as theta = 2 atan2(|y - x|, |y + x|): on the unit sphere this equals
// arccos<x, y>, and unlike arccos it stays accurate for nearby points in f32.

struct Params {
    rows: u32,   // rows (elements for the element-wise kernels) in this dispatch
    k: u32,      // row length K
    lanes: u32,  // invocations per row, a power of two dividing 256
    row0: u32,   // global index of this dispatch's first row (chunked launches)
    seq: u32,    // L: rows per batch element, to look up t per batch element
    dt: f32,     // Euler step size
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;

// Inputs and outputs. Entry points use different subsets; each uses all of its own bindings.
@group(0) @binding(1) var<storage, read> in0: array<f32>;
@group(0) @binding(2) var<storage, read> in1: array<f32>;
@group(0) @binding(3) var<storage, read_write> out0: array<f32>;
// Element-wise kernels: output at binding 2.
@group(0) @binding(2) var<storage, read_write> el_out: array<f32>;
// Interpolants: t per batch element at binding 3, x_t at 4, u_t at 5.
@group(0) @binding(3) var<storage, read> times: array<f32>;
@group(0) @binding(4) var<storage, read_write> out_xt: array<f32>;
@group(0) @binding(5) var<storage, read_write> out_ut: array<f32>;
// In-place Euler step: the state is read and written at binding 1, the velocity is at 2.
@group(0) @binding(1) var<storage, read_write> io: array<f32>;

// Below this tangent norm, exp_x(u) is evaluated as normalise(x + u).
const EXP_TINY: f32 = 1e-6;
// Below this argument, sin(z)/z uses its Taylor series.
const SINC_TINY: f32 = 1e-3;

// The row machinery (lib/rows.wgsl) reads the layout from these parameters.
fn row_lanes() -> u32 { return params.lanes; }
fn row_count() -> u32 { return params.rows; }
fn row_len() -> u32 { return params.k; }

// sin, cos and atan to about 1 ulp. The built-ins may be much coarser (Vulkan allows an
// absolute error of 2^-11 for sin/cos and 4096 ulp for atan), and the targets are compared
// at 1e-5, so these kernels carry their own.
const PIO2_HI: f32 = 1.5707963705062866;    // f32(pi/2)
const PIO2_LO: f32 = -4.3711388286737929e-8; // pi/2 - PIO2_HI
const TWO_OVER_PI: f32 = 0.63661977236758134;

// Taylor polynomials on [-pi/4, pi/4] (truncation below 2e-9).
fn sin_poly(r: f32) -> f32 {
    let r2 = r * r;
    return r + r * r2 * (-1.6666667e-1 + r2 * (8.3333333e-3 + r2 * (-1.9841270e-4
        + r2 * (2.7557319e-6 + r2 * -2.5052108e-8))));
}

fn cos_poly(r: f32) -> f32 {
    let r2 = r * r;
    return 1.0 + r2 * (-0.5 + r2 * (4.1666667e-2 + r2 * (-1.3888889e-3 + r2 * (2.4801587e-5
        + r2 * -2.7557319e-7))));
}

// (sin z, cos z) with Cody-Waite reduction by pi/2 (accurate for |z| up to ~1e4).
fn sincos(z: f32) -> vec2<f32> {
    let q = round(z * TWO_OVER_PI);
    let r = (z - q * PIO2_HI) - q * PIO2_LO;
    let s = sin_poly(r);
    let c = cos_poly(r);
    let quadrant = u32(i32(q) & 3);
    switch quadrant {
        case 0u: { return vec2<f32>(s, c); }
        case 1u: { return vec2<f32>(c, -s); }
        case 2u: { return vec2<f32>(-s, -c); }
        default: { return vec2<f32>(-c, s); }
    }
}

fn sin_acc(z: f32) -> f32 {
    return sincos(z).x;
}

fn cos_acc(z: f32) -> f32 {
    return sincos(z).y;
}

// atan(y / x) for y, x >= 0, not both zero, in [0, pi/2].
fn atan_pos(y: f32, x: f32) -> f32 {
    let swap = y > x;
    let z = select(y / x, x / y, swap);           // in [0, 1]
    let big = z > 0.41421356;                      // tan(pi/8)
    let w = select(z, (z - 1.0) / (z + 1.0), big); // |w| <= tan(pi/8)
    let w2 = w * w;
    // Taylor series of atan to w^19 (truncation below 3e-9 on |w| <= tan(pi/8)).
    var p = -1.0 / 19.0;
    p = 1.0 / 17.0 + w2 * p;
    p = -1.0 / 15.0 + w2 * p;
    p = 1.0 / 13.0 + w2 * p;
    p = -1.0 / 11.0 + w2 * p;
    p = 1.0 / 9.0 + w2 * p;
    p = -1.0 / 7.0 + w2 * p;
    p = 1.0 / 5.0 + w2 * p;
    p = -1.0 / 3.0 + w2 * p;
    var a = w + w * w2 * p;
    a = select(a, a + 0.78539816, big);
    return select(a, PIO2_HI - a + PIO2_LO, swap);
}

fn sinc(z: f32) -> f32 {
    if (abs(z) < SINC_TINY) {
        return 1.0 - z * z / 6.0;
    }
    return sin_acc(z) / z;
}

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
    return clamp(times[(params.row0 + row) / params.seq], 0.0, 1.0);
}

// ---- element-wise maps between the simplex and the sphere ----

@compute @workgroup_size(256)
fn to_sphere(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i < params.rows) {
        el_out[i] = sqrt(max(in0[i], 0.0));
    }
}

@compute @workgroup_size(256)
fn to_simplex(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i < params.rows) {
        let x = in0[i];
        el_out[i] = x * x;
    }
}

// ---- row kernels ----

// out = exp_x(u) = cos|u| x + sin|u| u/|u|; normalise(x + u) for tiny |u|.
@compute @workgroup_size(256)
fn exp_map(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let s = slot(wid, nwg, lid);
    let k = params.k;
    var acc = vec4<f32>(0.0);
    if (s.valid) {
        for (var i = s.lane; i < k; i += params.lanes) {
            let x = in0[s.base + i];
            let u = in1[s.base + i];
            acc += vec4<f32>(u * u, (x + u) * (x + u), 0.0, 0.0);
        }
    }
    let r = row_sum(acc, lid, s.lane);
    if (s.valid) {
        let n = sqrt(r.x);
        var a = cos_acc(n);
        var b = sinc(n);
        if (n < EXP_TINY) {
            a = inverseSqrt(max(r.y, 1e-30));
            b = a;
        }
        for (var i = s.lane; i < k; i += params.lanes) {
            out0[s.base + i] = a * in0[s.base + i] + b * in1[s.base + i];
        }
    }
}

// out = log_x(y) = theta (y - <x,y> x) / sin(theta); zero when theta is 0.
@compute @workgroup_size(256)
fn log_map(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let s = slot(wid, nwg, lid);
    let k = params.k;
    var acc = vec4<f32>(0.0);
    if (s.valid) {
        for (var i = s.lane; i < k; i += params.lanes) {
            let x = in0[s.base + i];
            let y = in1[s.base + i];
            acc += vec4<f32>(x * y, (y - x) * (y - x), (y + x) * (y + x), 0.0);
        }
    }
    let r = row_sum(acc, lid, s.lane);
    if (s.valid) {
        let c = r.x;
        let theta = angle(r.y, r.z);
        var f = 0.0;
        if (r.y > 0.0) {
            f = 1.0 / sinc(theta);
        }
        for (var i = s.lane; i < k; i += params.lanes) {
            let x = in0[s.base + i];
            let y = in1[s.base + i];
            out0[s.base + i] = f * (y - c * x);
        }
    }
}

// out = v - <x,v> x.
@compute @workgroup_size(256)
fn proj_tangent(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let s = slot(wid, nwg, lid);
    let k = params.k;
    var acc = vec4<f32>(0.0);
    if (s.valid) {
        for (var i = s.lane; i < k; i += params.lanes) {
            acc.x += in0[s.base + i] * in1[s.base + i];
        }
    }
    let r = row_sum(acc, lid, s.lane);
    if (s.valid) {
        for (var i = s.lane; i < k; i += params.lanes) {
            out0[s.base + i] = in1[s.base + i] - r.x * in0[s.base + i];
        }
    }
}

// out[row] = d(x, y) = arccos<x, y>.
@compute @workgroup_size(256)
fn geodesic_distance(@builtin(workgroup_id) wid: vec3<u32>,
                     @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    let s = slot(wid, nwg, lid);
    let k = params.k;
    var acc = vec4<f32>(0.0);
    if (s.valid) {
        for (var i = s.lane; i < k; i += params.lanes) {
            let x = in0[s.base + i];
            let y = in1[s.base + i];
            acc += vec4<f32>((y - x) * (y - x), (y + x) * (y + x), 0.0, 0.0);
        }
    }
    let r = row_sum(acc, lid, s.lane);
    if (s.valid && s.lane == 0u) {
        out0[s.row] = angle(r.x, r.y);
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

// x_t = slerp(x0, x1; t), t per batch element.
@compute @workgroup_size(256)
fn slerp(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let s = slot(wid, nwg, lid);
    let k = params.k;
    var acc = vec4<f32>(0.0);
    if (s.valid) {
        for (var i = s.lane; i < k; i += params.lanes) {
            let x0 = in0[s.base + i];
            let x1 = in1[s.base + i];
            acc += vec4<f32>((x1 - x0) * (x1 - x0), (x1 + x0) * (x1 + x0), 0.0, 0.0);
        }
    }
    let r = row_sum(acc, lid, s.lane);
    if (s.valid) {
        let o = geodesic(angle(r.x, r.y), time_of(s.row));
        for (var i = s.lane; i < k; i += params.lanes) {
            let x0 = in0[s.base + i];
            let d = in1[s.base + i] - x0;
            out_xt[s.base + i] = x0 + o.a1 * d + o.g * x0;
        }
    }
}

// The fused training target: x_t and u_t = d/dt x_t = log_{x_t}(x1) / (1 - t).
@compute @workgroup_size(256)
fn interpolant_target(@builtin(workgroup_id) wid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let s = slot(wid, nwg, lid);
    let k = params.k;
    var acc = vec4<f32>(0.0);
    if (s.valid) {
        for (var i = s.lane; i < k; i += params.lanes) {
            let x0 = in0[s.base + i];
            let x1 = in1[s.base + i];
            acc += vec4<f32>((x1 - x0) * (x1 - x0), (x1 + x0) * (x1 + x0), 0.0, 0.0);
        }
    }
    let r = row_sum(acc, lid, s.lane);
    if (s.valid) {
        let o = geodesic(angle(r.x, r.y), time_of(s.row));
        for (var i = s.lane; i < k; i += params.lanes) {
            let x0 = in0[s.base + i];
            let d = in1[s.base + i] - x0;
            out_xt[s.base + i] = x0 + o.a1 * d + o.g * x0;
            out_ut[s.base + i] = o.c1 * d + o.c0 * x0;
        }
    }
}

// Euler step on the sphere: |exp_x(dt (v - <x,v> x))|, renormalised. `x` is read through
// `xv` (0: in0, 1: io) so the out-of-place and in-place entry points share the maths.
struct Step {
    a: f32,  // coefficient of x
    b: f32,  // coefficient of v
}

fn step_coeffs(r1: vec4<f32>, r2: vec4<f32>) -> Step {
    // r1 = (<x,v>, |x|^2), r2 = (|u|^2, |x+u|^2) with u = dt (v - <x,v> x).
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

@compute @workgroup_size(256)
fn euler_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let s = slot(wid, nwg, lid);
    let k = params.k;
    let dt = params.dt;
    var acc = vec4<f32>(0.0);
    if (s.valid) {
        for (var i = s.lane; i < k; i += params.lanes) {
            let x = in0[s.base + i];
            acc += vec4<f32>(x * in1[s.base + i], x * x, 0.0, 0.0);
        }
    }
    let r1 = row_sum(acc, lid, s.lane);
    acc = vec4<f32>(0.0);
    if (s.valid) {
        for (var i = s.lane; i < k; i += params.lanes) {
            let x = in0[s.base + i];
            let u = dt * (in1[s.base + i] - r1.x * x);
            acc += vec4<f32>(u * u, (x + u) * (x + u), 0.0, 0.0);
        }
    }
    let r2 = row_sum(acc, lid, s.lane);
    if (s.valid) {
        let o = step_coeffs(r1, r2);
        for (var i = s.lane; i < k; i += params.lanes) {
            out0[s.base + i] = abs(o.a * in0[s.base + i] + o.b * in1[s.base + i]);
        }
    }
}

@compute @workgroup_size(256)
fn euler_step_inplace(@builtin(workgroup_id) wid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let s = slot(wid, nwg, lid);
    let k = params.k;
    let dt = params.dt;
    var acc = vec4<f32>(0.0);
    if (s.valid) {
        for (var i = s.lane; i < k; i += params.lanes) {
            let x = io[s.base + i];
            acc += vec4<f32>(x * in1[s.base + i], x * x, 0.0, 0.0);
        }
    }
    let r1 = row_sum(acc, lid, s.lane);
    acc = vec4<f32>(0.0);
    if (s.valid) {
        for (var i = s.lane; i < k; i += params.lanes) {
            let x = io[s.base + i];
            let u = dt * (in1[s.base + i] - r1.x * x);
            acc += vec4<f32>(u * u, (x + u) * (x + u), 0.0, 0.0);
        }
    }
    let r2 = row_sum(acc, lid, s.lane);
    if (s.valid) {
        let o = step_coeffs(r1, r2);
        // Each element is read and then written by the same invocation, after every read of
        // the row above (the barriers in row_sum), so updating in place is safe.
        for (var i = s.lane; i < k; i += params.lanes) {
            io[s.base + i] = abs(o.a * io[s.base + i] + o.b * in1[s.base + i]);
        }
    }
}

// ---- vec4 variants, used when K is a multiple of 4 (params.k then counts vec4s) ----
//
// Each lane keeps its first vec4 of the row in registers between the reduction and the
// output pass, so rows of up to 4 * lanes elements (K <= 1024 with the host's lane choice)
// are read from memory once; longer rows re-read the rest.

@group(0) @binding(1) var<storage, read> in0v: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> in1v: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out0v: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> el_outv: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out_xtv: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out_utv: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> iov: array<vec4<f32>>;

@compute @workgroup_size(256)
fn to_sphere_v4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i < params.rows) {
        el_outv[i] = sqrt(max(in0v[i], vec4<f32>(0.0)));
    }
}

@compute @workgroup_size(256)
fn to_simplex_v4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i < params.rows) {
        let x = in0v[i];
        el_outv[i] = x * x;
    }
}

// A lane's cached first vec4 of two inputs.
struct Head {
    on: bool,
    i: u32,
    a: vec4<f32>,
    b: vec4<f32>,
}

fn head2(s: Slot) -> Head {
    var h: Head;
    h.on = s.valid && s.lane < params.k;
    h.i = s.base + s.lane;
    h.a = vec4<f32>(0.0);
    h.b = vec4<f32>(0.0);
    if (h.on) {
        h.a = in0v[h.i];
        h.b = in1v[h.i];
    }
    return h;
}

fn head2_io(s: Slot) -> Head {
    var h: Head;
    h.on = s.valid && s.lane < params.k;
    h.i = s.base + s.lane;
    h.a = vec4<f32>(0.0);
    h.b = vec4<f32>(0.0);
    if (h.on) {
        h.a = iov[h.i];
        h.b = in1v[h.i];
    }
    return h;
}

// Partial sums of exp_map: (|u|^2, |x+u|^2).
fn exp_terms(x: vec4<f32>, u: vec4<f32>) -> vec4<f32> {
    let w = x + u;
    return vec4<f32>(dot(u, u), dot(w, w), 0.0, 0.0);
}

// Partial sums of log_map: (<x,y>, |y-x|^2, |y+x|^2).
fn log_terms(x: vec4<f32>, y: vec4<f32>) -> vec4<f32> {
    let d = y - x;
    let p = y + x;
    return vec4<f32>(dot(x, y), dot(d, d), dot(p, p), 0.0);
}

// Partial sums of the angle: (|y-x|^2, |y+x|^2).
fn angle_terms(x: vec4<f32>, y: vec4<f32>) -> vec4<f32> {
    let d = y - x;
    let p = y + x;
    return vec4<f32>(dot(d, d), dot(p, p), 0.0, 0.0);
}

@compute @workgroup_size(256)
fn exp_map_v4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let s = slot(wid, nwg, lid);
    let h = head2(s);
    var acc = exp_terms(h.a, h.b);
    if (s.valid) {
        for (var i = s.lane + params.lanes; i < params.k; i += params.lanes) {
            acc += exp_terms(in0v[s.base + i], in1v[s.base + i]);
        }
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
        out0v[h.i] = a * h.a + b * h.b;
        for (var i = s.lane + params.lanes; i < params.k; i += params.lanes) {
            out0v[s.base + i] = a * in0v[s.base + i] + b * in1v[s.base + i];
        }
    }
}

@compute @workgroup_size(256)
fn log_map_v4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let s = slot(wid, nwg, lid);
    let h = head2(s);
    var acc = log_terms(h.a, h.b);
    if (s.valid) {
        for (var i = s.lane + params.lanes; i < params.k; i += params.lanes) {
            acc += log_terms(in0v[s.base + i], in1v[s.base + i]);
        }
    }
    let r = row_sum(acc, lid, s.lane);
    let c = r.x;
    var f = 0.0;
    if (r.y > 0.0) {
        f = 1.0 / sinc(angle(r.y, r.z));
    }
    if (h.on) {
        out0v[h.i] = f * (h.b - c * h.a);
        for (var i = s.lane + params.lanes; i < params.k; i += params.lanes) {
            out0v[s.base + i] = f * (in1v[s.base + i] - c * in0v[s.base + i]);
        }
    }
}

@compute @workgroup_size(256)
fn proj_tangent_v4(@builtin(workgroup_id) wid: vec3<u32>,
                   @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let s = slot(wid, nwg, lid);
    let h = head2(s);
    var acc = vec4<f32>(dot(h.a, h.b), 0.0, 0.0, 0.0);
    if (s.valid) {
        for (var i = s.lane + params.lanes; i < params.k; i += params.lanes) {
            acc.x += dot(in0v[s.base + i], in1v[s.base + i]);
        }
    }
    let r = row_sum(acc, lid, s.lane);
    if (h.on) {
        out0v[h.i] = h.b - r.x * h.a;
        for (var i = s.lane + params.lanes; i < params.k; i += params.lanes) {
            out0v[s.base + i] = in1v[s.base + i] - r.x * in0v[s.base + i];
        }
    }
}

@compute @workgroup_size(256)
fn geodesic_distance_v4(@builtin(workgroup_id) wid: vec3<u32>,
                        @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_index) lid: u32) {
    let s = slot(wid, nwg, lid);
    let h = head2(s);
    var acc = angle_terms(h.a, h.b);
    if (s.valid) {
        for (var i = s.lane + params.lanes; i < params.k; i += params.lanes) {
            acc += angle_terms(in0v[s.base + i], in1v[s.base + i]);
        }
    }
    let r = row_sum(acc, lid, s.lane);
    if (s.valid && s.lane == 0u) {
        out0[s.row] = angle(r.x, r.y);
    }
}

@compute @workgroup_size(256)
fn slerp_v4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let s = slot(wid, nwg, lid);
    let h = head2(s);
    var acc = angle_terms(h.a, h.b);
    if (s.valid) {
        for (var i = s.lane + params.lanes; i < params.k; i += params.lanes) {
            acc += angle_terms(in0v[s.base + i], in1v[s.base + i]);
        }
    }
    let r = row_sum(acc, lid, s.lane);
    if (h.on) {
        let o = geodesic(angle(r.x, r.y), time_of(s.row));
        out_xtv[h.i] = h.a + o.a1 * (h.b - h.a) + o.g * h.a;
        for (var i = s.lane + params.lanes; i < params.k; i += params.lanes) {
            let x0 = in0v[s.base + i];
            out_xtv[s.base + i] = x0 + o.a1 * (in1v[s.base + i] - x0) + o.g * x0;
        }
    }
}

@compute @workgroup_size(256)
fn interpolant_target_v4(@builtin(workgroup_id) wid: vec3<u32>,
                         @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) lid: u32) {
    let s = slot(wid, nwg, lid);
    let h = head2(s);
    var acc = angle_terms(h.a, h.b);
    if (s.valid) {
        for (var i = s.lane + params.lanes; i < params.k; i += params.lanes) {
            acc += angle_terms(in0v[s.base + i], in1v[s.base + i]);
        }
    }
    let r = row_sum(acc, lid, s.lane);
    if (h.on) {
        let o = geodesic(angle(r.x, r.y), time_of(s.row));
        let d = h.b - h.a;
        out_xtv[h.i] = h.a + o.a1 * d + o.g * h.a;
        out_utv[h.i] = o.c1 * d + o.c0 * h.a;
        for (var i = s.lane + params.lanes; i < params.k; i += params.lanes) {
            let x0 = in0v[s.base + i];
            let dd = in1v[s.base + i] - x0;
            out_xtv[s.base + i] = x0 + o.a1 * dd + o.g * x0;
            out_utv[s.base + i] = o.c1 * dd + o.c0 * x0;
        }
    }
}

// Partial sums of the Euler step's second pass: (|u|^2, |x+u|^2), u = dt (v - c x).
fn step_terms(x: vec4<f32>, v: vec4<f32>, c: f32) -> vec4<f32> {
    let u = params.dt * (v - c * x);
    let w = x + u;
    return vec4<f32>(dot(u, u), dot(w, w), 0.0, 0.0);
}

@compute @workgroup_size(256)
fn euler_step_v4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let s = slot(wid, nwg, lid);
    let h = head2(s);
    var acc = vec4<f32>(dot(h.a, h.b), dot(h.a, h.a), 0.0, 0.0);
    if (s.valid) {
        for (var i = s.lane + params.lanes; i < params.k; i += params.lanes) {
            let x = in0v[s.base + i];
            acc += vec4<f32>(dot(x, in1v[s.base + i]), dot(x, x), 0.0, 0.0);
        }
    }
    let r1 = row_sum(acc, lid, s.lane);
    acc = step_terms(h.a, h.b, r1.x);
    if (s.valid) {
        for (var i = s.lane + params.lanes; i < params.k; i += params.lanes) {
            acc += step_terms(in0v[s.base + i], in1v[s.base + i], r1.x);
        }
    }
    let r2 = row_sum(acc, lid, s.lane);
    let o = step_coeffs(r1, r2);
    if (h.on) {
        out0v[h.i] = abs(o.a * h.a + o.b * h.b);
        for (var i = s.lane + params.lanes; i < params.k; i += params.lanes) {
            out0v[s.base + i] = abs(o.a * in0v[s.base + i] + o.b * in1v[s.base + i]);
        }
    }
}

@compute @workgroup_size(256)
fn euler_step_inplace_v4(@builtin(workgroup_id) wid: vec3<u32>,
                         @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) lid: u32) {
    let s = slot(wid, nwg, lid);
    let h = head2_io(s);
    var acc = vec4<f32>(dot(h.a, h.b), dot(h.a, h.a), 0.0, 0.0);
    if (s.valid) {
        for (var i = s.lane + params.lanes; i < params.k; i += params.lanes) {
            let x = iov[s.base + i];
            acc += vec4<f32>(dot(x, in1v[s.base + i]), dot(x, x), 0.0, 0.0);
        }
    }
    let r1 = row_sum(acc, lid, s.lane);
    acc = step_terms(h.a, h.b, r1.x);
    if (s.valid) {
        for (var i = s.lane + params.lanes; i < params.k; i += params.lanes) {
            acc += step_terms(iov[s.base + i], in1v[s.base + i], r1.x);
        }
    }
    let r2 = row_sum(acc, lid, s.lane);
    let o = step_coeffs(r1, r2);
    // Same element ownership as the reads above, after the barriers: safe in place.
    if (h.on) {
        iov[h.i] = abs(o.a * h.a + o.b * h.b);
        for (var i = s.lane + params.lanes; i < params.k; i += params.lanes) {
            iov[s.base + i] = abs(o.a * iov[s.base + i] + o.b * in1v[s.base + i]);
        }
    }
}
