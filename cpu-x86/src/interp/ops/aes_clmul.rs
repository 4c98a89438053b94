//! AES-NI and PCLMULQDQ (SDM Vol. 2A "AESDEC", "AESDECLAST", "AESENC", "AESENCLAST",
//! "AESIMC", "AESKEYGENASSIST", Vol. 2B "PCLMULQDQ"; FIPS-197 for the round steps). The
//! state is the XMM register with byte `i` in row `i % 4`, column `i / 4`.

use super::sse::Xmm;
use super::sse_int::{from_u128, to_u128};
use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use iced_x86::{Instruction, Mnemonic as M};

/// True for the AES-NI and PCLMULQDQ mnemonics.
pub(super) fn is_aes_clmul(m: M) -> bool {
    matches!(m, M::Aesenc | M::Aesenclast | M::Aesdec | M::Aesdeclast | M::Aesimc | M::Aeskeygenassist | M::Pclmulqdq)
}

/// Multiplication in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1.
const fn gmul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0;
    while b != 0 {
        if b & 1 != 0 {
            p ^= a;
        }
        let hi = a & 0x80;
        a <<= 1;
        if hi != 0 {
            a ^= 0x1b;
        }
        b >>= 1;
    }
    p
}

/// The AES S-box: the multiplicative inverse followed by the affine transform.
const fn sbox() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut x = 0;
    while x < 256 {
        // x^254 is the inverse (0 for 0).
        let mut inv = 1u8;
        let mut k = 0;
        while k < 254 {
            inv = gmul(inv, x as u8);
            k += 1;
        }
        let inv = if x == 0 { 0 } else { inv };
        t[x] = inv ^ inv.rotate_left(1) ^ inv.rotate_left(2) ^ inv.rotate_left(3) ^ inv.rotate_left(4) ^ 0x63;
        x += 1;
    }
    t
}

/// The inverse S-box.
const fn inv_sbox(s: &[u8; 256]) -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut x = 0;
    while x < 256 {
        t[s[x] as usize] = x as u8;
        x += 1;
    }
    t
}

static SBOX: [u8; 256] = sbox();
static INV_SBOX: [u8; 256] = inv_sbox(&SBOX);

fn bytes(v: Xmm) -> [u8; 16] {
    to_u128(v).to_le_bytes()
}

fn from_bytes(b: [u8; 16]) -> Xmm {
    from_u128(u128::from_le_bytes(b))
}

/// ShiftRows (row r rotated left by r columns) or, `inverse`, InvShiftRows.
fn shift_rows(s: [u8; 16], inverse: bool) -> [u8; 16] {
    std::array::from_fn(|i| {
        let (r, c) = (i % 4, i / 4);
        let from = if inverse { (c + 4 - r) % 4 } else { (c + r) % 4 };
        s[4 * from + r]
    })
}

/// MixColumns, or InvMixColumns.
fn mix_columns(s: [u8; 16], inverse: bool) -> [u8; 16] {
    let k: [u8; 4] = if inverse { [0x0e, 0x0b, 0x0d, 0x09] } else { [2, 3, 1, 1] };
    std::array::from_fn(|i| {
        let (r, c) = (i % 4, i / 4);
        (0..4).fold(0, |acc, j| acc ^ gmul(k[(j + 4 - r) % 4], s[4 * c + j]))
    })
}

/// SubWord of a 32-bit word.
fn sub_word(w: u32) -> u32 {
    u32::from_le_bytes(w.to_le_bytes().map(|b| SBOX[b as usize]))
}

/// One AES-NI operation: `d` the state (or unused), `s` the round key (or the source),
/// `imm` AESKEYGENASSIST's round constant.
pub fn aes_op(m: M, d: Xmm, s: Xmm, imm: u8) -> Xmm {
    let key = to_u128(s);
    let with_key = |b: [u8; 16]| from_u128(u128::from_le_bytes(b) ^ key);
    let sub = |b: [u8; 16], inv: bool| b.map(|x| if inv { INV_SBOX[x as usize] } else { SBOX[x as usize] });
    match m {
        M::Aesenc => with_key(mix_columns(sub(shift_rows(bytes(d), false), false), false)),
        M::Aesenclast => with_key(sub(shift_rows(bytes(d), false), false)),
        M::Aesdec => with_key(mix_columns(sub(shift_rows(bytes(d), true), true), true)),
        M::Aesdeclast => with_key(sub(shift_rows(bytes(d), true), true)),
        M::Aesimc => from_bytes(mix_columns(bytes(s), true)),
        // AESKEYGENASSIST.
        _ => {
            let (x1, x3) = ((s[0] >> 32) as u32, (s[1] >> 32) as u32);
            let rcon = imm as u32;
            let (w1, w3) = (sub_word(x1), sub_word(x3));
            [
                w1 as u64 | ((w1.rotate_right(8) ^ rcon) as u64) << 32,
                w3 as u64 | ((w3.rotate_right(8) ^ rcon) as u64) << 32,
            ]
        }
    }
}

