use super::*;
use crate::ide::tests_support::ram;
use crate::net::wire::{self, Ipv4, Tcp, TcpHeader, TCP_ACK, TCP_FIN, TCP_PSH};
use rx86_core::irq::RecordingIrqLine;
use rx86_core::phys::PhysMemory;
use std::net::Ipv4Addr;

const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const RX_RING: u64 = 0x1000;
const TX_RING: u64 = 0x2000;
const RX_BUFFERS: u64 = 0x10000;
const TX_BUFFERS: u64 = 0x40000;

fn nic() -> (E1000, Arc<RecordingIrqLine>, Arc<PhysMemory>) {
    let irq = RecordingIrqLine::new();
    let memory = ram();
    let mut nic = E1000::new(MAC, irq.clone(), Some(memory.clone())).unwrap();
    nic.firmware_setup(0xfebc_0000, 0xc040, 11);
    (nic, irq, memory)
}

fn eerd(nic: &mut E1000, word: u32) -> u16 {
    nic.write_register(EERD, EERD_START | word << EERD_ADDR_SHIFT);
    let v = nic.read_register(EERD);
    assert_ne!(v & EERD_DONE, 0);
    (v >> EERD_DATA_SHIFT) as u16
}

/// Reads a word the way Linux's e1000_read_eeprom does on an 82540EM (Microwire through EECD).
fn microwire_read(nic: &mut E1000, word: u16) -> u16 {
    let mut eecd = nic.read_register(EECD) | EECD_REQ;
    nic.write_register(EECD, eecd);
    assert_ne!(nic.read_register(EECD) & EECD_GNT, 0);
    eecd = (eecd & !(EECD_DI | EECD_SK)) | EECD_CS;
    nic.write_register(EECD, eecd);
    let mut shift_out = |nic: &mut E1000, value: u16, bits: u32| {
        for i in (0..bits).rev() {
            eecd = if value >> i & 1 != 0 { eecd | EECD_DI } else { eecd & !EECD_DI };
            nic.write_register(EECD, eecd);
            nic.write_register(EECD, eecd | EECD_SK);
            nic.write_register(EECD, eecd);
        }
    };
    shift_out(nic, 0b110, 3);
    shift_out(nic, word, 6);
    let mut data = 0u16;
    eecd &= !EECD_DI;
    for _ in 0..16 {
        nic.write_register(EECD, eecd | EECD_SK);
        data = data << 1 | u16::from(nic.read_register(EECD) & EECD_DO != 0);
        nic.write_register(EECD, eecd);
    }
    nic.write_register(EECD, eecd & !(EECD_CS | EECD_REQ));
    data
}

#[test]
fn pci_identity_and_bars() {
    let (mut nic, _, _) = nic();
    assert_eq!(nic.read_config(0, 4), 0x100e_8086);
    assert_eq!(nic.read_config(0x08, 4) >> 8, 0x02_00_00, "class: Ethernet controller");
    assert_eq!(nic.read_config(0x10, 4), 0xfebc_0000, "BAR0: 32-bit memory");
    assert_eq!(nic.read_config(0x14, 4), 0xc041, "BAR1: I/O");
    assert_eq!(nic.read_config(0x3c, 2), 0x010b, "INTA#, line 11");
    nic.write_config(0x10, 4, 0xffff_ffff);
    assert_eq!(nic.read_config(0x10, 4), 0xfffe_0000, "128 KiB register window");
}

#[test]
fn eeprom_holds_the_mac_and_a_valid_checksum() {
    let (mut nic, _, _) = nic();
    let words: Vec<u16> = (0..EEPROM_WORDS as u32).map(|w| eerd(&mut nic, w)).collect();
    assert_eq!(&words[..3], &[0x5452, 0x1200, 0x5634]);
    assert_eq!(words.iter().fold(0u16, |a, &w| a.wrapping_add(w)), EEPROM_SUM);
    for w in [0u16, 1, 2, 0x0a, 0x3f] {
        assert_eq!(microwire_read(&mut nic, w), words[usize::from(w)], "Microwire word {w:#x}");
    }
}

