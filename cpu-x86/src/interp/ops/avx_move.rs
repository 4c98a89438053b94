//! AVX data movement (SDM Vol. 2, each instruction's page): VMOVAPS VMOVUPS VMOVAPD
//! VMOVUPD VMOVDQA VMOVDQU VMOVNTPS VMOVNTPD VMOVNTDQ VMOVNTDQA VLDDQU in 128- and
//! 256-bit forms, VMOVSS VMOVSD (the register form merges from the first source),
//! VMOVD VMOVQ, VMOVLPS VMOVHPS VMOVLPD VMOVHPD VMOVHLPS VMOVLHPS, VMOVMSKPS VMOVMSKPD
//! VPMOVMSKB, VMASKMOVDQU, VLDMXCSR VSTMXCSR, the element extracts and inserts (VPEXTR*,
//! VEXTRACTPS, VPINSR*, VINSERTPS) and the string compares VPCMPxSTRx.

use super::sse41::insertps;
use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use iced_x86::{Instruction, Mnemonic as M, OpKind};

/// True for the mnemonics of this group.
pub(super) fn is_avx_move(m: M) -> bool {
    is_full_move(m)
        || matches!(
            m,
            M::Vmovss
                | M::Vmovsd
                | M::Vmovd
                | M::Vmovq
                | M::Vmovlps
                | M::Vmovhps
                | M::Vmovlpd
                | M::Vmovhpd
                | M::Vmovhlps
                | M::Vmovlhps
                | M::Vmovmskps
                | M::Vmovmskpd
                | M::Vpmovmskb
                | M::Vmaskmovdqu
                | M::Vldmxcsr
                | M::Vstmxcsr
                | M::Vpextrb
                | M::Vpextrw
                | M::Vpextrd
                | M::Vpextrq
                | M::Vextractps
                | M::Vpinsrb
                | M::Vpinsrw
                | M::Vpinsrd
                | M::Vpinsrq
                | M::Vinsertps
                | M::Vpcmpestri
                | M::Vpcmpestri64
                | M::Vpcmpestrm
                | M::Vpcmpestrm64
                | M::Vpcmpistri
                | M::Vpcmpistrm
        )
}

/// The whole-register moves.
fn is_full_move(m: M) -> bool {
    matches!(
        m,
        M::Vmovaps
            | M::Vmovups
            | M::Vmovapd
            | M::Vmovupd
            | M::Vmovdqa
            | M::Vmovdqu
            | M::Vmovntps
            | M::Vmovntpd
            | M::Vmovntdq
            | M::Vmovntdqa
            | M::Vlddqu
    )
}

