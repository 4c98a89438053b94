//! The PCI windows: the address ranges the i440FX forwards to PCI, where each function's BARs
//! decode at whatever address configuration software (rx86's BIOS, SeaBIOS, an OS) gave them.
//! The memory window runs from the top of RAM below 4 GiB to the IOAPIC; the I/O window covers
//! the ports above the ISA range, beneath the board's fixed port devices.
//!
//! A window knows, for each BAR, the function it belongs to and the bus device that answers
//! there. After every configuration write, [`super::PciBus`] calls [`PciWindow::refresh`],
//! which reads each function's command register and BARs through its configuration space
//! (PCI 3.0 section 6.2.5.1: a memory BAR decodes when the command register's Memory Space bit
//! is set, an I/O BAR when its I/O Space bit is; the low bits hold the BAR's type, the rest
//! its address) and recomputes where each device answers. An access the window does not
//! decode (no BAR there, or decoding disabled) is a master abort: reads are all-ones, writes
//! are dropped.

use super::config_space::{
    BAR0, COMMAND, COMMAND_IO_SPACE, COMMAND_MEMORY_SPACE, EXPANSION_ROM, EXPANSION_ROM_ADDRESS_MASK,
    EXPANSION_ROM_ENABLE,
};
use super::SharedPciFunction;
use rx86_core::bus::{size_mask, BusDevice, SharedDevice};
use std::sync::{Arc, Mutex};

/// Bit 0 of a BAR: set for an I/O BAR.
const BAR_IO_SPACE: u32 = 1;

/// Which address space a window forwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressSpace {
    /// Memory cycles: 32-bit memory BARs and expansion ROMs.
    Memory,
    /// I/O cycles: I/O BARs.
    Io,
}

impl AddressSpace {
    /// The command register bit that turns decoding in this space on.
    fn command_enable(self) -> u16 {
        match self {
            AddressSpace::Memory => COMMAND_MEMORY_SPACE,
            AddressSpace::Io => COMMAND_IO_SPACE,
        }
    }

    /// The low bits of a BAR that are flags, not address: space, type and prefetchable for
    /// memory (3:0), space and a reserved bit for I/O (1:0).
    fn bar_flags(self) -> u32 {
        match self {
            AddressSpace::Memory => 0xf,
            AddressSpace::Io => 0x3,
        }
    }

    fn name(self) -> &'static str {
        match self {
            AddressSpace::Memory => "memory",
            AddressSpace::Io => "I/O",
        }
    }
}

/// Which base address register a target follows.
#[derive(Clone, Copy)]
enum Register {
    /// BAR `n` (32-bit).
    Bar(usize),
    /// The expansion ROM BAR (decodes only with its enable bit set, section 6.2.5.2).
    ExpansionRom,
}

/// One BAR and the device that answers where it decodes.
struct BarTarget {
    function: SharedPciFunction,
    register: Register,
    size: u64,
    device: SharedDevice,
    name: String,
}

impl BarTarget {
    /// Where the BAR decodes now in `space` (`None` when disabled, unassigned, or a BAR of
    /// the other space).
    fn decoded_at(&self, space: AddressSpace) -> Option<u64> {
        let mut f = self.function.lock().unwrap_or_else(|e| e.into_inner());
        if f.read_config(COMMAND, 2) as u16 & space.command_enable() == 0 {
            return None;
        }
        let start = match self.register {
            Register::Bar(index) => {
                let bar = f.read_config(BAR0 + 4 * index as u8, 4);
                if (bar & BAR_IO_SPACE != 0) != (space == AddressSpace::Io) {
                    return None;
                }
                bar & !space.bar_flags()
            }
            Register::ExpansionRom => {
                let bar = f.read_config(EXPANSION_ROM, 4);
                if bar & EXPANSION_ROM_ENABLE == 0 {
                    return None;
                }
                bar & EXPANSION_ROM_ADDRESS_MASK
            }
        };
        (start != 0).then_some(u64::from(start))
    }

    fn describe(&self) -> String {
        match self.register {
            Register::Bar(index) => format!("{} (BAR{index})", self.name),
            Register::ExpansionRom => format!("{} (expansion ROM)", self.name),
        }
    }
}

/// A window and the BARs it decodes.
pub struct PciWindow {
    space: AddressSpace,
    base: u64,
    len: u64,
    targets: Vec<BarTarget>,
    /// Where each target decodes now: (start, end, target index), from the last refresh.
    decoded: Vec<(u64, u64, usize)>,
    /// Placements refused at the last refresh (start, target index), so each is logged once.
    refused: Vec<(u64, usize)>,
}

