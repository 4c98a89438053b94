//! Local APIC (xAPIC MMIO and x2APIC MSRs).
