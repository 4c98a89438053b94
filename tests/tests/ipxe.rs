//! Debian's iPXE on rx86's e1000 and user-mode network: it finds the card, configures it by
//! DHCP and shows the lease, as on QEMU's `-nic user,model=e1000`; booted from its ISO through
//! the BIOS, and as `ipxe.lkrn` under `--kernel`, which has no 32-bit entry and so starts
//! through its real-mode setup code under the BIOS. On a TAP interface (in a network namespace
//! of its own, so nothing leaves it), iPXE fetches and runs a script from an HTTP server on
//! the interface's host side.
//!
//! A run recorded with `--nic user,...,record=FILE` and run again with `--nic
//! replay,file=FILE` shows the same screen after the same number of instructions: the
//! host's traffic, the one input host timing decides, enters at the recorded instructions.
//!
//! iPXE polls its timers in busy loops, so its DHCP and IPv6 waits cost instructions. The runs
//! use `--icount shift=4` (16 ns per instruction, a 62.5 MIPS virtual CPU): the same guest
//! seconds in a sixteenth of the instructions, still on the deterministic virtual clock.

use rx86_tests::fixtures::{ipxe_iso, ipxe_lkrn};
use rx86_tests::rx86_bin::rx86_binary;
use rx86_tests::rx86_bin::{run_rx86_with_limit, stderr_of};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rx86-ipxe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}

/// Runs rx86 with `boot` (the boot media's options) and an e1000 on the NAT until the screen
/// shows iPXE's lease line; returns the text screen.
fn run_to_lease(name: &str, boot: &[&str]) -> String {
    let screen = tempfile_dir().join(format!("{name}-screen.txt"));
    let screen_arg = screen.to_string_lossy().into_owned();
    let mut args = vec!["run"];
    args.extend_from_slice(boot);
    args.extend_from_slice(&[
        "-m",
        "128M",
        "--serial",
        "none",
        "--nic",
        "user,model=e1000",
        "--icount",
        "shift=4",
        "--rtc",
        "base=2024-01-01T00:00:00",
        "--stop-at",
        "@gw 10.0.2.2",
        "--text-dump",
        &screen_arg,
        "--stats",
        "--quiet",
    ]);
    let out = run_rx86_with_limit(&args, Duration::from_secs(600)).expect("iPXE did not show its lease in 600 s");
    let text = std::fs::read_to_string(&screen).unwrap_or_default();
    assert!(out.status.success(), "{}\n{text}", stderr_of(&out));
    eprintln!("{}", stderr_of(&out).lines().filter(|l| l.starts_with("rx86 stats")).collect::<String>());
    text
}

/// Checks that iPXE found the e1000 at its default MAC and shows a completed configuration
/// with the NAT's lease.
fn assert_lease(text: &str) {
    assert!(text.contains("net0: 52:54:00:12:34:56 using 82540em on 0000:00:03.0"), "{text}");
    let configuring = text
        .lines()
        .find(|l| l.starts_with("Configuring (net0 52:54:00:12:34:56)"))
        .unwrap_or_else(|| panic!("no Configuring line:\n{text}"));
    assert!(configuring.ends_with(" ok"), "{configuring}\n{text}");
    // iPXE prints a dot per second of configuration. The NAT answers its IPv6 router
    // solicitation, so it does not wait the ~16 s for router discovery to time out.
    let seconds = configuring.matches('.').count();
    assert!(seconds < 10, "configuration took {seconds} s:\n{text}");
    assert!(text.contains("net0: 10.0.2.15/255.255.255.0 gw 10.0.2.2"), "{text}");
}

/// The iPXE image `fetch` gives, as a path, or `None` after printing why the test skips.
fn image_or_skip(fetch: fn() -> Result<PathBuf, String>) -> Option<String> {
    match fetch() {
        Ok(path) => Some(path.to_string_lossy().into_owned()),
        Err(e) => {
            eprintln!("SKIP: no iPXE image: {e}");
            None
        }
    }
}

