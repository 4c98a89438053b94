//! Hardware task switches of protected mode: JMP/CALL far to a TSS descriptor or a task
//! gate, INT n / exceptions / interrupts through an IDT task gate, and IRET with NT = 1
//! back to the task in the back-link field. 32-bit and 16-bit TSS formats.
//!
//! SDM Vol. 3A §7.2 (TSS, TSS descriptor, task gate), §7.3 "Task Switching" (the steps and
//! Table 7-1 "Exception Conditions Checked During a Task Switch"), §7.4 (nesting: NT, the
//! previous-task link, busy flags), §7.6 (16-bit TSS); Vol. 2A "CALL", "JMP", Vol. 2A "IRET"
//! (TASK-RETURN), "INT n" (TASK-GATE).

use super::cpu::Ctx;
use super::fault::{Fault, R};
use super::flags::FlagOp;
use super::ops::FarKind;
use super::segment::{sel_err, Descriptor};
use super::state::{cr0, efer, fl, Seg, Segment};

/// Descriptor type of a task gate.
const TYPE_TASK_GATE: u8 = 0x5;
/// Descriptor types of an available / busy 16-bit TSS.
const TYPE_TSS16_AVAILABLE: u8 = 0x1;
const TYPE_TSS16_BUSY: u8 = 0x3;
/// Descriptor types of an available / busy 32-bit TSS.
const TYPE_TSS32_AVAILABLE: u8 = 0x9;
const TYPE_TSS32_BUSY: u8 = 0xb;
/// The busy flag: bit 1 of the TSS descriptor type.
const TSS_BUSY: u8 = 0x2;
/// Descriptor type of an LDT.
const TYPE_LDT: u8 = 0x2;
/// Smallest limit of a 32-bit TSS (104 bytes) and of a 16-bit TSS (44 bytes).
const TSS32_MIN_LIMIT: u32 = 0x67;
const TSS16_MIN_LIMIT: u32 = 0x2b;

/// Field offsets of one TSS format (SDM Vol. 3A Figure 7-2 and Figure 7-11).
struct Layout {
    /// Width of the EIP/EFLAGS/GPR fields (4 or 2).
    width: u8,
    /// Previous-task link.
    link: u64,
    /// CR3 (32-bit format only).
    cr3: Option<u64>,
    /// EIP (IP), then EFLAGS (FLAGS), then the 8 GPRs in EAX..EDI order, each `width` apart.
    eip: u64,
    /// ES, CS, SS, DS (and FS, GS in the 32-bit format), then the LDT selector.
    es: u64,
    /// Distance between two selector fields.
    sel_stride: u64,
    /// LDT selector.
    ldt: u64,
}

const TSS32: Layout = Layout { width: 4, link: 0, cr3: Some(0x1c), eip: 0x20, es: 0x48, sel_stride: 4, ldt: 0x60 };
const TSS16: Layout = Layout { width: 2, link: 0, cr3: None, eip: 0x0e, es: 0x22, sel_stride: 2, ldt: 0x2a };

impl Layout {
    fn of(typ: u8) -> &'static Layout {
        if typ & 8 != 0 {
            &TSS32
        } else {
            &TSS16
        }
    }
    fn eflags(&self) -> u64 {
        self.eip + self.width as u64
    }
    fn gpr(&self, n: usize) -> u64 {
        self.eip + (2 + n as u64) * self.width as u64
    }
    /// Segment registers stored in this format, in TSS order.
    fn segs(&self) -> &'static [Seg] {
        if self.width == 4 {
            &[Seg::Es, Seg::Cs, Seg::Ss, Seg::Ds, Seg::Fs, Seg::Gs]
        } else {
            &[Seg::Es, Seg::Cs, Seg::Ss, Seg::Ds]
        }
    }
}

/// What started a task switch (decides busy flags, NT and the back-link, SDM Table 7-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskSource {
    /// JMP far.
    Jmp,
    /// CALL far.
    Call,
    /// An interrupt or exception through a task gate, or INT n.
    Interrupt,
    /// IRET with NT = 1.
    Iret,
}

