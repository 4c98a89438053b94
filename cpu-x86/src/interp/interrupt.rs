//! Exception and interrupt delivery in every mode — the real-mode IVT, protected-mode
//! IDT gates with privilege changes and stack switches, the long-mode IDT with IST —
//! the double-fault rules and triple-fault shutdown, and IRET.
//!
//! SDM Vol. 3A §6.10-6.15 (IDT, gates, procedures, error codes, #DF), §6.14 (64-bit
//! mode), §20.1.4 (real-mode interrupts), Vol. 2A "INT n/INTO/INT3/INT1", "IRET".

use super::cpu::Ctx;
use super::fault::{is_double_fault, vec, Exception, Fault, R};
use super::segment::{sel_err, Descriptor};
use super::state::{efer, fl, Mode, Seg, Segment};
use crate::debug::diagnose::{triple_fault_report, FaultRecord};
use crate::debug::EngineDebug;
use crate::engine::Exit;

/// What raised an event (decides error codes, the EXT bit and gate DPL checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A fault or trap detected by the CPU.
    Exception,
    /// An external interrupt (INTR) or NMI.
    External,
    /// INT n: the gate DPL is checked against CPL.
    SoftInt,
    /// INT3 and INTO: like INT n, but exceptions.
    SoftException,
    /// INT1 (ICEBP): no gate DPL check.
    Icebp,
}

/// Vectors that push an error code in protected mode.
fn has_error_code(v: u8) -> bool {
    matches!(v, vec::DF | vec::TS | vec::NP | vec::SS | vec::GP | vec::PF | vec::AC)
}

