//! The progress line: with standard error on a terminal (a pty here) rx86 keeps a status line
//! there during the run (guest time, speed, disk and serial traffic), redrawn in place and
//! erased at the end; `--quiet` and a standard error that is no terminal get none.

use rx86_tests::boot_media::boot_sector_floppy;
use rx86_tests::rx86_bin::rx86_binary;
use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};

/// Runs the serial-echo guest (it waits for input forever) for 2 s of host time with
/// standard error on a new pty; returns what reached the pty and the exit status.
fn run_on_a_pty(extra: &[&str]) -> (String, Option<i32>) {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors; the name and settings pointers may be null.
    let ok =
        unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
    assert_eq!(ok, 0, "openpty");
    // SAFETY: both descriptors were just opened and are owned by nothing else.
    let (master, slave) = unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let floppy = boot_sector_floppy("serial-echo", "progress").expect("build the guest");
    let child = Command::new(rx86_binary())
        .args(["run", "--fda"])
        .arg(&floppy)
        .args(["--boot", "a", "--snapshot", "--serial", "null", "--timeout", "2s"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(slave))
        .spawn()
        .expect("spawn rx86");
    // Read on a thread: the pty's buffer is small.
    let reader = std::thread::spawn(move || {
        let mut master = master;
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        // The read fails (EIO) once rx86, the last holder of the terminal side, exits.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    let output = child.wait_with_output().expect("wait for rx86");
    let text = reader.join().unwrap();
    std::fs::remove_file(&floppy).unwrap();
    (text, output.status.code())
}

#[test]
fn a_status_line_on_a_terminal_and_none_with_quiet() {
    let (text, status) = run_on_a_pty(&[]);
    assert_eq!(status, Some(124), "--timeout ends the run: {text}");
    let lines: Vec<&str> = text.split("\r\x1b[K").filter(|l| l.starts_with("rx86: guest ")).collect();
    assert!(lines.len() >= 2, "redrawn during the run: {text:?}");
    for line in &lines {
        assert!(line.contains(" MIPS | disk r ") && line.contains(" | serial "), "{line:?}");
    }
    // The boot sector was read through the floppy controller and the BIOS: disk traffic.
    assert!(!lines.last().unwrap().contains("disk r 0 B"), "{lines:?}");
    // Erased before the final message, which starts a clean line.
    let end = text.rfind("rx86: --timeout").expect("the timeout message");
    assert!(text[..end].ends_with("\r\x1b[K"), "{text:?}");

    let (text, status) = run_on_a_pty(&["--quiet"]);
    assert_eq!(status, Some(124));
    assert!(!text.contains("rx86: guest "), "--quiet: {text:?}");
}
