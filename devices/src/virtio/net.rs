//! The virtio network card (Virtual I/O Device 1.1, section 5.1): queue 0 receives, queue 1
//! transmits, every frame preceded by a `virtio_net_hdr`. Offered: VIRTIO_NET_F_MAC (the
//! address is in the configuration), VIRTIO_NET_F_STATUS (link up), VIRTIO_NET_F_CSUM (the
//! driver may leave a TCP/UDP checksum to the card: NEEDS_CSUM with its start and offset, done
//! here in software) and VIRTIO_NET_F_GUEST_CSUM (received TCP/UDP frames whose checksums are
//! right are marked DATA_VALID, so the driver does not sum them again; on an interpreter that
//! summing is a large share of a download's cost). No segmentation offload; no control queue,
//! so every frame is accepted (as QEMU's default promiscuous mode does).
//! VIRTIO_NET_F_MRG_RXBUF is offered too: the header then has a buffer count, and each frame
//! still goes into a single receive buffer (the driver's are at least a frame long), which
//! lets the driver post smaller buffers than a whole chain per frame.
//!
//! A transmitted chain is the header and the frame in readable buffers; a receive chain is
//! writable buffers for the header and the frame. A frame that does not fit the next
//! receive chain is dropped and the chain left for the next frame.

use super::pci::VirtioPci;
use super::queue::Virtqueue;
use super::{VirtioDevice, DEVICE_TYPE_NET};
use crate::ide::DmaMemory;
use crate::net::wire::{checksum_add, checksum_finish, l4_checksums_valid};
use crate::net::{NetworkCard, RxOutcome};
use std::collections::VecDeque;

/// Feature: the device completes checksums the driver leaves partial.
pub const VIRTIO_NET_F_CSUM: u64 = 1 << 0;
/// Feature: the driver accepts frames whose checksums the device verified.
pub const VIRTIO_NET_F_GUEST_CSUM: u64 = 1 << 1;
/// Header flag: the checksum from csum_start is to be completed (transmit).
const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;
/// Header flag: the frame's checksums were verified (receive).
const VIRTIO_NET_HDR_F_DATA_VALID: u8 = 2;
/// Feature: receive buffers may be merged; every header grows a buffer count.
pub const VIRTIO_NET_F_MRG_RXBUF: u64 = 1 << 15;
/// Feature: the configuration holds the MAC address.
pub const VIRTIO_NET_F_MAC: u64 = 1 << 5;
/// Feature: the configuration holds the link status.
pub const VIRTIO_NET_F_STATUS: u64 = 1 << 16;
/// Configuration status: the link is up.
const VIRTIO_NET_S_LINK_UP: u16 = 1;
/// The receive queue.
pub const RX_QUEUE: usize = 0;
/// The transmit queue.
pub const TX_QUEUE: usize = 1;
/// Entries in each queue (QEMU's default).
const QUEUE_SIZE: u16 = 256;
/// Bytes of the legacy `virtio_net_hdr` (flags, gso_type, hdr_len, gso_size, csum_start,
/// csum_offset).
const HEADER_LEN: usize = 10;
/// Bytes of the header with its buffer count (`virtio_net_hdr_mrg_rxbuf`), in both directions
/// once VIRTIO_NET_F_MRG_RXBUF is negotiated.
const HEADER_LEN_MRG: usize = 12;
/// Longest transmitted chain accepted: a 64 KiB frame and its header.
const MAX_TX_CHAIN: u64 = 65536 + HEADER_LEN_MRG as u64;
/// Frames the transmit side holds for the board before it drops new ones.
const TX_QUEUE_MAX: usize = 1024;
/// Shortest frame passed on: an Ethernet header.
const ETHERNET_HEADER: usize = 14;
/// PCI class 02 (network), sub-class 00 (Ethernet).
const CLASS_ETHERNET: u32 = 0x02_00_00;
/// Configuration bytes: MAC address, then status.
const CONFIG_LEN: usize = 8;

/// The virtio network card.
pub struct VirtioNet {
    mac: [u8; 6],
    /// The features the driver accepted.
    driver_features: u64,
    tx_out: VecDeque<Vec<u8>>,
    /// Frames dropped because the board did not take them in time.
    tx_overflow: u64,
}

impl VirtioNet {
    /// A card with MAC address `mac`.
    pub fn new(mac: [u8; 6]) -> Self {
        VirtioNet { mac, driver_features: 0, tx_out: VecDeque::new(), tx_overflow: 0 }
    }

    /// Walks the transmit queue: every available chain becomes a frame. At most one queue's
    /// worth of chains per notify, whatever the rings hold.
    fn transmit(&mut self, queue: &mut Virtqueue, memory: &dyn DmaMemory) {
        for _ in 0..queue.size() {
            let Ok(Some(chain)) = queue.pop(memory) else { return };
            match chain.read_all(memory, MAX_TX_CHAIN) {
                Ok(bytes) if bytes.len() >= self.header_len() + ETHERNET_HEADER => {
                    if self.tx_out.len() < TX_QUEUE_MAX {
                        self.tx_out.push_back(self.complete_checksum(&bytes));
                    } else {
                        self.tx_overflow += 1;
                    }
                }
                Ok(bytes) => log::debug!("virtio-net: {}-byte transmit chain dropped", bytes.len()),
                Err(e) => {
                    queue.stop(e);
                    return;
                }
            }
            if queue.push_used(memory, chain.head, 0).is_err() {
                return;
            }
        }
    }

    /// Bytes of the header in front of every frame, as negotiated.
    fn header_len(&self) -> usize {
        if self.driver_features & VIRTIO_NET_F_MRG_RXBUF != 0 {
            HEADER_LEN_MRG
        } else {
            HEADER_LEN
        }
    }

