//! INT 1Ah: time of day (BDA tick count and the CMOS RTC) and the PCI BIOS (AX=B1xxh,
//! PCI BIOS Specification 2.1, configuration mechanism #1).

use super::frame::Frame;
use super::{bda, read_u32, read_u8, unsupported, write_u32, write_u8, Action};
use rx86_core::platform::Platform;

/// Timer ticks in a day at 1193182/65536 Hz.
pub const TICKS_PER_DAY: u32 = 0x0018_00b0;
/// PCI BIOS status: function not supported, bad vendor, device not found, bad register.
const PCI_NOT_SUPPORTED: u8 = 0x81;
const PCI_DEVICE_NOT_FOUND: u8 = 0x86;
const PCI_BAD_REGISTER: u8 = 0x87;

fn cmos_read(hw: &dyn Platform, index: u8) -> u8 {
    hw.io_write(0x70, 1, u32::from(index));
    hw.io_read(0x71, 1) as u8
}

fn cmos_write(hw: &dyn Platform, index: u8, value: u8) {
    hw.io_write(0x70, 1, u32::from(index));
    hw.io_write(0x71, 1, u32::from(value));
}

/// INT 1Ah AH of the PXE installation check (PXE 2.1 spec, "Installation check").
const PXE_CHECK: u8 = 0x56;

/// INT 1Ah.
pub fn int1a(hw: &dyn Platform, f: &mut Frame) -> Action {
    let mem = hw.memory();
    match f.ah() {
        0x00 => {
            let ticks = read_u32(mem, bda::TICKS);
            f.set_cx((ticks >> 16) as u16);
            f.set_dx(ticks as u16);
            f.set_al(read_u8(mem, bda::MIDNIGHT));
            write_u8(mem, bda::MIDNIGHT, 0);
            f.ok();
        }
        0x01 => {
            write_u32(mem, bda::TICKS, (u32::from(f.cx()) << 16) | u32::from(f.dx()));
            write_u8(mem, bda::MIDNIGHT, 0);
            f.ok();
        }
        0x02 => {
            f.set_ch(cmos_read(hw, 0x04));
            f.set_cl(cmos_read(hw, 0x02));
            f.set_dh(cmos_read(hw, 0x00));
            f.set_dl(cmos_read(hw, 0x0b) & 1);
            f.ok();
        }
        0x03 => {
            cmos_write(hw, 0x04, f.ch());
            cmos_write(hw, 0x02, f.cl());
            cmos_write(hw, 0x00, f.dh());
            f.ok();
        }
        0x04 => {
            f.set_ch(cmos_read(hw, 0x32));
            f.set_cl(cmos_read(hw, 0x09));
            f.set_dh(cmos_read(hw, 0x08));
            f.set_dl(cmos_read(hw, 0x07));
            f.ok();
        }
        0x05 => {
            cmos_write(hw, 0x32, f.ch());
            cmos_write(hw, 0x09, f.cl());
            cmos_write(hw, 0x08, f.dh());
            cmos_write(hw, 0x07, f.dl());
            f.ok();
        }
        0xb1 => pci_bios(hw, f),
        // The PXE installation check (AX=5650h, answered AX=564Eh "VN" with CF clear when a
        // PXE stack is loaded; iPXE also calls AX=564Eh). This BIOS has no PXE stack: a
        // plain "not supported", logged only for debugging as SeaBIOS does, since network
        // boot programs ask on every start.
        PXE_CHECK => {
            log::debug!("BIOS: INT 1Ah AX={:04x}: PXE installation check: no PXE stack", f.ax());
            f.fail(0x86);
        }
        _ => {
            unsupported("INT 1Ah", f);
            f.fail(0x86);
        }
    }
    Action::Return
}

fn config_address(bus: u8, devfn: u8, reg: u16) -> u32 {
    0x8000_0000 | (u32::from(bus) << 16) | (u32::from(devfn) << 8) | u32::from(reg & 0xfc)
}

fn config_read(hw: &dyn Platform, bus: u8, devfn: u8, reg: u16, size: u8) -> u32 {
    hw.io_write(0xcf8, 4, config_address(bus, devfn, reg));
    hw.io_read(0xcfc + (reg & 3), size)
}

