//! Intel 8254 programmable interval timer.
//!
//! Follows the Intel 8254 datasheet (order 231164): three 16-bit down counters clocked
//! at 1.193182 MHz, modes 0-5, LSB/MSB/word access, counter latch, read-back command
//! (count and status latches) and BCD counting. Ports: offset 0-2 are counters 0-2,
//! offset 3 the control word register.
//!
//! Nothing ticks: each counter remembers the clock tick at which it started counting
//! from a known value, and its count and OUT are computed from the injected
//! [`Clock`] when asked. Counter 0's OUT drives IRQ0: the PIT arms its injected
//! [`Timer`] at OUT0's next rising edge, and the board calls [`Pit::on_timer`] when the
//! timer is due; the PIT then **pulses** the IRQ line (one rising edge per OUT0 rising
//! edge, so a periodic mode costs one timer event per period). A reprogramming that
//! raises OUT0 at once (e.g. a mode 0 counter switched to mode 2) pulses too. Edges
//! missed because the timer ran late coalesce into one pulse, as an edge-triggered
//! interrupt controller would.
//!
//! Simplifications: a count written while a mode 2 or 3 counter runs restarts the
//! period at once (the chip waits for the current period to end); counts are loaded
//! at the write (the chip loads on the next CLK edge; the status NULL COUNT bit still
//! reads 1 until that edge).

use rx86_core::bus::BusDevice;
use rx86_core::irq::SharedIrqLine;
use rx86_core::time::{ns_to_ticks, Clock, Timer};

/// Input clock of every counter, in Hz.
pub const PIT_HZ: u64 = 1_193_182;

/// Control word bits 7:6 SC: select counter (3 = read-back command).
const CW_SC_SHIFT: u8 = 6;
/// Control word SC value of the read-back command.
const CW_SC_READ_BACK: u8 = 3;
/// Control word bits 5:4 RW: access (0 = counter latch command).
const CW_RW_SHIFT: u8 = 4;
/// Control word bits 3:1 M: mode.
const CW_M_SHIFT: u8 = 1;
/// Control word bit 0 BCD: count in binary-coded decimal.
const CW_BCD: u8 = 1 << 0;
/// Read-back bit 5 COUNT (active low): latch the count of the selected counters.
const RB_NO_COUNT: u8 = 1 << 5;
/// Read-back bit 4 STATUS (active low): latch the status of the selected counters.
const RB_NO_STATUS: u8 = 1 << 4;
/// Read-back bits 3:1: counters 2, 1, 0 selected.
const RB_COUNTER_SHIFT: u8 = 1;
/// Status bit 7: the OUT pin.
const STATUS_OUT: u8 = 1 << 7;
/// Status bit 6: NULL COUNT, the last count written has not been loaded yet.
const STATUS_NULL_COUNT: u8 = 1 << 6;

/// How the counter's 16-bit registers are read and written (control word RW field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Least significant byte only.
    Lsb = 1,
    /// Most significant byte only.
    Msb = 2,
    /// LSB then MSB.
    Word = 3,
}

/// What the counting element is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Control word written, no count yet (or mode 0 between the two count bytes).
    Unloaded,
    /// Count loaded, waiting for a GATE rising edge (modes 1, 5; modes 2, 3 with GATE low).
    WaitingTrigger,
    /// Counting down from `value` since tick `start`.
    Counting {
        /// Clock tick at which the counting element held `value`.
        start: u64,
        /// The counting element's value at `start` (1..=modulus).
        value: u32,
    },
    /// Mode 0 or 4 with GATE low: the counting element holds `value`.
    Paused {
        /// The frozen count.
        value: u32,
    },
}

