//! The NAT's DHCP server (RFC 2131, options RFC 2132): it offers the one guest address to
//! whoever asks, with the gateway, DNS server and netmask of the virtual network.

use std::net::Ipv4Addr;

/// Server port.
pub const DHCP_SERVER_PORT: u16 = 67;
/// Client port.
pub const DHCP_CLIENT_PORT: u16 = 68;
/// BOOTREQUEST.
const OP_REQUEST: u8 = 1;
/// BOOTREPLY.
const OP_REPLY: u8 = 2;
/// The magic cookie before the options.
const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// Fixed BOOTP fields before the cookie.
const BOOTP_LEN: usize = 236;
/// Option: subnet mask.
const OPT_SUBNET_MASK: u8 = 1;
/// Option: router.
const OPT_ROUTER: u8 = 3;
/// Option: DNS servers.
const OPT_DNS: u8 = 6;
/// Option: requested address.
const OPT_REQUESTED_IP: u8 = 50;
/// Option: lease time.
const OPT_LEASE_TIME: u8 = 51;
/// Option: message type.
const OPT_MESSAGE_TYPE: u8 = 53;
/// Option: server identifier.
const OPT_SERVER_ID: u8 = 54;
/// Option: end.
const OPT_END: u8 = 255;
/// Option: pad.
const OPT_PAD: u8 = 0;
/// DHCPDISCOVER.
pub const DHCPDISCOVER: u8 = 1;
/// DHCPOFFER.
pub const DHCPOFFER: u8 = 2;
/// DHCPREQUEST.
pub const DHCPREQUEST: u8 = 3;
/// DHCPACK.
pub const DHCPACK: u8 = 5;
/// DHCPNAK.
pub const DHCPNAK: u8 = 6;
/// Lease time offered, seconds (QEMU's: a day).
const LEASE_SECONDS: u32 = 86_400;

/// The addresses the server hands out.
#[derive(Debug, Clone, Copy)]
pub struct DhcpConfig {
    /// The guest's address.
    pub guest: Ipv4Addr,
    /// Gateway (and the server's own address).
    pub gateway: Ipv4Addr,
    /// DNS server.
    pub dns: Ipv4Addr,
    /// Netmask.
    pub netmask: Ipv4Addr,
}

/// A client message the server understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpRequest {
    /// Message type (DHCPDISCOVER, DHCPREQUEST, ...).
    pub message_type: u8,
    /// Transaction ID.
    pub xid: u32,
    /// Client hardware address.
    pub chaddr: [u8; 6],
    /// Flags (bit 15 broadcast).
    pub flags: u16,
    /// The requested address option, if any.
    pub requested: Option<Ipv4Addr>,
    /// The client's current address (renewals).
    pub ciaddr: Ipv4Addr,
}

impl DhcpRequest {
    /// Parses a BOOTREQUEST with DHCP options; `None` for anything else.
    pub fn parse(b: &[u8]) -> Option<Self> {
        if b.len() < BOOTP_LEN + 4 || b[0] != OP_REQUEST || b[1] != 1 || b[2] != 6 {
            return None;
        }
        if b[BOOTP_LEN..BOOTP_LEN + 4] != MAGIC_COOKIE {
            return None;
        }
        let mut message_type = None;
        let mut requested = None;
        let mut opts = &b[BOOTP_LEN + 4..];
        while let Some(&code) = opts.first() {
            match code {
                OPT_END => break,
                OPT_PAD => opts = &opts[1..],
                _ => {
                    let len = usize::from(*opts.get(1)?);
                    let value = opts.get(2..2 + len)?;
                    match (code, value) {
                        (OPT_MESSAGE_TYPE, [t]) => message_type = Some(*t),
                        (OPT_REQUESTED_IP, [a, b, c, d]) => requested = Some(Ipv4Addr::new(*a, *b, *c, *d)),
                        _ => {}
                    }
                    opts = &opts[2 + len..];
                }
            }
        }
        Some(DhcpRequest {
            message_type: message_type?,
            xid: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            flags: u16::from_be_bytes([b[10], b[11]]),
            ciaddr: Ipv4Addr::new(b[12], b[13], b[14], b[15]),
            chaddr: b[28..34].try_into().ok()?,
            requested,
        })
    }
}

