//! One IDE channel: two device positions behind one set of task-file registers
//! (ATA/ATAPI-6, T13/1410D: section 7 registers, 9 protocols; SFF-8020i for the
//! PACKET protocol), the interrupt line and the channel's bus master DMA engine.
//!
//! Both devices see every register write (each keeps its own copy of the task file,
//! as real drives do); reads and commands go to the device the DEV bit selects. A
//! position with no device reads 0 when the other position is filled and the whole
//! channel floats (all-ones) when it is empty. Commands complete at once: there is no
//! BSY period a guest could observe, which every driver accepts.

use super::ata::{AtaDisk, MAX_MULTIPLE_SECTORS};
use super::atapi::{AtapiCdrom, PacketOutcome, Sense, CD_BLOCK_SIZE};
use super::busmaster::{
    BusMasterAction, BusMasterRegs, PrdError, PrdList, BM_COMMAND_START, BM_COMMAND_WRITE_MEMORY, BM_STATUS_ACTIVE,
    BM_STATUS_ERROR, BM_STATUS_INTERRUPT,
};
use super::identify::to_bytes;
use super::SharedDmaMemory;
use crate::block::{BlockError, SECTOR_SIZE};
use rx86_core::bus::BusDevice;
use rx86_core::irq::SharedIrqLine;
use std::sync::{Arc, Mutex};

// Command block register offsets (ATA-6 section 7.1).
/// Data register (16 or 32 bits).
const REG_DATA: u64 = 0;
/// Error (read) / Features (write).
const REG_ERROR_FEATURES: u64 = 1;
/// Sector Count (ATAPI: Interrupt Reason on read).
const REG_SECTOR_COUNT: u64 = 2;
/// LBA Low / Sector Number.
const REG_LBA_LOW: u64 = 3;
/// LBA High / Cylinder High (ATAPI: Byte Count high).
const REG_LBA_HIGH: u64 = 5;
/// Device/Head.
const REG_DEVICE: u64 = 6;
/// Status (read) / Command (write).
const REG_STATUS_COMMAND: u64 = 7;

// Status register bits (section 7.15).
/// BSY: the device is busy.
pub const STATUS_BSY: u8 = 0x80;
/// DRDY: the device accepts commands.
pub const STATUS_DRDY: u8 = 0x40;
/// DSC: device seek complete (ATAPI: SERV).
pub const STATUS_DSC: u8 = 0x10;
/// DRQ: data request.
pub const STATUS_DRQ: u8 = 0x08;
/// ERR: the previous command ended in error.
pub const STATUS_ERR: u8 = 0x01;

// Error register bits (section 7.9).
/// ABRT: command aborted.
pub const ERROR_ABRT: u8 = 0x04;
/// IDNF: address not found.
pub const ERROR_IDNF: u8 = 0x10;
/// UNC: uncorrectable data error.
pub const ERROR_UNC: u8 = 0x40;

// Device register bits (section 7.10).
/// LBA: bits 0-3 hold LBA 27:24 instead of the head.
const DEVICE_LBA: u8 = 0x40;
/// DEV: device 1 selected.
const DEVICE_DEV: u8 = 0x10;

// Device Control register bits (section 7.8).
/// nIEN: interrupt disable.
const CONTROL_NIEN: u8 = 0x02;
/// SRST: software reset.
const CONTROL_SRST: u8 = 0x04;
/// HOB: reads return the previous (high order) register contents.
const CONTROL_HOB: u8 = 0x80;

// ATAPI Interrupt Reason bits (SFF-8020i section 5.14.3).
/// CoD: command packet (1) or data (0).
const REASON_COD: u8 = 0x01;
/// IO: transfer to the host.
const REASON_IO: u8 = 0x02;

/// Sectors staged per DMA step.
const DMA_CHUNK_SECTORS: u64 = 128;
/// Default ATAPI byte count when the host gives 0 (SFF-8020i: treated as 0xFFFE).
const ATAPI_MAX_BYTE_COUNT: u16 = 0xfffe;

/// A device at one position of a channel.
pub enum IdeDrive {
    /// A hard disk.
    Ata(AtaDisk),
    /// A CD-ROM drive.
    Atapi(AtapiCdrom),
}

/// One device's copy of the task file.
#[derive(Debug, Default, Clone)]
struct TaskFile {
    features: u8,
    hob_features: u8,
    count: u8,
    hob_count: u8,
    lba: [u8; 3],
    hob_lba: [u8; 3],
    status: u8,
    error: u8,
}

/// Bytes the PACKET data phase still owes the host.
struct PacketData {
    /// Staged bytes and how many were sent.
    staged: Vec<u8>,
    sent: usize,
    /// Blocks still to read from the disc.
    next_lba: u64,
    blocks_left: u64,
}

