//! One ODE integrator for every device and every geometry: explicit Runge–Kutta methods in
//! normal coordinates (Runge–Kutta–Munthe-Kaas).
//!
//! A step from `x` integrates `u' = dψ_u⁻¹ f(ψ(u), t)`, `u(0) = 0`, with the method's Butcher
//! tableau, where `ψ(u) = exp_x(u)` on the sphere (and `x + u` on the simplex): stage `i` is
//! evaluated at `y_i = ψ(h Σ_j a_ij k_j)` and its velocity is pulled back to `x`,
//! `k_i = dψ⁻¹(f(y_i))`. The update is `ψ(h Σ_i b_i k_i)`. This is the classical method applied
//! to an ODE in a vector space, so every method keeps its order on the manifold (a test
//! measures it). An embedded pair (Dormand–Prince 5(4)) estimates the error for adaptive steps.
//!
//! The maths is written once here; a device ([`OdeDevice`]: recorded GPU kernels or the CPU
//! backend) provides the geodesic step, the pull-back and linear combinations, and a
//! [`VectorField`] the velocities.

use crate::error::{Error, Result};

/// ODE integrator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Solver {
    /// One field evaluation per step (first order), the paper's sampler.
    #[default]
    Euler,
    /// The explicit midpoint rule: two evaluations per step, second order.
    Midpoint,
    /// Classical Runge–Kutta: four evaluations per step, fourth order.
    Rk4,
    /// Dormand–Prince 5(4) with adaptive steps (`rtol`, `atol`).
    Dopri5,
}

impl Solver {
    /// The method's Butcher tableau.
    pub fn tableau(self) -> &'static Tableau {
        match self {
            Solver::Euler => &EULER,
            Solver::Midpoint => &MIDPOINT,
            Solver::Rk4 => &RK4,
            Solver::Dopri5 => &DOPRI5,
        }
    }
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Solver::Euler => "euler",
            Solver::Midpoint => "midpoint",
            Solver::Rk4 => "rk4",
            Solver::Dopri5 => "dopri5",
        }
    }
}

impl std::str::FromStr for Solver {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        [Solver::Euler, Solver::Midpoint, Solver::Rk4, Solver::Dopri5]
            .into_iter()
            .find(|v| v.name() == s.to_ascii_lowercase())
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "unknown solver {s:?}; use euler, midpoint, rk4 or dopri5"
                ))
            })
    }
}

/// An explicit Runge–Kutta method: `a` (strictly lower triangular, row `i` has `i` entries),
/// weights `b`, nodes `c`, and for embedded pairs the error weights `b − b̂`.
#[derive(Debug)]
pub struct Tableau {
    /// Stage coefficients.
    pub a: &'static [&'static [f64]],
    /// Weights.
    pub b: &'static [f64],
    /// Nodes.
    pub c: &'static [f64],
    /// `b − b̂` of an embedded lower-order method.
    pub err: Option<&'static [f64]>,
    /// Classical order.
    pub order: u32,
}

impl Tableau {
    /// Stages (field evaluations per step).
    pub fn stages(&self) -> usize {
        self.b.len()
    }
}

static EULER: Tableau = Tableau {
    a: &[&[]],
    b: &[1.0],
    c: &[0.0],
    err: None,
    order: 1,
};

static MIDPOINT: Tableau = Tableau {
    a: &[&[], &[0.5]],
    b: &[0.0, 1.0],
    c: &[0.0, 0.5],
    err: None,
    order: 2,
};

static RK4: Tableau = Tableau {
    a: &[&[], &[0.5], &[0.0, 0.5], &[0.0, 0.0, 1.0]],
    b: &[1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0],
    c: &[0.0, 0.5, 0.5, 1.0],
    err: None,
    order: 4,
};

/// Dormand & Prince (1980), 5th-order weights with the 4th-order embedded estimate.
static DOPRI5: Tableau = Tableau {
    a: &[
        &[],
        &[1.0 / 5.0],
        &[3.0 / 40.0, 9.0 / 40.0],
        &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
        &[
            19372.0 / 6561.0,
            -25360.0 / 2187.0,
            64448.0 / 6561.0,
            -212.0 / 729.0,
        ],
        &[
            9017.0 / 3168.0,
            -355.0 / 33.0,
            46732.0 / 5247.0,
            49.0 / 176.0,
            -5103.0 / 18656.0,
        ],
        &[
            35.0 / 384.0,
            0.0,
            500.0 / 1113.0,
            125.0 / 192.0,
            -2187.0 / 6784.0,
            11.0 / 84.0,
        ],
    ],
    b: &[
        35.0 / 384.0,
        0.0,
        500.0 / 1113.0,
        125.0 / 192.0,
        -2187.0 / 6784.0,
        11.0 / 84.0,
        0.0,
    ],
    c: &[0.0, 0.2, 0.3, 0.8, 8.0 / 9.0, 1.0, 1.0],
    err: Some(&[
        35.0 / 384.0 - 5179.0 / 57600.0,
        0.0,
        500.0 / 1113.0 - 7571.0 / 16695.0,
        125.0 / 192.0 - 393.0 / 640.0,
        -2187.0 / 6784.0 + 92097.0 / 339200.0,
        11.0 / 84.0 - 187.0 / 2100.0,
        -1.0 / 40.0,
    ]),
    order: 5,
};

