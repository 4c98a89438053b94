//! Video memory: the four VGA planes interleaved in one byte array shared with the
//! Bochs VBE linear framebuffer.
//!
//! Plane `p` at plane offset `o` is byte `4 * o + p`, so one `u32` read gives the four
//! bytes the latches load. Standard VGA modes use the first 64 KiB of each plane
//! (256 KiB); VBE modes of 8 bpp and more use the whole array as linear bytes.

/// Default video memory size: 16 MiB, as QEMU's `-vga std`.
pub const DEFAULT_VRAM_SIZE: usize = 16 << 20;
/// Smallest video memory accepted: the 256 KiB of the four VGA planes.
pub const MIN_VRAM_SIZE: usize = 256 << 10;
/// Largest video memory accepted (the VBE VIDEO_MEMORY_64K register is 16 bits).
pub const MAX_VRAM_SIZE: usize = 256 << 20;
/// Number of planes.
pub const PLANES: usize = 4;

/// The video memory.
#[derive(Clone)]
pub struct Vram {
    bytes: Vec<u8>,
}

impl std::fmt::Debug for Vram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vram({} KiB)", self.bytes.len() >> 10)
    }
}

impl Vram {
    /// Zeroed video memory of `size` bytes, rounded up to a power of two and clamped
    /// to [`MIN_VRAM_SIZE`]..=[`MAX_VRAM_SIZE`].
    pub fn new(size: usize) -> Self {
        let size = size.clamp(MIN_VRAM_SIZE, MAX_VRAM_SIZE).next_power_of_two();
        Vram { bytes: vec![0; size] }
    }

    /// Size in bytes (a power of two).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: video memory has at least [`MIN_VRAM_SIZE`] bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Number of plane offsets (bytes per plane).
    pub fn plane_len(&self) -> usize {
        self.bytes.len() / PLANES
    }

    /// The byte at linear address `addr` (0 past the end).
    pub fn byte(&self, addr: usize) -> u8 {
        self.bytes.get(addr).copied().unwrap_or(0)
    }

    /// Writes the byte at linear address `addr`; false (nothing written) past the end.
    pub fn set_byte(&mut self, addr: usize, value: u8) -> bool {
        match self.bytes.get_mut(addr) {
            Some(b) => {
                *b = value;
                true
            }
            None => false,
        }
    }

    /// Plane `plane`'s byte at plane offset `offset` (0 past the end).
    pub fn plane_byte(&self, plane: usize, offset: usize) -> u8 {
        offset.checked_mul(PLANES).map_or(0, |base| self.byte(base + (plane & 3)))
    }

    /// The four plane bytes at `offset`, plane n in byte n (0 past the end).
    pub fn planes(&self, offset: usize) -> u32 {
        let base = offset.wrapping_mul(PLANES);
        match self.bytes.get(base..base.wrapping_add(PLANES)) {
            Some(&[b0, b1, b2, b3]) if offset < self.plane_len() => u32::from_le_bytes([b0, b1, b2, b3]),
            _ => 0,
        }
    }

    /// Writes the lanes of `value` selected by `plane_mask` (bit n = plane n) at
    /// `offset`; false (nothing written) past the end.
    pub fn set_planes(&mut self, offset: usize, value: u32, plane_mask: u8) -> bool {
        if offset >= self.plane_len() {
            return false;
        }
        let base = offset * PLANES;
        for (p, byte) in value.to_le_bytes().into_iter().enumerate() {
            if plane_mask & (1 << p) != 0 {
                self.bytes[base + p] = byte;
            }
        }
        true
    }

    /// Fills `range` of linear addresses with zeros (clipped at the end).
    pub fn clear(&mut self, start: usize, len: usize) {
        let end = start.saturating_add(len).min(self.bytes.len());
        if let Some(bytes) = self.bytes.get_mut(start..end) {
            bytes.fill(0);
        }
    }

    /// The whole memory as linear bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planes_interleave() {
        let mut v = Vram::new(MIN_VRAM_SIZE);
        assert!(v.set_planes(2, 0x4433_2211, 0b1011));
        assert_eq!(v.plane_byte(0, 2), 0x11);
        assert_eq!(v.plane_byte(2, 2), 0, "plane 2 masked");
        assert_eq!(v.planes(2), 0x4400_2211);
        assert_eq!(v.byte(8), 0x11, "plane 0, offset 2 is linear byte 8");
        assert_eq!(v.byte(11), 0x44);
    }

    #[test]
    fn out_of_range_is_harmless() {
        let mut v = Vram::new(1);
        assert_eq!(v.len(), MIN_VRAM_SIZE, "clamped up");
        assert!(!v.set_planes(v.plane_len(), 1, 0xf));
        assert_eq!(v.planes(usize::MAX), 0);
        assert_eq!(v.plane_byte(0, usize::MAX), 0);
        assert!(!v.set_byte(usize::MAX, 1));
        v.clear(usize::MAX - 1, 10);
        assert_eq!(Vram::new(3 << 20).len(), 4 << 20, "rounded to a power of two");
    }
}
