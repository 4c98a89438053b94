//! Intel 8237A ISA DMA controller pair with the PC/AT page registers (8237A
//! datasheet, "Register Description" and "Programming"; IBM PC/AT Technical Reference
//! for the page registers and the cascade of the two chips).
//!
//! DMA1 carries 8-bit channels 0-3 (ports 0x00-0x0F, one register per port); DMA2
//! carries 16-bit channels 4-7 (ports 0xC0-0xDF, one register every second port;
//! channel 4 is the cascade from DMA1). A 16-bit channel counts words and addresses
//! A1-A16, with the page register supplying A17-A23.
//!
//! Devices (the floppy controller) move data with [`IsaDma::write_memory`] and
//! [`IsaDma::read_memory`]; a transfer stops at terminal count (TC), which the device
//! sees in the returned [`DmaTransfer`].
//!
//! # Board wiring
//!
//! | ports        | device                                                 |
//! |--------------|--------------------------------------------------------|
//! | 0x00-0x0F    | [`IsaDmaPorts::dma1`] (len 16)                         |
//! | 0xC0-0xDF    | [`IsaDmaPorts::dma2`] (len 32)                         |
//! | 0x81-0x8F    | [`DmaPageRegisters`] (len 15, offset 0 = port 0x81)    |
//!
//! Port 0x80 is the POST code port on this board, so the page register block starts
//! at 0x81; 0x80 (a scratch page register on the AT) is left to the POST device. The
//! unassigned page ports (0x84-0x86, 0x88, 0x8C-0x8E) and 0x8F (channel 4, the
//! cascade) are scratch registers that read back what was written.

use crate::ide::SharedDmaMemory;
use rx86_core::bus::BusDevice;
use std::sync::{Arc, Mutex};

/// First port of [`DmaPageRegisters`].
pub const PAGE_REGISTERS_BASE: u16 = 0x81;
/// Ports of [`DmaPageRegisters`] (0x81-0x8F).
pub const PAGE_REGISTERS_LEN: u64 = 15;
/// The page register port of each channel 0-7 (AT layout).
const PAGE_PORTS: [u16; 8] = [0x87, 0x83, 0x81, 0x82, 0x8f, 0x8b, 0x89, 0x8a];

// Registers of one 8237A by register number (datasheet table 2).
/// Status (read) / Command (write).
const REG_STATUS_COMMAND: u8 = 8;
/// Request register (write).
const REG_REQUEST: u8 = 9;
/// Single mask bit (write).
const REG_SINGLE_MASK: u8 = 10;
/// Mode register (write).
const REG_MODE: u8 = 11;
/// Clear byte pointer flip-flop (write).
const REG_CLEAR_FLIP_FLOP: u8 = 12;
/// Temporary (read) / Master clear (write).
const REG_TEMPORARY_MASTER_CLEAR: u8 = 13;
/// Clear mask register (write).
const REG_CLEAR_MASK: u8 = 14;
/// Write all mask bits (write); reads back the mask on AT-compatible chipsets.
const REG_ALL_MASK: u8 = 15;

// Mode register fields.
/// Bits 3:2 transfer type: 01 = write (to memory), 10 = read (from memory), 00 = verify.
const MODE_TRANSFER: u8 = 0b0000_1100;
/// Write transfer: I/O to memory.
const MODE_TRANSFER_WRITE: u8 = 0b0000_0100;
/// Read transfer: memory to I/O.
const MODE_TRANSFER_READ: u8 = 0b0000_1000;
/// Bit 4: autoinitialize.
const MODE_AUTOINIT: u8 = 0b0001_0000;
/// Bit 5: address decrement.
const MODE_DECREMENT: u8 = 0b0010_0000;

/// One channel's registers.
#[derive(Debug, Default, Clone, Copy)]
struct Channel {
    base_address: u16,
    base_count: u16,
    current_address: u16,
    current_count: u16,
    mode: u8,
}

/// One 8237A.
#[derive(Debug, Clone)]
struct Controller {
    channels: [Channel; 4],
    command: u8,
    /// Bits 0-3 TC reached, bits 4-7 requests.
    status: u8,
    mask: u8,
    flip_flop: bool,
    /// 16-bit (DMA2) controller.
    word: bool,
}

impl Controller {
    fn new(word: bool) -> Self {
        Controller { channels: [Channel::default(); 4], command: 0, status: 0, mask: 0x0f, flip_flop: false, word }
    }

