//! Differential test of the interpreter against the host CPU (64- and 32-bit) and a
//! hardware KVM vCPU (real and 32-bit protected mode): 20,000 random instruction sequences
//! per mode and reference from fixed seeds must run identically (GPRs, RIP, defined flags,
//! data area, exception), x87 units included (their results and status words land in the
//! data area), SIMD units (SSE3 to SSE4.2, AES-NI, PCLMULQDQ, SHA, against the host), AVX
//! units (AVX, AVX2, FMA, F16C in 128- and 256-bit forms, against a host that has them) and
//! the BMI1/BMI2, MOVBE, ADX and CRC32 instructions included. The KVM comparisons skip,
//! saying why, where the host's KVM is not hardware virtualization; `nested_kvm.rs` runs
//! their KVM side in a nested KVM host. `cargo run --bin differential -- --count N` runs millions.
//! The same generator's sequences also run on the JIT tier against the interpreter.

use rx86_tests::differential::{run, run_tiers, Mode, ReferenceCpu, SetupError};

/// Sequences per mode (the acceptance floor).
const SEQUENCES: u64 = 20_000;

fn check(mode: Mode, reference: ReferenceCpu, seed: u64) {
    let report = match run(mode, reference, SEQUENCES, seed, 3) {
        Ok(r) => r,
        Err(SetupError::Kvm(why)) => {
            println!("SKIP: {why}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    assert_eq!(report.sequences, SEQUENCES);
    assert!(
        report.divergences.is_empty(),
        "{} divergences in {mode} mode; first:\n{}",
        report.divergences.len(),
        report.divergences[0]
    );
    // Division by zero and overflow must have been exercised on both sides.
    assert!(report.faulted > 0, "no sequence raised an exception");
    // About a quarter of the sequences carry an x87 unit.
    assert!(report.x87_sequences > SEQUENCES / 8, "{} sequences with x87 units", report.x87_sequences);
    // About a quarter carry a SIMD unit when the host CPU is the reference (the KVM
    // runners do not enable SSE).
    if reference == ReferenceCpu::Host && std::arch::is_x86_feature_detected!("sse4.2") {
        assert!(report.simd_sequences > SEQUENCES / 8, "{} sequences with SIMD units", report.simd_sequences);
    }
    let host_avx = std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("f16c");
    if reference == ReferenceCpu::Host && mode != Mode::Real16 {
        if host_avx {
            assert!(report.avx_sequences > SEQUENCES / 8, "{} sequences with AVX units", report.avx_sequences);
        } else {
            println!("AVX units skipped: the host lacks AVX2, FMA or F16C");
        }
    }
}

#[test]
fn interpreter_matches_the_host_in_64_bit_mode() {
    check(Mode::Long64, ReferenceCpu::Host, 0x64);
}

#[test]
fn interpreter_matches_the_host_in_32_bit_mode() {
    check(Mode::Protected32, ReferenceCpu::Host, 0x32);
}

#[test]
fn interpreter_matches_hardware_kvm_in_real_mode() {
    check(Mode::Real16, ReferenceCpu::Kvm, 0x16);
}

#[test]
fn interpreter_matches_hardware_kvm_in_32_bit_protected_mode() {
    check(Mode::Protected32, ReferenceCpu::Kvm, 0x132);
}

/// Sequences per mode run on both tiers.
const TIER_SEQUENCES: u64 = 1_000;

/// The JIT tier against the interpreter on the same generated sequences (every block
/// compiled at its first run, exceptions delivered through an IDT so that the state at
/// the faulting instruction is compared): the same outcome and instruction count.
fn check_tiers(mode: Mode, seed: u64) {
    let report = run_tiers(mode, TIER_SEQUENCES, seed, 3);
    assert!(
        report.divergences.is_empty(),
        "{} tier divergences in {mode} mode; first:\n{}",
        report.divergences.len(),
        report.divergences[0]
    );
    assert_eq!(report.sequences, TIER_SEQUENCES);
    assert!(report.faulted > 0, "no sequence raised an exception");
    assert!(report.retired > 10 * TIER_SEQUENCES, "only {} instructions retired", report.retired);
}

#[test]
fn jit_matches_the_interpreter_in_64_bit_mode() {
    check_tiers(Mode::Long64, 0x6464);
}

#[test]
fn jit_matches_the_interpreter_in_32_bit_mode() {
    check_tiers(Mode::Protected32, 0x3232);
}

#[test]
fn jit_matches_the_interpreter_in_real_mode() {
    check_tiers(Mode::Real16, 0x1616);
}
