//! MOVBE (a byte-swapping load or store) and ADX (ADCX, ADOX: add with carry through CF
//! or OF alone, leaving the other flags), SDM Vol. 2A "ADCX", "ADOX", Vol. 2B "MOVBE".

use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use crate::interp::flags::size_mask;
use crate::interp::state::fl;
use iced_x86::{Instruction, Mnemonic as M, OpKind};

/// The low `size` bytes of `v` in reverse order.
pub fn swap_bytes(v: u64, size: u8) -> u64 {
    match size {
        2 => (v as u16).swap_bytes() as u64,
        4 => (v as u32).swap_bytes() as u64,
        _ => v.swap_bytes(),
    }
}

impl Ctx<'_> {
    /// MOVBE r, m and MOVBE m, r (16-bit register loads merge, as MOV does).
    pub(super) fn movbe(&mut self, ins: &Instruction) -> R<()> {
        let size = self.op_size(ins, 0);
        let v = self.read_op(ins, 1, size)?;
        if ins.op0_kind() == OpKind::Memory {
            self.write_op(ins, 0, size, swap_bytes(v, size))
        } else {
            self.set_reg(ins.op0_register(), swap_bytes(v, size));
            Ok(())
        }
    }

    /// ADCX (carry in and out through CF) and ADOX (through OF).
    pub(super) fn adx(&mut self, ins: &Instruction) -> R<()> {
        let size = self.op_size(ins, 0);
        let mask = size_mask(size);
        let flag = if ins.mnemonic() == M::Adcx { fl::CF } else { fl::OF };
        let carry_in = (self.flags() & flag != 0) as u128;
        let a = self.reg(ins.op0_register()) & mask;
        let b = self.read_op(ins, 1, size)?;
        let sum = a as u128 + b as u128 + carry_in;
        self.set_reg(ins.op0_register(), sum as u64 & mask);
        let carry_out = sum >> (size as u32 * 8) != 0;
        self.set_arith_flags(flag, if carry_out { flag } else { 0 });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::interp::state::fl;
    use crate::interp::test_util::Machine;
    use iced_x86::code_asm::*;

    #[test]
    fn movbe_swaps_on_load_and_store() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.mov(rax, 0x1122_3344_5566_7788u64).unwrap();
        a.movbe(qword_ptr(0x20000), rax).unwrap();
        a.movbe(ecx, dword_ptr(0x20000)).unwrap();
        a.mov(rdx, u64::MAX).unwrap();
        a.movbe(dx, word_ptr(0x20006)).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::long64(&mut a);
        m.run();
        assert_eq!(u64::from_le_bytes(m.peek(0x20000)), 0x8877_6655_4433_2211);
        assert_eq!(m.gpr(1), 0x1122_3344);
        assert_eq!(m.gpr(2), 0xffff_ffff_ffff_7788);
    }

    #[test]
    fn adcx_and_adox_use_one_flag_each() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.mov(rax, u64::MAX).unwrap();
        a.mov(rbx, u64::MAX).unwrap();
        a.stc().unwrap();
        a.adcx(rax, rbx).unwrap();
        a.mov(ecx, 5).unwrap();
        a.adox(ecx, ecx).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::long64(&mut a);
        m.run();
        assert_eq!(m.gpr(0), u64::MAX, "MAX + MAX + 1");
        assert_eq!(m.gpr(1), 10);
        assert_eq!(m.cpu.rflags() & (fl::CF | fl::OF), fl::CF);
    }
}
