//! SSE/SSE2 plumbing shared by the `sse_*` groups: the availability checks (CR0.EM,
//! CR0.TS, CR4.OSFXSR), XMM register and 128-bit memory operands with the alignment
//! rule, MXCSR (LDMXCSR/STMXCSR) and SIMD floating-point exception delivery
//! (SDM Vol. 1 §10.2.3, §11.5; Vol. 3A §13.1).

use super::operand::{seg_of, string_addr_size};
use crate::interp::cpu::Ctx;
use crate::interp::fault::{vec, Fault, R};
use crate::interp::flags::size_mask;
use crate::interp::mmu::Acc;
use crate::interp::state::{cr0, cr4, Seg};
use iced_x86::{Instruction, Mnemonic as M, OpKind, Register};

/// MXCSR bits (SDM Vol. 1 §10.2.3).
pub mod mxcsr {
    /// Invalid-operation flag.
    pub const IE: u32 = 1 << 0;
    /// Denormal flag.
    pub const DE: u32 = 1 << 1;
    /// Divide-by-zero flag.
    pub const ZE: u32 = 1 << 2;
    /// Overflow flag.
    pub const OE: u32 = 1 << 3;
    /// Underflow flag.
    pub const UE: u32 = 1 << 4;
    /// Precision flag.
    pub const PE: u32 = 1 << 5;
    /// Denormals are zeros.
    pub const DAZ: u32 = 1 << 6;
    /// Shift from a flag to its mask bit (IM..PM in bits 7-12).
    pub const MASK_SHIFT: u32 = 7;
    /// Rounding control field shift (bits 13-14).
    pub const RC_SHIFT: u32 = 13;
    /// Flush to zero.
    pub const FZ: u32 = 1 << 15;
    /// Bits software may set (MXCSR_MASK reported by FXSAVE).
    pub const WRITABLE: u32 = 0xffff;
}

/// A 128-bit XMM value as two little-endian quadwords.
pub type Xmm = [u64; 2];

/// True for the SSE moves that accept any alignment on a 128-bit memory operand.
fn unaligned_ok(m: M) -> bool {
    matches!(
        m,
        M::Movups
            | M::Movupd
            | M::Movdqu
            | M::Maskmovdqu
            | M::Lddqu
            | M::Pcmpestri
            | M::Pcmpestri64
            | M::Pcmpestrm
            | M::Pcmpestrm64
            | M::Pcmpistri
            | M::Pcmpistrm
    )
}

