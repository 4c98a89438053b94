//! AVX/AVX2 instructions that move data across the 128-bit lanes (SDM Vol. 2, each
//! instruction's page): VBROADCASTSS VBROADCASTSD VBROADCASTF128 VBROADCASTI128,
//! VPBROADCASTB/W/D/Q, VINSERTF128 VINSERTI128, VEXTRACTF128 VEXTRACTI128, VPERM2F128
//! VPERM2I128, VPERMD VPERMPS, VPERMQ VPERMPD, and VPMOVSX*/VPMOVZX* (whose 256-bit
//! form widens the low 128 bits of the source across both lanes).

use super::avx::Ymm;
use super::sse41::{pmov, pmov_shape};
use super::sse_int::{from_u128, to_u128};
use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use iced_x86::{Instruction, Mnemonic as M, OpKind};

/// True for the mnemonics of this group.
pub(super) fn is_avx_perm(m: M) -> bool {
    matches!(
        m,
        M::Vbroadcastss
            | M::Vbroadcastsd
            | M::Vbroadcastf128
            | M::Vbroadcasti128
            | M::Vpbroadcastb
            | M::Vpbroadcastw
            | M::Vpbroadcastd
            | M::Vpbroadcastq
            | M::Vinsertf128
            | M::Vinserti128
            | M::Vextractf128
            | M::Vextracti128
            | M::Vperm2f128
            | M::Vperm2i128
            | M::Vpermd
            | M::Vpermps
            | M::Vpermq
            | M::Vpermpd
    ) || super::avx::legacy_twin(m).and_then(pmov_shape).is_some()
}

/// The 32-bit element `i` (0-7) of `v`.
fn dword(v: Ymm, i: usize) -> u64 {
    v[i / 4][(i / 2) % 2] >> (32 * (i % 2)) & 0xffff_ffff
}

/// A YMM value from eight 32-bit elements.
fn from_dwords(d: [u64; 8]) -> Ymm {
    [[d[0] | d[1] << 32, d[2] | d[3] << 32], [d[4] | d[5] << 32, d[6] | d[7] << 32]]
}

/// `x`'s low `bits` repeated across 128 bits.
fn splat(x: u64, bits: u32) -> u128 {
    let e = if bits == 64 { x } else { x & ((1u64 << bits) - 1) };
    (0..128 / bits).fold(0u128, |acc, i| acc | (e as u128) << (i * bits))
}

