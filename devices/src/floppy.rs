//! Intel 82077AA floppy disk controller in PC/AT mode (82077AA datasheet, May 1994:
//! section 2 registers, section 5 command set, table 5-1 result C/H/R/N), with data
//! moved by ISA DMA channel 2 ([`crate::dma8237`]) or, in non-DMA mode, through the
//! FIFO. Disks are 360 KB, 720 KB, 1.2 MB, 1.44 MB or 2.88 MB raw images, the geometry
//! chosen by image size.
//!
//! Commands complete at once (no rotational or seek delays); SEEK and RECALIBRATE
//! interrupt immediately and report through SENSE INTERRUPT STATUS. Non-DMA mode moves
//! the whole transfer through the FIFO with one interrupt at the end (no per-byte
//! interrupts).
//!
//! # Board wiring
//!
//! | ports          | device                                                      |
//! |----------------|-------------------------------------------------------------|
//! | 0x3F0-0x3F5    | the shared [`FloppyController`] (len 6, offset = port - 0x3F0) |
//! | 0x3F7          | [`FloppyDirPort`] over the same controller (DIR / CCR)      |
//! | IRQ            | ISA IRQ 6                                                   |
//! | DMA            | ISA DMA channel 2 ([`FLOPPY_DMA_CHANNEL`])                   |
//!
//! Port 0x3F6 belongs to the primary IDE channel's control block.

use crate::block::{BlockBackend, BlockError};
use crate::dma8237::SharedIsaDma;
use rx86_core::bus::BusDevice;
use rx86_core::irq::SharedIrqLine;
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// The ISA DMA channel of the floppy controller.
pub const FLOPPY_DMA_CHANNEL: usize = 2;
/// Bytes per sector (N = 2).
const SECTOR_SIZE: usize = 512;
/// Drives the controller addresses (DOR drive select 0-3).
const DRIVES: usize = 4;
/// SENSE INTERRUPT STATUS commands expected after a reset (one per drive, polling).
const RESET_SENSE_COUNT: u8 = 4;

// Register offsets (datasheet table 2-1).
/// Digital Output Register.
const REG_DOR: u64 = 2;
/// Tape Drive Register.
const REG_TDR: u64 = 3;
/// Main Status Register (read) / Data-rate Select Register (write).
const REG_MSR_DSR: u64 = 4;
/// Data (FIFO).
const REG_FIFO: u64 = 5;
/// Digital Input Register (read) / Configuration Control Register (write).
const REG_DIR_CCR: u64 = 7;

// DOR bits.
/// Bits 1:0: drive select.
const DOR_DRIVE_SELECT: u8 = 0b0000_0011;
/// nRESET: 0 holds the controller in reset.
const DOR_NRESET: u8 = 0b0000_0100;
/// DMAGATE#: enables the interrupt and DMA request outputs in AT mode.
const DOR_DMA_GATE: u8 = 0b0000_1000;
/// DSR bit 7: software reset (self-clearing).
const DSR_SW_RESET: u8 = 0b1000_0000;

// MSR bits.
/// RQM: the FIFO is ready for a transfer.
const MSR_RQM: u8 = 0x80;
/// DIO: transfer direction is controller to host.
const MSR_DIO: u8 = 0x40;
/// NON DMA: execution phase in non-DMA mode.
const MSR_NDMA: u8 = 0x20;
/// CB: command in progress.
const MSR_CB: u8 = 0x10;

// Status register 0.
/// IC = 01: abnormal termination.
const ST0_ABNORMAL: u8 = 0x40;
/// IC = 10: invalid command.
const ST0_INVALID: u8 = 0x80;
/// IC = 11: abnormal termination by polling (drive ready changed, after reset).
const ST0_READY_CHANGED: u8 = 0xc0;
/// SE: seek end.
const ST0_SEEK_END: u8 = 0x20;
// Status register 1.
/// EN: end of cylinder.
const ST1_END_OF_CYLINDER: u8 = 0x80;
/// OR: overrun/underrun.
const ST1_OVERRUN: u8 = 0x10;
/// ND: no data (sector not found).
const ST1_NO_DATA: u8 = 0x04;
/// NW: not writable.
const ST1_NOT_WRITABLE: u8 = 0x02;
/// MA: missing address mark.
const ST1_MISSING_ADDRESS_MARK: u8 = 0x01;
// Status register 2.
/// WC: wrong cylinder.
const ST2_WRONG_CYLINDER: u8 = 0x10;
// Status register 3.
/// WP: write protected.
const ST3_WRITE_PROTECTED: u8 = 0x40;
/// RDY: drive ready.
const ST3_READY: u8 = 0x20;
/// T0: track 0.
const ST3_TRACK0: u8 = 0x10;
/// TS: two-sided.
const ST3_TWO_SIDED: u8 = 0x08;

/// CONFIGURE bit 6: EIS, implied seek before read/write/verify.
const CONFIG_IMPLIED_SEEK: u8 = 0x40;
/// 82077AA VERSION result (enhanced controller).
const VERSION_82077: u8 = 0x90;

/// Supported disk formats: (bytes, cylinders, heads, sectors per track).
const FORMATS: [(u64, u8, u8, u8); 5] =
    [(368_640, 40, 2, 9), (737_280, 80, 2, 9), (1_228_800, 80, 2, 15), (1_474_560, 80, 2, 18), (2_949_120, 80, 2, 36)];

/// The (cylinders, heads, sectors per track) of the floppy format whose image is
/// `bytes` long, or `None` when no format has that size.
pub fn floppy_geometry(bytes: u64) -> Option<(u8, u8, u8)> {
    FORMATS.iter().find(|f| f.0 == bytes).map(|&(_, c, h, s)| (c, h, s))
}

/// Why an image cannot be a floppy disk.
#[derive(Debug, Error)]
pub enum FloppyError {
    /// The image size matches no floppy format.
    #[error("floppy image of {size} bytes is not a 360 KB, 720 KB, 1.2 MB, 1.44 MB or 2.88 MB disk")]
    UnknownSize {
        /// Image size.
        size: u64,
    },
    /// There is no drive with this number.
    #[error("floppy drive {0} does not exist (0 or 1)")]
    NoSuchDrive(usize),
}

