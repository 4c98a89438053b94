//! A packet capture in the classic libpcap format (Wireshark, tcpdump): a 24-byte global
//! header with link type 1 (Ethernet), then one 16-byte record header per frame. Timestamps
//! are machine time, so a capture of a virtual-clock run lines up with the guest's clock.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// Magic number, microsecond timestamps, written in host (little-endian) order.
const MAGIC: u32 = 0xa1b2_c3d4;
/// LINKTYPE_ETHERNET.
const LINKTYPE_ETHERNET: u32 = 1;
/// Longest frame recorded whole.
const SNAPLEN: u32 = 65_535;

/// An open capture file.
pub struct PcapWriter {
    out: BufWriter<File>,
}

impl PcapWriter {
    /// Creates `path` and writes the global header.
    pub fn create(path: &Path) -> io::Result<Self> {
        let mut out = BufWriter::new(File::create(path)?);
        out.write_all(&MAGIC.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?;
        out.write_all(&0u32.to_le_bytes())?;
        out.write_all(&SNAPLEN.to_le_bytes())?;
        out.write_all(&LINKTYPE_ETHERNET.to_le_bytes())?;
        out.flush()?;
        Ok(PcapWriter { out })
    }

    /// Records `frame` (Ethernet header on, no CRC) at machine time `now_ns`.
    pub fn record(&mut self, now_ns: u64, frame: &[u8]) -> io::Result<()> {
        let len = frame.len().min(SNAPLEN as usize);
        let seconds = (now_ns / 1_000_000_000) as u32;
        let micros = ((now_ns % 1_000_000_000) / 1000) as u32;
        self.out.write_all(&seconds.to_le_bytes())?;
        self.out.write_all(&micros.to_le_bytes())?;
        self.out.write_all(&(len as u32).to_le_bytes())?;
        self.out.write_all(&(frame.len() as u32).to_le_bytes())?;
        self.out.write_all(&frame[..len])
    }

    /// Writes buffered records to the file.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl Drop for PcapWriter {
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}

/// The frames of a capture written by [`PcapWriter`] (for tests): (timestamp in
/// microseconds, frame).
pub fn read_capture(bytes: &[u8]) -> Option<Vec<(u64, Vec<u8>)>> {
    let u32_at = |at: usize| -> Option<u32> { Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?)) };
    if u32_at(0)? != MAGIC || u32_at(20)? != LINKTYPE_ETHERNET {
        return None;
    }
    let mut at = 24;
    let mut frames = Vec::new();
    while at < bytes.len() {
        let seconds = u64::from(u32_at(at)?);
        let micros = u64::from(u32_at(at + 4)?);
        let len = u32_at(at + 8)? as usize;
        let frame = bytes.get(at + 16..at + 16 + len)?.to_vec();
        frames.push((seconds * 1_000_000 + micros, frame));
        at += 16 + len;
    }
    Some(frames)
}
