//! IBM VGA with the Bochs VBE extensions, as QEMU's `-vga std` presents it.
//!
//! References: the FreeVGA project's VGA register and memory pages (cited per module),
//! the IBM VGA technical reference, and Bochs `iodev/display/vga.h` for the VBE DISPI
//! interface. One [`Vga`] holds the state; thin bus devices share it:
//!
//! | device          | where the board maps it                         | module        |
//! |-----------------|--------------------------------------------------|---------------|
//! | [`VgaPorts`]    | ports 0x3B0-0x3DF (base 0x3B0, length 0x30)      | this module   |
//! | [`VgaMemory`]   | MMIO 0xA0000-0xBFFFF (base 0xA0000, length 0x20000) | `memory`   |
//! | [`VbePorts`]    | ports 0x1CE-0x1D0 (base 0x1CE, length 3)         | `vbe`         |
//! | [`VgaLfb`]      | MMIO at PCI BAR0 (length = video memory size)    | `pci_vga`     |
//! | [`VgaMmio`]     | MMIO at PCI BAR2 (length 4 KiB)                  | `pci_vga`     |
//! | [`PciVga`]      | PCI function (1234:1111, class 0300)             | `pci_vga`     |
//!
//! The frontend calls [`Vga::render`] (or [`Vga::render_into`]) once per displayed
//! frame, and tests read text screens with [`Vga::text_snapshot`].
//!
//! Port decoding: the CRTC and input status 1 answer at 0x3D4/0x3D5/0x3DA when the
//! miscellaneous output register's I/O address select bit is set (colour) and at
//! 0x3B4/0x3B5/0x3BA when it is clear (monochrome); the other set reads all-ones and
//! drops writes, as on the IBM VGA. Word and dword accesses split into byte accesses at
//! consecutive ports (so `out 0x3C4, ax` writes the index then the data).

pub mod attribute;
pub mod crtc;
pub mod dac;
mod font;
pub mod graphics;
mod memory;
mod modes;
mod pci_vga;
mod planes;
mod render;
pub mod sequencer;
mod text;
pub mod vbe;
mod watch;

pub use attribute::AttributeController;
pub use crtc::{AddressMode, Crtc};
pub use dac::Dac;
pub use font::{FONT_8X16, FONT_8X8};
pub use graphics::{GraphicsController, MemoryMap};
pub use memory::VgaMemory;
pub use modes::StandardMode;
pub use pci_vga::{PciVga, VgaLfb, VgaMmio, VGA_LFB_BAR, VGA_MMIO_BAR, VGA_MMIO_BAR_SIZE};
pub use planes::{Vram, DEFAULT_VRAM_SIZE, MAX_VRAM_SIZE, MIN_VRAM_SIZE};
pub use render::Frame;
pub use sequencer::Sequencer;
pub use text::{cp437_to_char, TextCell, TextScreen};
pub use vbe::{VbeMode, VbePorts};
pub use watch::TextWatch;

use rx86_core::bus::BusDevice;
use std::sync::{Arc, Mutex, MutexGuard};

/// Base of the VGA port range the board maps [`VgaPorts`] at.
pub const VGA_PORT_BASE: u16 = 0x3b0;
/// Length of the VGA port range (0x3B0-0x3DF).
pub const VGA_PORT_LEN: u16 = 0x30;
/// Physical base of the legacy memory window.
pub const VGA_WINDOW_BASE: u64 = 0xa_0000;
/// Length of the legacy memory window (0xA0000-0xBFFFF).
pub const VGA_WINDOW_LEN: u64 = 0x2_0000;
/// Base of the Bochs VBE DISPI ports.
pub const VBE_PORT_BASE: u16 = 0x1ce;
/// Length of the DISPI port range (index, data, data alias).
pub const VBE_PORT_LEN: u16 = 3;

