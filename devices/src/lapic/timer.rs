//! The local APIC timer (Intel SDM vol. 3, 11.5.4 "APIC Timer" and 11.5.4.1
//! "TSC-Deadline Mode").
//!
//! The count-based modes decrement the current count at the timer input clock
//! (`bus_hz`) divided by the divide configuration; the TSC-deadline mode compares the
//! TSC, derived from the machine clock at `tsc_hz`, with IA32_TSC_DEADLINE. Nothing
//! here counts in the background: counts are computed from the clock when read, and
//! the next expiry is a clock deadline the local APIC arms on its [`Timer`].
//!
//! [`Timer`]: rx86_core::time::Timer

const NS_PER_SEC: u128 = 1_000_000_000;

/// LVT timer mode, bits 18:17 of the LVT timer register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerMode {
    /// 00: count down once from the initial count.
    OneShot,
    /// 01: count down and reload from the initial count.
    Periodic,
    /// 10: fire when the TSC reaches IA32_TSC_DEADLINE.
    TscDeadline,
}

impl TimerMode {
    /// Decodes bits 18:17; the reserved encoding 11 is `None`.
    pub fn from_bits(bits: u32) -> Option<Self> {
        match bits & 0b11 {
            0b00 => Some(Self::OneShot),
            0b01 => Some(Self::Periodic),
            0b10 => Some(Self::TscDeadline),
            _ => None,
        }
    }
}

/// Divisor selected by the divide configuration register (bits 3, 1, 0):
/// 000 = 2, 001 = 4, ... 110 = 128, 111 = 1.
pub fn divisor(divide_config: u32) -> u64 {
    let code = ((divide_config >> 1) & 0b100) | (divide_config & 0b11);
    1 << ((code + 1) & 0b111)
}

/// Timer state: the count registers and the armed TSC deadline.
#[derive(Debug, Clone)]
pub struct ApicTimer {
    bus_hz: u64,
    tsc_hz: u64,
    tsc_offset: u64,
    initial_count: u32,
    divide_config: u32,
    period_start_ns: u64,
    start_count: u32,
    running: bool,
    tsc_deadline: u64,
}

impl ApicTimer {
    /// A stopped timer; `bus_hz` and `tsc_hz` must be non-zero.
    pub fn new(bus_hz: u64, tsc_hz: u64) -> Self {
        ApicTimer {
            bus_hz: bus_hz.max(1),
            tsc_hz: tsc_hz.max(1),
            tsc_offset: 0,
            initial_count: 0,
            divide_config: 0,
            period_start_ns: 0,
            start_count: 0,
            running: false,
            tsc_deadline: 0,
        }
    }

    /// Back to the reset state (counts zero, divide by 2, no deadline); keeps the
    /// clock rates and the TSC offset.
    pub fn reset(&mut self) {
        *self = ApicTimer { tsc_offset: self.tsc_offset, ..ApicTimer::new(self.bus_hz, self.tsc_hz) };
    }

    /// Nanoseconds for `counts` timer counts, rounded up so the count has really
    /// elapsed at that time.
    fn counts_to_ns(&self, counts: u64) -> u64 {
        let scaled = counts as u128 * divisor(self.divide_config) as u128 * NS_PER_SEC;
        scaled.div_ceil(self.bus_hz as u128).min(u64::MAX as u128) as u64
    }

    /// Whole timer counts elapsed since `period_start_ns`.
    fn elapsed_counts(&self, now_ns: u64) -> u64 {
        let ns = now_ns.saturating_sub(self.period_start_ns) as u128;
        let counts = ns * self.bus_hz as u128 / (NS_PER_SEC * divisor(self.divide_config) as u128);
        counts.min(u64::MAX as u128) as u64
    }

    /// Length of one full period from the initial count, at least 1 ns.
    fn period_ns(&self) -> u64 {
        self.counts_to_ns(self.initial_count.into()).max(1)
    }

    /// The initial count register.
    pub fn initial_count(&self) -> u32 {
        self.initial_count
    }

    /// The divide configuration register.
    pub fn divide_config(&self) -> u32 {
        self.divide_config
    }

    /// A write to the initial count register: (re)starts the countdown, or stops it
    /// when `count` is zero. Ignored in TSC-deadline mode.
    pub fn write_initial_count(&mut self, mode: TimerMode, count: u32, now_ns: u64) {
        if mode == TimerMode::TscDeadline {
            return;
        }
        self.initial_count = count;
        self.start_count = count;
        self.period_start_ns = now_ns;
        self.running = count != 0;
    }

    /// A write to the divide configuration register; a running countdown keeps its
    /// current count and continues from it at the new rate.
    pub fn write_divide_config(&mut self, mode: TimerMode, value: u32, now_ns: u64) {
        let current = self.current_count(mode, now_ns);
        self.divide_config = value;
        self.start_count = current;
        self.period_start_ns = now_ns;
    }

    /// The current count register.
    pub fn current_count(&self, mode: TimerMode, now_ns: u64) -> u32 {
        if self.initial_count == 0 || !self.running || mode == TimerMode::TscDeadline {
            return 0;
        }
        let elapsed = self.elapsed_counts(now_ns);
        let start = u64::from(self.start_count);
        if elapsed < start {
            return (start - elapsed) as u32;
        }
        match mode {
            TimerMode::Periodic => {
                let initial = u64::from(self.initial_count);
                (initial - (elapsed - start) % initial) as u32
            }
            TimerMode::OneShot | TimerMode::TscDeadline => 0,
        }
    }

