//! ACPI PM1a event/control blocks and the PM timer.
//!
//! ACPI 6.5 section 4.8 "ACPI Hardware Features": the fixed hardware register blocks
//! of this board, all in one device mapped at the PM base (0x600 on the PC board),
//! [`PM_BLOCK_LEN`] bytes long. Offsets from the base:
//!
//! | offset | FADT block      | register                                    |
//! |--------|-----------------|---------------------------------------------|
//! | 0x00   | PM1a_EVT_BLK    | PM1_STS (16 bit, write 1 to clear)          |
//! | 0x02   | PM1a_EVT_BLK+2  | PM1_EN (16 bit)                             |
//! | 0x04   | PM1a_CNT_BLK    | PM1_CNT (16 bit)                            |
//! | 0x08   | PM_TMR_BLK      | PM_TMR (32 bit, read only; TMR_VAL_EXT = 1) |
//! | 0x20   | GPE0_BLK        | GPE0_STS (16 bit, no sources: reads 0)      |
//! | 0x22   | GPE0_BLK+2      | GPE0_EN (16 bit)                            |
//!
//! Other offsets are reserved: they read 0 and ignore writes. Any access width works
//! at any offset (the bytes are assembled little-endian); the PM timer is sampled once
//! per access. ACPI is always enabled (no SMI_CMD), so SCI_EN reads 1 and ignores
//! writes. The SCI is a level output: high while SCI_EN is set and an enabled status
//! bit is set. A PM1_CNT write with SLP_EN and SLP_TYP 0 (this board's `\_S5`)
//! requests [`PowerEvent::PowerOff`]; other sleep types are logged and ignored.
//!
//! TMR_STS is set whenever bit 31 of the PM timer changes; while TMR_EN is set the
//! device arms its injected [`Timer`] at the next change and the board calls
//! [`AcpiPm::on_timer`] when it is due.

use rx86_core::bus::BusDevice;
use rx86_core::irq::SharedIrqLine;
use rx86_core::platform::{PowerControl, PowerEvent};
use rx86_core::time::{ns_to_ticks, Clock, Timer};

/// The PM timer's clock, in Hz.
pub const PM_TIMER_HZ: u64 = 3_579_545;
/// Length of the register block this device decodes.
pub const PM_BLOCK_LEN: u64 = 0x30;

/// Offset of PM1_STS.
const PM1_STS: u64 = 0x00;
/// Offset of PM1_EN.
const PM1_EN: u64 = 0x02;
/// Offset of PM1_CNT.
const PM1_CNT: u64 = 0x04;
/// Offset of PM_TMR.
const PM_TMR: u64 = 0x08;
/// Offset of GPE0_STS.
const GPE0_STS: u64 = 0x20;
/// Offset of GPE0_EN.
const GPE0_EN: u64 = 0x22;

/// PM1_STS/PM1_EN bit 0: PM timer MSB changed (TMR_STS / TMR_EN).
const TMR: u16 = 1 << 0;
/// PM1_STS bit 4 BM_STS: bus master activity.
const BM_STS: u16 = 1 << 4;
/// PM1_STS/PM1_EN bit 5: global lock release (GBL_STS / GBL_EN).
const GBL: u16 = 1 << 5;
/// PM1_STS/PM1_EN bit 8: power button (PWRBTN_STS / PWRBTN_EN).
const PWRBTN: u16 = 1 << 8;
/// PM1_STS/PM1_EN bit 9: sleep button (SLPBTN_STS / SLPBTN_EN).
const SLPBTN: u16 = 1 << 9;
/// PM1_STS/PM1_EN bit 10: RTC alarm (RTC_STS / RTC_EN).
const RTC: u16 = 1 << 10;
/// PM1_STS bit 15 WAK_STS: the system woke from a sleep state.
const WAK_STS: u16 = 1 << 15;
/// PM1_STS bits that exist.
const PM1_STS_BITS: u16 = TMR | BM_STS | GBL | PWRBTN | SLPBTN | RTC | WAK_STS;
/// PM1_EN bits that exist (each enables the same-numbered status bit onto the SCI).
const PM1_EN_BITS: u16 = TMR | GBL | PWRBTN | SLPBTN | RTC;
/// PM1_CNT bit 0 SCI_EN: events raise the SCI (rather than an SMI).
const SCI_EN: u16 = 1 << 0;
/// PM1_CNT bit 1 BM_RLD: bus master requests wake the CPU from C3.
const BM_RLD: u16 = 1 << 1;
/// PM1_CNT bit 2 GBL_RLS (write only): releases the global lock to the firmware.
const GBL_RLS: u16 = 1 << 2;
/// PM1_CNT bits 12:10 SLP_TYP: the sleep state entered on SLP_EN.
const SLP_TYP_SHIFT: u16 = 10;
/// PM1_CNT bit 13 SLP_EN (write only): enter the SLP_TYP sleep state.
const SLP_EN: u16 = 1 << 13;
/// The SLP_TYP of S5 (soft off) on this board (`\_S5` is `Package(){0,0,0,0}`).
const SLP_TYP_S5: u16 = 0;
/// The PM timer bit whose changes set TMR_STS (TMR_VAL_EXT = 1: 32-bit timer).
const TMR_STS_BIT: u32 = 31;

