//! CPU models (`--cpu NAME`): what CPUID reports and which instructions raise #UD.
//!
//! Every model is an Intel part (the interpreter implements Intel's behaviour where the
//! vendors differ, e.g. SYSCALL outside 64-bit mode) whose CPUID reports the real part's
//! signature, cache and TLB descriptors and brand string, and of its features only those
//! the interpreter implements: the features of each model are the real ones intersected
//! with [`CpuModel::Max`]'s (its CPUID says what a guest may use, never more). The
//! x86-64-v3 model and `max` report AVX, AVX2, FMA and F16C, and their XSAVE manages the
//! AVX state beside x87 and SSE.
//!
//! | model        | part (CPUID signature)              | features beyond the one above     |
//! |--------------|-------------------------------------|-----------------------------------|
//! | `486`        | i486DX4 (0x480), a stepping with CPUID | FPU                            |
//! | `pentium`    | Pentium P54C (0x52C)                | TSC, MSRs, CMPXCHG8B, PSE, APIC   |
//! | `pentium3`   | Pentium III Coppermine (0x683)      | CMOV/FCMOV/FCOMI, MMX, SSE, FXSR, SYSENTER, PAE, PGE, PAT, MTRR, NOPL, RDPMC |
//! | `x86-64`     | Xeon Nocona (0xF41)                 | SSE2, CLFLUSH, long mode, NX, SYSCALL (the v1 level: not the part's SSE3) |
//! | `x86-64-v2`  | Core i7-920 Nehalem (0x106A5)       | SSE3, SSSE3, SSE4.1, SSE4.2, CMPXCHG16B, POPCNT, LAHF in 64-bit mode, RDTSCP |
//! | `x86-64-v3`  | Core i7-4770 Haswell (0x306C3)      | AVX, AVX2, FMA, F16C, LZCNT, BMI1, BMI2, MOVBE, FSGSBASE, XSAVE/XSAVEOPT, AES-NI, PCLMULQDQ, RDRAND, SMEP, PCID, INVPCID, 1-GiB pages |
//! | `max`        | rx86 (0x6F1), the default           | everything the interpreter implements (also ADX, SHA, RDSEED, RDPID, CLFLUSHOPT, CLWB, PREFETCHW, XSAVEC, XGETBV1, SMAP with STAC/CLAC, UMIP) |
//!
//! `max` is the default: the signature and leaves of the CPUID rx86 reported before
//! models existed (no cache leaves), with the features the interpreter has gained since.
//!
//! An instruction raises #UD when it needs a feature ([`iced_x86::CpuidFeature`]) that
//! some model has and the selected one lacks (`lacks`), so AVX, AVX2, FMA and F16C
//! raise #UD on the models before x86-64-v3. LZCNT runs as BSR and TZCNT as BSF on
//! models without LZCNT or BMI1, as on hardware.

use super::cpu::Interpreter;
use super::ops::xsave::{xsave_size, XCR0_AVX, XCR0_SSE, XCR0_X87, XSAVE_AVX_OFFSET, XSAVE_AVX_SIZE};
use super::state::cr4;
use iced_x86::{CodeSize, CpuidFeature as F, Instruction, Mnemonic};

/// A CPU model: what CPUID reports and which instructions exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum CpuModel {
    /// i486DX4 with CPUID (SDM Vol. 2A "CPUID": the 486 gained it in later steppings).
    I486,
    /// Pentium (P54C): TSC, MSRs, CMPXCHG8B.
    Pentium,
    /// Pentium III (P6): CMOV, MMX, SSE, FXSAVE, SYSENTER.
    Pentium3,
    /// The x86-64 baseline (x86-64-v1): SSE2, long mode.
    X86_64,
    /// x86-64-v2: SSE3, SSSE3, SSE4.1, SSE4.2, CMPXCHG16B, POPCNT, LAHF/SAHF in 64-bit mode.
    X86_64V2,
    /// x86-64-v3: v2 plus AVX, AVX2, FMA, F16C, LZCNT, BMI1, BMI2, MOVBE and XSAVE (and
    /// FSGSBASE, which the part has).
    X86_64V3,
    /// Everything the interpreter implements; the default.
    #[default]
    Max,
}

impl CpuModel {
    /// Every model with its `--cpu` name.
    pub const ALL: [(&'static str, CpuModel); 7] = [
        ("486", CpuModel::I486),
        ("pentium", CpuModel::Pentium),
        ("pentium3", CpuModel::Pentium3),
        ("x86-64", CpuModel::X86_64),
        ("x86-64-v2", CpuModel::X86_64V2),
        ("x86-64-v3", CpuModel::X86_64V3),
        ("max", CpuModel::Max),
    ];

    /// The model called `name` (the `--cpu` names above, case-insensitive).
    pub fn from_name(name: &str) -> Option<CpuModel> {
        Self::ALL.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|&(_, m)| m)
    }

