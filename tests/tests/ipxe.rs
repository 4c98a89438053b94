//! Debian's iPXE on rx86's e1000 and user-mode network: it finds the card, configures it by
//! DHCP and shows the lease, as on QEMU's `-nic user,model=e1000`; booted from its ISO through
//! the BIOS, and as `ipxe.lkrn` under `--kernel`, which has no 32-bit entry and so starts
//! through its real-mode setup code under the BIOS.
//!
//! iPXE polls its timers in busy loops, so its DHCP and IPv6 waits cost instructions. The runs
//! use `--icount shift=4` (16 ns per instruction, a 62.5 MIPS virtual CPU): the same guest
//! seconds in a sixteenth of the instructions, still on the deterministic virtual clock.

use rx86_tests::fixtures::{ipxe_iso, ipxe_lkrn};
use rx86_tests::rx86_bin::{run_rx86_with_limit, stderr_of};
use std::path::PathBuf;
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

#[test]
fn ipxe_iso_gets_a_dhcp_lease_on_the_e1000() {
    let iso = match ipxe_iso() {
        Ok(iso) => iso,
        Err(e) => {
            eprintln!("SKIP: no iPXE image: {e}");
            return;
        }
    };
    let iso = iso.to_string_lossy().into_owned();
    assert_lease(&run_to_lease("iso", &["--cdrom", &iso]));
}

#[test]
fn ipxe_lkrn_boots_through_its_real_mode_setup_and_gets_a_lease() {
    let lkrn = match ipxe_lkrn() {
        Ok(lkrn) => lkrn,
        Err(e) => {
            eprintln!("SKIP: no iPXE image: {e}");
            return;
        }
    };
    let lkrn = lkrn.to_string_lossy().into_owned();
    let text = run_to_lease("lkrn", &["--kernel", &lkrn]);
    assert!(text.contains("Booting the kernel's real-mode setup..."), "{text}");
    assert_lease(&text);
}
