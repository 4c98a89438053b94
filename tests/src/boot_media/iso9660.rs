//! A minimal bootable CD image: ISO 9660 (ECMA-119, 2nd edition: 8.4 primary volume descriptor,
//! 9.1 directory record, 9.4 path table) with an El Torito boot record and boot catalog ("El
//! Torito" Bootable CD-ROM Format Specification 1.0: 2.0 boot record volume descriptor, 2.1
//! validation entry, 2.2 initial/default entry) whose default entry emulates a 1.44 MB floppy.
//!
//! Layout, in 2048-byte logical blocks: 0-15 system area (zeros), 16 primary volume descriptor,
//! 17 boot record, 18 volume descriptor set terminator, 19 L path table, 20 M path table, 21 root
//! directory (only "." and ".."), 22 boot catalog, 23- the floppy image.

/// Bytes per logical block.
pub const BLOCK_SIZE: usize = 2048;
/// Block of the primary volume descriptor (after the 16-block system area).
pub const PRIMARY_VOLUME_DESCRIPTOR_BLOCK: usize = 16;
/// Block of the El Torito boot record volume descriptor.
pub const BOOT_RECORD_BLOCK: usize = 17;
const TERMINATOR_BLOCK: usize = 18;
const L_PATH_TABLE_BLOCK: usize = 19;
const M_PATH_TABLE_BLOCK: usize = 20;
const ROOT_DIRECTORY_BLOCK: usize = 21;
/// Block of the boot catalog.
pub const BOOT_CATALOG_BLOCK: usize = 22;
/// First block of the emulated floppy image.
pub const FLOPPY_IMAGE_BLOCK: usize = 23;
/// Size of a 1.44 MB floppy image, the only emulation this writer produces.
pub const FLOPPY_1440K_BYTES: usize = 1_474_560;

/// Standard identifier of every volume descriptor.
const STANDARD_ID: &[u8; 5] = b"CD001";
/// Volume descriptor types (ECMA-119 8.1.1).
const VD_BOOT_RECORD: u8 = 0;
const VD_PRIMARY: u8 = 1;
const VD_SET_TERMINATOR: u8 = 255;
/// Boot system identifier of an El Torito boot record (2.0), zero-padded to 32 bytes.
pub const EL_TORITO_ID: &[u8] = b"EL TORITO SPECIFICATION";
/// Offset of the boot catalog's block number (LE u32) in the boot record.
const BOOT_CATALOG_POINTER: usize = 0x47;
/// Validation entry: header ID 1, platform 0 (80x86), key bytes 55 AA at offsets 30-31.
const VALIDATION_HEADER_ID: u8 = 0x01;
const PLATFORM_X86: u8 = 0x00;
/// Initial/default entry: bootable, 1.44 MB diskette emulation.
pub const BOOT_INDICATOR_BOOTABLE: u8 = 0x88;
/// Boot media type of a 1.44 MB diskette (El Torito 2.2, offset 1).
pub const MEDIA_FLOPPY_1440K: u8 = 0x02;
/// Directory record flag: a directory (ECMA-119 9.1.6).
const FILE_FLAG_DIRECTORY: u8 = 0x02;
/// Size of the root directory's "." and ".." records (33 + a one-byte identifier).
const DOT_RECORD_LEN: u8 = 34;
/// Recording date of every directory record: 2026-01-01 00:00:00 UTC (years since 1900, ...).
const RECORDING_DATE: [u8; 7] = [126, 1, 1, 0, 0, 0, 0];

/// A CD image that boots `floppy` (a 1.44 MB image) through El Torito floppy emulation;
/// `volume_id` (up to 32 of A-Z, 0-9, _) names the volume.
pub fn el_torito_floppy_iso(floppy: &[u8], volume_id: &str) -> Result<Vec<u8>, String> {
    if floppy.len() != FLOPPY_1440K_BYTES {
        return Err(format!("a floppy-emulation image must be {FLOPPY_1440K_BYTES} bytes, not {}", floppy.len()));
    }
    if volume_id.len() > 32 || !volume_id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') {
        return Err(format!("volume id {volume_id:?} must be up to 32 of A-Z, 0-9 and _"));
    }
    let blocks = FLOPPY_IMAGE_BLOCK + FLOPPY_1440K_BYTES / BLOCK_SIZE;
    let mut iso = vec![0u8; blocks * BLOCK_SIZE];
    let block = |n: usize| n * BLOCK_SIZE..(n + 1) * BLOCK_SIZE;
    primary_volume_descriptor(&mut iso[block(PRIMARY_VOLUME_DESCRIPTOR_BLOCK)], volume_id, blocks as u32);
    boot_record(&mut iso[block(BOOT_RECORD_BLOCK)]);
    volume_descriptor_header(&mut iso[block(TERMINATOR_BLOCK)], VD_SET_TERMINATOR);
    path_table(&mut iso[block(L_PATH_TABLE_BLOCK)], false);
    path_table(&mut iso[block(M_PATH_TABLE_BLOCK)], true);
    root_directory(&mut iso[block(ROOT_DIRECTORY_BLOCK)]);
    boot_catalog(&mut iso[block(BOOT_CATALOG_BLOCK)]);
    iso[FLOPPY_IMAGE_BLOCK * BLOCK_SIZE..].copy_from_slice(floppy);
    Ok(iso)
}

