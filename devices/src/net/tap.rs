//! A TAP backend (Linux hosts): the guest's frames go to a TAP interface of the host kernel,
//! and frames the kernel sends to that interface come to the guest, as QEMU's `-nic tap`.
//! The device is opened through `/dev/net/tun` with `TUNSETIFF` (`IFF_TAP | IFF_NO_PI`:
//! whole Ethernet frames, no packet-information prefix); see the kernel's
//! Documentation/networking/tuntap.rst. Attaching to a persistent device the user owns needs
//! no privilege (`ip tuntap add NAME mode tap user USER`); creating one needs CAP_NET_ADMIN.
//! rx86 runs no scripts (QEMU's `script=no`): the host side is configured with `ip`.
//!
//! The descriptor is non-blocking and read only from the machine loop ([`NetBackend::poll`]),
//! so no thread is involved and frames enter the guest at instruction boundaries.

use super::backend::NetBackend;
use super::pcap::PcapWriter;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// The clone device.
const TUN_PATH: &str = "/dev/net/tun";
/// IFNAMSIZ: interface names are at most 15 bytes and a NUL.
const IFNAMSIZ: usize = 16;
/// Size of `struct ifreq` on Linux (the name, then a 24-byte union).
const IFREQ_BYTES: usize = 40;
/// `TUNSETIFF`, `_IOW('T', 202, int)`.
const TUNSETIFF: u64 = 0x4004_54ca;
/// `IFF_TAP`: an Ethernet (layer 2) device.
const IFF_TAP: i16 = 0x0002;
/// `IFF_NO_PI`: no 4-byte packet-information header before each frame.
const IFF_NO_PI: i16 = 0x1000;
/// Frames held for the guest before reading from the device pauses.
const TO_GUEST_MAX: usize = 4096;
/// Largest frame a TAP device hands over (its MTU is at most 65535 plus the header).
const MAX_FRAME: usize = 65_536 + 14;
/// Shortest frame worth passing on: an Ethernet header.
const MIN_FRAME: usize = 14;

/// Why a TAP device could not be used.
#[derive(Debug, Error)]
pub enum TapError {
    /// The interface name cannot name a Linux interface.
    #[error("tap: '{0}' is not an interface name (1 to 15 characters, none of '/', ':' or white space)")]
    BadName(String),
    /// The clone device cannot be opened.
    #[error(
        "tap: cannot open {path}: {source} (TAP needs Linux's tun driver and read-write access to {path}; \
         as root: modprobe tun)"
    )]
    OpenTun {
        /// The clone device's path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// `TUNSETIFF` refused the interface.
    #[error(
        "tap: cannot attach to interface '{name}': {source} (creating a TAP interface needs CAP_NET_ADMIN; \
         as root, make a persistent one for your user first: ip tuntap add {name} mode tap user $USER)"
    )]
    Attach {
        /// The interface.
        name: String,
        /// Why.
        source: io::Error,
    },
    /// Not a Linux host.
    #[error("tap: TAP interfaces are only available on Linux hosts")]
    Unsupported,
    /// The capture file cannot be created.
    #[error("pcap: cannot create {path}: {source}")]
    Pcap {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// True when `name` can name a Linux network interface (`dev_valid_name`): 1 to 15 bytes,
/// not `.` or `..`, no `/`, `:` or white space. A `%d` in it lets the kernel pick a number.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < IFNAMSIZ
        && name != "."
        && name != ".."
        && !name.bytes().any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace())
}

/// An open TAP interface.
pub struct TapNet {
    file: File,
    name: String,
    to_guest: VecDeque<Vec<u8>>,
    pcap: Option<PcapWriter>,
    buffer: Vec<u8>,
    to_host: u64,
    from_host: u64,
    dropped: u64,
}

impl TapNet {
    /// Attaches to (or, with CAP_NET_ADMIN, creates) the TAP interface `name`; `pcap`
    /// captures its traffic.
    pub fn open(name: &str, pcap: Option<&Path>) -> Result<Self, TapError> {
        Self::open_clone_device(Path::new(TUN_PATH), name, pcap)
    }

    /// [`Self::open`] through the clone device at `tun`.
    fn open_clone_device(tun: &Path, name: &str, pcap: Option<&Path>) -> Result<Self, TapError> {
        if !valid_ifname(name) {
            return Err(TapError::BadName(name.into()));
        }
        let file = open_nonblocking(tun).map_err(|source| TapError::OpenTun { path: tun.into(), source })?;
        let name = attach(&file, name).map_err(|source| TapError::Attach { name: name.into(), source })?;
        let pcap = pcap
            .map(|path| PcapWriter::create(path).map_err(|source| TapError::Pcap { path: path.into(), source }))
            .transpose()?;
        Ok(TapNet {
            file,
            name,
            to_guest: VecDeque::new(),
            pcap,
            buffer: vec![0; MAX_FRAME],
            to_host: 0,
            from_host: 0,
            dropped: 0,
        })
    }

    /// The interface's name (as the kernel completed a `%d` pattern).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn capture(&mut self, now_ns: u64, frame: &[u8]) {
        if let Some(p) = &mut self.pcap {
            if let Err(e) = p.record(now_ns, frame) {
                log::error!("pcap: {e}; capture stopped");
                self.pcap = None;
            }
        }
    }
}

