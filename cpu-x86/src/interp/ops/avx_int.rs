//! AVX/AVX2 integer operations that work lane by lane (SDM Vol. 2, each instruction's
//! page): the VEX forms of the SSE2-SSE4.2 integer instructions (VPADD*, VPSHUFB,
//! VPUNPCK*, VPACK*, VPMADDWD, VPSADBW, VMPSADBW, VPBLENDW, VPBLENDVB, the shifts, ...)
//! and of AES-NI/PCLMULQDQ (VEX.128 only), computed per 128-bit lane by the legacy
//! operation code, plus AVX2's element-wise VPSLLVD/Q, VPSRLVD/Q, VPSRAVD and VPBLENDD.
//! In VEX.256 form the lanes are independent, except that a shift count in an XMM
//! register applies to both and VMPSADBW's upper lane takes imm8[5:3].

use super::aes_clmul::{aes_op, clmul, is_aes_clmul};
use super::avx::VexOps;
use super::sse::Xmm;
use super::sse41::{binop41, blend_imm, blendv, is_sse41_binop, mpsadbw, phminposuw};
use super::sse_int::{from_u128, int_binop, join, lanes, map_width, pshuf, shift, sx, to_u128};
use super::ssse3::{is_ssse3, ssse3_op};
use iced_x86::Mnemonic as M;

/// True for the element shifts and the byte shifts.
fn is_shift(m: M) -> bool {
    matches!(
        m,
        M::Psllw | M::Pslld | M::Psllq | M::Psrlw | M::Psrld | M::Psrlq | M::Psraw | M::Psrad | M::Pslldq | M::Psrldq
    )
}

/// AVX2's per-element variable shifts: each element of `a` by the element of `b`;
/// counts past the width give 0 (or the sign fill).
fn variable_shift(m: M, a: Xmm, b: Xmm) -> Option<Xmm> {
    Some(match m {
        M::Vpsllvd => map_width(32, a, b, |x, c| if c > 31 { 0 } else { x << c }),
        M::Vpsllvq => map_width(64, a, b, |x, c| if c > 63 { 0 } else { x << c }),
        M::Vpsrlvd => map_width(32, a, b, |x, c| if c > 31 { 0 } else { x >> c }),
        M::Vpsrlvq => map_width(64, a, b, |x, c| if c > 63 { 0 } else { x >> c }),
        M::Vpsravd => map_width(32, a, b, |x, c| (sx(x, 32) >> c.min(31)) as u64),
        _ => return None,
    })
}