/// Writes a 16-bit value as both-byte orders (LE then BE, ECMA-119 7.2.3).
fn both_u16(out: &mut [u8], value: u16) {
    out[..2].copy_from_slice(&value.to_le_bytes());
    out[2..4].copy_from_slice(&value.to_be_bytes());
}

/// Writes a 32-bit value as both-byte orders (LE then BE, ECMA-119 7.3.3).
fn both_u32(out: &mut [u8], value: u32) {
    out[..4].copy_from_slice(&value.to_le_bytes());
    out[4..8].copy_from_slice(&value.to_be_bytes());
}

/// Type, "CD001" and version 1 (ECMA-119 8.1).
fn volume_descriptor_header(out: &mut [u8], kind: u8) {
    out[0] = kind;
    out[1..6].copy_from_slice(STANDARD_ID);
    out[6] = 1;
}

/// A directory record of the root directory's "." (`identifier` 0) or ".." (1) (ECMA-119 9.1).
fn root_dot_record(out: &mut [u8], identifier: u8) {
    out[0] = DOT_RECORD_LEN;
    both_u32(&mut out[2..10], ROOT_DIRECTORY_BLOCK as u32);
    both_u32(&mut out[10..18], BLOCK_SIZE as u32);
    out[18..25].copy_from_slice(&RECORDING_DATE);
    out[25] = FILE_FLAG_DIRECTORY;
    both_u16(&mut out[28..32], 1);
    out[32] = 1;
    out[33] = identifier;
}

/// ECMA-119 8.4: identifiers space-padded, dates "not specified" (sixteen '0' and a zero offset).
fn primary_volume_descriptor(out: &mut [u8], volume_id: &str, blocks: u32) {
    volume_descriptor_header(out, VD_PRIMARY);
    out[8..40].fill(b' ');
    out[40..72].fill(b' ');
    out[40..40 + volume_id.len()].copy_from_slice(volume_id.as_bytes());
    both_u32(&mut out[80..88], blocks);
    both_u16(&mut out[120..124], 1);
    both_u16(&mut out[124..128], 1);
    both_u16(&mut out[128..132], BLOCK_SIZE as u16);
    both_u32(&mut out[132..140], PATH_TABLE_SIZE as u32);
    out[140..144].copy_from_slice(&(L_PATH_TABLE_BLOCK as u32).to_le_bytes());
    out[148..152].copy_from_slice(&(M_PATH_TABLE_BLOCK as u32).to_be_bytes());
    root_dot_record(&mut out[156..190], 0);
    out[190..813].fill(b' ');
    for date in [813, 830, 847, 864] {
        out[date..date + 16].fill(b'0');
    }
    out[881] = 1;
}

/// Size of a path table holding only the root: 8 bytes plus a one-byte identifier and a pad.
const PATH_TABLE_SIZE: usize = 10;

/// ECMA-119 9.4: the root's entry (identifier 0, parent 1), little or big endian.
fn path_table(out: &mut [u8], big_endian: bool) {
    out[0] = 1;
    let (extent, parent) = if big_endian {
        ((ROOT_DIRECTORY_BLOCK as u32).to_be_bytes(), 1u16.to_be_bytes())
    } else {
        ((ROOT_DIRECTORY_BLOCK as u32).to_le_bytes(), 1u16.to_le_bytes())
    };
    out[2..6].copy_from_slice(&extent);
    out[6..8].copy_from_slice(&parent);
}

fn root_directory(out: &mut [u8]) {
    root_dot_record(&mut out[..34], 0);
    root_dot_record(&mut out[34..68], 1);
}

