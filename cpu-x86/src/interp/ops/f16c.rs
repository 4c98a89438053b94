//! F16C (SDM Vol. 2 "VCVTPH2PS", "VCVTPS2PH"): half-precision floats to single
//! precision (exact; an SNaN is quieted with IE) and back, rounded by imm8[1:0] unless
//! imm8[2] selects MXCSR.RC. The conversions go through `sse_convert::convert_lane`, so
//! NaN payloads, overflow, tininess and the flags follow the other SSE conversions.
//! VCVTPS2PH ignores MXCSR.FTZ (a tiny result stays a half denormal); VCVTPH2PS ignores
//! MXCSR.DAZ (half denormals are converted exactly, without DE).

use super::sse::mxcsr;
use super::sse_convert::convert_lane;
use super::sse_float::{mxcsr_round, SseFloat};
use super::sse_int::{from_u128, to_u128};
use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use crate::interp::fpu::round_of;
use iced_x86::{Instruction, Mnemonic as M, OpKind};
use rustc_apfloat::ieee::{Half, Single};
use rustc_apfloat::Round;

impl SseFloat for Half {
    const WIDTH: u32 = 16;
    const FRAC: u32 = 10;
}

impl Ctx<'_> {
    /// VCVTPH2PS and VCVTPS2PH in their 128- and 256-bit forms.
    pub(super) fn f16c(&mut self, ins: &Instruction) -> R<()> {
        let csr = self.c.st.sse.mxcsr;
        let mut flags = 0;
        if ins.mnemonic() == M::Vcvtph2ps {
            let dst = ins.op0_register();
            let src = to_u128(self.vop(ins, 1)?[0]);
            let mut out = [0u64; 8];
            for (i, o) in out.iter_mut().enumerate().take(dst.size() / 4) {
                let h = (src >> (16 * i)) as u64 & 0xffff;
                // Exact, so only an SNaN raises a flag: a half denormal raises no DE.
                let mut lane = 0;
                *o = convert_lane::<Half, Single>(h, Round::NearestTiesToEven, csr & !mxcsr::DAZ, &mut lane);
                flags |= lane & !mxcsr::DE;
            }
            self.simd_exceptions(flags)?;
            let q = |i: usize| out[2 * i] | out[2 * i + 1] << 32;
            self.set_ymm(dst, [[q(0), q(1)], [q(2), q(3)]]);
            return Ok(());
        }
        let src = self.ymm(ins.op1_register());
        let n = ins.op1_register().size() / 4;
        let imm = ins.immediate8();
        let round = if imm & 4 != 0 { mxcsr_round(csr) } else { round_of(imm as u32) };
        let mut halves = 0u128;
        for i in 0..n {
            let s = src[i / 4][(i / 2) % 2] >> (32 * (i % 2)) & 0xffff_ffff;
            let h = convert_lane::<Single, Half>(s, round, csr & !mxcsr::FZ, &mut flags);
            halves |= (h as u128) << (16 * i);
        }
        self.simd_exceptions(flags)?;
        let v = from_u128(halves);
        if ins.op0_kind() == OpKind::Memory {
            self.write_vmem(ins, n * 2, [v, [0; 2]])
        } else {
            self.set_ymm(ins.op0_register(), [v, [0; 2]]);
            Ok(())
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::avx::tests::{host_avx, run_avx};
    use crate::interp::test_util::TestRng;
    use iced_x86::code_asm::*;

    #[test]
    fn random_half_conversions_match_the_host_in_every_rounding_mode() {
        if !std::arch::is_x86_feature_detected!("f16c") {
            eprintln!("skipped: the host has no F16C");
            return;
        }
        let mut r = TestRng(0x1234_5678_9abc_def1);
        let zero = [[0u64; 2]; 2];
        for i in 0..2000u32 {
            let csr = 0x1f80 | (i % 4) << 13 | if i % 3 == 0 { 0x8040 } else { 0 };
            // Singles around the half range (exponents 100-160), specials, and raw halves.
            let mut single = || -> u64 {
                let x = r.next();
                let sign = x & 0x8000_0000;
                match x % 6 {
                    0 => sign | 0x7f80_0000 | ((x >> 8 & 0x7f_ffff) * (x >> 40 & 1)),
                    1 => sign | (x >> 8 & 0x7f_ffff),
                    _ => sign | ((100 + (x >> 32) % 60) << 23) | (x >> 8 & 0x7f_ffff),
                }
            };
            let ps = [[0u64; 2]; 2].map(|_| [0; 2].map(|_: u64| single() | single() << 32));
            let ph = [[r.next(), r.next()], [r.next(), r.next()]];
            let ours = |op: &dyn Fn(&mut CodeAssembler), v| run_avx(op, &[(1, v), (0, zero)], csr);
            let checks = [
                (
                    ours(&|c| c.vcvtps2ph(xmm0, ymm1, 0).unwrap(), ps),
                    host_avx!("vcvtps2ph xmm0, ymm1, 0", ps, zero, zero, csr),
                ),
                (
                    ours(&|c| c.vcvtps2ph(xmm0, ymm1, 1).unwrap(), ps),
                    host_avx!("vcvtps2ph xmm0, ymm1, 1", ps, zero, zero, csr),
                ),
                (
                    ours(&|c| c.vcvtps2ph(xmm0, xmm1, 2).unwrap(), ps),
                    host_avx!("vcvtps2ph xmm0, xmm1, 2", ps, zero, zero, csr),
                ),
                (
                    ours(&|c| c.vcvtps2ph(xmm0, ymm1, 3).unwrap(), ps),
                    host_avx!("vcvtps2ph xmm0, ymm1, 3", ps, zero, zero, csr),
                ),
                (
                    ours(&|c| c.vcvtps2ph(xmm0, ymm1, 4).unwrap(), ps),
                    host_avx!("vcvtps2ph xmm0, ymm1, 4", ps, zero, zero, csr),
                ),
                (
                    ours(&|c| c.vcvtph2ps(ymm0, xmm1).unwrap(), ph),
                    host_avx!("vcvtph2ps ymm0, xmm1", ph, zero, zero, csr),
                ),
            ];
            for (k, (o, h)) in checks.iter().enumerate() {
                assert_eq!(o, h, "case {k}: ps={ps:x?} ph={ph:x?} csr={csr:#x}");
            }
        }
    }
}
