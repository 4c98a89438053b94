//! CPU-bound guest loop (issue: the software CPU): guest instructions per second of the
//! interpreter on `tests/guests/cpu-loop` (20 million rounds of integer mixing), beside
//! QEMU TCG running the same Multiboot guest in the same run. Both must print the same
//! checksum.
//!
//! `cargo bench -p rx86-benches --bench cpu_loop`
//!
//! Bochs is not measured: it cannot load a Multiboot kernel without a bootloader disk.

use std::process::{Command, Stdio};
use std::time::Instant;

fn checksum(stdout: &[u8]) -> Option<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .find_map(|l| l.strip_prefix("cpu-loop: checksum=").map(|s| s.trim().to_string()))
}

fn main() {
    let root = rx86_tests::guests::guest_sources_root();
    let guest = rx86_tests::guests::build_elf32_guest("cpu-loop", &root.join("cpu-loop")).expect("build cpu-loop");
    let g = guest.to_str().unwrap();

    let start = Instant::now();
    let rx = Command::new(rx86_tests::rx86_bin::rx86_binary())
        .args(["run", "--accel", "interp", "-m", "64M", "--kernel", g, "--debug-exit", "--stats"])
        .stdin(Stdio::null())
        .output()
        .expect("run rx86");
    let rx_secs = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let qemu = Command::new("qemu-system-x86_64")
        .args(["-accel", "tcg", "-machine", "pc", "-m", "64", "-kernel", g, "-serial", "stdio"])
        .args(["-display", "none", "-monitor", "none", "-no-reboot", "-device", "isa-debug-exit,iobase=0x501"])
        .stdin(Stdio::null())
        .output();
    let qemu_secs = start.elapsed().as_secs_f64();

    println!("cpu_loop: 20M rounds of xorshift mixing, Multiboot guest, one run each");
    let stats = String::from_utf8_lossy(&rx.stderr).lines().find(|l| l.starts_with("rx86 stats:")).map(str::to_string);
    println!("rx86 --accel interp       {rx_secs:>7.2} s  checksum {:?}", checksum(&rx.stdout));
    if let Some(s) = stats {
        println!("{s}");
    }
    match qemu {
        Ok(q) => {
            println!("qemu-system-x86_64 (tcg)  {qemu_secs:>7.2} s  checksum {:?}", checksum(&q.stdout));
            println!("ratio rx86/qemu-tcg: {:.1}x", rx_secs / qemu_secs);
            if checksum(&q.stdout) != checksum(&rx.stdout) {
                println!("WARNING: the checksums differ");
            }
        }
        Err(e) => println!("qemu-system-x86_64: cannot run: {e}"),
    }
    println!("bochs: not measured (no Multiboot loader without a bootloader disk)");
}