/// What an integrator needs from a device, for points `x` and tangent vectors of one shape.
/// On the GPU the calls record kernels; on the CPU they run at once.
pub trait OdeDevice {
    /// A buffer of the state's shape.
    type Buf: Clone;
    /// A new buffer.
    fn buffer(&mut self) -> Result<Self::Buf>;
    /// `out ← ψ_x(h·u)`: the geodesic step (folded back into the positive orthant with
    /// `fold`, as the samplers do after a whole step).
    fn exp(
        &mut self,
        x: &Self::Buf,
        u: &Self::Buf,
        h: f32,
        fold: bool,
        out: &Self::Buf,
    ) -> Result<()>;
    /// `out ← dψ_{h·u}⁻¹(w)`: `w`, tangent at `ψ_x(h·u)`, pulled back to `x`.
    fn pull_back(
        &mut self,
        x: &Self::Buf,
        u: &Self::Buf,
        h: f32,
        w: &Self::Buf,
        out: &Self::Buf,
    ) -> Result<()>;
    /// `out ← a·v + b·out`.
    fn axpby(&mut self, a: f32, v: &Self::Buf, b: f32, out: &Self::Buf) -> Result<()>;
    /// The RMS over every element of `e / (atol + rtol·max(|x|, |y|))` (runs what was recorded
    /// and reads one number back).
    fn error_norm(
        &mut self,
        x: &Self::Buf,
        y: &Self::Buf,
        e: &Self::Buf,
        atol: f64,
        rtol: f64,
    ) -> Result<f64>;
}

/// A time-dependent vector field `f(x, t)` whose values are tangent at `x`.
pub trait VectorField<D: OdeDevice> {
    /// `out ← f(x, t)`.
    fn eval(&mut self, dev: &mut D, x: &D::Buf, t: f32, out: &D::Buf) -> Result<()>;
}

/// Buffers of one step, made once.
pub struct Workspace<D: OdeDevice> {
    k: Vec<D::Buf>,
    u: D::Buf,
    y: D::Buf,
    raw: D::Buf,
    err: D::Buf,
}

impl<D: OdeDevice> Workspace<D> {
    /// Buffers for the method `tab`.
    pub fn new(dev: &mut D, tab: &Tableau) -> Result<Self> {
        Ok(Self {
            k: (0..tab.stages())
                .map(|_| dev.buffer())
                .collect::<Result<_>>()?,
            u: dev.buffer()?,
            y: dev.buffer()?,
            raw: dev.buffer()?,
            err: dev.buffer()?,
        })
    }
}

/// `out ← Σ w_j k_j` over the nonzero weights; `None` when all are zero.
fn combine<D: OdeDevice>(dev: &mut D, weights: &[f64], k: &[D::Buf], out: &D::Buf) -> Result<bool> {
    let mut first = true;
    for (w, kj) in weights.iter().zip(k) {
        if *w != 0.0 {
            dev.axpby(*w as f32, kj, if first { 0.0 } else { 1.0 }, out)?;
            first = false;
        }
    }
    Ok(!first)
}

/// One step of `tab` from `x` at time `t` with size `h` into `out`; with an embedded pair the
/// error vector (before scaling by `h`) is left in the workspace.
#[allow(clippy::too_many_arguments)]
pub fn step<D: OdeDevice, F: VectorField<D>>(
    dev: &mut D,
    field: &mut F,
    tab: &Tableau,
    ws: &mut Workspace<D>,
    x: &D::Buf,
    t: f32,
    h: f32,
    fold: bool,
    out: &D::Buf,
) -> Result<()> {
    for i in 0..tab.stages() {
        let ti = t + (tab.c[i] * h as f64) as f32;
        if !combine(dev, tab.a[i], &ws.k[..i], &ws.u)? {
            // At x itself: the velocity is already tangent there.
            field.eval(dev, x, ti, &ws.k[i])?;
            continue;
        }
        dev.exp(x, &ws.u, h, false, &ws.y)?;
        field.eval(dev, &ws.y, ti, &ws.raw)?;
        dev.pull_back(x, &ws.u, h, &ws.raw, &ws.k[i])?;
    }
    if let Some(e) = tab.err {
        combine(dev, e, &ws.k, &ws.err)?;
    }
    if tab.b.iter().filter(|&&b| b != 0.0).count() == 1 && tab.b.contains(&1.0) {
        let i = tab
            .b
            .iter()
            .position(|&b| b == 1.0)
            .expect("one unit weight");
        return dev.exp(x, &ws.k[i], h, fold, out);
    }
    combine(dev, tab.b, &ws.k, &ws.u)?;
    dev.exp(x, &ws.u, h, fold, out)
}

