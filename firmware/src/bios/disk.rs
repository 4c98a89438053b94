//! INT 13h: disk services for floppies (drives 00h-01h), hard disks (80h-83h) and the
//! CD-ROM (E0h, 2048-byte sectors), with the IBM/Phoenix Enhanced Disk Drive
//! extensions (AH=41h-48h, EDD 3.0) and El Torito's AH=4Bh.
//!
//! The services read and write the disk images directly (the same images the IDE and
//! floppy controllers serve). Every guest value is checked: a sector outside the
//! medium is status 04h (sector not found), a bad parameter 01h, a write to
//! read-only media 03h; nothing is read or written outside the image.

use super::eltorito::{self, BootImage, Media, CD_SECTOR};
use super::frame::Frame;
use super::{bda, read_u16, read_u32, read_u8, rom, unsupported, write_u16, Action};
use rx86_core::phys::PhysMemory;
use rx86_core::platform::Platform;
use rx86_devices::block::{BlockBackend, SharedBackend};
use rx86_devices::floppy::floppy_geometry;

/// Status: invalid function or parameter.
const ST_INVALID: u8 = 0x01;
/// Status: write-protected medium.
const ST_WRITE_PROTECTED: u8 = 0x03;
/// Status: sector not found.
const ST_NOT_FOUND: u8 = 0x04;
/// Status: drive not ready / timeout (no such drive).
const ST_TIMEOUT: u8 = 0x80;
/// Status: unsupported by this drive (media type).
const ST_BAD_MEDIA: u8 = 0x0c;
/// Largest transfer in one call: 64 KiB of 512-byte sectors or 127 CD sectors, the
/// limits DOS-era callers assume; EDD calls may ask up to 0xFFFF blocks, capped here at
/// 16 MiB per call.
const MAX_TRANSFER_BYTES: u64 = 16 << 20;

/// Cylinder/head/sector geometry as the BIOS presents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chs {
    /// Cylinders.
    pub cylinders: u32,
    /// Heads.
    pub heads: u32,
    /// Sectors per track.
    pub sectors: u32,
}

impl Chs {
    /// The geometry of a hard disk of `sectors` sectors: 63 sectors per track and the
    /// fewest heads (16, 32, 64, 128, 255) that keep cylinders at or below 1024, the
    /// "LBA-assisted" translation BIOSes use.
    pub fn for_hard_disk(sectors: u64) -> Chs {
        let spt = 63u64;
        let heads = [16u64, 32, 64, 128, 255].into_iter().find(|h| sectors / (h * spt) <= 1024).unwrap_or(255);
        let cylinders = (sectors / (heads * spt)).clamp(1, 1024);
        Chs { cylinders: cylinders as u32, heads: heads as u32, sectors: spt as u32 }
    }

    /// LBA of cylinder `c`, head `h`, sector `s` (1-based), if inside the geometry.
    pub fn to_lba(&self, c: u32, h: u32, s: u32) -> Option<u64> {
        (c < self.cylinders && h < self.heads && (1..=self.sectors).contains(&s))
            .then(|| (u64::from(c) * u64::from(self.heads) + u64::from(h)) * u64::from(self.sectors) + u64::from(s) - 1)
    }
}

/// The kind of drive a BIOS drive number names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriveKind {
    /// A floppy (or an El Torito floppy emulation).
    Floppy,
    /// A hard disk (or an El Torito hard-disk emulation).
    HardDisk,
    /// The CD-ROM without emulation.
    Cdrom,
}

/// One BIOS drive: a window of an image with a geometry.
pub struct Disk {
    backend: SharedBackend,
    /// Byte offset of the drive inside the image (El Torito emulation).
    offset: u64,
    /// Sectors of `sector_size` bytes.
    sectors: u64,
    sector_size: u64,
    geometry: Chs,
    kind: DriveKind,
}

