//! Fixed low-memory locations the direct loaders use, the boot GDT and the identity page
//! tables for a 64-bit entry.
//!
//! ```text
//! 0x00500-0x0051F  boot GDT: null, unused, code (0x10), data (0x18)
//! 0x07000-0x07FFF  Linux boot_params ("zero page")
//! 0x09000-0x0EFFF  PML4, PDPT and four page directories (64-bit Linux entry)
//! 0x10000-...      Multiboot information, when the kernel leaves it free
//! 0x20000-0x2FFFF  Linux command line
//! ```
//!
//! All of it lies in E820-usable conventional memory: the OS reclaims it once it has
//! copied what it needs, as with any boot loader's data.

use rx86_core::entry::{SegmentInit, TableInit};
use rx86_core::phys::{PhysError, PhysMemory};

/// Guest-physical address of the boot GDT.
pub const BOOT_GDT_ADDR: u64 = 0x500;
/// `__BOOT_CS`: the flat code selector (GDT entry 2), as the Linux boot protocol requires.
pub const BOOT_CS: u16 = 0x10;
/// `__BOOT_DS`: the flat data selector (GDT entry 3).
pub const BOOT_DS: u16 = 0x18;
/// Entries in the boot GDT.
const BOOT_GDT_ENTRIES: usize = 4;
/// Linux boot_params (zero page).
pub const ZERO_PAGE_ADDR: u64 = 0x7000;
/// The Linux kernel command line.
pub const CMDLINE_ADDR: u64 = 0x2_0000;
/// Bytes reserved for the command line, terminating NUL included.
pub const CMDLINE_AREA_BYTES: u64 = 0x1_0000;
/// The page-map level-4 table (CR3) for a 64-bit entry.
pub const PML4_ADDR: u64 = 0x9000;
/// The page-directory-pointer table.
const PDPT_ADDR: u64 = 0xA000;
/// The first of four page directories (2 MiB pages) covering 0-4 GiB.
const PD_ADDR: u64 = 0xB000;
/// GiB of identity mapping the 64-bit entry gets.
const IDENTITY_MAPPED_GIB: u64 = 4;
/// Preferred start of the Multiboot information.
pub const MULTIBOOT_INFO_ADDR: u64 = 0x1_0000;
/// End of the low area the Multiboot information may use (the EBDA follows).
pub const MULTIBOOT_INFO_LIMIT: u64 = crate::layout::EBDA_START;

/// Paging entry bit 0: present.
const PTE_PRESENT: u64 = 1 << 0;
/// Paging entry bit 1: writable.
const PTE_WRITABLE: u64 = 1 << 1;
/// Page-directory entry bit 7: maps a 2 MiB page.
const PDE_PAGE_SIZE: u64 = 1 << 7;
/// 4 KiB table size.
const TABLE_BYTES: u64 = 4096;

/// Which code segment the boot GDT's entry 2 holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeBits {
    /// A flat 32-bit code segment.
    Bits32,
    /// A 64-bit code segment (L = 1).
    Bits64,
}

impl CodeBits {
    /// The hidden-cache view of the code segment.
    pub fn segment(self) -> SegmentInit {
        match self {
            CodeBits::Bits32 => SegmentInit::flat_code32(BOOT_CS),
            CodeBits::Bits64 => SegmentInit::code64(BOOT_CS),
        }
    }
}

/// The 8-byte descriptor for a flat segment (base 0, limit 4 GiB) whose attributes are
/// `seg.attributes` (access byte in bits 0-7, flags G/DB/L/AVL in bits 12-15).
fn flat_descriptor(seg: &SegmentInit) -> u64 {
    let access = u64::from(seg.attributes & 0xFF);
    let flags = u64::from(seg.attributes >> 12);
    // Limit 0xFFFFF in bits 0-15 and 48-51; access byte at 40-47; flags at 52-55.
    0xFFFF | (access << 40) | (0xF << 48) | (flags << 52)
}

/// Writes the boot GDT with the given code segment and returns the GDTR value.
pub fn write_boot_gdt(mem: &PhysMemory, code: CodeBits) -> Result<TableInit, PhysError> {
    let entries: [u64; BOOT_GDT_ENTRIES] =
        [0, 0, flat_descriptor(&code.segment()), flat_descriptor(&SegmentInit::flat_data(BOOT_DS))];
    let bytes: Vec<u8> = entries.iter().flat_map(|e| e.to_le_bytes()).collect();
    mem.dma_write(BOOT_GDT_ADDR, &bytes)?;
    Ok(TableInit { base: BOOT_GDT_ADDR, limit: (bytes.len() - 1) as u16 })
}

