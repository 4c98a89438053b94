//! The interface of a compiled tier (the `jit` crate implements it; this crate never
//! depends on it).
//!
//! The interpreter decodes each basic block once into handlers (`interp::op`). When a
//! block gets hot, the interpreter describes it to the tier as a [`UnitPlan`]: per
//! instruction, either a [`Lowering`] the tier may translate inline, or
//! [`Lowering::Helper`], for which the compiled code calls [`UnitAbi::exec_op`] with the
//! instruction's decoded form, so every instruction keeps the one definition of its
//! semantics the interpreter has. The compiled [`UnitFn`] hangs off the decoded block,
//! so dropping the block (a write to its code, a cache flush) drops the code too.
//!
//! A unit behaves exactly as the interpreter's lean loop over the same block: the same
//! instructions retire, in the same order, with the same effects, and it stops where
//! the loop stops (an instruction that asks for the board, a taken branch out). A unit
//! whose last instruction branches back to its start may run its body again without
//! returning, while the budget allows another whole pass and nothing asked to stop:
//! exactly as the interpreter chains a block to itself.

use crate::interp::state::CpuState;
use std::cell::Cell;
use std::ffi::c_void;
use std::mem::offset_of;

/// A general-purpose register operand: 0-15 (byte forms mean AL..R15B, never AH..BH).
pub type Gpr = u8;

/// The binary operations a tier may translate inline (ADC, SBB and shifts go through
/// their handlers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AluOp {
    /// ADD.
    Add,
    /// OR.
    Or,
    /// AND.
    And,
    /// SUB.
    Sub,
    /// XOR.
    Xor,
    /// CMP (SUB without the write).
    Cmp,
    /// TEST (AND without the write).
    Test,
}

/// The shifts a tier may translate inline (by an immediate count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShiftOp {
    /// SHL/SAL.
    Shl,
    /// SHR.
    Shr,
    /// SAR.
    Sar,
}

/// The second operand of an inline ALU operation or MOV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Src {
    /// A register of the operation's size.
    Reg(Gpr),
    /// An immediate, already masked to the operation's size.
    Imm(u64),
}

/// The address of a LEA: `(disp + base + (index << scale)) & amask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    /// Displacement.
    pub disp: u64,
    /// Base register.
    pub base: Option<Gpr>,
    /// Index register.
    pub index: Option<Gpr>,
    /// log2 of the scale.
    pub scale: u8,
    /// Address-size mask.
    pub amask: u64,
}

