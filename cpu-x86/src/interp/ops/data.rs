//! Data movement: MOV (GPR, memory, segment, control and debug registers), MOVZX MOVSX
//! MOVSXD, LEA, XCHG, XLAT, BSWAP, CMOVcc, SETcc, CBW/CWDE/CDQE, CWD/CDQ/CQO and
//! LDS/LES/LFS/LGS/LSS (SDM Vol. 2).

use super::operand::seg_of;
use crate::interp::cpu::Ctx;
use crate::interp::fault::{Fault, R};
use crate::interp::flags::size_mask;
use crate::interp::state::Seg;
use iced_x86::{Instruction, Mnemonic as M, OpKind, Register};

/// The condition nibble (0-15 in encoding order) of a conditional instruction.
pub(super) fn cc_of(ins: &Instruction) -> u8 {
    (ins.condition_code() as u8).wrapping_sub(1) & 0xf
}

impl Ctx<'_> {
    pub(super) fn mov(&mut self, ins: &Instruction) -> R<()> {
        let (k0, k1) = (ins.op0_kind(), ins.op1_kind());
        let r0 = if k0 == OpKind::Register { ins.op0_register() } else { Register::None };
        let r1 = if k1 == OpKind::Register { ins.op1_register() } else { Register::None };
        if r0.is_cr() || r1.is_cr() || r0.is_dr() || r1.is_dr() {
            return self.mov_control(ins);
        }
        if r0.is_segment_register() {
            let sel = self.read_op(ins, 1, 2)? as u16;
            let seg = seg_of(r0);
            if seg == Seg::Cs {
                return Err(Fault::ud());
            }
            self.load_seg(seg, sel)?;
            if seg == Seg::Ss {
                self.c.st.int_shadow = true;
                self.c.irq_check = true;
            }
            return Ok(());
        }
        if r1.is_segment_register() {
            let v = self.reg(r1);
            let size = if k0 == OpKind::Memory { 2 } else { self.op_size(ins, 0) };
            return self.write_op(ins, 0, size, v);
        }
        let size = self.op_size(ins, 0);
        let v = self.read_op(ins, 1, size)?;
        self.write_op(ins, 0, size, v)
    }

    pub(super) fn mov_extend(&mut self, ins: &Instruction) -> R<()> {
        let dsize = self.op_size(ins, 0);
        let ssize = self.op_size(ins, 1);
        let v = self.read_op(ins, 1, ssize)?;
        let v = if ins.mnemonic() == M::Movzx {
            v
        } else {
            let sh = 64 - ssize as u32 * 8;
            (((v << sh) as i64) >> sh) as u64
        };
        self.set_reg(ins.op0_register(), v & size_mask(dsize));
        Ok(())
    }

    pub(super) fn lea(&mut self, ins: &Instruction) -> R<()> {
        let (_, off) = self.ea(ins);
        let size = self.op_size(ins, 0);
        self.set_reg(ins.op0_register(), off & size_mask(size));
        Ok(())
    }

    pub(super) fn xchg(&mut self, ins: &Instruction) -> R<()> {
        let size = self.op_size(ins, 0);
        self.probe_op(ins, 0, size)?;
        self.probe_op(ins, 1, size)?;
        let a = self.read_op(ins, 0, size)?;
        let b = self.read_op(ins, 1, size)?;
        self.write_op(ins, 0, size, b)?;
        self.write_op(ins, 1, size, a)
    }

    pub(super) fn xlat(&mut self, ins: &Instruction) -> R<()> {
        let asize = match ins.memory_base() {
            Register::BX => 2,
            Register::EBX => 4,
            _ => 8,
        };
        let seg = seg_of(ins.memory_segment());
        let off = self.c.st.gpr[3].wrapping_add(self.c.st.gpr[0] & 0xff) & size_mask(asize);
        let v = self.read(seg, off, 1)?;
        self.set_reg(Register::AL, v);
        Ok(())
    }

    pub(super) fn bswap(&mut self, ins: &Instruction) -> R<()> {
        let r = ins.op0_register();
        let v = self.reg(r);
        let out = match r.size() {
            8 => v.swap_bytes(),
            4 => (v as u32).swap_bytes() as u64,
            // BSWAP of a 16-bit register is undefined; current CPUs write zero.
            _ => 0,
        };
        self.set_reg(r, out);
        Ok(())
    }

    pub(super) fn cmov(&mut self, ins: &Instruction) -> R<()> {
        let size = self.op_size(ins, 0);
        let v = self.read_op(ins, 1, size)?;
        if self.cond(cc_of(ins)) {
            self.set_reg(ins.op0_register(), v);
        } else if size == 4 {
            // A 32-bit CMOV zero-extends its destination even when it does not move.
            let r = ins.op0_register();
            let old = self.reg(r);
            self.set_reg(r, old);
        }
        Ok(())
    }

    pub(super) fn setcc(&mut self, ins: &Instruction) -> R<()> {
        let v = self.cond(cc_of(ins)) as u64;
        self.write_op(ins, 0, 1, v)
    }

    pub(super) fn sign_extend_acc(&mut self, ins: &Instruction) -> R<()> {
        let a = self.c.st.gpr[0];
        match ins.mnemonic() {
            M::Cbw => self.set_gpr(0, 2, a as u8 as i8 as i16 as u16 as u64),
            M::Cwde => self.set_gpr(0, 4, a as u16 as i16 as i32 as u32 as u64),
            M::Cdqe => self.set_gpr(0, 8, a as u32 as i32 as i64 as u64),
            M::Cwd => self.set_gpr(2, 2, if a & 0x8000 != 0 { 0xffff } else { 0 }),
            M::Cdq => self.set_gpr(2, 4, if a & 0x8000_0000 != 0 { 0xffff_ffff } else { 0 }),
            _ => self.set_gpr(2, 8, if a & (1 << 63) != 0 { u64::MAX } else { 0 }),
        }
        Ok(())
    }

    pub(super) fn load_far_pointer(&mut self, ins: &Instruction) -> R<()> {
        if ins.op1_kind() != OpKind::Memory {
            return Err(Fault::ud());
        }
        let size = self.op_size(ins, 0);
        let (seg, off) = self.ea(ins);
        let v = self.read(seg, off, size)?;
        let sel = self.read(seg, off.wrapping_add(size as u64), 2)?;
        let target = match ins.mnemonic() {
            M::Lds => Seg::Ds,
            M::Les => Seg::Es,
            M::Lfs => Seg::Fs,
            M::Lgs => Seg::Gs,
            _ => Seg::Ss,
        };
        self.load_seg(target, sel as u16)?;
        self.set_reg(ins.op0_register(), v);
        Ok(())
    }
}
