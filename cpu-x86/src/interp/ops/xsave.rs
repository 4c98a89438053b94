//! XSAVE-managed state (SDM Vol. 1 Chapter 13; Vol. 2 "XGETBV", "XSETBV", "XSAVE",
//! "XSAVEOPT", "XSAVEC", "XRSTOR"): XCR0, XGETBV (ECX = 0 and, where the model has
//! XGETBV1, ECX = 1) and XSETBV, XSAVE and XSAVEOPT (standard format), XSAVEC (compacted
//! format) and XRSTOR of both formats, for the three components rx86 has: x87 (0) and
//! SSE (1), both in the FXSAVE legacy region (512 bytes), and, on models with AVX, AVX
//! (2: the upper halves of YMM0-YMM15, 256 bytes at offset 576 in both formats, since it
//! is the first extended component). CPUID leaf 0xD reports 576 bytes, or 832 with AVX.
//! Every component counts as in use (XINUSE = 1, which the SDM allows), so XSAVEOPT
//! saves what XSAVE saves and XGETBV(1) reads XCR0. Outside 64-bit mode only registers
//! 0-7 are saved and loaded, as for the XMM registers. The supervisor forms (XSAVES,
//! XRSTORS) are not reported (#UD).

use crate::interp::cpu::Ctx;
use crate::interp::fault::{vec, Fault, R};
use crate::interp::mmu::Acc;
use crate::interp::state::{cr0, cr4, Seg, SseState, X87State};
use iced_x86::{Instruction, Mnemonic as M, OpKind};

/// XCR0 bit 0: x87 state.
pub const XCR0_X87: u64 = 1 << 0;
/// XCR0 bit 1: SSE state (XMM registers and MXCSR).
pub const XCR0_SSE: u64 = 1 << 1;
/// XCR0 bit 2: AVX state (the upper halves of the YMM registers).
pub const XCR0_AVX: u64 = 1 << 2;
/// Size of the XSAVE area's legacy region and header, all x87 and SSE need.
pub const XSAVE_LEGACY_SIZE: u32 = 576;
/// Offset of the AVX component (YMM_Hi128) in the standard and the compacted format.
pub const XSAVE_AVX_OFFSET: u32 = 576;
/// Size of the AVX component: 16 registers of 16 bytes.
pub const XSAVE_AVX_SIZE: u32 = 256;

/// Size of an XSAVE area holding the components in `xcr0` (standard and compacted
/// formats alike, as AVX is the only extended component).
pub fn xsave_size(xcr0: u64) -> u32 {
    if xcr0 & XCR0_AVX != 0 {
        XSAVE_AVX_OFFSET + XSAVE_AVX_SIZE
    } else {
        XSAVE_LEGACY_SIZE
    }
}
/// Offset of the XSAVE header (XSTATE_BV, then XCOMP_BV).
const HEADER: u64 = 512;

/// XCOMP_BV bit 63: the area is in the compacted format.
const COMPACTED: u64 = 1 << 63;

