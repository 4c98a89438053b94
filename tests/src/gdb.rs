//! Helpers for the gdb stub tests: the multi-mode test kernel, an `rx86` started with
//! `--gdb 127.0.0.1:0 -S` whose chosen port is read from its stderr, Debian's `gdb` in batch
//! mode, and a raw remote-protocol client for the hostile-input tests.

use crate::guests::{build_elf32_guest, guest_sources_root};
use crate::rx86_bin::rx86_binary;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Where Debian installs gdb.
pub const GDB: &str = "/usr/bin/gdb";

/// Why gdb tests cannot run here, or `None` when gdb is installed.
pub fn gdb_unavailable() -> Option<String> {
    (!Path::new(GDB).is_file()).then(|| format!("{GDB} is not installed (apt-get install gdb)"))
}

/// Builds (or finds) the `tests/guests/gdb-modes` kernel: protected -> real -> protected ->
/// long mode with symbols to break on in each (see its `boot.S`).
pub fn gdb_modes_kernel() -> PathBuf {
    build_elf32_guest("gdb-modes", &guest_sources_root().join("gdb-modes")).expect("build the gdb-modes guest")
}

/// An `rx86` serving gdb on a free local port.
pub struct StubProcess {
    child: Child,
    /// `HOST:PORT` the stub listens on.
    pub address: String,
    stderr: mpsc::Receiver<String>,
}

impl StubProcess {
    /// Starts `rx86 run ARGS --gdb 127.0.0.1:0 -S` and waits until it listens.
    pub fn start(args: &[&str]) -> StubProcess {
        let mut child = Command::new(rx86_binary())
            .arg("run")
            .args(args)
            .args(["--gdb", "127.0.0.1:0", "-S"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rx86");
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = String::new();
        let address = loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    if let Some(rest) = line.split("listening on ").nth(1) {
                        break rest.split([' ', ';']).next().unwrap_or_default().to_string();
                    }
                    seen.push_str(&line);
                    seen.push('\n');
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("rx86 never said where the gdb stub listens; stderr:\n{seen}");
                }
            }
        };
        StubProcess { child, address, stderr: rx }
    }

    /// Waits for rx86 to end (killing it after `limit`): its exit status (`None` when
    /// killed), stdout and the rest of its stderr.
    pub fn finish(mut self, limit: Duration) -> (Option<i32>, String, String) {
        let deadline = std::time::Instant::now() + limit;
        let status = loop {
            match self.child.try_wait().expect("wait for rx86") {
                Some(s) => break s.code(),
                None if std::time::Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let mut out = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        let err: Vec<String> = self.stderr.try_iter().collect();
        (status, out, err.join("\n"))
    }
}

/// Runs `gdb -batch -nx` with `program` loaded by `file` (which also sets gdb's architecture
/// to the ELF's), connected to `address`, then `commands`; returns everything gdb printed.
pub fn run_gdb(program: &Path, address: &str, commands: &[&str], limit: Duration) -> Output {
    run_gdb_with(&[&format!("file {}", program.display())], address, commands, limit)
}

/// Runs `gdb -batch -nx`: `setup` (before connecting), `target remote address`, then
/// `commands`; returns everything gdb printed.
pub fn run_gdb_with(setup: &[&str], address: &str, commands: &[&str], limit: Duration) -> Output {
    let mut cmd = Command::new(GDB);
    cmd.args(["-batch", "-nx", "-ex", "set confirm off", "-ex", "set pagination off"]);
    for c in setup {
        cmd.args(["-ex", c]);
    }
    cmd.args(["-ex", &format!("target remote {address}")]);
    for c in commands {
        cmd.args(["-ex", c]);
    }
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn gdb");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("gdb output"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("gdb did not finish within {limit:?}");
        }
    }
}

/// A remote-protocol packet: `$data#checksum`.
pub fn packet(data: &str) -> Vec<u8> {
    let sum = data.bytes().fold(0u8, |a, b| a.wrapping_add(b));
    format!("${data}#{sum:02x}").into_bytes()
}

/// A bare remote-protocol client (no-ack mode is never negotiated: every packet is acked).
pub struct RawClient {
    stream: TcpStream,
}

impl RawClient {
    /// Connects to the stub.
    pub fn connect(address: &str) -> RawClient {
        let stream = TcpStream::connect(address).expect("connect to the gdb stub");
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("read timeout");
        RawClient { stream }
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send to the stub");
    }