/// A floppy disk: an image and its geometry.
pub struct FloppyDisk {
    backend: Box<dyn BlockBackend>,
    cylinders: u8,
    heads: u8,
    sectors_per_track: u8,
}

impl FloppyDisk {
    /// A disk over `backend`, its geometry taken from the image size.
    pub fn new(backend: Box<dyn BlockBackend>) -> Result<Self, FloppyError> {
        let size = backend.len();
        let (cylinders, heads, sectors_per_track) = floppy_geometry(size).ok_or(FloppyError::UnknownSize { size })?;
        Ok(FloppyDisk { backend, cylinders, heads, sectors_per_track })
    }

    /// (cylinders, heads, sectors per track).
    pub fn geometry(&self) -> (u8, u8, u8) {
        (self.cylinders, self.heads, self.sectors_per_track)
    }

    /// The image below (for firmware disk services).
    pub fn backend(&mut self) -> &mut dyn BlockBackend {
        self.backend.as_mut()
    }
}

/// One drive.
#[derive(Default)]
struct Drive {
    disk: Option<FloppyDisk>,
    /// Cylinder the head is on (present cylinder number).
    cylinder: u8,
    /// Next sector READ ID reports.
    id_sector: u8,
    /// Disk change line (DIR bit 7).
    changed: bool,
    /// ST0 of a completed seek awaiting SENSE INTERRUPT STATUS.
    seek_status: Option<u8>,
}

/// The command a data transfer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transfer {
    Read,
    Write,
    Format,
}

/// Controller phases (datasheet section 5.1).
enum Phase {
    /// Waiting for a command byte.
    Idle,
    /// Collecting the command's parameter bytes.
    Command { bytes: Vec<u8>, len: usize },
    /// Non-DMA execution: the host moves `data` through the FIFO.
    Execution { data: Vec<u8>, pos: usize, job: Job },
    /// The host reads the result bytes.
    Result { bytes: Vec<u8>, pos: usize },
}

/// A read/write/format in progress.
#[derive(Clone)]
struct Job {
    kind: Transfer,
    drive: usize,
    head: u8,
    /// Sectors the command covers, in order: (lba, C, H, R).
    sectors: Vec<(u64, u8, u8, u8)>,
    /// ST1 to report when the list runs out before terminal count.
    end_st1: u8,
    params: Vec<u8>,
}

/// The floppy controller.
pub struct FloppyController {
    drives: [Drive; DRIVES],
    dor: u8,
    tdr: u8,
    data_rate: u8,
    specify: [u8; 2],
    config: u8,
    pretrack: u8,
    perpendicular: u8,
    lock: bool,
    phase: Phase,
    irq: SharedIrqLine,
    irq_pending: bool,
    reset_sense: u8,
    dma: Option<SharedIsaDma>,
}

impl FloppyController {
    /// A controller with empty drives raising `irq` (ISA IRQ 6) and moving data
    /// through `dma` channel 2 (`None`: only non-DMA mode works). It comes up held
    /// in reset (DOR = 0), as after power-on.
    pub fn new(irq: SharedIrqLine, dma: Option<SharedIsaDma>) -> Self {
        FloppyController {
            drives: Default::default(),
            dor: 0,
            tdr: 0,
            data_rate: 0,
            specify: [0; 2],
            config: 0,
            pretrack: 0,
            perpendicular: 0,
            lock: false,
            phase: Phase::Idle,
            irq,
            irq_pending: false,
            reset_sense: 0,
            dma,
        }
    }

    /// Inserts `disk` in drive 0 (A:) or 1 (B:); the disk change line goes active.
    pub fn insert(&mut self, drive: usize, disk: FloppyDisk) -> Result<(), FloppyError> {
        let d = self.drives.get_mut(drive).filter(|_| drive < 2).ok_or(FloppyError::NoSuchDrive(drive))?;
        d.disk = Some(disk);
        d.changed = true;
        Ok(())
    }

    /// Removes the disk from `drive`; the disk change line goes active.
    pub fn eject(&mut self, drive: usize) -> Option<FloppyDisk> {
        let d = self.drives.get_mut(drive)?;
        d.changed = true;
        d.disk.take()
    }

    /// The disk in `drive`, for firmware disk services.
    pub fn disk_mut(&mut self, drive: usize) -> Option<&mut FloppyDisk> {
        self.drives.get_mut(drive)?.disk.as_mut()
    }

    /// Flushes every disk (at exit).
    pub fn flush_all(&mut self) -> Result<(), BlockError> {
        for d in self.drives.iter_mut().filter_map(|d| d.disk.as_mut()) {
            if !d.backend.read_only() {
                d.backend.flush()?;
            }
        }
        Ok(())
    }

    /// Machine reset: DOR cleared (controller held in reset).
    pub fn reset(&mut self) {
        self.dor = 0;
        self.soft_reset();
        self.reset_sense = 0;
        self.set_irq(false);
    }

    fn update_irq(&self) {
        self.irq.set_level(self.irq_pending && self.dor & DOR_DMA_GATE != 0);
    }

    fn set_irq(&mut self, pending: bool) {
        self.irq_pending = pending;
        self.update_irq();
    }

    /// Resets the controller core (not the DOR); LOCK keeps CONFIGURE's settings.
    fn soft_reset(&mut self) {
        self.phase = Phase::Idle;
        self.data_rate = 0;
        if !self.lock {
            self.config = 0;
            self.pretrack = 0;
        }
        self.perpendicular = 0;
        for d in &mut self.drives {
            d.seek_status = None;
        }
    }

    /// The end of a reset: interrupt, then four SENSE INTERRUPT STATUS answers.
    fn finish_reset(&mut self) {
        self.soft_reset();
        self.reset_sense = RESET_SENSE_COUNT;
        self.set_irq(true);
    }

    fn in_reset(&self) -> bool {
        self.dor & DOR_NRESET == 0
    }