/// A window shared by the bus (which refreshes it) and the address map or port bus (which
/// routes to it).
pub type SharedPciWindow = Arc<Mutex<PciWindow>>;

impl PciWindow {
    /// A window for `space` over `base..base + len` with no BARs yet.
    pub fn new(space: AddressSpace, base: u64, len: u64) -> Self {
        PciWindow { space, base, len, targets: Vec::new(), decoded: Vec::new(), refused: Vec::new() }
    }

    /// The window as a shared handle.
    pub fn shared(self) -> SharedPciWindow {
        Arc::new(Mutex::new(self))
    }

    /// Where the window starts.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// How long it is.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the window is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Declares that 32-bit BAR `index` of `function`, `size` bytes, is answered by `device`
    /// (with offsets from the BAR's address), and refreshes. The BAR decodes here only while
    /// it is a BAR of this window's address space.
    pub fn add_bar(&mut self, name: &str, function: SharedPciFunction, index: usize, size: u64, device: SharedDevice) {
        self.targets.push(BarTarget { function, register: Register::Bar(index), size, device, name: name.into() });
        self.refresh();
    }

    /// Declares that the expansion ROM BAR of `function`, `size` bytes, is answered by `device`,
    /// and refreshes. Expansion ROMs are memory: in an I/O window they never decode.
    pub fn add_expansion_rom(&mut self, name: &str, function: SharedPciFunction, size: u64, device: SharedDevice) {
        let register = Register::ExpansionRom;
        if self.space == AddressSpace::Io {
            log::error!("PCI: {name}: an expansion ROM cannot decode in the I/O window");
            return;
        }
        self.targets.push(BarTarget { function, register, size, device, name: name.into() });
        self.refresh();
    }

    /// Rereads every function's command register and BARs and recomputes where each decodes.
    /// A BAR that lies (partly) outside the window, or overlaps another, is logged (once per
    /// placement) and not decoded.
    pub fn refresh(&mut self) {
        let mut decoded: Vec<(u64, u64, usize)> = Vec::new();
        let mut refused: Vec<(u64, usize, String)> = Vec::new();
        let space = self.space.name();
        for (i, target) in self.targets.iter().enumerate() {
            let Some(start) = target.decoded_at(self.space) else { continue };
            let end = start + target.size;
            if end == 1 << 32 && start == (1 << 32) - target.size {
                // All address bits set: firmware sizing the BAR with decoding still enabled.
                continue;
            }
            if start < self.base || end > self.base + self.len {
                let why = format!("is outside the PCI {space} window {:#x}-{:#x}", self.base, self.base + self.len - 1);
                refused.push((start, i, why));
                continue;
            }
            if let Some(&(s, e, other)) = decoded.iter().find(|&&(s, e, _)| start < e && s < end) {
                let why = format!("overlaps {} at {s:#x}-{:#x}", self.targets[other].describe(), e - 1);
                refused.push((start, i, why));
                continue;
            }
            decoded.push((start, end, i));
        }
        for (start, i, why) in &refused {
            if !self.refused.contains(&(*start, *i)) {
                let target = &self.targets[*i];
                let last = start + target.size - 1;
                log::warn!("PCI: {} at {start:#x}-{last:#x} {why}; not decoded", target.describe());
            }
        }
        for &(start, end, i) in &decoded {
            if !self.decoded.contains(&(start, end, i)) {
                log::debug!("PCI: {} decodes at {start:#x}-{:#x} ({space})", self.targets[i].describe(), end - 1);
            }
        }
        self.decoded = decoded;
        self.refused = refused.into_iter().map(|(start, i, _)| (start, i)).collect();
    }

    /// The device that answers a `size`-byte access at window offset `offset`, and the offset
    /// into its BAR.
    fn route(&self, offset: u64, size: u8) -> Option<(SharedDevice, u64)> {
        let address = self.base.checked_add(offset)?;
        let last = address.checked_add(u64::from(size).max(1) - 1)?;
        let &(start, _, i) = self.decoded.iter().find(|&&(start, end, _)| start <= address && last < end)?;
        Some((self.targets[i].device.clone(), address - start))
    }
}

/// A window as a bus device: mapped at its base with its length on the MMIO bus (memory
/// window) or as the port bus's fallback (I/O window).
pub struct PciWindowDevice(pub SharedPciWindow);

impl PciWindowDevice {
    fn route(&self, offset: u64, size: u8) -> Option<(SharedDevice, u64)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).route(offset, size)
    }
}

