//! A function's 256-byte configuration space: the type 0 header, per-byte write
//! masks and base address registers (PCI Local Bus Specification 3.0, chapter 6).
//!
//! Writes go through the write mask byte by byte, so read-only fields keep their value
//! and a BAR reads back only the address bits its size allows: writing all-ones and
//! reading back gives `!(size - 1)` plus the BAR's type bits (section 6.2.5.1).

use thiserror::Error;

// Type 0 header offsets (section 6.1, figure 6-1).
/// Vendor ID (16 bits).
pub const VENDOR_ID: u8 = 0x00;
/// Device ID (16 bits).
pub const DEVICE_ID: u8 = 0x02;
/// Command register (16 bits).
pub const COMMAND: u8 = 0x04;
/// Status register (16 bits).
pub const STATUS: u8 = 0x06;
/// Revision ID.
pub const REVISION_ID: u8 = 0x08;
/// Class code: programming interface, sub-class, base class (24 bits).
pub const CLASS_CODE: u8 = 0x09;
/// Cache line size.
pub const CACHE_LINE_SIZE: u8 = 0x0c;
/// Latency timer.
pub const LATENCY_TIMER: u8 = 0x0d;
/// Header type; bit 7 = multi-function device.
pub const HEADER_TYPE: u8 = 0x0e;
/// Base address register 0; BARs 1-5 follow every 4 bytes.
pub const BAR0: u8 = 0x10;
/// Interrupt line (written by firmware, used by software only).
pub const INTERRUPT_LINE: u8 = 0x3c;
/// Expansion ROM base address register (type 0 header, section 6.2.5.2): address bits 31:11,
/// enable bit 0.
pub const EXPANSION_ROM: u8 = 0x30;
/// Expansion ROM BAR bit 0: address decode enable.
pub const EXPANSION_ROM_ENABLE: u32 = 1;
/// Expansion ROM BAR address bits.
pub const EXPANSION_ROM_ADDRESS_MASK: u32 = 0xffff_f800;
/// Interrupt pin (1 = INTA# .. 4 = INTD#, 0 = none).
pub const INTERRUPT_PIN: u8 = 0x3d;
/// First device-specific register.
const DEVICE_SPECIFIC: u8 = 0x40;

/// Header type bit 7: the device has more than one function.
pub const HEADER_TYPE_MULTI_FUNCTION: u8 = 0x80;

// Command register bits (section 6.2.2).
/// I/O space enable.
pub const COMMAND_IO_SPACE: u16 = 1 << 0;
/// Memory space enable.
pub const COMMAND_MEMORY_SPACE: u16 = 1 << 1;
/// Bus master enable.
pub const COMMAND_BUS_MASTER: u16 = 1 << 2;
/// Parity error response.
const COMMAND_PARITY_ERROR_RESPONSE: u16 = 1 << 6;
/// SERR# enable.
const COMMAND_SERR_ENABLE: u16 = 1 << 8;
/// Interrupt disable.
const COMMAND_INTERRUPT_DISABLE: u16 = 1 << 10;

// BAR type bits (section 6.2.5.1).
/// Bit 0 of an I/O BAR.
const BAR_IO_SPACE: u32 = 0b0001;
/// Memory BAR type 10b: 64-bit address.
const BAR_MEMORY_64: u32 = 0b0100;
/// Memory BAR bit 3: prefetchable.
const BAR_PREFETCHABLE: u32 = 0b1000;
/// Number of BARs in a type 0 header.
pub const BAR_COUNT: usize = 6;

/// Size of a configuration space.
pub const CONFIG_SPACE_SIZE: usize = 256;

/// Errors describing a function to the bus (board-construction time, never guest-made).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PciError {
    /// The BAR description is impossible.
    #[error("BAR {index}: {reason}")]
    BadBar {
        /// BAR number.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A device number above 31 or a function number above 7.
    #[error("PCI slot {device:#x}.{function} does not exist")]
    NoSuchSlot {
        /// Device number.
        device: u8,
        /// Function number.
        function: u8,
    },
    /// Two functions at one device/function number.
    #[error("PCI slot {device:#x}.{function} is already taken")]
    SlotTaken {
        /// Device number.
        device: u8,
        /// Function number.
        function: u8,
    },
}