/// Integrate from `t0` to `t1` in `steps` equal steps of `solver` (a fixed-step method),
/// starting from `a` and ending in `a` or `b` (returned): the buffers alternate.
#[allow(clippy::too_many_arguments)]
pub fn integrate_fixed<D: OdeDevice, F: VectorField<D>>(
    dev: &mut D,
    field: &mut F,
    solver: Solver,
    a: &D::Buf,
    b: &D::Buf,
    t0: f32,
    t1: f32,
    steps: usize,
    fold: bool,
) -> Result<D::Buf> {
    if solver == Solver::Dopri5 {
        return Err(Error::InvalidArgument(
            "dopri5 chooses its own steps; use integrate_adaptive".into(),
        ));
    }
    let tab = solver.tableau();
    let mut ws = Workspace::new(dev, tab)?;
    let h = (t1 - t0) / steps as f32;
    let (mut cur, mut next) = (a.clone(), b.clone());
    for s in 0..steps {
        let t = t0 + s as f32 * h;
        step(dev, field, tab, &mut ws, &cur, t, h, fold, &next)?;
        std::mem::swap(&mut cur, &mut next);
    }
    Ok(cur)
}

/// Tolerances and limits of an adaptive integration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adaptive {
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// First step size.
    pub h0: f64,
    /// Most steps (accepted and rejected) before giving up.
    pub max_steps: usize,
}

impl Default for Adaptive {
    fn default() -> Self {
        Self {
            rtol: 1e-3,
            atol: 1e-4,
            h0: 0.05,
            max_steps: 10_000,
        }
    }
}

/// What an adaptive integration did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdaptiveStats {
    /// Accepted steps.
    pub accepted: usize,
    /// Rejected steps.
    pub rejected: usize,
    /// Field evaluations.
    pub evaluations: usize,
}

/// Integrate from `t0` to `t1` with Dormand–Prince 5(4) and error control, starting from `a`;
/// the result is in the returned buffer (`a` or `b`).
#[allow(clippy::too_many_arguments)]
pub fn integrate_adaptive<D: OdeDevice, F: VectorField<D>>(
    dev: &mut D,
    field: &mut F,
    a: &D::Buf,
    b: &D::Buf,
    t0: f32,
    t1: f32,
    opts: &Adaptive,
    fold: bool,
) -> Result<(D::Buf, AdaptiveStats)> {
    if !(opts.rtol > 0.0 && opts.atol > 0.0 && opts.rtol.is_finite() && opts.atol.is_finite()) {
        return Err(Error::InvalidArgument(format!(
            "dopri5 needs positive, finite tolerances (rtol {}, atol {})",
            opts.rtol, opts.atol
        )));
    }
    let tab = Solver::Dopri5.tableau();
    let mut ws = Workspace::new(dev, tab)?;
    let (mut cur, mut next) = (a.clone(), b.clone());
    let span = (t1 - t0) as f64;
    let mut t = t0 as f64;
    let mut h = opts.h0.min(span).max(1e-6 * span);
    let mut stats = AdaptiveStats::default();
    while t < t1 as f64 - 1e-9 * span {
        if stats.accepted + stats.rejected >= opts.max_steps {
            return Err(Error::InvalidArgument(format!(
                "dopri5 took {} steps without reaching t = {t1} (at t = {t:.4}); loosen rtol/atol",
                opts.max_steps
            )));
        }
        h = h.min(t1 as f64 - t);
        step(
            dev, field, tab, &mut ws, &cur, t as f32, h as f32, fold, &next,
        )?;
        stats.evaluations += tab.stages();
        let err = h * dev.error_norm(&cur, &next, &ws.err, opts.atol, opts.rtol)?;
        if !err.is_finite() {
            return Err(Error::NonFinite(format!(
                "the vector field is not finite near t = {t:.4}"
            )));
        }
        if err <= 1.0 {
            t += h;
            stats.accepted += 1;
            std::mem::swap(&mut cur, &mut next);
        } else {
            stats.rejected += 1;
        }
        let factor = if err == 0.0 {
            5.0
        } else {
            (0.9 * err.powf(-1.0 / 5.0)).clamp(0.2, 5.0)
        };
        h *= factor;
    }
    Ok((cur, stats))
}
