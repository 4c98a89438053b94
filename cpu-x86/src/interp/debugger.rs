//! The interpreter's side of [`EngineDebug`]: breakpoints checked before an instruction
//! executes (guest memory is never patched), watchpoints noted by the data accesses and
//! reported after the instruction retires (like a data breakpoint trap), and single-step.
//!
//! The execution loop tests one flag per instruction (`exec_armed`) and the data
//! accesses one flag per direction; nothing else runs while no debugger is attached.

use super::cpu::{Ctx, Interpreter};
use super::state::{DescTable, Mode, Seg, Segment};
use crate::debug::trace::TraceSink;
use crate::debug::{
    BreakpointKind, CpuMode, DebugError, DebugRegs, DebugSetup, DebugStop, EngineDebug, FpuRegs, SegmentReg, TableReg,
    TlbView, WatchKind, MAX_HW_BREAKPOINTS, MAX_WATCHPOINTS,
};
use iced_x86::Instruction;
use rx86_core::phys::RegionKind;

/// A watched range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Watch {
    addr: u64,
    len: u64,
    kind: WatchKind,
}

/// Debugger requests the execution loop and the memory accesses act on.
#[derive(Default)]
pub(crate) struct DebugHooks {
    /// Where trace events go (`--trace`).
    pub trace: Option<Box<dyn TraceSink>>,
    /// Instruction breakpoints (linear address, kind).
    breakpoints: Vec<(u64, BreakpointKind)>,
    watches: Vec<Watch>,
    /// Some breakpoint is set: check each instruction's address.
    pub exec_armed: bool,
    /// Some watchpoint looks at reads.
    pub watch_reads: bool,
    /// Some watchpoint looks at writes.
    pub watch_writes: bool,
    /// Stop after one instruction.
    pub step: bool,
    /// The breakpoint at this address is passed once (the debugger resumes from it).
    skip_at: Option<u64>,
    /// The stop to report when the current instruction ends.
    pub stop: Option<DebugStop>,
}

impl DebugHooks {
    fn rearm(&mut self) {
        self.exec_armed = !self.breakpoints.is_empty();
        self.watch_reads = self.watches.iter().any(|w| w.kind != WatchKind::Write);
        self.watch_writes = self.watches.iter().any(|w| w.kind != WatchKind::Read);
    }

    /// The breakpoint at linear `lin`, if any (the one being resumed from is passed once).
    pub fn breakpoint_at(&mut self, lin: u64) -> Option<DebugStop> {
        if self.skip_at.take() == Some(lin) {
            return None;
        }
        let &(addr, kind) = self.breakpoints.iter().find(|(a, _)| *a == lin)?;
        Some(DebugStop::Breakpoint { addr, kind })
    }

    /// Notes a data access of `size` bytes at linear `lin`; a watched range that it
    /// overlaps stops the run after the instruction.
    #[cold]
    pub fn note_access(&mut self, lin: u64, size: u8, write: bool) {
        if self.stop.is_some() {
            return;
        }
        let end = lin.wrapping_add(size as u64);
        let hit = self.watches.iter().find(|w| {
            let wanted = match w.kind {
                WatchKind::Write => write,
                WatchKind::Read => !write,
                WatchKind::Access => true,
            };
            wanted && lin < w.addr.wrapping_add(w.len) && w.addr < end
        });
        if let Some(w) = hit {
            self.stop = Some(DebugStop::Watchpoint { kind: w.kind, addr: lin.max(w.addr) });
        }
    }

    /// Interrupts are held off while single-stepping (as QEMU does by default) so a step
    /// lands on the next instruction, not in a timer handler; a halted CPU still takes
    /// them, or the step could never end.
    pub fn interrupts_allowed(&self, halted: bool) -> bool {
        !self.step || halted
    }
}

fn seg_out(s: &Segment) -> SegmentReg {
    SegmentReg { selector: s.selector, base: s.base, limit: s.limit, attrs: s.attrs }
}

fn seg_in(s: &SegmentReg) -> Segment {
    Segment { base: s.base, limit: s.limit, selector: s.selector, attrs: s.attrs }
}

impl Interpreter {
    fn cpu_mode(&self) -> CpuMode {
        match (self.st.mode, self.st.bitness()) {
            (Mode::Real, _) => CpuMode::Real,
            (Mode::V86, _) => CpuMode::V86,
            (Mode::Protected, 16) => CpuMode::Protected16,
            (Mode::Protected, _) => CpuMode::Protected32,
            (Mode::Compat, _) => CpuMode::Compat,
            (Mode::Long64, _) => CpuMode::Long64,
        }
    }
}