/// The server's answer to `req` (DHCPOFFER to a DISCOVER, DHCPACK or DHCPNAK to a REQUEST),
/// as a UDP payload; `None` for messages it does not answer (RELEASE, DECLINE, INFORM).
pub fn reply(config: &DhcpConfig, req: &DhcpRequest) -> Option<Vec<u8>> {
    let message_type = match req.message_type {
        DHCPDISCOVER => DHCPOFFER,
        DHCPREQUEST => {
            let asked = req.requested.unwrap_or(req.ciaddr);
            if asked == config.guest {
                DHCPACK
            } else {
                DHCPNAK
            }
        }
        _ => return None,
    };
    let mut m = vec![0u8; BOOTP_LEN];
    m[0] = OP_REPLY;
    m[1] = 1;
    m[2] = 6;
    m[4..8].copy_from_slice(&req.xid.to_be_bytes());
    m[10..12].copy_from_slice(&req.flags.to_be_bytes());
    if message_type != DHCPNAK {
        m[16..20].copy_from_slice(&config.guest.octets());
        m[20..24].copy_from_slice(&config.gateway.octets());
    }
    m[28..34].copy_from_slice(&req.chaddr);
    m.extend_from_slice(&MAGIC_COOKIE);
    m.extend_from_slice(&[OPT_MESSAGE_TYPE, 1, message_type]);
    m.extend_from_slice(&[OPT_SERVER_ID, 4]);
    m.extend_from_slice(&config.gateway.octets());
    if message_type != DHCPNAK {
        m.extend_from_slice(&[OPT_LEASE_TIME, 4]);
        m.extend_from_slice(&LEASE_SECONDS.to_be_bytes());
        m.extend_from_slice(&[OPT_SUBNET_MASK, 4]);
        m.extend_from_slice(&config.netmask.octets());
        m.extend_from_slice(&[OPT_ROUTER, 4]);
        m.extend_from_slice(&config.gateway.octets());
        m.extend_from_slice(&[OPT_DNS, 4]);
        m.extend_from_slice(&config.dns.octets());
    }
    m.push(OPT_END);
    // BOOTP's minimum message (300 bytes), which some clients expect.
    m.resize(m.len().max(300), OPT_PAD);
    Some(m)
}

/// Builds a client message (for tests and fuzzing seeds): `message_type` from `chaddr`.
pub fn client_message(message_type: u8, xid: u32, chaddr: [u8; 6], requested: Option<Ipv4Addr>) -> Vec<u8> {
    let mut m = vec![0u8; BOOTP_LEN];
    m[0] = OP_REQUEST;
    m[1] = 1;
    m[2] = 6;
    m[4..8].copy_from_slice(&xid.to_be_bytes());
    m[28..34].copy_from_slice(&chaddr);
    m.extend_from_slice(&MAGIC_COOKIE);
    m.extend_from_slice(&[OPT_MESSAGE_TYPE, 1, message_type]);
    if let Some(ip) = requested {
        m.extend_from_slice(&[OPT_REQUESTED_IP, 4]);
        m.extend_from_slice(&ip.octets());
    }
    m.push(OPT_END);
    m
}

/// Reads the message type and offered address of a server reply (for tests).
pub fn parse_reply(b: &[u8]) -> Option<(u8, Ipv4Addr)> {
    if b.len() < BOOTP_LEN + 4 || b[0] != OP_REPLY || b[BOOTP_LEN..BOOTP_LEN + 4] != MAGIC_COOKIE {
        return None;
    }
    let yiaddr = Ipv4Addr::new(b[16], b[17], b[18], b[19]);
    let opts = &b[BOOTP_LEN + 4..];
    (opts.first() == Some(&OPT_MESSAGE_TYPE)).then(|| opts.get(2).map(|&t| (t, yiaddr)))?
}
