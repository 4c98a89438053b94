//! Builds rx86's own test guests (sources under `tests/guests/`) with the host C toolchain.
//!
//! A guest is a freestanding 32-bit ELF compiled by `gcc -m32` and linked by `ld -m elf_i386`
//! with the `linker.ld` in its source folder; it uses no system header and no libc, so a gcc
//! without 32-bit multilib headers is enough. Outputs are content-addressed,
//! `<guest dir>/<name>-<fingerprint>.elf`, the fingerprint covering every source file and the
//! flags: a build runs only when a source changed, and a finished file is moved into place in one
//! rename, so parallel tests never read a half-written guest.

pub mod kernel_report;

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Environment variable that overrides where built guests are stored.
pub const GUEST_DIR_ENV: &str = "RX86_GUEST_DIR";

/// Compiler flags for every guest source (C and preprocessed assembly alike).
pub const GUEST_CFLAGS: &[&str] = &[
    "-m32",
    "-march=i586",
    "-ffreestanding",
    "-fno-pic",
    "-fno-pie",
    "-nostdlib",
    "-fno-stack-protector",
    "-fno-asynchronous-unwind-tables",
    "-mgeneral-regs-only",
    "-O2",
    "-g",
    "-Wall",
    "-Wextra",
];

/// Linker flags; the guest's own `linker.ld` is added after them.
pub const GUEST_LDFLAGS: &[&str] = &["-m", "elf_i386", "-nostdlib"];

/// Name of the linker script every guest folder holds.
const LINKER_SCRIPT: &str = "linker.ld";

/// Source folder of the guests, `tests/guests/`.
pub fn guest_sources_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("guests")
}

/// Where built guests go: `$RX86_GUEST_DIR`, else `<repo>/target/rx86-guests`.
pub fn guest_output_dir() -> PathBuf {
    match std::env::var_os(GUEST_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target").join("rx86-guests"),
    }
}

/// Builds (or finds already built) the Multiboot 1 test kernel of `tests/guests/multiboot/`.
///
/// It prints one `<step>: ok|FAIL|SKIP <details>` line per step on COM1 and powers off through
/// ACPI; [`kernel_report::KernelReport`] parses that output.
pub fn multiboot_test_kernel() -> io::Result<PathBuf> {
    build_elf32_guest("multiboot", &guest_sources_root().join("multiboot"))
}

/// Builds every `*.c` and `*.S` of `source_dir` into one ELF32 linked with its `linker.ld`,
/// unless a build of the very same sources exists; returns the ELF's path.
pub fn build_elf32_guest(name: &str, source_dir: &Path) -> io::Result<PathBuf> {
    let sources = list_sources(source_dir)?;
    if !sources.iter().any(|p| p.file_name() == Some(OsStr::new(LINKER_SCRIPT))) {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("guest {name}: no {LINKER_SCRIPT} in {}", source_dir.display()),
        ));
    }
    let fingerprint = fingerprint(&sources)?;
    let out_dir = guest_output_dir();
    let output = out_dir.join(format!("{name}-{fingerprint:016x}.elf"));
    if output.is_file() {
        return Ok(output);
    }
    let build_dir = unique_build_dir(&out_dir, name);
    fs::create_dir_all(&build_dir)?;
    let result = compile_and_link(name, source_dir, &sources, &build_dir, &output);
    // Best effort: a leftover build folder only wastes space.
    let _ = fs::remove_dir_all(&build_dir);
    result.map(|()| output)
}

/// The guest's source files (code, headers, linker script), sorted so fingerprints are stable.
fn list_sources(source_dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut sources = Vec::new();
    for entry in fs::read_dir(source_dir)
        .map_err(|e| io::Error::new(e.kind(), format!("guest sources {}: {e}", source_dir.display())))?
    {
        let path = entry?.path();
        let is_source = matches!(path.extension().and_then(OsStr::to_str), Some("c" | "S" | "h" | "ld"));
        if is_source && path.is_file() {
            sources.push(path);
        }
    }
    sources.sort();
    Ok(sources)
}

/// FNV-1a 64 over the flags and every source's name and contents.
fn fingerprint(sources: &[PathBuf]) -> io::Result<u64> {
    const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = FNV_OFFSET_BASIS;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes.iter().chain(&[0u8]) {
            hash = (hash ^ u64::from(b)).wrapping_mul(FNV_PRIME);
        }
    };
    for flag in GUEST_CFLAGS.iter().chain(GUEST_LDFLAGS) {
        feed(flag.as_bytes());
    }
    for source in sources {
        feed(source.file_name().map(|n| n.as_encoded_bytes()).unwrap_or_default());
        feed(&fs::read(source)?);
    }
    Ok(hash)
}

fn unique_build_dir(out_dir: &Path, name: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    out_dir.join(format!(".build-{name}-{}-{n}", std::process::id()))
}

fn compile_and_link(
    name: &str,
    source_dir: &Path,
    sources: &[PathBuf],
    build_dir: &Path,
    output: &Path,
) -> io::Result<()> {
    let mut objects = Vec::new();
    for source in sources {
        let Some(ext @ ("c" | "S")) = source.extension().and_then(OsStr::to_str) else { continue };
        let stem = source.file_stem().unwrap_or_default().to_string_lossy();
        let object = build_dir.join(format!("{stem}.{}.o", if ext == "c" { "c" } else { "asm" }));
        let mut gcc = Command::new("gcc");
        gcc.args(GUEST_CFLAGS).arg("-c").arg(source).arg("-o").arg(&object).current_dir(source_dir);
        run_tool(&mut gcc, "gcc", name)?;
        objects.push(object);
    }
    let linked = build_dir.join("guest.elf");
    let mut ld = Command::new("ld");
    ld.args(GUEST_LDFLAGS).arg("-T").arg(source_dir.join(LINKER_SCRIPT)).arg("-o").arg(&linked).args(&objects);
    run_tool(&mut ld, "ld", name)?;
    fs::rename(&linked, output)
}

