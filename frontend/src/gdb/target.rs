//! The `gdbstub` target: one x86 CPU whose register layout is the one gdb last read in the
//! target description ([`Layout::Any`] unless `monitor layout` chose another), plus breakpoints, watchpoints, stepping and memory on the engine's
//! [`EngineDebug`] interface.

use super::layout::Layout;
use crate::machine::{Machine, Outcome};
use crate::monitor;
use gdbstub::arch::{Arch, RegId, Registers};
use gdbstub::common::Signal;
use gdbstub::target::ext::base::single_register_access::{SingleRegisterAccess, SingleRegisterAccessOps};
use gdbstub::target::ext::base::singlethread::{
    SingleThreadBase, SingleThreadResume, SingleThreadResumeOps, SingleThreadSingleStep, SingleThreadSingleStepOps,
};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwBreakpoint, HwBreakpointOps, HwWatchpoint, HwWatchpointOps, SwBreakpoint,
    SwBreakpointOps, WatchKind as GdbWatchKind,
};
use gdbstub::target::ext::monitor_cmd::{ConsoleOutput, MonitorCmd, MonitorCmdOps};
use gdbstub::target::ext::target_description_xml_override::{
    TargetDescriptionXmlOverride, TargetDescriptionXmlOverrideOps,
};
use gdbstub::target::{Target, TargetError, TargetResult};
use rx86_cpu::debug::{memory, BreakpointKind, CpuMode, DebugRegs, EngineDebug, WatchKind};
use std::cell::Cell;
use std::num::NonZeroUsize;

/// gdbstub's view of the x86 family: 64-bit addresses, registers whose layout is picked
/// at run time ([`Layout`]).
pub enum X86Any {}

/// A register set already encoded in the layout gdb was given.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct X86Regs {
    pc: u64,
    bytes: Vec<u8>,
}

impl Registers for X86Regs {
    type ProgramCounter = u64;

    fn pc(&self) -> u64 {
        self.pc
    }

    fn gdb_serialize(&self, mut write_byte: impl FnMut(Option<u8>)) {
        for b in &self.bytes {
            write_byte(Some(*b));
        }
    }

    fn gdb_deserialize(&mut self, bytes: &[u8]) -> Result<(), ()> {
        self.bytes = bytes.to_vec();
        Ok(())
    }
}

/// A register number as gdb sends it in `p`/`P` packets (its meaning depends on the layout).
#[derive(Debug, Clone, Copy)]
pub struct X86RegId(usize);

impl RegId for X86RegId {
    fn from_raw_id(id: usize) -> Option<(Self, Option<NonZeroUsize>)> {
        Some((X86RegId(id), None))
    }
}

impl Arch for X86Any {
    type Usize = u64;
    type Registers = X86Regs;
    type BreakpointKind = usize;
    type RegId = X86RegId;
}

/// The machine as gdb debugs it.
pub struct GdbTarget<'m> {
    machine: &'m mut Machine,
    /// The layout gdb was told about (fixed until it reads the description again).
    layout: Cell<Option<Layout>>,
    /// The layout of the CPU's mode at the last stop, and its description: what gdb gets
    /// when it (re)reads `target.xml`.
    next: (Layout, String),
    /// How the guest's run ended, once it has.
    pub outcome: Option<Outcome>,
    /// The monitor's `quit` was given.
    pub quit: bool,
    /// The layout gdb gets: [`Layout::Any`] unless `monitor layout` chose another.
    choice: LayoutChoice,
}

/// What gdb is told about registers (`monitor layout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LayoutChoice {
    /// One fixed layout.
    Fixed(Layout),
    /// The layout of the CPU's mode at each stop (`auto`), named as gdb's architecture.
    FollowMode,
}

impl<'m> GdbTarget<'m> {
    /// A target over `machine`; the engine must have a debugging interface.
    pub fn new(machine: &'m mut Machine) -> Self {
        let mut t = GdbTarget {
            machine,
            layout: Cell::new(None),
            next: (Layout::I386, String::new()),
            outcome: None,
            quit: false,
            choice: LayoutChoice::Fixed(Layout::Any),
        };
        t.note_stop();
        t
    }

    /// Prepares the description gdb gets at its next read of `target.xml` (under `monitor
    /// layout auto`, the CPU's current mode's): called whenever the guest stops.
    pub fn note_stop(&mut self) {
        let layout = match self.choice {
            LayoutChoice::Fixed(layout) => layout,
            LayoutChoice::FollowMode => Layout::for_mode(self.regs().mode),
        };
        if self.next.0 != layout || self.next.1.is_empty() {
            self.next = (layout, layout.target_xml());
        }
    }

