//! Builds rx86's own test guests (sources under `tests/guests/`) with the host C toolchain.
//!
//! A guest is a freestanding ELF32 kernel built from one or more source folders with the
//! `linker.ld` found in them; it uses no system header and no libc, so a gcc without 32-bit
//! multilib headers is enough. An i386 guest is compiled by `gcc -m32` and linked by
//! `ld -m elf_i386`; an x86_64 guest is compiled by `gcc -m64`, linked by `ld -m elf_x86_64` and
//! converted to ELF32 by `objcopy -O elf32-i386`, because Multiboot loaders take ELF32 only (its
//! entry code is 32-bit and switches to long mode itself). Outputs are content-addressed,
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

/// Compiler flags for every source of an i386 guest (C and preprocessed assembly alike).
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

/// Compiler flags of the `v3-*.c` sources of a [`GuestArch::I386V3`] guest: the x86-64-v3
/// level (AVX2, FMA, F16C, BMI2, MOVBE), SSE floating point and vectorized loops.
pub const GUEST_V3_CFLAGS: &[&str] = &[
    "-m32",
    "-march=x86-64-v3",
    "-mfpmath=sse",
    "-fno-math-errno",
    "-ffreestanding",
    "-fno-pic",
    "-fno-pie",
    "-nostdlib",
    "-fno-stack-protector",
    "-fno-asynchronous-unwind-tables",
    "-O3",
    "-g",
    "-Wall",
    "-Wextra",
];

/// Linker flags of an i386 guest; the guest's own `linker.ld` is added after them.
pub const GUEST_LDFLAGS: &[&str] = &["-m", "elf_i386", "-nostdlib"];

/// Compiler flags for every source of an x86_64 guest: no red zone (interrupts push onto the
/// kernel stack), no SSE registers, every address below 2 GiB.
pub const GUEST64_CFLAGS: &[&str] = &[
    "-m64",
    "-mno-red-zone",
    "-mcmodel=small",
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

/// Linker flags of an x86_64 guest; the guest's own `linker.ld` is added after them.
pub const GUEST64_LDFLAGS: &[&str] = &["-m", "elf_x86_64", "-nostdlib"];

/// `objcopy` flags that turn a linked x86_64 guest into the ELF32 (i386) a Multiboot loader takes.
pub const GUEST64_OBJCOPY_FLAGS: &[&str] = &["-O", "elf32-i386"];

/// The CPU mode a guest's C code is compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GuestArch {
    /// 32-bit protected mode ([`GUEST_CFLAGS`], [`GUEST_LDFLAGS`]).
    I386,
    /// 32-bit protected mode as [`GuestArch::I386`], except that the sources named `v3-*.c`
    /// are compiled for the x86-64-v3 level ([`GUEST_V3_CFLAGS`]); the guest enables the AVX
    /// state before it calls them.
    I386V3,
    /// 64-bit long mode behind 32-bit entry code ([`GUEST64_CFLAGS`], [`GUEST64_LDFLAGS`], then
    /// `objcopy` with [`GUEST64_OBJCOPY_FLAGS`]).
    X86_64,
}

