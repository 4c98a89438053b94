//! FMA (SDM Vol. 2, "VFMADD132PS" and its neighbours; Vol. 1 §14.5): VFMADD, VFMSUB,
//! VFNMADD, VFNMSUB, VFMADDSUB and VFMSUBADD in the 132, 213 and 231 operand orders, PS,
//! PD, SS and SD, 128 and 256 bits. The product and the sum are rounded once, under
//! MXCSR's rounding control, by `rustc_apfloat`'s fused multiply-add, with the flag and
//! NaN rules of the other SSE arithmetic (`sse_float`): DAZ on the sources, DE for a
//! denormal source, FTZ on the result. A NaN source gives the first NaN of the
//! multiplication order (multiplicand, multiplier, addend) quieted and not negated, and
//! 0 * inf the indefinite NaN with IE unless the addend is a NaN (SDM Vol. 1 Table 14-17).
//! The scalar forms keep the destination's other elements.

use super::avx::Ymm;
use super::sse::mxcsr;
use super::sse_float::{join, lanes, mxcsr_round, Bits, SseFloat};
use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use crate::interp::fpu::F80;
use iced_x86::{Instruction, Mnemonic as M};
use rustc_apfloat::ieee::{Double, Quad, Single};
use rustc_apfloat::{Float, FloatConvert, Round, Status};
use std::sync::OnceLock;

/// What an FMA instruction adds and negates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// a * b + c.
    Madd,
    /// a * b - c.
    Msub,
    /// -(a * b) + c.
    Nmadd,
    /// -(a * b) - c.
    Nmsub,
    /// Even elements subtract, odd elements add.
    Maddsub,
    /// Even elements add, odd elements subtract.
    Msubadd,
}

/// An FMA mnemonic's kind, operand order (132, 213, 231), format (single: true) and
/// form (scalar: true).
#[derive(Debug, Clone, Copy)]
struct Shape {
    kind: Kind,
    order: u16,
    single: bool,
    scalar: bool,
}

/// Parses an FMA mnemonic's name (`Vfnmadd231ss` and the like).
fn parse(name: &str) -> Option<Shape> {
    let rest = name.strip_prefix("Vf")?;
    let kinds = [
        ("maddsub", Kind::Maddsub),
        ("msubadd", Kind::Msubadd),
        ("nmadd", Kind::Nmadd),
        ("nmsub", Kind::Nmsub),
        ("madd", Kind::Madd),
        ("msub", Kind::Msub),
    ];
    let (kind, rest) = kinds.iter().find_map(|&(p, k)| rest.strip_prefix(p).map(|r| (k, r)))?;
    let order: u16 = rest.get(..3)?.parse().ok()?;
    let (single, scalar) = match rest.get(3..)? {
        "ps" => (true, false),
        "pd" => (false, false),
        "ss" => (true, true),
        "sd" => (false, true),
        _ => return None,
    };
    matches!(order, 132 | 213 | 231).then_some(Shape { kind, order, single, scalar })
}

/// The shape of FMA mnemonic `m`, from a table built once from iced's mnemonic names.
fn shape(m: M) -> Option<Shape> {
    static SHAPES: OnceLock<Vec<Option<Shape>>> = OnceLock::new();
    SHAPES.get_or_init(|| M::values().map(|m| parse(&format!("{m:?}"))).collect()).get(m as usize).copied().flatten()
}

/// True for the FMA mnemonics.
pub(super) fn is_fma(m: M) -> bool {
    shape(m).is_some()
}

