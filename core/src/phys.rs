//! The guest-physical address map.
//!
//! A sorted table of non-overlapping regions: RAM (an offset into [`GuestRam`]), ROM
//! (its own read-only mapping), shadow RAM (RAM or ROM segment by segment, as the chipset's
//! [`ShadowControl`] says), and MMIO (routed through the MMIO [`Bus`]). Addresses
//! in no region are unmapped: reads return all-ones and writes are dropped (logged
//! once). CPU accesses go through [`PhysMemory::read`]/[`PhysMemory::write`]; device
//! DMA goes through [`PhysMemory::dma_read`]/[`PhysMemory::dma_write`], which reach RAM
//! only and fail cleanly on anything else.
//!
//! The map also tracks which RAM pages hold code the CPU has decoded, and within each
//! such page which bytes, so that a write over decoded code — by the CPU or by DMA —
//! invalidates the blocks it overlaps, while data written next to code on the same page
//! (a flag polled by a loop, as firmware does) invalidates nothing.

use crate::bus::{size_mask, Bus, BusError};
use crate::memory::GuestRam;
use crate::shadow::{enable, ShadowControl, SHADOW_BASE, SHADOW_END};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// Page size for code tracking.
pub const PAGE_SIZE: u64 = 4096;

/// Bits of a page's decoded-code byte map: one per byte.
type CodeBytes = [u64; (PAGE_SIZE / 64) as usize];

/// Sets (or tests) the bits of bytes `start..end` of a page's byte map.
fn code_bytes_range(map: &mut CodeBytes, start: u64, end: u64, set: bool) -> bool {
    let mut any = false;
    let mut at = start;
    while at < end {
        let word = (at / 64) as usize;
        let bits_end = end.min((word as u64 + 1) * 64);
        let n = bits_end - at;
        let mask = if n == 64 { u64::MAX } else { ((1u64 << n) - 1) << (at % 64) };
        any |= map[word] & mask != 0;
        if set {
            map[word] |= mask;
        }
        at = bits_end;
    }
    any
}

/// The A20 gate: a shared switch that masks physical address bit 20 when closed.
/// Power-on state is open (as QEMU and modern chipsets start).
#[derive(Clone, Debug)]
pub struct A20Gate(Arc<AtomicBool>);

impl Default for A20Gate {
    fn default() -> Self {
        A20Gate(Arc::new(AtomicBool::new(true)))
    }
}

impl A20Gate {
    /// Opens (`true`) or closes the gate.
    pub fn set(&self, enabled: bool) {
        self.0.store(enabled, Ordering::Relaxed);
    }

