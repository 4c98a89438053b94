//! rx86's built-in BIOS: a ROM of small stubs and the services behind them in Rust.
//!
//! How a call works: the guest executes `INT n`; the IVT entry points into the ROM
//! ([`rom`]); the stub saves the caller's registers on the stack as a [`Frame`],
//! stores SS:SP in the EBDA and writes to [`rom::SERVICE_PORT`]. The board passes that
//! write to [`Bios::service`], which reads the frame, does the work through the same
//! ports and memory a real BIOS uses (PIC, PIT, CMOS, VGA, keyboard controller, PCI
//! configuration space) plus direct access to the disk images, and writes the results
//! back into the frame. The stub restores the registers and returns. The same path
//! serves the software CPU and KVM (a port write is a plain I/O exit).
//!
//! Services (one file each): [`post`] power-on set-up; [`video`] INT 10h with VBE;
//! [`disk`] INT 13h for floppies, hard disks and CD-ROMs with [`eltorito`] boot;
//! [`system`] INT 11h, 12h and 15h; [`keyboard`] IRQ 1 and INT 16h; [`clock`] INT 1Ah
//! with the PCI BIOS; [`boot`] INT 18h/19h.

pub mod boot;
pub mod clock;
pub mod disk;
pub mod eltorito;
pub mod frame;
pub mod keyboard;
pub mod post;
pub mod rom;
pub mod system;
pub mod video;

use crate::layout::MemoryLayout;
use crate::linux_setup::RealModeSetup;
use disk::Drives;
pub use frame::Frame;
use rom::{Rom, RomError};
use rx86_core::entry::EntryState;
use rx86_core::phys::PhysMemory;
use rx86_core::platform::Platform;
use rx86_devices::block::SharedBackend;
use rx86_devices::vga::SharedVga;

/// A device class in the boot order (`--boot` letters a, c, d).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootDevice {
    /// The first floppy drive (`a`).
    Floppy,
    /// The first hard disk (`c`).
    HardDisk,
    /// The CD-ROM (`d`), booted through El Torito.
    Cdrom,
}

/// What the BIOS serves.
pub struct BiosConfig {
    /// The machine's memory layout (E820, memory sizes).
    pub layout: MemoryLayout,
    /// Floppy drives A: and B:.
    pub floppies: [Option<SharedBackend>; 2],
    /// Hard disks in BIOS order (drive 80h, 81h, ...).
    pub hard_disks: Vec<SharedBackend>,
    /// The CD-ROM's medium.
    pub cdrom: Option<SharedBackend>,
    /// Devices to try, in order.
    pub boot_order: Vec<BootDevice>,
    /// The VGA (mode sets, fonts); `None` for a machine without one.
    pub vga: Option<SharedVga>,
    /// Where the VGA's linear framebuffer decodes (VBE mode info).
    pub lfb_address: Option<u64>,
    /// A kernel loaded for its real-mode setup (`crate::linux_setup`): INT 19h enters it
    /// instead of trying the boot order.
    pub linux_setup: Option<RealModeSetup>,
}

/// What the stub does after a service returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Return to the caller with the (possibly updated) frame.
    Return,
    /// Leave the frame alone, wait for an interrupt, and call again.
    Wait,
}

/// The BIOS services and their state.
pub struct Bios {
    rom: Rom,
    drives: Drives,
    boot_order: Vec<BootDevice>,
    layout: MemoryLayout,
    vga: Option<SharedVga>,
    lfb_address: Option<u64>,
    /// The BDA tick count when the INT 15h AH=86h wait in progress began.
    wait_start: Option<u32>,
    linux_setup: Option<RealModeSetup>,
}

impl Bios {
    /// The BIOS for `config`, with its ROM assembled.
    pub fn new(config: BiosConfig) -> Result<Self, RomError> {
        Ok(Bios {
            rom: rom::build_rom()?,
            drives: Drives::new(config.floppies, config.hard_disks, config.cdrom),
            boot_order: config.boot_order,
            layout: config.layout,
            vga: config.vga,
            lfb_address: config.lfb_address,
            wait_start: None,
            linux_setup: config.linux_setup,
        })
    }

    /// Copies the ROM to F000:0000 and returns the CPU's power-on state (F000:FFF0).
    pub fn install(&self, memory: &PhysMemory) -> EntryState {
        memory.write(rom::ROM_BASE, &self.rom.image);
        let mut entry = EntryState::reset();
        entry.cs.base = rom::ROM_BASE;
        entry
    }

    /// Serves the call whose frame the ROM stub just published (the board calls this
    /// when the guest writes to [`rom::SERVICE_PORT`]).
    pub fn service(&mut self, hw: &dyn Platform) {
        let mem = hw.memory();
        let ebda = u64::from(rom::EBDA_SEGMENT) << 4;
        let sp = read_u16(mem, ebda + u64::from(rom::SCRATCH_FRAME));
        let ss = read_u16(mem, ebda + u64::from(rom::SCRATCH_FRAME) + 2);
        let at = Frame::linear(ss, sp);
        let mut f = Frame::read(mem, at);
        let action = match f.vector {
            rom::POST_VECTOR => {
                self.post(hw);
                Action::Return
            }
            0x09 => keyboard::irq1(hw),
            0x10 => video::int10(self, hw, &mut f),
            0x11 => system::int11(hw, &mut f),
            0x12 => system::int12(hw, &mut f),
            0x13 => disk::int13(&mut self.drives, hw, &mut f),
            0x14 => system::int14(&mut f),
            0x15 => system::int15(self, hw, &mut f),
            0x16 => keyboard::int16(hw, &mut f),
            0x17 => system::int17(&mut f),
            0x18 => boot::int18(self, hw),
            0x19 => boot::int19(self, hw, &mut f),
            0x1a => clock::int1a(hw, &mut f),
            v => {
                log::warn!("BIOS: call through unknown vector {v:#x} from {:04x}:{:04x}", f.cs, f.ip);
                Action::Return
            }
        };
        if action == Action::Return {
            f.write(mem, at);
        }
        let code = match action {
            Action::Return => rom::ACTION_RETURN,
            Action::Wait => rom::ACTION_WAIT,
        };
        mem.write(ebda + u64::from(rom::SCRATCH_ACTION), &[code]);
    }

