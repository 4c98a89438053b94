//! ACPI tables for the rx86 PC (ACPI 6.5 chapter 5.2, "ACPI System Description Tables").
//!
//! [`build_acpi_tables`] writes the FACS, DSDT, FADT, MADT, RSDT and XSDT into the ACPI
//! area at the top of low RAM (reported as ACPI reclaimable in E820) and the RSDP into
//! the BIOS area at [`RSDP_ADDRESS`], where an OS that is not handed the address finds it
//! by scanning 0xE0000-0xFFFFF on 16-byte boundaries (section 5.2.5.1).
//!
//! [`build_acpi_blobs`] lays out the same tables for external firmware instead, as QEMU hands
//! them over fw_cfg: the tables and the RSDP as two blobs whose pointer fields hold offsets
//! into the tables blob, and a [`loader`] script that places both blobs, adds the tables
//! blob's address to those fields and fixes the checksums.

pub mod aml;
mod dsdt;
mod fadt;
pub mod loader;
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

/// RSDP field offsets (ACPI 6.5 Table 5.3).
const RSDP_CHECKSUM_OFFSET: u64 = 8;
const RSDP_RSDT_OFFSET: u64 = 16;
const RSDP_XSDT_OFFSET: u64 = 24;
const RSDP_EXTENDED_CHECKSUM_OFFSET: u64 = 32;

/// The RSDP pointing at the RSDT and XSDT, with both checksums.
fn rsdp(rsdt: u64, xsdt: u64) -> [u8; RSDP_LENGTH] {
    let mut r = [0u8; RSDP_LENGTH];
    r[0..8].copy_from_slice(b"RSD PTR ");
    r[9..15].copy_from_slice(OEM_ID);
    r[15] = RSDP_REVISION;
    r[RSDP_RSDT_OFFSET as usize..][..4].copy_from_slice(&(rsdt as u32).to_le_bytes());
    r[20..24].copy_from_slice(&(RSDP_LENGTH as u32).to_le_bytes());
    r[RSDP_XSDT_OFFSET as usize..][..8].copy_from_slice(&xsdt.to_le_bytes());
    r[RSDP_CHECKSUM_OFFSET as usize] = sdt::checksum(&r[..RSDP_V1_LENGTH]);
    r[RSDP_EXTENDED_CHECKSUM_OFFSET as usize] = sdt::checksum(&r);
    r
}

/// A table's place in the tables blob or area, and its length.
#[derive(Clone, Copy)]
struct Placed {
    at: u64,
    len: usize,
}

/// The tables laid out from an address (or from 0, as offsets into a blob).
struct Assembled {
    area: TableArea,
    fadt: Placed,
    rsdt: Placed,
    xsdt: Placed,
    /// The tables the RSDT and XSDT list.
    listed: usize,
    rsdp: [u8; RSDP_LENGTH],
}

impl TableArea {
    fn place_table(&mut self, table: &[u8]) -> Placed {
        Placed { at: self.place(table, TABLE_ALIGN), len: table.len() }
    }
}

/// Lays out the tables for `cpus` processors from `base`.
fn assemble(base: u64, layout: &MemoryLayout, cpus: u32) -> Result<Assembled, AcpiError> {
    let cpus =
        u8::try_from(cpus).ok().filter(|&c| c >= 1 && u32::from(c) <= MAX_CPUS).ok_or(AcpiError::CpuCount(cpus))?;
    let mut area = TableArea { base, bytes: Vec::new() };
    let facs = area.place(&fadt::facs(), FACS_ALIGN);
    let dsdt = area.place(&dsdt::dsdt(layout)?, TABLE_ALIGN);
    let fadt = area.place_table(&fadt::fadt(facs, dsdt));
    let madt = area.place_table(&madt::madt(cpus));
    let listed = [fadt.at, madt.at];
    let rsdt_body: Vec<u8> = listed.iter().flat_map(|&a| (a as u32).to_le_bytes()).collect();
    let rsdt = area.place_table(&sdt::table(b"RSDT", 1, &rsdt_body));
    let xsdt_body: Vec<u8> = listed.iter().flat_map(|&a| a.to_le_bytes()).collect();
    let xsdt = area.place_table(&sdt::table(b"XSDT", 1, &xsdt_body));
    if area.bytes.len() as u64 > ACPI_AREA_BYTES {
        return Err(AcpiError::TooLarge(area.bytes.len()));
    }
    let rsdp = rsdp(rsdt.at, xsdt.at);
    Ok(Assembled { area, fadt, rsdt, xsdt, listed: listed.len(), rsdp })
}