/// How one instruction of a unit may be compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lowering {
    /// Call [`UnitAbi::exec_op`] with the instruction's decoded form.
    Helper,
    /// `dst = src` on `size` bytes (1, 2, 4 or 8; 4 clears bits 63:32, 1 and 2 merge).
    Mov {
        /// Destination.
        dst: Gpr,
        /// Source.
        src: Src,
        /// Operand size in bytes.
        size: u8,
    },
    /// `dst = dst OP src` on `size` bytes, setting the lazy flags as the interpreter does.
    Alu {
        /// Operation.
        op: AluOp,
        /// Destination (and first source).
        dst: Gpr,
        /// Second source.
        src: Src,
        /// Operand size in bytes.
        size: u8,
    },
    /// A shift of a register by a nonzero count (already masked to 5 or 6 bits), setting
    /// the lazy flags as the interpreter does.
    Shift {
        /// Operation.
        op: ShiftOp,
        /// The register.
        dst: Gpr,
        /// The count, 1 to 63.
        count: u8,
        /// Operand size in bytes.
        size: u8,
    },
    /// INC (`inc`) or DEC of a register; CF is kept.
    IncDec {
        /// INC rather than DEC.
        inc: bool,
        /// The register.
        dst: Gpr,
        /// Operand size in bytes.
        size: u8,
    },
    /// `dst = address` truncated to `size` bytes.
    Lea {
        /// Destination.
        dst: Gpr,
        /// The address computed.
        addr: Address,
        /// Operand size in bytes (2, 4 or 8).
        size: u8,
    },
    /// Jcc to `target` on condition `cc` (the low nibble of the opcode); the unit's last
    /// instruction.
    Jcc {
        /// Condition code.
        cc: u8,
        /// Branch target (an offset in CS).
        target: u64,
    },
    /// `dst = [addr]` of `size` bytes, zero- or sign-extended to `dst_size` bytes (MOV,
    /// MOVZX, MOVSX, MOVSXD).
    Load {
        /// Destination.
        dst: Gpr,
        /// The offset.
        addr: Address,
        /// The segment (ES, CS, SS, DS, FS, GS as 0-5).
        seg: u8,
        /// Bytes read.
        size: u8,
        /// Bytes written to `dst`.
        dst_size: u8,
        /// Sign-extend rather than zero-extend.
        signed: bool,
    },
    /// `[addr] = src` of `size` bytes (MOV).
    Store {
        /// The value.
        src: Src,
        /// The offset.
        addr: Address,
        /// The segment (0-5).
        seg: u8,
        /// Bytes written.
        size: u8,
    },
    /// PUSH of a register or an immediate, `size` bytes, in 64-bit code or in 32-bit code
    /// on a 32-bit stack (SS.B set; checked at run time).
    Push {
        /// The value.
        src: Src,
        /// Bytes pushed.
        size: u8,
    },
    /// POP into a register, `size` bytes (same conditions as [`Lowering::Push`]).
    Pop {
        /// The register.
        dst: Gpr,
        /// Bytes popped.
        size: u8,
    },
    /// MOVZX, MOVSX or MOVSXD of a register: `dst = extend(src)` from `from` to
    /// `size` bytes.
    Extend {
        /// Destination.
        dst: Gpr,
        /// Source register, read as `from` bytes.
        src: Gpr,
        /// Source size in bytes (1, 2 or 4).
        from: u8,
        /// Destination size in bytes.
        size: u8,
        /// Sign- rather than zero-extend.
        signed: bool,
    },
    /// CMOVcc between registers: `dst = cc ? src : dst` with `dst`'s write rules (a
    /// 32-bit destination is zero-extended either way).
    Cmov {
        /// Condition code.
        cc: u8,
        /// Destination.
        dst: Gpr,
        /// Source.
        src: Gpr,
        /// Operand size in bytes (2, 4 or 8).
        size: u8,
    },
    /// SETcc of a byte register.
    Setcc {
        /// Condition code.
        cc: u8,
        /// The register (its low byte).
        dst: Gpr,
    },
    /// `dst = dst OP [seg:addr]` (CMP: the flags only), `size` bytes, through the same
    /// TLB path as [`Lowering::Load`]; the flags as [`Lowering::Alu`] sets them.
    AluLoad {
        /// Operation (ADD, OR, AND, SUB, XOR or CMP).
        op: AluOp,
        /// Destination (and first source).
        dst: Gpr,
        /// Offset of the memory operand.
        addr: Address,
        /// Segment register number.
        seg: u8,
        /// Operand size in bytes.
        size: u8,
    },
    /// CMP or TEST of memory with a register or immediate: the flags of
    /// `[seg:addr] OP src`, `size` bytes, through the same TLB path as [`Lowering::Load`].
    CmpMem {
        /// CMP or TEST.
        op: AluOp,
        /// Offset of the memory operand.
        addr: Address,
        /// Segment register number.
        seg: u8,
        /// Second source.
        src: Src,
        /// Operand size in bytes.
        size: u8,
    },
    /// CALL rel in 64-bit mode: push the return address (the next instruction's) on the
    /// stack as [`Lowering::Push`] does, then go to `target`; the unit's last instruction.
    Call {
        /// Branch target (canonical).
        target: u64,
    },
    /// RET without an immediate in 64-bit mode: pop the target as [`Lowering::Pop`] does
    /// and go there (through the jump cache); a non-canonical target takes the handler,
    /// which raises #GP. The unit's last instruction.
    Ret,
    /// JMP to `target`; the unit's last instruction.
    Jmp {
        /// Branch target (an offset in CS).
        target: u64,
    },
}

