// Perfect sampling and sequential log-probabilities of a matrix product state.
//
// One workgroup (64 lanes) owns `batch` samples; their left vectors live in workgroup memory
// (two halves of 1536 floats, batch * chi_max <= 1536). Per site k:
//   1. lane b < batch forms w[s] = l_b . M_k[s] (M_k = A_k R_k, precomputed), then either draws
//      s from a Philox4x32-10 uniform (lib/philox.wgsl) keyed by seed with counter (global sample
//      index low word, site, stream, high word) (mode 0), or
//      reads the given s (mode 1), and adds log(w[s] / sum w) to its log-probability;
//   2. the batch * chi_r entries l'_b[j] = sum_i l_b[i] A_k[i, s_b, j] / w[s_b] are spread over
//      the lanes (consecutive lanes -> consecutive j -> contiguous reads of A_k).
// Tensor layout in `tens`: A_k[i, s, j] at offA + (i * d + s) * dr + j, M_k[s, i] at offM + s * dl + i.

struct TnParams {
    n_sites: u32,
    d: u32,
    n_samples: u32,  // samples in this dispatch
    batch: u32,      // samples per workgroup
    seed: u32,
    stream: u32,
    mode: u32,       // 0: sample, 1: log-probability of given samples
    first: u32,      // low word of the global index of this dispatch's first sample
    chi_max: u32,
    first_hi: u32,   // its high word
    stride: u32,     // the index advances by ctr[0] * stride (replayed Monte Carlo steps)
    _p2: u32,
}

@group(0) @binding(0) var<uniform> params: TnParams;
@group(0) @binding(1) var<storage, read> tens: array<f32>;
@group(0) @binding(2) var<storage, read> sites: array<vec4<u32>>;  // offA, offM, dl, dr
@group(0) @binding(3) var<storage, read_write> samples: array<u32>;
@group(0) @binding(4) var<storage, read_write> logp: array<f32>;
@group(0) @binding(5) var<storage, read> ctr: array<u32>;  // [step, ...] of a chain recording

const LANES: u32 = 64u;   // invocations per workgroup
const HALF: u32 = 1536u;
const MAXB: u32 = 256u;
const DEAD: f32 = -3.0e38;

var<workgroup> lv: array<f32, 3072>;
var<workgroup> wsel: array<f32, 256>;
var<workgroup> ssel: array<u32, 256>;
var<workgroup> lacc: array<f32, 256>;
// Bit p of half h (word h * 48 + p / 32) is set when lv[h * 1536 + p] != 0: the loops below
// visit only the non-zero entries of a left vector, in ascending order (so the result does not
// depend on scheduling). Exact constructions (shift registers, heights) have one-hot left
// vectors, which makes a site O(chi) instead of O(chi^2); dense words take a plain loop.
var<workgroup> mask: array<atomic<u32>, 96>;
const HWORDS: u32 = 48u;

// The set bits of `word` restricted to positions [lo, hi) of the half (word starts at `start`).
fn clip(bits_in: u32, start: u32, lo: u32, hi: u32) -> u32 {
    var bits = bits_in;
    if (start < lo) {
        bits = bits & ~((1u << (lo - start)) - 1u);
    }
    if (hi < start + 32u) {
        bits = bits & ((1u << (hi - start)) - 1u);
    }
    return bits;
}

// The uniform of sample `gidx` of this dispatch at `site`: its 64-bit global index is
// first + ctr[0] * stride + gidx.
fn uniform01(gidx: u32, site: u32) -> f32 {
    let m = mulhilo(ctr[0], params.stride);
    let a = m.y + params.first;
    let b = a + gidx;
    let hi = m.x + params.first_hi + select(0u, 1u, a < m.y) + select(0u, 1u, b < a);
    return to_unit(philox(vec4<u32>(b, site, params.stream, hi), vec2<u32>(params.seed, 0u)).x);
}

// The state of site k for sample gidx: drawn by inverse CDF from the weights w of its d states
// (mode 0; written to `samples`), or read from `samples` (mode 1, log-probabilities).
fn choose_state(w: array<f32, 4>, total: f32, d: u32, gidx: u32, k: u32, n: u32) -> u32 {
    if (params.mode != 0u) {
        return min(samples[gidx * n + k], d - 1u);
    }
    let r = uniform01(gidx, k) * total;
    var s_pick = 0u;
    var cum = 0.0;
    var found = false;
    for (var s = 0u; s < d; s = s + 1u) {
        if (w[s] > 0.0) {
            if (!found) {
                s_pick = s;
            }
            cum = cum + w[s];
            if (!found && r < cum) {
                s_pick = s;
                found = true;
            }
        }
    }
    if (!found) {
        // Rounding left r >= cum: take the last state with positive weight.
        for (var s = 0u; s < d; s = s + 1u) {
            if (w[s] > 0.0) {
                s_pick = s;
            }
        }
    }
    samples[gidx * n + k] = s_pick;
    return s_pick;
}

