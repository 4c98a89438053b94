//! AVX plumbing shared by the `avx_*`, `fma` and `f16c` groups (SDM Vol. 1 §14.1-14.3,
//! Vol. 2A §2.3 "Intel AVX and VEX", §2.8 exception classes): the VEX availability
//! checks, YMM registers (bits 127:0 in `sse.xmm`, 255:128 in `ymm_hi`), 128- and 256-bit
//! memory operands, and the VEX dispatch.
//!
//! Most VEX instructions are a legacy SSE instruction with a non-destructive first
//! source, applied to each 128-bit lane (VADDPS, VPSHUFB, VPUNPCKLBW, ...): those run the
//! legacy operation code (`sse_*`, `ssse3`, `sse41`, `aes_clmul`) lane by lane
//! ([`Ctx::avx_lanes`]), with the legacy twin found by name (VADDPS → ADDPS). A VEX.128
//! instruction that writes an XMM register zeroes bits 255:128 of it; a VEX.256 one
//! writes all 256 bits.
//!
//! Checks (SDM Vol. 2A Table 2-21 and following): #UD in real and virtual-8086 mode,
//! without CR4.OSXSAVE, or unless XCR0 enables both SSE and AVX state; #NM with CR0.TS.
//! CR0.EM and CR4.OSFXSR do not apply to VEX. Instructions of features no model reports
//! (VAES, VPCLMULQDQ, AVX-VNNI, ...) raise #UD.

use super::sse::Xmm;
use super::xsave::{XCR0_AVX, XCR0_SSE};
use crate::interp::cpu::Ctx;
use crate::interp::fault::{vec, Fault, R};
use crate::interp::mmu::Acc;
use crate::interp::state::{cr0, cr4};
use iced_x86::{CpuidFeature as F, Instruction, Mnemonic as M, OpKind, Register};
use std::collections::HashMap;
use std::sync::OnceLock;

/// A 256-bit YMM value as two 128-bit lanes, the low lane first.
pub type Ymm = [Xmm; 2];

/// The operands of a VEX vector instruction.
pub(super) struct VexOps {
    /// The destination register (XMM: VEX.128, YMM: VEX.256); `Register::None` when
    /// operand 0 is memory.
    pub dst: Register,
    /// The first source: VEX.vvvv in three-operand forms, else the only source.
    pub a: Ymm,
    /// The second source (ModRM r/m), or the only source.
    pub b: Ymm,
    /// The fourth operand of VBLENDVPS/VBLENDVPD/VPBLENDVB (imm8[7:4]), or zero.
    pub sel: Ymm,
    /// The imm8, or 0.
    pub imm: u8,
    /// True when the instruction has an imm8 operand (the immediate shift forms).
    pub has_imm: bool,
    /// True for 256-bit operation (a YMM destination).
    pub wide: bool,
}

/// The legacy SSE twin of a VEX mnemonic (VADDPS → ADDPS, VPSHUFB → PSHUFB), from
/// iced's mnemonic names; `None` for the instructions AVX introduced.
pub(super) fn legacy_twin(m: M) -> Option<M> {
    static TWINS: OnceLock<Vec<Option<M>>> = OnceLock::new();
    TWINS
        .get_or_init(|| {
            let by_name: HashMap<String, M> = M::values().map(|m| (format!("{m:?}"), m)).collect();
            M::values()
                .map(|m| {
                    let name = format!("{m:?}");
                    let rest = name.strip_prefix('V')?;
                    let mut chars = rest.chars();
                    let first = chars.next()?.to_ascii_uppercase();
                    by_name.get(&format!("{first}{}", chars.as_str())).copied()
                })
                .collect()
        })
        .get(m as usize)
        .copied()
        .flatten()
}

/// True when every CPUID feature `ins` needs is one rx86 implements for VEX encodings.
fn implemented(ins: &Instruction) -> bool {
    ins.cpuid_features().iter().all(|f| matches!(f, F::AVX | F::AVX2 | F::FMA | F::F16C | F::AES | F::PCLMULQDQ))
}

