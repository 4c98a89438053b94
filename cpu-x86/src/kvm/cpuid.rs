//! The CPUID the KVM engine presents: what KVM supports, filtered to what the board
//! emulates (the interrupt controllers live in rx86, not in the kernel).

use kvm_bindings::{kvm_cpuid_entry2, CpuId};

/// CPUID.1:ECX bits the board does not provide under KVM.
const LEAF1_ECX_REMOVE: u32 = (1 << 3)   // MONITOR/MWAIT: HLT is what our idle path expects
    | (1 << 21)                          // x2APIC: rx86's APIC is reached through MMIO exits
    | (1 << 24); // TSC-deadline: needs the in-kernel APIC
/// CPUID.1:ECX hypervisor-present bit.
const LEAF1_ECX_HYPERVISOR: u32 = 1 << 31;

/// Filters `supported` (from `KVM_GET_SUPPORTED_CPUID`) for the rx86 board.
pub fn filter(supported: &CpuId) -> Result<CpuId, String> {
    let entries: Vec<kvm_cpuid_entry2> = supported
        .as_slice()
        .iter()
        .filter(|e| !(0x4000_0000..0x5000_0000).contains(&e.function))
        .map(|e| {
            let mut e = *e;
            if e.function == 1 {
                e.ecx = (e.ecx & !LEAF1_ECX_REMOVE) | LEAF1_ECX_HYPERVISOR;
                // Initial APIC ID 0, one logical processor.
                e.ebx &= 0x0000_ffff;
                e.ebx |= 1 << 16;
            }
            e
        })
        .collect();
    CpuId::from_entries(&entries).map_err(|e| format!("cannot build CPUID table: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_x2apic_and_kvm_leaves() {
        let e1 = kvm_cpuid_entry2 { function: 1, ecx: u32::MAX, ebx: 0xff00_0000, ..Default::default() };
        let kvm = kvm_cpuid_entry2 { function: 0x4000_0001, eax: 1, ..Default::default() };
        let f = filter(&CpuId::from_entries(&[e1, kvm]).unwrap()).unwrap();
        let s = f.as_slice();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].ecx & (1 << 21), 0);
        assert_ne!(s[0].ecx & LEAF1_ECX_HYPERVISOR, 0);
        assert_eq!(s[0].ebx >> 16, 1);
    }
}
