//! Exact MPS constructions (Ising chain, cylinder and torus; Fredkin chain), brute-force
//! oracles, and random MPS for benchmarks.

use super::{Mps, Site};
use crate::budget;
use crate::error::{Error, Result};
use crate::rng::Rng;

/// Entries (f64) of the largest MPS this crate builds: 2^28, 2 GiB.
pub const MAX_MPS_ENTRIES: u128 = 1 << 28;

/// Refuses, before anything is allocated, an MPS of site shapes `(χ_left, d, χ_right)` with
/// more than [`MAX_MPS_ENTRIES`] entries, or one whose sampler (the MPS, its environments and
/// a copy) would not fit in the host memory available. `what` names the model in the error.
pub fn check_mps_size(
    what: &str,
    shapes: impl IntoIterator<Item = (usize, usize, usize)>,
) -> Result<()> {
    let entries: u128 = shapes
        .into_iter()
        .map(|(l, d, r)| l as u128 * d as u128 * r as u128)
        .sum();
    let bytes = entries * 8;
    if entries > MAX_MPS_ENTRIES {
        return Err(Error::Limit(format!(
            "{what}: its MPS has {entries} entries ({}), over the {MAX_MPS_ENTRIES} ({}) this \
             crate builds",
            budget::human(bytes),
            budget::human(MAX_MPS_ENTRIES * 8)
        )));
    }
    if let Some(avail) = budget::host_available() {
        if 3 * bytes > avail {
            return Err(Error::Limit(format!(
                "{what}: its MPS and sampler need {} of host memory, more than the {} available",
                budget::human(3 * bytes),
                budget::human(avail)
            )));
        }
    }
    Ok(())
}

/// An `lx × ly` square lattice of Ising spins, site `k = c·ly + r` (column-major), with
/// optional periodic closure along x (columns) and y (within a column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsingLattice {
    /// Number of columns.
    pub lx: usize,
    /// Spins per column.
    pub ly: usize,
    /// Bond between the last and the first column.
    pub periodic_x: bool,
    /// Bond between the last and the first spin of each column.
    pub periodic_y: bool,
}

impl IsingLattice {
    /// An `lx × ly` lattice with the given boundary conditions.
    pub fn new(lx: usize, ly: usize, boundary: Boundary) -> Result<Self> {
        let (periodic_x, periodic_y) = match boundary {
            Boundary::Open => (false, false),
            Boundary::Cylinder => (false, true),
            Boundary::Torus => (true, true),
        };
        let lat = Self {
            lx,
            ly,
            periodic_x,
            periodic_y,
        };
        lat.check_geometry()?;
        Ok(lat)
    }

    /// Check the geometry: non-empty, periodic directions at least 3 long, at most 2^24 spins.
    pub fn check_geometry(&self) -> Result<()> {
        if self.lx == 0 || self.ly == 0 {
            return Err(Error::Shape("an Ising lattice needs lx, ly ≥ 1".into()));
        }
        if self.periodic_x && self.lx < 3 {
            return Err(Error::InvalidArgument(
                "periodic x needs lx ≥ 3 (lx = 2 would double the bonds)".into(),
            ));
        }
        if self.periodic_y && self.ly < 3 {
            return Err(Error::InvalidArgument(
                "periodic y needs ly ≥ 3 (ly = 2 would double the bonds)".into(),
            ));
        }
        if self.lx.checked_mul(self.ly).is_none_or(|n| n > 1 << 24) {
            return Err(Error::Limit(format!(
                "an Ising lattice of {} × {} spins is over the 2^24 this crate handles",
                self.lx, self.ly
            )));
        }
        Ok(())
    }

    fn check(&self) -> Result<()> {
        self.check_geometry()?;
        if self.ly > 10 || (self.periodic_x && self.ly > 5) {
            return Err(Error::Limit(format!(
                "the exact MPS has bond dimension 2^{}; ly = {} is too wide",
                if self.periodic_x {
                    2 * self.ly
                } else {
                    self.ly
                },
                self.ly
            )));
        }
        Ok(())
    }

    /// Number of spins.
    pub fn n(&self) -> usize {
        self.lx * self.ly
    }

