//! x87 arithmetic in double-extended precision and the dispatch of the non-control
//! x87 instructions: FADD FSUB FSUBR FMUL FDIV FDIVR (with the P and integer forms),
//! FSQRT FABS FCHS FRNDINT FSCALE FXTRACT FPREM FPREM1, plus the operand checks shared
//! with `x87_transfer` and `x87_compare` (stack underflow, unsupported encodings,
//! pseudo-denormals) and the host-FPU differential tests of the whole group (SDM Vol. 1
//! §8.3-8.5, Vol. 2 each instruction's page). Results are rounded with FCW.RC to the
//! precision FCW.PC selects (24, 53 or 64 bits).

use super::x87::{fsw, status_flags, INDEFINITE};
use super::x87_transfer::constant;
use crate::interp::cpu::Ctx;
use crate::interp::fault::{Fault, R};
use crate::interp::fpu::{self, round_of, F80};
use iced_x86::{Instruction, Mnemonic as M, OpKind};
use rustc_apfloat::{Category, Float, Round, Status, StatusAnd};

/// Significand bits of a double-extended value (including the explicit integer bit).
const SIG: u128 = (1 << 64) - 1;
/// The x87 quiet bit (the fraction's top bit).
pub(super) const QUIET: u128 = 1 << 62;

/// True for the encodings the x87 rejects as operands (SDM Vol. 1 §8.2.2): a non-zero
/// exponent with the integer bit clear (unnormals, pseudo-NaNs, pseudo-infinities).
pub(super) fn unsupported(b: u128) -> bool {
    (b >> 64) & 0x7fff != 0 && b >> 63 & 1 == 0
}

/// True for a pseudo-denormal (zero exponent, integer bit set).
fn pseudo_denormal(b: u128) -> bool {
    (b >> 64) & 0x7fff == 0 && b >> 63 & 1 == 1
}

/// `v` with the quiet bit set.
pub(super) fn quiet(v: F80) -> F80 {
    F80::from_bits(v.to_bits() | QUIET)
}

/// The x87 NaN result of a two-operand op, if either is a NaN: the one with the larger
/// significand, so a QNaN beats an SNaN (quieted; the positive one on a tie), IE for a
/// signalling one (SDM Vol. 1 Table 4-7).
pub(super) fn nan2(a: F80, b: F80, flags: &mut u16) -> Option<F80> {
    match (a.is_nan(), b.is_nan()) {
        (false, false) => return None,
        _ if a.is_signaling() || b.is_signaling() => *flags |= fsw::IE,
        _ => {}
    }
    let (sa, sb) = (a.to_bits() & SIG, b.to_bits() & SIG);
    Some(quiet(match (a.is_nan(), b.is_nan()) {
        (true, true) if sb > sa || (sb == sa && !b.is_negative()) => b,
        (true, _) => a,
        _ => b,
    }))
}

/// Arithmetic selector.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    SubR,
    Mul,
    Div,
    DivR,
}

