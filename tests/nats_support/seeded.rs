//! A small deterministic generator (xorshift64*) for the seeded loops, so that a failure
//! replays from its seed.

pub struct Seeded(pub u64);

impl Seeded {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// `len` random characters, control characters and non-ASCII ones among them.
    pub fn text(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from_u32(self.next() as u32 % 0x250).unwrap_or('?'))
            .collect()
    }
}
