//! Debian's kernel on rx86's NICs and user-mode NAT, once per NIC model (e1000, virtio-net-pci,
//! ne2k_pci): the kernel's own driver (`e1000`, `virtio_pci` and `virtio_net`, or `8390` and
//! `ne2k-pci`, from the kernel package, appended to the initramfs) finds the NIC, busybox `udhcpc` gets 10.0.2.15
//! from the NAT's DHCP server, `wget` fetches a file from an HTTP server this test runs on the
//! host's 127.0.0.1 (through the gateway 10.0.2.2) and the guest's checksum of it matches; then
//! the guest serves a file with busybox `httpd` and the test fetches it through a `hostfwd`
//! port. The capture (`pcap=`) holds the DHCP exchange. Only 127.0.0.1 is ever contacted.

use rx86_devices::net::pcap::read_capture;
use rx86_tests::cpio::{append_archive, NewcArchive};
use rx86_tests::rx86_bin::rx86_binary;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the whole boot, download and power-off may take on the software CPU.
const LIMIT: Duration = Duration::from_secs(900);
/// Size of the file the guest downloads.
const FILE_BYTES: usize = 1 << 20;

/// The init: loads the NIC driver, runs DHCP, downloads and hashes the file, serves a page with
/// httpd for the host forward, and powers off once httpd logged that it served the page.
const NET_INIT: &str = r#"#!/bin/sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /www
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
/bin/busybox --install -s
for m in $(cat /lib/modules/net/order); do insmod /lib/modules/net/$m.ko || echo RX86-NET-INSMOD-FAILED $m; done
n=0
while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
echo "RX86-NET-DRIVER $(basename $(readlink /sys/class/net/eth0/device/driver)) $(cat /sys/class/net/eth0/address)"
ip link set lo up
ip link set eth0 up
udhcpc -i eth0 -f -q -n -t 10 -T 3 -s /udhcpc.sh
echo "RX86-NET-ADDR $(ip -4 -o addr show eth0)"
wget -O /tmp/file.bin http://10.0.2.2:HTTP_PORT/file.bin && echo RX86-NET-WGET-OK
echo "RX86-NET-SHA256 $(sha256sum /tmp/file.bin)"
echo "served by the guest over hostfwd" > /www/index.html
: >/tmp/httpd.log
httpd -f -vv -p 8080 -h /www 2>/tmp/httpd.log &
echo RX86-NET-HTTPD-READY
n=0
while ! grep -q response:200 /tmp/httpd.log && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
sleep 1
cat /proc/interrupts | grep -i eth0
echo RX86-NET-END
poweroff -f
"#;

/// udhcpc's event script: configures the interface with the lease.
const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
case "$1" in
    bound|renew)
        ifconfig "$interface" "$ip" netmask "$subnet" up
        [ -n "$router" ] && route add default gw "$router" dev "$interface"
        echo "RX86-NET-LEASE $ip router $router dns $dns" ;;
esac
exit 0
"#;

fn scratch_dir(model: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rx86-network-{model}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A deterministic pseudo-random file (xorshift), so a corrupted byte anywhere shows.
fn test_file() -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..FILE_BYTES)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Serves `body` for every GET on a 127.0.0.1 port; returns the port.
fn http_server(body: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && s.read(&mut byte).map(|n| n == 1).unwrap_or(false) {
                request.push(byte[0]);
            }
            let head = format!(
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes()).and_then(|_| s.write_all(&body));
        }
    });
    port
}

/// A free port on 127.0.0.1 for the host forward.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn sha256_hex(path: &std::path::Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().expect("run sha256sum");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_string()
}

fn http_get(port: u16) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    Ok(reply)
}

#[test]
fn linux_e1000_gets_a_lease_downloads_through_the_nat_and_serves_through_hostfwd() {
    let console = lease_download_and_serve("e1000", "e1000");
    assert!(console.contains("eth0: (PCI:33MHz:32-bit) 52:54:00:12:34:56"), "the driver finds the NIC\n{console}");
    assert!(console.contains("e1000: eth0 NIC Link is Up 1000 Mbps Full Duplex"), "link up\n{console}");
}

#[test]
fn linux_virtio_net_gets_a_lease_downloads_through_the_nat_and_serves_through_hostfwd() {
    lease_download_and_serve("virtio-net-pci", "virtio_net");
}

#[test]
fn linux_ne2k_pci_gets_a_lease_downloads_through_the_nat_and_serves_through_hostfwd() {
    lease_download_and_serve("ne2k_pci", "ne2k-pci");
}

