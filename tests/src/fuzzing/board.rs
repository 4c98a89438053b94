//! The board fuzz target: a program of guest-side accesses against a fresh PC.
//!
//! Each operation is an opcode byte and its operands (see [`Op`]). Port and MMIO addresses
//! are drawn mostly from the ranges devices decode, so the program reaches their register
//! files rather than open bus. The board has the built-in BIOS, a 1.44 MB floppy, a
//! 1 MiB hard disk and a CD (all under `--snapshot`: nothing is written to the image files),
//! and `isa-debug-exit`. Power events the program causes are taken and ignored.

use super::Input;
use rx86::config::{CharBackend, MachineConfig};
use rx86::drives::{DriveConfig, DriveInterface, DriveMedia};
use rx86::pc::{HostAttachments, Pc};
use rx86_core::platform::Platform;
use rx86_core::time::Clock;
use rx86_firmware::bios::frame::FRAME_BYTES;
use rx86_firmware::bios::rom::{EBDA_SEGMENT, SCRATCH_FRAME, SERVICE_PORT, TRAPPED_VECTORS};
use std::path::PathBuf;
use std::sync::OnceLock;

/// Guest RAM of the fuzzed board.
const RAM_BYTES: u64 = 32 << 20;
/// Operations run per input at most (a long input cannot make one run slow).
const MAX_OPS: usize = 4096;
/// Port ranges the board's devices decode (base, length).
const PORT_RANGES: &[(u64, u64)] = &[
    (0x00, 0x10),   // 8237 DMA 1
    (0x20, 2),      // PIC master
    (0x40, 4),      // PIT
    (0x60, 1),      // 8042 data
    (0x61, 1),      // port B
    (0x64, 1),      // 8042 command
    (0x70, 2),      // RTC/CMOS
    (0x80, 0x10),   // POST code, DMA page registers
    (0x92, 1),      // fast A20
    (0xa0, 2),      // PIC slave
    (0xc0, 0x20),   // 8237 DMA 2
    (0x170, 8),     // IDE secondary
    (0x1ce, 3),     // Bochs VBE
    (0x1f0, 8),     // IDE primary
    (0x2f8, 8),     // COM2
    (0x376, 1),     // IDE secondary control
    (0x3b0, 0x30),  // VGA
    (0x3f0, 8),     // floppy
    (0x3f6, 1),     // IDE primary control
    (0x3f8, 8),     // COM1
    (0x4d0, 2),     // ELCR
    (0x501, 2),     // isa-debug-exit
    (0x600, 0x30),  // ACPI PM
    (0xcf8, 8),     // PCI configuration, reset control
    (0xc000, 0x10), // IDE bus master
];
/// MMIO windows (base, length).
const MMIO_RANGES: &[(u64, u64)] = &[
    (0xa_0000, 0x2_0000),      // VGA window
    (0xfd00_0000, 0x100_0000), // VGA linear framebuffer
    (0xfebf_0000, 0x1000),     // VGA MMIO registers
    (0xfec0_0000, 0x100),      // IOAPIC
    (0xfee0_0000, 0x1000),     // local APIC
    (0xe_0000, 0x2_0000),      // BIOS ROM
];

/// What one opcode does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// OUT: port, size, value.
    PortWrite,
    /// IN: port, size.
    PortRead,
    /// A store: address, size, value.
    MmioWrite,
    /// A load: address, size.
    MmioRead,
    /// Bytes into guest RAM (DMA descriptors, BIOS frames, buffers): address, length, bytes.
    RamWrite,
    /// A built-in BIOS service call: vector, registers; the frame goes where the ROM stub
    /// would have put it.
    BiosCall,
    /// Guest time passes (up to 65 ms) and due device timers fire.
    Advance,
}

impl Op {
    fn decode(byte: u8) -> Op {
        match byte % 7 {
            0 => Op::PortWrite,
            1 => Op::PortRead,
            2 => Op::MmioWrite,
            3 => Op::MmioRead,
            4 => Op::RamWrite,
            5 => Op::BiosCall,
            _ => Op::Advance,
        }
    }
}

/// Image files the board opens (made once per process; never written: `--snapshot`).
fn images() -> &'static [PathBuf; 3] {
    static IMAGES: OnceLock<[PathBuf; 3]> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let dir = std::env::temp_dir();
        let make = |name: &str, bytes: usize| {
            let path = dir.join(format!("rx86-fuzz-{}-{name}", std::process::id()));
            let pattern: Vec<u8> = (0..bytes).map(|i| (i / 512) as u8 ^ i as u8).collect();
            std::fs::write(&path, pattern).expect("write a fuzz image");
            path
        };
        [make("floppy.img", 1_474_560), make("disk.img", 1 << 20), make("cd.iso", 64 * 2048)]
    })
}

/// A fresh board for one input.
pub fn board() -> (Pc, Clock) {
    let [floppy, disk, cd] = images().clone();
    let config = MachineConfig {
        ram_bytes: RAM_BYTES,
        serial: vec![CharBackend::Null],
        debug_exit_port: Some(0x501),
        snapshot: true,
        drives: vec![
            DriveConfig::at(floppy, DriveInterface::Floppy, DriveMedia::Disk, 0),
            DriveConfig::at(disk, DriveInterface::Ide, DriveMedia::Disk, 0),
            DriveConfig::at(cd, DriveInterface::Ide, DriveMedia::Cdrom, 2),
        ],
        ..MachineConfig::default()
    };
    let clock = Clock::new_virtual();
    let host = HostAttachments::open(&config).expect("open the fuzz images");
    (Pc::new(&config, &clock, host).expect("build the board"), clock)
}

