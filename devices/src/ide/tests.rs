//! Protocol tests of an IDE channel as a driver sees it: the Linux probe, PIO,
//! LBA28/LBA48/CHS, multiple mode, PACKET, bus master DMA, errors and fuzzing.

use super::*;
use crate::block::{pattern_byte, MemDisk};
use crate::pci::PciFunction;
use rx86_core::irq::RecordingIrqLine;
use rx86_core::memory::GuestRam;
use rx86_core::phys::{Region, RegionKind};

/// 1 MiB of RAM at physical 0 as a DMA target.
pub(crate) fn ram() -> Arc<PhysMemory> {
    let ram = Arc::new(GuestRam::new(0x10_0000).unwrap());
    let mut m = PhysMemory::new(ram);
    m.add_region(Region { base: 0, len: 0x10_0000, kind: RegionKind::Ram { offset: 0 }, name: "ram".into() }).unwrap();
    Arc::new(m)
}

const DATA: u64 = 0;
const ERROR: u64 = 1;
const COUNT: u64 = 2;
const LBA_LOW: u64 = 3;
const LBA_MID: u64 = 4;
const LBA_HIGH: u64 = 5;
const DEVICE: u64 = 6;
const STATUS: u64 = 7;

const DISK_SECTORS: u64 = 40_000;
const CD_BLOCKS: u64 = 64;

struct Rig {
    ch: IdeChannel,
    irq: Arc<RecordingIrqLine>,
    mem: Arc<PhysMemory>,
}

impl Rig {
    /// An ATA disk as master and, if `cd`, an ATAPI CD-ROM as slave.
    fn new(cd: bool) -> Self {
        let irq = RecordingIrqLine::new();
        let mem = ram();
        let mut ch = IdeChannel::new("test", irq.clone(), Some(mem.clone()));
        ch.attach(0, IdeDrive::Ata(AtaDisk::new(Box::new(MemDisk::patterned(DISK_SECTORS, 512)), "D0")));
        if cd {
            let media = MemDisk::patterned(CD_BLOCKS, CD_BLOCK_SIZE);
            ch.attach(1, IdeDrive::Atapi(AtapiCdrom::new(Some(Box::new(media)), "C1")));
        }
        Rig { ch, irq, mem }
    }

    fn w(&mut self, reg: u64, v: u8) {
        self.ch.write_command_block(reg, 1, u64::from(v));
    }

    fn r(&mut self, reg: u64) -> u8 {
        self.ch.read_command_block(reg, 1) as u8
    }

    fn alt_status(&mut self) -> u8 {
        self.ch.read_control_block(0, 1) as u8
    }

    fn select(&mut self, dev: u8) {
        self.w(DEVICE, 0xa0 | dev << 4);
    }

    /// Sets up an LBA28 command and issues it.
    fn lba28(&mut self, cmd: u8, lba: u32, count: u8) {
        self.w(COUNT, count);
        self.w(LBA_LOW, lba as u8);
        self.w(LBA_MID, (lba >> 8) as u8);
        self.w(LBA_HIGH, (lba >> 16) as u8);
        self.w(DEVICE, 0xe0 | (lba >> 24) as u8 & 0xf);
        self.w(STATUS, cmd);
    }

    fn lba48(&mut self, cmd: u8, lba: u64, count: u16) {
        for (hi, lo, reg) in [
            ((count >> 8) as u8, count as u8, COUNT),
            ((lba >> 24) as u8, lba as u8, LBA_LOW),
            ((lba >> 32) as u8, (lba >> 8) as u8, LBA_MID),
            ((lba >> 40) as u8, (lba >> 16) as u8, LBA_HIGH),
        ] {
            self.w(reg, hi);
            self.w(reg, lo);
        }
        self.w(DEVICE, 0x40);
        self.w(STATUS, cmd);
    }

