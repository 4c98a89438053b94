//! I/O APIC behaviour from the 82093AA datasheet (section 3).

use super::*;
use crate::lapic::{LocalApic, LocalApicConfig};
use rx86_core::time::{Clock, Timer};
use std::sync::Mutex;

fn select(ioapic: &mut IoApic, index: u8) {
    ioapic.write(IOREGSEL, 1, index.into());
}

fn read_reg(ioapic: &mut IoApic, index: u8) -> u32 {
    select(ioapic, index);
    ioapic.read(IOWIN, 4) as u32
}

fn write_reg(ioapic: &mut IoApic, index: u8, value: u32) {
    select(ioapic, index);
    ioapic.write(IOWIN, 4, value.into());
}

/// Programs entry `pin` with the low dword `low` and destination `destination`.
fn program(ioapic: &mut IoApic, pin: u8, low: u32, destination: u8) {
    write_reg(ioapic, 0x11 + 2 * pin, u32::from(destination) << 24);
    write_reg(ioapic, 0x10 + 2 * pin, low);
}

fn fixed(vector: u8, trigger_level: bool) -> InterruptMessage {
    InterruptMessage { vector, delivery_mode: DeliveryMode::Fixed, trigger_level, destination: 0, logical: false }
}

const LEVEL: u32 = 1 << 15;
const MASKED: u32 = 1 << 16;
const REMOTE_IRR: u32 = 1 << 14;

#[test]
fn identification_registers_after_reset() {
    let mut ioapic = IoApic::new(1);
    assert_eq!(read_reg(&mut ioapic, 0x00), 0x0100_0000);
    assert_eq!(read_reg(&mut ioapic, 0x01), 0x0017_0020, "24 entries, version 0x20");
    assert_eq!(read_reg(&mut ioapic, 0x02), 0x0100_0000, "arbitration ID follows the ID");
    write_reg(&mut ioapic, 0x00, 0xFFFF_FFFF);
    assert_eq!(read_reg(&mut ioapic, 0x00), 0x0F00_0000, "4-bit ID");
    write_reg(&mut ioapic, 0x01, 0);
    write_reg(&mut ioapic, 0x02, 0);
    assert_eq!(read_reg(&mut ioapic, 0x01), 0x0017_0020, "read only");
    assert_eq!(read_reg(&mut ioapic, 0x02), 0x0F00_0000);
    for pin in 0..IOAPIC_PINS as u8 {
        assert_eq!(read_reg(&mut ioapic, 0x10 + 2 * pin), MASKED, "entry {pin} masked");
        assert_eq!(read_reg(&mut ioapic, 0x11 + 2 * pin), 0);
    }
    ioapic.reset();
    assert_eq!(read_reg(&mut ioapic, 0x00), 0x0100_0000);
}

#[test]
fn redirection_entries_read_back_both_halves() {
    let mut ioapic = IoApic::new(1);
    write_reg(&mut ioapic, 0x10 + 2 * 5, 0xFFFF_FFFF);
    write_reg(&mut ioapic, 0x11 + 2 * 5, 0xFFFF_FFFF);
    assert_eq!(read_reg(&mut ioapic, 0x10 + 2 * 5), 0x0001_AFFF, "delivery status, remote IRR, 31:17 read 0");
    assert_eq!(read_reg(&mut ioapic, 0x11 + 2 * 5), 0xFF00_0000, "bits 55:32 reserved");
    assert_eq!(ioapic.redirection_entry(5), Some(0xFF00_0000_0001_AFFF));
    assert_eq!(ioapic.redirection_entry(24), None);
    write_reg(&mut ioapic, 0x11 + 2 * 5, 0x0300_0000);
    assert_eq!(read_reg(&mut ioapic, 0x10 + 2 * 5), 0x0001_AFFF, "high write keeps the low half");
    write_reg(&mut ioapic, 0x10 + 2 * 23, 0x0000_0931);
    assert_eq!(ioapic.redirection_entry(23), Some(0x0931));
}

