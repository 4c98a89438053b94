//! Debug ports: POST codes, the 0xE9 console and isa-debug-exit.
//!
//! - [`PostCode`]: the port-0x80 POST diagnostic latch firmware writes progress codes to.
//! - [`DebugConsole`]: the Bochs/QEMU "port E9 hack": every byte written is printed.
//! - [`DebugExit`]: QEMU's `isa-debug-exit` device (default base 0x501, 2 bytes wide): a
//!   write of `V` (of any width, at any offset of the device) ends the emulator with
//!   exit status `(V << 1) | 1`, as QEMU's `debug_exit_write` does.

use rx86_core::bus::{size_mask, BusDevice};
use rx86_core::platform::{PowerControl, PowerEvent};
use std::io::Write;

/// What a read of the POST code port returns (QEMU's port 0x80 reads as all-ones).
const POST_CODE_READ_VALUE: u64 = 0xff;

/// The POST diagnostic port (0x80): logs and remembers every code written.
#[derive(Debug, Default)]
pub struct PostCode {
    last: Option<u8>,
}

impl PostCode {
    /// A latch that has seen no code yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last code written, if any.
    pub fn last(&self) -> Option<u8> {
        self.last
    }
}

impl BusDevice for PostCode {
    fn read(&mut self, _offset: u64, size: u8) -> u64 {
        POST_CODE_READ_VALUE & size_mask(size)
    }

    fn write(&mut self, _offset: u64, _size: u8, value: u64) {
        let code = value as u8;
        log::debug!("POST code {code:#04x}");
        self.last = Some(code);
    }
}

/// What a read of the debug console port returns: its own port number, so guests can
/// detect the console (Bochs and QEMU both answer 0xE9).
const DEBUG_CONSOLE_READBACK: u64 = 0xe9;

/// The 0xE9 debug console: every byte written goes to the injected sink.
pub struct DebugConsole {
    sink: Box<dyn Write + Send>,
    failed: bool,
}

impl DebugConsole {
    /// A console that writes to `sink` (flushed after every newline).
    pub fn new(sink: Box<dyn Write + Send>) -> Self {
        DebugConsole { sink, failed: false }
    }

    fn emit(&mut self, byte: u8) -> std::io::Result<()> {
        self.sink.write_all(&[byte])?;
        if byte == b'\n' {
            self.sink.flush()?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for DebugConsole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DebugConsole").field("failed", &self.failed).finish_non_exhaustive()
    }
}

impl BusDevice for DebugConsole {
    fn read(&mut self, _offset: u64, size: u8) -> u64 {
        DEBUG_CONSOLE_READBACK & size_mask(size)
    }

    fn write(&mut self, _offset: u64, _size: u8, value: u64) {
        if let Err(e) = self.emit(value as u8) {
            if !self.failed {
                log::warn!("debug console output failed, further errors not reported: {e}");
                self.failed = true;
            }
        }
    }
}

/// QEMU's `isa-debug-exit`: a write asks the machine to exit with `(V << 1) | 1`.
#[derive(Debug, Clone)]
pub struct DebugExit {
    power: PowerControl,
}

impl DebugExit {
    /// A device that posts its exit request on `power`.
    pub fn new(power: PowerControl) -> Self {
        DebugExit { power }
    }
}

impl BusDevice for DebugExit {
    /// Reads return 0, as QEMU's `debug_exit_read`.
    fn read(&mut self, _offset: u64, _size: u8) -> u64 {
        0
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        let status = ((value & size_mask(size)) << 1 | 1) as i32;
        log::info!("isa-debug-exit: guest wrote {value:#x} (size {size}, offset {offset}), exit status {status}");
        self.power.request(PowerEvent::DebugExit(status));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A sink the test can inspect after the console took ownership of its clone.
    #[derive(Clone, Default)]
    struct SharedSink(Arc<Mutex<Vec<u8>>>);

    impl Write for SharedSink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn post_code_remembers_last_code_and_reads_all_ones() {
        let mut p = PostCode::new();
        assert_eq!(p.last(), None);
        p.write(0, 1, 0x12);
        p.write(0, 1, 0x55);
        assert_eq!(p.last(), Some(0x55));
        assert_eq!(p.read(0, 1), 0xff);
    }

    #[test]
    fn debug_console_writes_bytes_and_identifies_itself() {
        let sink = SharedSink::default();
        let mut c = DebugConsole::new(Box::new(sink.clone()));
        for &b in b"hi\n" {
            c.write(0, 1, b as u64);
        }
        assert_eq!(&*sink.0.lock().unwrap(), b"hi\n");
        assert_eq!(c.read(0, 1), 0xe9);
    }

    #[test]
    fn debug_exit_requests_shifted_status() {
        let power = PowerControl::new();
        let mut d = DebugExit::new(power.clone());
        d.write(0, 2, 0x10);
        assert_eq!(power.take(), Some(PowerEvent::DebugExit(0x21)));
        d.write(1, 1, 0x1ff);
        assert_eq!(power.take(), Some(PowerEvent::DebugExit(0xff << 1 | 1)));
        d.write(0, 4, 0x8000_0000);
        assert_eq!(power.take(), Some(PowerEvent::DebugExit(1)), "bit 31 shifts out of the 32-bit status");
        assert_eq!(d.read(0, 2), 0);
    }
}
