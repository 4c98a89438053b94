//! The interpreter: the CPU state plus its caches, the fetch/decode of blocks, and the
//! execution loop that retires instructions, advances the virtual clock and takes
//! interrupts.

use super::debug::{dr6, Armed};
use super::debugger::DebugHooks;
use super::decode_cache::{Block, DecodeCache, Key};
use super::fault::{vec, Exception, Fault, R};
use super::mmu::{translate, Acc, Tlb};
use super::state::{fl, CpuState, Mode, Seg};
use crate::debug::DebugStop;
use crate::engine::Exit;
use iced_x86::{Decoder, DecoderError, DecoderOptions, FlowControl, Instruction};
use rx86_core::platform::Platform;
use rx86_core::time::Clock;
use std::rc::Rc;

/// Default rate of the virtual clock: one retired instruction = 1 ns (1000 MIPS of
/// guest time), fast enough that timer-driven guests make progress and simple to
/// reason about.
pub const DEFAULT_NS_PER_INSN: u64 = 1;

/// Longest block the decoder builds.
const MAX_BLOCK: usize = 32;

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
    /// End the current block after this instruction (mode, paging or code changed).
    pub(crate) brk: bool,
    /// Re-check the interrupt lines after this instruction.
    pub(crate) irq_check: bool,
    /// The breakpoints DR7 enables, and the data breakpoints hit by this instruction.
    pub(crate) dbg: Armed,
    /// Breakpoints, watchpoints and single-step a debugger asked for.
    pub(crate) hooks: DebugHooks,
    a20_mask: u64,
    /// The shadow-RAM generation the TLB and decode cache were filled under.
    shadow_generation: u64,
    ns_per_insn: u64,
    /// Instructions retired since creation (each iteration of a REP string instruction
    /// counts as one, as in Bochs and QEMU's icount, so guest time follows the work done).
    pub retired: u64,
    /// Iterations after the first that the current REP string instruction ran.
    pub(crate) rep_iterations: u64,
    /// Clock value of the last run, for the TSC.
    pub(crate) now_ns: u64,
    /// The last exception delivered (vector, error code), for debuggers and harnesses.
    pub last_exception: Option<(u8, Option<u32>)>,
}

/// The interpreter borrowed together with the board for one run.
pub(crate) struct Ctx<'a> {
    pub c: &'a mut Interpreter,
    pub p: &'a dyn Platform,
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
            dbg: Armed::default(),
            hooks: DebugHooks::default(),
            a20_mask: u64::MAX,
            shadow_generation: 0,
            ns_per_insn: ns_per_insn.max(1),
            retired: 0,
            rep_iterations: 0,
            now_ns: 0,
            last_exception: None,
        }
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

    /// Executes one instruction (or delivers one pending interrupt): the debugger's
    /// single step.
    pub fn step(&mut self, p: &dyn Platform) -> Step {
        let mut ctx = Ctx { c: self, p };
        ctx.sync_external();
        if let Some(exit) = ctx.take_interrupts() {
            return Step::Exit(exit);
        }
        if ctx.c.st.halted {
            return Step::Halted;
        }
        match ctx.exec_block(1) {
            Ok(_) => Step::Retired,
            Err(e) => Step::Exit(e),
        }
    }

    /// Runs until `clock` reaches `deadline_ns` or the guest halts or stops.
    pub fn run_until(&mut self, p: &dyn Platform, clock: &Clock, deadline_ns: u64) -> Exit {
        let mut ctx = Ctx { c: self, p };
        ctx.sync_external();
        ctx.c.irq_check = true;
        loop {
            let now = clock.now_ns();
            ctx.c.now_ns = now;
            if now >= deadline_ns {
                return Exit::Deadline;
            }
            if ctx.c.irq_check && !ctx.c.st.int_shadow && ctx.c.hooks.interrupts_allowed(ctx.c.st.halted) {
                ctx.c.irq_check = false;
                if let Some(exit) = ctx.take_interrupts() {
                    return exit;
                }
            }
            if ctx.c.st.halted {
                return Exit::Halted;
            }
            let budget = ((deadline_ns - now) / ctx.c.ns_per_insn).clamp(1, MAX_BLOCK as u64) as usize;
            let budget = if ctx.c.st.int_shadow || ctx.c.hooks.step { 1 } else { budget };
            let done = ctx.exec_block(budget);
            let n = match done {
                Ok(n) => n,
                Err(exit) => return exit,
            };
            if clock.is_virtual() {
                clock.advance_to(now + n.max(1) * ctx.c.ns_per_insn);
            }
            if ctx.c.hooks.step && ctx.c.hooks.stop.is_none() {
                ctx.c.hooks.stop = Some(DebugStop::Step);
            }
            if let Some(stop) = ctx.c.hooks.stop.take() {
                ctx.c.hooks.step = false;
                return Exit::Debug(stop);
            }
            if ctx.c.brk {
                ctx.c.brk = false;
                ctx.sync_external();
            }
        }
    }
}