impl Disk {
    fn new(backend: SharedBackend, kind: DriveKind) -> Option<Disk> {
        let bytes = backend.len();
        match kind {
            DriveKind::Floppy => {
                let (c, h, s) = floppy_geometry(bytes)?;
                let geometry = Chs { cylinders: c.into(), heads: h.into(), sectors: s.into() };
                Some(Disk { backend, offset: 0, sectors: bytes / 512, sector_size: 512, geometry, kind })
            }
            DriveKind::HardDisk => {
                let sectors = bytes / 512;
                Some(Disk {
                    backend,
                    offset: 0,
                    sectors,
                    sector_size: 512,
                    geometry: Chs::for_hard_disk(sectors),
                    kind,
                })
            }
            DriveKind::Cdrom => {
                let geometry = Chs { cylinders: 0, heads: 0, sectors: 0 };
                Some(Disk { backend, offset: 0, sectors: bytes / CD_SECTOR, sector_size: CD_SECTOR, geometry, kind })
            }
        }
    }

    /// Sectors of the drive.
    pub fn sectors(&self) -> u64 {
        self.sectors
    }

    /// Reads `count` sectors at `lba` into a buffer.
    pub fn read(&mut self, lba: u64, count: u64) -> Result<Vec<u8>, u8> {
        let bytes = self.range(lba, count)?;
        let mut buf = vec![0u8; bytes as usize];
        self.backend.read_at(self.offset + lba * self.sector_size, &mut buf).map_err(|e| {
            log::warn!("BIOS disk read at sector {lba}: {e}");
            ST_NOT_FOUND
        })?;
        Ok(buf)
    }

    fn write(&mut self, lba: u64, data: &[u8]) -> Result<(), u8> {
        if self.backend.read_only() {
            return Err(ST_WRITE_PROTECTED);
        }
        self.range(lba, data.len() as u64 / self.sector_size)?;
        self.backend.write_at(self.offset + lba * self.sector_size, data).map_err(|e| {
            log::warn!("BIOS disk write at sector {lba}: {e}");
            ST_NOT_FOUND
        })
    }

    fn range(&self, lba: u64, count: u64) -> Result<u64, u8> {
        let end = lba.checked_add(count).ok_or(ST_NOT_FOUND)?;
        if end > self.sectors {
            return Err(ST_NOT_FOUND);
        }
        let bytes = count * self.sector_size;
        if bytes > MAX_TRANSFER_BYTES {
            return Err(ST_INVALID);
        }
        Ok(bytes)
    }
}

/// The CD boot in effect (for AH=4Bh).
struct CdBoot {
    image: BootImage,
    drive: u8,
}

/// The drives INT 13h serves.
pub struct Drives {
    floppies: [Option<Disk>; 2],
    hard_disks: Vec<Disk>,
    cdrom: Option<Disk>,
    /// An El Torito emulated drive, which takes drive number 00h or 80h.
    emulated: Option<(u8, Disk)>,
    cd_boot: Option<CdBoot>,
}

/// BIOS drive number of the CD-ROM without emulation.
pub const CDROM_DRIVE: u8 = 0xe0;

impl Drives {
    /// The drives over the given images (floppies whose size matches no format are
    /// left out with a warning).
    pub fn new(floppies: [Option<SharedBackend>; 2], hard: Vec<SharedBackend>, cd: Option<SharedBackend>) -> Drives {
        let floppies = floppies.map(|f| {
            f.and_then(|b| {
                let d = Disk::new(b, DriveKind::Floppy);
                if d.is_none() {
                    log::warn!("BIOS: a floppy image matches no floppy format; INT 13h will not serve it");
                }
                d
            })
        });
        let hard_disks = hard.into_iter().take(4).filter_map(|b| Disk::new(b, DriveKind::HardDisk)).collect();
        let cdrom = cd.and_then(|b| Disk::new(b, DriveKind::Cdrom));
        Drives { floppies, hard_disks, cdrom, emulated: None, cd_boot: None }
    }

    /// Number of floppy drives (emulation included).
    pub fn floppy_count(&self) -> usize {
        let emulated = matches!(self.emulated, Some((0, _)));
        self.floppies.iter().filter(|f| f.is_some()).count().max(usize::from(emulated))
    }