/// Boots Debian's kernel with a `model` NIC, checks that Linux's `driver` drives it, that the
/// lease, the download and the host forward work and that the capture holds the DHCP
/// exchange; returns the console.
fn lease_download_and_serve(model: &str, driver: &str) -> String {
    let fixture = match rx86_tests::fixtures::linux_amd64() {
        Ok(f) => f,
        Err(why) => {
            println!("SKIP: Linux fixture unavailable: {why}");
            return String::new();
        }
    };
    let dir = scratch_dir(model);
    let file = test_file();
    std::fs::write(dir.join("file.bin"), &file).unwrap();
    let expected = sha256_hex(&dir.join("file.bin"));
    let http_port = http_server(file);
    let fwd_port = free_port();

    let mut initrd = std::fs::read(&fixture.initrd).unwrap();
    append_archive(&mut initrd, &std::fs::read(&fixture.net_modules).unwrap());
    let mut extra = NewcArchive::new();
    extra.file("init", 0o755, NET_INIT.replace("HTTP_PORT", &http_port.to_string()).as_bytes());
    extra.file("udhcpc.sh", 0o755, UDHCPC_SCRIPT.as_bytes());
    append_archive(&mut initrd, &extra.finish());
    let initrd_path = dir.join("initrd.cpio");
    std::fs::write(&initrd_path, initrd).unwrap();
    let pcap = dir.join("net.pcap");
    let nic = format!("user,model={model},hostfwd=tcp:127.0.0.1:{fwd_port}-:8080,pcap={}", pcap.display());

    let mut child = Command::new(rx86_binary())
        .args(["run", "--accel", "interp", "-m", "256M", "--no-reboot"])
        .args(["--kernel", fixture.bzimage.to_str().unwrap(), "--initrd", initrd_path.to_str().unwrap()])
        .args(["--append", "console=ttyS0 panic=-1", "--nic", &nic])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rx86");
    let (tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let start = Instant::now();
    let mut console = Vec::new();
    let mut forwarded = None;
    let mut download_s = None;
    loop {
        let left = LIMIT.saturating_sub(start.elapsed());
        let line = match lines.recv_timeout(left) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("rx86 did not finish in {LIMIT:?}:\n{}", console.join("\n"));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        if line.contains("RX86-NET-ADDR") {
            download_s = Some(start.elapsed());
        }
        if line.contains("RX86-NET-SHA256") {
            download_s = download_s.map(|t| start.elapsed() - t);
        }
        if line.contains("RX86-NET-HTTPD-READY") && forwarded.is_none() {
            forwarded = Some(http_get(fwd_port));
        }
        console.push(line);
    }
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let console = console.join("\n");
    let context = format!("console:\n{console}\nstderr:\n{stderr}");
    assert!(status.success(), "rx86 exited {status:?}\n{context}");
    assert!(!console.contains("RX86-NET-INSMOD-FAILED"), "the modules load\n{context}");
    assert!(
        console.contains(&format!("RX86-NET-DRIVER {driver} 52:54:00:12:34:56")),
        "{driver} drives eth0\n{context}"
    );
    assert!(console.contains("RX86-NET-LEASE 10.0.2.15 router 10.0.2.2 dns 10.0.2.3"), "DHCP lease\n{context}");
    assert!(console.contains("inet 10.0.2.15/24"), "eth0 configured\n{context}");
    assert!(console.contains("RX86-NET-WGET-OK"), "wget succeeded\n{context}");
    assert!(console.contains(&format!("RX86-NET-SHA256 {expected}")), "the file arrived intact\n{context}");
    let page = forwarded.expect("the guest's httpd started").expect("the host forward answers");
    assert!(page.starts_with("HTTP/1.") && page.contains("served by the guest over hostfwd"), "{page}");
    let frames = read_capture(&std::fs::read(&pcap).unwrap()).expect("a pcap file");
    // DHCP to and from port 67 (UDP), in the capture in both directions.
    let dhcp = |f: &Vec<u8>| f.len() > 42 && f[23] == 17 && (f[36..38] == [0, 67] || f[34..36] == [0, 67]);
    assert!(frames.iter().filter(|(_, f)| dhcp(f)).count() >= 4, "DISCOVER, OFFER, REQUEST, ACK captured");
    println!(
        "network ({model}): {} frames captured; 1 MiB download took {:.1} s of host time; whole run {:.1} s",
        frames.len(),
        download_s.map_or(0.0, |d| d.as_secs_f64()),
        start.elapsed().as_secs_f64()
    );
    std::fs::remove_dir_all(&dir).ok();
    console
}
