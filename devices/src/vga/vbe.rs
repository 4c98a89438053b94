//! The Bochs VBE "DISPI" interface: an index port (0x1CE) and a data port (0x1CF, with
//! QEMU's alias at 0x1D0) through which SeaBIOS's VGA BIOS and Linux's `bochs` DRM
//! driver set linear-framebuffer modes.
//!
//! Registers and bits from Bochs `iodev/display/vga.h` (`VBE_DISPI_*`), as documented
//! by the Bochs and QEMU VGA sources. Model choices:
//! - Geometry registers accept any 16-bit value while disabled; the mode is checked
//!   when enabled. A mode that does not fit ([`MAX_XRES`], [`MAX_YRES`], a known bpp,
//!   video memory) is rejected with a warning: ENABLE reads back without its ENABLED
//!   bit and the VGA keeps showing what it showed. While enabled, a geometry or offset
//!   write that would make the mode invalid is refused (the register keeps its value).
//! - VIRT_HEIGHT is clamped to what the memory holds and the display offsets are reset
//!   when the visible area would pass the end of memory, as QEMU does.
//! - Enabling a mode sets GR06 to graphics with the 64 KiB window at 0xA0000, so the
//!   banked window answers there; a 4 bpp mode also sets SR04 to planar addressing.

use super::graphics::GR_MISC;
use super::planes::Vram;
use super::sequencer::SR_MEMORY_MODE;
use super::{lock, SharedVga, Vga};
use rx86_core::bus::BusDevice;

/// Index of the ID register.
pub const VBE_DISPI_INDEX_ID: u16 = 0x0;
/// Horizontal resolution.
pub const VBE_DISPI_INDEX_XRES: u16 = 0x1;
/// Vertical resolution.
pub const VBE_DISPI_INDEX_YRES: u16 = 0x2;
/// Bits per pixel.
pub const VBE_DISPI_INDEX_BPP: u16 = 0x3;
/// Enable flags.
pub const VBE_DISPI_INDEX_ENABLE: u16 = 0x4;
/// 64 KiB bank shown in the 0xA0000 window.
pub const VBE_DISPI_INDEX_BANK: u16 = 0x5;
/// Virtual (scanline) width in pixels.
pub const VBE_DISPI_INDEX_VIRT_WIDTH: u16 = 0x6;
/// Virtual height in lines.
pub const VBE_DISPI_INDEX_VIRT_HEIGHT: u16 = 0x7;
/// Display start column.
pub const VBE_DISPI_INDEX_X_OFFSET: u16 = 0x8;
/// Display start line.
pub const VBE_DISPI_INDEX_Y_OFFSET: u16 = 0x9;
/// Video memory size in 64 KiB units (read-only).
pub const VBE_DISPI_INDEX_VIDEO_MEMORY_64K: u16 = 0xa;
/// Number of DISPI registers.
const VBE_DISPI_INDEX_COUNT: usize = 0xb;

/// The first interface version.
pub const VBE_DISPI_ID0: u16 = 0xb0c0;
/// The newest interface version this device accepts (VIDEO_MEMORY_64K exists).
pub const VBE_DISPI_ID5: u16 = 0xb0c5;

/// ENABLE bit 0: a VBE mode is displayed.
pub const VBE_DISPI_ENABLED: u16 = 0x01;
/// ENABLE bit 1: XRES/YRES/BPP read back the maximum values.
pub const VBE_DISPI_GETCAPS: u16 = 0x02;
/// ENABLE bit 5: the DAC uses 8-bit components.
pub const VBE_DISPI_8BIT_DAC: u16 = 0x20;
/// ENABLE bit 6: the linear framebuffer is used (informational here: it always decodes).
pub const VBE_DISPI_LFB_ENABLED: u16 = 0x40;
/// ENABLE bit 7: keep video memory contents on enable.
pub const VBE_DISPI_NOCLEARMEM: u16 = 0x80;
/// The ENABLE bits that are stored.
const VBE_DISPI_ENABLE_BITS: u16 =
    VBE_DISPI_ENABLED | VBE_DISPI_GETCAPS | VBE_DISPI_8BIT_DAC | VBE_DISPI_LFB_ENABLED | VBE_DISPI_NOCLEARMEM;

