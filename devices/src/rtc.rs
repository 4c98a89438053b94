//! Motorola MC146818 CMOS RAM and real-time clock.
//!
//! Follows the MC146818A datasheet: ports at offset 0 (index; bit 7 masks NMI on the
//! PC) and offset 1 (data); 128 bytes of which 0x00-0x0D are the clock (seconds,
//! alarms, date, registers A-D) and the rest battery-backed RAM with the PC/AT layout
//! (IBM AT technical reference; memory-size bytes as QEMU and SeaBIOS use them).
//!
//! Time is not ticked: the chip keeps the Unix time of one instant of the injected
//! [`Clock`] and derives the calendar, the update-in-progress window (UIP is set for
//! the 244 us before each once-a-second update) and the periodic, alarm and
//! update-ended flags from elapsed time when they are read. While an enabled interrupt
//! is outstanding-to-be the chip arms its injected [`Timer`]; the board calls
//! [`Rtc::on_timer`] when it is due. IRQ8 is driven as a level equal to register C's
//! IRQF bit: high when a flag and its enable are both set, low once C is read.
//!
//! Guests set the time the datasheet way (SET in register B, write the registers,
//! clear SET); the update phase is kept. Putting the divider in reset (register A
//! DV = 11x) stops the clock; leaving reset schedules the first update 500 ms later.
//! Daylight-saving (DSE) and the square-wave output are not modelled.

use rx86_core::bus::BusDevice;
use rx86_core::irq::SharedIrqLine;
use rx86_core::time::{Clock, Timer};

/// Register index of seconds.
const SECONDS: usize = 0x00;
/// Register index of the seconds alarm.
const SECONDS_ALARM: usize = 0x01;
/// Register index of minutes.
const MINUTES: usize = 0x02;
/// Register index of the minutes alarm.
const MINUTES_ALARM: usize = 0x03;
/// Register index of hours.
const HOURS: usize = 0x04;
/// Register index of the hours alarm.
const HOURS_ALARM: usize = 0x05;
/// Register index of the day of the week (1 = Sunday).
const DAY_OF_WEEK: usize = 0x06;
/// Register index of the day of the month.
const DAY_OF_MONTH: usize = 0x07;
/// Register index of the month.
const MONTH: usize = 0x08;
/// Register index of the year within the century.
const YEAR: usize = 0x09;
/// Register A: UIP, divider and rate select.
const REG_A: usize = 0x0a;
/// Register B: SET, interrupt enables and data mode.
const REG_B: usize = 0x0b;
/// Register C: interrupt flags (read only, cleared by reading).
const REG_C: usize = 0x0c;
/// Register D: valid RAM and time (read only).
const REG_D: usize = 0x0d;
/// CMOS byte of floppy drive types (drive A high nibble, B low nibble).
const CMOS_FLOPPY_TYPES: usize = 0x10;
/// CMOS byte of hard disk types (disk 0 high nibble, 1 low; 0xF = see 0x19/0x1A).
const CMOS_DISK_TYPES: usize = 0x12;
/// CMOS equipment byte.
const CMOS_EQUIPMENT: usize = 0x14;
/// CMOS base memory in KiB (low byte; high byte at 0x16).
const CMOS_BASE_MEMORY: usize = 0x15;
/// CMOS extended memory above 1 MiB in KiB (low byte; high at 0x18).
const CMOS_EXTENDED_MEMORY: usize = 0x17;
/// CMOS extended disk type of disk 0 (disk 1 at 0x1A).
const CMOS_DISK_EXTENDED_TYPE: usize = 0x19;
/// CMOS user-defined geometry of disk 0 (9 bytes; disk 1 at 0x24).
const CMOS_DISK_GEOMETRY: usize = 0x1b;
/// First byte covered by the checksum.
const CHECKSUM_FIRST: usize = 0x10;
/// Last byte covered by the checksum.
const CHECKSUM_LAST: usize = 0x2d;
/// The checksum, big-endian (high byte here, low at 0x2F).
const CMOS_CHECKSUM: usize = 0x2e;
/// CMOS actual extended memory in KiB as POST found it (low byte; high at 0x31).
const CMOS_EXTENDED_MEMORY_POST: usize = 0x30;
/// The century, in the clock's data mode.
const CENTURY: usize = 0x32;
/// CMOS memory above 16 MiB in 64 KiB units (low byte; high at 0x35).
const CMOS_MEMORY_ABOVE_16M: usize = 0x34;
/// CMOS memory above 4 GiB in 64 KiB units (three bytes, 0x5B-0x5D).
const CMOS_MEMORY_ABOVE_4G: usize = 0x5b;
/// The disk type that says "geometry in the CMOS user-defined block".
const DISK_TYPE_USER_DEFINED: u8 = 47;

