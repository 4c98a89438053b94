//! The network as the user asks for it (`--nic`), and the board's side of it: the NIC on the
//! PCI bus and the backend behind it (user-mode NAT or TAP), joined at machine-loop turns.
//!
//! `--nic user[,model=e1000|virtio-net-pci|ne2k_pci][,mac=52:54:00:12:34:56]
//! [,hostfwd=tcp:127.0.0.1:HOSTPORT-:GUESTPORT][,restrict=on|off][,pcap=FILE]`,
//! `--nic tap,ifname=NAME[,model=...][,mac=...][,pcap=FILE]` or `--nic none` (QEMU's
//! spellings). Any of them takes `record=FILE`: the frames the card received are logged
//! with their machine times, and `--nic replay,file=FILE[,model=...][,mac=...]` plays them
//! back at the same times to a repeat of the run, which then runs as recorded on the
//! virtual clock (`rx86_devices::net::replay`). Without `--nic` the PC has no network card; each `--nic` adds one, with a
//! backend of its own (up to four). Cards without `mac=` are numbered as QEMU numbers them:
//! 52:54:00:12:34:56, then :57, ..., skipping addresses other cards were given.

use rx86_core::time::Clock;
use rx86_devices::net::replay::{RecordingBackend, ReplayBackend};
use rx86_devices::net::tap::{valid_ifname, TapNet};
use rx86_devices::net::{
    host, HostForward, NetBackend, NetworkCard, RxOutcome, UserNet, UserNetConfig, DEFAULT_GUEST_MAC,
};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest host-time wait for network traffic in one idle turn of a virtual-clock machine.
const MAX_IDLE_WAIT: Duration = Duration::from_millis(10);

/// The NIC models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NicModel {
    /// Intel 82540EM.
    E1000,
    /// A virtio network card on the PCI bus (legacy interface).
    VirtioNet,
    /// A Realtek RTL8029AS, the NE2000 on PCI.
    Ne2kPci,
}

impl NicModel {
    /// The model named by QEMU's `model=` spellings.
    fn parse(name: &str) -> Option<Self> {
        match name {
            "e1000" | "82540em" => Some(NicModel::E1000),
            "virtio-net-pci" | "virtio-net" | "virtio" => Some(NicModel::VirtioNet),
            "ne2k_pci" | "ne2k-pci" | "rtl8029" => Some(NicModel::Ne2kPci),
            _ => None,
        }
    }
}

/// What is at the far end of a NIC's cable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendKind {
    /// The user-mode NAT (`user`).
    User {
        /// Cut outbound traffic (`restrict=on`).
        restrict: bool,
        /// Host forwards.
        host_forwards: Vec<HostForward>,
    },
    /// A host TAP interface (`tap,ifname=NAME`).
    Tap {
        /// The interface's name.
        ifname: String,
    },
    /// A log written by `record=FILE`, played back (`replay,file=FILE`).
    Replay {
        /// The log.
        file: PathBuf,
    },
}

/// A NIC and its backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicConfig {
    /// The card.
    pub model: NicModel,
    /// Its MAC address (`None`: the next of QEMU's defaults, see [`nic_macs`]).
    pub mac: Option<[u8; 6]>,
    /// The backend.
    pub backend: BackendKind,
    /// Capture file.
    pub pcap: Option<PathBuf>,
    /// Log of the frames received, with their machine times, for a replay (`record=FILE`).
    pub record: Option<PathBuf>,
}

/// What `--nic` said: a NIC, or explicitly none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicArg(pub Option<NicConfig>);

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let bytes: Vec<u8> = s.split(':').map(|b| u8::from_str_radix(b, 16).ok()).collect::<Option<_>>()?;
    let mac: [u8; 6] = bytes.try_into().ok()?;
    (mac[0] & 1 == 0).then_some(mac)
}

/// Parses an on/off switch.
fn parse_switch(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "on" | "yes" | "y" => Ok(true),
        "off" | "no" | "n" => Ok(false),
        _ => Err(format!("--nic: {key}={value}: expected on or off")),
    }
}