    fn master_clear(&mut self) {
        *self = Controller::new(self.word);
    }

    /// The low or high byte of `v` by the flip-flop, toggling it.
    fn byte_of(&mut self, v: u16) -> u8 {
        let high = self.flip_flop;
        self.flip_flop = !high;
        (v >> if high { 8 } else { 0 }) as u8
    }

    fn set_byte(&mut self, v: &mut u16, byte: u8) {
        let high = self.flip_flop;
        self.flip_flop = !high;
        *v = if high { (*v & 0x00ff) | u16::from(byte) << 8 } else { (*v & 0xff00) | u16::from(byte) };
    }

    fn read(&mut self, reg: u8) -> u8 {
        match reg {
            0..=7 => {
                let ch = self.channels[usize::from(reg / 2)];
                let v = if reg.is_multiple_of(2) { ch.current_address } else { ch.current_count };
                self.byte_of(v)
            }
            REG_STATUS_COMMAND => {
                let status = self.status;
                self.status &= 0xf0;
                status
            }
            REG_ALL_MASK => self.mask | 0xf0,
            _ => 0xff,
        }
    }

    fn write(&mut self, reg: u8, value: u8) {
        match reg {
            0..=7 => {
                let i = usize::from(reg / 2);
                let mut ch = self.channels[i];
                if reg.is_multiple_of(2) {
                    self.set_byte(&mut ch.base_address, value);
                    ch.current_address = ch.base_address;
                } else {
                    self.set_byte(&mut ch.base_count, value);
                    ch.current_count = ch.base_count;
                }
                self.channels[i] = ch;
            }
            REG_STATUS_COMMAND => {
                if value != 0 {
                    log::debug!("dma: command register {value:#04x} (only the default is modelled)");
                }
                self.command = value;
            }
            REG_REQUEST => {
                let bit = 0x10 << (value & 3);
                if value & 4 != 0 {
                    self.status |= bit;
                } else {
                    self.status &= !bit;
                }
            }
            REG_SINGLE_MASK => {
                let bit = 1 << (value & 3);
                if value & 4 != 0 {
                    self.mask |= bit;
                } else {
                    self.mask &= !bit;
                }
            }
            REG_MODE => self.channels[usize::from(value & 3)].mode = value,
            REG_CLEAR_FLIP_FLOP => self.flip_flop = false,
            REG_TEMPORARY_MASTER_CLEAR => self.master_clear(),
            REG_CLEAR_MASK => self.mask = 0,
            REG_ALL_MASK => self.mask = value & 0x0f,
            _ => {}
        }
    }
}

/// The result of a device's transfer request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaTransfer {
    /// Bytes moved.
    pub bytes: usize,
    /// The channel reached terminal count (the device should end its operation).
    pub terminal_count: bool,
}

/// Both 8237As and the page registers.
pub struct IsaDma {
    controllers: [Controller; 2],
    /// Page register ports 0x81-0x8F by port - 0x81.
    pages: [u8; PAGE_REGISTERS_LEN as usize],
    memory: Option<SharedDmaMemory>,
}

/// The pair shared by its port devices and the devices that use DMA.
pub type SharedIsaDma = Arc<Mutex<IsaDma>>;

impl IsaDma {
    /// The pair at power-on (all channels masked), moving data through `memory`
    /// (`None`: transfers move nothing and log).
    pub fn new(memory: Option<SharedDmaMemory>) -> Self {
        IsaDma {
            controllers: [Controller::new(false), Controller::new(true)],
            pages: [0; PAGE_REGISTERS_LEN as usize],
            memory,
        }
    }

    /// The pair behind a mutex, as devices and ports share it.
    pub fn shared(memory: Option<SharedDmaMemory>) -> SharedIsaDma {
        Arc::new(Mutex::new(Self::new(memory)))
    }

    fn page(&self, channel: usize) -> u8 {
        self.pages[usize::from(PAGE_PORTS[channel] - PAGE_REGISTERS_BASE)]
    }

    fn split(channel: usize) -> Option<(usize, usize)> {
        (channel < 8).then_some((channel / 4, channel % 4))
    }

    /// True when `channel` (0-7) is unmasked and programmed for a transfer.
    pub fn channel_enabled(&self, channel: usize) -> bool {
        Self::split(channel).is_some_and(|(c, i)| self.controllers[c].mask & (1 << i) == 0)
    }

