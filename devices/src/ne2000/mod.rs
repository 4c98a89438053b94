//! The NE2000 on PCI: a Realtek RTL8029AS (10EC:8029, QEMU's `ne2k_pci`), a DP8390 core with
//! the NE2000's on-card memory, after the DP8390D datasheet and the RTL8029AS datasheet.
//!
//! The card does no bus mastering: the driver moves frames between the host and the card's
//! memory through remote DMA on the data port (0x10), and the card sends from and receives
//! into that memory. The memory is the NE2000's: the station address PROM at 0x0000-0x001F
//! (each byte twice, as a word-wide NE2000 returns it, and 'W' 'W' at 14-15), and 32 KiB of
//! buffer RAM at 0x4000-0xBFFF (pages 0x40-0xBF). Everything the guest writes is an index
//! into that memory and is checked against it, so nothing it does reaches host memory.
//!
//! What is modelled: the command register with its four pages, remote DMA (read, write, byte
//! or word or dword wide, wrapping from PSTOP to PSTART as the core does), transmit from
//! TPSR/TBCR, the receive ring (PSTART, PSTOP, BNRY, CURR; the 4-byte header of status, next
//! page and length; broadcast, multicast hash and promiscuous filters; a frame the ring has no
//! room for waits for the driver to free pages, instead of being lost), internal loopback (TCR.LB), ISR/IMR driving INTA# (level), reset
//! through port 0x1F. The RTL8029AS's page 3 configuration registers read back zero and
//! ignore writes (full duplex, LEDs: nothing to do here). Tally counters stay zero.

pub mod regs;

#[cfg(test)]
mod tests;

use crate::net::{NetworkCard, RxOutcome};
use crate::pci::config_space::{COMMAND, INTERRUPT_LINE, INTERRUPT_PIN};
use crate::pci::{BarKind, ConfigSpace, PciError, PciFunction, PciId};
use regs::*;
use rx86_core::bus::BusDevice;
use rx86_core::irq::SharedIrqLine;
use std::collections::VecDeque;

/// Realtek's PCI vendor ID.
const VENDOR_REALTEK: u16 = 0x10ec;
/// RTL8029(AS).
const DEVICE_RTL8029: u16 = 0x8029;
/// Class 02 (network), sub-class 00 (Ethernet).
const CLASS_ETHERNET: u32 = 0x02_00_00;
/// INTA#.
const INTERRUPT_PIN_INTA: u8 = 1;
/// Command register: Interrupt Disable.
const COMMAND_INTERRUPT_DISABLE: u16 = 1 << 10;
/// The BAR of the I/O window.
pub const NE2000_IO_BAR: usize = 0;
/// Size of the I/O window (registers, data port, reset port).
pub const NE2000_IO_SIZE: u64 = 0x20;
/// Bytes of the station address PROM at the bottom of the card's memory.
const PROM_LEN: usize = 32;
/// First byte of the buffer RAM.
const RAM_START: usize = 0x4000;
/// Bytes of card memory (PROM region and buffer RAM); pages past it do not exist.
const MEMORY_LEN: usize = 0xc000;
/// Bytes in a ring page.
const PAGE: usize = 256;
/// The receive header: status, next page, length (low, high).
const RX_HEADER: usize = 4;
/// The Ethernet CRC, which the core stores after the frame (room is kept for it; its bytes
/// are not written and the header's length leaves it out, as QEMU does).
const CRC_LEN: usize = 4;
/// Shortest frame stored (without CRC): shorter frames are padded, as the MAC would.
const MIN_FRAME: usize = 60;
/// Longest frame sent or received (without CRC).
const MAX_FRAME: usize = 1514;
/// Frames the transmit side holds for the board before it drops new ones.
const TX_QUEUE_MAX: usize = 256;
/// RTL8029AS ID in page 0 registers 0x0A and 0x0B.
const RTL8029_ID: [u8; 2] = [0x50, 0x43];