impl Ctx<'_> {
    /// The checks every SSE instruction makes first: #UD without CR4.OSFXSR or with
    /// CR0.EM, #NM with CR0.TS (SDM Vol. 3A Table 13-1).
    pub(super) fn sse_check(&self) -> R<()> {
        let st = &self.c.st;
        if st.cr0 & cr0::EM != 0 || st.cr4 & cr4::OSFXSR == 0 {
            return Err(Fault::ud());
        }
        if st.cr0 & cr0::TS != 0 {
            return Err(Fault::exc(vec::NM));
        }
        Ok(())
    }

    /// XMM register `r` (XMM0-XMM15).
    pub(super) fn xmm(&self, r: Register) -> Xmm {
        self.c.st.sse.xmm[(r as usize).wrapping_sub(Register::XMM0 as usize) & 15]
    }

    /// Writes XMM register `r`.
    pub(super) fn set_xmm(&mut self, r: Register, v: Xmm) {
        self.c.st.sse.xmm[(r as usize).wrapping_sub(Register::XMM0 as usize) & 15] = v;
    }

    /// Linear address of the 16-byte memory operand, checking 16-byte alignment
    /// (#GP(0)) unless the instruction is an unaligned move.
    fn m128_linear(&mut self, ins: &Instruction, acc: Acc) -> R<u64> {
        let (seg, off) = self.ea(ins);
        let lin = self.linear(seg, off, 16, acc)?;
        if lin & 15 != 0 && !unaligned_ok(ins.mnemonic()) {
            return Err(Fault::gp(0));
        }
        Ok(lin)
    }

    /// The linear address 8 bytes after `lin`, wrapped to the address width.
    fn lin_plus8(&self, lin: u64) -> u64 {
        let next = lin.wrapping_add(8);
        if self.c.st.long64() {
            next
        } else {
            next & 0xffff_ffff
        }
    }

    /// Reads the 16-byte memory operand.
    pub(super) fn read_m128(&mut self, ins: &Instruction) -> R<Xmm> {
        let lin = self.m128_linear(ins, Acc::Read)?;
        let user = self.c.st.cpl == 3;
        let lo = self.read_lin(lin, 8, Acc::Read, user)?;
        let hi = self.read_lin(self.lin_plus8(lin), 8, Acc::Read, user)?;
        Ok([lo, hi])
    }

    /// Writes the 16-byte memory operand (both halves checked before either is written).
    pub(super) fn write_m128(&mut self, ins: &Instruction, v: Xmm) -> R<()> {
        let lin = self.m128_linear(ins, Acc::Write)?;
        let (seg, off) = self.ea(ins);
        self.probe_write(seg, off, 16)?;
        let user = self.c.st.cpl == 3;
        self.write_lin(lin, 8, v[0], user)?;
        self.write_lin(self.lin_plus8(lin), 8, v[1], user)
    }

    /// The DS:rDI destination of MASKMOVDQU/MASKMOVQ (segment overridable; rDI sized by
    /// the address size): the segment, rDI and the address-size mask for byte offsets.
    pub(super) fn masked_store_target(&self, ins: &Instruction) -> (Seg, u64, u64) {
        let mask = size_mask(string_addr_size(ins.op0_kind()));
        (seg_of(ins.memory_segment()), self.c.st.gpr[7] & mask, mask)
    }

    /// Operand `i` as an XMM value: a register, or memory of the instruction's memory
    /// size (16 bytes with the alignment rule; 8, 4, 2 or 1 bytes zero-extended).
    pub(super) fn xmm_op(&mut self, ins: &Instruction, i: u32) -> R<Xmm> {
        match ins.op_kind(i) {
            OpKind::Register => {
                let r = ins.op_register(i);
                if r.is_xmm() {
                    Ok(self.xmm(r))
                } else if r.is_gpr() {
                    Ok([self.reg(r), 0])
                } else {
                    Err(self.unsupported(format!("SSE operand register {r:?} (MMX is not emulated)")))
                }
            }
            OpKind::Memory => {
                let size = ins.memory_size().size();
                if size == 16 {
                    self.read_m128(ins)
                } else {
                    let (seg, off) = self.ea(ins);
                    Ok([self.read(seg, off, size as u8)?, 0])
                }
            }
            k => Err(self.unsupported(format!("SSE operand kind {k:?}"))),
        }
    }

    /// Destination operand 0 as an XMM register, or an `Unsupported` fault for MMX forms.
    pub(super) fn xmm_dst(&mut self, ins: &Instruction) -> R<Register> {
        let r = ins.op0_register();
        if ins.op0_kind() == OpKind::Register && r.is_xmm() {
            Ok(r)
        } else {
            Err(self.unsupported(format!("{:?} with operand {r:?} (MMX is not emulated)", ins.mnemonic())))
        }
    }

    /// Records SIMD floating-point exception flags in MXCSR and raises #XM (or #UD
    /// without CR4.OSXMMEXCPT) when one of them is unmasked; the caller then leaves the
    /// destination unchanged (SDM Vol. 1 §11.5.1).
    pub(super) fn simd_exceptions(&mut self, flags: u32) -> R<()> {
        let m = &mut self.c.st.sse.mxcsr;
        *m |= flags & 0x3f;
        let unmasked = flags & !(*m >> mxcsr::MASK_SHIFT) & 0x3f;
        if unmasked == 0 {
            return Ok(());
        }
        if self.c.st.cr4 & cr4::OSXMMEXCPT != 0 {
            Err(Fault::exc(vec::XM))
        } else {
            Err(Fault::ud())
        }
    }

    /// LDMXCSR and STMXCSR (#GP(0) for reserved bits).
    pub(super) fn mxcsr_op(&mut self, ins: &Instruction) -> R<()> {
        self.sse_check()?;
        self.mxcsr_transfer(ins)
    }

    /// The transfer of LDMXCSR/STMXCSR and VLDMXCSR/VSTMXCSR.
    pub(super) fn mxcsr_transfer(&mut self, ins: &Instruction) -> R<()> {
        let (seg, off) = self.ea(ins);
        if matches!(ins.mnemonic(), M::Ldmxcsr | M::Vldmxcsr) {
            let v = self.read(seg, off, 4)? as u32;
            if v & !mxcsr::WRITABLE != 0 {
                return Err(Fault::gp(0));
            }
            self.c.st.sse.mxcsr = v;
            Ok(())
        } else {
            self.write(seg, off, 4, self.c.st.sse.mxcsr as u64)
        }
    }
}

