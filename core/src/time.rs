//! Time: one clock in nanoseconds and the timer queue devices schedule deadlines on.
//!
//! On the software CPU the clock is *virtual*: the engine advances it from instructions
//! retired, so the same guest prints the same thing on every run. Under KVM (or with
//! `--clock host`) it follows the host's monotonic clock. Devices never read host time
//! themselves; they read the injected [`Clock`].
//!
//! The machine loop runs the CPU until [`TimerQueue::next_deadline`], advances the
//! clock, and lets the devices whose timers are due ([`TimerQueue::take_due`]) act.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

enum ClockSource {
    Virtual(AtomicU64),
    Host(Instant),
}

/// The machine's clock, shared by the engine and every device.
#[derive(Clone)]
pub struct Clock(Arc<ClockSource>);

impl Clock {
    /// A deterministic clock that moves only when the engine advances it.
    pub fn new_virtual() -> Self {
        Clock(Arc::new(ClockSource::Virtual(AtomicU64::new(0))))
    }

    /// A clock that follows host monotonic time from now on.
    pub fn new_host() -> Self {
        Clock(Arc::new(ClockSource::Host(Instant::now())))
    }

    /// True for the deterministic clock.
    pub fn is_virtual(&self) -> bool {
        matches!(*self.0, ClockSource::Virtual(_))
    }

    /// Nanoseconds since the machine was built.
    pub fn now_ns(&self) -> u64 {
        match &*self.0 {
            ClockSource::Virtual(ns) => ns.load(Ordering::Acquire),
            ClockSource::Host(start) => start.elapsed().as_nanos() as u64,
        }
    }

    /// Moves a virtual clock forward to `ns` (never backwards); no effect on host time.
    pub fn advance_to(&self, ns: u64) {
        if let ClockSource::Virtual(now) = &*self.0 {
            now.fetch_max(ns, Ordering::AcqRel);
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.is_virtual() { "virtual" } else { "host" };
        write!(f, "Clock({kind}, {} ns)", self.now_ns())
    }
}

/// Converts a count of `hz` ticks to nanoseconds (rounded down).
pub fn ticks_to_ns(ticks: u64, hz: u64) -> u64 {
    ((ticks as u128 * 1_000_000_000) / hz as u128) as u64
}

/// Converts nanoseconds to a count of whole `hz` ticks.
pub fn ns_to_ticks(ns: u64, hz: u64) -> u64 {
    ((ns as u128 * hz as u128) / 1_000_000_000) as u64
}

/// Identifies one timer in a [`TimerQueue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub usize);

struct Slot {
    name: String,
    deadline: Option<u64>,
}

/// The deadlines of every device timer. A machine has a handful of timers, so the
/// earliest deadline is found by a scan rather than a heap: re-arming is O(1).
#[derive(Clone, Default)]
pub struct TimerQueue {
    slots: Arc<Mutex<Vec<Slot>>>,
}

impl TimerQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates a disarmed timer named for diagnostics.
    pub fn new_timer(&self, name: &str) -> Timer {
        let mut slots = self.lock();
        slots.push(Slot { name: name.into(), deadline: None });
        Timer { id: TimerId(slots.len() - 1), queue: self.clone() }
    }

    /// The earliest armed deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        self.lock().iter().filter_map(|s| s.deadline).min()
    }

    /// Disarms and returns every timer due at `now`, earliest first.
    pub fn take_due(&self, now: u64) -> Vec<TimerId> {
        let mut slots = self.lock();
        let mut due: Vec<(u64, TimerId)> = slots
            .iter_mut()
            .enumerate()
            .filter_map(|(i, s)| match s.deadline {
                Some(d) if d <= now => {
                    s.deadline = None;
                    Some((d, TimerId(i)))
                }
                _ => None,
            })
            .collect();
        due.sort();
        due.into_iter().map(|(_, id)| id).collect()
    }

    /// The name given to a timer.
    pub fn name(&self, id: TimerId) -> String {
        self.lock().get(id.0).map(|s| s.name.clone()).unwrap_or_default()
    }
}

/// A device's handle on its timer.
#[derive(Clone)]
pub struct Timer {
    id: TimerId,
    queue: TimerQueue,
}

impl Timer {
    /// A timer on a private queue, for device unit tests.
    pub fn standalone(name: &str) -> Self {
        TimerQueue::new().new_timer(name)
    }

    /// This timer's id (the board routes due timers back to their device by it).
    pub fn id(&self) -> TimerId {
        self.id
    }

    /// Arms (or re-arms) the timer to fire at `deadline_ns`.
    pub fn arm_at(&self, deadline_ns: u64) {
        self.queue.lock()[self.id.0].deadline = Some(deadline_ns);
    }

    /// Disarms the timer.
    pub fn cancel(&self) {
        self.queue.lock()[self.id.0].deadline = None;
    }

    /// The armed deadline, if any.
    pub fn deadline(&self) -> Option<u64> {
        self.queue.lock()[self.id.0].deadline
    }
}

impl std::fmt::Debug for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Timer({}, {:?})", self.id.0, self.deadline())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_clock_is_monotonic_and_manual() {
        let c = Clock::new_virtual();
        assert_eq!(c.now_ns(), 0);
        c.advance_to(500);
        c.advance_to(100);
        assert_eq!(c.now_ns(), 500);
    }

    #[test]
    fn queue_orders_and_disarms_due_timers() {
        let q = TimerQueue::new();
        let a = q.new_timer("a");
        let b = q.new_timer("b");
        let c = q.new_timer("c");
        a.arm_at(300);
        b.arm_at(100);
        c.arm_at(1000);
        assert_eq!(q.next_deadline(), Some(100));
        assert_eq!(q.take_due(300), vec![b.id(), a.id()]);
        assert_eq!(a.deadline(), None);
        assert_eq!(q.next_deadline(), Some(1000));
        c.cancel();
        assert_eq!(q.next_deadline(), None);
        assert_eq!(q.name(b.id()), "b");
    }

    #[test]
    fn tick_conversions() {
        assert_eq!(ticks_to_ns(1_193_182, 1_193_182), 1_000_000_000);
        assert_eq!(ns_to_ticks(1_000_000_000, 3_579_545), 3_579_545);
    }
}
