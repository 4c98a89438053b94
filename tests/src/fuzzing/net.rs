//! Fuzz targets for the network: the e1000's, virtio-net's and NE2000's register files,
//! descriptor rings and receive ring, and the NAT's packet parsing. Rings and buffers may point anywhere (outside RAM, across its end, at the
//! ring itself), lengths may be anything; the NIC must neither panic nor hang, and DMA stays
//! inside guest RAM because it only goes through `PhysMemory`'s checked path. The NAT runs with
//! `restrict=on`, so no fuzz input ever reaches a host socket.

use super::Input;
use rx86_core::bus::BusDevice;
use rx86_core::irq::NoIrq;
use rx86_core::memory::GuestRam;
use rx86_core::phys::{PhysMemory, Region, RegionKind};
use rx86_devices::e1000::{regs, E1000};
use rx86_devices::ne2000::{regs as ne, Ne2000};
use rx86_devices::net::tcp::TcpConnection;
use rx86_devices::net::wire::{self, TcpHeader};
use rx86_devices::net::NetworkCard;
use rx86_devices::net::{ndp, UserNet, UserNetConfig, GATEWAY_IP, GATEWAY_MAC, GUEST_IP};
use rx86_devices::pci::PciFunction;
use rx86_devices::virtio::net::VirtioNet;
use rx86_devices::virtio::pci::VirtioPci;
use rx86_devices::virtio::queue::QueueLayout;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// Guest RAM of the NIC target.
const RAM_BYTES: u64 = 1 << 20;
/// Registers the program favours (the rest of the window is reached too).
const REGISTERS: [u32; 20] = [
    regs::CTRL,
    regs::EECD,
    regs::EERD,
    regs::MDIC,
    regs::ICR,
    regs::ICS,
    regs::IMS,
    regs::IMC,
    regs::RCTL,
    regs::TCTL,
    regs::RDBAL,
    regs::RDBAH,
    regs::RDLEN,
    regs::RDH,
    regs::RDT,
    regs::TDBAL,
    regs::TDBAH,
    regs::TDLEN,
    regs::TDH,
    regs::TDT,
];

fn ram() -> Arc<PhysMemory> {
    let ram = Arc::new(GuestRam::new(RAM_BYTES).expect("guest RAM"));
    let mut memory = PhysMemory::new(ram);
    memory
        .add_region(Region { base: 0, len: RAM_BYTES, kind: RegionKind::Ram { offset: 0 }, name: "ram".into() })
        .expect("RAM region");
    Arc::new(memory)
}

/// A value for a register: often a small ring-ish number, sometimes anything.
fn value(input: &mut Input<'_>) -> u32 {
    match input.u8() % 4 {
        0 => u32::from(input.u8()),
        1 => u32::from(input.u16()) << 4,
        _ => input.u32(),
    }
}