#[test]
fn mac_in_receive_address_zero_survives_reset() {
    let (mut nic, _, _) = nic();
    assert_eq!(nic.read_register(RAL0), 0x1200_5452);
    assert_eq!(nic.read_register(RAH0), 0x8000_5634, "AV set");
    nic.write_register(RAL0, 0);
    nic.write_register(RCTL, RCTL_EN);
    nic.write_register(CTRL, CTRL_RST);
    assert_eq!(nic.read_register(RAL0), 0x1200_5452);
    assert_eq!(nic.read_register(RCTL), 0);
    assert_eq!(nic.read_register(CTRL) & CTRL_RST, 0, "RST self-clears");
    assert_eq!(nic.read_register(STATUS) & (STATUS_LU | STATUS_FD), STATUS_LU | STATUS_FD);
}

#[test]
fn icr_reads_clear_and_drive_the_line() {
    let (mut nic, irq, _) = nic();
    nic.write_register(ICS, ICR_LSC);
    assert!(!irq.level(), "masked");
    nic.write_register(IMS, ICR_LSC | ICR_RXT0);
    assert!(irq.level());
    assert_eq!(nic.read_register(IMS), ICR_LSC | ICR_RXT0);
    assert_eq!(nic.read_register(ICR), ICR_LSC);
    assert!(!irq.level(), "reading ICR clears it");
    assert_eq!(nic.read_register(ICR), 0);
    nic.write_register(ICS, ICR_RXT0);
    assert!(irq.level());
    nic.write_register(IMC, ICR_RXT0);
    assert!(!irq.level(), "IMC masks");
    nic.write_register(IMS, ICR_RXT0);
    assert!(irq.level());
    nic.write_config(0x04, 2, 0x0407);
    assert!(!irq.level(), "the command register's Interrupt Disable");
}

#[test]
fn phy_through_mdic() {
    let (mut nic, _, _) = nic();
    let read = |nic: &mut E1000, phy: u32, reg: u32| {
        nic.write_register(MDIC, 0b10 << MDIC_OP_SHIFT | phy << MDIC_PHYADD_SHIFT | reg << MDIC_REGADD_SHIFT);
        nic.read_register(MDIC)
    };
    assert_eq!(read(&mut nic, 1, 2) & 0xffff, 0x0141);
    assert_eq!(read(&mut nic, 1, 3) & 0xffff, 0x0c20);
    let status = read(&mut nic, 1, 1);
    assert_ne!(status & MDIC_READY, 0);
    assert_eq!(status & 0x24, 0x24, "link up, auto-negotiation complete");
    assert_ne!(read(&mut nic, 2, 1) & MDIC_ERROR, 0, "no PHY at address 2");
}

fn setup_tx(nic: &mut E1000, entries: u32) {
    nic.write_register(TDBAL, TX_RING as u32);
    nic.write_register(TDBAH, 0);
    nic.write_register(TDLEN, entries * 16);
    nic.write_register(TDH, 0);
    nic.write_register(TDT, 0);
    nic.write_register(TCTL, TCTL_EN);
}

fn legacy_tx(memory: &PhysMemory, index: u64, buffer: u64, data: &[u8], cmd: u8) {
    memory.dma_write(buffer, data).unwrap();
    let mut d = [0u8; 16];
    d[..8].copy_from_slice(&buffer.to_le_bytes());
    d[8..10].copy_from_slice(&(data.len() as u16).to_le_bytes());
    d[11] = cmd;
    memory.dma_write(TX_RING + index * 16, &d).unwrap();
}

