//! Recording and replaying what a NIC received, so that a virtual-clock run with network
//! traffic can be repeated exactly.
//!
//! Host traffic is the one input of a networked run that host timing decides: when a
//! host's reply reaches the NAT, and so at which guest instruction it enters the NIC. A
//! [`RecordingBackend`] wraps any backend and writes every frame the NIC accepted with the
//! machine time at which it did; a [`ReplayBackend`] hands the same frames to the NIC at the
//! same machine times and sends nothing anywhere. Frames enter the NIC only between turns of
//! the machine loop, and the replay's next frame time is a deadline of the loop
//! ([`NetBackend::next_event`]), so on the virtual clock each frame enters at the
//! instruction boundary it entered at when recorded, and the guest runs the same.
//!
//! The log is a libpcap capture with nanosecond timestamps (magic 0xA1B23C4D, link type
//! Ethernet) whose timestamps are machine time: Wireshark reads it as it reads `pcap=`.

use super::NetBackend;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// libpcap magic for nanosecond timestamps, written in host (little-endian) order.
const MAGIC_NS: u32 = 0xa1b2_3c4d;
/// LINKTYPE_ETHERNET.
const LINKTYPE_ETHERNET: u32 = 1;
/// Longest frame a log holds (an Ethernet frame with the largest jumbo payload fits).
pub const MAX_FRAME: usize = 65_535;
/// Bytes of the global header, and of each record's header.
const GLOBAL_HEADER: usize = 24;
const RECORD_HEADER: usize = 16;

/// Why a replay log cannot be used.
#[derive(Debug, Error)]
pub enum ReplayError {
    /// The file could not be read.
    #[error("network replay log {path}: {source}")]
    Read {
        /// The log.
        path: PathBuf,
        /// The host's error.
        source: io::Error,
    },
    /// The file is not a log written by `record=`.
    #[error("network replay log {path}: {reason}")]
    Format {
        /// The log.
        path: PathBuf,
        /// What is wrong, and where.
        reason: String,
    },
}

/// Writes received frames with their machine times.
struct LogWriter {
    out: BufWriter<File>,
}

impl LogWriter {
    fn create(path: &Path) -> io::Result<Self> {
        let mut out = BufWriter::new(File::create(path)?);
        for field in [MAGIC_NS.to_le_bytes(), [2, 0, 4, 0], [0; 4], [0; 4], (MAX_FRAME as u32).to_le_bytes()] {
            out.write_all(&field)?;
        }
        out.write_all(&LINKTYPE_ETHERNET.to_le_bytes())?;
        out.flush()?;
        Ok(LogWriter { out })
    }

    fn record(&mut self, now_ns: u64, frame: &[u8]) -> io::Result<()> {
        let len = frame.len().min(MAX_FRAME) as u32;
        let seconds = u32::try_from(now_ns / 1_000_000_000).unwrap_or(u32::MAX);
        let nanos = (now_ns % 1_000_000_000) as u32;
        for field in [seconds, nanos, len, frame.len() as u32] {
            self.out.write_all(&field.to_le_bytes())?;
        }
        self.out.write_all(&frame[..len as usize])?;
        // Flushed per frame: a run that is killed keeps what it received.
        self.out.flush()
    }
}

/// Parses a log: the frames in order with their machine times in nanoseconds. Times must
/// not decrease and every frame must be whole and at most [`MAX_FRAME`] bytes.
pub fn parse_log(bytes: &[u8]) -> Result<VecDeque<(u64, Vec<u8>)>, String> {
    let u32_at = |at: usize| bytes.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    if u32_at(0) != Some(MAGIC_NS) {
        return Err("not a nanosecond pcap log (written by --nic ...,record=FILE)".into());
    }
    if u32_at(20) != Some(LINKTYPE_ETHERNET) {
        return Err("the capture's link type is not Ethernet".into());
    }
    let mut frames = VecDeque::new();
    let mut at = GLOBAL_HEADER;
    let mut last = 0;
    while at < bytes.len() {
        let header = |i: usize| u32_at(at + 4 * i).ok_or_else(|| format!("record at byte {at} is cut short"));
        let (seconds, nanos, len) = (header(0)?, header(1)?, header(2)? as usize);
        if nanos >= 1_000_000_000 || len > MAX_FRAME {
            return Err(format!("record at byte {at} is damaged (nanoseconds {nanos}, length {len})"));
        }
        let time = u64::from(seconds) * 1_000_000_000 + u64::from(nanos);
        if time < last {
            return Err(format!("record at byte {at} goes back in time"));
        }
        let frame = bytes
            .get(at + RECORD_HEADER..at + RECORD_HEADER + len)
            .ok_or_else(|| format!("frame at byte {at} is cut short"))?;
        frames.push_back((time, frame.to_vec()));
        last = time;
        at += RECORD_HEADER + len;
    }
    Ok(frames)
}

