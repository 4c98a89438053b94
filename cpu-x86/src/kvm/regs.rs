//! Conversion between rx86's engine-neutral entry state and KVM's register structs.

use kvm_bindings::{kvm_dtable, kvm_regs, kvm_segment, kvm_sregs};
use rx86_core::entry::{EntryState, SegmentInit, TableInit};

use crate::engine::RegisterSummary;

/// A segment register with its hidden part, as KVM wants it.
pub fn segment_to_kvm(s: &SegmentInit) -> kvm_segment {
    kvm_segment_from(s.selector, s.base, s.limit, s.attributes, 0)
}

/// KVM's segment struct from a selector, base, limit and the descriptor attribute bits
/// (type, S, DPL, P in bits 0-7; AVL, L, D/B, G in bits 12-15).
pub fn kvm_segment_from(selector: u16, base: u64, limit: u32, a: u16, unusable: u8) -> kvm_segment {
    kvm_segment {
        base,
        limit,
        selector,
        type_: (a & 0xf) as u8,
        s: ((a >> 4) & 1) as u8,
        dpl: ((a >> 5) & 3) as u8,
        present: ((a >> 7) & 1) as u8,
        avl: ((a >> 12) & 1) as u8,
        l: ((a >> 13) & 1) as u8,
        db: ((a >> 14) & 1) as u8,
        g: ((a >> 15) & 1) as u8,
        unusable,
        padding: 0,
    }
}

fn table_to_kvm(t: &TableInit) -> kvm_dtable {
    kvm_dtable { base: t.base, limit: t.limit, padding: [0; 3] }
}

/// Applies `state` to KVM's special registers (keeping fields KVM set, like the APIC base).
pub fn apply_sregs(sregs: &mut kvm_sregs, state: &EntryState) {
    sregs.cs = segment_to_kvm(&state.cs);
    sregs.ds = segment_to_kvm(&state.ds);
    sregs.es = segment_to_kvm(&state.es);
    sregs.ss = segment_to_kvm(&state.ss);
    sregs.fs = segment_to_kvm(&state.fs);
    sregs.gs = segment_to_kvm(&state.gs);
    sregs.gdt = table_to_kvm(&state.gdt);
    sregs.idt = table_to_kvm(&state.idt);
    sregs.cr0 = state.cr0;
    sregs.cr3 = state.cr3;
    sregs.cr4 = state.cr4;
    sregs.efer = state.efer;
    // A busy 32-bit TSS and an empty LDT, as the architecture requires of a valid state.
    sregs.tr = kvm_segment { limit: 0xffff, type_: 11, present: 1, ..Default::default() };
    sregs.ldt = kvm_segment { limit: 0xffff, type_: 2, present: 1, ..Default::default() };
}

/// The general-purpose registers of `state`.
pub fn regs_from_entry(state: &EntryState) -> kvm_regs {
    let g = &state.gpr;
    kvm_regs {
        rax: g[0],
        rcx: g[1],
        rdx: g[2],
        rbx: g[3],
        rsp: g[4],
        rbp: g[5],
        rsi: g[6],
        rdi: g[7],
        r8: g[8],
        r9: g[9],
        r10: g[10],
        r11: g[11],
        r12: g[12],
        r13: g[13],
        r14: g[14],
        r15: g[15],
        rip: state.rip,
        rflags: state.rflags | 2,
    }
}

/// A summary of KVM's registers for diagnoses.
pub fn summary(regs: &kvm_regs, sregs: &kvm_sregs) -> RegisterSummary {
    RegisterSummary {
        gpr: [
            regs.rax, regs.rcx, regs.rdx, regs.rbx, regs.rsp, regs.rbp, regs.rsi, regs.rdi, regs.r8, regs.r9, regs.r10,
            regs.r11, regs.r12, regs.r13, regs.r14, regs.r15,
        ],
        rip: regs.rip,
        rflags: regs.rflags,
        cs: sregs.cs.selector,
        cr0: sregs.cr0,
        cr2: sregs.cr2,
        cr3: sregs.cr3,
        cr4: sregs.cr4,
        efer: sregs.efer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code64_segment_has_l_set_and_db_clear() {
        let k = segment_to_kvm(&SegmentInit::code64(8));
        assert_eq!((k.l, k.db, k.g, k.present, k.type_, k.s), (1, 0, 1, 1, 0xb, 1));
    }

    #[test]
    fn entry_registers_land_in_kvm_order() {
        let mut s = EntryState::protected32(0x10_0000, 0x10, 0x18, TableInit::default());
        s.gpr[0] = 0x2bad_b002;
        s.gpr[3] = 0x9000;
        let r = regs_from_entry(&s);
        assert_eq!((r.rax, r.rbx, r.rip, r.rflags), (0x2bad_b002, 0x9000, 0x10_0000, 2));
        let mut sregs = kvm_sregs::default();
        apply_sregs(&mut sregs, &s);
        assert_eq!((sregs.cs.selector, sregs.cs.db, sregs.cr0), (0x10, 1, 0x11));
    }
}
