//! The VGA as a PCI function, as QEMU's `-vga std` ("VGA", 1234:1111, class 0300):
//! BAR0 is the prefetchable linear framebuffer (all of video memory), BAR2 a 4 KiB
//! MMIO window with the VGA registers at 0x400, the Bochs DISPI registers at 0x500 and
//! QEMU's extended registers at 0x600 — the layout Linux's `bochs` DRM driver uses
//! (`drivers/gpu/drm/tiny/bochs.c`) and SeaBIOS's VGA BIOS finds the LFB through.
//!
//! The board decodes [`VgaLfb`] at BAR0 and [`VgaMmio`] at BAR2 wherever firmware puts them
//! (the memory [`crate::pci::PciWindow`]). The expansion ROM BAR, when the board gives the VGA a VGA
//! BIOS image ([`PciVga::set_expansion_rom`]), lets firmware such as SeaBIOS find and run it;
//! without one it reads 0 (no ROM).

use super::{lock, SharedVga};
use crate::pci::config_space::{COMMAND, COMMAND_MEMORY_SPACE};
use crate::pci::{BarKind, ConfigSpace, PciError, PciFunction, PciId};
use rx86_core::bus::BusDevice;

/// QEMU's PCI vendor ID.
const VENDOR_QEMU: u16 = 0x1234;
/// The Bochs/QEMU standard VGA.
const DEVICE_STD_VGA: u16 = 0x1111;
/// Revision 2 announces QEMU's extended registers at BAR2 + 0x600.
const REVISION_QEXT: u8 = 2;
/// Class 03 (display), sub-class 00 (VGA compatible), programming interface 00.
const CLASS_VGA: u32 = 0x03_00_00;
/// Subsystem vendor ID register.
const SUBSYSTEM_VENDOR_ID: u8 = 0x2c;
/// Subsystem ID register.
const SUBSYSTEM_ID: u8 = 0x2e;
/// Subsystem vendor (Red Hat / QEMU, as QEMU reports).
const SUBSYSTEM_VENDOR_QEMU: u16 = 0x1af4;
/// Subsystem ID QEMU reports.
const SUBSYSTEM_QEMU: u16 = 0x1100;
/// BAR of the linear framebuffer.
pub const VGA_LFB_BAR: usize = 0;
/// BAR of the MMIO register window.
pub const VGA_MMIO_BAR: usize = 2;
/// Size of the MMIO register window.
pub const VGA_MMIO_BAR_SIZE: u64 = 0x1000;

// Offsets in the MMIO BAR (QEMU `hw/display/vga-pci.c`).
/// EDID blob (0x000-0x3FF); reads 0, which drivers take as "no EDID".
const MMIO_EDID_END: u64 = 0x400;
/// VGA ports 0x3C0-0x3DF.
const MMIO_VGA_PORTS: u64 = 0x400;
/// Length of the VGA port block.
const MMIO_VGA_PORTS_LEN: u64 = 0x20;
/// The first VGA port the block maps.
const MMIO_VGA_FIRST_PORT: u16 = 0x3c0;
/// DISPI registers, 16 bits each, index * 2.
const MMIO_DISPI: u64 = 0x500;
/// Length of the DISPI block (registers 0x0-0xA).
const MMIO_DISPI_LEN: u64 = 0x16;
/// QEMU extended registers: size of the block (read-only).
const MMIO_QEXT_SIZE: u64 = 0x600;
/// QEMU extended registers: framebuffer byte order.
const MMIO_QEXT_BYTEORDER: u64 = 0x604;
/// Size of the extended register block.
const QEXT_SIZE: u64 = 8;
/// Byte order value for little-endian framebuffers (the only one supported).
const QEXT_LITTLE_ENDIAN: u32 = 0x1e1e_1e1e;

/// The VGA's PCI configuration space.
pub struct PciVga {
    config: ConfigSpace,
}