    /// The device on `channel` writes `data` to memory (a "write" transfer; verify
    /// transfers count without storing).
    pub fn write_memory(&mut self, channel: usize, data: &[u8]) -> DmaTransfer {
        let mut at = 0;
        self.transfer(channel, data.len(), MODE_TRANSFER_WRITE, |mem, addr, n| {
            if let Some(mem) = mem {
                if mem.dma_write(addr, &data[at..at + n]).is_err() {
                    log::warn!("dma: channel {channel} write of {n} bytes at {addr:#x} is outside RAM");
                }
            }
            at += n;
        })
    }

    /// The device on `channel` reads memory into `buf` (a "read" transfer).
    pub fn read_memory(&mut self, channel: usize, buf: &mut [u8]) -> DmaTransfer {
        let mut at = 0;
        let len = buf.len();
        self.transfer(channel, len, MODE_TRANSFER_READ, |mem, addr, n| {
            if let Some(mem) = mem {
                if mem.dma_read(addr, &mut buf[at..at + n]).is_err() {
                    log::warn!("dma: channel {channel} read of {n} bytes at {addr:#x} is outside RAM");
                    buf[at..at + n].fill(0xff);
                }
            }
            at += n;
        })
    }

    /// Moves up to `len` bytes unit by unit, calling `step(memory, address, unit bytes)`
    /// when the channel's transfer type is `direction`.
    fn transfer(
        &mut self,
        channel: usize,
        len: usize,
        direction: u8,
        mut step: impl FnMut(Option<&SharedDmaMemory>, u64, usize),
    ) -> DmaTransfer {
        let none = DmaTransfer { bytes: 0, terminal_count: false };
        let Some((c, i)) = Self::split(channel) else { return none };
        if !self.channel_enabled(channel) {
            return none;
        }
        let page = u64::from(self.page(channel));
        let ctrl = &mut self.controllers[c];
        let unit = if ctrl.word { 2 } else { 1 };
        let mut ch = ctrl.channels[i];
        let kind = ch.mode & MODE_TRANSFER;
        if kind != direction && kind != 0 {
            log::warn!("dma: channel {channel} programmed for mode {:#04x}, device asks the other way", ch.mode);
            return none;
        }
        let mut bytes = 0;
        let mut terminal_count = false;
        while bytes + unit <= len {
            let addr = if ctrl.word {
                (page & 0xfe) << 16 | u64::from(ch.current_address) << 1
            } else {
                page << 16 | u64::from(ch.current_address)
            };
            step(if kind == 0 { None } else { self.memory.as_ref() }, addr, unit);
            bytes += unit;
            ch.current_address = if ch.mode & MODE_DECREMENT != 0 {
                ch.current_address.wrapping_sub(1)
            } else {
                ch.current_address.wrapping_add(1)
            };
            let (count, underflow) = ch.current_count.overflowing_sub(1);
            ch.current_count = count;
            if underflow {
                terminal_count = true;
                ctrl.status |= 1 << i;
                if ch.mode & MODE_AUTOINIT != 0 {
                    ch.current_address = ch.base_address;
                    ch.current_count = ch.base_count;
                } else {
                    ctrl.mask |= 1 << i;
                }
                break;
            }
        }
        ctrl.channels[i] = ch;
        DmaTransfer { bytes, terminal_count }
    }
}

fn lock(dma: &SharedIsaDma) -> std::sync::MutexGuard<'_, IsaDma> {
    dma.lock().unwrap_or_else(|e| e.into_inner())
}

/// The register ports of one 8237A.
pub struct IsaDmaPorts {
    dma: SharedIsaDma,
    controller: usize,
}

impl IsaDmaPorts {
    /// DMA1 (channels 0-3) at ports 0x00-0x0F.
    pub fn dma1(dma: SharedIsaDma) -> Self {
        IsaDmaPorts { dma, controller: 0 }
    }

    /// DMA2 (channels 4-7) at ports 0xC0-0xDF.
    pub fn dma2(dma: SharedIsaDma) -> Self {
        IsaDmaPorts { dma, controller: 1 }
    }

    /// The register a port offset selects (DMA2 decodes every second port).
    fn register(&self, offset: u64) -> Option<u8> {
        match self.controller {
            0 if offset < 16 => Some(offset as u8),
            1 if offset < 32 && offset.is_multiple_of(2) => Some((offset / 2) as u8),
            _ => None,
        }
    }
}

