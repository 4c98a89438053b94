//! A guest reset rebuilds the board, but what lives outside the guest carries on: a
//! `--snapshot` overlay keeps the guest's writes, and a debugger's breakpoints and the trace
//! stay armed. The guest (`tests/guests/boot-reset/`) writes a mark to its floppy, resets the
//! machine through the 8042, and after the reset reports whether the mark is still there.

use rx86_tests::boot_reset::{reset_floppy_image, MARK, RESETTING, WRITE_KEPT};
use rx86_tests::gdb::{assert_in_order, gdb_unavailable, run_gdb_without_symbols, StubProcess};
use rx86_tests::rx86_bin::{run_rx86_with_limit, stderr_of, stdout_of};
use std::fs;
use std::time::Duration;

/// Two boots of a boot sector take well under a second of guest time; a lost write makes the
/// guest reset forever, which this limit ends.
const LIMIT: Duration = Duration::from_secs(60);

fn floppy_args(image: &str) -> Vec<&str> {
    vec!["run", "--fda", image, "--boot", "a", "--serial", "stdio", "--display", "none", "--debug-exit", "0x501"]
}

#[test]
fn a_snapshot_keeps_the_guests_writes_across_a_reset_and_the_file_stays_unchanged() {
    let image = reset_floppy_image("snapshot").expect("build the reset guest");
    let before = fs::read(&image).unwrap();
    let mut args = floppy_args(image.to_str().unwrap());
    args.push("--snapshot");
    let out = run_rx86_with_limit(&args, LIMIT).expect("rx86 ends: the write before the reset must survive it");
    let console = stdout_of(&out);
    assert_eq!(out.status.code(), Some(1), "{console}\n{}", stderr_of(&out));
    assert_in_order(&console, &[RESETTING, WRITE_KEPT]);
    assert_eq!(fs::read(&image).unwrap(), before, "--snapshot: the image file is bit-for-bit unchanged");
    fs::remove_file(&image).unwrap();
}

#[test]
fn without_snapshot_the_write_reaches_the_file() {
    let image = reset_floppy_image("write").expect("build the reset guest");
    let out = run_rx86_with_limit(&floppy_args(image.to_str().unwrap()), LIMIT).expect("rx86 ends");
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert_in_order(&stdout_of(&out), &[RESETTING, WRITE_KEPT]);
    let bytes = fs::read(&image).unwrap();
    assert_eq!(bytes[512], MARK, "sector 1 holds the guest's mark");
    fs::remove_file(&image).unwrap();
}

#[test]
fn the_trace_goes_on_after_a_reset() {
    let image = reset_floppy_image("trace").expect("build the reset guest");
    let file = std::env::temp_dir().join(format!("rx86-reset-trace-{}.txt", std::process::id()));
    let spec = format!("insn,range=0x7c00-0x7c01,file={}", file.display());
    let mut args = floppy_args(image.to_str().unwrap());
    args.extend(["--trace", &spec]);
    let out = run_rx86_with_limit(&args, LIMIT).expect("rx86 ends");
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let trace = fs::read_to_string(&file).expect("trace file");
    fs::remove_file(&file).unwrap();
    fs::remove_file(&image).unwrap();
    let entries = trace.lines().filter(|l| l.contains(" insn 0000:0x00007c00 cli")).count();
    assert_eq!(entries, 2, "the boot sector's first instruction, once per boot:\n{trace}");
}

#[test]
fn a_gdb_breakpoint_stays_armed_across_a_reset() {
    if let Some(why) = gdb_unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let image = reset_floppy_image("gdb").expect("build the reset guest");
    let stub = StubProcess::start(&floppy_args(image.to_str().unwrap())[1..]);
    let out = run_gdb_without_symbols(
        &stub.address,
        &["hbreak *0x7c00", "continue", "print/x $pc", "continue", "print/x $pc", "continue"],
        LIMIT,
    );
    let gdb = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let (status, console, err) = stub.finish(LIMIT);
    fs::remove_file(&image).unwrap();
    assert_eq!(status, Some(1), "{console}\n{err}\n{gdb}");
    // gdb stops at the boot sector before the reset and again after it.
    let hits = gdb.matches("$1 = 0x7c00").count() + gdb.matches("$2 = 0x7c00").count();
    assert_eq!(hits, 2, "{gdb}");
    assert_in_order(&console, &[RESETTING, WRITE_KEPT]);
}
