//! Third-party guest fixtures fetched from Debian's packages into a local cache.
//!
//! `tests/fixtures/fetch-linux.sh` downloads Debian's stock kernel and `busybox-static` with
//! `apt-get download` (nothing is installed) and builds an initramfs whose `/init` prints
//! [`INIT_START_MARKER`], `uname -a`, `/proc/interrupts`, `dmesg` and [`INIT_END_MARKER`] on the
//! console, then powers off. The first call in a process runs the script (which serialises itself
//! across processes with a lock file and returns at once on a warm cache); later calls reuse the
//! answer. Without network or apt the answer is an `Err` saying why, so a test can print it and skip.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Environment variable that overrides the fixture cache folder.
pub const CACHE_ENV: &str = "RX86_CACHE";
/// Printed by the initramfs' `/init` once it runs.
pub const INIT_START_MARKER: &str = "RX86-INIT-START";
/// Printed by `/init` after its report, right before `poweroff -f`.
pub const INIT_END_MARKER: &str = "RX86-INIT-END";

/// Debian architecture of a Linux fixture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinuxArch {
    /// `linux-image-amd64` (64-bit kernel) with amd64 busybox.
    Amd64,
    /// `linux-image-686` (32-bit kernel, no PAE) with i386 busybox; adds dpkg's i386 architecture.
    I386,
}

impl LinuxArch {
    /// The Debian architecture name, as the script's `--arch` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            LinuxArch::Amd64 => "amd64",
            LinuxArch::I386 => "i386",
        }
    }
}

/// A bootable kernel and initramfs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinuxFixture {
    /// The kernel (`bzImage-<arch>`, Debian's `vmlinuz`).
    pub bzimage: PathBuf,
    /// The gzip-compressed newc cpio initramfs (`initramfs-<arch>.cpio.gz`).
    pub initrd: PathBuf,
    /// A cpio to append to the initramfs: the bochs DRM driver and its dependencies in
    /// `/lib/modules/drm/`, load order in `/lib/modules/drm/order` (`drm-modules-<arch>.cpio.gz`).
    pub drm_modules: PathBuf,
    /// A cpio to append to the initramfs: `kvm_amd` and its dependencies in `/lib/modules/kvm/`,
    /// load order in `/lib/modules/kvm/order` (`kvm-modules-<arch>.cpio.gz`), for a nested KVM
    /// host ([`crate::nested`]).
    pub kvm_modules: PathBuf,
    /// A cpio to append to the initramfs: the NIC drivers (`e1000`, `virtio_pci` and
    /// `virtio_net`, `ne2k-pci`) and their dependencies in `/lib/modules/net/`, load order in
    /// `/lib/modules/net/order` (`net-modules-<arch>.cpio.gz`).
    pub net_modules: PathBuf,
}

/// The fixture cache: `$RX86_CACHE`, else `<repo>/target/rx86-cache`.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os(CACHE_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target").join("rx86-cache"),
    }
}

/// Debian's amd64 kernel and a busybox initramfs; `Err` says why they could not be had.
pub fn linux_amd64() -> Result<LinuxFixture, String> {
    static FIXTURE: OnceLock<Result<LinuxFixture, String>> = OnceLock::new();
    FIXTURE.get_or_init(|| fetch_linux(LinuxArch::Amd64)).clone()
}

/// Debian's 686 kernel and an i386 busybox initramfs; `Err` says why they could not be had.
pub fn linux_i386() -> Result<LinuxFixture, String> {
    static FIXTURE: OnceLock<Result<LinuxFixture, String>> = OnceLock::new();
    FIXTURE.get_or_init(|| fetch_linux(LinuxArch::I386)).clone()
}

/// The fixture of `arch`.
pub fn linux(arch: LinuxArch) -> Result<LinuxFixture, String> {
    match arch {
        LinuxArch::Amd64 => linux_amd64(),
        LinuxArch::I386 => linux_i386(),
    }
}

/// Runs `tests/fixtures/<script>` with `args` and the cache in the environment; the
/// error carries the end of its standard error.
pub fn run_fixture_script(script: &str, args: &[&str]) -> Result<(), String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(script);
    let out = Command::new("bash")
        .arg(&path)
        .args(args)
        .env(CACHE_ENV, cache_dir())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(format!("{script} {} failed ({}): {}", args.join(" "), out.status, tail.join(" | ")))
}

/// Runs the fetch script for `arch` and checks that it left both files.
fn fetch_linux(arch: LinuxArch) -> Result<LinuxFixture, String> {
    let cache = cache_dir();
    run_fixture_script("fetch-linux.sh", &["--arch", arch.as_str()])?;
    let fixture = LinuxFixture {
        bzimage: cache.join(format!("bzImage-{}", arch.as_str())),
        initrd: cache.join(format!("initramfs-{}.cpio.gz", arch.as_str())),
        drm_modules: cache.join(format!("drm-modules-{}.cpio.gz", arch.as_str())),
        kvm_modules: cache.join(format!("kvm-modules-{}.cpio.gz", arch.as_str())),
        net_modules: cache.join(format!("net-modules-{}.cpio.gz", arch.as_str())),
    };
    for file in [&fixture.bzimage, &fixture.initrd, &fixture.drm_modules, &fixture.kvm_modules, &fixture.net_modules] {
        if !file.is_file() {
            return Err(format!("fetch-linux.sh succeeded but {} is missing", file.display()));
        }
    }
    Ok(fixture)
}

