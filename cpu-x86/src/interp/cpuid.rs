//! CPUID: reports exactly what this interpreter implements (SDM Vol. 2A "CPUID").
//! Vendor "GenuineIntel", family 6. x87, MMX, FXSAVE/FXRSTOR, SSE and SSE2 are reported;
//! SSE3 and later, and XSAVE (leaf 0xD), are not.

use super::cpu::Ctx;
use super::fault::R;

/// Highest basic leaf.
const MAX_BASIC: u32 = 0x7;
/// Highest extended leaf.
const MAX_EXTENDED: u32 = 0x8000_0008;
/// Brand string returned by leaves 0x80000002-4 (48 bytes, NUL padded).
const BRAND: &[u8; 48] = b"rx86 software x86 interpreter\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

/// Leaf 1 EDX: FPU DE PSE TSC MSR PAE CX8 APIC SEP MTRR PGE CMOV PAT CLFSH MMX FXSR SSE SSE2.
const LEAF1_EDX: u32 = 1
    | (1 << 2)
    | (1 << 3)
    | (1 << 4)
    | (1 << 5)
    | (1 << 6)
    | (1 << 8)
    | (1 << 9)
    | (1 << 11)
    | (1 << 12)
    | (1 << 13)
    | (1 << 15)
    | (1 << 16)
    | (1 << 19)
    | (1 << 23)
    | (1 << 24)
    | (1 << 25)
    | (1 << 26);
/// Leaf 1 ECX: CMPXCHG16B, POPCNT.
const LEAF1_ECX: u32 = (1 << 13) | (1 << 23);
/// Leaf 7 EBX: FSGSBASE.
const LEAF7_EBX: u32 = 1;
/// Leaf 0x80000001 EDX: SYSCALL, NX, LM.
const EXT1_EDX: u32 = (1 << 11) | (1 << 20) | (1 << 29);
/// Leaf 0x80000001 ECX: LAHF/SAHF in 64-bit mode, LZCNT (ABM).
const EXT1_ECX: u32 = 1 | (1 << 5);

/// The CPUID result for `leaf`/`subleaf`: [EAX, EBX, ECX, EDX].
pub fn cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    let word = |i: usize| u32::from_le_bytes([BRAND[i], BRAND[i + 1], BRAND[i + 2], BRAND[i + 3]]);
    match leaf {
        // "GenuineIntel" in EBX, EDX, ECX.
        0 => [MAX_BASIC, 0x756e_6547, 0x6c65_746e, 0x4965_6e69],
        // Family 6, model 0x0f, stepping 1; CLFLUSH line 8*8 bytes; one logical CPU.
        1 => [0x0000_06f1, 0x0001_0800, LEAF1_ECX, LEAF1_EDX],
        7 if subleaf == 0 => [0, LEAF7_EBX, 0, 0],
        0x8000_0000 => [MAX_EXTENDED, 0, 0, 0],
        0x8000_0001 => [0, 0, EXT1_ECX, EXT1_EDX],
        0x8000_0002..=0x8000_0004 => {
            let b = (leaf - 0x8000_0002) as usize * 16;
            [word(b), word(b + 4), word(b + 8), word(b + 12)]
        }
        // 36 physical and 48 linear address bits.
        0x8000_0008 => [0x3024, 0, 0, 0],
        _ => [0; 4],
    }
}

/// IA32_APIC_BASE (SDM Vol. 3A §11.4.4).
const IA32_APIC_BASE: u32 = 0x1b;
/// IA32_APIC_BASE bit 11: the local APIC is globally enabled.
const APIC_BASE_EN: u64 = 1 << 11;
/// Leaf 1 EDX bit 9: an on-chip APIC.
const LEAF1_EDX_APIC: u32 = 1 << 9;

impl Ctx<'_> {
    /// CPUID for the running CPU: [`cpuid`] with what the machine state changes.
    /// CPUID.1:EDX.APIC follows IA32_APIC_BASE.EN: with the local APIC globally
    /// disabled the processor reports none (SDM Vol. 3A §11.4.3).
    pub(crate) fn cpuid(&mut self) -> R<()> {
        let g = &self.c.st.gpr;
        let (leaf, subleaf) = (g[0] as u32, g[1] as u32);
        let [a, b, c, mut d] = cpuid(leaf, subleaf);
        if leaf == 1 {
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
        assert_eq!(cpuid(1, 0)[2] & (1 << 26 | 1), 0, "no XSAVE, no SSE3");
    }
}
