//! qcow2 images people keep: `rx86 img` makes and converts them, a guest writes to one
//! (the BIOS boot-sector guest writes its own boot sector to the disk's last sector), and
//! `qemu-img check` accepts the result and reads the write back (when qemu-img is installed);
//! `--snapshot` over qcow2 leaves the file as it was.

use rx86_tests::boot_media::{
    bios_run_args, boot_image, check_boot_sector_console, read_sector, BootSectorDisk, BOOT_SECTOR_PASS_STATUS,
};
use rx86_tests::rx86_bin::{run_rx86_with_limit, rx86_binary, stderr_of, stdout_of};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rx86-qcow2-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `rx86 img ARGS`: exit status and standard output.
fn img(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(rx86_binary()).arg("img").args(args).output().expect("run rx86 img");
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn qemu_img(args: &[&str]) -> Option<std::process::Output> {
    Command::new("qemu-img").args(args).output().ok().filter(|o| o.status.success() || !o.stderr.is_empty())
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Boots the hard-disk boot-sector guest from `disk` with `extra` options; checks its console.
fn boot(disk: &Path, extra: &[&str]) {
    let mut args = vec!["--hda", s(disk), "--boot", "c", "--debug-exit", "-m", "32M"];
    args.extend(extra);
    let argv = bios_run_args("interp", &args);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = run_rx86_with_limit(&argv, LIMIT).expect("the guest ends");
    let console = stdout_of(&out);
    if let Err(what) = check_boot_sector_console(&console, BootSectorDisk::HardDisk) {
        panic!("{what}:\n{console}\n{}", stderr_of(&out));
    }
    assert_eq!(out.status.code(), Some(BOOT_SECTOR_PASS_STATUS), "{}", stderr_of(&out));
}

#[test]
fn a_guest_writes_a_qcow2_disk_that_qemu_img_checks_and_reads() {
    let dir = scratch("guest");
    let raw = boot_image(BootSectorDisk::HardDisk).expect("build the boot-sector disk");
    let qcow2 = dir.join("disk.qcow2");
    // rx86 img convert makes the qcow2 copy; check and info describe it.
    assert_eq!(img(&["convert", "-O", "qcow2", s(&raw), s(&qcow2)]).0, Some(0));
    let (status, text) = img(&["check", s(&qcow2)]);
    assert_eq!(status, Some(0), "{text}");
    assert!(text.contains("No errors were found on the image."), "{text}");
    let (status, text) = img(&["info", s(&qcow2)]);
    assert_eq!(status, Some(0), "{text}");
    assert!(text.contains("file format: qcow2") && text.contains("virtual size: 2 MiB (2097152 bytes)"), "{text}");

    // --snapshot: the guest's write stays in memory.
    let before = std::fs::read(&qcow2).unwrap();
    boot(&qcow2, &["--snapshot"]);
    assert!(std::fs::read(&qcow2).unwrap() == before, "--snapshot leaves the qcow2 file as it was");

    // Without: the write reaches the image (a new cluster for the last sector).
    boot(&qcow2, &[]);
    let (status, text) = img(&["check", s(&qcow2)]);
    assert_eq!(status, Some(0), "{text}");
    let back = dir.join("back.raw");
    assert_eq!(img(&["convert", "-O", "raw", s(&qcow2), s(&back)]).0, Some(0));
    let last = BootSectorDisk::HardDisk.written_lba().unwrap();
    assert_eq!(read_sector(&back, last).unwrap(), read_sector(&raw, 0).unwrap(), "the guest's write");
    assert_eq!(read_sector(&back, 1).unwrap(), read_sector(&raw, 1).unwrap(), "the rest as it was");

    // QEMU's tools agree.
    match qemu_img(&["check", s(&qcow2)]) {
        None => println!("qemu-img not installed: its check is skipped"),
        Some(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success() && text.contains("No errors were found"), "{text}");
            let by_qemu = dir.join("by-qemu.raw");
            let out = qemu_img(&["convert", "-O", "raw", s(&qcow2), s(&by_qemu)]).unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert!(std::fs::read(&by_qemu).unwrap() == std::fs::read(&back).unwrap(), "qemu-img reads the same");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn img_create_info_check_and_bad_input() {
    let dir = scratch("img");
    let base = dir.join("base.qcow2");
    let (status, text) = img(&["create", "-f", "qcow2", "-o", "cluster_size=4K", s(&base), "64M"]);
    assert_eq!(status, Some(0), "{text}");
    let overlay = dir.join("overlay.qcow2");
    let (status, text) = img(&["create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", s(&overlay)]);
    assert_eq!(status, Some(0), "{text}");
    let (_, text) = img(&["info", s(&overlay)]);
    for want in ["virtual size: 64 MiB (67108864 bytes)", "cluster_size: 65536", "backing file: base.qcow2"] {
        assert!(text.contains(want), "{want}: {text}");
    }
    let (_, text) = img(&["info", s(&base)]);
    assert!(text.contains("cluster_size: 4096"), "{text}");
    if let Some(out) = qemu_img(&["info", s(&overlay)]) {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("backing file format: qcow2") && text.contains("virtual size: 64 MiB"), "{text}");
        let out = qemu_img(&["check", s(&overlay)]).unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }
    // A leaked cluster: exit status 3, as qemu-img's.
    let mut bytes = std::fs::read(&base).unwrap();
    let table = u64::from_be_bytes(bytes[48..56].try_into().unwrap()) as usize;
    let block = u64::from_be_bytes(bytes[table..table + 8].try_into().unwrap()) as usize;
    let clusters = bytes.len() / 4096;
    bytes[block + clusters * 2..block + clusters * 2 + 2].copy_from_slice(&1u16.to_be_bytes());
    bytes.resize(bytes.len() + 4096, 0);
    std::fs::write(&base, &bytes).unwrap();
    let (status, text) = img(&["check", s(&base)]);
    assert_eq!(status, Some(3), "{text}");
    assert!(text.contains("1 leaked clusters were found"), "{text}");
    // Bad input: clear messages, status 1, nothing written.
    for (args, want) in [
        (vec!["create", s(&base), "1G"], "File exists"),
        (vec!["create", "-o", "cluster_size=3000", s(&dir.join("x.qcow2")), "1G"], "power of two"),
        (vec!["create", s(&dir.join("y.qcow2"))], "give the image's size"),
        (vec!["create", "-f", "raw", "-b", "base.qcow2", s(&dir.join("z.img"))], "no backing file"),
        (vec!["info", s(&dir.join("missing.qcow2"))], "missing.qcow2"),
    ] {
        let (status, text) = img(&args);
        assert_eq!(status, Some(1), "{args:?}: {text}");
        assert!(text.contains(want), "{args:?}: {text}");
    }
    assert!(!dir.join("x.qcow2").exists() && !dir.join("z.img").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A damaged image given to `rx86 run` is refused with one message and status 1, before the
/// guest runs, and the file is left byte for byte as it was.
#[test]
fn corrupt_images_and_backing_loops_are_refused_and_left_untouched() {
    let dir = scratch("corrupt");
    let run = |disk: &Path| {
        let out = run_rx86_with_limit(&["run", "--hda", s(disk), "--serial", "none", "--stop-at", "1ms"], LIMIT)
            .expect("rx86 ends");
        (out.status.code(), stderr_of(&out))
    };
    let good = dir.join("good.qcow2");
    assert_eq!(img(&["create", "-f", "qcow2", s(&good), "16M"]).0, Some(0));
    let pristine = std::fs::read(&good).unwrap();
    let patched = |name: &str, at: usize, value: u64| {
        let path = dir.join(name);
        let mut bytes = pristine.clone();
        bytes[at..at + 8].copy_from_slice(&value.to_be_bytes());
        std::fs::write(&path, &bytes).unwrap();
        (path, bytes)
    };
    // The refcount table, then the L1 table, pointing past the end of the file.
    for (name, at, want) in [("refcount.qcow2", 48, "refcount table"), ("l1.qcow2", 40, "L1 table")] {
        let (path, bytes) = patched(name, at, 1 << 40);
        let (status, err) = run(&path);
        assert_eq!(status, Some(1), "{name}: {err}");
        assert!(err.contains(want) && !err.contains("panicked"), "{name}: {err}");
        assert!(std::fs::read(&path).unwrap() == bytes, "{name} is not modified");
    }
    // a.qcow2 -> b.qcow2 -> a.qcow2.
    // Made as a -> x and b -> a, then a's backing file name "x.qcow2" becomes "b.qcow2".
    let (a, b, x) = (dir.join("a.qcow2"), dir.join("b.qcow2"), dir.join("x.qcow2"));
    assert_eq!(img(&["create", "-f", "qcow2", s(&x), "16M"]).0, Some(0));
    assert_eq!(img(&["create", "-f", "qcow2", "-b", "x.qcow2", "-F", "qcow2", s(&a)]).0, Some(0));
    assert_eq!(img(&["create", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", s(&b)]).0, Some(0));
    let mut bytes = std::fs::read(&a).unwrap();
    let name_at = u64::from_be_bytes(bytes[8..16].try_into().unwrap()) as usize;
    assert_eq!(&bytes[name_at..name_at + 7], b"x.qcow2");
    bytes[name_at] = b'b';
    std::fs::write(&a, &bytes).unwrap();
    let (before_a, before_b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let (status, err) = run(&a);
    assert_eq!(status, Some(1), "{err}");
    assert!(err.contains("backing") && !err.contains("panicked"), "{err}");
    assert!(std::fs::read(&a).unwrap() == before_a && std::fs::read(&b).unwrap() == before_b);
    std::fs::remove_dir_all(&dir).unwrap();
}