    fn post(&mut self, hw: &dyn Platform) {
        post::post(self, hw);
    }
}

/// Logs a BIOS function the services do not implement (caller gets CF set).
pub(crate) fn unsupported(what: &str, f: &mut Frame) {
    log::warn!(
        "BIOS: unsupported {what} function AX={:04x} BX={:04x} CX={:04x} DX={:04x} from {:04x}:{:04x}",
        f.ax(),
        f.bx(),
        f.cx(),
        f.dx(),
        f.cs,
        f.ip
    );
}

/// Reads a byte of guest memory.
pub(crate) fn read_u8(mem: &PhysMemory, at: u64) -> u8 {
    let mut b = [0u8; 1];
    mem.read(at, &mut b);
    b[0]
}

/// Reads a little-endian word of guest memory.
pub(crate) fn read_u16(mem: &PhysMemory, at: u64) -> u16 {
    let mut b = [0u8; 2];
    mem.read(at, &mut b);
    u16::from_le_bytes(b)
}

/// Reads a little-endian dword of guest memory.
pub(crate) fn read_u32(mem: &PhysMemory, at: u64) -> u32 {
    let mut b = [0u8; 4];
    mem.read(at, &mut b);
    u32::from_le_bytes(b)
}

/// Writes a byte of guest memory.
pub(crate) fn write_u8(mem: &PhysMemory, at: u64, v: u8) {
    mem.write(at, &[v]);
}

/// Writes a little-endian word of guest memory.
pub(crate) fn write_u16(mem: &PhysMemory, at: u64, v: u16) {
    mem.write(at, &v.to_le_bytes());
}

/// Writes a little-endian dword of guest memory.
pub(crate) fn write_u32(mem: &PhysMemory, at: u64, v: u32) {
    mem.write(at, &v.to_le_bytes());
}

/// BIOS data area addresses (IBM PC/AT Technical Reference).
pub(crate) mod bda {
    /// Base I/O addresses of COM1-COM4.
    pub const COM_PORTS: u64 = 0x400;
    /// EBDA segment.
    pub const EBDA_SEGMENT: u64 = 0x40e;
    /// Equipment word.
    pub const EQUIPMENT: u64 = 0x410;
    /// Conventional memory in KiB.
    pub const MEMORY_KB: u64 = 0x413;
    /// Keyboard shift flags 1 and 2.
    pub const KBD_FLAGS: u64 = 0x417;
    /// Keyboard buffer head and tail (offsets from 0x400).
    pub const KBD_HEAD: u64 = 0x41a;
    /// Keyboard buffer tail.
    pub const KBD_TAIL: u64 = 0x41c;
    /// Floppy status of the last operation.
    pub const FLOPPY_STATUS: u64 = 0x441;
    /// Current video mode.
    pub const VIDEO_MODE: u64 = 0x449;
    /// Text columns.
    pub const VIDEO_COLUMNS: u64 = 0x44a;
    /// Bytes per video page.
    pub const VIDEO_PAGE_SIZE: u64 = 0x44c;
    /// Start offset of the current page.
    pub const VIDEO_PAGE_START: u64 = 0x44e;
    /// Cursor positions of pages 0-7 (column, row).
    pub const CURSOR_POS: u64 = 0x450;
    /// Cursor shape (end line, start line).
    pub const CURSOR_SHAPE: u64 = 0x460;
    /// Active page.
    pub const VIDEO_PAGE: u64 = 0x462;
    /// CRTC index port.
    pub const CRTC_PORT: u64 = 0x463;
    /// Timer ticks since midnight.
    pub const TICKS: u64 = 0x46c;
    /// Midnight rollover flag.
    pub const MIDNIGHT: u64 = 0x470;
    /// Hard disk status of the last operation.
    pub const DISK_STATUS: u64 = 0x474;
    /// Number of hard disks.
    pub const DISK_COUNT: u64 = 0x475;
    /// Keyboard buffer start and end (offsets from 0x400).
    pub const KBD_BUFFER_START: u64 = 0x480;
    /// Keyboard buffer end.
    pub const KBD_BUFFER_END: u64 = 0x482;
    /// Text rows minus one.
    pub const VIDEO_ROWS: u64 = 0x484;
    /// Character height in scan lines.
    pub const CHAR_HEIGHT: u64 = 0x485;
    /// Video mode options (EGA/VGA).
    pub const VIDEO_OPTIONS: u64 = 0x487;
    /// Keyboard flags 3 (E0 prefix seen, 101-key keyboard).
    pub const KBD_FLAGS3: u64 = 0x496;
}
