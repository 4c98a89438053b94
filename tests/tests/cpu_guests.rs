//! The CPU test guests of `tests/guests/cpu-*` (built from source with the host gcc/ld) run on
//! the software CPU: every result line they print on COM1 must be `ok`, the last one
//! `done: ok`, and they must leave through isa-debug-exit with 0 (process status 1).
//!
//! Each guest also runs on the JIT tier (every block compiled, the lock-step checker on)
//! and must behave exactly the same there.
//!
//! Each guest covers one area of the architecture: mode switches, paging formats, exceptions,
//! hardware task switches, virtual-8086 mode, fast system calls; `cpu-model` reports what it
//! sees of the CPU model chosen with `--cpu`; `cpu-v3` runs code built with `-march=x86-64-v3`
//! (AVX2, FMA, F16C, BMI2) and must print what the same object code prints on the host.

use rx86_tests::guests::{build_elf32_guest, build_guest, guest_sources_root, GuestArch};
use rx86_tests::rx86_bin::{run_rx86_with_limit, stderr_of, stdout_of};
use std::time::Duration;

/// Exit status of rx86 when the guest wrote 0 to isa-debug-exit: (0 << 1) | 1.
const GUEST_SUCCESS_STATUS: i32 = 1;
/// Far more than any guest needs on the interpreter; a hang fails the test instead of CI.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// Builds `tests/guests/cpu-<name>`, runs it under `--accel interp` and checks its report;
/// then runs it under `--accel jit`, compiling every block at its first run with the
/// lock-step checker on, which must print the same and retire the same instructions.
fn run_guest(name: &str) {
    let dir = guest_sources_root().join(format!("cpu-{name}"));
    let elf = build_elf32_guest(&format!("cpu-{name}"), &dir).expect("build the guest");
    let elf = elf.to_str().expect("UTF-8 guest path");
    let args = ["run", "--kernel", elf, "--debug-exit", "-m", "64M", "--stats"];
    let run = |tier: &[&str]| {
        let args = [&args[..], tier].concat();
        let out = run_rx86_with_limit(&args, RUN_LIMIT).unwrap_or_else(|| panic!("cpu-{name} did not finish"));
        let stdout = stdout_of(&out).replace('\r', "");
        let stderr = stderr_of(&out);
        let context = format!("cpu-{name} {tier:?} output:\n{stdout}\nstderr:\n{stderr}");
        let retired = stderr
            .lines()
            .find_map(|l| l.strip_prefix("rx86 stats: "))
            .map(|l| l.split(' ').next().map(str::to_string));
        (out.status.code(), stdout, retired, context)
    };
    let (status, stdout, retired, context) = run(&["--accel", "interp"]);
    let lines: Vec<&str> = stdout.lines().filter(|l| l.contains(": ")).collect();
    assert!(lines.len() > 1, "no result lines; {context}");
    for line in &lines {
        assert!(line.ends_with(": ok"), "failed check `{line}`; {context}");
    }
    assert_eq!(lines.last().copied(), Some("done: ok"), "{context}");
    assert_eq!(status, Some(GUEST_SUCCESS_STATUS), "{context}");
    let (jit_status, jit_stdout, jit_retired, jit_context) =
        run(&["--accel", "jit", "--jit-threshold", "1", "--jit-check"]);
    assert_eq!((jit_status, &jit_stdout), (status, &stdout), "{jit_context}");
    assert!(retired.is_some(), "{context}");
    assert_eq!(jit_retired, retired, "instructions retired; {jit_context}");
}

#[test]
fn cpu_modes_guest_passes() {
    run_guest("modes");
}

#[test]
fn cpu_exceptions_guest_passes() {
    run_guest("exceptions");
}

#[test]
fn cpu_paging_guest_passes() {
    run_guest("paging");
}

#[test]
fn cpu_syscall_guest_passes() {
    run_guest("syscall");
}

#[test]
fn cpu_tasks_guest_passes() {
    run_guest("tasks");
}

#[test]
fn cpu_v86_guest_passes() {
    run_guest("v86");
}

/// Runs `tests/guests/cpu-model` with `--cpu model` (none: the default) and returns its
/// "fact NAME VALUE" lines as (name, value).
fn model_facts(model: Option<&str>) -> Vec<(String, u32)> {
    let dir = guest_sources_root().join("cpu-model");
    let elf = build_elf32_guest("cpu-model", &dir).expect("build the guest");
    let elf = elf.to_str().expect("UTF-8 guest path");
    let mut args = vec!["run", "--accel", "interp", "--kernel", elf, "--debug-exit", "-m", "64M"];
    if let Some(m) = model {
        args.extend(["--cpu", m]);
    }
    let out = run_rx86_with_limit(&args, RUN_LIMIT).expect("cpu-model did not finish");
    let stdout = stdout_of(&out).replace('\r', "");
    let context = format!("cpu-model --cpu {model:?} output:\n{stdout}\nstderr:\n{}", stderr_of(&out));
    assert_eq!(out.status.code(), Some(GUEST_SUCCESS_STATUS), "{context}");
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("fact "))
        .map(|l| {
            let (name, value) = l.split_once(' ').unwrap_or_else(|| panic!("bad line `{l}`; {context}"));
            let value = u32::from_str_radix(value.trim_start_matches("0x"), 16).expect("hex value");
            (name.to_string(), value)
        })
        .collect()
}