/// The ACPI fixed hardware of the board's PM block.
pub struct AcpiPm {
    pm1_sts: u16,
    pm1_en: u16,
    /// PM1_CNT's stored bits (BM_RLD, SLP_TYP); SCI_EN is always set.
    pm1_cnt: u16,
    gpe0_en: u16,
    /// How many times bit 31 of the timer had changed when last looked at.
    tmr_msb_changes: u64,
    sci_level: bool,
    clock: Clock,
    timer: Timer,
    sci: SharedIrqLine,
    power: PowerControl,
}

impl AcpiPm {
    /// The PM block reading `clock`, arming `timer` for timer-overflow events, driving
    /// the level-triggered `sci` line and posting power-off requests on `power`.
    pub fn new(clock: Clock, timer: Timer, sci: SharedIrqLine, power: PowerControl) -> Self {
        let tmr_msb_changes = Self::msb_changes(&clock);
        AcpiPm {
            pm1_sts: 0,
            pm1_en: 0,
            pm1_cnt: 0,
            gpe0_en: 0,
            tmr_msb_changes,
            sci_level: false,
            clock,
            timer,
            sci,
            power,
        }
    }

    /// The PM timer's 32-bit count now.
    pub fn timer_value(&self) -> u32 {
        ns_to_ticks(self.clock.now_ns(), PM_TIMER_HZ) as u32
    }

    /// Presses the power button: sets PWRBTN_STS (an SCI if OSPM enabled it), the way
    /// a host asks an ACPI guest to shut down.
    pub fn press_power_button(&mut self) {
        self.pm1_sts |= PWRBTN;
        self.update();
    }

    /// The board calls this when the PM timer's timer is due: latches TMR_STS and
    /// updates the SCI.
    pub fn on_timer(&mut self) {
        self.update();
    }

    fn msb_changes(clock: &Clock) -> u64 {
        ns_to_ticks(clock.now_ns(), PM_TIMER_HZ) >> TMR_STS_BIT
    }

    /// Latches TMR_STS, drives the SCI and re-arms the overflow timer.
    fn update(&mut self) {
        let changes = Self::msb_changes(&self.clock);
        if changes > self.tmr_msb_changes {
            self.pm1_sts |= TMR;
        }
        self.tmr_msb_changes = changes;
        let level = self.pm1_sts & self.pm1_en != 0;
        if level != self.sci_level {
            self.sci_level = level;
            self.sci.set_level(level);
        }
        if self.pm1_en & TMR != 0 {
            let next_change = (changes + 1) << TMR_STS_BIT;
            self.timer.arm_at((next_change as u128 * 1_000_000_000).div_ceil(PM_TIMER_HZ as u128) as u64);
        } else {
            self.timer.cancel();
        }
    }

    fn read_byte(&self, offset: u64, tmr: u32) -> u8 {
        let byte = |word: u16, offset: u64| (word >> (8 * (offset & 1))) as u8;
        match offset {
            PM1_STS..=0x01 => byte(self.pm1_sts, offset),
            PM1_EN..=0x03 => byte(self.pm1_en, offset),
            PM1_CNT..=0x05 => byte(self.pm1_cnt | SCI_EN, offset),
            PM_TMR..=0x0b => (tmr >> (8 * (offset - PM_TMR))) as u8,
            GPE0_STS..=0x21 => 0,
            GPE0_EN..=0x23 => byte(self.gpe0_en, offset),
            _ => 0,
        }
    }