    /// Every nearest-neighbour bond `(i, j)` once.
    pub fn bonds(&self) -> Vec<(usize, usize)> {
        let (lx, ly) = (self.lx, self.ly);
        let mut b = Vec::new();
        for c in 0..lx {
            for r in 0..ly {
                let k = c * ly + r;
                if r > 0 {
                    b.push((k - 1, k));
                }
                if self.periodic_y && r == ly - 1 {
                    b.push((c * ly, k));
                }
                if c > 0 {
                    b.push((k - ly, k));
                }
                if self.periodic_x && c == lx - 1 {
                    b.push((r, k));
                }
            }
        }
        b
    }
}

/// Boundary conditions of an [`IsingLattice`] (columns run along x, a column along y).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Boundary {
    /// No periodic bonds.
    Open,
    /// Periodic within each column (along y): the geometry of the exact MPS.
    Cylinder,
    /// Periodic in both directions.
    Torus,
}

/// Exact Ising values by enumeration of all `2^N` configurations.
#[derive(Clone, Copy, Debug)]
pub struct IsingExact {
    /// `ln Z`.
    pub log_z: f64,
    /// `⟨|m|⟩`, `m = Σ s / N`.
    pub abs_m: f64,
    /// `⟨E⟩ / N` with `E = −Σ_bonds s_i s_j`.
    pub energy: f64,
}

/// Spin of state `s` (0 ↦ +1, 1 ↦ −1).
#[inline]
fn spin(s: usize) -> f64 {
    if s == 0 {
        1.0
    } else {
        -1.0
    }
}

/// Brute-force `ln Z`, `⟨|m|⟩` and `⟨E⟩/N` (N ≤ 24) at inverse temperature `beta`.
pub fn enumerate_ising(lat: &IsingLattice, beta: f64) -> Result<IsingExact> {
    let n = lat.n();
    if n > 24 {
        return Err(Error::Limit(format!("enumerating 2^{n} configurations")));
    }
    let bonds = lat.bonds();
    // Energies range over integers in [−|B|, |B|]: accumulate by energy to stay accurate.
    let nb = bonds.len() as i64;
    let mut z = 0.0;
    let mut zm = 0.0;
    let mut ze = 0.0;
    let shift = beta * nb as f64; // weights e^{−βE − β|B|} ≤ 1
    for x in 0u32..(1u32 << n) {
        let mut e = 0i64;
        for &(i, j) in &bonds {
            e -= if ((x >> i) ^ (x >> j)) & 1 == 0 {
                1
            } else {
                -1
            };
        }
        let w = (-beta * e as f64 - shift).exp();
        let m = (n as i64 - 2 * x.count_ones() as i64).abs() as f64 / n as f64;
        z += w;
        zm += w * m;
        ze += w * e as f64;
    }
    Ok(IsingExact {
        log_z: z.ln() + shift,
        abs_m: zm / z,
        energy: ze / z / n as f64,
    })
}

/// Exact `ln Z` and `⟨E⟩/N` of the ferromagnet (`J = 1`, `h = 0`) on an `lx × ly` torus,
/// any size, by Kaufman's formula (1949): with `K = β`, `K*` the dual coupling
/// (`tanh K* = e^{−2K}`), `cosh γ_r = cosh 2K coth 2K − cos(πr/n)` for `r ≥ 1` and
/// `γ_0 = 2(K − K*)` (negative above the critical temperature),
/// `Z = ½ (2 sinh 2K)^{mn/2} Σ_i Z_i` over the four products of `2 cosh(mγ/2)` and
/// `2 sinh(mγ/2)` on the odd and the even `r < 2n` (`m = ly`, `n = lx`). Summed in logarithms
/// with signs; `⟨E⟩ = −d ln Z/dβ` by a fourth-order central difference. `O(lx)`.
pub fn kaufman_torus(lat: &IsingLattice, beta: f64) -> Result<(f64, f64)> {
    lat.check_geometry()?;
    if !(lat.periodic_x && lat.periodic_y) {
        return Err(Error::InvalidArgument(
            "Kaufman's formula is for the torus (periodic in both directions)".into(),
        ));
    }
    if !(beta.is_finite() && beta > 0.0) {
        return Err(Error::InvalidArgument(format!(
            "the inverse temperature must be finite and > 0, got {beta}"
        )));
    }
    let h = 1e-4 * beta.min(1.0);
    let f = |b: f64| kaufman_log_z(lat.lx, lat.ly, b);
    let d = (f(beta - 2.0 * h) - 8.0 * f(beta - h) + 8.0 * f(beta + h) - f(beta + 2.0 * h))
        / (12.0 * h);
    let log_z = f(beta);
    if !(log_z.is_finite() && d.is_finite()) {
        return Err(Error::NonFinite(format!("Kaufman's ln Z at β = {beta}")));
    }
    Ok((log_z, -d / lat.n() as f64))
}

