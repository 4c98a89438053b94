//! The engine-level debugging interface a debugger front end (the gdb stub, the monitor)
//! drives: the full register state with hidden segment parts, breakpoints that never
//! modify guest memory, watchpoints, single-step, and guest-virtual memory access through
//! the guest's own page tables without side effects.
//!
//! - [`EngineDebug`]: what an engine offers (the interpreter implements it; an engine that
//!   cannot debug returns `None` from [`crate::engine::Engine::debug`]).
//! - [`DebugStop`]: why a run stopped for the debugger ([`crate::engine::Exit::Debug`]).
//! - [`walk`]: a read-only page walk (no A/D updates, no exceptions) for every paging mode.
//! - [`describe`]: descriptors and gates in words.
//! - [`diagnose`]: the triple-fault diagnosis.
//! - [`trace`]: the events a tracer receives ([`trace::TraceSink`]).
//! - [`memory`]: guest-virtual reads and writes of RAM and ROM through [`walk`].
//! - [`TlbView`]: the translations an engine's software TLB holds (monitor `info tlb`).
//!
//! Addresses are linear (segment base + offset; in 64-bit mode the offset itself), as
//! QEMU's gdb stub treats them: with the flat segments every kernel uses, that is the
//! virtual address gdb's symbols name.

pub mod describe;
pub mod diagnose;
pub mod memory;
pub mod trace;
pub mod walk;

/// What a breakpoint or watchpoint looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchKind {
    /// Data writes.
    Write,
    /// Data reads.
    Read,
    /// Data reads and writes.
    Access,
}

/// Kinds of instruction breakpoints. Both are checked by the engine before executing an
/// instruction at the address; neither writes an INT3 into guest memory. Hardware ones
/// are limited to [`MAX_HW_BREAKPOINTS`], as on a CPU with four debug registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakpointKind {
    /// A gdb software breakpoint (`break`).
    Software,
    /// A gdb hardware breakpoint (`hbreak`).
    Hardware,
}

/// Hardware breakpoints available at once (x86 has DR0-DR3).
pub const MAX_HW_BREAKPOINTS: usize = 4;

/// Watchpoints available at once (more than DR0-DR3: the engine checks them in software).
pub const MAX_WATCHPOINTS: usize = 16;

/// Why the engine stopped for the debugger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebugStop {
    /// The next instruction is at a breakpoint (linear address); it has not executed.
    Breakpoint {
        /// Linear address of the instruction.
        addr: u64,
        /// The kind of breakpoint that matched.
        kind: BreakpointKind,
    },
    /// The instruction that just retired accessed a watched range.
    Watchpoint {
        /// The kind of the watchpoint that matched.
        kind: WatchKind,
        /// The linear address accessed, clamped into the watched range.
        addr: u64,
    },
    /// One instruction was executed (or one exception or interrupt delivered) while
    /// single-stepping.
    Step,
}

/// The CPU mode, which selects the register layout a debugger shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CpuMode {
    /// Real-address mode (16-bit code, or 32-bit under a big real-mode CS).
    #[default]
    Real,
    /// Virtual-8086 mode.
    V86,
    /// Protected mode with a 16-bit code segment.
    Protected16,
    /// Protected mode with a 32-bit code segment.
    Protected32,
    /// Long mode, compatibility submode (16- or 32-bit code).
    Compat,
    /// Long mode, 64-bit code.
    Long64,
}

impl CpuMode {
    /// Words for messages.
    pub fn describe(self) -> &'static str {
        match self {
            CpuMode::Real => "real mode",
            CpuMode::V86 => "virtual-8086 mode",
            CpuMode::Protected16 => "16-bit protected mode",
            CpuMode::Protected32 => "32-bit protected mode",
            CpuMode::Compat => "compatibility mode (long mode, 32/16-bit code)",
            CpuMode::Long64 => "64-bit long mode",
        }
    }
}

/// A segment register with its hidden descriptor cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SegmentReg {
    /// Visible selector.
    pub selector: u16,
    /// Hidden linear base.
    pub base: u64,
    /// Hidden limit in bytes (scaled by G).
    pub limit: u32,
    /// Hidden attributes as in descriptor bytes 5-6 (type, S, DPL, P, AVL, L, D/B, G).
    pub attrs: u16,
}

