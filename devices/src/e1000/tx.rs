//! The transmit path: legacy descriptors and the context/data descriptor pair (8254x SDM
//! sections 3.3 and 3.5), with checksum insertion and TCP segmentation (TSO) done in software
//! the way the hardware does them: the driver seeds each checksum field (the pseudo-header sum
//! for TCP and UDP), the NIC adds the bytes from the start offset to the end offset and stores
//! the complement.

use crate::net::wire::{checksum_add, checksum_finish};

/// Legacy CMD.EOP / data DCMD.EOP: end of packet.
const CMD_EOP: u8 = 1 << 0;
/// Legacy CMD.IC: insert checksum.
const CMD_IC: u8 = 1 << 2;
/// CMD.RS: report status (write DD back).
pub const CMD_RS: u8 = 1 << 3;
/// CMD.DEXT: extended descriptor (context or data).
const CMD_DEXT: u8 = 1 << 5;
/// Data DCMD.TSE / context TUCMD.TSE: TCP segmentation.
const CMD_TSE: u8 = 1 << 2;
/// Context TUCMD.TCP: the layer 4 header is TCP (else UDP).
const TUCMD_TCP: u8 = 1 << 0;
/// Context TUCMD.IP: the layer 3 header is IPv4 (else IPv6).
const TUCMD_IP: u8 = 1 << 1;
/// Data POPTS.IXSM: insert the IP checksum.
const POPTS_IXSM: u8 = 1 << 0;
/// Data POPTS.TXSM: insert the TCP/UDP checksum.
const POPTS_TXSM: u8 = 1 << 1;
/// DTYP of a context descriptor.
const DTYP_CONTEXT: u8 = 0;
/// DTYP of a data descriptor.
const DTYP_DATA: u8 = 1;
/// STA.DD: descriptor done.
pub const STA_DD: u8 = 1 << 0;
/// Largest packet the transmit FIFO assembles (a TSO packet of 64 KiB payload plus headers);
/// longer chains are dropped.
pub const MAX_PACKET: usize = 0x10000 + 0x100;
/// TCP flags FIN and PSH, cleared on all but the last TSO segment.
const TCP_FIN_PSH: u8 = 0x01 | 0x08;

/// A transmit descriptor as the NIC reads it (16 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxDescriptor {
    /// Legacy descriptor.
    Legacy {
        /// Buffer address.
        addr: u64,
        /// Buffer length.
        len: u16,
        /// Checksum offset (where IC stores it).
        cso: u8,
        /// Command bits.
        cmd: u8,
        /// Checksum start.
        css: u8,
    },
    /// TCP/IP context descriptor.
    Context(TxContext),
    /// TCP/IP data descriptor.
    Data {
        /// Buffer address.
        addr: u64,
        /// Buffer length (20 bits).
        len: u32,
        /// Command bits.
        dcmd: u8,
        /// Packet options (IXSM, TXSM).
        popts: u8,
    },
    /// DEXT set with a reserved descriptor type: skipped.
    Reserved {
        /// Command bits (RS still asks for a write-back).
        cmd: u8,
    },
}

impl TxDescriptor {
    /// Decodes the 16 bytes of a descriptor.
    pub fn parse(d: &[u8; 16]) -> Self {
        let u16_at = |i: usize| u16::from_le_bytes([d[i], d[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]]);
        let addr = u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
        let cmd = d[11];
        if cmd & CMD_DEXT == 0 {
            return TxDescriptor::Legacy { addr, len: u16_at(8), cso: d[10], cmd, css: d[13] };
        }
        let low = u32_at(8);
        match ((low >> 20) & 0xf) as u8 {
            DTYP_CONTEXT => TxDescriptor::Context(TxContext {
                ipcss: d[0],
                ipcso: d[1],
                ipcse: u16_at(2),
                tucss: d[4],
                tucso: d[5],
                tucse: u16_at(6),
                paylen: low & 0xf_ffff,
                tucmd: cmd,
                hdrlen: d[13],
                mss: u16_at(14),
            }),
            DTYP_DATA => TxDescriptor::Data { addr, len: low & 0xf_ffff, dcmd: cmd, popts: d[13] },
            _ => TxDescriptor::Reserved { cmd },
        }
    }