    /// The model's `--cpu` name.
    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|&&(_, m)| m == self).map_or("max", |&(n, _)| n)
    }

    fn data(self) -> &'static ModelData {
        match self {
            CpuModel::I486 => &I486,
            CpuModel::Pentium => &PENTIUM,
            CpuModel::Pentium3 => &PENTIUM3,
            CpuModel::X86_64 => &NOCONA,
            CpuModel::X86_64V2 => &NEHALEM,
            CpuModel::X86_64V3 => &HASWELL,
            CpuModel::Max => &MAX,
        }
    }

    /// True when the model has LZCNT (CPUID.80000001H:ECX.ABM); without it the LZCNT
    /// encoding runs as BSR.
    pub fn has_lzcnt(self) -> bool {
        self.data().ext1_ecx & EXT_LZCNT != 0
    }

    /// True when the model has BMI1 (CPUID.(EAX=7,ECX=0):EBX.BMI1); without it the TZCNT
    /// encoding runs as BSF.
    pub fn has_bmi1(self) -> bool {
        self.data().leaf7_ebx & LEAF7_BMI1 != 0
    }

    /// True when the model has XSAVE (CPUID.1:ECX.XSAVE), so CR4.OSXSAVE can be set.
    pub fn has_xsave(self) -> bool {
        self.data().leaf1_ecx & ECX_XSAVE != 0
    }

    /// True when the model has AVX (CPUID.1:ECX.AVX): VEX-encoded vector instructions
    /// and the AVX state component.
    pub fn has_avx(self) -> bool {
        self.data().leaf1_ecx & ECX_AVX != 0
    }

    /// The XCR0 bits XSETBV accepts: x87 and SSE, and AVX on models with AVX.
    pub fn xcr0_supported(self) -> u64 {
        XCR0_X87 | XCR0_SSE | if self.has_avx() { XCR0_AVX } else { 0 }
    }

    /// True when the model has XSAVEC and the compacted XRSTOR
    /// (CPUID.(EAX=0DH,ECX=1):EAX.XSAVEC).
    pub fn has_xsavec(self) -> bool {
        self.data().xsave_ext & XSAVE_EXT_XSAVEC != 0
    }

    /// True when the model has XGETBV with ECX = 1 (CPUID.(EAX=0DH,ECX=1):EAX.XGETBV1).
    pub fn has_xgetbv1(self) -> bool {
        self.data().xsave_ext & XSAVE_EXT_XGETBV1 != 0
    }

    /// True when the model has 1-GiB pages (CPUID.80000001H:EDX.Page1GB): PS in a 4-level
    /// PDPT entry maps a page instead of being reserved.
    pub fn has_1g_pages(self) -> bool {
        self.data().ext1_edx & EXT_PAGE1GB != 0
    }

    /// True when the model has INVPCID (CPUID.(EAX=7,ECX=0):EBX.INVPCID).
    pub fn has_invpcid(self) -> bool {
        self.data().leaf7_ebx & LEAF7_INVPCID != 0
    }

    /// The CR4 bits MOV to CR4 accepts on this model: [`cr4::SUPPORTED`] plus OSXSAVE,
    /// UMIP, PCIDE, SMEP and SMAP where CPUID reports their features.
    pub fn cr4_supported(self) -> u64 {
        let d = self.data();
        let bit = |have: bool, b: u64| if have { b } else { 0 };
        cr4::SUPPORTED
            | bit(d.leaf1_ecx & ECX_XSAVE != 0, cr4::OSXSAVE)
            | bit(d.leaf1_ecx & ECX_PCID != 0, cr4::PCIDE)
            | bit(d.leaf7_ebx & LEAF7_SMEP != 0, cr4::SMEP)
            | bit(d.leaf7_ebx & LEAF7_SMAP != 0, cr4::SMAP)
            | bit(d.leaf7_ecx & LEAF7_ECX_UMIP != 0, cr4::UMIP)
    }

    /// True when the model has long mode (CPUID.80000001H:EDX.LM), so EFER.LME can be set.
    pub fn long_mode(self) -> bool {
        self.data().ext1_edx & EXT_LM != 0
    }

    /// Whether the model lets software set EFER.SCE (it reports SYSCALL) and EFER.NXE
    /// (it reports NX), SDM Vol. 3A §2.2.1; both false before x86-64.
    pub fn efer_bits(self) -> (bool, bool) {
        let d = self.data().ext1_edx;
        (d & EXT_SYSCALL != 0, d & EXT_NX != 0)
    }

    /// CPUID for `leaf`/`subleaf`: [EAX, EBX, ECX, EDX]. Leaves above the model's
    /// maxima (and unknown ones) read as zeros.
    pub fn cpuid(self, leaf: u32, subleaf: u32) -> [u32; 4] {
        let d = self.data();
        let brand = |i: usize| u32::from_le_bytes([d.brand[i], d.brand[i + 1], d.brand[i + 2], d.brand[i + 3]]);
        let ext = leaf >= 0x8000_0000;
        if (!ext && leaf > d.max_basic) || (ext && (d.max_ext == 0 || leaf > d.max_ext)) {
            return [0; 4];
        }
        match leaf {
            // "GenuineIntel" in EBX, EDX, ECX.
            0 => [d.max_basic, 0x756e_6547, 0x6c65_746e, 0x4965_6e69],
            1 => [d.signature, d.leaf1_ebx, d.leaf1_ecx, d.leaf1_edx],
            2 => d.leaf2,
            4 => d.leaf4.get(subleaf as usize).copied().unwrap_or([0; 4]),
            7 if subleaf == 0 => [0, d.leaf7_ebx, d.leaf7_ecx, 0],
            // XSAVE: x87 and SSE state in a 576-byte area, AVX in 256 more bytes. EBX of
            // subleaves 0 and 1 is the size for the current XCR0 (here the power-on
            // XCR0; the CPUID instruction reports the running one).
            0xd if d.leaf1_ecx & ECX_XSAVE != 0 => {
                let supported = self.xcr0_supported();
                let (now, max) = (xsave_size(XCR0_X87), xsave_size(supported));
                match subleaf {
                    0 => [supported as u32, now, max, 0],
                    // EBX: the compacted size for XCR0 | IA32_XSS (Linux checks it with XSAVEC).
                    1 => [d.xsave_ext, now, 0, 0],
                    2 if supported & XCR0_AVX != 0 => [XSAVE_AVX_SIZE, XSAVE_AVX_OFFSET, 0, 0],
                    _ => [0; 4],
                }
            }
            0x8000_0000 => [d.max_ext, 0, 0, 0],
            0x8000_0001 => [0, 0, d.ext1_ecx, d.ext1_edx],
            0x8000_0002..=0x8000_0004 => {
                let b = (leaf - 0x8000_0002) as usize * 16;
                [brand(b), brand(b + 4), brand(b + 8), brand(b + 12)]
            }
            // Intel leaves 0x80000005 reserved (zeros); 0x80000006 ECX describes the L2.
            0x8000_0006 => [0, 0, d.ext6_ecx, 0],
            // 36 physical and 48 linear address bits (what the page walker implements).
            0x8000_0008 => [0x3024, 0, 0, 0],
            _ => [0; 4],
        }
    }
}

impl Interpreter {
    /// Selects the CPU model the guest sees (CPUID, #UD for missing instructions); call
    /// before the guest runs.
    pub fn set_cpu_model(&mut self, model: CpuModel) {
        self.st.model = model;
        self.flush_caches();
    }

