//! The architectural state of one x86 CPU, laid out `#[repr(C)]` so that a JIT can
//! address every field at a fixed offset.
//!
//! Intel SDM Vol. 3A §2 (system registers), §3.4 (segment registers and their hidden
//! descriptor caches), Vol. 1 §3.4.3 (EFLAGS).

use super::flags::LazyFlags;

/// EFLAGS bits (SDM Vol. 1 §3.4.3).
pub mod fl {
    /// Carry flag.
    pub const CF: u64 = 1 << 0;
    /// Bit 1, always set.
    pub const FIXED1: u64 = 1 << 1;
    /// Parity flag.
    pub const PF: u64 = 1 << 2;
    /// Auxiliary carry flag.
    pub const AF: u64 = 1 << 4;
    /// Zero flag.
    pub const ZF: u64 = 1 << 6;
    /// Sign flag.
    pub const SF: u64 = 1 << 7;
    /// Trap flag (single step).
    pub const TF: u64 = 1 << 8;
    /// Interrupt enable flag.
    pub const IF: u64 = 1 << 9;
    /// Direction flag.
    pub const DF: u64 = 1 << 10;
    /// Overflow flag.
    pub const OF: u64 = 1 << 11;
    /// I/O privilege level (2 bits).
    pub const IOPL: u64 = 3 << 12;
    /// Nested task.
    pub const NT: u64 = 1 << 14;
    /// Resume flag.
    pub const RF: u64 = 1 << 16;
    /// Virtual-8086 mode.
    pub const VM: u64 = 1 << 17;
    /// Alignment check.
    pub const AC: u64 = 1 << 18;
    /// Virtual interrupt flag.
    pub const VIF: u64 = 1 << 19;
    /// Virtual interrupt pending.
    pub const VIP: u64 = 1 << 20;
    /// CPUID available.
    pub const ID: u64 = 1 << 21;
    /// The six arithmetic status flags.
    pub const ARITH: u64 = CF | PF | AF | ZF | SF | OF;
    /// Bits software can change on this CPU model.
    pub const WRITABLE: u64 = ARITH | TF | IF | DF | IOPL | NT | RF | VM | AC | VIF | VIP | ID;
}

/// CR0 bits (SDM Vol. 3A §2.5).
pub mod cr0 {
    /// Protection enable.
    pub const PE: u64 = 1 << 0;
    /// Monitor coprocessor.
    pub const MP: u64 = 1 << 1;
    /// x87 emulation.
    pub const EM: u64 = 1 << 2;
    /// Task switched.
    pub const TS: u64 = 1 << 3;
    /// Extension type (always 1).
    pub const ET: u64 = 1 << 4;
    /// Numeric error reporting.
    pub const NE: u64 = 1 << 5;
    /// Supervisor write protect.
    pub const WP: u64 = 1 << 16;
    /// Alignment mask.
    pub const AM: u64 = 1 << 18;
    /// Not write-through.
    pub const NW: u64 = 1 << 29;
    /// Cache disable.
    pub const CD: u64 = 1 << 30;
    /// Paging.
    pub const PG: u64 = 1 << 31;
}

