// Reductions: column sums of a row-major [m, n] matrix (bias gradients), and the sum or sum of
// squares of a vector by a multi-stage tree (each stage writes one partial per workgroup).
// Every order of summation is fixed by the shapes alone, so results are deterministic.

// ---- sum_rows: out[j] (+)= scale * sum_i x[i, j] ----
struct RowParams {
    m: u32,
    n: u32,
    x_off: u32,
    out_off: u32,
    scale: f32,
    accumulate: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> rp: RowParams;
@group(0) @binding(1) var<storage, read> rx: array<f32>;
@group(0) @binding(2) var<storage, read_write> rout: array<f32>;

var<workgroup> col_part: array<f32, 256>;

// Workgroup (64, 4): 64 columns; the 4 invocations of a column sum rows y, y+4, ... and are
// then added pairwise.
@compute @workgroup_size(64, 4)
fn sum_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
    let g = wid.x + wid.y * nwg.x;
    let j = g * 64u + lid.x;
    var s = 0.0;
    if (j < rp.n) {
        for (var i = lid.y; i < rp.m; i += 4u) {
            s += rx[rp.x_off + i * rp.n + j];
        }
    }
    col_part[lid.y * 64u + lid.x] = s;
    workgroupBarrier();
    if (lid.y == 0u && j < rp.n) {
        let t = (col_part[lid.x] + col_part[64u + lid.x]) + (col_part[128u + lid.x] + col_part[192u + lid.x]);
        let o = rp.out_off + j;
        if (rp.accumulate != 0u) {
            rout[o] = rout[o] + rp.scale * t;
        } else {
            rout[o] = rp.scale * t;
        }
    }
}

// ---- one stage of sum / sum of squares: out[w] = sum of the chunk of workgroup w ----
struct SumParams {
    len: u32,
    off: u32,
    square: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> sp: SumParams;
@group(0) @binding(1) var<storage, read> sx: array<f32>;
@group(0) @binding(2) var<storage, read_write> sout: array<f32>;

const ITEMS: u32 = 16u;             // elements per invocation
const CHUNK: u32 = 256u * ITEMS;    // elements per workgroup

var<workgroup> part: array<f32, 256>;

@compute @workgroup_size(256)
fn sum_stage(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) t: u32) {
    let g = wid.x + wid.y * nwg.x;
    let n_groups = (sp.len + CHUNK - 1u) / CHUNK;
    var s = 0.0;
    if (g < n_groups) {
        for (var i = 0u; i < ITEMS; i++) {
            let e = g * CHUNK + i * 256u + t;
            if (e < sp.len) {
                let v = sx[sp.off + e];
                s += select(v, v * v, sp.square != 0u);
            }
        }
    }
    part[t] = s;
    workgroupBarrier();
    for (var h = 128u; h > 0u; h >>= 1u) {
        if (t < h) { part[t] = part[t] + part[t + h]; }
        workgroupBarrier();
    }
    if (t == 0u && g < n_groups) {
        sout[g] = part[0];
    }
}
