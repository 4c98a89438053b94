//! Intel 82540EM Gigabit Ethernet Controller (`e1000`, 8086:100E), the NIC of QEMU's pc
//! machine, after the PCI/PCI-X Family of Gigabit Ethernet Controllers Software Developer's
//! Manual (8254x SDM).
//!
//! BAR0 is the 128 KiB register window, BAR1 the 8-byte I/O window (IOADDR at 0, IODATA at 4)
//! that reaches the same registers. What is modelled: CTRL/STATUS with the link always up at
//! 1000 Mb/s full duplex; the EEPROM through EECD (Microwire) and EERD; the PHY through MDIC;
//! ICR/ICS/IMS/IMC driving the INTA# line (level: high while ICR & IMS is not zero); the
//! receive ring (legacy descriptors, RAL/RAH, MTA and broadcast/promiscuous filtering, the
//! Ethernet CRC appended unless RCTL.SECRC, IPv4/TCP/UDP checksums checked for RXCSUM); the transmit ring (legacy, context and data
//! descriptors, checksum offload and TSO done in software); read-to-clear statistics.
//! Interrupt moderation (ITR, RDTR, RADV, TIDV, TADV) is stored but interrupts are immediate.
//! Registers without behaviour here (flow control, LEDs, wake-up, VLAN filter) read back what
//! was written.
//!
//! The rings are guest-controlled: the ring length is masked as the hardware masks it
//! (RDLEN/TDLEN bits 19:7), a head or tail past the ring stops the engine, every descriptor
//! and buffer moves through [`DmaMemory`] (RAM only, bounds-checked), and one transmit kick
//! walks at most one lap of the ring, so no guest value can hang or crash the machine.
//!
//! Frames leave through [`E1000::take_tx_frames`] and arrive through [`E1000::receive`],
//! both called by the board from its machine loop.

mod eeprom;
mod phy;
pub mod regs;
mod tx;

#[cfg(test)]
mod tests;

pub use eeprom::{Eeprom, EEPROM_SUM, EEPROM_WORDS};
pub use tx::{TxContext, TxDescriptor};

use crate::ide::SharedDmaMemory;
use crate::net::wire::ethernet_crc32;
use crate::net::NetworkCard;
pub use crate::net::RxOutcome;
use crate::pci::config_space::{COMMAND, COMMAND_BUS_MASTER, INTERRUPT_LINE, INTERRUPT_PIN};
use crate::pci::{BarKind, ConfigSpace, PciError, PciFunction, PciId};
use phy::{Phy, PHY_ADDRESS};
use regs::*;
use rx86_core::bus::BusDevice;
use rx86_core::irq::SharedIrqLine;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tx::{TxState, CMD_RS, STA_DD};

