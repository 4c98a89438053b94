//! The System Description Table header shared by every ACPI table except the RSDP and
//! FACS (ACPI 6.5 section 5.2.6), and the byte checksum ACPI uses everywhere.

/// Length of the common header.
pub(super) const HEADER_LENGTH: usize = 36;
/// OEMID in every rx86 table.
pub const OEM_ID: &[u8; 6] = b"RX86  ";
/// OEM Table ID in every rx86 table.
pub const OEM_TABLE_ID: &[u8; 8] = b"RX86PC  ";
/// OEM Revision.
const OEM_REVISION: u32 = 1;
/// Creator ID (the tool that built the table).
const CREATOR_ID: &[u8; 4] = b"RX86";
/// Creator Revision.
const CREATOR_REVISION: u32 = 1;
/// Offset of the checksum byte in the header.
pub(super) const CHECKSUM_OFFSET: usize = 9;

/// The byte that makes `bytes` sum to zero (mod 256) when added.
pub(super) fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |acc, &b| acc.wrapping_sub(b))
}

/// A complete table: header (signature, length, revision, checksum, OEM fields) + `body`.
pub(super) fn table(signature: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let len = HEADER_LENGTH + body.len();
    let mut t = Vec::with_capacity(len);
    t.extend_from_slice(signature);
    t.extend_from_slice(&(len as u32).to_le_bytes());
    t.push(revision);
    t.push(0);
    t.extend_from_slice(OEM_ID);
    t.extend_from_slice(OEM_TABLE_ID);
    t.extend_from_slice(&OEM_REVISION.to_le_bytes());
    t.extend_from_slice(CREATOR_ID);
    t.extend_from_slice(&CREATOR_REVISION.to_le_bytes());
    t.extend_from_slice(body);
    t[CHECKSUM_OFFSET] = checksum(&t);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_and_checksum() {
        let t = table(b"TEST", 2, &[1, 2, 3]);
        assert_eq!(t.len(), 39);
        assert_eq!(&t[0..4], b"TEST");
        assert_eq!(u32::from_le_bytes(t[4..8].try_into().unwrap()), 39);
        assert_eq!(t[8], 2);
        assert_eq!(&t[10..16], OEM_ID);
        assert_eq!(&t[16..24], OEM_TABLE_ID);
        assert_eq!(&t[28..32], b"RX86");
        assert_eq!(t.iter().fold(0u8, |a, &b| a.wrapping_add(b)), 0);
    }

    #[test]
    fn checksum_complements_the_sum() {
        assert_eq!(checksum(&[]), 0);
        assert_eq!(checksum(&[1]), 0xFF);
        assert_eq!(checksum(&[0x80, 0x7F]), 1);
    }
}
