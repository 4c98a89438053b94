//! Multiboot 1 loader (Multiboot Specification version 0.6.96).
//!
//! Section 3.1 (OS image format): the header lies 32-bit aligned in the first 8192 bytes;
//! the image is ELF32 or described by the "a.out kludge" address fields. Section 3.2
//! (machine state): EAX = 0x2BADB002, EBX = the Multiboot information, flat 32-bit CS and
//! data segments, A20 on, paging and interrupts off. Section 3.3: the boot information.

use crate::elf;
use crate::error::LoadError;
use crate::layout::{E820Type, MemoryLayout, EBDA_START, EXTENDED_START};
use crate::lowmem::{self, CodeBits, BOOT_CS, BOOT_DS, BOOT_GDT_ADDR, MULTIBOOT_INFO_ADDR, MULTIBOOT_INFO_LIMIT};
use crate::{write_zeros, KernelKind, LoadedKernel, Module};
use rx86_core::entry::{gpr, EntryState};
use rx86_core::phys::PhysMemory;

/// Header magic (section 3.1.2).
pub const MULTIBOOT_HEADER_MAGIC: u32 = 0x1BAD_B002;
/// EAX at entry: tells the kernel a Multiboot loader started it (section 3.2).
pub const MULTIBOOT_BOOTLOADER_MAGIC: u32 = 0x2BAD_B002;
/// The header must lie within this many bytes of the file start.
pub const MULTIBOOT_SEARCH: usize = 8192;
/// Header flags bit 0: align modules on 4 KiB boundaries (always done).
const FLAG_PAGE_ALIGN: u32 = 1 << 0;
/// Header flags bit 1: supply mem_* (always done, with the memory map).
const FLAG_MEMORY_INFO: u32 = 1 << 1;
/// Header flags bit 2: supply the video mode table (not supported).
const FLAG_VIDEO_MODE: u32 = 1 << 2;
/// Header flags bit 16: the a.out kludge address fields are valid.
const FLAG_AOUT_KLUDGE: u32 = 1 << 16;
/// Header flags bits 0-15 are requirements the loader must satisfy or refuse.
const REQUIRED_FLAGS: u32 = 0xFFFF;
/// Size of the header with the address fields.
const HEADER_WITH_ADDRESSES: usize = 32;

/// Info flags bit 0: mem_lower/mem_upper valid.
const INFO_MEMORY: u32 = 1 << 0;
/// Info flags bit 2: cmdline valid.
const INFO_CMDLINE: u32 = 1 << 2;
/// Info flags bit 3: mods_count/mods_addr valid.
const INFO_MODS: u32 = 1 << 3;
/// Info flags bit 6: mmap_length/mmap_addr valid.
const INFO_MMAP: u32 = 1 << 6;
/// Info flags bit 9: boot_loader_name valid.
const INFO_LOADER_NAME: u32 = 1 << 9;
/// Size of the information structure up to and including the framebuffer fields, so
/// kernels that copy the whole later-spec structure read zeros, not strings.
const INFO_SIZE: usize = 116;
/// Bytes per memory-map entry (4-byte size field + 20-byte record).
const MMAP_ENTRY_SIZE: usize = 24;
/// Bytes per module-list entry (mod_start, mod_end, string, reserved).
const MODULE_ENTRY_SIZE: usize = 16;
/// The boot loader name handed to the kernel.
const BOOT_LOADER_NAME: &str = "rx86";
/// Page size for module alignment.
const PAGE: u64 = 4096;

/// The a.out kludge fields (header offsets 12-28).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AoutKludge {
    header_addr: u64,
    load_addr: u64,
    load_end_addr: u64,
    bss_end_addr: u64,
    entry_addr: u64,
}

