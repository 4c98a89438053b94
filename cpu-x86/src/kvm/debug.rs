//! [`EngineDebug`] for KVM through `KVM_SET_GUEST_DEBUG` (Linux KVM API §4.62): breakpoints
//! and watchpoints in the four debug-address registers the host loads for the guest
//! (`KVM_GUESTDBG_USE_HW_BP`), so guest memory is never patched, and single-step
//! (`KVM_GUESTDBG_SINGLESTEP`). A stop comes back as `KVM_EXIT_DEBUG` with DR6.
//!
//! Software and hardware breakpoints share the four slots with watchpoints. x86 has no
//! read-only data breakpoint, so read watchpoints are refused (gdb then says so).

use super::engine::KvmEngine;
use crate::debug::{
    BreakpointKind, CpuMode, DebugError, DebugRegs, DebugStop, EngineDebug, FpuRegs, SegmentReg, TableReg, WatchKind,
};
use kvm_bindings::{
    kvm_debug_exit_arch, kvm_dtable, kvm_guest_debug, kvm_guest_debug_arch, kvm_segment, KVM_GUESTDBG_ENABLE,
    KVM_GUESTDBG_SINGLESTEP, KVM_GUESTDBG_USE_HW_BP,
};

/// Debug-address registers (DR0-DR3).
const SLOTS: usize = 4;
/// DR6.BS: the stop is a single step.
const DR6_BS: u64 = 1 << 14;
/// RFLAGS.RF: the next instruction's breakpoint is suppressed.
const RFLAGS_RF: u64 = 1 << 16;

/// What a debug-address register is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    Exec(BreakpointKind),
    Watch(WatchKind, u64),
}

/// The debugger's requests, as KVM will be told them.
#[derive(Debug, Default)]
pub(crate) struct GuestDebug {
    slots: [Option<(u64, Use)>; SLOTS],
    step: bool,
}

impl GuestDebug {
    /// DR7 for the slots in use (SDM Vol. 3B §17.2.4): G0-G3, R/W and LEN per slot.
    fn dr7(&self) -> u64 {
        let mut dr7 = 0;
        for (n, slot) in self.slots.iter().enumerate() {
            let Some((_, what)) = slot else { continue };
            let (rw, len) = match *what {
                Use::Exec(_) => (0b00, 0b00),
                Use::Watch(kind, len) => {
                    let rw = if kind == WatchKind::Write { 0b01 } else { 0b11 };
                    let len = match len {
                        1 => 0b00,
                        2 => 0b01,
                        8 => 0b10,
                        _ => 0b11,
                    };
                    (rw, len)
                }
            };
            dr7 |= (0b10 << (n * 2)) | (rw << (16 + n * 4)) | (len << (18 + n * 4));
        }
        dr7
    }

    /// The `KVM_SET_GUEST_DEBUG` request for this state.
    fn request(&self) -> kvm_guest_debug {
        let any = self.slots.iter().any(Option::is_some);
        let mut control = 0;
        if any || self.step {
            control = KVM_GUESTDBG_ENABLE;
        }
        if any {
            control |= KVM_GUESTDBG_USE_HW_BP;
        }
        if self.step {
            control |= KVM_GUESTDBG_SINGLESTEP;
        }
        let mut arch = kvm_guest_debug_arch::default();
        for (n, slot) in self.slots.iter().enumerate() {
            arch.debugreg[n] = slot.map_or(0, |(a, _)| a);
        }
        arch.debugreg[7] = self.dr7();
        kvm_guest_debug { control, pad: 0, arch }
    }

    fn add(&mut self, addr: u64, what: Use) -> Result<(), DebugError> {
        if self.slots.contains(&Some((addr, what))) {
            return Ok(());
        }
        let free = self.slots.iter_mut().find(|s| s.is_none()).ok_or(DebugError::NoSlot("debug register", SLOTS))?;
        *free = Some((addr, what));
        Ok(())
    }