impl BusDevice for PciWindowDevice {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        match self.route(offset, size) {
            Some((device, at)) => device.lock().unwrap_or_else(|e| e.into_inner()).read(at, size),
            None => size_mask(size),
        }
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if let Some((device, at)) = self.route(offset, size) {
            device.lock().unwrap_or_else(|e| e.into_inner()).write(at, size, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::config_space::{BarKind, ConfigSpace, PciId};
    use crate::pci::PciFunction;

    /// A function with one 4 KiB memory BAR0.
    struct OneBar(ConfigSpace);

    impl PciFunction for OneBar {
        fn read_config(&mut self, offset: u8, len: u8) -> u32 {
            self.0.read(offset, len)
        }
        fn write_config(&mut self, offset: u8, len: u8, value: u32) {
            self.0.write(offset, len, value)
        }
    }

    /// A device that reads back the offset it was given and records writes.
    #[derive(Default)]
    struct Echo(Vec<(u64, u64)>);

    impl BusDevice for Echo {
        fn read(&mut self, offset: u64, _size: u8) -> u64 {
            offset
        }
        fn write(&mut self, offset: u64, _size: u8, value: u64) {
            self.0.push((offset, value));
        }
    }

    const WINDOW: u64 = 0x8000_0000;

    fn window() -> (PciWindowDevice, Arc<Mutex<OneBar>>, Arc<Mutex<Echo>>) {
        let mut config =
            ConfigSpace::new(PciId { vendor_id: 1, device_id: 2, revision_id: 0, class_code: 0, header_type: 0 });
        config.set_bar(0, BarKind::Memory32 { prefetchable: false }, 0x1000).unwrap();
        let function = Arc::new(Mutex::new(OneBar(config)));
        let echo = Arc::new(Mutex::new(Echo::default()));
        let mut w = PciWindow::new(AddressSpace::Memory, WINDOW, 0x7ec0_0000);
        w.add_bar("test", function.clone(), 0, 0x1000, echo.clone());
        (PciWindowDevice(w.shared()), function, echo)
    }

    fn configure(function: &Arc<Mutex<OneBar>>, window: &PciWindowDevice, bar: u32, command: u16) {
        let mut f = function.lock().unwrap();
        f.write_config(BAR0, 4, bar);
        f.write_config(COMMAND, 2, u32::from(command));
        drop(f);
        window.0.lock().unwrap().refresh();
    }

    #[test]
    fn a_bar_decodes_only_where_it_is_programmed_and_enabled() {
        let (mut mmio, function, echo) = window();
        assert_eq!(mmio.read(0x1000, 4), 0xffff_ffff, "nothing decodes before the BAR is set");
        configure(&function, &mmio, 0xfebf_f000, 0);
        assert_eq!(mmio.read(0xfebf_f010 - WINDOW, 4), 0xffff_ffff, "memory space disabled");
        configure(&function, &mmio, 0xfebf_f000, COMMAND_MEMORY_SPACE);
        assert_eq!(mmio.read(0xfebf_f010 - WINDOW, 4), 0x10, "the offset into the BAR");
        mmio.write(0xfebf_f500 - WINDOW, 2, 0x1234);
        assert_eq!(echo.lock().unwrap().0, [(0x500, 0x1234)]);
        // Moved: the old address no longer answers, the new one does.
        configure(&function, &mmio, 0x9000_0000, COMMAND_MEMORY_SPACE);
        assert_eq!(mmio.read(0xfebf_f010 - WINDOW, 4), 0xffff_ffff);
        assert_eq!(mmio.read(0x9000_0ffc - WINDOW, 4), 0xffc);
        assert_eq!(mmio.read(0x9000_0ffe - WINDOW, 4), 0xffff_ffff, "an access running past the BAR's end");
    }

    #[test]
    fn the_expansion_rom_decodes_only_with_its_enable_bit() {
        let (mut mmio, function, _) = window();
        let rom = Arc::new(Mutex::new(crate::pci::ExpansionRom::new(vec![0x55, 0xaa])));
        function.lock().unwrap().0.set_expansion_rom(0x8000).unwrap();
        mmio.0.lock().unwrap().add_expansion_rom("rom", function.clone(), 0x8000, rom);
        configure(&function, &mmio, 0, COMMAND_MEMORY_SPACE);
        let mut f = function.lock().unwrap();
        f.write_config(EXPANSION_ROM, 4, u32::MAX);
        assert_eq!(f.read_config(EXPANSION_ROM, 4), 0xffff_8001, "32 KiB, enable bit writable");
        f.write_config(EXPANSION_ROM, 4, 0xfeb0_0000);
        drop(f);
        mmio.0.lock().unwrap().refresh();
        assert_eq!(mmio.read(0xfeb0_0000 - WINDOW, 2), 0xffff, "not enabled");
        function.lock().unwrap().write_config(EXPANSION_ROM, 4, 0xfeb0_0001);
        mmio.0.lock().unwrap().refresh();
        assert_eq!(mmio.read(0xfeb0_0000 - WINDOW, 2), 0xaa55);
    }

    #[test]
    fn a_bar_outside_the_window_is_not_decoded() {
        let (mut mmio, function, _) = window();
        configure(&function, &mmio, 0x7fff_f000, COMMAND_MEMORY_SPACE);
        assert!(mmio.0.lock().unwrap().decoded.is_empty());
        assert_eq!(mmio.read(0, 4), 0xffff_ffff);
        assert_eq!(mmio.read(u64::MAX - 1, 4), 0xffff_ffff, "no overflow at the top");
    }

    /// An I/O window over ports 0x1000-0xFFFF with a function whose BAR0 is a 16-byte I/O
    /// BAR and BAR1 a 4 KiB memory BAR, both declared to the window.
    fn io_window() -> (PciWindowDevice, Arc<Mutex<OneBar>>, Arc<Mutex<Echo>>) {
        let mut config =
            ConfigSpace::new(PciId { vendor_id: 1, device_id: 2, revision_id: 0, class_code: 0, header_type: 0 });
        config.set_bar(0, BarKind::Io, 16).unwrap();
        config.set_bar(1, BarKind::Memory32 { prefetchable: false }, 0x1000).unwrap();
        let function = Arc::new(Mutex::new(OneBar(config)));
        let echo = Arc::new(Mutex::new(Echo::default()));
        let mut w = PciWindow::new(AddressSpace::Io, 0x1000, 0xf000);
        w.add_bar("io", function.clone(), 0, 16, echo.clone());
        w.add_bar("memory", function.clone(), 1, 0x1000, echo.clone());
        (PciWindowDevice(w.shared()), function, echo)
    }

    #[test]
    fn an_io_bar_follows_its_address_and_the_io_space_bit() {
        let (mut io, function, echo) = io_window();
        function.lock().unwrap().write_config(BAR0 + 4, 4, 0x2000);
        configure(&function, &io, 0xc001, COMMAND_MEMORY_SPACE);
        assert_eq!(io.read(0xc004 - 0x1000, 1), 0xff, "I/O space disabled");
        configure(&function, &io, 0xc001, COMMAND_IO_SPACE | COMMAND_MEMORY_SPACE);
        assert_eq!(io.read(0xc004 - 0x1000, 1), 4, "bits 1:0 are flags, not address");
        assert_eq!(io.read(0x2000 - 0x1000, 4), 0xffff_ffff, "a memory BAR never decodes in the I/O window");
        io.write(0xc00e - 0x1000, 2, 0xabcd);
        assert_eq!(echo.lock().unwrap().0, [(0xe, 0xabcd)]);
        configure(&function, &io, 0xd041, COMMAND_IO_SPACE);
        assert_eq!(io.read(0xc004 - 0x1000, 1), 0xff, "the old block is gone");
        assert_eq!(io.read(0xd04f - 0x1000, 1), 0xf);
        assert_eq!(io.read(0xd04e - 0x1000, 4), 0xffff_ffff, "an access running past the block");
    }

    #[test]
    fn io_bars_that_cannot_decode_are_refused_once() {
        let (mut io, function, _) = io_window();
        // Sizing with decoding on: all address bits set, silently not decoded.
        configure(&function, &io, 0xffff_ffff, COMMAND_IO_SPACE);
        let refused = |io: &PciWindowDevice| io.0.lock().unwrap().refused.clone();
        assert!(io.0.lock().unwrap().decoded.is_empty());
        assert!(refused(&io).is_empty(), "a sizing probe is not a placement");
        // Below the window (an ISA address), then above the 64 Ki ports.
        configure(&function, &io, 0x0171, COMMAND_IO_SPACE);
        assert_eq!(refused(&io), [(0x170, 0)]);
        configure(&function, &io, 0x1_0001, COMMAND_IO_SPACE);
        assert_eq!(refused(&io), [(0x1_0000, 0)]);
        io.0.lock().unwrap().refresh();
        assert_eq!(refused(&io), [(0x1_0000, 0)], "still refused, logged once");
        // The last 16 ports are inside.
        configure(&function, &io, 0xfff1, COMMAND_IO_SPACE);
        assert!(refused(&io).is_empty());
        assert_eq!(io.read(0xffff - 0x1000, 1), 0xf);
    }
}
