//! Local APIC register map and bit fields (Intel SDM vol. 3, table 11-1 "Local APIC
//! Register Address Map" and table 11-6 "Local APIC Register Address Map Supported by
//! x2APIC"). Register indices are the xAPIC MMIO offset divided by 16, which is also
//! the x2APIC MSR number minus 0x800.

/// Local APIC ID register.
pub const ID: u32 = 0x02;
/// Local APIC version register.
pub const VERSION: u32 = 0x03;
/// Task priority register (TPR).
pub const TPR: u32 = 0x08;
/// Arbitration priority register (APR); xAPIC only.
pub const APR: u32 = 0x09;
/// Processor priority register (PPR).
pub const PPR: u32 = 0x0A;
/// EOI register (write only).
pub const EOI: u32 = 0x0B;
/// Remote read register (RRD); xAPIC only, obsolete.
pub const RRD: u32 = 0x0C;
/// Logical destination register (LDR).
pub const LDR: u32 = 0x0D;
/// Destination format register (DFR); xAPIC only.
pub const DFR: u32 = 0x0E;
/// Spurious interrupt vector register (SVR).
pub const SVR: u32 = 0x0F;
/// In-service register, bits 31:0 (eight registers up to 0x17).
pub const ISR_BASE: u32 = 0x10;
/// Trigger mode register, bits 31:0 (eight registers up to 0x1F).
pub const TMR_BASE: u32 = 0x18;
/// Interrupt request register, bits 31:0 (eight registers up to 0x27).
pub const IRR_BASE: u32 = 0x20;
/// Error status register (ESR).
pub const ESR: u32 = 0x28;
/// Interrupt command register, bits 31:0 (bits 63:0 as one x2APIC MSR).
pub const ICR_LOW: u32 = 0x30;
/// Interrupt command register, bits 63:32; xAPIC only.
pub const ICR_HIGH: u32 = 0x31;
/// LVT timer register; the other five LVT registers follow it.
pub const LVT_BASE: u32 = 0x32;
/// Timer initial count register.
pub const TIMER_INITIAL_COUNT: u32 = 0x38;
/// Timer current count register (read only).
pub const TIMER_CURRENT_COUNT: u32 = 0x39;
/// Timer divide configuration register.
pub const TIMER_DIVIDE_CONFIG: u32 = 0x3E;
/// SELF IPI register (write only); x2APIC only.
pub const SELF_IPI: u32 = 0x3F;

/// Number of LVT entries: timer, thermal sensor (1), performance counters (2), LINT0,
/// LINT1, error. The CMCI entry (0x2F0) is absent: max LVT entry is 5.
pub const LVT_COUNT: usize = 6;
/// Index of the LVT timer entry.
pub const LVT_TIMER: usize = 0;
/// Index of the LVT LINT0 entry.
pub const LVT_LINT0: usize = 3;
/// Index of the LVT LINT1 entry.
pub const LVT_LINT1: usize = 4;
/// Index of the LVT error entry.
pub const LVT_ERROR: usize = 5;

/// Version register value: version 0x14 (integrated xAPIC), max LVT entry 5, no
/// EOI-broadcast suppression (bit 24 clear).
pub const VERSION_VALUE: u32 = 0x0005_0014;

/// LVT and ICR vector field.
pub const VECTOR_MASK: u32 = 0xFF;
/// LVT and ICR delivery mode field, bits 10:8.
pub const DELIVERY_MODE_SHIFT: u32 = 8;
/// LVT LINT0/LINT1 input pin polarity (1 = active low).
pub const LVT_POLARITY: u32 = 1 << 13;
/// LVT LINT0/LINT1 and ICR trigger mode (1 = level).
pub const TRIGGER_LEVEL: u32 = 1 << 15;
/// LVT mask bit.
pub const LVT_MASKED: u32 = 1 << 16;
/// LVT timer mode field, bits 18:17.
pub const LVT_TIMER_MODE_SHIFT: u32 = 17;
/// Writable bits of the LVT timer entry: vector, mask, timer mode.
pub const LVT_TIMER_WRITABLE: u32 = 0x0007_00FF;
/// Writable bits of the thermal and performance LVT entries: vector, delivery mode, mask.
pub const LVT_DELIVERY_WRITABLE: u32 = 0x0001_07FF;
/// Writable bits of the LINT0/LINT1 LVT entries: vector, delivery mode, polarity,
/// trigger mode, mask (remote IRR, bit 14, is read only).
pub const LVT_LINT_WRITABLE: u32 =
    VECTOR_MASK | 0b111 << DELIVERY_MODE_SHIFT | LVT_POLARITY | TRIGGER_LEVEL | LVT_MASKED;
