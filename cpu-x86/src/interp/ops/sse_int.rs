//! SSE2 128-bit integer instructions and the bitwise logic ops: PADD* PSUB* (wrapping and
//! saturating), PAND PANDN POR PXOR and ANDPS/ANDNPS/ORPS/XORPS (+PD), PCMPEQ* PCMPGT*,
//! PMINUB PMAXUB PMINSW PMAXSW, PAVGB PAVGW, PMULLW PMULHW PMULHUW PMULUDQ PMADDWD,
//! PSADBW, PSLL* PSRL* PSRA* PSLLDQ PSRLDQ, PSHUFD PSHUFLW PSHUFHW, PUNPCKL*/PUNPCKH*,
//! PACKSSWB PACKSSDW PACKUSWB, PEXTRW PINSRW (SDM Vol. 2, each instruction's page).

use super::sse::Xmm;
use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use iced_x86::{Instruction, Mnemonic as M, OpKind};

pub(super) fn to_u128(v: Xmm) -> u128 {
    v[0] as u128 | (v[1] as u128) << 64
}

pub(super) fn from_u128(v: u128) -> Xmm {
    [v as u64, (v >> 64) as u64]
}

/// Splits `v` into `N` lanes of `BITS` bits each (as u64, zero-extended).
pub(super) fn lanes<const N: usize>(v: Xmm) -> [u64; N] {
    let bits = 128 / N;
    let x = to_u128(v);
    let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    std::array::from_fn(|i| (x >> (i * bits)) as u64 & mask)
}

/// Joins `N` lanes (low bits of each) into an XMM value.
pub(super) fn join<const N: usize>(l: [u64; N]) -> Xmm {
    let bits = 128 / N;
    let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    from_u128(l.iter().enumerate().fold(0u128, |acc, (i, &x)| acc | ((x & mask) as u128) << (i * bits)))
}

/// Sign-extends a `bits`-wide lane.
pub(super) fn sx(x: u64, bits: usize) -> i64 {
    ((x << (64 - bits)) as i64) >> (64 - bits)
}

/// Applies `f` lane-wise with `N` lanes.
fn map2<const N: usize>(a: Xmm, b: Xmm, f: impl Fn(u64, u64) -> u64) -> Xmm {
    let (x, y) = (lanes::<N>(a), lanes::<N>(b));
    join::<N>(std::array::from_fn(|i| f(x[i], y[i])))
}

/// Applies `f` lane-wise with the lane width selected by `bits`.
pub(super) fn map_width(bits: usize, a: Xmm, b: Xmm, f: impl Fn(u64, u64) -> u64) -> Xmm {
    match bits {
        8 => map2::<16>(a, b, f),
        16 => map2::<8>(a, b, f),
        32 => map2::<4>(a, b, f),
        _ => map2::<2>(a, b, f),
    }
}

/// Saturates `v` to a signed `bits`-wide lane.
pub(super) fn sat_s(v: i64, bits: usize) -> u64 {
    let max = (1i64 << (bits - 1)) - 1;
    v.clamp(-max - 1, max) as u64
}

/// Saturates `v` to an unsigned `bits`-wide lane.
pub(super) fn sat_u(v: i64, bits: usize) -> u64 {
    v.clamp(0, (1i64 << bits) - 1) as u64
}

/// Interleaves the low (or high) halves of `a` and `b` at `N`-lane granularity.
fn unpack<const N: usize>(a: Xmm, b: Xmm, high: bool) -> Xmm {
    let (x, y) = (lanes::<N>(a), lanes::<N>(b));
    let base = if high { N / 2 } else { 0 };
    join::<N>(std::array::from_fn(|i| if i % 2 == 0 { x[base + i / 2] } else { y[base + i / 2] }))
}

/// Shifts every `bits`-wide lane of `a` by `count` (logical left/right or arithmetic
/// right); counts past the width give 0 (or the sign fill).
fn shift_lanes(a: Xmm, bits: usize, count: u64, op: M) -> Xmm {
    let f = |x: u64| -> u64 {
        match op {
            M::Psllw | M::Pslld | M::Psllq => {
                if count >= bits as u64 {
                    0
                } else {
                    x << count
                }
            }
            M::Psrlw | M::Psrld | M::Psrlq => {
                if count >= bits as u64 {
                    0
                } else {
                    x >> count
                }
            }
            _ => (sx(x, bits) >> count.min(bits as u64 - 1)) as u64,
        }
    };
    map_width(bits, a, a, |x, _| f(x))
}

