//! The progress line: while a run goes on, what it is doing, refreshed in place on standard
//! error when that is a terminal (off with `--quiet`), and in the window's title: guest time,
//! the speed over the last interval, and disk and serial traffic.
//!
//! It shares the terminal with the serial console on standard output: console output first
//! erases the status line (`chardev::terminal`), and the line is drawn again only below a
//! complete console line, so it never hides a prompt the guest left unfinished.

use crate::machine::Machine;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How often the status is brought up to date.
const INTERVAL: Duration = Duration::from_millis(500);

/// One sample of the machine's counters.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    guest_ns: u64,
    instructions: Option<u64>,
}

/// Builds the status text from the machine at most every [`INTERVAL`].
pub struct Progress {
    last: Sample,
}

impl Progress {
    /// Starts sampling `machine` now.
    pub fn new(machine: &Machine) -> Self {
        Progress { last: sample(machine) }
    }

    /// The status when [`INTERVAL`] has passed since the last one, else `None`.
    pub fn update(&mut self, machine: &Machine) -> Option<String> {
        let now = Instant::now();
        if now.duration_since(self.last.at) < INTERVAL {
            return None;
        }
        let next = sample(machine);
        let (read, written, serial) = machine.pc().activity();
        let text = status_text(&self.last, &next, read, written, serial);
        self.last = next;
        Some(text)
    }
}

fn sample(machine: &Machine) -> Sample {
    Sample { at: Instant::now(), guest_ns: machine.clock().now_ns(), instructions: machine.instructions_retired() }
}

/// `guest 12.345 s | 35.2 MIPS | disk r 1.5 MiB w 0 B | serial 1234 B`.
fn status_text(before: &Sample, after: &Sample, read: u64, written: u64, serial: u64) -> String {
    let host = after.at.duration_since(before.at).as_secs_f64().max(1e-9);
    let speed = match (before.instructions, after.instructions) {
        (Some(a), Some(b)) => format!("{:.1} MIPS", b.saturating_sub(a) as f64 / host / 1e6),
        // Engines that do not count instructions: guest time against host time.
        _ => format!("{:.2}x real time", after.guest_ns.saturating_sub(before.guest_ns) as f64 / 1e9 / host),
    };
    format!(
        "guest {:.3} s | {speed} | disk r {} w {} | serial {}",
        after.guest_ns as f64 / 1e9,
        bytes(read),
        bytes(written),
        bytes(serial)
    )
}

/// A byte count in B, KiB, MiB or GiB.
fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.1} MiB", n as f64 / 1_048_576.0),
        _ => format!("{:.2} GiB", n as f64 / 1_073_741_824.0),
    }
}

/// The status line on standard error: drawn in place, and erased at the end of the run.
pub struct StatusLine {
    progress: Progress,
}

impl StatusLine {
    /// A status line for `machine`, or `None` when standard error is no terminal or `quiet`.
    pub fn for_terminal(machine: &Machine, quiet: bool) -> Option<Self> {
        (!quiet && std::io::stderr().is_terminal()).then(|| StatusLine { progress: Progress::new(machine) })
    }

    /// Redraws the line when its interval has passed and the console's last line is complete.
    pub fn poll(&mut self, machine: &Machine) {
        let Some(text) = self.progress.update(machine) else { return };
        if !crate::chardev::output_at_line_start() {
            return;
        }
        let mut err = std::io::stderr().lock();
        // A full line would wrap and leave copies behind: cut it to the terminal's width.
        let width = terminal_width().unwrap_or(80).saturating_sub(1);
        let line: String = format!("rx86: {text}").chars().take(width).collect();
        let _ = write!(err, "\r\x1b[K{line}");
        let _ = err.flush();
        crate::chardev::set_status_shown(true);
    }

    /// Erases the line (at the end of the run, before the final messages).
    pub fn clear(&self) {
        let _ = std::io::stderr().write_all(b"\r\x1b[K");
        crate::chardev::set_status_shown(false);
    }
}

/// Columns of the terminal on standard error.
fn terminal_width() -> Option<usize> {
    // SAFETY: winsize is plain data that TIOCGWINSZ fills for a terminal descriptor.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: the ioctl writes one winsize into `size`.
    let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_time_speed_and_traffic() {
        let t0 = Instant::now();
        let before = Sample { at: t0, guest_ns: 1_000_000_000, instructions: Some(0) };
        let after = Sample { at: t0 + Duration::from_secs(2), guest_ns: 1_500_000_000, instructions: Some(70_000_000) };
        assert_eq!(
            status_text(&before, &after, 1536, 3 << 20, 100),
            "guest 1.500 s | 35.0 MIPS | disk r 1.5 KiB w 3.0 MiB | serial 100 B"
        );
        let kvm = Sample { instructions: None, ..after };
        assert!(status_text(&Sample { instructions: None, ..before }, &kvm, 0, 0, 0).contains("0.25x real time"));
        assert_eq!(bytes(5 << 30), "5.00 GiB");
    }
}
