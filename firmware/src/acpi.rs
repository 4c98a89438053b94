//! ACPI tables for the rx86 PC (ACPI 6.5 chapter 5.2, "ACPI System Description Tables").
//!
//! [`build_acpi_tables`] writes the FACS, DSDT, FADT, MADT, RSDT and XSDT into the ACPI
//! area at the top of low RAM (reported as ACPI reclaimable in E820) and the RSDP into
//! the BIOS area at [`RSDP_ADDRESS`], where an OS that is not handed the address finds it
//! by scanning 0xE0000-0xFFFFF on 16-byte boundaries (section 5.2.5.1).

pub mod aml;
mod dsdt;
mod fadt;
mod madt;
mod sdt;

use crate::layout::{MemoryLayout, ACPI_AREA_BYTES};
use rx86_core::phys::{PhysError, PhysMemory};
use thiserror::Error;

pub use fadt::{GPE0_BLK, PM1A_CNT_BLK, PM1A_EVT_BLK, PM_TMR_BLK, RESET_PORT, RESET_VALUE, SCI_IRQ};
pub use madt::IOAPIC_ID;
pub use sdt::{OEM_ID, OEM_TABLE_ID};

/// Where the RSDP goes: the start of the 0xE0000-0xFFFFF scan area, clear of the system
/// BIOS image at 0xF0000.
pub const RSDP_ADDRESS: u64 = 0xE_0000;
/// Largest CPU count the MADT describes (8-bit xAPIC IDs; 0xFF is the broadcast ID).
pub const MAX_CPUS: u32 = 254;
/// RSDP revision 2 (ACPI 2.0+ layout with the XSDT address).
const RSDP_REVISION: u8 = 2;
/// Length of the ACPI 2.0 RSDP.
const RSDP_LENGTH: usize = 36;
/// Length of the ACPI 1.0 part of the RSDP covered by the first checksum.
const RSDP_V1_LENGTH: usize = 20;
/// The FACS must be 64-byte aligned (section 5.2.10).
const FACS_ALIGN: usize = 64;
/// Alignment of the other tables (not required; keeps dumps readable).
const TABLE_ALIGN: usize = 16;