impl Ctx<'_> {
    /// ST(i)'s encoding for a data move (FLD ST(i), FST to ST(i) or m80, FCMOV): an
    /// empty register is a stack underflow whose masked response is the indefinite
    /// (`None` when IE is unmasked); no format checks.
    pub(super) fn st_raw_checked(&mut self, i: usize) -> Option<u128> {
        if self.st_empty(i) {
            if self.x87_underflow() {
                return None;
            }
            return Some(INDEFINITE);
        }
        Some(self.st_bits(i))
    }

    /// True when ST(i) holds an unsupported encoding (which makes any arithmetic result
    /// the indefinite, even next to a NaN).
    pub(super) fn st_unsupported(&self, i: usize) -> bool {
        !self.st_empty(i) && unsupported(self.st_bits(i))
    }

    /// ST(i) as an arithmetic operand: stack underflow as in
    /// [`Ctx::st_raw_checked`]; an unsupported encoding is an invalid operand (IE,
    /// the indefinite when masked); a pseudo-denormal reports DE and reads as the
    /// denormal-range value hardware gives it.
    pub(super) fn st_checked(&mut self, i: usize) -> Option<F80> {
        let b = self.st_raw_checked(i)?;
        if unsupported(b) {
            if self.x87_flags(fsw::IE) {
                return None;
            }
            return Some(F80::from_bits(INDEFINITE));
        }
        if pseudo_denormal(b) {
            self.c.st.x87.fsw |= fsw::DE;
            return Some(F80::from_bits(b | 1 << 64));
        }
        Some(F80::from_bits(b))
    }

    /// The rounding mode from FCW.RC.
    pub(super) fn x87_round(&self) -> Round {
        round_of((self.c.st.x87.fcw >> 10) as u32)
    }

    /// Dispatch for the data-transfer and arithmetic instructions.
    pub(super) fn x87_arith(&mut self, ins: &Instruction) -> R<()> {
        let m = ins.mnemonic();
        match m {
            M::Fld | M::Fild | M::Fbld => self.fld(ins),
            M::Fld1 | M::Fldz | M::Fldpi | M::Fldl2e | M::Fldl2t | M::Fldlg2 | M::Fldln2 => {
                self.set_cc(fsw::C1, 0);
                let v = constant(m, self.x87_round());
                self.fpush(v)
            }
            M::Fst | M::Fstp | M::Fist | M::Fistp | M::Fisttp | M::Fbstp => self.fst(ins),
            M::Fadd | M::Faddp | M::Fiadd => self.fbinop(ins, Op::Add),
            M::Fsub | M::Fsubp | M::Fisub => self.fbinop(ins, Op::Sub),
            M::Fsubr | M::Fsubrp | M::Fisubr => self.fbinop(ins, Op::SubR),
            M::Fmul | M::Fmulp | M::Fimul => self.fbinop(ins, Op::Mul),
            M::Fdiv | M::Fdivp | M::Fidiv => self.fbinop(ins, Op::Div),
            M::Fdivr | M::Fdivrp | M::Fidivr => self.fbinop(ins, Op::DivR),
            M::Fchs | M::Fabs | M::Fsqrt | M::Frndint => self.funary(ins),
            M::Fscale | M::Fprem | M::Fprem1 => self.fst0_st1(ins),
            M::Fxtract => self.fxtract(),
            M::Fcom | M::Fcomp | M::Fcompp | M::Fucom | M::Fucomp | M::Fucompp | M::Ficom | M::Ficomp | M::Ftst => {
                self.fcom(ins)
            }
            M::Fcomi | M::Fcomip | M::Fucomi | M::Fucomip => self.fcomi(ins),
            M::Fxam => {
                self.fxam();
                Ok(())
            }
            M::Fcmovb | M::Fcmove | M::Fcmovbe | M::Fcmovu | M::Fcmovnb | M::Fcmovne | M::Fcmovnbe | M::Fcmovnu => {
                self.fcmov(ins)
            }
            M::Fsin | M::Fcos | M::Fsincos | M::Fptan | M::F2xm1 | M::Fpatan | M::Fyl2x | M::Fyl2xp1 => {
                self.x87_transcendental(m)
            }
            // `x87` routes only the mnemonics `is_x87` lists, and every one is handled.
            _ => Err(Fault::ud()),
        }
    }

    /// The two-operand arithmetic group: `dst = dst op src` (reverse forms swap).
    fn fbinop(&mut self, ins: &Instruction, op: Op) -> R<()> {
        self.set_cc(fsw::C1, 0);
        let mut flags = 0;
        let (dst, src, bad) = if ins.op0_kind() == OpKind::Memory {
            let b = self.x87_load_mem(ins, &mut flags)?;
            let bad = self.st_unsupported(0);
            let Some(a) = self.st_checked(0) else { return Ok(()) };
            (0, (a, b), bad)
        } else {
            let (d, s) = (self.st_index(ins, 0), self.st_index(ins, 1));
            let bad = self.st_unsupported(d) || self.st_unsupported(s);
            let Some(a) = self.st_checked(d) else { return Ok(()) };
            let Some(b) = self.st_checked(s) else { return Ok(()) };
            (d, (a, b), bad)
        };
        let (a, b) = src;
        if (a.is_denormal() || b.is_denormal()) && !a.is_nan() && !b.is_nan() {
            flags |= fsw::DE;
        }
        let round = self.x87_round();
        let r = if bad {
            F80::from_bits(INDEFINITE)
        } else if let Some(n) = nan2(a, b, &mut flags) {
            n
        } else {
            // The op at 64 bits with `rd`, with the overflow and tininess apfloat misses
            // when it clamps or rounds into the smallest normal.
            let f = |rd: Round| {
                let mut r = match op {
                    Op::Add => a.add_r(b, rd),
                    Op::Sub => a.sub_r(b, rd),
                    Op::SubR => b.sub_r(a, rd),
                    Op::Mul => a.mul_r(b, rd),
                    Op::Div => a.div_r(b, rd),
                    Op::DivR => b.div_r(a, rd),
                };
                if r.status == Status::INEXACT && r.value.is_largest() && f80_overflows(op, a, b) {
                    r.status |= Status::OVERFLOW;
                }
                if r.status == Status::INEXACT && r.value.is_smallest_normalized() && f80_tiny(op, a, b, rd) {
                    r.status |= Status::UNDERFLOW;
                }
                r
            };
            let fcw = self.c.st.x87.fcw;
            let r = with_precision(fcw, round, f, || f80_overflows(op, a, b));
            flags |= status_flags(r.status);
            if r.status.contains(Status::INEXACT) {
                let t = with_precision(fcw, Round::TowardZero, f, || f80_overflows(op, a, b));
                flags |= rounded_up(r.value, t.value);
            }
            if r.status.contains(Status::INVALID_OP) {
                F80::from_bits(INDEFINITE)
            } else {
                r.value
            }
        };
        if self.x87_flags(flags) && flags & (fsw::IE | fsw::ZE | fsw::DE) != 0 {
            return Ok(());
        }
        self.set_st(dst, r);
        if matches!(ins.mnemonic(), M::Faddp | M::Fsubp | M::Fsubrp | M::Fmulp | M::Fdivp | M::Fdivrp) {
            self.fpop();
        }
        Ok(())
    }

    /// FCHS, FABS, FSQRT, FRNDINT on ST(0).
    fn funary(&mut self, ins: &Instruction) -> R<()> {
        self.set_cc(fsw::C1, 0);
        if matches!(ins.mnemonic(), M::Fchs | M::Fabs) {
            let Some(b) = self.st_raw_checked(0) else { return Ok(()) };
            let sign = 1u128 << 79;
            self.set_st_bits(0, if ins.mnemonic() == M::Fchs { b ^ sign } else { b & !sign });
            return Ok(());
        }
        let Some(v) = self.st_checked(0) else { return Ok(()) };
        let mut flags = 0;
        let round = self.x87_round();
        let r = match ins.mnemonic() {
            _ if v.is_nan() => {
                if v.is_signaling() {
                    flags |= fsw::IE;
                }
                quiet(v)
            }
            m => {
                if v.is_denormal() {
                    flags |= fsw::DE;
                }
                let fcw = self.c.st.x87.fcw;
                let f = |rd: Round| {
                    if m == M::Fsqrt {
                        with_precision(fcw, rd, |rd| fpu::sqrt(v, rd), || false)
                    } else {
                        v.round_to_integral(rd)
                    }
                };
                let r = f(round);
                flags |= status_flags(r.status);
                if r.status.contains(Status::INEXACT) {
                    flags |= rounded_up(r.value, f(Round::TowardZero).value);
                }
                if r.status.contains(Status::INVALID_OP) {
                    F80::from_bits(INDEFINITE)
                } else {
                    r.value
                }
            }
        };
        if self.x87_flags(flags) && flags & (fsw::IE | fsw::DE) != 0 {
            return Ok(());
        }
        self.set_st(0, r);
        Ok(())
    }

    /// FSCALE, FPREM and FPREM1 (ST(0) with ST(1)).
    fn fst0_st1(&mut self, ins: &Instruction) -> R<()> {
        let bad = self.st_unsupported(0) || self.st_unsupported(1);
        let Some(a) = self.st_checked(0) else { return Ok(()) };
        let Some(b) = self.st_checked(1) else { return Ok(()) };
        let mut flags = 0;
        if (a.is_denormal() || b.is_denormal()) && !a.is_nan() && !b.is_nan() {
            flags |= fsw::DE;
        }
        let m = ins.mnemonic();
        let r = if bad {
            F80::from_bits(INDEFINITE)
        } else if let Some(n) = nan2(a, b, &mut flags) {
            n
        } else if m == M::Fscale {
            self.set_cc(fsw::C1, 0);
            fscale(a, b, self.x87_round(), &mut flags)
        } else {
            self.set_cc(fsw::CC, 0);
            if a.is_infinite() || b.is_zero() {
                flags |= fsw::IE;
                F80::from_bits(INDEFINITE)
            } else if a.is_zero() || b.is_infinite() {
                a
            } else if a.ilogb() - b.ilogb() >= 64 {
                // Partial remainder: reduce by |b| * 2^(D-N), N = 32 + D mod 32, and
                // leave C2 set so software loops (SDM Vol. 2A FPREM).
                let d = a.ilogb() - b.ilogb();
                let scaled = b.abs().scalbn(d - (32 + (d & 31)));
                self.set_cc(fsw::C2, fsw::C2);
                a.c_fmod(scaled).value
            } else {
                let r = if m == M::Fprem { a.c_fmod(b).value } else { a.ieee_rem(b).value };
                // Quotient bits Q2 Q1 Q0 into C0 C3 C1: with |a| = q|b| + r', q mod 8 is
                // (fmod(|a|, 8|b|) - r') / |b|.
                // Everything scaled by 2^-ilogb(b) so 8|b| cannot overflow.
                let e = b.ilogb();
                let (sa, sb) = (a.abs().scalbn(-e), b.abs().scalbn(-e));
                let r8 = sa.c_fmod(sb.scalbn(3)).value;
                let r_rel = if a.is_negative() { -r } else { r }.scalbn(-e);
                let q = (r8 - r_rel).value.div_r(sb, Round::NearestTiesToEven).value;
                let q = q.round_to_integral(Round::NearestTiesToEven).value.to_i128(8).value.rem_euclid(8) as u16;
                let cc = ((q >> 2 & 1) * fsw::C0) | ((q >> 1 & 1) * fsw::C3) | ((q & 1) * fsw::C1);
                self.set_cc(fsw::CC, cc);
                r
            }
        };
        if self.x87_flags(flags) && flags & (fsw::IE | fsw::DE) != 0 {
            return Ok(());
        }
        self.set_st(0, r);
        Ok(())
    }

    /// FXTRACT: ST(0) becomes its exponent, then its significand is pushed.
    fn fxtract(&mut self) -> R<()> {
        self.set_cc(fsw::C1, 0);
        let Some(v) = self.st_checked(0) else { return Ok(()) };
        let mut flags = if v.is_denormal() { fsw::DE } else { 0 };
        let (exp, sig) = match v.category() {
            Category::NaN => {
                if v.is_signaling() {
                    flags |= fsw::IE;
                }
                (quiet(v), quiet(v))
            }
            Category::Zero => {
                flags |= fsw::ZE;
                (-F80::INFINITY, v)
            }
            Category::Infinity => (F80::INFINITY, v),
            Category::Normal => {
                let e = v.ilogb();
                (F80::from_i128(e as i128).value, v.scalbn(-e))
            }
        };
        if self.x87_flags(flags) {
            return Ok(());
        }
        self.set_st(0, exp);
        self.fpush(sig)
    }
}

