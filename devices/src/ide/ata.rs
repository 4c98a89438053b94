//! An ATA hard disk: identity, geometry and address translation (ATA/ATAPI-6,
//! T13/1410D: section 8.15 IDENTIFY DEVICE, 6.2 CHS and LBA addressing, 8.39 SET
//! MULTIPLE MODE, 8.16 INITIALIZE DEVICE PARAMETERS). The channel
//! ([`super::IdeChannel`]) runs the protocols; this file knows the disk.

use super::identify::{IdentifyData, SERIAL_WORDS};
use crate::block::{BlockBackend, SECTOR_SIZE};

/// Largest READ/WRITE MULTIPLE block this disk accepts (IDENTIFY word 47).
pub const MAX_MULTIPLE_SECTORS: u16 = 16;
/// Largest LBA28 sector count addressable (IDENTIFY words 60-61 cap).
const LBA28_LIMIT: u64 = 0x0fff_ffff;
/// Default translation: heads.
const DEFAULT_HEADS: u64 = 16;
/// Default translation: sectors per track.
const DEFAULT_SECTORS_PER_TRACK: u64 = 63;
/// Most cylinders IDENTIFY word 1 reports (ATA-6 section 6.2.1).
const MAX_CYLINDERS: u64 = 16383;

/// A CHS translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Cylinders.
    pub cylinders: u16,
    /// Heads (1-16).
    pub heads: u8,
    /// Sectors per track (1-255).
    pub sectors_per_track: u8,
}

impl Geometry {
    /// The LBA of cylinder/head/sector `sector` (1-based), or `None` when outside the
    /// translation.
    pub fn to_lba(&self, cylinder: u16, head: u8, sector: u8) -> Option<u64> {
        if sector == 0 || sector > self.sectors_per_track || head >= self.heads || cylinder >= self.cylinders {
            return None;
        }
        Some(
            (u64::from(cylinder) * u64::from(self.heads) + u64::from(head)) * u64::from(self.sectors_per_track)
                + u64::from(sector)
                - 1,
        )
    }

    /// Cylinder, head and sector of `lba` under this translation.
    pub fn from_lba(&self, lba: u64) -> (u16, u8, u8) {
        let spt = u64::from(self.sectors_per_track);
        let heads = u64::from(self.heads);
        let cylinder = lba / (spt * heads);
        let head = (lba / spt) % heads;
        let sector = lba % spt + 1;
        (cylinder.min(u64::from(u16::MAX)) as u16, head as u8, sector as u8)
    }

    /// The translation with `heads` and `sectors_per_track` for a disk of `sectors`.
    fn for_capacity(sectors: u64, heads: u64, sectors_per_track: u64, max_cylinders: u64) -> Self {
        let cylinders = (sectors / (heads * sectors_per_track)).clamp(1, max_cylinders);
        Geometry { cylinders: cylinders as u16, heads: heads as u8, sectors_per_track: sectors_per_track as u8 }
    }
}

/// An ATA disk on an IDE channel.
pub struct AtaDisk {
    backend: Box<dyn BlockBackend>,
    sectors: u64,
    /// The translation reported in IDENTIFY words 1, 3 and 6.
    default_geometry: Geometry,
    /// The translation in use (changed by INITIALIZE DEVICE PARAMETERS).
    pub(super) geometry: Geometry,
    /// Sectors per block of READ/WRITE MULTIPLE; 0 = multiple mode disabled.
    pub(super) multiple: u16,
    /// Transfer mode chosen by SET FEATURES 03h (IDENTIFY words 63 and 88).
    pub(super) transfer_mode: u8,
    serial: String,
}

impl AtaDisk {
    /// A disk over `backend` (its length is rounded down to whole sectors).
    pub fn new(backend: Box<dyn BlockBackend>, serial: &str) -> Self {
        let sectors = backend.len() / SECTOR_SIZE;
        let default_geometry = Geometry::for_capacity(sectors, DEFAULT_HEADS, DEFAULT_SECTORS_PER_TRACK, MAX_CYLINDERS);
        AtaDisk {
            backend,
            sectors,
            default_geometry,
            geometry: default_geometry,
            multiple: 0,
            transfer_mode: 0,
            serial: serial.to_string(),
        }
    }

    /// The CHS translation IDENTIFY reports (for firmware disk services).
    pub fn default_geometry(&self) -> Geometry {
        self.default_geometry
    }

    /// Capacity in sectors.
    pub fn sectors(&self) -> u64 {
        self.sectors
    }

    /// The image below.
    pub fn backend(&mut self) -> &mut dyn BlockBackend {
        self.backend.as_mut()
    }

    /// Returns to the power-on settings (hardware reset; SRST keeps them, ATA-6 9.2).
    pub(super) fn reset_settings(&mut self) {
        self.geometry = self.default_geometry;
        self.multiple = 0;
    }

    /// INITIALIZE DEVICE PARAMETERS: `heads` (1-16) and `sectors_per_track`; false when
    /// the values are unusable.
    pub(super) fn set_translation(&mut self, heads: u8, sectors_per_track: u8) -> bool {
        if sectors_per_track == 0 || heads == 0 || heads > 16 {
            return false;
        }
        self.geometry = Geometry::for_capacity(
            self.sectors.min(LBA28_LIMIT),
            u64::from(heads),
            u64::from(sectors_per_track),
            u64::from(u16::MAX),
        );
        true
    }