#[test]
fn transmit_ring_wraps_and_writes_back() {
    let (mut nic, irq, memory) = nic();
    setup_tx(&mut nic, 8);
    nic.write_register(IMS, ICR_TXDW);
    let mut sent = Vec::new();
    for round in 0..3u8 {
        // Five packets per round, each of two descriptors: the ring of 8 wraps.
        for p in 0..5u8 {
            let tdt = nic.read_register(TDT);
            let frame: Vec<u8> = (0..100).map(|i| i ^ p ^ round).collect();
            legacy_tx(&memory, u64::from(tdt), TX_BUFFERS + u64::from(tdt) * 0x800, &frame[..40], 0);
            let next = (tdt + 1) % 8;
            legacy_tx(&memory, u64::from(next), TX_BUFFERS + u64::from(next) * 0x800, &frame[40..], 0b1001);
            nic.write_register(TDT, (next + 1) % 8);
            sent.push(frame);
            assert_eq!(nic.read_register(TDH), (next + 1) % 8);
            let mut status = [0u8];
            memory.dma_read(TX_RING + u64::from(next) * 16 + 12, &mut status).unwrap();
            assert_eq!(status[0] & 1, 1, "DD on the RS descriptor");
            assert!(irq.level());
            nic.read_register(ICR);
        }
    }
    assert_eq!(nic.take_tx_frames(), sent);
    assert_eq!(nic.read_register(GPTC), 15);
    assert_eq!(nic.read_register(GPTC), 0, "statistics clear on read");
}

#[test]
fn bad_transmit_descriptors_do_no_harm() {
    let (mut nic, _, memory) = nic();
    setup_tx(&mut nic, 8);
    // A buffer outside RAM, a buffer running past the end of RAM, a giant length.
    legacy_tx(&memory, 0, 0, &[1; 60], 0b1001);
    let mut d = [0u8; 16];
    d[..8].copy_from_slice(&0xdead_0000_0000u64.to_le_bytes());
    d[8..10].copy_from_slice(&60u16.to_le_bytes());
    d[11] = 0b1001;
    memory.dma_write(TX_RING + 16, &d).unwrap();
    d[..8].copy_from_slice(&0x000f_fff0u64.to_le_bytes());
    memory.dma_write(TX_RING + 32, &d).unwrap();
    // A data descriptor of 1 MiB (20-bit length) with no context.
    let mut big = [0u8; 16];
    big[..8].copy_from_slice(&TX_BUFFERS.to_le_bytes());
    big[8..12].copy_from_slice(&(0x000f_ffffu32 | 1 << 20 | 0b0010_1001 << 24).to_le_bytes());
    memory.dma_write(TX_RING + 48, &big).unwrap();
    nic.write_register(TDT, 4);
    assert_eq!(nic.read_register(TDH), 4);
    assert_eq!(nic.take_tx_frames().len(), 1, "only the good packet leaves");
    // Tail past the ring: the engine stops instead of walking off.
    nic.write_register(TDT, 1000);
    assert_eq!(nic.read_register(TDH), 4);
    // The ring itself outside RAM.
    nic.write_register(TDBAL, 0xfff0_0000);
    nic.write_register(TDT, 6);
    assert_eq!(nic.read_register(TDH), 4);
    assert!(nic.take_tx_frames().is_empty());
}

fn setup_rx(nic: &mut E1000, memory: &PhysMemory, entries: u32, rctl: u32) {
    for i in 0..u64::from(entries) {
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&(RX_BUFFERS + i * 0x800).to_le_bytes());
        memory.dma_write(RX_RING + i * 16, &d).unwrap();
    }
    nic.write_register(RDBAL, RX_RING as u32);
    nic.write_register(RDLEN, entries * 16);
    nic.write_register(RDH, 0);
    nic.write_register(RDT, entries - 1);
    nic.write_register(RCTL, RCTL_EN | RCTL_BAM | rctl);
}