/// The interrupt count of the /proc/interrupts line whose description ends with `what`.
fn interrupt_count(console: &str, what: &str) -> Option<u64> {
    console
        .lines()
        .find(|l| l.trim_end().ends_with(what))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
}

/// Checks a Linux console for the evidence the test requires (`machine` is what
/// `uname -m` prints); the error says what is missing.
pub fn check_linux_console(console: &str, machine: &str) -> Result<(), String> {
    let start = console.find(INIT_START_MARKER).ok_or("no start marker")?;
    let end = console.find(INIT_END_MARKER).ok_or("no end marker")?;
    let init = console.get(start..end).ok_or("end marker before start marker")?;
    if !(init.contains("Linux") && init.contains(machine)) {
        return Err("uname -a output missing".into());
    }
    let timer = interrupt_count(init, "2-edge      timer").ok_or("no IO-APIC timer line in /proc/interrupts")?;
    if timer == 0 {
        return Err("no timer interrupts through the IOAPIC".into());
    }
    let serial = interrupt_count(init, "4-edge      ttyS0").ok_or("no ttyS0 line in /proc/interrupts")?;
    if serial == 0 {
        return Err("no serial interrupts".into());
    }
    if !init.contains("ACPI: RSDP 0x00000000000E0000") {
        return Err("the kernel did not use rx86's RSDP".into());
    }
    if !init.contains("RX86") {
        return Err("rx86's ACPI OEM id missing from dmesg".into());
    }
    if !console.contains("reboot: Power down") {
        return Err("no power-off".into());
    }
    Ok(())
}

/// Debian's `ipxe.iso` (fetched by `tests/fixtures/fetch-ipxe.sh` into the cache).
pub fn ipxe_iso() -> Result<PathBuf, String> {
    ipxe_image("ipxe.iso")
}

/// Debian's `ipxe.lkrn`, a Linux boot-protocol image without a 32-bit entry (fetched with
/// the ISO).
pub fn ipxe_lkrn() -> Result<PathBuf, String> {
    ipxe_image("ipxe.lkrn")
}

