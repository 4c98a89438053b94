//! The split virtqueue (Virtual I/O Device 1.1, section 2.6): a descriptor table, the
//! driver's available ring and the device's used ring, all in guest memory.
//!
//! Everything here is guest-controlled, so everything is checked: the rings move through
//! [`DmaMemory`] (RAM only), the available index may run at most one queue ahead of the
//! device, a descriptor index must be inside the table, a chain may have at most as many
//! descriptors as the table (a longer one is a loop), readable descriptors may not follow
//! writable ones (2.6.4.2), and indirect descriptors (not offered) are refused. Any of these
//! breaks the queue: it stops until the driver resets the device, as QEMU's `virtio_error`
//! does, so no guest value can hang or crash the host.

use crate::ide::DmaMemory;
use thiserror::Error;

/// Descriptor flag: the chain continues at `next`.
pub const VIRTQ_DESC_F_NEXT: u16 = 1;
/// Descriptor flag: the device writes this buffer (otherwise it reads it).
pub const VIRTQ_DESC_F_WRITE: u16 = 2;
/// Descriptor flag: the buffer is a table of indirect descriptors.
pub const VIRTQ_DESC_F_INDIRECT: u16 = 4;
/// Available ring flag: the driver asks for no interrupt when buffers are used.
pub const VIRTQ_AVAIL_F_NO_INTERRUPT: u16 = 1;
/// Bytes in a descriptor (addr u64, len u32, flags u16, next u16).
const DESCRIPTOR_SIZE: u64 = 16;
/// Bytes in a used ring element (id u32, len u32).
const USED_ELEMENT_SIZE: u64 = 8;
/// The legacy interface's ring alignment and queue address unit (4.1.4.8).
pub const LEGACY_ALIGN: u64 = 4096;

/// Why a queue stopped.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// A ring or a descriptor is not in guest RAM.
    #[error("virtqueue ring access at {0:#x} is outside RAM")]
    RingOutsideRam(u64),
    /// The available index ran more than a queue ahead of the device.
    #[error("the driver made {0} buffers available on a {1}-entry queue")]
    TooManyAvailable(u16, u16),
    /// A descriptor index is past the table.
    #[error("descriptor index {0} is past the {1}-entry table")]
    IndexOutOfRange(u16, u16),
    /// A chain has more descriptors than the table: it loops.
    #[error("descriptor chain longer than the {0}-entry table (a loop)")]
    ChainLoop(u16),
    /// An indirect descriptor, which the device did not offer.
    #[error("indirect descriptor, not negotiated")]
    Indirect,
    /// A device-readable descriptor after a device-writable one.
    #[error("readable descriptor after a writable one")]
    ReadAfterWrite,
    /// A chain holds more bytes than the device accepts.
    #[error("descriptor chain of more than {0} bytes")]
    TooLong(u64),
    /// A buffer is not in guest RAM.
    #[error("buffer at {0:#x} is outside RAM")]
    BufferOutsideRam(u64),
}

/// One buffer of a chain: guest-physical address and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buffer {
    /// Guest-physical address.
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
}

/// A descriptor chain the driver made available: its device-readable buffers, then its
/// device-writable ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescriptorChain {
    /// The head's index, which goes back in the used ring.
    pub head: u16,
    /// Buffers the device reads, in order.
    pub readable: Vec<Buffer>,
    /// Buffers the device writes, in order.
    pub writable: Vec<Buffer>,
}

impl DescriptorChain {
    /// Bytes the device may read.
    pub fn readable_len(&self) -> u64 {
        self.readable.iter().map(|b| u64::from(b.len)).sum()
    }

    /// Bytes the device may write.
    pub fn writable_len(&self) -> u64 {
        self.writable.iter().map(|b| u64::from(b.len)).sum()
    }

    /// The readable buffers joined, refused past `limit` bytes.
    pub fn read_all(&self, memory: &dyn DmaMemory, limit: u64) -> Result<Vec<u8>, QueueError> {
        let total = self.readable_len();
        if total > limit {
            return Err(QueueError::TooLong(limit));
        }
        let mut data = vec![0; total as usize];
        let mut at = 0;
        for b in &self.readable {
            let end = at + b.len as usize;
            memory.dma_read(b.addr, &mut data[at..end]).map_err(|_| QueueError::BufferOutsideRam(b.addr))?;
            at = end;
        }
        Ok(data)
    }

