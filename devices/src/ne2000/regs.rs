//! DP8390D register names and bits (National Semiconductor DP8390D/NS32490D NIC Core
//! datasheet, section 10), the NE2000's port layout, and the RTL8029AS additions.

// Port layout of the NE2000's I/O window.
/// The data port: remote DMA reads and writes of the card's memory.
pub const NE_DATAPORT: u64 = 0x10;
/// The reset port: a read (or write) resets the card.
pub const NE_RESET: u64 = 0x1f;

// Page-independent.
/// Command register (all pages).
pub const CR: u8 = 0x00;

// Page 0, write side.
/// Page start (first page of the receive ring).
pub const PSTART: u8 = 0x01;
/// Page stop (first page past the receive ring).
pub const PSTOP: u8 = 0x02;
/// Boundary: last page the host has read.
pub const BNRY: u8 = 0x03;
/// Transmit page start.
pub const TPSR: u8 = 0x04;
/// Transmit byte count, low.
pub const TBCR0: u8 = 0x05;
/// Transmit byte count, high.
pub const TBCR1: u8 = 0x06;
/// Interrupt status (write 1s to clear).
pub const ISR: u8 = 0x07;
/// Remote start address, low.
pub const RSAR0: u8 = 0x08;
/// Remote start address, high.
pub const RSAR1: u8 = 0x09;
/// Remote byte count, low.
pub const RBCR0: u8 = 0x0a;
/// Remote byte count, high.
pub const RBCR1: u8 = 0x0b;
/// Receive configuration.
pub const RCR: u8 = 0x0c;
/// Transmit configuration.
pub const TCR: u8 = 0x0d;
/// Data configuration.
pub const DCR: u8 = 0x0e;
/// Interrupt mask.
pub const IMR: u8 = 0x0f;

// Page 0, read side (where it differs).
/// Transmit status.
pub const TSR: u8 = 0x04;
/// Number of collisions.
pub const NCR: u8 = 0x05;
/// Current remote DMA address, low.
pub const CRDA0: u8 = 0x08;
/// Current remote DMA address, high.
pub const CRDA1: u8 = 0x09;
/// RTL8029AS ID byte 0 ('P').
pub const RTL8029_ID0: u8 = 0x0a;
/// RTL8029AS ID byte 1 ('C').
pub const RTL8029_ID1: u8 = 0x0b;
/// Receive status.
pub const RSR: u8 = 0x0c;
/// Frame alignment error tally.
pub const CNTR0: u8 = 0x0d;
/// CRC error tally.
pub const CNTR1: u8 = 0x0e;
/// Missed packet tally.
pub const CNTR2: u8 = 0x0f;

// Page 1.
/// Physical address registers PAR0-PAR5.
pub const PAR0: u8 = 0x01;
/// Current page: where the next received frame goes.
pub const CURR: u8 = 0x07;
/// Multicast address registers MAR0-MAR7.
pub const MAR0: u8 = 0x08;

// CR bits.
/// Stop: the card neither receives nor transmits.
pub const CR_STP: u8 = 1 << 0;
/// Start.
pub const CR_STA: u8 = 1 << 1;
/// Transmit packet.
pub const CR_TXP: u8 = 1 << 2;
/// Remote DMA command field (RD2-RD0).
pub const CR_RD_MASK: u8 = 0b111 << 3;
/// Remote DMA: read.
pub const CR_RD_READ: u8 = 0b001 << 3;
/// Remote DMA: write.
pub const CR_RD_WRITE: u8 = 0b010 << 3;
/// Remote DMA: send packet.
pub const CR_RD_SEND: u8 = 0b011 << 3;
/// Remote DMA: abort or complete.
pub const CR_RD_ABORT: u8 = 0b100 << 3;
/// Page select field (PS1-PS0).
pub const CR_PS_SHIFT: u8 = 6;

// ISR and IMR bits.
/// Packet received.
pub const ISR_PRX: u8 = 1 << 0;
/// Packet transmitted.
pub const ISR_PTX: u8 = 1 << 1;
/// Receive error.
pub const ISR_RXE: u8 = 1 << 2;
/// Transmit error.
pub const ISR_TXE: u8 = 1 << 3;
/// Receive buffer overwrite warning (the ring is full).
pub const ISR_OVW: u8 = 1 << 4;
/// A tally counter's top bit is set.
pub const ISR_CNT: u8 = 1 << 5;
/// Remote DMA complete.
pub const ISR_RDC: u8 = 1 << 6;
/// Reset state (set while stopped, not an interrupt source).
pub const ISR_RST: u8 = 1 << 7;

// RCR bits.
/// Accept broadcast.
pub const RCR_AB: u8 = 1 << 2;
/// Accept multicast (through the MAR hash).
pub const RCR_AM: u8 = 1 << 3;
/// Promiscuous.
pub const RCR_PRO: u8 = 1 << 4;
/// Monitor: check frames but store none.
pub const RCR_MON: u8 = 1 << 5;

// DCR bits.
/// Word-wide transfers.
pub const DCR_WTS: u8 = 1 << 0;

// TSR and RSR bits.
/// Transmitted without error.
pub const TSR_PTX: u8 = 1 << 0;
/// Received without error.
pub const RSR_PRX: u8 = 1 << 0;
/// The frame was multicast or broadcast.
pub const RSR_PHY: u8 = 1 << 5;

// TCR bits.
/// Loopback mode field (LB1-LB0); not zero: frames loop back instead of leaving.
pub const TCR_LB_MASK: u8 = 0b11 << 1;