    /// IDENTIFY DEVICE data (ATA-6 table 27).
    pub fn identify(&self) -> [u16; 256] {
        let mut id = IdentifyData::new();
        let lba28 = self.sectors.min(LBA28_LIMIT);
        let g = self.default_geometry;
        let cur = self.geometry;
        id.set(0, 0x0040); // fixed device
        id.set(1, g.cylinders);
        id.set(3, u16::from(g.heads));
        id.set(6, u16::from(g.sectors_per_track));
        id.string(10, SERIAL_WORDS, &self.serial);
        id.string(23, 4, "1.0");
        id.string(27, 20, "RX86 HARDDISK");
        id.set(47, 0x8000 | MAX_MULTIPLE_SECTORS);
        id.set(49, 0x0300); // LBA and DMA supported
        id.set(51, 0x0200); // PIO timing mode 2
        id.set(53, 0x0007); // words 54-58, 64-70 and 88 valid
        id.set(54, cur.cylinders);
        id.set(55, u16::from(cur.heads));
        id.set(56, u16::from(cur.sectors_per_track));
        let cur_capacity = u32::from(cur.cylinders) * u32::from(cur.heads) * u32::from(cur.sectors_per_track);
        id.set32(57, cur_capacity);
        id.set(59, if self.multiple > 0 { 0x0100 | self.multiple } else { 0 });
        id.set32(60, lba28 as u32);
        id.set(63, 0x0007 | mode_selected(self.transfer_mode, 0x20));
        id.set(64, 0x0003); // PIO modes 3 and 4
        for w in 65..=68 {
            id.set(w, 120);
        }
        id.set(80, 0x007e); // ATA-1 to ATA-6
        id.set(82, 0x4000); // NOP supported
        id.set(83, 0x4000 | 1 << 13 | 1 << 12 | 1 << 10); // FLUSH CACHE (EXT), 48-bit addressing
        id.set(84, 0x4000);
        id.set(85, 0x4000);
        id.set(86, 1 << 13 | 1 << 12 | 1 << 10);
        id.set(87, 0x4000);
        id.set(88, 0x003f | mode_selected(self.transfer_mode, 0x40));
        id.set64(100, self.sectors);
        id.finish()
    }
}

/// The "mode selected" bits (8 + mode) of IDENTIFY words 63/88 when SET FEATURES chose
/// transfer mode `mode` of class `class` (0x20 multiword DMA, 0x40 Ultra DMA).
fn mode_selected(mode: u8, class: u8) -> u16 {
    if mode & 0xf8 == class {
        1 << (8 + u16::from(mode & 7))
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::MemDisk;

    #[test]
    fn chs_round_trips_and_bounds() {
        let g = Geometry { cylinders: 100, heads: 16, sectors_per_track: 63 };
        assert_eq!(g.to_lba(0, 0, 1), Some(0));
        assert_eq!(g.to_lba(0, 1, 1), Some(63));
        assert_eq!(g.to_lba(2, 3, 4), Some((2 * 16 + 3) * 63 + 3));
        assert_eq!(g.from_lba((2 * 16 + 3) * 63 + 3), (2, 3, 4));
        assert_eq!(g.to_lba(0, 0, 0), None, "sector numbers start at 1");
        assert_eq!(g.to_lba(0, 16, 1), None);
        assert_eq!(g.to_lba(100, 0, 1), None);
        assert_eq!(g.to_lba(0, 0, 64), None);
    }

    #[test]
    fn identify_reports_capacity_and_geometry() {
        let disk = AtaDisk::new(Box::new(MemDisk::patterned(20160, 512)), "SN1");
        let id = disk.identify();
        assert_eq!((id[1], id[3], id[6]), (20, 16, 63), "20160 = 20 * 16 * 63");
        assert_eq!(disk.default_geometry(), Geometry { cylinders: 20, heads: 16, sectors_per_track: 63 });
        assert_eq!(u32::from(id[60]) | u32::from(id[61]) << 16, 20160);
        assert_eq!(u64::from(id[100]) | u64::from(id[101]) << 16, 20160);
        assert_ne!(id[83] & 1 << 10, 0, "48-bit feature set");
        assert_eq!(id[47] & 0xff, MAX_MULTIPLE_SECTORS);
        let model: Vec<u8> = id[27..47].iter().flat_map(|w| w.to_be_bytes()).collect();
        assert!(model.starts_with(b"RX86 HARDDISK "), "words hold byte-swapped ASCII");
        assert_eq!(id[255] & 0xff, 0xa5);
        let sum = id.iter().fold(0u8, |s, w| s.wrapping_add(*w as u8).wrapping_add((*w >> 8) as u8));
        assert_eq!(sum, 0, "checksum word makes the bytes sum to zero");
    }

    #[test]
    fn translation_changes() {
        let mut disk = AtaDisk::new(Box::new(MemDisk::patterned(20160, 512)), "SN1");
        assert!(!disk.set_translation(4, 0));
        assert!(!disk.set_translation(17, 1));
        assert!(disk.set_translation(4, 32));
        assert_eq!(disk.geometry, Geometry { cylinders: 157, heads: 4, sectors_per_track: 32 });
        let id = disk.identify();
        assert_eq!((id[54], id[55], id[56]), (157, 4, 32));
        assert_eq!((id[1], id[3], id[6]), (20, 16, 63), "default translation unchanged");
        disk.reset_settings();
        assert_eq!(disk.geometry.heads, 16);
    }
}
