//! IPv6 router discovery on the user-mode network (RFC 4861 §4.1, §4.2, §6.2.6): the NAT
//! answers a guest's Router Solicitation with a Router Advertisement from its link-local
//! address that offers no default route (router lifetime 0), no prefix and no DHCPv6, because
//! the NAT carries no IPv6 traffic. A guest then ends its IPv6 autoconfiguration at once
//! instead of soliciting until it gives up: iPXE's "Configuring (net0 ...)" waits for that,
//! about 16 s of guest time, before it prints "ok" for a DHCPv4 lease it had in 3 s.
//! Applications on the guest find no IPv6 route and fall back to IPv4 at once.

use super::wire::{checksum_add, checksum_finish, ethernet, Ethernet};
use std::net::Ipv6Addr;

/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// IPv6's next-header number of ICMPv6.
const NEXT_HEADER_ICMPV6: u8 = 58;
/// Length of the fixed IPv6 header.
const IPV6_HEADER: usize = 40;
/// ICMPv6 type of a Router Solicitation.
const ICMPV6_ROUTER_SOLICITATION: u8 = 133;
/// ICMPv6 type of a Router Advertisement.
const ICMPV6_ROUTER_ADVERTISEMENT: u8 = 134;
/// The hop limit every Neighbor Discovery message carries, proving it was not forwarded.
const NDP_HOP_LIMIT: u8 = 255;
/// NDP option: source link-layer address.
const OPTION_SOURCE_LINK_LAYER: u8 = 1;
/// Length of a Router Solicitation before its options (type, code, checksum, reserved).
const ROUTER_SOLICITATION_HEADER: usize = 8;
/// The NAT's link-local address, the source of its advertisements (QEMU's slirp uses the
/// same).
pub const ROUTER_LINK_LOCAL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
/// The all-nodes multicast group, where answers to a solicitor without an address go.
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// An IPv6 packet (fixed header only; extension headers are not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6<'a> {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// The header after the fixed one.
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// The payload, as long as the header's payload length says.
    pub payload: &'a [u8],
}

impl<'a> Ipv6<'a> {
    /// Parses a packet; `None` for another version or a payload length past the buffer.
    pub fn parse(b: &'a [u8]) -> Option<Self> {
        let header = b.get(..IPV6_HEADER)?;
        if header[0] >> 4 != 6 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([header[4], header[5]]));
        let address = |at: usize| -> Option<Ipv6Addr> {
            let octets: [u8; 16] = header.get(at..at + 16)?.try_into().ok()?;
            Some(Ipv6Addr::from(octets))
        };
        Some(Ipv6 {
            src: address(8)?,
            dst: address(24)?,
            next_header: header[6],
            hop_limit: header[7],
            payload: b.get(IPV6_HEADER..IPV6_HEADER + len)?,
        })
    }
}

/// The ICMPv6 checksum of `message` (its checksum field zero or, to verify, as sent) between
/// `src` and `dst`: RFC 8200 §8.1's pseudo-header, then the message.
fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, message: &[u8]) -> u16 {
    let mut sum = checksum_add(0, &src.octets());
    sum = checksum_add(sum, &dst.octets());
    sum = checksum_add(sum, &(message.len() as u32).to_be_bytes());
    sum = checksum_add(sum, &[0, 0, 0, NEXT_HEADER_ICMPV6]);
    checksum_finish(checksum_add(sum, message))
}

/// True when `options` is a well-formed run of NDP options (each a non-zero number of 8-byte
/// units, none past the end), RFC 4861 §4.6.
fn options_valid(mut options: &[u8]) -> bool {
    while !options.is_empty() {
        let units = options.get(1).map_or(0, |&u| usize::from(u));
        if units == 0 || units * 8 > options.len() {
            return false;
        }
        options = &options[units * 8..];
    }
    true
}

/// True when `ip` carries a Router Solicitation that passes RFC 4861 §6.1.1's checks: hop
/// limit 255, code 0, a valid ICMPv6 checksum, at least 8 bytes, well-formed options.
fn is_router_solicitation(ip: &Ipv6<'_>) -> bool {
    let m = ip.payload;
    ip.next_header == NEXT_HEADER_ICMPV6
        && ip.hop_limit == NDP_HOP_LIMIT
        && m.len() >= ROUTER_SOLICITATION_HEADER
        && m[0] == ICMPV6_ROUTER_SOLICITATION
        && m[1] == 0
        && icmpv6_checksum(ip.src, ip.dst, m) == 0
        && options_valid(&m[ROUTER_SOLICITATION_HEADER..])
}

/// The Router Advertisement (a whole Ethernet frame from `router_mac`) that answers `frame`,
/// if `frame` is a valid Router Solicitation; `None` for any other IPv6 traffic.
pub fn answer(frame: &Ethernet<'_>, router_mac: [u8; 6]) -> Option<Vec<u8>> {
    let ip = Ipv6::parse(frame.payload)?;
    if !is_router_solicitation(&ip) {
        return None;
    }
    // A solicitor without an address yet hears the answer on the all-nodes group.
    let (dst, dst_mac) =
        if ip.src.is_unspecified() { (ALL_NODES, multicast_mac(ALL_NODES)) } else { (ip.src, frame.src) };
    let mut message = vec![
        ICMPV6_ROUTER_ADVERTISEMENT,
        0, // code
        0,
        0, // checksum, below
        0, // current hop limit: unspecified
        0, // flags: no managed address configuration, no other configuration
        0,
        0, // router lifetime 0: not a default router
        0,
        0,
        0,
        0, // reachable time: unspecified
        0,
        0,
        0,
        0, // retransmission timer: unspecified
        OPTION_SOURCE_LINK_LAYER,
        1, // length in 8-byte units
    ];
    message.extend_from_slice(&router_mac);
    Some(ethernet(dst_mac, router_mac, ETHERTYPE_IPV6, &icmpv6_packet(ROUTER_LINK_LOCAL, dst, message)))
}

