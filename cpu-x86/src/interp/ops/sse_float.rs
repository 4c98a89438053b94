//! SSE/SSE2 floating-point arithmetic on single and double precision: ADD SUB MUL DIV
//! MIN MAX SQRT (PS SS PD SD), CMPPS/CMPSS/CMPPD/CMPSD, COMISS UCOMISS COMISD UCOMISD,
//! RCPPS/RCPSS RSQRTPS/RSQRTSS. Results are computed with `rustc_apfloat` so MXCSR's
//! rounding control and exception flags are exact; NaN results follow the x86 rules
//! (SDM Vol. 1 §4.8.3.5 and Table 4-7, §11.5.2; DAZ/FTZ §10.2.3.3-4).

use super::sse::{mxcsr, Xmm};
use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use crate::interp::fpu::{self, round_of, F80};
use crate::interp::state::fl;
use iced_x86::{Instruction, Mnemonic as M};
use rustc_apfloat::ieee::{Double, Single};
use rustc_apfloat::{Float, FloatConvert, Round, Status, StatusAnd};

/// An IEEE binary format SSE computes in, with its bit layout.
pub trait SseFloat: Float + FloatConvert<F80> {
    /// Width in bits (32 or 64).
    const WIDTH: u32;
    /// Significand (fraction) bits.
    const FRAC: u32;
}

impl SseFloat for Single {
    const WIDTH: u32 = 32;
    const FRAC: u32 = 23;
}

impl SseFloat for Double {
    const WIDTH: u32 = 64;
    const FRAC: u32 = 52;
}

/// Bit-level classification and the x86 NaN rules for format `F`.
pub struct Bits<F>(std::marker::PhantomData<F>);

impl<F: SseFloat> Bits<F> {
    fn exp_mask() -> u64 {
        ((1u64 << (F::WIDTH - 1 - F::FRAC)) - 1) << F::FRAC
    }

    fn frac_mask() -> u64 {
        (1u64 << F::FRAC) - 1
    }

    /// The sign bit.
    pub fn sign() -> u64 {
        1u64 << (F::WIDTH - 1)
    }

    /// True for any NaN.
    pub fn is_nan(x: u64) -> bool {
        x & Self::exp_mask() == Self::exp_mask() && x & Self::frac_mask() != 0
    }

    /// True for a signalling NaN.
    pub fn is_snan(x: u64) -> bool {
        Self::is_nan(x) && x & (1 << (F::FRAC - 1)) == 0
    }

    /// `x` with the quiet bit set.
    pub fn quiet(x: u64) -> u64 {
        x | 1 << (F::FRAC - 1)
    }

    /// The "real indefinite" QNaN (sign set, top fraction bit set).
    pub fn indefinite() -> u64 {
        Self::sign() | Self::exp_mask() | 1 << (F::FRAC - 1)
    }

    /// True for a denormal (non-zero with a zero exponent).
    pub fn is_denormal(x: u64) -> bool {
        x & Self::exp_mask() == 0 && x & Self::frac_mask() != 0
    }

    /// Applies MXCSR.DAZ to a source: denormals become zero of the same sign; otherwise
    /// reports DE for a denormal source.
    pub fn source(x: u64, csr: u32, flags: &mut u32) -> u64 {
        Self::source_of(x, false, csr, flags)
    }

    /// [`Bits::source`] for an operand whose partner may be a NaN: a NaN operand takes
    /// priority over the denormal exception (SDM Vol. 1 §11.5.2 priorities).
    pub fn source_of(x: u64, other_nan: bool, csr: u32, flags: &mut u32) -> u64 {
        if Self::is_denormal(x) {
            if csr & mxcsr::DAZ != 0 {
                return x & Self::sign();
            }
            if !other_nan {
                *flags |= mxcsr::DE;
            }
        }
        x
    }

    /// Both sources of a two-operand op through [`Bits::source_of`].
    pub fn sources(a: u64, b: u64, csr: u32, flags: &mut u32) -> (u64, u64) {
        let nan = Self::is_nan(a) || Self::is_nan(b);
        (Self::source_of(a, nan, csr, flags), Self::source_of(b, nan, csr, flags))
    }

    /// `x` widened exactly to double extended.
    pub fn wide(x: u64) -> F80 {
        let mut loses = false;
        Self::val(x).convert(&mut loses).value
    }

    /// True when `exact` (a double-extended value truncated toward zero, or exact)
    /// reaches 2^(emax+1): the x86 overflow condition, which apfloat does not report
    /// when the rounding mode clamps the result to the largest finite value.
    pub fn overflows(exact: F80) -> bool {
        let emax_plus_1 = 1 << (F::WIDTH - 2 - F::FRAC);
        exact.is_finite() && exact.abs() >= F80::from_u128(1).value.scalbn(emax_plus_1)
    }

