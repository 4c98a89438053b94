//! Fuzz target bodies: each takes arbitrary bytes and must return without panicking,
//! whatever the bytes. The same bodies run two ways:
//! - under libFuzzer, from the cargo-fuzz crate in `tests/fuzz/` (nightly; see its README);
//! - in CI, from `tests/tests/fuzz_smoke.rs`, over a fixed set of pseudo-random and seed
//!   inputs, so a regression shows in every test run.
//!
//! Targets:
//! - [`board`]: the PC board's register files. The bytes are a program of port reads and
//!   writes, MMIO reads and writes, guest-memory writes (DMA descriptors, BIOS frames),
//!   built-in BIOS service calls with arbitrary registers, and clock advances that fire the
//!   devices' timers, run against a fresh board with a floppy, a hard disk and a CD.
//! - [`cpu`]: arbitrary code on the interpreter, on that board, in real, protected and long
//!   mode.
//! - [`tiers`]: the same code on the interpreter and on the JIT tier (lock-step checked):
//!   the same instructions retired, registers and exit.
//! - [`parsers`]: the file formats a user hands rx86: bzImage, Multiboot/ELF kernels,
//!   El Torito boot catalogs, qcow2 images; and the command-line mini-languages.
//! - [`net`]: the e1000's register file and descriptor rings (rings and buffers anywhere,
//!   any lengths), and the user-mode NAT's packet parsing (under `restrict=on`).

pub mod board;
pub mod cpu;
pub mod net;
pub mod parsers;
pub mod tiers;

/// Reads fuzz input as a stream of little-endian numbers; past the end everything is 0.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Input { bytes }
    }

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The next `n` bytes (fewer at the end).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.bytes.split_at(n.min(self.bytes.len()));
        self.bytes = tail;
        head
    }

    /// The next byte.
    pub fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    /// The next 16-bit number.
    pub fn u16(&mut self) -> u16 {
        u16::from(self.u8()) | u16::from(self.u8()) << 8
    }

    /// The next 32-bit number.
    pub fn u32(&mut self) -> u32 {
        u32::from(self.u16()) | u32::from(self.u16()) << 16
    }

    /// The next 64-bit number.
    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }
}

/// A deterministic pseudo-random byte source (xorshift64*), for the CI smoke runs.
#[derive(Debug, Clone)]
pub struct Xorshift(u64);

impl Xorshift {
    /// A generator from `seed` (0 is replaced: xorshift has no zero state).
    pub fn new(seed: u64) -> Self {
        Xorshift(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }

    /// `base` with about one byte in `rate` replaced at random: inputs near a valid file.
    pub fn mutate(&mut self, base: &[u8], rate: u64) -> Vec<u8> {
        base.iter()
            .map(|&b| if self.next_u64().is_multiple_of(rate.max(1)) { self.next_u64() as u8 } else { b })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_reads_little_endian_and_zeros_past_the_end() {
        let mut i = Input::new(&[1, 2, 3, 4, 5]);
        assert_eq!(i.u16(), 0x0201);
        assert_eq!(i.u32(), 0x0005_0403);
        assert!(i.is_empty());
        assert_eq!(i.u64(), 0);
    }

    #[test]
    fn xorshift_is_deterministic_and_mutation_keeps_length() {
        let (mut a, mut b) = (Xorshift::new(7), Xorshift::new(7));
        assert_eq!(a.bytes(16), b.bytes(16));
        let base = vec![0u8; 1000];
        let m = a.mutate(&base, 10);
        assert_eq!(m.len(), 1000);
        assert!(m.iter().any(|&x| x != 0));
    }
}
