//! SSE/SSE2 conversions: CVTSI2SS CVTSI2SD, CVT(T)SS2SI CVT(T)SD2SI, CVTSS2SD CVTSD2SS,
//! CVTPS2PD CVTPD2PS, CVTDQ2PS CVT(T)PS2DQ, CVTDQ2PD CVT(T)PD2DQ. Out-of-range and NaN
//! float-to-integer conversions give the integer indefinite (sign bit only) with IE
//! (SDM Vol. 1 §4.8.3.7, §11.5.2.1; Vol. 2 each instruction's page).

use super::sse::{mxcsr, Xmm};
use super::sse_float::{mxcsr_round, Bits, SseFloat};
use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use iced_x86::{Instruction, Mnemonic as M};
use rustc_apfloat::ieee::{Double, Single};
use rustc_apfloat::{FloatConvert, Round, Status, StatusAnd};

/// Float lane `x` of format `F` to a signed integer of `bits` (32 or 64) bits, rounding
/// with `round`; invalid or out of range gives the integer indefinite.
pub fn to_int<F: SseFloat>(x: u64, bits: usize, round: Round, csr: u32, flags: &mut u32) -> u64 {
    // Float-to-integer conversions never report a denormal operand (only IE and PE).
    let mut de = 0;
    let x = Bits::<F>::source(x, csr, &mut de);
    let indefinite = 1u64 << (bits - 1);
    if Bits::<F>::is_nan(x) {
        *flags |= mxcsr::IE;
        return indefinite;
    }
    let mut exact = false;
    let r = Bits::<F>::val(x).to_i128_r(bits, round, &mut exact);
    if r.status.contains(Status::INVALID_OP) {
        *flags |= mxcsr::IE;
        return indefinite;
    }
    if !exact {
        *flags |= mxcsr::PE;
    }
    r.value as u64 & (u64::MAX >> (64 - bits))
}

/// Signed integer `v` to format `F`.
pub fn from_int<F: SseFloat>(v: i64, round: Round, csr: u32, flags: &mut u32) -> u64 {
    Bits::<F>::result(F::from_i128_r(v as i128, round), csr, flags)
}

/// Converts one lane between formats (`S` to `T`), keeping NaN payloads the x86 way
/// (the fraction's top bits carry over, quiet bit set).
pub fn convert_lane<S: SseFloat + FloatConvert<T>, T: SseFloat>(
    x: u64,
    round: Round,
    csr: u32,
    flags: &mut u32,
) -> u64 {
    let x = Bits::<S>::source(x, csr, flags);
    if Bits::<S>::is_nan(x) {
        if Bits::<S>::is_snan(x) {
            *flags |= mxcsr::IE;
        }
        let sign = if x & Bits::<S>::sign() != 0 { Bits::<T>::sign() } else { 0 };
        let frac = x & ((1u64 << S::FRAC) - 1);
        let frac = if T::FRAC > S::FRAC { frac << (T::FRAC - S::FRAC) } else { frac >> (S::FRAC - T::FRAC) };
        let exp = ((1u64 << (T::WIDTH - 1 - T::FRAC)) - 1) << T::FRAC;
        return Bits::<T>::quiet(sign | exp | frac);
    }
    let mut loses = false;
    let mut r: StatusAnd<T> = Bits::<S>::val(x).convert_r(round, &mut loses);
    if r.status == Status::INEXACT && r.value.is_largest() && Bits::<T>::overflows(Bits::<S>::wide(x)) {
        r.status |= Status::OVERFLOW;
    }
    if r.status == Status::INEXACT && r.value.is_smallest_normalized() {
        // Scaled out of the denormal range, not into overflow (half precision's largest
        // exponent is 15).
        let k = if T::WIDTH == 16 { 16 } else { 64 };
        let scaled: StatusAnd<T> = Bits::<S>::val(x).scalbn(k).convert_r(round, &mut loses);
        if Bits::<T>::tiny(scaled.value, k) {
            r.status |= Status::UNDERFLOW;
        }
    }
    Bits::<T>::result(r, csr, flags)
}