fn ipxe_image(name: &str) -> Result<PathBuf, String> {
    run_fixture_script("fetch-ipxe.sh", &[])?;
    let image = cache_dir().join(name);
    image
        .is_file()
        .then_some(image.clone())
        .ok_or_else(|| format!("fetch-ipxe.sh succeeded but {} is missing", image.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::fs;
    use std::io::Read;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    /// Linux boot protocol: "HdrS" at offset 0x202 of a bzImage.
    const BZIMAGE_HEADER_MAGIC_OFFSET: usize = 0x202;
    const S_IFMT: u32 = 0o170000;
    const S_IFREG: u32 = 0o100000;
    const S_IFCHR: u32 = 0o020000;
    const S_IFLNK: u32 = 0o120000;

    /// One newc entry: name, mode, device numbers and data.
    #[derive(Debug)]
    struct NewcEntry {
        name: String,
        mode: u32,
        rdev: (u32, u32),
        data: Vec<u8>,
    }

    /// Reads a newc cpio archive (the kernel's `Documentation/driver-api/early-userspace/buffer-format.rst`).
    fn read_newc(archive: &[u8]) -> Vec<NewcEntry> {
        let align4 = |n: usize| (n + 3) & !3;
        let field = |at: usize, i: usize| {
            u32::from_str_radix(std::str::from_utf8(&archive[at + 6 + 8 * i..at + 14 + 8 * i]).unwrap(), 16).unwrap()
        };
        let mut entries = Vec::new();
        let mut at = 0;
        loop {
            assert_eq!(&archive[at..at + 6], b"070701", "newc magic at {at}");
            let (mode, size, rdev) = (field(at, 1), field(at, 6) as usize, (field(at, 9), field(at, 10)));
            let name_len = field(at, 11) as usize;
            let name = std::str::from_utf8(&archive[at + 110..at + 110 + name_len - 1]).unwrap().to_string();
            let data_at = align4(at + 110 + name_len);
            if name == "TRAILER!!!" {
                return entries;
            }
            entries.push(NewcEntry { name, mode, rdev, data: archive[data_at..data_at + size].to_vec() });
            at = align4(data_at + size);
        }
    }

    fn gunzip(path: &Path) -> Vec<u8> {
        let mut archive = Vec::new();
        GzDecoder::new(fs::File::open(path).unwrap()).read_to_end(&mut archive).unwrap();
        archive
    }

    #[test]
    fn console_checks_reject_missing_evidence() {
        let no_ticks =
            "RX86-INIT-START\nLinux rx86 6.1.0 x86_64 GNU/Linux\n  0:  0  IO-APIC   2-edge      timer\nRX86-INIT-END";
        assert_eq!(check_linux_console(no_ticks, "x86_64"), Err("no timer interrupts through the IOAPIC".into()));
        assert_eq!(check_linux_console(no_ticks, "i686"), Err("uname -a output missing".into()));
        assert_eq!(check_linux_console("booted", "x86_64"), Err("no start marker".into()));
        assert_eq!(interrupt_count("  4:        17   IO-APIC   4-edge      ttyS0", "4-edge      ttyS0"), Some(17));
    }

    #[test]
    fn mkcpio_writes_the_manifest_as_newc() {
        let dir = std::env::temp_dir().join(format!("rx86-mkcpio-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("payload"), b"hello").unwrap();
        let manifest = format!(
            "dir /bin 0755\nfile /bin/tool {} 0750\nslink /bin/sh tool 0777\nnod /dev/console 0600 c 5 1\n",
            dir.join("payload").display()
        );
        let out = dir.join("test.cpio.gz");
        let mut child = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join("mkcpio.py"))
            .arg(&out)
            .stdin(Stdio::piped())
            .spawn()
            .expect("python3 runs mkcpio.py");
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), manifest.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success());
        let entries = read_newc(&gunzip(&out));
        let summary: Vec<_> = entries.iter().map(|e| (e.name.as_str(), e.mode)).collect();
        assert_eq!(
            summary,
            [("bin", 0o040755), ("bin/tool", 0o100750), ("bin/sh", 0o120777), ("dev/console", 0o020600)]
        );
        assert_eq!(entries[1].data, b"hello");
        assert_eq!(entries[2].data, b"tool");
        assert_eq!(entries[3].rdev, (5, 1));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn linux_amd64_fixture_is_a_bzimage_and_a_busybox_initramfs() {
        let fixture = match linux_amd64() {
            Ok(fixture) => fixture,
            Err(why) => {
                eprintln!("SKIP: Linux fixture unavailable: {why}");
                return;
            }
        };
        let kernel = fs::read(&fixture.bzimage).unwrap();
        assert_eq!(&kernel[BZIMAGE_HEADER_MAGIC_OFFSET..BZIMAGE_HEADER_MAGIC_OFFSET + 4], b"HdrS");
        let entries = read_newc(&gunzip(&fixture.initrd));
        let find = |name: &str| entries.iter().find(|e| e.name == name).unwrap_or_else(|| panic!("no {name}"));
        let init = find("init");
        assert_eq!(init.mode & S_IFMT, S_IFREG);
        assert_ne!(init.mode & 0o111, 0, "/init is executable");
        let script = String::from_utf8_lossy(&init.data);
        assert!(script.contains(INIT_START_MARKER) && script.contains(INIT_END_MARKER));
        assert_eq!(&find("bin/busybox").data[..4], b"\x7fELF");
        assert_eq!(find("bin/sh").mode & S_IFMT, S_IFLNK);
        let console = find("dev/console");
        assert_eq!((console.mode & S_IFMT, console.rdev), (S_IFCHR, (5, 1)));
        // A second call answers from the same process-wide result.
        assert_eq!(linux_amd64().unwrap(), fixture);
    }

    /// Boots the fixture on QEMU (TCG), the reference machine, when it is installed.
    #[test]
    fn linux_amd64_fixture_boots_on_qemu_when_available() {
        const QEMU: &str = "qemu-system-x86_64";
        const TIMEOUT: Duration = Duration::from_secs(300);
        if Command::new(QEMU).arg("--version").output().is_err() {
            eprintln!("SKIP: {QEMU} is not installed (apt-get install qemu-system-x86)");
            return;
        }
        let fixture = match linux_amd64() {
            Ok(fixture) => fixture,
            Err(why) => {
                eprintln!("SKIP: Linux fixture unavailable: {why}");
                return;
            }
        };
        let log = std::env::temp_dir().join(format!("rx86-linux-qemu-{}.log", std::process::id()));
        let mut child = Command::new(QEMU)
            .args(["-m", "512", "-display", "none", "-no-reboot", "-serial"])
            .arg(format!("file:{}", log.display()))
            .arg("-kernel")
            .arg(&fixture.bzimage)
            .arg("-initrd")
            .arg(&fixture.initrd)
            .args(["-append", "console=ttyS0 panic=-1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if start.elapsed() > TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let serial = fs::read_to_string(&log).unwrap_or_default();
        let _ = fs::remove_file(&log);
        let start_at = serial.find(INIT_START_MARKER).unwrap_or_else(|| panic!("no start marker:\n{serial}"));
        let end_at = serial.find(INIT_END_MARKER).unwrap_or_else(|| panic!("no end marker:\n{serial}"));
        assert!(start_at < end_at);
        assert!(serial[start_at..end_at].contains("Linux "), "uname -a output");
        assert!(serial.contains("reboot: Power down"), "powered off within {TIMEOUT:?}:\n{serial}");
    }
}
