//! Intel 82371SB PIIX3 IDE function (8086:7010, class 0101h, programming interface
//! 80h: both channels in legacy "compatibility" mode, bus master capable), after the
//! 82371FB/SB datasheet section 2.3 (PCI configuration registers of function 1).
//!
//! The channels decode the fixed legacy ports and interrupts (primary 0x1F0-0x1F7,
//! 0x3F6, IRQ 14; secondary 0x170-0x177, 0x376, IRQ 15); BAR4 is the 16-byte bus
//! master I/O block (primary channel at +0, secondary at +8), decoded where BAR4 points
//! while the command register's I/O Space bit is set (the board's PCI I/O window). IDETIM/SIDETIM timing
//! registers are stored for firmware and have no effect on an emulated drive.

use super::busmaster::BM_REGISTERS_PER_CHANNEL;
use super::channel::{IdeChannel, SharedIdeChannel};
use super::SharedDmaMemory;
use crate::pci::config_space::{COMMAND, COMMAND_IO_SPACE};
use crate::pci::{BarKind, ConfigSpace, PciFunction, PciId};
use rx86_core::bus::BusDevice;
use rx86_core::irq::SharedIrqLine;
use std::sync::{Arc, Mutex};

/// BAR4: bus master IDE base address (BMIBA).
pub const BAR_BUS_MASTER: usize = 4;
/// Size of the bus master I/O block.
pub const BUS_MASTER_BLOCK_SIZE: u64 = 16;
/// IDETIM: primary (0x40-0x41) and secondary (0x42-0x43) channel timing.
const IDETIM: u8 = 0x40;
/// SIDETIM: slave IDE timing.
const SIDETIM: u8 = 0x44;
/// IDETIM bit 15 IDE: the channel decodes its legacy ports (Linux ata_piix
/// checks it and leaves a channel alone when clear).
const IDETIM_DECODE_ENABLE: u16 = 0x8000;
/// Class code: mass storage, IDE, legacy mode with bus mastering.
const CLASS_IDE_LEGACY_BUS_MASTER: u32 = 0x01_01_80;
/// PCI status after reset: fast back-to-back capable, medium DEVSEL timing.
const STATUS_DEFAULT: u16 = 0x0280;

/// The PIIX3 IDE function with its two channels.
pub struct Piix3Ide {
    config: ConfigSpace,
    channels: [SharedIdeChannel; 2],
}

impl Piix3Ide {
    /// The function with empty channels raising `primary_irq` (ISA IRQ 14) and
    /// `secondary_irq` (ISA IRQ 15), doing bus master DMA through `memory`.
    pub fn new(primary_irq: SharedIrqLine, secondary_irq: SharedIrqLine, memory: Option<SharedDmaMemory>) -> Self {
        let mut config = ConfigSpace::new(PciId {
            vendor_id: 0x8086,
            device_id: 0x7010,
            revision_id: 0,
            class_code: CLASS_IDE_LEGACY_BUS_MASTER,
            header_type: 0,
        });
        config.set_u16(crate::pci::config_space::STATUS, STATUS_DEFAULT);
        config.set_bar(BAR_BUS_MASTER, BarKind::Io, BUS_MASTER_BLOCK_SIZE).expect("a 16-byte I/O BAR is valid");
        config.set_write_mask(IDETIM, &[0xff; 4]);
        config.set_write_mask(SIDETIM, &[0xff]);
        let channels = [
            Arc::new(Mutex::new(IdeChannel::new("ide0", primary_irq, memory.clone()))),
            Arc::new(Mutex::new(IdeChannel::new("ide1", secondary_irq, memory))),
        ];
        Piix3Ide { config, channels }
    }

    /// Channel 0 (primary) or 1 (secondary), shared with its port devices.
    pub fn channel(&self, index: usize) -> Option<SharedIdeChannel> {
        self.channels.get(index).cloned()
    }

    /// The bus master I/O block, for the board to decode at BAR4.
    pub fn bus_master_ports(&self) -> IdeBusMaster {
        IdeBusMaster(self.channels.clone())
    }

    /// Does what a BIOS does before an OS starts (for direct kernel boot, which has no
    /// BIOS): enables both channels' decode (IDETIM bit 15), puts BAR4 at
    /// `bus_master_base` and enables I/O decoding and bus mastering.
    pub fn firmware_setup(&mut self, bus_master_base: u16) {
        use crate::pci::config_space::{BAR0, COMMAND_BUS_MASTER};
        self.config.write(IDETIM, 2, u32::from(IDETIM_DECODE_ENABLE));
        self.config.write(IDETIM + 2, 2, u32::from(IDETIM_DECODE_ENABLE));
        self.config.write(BAR0 + 4 * BAR_BUS_MASTER as u8, 4, u32::from(bus_master_base));
        let command = self.config.u16_at(COMMAND) | COMMAND_IO_SPACE | COMMAND_BUS_MASTER;
        self.config.write(COMMAND, 2, u32::from(command));
    }

    /// Flushes every disk on both channels (at exit).
    pub fn flush_all(&self) -> Result<(), crate::block::BlockError> {
        for c in &self.channels {
            c.lock().unwrap_or_else(|e| e.into_inner()).flush_all()?;
        }
        Ok(())
    }

    /// Machine reset of both channels.
    pub fn reset(&self) {
        for c in &self.channels {
            c.lock().unwrap_or_else(|e| e.into_inner()).reset();
        }
    }
}

impl PciFunction for Piix3Ide {
    fn read_config(&mut self, offset: u8, len: u8) -> u32 {
        self.config.read(offset, len)
    }

    fn write_config(&mut self, offset: u8, len: u8, value: u32) {
        self.config.write(offset, len, value);
    }
}

/// The 16-byte bus master I/O block of both channels (BAR4).
pub struct IdeBusMaster([SharedIdeChannel; 2]);

impl IdeBusMaster {
    fn channel(&self, offset: u64) -> Option<(std::sync::MutexGuard<'_, IdeChannel>, u64)> {
        let c = self.0.get((offset / BM_REGISTERS_PER_CHANNEL) as usize)?;
        Some((c.lock().unwrap_or_else(|e| e.into_inner()), offset % BM_REGISTERS_PER_CHANNEL))
    }
}

impl BusDevice for IdeBusMaster {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        match self.channel(offset) {
            Some((mut c, at)) => c.read_bus_master(at, size),
            None => rx86_core::bus::size_mask(size),
        }
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if let Some((mut c, at)) = self.channel(offset) {
            c.write_bus_master(at, size, value);
        }
    }
}