/// GDTR or IDTR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TableReg {
    /// Linear base.
    pub base: u64,
    /// Limit (size - 1).
    pub limit: u32,
}

/// x87 state in the form gdb shows it (SDM Vol. 1 §8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FpuRegs {
    /// ST(0)..ST(7) in stack order (ST(i) is physical register (TOP + i) mod 8), 80-bit.
    pub st: [[u8; 10]; 8],
    /// Control word.
    pub fcw: u16,
    /// Status word.
    pub fsw: u16,
    /// Full tag word (two bits per physical register).
    pub ftw: u16,
    /// Last opcode.
    pub fop: u16,
    /// Last instruction pointer (offset).
    pub fip: u64,
    /// Last data pointer (offset).
    pub fdp: u64,
}

/// Every register a debugger reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DebugRegs {
    /// RAX..R15 in encoding order.
    pub gpr: [u64; 16],
    /// RIP (offset into CS).
    pub rip: u64,
    /// RFLAGS with the arithmetic flags up to date.
    pub rflags: u64,
    /// ES, CS, SS, DS, FS, GS (encoding order).
    pub seg: [SegmentReg; 6],
    /// LDTR.
    pub ldtr: SegmentReg,
    /// Task register.
    pub tr: SegmentReg,
    /// GDTR.
    pub gdtr: TableReg,
    /// IDTR.
    pub idtr: TableReg,
    /// CR0.
    pub cr0: u64,
    /// CR2.
    pub cr2: u64,
    /// CR3.
    pub cr3: u64,
    /// CR4.
    pub cr4: u64,
    /// CR8.
    pub cr8: u64,
    /// IA32_EFER.
    pub efer: u64,
    /// IA32_KERNEL_GS_BASE.
    pub kernel_gs_base: u64,
    /// DR0..DR7 (the guest's own debug registers).
    pub dr: [u64; 8],
    /// x87.
    pub fpu: FpuRegs,
    /// XMM0..XMM15.
    pub xmm: [u128; 16],
    /// MXCSR.
    pub mxcsr: u32,
    /// The mode these registers put the CPU in (derived; ignored when writing).
    pub mode: CpuMode,
    /// Current privilege level (derived; ignored when writing).
    pub cpl: u8,
}

/// Segment register numbers in [`DebugRegs::seg`].
pub mod seg {
    /// ES.
    pub const ES: usize = 0;
    /// CS.
    pub const CS: usize = 1;
    /// SS.
    pub const SS: usize = 2;
    /// DS.
    pub const DS: usize = 3;
    /// FS.
    pub const FS: usize = 4;
    /// GS.
    pub const GS: usize = 5;
    /// Register names in encoding order.
    pub const NAMES: [&str; 6] = ["es", "cs", "ss", "ds", "fs", "gs"];
}

impl DebugRegs {
    /// The paging controls of these registers.
    pub fn paging(&self) -> walk::Paging {
        walk::Paging { cr0: self.cr0, cr3: self.cr3, cr4: self.cr4, efer: self.efer }
    }

    /// Linear address of the next instruction (CS base + RIP, truncated to 32 bits outside
    /// 64-bit mode).
    pub fn pc_linear(&self) -> u64 {
        if self.mode == CpuMode::Long64 {
            self.rip
        } else {
            self.seg[seg::CS].base.wrapping_add(self.rip) & 0xffff_ffff
        }
    }
}

/// Failures of debugger requests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DebugError {
    /// All hardware breakpoints or watchpoints are in use.
    #[error("no free {0} slot (at most {1})")]
    NoSlot(&'static str, usize),
    /// The watch length (or its alignment) is not supported by the engine.
    #[error("watch length {0} is not supported here")]
    BadLength(u64),
    /// The engine cannot do this.
    #[error("not supported by this engine: {0}")]
    Unsupported(&'static str),
}

/// One translation cached in an engine's software TLB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlbView {
    /// Linear address of the 4 KiB page.
    pub linear: u64,
    /// Physical address it maps to.
    pub physical: u64,
    /// The page is guest RAM (else ROM, MMIO or unmapped: accesses go through the bus).
    pub ram: bool,
    /// CPL 3 may access it.
    pub user: bool,
    /// Writable at every paging level.
    pub writable: bool,
    /// The leaf entry's dirty bit is known to be set (writes need no walk).
    pub dirty: bool,
    /// Execute-disabled at some level.
    pub no_execute: bool,
    /// Global page (kept across CR3 writes).
    pub global: bool,
}