    /// The command byte (for RS).
    pub fn cmd(&self) -> u8 {
        match *self {
            TxDescriptor::Legacy { cmd, .. } | TxDescriptor::Reserved { cmd } => cmd,
            TxDescriptor::Context(c) => c.tucmd,
            TxDescriptor::Data { dcmd, .. } => dcmd,
        }
    }
}

/// The offload parameters a context descriptor sets for the data descriptors after it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxContext {
    /// IP checksum start.
    pub ipcss: u8,
    /// IP checksum offset.
    pub ipcso: u8,
    /// IP checksum end (inclusive; 0 = end of packet).
    pub ipcse: u16,
    /// TCP/UDP checksum start.
    pub tucss: u8,
    /// TCP/UDP checksum offset.
    pub tucso: u8,
    /// TCP/UDP checksum end (inclusive; 0 = end of packet).
    pub tucse: u16,
    /// TSO payload length.
    pub paylen: u32,
    /// TUCMD bits.
    pub tucmd: u8,
    /// TSO header length.
    pub hdrlen: u8,
    /// TSO maximum segment size.
    pub mss: u16,
}

/// A buffer the transmit path must fetch from guest memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetch {
    /// Guest-physical address.
    pub addr: u64,
    /// Bytes.
    pub len: usize,
}

/// Packet assembly across descriptors.
#[derive(Default)]
pub struct TxState {
    context: TxContext,
    packet: Vec<u8>,
    /// The packet outgrew [`MAX_PACKET`] or a buffer could not be read: drop it at EOP.
    dropping: bool,
}

impl TxState {
    /// What descriptor `d` asks to fetch (a buffer of a legacy or data descriptor), if anything.
    pub fn fetch(&self, d: &TxDescriptor) -> Option<Fetch> {
        match *d {
            TxDescriptor::Legacy { addr, len, .. } => Some(Fetch { addr, len: usize::from(len) }),
            TxDescriptor::Data { addr, len, .. } => Some(Fetch { addr, len: len as usize }),
            _ => None,
        }
    }

    /// True when the buffer of `len` more bytes need not be read: it would outgrow the packet
    /// buffer, or the packet is already lost.
    pub fn would_overflow(&self, len: usize) -> bool {
        self.dropping || self.packet.len().saturating_add(len) > MAX_PACKET
    }

    /// Marks the packet being assembled as lost (a buffer outside RAM, or too long).
    pub fn drop_packet(&mut self) {
        self.dropping = true;
    }

    /// Takes descriptor `d` with the bytes of its buffer (`data`, empty when it has none);
    /// pushes the frames a completed packet makes onto `out`.
    pub fn process(&mut self, d: &TxDescriptor, data: &[u8], out: &mut Vec<Vec<u8>>) {
        match *d {
            TxDescriptor::Context(c) => self.context = c,
            TxDescriptor::Reserved { .. } => {}
            TxDescriptor::Legacy { cso, cmd, css, .. } => {
                self.append(data);
                if cmd & CMD_EOP != 0 {
                    let mut frame = self.finish();
                    if let Some(frame) = &mut frame {
                        if cmd & CMD_IC != 0 {
                            insert_checksum(frame, usize::from(css), 0, usize::from(cso));
                        }
                    }
                    out.extend(frame);
                }
            }
            TxDescriptor::Data { dcmd, popts, .. } => {
                self.append(data);
                if dcmd & CMD_EOP != 0 {
                    let Some(frame) = self.finish() else { return };
                    if dcmd & CMD_TSE != 0 && self.context.tucmd & CMD_TSE != 0 {
                        segment(&self.context, popts, &frame, out);
                    } else {
                        let mut frame = frame;
                        offload_checksums(&self.context, popts, &mut frame);
                        out.push(frame);
                    }
                }
            }
        }
    }

    fn append(&mut self, data: &[u8]) {
        if self.dropping || self.would_overflow(data.len()) {
            self.dropping = true;
            return;
        }
        self.packet.extend_from_slice(data);
    }

    /// The assembled packet, unless it was dropped.
    fn finish(&mut self) -> Option<Vec<u8>> {
        let frame = std::mem::take(&mut self.packet);
        let dropped = std::mem::take(&mut self.dropping);
        if dropped {
            log::debug!("e1000: transmit packet dropped (too long or a buffer outside RAM)");
        }
        (!dropped && !frame.is_empty()).then_some(frame)
    }
}

