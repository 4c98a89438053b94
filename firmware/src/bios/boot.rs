//! INT 19h (bootstrap loader) and INT 18h (no bootable device): tries the boot order
//! and starts the first boot sector found, as the IBM BIOS and SeaBIOS do.

use super::disk::Disk;
use super::frame::{Frame, IF};
use super::video::teletype;
use super::{Action, Bios, BootDevice};
use rx86_core::platform::Platform;

/// Where boot sectors are loaded.
const BOOT_SEGMENT: u16 = 0x07c0;

fn print(hw: &dyn Platform, text: &str) {
    for b in text.bytes() {
        teletype(hw, b, None);
    }
}

fn boot_sector(disk: Option<&mut Disk>, need_signature: bool) -> Result<Vec<u8>, String> {
    let disk = disk.ok_or("no such drive")?;
    let sector = disk.read(0, 1).map_err(|s| format!("could not read the boot sector (status {s:#04x})"))?;
    if need_signature && sector[510..512] != [0x55, 0xaa] {
        return Err("not a bootable disk (no 55AA signature)".into());
    }
    Ok(sector)
}

/// Tries one device: (load segment, bytes to place there, boot drive).
fn try_device(bios: &mut Bios, device: BootDevice) -> Result<(u16, Vec<u8>, u8), String> {
    match device {
        BootDevice::Floppy => Ok((BOOT_SEGMENT, boot_sector(bios.drives.get(0x00), false)?, 0x00)),
        BootDevice::HardDisk => Ok((BOOT_SEGMENT, boot_sector(bios.drives.get(0x80), true)?, 0x80)),
        BootDevice::Cdrom => bios.drives.boot_cd(),
    }
}

fn name(device: BootDevice) -> &'static str {
    match device {
        BootDevice::Floppy => "Floppy",
        BootDevice::HardDisk => "Hard Disk",
        BootDevice::Cdrom => "DVD/CD",
    }
}

/// INT 19h: enter the kernel loaded for its real-mode setup, if any; else load the first
/// bootable device's boot code and return into it.
pub fn int19(bios: &mut Bios, hw: &dyn Platform, f: &mut Frame) -> Action {
    if let Some(setup) = bios.linux_setup {
        print(hw, "Booting the kernel's real-mode setup...\r\n");
        log::info!("BIOS: entering the kernel's real-mode setup at {:04x}:0000", setup.entry_segment);
        (f.ds, f.es, f.fs, f.gs) = (setup.data_segment, setup.data_segment, setup.data_segment, setup.data_segment);
        f.eax = u32::from(setup.data_segment);
        f.ebx = u32::from(setup.stack_pointer);
        f.ecx = u32::from(setup.entry_segment);
        f.cs = super::rom::ROM_SEGMENT;
        f.ip = bios.rom.linux_setup_entry;
        return Action::Return;
    }
    let order = bios.boot_order.clone();
    let mut tried = Vec::new();
    for device in order {
        print(hw, &format!("Booting from {}...\r\n", name(device)));
        match try_device(bios, device) {
            Ok((segment, code, drive)) => {
                log::info!(
                    "BIOS: booting from {} (drive {drive:#04x}), {} bytes at {segment:04x}:0000",
                    name(device),
                    code.len()
                );
                hw.memory().write(Frame::linear(segment, 0), &code);
                f.cs = if segment == BOOT_SEGMENT { 0 } else { segment };
                f.ip = if segment == BOOT_SEGMENT { 0x7c00 } else { 0 };
                f.set_dl(drive);
                f.flags |= IF;
                return Action::Return;
            }
            Err(why) => {
                print(hw, &format!("Boot failed: {why}\r\n"));
                tried.push(format!("{}: {why}", name(device)));
            }
        }
    }
    log::error!(
        "BIOS: no bootable device ({})",
        if tried.is_empty() { "empty boot order".into() } else { tried.join("; ") }
    );
    int18(bios, hw)
}

/// INT 18h: no bootable device; the power-on code halts after this returns.
pub fn int18(_bios: &mut Bios, hw: &dyn Platform) -> Action {
    print(hw, "No bootable device.\r\n");
    Action::Return
}
