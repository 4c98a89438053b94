//! A nested KVM host: a KVM with hardware virtualization for the KVM tests on machines that have
//! none (this project's CI machines offer only the paravirtual `kvm_pvm`).
//!
//! Debian's amd64 kernel (the Linux fixture) runs under QEMU's software emulation (TCG) with
//! `-cpu max`, which emulates AMD's SVM, and loads Debian's own `kvm` and `kvm_amd` modules (the
//! fixture's `kvm-modules` archive). Its `/dev/kvm` then runs guests through (emulated) hardware
//! virtualization, as `kvm_amd` does on a user's machine. Test jobs (`rx86 run --accel kvm ...`,
//! the differential tester) run in it one after another; each job's output and exit status come
//! back over the host's second serial port, apart from the kernel's console on the first.
//!
//! The guest instructions of a nested run are executed by QEMU's TCG, so this checks rx86's KVM
//! engine (its VM set-up, exits, interrupt injection and devices), not a CPU's silicon.

use crate::cpio::{append_archive, NewcArchive};
use crate::fixtures::{linux_amd64, LinuxFixture};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The emulator that hosts the nested KVM (Debian package `qemu-system-x86`).
pub const QEMU: &str = "qemu-system-x86_64";
/// RAM of the nested host: the payload (unpacked into its RAM disk) plus the guests' RAM.
const HOST_RAM_MIB: u32 = 3072;
/// Where the payload lives in the nested host.
const ROOT: &str = "nested";
/// Starts a job's output on the results port (followed by the job's name).
const BEGIN: &str = "@@NESTED-BEGIN ";
/// Ends a job's output (followed by the name and the exit status).
const EXIT: &str = "@@NESTED-EXIT ";
/// Reports a module that did not load (followed by its name).
const INSMOD_FAILED: &str = "@@NESTED-INSMOD-FAILED ";
/// Printed when `/dev/kvm` is missing after the modules loaded.
const NO_KVM: &str = "@@NESTED-NO-KVM";
/// Printed after the last job.
const DONE: &str = "@@NESTED-DONE";

/// The nested host's `/init`, up to the jobs: mounts, loads the KVM modules in their order and
/// opens the results port (the second UART) raw, so that job output arrives unchanged.
const INIT_PROLOGUE: &str = r#"#!/bin/sh
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
/bin/busybox --install -s
stty -F /dev/ttyS1 raw -echo
exec 3>/dev/ttyS1
for m in $(cat /lib/modules/kvm/order); do insmod /lib/modules/kvm/$m.ko || echo "@@NESTED-INSMOD-FAILED $m" >&3; done
[ -c /dev/kvm ] || echo "@@NESTED-NO-KVM" >&3
"#;
/// After the jobs.
const INIT_EPILOGUE: &str = "echo \"@@NESTED-DONE\" >&3\npoweroff -f\n";

/// One job's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobResult {
    /// The name the job was added with.
    pub name: String,
    /// Its exit status (`None` when the nested host stopped before the job ended).
    pub status: Option<i32>,
    /// What it wrote to standard output and standard error, interleaved.
    pub output: String,
}

/// What a nested run produced.
#[derive(Debug, Clone)]
pub struct NestedRun {
    /// The jobs' results, in the order they ran.
    pub jobs: Vec<JobResult>,
    /// The nested host's kernel console, for diagnosis.
    pub console: String,
    /// Wall-clock time of the whole run.
    pub elapsed: Duration,
}

impl NestedRun {
    /// The result of the job named `name`.
    pub fn job(&self, name: &str) -> Option<&JobResult> {
        self.jobs.iter().find(|j| j.name == name)
    }
}

/// Why a nested run could not be had: the environment lacks something (the test skips), or the
/// nested host itself failed (the test fails).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NestedError {
    /// QEMU, the Linux fixture or SVM emulation is missing; the reason.
    Unavailable(String),
    /// The nested host did not run the jobs; what happened.
    Failed(String),
}

