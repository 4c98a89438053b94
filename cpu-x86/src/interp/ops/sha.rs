//! The SHA extensions (SDM Vol. 2B "SHA1RNDS4", "SHA1NEXTE", "SHA1MSG1", "SHA1MSG2",
//! "SHA256RNDS2", "SHA256MSG1", "SHA256MSG2"; FIPS 180-4 for the functions). Words are
//! numbered from the top of the register: `w(v, 0)` is bits 127:96.

use super::sse::Xmm;
use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use iced_x86::{Instruction, Mnemonic as M, Register};

/// True for the SHA mnemonics.
pub(super) fn is_sha(m: M) -> bool {
    matches!(
        m,
        M::Sha1rnds4 | M::Sha1nexte | M::Sha1msg1 | M::Sha1msg2 | M::Sha256rnds2 | M::Sha256msg1 | M::Sha256msg2
    )
}

/// 32-bit word `i` counted from the top (0: bits 127:96, 3: bits 31:0).
fn w(v: Xmm, i: usize) -> u32 {
    let k = 3 - i;
    (v[k / 2] >> (32 * (k % 2))) as u32
}

/// An XMM value from four words, the first in bits 127:96.
fn words(a: u32, b: u32, c: u32, d: u32) -> Xmm {
    [d as u64 | (c as u64) << 32, b as u64 | (a as u64) << 32]
}

/// SHA-256's σ0 and σ1 (message schedule) and Σ0 and Σ1 (rounds).
fn sigma0(x: u32) -> u32 {
    x.rotate_right(7) ^ x.rotate_right(18) ^ (x >> 3)
}
fn sigma1(x: u32) -> u32 {
    x.rotate_right(17) ^ x.rotate_right(19) ^ (x >> 10)
}
fn big_sigma0(x: u32) -> u32 {
    x.rotate_right(2) ^ x.rotate_right(13) ^ x.rotate_right(22)
}
fn big_sigma1(x: u32) -> u32 {
    x.rotate_right(6) ^ x.rotate_right(11) ^ x.rotate_right(25)
}

/// One SHA operation on `d` (the first operand) and `s` (the second); `imm` selects
/// SHA1RNDS4's function, `wk` is XMM0 for SHA256RNDS2.
pub fn sha_op(m: M, d: Xmm, s: Xmm, imm: u8, wk: Xmm) -> Xmm {
    match m {
        M::Sha1rnds4 => {
            let (f, k): (fn(u32, u32, u32) -> u32, u32) = match imm & 3 {
                0 => (|b, c, d| (b & c) ^ (!b & d), 0x5a82_7999),
                1 => (|b, c, d| b ^ c ^ d, 0x6ed9_eba1),
                2 => (|b, c, d| (b & c) ^ (b & d) ^ (c & d), 0x8f1b_bcdc),
                _ => (|b, c, d| b ^ c ^ d, 0xca62_c1d6),
            };
            let (mut a, mut b, mut c, mut dd, mut e) = (w(d, 0), w(d, 1), w(d, 2), w(d, 3), 0u32);
            for i in 0..4 {
                let t =
                    f(b, c, dd).wrapping_add(a.rotate_left(5)).wrapping_add(w(s, i)).wrapping_add(e).wrapping_add(k);
                (e, dd, c, b, a) = (dd, c, b.rotate_left(30), a, t);
            }
            words(a, b, c, dd)
        }
        M::Sha1nexte => words(w(s, 0).wrapping_add(w(d, 0).rotate_left(30)), w(s, 1), w(s, 2), w(s, 3)),
        M::Sha1msg1 => words(w(d, 2) ^ w(d, 0), w(d, 3) ^ w(d, 1), w(s, 0) ^ w(d, 2), w(s, 1) ^ w(d, 3)),
        M::Sha1msg2 => {
            let w16 = (w(d, 0) ^ w(s, 1)).rotate_left(1);
            let w17 = (w(d, 1) ^ w(s, 2)).rotate_left(1);
            let w18 = (w(d, 2) ^ w(s, 3)).rotate_left(1);
            let w19 = (w(d, 3) ^ w16).rotate_left(1);
            words(w16, w17, w18, w19)
        }
        M::Sha256rnds2 => {
            let (mut a, mut b, mut c, mut dd) = (w(s, 0), w(s, 1), w(d, 0), w(d, 1));
            let (mut e, mut f, mut g, mut h) = (w(s, 2), w(s, 3), w(d, 2), w(d, 3));
            for wk in [w(wk, 3), w(wk, 2)] {
                let ch = (e & f) ^ (!e & g);
                let maj = (a & b) ^ (a & c) ^ (b & c);
                let t1 = h.wrapping_add(big_sigma1(e)).wrapping_add(ch).wrapping_add(wk);
                let t2 = big_sigma0(a).wrapping_add(maj);
                (h, g, f, e, dd, c, b, a) = (g, f, e, dd.wrapping_add(t1), c, b, a, t1.wrapping_add(t2));
            }
            words(a, b, e, f)
        }
        M::Sha256msg1 => words(
            w(d, 0).wrapping_add(sigma0(w(s, 3))),
            w(d, 1).wrapping_add(sigma0(w(d, 0))),
            w(d, 2).wrapping_add(sigma0(w(d, 1))),
            w(d, 3).wrapping_add(sigma0(w(d, 2))),
        ),
        // SHA256MSG2.
        _ => {
            let w16 = w(d, 3).wrapping_add(sigma1(w(s, 1)));
            let w17 = w(d, 2).wrapping_add(sigma1(w(s, 0)));
            let w18 = w(d, 1).wrapping_add(sigma1(w16));
            let w19 = w(d, 0).wrapping_add(sigma1(w17));
            words(w19, w18, w17, w16)
        }
    }
}