/// Intel's PCI vendor ID.
const VENDOR_INTEL: u16 = 0x8086;
/// 82540EM desktop adapter.
const DEVICE_82540EM: u16 = 0x100e;
/// Class 02 (network), sub-class 00 (Ethernet).
const CLASS_ETHERNET: u32 = 0x02_00_00;
/// Subsystem vendor ID register.
const SUBSYSTEM_VENDOR_ID: u8 = 0x2c;
/// Subsystem ID register.
const SUBSYSTEM_ID: u8 = 0x2e;
/// BAR of the register window.
pub const E1000_MMIO_BAR: usize = 0;
/// Size of the register window.
pub const E1000_MMIO_SIZE: u64 = 0x2_0000;
/// BAR of the I/O window.
pub const E1000_IO_BAR: usize = 1;
/// Size of the I/O window (IOADDR, IODATA), as QEMU sizes it.
pub const E1000_IO_SIZE: u64 = 0x40;
/// INTA#.
const INTERRUPT_PIN_INTA: u8 = 1;
/// Offset of IOADDR in the I/O window.
const IOADDR: u64 = 0;
/// Offset of IODATA in the I/O window.
const IODATA: u64 = 4;
/// RDLEN/TDLEN: bits 19:7 hold the ring length.
const RING_LEN_MASK: u32 = 0x000f_ff80;
/// RDBAL/TDBAL: descriptors are 16-byte aligned.
const RING_BASE_LOW_MASK: u32 = !0xf;
/// Bytes in a descriptor.
const DESCRIPTOR_SIZE: u64 = 16;
/// Frames the transmit side holds for the board before it drops new ones.
const TX_QUEUE_MAX: usize = 1024;
/// Shortest Ethernet frame without its CRC: shorter frames are padded.
const MIN_FRAME: usize = 60;
/// Bytes of the Ethernet CRC.
const CRC_LEN: usize = 4;
/// RX descriptor status: descriptor done.
const RXD_STAT_DD: u8 = 1 << 0;
/// RX descriptor status: end of packet.
const RXD_STAT_EOP: u8 = 1 << 1;
/// RX descriptor status: ignore checksum indication (no checksum was checked).
const RXD_STAT_IXSM: u8 = 1 << 2;
/// RX descriptor status: the TCP/UDP checksum was checked.
const RXD_STAT_TCPCS: u8 = 1 << 5;
/// RX descriptor status: the IPv4 header checksum was checked.
const RXD_STAT_IPCS: u8 = 1 << 6;
/// RX descriptor error: TCP/UDP checksum error.
const RXD_ERR_TCPE: u8 = 1 << 5;
/// RX descriptor error: IPv4 header checksum error.
const RXD_ERR_IPE: u8 = 1 << 6;
/// RX descriptor error: receive data error (here: the buffer is not in RAM).
const RXD_ERR_RXE: u8 = 1 << 7;
/// Registers in the window.
const REGISTER_COUNT: usize = (E1000_MMIO_SIZE / 4) as usize;

/// A descriptor ring as the registers describe it.
#[derive(Debug, Clone, Copy)]
struct Ring {
    base: u64,
    entries: u32,
    head: u32,
    tail: u32,
}

impl Ring {
    /// True when the guest programmed a usable ring (head and tail inside it).
    fn valid(&self) -> bool {
        self.entries > 0 && self.head < self.entries && self.tail < self.entries
    }

    fn descriptor_address(&self, index: u32) -> u64 {
        self.base.wrapping_add(u64::from(index) * DESCRIPTOR_SIZE)
    }

    /// Descriptors the hardware owns (from head up to tail).
    fn owned(&self) -> u32 {
        (self.tail + self.entries - self.head) % self.entries
    }
}

/// The 82540EM.
pub struct E1000 {
    config: ConfigSpace,
    memory: Option<SharedDmaMemory>,
    irq: SharedIrqLine,
    irq_level: bool,
    /// The register file, indexed by offset / 4.
    regs: Vec<u32>,
    mac: [u8; 6],
    eeprom: Eeprom,
    phy: Phy,
    /// IOADDR: the register IODATA reaches.
    ioaddr: u32,
    tx: TxState,
    tx_out: VecDeque<Vec<u8>>,
    /// Frames dropped because the board did not take them in time.
    tx_overflow: u64,
}

impl E1000 {
    /// A NIC with MAC address `mac`, raising `irq` (its INTA#), doing DMA through `memory`.
    pub fn new(mac: [u8; 6], irq: SharedIrqLine, memory: Option<SharedDmaMemory>) -> Result<Self, PciError> {
        let mut config = ConfigSpace::new(PciId {
            vendor_id: VENDOR_INTEL,
            device_id: DEVICE_82540EM,
            revision_id: 3,
            class_code: CLASS_ETHERNET,
            header_type: 0,
        });
        config.set_u16(SUBSYSTEM_VENDOR_ID, VENDOR_INTEL);
        config.set_u16(SUBSYSTEM_ID, DEVICE_82540EM);
        config.set_u8(INTERRUPT_PIN, INTERRUPT_PIN_INTA);
        config.set_bar(E1000_MMIO_BAR, BarKind::Memory32 { prefetchable: false }, E1000_MMIO_SIZE)?;
        config.set_bar(E1000_IO_BAR, BarKind::Io, E1000_IO_SIZE)?;
        let mut nic = E1000 {
            config,
            memory,
            irq,
            irq_level: false,
            regs: vec![0; REGISTER_COUNT],
            mac,
            eeprom: Eeprom::new(mac),
            phy: Phy::default(),
            ioaddr: 0,
            tx: TxState::default(),
            tx_out: VecDeque::new(),
            tx_overflow: 0,
        };
        nic.reset();
        Ok(nic)
    }

