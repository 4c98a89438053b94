//! The headless display: `--screenshot`, `--text-dump` and `--keys` on guests booted through
//! rx86's BIOS.
//!
//! - The floppy boot-sector guest (`rx86_tests::boot_media`) prints through INT 10h; its end
//!   screen (BIOS banner, then the guest's lines) must show in the text dump and in a 720x400
//!   PNG (mode 03h: 80x25 cells of 9x16 dots) that matches `tests/golden/floppy-boot.png`
//!   pixel for pixel: the run is deterministic on the virtual clock.
//! - Debian's GRUB ISO (`rx86_tests::boot_media`): its menu on the VGA screen, captured with
//!   `--stop-at @TEXT` and compared with `tests/golden/grub-menu.png`; and `--keys` choosing its
//!   second entry, whose kernel then starts with that entry's command line.
//! - A keyboard echo guest (a boot sector assembled here with iced-x86) types back what INT 16h
//!   returns until Enter; `--keys` types into it, and the text dump must show the typed text.
//!
//! Regenerating the golden image (after a deliberate change to the BIOS, the font or the
//! renderer): `RX86_UPDATE_GOLDEN=1 cargo test -p rx86-tests --test display`, then look at
//! the PNG before committing it.

use iced_x86::code_asm::{ah, al, ax, bx, ds, dx, es, sp, ss, CodeAssembler};
use rx86_tests::boot_media::{
    bios_run_args, boot_image, debian_boot_media, run_with_keys_until, BootSectorDisk, BOOT_SECTOR_PASS,
    BOOT_SECTOR_PASS_STATUS, GRUB_ENTRY_1, GRUB_ENTRY_2,
};
use rx86_tests::golden::{compare_with_golden, decode_png};
use rx86_tests::guests::guest_output_dir;
use rx86_tests::rx86_bin::{run_rx86_with_limit, rx86_binary, stderr_of, stdout_of};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// A BIOS boot of a boot sector takes a few seconds of host time on the interpreter.
const LIMIT: Duration = Duration::from_secs(120);
/// Mode 03h: 80 columns of 9 dots, 25 rows of 16 scan lines.
const TEXT_MODE_SIZE: (u32, u32) = (720, 400);
/// Exit status of the echo guest when it saw Enter (isa-debug-exit 0 → (0 << 1) | 1).
const ECHO_PASS_STATUS: i32 = 1;

/// A fresh scratch folder for one test's output files.
fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rx86-display-{test}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(args: &[String]) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_rx86_with_limit(&args, LIMIT).unwrap_or_else(|| panic!("rx86 {} did not finish in {LIMIT:?}", args.join(" ")))
}

fn context(out: &Output) -> String {
    format!("exit {:?}\n--- serial\n{}\n--- stderr\n{}", out.status, stdout_of(out), stderr_of(out))
}

/// Boots the floppy boot-sector guest with a screenshot and a text dump in `dir`.
fn floppy_boot_screen(dir: &Path) -> (Output, PathBuf, String) {
    let image = boot_image(BootSectorDisk::Floppy).expect("build the boot-sector image");
    let (png, txt) = (dir.join("screen.png"), dir.join("screen.txt"));
    let extra = [
        "--fda",
        image.to_str().unwrap(),
        "--snapshot",
        "--boot",
        "a",
        "--debug-exit",
        "-m",
        "32M",
        "--screenshot",
        png.to_str().unwrap(),
        "--text-dump",
        txt.to_str().unwrap(),
    ];
    let out = run(&bios_run_args("interp", &extra));
    let text = fs::read_to_string(&txt).unwrap_or_else(|e| panic!("text dump: {e}\n{}", context(&out)));
    (out, png, text)
}