/// Register A bit 7 UIP: an update is in progress or imminent.
const REG_A_UIP: u8 = 1 << 7;
/// Register A bits 6:4 DV: divider chain control.
const REG_A_DV_MASK: u8 = 0x70;
/// DV values up to this one run the clock (010 is the 32.768 kHz time base).
const REG_A_DV_RUNNING_MAX: u8 = 0x20;
/// DV = 11x holds the divider chain in reset.
const REG_A_DV_RESET: u8 = 0x60;
/// Register A bits 3:0 RS: periodic interrupt rate select.
const REG_A_RS_MASK: u8 = 0x0f;
/// Register B bit 7 SET: updates inhibited while the time is being set.
const REG_B_SET: u8 = 1 << 7;
/// Register B bit 6 PIE: periodic interrupt enable.
const REG_B_PIE: u8 = 1 << 6;
/// Register B bit 5 AIE: alarm interrupt enable.
const REG_B_AIE: u8 = 1 << 5;
/// Register B bit 4 UIE: update-ended interrupt enable.
const REG_B_UIE: u8 = 1 << 4;
/// Register B bit 2 DM: binary (1) or BCD (0) data.
const REG_B_DM_BINARY: u8 = 1 << 2;
/// Register B bit 1 24/12: 24-hour (1) or 12-hour (0) mode.
const REG_B_24H: u8 = 1 << 1;
/// Register B bit 0 DSE: daylight saving enable.
const REG_B_DSE: u8 = 1 << 0;
/// Register C bit 7 IRQF: an enabled flag is set (the IRQ pin is asserted).
const REG_C_IRQF: u8 = 1 << 7;
/// Register C bit 6 PF: periodic interrupt flag.
const REG_C_PF: u8 = 1 << 6;
/// Register C bit 5 AF: alarm flag.
const REG_C_AF: u8 = 1 << 5;
/// Register C bit 4 UF: update-ended flag.
const REG_C_UF: u8 = 1 << 4;
/// Register D bit 7 VRT: valid RAM and time (the battery is good).
const REG_D_VRT: u8 = 1 << 7;
/// 12-hour mode: bit 7 of the hours byte marks PM.
const HOURS_PM: u8 = 1 << 7;
/// Alarm bytes with bits 7:6 set match any value ("don't care").
const ALARM_DONT_CARE: u8 = 0xc0;
/// Index port bit 7: NMI disabled (the PC's NMI mask sits on the RTC index port).
const INDEX_NMI_DISABLE: u8 = 1 << 7;

/// Register A at power-on: 32.768 kHz time base, 1024 Hz periodic rate.
const REG_A_POWER_ON: u8 = 0x26;
/// Register B at power-on: 24-hour, BCD, nothing enabled.
const REG_B_POWER_ON: u8 = REG_B_24H;
/// The time base of the divider chain, in Hz.
const TIME_BASE_HZ: i128 = 32_768;
/// Nanoseconds per second.
const NS_PER_SEC: i128 = 1_000_000_000;
/// How long UIP is set before each update (tBUC).
const UIP_LEAD_NS: i128 = 244_000;
/// After the divider leaves reset, the first update comes this much later.
const FIRST_UPDATE_AFTER_RESET_NS: i128 = 500_000_000;
/// Seconds after which every alarm pattern has matched at least once.
const SECONDS_PER_DAY: i64 = 86_400;

/// A calendar date and time of day (UTC or local, as the board decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcDateTime {
    /// Full year, e.g. 2024.
    pub year: u16,
    /// Month, 1-12.
    pub month: u8,
    /// Day of the month, 1-31.
    pub day: u8,
    /// Hour, 0-23.
    pub hour: u8,
    /// Minute, 0-59.
    pub minute: u8,
    /// Second, 0-59.
    pub second: u8,
}

impl RtcDateTime {
    /// The calendar time `secs` seconds after 1970-01-01 00:00:00.
    pub fn from_unix_seconds(secs: i64) -> Self {
        let days = secs.div_euclid(86_400);
        let time = secs.rem_euclid(86_400);
        // Civil-from-days over 400-year eras (March-based years).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + (month <= 2) as i64;
        RtcDateTime {
            year: year.clamp(0, 9999) as u16,
            month: month as u8,
            day: day as u8,
            hour: (time / 3600) as u8,
            minute: (time / 60 % 60) as u8,
            second: (time % 60) as u8,
        }
    }

    /// Seconds since 1970-01-01 00:00:00 (fields out of range are clamped first).
    pub fn to_unix_seconds(&self) -> i64 {
        let month = self.month.clamp(1, 12) as i64;
        let year = self.year as i64 - (month <= 2) as i64;
        let day = self.day.clamp(1, days_in_month(self.year, self.month.clamp(1, 12))) as i64;
        let era = year.div_euclid(400);
        let yoe = year.rem_euclid(400);
        let mp = if month > 2 { month - 3 } else { month + 9 };
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * 86_400 + self.hour.min(23) as i64 * 3600 + self.minute.min(59) as i64 * 60 + self.second.min(59) as i64
    }

    /// Day of the week, 1 = Sunday ... 7 = Saturday (the RTC's numbering).
    fn day_of_week(&self) -> u8 {
        // 1970-01-01 was a Thursday (5).
        ((self.to_unix_seconds().div_euclid(86_400) + 4).rem_euclid(7) + 1) as u8
    }
}

impl std::fmt::Display for RtcDateTime {
    /// ISO 8601: `2024-01-01T00:00:00`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let RtcDateTime { year, month, day, hour, minute, second } = self;
        write!(f, "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}")
    }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        _ => 31,
    }
}

