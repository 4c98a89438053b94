//! An ATAPI CD-ROM drive: the SCSI/MMC command set behind the PACKET command
//! (SFF-8020i; MMC-3 T10/1363-D for GET CONFIGURATION, GET EVENT STATUS NOTIFICATION,
//! READ TOC and the capabilities mode page; SPC-2 for INQUIRY, REQUEST SENSE and
//! sense codes). The channel ([`super::IdeChannel`]) runs the packet protocol and
//! moves the data; this file turns a 12-byte command packet into data or sense.

use super::identify::{IdentifyData, SERIAL_WORDS};
use crate::block::BlockBackend;

/// CD-ROM logical block size.
pub const CD_BLOCK_SIZE: u64 = 2048;
/// Blocks above which the disc is reported as a DVD-ROM (GET CONFIGURATION profile).
const CD_MAX_BLOCKS: u64 = 400_000;

// Operation codes (MMC-3 table 4; SPC-2 for INQUIRY and REQUEST SENSE).
/// TEST UNIT READY.
const TEST_UNIT_READY: u8 = 0x00;
/// REQUEST SENSE.
const REQUEST_SENSE: u8 = 0x03;
/// INQUIRY.
const INQUIRY: u8 = 0x12;
/// START STOP UNIT (load/eject).
const START_STOP_UNIT: u8 = 0x1b;
/// PREVENT ALLOW MEDIUM REMOVAL.
const PREVENT_ALLOW_MEDIUM_REMOVAL: u8 = 0x1e;
/// READ CAPACITY.
const READ_CAPACITY: u8 = 0x25;
/// READ(10).
const READ_10: u8 = 0x28;
/// SEEK(10).
const SEEK_10: u8 = 0x2b;
/// READ TOC/PMA/ATIP.
const READ_TOC: u8 = 0x43;
/// GET CONFIGURATION.
const GET_CONFIGURATION: u8 = 0x46;
/// GET EVENT STATUS NOTIFICATION.
const GET_EVENT_STATUS_NOTIFICATION: u8 = 0x4a;
/// MODE SENSE(10).
const MODE_SENSE_10: u8 = 0x5a;
/// READ(12).
const READ_12: u8 = 0xa8;
/// SET CD SPEED.
const SET_CD_SPEED: u8 = 0xbb;
/// MECHANISM STATUS.
const MECHANISM_STATUS: u8 = 0xbd;
/// READ CD.
const READ_CD: u8 = 0xbe;
/// READ CD byte 9: user data only (no sync, header, EDC/ECC or subchannel).
const READ_CD_USER_DATA: u8 = 0x10;

/// Sense data: key, additional sense code and qualifier (SPC-2 section 4.5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sense {
    /// Sense key.
    pub key: u8,
    /// Additional sense code.
    pub asc: u8,
    /// Additional sense code qualifier.
    pub ascq: u8,
}

impl Sense {
    /// NO SENSE.
    pub const NONE: Sense = Sense { key: 0x00, asc: 0x00, ascq: 0x00 };
    /// NOT READY, MEDIUM NOT PRESENT.
    pub const NO_MEDIUM: Sense = Sense { key: 0x02, asc: 0x3a, ascq: 0x00 };
    /// MEDIUM ERROR, UNRECOVERED READ ERROR.
    pub const READ_ERROR: Sense = Sense { key: 0x03, asc: 0x11, ascq: 0x00 };
    /// ILLEGAL REQUEST, INVALID COMMAND OPERATION CODE.
    pub const INVALID_OPCODE: Sense = Sense { key: 0x05, asc: 0x20, ascq: 0x00 };
    /// ILLEGAL REQUEST, LOGICAL BLOCK ADDRESS OUT OF RANGE.
    pub const LBA_OUT_OF_RANGE: Sense = Sense { key: 0x05, asc: 0x21, ascq: 0x00 };
    /// ILLEGAL REQUEST, INVALID FIELD IN CDB.
    pub const INVALID_FIELD: Sense = Sense { key: 0x05, asc: 0x24, ascq: 0x00 };
    /// ILLEGAL REQUEST, SAVING PARAMETERS NOT SUPPORTED.
    pub const SAVING_NOT_SUPPORTED: Sense = Sense { key: 0x05, asc: 0x39, ascq: 0x00 };
    /// ILLEGAL REQUEST, MEDIUM REMOVAL PREVENTED.
    pub const REMOVAL_PREVENTED: Sense = Sense { key: 0x05, asc: 0x53, ascq: 0x02 };
    /// UNIT ATTENTION, NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED.
    pub const MEDIUM_CHANGED: Sense = Sense { key: 0x06, asc: 0x28, ascq: 0x00 };
}

