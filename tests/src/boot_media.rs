//! Boot media for the BIOS boot tests: our own boot-sector guest on a floppy or hard-disk image,
//! and Debian's boot loaders on CD and disk images.
//!
//! - [`boot_image`] assembles `tests/guests/boot-floppy/boot.S` with the host's GNU `as` (and
//!   links it at 0:7C00 with `ld --oformat binary`) into a 512-byte boot sector and places it in
//!   sector 0 of a 1.44 MB floppy or a 2 MiB hard-disk image whose every other sector is a
//!   [`pattern_sector`], or of a floppy image inside a CD image that boots it through El Torito
//!   floppy emulation ([`iso9660`]). The guest prints through INT 10h and COM1, reads its next
//!   sectors with INT 13h (CHS on the floppy, the AH=41h/42h extensions on the hard disk), checks
//!   them, writes its own boot sector to [`BootSectorDisk::written_lba`] (not on the CD), reads it
//!   back, and ends with an isa-debug-exit write ([`BOOT_SECTOR_PASS_STATUS`] when every step
//!   passed). Images are content-addressed under [`crate::guests::guest_output_dir`]; tests that
//!   let the guest write run on a [`scratch_copy`].
//! - [`debian_boot_media`] runs `tests/fixtures/make-boot-media.sh` once per process: a GRUB ISO,
//!   an ISOLINUX ISO, an MBR disk with SYSLINUX, and SeaBIOS, all around the Linux fixture of
//!   [`crate::fixtures`]; an `Err` says why they could not be made (no network, no apt).

pub mod iso9660;

use crate::fixtures::cache_dir;
use crate::guests::guest_output_dir;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Bytes per sector of every image here.
pub const SECTOR_SIZE: usize = 512;
/// Sectors of a 1.44 MB floppy: 80 cylinders x 2 heads x 18 sectors.
pub const FLOPPY_SECTORS: u64 = 2880;
/// Sectors of the boot-sector guest's hard-disk image (2 MiB).
pub const HARD_DISK_SECTORS: u64 = 4096;
/// The first line the floppy variant prints.
pub const FLOPPY_BANNER: &str = "RX86-BOOT-FLOPPY";
/// The first line the CD (El Torito floppy emulation) variant prints.
pub const CD_FLOPPY_BANNER: &str = "RX86-BOOT-CD-FLOPPY";
/// The first line the hard-disk variant prints.
pub const HARD_DISK_BANNER: &str = "RX86-BOOT-HDD";
/// The boot-sector guest's last line when every step passed.
pub const BOOT_SECTOR_PASS: &str = "RX86-BOOT-DONE: ok";
/// Exit status of QEMU or rx86 when the guest passed: it writes 0 to isa-debug-exit, which ends
/// the emulator with status (0 << 1) | 1. A failed step n gives 2n + 1.
pub const BOOT_SECTOR_PASS_STATUS: i32 = 1;
/// The first four bytes of a pattern sector.
pub const PATTERN_MAGIC: &[u8; 4] = b"RX86";

/// Which medium the boot-sector guest is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BootSectorDisk {
    /// 1.44 MB floppy, INT 13h AH=02h/03h with CHS addresses.
    Floppy,
    /// 2 MiB hard disk, INT 13h extensions AH=41h/42h/43h with LBA addresses.
    HardDisk,
    /// A CD image whose El Torito default entry emulates a 1.44 MB floppy holding the guest: INT 13h
    /// AH=02h CHS reads only (the emulated floppy is read-only).
    CdFloppy,
}