impl GuestArch {
    /// Compiler flags.
    pub fn cflags(self) -> &'static [&'static str] {
        match self {
            GuestArch::I386 | GuestArch::I386V3 => GUEST_CFLAGS,
            GuestArch::X86_64 => GUEST64_CFLAGS,
        }
    }

    /// Compiler flags of `source`: [`GuestArch::cflags`], or [`GUEST_V3_CFLAGS`] for the
    /// `v3-*.c` sources of an [`GuestArch::I386V3`] guest.
    pub fn cflags_for(self, source: &Path) -> &'static [&'static str] {
        let v3 = source.file_name().and_then(OsStr::to_str).is_some_and(|n| n.starts_with("v3-"));
        if self == GuestArch::I386V3 && v3 {
            GUEST_V3_CFLAGS
        } else {
            self.cflags()
        }
    }

    /// Linker flags.
    pub fn ldflags(self) -> &'static [&'static str] {
        match self {
            GuestArch::I386 | GuestArch::I386V3 => GUEST_LDFLAGS,
            GuestArch::X86_64 => GUEST64_LDFLAGS,
        }
    }

    /// `objcopy` flags applied to the linked file, when it is not ELF32 already.
    pub fn objcopy_flags(self) -> Option<&'static [&'static str]> {
        match self {
            GuestArch::I386 | GuestArch::I386V3 => None,
            GuestArch::X86_64 => Some(GUEST64_OBJCOPY_FLAGS),
        }
    }

    /// Name of the subfolder holding a guest's per-mode sources (entry code, interrupt stubs,
    /// `arch.h`, `linker.ld`).
    pub fn subdir(self) -> &'static str {
        match self {
            GuestArch::I386 | GuestArch::I386V3 => "i386",
            GuestArch::X86_64 => "x86_64",
        }
    }
}

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

/// Builds (or finds already built) the 32-bit Multiboot 1 test kernel of `tests/guests/multiboot/`
/// (shared sources plus `i386/`): it runs every step in protected mode without paging.
///
/// It prints `mode: 32 ...`, then one `<step>: ok|FAIL|SKIP <details>` line per step on COM1 and
/// powers off through ACPI; [`kernel_report::KernelReport`] parses that output.
pub fn multiboot_test_kernel() -> io::Result<PathBuf> {
    multiboot_kernel(GuestArch::I386)
}

/// Builds (or finds already built) the 64-bit variant of the Multiboot test kernel (shared
/// sources plus `x86_64/`): its 32-bit entry identity-maps 0-4 GiB with 4-level paging and enters
/// long mode, where every step runs with a 64-bit IDT. It prints `mode: 64 ...` first and uses no
/// software interrupt instruction. The file is an ELF32 (i386) image, as Multiboot requires.
pub fn multiboot64_test_kernel() -> io::Result<PathBuf> {
    multiboot_kernel(GuestArch::X86_64)
}

fn multiboot_kernel(arch: GuestArch) -> io::Result<PathBuf> {
    let common = guest_sources_root().join("multiboot");
    let per_mode = common.join(arch.subdir());
    build_guest(&format!("multiboot-{}", arch.subdir()), &[common, per_mode], arch)
}

/// Builds every `*.c` and `*.S` of `source_dir` into one i386 ELF32 linked with its `linker.ld`,
/// unless a build of the very same sources exists; returns the ELF's path.
pub fn build_elf32_guest(name: &str, source_dir: &Path) -> io::Result<PathBuf> {
    build_guest(name, &[source_dir.to_path_buf()], GuestArch::I386)
}

/// Builds every `*.c` and `*.S` of `source_dirs` for `arch` into one ELF32 linked with the one
/// `linker.ld` among them, unless a build of the very same sources exists; returns the ELF's
/// path. Every folder is on the include path, in the order given.
pub fn build_guest(name: &str, source_dirs: &[PathBuf], arch: GuestArch) -> io::Result<PathBuf> {
    let mut sources = Vec::new();
    for dir in source_dirs {
        sources.extend(list_sources(dir)?);
    }
    let scripts: Vec<&PathBuf> = sources.iter().filter(|p| p.file_name() == Some(OsStr::new(LINKER_SCRIPT))).collect();
    let script = match scripts[..] {
        [script] => script.clone(),
        [] => {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("guest {name}: no {LINKER_SCRIPT} in {}", describe_dirs(source_dirs)),
            ))
        }
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("guest {name}: more than one {LINKER_SCRIPT} in {}", describe_dirs(source_dirs)),
            ))
        }
    };
    let fingerprint = fingerprint(&sources, arch)?;
    let out_dir = guest_output_dir();
    let output = out_dir.join(format!("{name}-{fingerprint:016x}.elf"));
    if output.is_file() {
        return Ok(output);
    }
    let build_dir = unique_build_dir(&out_dir, name);
    fs::create_dir_all(&build_dir)?;
    let guest = GuestBuild { name, arch, source_dirs, script: &script, build_dir: &build_dir };
    let result = guest.compile_and_link(&sources, &output);
    // Best effort: a leftover build folder only wastes space.
    let _ = fs::remove_dir_all(&build_dir);
    result.map(|()| output)
}