    /// The selected CPU model.
    pub fn cpu_model(&self) -> CpuModel {
        self.st.model
    }
}

/// True when `ins` needs an instruction-set feature `model` does not have: it raises #UD
/// (SDM Vol. 2A §2.2, each instruction's "CPUID Feature Flag"). Only features some model
/// has are told apart (see the module documentation); LAHF/SAHF in 64-bit mode need
/// CPUID.80000001H:ECX.LAHF-SAHF; TZCNT runs as BSF without BMI1 (`bit_scan`).
pub(crate) fn lacks(model: &CpuModel, ins: &Instruction) -> bool {
    if *model == CpuModel::Max {
        return false;
    }
    let d = model.data();
    match ins.mnemonic() {
        Mnemonic::Lahf | Mnemonic::Sahf if ins.code_size() == CodeSize::Code64 => return d.ext1_ecx & EXT_LAHF == 0,
        Mnemonic::Tzcnt => return false,
        _ => {}
    }
    ins.cpuid_features().iter().any(|f| GRADED.contains(f) && !d.instructions.contains(f))
}

/// The instruction-set features that tell the models apart.
const GRADED: [F; 41] = [
    F::TSC,
    F::MSR,
    F::CX8,
    F::CMOV,
    F::MMX,
    F::FXSR,
    F::SSE,
    F::SEP,
    F::MULTIBYTENOP,
    F::RDPMC,
    F::SSE2,
    F::CLFSH,
    F::SYSCALL,
    F::CMPXCHG16B,
    F::POPCNT,
    F::FSGSBASE,
    F::SSE3,
    F::SSSE3,
    F::SSE4_1,
    F::SSE4_2,
    F::MOVBE,
    F::BMI1,
    F::BMI2,
    F::ADX,
    F::XSAVE,
    F::XSAVEOPT,
    F::AES,
    F::PCLMULQDQ,
    F::SHA,
    F::RDRAND,
    F::RDSEED,
    F::RDPID,
    F::RDTSCP,
    F::CLWB,
    F::XSAVEC,
    F::AVX,
    F::AVX2,
    F::FMA,
    F::F16C,
    F::INVPCID,
    F::SMAP,
];

/// CPUID.1:EDX bits (SDM Vol. 2A Table 3-11).
mod edx {
    pub const FPU: u32 = 1 << 0;
    pub const DE: u32 = 1 << 2;
    pub const PSE: u32 = 1 << 3;
    pub const TSC: u32 = 1 << 4;
    pub const MSR: u32 = 1 << 5;
    pub const PAE: u32 = 1 << 6;
    pub const CX8: u32 = 1 << 8;
    pub const APIC: u32 = 1 << 9;
    pub const SEP: u32 = 1 << 11;
    pub const MTRR: u32 = 1 << 12;
    pub const PGE: u32 = 1 << 13;
    pub const CMOV: u32 = 1 << 15;
    pub const PAT: u32 = 1 << 16;
    pub const CLFSH: u32 = 1 << 19;
    pub const MMX: u32 = 1 << 23;
    pub const FXSR: u32 = 1 << 24;
    pub const SSE: u32 = 1 << 25;
    pub const SSE2: u32 = 1 << 26;
}

/// CPUID.1:ECX.SSE3.
const ECX_SSE3: u32 = 1 << 0;
/// CPUID.1:ECX.PCLMULQDQ.
const ECX_PCLMULQDQ: u32 = 1 << 1;
/// CPUID.1:ECX.FMA.
const ECX_FMA: u32 = 1 << 12;
/// CPUID.1:ECX.AVX.
const ECX_AVX: u32 = 1 << 28;
/// CPUID.1:ECX.F16C.
const ECX_F16C: u32 = 1 << 29;
/// The AVX-half ECX features of x86-64-v3.
const V3_AVX_ECX: u32 = ECX_FMA | ECX_AVX | ECX_F16C;
/// CPUID.(EAX=7,ECX=0):EBX.AVX2.
const LEAF7_AVX2: u32 = 1 << 5;
/// CPUID.1:ECX.AES.
const ECX_AES: u32 = 1 << 25;
/// CPUID.1:ECX.SSSE3.
const ECX_SSSE3: u32 = 1 << 9;
/// CPUID.1:ECX.CMPXCHG16B.
const ECX_CX16: u32 = 1 << 13;
/// CPUID.1:ECX.SSE4_1.
const ECX_SSE41: u32 = 1 << 19;
/// CPUID.1:ECX.SSE4_2.
const ECX_SSE42: u32 = 1 << 20;
/// CPUID.1:ECX.MOVBE.
const ECX_MOVBE: u32 = 1 << 22;
/// CPUID.1:ECX.POPCNT.
const ECX_POPCNT: u32 = 1 << 23;
/// CPUID.1:ECX.XSAVE.
const ECX_XSAVE: u32 = 1 << 26;
/// CPUID.1:ECX.RDRAND.
const ECX_RDRAND: u32 = 1 << 30;
/// CPUID.(EAX=0DH,ECX=1):EAX.XSAVEOPT.
const XSAVE_EXT_XSAVEOPT: u32 = 1 << 0;
/// CPUID.(EAX=0DH,ECX=1):EAX.XSAVEC.
const XSAVE_EXT_XSAVEC: u32 = 1 << 1;
/// CPUID.(EAX=0DH,ECX=1):EAX.XGETBV1.
const XSAVE_EXT_XGETBV1: u32 = 1 << 2;
/// The x86-64-v2 ECX features.
const V2_ECX: u32 = ECX_SSE3 | ECX_SSSE3 | ECX_CX16 | ECX_SSE41 | ECX_SSE42 | ECX_POPCNT;
/// CPUID.(EAX=7,ECX=0):EBX.FSGSBASE.
const LEAF7_FSGSBASE: u32 = 1;
/// CPUID.(EAX=7,ECX=0):EBX.BMI1.
const LEAF7_BMI1: u32 = 1 << 3;
/// CPUID.(EAX=7,ECX=0):EBX.BMI2.
const LEAF7_BMI2: u32 = 1 << 8;
/// CPUID.(EAX=7,ECX=0):EBX.ADX.
const LEAF7_ADX: u32 = 1 << 19;
/// CPUID.(EAX=7,ECX=0):EBX.SHA.
const LEAF7_SHA: u32 = 1 << 29;
/// CPUID.(EAX=7,ECX=0):EBX.RDSEED.
const LEAF7_RDSEED: u32 = 1 << 18;
/// CPUID.(EAX=7,ECX=0):EBX.CLFLUSHOPT.
const LEAF7_CLFLUSHOPT: u32 = 1 << 23;
/// CPUID.(EAX=7,ECX=0):EBX.CLWB.
const LEAF7_CLWB: u32 = 1 << 24;
/// CPUID.80000001H:ECX.PREFETCHW.
const EXT_PREFETCHW: u32 = 1 << 8;
/// CPUID.(EAX=7,ECX=0):EBX.SMEP.
const LEAF7_SMEP: u32 = 1 << 7;
/// CPUID.(EAX=7,ECX=0):EBX.INVPCID.
const LEAF7_INVPCID: u32 = 1 << 10;
/// CPUID.(EAX=7,ECX=0):EBX.SMAP (and STAC/CLAC).
const LEAF7_SMAP: u32 = 1 << 20;
/// CPUID.(EAX=7,ECX=0):ECX.UMIP.
const LEAF7_ECX_UMIP: u32 = 1 << 2;
/// CPUID.1:ECX.PCID.
const ECX_PCID: u32 = 1 << 17;
/// CPUID.80000001H:EDX.Page1GB.
const EXT_PAGE1GB: u32 = 1 << 26;
/// CPUID.(EAX=7,ECX=0):ECX.RDPID.
const LEAF7_ECX_RDPID: u32 = 1 << 22;
/// CPUID.80000001H:EDX.RDTSCP.
const EXT_RDTSCP: u32 = 1 << 27;
/// CPUID.80000001H:ECX.LAHF-SAHF (in 64-bit mode).
const EXT_LAHF: u32 = 1;
/// CPUID.80000001H:ECX.LZCNT (ABM).
const EXT_LZCNT: u32 = 1 << 5;
/// CPUID.80000001H:EDX.SYSCALL.
const EXT_SYSCALL: u32 = 1 << 11;
/// CPUID.80000001H:EDX.NX.
const EXT_NX: u32 = 1 << 20;
/// CPUID.80000001H:EDX.LM.
const EXT_LM: u32 = 1 << 29;