/// The RTL8029AS.
pub struct Ne2000 {
    config: ConfigSpace,
    irq: SharedIrqLine,
    irq_level: bool,
    mac: [u8; 6],
    memory: Vec<u8>,
    cr: u8,
    isr: u8,
    imr: u8,
    dcr: u8,
    rcr: u8,
    tcr: u8,
    tsr: u8,
    rsr: u8,
    pstart: u8,
    pstop: u8,
    bnry: u8,
    curr: u8,
    tpsr: u8,
    tbcr: u16,
    rsar: u16,
    rbcr: u16,
    par: [u8; 6],
    mar: [u8; 8],
    tx_out: VecDeque<Vec<u8>>,
    /// Frames dropped because the board did not take them in time.
    tx_overflow: u64,
}

impl Ne2000 {
    /// A card with MAC address `mac` in its PROM, raising `irq` (its INTA#).
    pub fn new(mac: [u8; 6], irq: SharedIrqLine) -> Result<Self, PciError> {
        let mut config = ConfigSpace::new(PciId {
            vendor_id: VENDOR_REALTEK,
            device_id: DEVICE_RTL8029,
            revision_id: 0,
            class_code: CLASS_ETHERNET,
            header_type: 0,
        });
        config.set_u8(INTERRUPT_PIN, INTERRUPT_PIN_INTA);
        config.set_bar(NE2000_IO_BAR, BarKind::Io, NE2000_IO_SIZE)?;
        let mut memory = vec![0; MEMORY_LEN];
        for (i, &b) in mac.iter().enumerate() {
            memory[2 * i] = b;
            memory[2 * i + 1] = b;
        }
        memory[14] = b'W';
        memory[15] = b'W';
        let mut card = Ne2000 {
            config,
            irq,
            irq_level: false,
            mac,
            memory,
            cr: 0,
            isr: 0,
            imr: 0,
            dcr: 0,
            rcr: 0,
            tcr: 0,
            tsr: 0,
            rsr: 0,
            pstart: 0,
            pstop: 0,
            bnry: 0,
            curr: 0,
            tpsr: 0,
            tbcr: 0,
            rsar: 0,
            rbcr: 0,
            par: [0; 6],
            mar: [0; 8],
            tx_out: VecDeque::new(),
            tx_overflow: 0,
        };
        card.reset();
        Ok(card)
    }

    /// What firmware would do on a machine booted without it: BAR0 at `io`, the interrupt
    /// line register set to `irq`, I/O on.
    pub fn firmware_setup(&mut self, io: u16, irq: u8) {
        let bar0 = crate::pci::config_space::BAR0;
        self.config.write(bar0 + 4 * NE2000_IO_BAR as u8, 4, u32::from(io));
        self.config.write(INTERRUPT_LINE, 1, u32::from(irq));
        self.config.write(COMMAND, 2, 0x0001);
    }

    /// The reset (port 0x1F): stopped, remote DMA aborted, ISR.RST set, interrupts masked.
    fn reset(&mut self) {
        self.cr = CR_STP | CR_RD_ABORT;
        self.isr = ISR_RST;
        self.imr = 0;
        self.update_irq();
    }

    fn update_irq(&mut self) {
        let disabled = self.config.command() & COMMAND_INTERRUPT_DISABLE != 0;
        let level = !disabled && self.isr & self.imr & 0x7f != 0;
        if level != self.irq_level {
            self.irq_level = level;
            self.irq.set_level(level);
        }
    }

    fn raise(&mut self, bits: u8) {
        self.isr |= bits;
        self.update_irq();
    }

    fn page(&self) -> u8 {
        self.cr >> CR_PS_SHIFT
    }

    fn stopped(&self) -> bool {
        self.cr & CR_STP != 0
    }

    /// Reads register `reg` (0x00-0x0F) of the selected page.
    pub fn read_register(&mut self, reg: u8) -> u8 {
        if reg == CR {
            return self.cr;
        }
        match (self.page(), reg) {
            (0, BNRY) => self.bnry,
            (0, TSR) => self.tsr,
            (0, NCR) => 0,
            (0, ISR) => self.isr,
            (0, CRDA0) => self.rsar as u8,
            (0, CRDA1) => (self.rsar >> 8) as u8,
            (0, RTL8029_ID0) => RTL8029_ID[0],
            (0, RTL8029_ID1) => RTL8029_ID[1],
            (0, RSR) => self.rsr,
            (0, CNTR0..=CNTR2) => 0,
            (0, _) => 0xff,
            (1, PAR0..=0x06) => self.par[usize::from(reg - PAR0)],
            (1, CURR) => self.curr,
            (1, MAR0..=0x0f) => self.mar[usize::from(reg - MAR0)],
            (2, PSTART) => self.pstart,
            (2, PSTOP) => self.pstop,
            (2, TPSR) => self.tpsr,
            (2, RCR) => self.rcr,
            (2, TCR) => self.tcr,
            (2, DCR) => self.dcr,
            (2, IMR) => self.imr,
            _ => 0,
        }
    }

