//! ALU forms: ADD OR ADC SBB AND SUB XOR CMP TEST with register, memory and immediate
//! operands; INC and DEC; SHL SHR SAR of a register by an immediate. Flags stay lazy
//! (the operands and result are recorded; SDM Vol. 1 App. A for what each sets).

use super::{by_size, shape, size0, Shape};
use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use crate::interp::flags::{size_mask, FlagOp, LazyFlags};
use crate::interp::op::{generic, Handler, Op};
use iced_x86::{Mnemonic as M, OpKind};

/// Operation numbers of the binary group (the const parameter of the handlers).
const ADD: u8 = 0;
const OR: u8 = 1;
const ADC: u8 = 2;
const SBB: u8 = 3;
const AND: u8 = 4;
const SUB: u8 = 5;
const XOR: u8 = 6;
const CMP: u8 = 7;
const TEST: u8 = 8;

/// True when the operation writes its destination (not CMP or TEST).
const fn writes(op: u8) -> bool {
    op != CMP && op != TEST
}

/// `d OP s` on `S` bytes; records the flags and returns the result.
#[inline(always)]
fn binary<const OP: u8, const S: u8>(ctx: &mut Ctx<'_>, d: u64, s: u64) -> u64 {
    let (fop, r) = match OP {
        ADD => (FlagOp::Add, d.wrapping_add(s)),
        ADC if ctx.carry() => (FlagOp::Adc1, d.wrapping_add(s).wrapping_add(1)),
        ADC => (FlagOp::Add, d.wrapping_add(s)),
        SUB | CMP => (FlagOp::Sub, d.wrapping_sub(s)),
        SBB if ctx.carry() => (FlagOp::Sbb1, d.wrapping_sub(s).wrapping_sub(1)),
        SBB => (FlagOp::Sub, d.wrapping_sub(s)),
        AND | TEST => (FlagOp::Logic, d & s),
        OR => (FlagOp::Logic, d | s),
        _ => (FlagOp::Logic, d ^ s),
    };
    let r = r & size_mask(S);
    ctx.c.st.lazy = LazyFlags { dst: d, src: s, res: r, op: fop, size: S };
    r
}

fn bin_rr<const OP: u8, const S: u8>(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    let r = binary::<OP, S>(ctx, ctx.get_r::<S>(op.r0), ctx.get_r::<S>(op.r1));
    if writes(OP) {
        ctx.put_r::<S>(op.r0, r);
    }
    Ok(())
}

fn bin_ri<const OP: u8, const S: u8>(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    let r = binary::<OP, S>(ctx, ctx.get_r::<S>(op.r0), op.imm);
    if writes(OP) {
        ctx.put_r::<S>(op.r0, r);
    }
    Ok(())
}

fn bin_rm<const OP: u8, const S: u8>(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    let s = ctx.read(op.mem.seg, ctx.ea_of(&op.mem), S)?;
    let r = binary::<OP, S>(ctx, ctx.get_r::<S>(op.r0), s);
    if writes(OP) {
        ctx.put_r::<S>(op.r0, r);
    }
    Ok(())
}

/// Memory destination with source `s`: one translation for the read and the write.
#[inline(always)]
fn bin_m<const OP: u8, const S: u8>(ctx: &mut Ctx<'_>, op: &Op, s: u64) -> R<()> {
    let off = ctx.ea_of(&op.mem);
    if writes(OP) {
        ctx.read_modify_write(op.mem.seg, off, S, |ctx, d| binary::<OP, S>(ctx, d, s))
    } else {
        let d = ctx.read(op.mem.seg, off, S)?;
        binary::<OP, S>(ctx, d, s);
        Ok(())
    }
}

fn bin_mr<const OP: u8, const S: u8>(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    bin_m::<OP, S>(ctx, op, ctx.get_r::<S>(op.r1))
}

fn bin_mi<const OP: u8, const S: u8>(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    bin_m::<OP, S>(ctx, op, op.imm)
}

/// The handler of a binary ALU instruction for `shape` and `size`.
fn binary_handler(m: M, shape: Shape, size: u8) -> Handler {
    macro_rules! forms {
        ($code:expr) => {
            match shape {
                Shape::RegReg => by_size!(size, bin_rr, $code),
                Shape::RegImm => by_size!(size, bin_ri, $code),
                Shape::RegMem => by_size!(size, bin_rm, $code),
                Shape::MemReg => by_size!(size, bin_mr, $code),
                Shape::MemImm => by_size!(size, bin_mi, $code),
            }
        };
    }
    match m {
        M::Add => forms!(ADD),
        M::Or => forms!(OR),
        M::Adc => forms!(ADC),
        M::Sbb => forms!(SBB),
        M::And => forms!(AND),
        M::Sub => forms!(SUB),
        M::Xor => forms!(XOR),
        M::Cmp => forms!(CMP),
        _ => forms!(TEST),
    }
}