    /// What firmware would do on a machine booted without it: BAR0 at `mmio`, BAR1 at `io`,
    /// the interrupt line register set to `irq`, memory, I/O and bus mastering on.
    pub fn firmware_setup(&mut self, mmio: u32, io: u16, irq: u8) {
        let bar0 = crate::pci::config_space::BAR0;
        self.config.write(bar0 + 4 * E1000_MMIO_BAR as u8, 4, mmio);
        self.config.write(bar0 + 4 * E1000_IO_BAR as u8, 4, u32::from(io));
        self.config.write(INTERRUPT_LINE, 1, u32::from(irq));
        self.config.write(COMMAND, 2, 0x0007);
    }

    /// The MAC address (from the EEPROM).
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The software reset (CTRL.RST) and power-on state: every register to its default, the
    /// receive address 0 loaded from the EEPROM, the rings and queues emptied.
    fn reset(&mut self) {
        self.regs.iter_mut().for_each(|r| *r = 0);
        self.set_reg(CTRL, CTRL_FD | CTRL_SLU);
        let m = self.mac;
        self.set_reg(RAL0, u32::from_le_bytes([m[0], m[1], m[2], m[3]]));
        self.set_reg(RAH0, u32::from_le_bytes([m[4], m[5], 0, 0]) | RAH_AV);
        self.phy = Phy::default();
        self.tx = TxState::default();
        self.update_irq();
    }

    fn reg(&self, offset: u32) -> u32 {
        self.regs.get((offset / 4) as usize).copied().unwrap_or(0)
    }

    fn set_reg(&mut self, offset: u32, value: u32) {
        if let Some(r) = self.regs.get_mut((offset / 4) as usize) {
            *r = value;
        }
    }

    /// Reads the 32-bit register at `offset` with its read side effects.
    pub fn read_register(&mut self, offset: u32) -> u32 {
        let offset = offset & !3;
        match offset {
            STATUS => STATUS_FD | STATUS_LU | STATUS_SPEED_1000,
            EECD => self.reg(EECD) | self.eeprom.read_pins() | EECD_PRES | EECD_GNT,
            ICR => {
                let icr = self.reg(ICR);
                self.set_reg(ICR, 0);
                self.update_irq();
                icr
            }
            // Write-only registers.
            ICS | IMC => 0,
            STATS_START..STATS_END => {
                let v = self.reg(offset);
                self.set_reg(offset, 0);
                v
            }
            _ => self.reg(offset),
        }
    }

    /// Writes the 32-bit register at `offset` with its side effects.
    pub fn write_register(&mut self, offset: u32, value: u32) {
        let offset = offset & !3;
        match offset {
            CTRL if value & CTRL_RST != 0 => self.reset(),
            CTRL => {
                if value & CTRL_PHY_RST != 0 {
                    self.phy = Phy::default();
                }
                self.set_reg(CTRL, value & !(CTRL_RST | CTRL_PHY_RST));
            }
            STATUS => {}
            EECD => {
                self.eeprom.write_pins(value);
                self.set_reg(EECD, value & (EECD_FWE | EECD_REQ));
            }
            EERD => {
                let mut v = value & !(EERD_DONE | (0xffff << EERD_DATA_SHIFT));
                if value & EERD_START != 0 {
                    let word = self.eeprom.word(((value >> EERD_ADDR_SHIFT) & 0xff) as usize);
                    v = (v & !EERD_START) | EERD_DONE | (u32::from(word) << EERD_DATA_SHIFT);
                }
                self.set_reg(EERD, v);
            }
            MDIC => self.mdic(value),
            ICR => {
                // Writing 1s clears causes (SDM 13.4.17).
                self.set_reg(ICR, self.reg(ICR) & !value);
                self.update_irq();
            }
            ICS => self.raise(value & ICR_VALID),
            IMS => {
                self.set_reg(IMS, self.reg(IMS) | (value & ICR_VALID));
                self.update_irq();
            }
            IMC => {
                self.set_reg(IMS, self.reg(IMS) & !value);
                self.update_irq();
            }
            RDBAL | TDBAL => self.set_reg(offset, value & RING_BASE_LOW_MASK),
            RDLEN | TDLEN => self.set_reg(offset, value & RING_LEN_MASK),
            RDH | RDT | TDH => self.set_reg(offset, value & 0xffff),
            TDT => {
                self.set_reg(TDT, value & 0xffff);
                self.transmit();
            }
            TCTL => {
                self.set_reg(TCTL, value);
                self.transmit();
            }
            STATS_START..STATS_END => {}
            _ => self.set_reg(offset, value),
        }
    }