    /// Writes register `reg` (0x00-0x0F) of the selected page.
    pub fn write_register(&mut self, reg: u8, value: u8) {
        if reg == CR {
            self.write_command(value);
            return;
        }
        match (self.page(), reg) {
            (0, PSTART) => self.pstart = value,
            (0, PSTOP) => self.pstop = value,
            (0, BNRY) => self.bnry = value,
            (0, TPSR) => self.tpsr = value,
            (0, TBCR0) => self.tbcr = self.tbcr & 0xff00 | u16::from(value),
            (0, TBCR1) => self.tbcr = self.tbcr & 0x00ff | u16::from(value) << 8,
            (0, ISR) => {
                // Writing 1s clears; RST is not cleared this way.
                self.isr &= !(value & 0x7f);
                self.update_irq();
            }
            (0, RSAR0) => self.rsar = self.rsar & 0xff00 | u16::from(value),
            (0, RSAR1) => self.rsar = self.rsar & 0x00ff | u16::from(value) << 8,
            (0, RBCR0) => self.rbcr = self.rbcr & 0xff00 | u16::from(value),
            (0, RBCR1) => self.rbcr = self.rbcr & 0x00ff | u16::from(value) << 8,
            (0, RCR) => self.rcr = value,
            (0, TCR) => self.tcr = value,
            (0, DCR) => self.dcr = value,
            (0, IMR) => {
                self.imr = value & 0x7f;
                self.update_irq();
            }
            (1, PAR0..=0x06) => self.par[usize::from(reg - PAR0)] = value,
            (1, CURR) => self.curr = value,
            (1, MAR0..=0x0f) => self.mar[usize::from(reg - MAR0)] = value,
            // Page 2 is read-only; page 3 holds the RTL8029AS's configuration (9346CR,
            // CONFIG0-3: full duplex, LEDs), which changes nothing here.
            _ => {}
        }
    }

    fn write_command(&mut self, value: u8) {
        self.cr = value;
        if value & CR_STP != 0 {
            self.isr |= ISR_RST;
            self.cr &= !CR_STA;
        } else if value & CR_STA != 0 {
            self.isr &= !ISR_RST;
        }
        // An empty remote read or write completes at once.
        let rd = value & CR_RD_MASK;
        if (rd == CR_RD_READ || rd == CR_RD_WRITE) && self.rbcr == 0 {
            self.raise(ISR_RDC);
        }
        if value & CR_TXP != 0 && !self.stopped() {
            self.transmit();
        }
        self.update_irq();
    }

    /// Sends TBCR bytes from page TPSR: onto the network, or back to the receiver in loopback.
    fn transmit(&mut self) {
        let start = usize::from(self.tpsr) * PAGE;
        let len = usize::from(self.tbcr).min(MAX_FRAME);
        let frame = match self.memory.get(start..start + len) {
            Some(bytes) if start >= RAM_START => Some(bytes.to_vec()),
            _ => None,
        };
        self.cr &= !CR_TXP;
        match frame {
            Some(frame) if self.tcr & TCR_LB_MASK != 0 => {
                self.store(&frame);
            }
            Some(frame) => {
                if self.tx_out.len() < TX_QUEUE_MAX {
                    self.tx_out.push_back(frame);
                } else {
                    self.tx_overflow += 1;
                }
            }
            None => {
                log::debug!("ne2000: transmit of {len} bytes from page {:#x} is outside the buffer RAM", self.tpsr);
                self.tsr = 0;
                self.raise(ISR_TXE);
                return;
            }
        }
        self.tsr = TSR_PTX;
        self.raise(ISR_PTX);
    }

