//! XSAVE-managed state (SDM Vol. 1 Chapter 13; Vol. 2 "XGETBV", "XSETBV", "XSAVE",
//! "XSAVEOPT", "XRSTOR"): XCR0, XGETBV and XSETBV, and the standard-form XSAVE, XSAVEOPT
//! and XRSTOR of the two components rx86 has, x87 (0) and SSE (1). The area is the
//! FXSAVE legacy region (512 bytes) and the 64-byte XSAVE header; CPUID leaf 0xD reports
//! those 576 bytes. Every component counts as in use (XINUSE = 1, which the SDM allows),
//! so XSAVEOPT saves what XSAVE saves. The compacted and supervisor forms (XSAVEC,
//! XSAVES, XRSTORS) and XGETBV with ECX = 1 are not reported and raise #UD or #GP.

use crate::interp::cpu::Ctx;
use crate::interp::fault::{vec, Fault, R};
use crate::interp::mmu::Acc;
use crate::interp::state::{cr0, cr4, Seg, X87State};
use iced_x86::{Instruction, Mnemonic as M, OpKind};

/// XCR0 bit 0: x87 state.
pub const XCR0_X87: u64 = 1 << 0;
/// XCR0 bit 1: SSE state (XMM registers and MXCSR).
pub const XCR0_SSE: u64 = 1 << 1;
/// XCR0 bit 2: AVX state (the upper halves of the YMM registers; not implemented).
pub const XCR0_AVX: u64 = 1 << 2;
/// The XCR0 bits XSETBV accepts.
pub const XCR0_SUPPORTED: u64 = XCR0_X87 | XCR0_SSE;
/// Size of the XSAVE area for every supported XCR0: the legacy region and the header.
pub const XSAVE_AREA_SIZE: u32 = 576;
/// Offset of the XSAVE header (XSTATE_BV, then XCOMP_BV).
const HEADER: u64 = 512;

/// True for the instructions of this group.
pub(super) fn is_xsave(m: M) -> bool {
    matches!(m, M::Xgetbv | M::Xsetbv | M::Xsave | M::Xsave64 | M::Xsaveopt | M::Xsaveopt64 | M::Xrstor | M::Xrstor64)
}

