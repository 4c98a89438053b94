//! The `pty` backend: a new pseudo-terminal whose name is printed at start, for a terminal
//! program (`screen /dev/pts/N`, `minicom -p /dev/pts/N`) to attach to. rx86 keeps the
//! terminal side open in raw mode, so output the guest writes before anyone attaches
//! waits there (up to the kernel's buffer; the rest is dropped, never stalling the guest).

use super::{InputSink, SharedOutput};
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

/// Output to the pty's controlling side; bytes the terminal side has no room for are dropped.
struct PtyOutput {
    master: File,
    /// The terminal side, held open so the pty keeps its raw settings and buffered output.
    _terminal: OwnedFd,
}

impl Write for PtyOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.master.write_all(buf) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => log::warn!("pty: {e}"),
            Ok(()) => {}
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn check(ret: libc::c_int) -> std::io::Result<libc::c_int> {
    if ret < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Opens a pseudo-terminal: returns its output and the terminal side's path; what the user
/// types there goes to `sink`.
pub fn open(sink: InputSink) -> std::io::Result<(SharedOutput, PathBuf)> {
    // SAFETY: posix_openpt returns a new descriptor or -1; it takes no pointers.
    let fd = check(unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK) })?;
    // SAFETY: `fd` was just opened and is owned by nothing else.
    let master = unsafe { File::from_raw_fd(fd) };
    // SAFETY: grantpt and unlockpt act on the open pty master descriptor.
    check(unsafe { libc::grantpt(master.as_raw_fd()) })?;
    // SAFETY: as above.
    check(unsafe { libc::unlockpt(master.as_raw_fd()) })?;
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: `name` is a writable buffer of the length passed.
    let err = unsafe { libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) };
    if err != 0 {
        return Err(std::io::Error::from_raw_os_error(err));
    }
    // SAFETY: ptsname_r wrote a NUL-terminated string into `name`.
    let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
    // SAFETY: `path` is NUL-terminated; open returns a new descriptor or -1.
    let terminal = check(unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_NOCTTY) })?;
    // SAFETY: `terminal` was just opened and is owned by nothing else.
    let terminal = unsafe { OwnedFd::from_raw_fd(terminal) };
    make_raw(&terminal)?;
    let path = PathBuf::from(path.to_string_lossy().into_owned());
    let mut reader = master.try_clone()?;
    std::thread::Builder::new().name("rx86-chardev-pty".into()).spawn(move || {
        let mut buf = [0u8; 1024];
        loop {
            let mut poll = libc::pollfd { fd: reader.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: `poll` is one valid pollfd.
            if unsafe { libc::poll(&mut poll, 1, -1) } < 0 {
                continue;
            }
            match reader.read(&mut buf) {
                Ok(0) => std::thread::sleep(std::time::Duration::from_millis(50)),
                Ok(n) => sink.deliver(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                // EIO while no terminal program is attached: look again shortly.
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
            }
        }
    })?;
    Ok((SharedOutput::new(PtyOutput { master, _terminal: terminal }), path))
}

/// Raw mode for the terminal side: bytes pass unchanged both ways, nothing is echoed.
fn make_raw(terminal: &OwnedFd) -> std::io::Result<()> {
    // SAFETY: termios is plain data, filled by tcgetattr.
    let mut tty: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `tty` is a valid termios for a terminal descriptor.
    check(unsafe { libc::tcgetattr(terminal.as_raw_fd(), &mut tty) })?;
    // SAFETY: `tty` is a valid termios.
    unsafe { libc::cfmakeraw(&mut tty) };
    // SAFETY: `tty` is a complete termios.
    check(unsafe { libc::tcsetattr(terminal.as_raw_fd(), libc::TCSANOW, &tty) })?;
    Ok(())
}