    /// An MDIC write: a PHY register read or write, completed at once.
    fn mdic(&mut self, value: u32) {
        let phy = (value >> MDIC_PHYADD_SHIFT) & 0x1f;
        let reg = (value >> MDIC_REGADD_SHIFT) & 0x1f;
        let op = (value >> MDIC_OP_SHIFT) & 0b11;
        let mut result = (value & !(MDIC_ERROR | MDIC_READY)) | MDIC_READY;
        if phy != PHY_ADDRESS {
            result |= MDIC_ERROR;
        } else if op == 0b10 {
            result = (result & !MDIC_DATA) | u32::from(self.phy.read(reg));
        } else if op == 0b01 {
            self.phy.write(reg, (value & MDIC_DATA) as u16);
        }
        self.set_reg(MDIC, result);
    }

    /// Sets interrupt causes.
    fn raise(&mut self, causes: u32) {
        self.set_reg(ICR, self.reg(ICR) | causes);
        self.update_irq();
    }

    /// INTA# follows ICR & IMS, unless the command register's Interrupt Disable is set.
    fn update_irq(&mut self) {
        let disabled = self.config.command() & (1 << 10) != 0;
        let level = !disabled && self.reg(ICR) & self.reg(IMS) != 0;
        if level != self.irq_level {
            self.irq_level = level;
            self.irq.set_level(level);
        }
    }

    fn bus_master(&self) -> bool {
        self.config.command() & COMMAND_BUS_MASTER != 0
    }

    fn ring(&self, bal: u32, bah: u32, len: u32, head: u32, tail: u32) -> Ring {
        Ring {
            base: u64::from(self.reg(bah)) << 32 | u64::from(self.reg(bal)),
            entries: self.reg(len) / DESCRIPTOR_SIZE as u32,
            head: self.reg(head),
            tail: self.reg(tail),
        }
    }

    /// The transmit engine: walks descriptors from TDH to TDT (at most one lap of the ring).
    fn transmit(&mut self) {
        if self.reg(TCTL) & TCTL_EN == 0 || !self.bus_master() {
            return;
        }
        let Some(memory) = self.memory.clone() else { return };
        let mut ring = self.ring(TDBAL, TDBAH, TDLEN, TDH, TDT);
        if !ring.valid() {
            if ring.entries > 0 {
                log::debug!("e1000: TDH {} or TDT {} past the {}-entry ring", ring.head, ring.tail, ring.entries);
            }
            return;
        }
        let mut frames = Vec::new();
        let mut written_back = false;
        while ring.head != ring.tail {
            let address = ring.descriptor_address(ring.head);
            let mut raw = [0u8; 16];
            if memory.dma_read(address, &mut raw).is_err() {
                log::debug!("e1000: transmit descriptor at {address:#x} is outside RAM; transmitter stopped");
                break;
            }
            let d = TxDescriptor::parse(&raw);
            let mut data = Vec::new();
            if let Some(fetch) = self.tx.fetch(&d) {
                if self.tx.would_overflow(fetch.len) {
                    self.tx.drop_packet();
                } else {
                    data.resize(fetch.len, 0);
                    if memory.dma_read(fetch.addr, &mut data).is_err() {
                        self.tx.drop_packet();
                        data.clear();
                    }
                }
            }
            self.tx.process(&d, &data, &mut frames);
            if d.cmd() & CMD_RS != 0 {
                // Write DD into the status byte; the rest of the descriptor stays.
                let _ = memory.dma_write(address + 12, &[raw[12] | STA_DD]);
                written_back = true;
            }
            ring.head = (ring.head + 1) % ring.entries;
        }
        self.set_reg(TDH, ring.head);
        for frame in frames {
            self.count(GPTC, TPT);
            if self.tx_out.len() >= TX_QUEUE_MAX {
                self.tx_overflow += 1;
                continue;
            }
            self.tx_out.push_back(frame);
        }
        let mut causes = ICR_TXQE;
        if written_back {
            causes |= ICR_TXDW;
        }
        self.raise(causes);
    }