// Port offsets from 0x3B0.
/// 0x3B4: CRTC index (monochrome).
const MONO_CRTC_INDEX: u16 = 0x04;
/// 0x3B5: CRTC data (monochrome).
const MONO_CRTC_DATA: u16 = 0x05;
/// 0x3BA: input status 1 (read) / feature control (write), monochrome.
const MONO_INPUT_STATUS_1: u16 = 0x0a;
/// 0x3C0: attribute index/data write, index read.
const ATTRIBUTE_INDEX: u16 = 0x10;
/// 0x3C1: attribute data read.
const ATTRIBUTE_DATA_READ: u16 = 0x11;
/// 0x3C2: miscellaneous output (write) / input status 0 (read).
const MISC_OUTPUT_WRITE: u16 = 0x12;
/// 0x3C3: video subsystem enable.
const VIDEO_ENABLE: u16 = 0x13;
/// 0x3C4: sequencer index.
const SEQUENCER_INDEX: u16 = 0x14;
/// 0x3C5: sequencer data.
const SEQUENCER_DATA: u16 = 0x15;
/// 0x3C6: DAC pixel mask.
const DAC_PIXEL_MASK: u16 = 0x16;
/// 0x3C7: DAC read index (write) / DAC state (read).
const DAC_READ_INDEX: u16 = 0x17;
/// 0x3C8: DAC write index.
const DAC_WRITE_INDEX: u16 = 0x18;
/// 0x3C9: DAC data.
const DAC_DATA: u16 = 0x19;
/// 0x3CA: feature control read.
const FEATURE_CONTROL_READ: u16 = 0x1a;
/// 0x3CC: miscellaneous output read.
const MISC_OUTPUT_READ: u16 = 0x1c;
/// 0x3CE: graphics controller index.
const GRAPHICS_INDEX: u16 = 0x1e;
/// 0x3CF: graphics controller data.
const GRAPHICS_DATA: u16 = 0x1f;
/// 0x3D4: CRTC index (colour).
const COLOUR_CRTC_INDEX: u16 = 0x24;
/// 0x3D5: CRTC data (colour).
const COLOUR_CRTC_DATA: u16 = 0x25;
/// 0x3DA: input status 1 (read) / feature control (write), colour.
const COLOUR_INPUT_STATUS_1: u16 = 0x2a;

/// Miscellaneous output bit 0 (I/O Address Select): 1 = CRTC at 0x3Dx.
const MISC_IO_ADDRESS_SELECT: u8 = 0b0000_0001;
/// Input status 1 bit 0: display disabled (in a blanking interval).
const ST01_DISPLAY_DISABLED: u8 = 0b0000_0001;
/// Input status 1 bit 3: vertical retrace.
const ST01_VERTICAL_RETRACE: u8 = 0b0000_1000;
/// Feature control: bits 0-1 (FC0/FC1) are stored.
const FEATURE_CONTROL_BITS: u8 = 0b0000_0011;

/// The VGA shared by its bus devices and the frontend.
pub type SharedVga = Arc<Mutex<Vga>>;

/// Locks a shared VGA; a poisoned lock still gives the state (nothing is half-written
/// across a panic in this device's code).
pub(crate) fn lock(vga: &SharedVga) -> MutexGuard<'_, Vga> {
    vga.lock().unwrap_or_else(|e| e.into_inner())
}

/// The VGA state: registers, latches, video memory and the VBE registers.
#[derive(Debug, Clone)]
pub struct Vga {
    sequencer: Sequencer,
    crtc: Crtc,
    graphics: GraphicsController,
    attribute: AttributeController,
    dac: Dac,
    misc_output: u8,
    feature_control: u8,
    video_enable: u8,
    input_status_1: u8,
    latches: u32,
    vram: Vram,
    vbe: vbe::Vbe,
    text_watch: TextWatch,
}

impl Default for Vga {
    fn default() -> Self {
        Self::new(DEFAULT_VRAM_SIZE)
    }
}

impl Vga {
    /// A VGA with `vram_size` bytes of video memory (rounded up to a power of two,
    /// 256 KiB to 256 MiB), registers zero as at power-on before the BIOS runs.
    pub fn new(vram_size: usize) -> Self {
        Vga {
            sequencer: Sequencer::default(),
            crtc: Crtc::default(),
            graphics: GraphicsController::default(),
            attribute: AttributeController::default(),
            dac: Dac::default(),
            misc_output: 0,
            feature_control: 0,
            video_enable: 1,
            input_status_1: 0,
            latches: 0,
            vram: Vram::new(vram_size),
            vbe: vbe::Vbe::default(),
            text_watch: TextWatch::default(),
        }
    }

    /// A new VGA wrapped for sharing between its bus devices.
    pub fn new_shared(vram_size: usize) -> SharedVga {
        Arc::new(Mutex::new(Self::new(vram_size)))
    }

    /// The sequencer registers.
    pub fn sequencer(&self) -> &Sequencer {
        &self.sequencer
    }