fn open_nonblocking(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().read(true).write(true).custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC).open(path)
}

/// `TUNSETIFF` on the clone device: binds `file` to TAP interface `name`; returns the name
/// the kernel gave it.
#[cfg(target_os = "linux")]
fn attach(file: &File, name: &str) -> io::Result<String> {
    let mut ifreq = [0u8; IFREQ_BYTES];
    ifreq[..name.len()].copy_from_slice(name.as_bytes());
    ifreq[IFNAMSIZ..IFNAMSIZ + 2].copy_from_slice(&(IFF_TAP | IFF_NO_PI).to_ne_bytes());
    // SAFETY: TUNSETIFF reads a `struct ifreq` (name, then the flags at offset 16) and writes
    // the chosen name back into it; the buffer is a whole `struct ifreq` and lives across the
    // call, and the descriptor is open for as long as `file` is borrowed.
    if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, ifreq.as_mut_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let end = ifreq[..IFNAMSIZ].iter().position(|&b| b == 0).unwrap_or(IFNAMSIZ);
    Ok(String::from_utf8_lossy(&ifreq[..end]).into_owned())
}

#[cfg(not(target_os = "linux"))]
fn attach(_file: &File, _name: &str) -> io::Result<String> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "TAP interfaces are only available on Linux hosts"))
}

impl NetBackend for TapNet {
    fn transmit(&mut self, frame: &[u8], now_ns: u64) {
        self.capture(now_ns, frame);
        // A TAP device takes a whole frame per write, or none when its queue is full.
        match (&self.file).write(frame) {
            Ok(n) if n == frame.len() => self.to_host += 1,
            Ok(n) => {
                self.dropped += 1;
                log::debug!("tap {}: the host took {n} of a frame's {} bytes", self.name, frame.len());
            }
            Err(e) => {
                self.dropped += 1;
                log::debug!("tap {}: frame to the host dropped: {e}", self.name);
            }
        }
    }

    fn poll(&mut self, _now_ns: u64) {
        while self.to_guest.len() < TO_GUEST_MAX {
            match (&self.file).read(&mut self.buffer) {
                Ok(n) if n >= MIN_FRAME => {
                    self.from_host += 1;
                    self.to_guest.push_back(self.buffer[..n].to_vec());
                }
                Ok(0) => break,
                Ok(_) => self.dropped += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => break,
                Err(e) => {
                    log::warn!("tap {}: read: {e}", self.name);
                    break;
                }
            }
        }
        if let Some(p) = &mut self.pcap {
            let _ = p.flush();
        }
    }

    fn peek_for_guest(&self) -> Option<&[u8]> {
        self.to_guest.front().map(Vec::as_slice)
    }

    fn pop_for_guest(&mut self, now_ns: u64) {
        if let Some(frame) = self.to_guest.pop_front() {
            self.capture(now_ns, &frame);
        }
    }

    /// A host interface can deliver traffic at any time.
    fn host_active(&self) -> bool {
        true
    }

    fn wait(&self, timeout: Duration) -> bool {
        if !self.to_guest.is_empty() {
            return true;
        }
        let mut fd = libc::pollfd { fd: self.file.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        let millis = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        // SAFETY: poll reads and writes exactly one `pollfd`, which lives across the call;
        // the descriptor is open for as long as `self.file` is.
        let ready = unsafe { libc::poll(&mut fd, 1, millis) };
        ready > 0 && fd.revents & libc::POLLIN != 0
    }

    fn describe(&self) -> Vec<String> {
        vec![format!(
            "tap {}: {} frames to the host, {} from it, {} dropped, {} waiting for the guest",
            self.name,
            self.to_host,
            self.from_host,
            self.dropped,
            self.to_guest.len()
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        for good in ["tap0", "rx86tap%d", "a", "fifteen-chars-x"] {
            assert!(valid_ifname(good), "{good}");
        }
        for bad in ["", ".", "..", "tap/0", "tap:0", "tap 0", "sixteen-chars-xx", "tab\t"] {
            assert!(!valid_ifname(bad), "{bad}");
        }
        assert!(matches!(TapNet::open("bad/name", None), Err(TapError::BadName(_))));
    }

    #[test]
    fn a_missing_clone_device_is_named_with_what_to_do() {
        let missing = std::env::temp_dir().join(format!("rx86-no-tun-{}", std::process::id()));
        let e = TapNet::open_clone_device(&missing, "tap0", None).err().expect("no such device");
        let text = e.to_string();
        assert!(text.contains("cannot open") && text.contains("rx86-no-tun") && text.contains("tun driver"), "{text}");
    }

    #[test]
    fn a_device_that_refuses_tunsetiff_is_named_with_what_to_do() {
        // A regular file opens, but TUNSETIFF is not an ioctl it knows (ENOTTY).
        let path = std::env::temp_dir().join(format!("rx86-fake-tun-{}", std::process::id()));
        std::fs::write(&path, b"").unwrap();
        let e = TapNet::open_clone_device(&path, "rx86tap0", None).err().expect("not a clone device");
        let _ = std::fs::remove_file(&path);
        let text = e.to_string();
        assert!(matches!(e, TapError::Attach { .. }), "{text}");
        assert!(text.contains("'rx86tap0'") && text.contains("ip tuntap add rx86tap0 mode tap user"), "{text}");
    }
}