    /// Sends a packet and returns the reply's payload (acks are skipped and given).
    pub fn request(&mut self, data: &str) -> String {
        self.send_raw(&packet(data));
        self.reply()
    }

    /// Reads the next packet's payload, or `None` when the stub closed the connection.
    pub fn try_reply(&mut self) -> Option<String> {
        self.read_packet().ok()
    }

    /// Reads the next packet's payload, acking it.
    pub fn reply(&mut self) -> String {
        self.read_packet().expect("read a packet from the stub")
    }

    fn read_packet(&mut self) -> std::io::Result<String> {
        let mut byte = [0u8];
        loop {
            self.stream.read_exact(&mut byte)?;
            if byte[0] == b'$' {
                break;
            }
        }
        let mut payload = Vec::new();
        loop {
            self.stream.read_exact(&mut byte)?;
            if byte[0] == b'#' {
                break;
            }
            payload.push(byte[0]);
        }
        let mut sum = [0u8; 2];
        self.stream.read_exact(&mut sum)?;
        self.stream.write_all(b"+")?;
        Ok(String::from_utf8_lossy(&payload).into_owned())
    }

    /// Closes the connection abruptly.
    pub fn drop_connection(self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// Writes `base` followed by an uncompressed cpio archive whose `/init` is `script` to
/// `out`: Linux unpacks both archives in order, so this `/init` replaces the base one.
pub fn initrd_with_init(base: &Path, script: &str, out: &Path) -> std::io::Result<()> {
    let mut data = std::fs::read(base)?;
    let mut archive = crate::cpio::NewcArchive::new();
    archive.file("init", 0o755, script.as_bytes());
    crate::cpio::append_archive(&mut data, &archive.finish());
    std::fs::write(out, data)
}

/// Asserts that `text` contains each of `wanted`, in order.
pub fn assert_in_order(text: &str, wanted: &[&str]) {
    let mut rest = text;
    for w in wanted {
        match rest.find(w) {
            Some(i) => rest = &rest[i + w.len()..],
            None => panic!("missing (in order) {w:?} in gdb output:\n{text}"),
        }
    }
}

/// gdb in batch mode with no symbols at all.
pub fn run_gdb_without_symbols(address: &str, commands: &[&str], limit: Duration) -> Output {
    let mut all = vec![format!("target remote {address}")];
    all.extend(commands.iter().map(|c| c.to_string()));
    let mut cmd = Command::new(GDB);
    cmd.args(["-batch", "-nx", "-ex", "set confirm off", "-ex", "set pagination off"]);
    for c in &all {
        cmd.args(["-ex", c]);
    }
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn gdb");
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(limit).map(|o| o.expect("gdb output")).unwrap_or_else(|_| {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        panic!("gdb did not finish within {limit:?}")
    })
}

/// Where the address of `start_kernel` in `bzimage` booted with `nokaslr` is cached: a
/// file in the fixture cache named by the kernel's content hash. Any boot of that kernel
/// with `nokaslr` whose init prints /proc/kallsyms' line may fill it (the Linux boot test
/// does), so the gdb test needs no boot of its own to learn the address.
pub fn start_kernel_cache(bzimage: &Path) -> std::io::Result<PathBuf> {
    let image = std::fs::read(bzimage)?;
    // FNV-1a over the image.
    let hash = image.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ *b as u64).wrapping_mul(0x100_0000_01b3));
    Ok(crate::fixtures::cache_dir().join(format!("start_kernel-nokaslr-{hash:016x}.txt")))
}

/// The address of `start_kernel` from a console where the init printed the
/// `RX86-KALLSYMS` marker and then /proc/kallsyms' `start_kernel` line.
pub fn start_kernel_from_console(console: &str) -> Option<String> {
    console
        .split("RX86-KALLSYMS")
        .nth(1)?
        .lines()
        .find(|l| l.trim_end().ends_with(" start_kernel"))
        .and_then(|l| l.split_whitespace().next())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    #[test]
    fn start_kernel_is_read_after_the_marker() {
        let console = "ffffffff81000000 T _text\r\nRX86-KALLSYMS\r\nffffffff82e5a930 T start_kernel\r\nLinux\r\n";
        assert_eq!(super::start_kernel_from_console(console).as_deref(), Some("ffffffff82e5a930"));
        assert_eq!(super::start_kernel_from_console("ffffffff82e5a930 T start_kernel"), None, "no marker");
    }
}