/// A nested host being prepared: its payload (files and programs) and its jobs.
pub struct NestedHost {
    fixture: LinuxFixture,
    payload: NewcArchive,
    dirs: BTreeSet<String>,
    jobs: String,
    scratch: PathBuf,
}

impl NestedHost {
    /// A host whose scratch files go to `scratch`; `Unavailable` without QEMU or the fixture.
    pub fn new(scratch: &Path) -> Result<Self, NestedError> {
        if Command::new(QEMU).arg("--version").output().is_err() {
            return Err(NestedError::Unavailable(format!("{QEMU} is not installed (apt-get install qemu-system-x86)")));
        }
        let fixture = linux_amd64().map_err(|e| NestedError::Unavailable(format!("Linux fixture: {e}")))?;
        fs::create_dir_all(scratch).map_err(|e| failed("scratch folder", e))?;
        let mut payload = NewcArchive::new();
        payload.dir(ROOT, 0o755);
        Ok(NestedHost { fixture, payload, dirs: BTreeSet::new(), jobs: String::new(), scratch: scratch.to_path_buf() })
    }

    /// Adds the host file `host` as `/nested/<name>`; returns that path.
    pub fn add_file(&mut self, host: &Path, name: &str) -> Result<String, NestedError> {
        let data = fs::read(host).map_err(|e| failed(&host.display().to_string(), e))?;
        let path = format!("{ROOT}/{name}");
        self.payload.file(&path, 0o644, &data);
        Ok(format!("/{path}"))
    }

