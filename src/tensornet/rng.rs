//! Random numbers: the counter-based Philox-2x32-10 generator shared bit for bit with the WGSL
//! sampler; host-side streams use [`crate::rng::Rng`].

const PHILOX_M: u32 = 0xD256_D193;
const PHILOX_W: u32 = 0x9E37_79B9;

/// Philox-2x32 with 10 rounds: a keyed bijection of the 64-bit counter `(c0, c1)`.
pub fn philox2x32(mut c0: u32, mut c1: u32, mut key: u32) -> (u32, u32) {
    for _ in 0..10 {
        let p = (PHILOX_M as u64) * (c0 as u64);
        let hi = (p >> 32) as u32;
        let lo = p as u32;
        c0 = hi ^ key ^ c1;
        c1 = lo;
        key = key.wrapping_add(PHILOX_W);
    }
    (c0, c1)
}

/// The uniform in `[0, 1)` (24 bits) that sample `sample` uses at site `site` for
/// `(seed, stream)`: the same number the GPU kernel draws.
pub fn uniform(seed: u32, stream: u32, sample: u32, site: u32) -> f64 {
    let (x, _) = philox2x32(sample, site ^ stream.wrapping_mul(0x85EB_CA6B), seed);
    (x >> 8) as f64 * (1.0 / 16_777_216.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn philox_is_a_bijection_sample_and_roughly_uniform() {
        // Distinct counters give distinct outputs (a bijection for a fixed key).
        let mut seen = std::collections::HashSet::new();
        for c in 0..4096u32 {
            assert!(seen.insert(philox2x32(c, 3, 11)));
        }
        let n = 20000;
        let mean: f64 = (0..n).map(|i| uniform(1, 0, i, 5)).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.01);
    }
}
