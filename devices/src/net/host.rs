//! The host side of the NAT: sockets served by helper threads that only read, write, connect
//! or accept and hand the results over channels. The NAT (on the machine loop) takes them at
//! its turns, so host traffic changes guest-visible state only at instruction boundaries; the
//! threads never touch device state. A shared wake channel lets an idle machine wait for host
//! traffic instead of sleeping blindly.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// How long a connection attempt to a host may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes a reader thread asks for at a time.
const READ_CHUNK: usize = 16 * 1024;
/// Chunks a reader thread may hold for the NAT before it stops reading (flow control).
const READ_AHEAD: usize = 8;
/// Datagrams a UDP flow holds for the NAT before it drops new ones.
const DATAGRAM_BACKLOG: usize = 64;
/// How often a UDP reader looks whether its flow was closed.
const UDP_POLL: Duration = Duration::from_millis(500);

/// Wakes a machine waiting for host traffic.
#[derive(Clone)]
pub struct Waker(Sender<()>);

impl Waker {
    fn wake(&self) {
        let _ = self.0.send(());
    }
}

/// The receiving end of the wake channel.
pub struct WakeReceiver(Receiver<()>);

/// A wake channel.
pub fn wake_channel() -> (Waker, WakeReceiver) {
    let (tx, rx) = channel();
    (Waker(tx), WakeReceiver(rx))
}

impl WakeReceiver {
    /// Waits at most `timeout` for host traffic; true when some arrived.
    pub fn wait(&self, timeout: Duration) -> bool {
        let woke = self.0.recv_timeout(timeout).is_ok();
        while self.0.try_recv().is_ok() {}
        woke
    }
}

/// A TCP connection being made on a helper thread.
pub struct Connecting(Receiver<io::Result<TcpStream>>);

impl Connecting {
    /// Starts connecting to `addr`.
    pub fn start(addr: SocketAddr, waker: Waker) -> Self {
        let (tx, rx) = sync_channel(1);
        let spawned = thread::Builder::new().name("rx86-net-connect".into()).spawn(move || {
            let _ = tx.send(TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT));
            waker.wake();
        });
        if let Err(e) = spawned {
            let (tx, rx) = sync_channel(1);
            let _ = tx.send(Err(e));
            return Connecting(rx);
        }
        Connecting(rx)
    }

    /// The outcome, once there is one.
    pub fn poll(&self) -> Option<io::Result<TcpStream>> {
        match self.0.try_recv() {
            Ok(r) => Some(r),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err(io::Error::other("connect thread ended"))),
        }
    }
}

/// What a reader thread got from the host.
pub enum HostRead {
    /// Bytes.
    Data(Vec<u8>),
    /// The host closed its sending side (or the connection failed).
    Eof,
}

enum WriteCommand {
    Data(Vec<u8>),
    Shutdown,
}

/// An open TCP connection to a host socket.
pub struct HostStream {
    stream: TcpStream,
    reads: Receiver<HostRead>,
    writes: Sender<WriteCommand>,
    /// Bytes handed to the writer thread and not yet written.
    queued: Arc<AtomicUsize>,
}

impl HostStream {
    /// Starts the reader and writer threads of `stream`.
    pub fn start(stream: TcpStream, waker: Waker) -> io::Result<Self> {
        let _ = stream.set_nodelay(true);
        let mut reader = stream.try_clone()?;
        let mut writer = stream.try_clone()?;
        let (read_tx, reads) = sync_channel(READ_AHEAD);
        let (writes, write_rx) = channel::<WriteCommand>();
        let queued = Arc::new(AtomicUsize::new(0));
        let waker_r = waker.clone();
        thread::Builder::new().name("rx86-net-read".into()).spawn(move || {
            let mut buf = vec![0u8; READ_CHUNK];
            loop {
                let item = match reader.read(&mut buf) {
                    Ok(0) | Err(_) => HostRead::Eof,
                    Ok(n) => HostRead::Data(buf[..n].to_vec()),
                };
                let eof = matches!(item, HostRead::Eof);
                if read_tx.send(item).is_err() {
                    return;
                }
                waker_r.wake();
                if eof {
                    return;
                }
            }
        })?;
        let q = queued.clone();
        thread::Builder::new().name("rx86-net-write".into()).spawn(move || {
            while let Ok(cmd) = write_rx.recv() {
                match cmd {
                    WriteCommand::Data(bytes) => {
                        let ok = writer.write_all(&bytes).is_ok();
                        q.fetch_sub(bytes.len(), Ordering::AcqRel);
                        waker.wake();
                        if !ok {
                            return;
                        }
                    }
                    WriteCommand::Shutdown => {
                        let _ = writer.shutdown(Shutdown::Write);
                    }
                }
            }
        })?;
        Ok(HostStream { stream, reads, writes, queued })
    }

