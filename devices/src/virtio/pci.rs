//! The virtio PCI transport, legacy interface (Virtual I/O Device 1.1, section 4.1.4.8), as
//! a transitional device: vendor 1AF4, device 1000h + type - 1, revision 0, subsystem ID the
//! device type. This is the interface Linux's `virtio_pci` (with its legacy support) and
//! iPXE drive on QEMU's `pc` machine.
//!
//! BAR0 is an I/O window: the common header, then the device's configuration bytes (no
//! MSI-X, so the configuration starts at 20):
//!
//! | offset | width | register |
//! |--------|-------|----------|
//! | 0x00 | 32 | device features (bits 0-31) |
//! | 0x04 | 32 | driver features |
//! | 0x08 | 32 | queue address (page number of the selected queue) |
//! | 0x0C | 16 | queue size (read-only) |
//! | 0x0E | 16 | queue select |
//! | 0x10 | 16 | queue notify |
//! | 0x12 | 8  | device status (writing 0 resets) |
//! | 0x13 | 8  | ISR status (reading clears it) |
//!
//! The interrupt is INTA#, high while the ISR status is not zero (and the command
//! register's Interrupt Disable is clear).

use super::queue::Virtqueue;
use super::{VirtioDevice, ISR_QUEUE, STATUS_DEVICE_NEEDS_RESET, STATUS_DRIVER_OK};
use crate::ide::{DmaMemory, SharedDmaMemory};
use crate::pci::config_space::{COMMAND, INTERRUPT_LINE, INTERRUPT_PIN};
use crate::pci::{BarKind, ConfigSpace, PciError, PciFunction, PciId};
use rx86_core::bus::BusDevice;
use rx86_core::irq::SharedIrqLine;

/// Red Hat's virtio PCI vendor ID.
const VENDOR_VIRTIO: u16 = 0x1af4;
/// Transitional device IDs start here (network card 1000h, block device 1001h, ...).
const DEVICE_ID_TRANSITIONAL_BASE: u16 = 0x1000;
/// Subsystem vendor ID register.
const SUBSYSTEM_VENDOR_ID: u8 = 0x2c;
/// Subsystem ID register: the virtio device type on a transitional device.
const SUBSYSTEM_ID: u8 = 0x2e;
/// INTA#.
const INTERRUPT_PIN_INTA: u8 = 1;
/// Command register: Interrupt Disable.
const COMMAND_INTERRUPT_DISABLE: u16 = 1 << 10;
/// The BAR of the legacy I/O window.
pub const VIRTIO_LEGACY_BAR: usize = 0;

/// Legacy header: device features.
const DEVICE_FEATURES: u64 = 0x00;
/// Legacy header: driver features.
const DRIVER_FEATURES: u64 = 0x04;
/// Legacy header: queue address (page number).
const QUEUE_PFN: u64 = 0x08;
/// Legacy header: queue size.
const QUEUE_SIZE: u64 = 0x0c;
/// Legacy header: queue select.
const QUEUE_SELECT: u64 = 0x0e;
/// Legacy header: queue notify.
const QUEUE_NOTIFY: u64 = 0x10;
/// Legacy header: device status.
const DEVICE_STATUS: u64 = 0x12;
/// Legacy header: ISR status.
const ISR_STATUS: u64 = 0x13;
/// Legacy header length without MSI-X: the device configuration starts here.
const LEGACY_HEADER_LEN: u64 = 0x14;

/// A virtio device on the PCI bus through the legacy interface.
pub struct VirtioPci<D: VirtioDevice> {
    config: ConfigSpace,
    device: D,
    queues: Vec<Virtqueue>,
    queue_select: u16,
    driver_features: u32,
    status: u8,
    isr: u8,
    irq: SharedIrqLine,
    irq_level: bool,
    memory: Option<SharedDmaMemory>,
    io_size: u64,
}