/// What a debugger set up on an engine: handed from the old engine to the new one when
/// the machine resets, so breakpoints, watchpoints and the trace carry on.
#[derive(Default)]
pub struct DebugSetup {
    /// Instruction breakpoints (linear address, kind).
    pub breakpoints: Vec<(u64, BreakpointKind)>,
    /// Watchpoints (linear address, length, kind).
    pub watchpoints: Vec<(u64, u64, WatchKind)>,
    /// The trace sink (`--trace`).
    pub trace: Option<Box<dyn trace::TraceSink>>,
}

impl DebugSetup {
    /// Installs this setup on `engine` (a breakpoint it refuses is logged and dropped).
    pub fn install(self, engine: &mut dyn EngineDebug) {
        for (addr, kind) in self.breakpoints {
            if let Err(e) = engine.add_breakpoint(addr, kind) {
                log::warn!("breakpoint at {addr:#x} lost at the reset: {e}");
            }
        }
        for (addr, len, kind) in self.watchpoints {
            if let Err(e) = engine.add_watchpoint(addr, len, kind) {
                log::warn!("watchpoint at {addr:#x} lost at the reset: {e}");
            }
        }
        if let Some(sink) = self.trace {
            engine.set_trace(Some(sink));
        }
    }
}

/// The debugging operations of an engine.
pub trait EngineDebug {
    /// All registers.
    fn registers(&self) -> DebugRegs;

    /// Writes the registers (the derived `mode` and `cpl` are recomputed, not taken).
    fn set_registers(&mut self, regs: &DebugRegs);

    /// Adds an instruction breakpoint at linear `addr`.
    fn add_breakpoint(&mut self, addr: u64, kind: BreakpointKind) -> Result<(), DebugError>;

    /// Removes an instruction breakpoint; false when there was none.
    fn remove_breakpoint(&mut self, addr: u64, kind: BreakpointKind) -> bool;

    /// Adds a watchpoint on `len` bytes at linear `addr`.
    fn add_watchpoint(&mut self, addr: u64, len: u64, kind: WatchKind) -> Result<(), DebugError>;

    /// Removes a watchpoint; false when there was none.
    fn remove_watchpoint(&mut self, addr: u64, len: u64, kind: WatchKind) -> bool;

    /// Prepares the next run: `step` stops it after one instruction; a breakpoint at the
    /// current instruction is stepped over once (the debugger stopped there).
    fn resume(&mut self, step: bool);

    /// Drops every breakpoint and watchpoint and stops stepping (the debugger left).
    fn detach(&mut self);

    /// Sends instructions, exceptions/interrupts and port accesses to `sink` (`None`
    /// stops tracing); false when the engine cannot trace.
    fn set_trace(&mut self, sink: Option<Box<dyn trace::TraceSink>>) -> bool;

    /// The software TLB's valid translations in linear order; `None` when the engine has
    /// no software TLB (KVM: the host CPU's TLB is not visible).
    fn tlb(&self) -> Option<Vec<TlbView>>;

    /// Takes the breakpoints, watchpoints and trace sink (the engine is left without
    /// them), to install on the engine that replaces this one at a reset.
    fn take_setup(&mut self) -> DebugSetup;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pc_linear_adds_the_cs_base_outside_64_bit_mode() {
        let mut r = DebugRegs { rip: 0x10, ..DebugRegs::default() };
        r.seg[seg::CS].base = 0xf0000;
        assert_eq!(r.pc_linear(), 0xf0010);
        r.mode = CpuMode::Protected32;
        r.seg[seg::CS].base = 0xffff_fff0;
        assert_eq!(r.pc_linear(), 0, "wraps at 4 GiB");
        r.mode = CpuMode::Long64;
        r.rip = 0xffff_ffff_8100_0000;
        assert_eq!(r.pc_linear(), 0xffff_ffff_8100_0000, "CS base ignored in 64-bit mode");
    }
}