/// Writes 4-level page tables identity-mapping the first 4 GiB with 2 MiB pages and
/// returns the CR3 value.
pub fn write_identity_page_tables(mem: &PhysMemory) -> Result<u64, PhysError> {
    let entry = |v: u64| v.to_le_bytes();
    let mut tables = vec![0u8; ((PD_ADDR - PML4_ADDR) / TABLE_BYTES + IDENTITY_MAPPED_GIB) as usize * 4096];
    let mut put = |addr: u64, index: u64, value: u64| {
        let at = (addr - PML4_ADDR + index * 8) as usize;
        tables[at..at + 8].copy_from_slice(&entry(value));
    };
    put(PML4_ADDR, 0, PDPT_ADDR | PTE_PRESENT | PTE_WRITABLE);
    for gib in 0..IDENTITY_MAPPED_GIB {
        let pd = PD_ADDR + gib * TABLE_BYTES;
        put(PDPT_ADDR, gib, pd | PTE_PRESENT | PTE_WRITABLE);
        for i in 0..512 {
            put(pd, i, ((gib << 30) + (i << 21)) | PTE_PRESENT | PTE_WRITABLE | PDE_PAGE_SIZE);
        }
    }
    mem.dma_write(PML4_ADDR, &tables)?;
    Ok(PML4_ADDR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::MemoryLayout;
    use rx86_core::memory::GuestRam;
    use std::sync::Arc;

    fn mem() -> PhysMemory {
        let layout = MemoryLayout::new(4 << 20).unwrap();
        let mut m = PhysMemory::new(Arc::new(GuestRam::new(4 << 20).unwrap()));
        for r in layout.regions().unwrap() {
            m.add_region(r).unwrap();
        }
        m
    }

    fn u64_at(m: &PhysMemory, addr: u64) -> u64 {
        let mut b = [0u8; 8];
        m.dma_read(addr, &mut b).unwrap();
        u64::from_le_bytes(b)
    }

    #[test]
    fn descriptors_match_the_classic_encodings() {
        assert_eq!(flat_descriptor(&SegmentInit::flat_code32(0)), 0x00CF_9B00_0000_FFFF);
        assert_eq!(flat_descriptor(&SegmentInit::flat_data(0)), 0x00CF_9300_0000_FFFF);
        assert_eq!(flat_descriptor(&SegmentInit::code64(0)), 0x00AF_9B00_0000_FFFF);
    }

    #[test]
    fn gdt_has_boot_cs_and_ds() {
        let m = mem();
        let gdtr = write_boot_gdt(&m, CodeBits::Bits64).unwrap();
        assert_eq!(gdtr, TableInit { base: 0x500, limit: 31 });
        assert_eq!(u64_at(&m, 0x500 + u64::from(BOOT_CS)), 0x00AF_9B00_0000_FFFF);
        assert_eq!(u64_at(&m, 0x500 + u64::from(BOOT_DS)), 0x00CF_9300_0000_FFFF);
    }

    /// Walks the tables like the MMU: PML4 -> PDPT -> PD (2 MiB page).
    fn translate(m: &PhysMemory, cr3: u64, va: u64) -> Option<u64> {
        let mask = 0x000F_FFFF_FFFF_F000;
        let pml4e = u64_at(m, cr3 + ((va >> 39) & 511) * 8);
        let pdpte = (pml4e & 1 != 0).then(|| u64_at(m, (pml4e & mask) + ((va >> 30) & 511) * 8))?;
        let pde = (pdpte & 1 != 0).then(|| u64_at(m, (pdpte & mask) + ((va >> 21) & 511) * 8))?;
        (pde & 1 != 0 && pde & PDE_PAGE_SIZE != 0).then_some((pde & 0xF_FFFF_FFE0_0000) | (va & 0x1F_FFFF))
    }

    #[test]
    fn page_tables_identity_map_4_gib() {
        let m = mem();
        let cr3 = write_identity_page_tables(&m).unwrap();
        for va in [0u64, 0x7000, 0x100_0200, 0x3FFF_FFFF, 0x4000_0000, 0xFEE0_0000, 0xFFFF_FFFF] {
            assert_eq!(translate(&m, cr3, va), Some(va), "{va:#x}");
        }
        assert_eq!(translate(&m, cr3, 0x1_0000_0000), None);
    }
}