impl EngineDebug for Interpreter {
    fn registers(&self) -> DebugRegs {
        let st = &self.st;
        let x = &st.x87;
        let top = ((x.fsw >> 11) & 7) as usize;
        let mut fpu =
            FpuRegs { fcw: x.fcw, fsw: x.fsw, ftw: x.ftw, fop: x.fop, fip: x.fip, fdp: x.fdp, st: [[0; 10]; 8] };
        for (i, r) in fpu.st.iter_mut().enumerate() {
            *r = x.regs[(top + i) % 8];
        }
        DebugRegs {
            gpr: st.gpr,
            rip: st.rip,
            rflags: self.rflags(),
            seg: st.seg.map(|s| seg_out(&s)),
            ldtr: seg_out(&st.ldtr),
            tr: seg_out(&st.tr),
            gdtr: TableReg { base: st.gdtr.base, limit: st.gdtr.limit },
            idtr: TableReg { base: st.idtr.base, limit: st.idtr.limit },
            cr0: st.cr0,
            cr2: st.cr2,
            cr3: st.cr3,
            cr4: st.cr4,
            cr8: st.cr8,
            efer: st.efer,
            kernel_gs_base: st.msr.kernel_gs_base,
            dr: st.dr,
            fpu,
            xmm: st.sse.xmm.map(|[lo, hi]| lo as u128 | (hi as u128) << 64),
            mxcsr: st.sse.mxcsr,
            mode: self.cpu_mode(),
            cpl: st.cpl,
        }
    }

    fn set_registers(&mut self, r: &DebugRegs) {
        let st = &mut self.st;
        st.gpr = r.gpr;
        st.rip = r.rip;
        st.seg = r.seg.map(|s| seg_in(&s));
        st.ldtr = seg_in(&r.ldtr);
        st.tr = seg_in(&r.tr);
        st.gdtr = DescTable { base: r.gdtr.base, limit: r.gdtr.limit };
        st.idtr = DescTable { base: r.idtr.base, limit: r.idtr.limit };
        st.cr0 = r.cr0 | super::state::cr0::ET;
        st.cr2 = r.cr2;
        st.cr3 = r.cr3;
        st.cr4 = r.cr4;
        st.cr8 = r.cr8;
        st.efer = r.efer;
        st.msr.kernel_gs_base = r.kernel_gs_base;
        st.dr = r.dr;
        let top = ((r.fpu.fsw >> 11) & 7) as usize;
        for (i, v) in r.fpu.st.iter().enumerate() {
            st.x87.regs[(top + i) % 8] = *v;
        }
        st.x87.fcw = r.fpu.fcw;
        st.x87.fsw = r.fpu.fsw;
        st.x87.ftw = r.fpu.ftw;
        st.x87.fop = r.fpu.fop;
        st.x87.fip = r.fpu.fip;
        st.x87.fdp = r.fpu.fdp;
        st.sse.xmm = r.xmm.map(|v| [v as u64, (v >> 64) as u64]);
        st.sse.mxcsr = r.mxcsr;
        self.set_rflags(r.rflags);
        if self.st.protected() {
            self.st.cpl = (self.st.seg[1].selector & 3) as u8;
        }
        self.flush_caches();
    }

    fn add_breakpoint(&mut self, addr: u64, kind: BreakpointKind) -> Result<(), DebugError> {
        let h = &mut self.hooks;
        if kind == BreakpointKind::Hardware
            && h.breakpoints.iter().filter(|(_, k)| *k == BreakpointKind::Hardware).count() >= MAX_HW_BREAKPOINTS
        {
            return Err(DebugError::NoSlot("hardware breakpoint", MAX_HW_BREAKPOINTS));
        }
        if !h.breakpoints.contains(&(addr, kind)) {
            h.breakpoints.push((addr, kind));
        }
        h.rearm();
        Ok(())
    }

    fn remove_breakpoint(&mut self, addr: u64, kind: BreakpointKind) -> bool {
        let h = &mut self.hooks;
        let before = h.breakpoints.len();
        h.breakpoints.retain(|b| *b != (addr, kind));
        h.rearm();
        h.breakpoints.len() != before
    }

