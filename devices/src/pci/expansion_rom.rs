//! A PCI expansion ROM image (PCI 3.0 section 6.3): read-only bytes behind a function's
//! expansion ROM BAR, such as a VGA BIOS that firmware copies to 0xC0000 and runs.

use rx86_core::bus::BusDevice;

/// Smallest expansion ROM BAR (the BAR's address bits start at bit 11).
const MIN_ROM_BAR_SIZE: u64 = 0x800;

/// The image, zero-padded to its BAR size.
pub struct ExpansionRom {
    data: Vec<u8>,
}

impl ExpansionRom {
    /// An expansion ROM holding `image`.
    pub fn new(image: Vec<u8>) -> Self {
        ExpansionRom { data: image }
    }

    /// The BAR size that holds the image: its length rounded up to a power of two (at least
    /// 2 KiB).
    pub fn bar_size(&self) -> u64 {
        (self.data.len() as u64).next_power_of_two().max(MIN_ROM_BAR_SIZE)
    }
}

impl BusDevice for ExpansionRom {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        (0..u64::from(size.min(8))).rev().fold(0, |acc, i| {
            let at = offset.checked_add(i).and_then(|at| usize::try_from(at).ok());
            let byte = at.and_then(|at| self.data.get(at)).copied().unwrap_or(0);
            (acc << 8) | u64::from(byte)
        })
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        log::debug!("expansion ROM: {size}-byte write of {value:#x} at {offset:#x} ignored (read-only)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_little_endian_and_zero_past_the_image() {
        let mut rom = ExpansionRom::new(vec![0x55, 0xaa, 0x40, 0xe9]);
        assert_eq!(rom.read(0, 2), 0xaa55, "the option ROM signature");
        assert_eq!(rom.read(2, 4), 0x0000_e940);
        rom.write(0, 1, 0);
        assert_eq!(rom.read(0, 1), 0x55, "read-only");
        assert_eq!(rom.read(u64::MAX, 8), 0, "no overflow far past the end");
        assert_eq!(rom.bar_size(), 0x800);
        assert_eq!(ExpansionRom::new(vec![0; 38_400]).bar_size(), 0x10000);
    }
}
