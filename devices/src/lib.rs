//! rx86 PC platform devices, one chip per module.
//!
//! Every device is a plain struct that implements [`rx86_core::bus::BusDevice`] with
//! offsets relative to its own base; its interrupt outputs are injected
//! [`rx86_core::irq::IrqLine`]s and its time comes from an injected
//! [`rx86_core::time::Clock`]. The board (`frontend/src/pc.rs`) decides ports, IRQ
//! numbers and addresses.

#![warn(missing_docs)]

pub mod acpi_pm;
pub mod block;
pub mod debug_ports;
pub mod dma8237;
pub mod e1000;
pub mod fast_a20;
pub mod floppy;
pub mod fw_cfg;
pub mod i8042;
pub mod ide;
pub mod ioapic;
pub mod lapic;
pub mod ne2000;
pub mod net;
pub mod pci;
pub mod pic;
pub mod pit;
pub mod reset_control;
pub mod rtc;
pub mod system_port_b;
pub mod uart;
pub mod vga;
pub mod virtio;
