//! x87 data transfer and conversions: FLD FILD FBLD and the constants (FLD1 FLDZ FLDPI
//! FLDL2E FLDL2T FLDLG2 FLDLN2), FST FSTP FIST FISTP FISTTP FBSTP, FCMOVcc (SDM Vol. 1
//! §8.3.3-8.3.4, Vol. 2 each instruction's page). Register and m80 moves copy the
//! 80-bit encoding as is; float, integer and BCD stores round with FCW.RC and set C1
//! when they rounded up. Tested by the host differential tests in `x87_arith`.

use super::sse_float::{Bits, SseFloat};
use super::x87::{fsw, status_flags};
use super::x87_arith::QUIET;
use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use crate::interp::fpu::{bcd_to_parts, parts_to_bcd, F80};
use crate::interp::state::fl;
use iced_x86::{Instruction, MemorySize, Mnemonic as M, OpKind};
use rustc_apfloat::ieee::{Double, Single};
use rustc_apfloat::{Float, FloatConvert, Round, Status, StatusAnd};

/// Widens an SSE-format value to double extended (exact; NaNs keep their payload's top
/// bits and are quieted with IE for a signalling one).
fn widen<F: SseFloat + FloatConvert<F80>>(bits: u64, flags: &mut u16) -> F80 {
    let v = F::from_bits(bits as u128);
    if v.is_denormal() {
        *flags |= fsw::DE;
    }
    if v.is_nan() {
        if v.is_signaling() {
            *flags |= fsw::IE;
        }
        let sign = (bits >> (F::WIDTH - 1)) as u128 & 1;
        let frac = (bits & ((1 << F::FRAC) - 1)) as u128;
        return F80::from_bits(sign << 79 | 0x7fff << 64 | 1 << 63 | frac << (63 - F::FRAC) | QUIET);
    }
    let mut loses = false;
    v.convert(&mut loses).value
}

/// Narrows to an SSE format with rounding (NaNs truncate their payload, quieted).
fn narrow<F: SseFloat>(v: F80, round: Round, flags: &mut u16) -> u64
where
    F80: FloatConvert<F>,
{
    if v.is_nan() {
        if v.is_signaling() {
            *flags |= fsw::IE;
        }
        let b = v.to_bits();
        let sign = (b >> 79) as u64 & 1;
        let frac = ((b & ((1 << 63) - 1)) >> (63 - F::FRAC)) as u64 | 1 << (F::FRAC - 1);
        let exp = (1u64 << (F::WIDTH - 1 - F::FRAC)) - 1;
        return sign << (F::WIDTH - 1) | exp << F::FRAC | frac;
    }
    let mut loses = false;
    let r: StatusAnd<F> = v.convert_r(round, &mut loses);
    *flags |= status_flags(r.status);
    if r.status.contains(Status::INEXACT) {
        let t: StatusAnd<F> = v.convert_r(Round::TowardZero, &mut loses);
        if !r.value.abs().bitwise_eq(t.value.abs()) {
            *flags |= fsw::C1;
        }
    }
    if r.status == Status::INEXACT && r.value.is_largest() && Bits::<F>::overflows(v) {
        *flags |= fsw::OE;
    }
    if r.status == Status::INEXACT && r.value.is_smallest_normalized() {
        const K: i32 = 64;
        let scaled: StatusAnd<F> = v.scalbn(K).convert_r(round, &mut loses);
        if Bits::<F>::tiny(scaled.value, K) {
            *flags |= fsw::UE;
        }
    }
    r.value.to_bits() as u64
}