/// The MC146818 RTC with its 128 bytes of CMOS RAM.
pub struct Rtc {
    cmos: [u8; 128],
    index: u8,
    nmi_masked: bool,
    /// Unix time at the clock instant `base_ns`; updates happen at `base_ns + k s`.
    base_secs: i64,
    /// The clock instant (ns, may precede 0) the divider phase is measured from.
    base_ns: i128,
    /// The clock instant up to which flags have been computed.
    checked_ns: u64,
    irq_level: bool,
    clock: Clock,
    timer: Timer,
    irq8: SharedIrqLine,
}

impl Rtc {
    /// An RTC showing `start` at the current instant of `clock`, arming `timer` for
    /// enabled interrupts and driving `irq8`.
    pub fn new(clock: Clock, timer: Timer, irq8: SharedIrqLine, start: RtcDateTime) -> Self {
        let now = clock.now_ns();
        let mut cmos = [0u8; 128];
        cmos[REG_A] = REG_A_POWER_ON;
        cmos[REG_B] = REG_B_POWER_ON;
        cmos[REG_D] = REG_D_VRT;
        let mut rtc = Rtc {
            cmos,
            index: 0,
            nmi_masked: false,
            base_secs: start.to_unix_seconds(),
            base_ns: now as i128,
            checked_ns: now,
            irq_level: false,
            clock,
            timer,
            irq8,
        };
        rtc.update_checksum();
        rtc
    }

    /// True when the guest last wrote the index port with bit 7 set (NMI disabled).
    pub fn nmi_masked(&self) -> bool {
        self.nmi_masked
    }

    /// The date and time the clock shows now.
    pub fn now(&self) -> RtcDateTime {
        if self.running() {
            RtcDateTime::from_unix_seconds(self.seconds_at(self.clock.now_ns()))
        } else {
            self.parse_time_registers()
        }
    }

    /// A CMOS byte (0x00-0x7F), as stored (clock registers as last refreshed).
    pub fn byte(&self, index: u8) -> u8 {
        self.cmos[(index & 0x7f) as usize]
    }

    /// Sets a RAM byte (0x0E-0x7F) and refreshes the checksum; the clock registers
    /// 0x00-0x0D and out-of-range indices are refused with a warning.
    pub fn set_byte(&mut self, index: u8, value: u8) {
        if !(REG_D as u8 + 1..=0x7f).contains(&index) {
            log::warn!("RTC: board setter refused for CMOS index {index:#x}");
            return;
        }
        self.cmos[index as usize] = value;
        self.update_checksum();
    }

    /// Base memory in KiB (0x15/0x16; 640 on a PC).
    pub fn set_base_memory_kib(&mut self, kib: u16) {
        self.set_word(CMOS_BASE_MEMORY, kib);
    }

    /// Extended memory above 1 MiB in KiB, capped at 0xFFFF (0x17/0x18 and the POST
    /// copy at 0x30/0x31).
    pub fn set_extended_memory_kib(&mut self, kib: u64) {
        let kib = kib.min(0xffff) as u16;
        self.set_word(CMOS_EXTENDED_MEMORY, kib);
        self.set_word(CMOS_EXTENDED_MEMORY_POST, kib);
    }

    /// Memory between 16 MiB and 4 GiB, in bytes (stored in 64 KiB units at
    /// 0x34/0x35, capped at 0xFFFF units).
    pub fn set_memory_above_16m(&mut self, bytes: u64) {
        self.set_word(CMOS_MEMORY_ABOVE_16M, (bytes >> 16).min(0xffff) as u16);
    }

    /// Memory above 4 GiB, in bytes (stored in 64 KiB units at 0x5B-0x5D, as SeaBIOS
    /// reads it).
    pub fn set_memory_above_4g(&mut self, bytes: u64) {
        let units = (bytes >> 16).min(0xff_ffff);
        for i in 0..3 {
            self.cmos[CMOS_MEMORY_ABOVE_4G + i] = (units >> (8 * i)) as u8;
        }
    }

    /// Fills every memory-size byte from the RAM below and above 4 GiB, the way
    /// QEMU's PC does (640 KiB base memory).
    pub fn set_memory_layout(&mut self, ram_below_4g: u64, ram_above_4g: u64) {
        self.set_base_memory_kib(640);
        self.set_extended_memory_kib((ram_below_4g / 1024).saturating_sub(1024));
        self.set_memory_above_16m(ram_below_4g.saturating_sub(16 << 20));
        self.set_memory_above_4g(ram_above_4g);
    }

    /// The equipment byte (0x14).
    pub fn set_equipment(&mut self, value: u8) {
        self.set_byte(CMOS_EQUIPMENT as u8, value);
    }

    /// Floppy drive types for A: and B: (0 none, 1 360K, 2 1.2M, 3 720K, 4 1.44M,
    /// 5 2.88M) at 0x10.
    pub fn set_floppy_types(&mut self, drive_a: u8, drive_b: u8) {
        if drive_a > 0xf || drive_b > 0xf {
            log::warn!("RTC: floppy types {drive_a}/{drive_b} do not fit a nibble; masked");
        }
        self.set_byte(CMOS_FLOPPY_TYPES as u8, (drive_a & 0xf) << 4 | (drive_b & 0xf));
    }

