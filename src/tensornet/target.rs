//! Targets of the Monte Carlo: unnormalised log-weights `log π̃(x) = −βE(x)` known up to a
//! constant (the paper's Boltzmann distributions), with `−∞` outside a hard constraint.
//!
//! [`LogWeight`] is what every chain in [`super::chains`] samples. Implementations: the 2D Ising
//! model with one coupling per bond and one field per site on open, cylinder or torus
//! boundaries ([`IsingModel`]); the Fredkin chain's stationary weights with their Dyck-path
//! constraint ([`FredkinWeight`]); a user-supplied table over all `d^N` configurations
//! ([`TableWeight`]); and any non-negative [`Mps`] (its unnormalised weight).

use super::energy::EnergyForm;
use super::models::{dyck_area, IsingLattice};
use super::Mps;
use crate::error::{Error, Result};

/// An unnormalised log-weight over configurations of `N` sites with `d` states each.
pub trait LogWeight: Sync {
    /// Number of sites `N`.
    fn n_sites(&self) -> usize;
    /// States per site `d`.
    fn d(&self) -> usize;
    /// `log π̃(x) = −βE(x)` up to a constant; `−∞` where the weight is zero. `x` holds `N`
    /// states below `d` (see [`LogWeight::check`]).
    fn log_weight(&self, x: &[u8]) -> f64;
    /// `log π̃(x′) − log π̃(x)` where `x′` is `x` with site `k` set to `s`. The default
    /// evaluates both weights; models with local energies override it with an `O(1)` update.
    fn log_weight_change(&self, x: &[u8], k: usize, s: u8) -> f64 {
        let mut y = x.to_vec();
        y[k] = s;
        self.log_weight(&y) - self.log_weight(x)
    }
    /// Two observables recorded along every chain (for Ising: `E/N` and `|m|`).
    fn observables(&self, x: &[u8]) -> [f64; 2];
    /// [`LogWeight::observables`] of `x` whose `log π̃` is `log_pi`; a target whose
    /// observables follow from it skips recomputing them. The chains pass the weight they
    /// carry, which local moves update by differences: its rounding drifts by about 10⁻¹² over
    /// long runs.
    fn observables_at(&self, x: &[u8], log_pi: f64) -> [f64; 2] {
        let _ = log_pi;
        self.observables(x)
    }
    /// Names of the two [`LogWeight::observables`].
    fn observable_names(&self) -> [&'static str; 2] {
        ["E/N", "|m|"]
    }
    /// Whether `π̃` is invariant under exchanging the two states at every site at once (then a
    /// fitted model may be trained on the mirrored data as well).
    fn flip_symmetric(&self) -> bool {
        false
    }
    /// The target as the GPU chain kernels evaluate it ([`super::GpuChains`]); `None` (the
    /// default) keeps its chains on the CPU.
    fn energy_form(&self) -> Option<EnergyForm> {
        None
    }
    /// Check that `x` is a configuration of this target.
    fn check(&self, x: &[u8]) -> Result<()> {
        if x.len() != self.n_sites() {
            return Err(Error::Shape(format!(
                "configuration of {} sites for a target of {}",
                x.len(),
                self.n_sites()
            )));
        }
        if let Some(p) = x.iter().position(|&v| v as usize >= self.d()) {
            return Err(Error::InvalidArgument(format!(
                "state {} at site {p} is outside 0..{}",
                x[p],
                self.d()
            )));
        }
        Ok(())
    }
}

/// Spin of a state: 0 ↦ +1, 1 ↦ −1.
#[inline]
pub(super) fn spin(s: u8) -> f64 {
    1.0 - 2.0 * s as f64
}

/// `|Σ_i s_i| / N` of a binary configuration.
pub fn abs_magnetisation(x: &[u8]) -> f64 {
    let down = x.iter().map(|&v| (v != 0) as u32).sum::<u32>() as f64;
    (x.len() as f64 - 2.0 * down).abs() / x.len() as f64
}

