//! El Torito ("Bootable CD-ROM Format Specification" 1.0, Phoenix/IBM 1995): finding
//! the boot image of an ISO 9660 CD.
//!
//! Sector 17 is the Boot Record Volume Descriptor naming the boot catalog; the catalog
//! starts with a validation entry (header ID 1, checksum, key 55h AAh) followed by the
//! initial/default entry (boot indicator 88h, media type, load segment, sector count,
//! load RBA).

use rx86_devices::block::BlockBackend;

/// CD-ROM logical block size.
pub const CD_SECTOR: u64 = 2048;
/// The Boot Record Volume Descriptor's sector.
const BOOT_RECORD_SECTOR: u64 = 17;
/// Default load segment when the entry says 0.
pub const DEFAULT_LOAD_SEGMENT: u16 = 0x07c0;

/// How the boot image is presented to the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// No emulation: `sector_count` 512-byte sectors are loaded and run; the CD is
    /// drive E0h with 2048-byte sectors.
    NoEmulation,
    /// The image is a floppy of this many bytes (1.2, 1.44 or 2.88 MB), drive 00h.
    Floppy(u64),
    /// The image is a hard disk (with an MBR), drive 80h.
    HardDisk,
}

impl Media {
    /// The catalog's media type code.
    pub fn code(self) -> u8 {
        match self {
            Media::NoEmulation => 0,
            Media::Floppy(1_228_800) => 1,
            Media::Floppy(2_949_120) => 3,
            Media::Floppy(_) => 2,
            Media::HardDisk => 4,
        }
    }
}

/// The initial/default entry of a boot catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootImage {
    /// Emulation type.
    pub media: Media,
    /// Real-mode segment to load at.
    pub load_segment: u16,
    /// Number of 512-byte virtual sectors to load (no emulation).
    pub sector_count: u16,
    /// First CD sector of the image.
    pub lba: u32,
}

/// Reads the boot catalog of the CD in `cd` and returns its default entry.
pub fn find_boot_image(cd: &mut dyn BlockBackend) -> Result<BootImage, String> {
    let mut brvd = [0u8; CD_SECTOR as usize];
    cd.read_at(BOOT_RECORD_SECTOR * CD_SECTOR, &mut brvd).map_err(|e| format!("reading sector 17: {e}"))?;
    if brvd[0] != 0 || &brvd[1..6] != b"CD001" || &brvd[7..30] != b"EL TORITO SPECIFICATION" {
        return Err("no El Torito boot record (not a bootable CD)".into());
    }
    let catalog_lba = u32::from_le_bytes([brvd[0x47], brvd[0x48], brvd[0x49], brvd[0x4a]]);
    let mut catalog = [0u8; CD_SECTOR as usize];
    cd.read_at(u64::from(catalog_lba) * CD_SECTOR, &mut catalog)
        .map_err(|e| format!("reading the boot catalog at sector {catalog_lba}: {e}"))?;
    parse_catalog(&catalog)
}

/// Parses the validation and default entries of a boot catalog sector.
pub fn parse_catalog(catalog: &[u8]) -> Result<BootImage, String> {
    let validation = &catalog[..32];
    let sum = validation.chunks(2).fold(0u16, |s, w| s.wrapping_add(u16::from_le_bytes([w[0], w[1]])));
    if validation[0] != 1 || validation[0x1e] != 0x55 || validation[0x1f] != 0xaa || sum != 0 {
        return Err("the boot catalog's validation entry is invalid".into());
    }
    let entry = &catalog[32..64];
    if entry[0] != 0x88 {
        return Err("the boot catalog's default entry is not bootable".into());
    }
    let media = match entry[1] & 0x0f {
        0 => Media::NoEmulation,
        1 => Media::Floppy(1_228_800),
        2 => Media::Floppy(1_474_560),
        3 => Media::Floppy(2_949_120),
        4 => Media::HardDisk,
        t => return Err(format!("unknown El Torito media type {t}")),
    };
    let load_segment = match u16::from_le_bytes([entry[2], entry[3]]) {
        0 => DEFAULT_LOAD_SEGMENT,
        s => s,
    };
    Ok(BootImage {
        media,
        load_segment,
        sector_count: u16::from_le_bytes([entry[6], entry[7]]),
        lba: u32::from_le_bytes([entry[8], entry[9], entry[10], entry[11]]),
    })
}

/// The 13h-byte specification packet INT 13h AX=4B01h returns.
pub fn specification_packet(image: &BootImage, drive: u8) -> [u8; 0x13] {
    let mut p = [0u8; 0x13];
    p[0] = 0x13;
    p[1] = image.media.code();
    p[2] = drive;
    p[4..8].copy_from_slice(&image.lba.to_le_bytes());
    p[0x0c..0x0e].copy_from_slice(&image.load_segment.to_le_bytes());
    p[0x0e..0x10].copy_from_slice(&image.sector_count.to_le_bytes());
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(media: u8, segment: u16, count: u16, lba: u32) -> Vec<u8> {
        let mut c = vec![0u8; 2048];
        c[0] = 1;
        c[0x1e] = 0x55;
        c[0x1f] = 0xaa;
        let sum = c[..32].chunks(2).fold(0u16, |s, w| s.wrapping_add(u16::from_le_bytes([w[0], w[1]])));
        c[0x1c..0x1e].copy_from_slice(&0u16.wrapping_sub(sum).to_le_bytes());
        c[32] = 0x88;
        c[33] = media;
        c[34..36].copy_from_slice(&segment.to_le_bytes());
        c[38..40].copy_from_slice(&count.to_le_bytes());
        c[40..44].copy_from_slice(&lba.to_le_bytes());
        c
    }

    #[test]
    fn no_emulation_entry() {
        let img = parse_catalog(&catalog(0, 0, 4, 35)).unwrap();
        assert_eq!(img, BootImage { media: Media::NoEmulation, load_segment: 0x7c0, sector_count: 4, lba: 35 });
        let p = specification_packet(&img, 0xe0);
        assert_eq!((p[0], p[1], p[2]), (0x13, 0, 0xe0));
        assert_eq!(u32::from_le_bytes([p[4], p[5], p[6], p[7]]), 35);
    }

    #[test]
    fn floppy_emulation_and_bad_catalogs() {
        assert_eq!(parse_catalog(&catalog(2, 0x1000, 1, 20)).unwrap().media, Media::Floppy(1_474_560));
        let mut bad = catalog(0, 0, 4, 35);
        bad[2] ^= 1;
        assert!(parse_catalog(&bad).unwrap_err().contains("validation"));
        let mut not_boot = catalog(0, 0, 4, 35);
        not_boot[32] = 0;
        assert!(parse_catalog(&not_boot).is_err());
        assert!(parse_catalog(&catalog(7, 0, 4, 35)).is_err());
    }
}
