//! SSE4.1 (SDM Vol. 2, each instruction's page): the blends (BLENDPS/PD, BLENDVPS/PD,
//! PBLENDVB, PBLENDW), the new integer lane ops (PMINSB/SD/UW/UD, PMAXSB/SD/UW/UD,
//! PMULLD, PMULDQ, PCMPEQQ, PACKUSDW, PHMINPOSUW, MPSADBW), PMOVSX*/PMOVZX*, PTEST,
//! element extracts and inserts (PEXTRB/W/D/Q, EXTRACTPS, PINSRB/D/Q, INSERTPS),
//! MOVNTDQA, ROUNDPS/PD/SS/SD and the dot products DPPS/DPPD.

use super::sse::{mxcsr, Xmm};
use super::sse_float::{binop, join, lanes, Bits, FpOp, SseFloat};
use super::sse_int::{from_u128, map_width, sat_u, sx, to_u128};
use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use crate::interp::fpu::round_of;
use crate::interp::state::fl;
use iced_x86::{Instruction, Mnemonic as M, OpKind, Register};
use rustc_apfloat::ieee::{Double, Single};
use rustc_apfloat::Status;

/// True for the SSE4.1 mnemonics.
pub(super) fn is_sse41(m: M) -> bool {
    is_sse41_binop(m)
        || matches!(
            m,
            M::Blendps
                | M::Blendpd
                | M::Pblendw
                | M::Blendvps
                | M::Blendvpd
                | M::Pblendvb
                | M::Mpsadbw
                | M::Phminposuw
                | M::Ptest
                | M::Pextrb
                | M::Pextrd
                | M::Pextrq
                | M::Extractps
                | M::Pinsrb
                | M::Pinsrd
                | M::Pinsrq
                | M::Insertps
                | M::Movntdqa
                | M::Roundps
                | M::Roundpd
                | M::Roundss
                | M::Roundsd
                | M::Dpps
                | M::Dppd
        )
        || pmov_shape(m).is_some()
}

/// The lane-wise two-operand SSE4.1 integer ops.
pub(super) fn is_sse41_binop(m: M) -> bool {
    matches!(
        m,
        M::Pminsb
            | M::Pminsd
            | M::Pminuw
            | M::Pminud
            | M::Pmaxsb
            | M::Pmaxsd
            | M::Pmaxuw
            | M::Pmaxud
            | M::Pmulld
            | M::Pmuldq
            | M::Pcmpeqq
            | M::Packusdw
    )
}

/// PMOVSX/PMOVZX: (source lane bits, destination lane bits, sign-extend).
pub(super) fn pmov_shape(m: M) -> Option<(usize, usize, bool)> {
    Some(match m {
        M::Pmovsxbw => (8, 16, true),
        M::Pmovsxbd => (8, 32, true),
        M::Pmovsxbq => (8, 64, true),
        M::Pmovsxwd => (16, 32, true),
        M::Pmovsxwq => (16, 64, true),
        M::Pmovsxdq => (32, 64, true),
        M::Pmovzxbw => (8, 16, false),
        M::Pmovzxbd => (8, 32, false),
        M::Pmovzxbq => (8, 64, false),
        M::Pmovzxwd => (16, 32, false),
        M::Pmovzxwq => (16, 64, false),
        M::Pmovzxdq => (32, 64, false),
        _ => return None,
    })
}

/// Lane `i` of `v` at `bits` per lane.
fn lane(v: u128, i: usize, bits: usize) -> u64 {
    (v >> (i * bits)) as u64 & (u64::MAX >> (64 - bits))
}

/// A 128-bit vector of `bits`-wide lanes from `f(lane index)`.
fn build(bits: usize, f: impl Fn(usize) -> u64) -> u128 {
    let mask = u64::MAX >> (64 - bits);
    (0..128 / bits).fold(0u128, |acc, i| acc | ((f(i) & mask) as u128) << (i * bits))
}

