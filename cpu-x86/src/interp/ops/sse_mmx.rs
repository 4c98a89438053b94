//! The MMX forms of the integer instructions (MM0-MM7 alias the x87 registers' low 64
//! bits): MOVD MOVQ MOVQ2DQ MOVDQ2Q MOVNTQ, the lane-wise arithmetic/logic/compare and
//! pack/unpack ops shared with SSE2 (`sse_int`), the shifts, PSHUFW PEXTRW PINSRW
//! PMOVMSKB MASKMOVQ, and EMMS (SDM Vol. 1 §9.5-9.6; Vol. 3A Table 12-1 for the x87
//! side effects: TOP=0 and all tags valid, exponent bits set on writes).

use super::sse_convert::{from_int, to_int};
use super::sse_float::mxcsr_round;
use super::sse_int::{int_binop, shift};
use crate::interp::cpu::Ctx;
use crate::interp::fault::{vec, Fault, R};
use crate::interp::state::cr0;
use iced_x86::{Instruction, Mnemonic as M, OpKind, Register};
use rustc_apfloat::ieee::{Double, Single};
use rustc_apfloat::Round;

/// The low half of an MMX op done on 128-bit lanes of `[d, 0]` and `[s, 0]`, with the
/// unpack-high and pack forms rearranged to their 64-bit meaning.
fn mmx_op(m: M, d: u64, s: u64) -> Option<u64> {
    let low = match m {
        M::Punpckhbw => M::Punpcklbw,
        M::Punpckhwd => M::Punpcklwd,
        M::Punpckhdq => M::Punpckldq,
        _ => m,
    };
    if low != m {
        return int_binop(low, [d >> 32, 0], [s >> 32, 0]).map(|r| r[0]);
    }
    let r = int_binop(m, [d, 0], [s, 0])?;
    Some(match m {
        M::Packsswb | M::Packuswb | M::Packssdw => (r[0] & 0xffff_ffff) | (r[1] << 32),
        _ => r[0],
    })
}

