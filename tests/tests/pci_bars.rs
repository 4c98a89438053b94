//! PCI BARs on the assembled board follow what configuration software writes: the IDE
//! function's bus-master block (an I/O BAR) and the VGA's register window (a memory BAR)
//! answer wherever firmware or an OS moves them, and only while the command register
//! enables decoding. Driven from the guest's side of the board (ports and physical
//! memory), without a CPU.

use rx86::pc::Pc;
use rx86_core::platform::Platform;
use rx86_tests::fuzzing::board::board;

/// CONFIG_ADDRESS and CONFIG_DATA of configuration mechanism #1.
const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;
/// The PIIX3 IDE function (device 1, function 1) and the VGA (device 2, function 0).
const IDE: u32 = 1 << 3 | 1;
const VGA: u32 = 2 << 3;
/// Command register, BAR2 and BAR4 offsets.
const COMMAND: u32 = 0x04;
const BAR2: u32 = 0x18;
const BAR4: u32 = 0x20;
/// Bus-master registers: command, status, PRD table address.
const BM_COMMAND: u16 = 0;
const BM_STATUS: u16 = 2;
const BM_PRD_TABLE: u16 = 4;

fn config_read(pc: &Pc, devfn: u32, register: u32) -> u32 {
    pc.io_write(CONFIG_ADDRESS, 4, 1 << 31 | devfn << 8 | register);
    pc.io_read(CONFIG_DATA, 4)
}

fn config_write(pc: &Pc, devfn: u32, register: u32, value: u32) {
    pc.io_write(CONFIG_ADDRESS, 4, 1 << 31 | devfn << 8 | register);
    pc.io_write(CONFIG_DATA, 4, value);
}

/// The bytes of `lba` on the board's hard disk (its image holds `(i / 512) ^ i` at byte `i`).
fn disk_sector(lba: u64) -> Vec<u8> {
    (lba * 512..(lba + 1) * 512).map(|i| (i / 512) as u8 ^ i as u8).collect()
}

/// READ DMA of `lba` into `buffer` through the bus-master block at `block`; returns the
/// bus-master status afterwards.
fn read_dma(pc: &Pc, block: u16, lba: u32, buffer: u32) -> u8 {
    let table = 0x1_0000u64;
    let mut entry = buffer.to_le_bytes().to_vec();
    entry.extend(512u16.to_le_bytes());
    entry.extend([0x00, 0x80]);
    pc.memory().write(table, &entry);
    pc.io_write(block + BM_PRD_TABLE, 4, table as u32);
    pc.io_write(0x1f6, 1, 0xe0 | (lba >> 24) & 0xf);
    pc.io_write(0x1f2, 1, 1);
    for (i, port) in [0x1f3, 0x1f4, 0x1f5].into_iter().enumerate() {
        pc.io_write(port, 1, lba >> (8 * i) & 0xff);
    }
    pc.io_write(0x1f7, 1, 0xc8);
    pc.io_write(block + BM_COMMAND, 1, 0x09);
    let status = pc.io_read(block + BM_STATUS, 1) as u8;
    pc.io_write(block + BM_COMMAND, 1, 0x00);
    pc.io_write(block + BM_STATUS, 1, 0x06);
    status
}

#[test]
fn the_ide_bus_master_block_follows_bar4() {
    let (pc, _clock) = board();
    assert_eq!(config_read(&pc, IDE, BAR4), 0xc001, "where firmware set-up puts it");
    assert_eq!(read_dma(&pc, 0xc000, 3, 0x2_0000) & 0x07, 0x04, "interrupt, not active, no error");
    let mut got = vec![0u8; 512];
    pc.memory().read(0x2_0000, &mut got);
    assert_eq!(got, disk_sector(3));

    config_write(&pc, IDE, BAR4, 0xd040);
    assert_eq!(pc.io_read(0xc000 + BM_STATUS, 1), 0xff, "nothing answers at the old block");
    assert_eq!(read_dma(&pc, 0xd040, 7, 0x3_0000) & 0x07, 0x04, "DMA through the moved block");
    pc.memory().read(0x3_0000, &mut got);
    assert_eq!(got, disk_sector(7));
    assert_eq!(pc.io_read(0xd040 + BM_PRD_TABLE, 4), 0x1_0000, "the secondary channel's block is at +8");
    assert_eq!(pc.io_read(0xd048 + BM_PRD_TABLE, 4), 0);

    let command = config_read(&pc, IDE, COMMAND) & 0xffff;
    config_write(&pc, IDE, COMMAND, command & !1);
    assert_eq!(pc.io_read(0xd040 + BM_PRD_TABLE, 4), 0xffff_ffff, "I/O space disabled");
    config_write(&pc, IDE, COMMAND, command);
    assert_eq!(pc.io_read(0xd040 + BM_PRD_TABLE, 4), 0x1_0000, "enabled again");

    // Below the window, over the legacy ISA ports: refused, and the IDE command block at
    // 0x1F0 still answers as itself.
    config_write(&pc, IDE, BAR4, 0x01f0);
    assert_eq!(pc.io_read(0xd040 + BM_PRD_TABLE, 4), 0xffff_ffff);
    assert_ne!(pc.io_read(0x1f7, 1), 0xff, "the drive's status register");
}

#[test]
fn the_vga_register_window_follows_bar2() {
    let (pc, _clock) = board();
    let vbe_id = |at: u64| {
        let mut id = [0u8; 2];
        pc.memory().read(at + 0x500, &mut id);
        u16::from_le_bytes(id)
    };
    let old = u64::from(config_read(&pc, VGA, BAR2) & !0xf);
    assert!((0xb0c0..=0xb0c5).contains(&vbe_id(old)), "Bochs DISPI ID at BAR2 + 0x500");
    config_write(&pc, VGA, BAR2, 0xfe00_0000);
    assert_eq!(vbe_id(old), 0xffff, "nothing answers at the old window");
    assert!((0xb0c0..=0xb0c5).contains(&vbe_id(0xfe00_0000)));
    let command = config_read(&pc, VGA, COMMAND) & 0xffff;
    config_write(&pc, VGA, COMMAND, command & !2);
    assert_eq!(vbe_id(0xfe00_0000), 0xffff, "memory space disabled");
}
