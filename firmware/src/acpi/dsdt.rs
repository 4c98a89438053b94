//! The Differentiated System Description Table (DSDT), ACPI 6.5 section 5.2.11.1.
//!
//! It holds `\_S5` (soft-off is SLP_TYP 0 on the board, section 7.4.2) and the PCI root
//! bridge `\_SB.PCI0` (a PNP0A03 host bridge on bus 0, the i440FX), which lets Linux
//! enumerate PCI through ACPI instead of probing.

use super::aml::{self, AmlError, DataObject, NameString, Term};
use super::sdt;

/// DSDT revision 2: integers are 64 bits wide.
const DSDT_REVISION: u8 = 2;
/// SLP_TYP value for S5 on the board (PM1a and PM1b).
const S5_SLP_TYP: u64 = 0;
/// PNP ID of a PCI host bridge.
const PCI_HOST_BRIDGE_HID: &str = "PNP0A03";

/// The DSDT's AML term list.
pub(super) fn dsdt_terms() -> Result<Vec<Term>, AmlError> {
    let int = DataObject::Integer;
    let s5 = DataObject::Package(vec![int(S5_SLP_TYP), int(S5_SLP_TYP), int(0), int(0)]);
    let pci0 = Term::Device(
        NameString::parse("PCI0")?,
        vec![
            Term::Name(NameString::parse("_HID")?, int(aml::eisa_id(PCI_HOST_BRIDGE_HID)?)),
            Term::Name(NameString::parse("_ADR")?, int(0)),
            Term::Name(NameString::parse("_UID")?, int(0)),
            Term::Name(NameString::parse("_BBN")?, int(0)),
        ],
    );
    Ok(vec![Term::Name(NameString::parse("\\_S5")?, s5), Term::Scope(NameString::parse("\\_SB")?, vec![pci0])])
}

/// The complete DSDT.
pub(super) fn dsdt() -> Result<Vec<u8>, AmlError> {
    Ok(sdt::table(b"DSDT", DSDT_REVISION, &aml::encode(&dsdt_terms()?)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsdt_holds_s5_and_the_pci_root() {
        let t = dsdt().unwrap();
        assert_eq!(&t[0..4], b"DSDT");
        assert_eq!(t[8], 2);
        assert_eq!(t.iter().fold(0u8, |a, &x| a.wrapping_add(x)), 0);
        // Name(\_S5, Package(){0,0,0,0}) comes first, byte for byte.
        assert_eq!(&t[36..49], &[0x08, b'\\', b'_', b'S', b'5', b'_', 0x12, 0x06, 0x04, 0, 0, 0, 0]);
        let terms = aml::decode(&t[36..]).unwrap();
        assert_eq!(terms, dsdt_terms().unwrap());
        let Term::Scope(sb, devices) = &terms[1] else { panic!("no \\_SB scope: {terms:?}") };
        assert_eq!(sb.to_string(), "\\_SB_");
        let Term::Device(pci0, names) = &devices[0] else { panic!("no device") };
        assert_eq!(pci0.to_string(), "PCI0");
        assert_eq!(names[0], Term::Name(NameString::parse("_HID").unwrap(), DataObject::Integer(0x030A_D041)));
    }
}
