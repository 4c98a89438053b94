//! Serial backends: where a UART's bytes go and where its input comes from.

use crate::config::SerialBackend;
use crate::error::RunError;
use std::io::{Read, Write};
use std::sync::mpsc::{self, Receiver};

/// A UART's output sink and optional input source.
pub struct SerialIo {
    /// Bytes the guest transmits are written here (unbuffered, so output appears as
    /// the guest produces it).
    pub output: Box<dyn Write + Send>,
    /// Bytes typed by the user, read on a helper thread.
    pub input: Option<Receiver<Vec<u8>>>,
}

struct StdoutSink;

impl Write for StdoutSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut out = std::io::stdout().lock();
        out.write_all(buf)?;
        out.flush()?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}

fn stdin_reader() -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new().name("rx86-stdin".into()).spawn(move || {
        let mut buf = [0u8; 256];
        let mut stdin = std::io::stdin();
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    if let Err(e) = spawned {
        log::warn!("no serial input: cannot start the stdin thread: {e}");
    }
    rx
}

/// Opens `backend`.
pub fn open(backend: &SerialBackend) -> Result<SerialIo, RunError> {
    Ok(match backend {
        SerialBackend::Stdio => SerialIo { output: Box::new(StdoutSink), input: Some(stdin_reader()) },
        SerialBackend::File(path) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| RunError::Serial(format!("{}: {e}", path.display())))?;
            SerialIo { output: Box::new(f), input: None }
        }
        SerialBackend::None => SerialIo { output: Box::new(std::io::sink()), input: None },
    })
}

/// Parses a `--serial` value: `stdio`, `file:PATH` or `none` (also `null`).
pub fn parse_backend(s: &str) -> Result<SerialBackend, String> {
    match s {
        "stdio" | "mon:stdio" => Ok(SerialBackend::Stdio),
        "none" | "null" => Ok(SerialBackend::None),
        _ => match s.strip_prefix("file:") {
            Some(p) if !p.is_empty() => Ok(SerialBackend::File(p.into())),
            _ => Err(format!("unknown serial backend '{s}' (expected stdio, file:PATH or none)")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_backends() {
        assert_eq!(parse_backend("stdio"), Ok(SerialBackend::Stdio));
        assert_eq!(parse_backend("none"), Ok(SerialBackend::None));
        assert_eq!(parse_backend("file:/tmp/x"), Ok(SerialBackend::File("/tmp/x".into())));
        assert!(parse_backend("file:").is_err());
        assert!(parse_backend("tcp:1234").is_err());
    }
}
