//! The x87 FPU: the register stack (TOP, tags), the availability checks (CR0.EM/TS/MP,
//! #NM), pending-exception delivery (#MF with CR0.NE), exception flag recording and the
//! dispatch into `x87_arith` (loads, stores, arithmetic, compares) and `x87_state`
//! (control words, environment, FNSAVE/FRSTOR, FXSAVE/FXRSTOR).
//! SDM Vol. 1 §8.1-8.5, Vol. 3A §2.5 (CR0), Table 12-8 (EM/MP/TS actions).

use crate::interp::cpu::Ctx;
use crate::interp::fault::{vec, Fault, R};
use crate::interp::fpu::F80;
use crate::interp::state::cr0;
use iced_x86::{Instruction, Mnemonic as M, Register};
use rustc_apfloat::{Float, Status};

/// x87 status word bits (SDM Vol. 1 §8.1.3).
pub mod fsw {
    /// Invalid operation.
    pub const IE: u16 = 1 << 0;
    /// Denormal operand.
    pub const DE: u16 = 1 << 1;
    /// Zero divide.
    pub const ZE: u16 = 1 << 2;
    /// Overflow.
    pub const OE: u16 = 1 << 3;
    /// Underflow.
    pub const UE: u16 = 1 << 4;
    /// Precision.
    pub const PE: u16 = 1 << 5;
    /// Stack fault.
    pub const SF: u16 = 1 << 6;
    /// Exception summary.
    pub const ES: u16 = 1 << 7;
    /// Condition code 0.
    pub const C0: u16 = 1 << 8;
    /// Condition code 1.
    pub const C1: u16 = 1 << 9;
    /// Condition code 2.
    pub const C2: u16 = 1 << 10;
    /// TOP field shift (bits 11-13).
    pub const TOP_SHIFT: u16 = 11;
    /// Condition code 3.
    pub const C3: u16 = 1 << 14;
    /// FPU busy (mirrors ES).
    pub const B: u16 = 1 << 15;
    /// All condition codes.
    pub const CC: u16 = C0 | C1 | C2 | C3;
}

/// Tag values (SDM Vol. 1 §8.1.7).
pub mod tag {
    /// Valid.
    pub const VALID: u16 = 0;
    /// Zero.
    pub const ZERO: u16 = 1;
    /// Special: NaN, infinity, denormal, unsupported.
    pub const SPECIAL: u16 = 2;
    /// Empty.
    pub const EMPTY: u16 = 3;
}

/// The real indefinite QNaN in double-extended format.
pub const INDEFINITE: u128 = 0xffff_c000_0000_0000_0000;