impl BootSectorDisk {
    /// Name used in file names.
    pub fn name(self) -> &'static str {
        match self {
            BootSectorDisk::Floppy => "floppy",
            BootSectorDisk::HardDisk => "hdd",
            BootSectorDisk::CdFloppy => "cd-floppy",
        }
    }

    /// Sectors of the disk the guest boots from (for the CD, of the emulated floppy).
    pub fn sectors(self) -> u64 {
        match self {
            BootSectorDisk::Floppy | BootSectorDisk::CdFloppy => FLOPPY_SECTORS,
            BootSectorDisk::HardDisk => HARD_DISK_SECTORS,
        }
    }

    /// The image's last sector, where the guest writes a copy of its boot sector (on the floppy
    /// that is cylinder 79, head 1, sector 18); `None` for the CD, which the guest only reads.
    pub fn written_lba(self) -> Option<u64> {
        match self {
            BootSectorDisk::Floppy | BootSectorDisk::HardDisk => Some(self.sectors() - 1),
            BootSectorDisk::CdFloppy => None,
        }
    }

    /// The banner the guest prints first.
    pub fn banner(self) -> &'static str {
        match self {
            BootSectorDisk::Floppy => FLOPPY_BANNER,
            BootSectorDisk::HardDisk => HARD_DISK_BANNER,
            BootSectorDisk::CdFloppy => CD_FLOPPY_BANNER,
        }
    }

    /// `as` arguments selecting the variant.
    fn as_flags(self) -> &'static [&'static str] {
        match self {
            BootSectorDisk::Floppy => &["--32"],
            BootSectorDisk::HardDisk => &["--32", "--defsym", "HARD_DISK=1"],
            BootSectorDisk::CdFloppy => &["--32", "--defsym", "READ_ONLY=1"],
        }
    }
}

/// The contents of sector `lba` of a boot-sector image (every sector but 0): [`PATTERN_MAGIC`],
/// `lba` as a little-endian word, bytes `(lba + i) mod 256` at offsets 6-509, and a last word that
/// makes the sum of the sector's 256 little-endian words zero (mod 2^16).
pub fn pattern_sector(lba: u16) -> [u8; SECTOR_SIZE] {
    let mut sector = [0u8; SECTOR_SIZE];
    sector[..4].copy_from_slice(PATTERN_MAGIC);
    sector[4..6].copy_from_slice(&lba.to_le_bytes());
    for (i, byte) in sector.iter_mut().enumerate().take(SECTOR_SIZE - 2).skip(6) {
        *byte = (lba as usize + i) as u8;
    }
    let sum = word_sum(&sector[..SECTOR_SIZE - 2]);
    sector[SECTOR_SIZE - 2..].copy_from_slice(&sum.wrapping_neg().to_le_bytes());
    sector
}

/// Sum of the little-endian 16-bit words of `bytes` (an even length), mod 2^16.
pub fn word_sum(bytes: &[u8]) -> u16 {
    bytes.chunks_exact(2).fold(0u16, |sum, w| sum.wrapping_add(u16::from_le_bytes([w[0], w[1]])))
}

/// Source folder of the boot-sector guest.
pub fn boot_sector_source_dir() -> PathBuf {
    crate::guests::guest_sources_root().join("boot-floppy")
}

/// Assembles the boot sector of `disk`: 512 bytes ending in 55 AA.
pub fn boot_sector(disk: BootSectorDisk) -> io::Result<Vec<u8>> {
    let source = boot_sector_source_dir().join("boot.S");
    let build_dir = unique_path(&guest_output_dir(), &format!(".build-boot-{}", disk.name()));
    fs::create_dir_all(&build_dir)?;
    let result = assemble(disk, &source, &build_dir);
    // Best effort: a leftover build folder only wastes space.
    let _ = fs::remove_dir_all(&build_dir);
    result
}

fn assemble(disk: BootSectorDisk, source: &Path, build_dir: &Path) -> io::Result<Vec<u8>> {
    assemble_boot_sector(source, disk.as_flags(), build_dir)
}

/// Assembles the boot sector in `source` with the host's `as` and `flags` (`--32` and any
/// `--defsym` variant switches), links it at
/// 0:7C00 as a flat binary in `build_dir`, and checks it is 512 bytes ending in 55 AA.
pub fn assemble_boot_sector(source: &Path, flags: &[&str], build_dir: &Path) -> io::Result<Vec<u8>> {
    let object = build_dir.join("boot.o");
    let binary = build_dir.join("boot.bin");
    run_tool(Command::new("as").args(flags).arg("-o").arg(&object).arg(source), "as")?;
    run_tool(
        Command::new("ld")
            .args(["-m", "elf_i386", "-Ttext", "0x7c00", "-e", "_start", "--oformat", "binary", "-o"])
            .arg(&binary)
            .arg(&object),
        "ld",
    )?;
    let sector = fs::read(&binary)?;
    if sector.len() != SECTOR_SIZE || sector[SECTOR_SIZE - 2..] != [0x55, 0xAA] {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {} bytes, not a 512-byte boot sector ending in 55 AA", source.display(), sector.len()),
        ));
    }
    Ok(sector)
}