    fn read_words(&mut self, n: usize) -> Vec<u8> {
        (0..n).flat_map(|_| (self.ch.read_command_block(DATA, 2) as u16).to_le_bytes()).collect()
    }

    fn write_words(&mut self, data: &[u8]) {
        for w in data.chunks(2) {
            self.ch.write_command_block(DATA, 2, u64::from(u16::from_le_bytes([w[0], w[1]])));
        }
    }

    fn disk_bytes(&mut self, lba: u64, sectors: u64) -> Vec<u8> {
        let Some(IdeDrive::Ata(d)) = self.ch.drive_mut(0) else { panic!("no disk") };
        let mut b = vec![0u8; (sectors * 512) as usize];
        d.backend().read_at(lba * 512, &mut b).unwrap();
        b
    }

    fn packet(&mut self, cdb: &[u8], byte_count: u16, dma: bool) {
        self.w(ERROR, u8::from(dma));
        self.w(LBA_MID, byte_count as u8);
        self.w(LBA_HIGH, (byte_count >> 8) as u8);
        self.w(STATUS, 0xa0);
        assert_eq!(self.alt_status() & 0x88, 0x08, "DRQ for the packet");
        assert_eq!(self.r(COUNT) & 3, 1, "CoD=1 IO=0");
        let mut c = [0u8; 12];
        c[..cdb.len()].copy_from_slice(cdb);
        self.write_words(&c);
    }
}

fn expected(lba: u64, sectors: u64) -> Vec<u8> {
    (lba * 512..(lba + sectors) * 512).map(|i| pattern_byte(i, 512)).collect()
}

#[test]
fn linux_probe_srst_signatures_and_devchk() {
    let mut rig = Rig::new(true);
    rig.select(1);
    rig.ch.write_control_block(0, 1, 0x06); // SRST | nIEN
    assert_eq!(rig.alt_status() & 0x80, 0x80, "BSY during reset");
    rig.ch.write_control_block(0, 1, 0x02);
    // ata_sff_dev_classify: signature per device.
    rig.select(0);
    assert_eq!([rig.r(COUNT), rig.r(LBA_LOW), rig.r(LBA_MID), rig.r(LBA_HIGH)], [1, 1, 0, 0], "ATA");
    assert_eq!(rig.r(STATUS), 0x50);
    assert_eq!(rig.r(ERROR), 1, "diagnostic passed");
    rig.select(1);
    assert_eq!([rig.r(COUNT), rig.r(LBA_LOW), rig.r(LBA_MID), rig.r(LBA_HIGH)], [1, 1, 0x14, 0xeb], "ATAPI");
    // ata_devchk: patterns written read back from a present device.
    for dev in 0..2 {
        rig.select(dev);
        rig.w(COUNT, 0x55);
        rig.w(LBA_LOW, 0xaa);
        rig.w(COUNT, 0xaa);
        rig.w(LBA_LOW, 0x55);
        rig.w(COUNT, 0x55);
        rig.w(LBA_LOW, 0xaa);
        assert_eq!((rig.r(COUNT), rig.r(LBA_LOW)), (0x55, 0xaa), "device {dev}");
    }
    assert!(rig.irq.events().iter().all(|l| !l), "nIEN kept the line low");

    let mut alone = Rig::new(false);
    alone.select(1);
    alone.w(COUNT, 0x55);
    assert_eq!((alone.r(COUNT), alone.r(STATUS), alone.alt_status()), (0, 0, 0), "absent slave reads 0");
    alone.w(STATUS, 0xec);
    alone.select(0);
    assert_eq!(alone.r(STATUS), 0x50, "the command to the absent slave did nothing");

    let irq = RecordingIrqLine::new();
    let mut empty = IdeChannel::new("empty", irq, None);
    assert_eq!(empty.read_command_block(STATUS, 1), 0xff, "floating bus");
    assert_eq!(empty.read_control_block(0, 1), 0xff);
}