    /// True when address bit 20 passes.
    pub fn enabled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// What backs a region.
#[derive(Clone, Debug)]
pub enum RegionKind {
    /// Guest RAM at `offset` into the RAM mapping.
    Ram {
        /// Offset into [`GuestRam`].
        offset: u64,
    },
    /// Read-only memory with its own mapping (firmware images).
    Rom {
        /// The ROM bytes (a separate mapping, so KVM can register it read-only).
        data: Arc<GuestRam>,
    },
    /// 0xC0000-0xFFFFF under the chipset's shadow control: each segment's reads and writes
    /// go to guest RAM at `offset` + (address - base) when enabled, else to `rom`.
    Shadow {
        /// Offset into [`GuestRam`] of the region's first byte.
        offset: u64,
        /// What the ROM side holds (firmware in the BIOS segments, all-ones elsewhere).
        rom: Arc<GuestRam>,
        /// The enables, set by the chipset.
        control: Arc<ShadowControl>,
    },
    /// Memory-mapped I/O on the MMIO bus.
    Mmio,
}

/// One entry of the address map.
#[derive(Clone, Debug)]
pub struct Region {
    /// First guest-physical address.
    pub base: u64,
    /// Length in bytes.
    pub len: u64,
    /// What backs it.
    pub kind: RegionKind,
    /// Name for diagnostics.
    pub name: String,
}

/// Errors building the map or doing DMA.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PhysError {
    /// Two regions overlap.
    #[error("physical region {new} at {base:#x}+{len:#x} overlaps {old}")]
    Overlap {
        /// New region name.
        new: String,
        /// Its base.
        base: u64,
        /// Its length.
        len: u64,
        /// The existing region.
        old: String,
    },
    /// A RAM region reaches past the end of guest RAM, or a region is empty or wraps.
    #[error("physical region {0} does not fit")]
    BadRegion(String),
    /// A device tried DMA to or from something that is not RAM.
    #[error("DMA of {len} bytes at {addr:#x} does not lie in guest RAM")]
    DmaOutOfRange {
        /// Start address.
        addr: u64,
        /// Length.
        len: usize,
    },
    /// An MMIO device could not be mapped.
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// The physical address space of one machine.
pub struct PhysMemory {
    ram: Arc<GuestRam>,
    regions: Vec<Region>,
    mmio: Bus,
    a20: A20Gate,
    code_pages: Vec<AtomicU64>,
    /// For each code page (by RAM offset): which of its bytes hold decoded code.
    code_bytes: Mutex<HashMap<u64, Box<CodeBytes>>>,
    written_code: Mutex<Vec<CodeWrite>>,
    code_written_flag: AtomicBool,
    warned: Mutex<Vec<u64>>,
    shadow: Option<Arc<ShadowControl>>,
}

impl PhysMemory {
    /// An address space over `ram` with no regions yet, A20 enabled.
    pub fn new(ram: Arc<GuestRam>) -> Self {
        let pages = ram.size().div_ceil(PAGE_SIZE);
        let words = pages.div_ceil(64) as usize;
        PhysMemory {
            ram,
            regions: Vec::new(),
            mmio: Bus::new_mmio(),
            a20: A20Gate::default(),
            code_pages: (0..words).map(|_| AtomicU64::new(0)).collect(),
            code_bytes: Mutex::new(HashMap::new()),
            written_code: Mutex::new(Vec::new()),
            code_written_flag: AtomicBool::new(false),
            warned: Mutex::new(Vec::new()),
            shadow: None,
        }
    }

    /// The RAM mapping.
    pub fn ram(&self) -> &Arc<GuestRam> {
        &self.ram
    }

    /// The MMIO bus (to map devices before the machine starts).
    pub fn mmio_mut(&mut self) -> &mut Bus {
        &mut self.mmio
    }

    /// The MMIO bus.
    pub fn mmio(&self) -> &Bus {
        &self.mmio
    }

    /// Regions in address order.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// Adds a region; rejects overlaps and RAM regions outside guest RAM.
    pub fn add_region(&mut self, region: Region) -> Result<(), PhysError> {
        let end = region.base.checked_add(region.len);
        if region.len == 0 || end.is_none() {
            return Err(PhysError::BadRegion(region.name));
        }
        if let RegionKind::Ram { offset } = region.kind {
            if offset.checked_add(region.len).is_none_or(|e| e > self.ram.size()) {
                return Err(PhysError::BadRegion(region.name));
            }
        }
        if let RegionKind::Rom { data } = &region.kind {
            if data.size() < region.len {
                return Err(PhysError::BadRegion(region.name));
            }
        }
        if let RegionKind::Shadow { offset, rom, control } = &region.kind {
            let exact = region.base == SHADOW_BASE && region.len == SHADOW_END - SHADOW_BASE;
            let fits = offset.checked_add(region.len).is_some_and(|e| e <= self.ram.size()) && rom.size() >= region.len;
            if !exact || !fits || self.shadow.is_some() {
                return Err(PhysError::BadRegion(region.name));
            }
            self.shadow = Some(control.clone());
        }
        if let Some(old) =
            self.regions.iter().find(|r| r.base < region.base + region.len && region.base < r.base + r.len)
        {
            return Err(PhysError::Overlap {
                new: region.name,
                base: region.base,
                len: region.len,
                old: old.name.clone(),
            });
        }
        let idx = self.regions.partition_point(|r| r.base < region.base);
        self.regions.insert(idx, region);
        Ok(())
    }

    /// Maps an MMIO device at `base..base+len` (both in the address map and on the bus).
    pub fn add_mmio(
        &mut self,
        name: &str,
        base: u64,
        len: u64,
        dev: crate::bus::SharedDevice,
    ) -> Result<(), PhysError> {
        self.add_region(Region { base, len, kind: RegionKind::Mmio, name: name.into() })?;
        self.mmio.insert(name, base, len, dev)?;
        Ok(())
    }