/// Assembles the boot sector `tests/guests/<guest>/boot.S` (16-bit code, GNU as) and returns a
/// fresh 1.44 MB floppy image in the temp folder (the boot sector, then zeros) named after
/// `guest` and `tag`; the caller owns it and may let the guest write it.
pub fn boot_sector_floppy(guest: &str, tag: &str) -> io::Result<PathBuf> {
    let tmp = std::env::temp_dir();
    let build_dir = unique_path(&tmp, &format!("rx86-build-{guest}-{tag}"));
    fs::create_dir_all(&build_dir)?;
    let source = crate::guests::guest_sources_root().join(guest).join("boot.S");
    let sector = assemble_boot_sector(&source, &["--32"], &build_dir);
    // Best effort: a leftover build folder only wastes space.
    let _ = fs::remove_dir_all(&build_dir);
    let mut image = sector?;
    image.resize(FLOPPY_SECTORS as usize * SECTOR_SIZE, 0);
    let path = unique_path(&tmp, &format!("rx86-{guest}-{tag}.img"));
    fs::write(&path, image)?;
    Ok(path)
}

/// Builds (or finds already built) the image of `disk`: the boot sector in sector 0 and
/// [`pattern_sector`]s after it (for [`BootSectorDisk::CdFloppy`], such a floppy image inside an
/// El Torito CD image). The path is content-addressed by the guest's source and the assembler
/// flags; never write to it (use [`scratch_copy`]).
pub fn boot_image(disk: BootSectorDisk) -> io::Result<PathBuf> {
    let source = fs::read(boot_sector_source_dir().join("boot.S"))?;
    let mut hash = Fnv1a::new();
    hash.feed(&source);
    for flag in disk.as_flags() {
        hash.feed(flag.as_bytes());
    }
    hash.feed(&disk.sectors().to_le_bytes());
    let out_dir = guest_output_dir();
    let extension = if disk == BootSectorDisk::CdFloppy { "iso" } else { "img" };
    let image = out_dir.join(format!("boot-{}-{:016x}.{extension}", disk.name(), hash.finish()));
    if image.is_file() {
        return Ok(image);
    }
    fs::create_dir_all(&out_dir)?;
    let mut bytes = boot_sector(disk)?;
    bytes.reserve(disk.sectors() as usize * SECTOR_SIZE);
    for lba in 1..disk.sectors() {
        bytes.extend_from_slice(&pattern_sector(lba as u16));
    }
    if disk == BootSectorDisk::CdFloppy {
        bytes = iso9660::el_torito_floppy_iso(&bytes, "RX86_CD_FLOPPY").map_err(io::Error::other)?;
    }
    let partial = unique_path(&out_dir, &format!(".boot-{}.img", disk.name()));
    fs::write(&partial, &bytes)?;
    fs::rename(&partial, &image)?;
    Ok(image)
}

/// Copies `image` to a fresh file in the system temp folder (named after `tag` and this process)
/// that a guest may write to.
pub fn scratch_copy(image: &Path, tag: &str) -> io::Result<PathBuf> {
    let name = image.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let copy = unique_path(&std::env::temp_dir(), &format!("rx86-{tag}-{name}"));
    fs::copy(image, &copy)?;
    Ok(copy)
}

/// Sector `lba` of the image file at `path`.
pub fn read_sector(path: &Path, lba: u64) -> io::Result<Vec<u8>> {
    let bytes = fs::read(path)?;
    let start = lba as usize * SECTOR_SIZE;
    bytes
        .get(start..start + SECTOR_SIZE)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, format!("{} has no sector {lba}", path.display())))
}

/// Debian boot media made by `tests/fixtures/make-boot-media.sh`, each booting the Linux fixture
/// (`console=ttyS0 panic=-1`, `/init` prints the fixture's start and end markers, then powers off).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebianBootMedia {
    /// GRUB 2 rescue ISO (BIOS): a 3-second menu of [`GRUB_ENTRY_1`] (default, kernel command line
    /// `rx86.entry=grub-1`) and [`GRUB_ENTRY_2`] (`rx86.entry=grub-2`), on serial and VGA.
    pub grub_iso: PathBuf,
    /// ISOLINUX ISO, El Torito no-emulation with a boot-info table (`rx86.entry=isolinux`).
    pub isolinux_iso: PathBuf,
    /// 32 MiB raw disk: syslinux `mbr.bin`, one active FAT16 partition at sector 2048 with SYSLINUX
    /// (`rx86.entry=syslinux-disk`). Boot a [`scratch_copy`]: the disk is opened read-write.
    pub disk_img: PathBuf,
    /// Debian's SeaBIOS ROM (128 KiB), for `--bios`.
    pub seabios: PathBuf,
    /// SeaBIOS's VGA BIOS (`vgabios-stdvga.bin`) in the same folder, where `--bios` finds it.
    pub vga_bios: PathBuf,
}

