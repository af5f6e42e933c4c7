// Score-difference flow: the particle-flow kernels (Gaussian perturbation from the Philox
// generator of lib/philox.wgsl, update, σ schedule), generator latents for model optimisation
// and pairwise sums for the MMD and energy-distance metrics.
//
// Points are row-major [n, d] f32. σ lives in a small state buffer (u32 words):
//   state[0] = step counter, state[1] = bitcast<u32>(σ at this step).

const T: u32 = 64u;       // samples per tile (pair sums)
const DC: u32 = 32u;      // coordinates per tile chunk

// Philox streams of the perturbation and of the latents (the step is the counter).
const STREAM_PERTURB: u32 = 1u;
const STREAM_LATENT: u32 = 2u;

// ---------------------------------------------------------------------------------------------
// Particle flow: perturb, update and σ schedule.

struct ParticleParams {
    n_el: u32,      // number of particle coordinates (n * d)
    seed: u32,
    eta: f32,
    steps: u32,     // schedule length
    sigma_max: f32,
    sigma_min: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> fparams: ParticleParams;
@group(0) @binding(1) var<storage, read_write> state: array<u32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;         // velocities
@group(0) @binding(3) var<storage, read_write> x: array<f32>;   // particles
@group(0) @binding(4) var<storage, read_write> xt: array<f32>;  // perturbed particles
@group(0) @binding(5) var<storage, read_write> z: array<f32>;   // latents

// A standard normal for (seed, stream, step, element): element e % 4 of the Box-Muller
// normals of Philox block e / 4.
fn normal(seed: u32, stream: u32, step: u32, e: u32) -> f32 {
    return normal_of(philox(vec4<u32>(e >> 2u, stream, step, 0u), vec2<u32>(seed, 0u)), e & 3u);
}

@compute @workgroup_size(256)
fn perturb(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let e = thread_index(wid, nwg, lid);
    if (e >= fparams.n_el) {
        return;
    }
    let sigma = bitcast<f32>(state[1]);
    xt[e] = x[e] + sigma * normal(fparams.seed, STREAM_PERTURB, state[0], e);
}


@compute @workgroup_size(256)
fn update(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let e = thread_index(wid, nwg, lid);
    if (e >= fparams.n_el) {
        return;
    }
    let sigma = bitcast<f32>(state[1]);
    x[e] = x[e] + fparams.eta * sigma * sigma * v[e];
}

fn schedule(step: u32) -> f32 {
    if (fparams.steps <= 1u) {
        return fparams.sigma_max;
    }
    let t = f32(min(step, fparams.steps - 1u)) / f32(fparams.steps - 1u);
    return fparams.sigma_max * pow(fparams.sigma_min / fparams.sigma_max, t);
}

@compute @workgroup_size(1)
fn advance() {
    let s = state[0] + 1u;
    state[0] = s;
    state[1] = bitcast<u32>(schedule(s));
}

// ---------------------------------------------------------------------------------------------
// Generator latents for model optimisation: z = N(0, I) from (seed, step, element), with the
// step read from the flow's state buffer, so a replayed recording draws fresh latents each step.

struct LatentParams {
    n_el: u32,
    seed: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> lparams: LatentParams;

@compute @workgroup_size(256)
fn latent(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let e = thread_index(wid, nwg, lid);
    if (e >= lparams.n_el) {
        return;
    }
    z[e] = normal(lparams.seed, STREAM_LATENT, state[0], e);
}
// ---------------------------------------------------------------------------------------------
// Pairwise sums for metrics: out[i] = Σ_j f(‖a_i − b_j‖), f = exp(−r²/2h²) (kind 0) or r
// (kind 1); `same` = 1 skips j = i (a and b are the same set).

struct PairParams {
    n_a: u32,
    n_b: u32,
    d: u32,
    kind: u32,
    same: u32,
    n_wg: u32,
    inv_2h2: f32,
    accumulate: u32, // 1: add to out, 0: overwrite
    b_begin: u32,    // this dispatch sums over b rows [b_begin, b_end)
    b_end: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> pparams: PairParams;
@group(0) @binding(6) var<storage, read> a: array<f32>;
@group(0) @binding(7) var<storage, read> b: array<f32>;
@group(0) @binding(8) var<storage, read_write> sums: array<f32>;

var<workgroup> mtile: array<f32, 2048>; // T * DC

@compute @workgroup_size(64)
fn pair_sums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let wg = group_index(wid, nwg);
    if (wg >= pparams.n_wg) {
        return;
    }
    let i = wg * 64u + lid;
    let valid = i < pparams.n_a;
    let d = pparams.d;
    let nch = (d + DC - 1u) / DC;
    let b_end = pparams.b_end;
    var r2: array<f32, 64>;
    var total = 0.0;
    for (var base = pparams.b_begin; base < b_end; base += T) {
        for (var t = 0u; t < T; t++) {
            r2[t] = 0.0;
        }
        for (var c = 0u; c < nch; c++) {
            let c0 = c * DC;
            workgroupBarrier();
            for (var e = lid; e < T * DC; e += 64u) {
                let j = base + e / DC;
                let k = c0 + e % DC;
                var v = 0.0;
                if (j < b_end && k < d) {
                    v = b[j * d + k];
                }
                mtile[e] = v;
            }
            workgroupBarrier();
            if (valid) {
                let kc = min(DC, d - c0);
                for (var k = 0u; k < kc; k++) {
                    let ak = a[i * d + c0 + k];
                    for (var t = 0u; t < T; t++) {
                        let df = ak - mtile[t * DC + k];
                        r2[t] += df * df;
                    }
                }
            }
        }
        var part = 0.0;
        for (var t = 0u; t < T; t++) {
            let j = base + t;
            if (j < b_end && !(pparams.same == 1u && j == i)) {
                if (pparams.kind == 0u) {
                    part += exp(-r2[t] * pparams.inv_2h2);
                } else {
                    part += sqrt(r2[t]);
                }
            }
        }
        total += part;
    }
    if (valid) {
        var prev = 0.0;
        if (pparams.accumulate == 1u) {
            prev = sums[i];
        }
        sums[i] = prev + total;
    }
}

