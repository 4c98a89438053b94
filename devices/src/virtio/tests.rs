//! The virtio transport, queues and network card driven as a legacy driver drives them, and
//! with the ring values a broken or hostile driver may write.

use super::net::{VirtioNet, RX_QUEUE, TX_QUEUE};
use super::pci::VirtioPci;
use super::queue::{QueueError, QueueLayout, Virtqueue, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE};
use super::{ISR_QUEUE, STATUS_ACKNOWLEDGE, STATUS_DEVICE_NEEDS_RESET, STATUS_DRIVER, STATUS_DRIVER_OK};
use crate::ide::tests_support::ram;
use crate::net::{NetworkCard, RxOutcome};
use crate::pci::PciFunction;
use rx86_core::bus::BusDevice;
use rx86_core::irq::RecordingIrqLine;
use rx86_core::phys::PhysMemory;
use std::sync::Arc;

const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
/// Page numbers of the receive and transmit queues.
const RX_PFN: u32 = 0x10;
const TX_PFN: u32 = 0x20;
/// Where the test driver's buffers start.
const BUFFERS: u64 = 0x40000;

struct Driver {
    nic: VirtioPci<VirtioNet>,
    memory: Arc<PhysMemory>,
    irq: Arc<RecordingIrqLine>,
    /// Next free descriptor and available index, per queue.
    next_desc: [u16; 2],
    avail_idx: [u16; 2],
}

fn layout(pfn: u32) -> QueueLayout {
    QueueLayout::legacy(pfn, 256)
}

impl Driver {
    /// A card brought up as Linux's legacy driver does: reset, ACKNOWLEDGE, DRIVER, features
    /// (all offered but mergeable receive buffers, so headers are the plain 10 bytes), both
    /// queues placed, DRIVER_OK.
    fn new() -> Self {
        let memory = ram();
        let irq = RecordingIrqLine::new();
        let mut nic = VirtioPci::new(VirtioNet::new(MAC), irq.clone(), Some(memory.clone())).unwrap();
        nic.firmware_setup(0xc080, 11);
        nic.write(0x12, 1, 0);
        nic.write(0x12, 1, u64::from(STATUS_ACKNOWLEDGE | STATUS_DRIVER));
        let offered = nic.read(0x00, 4);
        nic.write(0x04, 4, offered & !(1 << 15));
        for (q, pfn) in [(RX_QUEUE, RX_PFN), (TX_QUEUE, TX_PFN)] {
            nic.write(0x0e, 2, q as u64);
            assert_eq!(nic.read(0x0c, 2), 256, "queue size");
            nic.write(0x08, 4, u64::from(pfn));
        }
        nic.write(0x12, 1, u64::from(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_DRIVER_OK));
        Driver { nic, memory, irq, next_desc: [0; 2], avail_idx: [0; 2] }
    }

    fn pfn(queue: usize) -> u32 {
        [RX_PFN, TX_PFN][queue]
    }

    fn write_descriptor(&self, queue: usize, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let at = layout(Self::pfn(queue)).desc + 16 * u64::from(index);
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[12..14].copy_from_slice(&flags.to_le_bytes());
        d[14..16].copy_from_slice(&next.to_le_bytes());
        self.memory.dma_write(at, &d).unwrap();
    }

    /// Makes chain `head` available.
    fn make_available(&mut self, queue: usize, head: u16) {
        let l = layout(Self::pfn(queue));
        let idx = self.avail_idx[queue];
        self.memory.dma_write(l.avail + 4 + 2 * u64::from(idx % 256), &head.to_le_bytes()).unwrap();
        self.avail_idx[queue] = idx.wrapping_add(1);
        self.memory.dma_write(l.avail + 2, &self.avail_idx[queue].to_le_bytes()).unwrap();
    }

