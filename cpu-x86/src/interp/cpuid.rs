//! CPUID (SDM Vol. 2A "CPUID"): the selected CPU model's data (`model.rs`), never more
//! than this interpreter implements. The default model reports x87, MMX, FXSAVE/FXRSTOR,
//! SSE through SSE4.2, AES-NI, PCLMULQDQ, SHA, CMPXCHG16B, POPCNT, LZCNT, BMI1, BMI2,
//! MOVBE, ADX, FSGSBASE, AVX, AVX2, FMA, F16C and XSAVE/XSAVEOPT/XSAVEC of the x87, SSE
//! and AVX state (leaf 0xD).

use super::cpu::Ctx;
use super::fault::R;
use super::model::CpuModel;

/// The CPUID result of the default model ([`CpuModel::Max`]) for `leaf`/`subleaf`:
/// [EAX, EBX, ECX, EDX].
pub fn cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    CpuModel::Max.cpuid(leaf, subleaf)
}

/// IA32_APIC_BASE (SDM Vol. 3A §11.4.4).
const IA32_APIC_BASE: u32 = 0x1b;
/// IA32_APIC_BASE bit 11: the local APIC is globally enabled.
const APIC_BASE_EN: u64 = 1 << 11;
/// Leaf 1 EDX bit 9: an on-chip APIC.
const LEAF1_EDX_APIC: u32 = 1 << 9;
/// Leaf 1 ECX bit 27: CR4.OSXSAVE is set.
const LEAF1_ECX_OSXSAVE: u32 = 1 << 27;

impl Ctx<'_> {
    /// CPUID for the running CPU: [`cpuid`] with what the machine state changes.
    /// CPUID.1:EDX.APIC follows IA32_APIC_BASE.EN: with the local APIC globally
    /// disabled the processor reports none (SDM Vol. 3A §11.4.3); CPUID.1:ECX.OSXSAVE
    /// mirrors CR4.OSXSAVE; CPUID.(EAX=0DH,ECX=0 or 1):EBX is the XSAVE area size for
    /// the current XCR0.
    pub(crate) fn cpuid(&mut self) -> R<()> {
        let g = &self.c.st.gpr;
        let (leaf, subleaf) = (g[0] as u32, g[1] as u32);
        let [a, mut b, mut c, mut d] = self.c.st.model.cpuid(leaf, subleaf);
        if leaf == 0xd && subleaf <= 1 && b != 0 {
            b = super::ops::xsave::xsave_size(self.c.st.xcr0);
        }
        if leaf == 1 {
            if self.c.st.cr4 & super::state::cr4::OSXSAVE != 0 {
                c |= LEAF1_ECX_OSXSAVE;
            }
            let apic_base = self.p.msr_read(IA32_APIC_BASE).unwrap_or(self.c.st.msr.apic_base);
            if apic_base & APIC_BASE_EN == 0 {
                d &= !LEAF1_EDX_APIC;
            }
        }
        self.set_gpr(0, 4, a as u64);
        self.set_gpr(3, 4, b as u64);
        self.set_gpr(1, 4, c as u64);
        self.set_gpr(2, 4, d as u64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_and_long_mode_bits() {
        let [_, b, c, d] = cpuid(0, 0);
        let mut v = Vec::new();
        for w in [b, d, c] {
            v.extend_from_slice(&w.to_le_bytes());
        }
        assert_eq!(&v, b"GenuineIntel");
        assert_eq!((cpuid(1, 0)[0] >> 8) & 0xf, 6, "family 6");
        assert_ne!(cpuid(0x8000_0001, 0)[3] & (1 << 29), 0, "LM");
        let edx = cpuid(1, 0)[3];
        let fp = 1 | 1 << 23 | 1 << 24 | 1 << 25 | 1 << 26;
        assert_eq!(edx & fp, fp, "FPU MMX FXSR SSE SSE2");
        let avx = 1 << 28 | 1 << 12 | 1 << 29;
        assert_eq!(cpuid(1, 0)[2] & avx, avx, "AVX, FMA, F16C");
        assert_eq!(cpuid(7, 0)[1] & 1 << 5, 1 << 5, "AVX2");
        assert_eq!(cpuid(1, 0)[2] & (1 << 26 | 1 << 27), 1 << 26, "XSAVE; OSXSAVE follows CR4");
        assert_eq!(cpuid(0xd, 0), [7, 576, 832, 0], "x87, SSE and AVX state");
        assert_eq!(cpuid(0xd, 2), [256, 576, 0, 0], "YMM_Hi128 at 576");
        assert_eq!(cpuid(1, 0)[2] & (1 | 1 << 20), 1 | 1 << 20, "SSE3 and SSE4.2");
    }
}
