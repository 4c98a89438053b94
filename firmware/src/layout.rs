//! The guest-physical memory layout of the rx86 PC and its E820 map.
//!
//! RAM below 4 GiB ends at `low_end = min(ram, 0xC000_0000)` (the PCI hole starts there);
//! the rest of RAM appears at 4 GiB. The legacy hole 0xA0000-0xBFFFF belongs to VGA, and
//! 0xC0000-0xFFFFF is shadow RAM for ROM images, under the chipset's control
//! ([`rx86_core::shadow`]). The top [`ACPI_AREA_BYTES`] of low RAM
//! hold the ACPI tables, reported as ACPI reclaimable. The E820 codes follow the ACPI
//! specification, section 15 ("System Address Map Interfaces").

use rx86_core::memory::GuestRam;
use rx86_core::phys::{Region, RegionKind};
use rx86_core::shadow::{enable, ShadowControl};
use std::fmt;
use std::sync::Arc;
use thiserror::Error;

/// Smallest guest RAM the board supports (the loaders need the first megabyte plus room).
pub const MIN_RAM_BYTES: u64 = 2 << 20;
/// Largest guest RAM the board supports (1 TiB).
pub const MAX_RAM_BYTES: u64 = 1 << 40;
/// Granularity of guest RAM sizes.
pub const RAM_GRANULE: u64 = 4096;
/// Start of the PCI hole below 4 GiB: low RAM never reaches past it.
pub const PCI_HOLE_START: u64 = 0xC000_0000;
/// Where RAM above the PCI hole is mapped.
pub const HIGH_RAM_START: u64 = 0x1_0000_0000;
/// End of conventional memory (640 KiB); VGA memory follows.
pub const CONVENTIONAL_END: u64 = 0xA_0000;
/// Start of the Extended BIOS Data Area (the last KiB of conventional memory).
pub const EBDA_START: u64 = 0x9_FC00;
/// Start of shadow RAM for option ROMs and the BIOS (0xC0000-0xFFFFF).
pub const SHADOW_START: u64 = 0xC_0000;
/// Start of the system BIOS segment (0xF0000-0xFFFFF).
pub const BIOS_START: u64 = 0xF_0000;
/// First byte of extended memory (1 MiB).
pub const EXTENDED_START: u64 = 0x10_0000;
/// Bytes at the top of low RAM reserved for the ACPI tables.
pub const ACPI_AREA_BYTES: u64 = 128 << 10;
/// The IOAPIC's MMIO window.
pub const IOAPIC_BASE: u64 = 0xFEC0_0000;
/// The local APIC's MMIO window.
pub const LAPIC_BASE: u64 = 0xFEE0_0000;
/// Size of each APIC window.
pub const APIC_WINDOW_BYTES: u64 = 0x1000;
/// Start of the BIOS ROM alias at the top of 4 GiB (256 KiB).
pub const BIOS_ALIAS_START: u64 = 0xFFFC_0000;

/// Why a RAM size cannot be laid out.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum LayoutError {
    /// The RAM size is zero.
    #[error("guest RAM size is 0 bytes")]
    Zero,
    /// Less than [`MIN_RAM_BYTES`].
    #[error("guest RAM of {0} bytes is too small (at least 2 MiB needed)")]
    TooSmall(u64),
    /// Not a multiple of 4 KiB.
    #[error("guest RAM of {0} bytes is not a multiple of 4 KiB")]
    NotPageMultiple(u64),
    /// More than [`MAX_RAM_BYTES`].
    #[error("guest RAM of {0} bytes is larger than the 1 TiB maximum")]
    TooLarge(u64),
    /// The host could not map the shadow region's ROM side.
    #[error("cannot map the shadow ROM: {0}")]
    ShadowRom(String),
}

/// E820 address range types (ACPI specification table 15.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum E820Type {
    /// AddressRangeMemory: usable RAM.
    Usable,
    /// AddressRangeReserved: not usable by the OS.
    Reserved,
    /// AddressRangeACPI: ACPI tables, reclaimable once read.
    AcpiReclaimable,
    /// AddressRangeNVS: ACPI non-volatile storage.
    AcpiNvs,
}

impl E820Type {
    /// The numeric type code the BIOS interface and boot protocols carry.
    pub fn code(self) -> u32 {
        match self {
            E820Type::Usable => 1,
            E820Type::Reserved => 2,
            E820Type::AcpiReclaimable => 3,
            E820Type::AcpiNvs => 4,
        }
    }
}

/// One entry of the E820 map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct E820Entry {
    /// First byte.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// What the range is.
    pub kind: E820Type,
}