    fn write_byte(&mut self, offset: u64, value: u8) {
        let shift = 8 * (offset & 1);
        let bits = (value as u16) << shift;
        let keep = !(0xffu16 << shift);
        match offset {
            PM1_STS..=0x01 => self.pm1_sts &= !(bits & PM1_STS_BITS),
            PM1_EN..=0x03 => self.pm1_en = (self.pm1_en & keep) | (bits & PM1_EN_BITS),
            PM1_CNT..=0x05 => self.write_pm1_cnt(bits, keep),
            PM_TMR..=0x0b => log::debug!("ACPI PM: write {value:#04x} to the read-only PM timer ignored"),
            GPE0_STS..=0x21 => {}
            GPE0_EN..=0x23 => self.gpe0_en = (self.gpe0_en & keep) | bits,
            _ => log::debug!("ACPI PM: write {value:#04x} to reserved offset {offset:#x} ignored"),
        }
    }

    fn write_pm1_cnt(&mut self, bits: u16, keep: u16) {
        let stored = BM_RLD | 7 << SLP_TYP_SHIFT;
        self.pm1_cnt = (self.pm1_cnt & keep) | (bits & stored);
        if bits & GBL_RLS != 0 {
            log::debug!("ACPI PM: GBL_RLS written; no firmware shares the global lock");
        }
        if bits & SLP_EN != 0 {
            let slp_typ = self.pm1_cnt >> SLP_TYP_SHIFT & 7;
            if slp_typ == SLP_TYP_S5 {
                log::info!("ACPI PM: S5 requested, powering off");
                self.power.request(PowerEvent::PowerOff);
            } else {
                log::warn!("ACPI PM: sleep type {slp_typ} requested; only S5 (type {SLP_TYP_S5}) is supported");
            }
        }
    }
}

impl std::fmt::Debug for AcpiPm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcpiPm")
            .field("pm1_sts", &self.pm1_sts)
            .field("pm1_en", &self.pm1_en)
            .field("pm1_cnt", &self.pm1_cnt)
            .field("gpe0_en", &self.gpe0_en)
            .finish_non_exhaustive()
    }
}

impl BusDevice for AcpiPm {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        self.update();
        let tmr = self.timer_value();
        (0..size.min(8) as u64).map(|i| (self.read_byte(offset.saturating_add(i), tmr) as u64) << (8 * i)).sum()
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        self.update();
        for i in 0..size.min(8) as u64 {
            self.write_byte(offset.saturating_add(i), (value >> (8 * i)) as u8);
        }
        self.update();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rx86_core::irq::RecordingIrqLine;
    use std::sync::Arc;

    struct Rig {
        pm: AcpiPm,
        clock: Clock,
        timer: Timer,
        sci: Arc<RecordingIrqLine>,
        power: PowerControl,
    }

    fn rig() -> Rig {
        let clock = Clock::new_virtual();
        let timer = Timer::standalone("acpi-pm");
        let sci = RecordingIrqLine::new();
        let power = PowerControl::new();
        let pm = AcpiPm::new(clock.clone(), timer.clone(), sci.clone(), power.clone());
        Rig { pm, clock, timer, sci, power }
    }

    #[test]
    fn pm_timer_counts_at_3_579545_mhz() {
        let mut r = rig();
        assert_eq!(r.pm.read(PM_TMR, 4), 0);
        r.clock.advance_to(1_000_000_000);
        assert_eq!(r.pm.read(PM_TMR, 4), 3_579_545);
        assert_eq!(r.pm.read(PM_TMR + 1, 1), 3_579_545 >> 8 & 0xff);
        r.pm.write(PM_TMR, 4, 0);
        assert_eq!(r.pm.read(PM_TMR, 4), 3_579_545, "the timer is read only");
    }

