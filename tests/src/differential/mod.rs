//! Differential testing of the interpreter against the host CPU.
//!
//! A [`gen::Generator`] builds random sequences of general-purpose integer
//! instructions and x87 units (with `iced-x86`'s encoder) plus random registers, flags
//! and data;
//! [`native::NativeCpu`] runs each sequence on the host CPU (64-bit code directly,
//! 32-bit code through the host's compatibility-mode code segment) and
//! [`emulated::EmulatedCpu`] runs it on [`rx86_cpu::interp::Interpreter`] from the same
//! state. [`compare`] checks GPRs, RIP, RFLAGS (flags the SDM leaves undefined masked
//! out per instruction), the data area and the exception raised, shrinks a divergence
//! to a minimal reproducer and prints it.
//!
//! Both sides share one address layout ([`layout`]): a 64 KiB region at a fixed low
//! address that 32-bit code can reach.

pub mod compare;
pub mod emulated;
pub mod gen;
pub mod kvm;
pub mod native;
pub mod protected;
pub mod real;

use std::fmt;

/// The fixed address layout shared by the host runner and the interpreter.
pub mod layout {
    /// Start of the region (below 4 GiB, above `vm.mmap_min_addr`).
    pub const REGION: u64 = 0x0030_0000;
    /// Size of the region.
    pub const REGION_LEN: u64 = 0x1_0000;
    /// Host-only trampolines (entry, exit, fault recovery).
    pub const TRAMPOLINE: u64 = REGION;
    /// The generated sequence: 32 bytes before a page boundary, so that most
    /// sequences have an instruction or a block that crosses it.
    pub const CODE: u64 = REGION + 0x1fe0;
    /// Longest encoded sequence (plus its exit jump).
    pub const CODE_LEN: u64 = 0x1000;
    /// The data area every memory operand points into: two pages, so that accesses
    /// cross a page boundary at [`DATA`] + 0x1000.
    pub const DATA: u64 = REGION + 0x3000;
    /// Size of the data area.
    pub const DATA_LEN: usize = 0x2000;
    /// Host-only register block (inputs, outputs, saved host RSP, fault record).
    pub const IO: u64 = REGION + 0x5000;
    /// Top of the host-only stack the 32-bit trampoline runs on.
    pub const STACK_TOP: u64 = REGION + 0x8000;
    /// RSP while the sequence runs, on both sides: inside the data area, so what
    /// PUSH writes is compared too, and misaligned just above the page boundary so
    /// that pushes straddle it.
    pub const SEQ_RSP: u64 = DATA + 0x1014;
}

/// The CPU mode a sequence runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 64-bit long mode (reference: the host CPU).
    Long64,
    /// 32-bit protected mode with flat segments (reference: the host's compatibility
    /// mode).
    Protected32,
    /// Real mode (reference: a KVM vCPU), in the low-memory layout of [`real`].
    Real16,
}

impl Mode {
    /// Code size in bits.
    pub fn bitness(self) -> u32 {
        match self {
            Mode::Long64 => 64,
            Mode::Protected32 => 32,
            Mode::Real16 => 16,
        }
    }

    /// Where the sequence starts.
    pub fn code(self) -> u64 {
        if self == Mode::Real16 {
            real::CODE
        } else {
            layout::CODE
        }
    }

    /// Start of the data area.
    pub fn data(self) -> u64 {
        if self == Mode::Real16 {
            real::DATA
        } else {
            layout::DATA
        }
    }

    /// RSP while the sequence runs (inside the data area, see [`layout::SEQ_RSP`]).
    pub fn stack(self) -> u64 {
        self.data() + (layout::SEQ_RSP - layout::DATA)
    }

