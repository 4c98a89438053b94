//! One TCP connection through the NAT: the guest's end speaks TCP with the NAT, which
//! terminates it and relays the bytes to a host socket ([`HostStream`]). The NAT's side is a
//! small RFC 793 sender and receiver: in-order delivery only (the virtual wire never reorders),
//! the guest's window and MSS respected, go-back-N retransmission after a timeout, FIN in both
//! directions, RST on failure. No window scaling or SACK is offered, so neither is used.

use super::host::{Connecting, HostRead, HostStream, Waker};
use super::wire::{Tcp, TcpHeader, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN};
use std::collections::VecDeque;
use std::net::{Ipv4Addr, TcpStream};

/// MSS the NAT announces and sends at most (Ethernet MTU 1500 less IP and TCP headers).
const NAT_MSS: u16 = 1460;
/// The guest's MSS when its SYN names none (RFC 1122).
const DEFAULT_MSS: u16 = 536;
/// Retransmission timeout in machine time.
const RTO_NS: u64 = 500_000_000;
/// Retransmissions of one segment before the connection is reset.
const MAX_RETRIES: u32 = 8;
/// Bytes read from the host and held for the guest before the NAT stops reading.
const SEND_BUFFER: usize = 256 * 1024;
/// The largest window without scaling.
const MAX_WINDOW: usize = 0xffff;

/// True when sequence number `a` is after `b`.
fn seq_gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// Where the connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpState {
    /// The guest's SYN arrived; the host connection is being made.
    Connecting,
    /// SYN-ACK sent to the guest.
    SynReceived,
    /// SYN sent to the guest (a host forward).
    SynSent,
    /// Data flows.
    Established,
    /// Over; the NAT forgets it.
    Closed,
}

/// A segment for the guest: header fields and payload.
pub type Segment = (TcpHeader, Vec<u8>);

/// A NAT'd TCP connection.
pub struct TcpConnection {
    /// The guest's address and port.
    pub guest: (Ipv4Addr, u16),
    /// The far end as the guest sees it.
    pub remote: (Ipv4Addr, u16),
    state: TcpState,
    connecting: Option<Connecting>,
    host: Option<HostStream>,
    waker: Waker,
    iss: u32,
    snd_una: u32,
    snd_nxt: u32,
    snd_max: u32,
    /// Bytes from `snd_una` on: sent but unacknowledged, then unsent.
    send_buf: VecDeque<u8>,
    rcv_nxt: u32,
    guest_window: usize,
    guest_mss: usize,
    host_eof: bool,
    fin_sent: bool,
    fin_acked: bool,
    guest_fin: bool,
    ack_pending: bool,
    /// The window the last segment to the guest advertised.
    advertised: usize,
    last_tx_ns: u64,
    retries: u32,
}

impl TcpConnection {
    fn new(guest: (Ipv4Addr, u16), remote: (Ipv4Addr, u16), iss: u32, waker: Waker, state: TcpState) -> Self {
        TcpConnection {
            guest,
            remote,
            state,
            connecting: None,
            host: None,
            waker,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            send_buf: VecDeque::new(),
            rcv_nxt: 0,
            guest_window: 0,
            guest_mss: usize::from(DEFAULT_MSS),
            host_eof: false,
            fin_sent: false,
            fin_acked: false,
            guest_fin: false,
            ack_pending: false,
            advertised: MAX_WINDOW,
            last_tx_ns: 0,
            retries: 0,
        }
    }

    /// A connection the guest opened with `syn`, to be relayed to the host through `connecting`.
    pub fn from_guest_syn(
        guest: (Ipv4Addr, u16),
        remote: (Ipv4Addr, u16),
        syn: &Tcp<'_>,
        iss: u32,
        connecting: Connecting,
        waker: Waker,
    ) -> Self {
        let mut c = Self::new(guest, remote, iss, waker, TcpState::Connecting);
        c.connecting = Some(connecting);
        c.rcv_nxt = syn.seq.wrapping_add(1);
        c.guest_window = usize::from(syn.window);
        c.guest_mss = usize::from(syn.mss.unwrap_or(DEFAULT_MSS).clamp(64, NAT_MSS));
        c
    }

    /// A connection a host forward accepted: the NAT opens it towards the guest.
    pub fn from_host(
        guest: (Ipv4Addr, u16),
        remote: (Ipv4Addr, u16),
        stream: TcpStream,
        iss: u32,
        waker: Waker,
    ) -> std::io::Result<Self> {
        let mut c = Self::new(guest, remote, iss, waker.clone(), TcpState::SynSent);
        c.host = Some(HostStream::start(stream, waker)?);
        Ok(c)
    }