    /// True when a result apfloat rounded to the smallest normal magnitude is tiny the
    /// x86 way: the exact result rounded to the format's precision with an unbounded
    /// exponent (`scaled`, computed on operands scaled by 2^`k`) stays below the
    /// smallest normal (SDM Vol. 1 §4.9.1.5).
    pub fn tiny(scaled: F, k: i32) -> bool {
        scaled.abs() < F::smallest_normalized().scalbn(k)
    }

    /// The apfloat value of `x`.
    pub fn val(x: u64) -> F {
        F::from_bits(x as u128)
    }

    /// Folds an apfloat result into bits and MXCSR flags, applying FTZ and the
    /// indefinite NaN for invalid operations.
    pub fn result(r: StatusAnd<F>, csr: u32, flags: &mut u32) -> u64 {
        let mut bits = r.value.to_bits() as u64;
        let s = r.status;
        if s.contains(Status::INVALID_OP) {
            *flags |= mxcsr::IE;
            return Self::indefinite();
        }
        if s.contains(Status::DIV_BY_ZERO) {
            *flags |= mxcsr::ZE;
        }
        if s.contains(Status::OVERFLOW) {
            *flags |= mxcsr::OE;
        }
        if s.contains(Status::UNDERFLOW) {
            *flags |= mxcsr::UE;
        }
        if s.contains(Status::INEXACT) {
            *flags |= mxcsr::PE;
        }
        let um = csr & (mxcsr::UE << mxcsr::MASK_SHIFT) != 0;
        if csr & mxcsr::FZ != 0 && um && (Self::is_denormal(bits) || s.contains(Status::UNDERFLOW)) {
            bits &= Self::sign();
            *flags |= mxcsr::UE | mxcsr::PE;
        }
        bits
    }

    /// The NaN result of a two-source arithmetic op when either source is a NaN (first
    /// source wins, quieted), raising IE for a signalling one.
    pub fn nan_pair(a: u64, b: u64, flags: &mut u32) -> Option<u64> {
        if !Self::is_nan(a) && !Self::is_nan(b) {
            return None;
        }
        if Self::is_snan(a) || Self::is_snan(b) {
            *flags |= mxcsr::IE;
        }
        Some(Self::quiet(if Self::is_nan(a) { a } else { b }))
    }
}

/// Arithmetic selector for [`binop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FpOp {
    /// a + b.
    Add,
    /// a - b.
    Sub,
    /// a * b.
    Mul,
    /// a / b.
    Div,
    /// MINPS rules.
    Min,
    /// MAXPS rules.
    Max,
    /// sqrt(b) (a unused).
    Sqrt,
}

/// Merges one lane's exception flags: an invalid operation or a zero divide outranks a
/// denormal operand (the square root of a negative denormal reports IE alone, a
/// denormal divided by zero ZE alone).
pub fn merge_lane_flags(lane: u32, flags: &mut u32) {
    *flags |= if lane & (mxcsr::IE | mxcsr::ZE) != 0 { lane & !mxcsr::DE } else { lane };
}

/// One lane of an SSE arithmetic op in format `F` under MXCSR `csr`.
pub fn binop<F: SseFloat>(op: FpOp, a: u64, b: u64, csr: u32, flags: &mut u32) -> u64 {
    let mut lane = 0;
    let r = binop_lane::<F>(op, a, b, csr, &mut lane);
    merge_lane_flags(lane, flags);
    r
}