/// One 8254 counter.
#[derive(Debug, Clone)]
struct Counter {
    mode: u8,
    access: Access,
    bcd: bool,
    /// The last complete count written (CR), decoded; 0 stands for the modulus.
    initial: u32,
    phase: Phase,
    /// Modes 0, 1, 4, 5: terminal count already reached before the current phase.
    terminal_passed: bool,
    gate: bool,
    /// The clock tick of the last count write (NULL COUNT until the next tick).
    written_at: u64,
    /// Word access: the LSB written, waiting for the MSB.
    pending_lsb: Option<u8>,
    /// Word access: the next unlatched read returns the MSB.
    read_msb_next: bool,
    /// Counter latch: the latched count and whether its MSB is next.
    latched_count: Option<(u16, bool)>,
    /// Read-back status latch, read before the count.
    latched_status: Option<u8>,
}

impl Counter {
    fn new(gate: bool) -> Self {
        Counter {
            // The power-on mode is undefined; mode 3 unloaded keeps OUT high (as QEMU's
            // reset state), so the first programming never fakes an OUT0 rising edge.
            mode: 3,
            access: Access::Word,
            bcd: false,
            initial: 0,
            phase: Phase::Unloaded,
            terminal_passed: false,
            gate,
            written_at: 0,
            pending_lsb: None,
            read_msb_next: false,
            latched_count: None,
            latched_status: None,
        }
    }

    /// 65536 in binary, 10000 in BCD: the count a written 0 stands for.
    fn modulus(&self) -> u32 {
        if self.bcd {
            10_000
        } else {
            0x1_0000
        }
    }

    /// The period of modes 2 and 3 (a count of 1 is illegal there; it runs as 2).
    fn period(value: u32) -> u64 {
        value.max(2) as u64
    }

    /// The counting element's value at clock tick `now`.
    fn value(&self, now: u64) -> u32 {
        let m = self.modulus() as u64;
        match self.phase {
            Phase::Unloaded | Phase::WaitingTrigger => self.initial % self.modulus(),
            Phase::Paused { value } => value % self.modulus(),
            Phase::Counting { start, value } => {
                let d = now.saturating_sub(start);
                let v = value as u64;
                let out = match self.mode {
                    2 => {
                        let n = Self::period(value);
                        n - d % n
                    }
                    3 => {
                        let n = Self::period(value);
                        let high_half = n.div_ceil(2);
                        let p = d % n;
                        if p < high_half {
                            n - 2 * p
                        } else {
                            n - (n & 1) - 2 * (p - high_half)
                        }
                    }
                    _ => (v + m - d % m) % m,
                };
                (out % m) as u32
            }
        }
    }

    /// The OUT pin at clock tick `now`.
    fn out(&self, now: u64) -> bool {
        match self.phase {
            Phase::Unloaded => self.mode != 0,
            Phase::WaitingTrigger => true,
            Phase::Paused { .. } => self.mode != 0 || self.terminal_passed,
            Phase::Counting { start, value } => {
                let d = now.saturating_sub(start);
                let v = value as u64;
                match self.mode {
                    0 | 1 => self.terminal_passed || d >= v,
                    2 => {
                        let n = Self::period(value);
                        d % n != n - 1
                    }
                    3 => {
                        let n = Self::period(value);
                        d % n < n.div_ceil(2)
                    }
                    _ => self.terminal_passed || d != v,
                }
            }
        }
    }

    /// The first tick after `now` at which OUT rises, if it will.
    fn next_rising_edge(&self, now: u64) -> Option<u64> {
        let Phase::Counting { start, value } = self.phase else { return None };
        let v = value as u64;
        let edge = match self.mode {
            0 | 1 if !self.terminal_passed => start + v,
            2 | 3 => {
                let n = Self::period(value);
                let periods = now.saturating_sub(start) / n + 1;
                start + periods * n
            }
            4 | 5 if !self.terminal_passed => start + v + 1,
            _ => return None,
        };
        (edge > now).then_some(edge)
    }

    fn status(&self, now: u64) -> u8 {
        let null_count = match self.phase {
            Phase::Unloaded | Phase::WaitingTrigger => true,
            Phase::Counting { .. } | Phase::Paused { .. } => now <= self.written_at,
        };
        let mut status = (self.access as u8) << CW_RW_SHIFT | self.mode << CW_M_SHIFT | self.bcd as u8;
        if self.out(now) {
            status |= STATUS_OUT;
        }
        if null_count {
            status |= STATUS_NULL_COUNT;
        }
        status
    }