/// Errors building the ACPI tables.
#[derive(Debug, Error)]
pub enum AcpiError {
    /// The CPU count is zero or larger than [`MAX_CPUS`].
    #[error("cannot describe {0} CPUs in the MADT (1 to 254 supported)")]
    CpuCount(u32),
    /// The DSDT could not be encoded.
    #[error("DSDT encoding failed: {0}")]
    Aml(#[from] aml::AmlError),
    /// The tables outgrew the ACPI area.
    #[error("ACPI tables of {0} bytes do not fit in the {ACPI_AREA_BYTES}-byte ACPI area")]
    TooLarge(usize),
    /// Guest memory rejected the write (the address map lacks RAM there).
    #[error("writing ACPI tables to guest memory failed: {0}")]
    Memory(#[from] PhysError),
}

/// The ACPI area being filled: tables are appended at aligned offsets.
struct TableArea {
    base: u64,
    bytes: Vec<u8>,
}

impl TableArea {
    /// Appends `table` at the next `align`-byte boundary and returns its address.
    fn place(&mut self, table: &[u8], align: usize) -> u64 {
        let at = self.bytes.len().next_multiple_of(align);
        self.bytes.resize(at, 0);
        self.bytes.extend_from_slice(table);
        self.base + at as u64
    }
}

/// The RSDP pointing at the RSDT and XSDT, with both checksums.
fn rsdp(rsdt: u64, xsdt: u64) -> [u8; RSDP_LENGTH] {
    let mut r = [0u8; RSDP_LENGTH];
    r[0..8].copy_from_slice(b"RSD PTR ");
    r[9..15].copy_from_slice(OEM_ID);
    r[15] = RSDP_REVISION;
    r[16..20].copy_from_slice(&(rsdt as u32).to_le_bytes());
    r[20..24].copy_from_slice(&(RSDP_LENGTH as u32).to_le_bytes());
    r[24..32].copy_from_slice(&xsdt.to_le_bytes());
    r[8] = sdt::checksum(&r[..RSDP_V1_LENGTH]);
    r[32] = sdt::checksum(&r);
    r
}

/// Builds the ACPI tables for `cpus` processors into guest memory and returns the RSDP's
/// guest-physical address (for boot_params.acpi_rsdp_addr).
pub fn build_acpi_tables(mem: &PhysMemory, layout: &MemoryLayout, cpus: u32) -> Result<u64, AcpiError> {
    let cpus =
        u8::try_from(cpus).ok().filter(|&c| c >= 1 && u32::from(c) <= MAX_CPUS).ok_or(AcpiError::CpuCount(cpus))?;
    let mut area = TableArea { base: layout.acpi_area_start(), bytes: Vec::new() };
    let facs = area.place(&fadt::facs(), FACS_ALIGN);
    let dsdt = area.place(&dsdt::dsdt(layout)?, TABLE_ALIGN);
    let fadt = area.place(&fadt::fadt(facs, dsdt), TABLE_ALIGN);
    let madt = area.place(&madt::madt(cpus), TABLE_ALIGN);
    let tables = [fadt, madt];
    let rsdt_body: Vec<u8> = tables.iter().flat_map(|&a| (a as u32).to_le_bytes()).collect();
    let rsdt = area.place(&sdt::table(b"RSDT", 1, &rsdt_body), TABLE_ALIGN);
    let xsdt_body: Vec<u8> = tables.iter().flat_map(|&a| a.to_le_bytes()).collect();
    let xsdt = area.place(&sdt::table(b"XSDT", 1, &xsdt_body), TABLE_ALIGN);
    if area.bytes.len() as u64 > ACPI_AREA_BYTES {
        return Err(AcpiError::TooLarge(area.bytes.len()));
    }
    mem.dma_write(area.base, &area.bytes)?;
    mem.dma_write(RSDP_ADDRESS, &rsdp(rsdt, xsdt))?;
    log::info!(
        "ACPI: RSDP at {RSDP_ADDRESS:#x}, {} bytes of tables at {:#x} ({cpus} CPU(s))",
        area.bytes.len(),
        area.base
    );
    Ok(RSDP_ADDRESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rx86_core::memory::GuestRam;
    use std::collections::HashMap;
    use std::sync::Arc;

    fn machine(ram: u64) -> (PhysMemory, MemoryLayout) {
        let layout = MemoryLayout::new(ram).unwrap();
        let mut mem = PhysMemory::new(Arc::new(GuestRam::new(ram).unwrap()));
        for r in layout.regions() {
            mem.add_region(r).unwrap();
        }
        (mem, layout)
    }

    fn read(mem: &PhysMemory, addr: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        mem.dma_read(addr, &mut b).unwrap();
        b
    }

    fn sums_to_zero(b: &[u8]) -> bool {
        b.iter().fold(0u8, |a, &x| a.wrapping_add(x)) == 0
    }

    /// Reads a table at `addr`, checking its length field and checksum.
    fn table(mem: &PhysMemory, addr: u64) -> Vec<u8> {
        let len = u32::from_le_bytes(read(mem, addr + 4, 4).try_into().unwrap()) as usize;
        let t = read(mem, addr, len);
        assert!(sums_to_zero(&t), "checksum of {:?}", String::from_utf8_lossy(&t[..4]));
        t
    }

    /// Follows RSDP -> XSDT -> tables, as an OS would, returning tables by signature.
    fn parse_back(mem: &PhysMemory, rsdp_addr: u64) -> HashMap<String, Vec<u8>> {
        let rsdp = read(mem, rsdp_addr, RSDP_LENGTH);
        assert_eq!(&rsdp[0..8], b"RSD PTR ");
        assert!(sums_to_zero(&rsdp[..20]), "ACPI 1.0 checksum");
        assert!(sums_to_zero(&rsdp), "extended checksum");
        assert_eq!(rsdp[15], 2);
        let rsdt_addr = u32::from_le_bytes(rsdp[16..20].try_into().unwrap()) as u64;
        let xsdt_addr = u64::from_le_bytes(rsdp[24..32].try_into().unwrap());
        let rsdt = table(mem, rsdt_addr);
        let xsdt = table(mem, xsdt_addr);
        assert_eq!(&xsdt[0..4], b"XSDT");
        let via_rsdt: Vec<u64> =
            rsdt[36..].chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap()) as u64).collect();
        let via_xsdt: Vec<u64> = xsdt[36..].chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(via_rsdt, via_xsdt);
        let mut out = HashMap::new();
        for a in via_xsdt {
            let t = table(mem, a);
            out.insert(String::from_utf8_lossy(&t[0..4]).into_owned(), t);
        }
        let fadt = &out["FACP"];
        let dsdt_addr = u64::from_le_bytes(fadt[140..148].try_into().unwrap());
        let facs_addr = u64::from_le_bytes(fadt[132..140].try_into().unwrap());
        out.insert("DSDT".into(), table(mem, dsdt_addr));
        assert_eq!(facs_addr % 64, 0, "FACS alignment");
        out.insert("FACS".into(), read(mem, facs_addr, 64));
        out
    }

    #[test]
    fn tables_parse_back_from_guest_memory() {
        let (mem, layout) = machine(64 << 20);
        let rsdp = build_acpi_tables(&mem, &layout, 1).unwrap();
        assert_eq!(rsdp, RSDP_ADDRESS);
        assert_eq!(rsdp % 16, 0);
        assert!((0xE_0000..0x10_0000).contains(&rsdp));
        let t = parse_back(&mem, rsdp);
        assert_eq!(t.len(), 4);
        assert_eq!(&t["FACS"][0..4], b"FACS");
        assert_eq!(&t["APIC"][0..4], b"APIC");
        let dsdt = aml::decode(&t["DSDT"][36..]).unwrap();
        assert_eq!(dsdt, dsdt::dsdt_terms(&layout).unwrap());
        // Every table lives in the ACPI area the E820 map reserves.
        let fadt = &t["FACP"];
        let dsdt_addr = u32::from_le_bytes(fadt[40..44].try_into().unwrap()) as u64;
        assert!((layout.acpi_area_start()..layout.low_end()).contains(&dsdt_addr));
    }

    #[test]
    fn high_memory_layout_keeps_tables_below_the_hole() {
        let (mem, layout) = machine(5 << 30);
        build_acpi_tables(&mem, &layout, 2).unwrap();
        let t = parse_back(&mem, RSDP_ADDRESS);
        let madt = &t["APIC"];
        let (mut at, mut local_apics) = (44, 0);
        while at < madt.len() {
            local_apics += usize::from(madt[at] == 0);
            at += usize::from(madt[at + 1]);
        }
        assert_eq!(local_apics, 2);
        let xsdt_addr = u64::from_le_bytes(read(&mem, RSDP_ADDRESS + 24, 8).try_into().unwrap());
        assert!((layout.acpi_area_start()..0xC000_0000).contains(&xsdt_addr));
    }

    #[test]
    fn rejects_bad_cpu_counts() {
        let (mem, layout) = machine(4 << 20);
        assert!(matches!(build_acpi_tables(&mem, &layout, 0), Err(AcpiError::CpuCount(0))));
        assert!(matches!(build_acpi_tables(&mem, &layout, 255), Err(AcpiError::CpuCount(255))));
        assert!(build_acpi_tables(&mem, &layout, 254).is_ok());
    }

    #[test]
    fn missing_ram_is_an_error_not_a_panic() {
        let layout = MemoryLayout::new(4 << 20).unwrap();
        let mem = PhysMemory::new(Arc::new(GuestRam::new(4 << 20).unwrap()));
        assert!(matches!(build_acpi_tables(&mem, &layout, 1), Err(AcpiError::Memory(_))));
    }
}