#[test]
fn floppy_boot_screen_shows_the_bios_banner_and_the_guest_text() {
    let dir = scratch_dir("floppy");
    let (out, png, text) = floppy_boot_screen(&dir);
    assert_eq!(out.status.code(), Some(BOOT_SECTOR_PASS_STATUS), "{}", context(&out));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 25, "mode 03h has 25 rows:\n{text}");
    assert_eq!(lines[0], "rx86 BIOS", "the banner is the first row:\n{text}");
    for expected in ["RX86-BOOT-FLOPPY", "read: ok", "check: ok", "write: ok", "verify: ok", BOOT_SECTOR_PASS] {
        assert!(lines.contains(&expected), "no row '{expected}' on the screen:\n{text}");
    }
    let (width, height, rgb) = decode_png(&png);
    assert_eq!((width, height), TEXT_MODE_SIZE);
    assert!(rgb.iter().any(|&c| c != 0), "the screenshot shows text, not a black screen");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn floppy_boot_screenshot_matches_the_golden_image() {
    let dir = scratch_dir("golden");
    let (out, png, _) = floppy_boot_screen(&dir);
    assert_eq!(out.status.code(), Some(BOOT_SECTOR_PASS_STATUS), "{}", context(&out));
    compare_with_golden(&png, "floppy-boot.png");
    fs::remove_dir_all(&dir).unwrap();
}

/// A run that cannot write its screenshot says so and fails, after the guest ran.
#[test]
fn an_unwritable_screenshot_path_is_a_clear_error() {
    let dir = scratch_dir("unwritable");
    let image = boot_image(BootSectorDisk::Floppy).expect("build the boot-sector image");
    let missing = dir.join("no-such-dir").join("screen.png");
    let extra = [
        "--fda",
        image.to_str().unwrap(),
        "--snapshot",
        "--debug-exit",
        "-m",
        "32M",
        "--screenshot",
        missing.to_str().unwrap(),
    ];
    let out = run(&bios_run_args("interp", &extra));
    let stderr = stderr_of(&out);
    assert!(stderr.contains(&format!("rx86: cannot write screenshot '{}'", missing.display())), "{}", context(&out));
    assert!(!stderr.contains("panicked"), "{}", context(&out));
    assert_eq!(out.status.code(), Some(4), "{}", context(&out));
    fs::remove_dir_all(&dir).unwrap();
}

/// A boot sector that echoes every key INT 16h returns through INT 10h teletype until Enter,
/// then writes 0 to isa-debug-exit (port 0x501).
fn echo_guest_image() -> PathBuf {
    let mut a = CodeAssembler::new(16).unwrap();
    let mut next_key = a.create_label();
    let mut done = a.create_label();
    a.xor(ax, ax).unwrap();
    a.mov(ds, ax).unwrap();
    a.mov(es, ax).unwrap();
    a.mov(ss, ax).unwrap();
    a.mov(sp, 0x7c00u32).unwrap();
    a.sti().unwrap();
    a.set_label(&mut next_key).unwrap();
    a.mov(ah, 0u32).unwrap();
    a.int(0x16).unwrap();
    a.cmp(al, 0x0du32).unwrap();
    a.je(done).unwrap();
    a.mov(ah, 0x0eu32).unwrap();
    a.mov(bx, 0x0007u32).unwrap();
    a.int(0x10).unwrap();
    a.jmp(next_key).unwrap();
    a.set_label(&mut done).unwrap();
    a.mov(dx, 0x501u32).unwrap();
    a.xor(ax, ax).unwrap();
    a.out(dx, ax).unwrap();
    a.cli().unwrap();
    a.hlt().unwrap();
    let mut sector = a.assemble(0x7c00).unwrap();
    assert!(sector.len() <= 510);
    sector.resize(510, 0);
    sector.extend_from_slice(&[0x55, 0xaa]);
    sector.resize(1_474_560, 0);
    let dir = guest_output_dir();
    fs::create_dir_all(&dir).unwrap();
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("echo-keys-{}-{n}.img", std::process::id()));
    fs::write(&path, &sector).unwrap();
    path
}

