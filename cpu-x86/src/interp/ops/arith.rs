//! Integer arithmetic and logic: ADD ADC SUB SBB CMP AND OR XOR TEST, INC DEC NEG
//! NOT, XADD CMPXCHG CMPXCHG8B/16B, and the BCD adjusts DAA DAS AAA AAS AAM AAD.
//!
//! SDM Vol. 2 (instruction reference) for each mnemonic; flags per Vol. 1 App. A.

use crate::interp::cpu::Ctx;
use crate::interp::fault::{vec, Fault, R};
use crate::interp::flags::{size_mask, szp, FlagOp};
use crate::interp::state::fl;
use iced_x86::{Instruction, Mnemonic as M, OpKind, Register};

impl Ctx<'_> {
    /// Two-operand ALU forms: `op dst, src`.
    pub(super) fn alu2(&mut self, ins: &Instruction) -> R<()> {
        let m = ins.mnemonic();
        let size = self.op_size(ins, 0);
        let mask = size_mask(size);
        let writes = !matches!(m, M::Cmp | M::Test);
        if writes {
            self.probe_op(ins, 0, size)?;
        }
        let d = self.read_op(ins, 0, size)?;
        let s = self.read_op(ins, 1, size)?;
        let (op, res) = match m {
            M::Add => (FlagOp::Add, d.wrapping_add(s)),
            M::Adc => {
                if self.carry() {
                    (FlagOp::Adc1, d.wrapping_add(s).wrapping_add(1))
                } else {
                    (FlagOp::Add, d.wrapping_add(s))
                }
            }
            M::Sub | M::Cmp => (FlagOp::Sub, d.wrapping_sub(s)),
            M::Sbb => {
                if self.carry() {
                    (FlagOp::Sbb1, d.wrapping_sub(s).wrapping_sub(1))
                } else {
                    (FlagOp::Sub, d.wrapping_sub(s))
                }
            }
            M::And | M::Test => (FlagOp::Logic, d & s),
            M::Or => (FlagOp::Logic, d | s),
            _ => (FlagOp::Logic, d ^ s),
        };
        let res = res & mask;
        if writes {
            self.write_op(ins, 0, size, res)?;
        }
        self.set_lazy(op, size, d, s, res);
        Ok(())
    }

    /// One-operand forms: INC DEC NEG NOT.
    pub(super) fn alu1(&mut self, ins: &Instruction) -> R<()> {
        let size = self.op_size(ins, 0);
        let mask = size_mask(size);
        self.probe_op(ins, 0, size)?;
        let d = self.read_op(ins, 0, size)?;
        match ins.mnemonic() {
            M::Inc => {
                let r = d.wrapping_add(1) & mask;
                self.write_op(ins, 0, size, r)?;
                self.set_lazy(FlagOp::Inc, size, d, 1, r);
            }
            M::Dec => {
                let r = d.wrapping_sub(1) & mask;
                self.write_op(ins, 0, size, r)?;
                self.set_lazy(FlagOp::Dec, size, d, 1, r);
            }
            M::Neg => {
                let r = d.wrapping_neg() & mask;
                self.write_op(ins, 0, size, r)?;
                self.set_lazy(FlagOp::Sub, size, 0, d, r);
            }
            _ => self.write_op(ins, 0, size, !d & mask)?,
        }
        Ok(())
    }

    /// XADD, CMPXCHG, CMPXCHG8B, CMPXCHG16B.
    pub(super) fn atomic_rmw(&mut self, ins: &Instruction) -> R<()> {
        match ins.mnemonic() {
            M::Xadd => {
                let size = self.op_size(ins, 0);
                self.probe_op(ins, 0, size)?;
                let d = self.read_op(ins, 0, size)?;
                let s = self.read_op(ins, 1, size)?;
                let r = d.wrapping_add(s) & size_mask(size);
                // SRC = DEST, then DEST = sum (so XADD r, r leaves the sum); a memory
                // destination is written first because its address may use SRC.
                if ins.op0_kind() == OpKind::Memory {
                    self.write_op(ins, 0, size, r)?;
                    self.set_reg(ins.op_register(1), d);
                } else {
                    self.set_reg(ins.op_register(1), d);
                    self.write_op(ins, 0, size, r)?;
                }
                self.set_lazy(FlagOp::Add, size, d, s, r);
            }
            M::Cmpxchg => {
                let size = self.op_size(ins, 0);
                self.probe_op(ins, 0, size)?;
                let d = self.read_op(ins, 0, size)?;
                let acc = self.c.st.gpr[0] & size_mask(size);
                self.set_lazy(FlagOp::Sub, size, acc, d, acc.wrapping_sub(d) & size_mask(size));
                if acc == d {
                    let s = self.read_op(ins, 1, size)?;
                    self.write_op(ins, 0, size, s)?;
                } else {
                    // A memory destination is written back unchanged (SDM: the processor
                    // never produces a locked read without a locked write); a register
                    // destination is left alone, bits 63:32 included.
                    if ins.op0_kind() == OpKind::Memory {
                        self.write_op(ins, 0, size, d)?;
                    }
                    self.set_gpr(0, size, d);
                }
            }
            _ => {
                let wide = ins.mnemonic() == M::Cmpxchg16b;
                let half = if wide { 8 } else { 4 };
                let (seg, off) = self.ea(ins);
                if wide && off % 16 != 0 {
                    return Err(Fault::gp(0));
                }
                self.probe_write(seg, off, half * 2)?;
                let lo = self.read(seg, off, half)?;
                let hi = self.read(seg, off + half as u64, half)?;
                let m = size_mask(half);
                let (a, d) = (self.c.st.gpr[0] & m, self.c.st.gpr[2] & m);
                let equal = lo == a && hi == d;
                if equal {
                    let (b, c) = (self.c.st.gpr[3] & m, self.c.st.gpr[1] & m);
                    self.write(seg, off, half, b)?;
                    self.write(seg, off + half as u64, half, c)?;
                } else {
                    self.write(seg, off, half, lo)?;
                    self.write(seg, off + half as u64, half, hi)?;
                    self.set_gpr(0, half, lo);
                    self.set_gpr(2, half, hi);
                }
                self.set_arith_flags(fl::ZF, if equal { fl::ZF } else { 0 });
            }
        }
        Ok(())
    }

    /// Decimal and ASCII adjusts (16/32-bit modes only; #UD in 64-bit mode).
    pub(super) fn bcd(&mut self, ins: &Instruction) -> R<()> {
        if self.c.st.long64() {
            return Err(Fault::ud());
        }
        let f = self.flags();
        let ax = self.c.st.gpr[0] & 0xffff;
        let al = ax & 0xff;
        let cf = f & fl::CF != 0;
        let af = f & fl::AF != 0;
        match ins.mnemonic() {
            M::Daa | M::Das => {
                let add = ins.mnemonic() == M::Daa;
                let mut new_al = al;
                let mut new_cf = false;
                let mut new_af = false;
                let mut of = false;
                if al & 0xf > 9 || af {
                    let r = if add { al + 6 } else { al.wrapping_sub(6) & 0xff };
                    of |= if add { (al ^ r) & (6 ^ r) & 0x80 != 0 } else { (al ^ 6) & (al ^ r) & 0x80 != 0 };
                    new_al = r & 0xff;
                    new_cf = cf || if add { al + 6 > 0xff } else { al < 6 };
                    new_af = true;
                }
                if al > 0x99 || cf {
                    let before = new_al;
                    new_al = if add { (new_al + 0x60) & 0xff } else { new_al.wrapping_sub(0x60) & 0xff };
                    of |= if add {
                        (before ^ new_al) & (0x60 ^ new_al) & 0x80 != 0
                    } else {
                        (before ^ 0x60) & (before ^ new_al) & 0x80 != 0
                    };
                    new_cf = true;
                }
                self.set_reg(Register::AL, new_al);
                let v = szp(new_al, 1)
                    | if new_cf { fl::CF } else { 0 }
                    | if new_af { fl::AF } else { 0 }
                    | if of { fl::OF } else { 0 };
                self.set_arith_flags(fl::ARITH, v);
            }
            M::Aaa | M::Aas => {
                let add = ins.mnemonic() == M::Aaa;
                let adjust = al & 0xf > 9 || af;
                let (new_ax, al_full) = match (adjust, add) {
                    (false, _) => (ax, al),
                    (true, true) => (ax.wrapping_add(0x106), (al + 6) & 0xff),
                    (true, false) => (ax.wrapping_sub(0x106), al.wrapping_sub(6) & 0xff),
                };
                self.set_reg(Register::AX, new_ax & 0xff0f);
                let c = if adjust { fl::CF | fl::AF } else { 0 };
                // OF, SF, ZF and PF are undefined; this model reports them from AL after
                // the +/-6 and before the mask.
                self.set_arith_flags(fl::ARITH, c | szp(al_full, 1));
            }
            M::Aam => {
                let base = ins.immediate8() as u64;
                if base == 0 {
                    return Err(Fault::exc(vec::DE));
                }
                let (ah, al2) = (al / base, al % base);
                self.set_reg(Register::AX, (ah << 8) | al2);
                self.set_arith_flags(fl::ARITH, szp(al2, 1));
            }
            _ => {
                let base = ins.immediate8() as u64;
                let ah = ax >> 8;
                let r = al.wrapping_add(ah.wrapping_mul(base)) & 0xff;
                self.set_reg(Register::AX, r);
                // Flags as an 8-bit ADD of AL and AH*base (the undefined ones included).
                let src = ah.wrapping_mul(base) & 0xff;
                self.set_lazy(FlagOp::Add, 1, al, src, r);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::interp::state::fl;
    use crate::interp::test_util::Machine;
    use iced_x86::code_asm::*;

    #[test]
    fn add_adc_sbb_carry_chain() {
        let mut a = CodeAssembler::new(16).unwrap();
        a.mov(ax, 0xffff).unwrap();
        a.add(ax, 1).unwrap(); // 0, CF=1 ZF=1
        a.mov(bx, 5).unwrap();
        a.adc(bx, 0).unwrap(); // 6, CF=0
        a.stc().unwrap();
        a.mov(cx, 0).unwrap();
        a.sbb(cx, 0).unwrap(); // 0 - 0 - 1 = 0xFFFF, CF=1, SF=1
        a.hlt().unwrap();
        let mut m = Machine::real(&mut a);
        m.run();
        assert_eq!((m.gpr(0) & 0xffff, m.gpr(3) & 0xffff, m.gpr(1) & 0xffff), (0, 6, 0xffff));
        let f = m.cpu.rflags();
        assert_eq!(f & (fl::CF | fl::SF | fl::ZF), fl::CF | fl::SF);
    }

    #[test]
    fn daa_after_packed_bcd_add() {
        // SDM DAA example: 79h + 35h = AEh; DAA gives 14h with CF=1.
        let mut a = CodeAssembler::new(16).unwrap();
        a.mov(al, 0x79).unwrap();
        a.add(al, 0x35).unwrap();
        a.daa().unwrap();
        a.hlt().unwrap();
        let mut m = Machine::real(&mut a);
        m.run();
        assert_eq!(m.gpr(0) & 0xff, 0x14);
        assert_ne!(m.cpu.rflags() & fl::CF, 0);
    }

    #[test]
    fn failed_cmpxchg_leaves_a_64_bit_register_destination_alone() {
        // EAX != ECX: EAX is loaded from ECX (RAX zero-extended), RCX is not written.
        let mut a = CodeAssembler::new(64).unwrap();
        a.mov(rax, 0xf3df_513e_6744_8406u64).unwrap();
        a.mov(rcx, 0x6662_ed50_1153_ef44u64).unwrap();
        a.cmpxchg(ecx, ebx).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::long64(&mut a);
        m.run();
        assert_eq!(m.gpr(1), 0x6662_ed50_1153_ef44);
        assert_eq!(m.gpr(0), 0x1153_ef44);
    }

    #[test]
    fn xadd_addresses_memory_with_the_source_register_before_updating_it() {
        // XADD [EAX], EAX: the sum goes to the old address, EAX gets the old memory.
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(dword_ptr(0x2000), 0x10).unwrap();
        a.mov(eax, 0x2000).unwrap();
        a.xadd(dword_ptr(eax), eax).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::protected32(&mut a);
        m.run();
        assert_eq!(m.gpr(0), 0x10);
        assert_eq!(u32::from_le_bytes(m.peek(0x2000)), 0x2010);
        assert_eq!(u32::from_le_bytes(m.peek(0x10)), 0, "nothing written at the new EAX");
    }

    #[test]
    fn xadd_of_a_register_with_itself_leaves_the_sum() {
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(ecx, 0x4000_0001).unwrap();
        a.xadd(ecx, ecx).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::protected32(&mut a);
        m.run();
        assert_eq!(m.gpr(1), 0x8000_0002);
    }

    #[test]
    fn cmpxchg_and_xadd_32() {
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(dword_ptr(0x2000), 7).unwrap();
        a.mov(eax, 7).unwrap();
        a.mov(ecx, 9).unwrap();
        a.cmpxchg(dword_ptr(0x2000), ecx).unwrap(); // equal: [2000]=9, ZF=1
        a.mov(edx, 1).unwrap();
        a.xadd(dword_ptr(0x2000), edx).unwrap(); // [2000]=10, edx=9
        a.hlt().unwrap();
        let mut m = Machine::protected32(&mut a);
        m.run();
        assert_eq!(u32::from_le_bytes(m.peek::<4>(0x2000)), 10);
        assert_eq!(m.gpr(2), 9);
    }
}