    /// The bits of a GPR that the mode defines.
    pub fn gpr_mask(self) -> u64 {
        match self {
            Mode::Long64 => u64::MAX,
            Mode::Protected32 | Mode::Real16 => 0xffff_ffff,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-bit", self.bitness())
    }
}

/// The exception a sequence ended with, in the classes the host's signals can tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// #DE (SIGFPE).
    DivideError,
    /// #UD (SIGILL).
    InvalidOpcode,
    /// #BR, #GP, #SS or #PF (SIGSEGV/SIGBUS).
    Protection,
    /// #DB or #BP (SIGTRAP).
    Trap,
    /// Any other vector.
    Other(u8),
}

impl Fault {
    /// The class of an exception vector.
    pub fn from_vector(v: u8) -> Fault {
        match v {
            0 => Fault::DivideError,
            6 => Fault::InvalidOpcode,
            5 | 12..=14 => Fault::Protection,
            1 | 3 => Fault::Trap,
            v => Fault::Other(v),
        }
    }
}

/// Where a CPU stopped and what it left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// RAX..R15 (at the fault, or at the end).
    pub gpr: [u64; 16],
    /// Address of the faulting instruction, or the end of the sequence.
    pub rip: u64,
    /// RFLAGS.
    pub rflags: u64,
    /// The data area.
    pub data: Vec<u8>,
    /// The exception raised, if any.
    pub fault: Option<Fault>,
    /// Set when the interpreter stopped the machine (unsupported instruction and such).
    pub stopped: Option<String>,
}

/// Totals of one run of [`run`].
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Instruction forms (iced `Code`s) the generator drew from, besides the
    /// hand-built string, branch, frame, privileged and segment units.
    pub forms: usize,
    /// Sequences executed.
    pub sequences: u64,
    /// Sequences that ended in an exception (on both sides).
    pub faulted: u64,
    /// Sequences with an x87 unit (transcendental or exact x87 operation).
    pub x87_sequences: u64,
    /// Sequences with a SIMD unit (SSE3 to SSE4.2, AES-NI, PCLMULQDQ, SHA) or an AVX
    /// unit.
    pub simd_sequences: u64,
    /// Sequences with an AVX unit (AVX, AVX2, FMA, F16C).
    pub avx_sequences: u64,
    /// x87 transcendental operands redrawn because the host may round them differently
    /// (within 3/16 ULP of a rounding boundary; README, "x87 transcendentals").
    pub x87_left_out: u64,
    /// Divergences found (each printed as a reproducer).
    pub divergences: Vec<String>,
    /// What the cases left out because the reference gets it wrong.
    pub avoided: gen::Avoid,
}

/// Why the native runner could not start.
#[derive(Debug)]
pub enum SetupError {
    /// The fixed region could not be mapped.
    Map(std::io::Error),
    /// Installing the fault handlers failed.
    Signal(std::io::Error),
    /// Assembling the trampolines failed.
    Assemble(String),
    /// No usable KVM (the reason).
    Kvm(String),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Map(e) => write!(f, "mapping the test region at {:#x}: {e}", layout::REGION),
            SetupError::Signal(e) => write!(f, "installing fault handlers: {e}"),
            SetupError::Assemble(e) => write!(f, "assembling the trampolines: {e}"),
            SetupError::Kvm(e) => write!(f, "KVM: {e}"),
        }
    }
}

impl std::error::Error for SetupError {}

/// The CPU the interpreter is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceCpu {
    /// The host CPU, running the sequence in this process (64- and 32-bit code).
    Host,
    /// A KVM vCPU with hardware virtualization (real- and protected-mode code).
    Kvm,
}

impl ReferenceCpu {
    /// The reference `mode` is compared with by default: KVM for real mode, else the host.
    pub fn default_for(mode: Mode) -> Self {
        if mode == Mode::Real16 {
            ReferenceCpu::Kvm
        } else {
            ReferenceCpu::Host
        }
    }
}