/// What a packet asks the channel to do.
#[derive(Debug, PartialEq, Eq)]
pub enum PacketOutcome {
    /// Complete with no data.
    NoData,
    /// Send these bytes to the host.
    DataIn(Vec<u8>),
    /// Send `blocks` 2048-byte blocks from `lba` (fetched with [`AtapiCdrom::read_blocks`]).
    Read {
        /// First block.
        lba: u64,
        /// Number of blocks (at least 1).
        blocks: u64,
    },
    /// CHECK CONDITION with this sense.
    Error(Sense),
}

/// Media event codes of GET EVENT STATUS NOTIFICATION (MMC-3 table 106).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MediaEvent {
    None = 0,
    NewMedia = 2,
    MediaRemoval = 3,
}

/// A CD-ROM drive with an optional disc.
pub struct AtapiCdrom {
    media: Option<Box<dyn BlockBackend>>,
    sense: Sense,
    /// A medium change not yet reported with UNIT ATTENTION.
    unit_attention: bool,
    /// PREVENT ALLOW MEDIUM REMOVAL state.
    locked: bool,
    media_event: MediaEvent,
    serial: String,
}

impl AtapiCdrom {
    /// A drive holding `media` (or empty).
    pub fn new(media: Option<Box<dyn BlockBackend>>, serial: &str) -> Self {
        AtapiCdrom {
            media,
            sense: Sense::NONE,
            unit_attention: false,
            locked: false,
            media_event: MediaEvent::None,
            serial: serial.to_string(),
        }
    }

    /// Puts a disc in the drive (replacing any); the guest sees a medium change.
    pub fn insert(&mut self, media: Box<dyn BlockBackend>) {
        self.media = Some(media);
        self.unit_attention = true;
        self.media_event = MediaEvent::NewMedia;
    }

    /// Takes the disc out (host side, ignores the guest's lock); the guest sees a
    /// medium change.
    pub fn eject(&mut self) -> Option<Box<dyn BlockBackend>> {
        self.unit_attention = true;
        self.media_event = MediaEvent::MediaRemoval;
        self.media.take()
    }

    /// True when a disc is loaded.
    pub fn has_media(&self) -> bool {
        self.media.is_some()
    }

    /// The current sense data.
    pub fn sense(&self) -> Sense {
        self.sense
    }

    /// Capacity in 2048-byte blocks (0 without a disc).
    pub fn capacity(&self) -> u64 {
        self.media.as_ref().map_or(0, |m| m.len() / CD_BLOCK_SIZE)
    }

    /// Resets the sense data (device reset).
    pub(super) fn reset(&mut self) {
        self.sense = Sense::NONE;
    }

    /// Reads `blocks` blocks from `lba`; on failure sets MEDIUM ERROR sense.
    pub fn read_blocks(&mut self, lba: u64, blocks: u64) -> Result<Vec<u8>, Sense> {
        let mut buf = vec![0u8; (blocks * CD_BLOCK_SIZE) as usize];
        let result = match &mut self.media {
            None => Err(Sense::NO_MEDIUM),
            Some(m) => m.read_at(lba * CD_BLOCK_SIZE, &mut buf).map_err(|e| {
                log::error!("atapi: read of {blocks} blocks at {lba} failed: {e}");
                Sense::READ_ERROR
            }),
        };
        result.map(|()| buf).inspect_err(|s| self.sense = *s)
    }

