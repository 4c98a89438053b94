//! Wire formats the user-mode network speaks: Ethernet II, ARP, IPv4, ICMP, UDP and TCP
//! (RFC 826, 791, 792, 768, 793), parsed from and built into byte vectors. Parsers return
//! `None` for anything malformed (short headers, lengths past the buffer, bad checksums,
//! fragments), never panic.

use std::net::Ipv4Addr;

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// IP protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;
/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
/// Length of an Ethernet II header.
pub const ETHERNET_HEADER: usize = 14;
/// Length of an IPv4 header without options.
pub const IPV4_HEADER: usize = 20;
/// Length of a TCP header without options.
pub const TCP_HEADER: usize = 20;
/// Length of a UDP header.
pub const UDP_HEADER: usize = 8;
/// A MAC address for tests' far ends (the NAT's gateway address).
#[cfg(test)]
pub const GATEWAY_TEST_MAC: [u8; 6] = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x02];
/// The broadcast MAC address.
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];

/// Adds `data` to a ones-complement sum as big-endian 16-bit words (an odd last byte is
/// padded with zero), RFC 1071.
pub fn checksum_add(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for pair in &mut chunks {
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([pair[0], pair[1]])));
        if sum > 0xffff_0000 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
    }
    if let [last] = chunks.remainder() {
        sum = sum.wrapping_add(u32::from(*last) << 8);
    }
    sum
}

