//! Random test cases: registers, flags, data and a sequence of general-purpose integer
//! instructions (BMI1/BMI2, MOVBE, ADX and CRC32 included) built from `iced-x86`'s `Code`
//! table and encoded with its encoder, plus x87 units (transcendental and exact x87
//! operations on operands in their domains, in every rounding mode and precision, results
//! and status word stored to the data area) and SIMD units (SSE3 to SSE4.2 in their XMM
//! and MMX forms, AES-NI, PCLMULQDQ and SHA, on registers loaded from the data area, in a
//! random MXCSR, with the registers and MXCSR stored back to it) and AVX units (AVX,
//! AVX2, FMA and F16C on YMM registers, `gen/avx.rs`).
//!
//! Every memory operand is an absolute address inside [`layout::DATA`]; string
//! instructions come with their own `mov esi/edi/ecx` setup so that they stay inside
//! it; an instruction that reads a flag a previous one left undefined is not generated
//! (SDM Vol. 1 Appendix A lists the undefined flags; iced's `rflags_undefined` carries
//! them per instruction).

mod avx;

use super::layout::DATA_LEN;
use super::Mode;
use iced_x86::{
    Code, CpuidFeature, Encoder, FlowControl, Instruction, MemoryOperand, Mnemonic as M, OpCodeOperandKind as K,
    OpKind, Register, RepPrefixKind, RflagsBits,
};
use rx86_cpu::interp::fpu::transcendental::may_differ_from_hardware;

/// EFLAGS bits used here (SDM Vol. 1 §3.4.3).
pub mod flag {
    /// Carry.
    pub const CF: u64 = 1 << 0;
    /// Parity.
    pub const PF: u64 = 1 << 2;
    /// Auxiliary carry.
    pub const AF: u64 = 1 << 4;
    /// Zero.
    pub const ZF: u64 = 1 << 6;
    /// Sign.
    pub const SF: u64 = 1 << 7;
    /// Interrupt enable.
    pub const IF: u64 = 1 << 9;
    /// Direction.
    pub const DF: u64 = 1 << 10;
    /// Overflow.
    pub const OF: u64 = 1 << 11;
    /// The status flags plus DF: the bits a sequence may change and the comparison checks.
    pub const COMPARED: u64 = CF | PF | AF | ZF | SF | OF | DF;
}

/// A deterministic pseudo-random source (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A coin flip.
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 != 0
    }

    /// A value biased towards the edges arithmetic cares about (0, ±1, sign bits,
    /// small numbers), otherwise uniform.
    pub fn interesting(&mut self) -> u64 {
        match self.below(8) {
            0 => [0, 1, 2, u64::MAX, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff][self.below(10) as usize],
            1 => [0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 1 << 63, (1 << 63) - 1][self.below(5) as usize],
            2 => self.below(64),
            3 => (self.below(64) as i64 - 32) as u64,
            _ => self.next_u64(),
        }
    }
}

/// One random test: the initial state and the instruction sequence.
#[derive(Debug, Clone)]
pub struct Case {
    /// The mode the sequence runs in.
    pub mode: Mode,
    /// Initial RAX..R15 (RSP is always [`SEQ_RSP`]).
    pub gpr: [u64; 16],
    /// Initial RFLAGS (status flags and DF; bit 1 set).
    pub rflags: u64,
    /// Initial contents of the data area.
    pub data: Vec<u8>,
    /// The sequence in units that must stay together (a string instruction and its
    /// register setup); the shrinker removes whole units.
    pub units: Vec<Vec<Instruction>>,
}

/// A sequence encoded at [`CODE`].
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The machine code.
    pub bytes: Vec<u8>,
    /// Address of each instruction.
    pub starts: Vec<u64>,
    /// Address just past the last instruction.
    pub end: u64,
}

impl Case {
    /// The instructions in execution order.
    pub fn instructions(&self) -> impl Iterator<Item = &Instruction> {
        self.units.iter().flatten()
    }

    /// True when the sequence has an x87 unit.
    pub fn has_x87(&self) -> bool {
        self.instructions().any(|i| X87_OPS.contains(&i.code()))
    }

    /// True when the sequence has a SIMD or an AVX unit.
    pub fn has_simd(&self) -> bool {
        self.instructions().any(|i| is_simd_extension(i.code()) || avx::is_avx_extension(i.code()))
    }

    /// True when the sequence has an AVX unit.
    pub fn has_avx(&self) -> bool {
        self.instructions().any(|i| avx::is_avx_extension(i.code()))
    }

    /// Encodes the sequence at [`CODE`].
    pub fn encode(&self) -> Result<Encoded, String> {
        let bitness = self.mode.bitness();
        let mut enc = Encoder::new(bitness);
        let mut starts = Vec::new();
        let mut ip = self.mode.code();
        let fail = |ins: &Instruction, e: iced_x86::IcedError| format!("{:?}: {e}", ins.code());
        for unit in &self.units {
            for (k, ins) in unit.iter().enumerate() {
                starts.push(ip);
                let mut ins = *ins;
                if is_forward_branch(&ins) {
                    // Branch over the rest of the unit: its length does not depend on
                    // where it is, and the branch's own length does not depend on
                    // how far it goes (rel8 or rel32 is part of the form).
                    let mut rest = 0;
                    for skipped in &unit[k + 1..] {
                        rest += Encoder::new(bitness).encode(skipped, ip).map_err(|e| fail(skipped, e))?;
                    }
                    set_branch_target(&mut ins, ip);
                    let own = Encoder::new(bitness).encode(&ins, ip).map_err(|e| fail(&ins, e))?;
                    set_branch_target(&mut ins, ip + (own + rest) as u64);
                }
                let n = enc.encode(&ins, ip).map_err(|e| fail(&ins, e))?;
                ip += n as u64;
            }
        }
        Ok(Encoded { bytes: enc.take_buffer(), starts, end: ip })
    }

    /// Flags left undefined before each instruction and, last, after the sequence;
    /// `None` when an instruction reads a flag that is undefined at that point.
    pub fn undefined_flags(&self) -> Option<Vec<u64>> {
        let mut undefined = 0;
        let mut out = Vec::new();
        for unit in &self.units {
            let conditional = unit.first().is_some_and(is_forward_branch);
            for ins in unit {
                out.push(undefined);
                if eflags(ins.rflags_read()) & undefined != 0 {
                    return None;
                }
                let after = undefined_after(ins, undefined);
                // What a branch may skip can only add undefined flags.
                undefined = if conditional { undefined | after } else { after };
            }
        }
        out.push(undefined);
        Some(out)
    }
}

/// Converts iced's `RflagsBits` to EFLAGS bit positions.
fn eflags(bits: u32) -> u64 {
    [
        (RflagsBits::OF, flag::OF),
        (RflagsBits::SF, flag::SF),
        (RflagsBits::ZF, flag::ZF),
        (RflagsBits::AF, flag::AF),
        (RflagsBits::CF, flag::CF),
        (RflagsBits::PF, flag::PF),
        (RflagsBits::DF, flag::DF),
    ]
    .iter()
    .filter(|(b, _)| bits & b != 0)
    .fold(0, |acc, (_, f)| acc | f)
}

/// The set of undefined flags after `ins`, given the set before it. Shifts and
/// rotates leave the flags alone for a zero masked count, and OF is undefined unless
/// the count is 1 (SDM Vol. 2B "SAL/SAR/SHL/SHR", "RCL/RCR/ROL/ROR", "SHLD", "SHRD"):
/// with an immediate count that is exact, with CL nothing is cleared and OF is masked.
/// A REP string instruction with RCX = 0 leaves the flags alone too.
fn undefined_after(ins: &Instruction, before: u64) -> u64 {
    let undefined = eflags(ins.rflags_undefined());
    let modified = eflags(ins.rflags_modified());
    let shift = matches!(
        ins.mnemonic(),
        M::Rol | M::Ror | M::Rcl | M::Rcr | M::Shl | M::Sal | M::Shr | M::Sar | M::Shld | M::Shrd
    );
    if shift {
        let size = match ins.op0_kind() {
            OpKind::Register => ins.op0_register().size(),
            _ => ins.memory_size().size(),
        };
        let count_mask = if size == 8 { 0x3f } else { 0x1f };
        let count = ins.op_kinds().any(|k| k == OpKind::Immediate8).then(|| ins.immediate8() & count_mask);
        match count {
            Some(0) => before,
            Some(1) => (before & !modified) | (undefined & !flag::OF),
            Some(_) => (before & !modified) | undefined | flag::OF,
            None => before | undefined | flag::OF,
        }
    } else if ins.has_rep_prefix() || ins.has_repne_prefix() {
        before | undefined
    } else {
        (before & !modified) | undefined
    }
}