    /// Queues `buffers` (address, length, device-writable) as one chain.
    fn add_chain(&mut self, queue: usize, buffers: &[(u64, u32, bool)]) -> u16 {
        let head = self.next_desc[queue];
        for (i, &(addr, len, writable)) in buffers.iter().enumerate() {
            let index = head + i as u16;
            let mut flags = if writable { VIRTQ_DESC_F_WRITE } else { 0 };
            if i + 1 < buffers.len() {
                flags |= VIRTQ_DESC_F_NEXT;
            }
            self.write_descriptor(queue, index, addr, len, flags, index + 1);
        }
        self.next_desc[queue] = head + buffers.len() as u16;
        self.make_available(queue, head);
        head
    }

    fn used(&self, queue: usize) -> (u16, Vec<(u32, u32)>) {
        let l = layout(Self::pfn(queue));
        let mut idx = [0u8; 2];
        self.memory.dma_read(l.used + 2, &mut idx).unwrap();
        let idx = u16::from_le_bytes(idx);
        let elements = (0..idx)
            .map(|i| {
                let mut e = [0u8; 8];
                self.memory.dma_read(l.used + 4 + 8 * u64::from(i), &mut e).unwrap();
                (u32::from_le_bytes([e[0], e[1], e[2], e[3]]), u32::from_le_bytes([e[4], e[5], e[6], e[7]]))
            })
            .collect();
        (idx, elements)
    }

    fn notify(&mut self, queue: usize) {
        self.nic.write(0x10, 2, queue as u64);
    }

    fn read(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0; len];
        self.memory.dma_read(addr, &mut b).unwrap();
        b
    }
}

fn frame(len: usize, seed: u8) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
    f[..6].copy_from_slice(&MAC);
    f
}

#[test]
fn pci_identity_and_legacy_header() {
    let d = Driver::new();
    let mut nic = d.nic;
    assert_eq!(nic.read_config(0, 4), 0x1000_1af4, "vendor 1AF4, transitional network device 1000");
    assert_eq!(nic.read_config(0x2c, 4), 0x0001_1af4, "subsystem: virtio device type 1");
    assert_eq!(nic.read_config(0x08, 4) >> 8, 0x02_00_00, "Ethernet controller");
    assert_eq!(nic.read_config(0x3d, 1), 1, "INTA#");
    assert_eq!(nic.read(0x00, 4), 0b11 | (1 << 5) | (1 << 15) | (1 << 16), "CSUM, GUEST_CSUM, MAC, MRG_RXBUF, STATUS");
    let mac: Vec<u8> = (0..6).map(|i| nic.read(0x14 + i, 1) as u8).collect();
    assert_eq!(mac, MAC);
    assert_eq!(nic.read(0x1a, 2), 1, "link up");
    nic.write(0x0e, 2, 1);
    assert_eq!(nic.read(0x08, 4), u64::from(TX_PFN));
    nic.write(0x0e, 2, 7);
    assert_eq!(nic.read(0x0c, 2), 0, "no queue 7");
    assert_eq!(nic.read(0x12, 1), u64::from(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_DRIVER_OK));
    nic.write(0x12, 1, 0);
    assert_eq!(nic.read(0x12, 1), 0, "reset");
    nic.write(0x0e, 2, 1);
    assert_eq!(nic.read(0x08, 4), 0, "a reset takes the queues away");
}

#[test]
fn transmit_strips_the_header_and_interrupts_until_isr_is_read() {
    let mut d = Driver::new();
    let f = frame(100, 1);
    d.memory.dma_write(BUFFERS, &[0u8; 10]).unwrap();
    d.memory.dma_write(BUFFERS + 0x100, &f).unwrap();
    // Header and frame in two descriptors, as Linux's legacy driver sends them.
    let head = d.add_chain(TX_QUEUE, &[(BUFFERS, 10, false), (BUFFERS + 0x100, 100, false)]);
    d.notify(TX_QUEUE);
    assert_eq!(d.nic.take_tx_frames(), vec![f.clone()]);
    assert_eq!(d.used(TX_QUEUE), (1, vec![(u32::from(head), 0)]));
    assert!(d.irq.level(), "INTA# high");
    assert_eq!(d.nic.read(0x13, 1), u64::from(ISR_QUEUE));
    assert!(!d.irq.level(), "reading the ISR lowers INTA#");
    assert_eq!(d.nic.read(0x13, 1), 0);
    // Header and frame in one buffer.
    let mut joined = vec![0u8; 10];
    joined.extend_from_slice(&f);
    d.memory.dma_write(BUFFERS + 0x1000, &joined).unwrap();
    d.add_chain(TX_QUEUE, &[(BUFFERS + 0x1000, joined.len() as u32, false)]);
    d.notify(TX_QUEUE);
    assert_eq!(d.nic.take_tx_frames(), vec![f]);
}

