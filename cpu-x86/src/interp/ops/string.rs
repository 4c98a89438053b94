//! String instructions MOVS CMPS STOS LODS SCAS INS OUTS with REP/REPE/REPNE (SDM Vol. 2B
//! "REP/REPE/REPZ/REPNE/REPNZ"). A long REP runs in slices: after
//! [`SLICE`] iterations RIP stays on the instruction so interrupts can be taken and the
//! instruction resumes with the registers as the completed iterations left them. Each
//! iteration counts as a retired instruction (`Interpreter::retired`, counted as it happens so
//! the clock is exact per iteration).

use super::operand::{is_string_operand, seg_of, string_addr_size};
use crate::interp::access::{load, store};
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
                if step == size as u64 && !matches!(kind, Kind::Ins | Kind::Outs) {
                    // The iterations this execution may still do: the slice, and the
                    // deadline counted from the instruction's start.
                    let start = self.c.ticks() - u64::from(done.saturating_sub(1));
                    let allowed = self.c.deadline_ticks.saturating_sub(start).clamp(1, SLICE as u64);
                    let n_max = (self.c.st.gpr[1] & amask).min(allowed.saturating_sub(done as u64));
                    let si = self.c.st.gpr[6] & amask;
                    let di = self.c.st.gpr[7] & amask;
                    let run = RepRun { size, src_seg, si, di, n_max, amask };
                    let bulk = match kind {
                        Kind::Movs | Kind::Stos => self.rep_bulk(kind == Kind::Movs, run).map(|n| (n, false)),
                        _ => {
                            let until_equal = ins.has_repne_prefix();
                            self.rep_bulk_read(kind, run, until_equal).map(|(n, a, b)| {
                                if kind == Kind::Lods {
                                    self.set_gpr(0, size, a);
                                } else {
                                    self.set_lazy(FlagOp::Sub, size, a, b, a.wrapping_sub(b) & size_mask(size));
                                }
                                (n, cond && (a == b) == until_equal)
                            })
                        }
                    };
                    if let Some((n, stopped)) = bulk {
                        self.c.retired += if done > 0 { n } else { n - 1 };
                        if matches!(kind, Kind::Movs | Kind::Cmps | Kind::Lods) {
                            self.set_gpr(6, asize, si.wrapping_add(n * size as u64));
                        }
                        if kind != Kind::Lods {
                            self.set_gpr(7, asize, di.wrapping_add(n * size as u64));
                        }
                        let cx = (self.c.st.gpr[1] & amask) - n;
                        self.set_gpr(1, asize, cx);
                        done += n as u32;
                        if stopped {
                            return Ok(());
                        }
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

/// The REP iterations a bulk path may do: element size, source segment, the offsets
/// they start at, how many at most, and the address-size mask.
#[derive(Clone, Copy)]
struct RepRun {
    size: u8,
    src_seg: Seg,
    si: u64,
    di: u64,
    n_max: u64,
    amask: u64,
}

impl Ctx<'_> {
    /// Whether REP iterations may run in bulk through host pointers: nothing watches
    /// memory, traces, or checks alignment.
    fn bulk_allowed(&self) -> bool {
        let c = &self.c;
        let watched = (c.dbg.read | c.dbg.write) != 0 || c.hooks.watch_reads || c.hooks.watch_writes;
        let ac = c.st.cpl == 3 && c.st.cr0 & cr0::AM != 0 && c.st.rflags & fl::AC != 0;
        !watched && !ac && c.hooks.trace.is_none()
    }

    /// The linear address of the forward string operand at `seg:off`, and how many
    /// `size`-byte elements from it fit before its page ends and before the offset wraps.
    fn bulk_start(&self, seg: Seg, off: u64, size: u8, acc: Acc, amask: u64) -> Option<(u64, u64)> {
        let lin = self.linear(seg, off, size, acc).ok()?;
        let sz = size as u64;
        Some((lin, ((0x1000 - (lin & 0xfff)) / sz).min((amask - off) / sz + 1)))
    }

    /// The host address of `n` forward elements at `seg:off` (linear `lin`, all in one
    /// page), when the segment checks pass for the last one too and the TLB maps the page
    /// for the access.
    fn bulk_host(&self, seg: Seg, off: u64, lin: u64, size: u8, acc: Acc, n: u64) -> Option<usize> {
        let last = (n - 1) * size as u64;
        if self.linear(seg, off + last, size, acc).ok()? != lin + last {
            return None;
        }
        let user = self.c.st.cpl == 3;
        let page =
            if acc == Acc::Write { self.c.tlb.write_host(lin, user)? } else { self.c.tlb.read_host(lin, user)? };
        Some(page + (lin & 0xfff) as usize)
    }

    /// Does up to `n_max` (at least 2) forward iterations of REP MOVS (`movs`) or REP STOS
    /// at once through host pointers, when the elements lie in one RAM page on each side
    /// that the TLB already maps for the access, the segment checks pass for the first and
    /// the last element, no alignment check applies and nothing watches memory. Returns
    /// how many it did; `None` leaves the next iteration to the element-by-element path
    /// (which translates, faults and notes code writes as usual).
    fn rep_bulk(&mut self, movs: bool, run: RepRun) -> Option<u64> {
        let RepRun { size, src_seg, si, di, n_max, amask } = run;
        if n_max < 2 || !self.bulk_allowed() {
            return None;
        }
        let (dlin, dfit) = self.bulk_start(Seg::Es, di, size, Acc::Write, amask)?;
        let mut n = n_max.min(dfit);
        let mut slin = 0;
        if movs {
            let (lin, sfit) = self.bulk_start(src_seg, si, size, Acc::Read, amask)?;
            slin = lin;
            n = n.min(sfit);
        }
        if n < 2 {
            return None;
        }
        let dst = self.bulk_host(Seg::Es, di, dlin, size, Acc::Write, n)?;
        if movs {
            let src = self.bulk_host(src_seg, si, slin, size, Acc::Read, n)?;
            let len = (n * size as u64) as usize;
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

    /// Does up to `n_max` (at least 2) forward iterations of REP LODS, or of REPE/REPNE
    /// CMPS or SCAS, reading through host pointers under the same conditions as
    /// [`Self::rep_bulk`]. `until_equal` is REPNE's stop condition (REPE stops on a
    /// difference). Returns the iterations done and the operands of the last one: the
    /// element loaded (LODS) or the two compared (CMPS, SCAS); the comparing kinds stop
    /// after the iteration that meets their condition.
    fn rep_bulk_read(&mut self, kind: Kind, run: RepRun, until_equal: bool) -> Option<(u64, u64, u64)> {
        let RepRun { size, src_seg, si, di, n_max, amask } = run;
        if n_max < 2 || !self.bulk_allowed() {
            return None;
        }
        let src_side = matches!(kind, Kind::Lods | Kind::Cmps);
        let dst_side = matches!(kind, Kind::Scas | Kind::Cmps);
        let mut n = n_max;
        let (mut slin, mut dlin) = (0, 0);
        if src_side {
            let (lin, fit) = self.bulk_start(src_seg, si, size, Acc::Read, amask)?;
            (slin, n) = (lin, n.min(fit));
        }
        if dst_side {
            let (lin, fit) = self.bulk_start(Seg::Es, di, size, Acc::Read, amask)?;
            (dlin, n) = (lin, n.min(fit));
        }
        if n < 2 {
            return None;
        }
        let src = if src_side { self.bulk_host(src_seg, si, slin, size, Acc::Read, n)? } else { 0 };
        let dst = if dst_side { self.bulk_host(Seg::Es, di, dlin, size, Acc::Read, n)? } else { 0 };
        let sz = size as usize;
        // SAFETY (each load below): element `i < n` lies inside a guest RAM page the TLB
        // maps for reading (checked above: the elements fit before the page's end).
        let load = |base: usize, i: u64| unsafe { load(base + i as usize * sz, size) };
        if kind == Kind::Lods {
            return Some((n, load(src, n - 1), 0));
        }
        let acc = self.c.st.gpr[0] & size_mask(size);
        for i in 0..n {
            let a = if kind == Kind::Cmps { load(src, i) } else { acc };
            let b = load(dst, i);
            if (a == b) == until_equal {
                return Some((i + 1, a, b));
            }
            if i + 1 == n {
                return Some((n, a, b));
            }
        }
        None
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

    /// Runs `body` (32-bit flat code) over the test pattern at 0x3000..0x8000 with the
    /// given patches, then HLT; returns the machine.
    fn run_scan(body: impl FnOnce(&mut CodeAssembler), patches: &[(u64, u8)]) -> Machine {
        let mut a = CodeAssembler::new(32).unwrap();
        a.cld().unwrap();
        body(&mut a);
        a.hlt().unwrap();
        let mut m = Machine::protected32(&mut a);
        let mut mem: Vec<u8> = (0..0x5000u32).map(|i| (i % 251) as u8 | 1).collect();
        // 0x6000..0x8000 repeats 0x3000..0x5000, for the comparisons.
        mem.copy_within(0..0x2000, 0x3000);
        for &(at, v) in patches {
            mem[at as usize - 0x3000] = v;
        }
        m.poke(0x3000, &mem);
        m.run();
        m
    }

    #[test]
    fn rep_cmps_scas_and_lods_stop_and_count_as_element_by_element() {
        use crate::interp::state::fl;
        // REPE CMPSB across a page boundary (0x3f00.. vs 0x6f00..), first difference at
        // offset 0x150: stops after it, ZF clear, CF from the unsigned comparison.
        let m = run_scan(
            |a| {
                a.mov(esi, 0x3f00u32).unwrap();
                a.mov(edi, 0x6f00u32).unwrap();
                a.mov(ecx, 0x200u32).unwrap();
                a.repe().cmpsb().unwrap();
            },
            &[(0x6f00 + 0x150, 0xff)],
        );
        assert_eq!((m.gpr(1), m.gpr(6), m.gpr(7)), (0x200 - 0x151, 0x3f00 + 0x151, 0x6f00 + 0x151));
        assert_eq!(m.cpu.rflags() & (fl::ZF | fl::CF), fl::CF, "the source byte is below 0xff");
        assert_eq!(m.cpu.retired, 1 + 3 + 0x151 + 1);
        // REPNE SCASB for a zero byte 0x1234 bytes on, over several pages.
        let m = run_scan(
            |a| {
                a.xor(eax, eax).unwrap();
                a.mov(edi, 0x3010u32).unwrap();
                a.mov(ecx, 0x3000u32).unwrap();
                a.repne().scasb().unwrap();
            },
            &[(0x3010 + 0x1234, 0)],
        );
        assert_eq!((m.gpr(1), m.gpr(7)), (0x3000 - 0x1235, 0x3010 + 0x1235));
        assert_ne!(m.cpu.rflags() & fl::ZF, 0);
        assert_eq!(m.cpu.retired, 1 + 3 + 0x1235 + 1);
        // REPE CMPSW over equal words runs out of count with ZF set.
        let m = run_scan(
            |a| {
                a.mov(esi, 0x3000u32).unwrap();
                a.mov(edi, 0x6000u32).unwrap();
                a.mov(ecx, 0x80u32).unwrap();
                a.repe().cmpsw().unwrap();
            },
            &[],
        );
        assert_eq!((m.gpr(1), m.gpr(6), m.gpr(7)), (0, 0x3100, 0x6100));
        assert_ne!(m.cpu.rflags() & fl::ZF, 0);
        // REP LODSD leaves the last element in EAX.
        let m = run_scan(
            |a| {
                a.mov(esi, 0x3ff0u32).unwrap();
                a.mov(ecx, 100u32).unwrap();
                a.rep().lodsd().unwrap();
            },
            &[],
        );
        let last = 0x3ff0 + 99 * 4 - 0x3000;
        let want = u32::from_le_bytes(std::array::from_fn(|i| ((last + i) % 251) as u8 | 1));
        assert_eq!((m.gpr(0), m.gpr(1), m.gpr(6)), (want as u64, 0, 0x3ff0 + 400));
        assert_eq!(m.cpu.retired, 1 + 2 + 100 + 1);
    }
}