impl PciVga {
    /// The function for a VGA with `vram_size` bytes of video memory (the BAR0 size;
    /// pass [`super::Vga::vram_size`]).
    pub fn new(vram_size: usize) -> Result<Self, PciError> {
        let mut config = ConfigSpace::new(PciId {
            vendor_id: VENDOR_QEMU,
            device_id: DEVICE_STD_VGA,
            revision_id: REVISION_QEXT,
            class_code: CLASS_VGA,
            header_type: 0,
        });
        config.set_u16(SUBSYSTEM_VENDOR_ID, SUBSYSTEM_VENDOR_QEMU);
        config.set_u16(SUBSYSTEM_ID, SUBSYSTEM_QEMU);
        config.set_bar(VGA_LFB_BAR, BarKind::Memory32 { prefetchable: true }, vram_size as u64)?;
        config.set_bar(VGA_MMIO_BAR, BarKind::Memory32 { prefetchable: false }, VGA_MMIO_BAR_SIZE)?;
        Ok(PciVga { config })
    }

    /// Gives the function an expansion ROM BAR of `size` bytes (the board decodes the image
    /// behind it, see `crate::pci::ExpansionRom`).
    pub fn set_expansion_rom(&mut self, size: u64) -> Result<(), PciError> {
        self.config.set_expansion_rom(size)
    }

    /// Does what firmware does before an OS starts: puts BAR0 (the framebuffer) at
    /// `lfb` and BAR2 (the register window) at `mmio` and enables memory decoding.
    pub fn firmware_setup(&mut self, lfb: u32, mmio: u32) {
        use crate::pci::config_space::BAR0;
        self.config.write(BAR0 + 4 * VGA_LFB_BAR as u8, 4, lfb);
        self.config.write(BAR0 + 4 * VGA_MMIO_BAR as u8, 4, mmio);
        let command = self.config.u16_at(COMMAND) | COMMAND_MEMORY_SPACE;
        self.config.write(COMMAND, 2, u32::from(command));
    }
}

impl PciFunction for PciVga {
    fn read_config(&mut self, offset: u8, len: u8) -> u32 {
        self.config.read(offset, len)
    }

    fn write_config(&mut self, offset: u8, len: u8, value: u32) {
        self.config.write(offset, len, value);
    }
}

/// The linear framebuffer (BAR0) as a bus device: video memory, byte-addressed.
pub struct VgaLfb {
    vga: SharedVga,
}

impl VgaLfb {
    /// The framebuffer of `vga`; map it with length [`super::Vga::vram_size`].
    pub fn new(vga: SharedVga) -> Self {
        VgaLfb { vga }
    }
}

impl BusDevice for VgaLfb {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        lock(&self.vga).lfb_read(offset, size)
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        lock(&self.vga).lfb_write(offset, size, value);
    }
}

/// The MMIO register window (BAR2) as a bus device.
pub struct VgaMmio {
    vga: SharedVga,
}

impl VgaMmio {
    /// The register window of `vga`; map it with length [`VGA_MMIO_BAR_SIZE`].
    pub fn new(vga: SharedVga) -> Self {
        VgaMmio { vga }
    }
}

