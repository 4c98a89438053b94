//! rx86 test support: building our own test guests and boot media, fetching Debian fixtures, running
//! the `rx86` binary, the conformance runner and the differential tester.

pub mod boot_media;
pub mod boot_reset;
pub mod cpio;
pub mod differential;
pub mod fixtures;
pub mod fuzzing;
pub mod gdb;
pub mod golden;
pub mod guests;
pub mod nested;
pub mod rx86_bin;
pub mod text_cells;
pub mod vga_modes;
