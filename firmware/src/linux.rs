//! Linux x86 boot protocol loader for bzImage kernels (protocol 2.06 and later).
//!
//! Documentation/arch/x86/boot.rst: the real-mode header ("The Real-Mode Kernel
//! Header"), loading the rest of the kernel, the 32-bit boot protocol (entry at
//! code32_start with ESI = boot_params, __BOOT_CS 0x10 / __BOOT_DS 0x18 flat, interrupts
//! off, EBP/EDI/EBX zero) and the 64-bit boot protocol (entry at the load address + 0x200
//! with identity-mapped page tables). Documentation/arch/x86/zero-page.rst gives the
//! boot_params offsets.
//!
//! Where the kernel goes: a relocatable kernel's decompressor runs at
//! `max(align_up(load address, kernel_alignment), pref_address)` and needs `init_size`
//! bytes there, whichever entry is used; loading it at pref_address (when RAM allows)
//! avoids an extra copy and keeps the image inside that run area. A non-relocatable
//! kernel is loaded at 1 MiB and moves itself to pref_address.

use crate::error::LoadError;
use crate::layout::{MemoryLayout, ACPI_AREA_BYTES, EXTENDED_START};
use crate::lowmem::{self, CodeBits, BOOT_CS, BOOT_DS, CMDLINE_ADDR, CMDLINE_AREA_BYTES, ZERO_PAGE_ADDR};
use crate::{KernelKind, LoadOptions, LoadedKernel};
use rx86_core::entry::{gpr, EntryState};
use rx86_core::phys::PhysMemory;

/// "HdrS" at offset 0x202 marks a kernel with a boot protocol header (2.00+).
const HDRS_MAGIC: &[u8; 4] = b"HdrS";
/// Oldest protocol entered directly: 2.06 (cmdline_size, reliable relocatable kernels).
pub(crate) const MIN_PROTOCOL: u16 = 0x0206;
/// Oldest protocol booted at all (through its real-mode setup): 2.02 (cmd_line_ptr).
pub(crate) const MIN_SETUP_PROTOCOL: u16 = 0x0202;
/// Protocol 2.03 added initrd_addr_max.
const PROTOCOL_INITRD_ADDR_MAX: u16 = 0x0203;
/// Protocol 2.05 added kernel_alignment and relocatable_kernel.
const PROTOCOL_RELOCATABLE: u16 = 0x0205;
/// Longest command line before protocol 2.06 gave cmdline_size (boot.rst: 255 bytes).
const OLD_CMDLINE_MAX: u64 = 255;
/// Protocol 2.10 added pref_address and init_size.
const PROTOCOL_PREF_ADDRESS: u16 = 0x020A;
/// Protocol 2.12 added xloadflags.
const PROTOCOL_XLOADFLAGS: u16 = 0x020C;
/// Protocol 2.14 is where boot_params.acpi_rsdp_addr took effect.
const PROTOCOL_ACPI_RSDP: u16 = 0x020E;
/// boot_params is one 4 KiB page.
const ZERO_PAGE_BYTES: usize = 4096;
/// Sectors of real-mode setup when setup_sects reads 0.
const DEFAULT_SETUP_SECTS: u64 = 4;
/// Sector size.
const SECTOR: u64 = 512;
/// The setup header ends before boot_params.edd_mbr_sig_buffer.
const SETUP_HEADER_LIMIT: usize = 0x290;
/// Offset of the 64-bit entry point from the load address.
const STARTUP_64_OFFSET: u64 = 0x200;
/// initrd_addr_max for kernels that leave it 0 (boot.rst: "0x37FFFFFF").
const DEFAULT_INITRD_ADDR_MAX: u64 = 0x37FF_FFFF;
/// Page size for initrd alignment.
const PAGE: u64 = 4096;

// Setup header field offsets (boot.rst, "The Real-Mode Kernel Header").
/// setup_sects: size of the real-mode setup in 512-byte sectors.
pub(crate) const SETUP_SECTS: usize = 0x1F1;
/// syssize: size of the protected-mode code in 16-byte paragraphs.
const SYSSIZE: usize = 0x1F4;
/// The jump instruction whose displacement byte gives the header's end.
const JUMP: usize = 0x200;
/// header: "HdrS".
const HEADER: usize = 0x202;
/// version: protocol version (major.minor in the high and low byte).
const VERSION: usize = 0x206;
/// type_of_loader.
pub(crate) const TYPE_OF_LOADER: usize = 0x210;
/// loadflags.
pub(crate) const LOADFLAGS: usize = 0x211;
/// code32_start: the 32-bit entry point.
pub(crate) const CODE32_START: usize = 0x214;
/// ramdisk_image: initrd address.
pub(crate) const RAMDISK_IMAGE: usize = 0x218;
/// ramdisk_size: initrd size.
pub(crate) const RAMDISK_SIZE: usize = 0x21C;
/// heap_end_ptr: end of the setup heap relative to the setup start, minus 0x200.
pub(crate) const HEAP_END_PTR: usize = 0x224;
/// cmd_line_ptr: command line address.
pub(crate) const CMD_LINE_PTR: usize = 0x228;
/// initrd_addr_max: highest address the initrd may occupy.
const INITRD_ADDR_MAX: usize = 0x22C;
/// kernel_alignment: alignment a relocatable kernel needs.
const KERNEL_ALIGNMENT: usize = 0x230;
/// relocatable_kernel: non-zero when the kernel may be loaded anywhere.
const RELOCATABLE_KERNEL: usize = 0x234;
/// xloadflags.
const XLOADFLAGS: usize = 0x236;
/// cmdline_size: longest command line without the NUL.
const CMDLINE_SIZE: usize = 0x238;
/// pref_address: preferred load address.
const PREF_ADDRESS: usize = 0x258;
/// init_size: memory the kernel needs from its run address while starting.
const INIT_SIZE: usize = 0x260;