/// `ln Z` of the `n`-column, `m`-row ferromagnetic torus at `K = β` (Kaufman).
fn kaufman_log_z(n: usize, m: usize, k: f64) -> f64 {
    let k_dual = -0.5 * k.tanh().ln();
    let c = (2.0 * k).cosh() / (2.0 * k).tanh();
    let gamma = |r: usize| {
        if r == 0 {
            2.0 * (k - k_dual)
        } else {
            (c - (std::f64::consts::PI * r as f64 / n as f64).cos()).acosh()
        }
    };
    // ln |2 cosh(x)| and ln |2 sinh(x)| with the sign of sinh, stable for large |x|.
    let ln2cosh = |x: f64| x.abs() + (-2.0 * x.abs()).exp().ln_1p();
    let ln2sinh = |x: f64| x.abs() + (-(-2.0 * x.abs()).exp()).ln_1p();
    let mut terms = [(0.0f64, 1.0f64); 4];
    for (i, parity) in [1usize, 0].into_iter().enumerate() {
        let (mut lc, mut ls, mut sign) = (0.0, 0.0, 1.0f64);
        for r in 0..n {
            let x = 0.5 * m as f64 * gamma(2 * r + parity);
            lc += ln2cosh(x);
            if x == 0.0 {
                sign = 0.0;
            } else {
                ls += ln2sinh(x);
                sign *= x.signum();
            }
        }
        terms[2 * i] = (lc, 1.0);
        terms[2 * i + 1] = (ls, sign);
    }
    let top = terms
        .iter()
        .filter(|t| t.1 != 0.0)
        .fold(f64::NEG_INFINITY, |a, t| a.max(t.0));
    let sum: f64 = terms.iter().map(|&(l, s)| s * (l - top).exp()).sum();
    -std::f64::consts::LN_2 + 0.5 * (m * n) as f64 * (2.0 * (2.0 * k).sinh()).ln() + top + sum.ln()
}

/// Exact `ln Z` and `⟨E⟩/N` of the ferromagnet (`J = 1`, `h = 0`) on an open or cylinder
/// lattice of up to 20 spins per column, by the sparse transfer along the column-major order:
/// the state is the last `ly` spins (a vector of `2^ly` weights, rescaled every site), each
/// site adds one spin and its bonds up, left and (closing the cylinder) to the column's first
/// spin; `d ln Z / dβ = −⟨E⟩` is carried alongside (forward mode). `O(N 2^ly)`.
pub fn ising_transfer(lat: &IsingLattice, beta: f64) -> Result<(f64, f64)> {
    lat.check_geometry()?;
    if lat.periodic_x || lat.ly > 20 {
        return Err(Error::Limit(
            "the transfer contraction handles open or cylinder lattices of ly ≤ 20".into(),
        ));
    }
    if !beta.is_finite() {
        return Err(Error::InvalidArgument(format!("beta = {beta}")));
    }
    let ly = lat.ly;
    let size = 1usize << ly;
    let mask = size - 1;
    // v[reg]: weight of the spins so far with the last ly of them in reg (bit 0 the latest);
    // dv: its derivative in β. Before the first site every register is the empty history.
    let (mut v, mut dv) = (vec![0.0f64; size], vec![0.0f64; size]);
    v[0] = 1.0;
    let (mut nv, mut ndv) = (vec![0.0f64; size], vec![0.0f64; size]);
    let mut log_scale = 0.0;
    for k in 0..lat.n() {
        let (c, r) = (k / ly, k % ly);
        nv.iter_mut().for_each(|x| *x = 0.0);
        ndv.iter_mut().for_each(|x| *x = 0.0);
        for reg in 0..size {
            if v[reg] == 0.0 && dv[reg] == 0.0 {
                continue;
            }
            for s in 0..2usize {
                let sg = spin(s);
                let mut e = 0.0;
                if r > 0 {
                    e += sg * spin(reg & 1);
                }
                if lat.periodic_y && r == ly - 1 {
                    e += sg * spin((reg >> (ly - 2)) & 1);
                }
                if c > 0 {
                    e += sg * spin((reg >> (ly - 1)) & 1);
                }
                let w = (beta * e).exp();
                let to = ((reg << 1) | s) & mask;
                nv[to] += w * v[reg];
                ndv[to] += w * (dv[reg] + e * v[reg]);
            }
        }
        let m = nv.iter().fold(0.0f64, |m, x| m.max(*x));
        nv.iter_mut().for_each(|x| *x /= m);
        ndv.iter_mut().for_each(|x| *x /= m);
        log_scale += m.ln();
        std::mem::swap(&mut v, &mut nv);
        std::mem::swap(&mut dv, &mut ndv);
    }
    let (z, dz): (f64, f64) = (v.iter().sum(), dv.iter().sum());
    Ok((log_scale + z.ln(), -dz / z / lat.n() as f64))
}