/// El Torito 2.0: boot system id and the boot catalog's block.
fn boot_record(out: &mut [u8]) {
    volume_descriptor_header(out, VD_BOOT_RECORD);
    out[7..7 + EL_TORITO_ID.len()].copy_from_slice(EL_TORITO_ID);
    out[BOOT_CATALOG_POINTER..BOOT_CATALOG_POINTER + 4].copy_from_slice(&(BOOT_CATALOG_BLOCK as u32).to_le_bytes());
}

/// El Torito 2.1 and 2.2: a validation entry (its 16 words sum to zero) and a default entry that
/// loads one virtual sector of the emulated floppy at the default segment (07C0).
fn boot_catalog(out: &mut [u8]) {
    out[0] = VALIDATION_HEADER_ID;
    out[1] = PLATFORM_X86;
    out[4..8].copy_from_slice(b"RX86");
    out[30] = 0x55;
    out[31] = 0xAA;
    let sum = out[..32].chunks_exact(2).fold(0u16, |s, w| s.wrapping_add(u16::from_le_bytes([w[0], w[1]])));
    out[28..30].copy_from_slice(&sum.wrapping_neg().to_le_bytes());
    let entry = &mut out[32..64];
    entry[0] = BOOT_INDICATOR_BOOTABLE;
    entry[1] = MEDIA_FLOPPY_1440K;
    entry[6..8].copy_from_slice(&1u16.to_le_bytes());
    entry[8..12].copy_from_slice(&(FLOPPY_IMAGE_BLOCK as u32).to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floppy() -> Vec<u8> {
        (0..FLOPPY_1440K_BYTES).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn descriptors_sit_at_blocks_16_to_18() {
        let iso = el_torito_floppy_iso(&floppy(), "RX86_TEST").unwrap();
        let at = |block: usize| &iso[block * BLOCK_SIZE..(block + 1) * BLOCK_SIZE];
        let pvd = at(PRIMARY_VOLUME_DESCRIPTOR_BLOCK);
        assert_eq!(&pvd[..7], b"\x01CD001\x01");
        assert_eq!(&pvd[40..49], b"RX86_TEST");
        assert_eq!(pvd[49], b' ');
        let blocks = (iso.len() / BLOCK_SIZE) as u32;
        assert_eq!(pvd[80..84], blocks.to_le_bytes());
        assert_eq!(pvd[84..88], blocks.to_be_bytes());
        assert_eq!(pvd[128..132], [0x00, 0x08, 0x08, 0x00], "block size 2048, both byte orders");
        assert_eq!(pvd[156], 34, "root directory record");
        assert_eq!(pvd[156 + 2..156 + 6], (ROOT_DIRECTORY_BLOCK as u32).to_le_bytes());
        let boot = at(BOOT_RECORD_BLOCK);
        assert_eq!(&boot[..7], b"\x00CD001\x01");
        assert_eq!(&boot[7..30], EL_TORITO_ID);
        assert_eq!(boot[30..39], [0u8; 9], "zero-padded to 32 bytes");
        assert_eq!(boot[0x47..0x4B], (BOOT_CATALOG_BLOCK as u32).to_le_bytes());
        assert_eq!(&at(18)[..7], b"\xffCD001\x01");
    }

    #[test]
    fn boot_catalog_validates_and_points_at_the_floppy() {
        let image = floppy();
        let iso = el_torito_floppy_iso(&image, "RX86").unwrap();
        let catalog = &iso[BOOT_CATALOG_BLOCK * BLOCK_SIZE..][..64];
        let sum = catalog[..32].chunks_exact(2).fold(0u16, |s, w| s.wrapping_add(u16::from_le_bytes([w[0], w[1]])));
        assert_eq!(sum, 0, "validation entry checksum");
        assert_eq!(catalog[..2], [1, 0], "header id, 80x86");
        assert_eq!(catalog[30..32], [0x55, 0xAA]);
        assert_eq!(catalog[32..34], [0x88, 0x02], "bootable, 1.44 MB emulation");
        assert_eq!(catalog[34..36], [0, 0], "default load segment");
        assert_eq!(catalog[38..40], [1, 0], "one virtual sector");
        let rba = u32::from_le_bytes(catalog[40..44].try_into().unwrap()) as usize;
        assert_eq!(iso[rba * BLOCK_SIZE..], image[..]);
    }

    #[test]
    fn bad_inputs_are_refused() {
        assert!(el_torito_floppy_iso(&[0; 512], "RX86").unwrap_err().contains("1474560"));
        assert!(el_torito_floppy_iso(&floppy(), "lower").unwrap_err().contains("volume id"));
        assert!(el_torito_floppy_iso(&floppy(), &"A".repeat(33)).is_err());
    }
}
