//! The χ² goodness-of-fit test of the samplers' tests: the statistic of counts against exact
//! probabilities and its upper quantile.

#![allow(dead_code)]

/// Upper quantile of χ²(df) at z standard deviations (Wilson–Hilferty).
pub fn chi2_crit(df: usize, z: f64) -> f64 {
    let k = df as f64;
    let a = 2.0 / (9.0 * k);
    k * (1.0 - a + z * a.sqrt()).powi(3)
}

/// χ² statistic of observed counts against expected probabilities, pooling bins with an
/// expected count below 5 into one. Returns (statistic, degrees of freedom).
pub fn chi2(counts: &[u64], probs: &[f64]) -> (f64, usize) {
    let total: u64 = counts.iter().sum();
    let (mut stat, mut bins, mut po, mut pe) = (0.0, 0usize, 0.0, 0.0);
    for (&c, &p) in counts.iter().zip(probs) {
        let e = p * total as f64;
        if e < 5.0 {
            po += c as f64;
            pe += e;
            continue;
        }
        stat += (c as f64 - e).powi(2) / e;
        bins += 1;
    }
    if pe > 0.0 {
        stat += (po - pe).powi(2) / pe.max(1e-300);
        bins += 1;
    }
    (stat, bins - 1)
}
