//! Shifts and rotates: ROL ROR RCL RCR SHL/SAL SHR SAR, SHLD SHRD (SDM Vol. 2B
//! "RCL/RCR/ROL/ROR", "SAL/SAR/SHL/SHR", "SHLD", "SHRD"). The count is masked to five
//! bits (six for 64-bit operands); a masked count of zero changes nothing.

use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use crate::interp::flags::{size_mask, szp};
use crate::interp::state::fl;
use iced_x86::{Instruction, Mnemonic as M, OpKind};

impl Ctx<'_> {
    /// The shift count operand, masked.
    fn shift_count(&mut self, ins: &Instruction, i: u32, size: u8) -> R<u32> {
        let raw = if i < ins.op_count() { self.read_op(ins, i, 1)? } else { 1 };
        Ok((raw & if size == 8 { 0x3f } else { 0x1f }) as u32)
    }

    pub(super) fn shift(&mut self, ins: &Instruction) -> R<()> {
        let size = self.op_size(ins, 0);
        let bits = size as u32 * 8;
        let mask = size_mask(size);
        let sign = 1u64 << (bits - 1);
        let count = self.shift_count(ins, 1, size)?;
        self.probe_op(ins, 0, size)?;
        let d = self.read_op(ins, 0, size)?;
        if count == 0 {
            return self.write_back_unshifted(ins, size, d);
        }
        let cf_in = self.carry();
        let bool_f = |b: bool, f: u64| if b { f } else { 0 };
        let (res, flags, which) = match ins.mnemonic() {
            M::Rol => {
                let c = count % bits;
                let r = if c == 0 { d } else { ((d << c) | (d >> (bits - c))) & mask };
                let cf = r & 1 != 0;
                let of = (r & sign != 0) != cf;
                (r, bool_f(cf, fl::CF) | bool_f(of, fl::OF), fl::CF | fl::OF)
            }
            M::Ror => {
                let c = count % bits;
                let r = if c == 0 { d } else { ((d >> c) | (d << (bits - c))) & mask };
                let cf = r & sign != 0;
                let of = ((r << 1) ^ r) & sign != 0;
                (r, bool_f(cf, fl::CF) | bool_f(of, fl::OF), fl::CF | fl::OF)
            }
            M::Rcl | M::Rcr => {
                let c = if bits < 32 { count % (bits + 1) } else { count };
                // Rotate the (bits+1)-bit value CF:dest.
                let wide = ((cf_in as u128) << bits) | d as u128;
                let n = bits + 1;
                let full = (1u128 << n) - 1;
                let rot = if c == 0 {
                    wide
                } else if ins.mnemonic() == M::Rcl {
                    ((wide << c) | (wide >> (n - c))) & full
                } else {
                    ((wide >> c) | (wide << (n - c))) & full
                };
                let r = rot as u64 & mask;
                let cf = (rot >> bits) & 1 != 0;
                let of = if ins.mnemonic() == M::Rcl { (r & sign != 0) != cf } else { ((r << 1) ^ r) & sign != 0 };
                (r, bool_f(cf, fl::CF) | bool_f(of, fl::OF), fl::CF | fl::OF)
            }
            M::Shl | M::Sal => {
                let wide = (d as u128) << count;
                let r = wide as u64 & mask;
                let cf = (wide >> bits) & 1 != 0;
                let of = (r & sign != 0) != cf;
                (r, szp(r, size) | bool_f(cf, fl::CF) | bool_f(of, fl::OF), fl::ARITH)
            }
            M::Shr => {
                let r = if count >= 64 { 0 } else { d >> count };
                let cf = count <= 64 && (d >> (count - 1)) & 1 != 0;
                let of = if count == 1 { d & sign != 0 } else { false };
                (r, szp(r, size) | bool_f(cf, fl::CF) | bool_f(of, fl::OF), fl::ARITH)
            }
            _ => {
                let sd = ((d << (64 - bits)) as i64) >> (64 - bits);
                let r = (sd >> count.min(63)) as u64 & mask;
                let cf = (sd >> (count - 1).min(63)) & 1 != 0;
                (r, szp(r, size) | bool_f(cf, fl::CF), fl::ARITH)
            }
        };
        self.write_op(ins, 0, size, res)?;
        self.set_arith_flags(which, flags);
        Ok(())
    }

    /// A masked count of zero leaves flags and value alone, but a 32-bit register
    /// destination is still written, which clears bits 63:32 in 64-bit mode (as for
    /// every 32-bit register write, SDM Vol. 1 §3.4.1.1).
    fn write_back_unshifted(&mut self, ins: &Instruction, size: u8, d: u64) -> R<()> {
        if size == 4 && ins.op0_kind() == OpKind::Register {
            self.write_op(ins, 0, size, d)?;
        }
        Ok(())
    }

    /// SHLD/SHRD dst, src, count.
    pub(super) fn shift_double(&mut self, ins: &Instruction) -> R<()> {
        let size = self.op_size(ins, 0);
        let bits = size as u32 * 8;
        let mask = size_mask(size);
        let count = self.shift_count(ins, 2, size)?;
        self.probe_op(ins, 0, size)?;
        let d = self.read_op(ins, 0, size)?;
        let s = self.read_op(ins, 1, size)?;
        if count == 0 {
            return self.write_back_unshifted(ins, size, d);
        }
        let sign = 1u64 << (bits - 1);
        let (r, cf) = if ins.mnemonic() == M::Shld {
            // Shift the double-width d:s left; the window [bits, 2*bits) is the result
            // and the last bit out is bit `bits - count` of d (of s for a 16-bit count
            // above 16, whose result the SDM leaves undefined).
            let wide = (((d as u128) << bits) | s as u128) << count;
            let last_out = if count <= bits { d >> (bits - count) } else { s >> (2 * bits - count) };
            ((wide >> bits) as u64 & mask, last_out & 1 != 0)
        } else {
            let wide = ((s as u128) << bits) | d as u128;
            ((wide >> count) as u64 & mask, (wide >> (count - 1)) & 1 != 0)
        };
        let of = (r ^ d) & sign != 0;
        let v = szp(r, size) | if cf { fl::CF } else { 0 } | if of { fl::OF } else { 0 };
        self.write_op(ins, 0, size, r)?;
        self.set_arith_flags(fl::ARITH, v);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::interp::state::fl;
    use crate::interp::test_util::Machine;
    use iced_x86::code_asm::*;

    #[test]
    fn rcl_through_carry_and_shld() {
        let mut a = CodeAssembler::new(32).unwrap();
        a.stc().unwrap();
        a.mov(al, 0x81).unwrap();
        a.rcl(al, 1).unwrap(); // 0x03, CF=1
        a.mov(ebx, 0x1234_5678).unwrap();
        a.mov(ecx, 0x9abc_def0u32).unwrap();
        a.shld(ebx, ecx, 8).unwrap(); // 0x3456_789a
        a.hlt().unwrap();
        let mut m = Machine::protected32(&mut a);
        m.run();
        assert_eq!(m.gpr(0) & 0xff, 0x03);
        assert_eq!(m.gpr(3), 0x3456_789a);
        assert_eq!(m.cpu.rflags() & fl::CF, 0, "SHLD: last bit out of EBX was 0");
    }

    #[test]
    fn shifts_by_zero_still_zero_extend_a_32_bit_register() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.mov(rcx, 0x20u64).unwrap(); // masked count 0
        a.mov(r13, 0xb698_7359_aefd_f856u64).unwrap();
        a.rcl(r13d, cl).unwrap();
        a.mov(r10, -10i64).unwrap();
        a.ror(r10d, cl).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::long64(&mut a);
        m.run();
        assert_eq!(m.gpr(13), 0xaefd_f856);
        assert_eq!(m.gpr(10), 0xffff_fff6);
    }

    #[test]
    fn shld_64_bit_by_63_keeps_the_carry_out_of_the_destination() {
        // SHLD RAX, RBX, 63: RAX = RAX[0] : RBX[63:1]; CF = last bit out = RAX[1].
        let mut a = CodeAssembler::new(64).unwrap();
        a.mov(rax, 0x3u64).unwrap();
        a.mov(rbx, 0x8000_0000_0000_0002u64).unwrap();
        a.shld(rax, rbx, 63).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::long64(&mut a);
        m.run();
        assert_eq!(m.gpr(0), 0xc000_0000_0000_0001);
        assert_ne!(m.cpu.rflags() & fl::CF, 0);
    }
}
