//! Stream socket backends: TCP or Unix, as a server that takes one client at a time (a
//! new client may connect once the last one left; output while none is connected is
//! dropped, as in QEMU) or as a client of a listening program; over TCP optionally
//! speaking telnet ([`super::telnet`]).

use super::telnet;
use super::{InputSink, SharedOutput, SocketAddress, SocketSpec};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a write may wait for a client that does not read before its bytes are dropped
/// (the guest must never stall on a stuck client).
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// A connected stream of either family.
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn try_clone(&self) -> std::io::Result<Stream> {
        Ok(match self {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
        })
    }

    fn prepare(&self) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => {
                s.set_nodelay(true)?;
                s.set_write_timeout(Some(WRITE_TIMEOUT))
            }
            Stream::Unix(s) => s.set_write_timeout(Some(WRITE_TIMEOUT)),
        }
    }

    fn shutdown(&self) {
        // The peer may already be gone; there is nothing left to close then.
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A listening socket of either family.
enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, std::path::PathBuf),
}

impl Listener {
    fn bind(address: &SocketAddress) -> std::io::Result<Listener> {
        Ok(match address {
            SocketAddress::Tcp { host, port } => Listener::Tcp(TcpListener::bind((host.as_str(), *port))?),
            SocketAddress::Unix(path) => {
                // As QEMU: a socket file left by an earlier run is replaced.
                if std::fs::symlink_metadata(path)
                    .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
                {
                    std::fs::remove_file(path)?;
                }
                Listener::Unix(UnixListener::bind(path)?, path.clone())
            }
        })
    }

    fn accept(&self) -> std::io::Result<Stream> {
        Ok(match self {
            Listener::Tcp(l) => Stream::Tcp(l.accept()?.0),
            Listener::Unix(l, _) => Stream::Unix(l.accept()?.0),
        })
    }

    /// Where it listens, with the port a port 0 was given.
    fn describe(&self) -> String {
        match self {
            Listener::Tcp(l) => match l.local_addr() {
                Ok(a) => SocketAddress::Tcp { host: a.ip().to_string(), port: a.port() }.to_string(),
                Err(_) => "tcp:?".into(),
            },
            Listener::Unix(_, path) => SocketAddress::Unix(path.clone()).to_string(),
        }
    }
}

/// The writing end of the current connection, and a number telling connections apart.
#[derive(Default)]
struct Current {
    stream: Option<Stream>,
    generation: u64,
}

/// Output to whichever client is connected; dropped while none is.
struct SocketOutput {
    current: Arc<Mutex<Current>>,
    /// Double 0xFF bytes for a telnet client.
    telnet: bool,
}

impl Write for SocketOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(stream) = current.stream.as_mut() {
            let data = if self.telnet { telnet::escape(buf) } else { buf.into() };
            match stream.write_all(&data) {
                Ok(()) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    log::warn!("a character device's client does not read: output dropped");
                }
                // The client is gone; its reader thread sees the end as well.
                Err(_) => current.stream = None,
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Makes `stream` the connection: its input goes to `sink` on a reader thread, output to it.
/// A telnet connection starts with the server's option negotiation, and its input loses
/// the client's commands.
fn connect(current: &Arc<Mutex<Current>>, mut stream: Stream, sink: InputSink, connects: &AtomicU64, telnet: bool) {
    let negotiated = !telnet || stream.write_all(&telnet::NEGOTIATION).is_ok();
    let reader = stream.try_clone().and_then(|r| stream.prepare().map(|_| r));
    let (true, Ok(reader)) = (negotiated, reader) else {
        stream.shutdown();
        return;
    };
    let generation = {
        let mut c = current.lock().unwrap_or_else(|e| e.into_inner());
        c.generation += 1;
        c.stream = Some(stream);
        c.generation
    };
    connects.fetch_add(1, Ordering::SeqCst);
    let current = current.clone();
    let spawned = std::thread::Builder::new().name("rx86-chardev-socket".into()).spawn(move || {
        let mut reader = reader;
        let mut buf = [0u8; 1024];
        let mut commands = telnet.then(telnet::InputFilter::default);
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => match &mut commands {
                    Some(filter) => sink.deliver(&filter.filter(&buf[..n])),
                    None => sink.deliver(&buf[..n]),
                },
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let mut c = current.lock().unwrap_or_else(|e| e.into_inner());
        if c.generation == generation {
            c.stream = None;
        }
    });
    if let Err(e) = spawned {
        log::warn!("cannot read a character device's socket: {e}");
    }
}

/// Opens `spec` for the device named `label`. A server without `nowait` waits here for its
/// first client. `connects` counts the clients that connected (the monitor greets each).
pub fn open(
    spec: &SocketSpec,
    label: &str,
    sink: InputSink,
    connects: Arc<AtomicU64>,
) -> std::io::Result<SharedOutput> {
    let current = Arc::new(Mutex::new(Current::default()));
    let output = SharedOutput::new(SocketOutput { current: current.clone(), telnet: spec.telnet });
    let telnet = spec.telnet;
    if !spec.server {
        let stream = match &spec.address {
            SocketAddress::Tcp { host, port } => Stream::Tcp(TcpStream::connect((host.as_str(), *port))?),
            SocketAddress::Unix(path) => Stream::Unix(UnixStream::connect(path)?),
        };
        connect(&current, stream, sink, &connects, telnet);
        return Ok(output);
    }
    let listener = Listener::bind(&spec.address)?;
    let at = match listener.describe() {
        at if spec.telnet => at.replacen("tcp:", "telnet:", 1),
        at => at,
    };
    if spec.wait {
        eprintln!("rx86: {label}: waiting for a connection on {at},server=on");
        let stream = listener.accept()?;
        connect(&current, stream, sink.clone(), &connects, telnet);
    } else {
        eprintln!("rx86: {label}: listening on {at},server=on,wait=off");
    }
    std::thread::Builder::new().name("rx86-chardev-listen".into()).spawn(move || loop {
        let stream = match listener.accept() {
            Ok(stream) => stream,
            Err(e) => {
                log::warn!("{at}: accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let busy = current.lock().unwrap_or_else(|e| e.into_inner()).stream.is_some();
        if busy {
            // One client at a time, as QEMU's socket backend.
            stream.shutdown();
        } else {
            connect(&current, stream, sink.clone(), &connects, telnet);
        }
    })?;
    Ok(output)
}