    /// The machine.
    pub fn machine(&mut self) -> &mut Machine {
        self.machine
    }

    fn debug(&mut self) -> &mut dyn EngineDebug {
        self.machine.debug_parts().0.expect("the gdb stub starts only on engines with a debug interface")
    }

    fn regs(&mut self) -> DebugRegs {
        self.debug().registers()
    }

    /// The layout in use: the one described to gdb, else the current mode's.
    fn layout(&mut self) -> Layout {
        match self.layout.get() {
            Some(l) => l,
            None => {
                self.layout.set(Some(self.next.0));
                self.next.0
            }
        }
    }
}

impl Target for GdbTarget<'_> {
    type Arch = X86Any;
    type Error = String;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::SingleThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }

    fn support_target_description_xml_override(&mut self) -> Option<TargetDescriptionXmlOverrideOps<'_, Self>> {
        Some(self)
    }

    fn support_monitor_cmd(&mut self) -> Option<MonitorCmdOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadBase for GdbTarget<'_> {
    fn read_registers(&mut self, regs: &mut X86Regs) -> TargetResult<(), Self> {
        let layout = self.layout();
        let r = self.regs();
        *regs = X86Regs { pc: r.rip, bytes: layout.serialize(&r) };
        Ok(())
    }

    fn write_registers(&mut self, regs: &X86Regs) -> TargetResult<(), Self> {
        let layout = self.layout();
        let mut r = self.regs();
        if !layout.deserialize(&regs.bytes, &mut r) {
            return Err(TargetError::NonFatal);
        }
        self.debug().set_registers(&r);
        self.note_stop();
        Ok(())
    }

    fn support_single_register_access(&mut self) -> Option<SingleRegisterAccessOps<'_, (), Self>> {
        Some(self)
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8]) -> TargetResult<usize, Self> {
        let regs = self.regs();
        if !addressable(&regs, start, data.len()) {
            return Err(TargetError::Errno(14));
        }
        let paging = regs.paging();
        let mem = self.machine.debug_parts().1.memory();
        match memory::read_virtual(mem, &paging, start, data) {
            0 if !data.is_empty() => Err(TargetError::Errno(14)),
            n => Ok(n),
        }
    }

    fn write_addrs(&mut self, start: u64, data: &[u8]) -> TargetResult<(), Self> {
        let regs = self.regs();
        if !addressable(&regs, start, data.len()) {
            return Err(TargetError::Errno(14));
        }
        let paging = regs.paging();
        let mem = self.machine.debug_parts().1.memory();
        if memory::write_virtual(mem, &paging, start, data) != data.len() {
            return Err(TargetError::Errno(14));
        }
        Ok(())
    }

    fn support_resume(&mut self) -> Option<SingleThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

/// True when `len` bytes at linear `start` exist in the CPU's mode: below 4 GiB outside
/// 64-bit mode, and never wrapping past the top (gdbstub would compute the next chunk's
/// address with an overflow).
fn addressable(regs: &DebugRegs, start: u64, len: usize) -> bool {
    let limit = if regs.mode == CpuMode::Long64 { u64::MAX } else { 1 << 32 };
    start.checked_add(len as u64).is_some_and(|end| end <= limit)
}

impl SingleRegisterAccess<()> for GdbTarget<'_> {
    fn read_register(&mut self, _tid: (), reg: X86RegId, buf: &mut [u8]) -> TargetResult<usize, Self> {
        let layout = self.layout();
        let r = self.regs();
        let bytes = layout.read_one(reg.0, &r).ok_or(TargetError::NonFatal)?;
        let out = buf.get_mut(..bytes.len()).ok_or(TargetError::NonFatal)?;
        out.copy_from_slice(&bytes);
        Ok(bytes.len())
    }

    fn write_register(&mut self, _tid: (), reg: X86RegId, val: &[u8]) -> TargetResult<(), Self> {
        let layout = self.layout();
        let mut r = self.regs();
        if !layout.write_one(reg.0, val, &mut r) {
            return Err(TargetError::NonFatal);
        }
        self.debug().set_registers(&r);
        self.note_stop();
        Ok(())
    }
}

impl SingleThreadResume for GdbTarget<'_> {
    fn resume(&mut self, signal: Option<Signal>) -> Result<(), Self::Error> {
        if let Some(s) = signal {
            log::debug!("gdb passed signal {s} on resume; x86 guests take no signals, ignored");
        }
        self.debug().resume(false);
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<SingleThreadSingleStepOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadSingleStep for GdbTarget<'_> {
    fn step(&mut self, signal: Option<Signal>) -> Result<(), Self::Error> {
        if let Some(s) = signal {
            log::debug!("gdb passed signal {s} on step; x86 guests take no signals, ignored");
        }
        self.debug().resume(true);
        Ok(())
    }
}

