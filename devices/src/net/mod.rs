//! User-mode networking: a NAT between one guest NIC and the host's sockets, needing no
//! privileges (QEMU's `-nic user`, slirp). The virtual network is QEMU's: the guest gets
//! 10.0.2.15 by DHCP, 10.0.2.2 is the gateway and the host (it answers ARP and ICMP echo, and
//! TCP/UDP to it reach the host's 127.0.0.1), 10.0.2.3 forwards DNS to the host's resolver
//! (the first IPv4 `nameserver` of `/etc/resolv.conf`).
//!
//! TCP from the guest is terminated here ([`tcp`]) and relayed over host sockets; UDP goes
//! out through one host socket per flow; host forwards (`hostfwd`) accept on host addresses and
//! open connections to guest ports. `restrict` cuts everything outbound (TCP, UDP, the host
//! itself) and keeps DHCP, ARP, ICMP to the gateway and host forwards. Host I/O runs on helper
//! threads ([`host`]); the NAT takes its results only when the board calls [`UserNet::poll`]
//! from the machine loop, so host traffic enters the guest at instruction boundaries.
//! IPv6 is not carried: the NAT answers router solicitations ([`ndp`]) to say it offers no
//! IPv6 route, and drops the rest. Not modelled yet: ICMP beyond the gateway, IP fragments.

pub mod backend;
mod dhcp;
pub mod host;
pub mod ndp;
mod nic;
pub mod pcap;
pub mod replay;
pub mod tap;
pub mod tcp;
pub mod wire;

pub use backend::NetBackend;
pub use dhcp::{client_message, parse_reply, DhcpConfig, DHCPACK, DHCPDISCOVER, DHCPNAK, DHCPOFFER, DHCPREQUEST};
pub use nic::{NetworkCard, RxOutcome};
pub use tap::{TapError, TapNet};

use host::{Connecting, Listener, UdpFlow, WakeReceiver, Waker};
use pcap::PcapWriter;
use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;
use tcp::{Segment, TcpConnection, TcpState};
use thiserror::Error;
use wire::{
    Arp, Ethernet, IcmpEcho, Ipv4, Tcp, Udp, ARP_REPLY, ARP_REQUEST, BROADCAST_MAC, ETHERTYPE_ARP, ETHERTYPE_IPV4,
    ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, PROTO_ICMP, PROTO_TCP, PROTO_UDP, TCP_ACK, TCP_RST, TCP_SYN,
};

/// The guest's address.
pub const GUEST_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
/// The gateway, which is also the host.
pub const GATEWAY_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
/// The DNS forwarder.
pub const DNS_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);
/// The network's mask.
pub const NETMASK: Ipv4Addr = Ipv4Addr::new(255, 255, 255, 0);
/// The MAC address the NAT answers with (QEMU's).
pub const GATEWAY_MAC: [u8; 6] = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x02];
/// The MAC address QEMU gives its first NIC.
pub const DEFAULT_GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
/// Frames held for the guest before new ones are dropped.
const TO_GUEST_MAX: usize = 4096;
/// A UDP flow unused this long (machine time) is closed.
const UDP_IDLE_NS: u64 = 30_000_000_000;
/// First port the NAT uses as the gateway's end of host-forwarded connections.
const FORWARD_PORT_BASE: u16 = 40_000;
/// The host's loopback, where traffic to the gateway goes.
const HOST_LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A `hostfwd` rule: TCP connections to `host` are forwarded to the guest's `guest_port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostForward {
    /// Host address to listen on.
    pub host: SocketAddrV4,
    /// Guest port to connect to.
    pub guest_port: u16,
}

