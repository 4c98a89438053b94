//! The RTL8029AS driven as Linux's `ne2k-pci` and `8390` drivers drive it: reset, the PROM,
//! transmit through remote DMA, the receive ring up to and across its wrap.

use super::regs::*;
use super::{multicast_crc, Ne2000};
use crate::net::{NetworkCard, RxOutcome};
use crate::pci::PciFunction;
use rx86_core::bus::BusDevice;
use rx86_core::irq::RecordingIrqLine;
use std::sync::Arc;

const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
/// Linux's NE2000 layout: transmit buffers at 0x40, the ring from 0x4C to 0x80.
const TX_PAGE: u8 = 0x40;
const RX_START: u8 = 0x4c;
const RX_STOP: u8 = 0x80;

struct Driver {
    card: Ne2000,
    irq: Arc<RecordingIrqLine>,
}

impl Driver {
    fn out(&mut self, reg: u8, value: u8) {
        self.card.write(u64::from(reg), 1, u64::from(value));
    }

    fn inb(&mut self, reg: u8) -> u8 {
        self.card.read(u64::from(reg), 1) as u8
    }

    /// Reset, PROM read and NS8390_init + open, as Linux does.
    fn new() -> (Self, [u8; 32]) {
        let irq = RecordingIrqLine::new();
        let mut card = Ne2000::new(MAC, irq.clone()).unwrap();
        card.firmware_setup(0xc040, 11);
        let mut d = Driver { card, irq };
        let r = d.inb(NE_RESET as u8);
        d.out(NE_RESET as u8, r);
        assert_ne!(d.inb(ISR) & ISR_RST, 0, "reset seen in ISR");
        d.out(ISR, 0xff);
        for (value, reg) in [
            (CR_RD_ABORT | CR_STP, CR),
            (0x49, DCR),
            (0, RBCR0),
            (0, RBCR1),
            (0, IMR),
            (0xff, ISR),
            (RCR_MON, RCR),
            (0x02, TCR),
            (32, RBCR0),
            (0, RBCR1),
            (0, RSAR0),
            (0, RSAR1),
            (CR_RD_READ | CR_STA, CR),
        ] {
            d.out(reg, value);
        }
        let mut prom = [0u8; 32];
        prom.iter_mut().for_each(|b| *b = d.inb(NE_DATAPORT as u8));
        // NS8390_init.
        for (value, reg) in [
            (CR_RD_ABORT | CR_STP, CR),
            (0x49, DCR),
            (0, RBCR0),
            (0, RBCR1),
            (RCR_MON, RCR),
            (0x02, TCR),
            (TX_PAGE, TPSR),
            (RX_START, PSTART),
            (RX_STOP - 1, BNRY),
            (RX_STOP, PSTOP),
            (0xff, ISR),
            (0, IMR),
            (CR_RD_ABORT | CR_STP | 1 << CR_PS_SHIFT, CR),
        ] {
            d.out(reg, value);
        }
        for (i, &b) in MAC.iter().enumerate() {
            d.out(PAR0 + i as u8, b);
        }
        d.out(CURR, RX_START);
        d.out(CR, CR_RD_ABORT | CR_STP);
        d.out(BNRY, RX_STOP - 1);
        // Open: interrupts on, started, normal transmit, broadcast accepted.
        d.out(ISR, 0xff);
        d.out(IMR, ISR_PRX | ISR_PTX | ISR_RXE | ISR_TXE | ISR_OVW | ISR_CNT);
        d.out(CR, CR_RD_ABORT | CR_STA);
        d.out(TCR, 0);
        d.out(RCR, RCR_AB);
        (d, prom)
    }

    fn remote(&mut self, command: u8, addr: u16, count: u16) {
        self.out(RBCR0, count as u8);
        self.out(RBCR1, (count >> 8) as u8);
        self.out(RSAR0, addr as u8);
        self.out(RSAR1, (addr >> 8) as u8);
        self.out(CR, command | CR_STA);
    }

    /// Reads `count` bytes of card memory at `addr` with 32-bit data port reads.
    fn read_memory(&mut self, addr: u16, count: u16) -> Vec<u8> {
        self.remote(CR_RD_READ, addr, count);
        let mut bytes = Vec::new();
        while bytes.len() < usize::from(count) {
            bytes.extend_from_slice(&(self.card.read(NE_DATAPORT, 4) as u32).to_le_bytes());
        }
        bytes.truncate(usize::from(count));
        assert_ne!(self.inb(ISR) & ISR_RDC, 0, "remote DMA complete");
        self.out(ISR, ISR_RDC);
        bytes
    }