/// True when the exact `a op b` reaches 2^16384, i.e. overflows even though apfloat
/// clamped it to the largest finite value without saying so (directed rounding). The
/// check runs on operands scaled by 2^-64 so it cannot overflow itself.
fn f80_overflows(op: Op, a: F80, b: F80) -> bool {
    const K: i32 = 64;
    let z = Round::TowardZero;
    let down = |x: F80| x.scalbn(-K);
    let quotient = |n: F80, d: F80| {
        if n.ilogb() > -16000 {
            down(n).div_r(d, z)
        } else {
            n.div_r(d.scalbn(K), z)
        }
    };
    let r = match op {
        Op::Add => down(a).add_r(down(b), z),
        Op::Sub => down(a).sub_r(down(b), z),
        Op::SubR => down(b).sub_r(down(a), z),
        Op::Mul if a.ilogb() >= b.ilogb() => down(a).mul_r(b, z),
        Op::Mul => a.mul_r(down(b), z),
        Op::Div => quotient(a, b),
        Op::DivR => quotient(b, a),
    };
    r.value.abs() >= F80::from_u128(1).value.scalbn(16384 - K)
}

/// Runs `f` (an arithmetic op rounding to 64 bits with the given mode) under FCW's
/// precision control (bits 8-9: 00 single, 10 double, else extended; SDM Vol. 1
/// §8.1.5.2): for 24 or 53 bits the op runs truncating, and the truncated significand
/// plus the inexact bit as sticky is rounded again with `round`, which is exact
/// rounding; denormal results round at the same bit position of their fixed-exponent
/// significand. `exact_overflows` tells whether the exact result reaches 2^16384 (the
/// truncated result alone cannot show it).
fn with_precision(
    fcw: u16,
    round: Round,
    f: impl Fn(Round) -> StatusAnd<F80>,
    exact_overflows: impl Fn() -> bool,
) -> StatusAnd<F80> {
    let p = match (fcw >> 8) & 3 {
        0 => 24,
        2 => 53,
        _ => return f(round),
    };
    let t = f(Round::TowardZero);
    let inexact_zero = t.value.is_zero() && t.status.contains(Status::INEXACT);
    if (t.value.category() != Category::Normal && !inexact_zero) || t.status.contains(Status::INVALID_OP) {
        return f(round);
    }
    let bits = t.value.to_bits();
    let (sign, mut exp, mant) = (bits >> 79 & 1 == 1, (bits >> 64) & 0x7fff, bits as u64);
    let drop = 64 - p;
    let low = mant & ((1 << drop) - 1);
    let half = 1u64 << (drop - 1);
    let sticky = t.status.contains(Status::INEXACT);
    let mut hi = mant >> drop;
    if sticky && t.value.is_largest() && exact_overflows() {
        let to_inf = match round {
            Round::NearestTiesToEven | Round::NearestTiesToAway => true,
            Round::TowardPositive => !sign,
            Round::TowardNegative => sign,
            Round::TowardZero => false,
        };
        let v = if to_inf { F80::INFINITY.copy_sign(t.value) } else { F80::from_bits(bits & !((1 << drop) - 1)) };
        return (Status::OVERFLOW | Status::INEXACT).and(v);
    }
    let up = match round {
        Round::NearestTiesToEven | Round::NearestTiesToAway => low > half || (low == half && (sticky || hi & 1 == 1)),
        Round::TowardPositive => !sign && (low != 0 || sticky),
        Round::TowardNegative => sign && (low != 0 || sticky),
        Round::TowardZero => false,
    };
    let mut status = t.status - Status::INEXACT;
    if low != 0 || sticky {
        status |= Status::INEXACT;
    }
    if up {
        hi += 1;
        if hi == 1 << p {
            hi = 1 << (p - 1);
            exp += 1;
        } else if exp == 0 && hi >> (p - 1) == 1 {
            // A denormal rounded up into the smallest normal.
            exp = 1;
        }
    }
    if exp >= 0x7fff {
        return (status | Status::OVERFLOW | Status::INEXACT).and(F80::INFINITY.copy_sign(t.value));
    }
    // Tiny after rounding to the selected precision: still below the normal range.
    status -= Status::UNDERFLOW;
    if exp == 0 && status.contains(Status::INEXACT) {
        status |= Status::UNDERFLOW;
    }
    status.and(F80::from_bits((sign as u128) << 79 | exp << 64 | ((hi << drop) as u128)))
}