impl HostForward {
    /// Parses QEMU's `tcp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT` (the protocol may be
    /// omitted; HOSTADDR defaults to 127.0.0.1; GUESTADDR, if given, must be 10.0.2.15).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("hostfwd '{spec}': {why} (expected tcp:127.0.0.1:HOSTPORT-:GUESTPORT)");
        let rest = match spec.split_once(':') {
            Some(("tcp", rest)) => rest,
            Some(("udp", _)) => return Err(bad("UDP forwarding is not supported yet")),
            Some(("", rest)) => rest,
            _ => spec,
        };
        let (host, guest) = rest.split_once('-').ok_or_else(|| bad("no '-' between host and guest"))?;
        let (host_addr, host_port) = host.rsplit_once(':').ok_or_else(|| bad("no host port"))?;
        let (guest_addr, guest_port) = guest.rsplit_once(':').ok_or_else(|| bad("no guest port"))?;
        let host_ip = if host_addr.is_empty() {
            HOST_LOOPBACK
        } else {
            host_addr.parse().map_err(|_| bad("the host address is not an IPv4 address"))?
        };
        if !guest_addr.is_empty() && guest_addr.parse::<Ipv4Addr>() != Ok(GUEST_IP) {
            return Err(bad("the guest address must be 10.0.2.15 or empty"));
        }
        let host_port = host_port.parse().map_err(|_| bad("the host port is not a number"))?;
        let guest_port = guest_port.parse().map_err(|_| bad("the guest port is not a number"))?;
        if guest_port == 0 {
            return Err(bad("the guest port cannot be 0"));
        }
        Ok(HostForward { host: SocketAddrV4::new(host_ip, host_port), guest_port })
    }
}

/// How the NAT is set up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserNetConfig {
    /// Cut all outbound traffic (`restrict=on`).
    pub restrict: bool,
    /// Host forwards.
    pub host_forwards: Vec<HostForward>,
    /// Where DNS queries to 10.0.2.3 go (`None`: they are dropped).
    pub dns_resolver: Option<SocketAddr>,
    /// Capture file (`pcap=FILE`).
    pub pcap: Option<PathBuf>,
}