/// Pentium (P54C) EDX features rx86 implements.
const P5_EDX: u32 = edx::FPU | edx::DE | edx::PSE | edx::TSC | edx::MSR | edx::CX8 | edx::APIC;
/// Pentium III EDX features rx86 implements.
const P3_EDX: u32 =
    P5_EDX | edx::PAE | edx::SEP | edx::MTRR | edx::PGE | edx::CMOV | edx::PAT | edx::MMX | edx::FXSR | edx::SSE;
/// x86-64 EDX features: the Pentium III's plus CLFLUSH and SSE2.
const X64_EDX: u32 = P3_EDX | edx::CLFSH | edx::SSE2;

/// The instruction features of each generation (cumulative).
const P5_INSNS: &[F] = &[F::TSC, F::MSR, F::CX8];
const P3_INSNS: &[F] = &[F::TSC, F::MSR, F::CX8, F::CMOV, F::MMX, F::FXSR, F::SSE, F::SEP, F::MULTIBYTENOP, F::RDPMC];
const X64_INSNS: &[F] = &[
    F::TSC,
    F::MSR,
    F::CX8,
    F::CMOV,
    F::MMX,
    F::FXSR,
    F::SSE,
    F::SEP,
    F::MULTIBYTENOP,
    F::RDPMC,
    F::SSE2,
    F::CLFSH,
    F::SYSCALL,
];
const V2_INSNS: &[F] = &[
    F::TSC,
    F::MSR,
    F::CX8,
    F::CMOV,
    F::MMX,
    F::FXSR,
    F::SSE,
    F::SEP,
    F::MULTIBYTENOP,
    F::RDPMC,
    F::SSE2,
    F::CLFSH,
    F::SYSCALL,
    F::CMPXCHG16B,
    F::POPCNT,
    F::SSE3,
    F::SSSE3,
    F::SSE4_1,
    F::SSE4_2,
    F::RDTSCP,
];

/// One model's CPUID data.
struct ModelData {
    max_basic: u32,
    /// Highest extended leaf, 0 for none.
    max_ext: u32,
    /// Leaf 1 EAX: stepping, model, family (with the extended fields).
    signature: u32,
    /// Leaf 1 EBX: brand index, CLFLUSH line size, logical processors, APIC ID.
    leaf1_ebx: u32,
    leaf1_ecx: u32,
    leaf1_edx: u32,
    /// Leaf 2: cache and TLB descriptor bytes (AL = 1: one call).
    leaf2: [u32; 4],
    /// Leaf 4 subleaves: deterministic cache parameters.
    leaf4: &'static [[u32; 4]],
    leaf7_ebx: u32,
    leaf7_ecx: u32,
    /// Leaf 0xD subleaf 1 EAX: XSAVEOPT, XSAVEC, XGETBV1.
    xsave_ext: u32,
    ext1_ecx: u32,
    ext1_edx: u32,
    /// Leaf 0x80000006 ECX: L2 size in KiB (31:16), associativity code (15:12), line.
    ext6_ecx: u32,
    /// Leaves 0x80000002-4.
    brand: [u8; 48],
    /// The instruction features the model has (of [`GRADED`]).
    instructions: &'static [F],
}

/// A brand string, NUL padded to 48 bytes.
const fn brand(s: &str) -> [u8; 48] {
    let mut b = [0u8; 48];
    let s = s.as_bytes();
    let mut i = 0;
    while i < s.len() && i < 47 {
        b[i] = s[i];
        i += 1;
    }
    b
}