/// Sums `frame[start..=end]` (`end` 0 or past the frame: to the end) with the 16-bit seed
/// already at `at`, and stores the complement there. Offsets outside the frame do nothing.
fn insert_checksum(frame: &mut [u8], start: usize, end: usize, at: usize) {
    let stop = if end == 0 || end >= frame.len() { frame.len() } else { end + 1 };
    if start >= stop || at + 2 > frame.len() {
        return;
    }
    let sum = checksum_finish(checksum_add(0, &frame[start..stop]));
    frame[at..at + 2].copy_from_slice(&sum.to_be_bytes());
}

/// The IP and TCP/UDP checksums POPTS asks for, with the context's offsets.
fn offload_checksums(c: &TxContext, popts: u8, frame: &mut [u8]) {
    if popts & POPTS_IXSM != 0 {
        insert_checksum(frame, usize::from(c.ipcss), usize::from(c.ipcse), usize::from(c.ipcso));
    }
    if popts & POPTS_TXSM != 0 {
        insert_checksum(frame, usize::from(c.tucss), usize::from(c.tucse), usize::from(c.tucso));
    }
}

fn get_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    if let Some(s) = b.get_mut(at..at + 2) {
        s.copy_from_slice(&v.to_be_bytes());
    }
}

/// TCP segmentation: `packet` is HDRLEN bytes of headers and the payload; each segment gets
/// a copy of the headers with the IP length and ID, the TCP sequence number and flags (or the
/// UDP length) fixed, then its checksums. The TCP/UDP checksum field holds the pseudo-header
/// sum without the length, which is added per segment (SDM section 3.5.4).
fn segment(c: &TxContext, popts: u8, packet: &[u8], out: &mut Vec<Vec<u8>>) {
    let hdrlen = usize::from(c.hdrlen);
    let mss = usize::from(c.mss);
    if mss == 0 || hdrlen > packet.len() {
        log::debug!("e1000: TSO packet with MSS 0 or headers past its end dropped");
        return;
    }
    let (header, payload) = packet.split_at(hdrlen);
    let ipcss = usize::from(c.ipcss);
    let tucss = usize::from(c.tucss);
    let tucso = usize::from(c.tucso);
    let seed = get_u16(header, tucso).unwrap_or(0);
    let chunks: Vec<&[u8]> = if payload.is_empty() { vec![payload] } else { payload.chunks(mss).collect() };
    let last = chunks.len() - 1;
    let mut offset = 0u32;
    for (i, chunk) in chunks.into_iter().enumerate() {
        let mut frame = Vec::with_capacity(hdrlen + chunk.len());
        frame.extend_from_slice(header);
        frame.extend_from_slice(chunk);
        let len = frame.len();
        if c.tucmd & TUCMD_IP != 0 {
            put_u16(&mut frame, ipcss + 2, len.saturating_sub(ipcss) as u16);
            let id = get_u16(&frame, ipcss + 4).unwrap_or(0).wrapping_add(i as u16);
            put_u16(&mut frame, ipcss + 4, id);
        } else {
            put_u16(&mut frame, ipcss + 4, len.saturating_sub(ipcss + 40) as u16);
        }
        if c.tucmd & TUCMD_TCP != 0 {
            if let (Some(hi), Some(lo)) = (get_u16(&frame, tucss + 4), get_u16(&frame, tucss + 6)) {
                let seq = (u32::from(hi) << 16 | u32::from(lo)).wrapping_add(offset);
                put_u16(&mut frame, tucss + 4, (seq >> 16) as u16);
                put_u16(&mut frame, tucss + 6, seq as u16);
            }
            if i != last {
                if let Some(flags) = frame.get_mut(tucss + 13) {
                    *flags &= !TCP_FIN_PSH;
                }
            }
        } else {
            put_u16(&mut frame, tucss + 4, len.saturating_sub(tucss) as u16);
        }
        if popts & POPTS_TXSM != 0 {
            let with_len = u32::from(seed) + len.saturating_sub(tucss) as u32;
            put_u16(&mut frame, tucso, ((with_len & 0xffff) + (with_len >> 16)) as u16);
        }
        offload_checksums(c, popts, &mut frame);
        out.push(frame);
        offset = offset.wrapping_add(chunk.len() as u32);
    }
}