    fn encode(&self, value: u32) -> u16 {
        if !self.bcd {
            return value as u16;
        }
        let digits = [value % 10, value / 10 % 10, value / 100 % 10, value / 1000 % 10];
        digits.iter().rev().fold(0u16, |acc, &d| acc << 4 | d as u16)
    }

    fn decode(&self, raw: u16) -> u32 {
        let value = if self.bcd {
            let nibbles = [raw & 0xf, raw >> 4 & 0xf, raw >> 8 & 0xf, raw >> 12];
            if nibbles.iter().any(|&n| n > 9) {
                log::warn!("PIT: count {raw:#06x} written in BCD mode is not BCD");
            }
            nibbles.iter().rev().fold(0u32, |acc, &n| acc * 10 + n.min(9) as u32)
        } else {
            raw as u32
        };
        if value == 0 {
            self.modulus()
        } else {
            value
        }
    }

    fn control_word(&mut self, access: Access, mode: u8, bcd: bool) {
        self.access = access;
        // Modes 6 and 7 are modes 2 and 3 (bit 2 is "don't care" there).
        self.mode = if mode >= 6 { mode - 4 } else { mode };
        self.bcd = bcd;
        self.phase = Phase::Unloaded;
        self.terminal_passed = false;
        self.pending_lsb = None;
        self.read_msb_next = false;
        self.latched_count = None;
        self.latched_status = None;
    }

    /// A complete count was written at tick `now`.
    fn load(&mut self, raw: u16, now: u64) {
        self.initial = self.decode(raw);
        self.written_at = now;
        self.terminal_passed = false;
        let counting = Phase::Counting { start: now, value: self.initial };
        self.phase = match self.mode {
            0 | 4 if self.gate => counting,
            0 | 4 => Phase::Paused { value: self.initial },
            1 | 5 => match self.phase {
                Phase::Counting { .. } => self.phase,
                _ => Phase::WaitingTrigger,
            },
            _ if self.gate => counting,
            _ => Phase::WaitingTrigger,
        };
    }

    fn write(&mut self, byte: u8, now: u64) {
        match self.access {
            Access::Lsb => self.load(byte as u16, now),
            Access::Msb => self.load((byte as u16) << 8, now),
            Access::Word => match self.pending_lsb.take() {
                Some(lsb) => self.load((byte as u16) << 8 | lsb as u16, now),
                None => {
                    self.pending_lsb = Some(byte);
                    if self.mode == 0 {
                        // Mode 0: writing the first byte stops the count.
                        self.phase = Phase::Unloaded;
                    }
                }
            },
        }
    }

    fn read(&mut self, now: u64) -> u8 {
        if let Some(status) = self.latched_status.take() {
            return status;
        }
        if let Some((count, msb_next)) = self.latched_count {
            let (byte, done) = match (self.access, msb_next) {
                (Access::Lsb, _) => (count as u8, true),
                (Access::Msb, _) => ((count >> 8) as u8, true),
                (Access::Word, false) => (count as u8, false),
                (Access::Word, true) => ((count >> 8) as u8, true),
            };
            self.latched_count = if done { None } else { Some((count, true)) };
            return byte;
        }
        let count = self.encode(self.value(now));
        match self.access {
            Access::Lsb => count as u8,
            Access::Msb => (count >> 8) as u8,
            Access::Word => {
                self.read_msb_next = !self.read_msb_next;
                if self.read_msb_next {
                    count as u8
                } else {
                    (count >> 8) as u8
                }
            }
        }
    }

    /// Counter latch command: only the first latch counts until it is read.
    fn latch_count(&mut self, now: u64) {
        if self.latched_count.is_none() {
            self.latched_count = Some((self.encode(self.value(now)), false));
        }
    }