/// The 2D Ising model `E(s) = −Σ_bonds J_ij s_i s_j − Σ_i h_i s_i` on an [`IsingLattice`] at
/// inverse temperature `β`: `log π̃ = −βE`. Sites are column-major (`k = c·ly + r`), state 0 is
/// spin +1.
#[derive(Clone, Debug)]
pub struct IsingModel {
    lattice: IsingLattice,
    beta: f64,
    bonds: Vec<(usize, usize, f64)>,
    field: Vec<f64>,
    /// Whether some field is non-zero.
    has_field: bool,
    /// Neighbours of site `k` with the coupling of the bond: `nbr[nbr_at[k]..nbr_at[k + 1]]`.
    nbr: Vec<(u32, f64)>,
    nbr_at: Vec<u32>,
}

impl IsingModel {
    /// The ferromagnet `J = 1`, `h = 0`.
    pub fn new(lattice: IsingLattice, beta: f64) -> Result<Self> {
        let nb = lattice.bonds().len();
        Self::with_couplings(lattice, beta, vec![1.0; nb], vec![0.0; lattice.n()])
    }

    /// Couplings `j[b]` for the bonds in the order of [`IsingLattice::bonds`] and fields `h[i]`
    /// per site, at `β > 0`.
    pub fn with_couplings(
        lattice: IsingLattice,
        beta: f64,
        j: Vec<f64>,
        h: Vec<f64>,
    ) -> Result<Self> {
        lattice.check_geometry()?;
        if !(beta.is_finite() && beta > 0.0) {
            return Err(Error::InvalidArgument(format!(
                "the inverse temperature must be finite and > 0 (negative couplings give an \
                 antiferromagnet), got {beta}"
            )));
        }
        let pairs = lattice.bonds();
        if j.len() != pairs.len() || h.len() != lattice.n() {
            return Err(Error::Shape(format!(
                "a {}×{} lattice has {} bonds and {} sites; got {} couplings and {} fields",
                lattice.lx,
                lattice.ly,
                pairs.len(),
                lattice.n(),
                j.len(),
                h.len()
            )));
        }
        if let Some(b) = j.iter().chain(&h).position(|v| !v.is_finite()) {
            return Err(Error::NonFinite(format!(
                "{} {}",
                if b < j.len() { "coupling" } else { "field" },
                if b < j.len() { b } else { b - j.len() }
            )));
        }
        let mut lists = vec![Vec::new(); lattice.n()];
        let bonds: Vec<(usize, usize, f64)> = pairs
            .iter()
            .zip(&j)
            .map(|(&(a, b), &jv)| (a, b, jv))
            .collect();
        for &(a, b, jv) in &bonds {
            lists[a].push((b as u32, jv));
            lists[b].push((a as u32, jv));
        }
        let mut nbr_at = vec![0u32];
        for l in &lists {
            nbr_at.push(nbr_at[nbr_at.len() - 1] + l.len() as u32);
        }
        let nbr = lists.concat();
        Ok(Self {
            lattice,
            beta,
            bonds,
            has_field: h.iter().any(|&v| v != 0.0),
            field: h,
            nbr,
            nbr_at,
        })
    }

