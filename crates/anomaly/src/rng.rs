//! A small deterministic PRNG (SplitMix64). Own code instead of a `rand` dependency: the
//! engine only needs uniform draws, and the exact stream must never change between releases
//! because it decides which trees a seed produces.

/// SplitMix64 generator (Steele, Lea, Flood 2014): one `u64` of state, full period 2^64.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator for sub-stream `index` of `seed` (one per tree, host, day ...), so that
    /// sub-streams do not depend on how many numbers other sub-streams consumed.
    pub fn derive(seed: u64, index: u64) -> Self {
        let mut mixer = Self::new(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
        Self::new(mixer.next_u64())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, bound); `bound` must be > 0 (returns 0 otherwise).
    pub fn below(&mut self, bound: usize) -> usize {
        if bound == 0 {
            return 0;
        }
        // Multiply-shift (Lemire) without the rejection step: the bias is < bound / 2^64,
        // irrelevant for sampling rows and features.
        ((u128::from(self.next_u64()) * bound as u128) >> 64) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// Standard normal draw (Box-Muller; one of the pair is discarded for simplicity).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64(); // (0, 1]: ln is finite
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Poisson draw with mean `lambda` (Knuth's product method for small means, a rounded
    /// normal approximation above 30 where the product method gets slow).
    pub fn poisson(&mut self, lambda: f64) -> u32 {
        if lambda <= 0.0 {
            return 0;
        }
        if lambda > 30.0 {
            let draw = lambda + lambda.sqrt() * self.normal();
            return draw.round().max(0.0) as u32;
        }
        let limit = (-lambda).exp();
        let mut product = self.next_f64();
        let mut count = 0;
        while product > limit {
            count += 1;
            product *= self.next_f64();
        }
        count
    }
}
