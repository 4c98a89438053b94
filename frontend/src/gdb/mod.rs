//! The gdb remote stub: `--gdb tcp::PORT` (or `HOST:PORT`), `-s`, `-S`.
//!
//! The machine runs in this thread; between two turns of the machine loop the stub looks
//! for a new connection (or, while gdb is attached, for a packet such as Ctrl-C). A
//! connection stops the guest; gdb's `detach`, or a dropped connection, lets it run on
//! and the stub waits for the next one.
//!
//! Registers (see [`layout`]): the target description names no architecture, so gdb keeps
//! the one it has: from `set architecture` (i8086 for a boot sector, i386:x86-64 for a
//! 64-bit kernel) or from the ELF given to `file`, else its default (x86-64). It holds the
//! x86-64 registers and the i386 names, so it fits any of them in any CPU mode, and it stays
//! the same for the whole session: stepping across a mode switch needs nothing re-read, and
//! `set architecture` switches gdb's view at any time. `monitor layout auto` brings back
//! descriptions that name the CPU mode's architecture (re-read with `unset tdesc
//! filename`); `monitor layout i8086|i386|i386:x86-64` fixes one.
//!
//! Addresses are linear (virtual) addresses translated through the guest's page tables;
//! breakpoints never write to guest memory.
//!
//! While gdb holds the guest stopped, the stub does not block on the connection: between
//! packets it serves the monitor on its character device (`--monitor`, `mon:`) and ends
//! the run on a termination signal or `--timeout`.

mod conn;
pub mod layout;
mod target;

use crate::machine::{Machine, Outcome};
use conn::FramedStream;
use gdbstub::common::Signal;
use gdbstub::conn::{Connection, ConnectionExt};
use gdbstub::stub::run_blocking::{BlockingEventLoop, Event, WaitForStopReasonError};
use gdbstub::stub::state_machine::GdbStubStateMachine;
use gdbstub::stub::{DisconnectReason, GdbStub, GdbStubError, SingleThreadStopReason};
use rx86_cpu::debug::{BreakpointKind, DebugStop, WatchKind};
use std::io::ErrorKind;
use std::marker::PhantomData;
use std::net::{TcpListener, TcpStream};
use target::GdbTarget;
use thiserror::Error;

/// QEMU's default gdb port (`-s`).
pub const DEFAULT_PORT: u16 = 1234;

/// Where and how to serve gdb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GdbOptions {
    /// `HOST:PORT` to listen on (port 0 picks a free one; the chosen address is printed).
    pub listen: String,
    /// Hold the guest before its first instruction until gdb connects (`-S`).
    pub wait: bool,
}

/// Why the gdb stub could not run.
#[derive(Debug, Error)]
pub enum GdbError {
    /// The listening socket could not be opened (port in use, bad address).
    #[error("gdb stub: cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: String,
        /// The socket error.
        source: std::io::Error,
    },
    /// The engine offers no debugging interface.
    #[error("gdb stub: the {0} engine has no debugger support yet; use --accel interp")]
    NoDebugger(&'static str),
    /// The machine failed.
    #[error(transparent)]
    Run(#[from] crate::error::RunError),
    /// Accepting a connection failed.
    #[error("gdb stub: {0}")]
    Socket(std::io::Error),
}

/// Parses `--gdb` values as QEMU users write them: `tcp::1234` (localhost), `tcp:HOST:PORT`,
/// `HOST:PORT`, `:PORT` or a bare port. Returns `HOST:PORT`.
pub fn parse_gdb_address(s: &str) -> Result<String, String> {
    let rest = s.strip_prefix("tcp:").unwrap_or(s);
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, p),
        None => ("", rest),
    };
    let port: u16 = port.parse().map_err(|_| format!("'{s}' has no valid port (try tcp::1234 or 127.0.0.1:1234)"))?;
    let host = if host.is_empty() { "127.0.0.1" } else { host };
    if host.contains(char::is_whitespace) {
        return Err(format!("'{s}' is not a host name"));
    }
    Ok(format!("{host}:{port}"))
}

