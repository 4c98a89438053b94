//! Start-up benchmark (issue: the machine): time from process start to the first guest
//! instruction and to power-off of the 64-bit Multiboot test kernel (it runs on every engine,
//! nested PVM included), and peak RSS, for rx86
//! and for QEMU running the same kernel in the same run.
//!
//! `cargo bench -p rx86-benches --bench startup [-- --accel kvm|tcg] [--runs N]`
//!
//! Both emulators run as child processes; "first output" is the moment the first byte
//! of the guest's serial output reaches us (the same event for both), "exit" the moment
//! the process ends, "RSS" the child's peak resident set (`wait4`). rx86's time to its
//! first guest instruction is measured in-process through the library API as well.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Sample {
    first_output: Duration,
    exit: Duration,
    max_rss_kib: i64,
    status: i32,
}

/// A run that takes longer than this is killed and reported (QEMU pauses, rather than
/// exits, when KVM cannot emulate a guest instruction).
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn run_child(mut cmd: Command) -> Result<Sample, String> {
    let start = Instant::now();
    let mut child =
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().map_err(|e| e.to_string())?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let pid = child.id() as libc::pid_t;
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(RUN_TIMEOUT).is_err() {
            // SAFETY: pid is our child, not reaped until wait4 below returns.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let mut first = [0u8; 1];
    let first_output = match stdout.read(&mut first) {
        Ok(1) => start.elapsed(),
        _ => Duration::ZERO,
    };
    let mut rest = Vec::new();
    let _ = stdout.read_to_end(&mut rest);
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child, not yet reaped; the pointers are to live locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let exit = start.elapsed();
    let _ = done_tx.send(());
    let _ = watchdog.join();
    if exit >= RUN_TIMEOUT {
        return Err(format!("no exit within {} s (killed)", RUN_TIMEOUT.as_secs()));
    }
    if r != pid {
        return Err(format!("wait4 failed: {}", std::io::Error::last_os_error()));
    }
    let status = std::process::ExitStatus::from_raw(status).code().unwrap_or(-1);
    Ok(Sample { first_output, exit, max_rss_kib: usage.ru_maxrss, status })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

struct Summary {
    first_ms: f64,
    exit_ms: f64,
    rss_mib: f64,
    status: i32,
}

fn measure(name: &str, runs: usize, make: impl Fn() -> Command) -> Option<Summary> {
    let mut samples = Vec::new();
    for _ in 0..runs {
        match run_child(make()) {
            Ok(s) => samples.push(s),
            Err(e) => {
                println!("{name}: cannot run: {e}");
                return None;
            }
        }
    }
    Some(Summary {
        first_ms: median(samples.iter().map(|s| s.first_output.as_secs_f64() * 1e3).collect()),
        exit_ms: median(samples.iter().map(|s| s.exit.as_secs_f64() * 1e3).collect()),
        rss_mib: median(samples.iter().map(|s| s.max_rss_kib as f64 / 1024.0).collect()),
        status: samples.last().map_or(-1, |s| s.status),
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let accel = value("--accel").unwrap_or_else(|| {
        if rx86_tests::rx86_bin::kvm_unavailable().is_none() {
            "kvm".into()
        } else {
            "tcg".into()
        }
    });
    let runs: usize = value("--runs").and_then(|r| r.parse().ok()).unwrap_or(10);
    let kernel = rx86_tests::guests::multiboot64_test_kernel().expect("build the 64-bit multiboot test kernel");
    let k = kernel.to_str().unwrap().to_string();
    let mem = "256";
    let rx86_accel = if accel == "kvm" { "kvm" } else { "interp" };

    // In-process: process-independent cost of building the machine up to the first
    // guest instruction.
    let config = rx86::config::MachineConfig {
        ram_bytes: 256 << 20,
        accel: if accel == "kvm" { rx86::config::Accel::Kvm } else { rx86::config::Accel::Interp },
        kernel: Some(kernel.clone()),
        append: "bench".into(),
        serial: vec![rx86::config::CharBackend::Null],
        ..Default::default()
    };
    let t = Instant::now();
    let ready = rx86::machine::Machine::new(config).map(|_| t.elapsed());

    let rx86_bin = rx86_tests::rx86_bin::rx86_binary();
    let rx = measure("rx86", runs, || {
        let mut c = Command::new(&rx86_bin);
        c.args(["run", "--accel", rx86_accel, "-m", mem, "--kernel", &k, "--append", "bench", "--debug-exit"]);
        c
    });
    let qemu = measure("qemu-system-x86_64", runs, || {
        let mut c = Command::new("qemu-system-x86_64");
        c.args(["-accel", &accel, "-machine", "pc", "-m", mem, "-kernel", &k, "-append", "bench"]);
        c.args(["-serial", "stdio", "-display", "none", "-no-reboot", "-monitor", "none"]);
        c.args(["-device", "isa-debug-exit,iobase=0x501"]);
        c
    });

    println!("startup benchmark: 64-bit Multiboot test kernel, -m {mem}M, accel {accel}, median of {runs} runs");
    match ready {
        Ok(d) => {
            println!("rx86 in-process: machine built, first guest instruction after {:.2} ms", d.as_secs_f64() * 1e3)
        }
        Err(e) => println!("rx86 in-process: {e}"),
    }
    println!("{:<22} {:>16} {:>12} {:>12} {:>8}", "emulator", "first output ms", "exit ms", "max RSS MiB", "status");
    for (name, s) in [("rx86", &rx), ("qemu-system-x86_64", &qemu)] {
        if let Some(s) = s {
            println!("{name:<22} {:>16.2} {:>12.2} {:>12.1} {:>8}", s.first_ms, s.exit_ms, s.rss_mib, s.status);
        }
    }
    if let (Some(r), Some(q)) = (&rx, &qemu) {
        println!(
            "ratio qemu/rx86: first output {:.1}x, exit {:.1}x, RSS {:.1}x",
            q.first_ms / r.first_ms,
            q.exit_ms / r.exit_ms,
            q.rss_mib / r.rss_mib
        );
    }
}