/// ADD OR ADC SBB AND SUB XOR CMP TEST.
pub(super) fn select_binary(op: &mut Op) -> Handler {
    let Some(shape) = shape(op) else { return generic };
    let size = size0(op);
    op.imm = op.ins.try_immediate(1).unwrap_or(0) & size_mask(size);
    binary_handler(op.ins.mnemonic(), shape, size)
}

/// Operation numbers of INC and DEC.
const INC: u8 = 0;
const DEC: u8 = 1;

/// `d ± 1` on `S` bytes with INC/DEC flags (CF kept).
#[inline(always)]
fn inc_dec<const OP: u8, const S: u8>(ctx: &mut Ctx<'_>, d: u64) -> u64 {
    let (fop, r) = if OP == INC { (FlagOp::Inc, d.wrapping_add(1)) } else { (FlagOp::Dec, d.wrapping_sub(1)) };
    let r = r & size_mask(S);
    ctx.set_lazy(fop, S, d, 1, r);
    r
}

fn inc_dec_r<const OP: u8, const S: u8>(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    let r = inc_dec::<OP, S>(ctx, ctx.get_r::<S>(op.r0));
    ctx.put_r::<S>(op.r0, r);
    Ok(())
}

fn inc_dec_m<const OP: u8, const S: u8>(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    let off = ctx.ea_of(&op.mem);
    ctx.read_modify_write(op.mem.seg, off, S, |ctx, d| inc_dec::<OP, S>(ctx, d))
}

/// INC, DEC of a register or memory.
pub(super) fn select_inc_dec(op: &mut Op) -> Handler {
    let size = size0(op);
    let reg = op.ins.op0_kind() == OpKind::Register;
    match (op.ins.mnemonic(), reg) {
        (M::Inc, true) => by_size!(size, inc_dec_r, INC),
        (M::Inc, false) => by_size!(size, inc_dec_m, INC),
        (_, true) => by_size!(size, inc_dec_r, DEC),
        (_, false) => by_size!(size, inc_dec_m, DEC),
    }
}

/// SHL/SAL, SHR, SAR of a register by a nonzero immediate count (`op.imm`, already
/// masked to 5 or 6 bits).
fn shift_ri<const OP: u8, const S: u8>(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    let d = ctx.get_r::<S>(op.r0);
    let c = op.imm as u32;
    let bits = S as u32 * 8;
    let (fop, r) = match OP {
        SHL => (FlagOp::Shl, ((d as u128) << c) as u64),
        SHR => (FlagOp::Shr, if c >= 64 { 0 } else { d >> c }),
        _ => {
            let sd = ((d << (64 - bits)) as i64) >> (64 - bits);
            (FlagOp::Sar, (sd >> c.min(63)) as u64)
        }
    };
    let r = r & size_mask(S);
    ctx.put_r::<S>(op.r0, r);
    ctx.c.st.lazy = LazyFlags { dst: d, src: c as u64, res: r, op: fop, size: S };
    Ok(())
}

/// Operation numbers of the shifts.
const SHL: u8 = 0;
const SHR: u8 = 1;
const SAR: u8 = 2;

/// Shifts of a register by an immediate (or the implicit 1); a masked count of zero,
/// memory destinations and CL counts take the general path.
pub(super) fn select_shift(op: &mut Op) -> Handler {
    let ins = &op.ins;
    if ins.op0_kind() != OpKind::Register || op.r0 == crate::interp::op::NO_REG {
        return generic;
    }
    let size = size0(op);
    let count = match ins.op_count() {
        1 => 1,
        _ if ins.op1_kind() == OpKind::Immediate8 => ins.immediate8() as u64,
        _ => return generic,
    };
    let count = count & if size == 8 { 0x3f } else { 0x1f };
    if count == 0 {
        return generic;
    }
    op.imm = count;
    match ins.mnemonic() {
        M::Shl | M::Sal => by_size!(size, shift_ri, SHL),
        M::Shr => by_size!(size, shift_ri, SHR),
        _ => by_size!(size, shift_ri, SAR),
    }
}