/// True for the x87 mnemonics this module dispatches (including WAIT/FWAIT).
pub fn is_x87(m: M) -> bool {
    matches!(
        m,
        M::Wait
            | M::F2xm1
            | M::Fabs
            | M::Fadd
            | M::Faddp
            | M::Fbld
            | M::Fbstp
            | M::Fchs
            | M::Fclex
            | M::Fcmovb
            | M::Fcmovbe
            | M::Fcmove
            | M::Fcmovnb
            | M::Fcmovnbe
            | M::Fcmovne
            | M::Fcmovnu
            | M::Fcmovu
            | M::Fcom
            | M::Fcomi
            | M::Fcomip
            | M::Fcomp
            | M::Fcompp
            | M::Fcos
            | M::Fdecstp
            | M::Fdisi
            | M::Fdiv
            | M::Fdivp
            | M::Fdivr
            | M::Fdivrp
            | M::Feni
            | M::Ffree
            | M::Ffreep
            | M::Fiadd
            | M::Ficom
            | M::Ficomp
            | M::Fidiv
            | M::Fidivr
            | M::Fild
            | M::Fimul
            | M::Fincstp
            | M::Finit
            | M::Fist
            | M::Fistp
            | M::Fisttp
            | M::Fisub
            | M::Fisubr
            | M::Fld
            | M::Fld1
            | M::Fldcw
            | M::Fldenv
            | M::Fldl2e
            | M::Fldl2t
            | M::Fldlg2
            | M::Fldln2
            | M::Fldpi
            | M::Fldz
            | M::Fmul
            | M::Fmulp
            | M::Fnclex
            | M::Fndisi
            | M::Fneni
            | M::Fninit
            | M::Fnop
            | M::Fnsave
            | M::Fnsetpm
            | M::Fnstcw
            | M::Fnstenv
            | M::Fnstsw
            | M::Fpatan
            | M::Fprem
            | M::Fprem1
            | M::Fptan
            | M::Frndint
            | M::Frstor
            | M::Fsave
            | M::Fscale
            | M::Fsetpm
            | M::Fsin
            | M::Fsincos
            | M::Fsqrt
            | M::Fst
            | M::Fstcw
            | M::Fstenv
            | M::Fstp
            | M::Fstsw
            | M::Fsub
            | M::Fsubp
            | M::Fsubr
            | M::Fsubrp
            | M::Ftst
            | M::Fucom
            | M::Fucomi
            | M::Fucomip
            | M::Fucomp
            | M::Fucompp
            | M::Fxam
            | M::Fxch
            | M::Fxrstor
            | M::Fxrstor64
            | M::Fxsave
            | M::Fxsave64
            | M::Fxtract
            | M::Fyl2x
            | M::Fyl2xp1
    )
}

/// The tag a register holding the 80-bit encoding `b` gets (SDM Vol. 1 §8.1.7):
/// zero, valid (a normal number), or special (NaN, infinity, denormal, unsupported).
pub fn tag_of(b: u128) -> u16 {
    let exp = (b >> 64) & 0x7fff;
    let mant = b as u64;
    match exp {
        0 if mant == 0 => tag::ZERO,
        0 | 0x7fff => tag::SPECIAL,
        _ if mant >> 63 == 1 => tag::VALID,
        _ => tag::SPECIAL,
    }
}

/// x87 exception flags for an apfloat status.
pub fn status_flags(s: Status) -> u16 {
    let mut f = 0;
    if s.contains(Status::INVALID_OP) {
        f |= fsw::IE;
    }
    if s.contains(Status::DIV_BY_ZERO) {
        f |= fsw::ZE;
    }
    if s.contains(Status::OVERFLOW) {
        f |= fsw::OE;
    }
    if s.contains(Status::UNDERFLOW) {
        f |= fsw::UE;
    }
    if s.contains(Status::INEXACT) {
        f |= fsw::PE;
    }
    f
}

/// Control instructions that neither check for pending exceptions nor update the
/// last-instruction pointers (SDM Vol. 1 §8.6, §8.1.8).
fn is_control(m: M) -> bool {
    matches!(
        m,
        M::Fninit
            | M::Fnclex
            | M::Fnstsw
            | M::Fnstcw
            | M::Fnstenv
            | M::Fnsave
            | M::Fldcw
            | M::Fldenv
            | M::Frstor
            | M::Fxsave
            | M::Fxsave64
            | M::Fxrstor
            | M::Fxrstor64
            | M::Fnop
            | M::Fneni
            | M::Fndisi
            | M::Fnsetpm
    )
}