    /// The region holding `addr`.
    pub fn lookup(&self, addr: u64) -> Option<&Region> {
        let idx = self.regions.partition_point(|r| r.base <= addr);
        let r = self.regions.get(idx.checked_sub(1)?)?;
        (addr - r.base < r.len).then_some(r)
    }

    /// The A20 gate, to hand to the devices that drive it (8042, port 0x92).
    pub fn a20_gate(&self) -> A20Gate {
        self.a20.clone()
    }

    /// Whether the A20 gate lets address bit 20 through.
    pub fn a20_enabled(&self) -> bool {
        self.a20.enabled()
    }

    /// Opens or closes the A20 gate.
    pub fn set_a20(&self, enabled: bool) {
        self.a20.set(enabled);
    }

    /// Mask the CPU applies to physical addresses (bit 20 cleared when A20 is off).
    pub fn a20_mask(&self) -> u64 {
        if self.a20_enabled() {
            u64::MAX
        } else {
            !(1u64 << 20)
        }
    }

    /// For a run of `len` bytes at `addr` that lies inside one region and reads and writes
    /// guest RAM, the RAM offset; the interpreter's TLB uses this for direct access.
    pub fn ram_offset(&self, addr: u64, len: u64) -> Option<u64> {
        self.ram_offset_with(addr, len, enable::READ_WRITE)
    }

    /// For a run of `len` bytes at `addr` inside one region whose reads reach guest RAM, the
    /// RAM offset and whether writes reach it too (not in write-protected shadow RAM). The
    /// interpreter's TLB uses this for direct reads and writes.
    pub fn ram_read_access(&self, addr: u64, len: u64) -> Option<(u64, bool)> {
        let (offset, enables) = self.ram_run(addr, len)?;
        (enables & enable::READ != 0).then_some((offset, enables & enable::WRITE != 0))
    }

    fn ram_offset_with(&self, addr: u64, len: u64, bits: u8) -> Option<u64> {
        let (offset, enables) = self.ram_run(addr, len)?;
        (enables & bits == bits).then_some(offset)
    }

    /// For a run of `len` bytes at `addr` inside one RAM or shadow region, the RAM offset and
    /// the [`enable`] bits that hold for the whole run (both for plain RAM).
    fn ram_run(&self, addr: u64, len: u64) -> Option<(u64, u8)> {
        let r = self.lookup(addr)?;
        if addr - r.base + len > r.len {
            return None;
        }
        match &r.kind {
            RegionKind::Ram { offset } => Some((offset + addr - r.base, enable::READ_WRITE)),
            RegionKind::Shadow { offset, control, .. } => {
                let enables = [enable::READ, enable::WRITE]
                    .into_iter()
                    .filter(|&bit| control.all(addr, len, bit))
                    .fold(0, |all, bit| all | bit);
                Some((offset + addr - r.base, enables))
            }
            _ => None,
        }
    }

    /// The chipset's shadow control, when the map has a shadow region.
    pub fn shadow(&self) -> Option<&Arc<ShadowControl>> {
        self.shadow.as_ref()
    }

    /// The shadow region's ROM side (offset 0 is 0xC0000), for the board to put firmware in.
    pub fn shadow_rom(&self) -> Option<&Arc<GuestRam>> {
        match &self.lookup(SHADOW_BASE)?.kind {
            RegionKind::Shadow { rom, .. } => Some(rom),
            _ => None,
        }
    }

    fn warn_once(&self, what: &str, addr: u64) {
        let mut w = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if w.len() < 64 && !w.contains(&addr) {
            w.push(addr);
            log::warn!("{what} at unmapped physical address {addr:#x}");
        }
    }

    /// Splits `addr..addr+len` at region boundaries, calling `f(addr, chunk_len, region)`.
    fn for_each_chunk(&self, mut addr: u64, len: usize, mut f: impl FnMut(u64, usize, usize, Option<&Region>)) {
        let mut done = 0usize;
        while done < len {
            let region = self.lookup(addr);
            let chunk = match region {
                Some(r) => ((r.base + r.len - addr) as usize).min(len - done),
                None => {
                    let idx = self.regions.partition_point(|r| r.base <= addr);
                    let next = self.regions.get(idx).map(|r| r.base).unwrap_or(u64::MAX);
                    (next.saturating_sub(addr) as usize).clamp(1, len - done)
                }
            };
            f(addr, done, chunk, region);
            done += chunk;
            addr = addr.wrapping_add(chunk as u64);
        }
    }