/// Errors setting the NAT up.
#[derive(Debug, Error)]
pub enum NetError {
    /// A host forward's address cannot be listened on.
    #[error("hostfwd: cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddrV4,
        /// Why.
        source: std::io::Error,
    },
    /// The capture file cannot be created.
    #[error("pcap: cannot create {path}: {source}")]
    Pcap {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

struct UdpEntry {
    guest_port: u16,
    remote: (Ipv4Addr, u16),
    flow: UdpFlow,
    last_ns: u64,
}

/// The NAT.
pub struct UserNet {
    config: UserNetConfig,
    guest_mac: Option<[u8; 6]>,
    to_guest: VecDeque<Vec<u8>>,
    tcp: Vec<TcpConnection>,
    udp: Vec<UdpEntry>,
    listeners: Vec<(Listener, u16)>,
    waker: Waker,
    wake: WakeReceiver,
    pcap: Option<PcapWriter>,
    ip_id: u16,
    next_iss: u32,
    next_forward_port: u16,
}

impl UserNet {
    /// The NAT `config` describes, with its host forwards listening and its capture open.
    pub fn new(config: UserNetConfig) -> Result<Self, NetError> {
        let (waker, wake) = host::wake_channel();
        let mut listeners = Vec::new();
        for fwd in &config.host_forwards {
            let listener = Listener::bind(SocketAddr::V4(fwd.host), waker.clone())
                .map_err(|source| NetError::Listen { addr: fwd.host, source })?;
            listeners.push((listener, fwd.guest_port));
        }
        let pcap = match &config.pcap {
            Some(path) => {
                Some(PcapWriter::create(path).map_err(|source| NetError::Pcap { path: path.clone(), source })?)
            }
            None => None,
        };
        Ok(UserNet {
            config,
            guest_mac: None,
            to_guest: VecDeque::new(),
            tcp: Vec::new(),
            udp: Vec::new(),
            listeners,
            waker,
            wake,
            pcap,
            ip_id: 0,
            next_iss: 0x1000_0000,
            next_forward_port: FORWARD_PORT_BASE,
        })
    }

    /// The addresses the host forwards listen on (with the ports the system picked for 0).
    pub fn forward_addresses(&self) -> Vec<SocketAddr> {
        self.listeners.iter().map(|(l, _)| l.local_addr()).collect()
    }

    fn capture(&mut self, now_ns: u64, frame: &[u8]) {
        if let Some(p) = &mut self.pcap {
            if let Err(e) = p.record(now_ns, frame) {
                log::error!("pcap: {e}; capture stopped");
                self.pcap = None;
            }
        }
    }

    /// A frame the guest sent (Ethernet header on, no CRC).
    pub fn from_guest(&mut self, frame: &[u8], now_ns: u64) {
        self.capture(now_ns, frame);
        let Some(eth) = Ethernet::parse(frame) else { return };
        if eth.src[0] & 1 == 0 {
            self.guest_mac = Some(eth.src);
        }
        match eth.ethertype {
            ETHERTYPE_ARP => self.arp(eth.payload),
            ETHERTYPE_IPV4 => {
                let Some(ip) = Ipv4::parse(eth.payload) else { return };
                match ip.protocol {
                    PROTO_UDP => self.udp_from_guest(&ip, now_ns),
                    PROTO_TCP => self.tcp_from_guest(&ip, now_ns),
                    PROTO_ICMP => self.icmp(&ip),
                    _ => {}
                }
            }
            ndp::ETHERTYPE_IPV6 => {
                if let Some(advertisement) = ndp::answer(&eth, GATEWAY_MAC) {
                    self.push_frame(advertisement);
                }
            }
            _ => {}
        }
    }

    fn push_frame(&mut self, frame: Vec<u8>) {
        if self.to_guest.len() < TO_GUEST_MAX {
            self.to_guest.push_back(frame);
        } else {
            log::debug!("net: guest receive queue full; frame dropped");
        }
    }

    /// Sends an IPv4 packet to the guest (dropped until the guest's MAC is known).
    fn send_ip(&mut self, src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload: &[u8]) {
        let Some(mac) = self.guest_mac else { return };
        self.ip_id = self.ip_id.wrapping_add(1);
        let packet = wire::ipv4(src, dst, protocol, self.ip_id, payload);
        self.push_frame(wire::ethernet(mac, GATEWAY_MAC, ETHERTYPE_IPV4, &packet));
    }

    fn arp(&mut self, payload: &[u8]) {
        let Some(arp) = Arp::parse(payload) else { return };
        if arp.operation != ARP_REQUEST || !(arp.target_ip == GATEWAY_IP || arp.target_ip == DNS_IP) {
            return;
        }
        let reply = Arp {
            operation: ARP_REPLY,
            sender_mac: GATEWAY_MAC,
            sender_ip: arp.target_ip,
            target_mac: arp.sender_mac,
            target_ip: arp.sender_ip,
        };
        self.push_frame(wire::ethernet(arp.sender_mac, GATEWAY_MAC, ETHERTYPE_ARP, &reply.build()));
    }

    fn icmp(&mut self, ip: &Ipv4<'_>) {
        let Some(echo) = IcmpEcho::parse(ip.payload) else { return };
        if echo.kind != ICMP_ECHO_REQUEST || !(ip.dst == GATEWAY_IP || ip.dst == DNS_IP) {
            return;
        }
        let reply = IcmpEcho { kind: ICMP_ECHO_REPLY, ..echo }.build();
        self.send_ip(ip.dst, ip.src, PROTO_ICMP, &reply);
    }

    /// Where traffic the guest sends to `ip:port` goes on the host, if anywhere.
    fn host_address(&self, ip: Ipv4Addr, port: u16, protocol: u8) -> Option<SocketAddr> {
        if self.config.restrict {
            return None;
        }
        if ip == GATEWAY_IP {
            return Some(SocketAddr::from((HOST_LOOPBACK, port)));
        }
        if ip == DNS_IP {
            return (protocol == PROTO_UDP && port == 53).then_some(self.config.dns_resolver).flatten();
        }
        let private_net = ip.octets()[..3] == GUEST_IP.octets()[..3];
        if private_net || ip.is_broadcast() || ip.is_multicast() || ip.is_unspecified() || ip.is_loopback() {
            return None;
        }
        Some(SocketAddr::from((ip, port)))
    }

    fn udp_from_guest(&mut self, ip: &Ipv4<'_>, now_ns: u64) {
        let Some(udp) = Udp::parse(ip.src, ip.dst, ip.payload) else { return };
        if udp.dst_port == dhcp::DHCP_SERVER_PORT {
            self.dhcp(udp.payload);
            return;
        }
        let remote = (ip.dst, udp.dst_port);
        if let Some(entry) = self.udp.iter_mut().find(|e| e.guest_port == udp.src_port && e.remote == remote) {
            entry.flow.send(udp.payload);
            entry.last_ns = now_ns;
            return;
        }
        let Some(addr) = self.host_address(ip.dst, udp.dst_port, PROTO_UDP) else { return };
        match UdpFlow::open(addr, self.waker.clone()) {
            Ok(flow) => {
                flow.send(udp.payload);
                self.udp.push(UdpEntry { guest_port: udp.src_port, remote, flow, last_ns: now_ns });
            }
            Err(e) => log::debug!("net: UDP to {addr}: {e}"),
        }
    }

    fn dhcp(&mut self, payload: &[u8]) {
        let Some(request) = dhcp::DhcpRequest::parse(payload) else { return };
        let config = DhcpConfig { guest: GUEST_IP, gateway: GATEWAY_IP, dns: DNS_IP, netmask: NETMASK };
        let Some(reply) = dhcp::reply(&config, &request) else { return };
        let datagram =
            wire::udp(GATEWAY_IP, dhcp::DHCP_SERVER_PORT, Ipv4Addr::BROADCAST, dhcp::DHCP_CLIENT_PORT, &reply);
        self.ip_id = self.ip_id.wrapping_add(1);
        let packet = wire::ipv4(GATEWAY_IP, Ipv4Addr::BROADCAST, PROTO_UDP, self.ip_id, &datagram);
        self.push_frame(wire::ethernet(BROADCAST_MAC, GATEWAY_MAC, ETHERTYPE_IPV4, &packet));
    }

    fn tcp_from_guest(&mut self, ip: &Ipv4<'_>, now_ns: u64) {
        let Some(seg) = Tcp::parse(ip.src, ip.dst, ip.payload) else { return };
        let guest = (ip.src, seg.src_port);
        let remote = (ip.dst, seg.dst_port);
        let mut out = Vec::new();
        if let Some(conn) = self.tcp.iter_mut().find(|c| c.guest == guest && c.remote == remote) {
            conn.from_guest(&seg, now_ns, &mut out);
        } else if seg.flags & (TCP_SYN | TCP_ACK | TCP_RST) == TCP_SYN {
            match self.host_address(ip.dst, seg.dst_port, PROTO_TCP) {
                Some(addr) => {
                    let connecting = Connecting::start(addr, self.waker.clone());
                    let iss = self.next_iss();
                    let conn = TcpConnection::from_guest_syn(guest, remote, &seg, iss, connecting, self.waker.clone());
                    self.tcp.push(conn);
                }
                None => out.push(refusal(guest, remote, &seg)),
            }
        } else if seg.flags & TCP_RST == 0 {
            out.push(refusal(guest, remote, &seg));
        }
        self.send_segments(out);
    }

    fn next_iss(&mut self) -> u32 {
        self.next_iss = self.next_iss.wrapping_add(0x0100_0000);
        self.next_iss
    }

    fn send_segments(&mut self, segments: Vec<Segment>) {
        for (header, payload) in segments {
            let bytes = wire::tcp(&header, &payload);
            self.send_ip(header.src.0, header.dst.0, PROTO_TCP, &bytes);
        }
    }

    /// Takes what the host sent since the last call: accepted forwards, connection results,
    /// data, datagrams; sends what TCP windows allow; retransmits; closes idle flows.
    pub fn poll(&mut self, now_ns: u64) {
        let mut accepted = Vec::new();
        for (listener, guest_port) in &self.listeners {
            while let Some(stream) = listener.try_accept() {
                accepted.push((stream, *guest_port));
            }
        }
        for (stream, guest_port) in accepted {
            let port = self.next_forward_port;
            self.next_forward_port = self.next_forward_port.checked_add(1).unwrap_or(FORWARD_PORT_BASE);
            let iss = self.next_iss();
            match TcpConnection::from_host((GUEST_IP, guest_port), (GATEWAY_IP, port), stream, iss, self.waker.clone())
            {
                Ok(conn) => self.tcp.push(conn),
                Err(e) => log::debug!("net: hostfwd connection: {e}"),
            }
        }
        let mut out = Vec::new();
        for conn in &mut self.tcp {
            conn.poll(now_ns, &mut out);
        }
        self.tcp.retain(|c| c.state() != TcpState::Closed);
        self.send_segments(out);
        let mut datagrams = Vec::new();
        for e in &mut self.udp {
            while let Some(d) = e.flow.try_recv() {
                e.last_ns = now_ns;
                datagrams.push((e.remote, e.guest_port, d));
            }
        }
        for ((ip, port), guest_port, d) in datagrams {
            let datagram = wire::udp(ip, port, GUEST_IP, guest_port, &d);
            self.send_ip(ip, GUEST_IP, PROTO_UDP, &datagram);
        }
        self.udp.retain(|e| now_ns.saturating_sub(e.last_ns) < UDP_IDLE_NS);
        if let Some(p) = &mut self.pcap {
            let _ = p.flush();
        }
    }

    /// The next frame for the guest, if any.
    pub fn peek_for_guest(&self) -> Option<&[u8]> {
        self.to_guest.front().map(Vec::as_slice)
    }

    /// Removes the frame [`Self::peek_for_guest`] returned: it went onto the wire at `now_ns`.
    pub fn pop_for_guest(&mut self, now_ns: u64) {
        if let Some(frame) = self.to_guest.pop_front() {
            self.capture(now_ns, &frame);
        }
    }

    /// True while host traffic may arrive for the guest (connections or flows open), so the
    /// machine should keep taking turns.
    pub fn host_active(&self) -> bool {
        self.tcp.iter().any(TcpConnection::host_active) || !self.udp.is_empty() || !self.listeners.is_empty()
    }

    /// Waits at most `timeout` (host time) for host traffic; true when some arrived.
    pub fn wait(&self, timeout: Duration) -> bool {
        self.wake.wait(timeout)
    }

    /// Lines for `info network`: the NAT's connections and flows.
    pub fn describe(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.tcp.iter().map(TcpConnection::describe).collect();
        for e in &self.udp {
            lines.push(format!("udp {GUEST_IP}:{} -> {}:{}", e.guest_port, e.remote.0, e.remote.1));
        }
        for (l, port) in &self.listeners {
            lines.push(format!("hostfwd tcp {} -> {GUEST_IP}:{port}", l.local_addr()));
        }
        lines
    }
}

impl NetBackend for UserNet {
    fn transmit(&mut self, frame: &[u8], now_ns: u64) {
        UserNet::from_guest(self, frame, now_ns);
    }
    fn poll(&mut self, now_ns: u64) {
        UserNet::poll(self, now_ns);
    }
    fn peek_for_guest(&self) -> Option<&[u8]> {
        UserNet::peek_for_guest(self)
    }
    fn pop_for_guest(&mut self, now_ns: u64) {
        UserNet::pop_for_guest(self, now_ns);
    }
    fn host_active(&self) -> bool {
        UserNet::host_active(self)
    }
    fn wait(&self, timeout: Duration) -> bool {
        UserNet::wait(self, timeout)
    }
    fn describe(&self) -> Vec<String> {
        UserNet::describe(self)
    }
}

/// The RST|ACK that refuses a segment for no connection (RFC 793, "reset generation").
fn refusal(guest: (Ipv4Addr, u16), remote: (Ipv4Addr, u16), seg: &Tcp<'_>) -> Segment {
    let mut len = seg.payload.len() as u32;
    len += u32::from(seg.flags & TCP_SYN != 0) + u32::from(seg.flags & wire::TCP_FIN != 0);
    let (seq, flags) = if seg.flags & TCP_ACK != 0 { (seg.ack, TCP_RST) } else { (0, TCP_RST | TCP_ACK) };
    let header =
        wire::TcpHeader { src: remote, dst: guest, seq, ack: seg.seq.wrapping_add(len), flags, window: 0, mss: None };
    (header, Vec::new())
}

#[cfg(test)]
mod tests;
