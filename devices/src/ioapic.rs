//! 82093AA I/O APIC.
//!
//! Intel 82093AA I/O Advanced Programmable Interrupt Controller datasheet, section 3
//! "Register Description": the indirect IOREGSEL/IOWIN window (3.1), IOAPICID,
//! IOAPICVER, IOAPICARB (3.2.1-3.2.3) and 24 redirection-table entries (3.2.4).
//! Like QEMU's default I/O APIC it reports version 0x20 and adds the EOI register at
//! offset 0x40 of later I/O(x)APICs (ICH/PCH datasheets), which Linux uses to clear
//! remote IRR directly.
//!
//! Inputs are the 24 pins ([`IoApic::set_irq_level`]); outputs are
//! [`InterruptMessage`]s for the local APIC. The `high` argument of `set_irq_level`
//! means "asserted": the polarity bit of an entry is kept for the guest to read back
//! but not applied, as in QEMU, since every line of this board is active high.
//!
//! # Wiring rules for the board
//!
//! The I/O APIC never calls out, so its `Arc<Mutex<_>>` needs no lock ordering:
//! - [`IoApic::set_irq_level`] and [`IoApic::end_of_interrupt`] return the messages
//!   to deliver; hand them to [`LocalApic::deliver`] after releasing this lock;
//! - guest register writes that cause a delivery (unmasking an asserted
//!   level-triggered pin, a write to the EOI register) queue the message, one per
//!   pin at most; drain them with [`IoApic::take_messages`];
//! - [`route_apic_bus`] does both drains (and the local APIC's EOI broadcasts) with
//!   no nested locks; call it before asking the local APIC for a pending vector.
//!
//! [`LocalApic::deliver`]: crate::lapic::LocalApic::deliver

mod apic_bus;
mod info;
#[cfg(test)]
mod tests;

pub use apic_bus::route_apic_bus;

use crate::lapic::{DeliveryMode, InterruptMessage};
use rx86_core::bus::{size_mask, BusDevice};

/// Number of interrupt input pins (and redirection-table entries).
pub const IOAPIC_PINS: usize = 24;

/// I/O register select (index of the register IOWIN reaches), MMIO offset.
const IOREGSEL: u64 = 0x00;
/// I/O window (data of the selected register, 32-bit accesses only), MMIO offset.
const IOWIN: u64 = 0x10;
/// EOI register (version 0x20): writing a vector clears remote IRR of its entries.
const IOEOI: u64 = 0x40;

/// IOAPIC identification register (ID in bits 27:24).
const IOAPICID: u8 = 0x00;
/// IOAPIC version register (version 7:0, maximum redirection entry 23:16).
const IOAPICVER: u8 = 0x01;
/// IOAPIC arbitration register (arbitration ID in bits 27:24, equal to the ID).
const IOAPICARB: u8 = 0x02;
/// Redirection table: entry n is registers 0x10 + 2n (bits 31:0) and 0x11 + 2n (63:32).
const IOREDTBL_BASE: u8 = 0x10;
/// One past the last redirection-table register.
const IOREDTBL_END: u8 = IOREDTBL_BASE + 2 * IOAPIC_PINS as u8;

/// Implementation version reported in IOAPICVER.
const VERSION: u32 = 0x20;
/// Maximum redirection entry reported in IOAPICVER bits 23:16.
const MAX_REDIRECTION_ENTRY: u32 = IOAPIC_PINS as u32 - 1;
/// IOAPICID bits 27:24 hold the 4-bit ID.
const ID_SHIFT: u32 = 24;
/// Width of the ID field.
const ID_MASK: u32 = 0xF;

/// Redirection entry: interrupt vector, bits 7:0.
const RTE_VECTOR: u64 = 0xFF;
/// Redirection entry: delivery mode, bits 10:8.
const RTE_DELIVERY_MODE_SHIFT: u32 = 8;
/// Redirection entry: destination mode (1 = logical).
const RTE_DEST_LOGICAL: u64 = 1 << 11;
/// Redirection entry: interrupt input pin polarity (1 = active low); stored only.
/// (Bit 12, delivery status, always reads 0: messages leave at once.)
const RTE_POLARITY_LOW: u64 = 1 << 13;
/// Redirection entry: remote IRR (read only), set while a level-triggered
/// interrupt waits for its EOI.
const RTE_REMOTE_IRR: u64 = 1 << 14;
/// Redirection entry: trigger mode (1 = level).
const RTE_TRIGGER_LEVEL: u64 = 1 << 15;
/// Redirection entry: interrupt mask.
const RTE_MASKED: u64 = 1 << 16;
/// Redirection entry: destination field, bits 63:56.
const RTE_DEST_SHIFT: u32 = 56;
/// Bits the guest can write (bits 55:17 are reserved and read 0).
const RTE_WRITABLE: u64 = 0xFF << RTE_DEST_SHIFT
    | RTE_MASKED
    | RTE_TRIGGER_LEVEL
    | RTE_POLARITY_LOW
    | RTE_DEST_LOGICAL
    | 0b111 << RTE_DELIVERY_MODE_SHIFT
    | RTE_VECTOR;

