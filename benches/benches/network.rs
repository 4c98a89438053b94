//! Network benchmark (issue: networking): Debian's kernel on each NIC model behind the
//! user-mode NAT, on rx86's interpreter and on QEMU TCG (`-nic user,model=...`) with the same
//! kernel, initramfs and guest commands, in the same run.
//!
//! - Round-trip time: the guest runs busybox `nc -l -p 7 -e cat` behind a host forward; the
//!   host sends 64-byte messages and waits for each echo, 200 times, over 127.0.0.1.
//! - Throughput: the guest `wget`s 64 MiB from an HTTP server this bench runs on the host's
//!   127.0.0.1 (through the gateway 10.0.2.2) into `/dev/null`; the server times the transfer
//!   from its first byte to the guest closing the connection, and the emulator's CPU time over
//!   the same span is read from `/proc`.
//!
//! `cargo bench -p rx86-benches --bench network [-- --models e1000,virtio-net-pci,ne2k_pci]
//! [--accel interp|jit]` (default: e1000 and virtio-net-pci, on the interpreter). Only
//! 127.0.0.1 is contacted.

use rx86_tests::cpio::{append_archive, NewcArchive};
use rx86_tests::rx86_bin::rx86_binary;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Bytes the guest downloads.
const DOWNLOAD_BYTES: usize = 64 << 20;
/// Echo round trips timed.
const ROUND_TRIPS: usize = 200;
/// Bytes in each echo message.
const MESSAGE_BYTES: usize = 64;
/// Longest a run may take.
const LIMIT: Duration = Duration::from_secs(1200);

/// The guest: NIC driver, DHCP, the echo server (one connection), then the download.
const INIT: &str = r#"#!/bin/sh
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
/bin/busybox --install -s
for m in $(cat /lib/modules/net/order); do insmod /lib/modules/net/$m.ko 2>/dev/null; done
n=0
while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
ip link set lo up
ip link set eth0 up
udhcpc -i eth0 -f -q -n -t 10 -T 3 -s /udhcpc.sh
echo RX86-BENCH-ECHO
nc -l -p 7 -e cat
wget -q -O /dev/null http://10.0.2.2:HTTP_PORT/big && echo RX86-BENCH-WGET-OK
poweroff -f
"#;

/// udhcpc's event script: configures the interface with the lease.
const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
case "$1" in
    bound|renew)
        ifconfig "$interface" "$ip" netmask "$subnet" up
        [ -n "$router" ] && route add default gw "$router" dev "$interface" ;;
esac
exit 0
"#;

/// What one run measured.
struct Measured {
    /// Median and mean echo round trip.
    rtt: Option<(Duration, Duration)>,
    /// Transfer time and the emulator's CPU time over it.
    transfer: Option<(Duration, Duration)>,
    whole: Duration,
    ok: bool,
    /// The guest console's last lines, shown when the guest's wget failed.
    tail: Vec<String>,
}

/// User + system CPU time of process `pid` so far (from `/proc/PID/stat`).
fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    // SAFETY: sysconf with a valid name has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let t = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_nanos(t * 1_000_000_000 / ticks)
}

/// Serves `DOWNLOAD_BYTES` for one GET; reports the transfer time and the CPU time process
/// `pid` (sent on `pid_rx` first) used meanwhile.
fn http_server(pid_rx: mpsc::Receiver<u32>, done: mpsc::Sender<(Duration, Duration)>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        let Ok(pid) = pid_rx.recv() else { return };
        let body = vec![0x5au8; 1 << 20];
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && s.read(&mut byte).map(|n| n == 1).unwrap_or(false) {
                request.push(byte[0]);
            }
            let head = format!("HTTP/1.0 200 OK\r\nContent-Length: {DOWNLOAD_BYTES}\r\n\r\n");
            let (start, cpu_start) = (Instant::now(), process_cpu(pid));
            let mut sent = s.write_all(head.as_bytes()).is_ok();
            for _ in 0..DOWNLOAD_BYTES / body.len() {
                sent = sent && s.write_all(&body).is_ok();
            }
            let _ = s.shutdown(std::net::Shutdown::Write);
            // The guest closes once it has everything.
            let _ = s.read(&mut byte);
            if sent {
                let _ = done.send((start.elapsed(), process_cpu(pid) - cpu_start));
            }
            return;
        }
    });
    port
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

/// Times `ROUND_TRIPS` echoes through the host forward on `port`: (median, mean).
fn echo_rtt(port: u16) -> Option<(Duration, Duration)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut s = loop {
        // The listener accepts at once; the guest end may not be up yet, so probe it.
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
            s.set_nodelay(true).ok()?;
            let mut b = [0u8; 1];
            if s.write_all(b"x").is_ok() && s.read_exact(&mut b).is_ok() {
                break s;
            }
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let message = [0x42u8; MESSAGE_BYTES];
    let mut echo = [0u8; MESSAGE_BYTES];
    let mut times = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let t = Instant::now();
        s.write_all(&message).ok()?;
        s.read_exact(&mut echo).ok()?;
        times.push(t.elapsed());
    }
    times.sort();
    let mean = times.iter().sum::<Duration>() / ROUND_TRIPS as u32;
    Some((times[ROUND_TRIPS / 2], mean))
}