/// A leaf 4 subleaf: cache `kind` (1 data, 2 instruction, 3 unified) at `level`, with
/// `ways`, 64-byte lines and `sets`; `inclusive` and `complex` set EDX bits 1 and 2.
/// One logical processor shares it, one core per package (SDM Vol. 2A Table 3-8).
const fn cache(kind: u32, level: u32, ways: u32, sets: u32, inclusive: bool, complex: bool) -> [u32; 4] {
    [kind | level << 5 | 1 << 8, (ways - 1) << 22 | 63, sets - 1, (inclusive as u32) << 1 | (complex as u32) << 2]
}

static I486: ModelData = ModelData {
    max_basic: 1,
    max_ext: 0,
    signature: 0x480,
    leaf1_ebx: 0,
    leaf1_ecx: 0,
    leaf1_edx: edx::FPU,
    leaf2: [0; 4],
    leaf4: &[],
    leaf7_ebx: 0,
    leaf7_ecx: 0,
    xsave_ext: 0,
    ext1_ecx: 0,
    ext1_edx: 0,
    ext6_ecx: 0,
    brand: [0; 48],
    instructions: &[],
};

static PENTIUM: ModelData = ModelData {
    max_basic: 1,
    max_ext: 0,
    signature: 0x52c,
    leaf1_ebx: 0,
    leaf1_ecx: 0,
    leaf1_edx: P5_EDX,
    leaf2: [0; 4],
    leaf4: &[],
    leaf7_ebx: 0,
    leaf7_ecx: 0,
    xsave_ext: 0,
    ext1_ecx: 0,
    ext1_edx: 0,
    ext6_ecx: 0,
    brand: [0; 48],
    instructions: P5_INSNS,
};

static PENTIUM3: ModelData = ModelData {
    max_basic: 2,
    max_ext: 0,
    signature: 0x683,
    // Brand index 2: "Intel Pentium III processor".
    leaf1_ebx: 2,
    leaf1_ecx: 0,
    leaf1_edx: P3_EDX,
    // 01 ITLB 4K 32 entries, 02 ITLB 4M 2, 03 DTLB 4K 64, 82 L2 256K 8-way 32-byte
    // lines, 08 L1I 16K 4-way, 04 DTLB 4M 8, 0C L1D 16K 4-way.
    leaf2: [0x0302_0101, 0, 0, 0x0c04_0882],
    leaf4: &[],
    leaf7_ebx: 0,
    leaf7_ecx: 0,
    xsave_ext: 0,
    ext1_ecx: 0,
    ext1_edx: 0,
    ext6_ecx: 0,
    brand: [0; 48],
    instructions: P3_INSNS,
};

static NOCONA: ModelData = ModelData {
    max_basic: 4,
    max_ext: 0x8000_0008,
    signature: 0xf41,
    leaf1_ebx: 0x0001_0800,
    leaf1_ecx: 0,
    leaf1_edx: X64_EDX,
    // 50 ITLB 64 entries, 5B DTLB 64, 60 L1D 16K 8-way 64-byte lines, 70 trace cache
    // 12K uops, 40 no L3, 7C L2 1M 8-way 64-byte lines.
    leaf2: [0x605b_5001, 0, 0, 0x007c_7040],
    leaf4: &[cache(1, 1, 8, 32, false, false), cache(3, 2, 8, 2048, false, false)],
    leaf7_ebx: 0,
    leaf7_ecx: 0,
    xsave_ext: 0,
    ext1_ecx: 0,
    ext1_edx: EXT_SYSCALL | EXT_NX | EXT_LM,
    ext6_ecx: 1024 << 16 | 6 << 12 | 64,
    brand: brand("Intel(R) Xeon(TM) CPU 3.00GHz"),
    instructions: X64_INSNS,
};

static NEHALEM: ModelData = ModelData {
    max_basic: 4,
    max_ext: 0x8000_0008,
    signature: 0x106a5,
    leaf1_ebx: 0x0001_0800,
    leaf1_ecx: V2_ECX,
    leaf1_edx: X64_EDX,
    leaf2: [0x5503_5a01, 0x00f0_b2e4, 0, 0x09ca_212c],
    leaf4: &[
        cache(1, 1, 8, 64, false, false),
        cache(2, 1, 4, 128, false, false),
        cache(3, 2, 8, 512, false, false),
        cache(3, 3, 16, 8192, true, false),
    ],
    leaf7_ebx: 0,
    leaf7_ecx: 0,
    xsave_ext: 0,
    ext1_ecx: EXT_LAHF,
    ext1_edx: EXT_SYSCALL | EXT_NX | EXT_LM | EXT_RDTSCP,
    ext6_ecx: 256 << 16 | 6 << 12 | 64,
    brand: brand("Intel(R) Core(TM) i7 CPU 920 @ 2.67GHz"),
    instructions: V2_INSNS,
};

static HASWELL: ModelData = ModelData {
    max_basic: 0xd,
    max_ext: 0x8000_0008,
    signature: 0x306c3,
    leaf1_ebx: 0x0001_0800,
    leaf1_ecx: V2_ECX | V3_AVX_ECX | ECX_MOVBE | ECX_XSAVE | ECX_AES | ECX_PCLMULQDQ | ECX_RDRAND | ECX_PCID,
    leaf1_edx: X64_EDX,
    // FF in AL's register: leaf 4 describes the caches; the TLB descriptors remain.
    leaf2: [0x7603_6301, 0x00f0_b5ff, 0, 0x00c3_0000],
    leaf4: &[
        cache(1, 1, 8, 64, false, false),
        cache(2, 1, 8, 64, false, false),
        cache(3, 2, 8, 512, false, false),
        cache(3, 3, 16, 8192, true, true),
    ],
    leaf7_ebx: LEAF7_FSGSBASE | LEAF7_AVX2 | LEAF7_BMI1 | LEAF7_BMI2 | LEAF7_SMEP | LEAF7_INVPCID,
    leaf7_ecx: 0,
    xsave_ext: XSAVE_EXT_XSAVEOPT,
    ext1_ecx: EXT_LAHF | EXT_LZCNT,
    ext1_edx: EXT_SYSCALL | EXT_NX | EXT_LM | EXT_RDTSCP | EXT_PAGE1GB,
    ext6_ecx: 256 << 16 | 6 << 12 | 64,
    brand: brand("Intel(R) Core(TM) i7-4770 CPU @ 3.40GHz"),
    instructions: &[
        F::TSC,
        F::MSR,
        F::CX8,
        F::CMOV,
        F::MMX,
        F::FXSR,
        F::SSE,
        F::SEP,
        F::MULTIBYTENOP,
        F::RDPMC,
        F::SSE2,
        F::CLFSH,
        F::SYSCALL,
        F::CMPXCHG16B,
        F::POPCNT,
        F::FSGSBASE,
        F::SSE3,
        F::SSSE3,
        F::SSE4_1,
        F::SSE4_2,
        F::MOVBE,
        F::BMI1,
        F::BMI2,
        F::XSAVE,
        F::XSAVEOPT,
        F::AES,
        F::PCLMULQDQ,
        F::RDRAND,
        F::RDTSCP,
        F::AVX,
        F::AVX2,
        F::FMA,
        F::F16C,
        F::INVPCID,
    ],
};