fn frame_to(dest: [u8; 6], len: usize, tag: u8) -> Vec<u8> {
    let mut f = dest.to_vec();
    f.extend_from_slice(&wire::GATEWAY_TEST_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend((0..len - 14).map(|i| (i as u8).wrapping_add(tag)));
    f
}

#[test]
fn receive_ring_fills_wraps_and_reports_no_room() {
    let (mut nic, irq, memory) = nic();
    setup_rx(&mut nic, &memory, 8, 0);
    nic.write_register(IMS, ICR_RXT0);
    for tag in 0..20u8 {
        // One frame per tag, so the count delivered so far is the tag.
        let delivered = u32::from(tag);
        let frame = frame_to(MAC, 100 + usize::from(tag), tag);
        let outcome = nic.receive(&frame);
        if outcome == RxOutcome::NoRoom {
            // The guest hands the buffers back: RDT moves to just behind RDH.
            let head = nic.read_register(RDH);
            assert_eq!(delivered % 8, head);
            nic.write_register(RDT, (head + 7) % 8);
            assert_eq!(nic.receive(&frame), RxOutcome::Delivered);
        }
        let index = u64::from(delivered % 8);
        let mut d = [0u8; 16];
        memory.dma_read(RX_RING + index * 16, &mut d).unwrap();
        let len = usize::from(u16::from_le_bytes([d[8], d[9]]));
        assert_eq!(len, frame.len() + 4, "length includes the CRC");
        assert_eq!(d[12] & 0b11, 0b11, "DD and EOP");
        let mut stored = vec![0u8; len];
        memory.dma_read(RX_BUFFERS + index * 0x800, &mut stored).unwrap();
        assert_eq!(&stored[..frame.len()], &frame[..]);
        assert_eq!(&stored[frame.len()..], &wire::ethernet_crc32(&frame).to_le_bytes());
        assert!(irq.level());
        assert_ne!(nic.read_register(ICR) & ICR_RXT0, 0);
    }
    assert_eq!(nic.read_register(GPRC), 20);
}

#[test]
fn receive_filters_and_pads() {
    let (mut nic, _, memory) = nic();
    setup_rx(&mut nic, &memory, 8, RCTL_SECRC);
    assert_eq!(nic.receive(&frame_to([0x52, 0x54, 0, 0, 0, 1], 60, 0)), RxOutcome::Dropped, "other unicast");
    assert_eq!(nic.receive(&frame_to([0x01, 0, 0x5e, 0, 0, 0xfb], 60, 0)), RxOutcome::Dropped, "multicast");
    assert_eq!(nic.receive(&[0u8; 10]), RxOutcome::Dropped, "runt");
    assert_eq!(nic.receive(&frame_to([0xff; 6], 42, 0)), RxOutcome::Delivered, "broadcast, BAM");
    let mut d = [0u8; 16];
    memory.dma_read(RX_RING, &mut d).unwrap();
    assert_eq!(u16::from_le_bytes([d[8], d[9]]), 60, "padded to 60 bytes, CRC stripped");
    // The MTA bit of 01:00:5e:00:00:fb with MO = 0 (address bits 47:36).
    let hash = (0xfbu32 << 4) & 0xfff;
    nic.write_register(MTA + 4 * (hash >> 5), 1 << (hash & 31));
    assert_eq!(nic.receive(&frame_to([0x01, 0, 0x5e, 0, 0, 0xfb], 60, 0)), RxOutcome::Delivered);
    let rctl = nic.read_register(RCTL);
    nic.write_register(RCTL, rctl | RCTL_UPE);
    assert_eq!(nic.receive(&frame_to([0x52, 0x54, 0, 0, 0, 1], 60, 0)), RxOutcome::Delivered, "promiscuous");
}

#[test]
fn bad_receive_rings_drop_frames() {
    let (mut nic, _, memory) = nic();
    setup_rx(&mut nic, &memory, 8, 0);
    nic.write_register(RDT, 9);
    assert_eq!(nic.receive(&frame_to(MAC, 60, 0)), RxOutcome::Dropped, "tail past the ring");
    nic.write_register(RDT, 7);
    nic.write_register(RDBAL, 0xfff0_0000);
    assert_eq!(nic.receive(&frame_to(MAC, 60, 0)), RxOutcome::Dropped, "ring outside RAM");
    assert_eq!(nic.read_register(RDH), 0);
    nic.write_register(RDBAL, RX_RING as u32);
    let mut d = [0u8; 16];
    d[..8].copy_from_slice(&0x000f_ffc0u64.to_le_bytes());
    memory.dma_write(RX_RING, &d).unwrap();
    assert_eq!(nic.receive(&frame_to(MAC, 200, 0)), RxOutcome::Delivered, "buffer running past RAM");
    memory.dma_read(RX_RING, &mut d).unwrap();
    assert_eq!(d[13] & 0x80, 0x80, "RXE reported");
    nic.write_register(RDLEN, 0xffff_ffff);
    assert_eq!(nic.read_register(RDLEN), 0x000f_ff80, "length masked to bits 19:7");
    nic.write_register(RCTL, 0);
    assert_eq!(nic.receive(&frame_to(MAC, 60, 0)), RxOutcome::Dropped, "receiver off");
}

/// A TCP/IPv4 frame with `payload`, checksum fields seeded as Linux seeds them for TSO.
fn tso_packet(payload: &[u8]) -> Vec<u8> {
    let src = Ipv4Addr::new(10, 0, 2, 15);
    let dst = Ipv4Addr::new(10, 0, 2, 2);
    let header = TcpHeader {
        src: (src, 5000),
        dst: (dst, 80),
        seq: 1000,
        ack: 1,
        flags: TCP_ACK | TCP_PSH | TCP_FIN,
        window: 100,
        mss: None,
    };
    let mut seg = wire::tcp(&header, payload);
    let pseudo = wire::checksum_add(wire::checksum_add(0, &src.octets()), &dst.octets()) + 6;
    let folded = ((pseudo & 0xffff) + (pseudo >> 16)) as u16;
    seg[16..18].copy_from_slice(&folded.to_be_bytes());
    let mut ip = wire::ipv4(src, dst, 6, 7, &seg);
    ip[10..12].copy_from_slice(&[0, 0]);
    wire::ethernet(wire::GATEWAY_TEST_MAC, MAC, 0x0800, &ip)
}

#[test]
fn tso_segments_with_checksums() {
    let (mut nic, _, memory) = nic();
    setup_tx(&mut nic, 8);
    let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    let packet = tso_packet(&payload);
    let hdrlen = 14 + 20 + 20;
    let mut ctx = [0u8; 16];
    ctx[0] = 14; // IPCSS
    ctx[1] = 14 + 10; // IPCSO
    ctx[2..4].copy_from_slice(&(14u16 + 19).to_le_bytes()); // IPCSE
    ctx[4] = 34; // TUCSS
    ctx[5] = 34 + 16; // TUCSO
    let paylen = payload.len() as u32;
    // DTYP 0 (context); TUCMD DEXT, TSE, IP (IPv4), TCP.
    ctx[8..12].copy_from_slice(&(paylen | u32::from(0b0010_0111u8) << 24).to_le_bytes());
    ctx[13] = hdrlen as u8;
    ctx[14..16].copy_from_slice(&1460u16.to_le_bytes());
    memory.dma_write(TX_RING, &ctx).unwrap();
    memory.dma_write(TX_BUFFERS, &packet).unwrap();
    let mut data = [0u8; 16];
    data[..8].copy_from_slice(&TX_BUFFERS.to_le_bytes());
    data[8..12].copy_from_slice(&(packet.len() as u32 | 1 << 20 | u32::from(0b0010_1101u8) << 24).to_le_bytes());
    data[13] = 0b11; // IXSM | TXSM
    memory.dma_write(TX_RING + 16, &data).unwrap();
    nic.write_register(TDT, 2);
    let frames = nic.take_tx_frames();
    assert_eq!(frames.len(), 3, "3000 bytes at MSS 1460");
    let mut joined = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let ip = Ipv4::parse(&f[14..]).expect("valid IP header checksum");
        let tcp = Tcp::parse(ip.src, ip.dst, ip.payload).expect("valid TCP checksum");
        assert_eq!(tcp.seq, 1000 + 1460 * i as u32);
        assert_eq!(tcp.flags & TCP_FIN != 0, i == 2, "FIN only on the last segment");
        assert_eq!(u16::from_be_bytes([f[18], f[19]]), 7 + i as u16, "IP ID counts up");
        joined.extend_from_slice(tcp.payload);
    }
    assert_eq!(joined, payload);
}