/// The constant loaded by FLD1/FLDZ/FLDPI/..., rounded with `round`: the 64-bit
/// truncation of each constant's binary expansion and whether the dropped tail is
/// above one half (digits derived from high-precision pi, ln 2, log2 e, log2 10 and
/// log10 2; SDM Vol. 1 §8.3.8).
pub(super) fn constant(m: M, round: Round) -> F80 {
    let (exp, mant, tail_over_half): (u128, u128, bool) = match m {
        M::Fld1 => (0x3fff, 1 << 63, false),
        M::Fldz => return F80::ZERO,
        M::Fldpi => (0x4000, 0xc90f_daa2_2168_c234, true),
        M::Fldl2e => (0x3fff, 0xb8aa_3b29_5c17_f0bb, true),
        M::Fldl2t => (0x4000, 0xd49a_784b_cd1b_8afe, false),
        M::Fldlg2 => (0x3ffd, 0x9a20_9a84_fbcf_f798, true),
        _ => (0x3ffe, 0xb172_17f7_d1cf_79ab, true),
    };
    let inexact = m != M::Fld1;
    let up = inexact
        && match round {
            Round::TowardPositive => true,
            Round::NearestTiesToEven | Round::NearestTiesToAway => tail_over_half,
            _ => false,
        };
    F80::from_bits(exp << 64 | (mant + up as u128))
}

/// The low bytes of `v` in a 10-byte buffer.
fn pad(v: u64) -> [u8; 10] {
    let mut b = [0u8; 10];
    b[..8].copy_from_slice(&v.to_le_bytes());
    b
}

/// `v` rounded to a `bits`-wide signed integer; NaN or out of range is IE with the
/// integer indefinite.
fn to_int(v: F80, bits: usize, round: Round, flags: &mut u16) -> u64 {
    let mut exact = false;
    let r = v.to_i128_r(bits, round, &mut exact);
    if v.is_nan() || r.status.contains(Status::INVALID_OP) {
        *flags |= fsw::IE;
        return 1 << (bits - 1);
    }
    if !exact {
        *flags |= fsw::PE;
        if r.value.unsigned_abs() > v.to_i128_r(bits, Round::TowardZero, &mut exact).value.unsigned_abs() {
            *flags |= fsw::C1;
        }
    }
    r.value as u64
}

/// FBSTP's packed BCD image (IE with the BCD indefinite beyond 18 digits).
fn to_bcd(v: F80, round: Round, flags: &mut u16) -> [u8; 10] {
    let mut exact = false;
    let r = v.to_i128_r(64, round, &mut exact);
    if v.is_nan() || r.status.contains(Status::INVALID_OP) || r.value.unsigned_abs() >= 1_000_000_000_000_000_000 {
        *flags |= fsw::IE;
        return [0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0xff];
    }
    if !exact {
        *flags |= fsw::PE;
    }
    parts_to_bcd(v.is_negative(), r.value.unsigned_abs() as u64)
}

