//! QEMU's `mon:` multiplexer: one backend shared by a serial port and the monitor. Input
//! goes to one of them at a time; `Ctrl-A` starts a command: `c` switches between the
//! console and the monitor, `x` ends rx86 (as a power-off does), `h` lists the keys, and
//! `Ctrl-A Ctrl-A` sends one `Ctrl-A`. Output from both goes to the backend as it comes.

use super::{CharBackend, Chardev, ChardevError, InputSignal, InputSink, Opened, Peer, SharedOutput};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, OnceLock};

/// The escape key: Ctrl-A.
pub const ESCAPE: u8 = 0x01;

/// What `Ctrl-A h` prints.
pub const HELP: &str = "\r\n\
C-a h    print this help\r\n\
C-a x    exit rx86 (the run ends as at power-off)\r\n\
C-a c    switch between console and monitor\r\n\
C-a C-a  sends C-a\r\n";

/// Which front end typed bytes go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Focus {
    Serial,
    Monitor,
}

/// The demultiplexer's state and where its outputs go.
struct Demux {
    focus: Focus,
    escaped: bool,
    serial: Sender<Vec<u8>>,
    monitor: Sender<Vec<u8>>,
    /// Counts switches to the monitor (the monitor greets on each).
    monitor_focus: Arc<AtomicU64>,
    quit: Arc<AtomicBool>,
    /// The backend's output, for the help text (set once the backend is open).
    output: Arc<OnceLock<SharedOutput>>,
}

impl Demux {
    /// Splits `bytes` between the front ends, acting on escapes.
    fn feed(&mut self, bytes: &[u8]) {
        let mut run = Vec::new();
        for &b in bytes {
            if std::mem::take(&mut self.escaped) {
                match b {
                    ESCAPE => run.push(ESCAPE),
                    b'c' => {
                        self.send(std::mem::take(&mut run));
                        self.focus = match self.focus {
                            Focus::Serial => Focus::Monitor,
                            Focus::Monitor => Focus::Serial,
                        };
                        if self.focus == Focus::Monitor {
                            // The monitor's greeting starts on a line of its own.
                            self.say("\r\n");
                            self.monitor_focus.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    b'x' => self.quit.store(true, Ordering::SeqCst),
                    b'h' | b'?' => self.say(HELP),
                    // Other keys after Ctrl-A mean nothing, as in QEMU.
                    _ => {}
                }
            } else if b == ESCAPE {
                self.escaped = true;
            } else {
                run.push(b);
            }
        }
        self.send(run);
    }

    fn send(&self, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        // A front end that is gone takes no more input; nothing else to do.
        let _ = match self.focus {
            Focus::Serial => self.serial.send(bytes),
            Focus::Monitor => self.monitor.send(bytes),
        };
    }

    fn say(&self, text: &str) {
        if let Some(mut out) = self.output.get().cloned() {
            // The backend drops what it cannot write.
            let _ = out.write_all(text.as_bytes());
        }
    }
}

/// Opens `inner` shared between the serial port named `label` and the monitor.
pub fn open(inner: &CharBackend, label: &str, signal: &InputSignal) -> Result<Opened, ChardevError> {
    let (serial_tx, serial_rx) = mpsc::channel();
    let (monitor_tx, monitor_rx) = mpsc::channel();
    let quit = Arc::new(AtomicBool::new(false));
    let monitor_focus = Arc::new(AtomicU64::new(0));
    let output_slot = Arc::new(OnceLock::new());
    let mut demux = Demux {
        focus: Focus::Serial,
        escaped: false,
        serial: serial_tx,
        monitor: monitor_tx,
        monitor_focus: monitor_focus.clone(),
        quit: quit.clone(),
        output: output_slot.clone(),
    };
    let sink = InputSink::new(signal, move |bytes: &[u8]| demux.feed(bytes));
    let backend = super::open_backend(inner, label, sink, false)?;
    // The slot is new and set once.
    let _ = output_slot.set(backend.output.clone());
    let has_input = backend.has_input;
    let device = Chardev {
        output: backend.output.clone(),
        input: has_input.then_some(serial_rx),
        quit: quit.clone(),
        connects: backend.connects,
        peer: Peer::Plain,
    };
    let monitor = Chardev {
        output: backend.output,
        input: has_input.then_some(monitor_rx),
        quit,
        connects: monitor_focus,
        peer: backend.peer,
    };
    Ok(Opened { device, monitor: Some(monitor) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_switch_quit_and_pass_ctrl_a() {
        let (serial, serial_rx) = mpsc::channel();
        let (monitor, monitor_rx) = mpsc::channel();
        let mut d = Demux {
            focus: Focus::Serial,
            escaped: false,
            serial,
            monitor,
            monitor_focus: Arc::new(AtomicU64::new(0)),
            quit: Arc::new(AtomicBool::new(false)),
            output: Arc::new(OnceLock::new()),
        };
        d.feed(b"ls\x01\x01x\x01");
        d.feed(b"cinfo");
        d.feed(b" registers\n\x01c\x01zok");
        assert_eq!(serial_rx.try_iter().flatten().collect::<Vec<u8>>(), b"ls\x01xok");
        assert_eq!(monitor_rx.try_iter().flatten().collect::<Vec<u8>>(), b"info registers\n");
        assert_eq!(d.monitor_focus.load(Ordering::SeqCst), 1);
        assert!(!d.quit.load(Ordering::SeqCst));
        d.feed(b"\x01x");
        assert!(d.quit.load(Ordering::SeqCst));
    }
}