/// CR4 bits (SDM Vol. 3A §2.5).
pub mod cr4 {
    /// Virtual-8086 mode extensions.
    pub const VME: u64 = 1 << 0;
    /// Protected-mode virtual interrupts.
    pub const PVI: u64 = 1 << 1;
    /// RDTSC restricted to CPL 0.
    pub const TSD: u64 = 1 << 2;
    /// Debugging extensions.
    pub const DE: u64 = 1 << 3;
    /// 4 MiB pages in 32-bit paging.
    pub const PSE: u64 = 1 << 4;
    /// Physical address extension.
    pub const PAE: u64 = 1 << 5;
    /// Machine-check enable.
    pub const MCE: u64 = 1 << 6;
    /// Global pages.
    pub const PGE: u64 = 1 << 7;
    /// RDPMC at any CPL.
    pub const PCE: u64 = 1 << 8;
    /// FXSAVE/FXRSTOR and SSE enabled.
    pub const OSFXSR: u64 = 1 << 9;
    /// Unmasked SIMD exceptions reported as #XM.
    pub const OSXMMEXCPT: u64 = 1 << 10;
    /// User-mode instruction prevention: SGDT, SIDT, SLDT, SMSW and STR #GP at CPL > 0.
    pub const UMIP: u64 = 1 << 11;
    /// RDFSBASE and friends enabled.
    pub const FSGSBASE: u64 = 1 << 16;
    /// Process-context identifiers: CR3 bits 11:0 name the address space.
    pub const PCIDE: u64 = 1 << 17;
    /// XSAVE, XRSTOR, XGETBV and XSETBV enabled (accepted only on models with XSAVE).
    pub const OSXSAVE: u64 = 1 << 18;
    /// Supervisor-mode execution prevention: no instruction fetches from user pages at
    /// CPL < 3.
    pub const SMEP: u64 = 1 << 20;
    /// Supervisor-mode access prevention: no supervisor data accesses to user pages
    /// unless CPL < 3 and RFLAGS.AC = 1.
    pub const SMAP: u64 = 1 << 21;
    /// Bits this CPU accepts on every model; UMIP, PCIDE, OSXSAVE, SMEP and SMAP also need
    /// the model's feature ([`crate::interp::model::CpuModel::cr4_supported`]).
    pub const SUPPORTED: u64 = VME | PVI | TSD | DE | PSE | PAE | MCE | PGE | PCE | OSFXSR | OSXMMEXCPT | FSGSBASE;
}

/// EFER bits (SDM Vol. 3A §2.2.1).
pub mod efer {
    /// SYSCALL/SYSRET enable.
    pub const SCE: u64 = 1 << 0;
    /// Long mode enable.
    pub const LME: u64 = 1 << 8;
    /// Long mode active.
    pub const LMA: u64 = 1 << 10;
    /// No-execute enable.
    pub const NXE: u64 = 1 << 11;
    /// Bits software may write.
    pub const WRITABLE: u64 = SCE | LME | NXE;
}

/// Segment register numbers in encoding order (the ModRM `sreg` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Seg {
    /// ES.
    Es = 0,
    /// CS.
    Cs = 1,
    /// SS.
    Ss = 2,
    /// DS.
    Ds = 3,
    /// FS.
    Fs = 4,
    /// GS.
    Gs = 5,
}

impl Seg {
    /// The segment register with encoding `n` (0-5).
    pub fn from_index(n: u8) -> Option<Seg> {
        Some(match n {
            0 => Seg::Es,
            1 => Seg::Cs,
            2 => Seg::Ss,
            3 => Seg::Ds,
            4 => Seg::Fs,
            5 => Seg::Gs,
            _ => return None,
        })
    }
}

/// Descriptor attribute bits kept in [`Segment::attrs`], as in descriptor bytes 5-6.
pub mod attr {
    /// Accessed (type bit 0).
    pub const ACCESSED: u16 = 1 << 0;
    /// Data: writable; code: readable (type bit 1).
    pub const RW: u16 = 1 << 1;
    /// Data: expand-down; code: conforming (type bit 2).
    pub const DC: u16 = 1 << 2;
    /// Code segment (type bit 3).
    pub const CODE: u16 = 1 << 3;
    /// Code or data (1) versus system (0) descriptor.
    pub const S: u16 = 1 << 4;
    /// Present.
    pub const P: u16 = 1 << 7;
    /// 64-bit code segment.
    pub const L: u16 = 1 << 13;
    /// Default operation size 32 bits (code) / big (stack, expand-down).
    pub const DB: u16 = 1 << 14;
    /// Granularity 4 KiB.
    pub const G: u16 = 1 << 15;
}