    /// CPU read of physical memory (ROM and MMIO included; unmapped reads all-ones).
    pub fn read(&self, addr: u64, buf: &mut [u8]) {
        self.for_each_chunk(addr, buf.len(), |a, at, n, region| {
            let out = &mut buf[at..at + n];
            match region.map(|r| (r, &r.kind)) {
                Some((r, RegionKind::Ram { offset })) => {
                    let _ = self.ram.read(offset + (a - r.base), out);
                }
                Some((r, RegionKind::Rom { data })) => {
                    let _ = data.read(a - r.base, out);
                }
                Some((r, RegionKind::Shadow { offset, rom, control })) => {
                    for (s, at, n, bits) in shadow_pieces(control, a, out.len()) {
                        let piece = &mut out[at..at + n];
                        let _ = if bits & enable::READ != 0 {
                            self.ram.read(offset + (s - r.base), piece)
                        } else {
                            rom.read(s - r.base, piece)
                        };
                    }
                }
                Some((_, RegionKind::Mmio)) => mmio_read(&self.mmio, a, out),
                None => {
                    self.warn_once("read", a);
                    out.fill(0xff);
                }
            }
        });
    }

    /// CPU write of physical memory (ROM writes are dropped, MMIO goes to the device).
    pub fn write(&self, addr: u64, buf: &[u8]) {
        self.for_each_chunk(addr, buf.len(), |a, at, n, region| {
            let data = &buf[at..at + n];
            match region.map(|r| (r, &r.kind)) {
                Some((r, RegionKind::Ram { offset })) => {
                    let off = offset + (a - r.base);
                    let _ = self.ram.write(off, data);
                    self.note_write(off, n as u64);
                }
                Some((_, RegionKind::Rom { .. })) => log::trace!("ROM write dropped at {a:#x}"),
                Some((r, RegionKind::Shadow { offset, control, .. })) => {
                    for (s, at, n, bits) in shadow_pieces(control, a, data.len()) {
                        if bits & enable::WRITE != 0 {
                            let off = offset + (s - r.base);
                            let _ = self.ram.write(off, &data[at..at + n]);
                            self.note_write(off, n as u64);
                        } else {
                            log::trace!("write to write-protected shadow RAM dropped at {s:#x}");
                        }
                    }
                }
                Some((_, RegionKind::Mmio)) => mmio_write(&self.mmio, a, data),
                None => self.warn_once("write", a),
            }
        });
    }

    /// The RAM pieces of a DMA transfer of `len` bytes at `addr`: (RAM offset, offset into
    /// the buffer, length) for each region it crosses. Fails unless every byte reaches guest
    /// RAM for the transfer's direction (`bits`: shadow RAM can refuse reads or writes).
    fn dma_pieces(&self, addr: u64, len: usize, bits: u8) -> Result<Vec<(u64, usize, usize)>, PhysError> {
        let out_of_range = PhysError::DmaOutOfRange { addr, len };
        if addr.checked_add(len as u64).is_none() {
            return Err(out_of_range);
        }
        let mut pieces = Vec::new();
        let mut ok = true;
        self.for_each_chunk(addr, len, |a, at, n, _| match self.ram_offset_with(a, n as u64, bits) {
            Some(off) => pieces.push((off, at, n)),
            None => ok = false,
        });
        ok.then_some(pieces).ok_or(out_of_range)
    }

    /// Device DMA read: every byte must be guest RAM (it may cross regions).
    pub fn dma_read(&self, addr: u64, buf: &mut [u8]) -> Result<(), PhysError> {
        for (off, at, n) in self.dma_pieces(addr, buf.len(), enable::READ)? {
            self.ram.read(off, &mut buf[at..at + n]).map_err(|_| PhysError::DmaOutOfRange { addr, len: buf.len() })?;
        }
        Ok(())
    }

    /// Device DMA write: every byte must be writable guest RAM (nothing is written
    /// otherwise); invalidates code pages.
    pub fn dma_write(&self, addr: u64, buf: &[u8]) -> Result<(), PhysError> {
        for (off, at, n) in self.dma_pieces(addr, buf.len(), enable::WRITE)? {
            self.ram.write(off, &buf[at..at + n]).map_err(|_| PhysError::DmaOutOfRange { addr, len: buf.len() })?;
            self.note_write(off, n as u64);
        }
        Ok(())
    }

