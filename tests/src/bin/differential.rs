//! `differential [--mode 64|32|16] [--reference host|kvm] [--count N] [--seed S]
//! [--max-divergences N]`: runs N random instruction sequences on the interpreter and on a
//! reference from the same state (by default the host CPU for 64- and 32-bit code and a KVM
//! vCPU for real mode; `--reference kvm` compares 32-bit code with a KVM vCPU), prints each
//! divergence as a minimal reproducer and ends with a summary line per mode (exit
//! status 1 when anything diverged). Without `--mode` all three modes run, and real
//! mode is skipped with the reason when the host has no hardware KVM.

use rx86_tests::differential::gen::Avoid;
use rx86_tests::differential::{run, Mode, ReferenceCpu, SetupError};
use std::time::Instant;

fn usage() -> ! {
    eprintln!(
        "usage: differential [--mode 64|32|16] [--reference host|kvm] [--count N] [--seed S] [--max-divergences N]"
    );
    std::process::exit(2);
}

fn number(v: Option<String>) -> u64 {
    let v = v.unwrap_or_else(|| usage());
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    parsed.unwrap_or_else(|_| usage())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut modes, mut count, mut seed, mut max) =
        (vec![Mode::Long64, Mode::Protected32, Mode::Real16], 100_000, 1, 10);
    let mut explicit = false;
    let mut reference = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--mode" => {
                explicit = true;
                modes = match args.next().as_deref() {
                    Some("64") => vec![Mode::Long64],
                    Some("32") => vec![Mode::Protected32],
                    Some("16") => vec![Mode::Real16],
                    _ => usage(),
                }
            }
            "--reference" => {
                reference = match args.next().as_deref() {
                    Some("host") => Some(ReferenceCpu::Host),
                    Some("kvm") => Some(ReferenceCpu::Kvm),
                    _ => usage(),
                }
            }
            "--count" => count = number(args.next()),
            "--seed" => seed = number(args.next()),
            "--max-divergences" => max = number(args.next()) as usize,
            _ => usage(),
        }
    }
    let mut failed = false;
    for mode in modes {
        let start = Instant::now();
        let reference = reference.unwrap_or(ReferenceCpu::default_for(mode));
        let report = match run(mode, reference, count, seed, max) {
            Ok(r) => r,
            Err(SetupError::Kvm(why)) if !explicit => {
                println!("{mode}: skipped ({why})");
                continue;
            }
            Err(e) => {
                eprintln!("differential: {e}");
                std::process::exit(2);
            }
        };
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{mode}: {} sequences over {} instruction forms ({} ending in an exception), {} divergences, {:.0} \
             sequences/s (seed {seed}, reference {reference:?})",
            report.sequences,
            report.forms,
            report.faulted,
            report.divergences.len(),
            report.sequences as f64 / secs.max(1e-9)
        );
        println!(
            "{mode}: {} sequences with x87 units; {} transcendental operands redrawn (the host may round them \
             differently: within 3/16 ULP of a rounding boundary)",
            report.x87_sequences, report.x87_left_out
        );
        println!(
            "{mode}: {} sequences with SIMD units (SSE3 to SSE4.2, AES-NI, PCLMULQDQ, SHA, AVX), {} of them with AVX \
             units (AVX, AVX2, FMA, F16C)",
            report.simd_sequences, report.avx_sequences
        );
        if report.avoided != Avoid::NOTHING {
            println!("{mode}: cases left out what the reference gets wrong or cannot run: {:?}", report.avoided);
        }
        failed |= !report.divergences.is_empty();
    }
    std::process::exit(i32::from(failed));
}