    fn send(&mut self, frame: &[u8]) {
        let count = (frame.len() as u16 + 3) & !3;
        self.remote(CR_RD_WRITE, u16::from(TX_PAGE) << 8, count);
        for chunk in frame.chunks(4) {
            let mut w = [0u8; 4];
            w[..chunk.len()].copy_from_slice(chunk);
            self.card.write(NE_DATAPORT, 4, u64::from(u32::from_le_bytes(w)));
        }
        assert_ne!(self.inb(ISR) & ISR_RDC, 0);
        self.out(ISR, ISR_RDC);
        self.out(TBCR0, frame.len() as u8);
        self.out(TBCR1, (frame.len() >> 8) as u8);
        self.out(TPSR, TX_PAGE);
        self.out(CR, CR_RD_ABORT | CR_TXP | CR_STA);
    }

    /// Takes every frame from the ring as `ei_receive` does; returns them.
    fn receive_all(&mut self) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        loop {
            self.out(CR, CR_RD_ABORT | CR_STA | 1 << CR_PS_SHIFT);
            let curr = self.inb(CURR);
            self.out(CR, CR_RD_ABORT | CR_STA);
            let mut this = self.inb(BNRY) + 1;
            if this >= RX_STOP {
                this = RX_START;
            }
            if this == curr {
                return frames;
            }
            let header = self.read_memory(u16::from(this) << 8, 4);
            assert_eq!(header[0] & 0x0f, RSR_PRX, "status");
            let len = u16::from_le_bytes([header[2], header[3]]) - 4;
            let next_frame = this + 1 + ((len + 4) >> 8) as u8;
            let next = header[1];
            let pages = RX_STOP - RX_START;
            assert!(
                [next_frame, next_frame + 1, next_frame.wrapping_sub(pages), (next_frame + 1).wrapping_sub(pages)]
                    .contains(&next),
                "next page {next:#x} as ei_receive expects from {this:#x} and {len} bytes"
            );
            // The frame may wrap at PSTOP: read it in two parts as ei_block_input does.
            let start = (u16::from(this) << 8) + 4;
            let stop = u16::from(RX_STOP) << 8;
            let mut frame = if start + len > stop {
                let first = stop - start;
                let mut f = self.read_memory(start, first);
                f.extend(self.read_memory(u16::from(RX_START) << 8, len - first));
                f
            } else {
                self.read_memory(start, len)
            };
            frame.truncate(usize::from(len));
            frames.push(frame);
            // As ei_receive does: next - 1 even when next is PSTART (BNRY then lies just
            // below the ring).
            self.out(BNRY, next - 1);
        }
    }
}

fn frame(len: usize, seed: u8) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed)).collect();
    f[..6].copy_from_slice(&MAC);
    f
}

#[test]
fn pci_identity_reset_and_prom() {
    let (mut d, prom) = Driver::new();
    assert_eq!(d.card.read_config(0, 4), 0x8029_10ec, "Realtek RTL8029");
    assert_eq!(d.card.read_config(0x08, 4) >> 8, 0x02_00_00, "Ethernet controller");
    assert_eq!(&prom[..6], &MAC, "word-mode byte reads give the address");
    d.out(CR, CR_RD_ABORT | CR_STA);
    assert_eq!([d.inb(RTL8029_ID0), d.inb(RTL8029_ID1)], [b'P', b'C']);
    let raw = d.read_memory(0, 16);
    assert_eq!(raw[..12], [0x52, 0x52, 0x54, 0x54, 0, 0, 0x12, 0x12, 0x34, 0x34, 0x56, 0x56]);
    assert_eq!(raw[14..16], [b'W', b'W']);
}

#[test]
fn transmit_sends_the_bytes_written_by_remote_dma() {
    let (mut d, _) = Driver::new();
    let f = frame(98, 5);
    d.send(&f);
    assert_eq!(d.card.take_tx_frames(), vec![f]);
    assert_eq!(d.inb(ISR) & ISR_PTX, ISR_PTX);
    assert_eq!(d.inb(TSR), TSR_PTX);
    assert!(d.irq.level(), "PTX unmasked");
    d.out(ISR, ISR_PTX);
    assert!(!d.irq.level());
    assert_eq!(d.inb(CR) & CR_TXP, 0, "TXP clears when the frame is out");
}

#[test]
fn the_receive_ring_wraps_and_frames_come_out_intact() {
    let (mut d, _) = Driver::new();
    // 52 pages of ring; frames of 1000 bytes take 4 pages each: the 14th wraps.
    let (mut sent, mut got) = (Vec::new(), Vec::new());
    for round in 0..6u8 {
        for i in 0..5u8 {
            let f = frame(1000 + usize::from(i) * 3, round * 5 + i);
            assert_eq!(d.card.receive(&f), RxOutcome::Delivered);
            sent.push(f);
        }
        assert!(d.irq.level(), "PRX");
        got.extend(d.receive_all());
        d.out(ISR, ISR_PRX);
        assert!(!d.irq.level());
    }
    assert_eq!(got, sent);
}