/// Runs the echo guest with `keys` typed (under `wrapper`, e.g. `xvfb-run`, when given) on
/// `display`, and returns the exit status and the text screen at the end.
fn echo_run(test: &str, display: &str, keys: &str, wrapper: &[&str]) -> (Option<i32>, String, Output) {
    let dir = scratch_dir(test);
    let image = echo_guest_image();
    let txt = dir.join("screen.txt");
    let mut args: Vec<String> = wrapper.iter().map(|s| s.to_string()).collect();
    if !wrapper.is_empty() {
        args.push(rx86_binary().to_str().unwrap().to_string());
    }
    let mut run_args = bios_run_args("interp", &["--fda", image.to_str().unwrap(), "--debug-exit", "-m", "32M"]);
    let display_at = run_args.iter().position(|a| a == "--display").unwrap() + 1;
    run_args[display_at] = display.to_string();
    run_args.extend(["--keys", keys, "--text-dump", txt.to_str().unwrap()].map(String::from));
    args.extend(run_args);
    let out = if wrapper.is_empty() {
        run(&args)
    } else {
        let out = Command::new(&args[0]).args(&args[1..]).stdin(Stdio::null()).output().expect("run xvfb-run");
        assert!(out.status.code().is_some(), "{}", context(&out));
        out
    };
    fs::remove_file(&image).unwrap();
    let text = fs::read_to_string(&txt).unwrap_or_else(|e| panic!("text dump: {e}\n{}", context(&out)));
    fs::remove_dir_all(&dir).unwrap();
    (out.status.code(), text, out)
}

/// Shifted letters, symbols, an escaped comma and a named key, typed after the BIOS has booted
/// the guest; Enter ends it.
const ECHO_KEYS: &str = "1s:Hi\\, rx86!,space,a-Z_;1500ms:enter";
/// What the echo guest shows for [`ECHO_KEYS`].
const ECHO_TEXT: &str = "Hi, rx86! a-Z_";

#[test]
fn scripted_keys_reach_the_guest_through_the_8042_and_the_bios() {
    let (status, text, out) = echo_run("keys", "none", ECHO_KEYS, &[]);
    assert_eq!(status, Some(ECHO_PASS_STATUS), "the guest saw Enter\n{text}\n{}", context(&out));
    assert!(text.lines().any(|l| l == ECHO_TEXT), "typed text on the screen:\n{text}");
}

/// A key held down repeats at the keyboard's typematic rate. The BIOS leaves the power-on
/// setting (IBM: 500 ms delay, then a make code every (8 + 3) x 2 x 4.17 ms = 91.74 ms), so
/// `x` held for one second gives the press and the repeats at 500 ms + k x 91.74 ms before the
/// release: k = 0..=5.
#[test]
fn a_held_key_repeats_at_the_typematic_rate() {
    let (status, text, out) = echo_run("typematic", "none", "1s:x*1s;2500ms:enter", &[]);
    assert_eq!(status, Some(ECHO_PASS_STATUS), "the guest saw Enter\n{text}\n{}", context(&out));
    let period_ms = 11.0 * 2.0 * 4.17;
    let repeats = (0..).take_while(|k| 500.0 + f64::from(*k) * period_ms < 1000.0).count();
    let expected = "x".repeat(1 + repeats);
    assert!(text.lines().any(|l| l == expected), "{} x on the screen:\n{text}", 1 + repeats);
}

/// `--display window` runs the same machine loop in a window: under a virtual X server the
/// scripted keys still reach the guest and the run ends with it.
#[test]
fn window_display_runs_the_guest_under_xvfb() {
    if Command::new("xvfb-run").arg("--help").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
        println!("SKIP: xvfb-run is not installed (apt-get install xvfb)");
        return;
    }
    let (status, text, out) = echo_run("window", "window", ECHO_KEYS, &["xvfb-run", "-a"]);
    assert_eq!(status, Some(ECHO_PASS_STATUS), "the guest saw Enter\n{text}\n{}", context(&out));
    assert!(text.lines().any(|l| l == ECHO_TEXT), "typed text on the screen:\n{text}");
}

/// Without an X display, `--display window` is a clear error, not a panic.
#[test]
fn window_display_without_an_x_server_is_a_clear_error() {
    let image = echo_guest_image();
    let mut args = bios_run_args("interp", &["--fda", image.to_str().unwrap(), "-m", "32M"]);
    let display_at = args.iter().position(|a| a == "--display").unwrap() + 1;
    args[display_at] = "window".into();
    let out = Command::new(rx86_binary()).args(&args).env_remove("DISPLAY").stdin(Stdio::null()).output().unwrap();
    fs::remove_file(&image).unwrap();
    let stderr = stderr_of(&out);
    assert!(stderr.contains("rx86: display: cannot open a 720x400 window"), "{}", context(&out));
    assert!(!stderr.contains("panicked"), "{}", context(&out));
    assert_eq!(out.status.code(), Some(1), "{}", context(&out));
}

