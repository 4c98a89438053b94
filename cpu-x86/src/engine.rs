//! The interface every execution engine offers the machine loop.

use crate::debug::{DebugStop, EngineDebug};
use rx86_core::entry::EntryState;
use rx86_core::platform::Platform;
use rx86_core::time::Clock;
use thiserror::Error;

/// Why an engine returned to the machine loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The machine clock reached the deadline it was given (devices may be due).
    Deadline,
    /// The CPU executed HLT (or is still halted) and no interrupt is waiting: the
    /// machine may fast-forward its clock to the next device deadline.
    Halted,
    /// The CPU shut down (triple fault); the text diagnoses the exception chain.
    Shutdown(String),
    /// The guest did something the engine cannot emulate; the text names the guest
    /// RIP and the instruction bytes.
    Unsupported(String),
    /// A debugger breakpoint, watchpoint or single step stopped the guest (only while a
    /// debugger armed one through [`Engine::debug`]).
    Debug(DebugStop),
}

/// Host-side engine failures (not guest faults, which are emulated).
#[derive(Debug, Error)]
pub enum EngineError {
    /// The engine cannot be created or configured on this host.
    #[error("{0}")]
    Unavailable(String),
    /// A host call failed while running the guest.
    #[error("{0}")]
    Host(String),
}

/// A snapshot of the registers most useful in a diagnosis.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisterSummary {
    /// RAX..R15.
    pub gpr: [u64; 16],
    /// RIP.
    pub rip: u64,
    /// RFLAGS.
    pub rflags: u64,
    /// CS selector.
    pub cs: u16,
    /// CR0.
    pub cr0: u64,
    /// CR2.
    pub cr2: u64,
    /// CR3.
    pub cr3: u64,
    /// CR4.
    pub cr4: u64,
    /// EFER.
    pub efer: u64,
}

impl std::fmt::Display for RegisterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const NAMES: [&str; 16] = [
            "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
            "r15",
        ];
        write!(f, "rip={:#x} cs={:#x} rflags={:#x}", self.rip, self.cs, self.rflags)?;
        for (n, v) in NAMES.iter().zip(self.gpr) {
            write!(f, " {n}={v:#x}")?;
        }
        write!(
            f,
            " cr0={:#x} cr2={:#x} cr3={:#x} cr4={:#x} efer={:#x}",
            self.cr0, self.cr2, self.cr3, self.cr4, self.efer
        )
    }
}

/// An execution engine.
pub trait Engine {
    /// Short name for messages ("interp", "kvm").
    fn name(&self) -> &'static str;

    /// Loads the entry state of a loader (or the reset state).
    fn load_entry_state(&mut self, state: &EntryState) -> Result<(), EngineError>;

    /// Runs the guest until `clock` reaches `deadline_ns` or the guest exits.
    ///
    /// A software engine advances a virtual `clock` from instructions retired; a
    /// hardware engine runs against host time.
    fn run(&mut self, platform: &dyn Platform, clock: &Clock, deadline_ns: u64) -> Result<Exit, EngineError>;

    /// The registers, for diagnoses and logs.
    fn registers(&self) -> RegisterSummary;

    /// Instructions retired so far, where the engine counts them (the interpreter
    /// does; hardware engines do not).
    fn instructions_retired(&self) -> Option<u64> {
        None
    }

    /// How a compiled tier was used, when the engine has one.
    fn tier_report(&self) -> Option<crate::interp::TierReport> {
        None
    }

    /// The debugging interface (registers, breakpoints, watchpoints, single-step), when
    /// the engine has one.
    fn debug(&mut self) -> Option<&mut dyn EngineDebug> {
        None
    }
}