    /// The next thing the host sent, if any.
    pub fn try_read(&self) -> Option<HostRead> {
        match self.reads.try_recv() {
            Ok(r) => Some(r),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(HostRead::Eof),
        }
    }

    /// Queues `bytes` for the host.
    pub fn write(&self, bytes: Vec<u8>) {
        self.queued.fetch_add(bytes.len(), Ordering::AcqRel);
        let _ = self.writes.send(WriteCommand::Data(bytes));
    }

    /// Bytes queued for the host and not yet written.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Closes the sending side once the queued bytes are written.
    pub fn shutdown_write(&self) {
        let _ = self.writes.send(WriteCommand::Shutdown);
    }
}

impl Drop for HostStream {
    fn drop(&mut self) {
        // Ends the reader thread's blocking read; the writer ends with its channel.
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// A listening socket for a host forward, accepting on a helper thread.
pub struct Listener {
    accepted: Receiver<TcpStream>,
    local: SocketAddr,
}

impl Listener {
    /// Binds `addr` and starts accepting.
    pub fn bind(addr: SocketAddr, waker: Waker) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        let (tx, accepted) = channel();
        thread::Builder::new().name("rx86-net-accept".into()).spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if tx.send(stream).is_err() {
                    return;
                }
                waker.wake();
            }
        })?;
        Ok(Listener { accepted, local })
    }

    /// The address it listens on (with the port the system chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// A connection accepted since the last call.
    pub fn try_accept(&self) -> Option<TcpStream> {
        self.accepted.try_recv().ok()
    }
}

/// A UDP socket for one guest flow, read on a helper thread.
pub struct UdpFlow {
    socket: UdpSocket,
    datagrams: Receiver<Vec<u8>>,
    alive: Arc<AtomicBool>,
}

impl UdpFlow {
    /// A socket connected to `remote`.
    pub fn open(remote: SocketAddr, waker: Waker) -> io::Result<Self> {
        let bind: SocketAddr =
            if remote.ip().is_loopback() { "127.0.0.1:0" } else { "0.0.0.0:0" }.parse().map_err(io::Error::other)?;
        let socket = UdpSocket::bind(bind)?;
        socket.connect(remote)?;
        let reader = socket.try_clone()?;
        reader.set_read_timeout(Some(UDP_POLL))?;
        let (tx, datagrams) = sync_channel(DATAGRAM_BACKLOG);
        let alive = Arc::new(AtomicBool::new(true));
        let still = alive.clone();
        thread::Builder::new().name("rx86-net-udp".into()).spawn(move || {
            let mut buf = vec![0u8; 65536];
            while still.load(Ordering::Acquire) {
                if let Ok(n) = reader.recv(&mut buf) {
                    if tx.try_send(buf[..n].to_vec()).is_ok() {
                        waker.wake();
                    }
                }
            }
        })?;
        Ok(UdpFlow { socket, datagrams, alive })
    }

    /// Sends a datagram to the remote.
    pub fn send(&self, payload: &[u8]) {
        if let Err(e) = self.socket.send(payload) {
            log::debug!("net: UDP send: {e}");
        }
    }

    /// A datagram received since the last call.
    pub fn try_recv(&self) -> Option<Vec<u8>> {
        self.datagrams.try_recv().ok()
    }
}

impl Drop for UdpFlow {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::Release);
    }
}

/// The first IPv4 `nameserver` of a resolv.conf text.
pub fn resolver_from(resolv_conf: &str) -> Option<SocketAddr> {
    resolv_conf.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("nameserver"))
            .then(|| words.next()?.parse::<std::net::Ipv4Addr>().ok())
            .flatten()
            .map(|ip| SocketAddr::from((ip, 53)))
    })
}