    /// One remote DMA step of `width` bytes at RSAR: RSAR advances (wrapping from PSTOP to
    /// PSTART), RBCR counts down, RDC is raised at zero.
    fn remote_dma_step(&mut self, width: u16) {
        self.rsar = self.rsar.wrapping_add(width);
        if self.pstop > self.pstart && self.rsar == u16::from(self.pstop) << 8 {
            self.rsar = u16::from(self.pstart) << 8;
        }
        if self.rbcr <= width {
            self.rbcr = 0;
            self.raise(ISR_RDC);
        } else {
            self.rbcr -= width;
        }
    }

    fn memory_byte(&self, at: u16) -> u8 {
        let at = usize::from(at);
        if at < PROM_LEN || (RAM_START..MEMORY_LEN).contains(&at) {
            self.memory[at]
        } else {
            0xff
        }
    }

    fn set_memory_byte(&mut self, at: u16, value: u8) {
        let at = usize::from(at);
        if (RAM_START..MEMORY_LEN).contains(&at) {
            self.memory[at] = value;
        }
    }

    /// A data port read of `size` bytes (1, 2 or 4). In word mode a byte read still moves a
    /// word, as the core does.
    fn data_read(&mut self, size: u8) -> u64 {
        let width = match size {
            4 => 4,
            _ if self.dcr & DCR_WTS != 0 => 2,
            _ => 1,
        };
        let mut value = 0u64;
        for i in 0..width {
            value |= u64::from(self.memory_byte(self.rsar.wrapping_add(i))) << (8 * i);
        }
        self.remote_dma_step(width);
        value & if size >= 4 { 0xffff_ffff } else { (1 << (8 * u32::from(size))) - 1 }
    }

    fn data_write(&mut self, size: u8, value: u64) {
        let width = match size {
            4 => 4,
            _ if self.dcr & DCR_WTS != 0 => 2,
            _ => 1,
        };
        for i in 0..width {
            self.set_memory_byte(self.rsar.wrapping_add(i), (value >> (8 * i)) as u8);
        }
        self.remote_dma_step(width);
    }

    /// True when the address filter takes a frame for `dest`.
    fn accepts(&self, dest: &[u8]) -> bool {
        if self.rcr & RCR_PRO != 0 {
            return true;
        }
        if dest == [0xff; 6] {
            return self.rcr & RCR_AB != 0;
        }
        if dest[0] & 1 != 0 {
            if self.rcr & RCR_AM == 0 {
                return false;
            }
            // The top 6 bits of the address's CRC select a MAR bit (datasheet 6.1).
            let hash = multicast_crc(dest) >> 26;
            return self.mar[(hash >> 3) as usize] & (1 << (hash & 7)) != 0;
        }
        dest == self.par
    }

    /// Free bytes in the receive ring from CURR up to BNRY. A BNRY outside the ring counts as
    /// its last page: Linux's 8390 driver writes PSTART - 1 there when the next frame is at
    /// PSTART.
    fn ring_free(&self) -> usize {
        let bnry = if (self.pstart..self.pstop).contains(&self.bnry) { self.bnry } else { self.pstop - 1 };
        let (curr, bnry) = (usize::from(self.curr), usize::from(bnry));
        let pages = if curr < bnry { bnry - curr } else { usize::from(self.pstop - self.pstart) - (curr - bnry) };
        pages * PAGE
    }

    /// True when the ring registers describe a ring inside the buffer RAM with CURR in it.
    fn ring_valid(&self) -> bool {
        let (start, stop) = (usize::from(self.pstart) * PAGE, usize::from(self.pstop) * PAGE);
        start >= RAM_START && stop <= MEMORY_LEN && start < stop && (self.pstart..self.pstop).contains(&self.curr)
    }