    /// Declares hard disk `drive` (0 or 1) with a user-defined (type 47) geometry:
    /// type nibble 0xF at 0x12, 47 at 0x19/0x1A, geometry at 0x1B/0x24.
    pub fn set_hard_disk_geometry(&mut self, drive: usize, cylinders: u16, heads: u8, sectors: u8) {
        if drive > 1 {
            log::warn!("RTC: the CMOS describes disks 0 and 1 only, not {drive}");
            return;
        }
        self.cmos[CMOS_DISK_TYPES] |= if drive == 0 { 0xf0 } else { 0x0f };
        self.cmos[CMOS_DISK_EXTENDED_TYPE + drive] = DISK_TYPE_USER_DEFINED;
        let [cyl_lo, cyl_hi] = cylinders.to_le_bytes();
        let control = 0xc0 | if heads > 8 { 0x08 } else { 0 };
        let geometry = [cyl_lo, cyl_hi, heads, 0xff, 0xff, control, cyl_lo, cyl_hi, sectors];
        let at = CMOS_DISK_GEOMETRY + 9 * drive;
        self.cmos[at..at + 9].copy_from_slice(&geometry);
        self.update_checksum();
    }

    /// The board calls this when the RTC's timer is due: latches the flags that came
    /// due, drives IRQ8 and re-arms.
    pub fn on_timer(&mut self) {
        self.catch_up();
        self.update_irq();
    }

    fn set_word(&mut self, index: usize, value: u16) {
        self.cmos[index..index + 2].copy_from_slice(&value.to_le_bytes());
        self.update_checksum();
    }

    fn update_checksum(&mut self) {
        let sum: u16 = self.cmos[CHECKSUM_FIRST..=CHECKSUM_LAST].iter().map(|&b| b as u16).sum();
        self.cmos[CMOS_CHECKSUM..CMOS_CHECKSUM + 2].copy_from_slice(&sum.to_be_bytes());
    }

    fn divider_running(&self) -> bool {
        self.cmos[REG_A] & REG_A_DV_MASK <= REG_A_DV_RUNNING_MAX
    }

    /// The time advances (divider running and SET clear).
    fn running(&self) -> bool {
        self.divider_running() && self.cmos[REG_B] & REG_B_SET == 0
    }

    fn elapsed_ns(&self, now: u64) -> i128 {
        now as i128 - self.base_ns
    }

    /// Updates since the base instant, at clock instant `now`.
    fn updates_at(&self, now: u64) -> i64 {
        self.elapsed_ns(now).div_euclid(NS_PER_SEC) as i64
    }

    fn seconds_at(&self, now: u64) -> i64 {
        self.base_secs + self.updates_at(now)
    }

    /// Periodic interrupt period in 32.768 kHz clocks (RS 1 and 2 repeat RS 8 and 9).
    fn periodic_clocks(&self) -> Option<i128> {
        match self.cmos[REG_A] & REG_A_RS_MASK {
            0 => None,
            rs @ 1..=2 => Some(1 << (rs + 6)),
            rs => Some(1 << (rs - 1)),
        }
    }

    fn periods_at(&self, now: u64, clocks: i128) -> i128 {
        (self.elapsed_ns(now) * TIME_BASE_HZ).div_euclid(NS_PER_SEC * clocks)
    }

    fn update_in_progress(&self) -> bool {
        let now = self.clock.now_ns();
        self.running() && self.elapsed_ns(now).rem_euclid(NS_PER_SEC) >= NS_PER_SEC - UIP_LEAD_NS
    }

    fn binary(&self) -> bool {
        self.cmos[REG_B] & REG_B_DM_BINARY != 0
    }

    fn encode(&self, value: u8) -> u8 {
        if self.binary() {
            value
        } else {
            ((value / 10) << 4) | (value % 10)
        }
    }

    fn decode(&self, value: u8) -> u8 {
        if self.binary() {
            value
        } else {
            (value >> 4) * 10 + (value & 0xf)
        }
    }

    fn encode_hour(&self, hour: u8) -> u8 {
        if self.cmos[REG_B] & REG_B_24H != 0 {
            return self.encode(hour);
        }
        let twelve = if hour.is_multiple_of(12) { 12 } else { hour % 12 };
        self.encode(twelve) | if hour >= 12 { HOURS_PM } else { 0 }
    }

    fn decode_hour(&self, value: u8) -> u8 {
        if self.cmos[REG_B] & REG_B_24H != 0 {
            return self.decode(value);
        }
        self.decode(value & !HOURS_PM) % 12 + if value & HOURS_PM != 0 { 12 } else { 0 }
    }

    /// Writes the calendar time `time` into the clock registers and the century.
    fn store_time_registers(&mut self, time: &RtcDateTime) {
        self.cmos[SECONDS] = self.encode(time.second);
        self.cmos[MINUTES] = self.encode(time.minute);
        self.cmos[HOURS] = self.encode_hour(time.hour);
        self.cmos[DAY_OF_WEEK] = self.encode(time.day_of_week());
        self.cmos[DAY_OF_MONTH] = self.encode(time.day);
        self.cmos[MONTH] = self.encode(time.month);
        self.cmos[YEAR] = self.encode((time.year % 100) as u8);
        self.cmos[CENTURY] = self.encode((time.year / 100) as u8);
    }