/// True for the aligned moves, whose memory operand must be aligned to its size
/// (#GP(0)); every other VEX memory operand may be unaligned.
fn needs_alignment(m: M) -> bool {
    matches!(m, M::Vmovaps | M::Vmovapd | M::Vmovdqa | M::Vmovntps | M::Vmovntpd | M::Vmovntdq | M::Vmovntdqa)
}

impl Ctx<'_> {
    /// Executes a VEX-encoded instruction (BMI1/BMI2, AVX, AVX2, FMA, F16C).
    pub(super) fn exec_vex(&mut self, ins: &Instruction) -> R<()> {
        let m = ins.mnemonic();
        if !self.c.st.protected() {
            return Err(Fault::ud());
        }
        if super::bmi::is_bmi(m) {
            return self.bmi(ins);
        }
        if !implemented(ins) {
            return Err(Fault::ud());
        }
        self.avx_check()?;
        match m {
            M::Vzeroupper | M::Vzeroall => {
                self.vzero(m == M::Vzeroall);
                Ok(())
            }
            M::Vcvtph2ps | M::Vcvtps2ph => self.f16c(ins),
            m if super::fma::is_fma(m) => self.fma(ins),
            m if super::avx_move::is_avx_move(m) => self.avx_move(ins),
            m if super::avx_perm::is_avx_perm(m) => self.avx_perm(ins),
            m if super::avx_mask::is_avx_mask(m) => self.avx_mask(ins),
            m if super::avx_float::is_avx_float_special(m) => self.avx_float_special(ins),
            m => self.avx_lanes(ins, legacy_twin(m).unwrap_or(m)),
        }
    }

    /// The AVX state checks: #UD without CR4.OSXSAVE or with XCR0 lacking SSE or AVX
    /// state, #NM with CR0.TS.
    pub(super) fn avx_check(&self) -> R<()> {
        let st = &self.c.st;
        let both = XCR0_SSE | XCR0_AVX;
        if st.cr4 & cr4::OSXSAVE == 0 || st.xcr0 & both != both {
            return Err(Fault::ud());
        }
        if st.cr0 & cr0::TS != 0 {
            return Err(Fault::exc(vec::NM));
        }
        Ok(())
    }

    /// VZEROUPPER (bits 255:128 of every register) and VZEROALL (all bits); outside
    /// 64-bit mode only registers 0-7.
    fn vzero(&mut self, all: bool) {
        let n = if self.c.st.long64() { 16 } else { 8 };
        self.c.st.ymm_hi[..n].fill([0; 2]);
        if all {
            self.c.st.sse.xmm[..n].fill([0; 2]);
        }
    }

    /// YMM (or XMM, upper lane zero) register `r`.
    pub(super) fn ymm(&self, r: Register) -> Ymm {
        let i = r.number() & 15;
        [self.c.st.sse.xmm[i], if r.is_ymm() { self.c.st.ymm_hi[i] } else { [0; 2] }]
    }

    /// Writes register `r` the VEX way: all 256 bits of a YMM register; the low 128 of
    /// an XMM register, with bits 255:128 zeroed.
    pub(super) fn set_ymm(&mut self, r: Register, v: Ymm) {
        let i = r.number() & 15;
        self.c.st.sse.xmm[i] = v[0];
        self.c.st.ymm_hi[i] = if r.is_ymm() { v[1] } else { [0; 2] };
    }

    /// `lin + k` wrapped to the address width.
    fn lin_add(&self, lin: u64, k: u64) -> u64 {
        let next = lin.wrapping_add(k);
        if self.c.st.long64() {
            next
        } else {
            next & 0xffff_ffff
        }
    }

    /// Linear address of a `bytes`-byte vector memory operand (8, 16 or 32 bytes),
    /// checking the alignment of the aligned moves.
    fn vmem_linear(&mut self, ins: &Instruction, bytes: usize, acc: Acc) -> R<u64> {
        let (seg, off) = self.ea(ins);
        let lin = self.linear(seg, off, bytes as u8, acc)?;
        if needs_alignment(ins.mnemonic()) && lin & (bytes as u64 - 1) != 0 {
            return Err(Fault::gp(0));
        }
        Ok(lin)
    }

    /// Reads `bytes` (1-32) of the memory operand, zero-extended.
    pub(super) fn read_vmem(&mut self, ins: &Instruction, bytes: usize) -> R<Ymm> {
        if bytes < 8 {
            let (seg, off) = self.ea(ins);
            return Ok([[self.read(seg, off, bytes as u8)?, 0], [0; 2]]);
        }
        let lin = self.vmem_linear(ins, bytes, Acc::Read)?;
        let user = self.c.st.cpl == 3;
        let mut q = [0u64; 4];
        for (k, v) in q.iter_mut().enumerate().take(bytes / 8) {
            *v = self.read_lin(self.lin_add(lin, 8 * k as u64), 8, Acc::Read, user)?;
        }
        Ok([[q[0], q[1]], [q[2], q[3]]])
    }

    /// Writes the low `bytes` (1-32) of `v` to the memory operand, every byte checked
    /// before any is written.
    pub(super) fn write_vmem(&mut self, ins: &Instruction, bytes: usize, v: Ymm) -> R<()> {
        let (seg, off) = self.ea(ins);
        if bytes < 8 {
            return self.write(seg, off, bytes as u8, v[0][0]);
        }
        let lin = self.vmem_linear(ins, bytes, Acc::Write)?;
        self.probe_write(seg, off, bytes as u8)?;
        let user = self.c.st.cpl == 3;
        let q = [v[0][0], v[0][1], v[1][0], v[1][1]];
        for (k, &x) in q.iter().enumerate().take(bytes / 8) {
            self.write_lin(self.lin_add(lin, 8 * k as u64), 8, x, user)?;
        }
        Ok(())
    }

    /// Operand `i` as a vector: a YMM register, an XMM register (upper lane zero), a
    /// GPR (zero-extended), or memory of the instruction's memory size (zero-extended).
    pub(super) fn vop(&mut self, ins: &Instruction, i: u32) -> R<Ymm> {
        match ins.op_kind(i) {
            OpKind::Register => {
                let r = ins.op_register(i);
                if r.is_xmm() || r.is_ymm() {
                    Ok(self.ymm(r))
                } else {
                    Ok([[self.reg(r), 0], [0; 2]])
                }
            }
            OpKind::Memory => self.read_vmem(ins, ins.memory_size().size()),
            k => Err(self.unsupported(format!("VEX operand kind {k:?}"))),
        }
    }

    /// The operands of `ins` in [`VexOps`] form.
    pub(super) fn vex_ops(&mut self, ins: &Instruction) -> R<VexOps> {
        let dst = if ins.op0_kind() == OpKind::Register { ins.op0_register() } else { Register::None };
        let mut srcs = [0u32; 3];
        let mut n = 0;
        for i in 1..ins.op_count() {
            if matches!(ins.op_kind(i), OpKind::Register | OpKind::Memory) && n < 3 {
                srcs[n] = i;
                n += 1;
            }
        }
        let has_imm = (0..ins.op_count()).any(|i| ins.op_kind(i) == OpKind::Immediate8);
        let a = if n > 0 { self.vop(ins, srcs[0])? } else { [[0; 2]; 2] };
        let b = if n > 1 { self.vop(ins, srcs[1])? } else { a };
        let sel = if n > 2 { self.vop(ins, srcs[2])? } else { [[0; 2]; 2] };
        let imm = if has_imm { ins.immediate8() } else { 0 };
        Ok(VexOps { dst, a, b, sel, imm, has_imm, wide: dst.is_ymm() })
    }

    /// The instructions that apply a 128-bit operation to each lane: the legacy twin
    /// `l`'s operation (or the AVX2 lane-wise ones) on the first and second sources,
    /// then SIMD exceptions, then the destination.
    fn avx_lanes(&mut self, ins: &Instruction, l: M) -> R<()> {
        let o = self.vex_ops(ins)?;
        let csr = self.c.st.sse.mxcsr;
        let mut flags = 0;
        let mut out: Ymm = [[0; 2]; 2];
        for (lane, v) in out.iter_mut().enumerate().take(1 + o.wide as usize) {
            let r = super::avx_int::int_lane(l, &o, lane)
                .or_else(|| super::avx_float::float_lane(l, &o, lane, csr, &mut flags));
            *v = r.ok_or_else(|| self.unsupported(format!("VEX instruction {:?}", ins.mnemonic())))?;
        }
        self.simd_exceptions(flags)?;
        self.set_ymm(o.dst, out);
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::Ymm;
    use crate::interp::fault::vec;
    use crate::interp::model::CpuModel;
    use crate::interp::ops::xsave::{XCR0_AVX, XCR0_SSE, XCR0_X87};
    use crate::interp::state::{cr0, cr4};
    use crate::interp::test_util::{Machine, TestRng};
    use iced_x86::code_asm::*;

    /// A 64-bit machine with SSE, XSAVE and AVX state enabled, running `a`; 0x20000.. is
    /// data.
    pub fn avx_machine(a: &mut CodeAssembler) -> Machine {
        let mut m = Machine::long64(a);
        let st = m.cpu.state_mut();
        st.cr4 |= cr4::OSFXSR | cr4::OSXMMEXCPT | cr4::OSXSAVE;
        st.xcr0 = XCR0_X87 | XCR0_SSE | XCR0_AVX;
        m
    }

    /// Random float bits biased to specials (zeros, infinities, NaNs, denormals, the
    /// bottom of the normal range, values near one), for 32-bit (`single`) or 64-bit lanes.
    pub fn float_bits(rng: &mut TestRng, single: bool) -> u64 {
        let x = rng.next();
        let (e, f) = if single { (0x7f80_0000u64, 0x007f_ffffu64) } else { (0x7ff0 << 48, (1 << 52) - 1) };
        let sign = if single { 1 << 31 } else { 1 << 63 } & x;
        match x % 9 {
            0 => sign | e,
            1 => sign | e | (x >> 20 & f) | 1,
            2 => sign | (x >> 20 & f),
            3 => sign | (e - f - 1) | (x & f),
            4 => sign,
            5 => sign | if single { 0x0c00_0000 } else { 0x0c00 << 48 } | (x & f),
            6 => sign | if single { 0x3f80_0000 } else { 0x3ff0 << 48 } | (x & f),
            _ => x & if single { 0xffff_ffff } else { u64::MAX },
        }
    }

    /// A YMM value of random float lanes ([`float_bits`]).
    pub fn float_ymm(rng: &mut TestRng, single: bool) -> Ymm {
        let mut q =
            || if single { float_bits(rng, true) | float_bits(rng, true) << 32 } else { float_bits(rng, false) };
        [[q(), q()], [q(), q()]]
    }

    /// Runs `op` in the interpreter with the vector registers `regs` (number, value) and
    /// MXCSR = `csr`: YMM0 and MXCSR after.
    pub fn run_avx(op: impl Fn(&mut CodeAssembler), regs: &[(usize, Ymm)], csr: u32) -> (Ymm, u32) {
        let mut asm = CodeAssembler::new(64).unwrap();
        op(&mut asm);
        asm.hlt().unwrap();
        let mut m = avx_machine(&mut asm);
        let st = m.cpu.state_mut();
        st.sse.mxcsr = csr;
        for &(r, v) in regs {
            st.sse.xmm[r] = v[0];
            st.ymm_hi[r] = v[1];
        }
        m.run();
        let st = m.cpu.state();
        ([st.sse.xmm[0], st.ymm_hi[0]], st.sse.mxcsr)
    }

    /// `insn` (a string literal) on the host with YMM1 = a, YMM2 = b, YMM0 = c and
    /// MXCSR = csr: (YMM0, MXCSR after). The caller checks that the host has the
    /// instruction's features.
    macro_rules! host_avx {
        ($insn:literal, $a:expr, $b:expr, $c:expr, $csr:expr) => {{
            let mut v: [crate::interp::ops::avx::Ymm; 3] = [$a, $b, $c];
            let mut csr: u32 = $csr;
            // SAFETY: the caller checked the host's features. Loads MXCSR and YMM0-YMM2,
            // runs one instruction with the exceptions masked by `csr`, stores YMM0 and
            // MXCSR, restores the default MXCSR and clears the upper halves; the registers
            // are declared clobbered.
            unsafe {
                std::arch::asm!(
                    "ldmxcsr [{c}]", "vmovdqu ymm1, [{v}]", "vmovdqu ymm2, [{v} + 32]", "vmovdqu ymm0, [{v} + 64]",
                    $insn, "vmovdqu [{v}], ymm0", "stmxcsr [{c}]", "mov dword ptr [{v} + 32], 0x1f80",
                    "ldmxcsr [{v} + 32]", "vzeroupper",
                    v = in(reg) v.as_mut_ptr(), c = in(reg) &mut csr, out("xmm0") _, out("xmm1") _, out("xmm2") _,
                );
            }
            (v[0], csr)
        }};
    }
    pub(crate) use host_avx;

    /// Runs each `insn => op` pair on the host ([`host_avx`]) and in the interpreter
    /// ([`run_avx`]) with random float lanes ([`float_ymm`], `single` or double) in
    /// YMM0-YMM2 under MXCSR `csr`, comparing YMM0 and MXCSR.
    macro_rules! check_float_ops {
        ($rng:expr, $single:expr, $csr:expr; $($insn:literal => $op:expr),* $(,)?) => {
            $(
                let a = crate::interp::ops::avx::tests::float_ymm($rng, $single);
                let b = crate::interp::ops::avx::tests::float_ymm($rng, $single);
                let c = crate::interp::ops::avx::tests::float_ymm($rng, $single);
                assert_eq!(
                    crate::interp::ops::avx::tests::run_avx($op, &[(1, a), (2, b), (0, c)], $csr),
                    crate::interp::ops::avx::tests::host_avx!($insn, a, b, c, $csr),
                    "{} a={a:x?} b={b:x?} c={c:x?} csr={:#x}", $insn, $csr
                );
            )*
        };
    }
    pub(crate) use check_float_ops;

    /// Steps once and returns the vector of the exception raised, if any.
    fn first_exception(m: &mut Machine) -> Option<u8> {
        let _ = m.cpu.step(&m.p);
        m.cpu.last_exception.map(|e| e.0)
    }

    /// True when the dispatch has a handler for VEX mnemonic `m`.
    fn handled(m: iced_x86::Mnemonic) -> bool {
        use super::super::*;
        use super::{legacy_twin, VexOps};
        use iced_x86::Mnemonic as M;
        if matches!(m, M::Vzeroupper | M::Vzeroall | M::Vcvtph2ps | M::Vcvtps2ph)
            || fma::is_fma(m)
            || avx_move::is_avx_move(m)
            || avx_perm::is_avx_perm(m)
            || avx_mask::is_avx_mask(m)
            || avx_float::is_avx_float_special(m)
        {
            return true;
        }
        let l = legacy_twin(m).unwrap_or(m);
        let o = VexOps {
            dst: iced_x86::Register::YMM0,
            a: [[0; 2]; 2],
            b: [[0; 2]; 2],
            sel: [[0; 2]; 2],
            imm: 0,
            has_imm: false,
            wide: true,
        };
        avx_int::int_lane(l, &o, 0).is_some() || avx_float::float_lane(l, &o, 0, 0x1f80, &mut 0).is_some()
    }

    #[test]
    fn every_avx_avx2_fma_and_f16c_instruction_has_a_handler() {
        use iced_x86::{Code, CpuidFeature as F, EncodingKind};
        let mut missing: Vec<String> = Vec::new();
        let mut checked = 0;
        for code in Code::values() {
            let op = code.op_code();
            if op.encoding() != EncodingKind::VEX {
                continue;
            }
            let features = code.cpuid_features();
            let ours = features.iter().any(|f| matches!(f, F::AVX | F::AVX2 | F::FMA | F::F16C));
            let only_ours =
                features.iter().all(|f| matches!(f, F::AVX | F::AVX2 | F::FMA | F::F16C | F::AES | F::PCLMULQDQ));
            if ours && only_ours {
                checked += 1;
                if !handled(code.mnemonic()) {
                    missing.push(format!("{:?}", code.mnemonic()));
                }
            }
        }
        missing.dedup();
        assert!(checked > 500, "{checked} encodings");
        assert!(missing.is_empty(), "no handler for {missing:?}");
    }

    #[test]
    fn vex_needs_osxsave_and_avx_state_and_is_nm_with_ts() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.vaddps(ymm0, ymm1, ymm2).unwrap();
        a.hlt().unwrap();
        let mut m = avx_machine(&mut a);
        m.cpu.state_mut().cr4 &= !cr4::OSXSAVE;
        assert_eq!(first_exception(&mut m), Some(vec::UD), "CR4.OSXSAVE clear");
        let mut m = avx_machine(&mut a);
        m.cpu.state_mut().xcr0 = XCR0_X87 | XCR0_SSE;
        assert_eq!(first_exception(&mut m), Some(vec::UD), "XCR0.AVX clear");
        let mut m = avx_machine(&mut a);
        m.cpu.state_mut().cr0 |= cr0::TS;
        assert_eq!(first_exception(&mut m), Some(vec::NM), "CR0.TS");
        // CR0.EM and CR4.OSFXSR do not apply to VEX.
        let mut m = avx_machine(&mut a);
        m.cpu.state_mut().cr0 |= cr0::EM;
        m.cpu.state_mut().cr4 &= !cr4::OSFXSR;
        assert_eq!(first_exception(&mut m), None);
        // A model without AVX: #UD even with the state enabled.
        let mut m = avx_machine(&mut a);
        m.cpu.set_cpu_model(CpuModel::X86_64V2);
        assert_eq!(first_exception(&mut m), Some(vec::UD), "x86-64-v2");
    }

    #[test]
    fn vex_128_zeroes_the_upper_half_and_legacy_sse_keeps_it() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.addps(xmm0, xmm1).unwrap();
        a.vaddps(xmm2, xmm1, xmm1).unwrap();
        a.vaddps(ymm3, ymm1, ymm1).unwrap();
        a.hlt().unwrap();
        let mut m = avx_machine(&mut a);
        let one = 1f32.to_bits() as u64 * 0x1_0000_0001;
        let st = m.cpu.state_mut();
        st.sse.xmm[1] = [one, one];
        st.ymm_hi[1] = [one, one];
        st.ymm_hi[0] = [5, 6];
        st.ymm_hi[2] = [7, 8];
        m.run();
        let two = 2f32.to_bits() as u64 * 0x1_0000_0001;
        let st = m.cpu.state();
        assert_eq!(st.ymm_hi[0], [5, 6], "legacy SSE leaves bits 255:128");
        assert_eq!((st.sse.xmm[2], st.ymm_hi[2]), ([two, two], [0, 0]), "VEX.128 zeroes them");
        assert_eq!((st.sse.xmm[3], st.ymm_hi[3]), ([two, two], [two, two]), "VEX.256");
    }

    #[test]
    fn vzeroupper_and_vzeroall() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.vzeroupper().unwrap();
        a.hlt().unwrap();
        let mut m = avx_machine(&mut a);
        m.cpu.state_mut().sse.xmm[15] = [1, 2];
        m.cpu.state_mut().ymm_hi[15] = [3, 4];
        m.run();
        assert_eq!((m.cpu.state().sse.xmm[15], m.cpu.state().ymm_hi[15]), ([1, 2], [0, 0]));
        let mut a = CodeAssembler::new(64).unwrap();
        a.vzeroall().unwrap();
        a.hlt().unwrap();
        let mut m = avx_machine(&mut a);
        m.cpu.state_mut().sse.xmm[15] = [1, 2];
        m.run();
        assert_eq!(m.cpu.state().sse.xmm[15], [0, 0]);
    }

    #[test]
    fn vmovaps_checks_alignment_and_vmovups_does_not() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.vmovups(ymm0, ptr(0x20010)).unwrap();
        a.vmovaps(ymm1, ptr(0x20010)).unwrap();
        a.hlt().unwrap();
        let mut m = avx_machine(&mut a);
        for i in 0..32u8 {
            m.poke(0x20010 + i as u64, &[i]);
        }
        assert_eq!(first_exception(&mut m), None);
        let st = m.cpu.state();
        assert_eq!(st.sse.xmm[0][0], u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]));
        assert_eq!(st.ymm_hi[0][1], u64::from_le_bytes([24, 25, 26, 27, 28, 29, 30, 31]));
        assert_eq!(first_exception(&mut m), Some(vec::GP), "32-byte VMOVAPS at a 16-byte boundary");
    }
}