impl BusDevice for IsaDmaPorts {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        let mut dma = lock(&self.dma);
        let mut v = 0;
        for b in 0..u64::from(size.min(8)) {
            let byte = match self.register(offset + b) {
                Some(reg) => dma.controllers[self.controller].read(reg),
                None => 0xff,
            };
            v |= u64::from(byte) << (8 * b);
        }
        v
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        let mut dma = lock(&self.dma);
        for b in 0..u64::from(size.min(8)) {
            if let Some(reg) = self.register(offset + b) {
                dma.controllers[self.controller].write(reg, (value >> (8 * b)) as u8);
            }
        }
    }
}

/// The page registers at ports 0x81-0x8F (offset 0 = port 0x81).
pub struct DmaPageRegisters(pub SharedIsaDma);

impl BusDevice for DmaPageRegisters {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        let dma = lock(&self.0);
        (0..u64::from(size.min(8))).fold(0, |v, b| {
            let byte = dma.pages.get((offset + b) as usize).copied().unwrap_or(0xff);
            v | u64::from(byte) << (8 * b)
        })
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        let mut dma = lock(&self.0);
        for b in 0..u64::from(size.min(8)) {
            if let Some(p) = dma.pages.get_mut((offset + b) as usize) {
                *p = (value >> (8 * b)) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rig() -> (SharedIsaDma, IsaDmaPorts, IsaDmaPorts, DmaPageRegisters, Arc<rx86_core::phys::PhysMemory>) {
        let mem = crate::ide::tests_support::ram();
        let dma = IsaDma::shared(Some(mem.clone()));
        (dma.clone(), IsaDmaPorts::dma1(dma.clone()), IsaDmaPorts::dma2(dma.clone()), DmaPageRegisters(dma), mem)
    }

    /// Programs channel 2 as a BIOS does for a floppy read: mask, clear flip-flop,
    /// mode, address, page, count, unmask.
    fn program_channel2(d1: &mut IsaDmaPorts, pages: &mut DmaPageRegisters, mode: u8, addr: u32, count: u16) {
        d1.write(0x0a, 1, 0x06);
        d1.write(0x0c, 1, 0);
        d1.write(0x0b, 1, u64::from(mode));
        d1.write(0x04, 1, u64::from(addr & 0xff));
        d1.write(0x04, 1, u64::from(addr >> 8 & 0xff));
        pages.write(0, 1, u64::from(addr >> 16));
        d1.write(0x05, 1, u64::from(count & 0xff));
        d1.write(0x05, 1, u64::from(count >> 8));
        d1.write(0x0a, 1, 0x02);
    }

    #[test]
    fn channel2_write_to_memory_with_terminal_count() {
        let (dma, mut d1, _, mut pages, mem) = rig();
        program_channel2(&mut d1, &mut pages, 0x46, 0x0_1234, 511);
        assert!(dma.lock().unwrap().channel_enabled(2));
        let data: Vec<u8> = (0..600).map(|i| i as u8).collect();
        let t = dma.lock().unwrap().write_memory(2, &data);
        assert_eq!(t, DmaTransfer { bytes: 512, terminal_count: true }, "count + 1 bytes");
        let mut back = vec![0u8; 513];
        mem.dma_read(0x1234, &mut back).unwrap();
        assert_eq!(&back[..512], &data[..512]);
        assert_eq!(back[512], 0);
        assert_eq!(d1.read(0x08, 1) & 0x0f, 0x04, "TC bit for channel 2");
        assert_eq!(d1.read(0x08, 1) & 0x0f, 0, "cleared by reading status");
        assert!(!dma.lock().unwrap().channel_enabled(2), "masked at TC without autoinit");
        assert_eq!(d1.read(0x0f, 1) & 0x04, 0x04);
        d1.write(0x0c, 1, 0);
        assert_eq!((d1.read(0x04, 1), d1.read(0x04, 1)), (0x34, 0x14), "current address advanced 512");
        assert_eq!((d1.read(0x05, 1), d1.read(0x05, 1)), (0xff, 0xff), "count underflowed");
    }

    #[test]
    fn read_from_memory_autoinit_decrement_and_wrap() {
        let (dma, mut d1, _, mut pages, mem) = rig();
        mem.dma_write(0x2_0000, &[1, 2, 3, 4]).unwrap();
        mem.dma_write(0x2_fffe, &[9, 8]).unwrap();
        program_channel2(&mut d1, &mut pages, 0x4a | MODE_AUTOINIT, 0x2_fffe, 3);
        let mut buf = [0u8; 8];
        let t = dma.lock().unwrap().read_memory(2, &mut buf);
        assert_eq!(t, DmaTransfer { bytes: 4, terminal_count: true });
        assert_eq!(&buf[..4], &[9, 8, 1, 2], "address wraps inside the 64 KiB page");
        assert!(dma.lock().unwrap().channel_enabled(2), "autoinit keeps the channel");
        let t = dma.lock().unwrap().read_memory(2, &mut buf[..2]);
        assert_eq!((t.bytes, &buf[..2]), (2, &[9, 8][..]), "reloaded base address");

        program_channel2(&mut d1, &mut pages, 0x4a | MODE_DECREMENT, 0x2_0003, 2);
        let t = dma.lock().unwrap().read_memory(2, &mut buf);
        assert_eq!((t.bytes, &buf[..3]), (3, &[4, 3, 2][..]));
        program_channel2(&mut d1, &mut pages, 0x46, 0x2_0000, 2);
        assert_eq!(dma.lock().unwrap().read_memory(2, &mut buf).bytes, 0, "wrong direction moves nothing");
        d1.write(0x0d, 1, 0);
        assert!(!dma.lock().unwrap().channel_enabled(2), "master clear masks all");
    }

    #[test]
    fn sixteen_bit_channels_count_words() {
        let (dma, _, mut d2, mut pages, mem) = rig();
        d2.write(0x18, 1, 0); // clear flip-flop (register 12)
        d2.write(0x16, 1, 0x45); // mode: channel 5, write, single
        d2.write(0x04, 1, 0x00); // channel 5 address register (register 2)
        d2.write(0x04, 1, 0x08); // word address 0x0800 = byte 0x1000 in the page
        pages.write(0x8b - 0x81, 1, 0x03); // page 3: A17-A23 = 0000001 (bit 0 ignored)
        d2.write(0x06, 1, 1); // 2 words
        d2.write(0x06, 1, 0);
        d2.write(0x14, 1, 0x01); // unmask channel 5 (register 10)
        let t = dma.lock().unwrap().write_memory(5, &[1, 2, 3, 4, 5, 6]);
        assert_eq!(t, DmaTransfer { bytes: 4, terminal_count: true });
        let mut b = [0u8; 4];
        mem.dma_read(0x2_1000, &mut b).unwrap();
        assert_eq!(b, [1, 2, 3, 4]);
        assert_eq!(d2.read(0x01, 1), 0xff, "odd ports of DMA2 decode nothing");
    }

    #[test]
    fn page_register_block_leaves_post_port_alone() {
        let (_, _, _, mut pages, _) = rig();
        for port in 0x81u64..=0x8f {
            pages.write(port - 0x81, 1, port ^ 0x5a);
        }
        for port in 0x81u64..=0x8f {
            assert_eq!(pages.read(port - 0x81, 1), port ^ 0x5a, "port {port:#x}");
        }
        assert_eq!(pages.read(15, 1), 0xff, "nothing past 0x8F");
    }

    /// Deterministic fuzz of both register files and transfers: nothing panics and
    /// transfers never exceed what was asked.
    #[test]
    fn fuzz_register_files() {
        let (dma, mut d1, mut d2, mut pages, _) = rig();
        let mut seed = 0xdead_beefu32;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for _ in 0..100_000 {
            let r = rnd();
            let v = u64::from(rnd());
            match r % 6 {
                0 => d1.write(u64::from(r >> 8) % 16, 1, v),
                1 => d2.write(u64::from(r >> 8) % 32, 2, v),
                2 => pages.write(u64::from(r >> 8) % 15, 1, v),
                3 => {
                    d1.read(u64::from(r >> 8) % 16, 1);
                }
                4 => {
                    let n = (v % 300) as usize;
                    let t = dma.lock().unwrap().write_memory((r >> 8) as usize % 9, &vec![0xaa; n]);
                    assert!(t.bytes <= n);
                }
                _ => {
                    let mut buf = vec![0u8; (v % 300) as usize];
                    let t = dma.lock().unwrap().read_memory((r >> 8) as usize % 9, &mut buf);
                    assert!(t.bytes <= buf.len());
                }
            }
        }
    }
}
