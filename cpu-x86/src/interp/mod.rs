//! The software x86 CPU: an interpreter over instructions decoded by `iced-x86`.
//!
//! - [`state`]: the `#[repr(C)]` architectural state ([`CpuState`]).
//! - [`flags`]: lazy arithmetic flags.
//! - `mmu`: page walks and the software TLB; `access`: segmentation and memory access.
//! - `decode_cache`: decoded basic blocks keyed by physical address, RIP and code size,
//!   behind a direct-mapped front table keyed by linear address.
//! - `op`: an instruction in executable form (its handler, chosen once at decode time,
//!   and its pre-extracted operands); `forms`: the specialised handlers of the common
//!   forms.
//! - `ops`: one file per instruction group, dispatched by a `match` on the mnemonic: the
//!   general path every form without a specialised handler takes.
//! - `interrupt`, `segment`: exception/interrupt delivery, descriptor loads, far
//!   transfers; `task_switch`: hardware task switches.
//! - [`model`]: CPU models (`--cpu`): CPUID data and the #UD of missing instructions.
//! - `debug`: debug-register breakpoints (DR0-DR3, DR6, DR7) and the RF flag.
//! - `debugger`: the hooks behind [`crate::debug::EngineDebug`] (gdb breakpoints,
//!   watchpoints, single-step).
//! - `tiering`: hot blocks described to a compiled tier ([`crate::tier`]) and the
//!   helpers its code calls; `lockstep`: the checker that compares compiled units with
//!   the handlers.
//! - [`Interpreter`]: the engine the board drives ([`crate::engine::Engine`]).

mod access;
mod cpu;
pub mod cpuid;
mod debug;
mod debugger;
mod decode_cache;
mod engine_impl;
pub mod fault;
pub mod flags;
mod forms;
pub mod fpu;
mod interrupt;
mod lockstep;
pub(crate) mod mmu;
pub mod model;
mod msr;
mod op;
mod ops;
mod segment;
pub mod state;
mod task_switch;
#[cfg(test)]
mod test_util;
mod tiering;
#[cfg(test)]
mod time_tests;
#[cfg(test)]
mod trap_tests;

pub use cpu::{Interpreter, Step, TierReport, DEFAULT_MAX_BLOCK, DEFAULT_NS_PER_INSN};
pub use ops::lock_allowed;
pub use state::CpuState;
pub use tiering::{TierCounters, DEFAULT_HOT_THRESHOLD};