/// A segment register with its hidden descriptor cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct Segment {
    /// Linear base address.
    pub base: u64,
    /// Limit in bytes (already scaled by G).
    pub limit: u32,
    /// Visible selector.
    pub selector: u16,
    /// Attribute bits (see [`attr`]): type, S, DPL, P, AVL, L, D/B, G.
    pub attrs: u16,
}

impl Segment {
    /// A real-mode style segment: base = selector * 16, 64 KiB limit, data attributes.
    pub fn real(selector: u16) -> Self {
        Segment { base: (selector as u64) << 4, limit: 0xffff, selector, attrs: 0x93 }
    }

    /// Descriptor privilege level.
    pub fn dpl(&self) -> u8 {
        ((self.attrs >> 5) & 3) as u8
    }

    /// True when the cache holds a present descriptor (not a null selector).
    pub fn present(&self) -> bool {
        self.attrs & attr::P != 0
    }
}

/// A descriptor-table register (GDTR, IDTR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct DescTable {
    /// Linear base.
    pub base: u64,
    /// Limit (size - 1).
    pub limit: u32,
}

/// The model-specific registers the CPU keeps itself (platform MSRs such as the
/// local APIC's go through `Platform::msr_read`/`msr_write`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct Msrs {
    /// IA32_SYSENTER_CS.
    pub sysenter_cs: u64,
    /// IA32_SYSENTER_ESP.
    pub sysenter_esp: u64,
    /// IA32_SYSENTER_EIP.
    pub sysenter_eip: u64,
    /// STAR: SYSCALL/SYSRET selectors and legacy EIP.
    pub star: u64,
    /// LSTAR: 64-bit SYSCALL target.
    pub lstar: u64,
    /// CSTAR: compatibility-mode SYSCALL target.
    pub cstar: u64,
    /// SFMASK: RFLAGS bits cleared by SYSCALL.
    pub sfmask: u64,
    /// KERNEL_GS_BASE: swapped with GS.base by SWAPGS.
    pub kernel_gs_base: u64,
    /// TSC_AUX, read by RDTSCP.
    pub tsc_aux: u64,
    /// IA32_PAT.
    pub pat: u64,
    /// IA32_APIC_BASE as seen when the platform has no APIC MSR.
    pub apic_base: u64,
    /// IA32_MISC_ENABLE.
    pub misc_enable: u64,
    /// IA32_MTRR_DEF_TYPE.
    pub mtrr_def_type: u64,
    /// Variable-range MTRR base/mask pairs (0x200..0x20F).
    pub mtrr_var: [u64; 16],
    /// Fixed-range MTRRs (0x250, 0x258, 0x259, 0x268..0x26F).
    pub mtrr_fixed: [u64; 11],
    /// Offset added to the clock-derived TSC (written by WRMSR to IA32_TSC).
    pub tsc_offset: u64,
}

/// x87 FPU state: 80-bit registers as raw little-endian bytes, plus the control words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct X87State {
    /// ST registers in physical order (R0..R7), 80-bit extended precision.
    pub regs: [[u8; 10]; 8],
    /// Control word.
    pub fcw: u16,
    /// Status word (TOP in bits 11-13).
    pub fsw: u16,
    /// Full tag word (2 bits per register).
    pub ftw: u16,
    /// Last opcode.
    pub fop: u16,
    /// Last instruction pointer.
    pub fip: u64,
    /// Last data pointer.
    pub fdp: u64,
}

impl Default for X87State {
    fn default() -> Self {
        // FNINIT state (SDM Vol. 1 §8.1.10): FCW=037Fh, all registers empty.
        X87State { regs: [[0; 10]; 8], fcw: 0x037f, fsw: 0, ftw: 0xffff, fop: 0, fip: 0, fdp: 0 }
    }
}

/// SSE state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct SseState {
    /// XMM0..XMM15 as two little-endian quadwords each.
    pub xmm: [[u64; 2]; 16],
    /// MXCSR.
    pub mxcsr: u32,
}

impl Default for SseState {
    fn default() -> Self {
        SseState { xmm: [[0; 2]; 16], mxcsr: 0x1f80 }
    }
}