/// A program against an e1000 on 1 MiB of RAM: register reads and writes (through the memory
/// window, the I/O window and with odd sizes), guest-memory writes (descriptors), frames
/// offered to the receiver, configuration writes, and transmitted frames handed to a
/// restricted NAT whose answers go back into the receive ring.
pub fn e1000(data: &[u8]) {
    let memory = ram();
    let Ok(nic) = E1000::new([0x52, 0x54, 0, 0x12, 0x34, 0x56], Arc::new(NoIrq), Some(memory.clone())) else {
        return;
    };
    let nic = Arc::new(std::sync::Mutex::new(nic));
    let mut io = E1000::io_ports(&nic);
    let Ok(mut nat) = UserNet::new(UserNetConfig { restrict: true, ..Default::default() }) else { return };
    let lock = || nic.lock().unwrap_or_else(|e| e.into_inner());
    lock().firmware_setup(0xfebc_0000, 0xc040, 11);
    // Start from working rings (what a driver sets up), so short programs reach the ring
    // walks; the program then breaks them as it likes.
    for (reg, v) in [
        (regs::RDBAL, 0x1000),
        (regs::RDLEN, 0x100),
        (regs::RDT, 15),
        (regs::RCTL, regs::RCTL_EN | regs::RCTL_BAM | regs::RCTL_UPE),
        (regs::TDBAL, 0x2000),
        (regs::TDLEN, 0x100),
        (regs::TCTL, regs::TCTL_EN),
        (regs::IMS, regs::ICR_VALID),
    ] {
        lock().write_register(reg, v);
    }
    let mut input = Input::new(data);
    let mut now = 0u64;
    while !input.is_empty() {
        match input.u8() % 10 {
            0 | 1 => {
                let reg = REGISTERS[usize::from(input.u8()) % REGISTERS.len()];
                let v = value(&mut input);
                lock().write_register(reg, v);
            }
            2 => {
                let offset = u64::from(input.u32() % 0x2_0004);
                let size = [1, 2, 4, 8][usize::from(input.u8() % 4)];
                let v = input.u64();
                if input.u8() & 1 == 0 {
                    lock().write(offset, size, v);
                } else {
                    lock().read(offset, size);
                }
            }
            3 => {
                let reg = REGISTERS[usize::from(input.u8()) % REGISTERS.len()];
                lock().read_register(reg);
            }
            4 => {
                // Descriptors (mostly in the rings) or buffers anywhere in (or just past) RAM.
                let at = match input.u8() % 4 {
                    0 => 0x1000 + u64::from(input.u8()),
                    1 => 0x2000 + u64::from(input.u8()),
                    _ => u64::from(input.u32()) % (RAM_BYTES + 64),
                };
                let len = usize::from(input.u8() % 64);
                let bytes = input.take(len).to_vec();
                let _ = memory.dma_write(at, &bytes);
            }
            5 => {
                let len = usize::from(input.u16() % 2048);
                let mut frame = input.take(len).to_vec();
                if input.u8() & 1 == 0 && frame.len() >= 6 {
                    frame[..6].copy_from_slice(&[0x52, 0x54, 0, 0x12, 0x34, 0x56]);
                }
                lock().receive(&frame);
            }
            6 => {
                let offset = input.u8() & 0xfc;
                let v = input.u32();
                lock().write_config(offset, 4, v);
            }
            7 => {
                let (offset, v) = (u64::from(input.u8() % 8), input.u32());
                io.write(offset, 4, u64::from(v));
                io.read(offset ^ 4, 4);
            }
            _ => {
                now += 1_000_000;
                let frames = lock().take_tx_frames();
                for f in &frames {
                    nat.from_guest(f, now);
                }
                nat.poll(now);
                while let Some(f) = nat.peek_for_guest() {
                    let f = f.to_vec();
                    if lock().receive(&f) == rx86_devices::e1000::RxOutcome::NoRoom {
                        break;
                    }
                    nat.pop_for_guest(now);
                }
            }
        }
    }
}

