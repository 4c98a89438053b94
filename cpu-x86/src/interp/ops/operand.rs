//! Operand access for the instruction handlers: registers by iced `Register`, memory
//! operands through effective-address calculation (SDM Vol. 2A §2.1.5, Vol. 1 §3.7.5)
//! and immediates.

use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use crate::interp::flags::size_mask;
use crate::interp::state::Seg;
use iced_x86::{Instruction, OpKind, Register};

/// Segment register for an iced segment `Register`.
pub fn seg_of(r: Register) -> Seg {
    match r {
        Register::ES => Seg::Es,
        Register::CS => Seg::Cs,
        Register::SS => Seg::Ss,
        Register::FS => Seg::Fs,
        Register::GS => Seg::Gs,
        _ => Seg::Ds,
    }
}

/// Address size in bytes of a memory operand (from its base/index registers or its
/// displacement size).
pub fn addr_size(ins: &Instruction) -> u8 {
    let b = ins.memory_base();
    let r = if b != Register::None { b } else { ins.memory_index() };
    match r {
        Register::None => match ins.memory_displ_size() {
            0 | 2 => 2,
            n => n as u8,
        },
        Register::EIP => 4,
        Register::RIP => 8,
        r => r.size() as u8,
    }
}

/// True for the immediate operand kinds.
pub fn is_immediate(k: OpKind) -> bool {
    matches!(
        k,
        OpKind::Immediate8
            | OpKind::Immediate8_2nd
            | OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate64
            | OpKind::Immediate8to16
            | OpKind::Immediate8to32
            | OpKind::Immediate8to64
            | OpKind::Immediate32to64
    )
}

/// True for the memory operand kinds of string instructions (addressed by rSI or rDI).
pub fn is_string_operand(k: OpKind) -> bool {
    matches!(
        k,
        OpKind::MemorySegSI
            | OpKind::MemorySegESI
            | OpKind::MemorySegRSI
            | OpKind::MemoryESDI
            | OpKind::MemoryESEDI
            | OpKind::MemoryESRDI
    )
}

/// Address size of a string operand kind.
pub fn string_addr_size(k: OpKind) -> u8 {
    match k {
        OpKind::MemorySegSI | OpKind::MemorySegDI | OpKind::MemoryESDI => 2,
        OpKind::MemorySegESI | OpKind::MemorySegEDI | OpKind::MemoryESEDI => 4,
        _ => 8,
    }
}

impl Ctx<'_> {
    /// Reads a general-purpose or segment register.
    #[inline]
    pub fn reg(&self, r: Register) -> u64 {
        let n = r as usize;
        let g = &self.c.st.gpr;
        match n {
            1..=4 => g[n - 1] & 0xff,
            5..=8 => (g[n - 5] >> 8) & 0xff,
            9..=20 => g[n - 5] & 0xff,
            21..=36 => g[n - 21] & 0xffff,
            37..=52 => g[n - 37] & 0xffff_ffff,
            53..=68 => g[n - 53],
            71..=76 => self.c.st.seg[n - 71].selector as u64,
            _ => 0,
        }
    }

    /// Writes a general-purpose register (8/16-bit writes merge, 32-bit writes zero
    /// the upper half, SDM Vol. 1 §3.4.1.1).
    #[inline]
    pub fn set_reg(&mut self, r: Register, v: u64) {
        let n = r as usize;
        let g = &mut self.c.st.gpr;
        match n {
            1..=4 => g[n - 1] = (g[n - 1] & !0xff) | (v & 0xff),
            5..=8 => g[n - 5] = (g[n - 5] & !0xff00) | ((v & 0xff) << 8),
            9..=20 => g[n - 5] = (g[n - 5] & !0xff) | (v & 0xff),
            21..=36 => g[n - 21] = (g[n - 21] & !0xffff) | (v & 0xffff),
            37..=52 => g[n - 37] = v & 0xffff_ffff,
            53..=68 => g[n - 53] = v,
            _ => {}
        }
    }

    /// Writes the low `size` bytes of GPR number `n` (0-15) with the architectural
    /// merge rules.
    #[inline]
    pub fn set_gpr(&mut self, n: usize, size: u8, v: u64) {
        let g = &mut self.c.st.gpr[n];
        *g = match size {
            1 => (*g & !0xff) | (v & 0xff),
            2 => (*g & !0xffff) | (v & 0xffff),
            4 => v & 0xffff_ffff,
            _ => v,
        };
    }

    /// The effective address (segment, offset) of the memory operand.
    #[inline]
    pub fn ea(&self, ins: &Instruction) -> (Seg, u64) {
        let seg = seg_of(ins.memory_segment());
        let base = ins.memory_base();
        let mut off = ins.memory_displacement64();
        if base == Register::RIP || base == Register::EIP {
            return (seg, off);
        }
        if base != Register::None {
            off = off.wrapping_add(self.reg(base));
        }
        let index = ins.memory_index();
        if index != Register::None {
            off = off.wrapping_add(self.reg(index) << ins.memory_index_scale().trailing_zeros());
        }
        (seg, off & size_mask(addr_size(ins)))
    }

    /// Size in bytes of operand `i`.
    #[inline]
    pub fn op_size(&self, ins: &Instruction, i: u32) -> u8 {
        match ins.op_kind(i) {
            OpKind::Register => ins.op_register(i).size() as u8,
            OpKind::Immediate8 | OpKind::Immediate8_2nd => 1,
            OpKind::Immediate16 | OpKind::Immediate8to16 => 2,
            OpKind::Immediate32 | OpKind::Immediate8to32 => 4,
            OpKind::Immediate64 | OpKind::Immediate8to64 | OpKind::Immediate32to64 => 8,
            _ => ins.memory_size().size() as u8,
        }
    }

    /// Reads operand `i` (`size` bytes).
    #[inline]
    pub fn read_op(&mut self, ins: &Instruction, i: u32, size: u8) -> R<u64> {
        match ins.op_kind(i) {
            OpKind::Register => Ok(self.reg(ins.op_register(i))),
            OpKind::Memory => {
                let (seg, off) = self.ea(ins);
                self.read(seg, off, size)
            }
            k if is_immediate(k) => Ok(ins.immediate(i) & size_mask(size)),
            k => Err(self.unsupported(format!("operand kind {k:?}"))),
        }
    }

    /// Writes operand `i` (`size` bytes).
    #[inline]
    pub fn write_op(&mut self, ins: &Instruction, i: u32, size: u8, v: u64) -> R<()> {
        match ins.op_kind(i) {
            OpKind::Register => {
                self.set_reg(ins.op_register(i), v);
                Ok(())
            }
            OpKind::Memory => {
                let (seg, off) = self.ea(ins);
                self.write(seg, off, size, v)
            }
            k => Err(self.unsupported(format!("destination operand kind {k:?}"))),
        }
    }

    /// Checks that a memory destination operand `i` is writable before a
    /// read-modify-write instruction reads it.
    #[inline]
    pub fn probe_op(&mut self, ins: &Instruction, i: u32, size: u8) -> R<()> {
        if ins.op_kind(i) == OpKind::Memory {
            let (seg, off) = self.ea(ins);
            self.probe_write(seg, off, size)?;
        }
        Ok(())
    }
}