    fn remove(&mut self, addr: u64, what: Use) -> bool {
        match self.slots.iter_mut().find(|s| **s == Some((addr, what))) {
            Some(s) => {
                *s = None;
                true
            }
            None => false,
        }
    }

    /// The stop a `KVM_EXIT_DEBUG` reports.
    pub fn stop_for(&self, exit: &kvm_debug_exit_arch) -> Option<DebugStop> {
        if exit.dr6 & DR6_BS != 0 {
            return Some(DebugStop::Step);
        }
        let n = (0..SLOTS).find(|n| exit.dr6 & (1 << n) != 0)?;
        let (addr, what) = self.slots[n]?;
        Some(match what {
            Use::Exec(kind) => DebugStop::Breakpoint { addr, kind },
            Use::Watch(kind, _) => DebugStop::Watchpoint { kind, addr },
        })
    }
}

fn seg_out(s: &kvm_segment) -> SegmentReg {
    let attrs = s.type_ as u16
        | (s.s as u16) << 4
        | (s.dpl as u16) << 5
        | (s.present as u16) << 7
        | (s.avl as u16) << 12
        | (s.l as u16) << 13
        | (s.db as u16) << 14
        | (s.g as u16) << 15;
    SegmentReg { selector: s.selector, base: s.base, limit: s.limit, attrs }
}

fn seg_in(s: &SegmentReg, old: &kvm_segment) -> kvm_segment {
    super::regs::kvm_segment_from(s.selector, s.base, s.limit, s.attrs, old.unusable)
}

/// The mode CR0, EFER, RFLAGS and CS select.
fn mode(cr0: u64, efer: u64, rflags: u64, cs: &kvm_segment) -> CpuMode {
    if cr0 & 1 == 0 {
        CpuMode::Real
    } else if efer & (1 << 10) != 0 {
        if cs.l != 0 {
            CpuMode::Long64
        } else {
            CpuMode::Compat
        }
    } else if rflags & (1 << 17) != 0 {
        CpuMode::V86
    } else if cs.db != 0 {
        CpuMode::Protected32
    } else {
        CpuMode::Protected16
    }
}

impl KvmEngine {
    fn apply_guest_debug(&mut self) {
        let req = self.guest_debug.request();
        if let Err(e) = self.vcpu.set_guest_debug(&req) {
            log::error!("KVM_SET_GUEST_DEBUG failed ({e}): breakpoints and stepping do not work on this host");
        }
    }

    /// The debugger's view of a `KVM_EXIT_DEBUG`.
    pub(crate) fn debug_stop(&self, exit: &kvm_debug_exit_arch) -> Option<DebugStop> {
        self.guest_debug.stop_for(exit)
    }
}

impl EngineDebug for KvmEngine {
    fn registers(&self) -> DebugRegs {
        let (Ok(r), Ok(s)) = (self.vcpu.get_regs(), self.vcpu.get_sregs()) else {
            log::error!("KVM register read failed");
            return DebugRegs::default();
        };
        let fpu = self.vcpu.get_fpu().unwrap_or_default();
        let mut st = [[0u8; 10]; 8];
        for (d, s) in st.iter_mut().zip(fpu.fpr.iter()) {
            d.copy_from_slice(&s[..10]);
        }
        // FXSAVE's abridged tag (1 = valid) widened to the full tag word (00 valid, 11 empty).
        let ftw = (0..8).fold(0u16, |t, i| t | if fpu.ftwx & (1 << i) != 0 { 0 } else { 0b11 << (2 * i) });
        let mode = mode(s.cr0, s.efer, r.rflags, &s.cs);
        DebugRegs {
            gpr: [
                r.rax, r.rcx, r.rdx, r.rbx, r.rsp, r.rbp, r.rsi, r.rdi, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14,
                r.r15,
            ],
            rip: r.rip,
            rflags: r.rflags,
            seg: [&s.es, &s.cs, &s.ss, &s.ds, &s.fs, &s.gs].map(seg_out),
            ldtr: seg_out(&s.ldt),
            tr: seg_out(&s.tr),
            gdtr: TableReg { base: s.gdt.base, limit: s.gdt.limit as u32 },
            idtr: TableReg { base: s.idt.base, limit: s.idt.limit as u32 },
            cr0: s.cr0,
            cr2: s.cr2,
            cr3: s.cr3,
            cr4: s.cr4,
            cr8: s.cr8,
            efer: s.efer,
            kernel_gs_base: 0,
            dr: [0, 0, 0, 0, 0xffff_0ff0, 0x400, 0xffff_0ff0, 0x400],
            fpu: FpuRegs {
                st,
                fcw: fpu.fcw,
                fsw: fpu.fsw,
                ftw,
                fop: fpu.last_opcode,
                fip: fpu.last_ip,
                fdp: fpu.last_dp,
            },
            xmm: fpu.xmm.map(u128::from_le_bytes),
            mxcsr: fpu.mxcsr,
            mode,
            cpl: if mode == CpuMode::Real { 0 } else { (s.cs.selector & 3) as u8 },
        }
    }