/// A backend whose frames for the guest are also written to a log, with the machine time
/// at which the NIC took each.
pub struct RecordingBackend {
    inner: Box<dyn NetBackend>,
    log: LogWriter,
    path: PathBuf,
    recorded: u64,
}

impl RecordingBackend {
    /// Wraps `inner`, creating the log at `path`.
    pub fn new(inner: Box<dyn NetBackend>, path: &Path) -> io::Result<Self> {
        Ok(RecordingBackend { inner, log: LogWriter::create(path)?, path: path.to_path_buf(), recorded: 0 })
    }
}

impl NetBackend for RecordingBackend {
    fn transmit(&mut self, frame: &[u8], now_ns: u64) {
        self.inner.transmit(frame, now_ns);
    }
    fn poll(&mut self, now_ns: u64) {
        self.inner.poll(now_ns);
    }
    fn peek_for_guest(&self) -> Option<&[u8]> {
        self.inner.peek_for_guest()
    }
    fn pop_for_guest(&mut self, now_ns: u64) {
        if let Some(frame) = self.inner.peek_for_guest() {
            if let Err(e) = self.log.record(now_ns, frame) {
                log::error!("network record log {}: {e}; the replay will stop here", self.path.display());
            }
            self.recorded += 1;
        }
        self.inner.pop_for_guest(now_ns);
    }
    fn host_active(&self) -> bool {
        self.inner.host_active()
    }
    fn wait(&self, timeout: Duration) -> bool {
        self.inner.wait(timeout)
    }
    fn next_event(&self) -> Option<u64> {
        self.inner.next_event()
    }
    fn describe(&self) -> Vec<String> {
        let mut lines = self.inner.describe();
        lines.push(format!("recording to {}: {} frames", self.path.display(), self.recorded));
        lines
    }
}

/// A backend that plays a log back: each frame is offered to the NIC from its recorded
/// machine time on; what the guest sends goes nowhere.
pub struct ReplayBackend {
    frames: VecDeque<(u64, Vec<u8>)>,
    now_ns: u64,
    path: PathBuf,
    dropped_tx: u64,
}

impl ReplayBackend {
    /// Reads the log at `path`.
    pub fn open(path: &Path) -> Result<Self, ReplayError> {
        let bytes = std::fs::read(path).map_err(|source| ReplayError::Read { path: path.to_path_buf(), source })?;
        Self::from_bytes(&bytes, path)
    }

    /// A replay of the log `bytes` (read from `path`, for messages).
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, ReplayError> {
        let frames = parse_log(bytes).map_err(|reason| ReplayError::Format { path: path.to_path_buf(), reason })?;
        Ok(ReplayBackend { frames, now_ns: 0, path: path.to_path_buf(), dropped_tx: 0 })
    }
}

