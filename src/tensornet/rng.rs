//! Random numbers: the counter-based Philox-2x32-10 generator shared bit for bit with the WGSL
//! sampler, and SplitMix64 for host-side streams.

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

/// SplitMix64: a small seeded generator for host-side randomness.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A uniform in `[0, 1)` (53 bits).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// A standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
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
