//! The reset test guest (`tests/guests/boot-reset/boot.S`): a floppy boot sector that writes a
//! mark to sector 1, resets the machine through the 8042, and after the reset reports whether the
//! mark is still there.

use crate::boot_media::{assemble_boot_sector, unique_path, FLOPPY_SECTORS, SECTOR_SIZE};
use crate::guests::guest_sources_root;
use std::fs;
use std::io;
use std::path::PathBuf;

/// What the guest prints before it resets the machine.
pub const RESETTING: &str = "RX86-RESET: resetting";
/// What it prints when the mark written before the reset is on the disk after it.
pub const WRITE_KEPT: &str = "RX86-RESET: write kept";
/// The byte it writes at the start of sector 1.
pub const MARK: u8 = 0x5a;

/// Assembles the guest and returns a fresh 1.44 MB floppy image in the temp folder (the boot
/// sector, then zeros), named after `tag`; the caller owns it and may let the guest write it.
pub fn reset_floppy_image(tag: &str) -> io::Result<PathBuf> {
    let tmp = std::env::temp_dir();
    let build_dir = unique_path(&tmp, &format!("rx86-build-reset-{tag}"));
    fs::create_dir_all(&build_dir)?;
    let sector = assemble_boot_sector(&guest_sources_root().join("boot-reset").join("boot.S"), &["--32"], &build_dir);
    // Best effort: a leftover build folder only wastes space.
    let _ = fs::remove_dir_all(&build_dir);
    let mut image = sector?;
    image.resize(FLOPPY_SECTORS as usize * SECTOR_SIZE, 0);
    let path = unique_path(&tmp, &format!("rx86-reset-{tag}.img"));
    fs::write(&path, image)?;
    Ok(path)
}