fn config_write(hw: &dyn Platform, bus: u8, devfn: u8, reg: u16, size: u8, value: u32) {
    hw.io_write(0xcf8, 4, config_address(bus, devfn, reg));
    hw.io_write(0xcfc + (reg & 3), size, value);
}

/// The `index`-th function on bus 0 matching `matches(vendor/device dword, class dword)`.
fn find(hw: &dyn Platform, index: u16, matches: impl Fn(u32, u32) -> bool) -> Option<u8> {
    let mut seen = 0u16;
    for devfn in 0..=255u8 {
        let id = config_read(hw, 0, devfn, 0, 4);
        if id == 0xffff_ffff || id == 0 {
            continue;
        }
        if matches(id, config_read(hw, 0, devfn, 8, 4)) {
            if seen == index {
                return Some(devfn);
            }
            seen += 1;
        }
    }
    None
}

/// AX=B1xxh: PCI BIOS (bus 0 only; BH = bus, BL = device/function).
fn pci_bios(hw: &dyn Platform, f: &mut Frame) {
    let (bus, devfn, reg) = (f.bh(), f.bl(), f.di());
    let result: Result<(), u8> = match f.al() {
        0x01 => {
            // Installed: mechanism #1, version 2.10, last bus 0, "PCI ".
            f.edx = 0x2049_4350;
            f.set_al(0x01);
            f.set_bx(0x0210);
            f.set_cl(0);
            f.edi = 0;
            Ok(())
        }
        0x02 => {
            let want = (u32::from(f.cx()) << 16) | u32::from(f.dx());
            match find(hw, f.si(), |id, _| id == want) {
                Some(d) => {
                    f.set_bh(0);
                    f.set_bl(d);
                    Ok(())
                }
                None => Err(PCI_DEVICE_NOT_FOUND),
            }
        }
        0x03 => {
            let want = f.ecx & 0x00ff_ffff;
            match find(hw, f.si(), |_, class| class >> 8 == want) {
                Some(d) => {
                    f.set_bh(0);
                    f.set_bl(d);
                    Ok(())
                }
                None => Err(PCI_DEVICE_NOT_FOUND),
            }
        }
        0x08..=0x0d if reg > 0xff => Err(PCI_BAD_REGISTER),
        0x09 | 0x0c if reg & 1 != 0 => Err(PCI_BAD_REGISTER),
        0x0a | 0x0d if reg & 3 != 0 => Err(PCI_BAD_REGISTER),
        0x08 => {
            f.set_cl(config_read(hw, bus, devfn, reg, 1) as u8);
            Ok(())
        }
        0x09 => {
            f.set_cx(config_read(hw, bus, devfn, reg, 2) as u16);
            Ok(())
        }
        0x0a => {
            f.ecx = config_read(hw, bus, devfn, reg, 4);
            Ok(())
        }
        0x0b => {
            config_write(hw, bus, devfn, reg, 1, u32::from(f.cl()));
            Ok(())
        }
        0x0c => {
            config_write(hw, bus, devfn, reg, 2, u32::from(f.cx()));
            Ok(())
        }
        0x0d => {
            config_write(hw, bus, devfn, reg, 4, f.ecx);
            Ok(())
        }
        _ => {
            unsupported("PCI BIOS", f);
            Err(PCI_NOT_SUPPORTED)
        }
    };
    match result {
        Ok(()) => {
            f.ok();
            f.set_ah(0);
        }
        Err(s) => f.fail(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bios::frame::{CF, FRAME_BYTES};

    #[test]
    fn the_pxe_installation_check_says_no_pxe_stack() {
        let p = rx86_core::platform::BasicPlatform::new(2 << 20).unwrap();
        for ax in [0x5650u16, 0x564e] {
            let mut f = Frame::from_bytes(&[0; FRAME_BYTES]);
            f.eax = u32::from(ax);
            assert_eq!(int1a(&p, &mut f), Action::Return);
            assert_ne!(f.flags & CF, 0, "{ax:#x}: CF set");
            assert_ne!(f.ax(), 0x564e, "{ax:#x}: not the installed answer");
        }
    }
}