/// True for the mnemonics the generator draws from `Code`.
fn wanted(m: M, mode: Mode) -> bool {
    let common = matches!(
        m,
        M::Add
            | M::Adc
            | M::Sub
            | M::Sbb
            | M::Cmp
            | M::And
            | M::Or
            | M::Xor
            | M::Test
            | M::Inc
            | M::Dec
            | M::Neg
            | M::Not
            | M::Xadd
            | M::Cmpxchg
            | M::Cmpxchg8b
            | M::Cmpxchg16b
            | M::Mul
            | M::Imul
            | M::Div
            | M::Idiv
            | M::Rol
            | M::Ror
            | M::Rcl
            | M::Rcr
            | M::Shl
            | M::Sal
            | M::Shr
            | M::Sar
            | M::Shld
            | M::Shrd
            | M::Bt
            | M::Bts
            | M::Btr
            | M::Btc
            | M::Bsf
            | M::Bsr
            | M::Tzcnt
            | M::Lzcnt
            | M::Popcnt
            | M::Mov
            | M::Movzx
            | M::Movsx
            | M::Movsxd
            | M::Lea
            | M::Xchg
            | M::Bswap
            | M::Cbw
            | M::Cwde
            | M::Cdqe
            | M::Cwd
            | M::Cdq
            | M::Cqo
            | M::Lahf
            | M::Sahf
            | M::Clc
            | M::Stc
            | M::Cmc
            | M::Cld
            | M::Std
            | M::Cmovo
            | M::Cmovno
            | M::Cmovb
            | M::Cmovae
            | M::Cmove
            | M::Cmovne
            | M::Cmovbe
            | M::Cmova
            | M::Cmovs
            | M::Cmovns
            | M::Cmovp
            | M::Cmovnp
            | M::Cmovl
            | M::Cmovge
            | M::Cmovle
            | M::Cmovg
            | M::Seto
            | M::Setno
            | M::Setb
            | M::Setae
            | M::Sete
            | M::Setne
            | M::Setbe
            | M::Seta
            | M::Sets
            | M::Setns
            | M::Setp
            | M::Setnp
            | M::Setl
            | M::Setge
            | M::Setle
            | M::Setg
            | M::Push
            | M::Pop
            | M::Pushf
            | M::Pushfd
            | M::Pushfq
            | M::Movbe
            | M::Crc32
            | M::Adcx
            | M::Adox
    );
    let legacy_only = matches!(
        m,
        M::Daa | M::Das | M::Aaa | M::Aas | M::Aam | M::Aad | M::Pusha | M::Pushad | M::Popa | M::Popad | M::Bound
    );
    // VEX encodings are #UD in real mode.
    common || (legacy_only && mode != Mode::Long64) || (is_bmi(m) && mode != Mode::Real16)
}

/// The VEX-encoded BMI1/BMI2 general-purpose instructions.
fn is_bmi(m: M) -> bool {
    matches!(
        m,
        M::Andn
            | M::Bextr
            | M::Blsi
            | M::Blsmsk
            | M::Blsr
            | M::Bzhi
            | M::Mulx
            | M::Pdep
            | M::Pext
            | M::Rorx
            | M::Sarx
            | M::Shlx
            | M::Shrx
    )
}

/// The SIMD extensions the SIMD units test.
const SIMD_FEATURES: [CpuidFeature; 7] = [
    CpuidFeature::SSE3,
    CpuidFeature::SSSE3,
    CpuidFeature::SSE4_1,
    CpuidFeature::SSE4_2,
    CpuidFeature::AES,
    CpuidFeature::PCLMULQDQ,
    CpuidFeature::SHA,
];

/// True for the SIMD instruction forms of SSE3, SSSE3, SSE4.1, SSE4.2, AES-NI, PCLMULQDQ
/// and SHA (legacy encoding; not FISTTP, an x87 store, nor CRC32, a general-purpose
/// instruction).
fn is_simd_extension(c: Code) -> bool {
    c.op_code().encoding() == iced_x86::EncodingKind::Legacy
        && !matches!(c.mnemonic(), M::Fisttp | M::Crc32)
        && c.cpuid_features().iter().any(|f| SIMD_FEATURES.contains(f))
}

/// True when the host CPU has every feature `c` needs of [`SIMD_FEATURES`].
fn host_runs_simd(c: Code) -> bool {
    c.cpuid_features().iter().all(|f| match f {
        CpuidFeature::SSE3 => std::arch::is_x86_feature_detected!("sse3"),
        CpuidFeature::SSSE3 => std::arch::is_x86_feature_detected!("ssse3"),
        CpuidFeature::SSE4_1 => std::arch::is_x86_feature_detected!("sse4.1"),
        CpuidFeature::SSE4_2 => std::arch::is_x86_feature_detected!("sse4.2"),
        CpuidFeature::AES => std::arch::is_x86_feature_detected!("aes"),
        CpuidFeature::PCLMULQDQ => std::arch::is_x86_feature_detected!("pclmulqdq"),
        CpuidFeature::SHA => std::arch::is_x86_feature_detected!("sha"),
        _ => true,
    })
}

/// Forms left out: BSWAP r16 (result undefined, SDM Vol. 2A "BSWAP") and the early
/// i486 CMPXCHG encodings 0F A6/A7 (#UD on every later CPU; iced calls them CMPXCHG).
const UNWANTED: [Code; 4] =
    [Code::Bswap_r16, Code::Cmpxchg486_rm8_r8, Code::Cmpxchg486_rm16_r16, Code::Cmpxchg486_rm32_r32];

/// True unless `m` needs a CPUID feature the host lacks (an old CPU runs LZCNT as BSR
/// and TZCNT as BSF), or is BSF/BSR on a CPU that does not document a zero source as
/// leaving the destination alone (AMD does, like the interpreter; Intel calls it
/// undefined).
fn host_has(m: M) -> bool {
    match m {
        M::Bsf | M::Bsr => host_is_amd(),
        M::Lzcnt => std::arch::is_x86_feature_detected!("lzcnt"),
        M::Tzcnt => std::arch::is_x86_feature_detected!("bmi1"),
        M::Popcnt => std::arch::is_x86_feature_detected!("popcnt"),
        M::Cmpxchg16b => std::arch::is_x86_feature_detected!("cmpxchg16b"),
        M::Movbe => std::arch::is_x86_feature_detected!("movbe"),
        M::Crc32 => std::arch::is_x86_feature_detected!("sse4.2"),
        M::Adcx | M::Adox => std::arch::is_x86_feature_detected!("adx"),
        M::Andn | M::Bextr | M::Blsi | M::Blsmsk | M::Blsr => std::arch::is_x86_feature_detected!("bmi1"),
        m if is_bmi(m) => std::arch::is_x86_feature_detected!("bmi2"),
        _ => true,
    }
}

/// True on an AMD host (CPUID leaf 0 vendor "AuthenticAMD").
fn host_is_amd() -> bool {
    let id = std::arch::x86_64::__cpuid(0);
    (id.ebx, id.edx, id.ecx) == (0x6874_7541, 0x6974_6e65, 0x444d_4163)
}

/// True when the host runs the SIMD units (SSE4.2 implies the rest).
fn host_has_simd() -> bool {
    std::arch::is_x86_feature_detected!("sse4.2") && std::arch::is_x86_feature_detected!("ssse3")
}

/// True when the generator can fill every operand of `code`.
fn operands_supported(kinds: &[K]) -> bool {
    kinds.iter().all(|k| {
        matches!(
            k,
            K::r32_vvvv
                | K::r64_vvvv
                | K::r8_or_mem
                | K::r16_or_mem
                | K::r32_or_mem
                | K::r64_or_mem
                | K::r8_reg
                | K::r8_opcode
                | K::r16_reg
                | K::r16_opcode
                | K::r32_reg
                | K::r32_opcode
                | K::r64_reg
                | K::r64_opcode
                | K::mem
                | K::mem_offs
                | K::al
                | K::cl
                | K::ax
                | K::eax
                | K::rax
                | K::imm8
                | K::imm8_const_1
                | K::imm8sex16
                | K::imm8sex32
                | K::imm8sex64
                | K::imm16
                | K::imm32
                | K::imm32sex64
                | K::imm64
        )
    })
}

/// The string instructions, as (mnemonic letter group, element size).
#[derive(Debug, Clone, Copy)]
enum StringOp {
    Movs,
    Stos,
    Lods,
    Scas,
    Cmps,
}

