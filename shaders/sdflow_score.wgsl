// Score-difference flow (Weber 2023): the smoothed score difference
//   v(q) = (1/σ²) [ Σ_j w_j(q) y_j − Σ_i u_i(q) x_i ],
//   w = softmax_j(−‖q−y_j‖²/2σ²) over the target set, u likewise over the source set,
// computed flash-attention style (online max / running sum / running weighted sum, no N×M
// matrix), and a naive two-pass baseline that materialises the logits.
//
// Points are row-major [n, d] f32. σ lives in a small state buffer (u32 words):
//   state[0] = step counter, state[1] = bitcast<u32>(σ at this step).

const QWG: u32 = 64u;     // queries per workgroup of the tiled kernels (one per invocation)
const T: u32 = 64u;       // samples per tile
const DC: u32 = 32u;      // coordinates per tile chunk
const NEG: f32 = -3.0e38; // "minus infinity" for the online max

// ---------------------------------------------------------------------------------------------
// Tiled score difference, split over the sample set ("split-K" flash attention).
//
// `score_partial` runs over a grid of (query block, output coordinate chunk, split). Each
// invocation streams the tiles of its split of one sample set through workgroup memory with an
// online max m / running sum l / running weighted sum (the coordinates of its output chunk, in
// registers) and writes (m, l) and the unnormalised sum. `score_combine` merges the splits of
// the target and the source and writes v. Splitting bounds the work of one invocation (software
// rasterisers cap loop iterations per invocation) and gives parallelism when queries are few.

struct ScoreParams {
    n_q: u32,        // number of queries
    n_set: u32,      // number of samples in this set
    d: u32,          // dimension
    loo: u32,        // 1: leave sample q out for query q
    tps: u32,        // tiles per split
    n_splits: u32,
    n_qblocks: u32,  // ceil(n_q / QWG)
    n_wg: u32,       // n_qblocks * n_chunks * n_splits
}

@group(0) @binding(0) var<uniform> params: ScoreParams;
@group(0) @binding(1) var<storage, read> queries: array<f32>;
@group(0) @binding(2) var<storage, read> samples: array<f32>;
@group(0) @binding(3) var<storage, read> state: array<u32>;
@group(0) @binding(4) var<storage, read_write> part_ml: array<f32>;  // [split, q, 2]
@group(0) @binding(5) var<storage, read_write> part_sum: array<f32>; // [split, q, d]
@group(0) @binding(6) var<storage, read> t_ml: array<f32>;           // target partials
@group(0) @binding(7) var<storage, read> t_sum: array<f32>;
@group(0) @binding(8) var<storage, read> s_ml: array<f32>;           // source partials
@group(0) @binding(9) var<storage, read> s_sum: array<f32>;
@group(0) @binding(10) var<storage, read_write> logits: array<f32>;  // naive: [n_q, n_set]
@group(0) @binding(11) var<storage, read_write> out: array<f32>;     // [n_q, d]

var<workgroup> tile: array<f32, 2048>; // T * DC

// Cooperative load of samples [base, base+T) x coordinates [c0, c0+DC) into `tile`, zero-padded.
fn load_tile(base: u32, c0: u32, lid: u32) {
    let d = params.d;
    for (var e = lid; e < T * DC; e += QWG) {
        let j = base + e / DC;
        let k = c0 + e % DC;
        var v = 0.0;
        if (j < params.n_set && k < d) {
            v = samples[j * d + k];
        }
        tile[e] = v;
    }
}

