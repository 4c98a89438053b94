//! Linear-to-physical translation: the 32-bit, PAE and 4-level page walks and a
//! software TLB that caches each translation with its permission bits and, for RAM,
//! the host address of the page.
//!
//! SDM Vol. 3A §4.3 (32-bit paging), §4.4 (PAE), §4.5 (4-level, 1-GiB pages), §4.6
//! (access rights, SMEP and SMAP), §4.7 (page-fault error code), §4.8 (accessed and dirty
//! flags), §4.10 (TLBs and PCIDs).
//!
//! The TLB caches one address space: the current PCID's translations and the global
//! ones (a CR3 write that changes the PCID drops the others, which the SDM allows at any
//! time). Compiled code probes the entries inline and, for a supervisor read, checks
//! only the tag, so SMAP is kept by what the TLB holds: while supervisor data accesses
//! to user pages are forbidden (CR4.SMAP, CPL < 3, RFLAGS.AC = 0) it holds no user page
//! ([`Tlb::flush_user`] at the transitions into that state, and no walk inserts one then).

use super::fault::{vec, Fault, R};
use super::state::{cr0, cr4, efer, fl, CpuState};
use crate::debug::TlbView;
use rx86_core::platform::Platform;

/// Kind of memory access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acc {
    /// Data read.
    Read,
    /// Data write.
    Write,
    /// Instruction fetch.
    Fetch,
}

/// Page-table entry bits (SDM Vol. 3A Table 4-19).
mod pte {
    /// Present.
    pub const P: u64 = 1 << 0;
    /// Read/write.
    pub const RW: u64 = 1 << 1;
    /// User/supervisor.
    pub const US: u64 = 1 << 2;
    /// Accessed.
    pub const A: u64 = 1 << 5;
    /// Dirty.
    pub const D: u64 = 1 << 6;
    /// Page size (large page).
    pub const PS: u64 = 1 << 7;
    /// Global.
    pub const G: u64 = 1 << 8;
    /// Execute-disable.
    pub const XD: u64 = 1 << 63;
    /// Physical address bits 12-51.
    pub const ADDR: u64 = 0x000f_ffff_ffff_f000;
}

/// Physical-address width reported by CPUID 0x80000008 (EAX[7:0]); entry address bits at
/// and above it are reserved (SDM Vol. 3A §4.4.2, §4.5.4, Tables 4-8 and 4-14 to 4-20).
const MAXPHYADDR: u32 = 36;
/// Address bits MAXPHYADDR..=51 of a PAE or 4-level entry: reserved.
const RSVD_ADDR: u64 = ((1 << 52) - 1) & !((1 << MAXPHYADDR) - 1);
/// Bits 21:13 of a 4-MiB PDE with 32-bit paging: reserved, as CPUID reports no PSE-36
/// (SDM Vol. 3A Table 4-4).
const RSVD_PDE_4M: u64 = 0x1ff << 13;

/// Page-fault error code bits (SDM Vol. 3A §4.7).
mod pfec {
    /// The page was present (protection violation).
    pub const P: u32 = 1 << 0;
    /// The access was a write.
    pub const W: u32 = 1 << 1;
    /// The access was at CPL 3.
    pub const U: u32 = 1 << 2;
    /// A reserved bit was set.
    pub const RSVD: u32 = 1 << 3;
    /// The access was an instruction fetch.
    pub const I: u32 = 1 << 4;
}

/// Permission bits of a TLB entry.
pub(crate) mod perm {
    /// User accessible at every level.
    pub const USER: u8 = 1 << 0;
    /// Writable at every level.
    pub const WRITE: u8 = 1 << 1;
    /// Dirty bit already set (writes need no walk).
    pub const DIRTY: u8 = 1 << 2;
    /// Execute-disabled at some level.
    pub const NX: u8 = 1 << 3;
    /// Global page (survives CR3 writes).
    pub const GLOBAL: u8 = 1 << 4;
    /// Part of a page larger than 4 KiB (INVLPG of any of it drops all of it).
    pub const LARGE: u8 = 1 << 5;
}