    /// The TSC at `now_ns`.
    pub fn tsc(&self, now_ns: u64) -> u64 {
        let ticks = (now_ns as u128 * self.tsc_hz as u128 / NS_PER_SEC) as u64;
        ticks.wrapping_add(self.tsc_offset)
    }

    /// Sets the difference between the guest TSC and the clock-derived count.
    pub fn set_tsc_offset(&mut self, offset: u64) {
        self.tsc_offset = offset;
    }

    /// The IA32_TSC_DEADLINE MSR: the armed deadline, zero when disarmed or in
    /// another timer mode.
    pub fn tsc_deadline(&self, mode: TimerMode) -> u64 {
        if mode == TimerMode::TscDeadline {
            self.tsc_deadline
        } else {
            0
        }
    }

    /// A write to IA32_TSC_DEADLINE: arms (non-zero) or disarms (zero) in
    /// TSC-deadline mode; ignored in the other modes.
    pub fn write_tsc_deadline(&mut self, mode: TimerMode, deadline: u64) {
        if mode == TimerMode::TscDeadline {
            self.tsc_deadline = deadline;
        }
    }

    /// Disarms everything: used when the timer switches between TSC-deadline and a
    /// count-based mode, which the SDM says disarms the timer.
    pub fn disarm(&mut self) {
        self.initial_count = 0;
        self.running = false;
        self.tsc_deadline = 0;
    }

    /// When the timer expires next, as a clock time (`None` when it will not).
    pub fn next_expiry_ns(&self, mode: TimerMode, now_ns: u64) -> Option<u64> {
        match mode {
            TimerMode::TscDeadline => {
                if self.tsc_deadline == 0 {
                    return None;
                }
                let tsc_now = self.tsc(now_ns);
                let remaining = self.tsc_deadline.wrapping_sub(tsc_now);
                if remaining == 0 || remaining > i64::MAX as u64 {
                    return Some(now_ns);
                }
                let ns = (remaining as u128 * NS_PER_SEC).div_ceil(self.tsc_hz as u128);
                Some(now_ns.saturating_add(ns.min(u64::MAX as u128) as u64))
            }
            TimerMode::OneShot | TimerMode::Periodic => {
                let counts = u64::from(self.start_count);
                (self.running && self.initial_count != 0)
                    .then(|| self.period_start_ns.saturating_add(self.counts_to_ns(counts)))
            }
        }
    }

    /// Called when the clock reaches an expiry: true when the timer interrupt fires
    /// now. A periodic countdown reloads (skipping periods the clock jumped over,
    /// which coalesce into this one interrupt); a one-shot countdown or a TSC
    /// deadline disarms.
    pub fn expire(&mut self, mode: TimerMode, now_ns: u64) -> bool {
        let Some(expiry) = self.next_expiry_ns(mode, now_ns) else {
            return false;
        };
        if now_ns < expiry {
            return false;
        }
        match mode {
            TimerMode::TscDeadline => self.tsc_deadline = 0,
            TimerMode::OneShot => self.running = false,
            TimerMode::Periodic => {
                let period = self.period_ns();
                self.period_start_ns = expiry + (now_ns - expiry) / period * period;
                self.start_count = self.initial_count;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divide_configuration_table() {
        // SDM figure 11-10: bits 3,1,0.
        let expect = [(0b0000, 2), (0b0001, 4), (0b0010, 8), (0b0011, 16), (0b1000, 32), (0b1001, 64), (0b1010, 128)];
        for (config, div) in expect {
            assert_eq!(divisor(config), div, "config {config:#b}");
        }
        assert_eq!(divisor(0b1011), 1);
        assert_eq!(divisor(0b0100), 2, "bit 2 is not part of the field");
    }

    #[test]
    fn one_shot_counts_down_and_stops() {
        let mut t = ApicTimer::new(1_000_000_000, 1_000_000_000);
        t.write_divide_config(TimerMode::OneShot, 0b0001, 0); // divide by 4: one count per 4 ns
        t.write_initial_count(TimerMode::OneShot, 100, 1000);
        assert_eq!(t.current_count(TimerMode::OneShot, 1000), 100);
        assert_eq!(t.current_count(TimerMode::OneShot, 1000 + 40), 90);
        assert_eq!(t.next_expiry_ns(TimerMode::OneShot, 1000), Some(1400));
        assert!(!t.expire(TimerMode::OneShot, 1399));
        assert!(t.expire(TimerMode::OneShot, 1400));
        assert_eq!(t.next_expiry_ns(TimerMode::OneShot, 1400), None);
        assert_eq!(t.current_count(TimerMode::OneShot, 2000), 0);
    }

    #[test]
    fn slow_bus_rounds_expiry_up() {
        // 3 Hz timer clock, divide by 1: 2 counts take 666_666_666.67 ns.
        let mut t = ApicTimer::new(3, 1);
        t.write_divide_config(TimerMode::OneShot, 0b1011, 0);
        t.write_initial_count(TimerMode::OneShot, 2, 0);
        assert_eq!(t.next_expiry_ns(TimerMode::OneShot, 0), Some(666_666_667));
        assert_eq!(t.current_count(TimerMode::OneShot, 666_666_666), 1);
        assert_eq!(t.current_count(TimerMode::OneShot, 666_666_667), 0);
    }
}