    /// The calendar time the clock registers hold (out-of-range fields clamped).
    fn parse_time_registers(&self) -> RtcDateTime {
        let year = self.decode(self.cmos[CENTURY]).min(99) as u16 * 100 + self.decode(self.cmos[YEAR]).min(99) as u16;
        let time = RtcDateTime {
            year,
            month: self.decode(self.cmos[MONTH]),
            day: self.decode(self.cmos[DAY_OF_MONTH]),
            hour: self.decode_hour(self.cmos[HOURS]),
            minute: self.decode(self.cmos[MINUTES]),
            second: self.decode(self.cmos[SECONDS]),
        };
        let valid = (1..=12).contains(&time.month)
            && (1..=days_in_month(time.year, time.month)).contains(&time.day)
            && time.hour < 24
            && time.minute < 60
            && time.second < 60;
        if !valid {
            log::warn!("RTC: guest set an invalid time {time:?}; clamping");
        }
        time
    }

    /// Refreshes the clock registers from elapsed time (while the clock runs).
    fn refresh_time_registers(&mut self) {
        if self.running() {
            let time = RtcDateTime::from_unix_seconds(self.seconds_at(self.clock.now_ns()));
            self.store_time_registers(&time);
        }
    }

    /// Restarts the time from the clock registers, keeping the update phase.
    fn restart_from_registers(&mut self) {
        let now = self.clock.now_ns() as i128;
        self.base_secs = self.parse_time_registers().to_unix_seconds();
        self.base_ns = now - (now - self.base_ns).rem_euclid(NS_PER_SEC);
    }

    fn alarm_matches(&self, secs: i64) -> bool {
        let time = RtcDateTime::from_unix_seconds(secs);
        let matches = |alarm: u8, current: u8| alarm & ALARM_DONT_CARE == ALARM_DONT_CARE || alarm == current;
        matches(self.cmos[SECONDS_ALARM], self.encode(time.second))
            && matches(self.cmos[MINUTES_ALARM], self.encode(time.minute))
            && matches(self.cmos[HOURS_ALARM], self.encode_hour(time.hour))
    }

    /// Sets the flags of every periodic, update and alarm event since the last check.
    fn catch_up(&mut self) {
        let now = self.clock.now_ns();
        let then = self.checked_ns;
        self.checked_ns = now;
        if now <= then || !self.divider_running() {
            return;
        }
        if let Some(clocks) = self.periodic_clocks() {
            if self.periods_at(now, clocks) > self.periods_at(then, clocks) {
                self.cmos[REG_C] |= REG_C_PF;
            }
        }
        if !self.running() {
            return;
        }
        let (first, last) = (self.updates_at(then) + 1, self.updates_at(now));
        if last >= first {
            self.cmos[REG_C] |= REG_C_UF;
            let from = first.max(last - SECONDS_PER_DAY + 1);
            if self.cmos[REG_C] & REG_C_AF == 0
                && (from..=last).any(|update| self.alarm_matches(self.base_secs + update))
            {
                self.cmos[REG_C] |= REG_C_AF;
            }
        }
    }

    /// Recomputes IRQF, drives IRQ8 and arms the timer for the next enabled event
    /// whose flag is not already set.
    fn update_irq(&mut self) {
        let flags = self.cmos[REG_C];
        let enables = self.cmos[REG_B];
        let pending = (flags & REG_C_PF != 0 && enables & REG_B_PIE != 0)
            || (flags & REG_C_AF != 0 && enables & REG_B_AIE != 0)
            || (flags & REG_C_UF != 0 && enables & REG_B_UIE != 0);
        if pending {
            self.cmos[REG_C] |= REG_C_IRQF;
        }
        if pending != self.irq_level {
            self.irq_level = pending;
            self.irq8.set_level(pending);
        }

        let now = self.clock.now_ns();
        let mut deadline: Option<i128> = None;
        let mut consider = |at: i128| deadline = Some(deadline.map_or(at, |d| d.min(at)));
        if self.divider_running() && enables & REG_B_PIE != 0 && flags & REG_C_PF == 0 {
            if let Some(clocks) = self.periodic_clocks() {
                let next = self.periods_at(now, clocks) + 1;
                consider(self.base_ns - (-next * clocks * NS_PER_SEC).div_euclid(TIME_BASE_HZ));
            }
        }
        let wants_update =
            (enables & REG_B_UIE != 0 && flags & REG_C_UF == 0) || (enables & REG_B_AIE != 0 && flags & REG_C_AF == 0);
        if self.running() && wants_update {
            consider(self.base_ns + (self.updates_at(now) as i128 + 1) * NS_PER_SEC);
        }
        match deadline {
            Some(at) => self.timer.arm_at(at.clamp(now as i128, u64::MAX as i128) as u64),
            None => self.timer.cancel(),
        }
    }

    fn read_register(&mut self, index: usize) -> u8 {
        match index {
            SECONDS..=YEAR | CENTURY => {
                self.refresh_time_registers();
                self.cmos[index]
            }
            REG_A => {
                let uip = if self.update_in_progress() { REG_A_UIP } else { 0 };
                self.cmos[REG_A] & !REG_A_UIP | uip
            }
            REG_C => {
                self.catch_up();
                let value = self.cmos[REG_C];
                self.cmos[REG_C] = 0;
                self.update_irq();
                value
            }
            _ => self.cmos[index],
        }
    }