#[test]
fn identify_ata_and_atapi() {
    let mut rig = Rig::new(true);
    rig.select(0);
    rig.w(STATUS, 0xec);
    assert!(rig.irq.level());
    assert_eq!(rig.alt_status(), 0x58, "DRDY DSC DRQ");
    assert!(rig.irq.level(), "alternate status does not clear the interrupt");
    assert_eq!(rig.r(STATUS), 0x58);
    assert!(!rig.irq.level(), "status read clears it");
    let id = rig.read_words(256);
    assert_eq!(u16::from_le_bytes([id[0], id[1]]), 0x0040);
    assert_eq!(u32::from_le_bytes([id[120], id[121], id[122], id[123]]), DISK_SECTORS as u32);
    assert_eq!(rig.r(STATUS), 0x50, "DRQ drops after 256 words");

    rig.select(1);
    rig.w(STATUS, 0xec);
    assert_eq!(rig.r(STATUS) & 0x01, 0x01, "ATAPI aborts IDENTIFY DEVICE");
    assert_eq!(rig.r(ERROR), 0x04);
    assert_eq!((rig.r(LBA_MID), rig.r(LBA_HIGH)), (0x14, 0xeb), "and shows its signature");
    rig.w(STATUS, 0xa1);
    let id = rig.read_words(256);
    assert_eq!(u16::from_le_bytes([id[0], id[1]]), 0x85c0);
    rig.select(0);
    rig.w(STATUS, 0xa1);
    assert_eq!((rig.r(STATUS) & 1, rig.r(ERROR)), (1, 0x04), "ATA aborts IDENTIFY PACKET DEVICE");
}

#[test]
fn pio_read_single_sectors_lba28() {
    let mut rig = Rig::new(false);
    rig.irq.clear();
    rig.lba28(0x20, 5, 3);
    let mut got = Vec::new();
    for _ in 0..3 {
        assert!(rig.irq.level(), "interrupt per sector");
        assert_eq!(rig.r(STATUS), 0x58);
        got.extend(rig.read_words(256));
    }
    assert_eq!(got, expected(5, 3));
    assert_eq!(rig.r(STATUS), 0x50);
    assert_eq!(rig.irq.rising_edges(), 3);
    assert_eq!((rig.r(LBA_LOW), rig.r(LBA_MID), rig.r(LBA_HIGH)), (7, 0, 0), "last sector transferred");
    // 32-bit PIO.
    rig.lba28(0x20, 9, 1);
    let dwords: Vec<u8> = (0..128).flat_map(|_| (rig.ch.read_command_block(DATA, 4) as u32).to_le_bytes()).collect();
    assert_eq!(dwords, expected(9, 1));
}

#[test]
fn pio_write_and_flush() {
    let mut rig = Rig::new(false);
    rig.lba28(0x30, 100, 2);
    assert_eq!(rig.r(STATUS), 0x58, "DRQ for the first sector");
    assert_eq!(rig.irq.rising_edges(), 0, "no interrupt before the first block");
    rig.write_words(&[0x11; 512]);
    assert!(rig.irq.level());
    assert_eq!(rig.r(STATUS), 0x58);
    rig.write_words(&[0x22; 512]);
    assert_eq!(rig.r(STATUS), 0x50);
    assert_eq!(rig.irq.rising_edges(), 2);
    let mut want = vec![0x11; 512];
    want.extend([0x22; 512]);
    assert_eq!(rig.disk_bytes(100, 2), want);
    assert_eq!(rig.disk_bytes(102, 1), expected(102, 1), "neighbour untouched");
    rig.w(STATUS, 0xe7);
    assert_eq!(rig.r(STATUS), 0x50);
    rig.w(STATUS, 0xea);
    assert_eq!(rig.r(STATUS), 0x50);
}

