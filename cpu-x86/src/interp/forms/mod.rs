//! Specialised handlers for the common instruction forms, chosen once at decode time
//! (`Op::new` calls [`select`]). Each handler is monomorphised for its operation and
//! operand size, reads pre-extracted operands from the [`Op`], and has the same
//! semantics as the general path in `ops/` (the differential and conformance suites run
//! both). Everything not listed here runs `op::generic`.
//!
//! - `alu`: ADD OR ADC SBB AND SUB XOR CMP TEST, INC DEC, shifts by an immediate.
//! - `mov`: MOV, MOVZX MOVSX MOVSXD, LEA, CMOVcc, SETcc, NOP.
//! - `branch`: Jcc, JMP/CALL rel, RET near, PUSH/POP of registers and immediates.
//! - `muldiv`: IMUL of two and three operands, MUL IMUL DIV IDIV.

mod alu;
mod branch;
mod mov;
mod muldiv;

use super::cpu::Ctx;
use super::op::{generic, Handler, MemOperand, Op, NO_REG};
use super::ops::operand::is_immediate as imm;
use super::ops::{is_cmov, is_jcc, is_setcc};
use iced_x86::{EncodingKind, Mnemonic as M, OpKind};

/// Operand shape of a two-operand form.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// register, register
    RegReg,
    /// register, immediate
    RegImm,
    /// register, memory
    RegMem,
    /// memory, register
    MemReg,
    /// memory, immediate
    MemImm,
}

/// The shape of operands 0 and 1 of `op`, when both are GPRs, memory or immediates.
fn shape(op: &Op) -> Option<Shape> {
    let ins = &op.ins;
    if ins.op_count() != 2 {
        return None;
    }
    let (k0, k1) = (ins.op0_kind(), ins.op1_kind());
    let reg0 = k0 == OpKind::Register && op.r0 != NO_REG;
    let reg1 = k1 == OpKind::Register && op.r1 != NO_REG;
    match (k0, k1) {
        _ if reg0 && reg1 => Some(Shape::RegReg),
        (_, k) if reg0 && imm(k) => Some(Shape::RegImm),
        (_, OpKind::Memory) if reg0 => Some(Shape::RegMem),
        (OpKind::Memory, _) if reg1 => Some(Shape::MemReg),
        (OpKind::Memory, k) if imm(k) => Some(Shape::MemImm),
        _ => None,
    }
}

/// Size in bytes of operand 0 (a register or memory).
fn size0(op: &Op) -> u8 {
    let ins = &op.ins;
    if ins.op0_kind() == OpKind::Register {
        ins.op0_register().size() as u8
    } else {
        ins.memory_size().size() as u8
    }
}

/// Picks the handler of `op`'s form; fills in the immediate it needs.
pub(crate) fn select(op: &mut Op) -> Handler {
    let ins = &op.ins;
    if ins.has_lock_prefix() || ins.encoding() != EncodingKind::Legacy {
        return generic;
    }
    match ins.mnemonic() {
        M::Add | M::Or | M::Adc | M::Sbb | M::And | M::Sub | M::Xor | M::Cmp | M::Test => alu::select_binary(op),
        M::Inc | M::Dec => alu::select_inc_dec(op),
        M::Shl | M::Sal | M::Shr | M::Sar => alu::select_shift(op),
        M::Mov => mov::select_mov(op),
        M::Movzx | M::Movsx | M::Movsxd => mov::select_extend(op),
        M::Lea => mov::select_lea(op),
        M::Nop => mov::nop,
        m if is_cmov(m) => mov::select_cmov(op),
        m if is_setcc(m) => mov::select_setcc(op),
        m if is_jcc(m) => branch::select_jcc(op),
        M::Jmp | M::Call | M::Ret => branch::select_near(op),
        M::Push | M::Pop => branch::select_push_pop(op),
        M::Mul | M::Imul | M::Div | M::Idiv => muldiv::select_muldiv(op),
        _ => generic,
    }
}

/// Expands to the handler `$f::<..., S>` for a run-time size `$size` (1, 2, 4 or 8),
/// or `generic` for anything else.
macro_rules! by_size {
    ($size:expr, $f:ident $(, $c:expr)*) => {
        match $size {
            1 => $f::<$($c,)* 1> as $crate::interp::op::Handler,
            2 => $f::<$($c,)* 2>,
            4 => $f::<$($c,)* 4>,
            8 => $f::<$($c,)* 8>,
            _ => $crate::interp::op::generic,
        }
    };
}
pub(crate) use by_size;

impl Ctx<'_> {
    /// Reads GPR operand `r` ([`crate::interp::op::reg_code`] encoding) of `S` bytes.
    #[inline(always)]
    pub(crate) fn get_r<const S: u8>(&self, r: u8) -> u64 {
        let g = &self.c.st.gpr;
        match S {
            1 => (g[(r & 15) as usize] >> (((r >> 4) & 1) * 8)) & 0xff,
            2 => g[(r & 15) as usize] & 0xffff,
            4 => g[(r & 15) as usize] & 0xffff_ffff,
            _ => g[(r & 15) as usize],
        }
    }

    /// Writes GPR operand `r` of `S` bytes with the architectural merge rules (8- and
    /// 16-bit writes keep the rest, 32-bit writes clear bits 63:32; SDM Vol. 1 §3.4.1.1).
    #[inline(always)]
    pub(crate) fn put_r<const S: u8>(&mut self, r: u8, v: u64) {
        let g = &mut self.c.st.gpr[(r & 15) as usize];
        *g = match S {
            1 => {
                let sh = ((r >> 4) & 1) * 8;
                (*g & !(0xff << sh)) | ((v & 0xff) << sh)
            }
            2 => (*g & !0xffff) | (v & 0xffff),
            4 => v & 0xffff_ffff,
            _ => v,
        };
    }

    /// The offset of a pre-extracted memory operand.
    #[inline(always)]
    pub(crate) fn ea_of(&self, m: &MemOperand) -> u64 {
        let g = &self.c.st.gpr;
        let mut off = m.disp;
        if m.base != NO_REG {
            off = off.wrapping_add(g[(m.base & 15) as usize]);
        }
        if m.index != NO_REG {
            off = off.wrapping_add(g[(m.index & 15) as usize] << m.scale);
        }
        off & m.amask
    }
}