/// Decodes an entry's delivery mode; 011 and 110 are reserved on the I/O APIC.
fn delivery_mode(entry: u64) -> Option<DeliveryMode> {
    match DeliveryMode::from_bits(((entry >> RTE_DELIVERY_MODE_SHIFT) & 0b111) as u8) {
        Some(DeliveryMode::StartUp) | None => None,
        mode => mode,
    }
}

/// True for entries that set remote IRR and wait for an EOI: level-triggered ones
/// whose delivery mode uses the local APIC's IRR. Level-triggered NMI, SMI, INIT or
/// ExtINT entries never get an EOI, so they deliver on rising edges only.
fn waits_for_eoi(entry: u64) -> bool {
    entry & RTE_TRIGGER_LEVEL != 0 && delivery_mode(entry).is_some_and(DeliveryMode::uses_irr)
}

/// One 82093AA I/O APIC.
#[derive(Debug, Clone)]
pub struct IoApic {
    reset_id: u8,
    id: u8,
    ioregsel: u8,
    redirection: [u64; IOAPIC_PINS],
    line_levels: u32,
    queued: [Option<InterruptMessage>; IOAPIC_PINS],
}

impl IoApic {
    /// An I/O APIC with APIC ID `id` (4 bits; the board's is 1), in its reset state.
    pub fn new(id: u8) -> Self {
        let mut ioapic = IoApic {
            reset_id: id & ID_MASK as u8,
            id: 0,
            ioregsel: 0,
            redirection: [RTE_MASKED; IOAPIC_PINS],
            line_levels: 0,
            queued: [None; IOAPIC_PINS],
        };
        ioapic.reset();
        ioapic
    }

    /// Reset: every entry masked with all other bits zero, IOREGSEL 0, the ID as
    /// constructed. Input levels are kept (they belong to the devices).
    pub fn reset(&mut self) {
        self.id = self.reset_id;
        self.ioregsel = 0;
        self.redirection = [RTE_MASKED; IOAPIC_PINS];
        self.queued = [None; IOAPIC_PINS];
    }

    /// The 64-bit redirection entry of `pin`, for monitors and tests.
    pub fn redirection_entry(&self, pin: u8) -> Option<u64> {
        self.redirection.get(usize::from(pin)).copied()
    }

    /// Drives input `pin` (asserted when `high`). An unmasked edge-triggered pin
    /// sends a message on a rising edge (an edge on a masked pin is lost, datasheet
    /// 3.2.4 bit 16); an unmasked level-triggered pin sends one while asserted and
    /// remote IRR is clear, then sets remote IRR until the EOI.
    pub fn set_irq_level(&mut self, pin: u8, high: bool) -> Option<InterruptMessage> {
        let Some(&entry) = self.redirection.get(usize::from(pin)) else {
            log::warn!("I/O APIC: input pin {pin} does not exist");
            return None;
        };
        let bit = 1u32 << pin;
        let rising = high && self.line_levels & bit == 0;
        if high {
            self.line_levels |= bit;
        } else {
            self.line_levels &= !bit;
        }
        if entry & RTE_MASKED != 0 {
            return None;
        }
        if waits_for_eoi(entry) {
            return self.service_level(usize::from(pin));
        }
        if rising {
            self.message(usize::from(pin))
        } else {
            None
        }
    }

    /// The EOI broadcast of the local APIC for `vector`: clears remote IRR of every
    /// entry with that vector and returns a new message for each one whose input is
    /// still asserted.
    pub fn end_of_interrupt(&mut self, vector: u8) -> Vec<InterruptMessage> {
        self.retire_vector(vector).into_iter().map(|(_, message)| message).collect()
    }

    /// Takes the messages queued by guest register writes (at most one per pin).
    pub fn take_messages(&mut self) -> Vec<InterruptMessage> {
        self.queued.iter_mut().filter_map(Option::take).collect()
    }

    fn retire_vector(&mut self, vector: u8) -> Vec<(usize, InterruptMessage)> {
        let mut redelivered = Vec::new();
        for pin in 0..IOAPIC_PINS {
            let entry = self.redirection[pin];
            if entry & RTE_REMOTE_IRR != 0 && entry & RTE_VECTOR == u64::from(vector) {
                self.redirection[pin] = entry & !RTE_REMOTE_IRR;
                redelivered.extend(self.service_level(pin).map(|message| (pin, message)));
            }
        }
        redelivered
    }

