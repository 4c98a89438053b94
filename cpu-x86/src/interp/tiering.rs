//! The interpreter's side of the compiled tier ([`crate::tier`]): when a block is hot
//! it is described to the tier as a [`UnitPlan`] and its code hangs off the block; the
//! helpers compiled code calls run the interpreter's own handlers.
//!
//! A lowering is offered only for forms whose inline meaning the tier can give exactly
//! (register-only moves and arithmetic, LEA, direct branches); everything else runs its
//! handler through [`exec_op`], so no instruction has a second definition it could get
//! wrong without the lock-step checker noticing.

use super::cpu::Ctx;
use super::decode_cache::Block;
use super::flags::size_mask;
use super::op::{Op, NO_REG};
use super::state::{CpuState, Mode};
use crate::engine::Exit;
use crate::tier::{
    helper_result, jump_cache_index, Address, AluOp, ChainSlot, Lowering, PlanInsn, ShiftOp, Src, TargetCheck, UnitAbi,
    UnitCode, UnitFrame, UnitPlan,
};
use iced_x86::{Code, Mnemonic as M, OpKind};
use std::ffi::c_void;

/// Executions of a block before it is compiled. Compiling a block costs about a
/// millisecond, the time of a few hundred thousand interpreted instructions: on Debian's
/// boot (CPU time, one run each) 64 compiled 15,800 blocks and spent 28% of the run
/// compiling, 500 took 45 s, 2000 took 42 s with 3,900 blocks and 9% compiling, and
/// higher thresholds were no faster.
pub const DEFAULT_HOT_THRESHOLD: u32 = 2000;

/// Counters of the tier's use, for `--stats`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TierCounters {
    /// Compiled units entered.
    pub unit_runs: u64,
    /// Blocks run by the interpreter's loops.
    pub interpreted_blocks: u64,
    /// Units entered from other units through their chain slots or the jump cache.
    pub chained_runs: u64,
    /// Of `chained_runs`, those entered through the jump cache.
    pub jumped_runs: u64,
}

/// The helpers and offsets compiled code uses.
pub fn unit_abi() -> UnitAbi {
    UnitAbi { exec_op, condition, fold_carry }
}

