// Softmax cross-entropy over groups of k consecutive columns (one categorical per group):
// loss = s * sum_groups sum_c t_c (lse(z) - z_c), with lse the group's log-sum-exp. One
// invocation per group; f32 throughout.

struct XentParams {
    groups: u32,   // rows * (cols / k)
    k: u32,        // columns of a group
    mode: u32,     // xent_grad: 0 the gradient for the logits, 1 for the targets
    acc: u32,      // 1: add into out
    s: f32,        // scale (1 / groups for the mean)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: XentParams;
@group(0) @binding(1) var<storage, read> z: array<f32>;        // logits
@group(0) @binding(2) var<storage, read> tg: array<f32>;       // targets (non-negative)
@group(0) @binding(3) var<storage, read> g: array<f32>;        // the loss gradient (one value)
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// The largest logit and log-sum-exp of the group starting at `base`.
fn group_lse(base: u32) -> f32 {
    var m = z[base];
    for (var c = 1u; c < p.k; c++) {
        m = max(m, z[base + c]);
    }
    var s = 0.0;
    for (var c = 0u; c < p.k; c++) {
        s += exp(z[base + c] - m);
    }
    return m + log(s);
}

// out[group] = sum_c t_c (lse - z_c) (unscaled; a tree sum scales and adds them up).
@compute @workgroup_size(256)
fn xent_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let grp = thread_index(wid, nwg, lid);
    if (grp >= p.groups) { return; }
    let base = grp * p.k;
    let lse = group_lse(base);
    var l = 0.0;
    for (var c = 0u; c < p.k; c++) {
        l += tg[base + c] * (lse - z[base + c]);
    }
    out[grp] = l;
}

// mode 0: out (+)= s g (softmax(z)_c sum_j t_j - t_c); mode 1: out (+)= s g (lse - z_c).
@compute @workgroup_size(256)
fn xent_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let grp = thread_index(wid, nwg, lid);
    if (grp >= p.groups) { return; }
    let base = grp * p.k;
    let lse = group_lse(base);
    var mass = 0.0;
    for (var c = 0u; c < p.k; c++) {
        mass += tg[base + c];
    }
    let sg = p.s * g[0];
    for (var c = 0u; c < p.k; c++) {
        let i = base + c;
        var v = sg * (lse - z[i]);
        if (p.mode == 0u) {
            v = sg * (exp(z[i] - lse) * mass - tg[i]);
        }
        if (p.acc == 1u) {
            out[i] = out[i] + v;
        } else {
            out[i] = v;
        }
    }
}
