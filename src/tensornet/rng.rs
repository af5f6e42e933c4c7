//! Random numbers of the samplers: the Philox4x32-10 generator of every kernel family
//! ([`crate::kernels::rng`]), in the layout the WGSL sampler uses; host-side streams use
//! [`crate::rng::Rng`].

use crate::kernels::rng::{philox4x32_10, unit_f32, unit_open0_f32};

/// The uniform in `[0, 1)` (24 bits) that sample `sample` uses at site `site` for
/// `(seed, stream)`: word 0 of the Philox block with counter `(sample, site, stream, 0)` under
/// key `(seed, 0)`, the same number the GPU kernel draws.
pub fn uniform(seed: u32, stream: u32, sample: u32, site: u32) -> f64 {
    uniform_at(seed, stream, sample as u64, site)
}

/// [`uniform`] of a 64-bit sample index: counter `(low word, site, stream, high word)`.
pub fn uniform_at(seed: u32, stream: u32, sample: u64, site: u32) -> f64 {
    let ctr = [sample as u32, site, stream, (sample >> 32) as u32];
    unit_f32(philox4x32_10(ctr, [seed, 0])[0]) as f64
}

/// A uniform in `(0, 1]` (24 bits, never 0): word 0 of the Philox block with counter `ctr`
/// under key `(key, 0)`. The accept and local-move uniforms of the chains, the number the GPU
/// chain kernels draw (`to_unit_open0` in `shaders/lib/philox.wgsl`).
pub fn open_uniform(key: u32, ctr: [u32; 4]) -> f64 {
    unit_open0_f32(philox4x32_10(ctr, [key, 0])[0]) as f64
}

/// The raw word 1 of the same block as [`open_uniform`].
pub(crate) fn second_word(key: u32, ctr: [u32; 4]) -> u32 {
    philox4x32_10(ctr, [key, 0])[1]
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