    /// Number of hard disks (emulation included).
    pub fn hard_disk_count(&self) -> usize {
        self.hard_disks.len() + usize::from(matches!(self.emulated, Some((0x80, _))))
    }

    /// True when a CD-ROM drive has a medium.
    pub fn has_cdrom(&self) -> bool {
        self.cdrom.is_some()
    }

    /// The drive with BIOS number `dl`.
    pub fn get(&mut self, dl: u8) -> Option<&mut Disk> {
        if matches!(self.emulated, Some((n, _)) if n == dl) {
            return self.emulated.as_mut().map(|(_, d)| d);
        }
        let shift = usize::from(matches!(self.emulated, Some((0x80, _))));
        match dl {
            0x00 | 0x01 => self.floppies[usize::from(dl)].as_mut(),
            0x80..=0x83 => {
                let i = usize::from(dl - 0x80).checked_sub(shift)?;
                self.hard_disks.get_mut(i)
            }
            CDROM_DRIVE => self.cdrom.as_mut(),
            _ => None,
        }
    }

    /// Prepares booting from the CD: finds the El Torito image, sets up emulation and
    /// returns (load segment, bytes to load at it, boot drive number).
    pub fn boot_cd(&mut self) -> Result<(u16, Vec<u8>, u8), String> {
        let cd = self.cdrom.as_mut().ok_or("no CD-ROM")?;
        let image = eltorito::find_boot_image(&mut cd.backend)?;
        let base = u64::from(image.lba) * CD_SECTOR;
        let (drive, load) = match image.media {
            Media::NoEmulation => {
                let bytes = u64::from(image.sector_count.max(1)) * 512;
                let mut buf = vec![0u8; bytes as usize];
                cd.backend.read_at(base, &mut buf).map_err(|e| format!("loading the boot image: {e}"))?;
                (CDROM_DRIVE, buf)
            }
            Media::Floppy(bytes) => {
                let (c, h, s) = floppy_geometry(bytes).ok_or("bad floppy emulation size")?;
                let geometry = Chs { cylinders: c.into(), heads: h.into(), sectors: s.into() };
                let disk = Disk {
                    backend: cd.backend.clone(),
                    offset: base,
                    sectors: bytes / 512,
                    sector_size: 512,
                    geometry,
                    kind: DriveKind::Floppy,
                };
                (0x00, self.install_emulation(0x00, disk)?)
            }
            Media::HardDisk => {
                let sectors = cd.backend.len().saturating_sub(base) / 512;
                let disk = Disk {
                    backend: cd.backend.clone(),
                    offset: base,
                    sectors,
                    sector_size: 512,
                    geometry: Chs::for_hard_disk(sectors),
                    kind: DriveKind::HardDisk,
                };
                (0x80, self.install_emulation(0x80, disk)?)
            }
        };
        self.cd_boot = Some(CdBoot { image, drive });
        Ok((image.load_segment, load, drive))
    }

    fn install_emulation(&mut self, drive: u8, mut disk: Disk) -> Result<Vec<u8>, String> {
        let first = disk.read(0, 1).map_err(|s| format!("reading the emulated drive: status {s:#x}"))?;
        self.emulated = Some((drive, disk));
        Ok(first)
    }
}

