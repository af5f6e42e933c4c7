// Optimizer kernels over all parameters stored contiguously.
//   grad_sumsq: partial sums of g² per workgroup (grid-stride).
//   grad_norm:  one workgroup: the global norm, the clip factor min(1, max_norm / (norm + 1e-6))
//               and the step count + 1.
//   adam:       updates p, m, v (Adam or AdamW) with the clipped gradient and bias correction
//               from the step count on the GPU (grid-stride).

struct Params {
    n: u32,
    n_partials: u32,
    decoupled: u32,   // 1: AdamW (p *= 1 - lr wd), 0: Adam with L2 (g += wd p)
    clip: u32,        // 1: clip to max_norm
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    wd: f32,
    max_norm: f32,
    _pad0: u32,
    _pad1: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;

var<workgroup> red: array<f32, 256>;

fn tree_sum(lid: u32) -> f32 {
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (lid < s) {
            red[lid] = red[lid] + red[lid + s];
        }
        workgroupBarrier();
    }
    return red[0];
}

@group(0) @binding(1) var<storage, read> sq_grads: array<f32>;
@group(0) @binding(2) var<storage, read_write> sq_partial: array<f32>;

@compute @workgroup_size(256)
fn grad_sumsq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    var acc = 0.0;
    let stride = nwg.x * WG;
    for (var i = wid.x * WG + lid; i < params.n; i = i + stride) {
        let g = sq_grads[i];
        acc = acc + g * g;
    }
    red[lid] = acc;
    let total = tree_sum(lid);
    if (lid == 0u) {
        sq_partial[wid.x] = total;
    }
}

@group(0) @binding(1) var<storage, read> gn_partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> gn_step: array<u32>;
@group(0) @binding(3) var<storage, read_write> gn_stats: array<f32>;

// stats[0] = norm, stats[1] = clip factor.
@compute @workgroup_size(256)
fn grad_norm(@builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    if (lid < params.n_partials) {
        s = gn_partial[lid];
    }
    red[lid] = s;
    let norm = sqrt(tree_sum(lid));
    if (lid == 0u) {
        var scale = 1.0;
        if (params.clip == 1u) {
            scale = min(1.0, params.max_norm / (norm + 1e-6));
        }
        gn_stats[0] = norm;
        gn_stats[1] = scale;
        gn_step[0] = gn_step[0] + 1u;
    }
}

@group(0) @binding(1) var<storage, read_write> p: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read> stats: array<f32>;
@group(0) @binding(6) var<storage, read> step_count: array<u32>;

@compute @workgroup_size(256)
fn adam(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let scale = stats[1];
    let t = f32(step_count[0]);
    let bc1 = 1.0 - pow(params.beta1, t);
    let bc2 = 1.0 - pow(params.beta2, t);
    let stride = nwg.x * nwg.y * WG;
    for (var i = (wid.x + wid.y * nwg.x) * WG + lid; i < params.n; i = i + stride) {
        var pi = p[i];
        var gi = g[i] * scale;
        if (params.decoupled == 1u) {
            pi = pi * (1.0 - params.lr * params.wd);
        } else {
            gi = gi + params.wd * pi;
        }
        let mi = params.beta1 * m[i] + (1.0 - params.beta1) * gi;
        let vi = params.beta2 * v[i] + (1.0 - params.beta2) * gi * gi;
        pi = pi - params.lr * (mi / bc1) / (sqrt(vi / bc2) + params.eps);
        p[i] = pi;
        m[i] = mi;
        v[i] = vi;
    }
}