/// An IPv6 packet with hop limit 255 carrying the ICMPv6 `message`, whose checksum field
/// (bytes 2 and 3) this fills in.
pub fn icmpv6_packet(src: Ipv6Addr, dst: Ipv6Addr, mut message: Vec<u8>) -> Vec<u8> {
    if message.len() >= 4 {
        message[2..4].fill(0);
        let checksum = icmpv6_checksum(src, dst, &message);
        message[2..4].copy_from_slice(&checksum.to_be_bytes());
    }
    let mut p = Vec::with_capacity(IPV6_HEADER + message.len());
    p.extend_from_slice(&[0x60, 0, 0, 0]); // version 6, traffic class 0, flow label 0
    p.extend_from_slice(&(message.len() as u16).to_be_bytes());
    p.extend_from_slice(&[NEXT_HEADER_ICMPV6, NDP_HOP_LIMIT]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&message);
    p
}

/// The Ethernet address of an IPv6 multicast group (RFC 2464 §7): 33:33 and the group's
/// last 32 bits.
fn multicast_mac(group: Ipv6Addr) -> [u8; 6] {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    const ROUTER_MAC: [u8; 6] = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x02];
    const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

    /// A Router Solicitation from `src` with `options`, its checksum right.
    fn solicitation_with(src: Ipv6Addr, hop_limit: u8, options: &[u8]) -> Vec<u8> {
        let mut m = vec![ICMPV6_ROUTER_SOLICITATION, 0, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(options);
        let mut packet = icmpv6_packet(src, ALL_ROUTERS, m);
        packet[7] = hop_limit;
        ethernet(multicast_mac(ALL_ROUTERS), GUEST_MAC, ETHERTYPE_IPV6, &packet)
    }

    /// A Router Solicitation as a guest sends it: with a source link-layer option unless
    /// `src` is unspecified.
    fn solicitation(src: Ipv6Addr, hop_limit: u8) -> Vec<u8> {
        let mut option = vec![OPTION_SOURCE_LINK_LAYER, 1];
        option.extend_from_slice(&GUEST_MAC);
        solicitation_with(src, hop_limit, if src.is_unspecified() { &[] } else { &option })
    }

    fn answer_to(frame: &[u8]) -> Option<Vec<u8>> {
        answer(&Ethernet::parse(frame).unwrap(), ROUTER_MAC)
    }

    fn guest_link_local() -> Ipv6Addr {
        "fe80::5054:ff:fe12:3456".parse().unwrap()
    }

    #[test]
    fn a_solicitation_gets_an_advertisement_without_route_or_prefix() {
        let reply = answer_to(&solicitation(guest_link_local(), 255)).expect("an advertisement");
        let eth = Ethernet::parse(&reply).unwrap();
        assert_eq!((eth.dst, eth.src, eth.ethertype), (GUEST_MAC, ROUTER_MAC, ETHERTYPE_IPV6));
        let ip = Ipv6::parse(eth.payload).unwrap();
        assert_eq!((ip.src, ip.dst, ip.hop_limit, ip.next_header), (ROUTER_LINK_LOCAL, guest_link_local(), 255, 58));
        let m = ip.payload;
        assert_eq!(icmpv6_checksum(ip.src, ip.dst, m), 0, "checksum");
        assert_eq!((m[0], m[1]), (ICMPV6_ROUTER_ADVERTISEMENT, 0));
        assert_eq!(m[5], 0, "neither managed nor other configuration");
        assert_eq!(&m[6..8], &[0, 0], "router lifetime 0");
        assert_eq!(&m[16..24], &[1, 1, 0x52, 0x55, 0x0a, 0x00, 0x02, 0x02], "only the router's link-layer address");
        assert_eq!(m.len(), 24);
    }

    #[test]
    fn a_solicitor_without_an_address_is_answered_on_all_nodes() {
        let reply = answer_to(&solicitation(Ipv6Addr::UNSPECIFIED, 255)).expect("an advertisement");
        let eth = Ethernet::parse(&reply).unwrap();
        assert_eq!(eth.dst, [0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(Ipv6::parse(eth.payload).unwrap().dst, ALL_NODES);
    }

    #[test]
    fn invalid_solicitations_are_ignored() {
        assert_eq!(answer_to(&solicitation(guest_link_local(), 64)), None, "forwarded: hop limit below 255");
        let mut bad_sum = solicitation(guest_link_local(), 255);
        bad_sum[14 + 40 + 2] ^= 1;
        assert_eq!(answer_to(&bad_sum), None, "bad checksum");
        let zero_option = solicitation_with(guest_link_local(), 255, &[OPTION_SOURCE_LINK_LAYER, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(answer_to(&zero_option), None, "an option of length 0");
        let past_end = solicitation_with(guest_link_local(), 255, &[OPTION_SOURCE_LINK_LAYER, 2, 0, 0, 0, 0, 0, 0]);
        assert_eq!(answer_to(&past_end), None, "an option past the end");
        let mut long = solicitation(guest_link_local(), 255);
        long[14 + 5] += 8;
        assert_eq!(answer_to(&long), None, "payload length past the frame");
        let short = &solicitation(guest_link_local(), 255)[..14 + 39];
        assert_eq!(answer_to(short), None, "truncated header");
    }
}