@compute @workgroup_size(64)
fn score_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let wg = group_index(wid, nwg);
    if (wg >= params.n_wg) {
        return;
    }
    let d = params.d;
    let nch = (d + DC - 1u) / DC;
    let qb = wg % params.n_qblocks;
    let rest = wg / params.n_qblocks;
    let co = rest % nch;
    let split = rest / nch;
    let q = qb * QWG + lid;
    let valid = q < params.n_q;
    let sigma = bitcast<f32>(state[1]);
    let coef = 0.5 / (sigma * sigma);
    let ntiles = (params.n_set + T - 1u) / T;
    let t_begin = split * params.tps;
    let t_end = min(t_begin + params.tps, ntiles);
    let c_out = co * DC;
    let kc_out = min(DC, d - c_out);
    var w: array<f32, 64>;  // distances, then logits, then weights of the current tile
    var qc: array<f32, 32>; // the query's current coordinate chunk
    var acc: array<f32, 32>;
    var m = NEG;
    var l = 0.0;
    for (var k = 0u; k < DC; k++) {
        acc[k] = 0.0;
    }
    for (var tt = t_begin; tt < t_end; tt++) {
        let base = tt * T;
        for (var t = 0u; t < T; t++) {
            w[t] = 0.0;
        }
        // Squared distances, chunk by chunk over d.
        for (var c = 0u; c < nch; c++) {
            let c0 = c * DC;
            workgroupBarrier();
            load_tile(base, c0, lid);
            workgroupBarrier();
            if (valid) {
                let kc = min(DC, d - c0);
                for (var k = 0u; k < kc; k++) {
                    qc[k] = queries[q * d + c0 + k];
                }
                for (var t = 0u; t < T; t++) {
                    var s = w[t];
                    for (var k = 0u; k < kc; k++) {
                        let df = qc[k] - tile[t * DC + k];
                        s += df * df;
                    }
                    w[t] = s;
                }
            }
        }
        // Online softmax update.
        var tmax = NEG;
        for (var t = 0u; t < T; t++) {
            let j = base + t;
            let ok = j < params.n_set && !(params.loo == 1u && j == q);
            let logit = select(NEG, -coef * w[t], ok);
            w[t] = logit;
            tmax = max(tmax, logit);
        }
        let mnew = max(m, tmax);
        let scale = exp(m - mnew);
        var psum = 0.0;
        for (var t = 0u; t < T; t++) {
            let p = select(0.0, exp(w[t] - mnew), w[t] > 0.5 * NEG);
            w[t] = p;
            psum += p;
        }
        l = l * scale + psum;
        m = mnew;
        // Weighted sum of the output chunk (still in the tile when it was the last one loaded).
        if (co + 1u != nch) {
            workgroupBarrier();
            load_tile(base, c_out, lid);
            workgroupBarrier();
        }
        if (valid) {
            for (var k = 0u; k < kc_out; k++) {
                var a = 0.0;
                for (var t = 0u; t < T; t++) {
                    a += w[t] * tile[t * DC + k];
                }
                acc[k] = acc[k] * scale + a;
            }
        }
    }
    if (valid) {
        let row = split * params.n_q + q;
        if (co == 0u) {
            part_ml[2u * row] = m;
            part_ml[2u * row + 1u] = l;
        }
        for (var k = 0u; k < kc_out; k++) {
            part_sum[row * d + c_out + k] = acc[k];
        }
    }
}

var<workgroup> tile4: array<vec4<f32>, 64>; // T points of d ≤ 4, zero-padded

fn sample4(j: u32) -> vec4<f32> {
    let d = params.d;
    var v = vec4<f32>(0.0);
    if (j < params.n_set) {
        v.x = samples[j * d];
        if (d > 1u) { v.y = samples[j * d + 1u]; }
        if (d > 2u) { v.z = samples[j * d + 2u]; }
        if (d > 3u) { v.w = samples[j * d + 3u]; }
    }
    return v;
}

// The same partial pass for d ≤ 4, with points in vec4 registers and no per-invocation
// arrays: each tile is visited twice (max, then weights), recomputing the cheap distances.
@compute @workgroup_size(64)
fn score_partial4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let wg = group_index(wid, nwg);
    if (wg >= params.n_wg) {
        return;
    }
    let d = params.d;
    let qb = wg % params.n_qblocks;
    let split = wg / params.n_qblocks;
    let q = qb * QWG + lid;
    let valid = q < params.n_q;
    var x = vec4<f32>(0.0);
    if (valid) {
        x.x = queries[q * d];
        if (d > 1u) { x.y = queries[q * d + 1u]; }
        if (d > 2u) { x.z = queries[q * d + 2u]; }
        if (d > 3u) { x.w = queries[q * d + 3u]; }
    }
    let sigma = bitcast<f32>(state[1]);
    let coef = 0.5 / (sigma * sigma);
    let ntiles = (params.n_set + T - 1u) / T;
    let t_begin = split * params.tps;
    let t_end = min(t_begin + params.tps, ntiles);
    let skip = select(0xffffffffu, q, params.loo == 1u);
    var m = NEG;
    var l = 0.0;
    var acc = vec4<f32>(0.0);
    for (var tt = t_begin; tt < t_end; tt++) {
        let base = tt * T;
        workgroupBarrier();
        tile4[lid] = sample4(base + lid);
        workgroupBarrier();
        let tn = min(T, params.n_set - base);
        var tmax = NEG;
        for (var t = 0u; t < tn; t++) {
            let df = x - tile4[t];
            let lg = select(-coef * dot(df, df), NEG, base + t == skip);
            tmax = max(tmax, lg);
        }
        let mnew = max(m, tmax);
        let scale = exp(m - mnew);
        acc *= scale;
        l *= scale;
        for (var t = 0u; t < tn; t++) {
            let y = tile4[t];
            let df = x - y;
            let p = select(exp(-coef * dot(df, df) - mnew), 0.0, base + t == skip);
            l += p;
            acc += p * y;
        }
        m = mnew;
    }
    if (valid) {
        let row = split * params.n_q + q;
        part_ml[2u * row] = m;
        part_ml[2u * row + 1u] = l;
        part_sum[row * d] = acc.x;
        if (d > 1u) { part_sum[row * d + 1u] = acc.y; }
        if (d > 2u) { part_sum[row * d + 2u] = acc.z; }
        if (d > 3u) { part_sum[row * d + 3u] = acc.w; }
    }
}