impl PacketData {
    fn bytes(data: Vec<u8>) -> Self {
        PacketData { staged: data, sent: 0, next_lba: 0, blocks_left: 0 }
    }

    fn blocks(lba: u64, blocks: u64) -> Self {
        PacketData { staged: Vec::new(), sent: 0, next_lba: lba, blocks_left: blocks }
    }

    fn is_done(&self) -> bool {
        self.sent >= self.staged.len() && self.blocks_left == 0
    }

    /// The next piece of at most `max` bytes (whole blocks when reading the disc, at
    /// least one).
    fn next_chunk(&mut self, cd: &mut AtapiCdrom, max: usize) -> Result<Vec<u8>, Sense> {
        if self.sent < self.staged.len() {
            let take = (self.staged.len() - self.sent).min(max);
            self.sent += take;
            return Ok(self.staged[self.sent - take..self.sent].to_vec());
        }
        let blocks = (max as u64 / CD_BLOCK_SIZE).max(1).min(self.blocks_left);
        let data = cd.read_blocks(self.next_lba, blocks)?;
        self.next_lba += blocks;
        self.blocks_left -= blocks;
        Ok(data)
    }
}

/// What happens when the PIO buffer has been emptied or filled.
enum Pio {
    /// No data phase.
    Idle,
    /// ATA read: more sectors to load after this block.
    AtaRead { lba: u64, remaining: u64, block: u64, lba48: bool },
    /// ATA write: the buffer holds `block` sectors for `lba`.
    AtaWrite { lba: u64, remaining: u64, block: u64, lba48: bool },
    /// ATAPI: the buffer collects the command packet.
    Packet { dma: bool, byte_count: u16 },
    /// ATAPI data in: more after this chunk.
    PacketIn { data: PacketData, byte_count: u16 },
    /// A DMA command waiting for the bus master.
    Dma(DmaJob),
}

/// A DMA transfer a command set up.
enum DmaJob {
    AtaRead { lba: u64, sectors: u64, lba48: bool },
    AtaWrite { lba: u64, sectors: u64, lba48: bool },
    PacketIn(PacketData),
}

/// Why a command failed: the error register value for ATA, the sense for ATAPI.
enum Failure {
    Ata(u8),
    Atapi(Sense),
}

/// An IDE channel with up to two devices.
pub struct IdeChannel {
    name: &'static str,
    drives: [Option<IdeDrive>; 2],
    regs: [TaskFile; 2],
    device: u8,
    control: u8,
    irq: SharedIrqLine,
    irq_pending: bool,
    memory: Option<SharedDmaMemory>,
    buffer: Vec<u8>,
    pos: usize,
    pio: Pio,
    bm: BusMasterRegs,
}

impl IdeChannel {
    /// An empty channel named `name` (for logs) driving `irq`, doing bus master DMA
    /// through `memory` (`None`: DMA commands are aborted).
    pub fn new(name: &'static str, irq: SharedIrqLine, memory: Option<SharedDmaMemory>) -> Self {
        IdeChannel {
            name,
            drives: [None, None],
            regs: Default::default(),
            device: 0,
            control: 0,
            irq,
            irq_pending: false,
            memory,
            buffer: Vec::new(),
            pos: 0,
            pio: Pio::Idle,
            bm: BusMasterRegs::default(),
        }
    }

    /// Puts `drive` at `position` (0 = master, 1 = slave), in its reset state.
    pub fn attach(&mut self, position: usize, drive: IdeDrive) {
        let Some(slot) = self.drives.get_mut(position) else {
            log::error!("{}: no device position {position}", self.name);
            return;
        };
        *slot = Some(drive);
        self.reset_device(position);
    }

    /// The device at `position`, for the board (CD media changes, flushes).
    pub fn drive_mut(&mut self, position: usize) -> Option<&mut IdeDrive> {
        self.drives.get_mut(position)?.as_mut()
    }

    /// Flushes every writable disk (at exit).
    pub fn flush_all(&mut self) -> Result<(), BlockError> {
        for drive in self.drives.iter_mut().flatten() {
            if let IdeDrive::Ata(disk) = drive {
                disk.backend().flush()?;
            }
        }
        Ok(())
    }

    /// The position the DEV bit selects.
    fn selected(&self) -> usize {
        usize::from(self.device & DEVICE_DEV != 0)
    }

    fn has_any_drive(&self) -> bool {
        self.drives.iter().any(Option::is_some)
    }

    fn tf(&mut self) -> &mut TaskFile {
        let s = self.selected();
        &mut self.regs[s]
    }

    // ---- interrupt -------------------------------------------------------------

    fn update_irq(&self) {
        self.irq.set_level(self.irq_pending && self.control & CONTROL_NIEN == 0);
    }

    fn raise_irq(&mut self) {
        self.irq_pending = true;
        self.bm.status |= BM_STATUS_INTERRUPT;
        self.update_irq();
    }