    fn count(&mut self, good: u32, total: u32) {
        self.set_reg(good, self.reg(good).wrapping_add(1));
        self.set_reg(total, self.reg(total).wrapping_add(1));
    }

    /// The frames the guest transmitted since the last call (Ethernet header on, no CRC).
    pub fn take_tx_frames(&mut self) -> Vec<Vec<u8>> {
        self.tx_out.drain(..).collect()
    }

    /// True when the guest transmitted frames the board has not taken yet.
    pub fn has_tx_frames(&self) -> bool {
        !self.tx_out.is_empty()
    }

    /// Frames dropped because the transmit queue was full when the guest sent them.
    pub fn tx_overflow(&self) -> u64 {
        self.tx_overflow
    }

    /// True when the address filter accepts a frame for `dest`.
    fn accepts(&self, dest: &[u8; 6]) -> bool {
        let rctl = self.reg(RCTL);
        if dest == &[0xff; 6] {
            return rctl & RCTL_BAM != 0 || rctl & RCTL_MPE != 0;
        }
        if dest[0] & 1 != 0 {
            if rctl & RCTL_MPE != 0 {
                return true;
            }
            // MTA hash: 12 bits of the address, which ones by RCTL.MO (SDM 13.5.1).
            let bits = u16::from(dest[4]) | u16::from(dest[5]) << 8;
            let shift = [4, 3, 2, 0][((rctl >> RCTL_MO_SHIFT) & 3) as usize];
            let hash = u32::from(bits >> shift) & 0xfff;
            return self.reg(MTA + 4 * (hash >> 5)) & (1 << (hash & 31)) != 0;
        }
        if rctl & RCTL_UPE != 0 {
            return true;
        }
        (0..16).any(|i| {
            let high = self.reg(RAH0 + 8 * i);
            let low = self.reg(RAL0 + 8 * i);
            let l = low.to_le_bytes();
            let h = high.to_le_bytes();
            high & RAH_AV != 0 && dest == &[l[0], l[1], l[2], l[3], h[0], h[1]]
        })
    }

    /// Receive buffer size from RCTL.BSIZE and BSEX.
    fn buffer_size(&self) -> usize {
        let rctl = self.reg(RCTL);
        let bsize = (rctl >> RCTL_BSIZE_SHIFT) & 3;
        let size = 2048 >> bsize;
        if rctl & RCTL_BSEX != 0 && bsize != 0 {
            size * 16
        } else {
            size
        }
    }

    /// True when a frame of `len` bytes (without CRC) would be stored now.
    pub fn can_receive(&self, len: usize) -> bool {
        let ring = self.ring(RDBAL, RDBAH, RDLEN, RDH, RDT);
        let needed = (len.max(MIN_FRAME) + CRC_LEN).div_ceil(self.buffer_size());
        self.reg(RCTL) & RCTL_EN != 0 && self.bus_master() && ring.valid() && ring.owned() as usize >= needed
    }

