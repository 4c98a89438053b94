//! Lazy arithmetic flags: instructions record their operands and result; CF, PF, AF,
//! ZF, SF and OF are computed only when something reads them.
//!
//! SDM Vol. 1 §3.4.3.1 and Appendix A (EFLAGS cross-reference).

use super::state::fl;

/// The operation whose flags are pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum FlagOp {
    /// No pending operation: RFLAGS holds the flags.
    #[default]
    None = 0,
    /// ADD (or ADC with carry-in 0).
    Add,
    /// ADC with carry-in 1.
    Adc1,
    /// SUB, CMP, NEG (or SBB with borrow-in 0).
    Sub,
    /// SBB with borrow-in 1.
    Sbb1,
    /// AND, OR, XOR, TEST: CF = OF = AF = 0.
    Logic,
    /// INC: like ADD 1 but CF is kept.
    Inc,
    /// DEC: like SUB 1 but CF is kept.
    Dec,
    /// SHL/SAL by a nonzero count (`src`): CF is the last bit shifted out, OF = MSB(result)
    /// XOR CF, AF cleared.
    Shl,
    /// SHR by a nonzero count: CF is the last bit shifted out, OF = MSB(dst) for a count
    /// of 1 (else 0), AF cleared.
    Shr,
    /// SAR by a nonzero count: CF is the last bit shifted out, OF = 0, AF cleared.
    Sar,
}

/// The pending flag-setting operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct LazyFlags {
    /// First operand.
    pub dst: u64,
    /// Second operand.
    pub src: u64,
    /// Result (masked to the operand size).
    pub res: u64,
    /// Operation.
    pub op: FlagOp,
    /// Operand size in bytes (1, 2, 4, 8).
    pub size: u8,
}

/// Mask of an operand of `size` bytes.
#[inline]
pub fn size_mask(size: u8) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (size as u32 * 8)) - 1
    }
}

/// Sign bit of an operand of `size` bytes.
#[inline]
pub fn sign_bit(size: u8) -> u64 {
    1u64 << (size as u32 * 8 - 1)
}

/// PF, ZF and SF of a result.
#[inline]
pub fn szp(res: u64, size: u8) -> u64 {
    let res = res & size_mask(size);
    let mut f = 0;
    if (res as u8).count_ones().is_multiple_of(2) {
        f |= fl::PF;
    }
    if res == 0 {
        f |= fl::ZF;
    }
    if res & sign_bit(size) != 0 {
        f |= fl::SF;
    }
    f
}

impl LazyFlags {
    /// The six arithmetic flags of the pending operation; `old` supplies CF for
    /// INC/DEC and everything when nothing is pending.
    #[inline]
    pub fn compute(&self, old: u64) -> u64 {
        if self.op == FlagOp::None {
            return old & fl::ARITH;
        }
        let (d, s, r, sz) = (self.dst, self.src, self.res, self.size);
        let sign = sign_bit(sz);
        let base = szp(r, sz);
        match self.op {
            FlagOp::None => old & fl::ARITH,
            FlagOp::Add | FlagOp::Adc1 | FlagOp::Inc => {
                let cf = match self.op {
                    FlagOp::Add => r < d,
                    FlagOp::Adc1 => r <= d,
                    _ => old & fl::CF != 0,
                };
                let of = (d ^ r) & (s ^ r) & sign != 0;
                base | (cf as u64 * fl::CF) | (of as u64 * fl::OF) | ((d ^ s ^ r) & fl::AF)
            }
            FlagOp::Sub | FlagOp::Sbb1 | FlagOp::Dec => {
                let cf = match self.op {
                    FlagOp::Sub => d < s,
                    FlagOp::Sbb1 => d <= s,
                    _ => old & fl::CF != 0,
                };
                let of = (d ^ s) & (d ^ r) & sign != 0;
                base | (cf as u64 * fl::CF) | (of as u64 * fl::OF) | ((d ^ s ^ r) & fl::AF)
            }
            FlagOp::Logic => base,
            FlagOp::Shl | FlagOp::Shr | FlagOp::Sar => {
                base | (self.carry(old) as u64 * fl::CF) | (self.overflow(old) as u64 * fl::OF)
            }
        }
    }

    /// CF alone (`old` supplies it when the operation keeps it).
    #[inline]
    pub fn carry(&self, old: u64) -> bool {
        let (d, s, r) = (self.dst, self.src, self.res);
        match self.op {
            FlagOp::None | FlagOp::Inc | FlagOp::Dec => old & fl::CF != 0,
            FlagOp::Add => r < d,
            FlagOp::Adc1 => r <= d,
            FlagOp::Sub => d < s,
            FlagOp::Sbb1 => d <= s,
            FlagOp::Logic => false,
            FlagOp::Shl => ((d as u128) << s >> (self.size as u32 * 8)) & 1 != 0,
            FlagOp::Shr => s <= 64 && (d >> (s - 1)) & 1 != 0,
            FlagOp::Sar => {
                let sh = 64 - self.size as u32 * 8;
                ((((d << sh) as i64) >> sh) >> (s - 1).min(63)) & 1 != 0
            }
        }
    }

