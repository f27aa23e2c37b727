//! Shared by the weir-api integration tests that generate requests.

/// A small deterministic generator (xorshift), so every run checks the same cases.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True `percent` times in a hundred.
    #[allow(dead_code)] // not every test file uses it
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}