impl Breakpoints for GdbTarget<'_> {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_watchpoint(&mut self) -> Option<HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

impl SwBreakpoint for GdbTarget<'_> {
    fn add_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.debug().add_breakpoint(addr, BreakpointKind::Software).is_ok())
    }

    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.debug().remove_breakpoint(addr, BreakpointKind::Software))
    }
}

impl HwBreakpoint for GdbTarget<'_> {
    fn add_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.debug().add_breakpoint(addr, BreakpointKind::Hardware).is_ok())
    }

    fn remove_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.debug().remove_breakpoint(addr, BreakpointKind::Hardware))
    }
}

/// Our watch kind for gdb's.
pub fn watch_kind(kind: GdbWatchKind) -> WatchKind {
    match kind {
        GdbWatchKind::Write => WatchKind::Write,
        GdbWatchKind::Read => WatchKind::Read,
        GdbWatchKind::ReadWrite => WatchKind::Access,
    }
}

impl HwWatchpoint for GdbTarget<'_> {
    fn add_hw_watchpoint(&mut self, addr: u64, len: u64, kind: GdbWatchKind) -> TargetResult<bool, Self> {
        Ok(self.debug().add_watchpoint(addr, len, watch_kind(kind)).is_ok())
    }

    fn remove_hw_watchpoint(&mut self, addr: u64, len: u64, kind: GdbWatchKind) -> TargetResult<bool, Self> {
        Ok(self.debug().remove_watchpoint(addr, len, watch_kind(kind)))
    }
}

impl TargetDescriptionXmlOverride for GdbTarget<'_> {
    fn target_description_xml(
        &self,
        annex: &[u8],
        offset: u64,
        length: usize,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        if annex != b"target.xml" {
            return Err(TargetError::NonFatal);
        }
        // gdb (re)reads the description from offset 0: from then on the registers follow it.
        if offset == 0 {
            if self.layout.get() != Some(self.next.0) {
                log::info!("gdb: register layout {}", self.next.0.name());
            }
            self.layout.set(Some(self.next.0));
        }
        let xml = self.next.1.as_bytes();
        let start = (offset as usize).min(xml.len());
        let end = start.saturating_add(length).min(xml.len()).min(start + buf.len());
        buf[..end - start].copy_from_slice(&xml[start..end]);
        Ok(end - start)
    }
}

impl GdbTarget<'_> {
    /// `monitor layout [any|auto|i8086|i386|i386:x86-64]`: the register layout gdb gets at its
    /// next read of the description (`unset tdesc filename`): `any` (the default) leaves the
    /// architecture to gdb, `auto` names the CPU mode's at each stop, the others fix one.
    fn choose_layout(&mut self, arg: &str) -> String {
        let choice = match arg {
            "" => {
                let now = match self.choice {
                    LayoutChoice::Fixed(layout) => layout.name(),
                    LayoutChoice::FollowMode => "auto",
                };
                return format!("layout: {now} (next description: {})", self.next.0.name());
            }
            "any" => LayoutChoice::Fixed(Layout::Any),
            "auto" => LayoutChoice::FollowMode,
            "i8086" => LayoutChoice::Fixed(Layout::I8086),
            "i386" => LayoutChoice::Fixed(Layout::I386),
            "i386:x86-64" | "x86-64" | "x86_64" => LayoutChoice::Fixed(Layout::X86_64),
            other => return format!("unknown layout '{other}': any, auto, i8086, i386 or i386:x86-64"),
        };
        self.choice = choice;
        self.next.1.clear();
        self.note_stop();
        format!("layout {}: now run 'unset tdesc filename' so gdb reads it", self.next.0.name())
    }
}

impl MonitorCmd for GdbTarget<'_> {
    fn handle_monitor_cmd(&mut self, cmd: &[u8], mut out: ConsoleOutput<'_>) -> Result<(), Self::Error> {
        let cmd = String::from_utf8_lossy(cmd);
        if let Some(arg) = cmd.trim().strip_prefix("layout") {
            gdbstub::outputln!(out, "{}", self.choose_layout(arg.trim()));
            return Ok(());
        }
        let reply = monitor::execute(self.machine, cmd.trim());
        gdbstub::outputln!(out, "{}", reply.text.trim_end());
        if reply.quit {
            self.quit = true;
            return Err("quit requested by the monitor".into());
        }
        Ok(())
    }
}
