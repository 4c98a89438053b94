//! A run ended from outside ends as a power-off does: SIGTERM, SIGINT and SIGHUP make rx86
//! write its screenshot, text dump, trace and `--stats`, and exit with 128 + the signal's
//! number; the `--timeout` wall-clock limit does the same with status 124. The guest is a boot sector that never ends (`sti; hlt; jmp` in a loop, woken by
//! the timer), booted from a floppy by the built-in BIOS.

use rx86_tests::rx86_bin::rx86_binary;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Time allowed for anything the test waits for (start-up, the end of the run).
const LIMIT: Duration = Duration::from_secs(60);

/// A fresh scratch directory for one test.
fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rx86-signals-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A 1.44 MB floppy whose boot sector halts forever with interrupts on.
fn endless_floppy(dir: &Path) -> PathBuf {
    let mut image = vec![0u8; 1_474_560];
    // sti; l: hlt; jmp l
    image[..4].copy_from_slice(&[0xfb, 0xf4, 0xeb, 0xfd]);
    image[510..512].copy_from_slice(&[0x55, 0xaa]);
    let path = dir.join("endless.img");
    fs::write(&path, image).unwrap();
    path
}

/// Starts rx86 on the endless floppy with a screenshot, text dump, trace of interrupts and
/// stats, all in `dir`.
fn start(dir: &Path) -> Child {
    start_with(dir, &[])
}