/// The stub options for `--gdb ADDRESS`, `-s` and `-S` (`None` when none was given).
pub fn options(address: Option<&str>, default_port: bool, wait: bool) -> Option<GdbOptions> {
    let listen = match address {
        Some(a) => a.to_string(),
        None if default_port || wait => format!("127.0.0.1:{DEFAULT_PORT}"),
        None => return None,
    };
    Some(GdbOptions { listen, wait })
}

/// Runs `machine` under the gdb stub until the guest's run ends or gdb kills it.
pub fn serve(machine: &mut Machine, opts: &GdbOptions) -> Result<Outcome, GdbError> {
    if machine.debug_parts().0.is_none() {
        return Err(GdbError::NoDebugger(machine.engine_name()));
    }
    let listener =
        TcpListener::bind(&opts.listen).map_err(|source| GdbError::Listen { addr: opts.listen.clone(), source })?;
    let local = listener.local_addr().map_err(GdbError::Socket)?;
    eprintln!(
        "rx86: gdb stub listening on {local}{}; in gdb: target remote {local}",
        if opts.wait { " (the guest waits for gdb)" } else { "" }
    );
    let mut wait = opts.wait;
    loop {
        let stream = if wait {
            wait = false;
            match wait_for_connection(machine, &listener)? {
                Ok(stream) => stream,
                Err(outcome) => return Ok(outcome),
            }
        } else {
            match run_until_connection(machine, &listener)? {
                Ok(stream) => stream,
                Err(outcome) => return Ok(outcome),
            }
        };
        if let Some(outcome) = debug_session(machine, stream)? {
            return Ok(outcome);
        }
        if let Some(debug) = machine.debug_parts().0 {
            debug.detach();
        }
    }
}

/// How often the wait for gdb before the first instruction looks for a stop request.
const ACCEPT_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// Holds the guest before its first instruction until gdb connects (`Ok`), or a signal,
/// `--timeout` or the monitor's `quit` ends the run (`Err(outcome)`). The monitor answers
/// meanwhile.
fn wait_for_connection(machine: &mut Machine, listener: &TcpListener) -> Result<Result<TcpStream, Outcome>, GdbError> {
    listener.set_nonblocking(true).map_err(GdbError::Socket)?;
    let result = loop {
        match listener.accept() {
            Ok((stream, _)) => break Ok(stream),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(GdbError::Socket(e)),
        }
        if let Some(stop) = machine.external_stop() {
            break Err(Outcome::External(stop));
        }
        if machine.poll_monitor() {
            break Err(Outcome::Killed);
        }
        std::thread::sleep(ACCEPT_POLL);
    };
    listener.set_nonblocking(false).map_err(GdbError::Socket)?;
    Ok(result)
}

/// Runs the guest freely until gdb connects (`Ok`) or the run ends (`Err(outcome)`).
fn run_until_connection(machine: &mut Machine, listener: &TcpListener) -> Result<Result<TcpStream, Outcome>, GdbError> {
    listener.set_nonblocking(true).map_err(GdbError::Socket)?;
    let result = loop {
        match listener.accept() {
            Ok((stream, _)) => break Ok(stream),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(GdbError::Socket(e)),
        }
        if let Some(outcome) = machine.step()? {
            break Err(outcome);
        }
        // No debugger is attached: a stop left over from the last session means nothing.
        machine.take_debug_stop();
    };
    listener.set_nonblocking(false).map_err(GdbError::Socket)?;
    Ok(result)
}

/// One gdb connection. `Some` when the run is over (the guest ended, or gdb killed it).
fn debug_session(machine: &mut Machine, stream: TcpStream) -> Result<Option<Outcome>, GdbError> {
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_else(|_| "?".into());
    eprintln!("rx86: gdb connected from {peer}; the guest is stopped");
    stream.set_nonblocking(false).map_err(GdbError::Socket)?;
    let mut target = GdbTarget::new(machine);
    let result = run_session(&mut target, FramedStream::new(stream));
    let outcome = target.outcome.take();
    let quit = target.quit;
    match result {
        Ok(SessionEnd::Ended(outcome)) => Ok(Some(outcome)),
        Ok(SessionEnd::Gdb(DisconnectReason::TargetExited(_) | DisconnectReason::TargetTerminated(_))) => {
            Ok(Some(outcome.unwrap_or(Outcome::PowerOff)))
        }
        Ok(SessionEnd::Gdb(DisconnectReason::Kill)) => Ok(Some(Outcome::Killed)),
        Ok(SessionEnd::Gdb(DisconnectReason::Disconnect)) => {
            eprintln!("rx86: gdb detached; the guest runs on");
            Ok(None)
        }
        Err(_) if quit => Ok(Some(Outcome::Killed)),
        Err(e) => {
            if let Some(outcome) = outcome {
                return Ok(Some(outcome));
            }
            match e {
                SessionError::Target(msg) => Err(GdbError::Run(crate::error::RunError::Engine(msg))),
                SessionError::Stub(e) if e.is_target_error() => {
                    let msg = e.into_target_error().unwrap_or_default();
                    Err(GdbError::Run(crate::error::RunError::Engine(msg)))
                }
                e => {
                    eprintln!("rx86: gdb connection lost ({e}); the guest runs on");
                    Ok(None)
                }
            }
        }
    }
}

