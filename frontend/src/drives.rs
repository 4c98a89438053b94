//! Disk and CD drives from the command line: QEMU's `--hda`..`--hdd`, `--cdrom`,
//! `--fda`/`--fdb`, the generic `--drive file=...,if=...,media=...` and `--boot`,
//! and opening their images for the board.

use crate::error::RunError;
use rx86_devices::block::{open_image, ImageFormat, ImageOptions, SharedBackend};
use rx86_devices::floppy::floppy_geometry;
use rx86_firmware::bios::BootDevice;
use std::path::PathBuf;

/// The controller a drive hangs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriveInterface {
    /// The PIIX3 IDE controller: index 0-3 = primary master/slave, secondary
    /// master/slave.
    Ide,
    /// The floppy controller: index 0-1 = A:, B:.
    Floppy,
}

/// What the drive is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriveMedia {
    /// A hard disk (or a floppy disk on the floppy interface).
    Disk,
    /// An ATAPI CD-ROM (read-only, 2048-byte blocks).
    Cdrom,
}

/// One drive the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveConfig {
    /// The image file.
    pub path: PathBuf,
    /// Controller.
    pub interface: DriveInterface,
    /// Disk or CD.
    pub media: DriveMedia,
    /// Position on the controller; `None` takes the first free one.
    pub index: Option<usize>,
    /// Image format.
    pub format: ImageFormat,
    /// Refuse guest writes.
    pub read_only: bool,
}

impl DriveConfig {
    /// A drive at a fixed position, auto-detected format.
    pub fn at(path: PathBuf, interface: DriveInterface, media: DriveMedia, index: usize) -> Self {
        DriveConfig { path, interface, media, index: Some(index), format: ImageFormat::Auto, read_only: false }
    }
}

/// Parses a QEMU-style `--drive` value: `file=F[,if=ide|floppy][,media=disk|cdrom]
/// [,index=N][,format=raw|qcow2][,readonly=on|off]`.
pub fn parse_drive(spec: &str) -> Result<DriveConfig, String> {
    let mut d = DriveConfig {
        path: PathBuf::new(),
        interface: DriveInterface::Ide,
        media: DriveMedia::Disk,
        index: None,
        format: ImageFormat::Auto,
        read_only: false,
    };
    let mut file = None;
    for part in spec.split(',') {
        let (key, value) = part.split_once('=').ok_or(format!("'{part}' is not key=value"))?;
        match key {
            "file" => file = Some(PathBuf::from(value)),
            "if" => {
                d.interface = match value {
                    "ide" => DriveInterface::Ide,
                    "floppy" => DriveInterface::Floppy,
                    _ => return Err(format!("if={value}: rx86 has ide and floppy")),
                }
            }
            "media" => {
                d.media = match value {
                    "disk" => DriveMedia::Disk,
                    "cdrom" => DriveMedia::Cdrom,
                    _ => return Err(format!("media={value}: use disk or cdrom")),
                }
            }
            "index" => d.index = Some(value.parse().map_err(|_| format!("index={value} is not a number"))?),
            "format" => {
                d.format = match value {
                    "raw" => ImageFormat::Raw,
                    "qcow2" => ImageFormat::Qcow2,
                    _ => return Err(format!("format={value}: rx86 reads raw and qcow2")),
                }
            }
            "readonly" => {
                d.read_only = match value {
                    "on" | "true" | "yes" => true,
                    "off" | "false" | "no" => false,
                    _ => return Err(format!("readonly={value}: use on or off")),
                }
            }
            _ => return Err(format!("unknown drive option '{key}'")),
        }
    }
    d.path = file.ok_or("a drive needs file=PATH")?;
    if d.interface == DriveInterface::Floppy && d.media == DriveMedia::Cdrom {
        return Err("a CD-ROM cannot sit on the floppy interface".into());
    }
    Ok(d)
}

/// Parses `--boot`: QEMU's drive letters (`a` floppy, `c` hard disk, `d` CD-ROM), as
/// a bare list (`dc`) or `order=dc`.
pub fn parse_boot_order(spec: &str) -> Result<Vec<BootDevice>, String> {
    let letters = spec.strip_prefix("order=").unwrap_or(spec);
    if letters.is_empty() {
        return Err("empty boot order".into());
    }
    letters
        .chars()
        .map(|c| match c {
            'a' => Ok(BootDevice::Floppy),
            'c' => Ok(BootDevice::HardDisk),
            'd' => Ok(BootDevice::Cdrom),
            _ => Err(format!("boot device '{c}': use a (floppy), c (hard disk) or d (CD-ROM)")),
        })
        .collect()
}

