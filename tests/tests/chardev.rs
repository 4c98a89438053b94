//! Character devices as QEMU users attach them: a guest's COM1 over a TCP server socket, a
//! Unix socket (`-chardev socket,...` with `nowait`, reconnecting) and a pty; COM2 to a file;
//! the monitor over a socket; COM1 and the monitor sharing stdio (`-nographic`, `Ctrl-A c`,
//! `Ctrl-A x`). The guest (`tests/guests/serial-echo`) prints a banner on COM1 and a line on
//! COM2, echoes COM1 input upper-cased, and on `q` says bye on COM2 and exits through
//! isa-debug-exit with status 67.

use rx86_tests::boot_media::boot_sector_floppy;
use rx86_tests::rx86_bin::rx86_binary;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// Time allowed for anything a test waits for.
const LIMIT: Duration = Duration::from_secs(60);

/// The guest's exit status: isa-debug-exit value 0x21.
const GUEST_EXIT: i32 = 0x43;

/// A fresh scratch directory for one test.
fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rx86-chardev-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// rx86 running the echo guest, its standard error read line by line on a thread.
struct Run {
    child: Child,
    stderr: Receiver<String>,
    /// Standard error so far, for messages.
    seen: String,
}

impl Run {
    fn start(tag: &str, args: &[&str]) -> Run {
        Self::start_with_stdin(tag, args, Stdio::null())
    }

    fn start_with_stdin(tag: &str, args: &[&str], stdin: Stdio) -> Run {
        let floppy = boot_sector_floppy("serial-echo", tag).expect("build the serial-echo guest");
        let mut child = Command::new(rx86_binary())
            .args(["run", "--fda"])
            .arg(&floppy)
            .args(["--boot", "a", "--snapshot", "--debug-exit"])
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rx86");
        let err = child.stderr.take().unwrap();
        let (tx, stderr) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // The image is only read (--snapshot) and rx86 has opened it by the time it prints.
        let run = Run { child, stderr, seen: String::new() };
        std::thread::spawn(move || {
            std::thread::sleep(LIMIT);
            let _ = std::fs::remove_file(floppy);
        });
        run
    }