// boot_params fields outside the setup header (zero-page.rst).
/// screen_info.orig_video_mode.
const SCREEN_VIDEO_MODE: usize = 0x06;
/// screen_info.orig_video_cols.
const SCREEN_VIDEO_COLS: usize = 0x07;
/// screen_info.orig_video_ega_bx.
const SCREEN_EGA_BX: usize = 0x0A;
/// screen_info.orig_video_lines.
const SCREEN_VIDEO_LINES: usize = 0x0E;
/// screen_info.orig_video_isVGA.
const SCREEN_IS_VGA: usize = 0x0F;
/// screen_info.orig_video_points (character height).
const SCREEN_VIDEO_POINTS: usize = 0x10;
/// acpi_rsdp_addr.
const ACPI_RSDP_ADDR: usize = 0x070;
/// e820_entries.
const E820_ENTRIES: usize = 0x1E8;
/// e820_table (128 entries of 20 bytes).
const E820_TABLE: usize = 0x2D0;
/// Capacity of e820_table.
const E820_MAX_ENTRIES: usize = 128;

/// loadflags bit 0, LOADED_HIGH: the protected-mode code is loaded at 0x100000.
const LOADED_HIGH: u8 = 1 << 0;
/// loadflags bit 7, CAN_USE_HEAP: heap_end_ptr is valid.
pub(crate) const CAN_USE_HEAP: u8 = 1 << 7;
/// xloadflags bit 0, XLF_KERNEL_64: the kernel has the legacy 64-bit entry at 0x200.
const XLF_KERNEL_64: u16 = 1 << 0;
/// type_of_loader 0xFF: a boot loader without an assigned ID.
pub(crate) const LOADER_TYPE_UNDEFINED: u8 = 0xFF;
/// heap_end_ptr value from boot.rst's sample loader (heap end 0xE000 - 0x200).
const HEAP_END: u16 = 0xDE00;
/// Text mode 3: 80x25 colour.
const VGA_TEXT_MODE: u8 = 3;
/// INT 10h AH=12h BL=10h result: colour, 256 KiB of video memory.
const VGA_EGA_BX: u16 = 0x0003;

/// Which entry point of the kernel to start at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinuxEntry {
    /// The 32-bit entry (protected mode, paging off) at code32_start.
    #[default]
    Protected32,
    /// The 64-bit entry (long mode, identity-mapped) at the load address + 0x200.
    Long64,
}

/// True when `bytes` carries a Linux boot protocol header ("HdrS" at 0x202).
pub fn is_bzimage(bytes: &[u8]) -> bool {
    bytes.get(HEADER..HEADER + 4) == Some(HDRS_MAGIC)
}

/// The parsed setup header of a bzImage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupHeader {
    /// Protocol version (0x020F = 2.15).
    pub version: u16,
    /// File offset of the protected-mode kernel.
    pub kernel_offset: u64,
    /// loadflags as found.
    pub loadflags: u8,
    /// Highest address the initrd may occupy.
    pub initrd_addr_max: u64,
    /// Alignment a relocatable kernel needs.
    pub kernel_alignment: u64,
    /// Whether the kernel may be loaded at any aligned address.
    pub relocatable: bool,
    /// xloadflags (0 before 2.12).
    pub xloadflags: u16,
    /// Longest command line without the NUL.
    pub cmdline_size: u64,
    /// Where the kernel prefers to run (1 MiB before 2.10).
    pub pref_address: u64,
    /// Memory needed from the run address while starting (0 before 2.10).
    pub init_size: u64,
    /// End (exclusive) of the setup header in the file.
    pub header_end: usize,
}

pub(crate) fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

pub(crate) fn u32_at(b: &[u8], o: usize) -> u64 {
    u64::from(u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]))
}

impl SetupHeader {
    /// Parses and validates the header of a kernel to enter directly (protocol 2.06 and
    /// later).
    pub fn parse(bytes: &[u8]) -> Result<Self, LoadError> {
        Self::parse_from(bytes, MIN_PROTOCOL)
    }

