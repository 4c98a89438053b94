//! The interpreter: the CPU state plus its caches, the fetch/decode of blocks, and the
//! execution loop that retires instructions, keeps the virtual clock exact per
//! instruction and takes interrupts.
//!
//! Time: the virtual clock reads `base + ticks × ns_per_insn`, where a tick is a retired
//! instruction (each REP iteration counts) or an event that retired none (a fault's
//! delivery). Whatever reads time — RDTSC, a port or MMIO access, a platform MSR — sees
//! the instruction that reads it, because the shared clock is brought up to date before
//! each such access. A run ends exactly at its deadline; after port I/O, MMIO writes
//! and platform MSR writes it ends at once if the board asked to stop (reset, power-off,
//! debug exit), and a device timer armed for earlier than the deadline pulls the deadline
//! in. Nothing here depends on where blocks end.

use super::debug::{dr6, Armed};
use super::debugger::DebugHooks;
use super::decode_cache::{Block, DecodeCache, FrontKey, Key};
use super::fault::{vec, Exception, Fault, R};
use super::mmu::{keep_smap, translate, Acc, Tlb};
use super::op::Op;
use super::state::{cr0, fl, CpuState, Mode, Seg};
use super::tiering::{TierCounters, DEFAULT_HOT_THRESHOLD};
use crate::debug::DebugStop;
use crate::engine::Exit;
use crate::tier::{CodeTier, TierStats};
use iced_x86::{Decoder, DecoderError, DecoderOptions, FlowControl, Instruction, Mnemonic, OpKind, Register};
use rx86_core::platform::Platform;
use rx86_core::time::Clock;
use std::rc::Rc;

/// Default rate of the virtual clock: one retired instruction = 1 ns (1000 MIPS of
/// guest time), fast enough that timer-driven guests make progress and simple to
/// reason about.
pub const DEFAULT_NS_PER_INSN: u64 = 1;

/// Longest block the decoder builds by default.
pub const DEFAULT_MAX_BLOCK: usize = 32;

/// Longest x86 instruction in bytes.
const MAX_INSN_LEN: usize = 15;

/// Most bytes read for decoding one block.
const DECODE_WINDOW: usize = DEFAULT_MAX_BLOCK * MAX_INSN_LEN + MAX_INSN_LEN;

/// Outcome of one [`Interpreter::step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// One instruction retired (or one exception/interrupt was delivered).
    Retired,
    /// The CPU is halted and no interrupt woke it.
    Halted,
    /// The machine must stop.
    Exit(Exit),
}

/// The software x86 CPU.
pub struct Interpreter {
    /// Architectural state (registers, flags, segments, control registers, MSRs).
    pub st: CpuState,
    pub(crate) tlb: Tlb,
    pub(crate) cache: DecodeCache,
    /// End the current block after this instruction and pick up outside changes (mode,
    /// paging or code changed, I/O done).
    pub(crate) brk: bool,
    /// Re-check the interrupt lines after this instruction.
    pub(crate) irq_check: bool,
    /// The lean loop is running: no data breakpoint, watchpoint or alignment check is
    /// armed, so ordinary data accesses may take the unchecked fast path.
    pub(crate) lean: bool,
    /// The breakpoints DR7 enables, and the data breakpoints hit by this instruction.
    pub(crate) dbg: Armed,
    /// Breakpoints, watchpoints and single-step a debugger asked for.
    pub(crate) hooks: DebugHooks,
    a20_mask: u64,
    /// The shadow-RAM generation the TLB and decode cache were filled under.
    shadow_generation: u64,
    ns_per_insn: u64,
    /// Longest block the decoder builds (guest behaviour does not depend on it).
    max_block: usize,
    /// Instructions retired since creation (each iteration of a REP string instruction
    /// counts as one, as in Bochs and QEMU's icount, so guest time follows the work done).
    pub retired: u64,
    /// Clock ticks that retired no instruction: deliveries of faults, and turns that made
    /// no progress.
    pub(crate) event_ticks: u64,
    /// The clock's reading when the tick count was `time_base_ticks`.
    time_base_ns: u64,
    time_base_ticks: u64,
    /// The tick count at which the current run's deadline falls.
    pub(crate) deadline_ticks: u64,
    /// What the last `Fault::Unsupported` was about.
    unsupported: Option<String>,
    /// The last exception delivered (vector, error code), for debuggers and harnesses.
    pub last_exception: Option<(u8, Option<u32>)>,
    /// The compiled tier, when one is attached.
    pub(crate) tier: Option<Box<dyn CodeTier>>,
    /// Executions of a block before it is compiled.
    pub(crate) hot_threshold: u32,
    /// How the tier was used.
    pub(crate) tier_counters: TierCounters,
    /// An exit a helper called from compiled code asked for.
    pub(crate) pending_exit: Option<Exit>,
    /// The lock-step checker, when on: compiled units are checked against the handlers.
    pub(crate) lockstep: Option<Box<super::lockstep::Lockstep>>,
    /// The debug traps (DR6 bits) of a MOV SS or POP SS, held over the next instruction
    /// as interrupts are (SDM Vol. 3A §6.8.3).
    pub(crate) ss_held_db: u64,
    /// A #DB trap (DR6 bits) due at the next instruction boundary: SYSCALL's and
    /// SYSRET's single step (taken when TF is set at their end, not their start), or a
    /// held MOV SS trap whose next instruction faulted (it follows the delivery).
    pub(crate) pending_db: u64,
}