/// True for the instructions of this group.
pub(super) fn is_xsave(m: M) -> bool {
    matches!(
        m,
        M::Xgetbv
            | M::Xsetbv
            | M::Xsave
            | M::Xsave64
            | M::Xsaveopt
            | M::Xsaveopt64
            | M::Xsavec
            | M::Xsavec64
            | M::Xrstor
            | M::Xrstor64
    )
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
                // ECX = 1 reads XCR0 & XINUSE, which is XCR0 here.
                if ecx > 1 || (ecx == 1 && !self.c.st.model.has_xgetbv1()) {
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
                    || edx_eax & !self.c.st.model.xcr0_supported() != 0
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
                let wide = matches!(m, M::Xsave64 | M::Xsaveopt64 | M::Xsavec64 | M::Xrstor64);
                if matches!(m, M::Xrstor | M::Xrstor64) {
                    let (seg, off) = self.xsave_area(ins, rfbm, Acc::Read)?;
                    self.xrstor(seg, off, rfbm, wide)
                } else {
                    let (seg, off) = self.xsave_area(ins, rfbm, Acc::Write)?;
                    self.xsave(seg, off, rfbm, wide, matches!(m, M::Xsavec | M::Xsavec64))
                }
            }
        }
    }

    /// The XSAVE area operand for the components in `rfbm`: 64-byte aligned (#GP(0)),
    /// all of it addressable.
    fn xsave_area(&mut self, ins: &Instruction, rfbm: u64, acc: Acc) -> R<(Seg, u64)> {
        let (seg, off) = self.ea(ins);
        let lin = self.linear(seg, off, 8, acc)?;
        if lin & 63 != 0 {
            return Err(Fault::gp(0));
        }
        let last = off.wrapping_add(xsave_size(rfbm) as u64 - 8);
        self.linear(seg, last, 8, acc)?;
        if acc == Acc::Write {
            self.probe_write(seg, off, 8)?;
            self.probe_write(seg, last, 8)?;
        }
        Ok((seg, off))
    }

    /// XSAVE/XSAVEOPT: the components in `rfbm`, then XSTATE_BV's bits for them set
    /// (its other bits, and the rest of the header, unchanged). XSAVEC (`compacted`):
    /// XSTATE_BV = `rfbm` and XCOMP_BV = bit 63 | `rfbm` (the rest of the header
    /// unchanged); MXCSR goes with SSE only.
    fn xsave(&mut self, seg: Seg, off: u64, rfbm: u64, wide: bool, compacted: bool) -> R<()> {
        if rfbm & XCR0_X87 != 0 {
            self.save_x87_image(seg, off, wide)?;
        }
        let mxcsr_with = if compacted { XCR0_SSE } else { XCR0_SSE | XCR0_AVX };
        if rfbm & mxcsr_with != 0 {
            self.save_mxcsr_image(seg, off)?;
        }
        if rfbm & XCR0_SSE != 0 {
            self.save_xmm_image(seg, off)?;
        }
        if rfbm & XCR0_AVX != 0 {
            self.save_ymm_hi(seg, off)?;
        }
        if compacted {
            self.write(seg, off.wrapping_add(HEADER), 8, rfbm)?;
            return self.write(seg, off.wrapping_add(HEADER + 8), 8, COMPACTED | rfbm);
        }
        let bv = self.read(seg, off.wrapping_add(HEADER), 8)?;
        self.write(seg, off.wrapping_add(HEADER), 8, bv | rfbm)
    }

    /// XRSTOR, before anything changes: #GP(0) for XSTATE_BV bits outside XCR0 or
    /// reserved MXCSR bits, and, in the standard form (XCOMP_BV bit 63 clear), for
    /// non-zero header bytes 8-23; in the compacted form (on models with XSAVEC) for
    /// XCOMP_BV bits outside XCR0, XSTATE_BV bits outside XCOMP_BV or non-zero header
    /// bytes 16-63. Each component in `rfbm` is loaded when its XSTATE_BV bit is set and
    /// put in its initial state otherwise. The standard form loads MXCSR whenever SSE (or
    /// AVX) is requested; the compacted form only with the SSE component, which it
    /// otherwise initialises to 1F80H.
    fn xrstor(&mut self, seg: Seg, off: u64, rfbm: u64, wide: bool) -> R<()> {
        let at = |o: u64| off.wrapping_add(HEADER + o);
        let bv = self.read(seg, at(0), 8)?;
        let comp = self.read(seg, at(8), 8)?;
        let compacted = comp & COMPACTED != 0;
        let xcr0 = self.c.st.xcr0;
        let bad = if compacted {
            let mut rest = 0;
            for o in (16..64).step_by(8) {
                rest |= self.read(seg, at(o), 8)?;
            }
            !self.c.st.model.has_xsavec() || comp & !COMPACTED & !xcr0 != 0 || bv & !comp != 0 || rest != 0
        } else {
            comp != 0 || self.read(seg, at(16), 8)? != 0
        };
        if bad || bv & !xcr0 != 0 {
            return Err(Fault::gp(0));
        }
        let mxcsr_from_memory = if compacted { rfbm & bv & XCR0_SSE != 0 } else { rfbm & (XCR0_SSE | XCR0_AVX) != 0 };
        let csr = if mxcsr_from_memory {
            Some(self.read_mxcsr_image(seg, off)?)
        } else if compacted && rfbm & XCR0_SSE != 0 {
            Some(SseState::default().mxcsr)
        } else {
            None
        };
        let load = rfbm & bv;
        let x87 = if load & XCR0_X87 != 0 { Some(self.read_x87_image(seg, off)?) } else { None };
        let xmm = if load & XCR0_SSE != 0 { Some(self.read_xmm_image(seg, off)?) } else { None };
        let ymm_hi = if load & XCR0_AVX != 0 { Some(self.read_ymm_hi(seg, off)?) } else { None };
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
        if rfbm & XCR0_AVX != 0 {
            let n = self.ymm_count();
            match ymm_hi {
                Some(y) => self.c.st.ymm_hi = y,
                None => self.c.st.ymm_hi[..n].fill([0; 2]),
            }
        }
        if let Some(c) = csr {
            self.c.st.sse.mxcsr = c;
        }
        Ok(())
    }

    /// The number of vector registers XSAVE covers: 16 in 64-bit mode, else 8.
    fn ymm_count(&self) -> usize {
        if self.c.st.long64() {
            16
        } else {
            8
        }
    }

    /// Writes the upper halves of the YMM registers (the AVX component).
    fn save_ymm_hi(&mut self, seg: Seg, off: u64) -> R<()> {
        for i in 0..self.ymm_count() {
            let v = self.c.st.ymm_hi[i];
            let at = off.wrapping_add(XSAVE_AVX_OFFSET as u64 + 16 * i as u64);
            self.write(seg, at, 8, v[0])?;
            self.write(seg, at.wrapping_add(8), 8, v[1])?;
        }
        Ok(())
    }

    /// Reads the AVX component: the registers it covers from memory, the rest unchanged.
    fn read_ymm_hi(&mut self, seg: Seg, off: u64) -> R<[[u64; 2]; 16]> {
        let mut hi = self.c.st.ymm_hi;
        for (i, v) in hi.iter_mut().enumerate().take(self.ymm_count()) {
            let at = off.wrapping_add(XSAVE_AVX_OFFSET as u64 + 16 * i as u64);
            *v = [self.read(seg, at, 8)?, self.read(seg, at.wrapping_add(8), 8)?];
        }
        Ok(hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::fault::vec;
    use crate::interp::model::CpuModel;
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
        for (value, index) in [(5u32, 0u32), (2, 0), (3, 1), (1 | 1 << 9, 0), (7 | 1 << 3, 0)] {
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

    /// A machine (with `model`) that has run `XSETBV(3)` and then `body`, stopped at the
    /// first HLT or exception; instructions run: `steps`.
    fn after_xsetbv(model: CpuModel, steps: usize, body: impl Fn(&mut CodeAssembler)) -> Machine {
        let mut a = CodeAssembler::new(64).unwrap();
        a.mov(eax, 3).unwrap();
        a.xor(edx, edx).unwrap();
        a.xor(ecx, ecx).unwrap();
        a.xsetbv().unwrap();
        body(&mut a);
        a.hlt().unwrap();
        let mut m = machine(&mut a);
        m.cpu.set_cpu_model(model);
        for _ in 0..4 + steps {
            let _ = m.cpu.step(&m.p);
        }
        m
    }

    #[test]
    fn xsavec_writes_the_compacted_header_and_xrstor_takes_it_back() {
        let m = after_xsetbv(CpuModel::Max, 11, |a| {
            a.fld1().unwrap();
            a.fxsave64(ptr(0x20000)).unwrap();
            // Header bytes 16-63 are not XSAVEC's: they stay as they are.
            a.mov(qword_ptr(0x21210), 0x55).unwrap();
            a.mov(eax, 3).unwrap();
            a.xsavec64(ptr(0x21000)).unwrap();
            a.mov(qword_ptr(0x21210), 0).unwrap();
            // Restore with SSE in its initial state: XMM zeroed, MXCSR 1F80H.
            a.mov(qword_ptr(0x21200), 1).unwrap();
            a.mov(dword_ptr(0x21018), 0x7f80).unwrap();
            a.xrstor64(ptr(0x21000)).unwrap();
            a.xor(ecx, ecx).unwrap();
            a.inc(ecx).unwrap();
            a.xgetbv().unwrap();
        });
        let fx: [u8; 416] = m.peek(0x20000);
        let xs: [u8; 416] = m.peek(0x21000);
        assert_ne!(fx[24..28], 0x7f80u32.to_le_bytes());
        assert_eq!(fx[..24], xs[..24]);
        assert_eq!(fx[32..], xs[32..], "x87 registers and XMM as FXSAVE writes them");
        assert_eq!(u64::from_le_bytes(m.peek(0x21208)), 1 << 63 | 3, "XCOMP_BV");
        let st = m.cpu.state();
        assert_eq!(st.sse.xmm[3], [0, 0]);
        assert_eq!(st.sse.mxcsr, 0x1f80, "the compacted form initialises MXCSR with SSE");
        assert_eq!(st.x87.fsw >> 11 & 7, 7, "x87 loaded: one value pushed (TOP = 7)");
        assert_eq!((m.gpr(0), m.gpr(2)), (3, 0), "XGETBV(1): XCR0 & XINUSE");
        assert_eq!(m.cpu.last_exception, None);
    }

    #[test]
    fn compacted_xrstor_checks_the_header_and_needs_xsavec() {
        for (model, rest, fault) in
            [(CpuModel::Max, 0u64, false), (CpuModel::Max, 1, true), (CpuModel::X86_64V3, 0, true)]
        {
            let m = after_xsetbv(model, 4, |a| {
                a.mov(rax, 1u64 << 63 | 3).unwrap();
                a.mov(qword_ptr(0x21208), rax).unwrap();
                a.mov(qword_ptr(0x21238), rest as i32).unwrap();
                a.xrstor64(ptr(0x21000)).unwrap();
            });
            let gp = m.cpu.last_exception == Some((vec::GP, Some(0)));
            assert_eq!(gp, fault, "{model:?} with header bytes {rest:#x}");
        }
        // XGETBV(1) needs XGETBV1.
        let m = after_xsetbv(CpuModel::X86_64V3, 3, |a| {
            a.mov(ecx, 1).unwrap();
            a.xgetbv().unwrap();
        });
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

    #[test]
    fn the_avx_component_is_saved_at_576_and_restored_or_initialised() {
        let mut a = CodeAssembler::new(64).unwrap();
        // CPUID.(0DH,0):EBX before and after enabling AVX state.
        a.mov(eax, 0xd).unwrap();
        a.xor(ecx, ecx).unwrap();
        a.cpuid().unwrap();
        a.mov(esi, ebx).unwrap();
        a.mov(eax, 7).unwrap();
        a.xor(edx, edx).unwrap();
        a.xor(ecx, ecx).unwrap();
        a.xsetbv().unwrap();
        a.mov(eax, 0xd).unwrap();
        a.cpuid().unwrap();
        a.mov(edi, ebx).unwrap();
        a.mov(eax, u32::MAX).unwrap();
        a.mov(edx, u32::MAX).unwrap();
        a.xsave64(ptr(0x21000)).unwrap();
        a.xsavec64(ptr(0x22000)).unwrap();
        a.vzeroupper().unwrap();
        a.xrstor64(ptr(0x21000)).unwrap();
        a.vmovdqu(ptr(0x23000), ymm5).unwrap();
        // XSTATE_BV without bit 2: the upper halves go to their initial state (zero).
        a.mov(qword_ptr(0x21200), 3).unwrap();
        a.xrstor64(ptr(0x21000)).unwrap();
        a.vmovdqu(ptr(0x23020), ymm5).unwrap();
        a.hlt().unwrap();
        let mut m = machine(&mut a);
        m.cpu.state_mut().sse.xmm[5] = [0x11, 0x22];
        m.cpu.state_mut().ymm_hi[5] = [0x1234, 0x5678];
        m.run();
        assert_eq!((m.gpr(6), m.gpr(7)), (576, 832), "the XSAVE area size follows XCR0");
        for (area, what) in [(0x21000u64, "XSAVE"), (0x22000, "XSAVEC")] {
            let hi: [u8; 16] = m.peek(area + 576 + 5 * 16);
            assert_eq!(hi[..8], 0x1234u64.to_le_bytes(), "{what}: YMM5[191:128]");
            assert_eq!(hi[8..], 0x5678u64.to_le_bytes(), "{what}: YMM5[255:192]");
        }
        assert_eq!(u64::from_le_bytes(m.peek(0x22208)), 1 << 63 | 7, "XCOMP_BV");
        let restored: [u8; 32] = m.peek(0x23000);
        assert_eq!(restored[16..24], 0x1234u64.to_le_bytes(), "XRSTOR brought the upper half back");
        let initialised: [u8; 32] = m.peek(0x23020);
        assert_eq!(initialised[16..], [0; 16], "XSTATE_BV[2] clear initialises it");
        assert_eq!(initialised[..8], 0x11u64.to_le_bytes(), "the XMM half is the SSE component's");
    }
}
