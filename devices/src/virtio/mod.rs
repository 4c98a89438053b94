//! Virtio devices (Virtual I/O Device (VIRTIO) Version 1.1, OASIS): the split virtqueue
//! ([`queue`]), the PCI transport ([`pci`]), written once for every device type, and the
//! devices behind it ([`net`]).
//!
//! A device type implements [`VirtioDevice`]: its feature bits, its configuration bytes, and
//! what it does when the driver notifies one of its queues. The transport owns the queues,
//! the status and feature negotiation, the interrupt status and the PCI configuration space.

pub mod net;
pub mod pci;
pub mod queue;

#[cfg(test)]
mod tests;

use crate::ide::DmaMemory;
use queue::Virtqueue;

/// Device status bit: the guest noticed the device (2.1).
pub const STATUS_ACKNOWLEDGE: u8 = 1;
/// Device status bit: the guest has a driver for it.
pub const STATUS_DRIVER: u8 = 2;
/// Device status bit: the driver is set up and the device may run.
pub const STATUS_DRIVER_OK: u8 = 4;
/// Device status bit: feature negotiation is complete (virtio 1.0 drivers).
pub const STATUS_FEATURES_OK: u8 = 8;
/// Device status bit: the device met an error it cannot recover from without a reset.
pub const STATUS_DEVICE_NEEDS_RESET: u8 = 0x40;
/// Device status bit: the driver gave up on the device.
pub const STATUS_FAILED: u8 = 0x80;

/// Interrupt status bit: a queue has used buffers.
pub const ISR_QUEUE: u8 = 1;
/// Interrupt status bit: the device configuration changed.
pub const ISR_CONFIG: u8 = 2;

/// Virtio device type of a network card (section 5.1).
pub const DEVICE_TYPE_NET: u16 = 1;

/// A virtio device type, as the transport drives it.
pub trait VirtioDevice: Send {
    /// The virtio device type (1 = network card, 2 = block device, ...).
    fn device_type(&self) -> u16;
    /// The PCI class code the transport shows.
    fn pci_class(&self) -> u32;
    /// The feature bits the device offers.
    fn features(&self) -> u64;
    /// Receives the feature bits the driver accepted (a subset of [`VirtioDevice::features`]).
    fn set_driver_features(&mut self, features: u64);
    /// Maximum size of each of the device's queues (its length is the queue count).
    fn queue_sizes(&self) -> &[u16];
    /// Bytes of device-specific configuration.
    fn config_len(&self) -> usize;
    /// Reads configuration byte `offset` (below [`VirtioDevice::config_len`]).
    fn read_config(&self, offset: usize) -> u8;
    /// Writes configuration byte `offset` (below [`VirtioDevice::config_len`]).
    fn write_config(&mut self, offset: usize, value: u8);
    /// The driver notified `queue` (below the queue count) that it made buffers available.
    fn notify(&mut self, queue: usize, queues: &mut [Virtqueue], memory: &dyn DmaMemory);
    /// The driver reset the device: back to the power-on state (the queues are reset by the
    /// transport).
    fn reset(&mut self);
}