    /// The frame of a transmitted chain (header stripped), its checksum completed when the
    /// driver asked for it: the ones-complement sum from csum_start to the end, stored at
    /// csum_start + csum_offset (the driver seeded that field with the pseudo-header sum).
    fn complete_checksum(&self, chain: &[u8]) -> Vec<u8> {
        let mut frame = chain[self.header_len()..].to_vec();
        if chain[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM == 0 || self.driver_features & VIRTIO_NET_F_CSUM == 0 {
            return frame;
        }
        let start = usize::from(u16::from_le_bytes([chain[6], chain[7]]));
        let field = start + usize::from(u16::from_le_bytes([chain[8], chain[9]]));
        if field + 2 > frame.len() {
            log::debug!("virtio-net: checksum field at {field} past a {}-byte frame", frame.len());
            return frame;
        }
        let sum = checksum_finish(checksum_add(0, &frame[start..]));
        frame[field..field + 2].copy_from_slice(&sum.to_be_bytes());
        frame
    }

    /// Stores `frame` in the next receive chain.
    fn receive(&mut self, frame: &[u8], queue: &mut Virtqueue, memory: &dyn DmaMemory) -> RxOutcome {
        if !queue.is_live() {
            return RxOutcome::Dropped;
        }
        let chain = match queue.pop(memory) {
            Ok(Some(chain)) => chain,
            Ok(None) => return RxOutcome::NoRoom,
            Err(_) => return RxOutcome::Dropped,
        };
        let mut data = vec![0u8; self.header_len()];
        if self.header_len() == HEADER_LEN_MRG {
            // num_buffers: each frame goes into one buffer (the driver's mergeable buffers
            // hold at least a full frame).
            data[10] = 1;
        }
        if self.driver_features & VIRTIO_NET_F_GUEST_CSUM != 0 && l4_checksums_valid(frame) {
            data[0] = VIRTIO_NET_HDR_F_DATA_VALID;
        }
        data.extend_from_slice(frame);
        if chain.writable_len() < data.len() as u64 {
            log::debug!("virtio-net: {}-byte frame does not fit a {}-byte buffer", data.len(), chain.writable_len());
            queue.unpop();
            return RxOutcome::Dropped;
        }
        if let Err(e) = chain.write_all(memory, &data) {
            queue.stop(e);
            return RxOutcome::Dropped;
        }
        match queue.push_used(memory, chain.head, data.len() as u32) {
            Ok(()) => RxOutcome::Delivered,
            Err(_) => RxOutcome::Dropped,
        }
    }

    /// Frames dropped because the transmit queue was full when the guest sent them.
    pub fn tx_overflow(&self) -> u64 {
        self.tx_overflow
    }
}

impl VirtioDevice for VirtioNet {
    fn device_type(&self) -> u16 {
        DEVICE_TYPE_NET
    }

    fn pci_class(&self) -> u32 {
        CLASS_ETHERNET
    }

    fn features(&self) -> u64 {
        VIRTIO_NET_F_CSUM | VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_MAC | VIRTIO_NET_F_MRG_RXBUF | VIRTIO_NET_F_STATUS
    }

    fn set_driver_features(&mut self, features: u64) {
        self.driver_features = features;
    }

    fn queue_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE, QUEUE_SIZE]
    }

    fn config_len(&self) -> usize {
        CONFIG_LEN
    }

    fn read_config(&self, offset: usize) -> u8 {
        match offset {
            0..6 => self.mac[offset],
            6..8 => VIRTIO_NET_S_LINK_UP.to_le_bytes()[offset - 6],
            _ => 0,
        }
    }

    fn write_config(&mut self, offset: usize, value: u8) {
        // Legacy drivers may write the MAC address.
        if let Some(b) = self.mac.get_mut(offset) {
            *b = value;
        }
    }

    fn notify(&mut self, queue: usize, queues: &mut [Virtqueue], memory: &dyn DmaMemory) {
        // A receive notify means new buffers: frames waiting on the board take them at its
        // next turn.
        if queue == TX_QUEUE {
            if let Some(q) = queues.get_mut(TX_QUEUE) {
                self.transmit(q, memory);
            }
        }
    }

    fn reset(&mut self) {
        self.driver_features = 0;
        self.tx_out.clear();
    }
}

impl NetworkCard for VirtioPci<VirtioNet> {
    fn take_tx_frames(&mut self) -> Vec<Vec<u8>> {
        self.device_mut().tx_out.drain(..).collect()
    }

    fn has_tx_frames(&self) -> bool {
        !self.device().tx_out.is_empty()
    }

    fn receive(&mut self, frame: &[u8]) -> RxOutcome {
        if frame.len() < ETHERNET_HEADER || !self.driver_ok() {
            return RxOutcome::Dropped;
        }
        self.with_queues(|net, queues, memory| match queues.get_mut(RX_QUEUE) {
            Some(q) => net.receive(frame, q, memory),
            None => RxOutcome::Dropped,
        })
        .unwrap_or(RxOutcome::Dropped)
    }

    fn describe(&self) -> String {
        let m = self.device().mac;
        let [rx, tx] = [RX_QUEUE, TX_QUEUE].map(|i| {
            self.queues().get(i).map_or_else(String::new, |q| {
                let (avail, used) = q.positions();
                let state = if q.is_broken() { " stopped" } else { "" };
                format!("{avail}/{used} (next avail/used of {}){state}", q.size())
            })
        });
        format!(
            "virtio-net {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} link up, status {:#04x}, RX {rx}, TX {tx}",
            m[0],
            m[1],
            m[2],
            m[3],
            m[4],
            m[5],
            self.status()
        )
    }
}