/// The lane-wise SSE4.1 integer ops (`dst = dst op src`).
pub fn binop41(m: M, d: Xmm, s: Xmm) -> Xmm {
    let smin = |bits: usize| move |a: u64, b: u64| if sx(a, bits) < sx(b, bits) { a } else { b };
    let smax = |bits: usize| move |a: u64, b: u64| if sx(a, bits) > sx(b, bits) { a } else { b };
    match m {
        M::Pminsb => map_width(8, d, s, smin(8)),
        M::Pminsd => map_width(32, d, s, smin(32)),
        M::Pmaxsb => map_width(8, d, s, smax(8)),
        M::Pmaxsd => map_width(32, d, s, smax(32)),
        M::Pminuw => map_width(16, d, s, u64::min),
        M::Pminud => map_width(32, d, s, u64::min),
        M::Pmaxuw => map_width(16, d, s, u64::max),
        M::Pmaxud => map_width(32, d, s, u64::max),
        M::Pmulld => map_width(32, d, s, u64::wrapping_mul),
        M::Pmuldq => {
            [(sx(d[0], 32).wrapping_mul(sx(s[0], 32))) as u64, (sx(d[1], 32).wrapping_mul(sx(s[1], 32))) as u64]
        }
        M::Pcmpeqq => map_width(64, d, s, |a, b| if a == b { u64::MAX } else { 0 }),
        // PACKUSDW: signed dwords of dst then src, saturated to unsigned words.
        _ => {
            let (x, y) = (to_u128(d), to_u128(s));
            from_u128(build(16, |i| {
                let v = if i < 4 { lane(x, i, 32) } else { lane(y, i - 4, 32) };
                sat_u(sx(v, 32), 16)
            }))
        }
    }
}

/// BLENDPS/BLENDPD/PBLENDW: the elements of `s` whose `imm` bit is set (the bit index
/// modulo 8), the others from `d`.
pub fn blend_imm(m: M, d: Xmm, s: Xmm, imm: u8) -> Xmm {
    let bits = match m {
        M::Blendps => 32,
        M::Blendpd => 64,
        _ => 16,
    };
    let (x, y) = (to_u128(d), to_u128(s));
    from_u128(build(bits, |i| if imm >> (i % 8) & 1 != 0 { lane(y, i, bits) } else { lane(x, i, bits) }))
}

/// BLENDVPS/BLENDVPD/PBLENDVB: the elements of `s` whose selector element in `sel` has
/// its top bit set, the others from `d`.
pub fn blendv(m: M, d: Xmm, s: Xmm, sel: Xmm) -> Xmm {
    let bits = match m {
        M::Blendvps => 32,
        M::Blendvpd => 64,
        _ => 8,
    };
    let (x, y, sel) = (to_u128(d), to_u128(s), to_u128(sel));
    from_u128(build(bits, |i| if lane(sel, i, bits) >> (bits - 1) != 0 { lane(y, i, bits) } else { lane(x, i, bits) }))
}

/// PMOVSX/PMOVZX with shape (`from`, `to`, `signed`): the low lanes of `v` widened to a
/// 128-bit vector (lane `i` of the result from lane `first + i` of `v`).
pub fn pmov(v: u128, first: usize, from: usize, to: usize, signed: bool) -> Xmm {
    from_u128(build(to, |i| {
        let x = lane(v, first + i, from);
        if signed {
            sx(x, from) as u64
        } else {
            x
        }
    }))
}

/// INSERTPS: element imm8[7:6] of `s` (or, `from_memory`, its low dword) into element
/// imm8[5:4] of `d`, then the elements of imm8[3:0] zeroed.
pub fn insertps(d: Xmm, s: Xmm, imm: u8, from_memory: bool) -> Xmm {
    let src = if from_memory { s[0] & 0xffff_ffff } else { lane(to_u128(s), (imm >> 6) as usize, 32) };
    let x = to_u128(d);
    let at = ((imm >> 4) & 3) as usize;
    from_u128(build(32, |i| {
        if imm & (1 << i) != 0 {
            0
        } else if i == at {
            src
        } else {
            lane(x, i, 32)
        }
    }))
}

