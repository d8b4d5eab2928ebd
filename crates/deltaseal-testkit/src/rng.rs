//! A small deterministic PRNG for synthetic test images.

/// xorshift64*: reproducible test data without a dependency. Not for
/// anything that needs unpredictability.
///
/// ```
/// use deltaseal_testkit::Rng;
///
/// let (mut a, mut b) = (Rng(7), Rng(7));
/// assert_eq!(a.bytes(16), b.bytes(16));
/// assert!(a.below(10) < 10);
/// ```
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 bits (the seed must not be 0).
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    /// A number below `n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}