#[test]
fn multiple_mode() {
    let mut rig = Rig::new(false);
    rig.lba28(0xc4, 0, 4);
    assert_eq!((rig.r(STATUS), rig.r(ERROR)), (0x51, 0x04), "READ MULTIPLE before SET MULTIPLE aborts");
    rig.w(COUNT, 3);
    rig.w(STATUS, 0xc6);
    assert_eq!(rig.r(STATUS) & 1, 1, "3 is not a power of two");
    rig.w(COUNT, 32);
    rig.w(STATUS, 0xc6);
    assert_eq!(rig.r(STATUS) & 1, 1, "above the maximum of 16");
    rig.w(COUNT, 4);
    rig.w(STATUS, 0xc6);
    assert_eq!(rig.r(STATUS), 0x50);
    rig.irq.clear();
    rig.lba28(0xc4, 10, 10);
    let mut got = Vec::new();
    for words in [1024, 1024, 512] {
        assert_eq!(rig.r(STATUS), 0x58);
        got.extend(rig.read_words(words));
    }
    assert_eq!(got, expected(10, 10));
    assert_eq!(rig.irq.rising_edges(), 3, "one interrupt per block of 4");
    rig.lba28(0xc5, 200, 6);
    rig.write_words(&[0x33; 2048]);
    rig.write_words(&[0x44; 1024]);
    assert_eq!(rig.r(STATUS), 0x50);
    assert_eq!(&rig.disk_bytes(203, 3)[..], &[[0x33; 512].as_slice(), &[0x44; 1024]].concat()[..]);
}

#[test]
fn lba48_and_hob() {
    let mut rig = Rig::new(false);
    rig.lba48(0x24, 30_000, 2);
    assert_eq!(rig.read_words(512), expected(30_000, 2));
    rig.ch.write_control_block(0, 1, 0x80);
    assert_eq!(rig.r(COUNT), 0, "HOB count");
    rig.ch.write_control_block(0, 1, 0x00);
    assert_eq!(u32::from_le_bytes([rig.r(LBA_LOW), rig.r(LBA_MID), rig.r(LBA_HIGH), 0]), 30_001);
    rig.lba48(0x24, 1 << 32, 1);
    assert_eq!((rig.r(STATUS), rig.r(ERROR)), (0x51, 0x14), "IDNF beyond the disk");
    rig.lba48(0x34, DISK_SECTORS - 1, 1);
    rig.write_words(&[0x5a; 512]);
    assert_eq!(rig.disk_bytes(DISK_SECTORS - 1, 1), vec![0x5a; 512]);
    rig.lba48(0x24, 0, 0);
    assert_eq!(rig.r(STATUS), 0x51, "count 0 = 65536 sectors, past a 40000-sector disk");
    rig.w(STATUS, 0x27);
    rig.ch.write_control_block(0, 1, 0x80);
    let hob = [rig.r(LBA_LOW), rig.r(LBA_MID), rig.r(LBA_HIGH)];
    rig.ch.write_control_block(0, 1, 0);
    assert_eq!(hob, [0, 0, 0]);
    assert_eq!(u32::from_le_bytes([rig.r(LBA_LOW), rig.r(LBA_MID), rig.r(LBA_HIGH), 0]), DISK_SECTORS as u32 - 1);
}

