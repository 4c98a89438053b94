//! The legacy memory window 0xA0000-0xBFFFF: GR06's memory map select decides which
//! part answers, then chain-4, odd/even or planar addressing decides which planes a CPU
//! byte reaches (FreeVGA, "VGA Memory Organization" and "Sequencer Registers").
//!
//! - **Chain-4** (SR04 bit 3): address bits 0-1 select the plane; the plane offset is
//!   the address with those bits clear (so mode 13h's pixel `a` is byte `a` of video
//!   memory, and the CRTC's double-word mode reads it back).
//! - **Odd/even** (SR04 bit 2 clear for writes, GR05 bit 4 for reads): even addresses
//!   reach planes 0 and 2, odd addresses planes 1 and 3 (reads: plane `GR04 bit 1 |
//!   A0`); the plane offset is the address with bit 0 clear.
//! - **Planar**: the plane offset is the address; writes go through the graphics
//!   controller's write mode and the map mask; reads load the latches and return the
//!   read mode's result.
//!
//! Every read, whatever the addressing, loads the four latches. Chain-4 and odd/even
//! writes store the CPU byte directly (the write-mode logic is only used in planar
//! mode, as QEMU and every BIOS assume). While a VBE mode of 8 bpp or more is on, the
//! window shows the 64 KiB bank the DISPI BANK register selects, linearly.

use super::{lock, SharedVga, Vga};
use rx86_core::bus::BusDevice;

impl Vga {
    /// The address inside the decoded memory map, or `None` when GR06 leaves
    /// `window_offset` (relative to 0xA0000) undecoded.
    fn window_address(&self, window_offset: u64) -> Option<usize> {
        let (start, len) = self.graphics.memory_map().window();
        let addr = window_offset.checked_sub(start).filter(|&a| a < len)?;
        usize::try_from(addr).ok()
    }

    /// The linear video memory address of a window address while a VBE mode of 8 bpp
    /// or more is on.
    fn vbe_linear_address(&self, addr: usize) -> Option<usize> {
        self.vbe.mode().filter(|m| m.bpp != 4).map(|_| self.vbe.bank_offset() + addr)
    }

    /// The plane-offset base the VBE bank adds in a 4 bpp (planar) VBE mode.
    fn planar_bank_base(&self) -> usize {
        match self.vbe.mode() {
            Some(m) if m.bpp == 4 => self.vbe.bank_offset(),
            _ => 0,
        }
    }

    /// A CPU byte read at `window_offset` (relative to 0xA0000); 0xFF where undecoded.
    pub fn mem_read(&mut self, window_offset: u64) -> u8 {
        let Some(addr) = self.window_address(window_offset) else {
            return 0xff;
        };
        if let Some(linear) = self.vbe_linear_address(addr) {
            return self.vram.byte(linear);
        }
        let (offset, plane) = if self.sequencer.chain4() {
            (addr & !3, (addr & 3) as u8)
        } else if self.graphics.odd_even_reads() {
            (addr & !1, (self.graphics.read_map() & 0b10) | (addr & 1) as u8)
        } else {
            (addr, self.graphics.read_map())
        };
        self.latches = self.vram.planes(self.planar_bank_base() + offset);
        self.graphics.read_result(self.latches, plane)
    }

    /// A CPU byte write at `window_offset` (relative to 0xA0000); dropped where
    /// undecoded.
    pub fn mem_write(&mut self, window_offset: u64, value: u8) {
        let Some(addr) = self.window_address(window_offset) else {
            log::debug!("vga: write to undecoded window offset {window_offset:#x} dropped");
            return;
        };
        if let Some(linear) = self.vbe_linear_address(addr) {
            if !self.vram.set_byte(linear, value) {
                log::debug!("vga: banked write past video memory at {linear:#x} dropped");
            }
            return;
        }
        let map_mask = self.sequencer.map_mask();
        let broadcast = u32::from_le_bytes([value; 4]);
        let (offset, data, planes) = if self.sequencer.chain4() {
            (addr & !3, broadcast, map_mask & (1 << (addr & 3)))
        } else if self.sequencer.odd_even_writes() {
            (addr & !1, broadcast, map_mask & (0b0101 << (addr & 1)))
        } else {
            (addr, self.graphics.write_planes(value, self.latches), map_mask)
        };
        let offset = self.planar_bank_base() + offset;
        if !self.vram.set_planes(offset, data, planes) {
            log::debug!("vga: planar write past video memory at plane offset {offset:#x} dropped");
        }
        if planes & 1 != 0 && self.text_watch.is_armed() && self.in_text_mode() {
            self.text_watch.stored(data as u8, || self.text_row_at(offset));
        }
    }
}

/// The 0xA0000-0xBFFFF window as a bus device (base 0xA0000, length 0x20000).
/// Multi-byte accesses are byte accesses at consecutive addresses, little-endian.
pub struct VgaMemory {
    vga: SharedVga,
}

impl VgaMemory {
    /// The memory window of `vga`.
    pub fn new(vga: SharedVga) -> Self {
        VgaMemory { vga }
    }
}

impl BusDevice for VgaMemory {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        let mut vga = lock(&self.vga);
        (0..u64::from(size.min(8))).fold(0, |acc, i| acc | u64::from(vga.mem_read(offset.wrapping_add(i))) << (8 * i))
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        let mut vga = lock(&self.vga);
        for i in 0..u64::from(size.min(8)) {
            vga.mem_write(offset.wrapping_add(i), (value >> (8 * i)) as u8);
        }
    }
}