/// Largest horizontal resolution (QEMU's `VBE_DISPI_MAX_XRES`; Bochs says 2560). Video
/// memory is the tighter limit in practice; GETCAPS reports this value, and SeaBIOS
/// and Linux's `bochs` driver offer modes up to it.
pub const MAX_XRES: u16 = 16000;
/// Largest vertical resolution (QEMU's `VBE_DISPI_MAX_YRES`).
pub const MAX_YRES: u16 = 12000;
/// Largest bits per pixel.
pub const MAX_BPP: u16 = 32;
/// Size of one bank of the 0xA0000 window.
pub const BANK_SIZE: usize = 0x1_0000;

/// Port offsets of the DISPI device (board base 0x1CE).
const PORT_INDEX: u64 = 0;

/// GR06 value VBE modes set: graphics, memory map 1 (0xA0000, 64 KiB).
const GR06_VBE: u8 = 0b0000_0101;
/// SR04 value 4 bpp VBE modes set: planar (odd/even off, chain-4 off), extended memory.
const SR04_VBE_PLANAR: u8 = 0b0000_0110;

/// A validated VBE mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VbeMode {
    /// Visible width in pixels.
    pub width: u32,
    /// Visible height in lines.
    pub height: u32,
    /// Bits per pixel: 4, 8, 15, 16, 24 or 32.
    pub bpp: u32,
    /// Bytes of video memory per scanline of the virtual screen (4 bpp: the four
    /// interleaved planes' bytes together).
    pub stride: usize,
    /// Byte offset of the first visible pixel (X/Y offset applied).
    pub start: usize,
}

/// Bytes per scanline of `virt_width` pixels at `bpp` (4 bpp: four planes of
/// `virt_width / 8` bytes interleaved).
fn line_bytes(virt_width: usize, bpp: u16) -> usize {
    match bpp {
        4 => virt_width / 2,
        15 => virt_width * 2,
        _ => virt_width * usize::from(bpp).div_ceil(8),
    }
}

/// The DISPI registers.
#[derive(Debug, Clone)]
pub struct Vbe {
    index: u16,
    regs: [u16; VBE_DISPI_INDEX_COUNT],
    mode: Option<VbeMode>,
}

impl Default for Vbe {
    fn default() -> Self {
        let mut regs = [0; VBE_DISPI_INDEX_COUNT];
        regs[usize::from(VBE_DISPI_INDEX_ID)] = VBE_DISPI_ID5;
        regs[usize::from(VBE_DISPI_INDEX_BPP)] = 8;
        Vbe { index: 0, regs, mode: None }
    }
}

impl Vbe {
    /// The mode on display, if any.
    pub fn mode(&self) -> Option<VbeMode> {
        self.mode
    }

    /// The stored value of register `index` (0 for nonexistent ones).
    pub fn reg(&self, index: u16) -> u16 {
        self.regs.get(usize::from(index)).copied().unwrap_or(0)
    }

    /// The bank's byte offset in video memory.
    pub fn bank_offset(&self) -> usize {
        usize::from(self.regs[usize::from(VBE_DISPI_INDEX_BANK)]) * BANK_SIZE
    }