/// A program against a virtio-net (legacy virtio-pci) on 1 MiB of RAM: header and
/// configuration reads and writes of any width, queue placements (sometimes past RAM),
/// notifies, descriptor-table and ring bytes written where the queues are (or anywhere),
/// frames offered to the receiver, resets and PCI configuration writes. Transmitted frames go
/// to a restricted NAT whose answers go back to the card.
pub fn virtio_net(data: &[u8]) {
    /// Page numbers the program places queues at (the last ones past the 1 MiB of RAM).
    const PFNS: [u32; 6] = [0x10, 0x20, 0x30, 0xff, 0x100, 0xffff_ffff];
    let memory = ram();
    let mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    let Ok(mut nic) = VirtioPci::new(VirtioNet::new(mac), Arc::new(NoIrq), Some(memory.clone())) else { return };
    let Ok(mut nat) = UserNet::new(UserNetConfig { restrict: true, ..Default::default() }) else { return };
    nic.firmware_setup(0xc040, 11);
    // Start from a driver's setup (queues at pages 0x10 and 0x20, DRIVER_OK), so short programs
    // reach the ring walks; the program then breaks it as it likes.
    let setup = [(0x12, 1, 3), (0x04, 4, 0x1_0020), (0x0e, 2, 0), (0x08, 4, 0x10), (0x0e, 2, 1), (0x08, 4, 0x20)];
    for (offset, size, v) in setup.into_iter().chain([(0x12, 1, 7)]) {
        nic.write(offset, size, v);
    }
    let mut input = Input::new(data);
    let mut now = 0u64;
    let mut avail_idx = [0u16; 2];
    while !input.is_empty() {
        match input.u8() % 11 {
            0 => {
                let offset = u64::from(input.u8() % 0x24);
                let size = [1, 2, 4, 8][usize::from(input.u8() % 4)];
                let v = input.u64();
                nic.write(offset, size, v);
            }
            1 => {
                let offset = u64::from(input.u8() % 0x24);
                let size = [1, 2, 4, 8][usize::from(input.u8() % 4)];
                nic.read(offset, size);
            }
            2 => {
                let queue = u64::from(input.u8() % 3);
                let pfn = PFNS[usize::from(input.u8()) % PFNS.len()];
                nic.write(0x0e, 2, queue);
                nic.write(0x08, 4, u64::from(pfn));
            }
            3 => {
                let queue = u64::from(input.u8() % 3);
                nic.write(0x10, 2, queue);
            }
            4 | 5 => {
                // Descriptors, available-ring entries and indices of the two queues, or anywhere.
                let layout = QueueLayout::legacy(if input.u8() & 1 == 0 { 0x10 } else { 0x20 }, 256);
                let at = match input.u8() % 4 {
                    0 => layout.desc + u64::from(input.u16() % 4096),
                    1 => layout.avail + u64::from(input.u16() % 520),
                    2 => layout.used + u64::from(input.u16() % 2056),
                    _ => u64::from(input.u32()) % (RAM_BYTES + 64),
                };
                let len = usize::from(input.u8() % 32);
                let bytes = input.take(len).to_vec();
                let _ = memory.dma_write(at, &bytes);
            }
            6 => {
                let len = usize::from(input.u16() % 2048);
                let frame = input.take(len).to_vec();
                nic.receive(&frame);
            }
            7 => {
                let offset = input.u8() & 0xfc;
                let v = input.u32();
                nic.write_config(offset, 4, v);
            }
            8 => {
                // A descriptor (index, buffer near the data area, length, flags, next) made
                // available as a chain head, as a driver would (or not quite).
                let q = usize::from(input.u8() & 1);
                let layout = QueueLayout::legacy([0x10, 0x20][q], 256);
                let index = input.u16() % 260;
                let mut d = [0u8; 16];
                d[..8].copy_from_slice(&(0x4_0000 + u64::from(input.u16()) * 16).to_le_bytes());
                d[8..12].copy_from_slice(&u32::from(input.u16() % 2048).to_le_bytes());
                d[12..14].copy_from_slice(&u16::from(input.u8() % 8).to_le_bytes());
                d[14..16].copy_from_slice(&(input.u16() % 260).to_le_bytes());
                let _ = memory.dma_write(layout.desc + 16 * u64::from(index % 256), &d);
                let slot = layout.avail + 4 + 2 * u64::from(avail_idx[q] % 256);
                let _ = memory.dma_write(slot, &index.to_le_bytes());
                avail_idx[q] = avail_idx[q].wrapping_add(1);
                let _ = memory.dma_write(layout.avail + 2, &avail_idx[q].to_le_bytes());
            }
            _ => {
                now += 1_000_000;
                for f in &nic.take_tx_frames() {
                    nat.from_guest(f, now);
                }
                nat.poll(now);
                while let Some(f) = nat.peek_for_guest() {
                    let f = f.to_vec();
                    if nic.receive(&f) == rx86_devices::net::RxOutcome::NoRoom {
                        break;
                    }
                    nat.pop_for_guest(now);
                }
            }
        }
    }
    nic.describe();
}