impl Ctx<'_> {
    /// The instructions of this group.
    pub(super) fn avx_move(&mut self, ins: &Instruction) -> R<()> {
        let m = ins.mnemonic();
        let to_memory = ins.op0_kind() == OpKind::Memory;
        match m {
            m if is_full_move(m) => {
                if to_memory {
                    let r = ins.op1_register();
                    let v = self.ymm(r);
                    self.write_vmem(ins, r.size(), v)
                } else {
                    let v = self.vop(ins, 1)?;
                    self.set_ymm(ins.op0_register(), v);
                    Ok(())
                }
            }
            M::Vmovss | M::Vmovsd => {
                let mask = if m == M::Vmovss { 0xffff_ffffu64 } else { u64::MAX };
                if to_memory {
                    let v = self.ymm(ins.op1_register())[0][0];
                    return self.write_op(ins, 0, if m == M::Vmovss { 4 } else { 8 }, v & mask);
                }
                let v = if ins.op1_kind() == OpKind::Memory {
                    [self.vop(ins, 1)?[0][0], 0]
                } else {
                    let (a, b) = (self.ymm(ins.op1_register())[0], self.ymm(ins.op2_register())[0]);
                    [(a[0] & !mask) | (b[0] & mask), a[1]]
                };
                self.set_ymm(ins.op0_register(), [v, [0; 2]]);
                Ok(())
            }
            M::Vmovd | M::Vmovq => {
                let (size, mask) = if m == M::Vmovd { (4, 0xffff_ffffu64) } else { (8, u64::MAX) };
                let v = self.vop(ins, 1)?[0][0] & mask;
                if ins.op0_kind() == OpKind::Register && ins.op0_register().is_xmm() {
                    self.set_ymm(ins.op0_register(), [[v, 0], [0; 2]]);
                    Ok(())
                } else {
                    self.write_op(ins, 0, size, v)
                }
            }
            M::Vmovlps | M::Vmovhps | M::Vmovlpd | M::Vmovhpd | M::Vmovhlps | M::Vmovlhps => {
                let high = matches!(m, M::Vmovhps | M::Vmovhpd);
                if to_memory {
                    let v = self.ymm(ins.op1_register())[0];
                    return self.write_op(ins, 0, 8, v[high as usize]);
                }
                let a = self.ymm(ins.op1_register())[0];
                let b = self.vop(ins, 2)?[0];
                let v = match m {
                    M::Vmovhlps => [b[1], a[1]],
                    M::Vmovlhps => [a[0], b[0]],
                    _ if high => [a[0], b[0]],
                    _ => [b[0], a[1]],
                };
                self.set_ymm(ins.op0_register(), [v, [0; 2]]);
                Ok(())
            }
            M::Vmovmskps | M::Vmovmskpd | M::Vpmovmskb => {
                let v = self.ymm(ins.op1_register());
                let q = [v[0][0], v[0][1], v[1][0], v[1][1]];
                let n = ins.op1_register().size();
                let width = match m {
                    M::Vmovmskps => 4,
                    M::Vmovmskpd => 8,
                    _ => 1,
                };
                // The sign bit of element i is bit `top` of the register.
                let bits = (0..n / width).fold(0u64, |acc, i| {
                    let top = (i + 1) * width * 8 - 1;
                    acc | (q[top / 64] >> (top % 64) & 1) << i
                });
                self.set_gpr(
                    ins.op0_register().full_register().number(),
                    (ins.op0_register().size() as u8).max(4),
                    bits,
                );
                Ok(())
            }
            M::Vmaskmovdqu => self.masked_store(ins),
            M::Vldmxcsr | M::Vstmxcsr => self.mxcsr_transfer(ins),
            M::Vpextrb | M::Vpextrw | M::Vpextrd | M::Vpextrq | M::Vextractps => self.sse41_extract(ins),
            M::Vpinsrb | M::Vpinsrw | M::Vpinsrd | M::Vpinsrq => {
                let base = self.ymm(ins.op1_register())[0];
                let v = self.sse41_insert(ins, base, 2)?;
                self.set_ymm(ins.op0_register(), [v, [0; 2]]);
                Ok(())
            }
            M::Vinsertps => {
                let a = self.ymm(ins.op1_register())[0];
                let b = self.vop(ins, 2)?[0];
                let v = insertps(a, b, ins.immediate8(), ins.op2_kind() == OpKind::Memory);
                self.set_ymm(ins.op0_register(), [v, [0; 2]]);
                Ok(())
            }
            _ => {
                let (d, s) = (self.ymm(ins.op0_register())[0], self.vop(ins, 1)?[0]);
                self.string_compare(ins, d, s)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::avx::tests::avx_machine;
    use iced_x86::code_asm::*;

    #[test]
    fn moves_between_memory_registers_and_gprs() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.vmovdqu(ymm0, ptr(0x20000)).unwrap();
        a.vmovdqa(ptr(0x20040), ymm0).unwrap();
        a.vmovss_3(xmm1, xmm2, xmm0).unwrap();
        a.vmovss(xmm3, dword_ptr(0x20004)).unwrap();
        a.vmovq(rax, xmm0).unwrap();
        a.vmovd(xmm4, eax).unwrap();
        a.vmovhps_3(xmm5, xmm2, qword_ptr(0x20008)).unwrap();
        a.vpmovmskb(ecx, ymm0).unwrap();
        a.vmovmskpd(edx, ymm0).unwrap();
        a.vpinsrw(xmm6, xmm2, eax, 3).unwrap();
        a.vpextrb(esi, xmm0, 9).unwrap();
        a.hlt().unwrap();
        let mut m = avx_machine(&mut a);
        let data: [u64; 4] = [0x8877_6655_4433_2211, 0x0ff0_8000_7f01_ff00, 3, 0x8000_0000_0000_0000];
        for (i, q) in data.iter().enumerate() {
            m.poke(0x20000 + 8 * i as u64, &q.to_le_bytes());
        }
        let st = m.cpu.state_mut();
        st.sse.xmm[2] = [0xaaaa_bbbb_cccc_dddd, 0x1111_2222_3333_4444];
        for r in [1, 3, 4, 5, 6] {
            st.ymm_hi[r] = [9, 9];
        }
        m.run();
        let st = m.cpu.state();
        assert_eq!((st.sse.xmm[0], st.ymm_hi[0]), ([data[0], data[1]], [data[2], data[3]]));
        assert_eq!(m.peek::<32>(0x20040), m.peek::<32>(0x20000));
        assert_eq!((st.sse.xmm[1], st.ymm_hi[1]), ([0xaaaa_bbbb_4433_2211, 0x1111_2222_3333_4444], [0, 0]));
        assert_eq!((st.sse.xmm[3], st.ymm_hi[3]), ([0x8877_6655, 0], [0, 0]));
        assert_eq!(m.gpr(0), data[0]);
        assert_eq!((st.sse.xmm[4], st.ymm_hi[4]), ([0x4433_2211, 0], [0, 0]));
        assert_eq!((st.sse.xmm[5], st.ymm_hi[5]), ([0xaaaa_bbbb_cccc_dddd, data[1]], [0, 0]));
        // Bytes with bit 7: 0x88 (7), 0xff (8 + 1), 0x80 (8 + 5), 0xf0 (8 + 6), 0x80 (31).
        assert_eq!(m.gpr(1), 1 << 7 | 1 << 9 | 1 << 13 | 1 << 14 | 1 << 31);
        assert_eq!(m.gpr(2), 0b1001);
        assert_eq!(st.sse.xmm[6], [0x2211_bbbb_cccc_dddd, 0x1111_2222_3333_4444]);
        assert_eq!(m.gpr(6), 0xff);
    }

    #[test]
    fn vex_string_compares_match_the_legacy_forms() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.mov(eax, 5).unwrap();
        a.mov(edx, 12).unwrap();
        a.pcmpestri(xmm1, xmm2, 0x0c).unwrap();
        a.mov(esi, ecx).unwrap();
        a.pushfq().unwrap();
        a.vpcmpestri(xmm1, xmm2, 0x0c).unwrap();
        a.mov(edi, ecx).unwrap();
        a.pushfq().unwrap();
        a.vpcmpistrm(xmm1, xmm2, 0x44).unwrap();
        a.hlt().unwrap();
        let mut m = avx_machine(&mut a);
        let text = |s: &[u8; 16]| {
            [u64::from_le_bytes(s[..8].try_into().unwrap()), u64::from_le_bytes(s[8..].try_into().unwrap())]
        };
        let st = m.cpu.state_mut();
        st.sse.xmm[1] = text(b"hello\0\0\0\0\0\0\0\0\0\0\0");
        st.sse.xmm[2] = text(b"say hello there\0");
        st.ymm_hi[0] = [1, 1];
        m.run();
        assert_eq!((m.gpr(6), m.gpr(7)), (4, 4), "substring at 4 in both forms");
        assert_eq!(m.peek::<8>(0x9000 - 8), m.peek::<8>(0x9000 - 16), "same flags");
        assert_ne!(m.cpu.state().sse.xmm[0], [0, 0], "VPCMPISTRM writes its mask to XMM0");
        assert_eq!(m.cpu.state().ymm_hi[0], [0, 0], "and zeroes YMM0's upper half");
    }
}
