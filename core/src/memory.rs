//! Guest RAM: one anonymous `memmap2` mapping.
//!
//! The interpreter addresses it by base pointer + offset, the KVM engine registers the
//! very same mapping with `KVM_SET_USER_MEMORY_REGION`, and devices reach it for DMA
//! through bounds-checked copies, so every engine and device sees one RAM.

use std::cell::UnsafeCell;
use thiserror::Error;

/// Largest guest RAM rx86 accepts (1 TiB); anything larger is a user error.
pub const MAX_RAM_BYTES: u64 = 1 << 40;

/// Errors creating or accessing guest RAM.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MemoryError {
    /// Guest RAM size must be a non-zero multiple of 4 KiB and at most 1 TiB.
    #[error("invalid guest RAM size {0} bytes (must be a non-zero multiple of 4 KiB, at most 1 TiB)")]
    InvalidSize(u64),
    /// The host refused to map guest RAM.
    #[error("cannot allocate {size} bytes of guest RAM: {reason}")]
    MapFailed {
        /// Requested size in bytes.
        size: u64,
        /// The host's error.
        reason: String,
    },
    /// An access reached past the end of guest RAM.
    #[error("guest RAM access out of range: {len} bytes at {addr:#x}")]
    OutOfRange {
        /// Guest RAM offset of the access.
        addr: u64,
        /// Length of the access.
        len: usize,
    },
}

/// Guest RAM, addressed by offset from its start (guest-physical for the low part; the
/// board's [`crate::phys::PhysMemory`] maps the part above the PCI hole).
pub struct GuestRam {
    map: UnsafeCell<memmap2::MmapMut>,
    size: u64,
}

// SAFETY: guest RAM is plain bytes that the guest itself shares between its CPUs and its
// devices without host-side locking; every host access goes through bounds-checked raw
// copies (never references that outlive the call), exactly as a real memory bus behaves.
unsafe impl Sync for GuestRam {}
// SAFETY: the mapping is owned memory that may move between threads.
unsafe impl Send for GuestRam {}

impl GuestRam {
    /// Maps `size` bytes of zeroed guest RAM.
    pub fn new(size: u64) -> Result<Self, MemoryError> {
        if size == 0 || !size.is_multiple_of(4096) || size > MAX_RAM_BYTES {
            return Err(MemoryError::InvalidSize(size));
        }
        let len = usize::try_from(size).map_err(|_| MemoryError::InvalidSize(size))?;
        let map = memmap2::MmapOptions::new()
            .len(len)
            .map_anon()
            .map_err(|e| MemoryError::MapFailed { size, reason: e.to_string() })?;
        Ok(GuestRam { map: UnsafeCell::new(map), size })
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Host address of the first byte, for engines that address RAM directly (KVM
    /// memory slots, the interpreter's TLB). Accesses through it must stay below
    /// [`GuestRam::size`].
    pub fn host_base(&self) -> *mut u8 {
        // SAFETY: only the pointer is taken; no reference to the bytes escapes.
        unsafe { (*self.map.get()).as_mut_ptr() }
    }

    fn check(&self, addr: u64, len: usize) -> Result<usize, MemoryError> {
        let end = addr.checked_add(len as u64);
        match end {
            Some(end) if end <= self.size => Ok(addr as usize),
            _ => Err(MemoryError::OutOfRange { addr, len }),
        }
    }

    /// Copies guest bytes at `addr` into `buf`.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let off = self.check(addr, buf.len())?;
        // SAFETY: `check` proved off..off+len lies inside the mapping; the copy does not
        // overlap `buf`, which is host memory.
        unsafe { std::ptr::copy_nonoverlapping(self.host_base().add(off), buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copies `buf` into guest RAM at `addr`.
    pub fn write(&self, addr: u64, buf: &[u8]) -> Result<(), MemoryError> {
        let off = self.check(addr, buf.len())?;
        // SAFETY: `check` proved off..off+len lies inside the mapping; `buf` is host
        // memory and cannot overlap it.
        unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), self.host_base().add(off), buf.len()) };
        Ok(())
    }

    /// Fills `len` bytes at `addr` with `value`.
    pub fn fill(&self, addr: u64, len: usize, value: u8) -> Result<(), MemoryError> {
        let off = self.check(addr, len)?;
        // SAFETY: `check` proved the range lies inside the mapping.
        unsafe { std::ptr::write_bytes(self.host_base().add(off), value, len) };
        Ok(())
    }

    /// Reads a little-endian value of `N` bytes.
    pub fn read_le<const N: usize>(&self, addr: u64) -> Result<[u8; N], MemoryError> {
        let mut b = [0u8; N];
        self.read(addr, &mut b)?;
        Ok(b)
    }

    /// Reads a little-endian u32.
    pub fn read_u32(&self, addr: u64) -> Result<u32, MemoryError> {
        self.read_le::<4>(addr).map(u32::from_le_bytes)
    }

    /// Writes a little-endian u32.
    pub fn write_u32(&self, addr: u64, v: u32) -> Result<(), MemoryError> {
        self.write(addr, &v.to_le_bytes())
    }

    /// Reads a little-endian u64.
    pub fn read_u64(&self, addr: u64) -> Result<u64, MemoryError> {
        self.read_le::<8>(addr).map(u64::from_le_bytes)
    }

    /// Writes a little-endian u64.
    pub fn write_u64(&self, addr: u64, v: u64) -> Result<(), MemoryError> {
        self.write(addr, &v.to_le_bytes())
    }
}

impl std::fmt::Debug for GuestRam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestRam").field("size", &self.size).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_sizes() {
        assert_eq!(GuestRam::new(0).unwrap_err(), MemoryError::InvalidSize(0));
        assert_eq!(GuestRam::new(4097).unwrap_err(), MemoryError::InvalidSize(4097));
        assert!(matches!(GuestRam::new(MAX_RAM_BYTES + 4096), Err(MemoryError::InvalidSize(_))));
    }

    #[test]
    fn reads_back_writes_and_checks_bounds() {
        let ram = GuestRam::new(8192).unwrap();
        ram.write_u32(8188, 0xdead_beef).unwrap();
        assert_eq!(ram.read_u32(8188).unwrap(), 0xdead_beef);
        assert!(ram.write_u32(8189, 1).is_err());
        assert!(ram.read(u64::MAX, &mut [0u8; 2]).is_err());
        ram.fill(0, 16, 0xaa).unwrap();
        assert_eq!(ram.read_le::<2>(14).unwrap(), [0xaa, 0xaa]);
    }
}
