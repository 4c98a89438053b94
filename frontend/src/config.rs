//! What the user asked for: the machine configuration the CLI (or a test) builds.

pub use crate::chardev::CharBackend;
pub use crate::drives::{DriveConfig, DriveInterface, DriveMedia};
pub use rx86_firmware::bios::BootDevice;
use std::path::PathBuf;

/// Which execution engine runs the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// The software interpreter (any host; deterministic virtual time).
    Interp,
    /// KVM on an x86-64 Linux host.
    Kvm,
    /// The interpreter with the Cranelift tier compiling its hot blocks (x86-64 hosts;
    /// the same deterministic virtual time and guest behaviour as the interpreter).
    Jit,
}

impl Accel {
    /// The software engine used when `--accel` is not given: the JIT tier where it can
    /// run (x86-64 hosts), the interpreter elsewhere.
    pub fn default_software() -> Accel {
        if cfg!(target_arch = "x86_64") {
            Accel::Jit
        } else {
            Accel::Interp
        }
    }
}

/// Settings of the compiled tier (`--accel jit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JitConfig {
    /// Executions of a block before it is compiled (`None`: the default).
    pub threshold: Option<u32>,
    /// Check every run of compiled code against the interpreter's handlers.
    pub check: bool,
    /// List compiled code for `perf` (`--perfmap`).
    pub perf_map: bool,
    /// The engine was chosen by default, not asked for: where the tier cannot start,
    /// run on the interpreter alone with a warning rather than fail.
    pub fallback: bool,
}

/// How machine time runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockMode {
    /// Derived from instructions retired: the same run prints the same thing every time.
    Virtual,
    /// Paced to host time.
    Host,
}

/// Everything needed to build and run one machine.
#[derive(Debug, Clone)]
pub struct MachineConfig {
    /// Guest RAM in bytes.
    pub ram_bytes: u64,
    /// Execution engine.
    pub accel: Accel,
    /// Kernel image (bzImage or Multiboot ELF).
    pub kernel: Option<PathBuf>,
    /// Initial ramdisk for a Linux kernel.
    pub initrd: Option<PathBuf>,
    /// Kernel command line.
    pub append: String,
    /// The serial ports' backends, COM1 first (at most four; ports not given discard output).
    pub serial: Vec<CharBackend>,
    /// The monitor's own backend (a monitor sharing a serial port's is a `mon:` port).
    pub monitor: Option<CharBackend>,
    /// Stop instead of resetting when the guest resets or triple-faults.
    pub no_reboot: bool,
    /// Port of the `isa-debug-exit` device, if any.
    pub debug_exit_port: Option<u16>,
    /// Clock mode; `None` picks virtual for the interpreter and host for KVM.
    pub clock: Option<ClockMode>,
    /// Disk, CD and floppy drives.
    pub drives: Vec<DriveConfig>,
    /// Keep every disk write in memory; image files are never written.
    pub snapshot: bool,
    /// Boot order for the built-in BIOS; `None` is QEMU's default (hard disk, floppy,
    /// CD-ROM).
    pub boot_order: Option<Vec<BootDevice>>,
    /// An external BIOS ROM image instead of the built-in BIOS.
    pub bios: Option<PathBuf>,
    /// Keys to type at guest times or when the screen shows some text (`--keys`).
    pub keys: Option<crate::keys::KeyScript>,
    /// End the run at a guest time or when the screen shows some text (`--stop-at`).
    pub stop_at: Option<crate::keys::StopAt>,
    /// Longest block the interpreter decodes (`None`: its default). What the guest sees
    /// does not depend on it; tests vary it to show that.
    pub max_block: Option<usize>,
    /// Guest time per instruction on the virtual clock, as 2^shift ns (`--icount`, QEMU's
    /// `-icount shift=N`); `None`: the interpreter's default of 1 ns.
    pub icount_shift: Option<u32>,
    /// Settings of the compiled tier, used with [`Accel::Jit`].
    pub jit: JitConfig,
    /// The CPU the guest sees (`--cpu`).
    pub cpu: CpuChoice,
    /// End the run after this much host (wall-clock) time (`--timeout`).
    pub timeout: Option<std::time::Duration>,
    /// Where the RTC starts (`--rtc base=...`).
    pub rtc: crate::rtc_option::RtcBase,
    /// The network cards and their backends (`--nic`, repeatable); empty: no network.
    pub nics: Vec<crate::network::NicConfig>,
}

/// The CPU model a guest sees (`--cpu NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CpuChoice {
    /// The engine's own: `max` on the interpreter; under KVM the host's CPUID filtered to
    /// the board.
    #[default]
    Default,
    /// `host`: the host CPU's CPUID filtered to the board (KVM only).
    Host,
    /// A named model of the interpreter (`486` ... `max`, `rx86_cpu::interp::model`).
    Model(rx86_cpu::interp::model::CpuModel),
}

impl std::str::FromStr for CpuChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        use rx86_cpu::interp::model::CpuModel;
        if s.eq_ignore_ascii_case("host") {
            return Ok(CpuChoice::Host);
        }
        CpuModel::from_name(s).map(CpuChoice::Model).ok_or_else(|| {
            let names: Vec<&str> = CpuModel::ALL.iter().map(|(n, _)| *n).collect();
            format!("unknown CPU model '{s}'; models: {}, host (KVM only)", names.join(", "))
        })
    }
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig {
            ram_bytes: 128 << 20,
            accel: Accel::Interp,
            kernel: None,
            initrd: None,
            append: String::new(),
            serial: vec![CharBackend::Stdio],
            monitor: None,
            no_reboot: false,
            debug_exit_port: None,
            clock: None,
            drives: Vec::new(),
            snapshot: false,
            boot_order: None,
            bios: None,
            keys: None,
            stop_at: None,
            max_block: None,
            icount_shift: None,
            jit: JitConfig::default(),
            cpu: CpuChoice::Default,
            timeout: None,
            rtc: crate::rtc_option::RtcBase::default(),
            nics: Vec::new(),
        }
    }
}

impl MachineConfig {
    /// The clock mode in effect.
    pub fn clock_mode(&self) -> ClockMode {
        self.clock.unwrap_or(match self.accel {
            Accel::Interp | Accel::Jit => ClockMode::Virtual,
            Accel::Kvm => ClockMode::Host,
        })
    }
}

#[cfg(test)]
mod cpu_choice_tests {
    use super::CpuChoice;
    use rx86_cpu::interp::model::CpuModel;

    #[test]
    fn cpu_names_parse() {
        assert_eq!("486".parse::<CpuChoice>(), Ok(CpuChoice::Model(CpuModel::I486)));
        assert_eq!("X86-64-V2".parse::<CpuChoice>(), Ok(CpuChoice::Model(CpuModel::X86_64V2)));
        assert_eq!("host".parse::<CpuChoice>(), Ok(CpuChoice::Host));
        let e = "k6".parse::<CpuChoice>().unwrap_err();
        assert!(e.contains("pentium3") && e.contains("x86-64-v3"), "{e}");
    }
}
