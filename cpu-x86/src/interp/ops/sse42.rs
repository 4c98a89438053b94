//! SSE4.2 (SDM Vol. 2, each instruction's page; the string compares in Vol. 2B §4.1):
//! PCMPGTQ, CRC32 (the Castagnoli polynomial) and the packed string compares PCMPESTRI,
//! PCMPESTRM, PCMPISTRI and PCMPISTRM. POPCNT, also reported with SSE4.2, is with the
//! bit instructions.

use super::sse::Xmm;
use super::sse_int::{from_u128, int_binop, sx, to_u128};
use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use crate::interp::state::fl;
use iced_x86::{Instruction, Mnemonic as M, Register};

/// True for the SSE4.2 mnemonics handled here.
pub(super) fn is_sse42(m: M) -> bool {
    matches!(
        m,
        M::Pcmpgtq
            | M::Crc32
            | M::Pcmpestri
            | M::Pcmpestri64
            | M::Pcmpestrm
            | M::Pcmpestrm64
            | M::Pcmpistri
            | M::Pcmpistrm
    )
}

/// CRC32C (polynomial 0x11EDC6F41, bit-reflected) of the low `bytes` bytes of `data`,
/// continuing from `crc`.
pub fn crc32c(crc: u32, data: u64, bytes: u8) -> u32 {
    let mut c = crc;
    for i in 0..bytes {
        c ^= (data >> (8 * i)) as u8 as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0x82f6_3b78 } else { c >> 1 };
        }
    }
    c
}

/// The outcome of a packed string compare: IntRes2 and the two lengths' flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrCmp {
    /// IntRes2: one bit per element of the second operand.
    pub mask: u16,
    /// Elements per operand (16 bytes or 8 words).
    pub n: usize,
    /// CF, ZF, SF and OF as the instruction sets them (AF and PF clear).
    pub flags: u64,
}

/// PCMPxSTRx's comparison: `a` (the first operand, length `la`) against `b` (the second,
/// length `lb`) under control byte `imm` (SDM Vol. 2B §4.1: data format, aggregation,
/// polarity).
pub fn pcmpstr(a: Xmm, b: Xmm, la: usize, lb: usize, imm: u8) -> StrCmp {
    let words = imm & 1 != 0;
    let signed = imm & 2 != 0;
    let (n, bits) = if words { (8, 16) } else { (16, 8) };
    let (x, y) = (to_u128(a), to_u128(b));
    let elem = |v: u128, i: usize| -> i64 {
        let e = (v >> (i * bits)) as u64 & ((1u64 << bits) - 1);
        if signed {
            sx(e, bits)
        } else {
            e as i64
        }
    };
    let (la, lb) = (la.min(n), lb.min(n));
    let mut res1 = 0u16;
    match (imm >> 2) & 3 {
        // Equal any: is b[j] any of a's valid elements?
        0 => {
            for j in 0..lb {
                if (0..la).any(|i| elem(x, i) == elem(y, j)) {
                    res1 |= 1 << j;
                }
            }
        }
        // Ranges: a holds pairs (low, high); is a[i] <= b[j] <= a[i+1] for a valid pair?
        1 => {
            for j in 0..lb {
                let v = elem(y, j);
                if (0..n / 2).any(|p| 2 * p + 1 < la && elem(x, 2 * p) <= v && v <= elem(x, 2 * p + 1)) {
                    res1 |= 1 << j;
                }
            }
        }
        // Equal each: a[i] == b[i]; both invalid counts as equal, one invalid as not.
        2 => {
            for i in 0..n {
                let eq = match (i < la, i < lb) {
                    (true, true) => elem(x, i) == elem(y, i),
                    (false, false) => true,
                    _ => false,
                };
                if eq {
                    res1 |= 1 << i;
                }
            }
        }
        // Equal ordered: does a (as a substring) start at b[j]? Past a's end matches
        // anything; past b's end (with a still valid) nothing.
        _ => {
            for j in 0..n {
                let hit = (0..n - j).all(|k| match (k < la, j + k < lb) {
                    (false, _) => true,
                    (true, false) => false,
                    (true, true) => elem(x, k) == elem(y, j + k),
                });
                if hit {
                    res1 |= 1 << j;
                }
            }
        }
    }
    let all = ((1u32 << n) - 1) as u16;
    let mask = match (imm >> 4) & 3 {
        1 => !res1 & all,
        3 => res1 ^ (((1u32 << lb) - 1) as u16),
        _ => res1,
    };
    let mut flags = 0;
    if mask != 0 {
        flags |= fl::CF;
    }
    if lb < n {
        flags |= fl::ZF;
    }
    if la < n {
        flags |= fl::SF;
    }
    if mask & 1 != 0 {
        flags |= fl::OF;
    }
    StrCmp { mask, n, flags }
}