/// A Multiboot header found in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultibootHeader {
    /// File offset of the magic.
    pub offset: usize,
    /// The header's flags.
    pub flags: u32,
    aout: Option<AoutKludge>,
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Finds the Multiboot header: `Ok(None)` when there is no magic at all, an error when
/// a magic is present but no copy has a valid checksum or the address fields are cut off.
pub fn find_header(bytes: &[u8]) -> Result<Option<MultibootHeader>, LoadError> {
    let limit = bytes.len().min(MULTIBOOT_SEARCH);
    let mut bad_checksum = None;
    for offset in (0..limit.saturating_sub(11)).step_by(4) {
        if u32_at(bytes, offset) != MULTIBOOT_HEADER_MAGIC {
            continue;
        }
        let flags = u32_at(bytes, offset + 4);
        let checksum = u32_at(bytes, offset + 8);
        if MULTIBOOT_HEADER_MAGIC.wrapping_add(flags).wrapping_add(checksum) != 0 {
            bad_checksum.get_or_insert(offset);
            continue;
        }
        let aout = if flags & FLAG_AOUT_KLUDGE != 0 {
            if bytes.len() < offset + HEADER_WITH_ADDRESSES {
                return Err(LoadError::Truncated {
                    what: "Multiboot header",
                    len: bytes.len() as u64,
                    need: (offset + HEADER_WITH_ADDRESSES) as u64,
                });
            }
            let f = |i: usize| u64::from(u32_at(bytes, offset + 12 + 4 * i));
            Some(AoutKludge {
                header_addr: f(0),
                load_addr: f(1),
                load_end_addr: f(2),
                bss_end_addr: f(3),
                entry_addr: f(4),
            })
        } else {
            None
        };
        return Ok(Some(MultibootHeader { offset, flags, aout }));
    }
    match bad_checksum {
        Some(offset) => Err(LoadError::MultibootChecksum(offset)),
        None => Ok(None),
    }
}

/// One contiguous piece of the image in guest memory: file bytes then zeros.
struct Piece<'a> {
    addr: u64,
    data: &'a [u8],
    zeros: u64,
}

impl Piece<'_> {
    fn end(&self) -> u64 {
        self.addr + self.data.len() as u64 + self.zeros
    }
}

/// The image pieces and the physical entry point described by the a.out kludge.
fn aout_pieces<'a>(
    bytes: &'a [u8],
    header: &MultibootHeader,
    k: &AoutKludge,
) -> Result<(Vec<Piece<'a>>, u64), LoadError> {
    let bad = |m: String| LoadError::BadAoutKludge(m);
    let before_header = k
        .header_addr
        .checked_sub(k.load_addr)
        .ok_or_else(|| bad(format!("load_addr {:#x} is above header_addr {:#x}", k.load_addr, k.header_addr)))?;
    let load_offset = (header.offset as u64)
        .checked_sub(before_header)
        .ok_or_else(|| bad(format!("load_addr {:#x} would start before the file", k.load_addr)))?;
    let available = bytes.len() as u64 - load_offset;
    let data_len = if k.load_end_addr == 0 {
        available
    } else {
        let len = k.load_end_addr.checked_sub(k.load_addr).ok_or_else(|| {
            bad(format!("load_end_addr {:#x} is below load_addr {:#x}", k.load_end_addr, k.load_addr))
        })?;
        if len > available {
            return Err(LoadError::Truncated {
                what: "Multiboot a.out image",
                len: bytes.len() as u64,
                need: load_offset + len,
            });
        }
        len
    };
    let data_end = k.load_addr + data_len;
    let zeros = if k.bss_end_addr == 0 {
        0
    } else {
        k.bss_end_addr.checked_sub(data_end).ok_or_else(|| {
            bad(format!("bss_end_addr {:#x} is below the end of the data {data_end:#x}", k.bss_end_addr))
        })?
    };
    if data_end + zeros > 1 << 32 {
        return Err(bad(format!("image at {:#x}..{:#x} reaches past 4 GiB", k.load_addr, data_end + zeros)));
    }
    let data = &bytes[load_offset as usize..(load_offset + data_len) as usize];
    Ok((vec![Piece { addr: k.load_addr, data, zeros }], k.entry_addr))
}