/// The two-operand lane-wise integer and logic ops on 128-bit values
/// (`dst = dst op src`), or `None` for a mnemonic outside the group.
pub fn int_binop(m: M, d: Xmm, s: Xmm) -> Option<Xmm> {
    Some(match m {
        M::Paddb => map_width(8, d, s, u64::wrapping_add),
        M::Paddw => map_width(16, d, s, u64::wrapping_add),
        M::Paddd => map_width(32, d, s, u64::wrapping_add),
        M::Paddq => map_width(64, d, s, u64::wrapping_add),
        M::Psubb => map_width(8, d, s, u64::wrapping_sub),
        M::Psubw => map_width(16, d, s, u64::wrapping_sub),
        M::Psubd => map_width(32, d, s, u64::wrapping_sub),
        M::Psubq => map_width(64, d, s, u64::wrapping_sub),
        M::Paddsb => map_width(8, d, s, |a, b| sat_s(sx(a, 8) + sx(b, 8), 8)),
        M::Paddsw => map_width(16, d, s, |a, b| sat_s(sx(a, 16) + sx(b, 16), 16)),
        M::Psubsb => map_width(8, d, s, |a, b| sat_s(sx(a, 8) - sx(b, 8), 8)),
        M::Psubsw => map_width(16, d, s, |a, b| sat_s(sx(a, 16) - sx(b, 16), 16)),
        M::Paddusb => map_width(8, d, s, |a, b| sat_u(a as i64 + b as i64, 8)),
        M::Paddusw => map_width(16, d, s, |a, b| sat_u(a as i64 + b as i64, 16)),
        M::Psubusb => map_width(8, d, s, |a, b| sat_u(a as i64 - b as i64, 8)),
        M::Psubusw => map_width(16, d, s, |a, b| sat_u(a as i64 - b as i64, 16)),
        M::Pand | M::Andps | M::Andpd => [d[0] & s[0], d[1] & s[1]],
        M::Pandn | M::Andnps | M::Andnpd => [!d[0] & s[0], !d[1] & s[1]],
        M::Por | M::Orps | M::Orpd => [d[0] | s[0], d[1] | s[1]],
        M::Pxor | M::Xorps | M::Xorpd => [d[0] ^ s[0], d[1] ^ s[1]],
        M::Pcmpeqb => map_width(8, d, s, |a, b| if a == b { u64::MAX } else { 0 }),
        M::Pcmpeqw => map_width(16, d, s, |a, b| if a == b { u64::MAX } else { 0 }),
        M::Pcmpeqd => map_width(32, d, s, |a, b| if a == b { u64::MAX } else { 0 }),
        M::Pcmpgtb => map_width(8, d, s, |a, b| if sx(a, 8) > sx(b, 8) { u64::MAX } else { 0 }),
        M::Pcmpgtw => map_width(16, d, s, |a, b| if sx(a, 16) > sx(b, 16) { u64::MAX } else { 0 }),
        M::Pcmpgtd => map_width(32, d, s, |a, b| if sx(a, 32) > sx(b, 32) { u64::MAX } else { 0 }),
        M::Pcmpgtq => map_width(64, d, s, |a, b| if (a as i64) > (b as i64) { u64::MAX } else { 0 }),
        M::Pminub => map_width(8, d, s, u64::min),
        M::Pmaxub => map_width(8, d, s, u64::max),
        M::Pminsw => map_width(16, d, s, |a, b| if sx(a, 16) < sx(b, 16) { a } else { b }),
        M::Pmaxsw => map_width(16, d, s, |a, b| if sx(a, 16) > sx(b, 16) { a } else { b }),
        M::Pavgb => map_width(8, d, s, |a, b| (a + b + 1) >> 1),
        M::Pavgw => map_width(16, d, s, |a, b| (a + b + 1) >> 1),
        M::Pmullw => map_width(16, d, s, |a, b| (sx(a, 16) * sx(b, 16)) as u64),
        M::Pmulhw => map_width(16, d, s, |a, b| ((sx(a, 16) * sx(b, 16)) >> 16) as u64),
        M::Pmulhuw => map_width(16, d, s, |a, b| (a * b) >> 16),
        M::Pmuludq => [(d[0] & 0xffff_ffff) * (s[0] & 0xffff_ffff), (d[1] & 0xffff_ffff) * (s[1] & 0xffff_ffff)],
        M::Pmaddwd => {
            let (x, y) = (lanes::<8>(d), lanes::<8>(s));
            join::<4>(std::array::from_fn(|i| {
                let p0 = sx(x[2 * i], 16) * sx(y[2 * i], 16);
                let p1 = sx(x[2 * i + 1], 16) * sx(y[2 * i + 1], 16);
                (p0 + p1) as u64
            }))
        }
        M::Psadbw => {
            let (x, y) = (lanes::<16>(d), lanes::<16>(s));
            let sum = |h: usize| (0..8).map(|i| x[h * 8 + i].abs_diff(y[h * 8 + i])).sum::<u64>();
            [sum(0), sum(1)]
        }
        M::Punpcklbw => unpack::<16>(d, s, false),
        M::Punpckhbw => unpack::<16>(d, s, true),
        M::Punpcklwd => unpack::<8>(d, s, false),
        M::Punpckhwd => unpack::<8>(d, s, true),
        M::Punpckldq => unpack::<4>(d, s, false),
        M::Punpckhdq => unpack::<4>(d, s, true),
        M::Punpcklqdq => [d[0], s[0]],
        M::Punpckhqdq => [d[1], s[1]],
        M::Packsswb | M::Packuswb => {
            let (x, y) = (lanes::<8>(d), lanes::<8>(s));
            let sat = |w: u64| if m == M::Packsswb { sat_s(sx(w, 16), 8) } else { sat_u(sx(w, 16), 8) };
            join::<16>(std::array::from_fn(|i| if i < 8 { sat(x[i]) } else { sat(y[i - 8]) }))
        }
        M::Packssdw => {
            let (x, y) = (lanes::<4>(d), lanes::<4>(s));
            join::<8>(std::array::from_fn(|i| sat_s(sx(if i < 4 { x[i] } else { y[i - 4] }, 32), 16)))
        }
        _ => return None,
    })
}