#[test]
fn edge_triggered_pin_delivers_on_rising_edges_only() {
    let mut ioapic = IoApic::new(1);
    assert_eq!(ioapic.set_irq_level(4, true), None, "masked at reset");
    ioapic.set_irq_level(4, false);
    program(&mut ioapic, 4, 0x0834, 0x00); // logical, fixed, vector 0x34, destination 0
    assert_eq!(ioapic.take_messages(), vec![], "unmasking an edge pin sends nothing");
    let expected = InterruptMessage { logical: true, ..fixed(0x34, false) };
    assert_eq!(ioapic.set_irq_level(4, true), Some(expected));
    assert_eq!(ioapic.set_irq_level(4, true), None, "no new edge");
    assert_eq!(ioapic.set_irq_level(4, false), None);
    assert_eq!(ioapic.set_irq_level(4, true), Some(expected));
    assert_eq!(read_reg(&mut ioapic, 0x10 + 8) & REMOTE_IRR, 0, "edge never sets remote IRR");
    // An edge while masked is lost, not held.
    ioapic.set_irq_level(4, false);
    program(&mut ioapic, 4, MASKED | 0x34, 0);
    assert_eq!(ioapic.set_irq_level(4, true), None);
    program(&mut ioapic, 4, 0x34, 0);
    assert_eq!(ioapic.take_messages(), vec![]);
    assert_eq!(ioapic.set_irq_level(4, true), None);
}

#[test]
fn level_triggered_pin_holds_remote_irr_until_eoi() {
    let mut ioapic = IoApic::new(1);
    program(&mut ioapic, 9, LEVEL | 0x39, 0x00);
    assert_eq!(ioapic.set_irq_level(9, true), Some(fixed(0x39, true)));
    assert_eq!(read_reg(&mut ioapic, 0x10 + 18), LEVEL | REMOTE_IRR | 0x39);
    assert_eq!(ioapic.set_irq_level(9, true), None, "remote IRR blocks re-delivery");
    assert_eq!(ioapic.end_of_interrupt(0x40), vec![], "other vector");
    assert_eq!(ioapic.end_of_interrupt(0x39), vec![fixed(0x39, true)], "still asserted: sent again");
    assert_ne!(read_reg(&mut ioapic, 0x10 + 18) & REMOTE_IRR, 0);
    assert_eq!(ioapic.set_irq_level(9, false), None);
    assert_eq!(ioapic.end_of_interrupt(0x39), vec![]);
    assert_eq!(read_reg(&mut ioapic, 0x10 + 18) & REMOTE_IRR, 0);
    assert_eq!(ioapic.set_irq_level(9, true), Some(fixed(0x39, true)));
}

#[test]
fn unmasking_an_asserted_level_pin_queues_a_message() {
    let mut ioapic = IoApic::new(1);
    program(&mut ioapic, 11, MASKED | LEVEL | 0x3B, 0x00);
    assert_eq!(ioapic.set_irq_level(11, true), None);
    write_reg(&mut ioapic, 0x10 + 22, LEVEL | 0x3B);
    assert_eq!(ioapic.take_messages(), vec![fixed(0x3B, true)]);
    assert_eq!(ioapic.take_messages(), vec![]);
    // The EOI register (version 0x20) retires the vector and re-sends.
    ioapic.write(IOEOI, 4, 0x3B);
    assert_eq!(ioapic.take_messages(), vec![fixed(0x3B, true)]);
    ioapic.write(IOEOI, 4, 0x3B);
    ioapic.write(IOEOI, 4, 0x3B);
    assert_eq!(ioapic.take_messages().len(), 1, "one queued message per pin");
}

#[test]
fn switching_to_edge_clears_remote_irr() {
    let mut ioapic = IoApic::new(1);
    program(&mut ioapic, 10, LEVEL | 0x3A, 0x00);
    ioapic.set_irq_level(10, true);
    ioapic.set_irq_level(10, false);
    // Linux's EOI for I/O APICs without an EOI register: mask, edge, level, unmask.
    write_reg(&mut ioapic, 0x10 + 20, MASKED | 0x3A);
    write_reg(&mut ioapic, 0x10 + 20, MASKED | LEVEL | 0x3A);
    assert_eq!(read_reg(&mut ioapic, 0x10 + 20) & REMOTE_IRR, 0);
    write_reg(&mut ioapic, 0x10 + 20, REMOTE_IRR | LEVEL | 0x3A);
    assert_eq!(read_reg(&mut ioapic, 0x10 + 20) & REMOTE_IRR, 0, "remote IRR is read only");
}