    /// Marks `len` (> 0) bytes at RAM offset `ram_off`, within one page, as holding
    /// decoded code; true when their page held none before (the CPU then stops writing to
    /// it directly).
    pub fn mark_code(&self, ram_off: u64, len: u64) -> bool {
        let page = ram_off / PAGE_SIZE;
        let Some(w) = self.code_pages.get((page / 64) as usize) else {
            return false;
        };
        let start = ram_off % PAGE_SIZE;
        let end = (start + len.max(1)).min(PAGE_SIZE);
        let mut bytes = self.code_bytes.lock().unwrap_or_else(|e| e.into_inner());
        let map = bytes.entry(page * PAGE_SIZE).or_insert_with(|| Box::new([0; (PAGE_SIZE / 64) as usize]));
        code_bytes_range(map, start, end, true);
        w.fetch_or(1 << (page % 64), Ordering::AcqRel) & (1 << (page % 64)) == 0
    }

    /// True when the page holding RAM offset `ram_off` holds decoded code.
    pub fn is_code_page(&self, ram_off: u64) -> bool {
        let page = ram_off / PAGE_SIZE;
        self.code_pages.get((page / 64) as usize).is_some_and(|w| w.load(Ordering::Acquire) & (1 << (page % 64)) != 0)
    }

    /// Records a write to RAM offsets `ram_off..ram_off+len`: where it touches the decoded
    /// regions of a code page, the bytes it wrote there are queued for the CPU, which drops
    /// the blocks they overlap and then calls [`PhysMemory::reset_code`]; a write beside the
    /// code on the page changes nothing.
    pub fn note_write(&self, ram_off: u64, len: u64) {
        if len == 0 {
            return;
        }
        let first = ram_off / PAGE_SIZE;
        let last = (ram_off + len - 1) / PAGE_SIZE;
        for page in first..=last {
            let Some(w) = self.code_pages.get((page / 64) as usize) else { break };
            if w.load(Ordering::Acquire) & (1u64 << (page % 64)) == 0 {
                continue;
            }
            let base = page * PAGE_SIZE;
            let (start, end) = (ram_off.max(base) - base, (ram_off + len).min(base + PAGE_SIZE) - base);
            let mut bytes = self.code_bytes.lock().unwrap_or_else(|e| e.into_inner());
            if !bytes.get_mut(&base).is_some_and(|map| code_bytes_range(map, start, end, false)) {
                continue;
            }
            drop(bytes);
            let mut written = self.written_code.lock().unwrap_or_else(|e| e.into_inner());
            // A run of writes (a copy, a fill) over the same code becomes one range.
            match written.last_mut() {
                Some(last) if last.page == base && start <= last.end && last.start <= end => {
                    last.start = last.start.min(start);
                    last.end = last.end.max(end);
                }
                _ => written.push(CodeWrite { page: base, start, end }),
            }
            drop(written);
            self.code_written_flag.store(true, Ordering::Release);
        }
    }