/// The per-lane shifts PSLL/PSRL/PSRA (W, D, Q) and the byte shifts PSLLDQ/PSRLDQ of
/// `d` by `count`.
pub fn shift(m: M, d: Xmm, count: u64) -> Xmm {
    match m {
        M::Pslldq | M::Psrldq => {
            let x = to_u128(d);
            let bits = count.min(16) as u32 * 8;
            from_u128(match (m, bits) {
                (_, 128) => 0,
                (M::Pslldq, b) => x << b,
                (_, b) => x >> b,
            })
        }
        M::Psllw | M::Psrlw | M::Psraw => shift_lanes(d, 16, count, m),
        M::Pslld | M::Psrld | M::Psrad => shift_lanes(d, 32, count, m),
        _ => shift_lanes(d, 64, count, m),
    }
}

/// PSHUFD (PSHUFLW, PSHUFHW for the other mnemonics): the dwords (low or high words)
/// of `s` selected by the 2-bit fields of `imm`.
pub fn pshuf(m: M, s: Xmm, imm: u8) -> Xmm {
    let imm = imm as usize;
    let sel = |i: usize| (imm >> (2 * i)) & 3;
    match m {
        M::Pshufd => {
            let l = lanes::<4>(s);
            join::<4>(std::array::from_fn(|i| l[sel(i)]))
        }
        M::Pshuflw => {
            let l = lanes::<8>(s);
            join::<8>(std::array::from_fn(|i| if i < 4 { l[sel(i)] } else { l[i] }))
        }
        _ => {
            let l = lanes::<8>(s);
            join::<8>(std::array::from_fn(|i| if i < 4 { l[i] } else { l[4 + sel(i - 4)] }))
        }
    }
}