/// Booting Linux takes minutes of host time on a software tier.
const GRUB_LINUX_LIMIT: Duration = Duration::from_secs(1500);
/// GRUB reaches its menu in well under a minute on a software tier (the GRUB and Linux
/// tests run on the JIT tier; the boot-sector and echo tests on the interpreter).
const GRUB_MENU_LIMIT: Duration = Duration::from_secs(600);

fn grub_iso_or_skip() -> Option<PathBuf> {
    match debian_boot_media() {
        Ok(media) => Some(media.grub_iso),
        Err(why) => {
            println!("SKIP: Debian boot media unavailable: {why}");
            None
        }
    }
}

fn run_limited(args: &[String], limit: Duration) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_rx86_with_limit(&args, limit).unwrap_or_else(|| panic!("rx86 {} did not finish in {limit:?}", args.join(" ")))
}

/// Boots `iso` (GRUB) with `firmware` options (none for the built-in BIOS) until GRUB's countdown
/// line shows (`--stop-at @TEXT`), checks that both menu entries are in the text dump, and
/// returns the run and the screenshot (in `dir`).
fn grub_menu_on_screen(dir: &Path, iso: &Path, firmware: &[&str]) -> (Output, PathBuf) {
    let (png, txt) = (dir.join("menu.png"), dir.join("menu.txt"));
    let (iso, png_arg, txt_arg) = (iso.to_str().unwrap(), png.to_str().unwrap(), txt.to_str().unwrap());
    let mut extra = vec!["-m", "256M", "--cdrom", iso, "--boot", "d", "--stop-at", "@automatically"];
    extra.extend_from_slice(&["--screenshot", png_arg, "--text-dump", txt_arg]);
    extra.extend_from_slice(firmware);
    let out = run_limited(&bios_run_args("jit", &extra), GRUB_MENU_LIMIT);
    let text = fs::read_to_string(&txt).unwrap_or_else(|e| panic!("text dump: {e}\n{}", context(&out)));
    assert_eq!(out.status.code(), Some(0), "stopped at the menu\n{text}\n{}", context(&out));
    for entry in [GRUB_ENTRY_1, GRUB_ENTRY_2] {
        assert!(text.contains(entry), "menu entry '{entry}' on the screen:\n{text}");
    }
    (out, png)
}

/// GRUB's menu on the VGA screen, captured at the store that completes "automatically" on its
/// countdown line (text conditions are checked at every screen store, so the rest of the line,
/// " in Ns.", is not drawn yet): both entries in the text dump, and the screenshot equal to
/// `tests/golden/grub-menu.png`.
#[test]
fn grub_menu_shows_on_the_vga_screen() {
    let Some(iso) = grub_iso_or_skip() else { return };
    let dir = scratch_dir("grub-menu");
    let (_, png) = grub_menu_on_screen(&dir, &iso, &[]);
    compare_with_golden(&png, "grub-menu.png");
    fs::remove_dir_all(&dir).unwrap();
}

/// Under SeaBIOS (`--bios`), the VGA offers SeaBIOS's own VGA BIOS (`vgabios-stdvga.bin`, found
/// beside the firmware image) as its PCI expansion ROM; SeaBIOS runs it, and GRUB's menu reaches
/// the VGA screen through its INT 10h (without it the screen stays empty).
#[test]
fn grub_menu_shows_on_the_vga_screen_under_seabios_with_its_vga_bios() {
    let Some(iso) = grub_iso_or_skip() else { return };
    let seabios = debian_boot_media().expect("grub_iso_or_skip had the media").seabios;
    let dir = scratch_dir("seabios-grub-menu");
    let (out, _) = grub_menu_on_screen(&dir, &iso, &["--bios", seabios.to_str().unwrap()]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("Start SeaVGABIOS"), "SeaBIOS ran the VGA BIOS:\n{}", context(&out));
    assert!(log.contains("VBE DISPI: lfb_addr=fd000000"), "it found the Bochs VBE LFB:\n{}", context(&out));
    fs::remove_dir_all(&dir).unwrap();
}