impl Ctx<'_> {
    /// The instructions of this group.
    pub(super) fn avx_perm(&mut self, ins: &Instruction) -> R<()> {
        let m = ins.mnemonic();
        if let Some((from, to, signed)) = super::avx::legacy_twin(m).and_then(pmov_shape) {
            let v = to_u128(self.vop(ins, 1)?[0]);
            let out = [pmov(v, 0, from, to, signed), pmov(v, 128 / to, from, to, signed)];
            self.set_ymm(ins.op0_register(), out);
            return Ok(());
        }
        let out: Ymm = match m {
            M::Vbroadcastss
            | M::Vbroadcastsd
            | M::Vpbroadcastb
            | M::Vpbroadcastw
            | M::Vpbroadcastd
            | M::Vpbroadcastq => {
                let bits = match m {
                    M::Vpbroadcastb => 8,
                    M::Vpbroadcastw => 16,
                    M::Vbroadcastsd | M::Vpbroadcastq => 64,
                    _ => 32,
                };
                let lane = from_u128(splat(self.vop(ins, 1)?[0][0], bits));
                [lane, lane]
            }
            M::Vbroadcastf128 | M::Vbroadcasti128 => {
                let v = self.vop(ins, 1)?[0];
                [v, v]
            }
            M::Vinsertf128 | M::Vinserti128 => {
                let mut v = self.vop(ins, 1)?;
                v[(ins.immediate8() & 1) as usize] = self.vop(ins, 2)?[0];
                v
            }
            M::Vextractf128 | M::Vextracti128 => {
                let v = self.ymm(ins.op1_register())[(ins.immediate8() & 1) as usize];
                if ins.op0_kind() == OpKind::Memory {
                    return self.write_vmem(ins, 16, [v, [0; 2]]);
                }
                [v, [0; 2]]
            }
            M::Vperm2f128 | M::Vperm2i128 => {
                let (a, b) = (self.vop(ins, 1)?, self.vop(ins, 2)?);
                let imm = ins.immediate8();
                let half = |ctl: u8| if ctl & 8 != 0 { [0; 2] } else { [a[0], a[1], b[0], b[1]][(ctl & 3) as usize] };
                [half(imm), half(imm >> 4)]
            }
            M::Vpermd | M::Vpermps => {
                let (idx, data) = (self.vop(ins, 1)?, self.vop(ins, 2)?);
                from_dwords(std::array::from_fn(|i| dword(data, (dword(idx, i) & 7) as usize)))
            }
            _ => {
                // VPERMQ/VPERMPD: qword i from qword imm8[2i+1:2i] of the source.
                let s = self.vop(ins, 1)?;
                let q = [s[0][0], s[0][1], s[1][0], s[1][1]];
                let imm = ins.immediate8() as usize;
                let pick = |i: usize| q[(imm >> (2 * i)) & 3];
                [[pick(0), pick(1)], [pick(2), pick(3)]]
            }
        };
        self.set_ymm(ins.op0_register(), out);
        Ok(())
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::avx::tests::{host_avx, run_avx};
    use crate::interp::test_util::TestRng;
    use iced_x86::code_asm::*;

    #[test]
    fn random_permutes_and_broadcasts_match_the_host() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            eprintln!("skipped: the host has no AVX2");
            return;
        }
        let mut r = TestRng(0x0bad_cafe_1234_5678);
        let zero = [[0u64; 2]; 2];
        for _ in 0..100 {
            let a = [[r.next(), r.next()], [r.next(), r.next()]];
            let b = [[r.next(), r.next()], [r.next(), r.next()]];
            macro_rules! check {
                ($($insn:literal => $op:expr),* $(,)?) => {
                    $(
                        let ours = run_avx($op, &[(1, a), (2, b), (0, zero)], 0x1f80).0;
                        assert_eq!(ours, host_avx!($insn, a, b, zero, 0x1f80).0, "{} a={a:x?} b={b:x?}", $insn);
                    )*
                };
            }
            check!(
                "vpermd ymm0, ymm1, ymm2" => |c| c.vpermd(ymm0, ymm1, ymm2).unwrap(),
                "vpermps ymm0, ymm1, ymm2" => |c| c.vpermps(ymm0, ymm1, ymm2).unwrap(),
                "vpermq ymm0, ymm2, 0x4e" => |c| c.vpermq(ymm0, ymm2, 0x4e).unwrap(),
                "vpermpd ymm0, ymm2, 0x1b" => |c| c.vpermpd(ymm0, ymm2, 0x1b).unwrap(),
                "vperm2i128 ymm0, ymm1, ymm2, 0x21" => |c| c.vperm2i128(ymm0, ymm1, ymm2, 0x21).unwrap(),
                "vperm2f128 ymm0, ymm1, ymm2, 0x83" => |c| c.vperm2f128(ymm0, ymm1, ymm2, 0x83).unwrap(),
                "vinserti128 ymm0, ymm1, xmm2, 1" => |c| c.vinserti128(ymm0, ymm1, xmm2, 1).unwrap(),
                "vinsertf128 ymm0, ymm1, xmm2, 0" => |c| c.vinsertf128(ymm0, ymm1, xmm2, 0).unwrap(),
                "vextracti128 xmm0, ymm2, 1" => |c| c.vextracti128(xmm0, ymm2, 1).unwrap(),
                "vpbroadcastb ymm0, xmm2" => |c| c.vpbroadcastb(ymm0, xmm2).unwrap(),
                "vpbroadcastw xmm0, xmm2" => |c| c.vpbroadcastw(xmm0, xmm2).unwrap(),
                "vpbroadcastq ymm0, xmm2" => |c| c.vpbroadcastq(ymm0, xmm2).unwrap(),
                "vbroadcastss ymm0, xmm2" => |c| c.vbroadcastss(ymm0, xmm2).unwrap(),
                "vbroadcastsd ymm0, xmm2" => |c| c.vbroadcastsd(ymm0, xmm2).unwrap(),
                "vpmovsxbw ymm0, xmm2" => |c| c.vpmovsxbw(ymm0, xmm2).unwrap(),
                "vpmovzxbq ymm0, xmm2" => |c| c.vpmovzxbq(ymm0, xmm2).unwrap(),
                "vpmovsxdq ymm0, xmm2" => |c| c.vpmovsxdq(ymm0, xmm2).unwrap(),
                "vpmovzxwd xmm0, xmm2" => |c| c.vpmovzxwd(xmm0, xmm2).unwrap(),
            );
        }
    }
}
