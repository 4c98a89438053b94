//! Control transfers: Jcc, JMP, CALL, RET (near and far), LOOP/LOOPE/LOOPNE,
//! JCXZ/JECXZ/JRCXZ, INT n/INT3/INTO/INT1, BOUND, IRET and HLT (SDM Vol. 2).

use super::data::cc_of;
use crate::interp::cpu::Ctx;
use crate::interp::fault::{vec, Fault, R};
use crate::interp::flags::size_mask;
use crate::interp::interrupt::EventKind;
use crate::interp::state::{fl, Mode, Seg};
use iced_x86::{Code, Instruction, Mnemonic as M, OpKind};

/// How a far transfer was requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FarKind {
    /// JMP far.
    Jmp,
    /// CALL far.
    Call,
}

/// Operand size of a CALL/JMP/RET form.
fn branch_opsize(code: Code) -> u8 {
    use Code::*;
    match code {
        Call_rel16 | Jmp_rel16 | Jmp_rel8_16 | Call_rm16 | Jmp_rm16 | Call_ptr1616 | Jmp_ptr1616 | Call_m1616
        | Jmp_m1616 | Retnw | Retnw_imm16 | Retfw | Retfw_imm16 => 2,
        Call_rel32_32 | Jmp_rel32_32 | Jmp_rel8_32 | Call_rm32 | Jmp_rm32 | Call_ptr1632 | Jmp_ptr1632 | Call_m1632
        | Jmp_m1632 | Retnd | Retnd_imm16 | Retfd | Retfd_imm16 => 4,
        _ => 8,
    }
}

/// Counter size of a LOOP form.
fn loop_counter(code: Code) -> u8 {
    use Code::*;
    match code {
        Loopne_rel8_16_CX | Loopne_rel8_32_CX | Loope_rel8_16_CX | Loope_rel8_32_CX | Loop_rel8_16_CX
        | Loop_rel8_32_CX | Jcxz_rel8_16 | Jcxz_rel8_32 => 2,
        Loopne_rel8_16_ECX | Loopne_rel8_32_ECX | Loopne_rel8_64_ECX | Loope_rel8_16_ECX | Loope_rel8_32_ECX
        | Loope_rel8_64_ECX | Loop_rel8_16_ECX | Loop_rel8_32_ECX | Loop_rel8_64_ECX | Jecxz_rel8_16
        | Jecxz_rel8_32 | Jecxz_rel8_64 => 4,
        _ => 8,
    }
}