fn initrd(fixture: &rx86_tests::fixtures::LinuxFixture, http_port: u16, dir: &Path) -> String {
    let mut initrd = std::fs::read(&fixture.initrd).expect("initrd");
    append_archive(&mut initrd, &std::fs::read(&fixture.net_modules).expect("net modules"));
    let mut extra = NewcArchive::new();
    extra.file("init", 0o755, INIT.replace("HTTP_PORT", &http_port.to_string()).as_bytes());
    extra.file("udhcpc.sh", 0o755, UDHCPC_SCRIPT.as_bytes());
    append_archive(&mut initrd, &extra.finish());
    let path = dir.join(format!("initrd-{http_port}.cpio"));
    std::fs::write(&path, initrd).expect("write initrd");
    path.display().to_string()
}

/// Boots the guest with `command` (given the initrd, the HTTP port and the forward port) and
/// measures.
fn measure(
    fixture: &rx86_tests::fixtures::LinuxFixture,
    dir: &Path,
    command: impl Fn(&str, u16) -> Command,
) -> Measured {
    let (pid_tx, pid_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let http_port = http_server(pid_rx, done_tx);
    let fwd_port = free_port();
    let initrd = initrd(fixture, http_port, dir);
    let start = Instant::now();
    let mut child: Child = command(&initrd, fwd_port)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the emulator");
    let _ = pid_tx.send(child.id());
    let (line_tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line_tx.send(line).is_err() {
                return;
            }
        }
    });
    let (mut rtt, mut ok, mut tail) = (None, false, Vec::new());
    loop {
        let line = lines.recv_timeout(LIMIT.saturating_sub(start.elapsed()));
        if let Ok(line) = &line {
            tail.push(line.clone());
            if tail.len() > 20 {
                tail.remove(0);
            }
        }
        match line {
            Ok(line) if line.contains("RX86-BENCH-ECHO") => rtt = echo_rtt(fwd_port),
            Ok(line) if line.contains("RX86-BENCH-WGET-OK") => ok = true,
            Ok(_) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = child.wait();
    Measured { rtt, transfer: done_rx.try_recv().ok(), whole: start.elapsed(), ok, tail }
}

fn report(name: &str, m: &Measured) {
    let rtt = m.rtt.map_or("-".into(), |(median, mean)| {
        format!("{:.0} us median, {:.0} us mean", median.as_secs_f64() * 1e6, mean.as_secs_f64() * 1e6)
    });
    let transfer = m.transfer.map_or("-".into(), |(t, cpu)| {
        let mib = (DOWNLOAD_BYTES >> 20) as f64;
        format!("{:.2} s, {:.1} MiB/s, {:.2} s CPU", t.as_secs_f64(), mib / t.as_secs_f64(), cpu.as_secs_f64())
    });
    println!(
        "{name:<44} RTT {rtt:<28} 64 MiB wget {transfer}{} (whole run {:.0} s)",
        if m.ok { "" } else { " [guest wget failed]" },
        m.whole.as_secs_f64()
    );
    if !m.ok {
        println!("  guest console, last lines:\n  {}", m.tail.join("\n  "));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let models = args
        .iter()
        .position(|a| a == "--models")
        .and_then(|i| args.get(i + 1))
        .map_or("e1000,virtio-net-pci".to_string(), Clone::clone);
    let accel = args.iter().position(|a| a == "--accel").and_then(|i| args.get(i + 1)).map_or("interp", String::as_str);
    let fixture = match rx86_tests::fixtures::linux_amd64() {
        Ok(f) => f,
        Err(why) => {
            println!("network bench skipped: Linux fixture unavailable: {why}");
            return;
        }
    };
    let dir = std::env::temp_dir().join(format!("rx86-network-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let kernel = fixture.bzimage.display().to_string();
    let append = "console=ttyS0 panic=-1";
    for model in models.split(',') {
        let rx = measure(&fixture, &dir, |initrd, fwd| {
            let mut c = Command::new(rx86_binary());
            c.args(["run", "--accel", accel, "-m", "256M", "--no-reboot", "--kernel", &kernel, "--initrd", initrd])
                .args(["--append", append, "--nic", &format!("user,model={model},hostfwd=tcp:127.0.0.1:{fwd}-:7")]);
            c
        });
        report(&format!("rx86 --accel {accel}, {model}"), &rx);
        let qemu = measure(&fixture, &dir, |initrd, fwd| {
            let mut c = Command::new("qemu-system-x86_64");
            c.args(["-accel", "tcg", "-m", "256", "-serial", "stdio", "-display", "none", "-monitor", "none"])
                .args(["-no-reboot", "-kernel", &kernel, "-initrd", initrd, "-append", append])
                .args(["-nic", &format!("user,model={model},hostfwd=tcp:127.0.0.1:{fwd}-:7")]);
            c
        });
        report(&format!("qemu-system-x86_64 -accel tcg, {model}"), &qemu);
    }
    std::fs::remove_dir_all(&dir).ok();
}