#[test]
fn ipxe_iso_gets_a_dhcp_lease_on_the_e1000() {
    let Some(iso) = image_or_skip(ipxe_iso) else { return };
    assert_lease(&run_to_lease("iso", &["--cdrom", &iso]));
}

#[test]
fn ipxe_lkrn_boots_through_its_real_mode_setup_and_gets_a_lease() {
    let Some(lkrn) = image_or_skip(ipxe_lkrn) else { return };
    let text = run_to_lease("lkrn", &["--kernel", &lkrn]);
    assert!(text.contains("Booting the kernel's real-mode setup..."), "{text}");
    assert_lease(&text);
}

/// The network namespace's set-up, run by `unshare --net sh -c`: a TAP interface with the
/// host side at 192.168.77.1, an HTTP server there serving the script directory, then rx86
/// (its arguments after the first three positional parameters). Prints rx86's status.
const TAP_NAMESPACE_SCRIPT: &str = r#"
set -e
ip link set lo up
ip tuntap add dev rx86tap0 mode tap
ip link set rx86tap0 up
ip addr add 192.168.77.1/24 dev rx86tap0
python3 -m http.server 8080 --bind 192.168.77.1 --directory "$1" >/dev/null 2>&1 &
server=$!
shift
set +e
"$@"
status=$?
kill $server
exit $status
"#;

/// Why the TAP test cannot run here, if it cannot: it needs to make a network namespace
/// with a TAP interface in it (root, `unshare`, `ip`) and python3 for the HTTP server.
fn tap_unavailable() -> Option<String> {
    let probe = Command::new("unshare")
        .args(["--net", "sh", "-c", "ip tuntap add dev rx86probe mode tap && python3 -c ''"])
        .output();
    match probe {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        Err(e) => Some(format!("unshare: {e}")),
    }
}

/// Frames in a classic pcap file.
fn pcap_frames(pcap: &Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(pcap).unwrap_or_default();
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= data.len() {
        let len = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
        let Some(frame) = data.get(at + 16..at + 16 + len) else { break };
        frames.push(frame.to_vec());
        at += 16 + len;
    }
    frames
}

#[test]
fn ipxe_fetches_a_script_over_a_tap_interface() {
    if let Some(why) = tap_unavailable() {
        eprintln!("SKIP: cannot make a network namespace with a TAP interface: {why}");
        return;
    }
    let Some(lkrn) = image_or_skip(ipxe_lkrn) else { return };
    let dir = tempfile_dir().join("tap");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("tap.ipxe"), "#!ipxe\necho TAP-SCRIPT-RAN\n").unwrap();
    let (screen, pcap) = (dir.join("screen.txt"), dir.join("tap.pcap"));
    // The kernel command line is iPXE's script: a static address on the TAP's network.
    let script = "ifopen net0 && set net0/ip 192.168.77.2 && set net0/netmask 255.255.255.0 && \
                  chain http://192.168.77.1:8080/tap.ipxe";
    let out = Command::new("unshare")
        .args(["--net", "sh", "-c", TAP_NAMESPACE_SCRIPT, "sh"])
        .arg(&dir)
        .arg(rx86_binary())
        .args(["run", "--kernel"])
        .arg(&lkrn)
        .args(["--append", script, "-m", "128M", "--serial", "none", "--icount", "shift=4", "--quiet", "--stats"])
        .arg("--nic")
        .arg(format!("tap,ifname=rx86tap0,script=no,pcap={}", pcap.display()))
        .args(["--stop-at", "@TAP-SCRIPT-RAN", "--timeout", "300s", "--text-dump"])
        .arg(&screen)
        .output()
        .expect("run unshare");
    let text = std::fs::read_to_string(&screen).unwrap_or_default();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}\n{text}");
    eprintln!("{}", stderr.lines().filter(|l| l.starts_with("rx86 stats")).collect::<String>());
    assert!(text.contains("http://192.168.77.1:8080/tap.ipxe... ok"), "{text}");
    assert!(text.lines().any(|l| l == "TAP-SCRIPT-RAN"), "{text}");
    // The capture holds both directions: the guest's SYN to port 8080, the host's answers.
    let guest_mac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    let frames = pcap_frames(&pcap);
    let syn_to_server = |f: &Vec<u8>| {
        f.len() >= 54
            && f[6..12] == guest_mac
            && f[12..14] == [8, 0]
            && f[23] == 6
            && f[36..38] == 8080u16.to_be_bytes()
    };
    assert!(frames.iter().any(syn_to_server), "no TCP from the guest to 192.168.77.1:8080 in {} frames", frames.len());
    assert!(frames.iter().any(|f| f.len() >= 14 && f[..6] == guest_mac), "nothing from the host to the guest");
}

