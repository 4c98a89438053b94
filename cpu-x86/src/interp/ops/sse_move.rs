//! SSE/SSE2 data movement and shuffles: MOVAPS MOVUPS MOVAPD MOVUPD MOVDQA MOVDQU
//! MOVNTPS MOVNTPD MOVNTDQ MOVNTI, MOVSS MOVSD, MOVD MOVQ, MOVLPS MOVHPS MOVLPD MOVHPD
//! MOVHLPS MOVLHPS, MOVMSKPS MOVMSKPD PMOVMSKB, MASKMOVDQU, SHUFPS SHUFPD, UNPCKLPS
//! UNPCKHPS UNPCKLPD UNPCKHPD (SDM Vol. 2, each instruction's page).

use super::sse::Xmm;
use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use iced_x86::{Instruction, Mnemonic as M, OpKind};

/// The 32-bit lane `i` (0-3) of `v`.
pub fn lane32(v: Xmm, i: usize) -> u32 {
    (v[i / 2] >> (32 * (i % 2))) as u32
}

/// An XMM value from four 32-bit lanes.
pub fn from_lanes32(l: [u32; 4]) -> Xmm {
    [l[0] as u64 | (l[1] as u64) << 32, l[2] as u64 | (l[3] as u64) << 32]
}

impl Ctx<'_> {
    /// Writes operand 0 (an XMM register or a 16-byte memory operand).
    pub(super) fn xmm_store(&mut self, ins: &Instruction, v: Xmm) -> R<()> {
        if ins.op0_kind() == OpKind::Memory {
            self.write_m128(ins, v)
        } else {
            let r = self.xmm_dst(ins)?;
            self.set_xmm(r, v);
            Ok(())
        }
    }

    /// Writes the low `size` bytes of `v` to operand 0 when it is memory or a GPR.
    fn store_low(&mut self, ins: &Instruction, size: u8, v: u64) -> R<()> {
        self.write_op(ins, 0, size, v)
    }

    /// Full 128-bit moves (aligned, unaligned and non-temporal).
    pub(super) fn sse_mov128(&mut self, ins: &Instruction) -> R<()> {
        self.sse_check()?;
        let v = self.xmm_op(ins, 1)?;
        self.xmm_store(ins, v)
    }

    /// MOVSS and MOVSD (register forms merge the low element, loads zero the rest).
    pub(super) fn sse_mov_scalar(&mut self, ins: &Instruction) -> R<()> {
        self.sse_check()?;
        let size: u8 = if ins.mnemonic() == M::Movss { 4 } else { 8 };
        let mask = if size == 4 { 0xffff_ffffu64 } else { u64::MAX };
        let src = self.xmm_op(ins, 1)?;
        match (ins.op0_kind(), ins.op1_kind()) {
            (OpKind::Memory, _) => self.store_low(ins, size, src[0] & mask),
            (_, OpKind::Memory) => {
                let r = self.xmm_dst(ins)?;
                self.set_xmm(r, [src[0] & mask, 0]);
                Ok(())
            }
            _ => {
                let r = self.xmm_dst(ins)?;
                let mut d = self.xmm(r);
                d[0] = (d[0] & !mask) | (src[0] & mask);
                self.set_xmm(r, d);
                Ok(())
            }
        }
    }

    /// MOVD and MOVQ between XMM registers, GPRs and memory (loads zero-extend).
    pub(super) fn sse_movd_movq(&mut self, ins: &Instruction) -> R<()> {
        if (0..ins.op_count()).any(|i| ins.op_kind(i) == OpKind::Register && ins.op_register(i).is_mm()) {
            return self.mmx_move(ins);
        }
        self.sse_check()?;
        let size: u8 = if ins.mnemonic() == M::Movd { 4 } else { 8 };
        let mask = if size == 4 { 0xffff_ffffu64 } else { u64::MAX };
        if ins.op0_kind() == OpKind::Register && ins.op0_register().is_xmm() {
            let src = self.xmm_op(ins, 1)?;
            let r = self.xmm_dst(ins)?;
            self.set_xmm(r, [src[0] & mask, 0]);
            Ok(())
        } else {
            let src = self.xmm_op(ins, 1)?;
            self.store_low(ins, size, src[0] & mask)
        }
    }

    /// MOVLPS/MOVLPD/MOVHPS/MOVHPD (one quadword to or from memory) and
    /// MOVHLPS/MOVLHPS (between registers).
    pub(super) fn sse_mov_half(&mut self, ins: &Instruction) -> R<()> {
        self.sse_check()?;
        let high = matches!(ins.mnemonic(), M::Movhps | M::Movhpd | M::Movlhps);
        if ins.op0_kind() == OpKind::Memory {
            let src = self.xmm_op(ins, 1)?;
            return self.store_low(ins, 8, src[high as usize]);
        }
        let src = self.xmm_op(ins, 1)?;
        let r = self.xmm_dst(ins)?;
        let mut d = self.xmm(r);
        let q = if ins.mnemonic() == M::Movhlps { src[1] } else { src[0] };
        d[high as usize] = q;
        self.set_xmm(r, d);
        Ok(())
    }

    /// MOVMSKPS, MOVMSKPD and PMOVMSKB: sign bits into a GPR.
    pub(super) fn sse_movmsk(&mut self, ins: &Instruction) -> R<()> {
        if ins.op1_register().is_mm() {
            return self.mmx_misc(ins);
        }
        self.sse_check()?;
        let v = self.xmm_op(ins, 1)?;
        let bits = match ins.mnemonic() {
            M::Movmskps => (0..4).fold(0, |m, i| m | ((lane32(v, i) >> 31) << i) as u64),
            M::Movmskpd => (v[0] >> 63) | ((v[1] >> 63) << 1),
            _ => {
                let b = (v[0] as u128 | (v[1] as u128) << 64).to_le_bytes();
                (0..16).fold(0, |m, i| m | (((b[i] >> 7) as u64) << i))
            }
        };
        let size = ins.op0_register().size() as u8;
        self.set_gpr(ins.op0_register().full_register().number(), size.max(4), bits);
        Ok(())
    }

    /// MOVNTI: a non-temporal GPR store (an ordinary store here).
    pub(super) fn movnti(&mut self, ins: &Instruction) -> R<()> {
        let size = self.op_size(ins, 1);
        let v = self.read_op(ins, 1, size)?;
        self.write_op(ins, 0, size, v)
    }

    /// MASKMOVDQU: stores the bytes of XMM1 whose mask byte in XMM2 has bit 7 set to
    /// DS:rDI.
    pub(super) fn maskmovdqu(&mut self, ins: &Instruction) -> R<()> {
        self.sse_check()?;
        self.masked_store(ins)
    }

    /// The store of MASKMOVDQU and VMASKMOVDQU (operands 1 and 2: data and mask).
    pub(super) fn masked_store(&mut self, ins: &Instruction) -> R<()> {
        let data = self.xmm(ins.op1_register());
        let mask = self.xmm(ins.op2_register());
        let (seg, off, amask) = self.masked_store_target(ins);
        let d = (data[0] as u128 | (data[1] as u128) << 64).to_le_bytes();
        let m = (mask[0] as u128 | (mask[1] as u128) << 64).to_le_bytes();
        for i in 0..16 {
            if m[i] & 0x80 != 0 {
                self.write(seg, off.wrapping_add(i as u64) & amask, 1, d[i] as u64)?;
            }
        }
        Ok(())
    }

    /// SHUFPS/SHUFPD and the UNPCK{L,H}P{S,D} interleaves.
    pub(super) fn sse_shuffle_fp(&mut self, ins: &Instruction) -> R<()> {
        self.sse_check()?;
        let s = self.xmm_op(ins, 1)?;
        let r = self.xmm_dst(ins)?;
        let d = self.xmm(r);
        self.set_xmm(r, shuffle_fp(ins.mnemonic(), d, s, ins.immediate8()));
        Ok(())
    }
}