/// How the compiled tier was used, for `--stats`.
#[derive(Debug, Clone)]
pub struct TierReport {
    /// The tier's own counters (units compiled, compile time, code memory).
    pub tier: TierStats,
    /// Units entered and blocks interpreted.
    pub counters: TierCounters,
    /// Compiled blocks dropped because their code was written (or the cache cleared).
    pub invalidated_units: u64,
    /// Unit runs the lock-step checker compared, when it is on.
    pub checked_units: Option<u64>,
}

/// The interpreter borrowed together with the board (and the clock, during a run).
pub(crate) struct Ctx<'a> {
    pub c: &'a mut Interpreter,
    pub p: &'a dyn Platform,
    clock: Option<&'a Clock>,
}

impl Default for Interpreter {
    fn default() -> Self {
        Self::new(DEFAULT_NS_PER_INSN)
    }
}

impl Interpreter {
    /// A CPU in the power-on state whose clock advances `ns_per_insn` nanoseconds per
    /// retired instruction (at least 1).
    pub fn new(ns_per_insn: u64) -> Self {
        Interpreter {
            st: CpuState::default(),
            tlb: Tlb::default(),
            cache: DecodeCache::default(),
            brk: false,
            irq_check: true,
            lean: false,
            ss_held_db: 0,
            pending_db: 0,
            dbg: Armed::default(),
            hooks: DebugHooks::default(),
            a20_mask: u64::MAX,
            shadow_generation: 0,
            ns_per_insn: ns_per_insn.max(1),
            max_block: DEFAULT_MAX_BLOCK,
            retired: 0,
            event_ticks: 0,
            time_base_ns: 0,
            time_base_ticks: 0,
            deadline_ticks: u64::MAX,
            unsupported: None,
            last_exception: None,
            tier: None,
            hot_threshold: DEFAULT_HOT_THRESHOLD,
            tier_counters: TierCounters::default(),
            pending_exit: None,
            lockstep: None,
        }
    }

    /// Attaches a compiled tier: blocks executed `hot_threshold` times (at least 1) are
    /// compiled by it. With `lockstep`, every run of compiled code is checked against
    /// the handlers, and the first divergence stops the machine with a diagnosis.
    pub fn set_tier(&mut self, tier: Box<dyn CodeTier>, hot_threshold: u32, lockstep: bool) {
        self.tier = Some(tier);
        self.hot_threshold = hot_threshold.max(1);
        self.lockstep = lockstep.then(Box::default);
        self.cache.clear();
    }

    /// The tier's counters and the interpreter's, when a tier is attached.
    pub fn tier_report(&self) -> Option<TierReport> {
        let tier = self.tier.as_ref()?;
        Some(TierReport {
            tier: tier.stats(),
            counters: self.tier_counters,
            invalidated_units: self.cache.dropped_units,
            checked_units: self.lockstep.as_ref().map(|l| l.checked),
        })
    }

    /// Sets the longest block the decoder builds (1 or more; drops decoded blocks). What
    /// the guest sees does not depend on it: tests use it to show that.
    pub fn set_max_block(&mut self, n: usize) {
        self.max_block = n.max(1);
        self.cache.clear();
    }

    /// Drops cached translations and decoded blocks (after the state was changed from
    /// outside, e.g. by a debugger or a loader).
    pub fn flush_caches(&mut self) {
        self.tlb.flush(false);
        self.cache.clear();
        self.st.update_mode();
        self.irq_check = true;
        self.dbg = Armed::from_dr7(self.st.dr[7]);
    }

    /// Clock ticks so far: instructions retired plus events that retired none.
    #[inline]
    pub(crate) fn ticks(&self) -> u64 {
        self.retired + self.event_ticks
    }