    /// Sends the message of a level-triggered `pin` if it is unmasked, asserted and
    /// not already waiting for an EOI, and sets remote IRR.
    fn service_level(&mut self, pin: usize) -> Option<InterruptMessage> {
        let entry = self.redirection[pin];
        let asserted = self.line_levels & (1 << pin) != 0;
        if entry & (RTE_MASKED | RTE_REMOTE_IRR) != 0 || !asserted || !waits_for_eoi(entry) {
            return None;
        }
        let message = self.message(pin)?;
        self.redirection[pin] |= RTE_REMOTE_IRR;
        Some(message)
    }

    /// The message entry `pin` describes; `None` (and a warning) for a reserved
    /// delivery mode.
    fn message(&self, pin: usize) -> Option<InterruptMessage> {
        let entry = self.redirection[pin];
        let Some(delivery_mode) = delivery_mode(entry) else {
            log::warn!("I/O APIC: pin {pin} entry {entry:#x} has a reserved delivery mode, nothing sent");
            return None;
        };
        Some(InterruptMessage {
            vector: (entry & RTE_VECTOR) as u8,
            delivery_mode,
            trigger_level: entry & RTE_TRIGGER_LEVEL != 0,
            destination: (entry >> RTE_DEST_SHIFT) as u32,
            logical: entry & RTE_DEST_LOGICAL != 0,
        })
    }

    fn read_register(&self, index: u8) -> u32 {
        match index {
            IOAPICID | IOAPICARB => u32::from(self.id) << ID_SHIFT,
            IOAPICVER => MAX_REDIRECTION_ENTRY << 16 | VERSION,
            IOREDTBL_BASE..IOREDTBL_END => {
                let entry = self.redirection[usize::from((index - IOREDTBL_BASE) / 2)];
                if index & 1 == 0 {
                    entry as u32
                } else {
                    (entry >> 32) as u32
                }
            }
            _ => {
                log::debug!("I/O APIC: read of undefined register {index:#x}");
                0
            }
        }
    }

    fn write_register(&mut self, index: u8, value: u32) {
        match index {
            IOAPICID => self.id = ((value >> ID_SHIFT) & ID_MASK) as u8,
            IOREDTBL_BASE..IOREDTBL_END => {
                self.write_redirection(usize::from((index - IOREDTBL_BASE) / 2), index & 1 == 1, value)
            }
            _ => log::debug!("I/O APIC: write {value:#x} to read-only or undefined register {index:#x} ignored"),
        }
    }

    /// A write to one half of a redirection entry. Remote IRR is read only, except
    /// that an edge-triggered entry never keeps it (QEMU's rule, which Linux's EOI
    /// emulation for old I/O APICs relies on: toggling level -> edge -> level clears
    /// it). An unmasked, asserted level-triggered pin then delivers.
    fn write_redirection(&mut self, pin: usize, high_half: bool, value: u32) {
        let old = self.redirection[pin];
        let merged = if high_half {
            (old & 0xFFFF_FFFF) | u64::from(value) << 32
        } else {
            (old & !0xFFFF_FFFF) | u64::from(value)
        };
        let mut entry = (merged & RTE_WRITABLE) | (old & RTE_REMOTE_IRR);
        if entry & RTE_TRIGGER_LEVEL == 0 {
            entry &= !RTE_REMOTE_IRR;
        }
        self.redirection[pin] = entry;
        if let Some(message) = self.service_level(pin) {
            self.queued[pin] = Some(message);
        }
    }
}

/// The I/O APIC's MMIO window: IOREGSEL at 0x00 (any width; the low byte counts),
/// IOWIN at 0x10 and the EOI register at 0x40 (32-bit accesses only, as QEMU). Other
/// offsets read 0 and drop writes.
impl BusDevice for IoApic {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        match offset {
            IOREGSEL => u64::from(self.ioregsel) & size_mask(size),
            IOWIN if size == 4 => self.read_register(self.ioregsel).into(),
            _ => {
                log::debug!("I/O APIC: {size}-byte read at offset {offset:#x} reads 0");
                0
            }
        }
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        match offset {
            IOREGSEL => self.ioregsel = value as u8,
            IOWIN if size == 4 => self.write_register(self.ioregsel, value as u32),
            IOEOI if size == 4 => {
                for (pin, message) in self.retire_vector(value as u8) {
                    self.queued[pin] = Some(message);
                }
            }
            _ => log::debug!("I/O APIC: {size}-byte write of {value:#x} at offset {offset:#x} ignored"),
        }
    }
}
