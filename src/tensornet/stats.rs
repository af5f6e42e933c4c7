//! Time-series statistics of Markov chains: integrated autocorrelation time with Sokal's
//! automatic window, the standard error it implies, and effective samples.

/// Integrated autocorrelation time `τ_int = 1/2 + Σ_{t=1}^{W} ρ(t)` of a set of chains, with
/// Sokal's window: the smallest `W ≥ c · τ_int(W)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Autocorrelation {
    /// `τ_int` in steps of the chain (`1/2` for independent samples).
    pub tau: f64,
    /// The window `W` where the sum stopped.
    pub window: usize,
    /// Whether the window closed before the series ran out (`W < T / 4`); when false `tau` is
    /// a lower bound.
    pub reliable: bool,
}

/// Sokal's window factor.
pub const SOKAL_C: f64 = 5.0;

/// `τ_int` of `chains` series of equal length stored one after another in `series`
/// (`[chains, T]`). The autocovariance at each lag is averaged over chains about the grand
/// mean, so slow differences between chains raise `τ`. A constant series has `τ = 1/2`.
pub fn integrated_autocorrelation(series: &[f64], chains: usize) -> Autocorrelation {
    let chains = chains.max(1);
    let t_len = series.len() / chains;
    if t_len < 2 {
        return Autocorrelation {
            tau: 0.5,
            window: 0,
            reliable: false,
        };
    }
    let used = &series[..t_len * chains];
    let mean = used.iter().sum::<f64>() / used.len() as f64;
    let sums = lag_sums(used, chains, mean);
    let cov = |lag: usize| sums[lag] / (chains * (t_len - lag)) as f64;
    let c0 = cov(0);
    if c0 <= 0.0 || !c0.is_finite() {
        return Autocorrelation {
            tau: 0.5,
            window: 0,
            reliable: true,
        };
    }
    let max_w = t_len / 4;
    let mut tau = 0.5;
    for w in 1..t_len {
        tau += cov(w) / c0;
        if w as f64 >= SOKAL_C * tau {
            return Autocorrelation {
                tau,
                window: w,
                reliable: w < max_w.max(1),
            };
        }
        if w >= max_w.max(1) {
            return Autocorrelation {
                tau,
                window: w,
                reliable: false,
            };
        }
    }
    Autocorrelation {
        tau,
        window: t_len - 1,
        reliable: false,
    }
}

/// The mean of a chain observable with its autocorrelation-aware standard error
/// `√(var · 2τ / (chains · T))`.
#[derive(Clone, Copy, Debug)]
pub struct Estimate {
    /// Mean over all chains and steps.
    pub mean: f64,
    /// Standard error of the mean.
    pub se: f64,
    /// Variance of a single sample.
    pub var: f64,
    /// The autocorrelation.
    pub autocorr: Autocorrelation,
    /// Samples (`chains · T`).
    pub samples: usize,
}

impl Estimate {
    /// Effective samples `chains · T / (2τ)`.
    pub fn effective_samples(&self) -> f64 {
        self.samples as f64 / (2.0 * self.autocorr.tau)
    }
}

/// Mean, variance, `τ_int` and standard error of `series` (`[chains, T]`).
pub fn estimate(series: &[f64], chains: usize) -> Estimate {
    let chains = chains.max(1);
    let t_len = series.len() / chains;
    let used = &series[..t_len * chains];
    let n = used.len().max(1);
    let mean = used.iter().sum::<f64>() / n as f64;
    let var = used.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
    let autocorr = integrated_autocorrelation(used, chains);
    Estimate {
        mean,
        se: (var * 2.0 * autocorr.tau / n as f64).sqrt(),
        var,
        autocorr,
        samples: used.len(),
    }
}

/// `Σ_chains Σ_i (x_i − μ)(x_{i+lag} − μ)` for every lag `0..T`, by FFT per chain
/// (`O(chains · T log T)`).
fn lag_sums(series: &[f64], chains: usize, mean: f64) -> Vec<f64> {
    let t_len = series.len() / chains;
    let size = (2 * t_len).next_power_of_two();
    let mut out = vec![0.0; t_len];
    let mut re = vec![0.0; size];
    let mut im = vec![0.0; size];
    for c in series.chunks(t_len) {
        re.iter_mut().for_each(|v| *v = 0.0);
        im.iter_mut().for_each(|v| *v = 0.0);
        for (r, &v) in re.iter_mut().zip(c) {
            *r = v - mean;
        }
        fft(&mut re, &mut im, false);
        for (r, i) in re.iter_mut().zip(im.iter_mut()) {
            *r = *r * *r + *i * *i;
            *i = 0.0;
        }
        fft(&mut re, &mut im, true);
        for (o, &r) in out.iter_mut().zip(&re) {
            *o += r / size as f64;
        }
    }
    out
}

/// In-place iterative radix-2 FFT (`inverse`: the conjugate transform, unscaled).
fn fft(re: &mut [f64], im: &mut [f64], inverse: bool) {
    let n = re.len();
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    let sign = if inverse { 1.0 } else { -1.0 };
    let mut len = 2;
    while len <= n {
        let ang = sign * 2.0 * std::f64::consts::PI / len as f64;
        let (wr, wi) = (ang.cos(), ang.sin());
        for start in (0..n).step_by(len) {
            let (mut cr, mut ci) = (1.0f64, 0.0f64);
            for k in 0..len / 2 {
                let (a, b) = (start + k, start + k + len / 2);
                let (tr, ti) = (re[b] * cr - im[b] * ci, re[b] * ci + im[b] * cr);
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
                let ncr = cr * wr - ci * wi;
                ci = cr * wi + ci * wr;
                cr = ncr;
            }
        }
        len <<= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fft_lag_sums_match_the_direct_sums() {
        let mut g = crate::rng::Rng::new(3);
        let x: Vec<f64> = (0..3 * 37).map(|_| g.normal()).collect();
        let mean = 0.1;
        let fast = lag_sums(&x, 3, mean);
        for lag in 0..37 {
            let mut s = 0.0;
            for c in x.chunks(37) {
                for i in 0..37 - lag {
                    s += (c[i] - mean) * (c[i + lag] - mean);
                }
            }
            assert!((fast[lag] - s).abs() < 1e-9 * (1.0 + s.abs()), "lag {lag}");
        }
    }

    #[test]
    fn ar1_series_has_the_known_tau() {
        // x_t = a x_{t-1} + noise: τ_int = (1 + a) / (2 (1 − a)).
        let a: f64 = 0.8;
        let (chains, t) = (8, 20_000);
        let mut g = crate::rng::Rng::new(5);
        let mut x = Vec::with_capacity(chains * t);
        for _ in 0..chains {
            let mut v = g.normal() / (1.0 - a * a).sqrt();
            for _ in 0..t {
                v = a * v + g.normal();
                x.push(v);
            }
        }
        let ac = integrated_autocorrelation(&x, chains);
        let want = (1.0 + a) / (2.0 * (1.0 - a));
        assert!(ac.reliable);
        assert!((ac.tau - want).abs() < 0.08 * want, "{} vs {want}", ac.tau);
        let e = estimate(&x, chains);
        assert!(e.mean.abs() < 5.0 * e.se);
        assert!(integrated_autocorrelation(&vec![2.0; 100], 2).tau == 0.5);
    }
}
