// Perfect samples and log-probabilities of the exact column MPS of an Ising lattice
// (tensornet::ColumnMps). One invocation per sample walks the N sites in column-major order; its
// register holds the last ly spins (the newest in bit 0), and the table stores, per site and
// register, the probability |t| of the rarer state, whose sign bit names it (clear: P(1) = |t|;
// set: P(0) = |t|, -0.0 included). Everything that reads t works on its bits, so an adapter
// that flushes subnormal floats to zero still draws the CPU's samples.
//
// Random numbers are those of the CPU sampler, bit for bit: sample i draws from the SplitMix64
// stream Rng::fork(key, i) (crate::rng), one 64-bit word per site, and takes the rare state when
// (word >> 11) * 2^-53 < |t|, i.e. when the 53-bit integer (word >> 11) is below ceil(|t| 2^53).
// 64-bit integers are vec2<u32>(low, high) words.
//
// Layout: cond[k * 2^ly + register]; cols[sample * lx + c] holds column c of a sample as the
// register holds it after the column's last site (row r in bit ly - 1 - r).

struct ColumnParams {
    n_sites: u32,
    ly: u32,
    rows: u32,       // samples in this chunk
    mode: u32,       // 0: sample, 1: log-probabilities of given samples
    key_lo: u32,     // SplitMix key
    key_hi: u32,
    first_lo: u32,   // stream index of this chunk's first sample
    first_hi: u32,
}

@group(0) @binding(0) var<uniform> params: ColumnParams;
@group(0) @binding(1) var<storage, read> cond: array<f32>;
@group(0) @binding(2) var<storage, read_write> cols: array<u32>;
@group(0) @binding(3) var<storage, read_write> logp: array<f32>;

const DEAD: f32 = -3.0e38;

fn add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let lo = a.x + b.x;
    return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}

// The low 64 bits of a * b.
fn mul64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let p = mulhilo(a.x, b.x);
    return vec2<u32>(p.y, p.x + a.x * b.y + a.y * b.x);
}

// a >> s for 0 < s < 32.
fn shr64(a: vec2<u32>, s: u32) -> vec2<u32> {
    return vec2<u32>((a.x >> s) | (a.y << (32u - s)), a.y >> s);
}

fn mix64(z0: vec2<u32>) -> vec2<u32> {
    var z = z0;
    z = mul64(z ^ shr64(z, 30u), vec2<u32>(0x1ce4e5b9u, 0xbf58476du));
    z = mul64(z ^ shr64(z, 27u), vec2<u32>(0x133111ebu, 0x94d049bbu));
    return z ^ shr64(z, 31u);
}

const GOLDEN: vec2<u32> = vec2<u32>(0x7f4a7c15u, 0x9e3779b9u);

// ceil(p * 2^53) of an f32 0 <= p <= 1/2 given by its bits, as a 64-bit integer.
fn threshold53(bits: u32) -> vec2<u32> {
    let e = (bits >> 23u) & 0xFFu;
    if (e == 0u) {
        // Zero, or a subnormal below 2^-126: ceil gives 1 for anything above zero.
        return vec2<u32>(select(0u, 1u, (bits & 0x7FFFFFu) != 0u), 0u);
    }
    let mant = (bits & 0x7FFFFFu) | 0x800000u;
    // p 2^53 = mant 2^(e - 97).
    if (e >= 97u) {
        let s = e - 97u;  // at most 29 (p <= 1/2)
        if (s == 0u) {
            return vec2<u32>(mant, 0u);
        }
        return vec2<u32>(mant << s, mant >> (32u - s));
    }
    let s = 97u - e;
    if (s >= 24u) {
        return vec2<u32>(1u, 0u);  // 0 < p 2^53 < 1
    }
    return vec2<u32>((mant + (1u << s) - 1u) >> s, 0u);
}

fn less64(a: vec2<u32>, b: vec2<u32>) -> bool {
    return a.y < b.y || (a.y == b.y && a.x < b.x);
}

const LN2: f32 = 0.6931471805599453;

// ln p of an f32 0 < p <= 1 given by its bits, subnormals included (from their mantissa).
fn log_bits(bits: u32) -> f32 {
    if (((bits >> 23u) & 0xFFu) == 0u) {
        return log(f32(bits & 0x7FFFFFu)) - 149.0 * LN2;
    }
    return log(bitcast<f32>(bits));
}

// Products of conditionals fold into the logarithm below FOLD; a conditional below TINY (the
// bits of 2^-63) goes straight into the logarithm, so a product stays a normal float (>= 1e-37).
const FOLD: f32 = 1.0e-18;
const TINY: u32 = 0x20000000u;

@compute @workgroup_size(WG)
fn run(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let row = thread_index(wid, nwg, lid);
    if (row >= params.rows) {
        return;
    }
    let n = params.n_sites;
    let ly = params.ly;
    let lx = n / ly;
    let size = 1u << ly;
    let mask = size - 1u;
    // Rng::fork(key, i): state ((key + i * D) ^ X) advanced once; every draw advances it again.
    let stream = add64(vec2<u32>(params.first_lo, params.first_hi), vec2<u32>(row, 0u));
    let seeded = add64(vec2<u32>(params.key_lo, params.key_hi),
                       mul64(stream, vec2<u32>(0xde82ef95u, 0xd1342543u)));
    var state = add64(seeded ^ vec2<u32>(0x4c957f2du, 0x5851f42du), GOLDEN);
    var reg = 0u;
    var lp = 0.0;
    var prod = 1.0;  // conditionals not yet in lp (as the CPU's walk keeps them)
    var dead = false;
    for (var k = 0u; k < n; k = k + 1u) {
        let c = k / ly;
        let r = k % ly;
        let tb = bitcast<u32>(cond[k * size + reg]);
        let rare_bits = tb & 0x7FFFFFFFu;
        let rare_state = (tb >> 31u) ^ 1u;
        var s: u32;
        if (params.mode == 0u) {
            state = add64(state, GOLDEN);
            let word = shr64(mix64(state), 11u);
            s = rare_state ^ select(1u, 0u, less64(word, threshold53(rare_bits)));
        } else {
            s = (cols[row * lx + c] >> (ly - 1u - r)) & 1u;
        }
        if (s == rare_state) {
            if (rare_bits == 0u) {
                dead = true;
            } else if (rare_bits < TINY) {
                lp = lp + log_bits(rare_bits);
            } else {
                prod = prod * bitcast<f32>(rare_bits);
            }
        } else {
            prod = prod * (1.0 - bitcast<f32>(rare_bits));
        }
        if (prod < FOLD) {
            lp = lp + log(prod);
            prod = 1.0;
        }
        reg = ((reg << 1u) & mask) | s;
        if (params.mode == 0u && r == ly - 1u) {
            cols[row * lx + c] = reg;
        }
    }
    lp = lp + log(prod);
    logp[row] = select(lp, DEAD, dead);
}