    fn clear_irq(&mut self) {
        self.irq_pending = false;
        self.update_irq();
    }

    // ---- reset -------------------------------------------------------------------

    /// The power-on / reset signature of position `i` (ATA-6 section 9.12).
    fn reset_device(&mut self, i: usize) {
        let tf = &mut self.regs[i];
        *tf = TaskFile { count: 1, error: 0x01, ..TaskFile::default() };
        tf.lba = [1, 0, 0];
        match &mut self.drives[i] {
            Some(IdeDrive::Ata(_)) => tf.status = STATUS_DRDY | STATUS_DSC,
            Some(IdeDrive::Atapi(cd)) => {
                cd.reset();
                tf.lba = [1, 0x14, 0xeb];
                tf.status = 0;
            }
            None => tf.status = 0,
        }
    }

    fn soft_reset(&mut self) {
        self.pio = Pio::Idle;
        self.buffer.clear();
        self.pos = 0;
        for i in 0..2 {
            self.reset_device(i);
        }
        self.device &= !DEVICE_DEV;
    }

    /// Hardware reset of the channel (machine reset).
    pub fn reset(&mut self) {
        self.soft_reset();
        for d in self.drives.iter_mut().flatten() {
            if let IdeDrive::Ata(disk) = d {
                disk.reset_settings();
            }
        }
        self.control = 0;
        self.bm = BusMasterRegs::default();
        self.clear_irq();
    }

    // ---- register file ---------------------------------------------------------

    /// Reads a command block register (`offset` 0-7).
    pub fn read_command_block(&mut self, offset: u64, size: u8) -> u64 {
        if offset == REG_DATA {
            return self.read_data(size);
        }
        if !self.has_any_drive() {
            return rx86_core::bus::size_mask(size);
        }
        if self.drives[self.selected()].is_none() {
            return 0;
        }
        let hob = self.control & CONTROL_HOB != 0;
        let device = self.device;
        let tf = self.tf();
        let v = match offset {
            REG_ERROR_FEATURES => tf.error,
            REG_SECTOR_COUNT if hob => tf.hob_count,
            REG_SECTOR_COUNT => tf.count,
            REG_LBA_LOW..=REG_LBA_HIGH if hob => tf.hob_lba[(offset - REG_LBA_LOW) as usize],
            REG_LBA_LOW..=REG_LBA_HIGH => tf.lba[(offset - REG_LBA_LOW) as usize],
            REG_DEVICE => device,
            _ => {
                let status = tf.status;
                self.clear_irq();
                status
            }
        };
        u64::from(v)
    }

    /// Writes a command block register (`offset` 0-7).
    pub fn write_command_block(&mut self, offset: u64, size: u8, value: u64) {
        if offset == REG_DATA {
            self.write_data(size, value);
            return;
        }
        let byte = value as u8;
        if offset != REG_STATUS_COMMAND {
            self.control &= !CONTROL_HOB;
        }
        for tf in &mut self.regs {
            let (reg, hob) = match offset {
                REG_ERROR_FEATURES => (&mut tf.features, &mut tf.hob_features),
                REG_SECTOR_COUNT => (&mut tf.count, &mut tf.hob_count),
                REG_LBA_LOW..=REG_LBA_HIGH => {
                    let i = (offset - REG_LBA_LOW) as usize;
                    (&mut tf.lba[i], &mut tf.hob_lba[i])
                }
                _ => break,
            };
            *hob = *reg;
            *reg = byte;
        }
        match offset {
            REG_DEVICE => self.device = byte,
            REG_STATUS_COMMAND => self.command(byte),
            _ => {}
        }
    }

    /// Reads the control block: Alternate Status (does not clear the interrupt).
    pub fn read_control_block(&mut self, offset: u64, _size: u8) -> u64 {
        if offset != 0 {
            return 0xff;
        }
        if !self.has_any_drive() {
            return 0xff;
        }
        if self.drives[self.selected()].is_none() {
            return 0;
        }
        u64::from(self.tf().status)
    }

    /// Writes the control block: Device Control.
    pub fn write_control_block(&mut self, offset: u64, _size: u8, value: u64) {
        if offset != 0 {
            log::debug!("{}: write {value:#x} to control block offset {offset} ignored", self.name);
            return;
        }
        let value = value as u8;
        let was_reset = self.control & CONTROL_SRST != 0;
        self.control = value;
        if value & CONTROL_SRST != 0 && !was_reset {
            for tf in &mut self.regs {
                tf.status = STATUS_BSY;
            }
            self.pio = Pio::Idle;
        } else if value & CONTROL_SRST == 0 && was_reset {
            self.soft_reset();
        }
        self.update_irq();
    }

    // ---- data port -----------------------------------------------------------------