#[test]
fn message_fields_come_from_the_entry() {
    let mut ioapic = IoApic::new(1);
    program(&mut ioapic, 2, 0x0C00 | 0x20, 0x0F); // logical, NMI, vector 0x20
    let message = ioapic.set_irq_level(2, true).unwrap();
    assert_eq!(
        message,
        InterruptMessage {
            vector: 0x20,
            delivery_mode: DeliveryMode::Nmi,
            trigger_level: false,
            destination: 0x0F,
            logical: true
        }
    );
    // Reserved delivery modes (011, 110) send nothing.
    for mode in [0b011, 0b110] {
        program(&mut ioapic, 3, mode << 8 | 0x23, 0);
        ioapic.set_irq_level(3, false);
        assert_eq!(ioapic.set_irq_level(3, true), None);
    }
    // A level-triggered NMI entry never waits for an EOI: rising edges only.
    program(&mut ioapic, 6, LEVEL | 0x400, 0);
    assert!(ioapic.set_irq_level(6, true).is_some());
    assert_eq!(ioapic.set_irq_level(6, true), None);
    assert_eq!(read_reg(&mut ioapic, 0x10 + 12) & REMOTE_IRR, 0);
}

#[test]
fn hostile_ioregsel_and_window_accesses_are_harmless() {
    let mut ioapic = IoApic::new(1);
    ioapic.write(IOREGSEL, 4, 0xFFFF_FF40);
    assert_eq!(ioapic.read(IOREGSEL, 4), 0x40, "8-bit register select");
    for index in [0x03, 0x0F, 0x40, 0x7F, 0xFF] {
        write_reg(&mut ioapic, index, 0xFFFF_FFFF);
        assert_eq!(read_reg(&mut ioapic, index), 0, "undefined register {index:#x}");
    }
    select(&mut ioapic, 0x10);
    ioapic.write(IOWIN, 1, 0x00);
    ioapic.write(IOWIN, 8, 0x00);
    ioapic.write(IOWIN + 1, 4, 0x00);
    assert_eq!(ioapic.read(IOWIN, 4), u64::from(MASKED), "non-dword window writes are dropped");
    assert_eq!(ioapic.read(IOWIN, 2), 0);
    assert_eq!(ioapic.read(0x20, 4), 0);
    assert_eq!(ioapic.read(IOEOI, 4), 0);
    ioapic.write(0xFFF, 1, 0xFF);
    assert_eq!(ioapic.set_irq_level(24, true), None, "pin out of range");
    assert_eq!(ioapic.set_irq_level(255, true), None);
    for pin in 0..IOAPIC_PINS as u8 {
        assert_eq!(ioapic.redirection_entry(pin), Some(u64::from(MASKED)));
    }
}

fn board() -> (Mutex<LocalApic>, Mutex<IoApic>) {
    let lapic = LocalApic::new(LocalApicConfig::default(), Clock::new_virtual(), Timer::standalone("lapic"));
    let lapic = Mutex::new(lapic);
    lapic.lock().unwrap().write(0xF0, 4, 0x1FF);
    (lapic, Mutex::new(IoApic::new(1)))
}

