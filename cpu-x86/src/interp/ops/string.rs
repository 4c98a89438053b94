//! String instructions MOVS CMPS STOS LODS SCAS INS OUTS with REP/REPE/REPNE (SDM Vol. 2B
//! "REP/REPE/REPZ/REPNE/REPNZ"). A long REP runs in slices: after
//! [`SLICE`] iterations RIP stays on the instruction so interrupts can be taken and the
//! instruction resumes with the registers as the completed iterations left them. Each
//! iteration counts as a retired instruction (`Interpreter::retired`, counted as it happens so
//! the clock is exact per iteration).

use super::operand::{is_string_operand, seg_of, string_addr_size};
use crate::interp::access::store;
use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use crate::interp::flags::{size_mask, FlagOp};
use crate::interp::mmu::Acc;
use crate::interp::state::{cr0, fl, Seg};
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
            if is_string_operand(k) {
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
        let step = if self.c.st.rflags & fl::DF != 0 { (size as u64).wrapping_neg() } else { size as u64 };
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
                if matches!(kind, Kind::Movs | Kind::Stos) && step == size as u64 {
                    // The iterations this execution may still do: the slice, and the
                    // deadline counted from the instruction's start.
                    let start = self.c.ticks() - u64::from(done.saturating_sub(1));
                    let allowed = self.c.deadline_ticks.saturating_sub(start).clamp(1, SLICE as u64);
                    let n_max = (self.c.st.gpr[1] & amask).min(allowed.saturating_sub(done as u64));
                    let si = self.c.st.gpr[6] & amask;
                    let di = self.c.st.gpr[7] & amask;
                    if let Some(n) = self.rep_bulk(kind == Kind::Movs, size, src_seg, si, di, n_max, amask) {
                        self.c.retired += if done > 0 { n } else { n - 1 };
                        if kind == Kind::Movs {
                            self.set_gpr(6, asize, si.wrapping_add(n * size as u64));
                        }
                        self.set_gpr(7, asize, di.wrapping_add(n * size as u64));
                        let cx = (self.c.st.gpr[1] & amask) - n;
                        self.set_gpr(1, asize, cx);
                        done += n as u32;
                        continue;
                    }
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

impl Ctx<'_> {
    /// Does up to `n_max` (at least 2) forward iterations of REP MOVS (`movs`) or REP STOS
    /// at once through host pointers, when the elements lie in one RAM page on each side
    /// that the TLB already maps for the access, the segment checks pass for the first and
    /// the last element, no alignment check applies and nothing watches memory. Returns
    /// how many it did; `None` leaves the next iteration to the element-by-element path
    /// (which translates, faults and notes code writes as usual).
    #[allow(clippy::too_many_arguments)]
    fn rep_bulk(
        &mut self,
        movs: bool,
        size: u8,
        src_seg: Seg,
        si: u64,
        di: u64,
        n_max: u64,
        amask: u64,
    ) -> Option<u64> {
        let c = &self.c;
        let watched = (c.dbg.read | c.dbg.write) != 0 || c.hooks.watch_reads || c.hooks.watch_writes;
        let ac = c.st.cpl == 3 && c.st.cr0 & cr0::AM != 0 && c.st.rflags & fl::AC != 0;
        if n_max < 2 || watched || ac || c.hooks.trace.is_some() {
            return None;
        }
        let user = c.st.cpl == 3;
        let sz = size as u64;
        // Elements from `off` that fit before the page end and before the offset wraps.
        let fits = |lin: u64, off: u64| ((0x1000 - (lin & 0xfff)) / sz).min((amask - off) / sz + 1);
        let dlin = self.linear(Seg::Es, di, size, Acc::Write).ok()?;
        let mut n = n_max.min(fits(dlin, di));
        let mut slin = 0;
        if movs {
            slin = self.linear(src_seg, si, size, Acc::Read).ok()?;
            n = n.min(fits(slin, si));
        }
        if n < 2 {
            return None;
        }
        let last = (n - 1) * sz;
        if self.linear(Seg::Es, di + last, size, Acc::Write).ok()? != dlin + last {
            return None;
        }
        let dst = self.c.tlb.write_host(dlin, user)? + (dlin & 0xfff) as usize;
        if movs {
            if self.linear(src_seg, si + last, size, Acc::Read).ok()? != slin + last {
                return None;
            }
            let src = self.c.tlb.read_host(slin, user)? + (slin & 0xfff) as usize;
            let len = (n * sz) as usize;
            // Forward element order replicates when the destination starts inside the
            // source; a plain copy does not, so that case goes element by element.
            if dst > src && dst < src + len {
                return None;
            }
            // SAFETY: both ranges lie inside guest RAM pages the TLB maps (checked above:
            // the elements fit before each page's end), the destination page is writable
            // RAM without decoded code, and `copy` allows overlap.
            unsafe { std::ptr::copy(src as *const u8, dst as *mut u8, len) };
        } else {
            let v = self.c.st.gpr[0];
            for i in 0..n as usize {
                // SAFETY: as above, each element lies inside the writable destination page.
                unsafe { store(dst + i * size as usize, size, v) };
            }
        }
        Some(n)
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

    /// Forward element-by-element REP MOVS of `n` elements of `size` bytes in `mem`.
    fn model_movs(mem: &mut [u8], src: usize, dst: usize, n: usize, size: usize) {
        for i in 0..n * size {
            mem[dst + i] = mem[src + i];
        }
    }

    #[test]
    fn rep_movs_and_stos_match_element_by_element_copies() {
        // 32-bit flat code: page-crossing MOVSB, an overlapping MOVSW that replicates
        // (destination inside the source), an overlapping MOVSD the other way, a
        // page-crossing STOSD.
        let mut a = CodeAssembler::new(32).unwrap();
        a.cld().unwrap();
        for (src, dst, n, size) in
            [(0x3ff0u32, 0x4ff8u32, 0x30u32, 1), (0x3100, 0x3102, 0x100, 2), (0x3408, 0x3400, 0x80, 4)]
        {
            a.mov(esi, src).unwrap();
            a.mov(edi, dst).unwrap();
            a.mov(ecx, n).unwrap();
            match size {
                1 => a.rep().movsb().unwrap(),
                2 => a.rep().movsw().unwrap(),
                _ => a.rep().movsd().unwrap(),
            }
        }
        a.mov(edi, 0x5ffc).unwrap();
        a.mov(ecx, 1500).unwrap();
        a.mov(eax, 0xa1b2_c3d4u32).unwrap();
        a.rep().stosd().unwrap();
        a.hlt().unwrap();
        let mut m = Machine::protected32(&mut a);
        let mut mem: Vec<u8> = (0..0x8000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        m.poke(0x3000, &mem[0x3000..0x8000]);
        m.run();
        model_movs(&mut mem, 0x3ff0, 0x4ff8, 0x30, 1);
        model_movs(&mut mem, 0x3100, 0x3102, 0x100, 2);
        model_movs(&mut mem, 0x3408, 0x3400, 0x80, 4);
        for i in 0..1500 {
            mem[0x5ffc + 4 * i..0x6000 + 4 * i].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        }
        let got = m.peek::<0x5000>(0x3000);
        assert!(got[..] == mem[0x3000..0x8000], "memory differs from the element-by-element model");
        assert_eq!((m.gpr(1), m.gpr(7)), (0, 0x5ffc + 4 * 1500));
        assert_eq!(m.cpu.retired, 1 + 3 * 3 + 0x30 + 0x100 + 0x80 + 3 + 1500 + 1);
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