/// The state a task switch loads, read from the new TSS before anything changes.
struct NewTask {
    cr3: Option<u64>,
    eip: u64,
    eflags: u64,
    gpr: [u64; 8],
    sels: [u16; 6],
    ldt: u16,
}

fn is_available_tss(typ: u8) -> bool {
    matches!(typ, TYPE_TSS16_AVAILABLE | TYPE_TSS32_AVAILABLE)
}

fn is_busy_tss(typ: u8) -> bool {
    matches!(typ, TYPE_TSS16_BUSY | TYPE_TSS32_BUSY)
}

impl Ctx<'_> {
    /// JMP/CALL far whose selector names a TSS descriptor or a task gate (`d`).
    pub fn far_to_task(&mut self, sel: u16, d: Descriptor, kind: FarKind) -> R<()> {
        if self.c.st.efer & efer::LMA != 0 {
            return Err(Fault::gp(sel_err(sel)));
        }
        let cpl = self.c.st.cpl;
        let rpl = (sel & 3) as u8;
        if d.dpl() < cpl || d.dpl() < rpl {
            return Err(Fault::gp(sel_err(sel)));
        }
        let (tss_sel, tss) = if d.typ() == TYPE_TASK_GATE {
            if !d.present() {
                return Err(Fault::np(sel_err(sel)));
            }
            let tss_sel = ((d.0 >> 16) & 0xffff) as u16;
            (tss_sel, self.task_gate_target(tss_sel, 0)?)
        } else {
            if !is_available_tss(d.typ()) {
                return Err(Fault::gp(sel_err(sel)));
            }
            if !d.present() {
                return Err(Fault::np(sel_err(sel)));
            }
            (sel, d)
        };
        let source = if kind == FarKind::Call { TaskSource::Call } else { TaskSource::Jmp };
        self.task_switch(tss_sel, tss, source, None)
    }

    /// An interrupt or exception through the task gate `gate` of the IDT; pushes `error`
    /// on the new task's stack. `ext` is the EXT bit of error codes.
    pub fn interrupt_through_task_gate(&mut self, gate: Descriptor, error: Option<u32>, ext: u32) -> R<()> {
        let tss_sel = ((gate.0 >> 16) & 0xffff) as u16;
        let tss = self.task_gate_target(tss_sel, ext)?;
        self.task_switch(tss_sel, tss, TaskSource::Interrupt, error)
    }

    /// IRET with NT = 1: back to the task named by the current TSS's previous-task link.
    pub fn iret_task_return(&mut self) -> R<()> {
        let link = self.read_lin_sys(self.c.st.tr.base, 2)? as u16;
        if link & 4 != 0 || link & !3 == 0 {
            return Err(Fault::ts(sel_err(link)));
        }
        let d = self.read_descriptor(link).map_err(|_| Fault::ts(sel_err(link)))?;
        if d.s() || !is_busy_tss(d.typ()) {
            return Err(Fault::ts(sel_err(link)));
        }
        if !d.present() {
            return Err(Fault::np(sel_err(link)));
        }
        self.task_switch(link, d, TaskSource::Iret, None)
    }

    /// The TSS descriptor a task gate points to: in the GDT, an available TSS, present.
    fn task_gate_target(&mut self, tss_sel: u16, ext: u32) -> R<Descriptor> {
        if tss_sel & 4 != 0 || tss_sel & !3 == 0 {
            return Err(Fault::gp(sel_err(tss_sel) | ext));
        }
        let d = self.read_descriptor(tss_sel).map_err(|_| Fault::gp(sel_err(tss_sel) | ext))?;
        if d.s() || !is_available_tss(d.typ()) {
            return Err(Fault::gp(sel_err(tss_sel) | ext));
        }
        if !d.present() {
            return Err(Fault::np(sel_err(tss_sel) | ext));
        }
        Ok(d)
    }

    /// Sets or clears the busy flag of the TSS descriptor `sel` in the GDT.
    fn set_tss_busy(&mut self, sel: u16, busy: bool) -> R<()> {
        let a = self.descriptor_addr(sel, 8)?;
        let access = self.read_lin_sys(a + 5, 1)? as u8;
        let access = if busy { access | TSS_BUSY } else { access & !TSS_BUSY };
        self.write_lin_sys(a + 5, 1, access as u64)
    }

    /// Reads what the new task will load (SDM §7.3 steps 1-7: faults here leave the old
    /// task untouched).
    fn read_new_task(&mut self, base: u64, lay: &Layout) -> R<NewTask> {
        let w = lay.width;
        let mut gpr = [0u64; 8];
        for (n, g) in gpr.iter_mut().enumerate() {
            *g = self.read_lin_sys(base + lay.gpr(n), w)?;
        }
        let mut sels = [0u16; 6];
        for (i, s) in lay.segs().iter().enumerate() {
            sels[*s as usize] = self.read_lin_sys(base + lay.es + i as u64 * lay.sel_stride, 2)? as u16;
        }
        Ok(NewTask {
            cr3: match lay.cr3 {
                Some(off) => Some(self.read_lin_sys(base + off, 4)?),
                None => None,
            },
            eip: self.read_lin_sys(base + lay.eip, w)?,
            eflags: self.read_lin_sys(base + lay.eflags(), w)?,
            gpr,
            sels,
            ldt: self.read_lin_sys(base + lay.ldt, 2)? as u16,
        })
    }

    /// Saves the current task into its TSS (SDM §7.3 step 9).
    fn save_old_task(&mut self, source: TaskSource) -> R<()> {
        let tr = self.c.st.tr;
        let lay = Layout::of((tr.attrs & 0xf) as u8);
        let mut eflags = self.flags();
        if source == TaskSource::Iret {
            eflags &= !fl::NT;
        }
        let w = lay.width;
        self.write_lin_sys(tr.base + lay.eip, w, self.c.st.rip)?;
        self.write_lin_sys(tr.base + lay.eflags(), w, eflags)?;
        for n in 0..8 {
            let v = self.c.st.gpr[n];
            self.write_lin_sys(tr.base + lay.gpr(n), w, v)?;
        }
        for (i, s) in lay.segs().iter().enumerate() {
            let v = self.c.st.seg[*s as usize].selector as u64;
            self.write_lin_sys(tr.base + lay.es + i as u64 * lay.sel_stride, 2, v)?;
        }
        Ok(())
    }

    /// Switches to the task whose (checked, present) TSS descriptor is `d` at `sel`.
    fn task_switch(&mut self, sel: u16, d: Descriptor, source: TaskSource, error: Option<u32>) -> R<()> {
        let min = if d.typ() & 8 != 0 { TSS32_MIN_LIMIT } else { TSS16_MIN_LIMIT };
        if d.limit() < min {
            return Err(Fault::ts(sel_err(sel)));
        }
        let old_tr = self.c.st.tr;
        if old_tr.limit < Layout::of((old_tr.attrs & 0xf) as u8).ldt as u32 + 1 {
            return Err(Fault::ts(sel_err(old_tr.selector)));
        }
        let lay = Layout::of(d.typ());
        let base = d.base();
        let new = self.read_new_task(base, lay)?;
        if matches!(source, TaskSource::Jmp | TaskSource::Iret) {
            self.set_tss_busy(old_tr.selector, false)?;
        }
        self.save_old_task(source)?;
        let mut eflags = new.eflags;
        if matches!(source, TaskSource::Call | TaskSource::Interrupt) {
            self.write_lin_sys(base + lay.link, 2, old_tr.selector as u64)?;
            eflags |= fl::NT;
        }
        if source != TaskSource::Iret {
            self.set_tss_busy(sel, true)?;
        }
        // Commit point (SDM §7.3 step 10): from here faults belong to the new task.
        let mut tr = d.to_segment(sel);
        tr.attrs |= TSS_BUSY as u16;
        self.c.st.tr = tr;
        self.c.st.cr0 |= cr0::TS;
        if let Some(cr3) = new.cr3 {
            if self.c.st.cr0 & cr0::PG != 0 {
                self.write_cr3(cr3);
            }
        }
        let loaded = self.load_new_task(new, eflags, lay.width);
        let pushed = loaded.and_then(|()| match error {
            Some(e) => self.push(e as u64, lay.width),
            None => Ok(()),
        });
        match pushed {
            // The caller would rewind RIP/RSP to the old task's instruction: deliver the
            // new task's fault here, with the new task's state.
            Err(Fault::Exc(e)) => self.deliver_event(e.unpack(), false).map_err(|exit| {
                self.unsupported(format!("fault after a task switch to TSS {sel:#06x} ended the machine: {exit:?}"))
            }),
            other => other,
        }
    }

    /// Loads the new task's registers, LDT and segments (SDM §7.3 steps 11-13).
    fn load_new_task(&mut self, new: NewTask, eflags: u64, width: u8) -> R<()> {
        let st = &mut self.c.st;
        if width == 4 {
            st.gpr[..8].copy_from_slice(&new.gpr);
            st.rip = new.eip;
            st.rflags = (eflags & fl::WRITABLE) | fl::FIXED1;
        } else {
            for (g, v) in st.gpr[..8].iter_mut().zip(new.gpr) {
                *g = (*g & !0xffff) | (v & 0xffff);
            }
            st.rip = new.eip & 0xffff;
            st.rflags = (eflags & 0xffff & fl::WRITABLE) | fl::FIXED1;
        }
        st.lazy.op = FlagOp::None;
        // Selectors first (with unusable caches), so a fault below leaves the new task's
        // selectors visible to its handler, as the SDM describes.
        for (s, sel) in new.sels.iter().enumerate() {
            st.seg[s] = Segment { selector: *sel, ..Segment::default() };
        }
        st.ldtr = Segment { selector: new.ldt, ..Segment::default() };
        self.c.brk = true;
        self.c.irq_check = true;
        self.load_task_ldt(new.ldt)?;
        if eflags & fl::VM != 0 && width == 4 {
            for (s, sel) in new.sels.iter().enumerate() {
                self.c.st.seg[s] = Segment { base: (*sel as u64) << 4, limit: 0xffff, selector: *sel, attrs: 0xf3 };
            }
            self.c.st.cpl = 3;
            self.c.st.update_mode();
            return Ok(());
        }
        self.load_task_cs(new.sels[Seg::Cs as usize])?;
        self.load_task_ss(new.sels[Seg::Ss as usize])?;
        for s in [Seg::Es, Seg::Ds, Seg::Fs, Seg::Gs] {
            self.load_task_data_seg(s, new.sels[s as usize])?;
        }
        Ok(())
    }

    /// LDTR from the new TSS: null, or an LDT descriptor in the GDT (#TS otherwise).
    fn load_task_ldt(&mut self, sel: u16) -> R<()> {
        if sel & !3 == 0 {
            return Ok(());
        }
        if sel & 4 != 0 {
            return Err(Fault::ts(sel_err(sel)));
        }
        let d = self.read_descriptor(sel).map_err(|_| Fault::ts(sel_err(sel)))?;
        if d.s() || d.typ() != TYPE_LDT {
            return Err(Fault::ts(sel_err(sel)));
        }
        if !d.present() {
            return Err(Fault::ts(sel_err(sel)));
        }
        self.c.st.ldtr = d.to_segment(sel);
        Ok(())
    }

    /// CS from the new TSS; its RPL becomes the CPL.
    fn load_task_cs(&mut self, sel: u16) -> R<()> {
        if sel & !3 == 0 {
            return Err(Fault::ts(0));
        }
        let rpl = (sel & 3) as u8;
        let d = self.read_descriptor(sel).map_err(|_| Fault::ts(sel_err(sel)))?;
        if !d.code() || (d.conforming() && d.dpl() > rpl) || (!d.conforming() && d.dpl() != rpl) {
            return Err(Fault::ts(sel_err(sel)));
        }
        if !d.present() {
            return Err(Fault::np(sel_err(sel)));
        }
        self.set_cs(sel, d, rpl);
        Ok(())
    }

    /// SS from the new TSS: a writable data segment at the new CPL.
    fn load_task_ss(&mut self, sel: u16) -> R<()> {
        let cpl = self.c.st.cpl;
        if sel & !3 == 0 {
            return Err(Fault::ts(sel_err(sel)));
        }
        let d = self.read_descriptor(sel).map_err(|_| Fault::ts(sel_err(sel)))?;
        let writable_data = d.s() && !d.code() && d.typ() & 2 != 0;
        if !writable_data || (sel & 3) as u8 != cpl || d.dpl() != cpl {
            return Err(Fault::ts(sel_err(sel)));
        }
        if !d.present() {
            return Err(Fault::ss(sel_err(sel)));
        }
        self.c.st.seg[Seg::Ss as usize] = d.to_segment(sel);
        Ok(())
    }

    /// DS/ES/FS/GS from the new TSS: null, or readable and accessible at the new CPL.
    fn load_task_data_seg(&mut self, seg: Seg, sel: u16) -> R<()> {
        if sel & !3 == 0 {
            return Ok(());
        }
        let cpl = self.c.st.cpl;
        let rpl = (sel & 3) as u8;
        let d = self.read_descriptor(sel).map_err(|_| Fault::ts(sel_err(sel)))?;
        let readable = d.s() && (!d.code() || d.typ() & 2 != 0);
        if !readable || (!d.conforming() && d.dpl() < cpl.max(rpl)) {
            return Err(Fault::ts(sel_err(sel)));
        }
        if !d.present() {
            return Err(Fault::np(sel_err(sel)));
        }
        self.c.st.seg[seg as usize] = d.to_segment(sel);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::state::cr0;
    use super::super::test_util::Machine;
    use iced_x86::code_asm::*;

    /// GDT (at 0x500) selectors of the test machine.
    const SEL_TSS_A: u16 = 0x18;
    const SEL_TSS_B: u16 = 0x20;
    const SEL_TSS_SHORT: u16 = 0x28;
    const SEL_TSS16: u16 = 0x30;
    const TSS_A: u64 = 0x2000;
    const TSS_B: u64 = 0x2100;
    const TSS16_BASE: u64 = 0x2200;
    const TASK_B_CODE: u64 = 0x11000;
    const TASK16_CODE: u64 = 0x3000;

    /// A system descriptor (TSS, gate-less) with byte-granular limit.
    fn system_desc(base: u64, limit: u64, access: u64) -> u64 {
        (limit & 0xffff) | ((base & 0xff_ffff) << 16) | (access << 40) | (((base >> 24) & 0xff) << 56)
    }

    fn poke32(m: &Machine, addr: u64, v: u32) {
        m.poke(addr, &v.to_le_bytes());
    }

    /// Flat protected mode running `main` as task A (TR = 0x18, busy) with task B
    /// (available, 32-bit TSS: EIP TASK_B_CODE, EAX 0x1234) running `task_b`.
    fn two_tasks(main: &mut CodeAssembler, task_b: &mut CodeAssembler) -> Machine {
        let mut m = Machine::protected32(main);
        m.load(task_b, TASK_B_CODE, TASK_B_CODE);
        m.poke(0x518, &system_desc(TSS_A, 0x67, 0x8b).to_le_bytes());
        m.poke(0x520, &system_desc(TSS_B, 0x67, 0x89).to_le_bytes());
        m.poke(0x528, &system_desc(TSS_B, 0x50, 0x89).to_le_bytes());
        m.poke(0x530, &system_desc(TSS16_BASE, 0x2b, 0x81).to_le_bytes());
        poke32(&m, TSS_B + 0x20, TASK_B_CODE as u32); // EIP
        poke32(&m, TSS_B + 0x24, 0x2); // EFLAGS
        poke32(&m, TSS_B + 0x28, 0x1234); // EAX
        poke32(&m, TSS_B + 0x38, 0x7000); // ESP
        poke32(&m, TSS_B + 0x4c, 0x08); // CS
        for off in [0x48, 0x50, 0x54, 0x58, 0x5c] {
            poke32(&m, TSS_B + off, 0x10); // ES, SS, DS, FS, GS
        }
        let st = m.cpu.state_mut();
        st.gdtr.limit = 0x37;
        st.tr = super::Segment { base: TSS_A, limit: 0x67, selector: SEL_TSS_A, attrs: 0x8b };
        m.cpu.flush_caches();
        m
    }

    fn access_byte(m: &Machine, sel: u16) -> u8 {
        m.peek::<1>(0x500 + sel as u64 + 5)[0]
    }

    fn u32_at(m: &Machine, addr: u64) -> u32 {
        u32::from_le_bytes(m.peek::<4>(addr))
    }

    #[test]
    fn jmp_to_a_tss_saves_the_old_task_and_loads_the_new_one() {
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(esi, 0x55).unwrap();
        a.jmp_far(SEL_TSS_B, 0).unwrap();
        let mut b = CodeAssembler::new(32).unwrap();
        b.mov(ebx, 0x5678).unwrap();
        b.hlt().unwrap();
        let mut m = two_tasks(&mut a, &mut b);
        m.run();
        assert_eq!(m.gpr(0), 0x1234, "EAX from the new TSS");
        assert_eq!(m.gpr(3), 0x5678);
        assert_eq!(m.gpr(4), 0x7000, "ESP from the new TSS");
        assert_eq!(m.cpu.state().tr.selector, SEL_TSS_B);
        assert_eq!(access_byte(&m, SEL_TSS_A), 0x89, "JMP clears the old busy flag");
        assert_eq!(access_byte(&m, SEL_TSS_B), 0x8b, "and sets the new one");
        assert_eq!(u32_at(&m, TSS_A + 0x20), 0x10000 + 5 + 7, "old EIP: after the JMP");
        assert_eq!(u32_at(&m, TSS_A + 0x40), 0x55, "old ESI saved");
        assert_eq!(u32_at(&m, TSS_B), 0, "no back-link for JMP");
        assert_eq!(m.cpu.state().rflags & super::fl::NT, 0);
        assert_ne!(m.cpu.state().cr0 & cr0::TS, 0, "a task switch sets CR0.TS");
    }

    #[test]
    fn call_nests_with_back_link_and_iret_returns() {
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(esi, 0x77).unwrap();
        a.call_far(SEL_TSS_B, 0).unwrap();
        a.hlt().unwrap();
        let mut b = CodeAssembler::new(32).unwrap();
        b.pushfd().unwrap();
        b.pop(edx).unwrap();
        b.mov(dword_ptr(0x4000), edx).unwrap();
        b.mov(esi, 0x99).unwrap();
        b.iretd().unwrap();
        let mut m = two_tasks(&mut a, &mut b);
        m.run();
        assert_ne!(u32_at(&m, 0x4000) & super::fl::NT as u32, 0, "NT set in the called task");
        assert_eq!(u32_at(&m, TSS_B) as u16, SEL_TSS_A, "back-link");
        assert_eq!(m.gpr(6), 0x77, "the caller's ESI restored from its TSS");
        assert_eq!(m.cpu.state().tr.selector, SEL_TSS_A);
        assert_eq!(access_byte(&m, SEL_TSS_B), 0x89, "IRET clears the returning task's busy flag");
        assert_eq!(access_byte(&m, SEL_TSS_A), 0x8b);
        assert_eq!(u32_at(&m, TSS_B + 0x24) & super::fl::NT as u32, 0, "saved EFLAGS image has NT clear");
        assert_eq!(m.cpu.state().rip, 0x10000 + 5 + 7 + 1, "resumed after the CALL, then HLT");
    }

    #[test]
    fn switching_to_a_busy_tss_is_gp_and_a_short_tss_is_ts() {
        let mut a = CodeAssembler::new(32).unwrap();
        a.jmp_far(SEL_TSS_A, 0).unwrap();
        let mut b = CodeAssembler::new(32).unwrap();
        b.hlt().unwrap();
        let mut m = two_tasks(&mut a, &mut b);
        let _ = m.cpu.step(&m.p);
        assert_eq!(m.cpu.last_exception, Some((13, Some(SEL_TSS_A as u32))));
        assert_eq!(m.cpu.state().tr.selector, SEL_TSS_A, "no switch happened");

        let mut a = CodeAssembler::new(32).unwrap();
        a.jmp_far(SEL_TSS_SHORT, 0).unwrap();
        let mut m = two_tasks(&mut a, &mut b);
        let _ = m.cpu.step(&m.p);
        assert_eq!(m.cpu.last_exception, Some((10, Some(SEL_TSS_SHORT as u32))));
        assert_eq!(access_byte(&m, SEL_TSS_A), 0x8b, "old task still busy");
    }

    #[test]
    fn exception_through_a_task_gate_pushes_its_error_code_on_the_new_stack() {
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(ax, 0x1000).unwrap();
        a.mov(ds, ax).unwrap();
        let mut b = CodeAssembler::new(32).unwrap();
        b.pop(ecx).unwrap();
        b.hlt().unwrap();
        let mut m = two_tasks(&mut a, &mut b);
        // IDT at 0x800, vector 13: task gate to TSS B.
        let gate = ((SEL_TSS_B as u64) << 16) | (0x85u64 << 40);
        m.poke(0x800 + 13 * 8, &gate.to_le_bytes());
        let st = m.cpu.state_mut();
        st.idtr.base = 0x800;
        st.idtr.limit = 0x7ff;
        m.run();
        assert_eq!(m.gpr(1), 0x1000, "#GP error code on the new task's stack");
        assert_eq!(m.gpr(4), 0x7000);
        assert_eq!(u32_at(&m, TSS_B) as u16, SEL_TSS_A, "back-link");
        assert_ne!(m.cpu.state().rflags & super::fl::NT, 0);
        assert_eq!(u32_at(&m, TSS_A + 0x20), 0x10000 + 4, "old EIP: the faulting MOV DS");
    }

    #[test]
    fn jmp_to_a_16bit_tss_loads_the_16bit_fields() {
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(eax, 0xabcd_0000u32).unwrap();
        a.jmp_far(SEL_TSS16, 0).unwrap();
        let mut b = CodeAssembler::new(32).unwrap();
        b.hlt().unwrap();
        let mut m = two_tasks(&mut a, &mut b);
        m.poke(TASK16_CODE, &[0xf4]);
        let w = |off: u64, v: u16| m.poke(TSS16_BASE + off, &v.to_le_bytes());
        w(0x0e, TASK16_CODE as u16); // IP
        w(0x10, 0x2); // FLAGS
        w(0x12, 0x4321); // AX
        w(0x1a, 0x6000); // SP
        w(0x22, 0x10); // ES
        w(0x24, 0x08); // CS
        w(0x26, 0x10); // SS
        w(0x28, 0x10); // DS
        m.run();
        assert_eq!(m.gpr(0), 0xabcd_4321, "16-bit TSS loads the low halves");
        assert_eq!(m.cpu.state().rip, TASK16_CODE + 1);
        assert_eq!(m.cpu.state().tr.selector, SEL_TSS16);
        assert_eq!(access_byte(&m, SEL_TSS16), 0x83);
    }
}