impl Lowering {
    /// The lowering accesses guest memory inline, through the TLB.
    pub fn accesses_memory(&self) -> bool {
        matches!(
            self,
            Lowering::Load { .. }
                | Lowering::Store { .. }
                | Lowering::Push { .. }
                | Lowering::Pop { .. }
                | Lowering::AluLoad { .. }
                | Lowering::CmpMem { .. }
                | Lowering::Call { .. }
                | Lowering::Ret
        )
    }
}

/// Where a unit may go straight on to the compiled code of its successor, without
/// returning to the interpreter's loop. The interpreter fills it in when it sees the
/// transition (the same one its links remember); compiled code follows it only while it
/// is still valid: going to the same RIP with the same CS base and CPL (so the same block
/// as the interpreter would find), the TLB and the chain epoch (bumped whenever a block is
/// dropped or code memory reused) unchanged, and the budget covering the whole successor.
/// Slots of the jump cache: the [`ChainSlot`]s, indexed by a hash of the target RIP, that
/// let a unit whose successor is known only at run time (a RET, an indirect or relative
/// CALL or JMP run by its handler, a direct exit whose own slot does not hold) go on to
/// compiled code without returning to the interpreter's loop.
pub const JUMP_CACHE_SLOTS: usize = 1024;

/// The right shift folded into a RIP's jump-cache index.
pub const JUMP_CACHE_FOLD: u32 = 10;

/// The jump-cache slot of `rip`: `(rip ^ (rip >> JUMP_CACHE_FOLD)) % JUMP_CACHE_SLOTS`
/// (compiled code computes the same).
#[inline]
pub fn jump_cache_index(rip: u64) -> usize {
    (rip ^ (rip >> JUMP_CACHE_FOLD)) as usize & (JUMP_CACHE_SLOTS - 1)
}

/// What [`UnitAbi::exec_op`] says of the instruction it ran.
pub mod helper_result {
    /// Go on with the next instruction of the unit.
    pub const GO_ON: u32 = 0;
    /// Return to the interpreter's loop (a fault was delivered, the board was asked for).
    pub const STOP: u32 = 1;
    /// Control left the straight line (a branch was taken): the unit may go on to the
    /// compiled code at the new RIP through the jump cache.
    pub const BRANCHED: u32 = 2;
}

#[repr(C)]
#[derive(Debug, Default)]
pub struct ChainSlot {
    /// The successor's entry (0: none).
    pub entry: Cell<usize>,
    /// Instructions in the successor.
    pub len: Cell<u64>,
    /// The chain epoch when it was filled in.
    pub epoch: Cell<u64>,
    /// The TLB generation when it was filled in.
    pub tlb_generation: Cell<u64>,
    /// The successor's RIP.
    pub rip: Cell<u64>,
    /// CS.base when it was filled in.
    pub cs_base: Cell<u64>,
    /// The CPL when it was filled in.
    pub cpl: Cell<u64>,
}

/// One instruction of a unit.
#[derive(Debug, Clone, Copy)]
pub struct PlanInsn {
    /// How to compile it.
    pub lowering: Lowering,
    /// Its decoded form, passed to [`UnitAbi::exec_op`] (valid while the block lives).
    pub op: *const c_void,
    /// RIP of the instruction.
    pub ip: u64,
    /// RIP of the next instruction.
    pub next_ip: u64,
}

/// What a unit must check before a branch to a target (never in 64-bit mode, where
/// targets are checked for canonical form at translation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetCheck {
    /// 64-bit mode: the target was checked when the plan was made.
    None,
    /// Compare the target with CS.limit (at [`UnitAbi::cs_limit`]).
    CsLimit,
}

/// A unit to compile: one decoded block.
#[derive(Debug, Clone)]
pub struct UnitPlan {
    /// The instructions, in order.
    pub insns: Vec<PlanInsn>,
    /// The last instruction may branch back to the first.
    pub loops: bool,
    /// How branch targets are checked.
    pub target_check: TargetCheck,
    /// The block is 64-bit code (segments other than FS and GS have base 0 and no
    /// limit).
    pub long_mode: bool,
    /// The pointers and offsets the code uses.
    pub abi: UnitAbi,
    /// The block's chain slots: `[fall-through, other]` successor (`None`: the unit
    /// always returns to the interpreter's loop).
    pub chain: Option<[*const ChainSlot; 2]>,
    /// The unit may go on through the jump cache ([`UnitFrame::jump_cache`]) where its
    /// successor is known only at run time.
    pub jump_cache: bool,
}