impl Ctx<'_> {
    /// The SHA instructions.
    pub(super) fn sha(&mut self, ins: &Instruction) -> R<()> {
        self.sse_check()?;
        let m = ins.mnemonic();
        let s = self.xmm_op(ins, 1)?;
        let r = self.xmm_dst(ins)?;
        let imm = if m == M::Sha1rnds4 { ins.immediate8() } else { 0 };
        let out = sha_op(m, self.xmm(r), s, imm, self.xmm(Register::XMM0));
        self.set_xmm(r, out);
        Ok(())
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// `insn xmm1, xmm2` on the host with XMM1 = a, XMM2 = b, XMM0 = k.
    macro_rules! host {
        ($insn:literal, $a:expr, $b:expr, $k:expr) => {{
            let mut v: [u64; 6] = [$a[0], $a[1], $b[0], $b[1], $k[0], $k[1]];
            // SAFETY: loads XMM0-XMM2 from `v`, runs one SHA instruction (the host has
            // the SHA extensions) and stores XMM1 back; the registers are clobbered.
            unsafe {
                std::arch::asm!(
                    "movdqu xmm1, [{v}]", "movdqu xmm2, [{v} + 16]", "movdqu xmm0, [{v} + 32]", $insn,
                    "movdqu [{v}], xmm1",
                    v = in(reg) v.as_mut_ptr(), out("xmm0") _, out("xmm1") _, out("xmm2") _,
                );
            }
            [v[0], v[1]]
        }};
    }

    #[test]
    fn random_sha_ops_match_the_host() {
        if !std::arch::is_x86_feature_detected!("sha") {
            return;
        }
        let mut st = 0x5a5a_0123_4567_89abu64;
        let mut next = || {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            st
        };
        for _ in 0..300 {
            let (a, b, k) = ([next(), next()], [next(), next()], [next(), next()]);
            let z = [0, 0];
            assert_eq!(sha_op(M::Sha1rnds4, a, b, 0, z), host!("sha1rnds4 xmm1, xmm2, 0", a, b, k));
            assert_eq!(sha_op(M::Sha1rnds4, a, b, 1, z), host!("sha1rnds4 xmm1, xmm2, 1", a, b, k));
            assert_eq!(sha_op(M::Sha1rnds4, a, b, 2, z), host!("sha1rnds4 xmm1, xmm2, 2", a, b, k));
            assert_eq!(sha_op(M::Sha1rnds4, a, b, 3, z), host!("sha1rnds4 xmm1, xmm2, 3", a, b, k));
            assert_eq!(sha_op(M::Sha1nexte, a, b, 0, z), host!("sha1nexte xmm1, xmm2", a, b, k));
            assert_eq!(sha_op(M::Sha1msg1, a, b, 0, z), host!("sha1msg1 xmm1, xmm2", a, b, k));
            assert_eq!(sha_op(M::Sha1msg2, a, b, 0, z), host!("sha1msg2 xmm1, xmm2", a, b, k));
            assert_eq!(sha_op(M::Sha256rnds2, a, b, 0, k), host!("sha256rnds2 xmm1, xmm2", a, b, k));
            assert_eq!(sha_op(M::Sha256msg1, a, b, 0, z), host!("sha256msg1 xmm1, xmm2", a, b, k));
            assert_eq!(sha_op(M::Sha256msg2, a, b, 0, z), host!("sha256msg2 xmm1, xmm2", a, b, k));
        }
    }
}
