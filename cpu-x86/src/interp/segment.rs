//! Segment-register loads and far transfers: descriptor fetch from the GDT/LDT, the
//! protection checks of SDM Vol. 3A §5.5-5.8 (privilege levels, call gates), and the
//! real/virtual-8086 forms where a selector is just a paragraph number.

use super::cpu::Ctx;
use super::fault::{Fault, R};
use super::flags::size_mask;
use super::ops::FarKind;
use super::state::{attr, Mode, Seg, Segment};

/// A raw 8-byte segment descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor(pub u64);

impl Descriptor {
    /// Attribute bits as kept in [`Segment::attrs`].
    pub fn attrs(self) -> u16 {
        ((self.0 >> 40) & 0xf0ff) as u16
    }
    /// Descriptor type (4 bits).
    pub fn typ(self) -> u8 {
        ((self.0 >> 40) & 0xf) as u8
    }
    /// Code/data (true) or system (false).
    pub fn s(self) -> bool {
        self.0 & (1 << 44) != 0
    }
    /// DPL.
    pub fn dpl(self) -> u8 {
        ((self.0 >> 45) & 3) as u8
    }
    /// Present.
    pub fn present(self) -> bool {
        self.0 & (1 << 47) != 0
    }
    /// Code segment.
    pub fn code(self) -> bool {
        self.s() && self.typ() & 8 != 0
    }
    /// Conforming code segment.
    pub fn conforming(self) -> bool {
        self.code() && self.typ() & 4 != 0
    }
    /// Base address (32 bits).
    pub fn base(self) -> u64 {
        ((self.0 >> 16) & 0xff_ffff) | (((self.0 >> 56) & 0xff) << 24)
    }
    /// Limit in bytes, scaled by G.
    pub fn limit(self) -> u32 {
        let raw = ((self.0 & 0xffff) | ((self.0 >> 32) & 0xf_0000)) as u32;
        if self.0 & (1 << 55) != 0 {
            (raw << 12) | 0xfff
        } else {
            raw
        }
    }
    /// The segment-register cache this descriptor loads.
    pub fn to_segment(self, selector: u16) -> Segment {
        Segment { base: self.base(), limit: self.limit(), selector, attrs: self.attrs() }
    }
}

/// Error code for a selector fault (SDM Vol. 3A §6.13).
pub fn sel_err(sel: u16) -> u32 {
    (sel & 0xfffc) as u32
}