    fn latch_status(&mut self, now: u64) {
        if self.latched_status.is_none() {
            self.latched_status = Some(self.status(now));
        }
    }

    fn set_gate(&mut self, high: bool, now: u64) {
        let rising = high && !self.gate;
        let falling = !high && self.gate;
        self.gate = high;
        let loaded = self.phase != Phase::Unloaded;
        match self.mode {
            0 | 4 if falling => {
                if let Phase::Counting { start, value } = self.phase {
                    self.terminal_passed |= now.saturating_sub(start) >= value as u64;
                    // A counting element at 0 holds the full modulus (the next clock wraps it).
                    let value = match self.value(now) {
                        0 => self.modulus(),
                        v => v,
                    };
                    self.phase = Phase::Paused { value };
                }
            }
            0 | 4 if rising => {
                if let Phase::Paused { value } = self.phase {
                    self.phase = Phase::Counting { start: now, value };
                }
            }
            1 | 5 if rising && loaded => {
                self.terminal_passed = false;
                self.phase = Phase::Counting { start: now, value: self.initial };
            }
            2 | 3 if rising && loaded => self.phase = Phase::Counting { start: now, value: self.initial },
            2 | 3 if falling && loaded => self.phase = Phase::WaitingTrigger,
            _ => {}
        }
    }
}

/// The 8254 with counter 0 wired to IRQ0 and counter 2's gate and OUT exposed for
/// port 0x61.
pub struct Pit {
    counters: [Counter; 3],
    clock: Clock,
    timer: Timer,
    /// The OUT0 rising edge the timer is armed for, as a clock tick.
    armed_edge: Option<u64>,
    irq0: SharedIrqLine,
}

impl Pit {
    /// A PIT reading `clock`, arming `timer` for OUT0 edges and pulsing `irq0`.
    /// Gates 0 and 1 are tied high; gate 2 starts low (port 0x61 bit 0 clear).
    pub fn new(clock: Clock, timer: Timer, irq0: SharedIrqLine) -> Self {
        Pit {
            counters: [Counter::new(true), Counter::new(true), Counter::new(false)],
            clock,
            timer,
            armed_edge: None,
            irq0,
        }
    }

    fn now_tick(&self) -> u64 {
        ns_to_ticks(self.clock.now_ns(), PIT_HZ)
    }

    /// The first nanosecond at which `tick` has been reached.
    fn tick_to_ns(tick: u64) -> u64 {
        (tick as u128 * 1_000_000_000).div_ceil(PIT_HZ as u128) as u64
    }

    /// The OUT pin of counter `channel` (0-2) now; false for a bad channel.
    pub fn out(&self, channel: usize) -> bool {
        self.counters.get(channel).is_some_and(|c| c.out(self.now_tick()))
    }

    /// Counter 2's OUT (port 0x61 bit 5).
    pub fn out2(&self) -> bool {
        self.out(2)
    }

    /// Counter 2's GATE input (port 0x61 bit 0).
    pub fn gate2(&self) -> bool {
        self.counters[2].gate
    }

    /// Drives counter 2's GATE input (port 0x61 bit 0).
    pub fn set_gate2(&mut self, high: bool) {
        let now = self.now_tick();
        self.counters[2].set_gate(high, now);
    }

    /// The board calls this when the PIT's timer is due: pulses IRQ0 if OUT0 rose and
    /// arms the timer for the next rising edge.
    pub fn on_timer(&mut self) {
        let now = self.now_tick();
        self.fire_due_edge(now);
        self.reschedule(now);
    }

    /// Runs `change` on counter 0, pulsing IRQ0 if it raised OUT0 at once, and
    /// re-arms the timer.
    fn change_counter(&mut self, index: usize, now: u64, change: impl FnOnce(&mut Counter, u64)) {
        if index == 0 {
            self.fire_due_edge(now);
        }
        let before = self.counters[index].out(now);
        change(&mut self.counters[index], now);
        if index == 0 {
            if !before && self.counters[0].out(now) {
                self.irq0.pulse();
            }
            self.reschedule(now);
        }
    }

