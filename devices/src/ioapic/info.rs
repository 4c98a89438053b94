//! The monitor's `info ioapic`: the registers and the redirection table in QEMU's layout
//! (`hw/intc/ioapic_common.c`'s `ioapic_print_redtbl`), one line per pin.

use super::*;
use std::fmt::Write;

/// Pins whose bit is set in `bits`, as QEMU lists them: "(none)" or "1 4 9".
fn pin_list(bits: u32) -> String {
    if bits == 0 {
        return "(none)".into();
    }
    (0..IOAPIC_PINS).filter(|pin| bits & (1 << pin) != 0).map(|pin| pin.to_string()).collect::<Vec<_>>().join(" ")
}

impl IoApic {
    /// `info ioapic`: version, ID and IOREGSEL, then every redirection entry decoded
    /// (destination, vector, polarity, trigger, masked or remote IRR, delivery and
    /// destination mode), then the asserted inputs and the entries waiting for an EOI.
    pub fn info(&self) -> String {
        let mut s = format!("ioapic0: ver={VERSION:#x} id={:#04x} sel={:#04x}", self.id, self.ioregsel);
        match self.ioregsel {
            IOREDTBL_BASE..IOREDTBL_END => {
                let _ = writeln!(s, " (redir[{}])", (self.ioregsel - IOREDTBL_BASE) >> 1);
            }
            _ => s.push('\n'),
        }
        let mut remote_irr = 0u32;
        for (pin, &entry) in self.redirection.iter().enumerate() {
            let state = if entry & RTE_REMOTE_IRR != 0 {
                remote_irr |= 1 << pin;
                "rirr"
            } else if entry & RTE_MASKED != 0 {
                "masked"
            } else {
                ""
            };
            let _ = writeln!(
                s,
                "  pin {pin:<2} {entry:#018x} dest={:<3} vec={:<3} {} {:<5} {state:<6} {:<6} {}",
                entry >> RTE_DEST_SHIFT,
                entry & RTE_VECTOR,
                if entry & RTE_POLARITY_LOW != 0 { "active-lo" } else { "active-hi" },
                if entry & RTE_TRIGGER_LEVEL != 0 { "level" } else { "edge" },
                DeliveryMode::name_of_bits(((entry >> RTE_DELIVERY_MODE_SHIFT) & 0b111) as u8),
                if entry & RTE_DEST_LOGICAL != 0 { "logical" } else { "physical" },
            );
        }
        let _ = writeln!(s, "  IRR        {}", pin_list(self.line_levels));
        let _ = writeln!(s, "  Remote IRR {}", pin_list(remote_irr));
        s
    }
}