impl Ctx<'_> {
    /// Picks up changes made by others: code pages written (by DMA or the board), the
    /// A20 gate, and the chipset's shadow-RAM enables (which change what 0xC0000-0xFFFFF
    /// reads and whether it may be written directly).
    pub fn sync_external(&mut self) {
        let mem = self.p.memory();
        let pages = mem.take_written_code_pages();
        self.c.cache.invalidate(&pages);
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

    /// Decodes (or finds) the block at CS:RIP and executes up to `budget` instructions
    /// of it; returns how many retired.
    fn exec_block(&mut self, budget: usize) -> Result<u64, Exit> {
        let block = match self.block_at_rip() {
            Ok(b) => b,
            Err(Fault::Exc(e)) => {
                self.c.st.rflags |= fl::RF;
                self.deliver_event(e, false)?;
                return Ok(1);
            }
            Err(Fault::Unsupported(s)) => return Err(Exit::Unsupported(s)),
        };
        let mut retired = 0;
        for ins in block.instrs.iter().take(budget) {
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
                    return Ok(retired + 1);
                }
            }
            if self.c.hooks.trace.is_some() {
                let lin = self.code_lin_unchecked(start_rip);
                self.trace_instruction(start_rip, lin, ins);
            }
            self.c.st.rflags &= !fl::RF;
            self.c.dbg.hits = 0;
            let start_rsp = self.c.st.gpr[4];
            let tf = self.c.st.rflags & fl::TF != 0;
            let shadow = std::mem::replace(&mut self.c.st.int_shadow, false);
            self.c.st.rip = ins.next_ip();
            let result = self.exec(ins);
            let extra = std::mem::take(&mut self.c.rep_iterations);
            retired += extra;
            self.c.retired += extra;
            match result {
                Ok(()) => {
                    retired += 1;
                    self.c.retired += 1;
                }
                Err(Fault::Exc(e)) => {
                    self.c.st.rip = start_rip;
                    self.c.st.gpr[4] = start_rsp;
                    self.c.st.halted = false;
                    // Faults push RF set so the restarted instruction skips its
                    // instruction breakpoint (SDM Vol. 3B §17.3.1.1).
                    self.c.st.rflags |= fl::RF;
                    self.deliver_event(e, false)?;
                    return Ok(retired + 1);
                }
                Err(Fault::Unsupported(what)) => {
                    self.c.st.rip = start_rip;
                    self.c.st.gpr[4] = start_rsp;
                    return Err(Exit::Unsupported(self.describe(ins, &what)));
                }
            }
            // Traps: single step and the data/I/O breakpoints the instruction hit, one
            // #DB for all (SDM Vol. 3B §17.3.1.2, §17.3.1.4).
            let trap = self.c.dbg.hits as u64 | if tf { dr6::BS } else { 0 };
            if trap != 0 {
                self.debug_exception(trap)?;
                break;
            }
            if self.c.hooks.stop.is_some() {
                break;
            }
            if self.c.brk || self.c.st.halted || (shadow && self.c.irq_check) || self.c.st.rip != ins.next_ip() {
                break;
            }
        }
        Ok(retired)
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

    /// The decoded block at CS:RIP.
    fn block_at_rip(&mut self) -> R<Rc<Block>> {
        let st = &self.c.st;
        let rip = st.rip;
        let bitness = st.bitness();
        let lin = self.code_linear(rip)?;
        let user = self.c.st.cpl == 3;
        let e = translate(&mut self.c.st, &mut self.c.tlb, self.p, lin, Acc::Fetch, user)?;
        let phys = e.phys | (lin & 0xfff);
        let key = Key { phys, rip, bitness };
        if let Some(b) = self.c.cache.get(&key) {
            return Ok(b);
        }
        let (block, cacheable) = self.decode_block(lin, e.phys, e.host != 0, e.ram_off, rip, bitness)?;
        let block = Rc::new(block);
        if cacheable {
            if let Some(page) = block.ram_page {
                self.p.memory().mark_code_page(page);
            }
            self.c.cache.insert(key, block.clone());
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
        let in_page = (0x1000 - (lin & 0xfff)) as usize;
        let mut buf = [0u8; 0x1000 + 16];
        self.p.memory().read(page_phys | (lin & 0xfff), &mut buf[..in_page]);
        let limit =
            if self.c.st.mode == Mode::Long64 { u64::MAX } else { self.c.st.seg[Seg::Cs as usize].limit as u64 };
        let mut instrs = Vec::with_capacity(8);
        let mut decoder = Decoder::with_ip(bitness, &buf[..in_page], rip, DecoderOptions::NONE);
        let mut ins = Instruction::default();
        while decoder.can_decode() && instrs.len() < MAX_BLOCK {
            decoder.decode_out(&mut ins);
            if decoder.last_error() == DecoderError::NoMoreBytes {
                if instrs.is_empty() {
                    // The first instruction crosses into the next page: decode it alone
                    // from both pages, uncached.
                    return Ok((
                        Block {
                            instrs: Box::new([self.decode_crossing(lin, &buf[..in_page], rip, bitness)?]),
                            ram_page: None,
                        },
                        false,
                    ));
                }
                break;
            }
            let end = ins.ip().wrapping_add(ins.len() as u64 - 1);
            if self.c.st.mode != Mode::Long64 && (end > limit || (bitness == 16 && end > 0xffff)) {
                if instrs.is_empty() {
                    return Err(Fault::gp(0));
                }
                break;
            }
            instrs.push(ins);
            if ins.flow_control() != FlowControl::Next || ins.is_invalid() {
                break;
            }
        }
        if instrs.is_empty() {
            return Err(Fault::gp(0));
        }
        let ram_page = is_ram.then_some(ram_off);
        Ok((Block { instrs: instrs.into_boxed_slice(), ram_page }, is_ram))
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