/// The run-time data a unit is called with.
#[repr(C)]
#[derive(Debug)]
pub struct UnitFrame {
    /// The interpreter context, for helpers.
    pub ctx: *mut c_void,
    /// The architectural state.
    pub st: *mut CpuState,
    /// The retired-instruction counter.
    pub retired: *mut u64,
    /// A loop pass may start only while `retired + insns <= retired_end`.
    pub retired_end: u64,
    /// Nonzero when an instruction asked the run loop to look at the board.
    pub brk: *const u8,
    /// Nonzero when the interrupt lines must be checked.
    pub irq_check: *const u8,
    /// Nonzero once the block was dropped (its code was written).
    pub dead: *const u8,
    /// The TLB's generation counter ...
    pub tlb_generation: *const u64,
    /// ... and its value when the unit was entered: a loop pass may start only while
    /// they are equal.
    pub entry_generation: u64,
    /// The TLB's entries ([`offsets::TLB_ENTRY_SIZE`] bytes each, [`offsets::TLB_ENTRIES`]
    /// of them, indexed by linear page number).
    pub tlb_entries: *const u8,
    /// The TLB's code epoch: a direct write needs the entry's epoch equal to it.
    pub code_epoch: *const u64,
    /// The chain epoch: a [`ChainSlot`] is valid while its epoch equals it.
    pub chain_epoch: *const u64,
    /// Units entered through chain slots (counted by compiled code).
    pub chained: u64,
    /// The jump cache: [`JUMP_CACHE_SLOTS`] slots, indexed by [`jump_cache_index`].
    pub jump_cache: *const ChainSlot,
    /// Units entered through the jump cache (counted by compiled code; part of `chained`).
    pub jumped: u64,
}

/// Offsets into [`CpuState`] and helper entry points a compiled unit uses.
#[derive(Debug, Clone, Copy)]
pub struct UnitAbi {
    /// Executes one instruction through its interpreter handler, exactly as the lean
    /// loop does (RIP set, handler run, retired counted, a fault delivered); returns one
    /// of [`helper_result`].
    pub exec_op: unsafe extern "C" fn(ctx: *mut c_void, op: *const c_void) -> u32,
    /// Evaluates condition `cc` on the lazy flags and RFLAGS of the state.
    pub condition: unsafe extern "C" fn(st: *const CpuState, cc: u32) -> u32,
    /// Folds the pending carry into RFLAGS.CF (before INC/DEC replaces the lazy flags).
    pub fold_carry: unsafe extern "C" fn(st: *mut CpuState),
}

/// The offsets of the [`CpuState`] fields a compiled unit reads and writes.
pub mod offsets {
    use super::*;
    use crate::interp::flags::LazyFlags;
    use crate::interp::mmu::TlbEntry;
    use crate::interp::state::Segment;

    /// `gpr[0]`.
    pub const GPR: i32 = offset_of!(CpuState, gpr) as i32;
    /// `rip`.
    pub const RIP: i32 = offset_of!(CpuState, rip) as i32;
    /// `rflags`.
    pub const RFLAGS: i32 = offset_of!(CpuState, rflags) as i32;
    /// `lazy.dst`.
    pub const LAZY_DST: i32 = (offset_of!(CpuState, lazy) + offset_of!(LazyFlags, dst)) as i32;
    /// `lazy.src`.
    pub const LAZY_SRC: i32 = (offset_of!(CpuState, lazy) + offset_of!(LazyFlags, src)) as i32;
    /// `lazy.res`.
    pub const LAZY_RES: i32 = (offset_of!(CpuState, lazy) + offset_of!(LazyFlags, res)) as i32;
    /// `lazy.op` (one byte, [`crate::interp::flags::FlagOp`]).
    pub const LAZY_OP: i32 = (offset_of!(CpuState, lazy) + offset_of!(LazyFlags, op)) as i32;
    /// `lazy.size` (one byte).
    pub const LAZY_SIZE: i32 = (offset_of!(CpuState, lazy) + offset_of!(LazyFlags, size)) as i32;
    /// `seg[CS].limit` (four bytes).
    pub const CS_LIMIT: i32 =
        (offset_of!(CpuState, seg) + std::mem::size_of::<Segment>() + offset_of!(Segment, limit)) as i32;