    fn msr(&self) -> u8 {
        if self.in_reset() {
            return 0;
        }
        match &self.phase {
            Phase::Idle => MSR_RQM,
            Phase::Command { .. } => MSR_RQM | MSR_CB,
            Phase::Execution { job, .. } if job.kind == Transfer::Read => MSR_RQM | MSR_DIO | MSR_NDMA | MSR_CB,
            Phase::Execution { .. } => MSR_RQM | MSR_NDMA | MSR_CB,
            Phase::Result { .. } => MSR_RQM | MSR_DIO | MSR_CB,
        }
    }

    fn dir(&self) -> u8 {
        let d = &self.drives[usize::from(self.dor & DOR_DRIVE_SELECT)];
        u8::from(d.changed) << 7
    }

    fn write_dor(&mut self, value: u8) {
        let was_reset = self.in_reset();
        self.dor = value;
        if value & DOR_NRESET == 0 {
            if !was_reset {
                self.soft_reset();
                self.set_irq(false);
            }
        } else if was_reset {
            self.finish_reset();
        }
        self.update_irq();
    }

    // ---- FIFO --------------------------------------------------------------------

    fn read_fifo(&mut self) -> u8 {
        match &mut self.phase {
            Phase::Result { bytes, pos } => {
                let b = bytes[*pos];
                *pos += 1;
                if *pos == 1 {
                    self.irq_pending = false;
                    self.update_irq();
                }
                if let Phase::Result { bytes, pos } = &self.phase {
                    if *pos >= bytes.len() {
                        self.phase = Phase::Idle;
                    }
                }
                b
            }
            Phase::Execution { data, pos, job } if job.kind == Transfer::Read => {
                let b = data[*pos];
                *pos += 1;
                if *pos >= data.len() {
                    let job = job.clone();
                    let sectors = job.sectors.len();
                    self.finish(&job, sectors, true, 0);
                }
                b
            }
            _ => {
                log::debug!("floppy: FIFO read outside a result or read phase");
                0
            }
        }
    }

    fn write_fifo(&mut self, value: u8) {
        if self.in_reset() {
            return;
        }
        match &mut self.phase {
            Phase::Idle => {
                let len = command_length(value);
                if len == 0 {
                    log::warn!("floppy: invalid command {value:#04x}");
                    self.phase = Phase::Result { bytes: vec![ST0_INVALID], pos: 0 };
                } else if len == 1 {
                    self.execute(vec![value]);
                } else {
                    self.phase = Phase::Command { bytes: vec![value], len };
                }
            }
            Phase::Command { bytes, len } => {
                bytes.push(value);
                if bytes.len() == *len {
                    let bytes = std::mem::take(bytes);
                    self.execute(bytes);
                }
            }
            Phase::Execution { data, pos, job } if job.kind != Transfer::Read => {
                data[*pos] = value;
                *pos += 1;
                if *pos >= data.len() {
                    let (job, data) = (job.clone(), std::mem::take(data));
                    let done = self.apply_write(&job, &data);
                    self.finish(&job, done.0, done.1, done.2);
                }
            }
            _ => log::debug!("floppy: FIFO write {value:#04x} ignored in this phase"),
        }
    }

    // ---- commands ---------------------------------------------------------------------

    fn result(&mut self, bytes: Vec<u8>, irq: bool) {
        self.phase = Phase::Result { bytes, pos: 0 };
        if irq {
            self.set_irq(true);
        }
    }

    fn execute(&mut self, p: Vec<u8>) {
        let drive = usize::from(p.get(1).copied().unwrap_or(0) & 3);
        let head = p.get(1).copied().unwrap_or(0) >> 2 & 1;
        match p[0] {
            0x03 => {
                self.specify = [p[1], p[2]];
                self.phase = Phase::Idle;
            }
            0x04 => {
                let d = &self.drives[drive];
                let mut st3 = ST3_READY | ST3_TWO_SIDED | head << 2 | drive as u8;
                if d.cylinder == 0 {
                    st3 |= ST3_TRACK0;
                }
                if d.disk.as_ref().is_some_and(|k| k.backend.read_only()) {
                    st3 |= ST3_WRITE_PROTECTED;
                }
                self.result(vec![st3], false);
            }
            0x07 => self.seek(drive, head, 0),
            0x0f => self.seek(drive, head, p[2]),
            0x08 => self.sense_interrupt(),
            0x0e => {
                let c = |i: usize| self.drives[i].cylinder;
                let r = vec![
                    c(0),
                    c(1),
                    c(2),
                    c(3),
                    self.specify[0],
                    self.specify[1],
                    0,
                    u8::from(self.lock) << 7 | self.perpendicular,
                    self.config,
                    self.pretrack,
                ];
                self.result(r, false);
            }
            0x10 => self.result(vec![VERSION_82077], false),
            0x12 => {
                self.perpendicular = p[1] & 0x7f;
                self.phase = Phase::Idle;
            }
            0x13 => {
                self.config = p[2];
                self.pretrack = p[3];
                self.phase = Phase::Idle;
            }
            0x14 | 0x94 => {
                self.lock = p[0] & 0x80 != 0;
                self.result(vec![u8::from(self.lock) << 4], false);
            }
            c if c & 0x1f == 0x0a => self.read_id(drive, head),
            c if c & 0x1f == 0x06 => self.start_transfer(Transfer::Read, p),
            c if c & 0x1f == 0x05 => self.start_transfer(Transfer::Write, p),
            c if c & 0x1f == 0x0d => self.start_transfer(Transfer::Format, p),
            c => {
                log::warn!("floppy: invalid command {c:#04x}");
                self.result(vec![ST0_INVALID], false);
            }
        }
    }

    fn seek(&mut self, drive: usize, head: u8, cylinder: u8) {
        let d = &mut self.drives[drive];
        d.cylinder = cylinder;
        if d.disk.is_some() {
            d.changed = false;
        }
        d.seek_status = Some(ST0_SEEK_END | head << 2 | drive as u8);
        self.phase = Phase::Idle;
        self.set_irq(true);
    }

