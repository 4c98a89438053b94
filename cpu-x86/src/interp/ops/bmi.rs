//! BMI1 and BMI2, the VEX-encoded general-purpose bit instructions (SDM Vol. 2, each
//! instruction's page): ANDN, BEXTR, BLSI, BLSMSK, BLSR; BZHI, MULX, PDEP, PEXT, RORX,
//! SARX, SHLX, SHRX. TZCNT (BMI1 too) is with the bit scans. The flags an instruction
//! leaves undefined (AF and PF everywhere, SF for BEXTR) are computed as for a logical
//! result.

use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use crate::interp::flags::{size_mask, szp};
use crate::interp::state::fl;
use iced_x86::{Instruction, Mnemonic as M};

/// True for the BMI1/BMI2 mnemonics handled here.
pub(super) fn is_bmi(m: M) -> bool {
    matches!(
        m,
        M::Andn
            | M::Bextr
            | M::Blsi
            | M::Blsmsk
            | M::Blsr
            | M::Bzhi
            | M::Mulx
            | M::Pdep
            | M::Pext
            | M::Rorx
            | M::Sarx
            | M::Shlx
            | M::Shrx
    )
}

/// PDEP: the low bits of `src` deposited, in order, at the set bits of `mask`.
pub fn pdep(src: u64, mask: u64) -> u64 {
    let (mut out, mut m, mut k) = (0u64, mask, 0);
    while m != 0 {
        let bit = m & m.wrapping_neg();
        if src >> k & 1 != 0 {
            out |= bit;
        }
        m &= m - 1;
        k += 1;
    }
    out
}

/// PEXT: the bits of `src` at the set bits of `mask`, packed into the low bits.
pub fn pext(src: u64, mask: u64) -> u64 {
    let (mut out, mut m, mut k) = (0u64, mask, 0);
    while m != 0 {
        let bit = m & m.wrapping_neg();
        if src & bit != 0 {
            out |= 1 << k;
        }
        m &= m - 1;
        k += 1;
    }
    out
}

/// The value and flags of the BMI instructions that set them: (result, flags) for
/// `m` on an operand of `size` bytes with sources `a` (the r/m or the VEX.vvvv source
/// per the instruction's page) and `b`.
pub fn bmi_op(m: M, size: u8, a: u64, b: u64) -> (u64, u64) {
    let mask = size_mask(size);
    let bits = size as u64 * 8;
    let logic = |r: u64| szp(r, size);
    match m {
        // ANDN dst, src1 (vvvv), src2: !src1 & src2.
        M::Andn => {
            let r = !a & b & mask;
            (r, logic(r))
        }
        // BEXTR dst, src (r/m), ctl (vvvv): start ctl[7:0], length ctl[15:8].
        M::Bextr => {
            let (start, len) = (b & 0xff, (b >> 8) & 0xff);
            let shifted = if start >= bits { 0 } else { (a & mask) >> start };
            let r = if len >= 64 { shifted } else { shifted & ((1u64 << len) - 1) };
            (r, logic(r) & fl::ZF)
        }
        M::Blsi => {
            let r = a.wrapping_neg() & a & mask;
            (r, logic(r) & (fl::ZF | fl::SF) | if a & mask != 0 { fl::CF } else { 0 })
        }
        M::Blsmsk => {
            let r = (a.wrapping_sub(1) ^ a) & mask;
            (r, logic(r) & fl::SF | if a & mask == 0 { fl::CF } else { 0 })
        }
        M::Blsr => {
            let r = a.wrapping_sub(1) & a & mask;
            (r, logic(r) & (fl::ZF | fl::SF) | if a & mask == 0 { fl::CF } else { 0 })
        }
        // BZHI dst, src (r/m), index (vvvv): clear bits from index[7:0] up.
        _ => {
            let n = b & 0xff;
            let r = if n < bits { a & ((1u64 << n) - 1) } else { a & mask };
            (r, logic(r) & (fl::ZF | fl::SF) | if n > bits - 1 { fl::CF } else { 0 })
        }
    }
}

