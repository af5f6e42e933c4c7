//! Riemannian minibatch optimal transport between prior and data batches on (S^{K-1}_+)^L.
//!
//! Cost `C_ij = Σ_l arccos²⟨x0_i,l, x1_j,l⟩` (squared geodesic distance on the product of
//! spheres; inputs are `[B, L, K]` row-major). Couplings: the exact assignment
//! ([`hungarian`], shortest augmenting paths with potentials, O(n²m)) or entropic OT by
//! log-domain Sinkhorn with uniform marginals (`ε` in cost units, default 0.05), on the CPU
//! ([`sinkhorn`]) and the GPU ([`GpuSinkhorn`]); pairs are drawn from the plan row by row
//! ([`sample_pairs`], [`GpuSinkhorn::sample`]).

use crate::error::{Error, Result};
use crate::gpu::{lib, u32_of, GpuContext, GpuTensor, KernelDef, Recorder, ShaderDef, Work};

/// `shaders/ot.wgsl`.
pub static SHADER: ShaderDef =
    ShaderDef::new("ot", &[lib::GRID, include_str!("../../shaders/ot.wgsl")])
        .slots(&["x0", "x1", "cost", "f", "g", "u", "plan_out", "picks"]);

/// The geodesic cost matrix.
pub static COST_MATRIX: KernelDef =
    KernelDef::new(&SHADER, "cost_matrix", &["x0", "x1", "cost"]).params::<OtParams>();
/// Half a Sinkhorn iteration (rows or columns).
pub static POTENTIAL: KernelDef =
    KernelDef::new(&SHADER, "potential", &["cost", "f", "g"]).params::<OtParams>();
/// The dense plan.
pub static PLAN: KernelDef =
    KernelDef::new(&SHADER, "plan", &["cost", "f", "g", "plan_out"]).params::<OtParams>();
/// Pair draws from the plan's rows.
pub static SAMPLE: KernelDef = KernelDef::new(&SHADER, "sample", &["cost", "g", "u", "picks"])
    .params::<OtParams>()
    .workgroup(64);

/// Every kernel of the family.
pub fn kernels() -> Vec<&'static KernelDef> {
    vec![&COST_MATRIX, &POTENTIAL, &PLAN, &SAMPLE]
}

/// Default entropic regularisation ε of Sinkhorn.
pub const DEFAULT_EPS: f64 = 0.05;

/// Cost matrix `[n, m]` (f64) between `x0` `[n, L, K]` and `x1` `[m, L, K]`.
pub fn cost_matrix(
    x0: &[f32],
    x1: &[f32],
    n: usize,
    m: usize,
    l: usize,
    k: usize,
) -> Result<Vec<f64>> {
    let lk = l * k;
    if n == 0 || m == 0 || lk == 0 {
        return Err(Error::Shape(format!(
            "OT cost needs non-empty batches: n={n}, m={m}, L={l}, K={k}"
        )));
    }
    if x0.len() != n * lk || x1.len() != m * lk {
        return Err(Error::Shape(format!(
            "OT cost: x0 has {} values (expected {n}×{l}×{k}), x1 has {} (expected {m}×{l}×{k})",
            x0.len(),
            x1.len()
        )));
    }
    let mut c = vec![0.0f64; n * m];
    for i in 0..n {
        for j in 0..m {
            let mut s = 0.0;
            for p in 0..l {
                let a = &x0[i * lk + p * k..i * lk + (p + 1) * k];
                let b = &x1[j * lk + p * k..j * lk + (p + 1) * k];
                let d: f64 = a.iter().zip(b).map(|(&u, &v)| u as f64 * v as f64).sum();
                let th = d.clamp(-1.0, 1.0).acos();
                s += th * th;
            }
            c[i * m + j] = s;
        }
    }
    Ok(c)
}

fn check_cost(cost: &[f64], n: usize, m: usize) -> Result<()> {
    if n == 0 || m == 0 || cost.len() != n * m {
        return Err(Error::Shape(format!(
            "cost matrix of {} values is not {n} × {m}",
            cost.len()
        )));
    }
    if let Some(p) = cost.iter().position(|c| !c.is_finite()) {
        return Err(Error::NonFinite(format!(
            "cost[{}, {}] = {}",
            p / m,
            p % m,
            cost[p]
        )));
    }
    Ok(())
}