impl Ctx<'_> {
    /// The MMX, SSE-SSE4.2, AES-NI, PCLMULQDQ and SHA part of the instruction dispatch (after the integer and x87
    /// groups).
    pub(super) fn exec_sse(&mut self, ins: &Instruction, m: M) -> R<()> {
        match m {
            M::Ldmxcsr | M::Stmxcsr => self.mxcsr_op(ins),
            M::Movaps
            | M::Movups
            | M::Movapd
            | M::Movupd
            | M::Movdqa
            | M::Movdqu
            | M::Movntps
            | M::Movntpd
            | M::Movntdq => self.sse_mov128(ins),
            M::Movss | M::Movsd => self.sse_mov_scalar(ins),
            M::Movd | M::Movq => self.sse_movd_movq(ins),
            M::Movlps | M::Movhps | M::Movlpd | M::Movhpd | M::Movhlps | M::Movlhps => self.sse_mov_half(ins),
            M::Movmskps | M::Movmskpd | M::Pmovmskb => self.sse_movmsk(ins),
            M::Movnti => self.movnti(ins),
            M::Maskmovdqu => self.maskmovdqu(ins),
            M::Movntq | M::Movq2dq | M::Movdq2q => self.mmx_move(ins),
            M::Pshufw | M::Maskmovq => self.mmx_misc(ins),
            M::Emms => self.emms(),
            M::Shufps | M::Shufpd | M::Unpcklps | M::Unpckhps | M::Unpcklpd | M::Unpckhpd => self.sse_shuffle_fp(ins),
            M::Paddb
            | M::Paddw
            | M::Paddd
            | M::Paddq
            | M::Psubb
            | M::Psubw
            | M::Psubd
            | M::Psubq
            | M::Paddsb
            | M::Paddsw
            | M::Psubsb
            | M::Psubsw
            | M::Paddusb
            | M::Paddusw
            | M::Psubusb
            | M::Psubusw
            | M::Pand
            | M::Andps
            | M::Andpd
            | M::Pandn
            | M::Andnps
            | M::Andnpd
            | M::Por
            | M::Orps
            | M::Orpd
            | M::Pxor
            | M::Xorps
            | M::Xorpd
            | M::Pcmpeqb
            | M::Pcmpeqw
            | M::Pcmpeqd
            | M::Pcmpgtb
            | M::Pcmpgtw
            | M::Pcmpgtd
            | M::Pminub
            | M::Pmaxub
            | M::Pminsw
            | M::Pmaxsw
            | M::Pavgb
            | M::Pavgw
            | M::Pmullw
            | M::Pmulhw
            | M::Pmulhuw
            | M::Pmuludq
            | M::Pmaddwd
            | M::Psadbw
            | M::Punpcklbw
            | M::Punpckhbw
            | M::Punpcklwd
            | M::Punpckhwd
            | M::Punpckldq
            | M::Punpckhdq
            | M::Punpcklqdq
            | M::Punpckhqdq
            | M::Packsswb
            | M::Packuswb
            | M::Packssdw => self.sse_int_binop(ins),
            M::Psllw
            | M::Pslld
            | M::Psllq
            | M::Psrlw
            | M::Psrld
            | M::Psrlq
            | M::Psraw
            | M::Psrad
            | M::Pslldq
            | M::Psrldq => self.sse_shift(ins),
            M::Pshufd | M::Pshuflw | M::Pshufhw => self.sse_pshuf(ins),
            M::Pextrw | M::Pinsrw => self.sse_pextrw_pinsrw(ins),
            M::Addps
            | M::Addss
            | M::Addpd
            | M::Addsd
            | M::Subps
            | M::Subss
            | M::Subpd
            | M::Subsd
            | M::Mulps
            | M::Mulss
            | M::Mulpd
            | M::Mulsd
            | M::Divps
            | M::Divss
            | M::Divpd
            | M::Divsd
            | M::Minps
            | M::Minss
            | M::Minpd
            | M::Minsd
            | M::Maxps
            | M::Maxss
            | M::Maxpd
            | M::Maxsd
            | M::Sqrtps
            | M::Sqrtss
            | M::Sqrtpd
            | M::Sqrtsd => self.sse_arith(ins),
            M::Cmpps | M::Cmpss | M::Cmppd | M::Cmpsd => self.sse_cmp(ins),
            M::Comiss | M::Ucomiss | M::Comisd | M::Ucomisd => self.sse_comis(ins),
            M::Rcpps | M::Rcpss | M::Rsqrtps | M::Rsqrtss => self.sse_approx(ins),
            M::Cvtsi2ss
            | M::Cvtsi2sd
            | M::Cvtss2si
            | M::Cvttss2si
            | M::Cvtsd2si
            | M::Cvttsd2si
            | M::Cvtss2sd
            | M::Cvtsd2ss
            | M::Cvtps2pd
            | M::Cvtpd2ps
            | M::Cvtdq2ps
            | M::Cvtps2dq
            | M::Cvttps2dq
            | M::Cvtdq2pd
            | M::Cvtpd2dq
            | M::Cvttpd2dq
            | M::Cvtpi2ps
            | M::Cvtpi2pd
            | M::Cvtps2pi
            | M::Cvttps2pi
            | M::Cvtpd2pi
            | M::Cvttpd2pi => self.sse_convert(ins),
            m if super::sse3::is_sse3(m) => self.sse3(ins),
            m if super::ssse3::is_ssse3(m) => self.ssse3(ins),
            m if super::sse41::is_sse41(m) => self.sse41(ins),
            m if super::sse42::is_sse42(m) => self.sse42(ins),
            m if super::aes_clmul::is_aes_clmul(m) => self.aes_clmul(ins),
            m if super::sha::is_sha(m) => self.sha(ins),
            M::Rdpmc => self.rdpmc(),
            m if super::system::absent_from_model(m) => Err(Fault::ud()),
            m => Err(self.unsupported(format!("instruction {m:?}"))),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use crate::interp::state::cr4;
    use crate::interp::test_util::Machine;
    use iced_x86::code_asm::*;

    /// A 64-bit machine with CR4.OSFXSR|OSXMMEXCPT set, running `a`; 0x20000.. is data.
    pub fn sse_machine(a: &mut CodeAssembler) -> Machine {
        let mut m = Machine::long64(a);
        m.cpu.state_mut().cr4 |= cr4::OSFXSR | cr4::OSXMMEXCPT;
        m
    }

    #[test]
    fn sse_without_osfxsr_is_ud_and_with_ts_is_nm() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.pxor(xmm0, xmm1).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::long64(&mut a);
        m.poke(0x9000 - 8, &[0; 8]);
        // No IDT: the #UD escalates; checking the last exception is enough.
        let _ = m.cpu.step(&m.p);
        assert_eq!(m.cpu.last_exception.map(|e| e.0), Some(6));
        let mut m = sse_machine(&mut a);
        m.cpu.state_mut().cr0 |= crate::interp::state::cr0::TS;
        let _ = m.cpu.step(&m.p);
        assert_eq!(m.cpu.last_exception.map(|e| e.0), Some(7));
    }

    #[test]
    fn ldmxcsr_stmxcsr_and_reserved_bits() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.mov(dword_ptr(0x20000), 0x7f80).unwrap();
        a.ldmxcsr(dword_ptr(0x20000)).unwrap();
        a.stmxcsr(dword_ptr(0x20004)).unwrap();
        a.hlt().unwrap();
        let mut m = sse_machine(&mut a);
        m.run();
        assert_eq!(u32::from_le_bytes(m.peek(0x20004)), 0x7f80);
        let mut a = CodeAssembler::new(64).unwrap();
        a.mov(dword_ptr(0x20000), 0x10000).unwrap();
        a.ldmxcsr(dword_ptr(0x20000)).unwrap();
        a.hlt().unwrap();
        let mut m = sse_machine(&mut a);
        let _ = m.cpu.step(&m.p);
        let _ = m.cpu.step(&m.p);
        assert_eq!(m.cpu.last_exception.map(|e| e.0), Some(13));
    }
}