/// Serves `body` to every GET on 127.0.0.1 (a fresh port), on a thread; returns the port.
fn serve_on_loopback(body: &'static str) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && std::io::Read::read(&mut s, &mut byte).is_ok_and(|n| n == 1) {
                request.push(byte[0]);
            }
            let reply = format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
            let _ = std::io::Write::write_all(&mut s, reply.as_bytes());
        }
    });
    port
}

/// Runs iPXE (`ipxe.lkrn`, its command line a script) with an e1000 on `nic` until the
/// screen shows the fetched script's line; returns the screen and the instructions retired.
fn run_script(lkrn: &str, script: &str, nic: &str, screen: &Path) -> (String, u64) {
    let args = [
        "run",
        "--kernel",
        lkrn,
        "--append",
        script,
        "-m",
        "128M",
        "--serial",
        "none",
        "--nic",
        nic,
        "--icount",
        "shift=4",
        "--rtc",
        "base=2024-01-01T00:00:00",
        "--stop-at",
        "@REPLAY-SCRIPT-RAN",
        "--text-dump",
        screen.to_str().unwrap(),
        "--stats",
        "--quiet",
    ];
    let out = run_rx86_with_limit(&args, Duration::from_secs(600)).expect("iPXE did not run the script in 600 s");
    let text = std::fs::read_to_string(screen).unwrap_or_default();
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "{stderr}\n{text}");
    let stats = stderr.lines().find(|l| l.starts_with("rx86 stats: ")).unwrap_or_else(|| panic!("no stats: {stderr}"));
    let retired = stats["rx86 stats: ".len()..].split(' ').next().and_then(|n| n.parse().ok());
    (text, retired.unwrap_or_else(|| panic!("no instruction count in {stats:?}")))
}

#[test]
fn a_recorded_network_run_replays_to_the_same_screen_and_instruction() {
    let Some(lkrn) = image_or_skip(ipxe_lkrn) else { return };
    // A script fetched from an HTTP server on the host's 127.0.0.1 through the NAT: traffic
    // whose arrival host timing decides.
    let port = serve_on_loopback("#!ipxe\necho REPLAY-SCRIPT-RAN\n");
    let script = format!("dhcp net0 && chain http://10.0.2.2:{port}/replay.ipxe");
    let dir = tempfile_dir().join("replay");
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("net.rr");
    let record = format!("user,model=e1000,record={}", log.display());
    let (recorded, recorded_at) = run_script(&lkrn, &script, &record, &dir.join("recorded.txt"));
    assert!(recorded.contains(&format!("http://10.0.2.2:{port}/replay.ipxe... ok")), "{recorded}");
    let replay = format!("replay,file={},model=e1000", log.display());
    let (replayed, replayed_at) = run_script(&lkrn, &script, &replay, &dir.join("replayed.txt"));
    assert_eq!(replayed, recorded, "the replay shows the same screen");
    assert_eq!(replayed_at, recorded_at, "at the same instruction");
    std::fs::remove_dir_all(&dir).unwrap();
}