/// The conversions from 128 bits to 128 bits of `s` (the scalar forms keep the rest of
/// `d`; CVTPS2PD and CVTDQ2PD read the low half of `s`, CVTPD2PS and CVT(T)PD2DQ write
/// the low half of the result), or `None` for another mnemonic.
pub fn convert(m: M, d: Xmm, s: Xmm, csr: u32, f: &mut u32) -> Option<Xmm> {
    let round = mxcsr_round(csr);
    let lo = |v: u64| v & 0xffff_ffff;
    let hi = |v: u64| v >> 32;
    let pack = |a: u64, b: u64| a | b << 32;
    Some(match m {
        M::Cvtss2sd => [convert_lane::<Single, Double>(lo(s[0]), round, csr, f), d[1]],
        M::Cvtsd2ss => [(d[0] & !0xffff_ffff) | convert_lane::<Double, Single>(s[0], round, csr, f), d[1]],
        M::Cvtps2pd => [
            convert_lane::<Single, Double>(lo(s[0]), round, csr, f),
            convert_lane::<Single, Double>(hi(s[0]), round, csr, f),
        ],
        M::Cvtpd2ps => [
            pack(
                convert_lane::<Double, Single>(s[0], round, csr, f),
                convert_lane::<Double, Single>(s[1], round, csr, f),
            ),
            0,
        ],
        M::Cvtdq2ps => {
            let c = |v: u64, f: &mut u32| from_int::<Single>(v as u32 as i32 as i64, round, csr, f);
            [pack(c(lo(s[0]), f), c(hi(s[0]), f)), pack(c(lo(s[1]), f), c(hi(s[1]), f))]
        }
        M::Cvtdq2pd => [
            from_int::<Double>(s[0] as u32 as i32 as i64, round, csr, f),
            from_int::<Double>((s[0] >> 32) as u32 as i32 as i64, round, csr, f),
        ],
        M::Cvtps2dq | M::Cvttps2dq => {
            let rd = if m == M::Cvttps2dq { Round::TowardZero } else { round };
            let c = |v: u64, f: &mut u32| to_int::<Single>(v, 32, rd, csr, f);
            [pack(c(lo(s[0]), f), c(hi(s[0]), f)), pack(c(lo(s[1]), f), c(hi(s[1]), f))]
        }
        M::Cvtpd2dq | M::Cvttpd2dq => {
            let rd = if m == M::Cvttpd2dq { Round::TowardZero } else { round };
            [pack(to_int::<Double>(s[0], 32, rd, csr, f), to_int::<Double>(s[1], 32, rd, csr, f)), 0]
        }
        _ => return None,
    })
}

