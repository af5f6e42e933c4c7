// Counter-based random numbers: Philox4x32-10 (Salmon, Moraes, Dror, Shaw, SC'11).
//
// Counter of block b in a call: (c0, c1, c2, c3) = (b, stream, counter_lo, counter_hi); key =
// (seed_lo, seed_hi). Element i of a call uses word i % 4 of block i / 4. The host writes a new
// 64-bit counter each step (one uniform write) and every call uses its own stream id, so draws
// never repeat and a run can be resumed from (seed, counter).

struct Rng {
    seed_lo: u32,
    seed_hi: u32,
    ctr_lo: u32,
    ctr_hi: u32,
}

struct Shape {
    n: u32,       // elements (fills) or rows (row kernels)
    k: u32,       // row length (row kernels)
    stream: u32,
    lanes: u32,   // row kernels: invocations per row, a power of two dividing 256
}

@group(0) @binding(0) var<uniform> rng: Rng;
@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const M0: u32 = 0xD2511F53u;
const M1: u32 = 0xCD9E8D57u;
const W0: u32 = 0x9E3779B9u;
const W1: u32 = 0xBB67AE85u;
const TWO_PI: f32 = 6.283185307179586;
const INV_2_24: f32 = 5.9604644775390625e-8;

// (hi, lo) of the 64-bit product a * b, from 16-bit halves (WGSL has no 64-bit integers).
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
    let al = a & 0xFFFFu;
    let ah = a >> 16u;
    let bl = b & 0xFFFFu;
    let bh = b >> 16u;
    let ll = al * bl;
    let lh = al * bh;
    let hl = ah * bl;
    let hh = ah * bh;
    let mid = (ll >> 16u) + (lh & 0xFFFFu) + (hl & 0xFFFFu);
    let hi = hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
    return vec2<u32>(hi, a * b);
}

fn philox(ctr_in: vec4<u32>, key_in: vec2<u32>) -> vec4<u32> {
    var c = ctr_in;
    var k = key_in;
    for (var r = 0u; r < 10u; r = r + 1u) {
        if (r > 0u) {
            k = k + vec2<u32>(W0, W1);
        }
        let p0 = mulhilo(M0, c.x);
        let p1 = mulhilo(M1, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    }
    return c;
}

fn block(b: u32) -> vec4<u32> {
    return philox(vec4<u32>(b, shape.stream, rng.ctr_lo, rng.ctr_hi), vec2<u32>(rng.seed_lo, rng.seed_hi));
}

fn word(v: vec4<u32>, j: u32) -> u32 {
    switch j {
        case 0u: { return v.x; }
        case 1u: { return v.y; }
        case 2u: { return v.z; }
        default: { return v.w; }
    }
}

// [0, 1): the top 24 bits, exact in f32.
fn to_unit(u: u32) -> f32 {
    return f32(u >> 8u) * INV_2_24;
}

// (0, 1]: never 0, safe under log.
fn to_unit_open0(u: u32) -> f32 {
    return f32((u >> 8u) + 1u) * INV_2_24;
}

// Box-Muller on words (2p, 2p+1) of a block; element j of the block.
fn normal_of(v: vec4<u32>, j: u32) -> f32 {
    var a = v.x;
    var b = v.y;
    if (j >= 2u) {
        a = v.z;
        b = v.w;
    }
    let r = sqrt(-2.0 * log(to_unit_open0(a)));
    let th = TWO_PI * to_unit(b);
    if ((j & 1u) == 0u) {
        return r * cos(th);
    }
    return r * sin(th);
}

fn gid(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

@compute @workgroup_size(64)
fn uniform_fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let b = gid(wid, nwg) * 64u + lid;
    if (b * 4u >= shape.n) {
        return;
    }
    let v = block(b);
    for (var j = 0u; j < 4u; j = j + 1u) {
        let i = b * 4u + j;
        if (i < shape.n) {
            out[i] = to_unit(word(v, j));
        }
    }
}

@compute @workgroup_size(64)
fn normal_fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let b = gid(wid, nwg) * 64u + lid;
    if (b * 4u >= shape.n) {
        return;
    }
    let v = block(b);
    for (var j = 0u; j < 4u; j = j + 1u) {
        let i = b * 4u + j;
        if (i < shape.n) {
            out[i] = normal_of(v, j);
        }
    }
}

// ---- row kernels: a row of K is handled by `lanes` invocations (the host's choice, as for the
// sphere kernels: one on CPU adapters, about K/4 on GPUs), 256 / lanes rows a workgroup. Every
// invocation reaches every barrier; rows past the end are masked.
// The row machinery (lib/rows.wgsl) reads the layout from these parameters.
fn row_lanes() -> u32 { return shape.lanes; }
fn row_count() -> u32 { return shape.n; }
fn row_len() -> u32 { return shape.k; }

// x = |z| / ||z||, z ~ N(0, I_K); element (row, k) uses normal element row * K + k of the
// stream (the same numbers as normal_fill).
@compute @workgroup_size(256)
fn sphere_prior(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let sl = slot(wid, nwg, lid);
    let k = select(0u, shape.k, sl.valid);
    var ss = 0.0;
    for (var c = sl.lane; c < k; c = c + shape.lanes) {
        let i = sl.base + c;
        let z = abs(normal_of(block(i >> 2u), i & 3u));
        out[i] = z;
        ss = ss + z * z;
    }
    let total = row_sum(vec4<f32>(ss, 0.0, 0.0, 0.0), lid, sl.lane).x;
    for (var c = sl.lane; c < k; c = c + shape.lanes) {
        // z = 0 has probability ~2^-24 per coordinate; the all-zero row falls back to the centre.
        if (total > 0.0) {
            out[sl.base + c] = out[sl.base + c] / sqrt(total);
        } else {
            out[sl.base + c] = 1.0 / sqrt(f32(shape.k));
        }
    }
}

// p = e / sum(e) with e = -log U, U in (0, 1] (Dirichlet(1)); element (row, k) uses uniform
// word row * K + k of the stream.
@compute @workgroup_size(256)
fn dirichlet1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let sl = slot(wid, nwg, lid);
    let k = select(0u, shape.k, sl.valid);
    var s = 0.0;
    for (var c = sl.lane; c < k; c = c + shape.lanes) {
        let i = sl.base + c;
        let e = -log(to_unit_open0(word(block(i >> 2u), i & 3u)));
        out[i] = e;
        s = s + e;
    }
    let total = row_sum(vec4<f32>(s, 0.0, 0.0, 0.0), lid, sl.lane).x;
    for (var c = sl.lane; c < k; c = c + shape.lanes) {
        if (total > 0.0) {
            out[sl.base + c] = out[sl.base + c] / total;
        } else {
            out[sl.base + c] = 1.0 / f32(shape.k);
        }
    }
}