/// Lane `lane` of the integer instruction with legacy twin `l` (or AVX2 mnemonic `l`),
/// or `None` when `l` is not an integer lane operation.
pub(super) fn int_lane(l: M, o: &VexOps, lane: usize) -> Option<Xmm> {
    let (a, b, imm) = (o.a[lane], o.b[lane], o.imm);
    if is_shift(l) {
        // The immediate forms shift their only source; the others shift the first
        // source by the low quadword of the (128-bit) count operand, in every lane.
        return Some(if o.has_imm { shift(l, a, imm as u64) } else { shift(l, a, o.b[0][0]) });
    }
    if let Some(v) = int_binop(l, a, b) {
        return Some(v);
    }
    if let Some(v) = variable_shift(l, a, b) {
        return Some(v);
    }
    Some(match l {
        l if is_sse41_binop(l) => binop41(l, a, b),
        l if is_ssse3(l) => from_u128(ssse3_op(l, to_u128(a), to_u128(b), 16, imm)),
        M::Pshufd | M::Pshuflw | M::Pshufhw => pshuf(l, b, imm),
        M::Pblendw => blend_imm(l, a, b, imm),
        M::Pblendvb => blendv(l, a, b, o.sel[lane]),
        M::Vpblendd => {
            let (x, y) = (lanes::<4>(a), lanes::<4>(b));
            let imm = imm >> (4 * lane);
            join::<4>(std::array::from_fn(|i| if imm >> i & 1 != 0 { y[i] } else { x[i] }))
        }
        M::Mpsadbw => mpsadbw(a, b, imm >> (3 * lane)),
        M::Phminposuw => phminposuw(b),
        M::Pclmulqdq => from_u128(clmul(a[(imm & 1) as usize], b[(imm >> 4 & 1) as usize])),
        l if is_aes_clmul(l) => aes_op(l, a, b, imm),
        _ => return None,
    })
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::avx::tests::{host_avx, run_avx};
    use super::super::avx::Ymm;
    use crate::interp::test_util::TestRng;
    use iced_x86::code_asm::*;

    /// Random bits biased towards lane boundaries and small shift counts.
    fn int_bits(r: &mut TestRng) -> u64 {
        let x = r.next();
        match x % 5 {
            0 => x & 0x8080_8080_8080_8080,
            1 => x | 0x7f7f_7f7f_7f7f_7f7f,
            2 => x & 0x0000_001f_0000_0007,
            _ => x,
        }
    }

    fn int_ymm(r: &mut TestRng) -> Ymm {
        [[int_bits(r), int_bits(r)], [int_bits(r), int_bits(r)]]
    }

    /// Runs each `insn ymm0, ymm1, ymm2` on the host and in the interpreter with random
    /// YMM0-YMM2 and compares YMM0.
    macro_rules! check {
        ($rng:expr; $($insn:literal => $op:expr),* $(,)?) => {
            $(
                let (a, b, c) = (int_ymm($rng), int_ymm($rng), int_ymm($rng));
                let ours = run_avx($op, &[(1, a), (2, b), (0, c)], 0x1f80).0;
                assert_eq!(ours, host_avx!($insn, a, b, c, 0x1f80).0, "{} a={a:x?} b={b:x?}", $insn);
            )*
        };
    }

    #[test]
    fn random_avx2_integer_ops_match_the_host() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            eprintln!("skipped: the host has no AVX2");
            return;
        }
        let mut r = TestRng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..200 {
            check!(&mut r;
                "vpaddb ymm0, ymm1, ymm2" => |c| c.vpaddb(ymm0, ymm1, ymm2).unwrap(),
                "vpaddq ymm0, ymm1, ymm2" => |c| c.vpaddq(ymm0, ymm1, ymm2).unwrap(),
                "vpsubusw ymm0, ymm1, ymm2" => |c| c.vpsubusw(ymm0, ymm1, ymm2).unwrap(),
                "vpaddsb ymm0, ymm1, ymm2" => |c| c.vpaddsb(ymm0, ymm1, ymm2).unwrap(),
                "vpmaddwd ymm0, ymm1, ymm2" => |c| c.vpmaddwd(ymm0, ymm1, ymm2).unwrap(),
                "vpmaddubsw ymm0, ymm1, ymm2" => |c| c.vpmaddubsw(ymm0, ymm1, ymm2).unwrap(),
                "vpsadbw ymm0, ymm1, ymm2" => |c| c.vpsadbw(ymm0, ymm1, ymm2).unwrap(),
                "vpshufb ymm0, ymm1, ymm2" => |c| c.vpshufb(ymm0, ymm1, ymm2).unwrap(),
                "vpunpcklbw ymm0, ymm1, ymm2" => |c| c.vpunpcklbw(ymm0, ymm1, ymm2).unwrap(),
                "vpunpckhqdq ymm0, ymm1, ymm2" => |c| c.vpunpckhqdq(ymm0, ymm1, ymm2).unwrap(),
                "vpacksswb ymm0, ymm1, ymm2" => |c| c.vpacksswb(ymm0, ymm1, ymm2).unwrap(),
                "vpackusdw ymm0, ymm1, ymm2" => |c| c.vpackusdw(ymm0, ymm1, ymm2).unwrap(),
                "vpcmpgtq ymm0, ymm1, ymm2" => |c| c.vpcmpgtq(ymm0, ymm1, ymm2).unwrap(),
                "vpcmpeqb ymm0, ymm1, ymm2" => |c| c.vpcmpeqb(ymm0, ymm1, ymm2).unwrap(),
                "vpminsd ymm0, ymm1, ymm2" => |c| c.vpminsd(ymm0, ymm1, ymm2).unwrap(),
                "vpmaxuw ymm0, ymm1, ymm2" => |c| c.vpmaxuw(ymm0, ymm1, ymm2).unwrap(),
                "vpmulld ymm0, ymm1, ymm2" => |c| c.vpmulld(ymm0, ymm1, ymm2).unwrap(),
                "vpmuldq ymm0, ymm1, ymm2" => |c| c.vpmuldq(ymm0, ymm1, ymm2).unwrap(),
                "vpmulhrsw ymm0, ymm1, ymm2" => |c| c.vpmulhrsw(ymm0, ymm1, ymm2).unwrap(),
                "vphaddsw ymm0, ymm1, ymm2" => |c| c.vphaddsw(ymm0, ymm1, ymm2).unwrap(),
                "vpsignw ymm0, ymm1, ymm2" => |c| c.vpsignw(ymm0, ymm1, ymm2).unwrap(),
                "vpabsd ymm0, ymm2" => |c| c.vpabsd(ymm0, ymm2).unwrap(),
                "vpandn ymm0, ymm1, ymm2" => |c| c.vpandn(ymm0, ymm1, ymm2).unwrap(),
                "vpxor xmm0, xmm1, xmm2" => |c| c.vpxor(xmm0, xmm1, xmm2).unwrap(),
                "vpalignr ymm0, ymm1, ymm2, 5" => |c| c.vpalignr(ymm0, ymm1, ymm2, 5).unwrap(),
                "vpalignr ymm0, ymm1, ymm2, 20" => |c| c.vpalignr(ymm0, ymm1, ymm2, 20).unwrap(),
                "vpshufd ymm0, ymm2, 0x1b" => |c| c.vpshufd(ymm0, ymm2, 0x1b).unwrap(),
                "vpshufhw ymm0, ymm2, 0x4e" => |c| c.vpshufhw(ymm0, ymm2, 0x4e).unwrap(),
                "vpblendw ymm0, ymm1, ymm2, 0xa5" => |c| c.vpblendw(ymm0, ymm1, ymm2, 0xa5).unwrap(),
                "vpblendd ymm0, ymm1, ymm2, 0x96" => |c| c.vpblendd(ymm0, ymm1, ymm2, 0x96).unwrap(),
                "vpblendvb ymm0, ymm1, ymm2, ymm0" => |c| c.vpblendvb(ymm0, ymm1, ymm2, ymm0).unwrap(),
                "vmpsadbw ymm0, ymm1, ymm2, 0x2d" => |c| c.vmpsadbw(ymm0, ymm1, ymm2, 0x2d).unwrap(),
                "vpsllw ymm0, ymm1, xmm2" => |c| c.vpsllw(ymm0, ymm1, xmm2).unwrap(),
                "vpsrad ymm0, ymm1, xmm2" => |c| c.vpsrad(ymm0, ymm1, xmm2).unwrap(),
                "vpsrlq ymm0, ymm1, 7" => |c| c.vpsrlq(ymm0, ymm1, 7).unwrap(),
                "vpslldq ymm0, ymm1, 3" => |c| c.vpslldq(ymm0, ymm1, 3).unwrap(),
                "vpsrldq ymm0, ymm1, 11" => |c| c.vpsrldq(ymm0, ymm1, 11).unwrap(),
                "vpsllvd ymm0, ymm1, ymm2" => |c| c.vpsllvd(ymm0, ymm1, ymm2).unwrap(),
                "vpsrlvq ymm0, ymm1, ymm2" => |c| c.vpsrlvq(ymm0, ymm1, ymm2).unwrap(),
                "vpsravd ymm0, ymm1, ymm2" => |c| c.vpsravd(ymm0, ymm1, ymm2).unwrap(),
                "vaesenc xmm0, xmm1, xmm2" => |c| c.vaesenc(xmm0, xmm1, xmm2).unwrap(),
                "vpclmulqdq xmm0, xmm1, xmm2, 0x11" => |c| c.vpclmulqdq(xmm0, xmm1, xmm2, 0x11).unwrap(),
            );
        }
    }
}