/// An opened drive.
pub struct OpenDrive {
    /// The image, shared by the controller and the BIOS.
    pub backend: SharedBackend,
    /// Disk or CD.
    pub media: DriveMedia,
}

/// Every drive of the machine, opened, at its position.
#[derive(Default)]
pub struct OpenDrives {
    /// IDE positions 0-3.
    pub ide: [Option<OpenDrive>; 4],
    /// Floppy drives A: and B:.
    pub floppy: [Option<OpenDrive>; 2],
}

/// Opens the images of `drives` (`snapshot`: keep every write in memory).
pub fn open_drives(drives: &[DriveConfig], snapshot: bool) -> Result<OpenDrives, RunError> {
    let mut open = OpenDrives::default();
    for d in drives {
        let slots: &mut [Option<OpenDrive>] = match d.interface {
            DriveInterface::Ide => &mut open.ide,
            DriveInterface::Floppy => &mut open.floppy,
        };
        let index = match d.index {
            Some(i) if i < slots.len() => i,
            Some(i) => {
                return Err(RunError::Drive(format!("{}: index {i} is past the last position", d.path.display())))
            }
            None => slots
                .iter()
                .position(|s| s.is_none())
                .ok_or(RunError::Drive(format!("{}: no free position on the controller", d.path.display())))?,
        };
        if slots[index].is_some() {
            return Err(RunError::Drive(format!("{}: position {index} is already taken", d.path.display())));
        }
        let read_only = d.read_only || d.media == DriveMedia::Cdrom;
        let options = ImageOptions { format: d.format, read_only, snapshot: snapshot && !read_only };
        let backend = open_image(&d.path, options).map_err(|e| RunError::Drive(e.to_string()))?;
        if d.interface == DriveInterface::Floppy && floppy_geometry(backend.len()).is_none() {
            return Err(RunError::Drive(format!(
                "{}: a floppy image must be 360 KB, 720 KB, 1.2 MB, 1.44 MB or 2.88 MB ({} bytes)",
                d.path.display(),
                backend.len()
            )));
        }
        if backend.is_empty() {
            return Err(RunError::Drive(format!("{}: the image is empty", d.path.display())));
        }
        slots[index] = Some(OpenDrive { backend: SharedBackend::new(backend), media: d.media });
    }
    Ok(open)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drive_specs() {
        let d = parse_drive("file=x.iso,media=cdrom,if=ide,index=2,readonly=on").unwrap();
        assert_eq!((d.media, d.index, d.read_only), (DriveMedia::Cdrom, Some(2), true));
        let d = parse_drive("file=a.img,if=floppy,format=raw").unwrap();
        assert_eq!((d.interface, d.format), (DriveInterface::Floppy, ImageFormat::Raw));
        assert!(parse_drive("if=ide").unwrap_err().contains("file="));
        assert!(parse_drive("file=x,if=scsi").is_err());
        assert!(parse_drive("file=x,bogus=1").is_err());
        assert!(parse_drive("file=x,media=cdrom,if=floppy").is_err());
        assert!(parse_drive("file").is_err());
    }

    #[test]
    fn boot_orders() {
        assert_eq!(parse_boot_order("dc").unwrap(), [BootDevice::Cdrom, BootDevice::HardDisk]);
        assert_eq!(parse_boot_order("order=a").unwrap(), [BootDevice::Floppy]);
        assert!(parse_boot_order("x").is_err());
        assert!(parse_boot_order("").is_err());
    }

    #[test]
    fn positions_are_checked() {
        let dir = std::env::temp_dir().join(format!("rx86-drives-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let img = dir.join("d.img");
        std::fs::write(&img, vec![0u8; 4096]).unwrap();
        let disk = |i| DriveConfig::at(img.clone(), DriveInterface::Ide, DriveMedia::Disk, i);
        assert!(open_drives(&[disk(0), disk(0)], true).is_err(), "same slot twice");
        assert!(open_drives(&[disk(4)], true).is_err(), "no fifth IDE position");
        let floppy = DriveConfig::at(img.clone(), DriveInterface::Floppy, DriveMedia::Disk, 0);
        assert!(open_drives(&[floppy], true).is_err(), "4 KiB is no floppy format");
        std::fs::write(&img, vec![0u8; 1000]).unwrap();
        assert!(open_drives(&[disk(0)], true).is_err(), "not a multiple of 512");
        let missing = DriveConfig::at(dir.join("missing.img"), DriveInterface::Ide, DriveMedia::Disk, 0);
        assert!(open_drives(&[missing], false).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