@compute @workgroup_size(64)
fn run(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let g = group_index(wid, nwg);
    let base = g * params.batch;
    if (base >= params.n_samples) {
        return;
    }
    let nb = min(params.batch, params.n_samples - base);
    let cm = params.chi_max;
    let d = params.d;
    let n = params.n_sites;
    for (var w = lid; w < 2u * HWORDS; w = w + LANES) {
        atomicStore(&mask[w], 0u);
    }
    workgroupBarrier();
    for (var b = lid; b < nb; b = b + LANES) {
        lv[b * cm] = 1.0;
        lacc[b] = 0.0;
        atomicOr(&mask[(b * cm) / 32u], 1u << ((b * cm) % 32u));
    }
    workgroupBarrier();
    var cur = 0u;
    for (var k = 0u; k < n; k = k + 1u) {
        let info = sites[k];
        let offa = info.x;
        let offm = info.y;
        let dl = info.z;
        let dr = info.w;
        // 1. conditionals, draw or read s, accumulate log p; clear the other half's mask.
        let nxt = HALF - cur;
        for (var w = lid; w < HWORDS; w = w + LANES) {
            atomicStore(&mask[nxt / 32u + w], 0u);
        }
        for (var b = lid; b < nb; b = b + LANES) {
            var w = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
            let lo = b * cm;
            let hi = lo + dl;
            for (var wd = lo / 32u; wd * 32u < hi; wd = wd + 1u) {
                let start = wd * 32u;
                var bits = clip(atomicLoad(&mask[cur / 32u + wd]), start, lo, hi);
                if (bits == 0xffffffffu) {
                    for (var t = 0u; t < 32u; t = t + 1u) {
                        let li = lv[cur + start + t];
                        let i = start + t - lo;
                        for (var s = 0u; s < d; s = s + 1u) {
                            w[s] = w[s] + li * tens[offm + s * dl + i];
                        }
                    }
                } else {
                    while (bits != 0u) {
                        let t = countTrailingZeros(bits);
                        bits = bits & (bits - 1u);
                        let li = lv[cur + start + t];
                        let i = start + t - lo;
                        for (var s = 0u; s < d; s = s + 1u) {
                            w[s] = w[s] + li * tens[offm + s * dl + i];
                        }
                    }
                }
            }
            var total = 0.0;
            for (var s = 0u; s < d; s = s + 1u) {
                total = total + w[s];
            }
            let gidx = base + b;
            let s_pick = choose_state(w, total, d, gidx, k, n);
            let ws = w[s_pick];
            if (ws > 0.0 && total > 0.0 && lacc[b] > DEAD) {
                lacc[b] = lacc[b] + log(ws / total);
                wsel[b] = ws;
            } else {
                lacc[b] = DEAD;
                wsel[b] = 1.0;
            }
            ssel[b] = s_pick;
        }
        workgroupBarrier();
        // 2. new left vectors.
        if (k + 1u < n) {
            for (var idx = lid; idx < nb * dr; idx = idx + LANES) {
                let b = idx / dr;
                let j = idx - b * dr;
                let s = ssel[b];
                var acc = 0.0;
                let lo = b * cm;
                let hi = lo + dl;
                let arow = offa + s * dr + j;
                let astep = d * dr;
                for (var wd = lo / 32u; wd * 32u < hi; wd = wd + 1u) {
                    let start = wd * 32u;
                    var bits = clip(atomicLoad(&mask[cur / 32u + wd]), start, lo, hi);
                    if (bits == 0xffffffffu) {
                        let i0 = start - lo;
                        for (var t = 0u; t < 32u; t = t + 1u) {
                            acc = acc + lv[cur + start + t] * tens[arow + (i0 + t) * astep];
                        }
                    } else {
                        while (bits != 0u) {
                            let t = countTrailingZeros(bits);
                            bits = bits & (bits - 1u);
                            acc = acc + lv[cur + start + t] * tens[arow + (start + t - lo) * astep];
                        }
                    }
                }
                let v = acc / wsel[b];
                let p = lo + j;
                lv[nxt + p] = v;
                if (v != 0.0) {
                    atomicOr(&mask[nxt / 32u + p / 32u], 1u << (p % 32u));
                }
            }
            cur = nxt;
        }
        workgroupBarrier();
    }
    for (var b = lid; b < nb; b = b + LANES) {
        logp[base + b] = lacc[b];
    }
}

// Small bonds (chi_max <= 64): one sample per invocation, left vector in registers/private
// memory, no workgroup memory or barriers. Same algorithm and summation order (ascending i,
// zero entries skipped) as the CPU reference.
const SMALL: u32 = 64u;

@compute @workgroup_size(64)
fn run_small(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let gidx = group_index(wid, nwg) * LANES + lid;
    if (gidx >= params.n_samples) {
        return;
    }
    let d = params.d;
    let n = params.n_sites;
    var l: array<f32, 64>;
    var nl: array<f32, 64>;
    l[0] = 1.0;
    var lp = 0.0;
    var dead = false;
    for (var k = 0u; k < n; k = k + 1u) {
        let info = sites[k];
        let offa = info.x;
        let offm = info.y;
        let dl = info.z;
        let dr = info.w;
        var w = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
        for (var i = 0u; i < dl; i = i + 1u) {
            let li = l[i];
            if (li != 0.0) {
                for (var s = 0u; s < d; s = s + 1u) {
                    w[s] = w[s] + li * tens[offm + s * dl + i];
                }
            }
        }
        var total = 0.0;
        for (var s = 0u; s < d; s = s + 1u) {
            total = total + w[s];
        }
        let s_pick = choose_state(w, total, d, gidx, k, n);
        var ws = w[s_pick];
        if (ws > 0.0 && total > 0.0 && !dead) {
            lp = lp + log(ws / total);
        } else {
            dead = true;
            ws = 1.0;
        }
        if (k + 1u < n) {
            for (var j = 0u; j < dr; j = j + 1u) {
                nl[j] = 0.0;
            }
            for (var i = 0u; i < dl; i = i + 1u) {
                let li = l[i];
                if (li != 0.0) {
                    let row = offa + (i * d + s_pick) * dr;
                    for (var j = 0u; j < dr; j = j + 1u) {
                        nl[j] = nl[j] + li * tens[row + j];
                    }
                }
            }
            let inv = 1.0 / ws;
            for (var j = 0u; j < dr; j = j + 1u) {
                l[j] = nl[j] * inv;
            }
        }
    }
    if (dead) {
        logp[gidx] = DEAD;
    } else {
        logp[gidx] = lp;
    }
}
