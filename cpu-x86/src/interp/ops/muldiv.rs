//! MUL, IMUL (one, two and three operands), DIV and IDIV, with #DE on a zero divisor
//! or a quotient that does not fit (SDM Vol. 2A "DIV", "IDIV", "MUL", "IMUL").

use crate::interp::cpu::Ctx;
use crate::interp::fault::{vec, Fault, R};
use crate::interp::flags::{size_mask, szp};
use crate::interp::state::fl;
use iced_x86::{Instruction, Mnemonic as M};

/// The one-operand multiply and divide instructions on the accumulator pair.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Widening {
    /// MUL: unsigned rDX:rAX = rAX * src.
    Mul,
    /// IMUL: signed rDX:rAX = rAX * src.
    Imul,
    /// DIV: unsigned rAX, rDX = rDX:rAX / src, % src.
    Div,
    /// IDIV: signed rAX, rDX = rDX:rAX / src, % src.
    Idiv,
}

/// Sign-extends the low `size` bytes of `v` to 128 bits.
#[inline(always)]
fn sext(v: u64, size: u8) -> i128 {
    let bits = size as u32 * 8;
    (((v as u128) << (128 - bits)) as i128) >> (128 - bits)
}

impl Ctx<'_> {
    /// Reads the double-width accumulator pair (AX for bytes, DX:AX, EDX:EAX, RDX:RAX).
    #[inline(always)]
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
    #[inline(always)]
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
        let size = self.op_size(ins, 0);
        if m == M::Imul && ins.op_count() > 1 {
            let (a, b) = if ins.op_count() == 3 {
                (self.read_op(ins, 1, size)?, self.read_op(ins, 2, size)?)
            } else {
                (self.read_op(ins, 0, size)?, self.read_op(ins, 1, size)?)
            };
            let low = self.imul_truncated(size, a, b);
            self.set_reg(ins.op_register(0), low);
            return Ok(());
        }
        let src = self.read_op(ins, 0, size)?;
        let kind = match m {
            M::Mul => Widening::Mul,
            M::Imul => Widening::Imul,
            M::Div => Widening::Div,
            _ => Widening::Idiv,
        };
        self.widening(kind, size, src)
    }

    /// IMUL of two or three operands: the low `size` bytes of `a * b` (signed), with
    /// CF = OF = the product did not fit; the caller writes the result.
    #[inline(always)]
    pub(crate) fn imul_truncated(&mut self, size: u8, a: u64, b: u64) -> u64 {
        let full = sext(a, size).wrapping_mul(sext(b, size));
        let low = full as u64 & size_mask(size);
        self.mul_flags(size, low, sext(low, size) != full);
        low
    }

    /// The one-operand forms on the accumulator pair: MUL and IMUL widen into it, DIV
    /// and IDIV divide it by `src`, with #DE for a zero divisor or a quotient that does
    /// not fit. Below 64 bits the arithmetic stays in 64-bit registers.
    #[inline(always)]
    pub(crate) fn widening(&mut self, kind: Widening, size: u8, src: u64) -> R<()> {
        let bits = size as u32 * 8;
        let mask = size_mask(size);
        match kind {
            Widening::Mul => {
                let full = (self.c.st.gpr[0] & mask) as u128 * src as u128;
                self.set_acc_pair(size, full);
                self.mul_flags(size, full as u64 & mask, full >> bits != 0);
            }
            Widening::Imul => {
                let full = sext(self.c.st.gpr[0], size).wrapping_mul(sext(src, size));
                self.set_acc_pair(size, full as u128);
                let low = full as u64 & mask;
                self.mul_flags(size, low, sext(low, size) != full);
            }
            Widening::Div => {
                if src == 0 {
                    return Err(Fault::exc(vec::DE));
                }
                let n = self.acc_pair(size);
                let (q, r) = if size < 8 {
                    let n = n as u64;
                    (n / src, n % src)
                } else {
                    let (q, r) = (n / src as u128, n % src as u128);
                    if q > mask as u128 {
                        return Err(Fault::exc(vec::DE));
                    }
                    (q as u64, r as u64)
                };
                if q > mask {
                    return Err(Fault::exc(vec::DE));
                }
                self.set_div_result(size, q, r);
            }
            Widening::Idiv => {
                if src == 0 {
                    return Err(Fault::exc(vec::DE));
                }
                let pair = self.acc_pair(size);
                let d = sext(src, size);
                let max = (1i128 << (bits - 1)) - 1;
                let (q, r) = if size < 8 {
                    let (n, d) = (sext(pair as u64, size * 2) as i64, d as i64);
                    // Only i64::MIN / -1 wraps, and its true quotient 2^63 is out of
                    // range for a 32-bit IDIV anyway, as the wrapped one is.
                    (n.wrapping_div(d) as i128, n.wrapping_rem(d) as i128)
                } else {
                    let n = pair as i128;
                    (n.wrapping_div(d), n.wrapping_rem(d))
                };
                if q > max || q < -max - 1 {
                    return Err(Fault::exc(vec::DE));
                }
                self.set_div_result(size, q as u64, r as u64);
            }
        }
        Ok(())
    }

    #[inline(always)]
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
    #[inline(always)]
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

    /// Runs `div`/`idiv` of EDX:EAX (or DX:AX, AX) by ECX of `size` bytes in
    /// real-mode code; returns (EAX, EDX) or `None` when #DE was raised.
    fn divide(signed: bool, size: u8, dividend: u64, divisor: u32) -> Option<(u64, u64)> {
        let mut a = CodeAssembler::new(16).unwrap();
        a.mov(edx, (dividend >> 32) as u32).unwrap();
        a.mov(eax, dividend as u32).unwrap();
        if size == 2 {
            a.mov(dx, (dividend >> 16) as u32 & 0xffff).unwrap();
            a.mov(eax, dividend as u32 & 0xffff).unwrap();
        }
        a.mov(ecx, divisor).unwrap();
        match (signed, size) {
            (false, 1) => a.div(cl).unwrap(),
            (false, 2) => a.div(cx).unwrap(),
            (false, _) => a.div(ecx).unwrap(),
            (true, 1) => a.idiv(cl).unwrap(),
            (true, 2) => a.idiv(cx).unwrap(),
            (true, _) => a.idiv(ecx).unwrap(),
        }
        a.hlt().unwrap();
        let mut m = Machine::real(&mut a);
        // IVT[0] -> 0000:2000, where the handler halts.
        m.poke(0, &[0x00, 0x20, 0x00, 0x00]);
        m.poke(0x2000, &[0xf4]);
        m.run();
        (m.cpu.last_exception.is_none()).then(|| (m.gpr(0), m.gpr(2)))
    }

    #[test]
    fn division_results_and_overflow_at_every_width() {
        // 8 bits: AX / CL -> AL quotient, AH remainder.
        assert_eq!(divide(false, 1, 1000, 7), Some((142 | (6 << 8), 0)));
        assert_eq!(divide(false, 1, 0x1000, 2), None, "quotient 0x800 does not fit a byte");
        assert_eq!(
            divide(true, 1, (-703i16 as u16) as u64, 7),
            Some(((-100i8 as u8) as u64 | ((-3i8 as u8) as u64) << 8, 0))
        );
        assert_eq!(divide(true, 1, (-1000i16 as u16) as u64, 7), None, "-142 does not fit a byte");
        // 16 bits: DX:AX / CX.
        assert_eq!(divide(false, 2, 0x0001_0000, 3), Some((0x5555, 1)));
        assert_eq!(divide(true, 2, 0x8000_0000, 0xffff), None, "-2^31 / -1 does not fit a word");
        // 32 bits: EDX:EAX / ECX, including the one dividend that wraps in 64 bits.
        assert_eq!(divide(false, 4, 0x1_0000_0001, 2), Some((0x8000_0000, 1)));
        assert_eq!(divide(true, 4, (-7i64) as u64, 2), Some(((-3i32) as u32 as u64, (-1i32) as u32 as u64)));
        assert_eq!(divide(true, 4, 0x8000_0000_0000_0000, 0xffff_ffff), None, "-2^63 / -1");
        assert_eq!(divide(true, 4, 0x0000_0000_8000_0000, 1), None, "2^31 does not fit");
        assert_eq!(divide(true, 4, 0x0000_0000_8000_0000, 0xffff_ffff), Some((0x8000_0000, 0)), "-2^31 does");
        assert_eq!(divide(false, 4, 5, 0), None, "divide by zero");
    }
}