impl Ctx<'_> {
    /// XGETBV, XSETBV, XSAVE, XSAVEOPT and XRSTOR: #UD without CR4.OSXSAVE.
    pub(super) fn xsave_op(&mut self, ins: &Instruction) -> R<()> {
        if self.c.st.cr4 & cr4::OSXSAVE == 0 {
            return Err(Fault::ud());
        }
        let ecx = self.c.st.gpr[1] as u32;
        let edx_eax = (self.c.st.gpr[2] & 0xffff_ffff) << 32 | (self.c.st.gpr[0] & 0xffff_ffff);
        match ins.mnemonic() {
            M::Xgetbv => {
                if ecx != 0 {
                    return Err(Fault::gp(0));
                }
                let v = self.c.st.xcr0;
                self.set_gpr(0, 4, v & 0xffff_ffff);
                self.set_gpr(2, 4, v >> 32);
                Ok(())
            }
            M::Xsetbv => {
                // CPL 0 only; XCR0 alone; x87 always on; only supported components; AVX
                // only with SSE.
                let bad = self.c.st.cpl != 0
                    || ecx != 0
                    || edx_eax & XCR0_X87 == 0
                    || edx_eax & !XCR0_SUPPORTED != 0
                    || (edx_eax & XCR0_AVX != 0 && edx_eax & XCR0_SSE == 0);
                if bad {
                    return Err(Fault::gp(0));
                }
                self.c.st.xcr0 = edx_eax;
                Ok(())
            }
            m => {
                if ins.op0_kind() != OpKind::Memory {
                    return Err(Fault::ud());
                }
                if self.c.st.cr0 & cr0::TS != 0 {
                    return Err(Fault::exc(vec::NM));
                }
                let rfbm = self.c.st.xcr0 & edx_eax;
                let wide = matches!(m, M::Xsave64 | M::Xsaveopt64 | M::Xrstor64);
                if matches!(m, M::Xrstor | M::Xrstor64) {
                    let (seg, off) = self.xsave_area(ins, Acc::Read)?;
                    self.xrstor(seg, off, rfbm, wide)
                } else {
                    let (seg, off) = self.xsave_area(ins, Acc::Write)?;
                    self.xsave(seg, off, rfbm, wide)
                }
            }
        }
    }

    /// The XSAVE area operand: 64-byte aligned (#GP(0)), all of it addressable.
    fn xsave_area(&mut self, ins: &Instruction, acc: Acc) -> R<(Seg, u64)> {
        let (seg, off) = self.ea(ins);
        let lin = self.linear(seg, off, 8, acc)?;
        if lin & 63 != 0 {
            return Err(Fault::gp(0));
        }
        let last = off.wrapping_add(XSAVE_AREA_SIZE as u64 - 8);
        self.linear(seg, last, 8, acc)?;
        if acc == Acc::Write {
            self.probe_write(seg, off, 8)?;
            self.probe_write(seg, last, 8)?;
        }
        Ok((seg, off))
    }

    /// XSAVE/XSAVEOPT: the components in `rfbm`, then XSTATE_BV's bits for them set
    /// (its other bits, and the rest of the header, unchanged).
    fn xsave(&mut self, seg: Seg, off: u64, rfbm: u64, wide: bool) -> R<()> {
        if rfbm & XCR0_X87 != 0 {
            self.save_x87_image(seg, off, wide)?;
        }
        if rfbm & (XCR0_SSE | XCR0_AVX) != 0 {
            self.save_mxcsr_image(seg, off)?;
        }
        if rfbm & XCR0_SSE != 0 {
            self.save_xmm_image(seg, off)?;
        }
        let bv = self.read(seg, off.wrapping_add(HEADER), 8)?;
        self.write(seg, off.wrapping_add(HEADER), 8, bv | rfbm)
    }

    /// XRSTOR (standard form): #GP(0) for XSTATE_BV bits outside XCR0, non-zero header
    /// bytes 8-23 (XCOMP_BV: the compacted form is not supported) or reserved MXCSR bits,
    /// before anything changes. Each component in `rfbm` is loaded when its XSTATE_BV
    /// bit is set and put in its initial state otherwise; MXCSR is loaded with SSE.
    fn xrstor(&mut self, seg: Seg, off: u64, rfbm: u64, wide: bool) -> R<()> {
        let bv = self.read(seg, off.wrapping_add(HEADER), 8)?;
        let reserved =
            self.read(seg, off.wrapping_add(HEADER + 8), 8)? | self.read(seg, off.wrapping_add(HEADER + 16), 8)?;
        if bv & !self.c.st.xcr0 != 0 || reserved != 0 {
            return Err(Fault::gp(0));
        }
        let csr = if rfbm & (XCR0_SSE | XCR0_AVX) != 0 { Some(self.read_mxcsr_image(seg, off)?) } else { None };
        let load = rfbm & bv;
        let x87 = if load & XCR0_X87 != 0 { Some(self.read_x87_image(seg, off)?) } else { None };
        let xmm = if load & XCR0_SSE != 0 { Some(self.read_xmm_image(seg, off)?) } else { None };
        if rfbm & XCR0_X87 != 0 {
            match x87 {
                Some(img) => self.load_x87_image(&img, wide),
                None => self.c.st.x87 = X87State::default(),
            }
        }
        if rfbm & XCR0_SSE != 0 {
            let n = if self.c.st.long64() { 16 } else { 8 };
            match xmm {
                Some(x) => self.c.st.sse.xmm = x,
                None => self.c.st.sse.xmm[..n].fill([0; 2]),
            }
        }
        if let Some(c) = csr {
            self.c.st.sse.mxcsr = c;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::fault::vec;
    use crate::interp::test_util::Machine;
    use iced_x86::code_asm::*;

    /// A 64-bit machine with SSE and XSAVE enabled running `a` (data at 0x20000).
    fn machine(a: &mut CodeAssembler) -> Machine {
        let mut m = Machine::long64(a);
        m.cpu.state_mut().cr4 |= cr4::OSFXSR | cr4::OSXMMEXCPT | cr4::OSXSAVE;
        m
    }

    #[test]
    fn xsetbv_enables_sse_state_and_xgetbv_reads_it() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.xor(ecx, ecx).unwrap();
        a.xgetbv().unwrap();
        a.mov(esi, eax).unwrap();
        a.mov(eax, 3).unwrap();
        a.xor(edx, edx).unwrap();
        a.xsetbv().unwrap();
        a.xgetbv().unwrap();
        a.hlt().unwrap();
        let mut m = machine(&mut a);
        m.run();
        assert_eq!((m.gpr(6), m.gpr(0), m.gpr(2)), (1, 3, 0));
    }

    #[test]
    fn xsetbv_rejects_unsupported_components_and_xsave_needs_osxsave() {
        for (value, index) in [(7u32, 0u32), (2, 0), (3, 1), (1 | 1 << 9, 0)] {
            let mut a = CodeAssembler::new(64).unwrap();
            a.mov(eax, value).unwrap();
            a.mov(ecx, index).unwrap();
            a.xor(edx, edx).unwrap();
            a.xsetbv().unwrap();
            a.hlt().unwrap();
            let mut m = machine(&mut a);
            for _ in 0..4 {
                let _ = m.cpu.step(&m.p);
            }
            assert_eq!(m.cpu.last_exception, Some((vec::GP, Some(0))), "XCR0 {value:#x} ECX {index}");
            assert_eq!(m.cpu.state().xcr0, 1);
        }
        let mut a = CodeAssembler::new(64).unwrap();
        a.xgetbv().unwrap();
        a.hlt().unwrap();
        let mut m = Machine::long64(&mut a);
        let _ = m.cpu.step(&m.p);
        assert_eq!(m.cpu.last_exception.map(|e| e.0), Some(vec::UD));
    }

    #[test]
    fn xsave_writes_the_fxsave_image_and_the_header_and_xrstor_restores_it() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.mov(eax, 3).unwrap();
        a.xor(edx, edx).unwrap();
        a.xor(ecx, ecx).unwrap();
        a.xsetbv().unwrap();
        a.fld1().unwrap();
        a.fxsave64(ptr(0x20000)).unwrap();
        // XSTATE_BV keeps bits outside RFBM (bit 5 here).
        a.mov(qword_ptr(0x21200), 0x20).unwrap();
        a.mov(eax, u32::MAX).unwrap();
        a.mov(edx, u32::MAX).unwrap();
        a.xsave64(ptr(0x21000)).unwrap();
        // Change everything, then restore.
        a.fninit().unwrap();
        a.pxor(xmm3, xmm3).unwrap();
        a.mov(dword_ptr(0x22000), 0x7f80).unwrap();
        a.ldmxcsr(dword_ptr(0x22000)).unwrap();
        a.mov(qword_ptr(0x21200), 3).unwrap();
        a.xrstor64(ptr(0x21000)).unwrap();
        a.fxsave64(ptr(0x23000)).unwrap();
        a.hlt().unwrap();
        let mut m = machine(&mut a);
        m.cpu.state_mut().sse.xmm[3] = [0x1111, 0x2222];
        m.cpu.state_mut().sse.mxcsr = 0x1fa0;
        m.run();
        let fx: [u8; 512] = m.peek(0x20000);
        let xs: [u8; 512] = m.peek(0x21000);
        // The legacy region is FXSAVE's image; bytes 416-511 are not written by XSAVE.
        assert_eq!(fx[..416], xs[..416]);
        assert_eq!(u64::from_le_bytes(m.peek(0x21200)), 3);
        let restored: [u8; 512] = m.peek(0x23000);
        assert_eq!(fx[..416], restored[..416], "XRSTOR brought back x87, MXCSR and XMM");
        assert_eq!(m.cpu.state().sse.xmm[3], [0x1111, 0x2222]);
    }

    #[test]
    fn xrstor_with_clear_xstate_bv_initialises_and_checks_the_header() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.mov(eax, 3).unwrap();
        a.xor(edx, edx).unwrap();
        a.xor(ecx, ecx).unwrap();
        a.xsetbv().unwrap();
        a.fld1().unwrap();
        // Header all zero: both components to their initial state, MXCSR from memory.
        a.mov(dword_ptr(0x21018), 0x1f80 | 0x6000).unwrap();
        a.xrstor64(ptr(0x21000)).unwrap();
        // XCOMP_BV set: #GP.
        a.mov(qword_ptr(0x21208), 1).unwrap();
        a.xrstor64(ptr(0x21000)).unwrap();
        a.hlt().unwrap();
        let mut m = machine(&mut a);
        m.cpu.state_mut().sse.xmm[9] = [5, 6];
        for _ in 0..9 {
            let _ = m.cpu.step(&m.p);
        }
        let st = m.cpu.state();
        assert_eq!(st.x87.ftw, 0xffff, "x87 in its initial state");
        assert_eq!(st.x87.fcw, 0x37f);
        assert_eq!(st.sse.xmm[9], [0, 0], "XMM registers zeroed");
        assert_eq!(st.sse.mxcsr, 0x7f80, "MXCSR loaded from memory");
        assert_eq!(m.cpu.last_exception, Some((vec::GP, Some(0))));
    }

    #[test]
    fn xsave_needs_64_byte_alignment() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.xsave(ptr(0x21020)).unwrap();
        a.hlt().unwrap();
        let mut m = machine(&mut a);
        let _ = m.cpu.step(&m.p);
        assert_eq!(m.cpu.last_exception, Some((vec::GP, Some(0))));
    }
}
