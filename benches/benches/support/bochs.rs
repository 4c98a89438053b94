//! Bochs (Debian's `bochs`, `bochsbios`, `vgabios` and `bochs-x` packages, its X display under
//! `xvfb-run`) booting the same boot media as rx86's built-in BIOS, with its own BIOS, timed to
//! the same serial markers.
//!
//! Debian builds Bochs with its internal debugger, which stops before the first instruction;
//! a debugger command file (`-rc`) holding `c` lets it run. COM1 goes to a file, which is
//! polled for the `/init` marker.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Bochs's BIOS and VGA BIOS as Debian installs them.
const ROM_IMAGE: &str = "/usr/share/bochs/BIOS-bochs-latest";
const VGA_ROM_IMAGE: &str = "/usr/share/vgabios/vgabios.bin";

/// One Bochs boot.
pub struct BochsRun {
    /// From start to the `/init` marker on COM1.
    pub to_init: Option<Duration>,
    /// From start to Bochs's exit (or to the limit).
    pub to_exit: Duration,
    /// Exit status (`None` when it was stopped at the limit).
    pub status: Option<i32>,
}

/// Why Bochs cannot run here, or `None`.
pub fn unavailable() -> Option<String> {
    let on_path = |tool: &str| Command::new("sh").args(["-c", &format!("command -v {tool}")]).output();
    for (tool, package) in [("bochs", "bochs bochs-x"), ("xvfb-run", "xvfb")] {
        if !on_path(tool).map(|o| o.status.success()).unwrap_or(false) {
            return Some(format!("{tool} is not installed (apt-get install {package})"));
        }
    }
    [ROM_IMAGE, VGA_ROM_IMAGE]
        .iter()
        .find(|f| !Path::new(f).is_file())
        .map(|f| format!("{f} is missing (apt-get install bochsbios vgabios)"))
}

/// Bochs's virtual CPU speed: with `clock: sync=none` its guest time advances 1/IPS s per
/// instruction. 125 MIPS is 8 ns per instruction, rx86's `--icount shift=3`
/// ([`RX86_ICOUNT_SHIFT`]), so both spend the same instructions in the guest's timed waits.
pub const IPS: u64 = 125_000_000;

/// rx86's `--icount` shift at Bochs's [`IPS`]: 2^3 ns per instruction.
pub const RX86_ICOUNT_SHIFT: u32 = 3;

/// The configuration for `medium` (a CD image when `cdrom`, else a hard disk image), `megs` MiB of
/// RAM, COM1 into `serial`.
fn bochsrc(medium: &Path, cdrom: bool, megs: u32, serial: &Path, log: &Path) -> String {
    let drive = if cdrom {
        format!("ata1-master: type=cdrom, path=\"{}\", status=inserted\nboot: cdrom\n", medium.display())
    } else {
        format!("ata0-master: type=disk, path=\"{}\", mode=flat\nboot: disk\n", medium.display())
    };
    format!(
        "megs: {megs}\n\
         cpu: model=corei7_sandy_bridge_2600k, ips={IPS}\n\
         romimage: file={ROM_IMAGE}\n\
         vgaromimage: file={VGA_ROM_IMAGE}\n\
         pci: enabled=1, chipset=i440fx\n\
         ata0: enabled=1, ioaddr1=0x1f0, ioaddr2=0x3f0, irq=14\n\
         ata1: enabled=1, ioaddr1=0x170, ioaddr2=0x370, irq=15\n\
         {drive}\
         com1: enabled=1, mode=file, dev={}\n\
         display_library: x\n\
         log: {}\n\
         panic: action=fatal\n\
         error: action=report\n\
         info: action=ignore\n\
         clock: sync=none, time0=local\n",
        serial.display(),
        log.display()
    )
}

/// Boots `medium` and times it; a hard disk image is copied first, so the original is not
/// written. Bochs is stopped after `limit`.
pub fn boot(medium: &Path, cdrom: bool, megs: u32, limit: Duration) -> std::io::Result<BochsRun> {
    let dir = std::env::temp_dir().join(format!("rx86-bench-bochs-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let medium: PathBuf = if cdrom {
        medium.to_path_buf()
    } else {
        let copy = dir.join("disk.img");
        std::fs::copy(medium, &copy)?;
        copy
    };
    let (serial, config, commands) = (dir.join("com1.txt"), dir.join("bochsrc"), dir.join("continue.rc"));
    std::fs::write(&config, bochsrc(&medium, cdrom, megs, &serial, &dir.join("bochs.log")))?;
    std::fs::write(&commands, "c\n")?;
    let start = Instant::now();
    let mut child = Command::new("xvfb-run")
        .args(["-a", "bochs", "-q", "-f"])
        .arg(&config)
        .arg("-rc")
        .arg(&commands)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    let mut to_init = None;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status.code();
        }
        if to_init.is_none() && std::fs::read(&serial).is_ok_and(|s| s.windows(15).any(|w| w == b"RX86-INIT-START")) {
            to_init = Some(start.elapsed());
        }
        if start.elapsed() > limit {
            // SAFETY: kill(2) on the process group the child leads (xvfb-run, Xvfb and Bochs);
            // no memory is involved.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let run = BochsRun { to_init, to_exit: start.elapsed(), status };
    // Best effort: the folder only holds this run's files.
    let _ = std::fs::remove_dir_all(&dir);
    Ok(run)
}