/// Operating mode derived from CR0.PE, EFLAGS.VM, EFER.LMA and CS.L.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Mode {
    /// Real-address mode.
    #[default]
    Real = 0,
    /// 16/32-bit protected mode.
    Protected = 1,
    /// Virtual-8086 mode.
    V86 = 2,
    /// Long mode, compatibility submode.
    Compat = 3,
    /// Long mode, 64-bit submode.
    Long64 = 4,
}

/// The architectural state of the CPU.
#[derive(Debug, Clone)]
#[repr(C)]
pub struct CpuState {
    /// RAX..R15 in encoding order.
    pub gpr: [u64; 16],
    /// Instruction pointer (offset into CS).
    pub rip: u64,
    /// RFLAGS; the arithmetic flags are stale while `lazy` holds a pending result.
    pub rflags: u64,
    /// The last flag-setting arithmetic operation (lazy flags).
    pub lazy: LazyFlags,
    /// ES, CS, SS, DS, FS, GS.
    pub seg: [Segment; 6],
    /// LDTR.
    pub ldtr: Segment,
    /// Task register.
    pub tr: Segment,
    /// GDTR.
    pub gdtr: DescTable,
    /// IDTR.
    pub idtr: DescTable,
    /// CR0.
    pub cr0: u64,
    /// CR2 (page-fault linear address).
    pub cr2: u64,
    /// CR3.
    pub cr3: u64,
    /// CR4.
    pub cr4: u64,
    /// CR8 (task priority).
    pub cr8: u64,
    /// DR0..DR7 (DR4/DR5 alias DR6/DR7).
    pub dr: [u64; 8],
    /// IA32_EFER.
    pub efer: u64,
    /// CPU-owned MSRs.
    pub msr: Msrs,
    /// x87 state.
    pub x87: X87State,
    /// SSE state.
    pub sse: SseState,
    /// XCR0, the state components XSAVE manages (bit 0, x87, always set).
    pub xcr0: u64,
    /// State of the RDRAND/RDSEED generator (`ops/random.rs`).
    pub rng: u64,
    /// Current privilege level.
    pub cpl: u8,
    /// Operating mode (derived; kept in step by [`CpuState::update_mode`]).
    pub mode: Mode,
    /// True after HLT until an interrupt wakes the CPU.
    pub halted: bool,
    /// Interrupts are inhibited for one instruction (after STI, MOV SS, POP SS).
    pub int_shadow: bool,
    /// NMIs are blocked until the next IRET.
    pub nmi_blocked: bool,
    /// The CPU model: what CPUID reports and which instructions exist.
    pub model: super::model::CpuModel,
    /// Bits 255:128 of YMM0..YMM15 as two little-endian quadwords each (AVX); bits
    /// 127:0 are `sse.xmm`. Legacy SSE instructions leave them alone, VEX.128 ones zero
    /// them.
    pub ymm_hi: [[u64; 2]; 16],
}

impl Default for CpuState {
    fn default() -> Self {
        let mut cs = Segment::real(0xf000);
        cs.base = 0xffff_0000;
        cs.attrs = 0x9b;
        CpuState {
            gpr: [0; 16],
            rip: 0xfff0,
            rflags: fl::FIXED1,
            lazy: LazyFlags::default(),
            seg: [Segment::real(0), cs, Segment::real(0), Segment::real(0), Segment::real(0), Segment::real(0)],
            ldtr: Segment { attrs: 0x82, limit: 0xffff, ..Segment::default() },
            tr: Segment { attrs: 0x8b, limit: 0xffff, ..Segment::default() },
            gdtr: DescTable { base: 0, limit: 0xffff },
            idtr: DescTable { base: 0, limit: 0x3ff },
            cr0: cr0::ET | cr0::CD | cr0::NW,
            cr2: 0,
            cr3: 0,
            cr4: 0,
            cr8: 0,
            dr: [0, 0, 0, 0, 0xffff_0ff0, 0x400, 0xffff_0ff0, 0x400],
            efer: 0,
            msr: Msrs { pat: 0x0007_0406_0007_0406, apic_base: 0xfee0_0900, misc_enable: 1, ..Msrs::default() },
            x87: X87State::default(),
            sse: SseState::default(),
            xcr0: 1,
            rng: super::ops::random::RNG_SEED,
            cpl: 0,
            mode: Mode::Real,
            halted: false,
            int_shadow: false,
            nmi_blocked: false,
            model: super::model::CpuModel::Max,
            ymm_hi: [[0; 2]; 16],
        }
    }
}