/// Builds the ACPI tables for `cpus` processors into guest memory and returns the RSDP's
/// guest-physical address (for boot_params.acpi_rsdp_addr).
pub fn build_acpi_tables(mem: &PhysMemory, layout: &MemoryLayout, cpus: u32) -> Result<u64, AcpiError> {
    let tables = assemble(layout.acpi_area_start(), layout, cpus)?;
    mem.dma_write(tables.area.base, &tables.area.bytes)?;
    mem.dma_write(RSDP_ADDRESS, &tables.rsdp)?;
    log::info!(
        "ACPI: RSDP at {RSDP_ADDRESS:#x}, {} bytes of tables at {:#x} ({cpus} CPU(s))",
        tables.area.bytes.len(),
        tables.area.base
    );
    Ok(RSDP_ADDRESS)
}

/// fw_cfg file of the tables blob.
pub const TABLES_FILE: &str = "etc/acpi/tables";
/// fw_cfg file of the RSDP blob.
pub const RSDP_FILE: &str = "etc/acpi/rsdp";
/// fw_cfg file of the loader script.
pub const LOADER_FILE: &str = "etc/table-loader";

/// The ACPI tables as fw_cfg files for external firmware (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcpiBlobs {
    /// [`TABLES_FILE`]: FACS, DSDT, FADT, MADT, RSDT, XSDT, pointers as offsets into it.
    pub tables: Vec<u8>,
    /// [`RSDP_FILE`]: the RSDP, its RSDT and XSDT addresses as offsets into the tables.
    pub rsdp: Vec<u8>,
    /// [`LOADER_FILE`]: the loader script.
    pub loader: Vec<u8>,
}

