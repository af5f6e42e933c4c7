//! The crate's one host-side seeded generator (SplitMix64): parameter initialisation, toy
//! data, MCMC and tests. GPU kernels use counter-based Philox instead
//! ([`crate::kernels::rng`]).

/// SplitMix64: 64-bit state, full period, good enough for initialisation and test data.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator from a seed (every seed, zero included, is fine).
    pub fn new(seed: u64) -> Self {
        Self::from_state(seed ^ 0x5851_f42d_4c95_7f2d)
    }

    /// A generator whose internal state is exactly `state`.
    pub fn from_state(state: u64) -> Self {
        Self { state }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `0..n` (`n >= 1`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// A vector of `n` uniforms in `[lo, hi)` as f32.
    pub fn vec_f32(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f32> {
        (0..n).map(|_| self.range(lo, hi) as f32).collect()
    }

    /// `n` points of N(mean, std² I) in R^d, row-major (`mean` per coordinate, missing
    /// coordinates 0).
    pub fn gaussian_points(&mut self, n: usize, d: usize, mean: &[f64], std: f64) -> Vec<f32> {
        (0..n * d)
            .map(|e| (mean.get(e % d).copied().unwrap_or(0.0) + std * self.normal()) as f32)
            .collect()
    }

    /// An independent generator derived from this one's seed and a stream number.
    pub fn fork(seed: u64, stream: u64) -> Self {
        let mut r = Rng::new(seed.wrapping_add(stream.wrapping_mul(0xd134_2543_de82_ef95)));
        r.next_u64();
        r
    }
}
