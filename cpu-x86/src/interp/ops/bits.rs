//! Bit instructions: BT BTS BTR BTC, BSF BSR, TZCNT LZCNT POPCNT (SDM Vol. 2A "BT",
//! "BSF", "BSR", Vol. 2B "LZCNT", "POPCNT", "TZCNT").

use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use crate::interp::flags::{size_mask, szp};
use crate::interp::state::fl;
use iced_x86::{Instruction, Mnemonic as M, OpKind};

impl Ctx<'_> {
    pub(super) fn bit_test(&mut self, ins: &Instruction) -> R<()> {
        let size = self.op_size(ins, 0);
        let bits = size as u64 * 8;
        let raw = self.read_op(ins, 1, if ins.op1_kind() == OpKind::Register { size } else { 1 })?;
        let m = ins.mnemonic();
        let writes = m != M::Bt;
        let (value, bit) = if ins.op0_kind() == OpKind::Memory && ins.op1_kind() == OpKind::Register {
            // A register bit offset addresses memory beyond the operand (signed).
            let sign_shift = 64 - bits as u32;
            let off = ((raw << sign_shift) as i64) >> sign_shift;
            let (seg, ea) = self.ea(ins);
            let a = ea.wrapping_add(((off >> bits.trailing_zeros()) * size as i64) as u64)
                & size_mask(crate::interp::ops::operand::addr_size(ins));
            if writes {
                self.probe_write(seg, a, size)?;
            }
            let v = self.read(seg, a, size)?;
            let bit = (off as u64) & (bits - 1);
            let new = match m {
                M::Bts => v | 1 << bit,
                M::Btr => v & !(1 << bit),
                M::Btc => v ^ 1 << bit,
                _ => v,
            };
            if writes {
                self.write(seg, a, size, new)?;
            }
            (v, bit)
        } else {
            let bit = raw & (bits - 1);
            if writes {
                self.probe_op(ins, 0, size)?;
            }
            let v = self.read_op(ins, 0, size)?;
            let new = match m {
                M::Bts => v | 1 << bit,
                M::Btr => v & !(1 << bit),
                M::Btc => v ^ 1 << bit,
                _ => v,
            };
            if writes {
                self.write_op(ins, 0, size, new)?;
            }
            (v, bit)
        };
        self.set_arith_flags(fl::CF, (value >> bit) & 1);
        Ok(())
    }

    pub(super) fn bit_scan(&mut self, ins: &Instruction) -> R<()> {
        let size = self.op_size(ins, 0);
        let bits = size as u32 * 8;
        let s = self.read_op(ins, 1, size)?;
        let dst = ins.op_register(0);
        // Without LZCNT (CPUID.80000001H:ECX.ABM) its encoding, F3 0F BD, is BSR with an
        // ignored REP prefix.
        // Likewise TZCNT (F3 0F BC) is BSF without BMI1.
        let m = match ins.mnemonic() {
            M::Lzcnt if !self.c.st.model.has_lzcnt() => M::Bsr,
            M::Tzcnt if !self.c.st.model.has_bmi1() => M::Bsf,
            m => m,
        };
        match m {
            M::Bsf | M::Bsr => {
                if s == 0 {
                    // Destination unchanged (as on current Intel and AMD parts).
                    self.set_arith_flags(fl::ARITH, fl::ZF);
                } else {
                    let r = if m == M::Bsf { s.trailing_zeros() } else { 63 - s.leading_zeros() };
                    self.set_reg(dst, r as u64);
                    self.set_arith_flags(fl::ARITH, szp(r as u64, size) & !fl::ZF);
                }
            }
            M::Tzcnt | M::Lzcnt => {
                let r = if m == M::Tzcnt {
                    if s == 0 {
                        bits
                    } else {
                        s.trailing_zeros()
                    }
                } else {
                    s.leading_zeros() - (64 - bits)
                };
                self.set_reg(dst, r as u64);
                let v = if r == bits { fl::CF } else { 0 } | if r == 0 { fl::ZF } else { 0 };
                self.set_arith_flags(fl::ARITH, v);
            }
            _ => {
                let r = s.count_ones() as u64;
                self.set_reg(dst, r);
                self.set_arith_flags(fl::ARITH, if s == 0 { fl::ZF } else { 0 });
            }
        }
        Ok(())
    }
}
