//! The architectural state a loader asks a CPU to start in.
//!
//! Firmware and loaders (BIOS reset, Multiboot, the Linux boot protocol) describe the
//! entry state here, independent of any engine; the interpreter and the KVM engine each
//! load it into their own registers.

/// Which mode the loader expects at entry (derived state; the registers decide).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryMode {
    /// Real mode (CR0.PE = 0).
    Real,
    /// 32-bit protected mode, paging off.
    Protected32,
    /// 64-bit long mode, paging on.
    Long64,
}

/// A segment register with its hidden descriptor cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SegmentInit {
    /// Visible selector.
    pub selector: u16,
    /// Cached base.
    pub base: u64,
    /// Cached limit in bytes (already scaled by granularity).
    pub limit: u32,
    /// Descriptor attribute bits as in the descriptor's bytes 5-6: type (0-3), S (4),
    /// DPL (5-6), P (7), AVL (12), L (13), D/B (14), G (15).
    pub attributes: u16,
}

impl SegmentInit {
    /// A real-mode segment: base = selector * 16, 64 KiB limit, read/write data
    /// (or execute/read code when `code`).
    pub fn real(selector: u16, code: bool) -> Self {
        SegmentInit {
            selector,
            base: (selector as u64) << 4,
            limit: 0xffff,
            attributes: if code { 0x9b } else { 0x93 },
        }
    }

    /// A flat 4 GiB 32-bit code segment (execute/read, accessed, DPL 0).
    pub fn flat_code32(selector: u16) -> Self {
        SegmentInit { selector, base: 0, limit: 0xffff_ffff, attributes: 0xc09b }
    }

    /// A flat 4 GiB data segment (read/write, accessed, DPL 0).
    pub fn flat_data(selector: u16) -> Self {
        SegmentInit { selector, base: 0, limit: 0xffff_ffff, attributes: 0xc093 }
    }

    /// A 64-bit code segment (L = 1).
    pub fn code64(selector: u16) -> Self {
        SegmentInit { selector, base: 0, limit: 0xffff_ffff, attributes: 0xa09b }
    }
}

/// A descriptor-table register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TableInit {
    /// Linear base.
    pub base: u64,
    /// Limit (size - 1).
    pub limit: u16,
}

/// General-purpose register numbers in [`EntryState::gpr`].
pub mod gpr {
    /// RAX.
    pub const RAX: usize = 0;
    /// RCX.
    pub const RCX: usize = 1;
    /// RDX.
    pub const RDX: usize = 2;
    /// RBX.
    pub const RBX: usize = 3;
    /// RSP.
    pub const RSP: usize = 4;
    /// RBP.
    pub const RBP: usize = 5;
    /// RSI.
    pub const RSI: usize = 6;
    /// RDI.
    pub const RDI: usize = 7;
}

/// The CPU state at entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryState {
    /// The mode the other fields describe.
    pub mode: EntryMode,
    /// RAX..R15 in encoding order (see [`gpr`]).
    pub gpr: [u64; 16],
    /// Instruction pointer (offset into CS).
    pub rip: u64,
    /// RFLAGS (bit 1 always set).
    pub rflags: u64,
    /// CS.
    pub cs: SegmentInit,
    /// DS.
    pub ds: SegmentInit,
    /// ES.
    pub es: SegmentInit,
    /// SS.
    pub ss: SegmentInit,
    /// FS.
    pub fs: SegmentInit,
    /// GS.
    pub gs: SegmentInit,
    /// GDTR.
    pub gdt: TableInit,
    /// IDTR.
    pub idt: TableInit,
    /// CR0.
    pub cr0: u64,
    /// CR3.
    pub cr3: u64,
    /// CR4.
    pub cr4: u64,
    /// EFER.
    pub efer: u64,
}

impl EntryState {
    /// The x86 power-on state: real mode at F000:FFF0 with CS base 0xFFFF0000.
    pub fn reset() -> Self {
        let mut cs = SegmentInit::real(0xf000, true);
        cs.base = 0xffff_0000;
        EntryState {
            mode: EntryMode::Real,
            gpr: [0; 16],
            rip: 0xfff0,
            rflags: 2,
            cs,
            ds: SegmentInit::real(0, false),
            es: SegmentInit::real(0, false),
            ss: SegmentInit::real(0, false),
            fs: SegmentInit::real(0, false),
            gs: SegmentInit::real(0, false),
            gdt: TableInit { base: 0, limit: 0xffff },
            idt: TableInit { base: 0, limit: 0x3ff },
            cr0: 0x6000_0010,
            cr3: 0,
            cr4: 0,
            efer: 0,
        }
    }

    /// Real mode at `cs:ip` with all data segments = `ds` and SS:SP as given.
    pub fn real_mode(cs: u16, ip: u16, ds: u16, ss: u16, sp: u16) -> Self {
        let mut s = Self::reset();
        s.cs = SegmentInit::real(cs, true);
        s.rip = ip as u64;
        for seg in [&mut s.ds, &mut s.es, &mut s.fs, &mut s.gs] {
            *seg = SegmentInit::real(ds, false);
        }
        s.ss = SegmentInit::real(ss, false);
        s.gpr[gpr::RSP] = sp as u64;
        s.cr0 = 0x10;
        s
    }

    /// Flat 32-bit protected mode, paging off, interrupts off, with the given selectors
    /// (the loader must place a matching GDT at `gdt`).
    pub fn protected32(eip: u32, code_sel: u16, data_sel: u16, gdt: TableInit) -> Self {
        let data = SegmentInit::flat_data(data_sel);
        EntryState {
            mode: EntryMode::Protected32,
            gpr: [0; 16],
            rip: eip as u64,
            rflags: 2,
            cs: SegmentInit::flat_code32(code_sel),
            ds: data,
            es: data,
            ss: data,
            fs: data,
            gs: data,
            gdt,
            idt: TableInit { base: 0, limit: 0 },
            cr0: 0x11,
            cr3: 0,
            cr4: 0,
            efer: 0,
        }
    }

    /// 64-bit long mode with paging through the tables at `cr3` (PAE, LME/LMA set).
    pub fn long64(rip: u64, code_sel: u16, data_sel: u16, gdt: TableInit, cr3: u64) -> Self {
        let mut s = Self::protected32(0, code_sel, data_sel, gdt);
        s.mode = EntryMode::Long64;
        s.rip = rip;
        s.cs = SegmentInit::code64(code_sel);
        s.cr0 = 0x8000_0011;
        s.cr3 = cr3;
        s.cr4 = 0x20;
        s.efer = 0x500;
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_vector_is_ffff_fff0() {
        let s = EntryState::reset();
        assert_eq!(s.cs.base + s.rip, 0xffff_fff0);
        assert_eq!(s.mode, EntryMode::Real);
    }

    #[test]
    fn long_mode_sets_paging_and_lma() {
        let s = EntryState::long64(0x1000, 8, 16, TableInit::default(), 0x9000);
        assert_eq!(s.cr0 & 0x8000_0001, 0x8000_0001);
        assert_eq!(s.efer & 0x500, 0x500);
        assert_eq!(s.cs.attributes & 0x2000, 0x2000);
    }
}
