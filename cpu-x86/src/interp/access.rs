//! Memory access as instructions see it: segmentation (limit and type checks, SDM
//! Vol. 3A §5.3-5.4), then linear-to-physical through the TLB, then RAM by host pointer
//! or the physical address map for ROM and MMIO. Accesses that straddle a page are
//! split after both pages translated, so a fault leaves memory untouched.
//!
//! Explicit data accesses (`read`, `write`) are also where alignment checking (#AC,
//! SDM Vol. 3A §6.15 "Interrupt 17") and data breakpoints (`debug`) look; implicit
//! supervisor accesses (`*_lin_sys`: descriptor tables, TSS, IDT) are exempt from both.

use super::cpu::Ctx;
use super::fault::{vec, Fault, R};
use super::flags::size_mask;
use super::mmu::{translate, Acc, TlbEntry};
use super::state::{attr, cr0, cr4, fl, Mode, Seg};

/// The address bits that must be clear for a `size`-byte access to be aligned (SDM
/// Vol. 3A Table 6-7: word 2, doubleword 4, quadword and larger 8).
fn alignment_mask(size: u8) -> u64 {
    match size {
        0..=1 => 0,
        2..=3 => 1,
        4..=7 => 3,
        _ => 7,
    }
}

impl Ctx<'_> {
    /// The fault a bad access through `seg` raises: #SS(0) for the stack, else #GP(0).
    fn seg_fault(seg: Seg) -> Fault {
        if seg == Seg::Ss {
            Fault::ss(0)
        } else {
            Fault::gp(0)
        }
    }

    /// Linear address of `size` bytes at `seg:off` after the segment checks.
    pub fn linear(&self, seg: Seg, off: u64, size: u8, acc: Acc) -> R<u64> {
        let st = &self.c.st;
        let s = &st.seg[seg as usize];
        if st.mode == Mode::Long64 {
            let base = if matches!(seg, Seg::Fs | Seg::Gs) { s.base } else { 0 };
            let lin = base.wrapping_add(off);
            let last = lin.wrapping_add(size as u64 - 1);
            if ((lin as i64) << 16 >> 16) as u64 != lin || ((last as i64) << 16 >> 16) as u64 != last {
                return Err(Self::seg_fault(seg));
            }
            return Ok(lin);
        }
        if st.protected() {
            if !s.present() {
                return Err(Self::seg_fault(seg));
            }
            let code = s.attrs & attr::CODE != 0;
            let bad_type = match acc {
                Acc::Write => code || s.attrs & attr::RW == 0,
                Acc::Read => code && s.attrs & attr::RW == 0,
                Acc::Fetch => false,
            };
            if bad_type {
                return Err(Self::seg_fault(seg));
            }
        }
        let last = off + size as u64 - 1;
        let ok = if s.attrs & (attr::CODE | attr::DC) == attr::DC && s.attrs & attr::S != 0 {
            let upper = if s.attrs & attr::DB != 0 { 0xffff_ffff } else { 0xffff };
            off > s.limit as u64 && last <= upper
        } else {
            last <= s.limit as u64
        };
        if !ok {
            return Err(Self::seg_fault(seg));
        }
        Ok(s.base.wrapping_add(off) & 0xffff_ffff)
    }

    /// #AC(0) for a misaligned access at CPL 3 while CR0.AM and RFLAGS.AC are set.
    #[inline]
    fn check_alignment(&self, lin: u64, size: u8) -> R<()> {
        let st = &self.c.st;
        if st.cpl == 3 && lin & alignment_mask(size) != 0 && st.cr0 & cr0::AM != 0 && st.rflags & fl::AC != 0 {
            return Err(Fault::exc_code(vec::AC, 0));
        }
        Ok(())
    }

    /// Linear address of an ordinary `size`-byte data access at `seg:off` when the
    /// segment needs no check beyond its limit: a present, expand-up data segment
    /// (writable for a write), or a readable code segment for a read. Anything else
    /// (and every limit violation) returns `None` for the full checks of [`Self::linear`].
    ///
    /// In 64-bit mode the canonical check is left to the caller's TLB probe: the TLB
    /// holds canonical pages only, so an access within one page that hits it is canonical.
    #[inline(always)]
    fn linear_fast<const WRITE: bool>(&self, seg: Seg, off: u64, size: u8) -> Option<u64> {
        let st = &self.c.st;
        let s = &st.seg[seg as usize];
        if st.mode == Mode::Long64 {
            let base = if matches!(seg, Seg::Fs | Seg::Gs) { s.base } else { 0 };
            return Some(base.wrapping_add(off));
        }
        const DATA: u16 = attr::P | attr::S | attr::CODE | attr::DC;
        let usable = if WRITE {
            s.attrs & (DATA | attr::RW) == attr::P | attr::S | attr::RW
        } else {
            s.attrs & DATA == attr::P | attr::S
                || s.attrs & (attr::P | attr::S | attr::CODE | attr::RW) == attr::P | attr::S | attr::CODE | attr::RW
        };
        (usable && off + size as u64 - 1 <= s.limit as u64).then(|| s.base.wrapping_add(off) & 0xffff_ffff)
    }

    /// In the lean loop, the host address of the `size` bytes at `seg:off` when the
    /// segment passes [`Self::linear_fast`], the bytes lie in one page and the TLB maps that
    /// page for the access directly (for a write: writable RAM without decoded code).
    #[inline(always)]
    fn lean_host<const WRITE: bool>(&self, seg: Seg, off: u64, size: u8) -> Option<usize> {
        if !self.c.lean {
            return None;
        }
        let lin = self.linear_fast::<WRITE>(seg, off, size)?;
        let page_off = lin & 0xfff;
        if page_off + size as u64 > 0x1000 {
            return None;
        }
        let user = self.c.st.cpl == 3;
        let page = if WRITE { self.c.tlb.write_host(lin, user)? } else { self.c.tlb.read_host(lin, user)? };
        Some(page + page_off as usize)
    }

    /// Reads `size` bytes at `seg:off`: straight from the TLB's host page in the lean
    /// loop, else with every check.
    #[inline(always)]
    pub fn read(&mut self, seg: Seg, off: u64, size: u8) -> R<u64> {
        if let Some(at) = self.lean_host::<false>(seg, off, size) {
            // SAFETY: `lean_host` gives the address of `size` bytes inside a guest RAM page.
            return Ok(unsafe { load(at, size) });
        }
        self.read_checked(seg, off, size)
    }

    /// `read` with the segment checks, alignment check, data breakpoints and watchpoints.
    #[inline(never)]
    fn read_checked(&mut self, seg: Seg, off: u64, size: u8) -> R<u64> {
        let lin = self.linear(seg, off, size, Acc::Read)?;
        self.check_alignment(lin, size)?;
        if self.c.dbg.read != 0 {
            self.note_data_access(self.c.dbg.read, lin, size);
        }
        if self.c.hooks.watch_reads {
            self.c.hooks.note_access(lin, size, false);
        }
        self.read_lin(lin, size, Acc::Read, self.c.st.cpl == 3)
    }

    /// Writes `size` bytes at `seg:off`: straight to the TLB's host page in the lean
    /// loop when the page may be written directly, else with every check.
    #[inline(always)]
    pub fn write(&mut self, seg: Seg, off: u64, size: u8, value: u64) -> R<()> {
        if let Some(at) = self.lean_host::<true>(seg, off, size) {
            // SAFETY: `lean_host` gives the address of `size` bytes inside a writable guest
            // RAM page holding no decoded code.
            unsafe { store(at, size, value) };
            return Ok(());
        }
        self.write_checked(seg, off, size, value)
    }

    /// `write` with the segment checks, alignment check, data breakpoints and watchpoints.
    #[inline(never)]
    fn write_checked(&mut self, seg: Seg, off: u64, size: u8, value: u64) -> R<()> {
        let lin = self.linear(seg, off, size, Acc::Write)?;
        self.check_alignment(lin, size)?;
        if self.c.dbg.write != 0 {
            self.note_data_access(self.c.dbg.write, lin, size);
        }
        if self.c.hooks.watch_writes {
            self.c.hooks.note_access(lin, size, true);
        }
        self.write_lin(lin, size, value, self.c.st.cpl == 3)
    }

    /// Checks that `size` bytes at `seg:off` may be written (for read-modify-write
    /// instructions and multi-push sequences that must fault before changing state).
    pub fn probe_write(&mut self, seg: Seg, off: u64, size: u8) -> R<()> {
        let lin = self.linear(seg, off, size, Acc::Write)?;
        let user = self.c.st.cpl == 3;
        self.tr(lin, Acc::Write, user)?;
        let last = self.wrap_lin(lin + size as u64 - 1);
        if last >> 12 != lin >> 12 {
            self.tr(last, Acc::Write, user)?;
        }
        Ok(())
    }

    /// A supervisor (implicit) read of linear memory: descriptor tables, TSS, IDT.
    pub fn read_lin_sys(&mut self, lin: u64, size: u8) -> R<u64> {
        self.read_lin(lin, size, Acc::Read, false)
    }

    /// A supervisor (implicit) write of linear memory.
    pub fn write_lin_sys(&mut self, lin: u64, size: u8, value: u64) -> R<()> {
        self.write_lin(lin, size, value, false)
    }

    fn wrap_lin(&self, lin: u64) -> u64 {
        if self.c.st.mode == Mode::Long64 {
            lin
        } else {
            lin & 0xffff_ffff
        }
    }

    #[inline]
    fn tr(&mut self, lin: u64, acc: Acc, user: bool) -> R<TlbEntry> {
        translate(&mut self.c.st, &mut self.c.tlb, self.p, lin, acc, user)
    }

    /// True when a TLB hit may stand for the access without the SMAP check: user
    /// accesses, and supervisor ones below CPL 3 (while SMAP forbids those the TLB holds
    /// no user page, see `mmu`). An implicit supervisor access at CPL 3 takes the walk's
    /// path under SMAP, which refuses user pages.
    #[inline(always)]
    fn hit_needs_no_smap_check(&self, user: bool) -> bool {
        user || self.c.st.cpl < 3 || self.c.st.cr4 & cr4::SMAP == 0
    }

    /// Reads `size` (1-8) bytes of linear memory.
    #[inline]
    pub fn read_lin(&mut self, lin: u64, size: u8, acc: Acc, user: bool) -> R<u64> {
        let off = lin & 0xfff;
        if acc == Acc::Read && off + size as u64 <= 0x1000 && self.hit_needs_no_smap_check(user) {
            if let Some(host) = self.c.tlb.read_host(lin, user) {
                // SAFETY: `host` is the host address of a whole guest RAM page (see
                // `mmu::translate`) and off+size stays inside that page.
                return Ok(unsafe { load(host + off as usize, size) });
            }
        }
        self.read_lin_slow(lin, size, acc, user)
    }

    /// `read_lin` through a translation: TLB misses, ROM, MMIO, page-crossing accesses.
    #[inline(never)]
    fn read_lin_slow(&mut self, lin: u64, size: u8, acc: Acc, user: bool) -> R<u64> {
        let off = lin & 0xfff;
        if off + size as u64 <= 0x1000 {
            let e = self.tr(lin, acc, user)?;
            if e.host != 0 {
                // SAFETY: as in `read_lin`.
                return Ok(unsafe { load(e.host + off as usize, size) });
            }
            let mut b = [0u8; 8];
            self.sync_clock();
            self.p.memory().read(e.phys | off, &mut b[..size as usize]);
            self.c.irq_check = true;
            if self.c.hooks.trace.is_some() {
                self.trace_mmio(e.phys | off, size, u64::from_le_bytes(b), false);
            }
            return Ok(u64::from_le_bytes(b) & size_mask(size));
        }
        let first = self.tr(lin, acc, user)?;
        let second_lin = self.wrap_lin((lin | 0xfff) + 1);
        let second = self.tr(second_lin, acc, user)?;
        let n1 = (0x1000 - off) as usize;
        let mut b = [0u8; 8];
        self.sync_clock();
        self.p.memory().read(first.phys | off, &mut b[..n1]);
        self.p.memory().read(second.phys, &mut b[n1..size as usize]);
        if self.c.hooks.trace.is_some() {
            self.trace_split_mmio(&first, &second, off, size, u64::from_le_bytes(b), false);
        }
        Ok(u64::from_le_bytes(b))
    }

    /// Traces the halves of a page-crossing access that went through the bus.
    #[cold]
    fn trace_split_mmio(&mut self, first: &TlbEntry, second: &TlbEntry, off: u64, size: u8, value: u64, write: bool) {
        let n1 = (0x1000 - off) as u8;
        if first.host == 0 {
            self.trace_mmio(first.phys | off, n1, value & size_mask(n1), write);
        }
        if second.host == 0 {
            self.trace_mmio(second.phys, size - n1, value >> (8 * u32::from(n1)), write);
        }
    }

    /// Writes `size` (1-8) bytes of linear memory.
    #[inline]
    pub fn write_lin(&mut self, lin: u64, size: u8, value: u64, user: bool) -> R<()> {
        let off = lin & 0xfff;
        if off + size as u64 <= 0x1000 && self.hit_needs_no_smap_check(user) {
            if let Some(host) = self.c.tlb.write_host(lin, user) {
                // SAFETY: `host` is the host address of a whole writable guest RAM page
                // holding no decoded code, and the range stays inside it.
                unsafe { store(host + off as usize, size, value) };
                return Ok(());
            }
        }
        self.write_lin_slow(lin, size, value, user)
    }

    /// `write_lin` through a translation and the address map: TLB misses, pages holding
    /// decoded code (the map notes the write), shadow RAM, ROM, MMIO, page-crossing
    /// accesses. Each ends the block, so code written by it runs as written.
    #[inline(never)]
    fn write_lin_slow(&mut self, lin: u64, size: u8, value: u64, user: bool) -> R<()> {
        let off = lin & 0xfff;
        let bytes = value.to_le_bytes();
        if off + size as u64 <= 0x1000 {
            let e = self.tr(lin, Acc::Write, user)?;
            let mem = self.p.memory();
            if e.ram_write_host != 0 && !mem.is_code_page(e.ram_off) {
                self.c.tlb.allow_direct_writes(lin);
                // SAFETY: as in `write_lin`: a writable RAM page holding no decoded code.
                unsafe { store(e.ram_write_host + off as usize, size, value) };
                return Ok(());
            }
            if self.c.hooks.trace.is_some() {
                self.trace_mmio(e.phys | off, size, value & size_mask(size), true);
            }
            self.sync_clock();
            mem.write(e.phys | off, &bytes[..size as usize]);
            self.c.brk = true;
            self.c.irq_check = true;
            return Ok(());
        }
        let first = self.tr(lin, Acc::Write, user)?;
        let second_lin = self.wrap_lin((lin | 0xfff) + 1);
        let second = self.tr(second_lin, Acc::Write, user)?;
        let n1 = (0x1000 - off) as usize;
        if self.c.hooks.trace.is_some() {
            self.trace_split_mmio(&first, &second, off, size, value & size_mask(size), true);
        }
        self.sync_clock();
        let mem = self.p.memory();
        mem.write(first.phys | off, &bytes[..n1]);
        mem.write(second.phys, &bytes[n1..size as usize]);
        self.c.brk = true;
        Ok(())
    }

    /// Reads `size` bytes at `seg:off`, computes `f` of them and writes the result back,
    /// faulting (before anything changes) as a write would. Through one translation when
    /// the page is plain RAM and no data breakpoint or watchpoint is armed.
    #[inline(always)]
    pub fn read_modify_write(&mut self, seg: Seg, off: u64, size: u8, f: impl FnOnce(&mut Self, u64) -> u64) -> R<()> {
        if let Some(at) = self.lean_host::<true>(seg, off, size) {
            // SAFETY: as in `write`: `size` bytes inside a writable RAM page without
            // decoded code.
            let d = unsafe { load(at, size) };
            let r = f(self, d);
            // SAFETY: the same bytes.
            unsafe { store(at, size, r) };
            return Ok(());
        }
        self.probe_write(seg, off, size)?;
        let d = self.read(seg, off, size)?;
        let r = f(self, d);
        self.write(seg, off, size, r)
    }
}