    fn read_data(&mut self, size: u8) -> u64 {
        if self.pos >= self.buffer.len() || !matches!(self.pio, Pio::AtaRead { .. } | Pio::PacketIn { .. }) {
            log::debug!("{}: data read with no data phase", self.name);
            return 0;
        }
        let mut v = 0u64;
        for i in 0..usize::from(size.min(4)) {
            if let Some(&b) = self.buffer.get(self.pos) {
                v |= u64::from(b) << (8 * i);
                self.pos += 1;
            }
        }
        if self.pos >= self.buffer.len() {
            self.pio_block_done();
        }
        v
    }

    fn write_data(&mut self, size: u8, value: u64) {
        if self.pos >= self.buffer.len() || !matches!(self.pio, Pio::AtaWrite { .. } | Pio::Packet { .. }) {
            log::debug!("{}: data write {value:#x} with no data phase", self.name);
            return;
        }
        for i in 0..usize::from(size.min(4)) {
            if self.pos < self.buffer.len() {
                self.buffer[self.pos] = (value >> (8 * i)) as u8;
                self.pos += 1;
            }
        }
        if self.pos >= self.buffer.len() {
            self.pio_block_done();
        }
    }

    /// Starts a PIO data block: `data` is the buffer (to send or to fill).
    fn start_block(&mut self, data: Vec<u8>, irq: bool) {
        self.buffer = data;
        self.pos = 0;
        self.tf().status = STATUS_DRDY | STATUS_DSC | STATUS_DRQ;
        if irq {
            self.raise_irq();
        }
    }

    fn pio_block_done(&mut self) {
        match std::mem::replace(&mut self.pio, Pio::Idle) {
            Pio::Idle | Pio::Dma(_) => {}
            Pio::AtaRead { lba, remaining, block, lba48 } => {
                if remaining == 0 {
                    self.tf().status = STATUS_DRDY | STATUS_DSC;
                } else {
                    self.ata_read_block(lba, remaining, block, lba48);
                }
            }
            Pio::AtaWrite { lba, remaining, block, lba48 } => {
                let data = std::mem::take(&mut self.buffer);
                if let Err(e) = self.disk_write(lba, &data) {
                    return self.fail(e);
                }
                self.set_lba(lba + block - 1, lba48);
                let (lba, remaining) = (lba + block, remaining - block);
                if remaining == 0 {
                    self.complete();
                } else {
                    let block = block.min(remaining);
                    self.pio = Pio::AtaWrite { lba, remaining, block, lba48 };
                    self.start_block(vec![0; (block * SECTOR_SIZE) as usize], true);
                }
            }
            Pio::Packet { dma, byte_count } => {
                let mut cdb = [0u8; 12];
                cdb.copy_from_slice(&self.buffer[..12]);
                self.packet(&cdb, dma, byte_count);
            }
            Pio::PacketIn { data, byte_count } => self.packet_data_in(data, byte_count),
        }
    }

    // ---- completion ------------------------------------------------------------------

    fn is_atapi(&self) -> bool {
        matches!(self.drives[self.selected()], Some(IdeDrive::Atapi(_)))
    }

    /// Successful end of a command, with interrupt.
    fn complete(&mut self) {
        self.pio = Pio::Idle;
        let atapi = self.is_atapi();
        let tf = self.tf();
        tf.status = STATUS_DRDY | STATUS_DSC;
        tf.error = 0;
        if atapi {
            tf.count = REASON_IO | REASON_COD;
        }
        self.raise_irq();
    }

    /// Failed end of a command, with interrupt.
    fn fail(&mut self, failure: Failure) {
        self.pio = Pio::Idle;
        self.buffer.clear();
        self.pos = 0;
        let tf = self.tf();
        tf.status = STATUS_DRDY | STATUS_DSC | STATUS_ERR;
        match failure {
            Failure::Ata(error) => tf.error = error,
            Failure::Atapi(sense) => {
                tf.error = sense.key << 4;
                tf.count = REASON_IO | REASON_COD;
            }
        }
        self.raise_irq();
    }

    fn abort(&mut self) {
        self.fail(Failure::Ata(ERROR_ABRT));
    }

    // ---- ATA addressing ----------------------------------------------------------------

    fn disk(&mut self) -> Option<&mut AtaDisk> {
        match self.drives[self.selected()].as_mut() {
            Some(IdeDrive::Ata(d)) => Some(d),
            _ => None,
        }
    }

    /// The command's starting sector, or `None` for a CHS address outside the translation.
    fn start_lba(&mut self, lba48: bool) -> Option<u64> {
        let device = self.device;
        let tf = self.tf().clone();
        let [low, mid, high] = tf.lba.map(u64::from);
        if lba48 {
            let [hl, hm, hh] = tf.hob_lba.map(u64::from);
            return Some(hh << 40 | hm << 32 | hl << 24 | high << 16 | mid << 8 | low);
        }
        if device & DEVICE_LBA != 0 {
            return Some(u64::from(device & 0x0f) << 24 | high << 16 | mid << 8 | low);
        }
        let geometry = self.disk()?.geometry;
        geometry.to_lba((high << 8 | mid) as u16, device & 0x0f, low as u8)
    }

