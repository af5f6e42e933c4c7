//! Random numbers of the samplers: the Philox4x32-10 generator of every kernel family
//! ([`crate::kernels::rng`]), in the layout the WGSL sampler uses; host-side streams use
//! [`crate::rng::Rng`].

use crate::kernels::rng::{philox4x32_10, unit_f32};

/// The uniform in `[0, 1)` (24 bits) that sample `sample` uses at site `site` for
/// `(seed, stream)`: word 0 of the Philox block with counter `(sample, site, stream, 0)` under
/// key `(seed, 0)`, the same number the GPU kernel draws.
pub fn uniform(seed: u32, stream: u32, sample: u32, site: u32) -> f64 {
    unit_f32(philox4x32_10([sample, site, stream, 0], [seed, 0])[0]) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniforms_are_distinct_and_roughly_uniform() {
        let mut seen = std::collections::HashSet::new();
        for c in 0..4096u32 {
            assert!(seen.insert(uniform(11, 3, c, 0).to_bits()));
        }
        let n = 20000;
        let mean: f64 = (0..n).map(|i| uniform(1, 0, i, 5)).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.01);
    }
}