    /// The lattice.
    pub fn lattice(&self) -> &IsingLattice {
        &self.lattice
    }
    /// Inverse temperature.
    pub fn beta(&self) -> f64 {
        self.beta
    }
    /// The fields `h_i`.
    pub fn field(&self) -> &[f64] {
        &self.field
    }
    /// The coupling `J_ab` of the bond between sites `a` and `b` (0 where there is none).
    pub fn coupling(&self, a: usize, b: usize) -> f64 {
        if a >= self.field.len() {
            return 0.0;
        }
        self.neighbours(a)
            .iter()
            .filter(|&&(j, _)| j as usize == b)
            .map(|(_, jv)| jv)
            .sum()
    }
    /// The neighbours of site `k` with the coupling of each bond.
    #[inline]
    fn neighbours(&self, k: usize) -> &[(u32, f64)] {
        &self.nbr[self.nbr_at[k] as usize..self.nbr_at[k + 1] as usize]
    }
    /// The same model without the bonds that close the x direction (a torus becomes a
    /// cylinder, a lattice open in x is returned unchanged): the part of a torus that the exact
    /// column MPS ([`super::ColumnMps`]) contracts at `χ = 2^ly`, and so a natural proposal
    /// model for it.
    pub fn cylinder_part(&self) -> Result<Self> {
        let lattice = IsingLattice {
            periodic_x: false,
            ..self.lattice
        };
        let j = lattice
            .bonds()
            .iter()
            .map(|&(a, b)| self.coupling(a, b))
            .collect();
        Self::with_couplings(lattice, self.beta, j, self.field.clone())
    }
    /// The energy `E(s)` (not multiplied by β).
    pub fn energy(&self, x: &[u8]) -> f64 {
        // Four partial sums, so the additions do not wait on each other.
        let mut acc = [0.0f64; 4];
        let bond = |&(a, b, jv): &(usize, usize, f64)| jv * spin(x[a] ^ x[b]);
        let quads = self.bonds.chunks_exact(4);
        let rest: f64 = quads.remainder().iter().map(bond).sum();
        for q in quads {
            for (a, b) in acc.iter_mut().zip(q) {
                *a += bond(b);
            }
        }
        let mut e = -(acc[0] + acc[1] + acc[2] + acc[3] + rest);
        if self.has_field {
            for (&s, &h) in x.iter().zip(&self.field) {
                e -= h * spin(s);
            }
        }
        e
    }
}

impl LogWeight for IsingModel {
    fn n_sites(&self) -> usize {
        self.lattice.n()
    }
    fn d(&self) -> usize {
        2
    }
    fn log_weight(&self, x: &[u8]) -> f64 {
        -self.beta * self.energy(x)
    }
    fn log_weight_change(&self, x: &[u8], k: usize, s: u8) -> f64 {
        if s == x[k] {
            return 0.0;
        }
        // Flipping s_k changes −βE by −2β s_k (Σ_j J_kj s_j + h_k).
        let local: f64 = self
            .neighbours(k)
            .iter()
            .map(|&(j, jv)| jv * spin(x[j as usize]))
            .sum();
        -2.0 * self.beta * spin(x[k]) * (local + self.field[k])
    }
    fn observables(&self, x: &[u8]) -> [f64; 2] {
        [self.energy(x) / x.len() as f64, abs_magnetisation(x)]
    }
    fn observables_at(&self, x: &[u8], log_pi: f64) -> [f64; 2] {
        [-log_pi / (self.beta * x.len() as f64), abs_magnetisation(x)]
    }
    fn flip_symmetric(&self) -> bool {
        !self.has_field
    }
    fn energy_form(&self) -> Option<EnergyForm> {
        Some(EnergyForm::Ising {
            beta: self.beta,
            offsets: self.nbr_at.clone(),
            neighbours: self.nbr.iter().map(|&(j, _)| j).collect(),
            couplings: self.nbr.iter().map(|&(_, jv)| jv).collect(),
            field: self.field.clone(),
        })
    }
}

/// The Fredkin chain's stationary law as a target (state 0 = up step, 1 = down step): weight
/// `(c/(1−c))^{A/2}` on Dyck paths (`A` = Σ heights), zero elsewhere.
#[derive(Clone, Copy, Debug)]
pub struct FredkinWeight {
    n: usize,
    c: f64,
    half_log_q: f64,
}

