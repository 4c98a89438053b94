//! Creating the software-CPU engine for a board.

use crate::error::RunError;
use crate::pc::Pc;
use rx86_core::time::Clock;
use rx86_cpu::engine::Engine;
use rx86_cpu::interp::{Interpreter, DEFAULT_NS_PER_INSN};

/// The interpreter engine for `pc`: virtual time advances by a fixed amount per
/// instruction retired, so runs are deterministic.
pub fn new_engine(_pc: &Pc, _clock: &Clock) -> Result<Box<dyn Engine>, RunError> {
    Ok(Box::new(Interpreter::new(DEFAULT_NS_PER_INSN)))
}
