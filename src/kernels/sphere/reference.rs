//! The f64 CPU reference of every sphere kernel. Slices hold `rows × k` values, row-major.

/// Below this tangent norm `exp_map` returns `normalise(x + u)` (as on the GPU).
pub const EXP_TINY: f64 = 1e-6;

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// `θ = 2·atan2(‖y−x‖, ‖y+x‖)`, equal to `arccos(clamp(⟨x,y⟩, −1, 1))` for unit vectors.
pub fn angle(x: &[f64], y: &[f64]) -> f64 {
    let (mut d2, mut s2) = (0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        d2 += (b - a) * (b - a);
        s2 += (b + a) * (b + a);
    }
    2.0 * d2.sqrt().atan2(s2.sqrt())
}

/// `arccos(clamp(⟨x,y⟩, −1, 1))`, the textbook form of [`angle`].
pub fn angle_acos(x: &[f64], y: &[f64]) -> f64 {
    dot(x, y).clamp(-1.0, 1.0).acos()
}

/// `√max(p, 0)` element-wise.
pub fn to_sphere(p: &[f64]) -> Vec<f64> {
    p.iter().map(|v| v.max(0.0).sqrt()).collect()
}

/// `x²` element-wise.
pub fn to_simplex(x: &[f64]) -> Vec<f64> {
    x.iter().map(|v| v * v).collect()
}

/// `exp_x(u)` of one row.
pub fn exp_row(x: &[f64], u: &[f64]) -> Vec<f64> {
    let n = norm(u);
    if n < EXP_TINY {
        let s: Vec<f64> = x.iter().zip(u).map(|(a, b)| a + b).collect();
        let m = norm(&s);
        return s.iter().map(|v| v / m).collect();
    }
    let (c, s) = (n.cos(), n.sin() / n);
    x.iter().zip(u).map(|(a, b)| c * a + s * b).collect()
}

/// `log_x(y)` of one row; zero when `θ < 1e-12`.
pub fn log_row(x: &[f64], y: &[f64]) -> Vec<f64> {
    let theta = angle(x, y);
    let c = dot(x, y);
    let w: Vec<f64> = y.iter().zip(x).map(|(b, a)| b - c * a).collect();
    let m = norm(&w);
    if theta < 1e-12 || m == 0.0 {
        return vec![0.0; x.len()];
    }
    w.iter().map(|v| theta * v / m).collect()
}

fn rowwise(a: &[f64], b: &[f64], k: usize, f: impl Fn(&[f64], &[f64]) -> Vec<f64>) -> Vec<f64> {
    assert_eq!(a.len(), b.len());
    a.chunks(k)
        .zip(b.chunks(k))
        .flat_map(|(x, y)| f(x, y))
        .collect()
}

/// `exp_x(u)` per row.
pub fn exp_map(x: &[f64], u: &[f64], k: usize) -> Vec<f64> {
    rowwise(x, u, k, exp_row)
}

/// `log_x(y)` per row.
pub fn log_map(x: &[f64], y: &[f64], k: usize) -> Vec<f64> {
    rowwise(x, y, k, log_row)
}

/// `v − ⟨x,v⟩x` per row.
pub fn proj_tangent(x: &[f64], v: &[f64], k: usize) -> Vec<f64> {
    rowwise(x, v, k, |x, v| {
        let c = dot(x, v);
        v.iter().zip(x).map(|(b, a)| b - c * a).collect()
    })
}

/// `d(x, y)` per row.
pub fn geodesic_distance(x: &[f64], y: &[f64], k: usize) -> Vec<f64> {
    x.chunks(k)
        .zip(y.chunks(k))
        .map(|(a, b)| angle(a, b))
        .collect()
}

/// `x_t = exp_{x0}(t·log_{x0}(x1))` of one row.
pub fn slerp_row(x0: &[f64], x1: &[f64], t: f64) -> Vec<f64> {
    let l = log_row(x0, x1);
    let u: Vec<f64> = l.iter().map(|v| t * v).collect();
    exp_row(x0, &u)
}

/// `(x_t, u_t)` of one row in closed form:
/// `x_t = (sin((1−t)θ) x0 + sin(tθ) x1)/sinθ`, `u_t = θ/sinθ (cos(tθ) x1 − cos((1−t)θ) x0)`,
/// with the θ → 0 limits `(1−t) x0 + t x1` and `x1 − x0`.
pub fn interpolant_row(x0: &[f64], x1: &[f64], t: f64) -> (Vec<f64>, Vec<f64>) {
    let (a0, a1, c0, c1) = interpolant_coefficients(angle(x0, x1), t);
    let xt = x0.iter().zip(x1).map(|(a, b)| a0 * a + a1 * b).collect();
    let ut = x0.iter().zip(x1).map(|(a, b)| c0 * a + c1 * b).collect();
    (xt, ut)
}

