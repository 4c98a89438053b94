//! SSE3 (SDM Vol. 2, each instruction's page): ADDSUBPS/PD, HADDPS/PD, HSUBPS/PD,
//! MOVSLDUP, MOVSHDUP, MOVDDUP and LDDQU. The arithmetic goes lane by lane through the
//! SSE arithmetic (`sse_float::binop`), so rounding, NaNs and MXCSR flags follow the same
//! rules as ADDPS. FISTTP, also SSE3, lives with the x87 stores.

use super::sse::Xmm;
use super::sse_float::{binop, join, lanes, FpOp, SseFloat};
use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use iced_x86::{Instruction, Mnemonic as M};
use rustc_apfloat::ieee::{Double, Single};

/// True for the SSE3 mnemonics handled here.
pub(super) fn is_sse3(m: M) -> bool {
    matches!(
        m,
        M::Addsubps
            | M::Addsubpd
            | M::Haddps
            | M::Haddpd
            | M::Hsubps
            | M::Hsubpd
            | M::Movsldup
            | M::Movshdup
            | M::Movddup
            | M::Lddqu
    )
}

/// MOVSLDUP, MOVSHDUP and MOVDDUP of `s` (LDDQU: `s` itself).
pub fn dup(m: M, s: Xmm) -> Xmm {
    match m {
        M::Movsldup => [(s[0] & 0xffff_ffff) * 0x1_0000_0001, (s[1] & 0xffff_ffff) * 0x1_0000_0001],
        M::Movshdup => [(s[0] >> 32) * 0x1_0000_0001, (s[1] >> 32) * 0x1_0000_0001],
        M::Movddup => [s[0], s[0]],
        _ => s,
    }
}

/// ADDSUB/HADD/HSUB in format `F` on `d` and `s` under MXCSR `csr`.
pub fn arith<F: SseFloat>(m: M, d: Xmm, s: Xmm, csr: u32, flags: &mut u32) -> Xmm {
    let (dl, n) = lanes::<F>(d);
    let (sl, _) = lanes::<F>(s);
    let mut out = [0u64; 4];
    for (i, o) in out.iter_mut().enumerate().take(n) {
        *o = match m {
            M::Addsubps | M::Addsubpd => {
                let op = if i % 2 == 0 { FpOp::Sub } else { FpOp::Add };
                binop::<F>(op, dl[i], sl[i], csr, flags)
            }
            _ => {
                let op = if matches!(m, M::Haddps | M::Haddpd) { FpOp::Add } else { FpOp::Sub };
                let (v, j) = if i < n / 2 { (&dl, i) } else { (&sl, i - n / 2) };
                binop::<F>(op, v[2 * j], v[2 * j + 1], csr, flags)
            }
        };
    }
    join::<F>(out)
}

impl Ctx<'_> {
    /// The SSE3 instructions.
    pub(super) fn sse3(&mut self, ins: &Instruction) -> R<()> {
        self.sse_check()?;
        let m = ins.mnemonic();
        let s = self.xmm_op(ins, 1)?;
        let r = self.xmm_dst(ins)?;
        let out = match m {
            M::Movsldup | M::Movshdup | M::Movddup | M::Lddqu => dup(m, s),
            _ => {
                let csr = self.c.st.sse.mxcsr;
                let mut flags = 0;
                let d = self.xmm(r);
                let out = if matches!(m, M::Addsubps | M::Haddps | M::Hsubps) {
                    arith::<Single>(m, d, s, csr, &mut flags)
                } else {
                    arith::<Double>(m, d, s, csr, &mut flags)
                };
                self.simd_exceptions(flags)?;
                out
            }
        };
        self.set_xmm(r, out);
        Ok(())
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// `insn xmm0, xmm1` on the host with MXCSR = `csr`: (xmm0, MXCSR after).
    macro_rules! host {
        ($insn:literal, $a:expr, $b:expr, $csr:expr) => {{
            let mut v: [u64; 4] = [$a[0], $a[1], $b[0], $b[1]];
            let mut csr: u32 = $csr;
            // SAFETY: loads MXCSR and XMM0/XMM1, runs one SSE3 instruction (exceptions
            // masked by the caller's MXCSR), stores XMM0 and MXCSR, restores the default
            // MXCSR; the XMM registers are declared clobbered.
            unsafe {
                std::arch::asm!(
                    "ldmxcsr [{c}]", "movdqu xmm0, [{v}]", "movdqu xmm1, [{v} + 16]", $insn,
                    "movdqu [{v}], xmm0", "stmxcsr [{c}]", "mov dword ptr [{v} + 16], 0x1f80", "ldmxcsr [{v} + 16]",
                    v = in(reg) v.as_mut_ptr(), c = in(reg) &mut csr, out("xmm0") _, out("xmm1") _,
                );
            }
            ([v[0], v[1]], csr)
        }};
    }

    /// Random floats biased to specials (zeros, infinities, NaNs, denormals, huge).
    fn float_bits(st: &mut u64, single: bool) -> u64 {
        *st ^= *st << 13;
        *st ^= *st >> 7;
        *st ^= *st << 17;
        let x = *st;
        let (e, f) = if single { (0x7f80_0000u64, 0x007f_ffffu64) } else { (0x7ff0 << 48, (1 << 52) - 1) };
        let sign = if single { 1 << 31 } else { 1 << 63 } & x;
        let one = f + 1;
        match x % 8 {
            0 => sign | e,
            1 => sign | e | (x >> 20 & f) | 1,
            2 => sign | (x >> 20 & f),
            3 => sign | (e - one) | (x & f),
            _ => x & if single { 0xffff_ffff } else { u64::MAX },
        }
    }

    #[test]
    fn random_sse3_ops_match_the_host_in_every_rounding_mode() {
        let mut st = 0x3333_0123_4567_89abu64;
        for i in 0..2000 {
            let csr = 0x1f80 | ((i % 4) << 13) | if i % 7 == 0 { 0x8040 } else { 0 };
            let f32v = |st: &mut u64| {
                let l: [u64; 4] = std::array::from_fn(|_| float_bits(st, true));
                [l[0] | l[1] << 32, l[2] | l[3] << 32]
            };
            let (a, b) = (f32v(&mut st), f32v(&mut st));
            let (c, d) = (
                [float_bits(&mut st, false), float_bits(&mut st, false)],
                [float_bits(&mut st, false), float_bits(&mut st, false)],
            );
            for (m, h, x, y) in [
                (M::Addsubps, host!("addsubps xmm0, xmm1", a, b, csr), a, b),
                (M::Haddps, host!("haddps xmm0, xmm1", a, b, csr), a, b),
                (M::Hsubps, host!("hsubps xmm0, xmm1", a, b, csr), a, b),
                (M::Addsubpd, host!("addsubpd xmm0, xmm1", c, d, csr), c, d),
                (M::Haddpd, host!("haddpd xmm0, xmm1", c, d, csr), c, d),
                (M::Hsubpd, host!("hsubpd xmm0, xmm1", c, d, csr), c, d),
            ] {
                let mut flags = 0;
                let ours = if matches!(m, M::Addsubps | M::Haddps | M::Hsubps) {
                    arith::<Single>(m, x, y, csr, &mut flags)
                } else {
                    arith::<Double>(m, x, y, csr, &mut flags)
                };
                assert_eq!((ours, csr | flags), h, "{m:?} {x:x?} {y:x?} csr={csr:x}");
            }
        }
    }
}