#[test]
fn level_interrupt_round_trip_through_the_apic_bus() {
    let (lapic, ioapic) = board();
    program(&mut ioapic.lock().unwrap(), 9, LEVEL | 0x49, 0x00);
    let message = ioapic.lock().unwrap().set_irq_level(9, true).unwrap();
    lapic.lock().unwrap().deliver(message);
    assert_eq!(lapic.lock().unwrap().acknowledge(), Some(0x49));
    // The guest's handler EOIs without silencing the device: the line is still up.
    lapic.lock().unwrap().write(0xB0, 4, 0);
    route_apic_bus(&lapic, &ioapic);
    assert_eq!(lapic.lock().unwrap().acknowledge(), Some(0x49), "re-delivered after EOI");
    ioapic.lock().unwrap().set_irq_level(9, false);
    lapic.lock().unwrap().write(0xB0, 4, 0);
    route_apic_bus(&lapic, &ioapic);
    assert_eq!(lapic.lock().unwrap().pending_vector(), None);
    assert_eq!(ioapic.lock().unwrap().redirection_entry(9).unwrap() & u64::from(REMOTE_IRR), 0);
    // Messages queued by a guest write reach the local APIC too.
    ioapic.lock().unwrap().set_irq_level(9, true);
    let mut guard = ioapic.lock().unwrap();
    guard.write(IOEOI, 4, 0x49);
    drop(guard);
    route_apic_bus(&lapic, &ioapic);
    assert_eq!(lapic.lock().unwrap().pending_vector(), Some(0x49));
}

/// A deterministic xorshift64 generator (no crates).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn random_register_traffic_keeps_invariants() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut ioapic = IoApic::new(1);
    let sizes = [1, 2, 4, 8];
    for step in 0..50_000 {
        match rng.below(8) {
            0 => {
                let offset = [IOREGSEL, IOWIN, IOEOI, rng.below(0x100)][rng.below(4) as usize];
                ioapic.read(offset, sizes[rng.below(4) as usize]);
            }
            1..=3 => {
                let offset = [IOREGSEL, IOWIN, IOWIN, IOEOI, rng.below(0x100)][rng.below(5) as usize];
                let value = if offset == IOREGSEL && rng.below(2) == 0 { rng.below(0x40) } else { rng.next() };
                ioapic.write(offset, sizes[rng.below(4) as usize], value);
            }
            4 | 5 => {
                let pin = rng.below(30) as u8;
                let entry = ioapic.redirection_entry(pin);
                if let Some(message) = ioapic.set_irq_level(pin, rng.below(2) == 0) {
                    let entry = entry.unwrap_or_else(|| panic!("step {step}: message from absent pin {pin}"));
                    assert_eq!(entry & RTE_MASKED, 0, "step {step}: masked pin {pin} delivered");
                    assert_eq!(u64::from(message.vector), entry & RTE_VECTOR);
                }
            }
            6 => {
                ioapic.end_of_interrupt(rng.next() as u8);
            }
            _ => assert!(ioapic.take_messages().len() <= IOAPIC_PINS),
        }
        for pin in 0..IOAPIC_PINS as u8 {
            let entry = ioapic.redirection_entry(pin).unwrap();
            assert_eq!(entry & !(RTE_WRITABLE | RTE_REMOTE_IRR), 0, "step {step}: reserved bits in entry {pin}");
            if entry & RTE_TRIGGER_LEVEL == 0 {
                assert_eq!(entry & RTE_REMOTE_IRR, 0, "step {step}: remote IRR on edge entry {pin}");
            }
        }
    }
}

#[test]
fn info_decodes_each_redirection_entry() {
    let mut ioapic = IoApic::new(1);
    program(&mut ioapic, 2, 0x30, 0);
    program(&mut ioapic, 9, 0x39 | LEVEL | (1 << 13), 1);
    assert!(ioapic.set_irq_level(9, true).is_some());
    let info = ioapic.info();
    let lines: Vec<&str> = info.lines().collect();
    assert_eq!(lines[0], "ioapic0: ver=0x20 id=0x01 sel=0x22 (redir[9])");
    assert_eq!(lines.len(), 1 + IOAPIC_PINS + 2);
    assert_eq!(
        lines[1].trim_end(),
        "  pin 0  0x0000000000010000 dest=0   vec=0   active-hi edge  masked Fixed  physical"
    );
    assert_eq!(
        lines[3].trim_end(),
        "  pin 2  0x0000000000000030 dest=0   vec=48  active-hi edge         Fixed  physical"
    );
    assert_eq!(
        lines[10].trim_end(),
        "  pin 9  0x010000000000e039 dest=1   vec=57  active-lo level rirr   Fixed  physical"
    );
    assert_eq!(lines[25], "  IRR        9");
    assert_eq!(lines[26], "  Remote IRR 9");
}