    /// Executes one instruction (or delivers one pending interrupt): the debugger's
    /// single step.
    pub fn step(&mut self, p: &dyn Platform) -> Step {
        let mut ctx = Ctx { c: self, p, clock: None };
        ctx.sync_external();
        if let Some(exit) = ctx.take_interrupts() {
            return Step::Exit(exit);
        }
        if ctx.c.st.halted {
            return Step::Halted;
        }
        ctx.c.deadline_ticks = u64::MAX;
        match ctx.exec_block(1) {
            Ok(0) => {
                ctx.c.event_ticks += 1;
                Step::Retired
            }
            Ok(_) => Step::Retired,
            Err(e) => Step::Exit(e),
        }
    }

    /// Runs until `clock` reaches `deadline_ns` or the guest halts or stops.
    pub fn run_until(&mut self, p: &dyn Platform, clock: &Clock, deadline_ns: u64) -> Exit {
        let mut ctx = Ctx { c: self, p, clock: Some(clock) };
        ctx.c.time_base_ns = clock.now_ns();
        ctx.c.time_base_ticks = ctx.c.ticks();
        let exit = ctx.run_loop(deadline_ns);
        ctx.sync_clock();
        exit
    }
}

impl Ctx<'_> {
    /// The machine time now: on a virtual clock, the time of the instruction executing.
    pub fn now_ns(&self) -> u64 {
        match self.clock {
            Some(clock) if !clock.is_virtual() => clock.now_ns(),
            _ => {
                let c = &self.c;
                c.time_base_ns.wrapping_add((c.ticks() - c.time_base_ticks).wrapping_mul(c.ns_per_insn))
            }
        }
    }

    /// Brings a virtual clock up to the instruction executing, before the board looks at
    /// it (port and MMIO accesses, platform MSRs).
    pub fn sync_clock(&self) {
        if let Some(clock) = self.clock {
            clock.advance_to(self.now_ns());
        }
    }

    /// Notes why an instruction cannot be emulated; returns the fault that stops the
    /// machine with that text, the guest RIP and the instruction bytes.
    #[cold]
    pub fn unsupported(&mut self, what: String) -> Fault {
        self.c.unsupported = Some(what);
        Fault::Unsupported
    }

    /// The text given with the last `Fault::Unsupported`.
    pub fn take_unsupported(&mut self) -> String {
        self.c.unsupported.take().unwrap_or_else(|| "an unsupported operation".into())
    }

    /// The tick count at which the clock reaches `deadline_ns` (on a host clock, an
    /// estimate from now at the nominal rate).
    fn ticks_at(&self, deadline_ns: u64) -> u64 {
        let c = &self.c;
        match self.clock {
            Some(clock) if !clock.is_virtual() => {
                let left = deadline_ns.saturating_sub(clock.now_ns()) / c.ns_per_insn;
                c.ticks().saturating_add(left)
            }
            _ => {
                let left = deadline_ns.saturating_sub(c.time_base_ns).div_ceil(c.ns_per_insn);
                c.time_base_ticks.saturating_add(left)
            }
        }
    }

    /// The body of `run_until`.
    fn run_loop(&mut self, deadline_ns: u64) -> Exit {
        self.sync_external();
        self.c.irq_check = true;
        let host_clock = self.clock.is_some_and(|c| !c.is_virtual());
        let mut deadline = deadline_ns;
        let mut deadline_ticks = self.ticks_at(deadline);
        loop {
            if host_clock {
                if self.now_ns() >= deadline {
                    return Exit::Deadline;
                }
                deadline_ticks = self.ticks_at(deadline).max(self.c.ticks() + 1);
            } else if self.c.ticks() >= deadline_ticks {
                return Exit::Deadline;
            }
            if self.c.irq_check && !self.c.st.int_shadow && self.c.hooks.interrupts_allowed(self.c.st.halted) {
                self.c.irq_check = false;
                self.sync_clock();
                if let Some(exit) = self.take_interrupts() {
                    return exit;
                }
            }
            if self.c.st.halted {
                return Exit::Halted;
            }
            self.c.deadline_ticks = deadline_ticks;
            let left = deadline_ticks - self.c.ticks();
            let budget =
                if self.c.st.int_shadow || self.c.hooks.step { 1 } else { left.min(usize::MAX as u64) as usize };
            match self.exec_block(budget) {
                Ok(0) => self.c.event_ticks += 1,
                Ok(_) => {}
                Err(exit) => return exit,
            }
            if self.c.hooks.step && self.c.hooks.stop.is_none() {
                self.c.hooks.stop = Some(DebugStop::Step);
            }
            if let Some(stop) = self.c.hooks.stop.take() {
                self.c.hooks.step = false;
                return Exit::Debug(stop);
            }
            if self.c.brk {
                self.c.brk = false;
                self.sync_external();
                if self.p.exit_requested() {
                    return Exit::Deadline;
                }
                if let Some(next) = self.p.next_deadline().filter(|&next| next < deadline) {
                    deadline = next;
                    deadline_ticks = self.ticks_at(deadline);
                }
            }
        }
    }

    /// Picks up changes made by others: code pages written (by DMA or the board), the
    /// A20 gate, and the chipset's shadow-RAM enables (which change what 0xC0000-0xFFFFF
    /// reads and whether it may be written directly).
    pub fn sync_external(&mut self) {
        let mem = self.p.memory();
        let writes = mem.take_code_writes();
        if !writes.is_empty() {
            for (page, spans) in self.c.cache.invalidate(&writes) {
                mem.reset_code(page, &spans);
            }
        }
        let mask = mem.a20_mask();
        if mask != self.c.a20_mask {
            self.c.a20_mask = mask;
            self.c.tlb.flush(false);
        }
        if let Some(shadow) = mem.shadow() {
            let generation = shadow.generation();
            if generation != self.c.shadow_generation {
                self.c.shadow_generation = generation;
                // Rare (firmware sets the enables a few times during POST): drop everything.
                self.c.tlb.flush(false);
                self.c.cache.clear();
            }
        }
    }

    /// Delivers a pending NMI or maskable interrupt; wakes a halted CPU.
    fn take_interrupts(&mut self) -> Option<Exit> {
        if !self.c.st.nmi_blocked && self.p.take_nmi() {
            self.c.st.halted = false;
            self.c.st.nmi_blocked = true;
            if let Err(e) = self.deliver_event(Exception { vector: vec::NMI, error: None }, true) {
                return Some(e);
            }
        }
        if self.c.st.rflags & fl::IF != 0 && self.p.interrupt_pending() {
            if let Some(v) = self.p.acknowledge_interrupt() {
                self.c.st.halted = false;
                if let Err(e) = self.deliver_event(Exception { vector: v, error: None }, true) {
                    return Some(e);
                }
            }
        }
        None
    }

    /// True when something needs the per-instruction checks of [`Self::exec_ops_checked`]:
    /// debugger breakpoints, watchpoints or single-step, a trace, DR7 breakpoints, TF, or
    /// an interrupt shadow.
    #[inline]
    fn needs_checks(&self) -> bool {
        let c = &self.c;
        let h = &c.hooks;
        h.exec_armed
            || h.watch_reads
            || h.watch_writes
            || h.step
            || h.trace.is_some()
            || (c.dbg.exec | c.dbg.read | c.dbg.write | c.dbg.io) != 0
            || c.st.rflags & fl::TF != 0
            || c.st.int_shadow
            || c.ss_held_db != 0
            || (c.st.cpl == 3 && c.st.cr0 & cr0::AM != 0 && c.st.rflags & fl::AC != 0)
    }

    /// Decodes (or finds) the block at CS:RIP and executes up to `budget` instructions
    /// of it; returns how many ticks passed (0 when nothing executed). When nothing is
    /// armed, goes on with the blocks that follow for as long as no instruction asked
    /// for the board's attention (I/O, code or mode changes, interrupt lines, HLT) and
    /// budget is left, so a loop runs without returning to the run loop per block. On
    /// the host clock the run loop reads the time after every block, so there is no chain.
    fn exec_block(&mut self, budget: usize) -> Result<u64, Exit> {
        let before = self.c.ticks();
        let end = before.saturating_add(budget as u64);
        let chain = self.clock.is_none_or(|c| c.is_virtual());
        let mut prev: Option<Rc<Block>> = None;
        loop {
            keep_smap(&self.c.st, &mut self.c.tlb);
            let block = match self.block_at_rip(prev.as_deref()) {
                Ok(b) => b,
                Err(Fault::Exc(e)) => {
                    self.c.st.rflags |= fl::RF;
                    self.deliver_event(e.unpack(), false)?;
                    self.c.event_ticks += 1;
                    break;
                }
                Err(Fault::Unsupported) => return Err(Exit::Unsupported(self.take_unsupported())),
            };
            let left = (end - self.c.ticks()).min(usize::MAX as u64) as usize;
            let ops = &block.ops[..left.min(block.ops.len())];
            if self.needs_checks() {
                self.exec_ops_checked(ops)?;
                self.deliver_pending_db()?;
                break;
            }
            self.c.lean = true;
            let done = match self.unit_for(&block, ops.len() == block.ops.len()) {
                Some(code) if self.c.lockstep.is_some() => self.run_unit_checked(&block, code, end, chain),
                Some(code) => {
                    if let Some(prev) = prev.as_deref().filter(|_| chain) {
                        self.chain(prev, &block, code);
                    }
                    if chain {
                        self.remember_jump(&block, code);
                    }
                    self.run_unit(&block, code, end, chain)
                }
                None => {
                    self.c.tier_counters.interpreted_blocks += 1;
                    self.exec_ops(ops)
                }
            };
            self.c.lean = false;
            done?;
            if self.c.pending_db != 0 {
                self.deliver_pending_db()?;
                break;
            }
            if !chain || self.c.brk || self.c.irq_check || self.c.ticks() >= end {
                break;
            }
            prev = Some(block);
        }
        Ok(self.c.ticks() - before)
    }

    /// The execution loop when nothing is armed: per instruction, set RIP, run the
    /// handler, count it.
    fn exec_ops(&mut self, ops: &[Op]) -> Result<(), Exit> {
        // RF is cleared as the first instruction starts (SDM Vol. 3B §17.3.1.1); only
        // IRET can set it again, and that ends the block.
        self.c.st.rflags &= !fl::RF;
        for op in ops {
            let start_rip = self.c.st.rip;
            let start_rsp = self.c.st.gpr[4];
            self.c.st.rip = op.next_ip;
            if let Err(fault) = (op.run)(self, op) {
                return self.instruction_fault(fault, op, start_rip, start_rsp);
            }
            self.c.retired += 1;
            // HLT sets `irq_check` and ends its block, so the lean loop needs no test of
            // `halted`.
            if self.c.brk || self.c.st.rip != op.next_ip {
                break;
            }
        }
        Ok(())
    }

    /// The execution loop with every per-instruction check: breakpoints, traces, RF,
    /// the interrupt shadow, single-step and data-breakpoint traps.
    fn exec_ops_checked(&mut self, ops: &[Op]) -> Result<(), Exit> {
        for op in ops {
            let ins = &op.ins;
            let start_rip = self.c.st.rip;
            if start_rip != ins.ip() {
                break;
            }
            if self.c.hooks.exec_armed {
                let lin = self.code_lin_unchecked(start_rip);
                if let Some(stop) = self.c.hooks.breakpoint_at(lin) {
                    self.c.hooks.stop = Some(stop);
                    break;
                }
            }
            // SDM Vol. 3B §17.3.1.1: instruction breakpoints are checked first (RF
            // suppresses them), then RF is cleared as the instruction starts.
            if self.c.dbg.exec != 0 && self.c.st.rflags & fl::RF == 0 {
                let hits = self.instruction_breakpoints(self.code_lin_unchecked(start_rip));
                if hits != 0 {
                    self.debug_exception(hits as u64)?;
                    self.c.event_ticks += 1;
                    return Ok(());
                }
            }
            if self.c.hooks.trace.is_some() {
                let lin = self.code_lin_unchecked(start_rip);
                self.trace_instruction(start_rip, lin, ins);
            }
            self.c.st.rflags &= !fl::RF;
            self.c.dbg.hits = 0;
            let start_rsp = self.c.st.gpr[4];
            // SYSCALL and SYSRET single-step by TF at their end: they leave it to
            // `pending_db`.
            let tf = self.c.st.rflags & fl::TF != 0 && !steps_by_final_tf(ins);
            let shadow = std::mem::replace(&mut self.c.st.int_shadow, false);
            let held = std::mem::take(&mut self.c.ss_held_db);
            self.c.st.rip = op.next_ip;
            if let Err(fault) = (op.run)(self, op) {
                self.c.pending_db |= held;
                return self.instruction_fault(fault, op, start_rip, start_rsp);
            }
            self.c.retired += 1;
            // Traps: single step and the data/I/O breakpoints the instruction hit, one
            // #DB for all (SDM Vol. 3B §17.3.1.2, §17.3.1.4), with those held over it.
            let mut trap =
                self.c.dbg.hits as u64 | if tf { dr6::BS } else { 0 } | held | std::mem::take(&mut self.c.pending_db);
            if trap != 0 && held == 0 && loads_ss(ins) {
                self.c.ss_held_db = trap;
                trap = 0;
            }
            if trap != 0 {
                self.debug_exception(trap)?;
                break;
            }
            if self.c.hooks.stop.is_some() {
                break;
            }
            if self.c.brk || self.c.st.halted || (shadow && self.c.irq_check) || self.c.st.rip != op.next_ip {
                break;
            }
        }
        Ok(())
    }

    /// Delivers the #DB trap [`Interpreter::pending_db`] holds, if any.
    fn deliver_pending_db(&mut self) -> Result<(), Exit> {
        match std::mem::take(&mut self.c.pending_db) {
            0 => Ok(()),
            trap => self.debug_exception(trap),
        }
    }

    /// An instruction faulted: restore RIP and RSP and deliver the exception (one tick),
    /// or stop the machine for something not emulated.
    #[cold]
    pub(super) fn instruction_fault(
        &mut self,
        fault: Fault,
        op: &Op,
        start_rip: u64,
        start_rsp: u64,
    ) -> Result<(), Exit> {
        self.c.st.rip = start_rip;
        self.c.st.gpr[4] = start_rsp;
        match fault {
            Fault::Exc(e) => {
                self.c.st.halted = false;
                // Faults push RF set so the restarted instruction skips its instruction
                // breakpoint (SDM Vol. 3B §17.3.1.1).
                self.c.st.rflags |= fl::RF;
                self.deliver_event(e.unpack(), false)?;
                self.c.event_ticks += 1;
                Ok(())
            }
            Fault::Unsupported => {
                let what = self.take_unsupported();
                Err(Exit::Unsupported(self.describe(&op.ins, &what)))
            }
        }
    }

    /// Text naming the guest RIP and the instruction bytes, for `Exit::Unsupported`.
    fn describe(&mut self, ins: &Instruction, what: &str) -> String {
        let cs = self.c.st.seg[Seg::Cs as usize];
        let lin = cs.base.wrapping_add(ins.ip());
        let mut bytes = String::new();
        for i in 0..ins.len() as u64 {
            let b = self.read_lin_sys(lin.wrapping_add(i), 1).unwrap_or(0xff);
            bytes.push_str(&format!("{b:02x} "));
        }
        let msg = format!(
            "unsupported: {what} at {:04x}:{:#x} (linear {lin:#x}), bytes [{}] ({:?})",
            cs.selector,
            ins.ip(),
            bytes.trim_end(),
            ins.code()
        );
        log::error!("{msg}");
        msg
    }

    /// The decoded block at CS:RIP: through `prev`'s link when execution just left
    /// `prev` for a successor seen before, else as [`Self::block_at`] finds it (and
    /// `prev` then links to it).
    fn block_at_rip(&mut self, prev: Option<&Block>) -> R<Rc<Block>> {
        let rip = self.c.st.rip;
        let bitness = self.c.st.bitness();
        let lin = self.code_linear(rip)?;
        let user = self.c.st.cpl == 3;
        let front = FrontKey { lin, rip, mode: bitness | if user { 256 } else { 0 } };
        let Some(prev) = prev else { return self.block_at(front) };
        if let Some(b) = self.c.cache.linked(prev, &front, self.c.tlb.generation) {
            return Ok(b);
        }
        let b = self.block_at(front)?;
        self.c.cache.link(prev, front, self.c.tlb.generation, &b);
        Ok(b)
    }

    /// The decoded block for `front`: from the front table, else through the code TLB
    /// and the block map, else decoded now.
    fn block_at(&mut self, front: FrontKey) -> R<Rc<Block>> {
        let FrontKey { lin, rip, mode } = front;
        let (bitness, user) = (mode & 0xff, mode & 256 != 0);
        if let Some(b) = self.c.cache.front(&front, self.c.tlb.generation) {
            return Ok(b.clone());
        }
        let e = translate(&mut self.c.st, &mut self.c.tlb, self.p, lin, Acc::Fetch, user)?;
        let phys = e.phys | (lin & 0xfff);
        let key = Key { phys, rip, bitness };
        if let Some(b) = self.c.cache.get(&key) {
            self.c.cache.set_front(front, self.c.tlb.generation, b.clone());
            return Ok(b);
        }
        let (block, cacheable) = self.decode_block(lin, e.phys, e.host != 0, e.ram_off, rip, bitness)?;
        if !cacheable {
            // Decoded for this run only: compiling it would be thrown away.
            block.heat.set(u32::MAX);
        }
        let block = Rc::new(block);
        if cacheable {
            if let Some(page) = block.ram_page {
                let (start, end) = block.span;
                if self.p.memory().mark_code(page + start, end - start) {
                    self.c.tlb.protect_code_pages();
                }
            }
            self.c.cache.insert(key, block.clone());
            self.c.cache.set_front(front, self.c.tlb.generation, block.clone());
        }
        Ok(block)
    }

    /// Linear address of code at `rip` without limit checks (for breakpoint matching).
    fn code_lin_unchecked(&self, rip: u64) -> u64 {
        if self.c.st.mode == Mode::Long64 {
            rip
        } else {
            self.c.st.seg[Seg::Cs as usize].base.wrapping_add(rip) & 0xffff_ffff
        }
    }

    /// Linear address of code at `rip` (checks canonical form in 64-bit mode).
    fn code_linear(&self, rip: u64) -> R<u64> {
        let cs = &self.c.st.seg[Seg::Cs as usize];
        if self.c.st.mode == Mode::Long64 {
            if ((rip as i64) << 16 >> 16) as u64 != rip {
                return Err(Fault::gp(0));
            }
            Ok(rip)
        } else {
            if rip > cs.limit as u64 {
                return Err(Fault::gp(0));
            }
            Ok(cs.base.wrapping_add(rip) & 0xffff_ffff)
        }
    }

    /// Decodes a block starting at linear `lin` (physical page `page_phys`).
    fn decode_block(
        &mut self,
        lin: u64,
        page_phys: u64,
        is_ram: bool,
        ram_off: u64,
        rip: u64,
        bitness: u32,
    ) -> R<(Block, bool)> {
        // The bytes to the page's end, or enough for the longest block.
        let in_page = (0x1000 - (lin & 0xfff)) as usize;
        let mut buf = [0u8; DECODE_WINDOW];
        let window = in_page.min(DECODE_WINDOW).min(self.c.max_block * MAX_INSN_LEN + MAX_INSN_LEN);
        self.p.memory().read(page_phys | (lin & 0xfff), &mut buf[..window]);
        let limit =
            if self.c.st.mode == Mode::Long64 { u64::MAX } else { self.c.st.seg[Seg::Cs as usize].limit as u64 };
        let mut ops = Vec::with_capacity(8);
        let mut decoder = Decoder::with_ip(bitness, &buf[..window], rip, DecoderOptions::NONE);
        let mut ins = Instruction::default();
        while decoder.can_decode() && ops.len() < self.c.max_block {
            decoder.decode_out(&mut ins);
            if decoder.last_error() == DecoderError::NoMoreBytes {
                if ops.is_empty() && window == in_page {
                    // The first instruction crosses into the next page: decode it alone
                    // from both pages, uncached.
                    let ins = self.decode_crossing(lin, &buf[..in_page], rip, bitness)?;
                    return Ok((Block::new(Box::new([Op::new(ins)]), None, (0, 0)), false));
                }
                break;
            }
            let end = ins.ip().wrapping_add(ins.len() as u64 - 1);
            if self.c.st.mode != Mode::Long64 && (end > limit || (bitness == 16 && end > 0xffff)) {
                if ops.is_empty() {
                    return Err(Fault::gp(0));
                }
                break;
            }
            let mut op = Op::new(ins);
            if super::model::lacks(&self.c.st.model, &ins) {
                // The general path raises the #UD of an instruction the model lacks.
                op.run = super::op::generic;
            }
            ops.push(op);
            if ends_block(&ins) {
                break;
            }
        }
        if ops.is_empty() {
            return Err(Fault::gp(0));
        }
        let ram_page = is_ram.then_some(ram_off);
        let start = lin & 0xfff;
        let end = ops.last().map_or(start, |op| (start + op.next_ip.wrapping_sub(rip)).min(0x1000));
        Ok((Block::new(ops.into_boxed_slice(), ram_page, (start, end)), is_ram))
    }

    /// Decodes one instruction whose bytes continue on the next page.
    fn decode_crossing(&mut self, lin: u64, first: &[u8], rip: u64, bitness: u32) -> R<Instruction> {
        let mut bytes = [0u8; 15];
        bytes[..first.len()].copy_from_slice(first);
        let next = (lin | 0xfff).wrapping_add(1);
        let next = if self.c.st.mode == Mode::Long64 { next } else { next & 0xffff_ffff };
        let user = self.c.st.cpl == 3;
        let e = translate(&mut self.c.st, &mut self.c.tlb, self.p, next, Acc::Fetch, user)?;
        self.p.memory().read(e.phys, &mut bytes[first.len()..]);
        let mut decoder = Decoder::with_ip(bitness, &bytes, rip, DecoderOptions::NONE);
        let ins = decoder.decode();
        let end = ins.ip().wrapping_add(ins.len() as u64 - 1);
        if self.c.st.mode != Mode::Long64 && end > self.c.st.seg[Seg::Cs as usize].limit as u64 {
            return Err(Fault::gp(0));
        }
        Ok(ins)
    }
}