/// MPSADBW: eight sums of absolute differences of 4-byte blocks, the source block chosen
/// by imm8[1:0], the destination offset by imm8[2].
pub fn mpsadbw(d: Xmm, s: Xmm, imm: u8) -> Xmm {
    let (x, y) = (to_u128(d), to_u128(s));
    let (dof, sof) = (((imm >> 2) & 1) as usize * 4, (imm & 3) as usize * 4);
    from_u128(build(16, |i| (0..4).map(|j| lane(x, dof + i + j, 8).abs_diff(lane(y, sof + j, 8))).sum()))
}

/// PHMINPOSUW: the smallest unsigned word and its (lowest) index; other lanes zero.
pub fn phminposuw(s: Xmm) -> Xmm {
    let v = to_u128(s);
    let (idx, min) = (0..8).map(|i| (i, lane(v, i, 16))).min_by_key(|&(i, w)| (w, i)).unwrap_or((0, 0));
    [min | (idx as u64) << 16, 0]
}

/// ROUNDPS/PD/SS/SD on one lane: imm8[1:0] the rounding mode unless imm8[2] selects
/// MXCSR.RC; imm8[3] suppresses the precision exception. An SNaN is quieted with IE; a
/// denormal source counts as zero under DAZ and raises no DE.
pub fn round_lane<F: SseFloat>(x: u64, imm: u8, csr: u32, flags: &mut u32) -> u64 {
    if Bits::<F>::is_nan(x) {
        if Bits::<F>::is_snan(x) {
            *flags |= mxcsr::IE;
        }
        return Bits::<F>::quiet(x);
    }
    let x = if csr & mxcsr::DAZ != 0 && Bits::<F>::is_denormal(x) { x & Bits::<F>::sign() } else { x };
    let rc = if imm & 4 != 0 { csr >> mxcsr::RC_SHIFT } else { imm as u32 };
    let r = Bits::<F>::val(x).round_to_integral(round_of(rc & 3));
    if r.status.contains(Status::INEXACT) && imm & 8 == 0 {
        *flags |= mxcsr::PE;
    }
    r.value.to_bits() as u64
}

/// DPPS/DPPD: products of the lanes selected by imm8[7:4] (others +0.0), summed
/// pairwise with one rounding per step, written to the lanes selected by imm8[3:0]
/// (others +0.0).
pub fn dot<F: SseFloat>(d: Xmm, s: Xmm, imm: u8, csr: u32, flags: &mut u32) -> Xmm {
    let (dl, n) = lanes::<F>(d);
    let (sl, _) = lanes::<F>(s);
    let p: [u64; 4] = std::array::from_fn(|i| {
        if i < n && imm & (0x10 << i) != 0 {
            binop::<F>(FpOp::Mul, dl[i], sl[i], csr, flags)
        } else {
            0
        }
    });
    let sum = if n == 4 {
        let t2 = binop::<F>(FpOp::Add, p[0], p[1], csr, flags);
        let t3 = binop::<F>(FpOp::Add, p[2], p[3], csr, flags);
        binop::<F>(FpOp::Add, t2, t3, csr, flags)
    } else {
        binop::<F>(FpOp::Add, p[0], p[1], csr, flags)
    };
    join::<F>(std::array::from_fn(|i| if i < n && imm & (1 << i) != 0 { sum } else { 0 }))
}

