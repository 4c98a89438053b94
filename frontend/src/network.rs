//! The network as the user asks for it (`--nic`), and the board's side of it: the NIC on the
//! PCI bus and the user-mode NAT behind it, joined at machine-loop turns.
//!
//! `--nic user[,model=e1000|virtio-net-pci|ne2k_pci][,mac=52:54:00:12:34:56]
//! [,hostfwd=tcp:127.0.0.1:HOSTPORT-:GUESTPORT][,restrict=on|off][,pcap=FILE]` or `--nic none`
//! (QEMU's spellings). Without `--nic` the PC has no network card; each `--nic` adds one, with
//! a NAT of its own (up to four).

use rx86_core::time::Clock;
use rx86_devices::net::{host, HostForward, NetworkCard, RxOutcome, UserNet, UserNetConfig, DEFAULT_GUEST_MAC};
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

/// A NIC with a user-mode NAT behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicConfig {
    /// The card.
    pub model: NicModel,
    /// Its MAC address.
    pub mac: [u8; 6],
    /// Cut outbound traffic (`restrict=on`).
    pub restrict: bool,
    /// Host forwards.
    pub host_forwards: Vec<HostForward>,
    /// Capture file.
    pub pcap: Option<PathBuf>,
}

/// What `--nic` said: a NIC, or explicitly none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicArg(pub Option<NicConfig>);

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let bytes: Vec<u8> = s.split(':').map(|b| u8::from_str_radix(b, 16).ok()).collect::<Option<_>>()?;
    let mac: [u8; 6] = bytes.try_into().ok()?;
    (mac[0] & 1 == 0).then_some(mac)
}

/// Parses a `--nic` value.
pub fn parse_nic(s: &str) -> Result<NicArg, String> {
    let mut parts = s.split(',');
    match parts.next() {
        Some("none") if s == "none" => return Ok(NicArg(None)),
        Some("user") => {}
        Some("tap" | "bridge" | "socket") => return Err(format!("--nic {s}: only the user backend exists yet")),
        _ => {
            return Err(format!(
                "--nic {s}: expected user[,model=e1000|virtio-net-pci|ne2k_pci][,hostfwd=...][,restrict=on][,pcap=FILE] or none"
            ))
        }
    }
    let mut nic = NicConfig {
        model: NicModel::E1000,
        mac: DEFAULT_GUEST_MAC,
        restrict: false,
        host_forwards: vec![],
        pcap: None,
    };
    for part in parts {
        let (key, value) = part.split_once('=').ok_or_else(|| format!("--nic: '{part}' is not KEY=VALUE"))?;
        match key {
            "model" => {
                nic.model = NicModel::parse(value).ok_or_else(|| {
                    format!("--nic: model '{value}' is not supported (e1000, virtio-net-pci and ne2k_pci are)")
                })?
            }
            "mac" => {
                nic.mac = parse_mac(value).ok_or_else(|| format!("--nic: '{value}' is not a unicast MAC address"))?
            }
            "hostfwd" => nic.host_forwards.push(HostForward::parse(value)?),
            "restrict" => {
                nic.restrict = match value {
                    "on" | "yes" | "y" => true,
                    "off" | "no" | "n" => false,
                    _ => return Err(format!("--nic: restrict={value}: expected on or off")),
                }
            }
            "pcap" if !value.is_empty() => nic.pcap = Some(PathBuf::from(value)),
            _ => return Err(format!("--nic: unknown option '{part}'")),
        }
    }
    Ok(NicArg(Some(nic)))
}

/// Opens the NAT for `nic`: its host forwards listen, its capture file is created, DNS goes to
/// the host's resolver.
pub fn open_backend(nic: &NicConfig) -> Result<UserNet, String> {
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let config = UserNetConfig {
        restrict: nic.restrict,
        host_forwards: nic.host_forwards.clone(),
        dns_resolver: host::resolver_from(&resolv),
        pcap: nic.pcap.clone(),
    };
    UserNet::new(config).map_err(|e| e.to_string())
}

/// One NIC and the NAT behind it.
struct Link {
    nic: Arc<Mutex<dyn NetworkCard>>,
    nat: UserNet,
}