    /// Adds the program `host` (without its debug information) as `/nested/<name>`, with the
    /// shared libraries it loads at their own paths; returns the program's path.
    pub fn add_program(&mut self, host: &Path, name: &str) -> Result<String, NestedError> {
        let stripped = self.scratch.join(name);
        let out = Command::new("objcopy")
            .arg("--strip-debug")
            .arg(host)
            .arg(&stripped)
            .output()
            .map_err(|e| failed("objcopy (binutils)", e))?;
        if !out.status.success() {
            return Err(NestedError::Failed(format!(
                "objcopy {}: {}",
                host.display(),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        for library in shared_libraries(host)? {
            self.add_library(&library)?;
        }
        let data = fs::read(&stripped).map_err(|e| failed("the stripped program", e))?;
        let path = format!("{ROOT}/{name}");
        self.payload.file(&path, 0o755, &data);
        Ok(format!("/{path}"))
    }

    /// Adds a job: `argv` runs in the nested host with no input. Its output goes to a file
    /// and then to the results port, so the job sees no terminal (rx86 draws no progress
    /// line into the output the tests read).
    pub fn add_job(&mut self, name: &str, argv: &[String]) {
        let command: Vec<String> = argv.iter().map(|a| shell_quote(a)).collect();
        self.jobs.push_str(&format!("echo {} >&3\n", shell_quote(&format!("{BEGIN}{name}"))));
        self.jobs.push_str(&format!("{} </dev/null >/tmp/job.out 2>&1\n", command.join(" ")));
        self.jobs.push_str("status=$?\ncat /tmp/job.out >&3\n");
        self.jobs.push_str(&format!("echo {}\"$status\" >&3\n", shell_quote(&format!("{EXIT}{name} "))));
    }

    /// Boots the nested host, runs the jobs and collects their results; the host is killed after
    /// `limit`.
    pub fn run(mut self, limit: Duration) -> Result<NestedRun, NestedError> {
        let init = format!("{INIT_PROLOGUE}{}{INIT_EPILOGUE}", self.jobs);
        self.payload.file(&format!("{ROOT}/init"), 0o755, init.as_bytes());
        let mut initrd = fs::read(&self.fixture.initrd).map_err(|e| failed("the fixture's initramfs", e))?;
        let modules = fs::read(&self.fixture.kvm_modules).map_err(|e| failed("the KVM modules' archive", e))?;
        append_archive(&mut initrd, &modules);
        append_archive(&mut initrd, &std::mem::take(&mut self.payload).finish());
        let initrd_path = self.scratch.join("nested-initrd.cpio");
        let console_path = self.scratch.join("console.txt");
        let results_path = self.scratch.join("results.txt");
        fs::write(&initrd_path, initrd).map_err(|e| failed("the nested initramfs", e))?;
        let started = Instant::now();
        let mut child = Command::new(QEMU)
            .args(["-nodefaults", "-accel", "tcg", "-cpu", "max", "-smp", "1", "-display", "none", "-no-reboot"])
            .args(["-m", &HOST_RAM_MIB.to_string()])
            .arg("-serial")
            .arg(format!("file:{}", console_path.display()))
            .arg("-serial")
            .arg(format!("file:{}", results_path.display()))
            .arg("-kernel")
            .arg(&self.fixture.bzimage)
            .arg("-initrd")
            .arg(&initrd_path)
            .args(["-append", &format!("console=ttyS0 rdinit=/{ROOT}/init panic=-1 quiet")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| failed(QEMU, e))?;
        let finished = loop {
            match child.try_wait().map_err(|e| failed(QEMU, e))? {
                Some(_) => break true,
                None if started.elapsed() > limit => {
                    let _ = child.kill();
                    break false;
                }
                None => std::thread::sleep(Duration::from_millis(200)),
            }
        };
        let qemu = child.wait_with_output().map_err(|e| failed(QEMU, e))?;
        let console = fs::read_to_string(&console_path).unwrap_or_default();
        let results = String::from_utf8_lossy(&fs::read(&results_path).unwrap_or_default()).replace('\r', "");
        let context = || {
            format!(
                "{QEMU} exited {:?}: {}\n--- results\n{results}\n--- console\n{console}",
                qemu.status,
                String::from_utf8_lossy(&qemu.stderr)
            )
        };
        if let Some(module) = results.lines().find_map(|l| l.strip_prefix(INSMOD_FAILED)) {
            return Err(NestedError::Unavailable(format!(
                "the nested host could not load {module} (does this {QEMU} emulate SVM with -cpu max?)\n{}",
                context()
            )));
        }
        if results.lines().any(|l| l == NO_KVM) {
            return Err(NestedError::Unavailable(format!("the nested host has no /dev/kvm\n{}", context())));
        }
        if !finished {
            return Err(NestedError::Failed(format!("the nested host did not finish in {limit:?}\n{}", context())));
        }
        if !results.lines().any(|l| l == DONE) {
            return Err(NestedError::Failed(format!("the nested host stopped before its last job\n{}", context())));
        }
        Ok(NestedRun { jobs: parse_results(&results), console, elapsed: started.elapsed() })
    }

    /// Adds a shared library at its own path, with the directories above it.
    fn add_library(&mut self, library: &Path) -> Result<(), NestedError> {
        let name = library
            .to_str()
            .and_then(|p| p.strip_prefix('/'))
            .ok_or_else(|| NestedError::Failed(format!("library path {} is not absolute UTF-8", library.display())))?;
        let mut prefix = String::new();
        for part in Path::new(name).parent().into_iter().flat_map(|p| p.iter()) {
            prefix = if prefix.is_empty() {
                part.to_string_lossy().into()
            } else {
                format!("{prefix}/{}", part.to_string_lossy())
            };
            if self.dirs.insert(prefix.clone()) {
                self.payload.dir(&prefix, 0o755);
            }
        }
        if self.dirs.insert(name.to_string()) {
            // Resolve symbolic links (ld.so is one): the archive gets the library's bytes.
            let data = fs::read(library).map_err(|e| failed(&library.display().to_string(), e))?;
            self.payload.file(name, 0o755, &data);
        }
        Ok(())
    }
}

/// The shared libraries `program` loads, from `ldd` (the vDSO has no file and is left out).
fn shared_libraries(program: &Path) -> Result<Vec<PathBuf>, NestedError> {
    let out = Command::new("ldd").arg(program).output().map_err(|e| failed("ldd", e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // A static program: nothing to add.
        return Ok(Vec::new());
    }
    Ok(text.lines().filter_map(library_of_ldd_line).map(PathBuf::from).collect())
}

/// The file an `ldd` line names: `libc.so.6 => /lib/.../libc.so.6 (0x...)` or
/// `/lib64/ld-linux-x86-64.so.2 (0x...)`.
fn library_of_ldd_line(line: &str) -> Option<&str> {
    let line = line.trim();
    let path = match line.split_once(" => ") {
        Some((_, rest)) => rest,
        None => line,
    };
    let path = path.split(" (").next()?.trim();
    path.starts_with('/').then_some(path)
}

/// Splits the results port's text into jobs. A marker may follow other text on its line:
/// a job's last output without a newline, or the erase sequence of rx86's progress line
/// (the results port is a terminal); that text stays the job's output.
fn parse_results(results: &str) -> Vec<JobResult> {
    let mut jobs: Vec<JobResult> = Vec::new();
    for line in results.lines() {
        let marker = |m: &str| line.find(m).map(|i| (&line[..i], &line[i + m.len()..]));
        let (text, event) = match (marker(BEGIN), marker(EXIT)) {
            (Some((before, name)), _) => (before, Some((true, name))),
            (None, Some((before, rest))) => (before, Some((false, rest))),
            (None, None) => (line, None),
        };
        if let Some(job) = jobs.last_mut().filter(|j| j.status.is_none()) {
            if event.is_none() || !text.is_empty() {
                job.output.push_str(text);
                job.output.push('\n');
            }
        }
        match event {
            Some((true, name)) => jobs.push(JobResult { name: name.to_string(), status: None, output: String::new() }),
            Some((false, rest)) => {
                let status = rest.rsplit_once(' ').and_then(|(_, s)| s.parse().ok());
                if let Some(job) = jobs.last_mut() {
                    job.status = status;
                }
            }
            None => {}
        }
    }
    jobs
}

/// `arg` in single quotes for the nested host's shell.
fn shell_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

fn failed(what: &str, e: std::io::Error) -> NestedError {
    NestedError::Failed(format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_lines_name_the_library_files() {
        assert_eq!(
            library_of_ldd_line("\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)"),
            Some("/lib/x86_64-linux-gnu/libc.so.6")
        );
        assert_eq!(
            library_of_ldd_line("\t/lib64/ld-linux-x86-64.so.2 (0x00007f)"),
            Some("/lib64/ld-linux-x86-64.so.2")
        );
        assert_eq!(library_of_ldd_line("\tlinux-vdso.so.1 (0x00007ffd)"), None);
    }

    #[test]
    fn results_split_into_jobs_with_their_status() {
        let text = format!(
            "noise\n{BEGIN}one\nline 1\nline 2\n{EXIT}one 0\n{BEGIN}two\nout\n\x1b[K{EXIT}two 3\n{BEGIN}three\npartial\n"
        );
        let jobs = parse_results(&text);
        assert_eq!(jobs.len(), 3);
        assert_eq!(
            (jobs[0].name.as_str(), jobs[0].status, jobs[0].output.as_str()),
            ("one", Some(0), "line 1\nline 2\n")
        );
        assert_eq!(
            (jobs[1].name.as_str(), jobs[1].status, jobs[1].output.as_str()),
            ("two", Some(3), "out\n\x1b[K\n"),
            "a marker after a progress line's erase sequence"
        );
        assert_eq!((jobs[2].name.as_str(), jobs[2].status, jobs[2].output.as_str()), ("three", None, "partial\n"));
    }

    #[test]
    fn arguments_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