impl Ctx<'_> {
    /// Sets RIP to a near branch target after the CS limit (or canonical) check.
    pub fn near_jump(&mut self, target: u64) -> R<()> {
        let st = &self.c.st;
        if st.mode == Mode::Long64 {
            if ((target as i64) << 16 >> 16) as u64 != target {
                return Err(Fault::gp(0));
            }
        } else if target > st.seg[Seg::Cs as usize].limit as u64 {
            return Err(Fault::gp(0));
        }
        self.c.st.rip = target;
        Ok(())
    }

    pub(super) fn jcc(&mut self, ins: &Instruction) -> R<()> {
        if self.cond(cc_of(ins)) {
            self.near_jump(ins.near_branch_target())?;
        }
        Ok(())
    }

    /// Reads the far pointer operand of JMP/CALL far (immediate or memory).
    fn far_pointer(&mut self, ins: &Instruction, opsize: u8) -> R<(u16, u64)> {
        match ins.op0_kind() {
            OpKind::FarBranch16 => Ok((ins.far_branch_selector(), ins.far_branch16() as u64)),
            OpKind::FarBranch32 => Ok((ins.far_branch_selector(), ins.far_branch32() as u64)),
            OpKind::Memory => {
                let (seg, off) = self.ea(ins);
                let o = self.read(seg, off, opsize)?;
                let s = self.read(seg, off.wrapping_add(opsize as u64), 2)?;
                Ok((s as u16, o))
            }
            _ => Err(Fault::ud()),
        }
    }

    pub(super) fn jmp(&mut self, ins: &Instruction) -> R<()> {
        let opsize = branch_opsize(ins.code());
        match ins.code() {
            Code::Jmp_ptr1616 | Code::Jmp_ptr1632 | Code::Jmp_m1616 | Code::Jmp_m1632 | Code::Jmp_m1664 => {
                let (sel, off) = self.far_pointer(ins, opsize)?;
                self.far_transfer(sel, off, opsize, FarKind::Jmp)
            }
            Code::Jmp_rm16 | Code::Jmp_rm32 | Code::Jmp_rm64 => {
                let t = self.read_op(ins, 0, opsize)?;
                self.near_jump(t)
            }
            _ => self.near_jump(ins.near_branch_target()),
        }
    }

    pub(super) fn call(&mut self, ins: &Instruction) -> R<()> {
        let opsize = branch_opsize(ins.code());
        let ret = self.c.st.rip;
        match ins.code() {
            Code::Call_ptr1616 | Code::Call_ptr1632 | Code::Call_m1616 | Code::Call_m1632 | Code::Call_m1664 => {
                let (sel, off) = self.far_pointer(ins, opsize)?;
                self.far_transfer(sel, off, opsize, FarKind::Call)
            }
            code => {
                let t = if matches!(code, Code::Call_rm16 | Code::Call_rm32 | Code::Call_rm64) {
                    self.read_op(ins, 0, opsize)?
                } else {
                    ins.near_branch_target()
                };
                let st = &self.c.st;
                let limit_ok = st.mode == Mode::Long64 || t <= st.seg[Seg::Cs as usize].limit as u64;
                if !limit_ok {
                    return Err(Fault::gp(0));
                }
                self.push(ret & size_mask(opsize), opsize)?;
                self.near_jump(t)
            }
        }
    }

    pub(super) fn ret(&mut self, ins: &Instruction) -> R<()> {
        let opsize = branch_opsize(ins.code());
        let imm = if ins.op_count() > 0 { ins.immediate16() as u64 } else { 0 };
        if ins.mnemonic() == M::Retf {
            return self.far_return(opsize, imm);
        }
        let t = self.pop(opsize)?;
        self.near_jump(t)?;
        let sp = self.sp();
        self.set_sp(sp.wrapping_add(imm));
        Ok(())
    }

    pub(super) fn loop_jcxz(&mut self, ins: &Instruction) -> R<()> {
        let csize = loop_counter(ins.code());
        let m = size_mask(csize);
        let taken = match ins.mnemonic() {
            M::Jcxz | M::Jecxz | M::Jrcxz => self.c.st.gpr[1] & m == 0,
            mn => {
                let cx = (self.c.st.gpr[1] & m).wrapping_sub(1) & m;
                self.set_gpr(1, csize, cx);
                let zf = if mn == M::Loop { true } else { self.flags() & fl::ZF != 0 };
                cx != 0
                    && match mn {
                        M::Loope => zf,
                        M::Loopne => !zf,
                        _ => true,
                    }
            }
        };
        if taken {
            self.near_jump(ins.near_branch_target())?;
        }
        Ok(())
    }

    pub(super) fn soft_int(&mut self, ins: &Instruction) -> R<()> {
        match ins.mnemonic() {
            M::Int => self.raise_software(ins.immediate8(), EventKind::SoftInt),
            M::Int3 => self.raise_software(vec::BP, EventKind::SoftException),
            M::Int1 => self.raise_software(vec::DB, EventKind::Icebp),
            M::Into => {
                if self.c.st.long64() {
                    return Err(Fault::ud());
                }
                if self.flags() & fl::OF != 0 {
                    self.raise_software(vec::OF, EventKind::SoftException)?;
                }
                Ok(())
            }
            _ => {
                if self.c.st.long64() || ins.op1_kind() != OpKind::Memory {
                    return Err(Fault::ud());
                }
                let size = self.op_size(ins, 0);
                let idx = self.reg(ins.op0_register());
                let (seg, off) = self.ea(ins);
                let lo = self.read(seg, off, size)?;
                let hi = self.read(seg, off.wrapping_add(size as u64), size)?;
                let sh = 64 - size as u32 * 8;
                let s = |v: u64| ((v << sh) as i64) >> sh;
                if s(idx) < s(lo) || s(idx) > s(hi) {
                    return Err(Fault::exc(vec::BR));
                }
                Ok(())
            }
        }
    }

    pub(super) fn hlt(&mut self) -> R<()> {
        if self.c.st.cpl != 0 {
            return Err(Fault::gp(0));
        }
        self.c.st.halted = true;
        self.c.irq_check = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::interp::test_util::Machine;
    use iced_x86::code_asm::*;

    #[test]
    fn call_ret_and_loop() {
        let mut a = CodeAssembler::new(16).unwrap();
        let mut func = a.create_label();
        let mut top = a.create_label();
        a.xor(ax, ax).unwrap();
        a.mov(cx, 4).unwrap();
        a.set_label(&mut top).unwrap();
        a.call(func).unwrap();
        a.loop_(top).unwrap();
        a.hlt().unwrap();
        a.set_label(&mut func).unwrap();
        a.add(ax, 3).unwrap();
        a.ret().unwrap();
        let mut m = Machine::real(&mut a);
        m.run();
        assert_eq!(m.gpr(0) & 0xffff, 12);
        assert_eq!(m.gpr(4) & 0xffff, 0x8000, "stack balanced");
    }

    #[test]
    fn far_jump_in_real_mode_reloads_cs_base() {
        let mut a = CodeAssembler::new(16).unwrap();
        a.jmp_far(0x0200, 0x0010).unwrap();
        let mut m = Machine::real(&mut a);
        m.poke(0x2010, &[0xf4]);
        m.run();
        assert_eq!(m.cpu.state().seg[1].base, 0x2000);
        assert_eq!(m.cpu.state().rip, 0x11);
    }
}