impl Ctx<'_> {
    /// Linear address of the descriptor for `sel`, or #GP(sel) beyond the table limit.
    pub fn descriptor_addr(&self, sel: u16, size: u32) -> R<u64> {
        let st = &self.c.st;
        let (base, limit) = if sel & 4 != 0 {
            if !st.ldtr.present() {
                return Err(Fault::gp(sel_err(sel)));
            }
            (st.ldtr.base, st.ldtr.limit)
        } else {
            (st.gdtr.base, st.gdtr.limit)
        };
        let idx = (sel & !7) as u32;
        if idx + size - 1 > limit {
            return Err(Fault::gp(sel_err(sel)));
        }
        Ok(base.wrapping_add(idx as u64))
    }

    /// Reads the descriptor for `sel`.
    pub fn read_descriptor(&mut self, sel: u16) -> R<Descriptor> {
        let a = self.descriptor_addr(sel, 8)?;
        Ok(Descriptor(self.read_lin_sys(a, 8)?))
    }

    /// The upper half of a 16-byte system descriptor (base bits 32-63).
    pub fn read_descriptor_high(&mut self, sel: u16) -> R<u64> {
        let a = self.descriptor_addr(sel, 16)?;
        self.read_lin_sys(a + 8, 4)
    }

    /// Sets the accessed bit of the descriptor for `sel`.
    fn set_accessed(&mut self, sel: u16, d: Descriptor) -> R<()> {
        if d.typ() & 1 == 0 {
            let a = self.descriptor_addr(sel, 8)?;
            let b = ((d.0 >> 40) & 0xff) | 1;
            self.write_lin_sys(a + 5, 1, b)?;
        }
        Ok(())
    }

    /// Loads a data or stack segment register (MOV, POP, LDS...).
    pub fn load_seg(&mut self, seg: Seg, sel: u16) -> R<()> {
        let st = &self.c.st;
        match st.mode {
            Mode::Real => {
                let s = &mut self.c.st.seg[seg as usize];
                s.selector = sel;
                s.base = (sel as u64) << 4;
                return Ok(());
            }
            Mode::V86 => {
                self.c.st.seg[seg as usize] =
                    Segment { base: (sel as u64) << 4, limit: 0xffff, selector: sel, attrs: 0xf3 };
                return Ok(());
            }
            _ => {}
        }
        let cpl = st.cpl;
        let rpl = (sel & 3) as u8;
        if sel & !3 == 0 {
            if seg == Seg::Ss && !(st.mode == Mode::Long64 && cpl < 3 && rpl == cpl) {
                return Err(Fault::gp(0));
            }
            let s = &mut self.c.st.seg[seg as usize];
            *s = Segment {
                base: 0,
                limit: 0,
                selector: sel,
                attrs: if seg == Seg::Ss { 0x93 | ((cpl as u16) << 5) } else { 0 },
            };
            return Ok(());
        }
        let d = self.read_descriptor(sel)?;
        if seg == Seg::Ss {
            let writable_data = d.s() && !d.code() && d.typ() & 2 != 0;
            if rpl != cpl || d.dpl() != cpl || !writable_data {
                return Err(Fault::gp(sel_err(sel)));
            }
            if !d.present() {
                return Err(Fault::ss(sel_err(sel)));
            }
        } else {
            let readable = d.s() && (!d.code() || d.typ() & 2 != 0);
            if !readable || ((!d.code() || !d.conforming()) && d.dpl() < cpl.max(rpl)) {
                return Err(Fault::gp(sel_err(sel)));
            }
            if !d.present() {
                return Err(Fault::np(sel_err(sel)));
            }
        }
        self.set_accessed(sel, d)?;
        self.c.st.seg[seg as usize] = d.to_segment(sel);
        self.c.st.seg[seg as usize].attrs |= attr::ACCESSED;
        Ok(())
    }

    /// Loads CS for a transfer to `sel:off` at privilege `cpl` (checks done by caller).
    pub fn set_cs(&mut self, sel: u16, d: Descriptor, cpl: u8) {
        let mut s = d.to_segment((sel & !3) | cpl as u16);
        s.attrs |= attr::ACCESSED;
        self.c.st.seg[Seg::Cs as usize] = s;
        self.c.st.cpl = cpl;
        self.c.st.update_mode();
        self.c.brk = true;
    }

    /// Loads CS in real or virtual-8086 mode.
    pub fn set_cs_real(&mut self, sel: u16) {
        let cs = &mut self.c.st.seg[Seg::Cs as usize];
        cs.selector = sel;
        cs.base = (sel as u64) << 4;
        if self.c.st.mode == Mode::V86 {
            cs.limit = 0xffff;
            cs.attrs = 0xf3;
        }
        self.c.brk = true;
    }

    /// Checks `off` against the limit of the code segment about to be loaded.
    fn check_target(&self, d: Descriptor, off: u64) -> R<()> {
        let long = self.c.st.efer & super::state::efer::LMA != 0 && d.attrs() & attr::L != 0;
        if long {
            if ((off as i64) << 16 >> 16) as u64 != off {
                return Err(Fault::gp(0));
            }
        } else if off > d.limit() as u64 {
            return Err(Fault::gp(0));
        }
        Ok(())
    }

    /// JMP far / CALL far to `sel:off`.
    pub fn far_transfer(&mut self, sel: u16, off: u64, opsize: u8, kind: FarKind) -> R<()> {
        if !self.c.st.protected() {
            let ret_ip = self.c.st.rip;
            let cs = self.c.st.seg[Seg::Cs as usize].selector;
            let off = off & size_mask(opsize);
            if off > self.c.st.seg[Seg::Cs as usize].limit as u64 {
                return Err(Fault::gp(0));
            }
            if kind == FarKind::Call {
                self.push(cs as u64, opsize)?;
                self.push(ret_ip, opsize)?;
            }
            self.set_cs_real(sel);
            self.c.st.rip = off;
            return Ok(());
        }
        if sel & !3 == 0 {
            return Err(Fault::gp(0));
        }
        let cpl = self.c.st.cpl;
        let rpl = (sel & 3) as u8;
        let d = self.read_descriptor(sel)?;
        if d.code() {
            if (d.conforming() && d.dpl() > cpl) || (!d.conforming() && (rpl > cpl || d.dpl() != cpl)) {
                return Err(Fault::gp(sel_err(sel)));
            }
            if !d.present() {
                return Err(Fault::np(sel_err(sel)));
            }
            let off = if opsize < 8 { off & size_mask(opsize) } else { off };
            self.check_target(d, off)?;
            if kind == FarKind::Call {
                let cs = self.c.st.seg[Seg::Cs as usize].selector;
                let ip = self.c.st.rip;
                self.push(cs as u64, opsize)?;
                self.push(ip, opsize)?;
            }
            self.set_accessed(sel, d)?;
            self.set_cs(sel, d, cpl);
            self.c.st.rip = off;
            return Ok(());
        }
        if d.s() {
            return Err(Fault::gp(sel_err(sel)));
        }
        match d.typ() {
            0x4 | 0xc => self.through_call_gate(sel, d, kind),
            0x5 | 0x9 | 0x1 => self.far_to_task(sel, d, kind),
            _ => Err(Fault::gp(sel_err(sel))),
        }
    }

    /// CALL/JMP through a call gate (SDM Vol. 3A §5.8.3-5.8.6).
    fn through_call_gate(&mut self, gate_sel: u16, g: Descriptor, kind: FarKind) -> R<()> {
        let cpl = self.c.st.cpl;
        let long = self.c.st.efer & super::state::efer::LMA != 0;
        if g.dpl() < cpl || g.dpl() < (gate_sel & 3) as u8 {
            return Err(Fault::gp(sel_err(gate_sel)));
        }
        if !g.present() {
            return Err(Fault::np(sel_err(gate_sel)));
        }
        let target_sel = ((g.0 >> 16) & 0xffff) as u16;
        let mut off = (g.0 & 0xffff) | ((g.0 >> 32) & 0xffff_0000);
        let gate32 = g.typ() == 0xc;
        if long {
            off |= self.read_descriptor_high(gate_sel)? << 32;
        } else if !gate32 {
            off &= 0xffff;
        }
        if target_sel & !3 == 0 {
            return Err(Fault::gp(0));
        }
        let d = self.read_descriptor(target_sel)?;
        if !d.code() || d.dpl() > cpl {
            return Err(Fault::gp(sel_err(target_sel)));
        }
        if kind == FarKind::Jmp && !d.conforming() && d.dpl() != cpl {
            return Err(Fault::gp(sel_err(target_sel)));
        }
        if !d.present() {
            return Err(Fault::np(sel_err(target_sel)));
        }
        self.check_target(d, off)?;
        let opsize: u8 = if long {
            8
        } else if gate32 {
            4
        } else {
            2
        };
        let old_cs = self.c.st.seg[Seg::Cs as usize].selector as u64;
        let old_ip = self.c.st.rip;
        if kind == FarKind::Call && !d.conforming() && d.dpl() < cpl {
            let new_cpl = d.dpl();
            let old_ss = self.c.st.seg[Seg::Ss as usize].selector as u64;
            let old_sp = self.c.st.gpr[4];
            let params = (g.0 >> 32) & 0x1f;
            let mut copied = [0u64; 31];
            if !long {
                for (i, p) in copied.iter_mut().enumerate().take(params as usize) {
                    *p = self.stack_peek((i as u64) * opsize as u64, opsize)?;
                }
            }
            self.switch_stack_from_tss(new_cpl, 0)?;
            self.push(old_ss, opsize)?;
            self.push(old_sp, opsize)?;
            if !long {
                for i in (0..params as usize).rev() {
                    self.push(copied[i], opsize)?;
                }
            }
            self.push(old_cs, opsize)?;
            self.push(old_ip, opsize)?;
            self.set_cs(target_sel, d, new_cpl);
        } else {
            if kind == FarKind::Call {
                self.push(old_cs, opsize)?;
                self.push(old_ip, opsize)?;
            }
            self.set_cs(target_sel, d, cpl);
        }
        self.c.st.rip = off;
        Ok(())
    }

    /// Loads SS:rSP for privilege level `dpl` from the current TSS (or IST entry `ist`
    /// in long mode) and makes them current.
    pub fn switch_stack_from_tss(&mut self, dpl: u8, ist: u8) -> R<()> {
        let tr = self.c.st.tr;
        if self.c.st.efer & super::state::efer::LMA != 0 {
            let off = if ist != 0 { 0x24 + (ist as u64 - 1) * 8 } else { 4 + dpl as u64 * 8 };
            if off + 7 > tr.limit as u64 {
                return Err(Fault::ts(sel_err(tr.selector)));
            }
            let rsp = self.read_lin_sys(tr.base + off, 8)?;
            let ss = Segment { base: 0, limit: 0xffff_ffff, selector: dpl as u16, attrs: 0xc093 | ((dpl as u16) << 5) };
            self.c.st.seg[Seg::Ss as usize] = ss;
            self.c.st.cpl = dpl;
            self.c.st.gpr[4] = rsp & !0xf;
            return Ok(());
        }
        let tss32 = tr.attrs & 0x8 != 0;
        let (sp_off, ss_off, size) = if tss32 {
            (4 + dpl as u64 * 8, 8 + dpl as u64 * 8, 4)
        } else {
            (2 + dpl as u64 * 4, 4 + dpl as u64 * 4, 2)
        };
        if ss_off + 1 > tr.limit as u64 {
            return Err(Fault::ts(sel_err(tr.selector)));
        }
        let sp = self.read_lin_sys(tr.base + sp_off, size)?;
        let ss_sel = self.read_lin_sys(tr.base + ss_off, 2)? as u16;
        if ss_sel & !3 == 0 || (ss_sel & 3) as u8 != dpl {
            return Err(Fault::ts(sel_err(ss_sel)));
        }
        let d = self.read_descriptor(ss_sel).map_err(|_| Fault::ts(sel_err(ss_sel)))?;
        if !d.s() || d.code() || d.typ() & 2 == 0 || d.dpl() != dpl {
            return Err(Fault::ts(sel_err(ss_sel)));
        }
        if !d.present() {
            return Err(Fault::ss(sel_err(ss_sel)));
        }
        self.set_accessed(ss_sel, d)?;
        self.c.st.seg[Seg::Ss as usize] = d.to_segment(ss_sel);
        self.c.st.cpl = dpl;
        let ssize = self.c.st.stack_size();
        self.set_gpr(4, ssize, sp);
        Ok(())
    }

    /// RETF [imm16].
    pub fn far_return(&mut self, opsize: u8, imm: u64) -> R<()> {
        if !self.c.st.protected() {
            let ip = self.stack_peek(0, opsize)?;
            let cs = self.stack_peek(opsize as u64, opsize)? as u16;
            if ip > self.c.st.seg[Seg::Cs as usize].limit as u64 {
                return Err(Fault::gp(0));
            }
            let sp = self.sp();
            self.set_sp(sp.wrapping_add(2 * opsize as u64 + imm));
            self.set_cs_real(cs);
            self.c.st.rip = ip;
            return Ok(());
        }
        let ip = self.stack_peek(0, opsize)?;
        let sel = self.stack_peek(opsize as u64, opsize)? as u16;
        let cpl = self.c.st.cpl;
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
        self.check_target(d, ip)?;
        if rpl == cpl {
            let sp = self.sp();
            self.set_sp(sp.wrapping_add(2 * opsize as u64 + imm));
            self.set_cs(sel, d, cpl);
            self.c.st.rip = ip;
            return Ok(());
        }
        let new_sp = self.stack_peek(2 * opsize as u64 + imm, opsize)?;
        let new_ss = self.stack_peek(3 * opsize as u64 + imm, opsize)? as u16;
        self.set_cs(sel, d, rpl);
        self.c.st.rip = ip;
        self.load_outer_stack(new_ss, new_sp.wrapping_add(imm), opsize)?;
        self.clear_stale_data_segments();
        Ok(())
    }

    /// Loads SS:rSP when returning to an outer privilege level (CPL already lowered).
    pub fn load_outer_stack(&mut self, ss: u16, sp: u64, opsize: u8) -> R<()> {
        if self.c.st.long64() && ss & !3 == 0 {
            let cpl = self.c.st.cpl;
            self.c.st.seg[Seg::Ss as usize] =
                Segment { base: 0, limit: 0xffff_ffff, selector: ss, attrs: 0xc093 | ((cpl as u16) << 5) };
        } else {
            self.load_seg(Seg::Ss, ss)?;
        }
        if opsize == 8 {
            self.c.st.gpr[4] = sp;
        } else {
            let ssize = self.c.st.stack_size();
            self.set_gpr(4, ssize.max(opsize), sp);
        }
        Ok(())
    }

    /// After a return to an outer level, data segment registers the new CPL may not use
    /// become null (SDM Vol. 2B "RET", step "FOR each of segment register").
    pub fn clear_stale_data_segments(&mut self) {
        let cpl = self.c.st.cpl;
        for seg in [Seg::Es, Seg::Ds, Seg::Fs, Seg::Gs] {
            let s = self.c.st.seg[seg as usize];
            let conforming_code = s.attrs & (attr::CODE | attr::DC) == attr::CODE | attr::DC;
            if s.present() && !conforming_code && s.dpl() < cpl {
                self.c.st.seg[seg as usize] = Segment { selector: 0, base: s.base, limit: s.limit, attrs: 0 };
            }
        }
    }
}