/// Length of a NUL-terminated (implicit-length) operand: the index of its first zero
/// element, or the element count.
fn implicit_len(v: Xmm, words: bool) -> usize {
    let x = to_u128(v);
    let (n, bits) = if words { (8, 16) } else { (16, 8) };
    (0..n).find(|&i| (x >> (i * bits)) as u64 & ((1u64 << bits) - 1) == 0).unwrap_or(n)
}

/// PCMPxSTRI's index: the lowest (imm8[6] clear) or highest set bit of the mask, or the
/// element count when none is set.
pub fn str_index(r: &StrCmp, imm: u8) -> u32 {
    match (r.mask, imm & 0x40 != 0) {
        (0, _) => r.n as u32,
        (m, false) => m.trailing_zeros(),
        (m, true) => 15 - m.leading_zeros(),
    }
}

/// PCMPxSTRM's mask: the bits zero-extended (imm8[6] clear) or each expanded to a whole
/// element.
pub fn str_mask(r: &StrCmp, imm: u8) -> Xmm {
    if imm & 0x40 == 0 {
        return [r.mask as u64, 0];
    }
    let bits = 128 / r.n;
    let ones = u128::MAX >> (128 - bits);
    from_u128((0..r.n).filter(|i| r.mask >> i & 1 != 0).fold(0u128, |acc, i| acc | ones << (i * bits)))
}