/// INT 13h.
pub fn int13(drives: &mut Drives, hw: &dyn Platform, f: &mut Frame) -> Action {
    let mem = hw.memory();
    let dl = f.dl();
    log::trace!(
        "BIOS: INT 13h AX={:04x} BX={:04x} CX={:04x} DX={:04x} DS:SI={:04x}:{:04x}",
        f.ax(),
        f.bx(),
        f.cx(),
        f.dx(),
        f.ds,
        f.si()
    );
    let status_addr = if dl & 0x80 != 0 { bda::DISK_STATUS } else { bda::FLOPPY_STATUS };
    let result = match f.ah() {
        0x00 | 0x0d => drives.get(dl).map(|_| ()).ok_or(ST_TIMEOUT),
        0x01 => {
            let last = read_u8(mem, status_addr);
            f.set_ah(last);
            f.set_flag(super::frame::CF, last != 0);
            return Action::Return;
        }
        0x02..=0x04 => chs_transfer(drives, mem, f),
        0x08 => get_parameters(drives, f),
        0x0c | 0x10 | 0x11 | 0x14 => drives.get(dl).map(|_| ()).ok_or(ST_TIMEOUT),
        0x15 => {
            get_type(drives, f);
            return Action::Return;
        }
        0x16 => Ok(()),
        0x41 => check_extensions(drives, f),
        0x42..=0x44 => extended_transfer(drives, mem, f),
        0x45 | 0x47 | 0x49 => drives.get(dl).map(|_| ()).ok_or(ST_TIMEOUT),
        0x48 => extended_parameters(drives, mem, f),
        0x4b => emulation_status(drives, mem, f),
        _ => {
            unsupported("INT 13h", f);
            Err(ST_INVALID)
        }
    };
    let status = match result {
        Ok(()) => {
            f.ok();
            f.set_ah(if f.ah() == 0x41 { 0x30 } else { 0 });
            0
        }
        Err(s) => {
            f.fail(s);
            s
        }
    };
    super::write_u8(mem, status_addr, status);
    Action::Return
}

/// AH=02h read, 03h write, 04h verify: AL sectors at CHS (CH, CL, DH) to ES:BX.
fn chs_transfer(drives: &mut Drives, mem: &PhysMemory, f: &mut Frame) -> Result<(), u8> {
    let op = f.ah();
    let count = u64::from(f.al());
    let cylinder = u32::from(f.ch()) | (u32::from(f.cl() & 0xc0) << 2);
    let sector = u32::from(f.cl() & 0x3f);
    let head = u32::from(f.dh());
    let buffer = Frame::linear(f.es, f.bx());
    f.set_al(0);
    let disk = drives.get(f.dl()).ok_or(ST_TIMEOUT)?;
    if disk.kind == DriveKind::Cdrom {
        return Err(ST_BAD_MEDIA);
    }
    if count == 0 || count > 128 {
        return Err(ST_INVALID);
    }
    let lba = disk.geometry.to_lba(cylinder, head, sector).ok_or(ST_NOT_FOUND)?;
    // A transfer may run past the end of the track onto the next head (multi-track).
    let done = transfer(disk, mem, op, lba, count, buffer)?;
    f.set_al(done as u8);
    Ok(())
}

fn transfer(disk: &mut Disk, mem: &PhysMemory, op: u8, lba: u64, count: u64, buffer: u64) -> Result<u64, u8> {
    match op {
        0x02 | 0x42 => {
            let data = disk.read(lba, count)?;
            mem.write(buffer, &data);
        }
        0x03 | 0x43 => {
            let bytes = disk.range(lba, count)?;
            let mut data = vec![0u8; bytes as usize];
            mem.read(buffer, &mut data);
            disk.write(lba, &data)?;
        }
        _ => {
            disk.range(lba, count)?;
        }
    }
    Ok(count)
}

/// AH=08h: drive parameters.
fn get_parameters(drives: &mut Drives, f: &mut Frame) -> Result<(), u8> {
    let dl = f.dl();
    let floppies = drives.floppy_count() as u8;
    let hard = drives.hard_disk_count() as u8;
    let disk = drives.get(dl).ok_or(if dl & 0x80 != 0 { ST_INVALID } else { ST_TIMEOUT })?;
    let g = disk.geometry;
    if disk.kind == DriveKind::Cdrom || g.cylinders == 0 {
        return Err(ST_INVALID);
    }
    let max_cyl = g.cylinders - 1;
    f.set_ch(max_cyl as u8);
    f.set_cl((g.sectors as u8 & 0x3f) | (((max_cyl >> 2) & 0xc0) as u8));
    f.set_dh((g.heads - 1) as u8);
    if disk.kind == DriveKind::Floppy {
        f.set_bl(match disk.sectors * 512 {
            368_640 => 1,
            1_228_800 => 2,
            737_280 => 3,
            2_949_120 => 5,
            _ => 4,
        });
        f.set_dl(floppies);
        f.es = rom::ROM_SEGMENT;
        f.edi = (f.edi & !0xffff) | u32::from(rom::DISKETTE_PARAMS_OFFSET);
    } else {
        f.set_dl(hard);
    }
    f.set_al(0);
    Ok(())
}