/// Title of the GRUB ISO's first (default) menu entry.
pub const GRUB_ENTRY_1: &str = "rx86 Linux (GRUB entry 1)";
/// Title of the GRUB ISO's second menu entry; GRUB's menu moves down on the key `v`.
pub const GRUB_ENTRY_2: &str = "rx86 Linux (GRUB entry 2)";

/// The kernel command-line word naming the loader entry that booted, as `dmesg` shows it:
/// `rx86.entry=grub-1`, `grub-2`, `isolinux` or `syslinux-disk`.
pub fn entry_marker(entry: &str) -> String {
    format!("rx86.entry={entry}")
}

/// The Debian boot media; `Err` says why they could not be made.
pub fn debian_boot_media() -> Result<DebianBootMedia, String> {
    static MEDIA: OnceLock<Result<DebianBootMedia, String>> = OnceLock::new();
    MEDIA.get_or_init(make_debian_boot_media).clone()
}

fn make_debian_boot_media() -> Result<DebianBootMedia, String> {
    let cache = cache_dir();
    crate::fixtures::run_fixture_script("make-boot-media.sh", &[])?;
    let media = DebianBootMedia {
        grub_iso: cache.join("grub.iso"),
        isolinux_iso: cache.join("isolinux.iso"),
        disk_img: cache.join("disk.img"),
        seabios: cache.join("seabios.bin"),
        vga_bios: cache.join("vgabios-stdvga.bin"),
    };
    for file in [&media.grub_iso, &media.isolinux_iso, &media.disk_img, &media.seabios, &media.vga_bios] {
        if !file.is_file() {
            return Err(format!("make-boot-media.sh succeeded but {} is missing", file.display()));
        }
    }
    Ok(media)
}

/// The `rx86 run` options every BIOS boot test passes: `--accel <accel> --serial stdio --no-reboot
/// --display none`, then `extra`.
pub fn bios_run_args(accel: &str, extra: &[&str]) -> Vec<String> {
    let common = ["run", "--accel", accel, "--serial", "stdio", "--no-reboot", "--display", "none"];
    common.iter().chain(extra).map(|s| s.to_string()).collect()
}

/// The `rx86 run` options BIOS boots need; [`missing_bios_options`] checks the binary has them.
pub const BIOS_BOOT_OPTIONS: &[&str] =
    &["--hda", "--cdrom", "--fda", "--boot", "--snapshot", "--bios", "--display", "--debug-exit"];

/// Says which of `options` the `rx86 run --help` of this build does not list, or `None` when it
/// lists them all; lets the BIOS boot tests skip (with that reason) on a build without them.
pub fn missing_bios_options(options: &[&str]) -> Option<String> {
    let out = match Command::new(crate::rx86_bin::rx86_binary()).args(["run", "--help"]).output() {
        Ok(out) => out,
        Err(e) => return Some(format!("cannot run rx86 run --help: {e}")),
    };
    let help = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<&str> = options
        .iter()
        .copied()
        .filter(|opt| !help.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).any(|word| word == *opt))
        .collect();
    (!missing.is_empty()).then(|| format!("this rx86 has no {} option", missing.join(", ")))
}

/// Checks a console for a Linux boot from boot media: the init's start and end markers, the
/// kernel command line naming `entry` (see [`entry_marker`]) and the power-off; the error says what
/// is missing.
pub fn check_linux_boot(console: &str, entry: &str) -> Result<(), String> {
    let start = console.find(crate::fixtures::INIT_START_MARKER).ok_or("no start marker")?;
    let end = console.find(crate::fixtures::INIT_END_MARKER).ok_or("no end marker")?;
    if end < start {
        return Err("end marker before start marker".into());
    }
    let marker = entry_marker(entry);
    if !console.contains(&marker) {
        return Err(format!("the kernel command line lacks {marker}: another loader entry booted"));
    }
    if !console.contains("reboot: Power down") {
        return Err("no power-off".into());
    }
    Ok(())
}