impl FredkinWeight {
    /// `n` sites (even, ≥ 2) and the valley-to-peak rate `c ∈ (0, 1)`.
    pub fn new(n: usize, c: f64) -> Result<Self> {
        if n < 2 || !n.is_multiple_of(2) {
            return Err(Error::InvalidArgument(format!(
                "the Fredkin chain needs an even number of sites ≥ 2, got {n}"
            )));
        }
        if !(c > 0.0 && c < 1.0) {
            return Err(Error::InvalidArgument(format!(
                "the Fredkin rate c must lie in (0, 1), got {c}"
            )));
        }
        Ok(Self {
            n,
            c,
            half_log_q: 0.5 * (c / (1.0 - c)).ln(),
        })
    }
}

/// The height of a path (0 = up) after its middle step.
fn mid_height(x: &[u8]) -> f64 {
    x[..x.len() / 2].iter().map(|&s| spin(s)).sum()
}

impl FredkinWeight {
    /// The rate `c`.
    pub fn c(&self) -> f64 {
        self.c
    }

    /// Exact `⟨A⟩/N` and `⟨h(N/2)⟩` from the exact MPS ([`super::fredkin`]): with `s_k = ±1`
    /// for an up/down step, `A = Σ_k (N − k) s_k` and `h(N/2) = Σ_{k<N/2} s_k`.
    pub fn exact_observables(&self) -> Result<[f64; 2]> {
        let mps = super::models::fredkin(self.n, self.c())?;
        let n = self.n;
        let (mut area, mut mid) = (0.0, 0.0);
        for k in 0..n {
            let f: Vec<Vec<f64>> = (0..n)
                .map(|i| {
                    if i == k {
                        vec![1.0, -1.0]
                    } else {
                        vec![1.0, 1.0]
                    }
                })
                .collect();
            let s = mps.expect_product(&f)?;
            area += s * (n - k) as f64;
            if k < n / 2 {
                mid += s;
            }
        }
        Ok([area / n as f64, mid])
    }
}

impl LogWeight for FredkinWeight {
    fn n_sites(&self) -> usize {
        self.n
    }
    fn d(&self) -> usize {
        2
    }
    fn log_weight(&self, x: &[u8]) -> f64 {
        match dyck_area(x) {
            Some(a) => self.half_log_q * a as f64,
            None => f64::NEG_INFINITY,
        }
    }
    fn observables(&self, x: &[u8]) -> [f64; 2] {
        let a = dyck_area(x).map_or(f64::NAN, |a| a as f64);
        [a / self.n as f64, mid_height(x)]
    }
    fn observable_names(&self) -> [&'static str; 2] {
        ["A/N", "h(N/2)"]
    }
    fn energy_form(&self) -> Option<EnergyForm> {
        Some(EnergyForm::Fredkin {
            n: self.n,
            beta: self.half_log_q,
        })
    }
}

/// A table of `log π̃` over all `d^N` configurations, indexed little-endian
/// (`index = Σ_i x_i d^i`, site 0 least significant). Entries may be `−∞`; at least one is
/// finite, none is NaN or `+∞`.
#[derive(Clone, Debug)]
pub struct TableWeight {
    n: usize,
    d: usize,
    log_w: Vec<f64>,
}

/// The largest table (entries).
const MAX_TABLE: usize = 1 << 24;

impl TableWeight {
    /// A table over `n` sites of `d` states.
    pub fn new(n: usize, d: usize, log_w: Vec<f64>) -> Result<Self> {
        if n == 0 || !(2..=255).contains(&d) {
            return Err(Error::InvalidArgument(format!(
                "a table needs n ≥ 1 sites and 2 ≤ d ≤ 255 states, got n = {n}, d = {d}"
            )));
        }
        let size = u32::try_from(n)
            .ok()
            .and_then(|n| d.checked_pow(n))
            .filter(|&s| s <= MAX_TABLE)
            .ok_or_else(|| {
                Error::Limit(format!(
                    "a table over {d}^{n} configurations is over the {MAX_TABLE} entries allowed"
                ))
            })?;
        if log_w.len() != size {
            return Err(Error::Shape(format!(
                "{d}^{n} = {size} configurations need {size} entries, got {}",
                log_w.len()
            )));
        }
        if let Some(i) = log_w.iter().position(|v| v.is_nan() || *v == f64::INFINITY) {
            return Err(Error::NonFinite(format!("table entry {i} is {}", log_w[i])));
        }
        if log_w.iter().all(|v| !v.is_finite()) {
            return Err(Error::InvalidArgument(
                "every table entry is −∞: the target has no support".into(),
            ));
        }
        Ok(Self { n, d, log_w })
    }

