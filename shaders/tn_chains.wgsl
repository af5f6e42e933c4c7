// Metropolis–Hastings chains on an energy with MPS proposals, all chains in one recording:
// the target's energy and log-weight of a batch of configurations (`energy`), the accept step
// (`accept`), local single-spin sweeps (`local`), the observables and kept states of a recorded
// step (`record`) and the step counter (`advance`). One invocation per chain. The proposals
// and their log-probabilities come from the MPS sampler (tensornet.wgsl), keyed by ctr[0].
//
// Targets (kind): 0 = Ising, E = -sum_i s_i sum_{j in nbr(i)} J_ij s_j / 2 - sum_i h_i s_i with
// spins s = 1 - 2x, neighbours in CSR form (tgt_u = offsets[n + 1] ++ sites, tgt_f = J per
// neighbour entry ++ h per site); 1 = Fredkin, E = -(area of the Dyck path), weight zero off
// Dyck paths. log w = -beta * E. Per configuration `e` holds (E, log w, obs0, obs1): Ising
// (E/N, |m|), Fredkin (A/N, height after N/2 steps).
//
// ctr = [MH step, recorded step, 0, 0]; chains draw Philox uniforms in (0, 1] with key
// (params.key, 0): the accept test of chain c at counter (step, c, 0, 0), the local move of
// site k at (c, k, step, sweep).

struct ChainParams {
    n_sites: u32,
    chains: u32,
    kind: u32,
    key: u32,
    beta: f32,
    sweep: u32,
    slots: u32,       // recorded steps per trace buffer
    keep_every: u32,  // keep every k-th recorded state (0: none)
    n_edges: u32,     // neighbour entries (Ising)
    recorded: u32,    // advance: also count a recorded step
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> params: ChainParams;
@group(0) @binding(1) var<storage, read_write> ctr: array<u32>;
@group(0) @binding(2) var<storage, read_write> states: array<u32>;
@group(0) @binding(3) var<storage, read> prop: array<u32>;
@group(0) @binding(4) var<storage, read_write> cw: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> pw: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> lq: array<f32>;
@group(0) @binding(7) var<storage, read> plq: array<f32>;
@group(0) @binding(8) var<storage, read_write> acc: array<u32>;
@group(0) @binding(9) var<storage, read> tgt_u: array<u32>;
@group(0) @binding(10) var<storage, read> tgt_f: array<f32>;
@group(0) @binding(11) var<storage, read_write> trace: array<f32>;
@group(0) @binding(12) var<storage, read_write> kept: array<u32>;
@group(0) @binding(13) var<storage, read> x: array<u32>;
@group(0) @binding(14) var<storage, read_write> e: array<vec4<f32>>;

// Invocations (chains) per workgroup.
const LANES: u32 = 64u;
// Log-weights and log-probabilities at or below this mark weight zero.
const DEAD: f32 = -1.0e38;

fn spin(v: u32) -> f32 {
    return 1.0 - 2.0 * f32(min(v, 1u));
}

// sum_{j in nbr(k)} J_kj s_j of the chain state at `base`.
fn ising_field_states(base: u32, k: u32) -> f32 {
    var f = 0.0;
    for (var p = tgt_u[k]; p < tgt_u[k + 1u]; p = p + 1u) {
        f = f + tgt_f[p] * spin(states[base + tgt_u[params.n_sites + 1u + p]]);
    }
    return f;
}

@compute @workgroup_size(64)
fn energy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let c = group_index(wid, nwg) * LANES + lid;
    if (c >= params.chains) {
        return;
    }
    let n = params.n_sites;
    let base = c * n;
    if (params.kind == 0u) {
        var pair = 0.0;
        var hs = 0.0;
        var m = 0.0;
        for (var i = 0u; i < n; i = i + 1u) {
            let si = spin(x[base + i]);
            var f = 0.0;
            for (var p = tgt_u[i]; p < tgt_u[i + 1u]; p = p + 1u) {
                f = f + tgt_f[p] * spin(x[base + tgt_u[n + 1u + p]]);
            }
            pair = pair + si * f;
            hs = hs + tgt_f[params.n_edges + i] * si;
            m = m + si;
        }
        let en = -0.5 * pair - hs;
        e[c] = vec4<f32>(en, -params.beta * en, en / f32(n), abs(m) / f32(n));
        return;
    }
    // Fredkin: heights of the path (state 0 = up step).
    var h = 0i;
    var area = 0.0;
    var mid = 0.0;
    var dyck = true;
    for (var i = 0u; i < n; i = i + 1u) {
        h = h + select(-1i, 1i, x[base + i] == 0u);
        dyck = dyck && h >= 0i;
        area = area + f32(h);
        if (i + 1u == n / 2u) {
            mid = f32(h);
        }
    }
    dyck = dyck && h == 0i;
    var lw = DEAD * 3.0;
    if (dyck) {
        lw = params.beta * area;
    }
    e[c] = vec4<f32>(-area, lw, area / f32(n), mid);
}

