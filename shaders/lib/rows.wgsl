// Rows of K handled by groups of `lanes` invocations (a power of two dividing 256, chosen on the
// host from K), 256 / lanes rows a workgroup; lanes stride over K and a row's sums are reduced
// in workgroup memory. Every invocation reaches every barrier (rows past the end are masked,
// never returned from), so control flow stays uniform. Follows lib/grid.wgsl; the shaders with
// row kernels define row_lanes(), row_count() and row_len().

var<workgroup> row_red: array<vec4<f32>, WG>;

struct Slot {
    row: u32,
    lane: u32,
    valid: bool,
    base: u32,
}

fn slot(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> Slot {
    let wg = group_index(wid, nwg);
    let lanes = row_lanes();
    let row = wg * (WG / lanes) + lid / lanes;
    let lane = lid & (lanes - 1u);
    var s: Slot;
    s.row = row;
    s.lane = lane;
    s.valid = row < row_count();
    s.base = select(0u, row * row_len(), s.valid);
    return s;
}

// Sum `v` over the `lanes` invocations of this row; every invocation gets the row's sum.
// Must be called from uniform control flow.
fn row_sum(v: vec4<f32>, lid: u32, lane: u32) -> vec4<f32> {
    if (row_lanes() == 1u) {
        return v; // one invocation per row: nothing to share (uniform branch)
    }
    row_red[lid] = v;
    var s = row_lanes() / 2u;
    loop {
        if (s == 0u) {
            break;
        }
        workgroupBarrier();
        if (lane < s) {
            row_red[lid] = row_red[lid] + row_red[lid + s];
        }
        s = s / 2u;
    }
    workgroupBarrier();
    let r = row_red[lid - lane];
    workgroupBarrier();
    return r;
}