/// True when a block ends after `ins`: control transfers, invalid encodings, and
/// instructions after which the next one must start a fresh turn of the run loop so the
/// checks of the next instructions are chosen again: HLT; the interrupt-shadow setters
/// STI, MOV SS and POP SS; POPF (it may set TF); moves to control and debug registers
/// (mode, paging and DR7 breakpoints); and REP string instructions, which may stop
/// part-way to let interrupts in.
fn ends_block(ins: &Instruction) -> bool {
    if ins.flow_control() != FlowControl::Next || ins.is_invalid() {
        return true;
    }
    let reg0 =
        if ins.op_count() > 0 && ins.op0_kind() == OpKind::Register { ins.op0_register() } else { Register::None };
    match ins.mnemonic() {
        // STAC and CLAC change RFLAGS.AC, which decides whether the lean loop may run.
        Mnemonic::Hlt
        | Mnemonic::Sti
        | Mnemonic::Popf
        | Mnemonic::Popfd
        | Mnemonic::Popfq
        | Mnemonic::Stac
        | Mnemonic::Clac => true,
        Mnemonic::Mov => reg0 == Register::SS || reg0.is_cr() || reg0.is_dr(),
        Mnemonic::Pop => reg0 == Register::SS,
        _ => (ins.has_rep_prefix() || ins.has_repne_prefix()) && is_string(ins),
    }
}