    fn sector_count(&mut self, lba48: bool) -> u64 {
        let tf = self.tf();
        match (lba48, u64::from(tf.hob_count) << 8 | u64::from(tf.count)) {
            (true, 0) => 0x1_0000,
            (true, n) => n,
            (false, _) if tf.count == 0 => 256,
            (false, _) => u64::from(tf.count),
        }
    }

    /// Writes `lba` back to the task file in the command's addressing mode.
    fn set_lba(&mut self, lba: u64, lba48: bool) {
        let chs = self.device & DEVICE_LBA == 0 && !lba48;
        let geometry = self.disk().map(|d| d.geometry);
        let tf_device;
        {
            let device = self.device;
            let tf = self.tf();
            if chs {
                let Some(g) = geometry else { return };
                let (c, h, s) = g.from_lba(lba);
                tf.lba = [s, c as u8, (c >> 8) as u8];
                tf_device = (device & 0xf0) | h;
            } else {
                tf.lba = [lba as u8, (lba >> 8) as u8, (lba >> 16) as u8];
                if lba48 {
                    tf.hob_lba = [(lba >> 24) as u8, (lba >> 32) as u8, (lba >> 40) as u8];
                    tf_device = device;
                } else {
                    tf_device = (device & 0xf0) | ((lba >> 24) as u8 & 0x0f);
                }
            }
        }
        self.device = tf_device;
    }

    /// The validated (start, count) of a read/write command, or the error to report.
    fn ata_range(&mut self, lba48: bool) -> Result<(u64, u64), Failure> {
        let count = self.sector_count(lba48);
        let sectors = self.disk().map_or(0, |d| d.sectors());
        match self.start_lba(lba48) {
            Some(lba) if lba.checked_add(count).is_some_and(|end| end <= sectors) => Ok((lba, count)),
            Some(lba) => {
                log::debug!("{}: access of {count} sectors at {lba} beyond {sectors}", self.name);
                Err(Failure::Ata(ERROR_IDNF | ERROR_ABRT))
            }
            None => Err(Failure::Ata(ERROR_IDNF | ERROR_ABRT)),
        }
    }

    fn disk_read(&mut self, lba: u64, sectors: u64) -> Result<Vec<u8>, Failure> {
        let mut data = vec![0u8; (sectors * SECTOR_SIZE) as usize];
        let name = self.name;
        let disk = self.disk().ok_or(Failure::Ata(ERROR_ABRT))?;
        disk.backend().read_at(lba * SECTOR_SIZE, &mut data).map_err(|e| {
            log::error!("{name}: read of {sectors} sectors at {lba} failed: {e}");
            Failure::Ata(ERROR_UNC | ERROR_ABRT)
        })?;
        Ok(data)
    }

    fn disk_write(&mut self, lba: u64, data: &[u8]) -> Result<(), Failure> {
        let name = self.name;
        let disk = self.disk().ok_or(Failure::Ata(ERROR_ABRT))?;
        disk.backend().write_at(lba * SECTOR_SIZE, data).map_err(|e| {
            log::error!("{name}: write of {} bytes at sector {lba} failed: {e}", data.len());
            Failure::Ata(ERROR_ABRT)
        })
    }

    fn ata_read_block(&mut self, lba: u64, remaining: u64, block: u64, lba48: bool) {
        let n = block.min(remaining);
        match self.disk_read(lba, n) {
            Ok(data) => {
                self.set_lba(lba + n - 1, lba48);
                self.pio = Pio::AtaRead { lba: lba + n, remaining: remaining - n, block, lba48 };
                self.start_block(data, true);
            }
            Err(f) => self.fail(f),
        }
    }

    // ---- commands --------------------------------------------------------------------------

    fn command(&mut self, cmd: u8) {
        self.clear_irq();
        if cmd == 0x90 {
            return self.execute_device_diagnostic();
        }
        let atapi = match &self.drives[self.selected()] {
            None => {
                log::debug!("{}: command {cmd:#04x} to an empty position ignored", self.name);
                return;
            }
            Some(drive) => matches!(drive, IdeDrive::Atapi(_)),
        };
        self.pio = Pio::Idle;
        self.buffer.clear();
        self.pos = 0;
        self.tf().error = 0;
        if atapi {
            self.atapi_command(cmd);
        } else {
            self.ata_command(cmd);
        }
    }

    fn execute_device_diagnostic(&mut self) {
        self.soft_reset();
        self.raise_irq();
    }

