//! Bad input gets a clear one-line error and a non-zero exit, never a panic.

use rx86_tests::rx86_bin::{run_rx86, stderr_of};
use std::io::Write;

fn assert_clean_error(args: &[&str], expect: &str) {
    let out = run_rx86(args);
    let err = stderr_of(&out);
    assert!(!out.status.success(), "rx86 {args:?} should fail; stderr: {err}");
    assert!(!err.contains("panicked"), "rx86 {args:?} panicked: {err}");
    assert!(err.contains(expect), "rx86 {args:?}: expected {expect:?} in stderr, got: {err}");
    // README: an error (bad option, unreadable kernel...) exits 1.
    assert_eq!(out.status.code(), Some(1), "rx86 {args:?}: {err}");
}

fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rx86-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::File::create(&path).unwrap().write_all(bytes).unwrap();
    path
}

#[test]
fn missing_kernel_file() {
    assert_clean_error(&["run", "--kernel", "/nonexistent/bzImage"], "cannot read kernel '/nonexistent/bzImage'");
}

#[test]
fn kernel_that_is_not_a_kernel() {
    let junk = temp_file("junk.bin", &[0x5a; 4096]);
    assert_clean_error(&["run", "--kernel", junk.to_str().unwrap()], "not a bzImage or Multiboot kernel");
}

