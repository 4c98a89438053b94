//! Shadow RAM: the chipset's control over 0xC0000-0xFFFFF, where each segment's reads and
//! writes go either to DRAM or to the PCI/ISA side (the firmware ROM, or nothing).
//!
//! On the i440FX the PAM registers (82441FX datasheet, section 3.2.18) hold a read enable
//! and a write enable for each of thirteen segments: twelve of 16 KiB from 0xC0000 to
//! 0xEFFFF and one of 64 KiB at 0xF0000. With the read enable clear, reads go to the ROM
//! side; with the write enable clear, writes go there too (and a ROM drops them). Firmware
//! uses this to copy itself from flash into RAM and then write-protect the copy.
//!
//! [`ShadowControl`] is shared by the chipset (which sets the enables) and the address map
//! (which routes by them). Each change bumps a generation number, so a CPU that caches
//! translations or decoded code (the interpreter's TLB, KVM's memory slots) knows to drop
//! what it cached for the range.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// First address under shadow control.
pub const SHADOW_BASE: u64 = 0xC_0000;
/// First address after it.
pub const SHADOW_END: u64 = 0x10_0000;
/// Number of segments.
pub const SEGMENT_COUNT: usize = 13;
/// Size of the segments below 0xF0000.
const SMALL_SEGMENT: u64 = 0x4000;
/// Start of the 64 KiB BIOS segment.
const BIOS_SEGMENT: u64 = 0xF_0000;

/// A segment's enables.
pub mod enable {
    /// Reads go to DRAM.
    pub const READ: u8 = 1;
    /// Writes go to DRAM.
    pub const WRITE: u8 = 2;
    /// Both: the segment is plain RAM.
    pub const READ_WRITE: u8 = READ | WRITE;
}

/// The enables of the thirteen segments, and a generation number bumped on every change.
#[derive(Debug)]
pub struct ShadowControl {
    segments: [AtomicU8; SEGMENT_COUNT],
    generation: AtomicU64,
}

impl ShadowControl {
    /// Every segment with the enables `initial` ([`enable`] bits).
    pub fn new(initial: u8) -> Self {
        ShadowControl {
            segments: std::array::from_fn(|_| AtomicU8::new(initial & enable::READ_WRITE)),
            generation: AtomicU64::new(0),
        }
    }

    /// The segment holding `addr`, if it is under shadow control.
    pub fn segment_of(addr: u64) -> Option<usize> {
        match addr {
            SHADOW_BASE..BIOS_SEGMENT => Some(((addr - SHADOW_BASE) / SMALL_SEGMENT) as usize),
            BIOS_SEGMENT..SHADOW_END => Some(SEGMENT_COUNT - 1),
            _ => None,
        }
    }

    /// First address and length of segment `index`.
    pub fn segment_range(index: usize) -> (u64, u64) {
        if index >= SEGMENT_COUNT - 1 {
            (BIOS_SEGMENT, SHADOW_END - BIOS_SEGMENT)
        } else {
            (SHADOW_BASE + index as u64 * SMALL_SEGMENT, SMALL_SEGMENT)
        }
    }

    /// The enables of segment `index` (0 for an index past the last).
    pub fn get(&self, index: usize) -> u8 {
        self.segments.get(index).map_or(0, |s| s.load(Ordering::Acquire))
    }

    /// The enables of the segment holding `addr` (plain RAM outside the shadow range).
    pub fn at(&self, addr: u64) -> u8 {
        Self::segment_of(addr).map_or(enable::READ_WRITE, |i| self.get(i))
    }

    /// True when every byte of `addr..addr + len` has all of `bits` enabled.
    pub fn all(&self, addr: u64, len: u64, bits: u8) -> bool {
        let Some(last) = addr.checked_add(len.max(1) - 1) else { return false };
        let mut at = addr;
        loop {
            if self.at(at) & bits != bits {
                return false;
            }
            let Some(index) = Self::segment_of(at) else { return true };
            let (start, size) = Self::segment_range(index);
            at = start + size;
            if at > last {
                return true;
            }
        }
    }

    /// Sets segment `index`'s enables; a change bumps the generation. An index past the last
    /// is ignored.
    pub fn set(&self, index: usize, bits: u8) {
        let Some(segment) = self.segments.get(index) else { return };
        if segment.swap(bits & enable::READ_WRITE, Ordering::AcqRel) != bits & enable::READ_WRITE {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The number of changes so far.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_16_kib_below_the_bios_and_64_kib_for_it() {
        assert_eq!(ShadowControl::segment_of(0xB_FFFF), None);
        assert_eq!(ShadowControl::segment_of(0xC_0000), Some(0));
        assert_eq!(ShadowControl::segment_of(0xC_3FFF), Some(0));
        assert_eq!(ShadowControl::segment_of(0xC_4000), Some(1));
        assert_eq!(ShadowControl::segment_of(0xE_FFFF), Some(11));
        assert_eq!(ShadowControl::segment_of(0xF_0000), Some(12));
        assert_eq!(ShadowControl::segment_of(0xF_FFFF), Some(12));
        assert_eq!(ShadowControl::segment_of(0x10_0000), None);
        assert_eq!(ShadowControl::segment_range(11), (0xE_C000, 0x4000));
        assert_eq!(ShadowControl::segment_range(12), (0xF_0000, 0x1_0000));
    }

    #[test]
    fn changes_bump_the_generation_and_ranges_check_every_segment() {
        let s = ShadowControl::new(enable::READ_WRITE);
        s.set(12, enable::READ_WRITE);
        assert_eq!(s.generation(), 0, "no change");
        s.set(5, enable::READ);
        s.set(SEGMENT_COUNT, 0);
        assert_eq!(s.generation(), 1);
        assert_eq!(s.at(0xD_4001), enable::READ);
        assert_eq!(s.at(0x5000), enable::READ_WRITE, "outside the range: plain RAM");
        assert!(s.all(0xD_0000, 0x4000, enable::READ_WRITE));
        assert!(!s.all(0xD_0000, 0x4001, enable::READ_WRITE), "reaches segment 5");
        assert!(s.all(0xC_0000, 0x4_0000, enable::READ));
        assert!(s.all(0xF_F000, 0x2000, enable::READ_WRITE), "into plain RAM above 1 MiB");
        assert!(!s.all(u64::MAX, 2, enable::READ), "wraps");
    }
}