    fn write_register(&mut self, index: usize, value: u8) {
        match index {
            SECONDS..=YEAR | CENTURY => {
                let running = self.running();
                self.refresh_time_registers();
                self.cmos[index] = value;
                if matches!(index, SECONDS_ALARM | MINUTES_ALARM | HOURS_ALARM) {
                    return;
                }
                if index == DAY_OF_WEEK {
                    log::debug!(
                        "RTC: day of week is derived from the date; write of {value} kept until the next update"
                    );
                } else if running {
                    self.restart_from_registers();
                }
            }
            REG_A => {
                self.catch_up();
                let was_reset = self.cmos[REG_A] & REG_A_DV_RESET == REG_A_DV_RESET;
                let was_running = self.running();
                self.refresh_time_registers();
                self.cmos[REG_A] = value & !REG_A_UIP;
                if !self.divider_running() && value & REG_A_DV_RESET != REG_A_DV_RESET {
                    log::warn!("RTC: divider setting {:#04x} stops the clock", value & REG_A_DV_MASK);
                }
                if self.running() && !was_running {
                    self.restart_from_registers();
                    if was_reset {
                        let now = self.clock.now_ns() as i128;
                        self.base_ns = now + FIRST_UPDATE_AFTER_RESET_NS - NS_PER_SEC;
                    }
                }
                self.checked_ns = self.clock.now_ns();
                self.update_irq();
            }
            REG_B => {
                self.catch_up();
                let was_running = self.running();
                self.refresh_time_registers();
                let mut value = value;
                if value & REG_B_SET != 0 {
                    // The datasheet: setting SET clears UIE.
                    value &= !REG_B_UIE;
                }
                if value & REG_B_DSE != 0 {
                    log::debug!("RTC: daylight saving (DSE) is not modelled");
                }
                let old = self.cmos[REG_B];
                self.cmos[REG_B] = value;
                if !was_running {
                    // The registers were written in the old data mode.
                    let format = REG_B_DM_BINARY | REG_B_24H;
                    if (old ^ value) & format != 0 {
                        self.cmos[REG_B] = old;
                        let time = self.parse_time_registers();
                        self.cmos[REG_B] = value;
                        self.store_time_registers(&time);
                    }
                    if self.running() {
                        self.restart_from_registers();
                    }
                }
                self.checked_ns = self.clock.now_ns();
                self.update_irq();
            }
            REG_C | REG_D => log::debug!("RTC: write {value:#04x} to read-only register {index:#x} ignored"),
            _ => self.cmos[index] = value,
        }
    }
}

impl std::fmt::Debug for Rtc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rtc")
            .field("index", &self.index)
            .field("nmi_masked", &self.nmi_masked)
            .field("now", &self.now())
            .finish_non_exhaustive()
    }
}

impl BusDevice for Rtc {
    fn read(&mut self, offset: u64, _size: u8) -> u64 {
        match offset {
            0 => 0xff,
            _ => self.read_register(self.index as usize) as u64,
        }
    }