    fn set_registers(&mut self, d: &DebugRegs) {
        let (Ok(mut r), Ok(mut s)) = (self.vcpu.get_regs(), self.vcpu.get_sregs()) else {
            log::error!("KVM register read failed; registers not written");
            return;
        };
        let g = &d.gpr;
        (r.rax, r.rcx, r.rdx, r.rbx, r.rsp, r.rbp, r.rsi, r.rdi) = (g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]);
        (r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15) = (g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
        r.rip = d.rip;
        r.rflags = d.rflags | 2;
        s.es = seg_in(&d.seg[0], &s.es);
        s.cs = seg_in(&d.seg[1], &s.cs);
        s.ss = seg_in(&d.seg[2], &s.ss);
        s.ds = seg_in(&d.seg[3], &s.ds);
        s.fs = seg_in(&d.seg[4], &s.fs);
        s.gs = seg_in(&d.seg[5], &s.gs);
        s.gdt = kvm_dtable { base: d.gdtr.base, limit: d.gdtr.limit as u16, padding: [0; 3] };
        s.idt = kvm_dtable { base: d.idtr.base, limit: d.idtr.limit as u16, padding: [0; 3] };
        (s.cr0, s.cr2, s.cr3, s.cr4, s.cr8, s.efer) = (d.cr0, d.cr2, d.cr3, d.cr4, d.cr8, d.efer);
        if let Err(e) = self.vcpu.set_sregs(&s).and_then(|()| self.vcpu.set_regs(&r)) {
            log::error!("KVM register write failed: {e}");
        }
    }

    fn add_breakpoint(&mut self, addr: u64, kind: BreakpointKind) -> Result<(), DebugError> {
        self.guest_debug.add(addr, Use::Exec(kind))?;
        self.apply_guest_debug();
        Ok(())
    }

    fn remove_breakpoint(&mut self, addr: u64, kind: BreakpointKind) -> bool {
        let removed = self.guest_debug.remove(addr, Use::Exec(kind));
        self.apply_guest_debug();
        removed
    }

    fn add_watchpoint(&mut self, addr: u64, len: u64, kind: WatchKind) -> Result<(), DebugError> {
        if kind == WatchKind::Read {
            return Err(DebugError::Unsupported(
                "read-only watchpoints (x86 debug registers watch writes or accesses)",
            ));
        }
        if !matches!(len, 1 | 2 | 4 | 8) || !addr.is_multiple_of(len) {
            return Err(DebugError::BadLength(len));
        }
        self.guest_debug.add(addr, Use::Watch(kind, len))?;
        self.apply_guest_debug();
        Ok(())
    }

    fn remove_watchpoint(&mut self, addr: u64, len: u64, kind: WatchKind) -> bool {
        let removed = self.guest_debug.remove(addr, Use::Watch(kind, len));
        self.apply_guest_debug();
        removed
    }

