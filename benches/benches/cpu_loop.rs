//! CPU-bound guest loop (the fast-interpreter issue): `tests/guests/cpu-loop` (rounds of
//! xorshift integer mixing) on rx86's interpreter and JIT tier beside QEMU TCG, in the same run. Each
//! emulator runs a short build of the guest (start-up and the mixing of 1,000 rounds)
//! and a long one (200 million rounds); the difference is the steady-state rate, so
//! neither start-up nor QEMU's translation warm-up hides in it. Times are CPU time of the
//! child process (user + system), not wall time. Both must print the same checksum.
//!
//! `cargo bench -p rx86-benches --bench cpu_loop [-- --callgrind]`
//!
//! With `--callgrind` (valgrind installed), rx86 also runs both builds under callgrind
//! with a 2-million-round build as the long one: host instructions per guest instruction
//! in the steady state, a count that does not depend on the machine's load.
//!
//! Bochs is not measured: it cannot load a Multiboot kernel without a bootloader disk.

#[path = "support/cpu_time.rs"]
mod cpu_time;

use cpu_time::children_cpu;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Rounds of the short and long builds.
const SHORT: u64 = 1_000;
const LONG: u64 = 200_000_000;
/// The long build under callgrind (about 60x slower).
const CALLGRIND_LONG: u64 = 2_000_000;

/// Builds the cpu-loop guest with `rounds` rounds (its sources copied with the count
/// replaced).
fn guest(rounds: u64) -> PathBuf {
    let src = rx86_tests::guests::guest_sources_root().join("cpu-loop");
    let dir = std::env::temp_dir().join(format!("rx86-cpu-loop-{rounds}"));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    for entry in std::fs::read_dir(&src).expect("cpu-loop sources") {
        let path = entry.expect("cpu-loop source").path();
        let text = std::fs::read_to_string(&path).expect("read a source");
        let text = text.replace("#define ITERATIONS 20000000u", &format!("#define ITERATIONS {rounds}u"));
        std::fs::write(dir.join(path.file_name().expect("file name")), text).expect("write a source");
    }
    rx86_tests::guests::build_guest(&format!("cpu-loop-{rounds}"), &[dir], rx86_tests::guests::GuestArch::I386)
        .expect("build cpu-loop")
}

/// Runs `cmd` to its end; returns its output and the CPU time it took.
fn timed(cmd: &mut Command) -> std::io::Result<(Output, Duration)> {
    let before = children_cpu();
    let out = cmd.stdin(Stdio::null()).output()?;
    Ok((out, children_cpu() - before))
}

fn checksum(stdout: &[u8]) -> Option<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .find_map(|l| l.strip_prefix("cpu-loop: checksum=").map(|s| s.trim().to_string()))
}