    /// Scatters `data` over the writable buffers; fails (having written a prefix) when they
    /// are too short or not in RAM.
    pub fn write_all(&self, memory: &dyn DmaMemory, data: &[u8]) -> Result<(), QueueError> {
        if self.writable_len() < data.len() as u64 {
            return Err(QueueError::TooLong(self.writable_len()));
        }
        let mut rest = data;
        for b in &self.writable {
            if rest.is_empty() {
                break;
            }
            let n = rest.len().min(b.len as usize);
            memory.dma_write(b.addr, &rest[..n]).map_err(|_| QueueError::BufferOutsideRam(b.addr))?;
            rest = &rest[n..];
        }
        Ok(())
    }
}

/// Where a queue's three parts are, as the transport programmed them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueLayout {
    /// The descriptor table.
    pub desc: u64,
    /// The available ring.
    pub avail: u64,
    /// The used ring.
    pub used: u64,
}

impl QueueLayout {
    /// The legacy layout (4.1.4.8, 2.6.2): `pfn` pages in, the table, then the available
    /// ring, then the used ring at the next 4 KiB boundary.
    pub fn legacy(pfn: u32, size: u16) -> Self {
        let desc = u64::from(pfn) * LEGACY_ALIGN;
        let avail = desc + DESCRIPTOR_SIZE * u64::from(size);
        let avail_end = avail + 6 + 2 * u64::from(size);
        let used = avail_end.div_ceil(LEGACY_ALIGN) * LEGACY_ALIGN;
        QueueLayout { desc, avail, used }
    }
}

/// One virtqueue's device side.
#[derive(Debug, Clone)]
pub struct Virtqueue {
    max_size: u16,
    size: u16,
    layout: QueueLayout,
    ready: bool,
    /// The next available ring slot the device reads.
    next_avail: u16,
    /// The next used ring slot the device writes.
    next_used: u16,
    /// Stopped by a guest error until reset.
    broken: bool,
    /// Buffers were used and the driver did not suppress the interrupt.
    signal: bool,
}

fn read_u16(memory: &dyn DmaMemory, addr: u64) -> Result<u16, QueueError> {
    let mut b = [0; 2];
    memory.dma_read(addr, &mut b).map_err(|_| QueueError::RingOutsideRam(addr))?;
    Ok(u16::from_le_bytes(b))
}

impl Virtqueue {
    /// A queue of at most `max_size` entries (a power of two), not ready.
    pub fn new(max_size: u16) -> Self {
        Virtqueue {
            max_size,
            size: max_size,
            layout: QueueLayout::default(),
            ready: false,
            next_avail: 0,
            next_used: 0,
            broken: false,
            signal: false,
        }
    }

    /// The device's maximum queue size.
    pub fn max_size(&self) -> u16 {
        self.max_size
    }

    /// The queue size in use.
    pub fn size(&self) -> u16 {
        self.size
    }

    /// Back to the reset state (not ready, indices at 0, not broken).
    pub fn reset(&mut self) {
        *self = Virtqueue::new(self.max_size);
    }

    /// Places the queue (legacy: the PFN register; 0 takes it away).
    pub fn set_legacy_pfn(&mut self, pfn: u32) {
        self.reset();
        if pfn != 0 {
            self.layout = QueueLayout::legacy(pfn, self.size);
            self.ready = true;
        }
    }

    /// The legacy PFN register's value.
    pub fn legacy_pfn(&self) -> u32 {
        if self.ready {
            (self.layout.desc / LEGACY_ALIGN) as u32
        } else {
            0
        }
    }

    /// True when the driver placed the queue and no guest error stopped it.
    pub fn is_live(&self) -> bool {
        self.ready && !self.broken
    }

    /// True when a guest error stopped the queue.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// The device's positions: next available slot to read, next used slot to write.
    pub fn positions(&self) -> (u16, u16) {
        (self.next_avail, self.next_used)
    }

    /// Stops the queue for a guest error the device found in a chain's buffers.
    pub fn stop(&mut self, error: QueueError) {
        if !self.broken {
            log::warn!("virtio: queue stopped until the driver resets the device: {error}");
        }
        self.broken = true;
    }

    fn fail<T>(&mut self, error: QueueError) -> Result<T, QueueError> {
        self.stop(error);
        Err(error)
    }