    /// IDENTIFY PACKET DEVICE data (ATA-6 table 32).
    pub fn identify(&self) -> [u16; 256] {
        let mut id = IdentifyData::new();
        // ATAPI, CD-ROM device type, removable, DRQ within 50 us, 12-byte packets.
        id.set(0, 0b10 << 14 | 0x05 << 8 | 1 << 7 | 0b10 << 5);
        id.string(10, SERIAL_WORDS, &self.serial);
        id.string(23, 4, "1.0");
        id.string(27, 20, "RX86 CD-ROM");
        id.set(49, 0x0300); // LBA and DMA supported
        id.set(53, 0x0007);
        id.set(63, 0x0007);
        id.set(64, 0x0003);
        for w in 65..=68 {
            id.set(w, 120);
        }
        id.set(80, 0x007e);
        id.set(88, 0x003f);
        id.finish()
    }

    /// Runs the command packet `cdb`.
    pub fn execute(&mut self, cdb: &[u8; 12]) -> PacketOutcome {
        let op = cdb[0];
        let outcome = self.dispatch(cdb);
        match &outcome {
            PacketOutcome::Error(s) => {
                log::debug!("atapi: command {op:#04x} failed with sense {s:?}");
                self.sense = *s;
            }
            _ if op != REQUEST_SENSE => self.sense = Sense::NONE,
            _ => {}
        }
        outcome
    }

    fn dispatch(&mut self, cdb: &[u8; 12]) -> PacketOutcome {
        let op = cdb[0];
        // Every command but these reports a pending medium change once (MMC-3 4.1.6.1).
        if !matches!(op, INQUIRY | REQUEST_SENSE | GET_CONFIGURATION | GET_EVENT_STATUS_NOTIFICATION)
            && self.unit_attention
        {
            self.unit_attention = false;
            return PacketOutcome::Error(Sense::MEDIUM_CHANGED);
        }
        let needs_media =
            matches!(op, TEST_UNIT_READY | READ_CAPACITY | READ_10 | READ_12 | READ_CD | SEEK_10 | READ_TOC);
        if needs_media && self.media.is_none() {
            return PacketOutcome::Error(Sense::NO_MEDIUM);
        }
        let be16 = |at: usize| u16::from_be_bytes([cdb[at], cdb[at + 1]]);
        let be32 = |at: usize| u32::from_be_bytes([cdb[at], cdb[at + 1], cdb[at + 2], cdb[at + 3]]);
        match op {
            TEST_UNIT_READY => PacketOutcome::NoData,
            REQUEST_SENSE => data_in(self.request_sense(), cdb[4].into()),
            INQUIRY if cdb[1] & 1 != 0 => PacketOutcome::Error(Sense::INVALID_FIELD),
            INQUIRY => data_in(inquiry(), cdb[4].into()),
            START_STOP_UNIT => self.start_stop(cdb[4]),
            PREVENT_ALLOW_MEDIUM_REMOVAL => {
                self.locked = cdb[4] & 1 != 0;
                PacketOutcome::NoData
            }
            READ_CAPACITY => {
                let last = (self.capacity().saturating_sub(1)).min(u64::from(u32::MAX)) as u32;
                let mut d = last.to_be_bytes().to_vec();
                d.extend_from_slice(&(CD_BLOCK_SIZE as u32).to_be_bytes());
                PacketOutcome::DataIn(d)
            }
            READ_10 => self.read(u64::from(be32(2)), u64::from(be16(7))),
            READ_12 => self.read(u64::from(be32(2)), u64::from(be32(6))),
            // Data sectors of a data disc only: 2048 user bytes, or nothing.
            READ_CD => match cdb[9] & 0xf8 {
                READ_CD_USER_DATA => self.read(u64::from(be32(2)), u64::from(be32(5) & 0x00ff_ffff)),
                0 => PacketOutcome::NoData,
                _ => {
                    log::warn!("atapi: READ CD with sector fields {:#04x} unsupported", cdb[9]);
                    PacketOutcome::Error(Sense::INVALID_FIELD)
                }
            },
            SET_CD_SPEED => PacketOutcome::NoData,
            SEEK_10 if u64::from(be32(2)) >= self.capacity() => PacketOutcome::Error(Sense::LBA_OUT_OF_RANGE),
            SEEK_10 => PacketOutcome::NoData,
            READ_TOC => self.read_toc(cdb),
            GET_CONFIGURATION => data_in(self.configuration(cdb[1] & 3, be16(2)), be16(7).into()),
            GET_EVENT_STATUS_NOTIFICATION => self.event_status(cdb),
            MODE_SENSE_10 => self.mode_sense(cdb[2], be16(7)),
            MECHANISM_STATUS => {
                let door_open = if self.media.is_none() { 0x10 } else { 0 };
                data_in(vec![0, door_open, 0, 0, 0, 0, 0, 0], be16(8).into())
            }
            _ => {
                log::warn!("atapi: unsupported command {op:#04x} (packet {cdb:02x?})");
                PacketOutcome::Error(Sense::INVALID_OPCODE)
            }
        }
    }