fn describe_dirs(dirs: &[PathBuf]) -> String {
    dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// The source files of one folder (code, headers, linker script), sorted so fingerprints are stable.
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

/// FNV-1a 64 over the flags and every source's folder name, file name and contents.
fn fingerprint(sources: &[PathBuf], arch: GuestArch) -> io::Result<u64> {
    const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = FNV_OFFSET_BASIS;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes.iter().chain(&[0u8]) {
            hash = (hash ^ u64::from(b)).wrapping_mul(FNV_PRIME);
        }
    };
    let objcopy = arch.objcopy_flags().unwrap_or_default();
    for flag in arch.cflags().iter().chain(arch.ldflags()).chain(objcopy) {
        feed(flag.as_bytes());
    }
    for source in sources {
        for flag in arch.cflags_for(source) {
            feed(flag.as_bytes());
        }
        let folder = source.parent().and_then(Path::file_name);
        feed(folder.map(|n| n.as_encoded_bytes()).unwrap_or_default());
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

/// One build of a guest in its own scratch folder.
struct GuestBuild<'a> {
    name: &'a str,
    arch: GuestArch,
    source_dirs: &'a [PathBuf],
    script: &'a Path,
    build_dir: &'a Path,
}

impl GuestBuild<'_> {
    fn compile_and_link(&self, sources: &[PathBuf], output: &Path) -> io::Result<()> {
        let mut objects = Vec::new();
        for (index, source) in sources.iter().enumerate() {
            let Some(ext @ ("c" | "S")) = source.extension().and_then(OsStr::to_str) else { continue };
            let stem = source.file_stem().unwrap_or_default().to_string_lossy();
            let kind = if ext == "c" { "c" } else { "asm" };
            let object = self.build_dir.join(format!("{index:03}-{stem}.{kind}.o"));
            let mut gcc = Command::new("gcc");
            gcc.args(self.arch.cflags_for(source));
            for dir in self.source_dirs {
                gcc.arg("-I").arg(dir);
            }
            gcc.arg("-c").arg(source).arg("-o").arg(&object);
            if let Some(dir) = source.parent() {
                gcc.current_dir(dir);
            }
            run_tool(&mut gcc, "gcc", self.name)?;
            objects.push(object);
        }
        let linked = self.build_dir.join("guest.elf");
        let mut ld = Command::new("ld");
        ld.args(self.arch.ldflags()).arg("-T").arg(self.script).arg("-o").arg(&linked).args(&objects);
        run_tool(&mut ld, "ld", self.name)?;
        let Some(objcopy_flags) = self.arch.objcopy_flags() else { return fs::rename(&linked, output) };
        let converted = self.build_dir.join("guest.elf32");
        let mut objcopy = Command::new("objcopy");
        objcopy.args(objcopy_flags).arg(&linked).arg(&converted);
        run_tool(&mut objcopy, "objcopy", self.name)?;
        fs::rename(&converted, output)
    }
}

