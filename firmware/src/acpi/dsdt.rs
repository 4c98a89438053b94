//! The Differentiated System Description Table (DSDT), ACPI 6.5 section 5.2.11.1.
//!
//! It holds `\_S5` (soft-off is SLP_TYP 0 on the board, section 7.4.2) and the PCI root
//! bridge `\_SB.PCI0` (a PNP0A03 host bridge on bus 0, the i440FX), which lets Linux
//! enumerate PCI through ACPI instead of probing. Its `_CRS` (section 6.4 resource
//! descriptors) names the windows the bridge forwards: bus numbers 0-255, the
//! configuration ports, all other I/O ports, the VGA window and the PCI hole up to the
//! IOAPIC; without them Linux cannot claim any BAR (legacy IDE ports included).

use super::aml::{self, AmlError, DataObject, NameString, Term};
use super::sdt;
use crate::layout::{MemoryLayout, IOAPIC_BASE};

/// DSDT revision 2: integers are 64 bits wide.
const DSDT_REVISION: u8 = 2;
/// SLP_TYP value for S5 on the board (PM1a and PM1b).
const S5_SLP_TYP: u64 = 0;
/// PNP ID of a PCI host bridge.
const PCI_HOST_BRIDGE_HID: &str = "PNP0A03";

/// Word Address Space Descriptor (large item 0x88) for a producer window with fixed
/// bounds: `kind` 1 = I/O, 2 = bus numbers; `flags` the type-specific flags.
fn word_window(kind: u8, flags: u8, min: u16, max: u16) -> Vec<u8> {
    let mut d = vec![0x88, 0x0d, 0x00, kind, 0x0c, flags];
    for v in [0, min, max, 0, max - min + 1] {
        d.extend(v.to_le_bytes());
    }
    d
}

/// DWord Address Space Descriptor (large item 0x87) for a cacheable read-write memory
/// window.
fn dword_memory_window(min: u32, max: u32) -> Vec<u8> {
    let mut d = vec![0x87, 0x17, 0x00, 0x00, 0x0c, 0x03];
    for v in [0, min, max, 0, max - min + 1] {
        d.extend(v.to_le_bytes());
    }
    d
}

/// The root bridge's `_CRS` resource template for `layout`.
fn pci_root_resources(layout: &MemoryLayout) -> Vec<u8> {
    let mut t = word_window(2, 0, 0, 0xff);
    // I/O port descriptor (small item 0x47): 0xCF8-0xCFF, 16-bit decode.
    t.extend([0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08]);
    t.extend(word_window(1, 0x03, 0x0000, 0x0cf7));
    t.extend(word_window(1, 0x03, 0x0d00, 0xffff));
    t.extend(dword_memory_window(0x000a_0000, 0x000b_ffff));
    t.extend(dword_memory_window(layout.low_end() as u32, IOAPIC_BASE as u32 - 1));
    // End tag with a zero checksum ("treated as correct").
    t.extend([0x79, 0x00]);
    t
}

/// The DSDT's AML term list.
pub(super) fn dsdt_terms(layout: &MemoryLayout) -> Result<Vec<Term>, AmlError> {
    let int = DataObject::Integer;
    let s5 = DataObject::Package(vec![int(S5_SLP_TYP), int(S5_SLP_TYP), int(0), int(0)]);
    let pci0 = Term::Device(
        NameString::parse("PCI0")?,
        vec![
            Term::Name(NameString::parse("_HID")?, int(aml::eisa_id(PCI_HOST_BRIDGE_HID)?)),
            Term::Name(NameString::parse("_ADR")?, int(0)),
            Term::Name(NameString::parse("_UID")?, int(0)),
            Term::Name(NameString::parse("_BBN")?, int(0)),
            Term::Name(NameString::parse("_CRS")?, DataObject::Buffer(pci_root_resources(layout))),
        ],
    );
    Ok(vec![Term::Name(NameString::parse("\\_S5")?, s5), Term::Scope(NameString::parse("\\_SB")?, vec![pci0])])
}

/// The complete DSDT.
pub(super) fn dsdt(layout: &MemoryLayout) -> Result<Vec<u8>, AmlError> {
    Ok(sdt::table(b"DSDT", DSDT_REVISION, &aml::encode(&dsdt_terms(layout)?)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsdt_holds_s5_and_the_pci_root() {
        let layout = MemoryLayout::new(256 << 20).unwrap();
        let t = dsdt(&layout).unwrap();
        assert_eq!(&t[0..4], b"DSDT");
        assert_eq!(t[8], 2);
        assert_eq!(t.iter().fold(0u8, |a, &x| a.wrapping_add(x)), 0);
        // Name(\_S5, Package(){0,0,0,0}) comes first, byte for byte.
        assert_eq!(&t[36..49], &[0x08, b'\\', b'_', b'S', b'5', b'_', 0x12, 0x06, 0x04, 0, 0, 0, 0]);
        let terms = aml::decode(&t[36..]).unwrap();
        assert_eq!(terms, dsdt_terms(&layout).unwrap());
        let Term::Scope(sb, devices) = &terms[1] else { panic!("no \\_SB scope: {terms:?}") };
        assert_eq!(sb.to_string(), "\\_SB_");
        let Term::Device(pci0, names) = &devices[0] else { panic!("no device") };
        assert_eq!(pci0.to_string(), "PCI0");
        assert_eq!(names[0], Term::Name(NameString::parse("_HID").unwrap(), DataObject::Integer(0x030A_D041)));
        let Term::Name(crs, DataObject::Buffer(r)) = &names[4] else { panic!("no _CRS buffer: {names:?}") };
        assert_eq!(crs.to_string(), "_CRS");
        assert_eq!(&r[r.len() - 2..], &[0x79, 0x00], "end tag");
        // The memory window of the PCI hole runs from the end of low RAM to below the IOAPIC.
        let hole = &r[r.len() - 2 - 26..r.len() - 2];
        assert_eq!(u32::from_le_bytes(hole[10..14].try_into().unwrap()), 256 << 20);
        assert_eq!(u32::from_le_bytes(hole[14..18].try_into().unwrap()), 0xfebf_ffff);
    }
}