/// True for MOV SS and POP SS, which hold interrupts and debug traps over the next
/// instruction.
fn loads_ss(ins: &Instruction) -> bool {
    matches!(ins.mnemonic(), Mnemonic::Mov | Mnemonic::Pop)
        && ins.op0_kind() == OpKind::Register
        && ins.op0_register() == Register::SS
}

/// True for SYSCALL and SYSRET, whose single-step trap follows TF at their end (as
/// Intel's and KVM's SYSCALL/SYSRET do), so SYSCALL with IA32_FMASK clearing TF does not
/// trap in the kernel and SYSRET restoring TF traps before the first user instruction.
fn steps_by_final_tf(ins: &Instruction) -> bool {
    matches!(ins.mnemonic(), Mnemonic::Syscall | Mnemonic::Sysret | Mnemonic::Sysretq)
}

/// True for the string instructions (an operand addressed by rSI or rDI).
fn is_string(ins: &Instruction) -> bool {
    (0..ins.op_count()).any(|i| super::ops::operand::is_string_operand(ins.op_kind(i)))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::Machine;
    use super::*;
    use iced_x86::code_asm::*;

    fn smc_program() -> CodeAssembler {
        // 0x1000: mov byte [0x1006], 0x42 (5 bytes); 0x1005: mov al, 0; 0x1007: hlt.
        let mut a = CodeAssembler::new(16).unwrap();
        a.mov(byte_ptr(0x1006), 0x42).unwrap();
        a.mov(al, 0).unwrap();
        a.hlt().unwrap();
        a
    }

    #[test]
    fn self_modifying_code_in_the_same_block_is_seen() {
        let mut m = Machine::real(&mut smc_program());
        m.run();
        assert_eq!(m.gpr(0) & 0xff, 0x42);
    }

    #[test]
    fn dma_into_cached_code_invalidates_it() {
        let mut a = CodeAssembler::new(16).unwrap();
        a.mov(al, 1).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::real(&mut a);
        m.run();
        assert_eq!(m.gpr(0) & 0xff, 1);
        m.p.memory.dma_write(0x1001, &[7]).unwrap();
        m.cpu.state_mut().rip = 0x1000;
        m.cpu.state_mut().halted = false;
        m.run();
        assert_eq!(m.gpr(0) & 0xff, 7);
    }

    #[test]
    fn run_until_stops_at_the_deadline_and_on_hlt() {
        let mut a = CodeAssembler::new(16).unwrap();
        let mut top = a.create_label();
        a.set_label(&mut top).unwrap();
        a.inc(ax).unwrap();
        a.cmp(ax, 1000).unwrap();
        a.jne(top).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::real(&mut a);
        let clock = Clock::new_virtual();
        assert_eq!(m.cpu.run_until(&m.p, &clock, 100), Exit::Deadline);
        assert!(clock.now_ns() >= 100);
        assert_eq!(m.cpu.run_until(&m.p, &clock, u64::MAX), Exit::Halted);
        assert_eq!(m.gpr(0) & 0xffff, 1000);
        // 3 instructions per iteration plus the HLT, one nanosecond each.
        assert_eq!(clock.now_ns(), 3001);
    }
}