/// Checks the boot-sector guest's console for `disk`: its banner first, every step ok and the
/// final verdict; the error names the first missing line.
pub fn check_boot_sector_console(console: &str, disk: BootSectorDisk) -> Result<(), String> {
    let banner = console.find(disk.banner()).ok_or_else(|| format!("no {} banner", disk.banner()))?;
    let steps: &[&str] = match disk {
        BootSectorDisk::Floppy => &["read", "check", "write", "verify"],
        BootSectorDisk::HardDisk => &["ext", "read", "check", "write", "verify"],
        BootSectorDisk::CdFloppy => &["read", "check"],
    };
    for step in steps {
        let line = format!("{step}: ok");
        if !console[banner..].contains(&line) {
            return Err(format!("no {line:?} line"));
        }
    }
    if !console.contains(BOOT_SECTOR_PASS) {
        return Err(format!("no {BOOT_SECTOR_PASS:?} line"));
    }
    Ok(())
}

/// What an emulator run printed and how it ended.
#[derive(Debug)]
pub struct ConsoleRun {
    /// Everything written to standard output (the serial console).
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Exit status, or `None` when the run was killed at its time limit.
    pub status: Option<ExitStatus>,
}

/// Runs `command` with piped standard streams; when standard output first contains `trigger`,
/// writes `keys` to its standard input (one byte every 100 ms, as a typist would). Kills the run
/// after `limit`.
pub fn run_with_keys(command: &mut Command, trigger: &str, keys: &[u8], limit: Duration) -> io::Result<ConsoleRun> {
    run_with_keys_until(command, trigger, keys, None, limit)
}