impl Ctx<'_> {
    /// The SSE4.1 instructions.
    pub(super) fn sse41(&mut self, ins: &Instruction) -> R<()> {
        self.sse_check()?;
        let m = ins.mnemonic();
        match m {
            M::Pextrb | M::Pextrw | M::Pextrd | M::Pextrq | M::Extractps => return self.sse41_extract(ins),
            M::Pinsrb | M::Pinsrd | M::Pinsrq => {
                let r = self.xmm_dst(ins)?;
                let v = self.sse41_insert(ins, self.xmm(r), 1)?;
                self.set_xmm(r, v);
                return Ok(());
            }
            _ => {}
        }
        let s = self.xmm_op(ins, 1)?;
        let r = self.xmm_dst(ins)?;
        let d = self.xmm(r);
        let imm = if ins.op_kinds().any(|k| k == OpKind::Immediate8) { ins.immediate8() } else { 0 };
        let csr = self.c.st.sse.mxcsr;
        let out = match m {
            M::Blendps | M::Blendpd | M::Pblendw => blend_imm(m, d, s, imm),
            M::Blendvps | M::Blendvpd | M::Pblendvb => blendv(m, d, s, self.xmm(Register::XMM0)),
            M::Mpsadbw => mpsadbw(d, s, imm),
            M::Phminposuw => phminposuw(s),
            M::Ptest => {
                let zf = if d[0] & s[0] == 0 && d[1] & s[1] == 0 { fl::ZF } else { 0 };
                let cf = if !d[0] & s[0] == 0 && !d[1] & s[1] == 0 { fl::CF } else { 0 };
                self.set_arith_flags(fl::ARITH, zf | cf);
                return Ok(());
            }
            M::Insertps => insertps(d, s, imm, ins.op1_kind() == OpKind::Memory),
            M::Movntdqa => s,
            M::Roundps | M::Roundss | M::Roundpd | M::Roundsd => {
                let mut flags = 0;
                let single = matches!(m, M::Roundps | M::Roundss);
                let scalar = matches!(m, M::Roundss | M::Roundsd);
                let out = if single {
                    round_lanes::<Single>(d, s, scalar, imm, csr, &mut flags)
                } else {
                    round_lanes::<Double>(d, s, scalar, imm, csr, &mut flags)
                };
                self.simd_exceptions(flags)?;
                out
            }
            M::Dpps | M::Dppd => {
                let mut flags = 0;
                let out = if m == M::Dpps {
                    dot::<Single>(d, s, imm, csr, &mut flags)
                } else {
                    dot::<Double>(d, s, imm, csr, &mut flags)
                };
                self.simd_exceptions(flags)?;
                out
            }
            m if is_sse41_binop(m) => binop41(m, d, s),
            m => match pmov_shape(m) {
                Some((from, to, signed)) => pmov(to_u128(s), 0, from, to, signed),
                None => return Err(self.unsupported(format!("SSE4.1 {m:?}"))),
            },
        };
        self.set_xmm(r, out);
        Ok(())
    }

    /// PEXTRB/W/D/Q and EXTRACTPS: the element selected by imm8 to a GPR (zero-extended)
    /// or to memory of the element's size.
    pub(super) fn sse41_extract(&mut self, ins: &Instruction) -> R<()> {
        let bits = match ins.mnemonic() {
            M::Pextrb | M::Vpextrb => 8,
            M::Pextrw | M::Vpextrw => 16,
            M::Pextrq | M::Vpextrq => 64,
            _ => 32,
        };
        let v = to_u128(self.xmm(ins.op1_register()));
        let x = lane(v, ins.immediate8() as usize & (128 / bits - 1), bits);
        if ins.op0_kind() == OpKind::Register {
            let r = ins.op0_register();
            self.set_gpr(r.full_register().number(), (r.size() as u8).max(4), x);
            Ok(())
        } else {
            self.write_op(ins, 0, bits as u8 / 8, x)
        }
    }

    /// PINSRB/D/Q (and VPINSRB/W/D/Q): `base` with the GPR or memory element of operand
    /// `src` in the lane selected by imm8.
    pub(super) fn sse41_insert(&mut self, ins: &Instruction, base: Xmm, src: u32) -> R<Xmm> {
        let m = ins.mnemonic();
        let bits = if matches!(m, M::Pinsrb | M::Vpinsrb) {
            8
        } else if m == M::Vpinsrw {
            16
        } else if matches!(m, M::Pinsrq | M::Vpinsrq) {
            64
        } else {
            32
        };
        let x = self.read_op(ins, src, bits as u8 / 8)? & (u64::MAX >> (64 - bits));
        let at = ins.immediate8() as usize & (128 / bits - 1);
        let v = to_u128(base);
        Ok(from_u128(build(bits, |i| if i == at { x } else { lane(v, i, bits) })))
    }
}

