//! `--rtc base=utc|localtime|DATE` (QEMU's `-rtc`): the date and time the guest's RTC shows
//! at power-on. The host's clock is read once, when the machine is built; from then on the
//! RTC follows the machine clock, so a run on the virtual clock is repeatable given its start
//! (and exactly repeatable with a fixed DATE).

use rx86_devices::rtc::RtcDateTime;

/// Where the RTC starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RtcBase {
    /// The host's time in UTC (QEMU's default).
    #[default]
    Utc,
    /// The host's local time (what Windows guests expect).
    LocalTime,
    /// A fixed date and time, as Unix seconds.
    At(i64),
}

impl RtcBase {
    /// The RTC's date and time at power-on, in seconds since 1970-01-01 00:00:00 as the
    /// guest will read them; `utc` and `localtime` read the host's clock now.
    pub fn start_seconds(self) -> i64 {
        let now = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
        };
        match self {
            RtcBase::Utc => now(),
            RtcBase::LocalTime => {
                let utc = now();
                utc + local_offset_seconds(utc)
            }
            RtcBase::At(secs) => secs,
        }
    }
}

/// The host time zone's offset from UTC at `utc` (seconds east of Greenwich), from the C
/// library (which honours `TZ`); 0 if it cannot say. (rx86 runs on 64-bit Linux, where
/// `time_t` and `tm_gmtoff` are `i64`.)
fn local_offset_seconds(utc: i64) -> i64 {
    let t: libc::time_t = utc;
    // SAFETY: an all-zero `tm` is a valid value of this plain C struct (the pointer field
    // `tm_zone` is null), and localtime_r only writes into it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is the reentrant form and
    // keeps no pointer to them.
    let result = unsafe { libc::localtime_r(&t, &mut tm) };
    if result.is_null() {
        0
    } else {
        tm.tm_gmtoff
    }
}

/// Parses `--rtc`: `base=utc|localtime|YYYY-MM-DD[THH:MM:SS]`, with QEMU's `clock=vm` and
/// `driftfix=none` accepted (what rx86's RTC does: it follows the machine clock).
pub fn parse_rtc(spec: &str) -> Result<RtcBase, String> {
    let mut base = RtcBase::default();
    for part in spec.split(',') {
        match part.split_once('=') {
            Some(("base", "utc")) => base = RtcBase::Utc,
            Some(("base", "localtime")) => base = RtcBase::LocalTime,
            Some(("base", date)) => base = RtcBase::At(parse_date(date)?),
            Some(("clock", "vm")) | Some(("driftfix", "none")) => {}
            Some(("clock", _)) => {
                return Err(format!("{part}: the RTC follows the machine clock; pick that with --clock virtual|host"))
            }
            Some(("driftfix", _)) => return Err(format!("{part}: rx86 has driftfix=none only")),
            _ => return Err(format!("'{part}': use base=utc, base=localtime or base=YYYY-MM-DDTHH:MM:SS")),
        }
    }
    Ok(base)
}

/// Parses `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS` into Unix seconds (a date the RTC can hold:
/// years 1970-2099).
fn parse_date(text: &str) -> Result<i64, String> {
    let bad = || format!("'{text}' is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS, e.g. 2024-01-01T00:00:00)");
    let (date, time) = text.split_once('T').unwrap_or((text, "00:00:00"));
    let fields = |s: &str, sep: char| -> Result<Vec<u16>, String> {
        let parts: Vec<&str> = s.split(sep).collect();
        if parts.len() != 3 || parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
            return Err(bad());
        }
        parts.iter().map(|p| p.parse().map_err(|_| bad())).collect()
    };
    let (d, t) = (fields(date, '-')?, fields(time, ':')?);
    let narrow = |v: u16| u8::try_from(v).map_err(|_| bad());
    let when = RtcDateTime {
        year: d[0],
        month: narrow(d[1])?,
        day: narrow(d[2])?,
        hour: narrow(t[0])?,
        minute: narrow(t[1])?,
        second: narrow(t[2])?,
    };
    let secs = when.to_unix_seconds();
    // Out-of-range fields are clamped by the conversion: a round trip shows them.
    if RtcDateTime::from_unix_seconds(secs) != when || !(1970..=2099).contains(&when.year) {
        return Err(bad());
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases() {
        assert_eq!(parse_rtc("base=utc"), Ok(RtcBase::Utc));
        assert_eq!(parse_rtc("base=localtime,clock=vm,driftfix=none"), Ok(RtcBase::LocalTime));
        assert_eq!(parse_rtc("base=2024-01-01T00:00:00"), Ok(RtcBase::At(1_704_067_200)));
        assert_eq!(parse_rtc("base=2024-02-29"), Ok(RtcBase::At(1_709_164_800)));
        assert_eq!(RtcBase::At(42).start_seconds(), 42);
    }

    #[test]
    fn bad_specs_are_refused() {
        for bad in [
            "base=2023-02-29",
            "base=2024-13-01",
            "base=2024-01-01T24:00:00",
            "base=2024-1-1T1:2",
            "base=1969-12-31",
            "base=tomorrow",
            "clock=host",
            "driftfix=slew",
            "utc",
        ] {
            assert!(parse_rtc(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_host_clock_is_read_for_utc() {
        let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let start = RtcBase::Utc.start_seconds();
        assert!((before..=before + 5).contains(&start), "{before} vs {start}");
    }
}