/// One element of `±(a * b) ± c` in format `F`, rounded once under MXCSR `csr`.
pub fn fma_lane<F>(a: u64, b: u64, c: u64, neg_product: bool, neg_addend: bool, csr: u32, flags: &mut u32) -> u64
where
    F: SseFloat + FloatConvert<Quad>,
    Quad: FloatConvert<F80>,
{
    let nan = Bits::<F>::is_nan(a) || Bits::<F>::is_nan(b) || Bits::<F>::is_nan(c);
    let mut lane = 0;
    let a = Bits::<F>::source_of(a, nan, csr, &mut lane);
    let b = Bits::<F>::source_of(b, nan, csr, &mut lane);
    let c = Bits::<F>::source_of(c, nan, csr, &mut lane);
    if nan {
        if [a, b, c].iter().any(|&x| Bits::<F>::is_snan(x)) {
            *flags |= mxcsr::IE;
        }
        let first = [a, b, c].into_iter().find(|&x| Bits::<F>::is_nan(x)).unwrap_or(a);
        return Bits::<F>::quiet(first);
    }
    let round = mxcsr_round(csr);
    let (mut x, y, mut z) = (Bits::<F>::val(a), Bits::<F>::val(b), Bits::<F>::val(c));
    if neg_product {
        x = -x;
    }
    if neg_addend {
        z = -z;
    }
    let mut r = x.mul_add_r(y, z, round);
    if r.status == Status::INEXACT && r.value.is_largest() {
        // apfloat clamps without OVERFLOW in the directed modes: redo it in quad
        // precision (exact for the product) towards zero and compare with 2^(emax+1).
        let mut loses = false;
        let q = |v: F, loses: &mut bool| -> Quad { v.convert(loses).value };
        let wide: Quad = q(x, &mut loses).mul_add_r(q(y, &mut loses), q(z, &mut loses), Round::TowardZero).value;
        let exact: F80 = wide.convert_r(Round::TowardZero, &mut loses).value;
        if Bits::<F>::overflows(exact) {
            r.status |= Status::OVERFLOW;
        }
    }
    if r.status == Status::INEXACT && r.value.is_smallest_normalized() {
        // Tininess after rounding to an unbounded exponent (see `sse_float::binop`).
        const K: i32 = 64;
        let (xs, ys) = if x.ilogb() <= y.ilogb() { (x.scalbn(K), y) } else { (x, y.scalbn(K)) };
        if Bits::<F>::tiny(xs.mul_add_r(ys, z.scalbn(K), round).value, K) {
            r.status |= Status::UNDERFLOW;
        }
    }
    let out = Bits::<F>::result(r, csr, &mut lane);
    super::sse_float::merge_lane_flags(lane, flags);
    out
}

/// The elements of one 128-bit lane: `d` the destination's (kept for scalar forms),
/// `a * b + c` computed per element.
#[allow(clippy::too_many_arguments)]
fn fma_lanes<F>(
    kind: Kind,
    scalar: bool,
    d: [u64; 2],
    a: [u64; 2],
    b: [u64; 2],
    c: [u64; 2],
    csr: u32,
    flags: &mut u32,
) -> [u64; 2]
where
    F: SseFloat + FloatConvert<Quad>,
    Quad: FloatConvert<F80>,
{
    let (mut out, n) = lanes::<F>(d);
    let (al, bl, cl) = (lanes::<F>(a).0, lanes::<F>(b).0, lanes::<F>(c).0);
    for i in 0..if scalar { 1 } else { n } {
        let neg_product = matches!(kind, Kind::Nmadd | Kind::Nmsub);
        let neg_addend = match kind {
            Kind::Madd | Kind::Nmadd => false,
            Kind::Msub | Kind::Nmsub => true,
            Kind::Maddsub => i % 2 == 0,
            Kind::Msubadd => i % 2 == 1,
        };
        out[i] = fma_lane::<F>(al[i], bl[i], cl[i], neg_product, neg_addend, csr, flags);
    }
    join::<F>(out)
}

