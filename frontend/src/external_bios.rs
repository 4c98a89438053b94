//! `--bios FILE`: an external firmware image (SeaBIOS and the like) instead of the built-in
//! BIOS. As on a PC, the image sits read-only just below 4 GiB, where the CPU's reset vector
//! (F000:FFF0 with CS base FFFF0000) points, and its last 128 KiB also appear at
//! 0xE0000-0xFFFFF for real-mode code.
//!
//! That low copy is shadow RAM that starts as a copy of the image: firmware that copies
//! itself there through the i440FX PAM registers finds it writable, and firmware that
//! write-protects it is not stopped from writing (the PAM registers are not modelled yet).

use crate::error::RunError;
use rx86_core::memory::GuestRam;
use rx86_core::phys::{PhysMemory, Region, RegionKind};
use std::path::Path;
use std::sync::Arc;

/// Smallest image: one 64 KiB segment.
pub const MIN_ROM_BYTES: usize = 64 << 10;
/// Largest image: the 16 MiB the chipset decodes below 4 GiB.
pub const MAX_ROM_BYTES: usize = 16 << 20;
/// The part of the image that also appears below 1 MiB.
const LOW_ALIAS_BYTES: usize = 128 << 10;
/// Where the low alias ends.
const ONE_MIB: u64 = 1 << 20;

/// Reads the image at `path` and checks its size: a multiple of 64 KiB from 64 KiB to 16 MiB.
pub fn read_rom(path: &Path) -> Result<Vec<u8>, RunError> {
    let rom =
        std::fs::read(path).map_err(|source| RunError::ReadFile { what: "BIOS image", path: path.into(), source })?;
    check_size(rom.len()).map_err(|why| RunError::Firmware(format!("--bios {}: {why}", path.display())))?;
    Ok(rom)
}

fn check_size(len: usize) -> Result<(), String> {
    if !(MIN_ROM_BYTES..=MAX_ROM_BYTES).contains(&len) || !len.is_multiple_of(MIN_ROM_BYTES) {
        return Err(format!(
            "{len} bytes is not a BIOS image size (a multiple of 64 KiB from 64 KiB to 16 MiB, e.g. SeaBIOS's 128 KiB \
             bios.bin)"
        ));
    }
    Ok(())
}

/// Maps `rom` just below 4 GiB (read-only).
pub fn map_high(memory: &mut PhysMemory, rom: &[u8]) -> Result<(), RunError> {
    let data = GuestRam::new(rom.len() as u64).map_err(|e| RunError::Memory(e.to_string()))?;
    data.write(0, rom).map_err(|e| RunError::Memory(e.to_string()))?;
    let region = Region {
        base: (1u64 << 32) - rom.len() as u64,
        len: rom.len() as u64,
        kind: RegionKind::Rom { data: Arc::new(data) },
        name: "BIOS image".into(),
    };
    memory.add_region(region).map_err(|e| RunError::Board(e.to_string()))
}

/// Copies the image's last 128 KiB into the shadow RAM below 1 MiB.
pub fn fill_low_alias(memory: &PhysMemory, rom: &[u8]) {
    let low = &rom[rom.len().saturating_sub(LOW_ALIAS_BYTES)..];
    memory.write(ONE_MIB - low.len() as u64, low);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_sizes() {
        for ok in [64 << 10, 128 << 10, 256 << 10, 16 << 20] {
            assert!(check_size(ok).is_ok(), "{ok}");
        }
        for bad in [0, 512, (64 << 10) - 1, (128 << 10) + 512, 32 << 20] {
            assert!(check_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_image_ends_at_4_gib_and_its_last_128_kib_at_1_mib() {
        let ram = Arc::new(GuestRam::new(2 << 20).unwrap());
        let mut memory = PhysMemory::new(ram);
        memory
            .add_region(Region { base: 0, len: 2 << 20, kind: RegionKind::Ram { offset: 0 }, name: "ram".into() })
            .unwrap();
        let rom: Vec<u8> = (0..256 << 10).map(|i: usize| (i / 1024) as u8).collect();
        map_high(&mut memory, &rom).unwrap();
        fill_low_alias(&memory, &rom);
        let mut b = [0u8; 1];
        memory.read(0xffff_fff0, &mut b);
        assert_eq!(b[0], rom[rom.len() - 16], "the reset vector is the image's 16th byte from the end");
        memory.read(0xfffc_0000, &mut b);
        assert_eq!(b[0], rom[0]);
        memory.read(0xe_0000, &mut b);
        assert_eq!(b[0], rom[rom.len() - (128 << 10)]);
        memory.write(0xffff_fff0, &[0x55]);
        memory.read(0xffff_fff0, &mut b);
        assert_eq!(b[0], rom[rom.len() - 16], "the high copy is read-only");
    }
}
