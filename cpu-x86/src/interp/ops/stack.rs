//! The stack: PUSH POP (registers, memory, immediates, segment registers), PUSHA POPA,
//! PUSHF POPF, ENTER LEAVE (SDM Vol. 2B; Vol. 1 §6.2 for stack address size).

use super::operand::seg_of;
use crate::interp::cpu::Ctx;
use crate::interp::fault::{Fault, R};
use crate::interp::flags::size_mask;
use crate::interp::state::{fl, Mode, Seg};
use iced_x86::{Code, Instruction, Mnemonic as M, OpKind};

impl Ctx<'_> {
    /// The stack pointer masked to the stack address size.
    #[inline]
    pub fn sp(&self) -> u64 {
        self.c.st.gpr[4] & size_mask(self.c.st.stack_size())
    }

    /// Sets the stack pointer, keeping the bits above the stack address size.
    #[inline]
    pub fn set_sp(&mut self, v: u64) {
        let size = self.c.st.stack_size();
        self.set_gpr(4, size, v);
    }

    /// Pushes `size` bytes.
    pub fn push(&mut self, v: u64, size: u8) -> R<()> {
        let sp = self.sp().wrapping_sub(size as u64) & size_mask(self.c.st.stack_size());
        self.write(Seg::Ss, sp, size, v)?;
        self.set_sp(sp);
        Ok(())
    }

    /// Pops `size` bytes.
    pub fn pop(&mut self, size: u8) -> R<u64> {
        let sp = self.sp();
        let v = self.read(Seg::Ss, sp, size)?;
        self.set_sp(sp.wrapping_add(size as u64));
        Ok(v)
    }

    /// Reads `size` bytes at SP + `offset` without popping.
    pub fn stack_peek(&mut self, offset: u64, size: u8) -> R<u64> {
        let sp = self.sp().wrapping_add(offset) & size_mask(self.c.st.stack_size());
        self.read(Seg::Ss, sp, size)
    }

    pub(super) fn push_pop(&mut self, ins: &Instruction) -> R<()> {
        let size = ins.stack_pointer_increment().unsigned_abs() as u8;
        match ins.mnemonic() {
            M::Push => {
                let v = if ins.op0_kind() == OpKind::Register && ins.op0_register().is_segment_register() {
                    self.reg(ins.op0_register())
                } else {
                    self.read_op(ins, 0, size)?
                };
                self.push(v, size)
            }
            M::Pop => {
                if ins.op0_kind() == OpKind::Register && ins.op0_register().is_segment_register() {
                    // The pop belongs to the stack the value came from: SP advances in
                    // the width of that stack, whatever the newly loaded SS says (SDM
                    // Vol. 2B "POP": the stack address size is the old SS's B flag).
                    let seg = seg_of(ins.op0_register());
                    let (ssize, sp) = (self.c.st.stack_size(), self.sp());
                    let v = self.stack_peek(0, size)?;
                    self.load_seg(seg, v as u16)?;
                    self.set_gpr(4, ssize, sp.wrapping_add(size as u64));
                    if seg == Seg::Ss {
                        self.c.st.int_shadow = true;
                        self.c.irq_check = true;
                    }
                    return Ok(());
                }
                let v = self.pop(size)?;
                self.write_op(ins, 0, size, v)
            }
            M::Pusha | M::Pushad => {
                // SDM Vol. 2B "PUSHA/PUSHAD": Temp <- (E)SP, the whole register of the
                // operand size, also on a 16-bit stack (where only SP addresses it).
                let n = size / 8;
                let sp = self.sp();
                let start = sp.wrapping_sub(size as u64) & size_mask(self.c.st.stack_size());
                for (i, r) in [0usize, 1, 2, 3, 4, 5, 6, 7].into_iter().enumerate() {
                    let v = self.c.st.gpr[r];
                    let addr = sp.wrapping_sub(((i + 1) * n as usize) as u64) & size_mask(self.c.st.stack_size());
                    self.write(Seg::Ss, addr, n, v & size_mask(n))?;
                }
                self.set_sp(start);
                Ok(())
            }
            _ => {
                let n = size / 8;
                let sp = self.sp();
                let mut vals = [0u64; 8];
                for (i, v) in vals.iter_mut().enumerate() {
                    let addr = sp.wrapping_add((i * n as usize) as u64) & size_mask(self.c.st.stack_size());
                    *v = self.read(Seg::Ss, addr, n)?;
                }
                for (i, r) in [7usize, 6, 5, 4, 3, 2, 1, 0].into_iter().enumerate() {
                    if r != 4 {
                        self.set_gpr(r, n, vals[i]);
                    }
                }
                self.set_sp(sp.wrapping_add(size as u64));
                Ok(())
            }
        }
    }

    pub(super) fn push_pop_flags(&mut self, ins: &Instruction) -> R<()> {
        let size = ins.stack_pointer_increment().unsigned_abs() as u8;
        let v86_trap = self.c.st.mode == Mode::V86 && self.c.st.iopl() < 3;
        if v86_trap {
            return Err(Fault::gp(0));
        }
        match ins.mnemonic() {
            M::Pushf | M::Pushfd | M::Pushfq => {
                let f = self.flags() & !(fl::VM | fl::RF);
                self.push(f & size_mask(size), size)
            }
            _ => {
                let v = self.pop(size)?;
                self.write_flags(v, size, false);
                Ok(())
            }
        }
    }

    /// Loads RFLAGS from POPF/IRET data of `size` bytes with the privilege rules of
    /// SDM Vol. 2B "POPF": IOPL only at CPL 0, IF only at CPL <= IOPL; VM, VIF and VIP
    /// are never changed by POPF (`iret` passes `true` to allow what IRET may change).
    pub fn write_flags(&mut self, v: u64, size: u8, iret: bool) {
        let old = self.flags();
        let st = &self.c.st;
        let mut changeable = fl::WRITABLE & !(fl::VM | fl::VIF | fl::VIP);
        if !iret {
            changeable &= !fl::RF;
        }
        if st.protected() || st.mode == Mode::V86 {
            if st.cpl > 0 {
                changeable &= !fl::IOPL;
            }
            if st.cpl > st.iopl() {
                changeable &= !fl::IF;
            }
        }
        changeable &= size_mask(size);
        let new = (old & !changeable) | (v & changeable) | fl::FIXED1;
        let new = if !iret { new & !fl::RF } else { new };
        self.c.st.rflags = new;
        if new & fl::IF != 0 && old & fl::IF == 0 {
            self.c.irq_check = true;
        }
        if (new ^ old) & (fl::TF | fl::AC) != 0 {
            self.c.brk = true;
        }
    }

    pub(super) fn enter_leave(&mut self, ins: &Instruction) -> R<()> {
        let size = match ins.code() {
            Code::Leavew | Code::Enterw_imm16_imm8 => 2,
            Code::Leaved | Code::Enterd_imm16_imm8 => 4,
            _ => 8,
        };
        let ssize = self.c.st.stack_size();
        let smask = size_mask(ssize);
        if ins.mnemonic() == M::Leave {
            let bp = self.c.st.gpr[5] & smask;
            let v = self.read(Seg::Ss, bp, size)?;
            self.set_sp(bp.wrapping_add(size as u64));
            self.set_gpr(5, size, v);
            return Ok(());
        }
        // SDM Vol. 2A "ENTER". FrameTemp is the whole (E/R)SP after pushing (E/R)BP:
        // with operand size 32 on a 16-bit stack it keeps ESP's upper half, which lands
        // in EBP and in the pushed frame pointer (a 386 does this, as Bochs models).
        let opsize = size;
        let alloc = ins.immediate16() as u64;
        let level = (ins.immediate8_2nd() & 0x1f) as u64;
        let bp = self.c.st.gpr[5];
        self.push(bp, opsize)?;
        let frame = self.c.st.gpr[4];
        let mut new_bp = bp & smask;
        if level > 0 {
            for _ in 1..level {
                new_bp = new_bp.wrapping_sub(opsize as u64) & smask;
                let v = self.read(Seg::Ss, new_bp, opsize)?;
                self.push(v, opsize)?;
            }
            self.push(frame, opsize)?;
        }
        let new_sp = self.sp().wrapping_sub(alloc) & smask;
        // "#PF if a write using the final value of the stack pointer would cause a page
        // fault" (also #SS past the limit): checked before EBP and ESP change, so a
        // fault leaves both as they were (the caller restores RSP).
        self.probe_write(Seg::Ss, new_sp, opsize)?;
        self.set_gpr(5, opsize, frame);
        self.set_sp(new_sp);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::interp::fault::vec;
    use crate::interp::state::{cr0, Seg};
    use crate::interp::test_util::Machine;
    use iced_x86::code_asm::*;

    /// Flat 32-bit code at CPL 0 on a 16-bit stack segment (SS.B = 0, base 0), with
    /// ESP = 0x0001_0000: SP is 0 while ESP's upper half is 1.
    fn on_16bit_stack(a: &mut CodeAssembler) -> Machine {
        let mut m = Machine::protected32(a);
        let st = m.cpu.state_mut();
        st.seg[Seg::Ss as usize].attrs = 0x8093;
        st.gpr[4] = 0x1_0000;
        m.cpu.flush_caches();
        m
    }

    fn dword(m: &Machine, addr: u64) -> u32 {
        u32::from_le_bytes(m.peek::<4>(addr))
    }

    #[test]
    fn pushad_on_a_16bit_stack_pushes_the_whole_esp() {
        let mut a = CodeAssembler::new(32).unwrap();
        a.pushad().unwrap();
        a.hlt().unwrap();
        let mut m = on_16bit_stack(&mut a);
        m.run();
        // SP wraps from 0 to 0xFFE0; ESP is the fifth dword (at SP-20 = 0xFFEC).
        assert_eq!(dword(&m, 0xffec), 0x1_0000, "Temp <- ESP, not SP zero-extended");
        assert_eq!(m.gpr(4), 0x1_ffe0);
    }

    #[test]
    fn pop_ss_advances_sp_in_the_width_of_the_stack_it_popped_from() {
        // POP SS (operand size 32) from the 16-bit stack at SP = 0xFFFC loads the
        // 32-bit stack segment 0x10; SP wraps to 0 in 16 bits, ESP's upper half stays.
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(esp, 0x1_fffc).unwrap();
        a.pop(ss).unwrap();
        a.hlt().unwrap();
        let mut m = on_16bit_stack(&mut a);
        m.poke(0xfffc, &0x10u32.to_le_bytes());
        m.run();
        assert_eq!(m.cpu.state().seg[Seg::Ss as usize].attrs & 0x4000, 0x4000, "SS is now 32-bit");
        assert_eq!(m.gpr(4), 0x1_0000);
    }

    #[test]
    fn enter32_with_nesting_on_a_16bit_stack_keeps_the_upper_halves() {
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(ebp, 0x1_2340).unwrap();
        a.enter(8u32, 1u32).unwrap();
        a.hlt().unwrap();
        let mut m = on_16bit_stack(&mut a);
        m.run();
        // Push EBP at SP 0xFFFC; FrameTemp = ESP = 0x1_FFFC is pushed at 0xFFF8 and
        // becomes EBP; SP = 0xFFF8 - 8.
        assert_eq!(dword(&m, 0xfffc), 0x1_2340);
        assert_eq!(dword(&m, 0xfff8), 0x1_fffc, "the pushed frame pointer");
        assert_eq!(m.gpr(5), 0x1_fffc, "EBP keeps its upper half");
        assert_eq!(m.gpr(4), 0x1_fff0);
    }

    #[test]
    fn enter_faults_with_nothing_changed_when_the_final_stack_page_is_read_only() {
        // Paging with 4 KiB pages, page 7 read-only, CR0.WP set. ENTER pushes EBP at
        // 0x8010 (writable) and would end with ESP = 0x7FF0, in the read-only page.
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(esp, 0x8014).unwrap();
        a.mov(ebp, 0x1234).unwrap();
        a.enter(0x20u32, 0u32).unwrap();
        a.mov(esi, 1).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::protected32(&mut a);
        m.poke(0x80000, &(0x81000u32 | 3).to_le_bytes());
        for page in 0..512u32 {
            let rw = if page == 7 { 0 } else { 2 };
            m.poke(0x81000 + page as u64 * 4, &((page << 12) | 1 | rw).to_le_bytes());
        }
        let mut h = CodeAssembler::new(32).unwrap();
        h.hlt().unwrap();
        m.load(&mut h, 0x30000, 0x30000);
        let gate = (0x08 << 16) | (0x8e00 << 32) | (0x3u64 << 48);
        m.poke(0x2000 + vec::PF as u64 * 8, &gate.to_le_bytes());
        let st = m.cpu.state_mut();
        st.cr0 |= cr0::PG | cr0::WP;
        st.cr3 = 0x80000;
        st.idtr.base = 0x2000;
        st.idtr.limit = 0xff;
        m.cpu.flush_caches();
        m.run();
        // Present, write, supervisor.
        assert_eq!(m.cpu.last_exception, Some((vec::PF, Some(3))));
        assert_eq!(m.cpu.state().cr2, 0x7ff0);
        assert_eq!(m.gpr(5), 0x1234, "EBP unchanged");
        assert_eq!(m.gpr(4), 0x8014 - 16, "the fault frame sits on the original ESP");
        assert_eq!(m.gpr(6), 0, "the handler ran instead of the next instruction");
    }

    #[test]
    fn enter_with_nesting_and_leave() {
        let mut a = CodeAssembler::new(16).unwrap();
        a.mov(bp, 0x7000).unwrap();
        a.enter(8, 1).unwrap();
        a.mov(dx, sp).unwrap();
        a.mov(si, bp).unwrap();
        a.leave().unwrap();
        a.hlt().unwrap();
        let mut m = Machine::real(&mut a);
        m.run();
        // push BP (SP=7FFE), frame=7FFE, level 1 pushes the frame (7FFC), then SP-=8.
        assert_eq!((m.gpr(6) & 0xffff, m.gpr(2) & 0xffff), (0x7ffe, 0x7ff4));
        assert_eq!(m.gpr(5) & 0xffff, 0x7000);
        assert_eq!(m.gpr(4) & 0xffff, 0x8000);
    }

    #[test]
    fn pusha_popa_round_trip_and_push_sp_value() {
        let mut a = CodeAssembler::new(16).unwrap();
        a.mov(ax, 1).unwrap();
        a.mov(di, 8).unwrap();
        a.pusha().unwrap();
        a.mov(ax, 0).unwrap();
        a.mov(di, 0).unwrap();
        a.popa().unwrap();
        a.push(sp).unwrap();
        a.pop(bx).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::real(&mut a);
        m.run();
        assert_eq!((m.gpr(0) & 0xffff, m.gpr(7) & 0xffff), (1, 8));
        assert_eq!(m.gpr(3) & 0xffff, 0x8000, "PUSH SP pushes the value before the push");
    }
}
