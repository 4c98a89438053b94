//! Linux boot benchmark (issue: the software CPU): Debian's stock kernel and the busybox
//! initramfs on rx86's interpreter and JIT tier, beside QEMU TCG running the same files in the same
//! run. Reports time to the kernel's `/init` marker, time to power-off, and the
//! interpreter's guest instructions per second (from `rx86 run --stats`).
//!
//! `cargo bench -p rx86-benches --bench linux_boot [-- --arch amd64|i386]`
//!
//! With `-- --media grub|isolinux|disk|seabios-grub` the same kernel boots through the firmware
//! instead (`seabios-grub`: Debian's SeaBIOS as `--bios` on rx86 and `-bios` on QEMU):
//! rx86's built-in BIOS and QEMU's SeaBIOS booting the same Debian GRUB ISO, ISOLINUX ISO
//! or SYSLINUX MBR disk (`tests/fixtures/make-boot-media.sh`), to the same marker.
//!
//! With `--media grub|isolinux|disk`, Bochs boots the same medium with its own BIOS in the
//! same run, when Debian's `bochs`, `bochs-x`, `bochsbios`, `vgabios` and `xvfb` packages are
//! installed ([`bochs`]). It has no direct bzImage loader, so the direct boot has no Bochs row.
//! Bochs runs at a fixed virtual speed (`ips=`), so rx86 boots the medium a second time at the
//! same speed (`--icount`, [`bochs::RX86_ICOUNT_SHIFT`]), where the guest's timed waits cost
//! both emulators the same instructions; the ratios for both rx86 rows are printed.

#[path = "support/bochs.rs"]
mod bochs;
#[path = "support/cpu_time.rs"]
mod cpu_time;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Run {
    to_init: Option<Duration>,
    to_exit: Duration,
    /// CPU time of the emulator process, start to exit.
    cpu: Duration,
    status: Option<i32>,
    stderr: String,
}