#[test]
fn io_window_reaches_the_registers() {
    let (nic, _, _) = nic();
    let nic = Arc::new(Mutex::new(nic));
    let mut io = E1000::io_ports(&nic);
    io.write(0, 4, u64::from(RAL0));
    assert_eq!(io.read(4, 4), 0x1200_5452);
    io.write(0, 4, u64::from(IMS));
    io.write(4, 4, u64::from(ICR_LSC));
    assert_eq!(nic.lock().unwrap().read_register(IMS), ICR_LSC);
}

#[test]
fn receive_checksum_offload_reports_good_and_bad_sums() {
    let (mut nic, _, memory) = nic();
    setup_rx(&mut nic, &memory, 8, RCTL_SECRC);
    let status_errors = |nic: &mut E1000, frame: &[u8]| {
        let index = u64::from(nic.read_register(RDH));
        assert_eq!(nic.receive(frame), RxOutcome::Delivered);
        let mut d = [0u8; 16];
        memory.dma_read(RX_RING + index * 16, &mut d).unwrap();
        (d[12] & 0b0110_0100, d[13])
    };
    let mut tcp_frame = tso_packet(b"checked by the NIC");
    tcp_frame[..6].copy_from_slice(&MAC);
    // tso_packet leaves seeds in the checksum fields: fix them as a sender would.
    let ip = 14;
    let ip_sum = wire::checksum_finish(wire::checksum_add(0, &tcp_frame[ip..ip + 20]));
    tcp_frame[ip + 10..ip + 12].copy_from_slice(&ip_sum.to_be_bytes());
    tcp_frame[ip + 20 + 16..ip + 20 + 18].copy_from_slice(&[0, 0]);
    let src = Ipv4Addr::new(10, 0, 2, 15);
    let dst = Ipv4Addr::new(10, 0, 2, 2);
    let l4 = tcp_frame[ip + 20..].to_vec();
    let sum = wire::checksum_finish(wire::checksum_add(wire::pseudo_header_sum(src, dst, 6, l4.len()), &l4));
    tcp_frame[ip + 20 + 16..ip + 20 + 18].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(status_errors(&mut nic, &tcp_frame), (RXD_STAT_IXSM, 0), "offload off: not checked");
    nic.write_register(RXCSUM, RXCSUM_IPOFLD | RXCSUM_TUOFLD);
    assert_eq!(status_errors(&mut nic, &tcp_frame), (RXD_STAT_IPCS | RXD_STAT_TCPCS, 0), "both sums good");
    let mut bad = tcp_frame.clone();
    *bad.last_mut().unwrap() ^= 0xff;
    assert_eq!(status_errors(&mut nic, &bad), (RXD_STAT_IPCS | RXD_STAT_TCPCS, RXD_ERR_TCPE));
    let mut bad_ip = tcp_frame.clone();
    bad_ip[ip + 8] ^= 1; // TTL
    assert_eq!(status_errors(&mut nic, &bad_ip).1 & RXD_ERR_IPE, RXD_ERR_IPE);
    assert_eq!(status_errors(&mut nic, &frame_to(MAC, 60, 0)).0, RXD_STAT_IXSM, "not IPv4 (garbage): not checked");
}