/// The exact MPS of `P(s) ∝ exp(β Σ_bonds s_i s_j)` on `lat`, column-major. The bond after
/// site `k` is a shift register holding the last `min(k+1, ly)` spins (`χ = 2^{ly}`); with
/// periodic x it also carries the first column (`χ = 2^{2ly}`). Site `k` multiplies
/// `e^{β s s_up}`, `e^{β s s_left}` and the periodic closures it completes.
pub fn ising_2d(lat: &IsingLattice, beta: f64) -> Result<Mps> {
    lat.check()?;
    if !beta.is_finite() {
        return Err(Error::InvalidArgument(format!("beta = {beta}")));
    }
    let (lx, ly) = (lat.lx, lat.ly);
    let n = lat.n();
    let px = lat.periodic_x;
    let bond_dim = |k: usize| -> usize {
        if k + 1 == n {
            1
        } else if px && k >= ly {
            1 << (2 * ly)
        } else {
            1 << (k + 1).min(ly)
        }
    };
    check_mps_size(
        &format!("an Ising {lx} × {ly} lattice"),
        (0..n).map(|k| (if k == 0 { 1 } else { bond_dim(k - 1) }, 2, bond_dim(k))),
    )?;
    let mut sites = Vec::with_capacity(n);
    for k in 0..n {
        let (c, r) = (k / ly, k % ly);
        let dl = if k == 0 { 1 } else { bond_dim(k - 1) };
        let dr = bond_dim(k);
        let mut a = Site::zeros(dl, 2, dr);
        let rbits_old = k.min(ly);
        for l in 0..dl {
            let r_old = l & ((1usize << rbits_old) - 1);
            let f = if px && k > ly {
                l >> ly
            } else if px && k == ly {
                r_old
            } else {
                0
            };
            let bit = |v: usize, j: usize| (v >> j) & 1;
            for s in 0..2usize {
                let sg = spin(s);
                let mut e = 0.0;
                if r > 0 {
                    e += sg * spin(bit(r_old, 0));
                }
                if lat.periodic_y && r == ly - 1 {
                    e += sg * spin(bit(r_old, ly - 2));
                }
                if c > 0 {
                    e += sg * spin(bit(r_old, ly - 1));
                }
                if px && c == lx - 1 {
                    e += sg * spin(bit(f, ly - 1 - r));
                }
                let w = (beta * e).exp();
                let ri = if k + 1 == n {
                    0
                } else {
                    let r_new = ((r_old << 1) | s) & ((1usize << (k + 1).min(ly)) - 1);
                    if px && k >= ly {
                        (f << ly) | r_new
                    } else {
                        r_new
                    }
                };
                *a.at_mut(l, s, ri) = w;
            }
        }
        sites.push(a);
    }
    Mps::new(sites, 0.0)
}

/// The open Ising chain `P ∝ exp(K Σ s_i s_{i+1})` of `n` spins (bond dimension 2).
pub fn ising_chain(n: usize, k: f64) -> Result<Mps> {
    ising_2d(
        &IsingLattice {
            lx: n,
            ly: 1,
            periodic_x: false,
            periodic_y: false,
        },
        k,
    )
}