/// Scripted keys through the PS/2 keyboard pick GRUB's second entry (Down, Enter) once the menu
/// shows; the run stops when the kernel prints that entry's command line on the serial console
/// (the full Linux boot from GRUB is `bios_boot`'s test).
#[test]
fn grub_second_entry_is_selected_by_scripted_keys() {
    let Some(iso) = grub_iso_or_skip() else { return };
    let extra = ["-m", "256M", "--cdrom", iso.to_str().unwrap(), "--boot", "d", "--keys", "@automatically:down,enter"];
    let args = bios_run_args("jit", &extra);
    let run = run_with_keys_until(
        Command::new(rx86_binary()).args(&args),
        "",
        b"",
        Some("rx86.entry=grub-"),
        GRUB_LINUX_LIMIT,
    )
    .expect("spawn rx86");
    let context = format!("exit {:?}\n--- serial\n{}\n--- stderr\n{}", run.status, run.stdout, run.stderr);
    let kernel = run.stdout.find("Command line: ").map(|at| &run.stdout[at..]).unwrap_or_else(|| panic!("{context}"));
    assert!(kernel.lines().next().unwrap_or("").contains("rx86.entry=grub-2"), "{context}");
}

/// Scripted keys open GRUB's command line (`c` at the menu) and type `halt`, which powers the
/// machine off through ACPI; the final screen shows the command.
#[test]
fn grub_command_line_takes_scripted_keys_and_halts() {
    let Some(iso) = grub_iso_or_skip() else { return };
    let dir = scratch_dir("grub-halt");
    let txt = dir.join("halt.txt");
    let extra = [
        "-m",
        "256M",
        "--cdrom",
        iso.to_str().unwrap(),
        "--boot",
        "d",
        "--keys",
        "@automatically:c;@grub>:halt\\n",
        "--text-dump",
        txt.to_str().unwrap(),
    ];
    let out = run_limited(&bios_run_args("jit", &extra), GRUB_MENU_LIMIT);
    let text = fs::read_to_string(&txt).unwrap_or_else(|e| panic!("text dump: {e}\n{}", context(&out)));
    assert_eq!(out.status.code(), Some(0), "GRUB's halt powers off\n{text}\n{}", context(&out));
    assert!(text.lines().any(|l| l == "grub> halt"), "the typed command on the screen:\n{text}");
    fs::remove_dir_all(&dir).unwrap();
}

/// The test initramfs's `/init` replaced by one that starts a busybox shell on the console.
const SHELL_INIT: &str = "#!/bin/sh
/bin/busybox mkdir -p /proc /sys /dev
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
/bin/busybox --install -s
echo RX86-SHELL-READY
exec /bin/sh
";

/// A scratch folder named after `test` and the `rx86 run` options that boot Debian's amd64
/// kernel in 256 MiB with its initramfs, `init` as `/init` (and the DRM modules' cpio when
/// `drm` is set); `None` (after printing why) when the fixture cannot be had.
fn linux_with_init(test: &str, init: &str, drm: bool) -> Option<(PathBuf, Vec<String>)> {
    let fixture = match rx86_tests::fixtures::linux_amd64() {
        Ok(f) => f,
        Err(why) => {
            println!("SKIP: Linux fixture unavailable: {why}");
            return None;
        }
    };
    let dir = scratch_dir(test);
    let initrd = dir.join("initrd.cpio.gz");
    let mut bytes = fs::read(&fixture.initrd).unwrap();
    if drm {
        bytes.extend(fs::read(&fixture.drm_modules).unwrap());
    }
    rx86_tests::cpio::append_archive(&mut bytes, &rx86_tests::cpio::init_override(init));
    fs::write(&initrd, bytes).unwrap();
    let (kernel, initrd) = (fixture.bzimage.to_str().unwrap(), initrd.to_str().unwrap());
    let args = ["-m", "256M", "--kernel", kernel, "--initrd", initrd].map(String::from).to_vec();
    Some((dir, args))
}

