use super::wire::*;
use super::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

const GUEST_MAC: [u8; 6] = DEFAULT_GUEST_MAC;

fn nat(config: UserNetConfig) -> UserNet {
    UserNet::new(config).unwrap()
}

fn drain(net: &mut UserNet) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    while let Some(f) = net.peek_for_guest() {
        frames.push(f.to_vec());
        net.pop_for_guest(0);
    }
    frames
}

fn ip_frame(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload: &[u8]) -> Vec<u8> {
    ethernet(GATEWAY_MAC, GUEST_MAC, ETHERTYPE_IPV4, &ipv4(src, dst, protocol, 1, payload))
}

fn dhcp_frame(message_type: u8, requested: Option<Ipv4Addr>) -> Vec<u8> {
    let msg = client_message(message_type, 0x1234_5678, GUEST_MAC, requested);
    let datagram = udp(Ipv4Addr::UNSPECIFIED, 68, Ipv4Addr::BROADCAST, 67, &msg);
    ethernet(
        BROADCAST_MAC,
        GUEST_MAC,
        ETHERTYPE_IPV4,
        &ipv4(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, PROTO_UDP, 1, &datagram),
    )
}

fn dhcp_answer(frame: &[u8]) -> (u8, Ipv4Addr) {
    let eth = Ethernet::parse(frame).unwrap();
    let ip = Ipv4::parse(eth.payload).unwrap();
    assert_eq!((ip.src, ip.dst), (GATEWAY_IP, Ipv4Addr::BROADCAST));
    let u = Udp::parse(ip.src, ip.dst, ip.payload).unwrap();
    assert_eq!((u.src_port, u.dst_port), (67, 68));
    parse_reply(u.payload).unwrap()
}

#[test]
fn arp_for_the_gateway_is_answered() {
    let mut net = nat(UserNetConfig::default());
    let request = Arp {
        operation: ARP_REQUEST,
        sender_mac: GUEST_MAC,
        sender_ip: GUEST_IP,
        target_mac: [0; 6],
        target_ip: GATEWAY_IP,
    };
    net.from_guest(&ethernet(BROADCAST_MAC, GUEST_MAC, ETHERTYPE_ARP, &request.build()), 0);
    let frames = drain(&mut net);
    assert_eq!(frames.len(), 1);
    let eth = Ethernet::parse(&frames[0]).unwrap();
    assert_eq!((eth.dst, eth.src, eth.ethertype), (GUEST_MAC, GATEWAY_MAC, ETHERTYPE_ARP));
    let reply = Arp::parse(eth.payload).unwrap();
    assert_eq!(reply.operation, ARP_REPLY);
    assert_eq!((reply.sender_mac, reply.sender_ip), (GATEWAY_MAC, GATEWAY_IP));
    assert_eq!((reply.target_mac, reply.target_ip), (GUEST_MAC, GUEST_IP));
    // Nobody answers for other addresses.
    let other = Arp { target_ip: Ipv4Addr::new(10, 0, 2, 99), ..request };
    net.from_guest(&ethernet(BROADCAST_MAC, GUEST_MAC, ETHERTYPE_ARP, &other.build()), 0);
    assert!(drain(&mut net).is_empty());
}

#[test]
fn dhcp_offers_and_acknowledges_the_guest_address() {
    let mut net = nat(UserNetConfig { restrict: true, ..Default::default() });
    net.from_guest(&dhcp_frame(DHCPDISCOVER, None), 0);
    let frames = drain(&mut net);
    assert_eq!(frames.len(), 1);
    assert_eq!(dhcp_answer(&frames[0]), (DHCPOFFER, GUEST_IP), "DHCP works under restrict=on");
    net.from_guest(&dhcp_frame(DHCPREQUEST, Some(GUEST_IP)), 0);
    let frames = drain(&mut net);
    assert_eq!(dhcp_answer(&frames[0]), (DHCPACK, GUEST_IP));
    net.from_guest(&dhcp_frame(DHCPREQUEST, Some(Ipv4Addr::new(10, 0, 2, 77))), 0);
    assert_eq!(dhcp_answer(&drain(&mut net)[0]).0, DHCPNAK);
}