    /// The CRT controller registers.
    pub fn crtc(&self) -> &Crtc {
        &self.crtc
    }

    /// The graphics controller registers.
    pub fn graphics(&self) -> &GraphicsController {
        &self.graphics
    }

    /// The attribute controller registers.
    pub fn attribute(&self) -> &AttributeController {
        &self.attribute
    }

    /// The DAC.
    pub fn dac(&self) -> &Dac {
        &self.dac
    }

    /// The DAC, for firmware services that load palettes directly (INT 10h AX=1012h).
    pub fn dac_mut(&mut self) -> &mut Dac {
        &mut self.dac
    }

    /// Machine reset: every register back to its power-on value and the VBE mode off;
    /// video memory keeps its contents, as on real hardware. The text watch (the
    /// machine's, not the card's) stays armed.
    pub fn reset(&mut self) {
        let vram = std::mem::replace(&mut self.vram, Vram::new(0));
        let text_watch = std::mem::take(&mut self.text_watch);
        *self = Vga { vram, text_watch, ..Vga::new(0) };
        self.text_watch.layout_changed();
    }

    /// The text watch, which raises its flag at stores that may complete an awaited text.
    pub fn text_watch(&self) -> &TextWatch {
        &self.text_watch
    }

    /// The text watch, to arm or disarm.
    pub fn text_watch_mut(&mut self) -> &mut TextWatch {
        &mut self.text_watch
    }

    /// Video memory.
    pub fn vram(&self) -> &Vram {
        &self.vram
    }

    /// Video memory size in bytes.
    pub fn vram_size(&self) -> usize {
        self.vram.len()
    }

    /// The VBE mode on display, if any.
    pub fn vbe_mode(&self) -> Option<VbeMode> {
        self.vbe.mode()
    }

    /// The miscellaneous output register.
    pub fn misc_output(&self) -> u8 {
        self.misc_output
    }

    /// The latches (plane n in byte n).
    pub fn latches(&self) -> u32 {
        self.latches
    }

    fn colour_io(&self) -> bool {
        self.misc_output & MISC_IO_ADDRESS_SELECT != 0
    }

    /// Reads the byte register at `port` (an absolute port 0x3B0-0x3DF). Unknown ports
    /// and the inactive mono/colour set read 0xFF.
    pub fn read_port(&mut self, port: u16) -> u8 {
        let Some(offset) = port.checked_sub(VGA_PORT_BASE).filter(|&o| o < VGA_PORT_LEN) else {
            return 0xff;
        };
        let colour = self.colour_io();
        match offset {
            MONO_CRTC_INDEX if !colour => self.crtc.index(),
            COLOUR_CRTC_INDEX if colour => self.crtc.index(),
            MONO_CRTC_DATA if !colour => self.crtc.read_data(),
            COLOUR_CRTC_DATA if colour => self.crtc.read_data(),
            MONO_INPUT_STATUS_1 if !colour => self.read_input_status_1(),
            COLOUR_INPUT_STATUS_1 if colour => self.read_input_status_1(),
            ATTRIBUTE_INDEX => self.attribute.read_index(),
            ATTRIBUTE_DATA_READ => self.attribute.read_data(),
            MISC_OUTPUT_WRITE => 0,
            VIDEO_ENABLE => self.video_enable,
            SEQUENCER_INDEX => self.sequencer.index(),
            SEQUENCER_DATA => self.sequencer.read_data(),
            DAC_PIXEL_MASK => self.dac.pixel_mask(),
            DAC_READ_INDEX => self.dac.state(),
            DAC_WRITE_INDEX => self.dac.write_index(),
            DAC_DATA => self.dac.read_data(),
            FEATURE_CONTROL_READ => self.feature_control,
            MISC_OUTPUT_READ => self.misc_output,
            GRAPHICS_INDEX => self.graphics.index(),
            GRAPHICS_DATA => self.graphics.read_data(),
            _ => {
                log::debug!("vga: read of unused port {port:#x}");
                0xff
            }
        }
    }

    /// Input status 1: toggles display-disabled and vertical retrace on every read
    /// (a deterministic stand-in for beam timing, so wait-for-retrace loops finish),
    /// and resets the attribute flip-flop.
    fn read_input_status_1(&mut self) -> u8 {
        self.attribute.reset_flip_flop();
        self.input_status_1 ^= ST01_DISPLAY_DISABLED | ST01_VERTICAL_RETRACE;
        self.input_status_1
    }