/// One cached translation.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
pub struct TlbEntry {
    /// Linear page number + 1 (0 = empty).
    pub(crate) tag: u64,
    /// Physical page base.
    pub phys: u64,
    /// Host address of the page when reads reach guest RAM, else 0.
    pub host: usize,
    /// Host address of the page when writes may go straight to guest RAM, else 0: 0 for
    /// write-protected shadow RAM (writes go through the address map and are dropped) and
    /// for pages holding decoded code (writes go through the map, which notes them for
    /// self-modifying-code detection), so the fast path needs no code-page check.
    pub write_host: usize,
    /// Host address of the page when writes reach guest RAM (code pages included), else 0.
    pub ram_write_host: usize,
    /// The TLB's code epoch when `write_host` was decided; direct writes need it current.
    pub(crate) epoch: u64,
    /// RAM offset of the page when it is RAM.
    pub ram_off: u64,
    pub(crate) perm: u8,
}

pub(crate) const TLB_SIZE: usize = 1024;

/// The software TLB (direct-mapped).
pub struct Tlb {
    pub(crate) entries: Box<[TlbEntry]>,
    /// Bumped by every flush, so caches keyed by linear address (the decode cache's
    /// direct-mapped front) know when translations may have changed.
    pub generation: u64,
    /// Bumped whenever a page starts holding decoded code: entries stamped with an older
    /// epoch take the slow path for writes, which looks at the page again.
    pub(crate) code_epoch: u64,
    /// Some entry may map a user page ([`perm::USER`]) ...
    has_user: bool,
    /// ... or a part of a large page ([`perm::LARGE`]).
    has_large: bool,
}

impl Default for Tlb {
    fn default() -> Self {
        Tlb {
            entries: vec![TlbEntry::default(); TLB_SIZE].into_boxed_slice(),
            generation: 0,
            code_epoch: 0,
            has_user: false,
            has_large: false,
        }
    }
}

/// True when a supervisor-mode access of kind `acc` may not use a user page: fetches
/// under CR4.SMEP; data accesses under CR4.SMAP unless CPL < 3 and RFLAGS.AC = 1 (at
/// CPL 3 every supervisor access is implicit and SMAP always applies), SDM Vol. 3A §4.6.1.
#[inline]
pub(crate) fn supervisor_denied_user_pages(st: &CpuState, acc: Acc) -> bool {
    if acc == Acc::Fetch {
        st.cr4 & cr4::SMEP != 0
    } else {
        st.cr4 & cr4::SMAP != 0 && (st.cpl == 3 || st.rflags & fl::AC == 0)
    }
}

/// Permission bits a read (`WRITE` false) or write hit needs, for a user or supervisor
/// access; the entry's bits must include them all.
#[inline(always)]
fn needed(write: bool, user: bool) -> u8 {
    (if write { perm::WRITE | perm::DIRTY } else { 0 }) | if user { perm::USER } else { 0 }
}

impl Tlb {
    /// Drops every translation (or every non-global one).
    pub fn flush(&mut self, keep_global: bool) {
        self.drop_where(|e| !(keep_global && e.perm & perm::GLOBAL != 0));
    }

    /// Drops every translation of a user page (global ones too), so no supervisor
    /// access finds one cached while SMAP forbids them.
    pub fn flush_user(&mut self) {
        if self.has_user {
            self.drop_where(|e| e.perm & perm::USER != 0);
        }
    }

    /// Drops the entries `drop` picks, bumping the generation; recomputes which kinds
    /// of entry remain.
    fn drop_where(&mut self, drop: impl Fn(&TlbEntry) -> bool) {
        self.generation += 1;
        let (mut user, mut large) = (false, false);
        for e in self.entries.iter_mut() {
            if e.tag != 0 && drop(e) {
                e.tag = 0;
            }
            if e.tag != 0 {
                user |= e.perm & perm::USER != 0;
                large |= e.perm & perm::LARGE != 0;
            }
        }
        (self.has_user, self.has_large) = (user, large);
    }

    /// The host address of the RAM page holding `lin` when a data read hits the TLB.
    #[inline(always)]
    pub fn read_host(&self, lin: u64, user: bool) -> Option<usize> {
        let page = lin >> 12;
        let e = &self.entries[(page as usize) & (TLB_SIZE - 1)];
        let need = needed(false, user);
        (e.tag == page + 1 && e.perm & need == need && e.host != 0).then_some(e.host)
    }

    /// The host address of the RAM page holding `lin` when a data write hits the TLB and
    /// may go straight to RAM (not shadow-protected, no decoded code on the page).
    #[inline(always)]
    pub fn write_host(&self, lin: u64, user: bool) -> Option<usize> {
        let page = lin >> 12;
        let e = &self.entries[(page as usize) & (TLB_SIZE - 1)];
        let need = needed(true, user);
        let direct = e.write_host != 0 && e.epoch == self.code_epoch;
        (e.tag == page + 1 && e.perm & need == need && direct).then_some(e.write_host)
    }