    fn sense_interrupt(&mut self) {
        if self.reset_sense > 0 {
            let drive = RESET_SENSE_COUNT - self.reset_sense;
            self.reset_sense -= 1;
            let pcn = self.drives[usize::from(drive)].cylinder;
            self.set_irq(false);
            return self.result(vec![ST0_READY_CHANGED | drive, pcn], false);
        }
        if let Some(i) = self.drives.iter().position(|d| d.seek_status.is_some()) {
            let st0 = self.drives[i].seek_status.take().unwrap_or_default();
            let pcn = self.drives[i].cylinder;
            self.set_irq(false);
            return self.result(vec![st0, pcn], false);
        }
        self.result(vec![ST0_INVALID], false);
    }

    fn read_id(&mut self, drive: usize, head: u8) {
        let st0 = head << 2 | drive as u8;
        let d = &mut self.drives[drive];
        let r = match &d.disk {
            Some(disk) if d.cylinder < disk.cylinders && head < disk.heads => {
                d.id_sector = d.id_sector % disk.sectors_per_track + 1;
                vec![st0, 0, 0, d.cylinder, head, d.id_sector, 2]
            }
            _ => vec![st0 | ST0_ABNORMAL, ST1_MISSING_ADDRESS_MARK, 0, d.cylinder, head, 1, 2],
        };
        self.result(r, true);
    }

    /// Validates a READ/WRITE DATA or FORMAT TRACK and runs or stages it.
    fn start_transfer(&mut self, kind: Transfer, p: Vec<u8>) {
        let drive = usize::from(p[1] & 3);
        let head = p[1] >> 2 & 1;
        if kind != Transfer::Format && self.config & CONFIG_IMPLIED_SEEK != 0 {
            self.drives[drive].cylinder = p[2];
        }
        let job = match self.plan(kind, drive, head, &p) {
            Ok(job) => job,
            Err((st1, st2)) => {
                let (c, h, r, n) = chrn(kind, &p);
                return self.result(vec![ST0_ABNORMAL | head << 2 | drive as u8, st1, st2, c, h, r, n], true);
            }
        };
        let non_dma = self.specify[1] & 1 != 0;
        if non_dma {
            let data = match kind {
                Transfer::Read => match self.read_sectors(&job, job.sectors.len()) {
                    Ok(d) => d,
                    Err(()) => return self.finish(&job, 0, false, ST1_NO_DATA),
                },
                Transfer::Write => vec![0; job.sectors.len() * SECTOR_SIZE],
                Transfer::Format => vec![0; job.sectors.len() * 4],
            };
            self.phase = Phase::Execution { data, pos: 0, job };
            return;
        }
        let Some(dma) = self.dma.clone() else {
            log::warn!("floppy: DMA transfer with no DMA controller attached");
            return self.finish(&job, 0, false, ST1_OVERRUN);
        };
        let mut dma = dma.lock().unwrap_or_else(|e| e.into_inner());
        match kind {
            Transfer::Read => {
                let data = match self.read_sectors(&job, job.sectors.len()) {
                    Ok(d) => d,
                    Err(()) => return self.finish(&job, 0, false, ST1_NO_DATA),
                };
                let t = dma.write_memory(FLOPPY_DMA_CHANNEL, &data);
                drop(dma);
                let done = t.bytes.div_ceil(SECTOR_SIZE);
                let status = if t.terminal_count || done == job.sectors.len() { 0 } else { ST1_OVERRUN };
                self.finish(&job, done, t.terminal_count, status);
            }
            Transfer::Write | Transfer::Format => {
                let unit = if kind == Transfer::Write { SECTOR_SIZE } else { 4 };
                let mut data = vec![0u8; job.sectors.len() * unit];
                let t = dma.read_memory(FLOPPY_DMA_CHANNEL, &mut data);
                drop(dma);
                let units = t.bytes.div_ceil(unit);
                data[t.bytes..].fill(0);
                let (done, _, st1) = self.apply_write(&job, &data[..units * unit]);
                let st1 = if st1 == 0 && !t.terminal_count && units < job.sectors.len() { ST1_OVERRUN } else { st1 };
                self.finish(&job, done, t.terminal_count, st1);
            }
        }
    }

    /// The sectors a command covers, or the (ST1, ST2) of its failure.
    fn plan(&self, kind: Transfer, drive: usize, head: u8, p: &[u8]) -> Result<Job, (u8, u8)> {
        let d = &self.drives[drive];
        let Some(disk) = &d.disk else { return Err((ST1_MISSING_ADDRESS_MARK, 0)) };
        if kind != Transfer::Read && disk.backend.read_only() {
            return Err((ST1_NOT_WRITABLE, 0));
        }
        let spt = disk.sectors_per_track;
        let lba = |c: u8, h: u8, r: u8| {
            (u64::from(c) * u64::from(disk.heads) + u64::from(h)) * u64::from(spt) + u64::from(r) - 1
        };
        let cyl = d.cylinder;
        if cyl >= disk.cylinders || head >= disk.heads {
            return Err((ST1_NO_DATA, 0));
        }
        if kind == Transfer::Format {
            // FORMAT TRACK: N, SC, GPL, D; the IDs come from the host.
            if p[2] != 2 || p[3] == 0 || p[3] > spt {
                return Err((ST1_NO_DATA, 0));
            }
            let sectors = (1..=p[3]).map(|r| (lba(cyl, head, r), cyl, head, r)).collect();
            return Ok(Job { kind, drive, head, sectors, end_st1: 0, params: p.to_vec() });
        }
        let (c, h, r, n, eot) = (p[2], p[3], p[4], p[5], p[6]);
        if c != cyl {
            return Err((ST1_NO_DATA, ST2_WRONG_CYLINDER));
        }
        if n != 2 || h != head || r == 0 || r > spt || r > eot {
            return Err((ST1_NO_DATA, 0));
        }
        let multi_track = p[0] & 0x80 != 0;
        let last = eot.min(spt);
        let end_st1 = if eot > spt { ST1_NO_DATA } else { ST1_END_OF_CYLINDER };
        let mut sectors: Vec<_> = (r..=last).map(|s| (lba(cyl, head, s), cyl, head, s)).collect();
        if multi_track && head == 0 && disk.heads > 1 {
            sectors.extend((1..=last).map(|s| (lba(cyl, 1, s), cyl, 1, s)));
        }
        Ok(Job { kind, drive, head, sectors, end_st1, params: p.to_vec() })
    }

