//! The x87 transcendental instructions: FSIN, FCOS, FSINCOS, FPTAN (ST(0) in, C2 set
//! and nothing changed for |x| ≥ 2^63), F2XM1, and FPATAN, FYL2X, FYL2XP1 (ST(1) op
//! ST(0) into ST(1), then pop). Special operands follow the SDM's tables (Vol. 2A each
//! instruction's page; stack faults Vol. 1 §8.5.1.1); the values come from
//! `fpu::transcendental`, rounded once with FCW.RC. Precision control does not apply
//! (SDM Vol. 1 §8.1.5.2). C1 reports "rounded up" (§8.1.3.3).

use super::x87::{fsw, status_flags, INDEFINITE};
use super::x87_arith::{nan2, quiet, rounded_up};
use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use crate::interp::fpu::transcendental::{self as tr, Approx};
use crate::interp::fpu::F80;
use iced_x86::Mnemonic as M;
use rustc_apfloat::{Float, Round, StatusAnd};

/// 2^63, the bound of the trigonometric instructions' operand.
fn trig_limit() -> F80 {
    F80::from_u128(1 << 63).value
}

impl Ctx<'_> {
    /// Dispatch of the transcendental group.
    pub(super) fn x87_transcendental(&mut self, m: M) -> R<()> {
        match m {
            M::Fsincos | M::Fptan => self.fsincos_fptan(m == M::Fptan),
            M::Fpatan | M::Fyl2x | M::Fyl2xp1 => self.fbinary_transcendental(m),
            _ => self.funary_transcendental(m),
        }
    }

    /// Rounds `a` with FCW.RC: the value with PE, UE/OE and C1 (rounded up) recorded
    /// in `flags`.
    fn round_approx(&mut self, a: Approx, flags: &mut u16) -> F80 {
        let round = self.x87_round();
        let r = a.round(round);
        let t = a.round(Round::TowardZero);
        *flags |= status_flags(r.status) | rounded_up(r.value, t.value);
        r.value
    }

    /// Rounds FYL2X's exactly computed y × log2 x (x a power of two) with FCW.RC. The
    /// hardware reports PE even when the product is exact (its log2 is an approximation
    /// that happens to round exactly), and so UE with any denormal result; C1 follows
    /// the actual rounding (measured on an AMD EPYC).
    fn round_exact(&mut self, r: StatusAnd<F80>, t: StatusAnd<F80>, flags: &mut u16) -> F80 {
        *flags |= status_flags(r.status) | fsw::PE;
        if r.value.is_denormal() {
            *flags |= fsw::UE;
        }
        if r.status.contains(rustc_apfloat::Status::INEXACT) {
            *flags |= rounded_up(r.value, t.value);
        }
        r.value
    }

    /// Records `flags`; true when the destination must stay unchanged (an unmasked
    /// invalid operation, zero divide or denormal operand).
    fn keep_on_unmasked(&mut self, flags: u16) -> bool {
        self.x87_flags(flags) && flags & (fsw::IE | fsw::ZE | fsw::DE) != 0
    }

    /// FSIN, FCOS, F2XM1 on ST(0).
    fn funary_transcendental(&mut self, m: M) -> R<()> {
        self.set_cc(fsw::C1 | fsw::C2, 0);
        let Some(x) = self.st_checked(0) else { return Ok(()) };
        let mut flags = 0;
        let r = if x.is_nan() {
            if x.is_signaling() {
                flags |= fsw::IE;
            }
            quiet(x)
        } else if x.is_infinite() {
            match m {
                M::F2xm1 if x.is_negative() => -F80::from_u128(1).value,
                M::F2xm1 => x,
                _ => {
                    flags |= fsw::IE;
                    F80::from_bits(INDEFINITE)
                }
            }
        } else if x.is_zero() {
            if m == M::Fcos {
                F80::from_u128(1).value
            } else {
                x
            }
        } else {
            if x.is_denormal() {
                flags |= fsw::DE;
            }
            match m {
                M::Fsin | M::Fcos if x.abs() >= trig_limit() => {
                    self.set_cc(fsw::C2, fsw::C2);
                    return Ok(());
                }
                M::Fsin => self.round_approx(tr::sin(x), &mut flags),
                M::Fcos => self.round_approx(tr::cos(x), &mut flags),
                // 2^x - 1 is defined for -1 <= x <= +1. Beyond, the SDM leaves the result
                // undefined: the AMD EPYC measured here leaves ST(0) unchanged and
                // reports PE.
                _ if x.abs() > F80::from_u128(1).value => {
                    flags |= fsw::PE;
                    x
                }
                // 2^-1 - 1: -0.5 in every rounding mode, with PE (measured).
                _ if x.bitwise_eq(-F80::from_u128(1).value) => {
                    flags |= fsw::PE;
                    -F80::from_u128(1).value.scalbn(-1)
                }
                _ => self.round_approx(tr::exp2m1(x), &mut flags),
            }
        };
        if self.keep_on_unmasked(flags) {
            return Ok(());
        }
        self.set_st(0, r);
        Ok(())
    }

    /// FSINCOS (ST(0) = sin, push cos) and FPTAN (ST(0) = tan, push 1.0). An empty ST(0)
    /// is a stack underflow and a full ST(7) a stack overflow (C1 = 1); masked, both
    /// results are the indefinite.
    fn fsincos_fptan(&mut self, tan: bool) -> R<()> {
        self.set_cc(fsw::C1 | fsw::C2, 0);
        if self.st_empty(0) || !self.st_empty(7) {
            let unmasked = if self.st_empty(0) {
                self.x87_underflow()
            } else {
                self.set_cc(fsw::C1, fsw::C1);
                self.x87_flags(fsw::IE | fsw::SF)
            };
            if !unmasked {
                self.set_st_bits(0, INDEFINITE);
                self.fpush_bits(INDEFINITE)?;
            }
            return Ok(());
        }
        let Some(x) = self.st_checked(0) else { return Ok(()) };
        let mut flags = 0;
        let one = F80::from_u128(1).value;
        let (first, second) = if x.is_nan() {
            if x.is_signaling() {
                flags |= fsw::IE;
            }
            (quiet(x), quiet(x))
        } else if x.is_infinite() {
            flags |= fsw::IE;
            (F80::from_bits(INDEFINITE), F80::from_bits(INDEFINITE))
        } else if x.is_zero() {
            (x, one)
        } else {
            if x.is_denormal() {
                flags |= fsw::DE;
            }
            if x.abs() >= trig_limit() {
                self.set_cc(fsw::C2, fsw::C2);
                return Ok(());
            }
            if tan {
                (self.round_approx(tr::tan(x), &mut flags), one)
            } else {
                // C1 reports the sine's rounding (measured), the cosine's is dropped.
                let mut cos_flags = 0;
                let c = self.round_approx(tr::cos(x), &mut cos_flags);
                flags |= cos_flags & !fsw::C1;
                (self.round_approx(tr::sin(x), &mut flags), c)
            }
        };
        if self.keep_on_unmasked(flags) {
            return Ok(());
        }
        let c1 = flags & fsw::C1;
        self.set_st(0, first);
        self.fpush(second)?;
        self.set_cc(fsw::C1, c1);
        Ok(())
    }

    /// FPATAN, FYL2X, FYL2XP1: ST(1) = f(ST(1), ST(0)), then pop.
    fn fbinary_transcendental(&mut self, m: M) -> R<()> {
        self.set_cc(fsw::C1, 0);
        let bad = self.st_unsupported(0) || self.st_unsupported(1);
        let Some(x) = self.st_checked(0) else { return Ok(()) };
        let Some(y) = self.st_checked(1) else { return Ok(()) };
        let mut flags = 0;
        if (x.is_denormal() || y.is_denormal()) && !x.is_nan() && !y.is_nan() {
            flags |= fsw::DE;
        }
        let r = if bad {
            F80::from_bits(INDEFINITE)
        } else if let Some(n) = nan2(y, x, &mut flags) {
            n
        } else {
            match m {
                M::Fpatan => self.round_approx(tr::atan2(y, x), &mut flags),
                M::Fyl2x => self.fyl2x(y, x, &mut flags),
                _ => self.fyl2xp1(y, x, &mut flags),
            }
        };
        if self.keep_on_unmasked(flags) {
            return Ok(());
        }
        self.set_st(1, r);
        self.fpop();
        Ok(())
    }

    /// y × log2 x for non-NaN operands (SDM Vol. 2A FYL2X, Table 3-49): negative x is
    /// invalid, zero x a zero divide unless y is zero (invalid) or infinite.
    fn fyl2x(&mut self, y: F80, x: F80, flags: &mut u16) -> F80 {
        let one = F80::from_u128(1).value;
        let invalid = |flags: &mut u16| {
            *flags |= fsw::IE;
            F80::from_bits(INDEFINITE)
        };
        if x.is_negative() && !x.is_zero() {
            return invalid(flags);
        }
        if x.is_zero() {
            if y.is_zero() {
                return invalid(flags);
            }
            if !y.is_infinite() {
                *flags |= fsw::ZE;
            }
            return if y.is_negative() { F80::INFINITY } else { -F80::INFINITY };
        }
        // log2 x is ±inf, ±0 (x = 1) or finite non-zero: the product's IEEE rules give
        // the table's signs and its invalid 0 × inf.
        let below_one = x < one;
        if x.is_infinite() || y.is_infinite() || x.bitwise_eq(one) || y.is_zero() {
            let log_sign_negative = below_one;
            let l = if x.is_infinite() {
                F80::INFINITY
            } else if x.bitwise_eq(one) {
                F80::ZERO
            } else if log_sign_negative {
                -one
            } else {
                one
            };
            if (l.is_zero() && y.is_infinite()) || (l.is_infinite() && y.is_zero()) {
                return invalid(flags);
            }
            return (y * l).value;
        }
        if tr::log2_is_exact(x) {
            let r = tr::y_times_exponent(y, x, self.x87_round());
            let t = tr::y_times_exponent(y, x, Round::TowardZero);
            return self.round_exact(r, t, flags);
        }
        self.round_approx(tr::y_log2_x(y, x), flags)
    }

    /// y × log2(1 + x) for non-NaN operands (SDM Vol. 2A FYL2XP1, Table 3-50), defined
    /// for |x| < 1 - √2/2: zeros and infinities give signed zeros and infinities (the
    /// sign of x times that of y; zero times infinity and x = -inf are invalid). Beyond
    /// the domain the SDM leaves the result undefined: rx86 computes y × log2(1 + x)
    /// while 1 + x > 0 and reports an invalid operation for x <= -1, where the AMD EPYC
    /// measured returns values unrelated to the function (-1 for x = -1 and y = ±1).
    fn fyl2xp1(&mut self, y: F80, x: F80, flags: &mut u16) -> F80 {
        let invalid = |flags: &mut u16| {
            *flags |= fsw::IE;
            F80::from_bits(INDEFINITE)
        };
        if x.is_infinite() && x.is_negative() {
            return invalid(flags);
        }
        let zero = x.is_zero() || y.is_zero();
        let infinite = x.is_infinite() || y.is_infinite();
        if zero && infinite {
            return invalid(flags);
        }
        let negative = x.is_negative() != y.is_negative();
        if zero {
            return if negative { -F80::ZERO } else { F80::ZERO };
        }
        if infinite {
            return if negative { -F80::INFINITY } else { F80::INFINITY };
        }
        if x <= -F80::from_u128(1).value {
            return invalid(flags);
        }
        self.round_approx(tr::y_log2_1p_x(y, x), flags)
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use crate::interp::test_util::Machine;
    use iced_x86::code_asm::*;
    use std::arch::asm;

    /// Control word at +0, A at +16, B at +32, ST(0) at +48, ST(1) at +64, FSW at +80.
    const DATA: u64 = 0x20000;

    /// `fninit; fldcw; fld A; fld B; <op>; fnstsw; fstp st0; fstp st1` in the guest
    /// (ST(0) = B, ST(1) = A before the op; emptied registers store as the indefinite).
    fn guest(op: &dyn Fn(&mut CodeAssembler), cw: u16, a: [u8; 10], b: [u8; 10]) -> ([u8; 10], [u8; 10], u16) {
        let mut c = CodeAssembler::new(64).unwrap();
        c.fninit().unwrap();
        c.fldcw(word_ptr(DATA)).unwrap();
        c.fld(tword_ptr(DATA + 16)).unwrap();
        c.fld(tword_ptr(DATA + 32)).unwrap();
        op(&mut c);
        c.fnstsw(word_ptr(DATA + 80)).unwrap();
        c.fstp(tword_ptr(DATA + 48)).unwrap();
        c.fstp(tword_ptr(DATA + 64)).unwrap();
        c.hlt().unwrap();
        let mut m = Machine::long64(&mut c);
        m.poke(DATA, &cw.to_le_bytes());
        m.poke(DATA + 16, &a);
        m.poke(DATA + 32, &b);
        m.run();
        (m.peek(DATA + 48), m.peek(DATA + 64), u16::from_le_bytes(m.peek(DATA + 80)))
    }

    macro_rules! host {
        ($op:literal, $cw:expr, $a:expr, $b:expr) => {{
            let cw: u16 = $cw;
            let a: [u8; 10] = $a;
            let b: [u8; 10] = $b;
            let mut out0 = [0u8; 10];
            let mut out1 = [0u8; 10];
            let mut sw: u16 = 0;
            // SAFETY: the asm reads the operand buffers and writes `out0`, `out1` and `sw`
            // only; it starts and ends with FNINIT so the x87 stack is left empty, and
            // every x87 register is declared clobbered.
            unsafe {
                asm!(
                    "fninit", "fldcw [{cw}]", "fld tbyte ptr [{a}]", "fld tbyte ptr [{b}]",
                    $op,
                    "fnstsw [{sw}]", "fstp tbyte ptr [{o0}]", "fstp tbyte ptr [{o1}]", "fninit",
                    cw = in(reg) &cw, a = in(reg) a.as_ptr(), b = in(reg) b.as_ptr(),
                    o0 = in(reg) out0.as_mut_ptr(), o1 = in(reg) out1.as_mut_ptr(), sw = in(reg) &mut sw,
                    out("st(0)") _, out("st(1)") _, out("st(2)") _, out("st(3)") _,
                    out("st(4)") _, out("st(5)") _, out("st(6)") _, out("st(7)") _,
                );
            }
            (out0, out1, sw)
        }};
    }

    fn f80(sign: bool, exp: u16, mant: u64) -> [u8; 10] {
        let mut b = [0u8; 10];
        b[..8].copy_from_slice(&mant.to_le_bytes());
        b[8..].copy_from_slice(&((exp | (sign as u16) << 15).to_le_bytes()));
        b
    }

    /// Operands: specials (zeros, infinities, NaNs, a denormal, an unnormal, ±1, 2^63)
    /// and ordinary values.
    fn specials() -> Vec<[u8; 10]> {
        vec![
            f80(false, 0, 0),
            f80(true, 0, 0),
            f80(false, 0x7fff, 1 << 63),
            f80(true, 0x7fff, 1 << 63),
            f80(false, 0x7fff, 0xc000_0000_0000_0001),
            f80(true, 0x7fff, 0x8000_0000_0000_0001),
            f80(false, 0, 0x1234),
            f80(false, 0x3fff, 0x1234),
            f80(false, 0x3fff, 1 << 63),
            f80(true, 0x3fff, 1 << 63),
            f80(false, 0x403e, 1 << 63),
            f80(true, 0x403d, u64::MAX),
            f80(false, 0x3ffd, 0x9999_9999_9999_999a),
            f80(true, 0x3ffe, 0xc000_0000_0000_0000),
            f80(false, 0x4001, 0xa000_0000_0000_0000),
            f80(false, 0x3ffe, 1 << 63),
            f80(false, 0x3000, 0x8000_0000_0000_0001),
        ]
    }

    /// Compares both stack slots and the status word but B.
    fn same(ours: ([u8; 10], [u8; 10], u16), host: ([u8; 10], [u8; 10], u16), what: &str) {
        assert_eq!((ours.0, ours.1), (host.0, host.1), "{what}: results");
        assert_eq!(ours.2 & !0x8000, host.2 & !0x8000, "{what}: status {:#06x} vs {:#06x}", ours.2, host.2);
    }

    const CWS: [u16; 4] = [0x037f, 0x077f, 0x0b7f, 0x0f7f];

    /// The cases `may_differ_from_hardware` names, left out of the comparison.
    fn excluded(m: iced_x86::Mnemonic, cw: u16, a: [u8; 10], b: [u8; 10]) -> bool {
        let bits = |b: [u8; 10]| {
            let mut w = [0u8; 16];
            w[..10].copy_from_slice(&b);
            u128::from_le_bytes(w)
        };
        crate::interp::fpu::transcendental::may_differ_from_hardware(m, bits(b), bits(a), cw >> 10 & 3)
    }

    /// Runs `$op` in the guest (through the assembler method `$asm`) and on the host
    /// unless the case is near a rounding boundary.
    macro_rules! check {
        ($m:ident, $asm:ident, $op:literal, $cw:expr, $a:expr, $b:expr) => {
            if !excluded(iced_x86::Mnemonic::$m, $cw, $a, $b) {
                let w = format!("{} cw={:#x} st1={:02x?} st0={:02x?}", $op, $cw, $a, $b);
                same(guest(&|c| c.$asm().unwrap(), $cw, $a, $b), host!($op, $cw, $a, $b), &w);
            }
        };
    }

    #[test]
    fn special_operands_match_the_host_fpu() {
        for cw in CWS {
            for a in specials() {
                for b in specials() {
                    check!(Fsin, fsin, "fsin", cw, a, b);
                    check!(Fcos, fcos, "fcos", cw, a, b);
                    check!(Fsincos, fsincos, "fsincos", cw, a, b);
                    check!(Fptan, fptan, "fptan", cw, a, b);
                    check!(F2xm1, f2xm1, "f2xm1", cw, a, b);
                    check!(Fpatan, fpatan, "fpatan", cw, a, b);
                    check!(Fyl2x, fyl2x, "fyl2x", cw, a, b);
                    check!(Fyl2xp1, fyl2xp1, "fyl2xp1", cw, a, b);
                }
            }
        }
    }

    #[test]
    fn stack_overflow_and_underflow_match_the_host_fpu() {
        let (a, b) = (specials()[12], specials()[8]);
        for cw in CWS {
            macro_rules! full {
                ($asm:ident, $op:literal, $host:literal) => {
                    let w = format!("{} on a full stack, cw={:#x}", $op, cw);
                    let g = guest(
                        &|c| {
                            for _ in 0..6 {
                                c.fld1().unwrap();
                            }
                            c.$asm().unwrap();
                        },
                        cw,
                        a,
                        b,
                    );
                    same(g, host!($host, cw, a, b), &w);
                };
            }
            full!(fptan, "fptan", "fld1\nfld1\nfld1\nfld1\nfld1\nfld1\nfptan");
            full!(fsincos, "fsincos", "fld1\nfld1\nfld1\nfld1\nfld1\nfld1\nfsincos");
            full!(fsin, "fsin", "fld1\nfld1\nfld1\nfld1\nfld1\nfld1\nfsin");
            macro_rules! empty {
                ($asm:ident, $op:literal, $host:literal) => {
                    let w = format!("{} on an empty ST(0), cw={:#x}", $op, cw);
                    let g = guest(
                        &|c| {
                            c.ffree(st0).unwrap();
                            c.$asm().unwrap();
                        },
                        cw,
                        a,
                        b,
                    );
                    same(g, host!($host, cw, a, b), &w);
                };
            }
            empty!(fptan, "fptan", "ffree st(0)\nfptan");
            empty!(fsincos, "fsincos", "ffree st(0)\nfsincos");
            empty!(fcos, "fcos", "ffree st(0)\nfcos");
            empty!(fpatan, "fpatan", "ffree st(0)\nfpatan");
            empty!(fyl2x, "fyl2x", "ffree st(0)\nfyl2x");
            empty!(f2xm1, "f2xm1", "ffree st(0)\nf2xm1");
        }
    }

    /// In-domain random operands for `m` (ST(1) = a, ST(0) = b), from `state`.
    fn random_operands(m: iced_x86::Mnemonic, state: &mut u64) -> ([u8; 10], [u8; 10]) {
        use iced_x86::Mnemonic as M;
        let mut next = || {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            *state
        };
        let r = next();
        let mant = next() | 1 << 63;
        let sign = r & 1 == 1;
        let exp = match m {
            // Up to 2^63 (and a few beyond, where C2 is set).
            M::Fsin | M::Fcos | M::Fsincos | M::Fptan => 0x3fff - 40 + (r >> 8) % 105,
            M::F2xm1 => 0x3ffe - (r >> 8) % 70,
            M::Fyl2xp1 => 0x3ffc - (r >> 8) % 70,
            _ => 0x3fff - 200 + (r >> 8) % 400,
        } as u16;
        let b = f80(sign && m != M::Fyl2x, exp, mant);
        let a = f80((r >> 1) & 1 == 1, (0x3fff - 100 + (r >> 20) % 200) as u16, next() | 1 << 63);
        (a, b)
    }

    #[test]
    fn random_operands_match_the_host_fpu() {
        use iced_x86::Mnemonic as M;
        let mut st = 0x2545_f491_4f6c_dd1du64;
        let (mut compared, mut left_out) = (0, 0);
        for i in 0..400 {
            let cw = CWS[i % 4];
            macro_rules! random {
                ($m:ident, $asm:ident, $op:literal) => {
                    let (a, b) = random_operands(M::$m, &mut st);
                    if excluded(M::$m, cw, a, b) {
                        left_out += 1;
                    } else {
                        compared += 1;
                        let w = format!("{} cw={:#x} st1={:02x?} st0={:02x?}", $op, cw, a, b);
                        same(guest(&|c| c.$asm().unwrap(), cw, a, b), host!($op, cw, a, b), &w);
                    }
                };
            }
            random!(Fsin, fsin, "fsin");
            random!(Fcos, fcos, "fcos");
            random!(Fsincos, fsincos, "fsincos");
            random!(Fptan, fptan, "fptan");
            random!(F2xm1, f2xm1, "f2xm1");
            random!(Fpatan, fpatan, "fpatan");
            random!(Fyl2x, fyl2x, "fyl2x");
            random!(Fyl2xp1, fyl2xp1, "fyl2xp1");
        }
        // Within 3/16 ULP of a boundary (1/4 for FYL2XP1): three quarters with
        // round-to-nearest (both the midpoint and the representable neighbours count),
        // three eighths otherwise.
        assert!(left_out < compared, "compared {compared}, left out {left_out}");
    }

    /// Unmasked exceptions leave the operands in place and set ES (SDM Vol. 1 §8.5): an
    /// invalid FSIN of infinity, a zero-dividing FYL2X of zero, a denormal FPATAN operand.
    #[test]
    fn unmasked_exceptions_leave_the_stack_unchanged() {
        let inf = f80(false, 0x7fff, 1 << 63);
        let zero = f80(false, 0, 0);
        let one = f80(false, 0x3fff, 1 << 63);
        let denormal = f80(false, 0, 0x1234);
        /// What, control word, ST(1), ST(0), the instruction, the exception flag.
        type Case = (&'static str, u16, [u8; 10], [u8; 10], fn(&mut CodeAssembler), u16);
        let cases: [Case; 3] = [
            ("fsin inf, IE unmasked", 0x037e, one, inf, |c| c.fsin().unwrap(), 0x01),
            ("fyl2x 0, ZE unmasked", 0x037b, one, zero, |c| c.fyl2x().unwrap(), 0x04),
            ("fpatan denormal, DE unmasked", 0x037d, one, denormal, |c| c.fpatan().unwrap(), 0x02),
        ];
        for (what, cw, a, b, op, flag) in cases {
            let mut c = CodeAssembler::new(64).unwrap();
            c.fninit().unwrap();
            c.fldcw(word_ptr(DATA)).unwrap();
            c.fld(tword_ptr(DATA + 16)).unwrap();
            c.fld(tword_ptr(DATA + 32)).unwrap();
            op(&mut c);
            c.hlt().unwrap();
            let mut m = Machine::long64(&mut c);
            m.poke(DATA, &cw.to_le_bytes());
            m.poke(DATA + 16, &a);
            m.poke(DATA + 32, &b);
            m.run();
            let x = &m.cpu.st.x87;
            assert_eq!(x.fsw & (0x80 | flag), 0x80 | flag, "{what}: ES and the flag, fsw {:#x}", x.fsw);
            assert_eq!((x.fsw >> 11) & 7, 6, "{what}: nothing pushed or popped");
            assert_eq!((x.regs[6], x.regs[7]), (b, a), "{what}: operands kept");
        }
    }
}