fn run(mut cmd: Command) -> std::io::Result<Run> {
    let cpu_before = cpu_time::children_cpu();
    let start = Instant::now();
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr_pipe = child.stderr.take().expect("piped stderr");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr_pipe.read_to_string(&mut s);
        s
    });
    let mut to_init = None;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if to_init.is_none() && line.contains("RX86-INIT-START") {
            to_init = Some(start.elapsed());
        }
    }
    let status = child.wait()?.code();
    let to_exit = start.elapsed();
    let cpu = cpu_time::children_cpu() - cpu_before;
    Ok(Run { to_init, to_exit, cpu, status, stderr: err_reader.join().unwrap_or_default() })
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.1}", d.as_secs_f64()))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arch = args.iter().position(|a| a == "--arch").and_then(|i| args.get(i + 1)).map_or("amd64", |s| s.as_str());
    let fixture = match arch {
        "i386" => rx86_tests::fixtures::linux_i386(),
        _ => rx86_tests::fixtures::linux_amd64(),
    };
    let fixture = match fixture {
        Ok(f) => f,
        Err(e) => {
            println!("linux_boot: no Debian fixture: {e}");
            return;
        }
    };
    let (k, i) = (fixture.bzimage.to_str().unwrap().to_string(), fixture.initrd.to_str().unwrap().to_string());
    let append = "console=ttyS0 panic=-1";
    let media = args.iter().position(|a| a == "--media").and_then(|i| args.get(i + 1)).cloned();
    // What Bochs boots for the same comparison: (image, is a CD).
    let mut bochs_medium: Option<(std::path::PathBuf, bool)> = None;
    let qemu_bin = if arch == "i386" { "qemu-system-i386" } else { "qemu-system-x86_64" };
    let rx86_bin = rx86_tests::rx86_bin::rx86_binary();
    let mut rx86 = Command::new(&rx86_bin);
    let mut qemu = Command::new(qemu_bin);
    rx86.args(["run", "--accel", "interp", "--no-reboot", "--stats", "--display", "none"]);
    qemu.args(["-accel", "tcg", "-serial", "stdio", "-display", "none", "-monitor", "none", "-no-reboot"]);
    match media.as_deref() {
        None => {
            rx86.args(["-m", "512M", "--kernel", &k, "--initrd", &i, "--append", append]);
            qemu.args(["-m", "512", "-kernel", &k, "-initrd", &i, "-append", append]);
        }
        Some(which) => {
            let boot = match rx86_tests::boot_media::debian_boot_media() {
                Ok(m) => m,
                Err(e) => {
                    println!("linux_boot: no Debian boot media: {e}");
                    return;
                }
            };
            let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
            let (grub, isolinux, disk, seabios) =
                (path(&boot.grub_iso), path(&boot.isolinux_iso), path(&boot.disk_img), path(&boot.seabios));
            bochs_medium = match which {
                "grub" => Some((boot.grub_iso.clone(), true)),
                "isolinux" => Some((boot.isolinux_iso.clone(), true)),
                "disk" => Some((boot.disk_img.clone(), false)),
                _ => None,
            };
            let (rx_args, qemu_args) = match which {
                "grub" => (vec!["--cdrom", &grub, "--boot", "d"], vec!["-cdrom", &grub, "-boot", "d"]),
                "isolinux" => (vec!["--cdrom", &isolinux, "--boot", "d"], vec!["-cdrom", &isolinux, "-boot", "d"]),
                "disk" => (vec!["--hda", &disk, "--boot", "c"], vec!["-hda", &disk, "-boot", "c"]),
                // The same SeaBIOS image on both (QEMU's default firmware is SeaBIOS too).
                "seabios-grub" => (
                    vec!["--bios", &seabios, "--cdrom", &grub, "--boot", "d"],
                    vec!["-bios", &seabios, "-cdrom", &grub, "-boot", "d"],
                ),
                other => {
                    println!("linux_boot: --media {other}: use grub, isolinux, disk or seabios-grub");
                    return;
                }
            };
            rx86.args(["-m", "256M", "--snapshot"]).args(rx_args);
            qemu.args(["-m", "256", "-snapshot"]).args(qemu_args);
        }
    }

    let how = media
        .as_deref()
        .map_or("direct kernel boot, 512 MiB".to_string(), |m| format!("{m} through the BIOS, 256 MiB"));
    println!("linux_boot: Debian {arch} kernel + busybox initramfs, {how}, one run each");
    println!("{:<24} {:>10} {:>10} {:>10} {:>8}", "emulator", "/init s", "exit s", "CPU s", "status");
    let rx_args_all: Vec<std::ffi::OsString> = rx86.get_args().map(|a| a.to_os_string()).collect();
    let rx = run(rx86);
    // The same run with the JIT tier.
    let mut rx86_jit = Command::new(&rx86_bin);
    rx86_jit.args(rx_args_all.iter().map(|a| if a == "interp" { "jit".into() } else { a.clone() }));
    let jit = run(rx86_jit);
    let qm = run(qemu);
    for (name, r) in
        [("rx86 --accel interp", &rx), ("rx86 --accel jit", &jit), (&format!("{qemu_bin} -accel tcg")[..], &qm)]
    {
        match r {
            Ok(r) => println!(
                "{name:<24} {:>10} {:>10.1} {:>10.1} {:>8}",
                secs(r.to_init),
                r.to_exit.as_secs_f64(),
                r.cpu.as_secs_f64(),
                r.status.unwrap_or(-1)
            ),
            Err(e) => println!("{name:<24} cannot run: {e}"),
        }
    }
    for r in [&rx, &jit].into_iter().flatten() {
        for line in r.stderr.lines().filter(|l| l.starts_with("rx86 stats:") || l.starts_with("rx86 jit:")) {
            println!("{line}");
        }
    }
    for (tier, r) in [("interp", &rx), ("jit", &jit)] {
        if let (Ok(r), Ok(q)) = (r, &qm) {
            if let (Some(a), Some(b)) = (r.to_init, q.to_init) {
                println!(
                    "ratio rx86 {tier}/qemu-tcg to /init: {:.1}x; CPU time to exit: {:.1}x",
                    a.as_secs_f64() / b.as_secs_f64(),
                    r.cpu.as_secs_f64() / q.cpu.as_secs_f64()
                );
            }
        }
    }
    match (bochs_medium, bochs::unavailable()) {
        (None, _) => {
            println!("bochs: not measured (no direct bzImage loader; its own BIOS boots --media grub|isolinux|disk)")
        }
        (Some(_), Some(why)) => println!("bochs: not measured ({why})"),
        (Some((medium, cdrom)), None) => {
            // rx86 again at Bochs's virtual CPU speed: the guest's timed waits (GRUB's menu
            // countdown, calibration loops) then cost both the same instructions.
            let mut same_speed = Command::new(rx86_bin);
            same_speed.args(rx_args_all).args(["--icount", &format!("shift={}", bochs::RX86_ICOUNT_SHIFT)]);
            let rx_same = run(same_speed);
            match &rx_same {
                Ok(r) => println!(
                    "{:<24} {:>10} {:>10.1} {:>10.1} {:>8}",
                    format!("rx86 --icount shift={}", bochs::RX86_ICOUNT_SHIFT),
                    secs(r.to_init),
                    r.to_exit.as_secs_f64(),
                    r.cpu.as_secs_f64(),
                    r.status.unwrap_or(-1)
                ),
                Err(e) => println!("rx86 --icount: cannot run: {e}"),
            }
            let cpu_before = cpu_time::children_cpu();
            match bochs::boot(&medium, cdrom, 256, Duration::from_secs(30 * 60)) {
                Ok(b) => {
                    // Bochs and its Xvfb display, start to exit.
                    let cpu = cpu_time::children_cpu() - cpu_before;
                    let status = b.status.map_or("stopped".to_string(), |s| s.to_string());
                    println!(
                        "{:<24} {:>10} {:>10.1} {:>10.1} {:>8}",
                        "bochs (own BIOS)",
                        secs(b.to_init),
                        b.to_exit.as_secs_f64(),
                        cpu.as_secs_f64(),
                        status
                    );
                    for (how, r) in [("default 1 ns", &rx), ("both 8 ns", &rx_same)] {
                        if let (Ok(r), Some(bx)) = (r, b.to_init) {
                            if let Some(a) = r.to_init {
                                println!(
                                    "ratio rx86/bochs ({how} per instruction) to /init: {:.2}x; CPU time to exit: {:.2}x",
                                    a.as_secs_f64() / bx.as_secs_f64(),
                                    r.cpu.as_secs_f64() / cpu.as_secs_f64()
                                );
                            }
                        }
                    }
                }
                Err(e) => println!("bochs: cannot run: {e}"),
            }
        }
    }
}