    /// Parse a table from text: one log-weight a line (`-inf` allowed), blank lines and `#`
    /// comments skipped, `d^N` entries for some `N ≥ 1`; `name` (a file name) starts every
    /// error message, with the line.
    pub fn parse(text: &str, d: usize, name: &str) -> Result<Self> {
        if !(2..=255).contains(&d) {
            return Err(Error::InvalidArgument(format!(
                "a table needs 2 ≤ d ≤ 255 states, got {d}"
            )));
        }
        let mut vals = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let v: f64 = t.parse().map_err(|_| {
                Error::Parse(format!(
                    "{name}:{}: `{t}` is not a number (one log-weight per line)",
                    i + 1
                ))
            })?;
            if v.is_nan() || v == f64::INFINITY {
                return Err(Error::Parse(format!(
                    "{name}:{}: log-weight {v} (NaN and +inf are not log-weights)",
                    i + 1
                )));
            }
            if vals.len() == MAX_TABLE {
                return Err(Error::Limit(format!(
                    "{name}: more than {MAX_TABLE} entries"
                )));
            }
            vals.push(v);
        }
        let (mut n, mut size) = (0usize, 1usize);
        while size < vals.len() {
            size *= d;
            n += 1;
        }
        if size != vals.len() || n == 0 {
            return Err(Error::Parse(format!(
                "{name}: {} entries is not {d}^N for any N ≥ 1",
                vals.len()
            )));
        }
        Self::new(n, d, vals).map_err(|e| Error::Parse(format!("{name}: {e}")))
    }

    /// The table index of a configuration.
    pub fn index(&self, x: &[u8]) -> usize {
        x.iter().rev().fold(0, |i, &s| i * self.d + s as usize)
    }

    /// The normalised probabilities of every configuration (table order).
    pub fn probabilities(&self) -> Vec<f64> {
        let m = self.log_w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = self.log_w.iter().map(|v| (v - m).exp()).collect();
        let z: f64 = w.iter().sum();
        w.into_iter().map(|v| v / z).collect()
    }
}

/// `|m|` for two states, else the mean state scaled to `[0, 1]`.
fn order_parameter(x: &[u8], d: usize) -> f64 {
    if d == 2 {
        abs_magnetisation(x)
    } else {
        x.iter().map(|&v| v as f64).sum::<f64>() / ((d - 1) * x.len()) as f64
    }
}

impl LogWeight for TableWeight {
    fn n_sites(&self) -> usize {
        self.n
    }
    fn d(&self) -> usize {
        self.d
    }
    fn log_weight(&self, x: &[u8]) -> f64 {
        self.log_w[self.index(x)]
    }
    fn observables(&self, x: &[u8]) -> [f64; 2] {
        [
            -self.log_weight(x) / self.n as f64,
            order_parameter(x, self.d),
        ]
    }
    fn observable_names(&self) -> [&'static str; 2] {
        ["-log w/N", if self.d == 2 { "|m|" } else { "mean state" }]
    }
}

