//! The engine's reproducible random generator: SplitMix64, with the uniform and normal draws documented below.
//!
//! The same seed gives the same numbers on every machine, thread count and device:
//! - state advance: `s += 0x9E3779B97F4A7C15`; output `z = s; z = (z ^ z>>30)·0xBF58476D1CE4E5B9;
//!   z = (z ^ z>>27)·0x94D049BB133111EB; z ^ z>>31`;
//! - uniform in (0, 1]: `((u64 >> 11) + 1) · 2^-53`;
//! - standard normal: Box–Muller from two uniforms, cosine branch only:
//!   `sqrt(-2 ln u1) · cos(2π u2)`.
//!
//! Values for f32/f16/bf16 tensors are drawn in f64 and rounded once.

/// A SplitMix64 generator. Cheap to copy; its state is one u64, so checkpoints can store it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generator {
    state: u64,
}

impl Generator {
    /// A generator whose first output is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Generator { state: seed }
    }

    /// The current state (to save and later restore with [`Generator::new`]).
    pub fn state(&self) -> u64 {
        self.state
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1], never 0 (so `ln` is always finite).
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal (Box–Muller, cosine branch; two uniforms per draw).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_published_checksums() {
        // ALGORITHMS.md §1.4: seed 42.
        let mut g = Generator::new(42);
        assert_eq!(g.next_u64(), 0xbdd7_3226_2feb_6e95);
        let mut g = Generator::new(42);
        assert_eq!(g.normal(), 0.41471975043153003);
        assert_eq!(g.normal(), -0.8918862136277573);
    }

    #[test]
    fn uniform_is_in_half_open_unit_interval() {
        let mut g = Generator::new(7);
        for _ in 0..10000 {
            let u = g.uniform();
            assert!(u > 0.0 && u <= 1.0);
        }
    }
}