/// [`binop`] with the lane's own flags.
fn binop_lane<F: SseFloat>(op: FpOp, a: u64, b: u64, csr: u32, flags: &mut u32) -> u64 {
    let round = round_of(csr >> mxcsr::RC_SHIFT);
    if op == FpOp::Sqrt {
        let b = Bits::<F>::source(b, csr, flags);
        if Bits::<F>::is_nan(b) {
            if Bits::<F>::is_snan(b) {
                *flags |= mxcsr::IE;
            }
            return Bits::<F>::quiet(b);
        }
        return Bits::<F>::result(fpu::sqrt(Bits::<F>::val(b), round), csr, flags);
    }
    let (a, b) = Bits::<F>::sources(a, b, csr, flags);
    if matches!(op, FpOp::Min | FpOp::Max) {
        if Bits::<F>::is_nan(a) || Bits::<F>::is_nan(b) {
            *flags |= mxcsr::IE;
            return b;
        }
        let (x, y) = (Bits::<F>::val(a), Bits::<F>::val(b));
        let take_a = if op == FpOp::Min { x < y } else { x > y };
        return if take_a { a } else { b };
    }
    if let Some(n) = Bits::<F>::nan_pair(a, b, flags) {
        return n;
    }
    let (x, y) = (Bits::<F>::val(a), Bits::<F>::val(b));
    let mut r = match op {
        FpOp::Add => x.add_r(y, round),
        FpOp::Sub => x.sub_r(y, round),
        FpOp::Mul => x.mul_r(y, round),
        _ => x.div_r(y, round),
    };
    if r.status == Status::INEXACT && r.value.is_largest() {
        let (wx, wy) = (Bits::<F>::wide(a), Bits::<F>::wide(b));
        let z = Round::TowardZero;
        let exact = match op {
            FpOp::Add => wx.add_r(wy, z),
            FpOp::Sub => wx.sub_r(wy, z),
            FpOp::Mul => wx.mul_r(wy, z),
            _ => wx.div_r(wy, z),
        };
        if Bits::<F>::overflows(exact.value) {
            r.status |= Status::OVERFLOW;
        }
    }
    // Inexact sums are never tiny; products and quotients that apfloat rounded up to the
    // smallest normal are redone on operands scaled away from the denormal range.
    if r.status == Status::INEXACT && r.value.is_smallest_normalized() {
        const K: i32 = 64;
        let scaled = match op {
            FpOp::Mul if x.ilogb() <= y.ilogb() => Some(x.scalbn(K).mul_r(y, round).value),
            FpOp::Mul => Some(x.mul_r(y.scalbn(K), round).value),
            FpOp::Div if x.ilogb() <= 0 => Some(x.scalbn(K).div_r(y, round).value),
            FpOp::Div => Some(x.div_r(y.scalbn(-K), round).value),
            _ => None,
        };
        if scaled.is_some_and(|v| Bits::<F>::tiny(v, K)) {
            r.status |= Status::UNDERFLOW;
        }
    }
    Bits::<F>::result(r, csr, flags)
}

/// CMPPS predicate `imm` on one lane: all ones when true. The legacy forms pass
/// imm8[2:0]; VCMPPS has 32 predicates (imm8[4:0]): bit 3 gives the eight with the other
/// answer for unordered operands (EQ_UQ, NGE, NGT, FALSE, NEQ_OQ, GE, GT, TRUE), bit 4
/// swaps quiet and signalling (SDM Vol. 2A "CMPPS" Table 3-1).
pub fn compare<F: SseFloat>(imm: u8, a: u64, b: u64, csr: u32, flags: &mut u32) -> u64 {
    let (a, b) = Bits::<F>::sources(a, b, csr, flags);
    let unordered = Bits::<F>::is_nan(a) || Bits::<F>::is_nan(b);
    let signalling_pred = matches!(imm & 3, 1 | 2) != (imm & 0x10 != 0);
    if (unordered && signalling_pred) || Bits::<F>::is_snan(a) || Bits::<F>::is_snan(b) {
        *flags |= mxcsr::IE;
    }
    let (x, y) = (Bits::<F>::val(a), Bits::<F>::val(b));
    let ordered_answer = match imm & 3 {
        0 => x == y,
        1 => x < y,
        2 => x <= y,
        _ => false,
    };
    // Predicates 4-7 negate 0-3 (UNORD's ordered answer is false); bit 3 flips the
    // answer for unordered operands alone.
    let t =
        if unordered { ((imm & 3 == 3) != (imm & 4 != 0)) != (imm & 8 != 0) } else { ordered_answer != (imm & 4 != 0) };
    if t {
        u64::MAX >> (64 - F::WIDTH)
    } else {
        0
    }
}

/// Splits an XMM value into lanes of `F`.
pub(super) fn lanes<F: SseFloat>(v: Xmm) -> ([u64; 4], usize) {
    if F::WIDTH == 32 {
        ([v[0] & 0xffff_ffff, v[0] >> 32, v[1] & 0xffff_ffff, v[1] >> 32], 4)
    } else {
        ([v[0], v[1], 0, 0], 2)
    }
}

/// Joins lanes of `F` into an XMM value.
pub(super) fn join<F: SseFloat>(l: [u64; 4]) -> Xmm {
    if F::WIDTH == 32 {
        [l[0] | l[1] << 32, l[2] | l[3] << 32]
    } else {
        [l[0], l[1]]
    }
}

/// RCP/RSQRT approximation of one single-precision lane: the exact reciprocal (or
/// reciprocal square root) rounded to 12 fraction bits, within the architectural
/// relative error of 1.5 * 2^-12; denormal sources count as zero, no flags.
pub fn approx(rsqrt: bool, x: u32) -> u32 {
    let f = f32::from_bits(if x & 0x7f80_0000 == 0 { x & 0x8000_0000 } else { x });
    if f.is_nan() {
        return x | 0x0040_0000;
    }
    if rsqrt && f < 0.0 {
        return 0xffc0_0000;
    }
    let r = if rsqrt { 1.0 / f.sqrt() } else { 1.0 / f };
    let bits = r.to_bits();
    if bits & 0x7f80_0000 == 0 {
        return bits & 0x8000_0000;
    }
    bits & !0x7ff
}

