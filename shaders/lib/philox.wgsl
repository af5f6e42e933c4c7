// Counter-based random numbers: Philox4x32-10 (Salmon, Moraes, Dror, Shaw, SC'11), the one
// generator of every kernel family (kernels::rng on the host has the bit-exact reference), and
// the conversions of its words to uniforms and normals.

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;
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

// Philox4x32-10 of one 128-bit counter under a 64-bit key.
fn philox(ctr_in: vec4<u32>, key_in: vec2<u32>) -> vec4<u32> {
    var c = ctr_in;
    var k = key_in;
    for (var r = 0u; r < 10u; r = r + 1u) {
        if (r > 0u) {
            k = k + vec2<u32>(PHILOX_W0, PHILOX_W1);
        }
        let p0 = mulhilo(PHILOX_M0, c.x);
        let p1 = mulhilo(PHILOX_M1, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    }
    return c;
}

// Word j (0..3) of a block.
fn word_of(v: vec4<u32>, j: u32) -> u32 {
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

// Box-Muller on words (0, 1) or (2, 3) of a block: element j (0..3) of the block's normals.
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