impl E820Entry {
    /// The 20-byte record (base, length, type) used by INT 15h E820, boot_params and Multiboot.
    pub fn to_bytes(&self) -> [u8; 20] {
        let mut b = [0u8; 20];
        b[0..8].copy_from_slice(&self.addr.to_le_bytes());
        b[8..16].copy_from_slice(&self.size.to_le_bytes());
        b[16..20].copy_from_slice(&self.kind.code().to_le_bytes());
        b
    }
}

/// The memory layout for one guest RAM size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLayout {
    ram_bytes: u64,
    low_end: u64,
}

impl MemoryLayout {
    /// Lays out `ram_bytes` of guest RAM; rejects sizes the board cannot hold.
    pub fn new(ram_bytes: u64) -> Result<Self, LayoutError> {
        if ram_bytes == 0 {
            return Err(LayoutError::Zero);
        }
        if ram_bytes < MIN_RAM_BYTES {
            return Err(LayoutError::TooSmall(ram_bytes));
        }
        if !ram_bytes.is_multiple_of(RAM_GRANULE) {
            return Err(LayoutError::NotPageMultiple(ram_bytes));
        }
        if ram_bytes > MAX_RAM_BYTES {
            return Err(LayoutError::TooLarge(ram_bytes));
        }
        Ok(MemoryLayout { ram_bytes, low_end: ram_bytes.min(PCI_HOLE_START) })
    }

    /// Total guest RAM in bytes.
    pub fn ram_bytes(&self) -> u64 {
        self.ram_bytes
    }

    /// End of RAM below 4 GiB (exclusive).
    pub fn low_end(&self) -> u64 {
        self.low_end
    }

    /// Bytes of RAM mapped at [`HIGH_RAM_START`].
    pub fn high_ram_bytes(&self) -> u64 {
        self.ram_bytes - self.low_end
    }

    /// First byte of the ACPI table area at the top of low RAM.
    pub fn acpi_area_start(&self) -> u64 {
        self.low_end - ACPI_AREA_BYTES
    }

    /// End (exclusive) of the usable RAM above 1 MiB and below 4 GiB, where loaders may
    /// place kernels and initrds.
    pub fn usable_low_end(&self) -> u64 {
        self.acpi_area_start()
    }

    /// The regions the board adds to its address map: conventional RAM, shadow RAM over
    /// 0xC0000-0xFFFFF (every segment read-write, as firmware leaves it, with an all-ones ROM
    /// side until firmware is put there), RAM from 1 MiB, and RAM above 4 GiB.
    pub fn regions(&self) -> Result<Vec<Region>, LayoutError> {
        let rom_len = EXTENDED_START - SHADOW_START;
        let rom = GuestRam::new(rom_len).map_err(|e| LayoutError::ShadowRom(e.to_string()))?;
        rom.fill(0, rom_len as usize, 0xff).map_err(|e| LayoutError::ShadowRom(e.to_string()))?;
        let shadow = RegionKind::Shadow {
            offset: SHADOW_START,
            rom: Arc::new(rom),
            control: Arc::new(ShadowControl::new(enable::READ_WRITE)),
        };
        let mut regions = vec![
            Region {
                base: 0,
                len: CONVENTIONAL_END,
                kind: RegionKind::Ram { offset: 0 },
                name: "conventional RAM".into(),
            },
            Region { base: SHADOW_START, len: rom_len, kind: shadow, name: "shadow RAM".into() },
            Region {
                base: EXTENDED_START,
                len: self.low_end - EXTENDED_START,
                kind: RegionKind::Ram { offset: EXTENDED_START },
                name: "RAM below 4 GiB".into(),
            },
        ];
        if self.high_ram_bytes() > 0 {
            regions.push(Region {
                base: HIGH_RAM_START,
                len: self.high_ram_bytes(),
                kind: RegionKind::Ram { offset: self.low_end },
                name: "RAM above 4 GiB".into(),
            });
        }
        Ok(regions)
    }

    /// The E820 map in address order.
    pub fn e820(&self) -> Vec<E820Entry> {
        let entry = |addr: u64, end: u64, kind| E820Entry { addr, size: end - addr, kind };
        let mut map = vec![
            entry(0, EBDA_START, E820Type::Usable),
            entry(EBDA_START, CONVENTIONAL_END, E820Type::Reserved),
            entry(BIOS_START, EXTENDED_START, E820Type::Reserved),
            entry(EXTENDED_START, self.acpi_area_start(), E820Type::Usable),
            entry(self.acpi_area_start(), self.low_end, E820Type::AcpiReclaimable),
            entry(IOAPIC_BASE, IOAPIC_BASE + APIC_WINDOW_BYTES, E820Type::Reserved),
            entry(LAPIC_BASE, LAPIC_BASE + APIC_WINDOW_BYTES, E820Type::Reserved),
            entry(BIOS_ALIAS_START, HIGH_RAM_START, E820Type::Reserved),
        ];
        if self.high_ram_bytes() > 0 {
            map.push(entry(HIGH_RAM_START, HIGH_RAM_START + self.high_ram_bytes(), E820Type::Usable));
        }
        map
    }
}

