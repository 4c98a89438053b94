//! Decoded instructions in executable form: decode once, dispatch once.
//!
//! When a block is decoded, each instruction becomes an [`Op`]: the handler for its
//! opcode and operand form (register or memory, operand size), chosen once by
//! `forms::select`, with its operands pre-extracted (register numbers, the immediate,
//! the parts of the effective address). The execution loop only calls `op.run`; no
//! handler looks at the mnemonic or the operand kinds again. Forms without a
//! specialised handler run [`generic`], the full interpreter path through
//! `Ctx::exec`, so every instruction has exactly one definition of its semantics.
//!
//! A handler is a plain `fn(&mut Ctx, &Op) -> R<()>` whose fault is an 8-byte `Copy`
//! value: the shape a compiled block can call for an instruction it does not translate.

use super::cpu::Ctx;
use super::fault::R;
use super::forms;
use super::state::Seg;
use iced_x86::{Instruction, OpKind, Register};

/// Executes one decoded instruction; RIP already points after it.
pub(crate) type Handler = for<'a, 'b> fn(&mut Ctx<'a>, &'b Op) -> R<()>;

/// "No register" in [`MemOperand`] and [`Op`] register fields.
pub(crate) const NO_REG: u8 = 0xff;

/// The parts of a memory operand's effective address, pre-extracted (SDM Vol. 1
/// §3.7.5): `(disp + base + (index << scale)) & amask` in segment `seg`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MemOperand {
    /// Displacement (for RIP-relative operands, the final address).
    pub disp: u64,
    /// Address-size mask (all ones for RIP-relative operands).
    pub amask: u64,
    /// Base GPR number, or [`NO_REG`].
    pub base: u8,
    /// Index GPR number, or [`NO_REG`].
    pub index: u8,
    /// Index shift (log2 of the scale).
    pub scale: u8,
    /// Segment.
    pub seg: Seg,
}

impl MemOperand {
    /// The memory operand of `ins` (meaningful when it has one).
    pub fn of(ins: &Instruction) -> MemOperand {
        let base = ins.memory_base();
        let seg = super::ops::operand::seg_of(ins.memory_segment());
        let disp = ins.memory_displacement64();
        if base == Register::RIP || base == Register::EIP {
            return MemOperand { disp, amask: u64::MAX, base: NO_REG, index: NO_REG, scale: 0, seg };
        }
        let amask = super::flags::size_mask(super::ops::operand::addr_size(ins));
        let gpr = |r: Register| if r == Register::None { NO_REG } else { gpr_number(r) };
        MemOperand {
            disp,
            amask,
            base: gpr(base),
            index: gpr(ins.memory_index()),
            scale: ins.memory_index_scale().trailing_zeros() as u8,
            seg,
        }
    }
}

/// One decoded instruction with its handler and pre-extracted operands.
pub(crate) struct Op {
    /// The handler for this opcode and operand form.
    pub run: Handler,
    /// RIP of the next instruction.
    pub next_ip: u64,
    /// The immediate operand, masked to the operand size (sign-extended forms included).
    pub imm: u64,
    /// The memory operand, if any.
    pub mem: MemOperand,
    /// Register operand 0 ([`reg_code`] encoding), or [`NO_REG`].
    pub r0: u8,
    /// Register operand 1 ([`reg_code`] encoding), or [`NO_REG`].
    pub r1: u8,
    /// Condition nibble of conditional forms.
    pub cc: u8,
    /// The decoded instruction, for the generic path, traces and diagnostics.
    pub ins: Instruction,
}

impl Op {
    /// Decodes `ins` into its executable form.
    pub fn new(ins: Instruction) -> Op {
        let reg = |i: u32| {
            if i < ins.op_count() && ins.op_kind(i) == OpKind::Register {
                reg_code(ins.op_register(i))
            } else {
                NO_REG
            }
        };
        let mut op = Op {
            run: generic,
            next_ip: ins.next_ip(),
            imm: 0,
            mem: MemOperand::of(&ins),
            r0: reg(0),
            r1: reg(1),
            cc: (ins.condition_code() as u8).wrapping_sub(1) & 0xf,
            ins,
        };
        op.run = forms::select(&mut op);
        op
    }
}

/// GPR number 0-15 of a 16/32/64-bit general-purpose register.
fn gpr_number(r: Register) -> u8 {
    r.full_register().number() as u8
}

/// The [`Op`] register code of a general-purpose register: the GPR number, plus 16 for
/// the legacy high-byte registers AH, CH, DH and BH (bits 15:8 of GPR 0-3); [`NO_REG`]
/// for anything else.
pub(crate) fn reg_code(r: Register) -> u8 {
    if !r.is_gpr() {
        return NO_REG;
    }
    match r {
        Register::AH | Register::CH | Register::DH | Register::BH => 16 + (r as u8 - Register::AH as u8),
        Register::SPL | Register::BPL | Register::SIL | Register::DIL => 4 + (r as u8 - Register::SPL as u8),
        _ => gpr_number(r),
    }
}

/// The handler of every form without a specialised one: the full interpreter path.
pub(crate) fn generic(ctx: &mut Ctx<'_>, op: &Op) -> R<()> {
    ctx.exec(&op.ins)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_codes_name_the_gpr_and_the_high_byte() {
        assert_eq!(reg_code(Register::AL), 0);
        assert_eq!(reg_code(Register::BH), 16 + 3);
        assert_eq!(reg_code(Register::SPL), 4);
        assert_eq!(reg_code(Register::R15D), 15);
        assert_eq!(reg_code(Register::RSP), 4);
        assert_eq!(reg_code(Register::CS), NO_REG);
        assert_eq!(reg_code(Register::XMM0), NO_REG);
    }
}