/// AH=15h: drive type (no status byte update; AH is the type).
fn get_type(drives: &mut Drives, f: &mut Frame) {
    match drives.get(f.dl()) {
        None => {
            f.ok();
            f.set_ah(0);
        }
        Some(d) if d.kind == DriveKind::Floppy => {
            f.ok();
            f.set_ah(0x02);
        }
        Some(d) => {
            let n = d.sectors * d.sector_size / 512;
            f.ok();
            f.set_ah(0x03);
            f.set_cx((n >> 16) as u16);
            f.set_dx(n as u16);
        }
    }
}

/// AH=41h: extensions installation check (EDD 3.0: AH=30h, CX = fixed-disk access,
/// drive locking/ejecting and EDD support).
fn check_extensions(drives: &mut Drives, f: &mut Frame) -> Result<(), u8> {
    if f.bx() != 0x55aa {
        return Err(ST_INVALID);
    }
    match drives.get(f.dl()) {
        Some(d) if d.kind != DriveKind::Floppy => {
            f.set_bx(0xaa55);
            f.set_cx(0x0007);
            Ok(())
        }
        _ => Err(ST_INVALID),
    }
}

/// AH=42h read, 43h write, 44h verify through a disk address packet at DS:SI.
fn extended_transfer(drives: &mut Drives, mem: &PhysMemory, f: &mut Frame) -> Result<(), u8> {
    let op = f.ah();
    let packet = Frame::linear(f.ds, f.si());
    let size = read_u8(mem, packet);
    let count = u64::from(read_u16(mem, packet + 2));
    let offset = read_u16(mem, packet + 4);
    let segment = read_u16(mem, packet + 6);
    let lba = u64::from(read_u32(mem, packet + 8)) | (u64::from(read_u32(mem, packet + 12)) << 32);
    if size < 0x10 {
        return Err(ST_INVALID);
    }
    let buffer = if offset == 0xffff && segment == 0xffff && size >= 0x18 {
        u64::from(read_u32(mem, packet + 0x10)) | (u64::from(read_u32(mem, packet + 0x14)) << 32)
    } else {
        Frame::linear(segment, offset)
    };
    let disk = drives.get(f.dl()).ok_or(ST_TIMEOUT)?;
    if disk.kind == DriveKind::Floppy {
        return Err(ST_INVALID);
    }
    if count == 0 {
        return Ok(());
    }
    match transfer(disk, mem, op, lba, count, buffer) {
        Ok(_) => Ok(()),
        Err(s) => {
            write_u16(mem, packet + 2, 0);
            Err(s)
        }
    }
}

/// AH=48h: extended drive parameters into the buffer at DS:SI.
fn extended_parameters(drives: &mut Drives, mem: &PhysMemory, f: &mut Frame) -> Result<(), u8> {
    let buf = Frame::linear(f.ds, f.si());
    let size = read_u16(mem, buf);
    if size < 0x1a {
        return Err(ST_INVALID);
    }
    let disk = drives.get(f.dl()).ok_or(ST_TIMEOUT)?;
    let mut p = [0u8; 0x1e];
    let len: u16 = if size >= 0x1e { 0x1e } else { 0x1a };
    p[0..2].copy_from_slice(&len.to_le_bytes());
    let (flags, g): (u16, Chs) = match disk.kind {
        // Removable, change line, lockable; geometry not valid.
        DriveKind::Cdrom => (0x0074, Chs { cylinders: 0xffff_ffff, heads: 0xffff_ffff, sectors: 0xffff_ffff }),
        // Geometry valid.
        _ => (0x0002, disk.geometry),
    };
    p[2..4].copy_from_slice(&flags.to_le_bytes());
    p[4..8].copy_from_slice(&g.cylinders.to_le_bytes());
    p[8..12].copy_from_slice(&g.heads.to_le_bytes());
    p[12..16].copy_from_slice(&g.sectors.to_le_bytes());
    p[16..24].copy_from_slice(&disk.sectors.to_le_bytes());
    p[24..26].copy_from_slice(&(disk.sector_size as u16).to_le_bytes());
    // No device parameter table extension.
    p[26..30].copy_from_slice(&0xffff_ffffu32.to_le_bytes());
    mem.write(buf, &p[..usize::from(len)]);
    Ok(())
}