/// The NICs on the board, each with its own NAT (as each of QEMU's `-nic user` has its own
/// slirp network).
pub struct Network {
    links: Vec<Link>,
    clock: Clock,
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Link {
    fn poll(&mut self, now_ns: u64) {
        let sent = lock(&self.nic).take_tx_frames();
        for frame in &sent {
            self.nat.from_guest(frame, now_ns);
        }
        self.nat.poll(now_ns);
        let mut nic = lock(&self.nic);
        while let Some(frame) = self.nat.peek_for_guest() {
            if nic.receive(frame) == RxOutcome::NoRoom {
                break;
            }
            self.nat.pop_for_guest(now_ns);
        }
    }

    fn tx_pending(&self) -> bool {
        lock(&self.nic).has_tx_frames()
    }
}

impl Network {
    /// Joins each NIC to its NAT; `clock` stamps the frames (TCP timers, the capture).
    pub fn new(links: Vec<(Arc<Mutex<dyn NetworkCard>>, UserNet)>, clock: Clock) -> Self {
        Network { links: links.into_iter().map(|(nic, nat)| Link { nic, nat }).collect(), clock }
    }

    /// One turn: frames the guest sent go to the NATs, the NATs take host traffic, and frames
    /// for the guest go into its receive rings as far as they have room (the rest wait).
    pub fn poll(&mut self) {
        let now_ns = self.clock.now_ns();
        self.links.iter_mut().for_each(|l| l.poll(now_ns));
    }

    /// True while host traffic may still come.
    pub fn host_active(&self) -> bool {
        self.links.iter().any(|l| l.nat.host_active())
    }

    /// True when the guest sent frames the next turn hands to a NAT.
    pub fn tx_pending(&self) -> bool {
        self.links.iter().any(Link::tx_pending)
    }

    /// Waits (host time) up to `virtual_gap` nanoseconds (capped at 10 ms) for host traffic
    /// while a NAT has something open; true when traffic arrived, or at once when the guest
    /// has sent frames the next turn will hand to a NAT (an ACK that reopens a window: the
    /// host's data may already be waiting in the NAT). With several NATs open, the wait
    /// watches the first one; the others' traffic is taken at the next turn.
    pub fn wait(&self, virtual_gap: Option<u64>) -> bool {
        if self.tx_pending() {
            return true;
        }
        let Some(active) = self.links.iter().find(|l| l.nat.host_active()) else { return false };
        let gap = virtual_gap.map_or(MAX_IDLE_WAIT, Duration::from_nanos).min(MAX_IDLE_WAIT);
        active.nat.wait(gap)
    }

    /// Lines for the monitor's `info network`.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for link in &self.links {
            lines.push(lock(&link.nic).describe());
            lines.extend(link.nat.describe().into_iter().map(|l| format!("  {l}")));
        }
        lines
    }

    /// Gives the NATs back (a reset keeps them: their listeners and captures stay open).
    pub fn into_backends(self) -> Vec<UserNet> {
        self.links.into_iter().map(|l| l.nat).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nic_options() {
        assert_eq!(parse_nic("none"), Ok(NicArg(None)));
        let Ok(NicArg(Some(n))) = parse_nic("user,model=e1000,hostfwd=tcp:127.0.0.1:2222-:22,restrict=on,pcap=x.pcap")
        else {
            panic!("a NIC")
        };
        assert_eq!(n.model, NicModel::E1000);
        assert!(n.restrict);
        assert_eq!(n.host_forwards[0].guest_port, 22);
        assert_eq!(n.pcap, Some(PathBuf::from("x.pcap")));
        assert_eq!(
            parse_nic("user,mac=52:54:00:aa:bb:cc").map(|n| n.0.map(|n| n.mac)),
            Ok(Some([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc]))
        );
        assert_eq!(parse_nic("user,model=virtio-net-pci").map(|n| n.0.map(|n| n.model)), Ok(Some(NicModel::VirtioNet)));
        for bad in [
            "tap,ifname=tap0",
            "user,model=rtl8139",
            "user,restrict=maybe",
            "user,x",
            "user,mac=01:00:00:00:00:00",
            "none,x",
        ] {
            assert!(parse_nic(bad).is_err(), "{bad}");
        }
    }
}