    /// Takes the writes over decoded code since the last call.
    pub fn take_code_writes(&self) -> Vec<CodeWrite> {
        if !self.code_written_flag.swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        std::mem::take(&mut *self.written_code.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// After the CPU dropped the blocks that writes hit: the page at RAM offset `page` now
    /// holds decoded code only in `spans` (byte ranges within the page); with none left it
    /// stops being a code page.
    pub fn reset_code(&self, page: u64, spans: &[(u64, u64)]) {
        let index = page / PAGE_SIZE;
        let Some(w) = self.code_pages.get((index / 64) as usize) else {
            return;
        };
        let mut bytes = self.code_bytes.lock().unwrap_or_else(|e| e.into_inner());
        let mut map: Box<CodeBytes> = Box::new([0; (PAGE_SIZE / 64) as usize]);
        for &(start, end) in spans {
            code_bytes_range(&mut map, start.min(PAGE_SIZE), end.min(PAGE_SIZE), true);
        }
        if map.iter().all(|&word| word == 0) {
            bytes.remove(&page);
            w.fetch_and(!(1u64 << (index % 64)), Ordering::AcqRel);
        } else {
            bytes.insert(page, map);
        }
    }
}

/// A write that touched decoded code: the page (RAM offset of its start) and the bytes
/// written within it, `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeWrite {
    /// RAM offset of the page.
    pub page: u64,
    /// First byte written, as an offset in the page.
    pub start: u64,
    /// One past the last byte written in the page.
    pub end: u64,
}

/// Splits `len` bytes at `addr` (inside the shadow region) at segment boundaries:
/// (address, offset into the access, length, the segment's enables).
fn shadow_pieces(control: &ShadowControl, addr: u64, len: usize) -> impl Iterator<Item = (u64, usize, usize, u8)> + '_ {
    let mut done = 0usize;
    std::iter::from_fn(move || {
        if done >= len {
            return None;
        }
        let a = addr + done as u64;
        let index = ShadowControl::segment_of(a)?;
        let (start, size) = ShadowControl::segment_range(index);
        let n = ((start + size - a) as usize).min(len - done);
        let piece = (a, done, n, control.get(index));
        done += n;
        Some(piece)
    })
}

/// Splits an MMIO access into naturally aligned pieces of at most 8 bytes.
fn mmio_pieces(addr: u64, len: usize) -> impl Iterator<Item = (u64, usize, u8)> {
    let mut done = 0usize;
    std::iter::from_fn(move || {
        if done >= len {
            return None;
        }
        let a = addr + done as u64;
        let mut size = 8usize;
        while size > 1 && (!a.is_multiple_of(size as u64) || size > len - done) {
            size /= 2;
        }
        let piece = (a, done, size as u8);
        done += size;
        Some(piece)
    })
}

fn mmio_read(bus: &Bus, addr: u64, out: &mut [u8]) {
    for (a, at, size) in mmio_pieces(addr, out.len()) {
        let v = bus.read(a, size) & size_mask(size);
        out[at..at + size as usize].copy_from_slice(&v.to_le_bytes()[..size as usize]);
    }
}

fn mmio_write(bus: &Bus, addr: u64, data: &[u8]) {
    for (a, at, size) in mmio_pieces(addr, data.len()) {
        let mut b = [0u8; 8];
        b[..size as usize].copy_from_slice(&data[at..at + size as usize]);
        bus.write(a, size, u64::from_le_bytes(b));
    }
}

impl std::fmt::Debug for PhysMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhysMemory").field("regions", &self.regions).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::BusDevice;

    struct Echo(Vec<(u64, u8, u64)>);
    impl BusDevice for Echo {
        fn read(&mut self, offset: u64, size: u8) -> u64 {
            offset * 0x10 + size as u64
        }
        fn write(&mut self, offset: u64, size: u8, value: u64) {
            self.0.push((offset, size, value));
        }
    }

    fn map() -> (PhysMemory, Arc<Mutex<Echo>>) {
        let ram = Arc::new(GuestRam::new(0x20_0000).unwrap());
        let mut m = PhysMemory::new(ram);
        m.add_region(Region { base: 0, len: 0xA_0000, kind: RegionKind::Ram { offset: 0 }, name: "low".into() })
            .unwrap();
        let rom = Arc::new(GuestRam::new(0x1000).unwrap());
        rom.write(0, &[1, 2, 3, 4]).unwrap();
        m.add_region(Region { base: 0xF_F000, len: 0x1000, kind: RegionKind::Rom { data: rom }, name: "rom".into() })
            .unwrap();
        let dev = Arc::new(Mutex::new(Echo(Vec::new())));
        m.add_mmio("echo", 0xA_0000, 0x100, dev.clone()).unwrap();
        (m, dev)
    }

    #[test]
    fn dispatches_by_region() {
        let (m, dev) = map();
        m.write(0x9_FFFE, &[9, 8, 7, 6]);
        let mut b = [0u8; 2];
        m.read(0x9_FFFE, &mut b);
        assert_eq!(b, [9, 8]);
        assert_eq!(dev.lock().unwrap().0, vec![(0, 2, 0x0607)]);
        m.read(0xF_F000, &mut b);
        assert_eq!(b, [1, 2]);
        m.write(0xF_F000, &[0xee]);
        m.read(0xF_F000, &mut b);
        assert_eq!(b, [1, 2], "ROM is read-only");
        let mut w = [0u8; 4];
        m.read(0xA_0010, &mut w);
        assert_eq!(u32::from_le_bytes(w), 0x104);
        m.read(0xB_0000, &mut w);
        assert_eq!(w, [0xff; 4], "unmapped reads all-ones");
    }

