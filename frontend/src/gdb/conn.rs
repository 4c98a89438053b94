//! The gdb connection, with the framing checked before `gdbstub` sees a byte (GDB manual,
//! "Overview" of the remote protocol: `$packet-data#checksum`, `+`/`-` acks, 0x03 for
//! Ctrl-C). `gdbstub` ends a session on any byte outside a packet, on a bad checksum and on
//! a NAK; a noisy or hostile peer should instead get a `-` (please resend) for a corrupt
//! packet and have stray bytes ignored, so this layer hands on only whole packets whose
//! checksum is right, acks and interrupts.

use gdbstub::conn::{Connection, ConnectionExt};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::TcpStream;

/// Longest packet accepted; longer ones are dropped (gdb never sends more than the
/// `PacketSize` the stub announces, a few KiB).
const MAX_PACKET: usize = 64 * 1024;

/// A TCP connection that passes only well-framed input to `gdbstub`.
pub struct FramedStream {
    stream: TcpStream,
    /// Bytes of checked packets not yet handed on.
    ready: VecDeque<u8>,
}

impl FramedStream {
    /// Wraps an accepted connection.
    pub fn new(stream: TcpStream) -> Self {
        FramedStream { stream, ready: VecDeque::new() }
    }

    fn read_byte(&mut self) -> io::Result<u8> {
        self.stream.set_nonblocking(false)?;
        let mut b = [0u8];
        self.stream.read_exact(&mut b)?;
        Ok(b[0])
    }

    /// Reads until one acceptable unit (a packet, an ack, an interrupt) is queued.
    fn fill(&mut self) -> io::Result<()> {
        while self.ready.is_empty() {
            match self.read_byte()? {
                b'$' => self.read_packet()?,
                b @ (b'+' | 0x03) => self.ready.push_back(b),
                b'-' => log::warn!("gdb: the client asked for a resend; ignored (responses are not kept)"),
                other => log::debug!("gdb: stray byte {other:#04x} outside a packet ignored"),
            }
        }
        Ok(())
    }

    /// Reads a packet's body and checksum after its `$`; queues it when the checksum is
    /// right, else asks for a resend.
    fn read_packet(&mut self) -> io::Result<()> {
        let mut body = Vec::new();
        loop {
            match self.read_byte()? {
                b'#' => break,
                // A new start: the previous packet was cut short.
                b'$' => body.clear(),
                b => body.push(b),
            }
            if body.len() > MAX_PACKET {
                log::warn!("gdb: packet longer than {MAX_PACKET} bytes dropped");
                self.skip_to_end()?;
                return Write::write_all(&mut self.stream, b"-");
            }
        }
        let sum = [self.read_byte()?, self.read_byte()?];
        let want = std::str::from_utf8(&sum).ok().and_then(|s| u8::from_str_radix(s, 16).ok());
        let got = body.iter().fold(0u8, |a, b| a.wrapping_add(*b));
        if want != Some(got) {
            log::warn!("gdb: packet with a bad checksum dropped");
            return Write::write_all(&mut self.stream, b"-");
        }
        self.ready.push_back(b'$');
        self.ready.extend(body);
        self.ready.push_back(b'#');
        self.ready.extend(sum);
        Ok(())
    }

    /// Discards input up to the end of an oversized packet (`#` and two checksum digits).
    fn skip_to_end(&mut self) -> io::Result<()> {
        while self.read_byte()? != b'#' {}
        self.read_byte()?;
        self.read_byte()?;
        Ok(())
    }
}

impl FramedStream {
    /// Waits at most `timeout` for a byte from gdb; true when one is there (or the
    /// connection ended, which the next read reports).
    pub fn wait_readable(&mut self, timeout: std::time::Duration) -> io::Result<bool> {
        if !self.ready.is_empty() {
            return Ok(true);
        }
        self.stream.set_nonblocking(false)?;
        self.stream.set_read_timeout(Some(timeout))?;
        let mut b = [0u8];
        let result = match self.stream.peek(&mut b) {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => Ok(false),
            Err(e) => Err(e),
        };
        self.stream.set_read_timeout(None)?;
        result
    }
}

impl Connection for FramedStream {
    type Error = io::Error;

    fn write(&mut self, byte: u8) -> io::Result<()> {
        Write::write_all(&mut self.stream, &[byte])
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        Write::write_all(&mut self.stream, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Write::flush(&mut self.stream)
    }

    fn on_session_start(&mut self) -> io::Result<()> {
        // Small packets both ways: do not let Nagle delay them.
        self.stream.set_nodelay(true)
    }
}

impl ConnectionExt for FramedStream {
    fn read(&mut self) -> io::Result<u8> {
        self.fill()?;
        Ok(self.ready.pop_front().expect("fill queued a byte"))
    }

    /// Whether input is waiting, without blocking: stray bytes are consumed here, so
    /// noise alone never stops a running guest.
    fn peek(&mut self) -> io::Result<Option<u8>> {
        loop {
            if let Some(b) = self.ready.front() {
                return Ok(Some(*b));
            }
            self.stream.set_nonblocking(true)?;
            let mut b = [0u8];
            let n = match self.stream.peek(&mut b) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "gdb closed the connection"));
            }
            match b[0] {
                b'$' | b'+' | 0x03 => return Ok(Some(b[0])),
                _ => {
                    // Consume the stray byte (or NAK) and look again.
                    self.read_byte()?;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A connected pair: (our side wrapped, the peer).
    fn pair() -> (FramedStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (ours, _) = l.accept().unwrap();
        (FramedStream::new(ours), peer)
    }

    fn read_n(s: &mut FramedStream, n: usize) -> Vec<u8> {
        (0..n).map(|_| ConnectionExt::read(s).unwrap()).collect()
    }

    #[test]
    fn stray_bytes_and_naks_are_dropped_and_packets_pass() {
        let (mut s, mut peer) = pair();
        Write::write_all(&mut peer, b"junk-\x00$g#67+\x03").unwrap();
        assert_eq!(read_n(&mut s, 7), b"$g#67+\x03");
    }

    #[test]
    fn a_bad_checksum_is_answered_with_a_nak() {
        let (mut s, mut peer) = pair();
        Write::write_all(&mut peer, b"$g#00$?#3f").unwrap();
        assert_eq!(read_n(&mut s, 5), b"$?#3f");
        let mut nak = [0u8];
        peer.read_exact(&mut nak).unwrap();
        assert_eq!(&nak, b"-");
    }

    #[test]
    fn an_oversized_packet_is_skipped() {
        let (mut s, mut peer) = pair();
        let mut big = vec![b'$'];
        big.extend(std::iter::repeat_n(b'A', MAX_PACKET + 10));
        big.extend(b"#00$?#3f");
        let writer = std::thread::spawn(move || Write::write_all(&mut peer, &big).unwrap());
        assert_eq!(read_n(&mut s, 5), b"$?#3f");
        writer.join().unwrap();
    }

    #[test]
    fn peek_skips_noise_and_reports_a_close() {
        let (mut s, mut peer) = pair();
        assert_eq!(s.peek().unwrap(), None);
        Write::write_all(&mut peer, b"xyz").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(s.peek().unwrap(), None, "noise alone is not input");
        Write::write_all(&mut peer, &[0x03]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(s.peek().unwrap(), Some(0x03));
        assert_eq!(ConnectionExt::read(&mut s).unwrap(), 0x03);
        drop(peer);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(s.peek().is_err());
    }
}