/// Writable bits of the error LVT entry: vector, mask.
pub const LVT_ERROR_WRITABLE: u32 = 0x0001_00FF;

/// SVR bit 8: APIC software enable.
pub const SVR_APIC_ENABLED: u32 = 1 << 8;
/// Writable SVR bits: spurious vector and software enable (focus checking and EOI
/// broadcast suppression are not implemented, so bits 9 and 12 are reserved).
pub const SVR_WRITABLE: u32 = 0x1FF;
/// SVR value at reset: vector 0xFF, software disabled.
pub const SVR_RESET: u32 = 0xFF;

/// DFR model field, bits 31:28: 1111 flat, 0000 cluster; bits 27:0 read as ones.
pub const DFR_RESERVED_ONES: u32 = 0x0FFF_FFFF;
/// DFR flat model.
pub const DFR_MODEL_FLAT: u32 = 0xF;

/// ESR bit 5: send illegal vector (an IPI with vector 0-15 was sent).
pub const ESR_SEND_ILLEGAL_VECTOR: u32 = 1 << 5;
/// ESR bit 6: receive illegal vector (an interrupt with vector 0-15 arrived).
pub const ESR_RECEIVE_ILLEGAL_VECTOR: u32 = 1 << 6;

/// ICR bit 11: destination mode (1 = logical).
pub const ICR_DEST_LOGICAL: u32 = 1 << 11;
/// ICR bit 14: level (0 = de-assert, only meaningful for INIT level de-assert).
pub const ICR_LEVEL_ASSERT: u32 = 1 << 14;
/// ICR destination shorthand field, bits 19:18.
pub const ICR_SHORTHAND_SHIFT: u32 = 18;
/// Writable bits of ICR bits 31:0 (delivery status, bit 12, reads as idle).
pub const ICR_LOW_WRITABLE: u32 = 0x000C_CFFF;
/// Writable bits of the xAPIC ICR high register: destination, bits 31:24.
pub const ICR_HIGH_WRITABLE: u32 = 0xFF00_0000;

/// Divide configuration bits 0, 1 and 3.
pub const DIVIDE_CONFIG_WRITABLE: u32 = 0b1011;

/// IA32_APIC_BASE MSR.
pub const MSR_IA32_APIC_BASE: u32 = 0x1B;
/// IA32_TSC_DEADLINE MSR.
pub const MSR_IA32_TSC_DEADLINE: u32 = 0x6E0;
/// First x2APIC register MSR.
pub const MSR_X2APIC_FIRST: u32 = 0x800;
/// Last x2APIC register MSR.
pub const MSR_X2APIC_LAST: u32 = 0x8FF;

/// IA32_APIC_BASE bit 8: this processor is the bootstrap processor.
pub const APIC_BASE_BSP: u64 = 1 << 8;
/// IA32_APIC_BASE bit 10: x2APIC mode enable (EXTD).
pub const APIC_BASE_EXTD: u64 = 1 << 10;
/// IA32_APIC_BASE bit 11: APIC global enable (EN).
pub const APIC_BASE_ENABLE: u64 = 1 << 11;
/// IA32_APIC_BASE reserved bits below the base field: 7:0 and 9.
pub const APIC_BASE_LOW_RESERVED: u64 = 0x2FF;
/// The architectural default APIC base address.
pub const APIC_DEFAULT_BASE: u64 = 0xFEE0_0000;