    #[test]
    fn rejects_overlap_and_bad_ram() {
        let (mut m, _) = map();
        let r = Region { base: 0x9_0000, len: 0x2_0000, kind: RegionKind::Ram { offset: 0 }, name: "x".into() };
        assert!(matches!(m.add_region(r), Err(PhysError::Overlap { .. })));
        let r = Region { base: 0x100_0000, len: 0x30_0000, kind: RegionKind::Ram { offset: 0 }, name: "y".into() };
        assert_eq!(m.add_region(r), Err(PhysError::BadRegion("y".into())));
    }

    #[test]
    fn dma_reaches_ram_only() {
        let (m, _) = map();
        m.dma_write(0x1000, &[5; 16]).unwrap();
        assert!(m.dma_write(0x9_FFF8, &[0; 16]).is_err());
        assert!(m.dma_read(0xA_0000, &mut [0; 4]).is_err());
        assert!(m.dma_read(u64::MAX - 2, &mut [0; 4]).is_err());
    }

    /// 2 MiB of RAM with the shadow region over 0xC0000-0xFFFFF (its ROM side holding 0xaa)
    /// and plain RAM above it.
    fn shadow_map(initial: u8) -> (PhysMemory, Arc<ShadowControl>) {
        let mut m = PhysMemory::new(Arc::new(GuestRam::new(0x20_0000).unwrap()));
        let rom = Arc::new(GuestRam::new(0x4_0000).unwrap());
        rom.fill(0, 0x4_0000, 0xaa).unwrap();
        let control = Arc::new(ShadowControl::new(initial));
        let kind = RegionKind::Shadow { offset: SHADOW_BASE, rom, control: control.clone() };
        m.add_region(Region { base: SHADOW_BASE, len: 0x4_0000, kind, name: "shadow".into() }).unwrap();
        let above = RegionKind::Ram { offset: SHADOW_END };
        m.add_region(Region { base: SHADOW_END, len: 0x10_0000, kind: above, name: "high".into() }).unwrap();
        (m, control)
    }

    #[test]
    fn shadow_segments_route_reads_and_writes_by_their_enables() {
        let (m, control) = shadow_map(enable::READ_WRITE);
        let read = |addr| {
            let mut b = [0u8; 1];
            m.read(addr, &mut b);
            b[0]
        };
        m.write(0xF_0000, &[1]);
        assert_eq!(read(0xF_0000), 1, "plain RAM");
        assert_eq!(m.ram_offset(0xF_0000, 0x1000), Some(0xF_0000));
        assert_eq!(m.ram_read_access(0xF_0000, 0x1000), Some((0xF_0000, true)));
        control.set(12, enable::READ);
        m.write(0xF_0000, &[2]);
        assert_eq!(read(0xF_0000), 1, "write-protected");
        assert_eq!(m.ram_offset(0xF_0000, 0x1000), None, "no direct writes");
        assert_eq!(m.ram_read_access(0xF_0000, 0x1000), Some((0xF_0000, false)), "direct reads only");
        control.set(12, 0);
        assert_eq!(read(0xF_0000), 0xaa, "reads from the ROM side");
        assert_eq!(m.ram_read_access(0xF_0000, 1), None);
        control.set(12, enable::WRITE);
        m.write(0xF_0000, &[3]);
        assert_eq!(read(0xF_0000), 0xaa, "write-only: the write went to RAM, reads still see ROM");
        control.set(12, enable::READ_WRITE);
        assert_eq!(read(0xF_0000), 3);
        // An access across a segment boundary is split by the two segments' enables.
        control.set(1, enable::READ);
        m.write(0xC_3FFE, &[7, 7, 7, 7]);
        let mut b = [0u8; 4];
        m.read(0xC_3FFE, &mut b);
        assert_eq!(b, [7, 7, 0, 0]);
        assert_eq!(control.generation(), 5);
    }

