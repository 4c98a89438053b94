//! x87 comparisons and classification: FCOM FCOMP FCOMPP FUCOM FUCOMP FUCOMPP FICOM
//! FICOMP FTST (C3 C2 C0), FCOMI FCOMIP FUCOMI FUCOMIP (ZF PF CF), FXAM (SDM Vol. 1
//! §8.3.6-8.3.7, Vol. 2 each instruction's page). Tested by the host differential tests
//! in `x87_arith`.

use super::x87::fsw;
use super::x87_arith::unsupported;
use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use crate::interp::fpu::F80;
use crate::interp::state::fl;
use iced_x86::{Instruction, Mnemonic as M, OpKind};
use rustc_apfloat::Float;

/// Condition codes C3 C2 C0 for a comparison of `a` with `b` (unordered 111).
fn compare_cc(a: F80, b: F80) -> u16 {
    if a.is_nan() || b.is_nan() {
        fsw::C3 | fsw::C2 | fsw::C0
    } else if a < b {
        fsw::C0
    } else if a == b {
        fsw::C3
    } else {
        0
    }
}

impl Ctx<'_> {
    /// FCOM/FUCOM/FICOM/FTST and their popping forms: C3 C2 C0 from the comparison.
    pub(super) fn fcom(&mut self, ins: &Instruction) -> R<()> {
        let m = ins.mnemonic();
        let mut flags = 0;
        let b = if m == M::Ftst {
            Some(F80::ZERO)
        } else if ins.op_count() > 0 && ins.op0_kind() == OpKind::Memory {
            Some(self.x87_load_mem(ins, &mut flags)?)
        } else {
            let i = match ins.op_count() {
                0 => 1,
                1 => self.st_index(ins, 0),
                _ => self.st_index(ins, 1),
            };
            self.st_checked(i)
        };
        let (Some(a), Some(b)) = (self.st_checked(0), b) else { return Ok(()) };
        let unordered_quiet = matches!(m, M::Fucom | M::Fucomp | M::Fucompp);
        if (a.is_nan() || b.is_nan()) && !unordered_quiet || a.is_signaling() || b.is_signaling() {
            flags |= fsw::IE;
        }
        if (a.is_denormal() || b.is_denormal()) && !a.is_nan() && !b.is_nan() {
            flags |= fsw::DE;
        }
        if self.x87_flags(flags) {
            return Ok(());
        }
        self.set_cc(fsw::CC, compare_cc(a, b));
        match m {
            M::Fcomp | M::Fucomp | M::Ficomp => self.fpop(),
            M::Fcompp | M::Fucompp => {
                self.fpop();
                self.fpop();
            }
            _ => {}
        }
        Ok(())
    }

    /// FCOMI/FUCOMI(P): ZF PF CF from comparing ST(0) with ST(i).
    pub(super) fn fcomi(&mut self, ins: &Instruction) -> R<()> {
        self.set_cc(fsw::C1, 0);
        let i = self.st_index(ins, ins.op_count().saturating_sub(1));
        let (Some(a), Some(b)) = (self.st_checked(0), self.st_checked(i)) else { return Ok(()) };
        let quiet_form = matches!(ins.mnemonic(), M::Fucomi | M::Fucomip);
        let mut flags = 0;
        if (a.is_nan() || b.is_nan()) && !quiet_form || a.is_signaling() || b.is_signaling() {
            flags |= fsw::IE;
        }
        if (a.is_denormal() || b.is_denormal()) && !a.is_nan() && !b.is_nan() {
            flags |= fsw::DE;
        }
        if self.x87_flags(flags) {
            return Ok(());
        }
        let cc = compare_cc(a, b);
        let v = (if cc & fsw::C3 != 0 { fl::ZF } else { 0 })
            | (if cc & fsw::C2 != 0 { fl::PF } else { 0 })
            | (if cc & fsw::C0 != 0 { fl::CF } else { 0 });
        self.set_arith_flags(fl::ARITH, v);
        if matches!(ins.mnemonic(), M::Fcomip | M::Fucomip) {
            self.fpop();
        }
        Ok(())
    }

    /// FXAM: the class of ST(0) in C3 C2 C0 and its sign in C1.
    pub(super) fn fxam(&mut self) {
        let b = self.st_bits(0);
        let sign = if b >> 79 & 1 != 0 { fsw::C1 } else { 0 };
        let (exp, mant) = ((b >> 64) & 0x7fff, b as u64);
        let class = if self.st_empty(0) {
            fsw::C3 | fsw::C0
        } else if unsupported(b) {
            0
        } else if exp == 0x7fff {
            if mant << 1 == 0 {
                fsw::C2 | fsw::C0
            } else {
                fsw::C0
            }
        } else if exp == 0 {
            if mant == 0 {
                fsw::C3
            } else {
                fsw::C3 | fsw::C2
            }
        } else {
            fsw::C2
        };
        self.set_cc(fsw::CC, class | sign);
    }
}