/// Parses a `--nic` value.
pub fn parse_nic(s: &str) -> Result<NicArg, String> {
    let mut parts = s.split(',');
    #[derive(PartialEq)]
    enum Kind {
        User,
        Tap,
        Replay,
    }
    let kind = match parts.next() {
        Some("none") if s == "none" => return Ok(NicArg(None)),
        Some("user") => Kind::User,
        Some("tap") => Kind::Tap,
        Some("replay") => Kind::Replay,
        Some("bridge" | "socket") => return Err(format!("--nic {s}: only the user and tap backends exist yet")),
        _ => {
            return Err(format!(
            "--nic {s}: expected user[,model=e1000|virtio-net-pci|ne2k_pci][,hostfwd=...][,restrict=on][,pcap=FILE], \
                 tap,ifname=NAME[,model=...], replay,file=FILE[,model=...] or none"
        ))
        }
    };
    let (mut model, mut mac, mut pcap, mut record) = (NicModel::E1000, None, None, None);
    let (mut restrict, mut host_forwards, mut ifname, mut file) = (false, vec![], None, None);
    let tap = kind == Kind::Tap;
    for part in parts {
        let (key, value) = part.split_once('=').ok_or_else(|| format!("--nic: '{part}' is not KEY=VALUE"))?;
        match (key, tap) {
            ("record", _) if kind == Kind::Replay => {
                return Err("--nic replay: record= would log the log being replayed; record the original run".into())
            }
            ("record", _) if !value.is_empty() => record = Some(PathBuf::from(value)),
            ("file", _) if kind == Kind::Replay && !value.is_empty() => file = Some(PathBuf::from(value)),
            ("hostfwd" | "restrict" | "ifname", _) if kind == Kind::Replay => {
                return Err(format!("--nic replay: {key}= has no meaning; the log is the whole network"))
            }
            ("model", _) => {
                model = NicModel::parse(value).ok_or_else(|| {
                    format!("--nic: model '{value}' is not supported (e1000, virtio-net-pci and ne2k_pci are)")
                })?
            }
            ("mac", _) => {
                mac = Some(parse_mac(value).ok_or_else(|| format!("--nic: '{value}' is not a unicast MAC address"))?)
            }
            ("pcap", _) if !value.is_empty() => pcap = Some(PathBuf::from(value)),
            ("hostfwd", false) => host_forwards.push(HostForward::parse(value)?),
            ("restrict", false) => restrict = parse_switch(key, value)?,
            ("ifname", true) if valid_ifname(value) => ifname = Some(value.to_string()),
            ("ifname", true) => {
                return Err(format!(
                    "--nic: ifname={value}: not an interface name (1 to 15 characters, none of '/', ':' or white space)"
                ))
            }
            // rx86 never runs interface scripts; QEMU's way of saying so is accepted.
            ("script" | "downscript", true) if value == "no" => {}
            ("script" | "downscript", true) => {
                return Err(format!(
                    "--nic: {key}={value}: rx86 runs no scripts; configure the interface with ip (or say {key}=no)"
                ))
            }
            ("hostfwd" | "restrict", true) => {
                return Err(format!(
                    "--nic: {key}= belongs to the user backend; a tap interface is configured on the host"
                ))
            }
            _ => return Err(format!("--nic: unknown option '{part}'")),
        }
    }
    let backend = match kind {
        Kind::Tap => {
            BackendKind::Tap { ifname: ifname.ok_or("--nic tap: ifname=NAME is required (the host's TAP interface)")? }
        }
        Kind::Replay if pcap.is_some() => {
            return Err("--nic replay: pcap= is not written by a replay; capture the recorded run instead".into())
        }
        Kind::Replay => {
            BackendKind::Replay { file: file.ok_or("--nic replay: file=FILE is required (a record=FILE log)")? }
        }
        Kind::User => BackendKind::User { restrict, host_forwards },
    };
    Ok(NicArg(Some(NicConfig { model, mac, backend, pcap, record })))
}

/// Each card's MAC address: the one it was given, or the lowest of QEMU's defaults
/// (52:54:00:12:34:56 + n) that no other card has.
pub fn nic_macs(nics: &[NicConfig]) -> Vec<[u8; 6]> {
    let mut taken: Vec<[u8; 6]> = nics.iter().filter_map(|n| n.mac).collect();
    let mut macs = Vec::with_capacity(nics.len());
    for nic in nics {
        let mac = nic.mac.unwrap_or_else(|| {
            let free = (0..=u8::MAX - DEFAULT_GUEST_MAC[5])
                .map(|n| {
                    let mut mac = DEFAULT_GUEST_MAC;
                    mac[5] += n;
                    mac
                })
                .find(|mac| !taken.contains(mac))
                .unwrap_or(DEFAULT_GUEST_MAC);
            taken.push(free);
            free
        });
        macs.push(mac);
    }
    macs
}

/// Opens the backend for `nic`: the NAT (its host forwards listen, DNS goes to the host's
/// resolver) or the TAP interface, with its capture file created.
pub fn open_backend(nic: &NicConfig) -> Result<Box<dyn NetBackend>, String> {
    let backend = open_plain_backend(nic)?;
    match &nic.record {
        Some(path) => Ok(Box::new(
            RecordingBackend::new(backend, path).map_err(|e| format!("--nic record={}: {e}", path.display()))?,
        )),
        None => Ok(backend),
    }
}

