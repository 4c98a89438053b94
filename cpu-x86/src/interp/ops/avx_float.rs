//! AVX floating-point operations (SDM Vol. 2, each instruction's page): the VEX forms of
//! the SSE-SSE4.1 float instructions, computed per 128-bit lane by the legacy operation
//! code (VADDPS .. VSQRTSD, VCMPPS with its 32 predicates, VRCPPS, VRSQRTPS,
//! VADDSUBPS, VHADDPS, VMOVSLDUP, VROUNDPS, VDPPS, VBLENDPS, VBLENDVPS, VSHUFPS,
//! VUNPCKLPS, the same-width conversions), AVX's VPERMILPS/VPERMILPD, and the forms that
//! are not lane-wise: VCOMISS/VUCOMISS, VCVTSI2SS, VCVTSS2SI, the width-changing
//! conversions (VCVTPS2PD, VCVTPD2PS, VCVTDQ2PD, VCVT(T)PD2DQ) and VTESTPS/VTESTPD/VPTEST.

use super::avx::{VexOps, Ymm};
use super::sse::Xmm;
use super::sse3::{arith as addsub_hadd, dup};
use super::sse41::{blend_imm, blendv, dot, round_lanes};
use super::sse_convert::convert;
use super::sse_float::{approx, arith_shape, binop, compare, lanewise};
use super::sse_int::{join, lanes};
use super::sse_move::shuffle_fp;
use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use crate::interp::state::fl;
use iced_x86::{Instruction, Mnemonic as M, OpKind};
use rustc_apfloat::ieee::{Double, Single};

/// True for the float instructions that are not lane-wise.
pub(super) fn is_avx_float_special(m: M) -> bool {
    matches!(
        m,
        M::Vcomiss
            | M::Vucomiss
            | M::Vcomisd
            | M::Vucomisd
            | M::Vcvtsi2ss
            | M::Vcvtsi2sd
            | M::Vcvtss2si
            | M::Vcvttss2si
            | M::Vcvtsd2si
            | M::Vcvttsd2si
            | M::Vcvtps2pd
            | M::Vcvtdq2pd
            | M::Vcvtpd2ps
            | M::Vcvtpd2dq
            | M::Vcvttpd2dq
            | M::Vtestps
            | M::Vtestpd
            | M::Vptest
    )
}

/// VPERMILPS/VPERMILPD on one lane: the elements of `a` chosen by the control
/// elements of `b` (bits 1:0 of each dword, bit 1 of each qword) or by `imm`.
fn permil(m: M, o: &VexOps, lane: usize) -> Xmm {
    let (a, b) = (o.a[lane], o.b[lane]);
    if m == M::Vpermilps {
        let (x, ctl) = (lanes::<4>(a), lanes::<4>(b));
        join::<4>(std::array::from_fn(|i| {
            x[if o.has_imm { (o.imm >> (2 * i)) & 3 } else { ctl[i] as u8 & 3 } as usize]
        }))
    } else {
        let pick = |i: usize| if o.has_imm { (o.imm >> (2 * lane + i)) & 1 } else { (b[i] >> 1) as u8 & 1 };
        [a[pick(0) as usize], a[pick(1) as usize]]
    }
}