/// Behaviour a reference CPU is known to get wrong, left out of the cases compared with it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Avoid {
    /// LOCK on an instruction that does not allow it (#UD on hardware).
    pub misplaced_lock: bool,
    /// CS segment overrides (a write through CS is #GP in protected mode on hardware).
    pub cs_override: bool,
    /// The undocumented TEST encodings F6 /1 and F7 /1 (TEST on hardware).
    pub test_aliases: bool,
    /// Data segment register loads of selectors whose later use faults on hardware: null
    /// (0-3, any access is #GP) and the DPL-3 code segments (0x20-0x23 and 0x30-0x33, writes
    /// are #GP).
    pub faulting_data_segments: bool,
    /// CMPXCHG8B (which changes only ZF on hardware).
    pub cmpxchg8b: bool,
    /// The x87 units: QEMU's TCG computes FSIN, FCOS, FSINCOS and FPTAN with the host's
    /// double-precision libm (`target/i386/tcg/fpu_helper.c`), and the nested KVM host showed
    /// its FPREM1 of a denormal divisor differing from hardware in the result and the DE flag.
    pub x87_units: bool,
    /// The instructions beyond SSE2: SIMD units and the VEX-encoded BMI forms (the KVM
    /// runners do not enable SSE for their guests).
    pub extensions: bool,
    /// MOVBE, CRC32, ADCX and ADOX: the nested KVM host showed QEMU's TCG taking the
    /// operand size of MOVBE and CRC32 in 16-bit code the wrong way round.
    pub integer_extensions: bool,
}

impl Avoid {
    /// Nothing left out: the reference is a CPU.
    pub const NOTHING: Avoid = Avoid {
        misplaced_lock: false,
        cs_override: false,
        test_aliases: false,
        faulting_data_segments: false,
        cmpxchg8b: false,
        x87_units: false,
        extensions: false,
        integer_extensions: false,
    };
    /// A hardware KVM vCPU: a CPU, but its runners do not enable SSE.
    pub const KVM: Avoid = Avoid { extensions: true, ..Avoid::NOTHING };
    /// What QEMU's TCG (10.0) gets wrong, as the nested KVM host showed: it runs misplaced
    /// LOCKs, writes through code segments and accesses through null ones without a fault, raises
    /// #UD for F6 /1 and F7 /1, and leaves other flags than ZF garbled after CMPXCHG8B; its
    /// x87 transcendentals are double-precision approximations (from its source) and its
    /// FPREM1 differs on denormals.
    pub const QEMU_TCG: Avoid = Avoid {
        misplaced_lock: true,
        cs_override: true,
        test_aliases: true,
        faulting_data_segments: true,
        cmpxchg8b: true,
        x87_units: true,
        extensions: true,
        integer_extensions: true,
    };
}

/// The x87 instructions the x87 units test: the eight transcendentals, then the exact
/// operations that must agree bit for bit with every operand.
const X87_OPS: [Code; 14] = [
    Code::Fsin,
    Code::Fcos,
    Code::Fsincos,
    Code::Fptan,
    Code::F2xm1,
    Code::Fpatan,
    Code::Fyl2x,
    Code::Fyl2xp1,
    Code::Fprem,
    Code::Fprem1,
    Code::Fscale,
    Code::Fxtract,
    Code::Frndint,
    Code::Fsqrt,
];

/// The undocumented aliases of TEST r/m, imm.
const TEST_ALIASES: [Code; 4] =
    [Code::Test_rm8_imm8_F6r1, Code::Test_rm16_imm16_F7r1, Code::Test_rm32_imm32_F7r1, Code::Test_rm64_imm32_F7r1];

/// Builds random cases for one mode.
pub struct Generator {
    mode: Mode,
    rng: Rng,
    codes: Vec<Code>,
    simd: Vec<Code>,
    avx: Vec<Code>,
    branches: Vec<Code>,
    avoid: Avoid,
    x87_left_out: u64,
}

impl Generator {
    /// A generator for `mode` started from `seed`.
    pub fn new(mode: Mode, seed: u64) -> Self {
        Self::avoiding(mode, seed, Avoid::NOTHING)
    }

    /// A generator for `mode` started from `seed` whose cases leave out what `avoid` names.
    pub fn avoiding(mode: Mode, seed: u64, avoid: Avoid) -> Self {
        let codes = Code::values()
            .filter(|&c| {
                let op = c.op_code();
                let vex = op.encoding() == iced_x86::EncodingKind::VEX && is_bmi(c.mnemonic());
                (op.encoding() == iced_x86::EncodingKind::Legacy || (vex && !avoid.extensions))
                    && supported_in(op, mode)
                    && wanted(c.mnemonic(), mode)
                    && !UNWANTED.contains(&c)
                    && !(avoid.test_aliases && TEST_ALIASES.contains(&c))
                    && !(avoid.cmpxchg8b && c == Code::Cmpxchg8b_m64)
                    && !(avoid.integer_extensions && matches!(c.mnemonic(), M::Movbe | M::Crc32 | M::Adcx | M::Adox))
                    && operands_supported(op.op_kinds())
                    && host_has(c.mnemonic())
            })
            .collect();
        let branches = Code::values()
            .filter(|&c| {
                let op = c.op_code();
                op.encoding() == iced_x86::EncodingKind::Legacy
                    && supported_in(op, mode)
                    && match op.op_kinds() {
                        [K::br32_1 | K::br32_4 | K::br64_1 | K::br64_4] => true,
                        [K::br16_1 | K::br16_2] => mode == Mode::Real16,
                        _ => false,
                    }
                    && matches!(
                        c.flow_control(),
                        FlowControl::ConditionalBranch | FlowControl::UnconditionalBranch | FlowControl::Call
                    )
            })
            .collect();
        let simd = Code::values()
            .filter(|&c| {
                is_simd_extension(c)
                    && host_runs_simd(c)
                    && supported_in(c.op_code(), mode)
                    && c.op_code().op_kinds().iter().all(simd_operand_supported)
            })
            .filter(|_| mode != Mode::Real16 && !avoid.extensions && host_has_simd())
            .collect();
        let avx = if avoid.extensions { Vec::new() } else { avx::codes(mode) };
        Generator { mode, rng: Rng::new(seed), codes, simd, avx, branches, avoid, x87_left_out: 0 }
    }

    /// How many instruction forms the generator draws from.
    pub fn forms(&self) -> usize {
        self.codes.len() + self.simd.len() + self.avx.len()
    }

    /// x87 transcendental operands drawn and left out so far because the host CPU may
    /// round them differently from the interpreter
    /// (`rx86_cpu::interp::fpu::transcendental::may_differ_from_hardware`).
    pub fn x87_left_out(&self) -> u64 {
        self.x87_left_out
    }