/// C1 when the rounded result `r` is larger in magnitude than the truncated `t` (the
/// x87 reports "rounded up" in C1, SDM Vol. 1 §8.1.3.3).
pub(super) fn rounded_up(r: F80, t: F80) -> u16 {
    if r.abs().bitwise_eq(t.abs()) {
        0
    } else {
        fsw::C1
    }
}

/// True when a product or quotient apfloat rounded up to the smallest normal is tiny
/// the x86 way (below the smallest normal after rounding to 64 bits with an unbounded
/// exponent), computed on an operand scaled away from the denormal range. Inexact sums
/// are never tiny.
fn f80_tiny(op: Op, a: F80, b: F80, round: Round) -> bool {
    const K: i32 = 64;
    let up = |x: F80| x.scalbn(K);
    let r = match op {
        Op::Mul if a.ilogb() <= b.ilogb() => up(a).mul_r(b, round),
        Op::Mul => a.mul_r(up(b), round),
        Op::Div if a.ilogb() <= 0 => up(a).div_r(b, round),
        Op::Div => a.div_r(b.scalbn(-K), round),
        Op::DivR if b.ilogb() <= 0 => up(b).div_r(a, round),
        Op::DivR => b.div_r(a.scalbn(-K), round),
        _ => return false,
    };
    r.value.abs() < F80::smallest_normalized().scalbn(K)
}