    /// The state.
    pub fn state(&self) -> TcpState {
        self.state
    }

    /// The window the NAT can offer: what the host has not yet taken of the guest's bytes
    /// counts against it.
    fn window(&self) -> usize {
        MAX_WINDOW.saturating_sub(self.host.as_ref().map_or(0, HostStream::queued))
    }

    fn header(&mut self, seq: u32, flags: u8) -> TcpHeader {
        self.advertised = self.window();
        TcpHeader {
            src: self.remote,
            dst: self.guest,
            seq,
            ack: self.rcv_nxt,
            flags,
            window: self.advertised as u16,
            mss: (flags & TCP_SYN != 0).then_some(NAT_MSS),
        }
    }

    fn close(&mut self) {
        self.state = TcpState::Closed;
        self.host = None;
        self.connecting = None;
    }

    /// A reset for the guest, and the end of the connection.
    fn reset(&mut self, out: &mut Vec<Segment>) {
        out.push((self.header(self.snd_nxt, TCP_RST | TCP_ACK), Vec::new()));
        self.close();
    }

    /// Takes a segment from the guest.
    pub fn from_guest(&mut self, seg: &Tcp<'_>, now_ns: u64, out: &mut Vec<Segment>) {
        if seg.flags & TCP_RST != 0 {
            self.close();
            return;
        }
        match self.state {
            TcpState::Closed | TcpState::Connecting => return,
            TcpState::SynSent => {
                if seg.flags & (TCP_SYN | TCP_ACK) != TCP_SYN | TCP_ACK || seg.ack != self.iss.wrapping_add(1) {
                    return;
                }
                self.rcv_nxt = seg.seq.wrapping_add(1);
                self.guest_mss = usize::from(seg.mss.unwrap_or(DEFAULT_MSS).clamp(64, NAT_MSS));
                self.state = TcpState::Established;
                self.ack_pending = true;
            }
            TcpState::SynReceived => {
                if seg.flags & TCP_ACK == 0 || seg.ack != self.iss.wrapping_add(1) {
                    return;
                }
                self.state = TcpState::Established;
            }
            TcpState::Established => {}
        }
        self.guest_window = usize::from(seg.window);
        if seg.flags & TCP_ACK != 0 && seq_gt(seg.ack, self.snd_una) && !seq_gt(seg.ack, self.snd_max) {
            let acked = seg.ack.wrapping_sub(self.snd_una) as usize;
            if acked > self.send_buf.len() && self.host_eof {
                // Past the data: the FIN is acknowledged (even one sent before a go-back).
                self.fin_acked = true;
                self.fin_sent = true;
            }
            let acked = acked.min(self.send_buf.len());
            self.send_buf.drain(..acked);
            self.snd_una = seg.ack;
            if seq_gt(seg.ack, self.snd_nxt) {
                self.snd_nxt = seg.ack;
            }
            self.retries = 0;
            self.last_tx_ns = now_ns;
        }
        if seg.flags & TCP_SYN != 0 {
            // A retransmitted SYN or SYN-ACK: our answer was lost.
            self.ack_pending = true;
        } else if !seg.payload.is_empty() {
            if seg.seq == self.rcv_nxt && !self.guest_fin {
                if let Some(host) = &self.host {
                    host.write(seg.payload.to_vec());
                }
                self.rcv_nxt = self.rcv_nxt.wrapping_add(seg.payload.len() as u32);
            }
            self.ack_pending = true;
        }
        if seg.flags & TCP_FIN != 0
            && seg.seq.wrapping_add(seg.payload.len() as u32) == self.rcv_nxt.wrapping_sub(u32::from(self.guest_fin))
        {
            if !self.guest_fin {
                self.guest_fin = true;
                self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
                if let Some(host) = &self.host {
                    host.shutdown_write();
                }
            }
            self.ack_pending = true;
        }
        self.transmit(now_ns, out);
    }