fn size(input: &mut Input<'_>, widest: u8) -> u8 {
    [1, 2, 4, 8][usize::from(input.u8() % if widest == 8 { 4 } else { 3 })]
}

/// An address in one of `ranges` (base, length), or, for one pick in 256, any address
/// within `all` (a mask).
fn address(input: &mut Input<'_>, ranges: &[(u64, u64)], all: u64) -> u64 {
    let pick = input.u8();
    if pick == 0xff {
        return input.u64() & all;
    }
    let (base, len) = ranges[usize::from(pick) % ranges.len()];
    base + u64::from(input.u32()) % len
}

fn port(input: &mut Input<'_>) -> u16 {
    address(input, PORT_RANGES, 0xffff) as u16
}

fn mmio(input: &mut Input<'_>) -> u64 {
    address(input, MMIO_RANGES, u64::MAX)
}

/// Runs the program in `data` against a fresh board.
pub fn board_ops(data: &[u8]) {
    let (pc, clock) = board();
    run_ops(&pc, &clock, data);
}

/// Runs the program in `data` against `pc`.
pub fn run_ops(pc: &Pc, clock: &Clock, data: &[u8]) {
    let mut input = Input::new(data);
    let mem = pc.memory();
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        match Op::decode(input.u8()) {
            Op::PortWrite => {
                let (port, size) = (port(&mut input), size(&mut input, 4));
                pc.io_write(port, size, input.u32());
            }
            Op::PortRead => {
                let (port, size) = (port(&mut input), size(&mut input, 4));
                pc.io_read(port, size);
            }
            Op::MmioWrite => {
                let (addr, size) = (mmio(&mut input), size(&mut input, 8));
                mem.write(addr, &input.u64().to_le_bytes()[..usize::from(size)]);
            }
            Op::MmioRead => {
                let (addr, size) = (mmio(&mut input), size(&mut input, 8));
                mem.read(addr, &mut [0u8; 8][..usize::from(size)]);
            }
            Op::RamWrite => {
                let addr = u64::from(input.u32()) % RAM_BYTES;
                let len = usize::from(input.u8() % 64);
                mem.write(addr, input.take(len));
            }
            Op::BiosCall => bios_call(pc, &mut input),
            Op::Advance => {
                clock.advance_to(clock.now_ns() + u64::from(input.u16()) * 1000);
                pc.fire_due_timers(clock.now_ns());
            }
        }
        pc.power().take();
    }
}

/// Puts a frame for one of the trapped vectors with registers from `input` on a stack in
/// low memory, points the EBDA scratch words at it, and traps as the ROM stub does.
fn bios_call(pc: &Pc, input: &mut Input<'_>) {
    let mem = pc.memory();
    let mut frame = [0u8; FRAME_BYTES];
    frame.copy_from_slice(&{
        let mut f = input.take(FRAME_BYTES).to_vec();
        f.resize(FRAME_BYTES, 0);
        f
    });
    let vector = TRAPPED_VECTORS[usize::from(frame[0]) % TRAPPED_VECTORS.len()];
    frame[..2].copy_from_slice(&u16::from(vector).to_le_bytes());
    let (ss, sp) = (0u16, 0x7000u16);
    mem.write(u64::from(sp), &frame);
    let scratch = (u64::from(EBDA_SEGMENT) << 4) + u64::from(SCRATCH_FRAME);
    mem.write(scratch, &sp.to_le_bytes());
    mem.write(scratch + 2, &ss.to_le_bytes());
    pc.io_write(SERVICE_PORT, 1, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_reaches_the_devices() {
        let (pc, clock) = board();
        // OUT 0x70 <- 0x0f (CMOS index of the shutdown byte), OUT 0x71 <- 0x5a, IN 0x71.
        let cmos_index = PORT_RANGES.iter().position(|r| r.0 == 0x70).unwrap() as u8;
        let out = |offset: u8, value: u8| [0, cmos_index, offset, 0, 0, 0, 0, value, 0, 0, 0];
        let program = [out(0, 0x0f), out(1, 0x5a)].concat();
        run_ops(&pc, &clock, &program);
        assert_eq!(pc.io_read(0x71, 1) & 0xff, 0x5a, "the program's writes reached the CMOS");
    }

    #[test]
    fn a_bios_call_runs_the_service() {
        let (pc, clock) = board();
        // INT 15h AX=E820h, EDX='SMAP', ECX=20, EBX=0, ES:DI=0:8000: the first E820 entry.
        let index = TRAPPED_VECTORS.iter().position(|&v| v == 0x15).unwrap() as u8;
        let mut frame = [0u8; FRAME_BYTES];
        frame[0] = index;
        frame[2..6].copy_from_slice(&0x8000u32.to_le_bytes());
        frame[22..26].copy_from_slice(&0x534d_4150u32.to_le_bytes());
        frame[26..30].copy_from_slice(&20u32.to_le_bytes());
        frame[30..34].copy_from_slice(&0xe820u32.to_le_bytes());
        let mut program = vec![5];
        program.extend_from_slice(&frame);
        run_ops(&pc, &clock, &program);
        let mut eax = [0u8; 4];
        pc.memory().read(0x7000 + 30, &mut eax);
        assert_eq!(u32::from_le_bytes(eax), 0x534d_4150, "EAX = 'SMAP' on success");
        let mut entry = [0u8; 20];
        pc.memory().read(0x8000, &mut entry);
        assert_eq!(&entry[..8], &[0; 8], "the first range starts at 0");
        assert_eq!(entry[16], 1, "usable RAM");
    }
}