/// FSCALE: a * 2^trunc(b) for non-NaN operands, rounded with `round` when the result
/// leaves the normal range (C1 set when that rounding went up in magnitude, as the
/// differential tester found the host doing for denormal results).
fn fscale(a: F80, b: F80, round: Round, flags: &mut u16) -> F80 {
    if b.is_infinite() {
        let zero_or_inf_mismatch = if b.is_negative() { a.is_infinite() } else { a.is_zero() };
        if zero_or_inf_mismatch {
            *flags |= fsw::IE;
            return F80::from_bits(INDEFINITE);
        }
        return if b.is_negative() { F80::ZERO.copy_sign(a) } else { F80::INFINITY.copy_sign(a) };
    }
    let n = b.round_to_integral(Round::TowardZero).value.to_i128(32).value.clamp(-70_000, 70_000) as i32;
    if !a.is_finite() || a.is_zero() {
        return a;
    }
    let r = a.scalbn_r(n, round);
    let e = a.ilogb() + n;
    if e > 16383 {
        *flags |= fsw::OE | fsw::PE | rounded_up(r, a.scalbn_r(n, Round::TowardZero));
    } else if e < -16382 {
        let exact = r.scalbn(-n).bitwise_eq(a);
        if !exact {
            *flags |= fsw::UE | fsw::PE | rounded_up(r, a.scalbn_r(n, Round::TowardZero));
        }
    }
    r
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use crate::interp::test_util::Machine;
    use iced_x86::code_asm::*;
    use std::arch::asm;

    /// Data layout shared by the guest program and the host oracle: control word at
    /// +0, A at +16, B at +32, the result at +48, the status word at +64, EFLAGS at +72.
    const DATA: u64 = 0x20000;

    /// Runs `fninit; fldcw; fld A; fld B; <op>; fstp result; fnstsw` in the guest.
    fn guest(op: &dyn Fn(&mut CodeAssembler), cw: u16, a: [u8; 10], b: [u8; 10]) -> ([u8; 10], u16) {
        let mut c = CodeAssembler::new(64).unwrap();
        c.fninit().unwrap();
        c.fldcw(word_ptr(DATA)).unwrap();
        c.fld(tword_ptr(DATA + 16)).unwrap();
        c.fld(tword_ptr(DATA + 32)).unwrap();
        op(&mut c);
        c.fstp(tword_ptr(DATA + 48)).unwrap();
        c.fnstsw(word_ptr(DATA + 64)).unwrap();
        c.hlt().unwrap();
        let mut m = Machine::long64(&mut c);
        m.poke(DATA, &cw.to_le_bytes());
        m.poke(DATA + 16, &a);
        m.poke(DATA + 32, &b);
        m.run();
        (m.peek(DATA + 48), u16::from_le_bytes(m.peek(DATA + 64)))
    }

    macro_rules! host {
        ($op:literal, $cw:expr, $a:expr, $b:expr) => {{
            let cw: u16 = $cw;
            let a: [u8; 10] = $a;
            let b: [u8; 10] = $b;
            let mut out = [0u8; 10];
            let mut sw: u16 = 0;
            // SAFETY: the asm only reads the three operand buffers and writes `out` and
            // `sw`; it starts and ends with FNINIT so the x87 stack is left empty, and
            // every x87 register is declared clobbered.
            unsafe {
                asm!(
                    "fninit", "fldcw [{cw}]", "fld tbyte ptr [{a}]", "fld tbyte ptr [{b}]",
                    $op,
                    "fstp tbyte ptr [{out}]", "fnstsw [{sw}]", "fninit",
                    cw = in(reg) &cw, a = in(reg) a.as_ptr(), b = in(reg) b.as_ptr(),
                    out = in(reg) out.as_mut_ptr(), sw = in(reg) &mut sw,
                    out("st(0)") _, out("st(1)") _, out("st(2)") _, out("st(3)") _,
                    out("st(4)") _, out("st(5)") _, out("st(6)") _, out("st(7)") _,
                );
            }
            (out, sw)
        }};
    }

    fn f80(sign: bool, exp: u16, mant: u64) -> [u8; 10] {
        let mut b = [0u8; 10];
        b[..8].copy_from_slice(&mant.to_le_bytes());
        b[8..].copy_from_slice(&((exp | (sign as u16) << 15).to_le_bytes()));
        b
    }

    fn values() -> Vec<[u8; 10]> {
        vec![
            f80(false, 0x3fff, 1 << 63),
            f80(false, 0x4000, 0xc000_0000_0000_0000),
            f80(true, 0x3ffd, 0xaaaa_aaaa_aaaa_aaab),
            f80(false, 0x4040, 0xffff_ffff_ffff_ffff),
            f80(false, 0x0000, 0x0000_0000_0000_1234),
            f80(true, 0x7fff, 1 << 63),
            f80(false, 0x7fff, 0xc000_0000_0000_0001),
            f80(false, 0, 0),
            f80(false, 0x3fff, 0x8000_0000_0000_0001),
        ]
    }

    /// Control words: all exceptions masked (an unmasked one would fault on the host),
    /// 64-bit precision, each rounding mode.
    const CWS: [u16; 4] = [0x037f, 0x077f, 0x0b7f, 0x0f7f];

    /// Compares results and the whole status word but B (IE DE ZE OE UE PE SF ES, the
    /// condition codes, TOP).
    fn same(ours: ([u8; 10], u16), host: ([u8; 10], u16), what: &str) {
        assert_eq!(ours.0, host.0, "{what}: result");
        assert_eq!(ours.1 & !0x8000, host.1 & !0x8000, "{what}: status {:#06x} vs {:#06x}", ours.1, host.1);
    }

    #[test]
    fn arithmetic_matches_the_host_fpu() {
        for cw in CWS {
            for a in values() {
                for b in values() {
                    let w = format!("cw={cw:#x} a={a:02x?} b={b:02x?}");
                    same(
                        guest(&|c| c.faddp(st1, st0).unwrap(), cw, a, b),
                        host!("faddp st(1), st", cw, a, b),
                        &format!("faddp st(1), st {w}"),
                    );
                    same(
                        guest(&|c| c.fsubp(st1, st0).unwrap(), cw, a, b),
                        host!("fsubp st(1), st", cw, a, b),
                        &format!("fsubp st(1), st {w}"),
                    );
                    same(
                        guest(&|c| c.fmulp(st1, st0).unwrap(), cw, a, b),
                        host!("fmulp st(1), st", cw, a, b),
                        &format!("fmulp st(1), st {w}"),
                    );
                    same(
                        guest(&|c| c.fdivp(st1, st0).unwrap(), cw, a, b),
                        host!("fdivp st(1), st", cw, a, b),
                        &format!("fdivp st(1), st {w}"),
                    );
                    same(
                        guest(&|c| c.fdivr_2(st0, st1).unwrap(), cw, a, b),
                        host!("fdivr st, st(1)", cw, a, b),
                        &format!("fdivr st, st(1) {w}"),
                    );
                    same(guest(&|c| c.fsqrt().unwrap(), cw, a, b), host!("fsqrt", cw, a, b), &format!("fsqrt {w}"));
                    same(
                        guest(&|c| c.frndint().unwrap(), cw, a, b),
                        host!("frndint", cw, a, b),
                        &format!("frndint {w}"),
                    );
                    same(guest(&|c| c.fprem().unwrap(), cw, a, b), host!("fprem", cw, a, b), &format!("fprem {w}"));
                    same(
                        guest(&|c| c.fcom_2(st0, st1).unwrap(), cw, a, b),
                        host!("fcom st(1)", cw, a, b),
                        &format!("fcom st(1) {w}"),
                    );
                    same(
                        guest(&|c| c.fucom(st0, st1).unwrap(), cw, a, b),
                        host!("fucom st(1)", cw, a, b),
                        &format!("fucom st(1) {w}"),
                    );
                    same(guest(&|c| c.fxam().unwrap(), cw, a, b), host!("fxam", cw, a, b), &format!("fxam {w}"));
                }
            }
        }
    }

    #[test]
    fn conversions_and_constants_match_the_host_fpu() {
        let z = [0u8; 10];
        let s = DATA + 80;
        for cw in CWS {
            for a in values() {
                let w = format!("cw={cw:#x} a={a:02x?}");
                let g = |op: &dyn Fn(&mut CodeAssembler)| guest(op, cw, z, a);
                same(
                    g(&|c| {
                        c.fst(dword_ptr(s)).unwrap();
                        c.fld(dword_ptr(s)).unwrap();
                    }),
                    host!("fst dword ptr [{out}]\nfld dword ptr [{out}]", cw, z, a),
                    &format!("m32 {w}"),
                );
                same(
                    g(&|c| {
                        c.fstp(qword_ptr(s)).unwrap();
                        c.fld(qword_ptr(s)).unwrap();
                    }),
                    host!("fstp qword ptr [{out}]\nfld qword ptr [{out}]", cw, z, a),
                    &format!("fstp qword {w}"),
                );
                same(
                    g(&|c| {
                        c.fist(word_ptr(s)).unwrap();
                        c.fild(word_ptr(s)).unwrap();
                    }),
                    host!("fist word ptr [{out}]\nfild word ptr [{out}]", cw, z, a),
                    &format!("fist word {w}"),
                );
                same(
                    g(&|c| {
                        c.fistp(dword_ptr(s)).unwrap();
                        c.fild(dword_ptr(s)).unwrap();
                    }),
                    host!("fistp dword ptr [{out}]\nfild dword ptr [{out}]", cw, z, a),
                    &format!("fistp dword {w}"),
                );
                same(
                    g(&|c| {
                        c.fistp(qword_ptr(s)).unwrap();
                        c.fild(qword_ptr(s)).unwrap();
                    }),
                    host!("fistp qword ptr [{out}]\nfild qword ptr [{out}]", cw, z, a),
                    &format!("fistp qword {w}"),
                );
                same(
                    g(&|c| {
                        c.fisttp(dword_ptr(s)).unwrap();
                        c.fild(dword_ptr(s)).unwrap();
                    }),
                    host!("fisttp dword ptr [{out}]\nfild dword ptr [{out}]", cw, z, a),
                    &format!("fisttp dword {w}"),
                );
                same(
                    g(&|c| {
                        c.fbstp(tword_ptr(s)).unwrap();
                        c.fbld(tword_ptr(s)).unwrap();
                    }),
                    host!("fbstp tbyte ptr [{out}]\nfbld tbyte ptr [{out}]", cw, z, a),
                    &format!("fbstp tbyte {w}"),
                );
            }
            let w = format!("cw={cw:#x}");
            same(guest(&|c| c.fldpi().unwrap(), cw, z, z), host!("fldpi", cw, z, z), &format!("fldpi {w}"));
            same(guest(&|c| c.fldl2e().unwrap(), cw, z, z), host!("fldl2e", cw, z, z), &format!("fldl2e {w}"));
            same(guest(&|c| c.fldl2t().unwrap(), cw, z, z), host!("fldl2t", cw, z, z), &format!("fldl2t {w}"));
            same(guest(&|c| c.fldlg2().unwrap(), cw, z, z), host!("fldlg2", cw, z, z), &format!("fldlg2 {w}"));
            same(guest(&|c| c.fldln2().unwrap(), cw, z, z), host!("fldln2", cw, z, z), &format!("fldln2 {w}"));
        }
    }

    /// Special-heavy random double-extended values: zeros, denormals, normals,
    /// infinities, NaNs, and the unsupported encodings (unnormals, pseudo-NaNs and
    /// pseudo-infinities) and pseudo-denormals.
    fn random_f80(state: &mut u64) -> [u8; 10] {
        let mut next = || {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            *state
        };
        let r = next();
        let exp = match r % 8 {
            0 => 0,
            1 => 1,
            2 => 0x7fff,
            3 => 0x7ffe,
            4 | 5 => 0x3fff + (next() % 64) as u16 - 32,
            _ => (next() % 0x8000) as u16,
        };
        let mant = match (r >> 8) % 6 {
            0 => 1 << 63,
            1 => u64::MAX,
            2 => (1 << 63) | 1,
            3 => 0xc000_0000_0000_0000,
            _ => next() | 1 << 63,
        };
        // One in eight flips the integer bit: unnormals, pseudo-NaNs/infinities and
        // pseudo-denormals.
        let mant = if (r >> 30) % 8 == 0 {
            mant ^ 1 << 63
        } else if exp == 0 {
            mant & !(1 << 63)
        } else {
            mant
        };
        f80((r >> 20) & 1 == 1, exp, mant)
    }

    #[test]
    fn random_arithmetic_matches_the_host_fpu() {
        let mut st = 0x1234_5678_9abc_def1u64;
        // Every rounding mode at 64, 53 and 24 bits of precision.
        let cws = [0x037f, 0x077f, 0x0b7f, 0x0f7f, 0x027f, 0x067f, 0x0a7f, 0x0e7f, 0x007f, 0x047f, 0x087f, 0x0c7f];
        for i in 0..1500 {
            let cw = cws[i % cws.len()];
            let (a, b) = (random_f80(&mut st), random_f80(&mut st));
            let w = format!("cw={cw:#x} a={a:02x?} b={b:02x?}");
            same(
                guest(&|c| c.faddp(st1, st0).unwrap(), cw, a, b),
                host!("faddp st(1), st", cw, a, b),
                &format!("fadd {w}"),
            );
            same(
                guest(&|c| c.fmulp(st1, st0).unwrap(), cw, a, b),
                host!("fmulp st(1), st", cw, a, b),
                &format!("fmul {w}"),
            );
            same(
                guest(&|c| c.fdivp(st1, st0).unwrap(), cw, a, b),
                host!("fdivp st(1), st", cw, a, b),
                &format!("fdiv {w}"),
            );
            same(guest(&|c| c.fsqrt().unwrap(), cw, a, b), host!("fsqrt", cw, a, b), &format!("fsqrt {w}"));
            same(
                guest(&|c| c.fsubrp(st1, st0).unwrap(), cw, a, b),
                host!("fsubrp st(1), st", cw, a, b),
                &format!("fsubr {w}"),
            );
            same(guest(&|c| c.frndint().unwrap(), cw, a, b), host!("frndint", cw, a, b), &format!("frndint {w}"));
            same(guest(&|c| c.fxam().unwrap(), cw, a, b), host!("fxam", cw, a, b), &format!("fxam {w}"));
            same(
                guest(&|c| c.fcom_2(st0, st1).unwrap(), cw, a, b),
                host!("fcom st(1)", cw, a, b),
                &format!("fcom {w}"),
            );
            same(
                guest(&|c| c.fucom(st0, st1).unwrap(), cw, a, b),
                host!("fucom st(1)", cw, a, b),
                &format!("fucom {w}"),
            );
            same(guest(&|c| c.fprem1().unwrap(), cw, a, b), host!("fprem1", cw, a, b), &format!("fprem1 {w}"));
            same(guest(&|c| c.fscale().unwrap(), cw, a, b), host!("fscale", cw, a, b), &format!("fscale {w}"));
            // FCOMI/FUCOMI flags observed through FCMOVcc.
            same(
                guest(
                    &|c| {
                        c.fcomi(st0, st1).unwrap();
                        c.fcmovb(st0, st1).unwrap();
                    },
                    cw,
                    a,
                    b,
                ),
                host!("fcomi st, st(1)\nfcmovb st, st(1)", cw, a, b),
                &format!("fcomi/fcmovb {w}"),
            );
            same(
                guest(
                    &|c| {
                        c.fucomi(st0, st1).unwrap();
                        c.fcmovu(st0, st1).unwrap();
                        c.fucomi(st0, st1).unwrap();
                        c.fcmovne(st0, st1).unwrap();
                    },
                    cw,
                    a,
                    b,
                ),
                host!("fucomi st, st(1)\nfcmovu st, st(1)\nfucomi st, st(1)\nfcmovne st, st(1)", cw, a, b),
                &format!("fucomi/fcmovu/fcmovne {w}"),
            );
            same(guest(&|c| c.fxtract().unwrap(), cw, a, b), host!("fxtract", cw, a, b), &format!("fxtract {w}"));
            same(
                guest(
                    &|c| {
                        c.fst(qword_ptr(DATA + 80)).unwrap();
                        c.fld(qword_ptr(DATA + 80)).unwrap();
                    },
                    cw,
                    a,
                    b,
                ),
                host!("fst qword ptr [{out}]\nfld qword ptr [{out}]", cw, a, b),
                &format!("fst m64 {w}"),
            );
            same(
                guest(
                    &|c| {
                        c.fistp(dword_ptr(DATA + 80)).unwrap();
                        c.fild(dword_ptr(DATA + 80)).unwrap();
                    },
                    cw,
                    a,
                    b,
                ),
                host!("fistp dword ptr [{out}]\nfild dword ptr [{out}]", cw, a, b),
                &format!("fistp m32 {w}"),
            );
        }
    }
}