/// Linux's VGA text console takes typed commands: a busybox shell on `console=tty0` runs what
/// `--keys` types on the PS/2 keyboard (through the kernel's i8042 and atkbd drivers) and shows
/// its output on the screen, then `poweroff -f` ends the run.
#[test]
fn typed_commands_reach_a_busybox_shell_on_the_vga_console() {
    let Some((dir, mut extra)) = linux_with_init("shell", SHELL_INIT, false) else { return };
    let (png, txt) = (dir.join("shell.png"), dir.join("shell.txt"));
    extra.extend(
        [
            "--append",
            "console=tty0 panic=-1",
            "--keys",
            "@RX86-SHELL-READY:echo typed-$((6*7)) on tty$((0))\\n;@typed-42 on tty0:poweroff -f\\n",
            "--screenshot",
            png.to_str().unwrap(),
            "--text-dump",
            txt.to_str().unwrap(),
        ]
        .map(String::from),
    );
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let out = run_limited(&bios_run_args("jit", &extra), GRUB_LINUX_LIMIT);
    let text = fs::read_to_string(&txt).unwrap_or_else(|e| panic!("text dump: {e}\n{}", context(&out)));
    assert_eq!(out.status.code(), Some(0), "poweroff -f ends the run\n{text}\n{}", context(&out));
    assert!(text.lines().any(|l| l == "typed-42 on tty0"), "the command's output on the VGA console:\n{text}");
    let (width, height, _) = decode_png(&png);
    assert_eq!((width, height), TEXT_MODE_SIZE);
    fs::remove_dir_all(&dir).unwrap();
}

/// The test initramfs's `/init` replaced by one that loads the bochs DRM driver (from the
/// appended `drm-modules` cpio), waits for its framebuffer, reports it on the serial port,
/// writes [`FBCON_MARKER`] to the console (tty0) and powers off.
const FBCON_INIT: &str = "#!/bin/sh
/bin/busybox mkdir -p /proc /sys /dev
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
/bin/busybox --install -s
for m in $(cat /lib/modules/drm/order); do insmod /lib/modules/drm/$m.ko || echo RX86-FBCON-INSMOD-FAILED $m >/dev/ttyS0; done
n=0
while [ ! -e /dev/fb0 ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
echo RX86-FBCON-FB: $(cat /sys/class/graphics/fb0/name /sys/class/graphics/fb0/virtual_size) >/dev/ttyS0
echo; echo 'RX86-FBCON 0123456789 abcabc 9876543210' >/dev/tty0
sleep 1
poweroff -f
";
/// What the init writes to the framebuffer console: a pattern of repeated and distinct
/// characters and spaces that no other line of boot messages has.
const FBCON_MARKER: &str = "RX86-FBCON 0123456789 abcabc 9876543210";
/// The mode Linux's bochs driver sets by default (module parameters `defx`, `defy`).
const FBCON_SIZE: (u32, u32) = (1024, 768);

/// Debian's kernel with the Bochs VBE device: its bochs DRM driver takes the PCI VGA's linear
/// framebuffer, and the framebuffer console draws the boot messages in graphics mode. The
/// screenshot is at the driver's resolution, and the init's line is found in it, cut into the
/// console's 8x16 cells, by the pattern of its characters (Linux's font is not rx86's).
#[test]
fn linux_framebuffer_console_draws_on_the_bochs_vbe_device() {
    let Some((dir, mut extra)) = linux_with_init("fbcon", FBCON_INIT, true) else { return };
    let png = dir.join("fbcon.png");
    extra.extend(
        ["--append", "console=ttyS0 console=tty0 panic=-1", "--screenshot", png.to_str().unwrap()].map(String::from),
    );
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let out = run_limited(&bios_run_args("interp", &extra), GRUB_LINUX_LIMIT);
    assert_eq!(out.status.code(), Some(0), "poweroff -f ends the run\n{}", context(&out));
    let serial = String::from_utf8_lossy(&out.stdout);
    assert!(!serial.contains("RX86-FBCON-INSMOD-FAILED"), "the DRM modules load\n{}", context(&out));
    assert!(serial.contains("RX86-FBCON-FB: bochs-drmdrmfb"), "bochs-drm registered fb0\n{}", context(&out));
    let (width, height, rgb) = decode_png(&png);
    assert_eq!((width, height), FBCON_SIZE, "the screenshot is the driver's graphics mode");
    let grid = rx86_tests::text_cells::CellGrid::new(width as usize, height as usize, &rgb, 8, 16);
    assert!(grid.find(FBCON_MARKER).is_some(), "the init's line is drawn on the framebuffer console");
    assert!(grid.text_rows() >= 20, "boot messages fill the console: {} rows of text", grid.text_rows());
    fs::remove_dir_all(&dir).unwrap();
}