    /// A RAM page started holding decoded code: direct writes stop until the slow path
    /// has looked at each entry's page again (no scan of the entries here).
    pub fn protect_code_pages(&mut self) {
        self.code_epoch += 1;
    }

    /// Allows direct writes through the entry for `lin` again: its page was just found
    /// to hold no decoded code.
    pub fn allow_direct_writes(&mut self, lin: u64) {
        let page = lin >> 12;
        let epoch = self.code_epoch;
        let e = &mut self.entries[(page as usize) & (TLB_SIZE - 1)];
        if e.tag == page + 1 {
            e.write_host = e.ram_write_host;
            e.epoch = epoch;
        }
    }

    /// Drops the translation of the page holding `lin` (INVLPG). The entries cache 4-KiB
    /// pieces, so when `lin` may lie in a larger page every piece of every large page
    /// goes too (dropping more than asked is always allowed).
    pub fn flush_page(&mut self, lin: u64) {
        let page = lin >> 12;
        if self.has_large {
            self.drop_where(|e| e.tag == page + 1 || e.perm & perm::LARGE != 0);
            return;
        }
        self.generation += 1;
        let e = &mut self.entries[(page as usize) & (TLB_SIZE - 1)];
        if e.tag == page + 1 {
            e.tag = 0;
        }
    }

    /// The cached translation of `lin` when it allows the access without a walk;
    /// `no_user_pages` for a supervisor access that may not use user pages (SMEP, SMAP).
    #[inline]
    pub fn lookup(&self, lin: u64, acc: Acc, user: bool, no_user_pages: bool) -> Option<&TlbEntry> {
        let page = lin >> 12;
        let e = &self.entries[(page as usize) & (TLB_SIZE - 1)];
        if e.tag != page + 1 || (no_user_pages && e.perm & perm::USER != 0) {
            return None;
        }
        let ok = match acc {
            Acc::Read => !user || e.perm & perm::USER != 0,
            Acc::Write => e.perm & perm::DIRTY != 0 && e.perm & perm::WRITE != 0 && (!user || e.perm & perm::USER != 0),
            Acc::Fetch => e.perm & perm::NX == 0 && (!user || e.perm & perm::USER != 0),
        };
        ok.then_some(e)
    }

    /// The valid translations, for a debugger (slot order).
    pub fn valid_entries(&self) -> impl Iterator<Item = TlbView> + '_ {
        self.entries.iter().filter(|e| e.tag != 0).map(|e| TlbView {
            linear: (e.tag - 1) << 12,
            physical: e.phys,
            ram: e.host != 0,
            user: e.perm & perm::USER != 0,
            writable: e.perm & perm::WRITE != 0,
            dirty: e.perm & perm::DIRTY != 0,
            no_execute: e.perm & perm::NX != 0,
            global: e.perm & perm::GLOBAL != 0,
        })
    }

    fn insert(&mut self, lin: u64, e: TlbEntry) -> TlbEntry {
        let page = lin >> 12;
        self.has_user |= e.perm & perm::USER != 0;
        self.has_large |= e.perm & perm::LARGE != 0;
        let slot = &mut self.entries[(page as usize) & (TLB_SIZE - 1)];
        *slot = TlbEntry { tag: page + 1, ..e };
        *slot
    }
}

/// Keeps SMAP's rule for what the TLB may hold (see the module documentation): drops
/// the user pages once supervisor data accesses may not use them. Called wherever
/// execution goes on after CPL or RFLAGS.AC may have changed: at each block, and by the
/// instructions that change AC without ending their block's chain (CLAC, POPF).
#[inline]
pub(crate) fn keep_smap(st: &CpuState, tlb: &mut Tlb) {
    if tlb.has_user && st.cr4 & cr4::SMAP != 0 && st.cr0 & cr0::PG != 0 && st.cpl < 3 && st.rflags & fl::AC == 0 {
        tlb.flush_user();
    }
}

fn read_phys(p: &dyn Platform, addr: u64, size: usize) -> u64 {
    let mut b = [0u8; 8];
    p.memory().read(addr, &mut b[..size]);
    u64::from_le_bytes(b)
}

fn write_phys(p: &dyn Platform, addr: u64, size: usize, v: u64) {
    p.memory().write(addr, &v.to_le_bytes()[..size]);
}

