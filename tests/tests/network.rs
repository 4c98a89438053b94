//! Debian's kernel on rx86's three NICs at once, each behind its own user-mode NAT, in one boot:
//! an e1000, a virtio-net-pci and an ne2k_pci, driven by the kernel's own drivers (`e1000`,
//! `virtio_pci` and `virtio_net`, `8390` and `ne2k-pci`, from the kernel package, appended to
//! the initramfs). One interface at a time, busybox `udhcpc` gets 10.0.2.15 from that NIC's
//! NAT, `wget` fetches a file from an HTTP server this test runs on the host's 127.0.0.1
//! (through the gateway 10.0.2.2) and the guest's checksum of it matches; then the guest serves
//! a page with busybox `httpd` and the test fetches it through that NIC's `hostfwd` port. Each
//! NIC's capture (`pcap=`) holds its DHCP exchange. Only 127.0.0.1 is ever contacted.

use rx86_devices::net::pcap::read_capture;
use rx86_tests::cpio::{append_archive, NewcArchive};
use rx86_tests::rx86_bin::rx86_binary;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the whole boot, downloads and power-off may take on the software CPU.
const LIMIT: Duration = Duration::from_secs(900);
/// Size of the file the guest downloads over each NIC.
const FILE_BYTES: usize = 1 << 20;

/// The NICs, in slot order (which is the order their drivers load, so eth0, eth1, eth2): QEMU
/// model name, Linux driver name, MAC address.
const NICS: [(&str, &str, &str); 3] = [
    ("e1000", "e1000", "52:54:00:12:34:56"),
    ("virtio-net-pci", "virtio_net", "52:54:00:12:34:57"),
    ("ne2k_pci", "ne2k-pci", "52:54:00:12:34:58"),
];

/// The init: loads the NIC drivers; then for each interface in turn brings it up, runs DHCP,
/// downloads and hashes the file, serves a page with httpd for the host forward until httpd
/// logged that it served it, and takes the interface down again. Then powers off.
const NET_INIT: &str = r#"#!/bin/sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /www
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
/bin/busybox --install -s
for m in $(cat /lib/modules/net/order); do insmod /lib/modules/net/$m.ko || echo RX86-NET-INSMOD-FAILED $m; done
n=0
while [ ! -e /sys/class/net/eth2 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
ip link set lo up
for dev in eth0 eth1 eth2; do
    echo "RX86-NET-DRIVER $dev $(basename $(readlink /sys/class/net/$dev/device/driver)) $(cat /sys/class/net/$dev/address)"
done
for dev in eth0 eth1 eth2; do
    ip link set $dev up
    udhcpc -i $dev -f -q -n -t 10 -T 3 -s /udhcpc.sh
    echo "RX86-NET-ADDR $dev $(ip -4 -o addr show $dev)"
    rm -f /tmp/file.bin
    wget -O /tmp/file.bin http://10.0.2.2:HTTP_PORT/file.bin && echo "RX86-NET-WGET-OK $dev"
    echo "RX86-NET-SHA256 $dev $(sha256sum /tmp/file.bin)"
    echo "served by the guest over hostfwd on $dev" > /www/index.html
    : >/tmp/httpd.log
    httpd -f -vv -p 8080 -h /www 2>/tmp/httpd.log &
    httpd_pid=$!
    echo "RX86-NET-HTTPD-READY $dev"
    n=0
    while ! grep -q response:200 /tmp/httpd.log && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
    kill $httpd_pid
    ip addr flush dev $dev
    ip link set $dev down
done
grep -E "eth|virtio" /proc/interrupts
echo RX86-NET-END
poweroff -f
"#;

/// udhcpc's event script: configures the interface with the lease.
const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
case "$1" in
    bound|renew)
        ifconfig "$interface" "$ip" netmask "$subnet" up
        [ -n "$router" ] && route add default gw "$router" dev "$interface"
        echo "RX86-NET-LEASE $interface $ip router $router dns $dns" ;;
esac
exit 0
"#;

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rx86-network-{}", std::process::id()));
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

fn http_get_once(port: u16) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    Ok(reply)
}