/// SHUFPS/SHUFPD (by `imm`) and the UNPCK{L,H}P{S,D} interleaves of `d` and `s`.
pub fn shuffle_fp(m: M, d: Xmm, s: Xmm, imm: u8) -> Xmm {
    let imm = imm as usize;
    match m {
        M::Shufps => from_lanes32([
            lane32(d, imm & 3),
            lane32(d, (imm >> 2) & 3),
            lane32(s, (imm >> 4) & 3),
            lane32(s, (imm >> 6) & 3),
        ]),
        M::Shufpd => [d[imm & 1], s[(imm >> 1) & 1]],
        M::Unpcklps => from_lanes32([lane32(d, 0), lane32(s, 0), lane32(d, 1), lane32(s, 1)]),
        M::Unpckhps => from_lanes32([lane32(d, 2), lane32(s, 2), lane32(d, 3), lane32(s, 3)]),
        M::Unpcklpd => [d[0], s[0]],
        _ => [d[1], s[1]],
    }
}

#[cfg(test)]
mod tests {
    use super::super::sse::tests::sse_machine;
    use iced_x86::code_asm::*;

    fn poke128(m: &crate::interp::test_util::Machine, addr: u64, v: u128) {
        m.poke(addr, &v.to_le_bytes());
    }

    #[test]
    fn moves_between_memory_registers_and_gprs() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.movdqa(xmm0, xmmword_ptr(0x20000)).unwrap();
        a.movups(xmmword_ptr(0x20011), xmm0).unwrap();
        a.movq(rax, xmm0).unwrap();
        a.movd(xmm1, ecx).unwrap();
        a.movss(xmm2, dword_ptr(0x20000)).unwrap();
        a.movsd_2(xmm3, xmm0).unwrap();
        a.movhps(xmm1, qword_ptr(0x20008)).unwrap();
        a.movhlps(xmm4, xmm0).unwrap();
        a.pmovmskb(edx, xmm0).unwrap();
        a.movmskps(ebx, xmm0).unwrap();
        a.hlt().unwrap();
        let mut m = sse_machine(&mut a);
        let v: u128 = 0x8011_2233_0044_5566_7788_99aa_bbcc_ddee;
        poke128(&m, 0x20000, v);
        m.cpu.state_mut().gpr[1] = 0xdead_beef_1234_5678;
        m.cpu.state_mut().sse.xmm[2] = [u64::MAX; 2];
        m.cpu.state_mut().sse.xmm[3] = [u64::MAX; 2];
        m.run();
        assert_eq!(u128::from_le_bytes(m.peek(0x20011)), v);
        assert_eq!(m.gpr(0), v as u64);
        let s = &m.cpu.state().sse;
        assert_eq!(s.xmm[1], [0x1234_5678, (v >> 64) as u64]);
        assert_eq!(s.xmm[2], [0xbbcc_ddee, 0]);
        assert_eq!(s.xmm[3], [v as u64, u64::MAX]);
        assert_eq!(s.xmm[4][0], (v >> 64) as u64);
        // Bytes with bit 7 set: ee dd cc bb aa 99 88 (0-6) and 80 (15).
        assert_eq!(m.gpr(2), 0x807f);
        // Dword sign bits: bbccddee (1), 778899aa (0), 00445566 (0), 80112233 (1).
        assert_eq!(m.gpr(3), 0b1001);
    }

    #[test]
    fn misaligned_movdqa_is_gp() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.movdqa(xmm0, xmmword_ptr(0x20008)).unwrap();
        a.hlt().unwrap();
        let mut m = sse_machine(&mut a);
        let _ = m.cpu.step(&m.p);
        assert_eq!(m.cpu.last_exception.map(|e| e.0), Some(13));
    }

    #[test]
    fn shufps_and_unpck() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.movdqa(xmm2, xmm0).unwrap();
        a.shufps(xmm0, xmm1, 0x1b).unwrap();
        a.unpcklps(xmm2, xmm1).unwrap();
        a.hlt().unwrap();
        let mut m = sse_machine(&mut a);
        m.cpu.state_mut().sse.xmm[0] = super::from_lanes32([0, 1, 2, 3]);
        m.cpu.state_mut().sse.xmm[1] = super::from_lanes32([10, 11, 12, 13]);
        m.run();
        let s = &m.cpu.state().sse;
        assert_eq!(s.xmm[0], super::from_lanes32([3, 2, 11, 10]));
        assert_eq!(s.xmm[2], super::from_lanes32([0, 10, 1, 11]));
    }

    #[test]
    fn maskmovdqu_stores_selected_bytes_and_movnti_stores_a_gpr() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.mov(rdi, 0x20000u64).unwrap();
        a.maskmovdqu(xmm0, xmm1).unwrap();
        a.mov(eax, 0x1234_5678).unwrap();
        a.movnti(dword_ptr(0x20020), eax).unwrap();
        a.hlt().unwrap();
        let mut m = sse_machine(&mut a);
        m.poke(0x20000, &[0xee; 16]);
        let st = m.cpu.state_mut();
        st.sse.xmm[0] = [0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908];
        // Bytes 0, 3 and 15 selected (bit 7 of the mask byte).
        st.sse.xmm[1] = [0x0000_0000_8000_0080, 0xff00_0000_0000_007f];
        m.run();
        let got: [u8; 16] = m.peek(0x20000);
        let mut want = [0xee; 16];
        want[0] = 0x00;
        want[3] = 0x03;
        want[15] = 0x0f;
        assert_eq!(got, want);
        assert_eq!(u32::from_le_bytes(m.peek(0x20020)), 0x1234_5678);
    }
}
