//! Near control transfers and the stack: Jcc, JMP rel, CALL rel, RET near, PUSH and
//! POP of a GPR or an immediate (SDM Vol. 2; far, indirect and segment-register forms
//! take the general path).

use super::by_size;
use crate::interp::cpu::Ctx;
use crate::interp::fault::{Fault, R};
use crate::interp::flags::size_mask;
use crate::interp::op::{generic, Handler, Op, NO_REG};
use crate::interp::ops::operand::is_immediate;
use crate::interp::state::{Mode, Seg};
use iced_x86::{Code, Mnemonic as M, OpKind};

/// Jcc rel: `op.imm` is the target.
fn jcc(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    if ctx.cond(op.cc) {
        ctx.near_jump(op.imm)?;
    }
    Ok(())
}

/// Jcc rel8/rel16/rel32.
pub(super) fn select_jcc(op: &mut Op) -> Handler {
    if !matches!(op.ins.op0_kind(), OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64) {
        return generic;
    }
    op.imm = op.ins.near_branch_target();
    jcc
}

fn jmp_rel(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    ctx.near_jump(op.imm)
}

/// CALL rel with a return address of `S` bytes.
fn call_rel<const S: u8>(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    let st = &ctx.c.st;
    if st.mode != Mode::Long64 && op.imm > st.seg[Seg::Cs as usize].limit as u64 {
        return Err(Fault::gp(0));
    }
    let ret = st.rip & size_mask(S);
    ctx.push(ret, S)?;
    ctx.near_jump(op.imm)
}

/// RET near (no immediate) popping `S` bytes.
fn ret_near<const S: u8>(ctx: &mut Ctx<'_>, _: &Op) -> R<()> {
    let t = ctx.pop(S)?;
    ctx.near_jump(t)
}

/// JMP rel, CALL rel, RET near without an immediate.
pub(super) fn select_near(op: &mut Op) -> Handler {
    let ins = &op.ins;
    op.imm = ins.near_branch_target();
    match ins.code() {
        Code::Jmp_rel8_16
        | Code::Jmp_rel8_32
        | Code::Jmp_rel8_64
        | Code::Jmp_rel16
        | Code::Jmp_rel32_32
        | Code::Jmp_rel32_64 => jmp_rel,
        Code::Call_rel16 => call_rel::<2>,
        Code::Call_rel32_32 => call_rel::<4>,
        Code::Call_rel32_64 => call_rel::<8>,
        Code::Retnw => ret_near::<2>,
        Code::Retnd => ret_near::<4>,
        Code::Retnq => ret_near::<8>,
        _ => generic,
    }
}

fn push_r<const S: u8>(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    let v = ctx.get_r::<S>(op.r0);
    ctx.push(v, S)
}

fn push_i<const S: u8>(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    ctx.push(op.imm, S)
}

fn pop_r<const S: u8>(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    let v = ctx.pop(S)?;
    ctx.put_r::<S>(op.r0, v);
    Ok(())
}

/// PUSH r/imm and POP r (GPRs only).
pub(super) fn select_push_pop(op: &mut Op) -> Handler {
    let ins = &op.ins;
    let size = ins.stack_pointer_increment().unsigned_abs() as u8;
    if !matches!(size, 2 | 4 | 8) || ins.op_count() != 1 {
        return generic;
    }
    let reg = ins.op0_kind() == OpKind::Register && op.r0 != NO_REG;
    match ins.mnemonic() {
        M::Push if reg => by_size!(size, push_r),
        M::Push if is_immediate(ins.op0_kind()) => {
            op.imm = ins.immediate(0) & size_mask(size);
            by_size!(size, push_i)
        }
        M::Pop if reg => by_size!(size, pop_r),
        _ => generic,
    }
}