    /// `seg[n].base` (eight bytes).
    pub const fn seg_base(n: u8) -> i32 {
        (offset_of!(CpuState, seg) + n as usize * std::mem::size_of::<Segment>() + offset_of!(Segment, base)) as i32
    }
    /// `seg[n].limit` (four bytes).
    pub const fn seg_limit(n: u8) -> i32 {
        (offset_of!(CpuState, seg) + n as usize * std::mem::size_of::<Segment>() + offset_of!(Segment, limit)) as i32
    }
    /// `seg[n].attrs` (two bytes).
    pub const fn seg_attrs(n: u8) -> i32 {
        (offset_of!(CpuState, seg) + n as usize * std::mem::size_of::<Segment>() + offset_of!(Segment, attrs)) as i32
    }
    /// `cpl` (one byte).
    pub const CPL: i32 = offset_of!(CpuState, cpl) as i32;

    /// Entries in the TLB (a power of two).
    pub const TLB_ENTRIES: usize = crate::interp::mmu::TLB_SIZE;
    /// Bytes per TLB entry.
    pub const TLB_ENTRY_SIZE: usize = std::mem::size_of::<TlbEntry>();
    /// `TlbEntry::tag`: linear page number + 1 (eight bytes).
    pub const TLB_TAG: i32 = offset_of!(TlbEntry, tag) as i32;
    /// `TlbEntry::host`: host address of the page for reads, or 0.
    pub const TLB_HOST: i32 = offset_of!(TlbEntry, host) as i32;
    /// `TlbEntry::write_host`: host address of the page for direct writes, or 0.
    pub const TLB_WRITE_HOST: i32 = offset_of!(TlbEntry, write_host) as i32;
    /// `TlbEntry::epoch` (eight bytes).
    pub const TLB_EPOCH: i32 = offset_of!(TlbEntry, epoch) as i32;
    /// `TlbEntry::perm` (one byte).
    pub const TLB_PERM: i32 = offset_of!(TlbEntry, perm) as i32;
    /// Permission bit: user access allowed.
    pub const PERM_USER: u8 = crate::interp::mmu::perm::USER;
    /// Permission bits a write needs (writable, dirty).
    pub const PERM_WRITE: u8 = crate::interp::mmu::perm::WRITE | crate::interp::mmu::perm::DIRTY;