    /// Waits for a standard error line containing `marker`; returns the line.
    fn line_with(&mut self, marker: &str) -> String {
        let start = Instant::now();
        loop {
            let left = LIMIT.saturating_sub(start.elapsed());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push_str(&line);
                    self.seen.push('\n');
                    if line.contains(marker) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {marker:?} on standard error:\n{}", self.seen),
            }
        }
    }

    /// Waits for rx86 to end; its exit status.
    fn status(mut self) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if start.elapsed() > LIMIT {
                let _ = self.child.kill();
                panic!("rx86 did not end; standard error so far:\n{}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Run {
    /// A failed test does not leave rx86 running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The TCP port in a "... on tcp:127.0.0.1:PORT,..." line.
fn tcp_port(line: &str) -> u16 {
    let after = line.split("tcp:127.0.0.1:").nth(1).unwrap_or_else(|| panic!("no address in {line:?}"));
    after.split(',').next().unwrap().parse().unwrap_or_else(|_| panic!("no port in {line:?}"))
}

/// Reads from `stream` until what was read contains `want`; returns all of it.
fn read_until(stream: &mut impl Read, want: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !String::from_utf8_lossy(&got).contains(want) {
        match stream.read(&mut buf) {
            Ok(0) => panic!("end of stream before {want:?}; got {:?}", String::from_utf8_lossy(&got)),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("reading for {want:?}: {e}; got {:?}", String::from_utf8_lossy(&got)),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn tcp_connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to rx86");
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    stream
}

fn unix_connect(path: &Path) -> UnixStream {
    let stream = UnixStream::connect(path).expect("connect to rx86");
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    stream
}

#[test]
fn com1_over_a_tcp_server_talks_to_the_guest_and_com2_logs_to_a_file() {
    let dir = scratch("tcp");
    let com2 = dir.join("com2.log");
    let com2_arg = format!("file:{}", com2.display());
    // Port 0: rx86 picks a free port and names it, as QEMU does. Without nowait the guest
    // waits for the client, so nothing it prints is lost.
    let mut run = Run::start("tcp", &["-serial", "tcp:127.0.0.1:0,server", "-serial", &com2_arg]);
    let line = run.line_with("waiting for a connection on tcp:127.0.0.1:");
    assert!(line.starts_with("rx86: serial0: "), "{line}");
    let mut com1 = tcp_connect(tcp_port(&line));
    let banner = read_until(&mut com1, "\r\n");
    assert_eq!(banner, "RX86-ECHO READY\r\n", "the whole banner, from its first byte");
    com1.write_all(b"hello, world").unwrap();
    assert_eq!(read_until(&mut com1, "HELLO, WORLD"), "HELLO, WORLD");
    com1.write_all(b"q").unwrap();
    assert_eq!(run.status(), Some(GUEST_EXIT));
    assert_eq!(std::fs::read_to_string(&com2).unwrap(), "COM2: kernel log\r\nCOM2: bye\r\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn com1_on_a_unix_socket_chardev_takes_a_client_after_the_start_and_another_after_it_left() {
    let dir = scratch("unix");
    let socket = dir.join("com1.sock");
    let chardev = format!("socket,id=s0,path={},server=on,wait=off", socket.display());
    let mut run = Run::start("unix", &["-chardev", &chardev, "-serial", "chardev:s0", "-serial", "null"]);
    run.line_with("listening on unix:");
    let mut first = unix_connect(&socket);
    // The banner may have gone out before this client came (dropped, as in QEMU); the echo
    // shows the guest is running and hears this client.
    first.write_all(b"abc").unwrap();
    read_until(&mut first, "ABC");
    drop(first);
    // The guest runs on; a second client is served once the first one is gone.
    let mut second = loop {
        let mut s = unix_connect(&socket);
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        s.write_all(b"x").unwrap();
        let mut buf = [0u8; 16];
        match s.read(&mut buf) {
            Ok(n) if buf[..n].contains(&b'X') => break s,
            // Refused while rx86 had not yet seen the first client leave: try again.
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    second.set_read_timeout(Some(LIMIT)).unwrap();
    second.write_all(b"yz").unwrap();
    read_until(&mut second, "YZ");
    second.write_all(b"q").unwrap();
    assert_eq!(run.status(), Some(GUEST_EXIT));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn com1_on_a_pty() {
    let mut run = Run::start("pty", &["-serial", "pty"]);
    let line = run.line_with("char device redirected to ");
    assert!(line.ends_with("(label serial0)"), "{line}");
    let path = line.split_whitespace().nth(4).expect("the pty's path");
    let mut pty = std::fs::OpenOptions::new().read(true).write(true).open(path).expect("open the pty");
    // rx86 holds the terminal side open in raw mode: the banner waited there unaltered.
    assert_eq!(read_until(&mut pty, "READY\r\n"), "RX86-ECHO READY\r\n");
    pty.write_all(b"pty").unwrap();
    read_until(&mut pty, "PTY");
    pty.write_all(b"q").unwrap();
    assert_eq!(run.status(), Some(GUEST_EXIT));
}

/// Reads from `stream` until what was read ends with `want`; returns all of it.
fn read_bytes_until(stream: &mut impl Read, want: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !got.ends_with(want) {
        match stream.read(&mut buf) {
            Ok(0) => panic!("end of stream before {want:02x?}; got {got:02x?}"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("reading for {want:02x?}: {e}; got {got:02x?}"),
        }
    }
    got
}

#[test]
fn com1_over_telnet_negotiates_and_strips_the_clients_commands() {
    let mut run = Run::start("telnet", &["-serial", "telnet:127.0.0.1:0,server"]);
    let line = run.line_with("waiting for a connection on telnet:127.0.0.1:");
    let port = line.split("telnet:127.0.0.1:").nth(1).and_then(|p| p.split(',').next()).unwrap();
    let mut com1 = tcp_connect(port.parse().unwrap());
    // WILL ECHO, WILL SUPPRESS-GO-AHEAD, WILL BINARY, DO BINARY, then the guest's banner.
    let start = read_bytes_until(&mut com1, b"RX86-ECHO READY\r\n");
    assert_eq!(start[..12], [255, 251, 1, 255, 251, 3, 255, 251, 0, 255, 253, 0], "{start:02x?}");
    // The client's answers and a subnegotiation never reach the guest; IAC IAC is one 0xFF,
    // which the guest echoes and the server doubles again.
    com1.write_all(&[255, 253, 1, b'a', 255, 250, 31, 0, 80, 0, 24, 255, 240, b'b', 255, 255]).unwrap();
    assert_eq!(read_bytes_until(&mut com1, b"AB\xff\xff"), b"AB\xff\xff");
    com1.write_all(b"q").unwrap();
    assert_eq!(run.status(), Some(GUEST_EXIT));
}

#[test]
fn monitor_over_tcp_greets_answers_and_quits() {
    let mut run = Run::start("monitor-tcp", &["-serial", "null", "-monitor", "tcp:127.0.0.1:0,server,nowait"]);
    let line = run.line_with("rx86: monitor: listening on tcp:127.0.0.1:");
    let mut monitor = tcp_connect(tcp_port(&line));
    let greeting = read_until(&mut monitor, "(rx86) ");
    assert!(greeting.starts_with("rx86 monitor - type 'help'"), "{greeting:?}");
    monitor.write_all(b"info registers\r\n").unwrap();
    // The command is echoed (the client's terminal does not), then answered, then a prompt.
    let reply = read_until(&mut monitor, "\r\n(rx86) ");
    assert!(reply.starts_with("info registers\r\n"), "{reply:?}");
    // The guest polls COM1 in real mode.
    assert!(reply.contains("mode: real mode, CPL 0"), "{reply:?}");
    assert!(reply.contains("cr0=0x"), "{reply:?}");
    monitor.write_all(b"quit\n").unwrap();
    read_until(&mut monitor, "rx86: quit");
    assert_eq!(run.status(), Some(0));
}

/// The monitor answers while the guest waits for gdb (`-S`) and while gdb holds it stopped,
/// and its `quit` ends the run with gdb still connected.
#[test]
fn the_monitor_answers_while_gdb_holds_the_guest() {
    let mut run = Run::start(
        "monitor-gdb",
        &["-serial", "null", "-monitor", "tcp:127.0.0.1:0,server,nowait", "--gdb", "tcp::0", "-S"],
    );
    let line = run.line_with("rx86: monitor: listening on tcp:127.0.0.1:");
    let mut monitor = tcp_connect(tcp_port(&line));
    read_until(&mut monitor, "(rx86) ");
    let gdb_line = run.line_with("gdb stub listening on 127.0.0.1:");
    let gdb_port: u16 =
        gdb_line.split("127.0.0.1:").nth(1).and_then(|p| p.split([' ', ';']).next()).unwrap().parse().unwrap();
    // Before gdb comes: the guest has not run an instruction.
    monitor.write_all(b"info registers\r\n").unwrap();
    let before = read_until(&mut monitor, "\r\n(rx86) ");
    assert!(before.contains("mode: real mode"), "{before:?}");
    // gdb connects (the guest stops) and asks why it stopped; the stub answers.
    let mut gdb = tcp_connect(gdb_port);
    gdb.write_all(b"$?#3f").unwrap();
    let stop = read_until(&mut gdb, "#");
    assert!(stop.starts_with("+$"), "{stop:?}");
    monitor.write_all(b"info pic\r\n").unwrap();
    let pic = read_until(&mut monitor, "\r\n(rx86) ");
    assert!(pic.contains("pic0: irr=") && pic.contains("ioapic0: ver=0x20"), "{pic:?}");
    monitor.write_all(b"quit\n").unwrap();
    read_until(&mut monitor, "rx86: quit");
    assert_eq!(run.status(), Some(0));
}

#[test]
fn nographic_shares_stdio_between_com1_and_the_monitor() {
    let mut run = Run::start_with_stdin("mux", &["-nographic"], Stdio::piped());
    let mut stdin = run.child.stdin.take().unwrap();
    let mut stdout = run.child.stdout.take().unwrap();
    read_until(&mut stdout, "RX86-ECHO READY\r\n");
    // Ctrl-A Ctrl-A sends one Ctrl-A to the guest (echoed unchanged).
    stdin.write_all(b"ab\x01\x01").unwrap();
    read_until(&mut stdout, "AB\x01");
    // Ctrl-A h lists the keys; Ctrl-A c switches to the monitor, which greets.
    stdin.write_all(b"\x01h\x01c").unwrap();
    let text = read_until(&mut stdout, "(rx86) ");
    assert!(text.contains("C-a c    switch between console and monitor"), "{text:?}");
    assert!(text.contains("rx86 monitor - type 'help'"), "{text:?}");
    stdin.write_all(b"info registers\n").unwrap();
    let reply = read_until(&mut stdout, "cr0=");
    assert!(!reply.contains("INFO"), "the command went to the monitor, not the guest: {reply:?}");
    // Back to the console: keys reach the guest again.
    stdin.write_all(b"\x01cok").unwrap();
    read_until(&mut stdout, "OK");
    // Ctrl-A x ends the run as a power-off does.
    stdin.write_all(b"\x01x").unwrap();
    read_until(&mut stdout, "C-a x");
    assert_eq!(run.status(), Some(0));
}

#[test]
fn bad_character_devices_are_refused_with_one_line() {
    for (args, want) in [
        (&["-serial", "websocket::4444,server"][..], "websocket backend is not in rx86"),
        (&["-serial", "stdio", "-monitor", "stdio"][..], "mon:stdio"),
        (&["-serial", "chardev:nope"][..], "no -chardev has id=nope"),
        (
            &["-serial", "null", "-serial", "null", "-serial", "null", "-serial", "null", "-serial", "null"][..],
            "COM1-COM4",
        ),
        (&["-mon", "chardev=m,mode=control", "-chardev", "null,id=m"][..], "mode=readline"),
    ] {
        let out = Command::new(rx86_binary())
            .args(["run", "--kernel", "/nonexistent"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
    // A socket that cannot be opened: the run does not start.
    let out = Command::new(rx86_binary())
        .args(["run", "--kernel", "/nonexistent", "-serial", "tcp:127.0.0.1:1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("serial0: cannot open tcp:127.0.0.1:1"), "{stderr}");
}
