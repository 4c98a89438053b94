//! Data-movement forms: MOV between GPRs, memory and immediates; MOVZX, MOVSX and
//! MOVSXD; LEA; CMOVcc; SETcc; NOP (SDM Vol. 2 for each).

use super::{by_size, shape, size0, Shape};
use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use crate::interp::flags::size_mask;
use crate::interp::op::{generic, Handler, Op, NO_REG};
use iced_x86::{Mnemonic as M, OpKind};

fn mov_rr<const S: u8>(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    ctx.put_r::<S>(op.r0, ctx.get_r::<S>(op.r1));
    Ok(())
}

fn mov_ri<const S: u8>(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    ctx.put_r::<S>(op.r0, op.imm);
    Ok(())
}

fn mov_rm<const S: u8>(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    let v = ctx.read(op.mem.seg, ctx.ea_of(&op.mem), S)?;
    ctx.put_r::<S>(op.r0, v);
    Ok(())
}

fn mov_mr<const S: u8>(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    ctx.write(op.mem.seg, ctx.ea_of(&op.mem), S, ctx.get_r::<S>(op.r1))
}

fn mov_mi<const S: u8>(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    ctx.write(op.mem.seg, ctx.ea_of(&op.mem), S, op.imm)
}

/// MOV between GPRs, memory and immediates (segment, control and debug registers take
/// the general path).
pub(super) fn select_mov(op: &mut Op) -> Handler {
    let Some(shape) = shape(op) else { return generic };
    let size = size0(op);
    op.imm = op.ins.try_immediate(1).unwrap_or(0) & size_mask(size);
    match shape {
        Shape::RegReg => by_size!(size, mov_rr),
        Shape::RegImm => by_size!(size, mov_ri),
        Shape::RegMem => by_size!(size, mov_rm),
        Shape::MemReg => by_size!(size, mov_mr),
        Shape::MemImm => by_size!(size, mov_mi),
    }
}

/// Widens `v` of `SS` bytes to a `SD`-byte result, sign-extending when `SIGNED`.
#[inline(always)]
fn extend<const SIGNED: bool, const SS: u8, const SD: u8>(v: u64) -> u64 {
    let v = if SIGNED {
        let sh = 64 - SS as u32 * 8;
        (((v << sh) as i64) >> sh) as u64
    } else {
        v
    };
    v & size_mask(SD)
}

fn extend_rr<const SIGNED: bool, const SS: u8, const SD: u8>(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    let v = ctx.get_r::<SS>(op.r1);
    ctx.put_r::<SD>(op.r0, extend::<SIGNED, SS, SD>(v));
    Ok(())
}

fn extend_rm<const SIGNED: bool, const SS: u8, const SD: u8>(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    let v = ctx.read(op.mem.seg, ctx.ea_of(&op.mem), SS)?;
    ctx.put_r::<SD>(op.r0, extend::<SIGNED, SS, SD>(v));
    Ok(())
}

/// MOVZX, MOVSX, MOVSXD into a GPR.
pub(super) fn select_extend(op: &mut Op) -> Handler {
    let ins = &op.ins;
    if op.r0 == NO_REG {
        return generic;
    }
    let sd = ins.op0_register().size() as u8;
    let (reg, ss) = match ins.op1_kind() {
        OpKind::Register if op.r1 != NO_REG => (true, ins.op1_register().size() as u8),
        OpKind::Memory => (false, ins.memory_size().size() as u8),
        _ => return generic,
    };
    macro_rules! pick {
        ($signed:expr) => {
            match (reg, ss, sd) {
                (true, 1, 2) => extend_rr::<$signed, 1, 2> as Handler,
                (true, 1, 4) => extend_rr::<$signed, 1, 4>,
                (true, 1, 8) => extend_rr::<$signed, 1, 8>,
                (true, 2, 4) => extend_rr::<$signed, 2, 4>,
                (true, 2, 8) => extend_rr::<$signed, 2, 8>,
                (true, 4, 8) => extend_rr::<$signed, 4, 8>,
                (false, 1, 2) => extend_rm::<$signed, 1, 2>,
                (false, 1, 4) => extend_rm::<$signed, 1, 4>,
                (false, 1, 8) => extend_rm::<$signed, 1, 8>,
                (false, 2, 4) => extend_rm::<$signed, 2, 4>,
                (false, 2, 8) => extend_rm::<$signed, 2, 8>,
                (false, 4, 8) => extend_rm::<$signed, 4, 8>,
                _ => generic,
            }
        };
    }
    if ins.mnemonic() == M::Movzx {
        pick!(false)
    } else {
        pick!(true)
    }
}

fn lea<const S: u8>(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    ctx.put_r::<S>(op.r0, ctx.ea_of(&op.mem) & size_mask(S));
    Ok(())
}

/// LEA into a 16/32/64-bit GPR.
pub(super) fn select_lea(op: &mut Op) -> Handler {
    if op.r0 == NO_REG || op.ins.op1_kind() != OpKind::Memory {
        return generic;
    }
    match op.ins.op0_register().size() {
        2 => lea::<2>,
        4 => lea::<4>,
        8 => lea::<8>,
        _ => generic,
    }
}

/// CMOVcc: the source is read (and may fault) whatever the condition; a 32-bit
/// destination is zero-extended even when nothing moves.
#[inline(always)]
fn cmov<const S: u8>(ctx: &mut Ctx<'_>, op: &Op, v: u64) {
    if ctx.cond(op.cc) {
        ctx.put_r::<S>(op.r0, v);
    } else if S == 4 {
        ctx.put_r::<S>(op.r0, ctx.get_r::<S>(op.r0));
    }
}

fn cmov_rr<const S: u8>(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    cmov::<S>(ctx, op, ctx.get_r::<S>(op.r1));
    Ok(())
}

fn cmov_rm<const S: u8>(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    let v = ctx.read(op.mem.seg, ctx.ea_of(&op.mem), S)?;
    cmov::<S>(ctx, op, v);
    Ok(())
}

/// CMOVcc r, r/m.
pub(super) fn select_cmov(op: &mut Op) -> Handler {
    match shape(op) {
        Some(Shape::RegReg) => by_size!(size0(op), cmov_rr),
        Some(Shape::RegMem) => by_size!(size0(op), cmov_rm),
        _ => generic,
    }
}

fn setcc_r(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    ctx.put_r::<1>(op.r0, ctx.cond(op.cc) as u64);
    Ok(())
}

fn setcc_m(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    ctx.write(op.mem.seg, ctx.ea_of(&op.mem), 1, ctx.cond(op.cc) as u64)
}

/// SETcc r/m8.
pub(super) fn select_setcc(op: &mut Op) -> Handler {
    match op.ins.op0_kind() {
        OpKind::Register if op.r0 != NO_REG => setcc_r,
        OpKind::Memory => setcc_m,
        _ => generic,
    }
}

/// NOP (including the multi-byte forms with a memory operand, which access nothing).
pub(super) fn nop(_: &mut Ctx<'_>, _: &Op) -> R<()> {
    Ok(())
}
