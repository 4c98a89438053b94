//! The reset test guest (`tests/guests/boot-reset/boot.S`): a floppy boot sector that writes a
//! mark to sector 1, resets the machine through the 8042, and after the reset reports whether the
//! mark is still there.

use crate::boot_media::boot_sector_floppy;
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
    boot_sector_floppy("boot-reset", tag)
}