    /// Offers a frame from the network (Ethernet header on, no CRC) to the receiver.
    pub fn receive(&mut self, frame: &[u8]) -> RxOutcome {
        if frame.len() < 14 || self.reg(RCTL) & RCTL_EN == 0 {
            return RxOutcome::Dropped;
        }
        let mut dest = [0u8; 6];
        dest.copy_from_slice(&frame[..6]);
        if !self.accepts(&dest) {
            return RxOutcome::Dropped;
        }
        let ring = self.ring(RDBAL, RDBAH, RDLEN, RDH, RDT);
        if !ring.valid() {
            return RxOutcome::Dropped;
        }
        if !self.can_receive(frame.len()) {
            return RxOutcome::NoRoom;
        }
        let Some(memory) = self.memory.clone() else { return RxOutcome::Dropped };
        let mut data = frame.to_vec();
        data.resize(data.len().max(MIN_FRAME), 0);
        if self.reg(RCTL) & RCTL_SECRC == 0 {
            let crc = ethernet_crc32(&data);
            data.extend_from_slice(&crc.to_le_bytes());
        }
        let (checksum_status, checksum_errors) = self.receive_checksums(frame);
        let chunks: Vec<&[u8]> = data.chunks(self.buffer_size()).collect();
        let last = chunks.len() - 1;
        let mut head = ring.head;
        for (i, chunk) in chunks.iter().enumerate() {
            let address = ring.descriptor_address(head);
            let mut raw = [0u8; 16];
            if memory.dma_read(address, &mut raw).is_err() {
                log::debug!("e1000: receive descriptor at {address:#x} is outside RAM; frame dropped");
                return RxOutcome::Dropped;
            }
            let buffer = u64::from_le_bytes([raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7]]);
            let mut status = RXD_STAT_DD;
            let mut errors = 0u8;
            if i == last {
                status |= RXD_STAT_EOP | checksum_status;
                errors |= checksum_errors;
            }
            if memory.dma_write(buffer, chunk).is_err() {
                log::debug!("e1000: receive buffer at {buffer:#x} is outside RAM");
                errors |= RXD_ERR_RXE;
            }
            let len = chunk.len() as u16;
            let mut writeback = [0u8; 8];
            writeback[0..2].copy_from_slice(&len.to_le_bytes());
            writeback[4] = status;
            writeback[5] = errors;
            let _ = memory.dma_write(address + 8, &writeback);
            head = (head + 1) % ring.entries;
        }
        self.set_reg(RDH, head);
        self.count(GPRC, TPR);
        let mut causes = ICR_RXT0;
        let free = Ring { head, ..ring }.owned();
        let threshold = ring.entries >> (((self.reg(RCTL) >> RCTL_RDMTS_SHIFT) & 3) + 1);
        if free <= threshold {
            causes |= ICR_RXDMT0;
        }
        self.raise(causes);
        RxOutcome::Delivered
    }

    /// Receive checksum offload (SDM 3.2.9): with RXCSUM.IPOFLD or TUOFLD, an unfragmented
    /// IPv4 frame's header checksum and TCP/UDP checksum are checked and the result reported in
    /// the last descriptor's status (IPCS, TCPCS) and errors (IPE, TCPE); anything else is
    /// marked IXSM (not checked), as is every frame when offload is off.
    fn receive_checksums(&self, frame: &[u8]) -> (u8, u8) {
        use crate::net::wire::{checksum_add, checksum_finish, pseudo_header_sum, ETHERTYPE_IPV4};
        let rxcsum = self.reg(RXCSUM);
        let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        let ip = &frame[14..];
        if rxcsum & (RXCSUM_IPOFLD | RXCSUM_TUOFLD) == 0 || ethertype != ETHERTYPE_IPV4 || ip.len() < 20 {
            return (RXD_STAT_IXSM, 0);
        }
        let ihl = usize::from(ip[0] & 0xf) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        if ip[0] >> 4 != 4 || ihl < 20 || total < ihl || total > ip.len() {
            return (RXD_STAT_IXSM, 0);
        }
        let (mut status, mut errors) = (0, 0);
        if rxcsum & RXCSUM_IPOFLD != 0 {
            status |= RXD_STAT_IPCS;
            if checksum_finish(checksum_add(0, &ip[..ihl])) != 0 {
                errors |= RXD_ERR_IPE;
            }
        }
        let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
        let protocol = ip[9];
        let l4 = &ip[ihl..total];
        // A UDP checksum of 0 means none was sent.
        let udp_without = protocol == 17 && l4.len() >= 8 && l4[6..8] == [0, 0];
        if rxcsum & RXCSUM_TUOFLD != 0 && !fragment && (protocol == 6 || protocol == 17) && !udp_without {
            status |= RXD_STAT_TCPCS;
            let src = std::net::Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            let dst = std::net::Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            if checksum_finish(checksum_add(pseudo_header_sum(src, dst, protocol, l4.len()), l4)) != 0 {
                errors |= RXD_ERR_TCPE;
            }
        }
        if status == 0 {
            status = RXD_STAT_IXSM;
        }
        (status, errors)
    }

    /// One line on the NIC's state, for the monitor and logs.
    pub fn describe(&self) -> String {
        let m = self.mac;
        format!(
            "e1000 {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} link up, RX {}/{} (head/tail of {}), TX {}/{} (of {}), ICR {:#x} IMS {:#x}",
            m[0],
            m[1],
            m[2],
            m[3],
            m[4],
            m[5],
            self.reg(RDH),
            self.reg(RDT),
            self.reg(RDLEN) / 16,
            self.reg(TDH),
            self.reg(TDT),
            self.reg(TDLEN) / 16,
            self.reg(ICR),
            self.reg(IMS)
        )
    }

    /// The I/O window as a bus device for the board's PCI I/O window.
    pub fn io_ports(nic: &Arc<Mutex<E1000>>) -> E1000IoPorts {
        E1000IoPorts(nic.clone())
    }

    fn access_read(&mut self, offset: u64, size: u8) -> u64 {
        let value = self.read_register(offset as u32 & !3);
        let shift = (offset & 3) * 8;
        let mask = if size >= 4 { u32::MAX } else { (1u32 << (8 * u32::from(size))) - 1 };
        u64::from((value >> shift) & mask)
    }

    fn access_write(&mut self, offset: u64, size: u8, value: u64) {
        let aligned = offset as u32 & !3;
        let value = if size >= 4 && offset & 3 == 0 {
            value as u32
        } else {
            // A narrow write merges into the register's current value.
            let shift = (offset & 3) * 8;
            let mask = (if size >= 4 { u32::MAX as u64 } else { (1u64 << (8 * u32::from(size))) - 1 }) << shift;
            let old = u64::from(self.reg(aligned));
            ((old & !mask) | ((value << shift) & mask)) as u32
        };
        self.write_register(aligned, value);
    }
}