    fn ata_command(&mut self, cmd: u8) {
        match cmd {
            0x20 | 0x21 => self.pio_read(false, 1),
            0x24 => self.pio_read(true, 1),
            0xc4 | 0x29 => self.pio_read_multiple(cmd == 0x29),
            0x30 | 0x31 => self.pio_write(false, 1),
            0x34 => self.pio_write(true, 1),
            0xc5 | 0x39 => self.pio_write_multiple(cmd == 0x39),
            0xc8 | 0xc9 => self.dma_command(false, false),
            0x25 => self.dma_command(true, false),
            0xca | 0xcb => self.dma_command(false, true),
            0x35 => self.dma_command(true, true),
            0x40..=0x42 => match self.ata_range(cmd == 0x42) {
                Ok((lba, count)) => {
                    self.set_lba(lba + count - 1, cmd == 0x42);
                    self.complete();
                }
                Err(f) => self.fail(f),
            },
            0x10..=0x1f | 0x70 => self.complete(),
            0x91 => {
                let (heads, spt) = ((self.device & 0x0f) + 1, self.tf().count);
                let ok = self.disk().is_some_and(|d| d.set_translation(heads, spt));
                if ok {
                    self.complete()
                } else {
                    self.abort()
                }
            }
            0xc6 => {
                let count = self.tf().count;
                let ok = count == 0 || (count.is_power_of_two() && u16::from(count) <= MAX_MULTIPLE_SECTORS);
                match self.disk() {
                    Some(d) if ok => {
                        d.multiple = u16::from(count);
                        self.complete();
                    }
                    _ => self.abort(),
                }
            }
            0xe0..=0xe3 | 0xe6 => self.complete(),
            0xe5 => {
                self.complete();
                self.tf().count = 0xff; // active or idle
            }
            0xe7 | 0xea => {
                let name = self.name;
                let result = self.disk().map(|d| d.backend().flush());
                match result {
                    Some(Ok(())) => self.complete(),
                    Some(Err(e)) => {
                        log::error!("{name}: flush failed: {e}");
                        self.abort();
                    }
                    None => self.abort(),
                }
            }
            0xec => {
                let id = self.disk().map(|d| d.identify());
                if let Some(id) = id {
                    self.start_block(to_bytes(&id), true);
                    self.pio = Pio::AtaRead { lba: 0, remaining: 0, block: 1, lba48: false };
                }
            }
            0xef => self.set_features(),
            0xf8 | 0x27 => {
                let lba48 = cmd == 0x27;
                let max = self.disk().map_or(0, |d| d.sectors()).saturating_sub(1);
                let max = if lba48 { max } else { max.min(0x0fff_ffff) };
                self.device |= DEVICE_LBA;
                self.set_lba(max, lba48);
                self.complete();
            }
            _ => {
                log::warn!("{}: unsupported ATA command {cmd:#04x} aborted", self.name);
                self.abort();
            }
        }
    }

    fn set_features(&mut self) {
        let (sub, value) = (self.tf().features, self.tf().count);
        match sub {
            0x03 => {
                let valid = matches!(value, 0x00 | 0x01 | 0x08..=0x0c | 0x20..=0x22 | 0x40..=0x45);
                match self.disk() {
                    Some(d) if valid => {
                        d.transfer_mode = value;
                        self.complete();
                    }
                    None if valid => self.complete(),
                    _ => self.abort(),
                }
            }
            0x02 | 0x82 | 0x55 | 0xaa | 0x66 | 0xcc => self.complete(),
            _ => {
                log::warn!("{}: SET FEATURES {sub:#04x} aborted", self.name);
                self.abort();
            }
        }
    }

    fn pio_read(&mut self, lba48: bool, block: u64) {
        match self.ata_range(lba48) {
            Ok((lba, count)) => self.ata_read_block(lba, count, block, lba48),
            Err(f) => self.fail(f),
        }
    }

    fn pio_write(&mut self, lba48: bool, block: u64) {
        match self.ata_range(lba48) {
            Ok((lba, remaining)) => {
                let block = block.min(remaining);
                self.pio = Pio::AtaWrite { lba, remaining, block, lba48 };
                self.start_block(vec![0; (block * SECTOR_SIZE) as usize], false);
            }
            Err(f) => self.fail(f),
        }
    }

    fn multiple_block(&mut self) -> Option<u64> {
        self.disk().map(|d| u64::from(d.multiple)).filter(|&m| m > 0)
    }

    fn pio_read_multiple(&mut self, lba48: bool) {
        match self.multiple_block() {
            Some(block) => self.pio_read(lba48, block),
            None => self.abort(),
        }
    }

    fn pio_write_multiple(&mut self, lba48: bool) {
        match self.multiple_block() {
            Some(block) => self.pio_write(lba48, block),
            None => self.abort(),
        }
    }

