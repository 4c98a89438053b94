//! The VGA mode guest (`tests/guests/vga-modes/boot.S`): a boot sector that sets a video
//! mode through the BIOS (mode 13h, mode 12h, or a VBE linear-framebuffer mode), draws a
//! known pattern and ends the run through isa-debug-exit, for screenshot tests.

use crate::boot_media::{assemble_boot_sector, unique_path};
use crate::guests::{guest_output_dir, guest_sources_root};
use std::fs;
use std::io;
use std::path::PathBuf;

/// Bytes of the 1.44 MB floppy image the boot sector sits on.
const FLOPPY_BYTES: usize = 1_474_560;

/// Which mode the guest draws in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VgaModeGuest {
    /// INT 10h AX=0013h, 320x200x256: pixel (x, y) = (x + 2y) mod 256.
    Mode13h,
    /// INT 10h AX=0012h, 640x480x16: colour (x/40 + y/30) mod 16 in 8-pixel bytes.
    Mode12h,
    /// VBE mode 112h with the linear framebuffer, 640x480x32: x<<16 | y<<8 | (x^y).
    VbeLinear,
}

impl VgaModeGuest {
    /// The assembler switch of the variant.
    fn symbol(self) -> &'static str {
        match self {
            VgaModeGuest::Mode13h => "MODE13=1",
            VgaModeGuest::Mode12h => "MODE12=1",
            VgaModeGuest::VbeLinear => "VBE=1",
        }
    }

    /// A short name (file names, golden images).
    pub fn name(self) -> &'static str {
        match self {
            VgaModeGuest::Mode13h => "mode13h",
            VgaModeGuest::Mode12h => "mode12h",
            VgaModeGuest::VbeLinear => "vbe-640x480x32",
        }
    }
}

/// Builds the floppy image of `guest` into the guest output folder and returns its path.
pub fn vga_mode_image(guest: VgaModeGuest) -> io::Result<PathBuf> {
    let source = guest_sources_root().join("vga-modes").join("boot.S");
    let out = guest_output_dir();
    let build_dir = unique_path(&out, &format!(".build-vga-{}", guest.name()));
    fs::create_dir_all(&build_dir)?;
    let sector = assemble_boot_sector(&source, &["--32", "--defsym", guest.symbol()], &build_dir);
    let _ = fs::remove_dir_all(&build_dir);
    let mut image = sector?;
    image.resize(FLOPPY_BYTES, 0);
    let path = unique_path(&out, &format!("vga-{}.img", guest.name()));
    fs::write(&path, image)?;
    Ok(path)
}