    /// Moves host traffic along, sends what the guest's window allows, retransmits after a
    /// timeout.
    pub fn poll(&mut self, now_ns: u64, out: &mut Vec<Segment>) {
        match self.state {
            TcpState::Closed => {}
            TcpState::Connecting => {
                let Some(result) = self.connecting.as_ref().and_then(Connecting::poll) else { return };
                self.connecting = None;
                match result.and_then(|s| HostStream::start(s, self.waker.clone())) {
                    Ok(host) => {
                        self.host = Some(host);
                        self.state = TcpState::SynReceived;
                        self.send_syn(now_ns, out);
                    }
                    Err(e) => {
                        log::debug!("net: connection to {:?} failed: {e}", self.remote);
                        self.snd_nxt = 0;
                        self.reset(out);
                    }
                }
            }
            TcpState::SynReceived | TcpState::SynSent => {
                if self.snd_nxt == self.iss || now_ns.saturating_sub(self.last_tx_ns) >= RTO_NS {
                    self.retries += u32::from(self.snd_nxt != self.iss);
                    if self.retries > MAX_RETRIES {
                        self.close();
                        return;
                    }
                    self.send_syn(now_ns, out);
                }
            }
            TcpState::Established => {
                self.read_host();
                // The host took bytes and the window reopened: tell the guest (a window
                // update), or it waits for its persist timer.
                if self.window() >= self.advertised + 2 * self.guest_mss {
                    self.ack_pending = true;
                }
                if self.snd_una != self.snd_nxt && now_ns.saturating_sub(self.last_tx_ns) >= RTO_NS {
                    self.retries += 1;
                    if self.retries > MAX_RETRIES {
                        self.reset(out);
                        return;
                    }
                    // Go back to the first unacknowledged byte.
                    self.snd_nxt = self.snd_una;
                    self.fin_sent = self.fin_sent && self.fin_acked;
                }
                self.transmit(now_ns, out);
                if self.guest_fin && self.fin_acked {
                    self.close();
                }
            }
        }
    }

    fn send_syn(&mut self, now_ns: u64, out: &mut Vec<Segment>) {
        let flags = if self.state == TcpState::SynSent { TCP_SYN } else { TCP_SYN | TCP_ACK };
        out.push((self.header(self.iss, flags), Vec::new()));
        self.snd_nxt = self.iss.wrapping_add(1);
        self.snd_una = self.iss.wrapping_add(1);
        self.snd_max = self.snd_nxt;
        self.last_tx_ns = now_ns;
    }

    fn read_host(&mut self) {
        let Some(host) = &self.host else { return };
        while !self.host_eof && self.send_buf.len() < SEND_BUFFER {
            match host.try_read() {
                Some(HostRead::Data(bytes)) => self.send_buf.extend(bytes),
                Some(HostRead::Eof) => self.host_eof = true,
                None => break,
            }
        }
    }

    /// Sends data up to the guest's window, then a FIN once the host is done, else a bare
    /// ACK if one is owed.
    fn transmit(&mut self, now_ns: u64, out: &mut Vec<Segment>) {
        if self.state != TcpState::Established {
            if self.ack_pending {
                out.push((self.header(self.snd_nxt, TCP_ACK), Vec::new()));
                self.ack_pending = false;
            }
            return;
        }
        let sent_before = out.len();
        loop {
            let in_flight = self.snd_nxt.wrapping_sub(self.snd_una) as usize;
            let unsent = self.send_buf.len().saturating_sub(in_flight);
            let room = self.guest_window.saturating_sub(in_flight);
            let len = unsent.min(room).min(self.guest_mss);
            if len == 0 {
                break;
            }
            let payload: Vec<u8> = self.send_buf.range(in_flight..in_flight + len).copied().collect();
            let flags = if len == unsent { TCP_ACK | TCP_PSH } else { TCP_ACK };
            out.push((self.header(self.snd_nxt, flags), payload));
            self.snd_nxt = self.snd_nxt.wrapping_add(len as u32);
        }
        let in_flight = self.snd_nxt.wrapping_sub(self.snd_una) as usize;
        if self.host_eof && !self.fin_sent && in_flight >= self.send_buf.len() {
            out.push((self.header(self.snd_nxt, TCP_FIN | TCP_ACK), Vec::new()));
            self.snd_nxt = self.snd_nxt.wrapping_add(1);
            self.fin_sent = true;
        }
        if seq_gt(self.snd_nxt, self.snd_max) {
            self.snd_max = self.snd_nxt;
        }
        if out.len() > sent_before {
            self.last_tx_ns = now_ns;
            self.ack_pending = false;
        } else if self.ack_pending {
            out.push((self.header(self.snd_nxt, TCP_ACK), Vec::new()));
            self.ack_pending = false;
        }
    }

    /// True while the connection waits for the host (connecting, or data may come).
    pub fn host_active(&self) -> bool {
        self.state != TcpState::Closed && !(self.host_eof && self.send_buf.is_empty())
    }

    /// One line for `info network`.
    pub fn describe(&self) -> String {
        format!(
            "tcp {}:{} -> {}:{} {:?}, {} bytes for the guest",
            self.guest.0,
            self.guest.1,
            self.remote.0,
            self.remote.1,
            self.state,
            self.send_buf.len()
        )
    }
}