    /// Parses and validates the header of a kernel to start through its real-mode setup
    /// (protocol 2.02 and later); fields older protocols lack get boot.rst's defaults.
    pub(crate) fn parse_for_setup(bytes: &[u8]) -> Result<Self, LoadError> {
        Self::parse_from(bytes, MIN_SETUP_PROTOCOL)
    }

    /// The protocol version of a file `is_bzimage` accepted.
    pub(crate) fn version_of(bytes: &[u8]) -> Option<u16> {
        (bytes.len() >= VERSION + 2).then(|| u16_at(bytes, VERSION))
    }

    fn parse_from(bytes: &[u8], min_protocol: u16) -> Result<Self, LoadError> {
        let too_small =
            |need: usize| LoadError::Truncated { what: "bzImage header", len: bytes.len() as u64, need: need as u64 };
        if bytes.len() < VERSION + 2 {
            return Err(too_small(VERSION + 2));
        }
        if !is_bzimage(bytes) {
            return Err(LoadError::NotAKernel("no \"HdrS\" Linux boot header at 0x202".into()));
        }
        let version = u16_at(bytes, VERSION);
        if version < min_protocol {
            return Err(LoadError::ProtocolTooOld(version));
        }
        let header_end = (JUMP + 2 + usize::from(bytes[JUMP + 1])).min(SETUP_HEADER_LIMIT);
        // Every field this loader reads up to the version's last one must be present.
        let needed = match version {
            v if v >= PROTOCOL_PREF_ADDRESS => INIT_SIZE + 4,
            v if v >= MIN_PROTOCOL => CMDLINE_SIZE + 4,
            v if v >= PROTOCOL_RELOCATABLE => RELOCATABLE_KERNEL + 1,
            v if v >= PROTOCOL_INITRD_ADDR_MAX => INITRD_ADDR_MAX + 4,
            _ => CMD_LINE_PTR + 4,
        };
        if header_end < needed {
            return Err(LoadError::BadHeader(format!(
                "setup header ends at {header_end:#x}, before the protocol {}.{:02} fields end at {needed:#x}",
                version >> 8,
                version & 0xFF
            )));
        }
        if bytes.len() < header_end {
            return Err(too_small(header_end));
        }
        let setup_sects = match u64::from(bytes[SETUP_SECTS]) {
            0 => DEFAULT_SETUP_SECTS,
            n => n,
        };
        let kernel_offset = (setup_sects + 1) * SECTOR;
        let syssize_bytes = u32_at(bytes, SYSSIZE) * 16;
        // syssize is rounded up to 16-byte paragraphs, so the file may end up to 15 bytes early.
        if (bytes.len() as u64) < kernel_offset + syssize_bytes.saturating_sub(15)
            || bytes.len() as u64 <= kernel_offset
        {
            return Err(LoadError::Truncated {
                what: "bzImage kernel",
                len: bytes.len() as u64,
                need: kernel_offset + syssize_bytes.max(1),
            });
        }
        let loadflags = bytes[LOADFLAGS];
        if loadflags & LOADED_HIGH == 0 {
            return Err(LoadError::ZImage);
        }
        let (kernel_alignment, relocatable) = if version >= PROTOCOL_RELOCATABLE {
            (u32_at(bytes, KERNEL_ALIGNMENT), bytes[RELOCATABLE_KERNEL] != 0)
        } else {
            (0, false)
        };
        if relocatable && !kernel_alignment.is_power_of_two() {
            return Err(LoadError::BadHeader(format!("kernel_alignment {kernel_alignment:#x} is not a power of two")));
        }
        let (pref_address, init_size) = if version >= PROTOCOL_PREF_ADDRESS {
            (
                u64::from_le_bytes(bytes[PREF_ADDRESS..PREF_ADDRESS + 8].try_into().unwrap_or_default()),
                u32_at(bytes, INIT_SIZE),
            )
        } else {
            (EXTENDED_START, 0)
        };
        Ok(SetupHeader {
            version,
            kernel_offset,
            loadflags,
            initrd_addr_max: match u32_at(bytes, INITRD_ADDR_MAX) {
                _ if version < PROTOCOL_INITRD_ADDR_MAX => DEFAULT_INITRD_ADDR_MAX,
                0 => DEFAULT_INITRD_ADDR_MAX,
                v => v,
            },
            kernel_alignment,
            relocatable,
            xloadflags: if version >= PROTOCOL_XLOADFLAGS { u16_at(bytes, XLOADFLAGS) } else { 0 },
            cmdline_size: if version >= MIN_PROTOCOL { u32_at(bytes, CMDLINE_SIZE) } else { OLD_CMDLINE_MAX },
            pref_address,
            init_size,
            header_end,
        })
    }