#[test]
fn receive_fills_buffers_in_order_and_waits_for_more() {
    let mut d = Driver::new();
    assert_eq!(d.nic.receive(&frame(60, 0)), RxOutcome::NoRoom, "no buffers yet");
    // One chain split over a header buffer and two small data buffers, one single buffer.
    d.add_chain(RX_QUEUE, &[(BUFFERS, 10, true), (BUFFERS + 0x100, 50, true), (BUFFERS + 0x200, 1600, true)]);
    d.add_chain(RX_QUEUE, &[(BUFFERS + 0x1000, 1526, true)]);
    d.notify(RX_QUEUE);
    let (a, b) = (frame(300, 7), frame(1514, 9));
    assert_eq!(d.nic.receive(&a), RxOutcome::Delivered);
    assert_eq!(d.nic.receive(&b), RxOutcome::Delivered);
    assert_eq!(d.nic.receive(&a), RxOutcome::NoRoom, "ring used up");
    assert_eq!(d.read(BUFFERS, 10), vec![0; 10], "an empty virtio_net_hdr");
    let mut got = d.read(BUFFERS + 0x100, 50);
    got.extend(d.read(BUFFERS + 0x200, 250));
    assert_eq!(got, a);
    assert_eq!(d.read(BUFFERS + 0x1000 + 10, 1514), b);
    assert_eq!(d.used(RX_QUEUE), (2, vec![(0, 310), (3, 1524)]));
    assert!(d.irq.level());
}

#[test]
fn a_frame_too_big_for_the_buffer_is_dropped_and_the_buffer_kept() {
    let mut d = Driver::new();
    d.add_chain(RX_QUEUE, &[(BUFFERS, 100, true)]);
    assert_eq!(d.nic.receive(&frame(200, 0)), RxOutcome::Dropped);
    assert_eq!(d.nic.receive(&frame(90, 0)), RxOutcome::Delivered, "the same buffer takes the next frame");
    assert_eq!(d.used(RX_QUEUE).1, vec![(0, 100)]);
}

#[test]
fn interrupts_suppressed_by_the_driver_stay_low() {
    let mut d = Driver::new();
    let avail = layout(RX_PFN).avail;
    d.memory.dma_write(avail, &1u16.to_le_bytes()).unwrap();
    d.add_chain(RX_QUEUE, &[(BUFFERS, 1600, true)]);
    assert_eq!(d.nic.receive(&frame(60, 0)), RxOutcome::Delivered);
    assert!(!d.irq.level(), "VIRTQ_AVAIL_F_NO_INTERRUPT");
}

#[test]
fn nothing_moves_before_driver_ok_and_queued_transmits_go_at_driver_ok() {
    let memory = ram();
    let irq = RecordingIrqLine::new();
    let mut nic = VirtioPci::new(VirtioNet::new(MAC), irq, Some(memory.clone())).unwrap();
    nic.write(0x0e, 2, TX_QUEUE as u64);
    nic.write(0x08, 4, u64::from(TX_PFN));
    let mut d = Driver { nic, memory, irq: RecordingIrqLine::new(), next_desc: [0; 2], avail_idx: [0; 2] };
    let f = frame(64, 3);
    let mut bytes = vec![0u8; 10];
    bytes.extend_from_slice(&f);
    d.memory.dma_write(BUFFERS, &bytes).unwrap();
    d.add_chain(TX_QUEUE, &[(BUFFERS, bytes.len() as u32, false)]);
    d.notify(TX_QUEUE);
    assert!(!d.nic.has_tx_frames(), "no DRIVER_OK yet");
    assert_eq!(d.nic.receive(&f), RxOutcome::Dropped);
    d.nic.write(0x12, 1, u64::from(STATUS_DRIVER_OK));
    assert_eq!(d.nic.take_tx_frames(), vec![f]);
}

