// Workgroup sum of one f32 per invocation by a fixed binary tree (deterministic order). Every
// invocation of a WG-wide workgroup must call it from uniform control flow; all get the sum.

var<workgroup> tree: array<f32, WG>;

fn tree_sum(lid: u32, v: f32) -> f32 {
    tree[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (lid < s) {
            tree[lid] = tree[lid] + tree[lid + s];
        }
        workgroupBarrier();
    }
    let total = tree[0];
    workgroupBarrier();
    return total;
}