/// ROUND on every lane (or lane 0, the rest from `d`, for the scalar forms).
pub fn round_lanes<F: SseFloat>(d: Xmm, s: Xmm, scalar: bool, imm: u8, csr: u32, flags: &mut u32) -> Xmm {
    let (mut out, n) = lanes::<F>(if scalar { d } else { s });
    let (sl, _) = lanes::<F>(s);
    for i in 0..if scalar { 1 } else { n } {
        out[i] = round_lane::<F>(sl[i], imm, csr, flags);
    }
    join::<F>(out)
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::interp::ops::sse::tests::sse_machine;
    use iced_x86::code_asm::*;

    /// `insn xmm0, xmm1` on the host with MXCSR = `csr` and XMM0 = a, XMM1 = b,
    /// XMM2 = c (the blend selector is copied to XMM0 by the instruction text).
    macro_rules! host {
        ($insn:literal, $a:expr, $b:expr, $csr:expr) => {{
            let mut v: [u64; 4] = [$a[0], $a[1], $b[0], $b[1]];
            let mut csr: u32 = $csr;
            let mut fl: u64;
            // SAFETY: loads MXCSR and XMM0/XMM1, runs one SSE4.1 instruction (exceptions
            // masked by the caller's MXCSR), stores XMM0, RFLAGS and MXCSR, restores
            // the default MXCSR; the registers used are declared clobbered.
            unsafe {
                std::arch::asm!(
                    "ldmxcsr [{c}]", "movdqu xmm0, [{v}]", "movdqu xmm1, [{v} + 16]", $insn, "pushfq", "pop {f}",
                    "movdqu [{v}], xmm0", "stmxcsr [{c}]", "mov dword ptr [{v} + 16], 0x1f80", "ldmxcsr [{v} + 16]",
                    v = in(reg) v.as_mut_ptr(), c = in(reg) &mut csr, f = out(reg) fl,
                    out("xmm0") _, out("xmm1") _, out("xmm2") _, out("eax") _,
                );
            }
            ([v[0], v[1]], csr, fl & 0x8d5)
        }};
    }

    /// The host's XMM0, MXCSR and status flags after an instruction.
    type HostResult = (Xmm, u32, u64);

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            match self.0 % 5 {
                0 => self.0 & 0x8080_8080_8080_8080,
                1 => self.0 | 0x7f7f_7f7f_7f7f_7f7f,
                2 => self.0 & 0x0000_ffff_0000_ffff,
                _ => self.0,
            }
        }
        fn v(&mut self) -> Xmm {
            [self.next(), self.next()]
        }
    }

    #[test]
    fn random_integer_ops_match_the_host() {
        let mut r = Rng(0x4141_0001_2345_6789);
        for _ in 0..500 {
            let (a, b) = (r.v(), r.v());
            for (m, h) in [
                (M::Pminsb, host!("pminsb xmm0, xmm1", a, b, 0x1f80)),
                (M::Pminsd, host!("pminsd xmm0, xmm1", a, b, 0x1f80)),
                (M::Pminuw, host!("pminuw xmm0, xmm1", a, b, 0x1f80)),
                (M::Pminud, host!("pminud xmm0, xmm1", a, b, 0x1f80)),
                (M::Pmaxsb, host!("pmaxsb xmm0, xmm1", a, b, 0x1f80)),
                (M::Pmaxsd, host!("pmaxsd xmm0, xmm1", a, b, 0x1f80)),
                (M::Pmaxuw, host!("pmaxuw xmm0, xmm1", a, b, 0x1f80)),
                (M::Pmaxud, host!("pmaxud xmm0, xmm1", a, b, 0x1f80)),
                (M::Pmulld, host!("pmulld xmm0, xmm1", a, b, 0x1f80)),
                (M::Pmuldq, host!("pmuldq xmm0, xmm1", a, b, 0x1f80)),
                (M::Pcmpeqq, host!("pcmpeqq xmm0, xmm1", a, b, 0x1f80)),
                (M::Packusdw, host!("packusdw xmm0, xmm1", a, b, 0x1f80)),
            ] {
                assert_eq!(binop41(m, a, b), h.0, "{m:?} {a:x?} {b:x?}");
            }
            for imm in [0u8, 1, 2, 3, 4, 5, 6, 7] {
                let h = match imm {
                    0 => host!("mpsadbw xmm0, xmm1, 0", a, b, 0x1f80),
                    1 => host!("mpsadbw xmm0, xmm1, 1", a, b, 0x1f80),
                    2 => host!("mpsadbw xmm0, xmm1, 2", a, b, 0x1f80),
                    3 => host!("mpsadbw xmm0, xmm1, 3", a, b, 0x1f80),
                    4 => host!("mpsadbw xmm0, xmm1, 4", a, b, 0x1f80),
                    5 => host!("mpsadbw xmm0, xmm1, 5", a, b, 0x1f80),
                    6 => host!("mpsadbw xmm0, xmm1, 6", a, b, 0x1f80),
                    _ => host!("mpsadbw xmm0, xmm1, 7", a, b, 0x1f80),
                };
                assert_eq!(mpsadbw(a, b, imm), h.0, "mpsadbw {imm}");
            }
            assert_eq!(phminposuw(b), host!("phminposuw xmm0, xmm1", a, b, 0x1f80).0);
        }
    }

    fn float_bits(r: &mut Rng, single: bool) -> u64 {
        let x = r.next();
        let (e, f) = if single { (0x7f80_0000u64, 0x007f_ffffu64) } else { (0x7ff0 << 48, (1 << 52) - 1) };
        let sign = if single { 1 << 31 } else { 1 << 63 } & x;
        // Exponents near the integer boundary (0.5 .. 2^frac) most of the time.
        let bias = if single { 127u64 } else { 1023 };
        let frac_bits = if single { 23 } else { 52 };
        match x % 8 {
            0 => sign | e | (x & f & 0x5),
            1 => sign | (x >> 9 & f),
            2 => x & if single { 0xffff_ffff } else { u64::MAX },
            _ => sign | (bias - 2 + (x >> 40) % (frac_bits + 4)) << frac_bits | (x & f),
        }
    }

    #[test]
    fn round_and_dot_products_match_the_host() {
        let mut r = Rng(0x0f0f_1234_5678_9abc);
        for i in 0..3000u32 {
            let csr = 0x1f80 | ((i % 4) << 13) | if i % 5 == 0 { 0x8040 } else { 0 };
            let s: Xmm = {
                let l: [u64; 4] = std::array::from_fn(|_| float_bits(&mut r, true));
                [l[0] | l[1] << 32, l[2] | l[3] << 32]
            };
            let t: Xmm = {
                let l: [u64; 4] = std::array::from_fn(|_| float_bits(&mut r, true));
                [l[0] | l[1] << 32, l[2] | l[3] << 32]
            };
            let dd: Xmm = [float_bits(&mut r, false), float_bits(&mut r, false)];
            let de: Xmm = [float_bits(&mut r, false), float_bits(&mut r, false)];
            let ours = |f: &dyn Fn(&mut u32) -> Xmm| {
                let mut flags = 0;
                let v = f(&mut flags);
                (v, csr | flags)
            };
            let cases: [(&str, HostResult, (Xmm, u32)); 10] = [
                (
                    "roundps 0",
                    host!("roundps xmm0, xmm1, 0", s, s, csr),
                    ours(&|f| round_lanes::<Single>(s, s, false, 0, csr, f)),
                ),
                (
                    "roundps 1",
                    host!("roundps xmm0, xmm1, 1", s, s, csr),
                    ours(&|f| round_lanes::<Single>(s, s, false, 1, csr, f)),
                ),
                (
                    "roundps 0xa",
                    host!("roundps xmm0, xmm1, 0xa", s, s, csr),
                    ours(&|f| round_lanes::<Single>(s, s, false, 0xa, csr, f)),
                ),
                (
                    "roundps 4",
                    host!("roundps xmm0, xmm1, 4", s, s, csr),
                    ours(&|f| round_lanes::<Single>(s, s, false, 4, csr, f)),
                ),
                (
                    "roundsd 3",
                    host!("roundsd xmm0, xmm1, 3", de, dd, csr),
                    ours(&|f| round_lanes::<Double>(de, dd, true, 3, csr, f)),
                ),
                (
                    "roundpd 0xc",
                    host!("roundpd xmm0, xmm1, 0xc", dd, dd, csr),
                    ours(&|f| round_lanes::<Double>(dd, dd, false, 0xc, csr, f)),
                ),
                ("dpps 0xff", host!("dpps xmm0, xmm1, 0xff", s, t, csr), ours(&|f| dot::<Single>(s, t, 0xff, csr, f))),
                ("dpps 0x5a", host!("dpps xmm0, xmm1, 0x5a", s, t, csr), ours(&|f| dot::<Single>(s, t, 0x5a, csr, f))),
                (
                    "dppd 0x31",
                    host!("dppd xmm0, xmm1, 0x31", dd, de, csr),
                    ours(&|f| dot::<Double>(dd, de, 0x31, csr, f)),
                ),
                (
                    "dppd 0x12",
                    host!("dppd xmm0, xmm1, 0x12", dd, de, csr),
                    ours(&|f| dot::<Double>(dd, de, 0x12, csr, f)),
                ),
            ];
            for (name, (hv, hc, _), o) in cases {
                assert_eq!(o, (hv, hc), "{name} s={s:x?} t={t:x?} dd={dd:x?} de={de:x?} csr={csr:x}");
            }
        }
    }

    #[test]
    fn ptest_sets_zf_and_cf() {
        for (a, b) in [([1u64, 0], [2u64, 0]), ([1, 0], [1, 0]), ([u64::MAX, 5], [3, 4]), ([0, 0], [0, 0])] {
            let (_, _, hf) = host!("ptest xmm0, xmm1", a, b, 0x1f80);
            let mut asm = CodeAssembler::new(64).unwrap();
            asm.ptest(xmm0, xmm1).unwrap();
            asm.hlt().unwrap();
            let mut m = sse_machine(&mut asm);
            m.cpu.state_mut().sse.xmm[0] = a;
            m.cpu.state_mut().sse.xmm[1] = b;
            m.cpu.set_rflags(0x2 | 0x8d5);
            m.run();
            assert_eq!(m.cpu.rflags() & 0x8d5, hf, "{a:x?} {b:x?}");
        }
    }

    #[test]
    fn extracts_inserts_and_blendv_run_in_the_interpreter() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.pextrb(eax, xmm1, 17).unwrap();
        a.pextrw(word_ptr(0x20000), xmm1, 7).unwrap();
        a.pextrq(rcx, xmm1, 1).unwrap();
        a.extractps(edx, xmm1, 2).unwrap();
        a.pinsrd(xmm2, dword_ptr(0x20000), 3).unwrap();
        a.mov(ebx, 0xabu32).unwrap();
        a.pinsrb(xmm2, ebx, 0).unwrap();
        a.pmovsxbw(xmm3, qword_ptr(0x20008)).unwrap();
        a.blendvps(xmm4, xmm1).unwrap();
        a.hlt().unwrap();
        let mut m = sse_machine(&mut a);
        m.poke(0x20008, &[0x80, 0x7f, 0xff, 1, 0, 0, 0, 0xfe]);
        let st = m.cpu.state_mut();
        st.sse.xmm[1] = [0x1122_3344_5566_7788, 0x99aa_bbcc_ddee_ff00];
        st.sse.xmm[0] = [0x8000_0000_0000_0000, 0x0000_0000_8000_0000];
        st.gpr[0] = u64::MAX;
        m.run();
        assert_eq!(m.gpr(0), 0x77, "PEXTRB index 17 & 15 = 1, zero-extended");
        assert_eq!(u16::from_le_bytes(m.peek(0x20000)), 0x99aa);
        assert_eq!(m.gpr(1), 0x99aa_bbcc_ddee_ff00);
        assert_eq!(m.gpr(2), 0xddee_ff00);
        assert_eq!(m.cpu.state().sse.xmm[2], [0xab, 0x99aa_u64 << 32]);
        assert_eq!(m.cpu.state().sse.xmm[3], [0x0001_ffff_007f_ff80, 0xfffe_0000_0000_0000]);
        assert_eq!(m.cpu.state().sse.xmm[4], [0x1122_3344_0000_0000, 0x0000_0000_ddee_ff00]);
    }
}
