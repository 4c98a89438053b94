//! Image locking as QEMU does it: a second writer of an image, rx86 or QEMU, is refused with
//! a clear message and status 1, and so is the same file attached twice in one machine;
//! read-only and `--snapshot` users coexist with each other (and, as in QEMU, not with a
//! writer). The guest is a floppy whose boot sector halts forever, so a run holds its image
//! until it is told to stop.

use rx86_tests::rx86_bin::{run_rx86, rx86_binary, stderr_of};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Time allowed for anything the test waits for.
const LIMIT: Duration = Duration::from_secs(60);
/// What rx86 says when a lock is in the way.
const IN_USE: &str = "is in use: failed to get the";

/// A scratch directory with a 1.44 MB floppy whose boot sector halts forever.
fn endless_floppy(tag: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("rx86-lock-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let mut image = vec![0u8; 1_474_560];
    // sti; l: hlt; jmp l
    image[..4].copy_from_slice(&[0xfb, 0xf4, 0xeb, 0xfd]);
    image[510..512].copy_from_slice(&[0x55, 0xaa]);
    let path = dir.join("floppy.img");
    fs::write(&path, image).unwrap();
    (dir, path)
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Starts rx86 on `floppy` with `extra` options and waits until its guest runs (its trace
/// file has lines), so its locks are held.
fn start_holder(dir: &Path, floppy: &Path, extra: &[&str]) -> Child {
    let trace = dir.join(format!("trace-{}.txt", extra.len()));
    let mut child = Command::new(rx86_binary())
        .args(["run", "--fda", path_str(floppy), "--boot", "a", "--serial", "none", "--trace"])
        .arg(format!("int,file={}", trace.display()))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rx86");
    let start = Instant::now();
    while fs::read_to_string(&trace).unwrap_or_default().lines().count() < 2 {
        assert!(child.try_wait().unwrap().is_none(), "the first rx86 ended early");
        assert!(start.elapsed() < LIMIT, "the first rx86 never ran its guest");
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A second rx86 on `floppy` (or on the drives `extra` names when `floppy` is `None`);
/// `--timeout` ends it if nothing refuses it.
fn second(floppy: Option<&Path>, extra: &[&str]) -> Output {
    let mut args = vec!["run", "--serial", "none", "--timeout", "1s"];
    if let Some(floppy) = floppy {
        args.extend(["--fda", path_str(floppy), "--boot", "a"]);
    }
    args.extend(extra);
    run_rx86(&args)
}

fn assert_refused(out: &Output, lock: &str) {
    let err = stderr_of(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("{IN_USE} {lock} lock")), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

fn assert_ran(out: &Output) {
    let err = stderr_of(out);
    assert_eq!(out.status.code(), Some(124), "ran until --timeout: {err}");
    assert!(!err.contains(IN_USE), "{err}");
}

#[test]
fn a_running_writer_refuses_a_second_writer_and_readers() {
    let (dir, floppy) = endless_floppy("writer");
    let holder = start_holder(&dir, &floppy, &[]);
    assert_refused(&second(Some(&floppy), &[]), "\"write\"");
    assert_refused(&second(Some(&floppy), &["--snapshot"]), "shared \"write\"");
    stop(holder);
    assert_ran(&second(Some(&floppy), &[]));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn snapshot_users_share_the_image_but_keep_writers_out() {
    let (dir, floppy) = endless_floppy("readers");
    let holder = start_holder(&dir, &floppy, &["--snapshot"]);
    assert_ran(&second(Some(&floppy), &["--snapshot"]));
    let read_only_disk = format!("file={},if=ide,readonly=on", path_str(&floppy));
    assert_ran(&second(None, &["--drive", &read_only_disk]));
    assert_refused(&second(Some(&floppy), &[]), "\"write\"");
    stop(holder);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_same_file_twice_in_one_machine_is_refused() {
    let (dir, floppy) = endless_floppy("twice");
    assert_refused(&second(Some(&floppy), &["--hda", path_str(&floppy)]), "\"write\"");
    fs::remove_dir_all(&dir).unwrap();
}

/// Why QEMU cannot take part here, if it cannot.
fn qemu_unavailable() -> Option<String> {
    match Command::new("qemu-system-x86_64").arg("--version").output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!("qemu-system-x86_64 --version failed: {}", stderr_of(&out))),
        Err(e) => Some(format!("qemu-system-x86_64 is not installed: {e}")),
    }
}

/// QEMU, paused before its first instruction, with `floppy` as its writable floppy.
fn start_qemu(floppy: &Path, readonly: bool) -> Child {
    let ro = if readonly { ",readonly=on" } else { "" };
    Command::new("qemu-system-x86_64")
        .args(["-nodefaults", "-display", "none", "-S", "-drive"])
        .arg(format!("file={},format=raw,if=floppy{ro}", path_str(floppy)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn qemu-system-x86_64")
}

#[test]
fn rx86_and_qemu_refuse_each_other_as_second_writer() {
    if let Some(why) = qemu_unavailable() {
        println!("SKIP: {why}");
        return;
    }
    let (dir, floppy) = endless_floppy("qemu");
    // QEMU first: rx86 is refused as soon as QEMU has opened the image. A probing rx86 that
    // gets there before QEMU has locked it makes QEMU give up, so QEMU is started again.
    let mut qemu = start_qemu(&floppy, false);
    let start = Instant::now();
    let refused = loop {
        if qemu.try_wait().unwrap().is_some() {
            qemu = start_qemu(&floppy, false);
        }
        std::thread::sleep(Duration::from_millis(300));
        let out = second(Some(&floppy), &[]);
        if out.status.code() == Some(1) || start.elapsed() > LIMIT {
            break out;
        }
    };
    stop(qemu);
    assert_refused(&refused, "\"write\"");
    // rx86 first: QEMU, writer or reader, gives up with its own lock error.
    let holder = start_holder(&dir, &floppy, &[]);
    for readonly in [false, true] {
        let mut qemu = start_qemu(&floppy, readonly);
        let start = Instant::now();
        let status = loop {
            if let Some(status) = qemu.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > LIMIT {
                stop(qemu);
                panic!("QEMU (readonly={readonly}) took the image rx86 is writing");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let err = stderr_of(&qemu.wait_with_output().unwrap());
        assert!(!status.success() && err.contains("Failed to get"), "QEMU readonly={readonly}: {err}");
    }
    stop(holder);
    fs::remove_dir_all(&dir).unwrap();
}