impl<D: VirtioDevice> VirtioPci<D> {
    /// `device` behind the transport, raising `irq` (its INTA#), doing DMA through `memory`.
    pub fn new(device: D, irq: SharedIrqLine, memory: Option<SharedDmaMemory>) -> Result<Self, PciError> {
        let device_type = device.device_type();
        let mut config = ConfigSpace::new(PciId {
            vendor_id: VENDOR_VIRTIO,
            device_id: DEVICE_ID_TRANSITIONAL_BASE + device_type.saturating_sub(1),
            revision_id: 0,
            class_code: device.pci_class(),
            header_type: 0,
        });
        config.set_u16(SUBSYSTEM_VENDOR_ID, VENDOR_VIRTIO);
        config.set_u16(SUBSYSTEM_ID, device_type);
        config.set_u8(INTERRUPT_PIN, INTERRUPT_PIN_INTA);
        let io_size = (LEGACY_HEADER_LEN + device.config_len() as u64).next_power_of_two();
        config.set_bar(VIRTIO_LEGACY_BAR, BarKind::Io, io_size)?;
        let queues = device.queue_sizes().iter().map(|&n| Virtqueue::new(n)).collect();
        Ok(VirtioPci {
            config,
            device,
            queues,
            queue_select: 0,
            driver_features: 0,
            status: 0,
            isr: 0,
            irq,
            irq_level: false,
            memory,
            io_size,
        })
    }

    /// Bytes of the I/O window (BAR0).
    pub fn io_size(&self) -> u64 {
        self.io_size
    }

    /// What firmware would do on a machine booted without it: BAR0 at `io`, the interrupt
    /// line register set to `irq`, I/O and bus mastering on.
    pub fn firmware_setup(&mut self, io: u16, irq: u8) {
        let bar0 = crate::pci::config_space::BAR0;
        self.config.write(bar0 + 4 * VIRTIO_LEGACY_BAR as u8, 4, u32::from(io));
        self.config.write(INTERRUPT_LINE, 1, u32::from(irq));
        self.config.write(COMMAND, 2, 0x0005);
    }

    /// The device behind the transport.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The device behind the transport, to change.
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// The device status register.
    pub fn status(&self) -> u8 {
        self.status
    }

    /// The device's queues.
    pub fn queues(&self) -> &[Virtqueue] {
        &self.queues
    }

    /// True when the driver set DRIVER_OK and the device has not failed.
    pub fn driver_ok(&self) -> bool {
        self.status & STATUS_DRIVER_OK != 0 && self.status & STATUS_DEVICE_NEEDS_RESET == 0
    }

    /// Runs `f` on the device with its queues and memory (no memory: `f` is not run), then
    /// raises the queue interrupt if `f` used buffers the driver wants to hear about.
    pub fn with_queues<R>(&mut self, f: impl FnOnce(&mut D, &mut [Virtqueue], &dyn DmaMemory) -> R) -> Option<R> {
        let memory = self.memory.clone()?;
        let result = f(&mut self.device, &mut self.queues, &*memory);
        self.after_queue_work();
        Some(result)
    }

    fn after_queue_work(&mut self) {
        let mut signal = false;
        for q in &mut self.queues {
            signal |= q.take_signal();
        }
        if self.queues.iter().any(Virtqueue::is_broken) {
            self.status |= STATUS_DEVICE_NEEDS_RESET;
        }
        if signal {
            self.isr |= ISR_QUEUE;
        }
        self.update_irq();
    }

    fn reset(&mut self) {
        self.device.reset();
        self.queues.iter_mut().for_each(Virtqueue::reset);
        self.queue_select = 0;
        self.driver_features = 0;
        self.status = 0;
        self.isr = 0;
        self.update_irq();
    }

    fn update_irq(&mut self) {
        let disabled = self.config.command() & COMMAND_INTERRUPT_DISABLE != 0;
        let level = !disabled && self.isr != 0;
        if level != self.irq_level {
            self.irq_level = level;
            self.irq.set_level(level);
        }
    }