    /// The version as "major.minor".
    pub(crate) fn version_string(&self) -> String {
        format!("{}.{:02}", self.version >> 8, self.version & 0xFF)
    }
}

/// Where the kernel is loaded and where it will run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    pub(crate) load: u64,
    pub(crate) image_end: u64,
    pub(crate) run_start: u64,
    pub(crate) run_end: u64,
}

/// Chooses the load address (see the module documentation) and checks RAM holds it.
fn place_kernel(hdr: &SetupHeader, image_len: u64, limit: u64) -> Result<Placement, LoadError> {
    // Header values come from the file: saturate instead of overflowing, so absurd
    // addresses simply fail the fit checks.
    let footprint = |load: u64| {
        let run_start = if hdr.relocatable {
            load.checked_next_multiple_of(hdr.kernel_alignment).unwrap_or(u64::MAX).max(hdr.pref_address)
        } else {
            hdr.pref_address.max(EXTENDED_START)
        };
        Placement {
            load,
            image_end: load.saturating_add(image_len),
            run_start,
            run_end: run_start.saturating_add(hdr.init_size),
        }
    };
    let at_pref = footprint(hdr.pref_address);
    let fits = |p: &Placement| p.image_end.max(p.run_end) <= limit;
    let usable_pref =
        hdr.relocatable && hdr.pref_address >= EXTENDED_START && hdr.pref_address.is_multiple_of(hdr.kernel_alignment);
    if usable_pref && fits(&at_pref) {
        return Ok(at_pref);
    }
    let low = footprint(EXTENDED_START);
    if fits(&low) {
        return Ok(low);
    }
    if !hdr.relocatable && low.image_end <= limit {
        return Err(LoadError::NotRelocatable { start: low.run_start, end: low.run_end, limit });
    }
    let need_end = low.image_end.max(low.run_end);
    let min_ram_mib = need_end.saturating_add(ACPI_AREA_BYTES).div_ceil(1 << 20);
    Err(LoadError::KernelTooBig { need_end, limit, min_ram_mib })
}

/// Places the initrd as high as allowed, page-aligned, above the kernel.
pub(crate) fn place_initrd(hdr: &SetupHeader, size: u64, kernel: &Placement, limit: u64) -> Result<u64, LoadError> {
    let top = (hdr.initrd_addr_max + 1).min(limit);
    let floor = kernel.image_end.max(kernel.run_end).next_multiple_of(PAGE);
    match top.checked_sub(size).map(|a| a / PAGE * PAGE) {
        Some(addr) if addr >= floor => Ok(addr),
        _ => Err(LoadError::InitrdTooBig { size, limit: top, floor }),
    }
}

/// Stores the low 32 bits of `v` at `at` (boot_params fields are little-endian).
pub(crate) fn put32(zp: &mut [u8], at: usize, v: u64) {
    zp[at..at + 4].copy_from_slice(&(v as u32).to_le_bytes());
}

