// Random fills and prior draws from the Philox4x32-10 generator of lib/philox.wgsl.
//
// Counter of block b in a call: (c0, c1, c2, c3) = (b, stream, counter_lo, counter_hi); key =
// (seed_lo, seed_hi). Element i of a call uses word i % 4 of block i / 4. The host writes a new
// 64-bit counter each step (one uniform write) and every call uses its own stream id, so draws
// never repeat and a run can be resumed from (seed, counter).

struct ShapeParams {
    n: u32,       // elements (fill) or rows (row kernels)
    k: u32,       // row length (row kernels)
    stream: u32,
    lanes: u32,   // row kernels: invocations per row, a power of two dividing 256
    dist: u32,    // fill: 0 uniform [0, 1), 1 standard normal
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// The generator's state, one uniform shared by every call of a recording (kernels::rng::GpuRng).
struct RngParams {
    seed_lo: u32,
    seed_hi: u32,
    ctr_lo: u32,
    ctr_hi: u32,
}

@group(0) @binding(0) var<uniform> shape: ShapeParams;
@group(0) @binding(1) var<uniform> rng: RngParams;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

fn block(b: u32) -> vec4<u32> {
    return philox(vec4<u32>(b, shape.stream, rng.ctr_lo, rng.ctr_hi), vec2<u32>(rng.seed_lo, rng.seed_hi));
}

// Element i of `out` from word i % 4 of block i / 4 (uniform), or element i % 4 of the block's
// Box-Muller normals; one invocation per block.
@compute @workgroup_size(64)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let b = group_index(wid, nwg) * 64u + lid;
    if (b * 4u >= shape.n) {
        return;
    }
    let v = block(b);
    for (var j = 0u; j < 4u; j = j + 1u) {
        let i = b * 4u + j;
        if (i < shape.n) {
            if (shape.dist == 1u) {
                out[i] = normal_of(v, j);
            } else {
                out[i] = to_unit(word_of(v, j));
            }
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
// stream (the same numbers as the normal fill).
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
        let e = -log(to_unit_open0(word_of(block(i >> 2u), i & 3u)));
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