#[test]
fn chs_addressing_and_range_errors() {
    let mut rig = Rig::new(false);
    // Cylinder 1, head 2, sector 3 in the 16/63 translation.
    rig.w(COUNT, 1);
    rig.w(LBA_LOW, 3);
    rig.w(LBA_MID, 1);
    rig.w(LBA_HIGH, 0);
    rig.w(DEVICE, 0xa2);
    rig.w(STATUS, 0x20);
    assert_eq!(rig.read_words(256), expected((16 + 2) * 63 + 2, 1));
    rig.w(LBA_LOW, 0);
    rig.w(STATUS, 0x20);
    assert_eq!((rig.r(STATUS), rig.r(ERROR)), (0x51, 0x14), "sector 0 does not exist");
    rig.lba28(0x20, DISK_SECTORS as u32 - 1, 2);
    assert_eq!((rig.r(STATUS), rig.r(ERROR)), (0x51, 0x14), "runs past the end");
    rig.lba28(0x30, 0x0fff_ffff, 0);
    assert_eq!(rig.r(STATUS), 0x51);
    rig.lba28(0x40, 10, 0);
    assert_eq!(rig.r(STATUS), 0x50, "READ VERIFY of 256 sectors inside the disk");
    rig.w(STATUS, 0xff);
    assert_eq!((rig.r(STATUS), rig.r(ERROR)), (0x51, 0x04), "unknown command aborts");
    rig.w(DEVICE, 0xa3);
    rig.w(COUNT, 32);
    rig.w(STATUS, 0x91);
    assert_eq!(rig.r(STATUS), 0x50, "INITIALIZE DEVICE PARAMETERS 4 heads, 32 sectors");
    rig.w(COUNT, 1);
    rig.w(LBA_LOW, 1);
    rig.w(LBA_MID, 1);
    rig.w(DEVICE, 0xa1);
    rig.w(STATUS, 0x20);
    assert_eq!(rig.read_words(256), expected(4 * 32 + 32, 1));
}

#[test]
fn nien_masks_the_line() {
    let mut rig = Rig::new(false);
    rig.ch.write_control_block(0, 1, 0x02);
    rig.w(STATUS, 0xec);
    assert!(!rig.irq.level());
    rig.ch.write_control_block(0, 1, 0x00);
    assert!(rig.irq.level(), "the pending interrupt shows once enabled");
}

fn prd(mem: &PhysMemory, at: u64, entries: &[(u32, u16, bool)]) {
    for (i, &(addr, count, eot)) in entries.iter().enumerate() {
        let mut e = addr.to_le_bytes().to_vec();
        e.extend(u32::from(count).to_le_bytes());
        if eot {
            e[7] = 0x80;
        }
        mem.dma_write(at + 8 * i as u64, &e).unwrap();
    }
}

#[test]
fn bus_master_dma_read_and_write() {
    let mut rig = Rig::new(false);
    prd(&rig.mem, 0x1000, &[(0x2000, 1000, false), (0x8000, 24, true)]);
    rig.ch.write_bus_master(4, 4, 0x1000);
    rig.lba28(0xc8, 50, 2);
    assert_eq!(rig.r(STATUS), 0x58, "waiting for the bus master");
    rig.ch.write_bus_master(0, 1, 0x09);
    assert!(rig.irq.level());
    assert_eq!(rig.ch.read_bus_master(2, 1) as u8 & 7, 0x04, "interrupt, not active: table used exactly");
    assert_eq!(rig.r(STATUS), 0x50);
    let mut got = vec![0u8; 1024];
    rig.mem.dma_read(0x2000, &mut got[..1000]).unwrap();
    rig.mem.dma_read(0x8000, &mut got[1000..]).unwrap();
    assert_eq!(got, expected(50, 2));
    rig.ch.write_bus_master(2, 1, 0x04);
    rig.ch.write_bus_master(0, 1, 0x00);

    // WRITE DMA with the bus master started first and a longer table.
    rig.mem.dma_write(0x3000, &[0x77; 512]).unwrap();
    prd(&rig.mem, 0x1000, &[(0x3000, 0x2000, true)]);
    rig.ch.write_bus_master(0, 1, 0x01);
    rig.lba28(0xca, 60, 1);
    assert_eq!(rig.ch.read_bus_master(2, 1) as u8 & 7, 0x05, "table larger than the transfer: still active");
    assert_eq!(rig.disk_bytes(60, 1), vec![0x77; 512]);
    rig.ch.write_bus_master(0, 1, 0x00);

    // READ DMA EXT.
    prd(&rig.mem, 0x1000, &[(0x4000, 512, true)]);
    rig.lba48(0x25, 39_999, 1);
    rig.ch.write_bus_master(0, 1, 0x09);
    let mut s = vec![0u8; 512];
    rig.mem.dma_read(0x4000, &mut s).unwrap();
    assert_eq!(s, expected(39_999, 1));
}