/// Runs a toolchain command; the error names the tool, the guest and what to install.
fn run_tool(command: &mut Command, tool: &str, guest: &str) -> io::Result<()> {
    let out = command.output().map_err(|e| {
        let hint = if e.kind() == io::ErrorKind::NotFound {
            " (not on PATH: the test guests need gcc and binutils' ld and objcopy; on Debian: apt-get install gcc binutils)"
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
        let first = fingerprint(&list_sources(&dir).unwrap(), GuestArch::I386).unwrap();
        assert_eq!(first, fingerprint(&list_sources(&dir).unwrap(), GuestArch::I386).unwrap());
        assert_ne!(first, fingerprint(&list_sources(&dir).unwrap(), GuestArch::X86_64).unwrap(), "flags count");
        fs::write(dir.join("a.c"), "int b;").unwrap();
        let edited = fingerprint(&list_sources(&dir).unwrap(), GuestArch::I386).unwrap();
        assert_ne!(first, edited);
        fs::write(dir.join("notes.txt"), "not a source").unwrap();
        assert_eq!(edited, fingerprint(&list_sources(&dir).unwrap(), GuestArch::I386).unwrap());
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
    fn two_linker_scripts_are_a_clear_error() {
        let dir = scratch_dir("twold");
        let sub = dir.join("i386");
        fs::create_dir_all(&sub).unwrap();
        fs::write(dir.join(LINKER_SCRIPT), "ENTRY(_start)").unwrap();
        fs::write(sub.join(LINKER_SCRIPT), "ENTRY(_start)").unwrap();
        let err = build_guest("twold", &[dir.clone(), sub], GuestArch::I386).unwrap_err();
        assert!(err.to_string().contains("more than one linker.ld"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Both variants are ELF32 i386 executables (what Multiboot loaders take) with a valid
    /// header in the first 8 KiB and no a.out kludge.
    fn check_multiboot_elf32(path: &Path) {
        let image = fs::read(path).unwrap();
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
    }

    #[test]
    fn multiboot_kernels_are_elf32_with_a_multiboot_header() {
        let path = multiboot_test_kernel().expect("build the multiboot test kernel");
        check_multiboot_elf32(&path);
        let path64 = multiboot64_test_kernel().expect("build the 64-bit multiboot test kernel");
        check_multiboot_elf32(&path64);
        assert_ne!(path, path64);
        // The 64-bit variant holds a far jump to its 64-bit code segment: JMP ptr16:32 (EA) with
        // selector 0x18 after the offset.
        let image64 = fs::read(&path64).unwrap();
        assert!(image64.windows(7).any(|w| w[0] == 0xEA && w[5..7] == [0x18, 0x00]), "no far jump to selector 0x18");
        // Unchanged sources: the same file, not rebuilt.
        let modified = fs::metadata(&path).unwrap().modified().unwrap();
        assert_eq!(multiboot_test_kernel().unwrap(), path);
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), modified);
    }

    /// Boots `kernel` on QEMU, the reference machine; every step must pass, which validates the
    /// kernel itself before rx86 is judged by it. Skips when QEMU is not installed.
    fn passes_on_qemu(kernel: &Path, mode: u32) {
        const QEMU: &str = "qemu-system-x86_64";
        const TIMEOUT: Duration = Duration::from_secs(120);
        if Command::new(QEMU).arg("--version").output().is_err() {
            eprintln!("SKIP: {QEMU} is not installed (apt-get install qemu-system-x86)");
            return;
        }
        let mut child = Command::new(QEMU)
            .args(["-machine", "pc", "-m", "128", "-display", "none", "-no-reboot", "-serial", "stdio"])
            .args(["-device", "isa-debug-exit,iobase=0x501", "-append", "hello world", "-kernel"])
            .arg(kernel)
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
        assert_eq!(report.mode, Some(mode), "{serial}");
        for step in MULTIBOOT_KERNEL_STEPS {
            let result = report.step(step).unwrap_or_else(|| panic!("no {step} line:\n{serial}"));
            assert_eq!(result.verdict, Verdict::Ok, "{step}: {}\n{serial}", result.details);
        }
        assert!(report.failures().is_empty(), "{serial}");
        // QEMU, like GRUB, puts the kernel's path before the command line.
        let cmdline = report.cmdline.as_deref().unwrap_or_default();
        assert!(cmdline.ends_with(" hello world") && cmdline.len() > " hello world".len(), "cmdline {cmdline:?}");
    }

    #[test]
    fn multiboot_kernel_passes_on_qemu_when_available() {
        passes_on_qemu(&multiboot_test_kernel().unwrap(), 32);
    }

    #[test]
    fn multiboot64_kernel_passes_on_qemu_when_available() {
        passes_on_qemu(&multiboot64_test_kernel().unwrap(), 64);
    }
}