@compute @workgroup_size(64)
fn accept(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let c = group_index(wid, nwg) * LANES + lid;
    if (c >= params.chains) {
        return;
    }
    let u = to_unit_open0(philox(vec4<u32>(ctr[0], c, 0u, 0u), vec2<u32>(params.key, 0u)).x);
    let wp = pw[c].y;
    let wc = cw[c].y;
    let qp = plq[c];
    let qc = lq[c];
    // log a = log w' - log w + log q - log q', with the CPU's conventions for weight zero:
    // w' = 0 rejects; q' = 0 accepts unless q = 0 too (NaN); q = 0 rejects.
    var ok = false;
    if (wp > DEAD) {
        if (qp <= DEAD) {
            ok = qc > DEAD;
        } else if (qc > DEAD) {
            ok = log(u) < (wp - wc) + qc - qp;
        }
    }
    if (ok) {
        let n = params.n_sites;
        for (var i = c * n; i < (c + 1u) * n; i = i + 1u) {
            states[i] = prop[i];
        }
        cw[c] = pw[c];
        lq[c] = qp;
        acc[c] = acc[c] + 1u;
    }
}

// One local Metropolis sweep of the Ising chains (sites in order, each proposes its flip).
@compute @workgroup_size(64)
fn local(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let c = group_index(wid, nwg) * LANES + lid;
    if (c >= params.chains) {
        return;
    }
    let n = params.n_sites;
    let base = c * n;
    let step = ctr[0];
    for (var k = 0u; k < n; k = k + 1u) {
        let sk = spin(states[base + k]);
        let f = ising_field_states(base, k) + tgt_f[params.n_edges + k];
        let delta = -2.0 * params.beta * sk * f;
        var flip = delta >= 0.0;
        if (!flip) {
            let u = to_unit_open0(philox(vec4<u32>(c, k, step, params.sweep),
                                         vec2<u32>(params.key, 0u)).x);
            flip = u < exp(delta);
        }
        if (flip) {
            states[base + k] = 1u - min(states[base + k], 1u);
        }
    }
}

// The observables of recorded step ctr[1] into slot ctr[1] % slots of the trace ([slot, chain,
// 2]); every keep_every-th recorded step also copies the states into `kept`.
@compute @workgroup_size(64)
fn record(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let c = group_index(wid, nwg) * LANES + lid;
    if (c >= params.chains) {
        return;
    }
    let slot = ctr[1] % params.slots;
    let o = (slot * params.chains + c) * 2u;
    trace[o] = cw[c].z;
    trace[o + 1u] = cw[c].w;
    let k = params.keep_every;
    if (k > 0u && (slot + 1u) % k == 0u) {
        let n = params.n_sites;
        let dst = (((slot + 1u) / k - 1u) * params.chains + c) * n;
        for (var i = 0u; i < n; i = i + 1u) {
            kept[dst + i] = states[c * n + i];
        }
    }
}

@compute @workgroup_size(1)
fn advance() {
    ctr[0] = ctr[0] + 1u;
    if (params.recorded != 0u) {
        ctr[1] = ctr[1] + 1u;
    }
}