    /// Checks the registers against `vram` and computes the mode; clamps VIRT_HEIGHT and
    /// resets offsets that would show memory past the end, as QEMU does.
    fn validate(&mut self, vram_len: usize) -> Result<VbeMode, String> {
        let r = |i: u16| self.regs[usize::from(i)];
        let (xres, yres, bpp) = (r(VBE_DISPI_INDEX_XRES), r(VBE_DISPI_INDEX_YRES), r(VBE_DISPI_INDEX_BPP));
        if ![4, 8, 15, 16, 24, 32].contains(&bpp) {
            return Err(format!("unsupported bpp {bpp}"));
        }
        if xres == 0 || xres > MAX_XRES || yres == 0 || yres > MAX_YRES {
            return Err(format!("resolution {xres}x{yres} outside 1x1..{MAX_XRES}x{MAX_YRES}"));
        }
        if bpp == 4 && xres % 8 != 0 {
            return Err(format!("4 bpp width {xres} is not a multiple of 8"));
        }
        let mut virt_width = r(VBE_DISPI_INDEX_VIRT_WIDTH).max(xres);
        if bpp == 4 {
            virt_width &= !7;
        }
        let stride = line_bytes(usize::from(virt_width), bpp);
        let max_lines = vram_len / stride;
        if usize::from(yres) > max_lines {
            return Err(format!(
                "{xres}x{yres}x{bpp} (stride {stride}) needs more than {vram_len} bytes of video memory"
            ));
        }
        let virt_height = r(VBE_DISPI_INDEX_VIRT_HEIGHT).max(yres).min(max_lines.min(0xffff) as u16);
        let bytes_per_pixel = usize::from(bpp).div_ceil(8);
        let mut x_offset = usize::from(r(VBE_DISPI_INDEX_X_OFFSET));
        let mut y_offset = usize::from(r(VBE_DISPI_INDEX_Y_OFFSET));
        let end = |x: usize, y: usize| y * stride + x * bytes_per_pixel + usize::from(yres) * stride;
        if end(x_offset, y_offset) > vram_len {
            y_offset = 0;
            if end(x_offset, 0) > vram_len {
                x_offset = 0;
            }
        }
        self.regs[usize::from(VBE_DISPI_INDEX_VIRT_WIDTH)] = virt_width;
        self.regs[usize::from(VBE_DISPI_INDEX_VIRT_HEIGHT)] = virt_height;
        self.regs[usize::from(VBE_DISPI_INDEX_X_OFFSET)] = x_offset as u16;
        self.regs[usize::from(VBE_DISPI_INDEX_Y_OFFSET)] = y_offset as u16;
        let start =
            if bpp == 4 { y_offset * stride + x_offset / 2 } else { y_offset * stride + x_offset * bytes_per_pixel };
        Ok(VbeMode { width: u32::from(xres), height: u32::from(yres), bpp: u32::from(bpp), stride, start })
    }
}

impl Vga {
    /// Port 0x1CE read: the DISPI index.
    pub fn vbe_index(&self) -> u16 {
        self.vbe.index
    }

    /// Port 0x1CE write: selects a DISPI register.
    pub fn set_vbe_index(&mut self, index: u16) {
        self.vbe.index = index;
    }

    /// Port 0x1CF read: the selected DISPI register.
    pub fn vbe_read(&self) -> u16 {
        let index = self.vbe.index;
        let caps = self.vbe.reg(VBE_DISPI_INDEX_ENABLE) & VBE_DISPI_GETCAPS != 0;
        match index {
            VBE_DISPI_INDEX_XRES if caps => MAX_XRES,
            VBE_DISPI_INDEX_YRES if caps => MAX_YRES,
            VBE_DISPI_INDEX_BPP if caps => MAX_BPP,
            VBE_DISPI_INDEX_VIDEO_MEMORY_64K => (self.vram.len() / BANK_SIZE).min(0xffff) as u16,
            _ => self.vbe.reg(index),
        }
    }

    /// Port 0x1CF write: the selected DISPI register.
    pub fn vbe_write(&mut self, value: u16) {
        let index = self.vbe.index;
        match index {
            VBE_DISPI_INDEX_ID => {
                if (VBE_DISPI_ID0..=VBE_DISPI_ID5).contains(&value) {
                    self.vbe.regs[usize::from(index)] = value;
                } else {
                    log::warn!("vga: VBE ID {value:#06x} is not supported (B0C0-B0C5)");
                }
            }
            VBE_DISPI_INDEX_ENABLE => {
                self.text_watch.layout_changed();
                self.vbe_enable(value);
            }
            VBE_DISPI_INDEX_BANK => {
                let banks = self.vram.len() / BANK_SIZE;
                if usize::from(value) >= banks {
                    log::warn!("vga: VBE bank {value} past the {banks} banks of video memory; wrapped");
                }
                self.vbe.regs[usize::from(index)] = (usize::from(value) % banks) as u16;
            }
            VBE_DISPI_INDEX_VIDEO_MEMORY_64K => log::debug!("vga: write to read-only VBE VIDEO_MEMORY_64K dropped"),
            VBE_DISPI_INDEX_XRES..=VBE_DISPI_INDEX_BPP | VBE_DISPI_INDEX_VIRT_WIDTH..=VBE_DISPI_INDEX_Y_OFFSET => {
                let previous = std::mem::replace(&mut self.vbe.regs[usize::from(index)], value);
                if self.vbe.mode.is_some() {
                    match self.vbe.validate(self.vram.len()) {
                        Ok(mode) => self.vbe.mode = Some(mode),
                        Err(why) => {
                            log::warn!("vga: VBE register {index:#x} = {value} rejected, mode kept: {why}");
                            self.vbe.regs[usize::from(index)] = previous;
                        }
                    }
                }
            }
            _ => log::warn!("vga: write {value:#06x} to unknown VBE register {index:#x} dropped"),
        }
    }