    /// Fixed-format sense data (SPC-2 table 26); reading it clears the sense.
    fn request_sense(&mut self) -> Vec<u8> {
        let mut d = vec![0u8; 18];
        d[0] = 0x70; // current error, fixed format
        d[2] = self.sense.key;
        d[7] = 10; // additional sense length
        d[12] = self.sense.asc;
        d[13] = self.sense.ascq;
        self.sense = Sense::NONE;
        d
    }

    fn start_stop(&mut self, flags: u8) -> PacketOutcome {
        const START: u8 = 1 << 0;
        const LOEJ: u8 = 1 << 1;
        if flags & (LOEJ | START) == LOEJ {
            if self.locked {
                return PacketOutcome::Error(Sense::REMOVAL_PREVENTED);
            }
            if self.media.take().is_some() {
                self.media_event = MediaEvent::MediaRemoval;
            }
        }
        PacketOutcome::NoData
    }

    fn read(&mut self, lba: u64, blocks: u64) -> PacketOutcome {
        if lba.checked_add(blocks).is_none_or(|end| end > self.capacity()) {
            return PacketOutcome::Error(Sense::LBA_OUT_OF_RANGE);
        }
        if blocks == 0 {
            return PacketOutcome::NoData;
        }
        PacketOutcome::Read { lba, blocks }
    }

    /// READ TOC formats 0 (TOC) and 1 (session information) for a one-track data disc.
    fn read_toc(&self, cdb: &[u8; 12]) -> PacketOutcome {
        let msf = cdb[1] & 2 != 0;
        let format = cdb[2] & 0x0f;
        let track = cdb[6];
        let alloc = usize::from(u16::from_be_bytes([cdb[7], cdb[8]]));
        const DATA_TRACK: u8 = 0x14; // ADR 1, control: data track
        const LEAD_OUT: u8 = 0xaa;
        let address = |lba: u64| -> [u8; 4] {
            if msf {
                let f = lba + 150;
                [0, (f / (75 * 60)) as u8, (f / 75 % 60) as u8, (f % 75) as u8]
            } else {
                (lba as u32).to_be_bytes()
            }
        };
        let mut d = vec![0, 0, 1, 1];
        match format {
            0 => {
                if track > 1 && track != LEAD_OUT {
                    return PacketOutcome::Error(Sense::INVALID_FIELD);
                }
                if track <= 1 {
                    d.extend_from_slice(&[0, DATA_TRACK, 1, 0]);
                    d.extend_from_slice(&address(0));
                }
                d.extend_from_slice(&[0, DATA_TRACK, LEAD_OUT, 0]);
                d.extend_from_slice(&address(self.capacity()));
            }
            1 => {
                d.extend_from_slice(&[0, DATA_TRACK, 1, 0]);
                d.extend_from_slice(&address(0));
            }
            _ => return PacketOutcome::Error(Sense::INVALID_FIELD),
        }
        let len = (d.len() - 2) as u16;
        d[..2].copy_from_slice(&len.to_be_bytes());
        data_in(d, alloc)
    }