/// The backend itself, without a recording.
fn open_plain_backend(nic: &NicConfig) -> Result<Box<dyn NetBackend>, String> {
    match &nic.backend {
        BackendKind::User { restrict, host_forwards } => {
            let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            let config = UserNetConfig {
                restrict: *restrict,
                host_forwards: host_forwards.clone(),
                dns_resolver: host::resolver_from(&resolv),
                pcap: nic.pcap.clone(),
            };
            Ok(Box::new(UserNet::new(config).map_err(|e| e.to_string())?))
        }
        BackendKind::Tap { ifname } => {
            Ok(Box::new(TapNet::open(ifname, nic.pcap.as_deref()).map_err(|e| e.to_string())?))
        }
        BackendKind::Replay { file } => Ok(Box::new(ReplayBackend::open(file).map_err(|e| e.to_string())?)),
    }
}

/// A NIC as the board shares it between the PCI bus and the network glue.
pub type SharedCard = Arc<Mutex<dyn NetworkCard>>;

/// One NIC and the backend behind it.
struct Link {
    nic: SharedCard,
    backend: Box<dyn NetBackend>,
}

/// The NICs on the board, each with its own backend (as each of QEMU's `-nic user` has its
/// own slirp network).
pub struct Network {
    links: Vec<Link>,
    clock: Clock,
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Link {
    /// Moves frames both ways; the number of frames offered to the guest (delivered or
    /// dropped by the card).
    fn poll(&mut self, now_ns: u64) -> usize {
        let sent = lock(&self.nic).take_tx_frames();
        for frame in &sent {
            self.backend.transmit(frame, now_ns);
        }
        self.backend.poll(now_ns);
        let mut nic = lock(&self.nic);
        let mut taken = 0;
        while let Some(frame) = self.backend.peek_for_guest() {
            if nic.receive(frame) == RxOutcome::NoRoom {
                break;
            }
            self.backend.pop_for_guest(now_ns);
            taken += 1;
        }
        taken
    }

    fn tx_pending(&self) -> bool {
        lock(&self.nic).has_tx_frames()
    }
}

impl Network {
    /// Joins each NIC to its backend; `clock` stamps the frames (TCP timers, the capture).
    pub fn new(links: Vec<(SharedCard, Box<dyn NetBackend>)>, clock: Clock) -> Self {
        Network { links: links.into_iter().map(|(nic, backend)| Link { nic, backend }).collect(), clock }
    }

    /// One turn: frames the guest sent go to the backends, they take host traffic, and frames
    /// for the guest go into its receive rings as far as they have room (the rest wait).
    pub fn poll(&mut self) {
        let now_ns = self.clock.now_ns();
        self.links.iter_mut().for_each(|l| {
            l.poll(now_ns);
        });
    }

    /// True while host traffic may still come.
    pub fn host_active(&self) -> bool {
        self.links.iter().any(|l| l.backend.host_active())
    }

    /// The earliest machine time at which a backend has a frame for the guest without host
    /// traffic (a replay's next frame).
    pub fn next_event(&self) -> Option<u64> {
        self.links.iter().filter_map(|l| l.backend.next_event()).min()
    }

    /// True when the guest sent frames the next turn hands to a backend.
    pub fn tx_pending(&self) -> bool {
        self.links.iter().any(Link::tx_pending)
    }

    /// For a halted guest: true at once when the guest has sent frames the next turn will
    /// hand to a backend (an ACK that reopens a window: the host's data may already be
    /// waiting in the NAT), or when frames a backend held for the guest fit its card now (the
    /// guest refilled its ring before it halted); they are delivered here, at the current
    /// instruction. Otherwise waits (host time) up to `virtual_gap` nanoseconds (capped at
    /// 10 ms) for host traffic while a backend expects some (a NAT with something open, a TAP
    /// interface) and holds nothing the card has no room for (then only the guest can make
    /// progress); true when traffic arrived. With several backends active, the wait watches
    /// the first one; the others' traffic is taken at the next turn.
    pub fn wait(&mut self, virtual_gap: Option<u64>) -> bool {
        if self.tx_pending() {
            return true;
        }
        let now_ns = self.clock.now_ns();
        if self.links.iter_mut().map(|l| l.poll(now_ns)).sum::<usize>() > 0 {
            return true;
        }
        let Some(active) = self.links.iter().find(|l| l.backend.host_active() && l.backend.peek_for_guest().is_none())
        else {
            return false;
        };
        let gap = virtual_gap.map_or(MAX_IDLE_WAIT, Duration::from_nanos).min(MAX_IDLE_WAIT);
        active.backend.wait(gap)
    }