#[test]
fn bad_dma_tables_are_guest_errors() {
    let mut rig = Rig::new(false);
    // Table shorter than the transfer.
    prd(&rig.mem, 0x1000, &[(0x2000, 512, true)]);
    rig.ch.write_bus_master(4, 4, 0x1000);
    rig.lba28(0xc8, 0, 2);
    rig.ch.write_bus_master(0, 1, 0x09);
    assert_eq!(rig.ch.read_bus_master(2, 1) as u8 & 7, 0x06, "error and interrupt");
    assert_eq!((rig.r(STATUS), rig.r(ERROR)), (0x51, 0x04));
    rig.ch.write_bus_master(0, 1, 0);
    rig.ch.write_bus_master(2, 1, 0x06);
    // A buffer outside RAM, for a write: the disk is not touched.
    prd(&rig.mem, 0x1000, &[(0xfff0_0000, 512, true)]);
    rig.lba28(0xca, 7, 1);
    rig.ch.write_bus_master(0, 1, 0x01);
    assert_eq!(rig.ch.read_bus_master(2, 1) as u8 & 2, 2);
    assert_eq!(rig.r(STATUS) & 1, 1);
    assert_eq!(rig.disk_bytes(7, 1), expected(7, 1));
    rig.ch.write_bus_master(0, 1, 0);
    // The table itself outside RAM.
    rig.ch.write_bus_master(4, 4, 0xffff_fff0);
    rig.lba28(0xc8, 7, 1);
    rig.ch.write_bus_master(0, 1, 0x09);
    assert_eq!(rig.r(STATUS) & 1, 1);
    // No DMA memory at all.
    let mut ch = IdeChannel::new("nodma", RecordingIrqLine::new(), None);
    ch.attach(0, IdeDrive::Ata(AtaDisk::new(Box::new(MemDisk::patterned(8, 512)), "x")));
    ch.write_command_block(DEVICE, 1, 0xe0);
    ch.write_command_block(STATUS, 1, 0xc8);
    assert_eq!(ch.read_command_block(STATUS, 1), 0x51);
}

#[test]
fn atapi_pio_packets() {
    let mut rig = Rig::new(true);
    rig.select(1);
    rig.irq.clear();
    // TEST UNIT READY reports the initial state as ready (no pending change at attach).
    rig.packet(&[0x00], 0, false);
    assert_eq!((rig.r(STATUS), rig.r(COUNT) & 3), (0x50, 3), "no data: IO|CoD, DRDY");
    // READ(10) of 3 blocks with a byte count limit of 4096: chunks of 2 and 1 blocks.
    rig.packet(&[0x28, 0, 0, 0, 0, 10, 0, 0, 3], 4096, false);
    let mut got = Vec::new();
    for chunk in [4096u16, 2048] {
        assert_eq!(rig.r(STATUS), 0x58);
        assert_eq!(rig.r(COUNT) & 3, 2, "data to host");
        assert_eq!(u16::from_le_bytes([rig.r(LBA_MID), rig.r(LBA_HIGH)]), chunk);
        got.extend(rig.read_words(usize::from(chunk) / 2));
    }
    let want: Vec<u8> = (10 * 2048..13 * 2048).map(|i| pattern_byte(i, 2048)).collect();
    assert_eq!(got, want);
    assert_eq!((rig.r(STATUS), rig.r(COUNT) & 3), (0x50, 3));
    // INQUIRY truncated to 36 bytes, odd byte counts rounded down.
    rig.packet(&[0x12, 0, 0, 0, 36], 101, false);
    assert_eq!(u16::from_le_bytes([rig.r(LBA_MID), rig.r(LBA_HIGH)]), 36);
    let inq = rig.read_words(18);
    assert_eq!(&inq[8..12], b"RX86");
    // Out-of-range READ: CHECK CONDITION, sense key in the error register.
    rig.packet(&[0x28, 0, 0, 0, 0, 64, 0, 0, 1], 2048, false);
    assert_eq!((rig.r(STATUS) & 0x89, rig.r(ERROR) >> 4, rig.r(COUNT) & 3), (0x01, 5, 3));
    rig.packet(&[0x03, 0, 0, 0, 18], 18, false);
    let sense = rig.read_words(9);
    assert_eq!((sense[2], sense[12]), (5, 0x21));
}