/// The facts `expected` lists, as the guest reported them.
fn assert_facts(model: Option<&str>, expected: &[(&str, u32)]) {
    let facts = model_facts(model);
    for (name, want) in expected {
        let got = facts.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        assert_eq!(got, Some(*want), "--cpu {model:?}: {name} (all facts: {facts:?})");
    }
}

#[test]
fn a_486_guest_sees_a_486() {
    assert_facts(
        Some("486"),
        &[
            ("max-basic-leaf", 1),
            ("family", 4),
            ("leaf1-edx", 1),
            ("max-extended-leaf", 0),
            ("long-mode", 0),
            ("rdtsc-runs", 0),
            ("cmov-runs", 0),
            ("nopl-runs", 0),
            ("popcnt-runs", 0),
            ("avx-runs", 0),
        ],
    );
}

#[test]
fn x86_64_v2_has_popcnt_and_no_avx() {
    assert_facts(
        Some("x86-64-v2"),
        &[
            ("family", 6),
            ("long-mode", 1),
            ("rdtsc-runs", 1),
            ("cmov-runs", 1),
            ("nopl-runs", 1),
            ("popcnt-runs", 1),
            ("avx-runs", 0),
            // SSE3, SSSE3, CX16, SSE4.1, SSE4.2, POPCNT.
            ("leaf1-ecx", 0x0098_2201),
            ("pshufb-runs", 1),
            ("pcmpistri-runs", 1),
            ("pext-runs", 0),
            ("movbe-runs", 0),
            ("osxsave", 0),
            ("xgetbv-runs", 0),
            ("avx-state-runs", 0),
            ("avx2-runs", 0),
            ("fma-runs", 0),
            ("f16c-runs", 0),
        ],
    );
    assert_facts(
        Some("x86-64"),
        &[("family", 15), ("long-mode", 1), ("popcnt-runs", 0), ("pshufb-runs", 0), ("leaf1-ecx", 0)],
    );
    assert_facts(Some("pentium"), &[("family", 5), ("rdtsc-runs", 1), ("cmov-runs", 0), ("long-mode", 0)]);
}

#[test]
fn x86_64_v3_has_avx2_fma_f16c_bmi_movbe_and_xsave() {
    assert_facts(
        Some("x86-64-v3"),
        &[
            // v2's features, PCLMULQDQ, FMA, MOVBE, AES, XSAVE, AVX, F16C, RDRAND and PCID
            // (OSXSAVE: CR4's).
            ("leaf1-ecx", 0x76da_3203),
            // FSGSBASE, AVX2, BMI1, BMI2, SMEP and INVPCID.
            ("leaf7-ebx", 0x5a9),
            ("pext-runs", 1),
            ("movbe-runs", 1),
            ("pshufb-runs", 1),
            // #UD until the OS enables the AVX state (CR4.OSXSAVE, XCR0).
            ("avx-runs", 0),
            ("osxsave", 1),
            ("xgetbv-runs", 1),
            ("xcr0", 7),
            ("xsave-size", 832),
            ("avx-state-runs", 1),
            ("avx2-runs", 1),
            ("fma-runs", 1),
            ("f16c-runs", 1),
        ],
    );
}

#[test]
fn the_default_model_is_max() {
    assert_facts(None, &[("max-basic-leaf", 0xd), ("family", 6), ("long-mode", 1), ("popcnt-runs", 1)]);
}

/// The "v3 NAME VALUE" lines of an output.
fn v3_lines(out: &str) -> Vec<String> {
    out.replace('\r', "").lines().filter(|l| l.starts_with("v3 ")).map(str::to_string).collect()
}

#[test]
fn an_x86_64_v3_guest_prints_what_the_host_prints() {
    let host_v3 = ["avx2", "fma", "f16c", "bmi1", "bmi2", "lzcnt"].iter().all(|f| match *f {
        "avx2" => std::arch::is_x86_feature_detected!("avx2"),
        "fma" => std::arch::is_x86_feature_detected!("fma"),
        "f16c" => std::arch::is_x86_feature_detected!("f16c"),
        "bmi1" => std::arch::is_x86_feature_detected!("bmi1"),
        "bmi2" => std::arch::is_x86_feature_detected!("bmi2"),
        _ => std::arch::is_x86_feature_detected!("lzcnt"),
    });
    let root = guest_sources_root();
    let guest = build_guest("cpu-v3", &[root.join("cpu-v3")], GuestArch::I386V3).expect("build the guest");
    let guest = guest.to_str().expect("UTF-8 guest path");
    let args = ["run", "--accel", "interp", "--cpu", "x86-64-v3", "--kernel", guest, "--debug-exit", "-m", "64M"];
    let out = run_rx86_with_limit(&args, RUN_LIMIT).expect("cpu-v3 did not finish");
    let stdout = stdout_of(&out);
    let context = format!("cpu-v3 output:\n{stdout}\nstderr:\n{}", stderr_of(&out));
    assert_eq!(out.status.code(), Some(GUEST_SUCCESS_STATUS), "{context}");
    let ours = v3_lines(&stdout);
    assert!(ours.len() >= 25, "{} result lines; {context}", ours.len());
    if !host_v3 {
        println!("SKIP the comparison: the host CPU is not x86-64-v3");
        return;
    }
    let native =
        build_guest("cpu-v3-native", &[root.join("cpu-v3-native")], GuestArch::I386V3).expect("build the native twin");
    let host = match std::process::Command::new(&native).output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => panic!("the native twin failed: {o:?}"),
        Err(e) => {
            println!("SKIP the comparison: the host cannot run an i386 executable: {e}");
            return;
        }
    };
    assert_eq!(ours, v3_lines(&host), "{context}");
}
