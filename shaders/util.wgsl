// Utility kernels: a plain vec4 copy (the bandwidth baseline every memory-bound kernel is
// measured against) and a fill.

struct UtilParams {
    n4: u32,     // number of vec4 elements
    value: f32,  // fill value
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: UtilParams;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(256)
fn copy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i < params.n4) {
        dst[i] = src[i];
    }
}

@compute @workgroup_size(256)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if (i < params.n4) {
        dst[i] = vec4<f32>(params.value);
    }
}