    fn dma_command(&mut self, lba48: bool, write: bool) {
        if self.memory.is_none() {
            log::warn!("{}: DMA command with no DMA memory attached", self.name);
            return self.abort();
        }
        match self.ata_range(lba48) {
            Ok((lba, sectors)) => {
                let job = if write {
                    DmaJob::AtaWrite { lba, sectors, lba48 }
                } else {
                    DmaJob::AtaRead { lba, sectors, lba48 }
                };
                self.start_dma(job);
            }
            Err(f) => self.fail(f),
        }
    }

    // ---- ATAPI -------------------------------------------------------------------------

    fn cdrom(&mut self) -> Option<&mut AtapiCdrom> {
        match self.drives[self.selected()].as_mut() {
            Some(IdeDrive::Atapi(d)) => Some(d),
            _ => None,
        }
    }

    fn atapi_command(&mut self, cmd: u8) {
        match cmd {
            0xa0 => {
                let tf = self.tf();
                let dma = tf.features & 1 != 0;
                let byte_count = match u16::from_le_bytes([tf.lba[1], tf.lba[2]]) & !1 {
                    0 => ATAPI_MAX_BYTE_COUNT,
                    n => n,
                };
                self.pio = Pio::Packet { dma, byte_count };
                self.start_block(vec![0; 12], false);
                self.tf().count = REASON_COD;
            }
            0xa1 => {
                let id = self.cdrom().map(|c| c.identify());
                if let Some(id) = id {
                    self.pio = Pio::AtaRead { lba: 0, remaining: 0, block: 1, lba48: false };
                    self.start_block(to_bytes(&id), true);
                }
            }
            0x08 => {
                let s = self.selected();
                self.reset_device(s);
            }
            0xe0..=0xe3 | 0xe6 => self.complete(),
            0xe5 => {
                self.complete();
                self.tf().count = 0xff;
            }
            0xef => self.set_features(),
            _ => {
                // ATA-6 9.12: an ATAPI device aborts other commands and shows its signature
                // so that IDENTIFY DEVICE probes can tell it apart.
                self.abort();
                let tf = self.tf();
                tf.count = 1;
                tf.lba = [1, 0x14, 0xeb];
            }
        }
    }

    fn packet(&mut self, cdb: &[u8; 12], dma: bool, byte_count: u16) {
        let Some(cd) = self.cdrom() else { return };
        match cd.execute(cdb) {
            PacketOutcome::NoData => self.complete(),
            PacketOutcome::Error(sense) => self.fail(Failure::Atapi(sense)),
            PacketOutcome::DataIn(data) => self.packet_data(PacketData::bytes(data), dma, byte_count),
            PacketOutcome::Read { lba, blocks } => self.packet_data(PacketData::blocks(lba, blocks), dma, byte_count),
        }
    }

    fn packet_data(&mut self, data: PacketData, dma: bool, byte_count: u16) {
        if dma {
            if self.memory.is_none() {
                return self.fail(Failure::Atapi(Sense::INVALID_FIELD));
            }
            self.start_dma(DmaJob::PacketIn(data));
        } else {
            self.packet_data_in(data, byte_count);
        }
    }

    /// Offers the next PIO chunk of a data-in packet, or completes.
    fn packet_data_in(&mut self, mut data: PacketData, byte_count: u16) {
        if data.is_done() {
            return self.complete();
        }
        let Some(cd) = self.cdrom() else { return };
        match data.next_chunk(cd, usize::from(byte_count)) {
            Ok(chunk) => {
                let len = chunk.len() as u16;
                self.pio = Pio::PacketIn { data, byte_count };
                self.start_block(chunk, false);
                let tf = self.tf();
                tf.count = REASON_IO;
                tf.lba[1] = len as u8;
                tf.lba[2] = (len >> 8) as u8;
                self.raise_irq();
            }
            Err(sense) => self.fail(Failure::Atapi(sense)),
        }
    }

    // ---- bus master DMA ------------------------------------------------------------

    fn start_dma(&mut self, job: DmaJob) {
        self.pio = Pio::Dma(job);
        self.tf().status = STATUS_DRDY | STATUS_DSC | STATUS_DRQ;
        if self.bm.command & BM_COMMAND_START != 0 {
            self.run_dma();
        }
    }

    /// Bus master register read (`offset` 0-7 of this channel's block).
    pub fn read_bus_master(&mut self, offset: u64, size: u8) -> u64 {
        self.bm.read(offset, size)
    }

    /// Bus master register write (`offset` 0-7 of this channel's block).
    pub fn write_bus_master(&mut self, offset: u64, size: u8, value: u64) {
        if self.bm.write(offset, size, value) == BusMasterAction::Started && matches!(self.pio, Pio::Dma(_)) {
            self.run_dma();
        }
    }