impl Ctx<'_> {
    /// The FMA instructions: operand 0 is the destination and first source, operand 1
    /// (VEX.vvvv) the second, operand 2 (register or memory) the third; 132 computes
    /// op0 * op2 + op1, 213 op1 * op0 + op2, 231 op1 * op2 + op0.
    pub(super) fn fma(&mut self, ins: &Instruction) -> R<()> {
        let m = ins.mnemonic();
        let s = shape(m).ok_or_else(|| self.unsupported(format!("FMA {m:?}")))?;
        let dst = ins.op0_register();
        let (o0, o1, o2) = (self.ymm(dst), self.ymm(ins.op1_register()), self.vop(ins, 2)?);
        let (a, b, c) = match s.order {
            132 => (o0, o2, o1),
            213 => (o1, o0, o2),
            _ => (o1, o2, o0),
        };
        let csr = self.c.st.sse.mxcsr;
        let mut flags = 0;
        let mut out: Ymm = [[0; 2]; 2];
        for (l, v) in out.iter_mut().enumerate().take(if dst.is_ymm() { 2 } else { 1 }) {
            *v = if s.single {
                fma_lanes::<Single>(s.kind, s.scalar, o0[l], a[l], b[l], c[l], csr, &mut flags)
            } else {
                fma_lanes::<Double>(s.kind, s.scalar, o0[l], a[l], b[l], c[l], csr, &mut flags)
            };
        }
        self.simd_exceptions(flags)?;
        self.set_ymm(dst, out);
        Ok(())
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::avx::tests::check_float_ops;
    use crate::interp::test_util::TestRng;
    use iced_x86::code_asm::*;

    #[test]
    fn every_fma_mnemonic_has_a_shape() {
        let n = iced_x86::Mnemonic::values().filter(|&m| super::is_fma(m)).count();
        // 6 kinds x 3 orders x (PS, PD) + 4 kinds x 3 orders x (SS, SD).
        assert_eq!(n, 6 * 3 * 2 + 4 * 3 * 2);
    }

    #[test]
    fn random_fma_ops_match_the_host_in_every_rounding_mode() {
        if !std::arch::is_x86_feature_detected!("fma") {
            eprintln!("skipped: the host has no FMA");
            return;
        }
        let mut st = TestRng(0x5851_f42d_4c95_7f2d);
        for i in 0..1000u32 {
            let csr = 0x1f80 | (i % 4) << 13 | if i % 3 == 0 { 0x8040 } else { 0 };
            check_float_ops!(&mut st, true, csr;
                "vfmadd132ps ymm0, ymm1, ymm2" => |c| c.vfmadd132ps(ymm0, ymm1, ymm2).unwrap(),
                "vfmsub213ps ymm0, ymm1, ymm2" => |c| c.vfmsub213ps(ymm0, ymm1, ymm2).unwrap(),
                "vfnmadd231ps ymm0, ymm1, ymm2" => |c| c.vfnmadd231ps(ymm0, ymm1, ymm2).unwrap(),
                "vfnmsub132ss xmm0, xmm1, xmm2" => |c| c.vfnmsub132ss(xmm0, xmm1, xmm2).unwrap(),
                "vfmaddsub213ps ymm0, ymm1, ymm2" => |c| c.vfmaddsub213ps(ymm0, ymm1, ymm2).unwrap(),
                "vfmsubadd231ps xmm0, xmm1, xmm2" => |c| c.vfmsubadd231ps(xmm0, xmm1, xmm2).unwrap(),
            );
            check_float_ops!(&mut st, false, csr;
                "vfmadd231pd ymm0, ymm1, ymm2" => |c| c.vfmadd231pd(ymm0, ymm1, ymm2).unwrap(),
                "vfmsub132sd xmm0, xmm1, xmm2" => |c| c.vfmsub132sd(xmm0, xmm1, xmm2).unwrap(),
                "vfnmadd213pd ymm0, ymm1, ymm2" => |c| c.vfnmadd213pd(ymm0, ymm1, ymm2).unwrap(),
                "vfnmsub231sd xmm0, xmm1, xmm2" => |c| c.vfnmsub231sd(xmm0, xmm1, xmm2).unwrap(),
                "vfmaddsub132pd ymm0, ymm1, ymm2" => |c| c.vfmaddsub132pd(ymm0, ymm1, ymm2).unwrap(),
            );
        }
    }
}