    #[test]
    fn sci_en_is_set_and_sleep_s5_powers_off() {
        let mut r = rig();
        assert_eq!(r.pm.read(PM1_CNT, 2) & 1, 1);
        r.pm.write(PM1_CNT, 2, 0);
        assert_eq!(r.pm.read(PM1_CNT, 2), 1, "SCI_EN sticks: ACPI is always enabled");
        r.pm.write(PM1_CNT, 2, (3 << 10) as u64 | 1);
        assert_eq!(r.pm.read(PM1_CNT, 2), (3 << 10) | 1, "SLP_TYP is stored");
        r.pm.write(PM1_CNT, 2, (3 << 10 | 1 << 13 | 1) as u64);
        assert_eq!(r.power.take(), None, "S3 is not supported");
        assert_eq!(r.pm.read(PM1_CNT, 2) & (1 << 13), 0, "SLP_EN reads 0");
        r.pm.write(PM1_CNT, 2, (1 << 13 | 1) as u64);
        assert_eq!(r.power.take(), Some(PowerEvent::PowerOff));
    }

    #[test]
    fn timer_overflow_sets_tmr_sts_and_raises_sci_when_enabled() {
        let mut r = rig();
        let half_wrap_ns = ((1u128 << 31) * 1_000_000_000).div_ceil(PM_TIMER_HZ as u128) as u64;
        r.pm.write(PM1_EN, 2, 1);
        assert_eq!(r.timer.deadline(), Some(half_wrap_ns));
        r.clock.advance_to(half_wrap_ns - 1);
        r.pm.on_timer();
        assert_eq!(r.pm.read(PM1_STS, 2) & 1, 0);
        assert!(!r.sci.level());
        r.clock.advance_to(half_wrap_ns);
        r.pm.on_timer();
        assert_eq!(r.pm.read(PM_TMR, 4), 1 << 31);
        assert_eq!(r.pm.read(PM1_STS, 2) & 1, 1, "bit 31 changed: TMR_STS");
        assert!(r.sci.level(), "SCI is a level while TMR_STS & TMR_EN");
        r.pm.write(PM1_STS, 2, 0xfffe);
        assert!(r.sci.level(), "writing 0 to TMR_STS leaves it set");
        r.pm.write(PM1_STS, 2, 1);
        assert_eq!(r.pm.read(PM1_STS, 2), 0, "write 1 to clear");
        assert!(!r.sci.level());
        assert_eq!(r.timer.deadline(), Some(2 * half_wrap_ns), "next change of bit 31 (the wrap)");
    }

    #[test]
    fn tmr_sts_latches_without_enable_and_raises_sci_on_enable() {
        let mut r = rig();
        r.clock.advance_to(700_000_000_000);
        assert_eq!(r.pm.read(PM1_STS, 2), 1);
        assert!(!r.sci.level());
        r.pm.write(PM1_EN, 2, 1);
        assert!(r.sci.level());
        assert_eq!(r.sci.rising_edges(), 1);
    }

    #[test]
    fn power_button_and_enable_bits() {
        let mut r = rig();
        r.pm.write(PM1_EN, 4 /* spills into nothing else */, 0xffff);
        assert_eq!(r.pm.read(PM1_EN, 2) as u16, PM1_EN_BITS);
        r.pm.write(PM1_EN, 2, PWRBTN as u64);
        r.pm.press_power_button();
        assert_eq!(r.pm.read(PM1_STS, 2) as u16, PWRBTN);
        assert!(r.sci.level());
        r.pm.write(PM1_STS + 1, 1, 0x01);
        assert!(!r.sci.level());
        r.pm.write(GPE0_EN, 2, 0xbeef);
        assert_eq!(r.pm.read(GPE0_STS, 4), 0xbeef_0000, "no GPE sources: status 0, enables stored");
        assert_eq!(r.pm.read(0x10, 4), 0, "reserved space reads 0");
    }

    #[test]
    fn fuzz_register_writes_never_panic() {
        let mut r = rig();
        let mut state = 0xdead_beef_cafe_f00du64;
        for _ in 0..50_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let offset = state >> 8 & 0x3f;
            let size = 1 << (state >> 20 & 3);
            match state % 4 {
                0 => r.pm.write(offset, size, state >> 24),
                1 => {
                    r.pm.read(offset, size);
                }
                2 => r.clock.advance_to(r.clock.now_ns() + (state >> 30)),
                _ => r.pm.on_timer(),
            }
        }
        r.power.take();
    }
}