    /// Runs the pending DMA job to completion through the PRD table.
    fn run_dma(&mut self) {
        let Pio::Dma(job) = std::mem::replace(&mut self.pio, Pio::Idle) else { return };
        let Some(memory) = self.memory.clone() else { return };
        let to_memory = !matches!(job, DmaJob::AtaWrite { .. });
        if (self.bm.command & BM_COMMAND_WRITE_MEMORY != 0) != to_memory {
            log::warn!("{}: bus master direction does not match the command", self.name);
        }
        let atapi = matches!(job, DmaJob::PacketIn(_));
        let result = PrdList::load(memory.as_ref(), self.bm.prd_table)
            .map_err(DmaFailure::Prd)
            .and_then(|mut prd| self.dma_transfer(job, &mut prd, memory.as_ref()).map(|()| prd));
        match result {
            Ok(prd) => {
                if prd.exhausted() {
                    self.bm.status &= !BM_STATUS_ACTIVE;
                }
                self.complete();
            }
            Err(failure) => {
                log::warn!("{}: DMA failed: {failure:?}", self.name);
                self.bm.status = (self.bm.status | BM_STATUS_ERROR) & !BM_STATUS_ACTIVE;
                match failure {
                    DmaFailure::Device(f) => self.fail(f),
                    DmaFailure::Prd(_) | DmaFailure::TableTooShort if atapi => {
                        self.fail(Failure::Atapi(Sense::INVALID_FIELD))
                    }
                    DmaFailure::Prd(_) | DmaFailure::TableTooShort => self.abort(),
                }
            }
        }
    }

    fn dma_transfer(
        &mut self,
        job: DmaJob,
        prd: &mut PrdList,
        memory: &dyn super::DmaMemory,
    ) -> Result<(), DmaFailure> {
        let fits = |ok: bool| if ok { Ok(()) } else { Err(DmaFailure::TableTooShort) };
        match job {
            DmaJob::AtaRead { lba, sectors, lba48 } => {
                let mut done = 0;
                while done < sectors {
                    let n = (sectors - done).min(DMA_CHUNK_SECTORS);
                    let data = self.disk_read(lba + done, n).map_err(DmaFailure::Device)?;
                    fits(prd.scatter(memory, &data).map_err(DmaFailure::Prd)?)?;
                    done += n;
                    self.set_lba(lba + done - 1, lba48);
                }
            }
            DmaJob::AtaWrite { lba, sectors, lba48 } => {
                let mut done = 0;
                while done < sectors {
                    let n = (sectors - done).min(DMA_CHUNK_SECTORS);
                    let mut data = vec![0u8; (n * SECTOR_SIZE) as usize];
                    fits(prd.gather(memory, &mut data).map_err(DmaFailure::Prd)?)?;
                    self.disk_write(lba + done, &data).map_err(DmaFailure::Device)?;
                    done += n;
                    self.set_lba(lba + done - 1, lba48);
                }
            }
            DmaJob::PacketIn(mut data) => {
                while !data.is_done() {
                    let cd = self.cdrom().ok_or(DmaFailure::Device(Failure::Ata(ERROR_ABRT)))?;
                    let chunk = data.next_chunk(cd, 0x1_0000).map_err(|s| DmaFailure::Device(Failure::Atapi(s)))?;
                    fits(prd.scatter(memory, &chunk).map_err(DmaFailure::Prd)?)?;
                }
            }
        }
        Ok(())
    }
}

/// Why a DMA transfer stopped.
enum DmaFailure {
    Device(Failure),
    Prd(PrdError),
    TableTooShort,
}

impl std::fmt::Debug for DmaFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DmaFailure::Device(Failure::Ata(e)) => write!(f, "device error {e:#04x}"),
            DmaFailure::Device(Failure::Atapi(s)) => write!(f, "device sense {s:?}"),
            DmaFailure::Prd(e) => write!(f, "PRD table: {e:?}"),
            DmaFailure::TableTooShort => write!(f, "PRD table shorter than the transfer"),
        }
    }
}

/// A channel shared by its port devices and the board.
pub type SharedIdeChannel = Arc<Mutex<IdeChannel>>;

fn lock(channel: &SharedIdeChannel) -> std::sync::MutexGuard<'_, IdeChannel> {
    channel.lock().unwrap_or_else(|e| e.into_inner())
}

/// The command block ports (8 ports: 0x1F0-0x1F7 or 0x170-0x177).
pub struct IdeCommandBlock(pub SharedIdeChannel);

impl BusDevice for IdeCommandBlock {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        lock(&self.0).read_command_block(offset, size)
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        lock(&self.0).write_command_block(offset, size, value)
    }
}

/// The control block port (1 port: 0x3F6 or 0x376): Alternate Status / Device Control.
pub struct IdeControlBlock(pub SharedIdeChannel);

impl BusDevice for IdeControlBlock {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        lock(&self.0).read_control_block(offset, size)
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        lock(&self.0).write_control_block(offset, size, value)
    }
}