/// Loads `size` (1-8) little-endian bytes at host address `at`.
///
/// # Safety
/// `at..at+size` must be readable host memory (a guest RAM page).
#[inline(always)]
pub(crate) unsafe fn load(at: usize, size: u8) -> u64 {
    let p = at as *const u8;
    // SAFETY: the caller guarantees the bytes are readable; unaligned reads are allowed.
    unsafe {
        match size {
            1 => p.read() as u64,
            2 => u16::from_le(p.cast::<u16>().read_unaligned()) as u64,
            4 => u32::from_le(p.cast::<u32>().read_unaligned()) as u64,
            8 => u64::from_le(p.cast::<u64>().read_unaligned()),
            n => {
                let mut b = [0u8; 8];
                std::ptr::copy_nonoverlapping(p, b.as_mut_ptr(), n as usize);
                u64::from_le_bytes(b)
            }
        }
    }
}

/// Stores the low `size` (1-8) bytes of `v` little-endian at host address `at`.
///
/// # Safety
/// `at..at+size` must be writable host memory (a guest RAM page).
#[inline(always)]
pub(crate) unsafe fn store(at: usize, size: u8, v: u64) {
    let p = at as *mut u8;
    // SAFETY: the caller guarantees the bytes are writable; unaligned writes are allowed.
    unsafe {
        match size {
            1 => p.write(v as u8),
            2 => p.cast::<u16>().write_unaligned((v as u16).to_le()),
            4 => p.cast::<u32>().write_unaligned((v as u32).to_le()),
            8 => p.cast::<u64>().write_unaligned(v.to_le()),
            n => std::ptr::copy_nonoverlapping(v.to_le_bytes().as_ptr(), p, n as usize),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::state::Segment;
    use super::super::test_util::Machine;
    use super::*;
    use iced_x86::code_asm::*;

    /// 32-bit IDT gate `v` at 0x2000 -> 0x08:`handler`.
    fn gate(m: &Machine, v: u64, handler: u64) {
        let d = (handler & 0xffff) | (0x08 << 16) | (0x8e00 << 32) | ((handler >> 16) << 48);
        m.poke(0x2000 + v * 8, &d.to_le_bytes());
    }

    /// Runs `a` at CPL 3 (flat user segments, a TSS for the ring-0 stack) with CR0.AM
    /// and RFLAGS.AC as given, or at CPL 0 when `user` is false. #AC lands in a handler
    /// that leaves 0xac in EBX and the error code in ECX; the final HLT of user code
    /// #GPs into one that leaves 0x0d in EBX. Returns the machine after HLT.
    fn run(a: &mut CodeAssembler, user: bool, am: bool, ac: bool) -> Machine {
        let mut m = Machine::protected32(a);
        m.poke(0x518, &0x00cf_fb00_0000_ffffu64.to_le_bytes());
        m.poke(0x520, &0x00cf_f300_0000_ffffu64.to_le_bytes());
        m.poke(0x528, &0x0000_8b00_4000_0067u64.to_le_bytes());
        m.poke(0x4004, &0x9000u32.to_le_bytes());
        m.poke(0x4008, &0x10u32.to_le_bytes());
        let mut h = CodeAssembler::new(32).unwrap();
        h.pop(ecx).unwrap();
        h.mov(ebx, 0xac).unwrap();
        h.hlt().unwrap();
        m.load(&mut h, 0x30000, 0x30000);
        let mut h = CodeAssembler::new(32).unwrap();
        h.mov(ebx, 0x0d).unwrap();
        h.hlt().unwrap();
        m.load(&mut h, 0x30100, 0x30100);
        gate(&m, vec::AC as u64, 0x30000);
        gate(&m, vec::GP as u64, 0x30100);
        let st = m.cpu.state_mut();
        st.gdtr.limit = 0x2f;
        st.idtr.base = 0x2000;
        st.idtr.limit = 0xff;
        st.tr = Segment { base: 0x4000, limit: 0x67, selector: 0x28, attrs: 0x8b };
        st.gpr[3] = 0;
        st.gpr[4] = 0x8000;
        if user {
            let data = Segment { base: 0, limit: 0xffff_ffff, selector: 0x23, attrs: 0xc0f3 };
            st.seg = [data; 6];
            st.seg[Seg::Cs as usize] = Segment { base: 0, limit: 0xffff_ffff, selector: 0x1b, attrs: 0xc0fb };
            st.cpl = 3;
        }
        if am {
            st.cr0 |= cr0::AM;
        }
        if ac {
            st.rflags |= fl::AC;
        }
        m.cpu.flush_caches();
        m.run();
        m
    }

    /// Code that stores `size` bytes of 0x11.. at `addr` (for 8, loads a qword with
    /// FILD instead) then HLTs.
    fn store(size: u8, addr: u64) -> CodeAssembler {
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(eax, 0x1111_1111).unwrap();
        a.mov(edx, 0x1111_1111).unwrap();
        match size {
            1 => a.mov(byte_ptr(addr), al).unwrap(),
            2 => a.mov(word_ptr(addr), ax).unwrap(),
            4 => a.mov(dword_ptr(addr), eax).unwrap(),
            _ => a.fild(qword_ptr(addr)).unwrap(),
        }
        a.hlt().unwrap();
        a
    }

    #[test]
    fn misaligned_accesses_fault_with_ac_at_cpl3() {
        for (size, addr) in [(2, 0x5001), (4, 0x5002), (8, 0x5004)] {
            let m = run(&mut store(size, addr), true, true, true);
            assert_eq!((m.gpr(3), m.gpr(1)), (0xac, 0), "{size}-byte access at {addr:#x}");
            assert_eq!(m.peek::<8>(0x5000), [0; 8], "the faulting store did not happen");
            assert_eq!(m.cpu.last_exception, Some((vec::AC, Some(0))));
        }
    }

    #[test]
    fn aligned_and_byte_accesses_do_not_fault() {
        for (size, addr) in [(1, 0x5003), (2, 0x5002), (4, 0x5004), (8, 0x5008)] {
            let m = run(&mut store(size, addr), true, true, true);
            assert_eq!(m.gpr(3), 0x0d, "{size}-byte access at {addr:#x} reached the HLT");
        }
    }

    #[test]
    fn no_ac_unless_am_ac_and_cpl3() {
        for (user, am, ac) in [(true, false, true), (true, true, false)] {
            let m = run(&mut store(4, 0x5001), user, am, ac);
            assert_eq!(m.gpr(3), 0x0d, "user {user} AM {am} AC {ac}");
            assert_eq!(m.peek::<4>(0x5001), [0x11; 4]);
        }
        let m = run(&mut store(4, 0x5001), false, true, true);
        assert_eq!(m.gpr(3), 0, "CPL 0 halts normally");
        assert_eq!(m.peek::<4>(0x5001), [0x11; 4]);
    }

    #[test]
    fn misaligned_push_faults_but_descriptor_loads_are_exempt() {
        // ESP = 0x8001: a PUSH is a misaligned dword stack write. The #AC delivery's
        // own GDT/IDT/TSS reads (supervisor accesses) must not fault in turn.
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(esp, 0x8001).unwrap();
        a.push(eax).unwrap();
        a.hlt().unwrap();
        let m = run(&mut a, true, true, true);
        assert_eq!(m.gpr(3), 0xac);
        // Ring 0 stack from the TSS: SS, ESP, EFLAGS, CS, EIP (20 bytes) left after
        // the handler popped the error code; the saved ESP is the misaligned one.
        assert_eq!(m.gpr(4), 0x9000 - 20, "delivered on the ring-0 stack");
        assert_eq!(m.peek::<4>(0x9000 - 8), 0x8001u32.to_le_bytes());
    }
}