    /// OF alone.
    #[inline]
    fn overflow(&self, old: u64) -> bool {
        let (d, s, r) = (self.dst, self.src, self.res);
        let sign = sign_bit(self.size);
        match self.op {
            FlagOp::None => old & fl::OF != 0,
            FlagOp::Add | FlagOp::Adc1 | FlagOp::Inc => (d ^ r) & (s ^ r) & sign != 0,
            FlagOp::Sub | FlagOp::Sbb1 | FlagOp::Dec => (d ^ s) & (d ^ r) & sign != 0,
            FlagOp::Logic | FlagOp::Sar => false,
            FlagOp::Shl => (r & sign != 0) != self.carry(old),
            FlagOp::Shr => s == 1 && d & sign != 0,
        }
    }

    /// Evaluates condition code `cc` (the low nibble of Jcc/SETcc/CMOVcc) computing only
    /// the flags it reads (SDM Vol. 1 App. B).
    #[inline]
    pub fn condition(&self, cc: u8, old: u64) -> bool {
        if self.op == FlagOp::None {
            return condition(cc, old);
        }
        let zf = || self.res == 0;
        let sf = || self.res & sign_bit(self.size) != 0;
        let r = match cc >> 1 {
            0 => self.overflow(old),
            1 => self.carry(old),
            2 => zf(),
            3 => self.carry(old) || zf(),
            4 => sf(),
            5 => szp(self.res, self.size) & fl::PF != 0,
            6 => sf() != self.overflow(old),
            _ => zf() || sf() != self.overflow(old),
        };
        r ^ (cc & 1 != 0)
    }
}

/// Evaluates condition code `cc` (the low nibble of Jcc/SETcc/CMOVcc) on `flags`.
#[inline]
pub fn condition(cc: u8, f: u64) -> bool {
    let cf = f & fl::CF != 0;
    let zf = f & fl::ZF != 0;
    let sf = f & fl::SF != 0;
    let of = f & fl::OF != 0;
    let pf = f & fl::PF != 0;
    let r = match cc >> 1 {
        0 => of,
        1 => cf,
        2 => zf,
        3 => cf || zf,
        4 => sf,
        5 => pf,
        6 => sf != of,
        _ => zf || sf != of,
    };
    r ^ (cc & 1 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(d: u64, s: u64, size: u8) -> u64 {
        let r = d.wrapping_add(s) & size_mask(size);
        LazyFlags { dst: d, src: s, res: r, op: FlagOp::Add, size }.compute(0)
    }

    fn sub(d: u64, s: u64, size: u8) -> u64 {
        let r = d.wrapping_sub(s) & size_mask(size);
        LazyFlags { dst: d, src: s, res: r, op: FlagOp::Sub, size }.compute(0)
    }

    #[test]
    fn add_flags_match_sdm_examples() {
        // 0x7F + 1 = 0x80: signed overflow, auxiliary carry, sign, no carry.
        assert_eq!(add(0x7f, 1, 1), fl::OF | fl::AF | fl::SF);
        // 0xFF + 1 = 0x00: carry, zero, AF, parity of 0 is even.
        assert_eq!(add(0xff, 1, 1), fl::CF | fl::ZF | fl::AF | fl::PF);
        assert_eq!(add(0xffff_ffff, 0, 4), fl::SF | fl::PF);
    }

    #[test]
    fn sub_flags_match_sdm_examples() {
        // 0 - 1 = 0xFFFF: borrow, sign, AF, parity of 0xFF even.
        assert_eq!(sub(0, 1, 2), fl::CF | fl::SF | fl::AF | fl::PF);
        // 0x8000 - 1 = 0x7FFF: overflow.
        assert_eq!(sub(0x8000, 1, 2), fl::OF | fl::AF | fl::PF);
    }

    #[test]
    fn lazy_conditions_match_the_materialised_flags() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let ops = [
            FlagOp::Add,
            FlagOp::Adc1,
            FlagOp::Sub,
            FlagOp::Sbb1,
            FlagOp::Logic,
            FlagOp::Inc,
            FlagOp::Dec,
            FlagOp::Shl,
            FlagOp::Shr,
            FlagOp::Sar,
        ];
        for _ in 0..20_000 {
            let size = [1u8, 2, 4, 8][(next() % 4) as usize];
            let op = ops[(next() % ops.len() as u64) as usize];
            let m = size_mask(size);
            // Small values too, so that equal operands and zero results come up.
            let pick = |v: u64| if v.is_multiple_of(3) { v % 4 } else { v };
            let (d, mut s) = (pick(next()) & m, pick(next()) & m);
            let res = match op {
                FlagOp::Shl | FlagOp::Shr | FlagOp::Sar => {
                    s = 1 + s % (size as u64 * 8 - 1);
                    next() & m
                }
                _ => next() & m,
            };
            let old = next() & fl::ARITH;
            let lazy = LazyFlags { dst: d, src: s, res, op, size };
            let flags = lazy.compute(old);
            assert_eq!(lazy.carry(old), flags & fl::CF != 0, "{lazy:?}");
            for cc in 0..16 {
                assert_eq!(lazy.condition(cc, old), condition(cc, flags), "cc {cc} {lazy:?}");
            }
        }
    }

    #[test]
    fn conditions() {
        assert!(condition(0x4, fl::ZF)); // E
        assert!(!condition(0x5, fl::ZF)); // NE
        assert!(condition(0xc, fl::SF)); // L: SF != OF
        assert!(condition(0xf, 0)); // G
        assert!(condition(0x6, fl::CF)); // BE
    }
}