/// Lane `lane` of the float instruction with legacy twin `l` (or AVX mnemonic `l`)
/// under MXCSR `csr`, collecting exception flags in `flags`; `None` when `l` is not a
/// float lane operation.
pub(super) fn float_lane(l: M, o: &VexOps, lane: usize, csr: u32, flags: &mut u32) -> Option<Xmm> {
    let (a, b, imm) = (o.a[lane], o.b[lane], o.imm);
    if let Some((op, single, scalar)) = arith_shape(l) {
        return Some(if single {
            lanewise::<Single>(a, b, scalar, flags, |x, y, f| binop::<Single>(op, x, y, csr, f))
        } else {
            lanewise::<Double>(a, b, scalar, flags, |x, y, f| binop::<Double>(op, x, y, csr, f))
        });
    }
    let p = imm & 31;
    Some(match l {
        M::Cmpps => lanewise::<Single>(a, b, false, flags, |x, y, f| compare::<Single>(p, x, y, csr, f)),
        M::Cmpss => lanewise::<Single>(a, b, true, flags, |x, y, f| compare::<Single>(p, x, y, csr, f)),
        M::Cmppd => lanewise::<Double>(a, b, false, flags, |x, y, f| compare::<Double>(p, x, y, csr, f)),
        M::Cmpsd => lanewise::<Double>(a, b, true, flags, |x, y, f| compare::<Double>(p, x, y, csr, f)),
        M::Rcpps | M::Rcpss | M::Rsqrtps | M::Rsqrtss => {
            let rsqrt = matches!(l, M::Rsqrtps | M::Rsqrtss);
            let scalar = matches!(l, M::Rcpss | M::Rsqrtss);
            lanewise::<Single>(a, b, scalar, flags, |_, y, _| approx(rsqrt, y as u32) as u64)
        }
        M::Addsubps | M::Haddps | M::Hsubps => addsub_hadd::<Single>(l, a, b, csr, flags),
        M::Addsubpd | M::Haddpd | M::Hsubpd => addsub_hadd::<Double>(l, a, b, csr, flags),
        M::Movsldup | M::Movshdup | M::Movddup => dup(l, b),
        M::Roundps => round_lanes::<Single>(a, b, false, imm, csr, flags),
        M::Roundss => round_lanes::<Single>(a, b, true, imm, csr, flags),
        M::Roundpd => round_lanes::<Double>(a, b, false, imm, csr, flags),
        M::Roundsd => round_lanes::<Double>(a, b, true, imm, csr, flags),
        M::Dpps => dot::<Single>(a, b, imm, csr, flags),
        M::Dppd => dot::<Double>(a, b, imm, csr, flags),
        M::Blendps => blend_imm(l, a, b, imm >> (4 * lane)),
        M::Blendpd => blend_imm(l, a, b, imm >> (2 * lane)),
        M::Blendvps | M::Blendvpd => blendv(l, a, b, o.sel[lane]),
        M::Shufpd => shuffle_fp(l, a, b, imm >> (2 * lane)),
        M::Shufps | M::Unpcklps | M::Unpckhps | M::Unpcklpd | M::Unpckhpd => shuffle_fp(l, a, b, imm),
        M::Cvtdq2ps | M::Cvtps2dq | M::Cvttps2dq | M::Cvtss2sd | M::Cvtsd2ss => convert(l, a, b, csr, flags)?,
        M::Vpermilps | M::Vpermilpd => permil(l, o, lane),
        _ => return None,
    })
}

