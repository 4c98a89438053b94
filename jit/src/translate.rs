//! Translation of a [`UnitPlan`] into Cranelift IR.
//!
//! Inside a unit the guest registers it touches live in SSA variables; they are
//! written back before every helper call and exit, and read again after a helper
//! (which may change any of them). The flags of the last inline flag-setting
//! instruction stay in SSA values too: a Jcc after a CMP tests the operands directly,
//! and a flag result that a later instruction replaces before anything reads it is
//! never stored. What is stored is exactly the interpreter's lazy-flag record, so the
//! state at every exit is the interpreter's.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    types, AbiParam, BlockArg, Function, InstBuilder, MemFlagsData, SigRef, Signature, UserFuncName, Value,
};
use cranelift_codegen::isa::{CallConv, TargetIsa};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use rx86_cpu::interp::flags::FlagOp;
use rx86_cpu::interp::state::attr;
use rx86_cpu::tier::{
    helper_result, offsets as off, Address, AluOp, Lowering, PlanInsn, ShiftOp, Src, TargetCheck, UnitPlan,
    JUMP_CACHE_FOLD, JUMP_CACHE_SLOTS,
};

const I64: types::Type = types::I64;

/// The fields of a [`rx86_cpu::tier::ChainSlot`].
const SLOT_FIELDS: [i32; 7] = [
    off::SLOT_ENTRY,
    off::SLOT_LEN,
    off::SLOT_EPOCH,
    off::SLOT_TLB_GENERATION,
    off::SLOT_RIP,
    off::SLOT_CS_BASE,
    off::SLOT_CPL,
];

/// Mask of an operand of `size` bytes.
fn mask(size: u8) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (size * 8)) - 1
    }
}

/// Flags produced by an inline instruction of this unit, still in SSA values.
#[derive(Clone, Copy)]
struct Known {
    op: FlagOp,
    size: u8,
    dst: Value,
    src: Value,
    res: Value,
    /// Not yet written to the state's lazy-flag record.
    unstored: bool,
}

/// Where the chain slot a unit goes on through lives.
#[derive(Clone, Copy)]
enum Via {
    /// The block's own chain slot for the exit.
    ChainSlot,
    /// The jump cache (counted apart); a hit is copied into `refill`, the exit's own
    /// chain slot that did not hold, when there is one.
    JumpCache { refill: Option<Value> },
}

/// Values every inline memory access of a unit uses.
#[derive(Clone, Copy)]
struct Access {
    /// The TLB's entries.
    tlb_entries: Value,
    /// The permission bits a read needs at the unit's CPL.
    need_read: Value,
    /// The permission bits a write needs at the unit's CPL.
    need_write: Value,
    /// Where the TLB's code epoch lives.
    code_epoch: Value,
}

/// The translator of one unit.
struct Tx<'a, 'b> {
    b: &'b mut FunctionBuilder<'a>,
    plan: &'b UnitPlan,
    frame: Value,
    st: Value,
    regs: [Variable; 16],
    /// Registers the unit's inline instructions use (loaded at entry).
    used: u16,
    /// Registers written since they were last stored.
    dirty: u16,
    /// Inline instructions retired since the counter was last updated (a variable, as
    /// paths with and without a helper call meet).
    pending: Variable,
    /// `pending` may be nonzero.
    pending_live: bool,
    flags: Option<Known>,
    /// What the memory accesses of the unit use, loaded once at entry (none of it
    /// changes while the unit runs: a change of CPL stops it).
    access: Option<Access>,
    exec_sig: SigRef,
    cond_sig: SigRef,
    fold_sig: SigRef,
    unit_sig: SigRef,
}

/// The signature of a unit: the frame pointer in, nothing out, in the tail-calling
/// convention so that units can chain without growing the host stack.
pub fn unit_signature() -> Signature {
    let mut sig = Signature::new(CallConv::Tail);
    sig.params.push(AbiParam::new(I64));
    sig
}

/// Builds the IR of `plan` into `func`.
pub fn translate(plan: &UnitPlan, func: &mut Function, fctx: &mut FunctionBuilderContext, isa: &dyn TargetIsa) {
    let call_conv = isa.default_call_conv();
    func.signature = unit_signature();
    func.name = UserFuncName::default();
    let mut b = FunctionBuilder::new(func, fctx);
    let sig_of = |params: &[types::Type], ret: Option<types::Type>| {
        let mut s = Signature::new(call_conv);
        s.params.extend(params.iter().map(|&t| AbiParam::new(t)));
        s.returns.extend(ret.map(AbiParam::new));
        s
    };
    let exec_sig = b.import_signature(sig_of(&[I64, I64], Some(types::I32)));
    let cond_sig = b.import_signature(sig_of(&[I64, types::I32], Some(types::I32)));
    let fold_sig = b.import_signature(sig_of(&[I64], None));
    let unit_sig = b.import_signature(unit_signature());
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let frame = b.block_params(entry)[0];
    let st = b.ins().load(I64, MemFlagsData::trusted(), frame, off::FRAME_ST);
    let regs = std::array::from_fn(|_| b.declare_var(I64));
    let used = plan.insns.iter().map(|i| regs_of(&i.lowering)).fold(0, |a, m| a | m);
    let pending = b.declare_var(I64);
    let zero = b.ins().iconst(I64, 0);
    b.def_var(pending, zero);
    let mut tx = Tx {
        b: &mut b,
        plan,
        frame,
        st,
        regs,
        used,
        dirty: 0,
        pending,
        pending_live: false,
        flags: None,
        access: None,
        exec_sig,
        cond_sig,
        fold_sig,
        unit_sig,
    };
    tx.load_regs();
    if plan.insns.iter().any(|i| i.lowering.accesses_memory()) {
        tx.access = Some(tx.access_values());
    }
    let head = tx.b.create_block();
    tx.b.ins().jump(head, &[]);
    tx.b.switch_to_block(head);
    let last = plan.insns.len() - 1;
    for (i, insn) in plan.insns.iter().enumerate() {
        tx.insn(insn, i == last, head);
    }
    b.seal_all_blocks();
    b.finalize(isa.frontend_config());
}