impl Ctx<'_> {
    /// The SSE4.2 instructions.
    pub(super) fn sse42(&mut self, ins: &Instruction) -> R<()> {
        let m = ins.mnemonic();
        if m == M::Crc32 {
            // CRC32 is a general-purpose instruction: no SSE state checks.
            let size = self.op_size(ins, 1);
            let data = self.read_op(ins, 1, size)?;
            let crc = crc32c(self.reg(ins.op0_register()) as u32, data, size);
            self.set_reg(ins.op0_register(), crc as u64);
            return Ok(());
        }
        self.sse_check()?;
        let s = self.xmm_op(ins, 1)?;
        let r = self.xmm_dst(ins)?;
        let d = self.xmm(r);
        if m == M::Pcmpgtq {
            let v = int_binop(m, d, s).unwrap_or(d);
            self.set_xmm(r, v);
            return Ok(());
        }
        self.string_compare(ins, d, s)
    }

    /// PCMPESTRI/PCMPESTRM/PCMPISTRI/PCMPISTRM on the first operand `d` and the second
    /// `s` (the legacy and the VEX.128 forms alike): the index to ECX or the mask to
    /// XMM0, and the flags.
    pub(super) fn string_compare(&mut self, ins: &Instruction, d: Xmm, s: Xmm) -> R<()> {
        let m = super::avx::legacy_twin(ins.mnemonic()).unwrap_or(ins.mnemonic());
        let imm = ins.immediate8();
        let words = imm & 1 != 0;
        let (la, lb) = if matches!(m, M::Pcmpestri | M::Pcmpestrm | M::Pcmpestri64 | M::Pcmpestrm64) {
            // Explicit lengths in rAX and rDX (64-bit with REX.W), as absolute values.
            let wide = matches!(m, M::Pcmpestri64 | M::Pcmpestrm64);
            let len = |v: u64| -> usize {
                let v = if wide { v as i64 } else { v as i32 as i64 };
                v.unsigned_abs().min(16) as usize
            };
            (len(self.c.st.gpr[0]), len(self.c.st.gpr[2]))
        } else {
            (implicit_len(d, words), implicit_len(s, words))
        };
        let res = pcmpstr(d, s, la, lb, imm);
        if matches!(m, M::Pcmpestri | M::Pcmpestri64 | M::Pcmpistri) {
            self.set_gpr(1, 4, str_index(&res, imm) as u64);
        } else {
            self.set_xmm(Register::XMM0, str_mask(&res, imm));
            if ins.encoding() == iced_x86::EncodingKind::VEX {
                self.c.st.ymm_hi[0] = [0; 2];
            }
        }
        self.set_arith_flags(fl::ARITH, res.flags);
        Ok(())
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::interp::ops::sse::tests::sse_machine;
    use iced_x86::code_asm::*;

    /// Runs `pcmpestri`/`pcmpestrm`/`pcmpistri` with control `$imm` on the host:
    /// (ECX of the index form, XMM0 of the mask form, flags of the index form).
    macro_rules! host {
        ($imm:literal, $a:expr, $b:expr, $la:expr, $lb:expr) => {{
            let v: [u64; 4] = [$a[0], $a[1], $b[0], $b[1]];
            let mut out = [0u64; 2];
            let (idx, rf): (u64, u64);
            // SAFETY: loads XMM1/XMM2 from `v`, runs the string compares with EAX/EDX
            // as lengths and stores ECX, RFLAGS and XMM0; every register written is
            // declared as an output or clobber.
            unsafe {
                std::arch::asm!(
                    "movdqu xmm1, [{v}]", "movdqu xmm2, [{v} + 16]",
                    concat!("pcmpestri xmm1, xmm2, ", $imm), "pushfq", "pop {f}", "mov {c}, rcx",
                    concat!("pcmpestrm xmm1, xmm2, ", $imm), "movdqu [{o}], xmm0",
                    v = in(reg) v.as_ptr(), o = in(reg) out.as_mut_ptr(), f = out(reg) rf, c = out(reg) idx,
                    in("eax") $la, in("edx") $lb, out("ecx") _, out("xmm0") _, out("xmm1") _, out("xmm2") _,
                );
            }
            (idx as u32, out, rf & 0x8d5)
        }};
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        /// Bytes from a small alphabet (so matches happen), sometimes with zeros.
        fn text(&mut self) -> Xmm {
            let mut b = [0u8; 16];
            for x in b.iter_mut() {
                let r = self.next();
                *x = [b'a', b'b', b'c', 0, 0x80, 0xff, b'a' + (r >> 8) as u8 % 26][(r % 7) as usize];
            }
            let b = u128::from_le_bytes(b);
            [b as u64, (b >> 64) as u64]
        }
    }

    #[test]
    fn random_string_compares_match_the_host_for_every_control_byte() {
        let mut r = Rng(0x4242_0123_4567_89ab);
        macro_rules! each_imm {
            ($($imm:literal)*) => {$(
                for _ in 0..40 {
                    let (a, b) = (r.text(), r.text());
                    let la = (r.next() % 40) as i32 - 20;
                    let lb = (r.next() % 40) as i32 - 20;
                    let (hi, hm, hf) = host!($imm, a, b, la, lb);
                    let res = pcmpstr(a, b, la.unsigned_abs() as usize, lb.unsigned_abs() as usize, $imm);
                    let ctx = format!("imm={:#x} a={a:x?} b={b:x?} la={la} lb={lb}", $imm);
                    assert_eq!(str_index(&res, $imm), hi, "{ctx}");
                    assert_eq!(str_mask(&res, $imm), hm, "{ctx}");
                    assert_eq!(res.flags, hf, "{ctx}");
                }
            )*};
        }
        each_imm!(
            0x00 0x01 0x02 0x03 0x04 0x05 0x06 0x07 0x08 0x09 0x0a 0x0b 0x0c 0x0d 0x0e 0x0f
            0x10 0x14 0x18 0x1c 0x20 0x24 0x28 0x2c 0x30 0x34 0x38 0x3c 0x31 0x35 0x39 0x3d
            0x40 0x44 0x48 0x4c 0x41 0x45 0x49 0x4d 0x70 0x74 0x78 0x7c 0x73 0x77 0x7b 0x7f
        );
    }

    #[test]
    fn pcmpistri_finds_a_substring_in_the_interpreter() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.pcmpistri(xmm1, xmmword_ptr(0x20001), 0x0c).unwrap();
        a.hlt().unwrap();
        let mut m = sse_machine(&mut a);
        m.poke(0x20001, b"hello, world\0xyz");
        let needle = u128::from_le_bytes(*b"wor\0............");
        m.cpu.state_mut().sse.xmm[1] = [needle as u64, (needle >> 64) as u64];
        m.run();
        assert_eq!(m.gpr(1), 7, "\"wor\" at index 7 (an unaligned operand is allowed)");
        let f = m.cpu.rflags();
        assert_eq!(f & (fl::CF | fl::ZF | fl::SF | fl::OF), fl::CF | fl::ZF | fl::SF);
    }

    #[test]
    fn crc32_matches_the_host_for_every_width() {
        let mut r = Rng(0x0c0c_1111_2222_3333);
        for _ in 0..200 {
            let (c, d) = (r.next() as u32, r.next());
            // SAFETY: CRC32 on registers only (the test needs an SSE4.2 host).
            let host = unsafe {
                [
                    std::arch::x86_64::_mm_crc32_u8(c, d as u8),
                    std::arch::x86_64::_mm_crc32_u16(c, d as u16),
                    std::arch::x86_64::_mm_crc32_u32(c, d as u32),
                    std::arch::x86_64::_mm_crc32_u64(c as u64, d) as u32,
                ]
            };
            assert_eq!([crc32c(c, d, 1), crc32c(c, d, 2), crc32c(c, d, 4), crc32c(c, d, 8)], host);
        }
    }
}
