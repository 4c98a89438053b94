//! Ending a run from outside the guest: a termination signal (SIGINT, SIGTERM, SIGHUP) or a
//! wall-clock limit (`--timeout`). The machine loop checks [`StopConditions`] at every turn
//! and ends the run as a power-off would, so the end-of-run work happens as usual: drives
//! flushed, the screenshot and text dump written, the trace flushed, `--stats` printed.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The signals that end a run.
pub const STOP_SIGNALS: [i32; 3] = [SIGINT, SIGTERM, SIGHUP];

/// Handlers for [`STOP_SIGNALS`]: the first one asks the run to end; a second one, of any
/// of them, exits the process at once with status 128 + signal (the escape from a run that
/// does not come back to the machine loop).
#[derive(Debug, Clone)]
pub struct StopSignals {
    received: Arc<AtomicUsize>,
}

impl StopSignals {
    /// Installs the handlers (they only set flags; the second one calls `_exit`).
    pub fn install() -> std::io::Result<Self> {
        let received = Arc::new(AtomicUsize::new(0));
        let armed = Arc::new(AtomicBool::new(false));
        for signal in STOP_SIGNALS {
            // Handlers run in registration order: the shutdown sees `armed` only from the
            // second signal on, because the first one sets it last.
            signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, armed.clone())?;
            signal_hook::flag::register_usize(signal, received.clone(), signal as usize)?;
            signal_hook::flag::register(signal, armed.clone())?;
        }
        Ok(StopSignals { received })
    }

    /// The signal received, if any.
    pub fn received(&self) -> Option<i32> {
        match self.received.load(Ordering::SeqCst) {
            0 => None,
            signal => i32::try_from(signal).ok(),
        }
    }
}

/// Why something outside the guest ended the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternalStop {
    /// A termination signal arrived (its number).
    Signal(i32),
    /// The `--timeout` wall-clock limit passed.
    Timeout(Duration),
}

/// What may end a run from outside the guest.
#[derive(Debug, Clone, Default)]
pub struct StopConditions {
    signals: Option<StopSignals>,
    /// The wall-clock limit and when it expires.
    timeout: Option<(Duration, Instant)>,
}

impl StopConditions {
    /// A wall-clock limit of `limit` from now.
    pub fn with_timeout(limit: Option<Duration>) -> Self {
        StopConditions { signals: None, timeout: limit.map(|l| (l, Instant::now() + l)) }
    }

    /// Also stop when one of `signals` arrives.
    pub fn set_signals(&mut self, signals: StopSignals) {
        self.signals = Some(signals);
    }

    /// Whether the run must end now.
    pub fn check(&self) -> Option<ExternalStop> {
        if let Some(signal) = self.signals.as_ref().and_then(StopSignals::received) {
            return Some(ExternalStop::Signal(signal));
        }
        match self.timeout {
            Some((limit, at)) if Instant::now() >= at => Some(ExternalStop::Timeout(limit)),
            _ => None,
        }
    }
}

/// The name of a signal in messages ("SIGTERM").
pub fn signal_name(signal: i32) -> String {
    match signal {
        SIGINT => "SIGINT".into(),
        SIGTERM => "SIGTERM".into(),
        SIGHUP => "SIGHUP".into(),
        other => format!("signal {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_expires_and_nothing_else_stops() {
        assert_eq!(StopConditions::default().check(), None);
        assert_eq!(StopConditions::with_timeout(Some(Duration::from_secs(3600))).check(), None);
        let zero = StopConditions::with_timeout(Some(Duration::ZERO));
        assert_eq!(zero.check(), Some(ExternalStop::Timeout(Duration::ZERO)));
    }

    #[test]
    fn names() {
        assert_eq!(signal_name(SIGTERM), "SIGTERM");
        assert_eq!(signal_name(99), "signal 99");
    }
}