    /// The next random case.
    pub fn case(&mut self) -> Case {
        let mask = self.mode.gpr_mask();
        let mut gpr = [0u64; 16];
        let regs = if self.mode == Mode::Long64 { 16 } else { 8 };
        for r in gpr.iter_mut().take(regs) {
            *r = self.rng.interesting() & mask;
        }
        gpr[4] = self.mode.stack();
        // IF is set as on the host, where user code always runs with interrupts on
        // (PUSHF shows it).
        let mut rflags = 2 | flag::IF | (self.rng.next_u64() & (flag::COMPARED & !flag::DF));
        if self.rng.below(4) == 0 {
            rflags |= flag::DF;
        }
        let mut data = vec![0u8; DATA_LEN];
        for chunk in data.chunks_mut(8) {
            let v = self.rng.interesting().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        let mut case = Case { mode: self.mode, gpr, rflags, data, units: Vec::new() };
        let len = 1 + self.rng.below(8);
        while (case.units.len() as u64) < len {
            let unit = match self.rng.below(16) {
                0 => self.string_unit(),
                1..=3 => self.addressed_unit(),
                4 | 5 => self.branch_unit(),
                6 => self.frame_unit(),
                7 if self.mode != Mode::Real16 && self.rng.below(4) == 0 => self.privileged_unit(),
                8 if self.mode != Mode::Real16 && self.rng.below(4) == 0 => self.segment_unit(),
                9 => self.x87_unit(),
                14 => self.avx_unit(),
                15 => self.simd_unit(),
                _ => self.unit(),
            };
            let Some(unit) = unit else { continue };
            case.units.push(unit);
            if case.undefined_flags().is_none() || case.encode().is_err() {
                case.units.pop();
            }
        }
        case
    }

    /// One instruction drawn from the `Code` table (with a `mov cl` in front of a
    /// 16-bit SHLD/SHRD by CL, whose result is undefined for counts above 16, and a
    /// bounded bit offset in front of BT* on memory by a register).
    fn unit(&mut self) -> Option<Vec<Instruction>> {
        let code = self.codes[self.rng.below(self.codes.len() as u64) as usize];
        let mut ins = self.instruction(code)?;
        let m = code.mnemonic();
        let bt_reg = matches!(m, M::Bt | M::Bts | M::Btr | M::Btc) && ins.op1_kind() == OpKind::Register;
        if bt_reg && self.rng.coin() {
            let offset_reg = ins.op1_register();
            let bit_offset = self.rng.below(0x4000) as i64 - 0x2000;
            let operand = self.mode.data() + 0xe00 + self.rng.below(0x400);
            ins.set_op0_kind(OpKind::Memory);
            ins.set_memory_base(Register::None);
            ins.set_memory_index(Register::None);
            ins.set_memory_index_scale(1);
            ins.set_memory_displacement64(operand);
            ins.set_memory_displ_size(if self.mode == Mode::Real16 { 2 } else { 4 });
            ins.set_segment_prefix(Register::None);
            let set = self.load_register(offset_reg, bit_offset as u64 & self.mode.gpr_mask())?;
            return Some(vec![set, ins]);
        }
        let wide16 = matches!(code, Code::Shld_rm16_r16_CL | Code::Shrd_rm16_r16_CL);
        if wide16 {
            let count = self.rng.below(17) | (self.rng.below(2) << 5);
            let set_cl = Instruction::with2(Code::Mov_r8_imm8, Register::CL, count as u32).ok()?;
            return Some(vec![set_cl, ins]);
        }
        Some(vec![ins])
    }

    /// An instruction whose memory operand is addressed through a base and an index
    /// register (32-bit address size or 64-bit in 64-bit mode), with `mov`s in front
    /// that make base + index * scale + displacement land in the data area whatever
    /// the random index and displacement are (the sum wraps).
    fn addressed_unit(&mut self) -> Option<Vec<Instruction>> {
        let mut unit = self.unit()?;
        if unit.len() != 1 {
            // Its setup (a count in CL, a bit offset) could clobber the base or index.
            return Some(unit);
        }
        let ins = unit.last_mut()?;
        let op_kinds = ins.code().op_code().op_kinds();
        let has_mem = ins.op_kinds().any(|k| k == OpKind::Memory);
        if self.mode == Mode::Real16 {
            // 16-bit addressing only has BX/BP + SI/DI; real mode keeps absolute ones.
            return Some(unit);
        }
        if !has_mem || ins.mnemonic() == M::Lea || op_kinds.contains(&K::mem_offs) || is_bit_string_access(ins) {
            return Some(unit);
        }
        let long = self.mode == Mode::Long64;
        let wide = long && self.rng.below(4) != 0;
        let size = if wide { 8 } else { 4 };
        let base = self.register(size);
        let index = if self.rng.coin() { Some(self.register(size)).filter(|&r| r != base) } else { None };
        let scale = 1u64 << self.rng.below(4);
        let disp = match self.rng.below(3) {
            0 => 0,
            1 => self.rng.below(256) as i64 - 128,
            _ => self.rng.interesting() as i32 as i64,
        };
        let align = if ins.code() == Code::Cmpxchg16b_m128 { 16 } else { 1 };
        let mut target = self.mode.data() + (self.rng.below(DATA_LEN as u64 - 16) & !(align - 1));
        if wide && self.rng.below(16) == 0 {
            // Bit 47 set with bits 63:48 clear: not canonical, #GP (or #SS) on both
            // sides, and never an address the host process could have mapped.
            target |= 1 << 47;
        }
        let index_value = self.rng.interesting();
        let base_value =
            target.wrapping_sub(index.map_or(0, |_| index_value.wrapping_mul(scale))).wrapping_sub(disp as u64);
        ins.set_memory_base(base);
        ins.set_memory_index(index.unwrap_or(Register::None));
        ins.set_memory_index_scale(scale as u32);
        ins.set_memory_displacement64(if wide || !long {
            disp as u64 & self.mode.gpr_mask()
        } else {
            disp as u32 as u64
        });
        ins.set_memory_displ_size(match disp {
            0 => 0,
            -128..=127 => 1,
            _ => 4,
        });
        let mut setup = vec![self.load_register(base, base_value)?];
        if let Some(index) = index {
            setup.push(self.load_register(index, index_value)?);
        }
        setup.extend(unit);
        Some(setup)
    }

    /// A forward branch (Jcc, JMP, CALL, LOOPcc, JrCXZ) over one generated
    /// instruction; [`Case::encode`] points it just past that instruction.
    fn branch_unit(&mut self) -> Option<Vec<Instruction>> {
        let code = self.branches[self.rng.below(self.branches.len() as u64) as usize];
        let skipped = self.unit()?;
        if skipped.len() != 1 {
            return None;
        }
        let mut branch = Instruction::default();
        branch.set_code(code);
        let kind = match code.op_code().op_kind(0) {
            K::br64_1 | K::br64_4 => OpKind::NearBranch64,
            K::br16_1 | K::br16_2 => OpKind::NearBranch16,
            _ => OpKind::NearBranch32,
        };
        branch.set_op0_kind(kind);
        Some(vec![branch, skipped[0]])
    }

    /// `mov reg, value` for the full register behind `reg`; with a 32-bit address in
    /// 64-bit mode the upper half is random, which the address must ignore.
    fn load_register(&mut self, reg: Register, value: u64) -> Option<Instruction> {
        if self.mode == Mode::Long64 {
            let value = if reg.size() == 4 { (self.rng.next_u64() << 32) | (value & 0xffff_ffff) } else { value };
            Instruction::with2(Code::Mov_r64_imm64, reg.full_register(), value).ok()
        } else {
            Instruction::with2(Code::Mov_r32_imm32, reg, value as u32).ok()
        }
    }

    /// Fills the operands of `code` at random. BT* with a register bit offset and a
    /// memory operand gets a `mov` in front that keeps the offset within ±1 KiB of
    /// an operand in the middle of the data area.
    fn instruction(&mut self, code: Code) -> Option<Instruction> {
        let op = code.op_code();
        let mut ins = Instruction::default();
        ins.set_code(code);
        let kinds = op.op_kinds();
        let m = code.mnemonic();
        let reg_offset = matches!(m, M::Bt | M::Bts | M::Btr | M::Btc) && kinds.get(1).is_some_and(is_reg_kind);
        for (i, &k) in kinds.iter().enumerate() {
            let i = i as u32;
            self.operand(&mut ins, i, k, !reg_offset, code)?;
        }
        let memory = ins.op_kinds().any(|k| k == OpKind::Memory);
        if memory && op.can_use_lock_prefix() && self.rng.below(4) == 0 {
            ins.set_has_lock_prefix(true);
        } else if self.rng.below(64) == 0 && !self.avoid.misplaced_lock {
            // LOCK where it is not allowed: #UD.
            ins.set_has_lock_prefix(true);
        }
        Some(ins)
    }

    /// Fills operand `i` of kind `k`.
    fn operand(&mut self, ins: &mut Instruction, i: u32, k: K, allow_mem: bool, code: Code) -> Option<()> {
        let size = match k {
            K::r8_or_mem | K::r8_reg | K::r8_opcode => 1,
            K::r16_or_mem | K::r16_reg | K::r16_opcode => 2,
            K::r32_or_mem | K::r32_reg | K::r32_opcode | K::r32_vvvv => 4,
            K::r64_or_mem | K::r64_reg | K::r64_opcode | K::r64_vvvv => 8,
            _ => 0,
        };
        match k {
            K::r8_or_mem | K::r16_or_mem | K::r32_or_mem | K::r64_or_mem if allow_mem && self.rng.coin() => {
                let displ_size = self.absolute_displ_size();
                self.data_operand(ins, i, 1, displ_size);
            }
            K::r8_or_mem
            | K::r16_or_mem
            | K::r32_or_mem
            | K::r64_or_mem
            | K::r32_vvvv
            | K::r64_vvvv
            | K::r8_reg
            | K::r8_opcode
            | K::r16_reg
            | K::r16_opcode
            | K::r32_reg
            | K::r32_opcode
            | K::r64_reg
            | K::r64_opcode => {
                ins.set_op_kind(i, OpKind::Register);
                ins.set_op_register(i, self.register(size));
            }
            K::mem if code.mnemonic() == M::Lea => self.lea_operand(ins, i),
            K::mem => {
                let align = if code == Code::Cmpxchg16b_m128 { 16 } else { 1 };
                let displ_size = self.absolute_displ_size();
                self.data_operand(ins, i, align, displ_size);
            }
            K::mem_offs => {
                let size = match self.mode {
                    Mode::Long64 => 8,
                    Mode::Protected32 => 4,
                    Mode::Real16 => 2,
                };
                self.data_operand(ins, i, 1, size);
            }
            K::al | K::cl | K::ax | K::eax | K::rax => {
                let r = match k {
                    K::al => Register::AL,
                    K::cl => Register::CL,
                    K::ax => Register::AX,
                    K::eax => Register::EAX,
                    _ => Register::RAX,
                };
                ins.set_op_kind(i, OpKind::Register);
                ins.set_op_register(i, r);
            }
            K::imm8_const_1 => {
                ins.set_op_kind(i, OpKind::Immediate8);
                ins.set_immediate8(1);
            }
            K::imm8 => {
                let shld16 = matches!(code, Code::Shld_rm16_r16_imm8 | Code::Shrd_rm16_r16_imm8);
                let v = if shld16 {
                    self.rng.below(17)
                } else if self.rng.coin() {
                    self.rng.below(70)
                } else {
                    self.rng.interesting()
                };
                ins.set_op_kind(i, OpKind::Immediate8);
                ins.set_immediate8(v as u8);
            }
            K::imm8sex16 => {
                ins.set_op_kind(i, OpKind::Immediate8to16);
                ins.set_immediate8to16(self.rng.interesting() as i8 as i16);
            }
            K::imm8sex32 => {
                ins.set_op_kind(i, OpKind::Immediate8to32);
                ins.set_immediate8to32(self.rng.interesting() as i8 as i32);
            }
            K::imm8sex64 => {
                ins.set_op_kind(i, OpKind::Immediate8to64);
                ins.set_immediate8to64(self.rng.interesting() as i8 as i64);
            }
            K::imm16 => {
                ins.set_op_kind(i, OpKind::Immediate16);
                ins.set_immediate16(self.rng.interesting() as u16);
            }
            K::imm32 => {
                ins.set_op_kind(i, OpKind::Immediate32);
                ins.set_immediate32(self.rng.interesting() as u32);
            }
            K::imm32sex64 => {
                ins.set_op_kind(i, OpKind::Immediate32to64);
                ins.set_immediate32to64(self.rng.interesting() as i32 as i64);
            }
            K::imm64 => {
                ins.set_op_kind(i, OpKind::Immediate64);
                ins.set_immediate64(self.rng.interesting());
            }
            _ => return None,
        }
        Some(())
    }

    /// A random register of `size` bytes, never the stack pointer.
    fn register(&mut self, size: u8) -> Register {
        use Register::*;
        let long = self.mode == Mode::Long64;
        let pool: &[Register] = match (size, long) {
            (1, true) => &[AL, CL, DL, BL, AH, CH, DH, BH, BPL, SIL, DIL, R8L, R9L, R10L, R11L, R12L, R13L, R14L, R15L],
            (1, false) => &[AL, CL, DL, BL, AH, CH, DH, BH],
            (2, true) => &[AX, CX, DX, BX, BP, SI, DI, R8W, R9W, R10W, R11W, R12W, R13W, R14W, R15W],
            (2, false) => &[AX, CX, DX, BX, BP, SI, DI],
            (4, true) => &[EAX, ECX, EDX, EBX, EBP, ESI, EDI, R8D, R9D, R10D, R11D, R12D, R13D, R14D, R15D],
            (4, false) => &[EAX, ECX, EDX, EBX, EBP, ESI, EDI],
            _ => &[RAX, RCX, RDX, RBX, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15],
        };
        pool[self.rng.below(pool.len() as u64) as usize]
    }

    /// The displacement size of an absolute ModRM address: in 64-bit mode 8 encodes
    /// a sign-extended disp32 and 4 one with an address-size prefix.
    fn absolute_displ_size(&mut self) -> u32 {
        match self.mode {
            Mode::Long64 if self.rng.coin() => 8,
            Mode::Real16 => 2,
            _ => 4,
        }
    }

    /// An absolute memory operand inside the data area, aligned to `align`.
    fn data_operand(&mut self, ins: &mut Instruction, i: u32, align: u64, displ_size: u32) {
        let offset = if self.rng.below(4) == 0 {
            // Straddle the page boundary in the middle of the data area.
            0x1000 - 1 - self.rng.below(15)
        } else {
            self.rng.below(DATA_LEN as u64 - 16)
        } & !(align - 1);
        ins.set_op_kind(i, OpKind::Memory);
        ins.set_memory_base(Register::None);
        ins.set_memory_index(Register::None);
        ins.set_memory_index_scale(1);
        ins.set_memory_displacement64(self.mode.data() + offset);
        ins.set_memory_displ_size(displ_size);
        // Flat ES, CS, SS, DS overrides: no effect, except that a write through CS
        // is #GP in protected mode (CS is not writable).
        let prefix = match self.rng.below(16) {
            0 => Register::ES,
            1 if !self.avoid.cs_override => Register::CS,
            2 => Register::SS,
            3 => Register::DS,
            _ => Register::None,
        };
        ins.set_segment_prefix(prefix);
    }

    /// An x87 test: FNINIT, a random rounding and precision control (exceptions
    /// masked), two operands written by MOVs and loaded (ST(1) = a, ST(0) = b), one of
    /// [`X87_OPS`], FNSTSW and three FSTPs into the data area, FNINIT (so the host's
    /// FPU is left as the process had it). Operands are drawn in the instruction's
    /// domain with some specials; transcendental cases the host may round differently
    /// (within 3/16 ULP of a rounding boundary, see `may_differ_from_hardware`) are
    /// redrawn and counted.
    fn x87_unit(&mut self) -> Option<Vec<Instruction>> {
        if self.avoid.x87_units {
            return None;
        }
        let code = X87_OPS[self.rng.below(X87_OPS.len() as u64) as usize];
        let m = code.mnemonic();
        let rc = self.rng.below(4) as u16;
        let cw = 0x7f | (self.rng.below(4) as u16) << 8 | rc << 10;
        let (a, b) = loop {
            let (a, b) = self.x87_operands(m);
            if !may_differ_from_hardware(m, b, a, rc) {
                break (a, b);
            }
            self.x87_left_out += 1;
        };
        let offset = if self.rng.below(4) == 0 {
            // Straddle the page boundary in the middle of the data area.
            0x1000 - 2 * (1 + self.rng.below(20))
        } else {
            self.rng.below(DATA_LEN as u64 - 64) & !1
        };
        let mut unit = vec![Instruction::with(Code::Fninit)];
        unit.push(self.x87_store(Code::Mov_rm16_imm16, offset, cw as u32));
        unit.push(self.x87_memory(Code::Fldcw_m2byte, offset));
        for v in [a, b] {
            unit.push(self.x87_store(Code::Mov_rm32_imm32, offset + 4, v as u32));
            unit.push(self.x87_store(Code::Mov_rm32_imm32, offset + 8, (v >> 32) as u32));
            unit.push(self.x87_store(Code::Mov_rm16_imm16, offset + 12, (v >> 64) as u32 & 0xffff));
            unit.push(self.x87_memory(Code::Fld_m80fp, offset + 4));
        }
        unit.push(Instruction::with(code));
        unit.push(self.x87_memory(Code::Fnstsw_m2byte, offset + 2));
        for slot in 0..3 {
            unit.push(self.x87_memory(Code::Fstp_m80fp, offset + 14 + 10 * slot));
        }
        unit.push(Instruction::with(Code::Fninit));
        Some(unit)
    }

    /// Operands (ST(1), ST(0)) for `m` as 80-bit encodings.
    fn x87_operands(&mut self, m: M) -> (u128, u128) {
        const BIAS: i32 = 0x3fff;
        let b = match m {
            // |x| < 2^63, and 2^63 to 2^66 where C2 reports the operand out of range.
            M::Fsin | M::Fcos | M::Fsincos | M::Fptan if self.rng.below(16) == 0 => self.x87_value(BIAS + 63, 3, None),
            M::Fsin | M::Fcos | M::Fsincos | M::Fptan => self.x87_value(BIAS - 40, 103, None),
            // -1 <= x <= 1.
            M::F2xm1 if self.rng.below(16) == 0 => (self.rng.below(2) as u128) << 79 | (BIAS as u128) << 64 | 1 << 63,
            M::F2xm1 => self.x87_value(BIAS - 70, 70, None),
            M::Fyl2x => self.x87_value(BIAS - 300, 600, Some(false)),
            // |x| < 1 - √2/2.
            M::Fyl2xp1 => self.x87_value(BIAS - 72, 70, None),
            M::Fscale | M::Fprem | M::Fprem1 | M::Fpatan => self.x87_value(BIAS - 100, 200, None),
            _ => self.x87_value(BIAS - 100, 200, None),
        };
        let a = match m {
            // A scale of up to ±2^9.
            M::Fscale => self.x87_value(BIAS - 4, 13, None),
            _ => self.x87_value(BIAS - 100, 200, None),
        };
        (a, b)
    }

    /// A random double-extended encoding with a biased exponent in `lo..lo + span` and
    /// the given sign (random for `None`); one in sixteen is a special instead: a zero,
    /// an infinity, a quiet or signalling NaN, or a denormal, of either sign.
    fn x87_value(&mut self, lo: i32, span: u64, sign: Option<bool>) -> u128 {
        let negative = sign.unwrap_or_else(|| self.rng.coin());
        let s = (negative as u128) << 79;
        let mant = self.rng.next_u64() | 1 << 63;
        if self.rng.below(16) == 0 {
            return s | match self.rng.below(5) {
                0 => 0,
                1 => 0x7fff << 64 | 1 << 63,
                2 => 0x7fff << 64 | 0xc000_0000_0000_0000 | (mant as u128 & 0xffff),
                3 => 0x7fff << 64 | 0x8000_0000_0000_0001 | (mant as u128 & 0xff00),
                _ => (mant >> (1 + self.rng.below(63))) as u128,
            };
        }
        let exp = (lo + self.rng.below(span) as i32).clamp(1, 0x7ffe) as u128;
        s | exp << 64 | mant as u128
    }

    /// `code` (an x87 instruction with one memory operand) on the data area at `offset`.
    fn x87_memory(&self, code: Code, offset: u64) -> Instruction {
        let mut ins = Instruction::default();
        ins.set_code(code);
        ins.set_op0_kind(OpKind::Memory);
        ins.set_memory_base(Register::None);
        ins.set_memory_index(Register::None);
        ins.set_memory_index_scale(1);
        ins.set_memory_displacement64(self.mode.data() + offset);
        ins.set_memory_displ_size(if self.mode == Mode::Real16 { 2 } else { 4 });
        ins
    }

    /// A MOV of an immediate (`code`: MOV r/m16 or r/m32, imm) to the data area.
    fn x87_store(&self, code: Code, offset: u64, value: u32) -> Instruction {
        let mut ins = self.x87_memory(code, offset);
        ins.set_op1_kind(if code == Code::Mov_rm16_imm16 { OpKind::Immediate16 } else { OpKind::Immediate32 });
        if code == Code::Mov_rm16_imm16 {
            ins.set_immediate16(value as u16);
        } else {
            ins.set_immediate32(value);
        }
        ins
    }

    /// A SIMD unit: LDMXCSR of a random rounding mode (with FZ and DAZ now and then, every
    /// exception masked), the unit's XMM registers (and MMX registers, when an
    /// instruction uses them) loaded from the data area, one to three SSE3-SSE4.2
    /// instructions on them, the registers and MXCSR stored back to the data area, the
    /// default MXCSR (and EMMS after MMX). Memory operands are 16-byte aligned, so the
    /// unit does not fault.
    fn simd_unit(&mut self) -> Option<Vec<Instruction>> {
        if self.simd.is_empty() {
            return None;
        }
        let mut body = Vec::new();
        for _ in 0..1 + self.rng.below(3) {
            let code = self.simd[self.rng.below(self.simd.len() as u64) as usize];
            body.push(self.simd_instruction(code)?);
        }
        let mmx = body
            .iter()
            .any(|i| (0..i.op_count()).any(|k| i.op_kind(k) == OpKind::Register && i.op_register(k).is_mm()));
        let xmm = self.simd_registers();
        let base = self.rng.below(DATA_LEN as u64 / 16 - 12) * 16;
        let mxcsr = 0x1f80 | (self.rng.below(4) as u32) << 13 | if self.rng.below(8) == 0 { 0x8040 } else { 0 };
        let mut unit = vec![
            self.x87_store(Code::Mov_rm32_imm32, base + 0xa0, mxcsr),
            self.x87_memory(Code::Ldmxcsr_m32, base + 0xa0),
        ];
        for (k, &r) in xmm.iter().enumerate() {
            unit.push(Instruction::with2(Code::Movdqu_xmm_xmmm128, r, self.data_memory(base + 16 * k as u64)).ok()?);
        }
        let mm = [Register::MM0, Register::MM1, Register::MM2, Register::MM3];
        if mmx {
            for (k, &r) in mm.iter().enumerate() {
                unit.push(
                    Instruction::with2(Code::Movq_mm_mmm64, r, self.data_memory(base + 0x80 + 8 * k as u64)).ok()?,
                );
            }
        }
        unit.extend(body);
        for (k, &r) in xmm.iter().enumerate() {
            unit.push(
                Instruction::with2(Code::Movdqu_xmmm128_xmm, self.data_memory(base + 0x40 + 16 * k as u64), r).ok()?,
            );
        }
        if mmx {
            for (k, &r) in mm.iter().enumerate() {
                unit.push(
                    Instruction::with2(Code::Movq_mmm64_mm, self.data_memory(base + 0x80 + 8 * k as u64), r).ok()?,
                );
            }
            unit.push(Instruction::with(Code::Emms));
        }
        unit.push(self.x87_memory(Code::Stmxcsr_m32, base + 0xa4));
        unit.push(self.x87_store(Code::Mov_rm32_imm32, base + 0xa8, 0x1f80));
        unit.push(self.x87_memory(Code::Ldmxcsr_m32, base + 0xa8));
        Some(unit)
    }

    /// The XMM registers SIMD units use: XMM0 (the blends' implicit operand) to XMM2 and,
    /// in 64-bit mode, XMM9 (a REX register).
    fn simd_registers(&self) -> [Register; 4] {
        let last = if self.mode == Mode::Long64 { Register::XMM9 } else { Register::XMM3 };
        [Register::XMM0, Register::XMM1, Register::XMM2, last]
    }

    /// A SIMD instruction of `code` with random operands from [`Generator::simd_registers`],
    /// MM0-MM3, general registers and 16-byte aligned memory in the data area.
    fn simd_instruction(&mut self, code: Code) -> Option<Instruction> {
        let xmm = self.simd_registers();
        let mm = [Register::MM0, Register::MM1, Register::MM2, Register::MM3];
        self.vector_instruction(code, 16, |g, k| {
            Some(match k {
                K::xmm_reg | K::xmm_rm | K::xmm_or_mem => xmm[g.rng.below(4) as usize],
                K::mm_reg | K::mm_rm | K::mm_or_mem => mm[g.rng.below(4) as usize],
                K::r32_reg | K::r32_or_mem => g.register(4),
                K::r64_reg | K::r64_or_mem => g.register(8),
                _ => return None,
            })
        })
    }

    /// An instruction of `code` whose memory operands (every `mem`, a third of the
    /// `*_or_mem` kinds) are `align`-byte aligned absolute addresses in the data area,
    /// whose imm8 is random, and whose registers come from `register` (`None`: an operand
    /// kind the caller does not fill).
    fn vector_instruction(
        &mut self,
        code: Code,
        align: u64,
        register: impl Fn(&mut Self, K) -> Option<Register>,
    ) -> Option<Instruction> {
        let mut ins = Instruction::default();
        ins.set_code(code);
        for (i, &k) in code.op_code().op_kinds().iter().enumerate() {
            let i = i as u32;
            let memory = match k {
                K::mem => true,
                K::xmm_or_mem | K::ymm_or_mem | K::mm_or_mem | K::r32_or_mem | K::r64_or_mem => self.rng.below(3) == 0,
                _ => false,
            };
            if memory {
                let offset = self.rng.below(DATA_LEN as u64 / align - 1) * align;
                ins.set_op_kind(i, OpKind::Memory);
                ins.set_memory_base(Register::None);
                ins.set_memory_index(Register::None);
                ins.set_memory_index_scale(1);
                ins.set_memory_displacement64(self.mode.data() + offset);
                ins.set_memory_displ_size(4);
            } else if k == K::imm8 {
                ins.set_op_kind(i, OpKind::Immediate8);
                ins.set_immediate8(self.rng.next_u64() as u8);
            } else {
                ins.set_op_kind(i, OpKind::Register);
                ins.set_op_register(i, register(self, k)?);
            }
        }
        Some(ins)
    }

    /// An absolute memory operand at `offset` in the data area (no segment override).
    fn data_memory(&self, offset: u64) -> MemoryOperand {
        MemoryOperand::with_displ(self.mode.data() + offset, 4)
    }

    /// A random address expression for LEA (which never touches memory).
    fn lea_operand(&mut self, ins: &mut Instruction, i: u32) {
        let long = self.mode == Mode::Long64;
        let wide = long && self.rng.below(4) != 0;
        let reg = |g: &mut Self| if wide { g.register(8) } else { g.register(4) };
        let base = match self.rng.below(5) {
            0 => Register::None,
            1 if long && wide => Register::RIP,
            _ => reg(self),
        };
        let index = if base != Register::RIP && self.rng.coin() { reg(self) } else { Register::None };
        let disp = self.rng.interesting() as i32 as i64;
        ins.set_op_kind(i, OpKind::Memory);
        ins.set_memory_base(base);
        ins.set_memory_index(index);
        ins.set_memory_index_scale(1 << self.rng.below(4));
        if base == Register::RIP {
            ins.set_memory_displacement64(self.mode.code().wrapping_add(disp as u64));
        } else if wide {
            ins.set_memory_displacement64(disp as u64);
        } else {
            ins.set_memory_displacement64(disp as u32 as u64);
        }
        let small = (-128..128).contains(&disp);
        ins.set_memory_displ_size(if base == Register::None || !small { 4 } else { 1 });
        ins.set_segment_prefix(Register::None);
    }

    /// A string instruction with `mov esi/edi/ecx` in front that keep every element
    /// it touches inside the data area whichever way DF points.
    fn string_unit(&mut self) -> Option<Vec<Instruction>> {
        let sizes: &[u32] = if self.mode == Mode::Long64 { &[1, 2, 4, 8] } else { &[1, 2, 4] };
        let size = sizes[self.rng.below(sizes.len() as u64) as usize];
        let op = [StringOp::Movs, StringOp::Stos, StringOp::Lods, StringOp::Scas, StringOp::Cmps]
            [self.rng.below(5) as usize];
        let rep = match (op, self.rng.below(3)) {
            (_, 0) => RepPrefixKind::None,
            (StringOp::Scas | StringOp::Cmps, 1) => RepPrefixKind::Repne,
            _ => RepPrefixKind::Repe,
        };
        let count = self.rng.below(17) as u32;
        let lo = 0x200u64;
        let span = DATA_LEN as u64 - 2 * lo;
        let src = self.mode.data() + lo + self.rng.below(span);
        let dst = self.mode.data() + lo + self.rng.below(span);
        // In 64-bit mode a third of them use 32-bit addresses (ESI, EDI, ECX), with
        // random upper halves in RSI, RDI and RCX.
        let a = if self.mode == Mode::Long64 && self.rng.below(3) == 0 { 32 } else { self.mode.bitness() };
        let seg = Register::None;
        let s = |ins: Result<Instruction, iced_x86::IcedError>| ins.ok();
        let string = match (op, size) {
            (StringOp::Movs, 1) => s(Instruction::with_movsb(a, seg, rep)),
            (StringOp::Movs, 2) => s(Instruction::with_movsw(a, seg, rep)),
            (StringOp::Movs, 4) => s(Instruction::with_movsd(a, seg, rep)),
            (StringOp::Movs, _) => s(Instruction::with_movsq(a, seg, rep)),
            (StringOp::Stos, 1) => s(Instruction::with_stosb(a, rep)),
            (StringOp::Stos, 2) => s(Instruction::with_stosw(a, rep)),
            (StringOp::Stos, 4) => s(Instruction::with_stosd(a, rep)),
            (StringOp::Stos, _) => s(Instruction::with_stosq(a, rep)),
            (StringOp::Lods, 1) => s(Instruction::with_lodsb(a, seg, rep)),
            (StringOp::Lods, 2) => s(Instruction::with_lodsw(a, seg, rep)),
            (StringOp::Lods, 4) => s(Instruction::with_lodsd(a, seg, rep)),
            (StringOp::Lods, _) => s(Instruction::with_lodsq(a, seg, rep)),
            (StringOp::Scas, 1) => s(Instruction::with_scasb(a, rep)),
            (StringOp::Scas, 2) => s(Instruction::with_scasw(a, rep)),
            (StringOp::Scas, 4) => s(Instruction::with_scasd(a, rep)),
            (StringOp::Scas, _) => s(Instruction::with_scasq(a, rep)),
            (StringOp::Cmps, 1) => s(Instruction::with_cmpsb(a, seg, rep)),
            (StringOp::Cmps, 2) => s(Instruction::with_cmpsw(a, seg, rep)),
            (StringOp::Cmps, 4) => s(Instruction::with_cmpsd(a, seg, rep)),
            (StringOp::Cmps, _) => s(Instruction::with_cmpsq(a, seg, rep)),
        }?;
        let load = |g: &mut Self, reg: Register, v: u64| {
            if a == 32 && g.mode == Mode::Long64 {
                g.load_register(reg, v)
            } else {
                Instruction::with2(Code::Mov_r32_imm32, reg, v as u32).ok()
            }
        };
        Some(vec![
            load(self, Register::ESI, src)?,
            load(self, Register::EDI, dst)?,
            load(self, Register::ECX, count as u64)?,
            string,
        ])
    }

    /// One instruction that needs CPL 0 or I/O privilege: #GP at CPL 3 with IOPL 0
    /// (SDM Vol. 3A §5.9, Vol. 1 §19.5). The instructions that only UMIP makes
    /// privileged (SGDT, SMSW, ...) are left out: Linux emulates those.
    fn privileged_unit(&mut self) -> Option<Vec<Instruction>> {
        let long = self.mode == Mode::Long64;
        let (acc, cr_read, cr_write) = if long {
            (Register::RAX, Code::Mov_r64_cr, Code::Mov_cr_r64)
        } else {
            (Register::EAX, Code::Mov_r32_cr, Code::Mov_cr_r32)
        };
        let mem = iced_x86::MemoryOperand::with_displ(self.mode.data() + self.rng.below(0x100), 4);
        let port = self.rng.below(256) as u32;
        let a = self.mode.bitness();
        let ins = match self.rng.below(16) {
            0 => Instruction::with(Code::Cli),
            1 => Instruction::with(Code::Sti),
            2 => Instruction::with(Code::Hlt),
            3 => Instruction::with(Code::Rdmsr),
            4 => Instruction::with(Code::Wrmsr),
            5 => Instruction::with(Code::Wbinvd),
            6 => Instruction::with(Code::Clts),
            7 => Instruction::with2(Code::In_AL_imm8, Register::AL, port).ok()?,
            8 => Instruction::with2(Code::Out_imm8_AL, port, Register::AL).ok()?,
            9 => Instruction::with2(Code::In_EAX_DX, Register::EAX, Register::DX).ok()?,
            10 => Instruction::with_outsb(a, Register::None, RepPrefixKind::None).ok()?,
            11 => Instruction::with2(cr_read, acc, Register::CR0).ok()?,
            12 => Instruction::with2(cr_write, Register::CR3, acc).ok()?,
            13 => Instruction::with1(if long { Code::Lidt_m1664 } else { Code::Lidt_m1632 }, mem).ok()?,
            14 => Instruction::with1(Code::Invlpg_m, mem).ok()?,
            _ => Instruction::with1(Code::Lmsw_rm16, Register::AX).ok()?,
        };
        Some(vec![ins])
    }

    /// A load of DS, ES or SS with one of the selectors below 0x38, whose GDT entries
    /// agree between Linux and [`super::emulated`] (null, DPL 0 segments, then the
    /// user code32/data/code64 segments), or a read of DS, ES, SS or CS. FS and GS are
    /// left alone: loading them would replace the host thread's TLS base.
    fn segment_unit(&mut self) -> Option<Vec<Instruction>> {
        let reg = self.register(4);
        let sreg = [Register::DS, Register::ES, Register::SS, Register::CS][self.rng.below(4) as usize];
        if self.rng.below(3) == 0 {
            return Some(vec![Instruction::with2(Code::Mov_r32m16_Sreg, reg, sreg).ok()?]);
        }
        let sreg = if sreg == Register::CS { Register::DS } else { sreg };
        let mut selector = self.rng.below(0x38);
        while self.avoid.faulting_data_segments && matches!(selector >> 3, 0 | 4 | 6) {
            selector = self.rng.below(0x38);
        }
        Some(vec![self.load_register(reg, selector)?, Instruction::with2(Code::Mov_Sreg_r32m16, sreg, reg).ok()?])
    }

    /// XLAT with RBX pointing into the data area, or ENTER/LEAVE with RBP on the
    /// stack in it (ENTER kept to small frames and nesting levels).
    fn frame_unit(&mut self) -> Option<Vec<Instruction>> {
        let (b, bp) = match self.mode {
            Mode::Long64 => (Register::RBX, Register::RBP),
            Mode::Protected32 => (Register::EBX, Register::EBP),
            Mode::Real16 => (Register::BX, Register::BP),
        };
        let load = |g: &mut Self, reg: Register, v: u64| {
            let code = if g.mode == Mode::Long64 { Code::Mov_r64_imm64 } else { Code::Mov_r32_imm32 };
            let reg = if g.mode == Mode::Long64 { reg } else { reg.full_register32() };
            Instruction::with2(code, reg, v).ok()
        };
        let near_stack = self.mode.stack() - 0x80 + self.rng.below(0x100);
        match self.rng.below(3) {
            0 => {
                let table = self.mode.data() + self.rng.below(DATA_LEN as u64 - 0x100);
                let xlat = Instruction::with1(Code::Xlat_m8, iced_x86::MemoryOperand::with_base_index(b, Register::AL));
                Some(vec![load(self, b, table)?, xlat.ok()?])
            }
            1 => {
                let leave = match self.mode {
                    Mode::Long64 => Code::Leaveq,
                    Mode::Protected32 => Code::Leaved,
                    Mode::Real16 => Code::Leavew,
                };
                Some(vec![load(self, bp, near_stack)?, Instruction::with(leave)])
            }
            _ => {
                let enter = match self.mode {
                    Mode::Long64 => Code::Enterq_imm16_imm8,
                    Mode::Protected32 => Code::Enterd_imm16_imm8,
                    Mode::Real16 => Code::Enterw_imm16_imm8,
                };
                let size = self.rng.below(0x40) as u32;
                let level = self.rng.below(5) as u32;
                Some(vec![load(self, bp, near_stack)?, Instruction::with2(enter, size, level).ok()?])
            }
        }
    }
}

/// True for the operand kinds [`Generator::simd_instruction`] fills.
fn simd_operand_supported(k: &K) -> bool {
    matches!(
        k,
        K::mem
            | K::xmm_reg
            | K::xmm_rm
            | K::xmm_or_mem
            | K::mm_reg
            | K::mm_rm
            | K::mm_or_mem
            | K::r32_reg
            | K::r32_or_mem
            | K::r64_reg
            | K::r64_or_mem
            | K::imm8
    )
}

/// True for the near branches of [`Generator::branch_unit`].
fn is_forward_branch(ins: &Instruction) -> bool {
    matches!(ins.op0_kind(), OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64)
}

/// Points a near branch at `target`.
fn set_branch_target(ins: &mut Instruction, target: u64) {
    match ins.op0_kind() {
        OpKind::NearBranch16 => ins.set_near_branch16(target as u16),
        OpKind::NearBranch32 => ins.set_near_branch32(target as u32),
        _ => ins.set_near_branch64(target),
    }
}

/// True when the form exists in `mode`.
fn supported_in(op: &iced_x86::OpCodeInfo, mode: Mode) -> bool {
    match mode {
        Mode::Long64 => op.mode64(),
        Mode::Protected32 => op.mode32(),
        Mode::Real16 => op.mode16(),
    }
}

/// True for BT* on memory with a register bit offset (its address depends on the
/// offset register, so no random base may be put under it).
fn is_bit_string_access(ins: &Instruction) -> bool {
    matches!(ins.mnemonic(), M::Bt | M::Bts | M::Btr | M::Btc) && ins.op1_kind() == OpKind::Register
}

/// True for register-only operand kinds.
fn is_reg_kind(k: &K) -> bool {
    matches!(
        k,
        K::r8_reg
            | K::r16_reg
            | K::r32_reg
            | K::r64_reg
            | K::r8_opcode
            | K::r16_opcode
            | K::r32_opcode
            | K::r64_opcode
            | K::al
            | K::cl
            | K::ax
            | K::eax
            | K::rax
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::Decoder;

    #[test]
    fn memory_operands_decode_as_absolute_addresses_in_the_data_area() {
        for mode in [Mode::Long64, Mode::Protected32, Mode::Real16] {
            let mut g = Generator::new(mode, 7);
            for _ in 0..500 {
                let case = g.case();
                let enc = case.encode().unwrap();
                let mut dec = Decoder::with_ip(mode.bitness(), &enc.bytes, mode.code(), 0);
                for ins in dec.iter() {
                    let absolute = ins.memory_base() == Register::None && ins.memory_index() == Register::None;
                    if ins.mnemonic() == M::Lea || !ins.op_kinds().any(|k| k == OpKind::Memory) || !absolute {
                        continue;
                    }
                    assert!(
                        (mode.data()..mode.data() + DATA_LEN as u64).contains(&ins.memory_displacement64()),
                        "{ins}"
                    );
                }
            }
        }
    }

    #[test]
    fn no_x87_units_against_qemu_tcg() {
        let mut g = Generator::avoiding(Mode::Protected32, 5, Avoid::QEMU_TCG);
        for _ in 0..2000 {
            let case = g.case();
            assert!(!case.has_x87());
            assert!(!case.instructions().any(|i| X87_OPS.contains(&i.code())));
        }
        let mut g = Generator::new(Mode::Protected32, 5);
        assert!((0..2000).filter(|_| g.case().has_x87()).count() > 100, "x87 units against a CPU");
    }

    #[test]
    fn no_simd_units_nor_bmi_against_kvm_and_no_movbe_or_crc32_against_tcg() {
        for avoid in [Avoid::KVM, Avoid::QEMU_TCG] {
            for mode in [Mode::Protected32, Mode::Real16] {
                let mut g = Generator::avoiding(mode, 9, avoid);
                let mut integer_extensions = false;
                for _ in 0..2000 {
                    let case = g.case();
                    assert!(!case.has_simd());
                    assert!(!case.instructions().any(|i| is_bmi(i.mnemonic())));
                    integer_extensions |=
                        case.instructions().any(|i| matches!(i.mnemonic(), M::Movbe | M::Crc32 | M::Adcx | M::Adox));
                }
                assert_eq!(integer_extensions, !avoid.integer_extensions && host_has(M::Movbe), "{avoid:?} {mode}");
            }
        }
    }

    #[test]
    fn cases_cover_the_instruction_groups_and_addressing_forms() {
        let mut seen = std::collections::HashSet::new();
        let (mut based, mut locked, mut rep) = (0, 0, 0);
        let mut g = Generator::new(Mode::Long64, 11);
        for _ in 0..5000 {
            for ins in g.case().instructions() {
                seen.insert(ins.mnemonic());
                let memory = ins.op_kinds().any(|k| k == OpKind::Memory);
                based += (memory && ins.memory_base() != Register::None) as u32;
                locked += ins.has_lock_prefix() as u32;
                rep += (ins.has_rep_prefix() || ins.has_repne_prefix()) as u32;
            }
        }
        for m in [
            M::Adc,
            M::Shld,
            M::Rcr,
            M::Div,
            M::Idiv,
            M::Imul,
            M::Bsf,
            M::Lzcnt,
            M::Tzcnt,
            M::Popcnt,
            M::Btc,
            M::Cmpxchg8b,
            M::Cmpxchg16b,
            M::Xadd,
            M::Cmovle,
            M::Setp,
            M::Bswap,
            M::Cqo,
            M::Lahf,
            M::Movsxd,
            M::Push,
            M::Pop,
            M::Pushfq,
            M::Movsb,
            M::Cmpsq,
            M::Scasw,
            M::Lodsd,
            M::Stosq,
            M::Jle,
            M::Jmp,
            M::Call,
            M::Loopne,
            M::Jrcxz,
            M::Xlatb,
            M::Wrmsr,
            M::Lidt,
            M::Enter,
            M::Leave,
            M::Fsin,
            M::Fsincos,
            M::Fpatan,
            M::F2xm1,
            M::Fyl2xp1,
            M::Fprem1,
            M::Fscale,
            M::Fxtract,
            M::Movbe,
            M::Crc32,
            M::Adox,
            M::Pdep,
            M::Pext,
            M::Bextr,
            M::Mulx,
            M::Sarx,
            M::Blsmsk,
        ] {
            assert!(seen.contains(&m) || !host_has(m), "{m:?} never generated");
        }
        if host_has_simd() {
            for m in [M::Pshufb, M::Palignr, M::Haddps, M::Pcmpistri, M::Pcmpestrm, M::Dpps, M::Roundsd, M::Ptest] {
                assert!(seen.contains(&m), "{m:?} never generated");
            }
            for m in [M::Aesenc, M::Aeskeygenassist, M::Pclmulqdq, M::Sha256rnds2, M::Sha1rnds4] {
                let runs = Code::values().filter(|c| c.mnemonic() == m).all(host_runs_simd);
                assert!(seen.contains(&m) || !runs, "{m:?} never generated");
            }
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            for m in [M::Vpermd, M::Vpshufb, M::Vfmadd231ps, M::Vcvtps2ph, M::Vbroadcastss, M::Vpmaskmovd, M::Vdpps] {
                assert!(seen.contains(&m), "{m:?} never generated");
            }
        }
        assert!(based > 1000 && locked > 100 && rep > 100, "based {based}, locked {locked}, rep {rep}");
    }

    #[test]
    fn of_is_defined_only_for_one_bit_shifts() {
        let by1 = Instruction::with2(Code::Shl_rm32_1, Register::EAX, 1u32).unwrap();
        let by33 = Instruction::with2(Code::Shl_rm32_imm8, Register::EAX, 33u32).unwrap();
        let by32 = Instruction::with2(Code::Rcl_rm32_imm8, Register::EAX, 32u32).unwrap();
        let by_cl = Instruction::with2(Code::Shl_rm32_CL, Register::EAX, Register::CL).unwrap();
        assert_eq!(undefined_after(&by1, flag::OF | flag::ZF) & (flag::OF | flag::ZF), 0);
        assert_eq!(undefined_after(&by33, 0) & flag::OF, 0, "33 & 31 = 1");
        assert_eq!(undefined_after(&by32, flag::CF), flag::CF, "count 0 changes nothing");
        assert_ne!(undefined_after(&by_cl, flag::ZF) & (flag::OF | flag::ZF), 0);
    }

    #[test]
    fn no_instruction_reads_an_undefined_flag() {
        let mut g = Generator::new(Mode::Long64, 3);
        for _ in 0..500 {
            assert!(g.case().undefined_flags().is_some());
        }
    }

    #[test]
    fn mul_leaves_sf_zf_af_pf_undefined() {
        let mul = Instruction::with1(Code::Mul_rm32, Register::ECX).unwrap();
        let undef = undefined_after(&mul, 0);
        assert_eq!(undef, flag::SF | flag::ZF | flag::AF | flag::PF);
        // A following ADD defines all six again.
        let add = Instruction::with2(Code::Add_rm32_r32, Register::EAX, Register::ECX).unwrap();
        assert_eq!(undefined_after(&add, undef), 0);
    }
}
