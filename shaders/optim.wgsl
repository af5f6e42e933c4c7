// Optimizer kernels over all parameters stored contiguously.
//   grad_sumsq: partial sums of g² per workgroup (grid-stride).
//   grad_norm:  one workgroup: the global norm, the clip factor min(1, max_norm / (norm + 1e-6))
//               and the step count + 1.
//   adam:       updates p, m, v (Adam or AdamW) with the clipped gradient and bias correction
//               from the step count on the GPU (grid-stride).
// The settings are a uniform the host rewrites when the learning rate changes, so a recorded
// step replays with new settings.

struct OptimParams {
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

@group(0) @binding(1) var<uniform> cfg: OptimParams;
@group(0) @binding(2) var<storage, read> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;
@group(0) @binding(4) var<storage, read_write> step: array<u32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>; // norm, clip factor
@group(0) @binding(6) var<storage, read_write> params: array<f32>;
@group(0) @binding(7) var<storage, read_write> m: array<f32>;
@group(0) @binding(8) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(256)
fn grad_sumsq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    var acc = 0.0;
    let stride = nwg.x * WG;
    for (var i = wid.x * WG + lid; i < cfg.n; i = i + stride) {
        let g = grads[i];
        acc = acc + g * g;
    }
    let total = tree_sum(lid, acc);
    if (lid == 0u) {
        partial[wid.x] = total;
    }
}

@compute @workgroup_size(256)
fn grad_norm(@builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    if (lid < cfg.n_partials) {
        s = partial[lid];
    }
    let norm = sqrt(tree_sum(lid, s));
    if (lid == 0u) {
        var scale = 1.0;
        if (cfg.clip == 1u) {
            scale = min(1.0, cfg.max_norm / (norm + 1e-6));
        }
        stats[0] = norm;
        stats[1] = scale;
        step[0] = step[0] + 1u;
    }
}

@compute @workgroup_size(256)
fn adam(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let scale = stats[1];
    let t = f32(step[0]);
    let bc1 = 1.0 - pow(cfg.beta1, t);
    let bc2 = 1.0 - pow(cfg.beta2, t);
    let stride = nwg.x * nwg.y * WG;
    for (var i = thread_index(wid, nwg, lid); i < cfg.n; i = i + stride) {
        var pi = params[i];
        var gi = grads[i] * scale;
        if (cfg.decoupled == 1u) {
            pi = pi * (1.0 - cfg.lr * cfg.wd);
        } else {
            gi = gi + cfg.wd * pi;
        }
        let mi = cfg.beta1 * m[i] + (1.0 - cfg.beta1) * gi;
        let vi = cfg.beta2 * v[i] + (1.0 - cfg.beta2) * gi * gi;
        pi = pi - cfg.lr * (mi / bc1) / (sqrt(vi / bc2) + cfg.eps);
        params[i] = pi;
        m[i] = mi;
        v[i] = vi;
    }
}