/// Loads a bzImage with an optional initrd and command line and returns the entry state
/// for `options.linux_entry`; `rsdp` goes to boot_params.acpi_rsdp_addr.
pub fn load_bzimage(
    mem: &PhysMemory,
    layout: &MemoryLayout,
    bytes: &[u8],
    initrd: Option<&[u8]>,
    cmdline: &str,
    rsdp: Option<u64>,
    options: &LoadOptions<'_>,
) -> Result<LoadedKernel, LoadError> {
    let entry = options.linux_entry;
    let hdr = SetupHeader::parse(bytes)?;
    if crate::linux_setup::needs_real_mode_setup(bytes) {
        return Err(LoadError::No32BitEntry);
    }
    if entry == LinuxEntry::Long64 && hdr.xloadflags & XLF_KERNEL_64 == 0 {
        return Err(LoadError::No64BitEntry(hdr.version));
    }
    let max_cmdline = hdr.cmdline_size.min(CMDLINE_AREA_BYTES - 1);
    if cmdline.len() as u64 > max_cmdline {
        return Err(LoadError::CmdlineTooLong { len: cmdline.len(), max: max_cmdline });
    }
    if cmdline.contains('\0') {
        return Err(LoadError::CmdlineNul(cmdline.into()));
    }
    let image = &bytes[hdr.kernel_offset as usize..];
    let limit = layout.usable_low_end();
    let kernel = place_kernel(&hdr, image.len() as u64, limit)?;
    let initrd = match initrd.filter(|rd| !rd.is_empty()) {
        Some(rd) => Some((place_initrd(&hdr, rd.len() as u64, &kernel, limit)?, rd)),
        None => None,
    };

    let mut zp = vec![0u8; ZERO_PAGE_BYTES];
    zp[SETUP_SECTS..hdr.header_end].copy_from_slice(&bytes[SETUP_SECTS..hdr.header_end]);
    zp[TYPE_OF_LOADER] = LOADER_TYPE_UNDEFINED;
    zp[LOADFLAGS] = hdr.loadflags | LOADED_HIGH | CAN_USE_HEAP;
    zp[HEAP_END_PTR..HEAP_END_PTR + 2].copy_from_slice(&HEAP_END.to_le_bytes());
    put32(&mut zp, CODE32_START, kernel.load);
    put32(&mut zp, CMD_LINE_PTR, CMDLINE_ADDR);
    if let Some((addr, rd)) = initrd {
        put32(&mut zp, RAMDISK_IMAGE, addr);
        put32(&mut zp, RAMDISK_SIZE, rd.len() as u64);
    }
    if let (Some(rsdp), true) = (rsdp, hdr.version >= PROTOCOL_ACPI_RSDP) {
        zp[ACPI_RSDP_ADDR..ACPI_RSDP_ADDR + 8].copy_from_slice(&rsdp.to_le_bytes());
    }
    let e820 = layout.e820();
    for (i, e) in e820.iter().take(E820_MAX_ENTRIES).enumerate() {
        zp[E820_TABLE + 20 * i..E820_TABLE + 20 * (i + 1)].copy_from_slice(&e.to_bytes());
    }
    zp[E820_ENTRIES] = e820.len().min(E820_MAX_ENTRIES) as u8;
    if options.vga_text_console {
        zp[SCREEN_VIDEO_MODE] = VGA_TEXT_MODE;
        zp[SCREEN_VIDEO_COLS] = 80;
        zp[SCREEN_EGA_BX..SCREEN_EGA_BX + 2].copy_from_slice(&VGA_EGA_BX.to_le_bytes());
        zp[SCREEN_VIDEO_LINES] = 25;
        zp[SCREEN_IS_VGA] = 1;
        zp[SCREEN_VIDEO_POINTS..SCREEN_VIDEO_POINTS + 2].copy_from_slice(&16u16.to_le_bytes());
    }

    mem.dma_write(kernel.load, image)?;
    if let Some((addr, rd)) = initrd {
        mem.dma_write(addr, rd)?;
    }
    let mut cmd = cmdline.as_bytes().to_vec();
    cmd.push(0);
    mem.dma_write(CMDLINE_ADDR, &cmd)?;
    mem.dma_write(ZERO_PAGE_ADDR, &zp)?;
    mem.set_a20(true);
    let mut state = match entry {
        LinuxEntry::Protected32 => {
            let gdt = lowmem::write_boot_gdt(mem, CodeBits::Bits32)?;
            EntryState::protected32(kernel.load as u32, BOOT_CS, BOOT_DS, gdt)
        }
        LinuxEntry::Long64 => {
            let gdt = lowmem::write_boot_gdt(mem, CodeBits::Bits64)?;
            let cr3 = lowmem::write_identity_page_tables(mem)?;
            EntryState::long64(kernel.load + STARTUP_64_OFFSET, BOOT_CS, BOOT_DS, gdt, cr3)
        }
    };
    state.gpr[gpr::RSI] = ZERO_PAGE_ADDR;

    let mut summary = format!(
        "Linux bzImage (boot protocol {}), {} entry at {:#x}; {} bytes at {:#x}, runs at {:#x} (init_size {:#x})",
        hdr.version_string(),
        if entry == LinuxEntry::Long64 { "64-bit" } else { "32-bit" },
        state.rip,
        image.len(),
        kernel.load,
        kernel.run_start,
        hdr.init_size
    );
    if let Some((addr, rd)) = initrd {
        summary += &format!("; initrd {} bytes at {addr:#x}", rd.len());
    }
    summary += &format!("; cmdline {} bytes", cmdline.len());
    Ok(LoadedKernel { entry: state, kind: KernelKind::Linux(entry), summary })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::layout::E820Type;
    use crate::tests::machine;
    use rx86_core::entry::EntryMode;

    /// A synthetic bzImage: `setup_sects` of setup, then `kernel_len` bytes of "kernel"
    /// (filled with 0xK), with protocol `version` and typical 64-bit kernel fields.
    pub(crate) fn bzimage(version: u16, kernel_len: usize) -> Vec<u8> {
        let setup_sects = 3u8;
        let off = (usize::from(setup_sects) + 1) * 512;
        let mut f = vec![0u8; off];
        f[SETUP_SECTS] = setup_sects;
        f[0x1FE..0x200].copy_from_slice(&0xAA55u16.to_le_bytes());
        f[JUMP] = 0xEB;
        f[JUMP + 1] = 0x6A; // header ends at 0x26C
        f[HEADER..HEADER + 4].copy_from_slice(HDRS_MAGIC);
        f[VERSION..VERSION + 2].copy_from_slice(&version.to_le_bytes());
        f[LOADFLAGS] = LOADED_HIGH;
        f[CODE32_START..CODE32_START + 4].copy_from_slice(&0x10_0000u32.to_le_bytes());
        f[INITRD_ADDR_MAX..INITRD_ADDR_MAX + 4].copy_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
        f[KERNEL_ALIGNMENT..KERNEL_ALIGNMENT + 4].copy_from_slice(&0x20_0000u32.to_le_bytes());
        f[RELOCATABLE_KERNEL] = 1;
        f[XLOADFLAGS..XLOADFLAGS + 2].copy_from_slice(&XLF_KERNEL_64.to_le_bytes());
        f[CMDLINE_SIZE..CMDLINE_SIZE + 4].copy_from_slice(&2048u32.to_le_bytes());
        f[PREF_ADDRESS..PREF_ADDRESS + 8].copy_from_slice(&0x100_0000u64.to_le_bytes());
        f[INIT_SIZE..INIT_SIZE + 4].copy_from_slice(&(0x40_0000u32).to_le_bytes());
        f[SYSSIZE..SYSSIZE + 4].copy_from_slice(&(kernel_len.div_ceil(16) as u32).to_le_bytes());
        f.extend((0..kernel_len).map(|i| (i % 251) as u8));
        f
    }

    fn read(mem: &PhysMemory, addr: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        mem.dma_read(addr, &mut b).unwrap();
        b
    }

    fn r32(mem: &PhysMemory, addr: u64) -> u64 {
        u32_at(&read(mem, addr, 4), 0)
    }

    fn load(
        ram: u64,
        f: &[u8],
        initrd: Option<&[u8]>,
        cmdline: &str,
        entry: LinuxEntry,
    ) -> Result<(PhysMemory, MemoryLayout, LoadedKernel), LoadError> {
        let (mem, layout) = machine(ram);
        let options = LoadOptions { linux_entry: entry, ..Default::default() };
        let k = load_bzimage(&mem, &layout, f, initrd, cmdline, Some(0xE_0000), &options)?;
        Ok((mem, layout, k))
    }

    #[test]
    fn relocatable_kernel_goes_to_pref_address_with_32_bit_entry() {
        let f = bzimage(0x020F, 0x3000);
        let (mem, layout, k) = load(64 << 20, &f, None, "console=ttyS0", LinuxEntry::Protected32).unwrap();
        let s = &k.entry;
        assert_eq!(s.mode, EntryMode::Protected32);
        assert_eq!(s.rip, 0x100_0000);
        assert_eq!(s.cs.selector, 0x10);
        assert_eq!(s.ds.selector, 0x18);
        assert_eq!(s.gpr[gpr::RSI], ZERO_PAGE_ADDR);
        assert_eq!([s.gpr[gpr::RBP], s.gpr[gpr::RDI], s.gpr[gpr::RBX]], [0, 0, 0]);
        assert_eq!(s.rflags & (1 << 9), 0);
        assert_eq!(read(&mem, 0x100_0000, 0x3000), f[0x800..]);
        let zp = read(&mem, ZERO_PAGE_ADDR, 4096);
        assert_eq!(&zp[HEADER..HEADER + 4], b"HdrS");
        assert_eq!(zp[TYPE_OF_LOADER], 0xFF);
        assert_eq!(zp[LOADFLAGS], LOADED_HIGH | CAN_USE_HEAP);
        assert_eq!(u16_at(&zp, HEAP_END_PTR), 0xDE00);
        assert_eq!(u32_at(&zp, CODE32_START), 0x100_0000);
        assert_eq!(u32_at(&zp, CMD_LINE_PTR), CMDLINE_ADDR);
        assert_eq!(read(&mem, CMDLINE_ADDR, 14), b"console=ttyS0\0");
        assert_eq!(u32_at(&zp, RAMDISK_IMAGE), 0);
        assert_eq!(u64::from_le_bytes(zp[ACPI_RSDP_ADDR..ACPI_RSDP_ADDR + 8].try_into().unwrap()), 0xE_0000);
        let e820 = layout.e820();
        assert_eq!(usize::from(zp[E820_ENTRIES]), e820.len());
        for (i, e) in e820.iter().enumerate() {
            assert_eq!(&zp[E820_TABLE + 20 * i..E820_TABLE + 20 * i + 20], &e.to_bytes());
        }
        assert!(e820.iter().any(|e| e.kind == E820Type::Usable && e.addr == 0x10_0000));
        assert!(k.summary.contains("2.15"), "{}", k.summary);
    }

    #[test]
    fn long_mode_entry_is_load_address_plus_0x200() {
        let f = bzimage(0x020F, 0x3000);
        let (mem, _, k) = load(64 << 20, &f, None, "", LinuxEntry::Long64).unwrap();
        let s = &k.entry;
        assert_eq!(s.mode, EntryMode::Long64);
        assert_eq!(s.rip, 0x100_0200);
        assert_eq!(s.cr3, lowmem::PML4_ADDR);
        assert_eq!(s.gpr[gpr::RSI], ZERO_PAGE_ADDR);
        assert_eq!(s.cs.attributes & 0x2000, 0x2000, "64-bit code segment");
        // PML4[0] present and writable.
        assert_eq!(r32(&mem, lowmem::PML4_ADDR) & 3, 3);
        let mut no64 = f.clone();
        no64[XLOADFLAGS] = 0;
        assert!(matches!(load(64 << 20, &no64, None, "", LinuxEntry::Long64), Err(LoadError::No64BitEntry(0x020F))));
    }

    #[test]
    fn small_ram_falls_back_to_1_mib_and_checks_init_size() {
        // 16 MiB: pref_address 16 MiB cannot be used; the kernel runs at 16 MiB anyway.
        let f = bzimage(0x020F, 0x3000);
        let e = load(16 << 20, &f, None, "", LinuxEntry::Protected32).unwrap_err();
        assert!(matches!(e, LoadError::KernelTooBig { need_end: 0x140_0000, min_ram_mib: 21, .. }), "{e}");
        assert!(load(21 << 20, &f, None, "", LinuxEntry::Protected32).is_ok(), "the suggested size works");
        // With pref_address = 1 MiB and a small init_size it fits at 1 MiB.
        let mut small = f.clone();
        small[PREF_ADDRESS..PREF_ADDRESS + 8].copy_from_slice(&0x10_0000u64.to_le_bytes());
        small[KERNEL_ALIGNMENT..KERNEL_ALIGNMENT + 4].copy_from_slice(&0x1000u32.to_le_bytes());
        small[INIT_SIZE..INIT_SIZE + 4].copy_from_slice(&0x10_0000u32.to_le_bytes());
        let (_, _, k) = load(4 << 20, &small, None, "", LinuxEntry::Protected32).unwrap();
        assert_eq!(k.entry.rip, 0x10_0000);
    }

    #[test]
    fn non_relocatable_kernel_loads_at_1_mib() {
        let mut f = bzimage(0x020F, 0x3000);
        f[RELOCATABLE_KERNEL] = 0;
        let (_, _, k) = load(64 << 20, &f, None, "", LinuxEntry::Protected32).unwrap();
        assert_eq!(k.entry.rip, 0x10_0000);
        let e = load(16 << 20, &f, None, "", LinuxEntry::Protected32).unwrap_err();
        assert!(matches!(e, LoadError::NotRelocatable { start: 0x100_0000, end: 0x140_0000, .. }), "{e}");
    }

    #[test]
    fn initrd_goes_high_and_page_aligned() {
        let f = bzimage(0x020F, 0x3000);
        let rd = vec![0x5A; 10_000];
        let (mem, layout, k) = load(64 << 20, &f, Some(&rd), "", LinuxEntry::Protected32).unwrap();
        let zp = read(&mem, ZERO_PAGE_ADDR, 4096);
        let addr = u32_at(&zp, RAMDISK_IMAGE);
        assert_eq!(u32_at(&zp, RAMDISK_SIZE), 10_000);
        assert_eq!(addr % 4096, 0);
        assert!(addr + 10_000 <= layout.usable_low_end());
        assert!(addr + 10_000 + 4096 > layout.usable_low_end(), "as high as possible");
        assert_eq!(read(&mem, addr, 10_000), rd);
        assert!(k.summary.contains("initrd"));
        // initrd_addr_max caps the placement.
        let mut capped = f.clone();
        capped[INITRD_ADDR_MAX..INITRD_ADDR_MAX + 4].copy_from_slice(&0x1FF_FFFFu32.to_le_bytes());
        let (mem, _, _) = load(64 << 20, &capped, Some(&rd), "", LinuxEntry::Protected32).unwrap();
        let addr = r32(&mem, ZERO_PAGE_ADDR + RAMDISK_IMAGE as u64);
        assert_eq!(addr, (0x200_0000 - 10_000) / 4096 * 4096);
    }

    #[test]
    fn initrd_that_does_not_fit_is_named() {
        let f = bzimage(0x020F, 0x3000);
        let rd = vec![0; 60 << 20];
        let e = load(64 << 20, &f, Some(&rd), "", LinuxEntry::Protected32).unwrap_err();
        let (_, layout) = machine(64 << 20);
        assert!(
            matches!(e, LoadError::InitrdTooBig { size, limit, floor: 0x140_0000 } if size == 60 << 20 && limit == layout.usable_low_end())
        );
        assert!(e.to_string().starts_with(&format!(
            "initrd of {} bytes does not fit below {:#x}",
            60 << 20,
            layout.usable_low_end()
        )));
    }

    #[test]
    fn command_line_limits() {
        let f = bzimage(0x020F, 0x100);
        let long = "x".repeat(2049);
        assert!(matches!(
            load(64 << 20, &f, None, &long, LinuxEntry::Protected32),
            Err(LoadError::CmdlineTooLong { len: 2049, max: 2048 })
        ));
        assert!(load(64 << 20, &f, None, &long[..2048], LinuxEntry::Protected32).is_ok());
        assert!(matches!(load(64 << 20, &f, None, "a\0b", LinuxEntry::Protected32), Err(LoadError::CmdlineNul(_))));
    }

    #[test]
    fn header_checks() {
        let old = bzimage(0x0205, 0x100);
        let e = load(64 << 20, &old, None, "", LinuxEntry::Protected32).unwrap_err();
        assert!(matches!(e, LoadError::ProtocolTooOld(0x0205)), "{e:?}");
        assert!(e.to_string().starts_with("Linux boot protocol 2.05 is too old: rx86 starts 2.06 and later directly"));
        let mut zimage = bzimage(0x020F, 0x100);
        zimage[LOADFLAGS] = 0;
        assert!(matches!(load(64 << 20, &zimage, None, "", LinuxEntry::Protected32), Err(LoadError::ZImage)));
        let mut align = bzimage(0x020F, 0x100);
        align[KERNEL_ALIGNMENT] = 3;
        assert!(matches!(load(64 << 20, &align, None, "", LinuxEntry::Protected32), Err(LoadError::BadHeader(_))));
        // setup_sects = 0 means 4: the kernel starts at 0xA00.
        let mut four = bzimage(0x020F, 0x400);
        four[SETUP_SECTS] = 0;
        four.splice(0x800..0x800, [0xEE; 0x200]);
        let (mem, _, k) = load(64 << 20, &four, None, "", LinuxEntry::Protected32).unwrap();
        assert_eq!(read(&mem, k.entry.rip, 4), four[0xA00..0xA04]);
        // Protocol 2.06 kernels: no pref_address, loaded at 1 MiB.
        let mut v206 = bzimage(0x0206, 0x100);
        v206[JUMP + 1] = (CMDLINE_SIZE + 4 - JUMP - 2) as u8;
        let (_, _, k) = load(64 << 20, &v206, None, "", LinuxEntry::Protected32).unwrap();
        assert_eq!(k.entry.rip, 0x10_0000);
        let mut short_header = bzimage(0x020F, 0x100);
        short_header[JUMP + 1] = 0x30;
        assert!(matches!(
            load(64 << 20, &short_header, None, "", LinuxEntry::Protected32),
            Err(LoadError::BadHeader(_))
        ));
    }

    #[test]
    fn truncated_images_are_errors_at_every_length() {
        let f = bzimage(0x020F, 0x200);
        for len in 0..f.len() - 15 {
            let e = load(8 << 20, &f[..len], None, "", LinuxEntry::Protected32);
            assert!(matches!(e, Err(LoadError::Truncated { .. } | LoadError::NotAKernel(_))), "len {len}: {e:?}");
        }
    }

    #[test]
    fn vga_console_fills_screen_info() {
        let f = bzimage(0x020F, 0x100);
        let (mem, layout) = machine(64 << 20);
        let options = LoadOptions { vga_text_console: true, ..Default::default() };
        load_bzimage(&mem, &layout, &f, None, "", None, &options).unwrap();
        let zp = read(&mem, ZERO_PAGE_ADDR, 0x80);
        assert_eq!((zp[SCREEN_VIDEO_MODE], zp[SCREEN_VIDEO_COLS], zp[SCREEN_VIDEO_LINES]), (3, 80, 25));
        assert_eq!(zp[SCREEN_IS_VGA], 1);
        assert_eq!(u16_at(&zp, SCREEN_VIDEO_POINTS), 16);
        assert_eq!(&zp[ACPI_RSDP_ADDR..ACPI_RSDP_ADDR + 8], &[0; 8], "no RSDP given");
        let (mem, layout) = machine(64 << 20);
        load_bzimage(&mem, &layout, &f, None, "", None, &LoadOptions::default()).unwrap();
        assert_eq!(read(&mem, ZERO_PAGE_ADDR, 0x20), vec![0; 0x20], "no console by default");
    }

    #[test]
    fn optional_debian_kernel_parses() {
        let Ok(path) = std::env::var("RX86_LINUX_KERNEL") else {
            println!("skipped: set RX86_LINUX_KERNEL to a bzImage to check a real kernel");
            return;
        };
        let Ok(f) = std::fs::read(&path) else {
            println!("skipped: cannot read {path}");
            return;
        };
        let hdr = SetupHeader::parse(&f).unwrap();
        assert!(hdr.version >= 0x020F, "protocol {:#x}", hdr.version);
        assert!(hdr.relocatable);
        assert_ne!(hdr.xloadflags & XLF_KERNEL_64, 0);
        for entry in [LinuxEntry::Protected32, LinuxEntry::Long64] {
            let (mem, _, k) = load(256 << 20, &f, Some(&[1; 4096]), "console=ttyS0", entry).unwrap();
            println!("{}", k.summary);
            assert_eq!(
                read(&mem, k.entry.rip - if entry == LinuxEntry::Long64 { 0x200 } else { 0 }, 64),
                f[hdr.kernel_offset as usize..][..64]
            );
        }
    }
}