impl fmt::Display for MemoryLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} MiB RAM: low RAM ends at {:#x}", self.ram_bytes >> 20, self.low_end)?;
        if self.high_ram_bytes() > 0 {
            write!(f, ", {} MiB above 4 GiB", self.high_ram_bytes() >> 20)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rx86_core::memory::GuestRam;
    use rx86_core::phys::PhysMemory;
    use std::sync::Arc;

    #[test]
    fn rejects_bad_sizes() {
        assert_eq!(MemoryLayout::new(0), Err(LayoutError::Zero));
        assert_eq!(MemoryLayout::new(1 << 20), Err(LayoutError::TooSmall(1 << 20)));
        assert_eq!(MemoryLayout::new((4 << 20) + 1), Err(LayoutError::NotPageMultiple((4 << 20) + 1)));
        assert_eq!(MemoryLayout::new(2 << 40), Err(LayoutError::TooLarge(2 << 40)));
        assert!(MemoryLayout::new(MIN_RAM_BYTES).is_ok());
        assert!(MemoryLayout::new(MAX_RAM_BYTES).is_ok());
    }

    #[test]
    fn small_ram_stays_below_the_hole() {
        let l = MemoryLayout::new(128 << 20).unwrap();
        assert_eq!(l.low_end(), 128 << 20);
        assert_eq!(l.high_ram_bytes(), 0);
        assert_eq!(l.regions().unwrap().len(), 3);
        let e = l.e820();
        assert!(e.iter().all(|x| x.addr < HIGH_RAM_START || x.kind != E820Type::Usable));
        let acpi = e.iter().find(|x| x.kind == E820Type::AcpiReclaimable).unwrap();
        assert_eq!(acpi.addr + acpi.size, 128 << 20);
        assert_eq!(acpi.size, ACPI_AREA_BYTES);
    }

    #[test]
    fn large_ram_splits_at_the_pci_hole() {
        let l = MemoryLayout::new(5 << 30).unwrap();
        assert_eq!(l.low_end(), 0xC000_0000);
        assert_eq!(l.high_ram_bytes(), (5 << 30) - 0xC000_0000);
        let high = l.regions().unwrap().into_iter().find(|r| r.base == HIGH_RAM_START).unwrap();
        assert!(matches!(high.kind, RegionKind::Ram { offset: 0xC000_0000 }));
        let usable: u64 = l.e820().iter().filter(|x| x.kind == E820Type::Usable).map(|x| x.size).sum();
        // All RAM except the EBDA, the 0x9FC00..0x100000 gap, the ACPI area and the hole.
        assert_eq!(usable, (5 << 30) - (EXTENDED_START - EBDA_START) - ACPI_AREA_BYTES);
    }

    #[test]
    fn e820_is_in_address_order_and_disjoint() {
        for ram in [MIN_RAM_BYTES, 64 << 20, 3 << 30, 8 << 30] {
            let e = MemoryLayout::new(ram).unwrap().e820();
            for w in e.windows(2) {
                assert!(w[0].addr + w[0].size <= w[1].addr, "{w:?}");
            }
        }
    }

    #[test]
    fn regions_are_accepted_by_the_address_map() {
        let l = MemoryLayout::new(5 << 30).unwrap();
        let mut m = PhysMemory::new(Arc::new(GuestRam::new(l.ram_bytes()).unwrap()));
        for r in l.regions().unwrap() {
            m.add_region(r).unwrap();
        }
        assert_eq!(m.ram_offset(HIGH_RAM_START, 8), Some(0xC000_0000));
        assert_eq!(m.ram_offset(0xD_0000, 8), Some(0xD_0000));
        assert_eq!(m.ram_offset(0xA_0000, 1), None);
    }

    #[test]
    fn e820_record_layout() {
        let b = E820Entry { addr: 0x1122, size: 0x3344, kind: E820Type::AcpiReclaimable }.to_bytes();
        assert_eq!(&b[0..8], &0x1122u64.to_le_bytes());
        assert_eq!(&b[8..16], &0x3344u64.to_le_bytes());
        assert_eq!(&b[16..20], &3u32.to_le_bytes());
    }
}