/// The identity fields of a configuration header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PciId {
    /// Vendor ID.
    pub vendor_id: u16,
    /// Device ID.
    pub device_id: u16,
    /// Revision ID.
    pub revision_id: u8,
    /// Class code: base class << 16 | sub-class << 8 | programming interface.
    pub class_code: u32,
    /// Header type (0 for a type 0 header; bit 7 for multi-function).
    pub header_type: u8,
}

/// What a BAR decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarKind {
    /// I/O space (at most 256 bytes, section 6.2.5.1).
    Io,
    /// 32-bit memory space.
    Memory32 {
        /// Prefetchable memory.
        prefetchable: bool,
    },
    /// 64-bit memory space, using this BAR and the next.
    Memory64 {
        /// Prefetchable memory.
        prefetchable: bool,
    },
}

/// A configuration space: 256 bytes, their write masks and the BAR layout.
#[derive(Clone)]
pub struct ConfigSpace {
    bytes: [u8; CONFIG_SPACE_SIZE],
    write_mask: [u8; CONFIG_SPACE_SIZE],
    bars: [Option<BarKind>; BAR_COUNT],
}

impl ConfigSpace {
    /// A type 0 header with `id`; command, cache line size, latency timer and
    /// interrupt line writable; no BARs.
    pub fn new(id: PciId) -> Self {
        let mut space =
            ConfigSpace { bytes: [0; CONFIG_SPACE_SIZE], write_mask: [0; CONFIG_SPACE_SIZE], bars: [None; BAR_COUNT] };
        space.set_u16(VENDOR_ID, id.vendor_id);
        space.set_u16(DEVICE_ID, id.device_id);
        space.set_u8(REVISION_ID, id.revision_id);
        space.set_u8(CLASS_CODE, id.class_code as u8);
        space.set_u16(CLASS_CODE + 1, (id.class_code >> 8) as u16);
        space.set_u8(HEADER_TYPE, id.header_type);
        let command_mask = COMMAND_IO_SPACE
            | COMMAND_MEMORY_SPACE
            | COMMAND_BUS_MASTER
            | COMMAND_PARITY_ERROR_RESPONSE
            | COMMAND_SERR_ENABLE
            | COMMAND_INTERRUPT_DISABLE;
        space.set_write_mask(COMMAND, &command_mask.to_le_bytes());
        space.set_write_mask(CACHE_LINE_SIZE, &[0xff]);
        space.set_write_mask(LATENCY_TIMER, &[0xff]);
        space.set_write_mask(INTERRUPT_LINE, &[0xff]);
        space
    }

    /// Reads `len` bytes (1 to 4, clipped at the end of the space) at `offset`,
    /// little-endian.
    pub fn read(&self, offset: u8, len: u8) -> u32 {
        let start = usize::from(offset);
        let end = (start + usize::from(len.min(4))).min(CONFIG_SPACE_SIZE);
        self.bytes[start..end].iter().rev().fold(0, |acc, &b| (acc << 8) | u32::from(b))
    }

    /// Writes `len` bytes (1 to 4, clipped at the end of the space) of `value` at
    /// `offset` through the write mask.
    pub fn write(&mut self, offset: u8, len: u8, value: u32) {
        let start = usize::from(offset);
        let end = (start + usize::from(len.min(4))).min(CONFIG_SPACE_SIZE);
        for (i, at) in (start..end).enumerate() {
            let byte = (value >> (8 * i)) as u8;
            let mask = self.write_mask[at];
            if mask == 0 && at >= usize::from(DEVICE_SPECIFIC) {
                log::debug!("pci: write {byte:#04x} to unimplemented config register {at:#04x} dropped");
            }
            self.bytes[at] = (self.bytes[at] & !mask) | (byte & mask);
        }
    }

    /// The byte at `offset`, bypassing nothing (plain storage).
    pub fn u8_at(&self, offset: u8) -> u8 {
        self.bytes[usize::from(offset)]
    }

    /// The 16-bit value at `offset` (clipped at the end of the space).
    pub fn u16_at(&self, offset: u8) -> u16 {
        self.read(offset, 2) as u16
    }

    /// The 32-bit value at `offset` (clipped at the end of the space).
    pub fn u32_at(&self, offset: u8) -> u32 {
        self.read(offset, 4)
    }

    /// Sets a byte regardless of its write mask (device-side initialisation).
    pub fn set_u8(&mut self, offset: u8, value: u8) {
        self.bytes[usize::from(offset)] = value;
    }