    fn read_sectors(&mut self, job: &Job, count: usize) -> Result<Vec<u8>, ()> {
        let disk = self.drives[job.drive].disk.as_mut().ok_or(())?;
        let mut data = vec![0u8; count * SECTOR_SIZE];
        for (i, s) in job.sectors[..count].iter().enumerate() {
            disk.backend.read_at(s.0 * SECTOR_SIZE as u64, &mut data[i * SECTOR_SIZE..][..SECTOR_SIZE]).map_err(
                |e| {
                    log::error!("floppy: read of sector {} failed: {e}", s.0);
                },
            )?;
        }
        Ok(data)
    }

    /// Writes the sectors `data` holds (or formats the IDs it holds); returns (units
    /// done, terminal count, ST1).
    fn apply_write(&mut self, job: &Job, data: &[u8]) -> (usize, bool, u8) {
        let Some(disk) = self.drives[job.drive].disk.as_mut() else { return (0, false, ST1_MISSING_ADDRESS_MARK) };
        let (cylinders, heads, spt) = disk.geometry();
        let mut done = 0;
        match job.kind {
            Transfer::Write => {
                for (s, chunk) in job.sectors.iter().zip(data.chunks(SECTOR_SIZE)) {
                    let mut sector = [0u8; SECTOR_SIZE];
                    sector[..chunk.len()].copy_from_slice(chunk);
                    if let Err(e) = disk.backend.write_at(s.0 * SECTOR_SIZE as u64, &sector) {
                        log::error!("floppy: write of sector {} failed: {e}", s.0);
                        return (done, false, ST1_NOT_WRITABLE);
                    }
                    done += 1;
                }
            }
            Transfer::Format => {
                let filler = job.params[5];
                for id in data.chunks_exact(4) {
                    let (c, h, r) = (id[0], id[1], id[2]);
                    if c >= cylinders || h >= heads || r == 0 || r > spt {
                        return (done, false, ST1_NO_DATA);
                    }
                    let lba = (u64::from(c) * u64::from(heads) + u64::from(h)) * u64::from(spt) + u64::from(r) - 1;
                    if let Err(e) = disk.backend.write_at(lba * SECTOR_SIZE as u64, &[filler; SECTOR_SIZE]) {
                        log::error!("floppy: format of sector {lba} failed: {e}");
                        return (done, false, ST1_NOT_WRITABLE);
                    }
                    done += 1;
                }
            }
            Transfer::Read => {}
        }
        (done, true, 0)
    }

    /// Result phase of a read/write/format after `done` sectors: normal at terminal
    /// count or when every sector was moved; `st1` reports a failure.
    fn finish(&mut self, job: &Job, done: usize, terminal_count: bool, st1: u8) {
        let base = job.head << 2 | job.drive as u8;
        let p = &job.params;
        let (st0, st1) = if st1 != 0 {
            (ST0_ABNORMAL | base, st1)
        } else if terminal_count || job.kind == Transfer::Format {
            (base, 0)
        } else {
            (ST0_ABNORMAL | base, job.end_st1)
        };
        let (c, h, r, n) = match (job.kind, done.checked_sub(1).and_then(|i| job.sectors.get(i))) {
            (Transfer::Format, _) | (_, None) => chrn(job.kind, p),
            (_, Some(&(_, c, h, r))) => {
                let eot = p[6];
                let multi_track = p[0] & 0x80 != 0;
                match (r >= eot, multi_track, h) {
                    (false, _, _) => (c, h, r + 1, p[5]),
                    (true, true, 0) => (c, 1, 1, p[5]),
                    (true, true, _) => (c.wrapping_add(1), 0, 1, p[5]),
                    (true, false, _) => (c.wrapping_add(1), h, 1, p[5]),
                }
            }
        };
        self.result(vec![st0, st1, 0, c, h, r, n], true);
    }
}

/// The C, H, R, N a command names (FORMAT TRACK reports its N only).
fn chrn(kind: Transfer, p: &[u8]) -> (u8, u8, u8, u8) {
    match kind {
        Transfer::Format => (0, 0, 0, p[2]),
        _ => (p[2], p[3], p[4], p[5]),
    }
}

/// Bytes of the command `first` starts (0 = invalid).
fn command_length(first: u8) -> usize {
    match first {
        0x03 => 3,
        0x04 => 2,
        0x07 => 2,
        0x08 => 1,
        0x0e => 1,
        0x0f => 3,
        0x10 => 1,
        0x12 => 2,
        0x13 => 4,
        0x14 | 0x94 => 1,
        c if c & 0xbf == 0x0a => 2,
        c if c & 0xbf == 0x0d => 6,
        c if c & 0x1f == 0x06 || c & 0x3f == 0x05 => 9,
        _ => 0,
    }
}

impl BusDevice for FloppyController {
    fn read(&mut self, offset: u64, _size: u8) -> u64 {
        u64::from(match offset {
            REG_DOR => self.dor,
            REG_TDR => self.tdr,
            REG_MSR_DSR => self.msr(),
            REG_FIFO => self.read_fifo(),
            REG_DIR_CCR => self.dir(),
            _ => 0xff,
        })
    }

    fn write(&mut self, offset: u64, _size: u8, value: u64) {
        let value = value as u8;
        match offset {
            REG_DOR => self.write_dor(value),
            REG_TDR => self.tdr = value & 3,
            REG_MSR_DSR => {
                self.data_rate = value & 3;
                if value & DSR_SW_RESET != 0 && !self.in_reset() {
                    self.finish_reset();
                }
            }
            REG_FIFO => self.write_fifo(value),
            REG_DIR_CCR => self.data_rate = value & 3,
            _ => log::debug!("floppy: write {value:#04x} to read-only register {offset}"),
        }
    }
}

/// Port 0x3F7 (Digital Input Register / Configuration Control Register) of a shared
/// controller, since 0x3F6 between it and the others belongs to IDE.
pub struct FloppyDirPort(pub Arc<Mutex<FloppyController>>);

