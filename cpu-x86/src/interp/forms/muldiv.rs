//! Multiply and divide forms: IMUL of two and three operands into a GPR, and the
//! one-operand MUL, IMUL, DIV and IDIV on the accumulator pair, with a register or
//! memory source. The arithmetic is `ops::muldiv`'s, shared with the general path.

use super::{by_size, size0};
use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use crate::interp::flags::size_mask;
use crate::interp::op::{generic, Handler, Op, NO_REG};
use crate::interp::ops::muldiv::Widening;
use iced_x86::{Mnemonic as M, OpKind};

/// IMUL r, r/m: the source in `r1`, or memory when `r1` is `NO_REG`.
fn imul2<const MEM: bool, const S: u8>(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    let b = if MEM { ctx.read(op.mem.seg, ctx.ea_of(&op.mem), S)? } else { ctx.get_r::<S>(op.r1) };
    let low = ctx.imul_truncated(S, ctx.get_r::<S>(op.r0), b);
    ctx.put_r::<S>(op.r0, low);
    Ok(())
}

/// IMUL r, r/m, imm.
fn imul3<const MEM: bool, const S: u8>(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    let a = if MEM { ctx.read(op.mem.seg, ctx.ea_of(&op.mem), S)? } else { ctx.get_r::<S>(op.r1) };
    let low = ctx.imul_truncated(S, a, op.imm);
    ctx.put_r::<S>(op.r0, low);
    Ok(())
}

/// MUL, IMUL, DIV or IDIV (`KIND`, a [`Widening`] as u8) of the accumulator pair by a
/// register (`r0`) or memory source.
fn widening<const KIND: u8, const MEM: bool, const S: u8>(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    let src = if MEM { ctx.read(op.mem.seg, ctx.ea_of(&op.mem), S)? } else { ctx.get_r::<S>(op.r0) };
    let kind = match KIND {
        0 => Widening::Mul,
        1 => Widening::Imul,
        2 => Widening::Div,
        _ => Widening::Idiv,
    };
    ctx.widening(kind, S, src)
}

/// Handler for `KIND` with a register or memory source of `size` bytes.
fn select_widening<const KIND: u8>(mem: bool, size: u8) -> Handler {
    if mem {
        by_size!(size, widening, KIND, true)
    } else {
        by_size!(size, widening, KIND, false)
    }
}

/// MUL, IMUL and DIV, IDIV with GPR or memory operands.
pub(super) fn select_muldiv(op: &mut Op) -> Handler {
    let ins = &op.ins;
    let size = size0(op);
    let mem_at = |i: u32| ins.op_kind(i) == OpKind::Memory;
    let reg_at = |i: u32, code: u8| ins.op_kind(i) == OpKind::Register && code != NO_REG;
    match (ins.mnemonic(), ins.op_count()) {
        (M::Imul, 2) if reg_at(0, op.r0) && (mem_at(1) || reg_at(1, op.r1)) => {
            if mem_at(1) {
                by_size!(size, imul2, true)
            } else {
                by_size!(size, imul2, false)
            }
        }
        (M::Imul, 3) if reg_at(0, op.r0) && (mem_at(1) || reg_at(1, op.r1)) => {
            op.imm = ins.immediate(2) & size_mask(size);
            if mem_at(1) {
                by_size!(size, imul3, true)
            } else {
                by_size!(size, imul3, false)
            }
        }
        (m, 1) if mem_at(0) || reg_at(0, op.r0) => {
            let mem = mem_at(0);
            match m {
                M::Mul => select_widening::<0>(mem, size),
                M::Imul => select_widening::<1>(mem, size),
                M::Div => select_widening::<2>(mem, size),
                M::Idiv => select_widening::<3>(mem, size),
                _ => generic,
            }
        }
        _ => generic,
    }
}
