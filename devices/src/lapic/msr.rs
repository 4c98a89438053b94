//! The local APIC's MSRs: IA32_APIC_BASE (SDM vol. 3, 11.4.4 and 11.12.5 "x2APIC State
//! Transitions"), IA32_TSC_DEADLINE (11.5.4.1) and the x2APIC register MSRs
//! 0x800-0x8FF (11.12.1, table 11-6).
//!
//! x2APIC access rules: the MSRs fault outside x2APIC mode; reserved registers (APR,
//! RRD, DFR, ICR high, and CMCI since max LVT entry is 5), reads of write-only
//! registers (EOI, SELF IPI), writes to read-only ones, non-zero bits 63:32 in any
//! register but the ICR, and non-zero writes to EOI or ESR all fault. Other reserved
//! bits are ignored, as KVM does.

use super::registers as reg;
use super::LocalApic;
use thiserror::Error;

/// Why an APIC MSR access faults. The CPU turns every one of them into #GP(0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ApicFault {
    /// An x2APIC MSR was accessed while the APIC is not in x2APIC mode.
    #[error("x2APIC MSR {0:#x} accessed outside x2APIC mode")]
    NotX2ApicMode(u32),
    /// The x2APIC MSR is reserved.
    #[error("x2APIC MSR {0:#x} is reserved")]
    ReservedRegister(u32),
    /// A write to a read-only x2APIC register.
    #[error("x2APIC MSR {0:#x} is read only")]
    ReadOnly(u32),
    /// A read of a write-only x2APIC register.
    #[error("x2APIC MSR {0:#x} is write only")]
    WriteOnly(u32),
    /// The value sets bits that must be zero.
    #[error("MSR {msr:#x} write of {value:#x} sets reserved bits")]
    ReservedBits {
        /// The MSR.
        msr: u32,
        /// The rejected value.
        value: u64,
    },
    /// IA32_APIC_BASE write asking for an invalid or illegal mode transition.
    #[error("IA32_APIC_BASE {from:#x} -> {to:#x} is not a legal APIC mode transition")]
    IllegalModeTransition {
        /// The value before.
        from: u64,
        /// The rejected value.
        to: u64,
    },
    /// The MSR does not belong to the local APIC.
    #[error("MSR {0:#x} does not belong to the local APIC")]
    NotApicMsr(u32),
}

/// The APIC's mode as IA32_APIC_BASE bits 11:10 (EN, EXTD) encode it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ApicMode {
    Disabled,
    Invalid,
    XApic,
    X2Apic,
}

fn mode_of(apic_base: u64) -> ApicMode {
    match (apic_base & reg::APIC_BASE_ENABLE != 0, apic_base & reg::APIC_BASE_EXTD != 0) {
        (false, false) => ApicMode::Disabled,
        (false, true) => ApicMode::Invalid,
        (true, false) => ApicMode::XApic,
        (true, true) => ApicMode::X2Apic,
    }
}

impl LocalApic {
    /// RDMSR of IA32_APIC_BASE (0x1B), IA32_TSC_DEADLINE (0x6E0) or an x2APIC MSR.
    pub fn msr_read(&mut self, msr: u32) -> Result<u64, ApicFault> {
        match msr {
            reg::MSR_IA32_APIC_BASE => Ok(self.apic_base),
            reg::MSR_IA32_TSC_DEADLINE => Ok(self.apic_timer.tsc_deadline(self.timer_mode())),
            reg::MSR_X2APIC_FIRST..=reg::MSR_X2APIC_LAST => self.read_x2apic(msr),
            _ => Err(ApicFault::NotApicMsr(msr)),
        }
    }

    /// WRMSR of IA32_APIC_BASE (0x1B), IA32_TSC_DEADLINE (0x6E0) or an x2APIC MSR.
    pub fn msr_write(&mut self, msr: u32, value: u64) -> Result<(), ApicFault> {
        match msr {
            reg::MSR_IA32_APIC_BASE => self.write_apic_base(value),
            reg::MSR_IA32_TSC_DEADLINE => {
                self.apic_timer.write_tsc_deadline(self.timer_mode(), value);
                self.rearm_timer();
                Ok(())
            }
            reg::MSR_X2APIC_FIRST..=reg::MSR_X2APIC_LAST => self.write_x2apic(msr, value),
            _ => Err(ApicFault::NotApicMsr(msr)),
        }
    }