    #[test]
    fn dma_crosses_regions_and_honours_shadow_enables() {
        let (m, control) = shadow_map(enable::READ_WRITE);
        m.dma_write(0xF_FFF8, &[9; 16]).unwrap();
        let mut b = [0u8; 16];
        m.dma_read(0xF_FFF8, &mut b).unwrap();
        assert_eq!(b, [9; 16], "a transfer across 1 MiB");
        control.set(12, enable::READ);
        assert!(m.dma_write(0xF_FFF8, &[1; 16]).is_err());
        m.dma_read(0xF_FFF8, &mut b).unwrap();
        assert_eq!(b, [9; 16], "a refused transfer writes nothing");
        control.set(12, 0);
        assert!(m.dma_read(0xF_0000, &mut b).is_err(), "device reads of the ROM side are refused");
    }

    #[test]
    fn a_shadow_region_must_cover_the_shadow_range_once() {
        let (mut m, control) = shadow_map(enable::READ_WRITE);
        let rom = Arc::new(GuestRam::new(0x4_0000).unwrap());
        let kind = RegionKind::Shadow { offset: 0, rom, control };
        let r = Region { base: 0x40_0000, len: 0x4_0000, kind, name: "second".into() };
        assert_eq!(m.add_region(r), Err(PhysError::BadRegion("second".into())));
    }

    #[test]
    fn writes_over_code_are_reported_until_the_cpu_resets_the_page() {
        let (m, _) = map();
        assert!(m.mark_code(0x2000, 0x1000));
        assert!(!m.mark_code(0x2000, 1), "already a code page");
        assert!(m.is_code_page(0x2fff));
        m.write(0x2ff0, &[1; 32]);
        m.dma_write(0x2000, &[1]).unwrap();
        let w = |start, end| CodeWrite { page: 0x2000, start, end };
        assert_eq!(m.take_code_writes(), vec![w(0xff0, 0x1000), w(0, 1)]);
        assert!(m.take_code_writes().is_empty());
        m.reset_code(0x2000, &[(0x100, 0x110)]);
        assert!(m.is_code_page(0x2000), "code left at 0x100");
        m.write(0x2000, &[2]);
        m.write(0x2110, &[2]);
        assert!(m.take_code_writes().is_empty(), "no code at 0x2000 or 0x2110 any more");
        m.reset_code(0x2000, &[]);
        assert!(!m.is_code_page(0x2000));
    }

    #[test]
    fn writes_beside_decoded_code_on_its_page_are_not_reported() {
        let (m, _) = map();
        // Code at 0x2100..0x2140; data on both sides of it.
        m.mark_code(0x2100, 0x40);
        m.write(0x2000, &[1; 0x100]);
        m.write(0x2140, &[1; 4]);
        m.dma_write(0x2300, &[1; 16]).unwrap();
        assert!(m.take_code_writes().is_empty());
        assert!(m.is_code_page(0x2000));
        // The code's first and last bytes.
        m.write(0x20ff, &[2, 2]);
        m.write(0x213f, &[2]);
        let w = |start, end| CodeWrite { page: 0x2000, start, end };
        assert_eq!(m.take_code_writes(), vec![w(0xff, 0x101), w(0x13f, 0x140)]);
    }

    #[test]
    fn a_run_of_writes_over_code_is_reported_as_one_range() {
        let (m, _) = map();
        m.mark_code(0x2000, 0x100);
        for i in 0..0x40 {
            m.write(0x2010 + i * 2, &[3, 3]);
        }
        m.write(0x2008, &[4; 8]);
        m.write(0x20f0, &[5]);
        let w = |start, end| CodeWrite { page: 0x2000, start, end };
        assert_eq!(m.take_code_writes(), vec![w(0x8, 0x90), w(0xf0, 0xf1)]);
    }

    #[test]
    fn byte_maps_cover_exactly_the_range() {
        let mut map: CodeBytes = [0; 64];
        assert!(!code_bytes_range(&mut map, 60, 130, true));
        assert_eq!((map[0], map[1], map[2]), (0xf << 60, u64::MAX, 0b11));
        assert!(code_bytes_range(&mut map, 129, 130, false));
        assert!(!code_bytes_range(&mut map, 130, 4096, false));
        assert!(!code_bytes_range(&mut map, 0, 60, false));
    }

    #[test]
    fn mmio_pieces_are_aligned() {
        let p: Vec<_> = mmio_pieces(0x1003, 7).collect();
        assert_eq!(p, vec![(0x1003, 0, 1), (0x1004, 1, 4), (0x1008, 5, 2)]);
    }
}