/// A non-negative MPS as a target: `log π̃ = log W(x)`.
impl LogWeight for Mps {
    fn n_sites(&self) -> usize {
        self.len()
    }
    fn d(&self) -> usize {
        Mps::d(self)
    }
    fn log_weight(&self, x: &[u8]) -> f64 {
        Mps::log_weight(self, x).unwrap_or(f64::NAN)
    }
    fn observables(&self, x: &[u8]) -> [f64; 2] {
        [
            -LogWeight::log_weight(self, x) / self.len() as f64,
            order_parameter(x, Mps::d(self)),
        ]
    }
    fn observable_names(&self) -> [&'static str; 2] {
        [
            "-log W/N",
            if Mps::d(self) == 2 {
                "|m|"
            } else {
                "mean state"
            },
        ]
    }
}

/// Onsager's energy per site `u(β) = ⟨E⟩/N` of the infinite square-lattice ferromagnet
/// (`J = 1`): `u = −coth(2β)[1 + (2/π)(2 tanh²(2β) − 1) K(k)]`, `k = 2 sinh(2β)/cosh²(2β)`,
/// with the complete elliptic integral `K` by the arithmetic–geometric mean.
pub fn onsager_energy(beta: f64) -> f64 {
    let t = 2.0 * beta;
    let k = 2.0 * t.sinh() / t.cosh().powi(2);
    let f = 2.0 * t.tanh().powi(2) - 1.0;
    // At β_c, f = 0 and K = ∞; the product tends to 0 (K diverges only logarithmically).
    let term = if f == 0.0 || k >= 1.0 {
        0.0
    } else {
        2.0 / std::f64::consts::PI * f * complete_elliptic_k(k)
    };
    -1.0 / t.tanh() * (1.0 + term)
}

/// Onsager–Yang spontaneous magnetisation `(1 − sinh⁻⁴ 2β)^{1/8}` above `β_c`, 0 below.
pub fn onsager_magnetisation(beta: f64) -> f64 {
    let s = (2.0 * beta).sinh();
    let v = 1.0 - s.powi(-4);
    if v > 0.0 {
        v.powf(0.125)
    } else {
        0.0
    }
}

/// `K(k) = π / (2 AGM(1, √(1 − k²)))`; `+∞` at `k = 1`.
fn complete_elliptic_k(k: f64) -> f64 {
    let (mut a, mut b) = (1.0f64, (1.0 - k * k).max(0.0).sqrt());
    if b == 0.0 {
        return f64::INFINITY;
    }
    for _ in 0..60 {
        let (na, nb) = ((a + b) / 2.0, (a * b).sqrt());
        a = na;
        b = nb;
        if (a - b).abs() <= 1e-16 * a {
            break;
        }
    }
    std::f64::consts::PI / (2.0 * a)
}

/// Exact expectations of the two observables by enumerating all `d^N ≤ 2^22` configurations
/// (log-sum-exp over the weights; configurations of weight 0 are skipped).
pub fn enumerate_observables(target: &dyn LogWeight) -> Result<[f64; 2]> {
    let (n, d) = (target.n_sites(), target.d());
    let size = u32::try_from(n)
        .ok()
        .and_then(|n| d.checked_pow(n))
        .filter(|&s| s <= 1 << 22)
        .ok_or_else(|| {
            Error::Limit(format!("enumerating {d}^{n} configurations (at most 2^22)"))
        })?;
    let mut x = vec![0u8; n];
    let mut lw = Vec::with_capacity(size);
    let mut obs = Vec::with_capacity(size);
    for i in 0..size {
        let mut v = i;
        for s in x.iter_mut() {
            *s = (v % d) as u8;
            v /= d;
        }
        let w = target.log_weight(&x);
        if w.is_finite() {
            lw.push(w);
            obs.push(target.observables(&x));
        }
    }
    let m = lw.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return Err(Error::InvalidArgument(
            "the target has no configuration of positive weight".into(),
        ));
    }
    let (mut z, mut a, mut b) = (0.0, 0.0, 0.0);
    for (w, o) in lw.iter().zip(&obs) {
        let p = (w - m).exp();
        z += p;
        a += p * o[0];
        b += p * o[1];
    }
    Ok([a / z, b / z])
}