/// A program against an NE2000 (RTL8029AS): register reads and writes on every page, remote
/// DMA streams through the data port of every width, resets, transmits, frames offered to the
/// receive ring (wherever the program put it), configuration writes, and transmitted frames
/// handed to a restricted NAT whose answers go back to the card. Everything the card touches
/// is its own memory; the target checks that nothing panics or hangs.
pub fn ne2000(data: &[u8]) {
    let mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    let Ok(mut card) = Ne2000::new(mac, Arc::new(NoIrq)) else { return };
    let Ok(mut nat) = UserNet::new(UserNetConfig { restrict: true, ..Default::default() }) else { return };
    card.firmware_setup(0xc040, 11);
    // Start from Linux's setup (ring 0x4C-0x80, started, broadcast and own address accepted),
    // so short programs reach the rings; the program then breaks it as it likes.
    let setup = [
        (ne::CR, 0x21),
        (ne::DCR, 0x49),
        (ne::PSTART, 0x4c),
        (ne::PSTOP, 0x80),
        (ne::BNRY, 0x7f),
        (ne::TPSR, 0x40),
        (ne::CR, 0x61),
        (ne::CURR, 0x4c),
        (ne::CR, 0x22),
        (ne::RCR, ne::RCR_AB),
        (ne::TCR, 0),
        (ne::IMR, 0x3f),
    ];
    for (reg, v) in setup {
        card.write(u64::from(reg), 1, u64::from(v));
    }
    let mut input = Input::new(data);
    let mut now = 0u64;
    while !input.is_empty() {
        match input.u8() % 9 {
            0 | 1 => {
                let (reg, v) = (input.u8() % 0x10, input.u8());
                card.write(u64::from(reg), 1, u64::from(v));
            }
            2 => {
                let reg = input.u8() % 0x20;
                card.read(u64::from(reg), 1);
            }
            3 => {
                // A burst on the data port.
                let size = [1, 2, 4][usize::from(input.u8() % 3)];
                let count = input.u16() % 2048;
                let write = input.u8() & 1 == 0;
                for _ in 0..count {
                    if write {
                        card.write(ne::NE_DATAPORT, size, u64::from(input.u32()));
                    } else {
                        card.read(ne::NE_DATAPORT, size);
                    }
                }
            }
            4 => {
                let len = usize::from(input.u16() % 1600);
                let mut frame = input.take(len).to_vec();
                if input.u8() & 1 == 0 && frame.len() >= 6 {
                    frame[..6].copy_from_slice(&mac);
                }
                card.receive(&frame);
            }
            5 => {
                let offset = input.u8() & 0xfc;
                let v = input.u32();
                card.write_config(offset, 4, v);
            }
            6 => {
                let (offset, size) = (u64::from(input.u8() % 0x24), [1, 2, 4, 8][usize::from(input.u8() % 4)]);
                card.write(offset, size, input.u64());
            }
            _ => {
                now += 1_000_000;
                for f in &card.take_tx_frames() {
                    nat.from_guest(f, now);
                }
                nat.poll(now);
                while let Some(f) = nat.peek_for_guest() {
                    let f = f.to_vec();
                    if card.receive(&f) == rx86_devices::net::RxOutcome::NoRoom {
                        break;
                    }
                    nat.pop_for_guest(now);
                }
            }
        }
    }
    card.describe();
}

/// Frames for the NAT: raw bytes, or random payloads inside valid Ethernet/IPv4/UDP/TCP/ICMP
/// or IPv6/ICMPv6 headers (checksums right), so the DHCP, TCP, ICMP and NDP parsers behind them
/// see the bytes.
pub fn nat_packets(data: &[u8]) {
    let Ok(mut nat) = UserNet::new(UserNetConfig { restrict: true, ..Default::default() }) else { return };
    let mut input = Input::new(data);
    let guest_mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    let mut now = 0;
    while !input.is_empty() {
        let kind = input.u8() % 7;
        let len = usize::from(input.u16() % 1600);
        let payload = input.take(len).to_vec();
        let dst = if input.u8() & 1 == 0 { GATEWAY_IP } else { Ipv4Addr::from(input.u32()) };
        let ip = |proto: u8, body: &[u8]| {
            wire::ethernet(GATEWAY_MAC, guest_mac, wire::ETHERTYPE_IPV4, &wire::ipv4(GUEST_IP, dst, proto, 1, body))
        };
        let frame = match kind {
            0 => payload,
            1 => ip(wire::PROTO_UDP, &wire::udp(GUEST_IP, 68, Ipv4Addr::BROADCAST, 67, &payload)),
            2 => {
                let (flags, seq, ack, window) = (input.u8(), input.u32(), input.u32(), input.u16());
                let h = TcpHeader {
                    src: (GUEST_IP, input.u16()),
                    dst: (dst, input.u16()),
                    seq,
                    ack,
                    flags,
                    window,
                    mss: (flags & wire::TCP_SYN != 0).then_some(input.u16()),
                };
                ip(wire::PROTO_TCP, &wire::tcp(&h, &payload))
            }
            3 => ip(wire::PROTO_ICMP, &payload),
            4 => wire::ethernet(wire::BROADCAST_MAC, guest_mac, wire::ETHERTYPE_ARP, &payload),
            5 => {
                let mut address = || Ipv6Addr::from(u128::from(input.u64()) << 64 | u128::from(input.u64()));
                let (src, dst) = (address(), address());
                let src = if src.segments()[7] & 1 == 0 { Ipv6Addr::UNSPECIFIED } else { src };
                let mut message = payload;
                if let [kind, code, ..] = message.as_mut_slice() {
                    // Mostly router solicitations (type 133, code 0), so NDP's checks see them.
                    if *kind & 3 != 0 {
                        (*kind, *code) = (133, 0);
                    }
                }
                let packet = ndp::icmpv6_packet(src, dst, message);
                wire::ethernet(GATEWAY_MAC, guest_mac, ndp::ETHERTYPE_IPV6, &packet)
            }
            _ => ip(wire::PROTO_UDP, &wire::udp(GUEST_IP, input.u16(), dst, input.u16(), &payload)),
        };
        now += 1_000_000;
        nat.from_guest(&frame, now);
        nat.poll(now);
        while nat.peek_for_guest().is_some() {
            nat.pop_for_guest(now);
        }
    }
}