    /// The current profile: none, CD-ROM or DVD-ROM by size.
    fn current_profile(&self) -> u16 {
        match self.media {
            None => 0x0000,
            Some(_) if self.capacity() > CD_MAX_BLOCKS => 0x0010,
            Some(_) => 0x0008,
        }
    }

    /// GET CONFIGURATION (MMC-3 5.2): Profile List, Core and Removable Medium features.
    fn configuration(&self, rt: u8, start: u16) -> Vec<u8> {
        let current = self.current_profile();
        let profile = |p: u16| {
            let mut b = p.to_be_bytes().to_vec();
            b.extend_from_slice(&[u8::from(current == p), 0]);
            b
        };
        let mut profile_list = vec![0x00, 0x00, 0x03, 8];
        profile_list.extend(profile(0x0010));
        profile_list.extend(profile(0x0008));
        let features: [(u16, Vec<u8>); 3] = [
            (0x0000, profile_list),
            (0x0001, vec![0x00, 0x01, 0x0b, 8, 0, 0, 0, 2, 1, 0, 0, 0]), // ATAPI, DBE
            (0x0003, vec![0x00, 0x03, 0x03, 4, 0x29, 0, 0, 0]),
        ];
        let mut d = vec![0u8; 8];
        d[6..8].copy_from_slice(&current.to_be_bytes());
        for (code, bytes) in features {
            let wanted = match rt {
                2 => code == start,
                _ => code >= start,
            };
            if wanted {
                d.extend(bytes);
            }
        }
        let len = (d.len() - 4) as u32;
        d[..4].copy_from_slice(&len.to_be_bytes());
        d
    }

    /// GET EVENT STATUS NOTIFICATION, polled, media class only (MMC-3 5.6).
    fn event_status(&mut self, cdb: &[u8; 12]) -> PacketOutcome {
        const MEDIA_CLASS: u8 = 1 << 4;
        if cdb[1] & 1 == 0 {
            return PacketOutcome::Error(Sense::INVALID_FIELD);
        }
        let alloc = usize::from(u16::from_be_bytes([cdb[7], cdb[8]]));
        if cdb[4] & MEDIA_CLASS == 0 {
            return data_in(vec![0, 2, 0x80, MEDIA_CLASS], alloc);
        }
        let event = std::mem::replace(&mut self.media_event, MediaEvent::None);
        let status = u8::from(self.media.is_some()) << 1;
        data_in(vec![0, 6, 0x04, MEDIA_CLASS, event as u8, status, 0, 0], alloc)
    }

    /// MODE SENSE(10) pages 01h (read error recovery), 2Ah (capabilities), 3Fh (all).
    fn mode_sense(&self, page_control: u8, alloc: u16) -> PacketOutcome {
        const SAVED_VALUES: u8 = 3;
        if page_control >> 6 == SAVED_VALUES {
            return PacketOutcome::Error(Sense::SAVING_NOT_SUPPORTED);
        }
        let error_recovery = [0x01, 0x06, 0x00, 0x05, 0, 0, 0, 0];
        let lock_state = u8::from(self.locked) << 1;
        let capabilities = [
            0x2a,
            0x14,
            0x3b,
            0x00,
            0x71,
            0x60,
            0x29 | lock_state,
            0x00,
            0x02,
            0xc2,
            0x00,
            0xff,
            0x02,
            0x00,
            0x02,
            0xc2,
            0,
            0,
            0,
            0,
            0,
            0,
        ];
        let mut d = vec![0u8; 8];
        d[2] = if self.media.is_some() { 0x01 } else { 0x70 }; // 120 mm data CD / door closed, no disc
        match page_control & 0x3f {
            0x01 => d.extend_from_slice(&error_recovery),
            0x2a => d.extend_from_slice(&capabilities),
            0x3f => {
                d.extend_from_slice(&error_recovery);
                d.extend_from_slice(&capabilities);
            }
            _ => return PacketOutcome::Error(Sense::INVALID_FIELD),
        }
        let len = (d.len() - 2) as u16;
        d[..2].copy_from_slice(&len.to_be_bytes());
        data_in(d, alloc.into())
    }
}