struct CombineParams {
    n_q: u32,
    d: u32,
    splits_t: u32,
    splits_s: u32,
}

@group(0) @binding(0) var<uniform> cparams: CombineParams;

// One invocation per (query, coordinate): merge the splits of each set and write v.
@compute @workgroup_size(256)
fn score_combine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let e = thread_index(wid, nwg, lid);
    let n_q = cparams.n_q;
    let d = cparams.d;
    if (e >= n_q * d) {
        return;
    }
    let q = e / d;
    let k = e % d;
    var mt = NEG;
    for (var s = 0u; s < cparams.splits_t; s++) {
        mt = max(mt, t_ml[2u * (s * n_q + q)]);
    }
    var lt = 0.0;
    var at = 0.0;
    for (var s = 0u; s < cparams.splits_t; s++) {
        let row = s * n_q + q;
        let f = exp(t_ml[2u * row] - mt);
        lt += f * t_ml[2u * row + 1u];
        at += f * t_sum[row * d + k];
    }
    var ms = NEG;
    for (var s = 0u; s < cparams.splits_s; s++) {
        ms = max(ms, s_ml[2u * (s * n_q + q)]);
    }
    var ls = 0.0;
    var as_ = 0.0;
    for (var s = 0u; s < cparams.splits_s; s++) {
        let row = s * n_q + q;
        let f = exp(s_ml[2u * row] - ms);
        ls += f * s_ml[2u * row + 1u];
        as_ += f * s_sum[row * d + k];
    }
    let sigma = bitcast<f32>(state[1]);
    out[e] = (at / lt - as_ / ls) / (sigma * sigma);
}

// ---------------------------------------------------------------------------------------------
// Naive baseline: materialise the logits of every (query, sample) pair, then a row softmax and
// a weighted mean per query. Run once for the target set (mode 0: out ← mean) and once for the
// source set (mode 1: out ← (out − mean) / σ²).

struct NaiveParams {
    n_q: u32,
    n_set: u32,
    d: u32,
    loo: u32,   // 1: exclude the pair (i, i)
    mode: u32,
    n_wg: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> nparams: NaiveParams;

@compute @workgroup_size(256)
fn naive_logits(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let wg = group_index(wid, nwg);
    let e = wg * 256u + lid;
    if (wg >= nparams.n_wg || e >= nparams.n_q * nparams.n_set) {
        return;
    }
    let q = e / nparams.n_set;
    let j = e % nparams.n_set;
    let d = nparams.d;
    let sigma = bitcast<f32>(state[1]);
    var s = 0.0;
    for (var k = 0u; k < d; k++) {
        let df = queries[q * d + k] - samples[j * d + k];
        s += df * df;
    }
    var logit = -s * 0.5 / (sigma * sigma);
    if (nparams.loo == 1u && q == j) {
        logit = NEG;
    }
    logits[e] = logit;
}


@compute @workgroup_size(64)
fn naive_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let wg = group_index(wid, nwg);
    let q = wg * 64u + lid;
    if (wg >= nparams.n_wg || q >= nparams.n_q) {
        return;
    }
    let n = nparams.n_set;
    let d = nparams.d;
    let row = q * n;
    var m = NEG;
    for (var j = 0u; j < n; j++) {
        m = max(m, logits[row + j]);
    }
    var l = 0.0;
    for (var j = 0u; j < n; j++) {
        let lg = logits[row + j];
        let p = select(0.0, exp(lg - m), lg > 0.5 * NEG);
        logits[row + j] = p;
        l += p;
    }
    let sigma = bitcast<f32>(state[1]);
    for (var k = 0u; k < d; k++) {
        var a = 0.0;
        for (var j = 0u; j < n; j++) {
            a += logits[row + j] * samples[j * d + k];
        }
        let mean = a / l;
        let gi = q * d + k;
        if (nparams.mode == 0u) {
            out[gi] = mean;
        } else {
            out[gi] = (out[gi] - mean) / (sigma * sigma);
        }
    }
}