#[test]
fn icmp_echo_to_the_gateway() {
    let mut net = nat(UserNetConfig::default());
    let ping = IcmpEcho { kind: ICMP_ECHO_REQUEST, id: 0x42, seq: 7, payload: b"rx86 ping" }.build();
    net.from_guest(&ip_frame(GUEST_IP, GATEWAY_IP, PROTO_ICMP, &ping), 0);
    let frames = drain(&mut net);
    assert_eq!(frames.len(), 1);
    let ip = Ipv4::parse(Ethernet::parse(&frames[0]).unwrap().payload).unwrap();
    assert_eq!((ip.src, ip.dst), (GATEWAY_IP, GUEST_IP));
    let echo = IcmpEcho::parse(ip.payload).unwrap();
    assert_eq!((echo.kind, echo.id, echo.seq, echo.payload), (ICMP_ECHO_REPLY, 0x42, 7, &b"rx86 ping"[..]));
}

/// The guest's side of a TCP connection, for driving the NAT.
struct GuestTcp {
    port: u16,
    remote: (Ipv4Addr, u16),
    seq: u32,
    ack: u32,
    received: Vec<u8>,
    fin: bool,
}

impl GuestTcp {
    fn send(&mut self, net: &mut UserNet, flags: u8, payload: &[u8], now: u64) {
        let h = TcpHeader {
            src: (GUEST_IP, self.port),
            dst: self.remote,
            seq: self.seq,
            ack: self.ack,
            flags,
            window: 8192,
            mss: (flags & TCP_SYN != 0).then_some(1460),
        };
        net.from_guest(&ip_frame(GUEST_IP, self.remote.0, PROTO_TCP, &tcp(&h, payload)), now);
        self.seq = self.seq.wrapping_add(payload.len() as u32 + u32::from(flags & (TCP_SYN | TCP_FIN) != 0));
    }

    /// Takes the NAT's segments for this connection, acknowledging data; returns the flags seen.
    fn receive(&mut self, net: &mut UserNet, now: u64) -> Vec<u8> {
        let mut flags = Vec::new();
        let mut owe_ack = false;
        for f in drain(net) {
            let ip = Ipv4::parse(Ethernet::parse(&f).unwrap().payload).unwrap();
            let seg = Tcp::parse(ip.src, ip.dst, ip.payload).expect("valid TCP checksum");
            assert_eq!((ip.src, seg.src_port), self.remote);
            flags.push(seg.flags);
            if seg.flags & TCP_SYN != 0 {
                self.ack = seg.seq.wrapping_add(1);
                continue;
            }
            if seg.seq == self.ack {
                self.received.extend_from_slice(seg.payload);
                self.ack = self.ack.wrapping_add(seg.payload.len() as u32);
                if seg.flags & TCP_FIN != 0 {
                    self.ack = self.ack.wrapping_add(1);
                    self.fin = true;
                }
                owe_ack |= !seg.payload.is_empty() || seg.flags & TCP_FIN != 0;
            }
        }
        if owe_ack {
            self.send(net, TCP_ACK, &[], now);
        }
        flags
    }
}

/// Polls until `done` or two seconds of host time pass.
fn poll_until(net: &mut UserNet, guest: &mut GuestTcp, mut done: impl FnMut(&GuestTcp, &[u8]) -> bool) {
    let start = Instant::now();
    let mut now = 0;
    while start.elapsed().as_secs() < 2 {
        now += 1_000_000;
        net.wait(std::time::Duration::from_millis(5));
        net.poll(now);
        let flags = guest.receive(net, now);
        if done(guest, &flags) {
            return;
        }
    }
    panic!("timed out; guest saw {} bytes", guest.received.len());
}