#[test]
fn atapi_media_change_and_dma() {
    let mut rig = Rig::new(true);
    rig.select(1);
    if let Some(IdeDrive::Atapi(cd)) = rig.ch.drive_mut(1) {
        assert!(cd.eject().is_some());
    }
    rig.packet(&[0x00], 0, false);
    assert_eq!(rig.r(ERROR) >> 4, 6, "UNIT ATTENTION");
    rig.packet(&[0x00], 0, false);
    assert_eq!(rig.r(ERROR) >> 4, 2, "NOT READY: no medium");
    if let Some(IdeDrive::Atapi(cd)) = rig.ch.drive_mut(1) {
        cd.insert(Box::new(MemDisk::patterned(CD_BLOCKS, CD_BLOCK_SIZE)));
    }
    rig.packet(&[0x25], 8, false);
    assert_eq!(rig.r(ERROR) >> 4, 6);
    rig.packet(&[0x25], 8, false);
    assert_eq!(rig.read_words(4), [0, 0, 0, 63, 0, 0, 8, 0]);
    // READ(12) by DMA.
    prd(&rig.mem, 0x1000, &[(0x10000, 0, true)]);
    rig.ch.write_bus_master(4, 4, 0x1000);
    rig.ch.write_bus_master(0, 1, 0x09);
    rig.packet(&[0xa8, 0, 0, 0, 0, 2, 0, 0, 0, 2], 0, true);
    assert_eq!((rig.r(STATUS), rig.r(COUNT) & 3), (0x50, 3));
    assert_eq!(rig.ch.read_bus_master(2, 1) as u8 & 7, 0x05, "64 KiB region, 4 KiB used");
    let mut got = vec![0u8; 4096];
    rig.mem.dma_read(0x10000, &mut got).unwrap();
    let want: Vec<u8> = (2 * 2048..4 * 2048).map(|i| pattern_byte(i, 2048)).collect();
    assert_eq!(got, want);
}

#[test]
fn device_reset_and_diagnostic() {
    let mut rig = Rig::new(true);
    rig.select(1);
    rig.w(LBA_MID, 0);
    rig.w(STATUS, 0x08);
    assert_eq!((rig.r(LBA_MID), rig.r(LBA_HIGH), rig.r(STATUS)), (0x14, 0xeb, 0x00), "DEVICE RESET");
    rig.w(STATUS, 0x90);
    assert!(rig.irq.level());
    assert_eq!(rig.r(DEVICE) & 0x10, 0, "diagnostic selects device 0");
    assert_eq!((rig.r(ERROR), rig.r(STATUS)), (1, 0x50));
    rig.select(0);
    rig.w(STATUS, 0x08);
    assert_eq!(rig.r(STATUS) & 1, 1, "ATA disks abort DEVICE RESET");
}

