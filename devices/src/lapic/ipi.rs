//! Interprocessor interrupts from the ICR (SDM vol. 3, 11.6.1 "Interrupt Command
//! Register") and destination matching for incoming messages (11.6.2 "Determining IPI
//! Destination", 11.12.9-10 for x2APIC). This machine has one CPU, so an IPI either
//! reaches this APIC or is logged and dropped.

use super::registers as reg;
use super::{DeliveryMode, InterruptMessage, LocalApic};

/// ICR destination shorthand, bits 19:18.
const SHORTHAND_NONE: u32 = 0b00;
/// Shorthand: the issuing APIC only.
const SHORTHAND_SELF: u32 = 0b01;
/// Shorthand: every APIC including the issuer.
const SHORTHAND_ALL_INCLUDING_SELF: u32 = 0b10;

/// xAPIC broadcast destination (physical and logical).
const XAPIC_BROADCAST: u32 = 0xFF;
/// x2APIC broadcast destination.
const X2APIC_BROADCAST: u32 = 0xFFFF_FFFF;

impl LocalApic {
    /// Sends the IPI that ICR bits 31:0 describe to `destination` (8 bits in xAPIC
    /// mode, 32 in x2APIC mode).
    pub(super) fn send_ipi(&mut self, icr_low: u32, destination: u32) {
        let vector = (icr_low & reg::VECTOR_MASK) as u8;
        let mode_bits = ((icr_low >> reg::DELIVERY_MODE_SHIFT) & 0b111) as u8;
        let mode = match DeliveryMode::from_bits(mode_bits) {
            Some(DeliveryMode::ExtInt) | None => {
                log::warn!("local APIC {}: IPI with reserved delivery mode {mode_bits:#05b} dropped", self.apic_id());
                return;
            }
            Some(mode) => mode,
        };
        let logical = icr_low & reg::ICR_DEST_LOGICAL != 0;
        let trigger_level = icr_low & reg::TRIGGER_LEVEL != 0;
        if mode == DeliveryMode::Init && trigger_level && icr_low & reg::ICR_LEVEL_ASSERT == 0 {
            log::debug!("local APIC {}: INIT level de-assert (arbitration ID sync) ignored", self.apic_id());
            return;
        }
        if mode.uses_irr() && vector < 16 {
            log::debug!("local APIC {}: IPI with illegal vector {vector:#x} not sent", self.apic_id());
            self.record_error(reg::ESR_SEND_ILLEGAL_VECTOR);
            return;
        }
        let shorthand = (icr_low >> reg::ICR_SHORTHAND_SHIFT) & 0b11;
        let to_self = match shorthand {
            SHORTHAND_NONE => self.matches_destination(destination, logical),
            SHORTHAND_SELF | SHORTHAND_ALL_INCLUDING_SELF => true,
            _ => false,
        };
        let only_self =
            shorthand == SHORTHAND_SELF || (shorthand == SHORTHAND_NONE && !logical && destination == self.apic_id());
        if !only_self {
            if shorthand == SHORTHAND_NONE && !to_self && !logical {
                log::warn!("local APIC {}: {mode:?} IPI to absent APIC ID {destination:#x} dropped", self.apic_id());
            } else {
                log::debug!("local APIC {}: {mode:?} IPI: no other CPUs to receive it", self.apic_id());
            }
        }
        if to_self {
            self.accept_message(InterruptMessage { vector, delivery_mode: mode, trigger_level, destination, logical });
        }
    }

    /// True when a message for `destination` in the given mode reaches this APIC.
    ///
    /// In x2APIC physical mode an 8-bit 0xFF (from an xAPIC-format source such as the
    /// I/O APIC) is still treated as a broadcast, as KVM does.
    pub(super) fn matches_destination(&self, destination: u32, logical: bool) -> bool {
        if self.x2apic_mode() {
            if destination == X2APIC_BROADCAST {
                return true;
            }
            if !logical {
                return destination == XAPIC_BROADCAST || destination == self.config.apic_id;
            }
            return destination >> 16 == self.ldr >> 16 && destination & self.ldr & 0xFFFF != 0;
        }
        let destination = destination & 0xFF;
        if destination == XAPIC_BROADCAST {
            return true;
        }
        if !logical {
            return destination == u32::from(self.xapic_id);
        }
        let logical_id = self.ldr >> 24;
        if self.dfr_model == 0 {
            // Cluster model: bits 7:4 name the cluster, bits 3:0 the members.
            destination >> 4 == logical_id >> 4 && destination & logical_id & 0xF != 0
        } else {
            destination & logical_id != 0
        }
    }
}