#[test]
fn tcp_from_the_guest_reaches_a_host_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut request = [0u8; 5];
        s.read_exact(&mut request).unwrap();
        assert_eq!(&request, b"hello");
        let reply: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        s.write_all(&reply).unwrap();
    });
    let mut net = nat(UserNetConfig::default());
    let mut g = GuestTcp { port: 33000, remote: (GATEWAY_IP, port), seq: 5000, ack: 0, received: vec![], fin: false };
    g.send(&mut net, TCP_SYN, &[], 0);
    poll_until(&mut net, &mut g, |_, flags| flags.contains(&(TCP_SYN | TCP_ACK)));
    g.send(&mut net, TCP_ACK, &[], 0);
    g.send(&mut net, TCP_ACK | TCP_PSH, b"hello", 0);
    poll_until(&mut net, &mut g, |g, _| g.fin);
    let expected: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(g.received.len(), expected.len());
    assert!(g.received == expected, "the bytes arrive in order");
    g.send(&mut net, TCP_FIN | TCP_ACK, &[], 0);
    poll_until(&mut net, &mut g, |_, _| true);
    server.join().unwrap();
    net.poll(10_000_000_000);
    assert!(net.describe().is_empty(), "the connection is gone: {:?}", net.describe());
}

#[test]
fn restrict_refuses_outbound_tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut net = nat(UserNetConfig { restrict: true, ..Default::default() });
    let mut g = GuestTcp { port: 33001, remote: (GATEWAY_IP, port), seq: 1, ack: 0, received: vec![], fin: false };
    g.send(&mut net, TCP_SYN, &[], 0);
    let frames = drain(&mut net);
    assert_eq!(frames.len(), 1);
    let ip = Ipv4::parse(Ethernet::parse(&frames[0]).unwrap().payload).unwrap();
    let seg = Tcp::parse(ip.src, ip.dst, ip.payload).unwrap();
    assert_eq!(seg.flags, TCP_RST | TCP_ACK);
    assert_eq!(seg.ack, 2, "acknowledges the SYN");
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err(), "nothing reached the host");
}

#[test]
fn hostfwd_connects_the_host_to_a_guest_port() {
    let fwd = HostForward::parse("tcp:127.0.0.1:0-:8080").unwrap();
    let mut net = nat(UserNetConfig { restrict: true, host_forwards: vec![fwd], ..Default::default() });
    // The NAT learns the guest's MAC from its first frame.
    net.from_guest(&dhcp_frame(DHCPDISCOVER, None), 0);
    drain(&mut net);
    let addr = net.forward_addresses()[0];
    let client = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET").unwrap();
        let mut reply = Vec::new();
        s.read_to_end(&mut reply).unwrap();
        reply
    });
    // Wait for the SYN to the guest's port 8080.
    let start = Instant::now();
    let syn = loop {
        assert!(start.elapsed().as_secs() < 2, "no SYN for the guest");
        net.wait(std::time::Duration::from_millis(5));
        net.poll(0);
        if let Some(f) = drain(&mut net).pop() {
            break f;
        }
    };
    let ip = Ipv4::parse(Ethernet::parse(&syn).unwrap().payload).unwrap();
    let seg = Tcp::parse(ip.src, ip.dst, ip.payload).unwrap();
    assert_eq!((ip.dst, seg.dst_port, seg.flags), (GUEST_IP, 8080, TCP_SYN));
    let mut g = GuestTcp {
        port: 8080,
        remote: (ip.src, seg.src_port),
        seq: 9000,
        ack: seg.seq.wrapping_add(1),
        received: vec![],
        fin: false,
    };
    g.send(&mut net, TCP_SYN | TCP_ACK, &[], 0);
    poll_until(&mut net, &mut g, |g, _| g.received == b"GET");
    g.send(&mut net, TCP_ACK | TCP_PSH | TCP_FIN, b"served by the guest", 0);
    poll_until(&mut net, &mut g, |_, _| true);
    assert_eq!(client.join().unwrap(), b"served by the guest");
}