    /// Lines for the monitor's `info network`.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for link in &self.links {
            lines.push(lock(&link.nic).describe());
            lines.extend(link.backend.describe().into_iter().map(|l| format!("  {l}")));
        }
        lines
    }

    /// Gives the backends back (a reset keeps them: listeners, TAP interfaces and captures
    /// stay open).
    pub fn into_backends(self) -> Vec<Box<dyn NetBackend>> {
        self.links.into_iter().map(|l| l.backend).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nic(spec: &str) -> NicConfig {
        match parse_nic(spec) {
            Ok(NicArg(Some(n))) => n,
            other => panic!("{spec}: {other:?}"),
        }
    }

    #[test]
    fn nic_options() {
        assert_eq!(parse_nic("none"), Ok(NicArg(None)));
        let n = nic("user,model=e1000,hostfwd=tcp:127.0.0.1:2222-:22,restrict=on,pcap=x.pcap");
        assert_eq!(n.model, NicModel::E1000);
        let BackendKind::User { restrict, host_forwards } = &n.backend else { panic!("user") };
        assert!(restrict);
        assert_eq!(host_forwards[0].guest_port, 22);
        assert_eq!(n.pcap, Some(PathBuf::from("x.pcap")));
        assert_eq!(nic("user,mac=52:54:00:aa:bb:cc").mac, Some([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc]));
        assert_eq!(nic("user").mac, None);
        assert_eq!(nic("user,model=virtio-net-pci").model, NicModel::VirtioNet);
        for bad in ["user,model=rtl8139", "user,restrict=maybe", "user,x", "user,mac=01:00:00:00:00:00", "none,x"] {
            assert!(parse_nic(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tap_options() {
        let n = nic("tap,ifname=tap0,model=virtio-net-pci,mac=52:54:00:00:00:01,script=no,downscript=no,pcap=t.pcap");
        assert_eq!(n.backend, BackendKind::Tap { ifname: "tap0".into() });
        assert_eq!((n.model, n.mac), (NicModel::VirtioNet, Some([0x52, 0x54, 0, 0, 0, 1])));
        assert_eq!(n.pcap, Some(PathBuf::from("t.pcap")));
        for (bad, why) in [
            ("tap", "ifname=NAME is required"),
            ("tap,ifname=", "not an interface name"),
            ("tap,ifname=much-too-long-name", "not an interface name"),
            ("tap,ifname=a/b", "not an interface name"),
            ("tap,ifname=tap0,hostfwd=tcp::2222-:22", "belongs to the user backend"),
            ("tap,ifname=tap0,restrict=on", "belongs to the user backend"),
            ("tap,ifname=tap0,script=/etc/qemu-ifup", "runs no scripts"),
            ("user,ifname=tap0", "unknown option"),
            ("bridge,br=br0", "only the user and tap backends"),
        ] {
            let e = parse_nic(bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn record_and_replay_options() {
        assert_eq!(nic("user,record=a.rr").record, Some(PathBuf::from("a.rr")));
        assert_eq!(nic("tap,ifname=t0,record=a.rr").record, Some(PathBuf::from("a.rr")));
        let n = nic("replay,file=a.rr,model=virtio-net-pci");
        assert_eq!((n.backend, n.model), (BackendKind::Replay { file: "a.rr".into() }, NicModel::VirtioNet));
        for (bad, why) in [
            ("replay", "file=FILE is required"),
            ("replay,file=a.rr,record=b.rr", "record the original run"),
            ("replay,file=a.rr,hostfwd=tcp::2222-:22", "has no meaning"),
            ("replay,file=a.rr,pcap=c.pcap", "capture the recorded run"),
            ("user,file=a.rr", "unknown option"),
        ] {
            let e = parse_nic(bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
        let e = open_backend(&nic("replay,file=/nonexistent/a.rr")).err().expect("no such log");
        assert!(e.contains("network replay log /nonexistent/a.rr"), "{e}");
    }

    #[test]
    fn default_macs_are_numbered_as_qemu_numbers_them() {
        let mac = |last: u8| [0x52, 0x54, 0x00, 0x12, 0x34, last];
        let nics: Vec<NicConfig> = ["user", "user,model=ne2k_pci", "tap,ifname=t0"].map(nic).into();
        assert_eq!(nic_macs(&nics), [mac(0x56), mac(0x57), mac(0x58)]);
        // A given address is kept, and the defaults skip it.
        let nics: Vec<NicConfig> =
            ["user", "user,mac=52:54:00:12:34:56", "user", "user,mac=52:54:00:aa:bb:cc"].map(nic).into();
        assert_eq!(nic_macs(&nics), [mac(0x57), mac(0x56), mac(0x58), [0x52, 0x54, 0, 0xaa, 0xbb, 0xcc]]);
    }

    #[test]
    fn a_tap_that_cannot_be_opened_is_a_clear_error() {
        let e = open_backend(&nic("tap,ifname=bad%d%d%d%d%d%d")).err().expect("no such interface");
        assert!(e.starts_with("tap: "), "{e}");
    }
}