/// [`start`] with more options.
fn start_with(dir: &Path, extra: &[&str]) -> Child {
    let floppy = endless_floppy(dir);
    Command::new(rx86_binary())
        .arg("run")
        .args(extra)
        .args(["--fda"])
        .arg(&floppy)
        .args(["--boot", "a", "--snapshot", "--serial", "none", "--stats", "--screenshot"])
        .arg(dir.join("screen.png"))
        .arg("--text-dump")
        .arg(dir.join("screen.txt"))
        .arg("--trace")
        .arg(format!("int,file={}", dir.join("trace.txt").display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rx86")
}

/// Waits until the trace file has at least `lines` lines, while rx86 still runs (the trace
/// reaches the file during the run, not only at its end).
fn wait_for_trace(child: &mut Child, trace: &Path, lines: usize) {
    let start = Instant::now();
    while fs::read_to_string(trace).unwrap_or_default().lines().count() < lines {
        assert!(child.try_wait().unwrap().is_none(), "rx86 ended before it was signalled");
        assert!(start.elapsed() < LIMIT, "no trace lines reached the file during the run");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn send(child: &Child, signal: &str) {
    let status = Command::new("kill").args(["-s", signal, &child.id().to_string()]).status().unwrap();
    assert!(status.success(), "kill -s {signal}");
}

/// Waits for rx86 to end by itself; returns its exit code and standard error.
fn finish(mut child: Child) -> (Option<i32>, String) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            return (status.code(), err);
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("rx86 did not end after the signal");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every trace line starts with the instruction count, and the counts never go down.
fn assert_counted(trace: &str) {
    let counts: Vec<u64> = trace
        .lines()
        .map(|l| l.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no count: {l}")))
        .collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "counts go down:\n{trace}");
    assert!(counts.last().is_some_and(|&n| n > 0), "{trace}");
}

fn stop_with(signal: &str, number: i32) {
    let dir = scratch(signal);
    let mut child = start(&dir);
    wait_for_trace(&mut child, &dir.join("trace.txt"), 3);
    send(&child, signal);
    let (code, err) = finish(child);
    assert_eq!(code, Some(128 + number), "{err}");
    assert!(err.contains(&format!("SIG{signal} received")), "{err}");
    assert!(err.contains("rx86 stats: "), "--stats printed:\n{err}");
    let png = fs::read(dir.join("screen.png")).expect("the screenshot is written");
    assert_eq!(&png[1..4], b"PNG", "a PNG file");
    let text = fs::read_to_string(dir.join("screen.txt")).expect("the text dump is written");
    assert!(text.contains("rx86 BIOS"), "the BIOS banner is on the screen:\n{text}");
    let trace = fs::read_to_string(dir.join("trace.txt")).unwrap();
    assert!(trace.lines().any(|l| l.contains(" int  vector 0x08 (interrupt)")), "timer interrupts:\n{trace}");
    assert_counted(&trace);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sigterm_ends_the_run_as_a_power_off() {
    stop_with("TERM", 15);
}

#[test]
fn sigint_ends_the_run_as_a_power_off() {
    stop_with("INT", 2);
}

#[test]
fn sighup_ends_the_run_as_a_power_off() {
    stop_with("HUP", 1);
}

#[test]
fn a_killed_run_keeps_its_trace_lines() {
    let dir = scratch("KILL");
    let mut child = start(&dir);
    wait_for_trace(&mut child, &dir.join("trace.txt"), 3);
    child.kill().unwrap();
    child.wait().unwrap();
    let trace = fs::read_to_string(dir.join("trace.txt")).unwrap();
    assert!(trace.lines().count() >= 3 && trace.ends_with('\n'), "{trace}");
    assert_counted(&trace);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_wall_clock_timeout_ends_the_run_as_a_power_off() {
    let dir = scratch("timeout");
    let child = start_with(&dir, &["--timeout", "1s"]);
    let (code, err) = finish(child);
    assert_eq!(code, Some(124), "{err}");
    assert!(err.contains("--timeout: 1.0 s of host time passed"), "{err}");
    assert!(err.contains("rx86 stats: "), "{err}");
    assert!(fs::read(dir.join("screen.png")).is_ok_and(|png| png.starts_with(b"\x89PNG")), "the screenshot");
    assert!(fs::read_to_string(dir.join("screen.txt")).is_ok_and(|t| t.contains("rx86 BIOS")), "the text dump");
    assert_counted(&fs::read_to_string(dir.join("trace.txt")).unwrap());
    fs::remove_dir_all(&dir).unwrap();
}

/// Starts rx86 held by `-S` for gdb on a free port, with a text dump in `dir`; returns it,
/// its standard error (read up to the listening line) and the address it listens on.
fn start_waiting_for_gdb(dir: &Path) -> (Child, std::io::BufReader<std::process::ChildStderr>, String) {
    use std::io::BufRead;
    let kernel = rx86_tests::guests::multiboot_test_kernel().expect("build the multiboot test kernel");
    let mut child = Command::new(rx86_binary())
        .args(["run", "-S", "--gdb", "127.0.0.1:0", "--serial", "none", "--kernel"])
        .arg(&kernel)
        .arg("--text-dump")
        .arg(dir.join("screen.txt"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rx86");
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("gdb stub listening on ") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "rx86 ended before it listened for gdb");
    }
    let address = line.split("listening on ").nth(1).and_then(|r| r.split([' ', ';']).next()).unwrap().to_string();
    (child, stderr, address)
}

#[test]
fn sigterm_ends_a_run_waiting_for_gdb() {
    // `-S` holds the guest before its first instruction until gdb connects; a signal ends
    // that wait too, with the end-of-run work done.
    let dir = scratch("gdb-wait");
    let (child, stderr, _) = start_waiting_for_gdb(&dir);
    terminates_in_order(child, stderr, &dir);
}

/// Sends SIGTERM to `child` and checks that it ends as a power-off would: status 128 + 15,
/// the signal named on `stderr`, the text dump written into `dir` (then removed).
fn terminates_in_order(mut child: Child, mut stderr: impl Read, dir: &Path) {
    send(&child, "TERM");
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + 15), "{rest}");
    assert!(rest.contains("SIGTERM received"), "{rest}");
    assert!(dir.join("screen.txt").exists(), "the text dump is written");
    fs::remove_dir_all(dir).unwrap();
}

/// Connects a debugger to the stub of `start_waiting_for_gdb` and waits until rx86 says so.
fn connect_debugger(address: &str, stderr: &mut impl std::io::BufRead) -> std::net::TcpStream {
    let debugger = std::net::TcpStream::connect(address).expect("connect to the gdb stub");
    let mut line = String::new();
    while !line.contains("gdb connected") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "rx86 ended before gdb connected");
    }
    debugger
}

#[test]
fn a_signal_while_gdb_holds_the_guest_ends_the_run_in_order() {
    let dir = scratch("gdb-holds");
    let (child, mut stderr, address) = start_waiting_for_gdb(&dir);
    let _debugger = connect_debugger(&address, &mut stderr);
    terminates_in_order(child, stderr, &dir);
}

#[test]
fn a_second_signal_forces_the_exit() {
    // gdb has sent the start of a packet and no more: the stub waits inside the packet, so
    // the machine loop does not run and cannot act on the first signal; the second one
    // exits at once, with 128 + signal.
    use std::io::Write;
    let dir = scratch("second");
    let (mut child, mut stderr, address) = start_waiting_for_gdb(&dir);
    let mut debugger = connect_debugger(&address, &mut stderr);
    debugger.write_all(b"$qSupported").unwrap();
    // Two signals sent close together may merge into one pending signal: repeat until the
    // process is gone.
    let start = Instant::now();
    let status = loop {
        send(&child, "TERM");
        std::thread::sleep(Duration::from_millis(200));
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < LIMIT, "rx86 outlived repeated signals");
    };
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(128 + 15), "{rest}");
    assert!(!rest.contains("SIGTERM received"), "forced, not the orderly end: {rest}");
    fs::remove_dir_all(&dir).unwrap();
}