/// How long the stub, with the guest stopped, waits for gdb's next byte before it serves
/// the monitor and looks for a stop request.
const IDLE_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// How a session ended without an error.
enum SessionEnd {
    /// gdb ended it (or the guest's run ended while gdb watched).
    Gdb(DisconnectReason),
    /// The run ended while the guest was stopped: the monitor's `quit`, a termination
    /// signal, `--timeout`.
    Ended(Outcome),
}

/// Why a session broke off.
#[derive(Debug, Error)]
enum SessionError {
    /// The protocol layer failed (the connection, or the target inside it).
    #[error("{0}")]
    Stub(GdbStubError<String, std::io::Error>),
    /// Waiting for or reading the connection failed.
    #[error("{0}")]
    Connection(std::io::Error),
    /// The machine failed while it ran for gdb.
    #[error("{0}")]
    Target(String),
}

/// One gdb session on gdbstub's state machine: as its `run_blocking`, except that while
/// the guest is stopped the wait for gdb's next byte is cut into [`IDLE_POLL`] slices,
/// between which the monitor answers and stop requests are seen.
fn run_session(target: &mut GdbTarget<'_>, conn: FramedStream) -> Result<SessionEnd, SessionError> {
    let mut gdb = GdbStub::new(conn).run_state_machine(target).map_err(SessionError::Stub)?;
    loop {
        gdb = match gdb {
            GdbStubStateMachine::Idle(mut idle) => {
                if idle.borrow_conn().wait_readable(IDLE_POLL).map_err(SessionError::Connection)? {
                    let byte = ConnectionExt::read(idle.borrow_conn()).map_err(SessionError::Connection)?;
                    idle.incoming_data(target, byte).map_err(SessionError::Stub)?
                } else if target.machine().poll_monitor() {
                    return Ok(SessionEnd::Ended(Outcome::Killed));
                } else if let Some(stop) = target.machine().external_stop() {
                    return Ok(SessionEnd::Ended(Outcome::External(stop)));
                } else {
                    GdbStubStateMachine::Idle(idle)
                }
            }
            GdbStubStateMachine::Disconnected(gdb) => return Ok(SessionEnd::Gdb(gdb.get_reason())),
            GdbStubStateMachine::CtrlCInterrupt(gdb) => {
                let reason = EventLoop::on_interrupt(target).map_err(SessionError::Target)?;
                gdb.interrupt_handled(target, reason).map_err(SessionError::Stub)?
            }
            GdbStubStateMachine::Running(mut running) => {
                match EventLoop::wait_for_stop_reason(target, running.borrow_conn()) {
                    Ok(Event::TargetStopped(reason)) => {
                        running.report_stop(target, reason).map_err(SessionError::Stub)?
                    }
                    Ok(Event::IncomingData(byte)) => running.incoming_data(target, byte).map_err(SessionError::Stub)?,
                    Err(WaitForStopReasonError::Target(e)) => return Err(SessionError::Target(e)),
                    Err(WaitForStopReasonError::Connection(e)) => return Err(SessionError::Connection(e)),
                }
            }
        }
    }
}

/// The status gdb is told when the run ends.
fn exit_code(outcome: &Outcome) -> u8 {
    outcome.exit_status().clamp(0, 255) as u8
}