/// AH=4Bh: El Torito terminate emulation (AL=00h) or get status (AL=01h) into DS:SI.
fn emulation_status(drives: &mut Drives, mem: &PhysMemory, f: &mut Frame) -> Result<(), u8> {
    let Some(boot) = &drives.cd_boot else {
        return Err(ST_INVALID);
    };
    if f.al() > 1 {
        return Err(ST_INVALID);
    }
    let packet = eltorito::specification_packet(&boot.image, boot.drive);
    mem.write(Frame::linear(f.ds, f.si()), &packet);
    if f.al() == 0 && boot.image.media != Media::NoEmulation {
        drives.emulated = None;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_disk_translation_keeps_cylinders_at_or_below_1024() {
        assert_eq!(Chs::for_hard_disk(20_480), Chs { cylinders: 20, heads: 16, sectors: 63 });
        let big = Chs::for_hard_disk(8 << 21);
        assert!(big.cylinders <= 1024);
        assert_eq!(big.heads, 255);
        let g = Chs { cylinders: 80, heads: 2, sectors: 18 };
        assert_eq!(g.to_lba(0, 0, 1), Some(0));
        assert_eq!(g.to_lba(0, 1, 1), Some(18));
        assert_eq!(g.to_lba(1, 0, 1), Some(36));
        assert_eq!(g.to_lba(0, 0, 0), None);
        assert_eq!(g.to_lba(80, 0, 1), None);
        assert_eq!(g.to_lba(0, 2, 1), None);
    }
}

#[cfg(test)]
mod int13_tests {
    use super::*;
    use rx86_core::platform::BasicPlatform;
    use rx86_devices::block::{BlockError, SharedBackend};

    /// An in-memory image for the services.
    struct Image(Vec<u8>, bool);

    impl BlockBackend for Image {
        fn len(&self) -> u64 {
            self.0.len() as u64
        }
        fn read_only(&self) -> bool {
            self.1
        }
        fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
            let at = offset as usize;
            buf.copy_from_slice(&self.0[at..at + buf.len()]);
            Ok(())
        }
        fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), BlockError> {
            let at = offset as usize;
            self.0[at..at + buf.len()].copy_from_slice(buf);
            Ok(())
        }
        fn flush(&mut self) -> Result<(), BlockError> {
            Ok(())
        }
    }

    fn rig() -> (BasicPlatform, Drives, SharedBackend) {
        let p = BasicPlatform::new(2 << 20).unwrap();
        let disk = SharedBackend::new(Box::new(Image((0..64 * 512).map(|i| (i / 512) as u8).collect(), false)));
        let cd = SharedBackend::new(Box::new(Image(vec![7; 4 * 2048], true)));
        let drives = Drives::new([None, None], vec![disk.clone()], Some(cd));
        (p, drives, disk)
    }

    fn call(drives: &mut Drives, p: &BasicPlatform, ax: u16, f: impl FnOnce(&mut Frame)) -> Frame {
        let mut frame = Frame::from_bytes(&[0; super::super::frame::FRAME_BYTES]);
        frame.set_ax(ax);
        f(&mut frame);
        int13(drives, p, &mut frame);
        frame
    }

    fn packet(p: &BasicPlatform, count: u16, lba: u64) {
        let mut dap = [0u8; 16];
        dap[0] = 16;
        dap[2..4].copy_from_slice(&count.to_le_bytes());
        dap[4..8].copy_from_slice(&0x1000_0000u32.to_le_bytes());
        dap[8..16].copy_from_slice(&lba.to_le_bytes());
        p.memory.write(0x500, &dap);
    }

    #[test]
    fn extended_reads_check_the_lba_range() {
        let (p, mut d, _) = rig();
        packet(&p, 2, 62);
        let f = call(&mut d, &p, 0x4200, |f| {
            f.set_dl(0x80);
            f.esi = 0x500;
        });
        assert_eq!((f.flags & super::super::frame::CF, f.ah()), (0, 0));
        let mut buf = [0u8; 1024];
        p.memory.read(0x1_0000, &mut buf);
        assert_eq!((buf[0], buf[1023]), (62, 63), "sectors 62 and 63 at 1000:0000");
        packet(&p, 2, 63);
        let f = call(&mut d, &p, 0x4200, |f| {
            f.set_dl(0x80);
            f.esi = 0x500;
        });
        assert_eq!((f.flags & 1, f.ah()), (1, ST_NOT_FOUND), "a read past the end");
        let mut count = [0u8; 2];
        p.memory.read(0x502, &mut count);
        assert_eq!(count, [0, 0], "no blocks transferred");
        packet(&p, 1, u64::MAX);
        let f = call(&mut d, &p, 0x4200, |f| {
            f.set_dl(0x80);
            f.esi = 0x500;
        });
        assert_eq!(f.ah(), ST_NOT_FOUND, "an LBA that overflows");
    }

    #[test]
    fn chs_calls_check_counts_sectors_and_drives() {
        let (p, mut d, disk) = rig();
        let chs = |count: u8, sector: u8| {
            move |f: &mut Frame| {
                f.set_al(count);
                f.set_cl(sector);
                f.set_dl(0x80);
                f.es = 0x2000;
            }
        };
        assert_eq!(call(&mut d, &p, 0x0200, chs(0, 1)).ah(), ST_INVALID, "zero sectors");
        assert_eq!(call(&mut d, &p, 0x0200, chs(1, 0)).ah(), ST_NOT_FOUND, "sector 0");
        let f = call(&mut d, &p, 0x0300, chs(1, 2));
        assert_eq!((f.flags & 1, f.al()), (0, 1), "write one sector");
        let mut sector = [0xffu8; 512];
        disk.clone().read_at(512, &mut sector).unwrap();
        assert_eq!(sector, [0u8; 512], "the guest's buffer (zero RAM) reached sector 1");
        let f = call(&mut d, &p, 0x0200, |f| f.set_dl(0x81));
        assert_eq!(f.ah(), ST_TIMEOUT, "no second hard disk");
        let f = call(&mut d, &p, 0x0100, |f| f.set_dl(0x81));
        assert_eq!((f.flags & 1, f.ah()), (1, ST_TIMEOUT), "AH=01h reports the last status");
    }

    #[test]
    fn the_cdrom_is_read_only_with_2048_byte_blocks() {
        let (p, mut d, _) = rig();
        packet(&p, 1, 3);
        let f = call(&mut d, &p, 0x4300, |f| {
            f.set_dl(CDROM_DRIVE);
            f.esi = 0x500;
        });
        assert_eq!(f.ah(), ST_WRITE_PROTECTED);
        let mut params = [0u8; 0x1e];
        params[0] = 0x1e;
        p.memory.write(0x600, &params);
        let f = call(&mut d, &p, 0x4800, |f| {
            f.set_dl(CDROM_DRIVE);
            f.esi = 0x600;
        });
        assert_eq!(f.flags & 1, 0);
        p.memory.read(0x600, &mut params);
        assert_eq!(u16::from_le_bytes([params[24], params[25]]), 2048);
        assert_eq!(u64::from_le_bytes(params[16..24].try_into().unwrap()), 4);
        let f = call(&mut d, &p, 0x4100, |f| {
            f.set_dl(CDROM_DRIVE);
            f.set_bx(0x55aa);
        });
        assert_eq!((f.bx(), f.ah()), (0xaa55, 0x30), "EDD 3.0");
    }
}