/// The lowering is a memory access that sets the flags (its slow path's handler
/// stores them).
fn sets_flags(l: &Lowering) -> bool {
    matches!(l, Lowering::AluLoad { .. } | Lowering::CmpMem { .. })
}

/// The registers a lowering reads or writes, as a bit mask.
fn regs_of(l: &Lowering) -> u16 {
    let bit = |r: u8| 1u16 << r;
    let src = |s: &Src| if let Src::Reg(r) = s { bit(*r) } else { 0 };
    match l {
        Lowering::Mov { dst, src: s, .. } | Lowering::Alu { dst, src: s, .. } => bit(*dst) | src(s),
        Lowering::IncDec { dst, .. } | Lowering::Shift { dst, .. } => bit(*dst),
        Lowering::Lea { dst, addr, .. } | Lowering::Load { dst, addr, .. } => bit(*dst) | address_regs(addr),
        Lowering::Store { src: s, addr, .. } => src(s) | address_regs(addr),
        Lowering::Push { src: s, .. } => src(s) | bit(4),
        Lowering::Pop { dst, .. } => bit(*dst) | bit(4),
        Lowering::Extend { dst, src, .. } | Lowering::Cmov { dst, src, .. } => bit(*dst) | bit(*src),
        Lowering::Setcc { dst, .. } => bit(*dst),
        Lowering::AluLoad { dst, addr, .. } => bit(*dst) | address_regs(addr),
        Lowering::CmpMem { src: s, addr, .. } => src(s) | address_regs(addr),
        Lowering::Call { .. } | Lowering::Ret => bit(4),
        Lowering::Helper | Lowering::Jcc { .. } | Lowering::Jmp { .. } => 0,
    }
}

/// The stack segment's number.
const SS: u8 = 2;

/// True for the shifts' flag operations.
fn is_shift(op: FlagOp) -> bool {
    matches!(op, FlagOp::Shl | FlagOp::Shr | FlagOp::Sar)
}

/// The registers of an address.
fn address_regs(a: &Address) -> u16 {
    a.base.map_or(0, |r| 1 << r) | a.index.map_or(0, |r| 1 << r)
}

/// What the translator knows at a point of the unit, to be restored on another path.
#[derive(Clone, Copy)]
struct Point {
    dirty: u16,
    flags: Option<Known>,
    pending_live: bool,
}

impl Tx<'_, '_> {
    /// The value of type `ty` behind the pointer in frame field `field`.
    fn behind_frame(&mut self, field: i32, ty: types::Type) -> Value {
        let t = MemFlagsData::trusted();
        let p = self.b.ins().load(I64, t, self.frame, field);
        self.b.ins().load(ty, t, p, 0)
    }

    /// `ok && a == b`.
    fn and_equal(&mut self, ok: Value, a: Value, b: Value) -> Value {
        let same = self.b.ins().icmp(IntCC::Equal, a, b);
        self.b.ins().band(ok, same)
    }

    fn point(&self) -> Point {
        Point { dirty: self.dirty, flags: self.flags, pending_live: self.pending_live }
    }

    fn restore(&mut self, p: Point) {
        (self.dirty, self.flags, self.pending_live) = (p.dirty, p.flags, p.pending_live);
    }

    /// Counts one inline instruction retired.
    fn count(&mut self, n: i64) {
        let v = self.b.use_var(self.pending);
        let v = self.b.ins().iadd_imm_s(v, n);
        self.b.def_var(self.pending, v);
        self.pending_live = true;
    }

    fn iconst(&mut self, v: u64) -> Value {
        self.b.ins().iconst(I64, v as i64)
    }

    fn load_regs(&mut self) {
        for r in 0..16 {
            if self.used & (1 << r) != 0 {
                let v = self.b.ins().load(I64, MemFlagsData::trusted(), self.st, off::GPR + 8 * r as i32);
                self.b.def_var(self.regs[r], v);
            }
        }
        self.dirty = 0;
    }

    /// Register `r` masked to `size` bytes.
    fn get(&mut self, r: u8, size: u8) -> Value {
        let v = self.b.use_var(self.regs[r as usize]);
        if size >= 8 {
            v
        } else {
            self.b.ins().band_imm_u(v, mask(size) as i64)
        }
    }

    /// Writes `v` (masked to `size`) to register `r` with the merge rules of its size.
    fn put(&mut self, r: u8, v: Value, size: u8) {
        let new = match size {
            8 => v,
            4 => self.b.ins().band_imm_u(v, 0xffff_ffff),
            _ => {
                let old = self.b.use_var(self.regs[r as usize]);
                let keep = self.b.ins().band_imm_u(old, !mask(size) as i64);
                let low = self.b.ins().band_imm_u(v, mask(size) as i64);
                self.b.ins().bor(keep, low)
            }
        };
        self.b.def_var(self.regs[r as usize], new);
        self.dirty |= 1 << r;
    }

    fn src(&mut self, s: Src, size: u8) -> Value {
        match s {
            Src::Reg(r) => self.get(r, size),
            Src::Imm(v) => self.iconst(v & mask(size)),
        }
    }