/// [`run_with_keys`] that also ends the run (status `None`) once standard output contains
/// `stop_when`, for tests that have seen what they need before the guest finishes.
pub fn run_with_keys_until(
    command: &mut Command,
    trigger: &str,
    keys: &[u8],
    stop_when: Option<&str>,
    limit: Duration,
) -> io::Result<ConsoleRun> {
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let mut stdin = child.stdin.take();
    let stdout_rx = pipe_reader(child.stdout.take());
    let stderr_rx = pipe_reader(child.stderr.take());
    let start = Instant::now();
    let mut stdout = Vec::new();
    let mut typed = false;
    let status = loop {
        while let Ok(chunk) = stdout_rx.try_recv() {
            stdout.extend_from_slice(&chunk);
        }
        if !typed && String::from_utf8_lossy(&stdout).contains(trigger) {
            typed = true;
            if let Some(input) = stdin.as_mut() {
                for &key in keys {
                    std::thread::sleep(Duration::from_millis(100));
                    // The guest may already have ended: a write error only means nobody reads.
                    let _ = input.write_all(&[key]).and_then(|()| input.flush());
                }
            }
        }
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if stop_when.is_some_and(|s| String::from_utf8_lossy(&stdout).contains(s)) {
            kill(&mut child);
            break None;
        }
        if start.elapsed() > limit {
            kill(&mut child);
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(stdin);
    // The pipes close when the process is gone; collect what is left.
    stdout.extend(stdout_rx.iter().flatten());
    let stderr: Vec<u8> = stderr_rx.iter().flatten().collect();
    Ok(ConsoleRun {
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        status,
    })
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Forwards everything read from `pipe` to a channel, on a helper thread.
fn pipe_reader(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
    }
    rx
}

/// Runs a toolchain command; the error names the tool and what to install.
fn run_tool(command: &mut Command, tool: &str) -> io::Result<()> {
    let out = command.output().map_err(|e| {
        io::Error::new(e.kind(), format!("building the boot-sector guest: cannot run {tool}: {e} (needs binutils)"))
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "building the boot-sector guest: {tool} failed ({}): {:?}\n{}",
        out.status,
        command,
        String::from_utf8_lossy(&out.stderr)
    )))
}

/// A path in `dir` no other thread or process of this run uses.
pub(crate) fn unique_path(dir: &Path, name: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{}-{}-{name}", std::process::id(), n))
}

/// FNV-1a 64, for content-addressed file names.
struct Fnv1a(u64);

impl Fnv1a {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Self {
        Fnv1a(Self::OFFSET_BASIS)
    }

    /// Feeds `bytes` and a terminating zero, so consecutive fields cannot run together.
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().chain(&[0u8]) {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(Self::PRIME);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QEMU: &str = "qemu-system-x86_64";

    fn qemu_missing() -> bool {
        if Command::new(QEMU).arg("--version").output().is_err() {
            eprintln!("SKIP: {QEMU} is not installed (apt-get install qemu-system-x86)");
            return true;
        }
        false
    }

    #[test]
    fn console_checks_name_what_is_missing() {
        let floppy =
            "RX86-BOOT-FLOPPY\r\nread: ok\r\ncheck: ok\r\nwrite: ok\r\nverify: ok\r\n\r\nRX86-BOOT-DONE: ok\r\n";
        assert_eq!(check_boot_sector_console(floppy, BootSectorDisk::Floppy), Ok(()));
        assert_eq!(check_boot_sector_console(floppy, BootSectorDisk::HardDisk), Err("no RX86-BOOT-HDD banner".into()));
        let failed = "RX86-BOOT-FLOPPY\r\nread: ok\r\ncheck: FAIL ah=00\r\nRX86-BOOT-DONE: FAIL\r\n";
        assert_eq!(check_boot_sector_console(failed, BootSectorDisk::Floppy), Err("no \"check: ok\" line".into()));

        let linux =
            "Command line: console=ttyS0 rx86.entry=isolinux\nRX86-INIT-START\nRX86-INIT-END\nreboot: Power down";
        assert_eq!(check_linux_boot(linux, "isolinux"), Ok(()));
        assert!(check_linux_boot(linux, "grub-1").unwrap_err().contains("rx86.entry=grub-1"));
        assert_eq!(check_linux_boot("RX86-INIT-START", "isolinux"), Err("no end marker".into()));
        assert_eq!(check_linux_boot(&linux.replace("reboot: Power down", ""), "isolinux"), Err("no power-off".into()));
    }

    #[test]
    fn bios_run_args_put_the_common_options_first() {
        assert_eq!(
            bios_run_args("interp", &["--fda", "f.img"]),
            ["run", "--accel", "interp", "--serial", "stdio", "--no-reboot", "--display", "none", "--fda", "f.img"]
        );
    }

    #[test]
    fn pattern_sectors_carry_magic_lba_and_a_zero_word_sum() {
        for lba in [1u16, 2, 255, 256, 2879, 4095, u16::MAX] {
            let sector = pattern_sector(lba);
            assert_eq!(&sector[..4], PATTERN_MAGIC);
            assert_eq!(u16::from_le_bytes([sector[4], sector[5]]), lba);
            assert_eq!(word_sum(&sector), 0, "lba {lba}");
        }
        assert_ne!(pattern_sector(1)[6..], pattern_sector(2)[6..], "the body depends on the LBA");
        assert_eq!(word_sum(&[0xff, 0xff, 0x02, 0x00]), 1, "the sum wraps mod 2^16");
    }

    #[test]
    fn boot_images_hold_the_boot_sector_then_pattern_sectors() {
        for disk in [BootSectorDisk::Floppy, BootSectorDisk::HardDisk] {
            let path = boot_image(disk).expect("build the boot-sector image");
            let image = fs::read(&path).unwrap();
            assert_eq!(image.len() as u64, disk.sectors() * SECTOR_SIZE as u64);
            assert_eq!(&image[510..512], [0x55, 0xAA]);
            assert!(image[..512].windows(disk.banner().len()).any(|w| w == disk.banner().as_bytes()));
            for lba in [1, 2, 18, 35, disk.sectors() - 1] {
                let at = lba as usize * SECTOR_SIZE;
                assert_eq!(image[at..at + SECTOR_SIZE], pattern_sector(lba as u16), "{disk:?} sector {lba}");
            }
            // Unchanged sources: the same file, not rebuilt.
            let modified = fs::metadata(&path).unwrap().modified().unwrap();
            assert_eq!(boot_image(disk).unwrap(), path);
            assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), modified);
        }
        assert_eq!(BootSectorDisk::Floppy.written_lba(), Some(79 * 36 + 18 + 17), "C/H/S 79/1/18");
        assert_eq!(BootSectorDisk::CdFloppy.written_lba(), None);
    }

    #[test]
    fn the_cd_image_emulates_a_floppy_holding_the_read_only_variant() {
        let iso = fs::read(boot_image(BootSectorDisk::CdFloppy).unwrap()).unwrap();
        let floppy = &iso[iso9660::FLOPPY_IMAGE_BLOCK * iso9660::BLOCK_SIZE..];
        assert_eq!(floppy.len() as u64, FLOPPY_SECTORS * SECTOR_SIZE as u64);
        assert_eq!(floppy[..SECTOR_SIZE], boot_sector(BootSectorDisk::CdFloppy).unwrap()[..]);
        assert!(floppy[..SECTOR_SIZE].windows(CD_FLOPPY_BANNER.len()).any(|w| w == CD_FLOPPY_BANNER.as_bytes()));
        assert_eq!(floppy[35 * SECTOR_SIZE..36 * SECTOR_SIZE], pattern_sector(35));
    }

    #[test]
    fn floppy_and_hard_disk_variants_differ() {
        let floppy = boot_sector(BootSectorDisk::Floppy).unwrap();
        let hard_disk = boot_sector(BootSectorDisk::HardDisk).unwrap();
        assert_ne!(floppy, hard_disk);
        // INT 13h extensions check (AH=41h, BX=55AAh): mov $0x41,%ah; mov $0x55aa,%bx.
        let ext_check = [0xB4, 0x41, 0xBB, 0xAA, 0x55];
        assert!(hard_disk.windows(5).any(|w| w == ext_check));
        assert!(!floppy.windows(5).any(|w| w == ext_check));
    }

    /// Boots a scratch copy of the `disk` image on QEMU with isa-debug-exit; the guest must pass
    /// and its write must reach the file.
    fn passes_on_qemu(disk: BootSectorDisk) {
        if qemu_missing() {
            return;
        }
        let image = boot_image(disk).unwrap();
        let copy = scratch_copy(&image, "qemu").unwrap();
        let drive = match disk {
            BootSectorDisk::Floppy => format!("file={},if=floppy,format=raw", copy.display()),
            BootSectorDisk::HardDisk => format!("file={},if=ide,format=raw", copy.display()),
            BootSectorDisk::CdFloppy => format!("file={},if=ide,media=cdrom,format=raw", copy.display()),
        };
        let run = run_with_keys(
            Command::new(QEMU)
                .args(["-accel", "tcg", "-m", "32", "-display", "none", "-serial", "stdio", "-no-reboot"])
                .args(["-device", "isa-debug-exit,iobase=0x501", "-drive", &drive]),
            "",
            b"",
            Duration::from_secs(60),
        )
        .unwrap();
        let written = disk.written_lba().map(|lba| read_sector(&copy, lba).unwrap());
        fs::remove_file(&copy).unwrap();
        let console = &run.stdout;
        assert_eq!(run.status.and_then(|s| s.code()), Some(BOOT_SECTOR_PASS_STATUS), "{console}\n{}", run.stderr);
        assert!(console.starts_with(disk.banner()), "{console}");
        assert_eq!(check_boot_sector_console(console, disk), Ok(()), "{console}");
        if let Some(written) = written {
            assert_eq!(written, fs::read(&image).unwrap()[..SECTOR_SIZE], "the guest wrote its boot sector");
        }
    }

    #[test]
    fn floppy_boot_sector_passes_on_qemu_when_available() {
        passes_on_qemu(BootSectorDisk::Floppy);
    }

    #[test]
    fn hard_disk_boot_sector_passes_on_qemu_when_available() {
        passes_on_qemu(BootSectorDisk::HardDisk);
    }

    #[test]
    fn cd_floppy_emulation_boot_sector_passes_on_qemu_when_available() {
        passes_on_qemu(BootSectorDisk::CdFloppy);
    }

    #[test]
    fn a_corrupt_sector_fails_the_check_step_on_qemu() {
        if qemu_missing() {
            return;
        }
        let copy = scratch_copy(&boot_image(BootSectorDisk::Floppy).unwrap(), "corrupt").unwrap();
        let mut bytes = fs::read(&copy).unwrap();
        bytes[20 * SECTOR_SIZE + 100] ^= 1;
        fs::write(&copy, &bytes).unwrap();
        let run = run_with_keys(
            Command::new(QEMU)
                .args(["-accel", "tcg", "-m", "32", "-display", "none", "-serial", "stdio", "-no-reboot"])
                .args(["-device", "isa-debug-exit,iobase=0x501", "-drive"])
                .arg(format!("file={},if=floppy,format=raw", copy.display())),
            "",
            b"",
            Duration::from_secs(60),
        )
        .unwrap();
        fs::remove_file(&copy).unwrap();
        assert!(run.stdout.contains("check: FAIL"), "{}", run.stdout);
        assert!(run.stdout.contains("RX86-BOOT-DONE: FAIL"), "{}", run.stdout);
        // Step 3 (check) failed: status (3 << 1) | 1.
        assert_eq!(run.status.and_then(|s| s.code()), Some(7));
    }

    /// ISO 9660 primary volume descriptor ("CD001" at sector 16 of 2 KiB) and an El Torito boot
    /// record (sector 17, "EL TORITO SPECIFICATION"); MBR with one active partition at 2048.
    #[test]
    fn debian_boot_media_are_iso9660_el_torito_and_mbr() {
        let media = match debian_boot_media() {
            Ok(media) => media,
            Err(why) => {
                eprintln!("SKIP: boot media unavailable: {why}");
                return;
            }
        };
        for iso in [&media.grub_iso, &media.isolinux_iso] {
            let bytes = fs::read(iso).unwrap();
            assert_eq!(&bytes[16 * 2048 + 1..16 * 2048 + 6], b"CD001", "{}", iso.display());
            assert_eq!(&bytes[17 * 2048 + 7..17 * 2048 + 30], b"EL TORITO SPECIFICATION", "{}", iso.display());
        }
        let disk = fs::read(&media.disk_img).unwrap();
        assert_eq!(disk.len(), 32 << 20);
        assert_eq!(&disk[510..512], [0x55, 0xAA]);
        let entry = &disk[446..462];
        assert_eq!(entry[0], 0x80, "active");
        assert_eq!(entry[4], 0x0E, "FAT16 LBA");
        assert_eq!(u32::from_le_bytes(entry[8..12].try_into().unwrap()), 2048);
        let partition = &disk[2048 * SECTOR_SIZE..2049 * SECTOR_SIZE];
        assert_eq!(&partition[3..11], b"SYSLINUX", "the partition boot record is SYSLINUX's");
        assert_eq!(fs::metadata(&media.seabios).unwrap().len(), 128 << 10);
    }

    /// Each Debian medium boots to /init on QEMU (TCG), the reference machine.
    #[test]
    fn debian_boot_media_boot_on_qemu_when_available() {
        if qemu_missing() {
            return;
        }
        let media = match debian_boot_media() {
            Ok(media) => media,
            Err(why) => {
                eprintln!("SKIP: boot media unavailable: {why}");
                return;
            }
        };
        let disk = scratch_copy(&media.disk_img, "qemu").unwrap();
        let runs = [
            ("grub-1", vec!["-cdrom".to_string(), media.grub_iso.display().to_string()]),
            ("isolinux", vec!["-cdrom".to_string(), media.isolinux_iso.display().to_string()]),
            ("syslinux-disk", vec!["-drive".to_string(), format!("file={},if=ide,format=raw", disk.display())]),
        ];
        for (entry, drive) in runs {
            let run = run_with_keys(
                Command::new(QEMU)
                    .args(["-accel", "tcg", "-m", "256", "-display", "none", "-serial", "stdio", "-no-reboot"])
                    .args(&drive),
                "",
                b"",
                Duration::from_secs(300),
            )
            .unwrap();
            let console = &run.stdout;
            assert!(console.contains(crate::fixtures::INIT_START_MARKER), "{entry}: no start marker:\n{console}");
            assert!(console.contains(&entry_marker(entry)), "{entry}: wrong entry:\n{console}");
            assert!(console.contains("reboot: Power down"), "{entry}: no power-off:\n{console}");
        }
        fs::remove_file(&disk).unwrap();
    }

    /// The second GRUB entry is chosen by typing `v` (down) and Enter on the serial console once
    /// the menu shows.
    #[test]
    fn grub_second_entry_is_selected_by_keys_on_qemu_when_available() {
        if qemu_missing() {
            return;
        }
        let media = match debian_boot_media() {
            Ok(media) => media,
            Err(why) => {
                eprintln!("SKIP: boot media unavailable: {why}");
                return;
            }
        };
        let run = run_with_keys(
            Command::new(QEMU)
                .args(["-accel", "tcg", "-m", "256", "-display", "none", "-serial", "stdio", "-no-reboot", "-cdrom"])
                .arg(&media.grub_iso),
            GRUB_ENTRY_2,
            b"v\r",
            Duration::from_secs(300),
        )
        .unwrap();
        assert!(run.stdout.contains(&entry_marker("grub-2")), "{}", run.stdout);
        assert!(!run.stdout.contains(&entry_marker("grub-1")), "{}", run.stdout);
    }
}