/// Sets `bits` in the paging entry at `addr` when they are not yet set.
fn set_bits(p: &dyn Platform, addr: u64, size: usize, entry: u64, bits: u64) {
    if entry & bits != bits {
        write_phys(p, addr, size, entry | bits);
    }
}

/// Translates `lin` for an access, walking the page tables on a TLB miss; sets CR2
/// and returns #PF on failure. `user` is true for CPL-3 accesses that are not implicit
/// supervisor accesses.
pub fn translate(st: &mut CpuState, tlb: &mut Tlb, p: &dyn Platform, lin: u64, acc: Acc, user: bool) -> R<TlbEntry> {
    let no_user_pages = !user && st.cr0 & cr0::PG != 0 && supervisor_denied_user_pages(st, acc);
    if let Some(e) = tlb.lookup(lin, acc, user, no_user_pages) {
        return Ok(*e);
    }
    let mask = p.memory().a20_mask();
    let (phys, perms) = if st.cr0 & cr0::PG == 0 {
        ((lin & 0xffff_ffff & !0xfff) & mask, perm::USER | perm::WRITE | perm::DIRTY)
    } else {
        walk(st, p, lin, acc, user)?
    };
    let phys = phys & mask;
    let mem = p.memory();
    let (host, ram_write_host, ram_off) = match mem.ram_read_access(phys, 4096) {
        Some((off, writable)) => {
            // SAFETY: `ram_read_access` proved the whole page lies inside the RAM mapping, so
            // the pointer stays in bounds; it is only dereferenced for accesses within the page.
            let host = unsafe { mem.ram().host_base().add(off as usize) } as usize;
            (host, if writable { host } else { 0 }, off)
        }
        None => (0, 0, 0),
    };
    let write_host = if host != 0 && mem.is_code_page(ram_off) { 0 } else { ram_write_host };
    let epoch = tlb.code_epoch;
    let e = TlbEntry { tag: 0, phys, host, write_host, ram_write_host, epoch, ram_off, perm: perms };
    // A supervisor fetch from a user page (no SMEP) while SMAP forbids supervisor data
    // accesses to it: used once, not cached, so no data access finds it in the TLB.
    if !user && perms & perm::USER != 0 && st.cr0 & cr0::PG != 0 && supervisor_denied_user_pages(st, Acc::Read) {
        return Ok(e);
    }
    Ok(tlb.insert(lin, e))
}

