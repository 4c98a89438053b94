//! Text conditions (`--stop-at @TEXT`, `--keys @TEXT:...`) are checked at every store into
//! the screen that may show their text, not once per turn of the machine loop: a guest
//! (`tests/guests/screen-text`) that shows READY for a few instructions only is stopped
//! with READY on the screen.

use rx86_tests::guests::{build_elf32_guest, guest_sources_root};
use rx86_tests::rx86_bin::{run_rx86_with_limit, stderr_of};
use std::time::Duration;

#[test]
fn stop_at_text_stops_at_the_store_that_shows_it() {
    let kernel = build_elf32_guest("screen-text", &guest_sources_root().join("screen-text")).expect("build the guest");
    let dir = std::env::temp_dir().join(format!("rx86-screen-text-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (screen, serial) = (dir.join("screen.txt"), dir.join("serial.txt"));
    let serial_arg = format!("file:{}", serial.display());
    let out = run_rx86_with_limit(
        &[
            "run",
            "--kernel",
            kernel.to_str().unwrap(),
            "--debug-exit",
            "--serial",
            &serial_arg,
            "--stop-at",
            "@screen-text: READY",
            "--text-dump",
            screen.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    )
    .expect("rx86 stops");
    let text = std::fs::read_to_string(&screen).unwrap_or_default();
    let console = std::fs::read_to_string(&serial).unwrap_or_default();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(0), "--stop-at ends the run, not the guest's exit: {}", stderr_of(&out));
    assert!(text.contains("screen-text: READY"), "the screen at the stop shows the text:\n{text}");
    assert!(!text.contains("GONE"), "the run stopped before the guest went on:\n{text}");
    assert!(!console.contains("shown"), "nothing after the store that showed the text ran:\n{console}");
}