/// Runs `count` random sequences in `mode` from `seed` against `reference`; stops collecting
/// after `max_divergences` divergences. Each divergence is shrunk and printed to stderr.
pub fn run(
    mode: Mode,
    reference: ReferenceCpu,
    count: u64,
    seed: u64,
    max_divergences: usize,
) -> Result<Report, SetupError> {
    let mut reference: Box<dyn Reference> = match (reference, mode) {
        (ReferenceCpu::Kvm, _) => Box::new(kvm::KvmCpu::new(mode).map_err(SetupError::Kvm)?),
        (ReferenceCpu::Host, Mode::Real16) => {
            return Err(SetupError::Kvm("real-mode sequences are compared with a KVM vCPU".into()))
        }
        (ReferenceCpu::Host, _) => Box::new(native::NativeCpu::lock()?),
    };
    let reference = reference.as_mut();
    let mut emu = emulated::EmulatedCpu::new(mode);
    let avoided = reference.avoid();
    let mut generator = gen::Generator::avoiding(mode, seed, avoided);
    let mut report = Report { forms: generator.forms(), avoided, ..Report::default() };
    for _ in 0..count {
        let case = generator.case();
        let verdict = compare::check(&case, reference, &mut emu);
        report.sequences += 1;
        report.x87_sequences += case.has_x87() as u64;
        report.simd_sequences += case.has_simd() as u64;
        report.avx_sequences += case.has_avx() as u64;
        report.x87_left_out = generator.x87_left_out();
        match verdict {
            Ok(Some(_)) => report.faulted += 1,
            Ok(None) => {}
            Err(_) => {
                let text = compare::reproducer(&compare::shrink(case, reference, &mut emu), reference, &mut emu);
                eprintln!("{text}");
                report.divergences.push(text);
                if report.divergences.len() >= max_divergences {
                    break;
                }
            }
        }
    }
    Ok(report)
}

/// Totals of one run of [`run_tiers`].
#[derive(Debug, Clone, Default)]
pub struct TierReport {
    /// Sequences run.
    pub sequences: u64,
    /// Sequences that raised an exception (on both tiers alike).
    pub faulted: u64,
    /// Instructions the interpreter retired over all sequences.
    pub retired: u64,
    /// Where the tiers differed: the sequence and both outcomes.
    pub divergences: Vec<String>,
}

/// Runs `count` generated sequences in `mode` from `seed` as whole runs on the
/// interpreter and on the JIT tier (every block compiled at its first run), and
/// compares what they did and how many instructions they retired. The interpreter is
/// the oracle here; [`run`] compares it with the host CPU on the same generator.
pub fn run_tiers(mode: Mode, count: u64, seed: u64, max_divergences: usize) -> TierReport {
    let mut interp = emulated::EmulatedCpu::whole_run(mode, false);
    let mut jit = emulated::EmulatedCpu::whole_run(mode, true);
    let mut generator = gen::Generator::avoiding(mode, seed, gen::Avoid::NOTHING);
    let mut report = TierReport::default();
    for _ in 0..count {
        let case = generator.case();
        let enc = case.encode().expect("generated cases encode");
        let a = interp.run_whole(&case, &enc.bytes, enc.end);
        let b = jit.run_whole(&case, &enc.bytes, enc.end);
        report.sequences += 1;
        report.retired += a.1;
        report.faulted += u64::from(a.0.fault.is_some());
        if a != b {
            let code: Vec<String> = enc.bytes.iter().map(|b| format!("{b:02x}")).collect();
            report.divergences.push(format!("{mode} sequence {}:\ninterpreter: {a:?}\njit: {b:?}", code.join(" ")));
            if report.divergences.len() >= max_divergences {
                break;
            }
        }
    }
    report
}

/// A CPU the interpreter is compared with.
pub trait Reference {
    /// Runs `case`, encoded as `code` and ending at `end`, from its initial state.
    fn run(&mut self, case: &gen::Case, code: &[u8], end: u64) -> Outcome;

    /// What this reference is known to get wrong (nothing, for a CPU).
    fn avoid(&self) -> gen::Avoid {
        gen::Avoid::NOTHING
    }
}