impl NetBackend for ReplayBackend {
    fn transmit(&mut self, _frame: &[u8], _now_ns: u64) {
        self.dropped_tx += 1;
    }
    fn poll(&mut self, now_ns: u64) {
        self.now_ns = now_ns;
    }
    fn peek_for_guest(&self) -> Option<&[u8]> {
        self.frames.front().filter(|(at, _)| *at <= self.now_ns).map(|(_, frame)| frame.as_slice())
    }
    fn pop_for_guest(&mut self, _now_ns: u64) {
        self.frames.pop_front();
    }
    fn host_active(&self) -> bool {
        false
    }
    fn wait(&self, _timeout: Duration) -> bool {
        false
    }
    /// The next frame's time while it is still ahead: a frame already due waits for room in
    /// the NIC's ring, which only the guest can make, so it is no deadline.
    fn next_event(&self) -> Option<u64> {
        self.frames.front().map(|(at, _)| *at).filter(|&at| at > self.now_ns)
    }
    fn describe(&self) -> Vec<String> {
        vec![format!(
            "replaying {}: {} frames left, next at {} ns; {} frames from the guest dropped",
            self.path.display(),
            self.frames.len(),
            self.frames.front().map_or("-".into(), |(t, _)| t.to_string()),
            self.dropped_tx
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::TempPath;

    /// A backend that offers a fixed list of frames.
    struct Fixed(VecDeque<Vec<u8>>);

    impl NetBackend for Fixed {
        fn transmit(&mut self, _: &[u8], _: u64) {}
        fn poll(&mut self, _: u64) {}
        fn peek_for_guest(&self) -> Option<&[u8]> {
            self.0.front().map(Vec::as_slice)
        }
        fn pop_for_guest(&mut self, _: u64) {
            self.0.pop_front();
        }
        fn host_active(&self) -> bool {
            true
        }
        fn wait(&self, _: Duration) -> bool {
            false
        }
        fn describe(&self) -> Vec<String> {
            Vec::new()
        }
    }

    #[test]
    fn what_was_received_replays_at_the_same_machine_times() {
        let log = TempPath::new("net.rr");
        let frames: VecDeque<Vec<u8>> = [vec![1u8; 60], vec![2u8; 1514], vec![3u8; 42]].into();
        let mut rec = RecordingBackend::new(Box::new(Fixed(frames.clone())), &log.0).unwrap();
        for t in [1_500_000_000u64, 1_500_000_000, 7_000_000_123] {
            assert!(rec.peek_for_guest().is_some());
            rec.pop_for_guest(t);
        }
        drop(rec);
        let mut replay = ReplayBackend::open(&log.0).unwrap();
        assert!(!replay.host_active());
        assert_eq!(replay.next_event(), Some(1_500_000_000));
        replay.poll(1_499_999_999);
        assert_eq!(replay.peek_for_guest(), None, "not before its time");
        replay.poll(1_500_000_000);
        assert_eq!(replay.next_event(), None, "a due frame is not a deadline");
        for want in frames.iter().take(2) {
            assert_eq!(replay.peek_for_guest(), Some(want.as_slice()));
            replay.pop_for_guest(1_500_000_000);
        }
        assert_eq!((replay.peek_for_guest(), replay.next_event()), (None, Some(7_000_000_123)));
        replay.transmit(&[0; 60], 2_000_000_000);
        replay.poll(7_000_000_123);
        assert_eq!(replay.peek_for_guest(), Some(frames[2].as_slice()));
        replay.pop_for_guest(7_000_000_123);
        assert_eq!(replay.next_event(), None);
    }

    #[test]
    fn damaged_logs_are_refused_with_the_place() {
        let log = TempPath::new("good.rr");
        let mut w = LogWriter::create(&log.0).unwrap();
        w.record(5, &[9; 20]).unwrap();
        w.record(10, &[8; 20]).unwrap();
        drop(w);
        let good = std::fs::read(&log.0).unwrap();
        assert_eq!(parse_log(&good).unwrap().len(), 2);
        let mut cut = good.clone();
        cut.pop();
        assert!(parse_log(&cut).unwrap_err().contains("cut short"));
        let mut back = good.clone();
        back[GLOBAL_HEADER + RECORD_HEADER + 20 + 4] = 0;
        assert!(parse_log(&back).unwrap_err().contains("back in time"));
        let mut long = good.clone();
        long[GLOBAL_HEADER + 8..GLOBAL_HEADER + 12].copy_from_slice(&(1u32 << 20).to_le_bytes());
        assert!(parse_log(&long).unwrap_err().contains("damaged"));
        assert!(parse_log(b"not a log at all, really not").unwrap_err().contains("not a nanosecond pcap"));
        let e = ReplayBackend::from_bytes(&cut, Path::new("x.rr")).err().unwrap();
        assert!(e.to_string().starts_with("network replay log x.rr: "), "{e}");
    }

    /// Random damage: an error or frames, never a panic.
    #[test]
    fn fuzz_parse_log() {
        let log = TempPath::new("fuzz.rr");
        let mut w = LogWriter::create(&log.0).unwrap();
        for i in 0..8u64 {
            w.record(i * 1000, &vec![i as u8; 60 + i as usize]).unwrap();
        }
        drop(w);
        let good = std::fs::read(&log.0).unwrap();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut bytes = good.clone();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed as usize) % bytes.len();
                bytes[at] = (seed >> 32) as u8;
            }
            bytes.truncate(GLOBAL_HEADER + (seed >> 40) as usize % bytes.len());
            let _ = parse_log(&bytes);
        }
    }
}