    /// `UnitFrame::ctx`.
    pub const FRAME_CTX: i32 = offset_of!(UnitFrame, ctx) as i32;
    /// `UnitFrame::st`.
    pub const FRAME_ST: i32 = offset_of!(UnitFrame, st) as i32;
    /// `UnitFrame::retired`.
    pub const FRAME_RETIRED: i32 = offset_of!(UnitFrame, retired) as i32;
    /// `UnitFrame::retired_end`.
    pub const FRAME_RETIRED_END: i32 = offset_of!(UnitFrame, retired_end) as i32;
    /// `UnitFrame::brk`.
    pub const FRAME_BRK: i32 = offset_of!(UnitFrame, brk) as i32;
    /// `UnitFrame::irq_check`.
    pub const FRAME_IRQ_CHECK: i32 = offset_of!(UnitFrame, irq_check) as i32;
    /// `UnitFrame::dead`.
    pub const FRAME_DEAD: i32 = offset_of!(UnitFrame, dead) as i32;
    /// `UnitFrame::tlb_generation`.
    pub const FRAME_TLB_GENERATION: i32 = offset_of!(UnitFrame, tlb_generation) as i32;
    /// `UnitFrame::entry_generation`.
    pub const FRAME_ENTRY_GENERATION: i32 = offset_of!(UnitFrame, entry_generation) as i32;
    /// `UnitFrame::tlb_entries`.
    pub const FRAME_TLB_ENTRIES: i32 = offset_of!(UnitFrame, tlb_entries) as i32;
    /// `UnitFrame::code_epoch`.
    pub const FRAME_CODE_EPOCH: i32 = offset_of!(UnitFrame, code_epoch) as i32;
    /// `UnitFrame::chain_epoch`.
    pub const FRAME_CHAIN_EPOCH: i32 = offset_of!(UnitFrame, chain_epoch) as i32;
    /// `UnitFrame::chained`.
    pub const FRAME_CHAINED: i32 = offset_of!(UnitFrame, chained) as i32;
    /// `UnitFrame::jump_cache`.
    pub const FRAME_JUMP_CACHE: i32 = offset_of!(UnitFrame, jump_cache) as i32;
    /// `UnitFrame::jumped`.
    pub const FRAME_JUMPED: i32 = offset_of!(UnitFrame, jumped) as i32;
    /// Bytes per [`ChainSlot`] (the jump cache's stride).
    pub const SLOT_SIZE: usize = std::mem::size_of::<ChainSlot>();
    /// `ChainSlot::entry`.
    pub const SLOT_ENTRY: i32 = offset_of!(ChainSlot, entry) as i32;
    /// `ChainSlot::len`.
    pub const SLOT_LEN: i32 = offset_of!(ChainSlot, len) as i32;
    /// `ChainSlot::epoch`.
    pub const SLOT_EPOCH: i32 = offset_of!(ChainSlot, epoch) as i32;
    /// `ChainSlot::tlb_generation`.
    pub const SLOT_TLB_GENERATION: i32 = offset_of!(ChainSlot, tlb_generation) as i32;
    /// `ChainSlot::rip`.
    pub const SLOT_RIP: i32 = offset_of!(ChainSlot, rip) as i32;
    /// `ChainSlot::cs_base`.
    pub const SLOT_CS_BASE: i32 = offset_of!(ChainSlot, cs_base) as i32;
    /// `ChainSlot::cpl`.
    pub const SLOT_CPL: i32 = offset_of!(ChainSlot, cpl) as i32;
}

/// A compiled unit's entry, called through [`UnitCode::enter`].
pub type UnitEntry = *const u8;

/// The tier's way into compiled code: `enter(frame, entry)` runs the unit at `entry`
/// (units use the tier's own calling convention, which lets them chain by tail calls).
pub type EnterFn = unsafe extern "C" fn(frame: *mut UnitFrame, entry: UnitEntry);

/// Compiled code for a block, valid while the tier's code generation is `generation`.
#[derive(Debug, Clone, Copy)]
pub struct UnitCode {
    /// The unit's entry.
    pub entry: UnitEntry,
    /// How to call it.
    pub enter: EnterFn,
    /// The tier's code generation when it was compiled (see [`CodeTier::generation`]).
    pub generation: u64,
}

/// What a tier reports for `--stats`.
#[derive(Debug, Clone, Default)]
pub struct TierStats {
    /// Units compiled.
    pub units: u64,
    /// Host time spent compiling, in nanoseconds.
    pub compile_ns: u64,
    /// Bytes of code memory in use.
    pub code_bytes: u64,
    /// Bytes of code memory reserved.
    pub code_capacity: u64,
    /// Times the code memory was emptied to make room.
    pub flushes: u64,
    /// Units that could not be compiled.
    pub failures: u64,
}

/// A compiled tier.
pub trait CodeTier {
    /// Compiles `plan`; `None` when the tier declines (the block stays interpreted).
    fn compile(&mut self, plan: &UnitPlan) -> Option<UnitCode>;

    /// The current code generation: code of an older generation may no longer be run
    /// (its memory was reused).
    fn generation(&self) -> u64;

    /// Counters for `--stats`.
    fn stats(&self) -> TierStats;
}