/// The carry-less product of two 64-bit values.
pub fn clmul(a: u64, b: u64) -> u128 {
    (0..64).filter(|i| b >> i & 1 != 0).fold(0u128, |acc, i| acc ^ (a as u128) << i)
}

impl Ctx<'_> {
    /// AESENC, AESENCLAST, AESDEC, AESDECLAST, AESIMC, AESKEYGENASSIST and PCLMULQDQ.
    pub(super) fn aes_clmul(&mut self, ins: &Instruction) -> R<()> {
        self.sse_check()?;
        let m = ins.mnemonic();
        let s = self.xmm_op(ins, 1)?;
        let r = self.xmm_dst(ins)?;
        let d = self.xmm(r);
        let out = if m == M::Pclmulqdq {
            let imm = ins.immediate8();
            from_u128(clmul(d[(imm & 1) as usize], s[(imm >> 4 & 1) as usize]))
        } else {
            let imm = if m == M::Aeskeygenassist { ins.immediate8() } else { 0 };
            aes_op(m, d, s, imm)
        };
        self.set_xmm(r, out);
        Ok(())
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// `insn xmm0, xmm1` on the host with XMM0 = a, XMM1 = b.
    macro_rules! host {
        ($insn:literal, $a:expr, $b:expr) => {{
            let mut v: [u64; 4] = [$a[0], $a[1], $b[0], $b[1]];
            // SAFETY: loads XMM0/XMM1 from `v`, runs one AES-NI/PCLMULQDQ instruction
            // (the host has both) and stores XMM0 back; both registers are clobbered.
            unsafe {
                std::arch::asm!(
                    "movdqu xmm0, [{v}]", "movdqu xmm1, [{v} + 16]", $insn, "movdqu [{v}], xmm0",
                    v = in(reg) v.as_mut_ptr(), out("xmm0") _, out("xmm1") _,
                );
            }
            [v[0], v[1]]
        }};
    }

    #[test]
    fn the_sbox_is_fips_197s() {
        assert_eq!((SBOX[0x00], SBOX[0x01], SBOX[0x53], SBOX[0xff]), (0x63, 0x7c, 0xed, 0x16));
        assert_eq!(INV_SBOX[0x63], 0);
    }

    #[test]
    fn random_aes_and_clmul_match_the_host() {
        let mut st = 0xae5a_e5ae_1234_5678u64;
        let mut next = || {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            st
        };
        for _ in 0..300 {
            let (a, b) = ([next(), next()], [next(), next()]);
            assert_eq!(aes_op(M::Aesenc, a, b, 0), host!("aesenc xmm0, xmm1", a, b));
            assert_eq!(aes_op(M::Aesenclast, a, b, 0), host!("aesenclast xmm0, xmm1", a, b));
            assert_eq!(aes_op(M::Aesdec, a, b, 0), host!("aesdec xmm0, xmm1", a, b));
            assert_eq!(aes_op(M::Aesdeclast, a, b, 0), host!("aesdeclast xmm0, xmm1", a, b));
            assert_eq!(aes_op(M::Aesimc, a, b, 0), host!("aesimc xmm0, xmm1", a, b));
            assert_eq!(aes_op(M::Aeskeygenassist, a, b, 0x1b), host!("aeskeygenassist xmm0, xmm1, 0x1b", a, b));
            assert_eq!(aes_op(M::Aeskeygenassist, a, b, 0xff), host!("aeskeygenassist xmm0, xmm1, 0xff", a, b));
            let p = |v: u128| [v as u64, (v >> 64) as u64];
            assert_eq!(p(clmul(a[0], b[0])), host!("pclmulqdq xmm0, xmm1, 0x00", a, b));
            assert_eq!(p(clmul(a[1], b[1])), host!("pclmulqdq xmm0, xmm1, 0x11", a, b));
            assert_eq!(p(clmul(a[1], b[0])), host!("pclmulqdq xmm0, xmm1, 0x01", a, b));
        }
    }
}
