//! The monitor's `info lapic`: the local APIC's registers decoded in the layout of QEMU's
//! `info lapic` (`target/i386/cpu-dump.c`, `x86_cpu_dump_local_apic_state`).

use super::registers as reg;
use super::timer::{divisor, TimerMode};
use super::{DeliveryMode, LocalApic};
use std::fmt::Write;

/// ICR bit 12: delivery status (send pending); always clear here, IPIs leave at once.
const ICR_SEND_PENDING: u32 = 1 << 12;
/// ICR bit 14: level assert.
const ICR_LEVEL_ASSERT: u32 = 1 << 14;
/// ICR bit 11: logical destination mode.
const ICR_DEST_LOGICAL: u32 = 1 << 11;
/// ICR destination shorthand, bits 19:18.
const ICR_SHORTHAND_SHIFT: u32 = 18;
/// LVT bit 14 (LINT0/LINT1): remote IRR.
const LVT_REMOTE_IRR: u32 = 1 << 14;

/// The vectors of a 256-bit register, as QEMU lists them: "(none)" or "34 48 239".
fn vector_list(set: &super::vector_set::VectorSet) -> String {
    let vectors: Vec<String> = (0..=255u8).filter(|&v| set.contains(v)).map(|v| v.to_string()).collect();
    if vectors.is_empty() {
        "(none)".into()
    } else {
        vectors.join(" ")
    }
}

impl LocalApic {
    /// One LVT line: the raw value, then polarity, trigger, mask, remote IRR and (for the
    /// timer) its mode, the delivery mode and the vector where it matters.
    fn lvt_line(&self, name: &str, index: usize) -> String {
        let v = self.lvt[index];
        let mode = DeliveryMode::from_bits(((v >> reg::DELIVERY_MODE_SHIFT) & 0b111) as u8);
        let timer_mode = match (index == reg::LVT_TIMER).then(|| self.timer_mode()) {
            Some(TimerMode::OneShot) => "one-shot",
            Some(TimerMode::Periodic) => "periodic",
            Some(TimerMode::TscDeadline) => "tsc-deadline",
            None => "",
        };
        let delivery = match mode {
            Some(m @ (DeliveryMode::Fixed | DeliveryMode::LowestPriority | DeliveryMode::ExtInt)) => {
                format!("{:<6} (vec {})", m.name(), v & reg::VECTOR_MASK)
            }
            Some(m) => m.name().to_string(),
            None => "reserved".into(),
        };
        format!(
            "{name:<8}{v:#010x} {} {:<5} {:<6} {:<4} {timer_mode:<12} {delivery}",
            if v & reg::LVT_POLARITY != 0 { "active-lo" } else { "active-hi" },
            if v & reg::TRIGGER_LEVEL != 0 { "level" } else { "edge" },
            if v & reg::LVT_MASKED != 0 { "masked" } else { "" },
            if v & LVT_REMOTE_IRR != 0 { "rirr" } else { "" },
        )
    }

    /// `info lapic`: the LVT, the timer, the spurious-vector register, the ICR, the error
    /// status, ISR, IRR and the priority registers.
    pub fn info(&self) -> String {
        let mut s = format!(
            "local APIC of CPU 0: base {:#x}, {}{}\n\n",
            self.base(),
            if self.hardware_enabled() { "enabled" } else { "disabled" },
            if self.x2apic_mode() { ", x2APIC mode" } else { ", xAPIC mode" }
        );
        for (name, index) in [
            ("LVT0", reg::LVT_LINT0),
            ("LVT1", reg::LVT_LINT1),
            ("LVTPC", 2),
            ("LVTERR", reg::LVT_ERROR),
            ("LVTTHMR", 1),
            ("LVTT", reg::LVT_TIMER),
        ] {
            let _ = writeln!(s, "{}", self.lvt_line(name, index).trim_end());
        }
        let dcr = self.apic_timer.divide_config();
        let _ = writeln!(
            s,
            "{:<8}DCR={dcr:#x} (divide by {}) initial_count = {} current_count = {}",
            "Timer",
            divisor(dcr),
            self.apic_timer.initial_count(),
            self.apic_timer.current_count(self.timer_mode(), self.clock.now_ns())
        );
        let _ = writeln!(
            s,
            "{:<8}{:#010x} APIC {}, focus=off, spurious vec {}",
            "SPIV",
            self.svr,
            if self.software_enabled() { "enabled" } else { "disabled" },
            self.svr & reg::VECTOR_MASK
        );
        let icr = self.icr_low;
        let _ = writeln!(
            s,
            "{:<8}{icr:#010x} {} {} {} {} {} (vec {})",
            "ICR",
            if icr & ICR_DEST_LOGICAL != 0 { "logical" } else { "physical" },
            if icr & reg::TRIGGER_LEVEL != 0 { "level" } else { "edge" },
            if icr & ICR_LEVEL_ASSERT != 0 { "assert" } else { "de-assert" },
            ["no-shorthand", "self", "all-self", "all"][((icr >> ICR_SHORTHAND_SHIFT) & 0b11) as usize],
            if icr & ICR_SEND_PENDING != 0 { "pending" } else { "idle" },
            icr & reg::VECTOR_MASK
        );
        let dest = if self.x2apic_mode() { self.icr_high } else { self.icr_high >> 24 };
        let _ = writeln!(s, "{:<8}{:#010x} cpu {dest}", "ICR2", self.icr_high);
        let _ = writeln!(s, "{:<8}{:#010x}", "ESR", self.esr);
        let _ = writeln!(s, "{:<8}{}", "ISR", vector_list(&self.isr));
        let _ = writeln!(s, "{:<8}{}", "IRR", vector_list(&self.irr));
        let _ = writeln!(
            s,
            "\nAPR {:#04x} TPR {:#04x} DFR {:#04x} LDR {:#04x} PPR {:#04x}",
            self.apr(),
            self.tpr,
            self.dfr_model,
            self.ldr >> 24,
            self.ppr()
        );
        s
    }
}