/// Exact minimum-cost assignment of the `n` rows to distinct columns of an `n × m` cost matrix
/// (`n <= m`); returns `col[i]` for every row. Shortest augmenting paths with dual potentials
/// (Hungarian / Jonker–Volgenant style), O(n²m).
pub fn hungarian(cost: &[f64], n: usize, m: usize) -> Result<Vec<usize>> {
    check_cost(cost, n, m)?;
    if n > m {
        return Err(Error::Shape(format!(
            "assignment needs rows <= columns, got {n} × {m}"
        )));
    }
    // 1-based rows/columns; column 0 is the virtual start of each augmenting path.
    let mut u = vec![0.0f64; n + 1];
    let mut v = vec![0.0f64; m + 1];
    let mut row_of = vec![0usize; m + 1];
    let mut way = vec![0usize; m + 1];
    let mut minv = vec![0.0f64; m + 1];
    let mut used = vec![false; m + 1];
    for i in 1..=n {
        row_of[0] = i;
        let mut j0 = 0usize;
        minv.iter_mut().for_each(|x| *x = f64::INFINITY);
        used.iter_mut().for_each(|x| *x = false);
        loop {
            used[j0] = true;
            let i0 = row_of[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0usize;
            let crow = &cost[(i0 - 1) * m..i0 * m];
            for j in 1..=m {
                if !used[j] {
                    let cur = crow[j - 1] - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            if j1 == 0 {
                return Err(Error::NonFinite("assignment: no augmenting path".into()));
            }
            for j in 0..=m {
                if used[j] {
                    u[row_of[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if row_of[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            row_of[j0] = row_of[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut col = vec![0usize; n];
    for j in 1..=m {
        if row_of[j] != 0 {
            col[row_of[j] - 1] = j - 1;
        }
    }
    Ok(col)
}

/// Total cost `Σ_i C[i, col[i]]` of an assignment.
pub fn assignment_cost(cost: &[f64], m: usize, col: &[usize]) -> f64 {
    col.iter().enumerate().map(|(i, &j)| cost[i * m + j]).sum()
}

/// Sinkhorn settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SinkhornOptions {
    /// Entropic regularisation ε (in cost units), > 0.
    pub eps: f64,
    /// Number of (row, column) update pairs.
    pub iters: usize,
}

impl Default for SinkhornOptions {
    fn default() -> Self {
        Self {
            eps: DEFAULT_EPS,
            iters: 100,
        }
    }
}

/// Dual potentials of a Sinkhorn solve; the plan is `P_ij = exp((f_i + g_j − C_ij)/ε)`.
#[derive(Clone, Debug, PartialEq)]
pub struct SinkhornResult {
    /// Row potentials (n).
    pub f: Vec<f64>,
    /// Column potentials (m).
    pub g: Vec<f64>,
    /// The ε used.
    pub eps: f64,
}

impl SinkhornResult {
    /// The dense plan `[n, m]` for `cost` (rows sum to ≈ 1/n, columns to 1/m).
    pub fn plan(&self, cost: &[f64]) -> Vec<f64> {
        let m = self.g.len();
        cost.iter()
            .enumerate()
            .map(|(p, &c)| ((self.f[p / m] + self.g[p % m] - c) / self.eps).exp())
            .collect()
    }
}

fn lse(it: impl Iterator<Item = f64> + Clone) -> f64 {
    let mx = it.clone().fold(f64::NEG_INFINITY, f64::max);
    if mx == f64::NEG_INFINITY {
        return mx;
    }
    mx + it.map(|v| (v - mx).exp()).sum::<f64>().ln()
}

/// Log-domain Sinkhorn with uniform marginals `a = 1/n`, `b = 1/m` (CPU reference of
/// [`GpuSinkhorn`]): each iteration sets `f_i = ε log a − ε LSE_j((g_j − C_ij)/ε)` then
/// `g_j = ε log b − ε LSE_i((f_i − C_ij)/ε)`, starting from zero potentials.
pub fn sinkhorn(
    cost: &[f64],
    n: usize,
    m: usize,
    opts: &SinkhornOptions,
) -> Result<SinkhornResult> {
    check_cost(cost, n, m)?;
    if !(opts.eps > 0.0 && opts.eps.is_finite()) {
        return Err(Error::InvalidArgument(format!(
            "Sinkhorn ε must be positive and finite, got {}",
            opts.eps
        )));
    }
    let eps = opts.eps;
    let (la, lb) = (-(n as f64).ln(), -(m as f64).ln());
    let mut f = vec![0.0; n];
    let mut g = vec![0.0; m];
    for _ in 0..opts.iters {
        for i in 0..n {
            let row = &cost[i * m..(i + 1) * m];
            f[i] = eps * (la - lse(row.iter().zip(&g).map(|(&c, &gj)| (gj - c) / eps)));
        }
        for j in 0..m {
            let fr = &f;
            g[j] = eps * (lb - lse((0..n).map(|i| (fr[i] - cost[i * m + j]) / eps)));
        }
    }
    Ok(SinkhornResult { f, g, eps })
}

/// Largest deviation of a plan's row sums from `1/n` and column sums from `1/m`.
pub fn marginal_error(plan: &[f64], n: usize, m: usize) -> f64 {
    let mut err: f64 = 0.0;
    for i in 0..n {
        let s: f64 = plan[i * m..(i + 1) * m].iter().sum();
        err = err.max((s - 1.0 / n as f64).abs());
    }
    for j in 0..m {
        let s: f64 = (0..n).map(|i| plan[i * m + j]).sum();
        err = err.max((s - 1.0 / m as f64).abs());
    }
    err
}

/// For each row `i` of a non-negative `[n, m]` weight matrix (a plan, not necessarily
/// normalised) draw `j` with probability proportional to `w[i, j]` by inverse CDF with the
/// uniform `u[i] ∈ [0, 1)` (the first `j` whose running sum exceeds `u_i · Σ_j w_ij`).
pub fn sample_pairs(weights: &[f64], n: usize, m: usize, u: &[f32]) -> Result<Vec<u32>> {
    if n == 0 || m == 0 || weights.len() != n * m || u.len() != n {
        return Err(Error::Shape(format!(
            "sampling pairs: {} weights for {n} × {m}, {} uniforms",
            weights.len(),
            u.len()
        )));
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let row = &weights[i * m..(i + 1) * m];
        if row.iter().any(|w| !(w.is_finite() && *w >= 0.0)) {
            return Err(Error::NonFinite(format!(
                "plan row {i} has a negative or non-finite weight"
            )));
        }
        let total: f64 = row.iter().sum();
        if total <= 0.0 {
            return Err(Error::NonFinite(format!("plan row {i} has no mass")));
        }
        let target = u[i] as f64 * total;
        let mut acc = 0.0;
        let mut pick = m - 1;
        for (j, &w) in row.iter().enumerate() {
            acc += w;
            if acc > target {
                pick = j;
                break;
            }
        }
        out.push(pick as u32);
    }
    Ok(out)
}

crate::gpu_params! {
    /// Parameters of the OT kernels.
    pub struct OtParams {
        /// Rows (the x0 batch).
        pub n: u32,
        /// Columns (the x1 batch).
        pub m: u32,
        /// Positions.
        pub l: u32,
        /// Categories.
        pub k: u32,
        /// Entropic regularisation.
        pub eps: f32,
        /// `log(1/n)`.
        pub log_a: f32,
        /// `log(1/m)`.
        pub log_b: f32,
        /// Potential update: 0 rows (f), 1 columns (g).
        pub axis: u32,
    }
}

fn check_binding(ctx: &GpuContext, bytes: u64, what: &str) -> Result<()> {
    let max = ctx.max_binding();
    if bytes > max {
        return Err(Error::Limit(format!(
            "{what} of {bytes} bytes exceeds the storage binding limit of {max} bytes"
        )));
    }
    Ok(())
}

/// Record the cost matrix `cost [n, m] ← C(x0 [n, L, K], x1 [m, L, K])` on the GPU.
pub fn cost_matrix_gpu(
    ctx: &GpuContext,
    rec: &mut Recorder,
    x0: &GpuTensor<f32>,
    x1: &GpuTensor<f32>,
    cost: &GpuTensor<f32>,
) -> Result<()> {
    let (s0, s1) = (x0.shape(), x1.shape());
    if s0.len() != 3 || s1.len() != 3 || s0[1..] != s1[1..] {
        return Err(Error::Shape(format!(
            "OT cost needs x0 [n, L, K] and x1 [m, L, K]; got {s0:?} and {s1:?}"
        )));
    }
    let (n, m, l, k) = (s0[0], s1[0], s0[1], s0[2]);
    if cost.shape() != [n, m] {
        return Err(Error::Shape(format!(
            "OT cost output must be [{n}, {m}], got {:?}",
            cost.shape()
        )));
    }
    for (t, w) in [(x0, "x0"), (x1, "x1"), (cost, "cost matrix")] {
        check_binding(ctx, t.bytes(), w)?;
    }
    let nm = u32_of(n * m, "OT batch pairs")?;
    let p = OtParams {
        n: n as u32,
        m: m as u32,
        l: l as u32,
        k: k as u32,
        ..Default::default()
    };
    let args = [x0.into(), x1.into(), cost.into()];
    COST_MATRIX.launch(ctx, rec, Work::Threads(nm as u64), &args, |_| p)
}

/// GPU log-domain Sinkhorn on an `[n, m]` f32 cost matrix: owns the potentials `f [n]`, `g [m]`
/// and records iterations, the dense plan and pair sampling. Build the recording once per batch
/// size and replay it every step (the cost tensor is read when the recording runs).
#[derive(Debug)]
pub struct GpuSinkhorn {
    n: usize,
    m: usize,
    eps: f64,
    params: OtParams,
    /// Row potentials `[n]`.
    pub f: GpuTensor<f32>,
    /// Column potentials `[m]`.
    pub g: GpuTensor<f32>,
}

impl GpuSinkhorn {
    /// Potentials for an `n × m` problem with regularisation `eps`.
    pub fn new(ctx: &GpuContext, n: usize, m: usize, eps: f64) -> Result<Self> {
        if n == 0 || m == 0 {
            return Err(Error::Shape(format!(
                "Sinkhorn on an empty {n} × {m} problem"
            )));
        }
        if !(eps > 0.0 && eps.is_finite()) {
            return Err(Error::InvalidArgument(format!(
                "Sinkhorn ε must be positive and finite, got {eps}"
            )));
        }
        let (n32, m32) = (u32_of(n, "Sinkhorn rows")?, u32_of(m, "Sinkhorn columns")?);
        n32.checked_mul(m32)
            .ok_or_else(|| Error::Limit(format!("Sinkhorn problem {n} × {m} too large")))?;
        check_binding(ctx, (n * m * 4) as u64, "Sinkhorn cost matrix")?;
        let params = OtParams {
            n: n32,
            m: m32,
            eps: eps as f32,
            log_a: -(n as f32).ln(),
            log_b: -(m as f32).ln(),
            ..Default::default()
        };
        Ok(Self {
            n,
            m,
            eps,
            params,
            f: GpuTensor::zeros(ctx, &[n])?,
            g: GpuTensor::zeros(ctx, &[m])?,
        })
    }

    /// The regularisation ε.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    fn check_cost(&self, cost: &GpuTensor<f32>) -> Result<()> {
        if cost.shape() != [self.n, self.m] {
            return Err(Error::Shape(format!(
                "Sinkhorn set up for [{}, {}] but the cost is {:?}",
                self.n,
                self.m,
                cost.shape()
            )));
        }
        Ok(())
    }

    /// Record: zero the potentials, then `iters` row/column updates.
    pub fn solve(
        &self,
        ctx: &GpuContext,
        rec: &mut Recorder,
        cost: &GpuTensor<f32>,
        iters: usize,
    ) -> Result<()> {
        self.check_cost(cost)?;
        let mut iteration = Recorder::new();
        for (axis, count) in [(0, self.n), (1, self.m)] {
            let p = OtParams {
                axis,
                ..self.params
            };
            let args = [cost.into(), (&self.f).into(), (&self.g).into()];
            POTENTIAL.launch(
                ctx,
                &mut iteration,
                Work::Groups(count as u64),
                &args,
                |_| p,
            )?;
        }
        rec.clear(self.f.buffer(), 0, None);
        rec.clear(self.g.buffer(), 0, None);
        for _ in 0..iters {
            rec.extend(&iteration);
        }
        Ok(())
    }

    /// Record `plan [n, m] ← exp((f_i + g_j − C_ij)/ε)`.
    pub fn plan(
        &self,
        ctx: &GpuContext,
        rec: &mut Recorder,
        cost: &GpuTensor<f32>,
        plan: &GpuTensor<f32>,
    ) -> Result<()> {
        self.check_cost(cost)?;
        if plan.shape() != [self.n, self.m] {
            return Err(Error::Shape(format!(
                "plan must be [{}, {}], got {:?}",
                self.n,
                self.m,
                plan.shape()
            )));
        }
        let args = [cost.into(), (&self.f).into(), (&self.g).into(), plan.into()];
        let work = Work::Threads((self.n * self.m) as u64);
        PLAN.launch(ctx, rec, work, &args, |_| self.params)
    }

    /// Record: for each row `i`, `picks[i] ← j ~ P[i, :]` by inverse CDF with `u[i] ∈ [0, 1)`
    /// (fill `u` with [`crate::kernels::rng::uniform`]). Uses the current potentials.
    pub fn sample(
        &self,
        ctx: &GpuContext,
        rec: &mut Recorder,
        cost: &GpuTensor<f32>,
        u: &GpuTensor<f32>,
        picks: &GpuTensor<u32>,
    ) -> Result<()> {
        self.check_cost(cost)?;
        if u.len() != self.n || picks.len() != self.n {
            return Err(Error::Shape(format!(
                "sampling {} rows needs u and picks of length {}; got {:?} and {:?}",
                self.n,
                self.n,
                u.shape(),
                picks.shape()
            )));
        }
        let args = [cost.into(), (&self.g).into(), u.into(), picks.into()];
        SAMPLE.launch(ctx, rec, Work::Threads(self.n as u64), &args, |_| {
            self.params
        })
    }
}