    /// Pulses IRQ0 if the OUT0 rising edge the timer was armed for has passed.
    fn fire_due_edge(&mut self, now: u64) {
        if self.armed_edge.is_some_and(|edge| edge <= now) {
            self.armed_edge = None;
            self.irq0.pulse();
        }
    }

    /// Arms the timer for OUT0's next rising edge.
    fn reschedule(&mut self, now: u64) {
        self.armed_edge = self.counters[0].next_rising_edge(now);
        match self.armed_edge {
            Some(tick) => self.timer.arm_at(Self::tick_to_ns(tick)),
            None => self.timer.cancel(),
        }
    }

    fn write_control(&mut self, value: u8, now: u64) {
        let select = value >> CW_SC_SHIFT;
        if select == CW_SC_READ_BACK {
            for (i, counter) in self.counters.iter_mut().enumerate() {
                if value & (1 << (i as u8 + RB_COUNTER_SHIFT)) == 0 {
                    continue;
                }
                if value & RB_NO_STATUS == 0 {
                    counter.latch_status(now);
                }
                if value & RB_NO_COUNT == 0 {
                    counter.latch_count(now);
                }
            }
            return;
        }
        let index = select as usize;
        let access = match value >> CW_RW_SHIFT & 3 {
            0 => return self.counters[index].latch_count(now),
            1 => Access::Lsb,
            2 => Access::Msb,
            _ => Access::Word,
        };
        let mode = value >> CW_M_SHIFT & 7;
        self.change_counter(index, now, |c, _| c.control_word(access, mode, value & CW_BCD != 0));
    }
}

impl std::fmt::Debug for Pit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pit").field("counters", &self.counters).field("timer", &self.timer).finish_non_exhaustive()
    }
}

impl BusDevice for Pit {
    fn read(&mut self, offset: u64, _size: u8) -> u64 {
        let now = self.now_tick();
        match offset {
            0..=2 => self.counters[offset as usize].read(now) as u64,
            _ => {
                log::debug!("PIT: read of the write-only control word register");
                0xff
            }
        }
    }