/// Folds a ones-complement sum to 16 bits and complements it.
pub fn checksum_finish(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The IPv4 pseudo-header sum for a TCP or UDP checksum.
pub fn pseudo_header_sum(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: usize) -> u32 {
    let mut sum = checksum_add(0, &src.octets());
    sum = checksum_add(sum, &dst.octets());
    sum + u32::from(protocol) + len as u32
}

/// True when `frame` is an unfragmented IPv4 TCP or UDP frame (UDP with a checksum) whose IP
/// header checksum and TCP/UDP checksum are right: what a NIC's receive checksum offload
/// reports as verified.
pub fn l4_checksums_valid(frame: &[u8]) -> bool {
    if frame.len() < 14 + 20 || u16::from_be_bytes([frame[12], frame[13]]) != ETHERTYPE_IPV4 {
        return false;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
    let protocol = ip[9];
    if ip[0] >> 4 != 4 || ihl < 20 || total < ihl + 8 || total > ip.len() || fragment {
        return false;
    }
    let l4 = &ip[ihl..total];
    let no_udp_checksum = protocol == PROTO_UDP && l4[6..8] == [0, 0];
    if !(protocol == PROTO_TCP || protocol == PROTO_UDP) || no_udp_checksum {
        return false;
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    checksum_finish(checksum_add(0, &ip[..ihl])) == 0
        && checksum_finish(checksum_add(pseudo_header_sum(src, dst, protocol, l4.len()), l4)) == 0
}

/// CRC-32 of IEEE 802.3 (the Ethernet frame check sequence), sent least significant byte
/// first.
pub fn ethernet_crc32(data: &[u8]) -> u32 {
    // The frame check sequence is CRC-32/ISO-HDLC (the zlib CRC): `crc32fast` computes it with
    // the host's carry-less multiply where there is one; every received frame pays for it.
    crc32fast::hash(data)
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn ipv4_at(b: &[u8], at: usize) -> Option<Ipv4Addr> {
    let o: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(Ipv4Addr::from(o))
}

fn mac_at(b: &[u8], at: usize) -> Option<[u8; 6]> {
    b.get(at..at + 6)?.try_into().ok()
}

/// An Ethernet II frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ethernet<'a> {
    /// Destination MAC.
    pub dst: [u8; 6],
    /// Source MAC.
    pub src: [u8; 6],
    /// EtherType.
    pub ethertype: u16,
    /// What follows the header.
    pub payload: &'a [u8],
}

impl<'a> Ethernet<'a> {
    /// Parses a frame (no CRC).
    pub fn parse(frame: &'a [u8]) -> Option<Self> {
        Some(Ethernet {
            dst: mac_at(frame, 0)?,
            src: mac_at(frame, 6)?,
            ethertype: be16(frame, 12)?,
            payload: frame.get(ETHERNET_HEADER..)?,
        })
    }
}

/// Builds an Ethernet II frame.
pub fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETHERNET_HEADER + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An ARP packet for IPv4 over Ethernet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// 1 request, 2 reply.
    pub operation: u16,
    /// Sender hardware address.
    pub sender_mac: [u8; 6],
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address.
    pub target_mac: [u8; 6],
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

/// ARP request.
pub const ARP_REQUEST: u16 = 1;
/// ARP reply.
pub const ARP_REPLY: u16 = 2;

impl Arp {
    /// Parses an ARP payload (Ethernet hardware, IPv4 protocol only).
    pub fn parse(b: &[u8]) -> Option<Self> {
        if be16(b, 0)? != 1 || be16(b, 2)? != ETHERTYPE_IPV4 || *b.get(4)? != 6 || *b.get(5)? != 4 {
            return None;
        }
        Some(Arp {
            operation: be16(b, 6)?,
            sender_mac: mac_at(b, 8)?,
            sender_ip: ipv4_at(b, 14)?,
            target_mac: mac_at(b, 18)?,
            target_ip: ipv4_at(b, 24)?,
        })
    }

    /// The 28-byte ARP payload.
    pub fn build(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(28);
        b.extend_from_slice(&1u16.to_be_bytes());
        b.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        b.extend_from_slice(&[6, 4]);
        b.extend_from_slice(&self.operation.to_be_bytes());
        b.extend_from_slice(&self.sender_mac);
        b.extend_from_slice(&self.sender_ip.octets());
        b.extend_from_slice(&self.target_mac);
        b.extend_from_slice(&self.target_ip.octets());
        b
    }
}

/// An IPv4 packet (unfragmented; options skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4<'a> {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol number.
    pub protocol: u8,
    /// Time to live.
    pub ttl: u8,
    /// The payload (to the header's total length, not the frame's padding).
    pub payload: &'a [u8],
}

impl<'a> Ipv4<'a> {
    /// Parses and checks an IPv4 packet. Fragments are refused (the NAT does not reassemble).
    pub fn parse(b: &'a [u8]) -> Option<Self> {
        let first = *b.first()?;
        let ihl = usize::from(first & 0xf) * 4;
        if first >> 4 != 4 || ihl < IPV4_HEADER {
            return None;
        }
        let total = usize::from(be16(b, 2)?);
        if total < ihl || total > b.len() || checksum_finish(checksum_add(0, b.get(..ihl)?)) != 0 {
            return None;
        }
        let fragment = be16(b, 6)?;
        if fragment & 0x3fff != 0 {
            return None;
        }
        Some(Ipv4 {
            src: ipv4_at(b, 12)?,
            dst: ipv4_at(b, 16)?,
            protocol: *b.get(9)?,
            ttl: *b.get(8)?,
            payload: b.get(ihl..total)?,
        })
    }
}

/// Builds an IPv4 packet (no options, don't-fragment clear, TTL 64).
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, id: u16, payload: &[u8]) -> Vec<u8> {
    let total = (IPV4_HEADER + payload.len()) as u16;
    let mut p = Vec::with_capacity(usize::from(total));
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0, 0, 64, protocol, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let sum = checksum_finish(checksum_add(0, &p));
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Udp<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Data.
    pub payload: &'a [u8],
}

impl<'a> Udp<'a> {
    /// Parses a UDP datagram carried from `src` to `dst`, checking its checksum (when not 0).
    pub fn parse(src: Ipv4Addr, dst: Ipv4Addr, b: &'a [u8]) -> Option<Self> {
        let len = usize::from(be16(b, 4)?);
        if len < UDP_HEADER || len > b.len() {
            return None;
        }
        if be16(b, 6)? != 0 {
            let sum = checksum_add(pseudo_header_sum(src, dst, PROTO_UDP, len), &b[..len]);
            if checksum_finish(sum) != 0 {
                return None;
            }
        }
        Some(Udp { src_port: be16(b, 0)?, dst_port: be16(b, 2)?, payload: &b[UDP_HEADER..len] })
    }
}

/// Builds a UDP datagram with its checksum.
pub fn udp(src: Ipv4Addr, src_port: u16, dst: Ipv4Addr, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let len = UDP_HEADER + payload.len();
    let mut d = Vec::with_capacity(len);
    d.extend_from_slice(&src_port.to_be_bytes());
    d.extend_from_slice(&dst_port.to_be_bytes());
    d.extend_from_slice(&(len as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    let sum = checksum_finish(checksum_add(pseudo_header_sum(src, dst, PROTO_UDP, len), &d));
    // A computed 0 is sent as all ones (0 means "no checksum").
    let sum = if sum == 0 { 0xffff } else { sum };
    d[6..8].copy_from_slice(&sum.to_be_bytes());
    d
}

/// TCP flag FIN.
pub const TCP_FIN: u8 = 0x01;
/// TCP flag SYN.
pub const TCP_SYN: u8 = 0x02;
/// TCP flag RST.
pub const TCP_RST: u8 = 0x04;
/// TCP flag PSH.
pub const TCP_PSH: u8 = 0x08;
/// TCP flag ACK.
pub const TCP_ACK: u8 = 0x10;

/// A TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tcp<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags (FIN, SYN, RST, PSH, ACK, ...).
    pub flags: u8,
    /// Receive window.
    pub window: u16,
    /// The MSS option, if the segment carries one.
    pub mss: Option<u16>,
    /// Data.
    pub payload: &'a [u8],
}

impl<'a> Tcp<'a> {
    /// Parses a TCP segment carried from `src` to `dst`, checking its checksum.
    pub fn parse(src: Ipv4Addr, dst: Ipv4Addr, b: &'a [u8]) -> Option<Self> {
        let offset = usize::from(*b.get(12)? >> 4) * 4;
        if offset < TCP_HEADER || offset > b.len() {
            return None;
        }
        if checksum_finish(checksum_add(pseudo_header_sum(src, dst, PROTO_TCP, b.len()), b)) != 0 {
            return None;
        }
        Some(Tcp {
            src_port: be16(b, 0)?,
            dst_port: be16(b, 2)?,
            seq: be32(b, 4)?,
            ack: be32(b, 8)?,
            flags: *b.get(13)?,
            window: be16(b, 14)?,
            mss: tcp_mss_option(&b[TCP_HEADER..offset]),
            payload: &b[offset..],
        })
    }
}

/// The MSS option (kind 2) among TCP options.
fn tcp_mss_option(mut options: &[u8]) -> Option<u16> {
    while let Some(&kind) = options.first() {
        match kind {
            0 => return None,
            1 => options = &options[1..],
            _ => {
                let len = usize::from(*options.get(1)?);
                if len < 2 || len > options.len() {
                    return None;
                }
                if kind == 2 && len == 4 {
                    return be16(options, 2);
                }
                options = &options[len..];
            }
        }
    }
    None
}

/// The fields of a TCP segment to build.
#[derive(Debug, Clone, Copy)]
pub struct TcpHeader {
    /// Source address and port.
    pub src: (Ipv4Addr, u16),
    /// Destination address and port.
    pub dst: (Ipv4Addr, u16),
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags.
    pub flags: u8,
    /// Receive window.
    pub window: u16,
    /// MSS option to send (SYN segments).
    pub mss: Option<u16>,
}

/// Builds a TCP segment with its checksum.
pub fn tcp(h: &TcpHeader, payload: &[u8]) -> Vec<u8> {
    let header_len = if h.mss.is_some() { TCP_HEADER + 4 } else { TCP_HEADER };
    let mut s = Vec::with_capacity(header_len + payload.len());
    s.extend_from_slice(&h.src.1.to_be_bytes());
    s.extend_from_slice(&h.dst.1.to_be_bytes());
    s.extend_from_slice(&h.seq.to_be_bytes());
    s.extend_from_slice(&h.ack.to_be_bytes());
    s.push(((header_len / 4) as u8) << 4);
    s.push(h.flags);
    s.extend_from_slice(&h.window.to_be_bytes());
    s.extend_from_slice(&[0, 0, 0, 0]);
    if let Some(mss) = h.mss {
        s.extend_from_slice(&[2, 4]);
        s.extend_from_slice(&mss.to_be_bytes());
    }
    s.extend_from_slice(payload);
    let sum = checksum_finish(checksum_add(pseudo_header_sum(h.src.0, h.dst.0, PROTO_TCP, s.len()), &s));
    s[16..18].copy_from_slice(&sum.to_be_bytes());
    s
}

/// An ICMP echo request or reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpEcho<'a> {
    /// 8 request, 0 reply.
    pub kind: u8,
    /// Identifier.
    pub id: u16,
    /// Sequence number.
    pub seq: u16,
    /// Data.
    pub payload: &'a [u8],
}

/// ICMP echo request type.
pub const ICMP_ECHO_REQUEST: u8 = 8;
/// ICMP echo reply type.
pub const ICMP_ECHO_REPLY: u8 = 0;

impl<'a> IcmpEcho<'a> {
    /// Parses an ICMP echo message, checking its checksum.
    pub fn parse(b: &'a [u8]) -> Option<Self> {
        if b.len() < 8 || checksum_finish(checksum_add(0, b)) != 0 || b[1] != 0 {
            return None;
        }
        let kind = b[0];
        if kind != ICMP_ECHO_REQUEST && kind != ICMP_ECHO_REPLY {
            return None;
        }
        Some(IcmpEcho { kind, id: be16(b, 4)?, seq: be16(b, 6)?, payload: &b[8..] })
    }

    /// The ICMP message with its checksum.
    pub fn build(&self) -> Vec<u8> {
        let mut m = vec![self.kind, 0, 0, 0];
        m.extend_from_slice(&self.id.to_be_bytes());
        m.extend_from_slice(&self.seq.to_be_bytes());
        m.extend_from_slice(self.payload);
        let sum = checksum_finish(checksum_add(0, &m));
        m[2..4].copy_from_slice(&sum.to_be_bytes());
        m
    }
}