    fn add_watchpoint(&mut self, addr: u64, len: u64, kind: WatchKind) -> Result<(), DebugError> {
        if len == 0 || len > 0x1000 {
            return Err(DebugError::BadLength(len));
        }
        let h = &mut self.hooks;
        if h.watches.len() >= MAX_WATCHPOINTS {
            return Err(DebugError::NoSlot("watchpoint", MAX_WATCHPOINTS));
        }
        h.watches.push(Watch { addr, len, kind });
        h.rearm();
        Ok(())
    }

    fn remove_watchpoint(&mut self, addr: u64, len: u64, kind: WatchKind) -> bool {
        let h = &mut self.hooks;
        let Some(i) = h.watches.iter().position(|w| *w == Watch { addr, len, kind }) else { return false };
        h.watches.remove(i);
        h.rearm();
        true
    }

    fn resume(&mut self, step: bool) {
        let pc = self.registers().pc_linear();
        let h = &mut self.hooks;
        h.step = step;
        h.stop = None;
        h.skip_at = h.breakpoints.iter().any(|(a, _)| *a == pc).then_some(pc);
    }

    fn detach(&mut self) {
        self.hooks = DebugHooks { trace: self.hooks.trace.take(), ..DebugHooks::default() };
    }

    fn set_trace(&mut self, sink: Option<Box<dyn TraceSink>>) -> bool {
        self.hooks.trace = sink;
        true
    }

    fn take_setup(&mut self) -> DebugSetup {
        let hooks = std::mem::take(&mut self.hooks);
        DebugSetup {
            breakpoints: hooks.breakpoints,
            watchpoints: hooks.watches.iter().map(|w| (w.addr, w.len, w.kind)).collect(),
            trace: hooks.trace,
        }
    }

    fn tlb(&self) -> Option<Vec<TlbView>> {
        let mut entries: Vec<TlbView> = self.tlb.valid_entries().collect();
        entries.sort_by_key(|e| e.linear);
        Some(entries)
    }
}