/// Instructions retired, from `rx86 run --stats`.
fn retired(stderr: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(stderr);
    let line = text.lines().find(|l| l.starts_with("rx86 stats:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// The software tiers measured: the interpreter alone and with the JIT.
const TIERS: [&str; 2] = ["interp", "jit"];

fn rx86(kernel: &Path, accel: &str) -> Command {
    let mut cmd = Command::new(rx86_tests::rx86_bin::rx86_binary());
    cmd.args(["run", "--accel", accel, "-m", "64M", "--debug-exit", "--stats", "--kernel"]).arg(kernel);
    cmd
}

fn qemu(kernel: &Path) -> Command {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-accel", "tcg", "-machine", "pc", "-m", "64", "-serial", "stdio", "-display", "none"])
        .args(["-monitor", "none", "-no-reboot", "-device", "isa-debug-exit,iobase=0x501", "-kernel"])
        .arg(kernel);
    cmd
}

/// Host instructions callgrind counts for `rx86 --accel accel` on `kernel`.
fn callgrind(kernel: &Path, accel: &str) -> Option<u64> {
    let out_file = std::env::temp_dir().join(format!("rx86-cpu-loop-{}.callgrind", std::process::id()));
    let out = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(rx86_tests::rx86_bin::rx86_binary())
        .args(["run", "--accel", accel, "-m", "64M", "--debug-exit", "--kernel"])
        .arg(kernel)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let _ = std::fs::remove_file(&out_file);
    let text = String::from_utf8_lossy(&out.stderr);
    let line = text.lines().find(|l| l.contains("Collected :"))?;
    line.rsplit(':').next()?.trim().replace(',', "").parse().ok()
}

fn main() {
    let with_callgrind = std::env::args().any(|a| a == "--callgrind");
    let (short, long) = (guest(SHORT), guest(LONG));
    println!("cpu_loop: xorshift mixing, Multiboot guest; {SHORT} and {LONG} rounds; CPU time of each run");
    println!("emulator                    short s    long s   steady-state MIPS   checksum");
    let mut steady = Vec::new();
    let (mut short_insns, mut steady_insns, mut rx_checksum) = (0, 0.0, None);
    for accel in TIERS {
        let (rs, rs_cpu) = timed(&mut rx86(&short, accel)).expect("run rx86");
        let (rl, rl_cpu) = timed(&mut rx86(&long, accel)).expect("run rx86");
        let (is, il) = (retired(&rs.stderr).unwrap_or(0), retired(&rl.stderr).unwrap_or(0));
        (short_insns, steady_insns) = (is, il.saturating_sub(is) as f64);
        let rx_steady = (rl_cpu.saturating_sub(rs_cpu)).as_secs_f64();
        println!(
            "rx86 --accel {accel:<14} {:>7.2}   {:>7.2}   {:>17.1}   {:?}",
            rs_cpu.as_secs_f64(),
            rl_cpu.as_secs_f64(),
            steady_insns / rx_steady / 1e6,
            checksum(&rl.stdout)
        );
        steady.push((accel, rx_steady, rs_cpu));
        if rx_checksum.is_some_and(|c| c != checksum(&rl.stdout)) {
            println!("WARNING: the tiers' checksums differ");
        }
        rx_checksum = Some(checksum(&rl.stdout));
    }
    match (timed(&mut qemu(&short)), timed(&mut qemu(&long))) {
        (Ok((_, qs_cpu)), Ok((ql, ql_cpu))) => {
            let q_steady = (ql_cpu.saturating_sub(qs_cpu)).as_secs_f64();
            println!(
                "qemu-system-x86_64 (tcg)   {:>7.2}   {:>7.2}   {:>17.1}   {:?}",
                qs_cpu.as_secs_f64(),
                ql_cpu.as_secs_f64(),
                steady_insns / q_steady / 1e6,
                checksum(&ql.stdout)
            );
            for (accel, rx_steady, rs_cpu) in &steady {
                println!(
                    "ratio rx86 {accel}/qemu: steady state {:.2}x, start-up {:.2}x (MIPS of QEMU counted with rx86's instruction count)",
                    rx_steady / q_steady,
                    rs_cpu.as_secs_f64() / qs_cpu.as_secs_f64()
                );
            }
            if rx_checksum != Some(checksum(&ql.stdout)) {
                println!("WARNING: the checksums differ");
            }
        }
        (Err(e), _) | (_, Err(e)) => println!("qemu-system-x86_64: cannot run: {e}"),
    }
    if with_callgrind {
        let mid = guest(CALLGRIND_LONG);
        for accel in TIERS {
            let mid_insns = retired(&timed(&mut rx86(&mid, accel)).expect("run rx86").0.stderr).unwrap_or(0);
            match (callgrind(&short, accel), callgrind(&mid, accel)) {
                (Some(hs), Some(hm)) => println!(
                    "callgrind, {accel}: {:.1} host instructions per guest instruction in the steady state ({} rounds)",
                    hm.saturating_sub(hs) as f64 / mid_insns.saturating_sub(short_insns) as f64,
                    CALLGRIND_LONG
                ),
                _ => println!("callgrind: valgrind did not run"),
            }
        }
    }
    println!("bochs: not measured (no Multiboot loader without a bootloader disk)");
}