    fn write(&mut self, offset: u64, _size: u8, value: u64) {
        let now = self.now_tick();
        let value = value as u8;
        match offset {
            0..=2 => self.change_counter(offset as usize, now, |c, now| c.write(value, now)),
            3 => self.write_control(value, now),
            _ => log::warn!("PIT: write of {value:#04x} at offset {offset} outside the chip"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rx86_core::irq::RecordingIrqLine;
    use rx86_core::time::ticks_to_ns;
    use std::sync::Arc;

    struct Rig {
        pit: Pit,
        clock: Clock,
        timer: Timer,
        irq: Arc<RecordingIrqLine>,
    }

    fn rig() -> Rig {
        let clock = Clock::new_virtual();
        let timer = Timer::standalone("pit");
        let irq = RecordingIrqLine::new();
        let pit = Pit::new(clock.clone(), timer.clone(), irq.clone());
        Rig { pit, clock, timer, irq }
    }

    impl Rig {
        /// Moves the clock to PIT tick `tick`, firing the timer whenever it is due.
        fn run_to_tick(&mut self, tick: u64) {
            let end = Pit::tick_to_ns(tick);
            while let Some(deadline) = self.timer.deadline().filter(|&d| d <= end) {
                self.clock.advance_to(deadline);
                self.timer.cancel();
                self.pit.on_timer();
            }
            self.clock.advance_to(end);
        }

        fn program(&mut self, control: u8, channel: u64, count: u16) {
            self.pit.write(3, 1, control as u64);
            self.pit.write(channel, 1, (count & 0xff) as u64);
            self.pit.write(channel, 1, (count >> 8) as u64);
        }

        fn latch_and_read(&mut self, channel: u8) -> u16 {
            self.pit.write(3, 1, (channel << 6) as u64);
            let lsb = self.pit.read(channel as u64, 1);
            let msb = self.pit.read(channel as u64, 1);
            (msb << 8 | lsb) as u16
        }
    }

    #[test]
    fn mode2_rate_generator_pulses_irq0_once_per_period() {
        let mut r = rig();
        r.run_to_tick(5);
        r.program(0x34, 0, 1193); // Linux: counter 0, word, mode 2, ~1 kHz
        assert_eq!(r.timer.deadline(), Some(Pit::tick_to_ns(5 + 1193)));
        r.run_to_tick(5 + 10 * 1193 + 1);
        assert_eq!(r.irq.rising_edges(), 10);
        assert!(!r.irq.level(), "pulses leave the line low");
        r.run_to_tick(5 + 10 * 1193 + 100);
        assert_eq!(r.latch_and_read(0), 1193 - 100);
        assert_eq!(r.timer.deadline(), Some(Pit::tick_to_ns(5 + 11 * 1193)), "one timer event per period");
    }

    #[test]
    fn late_timer_coalesces_missed_edges() {
        let mut r = rig();
        r.program(0x34, 0, 100);
        r.clock.advance_to(Pit::tick_to_ns(1050));
        r.pit.on_timer();
        assert_eq!(r.irq.rising_edges(), 1);
        assert_eq!(r.timer.deadline(), Some(Pit::tick_to_ns(1100)));
    }

    #[test]
    fn mode0_interrupt_on_terminal_count() {
        let mut r = rig();
        r.program(0x30, 0, 1000);
        assert!(!r.pit.out(0), "mode 0 OUT goes low when the count is written");
        r.run_to_tick(999);
        assert!(!r.pit.out(0));
        assert_eq!(r.irq.rising_edges(), 0);
        r.run_to_tick(1000);
        assert!(r.pit.out(0));
        assert_eq!(r.irq.rising_edges(), 1);
        assert_eq!(r.timer.deadline(), None, "one-shot: nothing more to schedule");
        r.run_to_tick(1010);
        assert_eq!(r.latch_and_read(0), 0u16.wrapping_sub(10), "the counter wraps and keeps counting");
        assert!(r.pit.out(0), "OUT stays high until reprogrammed");
    }

    #[test]
    fn mode4_software_strobe_is_one_clock_low() {
        let mut r = rig();
        r.program(0x38, 0, 50); // Linux one-shot clockevent
        assert!(r.pit.out(0));
        r.clock.advance_to(Pit::tick_to_ns(50));
        assert!(!r.pit.out(0));
        r.run_to_tick(60);
        assert!(r.pit.out(0));
        assert_eq!(r.irq.rising_edges(), 1, "the strobe's end raises IRQ0 once");
    }

    #[test]
    fn mode3_square_wave_halves_and_counts_by_two() {
        let mut r = rig();
        r.program(0x36, 0, 100);
        r.clock.advance_to(Pit::tick_to_ns(10));
        assert!(r.pit.out(0));
        assert_eq!(r.latch_and_read(0), 80);
        r.clock.advance_to(Pit::tick_to_ns(49));
        assert!(r.pit.out(0));
        r.clock.advance_to(Pit::tick_to_ns(50));
        assert!(!r.pit.out(0));
        assert_eq!(r.latch_and_read(0), 100);
        r.clock.advance_to(Pit::tick_to_ns(99));
        assert!(!r.pit.out(0));
        r.run_to_tick(100);
        assert!(r.pit.out(0));
        assert_eq!(r.irq.rising_edges(), 1);
    }

    #[test]
    fn odd_mode3_count_is_high_one_clock_longer() {
        let mut r = rig();
        r.program(0x36, 0, 5);
        r.clock.advance_to(Pit::tick_to_ns(2));
        assert!(r.pit.out(0));
        r.clock.advance_to(Pit::tick_to_ns(3));
        assert!(!r.pit.out(0));
        r.clock.advance_to(Pit::tick_to_ns(5));
        assert!(r.pit.out(0));
    }

    #[test]
    fn access_modes_lsb_msb_and_latch_freezes_value() {
        let mut r = rig();
        r.pit.write(3, 1, 0x54); // counter 1, LSB only, mode 2
        r.pit.write(1, 1, 0x12);
        r.clock.advance_to(Pit::tick_to_ns(2));
        assert_eq!(r.pit.read(1, 1), 0x10);
        r.pit.write(3, 1, 0x64); // counter 1, MSB only, mode 2
        r.pit.write(1, 1, 0x02);
        r.clock.advance_to(Pit::tick_to_ns(2 + 0x10));
        assert_eq!(r.pit.read(1, 1), 0x01, "0x200 - 0x10 = 0x1f0");
        r.pit.write(3, 1, 0x74);
        r.pit.write(1, 1, 0x00);
        r.pit.write(1, 1, 0x10);
        r.pit.write(3, 1, 0x40); // latch counter 1
        r.clock.advance_to(Pit::tick_to_ns(2 + 0x10 + 0x100));
        r.pit.write(3, 1, 0x40); // a second latch is ignored until the first is read
        assert_eq!(r.pit.read(1, 1), 0x00);
        assert_eq!(r.pit.read(1, 1), 0x10, "latched 0x1000 at load time");
        assert_eq!(r.pit.read(1, 1), 0x00, "latch released: live value 0x0f00");
        assert_eq!(r.pit.read(1, 1), 0x0f);
    }

    #[test]
    fn read_back_latches_status_then_count() {
        let mut r = rig();
        r.program(0xb0, 2, 0x100); // counter 2, word, mode 0, gate low
        r.pit.write(3, 1, 0xc8); // read-back count+status of counter 2
        assert_eq!(r.pit.read(2, 1), 0x70, "OUT low, NULL COUNT (not yet clocked), word, mode 0, binary");
        assert_eq!(r.pit.read(2, 1), 0x00);
        assert_eq!(r.pit.read(2, 1), 0x01);
        r.clock.advance_to(Pit::tick_to_ns(300));
        r.pit.write(3, 1, 0xe8); // status only
        assert_eq!(r.pit.read(2, 1), 0x30, "count loaded, gate low: still 0x100, OUT low");
        r.pit.set_gate2(true);
        r.clock.advance_to(Pit::tick_to_ns(300 + 0x100));
        assert!(r.pit.out2());
        r.pit.write(3, 1, 0xe8);
        assert_eq!(r.pit.read(2, 1) & 0x80, 0x80);
    }

    #[test]
    fn bcd_counts_decimal() {
        let mut r = rig();
        r.pit.write(3, 1, 0x71); // counter 1, word, mode 0, BCD
        r.pit.write(1, 1, 0x00);
        r.pit.write(1, 1, 0x10); // 1000 decimal
        r.clock.advance_to(Pit::tick_to_ns(1));
        assert_eq!(r.latch_and_read(1), 0x0999);
        r.clock.advance_to(Pit::tick_to_ns(1001));
        assert_eq!(r.latch_and_read(1), 0x9999, "BCD wraps modulo 10000");
        r.pit.write(3, 1, 0x71);
        r.pit.write(1, 1, 0x00);
        r.pit.write(1, 1, 0x00); // 0 = 10000 in BCD
        r.clock.advance_to(Pit::tick_to_ns(1001 + 9999));
        assert!(!r.pit.out(1));
        r.clock.advance_to(Pit::tick_to_ns(1001 + 10000));
        assert!(r.pit.out(1));
    }

    #[test]
    fn gate_pauses_mode0_and_retriggers_mode1() {
        let mut r = rig();
        r.program(0xb0, 2, 100); // Linux TSC calibration style, gate still low
        r.clock.advance_to(Pit::tick_to_ns(500));
        assert_eq!(r.latch_and_read(2), 100, "mode 0 does not count with GATE low");
        r.pit.set_gate2(true);
        r.clock.advance_to(Pit::tick_to_ns(540));
        assert_eq!(r.latch_and_read(2), 60);
        r.pit.set_gate2(false);
        r.clock.advance_to(Pit::tick_to_ns(600));
        assert_eq!(r.latch_and_read(2), 60);
        r.pit.set_gate2(true);
        r.clock.advance_to(Pit::tick_to_ns(659));
        assert!(!r.pit.out2());
        r.clock.advance_to(Pit::tick_to_ns(660));
        assert!(r.pit.out2());

        r.pit.set_gate2(false);
        r.program(0xb2, 2, 10); // mode 1: hardware retriggerable one-shot
        r.clock.advance_to(Pit::tick_to_ns(700));
        assert!(r.pit.out2(), "mode 1 waits for a trigger with OUT high");
        r.pit.set_gate2(true);
        assert!(!r.pit.out2());
        r.clock.advance_to(Pit::tick_to_ns(705));
        r.pit.set_gate2(false);
        r.pit.set_gate2(true); // retrigger restarts the full count
        r.clock.advance_to(Pit::tick_to_ns(714));
        assert!(!r.pit.out2());
        r.clock.advance_to(Pit::tick_to_ns(715));
        assert!(r.pit.out2());
    }

    #[test]
    fn mode0_paused_at_zero_resumes_by_wrapping() {
        let mut r = rig();
        r.pit.set_gate2(true);
        r.program(0xb0, 2, 10);
        r.clock.advance_to(Pit::tick_to_ns(10));
        r.pit.set_gate2(false);
        r.clock.advance_to(Pit::tick_to_ns(50));
        assert_eq!(r.latch_and_read(2), 0);
        assert!(r.pit.out2(), "terminal count was reached before the pause");
        r.pit.set_gate2(true);
        r.clock.advance_to(Pit::tick_to_ns(51));
        assert_eq!(r.latch_and_read(2), 0xffff);
        assert!(r.pit.out2());
    }

    #[test]
    fn gate_low_stops_mode2_with_out_high() {
        let mut r = rig();
        r.program(0xb4, 2, 10);
        r.pit.set_gate2(true);
        r.clock.advance_to(Pit::tick_to_ns(9));
        assert!(!r.pit.out2(), "mode 2 OUT low for the last clock of the period");
        r.pit.set_gate2(false);
        assert!(r.pit.out2(), "GATE low forces OUT high");
        r.pit.set_gate2(true);
        r.clock.advance_to(Pit::tick_to_ns(12));
        assert_eq!(r.latch_and_read(2), 7, "the rising gate reloaded the count");
    }

    #[test]
    fn reprogramming_that_raises_out0_pulses_irq0() {
        let mut r = rig();
        r.program(0x30, 0, 1000);
        r.pit.write(3, 1, 0x34);
        assert_eq!(r.irq.rising_edges(), 1);
    }

    #[test]
    fn rate_matches_the_crystal() {
        let mut r = rig();
        r.program(0x34, 0, 0); // 65536: the BIOS 18.2 Hz tick
        let one_second = ns_to_ticks(1_000_000_000, PIT_HZ);
        r.run_to_tick(one_second);
        assert_eq!(r.irq.rising_edges(), 18);
        assert_eq!(ticks_to_ns(PIT_HZ, PIT_HZ), 1_000_000_000);
    }

    #[test]
    fn fuzz_register_writes_never_panic() {
        let mut r = rig();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..100_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let value = state >> 40;
            match state % 6 {
                0 | 1 => r.pit.write(state >> 8 & 3, 1, value),
                2 => {
                    r.pit.read(state >> 8 & 3, 1);
                }
                3 => r.pit.set_gate2(value & 1 != 0),
                4 => r.clock.advance_to(r.clock.now_ns() + (value & 0xffff)),
                _ => {
                    r.run_to_tick(r.pit.now_tick() + (value & 0xfff));
                }
            }
        }
    }
}