/// Each hostile ring stops the queue (and only with a reset does it run again); nothing
/// panics and every walk ends.
#[test]
fn hostile_rings_stop_the_queue() {
    type Setup = fn(&mut Driver);
    let cases: [(&str, Setup); 7] = [
        ("a chain that loops", |d| {
            d.write_descriptor(TX_QUEUE, 0, BUFFERS, 10, VIRTQ_DESC_F_NEXT, 1);
            d.write_descriptor(TX_QUEUE, 1, BUFFERS, 10, VIRTQ_DESC_F_NEXT, 0);
            d.make_available(TX_QUEUE, 0);
        }),
        ("a next index past the table", |d| {
            d.write_descriptor(TX_QUEUE, 0, BUFFERS, 10, VIRTQ_DESC_F_NEXT, 256);
            d.make_available(TX_QUEUE, 0);
        }),
        ("a head index past the table", |d| d.make_available(TX_QUEUE, 0xffff)),
        ("an available index far ahead", |d| {
            let avail = layout(TX_PFN).avail;
            d.memory.dma_write(avail + 2, &1000u16.to_le_bytes()).unwrap();
        }),
        ("a buffer outside RAM", |d| {
            d.add_chain(TX_QUEUE, &[(0xfff_0000, 100, false)]);
        }),
        ("a 4 GiB buffer", |d| {
            d.add_chain(TX_QUEUE, &[(BUFFERS, u32::MAX, false)]);
        }),
        ("an indirect descriptor", |d| {
            d.write_descriptor(TX_QUEUE, 0, BUFFERS, 16, super::queue::VIRTQ_DESC_F_INDIRECT, 0);
            d.make_available(TX_QUEUE, 0);
        }),
    ];
    for (what, setup) in cases {
        let mut d = Driver::new();
        setup(&mut d);
        d.notify(TX_QUEUE);
        assert!(!d.nic.has_tx_frames(), "{what}: no frame");
        assert!(d.nic.queues()[TX_QUEUE].is_broken(), "{what}: queue stopped");
        assert_ne!(d.nic.status() & STATUS_DEVICE_NEEDS_RESET, 0, "{what}: DEVICE_NEEDS_RESET");
        d.nic.write(0x12, 1, 0);
        assert!(!d.nic.queues()[TX_QUEUE].is_broken(), "{what}: a reset starts over");
    }
}

#[test]
fn a_ring_outside_ram_stops_the_queue() {
    let memory = ram();
    let mut q = Virtqueue::new(256);
    q.set_legacy_pfn(0xf_ffff);
    assert_eq!(q.pop(&*memory), Err(QueueError::RingOutsideRam(QueueLayout::legacy(0xf_ffff, 256).avail + 2)));
    assert!(q.is_broken());
    assert_eq!(q.pop(&*memory), Ok(None), "stopped until reset");
}

#[test]
fn a_readable_buffer_after_a_writable_one_is_refused() {
    let mut d = Driver::new();
    d.add_chain(RX_QUEUE, &[(BUFFERS, 100, true), (BUFFERS + 0x100, 100, false)]);
    assert_eq!(d.nic.receive(&frame(60, 0)), RxOutcome::Dropped);
    assert!(d.nic.queues()[RX_QUEUE].is_broken());
}

#[test]
fn a_full_queue_of_chains_goes_out_in_one_notify() {
    // 256 chains, all made of descriptor 0: the whole queue at once.
    let mut d = Driver::new();
    let f = frame(64, 0);
    let mut bytes = vec![0u8; 10];
    bytes.extend_from_slice(&f);
    d.memory.dma_write(BUFFERS, &bytes).unwrap();
    for _ in 0..256 {
        d.add_chain(TX_QUEUE, &[(BUFFERS, bytes.len() as u32, false)]);
        d.next_desc[TX_QUEUE] = 0;
    }
    d.notify(TX_QUEUE);
    assert_eq!(d.nic.take_tx_frames().len(), 256);
}