impl CpuState {
    /// Folds the pending operation's CF into RFLAGS (before INC or DEC, which keep CF,
    /// replace the lazy flags).
    #[inline]
    pub fn fold_carry(&mut self) {
        self.rflags = (self.rflags & !fl::CF) | self.lazy.carry(self.rflags) as u64;
    }

    /// Recomputes [`CpuState::mode`] from CR0, EFLAGS, EFER and CS.
    pub fn update_mode(&mut self) {
        self.mode = if self.cr0 & cr0::PE == 0 {
            Mode::Real
        } else if self.efer & efer::LMA != 0 {
            if self.seg[Seg::Cs as usize].attrs & attr::L != 0 {
                Mode::Long64
            } else {
                Mode::Compat
            }
        } else if self.rflags & fl::VM != 0 {
            Mode::V86
        } else {
            Mode::Protected
        };
        match self.mode {
            Mode::Real => self.cpl = 0,
            Mode::V86 => self.cpl = 3,
            _ => {}
        }
    }

    /// Code size in bits (16, 32 or 64) for the decoder.
    pub fn bitness(&self) -> u32 {
        match self.mode {
            Mode::Long64 => 64,
            Mode::Real | Mode::V86 => {
                if self.mode == Mode::Real && self.seg[Seg::Cs as usize].attrs & attr::DB != 0 {
                    32
                } else {
                    16
                }
            }
            _ => {
                if self.seg[Seg::Cs as usize].attrs & attr::DB != 0 {
                    32
                } else {
                    16
                }
            }
        }
    }

    /// Stack address size in bytes (SS.B in legacy modes, 8 in 64-bit mode).
    pub fn stack_size(&self) -> u8 {
        match self.mode {
            Mode::Long64 => 8,
            Mode::V86 => 2,
            _ if self.seg[Seg::Ss as usize].attrs & attr::DB != 0 => 4,
            _ => 2,
        }
    }

    /// True in protected-mode flavours (not real, not v8086).
    pub fn protected(&self) -> bool {
        !matches!(self.mode, Mode::Real | Mode::V86)
    }

    /// True in 64-bit mode.
    pub fn long64(&self) -> bool {
        self.mode == Mode::Long64
    }

    /// Segment register `s`.
    pub fn sreg(&self, s: Seg) -> &Segment {
        &self.seg[s as usize]
    }

    /// IOPL from RFLAGS.
    pub fn iopl(&self) -> u8 {
        ((self.rflags >> 12) & 3) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_state_is_real_mode_at_fff0() {
        let s = CpuState::default();
        assert_eq!(s.seg[Seg::Cs as usize].base + s.rip, 0xffff_fff0);
        assert_eq!(s.bitness(), 16);
        assert_eq!(s.cr0 & cr0::ET, cr0::ET);
    }

    #[test]
    fn mode_follows_control_registers() {
        let mut s = CpuState::default();
        s.cr0 |= cr0::PE;
        s.seg[Seg::Cs as usize].attrs = 0xc09b;
        s.update_mode();
        assert_eq!((s.mode, s.bitness()), (Mode::Protected, 32));
        s.efer |= efer::LMA;
        s.seg[Seg::Cs as usize].attrs = 0xa09b;
        s.update_mode();
        assert_eq!((s.mode, s.bitness()), (Mode::Long64, 64));
    }
}