    /// Sets 16 bits regardless of the write mask (clipped at the end of the space).
    pub fn set_u16(&mut self, offset: u8, value: u16) {
        self.set_bytes(offset, &value.to_le_bytes());
    }

    /// Sets 32 bits regardless of the write mask (clipped at the end of the space).
    pub fn set_u32(&mut self, offset: u8, value: u32) {
        self.set_bytes(offset, &value.to_le_bytes());
    }

    fn set_bytes(&mut self, offset: u8, bytes: &[u8]) {
        let start = usize::from(offset);
        let end = (start + bytes.len()).min(CONFIG_SPACE_SIZE);
        self.bytes[start..end].copy_from_slice(&bytes[..end - start]);
    }

    /// Sets the write masks of the bytes from `offset` on (1 = guest-writable bit).
    pub fn set_write_mask(&mut self, offset: u8, mask: &[u8]) {
        let start = usize::from(offset);
        let end = (start + mask.len()).min(CONFIG_SPACE_SIZE);
        self.write_mask[start..end].copy_from_slice(&mask[..end - start]);
    }

    /// The command register.
    pub fn command(&self) -> u16 {
        self.u16_at(COMMAND)
    }

    /// Declares BAR `index` as a `kind` region of `size` bytes (a power of two; at
    /// least 4 bytes and at most 256 for I/O, at least 16 for memory, at most 2 GiB for
    /// 32-bit memory). A 64-bit BAR also occupies BAR `index + 1`.
    pub fn set_bar(&mut self, index: usize, kind: BarKind, size: u64) -> Result<(), PciError> {
        let bad = |reason| Err(PciError::BadBar { index, reason });
        let slots = if matches!(kind, BarKind::Memory64 { .. }) { 2 } else { 1 };
        if index + slots > BAR_COUNT {
            return bad("no such BAR");
        }
        if self.bars[index..index + slots].iter().any(Option::is_some) || (index > 0 && self.is_upper_half(index)) {
            return bad("already declared");
        }
        if !size.is_power_of_two() {
            return bad("size is not a power of two");
        }
        let (flags, min, max) = match kind {
            BarKind::Io => (BAR_IO_SPACE, 4, 256),
            BarKind::Memory32 { prefetchable } => (prefetch_flag(prefetchable), 16, 1 << 31),
            BarKind::Memory64 { prefetchable } => (BAR_MEMORY_64 | prefetch_flag(prefetchable), 16, 1 << 63),
        };
        if size < min || size > max {
            return bad("size out of range for its kind");
        }
        let address_mask = !(size - 1);
        let low_flag_bits = if kind == BarKind::Io { 0b11 } else { 0b1111 };
        let offset = BAR0 + 4 * index as u8;
        self.set_u32(offset, flags);
        self.set_write_mask(offset, &((address_mask as u32) & !low_flag_bits).to_le_bytes());
        if slots == 2 {
            self.set_u32(offset + 4, 0);
            self.set_write_mask(offset + 4, &((address_mask >> 32) as u32).to_le_bytes());
        }
        self.bars[index] = Some(kind);
        Ok(())
    }

    /// Declares an expansion ROM of `size` bytes (a power of two, 2 KiB to 16 MiB): the
    /// expansion ROM BAR's address bits above the size and its enable bit become writable.
    pub fn set_expansion_rom(&mut self, size: u64) -> Result<(), PciError> {
        if !size.is_power_of_two() || !(0x800..=16 << 20).contains(&size) {
            return Err(PciError::BadBar { index: BAR_COUNT, reason: "expansion ROM size out of range" });
        }
        let mask = (!(size as u32 - 1) & EXPANSION_ROM_ADDRESS_MASK) | EXPANSION_ROM_ENABLE;
        self.set_write_mask(EXPANSION_ROM, &mask.to_le_bytes());
        Ok(())
    }

    /// True when BAR `index` is the upper half of a 64-bit BAR.
    fn is_upper_half(&self, index: usize) -> bool {
        matches!(self.bars[index - 1], Some(BarKind::Memory64 { .. }))
    }

    /// The declared kind of BAR `index`.
    pub fn bar_kind(&self, index: usize) -> Option<BarKind> {
        self.bars.get(index).copied().flatten()
    }

