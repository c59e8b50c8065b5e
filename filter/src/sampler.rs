//! The random draws `filter_enabled` samples requests with: a small generator per plugin (not a
//! secret, only a fair share), seeded from the clock at configure time. A test seeds it itself.

use std::cell::Cell;

/// xorshift64*: fast, and uniform enough for a percentage.
#[derive(Debug)]
pub struct Sampler(Cell<u64>);

impl Sampler {
    pub fn seeded(seed: u64) -> Self {
        // Zero is xorshift's one fixed point.
        Self(Cell::new(seed | 1))
    }

    pub fn next(&self) -> u64 {
        let mut x = self.0.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FilterEnabled;

    #[test]
    fn half_of_many_requests_are_sampled() {
        let sampler = Sampler::seeded(42);
        let half = FilterEnabled {
            numerator: 50,
            denominator: 100,
        };
        let sampled = (0..10_000).filter(|_| half.enabled(sampler.next())).count();
        assert!((4_500..=5_500).contains(&sampled), "{sampled}");
    }
}