    fn vbe_enable(&mut self, value: u16) {
        let value = value & VBE_DISPI_ENABLE_BITS;
        self.dac.set_eight_bit(value & VBE_DISPI_8BIT_DAC != 0);
        if value & VBE_DISPI_ENABLED == 0 {
            self.vbe.mode = None;
            self.vbe.regs[usize::from(VBE_DISPI_INDEX_ENABLE)] = value;
            return;
        }
        let was_enabled = self.vbe.mode.is_some();
        if !was_enabled {
            self.vbe.regs[usize::from(VBE_DISPI_INDEX_X_OFFSET)] = 0;
            self.vbe.regs[usize::from(VBE_DISPI_INDEX_Y_OFFSET)] = 0;
            self.vbe.regs[usize::from(VBE_DISPI_INDEX_BANK)] = 0;
        }
        match self.vbe.validate(self.vram.len()) {
            Ok(mode) => {
                if !was_enabled && value & VBE_DISPI_NOCLEARMEM == 0 {
                    self.vram.clear(0, mode.stride * mode.height as usize);
                }
                self.graphics.set(GR_MISC, GR06_VBE);
                if mode.bpp == 4 {
                    self.sequencer.set(SR_MEMORY_MODE, SR04_VBE_PLANAR);
                }
                self.vbe.mode = Some(mode);
                self.vbe.regs[usize::from(VBE_DISPI_INDEX_ENABLE)] = value;
            }
            Err(why) => {
                log::warn!("vga: VBE mode rejected: {why}");
                self.vbe.regs[usize::from(VBE_DISPI_INDEX_ENABLE)] = value & !VBE_DISPI_ENABLED;
                self.vbe.mode = None;
            }
        }
    }

    /// Linear framebuffer read of `size` bytes at byte `offset` (0 past the end).
    pub fn lfb_read(&self, offset: u64, size: u8) -> u64 {
        read_linear(&self.vram, offset, size)
    }

    /// Linear framebuffer write of `size` bytes at byte `offset` (dropped past the end).
    pub fn lfb_write(&mut self, offset: u64, size: u8, value: u64) {
        write_linear(&mut self.vram, offset, size, value);
    }
}

/// Little-endian read of `size` video memory bytes at `offset`; 0 past the end.
fn read_linear(vram: &Vram, offset: u64, size: u8) -> u64 {
    (0..u64::from(size.min(8))).rev().fold(0, |acc, i| {
        let byte = usize::try_from(offset.wrapping_add(i)).map_or(0, |a| vram.byte(a));
        (acc << 8) | u64::from(byte)
    })
}

/// Little-endian write of `size` video memory bytes at `offset`; bytes past the end
/// are dropped with a log line.
fn write_linear(vram: &mut Vram, offset: u64, size: u8, value: u64) {
    for i in 0..u64::from(size.min(8)) {
        let written = usize::try_from(offset.wrapping_add(i)).is_ok_and(|a| vram.set_byte(a, (value >> (8 * i)) as u8));
        if !written {
            log::debug!("vga: linear write past video memory at {:#x} dropped", offset.wrapping_add(i));
        }
    }
}

/// The DISPI ports as a bus device: offset 0 = index (0x1CE), offsets 1 and 2 = data
/// (0x1CF, and 0x1D0 as QEMU also decodes). Map it at 0x1CE with length 3.
pub struct VbePorts {
    vga: SharedVga,
}

impl VbePorts {
    /// The DISPI ports of `vga`.
    pub fn new(vga: SharedVga) -> Self {
        VbePorts { vga }
    }
}

impl BusDevice for VbePorts {
    fn read(&mut self, offset: u64, _size: u8) -> u64 {
        let vga = lock(&self.vga);
        u64::from(if offset == PORT_INDEX { vga.vbe_index() } else { vga.vbe_read() })
    }

    fn write(&mut self, offset: u64, _size: u8, value: u64) {
        let mut vga = lock(&self.vga);
        if offset == PORT_INDEX {
            vga.set_vbe_index(value as u16);
        } else {
            vga.vbe_write(value as u16);
        }
    }
}