/// GET through the host forward on `port`. The guest starts httpd in the background just
/// before it says so, so the first tries may find nothing listening yet (the guest resets the
/// forwarded connection and the host end closes empty): try again for up to 120 s of host
/// time (the guest keeps httpd up until it has served the page, and an interpreted guest on
/// a loaded machine can take tens of seconds to start it).
fn http_get(port: u16) -> std::io::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let reply = http_get_once(port);
        if matches!(&reply, Ok(r) if !r.is_empty()) || Instant::now() > deadline {
            return reply;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn linux_gets_leases_downloads_and_serves_through_e1000_virtio_net_and_ne2k_pci() {
    let fixture = match rx86_tests::fixtures::linux_amd64() {
        Ok(f) => f,
        Err(why) => {
            println!("SKIP: Linux fixture unavailable: {why}");
            return;
        }
    };
    let dir = scratch_dir();
    let file = test_file();
    std::fs::write(dir.join("file.bin"), &file).unwrap();
    let expected = sha256_hex(&dir.join("file.bin"));
    let http_port = http_server(file);
    let fwd_ports: Vec<u16> = NICS.iter().map(|_| free_port()).collect();

    let mut initrd = std::fs::read(&fixture.initrd).unwrap();
    append_archive(&mut initrd, &std::fs::read(&fixture.net_modules).unwrap());
    let mut extra = NewcArchive::new();
    extra.file("init", 0o755, NET_INIT.replace("HTTP_PORT", &http_port.to_string()).as_bytes());
    extra.file("udhcpc.sh", 0o755, UDHCPC_SCRIPT.as_bytes());
    append_archive(&mut initrd, &extra.finish());
    let initrd_path = dir.join("initrd.cpio");
    std::fs::write(&initrd_path, initrd).unwrap();
    let pcaps: Vec<PathBuf> = NICS.iter().map(|(model, ..)| dir.join(format!("{model}.pcap"))).collect();

    let mut command = Command::new(rx86_binary());
    command
        .args(["run", "--accel", "interp", "-m", "256M", "--no-reboot"])
        .args(["--kernel", fixture.bzimage.to_str().unwrap(), "--initrd", initrd_path.to_str().unwrap()])
        .args(["--append", "console=ttyS0 panic=-1"]);
    for (((model, _, mac), port), pcap) in NICS.iter().zip(&fwd_ports).zip(&pcaps) {
        let nic = format!("user,model={model},mac={mac},hostfwd=tcp:127.0.0.1:{port}-:8080,pcap={}", pcap.display());
        command.args(["--nic", &nic]);
    }
    let mut child =
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn rx86");
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
    // Which NIC each interface is (from its MAC address), and what its host forward served.
    let mut nic_of_dev: Vec<(String, usize)> = Vec::new();
    let mut pages: Vec<Option<std::io::Result<String>>> = NICS.iter().map(|_| None).collect();
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
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["RX86-NET-DRIVER", dev, _, mac] => {
                if let Some(i) = NICS.iter().position(|n| n.2 == *mac) {
                    nic_of_dev.push((dev.to_string(), i));
                }
            }
            ["RX86-NET-HTTPD-READY", dev] => {
                if let Some(&(_, i)) = nic_of_dev.iter().find(|(d, _)| d == dev) {
                    pages[i] = Some(http_get(fwd_ports[i]));
                }
            }
            _ => {}
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
    assert!(console.contains("eth0: (PCI:33MHz:32-bit) 52:54:00:12:34:56"), "e1000 finds its NIC\n{context}");
    assert!(console.contains("e1000: eth0 NIC Link is Up 1000 Mbps Full Duplex"), "e1000 link up\n{context}");
    for (i, (model, driver, mac)) in NICS.iter().enumerate() {
        let dev = format!("eth{i}");
        assert!(
            console.contains(&format!("RX86-NET-DRIVER {dev} {driver} {mac}")),
            "{driver} drives {dev}, the {model}\n{context}"
        );
        assert!(
            console.contains(&format!("RX86-NET-LEASE {dev} 10.0.2.15 router 10.0.2.2 dns 10.0.2.3")),
            "DHCP lease over the {model}\n{context}"
        );
        let addr = console.lines().find(|l| l.starts_with(&format!("RX86-NET-ADDR {dev} "))).unwrap_or_default();
        assert!(addr.contains("inet 10.0.2.15/24"), "{dev} configured: {addr}\n{context}");
        assert!(console.contains(&format!("RX86-NET-WGET-OK {dev}")), "wget over the {model}\n{context}");
        assert!(
            console.contains(&format!("RX86-NET-SHA256 {dev} {expected}")),
            "the file arrived intact over the {model}\n{context}"
        );
        let page = pages[i].take().unwrap_or_else(|| panic!("the guest's httpd started on {dev}\n{context}"));
        let page = page.unwrap_or_else(|e| panic!("the {model}'s host forward answers: {e}\n{context}"));
        assert!(
            page.starts_with("HTTP/1.") && page.contains(&format!("served by the guest over hostfwd on {dev}")),
            "{page}"
        );
        let frames = read_capture(&std::fs::read(&pcaps[i]).unwrap()).expect("a pcap file");
        // DHCP to and from port 67 (UDP), in the capture in both directions.
        let dhcp = |f: &Vec<u8>| f.len() > 42 && f[23] == 17 && (f[36..38] == [0, 67] || f[34..36] == [0, 67]);
        assert!(frames.iter().filter(|(_, f)| dhcp(f)).count() >= 4, "{model}: DISCOVER, OFFER, REQUEST, ACK captured");
        println!("network: {model}: {} frames captured", frames.len());
    }
    println!("network: whole run {:.1} s", start.elapsed().as_secs_f64());
    std::fs::remove_dir_all(&dir).ok();
}