/// The `lx × ly` cylinder (periodic within columns), `χ = 2^{ly}`.
pub fn ising_cylinder(lx: usize, ly: usize, beta: f64) -> Result<Mps> {
    ising_2d(
        &IsingLattice {
            lx,
            ly,
            periodic_x: false,
            periodic_y: true,
        },
        beta,
    )
}

/// The `lx × ly` torus, `χ = 2^{2 ly}`.
pub fn ising_torus(lx: usize, ly: usize, beta: f64) -> Result<Mps> {
    ising_2d(
        &IsingLattice {
            lx,
            ly,
            periodic_x: true,
            periodic_y: true,
        },
        beta,
    )
}

/// The Fredkin chain's stationary law on `n` sites (state 0 = up step, 1 = down step):
/// Dyck paths weighted by `(c/(1−c))^{A/2}`, `A = Σ` heights. The bond carries the height
/// (`χ = n/2 + 1`).
pub fn fredkin(n: usize, c: f64) -> Result<Mps> {
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
    let q = c / (1.0 - c);
    let hmax = n / 2;
    let bond = |k: usize| if k + 1 == n { 1 } else { hmax + 1 };
    check_mps_size(
        &format!("the Fredkin chain of {n} sites"),
        (0..n).map(|k| (if k == 0 { 1 } else { bond(k - 1) }, 2, bond(k))),
    )?;
    let mut sites = Vec::with_capacity(n);
    for k in 0..n {
        let (dl, dr) = (if k == 0 { 1 } else { bond(k - 1) }, bond(k));
        let mut a = Site::zeros(dl, 2, dr);
        for h in 0..dl {
            for s in 0..2usize {
                let h2 = if s == 0 { h as i64 + 1 } else { h as i64 - 1 };
                if h2 < 0 || h2 as usize > hmax {
                    continue;
                }
                let h2 = h2 as usize;
                if k + 1 == n {
                    if h2 == 0 {
                        *a.at_mut(h, s, 0) = 1.0;
                    }
                } else {
                    *a.at_mut(h, s, h2) = q.powf(h2 as f64 / 2.0);
                }
            }
        }
        sites.push(a);
    }
    Mps::new(sites, 0.0)
}

/// The area `Σ` heights of a path (0 = up, 1 = down), or `None` when it is not a Dyck path
/// (goes below 0 or does not end at 0).
pub fn dyck_area(x: &[u8]) -> Option<u64> {
    let mut h = 0i64;
    let mut a = 0u64;
    for &s in x {
        h += if s == 0 { 1 } else { -1 };
        if h < 0 {
            return None;
        }
        a += h as u64;
    }
    (h == 0).then_some(a)
}

/// A random non-negative MPS (entries uniform in `[0, 1)`) of `n` sites, `d` states and bond
/// dimension `chi` (smaller near the ends where `d^k` is smaller).
pub fn random_mps(n: usize, d: usize, chi: usize, seed: u64) -> Result<Mps> {
    if n == 0 || d == 0 || chi == 0 {
        return Err(Error::InvalidArgument(
            "random_mps needs n, d, chi ≥ 1".into(),
        ));
    }
    let mut g = Rng::from_state(seed);
    let cap = |k: usize| -> usize {
        // bond after site k
        let left = (d as f64).powi((k + 1) as i32);
        let right = (d as f64).powi((n - 1 - k) as i32);
        (chi as f64).min(left).min(right) as usize
    };
    check_mps_size(
        &format!("a random MPS of {n} sites, bond dimension {chi}"),
        (0..n).map(|k| {
            (
                if k == 0 { 1 } else { cap(k - 1) },
                d,
                if k + 1 == n { 1 } else { cap(k) },
            )
        }),
    )?;
    let mut sites = Vec::with_capacity(n);
    for k in 0..n {
        let dl = if k == 0 { 1 } else { cap(k - 1) };
        let dr = if k + 1 == n { 1 } else { cap(k) };
        let mut a = Site::zeros(dl, d, dr);
        a.data.iter_mut().for_each(|v| *v = g.uniform());
        sites.push(a);
    }
    Mps::new(sites, 0.0)
}