    fn resume(&mut self, step: bool) {
        self.guest_debug.step = step;
        self.apply_guest_debug();
        // Resuming at a breakpoint: RF lets that one instruction run (SDM §17.3.1.1).
        let pc = EngineDebug::registers(self).pc_linear();
        let at_breakpoint = self.guest_debug.slots.iter().flatten().any(|(a, u)| *a == pc && matches!(u, Use::Exec(_)));
        if at_breakpoint {
            if let Ok(mut r) = self.vcpu.get_regs() {
                r.rflags |= RFLAGS_RF;
                if let Err(e) = self.vcpu.set_regs(&r) {
                    log::error!("KVM: cannot set RF to resume from a breakpoint: {e}");
                }
            }
        }
    }

    fn detach(&mut self) {
        self.guest_debug = GuestDebug::default();
        self.apply_guest_debug();
    }

    fn set_trace(&mut self, _sink: Option<Box<dyn crate::debug::trace::TraceSink>>) -> bool {
        false
    }

    fn tlb(&self) -> Option<Vec<crate::debug::TlbView>> {
        None
    }

    fn take_setup(&mut self) -> crate::debug::DebugSetup {
        let mut setup = crate::debug::DebugSetup::default();
        for (addr, what) in self.guest_debug.slots.iter().flatten() {
            match *what {
                Use::Exec(kind) => setup.breakpoints.push((*addr, kind)),
                Use::Watch(kind, len) => setup.watchpoints.push((*addr, len, kind)),
            }
        }
        self.detach();
        setup
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dr7_encodes_slots_as_the_sdm_says() {
        let mut g = GuestDebug::default();
        g.add(0x1000, Use::Exec(BreakpointKind::Software)).unwrap();
        g.add(0x2000, Use::Watch(WatchKind::Write, 4)).unwrap();
        g.add(0x3000, Use::Watch(WatchKind::Access, 8)).unwrap();
        // G0, G1, G2; slot 1: R/W 01 LEN 11; slot 2: R/W 11 LEN 10.
        assert_eq!(g.dr7(), 0b10_10_10 | (0b1101 << 20) | (0b1011 << 24));
        let req = g.request();
        assert_eq!(req.control, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP);
        assert_eq!(&req.arch.debugreg[..4], &[0x1000, 0x2000, 0x3000, 0]);
        g.add(0x4000, Use::Exec(BreakpointKind::Hardware)).unwrap();
        assert!(g.add(0x5000, Use::Exec(BreakpointKind::Hardware)).is_err(), "four slots");
        assert!(g.remove(0x2000, Use::Watch(WatchKind::Write, 4)));
        assert!(g.add(0x5000, Use::Exec(BreakpointKind::Hardware)).is_ok(), "the freed slot is reused");
    }

    #[test]
    fn debug_exits_name_the_stop() {
        let mut g = GuestDebug::default();
        g.add(0x1000, Use::Exec(BreakpointKind::Hardware)).unwrap();
        g.add(0x2000, Use::Watch(WatchKind::Write, 4)).unwrap();
        let exit = |dr6| kvm_debug_exit_arch { exception: 1, pad: 0, pc: 0, dr6, dr7: 0 };
        assert_eq!(g.stop_for(&exit(DR6_BS)), Some(DebugStop::Step));
        assert_eq!(
            g.stop_for(&exit(0b01)),
            Some(DebugStop::Breakpoint { addr: 0x1000, kind: BreakpointKind::Hardware })
        );
        assert_eq!(g.stop_for(&exit(0b10)), Some(DebugStop::Watchpoint { kind: WatchKind::Write, addr: 0x2000 }));
        assert_eq!(g.stop_for(&exit(0)), None);
        g.step = true;
        assert_eq!(g.request().control & KVM_GUESTDBG_SINGLESTEP, KVM_GUESTDBG_SINGLESTEP);
    }
}
