//! Serial backends: where a UART's bytes go and where its input comes from.

use crate::config::SerialBackend;
use crate::error::RunError;
use std::io::{Read, Write};
use std::sync::mpsc::{self, Receiver};

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

/// Opens `backend`'s output: bytes the guest transmits are written there unbuffered, so
/// output appears as the guest produces it.
pub fn open_output(backend: &SerialBackend) -> Result<Box<dyn Write + Send>, RunError> {
    Ok(match backend {
        SerialBackend::Stdio => Box::new(StdoutSink),
        SerialBackend::File(path) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| RunError::Serial(format!("{}: {e}", path.display())))?,
        ),
        SerialBackend::None => Box::new(std::io::sink()),
    })
}

/// Starts reading `backend`'s input (bytes typed by the user, read on a helper thread);
/// `None` for backends without input. Called once per run: the source outlives resets.
pub fn open_input(backend: &SerialBackend) -> Option<Receiver<Vec<u8>>> {
    matches!(backend, SerialBackend::Stdio).then(stdin_reader)
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
