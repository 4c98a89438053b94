//! Interrupt lines.
//!
//! A device's interrupt output is an injected [`IrqLine`]: the board hands each device
//! a line wired to the interrupt controllers; unit tests hand it a
//! [`RecordingIrqLine`] and assert what the device did with it.

use std::sync::{Arc, Mutex};

/// An interrupt output pin.
pub trait IrqLine: Send + Sync {
    /// Drives the line high (`true`) or low (`false`).
    fn set_level(&self, high: bool);

    /// A rising edge followed by a fall, for edge-triggered sources.
    fn pulse(&self) {
        self.set_level(true);
        self.set_level(false);
    }
}

/// A shared, injected interrupt line.
pub type SharedIrqLine = Arc<dyn IrqLine>;

/// A line wired to nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoIrq;

impl IrqLine for NoIrq {
    fn set_level(&self, _high: bool) {}
}

/// A fake line that records every level it is driven to, for device tests.
#[derive(Debug, Default)]
pub struct RecordingIrqLine {
    events: Mutex<Vec<bool>>,
}

impl RecordingIrqLine {
    /// A new recording line, already shared.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Every level driven so far, oldest first.
    pub fn events(&self) -> Vec<bool> {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The current level (low if never driven).
    pub fn level(&self) -> bool {
        self.events().last().copied().unwrap_or(false)
    }

    /// Number of rising edges seen.
    pub fn rising_edges(&self) -> usize {
        let ev = self.events();
        let mut prev = false;
        let mut n = 0;
        for &l in &ev {
            if l && !prev {
                n += 1;
            }
            prev = l;
        }
        n
    }

    /// Forgets the recorded history (keeps nothing).
    pub fn clear(&self) {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

impl IrqLine for RecordingIrqLine {
    fn set_level(&self, high: bool) {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).push(high);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_levels_and_edges() {
        let line = RecordingIrqLine::new();
        line.pulse();
        line.set_level(true);
        line.set_level(true);
        assert_eq!(line.events(), vec![true, false, true, true]);
        assert_eq!(line.rising_edges(), 2);
        assert!(line.level());
    }
}
