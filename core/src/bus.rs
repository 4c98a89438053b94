//! Port-I/O and MMIO buses.
//!
//! A bus owns the routing: a sorted table of non-overlapping ranges, each mapped to a
//! device that sees offsets relative to its own base. Overlaps are rejected when the
//! board is built. Beneath the table a bus may have one fallback range, for a device that
//! decides at run time which of its addresses it answers (the PCI I/O window, whose BARs
//! firmware moves): it sees what no fixed range claims. An access that hits no device
//! reads all-ones and drops writes, logged once per address.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// A device on a bus: plain base-relative register accesses of 1, 2, 4 or 8 bytes.
pub trait BusDevice: Send {
    /// Reads `size` bytes at `offset` from the device's base; the result is
    /// zero-extended.
    fn read(&mut self, offset: u64, size: u8) -> u64;
    /// Writes the low `size` bytes of `value` at `offset` from the device's base.
    fn write(&mut self, offset: u64, size: u8, value: u64);
}

/// A device shared between the bus and the board (which may also drive it directly).
pub type SharedDevice = Arc<Mutex<dyn BusDevice>>;

/// Errors building a bus.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BusError {
    /// Two devices claimed overlapping ranges.
    #[error("{bus} range {new_base:#x}+{new_len:#x} ({new_name}) overlaps {old_base:#x}+{old_len:#x} ({old_name})")]
    Overlap {
        /// Which bus ("port" or "mmio").
        bus: &'static str,
        /// The device being added.
        new_name: String,
        /// Its base.
        new_base: u64,
        /// Its length.
        new_len: u64,
        /// The device already there.
        old_name: String,
        /// Its base.
        old_base: u64,
        /// Its length.
        old_len: u64,
    },
    /// A range of zero length, or one that wraps the address space.
    #[error("{bus} range {base:#x}+{len:#x} ({name}) is empty or wraps")]
    BadRange {
        /// Which bus.
        bus: &'static str,
        /// The device.
        name: String,
        /// Base.
        base: u64,
        /// Length.
        len: u64,
    },
}

struct Range {
    base: u64,
    len: u64,
    name: String,
    dev: SharedDevice,
}

/// A bus: sorted, non-overlapping ranges of `u64` addresses (ports use the low 16 bits).
pub struct Bus {
    kind: &'static str,
    limit: u64,
    ranges: Vec<Range>,
    fallback: Option<Range>,
    warned: Mutex<HashSet<u64>>,
}

/// Mask of the low `size` bytes.
pub fn size_mask(size: u8) -> u64 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        4 => 0xffff_ffff,
        _ => u64::MAX,
    }
}

impl Bus {
    /// An empty port-I/O bus (addresses 0..=0xFFFF).
    pub fn new_port() -> Self {
        Bus { kind: "port", limit: 0x1_0000, ranges: Vec::new(), fallback: None, warned: Mutex::new(HashSet::new()) }
    }

    /// An empty MMIO bus (the whole 64-bit physical space).
    pub fn new_mmio() -> Self {
        Bus { kind: "mmio", limit: u64::MAX, ranges: Vec::new(), fallback: None, warned: Mutex::new(HashSet::new()) }
    }

    fn check_range(&self, name: &str, base: u64, len: u64) -> Result<(), BusError> {
        let end = base.checked_add(len);
        if len == 0 || end.is_none_or(|e| e > self.limit) {
            return Err(BusError::BadRange { bus: self.kind, name: name.into(), base, len });
        }
        Ok(())
    }

    /// Maps `dev` at `base..base+len` under `name`; rejects overlaps.
    pub fn insert(&mut self, name: &str, base: u64, len: u64, dev: SharedDevice) -> Result<(), BusError> {
        self.check_range(name, base, len)?;
        let idx = self.ranges.partition_point(|r| r.base < base);
        let clash = [idx.checked_sub(1), Some(idx)]
            .into_iter()
            .flatten()
            .filter_map(|i| self.ranges.get(i))
            .find(|r| r.base < base + len && base < r.base + r.len);
        if let Some(r) = clash {
            return Err(BusError::Overlap {
                bus: self.kind,
                new_name: name.into(),
                new_base: base,
                new_len: len,
                old_name: r.name.clone(),
                old_base: r.base,
                old_len: r.len,
            });
        }
        self.ranges.insert(idx, Range { base, len, name: name.into(), dev });
        Ok(())
    }

    /// Puts `dev` beneath the fixed ranges at `base..base+len`: it sees the accesses there
    /// that no range added with [`Bus::insert`] claims (offsets from `base`), and reads
    /// all-ones itself where it has nothing. Replaces an earlier fallback.
    pub fn set_fallback(&mut self, name: &str, base: u64, len: u64, dev: SharedDevice) -> Result<(), BusError> {
        self.check_range(name, base, len)?;
        self.fallback = Some(Range { base, len, name: name.into(), dev });
        Ok(())
    }

