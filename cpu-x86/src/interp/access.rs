//! Memory access as instructions see it: segmentation (limit and type checks, SDM
//! Vol. 3A §5.3-5.4), then linear-to-physical through the TLB, then RAM by host pointer
//! or the physical address map for ROM and MMIO. Accesses that straddle a page are
//! split after both pages translated, so a fault leaves memory untouched.

use super::cpu::Ctx;
use super::fault::{Fault, R};
use super::flags::size_mask;
use super::mmu::{translate, Acc, TlbEntry};
use super::state::{attr, Mode, Seg};

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

    /// Reads `size` bytes at `seg:off`.
    #[inline]
    pub fn read(&mut self, seg: Seg, off: u64, size: u8) -> R<u64> {
        let lin = self.linear(seg, off, size, Acc::Read)?;
        self.read_lin(lin, size, Acc::Read, self.c.st.cpl == 3)
    }

    /// Writes `size` bytes at `seg:off`.
    #[inline]
    pub fn write(&mut self, seg: Seg, off: u64, size: u8, value: u64) -> R<()> {
        let lin = self.linear(seg, off, size, Acc::Write)?;
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

    /// Reads `size` (1-8) bytes of linear memory.
    pub fn read_lin(&mut self, lin: u64, size: u8, acc: Acc, user: bool) -> R<u64> {
        let off = lin & 0xfff;
        if off + size as u64 <= 0x1000 {
            let e = self.tr(lin, acc, user)?;
            let mut b = [0u8; 8];
            if e.host != 0 {
                // SAFETY: `e.host` is the host address of a whole guest RAM page (see
                // `mmu::translate`) and off+size stays inside that page.
                unsafe {
                    std::ptr::copy_nonoverlapping((e.host + off as usize) as *const u8, b.as_mut_ptr(), size as usize)
                };
            } else {
                self.p.memory().read(e.phys | off, &mut b[..size as usize]);
                self.c.irq_check = true;
            }
            return Ok(u64::from_le_bytes(b) & size_mask(size));
        }
        let first = self.tr(lin, acc, user)?;
        let second_lin = self.wrap_lin((lin | 0xfff) + 1);
        let second = self.tr(second_lin, acc, user)?;
        let n1 = (0x1000 - off) as usize;
        let mut b = [0u8; 8];
        self.p.memory().read(first.phys | off, &mut b[..n1]);
        self.p.memory().read(second.phys, &mut b[n1..size as usize]);
        Ok(u64::from_le_bytes(b))
    }

    /// Writes `size` (1-8) bytes of linear memory.
    pub fn write_lin(&mut self, lin: u64, size: u8, value: u64, user: bool) -> R<()> {
        let off = lin & 0xfff;
        let bytes = value.to_le_bytes();
        let mem = self.p.memory();
        if off + size as u64 <= 0x1000 {
            let e = self.tr(lin, Acc::Write, user)?;
            if e.host != 0 {
                // SAFETY: as in `read_lin`: the page is guest RAM and the range stays in it.
                unsafe {
                    std::ptr::copy_nonoverlapping(bytes.as_ptr(), (e.host + off as usize) as *mut u8, size as usize)
                };
                if mem.is_code_page(e.ram_off) {
                    mem.note_write(e.ram_off + off, size as u64);
                    self.c.brk = true;
                }
            } else {
                mem.write(e.phys | off, &bytes[..size as usize]);
                self.c.brk = true;
                self.c.irq_check = true;
            }
            return Ok(());
        }
        let first = self.tr(lin, Acc::Write, user)?;
        let second_lin = self.wrap_lin((lin | 0xfff) + 1);
        let second = self.tr(second_lin, Acc::Write, user)?;
        let n1 = (0x1000 - off) as usize;
        mem.write(first.phys | off, &bytes[..n1]);
        mem.write(second.phys, &bytes[n1..size as usize]);
        self.c.brk = true;
        Ok(())
    }
}
