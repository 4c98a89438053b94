//! SSSE3 (SDM Vol. 2, each instruction's page): PABSB/W/D, PSIGNB/W/D, PHADDW/D,
//! PHADDSW, PHSUBW/D, PHSUBSW, PMADDUBSW, PMULHRSW, PSHUFB and PALIGNR, in their XMM and
//! MMX forms. One definition serves both widths: a vector is a `u128` of `bytes` bytes
//! (16 for XMM, 8 for MMX in the low half).

use super::sse_int::{from_u128, sat_s, sx, to_u128};
use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use iced_x86::{Instruction, Mnemonic as M};

/// True for the SSSE3 mnemonics.
pub(super) fn is_ssse3(m: M) -> bool {
    matches!(
        m,
        M::Pabsb
            | M::Pabsw
            | M::Pabsd
            | M::Psignb
            | M::Psignw
            | M::Psignd
            | M::Phaddw
            | M::Phaddd
            | M::Phaddsw
            | M::Phsubw
            | M::Phsubd
            | M::Phsubsw
            | M::Pmaddubsw
            | M::Pmulhrsw
            | M::Pshufb
            | M::Palignr
    )
}

/// Lane `i` of `v` with `bits` bits per lane, zero-extended.
fn lane(v: u128, i: usize, bits: usize) -> u64 {
    (v >> (i * bits)) as u64 & (u64::MAX >> (64 - bits))
}

/// Lane `i` of `v`, sign-extended.
fn slane(v: u128, i: usize, bits: usize) -> i64 {
    sx(lane(v, i, bits), bits)
}

/// A vector of `n` lanes of `bits` bits from `f(lane index)`.
fn build(n: usize, bits: usize, f: impl Fn(usize) -> u64) -> u128 {
    let mask = u64::MAX >> (64 - bits);
    (0..n).fold(0u128, |acc, i| acc | ((f(i) & mask) as u128) << (i * bits))
}

/// The horizontal add/subtract: the lower half of the result combines adjacent pairs of
/// `d`, the upper half those of `s`.
fn horizontal(d: u128, s: u128, bytes: usize, bits: usize, f: impl Fn(i64, i64) -> u64) -> u128 {
    let n = bytes * 8 / bits;
    let half = n / 2;
    build(n, bits, |i| {
        let (v, j) = if i < half { (d, i) } else { (s, i - half) };
        f(slane(v, 2 * j, bits), slane(v, 2 * j + 1, bits))
    })
}

/// One SSSE3 operation on `bytes`-wide vectors (`dst = dst op src`; PALIGNR takes `imm`).
pub fn ssse3_op(m: M, d: u128, s: u128, bytes: usize, imm: u8) -> u128 {
    let n = |bits: usize| bytes * 8 / bits;
    let abs = |bits: usize| build(n(bits), bits, |i| slane(s, i, bits).unsigned_abs());
    let sign = |bits: usize| {
        build(n(bits), bits, |i| match slane(s, i, bits) {
            x if x < 0 => slane(d, i, bits).wrapping_neg() as u64,
            0 => 0,
            _ => lane(d, i, bits),
        })
    };
    match m {
        M::Pabsb => abs(8),
        M::Pabsw => abs(16),
        M::Pabsd => abs(32),
        M::Psignb => sign(8),
        M::Psignw => sign(16),
        M::Psignd => sign(32),
        M::Phaddw => horizontal(d, s, bytes, 16, |a, b| a.wrapping_add(b) as u64),
        M::Phaddd => horizontal(d, s, bytes, 32, |a, b| a.wrapping_add(b) as u64),
        M::Phaddsw => horizontal(d, s, bytes, 16, |a, b| sat_s(a + b, 16)),
        M::Phsubw => horizontal(d, s, bytes, 16, |a, b| a.wrapping_sub(b) as u64),
        M::Phsubd => horizontal(d, s, bytes, 32, |a, b| a.wrapping_sub(b) as u64),
        M::Phsubsw => horizontal(d, s, bytes, 16, |a, b| sat_s(a - b, 16)),
        M::Pmaddubsw => build(n(16), 16, |i| {
            let p = |k: usize| lane(d, k, 8) as i64 * slane(s, k, 8);
            sat_s(p(2 * i) + p(2 * i + 1), 16)
        }),
        M::Pmulhrsw => build(n(16), 16, |i| {
            let p = slane(d, i, 16) * slane(s, i, 16);
            (((p >> 14) + 1) >> 1) as u64
        }),
        M::Pshufb => build(bytes, 8, |i| {
            let sel = lane(s, i, 8) as usize;
            if sel & 0x80 != 0 {
                0
            } else {
                lane(d, sel & (bytes - 1), 8)
            }
        }),
        // PALIGNR: bytes imm.. of the concatenation dst:src (src low), zeros beyond it.
        _ => build(bytes, 8, |i| {
            let k = i + imm as usize;
            match k {
                k if k < bytes => lane(s, k, 8),
                k if k < 2 * bytes => lane(d, k - bytes, 8),
                _ => 0,
            }
        }),
    }
}

