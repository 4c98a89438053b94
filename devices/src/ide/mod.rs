//! IDE storage: ATA hard disks and ATAPI CD-ROM drives on the two legacy channels of
//! the PIIX3 IDE function, with bus master DMA.
//!
//! - [`IdeChannel`]: the task-file registers, PIO/PACKET/DMA protocols and the
//!   interrupt of one channel; [`IdeCommandBlock`] and [`IdeControlBlock`] are its two
//!   port ranges.
//! - [`AtaDisk`] and [`AtapiCdrom`]: the devices, over a [`crate::block::BlockBackend`].
//! - [`Piix3Ide`]: PCI function 8086:7010 owning both channels; [`IdeBusMaster`] is
//!   its BAR4 register block.
//!
//! # Board wiring
//!
//! | what                         | where                                            |
//! |------------------------------|--------------------------------------------------|
//! | primary command block        | ports 0x1F0-0x1F7: `IdeCommandBlock(channel 0)`  |
//! | primary control block        | port 0x3F6, len 1: `IdeControlBlock(channel 0)`  |
//! | secondary command block      | ports 0x170-0x177: `IdeCommandBlock(channel 1)`  |
//! | secondary control block      | port 0x376, len 1: `IdeControlBlock(channel 1)`  |
//! | interrupts                   | channel 0 -> ISA IRQ 14, channel 1 -> ISA IRQ 15 (edge, as the 8259 sees it; the line is a level held while an interrupt is pending) |
//! | bus master block (BAR4)      | [`Piix3Ide::bus_master_ports`], declared as BAR4 to the PCI I/O window, which decodes it wherever firmware puts it |
//! | PCI                          | bus 0, device 1, function 1                      |
//!
//! Port 0x3F7 (floppy DIR) is not part of the IDE control block; map only 0x3F6.
//! Bus master DMA reaches guest memory through a [`DmaMemory`] (implemented for
//! [`PhysMemory`]), normally the board's `Arc<PhysMemory>`.

mod ata;
mod atapi;
mod busmaster;
mod channel;
mod identify;
mod piix3;

use rx86_core::phys::{PhysError, PhysMemory};
use std::sync::Arc;

pub use ata::{AtaDisk, Geometry, MAX_MULTIPLE_SECTORS};
pub use atapi::{AtapiCdrom, PacketOutcome, Sense, CD_BLOCK_SIZE};
pub use channel::{IdeChannel, IdeCommandBlock, IdeControlBlock, IdeDrive, SharedIdeChannel};
pub use piix3::{IdeBusMaster, Piix3Ide, BAR_BUS_MASTER, BUS_MASTER_BLOCK_SIZE};

/// Guest memory as a DMA engine sees it (RAM only, bounds-checked).
pub trait DmaMemory: Send + Sync {
    /// Reads guest-physical `addr..addr + buf.len()`; fails unless all of it is RAM.
    fn dma_read(&self, addr: u64, buf: &mut [u8]) -> Result<(), PhysError>;
    /// Writes guest-physical `addr..addr + buf.len()`; fails unless all of it is RAM.
    fn dma_write(&self, addr: u64, buf: &[u8]) -> Result<(), PhysError>;
}

impl DmaMemory for PhysMemory {
    fn dma_read(&self, addr: u64, buf: &mut [u8]) -> Result<(), PhysError> {
        PhysMemory::dma_read(self, addr, buf)
    }

    fn dma_write(&self, addr: u64, buf: &[u8]) -> Result<(), PhysError> {
        PhysMemory::dma_write(self, addr, buf)
    }
}

/// A DMA view of guest memory shared by the devices that bus-master.
pub type SharedDmaMemory = Arc<dyn DmaMemory>;

#[cfg(test)]
mod tests;

/// Test helpers shared with other devices' tests.
#[cfg(test)]
pub(crate) mod tests_support {
    pub(crate) use super::tests::ram;
}
