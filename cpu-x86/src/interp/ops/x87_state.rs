//! x87 control and state instructions: FNINIT FNCLEX FNSTSW FNSTCW FLDCW, FNSTENV
//! FLDENV, FNSAVE FRSTOR, FXSAVE FXRSTOR (and their 64-bit forms). Environment images
//! use the protected-mode layouts (SDM Vol. 1 Figures 8-9/8-10 and 8-11; the real-mode
//! layouts are not modelled); FXSAVE follows Vol. 1 Tables 10-2/10-3.

use super::sse::mxcsr;
use super::x87::{fsw, tag, tag_of};
use crate::interp::cpu::Ctx;
use crate::interp::fault::{Fault, R};
use crate::interp::mmu::Acc;
use crate::interp::state::{Seg, X87State};
use iced_x86::{Instruction, MemorySize, Mnemonic as M, OpKind};

/// Size of the FXSAVE area in bytes.
const FXSAVE_SIZE: u64 = 512;
/// Offset of ST(0) in the FXSAVE area.
const FXSAVE_ST: u64 = 32;
/// Offset of XMM0 in the FXSAVE area.
const FXSAVE_XMM: u64 = 160;

impl Ctx<'_> {
    /// Dispatch for the control/state group.
    pub(super) fn x87_state_op(&mut self, ins: &Instruction) -> R<()> {
        match ins.mnemonic() {
            M::Fninit | M::Finit => {
                self.c.st.x87 = X87State { fip: 0, fdp: 0, ..X87State::default() };
                Ok(())
            }
            M::Fnclex | M::Fclex => {
                self.c.st.x87.fsw &= !(0x3f | fsw::SF | fsw::ES | fsw::B);
                Ok(())
            }
            M::Fnstsw | M::Fstsw => {
                let v = self.c.st.x87.fsw as u64;
                self.write_op(ins, 0, 2, v)
            }
            M::Fnstcw | M::Fstcw => {
                let v = self.c.st.x87.fcw as u64;
                self.write_op(ins, 0, 2, v)
            }
            M::Fldcw => {
                let v = self.read_op(ins, 0, 2)? as u16;
                self.c.st.x87.fcw = v | 0x40;
                self.refresh_es();
                Ok(())
            }
            M::Fnstenv | M::Fstenv => {
                self.store_env(ins)?;
                self.c.st.x87.fcw |= 0x3f;
                Ok(())
            }
            M::Fldenv => self.load_env(ins).map(|_| ()),
            M::Fnsave | M::Fsave => {
                let base = self.store_env(ins)?;
                let (seg, off) = self.ea(ins);
                for i in 0..8 {
                    let r = self.c.st.x87.regs[self.phys(i)];
                    self.write_bytes(seg, off.wrapping_add(base + 10 * i as u64), &r)?;
                }
                self.c.st.x87 = X87State { fip: 0, fdp: 0, ..X87State::default() };
                Ok(())
            }
            M::Frstor => {
                let (seg, off) = self.ea(ins);
                let env = if ins.memory_size() == MemorySize::FpuState94 { 14 } else { 28 };
                let mut regs = [[0u8; 10]; 8];
                for (i, r) in regs.iter_mut().enumerate() {
                    self.read_bytes(seg, off.wrapping_add(env + 10 * i as u64), r)?;
                }
                self.load_env(ins)?;
                for (i, r) in regs.iter().enumerate() {
                    let p = self.phys(i);
                    self.c.st.x87.regs[p] = *r;
                }
                Ok(())
            }
            M::Fxsave | M::Fxsave64 => self.fxsave(ins),
            _ => self.fxrstor(ins),
        }
    }

    /// Sets or clears ES and B from the unmasked exception flags.
    fn refresh_es(&mut self) {
        let x = &mut self.c.st.x87;
        if x.fsw & !x.fcw & 0x3f != 0 {
            x.fsw |= fsw::ES | fsw::B;
        } else {
            x.fsw &= !(fsw::ES | fsw::B);
        }
    }

    /// Writes `b` at `seg:off` in up-to-8-byte pieces.
    fn write_bytes(&mut self, seg: Seg, off: u64, b: &[u8]) -> R<()> {
        for (i, chunk) in b.chunks(8).enumerate() {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write(seg, off.wrapping_add(8 * i as u64), chunk.len() as u8, u64::from_le_bytes(w))?;
        }
        Ok(())
    }

    /// Reads `b.len()` bytes from `seg:off`.
    fn read_bytes(&mut self, seg: Seg, off: u64, b: &mut [u8]) -> R<()> {
        for (i, chunk) in b.chunks_mut(8).enumerate() {
            let v = self.read(seg, off.wrapping_add(8 * i as u64), chunk.len() as u8)?;
            let len = chunk.len();
            chunk.copy_from_slice(&v.to_le_bytes()[..len]);
        }
        Ok(())
    }

    /// Stores the 14- or 28-byte environment; returns its size.
    fn store_env(&mut self, ins: &Instruction) -> R<u64> {
        let (seg, off) = self.ea(ins);
        let small = matches!(ins.memory_size(), MemorySize::FpuEnv14 | MemorySize::FpuState94);
        let x = self.c.st.x87;
        let cs = self.c.st.seg[Seg::Cs as usize].selector as u64;
        let ds = self.c.st.seg[Seg::Ds as usize].selector as u64;
        let fields = [x.fcw as u64, x.fsw as u64, x.ftw as u64, x.fip, cs | (x.fop as u64 & 0x7ff) << 16, x.fdp, ds];
        let (size, width) = if small { (14, 2) } else { (28, 4) };
        self.probe_write(seg, off, size as u8)?;
        for (i, &f) in fields.iter().enumerate() {
            let v = if small || i >= 3 { f } else { f | 0xffff_0000 };
            self.write(seg, off.wrapping_add(width * i as u64), width as u8, v)?;
        }
        Ok(size)
    }

    /// Loads the environment (FLDENV, and the first part of FRSTOR).
    fn load_env(&mut self, ins: &Instruction) -> R<u64> {
        let (seg, off) = self.ea(ins);
        let small = matches!(ins.memory_size(), MemorySize::FpuEnv14 | MemorySize::FpuState94);
        let (size, width) = if small { (14u64, 2u64) } else { (28, 4) };
        let mut f = [0u64; 7];
        for (i, v) in f.iter_mut().enumerate() {
            *v = self.read(seg, off.wrapping_add(width * i as u64), width as u8)?;
        }
        let x = &mut self.c.st.x87;
        x.fcw = f[0] as u16 | 0x40;
        x.fsw = f[1] as u16;
        x.ftw = f[2] as u16;
        x.fip = f[3];
        x.fop = (f[4] >> 16) as u16 & 0x7ff;
        x.fdp = f[5];
        self.refresh_es();
        Ok(size)
    }

    /// The checks shared by FXSAVE and FXRSTOR: #NM with CR0.TS or CR0.EM was done by
    /// the x87 entry; the operand must be 16-byte aligned (#GP(0)).
    fn fxsave_area(&mut self, ins: &Instruction, acc: Acc) -> R<(Seg, u64)> {
        if ins.op0_kind() != OpKind::Memory {
            return Err(Fault::ud());
        }
        let (seg, off) = self.ea(ins);
        let lin = self.linear(seg, off, 8, acc)?;
        self.linear(seg, off.wrapping_add(FXSAVE_SIZE - 8), 8, acc)?;
        if lin & 15 != 0 {
            return Err(Fault::gp(0));
        }
        Ok((seg, off))
    }

    /// FXSAVE/FXSAVE64: the 512-byte x87 + SSE image.
    fn fxsave(&mut self, ins: &Instruction) -> R<()> {
        let (seg, off) = self.fxsave_area(ins, Acc::Write)?;
        self.probe_write(seg, off, 8)?;
        self.probe_write(seg, off.wrapping_add(FXSAVE_SIZE - 8), 8)?;
        self.save_x87_image(seg, off, ins.mnemonic() == M::Fxsave64)?;
        self.save_mxcsr_image(seg, off)?;
        self.save_xmm_image(seg, off)
    }

    /// Writes the x87 part of the FXSAVE/XSAVE legacy area at `seg:off` (bytes 0-23 and
    /// the registers at 32-159); `wide` is the 64-bit FIP/FDP format (REX.W).
    pub(super) fn save_x87_image(&mut self, seg: Seg, off: u64, wide: bool) -> R<()> {
        let x = self.c.st.x87;
        let abridged = (0..8).fold(0u64, |a, p| a | ((self.phys_tag(p) != tag::EMPTY) as u64) << p);
        let at = |o: u64| off.wrapping_add(o);
        self.write(seg, at(0), 8, x.fcw as u64 | (x.fsw as u64) << 16 | abridged << 32 | (x.fop as u64) << 48)?;
        let cs = self.c.st.seg[Seg::Cs as usize].selector as u64;
        let ds = self.c.st.seg[Seg::Ds as usize].selector as u64;
        if wide {
            self.write(seg, at(8), 8, x.fip)?;
            self.write(seg, at(16), 8, x.fdp)?;
        } else {
            self.write(seg, at(8), 8, (x.fip & 0xffff_ffff) | cs << 32)?;
            self.write(seg, at(16), 8, (x.fdp & 0xffff_ffff) | ds << 32)?;
        }
        for i in 0..8 {
            let mut b = [0u8; 16];
            b[..10].copy_from_slice(&x.regs[self.phys(i)]);
            self.write_bytes(seg, at(FXSAVE_ST + 16 * i as u64), &b)?;
        }
        Ok(())
    }

    /// Writes MXCSR and MXCSR_MASK (bytes 24-31 of the legacy area).
    pub(super) fn save_mxcsr_image(&mut self, seg: Seg, off: u64) -> R<()> {
        self.write(seg, off.wrapping_add(24), 8, self.c.st.sse.mxcsr as u64 | (mxcsr::WRITABLE as u64) << 32)
    }

    /// Writes XMM0-XMM15 (XMM0-XMM7 outside 64-bit mode) at bytes 160-415.
    pub(super) fn save_xmm_image(&mut self, seg: Seg, off: u64) -> R<()> {
        let n = if self.c.st.long64() { 16 } else { 8 };
        for i in 0..n {
            let v = self.c.st.sse.xmm[i];
            self.write(seg, off.wrapping_add(FXSAVE_XMM + 16 * i as u64), 8, v[0])?;
            self.write(seg, off.wrapping_add(FXSAVE_XMM + 16 * i as u64 + 8), 8, v[1])?;
        }
        Ok(())
    }

    /// FXRSTOR/FXRSTOR64: reloads the image (#GP(0) for reserved MXCSR bits before
    /// anything changes); full tags are rebuilt from the abridged tag and the values.
    fn fxrstor(&mut self, ins: &Instruction) -> R<()> {
        let (seg, off) = self.fxsave_area(ins, Acc::Read)?;
        let csr = self.read_mxcsr_image(seg, off)?;
        let x87 = self.read_x87_image(seg, off)?;
        let xmm = self.read_xmm_image(seg, off)?;
        self.load_x87_image(&x87, ins.mnemonic() == M::Fxrstor64);
        self.c.st.sse.mxcsr = csr;
        self.c.st.sse.xmm = xmm;
        Ok(())
    }

    /// Reads MXCSR from the legacy area (#GP(0) for reserved bits).
    pub(super) fn read_mxcsr_image(&mut self, seg: Seg, off: u64) -> R<u32> {
        let csr = self.read(seg, off.wrapping_add(24), 4)? as u32;
        if csr & !mxcsr::WRITABLE != 0 {
            return Err(Fault::gp(0));
        }
        Ok(csr)
    }

    /// Reads the x87 part of the legacy area, changing nothing.
    pub(super) fn read_x87_image(&mut self, seg: Seg, off: u64) -> R<X87Image> {
        let at = |o: u64| off.wrapping_add(o);
        let mut img = X87Image {
            w0: self.read(seg, at(0), 8)?,
            ip: self.read(seg, at(8), 8)?,
            dp: self.read(seg, at(16), 8)?,
            regs: [[0u8; 10]; 8],
        };
        for (i, r) in img.regs.iter_mut().enumerate() {
            self.read_bytes(seg, at(FXSAVE_ST + 16 * i as u64), r)?;
        }
        Ok(img)
    }

    /// The XMM registers with XMM0-XMM15 (XMM0-XMM7 outside 64-bit mode) read from the
    /// legacy area.
    pub(super) fn read_xmm_image(&mut self, seg: Seg, off: u64) -> R<[[u64; 2]; 16]> {
        let n = if self.c.st.long64() { 16 } else { 8 };
        let mut xmm = self.c.st.sse.xmm;
        for (i, v) in xmm.iter_mut().enumerate().take(n) {
            let at = off.wrapping_add(FXSAVE_XMM + 16 * i as u64);
            *v = [self.read(seg, at, 8)?, self.read(seg, at.wrapping_add(8), 8)?];
        }
        Ok(xmm)
    }

    /// Loads an x87 image: full tags are rebuilt from the abridged tag and the values;
    /// `wide` keeps 64-bit FIP/FDP.
    pub(super) fn load_x87_image(&mut self, img: &X87Image, wide: bool) {
        let (w0, ip, dp, st_regs) = (img.w0, img.ip, img.dp, img.regs);
        let x = &mut self.c.st.x87;
        x.fcw = w0 as u16 | 0x40;
        x.fsw = (w0 >> 16) as u16;
        x.fop = (w0 >> 48) as u16 & 0x7ff;
        x.fip = if wide { ip } else { ip & 0xffff_ffff };
        x.fdp = if wide { dp } else { dp & 0xffff_ffff };
        let abridged = (w0 >> 32) as u8;
        let top = self.top();
        for (i, r) in st_regs.iter().enumerate() {
            let p = (top + i) & 7;
            self.c.st.x87.regs[p] = *r;
        }
        for p in 0..8 {
            let t = if abridged >> p & 1 == 0 { tag::EMPTY } else { tag_of(bits_of(&self.c.st.x87.regs[p])) };
            self.set_phys_tag(p, t);
        }
        self.refresh_es();
    }
}

