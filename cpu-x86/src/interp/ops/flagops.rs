//! Flag instructions: LAHF SAHF CLC STC CMC CLD STD CLI STI SALC (SDM Vol. 2; CLI/STI
//! IOPL rules per Vol. 2A "CLI" table 3-7, without VME/PVI).

use crate::interp::cpu::Ctx;
use crate::interp::fault::{Fault, R};
use crate::interp::state::{fl, Mode};
use iced_x86::{Instruction, Mnemonic as M, Register};

/// Flags SAHF loads and LAHF stores.
const AH_FLAGS: u64 = fl::SF | fl::ZF | fl::AF | fl::PF | fl::CF;

impl Ctx<'_> {
    pub(super) fn flag_op(&mut self, ins: &Instruction) -> R<()> {
        match ins.mnemonic() {
            M::Lahf => {
                let f = self.flags();
                self.set_reg(Register::AH, (f & AH_FLAGS) | fl::FIXED1);
            }
            M::Sahf => {
                let ah = self.reg(Register::AH);
                self.set_arith_flags(AH_FLAGS, ah);
            }
            M::Clc => self.set_arith_flags(fl::CF, 0),
            M::Stc => self.set_arith_flags(fl::CF, fl::CF),
            M::Cmc => {
                let f = self.flags();
                self.set_arith_flags(fl::CF, f ^ fl::CF);
            }
            M::Cld => self.c.st.rflags &= !fl::DF,
            M::Std => self.c.st.rflags |= fl::DF,
            M::Cli | M::Sti => {
                let st = &self.c.st;
                let allowed = match st.mode {
                    Mode::Real => true,
                    Mode::V86 => st.iopl() == 3,
                    _ => st.cpl <= st.iopl(),
                };
                if !allowed {
                    return Err(Fault::gp(0));
                }
                if ins.mnemonic() == M::Cli {
                    self.c.st.rflags &= !fl::IF;
                } else if self.c.st.rflags & fl::IF == 0 {
                    self.c.st.rflags |= fl::IF;
                    self.c.st.int_shadow = true;
                    self.c.irq_check = true;
                }
            }
            _ => {
                if self.c.st.long64() {
                    return Err(Fault::ud());
                }
                let cf = self.flags() & fl::CF != 0;
                self.set_reg(Register::AL, if cf { 0xff } else { 0 });
            }
        }
        Ok(())
    }
}