impl Ctx<'_> {
    /// Reads the memory operand as a double-extended value (float, integer or BCD).
    pub(super) fn x87_load_mem(&mut self, ins: &Instruction, flags: &mut u16) -> R<F80> {
        let (seg, off) = self.ea(ins);
        Ok(match ins.memory_size() {
            MemorySize::Float32 => widen::<Single>(self.read(seg, off, 4)?, flags),
            MemorySize::Float64 => widen::<Double>(self.read(seg, off, 8)?, flags),
            MemorySize::Int16 => F80::from_i128(self.read(seg, off, 2)? as i16 as i128).value,
            MemorySize::Int32 => F80::from_i128(self.read(seg, off, 4)? as i32 as i128).value,
            MemorySize::Int64 => F80::from_i128(self.read(seg, off, 8)? as i64 as i128).value,
            MemorySize::Bcd => {
                let lo = self.read(seg, off, 8)?.to_le_bytes();
                let hi = self.read(seg, off.wrapping_add(8), 2)?.to_le_bytes();
                let mut b = [0u8; 10];
                b[..8].copy_from_slice(&lo);
                b[8..].copy_from_slice(&hi[..2]);
                let (neg, mag) = bcd_to_parts(&b);
                let v = F80::from_u128(mag as u128).value;
                if neg {
                    -v
                } else {
                    v
                }
            }
            s => return Err(self.unsupported(format!("x87 memory operand {s:?}"))),
        })
    }

    /// FLD/FILD/FBLD: push a memory operand or a copy of ST(i).
    pub(super) fn fld(&mut self, ins: &Instruction) -> R<()> {
        self.set_cc(fsw::C1, 0);
        let mut flags = 0;
        let v = if ins.op0_kind() != OpKind::Memory {
            match self.st_raw_checked(self.st_index(ins, 0)) {
                Some(v) => v,
                None => return Ok(()),
            }
        } else if ins.memory_size() == MemorySize::Float80 {
            let (seg, off) = self.ea(ins);
            let lo = self.read(seg, off, 8)? as u128;
            let hi = self.read(seg, off.wrapping_add(8), 2)? as u128;
            hi << 64 | lo
        } else {
            self.x87_load_mem(ins, &mut flags)?.to_bits()
        };
        if flags != 0 && self.x87_flags(flags) {
            return Ok(());
        }
        self.fpush_bits(v)
    }

    /// FST/FSTP/FIST/FISTP/FISTTP/FBSTP.
    pub(super) fn fst(&mut self, ins: &Instruction) -> R<()> {
        let m = ins.mnemonic();
        let pop = matches!(m, M::Fstp | M::Fistp | M::Fisttp | M::Fbstp);
        self.set_cc(fsw::C1, 0);
        let mut flags = 0;
        let round = if m == M::Fisttp { Round::TowardZero } else { self.x87_round() };
        let raw_move = ins.op0_kind() != OpKind::Memory || ins.memory_size() == MemorySize::Float80;
        if raw_move {
            let Some(b) = self.st_raw_checked(0) else { return Ok(()) };
            if ins.op0_kind() != OpKind::Memory {
                let i = self.st_index(ins, 0);
                self.set_st_bits(i, b);
            } else {
                let (seg, off) = self.ea(ins);
                self.probe_write(seg, off, 10)?;
                self.write(seg, off, 8, b as u64)?;
                self.write(seg, off.wrapping_add(8), 2, (b >> 64) as u64 & 0xffff)?;
            }
        } else {
            let Some(v) = self.st_checked(0) else { return Ok(()) };
            let (seg, off) = self.ea(ins);
            let (bytes, size): ([u8; 10], u8) = match ins.memory_size() {
                MemorySize::Float32 => (pad(narrow::<Single>(v, round, &mut flags)), 4),
                MemorySize::Float64 => (pad(narrow::<Double>(v, round, &mut flags)), 8),
                MemorySize::Int16 => (pad(to_int(v, 16, round, &mut flags)), 2),
                MemorySize::Int32 => (pad(to_int(v, 32, round, &mut flags)), 4),
                MemorySize::Int64 => (pad(to_int(v, 64, round, &mut flags)), 8),
                MemorySize::Bcd => (to_bcd(v, round, &mut flags), 10),
                s => return Err(self.unsupported(format!("x87 store to {s:?}"))),
            };
            if self.x87_flags(flags) && flags & fsw::IE != 0 {
                return Ok(());
            }
            if size == 10 {
                self.probe_write(seg, off, 10)?;
                self.write(seg, off, 8, u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8])))?;
                self.write(seg, off.wrapping_add(8), 2, u16::from_le_bytes([bytes[8], bytes[9]]) as u64)?;
            } else {
                self.write(seg, off, size, u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8])))?;
            }
        }
        if pop {
            self.fpop();
        }
        Ok(())
    }

    /// FCMOVcc ST(0), ST(i).
    pub(super) fn fcmov(&mut self, ins: &Instruction) -> R<()> {
        self.set_cc(fsw::C1, 0);
        let f = self.flags();
        let cond = match ins.mnemonic() {
            M::Fcmovb => f & fl::CF != 0,
            M::Fcmove => f & fl::ZF != 0,
            M::Fcmovbe => f & (fl::CF | fl::ZF) != 0,
            M::Fcmovu => f & fl::PF != 0,
            M::Fcmovnb => f & fl::CF == 0,
            M::Fcmovne => f & fl::ZF == 0,
            M::Fcmovnbe => f & (fl::CF | fl::ZF) == 0,
            _ => f & fl::PF == 0,
        };
        let i = self.st_index(ins, 1);
        let (Some(_), Some(b)) = (self.st_raw_checked(0), self.st_raw_checked(i)) else { return Ok(()) };
        if cond {
            self.set_st_bits(0, b);
        }
        Ok(())
    }
}