#[test]
fn truncated_bzimage() {
    // A setup header that announces more setup sectors than the file holds.
    let mut k = vec![0u8; 0x400];
    k[0x1f1] = 30;
    k[0x1fe..0x200].copy_from_slice(&[0x55, 0xaa]);
    k[0x202..0x206].copy_from_slice(b"HdrS");
    k[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    let path = temp_file("truncated-bzImage", &k);
    assert_clean_error(&["run", "--kernel", path.to_str().unwrap()], "cannot load kernel");
}

#[test]
fn empty_kernel_file() {
    let path = temp_file("empty", &[]);
    assert_clean_error(&["run", "--kernel", path.to_str().unwrap()], "empty file");
}

#[test]
fn initrd_larger_than_guest_ram() {
    let kernel = rx86_tests::guests::multiboot_test_kernel().expect("build the multiboot test kernel");
    let initrd = temp_file("huge-initrd", &vec![0u8; 5 << 20]);
    let out =
        run_rx86(&["run", "-m", "4M", "--kernel", kernel.to_str().unwrap(), "--initrd", initrd.to_str().unwrap()]);
    let err = stderr_of(&out);
    assert!(!out.status.success() && !err.contains("panicked"), "{err}");
    assert!(err.contains("cannot load kernel"), "{err}");
}

#[test]
fn zero_and_absurd_memory_sizes() {
    assert_clean_error(&["run", "-m", "0", "--kernel", "x"], "too small");
    assert_clean_error(&["run", "-m", "64T", "--kernel", "x"], "too large");
    assert_clean_error(&["run", "-m", "lots", "--kernel", "x"], "not a memory size");
}

#[test]
fn unknown_option() {
    assert_clean_error(&["run", "--frobnicate"], "unexpected argument '--frobnicate'");
}

#[test]
fn nothing_to_boot() {
    assert_clean_error(&["run", "--accel", "kvm"], "nothing to boot");
}

#[test]
fn kvm_without_a_usable_dev_kvm() {
    // Run rx86 where /dev/kvm cannot be opened: as a user without access if we are
    // root, else rely on the host. Skip when neither applies.
    let kernel = rx86_tests::guests::multiboot_test_kernel().expect("build the multiboot test kernel");
    let k = kernel.to_str().unwrap();
    if std::path::Path::new("/dev/kvm").exists() {
        // Are we root? Read the effective uid from /proc/self/status.
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let root = status.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
        if !root || !std::path::Path::new("/usr/sbin/runuser").exists() {
            println!("SKIP: /dev/kvm is present and we cannot drop access to it");
            return;
        }
        // The build tree may sit under a home directory `nobody` cannot enter, so
        // run copies of the binary and the kernel from a world-readable directory.
        let dir = std::env::temp_dir().join(format!("rx86-nobody-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bin = dir.join("rx86");
        let kernel_copy = dir.join("kernel.elf");
        std::fs::copy(rx86_tests::rx86_bin::rx86_binary(), &bin).unwrap();
        std::fs::copy(&kernel, &kernel_copy).unwrap();
        for (path, mode) in [(&dir, 0o755), (&bin, 0o755), (&kernel_copy, 0o644)] {
            std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
        }
        let out = std::process::Command::new("/usr/sbin/runuser")
            .args(["-u", "nobody", "--"])
            .arg(&bin)
            .args(["run", "--accel", "kvm", "--kernel"])
            .arg(&kernel_copy)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let err = stderr_of(&out);
        assert!(!out.status.success(), "{err}");
        assert!(err.contains("--accel kvm: /dev/kvm is not accessible"), "{err}");
    } else {
        assert_clean_error(&["run", "--accel", "kvm", "--kernel", k], "--accel kvm: /dev/kvm does not exist");
    }
}

#[test]
fn qemu_spellings_without_an_rx86_feature_are_named_not_misparsed() {
    assert_clean_error(&["run", "-smp", "2"], "rx86 emulates one CPU");
    assert_clean_error(&["run", "-smp", "cores=4"], "rx86 emulates one CPU");
    assert_clean_error(&["run", "-cpu", "qemu64"], "unknown CPU model 'qemu64'");
    assert_clean_error(&["run", "-cpu", "host", "--hda", "x"], "--cpu host needs --accel kvm");
    assert_clean_error(&["run", "-netdev", "user,id=n0"], "-netdev: rx86 sets up its network with -nic user");
    assert_clean_error(&["run", "-nic", "tap"], "ifname=NAME is required");
    assert_clean_error(&["run", "-device", "e1000"], "-device e1000: rx86's board is a fixed PC");
    assert_clean_error(&["run", "-machine", "q35"], "-machine q35: rx86's board is the i440FX PC");
    assert_clean_error(&["run", "-usb"], "unknown option '-usb'");
    assert_clean_error(&["run", "-rtc", "base=yesterday"], "'yesterday' is not a date");
    assert_clean_error(&["run", "-rtc", "base=utc,clock=host"], "pick that with --clock");
    assert_clean_error(&["run", "-icount", "shift=11", "--hda", "x"], "N from 0 to 10");
    assert_clean_error(&["run", "-icount", "auto", "--hda", "x"], "expected shift=N");
    assert_clean_error(&["run", "-icount", "3", "--clock", "host", "--hda", "x"], "--icount sets the virtual clock");
    assert_clean_error(
        &["run", "--accel", "interp", "--jit-check", "--hda", "x"],
        "--jit-check, --jit-threshold and --perfmap need --accel jit",
    );
    assert_clean_error(&["run", "--accel", "jit", "--jit-threshold", "0", "--hda", "x"], "0 is not in 1..");
    assert_clean_error(&["run", "-nographic", "--display", "window"], "cannot be used with");
    for args in [&["run", "-smp", "2"][..], &["run", "-nographic", "-display", "window"]] {
        let err = stderr_of(&run_rx86(args));
        assert!(!err.contains("'p' is not") && !err.contains("'-n'"), "misparsed {args:?}: {err}");
    }
}

#[test]
fn qemu_spellings_rx86_has_run_the_guest() {
    // A kernel that powers off through isa-debug-exit at 0x501 with QEMU's own options:
    // -M pc, -smp 1, -cpu max, -nographic, -nic none and -device isa-debug-exit all reach the run.
    let kernel = rx86_tests::guests::multiboot_test_kernel().expect("build the multiboot test kernel");
    let k = kernel.to_str().unwrap();
    let args =
        ["run", "-kernel", k, "-M", "pc", "-smp", "1", "-cpu", "max", "-nographic", "-nic", "none", "-m", "256M"];
    let device = ["-device", "isa-debug-exit,iobase=0x501,iosize=0x04"];
    let out = run_rx86(&[&args[..], &device[..]].concat());
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(rx86_tests::rx86_bin::stdout_of(&out).contains("done: ok"), "{err}");
}

#[test]
fn help_and_version_succeed_and_help_has_examples() {
    let out = run_rx86(&["run", "--help"]);
    assert!(out.status.success());
    let help = rx86_tests::rx86_bin::stdout_of(&out);
    assert!(help.contains("Examples:\n  rx86 run --kernel"), "{help}");
    assert!(!help.contains("keeps clap"), "no developer notes in --help: {help}");
    assert!(run_rx86(&["--version"]).status.success());
}

#[test]
fn network_options() {
    assert_clean_error(&["run", "--nic", "bridge,br=br0"], "only the user and tap backends exist yet");
    assert_clean_error(&["run", "--nic", "tap,ifname=tap0,hostfwd=tcp::2222-:22"], "belongs to the user backend");
    assert_clean_error(&["run", "--nic", "user,model=rtl8139"], "model 'rtl8139' is not supported");
    assert_clean_error(&["run", "--nic", "user,hostfwd=tcp::22"], "hostfwd 'tcp::22'");
    // A host forward on a port already taken is refused before the guest starts.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let kernel = temp_file("kernel-for-nic", &[0x5a; 4096]);
    let nic = format!("user,hostfwd=tcp:127.0.0.1:{port}-:22");
    assert_clean_error(
        &["run", "--kernel", kernel.to_str().unwrap(), "--nic", &nic],
        &format!("cannot set up the network: hostfwd: cannot listen on 127.0.0.1:{port}"),
    );
    // A TAP interface that cannot be had (here a name pattern the kernel refuses, or, without
    // privileges, no access to /dev/net/tun) is refused before the guest starts.
    assert_clean_error(
        &["run", "--kernel", kernel.to_str().unwrap(), "--nic", "tap,ifname=bad%d%d%d%d%d%d"],
        "cannot set up the network: tap: cannot",
    );
    // The board has four slots for network cards; four fit, a fifth is refused.
    let nics: Vec<String> = ["e1000", "virtio-net-pci", "ne2k_pci", "e1000", "virtio-net-pci"]
        .iter()
        .map(|model| format!("user,model={model},restrict=on"))
        .collect();
    let mut args = vec!["run", "--kernel", kernel.to_str().unwrap()];
    for nic in &nics {
        args.extend(["--nic", nic.as_str()]);
    }
    assert_clean_error(&args, "at most 4 network cards (--nic) fit the board");
    assert_clean_error(&args[..11], "cannot load kernel");
}