/// The gdb stop reason for an engine stop.
fn stop_reason(stop: DebugStop) -> SingleThreadStopReason<u64> {
    use gdbstub::target::ext::breakpoints::WatchKind as Gdb;
    match stop {
        DebugStop::Breakpoint { kind: BreakpointKind::Software, .. } => SingleThreadStopReason::SwBreak(()),
        DebugStop::Breakpoint { kind: BreakpointKind::Hardware, .. } => SingleThreadStopReason::HwBreak(()),
        DebugStop::Watchpoint { kind, addr } => SingleThreadStopReason::Watch {
            tid: (),
            kind: match kind {
                WatchKind::Write => Gdb::Write,
                WatchKind::Read => Gdb::Read,
                WatchKind::Access => Gdb::ReadWrite,
            },
            addr,
        },
        DebugStop::Step => SingleThreadStopReason::DoneStep,
    }
}

/// Runs the machine while gdb waits, watching the connection for Ctrl-C.
struct EventLoop<'m>(PhantomData<&'m ()>);

impl<'m> BlockingEventLoop for EventLoop<'m> {
    type Target = GdbTarget<'m>;
    type Connection = FramedStream;
    type StopReason = SingleThreadStopReason<u64>;

    #[allow(clippy::type_complexity)]
    fn wait_for_stop_reason(
        target: &mut GdbTarget<'m>,
        conn: &mut FramedStream,
    ) -> Result<Event<Self::StopReason>, WaitForStopReasonError<String, <FramedStream as Connection>::Error>> {
        // Resumed after a triple fault was shown as SIGSEGV: the run is over.
        if let Some(outcome) = &target.outcome {
            return Ok(Event::TargetStopped(SingleThreadStopReason::Exited(exit_code(outcome))));
        }
        loop {
            if conn.peek().map_err(WaitForStopReasonError::Connection)?.is_some() {
                let byte = ConnectionExt::read(conn).map_err(WaitForStopReasonError::Connection)?;
                return Ok(Event::IncomingData(byte));
            }
            match target.machine().step() {
                Err(e) => return Err(WaitForStopReasonError::Target(e.to_string())),
                Ok(Some(outcome)) => {
                    let status = exit_code(&outcome);
                    // A triple fault stops as SIGSEGV with the CPU at the faulting
                    // instruction, so gdb can look around; the next resume ends the run.
                    let stop = if let Outcome::TripleFault(why) = &outcome {
                        eprintln!("rx86: guest triple fault: {why}");
                        target.note_stop();
                        SingleThreadStopReason::Signal(Signal::SIGSEGV)
                    } else {
                        SingleThreadStopReason::Exited(status)
                    };
                    target.outcome = Some(outcome);
                    return Ok(Event::TargetStopped(stop));
                }
                Ok(None) => {}
            }
            if let Some(stop) = target.machine().take_debug_stop() {
                target.note_stop();
                return Ok(Event::TargetStopped(stop_reason(stop)));
            }
        }
    }

    fn on_interrupt(target: &mut GdbTarget<'m>) -> Result<Option<Self::StopReason>, String> {
        target.note_stop();
        Ok(Some(SingleThreadStopReason::Signal(Signal::SIGINT)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_as_qemu_users_write_them() {
        assert_eq!(parse_gdb_address("tcp::1234").unwrap(), "127.0.0.1:1234");
        assert_eq!(parse_gdb_address("tcp:0.0.0.0:4000").unwrap(), "0.0.0.0:4000");
        assert_eq!(parse_gdb_address("localhost:9").unwrap(), "localhost:9");
        assert_eq!(parse_gdb_address("1234").unwrap(), "127.0.0.1:1234");
        assert_eq!(parse_gdb_address(":0").unwrap(), "127.0.0.1:0");
        assert!(parse_gdb_address("tcp::").is_err());
        assert!(parse_gdb_address("tcp::99999").is_err());
    }

    #[test]
    fn s_and_capital_s_mean_port_1234() {
        assert_eq!(options(None, false, false), None);
        let s = options(None, true, false).unwrap();
        assert_eq!((s.listen.as_str(), s.wait), ("127.0.0.1:1234", false));
        assert!(options(None, false, true).unwrap().wait);
        assert_eq!(options(Some("0.0.0.0:9"), false, true).unwrap().listen, "0.0.0.0:9");
    }
}