    /// Stores `frame` at CURR with its header, wrapping at PSTOP.
    fn store(&mut self, frame: &[u8]) -> RxOutcome {
        if !self.ring_valid() {
            log::debug!(
                "ne2000: receive ring PSTART {:#x} PSTOP {:#x} CURR {:#x} BNRY {:#x} is not in the buffer RAM",
                self.pstart,
                self.pstop,
                self.curr,
                self.bnry
            );
            return RxOutcome::Dropped;
        }
        let len = frame.len().max(MIN_FRAME) + RX_HEADER;
        let pages = (len + CRC_LEN).div_ceil(PAGE);
        // The core never lets CURR run onto BNRY: a frame needs its pages and one to spare.
        if pages * PAGE >= self.ring_free() {
            return RxOutcome::NoRoom;
        }
        let mut next = usize::from(self.curr) + pages;
        if next >= usize::from(self.pstop) {
            next -= usize::from(self.pstop - self.pstart);
        }
        let multicast = frame.first().is_some_and(|b| b & 1 != 0);
        self.rsr = RSR_PRX | if multicast { RSR_PHY } else { 0 };
        let header = [self.rsr, next as u8, len as u8, (len >> 8) as u8];
        let mut bytes = header.to_vec();
        bytes.extend_from_slice(frame);
        bytes.resize(len, 0);
        let (start, stop) = (usize::from(self.pstart) * PAGE, usize::from(self.pstop) * PAGE);
        let mut at = usize::from(self.curr) * PAGE;
        for chunk in bytes.chunks(PAGE) {
            self.memory[at..at + chunk.len()].copy_from_slice(chunk);
            at += PAGE;
            if at >= stop {
                at = start;
            }
        }
        self.curr = next as u8;
        self.raise(ISR_PRX);
        RxOutcome::Delivered
    }

    /// One line on the card's state.
    fn describe_state(&self) -> String {
        let m = self.mac;
        format!(
            "ne2k_pci {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} {}, ring pages {:#x}-{:#x} CURR {:#x} BNRY {:#x}, ISR {:#04x} IMR {:#04x}",
            m[0],
            m[1],
            m[2],
            m[3],
            m[4],
            m[5],
            if self.stopped() { "stopped" } else { "started" },
            self.pstart,
            self.pstop,
            self.curr,
            self.bnry,
            self.isr,
            self.imr
        )
    }
}

/// The CRC-32 the core hashes multicast addresses with: the Ethernet polynomial, bits taken
/// least significant first, shifted left (Linux's `ether_crc`).
fn multicast_crc(bytes: &[u8]) -> u32 {
    const POLYNOMIAL: u32 = 0x04c1_1db7;
    let mut crc = u32::MAX;
    for &byte in bytes {
        let mut b = byte;
        for _ in 0..8 {
            let carry = (crc >> 31) ^ u32::from(b & 1);
            crc <<= 1;
            if carry != 0 {
                crc ^= POLYNOMIAL;
            }
            b >>= 1;
        }
    }
    crc
}

impl NetworkCard for Ne2000 {
    fn take_tx_frames(&mut self) -> Vec<Vec<u8>> {
        self.tx_out.drain(..).collect()
    }

    fn has_tx_frames(&self) -> bool {
        !self.tx_out.is_empty()
    }

    fn receive(&mut self, frame: &[u8]) -> RxOutcome {
        if frame.len() < 14 || frame.len() > MAX_FRAME || self.stopped() || self.rcr & RCR_MON != 0 {
            return RxOutcome::Dropped;
        }
        if !self.accepts(&frame[..6]) {
            return RxOutcome::Dropped;
        }
        self.store(frame)
    }

    fn describe(&self) -> String {
        self.describe_state()
    }
}

impl PciFunction for Ne2000 {
    fn read_config(&mut self, offset: u8, len: u8) -> u32 {
        self.config.read(offset, len)
    }

    fn write_config(&mut self, offset: u8, len: u8, value: u32) {
        self.config.write(offset, len, value);
        self.update_irq();
    }
}

impl BusDevice for Ne2000 {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        match offset {
            0..=0x0f => u64::from(self.read_register(offset as u8)),
            NE_DATAPORT..=0x17 => self.data_read(size),
            NE_RESET => {
                self.reset();
                0
            }
            _ => 0xff,
        }
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        match offset {
            0..=0x0f => self.write_register(offset as u8, value as u8),
            NE_DATAPORT..=0x17 => self.data_write(size, value),
            NE_RESET => self.reset(),
            _ => {}
        }
    }
}
