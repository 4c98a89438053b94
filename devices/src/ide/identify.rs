//! Building the 256-word IDENTIFY (PACKET) DEVICE block: ASCII fields are stored
//! two characters per word, first character in the high byte (ATA-6 section 8.15.1),
//! and word 255 is the integrity word (signature A5h, checksum making all 512 bytes
//! sum to zero, section 8.15.64).

/// Words of the serial number field (10-19).
pub const SERIAL_WORDS: usize = 10;

/// An IDENTIFY block under construction.
pub struct IdentifyData([u16; 256]);

impl IdentifyData {
    /// All zero.
    pub fn new() -> Self {
        IdentifyData([0; 256])
    }

    /// Sets word `w`.
    pub fn set(&mut self, w: usize, value: u16) {
        self.0[w] = value;
    }

    /// Sets words `w` (low half) and `w + 1`.
    pub fn set32(&mut self, w: usize, value: u32) {
        self.0[w] = value as u16;
        self.0[w + 1] = (value >> 16) as u16;
    }

    /// Sets words `w` to `w + 3`, least significant first.
    pub fn set64(&mut self, w: usize, value: u64) {
        for i in 0..4 {
            self.0[w + i] = (value >> (16 * i)) as u16;
        }
    }

    /// An ASCII field of `words` words at `w`, space-padded.
    pub fn string(&mut self, w: usize, words: usize, text: &str) {
        let mut bytes = text.bytes().filter(u8::is_ascii_graphic_or_space).chain(std::iter::repeat(b' '));
        for i in 0..words {
            let hi = bytes.next().unwrap_or(b' ');
            let lo = bytes.next().unwrap_or(b' ');
            self.0[w + i] = u16::from_be_bytes([hi, lo]);
        }
    }

    /// The finished block with its integrity word.
    pub fn finish(mut self) -> [u16; 256] {
        self.0[255] = 0x00a5;
        let sum = self.0[..255].iter().fold(0xa5u8, |s, w| s.wrapping_add(*w as u8).wrapping_add((*w >> 8) as u8));
        self.0[255] |= u16::from(sum.wrapping_neg()) << 8;
        self.0
    }
}

trait AsciiField {
    fn is_ascii_graphic_or_space(&self) -> bool;
}

impl AsciiField for u8 {
    fn is_ascii_graphic_or_space(&self) -> bool {
        self.is_ascii_graphic() || *self == b' '
    }
}

/// The block as the 512 bytes the data port delivers (little-endian words).
pub fn to_bytes(words: &[u16; 256]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}