impl Ctx<'_> {
    /// Reports the instruction at `rip` to the tracer.
    #[cold]
    pub fn trace_instruction(&mut self, rip: u64, lin: u64, ins: &Instruction) {
        let cs = self.c.st.seg[Seg::Cs as usize].selector;
        if let Some(t) = self.c.hooks.trace.as_mut() {
            t.instruction(cs, rip, lin, ins);
        }
    }

    /// Reports an exception or interrupt to the tracer.
    pub fn trace_event(&mut self, vector: u8, error: Option<u32>, external: bool) {
        let (cs, rip) = (self.c.st.seg[Seg::Cs as usize].selector, self.c.st.rip);
        if let Some(t) = self.c.hooks.trace.as_mut() {
            t.event(vector, error, external, cs, rip);
        }
    }

    /// Reports a data access to physical `addr` that went through the bus rather than to
    /// RAM, when it reached MMIO or nothing (ROM reads are not I/O).
    #[cold]
    pub fn trace_mmio(&mut self, addr: u64, size: u8, value: u64, write: bool) {
        let mmio = self.p.memory().lookup(addr).is_none_or(|r| matches!(r.kind, RegionKind::Mmio));
        if let (true, Some(t)) = (mmio, self.c.hooks.trace.as_mut()) {
            t.mmio(addr, size, value, write);
        }
    }

    /// IN from `port`, reported to the tracer.
    pub fn port_read(&mut self, port: u16, size: u8) -> u32 {
        self.sync_clock();
        let v = self.p.io_read(port, size);
        if let Some(t) = self.c.hooks.trace.as_mut() {
            t.port(port, size, v, false);
        }
        v
    }

    /// OUT to `port`, reported to the tracer (the `size` low bytes of `value`).
    pub fn port_write(&mut self, port: u16, size: u8, value: u32) {
        if let Some(t) = self.c.hooks.trace.as_mut() {
            let mask = if size >= 4 { u32::MAX } else { (1u32 << (size * 8)) - 1 };
            t.port(port, size, value & mask, true);
        }
        self.sync_clock();
        self.p.io_write(port, size, value);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::Machine;
    use super::*;
    use crate::engine::Exit;
    use iced_x86::code_asm::*;
    use rx86_core::time::Clock;

    /// 32-bit code at 0x10000: mov eax,1 (5 bytes); mov [0x5000],eax (5); mov ebx,[0x5000] (6);
    /// inc ecx (1); hlt.
    fn program() -> Machine {
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(eax, 1).unwrap();
        a.mov(dword_ptr(0x5000), eax).unwrap();
        a.mov(ebx, dword_ptr(0x5000)).unwrap();
        a.inc(ecx).unwrap();
        a.hlt().unwrap();
        Machine::protected32(&mut a)
    }

    fn run(m: &mut Machine) -> Exit {
        m.cpu.run_until(&m.p, &Clock::new_virtual(), u64::MAX)
    }

    #[test]
    fn setup_taken_from_one_engine_works_on_its_replacement() {
        let mut old = program();
        old.cpu.add_breakpoint(0x10005, BreakpointKind::Hardware).unwrap();
        old.cpu.add_watchpoint(0x5000, 4, WatchKind::Write).unwrap();
        let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        old.cpu.set_trace(Some(Box::new(Recorder(log.clone()))));
        let setup = old.cpu.take_setup();
        assert_eq!(setup.breakpoints, [(0x10005, BreakpointKind::Hardware)]);
        assert_eq!(setup.watchpoints, [(0x5000, 4, WatchKind::Write)]);
        assert_eq!(run(&mut old), Exit::Halted, "the old engine keeps nothing");
        assert!(log.borrow().is_empty());

        let mut new = program();
        setup.install(&mut new.cpu);
        new.cpu.resume(false);
        assert_eq!(run(&mut new), Exit::Debug(DebugStop::Breakpoint { addr: 0x10005, kind: BreakpointKind::Hardware }));
        new.cpu.resume(false);
        assert!(matches!(run(&mut new), Exit::Debug(DebugStop::Watchpoint { .. })), "the watchpoint on the MOV");
        assert!(log.borrow().iter().any(|l| l.starts_with("insn 8:10005")), "the trace follows");
    }

    #[test]
    fn breakpoint_stops_before_the_instruction_and_resume_passes_it() {
        let mut m = program();
        m.cpu.add_breakpoint(0x1000a, BreakpointKind::Software).unwrap();
        m.cpu.resume(false);
        assert_eq!(run(&mut m), Exit::Debug(DebugStop::Breakpoint { addr: 0x1000a, kind: BreakpointKind::Software }));
        assert_eq!(m.cpu.state().rip, 0x1000a);
        assert_eq!(m.gpr(3), 0, "the MOV EBX has not executed");
        m.cpu.resume(false);
        assert_eq!(run(&mut m), Exit::Halted);
        assert_eq!(m.gpr(3), 1);
        let mut code = [0u8; 1];
        m.p.memory.read(0x1000a, &mut code);
        assert_eq!(code, [0x8b], "guest memory holds no INT3");
    }

    #[test]
    fn single_step_executes_one_instruction() {
        let mut m = program();
        m.cpu.resume(true);
        assert_eq!(run(&mut m), Exit::Debug(DebugStop::Step));
        assert_eq!((m.cpu.state().rip, m.gpr(0)), (0x10005, 1));
        m.cpu.resume(true);
        assert_eq!(run(&mut m), Exit::Debug(DebugStop::Step));
        assert_eq!(m.cpu.state().rip, 0x1000a);
    }

    #[test]
    fn watchpoints_report_kind_and_address_after_the_access() {
        for (kind, rip, hits) in
            [(WatchKind::Write, 0x1000a, 1), (WatchKind::Read, 0x10010, 1), (WatchKind::Access, 0x1000a, 2)]
        {
            let mut m = program();
            m.cpu.add_watchpoint(0x5002, 2, kind).unwrap();
            let mut stops = 0;
            loop {
                m.cpu.resume(false);
                match run(&mut m) {
                    Exit::Debug(DebugStop::Watchpoint { kind: k, addr }) => {
                        assert_eq!((k, addr), (kind, 0x5002), "clamped into the watched range");
                        if stops == 0 {
                            assert_eq!(m.cpu.state().rip, rip, "{kind:?} stops after the access");
                        }
                        stops += 1;
                    }
                    Exit::Halted => break,
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(stops, hits, "{kind:?}");
        }
    }

    #[test]
    fn hardware_breakpoints_are_limited_and_removal_disarms() {
        let mut m = program();
        for i in 0..MAX_HW_BREAKPOINTS as u64 {
            m.cpu.add_breakpoint(0x2000 + i, BreakpointKind::Hardware).unwrap();
        }
        assert!(m.cpu.add_breakpoint(0x3000, BreakpointKind::Hardware).is_err());
        assert!(m.cpu.add_breakpoint(0x3000, BreakpointKind::Software).is_ok());
        assert!(m.cpu.remove_breakpoint(0x3000, BreakpointKind::Software));
        assert!(!m.cpu.remove_breakpoint(0x3000, BreakpointKind::Software));
        assert!(m.cpu.add_watchpoint(0x10, 0, WatchKind::Read).is_err());
        m.cpu.add_breakpoint(0x10005, BreakpointKind::Software).unwrap();
        m.cpu.add_watchpoint(0x5000, 4, WatchKind::Write).unwrap();
        m.cpu.detach();
        assert_eq!(run(&mut m), Exit::Halted, "nothing armed after detach");
    }

    /// Keeps trace events as text.
    struct Recorder(std::rc::Rc<std::cell::RefCell<Vec<String>>>);

    impl TraceSink for Recorder {
        fn instruction(&mut self, sel: u16, rip: u64, lin: u64, ins: &Instruction) {
            self.0.borrow_mut().push(format!("insn {sel:x}:{rip:x} {lin:x} {:?}", ins.mnemonic()));
        }
        fn event(&mut self, vector: u8, error: Option<u32>, external: bool, sel: u16, rip: u64) {
            self.0.borrow_mut().push(format!("event {vector} {error:?} {external} {sel:x}:{rip:x}"));
        }
        fn port(&mut self, port: u16, size: u8, value: u32, write: bool) {
            self.0.borrow_mut().push(format!("port {port:x} {size} {value:x} {write}"));
        }
        fn mmio(&mut self, addr: u64, size: u8, value: u64, write: bool) {
            self.0.borrow_mut().push(format!("mmio {addr:x} {size} {value:x} {write}"));
        }
    }

    #[test]
    fn trace_sees_accesses_outside_ram_but_not_ram() {
        // RAM ends well below 0xF000_0000: those accesses go to the bus (unmapped).
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(dword_ptr(0x5000), eax).unwrap();
        a.mov(dword_ptr(0xf000_0010u32), ebx).unwrap();
        a.mov(cx, word_ptr(0xf000_0020u32)).unwrap();
        a.mov(dword_ptr(0xf000_0ffeu32), esi).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::protected32(&mut a);
        m.cpu.state_mut().gpr[3] = 0xdead_beef;
        m.cpu.state_mut().gpr[6] = 0x1122_3344;
        let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        assert!(m.cpu.set_trace(Some(Box::new(Recorder(log.clone())))));
        assert_eq!(run(&mut m), Exit::Halted);
        let mmio: Vec<String> = log.borrow().iter().filter(|l| l.starts_with("mmio")).cloned().collect();
        assert_eq!(
            mmio,
            [
                "mmio f0000010 4 deadbeef true",
                "mmio f0000020 2 ffff false",
                "mmio f0000ffe 2 3344 true",
                "mmio f0001000 2 1122 true",
            ],
            "the page-crossing store is reported as its two halves; the RAM store not at all"
        );
    }

    #[test]
    fn trace_sees_instructions_ports_and_exceptions() {
        // mov eax, 0x12345641; out 0x80, al; ud2 (no IDT: the #UD is reported, then the machine shuts down).
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(eax, 0x1234_5641).unwrap();
        a.out(0x80, al).unwrap();
        a.ud2().unwrap();
        let mut m = Machine::protected32(&mut a);
        m.cpu.state_mut().idtr.limit = 0;
        let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        assert!(m.cpu.set_trace(Some(Box::new(Recorder(log.clone())))));
        assert!(matches!(run(&mut m), Exit::Shutdown(_)));
        let log = log.borrow();
        assert_eq!(log[0], "insn 8:10000 10000 Mov");
        assert_eq!(log[1], "insn 8:10005 10005 Out");
        assert_eq!(log[2], "port 80 1 41 true", "the byte OUT wrote, not all of EAX");
        assert_eq!(log[3], "insn 8:10007 10007 Ud2");
        assert_eq!(log[4], "event 6 None false 8:10007");
    }

    #[test]
    fn registers_round_trip_and_x87_is_in_stack_order() {
        let mut m = program();
        let mut r = m.cpu.registers();
        assert_eq!(r.mode, CpuMode::Protected32);
        r.gpr[2] = 0x1234;
        r.fpu.fsw = 6 << 11;
        r.fpu.st[0] = [1; 10];
        m.cpu.set_registers(&r);
        assert_eq!(m.cpu.state().x87.regs[6], [1; 10], "ST(0) is physical register TOP = 6");
        assert_eq!(m.cpu.registers(), r);
    }
}