/// Standard INQUIRY data (SPC-2 table 46): CD/DVD device, removable.
fn inquiry() -> Vec<u8> {
    let mut d = vec![0x05, 0x80, 0x00, 0x21, 31, 0, 0, 0];
    d.extend_from_slice(b"RX86    ");
    d.extend_from_slice(b"CD-ROM          ");
    d.extend_from_slice(b"1.0 ");
    d
}

/// `data` cut to the allocation length.
fn data_in(mut data: Vec<u8>, alloc: usize) -> PacketOutcome {
    data.truncate(alloc);
    if data.is_empty() {
        PacketOutcome::NoData
    } else {
        PacketOutcome::DataIn(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::MemDisk;

    fn cd(blocks: u64) -> AtapiCdrom {
        AtapiCdrom::new(Some(Box::new(MemDisk::patterned(blocks, CD_BLOCK_SIZE))), "CD1")
    }

    fn cdb(bytes: &[u8]) -> [u8; 12] {
        let mut c = [0u8; 12];
        c[..bytes.len()].copy_from_slice(bytes);
        c
    }

    fn data(o: PacketOutcome) -> Vec<u8> {
        match o {
            PacketOutcome::DataIn(d) => d,
            other => panic!("expected data, got {other:?}"),
        }
    }

    #[test]
    fn unit_attention_then_ready_and_request_sense() {
        let mut d = AtapiCdrom::new(None, "CD1");
        assert_eq!(d.execute(&cdb(&[TEST_UNIT_READY])), PacketOutcome::Error(Sense::NO_MEDIUM));
        let s = data(d.execute(&cdb(&[REQUEST_SENSE, 0, 0, 0, 18])));
        assert_eq!((s[0], s[2], s[7], s[12], s[13]), (0x70, 0x02, 10, 0x3a, 0));
        let s = data(d.execute(&cdb(&[REQUEST_SENSE, 0, 0, 0, 18])));
        assert_eq!(s[2], 0, "reading the sense clears it");
        d.insert(Box::new(MemDisk::patterned(10, CD_BLOCK_SIZE)));
        assert_eq!(data(d.execute(&cdb(&[INQUIRY, 0, 0, 0, 36])))[0], 0x05, "INQUIRY ignores unit attention");
        assert_eq!(d.execute(&cdb(&[TEST_UNIT_READY])), PacketOutcome::Error(Sense::MEDIUM_CHANGED));
        assert_eq!(d.execute(&cdb(&[TEST_UNIT_READY])), PacketOutcome::NoData, "reported once");
        assert!(d.eject().is_some());
        assert_eq!(d.execute(&cdb(&[READ_CAPACITY])), PacketOutcome::Error(Sense::MEDIUM_CHANGED));
        assert_eq!(d.execute(&cdb(&[READ_CAPACITY])), PacketOutcome::Error(Sense::NO_MEDIUM));
    }

    #[test]
    fn capacity_reads_and_ranges() {
        let mut d = cd(100);
        assert_eq!(data(d.execute(&cdb(&[READ_CAPACITY]))), [0, 0, 0, 99, 0, 0, 8, 0]);
        assert_eq!(d.execute(&cdb(&[READ_10, 0, 0, 0, 0, 98, 0, 0, 2])), PacketOutcome::Read { lba: 98, blocks: 2 });
        assert_eq!(d.execute(&cdb(&[READ_10, 0, 0, 0, 0, 99, 0, 0, 2])), PacketOutcome::Error(Sense::LBA_OUT_OF_RANGE));
        assert_eq!(
            d.execute(&cdb(&[READ_10, 0, 0, 0, 0, 200, 0, 0, 0])),
            PacketOutcome::Error(Sense::LBA_OUT_OF_RANGE)
        );
        assert_eq!(d.execute(&cdb(&[READ_10, 0, 0, 0, 0, 5, 0, 0, 0])), PacketOutcome::NoData);
        let huge = cdb(&[READ_12, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(d.execute(&huge), PacketOutcome::Error(Sense::LBA_OUT_OF_RANGE));
        assert_eq!(d.execute(&cdb(&[READ_12, 0, 0, 0, 0, 1, 0, 0, 0, 3])), PacketOutcome::Read { lba: 1, blocks: 3 });
        let read_cd = cdb(&[READ_CD, 0, 0, 0, 0, 7, 0, 0, 2, READ_CD_USER_DATA]);
        assert_eq!(d.execute(&read_cd), PacketOutcome::Read { lba: 7, blocks: 2 });
        let raw = cdb(&[READ_CD, 0, 0, 0, 0, 7, 0, 0, 2, 0xf8]);
        assert_eq!(d.execute(&raw), PacketOutcome::Error(Sense::INVALID_FIELD), "raw sectors unsupported");
        let past = cdb(&[READ_CD, 0, 0, 0, 0, 99, 0, 0, 2, READ_CD_USER_DATA]);
        assert_eq!(d.execute(&past), PacketOutcome::Error(Sense::LBA_OUT_OF_RANGE));
        let b = d.read_blocks(2, 1).unwrap();
        assert_eq!(b[5], crate::block::pattern_byte(2 * 2048 + 5, 2048));
        assert_eq!(d.execute(&cdb(&[0xff])), PacketOutcome::Error(Sense::INVALID_OPCODE));
        assert_eq!(d.sense(), Sense::INVALID_OPCODE);
    }

    #[test]
    fn toc_in_lba_and_msf() {
        let mut d = cd(1000);
        let toc = data(d.execute(&cdb(&[READ_TOC, 0, 0, 0, 0, 0, 0, 0, 100])));
        assert_eq!(toc, [0, 18, 1, 1, 0, 0x14, 1, 0, 0, 0, 0, 0, 0, 0x14, 0xaa, 0, 0, 0, 0x03, 0xe8]);
        let toc = data(d.execute(&cdb(&[READ_TOC, 2, 0, 0, 0, 0, 0, 0, 100])));
        // Lead-out at LBA 1000 = frame 1150: 0 min, 15 s, 25 frames; track 1 at 00:02:00.
        assert_eq!(&toc[8..12], &[0, 0, 2, 0]);
        assert_eq!(&toc[16..20], &[0, 0, 15, 25]);
        let session = data(d.execute(&cdb(&[READ_TOC, 0, 1, 0, 0, 0, 0, 0, 12])));
        assert_eq!(session, [0, 10, 1, 1, 0, 0x14, 1, 0, 0, 0, 0, 0]);
        assert_eq!(d.execute(&cdb(&[READ_TOC, 0, 0, 0, 0, 0, 2, 0, 100])), PacketOutcome::Error(Sense::INVALID_FIELD));
        assert_eq!(d.execute(&cdb(&[READ_TOC, 0, 5, 0, 0, 0, 0, 0, 100])), PacketOutcome::Error(Sense::INVALID_FIELD));
        assert_eq!(data(d.execute(&cdb(&[READ_TOC, 0, 0, 0, 0, 0, 0, 0, 4]))).len(), 4, "allocation length");
    }

    #[test]
    fn mode_sense_configuration_and_events() {
        let mut d = cd(1000);
        let m = data(d.execute(&cdb(&[MODE_SENSE_10, 0, 0x2a, 0, 0, 0, 0, 0, 64])));
        assert_eq!(u16::from_be_bytes([m[0], m[1]]) as usize, m.len() - 2);
        assert_eq!((m[8], m[9]), (0x2a, 0x14));
        assert_eq!(m.len(), 8 + 22);
        assert_eq!(data(d.execute(&cdb(&[MODE_SENSE_10, 0, 0x3f, 0, 0, 0, 0, 0, 64]))).len(), 8 + 8 + 22);
        assert_eq!(
            d.execute(&cdb(&[MODE_SENSE_10, 0, 0xea, 0, 0, 0, 0, 0, 64])),
            PacketOutcome::Error(Sense::SAVING_NOT_SUPPORTED)
        );
        assert_eq!(
            d.execute(&cdb(&[MODE_SENSE_10, 0, 0x05, 0, 0, 0, 0, 0, 64])),
            PacketOutcome::Error(Sense::INVALID_FIELD)
        );

        let c = data(d.execute(&cdb(&[GET_CONFIGURATION, 0, 0, 0, 0, 0, 0, 1, 0])));
        assert_eq!(u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize, c.len() - 4);
        assert_eq!(u16::from_be_bytes([c[6], c[7]]), 0x0008, "a small disc is a CD-ROM");
        assert_eq!((c[8], c[9]), (0, 0), "profile list first");
        let only_core = data(d.execute(&cdb(&[GET_CONFIGURATION, 2, 0, 1, 0, 0, 0, 1, 0])));
        assert_eq!(only_core.len(), 8 + 12);
        assert_eq!((only_core[9], only_core[15]), (1, 2), "core feature, ATAPI interface");

        assert_eq!(
            d.execute(&cdb(&[GET_EVENT_STATUS_NOTIFICATION, 0, 0, 0, 0x10, 0, 0, 0, 8])),
            PacketOutcome::Error(Sense::INVALID_FIELD)
        );
        d.insert(Box::new(MemDisk::patterned(10, CD_BLOCK_SIZE)));
        let poll = cdb(&[GET_EVENT_STATUS_NOTIFICATION, 1, 0, 0, 0x10, 0, 0, 0, 8]);
        assert_eq!(data(d.execute(&poll)), [0, 6, 4, 0x10, 2, 2, 0, 0], "new media, present");
        assert_eq!(data(d.execute(&poll))[4], 0, "event consumed");
    }

    #[test]
    fn lock_blocks_eject() {
        let mut d = cd(10);
        d.execute(&cdb(&[PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 1]));
        assert_eq!(d.execute(&cdb(&[START_STOP_UNIT, 0, 0, 0, 2])), PacketOutcome::Error(Sense::REMOVAL_PREVENTED));
        d.execute(&cdb(&[PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 0]));
        assert_eq!(d.execute(&cdb(&[START_STOP_UNIT, 0, 0, 0, 2])), PacketOutcome::NoData);
        assert!(!d.has_media());
    }

    /// Deterministic fuzz: random packets never panic and always give a definite answer.
    #[test]
    fn fuzz_packets() {
        let mut d = cd(50);
        let mut seed = 0x9e37_79b9u32;
        for _ in 0..20_000 {
            let mut c = [0u8; 12];
            for b in &mut c {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                *b = seed as u8;
            }
            c[0] = [0x00, 0x03, 0x12, 0x1b, 0x1e, 0x25, 0x28, 0x2b, 0x43, 0x46, 0x4a, 0x5a, 0xa8, 0xbd, 0xbe, c[0]]
                [(seed >> 8) as usize % 16];
            if let PacketOutcome::Read { lba, blocks } = d.execute(&c) {
                assert!(lba + blocks <= 50);
            }
            if !d.has_media() {
                d.insert(Box::new(MemDisk::patterned(50, CD_BLOCK_SIZE)));
            }
        }
    }
}