/// One NAT'd TCP connection driven by arbitrary guest segments: a host forward's connection
/// to a listener this target opens on 127.0.0.1 (nothing else is contacted), fed segments
/// with arbitrary flags, sequence and acknowledgment numbers, windows and payloads, with
/// polls and clock jumps (retransmission timers) in between.
pub fn nat_tcp(data: &[u8]) {
    let Ok(listener) = std::net::TcpListener::bind("127.0.0.1:0") else { return };
    let Ok(addr) = listener.local_addr() else { return };
    let Ok(host_end) = std::net::TcpStream::connect(addr) else { return };
    let Ok((mut far_end, _)) = listener.accept() else { return };
    // Bytes for the guest, so the sending side (windows, retransmission, FIN) runs too.
    let _ = std::io::Write::write_all(&mut far_end, &[0x5a; 32 * 1024]);
    let (waker, _wake) = rx86_devices::net::host::wake_channel();
    let guest = (GUEST_IP, 8080);
    let remote = (GATEWAY_IP, 40000);
    let Ok(mut conn) = TcpConnection::from_host(guest, remote, host_end, 0x1000, waker) else { return };
    let mut input = Input::new(data);
    let mut out = Vec::new();
    let mut now = 0u64;
    conn.poll(now, &mut out);
    // The guest accepts (SYN-ACK from sequence number 5000), so the connection is established
    // and the data paths are reached; what follows may break every rule.
    let syn_ack = TcpHeader {
        src: guest,
        dst: remote,
        seq: 5000,
        ack: 0x1001,
        flags: wire::TCP_SYN | wire::TCP_ACK,
        window: 65535,
        mss: Some(1460),
    };
    let bytes = wire::tcp(&syn_ack, &[]);
    if let Some(seg) = wire::Tcp::parse(GUEST_IP, GATEWAY_IP, &bytes) {
        conn.from_guest(&seg, now, &mut out);
    }
    while !input.is_empty() {
        let flags = input.u8();
        let (seq, ack, window) = (input.u32(), input.u32(), input.u16());
        // Often near the connection's numbers, so the in-window paths run.
        let near = input.u8();
        let seq = if near & 1 == 0 { 5001u32.wrapping_add(seq % 8192) } else { seq };
        let ack = if near & 2 == 0 { 0x1001u32.wrapping_add(ack % 4096) } else { ack };
        let len = usize::from(input.u16() % 3000);
        let payload = input.take(len).to_vec();
        let mss = (flags & wire::TCP_SYN != 0).then_some(input.u16());
        let h = TcpHeader { src: guest, dst: remote, seq, ack, flags, window, mss };
        let bytes = wire::tcp(&h, &payload);
        if let Some(seg) = wire::Tcp::parse(GUEST_IP, GATEWAY_IP, &bytes) {
            conn.from_guest(&seg, now, &mut out);
        }
        now += u64::from(input.u8()) * 10_000_000;
        conn.poll(now, &mut out);
        out.clear();
    }
    drop(far_end);
}