    /// Takes the next chain the driver made available, or `None` when there is none (or
    /// the queue is not live). A guest error stops the queue and is returned.
    pub fn pop(&mut self, memory: &dyn DmaMemory) -> Result<Option<DescriptorChain>, QueueError> {
        if !self.is_live() {
            return Ok(None);
        }
        match self.walk_next(memory) {
            Ok(chain) => Ok(chain),
            Err(e) => self.fail(e),
        }
    }

    fn walk_next(&mut self, memory: &dyn DmaMemory) -> Result<Option<DescriptorChain>, QueueError> {
        let avail_idx = read_u16(memory, self.layout.avail + 2)?;
        let pending = avail_idx.wrapping_sub(self.next_avail);
        if pending == 0 {
            return Ok(None);
        }
        if pending > self.size {
            return Err(QueueError::TooManyAvailable(pending, self.size));
        }
        let slot = u64::from(self.next_avail % self.size);
        let head = read_u16(memory, self.layout.avail + 4 + 2 * slot)?;
        let chain = self.walk_chain(memory, head)?;
        self.next_avail = self.next_avail.wrapping_add(1);
        Ok(Some(chain))
    }

    fn walk_chain(&self, memory: &dyn DmaMemory, head: u16) -> Result<DescriptorChain, QueueError> {
        let mut chain = DescriptorChain { head, readable: Vec::new(), writable: Vec::new() };
        let mut index = head;
        for _ in 0..self.size {
            if index >= self.size {
                return Err(QueueError::IndexOutOfRange(index, self.size));
            }
            let at = self.layout.desc + DESCRIPTOR_SIZE * u64::from(index);
            let mut raw = [0u8; 16];
            memory.dma_read(at, &mut raw).map_err(|_| QueueError::RingOutsideRam(at))?;
            let addr = u64::from_le_bytes([raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7]]);
            let len = u32::from_le_bytes([raw[8], raw[9], raw[10], raw[11]]);
            let flags = u16::from_le_bytes([raw[12], raw[13]]);
            let next = u16::from_le_bytes([raw[14], raw[15]]);
            if flags & VIRTQ_DESC_F_INDIRECT != 0 {
                return Err(QueueError::Indirect);
            }
            let buffer = Buffer { addr, len };
            if flags & VIRTQ_DESC_F_WRITE != 0 {
                chain.writable.push(buffer);
            } else if chain.writable.is_empty() {
                chain.readable.push(buffer);
            } else {
                return Err(QueueError::ReadAfterWrite);
            }
            if flags & VIRTQ_DESC_F_NEXT == 0 {
                return Ok(chain);
            }
            index = next;
        }
        Err(QueueError::ChainLoop(self.size))
    }

    /// Puts back the chain [`Virtqueue::pop`] last returned, unused (the device found no use
    /// for it yet: it reads it again next time).
    pub fn unpop(&mut self) {
        self.next_avail = self.next_avail.wrapping_sub(1);
    }

    /// Returns chain `head` to the driver with `len` bytes written into it, and notes the
    /// interrupt unless the driver suppressed it.
    pub fn push_used(&mut self, memory: &dyn DmaMemory, head: u16, len: u32) -> Result<(), QueueError> {
        if !self.is_live() {
            return Ok(());
        }
        match self.write_used(memory, head, len) {
            Ok(()) => Ok(()),
            Err(e) => self.fail(e),
        }
    }

    fn write_used(&mut self, memory: &dyn DmaMemory, head: u16, len: u32) -> Result<(), QueueError> {
        let slot = u64::from(self.next_used % self.size);
        let at = self.layout.used + 4 + USED_ELEMENT_SIZE * slot;
        let mut element = [0u8; 8];
        element[..4].copy_from_slice(&u32::from(head).to_le_bytes());
        element[4..].copy_from_slice(&len.to_le_bytes());
        memory.dma_write(at, &element).map_err(|_| QueueError::RingOutsideRam(at))?;
        self.next_used = self.next_used.wrapping_add(1);
        let idx_at = self.layout.used + 2;
        memory.dma_write(idx_at, &self.next_used.to_le_bytes()).map_err(|_| QueueError::RingOutsideRam(idx_at))?;
        let flags = read_u16(memory, self.layout.avail)?;
        if flags & VIRTQ_AVAIL_F_NO_INTERRUPT == 0 {
            self.signal = true;
        }
        Ok(())
    }

    /// True (once) when buffers were used since the last call and the driver wants to hear.
    pub fn take_signal(&mut self) -> bool {
        std::mem::take(&mut self.signal)
    }
}