impl Ctx<'_> {
    /// The checks of an MMX instruction (#UD with CR0.EM, #NM with CR0.TS, #MF for a
    /// pending x87 exception) and its x87 side effect: TOP=0, every tag valid.
    pub(super) fn mmx_enter(&mut self) -> R<()> {
        let c0 = self.c.st.cr0;
        if c0 & cr0::EM != 0 {
            return Err(Fault::ud());
        }
        if c0 & cr0::TS != 0 {
            return Err(Fault::exc(vec::NM));
        }
        if self.c.st.x87.fsw & super::x87::fsw::ES != 0 && c0 & cr0::NE != 0 {
            return Err(Fault::exc(vec::MF));
        }
        self.set_top(0);
        self.c.st.x87.ftw = 0;
        Ok(())
    }

    /// MMX register `r`.
    pub(super) fn mm(&self, r: Register) -> u64 {
        let b = &self.c.st.x87.regs[(r as usize).wrapping_sub(Register::MM0 as usize) & 7];
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    /// Writes MMX register `r` (the register's sign/exponent bits become all ones).
    pub(super) fn set_mm(&mut self, r: Register, v: u64) {
        let b = &mut self.c.st.x87.regs[(r as usize).wrapping_sub(Register::MM0 as usize) & 7];
        b[..8].copy_from_slice(&v.to_le_bytes());
        b[8] = 0xff;
        b[9] = 0xff;
    }

    /// Operand `i` as 64 bits: an MMX register, the low quadword of an XMM register, a
    /// GPR, or memory of the instruction's memory size.
    pub(super) fn mm_op(&mut self, ins: &Instruction, i: u32) -> R<u64> {
        match ins.op_kind(i) {
            OpKind::Register => {
                let r = ins.op_register(i);
                Ok(if r.is_mm() {
                    self.mm(r)
                } else if r.is_xmm() {
                    self.xmm(r)[0]
                } else {
                    self.reg(r)
                })
            }
            OpKind::Memory => {
                let (seg, off) = self.ea(ins);
                self.read(seg, off, ins.memory_size().size() as u8)
            }
            OpKind::Immediate8 => Ok(ins.immediate8() as u64),
            k => Err(self.unsupported(format!("MMX operand kind {k:?}"))),
        }
    }

    /// The lane-wise MMX integer ops.
    pub(super) fn mmx_binop(&mut self, ins: &Instruction) -> R<()> {
        self.mmx_enter()?;
        let s = self.mm_op(ins, 1)?;
        let r = ins.op0_register();
        let m = ins.mnemonic();
        let v = mmx_op(m, self.mm(r), s).ok_or_else(|| self.unsupported(format!("MMX form of {m:?}")))?;
        self.set_mm(r, v);
        Ok(())
    }

    /// PSLL/PSRL/PSRA on an MMX register by an immediate or an mm/m64 count.
    pub(super) fn mmx_shift(&mut self, ins: &Instruction) -> R<()> {
        self.mmx_enter()?;
        let count = self.mm_op(ins, 1)?;
        let r = ins.op0_register();
        let v = shift(ins.mnemonic(), [self.mm(r), 0], count)[0];
        self.set_mm(r, v);
        Ok(())
    }

    /// MOVD/MOVQ with an MMX operand, MOVQ2DQ, MOVDQ2Q and MOVNTQ.
    pub(super) fn mmx_move(&mut self, ins: &Instruction) -> R<()> {
        self.mmx_enter()?;
        if matches!(ins.mnemonic(), M::Movq2dq | M::Movdq2q) {
            self.sse_check()?;
        }
        let size: u8 = if ins.mnemonic() == M::Movd { 4 } else { 8 };
        let v = self.mm_op(ins, 1)? & (u64::MAX >> (64 - 8 * size as u32));
        match ins.op0_kind() {
            OpKind::Register if ins.op0_register().is_mm() => self.set_mm(ins.op0_register(), v),
            OpKind::Register if ins.op0_register().is_xmm() => self.set_xmm(ins.op0_register(), [v, 0]),
            _ => self.write_op(ins, 0, size, v)?,
        }
        Ok(())
    }

    /// CVTPI2PS, CVTPI2PD (two dwords to floats), CVT(T)PS2PI and CVT(T)PD2PI (two
    /// floats to dwords in an MMX register); an MMX register operand makes the x87
    /// transition, a memory one does not (SDM Vol. 2A).
    pub(super) fn mmx_convert(&mut self, ins: &Instruction) -> R<()> {
        let m = ins.mnemonic();
        if ins.op1_kind() == OpKind::Register && ins.op1_register().is_mm() || ins.op0_register().is_mm() {
            self.mmx_enter()?;
        }
        let csr = self.c.st.sse.mxcsr;
        let round = mxcsr_round(csr);
        let mut f = 0;
        let dword = |v: u64, i: u32| (v >> (32 * i)) as u32 as i32 as i64;
        if matches!(m, M::Cvtpi2ps | M::Cvtpi2pd) {
            let s = self.mm_op(ins, 1)?;
            let r = ins.op0_register();
            let mut d = self.xmm(r);
            if m == M::Cvtpi2ps {
                let lo = from_int::<Single>(dword(s, 0), round, csr, &mut f);
                let hi = from_int::<Single>(dword(s, 1), round, csr, &mut f);
                d[0] = lo | hi << 32;
            } else {
                d = [
                    from_int::<Double>(dword(s, 0), round, csr, &mut f),
                    from_int::<Double>(dword(s, 1), round, csr, &mut f),
                ];
            }
            self.simd_exceptions(f)?;
            self.set_xmm(r, d);
            return Ok(());
        }
        let s = self.xmm_op(ins, 1)?;
        let rd = if matches!(m, M::Cvttps2pi | M::Cvttpd2pi) { Round::TowardZero } else { round };
        let (lo, hi) = if matches!(m, M::Cvtps2pi | M::Cvttps2pi) {
            (
                to_int::<Single>(s[0] & 0xffff_ffff, 32, rd, csr, &mut f),
                to_int::<Single>(s[0] >> 32, 32, rd, csr, &mut f),
            )
        } else {
            (to_int::<Double>(s[0], 32, rd, csr, &mut f), to_int::<Double>(s[1], 32, rd, csr, &mut f))
        };
        self.simd_exceptions(f)?;
        self.set_mm(ins.op0_register(), lo | hi << 32);
        Ok(())
    }

    /// EMMS: every x87 register tagged empty.
    pub(super) fn emms(&mut self) -> R<()> {
        self.mmx_enter()?;
        self.c.st.x87.ftw = 0xffff;
        Ok(())
    }

    /// PSHUFW, PEXTRW, PINSRW, PMOVMSKB and MASKMOVQ on MMX registers.
    pub(super) fn mmx_misc(&mut self, ins: &Instruction) -> R<()> {
        self.mmx_enter()?;
        let imm = ins.immediate8() as u64;
        let word = |v: u64, i: u64| (v >> (16 * (i & 3))) & 0xffff;
        match ins.mnemonic() {
            M::Pshufw => {
                let s = self.mm_op(ins, 1)?;
                let v = (0..4).fold(0, |acc, i| acc | word(s, imm >> (2 * i)) << (16 * i));
                self.set_mm(ins.op0_register(), v);
            }
            M::Pextrw => {
                let v = word(self.mm(ins.op1_register()), imm);
                let r = ins.op0_register();
                self.set_gpr(r.full_register().number(), (r.size() as u8).max(4), v);
            }
            M::Pinsrw => {
                let w = self.mm_op(ins, 1)? & 0xffff;
                let r = ins.op0_register();
                let sh = 16 * (imm & 3);
                self.set_mm(r, (self.mm(r) & !(0xffff << sh)) | w << sh);
            }
            M::Pmovmskb => {
                let v = self.mm(ins.op1_register());
                let bits = (0..8).fold(0, |acc, i| acc | ((v >> (8 * i + 7)) & 1) << i);
                let r = ins.op0_register();
                self.set_gpr(r.full_register().number(), (r.size() as u8).max(4), bits);
            }
            _ => {
                let data = self.mm(ins.op1_register());
                let mask = self.mm(ins.op2_register());
                let (seg, off, amask) = self.masked_store_target(ins);
                for i in 0..8 {
                    if (mask >> (8 * i + 7)) & 1 != 0 {
                        self.write(seg, off.wrapping_add(i) & amask, 1, (data >> (8 * i)) & 0xff)?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use crate::interp::test_util::Machine;
    use iced_x86::code_asm::*;
    use std::arch::asm;

    /// Emits the instruction under test.
    type Emit = dyn Fn(&mut CodeAssembler);

    const A: u64 = 0x8000_7fff_ff01_0280;
    const B: u64 = 0x7fff_8000_01ff_fe7f;

    /// Runs `op mm0, mm1` in the guest with mm0=A, mm1=B; returns mm0 and the FTW.
    fn guest(op: &dyn Fn(&mut CodeAssembler)) -> (u64, u16) {
        let mut c = CodeAssembler::new(64).unwrap();
        c.movq(mm0, qword_ptr(0x20000)).unwrap();
        c.movq(mm1, qword_ptr(0x20008)).unwrap();
        op(&mut c);
        c.movq(qword_ptr(0x20010), mm0).unwrap();
        c.hlt().unwrap();
        let mut m = Machine::long64(&mut c);
        m.poke(0x20000, &A.to_le_bytes());
        m.poke(0x20008, &B.to_le_bytes());
        m.run();
        (u64::from_le_bytes(m.peek(0x20010)), m.cpu.state().x87.ftw)
    }

    macro_rules! host {
        ($op:literal) => {{
            let (a, b, mut out) = (A, B, 0u64);
            // SAFETY: the asm loads two MMX registers from the inputs, runs one MMX
            // instruction, stores MM0 to `out` and ends with EMMS so the x87 state is
            // left empty; the x87/MMX registers are declared clobbered.
            unsafe {
                asm!(
                    "movq mm0, [{a}]", "movq mm1, [{b}]", $op, "movq [{o}], mm0", "emms",
                    a = in(reg) &a, b = in(reg) &b, o = in(reg) &mut out,
                    out("st(0)") _, out("st(1)") _, out("st(2)") _, out("st(3)") _,
                    out("st(4)") _, out("st(5)") _, out("st(6)") _, out("st(7)") _,
                );
            }
            out
        }};
    }

    #[test]
    fn mmx_ops_match_the_host() {
        let cases: [(&Emit, u64, &str); 12] = [
            (&|c| c.paddusb(mm0, mm1).unwrap(), host!("paddusb mm0, mm1"), "paddusb"),
            (&|c| c.pmulhw(mm0, mm1).unwrap(), host!("pmulhw mm0, mm1"), "pmulhw"),
            (&|c| c.pcmpgtw(mm0, mm1).unwrap(), host!("pcmpgtw mm0, mm1"), "pcmpgtw"),
            (&|c| c.punpckhbw(mm0, mm1).unwrap(), host!("punpckhbw mm0, mm1"), "punpckhbw"),
            (&|c| c.punpckldq(mm0, mm1).unwrap(), host!("punpckldq mm0, mm1"), "punpckldq"),
            (&|c| c.packsswb(mm0, mm1).unwrap(), host!("packsswb mm0, mm1"), "packsswb"),
            (&|c| c.packssdw(mm0, mm1).unwrap(), host!("packssdw mm0, mm1"), "packssdw"),
            (&|c| c.psraw(mm0, 3).unwrap(), host!("psraw mm0, 3"), "psraw"),
            (&|c| c.psllq(mm0, mm1).unwrap(), host!("psllq mm0, mm1"), "psllq"),
            (&|c| c.pshufw(mm0, mm1, 0x1b).unwrap(), host!("pshufw mm0, mm1, 0x1b"), "pshufw"),
            (&|c| c.psadbw(mm0, mm1).unwrap(), host!("psadbw mm0, mm1"), "psadbw"),
            (&|c| c.pmaddwd(mm0, mm1).unwrap(), host!("pmaddwd mm0, mm1"), "pmaddwd"),
        ];
        for (op, want, name) in cases {
            let (got, ftw) = guest(op);
            assert_eq!(got, want, "{name}");
            assert_eq!(ftw, 0, "{name}: MMX marks every register valid");
        }
    }

    #[test]
    fn emms_empties_the_tags_and_mmx_writes_set_the_exponent() {
        let mut c = CodeAssembler::new(64).unwrap();
        c.mov(eax, 0x1234).unwrap();
        c.movd(mm3, eax).unwrap();
        c.fnsave(zmmword_ptr(0x21000)).unwrap();
        c.movd(mm3, eax).unwrap();
        c.emms().unwrap();
        c.hlt().unwrap();
        let mut m = Machine::long64(&mut c);
        m.run();
        // FNSAVE: TOP=0 in FSW, tags all valid, R3 = 0x1234 with exponent 0xffff.
        let img: [u8; 108] = m.peek(0x21000);
        assert_eq!(img[8..10], [0, 0]);
        assert_eq!(img[28 + 30..28 + 40], [0x34, 0x12, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
        assert_eq!(m.cpu.state().x87.ftw, 0xffff);
    }

    #[test]
    fn mmx_conversions_match_the_host() {
        let pairs = [(1.5f32, -2.5f32), (3e9, -0.4), (f32::NAN, 7.0)];
        for (x, y) in pairs {
            let v = x.to_bits() as u64 | (y.to_bits() as u64) << 32;
            let mut host = 0u64;
            let mut host_t = 0u64;
            // SAFETY: the asm converts the quadword at `v` into MM0 twice, stores MM0 to
            // the outputs and ends with EMMS; x87/MMX and XMM0 are declared clobbered.
            unsafe {
                asm!(
                    "movq xmm0, [{v}]", "cvtps2pi mm0, xmm0", "movq [{o}], mm0",
                    "cvttps2pi mm0, xmm0", "movq [{t}], mm0", "emms",
                    v = in(reg) &v, o = in(reg) &mut host, t = in(reg) &mut host_t, out("xmm0") _,
                    out("st(0)") _, out("st(1)") _, out("st(2)") _, out("st(3)") _,
                    out("st(4)") _, out("st(5)") _, out("st(6)") _, out("st(7)") _,
                );
            }
            let mut c = CodeAssembler::new(64).unwrap();
            c.movq(xmm0, qword_ptr(0x20000)).unwrap();
            c.cvtps2pi(mm0, xmm0).unwrap();
            c.movq(qword_ptr(0x20008), mm0).unwrap();
            c.cvttps2pi(mm1, xmm0).unwrap();
            c.movq(qword_ptr(0x20010), mm1).unwrap();
            c.cvtpi2ps(xmm2, mm1).unwrap();
            c.cvtpi2pd(xmm3, mm1).unwrap();
            c.hlt().unwrap();
            let mut m = Machine::long64(&mut c);
            m.cpu.state_mut().cr4 |= crate::interp::state::cr4::OSFXSR;
            m.poke(0x20000, &v.to_le_bytes());
            m.run();
            assert_eq!(u64::from_le_bytes(m.peek(0x20008)), host, "cvtps2pi {x} {y}");
            assert_eq!(u64::from_le_bytes(m.peek(0x20010)), host_t, "cvttps2pi {x} {y}");
            let t = |i: u32| (host_t >> (32 * i)) as u32 as i32;
            let st = m.cpu.state();
            assert_eq!(st.sse.xmm[2][0], (t(0) as f32).to_bits() as u64 | ((t(1) as f32).to_bits() as u64) << 32);
            assert_eq!(st.sse.xmm[3], [(t(0) as f64).to_bits(), (t(1) as f64).to_bits()]);
        }
    }
}
