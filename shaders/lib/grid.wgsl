// The launch grid (gpu::Work). Large launches fold their workgroups into x and y, so the linear
// workgroup index is wid.x + wid.y * nwg.x; kernels return early past the end of their work.

// Invocations per workgroup of most kernels (gpu::WG on the host).
const WG: u32 = 256u;

// Linear index of this workgroup.
fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// Linear index of this invocation in a launch of WG-wide workgroups.
fn thread_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return group_index(wid, nwg) * WG + lid;
}
