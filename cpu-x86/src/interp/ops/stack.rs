//! The stack: PUSH POP (registers, memory, immediates, segment registers), PUSHA POPA,
//! PUSHF POPF, ENTER LEAVE (SDM Vol. 2B; Vol. 1 §6.2 for stack address size).

use super::operand::seg_of;
use crate::interp::cpu::Ctx;
use crate::interp::fault::{Fault, R};
use crate::interp::flags::size_mask;
use crate::interp::state::{fl, Mode, Seg};
use iced_x86::{Code, Instruction, Mnemonic as M, OpKind};

impl Ctx<'_> {
    /// The stack pointer masked to the stack address size.
    #[inline]
    pub fn sp(&self) -> u64 {
        self.c.st.gpr[4] & size_mask(self.c.st.stack_size())
    }

    /// Sets the stack pointer, keeping the bits above the stack address size.
    #[inline]
    pub fn set_sp(&mut self, v: u64) {
        let size = self.c.st.stack_size();
        self.set_gpr(4, size, v);
    }

    /// Pushes `size` bytes.
    pub fn push(&mut self, v: u64, size: u8) -> R<()> {
        let sp = self.sp().wrapping_sub(size as u64) & size_mask(self.c.st.stack_size());
        self.write(Seg::Ss, sp, size, v)?;
        self.set_sp(sp);
        Ok(())
    }

    /// Pops `size` bytes.
    pub fn pop(&mut self, size: u8) -> R<u64> {
        let sp = self.sp();
        let v = self.read(Seg::Ss, sp, size)?;
        self.set_sp(sp.wrapping_add(size as u64));
        Ok(v)
    }

    /// Reads `size` bytes at SP + `offset` without popping.
    pub fn stack_peek(&mut self, offset: u64, size: u8) -> R<u64> {
        let sp = self.sp().wrapping_add(offset) & size_mask(self.c.st.stack_size());
        self.read(Seg::Ss, sp, size)
    }

    pub(super) fn push_pop(&mut self, ins: &Instruction) -> R<()> {
        let size = ins.stack_pointer_increment().unsigned_abs() as u8;
        match ins.mnemonic() {
            M::Push => {
                let v = if ins.op0_kind() == OpKind::Register && ins.op0_register().is_segment_register() {
                    self.reg(ins.op0_register())
                } else {
                    self.read_op(ins, 0, size)?
                };
                self.push(v, size)
            }
            M::Pop => {
                if ins.op0_kind() == OpKind::Register && ins.op0_register().is_segment_register() {
                    let seg = seg_of(ins.op0_register());
                    let v = self.stack_peek(0, size)?;
                    self.load_seg(seg, v as u16)?;
                    let sp = self.sp();
                    self.set_sp(sp.wrapping_add(size as u64));
                    if seg == Seg::Ss {
                        self.c.st.int_shadow = true;
                        self.c.irq_check = true;
                    }
                    return Ok(());
                }
                let v = self.pop(size)?;
                self.write_op(ins, 0, size, v)
            }
            M::Pusha | M::Pushad => {
                let n = size / 8;
                let sp = self.sp();
                let start = sp.wrapping_sub(size as u64) & size_mask(self.c.st.stack_size());
                for (i, r) in [0usize, 1, 2, 3, 4, 5, 6, 7].into_iter().enumerate() {
                    let v = if r == 4 { sp } else { self.c.st.gpr[r] };
                    let addr = sp.wrapping_sub(((i + 1) * n as usize) as u64) & size_mask(self.c.st.stack_size());
                    self.write(Seg::Ss, addr, n, v & size_mask(n))?;
                }
                self.set_sp(start);
                Ok(())
            }
            _ => {
                let n = size / 8;
                let sp = self.sp();
                let mut vals = [0u64; 8];
                for (i, v) in vals.iter_mut().enumerate() {
                    let addr = sp.wrapping_add((i * n as usize) as u64) & size_mask(self.c.st.stack_size());
                    *v = self.read(Seg::Ss, addr, n)?;
                }
                for (i, r) in [7usize, 6, 5, 4, 3, 2, 1, 0].into_iter().enumerate() {
                    if r != 4 {
                        self.set_gpr(r, n, vals[i]);
                    }
                }
                self.set_sp(sp.wrapping_add(size as u64));
                Ok(())
            }
        }
    }

    pub(super) fn push_pop_flags(&mut self, ins: &Instruction) -> R<()> {
        let size = ins.stack_pointer_increment().unsigned_abs() as u8;
        let v86_trap = self.c.st.mode == Mode::V86 && self.c.st.iopl() < 3;
        if v86_trap {
            return Err(Fault::gp(0));
        }
        match ins.mnemonic() {
            M::Pushf | M::Pushfd | M::Pushfq => {
                let f = self.flags() & !(fl::VM | fl::RF);
                self.push(f & size_mask(size), size)
            }
            _ => {
                let v = self.pop(size)?;
                self.write_flags(v, size, false);
                Ok(())
            }
        }
    }

    /// Loads RFLAGS from POPF/IRET data of `size` bytes with the privilege rules of
    /// SDM Vol. 2B "POPF": IOPL only at CPL 0, IF only at CPL <= IOPL; VM, VIF and VIP
    /// are never changed by POPF (`iret` passes `true` to allow what IRET may change).
    pub fn write_flags(&mut self, v: u64, size: u8, iret: bool) {
        let old = self.flags();
        let st = &self.c.st;
        let mut changeable = fl::WRITABLE & !(fl::VM | fl::VIF | fl::VIP);
        if !iret {
            changeable &= !fl::RF;
        }
        if st.protected() || st.mode == Mode::V86 {
            if st.cpl > 0 {
                changeable &= !fl::IOPL;
            }
            if st.cpl > st.iopl() {
                changeable &= !fl::IF;
            }
        }
        changeable &= size_mask(size);
        let new = (old & !changeable) | (v & changeable) | fl::FIXED1;
        let new = if !iret { new & !fl::RF } else { new };
        self.c.st.rflags = new;
        if new & fl::IF != 0 && old & fl::IF == 0 {
            self.c.irq_check = true;
        }
        if (new ^ old) & (fl::TF | fl::AC) != 0 {
            self.c.brk = true;
        }
    }

    pub(super) fn enter_leave(&mut self, ins: &Instruction) -> R<()> {
        let size = match ins.code() {
            Code::Leavew | Code::Enterw_imm16_imm8 => 2,
            Code::Leaved | Code::Enterd_imm16_imm8 => 4,
            _ => 8,
        };
        let ssize = self.c.st.stack_size();
        let smask = size_mask(ssize);
        if ins.mnemonic() == M::Leave {
            let bp = self.c.st.gpr[5] & smask;
            let v = self.read(Seg::Ss, bp, size)?;
            self.set_sp(bp.wrapping_add(size as u64));
            self.set_gpr(5, size, v);
            return Ok(());
        }
        let opsize = size;
        let alloc = ins.immediate16() as u64;
        let level = (ins.immediate8_2nd() & 0x1f) as u64;
        let bp = self.c.st.gpr[5];
        self.push(bp, opsize)?;
        let frame = self.sp();
        let mut new_bp = bp & smask;
        if level > 0 {
            for _ in 1..level {
                new_bp = new_bp.wrapping_sub(opsize as u64) & smask;
                let v = self.read(Seg::Ss, new_bp, opsize)?;
                self.push(v, opsize)?;
            }
            self.push(frame, opsize)?;
        }
        let new_sp = self.sp().wrapping_sub(alloc) & smask;
        self.set_gpr(5, opsize, frame);
        self.set_sp(new_sp);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::interp::test_util::Machine;
    use iced_x86::code_asm::*;

    #[test]
    fn enter_with_nesting_and_leave() {
        let mut a = CodeAssembler::new(16).unwrap();
        a.mov(bp, 0x7000).unwrap();
        a.enter(8, 1).unwrap();
        a.mov(dx, sp).unwrap();
        a.mov(si, bp).unwrap();
        a.leave().unwrap();
        a.hlt().unwrap();
        let mut m = Machine::real(&mut a);
        m.run();
        // push BP (SP=7FFE), frame=7FFE, level 1 pushes the frame (7FFC), then SP-=8.
        assert_eq!((m.gpr(6) & 0xffff, m.gpr(2) & 0xffff), (0x7ffe, 0x7ff4));
        assert_eq!(m.gpr(5) & 0xffff, 0x7000);
        assert_eq!(m.gpr(4) & 0xffff, 0x8000);
    }

    #[test]
    fn pusha_popa_round_trip_and_push_sp_value() {
        let mut a = CodeAssembler::new(16).unwrap();
        a.mov(ax, 1).unwrap();
        a.mov(di, 8).unwrap();
        a.pusha().unwrap();
        a.mov(ax, 0).unwrap();
        a.mov(di, 0).unwrap();
        a.popa().unwrap();
        a.push(sp).unwrap();
        a.pop(bx).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::real(&mut a);
        m.run();
        assert_eq!((m.gpr(0) & 0xffff, m.gpr(7) & 0xffff), (1, 8));
        assert_eq!(m.gpr(3) & 0xffff, 0x8000, "PUSH SP pushes the value before the push");
    }
}