    /// The address BAR `index` is programmed to, if it was declared.
    pub fn bar_address(&self, index: usize) -> Option<u64> {
        let kind = self.bar_kind(index)?;
        let low = u64::from(self.u32_at(BAR0 + 4 * index as u8));
        Some(match kind {
            BarKind::Io => low & !0b11,
            BarKind::Memory32 { .. } => low & !0b1111,
            BarKind::Memory64 { .. } => (low & !0b1111) | (u64::from(self.u32_at(BAR0 + 4 * (index as u8 + 1))) << 32),
        })
    }
}

fn prefetch_flag(prefetchable: bool) -> u32 {
    if prefetchable {
        BAR_PREFETCHABLE
    } else {
        0
    }
}

impl std::fmt::Debug for ConfigSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConfigSpace({:04x}:{:04x})", self.u16_at(VENDOR_ID), self.u16_at(DEVICE_ID))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> ConfigSpace {
        ConfigSpace::new(PciId {
            vendor_id: 0x1234,
            device_id: 0x5678,
            revision_id: 3,
            class_code: 0x02_00_00,
            header_type: 0,
        })
    }

    #[test]
    fn header_fields_and_read_only_identity() {
        let mut s = space();
        assert_eq!(s.read(VENDOR_ID, 4), 0x5678_1234);
        assert_eq!(s.read(REVISION_ID, 4), 0x0200_0003);
        s.write(VENDOR_ID, 4, 0xffff_ffff);
        assert_eq!(s.read(VENDOR_ID, 4), 0x5678_1234, "IDs are read-only");
        s.write(COMMAND, 2, 0xffff);
        assert_eq!(s.command(), 0x0547);
        s.write(INTERRUPT_LINE, 2, 0xffff);
        assert_eq!(s.read(INTERRUPT_LINE, 2), 0x00ff);
        assert_eq!(s.read(INTERRUPT_PIN, 1), 0, "pin is read-only");
    }

    /// Section 6.2.5.1: write all-ones, read back, the size is the two's complement
    /// of the address bits; type bits stay.
    #[test]
    fn bar_sizing() {
        let mut s = space();
        s.set_bar(0, BarKind::Io, 0x20).unwrap();
        s.set_bar(1, BarKind::Memory32 { prefetchable: false }, 0x1000).unwrap();
        s.set_bar(2, BarKind::Memory64 { prefetchable: true }, 0x2_0000_0000).unwrap();
        for i in 0..6u8 {
            s.write(BAR0 + 4 * i, 4, 0xffff_ffff);
        }
        assert_eq!(s.u32_at(BAR0), 0xffff_ffe1);
        assert_eq!(s.u32_at(BAR0 + 4), 0xffff_f000);
        assert_eq!(s.u32_at(BAR0 + 8), 0x0000_000c, "low half of an 8 GiB BAR has no address bits");
        assert_eq!(s.u32_at(BAR0 + 12), 0xffff_fffe);
        assert_eq!(s.u32_at(BAR0 + 16), 0, "undeclared BARs read 0");
        s.write(BAR0, 4, 0xc000);
        s.write(BAR0 + 4, 4, 0xfebf_0000);
        s.write(BAR0 + 8, 4, 0);
        s.write(BAR0 + 12, 4, 0x4);
        assert_eq!(s.bar_address(0), Some(0xc000));
        assert_eq!(s.bar_address(1), Some(0xfebf_0000));
        assert_eq!(s.bar_address(2), Some(0x4_0000_0000));
        assert_eq!(s.bar_address(3), None);
    }

    #[test]
    fn bad_bars_are_rejected() {
        let mut s = space();
        assert!(s.set_bar(6, BarKind::Io, 16).is_err());
        assert!(s.set_bar(5, BarKind::Memory64 { prefetchable: false }, 16).is_err());
        assert!(s.set_bar(0, BarKind::Io, 512).is_err());
        assert!(s.set_bar(0, BarKind::Memory32 { prefetchable: false }, 0x3000).is_err());
        s.set_bar(0, BarKind::Memory64 { prefetchable: false }, 16).unwrap();
        assert!(s.set_bar(1, BarKind::Io, 16).is_err(), "upper half of BAR 0");
        assert!(s.set_bar(0, BarKind::Io, 16).is_err());
    }

    #[test]
    fn reads_clip_at_the_end() {
        let mut s = space();
        s.set_u8(0xff, 0xab);
        assert_eq!(s.read(0xff, 4), 0xab);
        s.write(0xfe, 4, u32::MAX);
    }
}