impl Ctx<'_> {
    /// CVTSI2SS/CVTSI2SD: a 32- or 64-bit signed integer into the low lane.
    fn cvt_int_to_scalar(&mut self, ins: &Instruction) -> R<()> {
        let r = self.xmm_dst(ins)?;
        let d = self.cvt_int_into(ins, self.xmm(r), 1)?;
        self.set_xmm(r, d);
        Ok(())
    }

    /// CVTSI2SS/CVTSI2SD and their VEX forms: `d` with its low lane replaced by the
    /// integer operand `src` converted (after any unmasked exception).
    pub(super) fn cvt_int_into(&mut self, ins: &Instruction, mut d: Xmm, src: u32) -> R<Xmm> {
        let size = self.op_size(ins, src);
        let raw = self.read_op(ins, src, size)?;
        let v = if size == 8 { raw as i64 } else { raw as u32 as i32 as i64 };
        let csr = self.c.st.sse.mxcsr;
        let round = mxcsr_round(csr);
        let mut flags = 0;
        if matches!(ins.mnemonic(), M::Cvtsi2ss | M::Vcvtsi2ss) {
            d[0] = (d[0] & !0xffff_ffff) | from_int::<Single>(v, round, csr, &mut flags);
        } else {
            d[0] = from_int::<Double>(v, round, csr, &mut flags);
        }
        self.simd_exceptions(flags)?;
        Ok(d)
    }

    /// CVT(T)SS2SI and CVT(T)SD2SI (and their VEX forms) into a 32- or 64-bit GPR.
    pub(super) fn cvt_scalar_to_int(&mut self, ins: &Instruction) -> R<()> {
        let src = self.xmm_op(ins, 1)?[0];
        let csr = self.c.st.sse.mxcsr;
        let truncate = matches!(ins.mnemonic(), M::Cvttss2si | M::Cvttsd2si | M::Vcvttss2si | M::Vcvttsd2si);
        let round = if truncate { Round::TowardZero } else { mxcsr_round(csr) };
        let dst = ins.op0_register();
        let bits = dst.size() * 8;
        let mut flags = 0;
        let v = if matches!(ins.mnemonic(), M::Cvtss2si | M::Cvttss2si | M::Vcvtss2si | M::Vcvttss2si) {
            to_int::<Single>(src & 0xffff_ffff, bits, round, csr, &mut flags)
        } else {
            to_int::<Double>(src, bits, round, csr, &mut flags)
        };
        self.simd_exceptions(flags)?;
        self.set_gpr(dst.full_register().number(), bits as u8 / 8, v);
        Ok(())
    }

    /// The conversion group's dispatcher.
    pub(super) fn sse_convert(&mut self, ins: &Instruction) -> R<()> {
        self.sse_check()?;
        match ins.mnemonic() {
            M::Cvtpi2ps | M::Cvtpi2pd | M::Cvtps2pi | M::Cvttps2pi | M::Cvtpd2pi | M::Cvttpd2pi => {
                return self.mmx_convert(ins)
            }
            M::Cvtsi2ss | M::Cvtsi2sd => return self.cvt_int_to_scalar(ins),
            M::Cvtss2si | M::Cvttss2si | M::Cvtsd2si | M::Cvttsd2si => return self.cvt_scalar_to_int(ins),
            _ => {}
        }
        let s = self.xmm_op(ins, 1)?;
        let r = self.xmm_dst(ins)?;
        let d = self.xmm(r);
        let m = ins.mnemonic();
        let mut f = 0;
        let out = convert(m, d, s, self.c.st.sse.mxcsr, &mut f)
            .ok_or_else(|| self.unsupported(format!("SSE conversion {m:?}")))?;
        self.simd_exceptions(f)?;
        self.set_xmm(r, out);
        Ok(())
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::sse::tests::sse_machine;
    use iced_x86::code_asm::*;
    use std::arch::asm;
    use std::arch::x86_64::*;

    fn run(op: impl Fn(&mut CodeAssembler), x0: [u64; 2], x1: [u64; 2], gpr1: u64, csr: u32) -> ([u64; 2], u64, u32) {
        let mut c = CodeAssembler::new(64).unwrap();
        op(&mut c);
        c.hlt().unwrap();
        let mut m = sse_machine(&mut c);
        let st = m.cpu.state_mut();
        st.sse.xmm[0] = x0;
        st.sse.xmm[1] = x1;
        st.gpr[1] = gpr1;
        st.sse.mxcsr = csr;
        m.run();
        (m.cpu.state().sse.xmm[0], m.gpr(0), m.cpu.state().sse.mxcsr)
    }

    fn bits(v: __m128i) -> [u64; 2] {
        // SAFETY: both are 16 plain bytes.
        unsafe { std::mem::transmute(v) }
    }

    #[test]
    fn float_to_int_matches_the_host() {
        for &v in &[1.5f64, 2.5, -2.5, 3e9, -3e9, 1e20, f64::NAN, -0.7, 2147483647.4] {
            let x1 = [v.to_bits(), (v * 3.0).to_bits()];
            // SAFETY: SSE2 is part of the x86_64 baseline.
            let (h32, h64, ht, hdq) = unsafe {
                let m = _mm_set_pd(v * 3.0, v);
                (_mm_cvtsd_si32(m), _mm_cvtsd_si64(m), _mm_cvttsd_si64(m), bits(_mm_cvtpd_epi32(m)))
            };
            assert_eq!(run(|c| c.cvtsd2si(eax, xmm1).unwrap(), [0; 2], x1, 0, 0x1f80).1, h32 as u32 as u64, "{v}");
            assert_eq!(run(|c| c.cvtsd2si(rax, xmm1).unwrap(), [0; 2], x1, 0, 0x1f80).1, h64 as u64, "{v}");
            assert_eq!(run(|c| c.cvttsd2si(rax, xmm1).unwrap(), [0; 2], x1, 0, 0x1f80).1, ht as u64, "{v}");
            assert_eq!(run(|c| c.cvtpd2dq(xmm0, xmm1).unwrap(), [0; 2], x1, 0, 0x1f80).0, hdq, "{v}");
            let f = v as f32;
            let x1s = [f.to_bits() as u64, 0];
            // SAFETY: as above.
            let (hs, hps) = unsafe {
                let m = _mm_set_ps(0.0, 0.0, 0.0, f);
                (_mm_cvttss_si32(m), bits(_mm_cvtps_epi32(m)))
            };
            assert_eq!(run(|c| c.cvttss2si(eax, xmm1).unwrap(), [0; 2], x1s, 0, 0x1f80).1, hs as u32 as u64, "{v}");
            assert_eq!(run(|c| c.cvtps2dq(xmm0, xmm1).unwrap(), [0; 2], x1s, 0, 0x1f80).0, hps, "{v}");
        }
    }

    #[test]
    fn int_to_float_and_width_changes_match_the_host() {
        for &n in &[0i64, 1, -1, 16_777_217, i64::MAX, i64::MIN + 1, 0x1234_5678_9abc_def1] {
            for csr in [0x1f80u32, 0x3f80, 0x5f80, 0x7f80] {
                let mut csr_io = csr;
                let (mut hs, mut hd) = ([0u64; 2], [0u64; 2]);
                // SAFETY: the asm saves MXCSR on the stack, loads `csr_io`, converts RCX
                // into zeroed XMM registers, stores them to the two buffers and restores
                // MXCSR.
                unsafe {
                    asm!(
                        "sub rsp, 8", "stmxcsr [rsp]", "ldmxcsr [{c}]",
                        "xorps xmm0, xmm0", "xorps xmm1, xmm1",
                        "cvtsi2ss xmm0, {n}", "cvtsi2sd xmm1, {n}",
                        "movdqu [{s}], xmm0", "movdqu [{d}], xmm1",
                        "ldmxcsr [rsp]", "add rsp, 8",
                        c = in(reg) &mut csr_io, n = in(reg) n, s = in(reg) hs.as_mut_ptr(),
                        d = in(reg) hd.as_mut_ptr(), out("xmm0") _, out("xmm1") _,
                    );
                }
                assert_eq!(run(|c| c.cvtsi2ss(xmm0, rcx).unwrap(), [0; 2], [0; 2], n as u64, csr).0, hs, "{n}");
                assert_eq!(run(|c| c.cvtsi2sd(xmm0, rcx).unwrap(), [0; 2], [0; 2], n as u64, csr).0, hd, "{n}");
            }
        }
        let x1 = [1e-50f64.to_bits(), 0x7ff0_0000_0000_0123];
        // SAFETY: SSE2 is part of the x86_64 baseline; the transmutes are between
        // 16-byte plain values.
        let h: [u64; 2] = unsafe { std::mem::transmute(_mm_cvtpd_ps(std::mem::transmute::<[u64; 2], __m128d>(x1))) };
        assert_eq!(run(|c| c.cvtpd2ps(xmm0, xmm1).unwrap(), [0; 2], x1, 0, 0x1f80).0, h);
        let y = [(1.1f32.to_bits() as u64) | (0x7f80_0001u64 << 32), 0];
        // SAFETY: as above.
        let h: [u64; 2] = unsafe { std::mem::transmute(_mm_cvtps_pd(std::mem::transmute::<[u64; 2], __m128>(y))) };
        assert_eq!(run(|c| c.cvtps2pd(xmm0, xmm1).unwrap(), [0; 2], y, 0, 0x1f80).0, h);
    }
}