    fn selected(&self) -> Option<&Virtqueue> {
        self.queues.get(usize::from(self.queue_select))
    }

    /// The legacy header's bytes (the ISR is read, not cleared, here).
    fn header(&self) -> [u8; LEGACY_HEADER_LEN as usize] {
        let mut h = [0u8; LEGACY_HEADER_LEN as usize];
        h[0..4].copy_from_slice(&(self.device.features() as u32).to_le_bytes());
        h[4..8].copy_from_slice(&self.driver_features.to_le_bytes());
        h[8..12].copy_from_slice(&self.selected().map_or(0, Virtqueue::legacy_pfn).to_le_bytes());
        h[12..14].copy_from_slice(&self.selected().map_or(0, Virtqueue::size).to_le_bytes());
        h[14..16].copy_from_slice(&self.queue_select.to_le_bytes());
        h[18] = self.status;
        h[19] = self.isr;
        h
    }

    fn read_byte(&self, header: &[u8], offset: u64) -> u8 {
        match offset.checked_sub(LEGACY_HEADER_LEN) {
            None => header[offset as usize],
            Some(at) if (at as usize) < self.device.config_len() => self.device.read_config(at as usize),
            Some(_) => 0xff,
        }
    }

    fn notify(&mut self, queue: u16) {
        let queue = usize::from(queue);
        if queue >= self.queues.len() || !self.driver_ok() {
            return;
        }
        let Some(memory) = self.memory.clone() else { return };
        self.device.notify(queue, &mut self.queues, &*memory);
        self.after_queue_work();
    }
}

impl<D: VirtioDevice> PciFunction for VirtioPci<D> {
    fn read_config(&mut self, offset: u8, len: u8) -> u32 {
        self.config.read(offset, len)
    }

    fn write_config(&mut self, offset: u8, len: u8, value: u32) {
        self.config.write(offset, len, value);
        self.update_irq();
    }
}

impl<D: VirtioDevice> BusDevice for VirtioPci<D> {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        let header = self.header();
        let size = u64::from(size.min(8));
        let mut value = 0u64;
        for i in (0..size).rev() {
            value = value << 8 | u64::from(self.read_byte(&header, offset + i));
        }
        if (offset..offset + size).contains(&ISR_STATUS) {
            self.isr = 0;
            self.update_irq();
        }
        value
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        match (offset, size) {
            (DRIVER_FEATURES, 4) => {
                let accepted = value as u32 & self.device.features() as u32;
                self.driver_features = accepted;
                self.device.set_driver_features(u64::from(accepted));
            }
            (QUEUE_PFN, 4) => {
                let select = usize::from(self.queue_select);
                if let Some(q) = self.queues.get_mut(select) {
                    q.set_legacy_pfn(value as u32);
                }
            }
            (QUEUE_SELECT, 2) => self.queue_select = value as u16,
            (QUEUE_NOTIFY, 2) => self.notify(value as u16),
            (DEVICE_STATUS, 1) if value as u8 == 0 => self.reset(),
            (DEVICE_STATUS, 1) => {
                self.status = value as u8;
                // Buffers the driver queued before DRIVER_OK (transmit) start moving now.
                if self.driver_ok() {
                    for q in 0..self.queues.len() as u16 {
                        self.notify(q);
                    }
                }
            }
            (DEVICE_FEATURES | QUEUE_SIZE | ISR_STATUS, _) => {}
            _ if offset >= LEGACY_HEADER_LEN => {
                for i in 0..u64::from(size.min(8)) {
                    let at = (offset + i - LEGACY_HEADER_LEN) as usize;
                    if at < self.device.config_len() {
                        self.device.write_config(at, (value >> (8 * i)) as u8);
                    }
                }
            }
            // A write of the wrong width to a header register.
            _ => log::debug!("virtio-pci: {size}-byte write of {value:#x} at {offset:#x} ignored"),
        }
    }
}
