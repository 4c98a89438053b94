//! Character devices: the host ends of the serial ports and the monitor, spelled as QEMU
//! spells them (`-serial`, `-monitor`, `-chardev`, `-mon`).
//!
//! A [`CharBackend`] says where bytes go; [`open`] turns it into a [`Chardev`]: a shared
//! output every writer clones, and the input the user types, read on helper threads and
//! handed to the machine loop through a channel. Opening happens once per run, so a guest
//! reset keeps its sockets, pty and files. Backends, one file each: standard input and
//! output ([`terminal`]), files, a pseudo-terminal ([`pty`]), TCP and Unix sockets as server
//! or client ([`socket`], telnet over TCP in [`telnet`]), and QEMU's `mon:` multiplexer that shares one backend between a
//! serial port and the monitor ([`mux`]).

mod input;
pub mod mux;
mod output;
pub mod parse;
mod pty;
mod socket;
mod telnet;
mod terminal;

pub use input::{InputSignal, InputSink};
pub use output::SharedOutput;
pub use parse::{parse_backend, CharBackend, SocketAddress, SocketSpec};
pub use terminal::{output_at_line_start, restore as restore_terminal, set_status_shown};

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use thiserror::Error;

/// Why a character device could not be opened.
#[derive(Debug, Error)]
#[error("{label}: cannot open {what}: {source}")]
pub struct ChardevError {
    /// Which device ("serial0", "monitor").
    pub label: String,
    /// The backend as the user spelled it.
    pub what: String,
    /// The host's error.
    pub source: std::io::Error,
}

/// An opened character device.
pub struct Chardev {
    /// Where the device's bytes go; clone it for each writer.
    pub output: SharedOutput,
    /// Bytes from the host side (typed, or sent over the socket); `None` for backends
    /// without input. Disconnected once no more input can ever come.
    pub input: Option<Receiver<Vec<u8>>>,
    /// Set when the user asks, through this device, to end rx86 (`Ctrl-A x` under `mon:`).
    pub quit: Arc<AtomicBool>,
    /// How many times the far end (re)connected: a socket's clients, or under `mon:` the
    /// switches to the monitor. The monitor greets each.
    pub connects: Arc<AtomicU64>,
    /// What the far end does with typed and written bytes.
    pub peer: Peer,
}

/// What is at the far end of a character device, for a line-reading front end such as the
/// monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// A file, a pipe, nothing: no echo wanted, lines end in `\n`.
    Plain,
    /// A terminal in raw mode that still turns `\n` into a new line: typed keys need an echo.
    RawTerminal,
    /// A socket or a pty passing bytes unchanged: typed keys need an echo, lines end in `\r\n`.
    Raw,
}

/// What [`open`] gives: the device, and under `mon:` the monitor's side of it.
pub struct Opened {
    /// The device for its front end (a serial port, or the monitor).
    pub device: Chardev,
    /// The monitor's view of a `mon:` backend.
    pub monitor: Option<Chardev>,
}

/// An opened backend before it is given to front ends.
struct Backend {
    output: SharedOutput,
    has_input: bool,
    peer: Peer,
    connects: Arc<AtomicU64>,
}

/// Opens `backend` for the front end named `label` ("serial0", "monitor"); `signal` is
/// raised whenever input arrives. A TCP or Unix server without `nowait` blocks here until
/// its first client connects, as in QEMU.
pub fn open(backend: &CharBackend, label: &str, signal: &InputSignal) -> Result<Opened, ChardevError> {
    if let CharBackend::Mux(inner) = backend {
        return mux::open(inner, label, signal);
    }
    let (sink, rx) = InputSink::channel(signal);
    let opened = open_backend(backend, label, sink, true)?;
    let device = Chardev {
        output: opened.output,
        input: opened.has_input.then_some(rx),
        quit: Arc::new(AtomicBool::new(false)),
        connects: opened.connects,
        peer: opened.peer,
    };
    Ok(Opened { device, monitor: None })
}

/// Opens `backend` with its input going to `sink`; a terminal on stdio keeps its signal
/// keys when `keep_signals` (QEMU turns them off for `mon:stdio`, so Ctrl-C reaches the guest).
fn open_backend(
    backend: &CharBackend,
    label: &str,
    sink: InputSink,
    keep_signals: bool,
) -> Result<Backend, ChardevError> {
    let err = |source| ChardevError { label: label.into(), what: backend.to_string(), source };
    let connected = || Arc::new(AtomicU64::new(1));
    let no_input = |output| Backend { output, has_input: false, peer: Peer::Plain, connects: connected() };
    Ok(match backend {
        // `mon:mon:` is refused when parsed, so a `Mux` never reaches here.
        CharBackend::Null | CharBackend::Mux(_) => no_input(SharedOutput::new(std::io::sink())),
        // As QEMU's file backend: created or truncated.
        CharBackend::File(path) => no_input(SharedOutput::new(std::fs::File::create(path).map_err(err)?)),
        CharBackend::Stdio => {
            let raw = terminal::open(sink, keep_signals).map_err(err)?;
            Backend {
                output: SharedOutput::new(terminal::Stdout),
                has_input: true,
                peer: if raw { Peer::RawTerminal } else { Peer::Plain },
                connects: connected(),
            }
        }
        CharBackend::Pty => {
            let (output, path) = pty::open(sink).map_err(err)?;
            eprintln!("char device redirected to {} (label {label})", path.display());
            Backend { output, has_input: true, peer: Peer::Raw, connects: connected() }
        }
        CharBackend::Socket(spec) => {
            let connects = Arc::new(AtomicU64::new(0));
            let output = socket::open(spec, label, sink, connects.clone()).map_err(err)?;
            Backend { output, has_input: true, peer: Peer::Raw, connects }
        }
    })
}