/// The image pieces and physical entry point of an ELF32 kernel.
fn elf_pieces(bytes: &[u8]) -> Result<(Vec<Piece<'_>>, u64), LoadError> {
    let image = elf::parse_elf32(bytes)?;
    let pieces = image
        .segments
        .iter()
        .map(|s| Piece {
            addr: s.paddr,
            data: &bytes[s.offset as usize..(s.offset + s.filesz) as usize],
            zeros: s.memsz - s.filesz,
        })
        .collect();
    Ok((pieces, image.physical_entry()))
}

/// Fails unless `start..end` lies inside one usable E820 range.
fn check_usable(layout: &MemoryLayout, what: &str, start: u64, end: u64) -> Result<(), LoadError> {
    let usable =
        layout.e820().into_iter().any(|e| e.kind == E820Type::Usable && start >= e.addr && end <= e.addr + e.size);
    if usable && end > start {
        Ok(())
    } else {
        Err(LoadError::OutsideRam { what: what.into(), start, end })
    }
}

/// Fails when `start..end` overlaps any of `taken` (name, start, end).
fn check_free(what: &str, start: u64, end: u64, taken: &[(String, u64, u64)]) -> Result<(), LoadError> {
    match taken.iter().find(|(_, s, e)| start < *e && *s < end) {
        Some((other, s, e)) => {
            Err(LoadError::Overlap { what: what.into(), start, end, other: format!("{other} at {s:#x}..{e:#x}") })
        }
        None => Ok(()),
    }
}

/// Strings and tables of the Multiboot information, laid out for a given base address.
struct InfoBuilder {
    base: u64,
    bytes: Vec<u8>,
}