/// Builds the tables for `cpus` processors as fw_cfg blobs with their loader script.
pub fn build_acpi_blobs(layout: &MemoryLayout, cpus: u32) -> Result<AcpiBlobs, AcpiError> {
    use loader::{Command, Zone};
    let tables = assemble(0, layout, cpus)?;
    let pointer = |destination: &str, offset: u64, size: u8| Command::AddPointer {
        destination: destination.into(),
        source: TABLES_FILE.into(),
        offset: offset as u32,
        size,
    };
    let checksum = |file: &str, offset: u64, start: u64, length: usize| Command::AddChecksum {
        file: file.into(),
        offset: offset as u32,
        start: start as u32,
        length: length as u32,
    };
    // The RSDP goes where an OS scans for it; the tables keep the FACS's 64-byte alignment.
    let mut commands = vec![
        Command::Allocate { file: RSDP_FILE.into(), align: 16, zone: Zone::FSegment },
        Command::Allocate { file: TABLES_FILE.into(), align: FACS_ALIGN as u32, zone: Zone::High },
    ];
    let (fadt, rsdt, xsdt) = (tables.fadt, tables.rsdt, tables.xsdt);
    commands
        .extend(fadt::POINTER_FIELDS.iter().map(|&(field, size)| pointer(TABLES_FILE, fadt.at + field as u64, size)));
    for i in 0..tables.listed as u64 {
        commands.push(pointer(TABLES_FILE, rsdt.at + sdt::HEADER_LENGTH as u64 + 4 * i, 4));
        commands.push(pointer(TABLES_FILE, xsdt.at + sdt::HEADER_LENGTH as u64 + 8 * i, 8));
    }
    for table in [fadt, rsdt, xsdt] {
        commands.push(checksum(TABLES_FILE, table.at + sdt::CHECKSUM_OFFSET as u64, table.at, table.len));
    }
    commands.extend([
        pointer(RSDP_FILE, RSDP_RSDT_OFFSET, 4),
        pointer(RSDP_FILE, RSDP_XSDT_OFFSET, 8),
        checksum(RSDP_FILE, RSDP_CHECKSUM_OFFSET, 0, RSDP_V1_LENGTH),
        checksum(RSDP_FILE, RSDP_EXTENDED_CHECKSUM_OFFSET, 0, RSDP_LENGTH),
    ]);
    Ok(AcpiBlobs { tables: tables.area.bytes, rsdp: tables.rsdp.to_vec(), loader: loader::encode(&commands) })
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
        for r in layout.regions().unwrap() {
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

    /// Runs a loader script as firmware does (SeaBIOS `romfile_loader.c`): each ALLOCATE places
    /// its file at the next aligned address from `high` or `fseg`; pointers and checksums then
    /// apply to the placed copies. Returns where each file went.
    fn run_loader(mem: &PhysMemory, blobs: &AcpiBlobs, mut high: u64, mut fseg: u64) -> HashMap<String, u64> {
        let name = |b: &[u8]| String::from_utf8_lossy(&b[..b.iter().position(|&c| c == 0).unwrap()]).into_owned();
        let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as u64;
        let files: HashMap<&str, &[u8]> =
            [(TABLES_FILE, &blobs.tables[..]), (RSDP_FILE, &blobs.rsdp[..])].into_iter().collect();
        let mut placed = HashMap::new();
        for c in blobs.loader.chunks(loader::COMMAND_BYTES) {
            match u32_at(c, 0) {
                1 => {
                    let file = name(&c[4..60]);
                    let align = u32_at(c, 60);
                    let next = if c[64] == 2 { &mut fseg } else { &mut high };
                    let at = next.next_multiple_of(align);
                    mem.dma_write(at, files[file.as_str()]).unwrap();
                    *next = at + files[file.as_str()].len() as u64;
                    placed.insert(file, at);
                }
                2 => {
                    let (dest, src) = (placed[&name(&c[4..60])], placed[&name(&c[60..116])]);
                    let (field, size) = (dest + u32_at(c, 116), c[120] as usize);
                    let mut value = [0u8; 8];
                    mem.dma_read(field, &mut value[..size]).unwrap();
                    let sum = u64::from_le_bytes(value) + src;
                    mem.dma_write(field, &sum.to_le_bytes()[..size]).unwrap();
                }
                3 => {
                    let base = placed[&name(&c[4..60])];
                    let (at, start, len) = (base + u32_at(c, 60), base + u32_at(c, 64), u32_at(c, 68) as usize);
                    let range = read(mem, start, len);
                    let byte = read(mem, at, 1)[0].wrapping_sub(range.iter().fold(0u8, |a, &b| a.wrapping_add(b)));
                    mem.dma_write(at, &[byte]).unwrap();
                }
                other => panic!("unknown loader command {other}"),
            }
        }
        placed
    }

    #[test]
    fn loader_script_places_the_blobs_as_parseable_tables() {
        let (mem, layout) = machine(64 << 20);
        let blobs = build_acpi_blobs(&layout, 1).unwrap();
        assert_eq!(blobs.loader.len() % loader::COMMAND_BYTES, 0);
        // Odd starting points: the script must not rely on where the firmware puts things.
        let placed = run_loader(&mem, &blobs, 0x1234, 0xF_5A04);
        let (rsdp, tables) = (placed[RSDP_FILE], placed[TABLES_FILE]);
        assert_eq!((rsdp % 16, tables % 64), (0, 0));
        assert!((0xF_0000..0x10_0000).contains(&rsdp), "the RSDP is in the F segment");
        let t = parse_back(&mem, rsdp);
        // The same tables as the fixed-address build, wherever they were placed.
        let (fixed_mem, _) = machine(64 << 20);
        let fixed = parse_back(&fixed_mem, build_acpi_tables(&fixed_mem, &layout, 1).unwrap());
        for signature in ["APIC", "DSDT", "FACS"] {
            assert_eq!(t[signature], fixed[signature], "{signature}");
        }
        let fadt = &t["FACP"];
        assert_eq!(u32::from_le_bytes(fadt[36..40].try_into().unwrap()) as u64, tables, "FACS first in the blob");
        assert_eq!(fadt[44..132], fixed["FACP"][44..132], "fields other than the pointers");
        assert_eq!(fadt[148..], fixed["FACP"][148..], "fields other than the pointers");
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
