//! Port I/O: IN and OUT, with the protected-mode permission check against IOPL and the
//! TSS I/O permission bitmap (SDM Vol. 1 §19.5).

use crate::interp::cpu::Ctx;
use crate::interp::fault::{Fault, R};
use crate::interp::state::Mode;
use iced_x86::{Instruction, Mnemonic as M, OpKind};

impl Ctx<'_> {
    /// Checks that the current privilege may access `size` bytes at `port`, and notes
    /// the I/O breakpoints the access hits.
    pub fn check_io(&mut self, port: u16, size: u8) -> R<()> {
        self.note_io_access(port, size);
        let st = &self.c.st;
        let needs_bitmap = match st.mode {
            Mode::Real => false,
            Mode::V86 => true,
            _ => st.cpl > st.iopl(),
        };
        if !needs_bitmap {
            return Ok(());
        }
        let tr = st.tr;
        // Only a 32/64-bit available or busy TSS has a bitmap.
        if tr.attrs & 0x1f != 0x09 && tr.attrs & 0x1f != 0x0b || tr.limit < 0x67 {
            return Err(Fault::gp(0));
        }
        let base_off = self.read_lin_sys(tr.base + 0x66, 2)?;
        let byte = base_off + (port as u64 >> 3);
        if byte + 1 > tr.limit as u64 {
            return Err(Fault::gp(0));
        }
        let bits = self.read_lin_sys(tr.base + byte, 2)?;
        let mask = ((1u64 << size) - 1) << (port & 7);
        if bits & mask != 0 {
            return Err(Fault::gp(0));
        }
        Ok(())
    }

    pub(super) fn in_out(&mut self, ins: &Instruction) -> R<()> {
        let (port_op, data_op) = if ins.mnemonic() == M::In { (1, 0) } else { (0, 1) };
        let size = ins.op_register(data_op).size() as u8;
        let port =
            if ins.op_kind(port_op) == OpKind::Register { self.c.st.gpr[2] as u16 } else { ins.immediate8() as u16 };
        self.check_io(port, size)?;
        if ins.mnemonic() == M::In {
            let v = self.port_read(port, size) as u64;
            self.set_gpr(0, size, v);
        } else {
            let v = self.c.st.gpr[0] as u32;
            self.port_write(port, size, v);
        }
        self.c.brk = true;
        self.c.irq_check = true;
        Ok(())
    }
}
