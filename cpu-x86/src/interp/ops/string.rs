//! String instructions MOVS CMPS STOS LODS SCAS INS OUTS with REP/REPE/REPNE (SDM Vol. 2B
//! "REP/REPE/REPZ/REPNE/REPNZ"). A long REP runs in slices: after
//! [`SLICE`] iterations RIP stays on the instruction so interrupts can be taken and the
//! instruction resumes with the registers as the completed iterations left them. Each
//! iteration counts as a retired instruction (`Interpreter::retired`, counted as it happens so
//! the clock is exact per iteration).

use super::operand::{seg_of, string_addr_size};
use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use crate::interp::flags::{size_mask, FlagOp};
use crate::interp::state::{fl, Seg};
use iced_x86::{Instruction, Mnemonic as M, OpKind};

/// Iterations of a REP string instruction executed before yielding.
const SLICE: u32 = 4096;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Movs,
    Cmps,
    Stos,
    Lods,
    Scas,
    Ins,
    Outs,
}

impl Ctx<'_> {
    pub(super) fn string(&mut self, ins: &Instruction) -> R<()> {
        use M::*;
        let m = ins.mnemonic();
        let (kind, size) = match m {
            Movsb => (Kind::Movs, 1),
            Movsw => (Kind::Movs, 2),
            Movsd => (Kind::Movs, 4),
            Movsq => (Kind::Movs, 8),
            Cmpsb => (Kind::Cmps, 1),
            Cmpsw => (Kind::Cmps, 2),
            Cmpsd => (Kind::Cmps, 4),
            Cmpsq => (Kind::Cmps, 8),
            Stosb => (Kind::Stos, 1),
            Stosw => (Kind::Stos, 2),
            Stosd => (Kind::Stos, 4),
            Stosq => (Kind::Stos, 8),
            Lodsb => (Kind::Lods, 1),
            Lodsw => (Kind::Lods, 2),
            Lodsd => (Kind::Lods, 4),
            Lodsq => (Kind::Lods, 8),
            Scasb => (Kind::Scas, 1),
            Scasw => (Kind::Scas, 2),
            Scasd => (Kind::Scas, 4),
            Scasq => (Kind::Scas, 8),
            Insb => (Kind::Ins, 1),
            Insw => (Kind::Ins, 2),
            Insd => (Kind::Ins, 4),
            Outsb => (Kind::Outs, 1),
            Outsw => (Kind::Outs, 2),
            _ => (Kind::Outs, 4),
        };
        // The address size comes from whichever operand is a string memory operand.
        let mut asize = 2;
        let mut src_seg = Seg::Ds;
        for i in 0..ins.op_count() {
            let k = ins.op_kind(i);
            if matches!(
                k,
                OpKind::MemorySegSI
                    | OpKind::MemorySegESI
                    | OpKind::MemorySegRSI
                    | OpKind::MemoryESDI
                    | OpKind::MemoryESEDI
                    | OpKind::MemoryESRDI
            ) {
                asize = string_addr_size(k);
            }
            if matches!(k, OpKind::MemorySegSI | OpKind::MemorySegESI | OpKind::MemorySegRSI) {
                src_seg = seg_of(ins.memory_segment());
            }
        }
        let amask = size_mask(asize);
        let rep = ins.has_rep_prefix() || ins.has_repne_prefix();
        let cond = matches!(kind, Kind::Cmps | Kind::Scas);
        let port = self.c.st.gpr[2] as u16;
        if matches!(kind, Kind::Ins | Kind::Outs) {
            self.check_io(port, size)?;
        }
        let step = if self.flags() & fl::DF != 0 { (size as u64).wrapping_neg() } else { size as u64 };
        let mut done = 0u32;
        loop {
            if rep {
                if self.c.st.gpr[1] & amask == 0 {
                    return Ok(());
                }
                // Yield after a slice, or where the next iteration would pass the run's
                // deadline (the instruction itself retires as one more tick).
                if done == SLICE || (done > 0 && self.c.ticks() + 2 > self.c.deadline_ticks) {
                    self.c.st.rip = ins.ip();
                    return Ok(());
                }
                if done > 0 {
                    self.c.retired += 1;
                }
            }
            let si = self.c.st.gpr[6] & amask;
            let di = self.c.st.gpr[7] & amask;
            match kind {
                Kind::Movs => {
                    let v = self.read(src_seg, si, size)?;
                    self.write(Seg::Es, di, size, v)?;
                }
                Kind::Cmps => {
                    let a = self.read(src_seg, si, size)?;
                    let b = self.read(Seg::Es, di, size)?;
                    self.set_lazy(FlagOp::Sub, size, a, b, a.wrapping_sub(b) & size_mask(size));
                }
                Kind::Stos => {
                    let v = self.c.st.gpr[0] & size_mask(size);
                    self.write(Seg::Es, di, size, v)?;
                }
                Kind::Lods => {
                    let v = self.read(src_seg, si, size)?;
                    self.set_gpr(0, size, v);
                }
                Kind::Scas => {
                    let a = self.c.st.gpr[0] & size_mask(size);
                    let b = self.read(Seg::Es, di, size)?;
                    self.set_lazy(FlagOp::Sub, size, a, b, a.wrapping_sub(b) & size_mask(size));
                }
                Kind::Ins => {
                    self.probe_write(Seg::Es, di, size)?;
                    let v = self.port_read(port, size) as u64;
                    self.write(Seg::Es, di, size, v)?;
                    self.c.brk = true;
                    self.c.irq_check = true;
                }
                Kind::Outs => {
                    let v = self.read(src_seg, si, size)?;
                    self.port_write(port, size, v as u32);
                    self.c.brk = true;
                    self.c.irq_check = true;
                }
            }
            if matches!(kind, Kind::Movs | Kind::Cmps | Kind::Lods | Kind::Outs) {
                self.set_gpr(6, asize, si.wrapping_add(step));
            }
            if matches!(kind, Kind::Movs | Kind::Cmps | Kind::Stos | Kind::Scas | Kind::Ins) {
                self.set_gpr(7, asize, di.wrapping_add(step));
            }
            if !rep {
                return Ok(());
            }
            let cx = (self.c.st.gpr[1] & amask).wrapping_sub(1);
            self.set_gpr(1, asize, cx);
            done += 1;
            if cond {
                let zf = self.flags() & fl::ZF != 0;
                if (ins.has_repe_prefix() && !zf) || (ins.has_repne_prefix() && zf) {
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::interp::test_util::Machine;
    use iced_x86::code_asm::*;

    #[test]
    fn rep_movsb_and_repne_scasb() {
        let mut a = CodeAssembler::new(16).unwrap();
        a.mov(si, 0x3000).unwrap();
        a.mov(di, 0x4000).unwrap();
        a.mov(cx, 5).unwrap();
        a.cld().unwrap();
        a.rep().movsb().unwrap();
        a.mov(di, 0x4000).unwrap();
        a.mov(cx, 5).unwrap();
        a.mov(al, b'l' as u32).unwrap();
        a.repne().scasb().unwrap();
        a.hlt().unwrap();
        let mut m = Machine::real(&mut a);
        m.poke(0x3000, b"hello");
        m.run();
        assert_eq!(&m.peek::<5>(0x4000), b"hello");
        // Stops after the first 'l' (third byte): CX = 5 - 3, DI past it.
        assert_eq!((m.gpr(1) & 0xffff, m.gpr(7) & 0xffff), (2, 0x4003));
    }

    #[test]
    fn each_rep_iteration_counts_as_an_instruction_across_slices() {
        let mut a = CodeAssembler::new(16).unwrap();
        a.mov(cx, 5000).unwrap();
        a.mov(di, 0x4000).unwrap();
        a.rep().stosb().unwrap();
        a.mov(cx, 0).unwrap();
        a.rep().stosb().unwrap();
        a.hlt().unwrap();
        let mut m = Machine::real(&mut a);
        m.run();
        assert_eq!(m.gpr(1) & 0xffff, 0);
        // Two MOVs, 5000 iterations (more than a slice), a MOV, a REP with CX = 0, HLT.
        assert_eq!(m.cpu.retired, 2 + 5000 + 1 + 1 + 1);
    }
}
