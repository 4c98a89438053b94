//! System control port B (port 0x61): PIT gate 2, speaker and OUT2 status.
//!
//! IBM PC/AT technical reference, "System control port B" (and PIIX3 datasheet,
//! NMI status and control register 061h): bits 0-3 are read/write controls, bits 4-7
//! read-only status. The refresh-request toggle (bit 4) flips every 15.085 us of the
//! injected clock (the DRAM refresh period of the AT, from PIT counter 1 at count 18).
//! If two reads see the clock standing still (a clock that only moves between device
//! accesses), the bit toggles on the read instead, so delay loops that wait for a
//! toggle always finish.

use crate::pit::Pit;
use rx86_core::bus::BusDevice;
use rx86_core::time::Clock;
use std::sync::{Arc, Mutex};

/// Bit 0 (R/W): timer 2 GATE input.
const TIM2_GATE: u8 = 1 << 0;
/// Bit 1 (R/W): speaker data enable (ANDed with OUT2 to drive the speaker).
const SPKR_DAT_EN: u8 = 1 << 1;
/// Bit 2 (R/W): PCI SERR# / parity check disable.
const PCI_SERR_DIS: u8 = 1 << 2;
/// Bit 3 (R/W): IOCHK# NMI disable.
const IOCHK_DIS: u8 = 1 << 3;
/// Bit 4 (RO): refresh cycle toggle.
const REF_TOGGLE: u8 = 1 << 4;
/// Bit 5 (RO): timer 2 OUT.
const TIM2_OUT: u8 = 1 << 5;
/// The writable control bits.
const CONTROL_BITS: u8 = TIM2_GATE | SPKR_DAT_EN | PCI_SERR_DIS | IOCHK_DIS;
/// DRAM refresh period that drives the toggle, in nanoseconds.
const REFRESH_PERIOD_NS: u64 = 15_085;

/// Port 0x61, sharing the PIT with the board.
pub struct SystemPortB {
    pit: Arc<Mutex<Pit>>,
    clock: Clock,
    control: u8,
    /// The clock reading and toggle value of the previous read.
    last_read: Option<(u64, bool)>,
}

impl SystemPortB {
    /// Port B over the shared `pit`, timing the refresh toggle with `clock`.
    pub fn new(pit: Arc<Mutex<Pit>>, clock: Clock) -> Self {
        SystemPortB { pit, clock, control: 0, last_read: None }
    }

    /// True when the speaker is driven (speaker data enabled and gate 2 high).
    pub fn speaker_enabled(&self) -> bool {
        self.control & (SPKR_DAT_EN | TIM2_GATE) == SPKR_DAT_EN | TIM2_GATE
    }

    fn refresh_toggle(&mut self) -> bool {
        let now = self.clock.now_ns();
        let toggle = match self.last_read {
            Some((then, previous)) if then == now => !previous,
            _ => (now / REFRESH_PERIOD_NS) % 2 == 1,
        };
        self.last_read = Some((now, toggle));
        toggle
    }
}

impl std::fmt::Debug for SystemPortB {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemPortB").field("control", &self.control).finish_non_exhaustive()
    }
}

impl BusDevice for SystemPortB {
    fn read(&mut self, _offset: u64, _size: u8) -> u64 {
        let mut value = self.control;
        if self.refresh_toggle() {
            value |= REF_TOGGLE;
        }
        if self.pit.lock().unwrap_or_else(|e| e.into_inner()).out2() {
            value |= TIM2_OUT;
        }
        value as u64
    }

    fn write(&mut self, _offset: u64, _size: u8, value: u64) {
        let value = value as u8;
        if value & !CONTROL_BITS != 0 {
            log::debug!("port 0x61: read-only bits {:#04x} written", value & !CONTROL_BITS);
        }
        self.control = value & CONTROL_BITS;
        self.pit.lock().unwrap_or_else(|e| e.into_inner()).set_gate2(value & TIM2_GATE != 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rx86_core::irq::NoIrq;
    use rx86_core::time::Timer;

    fn rig() -> (SystemPortB, Arc<Mutex<Pit>>, Clock) {
        let clock = Clock::new_virtual();
        let pit = Arc::new(Mutex::new(Pit::new(clock.clone(), Timer::standalone("pit"), Arc::new(NoIrq))));
        (SystemPortB::new(pit.clone(), clock.clone()), pit, clock)
    }

    #[test]
    fn gate2_and_out2_follow_the_pit() {
        let (mut port, pit, clock) = rig();
        // Linux pit_calibrate_tsc: gate on, speaker off, counter 2 mode 0.
        port.write(0, 1, 0x01);
        assert!(pit.lock().unwrap().gate2());
        {
            let mut pit = pit.lock().unwrap();
            pit.write(3, 1, 0xb0);
            pit.write(2, 1, 0xe8);
            pit.write(2, 1, 0x03); // 1000 ticks
        }
        assert_eq!(port.read(0, 1) & 0x21, 0x01, "OUT2 low while counting, gate bit reads back");
        clock.advance_to(1_000_000); // 1193 ticks
        assert_eq!(port.read(0, 1) & 0x20, 0x20, "OUT2 high at terminal count");
        assert!(!port.speaker_enabled());
        port.write(0, 1, 0x03);
        assert!(port.speaker_enabled());
        port.write(0, 1, 0xf0);
        assert!(!pit.lock().unwrap().gate2());
        assert_eq!(port.read(0, 1) & 0x0f, 0, "status bits are not stored");
    }

    #[test]
    fn refresh_toggle_follows_time_and_never_sticks() {
        let (mut port, _pit, clock) = rig();
        clock.advance_to(REFRESH_PERIOD_NS / 2);
        let a = port.read(0, 1) & 0x10;
        clock.advance_to(REFRESH_PERIOD_NS * 3 / 2);
        let b = port.read(0, 1) & 0x10;
        assert_ne!(a, b, "flips once per refresh period");
        clock.advance_to(REFRESH_PERIOD_NS * 3 / 2 + 100);
        assert_eq!(port.read(0, 1) & 0x10, b, "steady within a period while time moves");
        let c = port.read(0, 1) & 0x10;
        assert_ne!(c, b, "a standing clock toggles on each read");
    }

    #[test]
    fn fuzz_register_writes_never_panic() {
        let (mut port, _pit, clock) = rig();
        let mut state = 0x1234_5678_9abc_def1u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            match state % 3 {
                0 => port.write(0, 1, state >> 32),
                1 => {
                    port.read(0, 1);
                }
                _ => clock.advance_to(clock.now_ns() + (state >> 50)),
            }
        }
    }
}