/// `(a0, a1, c0, c1)` with `x_t = a0 x0 + a1 x1` and `u_t = c0 x0 + c1 x1` for the angle `th`
/// between `x0` and `x1` (see [`interpolant_row`]).
pub fn interpolant_coefficients(th: f64, t: f64) -> (f64, f64, f64, f64) {
    if th < 1e-9 {
        (1.0 - t, t, -1.0, 1.0)
    } else {
        let s = th.sin();
        (
            ((1.0 - t) * th).sin() / s,
            (t * th).sin() / s,
            -th / s * ((1.0 - t) * th).cos(),
            th / s * (t * th).cos(),
        )
    }
}

/// `u_t = log_{x_t}(x1)/(1−t)` of one row, the definition of the target (`t < 1`).
pub fn target_by_log_row(x0: &[f64], x1: &[f64], t: f64) -> Vec<f64> {
    let xt = slerp_row(x0, x1, t);
    log_row(&xt, x1).iter().map(|v| v / (1.0 - t)).collect()
}

/// `x_t` per row of `[B, L, K]` data, `t` per batch element.
pub fn slerp(x0: &[f64], x1: &[f64], t: &[f64], l: usize, k: usize) -> Vec<f64> {
    interpolant_target(x0, x1, t, l, k).0
}

/// `(x_t, u_t)` per row of `[B, L, K]` data, `t` per batch element (closed form).
pub fn interpolant_target(
    x0: &[f64],
    x1: &[f64],
    t: &[f64],
    l: usize,
    k: usize,
) -> (Vec<f64>, Vec<f64>) {
    let mut xt = Vec::with_capacity(x0.len());
    let mut ut = Vec::with_capacity(x0.len());
    for (r, (a, b)) in x0.chunks(k).zip(x1.chunks(k)).enumerate() {
        let (p, q) = interpolant_row(a, b, t[r / l]);
        xt.extend(p);
        ut.extend(q);
    }
    (xt, ut)
}

/// The tangent Euler step of one row: `|exp_x(dt·proj_x(v))|`, renormalised.
pub fn euler_row(x: &[f64], v: &[f64], dt: f64) -> Vec<f64> {
    let c = dot(x, v);
    let u: Vec<f64> = v.iter().zip(x).map(|(b, a)| dt * (b - c * a)).collect();
    let y: Vec<f64> = exp_row(x, &u).iter().map(|v| v.abs()).collect();
    let m = norm(&y);
    y.iter().map(|v| v / m).collect()
}

/// The tangent Euler step per row.
pub fn euler_step(x: &[f64], v: &[f64], dt: f64, k: usize) -> Vec<f64> {
    rowwise(x, v, k, |x, v| euler_row(x, v, dt))
}

/// The pull-back of one row: `w` tangent at `exp_x(dt·u)` to the tangent space at `x`,
/// `dexp_{dt·u}^{-1}(w) = β û + θ/sin θ (w − β e)` with `θ = ‖dt·u‖`, `û = dt·u/θ`,
/// `e = −sin θ x + cos θ û` and `β = ⟨w, e⟩`; the tangent projection of `w` when `θ` is tiny.
pub fn pull_back_row(x: &[f64], u: &[f64], dt: f64, w: &[f64]) -> Vec<f64> {
    let us: Vec<f64> = u.iter().map(|v| dt * v).collect();
    let theta = norm(&us);
    if theta < EXP_TINY {
        let c = dot(w, x);
        return w.iter().zip(x).map(|(a, b)| a - c * b).collect();
    }
    let uh: Vec<f64> = us.iter().map(|v| v / theta).collect();
    let e: Vec<f64> = x
        .iter()
        .zip(&uh)
        .map(|(a, b)| -theta.sin() * a + theta.cos() * b)
        .collect();
    let beta = dot(w, &e);
    let c = theta / theta.sin();
    (0..x.len())
        .map(|i| beta * uh[i] + c * (w[i] - beta * e[i]))
        .collect()
}

/// [`pull_back_row`] per row.
pub fn pull_back(x: &[f64], u: &[f64], dt: f64, w: &[f64], k: usize) -> Vec<f64> {
    x.chunks(k)
        .zip(u.chunks(k))
        .zip(w.chunks(k))
        .flat_map(|((x, u), w)| pull_back_row(x, u, dt, w))
        .collect()
}