/// Applies `f` to the lanes of `d` and `s` (lane 0 only, the rest from `d`, for scalar
/// forms), collecting exception flags in `flags`.
pub fn lanewise<F: SseFloat>(
    d: Xmm,
    s: Xmm,
    scalar: bool,
    flags: &mut u32,
    f: impl Fn(u64, u64, &mut u32) -> u64,
) -> Xmm {
    let (mut dl, n) = lanes::<F>(d);
    let (sl, _) = lanes::<F>(s);
    for i in 0..if scalar { 1 } else { n } {
        dl[i] = f(dl[i], sl[i], flags);
    }
    join::<F>(dl)
}

/// The operation, format (single: true) and form (scalar: true) of an SSE arithmetic
/// mnemonic (ADDPS .. SQRTSD).
pub fn arith_shape(m: M) -> Option<(FpOp, bool, bool)> {
    use FpOp::*;
    Some(match m {
        M::Addps => (Add, true, false),
        M::Addss => (Add, true, true),
        M::Addpd => (Add, false, false),
        M::Addsd => (Add, false, true),
        M::Subps => (Sub, true, false),
        M::Subss => (Sub, true, true),
        M::Subpd => (Sub, false, false),
        M::Subsd => (Sub, false, true),
        M::Mulps => (Mul, true, false),
        M::Mulss => (Mul, true, true),
        M::Mulpd => (Mul, false, false),
        M::Mulsd => (Mul, false, true),
        M::Divps => (Div, true, false),
        M::Divss => (Div, true, true),
        M::Divpd => (Div, false, false),
        M::Divsd => (Div, false, true),
        M::Minps => (Min, true, false),
        M::Minss => (Min, true, true),
        M::Minpd => (Min, false, false),
        M::Minsd => (Min, false, true),
        M::Maxps => (Max, true, false),
        M::Maxss => (Max, true, true),
        M::Maxpd => (Max, false, false),
        M::Maxsd => (Max, false, true),
        M::Sqrtps => (Sqrt, true, false),
        M::Sqrtss => (Sqrt, true, true),
        M::Sqrtpd => (Sqrt, false, false),
        M::Sqrtsd => (Sqrt, false, true),
        _ => return None,
    })
}

impl Ctx<'_> {
    /// Applies `f` to lanes of the destination and source (lane 0 only for scalar forms),
    /// raises unmasked exceptions, else writes the destination.
    fn sse_lanes<F: SseFloat>(
        &mut self,
        ins: &Instruction,
        scalar: bool,
        f: impl Fn(u64, u64, &mut u32) -> u64,
    ) -> R<()> {
        let s = self.xmm_op(ins, 1)?;
        let r = self.xmm_dst(ins)?;
        let d = self.xmm(r);
        let mut flags = 0;
        let out = lanewise::<F>(d, s, scalar, &mut flags, f);
        self.simd_exceptions(flags)?;
        self.set_xmm(r, out);
        Ok(())
    }

    /// ADD/SUB/MUL/DIV/MIN/MAX/SQRT in PS, SS, PD and SD forms.
    pub(super) fn sse_arith(&mut self, ins: &Instruction) -> R<()> {
        self.sse_check()?;
        let m = ins.mnemonic();
        let (op, single, scalar) = arith_shape(m).ok_or_else(|| self.unsupported(format!("SSE arithmetic {m:?}")))?;
        let csr = self.c.st.sse.mxcsr;
        if single {
            self.sse_lanes::<Single>(ins, scalar, |a, b, fl| binop::<Single>(op, a, b, csr, fl))
        } else {
            self.sse_lanes::<Double>(ins, scalar, |a, b, fl| binop::<Double>(op, a, b, csr, fl))
        }
    }

    /// CMPPS, CMPSS, CMPPD and CMPSD (register form) with predicate imm8 0-7.
    pub(super) fn sse_cmp(&mut self, ins: &Instruction) -> R<()> {
        self.sse_check()?;
        let imm = ins.immediate8() & 7;
        let csr = self.c.st.sse.mxcsr;
        match ins.mnemonic() {
            M::Cmpps => self.sse_lanes::<Single>(ins, false, |a, b, f| compare::<Single>(imm, a, b, csr, f)),
            M::Cmpss => self.sse_lanes::<Single>(ins, true, |a, b, f| compare::<Single>(imm, a, b, csr, f)),
            M::Cmppd => self.sse_lanes::<Double>(ins, false, |a, b, f| compare::<Double>(imm, a, b, csr, f)),
            _ => self.sse_lanes::<Double>(ins, true, |a, b, f| compare::<Double>(imm, a, b, csr, f)),
        }
    }

    /// COMISS, UCOMISS, COMISD, UCOMISD: ZF/PF/CF from the comparison, OF SF AF clear.
    pub(super) fn sse_comis(&mut self, ins: &Instruction) -> R<()> {
        self.sse_check()?;
        self.comis_flags(ins)
    }

    /// The comparison of COMIS/UCOMIS and their VEX forms (operands 0 and 1).
    pub(super) fn comis_flags(&mut self, ins: &Instruction) -> R<()> {
        let dst = self.xmm_dst(ins)?;
        let a = self.xmm(dst)[0];
        let b = self.xmm_op(ins, 1)?[0];
        let csr = self.c.st.sse.mxcsr;
        let signalling = matches!(ins.mnemonic(), M::Comiss | M::Comisd | M::Vcomiss | M::Vcomisd);
        let mut flags = 0;
        let (lt, eq, un) = if matches!(ins.mnemonic(), M::Comiss | M::Ucomiss | M::Vcomiss | M::Vucomiss) {
            comis::<Single>(a & 0xffff_ffff, b & 0xffff_ffff, signalling, csr, &mut flags)
        } else {
            comis::<Double>(a, b, signalling, csr, &mut flags)
        };
        self.simd_exceptions(flags)?;
        let v = if un {
            fl::ZF | fl::PF | fl::CF
        } else if lt {
            fl::CF
        } else if eq {
            fl::ZF
        } else {
            0
        };
        self.set_arith_flags(fl::ARITH, v);
        Ok(())
    }

    /// RCPPS, RCPSS, RSQRTPS, RSQRTSS.
    pub(super) fn sse_approx(&mut self, ins: &Instruction) -> R<()> {
        self.sse_check()?;
        let rsqrt = matches!(ins.mnemonic(), M::Rsqrtps | M::Rsqrtss);
        let scalar = matches!(ins.mnemonic(), M::Rcpss | M::Rsqrtss);
        self.sse_lanes::<Single>(ins, scalar, |_, b, _| approx(rsqrt, b as u32) as u64)
    }
}