    fn find(&self, addr: u64) -> Option<&Range> {
        let idx = self.ranges.partition_point(|r| r.base <= addr);
        let fixed = idx.checked_sub(1).and_then(|i| self.ranges.get(i)).filter(|r| addr - r.base < r.len);
        fixed.or_else(|| self.fallback.as_ref().filter(|r| addr >= r.base && addr - r.base < r.len))
    }

    /// True when a device claims `addr`.
    pub fn contains(&self, addr: u64) -> bool {
        self.find(addr).is_some()
    }

    /// The name of the device at `addr`, if any.
    pub fn device_name(&self, addr: u64) -> Option<&str> {
        self.find(addr).map(|r| r.name.as_str())
    }

    /// Names and ranges of every device: the fixed ranges in address order, then the fallback.
    pub fn devices(&self) -> impl Iterator<Item = (&str, u64, u64)> {
        self.ranges.iter().chain(&self.fallback).map(|r| (r.name.as_str(), r.base, r.len))
    }

    fn warn_unmapped(&self, what: &str, addr: u64, size: u8) {
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if warned.insert(addr) {
            log::debug!("{} {what} of {size} bytes at unmapped {addr:#x}", self.kind);
        }
    }

    /// Reads `size` bytes at `addr`; all-ones where nothing is mapped.
    pub fn read(&self, addr: u64, size: u8) -> u64 {
        match self.find(addr) {
            Some(r) => {
                let mut dev = r.dev.lock().unwrap_or_else(|e| e.into_inner());
                dev.read(addr - r.base, size) & size_mask(size)
            }
            None => {
                self.warn_unmapped("read", addr, size);
                size_mask(size)
            }
        }
    }

    /// Writes `size` bytes of `value` at `addr`; dropped where nothing is mapped.
    pub fn write(&self, addr: u64, size: u8, value: u64) {
        match self.find(addr) {
            Some(r) => {
                let mut dev = r.dev.lock().unwrap_or_else(|e| e.into_inner());
                dev.write(addr - r.base, size, value & size_mask(size));
            }
            None => self.warn_unmapped("write", addr, size),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Regs {
        log: Vec<(u64, u8, u64)>,
    }

    impl BusDevice for Regs {
        fn read(&mut self, offset: u64, _size: u8) -> u64 {
            0x1122_3344_5566_7700 | offset
        }
        fn write(&mut self, offset: u64, size: u8, value: u64) {
            self.log.push((offset, size, value));
        }
    }

    #[test]
    fn routes_base_relative_and_rejects_overlap() {
        let dev = Arc::new(Mutex::new(Regs::default()));
        let mut bus = Bus::new_port();
        bus.insert("a", 0x3f8, 8, dev.clone()).unwrap();
        bus.insert("b", 0x400, 8, Arc::new(Mutex::new(Regs::default()))).unwrap();
        let err = bus.insert("c", 0x3fc, 2, Arc::new(Mutex::new(Regs::default()))).unwrap_err();
        assert!(matches!(err, BusError::Overlap { ref old_name, .. } if old_name == "a"));
        assert!(bus.insert("d", 0x3f0, 9, Arc::new(Mutex::new(Regs::default()))).is_err());
        assert!(bus.insert("e", 0xffff, 2, Arc::new(Mutex::new(Regs::default()))).is_err());
        assert_eq!(bus.read(0x3fa, 1), 0x02);
        bus.write(0x3f9, 2, 0x1_2345);
        assert_eq!(dev.lock().unwrap().log, vec![(1, 2, 0x2345)]);
        assert_eq!(bus.device_name(0x404), Some("b"));
    }

    #[test]
    fn the_fallback_sees_only_what_no_fixed_range_claims() {
        let fixed = Arc::new(Mutex::new(Regs::default()));
        let under = Arc::new(Mutex::new(Regs::default()));
        let mut bus = Bus::new_port();
        bus.insert("fixed", 0x1004, 4, fixed.clone()).unwrap();
        assert!(bus.set_fallback("window", 0xffff, 2, under.clone()).is_err(), "wraps the port space");
        bus.set_fallback("window", 0x1000, 0xf000, under.clone()).unwrap();
        bus.insert("late", 0x2000, 2, Arc::new(Mutex::new(Regs::default()))).unwrap();
        assert_eq!(bus.read(0x1006, 1), 0x02, "a fixed range wins");
        assert_eq!(bus.read(0x1001, 1), 0x01, "offsets from the fallback's base");
        bus.write(0xc004, 4, 7);
        bus.write(0x1005, 1, 9);
        assert_eq!(under.lock().unwrap().log, vec![(0xb004, 4, 7)]);
        assert_eq!(fixed.lock().unwrap().log, vec![(1, 1, 9)]);
        assert_eq!(bus.device_name(0x2001), Some("late"));
        assert_eq!(bus.device_name(0x2002), Some("window"));
        assert_eq!(bus.read(0xfff, 1), 0xff, "below the fallback: unmapped");
    }

    #[test]
    fn unmapped_reads_all_ones() {
        let bus = Bus::new_mmio();
        assert_eq!(bus.read(0x1000, 1), 0xff);
        assert_eq!(bus.read(0x1000, 4), 0xffff_ffff);
        bus.write(0x1000, 4, 5);
    }
}
