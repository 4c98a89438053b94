//! The `stdio` backend: standard output, and standard input read on a helper thread. When
//! standard input is a terminal it is put in raw mode for the run, as QEMU does: keys reach
//! the guest one by one and unechoed (the guest echoes), and, unless `signals` is kept,
//! Ctrl-C goes to the guest too. The terminal's settings come back when the run ends.

use super::InputSink;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Standard output, flushed at every write.
pub struct Stdout;

/// A status line is on standard error's last line (see `crate::progress`).
static STATUS_SHOWN: AtomicBool = AtomicBool::new(false);
/// What went to standard output last ended a line (or nothing went yet).
static AT_LINE_START: AtomicBool = AtomicBool::new(true);

/// Notes whether a status line is now on the terminal's last line.
pub fn set_status_shown(shown: bool) {
    STATUS_SHOWN.store(shown, Ordering::SeqCst);
}

/// True when standard output's last line is complete, so a status line drawn below it
/// hides nothing.
pub fn output_at_line_start() -> bool {
    AT_LINE_START.load(Ordering::SeqCst)
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if STATUS_SHOWN.swap(false, Ordering::SeqCst) {
            // Output takes the status line's place; the status comes back below it.
            let _ = std::io::stderr().write_all(b"\r\x1b[K");
        }
        let mut out = std::io::stdout().lock();
        out.write_all(buf)?;
        out.flush()?;
        if let Some(&last) = buf.last() {
            AT_LINE_START.store(last == b'\n', Ordering::SeqCst);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}

/// The terminal's settings before raw mode, to put back at the end of the run.
static SAVED: Mutex<Option<libc::termios>> = Mutex::new(None);

/// Starts reading standard input into `sink`; with a terminal on standard input, puts it in
/// raw mode (keeping Ctrl-C, Ctrl-Z and Ctrl-\ as signals when `signals`). True when the
/// terminal is now raw.
pub fn open(sink: InputSink, signals: bool) -> std::io::Result<bool> {
    let raw = make_raw(signals)?;
    std::thread::Builder::new().name("rx86-stdin".into()).spawn(move || {
        let mut buf = [0u8; 256];
        let mut stdin = std::io::stdin();
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => sink.deliver(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    })?;
    Ok(raw)
}

/// Puts a terminal on standard input in raw mode (QEMU's settings: no echo, no line editing,
/// 8-bit characters, output processing kept so `\n` still starts a line); false when standard
/// input is no terminal.
fn make_raw(signals: bool) -> std::io::Result<bool> {
    // SAFETY: isatty only inspects the descriptor.
    if unsafe { libc::isatty(libc::STDIN_FILENO) } != 1 {
        return Ok(false);
    }
    // SAFETY: termios is plain data; tcgetattr fills it for a valid descriptor.
    let mut tty: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `tty` is a valid termios to fill.
    if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut tty) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let saved = tty;
    tty.c_iflag &= !(libc::IGNBRK | libc::BRKINT | libc::PARMRK | libc::ISTRIP | libc::INLCR | libc::IGNCR);
    tty.c_iflag &= !(libc::ICRNL | libc::IXON);
    tty.c_oflag |= libc::OPOST;
    tty.c_lflag &= !(libc::ECHO | libc::ECHONL | libc::ICANON | libc::IEXTEN);
    if !signals {
        tty.c_lflag &= !libc::ISIG;
    }
    tty.c_cflag &= !(libc::CSIZE | libc::PARENB);
    tty.c_cflag |= libc::CS8;
    tty.c_cc[libc::VMIN] = 1;
    tty.c_cc[libc::VTIME] = 0;
    // SAFETY: `tty` is a complete termios taken from this terminal.
    if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &tty) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    SAVED.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(saved);
    Ok(true)
}

/// Puts the terminal back as it was before raw mode (at the end of the run; harmless when
/// it was never changed).
pub fn restore() {
    if let Some(saved) = SAVED.lock().unwrap_or_else(|e| e.into_inner()).take() {
        // SAFETY: `saved` came from tcgetattr on the same descriptor.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &saved) };
    }
}
