//! The Multiple APIC Description Table (MADT, signature "APIC"), ACPI 6.5 section 5.2.12.
//!
//! One local APIC per CPU (APIC ID = processor UID = CPU index), the board's IOAPIC, the
//! two interrupt source overrides of the board (ISA IRQ 0 on GSI 2; the SCI, ISA IRQ 9,
//! level-triggered active-high) and LINT1 as NMI on every processor.

use super::sdt;
use crate::layout::{IOAPIC_BASE, LAPIC_BASE};

/// MADT revision (ACPI 2.0 and later layout).
const MADT_REVISION: u8 = 3;
/// MADT flags bit 0, PCAT_COMPAT: dual 8259s are present too.
const PCAT_COMPAT: u32 = 1 << 0;
/// The IOAPIC's ID on the board.
pub const IOAPIC_ID: u8 = 1;
/// First GSI the IOAPIC serves.
const IOAPIC_GSI_BASE: u32 = 0;

/// Structure type 0: Processor Local APIC.
const TYPE_LOCAL_APIC: u8 = 0;
/// Structure type 1: I/O APIC.
const TYPE_IO_APIC: u8 = 1;
/// Structure type 2: Interrupt Source Override.
const TYPE_INTERRUPT_OVERRIDE: u8 = 2;
/// Structure type 4: Local APIC NMI.
const TYPE_LOCAL_APIC_NMI: u8 = 4;
/// Local APIC flags bit 0: Enabled.
const LOCAL_APIC_ENABLED: u32 = 1 << 0;
/// Bus 0 = ISA in interrupt source overrides.
const BUS_ISA: u8 = 0;
/// MPS INTI flags: polarity active high (bits 1:0 = 01).
const POLARITY_ACTIVE_HIGH: u16 = 0b01;
/// MPS INTI flags: trigger mode edge (bits 3:2 = 01).
const TRIGGER_EDGE: u16 = 0b01 << 2;
/// MPS INTI flags: trigger mode level (bits 3:2 = 11).
const TRIGGER_LEVEL: u16 = 0b11 << 2;
/// Processor UID 0xFF in a Local APIC NMI structure: all processors.
const ALL_PROCESSORS: u8 = 0xFF;
/// The local APIC input wired to NMI.
const NMI_LINT: u8 = 1;

/// The ISA IRQ of the PIT and the GSI it reaches on the IOAPIC.
const PIT_IRQ: u8 = 0;
/// GSI the PIT reaches.
const PIT_GSI: u32 = 2;
/// The SCI's ISA IRQ (equal to its GSI).
const SCI_IRQ: u8 = 9;

/// The MADT for `cpus` processors (the caller checks the count fits in 8-bit APIC IDs).
pub(super) fn madt(cpus: u8) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(LAPIC_BASE as u32).to_le_bytes());
    b.extend_from_slice(&PCAT_COMPAT.to_le_bytes());
    for cpu in 0..cpus {
        b.extend_from_slice(&[TYPE_LOCAL_APIC, 8, cpu, cpu]);
        b.extend_from_slice(&LOCAL_APIC_ENABLED.to_le_bytes());
    }
    b.extend_from_slice(&[TYPE_IO_APIC, 12, IOAPIC_ID, 0]);
    b.extend_from_slice(&(IOAPIC_BASE as u32).to_le_bytes());
    b.extend_from_slice(&IOAPIC_GSI_BASE.to_le_bytes());
    for (irq, gsi, flags) in [
        (PIT_IRQ, PIT_GSI, POLARITY_ACTIVE_HIGH | TRIGGER_EDGE),
        (SCI_IRQ, u32::from(SCI_IRQ), POLARITY_ACTIVE_HIGH | TRIGGER_LEVEL),
    ] {
        b.extend_from_slice(&[TYPE_INTERRUPT_OVERRIDE, 10, BUS_ISA, irq]);
        b.extend_from_slice(&gsi.to_le_bytes());
        b.extend_from_slice(&flags.to_le_bytes());
    }
    b.extend_from_slice(&[TYPE_LOCAL_APIC_NMI, 6, ALL_PROCESSORS, 0, 0, NMI_LINT]);
    sdt::table(b"APIC", MADT_REVISION, &b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (type, bytes) of each interrupt controller structure.
    fn structures(t: &[u8]) -> Vec<(u8, &[u8])> {
        let mut out = Vec::new();
        let mut at = 44;
        while at < t.len() {
            let len = t[at + 1] as usize;
            out.push((t[at], &t[at..at + len]));
            at += len;
        }
        assert_eq!(at, t.len());
        out
    }

    #[test]
    fn one_cpu_board() {
        let t = madt(1);
        assert_eq!(&t[0..4], b"APIC");
        assert_eq!(t.iter().fold(0u8, |a, &x| a.wrapping_add(x)), 0);
        assert_eq!(u32::from_le_bytes(t[36..40].try_into().unwrap()), 0xFEE0_0000);
        assert_eq!(u32::from_le_bytes(t[40..44].try_into().unwrap()), 1);
        let s = structures(&t);
        assert_eq!(s[0], (0, &[0u8, 8, 0, 0, 1, 0, 0, 0][..]));
        assert_eq!(s[1], (1, &[1u8, 12, 1, 0, 0, 0, 0xC0, 0xFE, 0, 0, 0, 0][..]));
        // ISA 0 -> GSI 2, edge/high (flags 0b0101); ISA 9 -> GSI 9, level/high (0b1101).
        assert_eq!(s[2], (2, &[2u8, 10, 0, 0, 2, 0, 0, 0, 0x05, 0][..]));
        assert_eq!(s[3], (2, &[2u8, 10, 0, 9, 9, 0, 0, 0, 0x0D, 0][..]));
        assert_eq!(s[4].0, 4);
        assert_eq!(s.len(), 5);
    }

    #[test]
    fn one_local_apic_per_cpu() {
        let t = madt(4);
        let ids: Vec<u8> = structures(&t).iter().filter(|s| s.0 == 0).map(|s| s.1[3]).collect();
        assert_eq!(ids, vec![0, 1, 2, 3]);
    }
}