impl BusDevice for FloppyDirPort {
    fn read(&mut self, _offset: u64, size: u8) -> u64 {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).read(REG_DIR_CCR, size)
    }

    fn write(&mut self, _offset: u64, size: u8, value: u64) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).write(REG_DIR_CCR, size, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{pattern_byte, MemDisk};
    use crate::dma8237::{DmaPageRegisters, IsaDma, IsaDmaPorts};
    use rx86_core::irq::RecordingIrqLine;
    use rx86_core::phys::PhysMemory;

    const FLOPPY_144: u64 = 1_474_560 / 512;

    struct Rig {
        fdc: FloppyController,
        irq: Arc<RecordingIrqLine>,
        dma1: IsaDmaPorts,
        pages: DmaPageRegisters,
        mem: Arc<PhysMemory>,
    }

    impl Rig {
        fn new(sectors: u64, read_only: bool) -> Self {
            let mem = crate::ide::tests_support::ram();
            let dma = IsaDma::shared(Some(mem.clone()));
            let irq = RecordingIrqLine::new();
            let mut fdc = FloppyController::new(irq.clone(), Some(dma.clone()));
            let mut disk = MemDisk::patterned(sectors, 512);
            disk.read_only = read_only;
            fdc.insert(0, FloppyDisk::new(Box::new(disk)).unwrap()).unwrap();
            let mut rig = Rig { fdc, irq, dma1: IsaDmaPorts::dma1(dma.clone()), pages: DmaPageRegisters(dma), mem };
            rig.fdc.write(REG_DOR, 1, 0x1c); // motor A, DMA gate, out of reset, drive 0
            for _ in 0..4 {
                rig.cmd(&[0x08]);
                rig.results(2);
            }
            rig
        }

        fn cmd(&mut self, bytes: &[u8]) {
            for &b in bytes {
                assert_ne!(self.fdc.read(REG_MSR_DSR, 1) as u8 & MSR_RQM, 0, "RQM before each command byte");
                self.fdc.write(REG_FIFO, 1, u64::from(b));
            }
        }

        fn results(&mut self, n: usize) -> Vec<u8> {
            (0..n)
                .map(|_| {
                    assert_eq!(self.fdc.read(REG_MSR_DSR, 1) as u8 & 0xc0, 0xc0, "RQM and DIO in the result phase");
                    self.fdc.read(REG_FIFO, 1) as u8
                })
                .collect()
        }

        fn msr(&mut self) -> u8 {
            self.fdc.read(REG_MSR_DSR, 1) as u8
        }

        /// DMA channel 2, `mode` (0x46 write to memory, 0x4a read from memory).
        fn dma(&mut self, mode: u8, addr: u32, bytes: u16) {
            self.dma1.write(0x0a, 1, 0x06);
            self.dma1.write(0x0c, 1, 0);
            self.dma1.write(0x0b, 1, u64::from(mode));
            self.dma1.write(0x04, 1, u64::from(addr & 0xff));
            self.dma1.write(0x04, 1, u64::from(addr >> 8 & 0xff));
            self.pages.write(0, 1, u64::from(addr >> 16));
            self.dma1.write(0x05, 1, u64::from((bytes - 1) & 0xff));
            self.dma1.write(0x05, 1, u64::from((bytes - 1) >> 8));
            self.dma1.write(0x0a, 1, 0x02);
        }

        fn seek(&mut self, cyl: u8, head: u8) {
            self.cmd(&[0x0f, head << 2, cyl]);
            self.cmd(&[0x08]);
            assert_eq!(self.results(2), [ST0_SEEK_END | head << 2, cyl]);
        }
    }

    fn pattern(lba: u64, sectors: u64) -> Vec<u8> {
        (lba * 512..(lba + sectors) * 512).map(|i| pattern_byte(i, 512)).collect()
    }

    #[test]
    fn reset_sequence_and_sense_interrupt() {
        let irq = RecordingIrqLine::new();
        let mut fdc = FloppyController::new(irq.clone(), None);
        assert_eq!(fdc.read(REG_MSR_DSR, 1), 0, "held in reset at power-on");
        fdc.write(REG_DOR, 1, 0x0c);
        assert!(irq.level(), "reset completion interrupts");
        assert_eq!(fdc.read(REG_MSR_DSR, 1), 0x80);
        for drive in 0..4u64 {
            fdc.write(REG_FIFO, 1, 0x08);
            assert_eq!(fdc.read(REG_MSR_DSR, 1), 0xd0);
            assert_eq!(fdc.read(REG_FIFO, 1), 0xc0 | drive);
            assert_eq!(fdc.read(REG_FIFO, 1), 0);
            assert!(!irq.level());
        }
        fdc.write(REG_FIFO, 1, 0x08);
        assert_eq!(fdc.read(REG_FIFO, 1), 0x80, "nothing pending: invalid");
        assert_eq!(fdc.read(REG_MSR_DSR, 1), 0x80, "single result byte");
        fdc.write(REG_MSR_DSR, 1, 0x80);
        assert!(irq.level(), "DSR software reset");
        fdc.write(REG_DOR, 1, 0x04);
        assert!(!irq.level(), "DMA gate off masks the interrupt");
        fdc.write(REG_FIFO, 1, 0x10);
        assert_eq!(fdc.read(REG_FIFO, 1), 0x90, "VERSION: 82077");
        fdc.write(REG_FIFO, 1, 0x1f);
        assert_eq!(fdc.read(REG_FIFO, 1), 0x80, "invalid opcode");
    }

    #[test]
    fn seek_recalibrate_and_disk_change() {
        let mut rig = Rig::new(FLOPPY_144, false);
        assert_eq!(rig.fdc.read(REG_DIR_CCR, 1) & 0x80, 0x80, "change line after insert");
        rig.seek(40, 1);
        assert_eq!(rig.fdc.read(REG_DIR_CCR, 1) & 0x80, 0, "a seek with a disk clears it");
        rig.cmd(&[0x04, 0x00]);
        assert_eq!(rig.results(1)[0] & (ST3_TRACK0 | ST3_READY), ST3_READY);
        rig.cmd(&[0x07, 0x00]);
        assert!(rig.irq.level());
        rig.cmd(&[0x08]);
        assert_eq!(rig.results(2), [0x20, 0]);
        rig.cmd(&[0x04, 0x00]);
        assert_ne!(rig.results(1)[0] & ST3_TRACK0, 0);
        rig.fdc.eject(0);
        assert_eq!(rig.fdc.read(REG_DIR_CCR, 1) & 0x80, 0x80);
        let mut dir = FloppyDirPort(Arc::new(Mutex::new(FloppyController::new(RecordingIrqLine::new(), None))));
        assert_eq!(dir.read(0, 1), 0);
    }

    #[test]
    fn dma_read_stops_at_terminal_count() {
        let mut rig = Rig::new(FLOPPY_144, false);
        rig.seek(2, 0);
        rig.dma(0x46, 0x1_0000, 1024);
        rig.irq.clear();
        rig.cmd(&[0xe6, 0x00, 2, 0, 3, 2, 18, 0x1b, 0xff]);
        assert!(rig.irq.level());
        assert_eq!(rig.results(7), [0, 0, 0, 2, 0, 5, 2], "normal, next sector 5");
        assert!(!rig.irq.level());
        let mut got = vec![0u8; 1024];
        rig.mem.dma_read(0x1_0000, &mut got).unwrap();
        assert_eq!(got, pattern((2 * 2) * 18 + 2, 2));
    }

    #[test]
    fn multi_track_read_to_the_end_of_the_cylinder() {
        let mut rig = Rig::new(FLOPPY_144, false);
        rig.seek(1, 0);
        rig.dma(0x46, 0x2_0000, 36 * 512);
        rig.cmd(&[0xe6, 0x00, 1, 0, 1, 2, 18, 0x1b, 0xff]);
        assert_eq!(rig.results(7), [0, 0, 0, 2, 0, 1, 2], "both heads read: C+1, H 0, R 1");
        let mut got = vec![0u8; 36 * 512];
        rig.mem.dma_read(0x2_0000, &mut got).unwrap();
        assert_eq!(got, pattern(36, 36));
        // Head 0 to EOT without MT ends on the next cylinder too; a longer DMA count
        // than the sectors is an end-of-cylinder termination.
        rig.dma(0x46, 0x2_0000, 4096);
        rig.cmd(&[0x46, 0x00, 1, 0, 17, 2, 18, 0x1b, 0xff]);
        assert_eq!(rig.results(7), [ST0_ABNORMAL, ST1_END_OF_CYLINDER, 0, 2, 0, 1, 2]);
    }

    #[test]
    fn dma_write_reaches_the_image() {
        let mut rig = Rig::new(FLOPPY_144, false);
        rig.mem.dma_write(0x3000, &[0xa5; 512]).unwrap();
        rig.dma(0x4a, 0x3000, 512);
        rig.cmd(&[0xc5, 0x04, 0, 1, 18, 2, 18, 0x1b, 0xff]);
        assert_eq!(rig.results(7), [0x04, 0, 0, 1, 0, 1, 2], "last sector of head 1: C+1, H 0");
        assert!(rig.fdc.disk_mut(1).is_none());
        let disk = rig.fdc.disk_mut(0).unwrap();
        let mut s = [0u8; 512];
        disk.backend.read_at(35 * 512, &mut s).unwrap();
        assert_eq!(s, [0xa5; 512]);
        disk.backend.read_at(34 * 512, &mut s).unwrap();
        assert_eq!(s.to_vec(), pattern(34, 1));
        rig.fdc.flush_all().unwrap();
    }

    #[test]
    fn errors_are_status_not_panics() {
        let mut rig = Rig::new(FLOPPY_144, true);
        rig.dma(0x4a, 0x3000, 512);
        rig.cmd(&[0xc5, 0x00, 0, 0, 1, 2, 18, 0x1b, 0xff]);
        assert_eq!(rig.results(7)[..3], [ST0_ABNORMAL, ST1_NOT_WRITABLE, 0], "write protected");
        rig.cmd(&[0xe6, 0x00, 5, 0, 1, 2, 18, 0x1b, 0xff]);
        assert_eq!(rig.results(7)[..3], [ST0_ABNORMAL, ST1_NO_DATA, ST2_WRONG_CYLINDER], "head is on cylinder 0");
        rig.cmd(&[0xe6, 0x00, 0, 0, 19, 2, 18, 0x1b, 0xff]);
        assert_eq!(rig.results(7)[..2], [ST0_ABNORMAL, ST1_NO_DATA], "sector 19 does not exist");
        rig.cmd(&[0xe6, 0x00, 0, 0, 1, 3, 18, 0x1b, 0xff]);
        assert_eq!(rig.results(7)[..2], [ST0_ABNORMAL, ST1_NO_DATA], "only 512-byte sectors");
        rig.seek(200, 0);
        rig.cmd(&[0xe6, 0x00, 200, 0, 1, 2, 18, 0x1b, 0xff]);
        assert_eq!(rig.results(7)[..2], [ST0_ABNORMAL, ST1_NO_DATA], "past the last cylinder");
        rig.seek(0, 0);
        rig.dma1.write(0x0a, 1, 0x06);
        rig.cmd(&[0xe6, 0x00, 0, 0, 1, 2, 18, 0x1b, 0xff]);
        assert_eq!(rig.results(7)[..2], [ST0_ABNORMAL, ST1_OVERRUN], "masked DMA channel");
        rig.fdc.eject(0);
        rig.cmd(&[0xe6, 0x01, 0, 0, 1, 2, 18, 0x1b, 0xff]);
        assert_eq!(rig.results(7)[..2], [ST0_ABNORMAL | 1, ST1_MISSING_ADDRESS_MARK], "empty drive B");
        assert!(matches!(
            rig.fdc.insert(2, FloppyDisk::new(Box::new(MemDisk::patterned(720, 512))).unwrap()),
            Err(FloppyError::NoSuchDrive(2))
        ));
    }

    #[test]
    fn non_dma_read_through_the_fifo() {
        let mut rig = Rig::new(FLOPPY_144, false);
        rig.cmd(&[0x03, 0xdf, 0x03]); // SPECIFY, ND = 1
        rig.cmd(&[0x66, 0x00, 0, 0, 7, 2, 7, 0x1b, 0xff]);
        assert_eq!(rig.msr(), 0xf0, "RQM DIO NDMA CB");
        let data: Vec<u8> = (0..512).map(|_| rig.fdc.read(REG_FIFO, 1) as u8).collect();
        assert_eq!(data, pattern(6, 1));
        assert_eq!(rig.results(7), [0, 0, 0, 1, 0, 1, 2]);
        rig.cmd(&[0x45, 0x00, 0, 0, 2, 2, 2, 0x1b, 0xff]);
        assert_eq!(rig.msr(), 0xb0, "RQM NDMA CB: host to controller");
        for _ in 0..512 {
            rig.fdc.write(REG_FIFO, 1, 0x3c);
        }
        assert_eq!(rig.results(7)[..4], [0, 0, 0, 1], "R = EOT: next cylinder");
        let disk = rig.fdc.drives[0].disk.as_mut().unwrap();
        let mut s = [0u8; 512];
        disk.backend.read_at(512, &mut s).unwrap();
        assert_eq!(s, [0x3c; 512]);
    }

    #[test]
    fn geometries_by_image_size() {
        for (bytes, geometry) in [
            (368_640u64, (40, 2, 9)),
            (737_280, (80, 2, 9)),
            (1_228_800, (80, 2, 15)),
            (1_474_560, (80, 2, 18)),
            (2_949_120, (80, 2, 36)),
        ] {
            let mut disk = FloppyDisk::new(Box::new(MemDisk::patterned(bytes / 512, 512))).unwrap();
            assert_eq!(disk.geometry(), geometry);
            assert_eq!(disk.backend().len(), bytes);
        }
        let e = FloppyDisk::new(Box::new(MemDisk::patterned(3, 512))).err().unwrap();
        assert!(e.to_string().contains("1536 bytes"), "{e}");

        // 360 KB: last sector is cylinder 39, head 1, sector 9.
        let mut rig = Rig::new(720, false);
        rig.seek(39, 1);
        rig.dma(0x46, 0x4000, 512);
        rig.cmd(&[0x66, 0x04, 39, 1, 9, 2, 9, 0x2a, 0xff]);
        assert_eq!(rig.results(7)[..2], [0x04, 0]);
        let mut got = vec![0u8; 512];
        rig.mem.dma_read(0x4000, &mut got).unwrap();
        assert_eq!(got, pattern(719, 1));
        // 2.88 MB: cylinder 1, head 1, sector 36.
        let mut rig = Rig::new(5760, false);
        rig.seek(1, 1);
        rig.dma(0x46, 0x4000, 512);
        rig.cmd(&[0x66, 0x04, 1, 1, 36, 2, 36, 0x1b, 0xff]);
        assert_eq!(rig.results(7)[0], 0x04);
        rig.mem.dma_read(0x4000, &mut got).unwrap();
        assert_eq!(got, pattern(2 * 36 + 36 + 35, 1));
    }

    #[test]
    fn read_id_dumpreg_configure_and_format() {
        let mut rig = Rig::new(1440, false);
        rig.seek(3, 0);
        rig.cmd(&[0x4a, 0x00]);
        assert_eq!(rig.results(7), [0, 0, 0, 3, 0, 1, 2]);
        rig.cmd(&[0x13, 0, CONFIG_IMPLIED_SEEK, 0]);
        rig.cmd(&[0x94]);
        assert_eq!(rig.results(1), [0x10]);
        rig.cmd(&[0x0e]);
        let regs = rig.results(10);
        assert_eq!((regs[0], regs[7] >> 7, regs[8]), (3, 1, CONFIG_IMPLIED_SEEK));
        rig.fdc.write(REG_MSR_DSR, 1, 0x80);
        for _ in 0..4 {
            rig.cmd(&[0x08]);
            rig.results(2);
        }
        rig.cmd(&[0x0e]);
        assert_eq!(rig.results(10)[8], CONFIG_IMPLIED_SEEK, "LOCK keeps CONFIGURE across reset");
        // Implied seek: read cylinder 5 without a SEEK.
        rig.dma(0x46, 0x5000, 512);
        rig.cmd(&[0x46, 0x00, 5, 0, 1, 2, 1, 0x1b, 0xff]);
        assert_eq!(rig.results(7)[..4], [0, 0, 0, 6]);
        // FORMAT TRACK of cylinder 5, head 0, 9 sectors of 0xf6.
        let ids: Vec<u8> = (1..=9u8).flat_map(|r| [5, 0, r, 2]).collect();
        rig.mem.dma_write(0x6000, &ids).unwrap();
        rig.dma(0x4a, 0x6000, 36);
        rig.cmd(&[0x4d, 0x00, 2, 9, 0x50, 0xf6]);
        assert_eq!(rig.results(7)[..3], [0, 0, 0]);
        let disk = rig.fdc.drives[0].disk.as_mut().unwrap();
        let mut s = vec![0u8; 9 * 512];
        disk.backend.read_at(90 * 512, &mut s).unwrap();
        assert!(s.iter().all(|&b| b == 0xf6));
    }

    /// Deterministic fuzz of the register file: random port traffic never panics and
    /// the image keeps its size.
    #[test]
    fn fuzz_register_file() {
        let mut rig = Rig::new(FLOPPY_144, false);
        rig.dma(0x46, 0x1_0000, 0xffff);
        let mut seed = 0x1357_9bdfu32;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for _ in 0..200_000 {
            let r = rnd();
            let v = u64::from(rnd() as u8);
            let reg = u64::from(r >> 8) % 8;
            match r % 5 {
                0 | 1 => rig.fdc.write(REG_FIFO, 1, v),
                2 => {
                    rig.fdc.read(reg, 1);
                }
                3 => rig.fdc.write(reg, 1, v | u64::from(DOR_NRESET)),
                _ => {
                    rig.fdc.read(REG_FIFO, 1);
                }
            }
        }
        let disk = rig.fdc.drives[0].disk.as_ref().unwrap();
        assert_eq!(disk.backend.len(), 1_474_560);
    }
}
