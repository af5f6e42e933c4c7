// Reductions: column sums of a row-major [m, n] matrix (bias gradients), and the sum of a
// vector, of its squares or of the squared differences of two vectors by a multi-stage tree
// (each stage writes one partial per workgroup). Every order of summation is fixed by the
// shapes alone, so results are deterministic.

// ---- sum_rows: out[j] (+)= scale * sum_i x[i, j] ----
struct RowSumParams {
    m: u32,
    n: u32,
    x_off: u32,
    out_off: u32,
    scale: f32,
    accumulate: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> rp: RowSumParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

var<workgroup> col_part: array<f32, 256>;

// Workgroup (64, 4): 64 columns; the 4 invocations of a column sum rows y, y+4, ... and are
// then added pairwise.
@compute @workgroup_size(64, 4)
fn sum_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
    let j = group_index(wid, nwg) * 64u + lid.x;
    var s = 0.0;
    if (j < rp.n) {
        for (var i = lid.y; i < rp.m; i += 4u) {
            s += x[rp.x_off + i * rp.n + j];
        }
    }
    col_part[lid.y * 64u + lid.x] = s;
    workgroupBarrier();
    if (lid.y == 0u && j < rp.n) {
        let t = (col_part[lid.x] + col_part[64u + lid.x]) + (col_part[128u + lid.x] + col_part[192u + lid.x]);
        let o = rp.out_off + j;
        if (rp.accumulate != 0u) {
            out[o] = out[o] + rp.scale * t;
        } else {
            out[o] = rp.scale * t;
        }
    }
}

// ---- one stage of a sum: out[w] = scale * (sum of the chunk of workgroup w) ----
struct SumParams {
    len: u32,
    x_off: u32,
    y_off: u32,
    mode: u32,      // 0: x, 1: x², 2: (x - y)² (the first stage), later stages 0
    scale: f32,
    out_off: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> sp: SumParams;

const ITEMS: u32 = 16u;             // elements per invocation
const CHUNK: u32 = WG * ITEMS;      // elements per workgroup

fn term(e: u32) -> f32 {
    let v = x[sp.x_off + e];
    switch sp.mode {
        case 1u: { return v * v; }
        case 2u: {
            let d = v - y[sp.y_off + e];
            return d * d;
        }
        default: { return v; }
    }
}

@compute @workgroup_size(256)
fn sum_stage(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) t: u32) {
    let g = group_index(wid, nwg);
    let n_groups = (sp.len + CHUNK - 1u) / CHUNK;
    var s = 0.0;
    if (g < n_groups) {
        for (var i = 0u; i < ITEMS; i++) {
            let e = g * CHUNK + i * WG + t;
            if (e < sp.len) {
                s += term(e);
            }
        }
    }
    let total = tree_sum(t, s);
    if (t == 0u && g < n_groups) {
        out[sp.out_off + g] = sp.scale * total;
    }
}