    /// Stores the dirty registers, the unstored flags and the retired count: the state
    /// in memory is then the interpreter's.
    fn flush(&mut self) {
        for r in 0..16 {
            if self.dirty & (1 << r) != 0 {
                let v = self.b.use_var(self.regs[r]);
                self.b.ins().store(MemFlagsData::trusted(), v, self.st, off::GPR + 8 * r as i32);
            }
        }
        self.dirty = 0;
        self.flush_flags();
        if self.pending_live {
            let p = self.b.ins().load(I64, MemFlagsData::trusted(), self.frame, off::FRAME_RETIRED);
            let n = self.b.ins().load(I64, MemFlagsData::trusted(), p, 0);
            let k = self.b.use_var(self.pending);
            let n = self.b.ins().iadd(n, k);
            self.b.ins().store(MemFlagsData::trusted(), n, p, 0);
            let zero = self.iconst(0);
            self.b.def_var(self.pending, zero);
            self.pending_live = false;
        }
    }

    /// Stores the flags of the last inline flag-setting instruction if they are not yet.
    fn flush_flags(&mut self) {
        if let Some(k) = self.flags.as_mut().filter(|k| k.unstored) {
            k.unstored = false;
            let k = *k;
            let t = MemFlagsData::trusted();
            self.b.ins().store(t, k.dst, self.st, off::LAZY_DST);
            self.b.ins().store(t, k.src, self.st, off::LAZY_SRC);
            self.b.ins().store(t, k.res, self.st, off::LAZY_RES);
            let op = self.b.ins().iconst(types::I8, k.op as i64);
            self.b.ins().store(t, op, self.st, off::LAZY_OP);
            let size = self.b.ins().iconst(types::I8, k.size as i64);
            self.b.ins().store(t, size, self.st, off::LAZY_SIZE);
        }
    }

    /// Flushes, sets RIP and leaves the unit: through chain slot `slot` to the
    /// successor's code when the slot holds, else through the jump cache, else back to
    /// the interpreter. The current block ends; the translator's state is left as it was
    /// before the flush.
    fn exit_to(&mut self, rip: u64, slot: Option<usize>) {
        let before = self.point();
        self.flush();
        let v = self.iconst(rip);
        self.b.ins().store(MemFlagsData::trusted(), v, self.st, off::RIP);
        let direct = slot.and_then(|i| self.plan.chain.map(|c| self.iconst(c[i] as u64)));
        if let Some(s) = direct {
            self.go_through(s, v, Via::ChainSlot);
        }
        self.leave(v, direct);
        self.restore(before);
    }

    /// Leaves the unit, flushed and with RIP `rip` stored: through the jump cache to
    /// the compiled code at `rip` when its slot holds (copying it to the unit's chain slot
    /// `direct`, which did not hold, for next time), else back to the interpreter.
    fn leave(&mut self, rip: Value, direct: Option<Value>) {
        if self.plan.jump_cache {
            let folded = self.b.ins().ushr_imm_u(rip, i64::from(JUMP_CACHE_FOLD));
            let index = self.b.ins().bxor(rip, folded);
            let index = self.b.ins().band_imm_u(index, (JUMP_CACHE_SLOTS - 1) as i64);
            let offset = self.b.ins().imul_imm_u(index, off::SLOT_SIZE as i64);
            let base = self.b.ins().load(I64, MemFlagsData::trusted(), self.frame, off::FRAME_JUMP_CACHE);
            let slot = self.b.ins().iadd(base, offset);
            self.go_through(slot, rip, Via::JumpCache { refill: direct });
        }
        self.b.ins().return_(&[]);
    }

    /// Tail-calls the code chain slot `s` names if the slot holds for going on to
    /// `rip` now; otherwise goes on in a new block. The state must be flushed.
    fn go_through(&mut self, s: Value, rip: Value, via: Via) {
        let t = MemFlagsData::trusted();
        let entry = self.b.ins().load(I64, t, s, off::SLOT_ENTRY);
        let len = self.b.ins().load(I64, t, s, off::SLOT_LEN);
        let tlb = self.b.ins().load(I64, t, s, off::SLOT_TLB_GENERATION);
        let mut ok = self.may_go_on(len, tlb);
        let filled = self.b.ins().icmp_imm_s(IntCC::NotEqual, entry, 0);
        ok = self.b.ins().band(ok, filled);
        for (field, value) in [
            (off::SLOT_RIP, rip),
            (off::SLOT_CS_BASE, self.b.ins().load(I64, t, self.st, off::seg_base(1))),
            (off::SLOT_CPL, self.b.ins().uload8(I64, t, self.st, off::CPL)),
        ] {
            let want = self.b.ins().load(I64, t, s, field);
            ok = self.and_equal(ok, want, value);
        }
        let epoch = self.b.ins().load(I64, t, s, off::SLOT_EPOCH);
        let now = self.behind_frame(off::FRAME_CHAIN_EPOCH, I64);
        ok = self.and_equal(ok, epoch, now);
        let go = self.b.create_block();
        let back = self.b.create_block();
        self.b.ins().brif(ok, go, &[], back, &[]);
        self.b.switch_to_block(go);
        if let Via::JumpCache { refill: Some(direct) } = via {
            for field in SLOT_FIELDS {
                let v = self.b.ins().load(I64, t, s, field);
                self.b.ins().store(t, v, direct, field);
            }
        }
        let counters: &[i32] = match via {
            Via::ChainSlot => &[off::FRAME_CHAINED],
            Via::JumpCache { .. } => &[off::FRAME_CHAINED, off::FRAME_JUMPED],
        };
        for &field in counters {
            let n = self.b.ins().load(I64, t, self.frame, field);
            let n = self.b.ins().iadd_imm_s(n, 1);
            self.b.ins().store(t, n, self.frame, field);
        }
        self.b.ins().return_call_indirect(self.unit_sig, entry, &[self.frame]);
        self.b.switch_to_block(back);
    }