#[test]
fn pcap_records_both_directions() {
    let path = std::env::temp_dir().join(format!("rx86-net-test-{}.pcap", std::process::id()));
    let mut net = nat(UserNetConfig { pcap: Some(path.clone()), ..Default::default() });
    let ping = IcmpEcho { kind: ICMP_ECHO_REQUEST, id: 1, seq: 1, payload: b"x" }.build();
    let request = ip_frame(GUEST_IP, GATEWAY_IP, PROTO_ICMP, &ping);
    net.from_guest(&request, 1_500_000_000);
    let reply = net.peek_for_guest().unwrap().to_vec();
    net.pop_for_guest(1_500_002_000);
    net.poll(2_000_000_000);
    let frames = pcap::read_capture(&std::fs::read(&path).unwrap()).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(frames, vec![(1_500_000, request), (1_500_002, reply)]);
}

#[test]
fn hostfwd_specs() {
    assert_eq!(
        HostForward::parse("tcp:127.0.0.1:2222-:22"),
        Ok(HostForward { host: "127.0.0.1:2222".parse().unwrap(), guest_port: 22 })
    );
    assert_eq!(HostForward::parse("::8080-10.0.2.15:80").map(|f| f.guest_port), Ok(80));
    for bad in ["tcp:127.0.0.1:2222", "udp::53-:53", "tcp::x-:22", "tcp::22-10.0.2.9:22", "tcp::1-:0"] {
        assert!(HostForward::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn resolv_conf_nameserver() {
    let text = "# comment\nsearch example\nnameserver ::1\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n";
    assert_eq!(host::resolver_from(text), Some("192.0.2.53:53".parse().unwrap()));
    assert_eq!(host::resolver_from("domain x\n"), None);
}

#[test]
fn malformed_frames_are_ignored() {
    let mut net = nat(UserNetConfig::default());
    let good = ip_frame(GUEST_IP, GATEWAY_IP, PROTO_ICMP, &IcmpEcho { kind: 8, id: 1, seq: 1, payload: &[] }.build());
    for cut in 0..good.len() {
        net.from_guest(&good[..cut], 0);
    }
    let mut bad_sum = good.clone();
    bad_sum[14 + 10] ^= 1;
    net.from_guest(&bad_sum, 0);
    assert!(drain(&mut net).is_empty());
}

#[test]
fn router_solicitations_are_answered_and_other_ipv6_is_dropped() {
    let mut net = nat(UserNetConfig::default());
    // iPXE's solicitation from its link-local address, as captured on the wire.
    let rs = "333300000002525400123456 86dd 6000000000103aff fe80000000000000505400fffe123456 \
              ff020000000000000000000000000002 850071b500000000 0101525400123456"
        .replace([' ', '\n'], "");
    let frame: Vec<u8> = (0..rs.len()).step_by(2).map(|i| u8::from_str_radix(&rs[i..i + 2], 16).unwrap()).collect();
    net.from_guest(&frame, 0);
    let frames = drain(&mut net);
    assert_eq!(frames.len(), 1);
    let eth = Ethernet::parse(&frames[0]).unwrap();
    assert_eq!((eth.dst, eth.src, eth.ethertype), (GUEST_MAC, GATEWAY_MAC, ndp::ETHERTYPE_IPV6));
    assert_eq!(eth.payload[40], 134, "a router advertisement");
    let mut echo = frame.clone();
    echo[54] = 128; // an echo request to the all-routers group
    net.from_guest(&echo, 0);
    assert!(drain(&mut net).is_empty());
}

/// The frame check sequence against the CRC-32 catalogue's check value and a bitwise model.
#[test]
fn ethernet_crc32_is_the_ieee_802_3_crc() {
    assert_eq!(wire::ethernet_crc32(b"123456789"), 0xcbf4_3926);
    let bitwise = |data: &[u8]| {
        let mut c = !0u32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    };
    let frame: Vec<u8> = (0..1514u32).map(|i| (i * 7 + 3) as u8).collect();
    for len in [0, 1, 60, 64, 1514] {
        assert_eq!(wire::ethernet_crc32(&frame[..len]), bitwise(&frame[..len]), "{len} bytes");
    }
}