impl InfoBuilder {
    fn put_u32(&mut self, at: usize, v: u32) {
        self.bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// Appends bytes at a 4-byte boundary and returns their guest address.
    fn append(&mut self, data: &[u8]) -> u32 {
        let at = self.bytes.len().next_multiple_of(4);
        self.bytes.resize(at, 0);
        self.bytes.extend_from_slice(data);
        (self.base + at as u64) as u32
    }

    fn append_str(&mut self, s: &str) -> u32 {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.append(&b)
    }
}

/// Builds the Multiboot information for `base`; `modules` are (start, end, cmdline).
fn build_info(base: u64, layout: &MemoryLayout, cmdline: &str, modules: &[(u64, u64, &str)]) -> Vec<u8> {
    let mut info = InfoBuilder { base, bytes: vec![0u8; INFO_SIZE] };
    let flags = INFO_MEMORY | INFO_CMDLINE | INFO_MODS | INFO_MMAP | INFO_LOADER_NAME;
    info.put_u32(0, flags);
    info.put_u32(4, (EBDA_START / 1024) as u32);
    info.put_u32(8, ((layout.usable_low_end() - EXTENDED_START) / 1024) as u32);
    let cmdline_addr = info.append_str(cmdline);
    info.put_u32(16, cmdline_addr);
    let strings: Vec<u32> = modules.iter().map(|m| info.append_str(m.2)).collect();
    let mut list = Vec::with_capacity(modules.len() * MODULE_ENTRY_SIZE);
    for (m, &string) in modules.iter().zip(&strings) {
        // mod_start, mod_end, string, reserved.
        for field in [m.0 as u32, m.1 as u32, string, 0] {
            list.extend_from_slice(&field.to_le_bytes());
        }
    }
    let mods_addr = info.append(&list);
    info.put_u32(20, modules.len() as u32);
    info.put_u32(24, if modules.is_empty() { 0 } else { mods_addr });
    let mmap: Vec<u8> = layout
        .e820()
        .iter()
        .flat_map(|e| {
            let mut rec = ((MMAP_ENTRY_SIZE - 4) as u32).to_le_bytes().to_vec();
            rec.extend_from_slice(&e.to_bytes());
            rec
        })
        .collect();
    let mmap_addr = info.append(&mmap);
    info.put_u32(44, mmap.len() as u32);
    info.put_u32(48, mmap_addr);
    let name = info.append_str(BOOT_LOADER_NAME);
    info.put_u32(64, name);
    info.bytes
}

/// Loads a Multiboot kernel whose header `find_header` found, with `modules` (each
/// with its own command line), and returns the entry state. `ignore_video` starts a
/// kernel that requires video mode information without it (with a warning).
pub fn load_multiboot(
    mem: &PhysMemory,
    layout: &MemoryLayout,
    bytes: &[u8],
    header: &MultibootHeader,
    cmdline: &str,
    modules: &[Module<'_>],
    ignore_video: bool,
) -> Result<LoadedKernel, LoadError> {
    let unknown = header.flags & REQUIRED_FLAGS & !(FLAG_PAGE_ALIGN | FLAG_MEMORY_INFO | FLAG_VIDEO_MODE);
    if unknown != 0 {
        return Err(LoadError::MultibootUnknownFlags(unknown));
    }
    if header.flags & FLAG_VIDEO_MODE != 0 {
        if !ignore_video {
            return Err(LoadError::MultibootVideo);
        }
        log::warn!("Multiboot kernel asks for video mode information; starting it without any");
    }
    for s in std::iter::once(cmdline).chain(modules.iter().map(|m| m.cmdline)) {
        if s.contains('\0') {
            return Err(LoadError::CmdlineNul(s.into()));
        }
    }
    let (format, (pieces, entry)) = match &header.aout {
        Some(k) => ("a.out kludge", aout_pieces(bytes, header, k)?),
        None if elf::is_elf64(bytes) => return Err(LoadError::Elf64),
        None if elf::is_elf(bytes) => ("ELF", elf_pieces(bytes)?),
        None => {
            return Err(LoadError::BadAoutKludge(
                "the kernel is not ELF and its Multiboot header lacks the address fields (flags bit 16)".into(),
            ))
        }
    };

    let mut taken = vec![("the boot GDT".to_string(), BOOT_GDT_ADDR, BOOT_GDT_ADDR + 32)];
    for (i, p) in pieces.iter().enumerate() {
        let what = format!("kernel segment {i}");
        check_usable(layout, &what, p.addr, p.end())?;
        check_free(&what, p.addr, p.end(), &taken)?;
        taken.push((what, p.addr, p.end()));
    }
    if !pieces.iter().any(|p| entry >= p.addr && entry < p.end()) {
        return Err(LoadError::BadHeader(format!("Multiboot entry point {entry:#x} lies outside the loaded image")));
    }

    let kernel_end = pieces.iter().map(Piece::end).max().unwrap_or(EXTENDED_START);
    let mut next = kernel_end.max(EXTENDED_START).next_multiple_of(PAGE);
    let mut placed = Vec::new();
    for (index, m) in modules.iter().enumerate() {
        let size = m.bytes.len() as u64;
        let end = next + size;
        if end > layout.usable_low_end() {
            return Err(LoadError::ModuleTooBig { index, size, limit: layout.usable_low_end() });
        }
        placed.push((next, end, m.cmdline));
        next = end.next_multiple_of(PAGE);
    }

    let info_len = build_info(0, layout, cmdline, &placed).len() as u64;
    let low_fits = MULTIBOOT_INFO_ADDR + info_len <= MULTIBOOT_INFO_LIMIT
        && check_free("Multiboot information", MULTIBOOT_INFO_ADDR, MULTIBOOT_INFO_ADDR + info_len, &taken).is_ok();
    let info_addr = if low_fits { MULTIBOOT_INFO_ADDR } else { next };
    check_usable(layout, "Multiboot information", info_addr, info_addr + info_len)?;
    let info = build_info(info_addr, layout, cmdline, &placed);

    for p in &pieces {
        mem.dma_write(p.addr, p.data)?;
        write_zeros(mem, p.addr + p.data.len() as u64, p.zeros)?;
    }
    for (m, &(start, _, _)) in modules.iter().zip(&placed) {
        mem.dma_write(start, m.bytes)?;
    }
    mem.dma_write(info_addr, &info)?;
    let gdt = lowmem::write_boot_gdt(mem, CodeBits::Bits32)?;
    mem.set_a20(true);

    let mut state = EntryState::protected32(entry as u32, BOOT_CS, BOOT_DS, gdt);
    state.gpr[gpr::RAX] = u64::from(MULTIBOOT_BOOTLOADER_MAGIC);
    state.gpr[gpr::RBX] = info_addr;
    let summary = format!(
        "Multiboot {format} kernel at {:#x}..{kernel_end:#x}, entry {entry:#x}, {} module(s), info at {info_addr:#x}",
        pieces.iter().map(|p| p.addr).min().unwrap_or(0),
        modules.len()
    );
    Ok(LoadedKernel { entry: state, kind: KernelKind::Multiboot, summary })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::elf::tests::build_elf32;
    use crate::tests::machine;
    use rx86_core::entry::EntryMode;

    /// A Multiboot header with `flags` (and the address fields when given).
    pub(crate) fn header(flags: u32, addresses: Option<[u32; 5]>) -> Vec<u8> {
        let mut h = Vec::new();
        for v in [MULTIBOOT_HEADER_MAGIC, flags, 0u32.wrapping_sub(MULTIBOOT_HEADER_MAGIC).wrapping_sub(flags)] {
            h.extend_from_slice(&v.to_le_bytes());
        }
        for v in addresses.into_iter().flatten() {
            h.extend_from_slice(&v.to_le_bytes());
        }
        h
    }

    /// An ELF32 Multiboot kernel: code at 1 MiB with the header in it, 0x2000 bytes of bss.
    pub(crate) fn elf_kernel() -> Vec<u8> {
        let mut code = header(FLAG_PAGE_ALIGN | FLAG_MEMORY_INFO, None);
        code.extend_from_slice(&[0xF4; 20]); // hlt
        build_elf32(0x10_000C, &[(0x10_0000, 0x10_0000, &code, 0x2000)])
    }

    fn read(mem: &PhysMemory, addr: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        mem.dma_read(addr, &mut b).unwrap();
        b
    }

    fn r32(mem: &PhysMemory, addr: u64) -> u32 {
        u32::from_le_bytes(read(mem, addr, 4).try_into().unwrap())
    }

    fn c_string(mem: &PhysMemory, addr: u64) -> String {
        let b = read(mem, addr, 64);
        String::from_utf8(b[..b.iter().position(|&c| c == 0).unwrap()].to_vec()).unwrap()
    }

    #[test]
    fn finds_the_header_on_a_4_byte_boundary_only() {
        let mut f = vec![0u8; 64];
        f[6..18].copy_from_slice(&header(0, None));
        assert_eq!(find_header(&f).unwrap(), None);
        f[8..20].copy_from_slice(&header(3, None));
        assert_eq!(find_header(&f).unwrap().unwrap().offset, 8);
        let mut late = vec![0u8; MULTIBOOT_SEARCH + 64];
        late[MULTIBOOT_SEARCH..MULTIBOOT_SEARCH + 12].copy_from_slice(&header(0, None));
        assert_eq!(find_header(&late).unwrap(), None, "beyond the first 8192 bytes");
        let mut bad = header(0, None);
        bad[8] ^= 1;
        assert!(matches!(find_header(&bad), Err(LoadError::MultibootChecksum(0))));
    }

    #[test]
    fn loads_an_elf_kernel_and_fills_the_info() {
        let (mem, layout) = machine(32 << 20);
        mem.dma_write(0x10_0000 + 0x40, &[0xAA; 16]).unwrap(); // stale bytes where bss goes
        let kernel = elf_kernel();
        let h = find_header(&kernel).unwrap().unwrap();
        let modules = [Module { bytes: b"module-one", cmdline: "mod1 arg" }, Module { bytes: &[7; 5000], cmdline: "" }];
        let k = load_multiboot(&mem, &layout, &kernel, &h, "console=ttyS0", &modules, false).unwrap();
        let s = &k.entry;
        assert_eq!(s.mode, EntryMode::Protected32);
        assert_eq!(s.rip, 0x10_000C);
        assert_eq!(s.gpr[gpr::RAX], 0x2BAD_B002);
        assert_eq!(s.rflags & (1 << 9), 0, "IF clear");
        assert_eq!(s.cr0 & 0x8000_0001, 1, "PE on, paging off");
        assert!(mem.a20_enabled());
        assert_eq!(read(&mem, 0x10_0000, 4), MULTIBOOT_HEADER_MAGIC.to_le_bytes());
        assert_eq!(read(&mem, 0x10_0040, 16), vec![0; 16], "bss zeroed");

        let info = s.gpr[gpr::RBX];
        let flags = r32(&mem, info);
        assert_eq!(flags, INFO_MEMORY | INFO_CMDLINE | INFO_MODS | INFO_MMAP | INFO_LOADER_NAME);
        assert_eq!(r32(&mem, info + 4), 639);
        assert_eq!(u64::from(r32(&mem, info + 8)), (layout.usable_low_end() - 0x10_0000) / 1024);
        assert_eq!(c_string(&mem, r32(&mem, info + 16).into()), "console=ttyS0");
        assert_eq!(c_string(&mem, r32(&mem, info + 64).into()), "rx86");
        assert_eq!(r32(&mem, info + 20), 2);
        let mods = u64::from(r32(&mem, info + 24));
        let (start0, end0) = (r32(&mem, mods), r32(&mem, mods + 4));
        assert_eq!(start0 % 4096, 0);
        assert!(u64::from(start0) >= 0x10_2000, "above the kernel's bss");
        assert_eq!(end0 - start0, 10);
        assert_eq!(read(&mem, start0.into(), 10), b"module-one");
        assert_eq!(c_string(&mem, r32(&mem, mods + 8).into()), "mod1 arg");
        let start1 = r32(&mem, mods + 16);
        assert_eq!(start1 % 4096, 0);
        assert!(start1 >= end0);
        assert_eq!(c_string(&mem, r32(&mem, mods + 16 + 8).into()), "");

        let (mmap_len, mmap) = (r32(&mem, info + 44), u64::from(r32(&mem, info + 48)));
        assert_eq!(mmap_len as usize, layout.e820().len() * 24);
        for (i, e) in layout.e820().iter().enumerate() {
            let at = mmap + i as u64 * 24;
            assert_eq!(r32(&mem, at), 20);
            assert_eq!(read(&mem, at + 4, 20), e.to_bytes());
        }
    }

    #[test]
    fn loads_an_aout_kludge_image() {
        let (mem, layout) = machine(8 << 20);
        // File: 0x20 bytes of padding, header at 0x20, then code. Loaded at 0x200000 so the
        // header (file 0x20) sits at 0x200020; 0x100 bytes of data, bss up to 0x201000.
        let mut f = vec![0x90u8; 0x20];
        f.extend(header(FLAG_AOUT_KLUDGE, Some([0x20_0020, 0x20_0000, 0x20_0100, 0x20_1000, 0x20_0040])));
        f.resize(0x180, 0xCC);
        let h = find_header(&f).unwrap().unwrap();
        let k = load_multiboot(&mem, &layout, &f, &h, "", &[], false).unwrap();
        assert_eq!(k.entry.rip, 0x20_0040);
        assert_eq!(read(&mem, 0x20_0020, 4), MULTIBOOT_HEADER_MAGIC.to_le_bytes());
        assert_eq!(read(&mem, 0x20_00FF, 2), vec![0xCC, 0], "data ends at load_end_addr");
        assert_eq!(r32(&mem, k.entry.gpr[gpr::RBX] + 20), 0, "no modules");
    }

    #[test]
    fn low_loaded_kernel_moves_the_info_above_it() {
        let (mem, layout) = machine(8 << 20);
        let mut f = header(FLAG_AOUT_KLUDGE, Some([0x8000, 0x8000, 0, 0x9_0000, 0x8000]));
        f.resize(0x100, 0);
        let h = find_header(&f).unwrap().unwrap();
        let k = load_multiboot(&mem, &layout, &f, &h, "x", &[], false).unwrap();
        assert_eq!(k.entry.gpr[gpr::RBX], 0x10_0000);
    }

    #[test]
    fn rejects_what_it_cannot_honour() {
        let (mem, layout) = machine(4 << 20);
        let load = |f: &[u8]| {
            let h = find_header(f)?.expect("header");
            load_multiboot(&mem, &layout, f, &h, "", &[], false)
        };
        let mut video = header(FLAG_VIDEO_MODE, None);
        video.resize(64, 0);
        assert!(matches!(load(&video), Err(LoadError::MultibootVideo)));
        let mut unknown = header(1 << 5, None);
        unknown.resize(64, 0);
        assert!(matches!(load(&unknown), Err(LoadError::MultibootUnknownFlags(0x20))));
        let mut no_format = header(0, None);
        no_format.resize(64, 0);
        assert!(matches!(load(&no_format), Err(LoadError::BadAoutKludge(_))));
        // Segment in the VGA hole, over the GDT, past the end of RAM.
        for (paddr, msg) in [(0xA_0000u32, "usable"), (0x400, "GDT"), (0x3F_0000, "usable")] {
            let mut code = header(0, None);
            code.resize(0x20, 0);
            let f = build_elf32(paddr, &[(paddr, paddr, &code, 0x2_0000)]);
            let e = load(&f).unwrap_err().to_string();
            assert!(e.contains(msg), "{e}");
        }
        let outside_entry = {
            let mut code = header(0, None);
            code.resize(0x20, 0);
            build_elf32(0x50_0000, &[(0x10_0000, 0x10_0000, &code, 0x20)])
        };
        assert!(matches!(load(&outside_entry), Err(LoadError::BadHeader(_))));
        let mut elf64 = elf_kernel();
        elf64[4] = 2;
        assert!(matches!(load(&elf64), Err(LoadError::Elf64)));
        let big = vec![0u8; 4 << 20];
        let h = find_header(&elf_kernel()).unwrap().unwrap();
        let e = load_multiboot(&mem, &layout, &elf_kernel(), &h, "", &[Module { bytes: &big, cmdline: "" }], false);
        assert!(matches!(e, Err(LoadError::ModuleTooBig { index: 0, .. })));
        let e = load_multiboot(&mem, &layout, &elf_kernel(), &h, "a\0b", &[], false);
        assert!(matches!(e, Err(LoadError::CmdlineNul(_))));
    }

    #[test]
    fn video_requirement_can_be_waived() {
        let (mem, layout) = machine(4 << 20);
        let mut code = header(FLAG_VIDEO_MODE, None);
        code.resize(0x20, 0);
        let f = build_elf32(0x10_0000, &[(0x10_0000, 0x10_0000, &code, 0x20)]);
        let h = find_header(&f).unwrap().unwrap();
        assert!(load_multiboot(&mem, &layout, &f, &h, "", &[], true).is_ok());
    }

    #[test]
    fn bad_aout_addresses_are_errors() {
        let (mem, layout) = machine(4 << 20);
        let cases: [[u32; 5]; 4] = [
            [0x10_0000, 0x10_0010, 0, 0, 0x10_0010],         // load_addr above header_addr
            [0x10_1000, 0x10_0000, 0, 0, 0x10_1000],         // load starts before the file
            [0x10_0000, 0x10_0000, 0x10_8000, 0, 0x10_0000], // load_end past the file
            [0x10_0000, 0x10_0000, 0x10_0020, 0x10_0010, 0x10_0000], // bss_end below data end
        ];
        for c in cases {
            let mut f = header(FLAG_AOUT_KLUDGE, Some(c));
            f.resize(0x40, 0);
            let h = find_header(&f).unwrap().unwrap();
            let e = load_multiboot(&mem, &layout, &f, &h, "", &[], false);
            assert!(matches!(e, Err(LoadError::BadAoutKludge(_) | LoadError::Truncated { .. })), "{c:x?}: {e:?}");
        }
    }
}