    fn write(&mut self, offset: u64, _size: u8, value: u64) {
        let value = value as u8;
        match offset {
            0 => {
                self.index = value & !INDEX_NMI_DISABLE;
                self.nmi_masked = value & INDEX_NMI_DISABLE != 0;
            }
            _ => self.write_register(self.index as usize, value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rx86_core::irq::RecordingIrqLine;
    use std::sync::Arc;

    const START: RtcDateTime = RtcDateTime { year: 2024, month: 2, day: 29, hour: 23, minute: 59, second: 58 };

    struct Rig {
        rtc: Rtc,
        clock: Clock,
        timer: Timer,
        irq: Arc<RecordingIrqLine>,
    }

    fn rig() -> Rig {
        let clock = Clock::new_virtual();
        let timer = Timer::standalone("rtc");
        let irq = RecordingIrqLine::new();
        let rtc = Rtc::new(clock.clone(), timer.clone(), irq.clone(), START);
        Rig { rtc, clock, timer, irq }
    }

    impl Rig {
        fn get(&mut self, index: u8) -> u8 {
            self.rtc.write(0, 1, index as u64);
            self.rtc.read(1, 1) as u8
        }

        fn set(&mut self, index: u8, value: u8) {
            self.rtc.write(0, 1, index as u64);
            self.rtc.write(1, 1, value as u64);
        }

        /// Moves the clock to `ns`, firing the timer whenever it is due.
        fn run_to(&mut self, ns: u64) {
            while let Some(deadline) = self.timer.deadline().filter(|&d| d <= ns) {
                self.clock.advance_to(deadline);
                self.timer.cancel();
                self.rtc.on_timer();
            }
            self.clock.advance_to(ns);
        }
    }

    #[test]
    fn unix_conversions_round_trip() {
        assert_eq!(
            RtcDateTime::from_unix_seconds(0),
            RtcDateTime { year: 1970, month: 1, day: 1, hour: 0, minute: 0, second: 0 }
        );
        // 2000-03-01 00:00:00 UTC is 951868800.
        assert_eq!(
            RtcDateTime::from_unix_seconds(951_868_800),
            RtcDateTime { year: 2000, month: 3, day: 1, hour: 0, minute: 0, second: 0 }
        );
        assert_eq!(START.to_unix_seconds(), 1_709_251_198);
        assert_eq!(RtcDateTime::from_unix_seconds(START.to_unix_seconds()), START);
        assert_eq!(START.day_of_week(), 5, "2024-02-29 was a Thursday");
    }

    #[test]
    fn reads_bcd_time_and_rolls_over_leap_day() {
        let mut r = rig();
        assert_eq!(r.get(0x00), 0x58);
        assert_eq!(r.get(0x04), 0x23);
        assert_eq!(r.get(0x07), 0x29);
        assert_eq!(r.get(0x08), 0x02);
        assert_eq!(r.get(0x09), 0x24);
        assert_eq!(r.get(0x32), 0x20, "century byte");
        assert_eq!(r.get(0x06), 5);
        r.clock.advance_to(2_000_000_000);
        assert_eq!((r.get(0x07), r.get(0x08), r.get(0x04), r.get(0x00)), (0x01, 0x03, 0x00, 0x00));
        assert_eq!(r.get(0x06), 6, "Friday");
    }

    #[test]
    fn binary_and_12_hour_modes() {
        let mut r = rig();
        r.set(0x0b, 0x04); // binary, 12-hour
        assert_eq!(r.get(0x00), 58);
        assert_eq!(r.get(0x04), 0x80 | 11, "23h is 11 PM");
        r.clock.advance_to(2_000_000_000);
        assert_eq!(r.get(0x04), 12, "midnight is 12 AM");
    }

    #[test]
    fn guest_sets_time_with_set_bit() {
        let mut r = rig();
        r.clock.advance_to(300_000_000);
        r.set(0x0b, 0x82); // SET, 24h, BCD
        r.set(0x00, 0x30);
        r.set(0x02, 0x15);
        r.set(0x04, 0x10);
        r.set(0x07, 0x04);
        r.set(0x08, 0x07);
        r.set(0x09, 0x99);
        r.set(0x32, 0x19);
        r.clock.advance_to(5_000_000_000);
        assert_eq!(r.get(0x00), 0x30, "no updates while SET");
        r.set(0x0b, 0x02);
        assert_eq!(r.rtc.now(), RtcDateTime { year: 1999, month: 7, day: 4, hour: 10, minute: 15, second: 30 });
        r.clock.advance_to(5_999_999_999);
        assert_eq!(r.get(0x00), 0x30, "update phase kept: next update on the old second boundary");
        r.clock.advance_to(6_000_000_000);
        assert_eq!(r.get(0x00), 0x31);
        r.set(0x02, 0x45); // a write without SET also takes
        assert_eq!(r.get(0x02), 0x45);
        assert_eq!(r.get(0x00), 0x31);
    }

    #[test]
    fn uip_is_set_for_244us_before_each_update() {
        let mut r = rig();
        r.clock.advance_to(1_000_000_000 - 244_001);
        assert_eq!(r.get(0x0a), 0x26);
        r.clock.advance_to(1_000_000_000 - 244_000);
        assert_eq!(r.get(0x0a), 0xa6);
        r.clock.advance_to(1_000_000_000);
        assert_eq!(r.get(0x0a), 0x26);
        r.set(0x0a, 0xa6);
        assert_eq!(r.get(0x0a), 0x26, "UIP is read only");
    }

    #[test]
    fn periodic_interrupt_at_1024_hz_and_register_c_clears() {
        let mut r = rig();
        r.set(0x0b, 0x42); // PIE
        let period = 1_000_000_000 / 1024;
        assert_eq!(r.timer.deadline(), Some(976_563), "976562.5 ns rounds up");
        r.run_to(period as u64 + 10);
        assert!(r.irq.level());
        assert_eq!(r.timer.deadline(), None, "no timer while PF waits to be read");
        assert_eq!(r.get(0x0c), 0xc0, "IRQF | PF");
        assert!(!r.irq.level());
        assert_eq!(r.get(0x0c), 0);
        r.run_to(10 * period as u64);
        assert_eq!(r.irq.rising_edges(), 2, "the flag stays set until C is read: one edge");
        r.set(0x0a, 0x2f); // 2 Hz
        r.get(0x0c);
        r.run_to(1_000_000_000);
        assert_eq!(r.irq.rising_edges(), 3);
        assert_eq!(r.get(0x0c), 0xd0, "IRQF | PF, and UF: the 1 s update happened too (not enabled)");
    }

    #[test]
    fn periodic_flag_sets_without_enable_but_no_irq() {
        let mut r = rig();
        r.clock.advance_to(2_000_000);
        assert_eq!(r.get(0x0c), 0x40, "PF without PIE: no IRQF");
        assert!(r.irq.events().is_empty());
    }

    #[test]
    fn update_ended_interrupt_once_a_second() {
        let mut r = rig();
        r.set(0x0a, 0x20); // no periodic rate
        r.set(0x0b, 0x12); // UIE
        assert_eq!(r.timer.deadline(), Some(1_000_000_000));
        r.run_to(1_000_000_000);
        assert!(r.irq.level());
        assert_eq!(r.get(0x0c), 0x90);
        r.run_to(3_500_000_000);
        assert_eq!(r.get(0x0c), 0xb0, "UF, and AF: the zeroed alarm bytes matched midnight at 2 s");
        assert_eq!(r.irq.rising_edges(), 2);
        r.set(0x0b, 0x92);
        assert_eq!(r.get(0x0b), 0x82, "setting SET clears UIE");
    }

    #[test]
    fn alarm_interrupt_with_dont_care_hours() {
        let mut r = rig();
        r.set(0x0a, 0x20);
        r.set(0x01, 0x05);
        r.set(0x03, 0x00);
        r.set(0x05, 0xc0); // any hour
        r.set(0x0b, 0x22); // AIE
        r.run_to(6_000_000_000); // 00:00:04
        assert!(!r.irq.level());
        r.run_to(7_000_000_000); // 00:00:05
        assert!(r.irq.level());
        assert_eq!(r.get(0x0c), 0xb0, "IRQF | AF | UF");
        r.clock.advance_to(7_000_000_000 + 3600 * 1_000_000_000);
        assert_eq!(r.get(0x0c) & 0x20, 0x20, "the alarm matched again an hour later (found lazily)");
    }

    #[test]
    fn divider_reset_stops_clock_and_first_update_comes_half_a_second_later() {
        let mut r = rig();
        r.clock.advance_to(100_000_000);
        r.set(0x0a, 0x70);
        r.clock.advance_to(10_000_000_000);
        assert_eq!(r.get(0x00), 0x58);
        r.set(0x0a, 0x26);
        r.clock.advance_to(10_499_999_999);
        assert_eq!(r.get(0x00), 0x58);
        r.clock.advance_to(10_500_000_000);
        assert_eq!(r.get(0x00), 0x59);
    }

    #[test]
    fn index_port_records_nmi_mask_and_cmos_ram() {
        let mut r = rig();
        r.rtc.write(0, 1, 0x8f);
        assert!(r.rtc.nmi_masked());
        r.rtc.write(1, 1, 0x0a);
        assert_eq!(r.rtc.byte(0x0f), 0x0a, "bit 7 of the index is not part of the address");
        r.rtc.write(0, 1, 0x0f);
        assert!(!r.rtc.nmi_masked());
        assert_eq!(r.get(0x0d), 0x80, "VRT");
        r.set(0x0d, 0);
        assert_eq!(r.get(0x0d), 0x80);
        r.set(0x7f, 0x5a);
        assert_eq!(r.get(0x7f), 0x5a);
        assert_eq!(r.rtc.read(0, 1), 0xff);
    }

    #[test]
    fn memory_bytes_and_checksum() {
        let mut r = rig();
        r.rtc.set_memory_layout(0xc000_0000, 0x4000_0000);
        assert_eq!((r.get(0x15), r.get(0x16)), (0x80, 0x02), "640 KiB");
        assert_eq!((r.get(0x17), r.get(0x18)), (0xff, 0xff), "capped at 65535 KiB");
        assert_eq!((r.get(0x30), r.get(0x31)), (0xff, 0xff));
        let above_16m = (0xc000_0000u64 - 0x100_0000) >> 16;
        assert_eq!((r.get(0x34), r.get(0x35)), (above_16m as u8, (above_16m >> 8) as u8));
        assert_eq!((r.get(0x5b), r.get(0x5c), r.get(0x5d)), (0x00, 0x40, 0x00), "1 GiB = 0x4000 units");
        r.rtc.set_memory_layout(32 << 20, 0);
        assert_eq!((r.get(0x17), r.get(0x18)), (0x00, 0x7c), "31 MiB above 1 MiB");
        r.rtc.set_equipment(0x2f);
        r.rtc.set_floppy_types(4, 0);
        r.rtc.set_hard_disk_geometry(0, 1024, 16, 63);
        assert_eq!(r.get(0x12), 0xf0);
        assert_eq!(r.get(0x19), 47);
        assert_eq!(r.get(0x1d), 16);
        assert_eq!(r.get(0x22), 0x04, "landing zone high byte = cylinders");
        assert_eq!(r.get(0x23), 63);
        let sum: u16 = (0x10..=0x2d).map(|i| r.rtc.byte(i) as u16).sum();
        assert_eq!((r.get(0x2e), r.get(0x2f)), ((sum >> 8) as u8, sum as u8));
        assert_eq!(sum, 0x40 + 0xf0 + 0x2f + 0x80 + 0x02 + 0x7c + 47 + 4 + 16 + 0xff * 2 + 0xc8 + 4 + 63);
        r.rtc.set_byte(0x05, 1);
        assert_eq!(r.rtc.byte(0x05), 0, "the board cannot write clock registers");
    }

    #[test]
    fn fuzz_register_writes_never_panic() {
        let mut r = rig();
        let mut state = 0x0bad_5eed_1234_5678u64;
        for _ in 0..100_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let value = state >> 40;
            match state % 5 {
                0 => r.rtc.write(0, 1, value),
                1 => r.rtc.write(1, 1, value),
                2 => {
                    r.rtc.read(state >> 8 & 1, 1);
                }
                3 => r.clock.advance_to(r.clock.now_ns() + (value & 0xff_ffff)),
                _ => r.rtc.on_timer(),
            }
        }
        r.rtc.now();
    }
}