/// A UDP frame from 10.0.2.15 to 10.0.2.2 with a right checksum (the NAT's own builder).
fn udp_frame(payload: &[u8]) -> Vec<u8> {
    use crate::net::wire;
    let (guest, gateway) = (crate::net::GUEST_IP, crate::net::GATEWAY_IP);
    let udp = wire::udp(guest, 5000, gateway, 53, payload);
    wire::ethernet(MAC, [0x52, 0x55, 10, 0, 2, 2], wire::ETHERTYPE_IPV4, &wire::ipv4(guest, gateway, 17, 1, &udp))
}

#[test]
fn received_frames_with_right_checksums_are_marked_data_valid() {
    let mut d = Driver::new();
    d.add_chain(RX_QUEUE, &[(BUFFERS, 1600, true)]);
    d.add_chain(RX_QUEUE, &[(BUFFERS + 0x1000, 1600, true)]);
    let good = udp_frame(b"checked by the card");
    let mut bad = good.clone();
    *bad.last_mut().unwrap() ^= 1;
    assert_eq!(d.nic.receive(&good), RxOutcome::Delivered);
    assert_eq!(d.nic.receive(&bad), RxOutcome::Delivered);
    assert_eq!(d.read(BUFFERS, 1)[0], 2, "VIRTIO_NET_HDR_F_DATA_VALID");
    assert_eq!(d.read(BUFFERS + 0x1000, 1)[0], 0, "a corrupted frame is left to the driver to check");
}

#[test]
fn a_partial_checksum_left_by_the_driver_is_completed() {
    use crate::net::wire::{checksum_finish, pseudo_header_sum};
    let mut d = Driver::new();
    let right = udp_frame(b"summed by the card");
    // What Linux hands over with CHECKSUM_PARTIAL: the field seeded with the folded
    // pseudo-header sum, csum_start at the UDP header, csum_offset at its checksum.
    let mut partial = right.clone();
    let udp_len = right.len() - 34;
    let seed = !checksum_finish(pseudo_header_sum(crate::net::GUEST_IP, crate::net::GATEWAY_IP, 17, udp_len));
    partial[40..42].copy_from_slice(&seed.to_be_bytes());
    let mut chain = vec![1u8, 0, 0, 0, 0, 0];
    chain.extend_from_slice(&34u16.to_le_bytes());
    chain.extend_from_slice(&6u16.to_le_bytes());
    chain.extend_from_slice(&partial);
    d.memory.dma_write(BUFFERS, &chain).unwrap();
    d.add_chain(TX_QUEUE, &[(BUFFERS, chain.len() as u32, false)]);
    d.notify(TX_QUEUE);
    assert_eq!(d.nic.take_tx_frames(), vec![right]);
}

#[test]
fn mergeable_buffers_give_both_headers_a_buffer_count() {
    let mut d = Driver::new();
    d.nic.write(0x04, 4, (1 << 5) | (1 << 15));
    let f = frame(200, 4);
    let mut chain = vec![0u8; 12];
    chain.extend_from_slice(&f);
    d.memory.dma_write(BUFFERS, &chain).unwrap();
    d.add_chain(TX_QUEUE, &[(BUFFERS, chain.len() as u32, false)]);
    d.notify(TX_QUEUE);
    assert_eq!(d.nic.take_tx_frames(), vec![f.clone()], "a 12-byte header stripped");
    d.add_chain(RX_QUEUE, &[(BUFFERS + 0x1000, 1600, true)]);
    assert_eq!(d.nic.receive(&f), RxOutcome::Delivered);
    assert_eq!(d.read(BUFFERS + 0x1000, 12), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0], "num_buffers 1");
    assert_eq!(d.read(BUFFERS + 0x1000 + 12, 200), f);
    assert_eq!(d.used(RX_QUEUE).1, vec![(0, 212)]);
}