#[test]
fn frames_read_back_are_byte_exact_across_the_wrap() {
    let (mut d, _) = Driver::new();
    let mut expected = Vec::new();
    let mut got = Vec::new();
    for i in 0..40u8 {
        let f = frame(60 + usize::from(i) * 37, i);
        assert_eq!(d.card.receive(&f), RxOutcome::Delivered, "frame {i}");
        expected.push(f);
        got.extend(d.receive_all());
    }
    assert_eq!(got, expected);
}

#[test]
fn one_page_frames_walk_the_ring_past_its_start_twice() {
    // Every page in turn, so CURR comes back to PSTART exactly and the driver leaves BNRY one
    // below the ring, as Linux does.
    let (mut d, _) = Driver::new();
    for i in 0..(2 * usize::from(RX_STOP - RX_START) + 5) {
        let f = frame(60, i as u8);
        assert_eq!(d.card.receive(&f), RxOutcome::Delivered, "frame {i}");
        assert_eq!(d.receive_all(), vec![f], "frame {i}");
    }
}

#[test]
fn a_full_ring_holds_frames_back_until_the_driver_frees_pages() {
    let (mut d, _) = Driver::new();
    let mut delivered = 0;
    while d.card.receive(&frame(1500, delivered)) == RxOutcome::Delivered {
        delivered += 1;
        assert!(delivered < 20, "the ring fills");
    }
    // 52 pages, 6 pages a frame, one page kept free: 8 frames.
    assert_eq!(delivered, 8);
    assert_eq!(d.receive_all().len(), 8);
    assert_eq!(d.card.receive(&frame(1500, 0)), RxOutcome::Delivered);
}

#[test]
fn address_filter() {
    let (mut d, _) = Driver::new();
    let mut other = frame(60, 0);
    other[..6].copy_from_slice(&[0x52, 0x54, 0, 0, 0, 1]);
    assert_eq!(d.card.receive(&other), RxOutcome::Dropped, "another station's frame");
    let mut broadcast = frame(60, 0);
    broadcast[..6].copy_from_slice(&[0xff; 6]);
    assert_eq!(d.card.receive(&broadcast), RxOutcome::Delivered, "RCR.AB");
    let mut multicast = frame(60, 0);
    multicast[..6].copy_from_slice(&[0x01, 0x00, 0x5e, 0, 0, 1]);
    assert_eq!(d.card.receive(&multicast), RxOutcome::Dropped, "RCR.AM off");
    d.out(RCR, RCR_AB | RCR_AM);
    d.out(CR, CR_RD_ABORT | CR_STA | 1 << CR_PS_SHIFT);
    let hash = multicast_crc(&multicast[..6]) >> 26;
    d.out(MAR0 + (hash >> 3) as u8, 1 << (hash & 7));
    d.out(CR, CR_RD_ABORT | CR_STA);
    assert_eq!(d.card.receive(&multicast), RxOutcome::Delivered, "its MAR bit set");
    d.out(RCR, RCR_PRO);
    assert_eq!(d.card.receive(&other), RxOutcome::Delivered, "promiscuous");
}

#[test]
fn hostile_registers_stay_inside_the_card() {
    let (mut d, _) = Driver::new();
    // A ring past the card's memory, a transmit from the PROM region, remote DMA everywhere.
    d.out(CR, CR_RD_ABORT | CR_STP);
    d.out(PSTART, 0xf0);
    d.out(PSTOP, 0xff);
    d.out(CR, CR_RD_ABORT | CR_STA);
    assert_eq!(d.card.receive(&frame(100, 0)), RxOutcome::Dropped);
    d.out(TPSR, 0);
    d.out(TBCR0, 0xff);
    d.out(TBCR1, 0xff);
    d.out(CR, CR_RD_ABORT | CR_TXP | CR_STA);
    assert!(!d.card.has_tx_frames());
    assert_ne!(d.inb(ISR) & ISR_TXE, 0);
    d.remote(CR_RD_WRITE, 0xfff0, 0xffff);
    for _ in 0..0x11000 {
        d.card.write(NE_DATAPORT, 4, 0xdead_beef);
    }
    d.remote(CR_RD_READ, 0, 0);
    assert_ne!(d.inb(ISR) & ISR_RDC, 0, "an empty remote read completes");
}