impl Ctx<'_> {
    /// Two-operand lane-wise integer and logic ops (`dst = dst op src`); MMX forms go to
    /// `sse_mmx`.
    pub(super) fn sse_int_binop(&mut self, ins: &Instruction) -> R<()> {
        if ins.op0_register().is_mm() {
            return self.mmx_binop(ins);
        }
        self.sse_check()?;
        let s = self.xmm_op(ins, 1)?;
        let r = self.xmm_dst(ins)?;
        let d = self.xmm(r);
        let m = ins.mnemonic();
        let out = int_binop(m, d, s).ok_or_else(|| self.unsupported(format!("SSE integer op {m:?}")))?;
        self.set_xmm(r, out);
        Ok(())
    }

    /// PSLL/PSRL/PSRA by an immediate or by the low quadword of an XMM/m128 operand,
    /// and the whole-register byte shifts PSLLDQ/PSRLDQ.
    pub(super) fn sse_shift(&mut self, ins: &Instruction) -> R<()> {
        if ins.op0_register().is_mm() {
            return self.mmx_shift(ins);
        }
        self.sse_check()?;
        let count =
            if ins.op1_kind() == OpKind::Immediate8 { ins.immediate8() as u64 } else { self.xmm_op(ins, 1)?[0] };
        let r = self.xmm_dst(ins)?;
        let d = self.xmm(r);
        self.set_xmm(r, shift(ins.mnemonic(), d, count));
        Ok(())
    }

    /// PSHUFD, PSHUFLW, PSHUFHW.
    pub(super) fn sse_pshuf(&mut self, ins: &Instruction) -> R<()> {
        self.sse_check()?;
        let s = self.xmm_op(ins, 1)?;
        let r = self.xmm_dst(ins)?;
        self.set_xmm(r, pshuf(ins.mnemonic(), s, ins.immediate8()));
        Ok(())
    }

    /// PEXTRW r32, xmm, imm8 and PINSRW xmm, r32/m16, imm8.
    pub(super) fn sse_pextrw_pinsrw(&mut self, ins: &Instruction) -> R<()> {
        if ins.op0_register().is_mm() || ins.op1_register().is_mm() {
            return self.mmx_misc(ins);
        }
        self.sse_check()?;
        let imm = (ins.immediate8() & 7) as usize;
        if ins.mnemonic() == M::Pextrw {
            if ins.op0_kind() != OpKind::Register {
                // PEXTRW m16, xmm, imm8 is the SSE4.1 form.
                return self.sse41(ins);
            }
            let w = lanes::<8>(self.xmm(ins.op1_register()))[imm];
            let size = (ins.op0_register().size() as u8).max(4);
            self.set_gpr(ins.op0_register().full_register().number(), size, w);
            return Ok(());
        }
        let r = self.xmm_dst(ins)?;
        let w = match ins.op1_kind() {
            OpKind::Memory => {
                let (seg, off) = self.ea(ins);
                self.read(seg, off, 2)?
            }
            _ => self.reg(ins.op1_register()) & 0xffff,
        };
        let mut l = lanes::<8>(self.xmm(r));
        l[imm] = w;
        self.set_xmm(r, join::<8>(l));
        Ok(())
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::sse::tests::sse_machine;
    use iced_x86::code_asm::*;
    use std::arch::x86_64::*;

    fn m128(v: __m128i) -> [u64; 2] {
        // SAFETY: __m128i and [u64; 2] are both 16 plain bytes.
        unsafe { std::mem::transmute(v) }
    }

    fn x(v: [u64; 2]) -> __m128i {
        // SAFETY: as above.
        unsafe { std::mem::transmute(v) }
    }

    const A: [u64; 2] = [0x8000_7fff_ff01_0280, 0x1234_8765_00ff_7f80];
    const B: [u64; 2] = [0x7fff_8000_01ff_fe7f, 0xfedc_0001_ff00_8181];

    /// Runs `op xmm0, xmm1` with xmm0=A, xmm1=B and returns xmm0.
    fn run(op: impl Fn(&mut CodeAssembler)) -> [u64; 2] {
        let mut a = CodeAssembler::new(64).unwrap();
        op(&mut a);
        a.hlt().unwrap();
        let mut m = sse_machine(&mut a);
        m.cpu.state_mut().sse.xmm[0] = A;
        m.cpu.state_mut().sse.xmm[1] = B;
        m.run();
        m.cpu.state().sse.xmm[0]
    }

    #[test]
    fn integer_ops_match_the_host() {
        let (a, b) = (x(A), x(B));
        // SAFETY: SSE2 is part of the x86_64 baseline.
        let host = unsafe {
            [
                _mm_add_epi8(a, b),
                _mm_subs_epi16(a, b),
                _mm_adds_epu8(a, b),
                _mm_subs_epu16(a, b),
                _mm_cmpgt_epi16(a, b),
                _mm_cmpeq_epi8(a, b),
                _mm_min_epi16(a, b),
                _mm_max_epu8(a, b),
                _mm_avg_epu8(a, b),
                _mm_mulhi_epi16(a, b),
                _mm_mulhi_epu16(a, b),
                _mm_mul_epu32(a, b),
                _mm_madd_epi16(a, b),
                _mm_sad_epu8(a, b),
                _mm_packs_epi16(a, b),
                _mm_packus_epi16(a, b),
                _mm_packs_epi32(a, b),
                _mm_unpackhi_epi8(a, b),
                _mm_unpacklo_epi16(a, b),
                _mm_andnot_si128(a, b),
                _mm_sra_epi16(a, b),
                _mm_srl_epi32(a, x([5, 0])),
            ]
        };
        let ours = [
            run(|c| c.paddb(xmm0, xmm1).unwrap()),
            run(|c| c.psubsw(xmm0, xmm1).unwrap()),
            run(|c| c.paddusb(xmm0, xmm1).unwrap()),
            run(|c| c.psubusw(xmm0, xmm1).unwrap()),
            run(|c| c.pcmpgtw(xmm0, xmm1).unwrap()),
            run(|c| c.pcmpeqb(xmm0, xmm1).unwrap()),
            run(|c| c.pminsw(xmm0, xmm1).unwrap()),
            run(|c| c.pmaxub(xmm0, xmm1).unwrap()),
            run(|c| c.pavgb(xmm0, xmm1).unwrap()),
            run(|c| c.pmulhw(xmm0, xmm1).unwrap()),
            run(|c| c.pmulhuw(xmm0, xmm1).unwrap()),
            run(|c| c.pmuludq(xmm0, xmm1).unwrap()),
            run(|c| c.pmaddwd(xmm0, xmm1).unwrap()),
            run(|c| c.psadbw(xmm0, xmm1).unwrap()),
            run(|c| c.packsswb(xmm0, xmm1).unwrap()),
            run(|c| c.packuswb(xmm0, xmm1).unwrap()),
            run(|c| c.packssdw(xmm0, xmm1).unwrap()),
            run(|c| c.punpckhbw(xmm0, xmm1).unwrap()),
            run(|c| c.punpcklwd(xmm0, xmm1).unwrap()),
            run(|c| c.pandn(xmm0, xmm1).unwrap()),
            run(|c| c.psraw(xmm0, xmm1).unwrap()),
            run(|c| c.psrld(xmm0, 5).unwrap()),
        ];
        for (i, (h, o)) in host.iter().zip(ours.iter()).enumerate() {
            assert_eq!(m128(*h), *o, "case {i}");
        }
    }

    #[test]
    fn shuffles_and_byte_shifts_match_the_host() {
        let a = x(A);
        // SAFETY: SSE2 is part of the x86_64 baseline.
        let host = unsafe {
            [
                _mm_shuffle_epi32(a, 0x4e),
                _mm_shufflelo_epi16(a, 0x1b),
                _mm_shufflehi_epi16(a, 0x39),
                _mm_slli_si128(a, 3),
                _mm_srli_si128(a, 9),
                _mm_insert_epi16(a, 0x5a5a, 5),
            ]
        };
        let ours = [
            run(|c| c.pshufd(xmm0, xmm0, 0x4e).unwrap()),
            run(|c| c.pshuflw(xmm0, xmm0, 0x1b).unwrap()),
            run(|c| c.pshufhw(xmm0, xmm0, 0x39).unwrap()),
            run(|c| c.pslldq(xmm0, 3).unwrap()),
            run(|c| c.psrldq(xmm0, 9).unwrap()),
            run(|c| {
                c.mov(eax, 0x5a5a).unwrap();
                c.pinsrw(xmm0, eax, 5).unwrap();
            }),
        ];
        for (i, (h, o)) in host.iter().zip(ours.iter()).enumerate() {
            assert_eq!(m128(*h), *o, "case {i}");
        }
    }

    /// `insn xmm0, xmm1` on the host with xmm0 = a, xmm1 = b.
    macro_rules! host_int {
        ($insn:literal, $a:expr, $b:expr) => {{
            let mut v: [u64; 4] = [$a[0], $a[1], $b[0], $b[1]];
            // SAFETY: the asm loads two XMM registers from `v`, runs one SSE2 integer
            // instruction and stores XMM0 back into `v`; both XMM registers are
            // declared clobbered.
            unsafe {
                std::arch::asm!(
                    "movdqu xmm0, [{v}]", "movdqu xmm1, [{v} + 16]", $insn, "movdqu [{v}], xmm0",
                    v = in(reg) v.as_mut_ptr(), out("xmm0") _, out("xmm1") _,
                );
            }
            [v[0], v[1]]
        }};
    }

    macro_rules! check_ops {
        ($a:expr, $b:expr; $($m:ident => $insn:literal),* $(,)?) => {
            $(
                assert_eq!(
                    super::int_binop(iced_x86::Mnemonic::$m, $a, $b),
                    Some(host_int!($insn, $a, $b)),
                    "{} a={:x?} b={:x?}", stringify!($m), $a, $b
                );
            )*
        };
    }

    #[test]
    fn random_integer_ops_match_the_host() {
        let mut st = 0x0123_4567_89ab_cdefu64;
        let mut next = || {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            // Bias lanes towards saturation boundaries.
            match st % 4 {
                0 => st & 0x8080_8080_8080_8080,
                1 => st | 0x7f7f_7f7f_7f7f_7f7f,
                _ => st,
            }
        };
        for _ in 0..500 {
            let a = [next(), next()];
            let b = [next(), next()];
            check_ops!(a, b;
                Paddb => "paddb xmm0, xmm1", Paddw => "paddw xmm0, xmm1", Paddd => "paddd xmm0, xmm1",
                Paddq => "paddq xmm0, xmm1", Psubb => "psubb xmm0, xmm1", Psubw => "psubw xmm0, xmm1",
                Psubd => "psubd xmm0, xmm1", Psubq => "psubq xmm0, xmm1", Paddsb => "paddsb xmm0, xmm1",
                Paddsw => "paddsw xmm0, xmm1", Psubsb => "psubsb xmm0, xmm1", Psubsw => "psubsw xmm0, xmm1",
                Paddusb => "paddusb xmm0, xmm1", Paddusw => "paddusw xmm0, xmm1",
                Psubusb => "psubusb xmm0, xmm1", Psubusw => "psubusw xmm0, xmm1",
                Pand => "pand xmm0, xmm1", Pandn => "pandn xmm0, xmm1", Por => "por xmm0, xmm1",
                Pxor => "pxor xmm0, xmm1", Andnps => "andnps xmm0, xmm1",
                Pcmpeqb => "pcmpeqb xmm0, xmm1", Pcmpeqw => "pcmpeqw xmm0, xmm1",
                Pcmpeqd => "pcmpeqd xmm0, xmm1", Pcmpgtb => "pcmpgtb xmm0, xmm1",
                Pcmpgtw => "pcmpgtw xmm0, xmm1", Pcmpgtd => "pcmpgtd xmm0, xmm1",
                Pminub => "pminub xmm0, xmm1", Pmaxub => "pmaxub xmm0, xmm1",
                Pminsw => "pminsw xmm0, xmm1", Pmaxsw => "pmaxsw xmm0, xmm1",
                Pavgb => "pavgb xmm0, xmm1", Pavgw => "pavgw xmm0, xmm1",
                Pmullw => "pmullw xmm0, xmm1", Pmulhw => "pmulhw xmm0, xmm1",
                Pmulhuw => "pmulhuw xmm0, xmm1", Pmuludq => "pmuludq xmm0, xmm1",
                Pmaddwd => "pmaddwd xmm0, xmm1", Psadbw => "psadbw xmm0, xmm1",
                Punpcklbw => "punpcklbw xmm0, xmm1", Punpckhbw => "punpckhbw xmm0, xmm1",
                Punpcklwd => "punpcklwd xmm0, xmm1", Punpckhwd => "punpckhwd xmm0, xmm1",
                Punpckldq => "punpckldq xmm0, xmm1", Punpckhdq => "punpckhdq xmm0, xmm1",
                Punpcklqdq => "punpcklqdq xmm0, xmm1", Punpckhqdq => "punpckhqdq xmm0, xmm1",
                Packsswb => "packsswb xmm0, xmm1", Packuswb => "packuswb xmm0, xmm1",
                Packssdw => "packssdw xmm0, xmm1",
            );
            for count in [b[0] & 0x3f, b[0] & 0x7, b[0]] {
                let c = [count, 0];
                for (m, h) in [
                    (iced_x86::Mnemonic::Psllw, host_int!("psllw xmm0, xmm1", a, c)),
                    (iced_x86::Mnemonic::Psrld, host_int!("psrld xmm0, xmm1", a, c)),
                    (iced_x86::Mnemonic::Psraw, host_int!("psraw xmm0, xmm1", a, c)),
                    (iced_x86::Mnemonic::Psrad, host_int!("psrad xmm0, xmm1", a, c)),
                    (iced_x86::Mnemonic::Psllq, host_int!("psllq xmm0, xmm1", a, c)),
                ] {
                    assert_eq!(super::shift(m, a, count), h, "{m:?} a={a:x?} count={count}");
                }
            }
        }
    }
}