impl NetworkCard for E1000 {
    fn take_tx_frames(&mut self) -> Vec<Vec<u8>> {
        E1000::take_tx_frames(self)
    }

    fn has_tx_frames(&self) -> bool {
        E1000::has_tx_frames(self)
    }

    fn receive(&mut self, frame: &[u8]) -> RxOutcome {
        E1000::receive(self, frame)
    }

    fn describe(&self) -> String {
        E1000::describe(self)
    }
}

impl PciFunction for E1000 {
    fn read_config(&mut self, offset: u8, len: u8) -> u32 {
        self.config.read(offset, len)
    }

    fn write_config(&mut self, offset: u8, len: u8, value: u32) {
        self.config.write(offset, len, value);
        // Interrupt Disable or Bus Master may have changed.
        self.update_irq();
        self.transmit();
    }
}

impl BusDevice for E1000 {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        if offset >= E1000_MMIO_SIZE {
            return u64::MAX;
        }
        self.access_read(offset, size)
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if offset < E1000_MMIO_SIZE {
            self.access_write(offset, size, value);
        }
    }
}

/// The NIC's I/O window (BAR1): IOADDR selects a register, IODATA reads or writes it.
pub struct E1000IoPorts(Arc<Mutex<E1000>>);

impl BusDevice for E1000IoPorts {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        let mut nic = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match offset {
            IOADDR => u64::from(nic.ioaddr),
            IODATA => {
                let at = u64::from(nic.ioaddr % E1000_MMIO_SIZE as u32);
                nic.access_read(at, size)
            }
            _ => 0,
        }
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        let mut nic = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match offset {
            IOADDR => nic.ioaddr = value as u32 & (E1000_MMIO_SIZE as u32 - 1),
            IODATA => {
                let at = u64::from(nic.ioaddr);
                nic.access_write(at, size, value);
            }
            _ => {}
        }
    }
}