impl Ctx<'_> {
    /// TOP of stack.
    pub(super) fn top(&self) -> usize {
        ((self.c.st.x87.fsw >> fsw::TOP_SHIFT) & 7) as usize
    }

    /// Sets TOP.
    pub(super) fn set_top(&mut self, t: usize) {
        let f = &mut self.c.st.x87.fsw;
        *f = (*f & !(7 << fsw::TOP_SHIFT)) | ((t as u16 & 7) << fsw::TOP_SHIFT);
    }

    /// Tag of physical register `p`.
    pub(super) fn phys_tag(&self, p: usize) -> u16 {
        (self.c.st.x87.ftw >> (2 * (p & 7))) & 3
    }

    /// Sets the tag of physical register `p`.
    pub(super) fn set_phys_tag(&mut self, p: usize, t: u16) {
        let w = &mut self.c.st.x87.ftw;
        *w = (*w & !(3 << (2 * (p & 7)))) | (t << (2 * (p & 7)));
    }

    /// Physical register of ST(i).
    pub(super) fn phys(&self, i: usize) -> usize {
        (self.top() + i) & 7
    }

    /// True when ST(i) is empty.
    pub(super) fn st_empty(&self, i: usize) -> bool {
        self.phys_tag(self.phys(i)) == tag::EMPTY
    }

    /// ST(i)'s 80-bit encoding (whatever the register holds, even when tagged empty).
    pub(super) fn st_bits(&self, i: usize) -> u128 {
        let mut w = [0u8; 16];
        w[..10].copy_from_slice(&self.c.st.x87.regs[self.phys(i)]);
        u128::from_le_bytes(w)
    }

    /// Writes the 80-bit encoding `b` to ST(i) and sets its tag.
    pub(super) fn set_st_bits(&mut self, i: usize, b: u128) {
        let p = self.phys(i);
        self.c.st.x87.regs[p].copy_from_slice(&b.to_le_bytes()[..10]);
        self.set_phys_tag(p, tag_of(b));
    }

    /// Writes an arithmetic result to ST(i).
    pub(super) fn set_st(&mut self, i: usize, v: F80) {
        self.set_st_bits(i, v.to_bits());
    }

    /// Pushes the encoding `b`; a full stack is a stack overflow (IE|SF, C1=1) that
    /// pushes the indefinite when IE is masked.
    pub(super) fn fpush_bits(&mut self, b: u128) -> R<()> {
        let new_top = (self.top() + 7) & 7;
        if self.phys_tag(new_top) != tag::EMPTY {
            self.c.st.x87.fsw |= fsw::C1;
            if self.x87_flags(fsw::IE | fsw::SF) {
                return Ok(());
            }
            self.set_top(new_top);
            self.set_st_bits(0, INDEFINITE);
            return Ok(());
        }
        self.set_top(new_top);
        self.set_st_bits(0, b);
        Ok(())
    }

    /// Pushes an arithmetic value.
    pub(super) fn fpush(&mut self, v: F80) -> R<()> {
        self.fpush_bits(v.to_bits())
    }

    /// Marks ST(0) empty and increments TOP.
    pub(super) fn fpop(&mut self) {
        let p = self.phys(0);
        self.set_phys_tag(p, tag::EMPTY);
        self.set_top(self.top() + 1);
    }

    /// Records exception flags in FSW; returns true when one of them is unmasked, in which case
    /// ES and B are set and the caller leaves its destination unchanged.
    pub(super) fn x87_flags(&mut self, flags: u16) -> bool {
        // An invalid operation or a zero divide outranks a denormal operand (what
        // hardware reports, e.g. denormal / 0 is ZE alone).
        let flags = if flags & (fsw::IE | fsw::ZE) != 0 { flags & !fsw::DE } else { flags };
        let x = &mut self.c.st.x87;
        x.fsw |= flags;
        let unmasked = flags & !x.fcw & 0x3f;
        if unmasked != 0 {
            x.fsw |= fsw::ES | fsw::B;
            true
        } else {
            false
        }
    }

    /// A stack underflow (reading an empty register): IE|SF with C1=0; returns true when
    /// IE is unmasked.
    pub(super) fn x87_underflow(&mut self) -> bool {
        self.c.st.x87.fsw &= !fsw::C1;
        self.x87_flags(fsw::IE | fsw::SF)
    }

    /// Sets the condition codes selected by `mask` to `value`.
    pub(super) fn set_cc(&mut self, mask: u16, value: u16) {
        let f = &mut self.c.st.x87.fsw;
        *f = (*f & !mask) | (value & mask);
    }

    /// The checks before an x87 instruction: #NM when CR0.EM or CR0.TS is set (WAIT
    /// only with TS and MP); a pending unmasked exception raises #MF before any
    /// non-control instruction (with CR0.NE; otherwise it is reported and ignored
    /// because the FERR#/IRQ 13 path is not modelled).
    fn x87_enter(&mut self, ins: &Instruction) -> R<()> {
        let m = ins.mnemonic();
        let c0 = self.c.st.cr0;
        let wait = m == M::Wait;
        let nm = if wait { c0 & cr0::TS != 0 && c0 & cr0::MP != 0 } else { c0 & (cr0::EM | cr0::TS) != 0 };
        if nm {
            return Err(Fault::exc(vec::NM));
        }
        if !is_control(m) && self.c.st.x87.fsw & fsw::ES != 0 {
            if c0 & cr0::NE != 0 {
                return Err(Fault::exc(vec::MF));
            }
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| {
                log::warn!("x87 exception pending with CR0.NE=0: FERR#/IRQ 13 is not modelled, continuing")
            });
        }
        if !is_control(m) && !wait {
            self.c.st.x87.fip = ins.ip();
            if ins.op_count() > 0 && ins.op0_kind() == iced_x86::OpKind::Memory {
                self.c.st.x87.fdp = self.ea(ins).1;
            }
        }
        Ok(())
    }

    /// ST index of x87 register operand `i`.
    pub(super) fn st_index(&self, ins: &Instruction, i: u32) -> usize {
        (ins.op_register(i) as usize).wrapping_sub(Register::ST0 as usize) & 7
    }

    /// Executes one x87 instruction.
    pub(super) fn x87(&mut self, ins: &Instruction) -> R<()> {
        self.x87_enter(ins)?;
        match ins.mnemonic() {
            M::Wait | M::Fnop | M::Fneni | M::Fndisi | M::Fnsetpm | M::Feni | M::Fdisi | M::Fsetpm => Ok(()),
            M::Fninit
            | M::Finit
            | M::Fnclex
            | M::Fclex
            | M::Fnstsw
            | M::Fstsw
            | M::Fnstcw
            | M::Fstcw
            | M::Fldcw
            | M::Fnstenv
            | M::Fstenv
            | M::Fldenv
            | M::Fnsave
            | M::Fsave
            | M::Frstor
            | M::Fxsave
            | M::Fxsave64
            | M::Fxrstor
            | M::Fxrstor64 => self.x87_state_op(ins),
            M::Ffree | M::Ffreep | M::Fincstp | M::Fdecstp | M::Fxch => self.x87_stack_op(ins),
            _ => self.x87_arith(ins),
        }
    }

    /// FFREE, FFREEP, FINCSTP, FDECSTP, FXCH.
    fn x87_stack_op(&mut self, ins: &Instruction) -> R<()> {
        match ins.mnemonic() {
            M::Ffree | M::Ffreep => {
                let p = self.phys(self.st_index(ins, 0));
                self.set_phys_tag(p, tag::EMPTY);
                if ins.mnemonic() == M::Ffreep {
                    self.set_top(self.top() + 1);
                }
            }
            M::Fincstp => {
                self.set_top(self.top() + 1);
                self.set_cc(fsw::C1, 0);
            }
            M::Fdecstp => {
                self.set_top(self.top() + 7);
                self.set_cc(fsw::C1, 0);
            }
            _ => {
                let i = if ins.op_count() == 2 { self.st_index(ins, 1) } else { 1 };
                if self.st_empty(0) || self.st_empty(i) {
                    if self.x87_underflow() {
                        return Ok(());
                    }
                    for j in [0, i] {
                        if self.st_empty(j) {
                            self.set_st_bits(j, INDEFINITE);
                        }
                    }
                }
                let (a, b) = (self.st_bits(0), self.st_bits(i));
                self.set_st_bits(0, b);
                self.set_st_bits(i, a);
                self.set_cc(fsw::C1, 0);
            }
        }
        Ok(())
    }
}