impl Ctx<'_> {
    /// INT n / INT3 / INTO / INT1 from an instruction (RIP already past it).
    pub fn raise_software(&mut self, vector: u8, kind: EventKind) -> R<()> {
        if self.c.st.mode == Mode::V86 && kind == EventKind::SoftInt && self.c.st.iopl() < 3 {
            return Err(Fault::gp(0));
        }
        self.interrupt(vector, kind, None)
    }

    /// Delivers an exception or external interrupt, applying the double-fault rules;
    /// a fault while delivering #DF shuts the CPU down.
    pub fn deliver_event(&mut self, e: Exception, external: bool) -> Result<(), Exit> {
        if self.c.hooks.trace.is_some() {
            self.trace_event(e.vector, e.error, external);
        }
        let mut chain = vec![self.fault_record(e)];
        let mut cur = e;
        let mut kind = if external { EventKind::External } else { EventKind::Exception };
        if !external {
            self.c.last_exception = Some((e.vector, e.error));
        }
        loop {
            let error =
                if has_error_code(cur.vector) && kind == EventKind::Exception { cur.error.or(Some(0)) } else { None };
            match self.interrupt(cur.vector, kind, error) {
                Ok(()) => return Ok(()),
                Err(Fault::Unsupported) => {
                    let s = self.take_unsupported();
                    let msg = format!("unsupported while delivering vector {:#x}: {s}", e.vector);
                    log::error!("{msg}");
                    return Err(Exit::Unsupported(msg));
                }
                Err(Fault::Exc(next)) => {
                    let next = next.unpack();
                    if let Some(last) = chain.last_mut() {
                        last.error = error;
                    }
                    chain.push(self.fault_record(next));
                    if cur.vector == vec::DF || chain.len() > 8 {
                        let regs = EngineDebug::registers(&*self.c);
                        let msg = triple_fault_report(&regs, &chain, self.p.memory());
                        log::error!("{}", msg.lines().next().unwrap_or_default());
                        return Err(Exit::Shutdown(msg));
                    }
                    kind = EventKind::Exception;
                    cur = if is_double_fault(cur.vector, next.vector) {
                        let df = Exception { vector: vec::DF, error: Some(0) };
                        chain.push(self.fault_record(df));
                        df
                    } else {
                        next
                    };
                }
            }
        }
    }

    /// The chain entry for `e`, with CR2 as it stands now.
    fn fault_record(&self, e: Exception) -> FaultRecord {
        FaultRecord { vector: e.vector, error: e.error, cr2: self.c.st.cr2 }
    }

    /// Delivers one event through the IVT or IDT.
    /// A delivery that faults part-way (after a stack switch, say) leaves the state it
    /// found: the next event (#DF, a task gate) must see the interrupted context, not a
    /// half-built one (SDM Vol. 3A §6.15: faults while delivering are raised in the
    /// context of the interrupted procedure).
    fn interrupt(&mut self, vector: u8, kind: EventKind, error: Option<u32>) -> R<()> {
        self.c.st.halted = false;
        self.c.brk = true;
        self.c.irq_check = true;
        self.flags();
        let st = &self.c.st;
        let (seg, cpl, rsp, rflags, rip) = (st.seg, st.cpl, st.gpr[4], st.rflags, st.rip);
        let result = match self.c.st.mode {
            Mode::Real => self.interrupt_real(vector),
            _ if self.c.st.efer & efer::LMA != 0 => self.interrupt_long(vector, kind, error),
            _ => self.interrupt_protected(vector, kind, error),
        };
        if result.is_err() {
            let st = &mut self.c.st;
            (st.seg, st.cpl, st.gpr[4], st.rflags, st.rip) = (seg, cpl, rsp, rflags, rip);
            st.update_mode();
        }
        result
    }

    fn interrupt_real(&mut self, vector: u8) -> R<()> {
        let idt = self.c.st.idtr;
        let entry = vector as u64 * 4;
        if entry + 3 > idt.limit as u64 {
            return Err(Fault::gp(0));
        }
        let ip = self.read_lin_sys(idt.base + entry, 2)?;
        let cs = self.read_lin_sys(idt.base + entry + 2, 2)? as u16;
        let flags = self.flags();
        let old_cs = self.c.st.seg[Seg::Cs as usize].selector;
        let old_ip = self.c.st.rip;
        self.push(flags & 0xffff, 2)?;
        self.push(old_cs as u64, 2)?;
        self.push(old_ip & 0xffff, 2)?;
        self.c.st.rflags &= !(fl::IF | fl::TF | fl::AC | fl::RF);
        self.set_cs_real(cs);
        self.c.st.rip = ip;
        Ok(())
    }

    /// Reads and checks an IDT gate; returns (target selector, offset, gate, ist).
    fn read_gate(&mut self, vector: u8, kind: EventKind, long: bool) -> R<(u16, u64, Descriptor, u8)> {
        let ext = matches!(kind, EventKind::Exception | EventKind::External) as u32;
        let err = vector as u32 * 8 + 2 + ext;
        let idt = self.c.st.idtr;
        let size = if long { 16 } else { 8 };
        let entry = vector as u64 * size;
        if entry + size - 1 > idt.limit as u64 {
            return Err(Fault::gp(err));
        }
        let g = Descriptor(self.read_lin_sys(idt.base + entry, 8)?);
        let valid = if long { matches!(g.typ(), 0xe | 0xf) } else { matches!(g.typ(), 0x5 | 0x6 | 0x7 | 0xe | 0xf) };
        if g.s() || !valid {
            return Err(Fault::gp(err));
        }
        if matches!(kind, EventKind::SoftInt | EventKind::SoftException) && g.dpl() < self.c.st.cpl {
            return Err(Fault::gp(err));
        }
        if !g.present() {
            return Err(Fault::np(err));
        }
        let sel = ((g.0 >> 16) & 0xffff) as u16;
        let mut off = (g.0 & 0xffff) | ((g.0 >> 32) & 0xffff_0000);
        if long {
            off |= self.read_lin_sys(idt.base + entry + 8, 4)? << 32;
        } else if g.typ() & 8 == 0 {
            off &= 0xffff;
        }
        Ok((sel, off, g, ((g.0 >> 32) & 7) as u8))
    }

    /// Reads and checks the code segment an interrupt gate points to.
    fn gate_target(&mut self, sel: u16, ext: u32) -> R<Descriptor> {
        if sel & !3 == 0 {
            return Err(Fault::gp(ext));
        }
        let d = self.read_descriptor(sel).map_err(|_| Fault::gp(sel_err(sel) | ext))?;
        if !d.code() || d.dpl() > self.c.st.cpl {
            return Err(Fault::gp(sel_err(sel) | ext));
        }
        if !d.present() {
            return Err(Fault::np(sel_err(sel) | ext));
        }
        Ok(d)
    }

    fn interrupt_protected(&mut self, vector: u8, kind: EventKind, error: Option<u32>) -> R<()> {
        let ext = matches!(kind, EventKind::Exception | EventKind::External) as u32;
        let (sel, off, g, _) = self.read_gate(vector, kind, false)?;
        if g.typ() == 0x5 {
            return self.interrupt_through_task_gate(g, error, ext);
        }
        let d = self.gate_target(sel, ext)?;
        let size: u8 = if g.typ() & 8 != 0 { 4 } else { 2 };
        let flags = self.flags();
        let old_cs = self.c.st.seg[Seg::Cs as usize].selector as u64;
        let old_ip = self.c.st.rip;
        let from_v86 = self.c.st.mode == Mode::V86;
        let cpl = self.c.st.cpl;
        if !d.conforming() && d.dpl() < cpl {
            if from_v86 && d.dpl() != 0 {
                return Err(Fault::gp(sel_err(sel)));
            }
            let old_ss = self.c.st.seg[Seg::Ss as usize].selector as u64;
            let old_sp = self.c.st.gpr[4];
            let saved: [u64; 4] =
                [Seg::Gs, Seg::Fs, Seg::Ds, Seg::Es].map(|s| self.c.st.seg[s as usize].selector as u64);
            self.c.st.rflags &= !fl::VM;
            self.c.st.mode = Mode::Protected;
            self.switch_stack_from_tss(d.dpl(), 0)?;
            if from_v86 {
                for v in saved {
                    self.push(v, size)?;
                }
            }
            self.push(old_ss, size)?;
            self.push(old_sp, size)?;
            if from_v86 {
                for s in [Seg::Es, Seg::Ds, Seg::Fs, Seg::Gs] {
                    self.c.st.seg[s as usize] = Segment::default();
                }
            }
        } else if from_v86 {
            return Err(Fault::gp(sel_err(sel)));
        }
        let new_cpl = if d.conforming() { cpl } else { d.dpl() };
        self.push(flags, size)?;
        self.push(old_cs, size)?;
        self.push(old_ip, size)?;
        if let Some(e) = error {
            self.push(e as u64, size)?;
        }
        if off > d.limit() as u64 {
            return Err(Fault::gp(0));
        }
        self.set_cs(sel, d, new_cpl);
        self.c.st.rip = off;
        self.c.st.rflags &= !(fl::TF | fl::NT | fl::RF | fl::VM);
        if g.typ() & 1 == 0 {
            self.c.st.rflags &= !fl::IF;
        }
        self.c.st.update_mode();
        Ok(())
    }

    fn interrupt_long(&mut self, vector: u8, kind: EventKind, error: Option<u32>) -> R<()> {
        let ext = matches!(kind, EventKind::Exception | EventKind::External) as u32;
        let (sel, off, g, ist) = self.read_gate(vector, kind, true)?;
        let d = self.gate_target(sel, ext)?;
        if d.attrs() & super::state::attr::L == 0 || d.attrs() & super::state::attr::DB != 0 {
            return Err(Fault::gp(sel_err(sel) | ext));
        }
        let flags = self.flags();
        let old_cs = self.c.st.seg[Seg::Cs as usize].selector as u64;
        let old_ip = self.c.st.rip;
        let old_ss = self.c.st.seg[Seg::Ss as usize].selector as u64;
        let old_sp = self.c.st.gpr[4];
        let cpl = self.c.st.cpl;
        let new_cpl = if d.conforming() { cpl } else { d.dpl() };
        if new_cpl < cpl || ist != 0 {
            self.switch_stack_from_tss(new_cpl, ist)?;
        } else {
            self.c.st.gpr[4] &= !0xf;
        }
        // The frame is written as 64-bit pushes on the (64-bit) new stack.
        self.c.st.mode = Mode::Long64;
        self.push(old_ss, 8)?;
        self.push(old_sp, 8)?;
        self.push(flags, 8)?;
        self.push(old_cs, 8)?;
        self.push(old_ip, 8)?;
        if let Some(e) = error {
            self.push(e as u64, 8)?;
        }
        self.set_cs(sel, d, new_cpl);
        self.c.st.rip = off;
        self.c.st.rflags &= !(fl::TF | fl::NT | fl::RF | fl::VM);
        if g.typ() & 1 == 0 {
            self.c.st.rflags &= !fl::IF;
        }
        Ok(())
    }

    /// IRET / IRETD / IRETQ.
    pub fn iret(&mut self, ins: &iced_x86::Instruction) -> R<()> {
        let size: u8 = match ins.code() {
            iced_x86::Code::Iretw => 2,
            iced_x86::Code::Iretd => 4,
            _ => 8,
        };
        self.c.st.nmi_blocked = false;
        self.c.brk = true;
        self.c.irq_check = true;
        match self.c.st.mode {
            Mode::Real | Mode::V86 => {
                if self.c.st.mode == Mode::V86 && self.c.st.iopl() < 3 {
                    return Err(Fault::gp(0));
                }
                let ip = self.stack_peek(0, size)?;
                let cs = self.stack_peek(size as u64, size)? as u16;
                let f = self.stack_peek(2 * size as u64, size)?;
                if ip > self.c.st.seg[Seg::Cs as usize].limit as u64 {
                    return Err(Fault::gp(0));
                }
                let sp = self.sp();
                self.set_sp(sp.wrapping_add(3 * size as u64));
                self.set_cs_real(cs);
                self.c.st.rip = ip;
                self.write_flags(f, size, true);
                Ok(())
            }
            _ => self.iret_protected(size),
        }
    }

    fn iret_protected(&mut self, size: u8) -> R<()> {
        if self.c.st.rflags & fl::NT != 0 {
            if self.c.st.efer & efer::LMA != 0 {
                return Err(Fault::gp(0));
            }
            return self.iret_task_return();
        }
        let ip = self.stack_peek(0, size)?;
        let sel = self.stack_peek(size as u64, size)? as u16;
        let f = self.stack_peek(2 * size as u64, size)?;
        let cpl = self.c.st.cpl;
        if f & fl::VM != 0 && cpl == 0 && size == 4 && self.c.st.efer & efer::LMA == 0 {
            return self.iret_to_v86(ip, sel, f);
        }
        let rpl = (sel & 3) as u8;
        if sel & !3 == 0 {
            return Err(Fault::gp(0));
        }
        if rpl < cpl {
            return Err(Fault::gp(sel_err(sel)));
        }
        let d = self.read_descriptor(sel)?;
        if !d.code() || (d.conforming() && d.dpl() > rpl) || (!d.conforming() && d.dpl() != rpl) {
            return Err(Fault::gp(sel_err(sel)));
        }
        if !d.present() {
            return Err(Fault::np(sel_err(sel)));
        }
        let long = self.c.st.long64();
        if rpl == cpl && !long {
            let sp = self.sp();
            self.set_sp(sp.wrapping_add(3 * size as u64));
            self.set_cs(sel, d, cpl);
            self.c.st.rip = ip;
            self.write_flags_privileged(f, size, cpl);
            return Ok(());
        }
        let new_sp = self.stack_peek(3 * size as u64, size)?;
        let new_ss = self.stack_peek(4 * size as u64, size)? as u16;
        self.set_cs(sel, d, rpl);
        self.c.st.rip = ip;
        self.write_flags_privileged(f, size, cpl);
        self.load_outer_stack(new_ss, new_sp, size)?;
        if rpl > cpl {
            self.clear_stale_data_segments();
        }
        Ok(())
    }

    /// IRET's flag load with the privilege of the CPL before the return.
    fn write_flags_privileged(&mut self, f: u64, size: u8, old_cpl: u8) {
        let new_cpl = self.c.st.cpl;
        self.c.st.cpl = old_cpl;
        let mode = self.c.st.mode;
        self.c.st.mode = Mode::Protected;
        self.write_flags(f, size, true);
        self.c.st.cpl = new_cpl;
        self.c.st.mode = mode;
        self.c.st.update_mode();
    }

    fn iret_to_v86(&mut self, ip: u64, cs: u16, f: u64) -> R<()> {
        let mut vals = [0u64; 6];
        for (i, v) in vals.iter_mut().enumerate() {
            *v = self.stack_peek(12 + 4 * i as u64, 4)?;
        }
        let [esp, ss, es, ds, fs, gs] = vals;
        self.c.st.rflags = (f & fl::WRITABLE) | fl::FIXED1 | fl::VM;
        self.c.st.lazy.op = super::flags::FlagOp::None;
        self.c.st.update_mode();
        for (s, v) in [(Seg::Es, es), (Seg::Ds, ds), (Seg::Fs, fs), (Seg::Gs, gs), (Seg::Ss, ss)] {
            self.load_seg(s, v as u16)?;
        }
        self.set_cs_real(cs);
        self.c.st.gpr[4] = esp & 0xffff_ffff;
        self.c.st.rip = ip & 0xffff;
        self.c.st.cpl = 3;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::cpu::Step;
    use super::super::test_util::Machine;
    use crate::engine::Exit;
    use iced_x86::code_asm::*;
    use iced_x86::BlockEncoderOptions;

    /// 32-bit interrupt gate descriptor.
    fn gate(sel: u16, off: u32, dpl: u8) -> u64 {
        (off as u64 & 0xffff)
            | ((sel as u64) << 16)
            | ((0x8e00u64 | ((dpl as u64) << 13)) << 32)
            | (((off as u64) >> 16) << 48)
    }

    /// Kernel code that enters ring 3 at `user_ip`, user code doing INT 0x80, and the
    /// handler; returns the assembler and the offsets of the user code and handler.
    fn ring3_program(user_ip: u32) -> (CodeAssembler, CodeLabel, CodeLabel) {
        let mut a = CodeAssembler::new(32).unwrap();
        let mut user = a.create_label();
        let mut handler = a.create_label();
        a.mov(ax, 0x28).unwrap();
        a.ltr(ax).unwrap();
        a.lidt(ptr(0x900)).unwrap();
        a.push(0x23).unwrap();
        a.push(0x5000).unwrap();
        a.push(0x2).unwrap();
        a.push(0x1b).unwrap();
        a.push(user_ip as i32).unwrap();
        a.iretd().unwrap();
        a.set_label(&mut user).unwrap();
        a.mov(eax, 1).unwrap();
        a.int(0x80).unwrap();
        a.set_label(&mut handler).unwrap();
        a.mov(ecx, dword_ptr(esp + 4)).unwrap();
        a.mov(edx, ss).unwrap();
        a.hlt().unwrap();
        (a, user, handler)
    }

    #[test]
    fn ring3_int_switches_to_the_tss_stack() {
        // First pass finds the label addresses; the user IP keeps a 5-byte PUSH imm32.
        let (mut a, user, _) = ring3_program(0x10000);
        let r = a.assemble_options(0x10000, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS).unwrap();
        let user_ip = r.label_ip(&user).unwrap() as u32;
        let (mut a, _, handler) = ring3_program(user_ip);
        let r = a.assemble_options(0x10000, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS).unwrap();
        let handler_off = r.label_ip(&handler).unwrap() as u32;
        let code = r.inner.code_buffer;
        let mut m = Machine::protected32(&mut CodeAssembler::new(32).unwrap());
        m.poke(0x10000, &code);
        m.poke(0x518, &0x00cf_fb00_0000_ffffu64.to_le_bytes());
        m.poke(0x520, &0x00cf_f300_0000_ffffu64.to_le_bytes());
        m.poke(0x528, &0x0000_8900_0600_0067u64.to_le_bytes());
        m.poke(0x604, &0x8000u32.to_le_bytes());
        m.poke(0x608, &0x10u32.to_le_bytes());
        m.poke(0x800 + 0x80 * 8, &gate(0x08, handler_off, 3).to_le_bytes());
        m.poke(0x900, &[0xff, 0x07, 0x00, 0x08, 0x00, 0x00]);
        m.cpu.state_mut().gdtr.limit = 0x2f;
        m.cpu.flush_caches();
        m.run();
        assert_eq!(m.gpr(0), 1);
        assert_eq!(m.gpr(1), 0x1b, "pushed CS is the ring-3 selector");
        assert_eq!(m.gpr(2), 0x10, "SS0 from the TSS");
        assert_eq!(m.gpr(4), 0x8000 - 20, "SS, ESP, EFLAGS, CS, EIP on the ring-0 stack");
        assert_eq!(m.cpu.state().cpl, 0);
    }

    #[test]
    fn page_fault_reports_cr2_and_error_code() {
        let mut a = CodeAssembler::new(32).unwrap();
        let mut handler = a.create_label();
        a.lidt(ptr(0x900)).unwrap();
        a.mov(eax, 0x20000).unwrap();
        a.mov(cr3, eax).unwrap();
        a.mov(eax, cr0).unwrap();
        a.or(eax, 0x8000_0000u32 as i32).unwrap();
        a.mov(cr0, eax).unwrap();
        a.mov(dword_ptr(0x50000), 1).unwrap();
        a.set_label(&mut handler).unwrap();
        a.mov(eax, cr2).unwrap();
        a.pop(ebx).unwrap();
        a.hlt().unwrap();
        let code = a.assemble(0x10000).unwrap();
        let handler_off = 0x10000 + code.len() as u32 - 5;
        let mut m = Machine::protected32(&mut CodeAssembler::new(32).unwrap());
        m.poke(0x10000, &code);
        m.poke(0x20000, &(0x21000u32 | 3).to_le_bytes());
        for page in 0..256u32 {
            let pte = if page == 0x50 { 0 } else { (page << 12) | 3 };
            m.poke(0x21000 + page as u64 * 4, &pte.to_le_bytes());
        }
        m.poke(0x800 + 14 * 8, &gate(0x08, handler_off, 0).to_le_bytes());
        m.poke(0x900, &[0xff, 0x07, 0x00, 0x08, 0x00, 0x00]);
        m.run();
        assert_eq!(m.gpr(0), 0x50000);
        assert_eq!(m.gpr(3), 2, "not present, write, supervisor");
    }

    #[test]
    fn fault_with_no_usable_ivt_is_a_triple_fault() {
        let mut a = CodeAssembler::new(16).unwrap();
        a.int3().unwrap();
        let mut m = Machine::real(&mut a);
        m.cpu.state_mut().idtr.limit = 0;
        match m.cpu.step(&m.p) {
            Step::Exit(Exit::Shutdown(why)) => assert!(why.contains("triple fault"), "{why}"),
            other => panic!("expected shutdown, got {other:?}"),
        }
    }

    #[test]
    fn a_fault_during_delivery_leaves_the_interrupted_context() {
        // Ring 3 runs INT 0x80; the TSS's ring 0 stack (SS0 = 0x38, limit 0xfff, ESP0 =
        // 0x3000) cannot take the frame, and the resulting stack fault goes through a task
        // gate: the old TSS must receive the ring 3 state, not the half-switched one.
        let mut a = CodeAssembler::new(32).unwrap();
        a.push(0x23).unwrap();
        a.push(0x5000).unwrap();
        a.push(0x2).unwrap();
        a.push(0x1b).unwrap();
        a.push(0x13000).unwrap();
        a.iretd().unwrap();
        let mut m = Machine::protected32(&mut a);
        m.poke(0x13000, &[0xcd, 0x80]); // INT 0x80
        m.poke(0x11000, &[0xf4]); // the handler task: HLT
        let descriptors: [(u64, u64); 5] = [
            (0x518, 0x00cf_fa00_0000_ffff), // 0x18: user code
            (0x520, 0x00cf_f200_0000_ffff), // 0x20: user data
            (0x528, 0x0000_8b00_2000_0067), // 0x28: TSS A (busy), base 0x2000
            (0x530, 0x0000_8900_2100_0067), // 0x30: TSS B, base 0x2100
            (0x538, 0x0040_9200_0000_0fff), // 0x38: ring 0 stack, limit 0xfff
        ];
        for (addr, d) in descriptors {
            m.poke(addr, &d.to_le_bytes());
        }
        let tss = |m: &Machine, base: u64, off: u64, v: u32| m.poke(base + off, &v.to_le_bytes());
        tss(&m, 0x2000, 4, 0x3000); // ESP0
        tss(&m, 0x2000, 8, 0x38); // SS0
        tss(&m, 0x2100, 0x20, 0x11000); // EIP
        tss(&m, 0x2100, 0x24, 0x2); // EFLAGS
        tss(&m, 0x2100, 0x38, 0x7000); // ESP
        tss(&m, 0x2100, 0x4c, 0x08); // CS
        for off in [0x48, 0x50, 0x54, 0x58, 0x5c] {
            tss(&m, 0x2100, off, 0x10);
        }
        m.poke(0x800 + 0x80 * 8, &gate(0x08, 0x12000, 3).to_le_bytes());
        let task_gate = (0x30u64 << 16) | (0x85u64 << 40);
        for v in [8u64, 10, 11, 12, 13] {
            m.poke(0x800 + v * 8, &task_gate.to_le_bytes());
        }
        let st = m.cpu.state_mut();
        st.gdtr.limit = 0x3f;
        st.idtr.base = 0x800;
        st.idtr.limit = 0x7ff;
        st.tr = super::Segment { base: 0x2000, limit: 0x67, selector: 0x28, attrs: 0x8b };
        m.run();
        assert_eq!(m.cpu.state().tr.selector, 0x30, "the fault went through the task gate");
        let field = |off: u64| u32::from_le_bytes(m.peek::<4>(0x2000 + off));
        assert_eq!(field(0x4c), 0x1b, "saved CS");
        assert_eq!(field(0x50), 0x23, "saved SS: the ring 3 stack, not SS0");
        assert_eq!(field(0x38), 0x5000, "saved ESP");
        assert_eq!(field(0x20), 0x13000, "saved EIP: the INT");
    }
}