impl Ctx<'_> {
    /// The float instructions of [`is_avx_float_special`].
    pub(super) fn avx_float_special(&mut self, ins: &Instruction) -> R<()> {
        let m = ins.mnemonic();
        match m {
            M::Vcomiss | M::Vucomiss | M::Vcomisd | M::Vucomisd => self.comis_flags(ins),
            M::Vcvtss2si | M::Vcvttss2si | M::Vcvtsd2si | M::Vcvttsd2si => self.cvt_scalar_to_int(ins),
            M::Vcvtsi2ss | M::Vcvtsi2sd => {
                let base = self.vop(ins, 1)?[0];
                let v = self.cvt_int_into(ins, base, 2)?;
                self.set_ymm(ins.op0_register(), [v, [0; 2]]);
                Ok(())
            }
            M::Vtestps | M::Vtestpd | M::Vptest => {
                let (a, b) = (self.vop(ins, 0)?, self.vop(ins, 1)?);
                let mask = match m {
                    M::Vtestps => 0x8000_0000_8000_0000,
                    M::Vtestpd => 1 << 63,
                    _ => u64::MAX,
                };
                let q = |v: Ymm| [v[0][0], v[0][1], v[1][0], v[1][1]];
                let (x, y) = (q(a), q(b));
                let zf = (0..4).all(|i| x[i] & y[i] & mask == 0);
                let cf = (0..4).all(|i| !x[i] & y[i] & mask == 0);
                self.set_arith_flags(fl::ARITH, if zf { fl::ZF } else { 0 } | if cf { fl::CF } else { 0 });
                Ok(())
            }
            _ => self.avx_convert_width(ins),
        }
    }

    /// The conversions between 128 and 256 bits: VCVTPS2PD and VCVTDQ2PD widen the low
    /// half of the source (XMM or memory) into each destination lane; VCVTPD2PS and
    /// VCVT(T)PD2DQ narrow each source lane into one half of an XMM destination.
    fn avx_convert_width(&mut self, ins: &Instruction) -> R<()> {
        let m = ins.mnemonic();
        let l = super::avx::legacy_twin(m).ok_or_else(|| self.unsupported(format!("VEX conversion {m:?}")))?;
        let s = self.vop(ins, 1)?;
        let csr = self.c.st.sse.mxcsr;
        let mut f = 0;
        let conv = |v: Xmm, f: &mut u32| convert(l, [0; 2], v, csr, f).unwrap_or_default();
        let out = if matches!(m, M::Vcvtps2pd | M::Vcvtdq2pd) {
            let hi = if ins.op0_register().is_ymm() { conv([s[0][1], 0], &mut f) } else { [0; 2] };
            [conv([s[0][0], 0], &mut f), hi]
        } else {
            let wide = if ins.op1_kind() == OpKind::Memory {
                ins.memory_size().size() == 32
            } else {
                ins.op1_register().is_ymm()
            };
            let lo = conv(s[0], &mut f)[0];
            let hi = if wide { conv(s[1], &mut f)[0] } else { 0 };
            [[lo, hi], [0; 2]]
        };
        self.simd_exceptions(f)?;
        self.set_ymm(ins.op0_register(), out);
        Ok(())
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::avx::tests::{avx_machine, check_float_ops};
    use crate::interp::test_util::TestRng;
    use iced_x86::code_asm::*;

    #[test]
    fn random_avx_float_ops_match_the_host_in_every_rounding_mode() {
        if !std::arch::is_x86_feature_detected!("avx") {
            eprintln!("skipped: the host has no AVX");
            return;
        }
        let mut st = TestRng(0x2545_f491_4f6c_dd1d);
        for i in 0..400u32 {
            // Every rounding mode, with and without DAZ and FTZ; exceptions masked.
            let csr = 0x1f80 | (i % 4) << 13 | if i % 3 == 0 { 0x8040 } else { 0 };
            check_float_ops!(&mut st, true, csr;
                "vaddps ymm0, ymm1, ymm2" => |c| c.vaddps(ymm0, ymm1, ymm2).unwrap(),
                "vmulps ymm0, ymm1, ymm2" => |c| c.vmulps(ymm0, ymm1, ymm2).unwrap(),
                "vdivps ymm0, ymm1, ymm2" => |c| c.vdivps(ymm0, ymm1, ymm2).unwrap(),
                "vminps ymm0, ymm1, ymm2" => |c| c.vminps(ymm0, ymm1, ymm2).unwrap(),
                "vsqrtps ymm0, ymm2" => |c| c.vsqrtps(ymm0, ymm2).unwrap(),
                "vaddss xmm0, xmm1, xmm2" => |c| c.vaddss(xmm0, xmm1, xmm2).unwrap(),
                "vsqrtss xmm0, xmm1, xmm2" => |c| c.vsqrtss(xmm0, xmm1, xmm2).unwrap(),
                "vcmpps ymm0, ymm1, ymm2, 0x0d" => |c| c.vcmpps(ymm0, ymm1, ymm2, 0x0d).unwrap(),
                "vcmpps ymm0, ymm1, ymm2, 0x18" => |c| c.vcmpps(ymm0, ymm1, ymm2, 0x18).unwrap(),
                "vcmpss xmm0, xmm1, xmm2, 0x1f" => |c| c.vcmpss(xmm0, xmm1, xmm2, 0x1f).unwrap(),
                "vaddsubps ymm0, ymm1, ymm2" => |c| c.vaddsubps(ymm0, ymm1, ymm2).unwrap(),
                "vhaddps ymm0, ymm1, ymm2" => |c| c.vhaddps(ymm0, ymm1, ymm2).unwrap(),
                "vroundps ymm0, ymm2, 0x5" => |c| c.vroundps(ymm0, ymm2, 0x5).unwrap(),
                "vdpps ymm0, ymm1, ymm2, 0xf3" => |c| c.vdpps(ymm0, ymm1, ymm2, 0xf3).unwrap(),
                "vblendps ymm0, ymm1, ymm2, 0x5a" => |c| c.vblendps(ymm0, ymm1, ymm2, 0x5a).unwrap(),
                "vblendvps ymm0, ymm1, ymm2, ymm0" => |c| c.vblendvps(ymm0, ymm1, ymm2, ymm0).unwrap(),
                "vshufps ymm0, ymm1, ymm2, 0x9c" => |c| c.vshufps(ymm0, ymm1, ymm2, 0x9c).unwrap(),
                "vunpckhps ymm0, ymm1, ymm2" => |c| c.vunpckhps(ymm0, ymm1, ymm2).unwrap(),
                "vmovshdup ymm0, ymm2" => |c| c.vmovshdup(ymm0, ymm2).unwrap(),
                "vcvtdq2ps ymm0, ymm2" => |c| c.vcvtdq2ps(ymm0, ymm2).unwrap(),
                "vcvtps2dq ymm0, ymm2" => |c| c.vcvtps2dq(ymm0, ymm2).unwrap(),
                "vcvttps2dq ymm0, ymm2" => |c| c.vcvttps2dq(ymm0, ymm2).unwrap(),
                "vcvtps2pd ymm0, xmm2" => |c| c.vcvtps2pd(ymm0, xmm2).unwrap(),
                "vcvtps2pd xmm0, xmm2" => |c| c.vcvtps2pd(xmm0, xmm2).unwrap(),
                "vcvtdq2pd ymm0, xmm2" => |c| c.vcvtdq2pd(ymm0, xmm2).unwrap(),
                "vcomiss xmm1, xmm2" => |c| c.vcomiss(xmm1, xmm2).unwrap(),
                "vcvtss2sd xmm0, xmm1, xmm2" => |c| c.vcvtss2sd(xmm0, xmm1, xmm2).unwrap(),
                "vpermilps ymm0, ymm1, ymm2" => |c| c.vpermilps(ymm0, ymm1, ymm2).unwrap(),
                "vpermilps ymm0, ymm2, 0x6c" => |c| c.vpermilps(ymm0, ymm2, 0x6c).unwrap(),
            );
            check_float_ops!(&mut st, false, csr;
                "vaddpd ymm0, ymm1, ymm2" => |c| c.vaddpd(ymm0, ymm1, ymm2).unwrap(),
                "vsubpd ymm0, ymm1, ymm2" => |c| c.vsubpd(ymm0, ymm1, ymm2).unwrap(),
                "vmaxpd ymm0, ymm1, ymm2" => |c| c.vmaxpd(ymm0, ymm1, ymm2).unwrap(),
                "vdivsd xmm0, xmm1, xmm2" => |c| c.vdivsd(xmm0, xmm1, xmm2).unwrap(),
                "vcmppd ymm0, ymm1, ymm2, 0x14" => |c| c.vcmppd(ymm0, ymm1, ymm2, 0x14).unwrap(),
                "vhsubpd ymm0, ymm1, ymm2" => |c| c.vhsubpd(ymm0, ymm1, ymm2).unwrap(),
                "vroundsd xmm0, xmm1, xmm2, 0x2" => |c| c.vroundsd(xmm0, xmm1, xmm2, 0x2).unwrap(),
                "vblendpd ymm0, ymm1, ymm2, 0x6" => |c| c.vblendpd(ymm0, ymm1, ymm2, 0x6).unwrap(),
                "vshufpd ymm0, ymm1, ymm2, 0x9" => |c| c.vshufpd(ymm0, ymm1, ymm2, 0x9).unwrap(),
                "vmovddup ymm0, ymm2" => |c| c.vmovddup(ymm0, ymm2).unwrap(),
                "vcvtpd2ps xmm0, ymm2" => |c| c.vcvtpd2ps(xmm0, ymm2).unwrap(),
                "vcvttpd2dq xmm0, ymm2" => |c| c.vcvttpd2dq(xmm0, ymm2).unwrap(),
                "vcvtsd2ss xmm0, xmm1, xmm2" => |c| c.vcvtsd2ss(xmm0, xmm1, xmm2).unwrap(),
                "vpermilpd ymm0, ymm1, ymm2" => |c| c.vpermilpd(ymm0, ymm1, ymm2).unwrap(),
                "vpermilpd ymm0, ymm2, 0x9" => |c| c.vpermilpd(ymm0, ymm2, 0x9).unwrap(),
            );
        }
    }

    #[test]
    fn vtestps_and_vptest_set_zf_and_cf() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.vtestps(ymm1, ymm2).unwrap();
        a.setz(al).unwrap();
        a.setc(bl).unwrap();
        a.vptest(ymm1, ymm2).unwrap();
        a.setz(cl).unwrap();
        a.setc(dl).unwrap();
        a.hlt().unwrap();
        let mut m = avx_machine(&mut a);
        let st = m.cpu.state_mut();
        // Sign bits disjoint in the upper lane only; other bits overlap.
        st.ymm_hi[1] = [0x8000_0000_0000_0001, 0];
        st.ymm_hi[2] = [0x0000_0000_8000_0001, 0];
        m.run();
        assert_eq!((m.gpr(0) & 1, m.gpr(3) & 1), (1, 0), "VTESTPS: no common sign bit, one in ymm2 only");
        assert_eq!((m.gpr(1) & 1, m.gpr(2) & 1), (0, 0), "VPTEST: bit 0 common");
    }
}
