//! MUL, IMUL (one, two and three operands), DIV and IDIV, with #DE on a zero divisor
//! or a quotient that does not fit (SDM Vol. 2A "DIV", "IDIV", "MUL", "IMUL").

use crate::interp::cpu::Ctx;
use crate::interp::fault::{vec, Fault, R};
use crate::interp::flags::{size_mask, szp};
use crate::interp::state::fl;
use iced_x86::{Instruction, Mnemonic as M};

/// Sign-extends the low `size` bytes of `v` to 128 bits.
fn sext(v: u64, size: u8) -> i128 {
    let bits = size as u32 * 8;
    (((v as u128) << (128 - bits)) as i128) >> (128 - bits)
}

impl Ctx<'_> {
    /// Reads the double-width accumulator pair (AX for bytes, DX:AX, EDX:EAX, RDX:RAX).
    fn acc_pair(&self, size: u8) -> u128 {
        let g = &self.c.st.gpr;
        if size == 1 {
            (g[0] & 0xffff) as u128
        } else {
            let m = size_mask(size) as u128;
            ((g[2] as u128 & m) << (size as u32 * 8)) | (g[0] as u128 & m)
        }
    }

    /// Writes a double-width result: AX for bytes, else rDX:rAX.
    fn set_acc_pair(&mut self, size: u8, v: u128) {
        if size == 1 {
            self.set_gpr(0, 2, v as u64);
        } else {
            self.set_gpr(0, size, v as u64);
            self.set_gpr(2, size, (v >> (size as u32 * 8)) as u64);
        }
    }

    pub(super) fn muldiv(&mut self, ins: &Instruction) -> R<()> {
        let m = ins.mnemonic();
        if m == M::Imul && ins.op_count() > 1 {
            let size = self.op_size(ins, 0);
            let (a, b) = if ins.op_count() == 3 {
                (self.read_op(ins, 1, size)?, self.read_op(ins, 2, size)?)
            } else {
                (self.read_op(ins, 0, size)?, self.read_op(ins, 1, size)?)
            };
            let full = sext(a, size).wrapping_mul(sext(b, size));
            let low = full as u64 & size_mask(size);
            let overflow = sext(low, size) != full;
            self.set_reg(ins.op_register(0), low);
            self.mul_flags(size, low, overflow);
            return Ok(());
        }
        let size = self.op_size(ins, 0);
        let src = self.read_op(ins, 0, size)?;
        let bits = size as u32 * 8;
        let mask = size_mask(size) as u128;
        match m {
            M::Mul => {
                let a = (self.c.st.gpr[0] as u128) & mask;
                let full = a * src as u128;
                self.set_acc_pair(size, full);
                self.mul_flags(size, full as u64 & mask as u64, full >> bits != 0);
            }
            M::Imul => {
                let a = sext(self.c.st.gpr[0], size);
                let full = a.wrapping_mul(sext(src, size));
                self.set_acc_pair(size, full as u128);
                let low = full as u64 & mask as u64;
                self.mul_flags(size, low, sext(low, size) != full);
            }
            M::Div => {
                if src == 0 {
                    return Err(Fault::exc(vec::DE));
                }
                let n = self.acc_pair(size);
                let q = n / src as u128;
                let r = n % src as u128;
                if q > mask {
                    return Err(Fault::exc(vec::DE));
                }
                self.set_div_result(size, q as u64, r as u64);
            }
            _ => {
                if src == 0 {
                    return Err(Fault::exc(vec::DE));
                }
                let pair = self.acc_pair(size);
                let n = if size == 8 { pair as i128 } else { sext(pair as u64, size * 2) };
                let d = sext(src, size);
                let (q, r) = (n.wrapping_div(d), n.wrapping_rem(d));
                let max = (1i128 << (bits - 1)) - 1;
                if q > max || q < -max - 1 {
                    return Err(Fault::exc(vec::DE));
                }
                self.set_div_result(size, q as u64, r as u64);
            }
        }
        Ok(())
    }

    fn set_div_result(&mut self, size: u8, q: u64, r: u64) {
        if size == 1 {
            self.set_gpr(0, 2, (q & 0xff) | ((r & 0xff) << 8));
        } else {
            self.set_gpr(0, size, q);
            self.set_gpr(2, size, r);
        }
    }

    /// CF = OF = the result did not fit the low half; SF, ZF, PF (undefined) from the
    /// low half, AF cleared.
    fn mul_flags(&mut self, size: u8, low: u64, overflow: bool) {
        let v = szp(low, size) | if overflow { fl::CF | fl::OF } else { 0 };
        self.set_arith_flags(fl::ARITH, v);
    }
}

#[cfg(test)]
mod tests {
    use crate::interp::test_util::Machine;
    use iced_x86::code_asm::*;

    #[test]
    fn divide_error_goes_through_the_ivt_with_the_faulting_ip() {
        let mut a = CodeAssembler::new(16).unwrap();
        a.mov(ax, 100).unwrap();
        a.xor(bl, bl).unwrap();
        let mut div_label = a.create_label();
        a.set_label(&mut div_label).unwrap();
        a.div(bl).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::real(&mut a);
        // IVT[0] -> 0000:2000, where the handler halts.
        m.poke(0, &[0x00, 0x20, 0x00, 0x00]);
        m.poke(0x2000, &[0xf4]);
        m.run();
        assert_eq!(m.cpu.state().rip, 0x2001);
        // Pushed IP = the DIV (after MOV AX,imm16 (3) and XOR BL,BL (2)).
        assert_eq!(u16::from_le_bytes(m.peek::<2>(0x8000 - 6)), 0x1005);
    }

    #[test]
    fn imul_three_operand_sets_overflow() {
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(ecx, 0x4000_0000).unwrap();
        a.imul_3(eax, ecx, 4).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::protected32(&mut a);
        m.run();
        assert_eq!(m.gpr(0), 0);
        assert_ne!(m.cpu.rflags() & crate::interp::state::fl::OF, 0);
    }
}