/// Runs a toolchain command; the error names the tool, the guest and what to install.
fn run_tool(command: &mut Command, tool: &str, guest: &str) -> io::Result<()> {
    let out = command.output().map_err(|e| {
        let hint = if e.kind() == io::ErrorKind::NotFound {
            " (not on PATH: the test guests need gcc and binutils' ld; on Debian: apt-get install gcc binutils)"
        } else {
            ""
        };
        io::Error::new(e.kind(), format!("building test guest {guest}: cannot run {tool}: {e}{hint}"))
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "building test guest {guest}: {tool} failed ({}): {:?}\n{}",
        out.status,
        command,
        String::from_utf8_lossy(&out.stderr)
    )))
}

#[cfg(test)]
mod tests {
    use super::kernel_report::{KernelReport, Verdict, MULTIBOOT_KERNEL_STEPS};
    use super::*;
    use std::io::Read;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    /// Multiboot spec 3.1.1: the header sits 4-aligned in the first 8192 bytes of the image.
    const MULTIBOOT_SEARCH: usize = 8192;
    const MULTIBOOT_HEADER_MAGIC: u32 = 0x1BAD_B002;

    fn read_u32(bytes: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
    }

    fn scratch_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rx86-guests-test-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn fingerprint_follows_source_contents() {
        let dir = scratch_dir("fingerprint");
        fs::write(dir.join("a.c"), "int a;").unwrap();
        fs::write(dir.join(LINKER_SCRIPT), "ENTRY(_start)").unwrap();
        let first = fingerprint(&list_sources(&dir).unwrap()).unwrap();
        assert_eq!(first, fingerprint(&list_sources(&dir).unwrap()).unwrap());
        fs::write(dir.join("a.c"), "int b;").unwrap();
        let edited = fingerprint(&list_sources(&dir).unwrap()).unwrap();
        assert_ne!(first, edited);
        fs::write(dir.join("notes.txt"), "not a source").unwrap();
        assert_eq!(edited, fingerprint(&list_sources(&dir).unwrap()).unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_linker_script_is_a_clear_error() {
        let dir = scratch_dir("nold");
        fs::write(dir.join("a.c"), "int a;").unwrap();
        let err = build_elf32_guest("nold", &dir).unwrap_err();
        assert!(err.to_string().contains("no linker.ld"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn multiboot_kernel_is_an_elf32_with_a_multiboot_header() {
        let path = multiboot_test_kernel().expect("build the multiboot test kernel");
        let image = fs::read(&path).unwrap();
        assert_eq!(&image[..4], b"\x7fELF");
        assert_eq!(image[4], 1, "ELFCLASS32");
        assert_eq!(u16::from_le_bytes([image[18], image[19]]), 3, "EM_386");
        let header = (0..MULTIBOOT_SEARCH.min(image.len()) - 12)
            .step_by(4)
            .find(|&at| read_u32(&image, at) == MULTIBOOT_HEADER_MAGIC)
            .expect("multiboot header in the first 8 KiB");
        let flags = read_u32(&image, header + 4);
        let checksum = read_u32(&image, header + 8);
        assert_eq!(MULTIBOOT_HEADER_MAGIC.wrapping_add(flags).wrapping_add(checksum), 0);
        assert_eq!(flags & (1 << 16), 0, "ELF kernel: no a.out kludge");
        // Unchanged sources: the same file, not rebuilt.
        let modified = fs::metadata(&path).unwrap().modified().unwrap();
        assert_eq!(multiboot_test_kernel().unwrap(), path);
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), modified);
    }

    /// Boots the kernel on QEMU, the reference machine, when it is installed: every step must pass,
    /// which validates the kernel itself before rx86 is judged by it.
    #[test]
    fn multiboot_kernel_passes_on_qemu_when_available() {
        const QEMU: &str = "qemu-system-x86_64";
        const TIMEOUT: Duration = Duration::from_secs(120);
        if Command::new(QEMU).arg("--version").output().is_err() {
            eprintln!("SKIP: {QEMU} is not installed (apt-get install qemu-system-x86)");
            return;
        }
        let kernel = multiboot_test_kernel().unwrap();
        let mut child = Command::new(QEMU)
            .args(["-machine", "pc", "-m", "128", "-display", "none", "-no-reboot", "-serial", "stdio"])
            .args(["-device", "isa-debug-exit,iobase=0x501", "-append", "hello world", "-kernel"])
            .arg(&kernel)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("QEMU did not power off within {TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut serial = String::new();
        child.stdout.take().unwrap().read_to_string(&mut serial).unwrap();
        assert!(status.success(), "QEMU exit {status} (the kernel's power-off failed):\n{serial}");
        let report = KernelReport::parse(&serial);
        for step in MULTIBOOT_KERNEL_STEPS {
            let result = report.step(step).unwrap_or_else(|| panic!("no {step} line:\n{serial}"));
            assert_eq!(result.verdict, Verdict::Ok, "{step}: {}\n{serial}", result.details);
        }
        assert!(report.failures().is_empty(), "{serial}");
        // QEMU, like GRUB, puts the kernel's path before the command line.
        let cmdline = report.cmdline.as_deref().unwrap_or_default();
        assert!(cmdline.ends_with(" hello world") && cmdline.len() > " hello world".len(), "cmdline {cmdline:?}");
    }
}
