//! The generator's AVX units: AVX, AVX2, FMA and F16C instructions (VEX encoding, 128-
//! and 256-bit forms, AES-NI and PCLMULQDQ in their VEX.128 forms) on YMM registers
//! loaded from the data area, in a random MXCSR, with the registers and MXCSR stored
//! back to it. Left out: the gathers (VSIB operands), VMASKMOVDQU (an implicit DS:rDI
//! store), VLDMXCSR (it could unmask exceptions), and VRCPPS/VRCPSS/VRSQRTPS/VRSQRTSS,
//! whose approximations are the CPU's own tables (the interpreter meets the
//! architectural error bound, not the host's bits).

use super::{supported_in, Generator, DATA_LEN};
use crate::differential::Mode;
use iced_x86::{Code, CpuidFeature as F, EncodingKind, Instruction, Mnemonic as M, OpCodeOperandKind as K, Register};

/// True for the VEX instruction forms the AVX units test.
pub(super) fn is_avx_extension(c: Code) -> bool {
    let f = c.cpuid_features();
    c.op_code().encoding() == EncodingKind::VEX
        && f.iter().any(|f| matches!(f, F::AVX | F::AVX2 | F::FMA | F::F16C))
        && f.iter().all(|f| matches!(f, F::AVX | F::AVX2 | F::FMA | F::F16C | F::AES | F::PCLMULQDQ))
}

/// True when the host has every feature `c` needs.
fn host_runs(c: Code) -> bool {
    c.cpuid_features().iter().all(|f| match f {
        F::AVX => std::arch::is_x86_feature_detected!("avx"),
        F::AVX2 => std::arch::is_x86_feature_detected!("avx2"),
        F::FMA => std::arch::is_x86_feature_detected!("fma"),
        F::F16C => std::arch::is_x86_feature_detected!("f16c"),
        F::AES => std::arch::is_x86_feature_detected!("aes"),
        F::PCLMULQDQ => std::arch::is_x86_feature_detected!("pclmulqdq"),
        _ => true,
    })
}

/// True for the operand kinds [`Generator::avx_instruction`] fills.
fn operand_supported(k: &K) -> bool {
    matches!(
        k,
        K::mem
            | K::xmm_reg
            | K::xmm_rm
            | K::xmm_or_mem
            | K::xmm_vvvv
            | K::xmm_is4
            | K::ymm_reg
            | K::ymm_rm
            | K::ymm_or_mem
            | K::ymm_vvvv
            | K::ymm_is4
            | K::r32_reg
            | K::r32_or_mem
            | K::r64_reg
            | K::r64_or_mem
            | K::imm8
    )
}

/// The forms the AVX units of `mode` draw from (none in real mode, where VEX is #UD).
pub(super) fn codes(mode: Mode) -> Vec<Code> {
    if mode == Mode::Real16 {
        return Vec::new();
    }
    Code::values()
        .filter(|&c| {
            is_avx_extension(c)
                && host_runs(c)
                && supported_in(c.op_code(), mode)
                && c.op_code().op_kinds().iter().all(operand_supported)
                && !matches!(
                    c.mnemonic(),
                    M::Vmaskmovdqu | M::Vldmxcsr | M::Vrcpps | M::Vrcpss | M::Vrsqrtps | M::Vrsqrtss
                )
        })
        .collect()
}

impl Generator {
    /// An AVX unit: LDMXCSR of a random rounding mode (with FZ and DAZ now and then,
    /// every exception masked), four YMM registers loaded from the data area, one to
    /// three instructions on them, the registers and MXCSR stored back, VZEROUPPER and
    /// the default MXCSR. Memory operands are 32-byte aligned, so the unit does not
    /// fault.
    pub(super) fn avx_unit(&mut self) -> Option<Vec<Instruction>> {
        if self.avx.is_empty() {
            return None;
        }
        let mut body = Vec::new();
        for _ in 0..1 + self.rng.below(3) {
            let code = self.avx[self.rng.below(self.avx.len() as u64) as usize];
            body.push(self.avx_instruction(code)?);
        }
        let ymm = self.avx_registers(true);
        let base = self.rng.below(DATA_LEN as u64 / 32 - 10) * 32;
        let mxcsr = 0x1f80 | (self.rng.below(4) as u32) << 13 | if self.rng.below(8) == 0 { 0x8040 } else { 0 };
        let mut unit = vec![
            self.x87_store(Code::Mov_rm32_imm32, base + 0x100, mxcsr),
            self.x87_memory(Code::Ldmxcsr_m32, base + 0x100),
        ];
        for (k, &r) in ymm.iter().enumerate() {
            unit.push(
                Instruction::with2(Code::VEX_Vmovdqu_ymm_ymmm256, r, self.data_memory(base + 32 * k as u64)).ok()?,
            );
        }
        unit.extend(body);
        for (k, &r) in ymm.iter().enumerate() {
            let at = self.data_memory(base + 0x80 + 32 * k as u64);
            unit.push(Instruction::with2(Code::VEX_Vmovdqu_ymmm256_ymm, at, r).ok()?);
        }
        unit.push(Instruction::with(Code::VEX_Vzeroupper));
        unit.push(self.x87_memory(Code::Stmxcsr_m32, base + 0x104));
        unit.push(self.x87_store(Code::Mov_rm32_imm32, base + 0x108, 0x1f80));
        unit.push(self.x87_memory(Code::Ldmxcsr_m32, base + 0x108));
        Some(unit)
    }

    /// The vector registers AVX units use: 0 to 2 (XMM0 is the implicit operand of
    /// some forms) and, in 64-bit mode, 9; as YMM (`wide`) or XMM registers.
    fn avx_registers(&self, wide: bool) -> [Register; 4] {
        let last = if self.mode == Mode::Long64 { 9 } else { 3 };
        let first = if wide { Register::YMM0 } else { Register::XMM0 };
        [0, 1, 2, last].map(|n| register_after(first, n))
    }

    /// An instruction of `code` with random operands from [`Generator::avx_registers`],
    /// general registers and 32-byte aligned memory in the data area.
    fn avx_instruction(&mut self, code: Code) -> Option<Instruction> {
        let (xmm, ymm) = (self.avx_registers(false), self.avx_registers(true));
        self.vector_instruction(code, 32, |g, k| {
            Some(match k {
                K::xmm_reg | K::xmm_rm | K::xmm_or_mem | K::xmm_vvvv | K::xmm_is4 => xmm[g.rng.below(4) as usize],
                K::ymm_reg | K::ymm_rm | K::ymm_or_mem | K::ymm_vvvv | K::ymm_is4 => ymm[g.rng.below(4) as usize],
                K::r32_reg | K::r32_or_mem => g.register(4),
                K::r64_reg | K::r64_or_mem => g.register(8),
                _ => return None,
            })
        })
    }
}

/// The register `n` places after `first` in iced's register order (XMM0..XMM31 and
/// YMM0..YMM31 are contiguous).
fn register_after(first: Register, n: usize) -> Register {
    Register::values().nth(first as usize + n).unwrap_or(first)
}
