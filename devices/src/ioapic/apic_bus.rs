//! The APIC bus between one I/O APIC and one local APIC, for a board that keeps each
//! chip in its own mutex.

use super::IoApic;
use crate::lapic::LocalApic;
use std::sync::{Mutex, MutexGuard};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Moves everything waiting between the two chips: the local APIC's EOI broadcasts
/// to the I/O APIC, and the messages the I/O APIC sends back or queued from guest
/// writes to the local APIC. It holds at most one of the two locks at any moment, so
/// it cannot deadlock against any other user of them.
///
/// Call it before asking the local APIC for a pending interrupt (and after device
/// timers fired). It stops once nothing is left: each round retires one queued EOI
/// and deliveries never queue new ones, so with no other thread issuing EOIs
/// meanwhile it runs at most 257 rounds (256 vectors, then an empty round).
pub fn route_apic_bus(lapic: &Mutex<LocalApic>, ioapic: &Mutex<IoApic>) {
    loop {
        let eoi = lock(lapic).take_eoi_broadcast();
        let messages = {
            let mut ioapic = lock(ioapic);
            let mut messages = eoi.map(|vector| ioapic.end_of_interrupt(vector)).unwrap_or_default();
            messages.extend(ioapic.take_messages());
            messages
        };
        if eoi.is_none() && messages.is_empty() {
            return;
        }
        let mut lapic = lock(lapic);
        for message in messages {
            lapic.deliver(message);
        }
    }
}
