//! Creating the software-CPU engine for a board.

use crate::error::RunError;
use crate::pc::Pc;
use rx86_core::time::Clock;
use rx86_cpu::engine::Engine;

/// The interpreter engine for `pc`.
pub fn new_engine(_pc: &Pc, _clock: &Clock) -> Result<Box<dyn Engine>, RunError> {
    Err(RunError::Accel { accel: "interp", reason: "the software CPU is not built yet; use --accel kvm".into() })
}
