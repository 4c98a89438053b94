//! Power-on self test: what the BIOS sets up before INT 19h. The interrupt vector
//! table, the BIOS data area and EBDA, the 8259A pair (vectors 08h and 70h), the 8254
//! at 18.2 Hz, the 8042's command byte, and video mode 03h with a banner.

use super::rom::{self, ROM_SEGMENT};
use super::video::{set_mode, teletype};
use super::{bda, write_u16, write_u32, write_u8, Bios};
use crate::layout::EBDA_START;
use rx86_core::platform::Platform;

/// Bytes of the EBDA (1 KiB, at 0x9FC00).
const EBDA_KB: u16 = 1;

/// Runs POST.
pub fn post(bios: &mut Bios, hw: &dyn Platform) {
    let mem = hw.memory();
    // IVT: every vector into the ROM; data pointers for 1Eh, 1Fh and 43h.
    let mut ivt = [0u8; 1024];
    for (v, &offset) in bios.rom.vectors.iter().enumerate() {
        ivt[v * 4..v * 4 + 2].copy_from_slice(&offset.to_le_bytes());
        ivt[v * 4 + 2..v * 4 + 4].copy_from_slice(&ROM_SEGMENT.to_le_bytes());
    }
    for (v, offset) in
        [(0x1e, rom::DISKETTE_PARAMS_OFFSET), (0x1f, rom::FONT_8X8_OFFSET + 128 * 8), (0x43, rom::FONT_8X8_OFFSET)]
    {
        ivt[v * 4..v * 4 + 2].copy_from_slice(&offset.to_le_bytes());
    }
    for v in [0x1d, 0x41, 0x46] {
        ivt[v * 4..v * 4 + 4].fill(0);
    }
    mem.write(0, &ivt);

    // BDA and EBDA.
    mem.write(0x400, &[0u8; 0x100]);
    mem.write(EBDA_START, &[0u8; 1024]);
    write_u16(mem, EBDA_START, EBDA_KB);
    for (i, port) in [0x3f8u16, 0x2f8, 0x3e8, 0x2e8].into_iter().enumerate() {
        write_u16(mem, bda::COM_PORTS + 2 * i as u64, port);
    }
    write_u16(mem, bda::EBDA_SEGMENT, rom::EBDA_SEGMENT);
    let floppies = bios.drives.floppy_count() as u16;
    // Equipment: floppies present and count, x87, 80x25 colour, four serial ports.
    let mut equipment = 0x0002 | (0b10 << 4) | (4 << 9);
    if floppies > 0 {
        equipment |= 1 | ((floppies - 1) << 6);
    }
    write_u16(mem, bda::EQUIPMENT, equipment);
    write_u16(mem, bda::MEMORY_KB, (EBDA_START / 1024) as u16);
    write_u16(mem, bda::KBD_BUFFER_START, 0x1e);
    write_u16(mem, bda::KBD_BUFFER_END, 0x3e);
    write_u16(mem, bda::KBD_HEAD, 0x1e);
    write_u16(mem, bda::KBD_TAIL, 0x1e);
    write_u8(mem, bda::KBD_FLAGS3, 0x10);
    write_u8(mem, bda::DISK_COUNT, bios.drives.hard_disk_count() as u8);
    write_u32(mem, bda::TICKS, ticks_since_midnight(hw));

    // Interrupt controllers: master at 08h, slave at 70h, cascade on IRQ 2; the timer,
    // keyboard and cascade unmasked.
    for (port, value) in [
        (0x20, 0x11),
        (0xa0, 0x11),
        (0x21, 0x08),
        (0xa1, 0x70),
        (0x21, 0x04),
        (0xa1, 0x02),
        (0x21, 0x01),
        (0xa1, 0x01),
        (0x21, 0xf8),
        (0xa1, 0xff),
    ] {
        hw.io_write(port, 1, value);
    }
    // PIT channel 0: mode 3, divisor 65536 (18.2 Hz).
    for (port, value) in [(0x43, 0x36), (0x40, 0), (0x40, 0)] {
        hw.io_write(port, 1, value);
    }
    // 8042: keyboard interrupt on, system flag, mouse off, translation to set 1.
    hw.io_write(0x64, 1, 0x60);
    hw.io_write(0x60, 1, 0x65);

    set_mode(bios, hw, 0x03, true);
    let banner = format!(
        "rx86 BIOS\r\n{} MiB RAM, {} hard disk(s), {} floppy drive(s){}\r\n\r\n",
        bios.layout.ram_bytes() >> 20,
        bios.drives.hard_disk_count(),
        floppies,
        if bios.drives.has_cdrom() { ", CD-ROM" } else { "" }
    );
    for b in banner.bytes() {
        teletype(hw, b, None);
    }
}

/// The BDA tick count for the time of day in the CMOS RTC.
fn ticks_since_midnight(hw: &dyn Platform) -> u32 {
    let read = |index: u8| {
        hw.io_write(0x70, 1, u32::from(index));
        hw.io_read(0x71, 1) as u8
    };
    let binary = read(0x0b) & 0x04 != 0;
    let value = |v: u8| if binary { u32::from(v) } else { u32::from(v >> 4) * 10 + u32::from(v & 0x0f) };
    let seconds = value(read(0x04) & 0x7f) * 3600 + value(read(0x02)) * 60 + value(read(0x00));
    // 1193182 / 65536 ticks per second.
    ((u64::from(seconds) * 1_193_182) / 65_536) as u32
}