/// rx86's own model: family 6, model 0x0F, stepping 1, with every implemented feature.
static MAX: ModelData = ModelData {
    max_basic: 0xd,
    max_ext: 0x8000_0008,
    signature: 0x6f1,
    // CLFLUSH line 8*8 bytes; one logical CPU.
    leaf1_ebx: 0x0001_0800,
    leaf1_ecx: V2_ECX | V3_AVX_ECX | ECX_MOVBE | ECX_XSAVE | ECX_AES | ECX_PCLMULQDQ | ECX_RDRAND | ECX_PCID,
    leaf1_edx: X64_EDX,
    leaf2: [0; 4],
    leaf4: &[],
    leaf7_ebx: LEAF7_FSGSBASE
        | LEAF7_AVX2
        | LEAF7_BMI1
        | LEAF7_BMI2
        | LEAF7_ADX
        | LEAF7_SHA
        | LEAF7_RDSEED
        | LEAF7_CLFLUSHOPT
        | LEAF7_CLWB
        | LEAF7_SMEP
        | LEAF7_SMAP
        | LEAF7_INVPCID,
    leaf7_ecx: LEAF7_ECX_RDPID | LEAF7_ECX_UMIP,
    xsave_ext: XSAVE_EXT_XSAVEOPT | XSAVE_EXT_XSAVEC | XSAVE_EXT_XGETBV1,
    ext1_ecx: EXT_LAHF | EXT_LZCNT | EXT_PREFETCHW,
    ext1_edx: EXT_SYSCALL | EXT_NX | EXT_LM | EXT_RDTSCP | EXT_PAGE1GB,
    ext6_ecx: 0,
    brand: brand("rx86 software x86 interpreter"),
    instructions: &GRADED,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn family_model(sig: u32) -> (u32, u32) {
        let family = (sig >> 8) & 0xf;
        let model = (sig >> 4) & 0xf;
        if family == 6 || family == 0xf {
            (family + ((sig >> 20) & 0xff), model | ((sig >> 12) & 0xf0))
        } else {
            (family, model)
        }
    }

    #[test]
    fn max_reports_every_implemented_feature() {
        let m = CpuModel::default();
        assert_eq!(m, CpuModel::Max);
        assert_eq!(m.cpuid(0, 0), [0xd, 0x756e_6547, 0x6c65_746e, 0x4965_6e69]);
        let ecx = 1 | 1 << 1 | 1 << 9 | 1 << 12 | 1 << 13 | 1 << 19 | 1 << 20 | 1 << 22 | 1 << 23 | 1 << 25 | 1 << 26;
        let ecx = ecx | 1 << 17 | 1 << 28 | 1 << 29 | 1 << 30;
        assert_eq!(m.cpuid(1, 0), [0x6f1, 0x0001_0800, ecx, 0x0789_bb7d]);
        let ebx = 1 | 1 << 3 | 1 << 5 | 1 << 7 | 1 << 8 | 1 << 10 | 1 << 18 | 1 << 19 | 1 << 20 | 1 << 23 | 1 << 24;
        assert_eq!(m.cpuid(7, 0), [0, ebx | 1 << 29, 1 << 2 | 1 << 22, 0]);
        let ext_edx = 1 << 11 | 1 << 20 | 1 << 26 | 1 << 27 | 1 << 29;
        assert_eq!(m.cpuid(0x8000_0001, 0), [0, 0, 1 | 1 << 5 | 1 << 8, ext_edx]);
        assert_eq!(m.cpuid(2, 0), [0; 4]);
        assert_eq!(m.cpuid(0x8000_0008, 0), [0x3024, 0, 0, 0]);
    }

    #[test]
    fn a_486_has_no_long_mode_nor_extended_leaves() {
        let m = CpuModel::from_name("486").unwrap();
        assert_eq!(m.cpuid(0, 0)[0], 1, "max basic leaf");
        assert_eq!(family_model(m.cpuid(1, 0)[0]), (4, 8));
        assert_eq!(m.cpuid(1, 0)[3], 1, "FPU only");
        assert_eq!(m.cpuid(0x8000_0000, 0)[0], 0, "no extended leaves");
        assert_eq!(m.cpuid(0x8000_0001, 0), [0; 4]);
        assert!(!m.long_mode());
    }

    #[test]
    fn each_model_reports_its_generation() {
        let lm = |m: CpuModel| m.cpuid(0x8000_0001, 0)[3] & EXT_LM != 0;
        assert_eq!(family_model(CpuModel::Pentium.cpuid(1, 0)[0]), (5, 2));
        assert_eq!(family_model(CpuModel::Pentium3.cpuid(1, 0)[0]), (6, 8));
        assert_eq!(CpuModel::Pentium3.cpuid(1, 0)[3] & (edx::SSE | edx::SSE2), edx::SSE);
        assert!(!lm(CpuModel::Pentium3));
        assert_eq!(family_model(CpuModel::X86_64.cpuid(1, 0)[0]), (15, 4));
        assert!(lm(CpuModel::X86_64));
        assert_eq!(CpuModel::X86_64.cpuid(1, 0)[2] & ECX_CX16, 0);
        assert_eq!(family_model(CpuModel::X86_64V2.cpuid(1, 0)[0]), (6, 0x1a));
        assert_eq!(CpuModel::X86_64V2.cpuid(1, 0)[2], V2_ECX, "SSE3 to SSE4.2, CX16, POPCNT");
        assert_eq!(family_model(CpuModel::X86_64V3.cpuid(1, 0)[0]), (6, 0x3c));
        // Haswell: SMEP and INVPCID, but SMAP came with Broadwell and UMIP later still.
        assert_eq!(
            CpuModel::X86_64V3.cpuid(7, 0)[1],
            LEAF7_FSGSBASE | LEAF7_AVX2 | LEAF7_BMI1 | LEAF7_BMI2 | LEAF7_SMEP | LEAF7_INVPCID
        );
        assert_eq!(CpuModel::X86_64V3.cpuid(7, 0)[2] & LEAF7_ECX_UMIP, 0);
        for (_, m) in CpuModel::ALL {
            let haswell = matches!(m, CpuModel::X86_64V3 | CpuModel::Max);
            assert_eq!(m.has_1g_pages(), haswell, "{m:?}");
            assert_eq!(m.has_invpcid(), haswell, "{m:?}");
            assert_eq!(m.cr4_supported() & (cr4::PCIDE | cr4::SMEP) != 0, haswell, "{m:?}");
            assert_eq!(m.cr4_supported() & (cr4::SMAP | cr4::UMIP) != 0, m == CpuModel::Max, "{m:?}");
        }
        // AVX, FMA and F16C from x86-64-v3 on; OSXSAVE is CR4's, never static.
        for (_, m) in CpuModel::ALL {
            let v3 = matches!(m, CpuModel::X86_64V3 | CpuModel::Max);
            assert_eq!(m.cpuid(1, 0)[2] & (1 << 12 | 1 << 27 | 1 << 28 | 1 << 29), (v3 as u32) * V3_AVX_ECX, "{m:?}");
            assert_eq!(m.has_avx(), v3, "{m:?}");
        }
        assert!(CpuModel::X86_64V3.has_xsave() && !CpuModel::X86_64V2.has_xsave());
        assert_eq!(CpuModel::X86_64V3.cpuid(0xd, 0), [7, 576, 832, 0]);
        assert_eq!(CpuModel::X86_64V3.cpuid(0xd, 2), [256, 576, 0, 0], "YMM_Hi128: 256 bytes at 576");
        assert_eq!(CpuModel::X86_64V3.cpuid(0xd, 1)[0], 1, "Haswell: XSAVEOPT only");
        assert_eq!(CpuModel::Max.cpuid(0xd, 1), [7, 576, 0, 0], "max: XSAVEOPT, XSAVEC, XGETBV1; compacted size");
        assert!(CpuModel::Max.has_xsavec() && !CpuModel::X86_64V3.has_xsavec());
        assert_eq!(CpuModel::X86_64V2.cpuid(0xd, 0), [0; 4]);
        let b: Vec<u8> = (0x8000_0002..=0x8000_0004u32)
            .flat_map(|l| CpuModel::X86_64V3.cpuid(l, 0))
            .flat_map(u32::to_le_bytes)
            .collect();
        assert!(b.starts_with(b"Intel(R) Core(TM) i7-4770"));
        for (_, m) in CpuModel::ALL {
            // Nothing the interpreter lacks: every model's bits are within max's.
            for leaf in [1, 7, 0x8000_0001] {
                let (r, max) = (m.cpuid(leaf, 0), CpuModel::Max.cpuid(leaf, 0));
                assert_eq!(r[2] & !max[2], 0, "{m:?} leaf {leaf:#x} ECX");
                assert_eq!(r[3] & !max[3], 0, "{m:?} leaf {leaf:#x} EDX");
                if leaf == 7 {
                    assert_eq!(r[1] & !max[1], 0, "{m:?} leaf 7 EBX");
                }
            }
            assert_eq!(CpuModel::from_name(m.name()), Some(m));
        }
    }

    #[test]
    fn cache_leaves_describe_the_parts() {
        // Haswell's L3: 16 ways x 8192 sets x 64 bytes = 8 MiB.
        let [a, b, c, _] = CpuModel::X86_64V3.cpuid(4, 3);
        assert_eq!((a & 0x1f, (a >> 5) & 7), (3, 3));
        let size = ((b >> 22) + 1) * (((b >> 12) & 0x3ff) + 1) * ((b & 0xfff) + 1) * (c + 1);
        assert_eq!(size, 8 << 20);
        assert_eq!(CpuModel::X86_64V3.cpuid(4, 4)[0] & 0x1f, 0, "no fifth cache");
        assert_eq!(CpuModel::X86_64V2.cpuid(0x8000_0006, 0)[2] >> 16, 256, "256 KiB L2");
        assert_eq!(CpuModel::Pentium3.cpuid(2, 0)[0] & 0xff, 1, "one leaf-2 call");
    }

    fn decode64(bytes: &[u8]) -> Instruction {
        iced_x86::Decoder::new(64, bytes, 0).decode()
    }

    #[test]
    fn instructions_follow_the_model() {
        let cmov = decode64(&[0x0f, 0x44, 0xc1]);
        let rdtsc = decode64(&[0x0f, 0x31]);
        let popcnt = decode64(&[0xf3, 0x0f, 0xb8, 0xc1]);
        let cx16 = decode64(&[0x48, 0x0f, 0xc7, 0x0e]);
        let lahf = decode64(&[0x9f]);
        let addsd = decode64(&[0xf2, 0x0f, 0x58, 0xc1]);
        let nopl = decode64(&[0x0f, 0x1f, 0x00]);
        let pause = decode64(&[0xf3, 0x90]);
        let rdfsbase = decode64(&[0xf3, 0x48, 0x0f, 0xae, 0xc0]);
        assert!(lacks(&CpuModel::I486, &rdtsc) && !lacks(&CpuModel::Pentium, &rdtsc));
        assert!(lacks(&CpuModel::Pentium, &cmov) && !lacks(&CpuModel::Pentium3, &cmov));
        assert!(lacks(&CpuModel::Pentium, &nopl) && !lacks(&CpuModel::Pentium3, &nopl));
        assert!(lacks(&CpuModel::Pentium3, &addsd) && !lacks(&CpuModel::X86_64, &addsd));
        assert!(lacks(&CpuModel::X86_64, &popcnt) && !lacks(&CpuModel::X86_64V2, &popcnt));
        assert!(lacks(&CpuModel::X86_64, &cx16) && !lacks(&CpuModel::X86_64V2, &cx16));
        assert!(lacks(&CpuModel::X86_64, &lahf) && !lacks(&CpuModel::X86_64V2, &lahf));
        assert!(lacks(&CpuModel::X86_64V2, &rdfsbase) && !lacks(&CpuModel::X86_64V3, &rdfsbase));
        let pshufb = decode64(&[0x66, 0x0f, 0x38, 0x00, 0xc1]);
        let pcmpistri = decode64(&[0x66, 0x0f, 0x3a, 0x63, 0xc1, 0x0c]);
        let haddps = decode64(&[0xf2, 0x0f, 0x7c, 0xc1]);
        let pext = decode64(&[0xc4, 0xe2, 0x72, 0xf5, 0xc2]);
        let movbe = decode64(&[0x0f, 0x38, 0xf0, 0x06]);
        let adcx = decode64(&[0x66, 0x0f, 0x38, 0xf6, 0xc1]);
        let tzcnt = decode64(&[0xf3, 0x0f, 0xbc, 0xc1]);
        for i in [&pshufb, &pcmpistri, &haddps] {
            assert!(lacks(&CpuModel::X86_64, i) && !lacks(&CpuModel::X86_64V2, i), "{i}");
        }
        for i in [&pext, &movbe] {
            assert!(lacks(&CpuModel::X86_64V2, i) && !lacks(&CpuModel::X86_64V3, i), "{i}");
        }
        assert!(lacks(&CpuModel::X86_64V3, &adcx) && !lacks(&CpuModel::Max, &adcx));
        assert!(!lacks(&CpuModel::Pentium, &tzcnt), "TZCNT is BSF before BMI1");
        assert!(!lacks(&CpuModel::I486, &iced_x86::Decoder::new(32, &[0x9f], 0).decode()), "LAHF outside 64-bit");
        assert!(!lacks(&CpuModel::I486, &pause), "PAUSE is a NOP before SSE2");
        for (_, m) in CpuModel::ALL {
            assert!(!lacks(&m, &decode64(&[0x0f, 0xa2])), "CPUID on {m:?}");
        }
    }

    #[test]
    fn a_guest_on_a_486_sees_a_486() {
        use crate::interp::fault::vec;
        use crate::interp::test_util::Machine;
        use iced_x86::code_asm::*;
        // CPUID: no extended leaves (so no long mode), family 4; then CMOV is #UD.
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(eax, 0x8000_0000u32).unwrap();
        a.cpuid().unwrap();
        a.mov(esi, eax).unwrap();
        a.mov(eax, 1).unwrap();
        a.cpuid().unwrap();
        a.mov(edi, eax).unwrap();
        a.cmove(eax, ebx).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::protected32(&mut a);
        m.catch_exceptions(false);
        m.cpu.set_cpu_model(CpuModel::I486);
        m.run();
        assert_eq!((m.gpr(6), m.gpr(7)), (0, 0x480));
        assert_eq!(m.cpu.last_exception, Some((vec::UD, None)));
    }

    #[test]
    fn x86_64_v2_runs_popcnt_and_rejects_avx() {
        use crate::interp::fault::vec;
        use crate::interp::test_util::Machine;
        use iced_x86::code_asm::*;
        for (model, popcnt_runs) in [(CpuModel::X86_64V2, true), (CpuModel::X86_64, false)] {
            let mut a = CodeAssembler::new(64).unwrap();
            a.mov(rcx, 0xffu64).unwrap();
            a.xor(eax, eax).unwrap();
            a.popcnt(rax, rcx).unwrap();
            a.vaddps(ymm0, ymm1, ymm2).unwrap();
            a.hlt().unwrap();
            let mut m = Machine::long64(&mut a);
            m.catch_exceptions(true);
            m.cpu.set_cpu_model(model);
            m.run();
            assert_eq!(m.gpr(0) == 8, popcnt_runs, "{model:?}: POPCNT");
            assert_eq!(m.cpu.last_exception, Some((vec::UD, None)), "{model:?}: AVX or POPCNT");
        }
    }

    #[test]
    fn lzcnt_is_bsr_without_abm() {
        use crate::interp::test_util::Machine;
        use iced_x86::code_asm::*;
        for (model, want) in [(CpuModel::X86_64V2, 4), (CpuModel::X86_64V3, 27)] {
            let mut a = CodeAssembler::new(64).unwrap();
            a.mov(ecx, 0x10).unwrap();
            a.lzcnt(eax, ecx).unwrap();
            a.hlt().unwrap();
            let mut m = Machine::long64(&mut a);
            m.cpu.set_cpu_model(model);
            m.run();
            assert_eq!(m.gpr(0), want, "{model:?}");
        }
    }

    #[test]
    fn efer_lme_needs_long_mode() {
        use crate::interp::fault::vec;
        use crate::interp::test_util::Machine;
        use iced_x86::code_asm::*;
        for (model, faults) in [(CpuModel::Pentium3, true), (CpuModel::X86_64, false)] {
            let mut a = CodeAssembler::new(32).unwrap();
            a.mov(ecx, 0xc000_0080u32).unwrap();
            a.rdmsr().unwrap();
            a.or(eax, 0x100).unwrap();
            a.wrmsr().unwrap();
            a.hlt().unwrap();
            let mut m = Machine::protected32(&mut a);
            m.catch_exceptions(false);
            m.cpu.set_cpu_model(model);
            m.run();
            let gp = m.cpu.last_exception == Some((vec::GP, Some(0)));
            assert_eq!(gp, faults, "{model:?}");
        }
    }
}