/// (less, equal, unordered) for COMIS/UCOMIS, with IE for any NaN (signalling form) or
/// an SNaN (quiet form).
fn comis<F: SseFloat>(a: u64, b: u64, signalling: bool, csr: u32, flags: &mut u32) -> (bool, bool, bool) {
    let (a, b) = Bits::<F>::sources(a, b, csr, flags);
    let un = Bits::<F>::is_nan(a) || Bits::<F>::is_nan(b);
    if (un && signalling) || Bits::<F>::is_snan(a) || Bits::<F>::is_snan(b) {
        *flags |= mxcsr::IE;
    }
    let (x, y) = (Bits::<F>::val(a), Bits::<F>::val(b));
    (!un && x < y, !un && x == y, un)
}

/// The rounding mode of MXCSR `csr`.
pub fn mxcsr_round(csr: u32) -> Round {
    round_of(csr >> mxcsr::RC_SHIFT)
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::sse::tests::sse_machine;
    use crate::interp::state::fl;
    use iced_x86::code_asm::*;
    use std::arch::asm;

    /// Runs `op xmm0, xmm1` with the given registers and MXCSR; returns xmm0 and MXCSR.
    fn ours(op: &dyn Fn(&mut CodeAssembler), a: [u64; 2], b: [u64; 2], csr: u32) -> ([u64; 2], u32) {
        let mut c = CodeAssembler::new(64).unwrap();
        op(&mut c);
        c.hlt().unwrap();
        let mut m = sse_machine(&mut c);
        let st = m.cpu.state_mut();
        st.sse.xmm[0] = a;
        st.sse.xmm[1] = b;
        st.sse.mxcsr = csr;
        m.run();
        (m.cpu.state().sse.xmm[0], m.cpu.state().sse.mxcsr)
    }

    macro_rules! host {
        ($insn:literal, $a:expr, $b:expr, $csr:expr) => {{
            let mut a: [u64; 2] = $a;
            let b: [u64; 2] = $b;
            let mut csr: u32 = $csr;
            // SAFETY: the asm loads MXCSR from `csr`, runs one SSE2 instruction on
            // 16-byte buffers it is given pointers to, and stores MXCSR back; the old
            // MXCSR is restored before returning.
            unsafe {
                asm!(
                    "sub rsp, 8", "stmxcsr [rsp]", "ldmxcsr [{c}]",
                    "movdqu xmm0, [{a}]", "movdqu xmm1, [{b}]",
                    $insn,
                    "movdqu [{a}], xmm0", "stmxcsr [{c}]", "ldmxcsr [rsp]", "add rsp, 8",
                    a = in(reg) a.as_mut_ptr(), b = in(reg) b.as_ptr(), c = in(reg) &mut csr,
                    out("xmm0") _, out("xmm1") _,
                );
            }
            (a, csr)
        }};
    }

    fn f32s(v: [f32; 4]) -> [u64; 2] {
        let b = v.map(f32::to_bits);
        [b[0] as u64 | (b[1] as u64) << 32, b[2] as u64 | (b[3] as u64) << 32]
    }

    fn f64s(v: [f64; 2]) -> [u64; 2] {
        v.map(f64::to_bits)
    }

    const CSRS: [u32; 5] = [0x1f80, 0x3f80, 0x5f80, 0x7f80, 0x9fc0];

    #[test]
    fn packed_single_ops_match_the_host_in_every_rounding_mode() {
        let a = f32s([1.0, -3.0e38, f32::from_bits(0x0008_0000), f32::from_bits(0x7f80_0001)]);
        let b = f32s([3.0, 1e10, 7.0, 2.0]);
        let c = f32s([0.0, -0.0, f32::NAN, 1.0e-45]);
        for csr in CSRS {
            for (x, y) in [(a, b), (b, a), (a, c), (c, b)] {
                assert_eq!(ours(&|k| k.addps(xmm0, xmm1).unwrap(), x, y, csr), host!("addps xmm0, xmm1", x, y, csr));
                assert_eq!(ours(&|k| k.subps(xmm0, xmm1).unwrap(), x, y, csr), host!("subps xmm0, xmm1", x, y, csr));
                assert_eq!(ours(&|k| k.mulps(xmm0, xmm1).unwrap(), x, y, csr), host!("mulps xmm0, xmm1", x, y, csr));
                assert_eq!(ours(&|k| k.divps(xmm0, xmm1).unwrap(), x, y, csr), host!("divps xmm0, xmm1", x, y, csr));
                assert_eq!(ours(&|k| k.minps(xmm0, xmm1).unwrap(), x, y, csr), host!("minps xmm0, xmm1", x, y, csr));
                assert_eq!(ours(&|k| k.maxps(xmm0, xmm1).unwrap(), x, y, csr), host!("maxps xmm0, xmm1", x, y, csr));
                assert_eq!(ours(&|k| k.sqrtps(xmm0, xmm1).unwrap(), x, y, csr), host!("sqrtps xmm0, xmm1", x, y, csr));
                assert_eq!(
                    ours(&|k| k.cmpps(xmm0, xmm1, 5).unwrap(), x, y, csr),
                    host!("cmpps xmm0, xmm1, 5", x, y, csr)
                );
            }
        }
    }

    #[test]
    fn scalar_double_ops_match_the_host_in_every_rounding_mode() {
        let a = f64s([1.0 / 3.0, 5.0]);
        let b = f64s([3.0, -7.0]);
        let c = f64s([1e-310, f64::INFINITY]);
        let d = f64s([f64::MAX, -0.0]);
        for csr in CSRS {
            for (x, y) in [(a, b), (b, a), (a, c), (c, a), (d, d), (c, c)] {
                assert_eq!(ours(&|k| k.addsd(xmm0, xmm1).unwrap(), x, y, csr), host!("addsd xmm0, xmm1", x, y, csr));
                assert_eq!(ours(&|k| k.mulsd(xmm0, xmm1).unwrap(), x, y, csr), host!("mulsd xmm0, xmm1", x, y, csr));
                assert_eq!(ours(&|k| k.divsd(xmm0, xmm1).unwrap(), x, y, csr), host!("divsd xmm0, xmm1", x, y, csr));
                assert_eq!(ours(&|k| k.sqrtpd(xmm0, xmm1).unwrap(), x, y, csr), host!("sqrtpd xmm0, xmm1", x, y, csr));
                assert_eq!(ours(&|k| k.subpd(xmm0, xmm1).unwrap(), x, y, csr), host!("subpd xmm0, xmm1", x, y, csr));
            }
        }
    }

    #[test]
    fn ucomisd_sets_zf_pf_cf() {
        let flags = |a: f64, b: f64| {
            let mut c = CodeAssembler::new(64).unwrap();
            c.ucomisd(xmm0, xmm1).unwrap();
            c.hlt().unwrap();
            let mut m = sse_machine(&mut c);
            m.cpu.state_mut().sse.xmm[0] = [a.to_bits(), 0];
            m.cpu.state_mut().sse.xmm[1] = [b.to_bits(), 0];
            m.cpu.state_mut().rflags |= fl::OF | fl::SF;
            m.run();
            let st = m.cpu.state();
            (st.rflags & fl::ARITH, st.sse.mxcsr & 1)
        };
        assert_eq!(flags(1.0, 2.0), (fl::CF, 0));
        assert_eq!(flags(2.0, 2.0), (fl::ZF, 0));
        assert_eq!(flags(3.0, 2.0), (0, 0));
        assert_eq!(flags(f64::NAN, 2.0), (fl::ZF | fl::PF | fl::CF, 0));
    }

    #[test]
    fn unmasked_divide_by_zero_raises_xm_and_keeps_the_destination() {
        let mut c = CodeAssembler::new(64).unwrap();
        c.divss(xmm0, xmm1).unwrap();
        c.hlt().unwrap();
        let mut m = sse_machine(&mut c);
        m.cpu.state_mut().sse.xmm[0] = [1.0f32.to_bits() as u64, 0];
        m.cpu.state_mut().sse.mxcsr = 0x1f80 & !(1 << 9);
        let _ = m.cpu.step(&m.p);
        assert_eq!(m.cpu.last_exception.map(|e| e.0), Some(19));
        assert_eq!(m.cpu.state().sse.xmm[0][0], 1.0f32.to_bits() as u64);
        assert_ne!(m.cpu.state().sse.mxcsr & 4, 0);
    }

    /// A deterministic generator of special-heavy float bit patterns.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        /// A value of `width` bits with `frac` fraction bits.
        fn float(&mut self, width: u32, frac: u32) -> u64 {
            let r = self.next();
            let emax = (1u64 << (width - 1 - frac)) - 1;
            let exp = match r % 8 {
                0 => 0,
                1 => 1,
                2 => emax,
                3 => emax - 1,
                4 => emax / 2,
                _ => self.next() % (emax + 1),
            };
            let fmask = (1u64 << frac) - 1;
            let f = match (r >> 8) % 6 {
                0 => 0,
                1 => 1,
                2 => fmask,
                3 => 1 << (frac - 1),
                _ => self.next() & fmask,
            };
            ((r >> 20) & 1) << (width - 1) | exp << frac | f
        }
    }

    /// Runs one scalar SSE instruction on the host: xmm0 = a, xmm1 = b, MXCSR = csr
    /// (all exceptions masked); returns the low quadword of xmm0 and MXCSR after.
    macro_rules! host_scalar {
        ($insn:literal, $a:expr, $b:expr, $csr:expr) => {{
            let mut v: [u64; 2] = [$a, $b];
            let mut csr: u32 = $csr;
            // SAFETY: the asm saves MXCSR, loads `csr`, runs one scalar instruction on
            // values read from and written back to `v` (RAX may carry an integer result
            // and is declared clobbered), stores the flags to `csr` and restores MXCSR.
            unsafe {
                asm!(
                    "sub rsp, 8", "stmxcsr [rsp]", "ldmxcsr [{c}]",
                    "movq xmm0, [{v}]", "movq xmm1, [{v} + 8]",
                    $insn,
                    "movq [{v}], xmm0", "stmxcsr [{c}]", "ldmxcsr [rsp]", "add rsp, 8",
                    v = in(reg) v.as_mut_ptr(), c = in(reg) &mut csr,
                    out("xmm0") _, out("xmm1") _, out("rax") _,
                );
            }
            (v[0], csr)
        }};
    }

    /// Our result for one lane, in the host's shape (masked exceptions only).
    fn lane<F: super::SseFloat>(op: Option<super::FpOp>, imm: u8, a: u64, b: u64, csr: u32) -> (u64, u32) {
        let mut flags = 0;
        let r = match op {
            Some(op) => super::binop::<F>(op, a, b, csr, &mut flags),
            None => super::compare::<F>(imm, a, b, csr, &mut flags),
        };
        (r, csr | flags)
    }

    #[test]
    fn random_scalar_ops_match_the_host() {
        use super::FpOp::*;
        use rustc_apfloat::ieee::{Double, Single};
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        for i in 0..20_000 {
            let csr = 0x1f80 | [0, 0x2000, 0x4000, 0x6000][i % 4] | [0, 0x40, 0x8000, 0x8040][(i / 4) % 4];
            let (a, b) = (g.float(32, 23), g.float(32, 23));
            let w = format!("a={a:#x} b={b:#x} csr={csr:#x}");
            assert_eq!(
                lane::<Single>(Some(Add), 0, a, b, csr),
                host_scalar!("addss xmm0, xmm1", a, b, csr),
                "addss {w}"
            );
            assert_eq!(
                lane::<Single>(Some(Sub), 0, a, b, csr),
                host_scalar!("subss xmm0, xmm1", a, b, csr),
                "subss {w}"
            );
            assert_eq!(
                lane::<Single>(Some(Mul), 0, a, b, csr),
                host_scalar!("mulss xmm0, xmm1", a, b, csr),
                "mulss {w}"
            );
            assert_eq!(
                lane::<Single>(Some(Div), 0, a, b, csr),
                host_scalar!("divss xmm0, xmm1", a, b, csr),
                "divss {w}"
            );
            assert_eq!(
                lane::<Single>(Some(Min), 0, a, b, csr),
                host_scalar!("minss xmm0, xmm1", a, b, csr),
                "minss {w}"
            );
            assert_eq!(
                lane::<Single>(Some(Max), 0, a, b, csr),
                host_scalar!("maxss xmm0, xmm1", a, b, csr),
                "maxss {w}"
            );
            assert_eq!(
                lane::<Single>(Some(Sqrt), 0, a, b, csr),
                host_scalar!("sqrtss xmm0, xmm1", a, b, csr),
                "sqrtss {w}"
            );
            assert_eq!(
                lane::<Single>(None, 2, a, b, csr),
                host_scalar!("cmpss xmm0, xmm1, 2", a, b, csr),
                "cmpless {w}"
            );
            for (imm, got) in [
                (0, host_scalar!("cmpss xmm0, xmm1, 0", a, b, csr)),
                (1, host_scalar!("cmpss xmm0, xmm1, 1", a, b, csr)),
                (3, host_scalar!("cmpss xmm0, xmm1, 3", a, b, csr)),
                (5, host_scalar!("cmpss xmm0, xmm1, 5", a, b, csr)),
                (6, host_scalar!("cmpss xmm0, xmm1, 6", a, b, csr)),
                (7, host_scalar!("cmpss xmm0, xmm1, 7", a, b, csr)),
            ] {
                assert_eq!(lane::<Single>(None, imm, a, b, csr), got, "cmpss {imm} {w}");
            }
            let (a, b) = (g.float(64, 52), g.float(64, 52));
            let w = format!("a={a:#x} b={b:#x} csr={csr:#x}");
            assert_eq!(
                lane::<Double>(Some(Add), 0, a, b, csr),
                host_scalar!("addsd xmm0, xmm1", a, b, csr),
                "addsd {w}"
            );
            assert_eq!(
                lane::<Double>(Some(Mul), 0, a, b, csr),
                host_scalar!("mulsd xmm0, xmm1", a, b, csr),
                "mulsd {w}"
            );
            assert_eq!(
                lane::<Double>(Some(Div), 0, a, b, csr),
                host_scalar!("divsd xmm0, xmm1", a, b, csr),
                "divsd {w}"
            );
            assert_eq!(
                lane::<Double>(Some(Sqrt), 0, a, b, csr),
                host_scalar!("sqrtsd xmm0, xmm1", a, b, csr),
                "sqrtsd {w}"
            );
            assert_eq!(
                lane::<Double>(None, 4, a, b, csr),
                host_scalar!("cmpsd xmm0, xmm1, 4", a, b, csr),
                "cmpneqsd {w}"
            );
        }
    }

    #[test]
    fn random_conversions_match_the_host() {
        use rustc_apfloat::ieee::{Double, Single};
        let mut g = Gen(0x2545_f491_4f6c_dd1d);
        for i in 0..20_000 {
            let csr = 0x1f80 | [0, 0x2000, 0x4000, 0x6000][i % 4] | [0, 0x40, 0x8000, 0x8040][(i / 4) % 4];
            let round = super::mxcsr_round(csr);
            let d = g.float(64, 52);
            let f = g.float(32, 23);
            let w = format!("d={d:#x} f={f:#x} csr={csr:#x}");
            let ours = |r: u64, fl: u32| (r, csr | fl);
            let mut fl = 0;
            let r = super::super::sse_convert::convert_lane::<Double, Single>(d, round, csr, &mut fl);
            assert_eq!(ours(r, fl), host_scalar!("cvtsd2ss xmm0, xmm1", 0, d, csr), "cvtsd2ss {w}");
            let mut fl = 0;
            let r = super::super::sse_convert::convert_lane::<Single, Double>(f, round, csr, &mut fl);
            assert_eq!(ours(r, fl), host_scalar!("cvtss2sd xmm0, xmm1", 0, f, csr), "cvtss2sd {w}");
            let mut fl = 0;
            let r = super::super::sse_convert::to_int::<Double>(d, 32, round, csr, &mut fl);
            let (h, hc) = host_scalar!("cvtsd2si eax, xmm1\nmovd xmm0, eax", 0, d, csr);
            assert_eq!(ours(r, fl), (h & 0xffff_ffff, hc), "cvtsd2si {w}");
            let mut fl = 0;
            let r = super::super::sse_convert::to_int::<Single>(f, 64, rustc_apfloat::Round::TowardZero, csr, &mut fl);
            assert_eq!(ours(r, fl), host_scalar!("cvttss2si rax, xmm1\nmovq xmm0, rax", 0, f, csr), "cvttss2si {w}");
        }
    }
}
