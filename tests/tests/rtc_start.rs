//! The guest's RTC starts at the host's date and time (QEMU's default), or where `--rtc
//! base=...` puts it. The Multiboot test kernel reads the RTC early and prints what it read
//! (`rtc: ok YYYY-MM-DD HH:MM:SS ...`).

use rx86_devices::rtc::RtcDateTime;
use rx86_tests::guests::kernel_report::KernelReport;
use rx86_tests::guests::multiboot_test_kernel;
use rx86_tests::rx86_bin::{rx86_binary, stderr_of, stdout_of};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// How far the guest's reading may be from the host's clock.
const TOLERANCE_SECS: i64 = 60;

fn host_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Runs the kernel with `args` (and `env`), returns the RTC time it read as Unix seconds and
/// the `--stats` line.
fn guest_rtc(args: &[&str], env: &[(&str, &str)]) -> (i64, String) {
    let kernel = multiboot_test_kernel().expect("build the multiboot test kernel");
    let out = Command::new(rx86_binary())
        .args(["run", "-m", "256M", "--stats", "--kernel"])
        .arg(&kernel)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run rx86");
    let (serial, err) = (stdout_of(&out), stderr_of(&out));
    assert!(out.status.success(), "{serial}\n{err}");
    let report = KernelReport::parse(&serial);
    let details = report.details("rtc").unwrap_or_else(|e| panic!("{e}\n{serial}"));
    let stamp: Vec<u16> = details
        .split_whitespace()
        .take(2)
        .flat_map(|s| s.split(['-', ':']))
        .map(|n| n.parse().unwrap_or_else(|_| panic!("not a date: {details}")))
        .collect();
    let [year, month, day, hour, minute, second] = stamp[..] else { panic!("not a date: {details}") };
    let narrow = |v: u16| u8::try_from(v).unwrap();
    let read = RtcDateTime {
        year,
        month: narrow(month),
        day: narrow(day),
        hour: narrow(hour),
        minute: narrow(minute),
        second: narrow(second),
    };
    let stats = err.lines().find(|l| l.starts_with("rx86 stats:")).unwrap_or_default().to_string();
    (read.to_unix_seconds(), stats)
}

#[test]
fn by_default_the_rtc_starts_at_the_hosts_time() {
    let before = host_now();
    let (read, stats) = guest_rtc(&[], &[]);
    let after = host_now();
    assert!(
        (before - TOLERANCE_SECS..=after + TOLERANCE_SECS).contains(&read),
        "guest RTC {} vs host {}..{}",
        RtcDateTime::from_unix_seconds(read),
        RtcDateTime::from_unix_seconds(before),
        RtcDateTime::from_unix_seconds(after)
    );
    assert!(stats.contains("RTC started at "), "--stats shows the start: {stats}");
}

#[test]
fn an_explicit_base_is_honoured() {
    let (read, stats) = guest_rtc(&["--rtc", "base=2031-05-17T08:09:10"], &[]);
    assert_eq!(RtcDateTime::from_unix_seconds(read).to_string(), "2031-05-17T08:09:10");
    assert!(stats.ends_with("RTC started at 2031-05-17T08:09:10"), "{stats}");
}

#[test]
fn base_localtime_follows_the_host_time_zone() {
    // A POSIX TZ string needs no time zone database: local time is UTC + 5:30 here.
    let before = host_now();
    let (read, _) = guest_rtc(&["-rtc", "base=localtime"], &[("TZ", "XYZ-05:30")]);
    let offset = 5 * 3600 + 30 * 60;
    assert!(
        (before + offset - TOLERANCE_SECS..=host_now() + offset + TOLERANCE_SECS).contains(&read),
        "guest RTC {} is not host UTC + 5:30",
        RtcDateTime::from_unix_seconds(read)
    );
}