/// Deterministic fuzz of every register file of the channel: random accesses of every
/// width never panic, and the disk only ever changes through accepted commands.
#[test]
fn fuzz_register_files() {
    let mut rig = Rig::new(true);
    let mut seed = 0x2545_f491u32;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    prd(&rig.mem, 0x1000, &[(0x20000, 0, true)]);
    for _ in 0..200_000 {
        let r = rnd();
        let size = [1u8, 2, 4][(r >> 4) as usize % 3];
        let value = u64::from(rnd());
        let offset = u64::from(r >> 8) % 8;
        match r % 7 {
            0 => rig.ch.write_command_block(offset, size, value),
            1 => {
                rig.ch.read_command_block(offset, size);
            }
            2 => rig.ch.write_control_block(0, 1, value & 0x86),
            3 => rig.ch.write_bus_master(offset & 3, size, value & 0x1009),
            4 => {
                rig.ch.read_bus_master(offset, size);
            }
            5 => rig.ch.write_command_block(DATA, size, value),
            _ => {
                rig.ch.read_command_block(DATA, size);
            }
        }
    }
    let Some(IdeDrive::Ata(d)) = rig.ch.drive_mut(0) else { panic!() };
    assert_eq!(d.backend().len(), DISK_SECTORS * 512);
}

#[test]
fn piix3_function() {
    let mem = ram();
    let irq14 = RecordingIrqLine::new();
    let mut f = Piix3Ide::new(irq14.clone(), RecordingIrqLine::new(), Some(mem));
    assert_eq!(f.read_config(0, 4), 0x7010_8086);
    assert_eq!(f.read_config(0x08, 4) >> 8, 0x01_01_80);
    f.write_config(0x20, 4, 0xffff_ffff);
    assert_eq!(f.read_config(0x20, 4), 0xffff_fff1, "16-byte I/O BAR");
    for bar in [0x10, 0x14, 0x18, 0x1c, 0x24] {
        f.write_config(bar, 4, 0xffff_ffff);
        assert_eq!(f.read_config(bar, 4), 0, "legacy mode: no other BARs");
    }
    f.write_config(0x20, 4, 0xc000);
    assert_eq!(f.read_config(0x20, 4), 0xc001);
    f.write_config(0x04, 2, 0x0005);
    assert_eq!(f.read_config(0x04, 2), 0x0005, "I/O space and bus master enables are writable");
    f.write_config(0x40, 4, 0x8000_8000);
    assert_eq!(f.read_config(0x40, 4), 0x8000_8000, "IDETIM");

    let mut fresh = Piix3Ide::new(RecordingIrqLine::new(), RecordingIrqLine::new(), None);
    assert_eq!(fresh.read_config(0x41, 1) & 0x80, 0, "decode disabled at reset, as on the chip");
    fresh.firmware_setup(0xc040);
    // ata_piix's piix_enable_bits: 0x41 and 0x43 bit 7.
    assert_eq!((fresh.read_config(0x41, 1) & 0x80, fresh.read_config(0x43, 1) & 0x80), (0x80, 0x80));
    assert_eq!(fresh.read_config(0x20, 4), 0xc041);
    assert_eq!(fresh.read_config(0x04, 2) & 0x5, 0x5, "I/O and bus master enabled");

    let ch0 = f.channel(0).unwrap();
    ch0.lock().unwrap().attach(0, IdeDrive::Ata(AtaDisk::new(Box::new(MemDisk::patterned(16, 512)), "p")));
    let mut cmd = IdeCommandBlock(ch0.clone());
    let mut ctl = IdeControlBlock(ch0);
    use rx86_core::bus::BusDevice;
    cmd.write(6, 1, 0xa0);
    cmd.write(7, 1, 0xec);
    assert!(irq14.level());
    assert_eq!(ctl.read(0, 1), 0x58);
    let mut bm = f.bus_master_ports();
    assert_eq!(bm.read(2, 1) & 4, 4, "interrupt bit follows the drive's interrupt");
    bm.write(8 + 4, 4, 0x1234);
    assert_eq!(bm.read(12, 4), 0x1234, "secondary channel at +8");
    assert_eq!(bm.read(4, 4), 0);
    assert_eq!(bm.read(16, 1), 0xff);
    f.flush_all().unwrap();
    f.reset();
    assert_eq!(ctl.read(0, 1), 0x50);
}