impl Ctx<'_> {
    /// The SSSE3 instructions, on XMM or (with an MMX destination) MMX registers.
    pub(super) fn ssse3(&mut self, ins: &Instruction) -> R<()> {
        let m = ins.mnemonic();
        let imm = if m == M::Palignr { ins.immediate8() } else { 0 };
        if ins.op0_register().is_mm() {
            self.mmx_enter()?;
            let s = self.mm_op(ins, 1)?;
            let r = ins.op0_register();
            let v = ssse3_op(m, self.mm(r) as u128, s as u128, 8, imm);
            self.set_mm(r, v as u64);
            return Ok(());
        }
        self.sse_check()?;
        let s = self.xmm_op(ins, 1)?;
        let r = self.xmm_dst(ins)?;
        let v = ssse3_op(m, to_u128(self.xmm(r)), to_u128(s), 16, imm);
        self.set_xmm(r, from_u128(v));
        Ok(())
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::interp::ops::sse::tests::sse_machine;
    use iced_x86::code_asm::*;

    /// `insn xmm0, xmm1` (or `mm0, mm1`) on the host with the first operand = a, the
    /// second = b.
    macro_rules! host {
        ($insn:literal, $a:expr, $b:expr) => {{
            let mut v: [u64; 4] = [$a as u64, ($a >> 64) as u64, $b as u64, ($b >> 64) as u64];
            // SAFETY: loads XMM0/XMM1 and MM0/MM1 from `v`, runs one SSSE3 instruction,
            // stores the results back into `v`, and leaves the x87 state empty (EMMS);
            // every register touched is declared clobbered.
            unsafe {
                std::arch::asm!(
                    "movdqu xmm0, [{v}]", "movdqu xmm1, [{v} + 16]", "movq mm0, [{v}]", "movq mm1, [{v} + 16]",
                    $insn, "movdqu [{v}], xmm0", "movq [{v} + 16], mm0", "emms",
                    v = in(reg) v.as_mut_ptr(), out("xmm0") _, out("xmm1") _, out("mm0") _, out("mm1") _,
                    out("st(0)") _, out("st(1)") _,
                );
            }
            (v[0] as u128 | (v[1] as u128) << 64, v[2])
        }};
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            match self.0 % 4 {
                0 => self.0 & 0x8080_8080_8080_8080,
                1 => self.0 | 0x7f7f_7f7f_7f7f_7f7f,
                _ => self.0,
            }
        }
        fn v(&mut self) -> u128 {
            self.next() as u128 | (self.next() as u128) << 64
        }
    }

    #[test]
    fn random_ssse3_ops_match_the_host_in_both_widths() {
        let mut r = Rng(0x5eed_5555_0123_4567);
        for _ in 0..400 {
            let (a, b) = (r.v(), r.v());
            macro_rules! check {
                ($($m:ident $imm:literal => $x:literal, $mm:literal);* $(;)?) => {$(
                    let (hx, _) = host!($x, a, b);
                    assert_eq!(ssse3_op(M::$m, a, b, 16, $imm), hx, "{} xmm a={a:x} b={b:x}", stringify!($m));
                    let (_, hm) = host!($mm, a, b);
                    let ours = ssse3_op(M::$m, a as u64 as u128, b as u64 as u128, 8, $imm) as u64;
                    assert_eq!(ours, hm, "{} mm a={a:x} b={b:x}", stringify!($m));
                )*};
            }
            check!(
                Pabsb 0 => "pabsb xmm0, xmm1", "pabsb mm0, mm1";
                Pabsw 0 => "pabsw xmm0, xmm1", "pabsw mm0, mm1";
                Pabsd 0 => "pabsd xmm0, xmm1", "pabsd mm0, mm1";
                Psignb 0 => "psignb xmm0, xmm1", "psignb mm0, mm1";
                Psignw 0 => "psignw xmm0, xmm1", "psignw mm0, mm1";
                Psignd 0 => "psignd xmm0, xmm1", "psignd mm0, mm1";
                Phaddw 0 => "phaddw xmm0, xmm1", "phaddw mm0, mm1";
                Phaddd 0 => "phaddd xmm0, xmm1", "phaddd mm0, mm1";
                Phaddsw 0 => "phaddsw xmm0, xmm1", "phaddsw mm0, mm1";
                Phsubw 0 => "phsubw xmm0, xmm1", "phsubw mm0, mm1";
                Phsubd 0 => "phsubd xmm0, xmm1", "phsubd mm0, mm1";
                Phsubsw 0 => "phsubsw xmm0, xmm1", "phsubsw mm0, mm1";
                Pmaddubsw 0 => "pmaddubsw xmm0, xmm1", "pmaddubsw mm0, mm1";
                Pmulhrsw 0 => "pmulhrsw xmm0, xmm1", "pmulhrsw mm0, mm1";
                Pshufb 0 => "pshufb xmm0, xmm1", "pshufb mm0, mm1";
                Palignr 5 => "palignr xmm0, xmm1, 5", "palignr mm0, mm1, 5";
                Palignr 13 => "palignr xmm0, xmm1, 13", "palignr mm0, mm1, 13";
                Palignr 20 => "palignr xmm0, xmm1, 20", "palignr mm0, mm1, 20";
                Palignr 40 => "palignr xmm0, xmm1, 40", "palignr mm0, mm1, 40";
            );
        }
    }

    #[test]
    fn pshufb_from_memory_runs_in_the_interpreter() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.pshufb(xmm0, xmmword_ptr(0x20000)).unwrap();
        a.hlt().unwrap();
        let mut m = sse_machine(&mut a);
        // Reverse the bytes; the top selector has bit 7 set and gives zero.
        let mut sel: Vec<u8> = (0..16u8).rev().collect();
        sel[15] = 0x80;
        m.poke(0x20000, &sel);
        m.cpu.state_mut().sse.xmm[0] = [0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908];
        m.run();
        assert_eq!(m.cpu.state().sse.xmm[0], [0x0809_0a0b_0c0d_0e0f, 0x0001_0203_0405_0607]);
    }
}