    /// IA32_APIC_BASE write: reserved bits (7:0, 9, EXTD without x2APIC support, and
    /// bits at or above MAXPHYADDR) fault, as do the transitions the SDM forbids
    /// (EXTD without EN, x2APIC to xAPIC, disabled to x2APIC). BSP is read only.
    /// Disabling the APIC resets its registers; entering x2APIC mode switches to the
    /// 32-bit ID and the derived logical ID.
    fn write_apic_base(&mut self, value: u64) -> Result<(), ApicFault> {
        let extd_reserved = if self.config.x2apic { 0 } else { reg::APIC_BASE_EXTD };
        let reserved = reg::APIC_BASE_LOW_RESERVED | extd_reserved | !(self.base_address_mask() | 0xFFF);
        if value & reserved != 0 {
            return Err(ApicFault::ReservedBits { msr: reg::MSR_IA32_APIC_BASE, value });
        }
        let (old, new) = (mode_of(self.apic_base), mode_of(value));
        let illegal = matches!(
            (old, new),
            (_, ApicMode::Invalid) | (ApicMode::X2Apic, ApicMode::XApic) | (ApicMode::Disabled, ApicMode::X2Apic)
        );
        if illegal {
            return Err(ApicFault::IllegalModeTransition { from: self.apic_base, to: value });
        }
        self.apic_base = (value & !reg::APIC_BASE_BSP) | (self.apic_base & reg::APIC_BASE_BSP);
        match (old, new) {
            (ApicMode::Disabled, _) | (_, ApicMode::Disabled) if old != new => self.reset_registers(),
            (ApicMode::XApic, ApicMode::X2Apic) => self.ldr = self.x2apic_ldr(),
            _ => {}
        }
        log::debug!("local APIC {}: IA32_APIC_BASE = {:#x}", self.apic_id(), self.apic_base);
        Ok(())
    }

    fn read_x2apic(&mut self, msr: u32) -> Result<u64, ApicFault> {
        if !self.x2apic_mode() {
            return Err(ApicFault::NotX2ApicMode(msr));
        }
        let index = msr - reg::MSR_X2APIC_FIRST;
        match index {
            reg::ID => Ok(self.config.apic_id.into()),
            reg::LDR => Ok(self.ldr.into()),
            reg::ICR_LOW => Ok((u64::from(self.icr_high) << 32) | u64::from(self.icr_low)),
            reg::EOI | reg::SELF_IPI => Err(ApicFault::WriteOnly(msr)),
            _ => self.read_common(index).map(u64::from).ok_or(ApicFault::ReservedRegister(msr)),
        }
    }

    fn write_x2apic(&mut self, msr: u32, value: u64) -> Result<(), ApicFault> {
        if !self.x2apic_mode() {
            return Err(ApicFault::NotX2ApicMode(msr));
        }
        let index = msr - reg::MSR_X2APIC_FIRST;
        let reserved_bits = ApicFault::ReservedBits { msr, value };
        if index != reg::ICR_LOW && value >> 32 != 0 {
            return Err(reserved_bits);
        }
        match index {
            reg::ID | reg::VERSION | reg::PPR | reg::LDR | reg::TIMER_CURRENT_COUNT => Err(ApicFault::ReadOnly(msr)),
            i if (reg::ISR_BASE..reg::IRR_BASE + 8).contains(&i) => Err(ApicFault::ReadOnly(msr)),
            reg::EOI | reg::ESR if value != 0 => Err(reserved_bits),
            reg::ICR_LOW => {
                self.icr_low = value as u32 & reg::ICR_LOW_WRITABLE;
                self.icr_high = (value >> 32) as u32;
                self.send_ipi(self.icr_low, self.icr_high);
                Ok(())
            }
            reg::SELF_IPI => {
                // A fixed, edge-triggered IPI to self with the given vector.
                let self_shorthand = 0b01 << reg::ICR_SHORTHAND_SHIFT;
                self.send_ipi(self_shorthand | (value as u32 & reg::VECTOR_MASK), 0);
                Ok(())
            }
            _ if self.write_common(index, value as u32) => Ok(()),
            _ => Err(ApicFault::ReservedRegister(msr)),
        }
    }
}