    /// True (I8) when another `len` instructions of compiled code may run now: the budget
    /// covers them, nothing asked for the interpreter's loop, and the TLB generation is
    /// still `tlb`. The state must be flushed.
    fn may_go_on(&mut self, len: Value, tlb: Value) -> Value {
        let t = MemFlagsData::trusted();
        let retired = self.behind_frame(off::FRAME_RETIRED, I64);
        let end = self.b.ins().load(I64, t, self.frame, off::FRAME_RETIRED_END);
        let next = self.b.ins().iadd(retired, len);
        let mut ok = self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, next, end);
        for field in [off::FRAME_BRK, off::FRAME_IRQ_CHECK] {
            let v = self.behind_frame(field, types::I8);
            let clear = self.b.ins().icmp_imm_s(IntCC::Equal, v, 0);
            ok = self.b.ins().band(ok, clear);
        }
        let now = self.behind_frame(off::FRAME_TLB_GENERATION, I64);
        self.and_equal(ok, now, tlb)
    }

    /// The chain slot of a successor at `rip`: 0 for the fall-through, 1 for any other.
    fn slot_of(&self, rip: u64) -> usize {
        usize::from(self.plan.insns.last().is_none_or(|i| i.next_ip != rip))
    }

    /// Calls the instruction's handler; leaves the unit if it says to stop.
    fn helper(&mut self, insn: &PlanInsn, last: bool) {
        self.call_handler(insn, last);
        self.flags = None;
    }

    /// [`Self::helper`] without forgetting the flags (for instructions that do not
    /// change them). When the unit's `last` instruction branched, the unit goes on
    /// through the jump cache.
    fn call_handler(&mut self, insn: &PlanInsn, last: bool) {
        self.flush();
        let f = self.iconst(self.plan.abi.exec_op as usize as u64);
        let ctx = self.b.ins().load(I64, MemFlagsData::trusted(), self.frame, off::FRAME_CTX);
        let op = self.iconst(insn.op as u64);
        let call = self.b.ins().call_indirect(self.exec_sig, f, &[ctx, op]);
        let result = self.b.inst_results(call)[0];
        let out = self.b.create_block();
        let on = self.b.create_block();
        self.b.ins().brif(result, out, &[], on, &[]);
        self.b.switch_to_block(out);
        if last && self.plan.jump_cache {
            let branched = self.b.ins().icmp_imm_u(IntCC::Equal, result, i64::from(helper_result::BRANCHED));
            let jump = self.b.create_block();
            let stop = self.b.create_block();
            self.b.ins().brif(branched, jump, &[], stop, &[]);
            self.b.switch_to_block(jump);
            let rip = self.b.ins().load(I64, MemFlagsData::trusted(), self.st, off::RIP);
            self.leave(rip, None);
            self.b.switch_to_block(stop);
        }
        self.b.ins().return_(&[]);
        self.b.switch_to_block(on);
        self.load_regs();
    }

    /// Loads what the unit's memory accesses use (in the entry block).
    fn access_values(&mut self) -> Access {
        let t = MemFlagsData::trusted();
        let tlb_entries = self.b.ins().load(I64, t, self.frame, off::FRAME_TLB_ENTRIES);
        let cpl = self.b.ins().uload8(I64, t, self.st, off::CPL);
        let user = self.b.ins().icmp_imm_s(IntCC::Equal, cpl, 3);
        let user_bit = self.b.ins().uextend(I64, user);
        let need_read = self.b.ins().imul_imm_u(user_bit, off::PERM_USER as i64);
        let need_write = self.b.ins().bor_imm_u(need_read, off::PERM_WRITE as i64);
        let code_epoch = self.b.ins().load(I64, t, self.frame, off::FRAME_CODE_EPOCH);
        Access { tlb_entries, need_read, need_write, code_epoch }
    }

    /// The offset of an address.
    fn effective(&mut self, addr: &Address) -> Value {
        let mut a = self.iconst(addr.disp);
        if let Some(base) = addr.base {
            let v = self.get(base, 8);
            a = self.b.ins().iadd(a, v);
        }
        if let Some(index) = addr.index {
            let v = self.get(index, 8);
            let v = self.b.ins().ishl_imm_u(v, addr.scale as i64);
            a = self.b.ins().iadd(a, v);
        }
        if addr.amask == u64::MAX {
            a
        } else {
            self.b.ins().band_imm_u(a, addr.amask as i64)
        }
    }

    /// The interpreter's lean access path inline: the segment test, the page test and the
    /// TLB probe. Leaves the builder in the block where they all passed, with the host
    /// address of the bytes; returns it and the block taken when any failed.
    fn host_address(
        &mut self,
        addr: &Address,
        seg: u8,
        size: u8,
        write: bool,
    ) -> (Value, cranelift_codegen::ir::Block) {
        let ea = self.effective(addr);
        let ok = self.b.ins().iconst(types::I8, 1);
        self.host_address_at(ea, ok, seg, size, write)
    }

    /// [`Self::host_address`] of offset `ea`, with `ok` (I8) a further condition.
    fn host_address_at(
        &mut self,
        ea: Value,
        mut ok: Value,
        seg: u8,
        size: u8,
        write: bool,
    ) -> (Value, cranelift_codegen::ir::Block) {
        let t = MemFlagsData::trusted();
        let lin = if self.plan.long_mode {
            if seg >= 4 {
                let base = self.b.ins().load(I64, t, self.st, off::seg_base(seg));
                self.b.ins().iadd(ea, base)
            } else {
                ea
            }
        } else {
            let attrs = self.b.ins().uload16(I64, t, self.st, off::seg_attrs(seg));
            let limit = self.b.ins().uload32(t, self.st, off::seg_limit(seg));
            let base = self.b.ins().load(I64, t, self.st, off::seg_base(seg));
            let (p, s, code, dc, rw) =
                (attr::P as i64, attr::S as i64, attr::CODE as i64, attr::DC as i64, attr::RW as i64);
            let usable = if write {
                let m = self.b.ins().band_imm_s(attrs, p | s | code | dc | rw);
                self.b.ins().icmp_imm_s(IntCC::Equal, m, p | s | rw)
            } else {
                let m = self.b.ins().band_imm_s(attrs, p | s | code | dc);
                let data = self.b.ins().icmp_imm_s(IntCC::Equal, m, p | s);
                let m = self.b.ins().band_imm_s(attrs, p | s | code | rw);
                let readable_code = self.b.ins().icmp_imm_s(IntCC::Equal, m, p | s | code | rw);
                self.b.ins().bor(data, readable_code)
            };
            let last = self.b.ins().iadd_imm_s(ea, size as i64 - 1);
            let within = self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, last, limit);
            let seg_ok = self.b.ins().band(usable, within);
            ok = self.b.ins().band(ok, seg_ok);
            let lin = self.b.ins().iadd(base, ea);
            self.b.ins().band_imm_u(lin, 0xffff_ffff)
        };
        let access = self.access.expect("the unit's access values are loaded at its entry");
        let page_off = self.b.ins().band_imm_u(lin, 0xfff);
        if size > 1 {
            let fits = self.b.ins().icmp_imm_u(IntCC::UnsignedLessThanOrEqual, page_off, 0x1000 - size as i64);
            ok = self.b.ins().band(ok, fits);
        }
        let page = self.b.ins().ushr_imm_u(lin, 12);
        let index = self.b.ins().band_imm_u(page, (off::TLB_ENTRIES - 1) as i64);
        let index = self.b.ins().imul_imm_u(index, off::TLB_ENTRY_SIZE as i64);
        let e = self.b.ins().iadd(access.tlb_entries, index);
        let tag = self.b.ins().load(I64, t, e, off::TLB_TAG);
        let want = self.b.ins().iadd_imm_s(page, 1);
        ok = self.and_equal(ok, tag, want);
        let perm = self.b.ins().uload8(I64, t, e, off::TLB_PERM);
        let need = if write { access.need_write } else { access.need_read };
        let have = self.b.ins().band(perm, need);
        ok = self.and_equal(ok, have, need);
        let host = self.b.ins().load(I64, t, e, if write { off::TLB_WRITE_HOST } else { off::TLB_HOST });
        let mapped = self.b.ins().icmp_imm_s(IntCC::NotEqual, host, 0);
        ok = self.b.ins().band(ok, mapped);
        if write {
            let epoch = self.b.ins().load(I64, t, e, off::TLB_EPOCH);
            let now = self.b.ins().load(I64, t, access.code_epoch, 0);
            ok = self.and_equal(ok, epoch, now);
        }
        let fast = self.b.create_block();
        let slow = self.b.create_block();
        self.b.ins().brif(ok, fast, &[], slow, &[]);
        self.b.switch_to_block(fast);
        (self.b.ins().iadd(host, page_off), slow)
    }

    /// `size` bytes of guest RAM at host address `host`, extended to 64 bits.
    fn load_host(&mut self, host: Value, size: u8, signed: bool) -> Value {
        let g = MemFlagsData::new();
        match (size, signed) {
            (1, false) => self.b.ins().uload8(I64, g, host, 0),
            (1, true) => self.b.ins().sload8(I64, g, host, 0),
            (2, false) => self.b.ins().uload16(I64, g, host, 0),
            (2, true) => self.b.ins().sload16(I64, g, host, 0),
            (4, false) => self.b.ins().uload32(g, host, 0),
            (4, true) => self.b.ins().sload32(g, host, 0),
            _ => self.b.ins().load(I64, g, host, 0),
        }
    }

    /// Stores the low `size` bytes of `v` to guest RAM at host address `host`.
    fn store_host(&mut self, host: Value, v: Value, size: u8) {
        let g = MemFlagsData::new();
        match size {
            1 => self.b.ins().istore8(g, v, host, 0),
            2 => self.b.ins().istore16(g, v, host, 0),
            4 => self.b.ins().istore32(g, v, host, 0),
            _ => self.b.ins().store(g, v, host, 0),
        };
    }

    /// The stack pointer masked to the stack's size, the condition (I8) for the inline
    /// path (in 32-bit code, SS.B set: a 32-bit stack), and the stack's size in bytes.
    fn stack_pointer(&mut self) -> (Value, Value, u8) {
        if self.plan.long_mode {
            let one = self.b.ins().iconst(types::I8, 1);
            return (self.get(4, 8), one, 8);
        }
        let attrs = self.b.ins().uload16(I64, MemFlagsData::trusted(), self.st, off::seg_attrs(SS));
        let big = self.b.ins().band_imm_u(attrs, attr::DB as i64);
        let ok = self.b.ins().icmp_imm_s(IntCC::NotEqual, big, 0);
        (self.get(4, 4), ok, 4)
    }

    /// Ends an inline memory access: the fast path (current block, in the state it
    /// left) and the slow path `slow` (entered in state `before`, running the
    /// instruction's handler) meet in a new block, where the fast path's state holds.
    /// When the instruction set the flags, the slow path's flags (the lazy record its
    /// handler stored, of the same operation and size) join the fast path's known ones.
    fn join_slow_path(&mut self, insn: &PlanInsn, slow: cranelift_codegen::ir::Block, before: Point) {
        let join = self.b.create_block();
        let set = self.flags.filter(|_| sets_flags(&insn.lowering));
        let params: Vec<Value> =
            set.iter().flat_map(|_| [I64; 3]).map(|t| self.b.append_block_param(join, t)).collect();
        let args: Vec<BlockArg> = set.iter().flat_map(|k| [k.dst, k.src, k.res]).map(BlockArg::Value).collect();
        self.b.ins().jump(join, &args);
        let fast = self.point();
        self.b.switch_to_block(slow);
        self.restore(before);
        self.call_handler(insn, false);
        let args: Vec<BlockArg> = if set.is_some() {
            let t = MemFlagsData::trusted();
            [off::LAZY_DST, off::LAZY_SRC, off::LAZY_RES]
                .map(|field| BlockArg::Value(self.b.ins().load(I64, t, self.st, field)))
                .to_vec()
        } else {
            Vec::new()
        };
        self.b.ins().jump(join, &args);
        self.b.switch_to_block(join);
        self.restore(fast);
        if let Some(k) = set {
            self.flags = Some(Known { dst: params[0], src: params[1], res: params[2], ..k });
        }
    }

    fn insn(&mut self, insn: &PlanInsn, last: bool, head: cranelift_codegen::ir::Block) {
        // A memory access leaves its slow path (and the state it starts in) to be joined
        // once the fast path has counted the instruction.
        let slow_path = match insn.lowering {
            Lowering::Helper => {
                self.helper(insn, last);
                if last {
                    // The handler went on in a straight line: to the next block.
                    self.exit_to(insn.next_ip, Some(0));
                }
                return;
            }
            Lowering::Mov { dst, src, size } => {
                let v = self.src(src, size);
                self.put(dst, v, size);
                None
            }
            Lowering::Alu { op, dst, src, size } => {
                self.alu(op, dst, src, size);
                None
            }
            Lowering::IncDec { inc, dst, size } => {
                self.inc_dec(inc, dst, size);
                None
            }
            Lowering::Shift { op, dst, count, size } => {
                self.shift(op, dst, count, size);
                None
            }
            Lowering::Lea { dst, addr, size } => {
                let a = self.effective(&addr);
                self.put(dst, a, size);
                None
            }
            Lowering::Load { dst, addr, seg, size, dst_size, signed } => {
                let before = self.point();
                let (host, slow) = self.host_address(&addr, seg, size, false);
                let v = self.load_host(host, size, signed);
                self.put(dst, v, dst_size);
                Some((slow, before))
            }
            Lowering::Push { src, size } => {
                let before = self.point();
                let (sp, ok, stack) = self.stack_pointer();
                let sp = self.b.ins().iadd_imm_s(sp, -(size as i64));
                let sp = self.b.ins().band_imm_u(sp, mask(stack) as i64);
                let v = self.src(src, size);
                let (host, slow) = self.host_address_at(sp, ok, SS, size, true);
                self.store_host(host, v, size);
                self.put(4, sp, stack);
                Some((slow, before))
            }
            Lowering::Pop { dst, size } => {
                let before = self.point();
                let (sp, ok, stack) = self.stack_pointer();
                let (host, slow) = self.host_address_at(sp, ok, SS, size, false);
                let v = self.load_host(host, size, false);
                let up = self.b.ins().iadd_imm_s(sp, size as i64);
                self.put(4, up, stack);
                self.put(dst, v, size);
                Some((slow, before))
            }
            Lowering::Extend { dst, src, from, size, signed } => {
                let v = self.get(src, from);
                let v = if signed {
                    let shift = 64 - 8 * i64::from(from);
                    let up = self.b.ins().ishl_imm_u(v, shift);
                    self.b.ins().sshr_imm_u(up, shift)
                } else {
                    v
                };
                self.put(dst, v, size);
                None
            }
            Lowering::Cmov { cc, dst, src, size } => {
                let c = self.condition(cc);
                let (a, d) = (self.get(src, size), self.get(dst, size));
                let v = self.b.ins().select(c, a, d);
                self.put(dst, v, size);
                None
            }
            Lowering::Setcc { cc, dst } => {
                let c = self.condition(cc);
                let v = self.b.ins().uextend(I64, c);
                self.put(dst, v, 1);
                None
            }
            Lowering::AluLoad { op, dst, addr, seg, size } => {
                let before = self.point();
                let (host, slow) = self.host_address(&addr, seg, size, false);
                let m = self.load_host(host, size, false);
                let d = self.get(dst, size);
                self.alu_values(op, d, m, size, Some(dst));
                Some((slow, before))
            }
            Lowering::CmpMem { op, addr, seg, src, size } => {
                let before = self.point();
                let (host, slow) = self.host_address(&addr, seg, size, false);
                let m = self.load_host(host, size, false);
                let s = self.src(src, size);
                self.alu_values(op, m, s, size, None);
                Some((slow, before))
            }
            Lowering::Store { src, addr, seg, size } => {
                let before = self.point();
                let (host, slow) = self.host_address(&addr, seg, size, true);
                let v = self.src(src, size);
                self.store_host(host, v, size);
                Some((slow, before))
            }
            Lowering::Jcc { cc, target } => {
                let c = self.condition(cc);
                self.count(1);
                let taken = self.b.create_block();
                let fall = self.b.create_block();
                self.b.ins().brif(c, taken, &[], fall, &[]);
                let saved = self.point();
                self.b.switch_to_block(fall);
                self.exit_to(insn.next_ip, Some(0));
                self.b.switch_to_block(taken);
                self.restore(saved);
                self.branch(insn, target, head);
                return;
            }
            Lowering::Jmp { target } => {
                self.count(1);
                self.branch(insn, target, head);
                return;
            }
            Lowering::Call { target } => {
                self.call(insn, target);
                return;
            }
            Lowering::Ret => {
                self.ret(insn);
                return;
            }
        };
        self.count(1);
        if let Some((slow, before)) = slow_path {
            self.join_slow_path(insn, slow, before);
        }
        if last {
            self.exit_to(insn.next_ip, Some(0));
        }
    }

    /// CALL rel to `target` in 64-bit mode (the unit's last instruction): the return
    /// address pushed inline, then on to the target's code; a TLB miss runs the handler.
    fn call(&mut self, insn: &PlanInsn, target: u64) {
        let before = self.point();
        let (sp, ok, _) = self.stack_pointer();
        let sp = self.b.ins().iadd_imm_s(sp, -8);
        let (host, slow) = self.host_address_at(sp, ok, SS, 8, true);
        let ret = self.iconst(insn.next_ip);
        self.store_host(host, ret, 8);
        self.put(4, sp, 8);
        self.count(1);
        self.exit_to(target, Some(self.slot_of(target)));
        self.handler_path(insn, slow, before);
    }

    /// RET in 64-bit mode (the unit's last instruction): the target popped inline, then
    /// on to its code through the jump cache; a TLB miss or a non-canonical target runs
    /// the handler.
    fn ret(&mut self, insn: &PlanInsn) {
        let before = self.point();
        let (sp, ok, _) = self.stack_pointer();
        let (host, slow) = self.host_address_at(sp, ok, SS, 8, false);
        let target = self.load_host(host, 8, false);
        let up = self.b.ins().ishl_imm_u(target, 16);
        let canonical = self.b.ins().sshr_imm_u(up, 16);
        let canonical = self.b.ins().icmp(IntCC::Equal, canonical, target);
        let go = self.b.create_block();
        self.b.ins().brif(canonical, go, &[], slow, &[]);
        self.b.switch_to_block(go);
        let sp = self.b.ins().iadd_imm_s(sp, 8);
        self.put(4, sp, 8);
        self.count(1);
        self.flush();
        self.b.ins().store(MemFlagsData::trusted(), target, self.st, off::RIP);
        self.leave(target, None);
        self.handler_path(insn, slow, before);
    }

    /// The slow path `slow` of the unit's last instruction, entered in state `before`:
    /// its handler, then on as it went (through the jump cache when it branched).
    fn handler_path(&mut self, insn: &PlanInsn, slow: cranelift_codegen::ir::Block, before: Point) {
        self.b.switch_to_block(slow);
        self.restore(before);
        self.helper(insn, true);
        self.exit_to(insn.next_ip, Some(0));
    }

    /// A taken branch to `target` (counted already): the CS-limit check, then back to
    /// the head when the unit loops and may go round again, else out.
    fn branch(&mut self, insn: &PlanInsn, target: u64, head: cranelift_codegen::ir::Block) {
        if self.plan.target_check == TargetCheck::CsLimit {
            let limit = self.b.ins().uload32(MemFlagsData::trusted(), self.st, off::CS_LIMIT);
            let t = self.iconst(target);
            let over = self.b.ins().icmp(IntCC::UnsignedLessThan, limit, t);
            let bad = self.b.create_block();
            let good = self.b.create_block();
            self.b.ins().brif(over, bad, &[], good, &[]);
            let saved = self.point();
            self.b.switch_to_block(bad);
            // Let the handler raise the #GP, exactly as the interpreter would.
            self.count(-1);
            self.helper(insn, false);
            self.b.ins().return_(&[]);
            self.b.switch_to_block(good);
            self.restore(saved);
        }
        let first_ip = self.plan.insns[0].ip;
        if !(self.plan.loops && target == first_ip) {
            self.exit_to(target, Some(self.slot_of(target)));
            return;
        }
        self.flush();
        let t = MemFlagsData::trusted();
        let len = self.iconst(self.plan.insns.len() as u64);
        let then = self.b.ins().load(I64, t, self.frame, off::FRAME_ENTRY_GENERATION);
        let mut ok = self.may_go_on(len, then);
        let dead = self.behind_frame(off::FRAME_DEAD, types::I8);
        let alive = self.b.ins().icmp_imm_s(IntCC::Equal, dead, 0);
        ok = self.b.ins().band(ok, alive);
        let out = self.b.create_block();
        self.b.ins().brif(ok, head, &[], out, &[]);
        self.b.switch_to_block(out);
        self.exit_to(target, None);
        self.flags = None;
    }

    fn alu(&mut self, op: AluOp, dst: u8, src: Src, size: u8) {
        let d = self.get(dst, size);
        let s = self.src(src, size);
        self.alu_values(op, d, s, size, Some(dst));
    }

    /// `d OP s` on `size` bytes: the flags become known, and the result goes to `dst`
    /// (unless the operation is CMP or TEST, or there is no `dst`).
    fn alu_values(&mut self, op: AluOp, d: Value, s: Value, size: u8, dst: Option<u8>) {
        let (fop, r) = match op {
            AluOp::Add => (FlagOp::Add, self.b.ins().iadd(d, s)),
            AluOp::Sub | AluOp::Cmp => (FlagOp::Sub, self.b.ins().isub(d, s)),
            AluOp::And | AluOp::Test => (FlagOp::Logic, self.b.ins().band(d, s)),
            AluOp::Or => (FlagOp::Logic, self.b.ins().bor(d, s)),
            AluOp::Xor => (FlagOp::Logic, self.b.ins().bxor(d, s)),
        };
        let r = if size >= 8 { r } else { self.b.ins().band_imm_u(r, mask(size) as i64) };
        self.flags = Some(Known { op: fop, size, dst: d, src: s, res: r, unstored: true });
        if let Some(dst) = dst.filter(|_| !matches!(op, AluOp::Cmp | AluOp::Test)) {
            self.put(dst, r, size);
        }
    }

    /// SHL, SHR or SAR of a register by `count` (1-63), as the interpreter's form does
    /// (the flags record the operand, the count and the result).
    fn shift(&mut self, op: ShiftOp, dst: u8, count: u8, size: u8) {
        let d = self.get(dst, size);
        let bits = size as i64 * 8;
        let (fop, r) = match op {
            ShiftOp::Shl => (FlagOp::Shl, self.b.ins().ishl_imm_u(d, count as i64)),
            ShiftOp::Shr => (FlagOp::Shr, self.b.ins().ushr_imm_u(d, count as i64)),
            ShiftOp::Sar => {
                let up = self.b.ins().ishl_imm_u(d, 64 - bits);
                let signed = self.b.ins().sshr_imm_u(up, 64 - bits);
                (FlagOp::Sar, self.b.ins().sshr_imm_u(signed, count as i64))
            }
        };
        let r = if size >= 8 { r } else { self.b.ins().band_imm_u(r, mask(size) as i64) };
        let c = self.iconst(count as u64);
        self.flags = Some(Known { op: fop, size, dst: d, src: c, res: r, unstored: true });
        self.put(dst, r, size);
    }

    fn inc_dec(&mut self, inc: bool, dst: u8, size: u8) {
        // INC and DEC keep CF: fold the pending one into RFLAGS first.
        match self.flags {
            Some(k) if matches!(k.op, FlagOp::Inc | FlagOp::Dec) => {}
            Some(k) if is_shift(k.op) => {
                self.flush_flags();
                self.fold_carry();
            }
            Some(k) => {
                let cf = self.carry_of(&k);
                let t = MemFlagsData::trusted();
                let old = self.b.ins().load(I64, t, self.st, off::RFLAGS);
                let old = self.b.ins().band_imm_u(old, !1i64);
                let new = self.b.ins().bor(old, cf);
                self.b.ins().store(t, new, self.st, off::RFLAGS);
            }
            None => self.fold_carry(),
        }
        let d = self.get(dst, size);
        let one = self.iconst(1);
        let r = if inc { self.b.ins().iadd(d, one) } else { self.b.ins().isub(d, one) };
        let r = if size >= 8 { r } else { self.b.ins().band_imm_u(r, mask(size) as i64) };
        let op = if inc { FlagOp::Inc } else { FlagOp::Dec };
        self.flags = Some(Known { op, size, dst: d, src: one, res: r, unstored: true });
        self.put(dst, r, size);
    }

    /// Folds the stored lazy CF into RFLAGS through the helper.
    fn fold_carry(&mut self) {
        let f = self.iconst(self.plan.abi.fold_carry as usize as u64);
        self.b.ins().call_indirect(self.fold_sig, f, &[self.st]);
    }

    /// CF (0 or 1, 64-bit) of known ADD, SUB or logic flags.
    fn carry_of(&mut self, k: &Known) -> Value {
        let c = match k.op {
            FlagOp::Add => self.b.ins().icmp(IntCC::UnsignedLessThan, k.res, k.dst),
            FlagOp::Sub => self.b.ins().icmp(IntCC::UnsignedLessThan, k.dst, k.src),
            _ => return self.iconst(0),
        };
        self.b.ins().uextend(I64, c)
    }

    /// Condition `cc` as an I8 truth value.
    fn condition(&mut self, cc: u8) -> Value {
        // CF and OF of a shift are left to the helper (the conditions O, B, BE, L, LE).
        if self.flags.is_some_and(|k| is_shift(k.op)) && matches!(cc >> 1, 0 | 1 | 3 | 6 | 7) {
            self.flush_flags();
            self.flags = None;
        }
        let Some(k) = self.flags else {
            let f = self.iconst(self.plan.abi.condition as usize as u64);
            let cc = self.b.ins().iconst(types::I32, cc as i64);
            let call = self.b.ins().call_indirect(self.cond_sig, f, &[self.st, cc]);
            let r = self.b.inst_results(call)[0];
            return self.b.ins().icmp_imm_s(IntCC::NotEqual, r, 0);
        };
        let sign = 1i64 << (k.size as u32 * 8 - 1);
        let zf = |tx: &mut Self| tx.b.ins().icmp_imm_s(IntCC::Equal, k.res, 0);
        let sf = |tx: &mut Self| {
            let s = tx.b.ins().band_imm_u(k.res, sign);
            tx.b.ins().icmp_imm_s(IntCC::NotEqual, s, 0)
        };
        let of = |tx: &mut Self| -> Value {
            let x = match k.op {
                FlagOp::Add | FlagOp::Inc => {
                    let a = tx.b.ins().bxor(k.dst, k.res);
                    let b = tx.b.ins().bxor(k.src, k.res);
                    tx.b.ins().band(a, b)
                }
                FlagOp::Sub | FlagOp::Dec => {
                    let a = tx.b.ins().bxor(k.dst, k.src);
                    let b = tx.b.ins().bxor(k.dst, k.res);
                    tx.b.ins().band(a, b)
                }
                _ => return tx.b.ins().iconst(types::I8, 0),
            };
            let x = tx.b.ins().band_imm_u(x, sign);
            tx.b.ins().icmp_imm_s(IntCC::NotEqual, x, 0)
        };
        let cf = |tx: &mut Self| -> Value {
            match k.op {
                FlagOp::Inc | FlagOp::Dec => {
                    let f = tx.b.ins().load(I64, MemFlagsData::trusted(), tx.st, off::RFLAGS);
                    let c = tx.b.ins().band_imm_u(f, 1);
                    tx.b.ins().icmp_imm_s(IntCC::NotEqual, c, 0)
                }
                _ => {
                    let c = tx.carry_of(&k);
                    tx.b.ins().icmp_imm_s(IntCC::NotEqual, c, 0)
                }
            }
        };
        let r = match cc >> 1 {
            0 => of(self),
            1 => cf(self),
            2 => zf(self),
            3 => {
                let (c, z) = (cf(self), zf(self));
                self.b.ins().bor(c, z)
            }
            4 => sf(self),
            5 => {
                let low = self.b.ins().band_imm_u(k.res, 0xff);
                let n = self.b.ins().popcnt(low);
                let odd = self.b.ins().band_imm_u(n, 1);
                self.b.ins().icmp_imm_s(IntCC::Equal, odd, 0)
            }
            6 => {
                let (s, o) = (sf(self), of(self));
                self.b.ins().bxor(s, o)
            }
            _ => {
                let (z, s, o) = (zf(self), sf(self), of(self));
                let lt = self.b.ins().bxor(s, o);
                self.b.ins().bor(z, lt)
            }
        };
        if cc & 1 != 0 {
            self.b.ins().bxor_imm_u(r, 1)
        } else {
            r
        }
    }
}