/// A page walk; returns the physical page and the permission bits.
fn walk(st: &mut CpuState, p: &dyn Platform, lin: u64, acc: Acc, user: bool) -> R<(u64, u8)> {
    let write = acc == Acc::Write;
    let nxe = st.efer & efer::NXE != 0;
    let mut code = if write { pfec::W } else { 0 } | if user { pfec::U } else { 0 };
    if acc == Acc::Fetch && ((nxe && st.cr4 & cr4::PAE != 0) || st.cr4 & cr4::SMEP != 0) {
        code |= pfec::I;
    }
    let fault = |st: &mut CpuState, code: u32| {
        st.cr2 = lin;
        Fault::exc_code(vec::PF, code)
    };
    // Entries visited: (address, size, value); the leaf is last.
    let mut path: [(u64, usize, u64); 4] = [(0, 0, 0); 4];
    let mut depth = 0;
    let (page_base, offset_mask);
    let long = st.efer & efer::LMA != 0;
    if st.cr4 & cr4::PAE == 0 {
        let pde_addr = (st.cr3 & 0xffff_f000) + ((lin >> 22) & 0x3ff) * 4;
        let pde = read_phys(p, pde_addr, 4);
        if pde & pte::P == 0 {
            return Err(fault(st, code));
        }
        path[0] = (pde_addr, 4, pde);
        depth = 1;
        if pde & pte::PS != 0 && st.cr4 & cr4::PSE != 0 {
            if pde & RSVD_PDE_4M != 0 {
                return Err(fault(st, code | pfec::P | pfec::RSVD));
            }
            page_base = pde & 0xffc0_0000;
            offset_mask = 0x3f_ffff;
        } else {
            let pte_addr = (pde & 0xffff_f000) + ((lin >> 12) & 0x3ff) * 4;
            let e = read_phys(p, pte_addr, 4);
            if e & pte::P == 0 {
                return Err(fault(st, code));
            }
            path[1] = (pte_addr, 4, e);
            depth = 2;
            page_base = e & 0xffff_f000;
            offset_mask = 0xfff;
        }
    } else {
        let mut table;
        let mut level;
        if long {
            table = st.cr3 & pte::ADDR;
            level = 4;
        } else {
            let pdpte_addr = (st.cr3 & 0xffff_ffe0) + ((lin >> 30) & 3) * 8;
            let pdpte = read_phys(p, pdpte_addr, 8);
            if pdpte & pte::P == 0 {
                return Err(fault(st, code));
            }
            table = pdpte & pte::ADDR;
            level = 2;
        }
        loop {
            let shift = 12 + 9 * (level - 1);
            let addr = table + ((lin >> shift) & 0x1ff) * 8;
            let e = read_phys(p, addr, 8);
            if e & pte::P == 0 {
                return Err(fault(st, code));
            }
            // PS is reserved in PML4 entries, and in PDPT entries unless the model has
            // 1-GiB pages. A large page's address bits below its size, from bit 13 up,
            // are reserved (20:13 for 2 MiB, 29:13 for 1 GiB).
            let gib = level == 3 && long && st.model.has_1g_pages();
            let large = e & pte::PS != 0 && (level == 2 || gib);
            let mut rsvd = e & RSVD_ADDR;
            if !nxe {
                rsvd |= e & pte::XD;
            }
            if e & pte::PS != 0 && !large && level >= 3 {
                rsvd |= pte::PS;
            }
            if large {
                rsvd |= e & ((1 << shift) - 1) & !0x1fff;
            }
            if rsvd != 0 {
                return Err(fault(st, code | pfec::P | pfec::RSVD));
            }
            path[depth] = (addr, 8, e);
            depth += 1;
            if level == 1 || large {
                let m = (1u64 << shift) - 1;
                page_base = e & pte::ADDR & !m;
                offset_mask = m;
                break;
            }
            table = e & pte::ADDR;
            level -= 1;
        }
    }
    let entries = &path[..depth];
    let all = |bit: u64| entries.iter().all(|&(_, _, e)| e & bit != 0);
    let us = all(pte::US);
    let rw = all(pte::RW);
    let nx = nxe && entries.iter().any(|&(_, _, e)| e & pte::XD != 0);
    let denied = (user && !us)
        || (write && !rw && (user || st.cr0 & cr0::WP != 0))
        || (acc == Acc::Fetch && nx)
        || (!user && us && supervisor_denied_user_pages(st, acc));
    if denied {
        return Err(fault(st, code | pfec::P));
    }
    for &(addr, size, e) in entries[..depth - 1].iter() {
        set_bits(p, addr, size, e, pte::A);
    }
    let (leaf_addr, leaf_size, leaf) = entries[depth - 1];
    set_bits(p, leaf_addr, leaf_size, leaf, if write { pte::A | pte::D } else { pte::A });
    let mut perms = 0;
    if us {
        perms |= perm::USER;
    }
    // A supervisor write to a read-only page with WP=0 succeeds but is not cached as
    // writable, so user writes through the same entry still walk and fault.
    if rw {
        perms |= perm::WRITE;
    }
    if write || leaf & pte::D != 0 {
        perms |= perm::DIRTY;
    }
    if nx {
        perms |= perm::NX;
    }
    if leaf & pte::G != 0 && st.cr4 & cr4::PGE != 0 {
        perms |= perm::GLOBAL;
    }
    if offset_mask != 0xfff {
        perms |= perm::LARGE;
    }
    Ok(((page_base | (lin & offset_mask)) & !0xfff, perms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::model::CpuModel;
    use rx86_core::platform::BasicPlatform;

    fn paged_state(cr3: u64) -> CpuState {
        CpuState { cr0: cr0::PE | cr0::PG | cr0::WP, cr3, ..CpuState::default() }
    }

    #[test]
    fn two_level_walk_sets_accessed_and_dirty() {
        let p = BasicPlatform::new(0x10_0000).unwrap();
        let m = p.memory();
        // PDE 1 -> page table at 0x2000 (P|RW|US); PTE 5 -> page 0x7000 (P|RW|US).
        m.write(0x1000 + 4, &(0x2000u32 | 7).to_le_bytes());
        m.write(0x2000 + 5 * 4, &(0x7000u32 | 7).to_le_bytes());
        let mut st = paged_state(0x1000);
        let mut tlb = Tlb::default();
        let lin = (1 << 22) | (5 << 12) | 0x123;
        let e = translate(&mut st, &mut tlb, &p, lin, Acc::Write, true).unwrap();
        assert_eq!(e.phys, 0x7000);
        let mut b = [0u8; 4];
        m.read(0x2000 + 20, &mut b);
        assert_eq!(u32::from_le_bytes(b) & 0x60, 0x60, "A and D set on the PTE");
        m.read(0x1004, &mut b);
        assert_eq!(u32::from_le_bytes(b) & 0x60, 0x20, "only A on the PDE");
    }

    #[test]
    fn faults_carry_sdm_error_codes_and_cr2() {
        let p = BasicPlatform::new(0x10_0000).unwrap();
        let m = p.memory();
        // Supervisor-only read-only page.
        m.write(0x1000, &(0x2000u32 | 1).to_le_bytes());
        m.write(0x2000, &(0x7000u32 | 1).to_le_bytes());
        let mut st = paged_state(0x1000);
        let mut tlb = Tlb::default();
        let err = translate(&mut st, &mut tlb, &p, 0x10, Acc::Write, true).unwrap_err();
        assert_eq!(err, Fault::exc_code(vec::PF, 0b111), "present, write, user");
        let err = translate(&mut st, &mut tlb, &p, 0x40_0000, Acc::Read, false).unwrap_err();
        assert_eq!(err, Fault::exc_code(vec::PF, 0), "not present, read, supervisor");
        assert_eq!(st.cr2, 0x40_0000);
        // WP=1: supervisor write to a read-only page faults; WP=0 allows it.
        assert!(translate(&mut st, &mut tlb, &p, 0x10, Acc::Write, false).is_err());
        st.cr0 &= !cr0::WP;
        assert!(translate(&mut st, &mut tlb, &p, 0x10, Acc::Write, false).is_ok());
    }

    #[test]
    fn four_level_walk_with_2m_page_and_nx() {
        let p = BasicPlatform::new(0x10_0000).unwrap();
        let m = p.memory();
        m.write(0x1000, &(0x2000u64 | 7).to_le_bytes());
        m.write(0x2000, &(0x3000u64 | 7).to_le_bytes());
        m.write(0x3000 + 8, &(0x40_0000u64 | 0x87 | (1 << 63)).to_le_bytes());
        let mut st = paged_state(0x1000);
        st.cr4 = cr4::PAE;
        st.efer = efer::LME | efer::LMA | efer::NXE;
        let mut tlb = Tlb::default();
        let e = translate(&mut st, &mut tlb, &p, 0x20_1234, Acc::Read, false).unwrap();
        assert_eq!(e.phys, 0x40_1000);
        let err = translate(&mut st, &mut tlb, &p, 0x20_1234, Acc::Fetch, false).unwrap_err();
        assert_eq!(err, Fault::exc_code(vec::PF, pfec::P | pfec::I));
    }

    /// A 4-level hierarchy at 0x1000 whose PDPT (0x2000) and PD (0x3000) entries are given.
    fn long_tables(pdpte: u64, pde: u64) -> (BasicPlatform, CpuState) {
        let p = BasicPlatform::new(0x10_0000).unwrap();
        let m = p.memory();
        m.write(0x1000, &(0x2000u64 | 7).to_le_bytes());
        m.write(0x2000, &pdpte.to_le_bytes());
        m.write(0x3000, &pde.to_le_bytes());
        let mut st = paged_state(0x1000);
        st.cr4 = cr4::PAE;
        st.efer = efer::LME | efer::LMA | efer::NXE;
        (p, st)
    }

    #[test]
    fn reserved_bits_fault_with_rsvd() {
        let rsvd = Fault::exc_code(vec::PF, pfec::P | pfec::RSVD);
        // Address bit 40 is beyond MAXPHYADDR (36).
        let (p, mut st) = long_tables(0x3000 | 7, 0x40_0000 | 0x87 | (1 << 40));
        assert_eq!(translate(&mut st, &mut Tlb::default(), &p, 0x1000, Acc::Read, false).unwrap_err(), rsvd);
        assert_eq!(st.cr2, 0x1000);
        // Bits 20:13 of a 2-MiB page are reserved.
        let (p, mut st) = long_tables(0x3000 | 7, 0x40_0000 | 0x87 | (1 << 13));
        assert_eq!(translate(&mut st, &mut Tlb::default(), &p, 0x1000, Acc::Read, false).unwrap_err(), rsvd);
        // A model without 1-GiB pages: PS in a PDPT entry is reserved.
        let (p, mut st) = long_tables(0x87, 0);
        st.model = CpuModel::X86_64V2;
        assert_eq!(translate(&mut st, &mut Tlb::default(), &p, 0x1000, Acc::Read, false).unwrap_err(), rsvd);
        // The same 2-MiB page without reserved bits translates.
        let (p, mut st) = long_tables(0x3000 | 7, 0x40_0000 | 0x87);
        assert_eq!(translate(&mut st, &mut Tlb::default(), &p, 0x1234, Acc::Read, false).unwrap().phys, 0x40_1000);
    }

    #[test]
    fn one_gib_pages_map_with_bits_29_13_reserved() {
        // PDPT entry 1 maps linear 1 GiB..2 GiB to physical 3 GiB.
        let (p, mut st) = long_tables(0, 0);
        p.memory().write(0x2008, &(0xc000_0000u64 | 0x87).to_le_bytes());
        let mut tlb = Tlb::default();
        let e = translate(&mut st, &mut tlb, &p, 0x4123_4567, Acc::Write, false).unwrap();
        assert_eq!(e.phys, 0xc123_4000);
        let mut b = [0u8; 8];
        p.memory().read(0x2008, &mut b);
        assert_eq!(u64::from_le_bytes(b) & 0x60, 0x60, "A and D set on the 1-GiB leaf");
        for bit in [13, 20, 29] {
            p.memory().write(0x2008, &(0xc000_0000u64 | 0x87 | 1 << bit).to_le_bytes());
            let err = translate(&mut st, &mut Tlb::default(), &p, 0x4000_0000, Acc::Read, false).unwrap_err();
            assert_eq!(err, Fault::exc_code(vec::PF, pfec::P | pfec::RSVD), "bit {bit}");
        }
    }

    #[test]
    fn invlpg_anywhere_in_a_large_page_drops_all_of_its_pieces() {
        let (p, mut st) = long_tables(0x3000 | 7, 0x40_0000 | 0x87);
        p.memory().write(0x3008, &(0x80_0000u64 | 0x83).to_le_bytes());
        let mut tlb = Tlb::default();
        for lin in [0x1000, 0x5000, 0x20_3000] {
            translate(&mut st, &mut tlb, &p, lin, Acc::Read, false).unwrap();
        }
        tlb.flush_page(0x1_f000);
        assert_eq!(tlb.valid_entries().count(), 0, "every piece of both 2-MiB pages dropped");
    }

    /// Tables where linear page 0x5000 is a user page and 0x6000 a supervisor one.
    fn user_and_supervisor_pages() -> (BasicPlatform, CpuState) {
        let (p, mut st) = long_tables(0x3000 | 7, 0x4000 | 7);
        p.memory().write(0x4000 + 5 * 8, &(0x5000u64 | 7).to_le_bytes());
        p.memory().write(0x4000 + 6 * 8, &(0x6000u64 | 3).to_le_bytes());
        st.efer &= !efer::NXE;
        (p, st)
    }

    #[test]
    fn smep_refuses_supervisor_fetches_from_user_pages() {
        let (p, mut st) = user_and_supervisor_pages();
        let mut tlb = Tlb::default();
        // Cached by a user fetch first: the TLB hit must not let the supervisor through.
        translate(&mut st, &mut tlb, &p, 0x5000, Acc::Fetch, true).unwrap();
        assert!(translate(&mut st, &mut tlb, &p, 0x5000, Acc::Fetch, false).is_ok(), "no SMEP");
        st.cr4 |= cr4::SMEP;
        let err = translate(&mut st, &mut tlb, &p, 0x5010, Acc::Fetch, false).unwrap_err();
        assert_eq!(err, Fault::exc_code(vec::PF, pfec::P | pfec::I), "I reported under SMEP without NXE");
        assert!(translate(&mut st, &mut tlb, &p, 0x6000, Acc::Fetch, false).is_ok());
        assert!(translate(&mut st, &mut tlb, &p, 0x5000, Acc::Read, false).is_ok(), "data reads unaffected");
    }

    #[test]
    fn smap_follows_cpl_and_ac_and_never_leaves_a_user_page_cached_when_locked() {
        let (p, mut st) = user_and_supervisor_pages();
        st.cr4 |= cr4::SMAP;
        let mut tlb = Tlb::default();
        let err = translate(&mut st, &mut tlb, &p, 0x5008, Acc::Write, false).unwrap_err();
        assert_eq!(err, Fault::exc_code(vec::PF, pfec::P | pfec::W));
        assert_eq!(st.cr2, 0x5008);
        assert_eq!(tlb.valid_entries().count(), 0, "nothing cached by the refused walk");
        st.rflags |= fl::AC;
        assert!(translate(&mut st, &mut tlb, &p, 0x5008, Acc::Write, false).is_ok(), "AC=1 at CPL 0");
        keep_smap(&st, &mut tlb);
        assert_eq!(tlb.valid_entries().count(), 1, "kept while AC=1");
        // At CPL 3 every supervisor access is implicit: refused whatever AC says, even
        // on a TLB hit.
        st.cpl = 3;
        assert!(translate(&mut st, &mut tlb, &p, 0x5008, Acc::Read, false).is_err());
        assert!(translate(&mut st, &mut tlb, &p, 0x5008, Acc::Read, true).is_ok(), "user access");
        assert!(translate(&mut st, &mut tlb, &p, 0x6000, Acc::Read, false).is_ok(), "supervisor page");
        // Back at CPL 0 with AC=0: the user page leaves the TLB, the supervisor one stays.
        st.cpl = 0;
        st.rflags &= !fl::AC;
        keep_smap(&st, &mut tlb);
        assert_eq!(tlb.valid_entries().map(|v| v.linear).collect::<Vec<_>>(), [0x6000]);
        assert!(translate(&mut st, &mut tlb, &p, 0x5008, Acc::Read, false).is_err());
        // Without SMEP the supervisor may fetch from the user page, but that leaves no
        // entry a data access could hit.
        assert!(translate(&mut st, &mut tlb, &p, 0x5008, Acc::Fetch, false).is_ok());
        assert_eq!(tlb.valid_entries().map(|v| v.linear).collect::<Vec<_>>(), [0x6000]);
    }

    #[test]
    fn four_mib_page_without_pse36_reserves_bits_21_13() {
        let p = BasicPlatform::new(0x10_0000).unwrap();
        let mut st = paged_state(0x1000);
        st.cr4 = cr4::PSE;
        p.memory().write(0x1000, &(0x0040_0000u32 | 0x87 | (1 << 13)).to_le_bytes());
        let err = translate(&mut st, &mut Tlb::default(), &p, 0x1000, Acc::Write, false).unwrap_err();
        assert_eq!(err, Fault::exc_code(vec::PF, pfec::P | pfec::W | pfec::RSVD));
        p.memory().write(0x1000, &(0x0040_0000u32 | 0x87).to_le_bytes());
        assert_eq!(translate(&mut st, &mut Tlb::default(), &p, 0x1000, Acc::Write, false).unwrap().phys, 0x40_1000);
    }

    #[test]
    fn valid_entries_show_each_translation_with_its_rights_until_flushed() {
        let p = BasicPlatform::new(0x10_0000).unwrap();
        let m = p.memory();
        // PDE 0 -> table 0x2000; PTE 5 -> page 0x7000 user read-only global; PTE 6 -> 0x8000
        // supervisor writable.
        m.write(0x1000, &(0x2000u32 | 7).to_le_bytes());
        m.write(0x2000 + 5 * 4, &(0x7000u32 | 0x105).to_le_bytes());
        m.write(0x2000 + 6 * 4, &(0x8000u32 | 3).to_le_bytes());
        let mut st = paged_state(0x1000);
        st.cr4 = cr4::PGE;
        let mut tlb = Tlb::default();
        assert_eq!(tlb.valid_entries().count(), 0);
        translate(&mut st, &mut tlb, &p, 0x6010, Acc::Write, false).unwrap();
        translate(&mut st, &mut tlb, &p, 0x5020, Acc::Read, true).unwrap();
        let mut views: Vec<TlbView> = tlb.valid_entries().collect();
        views.sort_by_key(|v| v.linear);
        assert_eq!(
            views,
            [
                TlbView {
                    linear: 0x5000,
                    physical: 0x7000,
                    ram: true,
                    user: true,
                    writable: false,
                    dirty: false,
                    no_execute: false,
                    global: true
                },
                TlbView {
                    linear: 0x6000,
                    physical: 0x8000,
                    ram: true,
                    user: false,
                    writable: true,
                    dirty: true,
                    no_execute: false,
                    global: false
                },
            ]
        );
        tlb.flush(true);
        assert_eq!(tlb.valid_entries().map(|v| v.linear).collect::<Vec<_>>(), [0x5000], "global entry kept");
        tlb.flush_page(0x5fff);
        assert_eq!(tlb.valid_entries().count(), 0);
    }
}