/// The x87 part of an FXSAVE/XSAVE legacy area as read from memory.
pub(super) struct X87Image {
    /// FCW, FSW, abridged FTW, FOP.
    w0: u64,
    /// FIP (and FCS in the 32-bit format).
    ip: u64,
    /// FDP (and FDS in the 32-bit format).
    dp: u64,
    /// ST(0)-ST(7).
    regs: [[u8; 10]; 8],
}

/// The 80-bit encoding held in a register image.
fn bits_of(r: &[u8; 10]) -> u128 {
    let mut w = [0u8; 16];
    w[..10].copy_from_slice(r);
    u128::from_le_bytes(w)
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use crate::interp::state::{cr0, cr4};
    use crate::interp::test_util::Machine;
    use iced_x86::code_asm::*;
    use std::arch::asm;

    /// Host FXSAVE/FNSAVE images after `fninit; fld1; fldpi; fldz; fdiv st1,st0` style
    /// setup, compared with the guest's, skipping the instruction/data pointers and the
    /// last opcode (which depend on where the code ran).
    #[test]
    fn fxsave_and_fnsave_images_match_the_host() {
        let mut host_fx = [0u8; 512 + 16];
        let mut host_sv = [0u8; 108];
        let off = host_fx.as_ptr().align_offset(16);
        let cw: u16 = 0x0b7e;
        let csr: u32 = 0x3f80 | 0x40;
        // SAFETY: the asm writes a 512-byte FXSAVE image at a 16-byte aligned pointer
        // inside `host_fx` and a 108-byte FNSAVE image into `host_sv`; it restores MXCSR,
        // ends with FNINIT (FNSAVE also reinitialises) and declares the x87 registers
        // clobbered.
        unsafe {
            asm!(
                "sub rsp, 8", "stmxcsr [rsp]", "ldmxcsr [{csr}]",
                "fninit", "fldcw [{cw}]", "fld1", "fldpi", "fldz", "fdiv st(1), st", "fxch st(2)",
                "fxsave [{fx}]", "fnsave [{sv}]", "fninit",
                "ldmxcsr [rsp]", "add rsp, 8",
                csr = in(reg) &csr, cw = in(reg) &cw, fx = in(reg) host_fx.as_mut_ptr().add(off),
                sv = in(reg) host_sv.as_mut_ptr(),
                out("st(0)") _, out("st(1)") _, out("st(2)") _, out("st(3)") _,
                out("st(4)") _, out("st(5)") _, out("st(6)") _, out("st(7)") _,
            );
        }
        let host_fx = &host_fx[off..off + 512];
        let mut a = CodeAssembler::new(64).unwrap();
        a.ldmxcsr(dword_ptr(0x20000)).unwrap();
        a.fninit().unwrap();
        a.fldcw(word_ptr(0x20004)).unwrap();
        a.fld1().unwrap();
        a.fldpi().unwrap();
        a.fldz().unwrap();
        a.fdiv_2(st1, st0).unwrap();
        a.fxch(st0, st2).unwrap();
        a.fxsave(zmmword_ptr(0x21000)).unwrap();
        a.fnsave(zmmword_ptr(0x22000)).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::long64(&mut a);
        m.cpu.state_mut().cr4 |= cr4::OSFXSR;
        m.poke(0x20000, &csr.to_le_bytes());
        m.poke(0x20004, &cw.to_le_bytes());
        m.run();
        let fx: [u8; 512] = m.peek(0x21000);
        // FCW FSW FTW (bytes 0-5), MXCSR and MXCSR_MASK (24-31), ST0-ST7 (32-159).
        assert_eq!(fx[..6], host_fx[..6], "FCW FSW abridged FTW");
        assert_eq!(fx[24..28], host_fx[24..28], "MXCSR");
        // MXCSR_MASK is model-specific (hosts may add bits such as AMD's MM); this model
        // reports every defined bit 0-15 (DAZ included).
        assert_eq!(fx[28..32], [0xff, 0xff, 0, 0], "MXCSR_MASK");
        for i in 0..8 {
            let r = 32 + 16 * i;
            assert_eq!(fx[r..r + 10], host_fx[r..r + 10], "ST({i})");
        }
        let sv: [u8; 108] = m.peek(0x22000);
        assert_eq!(sv[..2], host_sv[..2], "FNSAVE FCW");
        assert_eq!(sv[4..6], host_sv[4..6], "FNSAVE FSW");
        assert_eq!(sv[8..10], host_sv[8..10], "FNSAVE full tag word");
        assert_eq!(sv[28..], host_sv[28..], "FNSAVE registers");
        assert_eq!(m.cpu.state().x87.ftw, 0xffff, "FNSAVE reinitialises");
    }

    #[test]
    fn fxrstor_and_frstor_round_trip_and_reserved_mxcsr_faults() {
        let mut a = CodeAssembler::new(32).unwrap();
        a.fninit().unwrap();
        a.fld1().unwrap();
        a.fldpi().unwrap();
        a.fxsave(zmmword_ptr(0x21000)).unwrap();
        a.fnsave(zmmword_ptr(0x22000)).unwrap();
        a.frstor(zmmword_ptr(0x22000)).unwrap();
        a.fstp(tword_ptr(0x23000)).unwrap();
        a.fninit().unwrap();
        a.fxrstor(zmmword_ptr(0x21000)).unwrap();
        a.fstp(tword_ptr(0x23010)).unwrap();
        a.fstp(tword_ptr(0x23020)).unwrap();
        a.fnstsw(ax).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::protected32(&mut a);
        m.cpu.state_mut().cr4 |= cr4::OSFXSR;
        m.run();
        let pi: [u8; 10] = m.peek(0x23000);
        assert_eq!(pi, [0x35, 0xc2, 0x68, 0x21, 0xa2, 0xda, 0x0f, 0xc9, 0x00, 0x40]);
        assert_eq!(m.peek::<10>(0x23010), pi);
        assert_eq!(m.peek::<10>(0x23020), [0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x3f]);
        assert_eq!(m.gpr(0) & 0xffff, 0, "TOP back to 0, no exceptions");

        let mut a = CodeAssembler::new(32).unwrap();
        a.fxrstor(zmmword_ptr(0x21000)).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::protected32(&mut a);
        m.poke(0x21000 + 24, &0x0001_0000u32.to_le_bytes());
        let _ = m.cpu.step(&m.p);
        assert_eq!(m.cpu.last_exception.map(|e| e.0), Some(13));
    }

    #[test]
    fn ts_and_em_raise_nm_and_wait_needs_mp() {
        let mut a = CodeAssembler::new(32).unwrap();
        a.fld1().unwrap();
        a.hlt().unwrap();
        for bits in [cr0::TS, cr0::EM] {
            let mut m = Machine::protected32(&mut a);
            m.cpu.state_mut().cr0 |= bits;
            let _ = m.cpu.step(&m.p);
            assert_eq!(m.cpu.last_exception.map(|e| e.0), Some(7));
        }
        let mut a = CodeAssembler::new(32).unwrap();
        a.wait().unwrap();
        a.hlt().unwrap();
        let mut m = Machine::protected32(&mut a);
        m.cpu.state_mut().cr0 |= cr0::TS;
        m.run();
        assert_eq!(m.cpu.last_exception, None, "WAIT ignores TS without MP");
        let mut m = Machine::protected32(&mut a);
        m.cpu.state_mut().cr0 |= cr0::TS | cr0::MP;
        let _ = m.cpu.step(&m.p);
        assert_eq!(m.cpu.last_exception.map(|e| e.0), Some(7));
    }

    #[test]
    fn unmasked_zero_divide_is_reported_as_mf_on_the_next_instruction() {
        let mut a = CodeAssembler::new(32).unwrap();
        a.fninit().unwrap();
        a.fldcw(word_ptr(0x20000)).unwrap();
        a.fld1().unwrap();
        a.fldz().unwrap();
        a.fdivp(st1, st0).unwrap();
        a.fnstsw(ax).unwrap();
        a.wait().unwrap();
        a.hlt().unwrap();
        let mut m = Machine::protected32(&mut a);
        m.cpu.state_mut().cr0 |= cr0::NE;
        m.poke(0x20000, &0x037bu16.to_le_bytes());
        for _ in 0..7 {
            let _ = m.cpu.step(&m.p);
        }
        // ZE|ES|B set, the destination kept (ST0 still 0, nothing popped: TOP=6).
        assert_eq!(m.gpr(0) & 0xffff, 0x8000 | (6 << 11) | 0x80 | 0x04);
        assert_eq!(m.cpu.last_exception.map(|e| e.0), Some(16));
    }

    #[test]
    fn stack_overflow_pushes_the_indefinite_with_c1() {
        let mut a = CodeAssembler::new(32).unwrap();
        a.fninit().unwrap();
        for _ in 0..9 {
            a.fld1().unwrap();
        }
        a.fnstsw(ax).unwrap();
        a.fstp(tword_ptr(0x23000)).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::protected32(&mut a);
        m.run();
        // IE|SF|C1, TOP=7 after 9 pushes (the 9th wrapped onto a full register).
        assert_eq!(m.gpr(0) & 0xffff, (7 << 11) | 0x0200 | 0x41);
        assert_eq!(m.peek::<10>(0x23000), [0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0xff]);
    }
}