    /// Writes the byte register at `port` (an absolute port 0x3B0-0x3DF).
    pub fn write_port(&mut self, port: u16, value: u8) {
        let Some(offset) = port.checked_sub(VGA_PORT_BASE).filter(|&o| o < VGA_PORT_LEN) else {
            log::debug!("vga: write {value:#04x} to foreign port {port:#x} dropped");
            return;
        };
        let colour = self.colour_io();
        if self.changes_layout(offset, colour) {
            self.text_watch.layout_changed();
        }
        match offset {
            MONO_CRTC_INDEX if !colour => self.crtc.write_index(value),
            COLOUR_CRTC_INDEX if colour => self.crtc.write_index(value),
            MONO_CRTC_DATA if !colour => self.crtc.write_data(value),
            COLOUR_CRTC_DATA if colour => self.crtc.write_data(value),
            MONO_INPUT_STATUS_1 if !colour => self.feature_control = value & FEATURE_CONTROL_BITS,
            COLOUR_INPUT_STATUS_1 if colour => self.feature_control = value & FEATURE_CONTROL_BITS,
            ATTRIBUTE_INDEX => self.attribute.write(value),
            MISC_OUTPUT_WRITE => self.misc_output = value,
            VIDEO_ENABLE => self.video_enable = value & 1,
            SEQUENCER_INDEX => self.sequencer.write_index(value),
            SEQUENCER_DATA => self.sequencer.write_data(value),
            DAC_PIXEL_MASK => self.dac.set_pixel_mask(value),
            DAC_READ_INDEX => self.dac.set_read_index(value),
            DAC_WRITE_INDEX => self.dac.set_write_index(value),
            DAC_DATA => self.dac.write_data(value),
            GRAPHICS_INDEX => self.graphics.write_index(value),
            GRAPHICS_DATA => self.graphics.write_data(value),
            _ => log::debug!("vga: write {value:#04x} to unused port {port:#x} dropped"),
        }
    }
}

impl Vga {
    /// True when a write to the register at `offset` (from 0x3B0) may change what the text
    /// screen shows: any register that shapes the display, but not the index ports, the
    /// cursor, the DAC (colours only) or the set the misc output register switched off.
    fn changes_layout(&self, offset: u16, colour: bool) -> bool {
        let crtc_data = if colour { COLOUR_CRTC_DATA } else { MONO_CRTC_DATA };
        match offset {
            MONO_CRTC_INDEX | COLOUR_CRTC_INDEX | SEQUENCER_INDEX | GRAPHICS_INDEX => false,
            DAC_PIXEL_MASK | DAC_READ_INDEX | DAC_WRITE_INDEX | DAC_DATA => false,
            MONO_CRTC_DATA | COLOUR_CRTC_DATA if offset != crtc_data => false,
            MONO_CRTC_DATA | COLOUR_CRTC_DATA => !matches!(
                self.crtc.index(),
                crtc::CR_CURSOR_START
                    | crtc::CR_CURSOR_END
                    | crtc::CR_CURSOR_LOCATION_HIGH
                    | crtc::CR_CURSOR_LOCATION_LOW
            ),
            _ => true,
        }
    }
}

/// The VGA register ports as a bus device, base 0x3B0, length 0x30 (offsets are
/// relative to 0x3B0). Multi-byte accesses become byte accesses at consecutive ports.
pub struct VgaPorts {
    vga: SharedVga,
}

impl VgaPorts {
    /// The register ports of `vga`.
    pub fn new(vga: SharedVga) -> Self {
        VgaPorts { vga }
    }
}

impl BusDevice for VgaPorts {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        let mut vga = lock(&self.vga);
        (0..u64::from(size.min(8))).fold(0, |acc, i| {
            let port = port_at(offset + i);
            acc | u64::from(vga.read_port(port)) << (8 * i)
        })
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        let mut vga = lock(&self.vga);
        for i in 0..u64::from(size.min(8)) {
            vga.write_port(port_at(offset + i), (value >> (8 * i)) as u8);
        }
    }
}

/// The absolute port of a base-relative offset (offsets past the range map to a port
/// that reads 0xFF).
fn port_at(offset: u64) -> u16 {
    u16::try_from(offset).ok().and_then(|o| o.checked_add(VGA_PORT_BASE)).unwrap_or(0)
}

#[cfg(test)]
mod tests;