impl Ctx<'_> {
    /// The BMI1/BMI2 instructions.
    pub(super) fn bmi(&mut self, ins: &Instruction) -> R<()> {
        let m = ins.mnemonic();
        let size = self.op_size(ins, 0);
        let mask = size_mask(size);
        let bits = size as u32 * 8;
        let dst = ins.op0_register();
        match m {
            M::Mulx => {
                // MULX hi, lo, src: rDX * src, flags unchanged; the high half wins when
                // both destinations are the same register.
                let src = self.read_op(ins, 2, size)?;
                let d = self.c.st.gpr[2] & mask;
                let p = d as u128 * src as u128;
                self.set_reg(ins.op1_register(), p as u64 & mask);
                self.set_reg(dst, (p >> bits) as u64 & mask);
            }
            M::Pdep | M::Pext => {
                let src = self.reg(ins.op1_register());
                let sel = self.read_op(ins, 2, size)?;
                let r = if m == M::Pdep { pdep(src, sel & mask) } else { pext(src, sel & mask) };
                self.set_reg(dst, r & mask);
            }
            M::Rorx => {
                let src = self.read_op(ins, 1, size)?;
                let n = ins.immediate8() as u32 & (bits - 1);
                let r = if bits == 64 { src.rotate_right(n) } else { (src as u32).rotate_right(n) as u64 };
                self.set_reg(dst, r);
            }
            M::Sarx | M::Shlx | M::Shrx => {
                let src = self.read_op(ins, 1, size)?;
                let n = self.reg(ins.op2_register()) as u32 & (bits - 1);
                let r = match m {
                    M::Shlx => src << n,
                    M::Shrx => src >> n,
                    _ => ((src << (64 - bits)) as i64 >> (64 - bits + n)) as u64,
                };
                self.set_reg(dst, r & mask);
            }
            M::Andn => {
                let a = self.reg(ins.op1_register());
                let b = self.read_op(ins, 2, size)?;
                self.bmi_result(dst, m, size, a, b);
            }
            M::Bextr | M::Bzhi => {
                let a = self.read_op(ins, 1, size)?;
                let b = self.reg(ins.op2_register());
                self.bmi_result(dst, m, size, a, b);
            }
            _ => {
                let a = self.read_op(ins, 1, size)?;
                self.bmi_result(dst, m, size, a, 0);
            }
        }
        Ok(())
    }

    /// Writes a flag-setting BMI result (OF always clear; AF, PF and the flags the
    /// instruction leaves undefined as [`bmi_op`] computes them).
    fn bmi_result(&mut self, dst: iced_x86::Register, m: M, size: u8, a: u64, b: u64) {
        let (r, flags) = bmi_op(m, size, a, b);
        self.set_reg(dst, r);
        self.set_arith_flags(fl::ARITH, flags);
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::interp::test_util::Machine;
    use iced_x86::code_asm::*;

    #[test]
    fn pdep_and_pext_match_the_host() {
        let mut s = 0x1234_5678_9abc_def1u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for i in 0..2000 {
            let (x, m) = (
                next(),
                match i % 4 {
                    0 => 0,
                    1 => u64::MAX,
                    2 => next() & next(),
                    _ => next(),
                },
            );
            // SAFETY: BMI2 register-only intrinsics (the host has BMI2).
            let (hd, he) = unsafe { (std::arch::x86_64::_pdep_u64(x, m), std::arch::x86_64::_pext_u64(x, m)) };
            assert_eq!((pdep(x, m), pext(x, m)), (hd, he), "x={x:x} mask={m:x}");
        }
    }

    /// Runs `f`'s code on a 64-bit machine with RAX..RDX preset; returns (RAX, RBX, RFLAGS).
    fn run(regs: [u64; 4], f: impl Fn(&mut CodeAssembler)) -> (u64, u64, u64) {
        let mut a = CodeAssembler::new(64).unwrap();
        f(&mut a);
        a.hlt().unwrap();
        let mut m = Machine::long64(&mut a);
        m.cpu.state_mut().gpr[..4].copy_from_slice(&regs);
        m.run();
        (m.gpr(0), m.gpr(3), m.cpu.rflags())
    }

    #[test]
    fn edge_cases_of_the_masks_and_counts() {
        // BEXTR with start past the width gives 0 and ZF; a length past 64 keeps all.
        let (r, _, f) = run([u64::MAX, 0x1040, 0, 0], |a| a.bextr(rax, rax, rcx).unwrap());
        assert_eq!((r, f & fl::ZF), (0, fl::ZF));
        let (r, _, _) = run([u64::MAX, 0xff04, 0, 0], |a| a.bextr(rax, rax, rcx).unwrap());
        assert_eq!(r, u64::MAX >> 4);
        // BZHI with an index of 32 on a 32-bit operand keeps it and sets CF.
        let (r, _, f) = run([0xffff_ffff_ffff_ffff, 32, 0, 0], |a| a.bzhi(eax, eax, ecx).unwrap());
        assert_eq!((r, f & fl::CF), (0xffff_ffff, fl::CF));
        // BLSR/BLSI/BLSMSK of zero: CF per the instruction.
        let (r, _, f) = run([0, 0, 0, 0], |a| a.blsr(rax, rcx).unwrap());
        assert_eq!((r, f & (fl::CF | fl::ZF)), (0, fl::CF | fl::ZF));
        let (r, _, f) = run([0, 0, 0, 0], |a| a.blsmsk(rax, rcx).unwrap());
        assert_eq!((r, f & (fl::CF | fl::ZF)), (u64::MAX, fl::CF));
        let (r, _, f) = run([0, 0x50, 0, 0], |a| a.blsi(rax, rcx).unwrap());
        assert_eq!((r, f & fl::CF), (0x10, fl::CF));
        // MULX: RDX * src into hi:lo without touching flags; SARX/SHLX mask the count.
        let (hi, lo, _) = run([0, 3, u64::MAX, 0], |a| a.mulx(rax, rbx, rcx).unwrap());
        assert_eq!((hi, lo), (2, u64::MAX - 2));
        let (r, _, _) = run([0x8000_0000, 33, 0, 0], |a| a.sarx(eax, eax, ecx).unwrap());
        assert_eq!(r, 0xc000_0000);
        let (r, _, _) = run([1, 65, 0, 0], |a| a.shlx(rax, rax, rcx).unwrap());
        assert_eq!(r, 2);
        let (r, _, _) = run([0x1234_5678, 0, 0, 0], |a| a.rorx(eax, eax, 36).unwrap());
        assert_eq!(r, 0x8123_4567);
        let (r, _, f) = run([0xf0, 0xff, 0, 0], |a| a.andn(rax, rax, rcx).unwrap());
        assert_eq!((r, f & (fl::ZF | fl::CF | fl::OF)), (0x0f, 0));
    }
}