/// Runs one instruction through its handler as the lean loop does.
///
/// # Safety
/// `ctx` is the `Ctx` the running unit was entered with, `op` an [`Op`] of the block it
/// was compiled from (alive while the unit runs).
unsafe extern "C" fn exec_op(ctx: *mut c_void, op: *const c_void) -> u32 {
    // SAFETY: the unit passes back the context pointer `run_unit` gave it, which is a
    // live, exclusive `Ctx` for the duration of the call, and a pointer to one of the
    // block's ops, which the block (held by `run_unit`) keeps alive.
    let (ctx, op) = unsafe { (&mut *ctx.cast::<Ctx<'_>>(), &*op.cast::<Op>()) };
    ctx.exec_one(op)
}

/// Condition `cc` on the lazy flags.
///
/// # Safety
/// `st` points to the live CPU state.
unsafe extern "C" fn condition(st: *const CpuState, cc: u32) -> u32 {
    // SAFETY: the unit passes the state pointer of its frame, live while it runs.
    let st = unsafe { &*st };
    st.lazy.condition(cc as u8, st.rflags) as u32
}

/// Folds the pending CF into RFLAGS (INC and DEC keep CF).
///
/// # Safety
/// `st` points to the live CPU state.
unsafe extern "C" fn fold_carry(st: *mut CpuState) {
    // SAFETY: as for `condition`; nothing else accesses the state during the call.
    unsafe { &mut *st }.fold_carry();
}

impl Ctx<'_> {
    /// One instruction of a compiled unit through its handler: the body of the lean
    /// loop. Says whether the unit goes on, must stop (a fault was delivered, the board
    /// was asked for) or branched (control left the straight line), as
    /// [`helper_result`].
    #[inline]
    fn exec_one(&mut self, op: &Op) -> u32 {
        if self.c.lockstep.is_some() {
            return if self.exec_one_recorded(op) { helper_result::STOP } else { helper_result::GO_ON };
        }
        self.exec_one_plain(op)
    }

    /// [`Self::exec_one`] without the checker.
    #[inline]
    pub(super) fn exec_one_plain(&mut self, op: &Op) -> u32 {
        let start_rip = op.ins.ip();
        let start_rsp = self.c.st.gpr[4];
        self.c.st.rip = op.next_ip;
        match (op.run)(self, op) {
            Ok(()) => {
                self.c.retired += 1;
                if self.c.brk {
                    helper_result::STOP
                } else if self.c.st.rip != op.next_ip {
                    helper_result::BRANCHED
                } else {
                    helper_result::GO_ON
                }
            }
            Err(fault) => {
                if let Err(exit) = self.instruction_fault(fault, op, start_rip, start_rsp) {
                    self.c.pending_exit = Some(exit);
                }
                helper_result::STOP
            }
        }
    }

    /// The compiled code of `block` when it may run now, compiling it once it is hot.
    /// `whole` says the budget covers the whole block.
    pub(super) fn unit_for(&mut self, block: &Block, whole: bool) -> Option<UnitCode> {
        let tier = self.c.tier.as_mut()?;
        if !whole {
            return None;
        }
        if let Some(code) = block.unit.get() {
            if code.generation == tier.generation() {
                return Some(code);
            }
        }
        let heat = block.heat.get();
        if heat == u32::MAX {
            return None;
        }
        block.heat.set(heat + 1);
        if heat + 1 < self.c.hot_threshold {
            return None;
        }
        block.heat.set(0);
        let plan = plan(block, self.c.st.mode, self.c.lockstep.is_some());
        let generation = tier.generation();
        if log::log_enabled!(log::Level::Trace) {
            // The unit's code, handler calls marked with `!`.
            let code: Vec<String> = (plan.insns.iter().zip(block.ops.iter()))
                .map(|(i, op)| format!("{}{}", if i.lowering == Lowering::Helper { "!" } else { "" }, op.ins))
                .collect();
            log::trace!("unit {:#x}: {}", plan.insns[0].ip, code.join("; "));
        }
        let code = tier.compile(&plan);
        if tier.generation() != generation {
            // Code memory was reused: chain slots may name code that is gone.
            self.c.cache.chain_epoch += 1;
        }
        if code.is_some() {
            // A block is planned the same way every time (its key fixes the mode), so the
            // first plan's lowerings also describe a recompilation.
            let _ = block.lowered.set(plan.insns.iter().map(|i| i.lowering).collect());
        } else {
            block.heat.set(u32::MAX);
        }
        block.unit.set(code);
        code
    }

    /// Lets `prev`'s compiled code go on to `block`'s compiled `code` next time without
    /// returning here (see [`crate::tier::ChainSlot`]). `prev` is the block the run
    /// entered, which may have chained on since: the slot names the RIP it leads to, and
    /// `prev`'s code follows it only for an exit to that RIP.
    pub(super) fn chain(&mut self, prev: &Block, block: &Block, code: UnitCode) {
        if self.c.lockstep.is_some() || prev.unit.get().is_none() {
            return;
        }
        let rip = block.ops[0].ins.ip();
        self.fill_slot(&prev.chain[prev.slot(rip)], block, code);
    }

    /// Lets compiled code whose successor is known only at run time go on to `block`'s
    /// compiled `code` through the jump cache.
    pub(super) fn remember_jump(&self, block: &Block, code: UnitCode) {
        if self.c.lockstep.is_some() {
            return;
        }
        self.fill_slot(&self.c.cache.jumps[jump_cache_index(block.ops[0].ins.ip())], block, code);
    }

    /// Points `slot` at `block`'s compiled `code` as the transition the machine is
    /// making now (same CS base, CPL, TLB generation and chain epoch).
    fn fill_slot(&self, slot: &ChainSlot, block: &Block, code: UnitCode) {
        let rip = block.ops[0].ins.ip();
        slot.entry.set(code.entry as usize);
        slot.rip.set(rip);
        slot.cs_base.set(self.c.st.seg[super::state::Seg::Cs as usize].base);
        slot.cpl.set(u64::from(self.c.st.cpl));
        slot.len.set(block.ops.len() as u64);
        slot.epoch.set(self.c.cache.chain_epoch);
        slot.tlb_generation.set(self.c.tlb.generation);
    }

    /// Runs compiled `code` of `block`; `end` is the tick count the budget ends at, and
    /// `chain` whether the unit may go round its loop.
    pub(super) fn run_unit(&mut self, block: &Block, code: UnitCode, end: u64, chain: bool) -> Result<(), Exit> {
        self.c.tier_counters.unit_runs += 1;
        self.c.st.rflags &= !super::state::fl::RF;
        let retired_end = if chain { end - self.c.event_ticks } else { self.c.retired };
        let c: *mut super::cpu::Interpreter = &mut *self.c;
        // SAFETY: `c` is the interpreter this context borrows exclusively; the pointers
        // stay valid for the call, and the unit touches the fields only through them and
        // through the helpers (which get this context back).
        let mut frame = unsafe {
            UnitFrame {
                ctx: (self as *mut Self).cast(),
                st: std::ptr::addr_of_mut!((*c).st),
                retired: std::ptr::addr_of_mut!((*c).retired),
                retired_end,
                brk: std::ptr::addr_of!((*c).brk).cast(),
                irq_check: std::ptr::addr_of!((*c).irq_check).cast(),
                dead: block.dead_flag(),
                tlb_generation: std::ptr::addr_of!((*c).tlb.generation),
                entry_generation: (*c).tlb.generation,
                tlb_entries: (*c).tlb.entries.as_ptr().cast(),
                code_epoch: std::ptr::addr_of!((*c).tlb.code_epoch),
                chain_epoch: std::ptr::addr_of!((*c).cache.chain_epoch),
                chained: 0,
                jump_cache: (*c).cache.jumps.as_ptr(),
                jumped: 0,
            }
        };
        // SAFETY: the code was compiled from this block's plan by the tier, whose
        // generation it still matches, so its memory holds it; the frame is live. Units it
        // chains to are checked by their slots' epochs: their blocks are in the cache,
        // which no instruction changes while compiled code runs.
        unsafe { (code.enter)(&mut frame, code.entry) };
        self.c.tier_counters.chained_runs += frame.chained;
        self.c.tier_counters.jumped_runs += frame.jumped;
        match self.c.pending_exit.take() {
            Some(exit) => Err(exit),
            None => Ok(()),
        }
    }
}

/// The plan of `block` decoded in `mode`. Under the lock-step checker (`checked`),
/// memory accesses go through their handlers: the checker replays translated
/// instructions after the unit, when its later instructions may have changed the memory
/// or the segments and mode (an IRET) a replayed access would use. Inline memory accesses are compared with the interpreter by whole
/// runs instead (the tier fuzz target, the same guest output on both tiers).
fn plan(block: &Block, mode: Mode, checked: bool) -> UnitPlan {
    let long = mode == Mode::Long64;
    let last = block.ops.len() - 1;
    let insns: Vec<PlanInsn> = block
        .ops
        .iter()
        .enumerate()
        .map(|(i, op)| PlanInsn {
            lowering: match lowering(op, i == last, long) {
                l if checked && l.accesses_memory() => Lowering::Helper,
                l => l,
            },
            op: (op as *const Op).cast(),
            ip: op.ins.ip(),
            next_ip: op.next_ip,
        })
        .collect();
    let first_ip = block.ops[0].ins.ip();
    let loops =
        matches!(insns[last].lowering, Lowering::Jcc { target, .. } | Lowering::Jmp { target } if target == first_ip);
    UnitPlan {
        insns,
        loops,
        target_check: if long { TargetCheck::None } else { TargetCheck::CsLimit },
        long_mode: long,
        abi: unit_abi(),
        chain: (!checked).then(|| [&block.chain[0] as *const ChainSlot, &block.chain[1]]),
        jump_cache: !checked,
    }
}

/// A GPR operand of `size` bytes the tier can address (no AH..BH).
fn gpr(r: u8) -> Option<u8> {
    (r < 16).then_some(r)
}

/// How `op` may be compiled (`last`: it ends the block; `long`: 64-bit mode).
fn lowering(op: &Op, last: bool, long: bool) -> Lowering {
    let ins = &op.ins;
    if ins.has_lock_prefix() || ins.encoding() != iced_x86::EncodingKind::Legacy {
        return Lowering::Helper;
    }
    let count = ins.op_count();
    let kind = |i: u32| (i < count).then(|| ins.op_kind(i));
    let reg0 = kind(0) == Some(OpKind::Register) && op.r0 != NO_REG;
    let size = if reg0 { ins.op0_register().size() as u8 } else { 0 };
    let src = || match kind(1) {
        Some(OpKind::Register) if op.r1 != NO_REG => gpr(op.r1).map(Src::Reg),
        Some(k) if super::ops::operand::is_immediate(k) => {
            Some(Src::Imm(ins.try_immediate(1).unwrap_or(0) & size_mask(size)))
        }
        _ => None,
    };
    // The register or immediate beside a memory operand of `size` bytes.
    let mem_src = |size: u8| {
        match kind(1) {
            Some(OpKind::Register) if op.r1 != NO_REG => gpr(op.r1).map(Src::Reg),
            Some(k) if super::ops::operand::is_immediate(k) => {
                Some(Src::Imm(ins.try_immediate(1).unwrap_or(0) & size_mask(size)))
            }
            _ => None,
        }
        .filter(|_| matches!(size, 1 | 2 | 4 | 8))
    };
    let lowered = match ins.mnemonic() {
        M::Mov if reg0 && count == 2 && kind(1) != Some(OpKind::Memory) => {
            gpr(op.r0).zip(src()).map(|(dst, src)| Lowering::Mov { dst, src, size })
        }
        m @ (M::Add | M::Or | M::And | M::Sub | M::Xor | M::Cmp | M::Test)
            if reg0 && count == 2 && kind(1) != Some(OpKind::Memory) =>
        {
            gpr(op.r0).zip(src()).map(|(dst, src)| Lowering::Alu { op: alu_op(m), dst, src, size })
        }
        m @ (M::Add | M::Or | M::And | M::Sub | M::Xor | M::Cmp) if reg0 && kind(1) == Some(OpKind::Memory) => {
            gpr(op.r0).map(|dst| Lowering::AluLoad {
                op: alu_op(m),
                dst,
                addr: address(op),
                seg: op.mem.seg as u8,
                size,
            })
        }
        m @ (M::Cmp | M::Test) if count == 2 && kind(0) == Some(OpKind::Memory) => {
            let size = ins.memory_size().size() as u8;
            mem_src(size).map(|src| Lowering::CmpMem {
                op: alu_op(m),
                addr: address(op),
                seg: op.mem.seg as u8,
                src,
                size,
            })
        }
        M::Movzx | M::Movsx | M::Movsxd if reg0 && kind(1) == Some(OpKind::Register) && op.r1 != NO_REG => {
            let from = ins.op1_register().size() as u8;
            gpr(op.r0).zip(gpr(op.r1)).filter(|_| from < size).map(|(dst, src)| Lowering::Extend {
                dst,
                src,
                from,
                size,
                signed: ins.mnemonic() != M::Movzx,
            })
        }
        m if super::ops::is_cmov(m) && reg0 && kind(1) == Some(OpKind::Register) && op.r1 != NO_REG => {
            gpr(op.r0).zip(gpr(op.r1)).map(|(dst, src)| Lowering::Cmov { cc: op.cc, dst, src, size })
        }
        m if super::ops::is_setcc(m) && reg0 && size == 1 => gpr(op.r0).map(|dst| Lowering::Setcc { cc: op.cc, dst }),
        M::Mov if reg0 && count == 2 && kind(1) == Some(OpKind::Memory) => gpr(op.r0).map(|dst| Lowering::Load {
            dst,
            addr: address(op),
            seg: op.mem.seg as u8,
            size,
            dst_size: size,
            signed: false,
        }),
        M::Movzx | M::Movsx | M::Movsxd if reg0 && kind(1) == Some(OpKind::Memory) => {
            let from = ins.memory_size().size() as u8;
            let signed = ins.mnemonic() != M::Movzx;
            gpr(op.r0).filter(|_| from < size).map(|dst| Lowering::Load {
                dst,
                addr: address(op),
                seg: op.mem.seg as u8,
                size: from,
                dst_size: size,
                signed,
            })
        }
        M::Mov if count == 2 && kind(0) == Some(OpKind::Memory) => {
            let size = ins.memory_size().size() as u8;
            mem_src(size).map(|src| Lowering::Store { src, addr: address(op), seg: op.mem.seg as u8, size })
        }
        M::Shl | M::Sal | M::Shr | M::Sar if reg0 => {
            let count = match count {
                1 => 1,
                2 if kind(1) == Some(OpKind::Immediate8) => ins.immediate8(),
                _ => 0,
            } & if size == 8 { 0x3f } else { 0x1f };
            let shift = match ins.mnemonic() {
                M::Shr => ShiftOp::Shr,
                M::Sar => ShiftOp::Sar,
                _ => ShiftOp::Shl,
            };
            gpr(op.r0).filter(|_| count != 0).map(|dst| Lowering::Shift { op: shift, dst, count, size })
        }
        M::Push | M::Pop if count == 1 && ins.code_size() != iced_x86::CodeSize::Code16 => {
            let size = ins.stack_pointer_increment().unsigned_abs() as u8;
            let reg = (kind(0) == Some(OpKind::Register) && op.r0 != NO_REG).then(|| gpr(op.r0)).flatten();
            match (ins.mnemonic(), reg) {
                (_, _) if !matches!(size, 4 | 8) => None,
                (M::Push, Some(r)) => Some(Lowering::Push { src: Src::Reg(r), size }),
                (M::Push, None) if kind(0).is_some_and(super::ops::operand::is_immediate) => {
                    Some(Lowering::Push { src: Src::Imm(ins.immediate(0) & size_mask(size)), size })
                }
                (M::Pop, Some(dst)) => Some(Lowering::Pop { dst, size }),
                _ => None,
            }
        }
        M::Inc | M::Dec if reg0 => gpr(op.r0).map(|dst| Lowering::IncDec { inc: ins.mnemonic() == M::Inc, dst, size }),
        M::Lea if reg0 && kind(1) == Some(OpKind::Memory) && size >= 2 => {
            gpr(op.r0).map(|dst| Lowering::Lea { dst, addr: address(op), size })
        }
        m if last && super::ops::is_jcc(m) && is_near_branch(ins.op0_kind()) => {
            direct_target(ins.near_branch_target(), long).map(|target| Lowering::Jcc { cc: op.cc, target })
        }
        M::Call if last && long && ins.code() == Code::Call_rel32_64 => {
            direct_target(ins.near_branch_target(), long).map(|target| Lowering::Call { target })
        }
        M::Ret if last && long && ins.code() == Code::Retnq => Some(Lowering::Ret),
        M::Jmp
            if last
                && matches!(
                    ins.code(),
                    Code::Jmp_rel8_16
                        | Code::Jmp_rel8_32
                        | Code::Jmp_rel8_64
                        | Code::Jmp_rel16
                        | Code::Jmp_rel32_32
                        | Code::Jmp_rel32_64
                ) =>
        {
            direct_target(ins.near_branch_target(), long).map(|target| Lowering::Jmp { target })
        }
        _ => None,
    };
    lowered.filter(|_| matches!(size, 0 | 1 | 2 | 4 | 8)).unwrap_or(Lowering::Helper)
}

/// The inline ALU operation of mnemonic `m` (one of ADD, OR, AND, SUB, XOR, CMP, TEST).
fn alu_op(m: M) -> AluOp {
    match m {
        M::Add => AluOp::Add,
        M::Or => AluOp::Or,
        M::And => AluOp::And,
        M::Sub => AluOp::Sub,
        M::Xor => AluOp::Xor,
        M::Cmp => AluOp::Cmp,
        _ => AluOp::Test,
    }
}

/// The pre-extracted effective address of `op`'s memory operand.
fn address(op: &Op) -> Address {
    let m = &op.mem;
    let reg = |r: u8| (r != NO_REG).then_some(r & 15);
    Address { disp: m.disp, base: reg(m.base), index: reg(m.index), scale: m.scale, amask: m.amask }
}

fn is_near_branch(k: OpKind) -> bool {
    matches!(k, OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64)
}

/// A direct branch target the unit may jump to without a check at run time beyond the
/// CS limit: in 64-bit mode it must be canonical (else the handler raises #GP).
fn direct_target(target: u64, long: bool) -> Option<u64> {
    (!long || ((target as i64) << 16 >> 16) as u64 == target).then_some(target)
}