impl BusDevice for VgaMmio {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        let mut vga = lock(&self.vga);
        match offset {
            0..MMIO_EDID_END => 0,
            MMIO_VGA_PORTS..=0x41f if offset + u64::from(size) <= MMIO_VGA_PORTS + MMIO_VGA_PORTS_LEN => {
                (0..u64::from(size)).fold(0, |acc, i| {
                    let port = MMIO_VGA_FIRST_PORT + (offset - MMIO_VGA_PORTS + i) as u16;
                    acc | u64::from(vga.read_port(port)) << (8 * i)
                })
            }
            MMIO_DISPI..=0x515 if offset + u64::from(size) <= MMIO_DISPI + MMIO_DISPI_LEN => {
                let saved = vga.vbe_index();
                vga.set_vbe_index(((offset - MMIO_DISPI) / 2) as u16);
                let value = vga.vbe_read();
                vga.set_vbe_index(saved);
                u64::from(value)
            }
            MMIO_QEXT_SIZE => QEXT_SIZE,
            MMIO_QEXT_BYTEORDER => u64::from(QEXT_LITTLE_ENDIAN),
            _ => {
                log::debug!("vga: MMIO read of {size} bytes at unimplemented offset {offset:#x}");
                0
            }
        }
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        let mut vga = lock(&self.vga);
        match offset {
            MMIO_VGA_PORTS..=0x41f if offset + u64::from(size) <= MMIO_VGA_PORTS + MMIO_VGA_PORTS_LEN => {
                for i in 0..u64::from(size) {
                    let port = MMIO_VGA_FIRST_PORT + (offset - MMIO_VGA_PORTS + i) as u16;
                    vga.write_port(port, (value >> (8 * i)) as u8);
                }
            }
            MMIO_DISPI..=0x515 if offset + u64::from(size) <= MMIO_DISPI + MMIO_DISPI_LEN => {
                let saved = vga.vbe_index();
                vga.set_vbe_index(((offset - MMIO_DISPI) / 2) as u16);
                vga.vbe_write(value as u16);
                vga.set_vbe_index(saved);
            }
            MMIO_QEXT_BYTEORDER if value as u32 == QEXT_LITTLE_ENDIAN => {}
            MMIO_QEXT_BYTEORDER => {
                log::warn!("vga: framebuffer byte order {value:#x} unsupported (little-endian only)")
            }
            _ => log::debug!("vga: MMIO write {value:#x} of {size} bytes at offset {offset:#x} dropped"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::config_space::BAR0;
    use crate::vga::Vga;

    #[test]
    fn config_space_identity_and_bars() {
        let mut f = PciVga::new(16 << 20).unwrap();
        assert_eq!(f.read_config(0, 4), 0x1111_1234);
        assert_eq!(f.read_config(0x08, 4), 0x0300_0002, "class 0300, revision 2");
        assert_eq!(f.read_config(SUBSYSTEM_VENDOR_ID, 4), 0x1100_1af4);
        f.write_config(BAR0, 4, u32::MAX);
        assert_eq!(f.read_config(BAR0, 4), 0xff00_0008, "16 MiB prefetchable memory");
        f.write_config(BAR0 + 8, 4, u32::MAX);
        assert_eq!(f.read_config(BAR0 + 8, 4), 0xffff_f000, "4 KiB non-prefetchable");
        f.write_config(BAR0, 4, 0xfd00_0000);
        f.write_config(BAR0 + 8, 4, 0xfebf_f000);
        assert_eq!(f.read_config(BAR0, 4), 0xfd00_0008);
        assert_eq!(f.read_config(BAR0 + 8, 4), 0xfebf_f000, "anywhere 4 KiB-aligned");
    }

    #[test]
    fn firmware_setup_programs_both_bars_and_enables_memory_space() {
        let mut f = PciVga::new(16 << 20).unwrap();
        f.firmware_setup(0xfd00_0000, 0xfebf_0000);
        assert_eq!(f.read_config(BAR0, 4) & !0xf, 0xfd00_0000);
        assert_eq!(f.read_config(BAR0 + 8, 4) & !0xf, 0xfebf_0000);
        assert_ne!(f.read_config(COMMAND, 2) as u16 & COMMAND_MEMORY_SPACE, 0);
    }

    /// The register layout Linux's bochs driver uses through BAR2.
    #[test]
    fn mmio_window_reaches_dispi_and_vga_ports() {
        let vga = Vga::new_shared(16 << 20);
        let mut mmio = VgaMmio::new(vga.clone());
        assert_eq!(mmio.read(MMIO_DISPI, 2), u64::from(super::super::vbe::VBE_DISPI_ID5));
        assert_eq!(mmio.read(MMIO_DISPI + 2 * 0xa, 2), 256, "16 MiB in 64 KiB units");
        mmio.write(MMIO_DISPI + 2, 2, 640);
        assert_eq!(lock(&vga).vbe.reg(1), 640);
        assert_eq!(lock(&vga).vbe_index(), 0, "port index untouched");
        mmio.write(MMIO_VGA_PORTS + 0x08, 1, 5);
        assert_eq!(lock(&vga).dac().write_index(), 5, "0x3C8 at 0x408");
        assert_eq!(mmio.read(MMIO_VGA_PORTS + 0x08, 1), 5);
        assert_eq!(mmio.read(MMIO_QEXT_SIZE, 4), 8);
        assert_eq!(mmio.read(0, 4), 0, "no EDID");
        mmio.write(0xfff, 4, 1);
        let mut lfb = VgaLfb::new(vga.clone());
        lfb.write(0x10, 4, 0x1122_3344);
        assert_eq!(lfb.read(0x11, 2), 0x2233);
        assert_eq!(lfb.read((16 << 20) - 1, 4), 0, "past the end reads 0");
        lfb.write(u64::MAX, 8, u64::MAX);
    }
}
