//! The `rx86` command line: QEMU-like options users already know.

use crate::chardev::parse::{parse_char_arg, resolve, CharArg, ChardevDef, Resolved};
use crate::chardev::CharBackend;
use crate::config::{Accel, ClockMode, DriveConfig, DriveInterface, DriveMedia, MachineConfig};
use crate::keys::{KeyScript, StopAt};
use crate::screenshot::ScreenCapture;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// rx86: a full-system x86 PC emulator.
#[derive(Debug, Parser)]
#[command(name = "rx86", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a PC and run a guest on it.
    #[command(after_help = RUN_EXAMPLES)]
    Run(Box<RunArgs>),
    /// Create, inspect, check and convert disk images (raw, qcow2), as qemu-img does.
    #[command(subcommand)]
    Img(crate::img::ImgCommand),
}

/// The examples at the end of `rx86 run --help`.
const RUN_EXAMPLES: &str = "\
Examples:
  rx86 run --kernel bzImage --initrd initrd.gz --append console=ttyS0 -m 512M
                                          Linux on the software CPU, console on this terminal
  rx86 run -enable-kvm -m 1G -nographic --hda disk.img
                                          QEMU's spellings work too (-kernel, -hda, -smp 1, ...)
  rx86 run --cdrom debian.iso -m 512M --display window
                                          boot a CD through the built-in BIOS, in a window
  rx86 run --hda disk.img --snapshot --stop-at 30s --screenshot end.png
                                          writes stay in memory; the screen after 30 s of guest time
  rx86 run --cdrom debian.iso --timeout 10m --text-dump screen.txt
                                          at most 10 minutes of wall-clock time, then the screen
  rx86 run --kernel kernel.elf -S -s      wait for gdb: gdb -ex 'target remote :1234'
  rx86 run --kernel kernel.elf --debug-exit --serial file:serial.log --trace int,file=trace.txt

Ctrl-C (SIGINT), SIGTERM and SIGHUP end the run as a power-off does (drives flushed, screenshot,
text dump, trace and stats written; exit status 128 + signal); a second one exits at once.";

/// Engine choice on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AccelArg {
    /// The software interpreter.
    Interp,
    /// The interpreter plus the Cranelift JIT tier for hot code.
    Jit,
    /// KVM (x86-64 Linux hosts).
    Kvm,
    /// QEMU's name for its software CPU: the JIT where the host has it, else the interpreter.
    Tcg,
}

/// Clock choice on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ClockArg {
    /// Deterministic time from instructions retired.
    Virtual,
    /// Host wall-clock time.
    Host,
}

/// Where the guest's screen goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DisplayArg {
    /// Headless: the screen is only rendered for --screenshot and --text-dump.
    None,
    /// A window showing the screen, taking keyboard input (needs the `window` feature).
    Window,
}

/// Options of `rx86 run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Execution engine (default: jit on x86-64 hosts, interp elsewhere).
    #[arg(long, value_enum)]
    pub accel: Option<AccelArg>,
    /// CPU model: 486, pentium, pentium3, x86-64, x86-64-v2, x86-64-v3 or max (the
    /// interpreter's default: all it implements); host under KVM (its default).
    #[arg(long, value_name = "NAME")]
    pub cpu: Option<crate::config::CpuChoice>,
    /// Kernel to boot: a Linux bzImage (entered directly; one without a 32-bit entry, such as
    /// ipxe.lkrn, through its real-mode setup under the built-in BIOS) or a Multiboot ELF.
    #[arg(long)]
    pub kernel: Option<PathBuf>,
    /// Initial ramdisk for a Linux kernel.
    #[arg(long)]
    pub initrd: Option<PathBuf>,
    /// Kernel command line.
    #[arg(long, default_value = "")]
    pub append: String,
    /// Guest RAM: a number of MiB, or with a K/M/G/T suffix (e.g. 512M, 2G).
    #[arg(short = 'm', long = "memory", default_value = "128M", value_parser = parse_ram_size)]
    pub memory: u64,
    /// A serial port's backend, COM1 first; repeat for COM2-COM4 (default: COM1 on stdio).
    /// stdio, file:PATH, pty, tcp:HOST:PORT[,server][,nowait], telnet:HOST:PORT[,server][,nowait],
    /// unix:PATH[,server][,nowait], mon:BACKEND (shared with the monitor: Ctrl-A c switches, Ctrl-A x quits), chardev:ID,
    /// null or none.
    #[arg(long, value_name = "BACKEND", value_parser = parse_char_arg)]
    pub serial: Vec<CharArg>,
    /// Exit instead of rebooting when the guest resets or triple-faults.
    #[arg(long)]
    pub no_reboot: bool,
    /// Add an isa-debug-exit device at this I/O port (default 0x501): a guest write of
    /// V ends rx86 with status (V << 1) | 1.
    #[arg(long, num_args = 0..=1, default_missing_value = "0x501", value_parser = parse_port)]
    pub debug_exit: Option<u16>,
    /// Machine clock: virtual (deterministic, default for interp) or host (default for kvm
    /// and for --display window).
    #[arg(long, value_enum)]
    pub clock: Option<ClockArg>,
    /// Guest time per instruction on the virtual clock, as QEMU's -icount: shift=N (or N)
    /// makes every instruction take 2^N ns, 0 to 10 (default 0: 1 ns, a 1000 MIPS CPU).
    /// A slower virtual CPU spends fewer instructions in the guest's timed waits.
    #[arg(long, value_name = "shift=N", value_parser = parse_icount)]
    pub icount: Option<u32>,
    /// With --accel jit: how many times a block runs before it is compiled (default 2000).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub jit_threshold: Option<u32>,
    /// With --accel jit: check every run of compiled code against the interpreter and stop
    /// at the first divergence, printing both states and the guest code (slow).
    #[arg(long)]
    pub jit_check: bool,
    /// With --accel jit: list compiled code in /tmp/perf-PID.map, so that `perf report`
    /// names it by guest address (as QEMU's -perfmap).
    #[arg(long)]
    pub perfmap: bool,
    /// At exit, print instructions retired, host time and guest time on stderr.
    #[arg(long)]
    pub stats: bool,
    /// No progress line: by default, when standard error is a terminal, a line there shows
    /// guest time, speed, disk and serial traffic during the run.
    #[arg(long)]
    pub quiet: bool,
    /// Hard disk image on the primary IDE master (raw or qcow2).
    #[arg(long)]
    pub hda: Option<PathBuf>,
    /// Hard disk image on the primary IDE slave.
    #[arg(long)]
    pub hdb: Option<PathBuf>,
    /// Hard disk image on the secondary IDE master.
    #[arg(long)]
    pub hdc: Option<PathBuf>,
    /// Hard disk image on the secondary IDE slave.
    #[arg(long)]
    pub hdd: Option<PathBuf>,
    /// CD image (ISO) in an ATAPI drive on the secondary IDE master.
    #[arg(long)]
    pub cdrom: Option<PathBuf>,
    /// Floppy image in drive A:.
    #[arg(long)]
    pub fda: Option<PathBuf>,
    /// Floppy image in drive B:.
    #[arg(long)]
    pub fdb: Option<PathBuf>,
    /// A drive as QEMU spells it: file=F[,if=ide|floppy][,media=disk|cdrom][,index=N]
    /// [,format=raw|qcow2][,readonly=on]. May be repeated.
    #[arg(long, value_parser = crate::drives::parse_drive)]
    pub drive: Vec<crate::config::DriveConfig>,
    /// Boot order for the built-in BIOS: a (floppy), c (hard disk), d (CD-ROM), e.g. dc.
    // The full path of Vec keeps clap from treating the list as a repeated option.
    #[arg(long, value_parser = crate::drives::parse_boot_order)]
    pub boot: Option<::std::vec::Vec<crate::config::BootDevice>>,
    /// Keep all disk writes in memory: image files are left untouched.
    #[arg(long)]
    pub snapshot: bool,
    /// Use this BIOS ROM image instead of the built-in BIOS.
    #[arg(long)]
    pub bios: Option<PathBuf>,
    /// Serve gdb: tcp::PORT (localhost), HOST:PORT, or PORT (0 picks a free port).
    #[arg(long, value_name = "ADDRESS", value_parser = crate::gdb::parse_gdb_address)]
    pub gdb: Option<String>,
    /// Shorthand for --gdb tcp::1234.
    #[arg(short = 's')]
    pub gdb_default_port: bool,
    /// Hold the guest before its first instruction until gdb connects (serves gdb on
    /// port 1234 unless --gdb says otherwise).
    #[arg(short = 'S')]
    pub gdb_wait: bool,
    /// Log to a file or stderr: insn (disassembled), int (exceptions, interrupts), io (port and MMIO; or port, mmio),
    /// all; range=START-END filters instructions; file=PATH. E.g. --trace insn,int,file=t.txt
    #[arg(long, value_name = "SPEC", value_parser = crate::trace::parse_trace_spec)]
    pub trace: Option<crate::trace::TraceSpec>,
    /// The monitor (help, info registers, quit...) on a backend, as for --serial: stdio, pty,
    /// tcp:HOST:PORT,server[,nowait], telnet:HOST:PORT,server[,nowait], unix:PATH,server[,nowait],
    /// chardev:ID ...
    #[arg(long, value_name = "BACKEND", value_parser = parse_char_arg)]
    pub monitor: Option<CharArg>,
    /// A character device for --serial chardev:ID and --mon: null, stdio, pty, file,path=P,
    /// socket,host=H,port=N|path=P[,server=on][,wait=off], each with id=ID and optionally
    /// mux=on (one serial port and the monitor share it). May be repeated.
    #[arg(long, value_name = "BACKEND,id=ID,...", value_parser = crate::chardev::parse::parse_chardev)]
    pub chardev: Vec<ChardevDef>,
    /// The monitor on a --chardev: [chardev=]ID[,mode=readline].
    #[arg(long, value_name = "chardev=ID", conflicts_with = "monitor", value_parser = crate::chardev::parse::parse_mon)]
    pub mon: Option<String>,
    /// Display: none (headless, the default) or window.
    #[arg(long, value_enum, default_value = "none")]
    pub display: DisplayArg,
    /// QEMU's -nographic: no display; without --serial and --monitor, COM1 and the monitor
    /// share standard input and output (mon:stdio: Ctrl-A c switches, Ctrl-A x quits).
    #[arg(long, conflicts_with = "display")]
    pub nographic: bool,
    /// Number of CPUs, as QEMU's -smp ([cpus=]N[,sockets=..,cores=..,threads=..]): rx86
    /// emulates one CPU, so only 1 is accepted.
    #[arg(long, value_name = "N", value_parser = parse_smp)]
    pub smp: Option<u32>,
    /// When the run ends (power-off, debug-exit, reset under --no-reboot, triple fault,
    /// dead halt, a termination signal, --timeout, --stop-at), write the screen as a PNG to this file.
    #[arg(long, value_name = "FILE.png")]
    pub screenshot: Option<PathBuf>,
    /// When the run ends, write the VGA text screen to this file as UTF-8 lines.
    #[arg(long, value_name = "FILE")]
    pub text_dump: Option<PathBuf>,
    /// Type into the guest: "WHEN:ITEM,ITEM;WHEN:..." where WHEN is a guest time from
    /// power-on (5s, 1500ms) or @TEXT (once the text screen shows TEXT), and an ITEM is a
    /// key name (enter, esc, tab, up, f1..f12, ctrl+alt+delete, ...) or text with \n for
    /// Enter; e.g. "5s:v,enter;10s:root\n" or "@automatically:down,enter".
    #[arg(long, value_name = "SCRIPT", value_parser = parse_keys)]
    pub keys: Option<KeyScript>,
    /// End the run (exit status 0, screenshot and text dump written) when the guest's clock
    /// reaches this time from power-on (e.g. 30s, 1500ms), or with @TEXT once the text
    /// screen shows TEXT: a fixed point of a deterministic run to capture. Guest time, not
    /// wall time: on the interpreter a guest second takes longer (see --timeout).
    #[arg(long, value_name = "TIME|@TEXT", value_parser = parse_stop_at)]
    pub stop_at: Option<StopAt>,
    /// The RTC's date and time at power-on, as QEMU's -rtc: base=utc (the host's time, the
    /// default), base=localtime, or a fixed base=2024-01-01T00:00:00 for runs that repeat
    /// exactly. The host's clock is read once at start; then the RTC follows the machine clock.
    #[arg(long, value_name = "base=utc|localtime|DATE", value_parser = crate::rtc_option::parse_rtc)]
    pub rtc: Option<crate::rtc_option::RtcBase>,
    /// End the run after this much wall-clock (host) time, e.g. 60s, 10m, 1h or 90 (seconds):
    /// the screenshot, text dump, trace and stats are written and rx86 exits with status 124
    /// (as coreutils' timeout).
    #[arg(long, value_name = "DURATION", value_parser = parse_wall_time)]
    pub timeout: Option<Duration>,
    /// Network: user[,model=e1000|virtio-net-pci|ne2k_pci][,hostfwd=tcp:127.0.0.1:HOSTPORT-:GUESTPORT][,restrict=on][,pcap=FILE]
    /// (an Intel 82540EM, a virtio-net or an NE2000 behind a user-mode NAT: guest 10.0.2.15, host 10.0.2.2, DNS 10.0.2.3),
    /// tap,ifname=NAME[,model=...][,pcap=FILE] (a Linux host's TAP interface), or none (the default). Repeatable; cards
    /// without mac= get 52:54:00:12:34:56, :57, ... as in QEMU.
    #[arg(long, value_name = "SPEC", value_parser = crate::network::parse_nic)]
    pub nic: Vec<crate::network::NicArg>,
}

impl RunArgs {
    /// The gdb stub options these arguments ask for, if any.
    pub fn gdb_options(&self) -> Option<crate::gdb::GdbOptions> {
        crate::gdb::options(self.gdb.as_deref(), self.gdb_default_port, self.gdb_wait)
    }

    /// The serial ports' and the monitor's backends, references to --chardev resolved.
    pub fn char_devices(&self) -> Result<Resolved, String> {
        let monitor = match (&self.monitor, &self.mon) {
            (Some(m), _) => Some(m.clone()),
            (None, Some(id)) => Some(CharArg::Chardev(id.clone())),
            (None, None) => None,
        };
        let mut serial = self.serial.clone();
        if serial.is_empty() {
            // QEMU's defaults: -nographic shares stdio between COM1 and the monitor; a monitor
            // on stdio leaves COM1 unheard; otherwise COM1 has stdio.
            let monitor_on_stdio = resolve(&[], monitor.as_ref(), &self.chardev)?.monitor.is_some_and(|m| m.is_stdio());
            serial.push(CharArg::Backend(if monitor.is_none() && self.nographic {
                CharBackend::Mux(Box::new(CharBackend::Stdio))
            } else if monitor_on_stdio {
                CharBackend::Null
            } else {
                CharBackend::Stdio
            }));
        }
        resolve(&serial, monitor.as_ref(), &self.chardev)
    }

    /// The machine configuration these options describe.
    pub fn to_config(&self) -> Result<MachineConfig, String> {
        let chardevs = self.char_devices()?;
        Ok(MachineConfig {
            ram_bytes: self.memory,
            accel: self.to_accel(),
            kernel: self.kernel.clone(),
            initrd: self.initrd.clone(),
            append: self.append.clone(),
            serial: chardevs.serial,
            monitor: chardevs.monitor,
            no_reboot: self.no_reboot,
            debug_exit_port: self.debug_exit,
            // A window is watched by a person: its guest runs on wall-clock time unless
            // --clock says otherwise.
            clock: self
                .clock
                .map(|c| match c {
                    ClockArg::Virtual => ClockMode::Virtual,
                    ClockArg::Host => ClockMode::Host,
                })
                .or((self.display == DisplayArg::Window).then_some(ClockMode::Host)),
            drives: self.drives(),
            snapshot: self.snapshot,
            boot_order: self.boot.clone(),
            bios: self.bios.clone(),
            keys: self.keys.clone(),
            stop_at: self.stop_at.clone(),
            max_block: None,
            icount_shift: self.icount,
            jit: crate::config::JitConfig {
                threshold: self.jit_threshold,
                check: self.jit_check,
                perf_map: self.perfmap,
                fallback: self.accel.is_none(),
            },
            cpu: self.cpu.unwrap_or_default(),
            timeout: self.timeout,
            rtc: self.rtc.unwrap_or_default(),
            nics: self.nic.iter().filter_map(|n| n.0.clone()).collect(),
        })
    }

    /// What to save of the screen at the end of the run.
    pub fn screen_capture(&self) -> ScreenCapture {
        ScreenCapture { screenshot: self.screenshot.clone(), text_dump: self.text_dump.clone() }
    }

    /// The drives of the shorthand options followed by the `--drive` ones.
    fn drives(&self) -> Vec<DriveConfig> {
        let ide = [&self.hda, &self.hdb, &self.hdc, &self.hdd];
        let mut drives: Vec<DriveConfig> = ide
            .into_iter()
            .enumerate()
            .filter_map(|(i, p)| p.clone().map(|p| DriveConfig::at(p, DriveInterface::Ide, DriveMedia::Disk, i)))
            .collect();
        if let Some(p) = &self.cdrom {
            drives.push(DriveConfig::at(p.clone(), DriveInterface::Ide, DriveMedia::Cdrom, 2));
        }
        for (i, p) in [&self.fda, &self.fdb].into_iter().enumerate() {
            if let Some(p) = p {
                drives.push(DriveConfig::at(p.clone(), DriveInterface::Floppy, DriveMedia::Disk, i));
            }
        }
        drives.extend(self.drive.iter().cloned());
        drives
    }
}

/// Parses QEMU's `-smp` value, accepting only a topology of one CPU.
fn parse_smp(s: &str) -> Result<u32, String> {
    let one_cpu = "rx86 emulates one CPU: use 1 or leave --smp out";
    for (i, part) in s.split(',').enumerate() {
        let (key, value) = match part.split_once('=') {
            Some((key, value)) => (key, value),
            None if i == 0 => ("cpus", part),
            None => return Err(format!("'{part}' is not key=value")),
        };
        if !matches!(
            key,
            "cpus" | "maxcpus" | "sockets" | "dies" | "clusters" | "cores" | "threads" | "books" | "drawers"
        ) {
            return Err(format!("unknown -smp property '{key}'"));
        }
        let n: u32 = value.parse().map_err(|_| format!("{key}={value} is not a number"))?;
        if n != 1 {
            return Err(format!("{part}: {one_cpu}"));
        }
    }
    Ok(1)
}

impl RunArgs {
    /// The engine `--accel` names, or the default software engine.
    fn to_accel(&self) -> Accel {
        match self.accel {
            None | Some(AccelArg::Tcg) => Accel::default_software(),
            Some(AccelArg::Kvm) => Accel::Kvm,
            Some(AccelArg::Interp) => Accel::Interp,
            Some(AccelArg::Jit) => Accel::Jit,
        }
    }

    /// Checks what clap cannot: option combinations.
    pub fn check(&self) -> Result<(), String> {
        if self.cpu == Some(crate::config::CpuChoice::Host) && !matches!(self.accel, Some(AccelArg::Kvm)) {
            return Err("--cpu host needs --accel kvm (the software CPU offers the models 486 ... max)".into());
        }
        if (self.jit_check || self.jit_threshold.is_some() || self.perfmap) && self.to_accel() != Accel::Jit {
            return Err("--jit-check, --jit-threshold and --perfmap need --accel jit".into());
        }
        Ok(())
    }
}

/// Parses a `--keys` script (see [`crate::keys`]).
fn parse_keys(s: &str) -> Result<KeyScript, String> {
    KeyScript::parse(s).map_err(|e| e.to_string())
}

/// Parses a `--stop-at` time or `@TEXT` (the forms of a `--keys` event's WHEN).
/// Parses QEMU's `-icount` value: `shift=N` or `N`, N from 0 to 10 (`auto` and the
/// host-synchronising options are not offered: rx86's virtual clock is exact).
fn parse_icount(s: &str) -> Result<u32, String> {
    let n = s.strip_prefix("shift=").unwrap_or(s);
    match n.parse::<u32>() {
        Ok(n) if n <= 10 => Ok(n),
        _ => Err(format!("'{s}': expected shift=N with N from 0 to 10 (2^N ns per instruction)")),
    }
}

fn parse_stop_at(s: &str) -> Result<StopAt, String> {
    StopAt::parse(s).map_err(|e| e.to_string())
}

/// Parses a wall-clock duration: a number (seconds, fractions allowed) with an optional unit
/// ms, s, m or h.
pub fn parse_wall_time(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (number, seconds_per_unit) = [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)]
        .iter()
        .find_map(|(unit, scale)| t.strip_suffix(unit).map(|n| (n, *scale)))
        .unwrap_or((t, 1.0));
    let n: f64 = number
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n > 0.0 && number.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
        .ok_or(format!("'{s}' is not a duration (e.g. 60s, 10m, 1h)"))?;
    Duration::try_from_secs_f64(n * seconds_per_unit).map_err(|_| format!("'{s}' is too long"))
}

/// Largest `-m` accepted (1 TiB).
const MAX_RAM: u64 = 1 << 40;

/// Parses a RAM size as QEMU does: plain numbers are MiB; K/M/G/T suffixes (with an
/// optional trailing `B` or `iB`) are powers of 1024.
pub fn parse_ram_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t.strip_suffix("iB").or_else(|| t.strip_suffix('B')).unwrap_or(t);
    let (num, shift) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 10),
        Some('m' | 'M') => (&t[..t.len() - 1], 20),
        Some('g' | 'G') => (&t[..t.len() - 1], 30),
        Some('t' | 'T') => (&t[..t.len() - 1], 40),
        _ => (t, 20),
    };
    let n: u64 = num.parse().map_err(|_| format!("'{s}' is not a memory size (try 512M or 2G)"))?;
    let bytes = n.checked_shl(shift).filter(|b| b >> shift == n).ok_or(format!("'{s}' is too large"))?;
    if bytes < 2 << 20 {
        return Err(format!("'{s}' is too small: the PC needs at least 2 MiB of RAM"));
    }
    if bytes > MAX_RAM {
        return Err(format!("'{s}' is too large: at most 1T of guest RAM"));
    }
    if bytes % 4096 != 0 {
        return Err(format!("'{s}' is not a multiple of 4 KiB"));
    }
    Ok(bytes)
}

/// Parses an I/O port number (decimal or 0x hex).
pub fn parse_port(s: &str) -> Result<u16, String> {
    let v = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    }
    .map_err(|_| format!("'{s}' is not a port number"))?;
    u16::try_from(v).map_err(|_| format!("port {s} is above 0xffff"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Trigger;
    use crate::qemu_args::normalize;

    fn run_args(args: &[&str]) -> Result<RunArgs, String> {
        let args = normalize(["rx86", "run"].iter().chain(args).map(|s| s.to_string()))?;
        match Cli::try_parse_from(args).map_err(|e| e.to_string())?.command {
            Command::Run(r) => Ok(*r),
            Command::Img(_) => Err("not a run".into()),
        }
    }

    #[test]
    fn qemu_smp_cpu_and_nographic() {
        assert_eq!(run_args(&["-smp", "1"]).unwrap().smp, Some(1));
        assert_eq!(run_args(&["-smp", "cpus=1,sockets=1,cores=1,threads=1"]).unwrap().smp, Some(1));
        let err = run_args(&["-smp", "2"]).unwrap_err();
        assert!(err.contains("--smp") && err.contains("rx86 emulates one CPU"), "{err}");
        assert!(run_args(&["-smp", "1,cores=2"]).unwrap_err().contains("cores=2"));
        assert!(run_args(&["-smp", "x"]).is_err());
        let r = run_args(&["-nographic"]).unwrap();
        assert!(r.nographic && r.display == DisplayArg::None);
        assert_eq!(r.to_config().unwrap().serial, [CharBackend::Mux(Box::new(CharBackend::Stdio))]);
        assert!(run_args(&["-nographic", "-display", "window"]).is_err(), "-nographic rules out a window");
        assert_eq!(
            run_args(&["-cpu", "max"]).unwrap().cpu,
            Some(crate::config::CpuChoice::Model(rx86_cpu::interp::model::CpuModel::Max))
        );
        assert!(run_args(&["-cpu", "qemu64"]).unwrap_err().contains("unknown CPU model"));
        assert!(run_args(&["-cpu", "host"]).unwrap().check().is_err(), "host needs KVM");
        assert!(run_args(&["-cpu", "host", "-enable-kvm"]).unwrap().check().is_ok());
        assert!(matches!(run_args(&["-enable-kvm"]).unwrap().accel, Some(AccelArg::Kvm)));
    }

    #[test]
    fn the_jit_is_the_default_software_engine_where_the_host_has_it() {
        let engine = |args: &[&str]| run_args(args).unwrap().to_config().unwrap().accel;
        let default = if cfg!(target_arch = "x86_64") { Accel::Jit } else { Accel::Interp };
        assert_eq!(engine(&[]), default);
        assert_eq!(engine(&["-accel", "tcg"]), default, "QEMU's TCG is its JIT");
        assert_eq!(engine(&["--accel", "interp"]), Accel::Interp);
        assert_eq!(run_args(&["--jit-check"]).unwrap().check().is_ok(), default == Accel::Jit);
        assert!(run_args(&["--accel", "interp", "--jit-threshold", "5"]).unwrap().check().is_err());
    }

    #[test]
    fn ram_sizes() {
        assert_eq!(parse_ram_size("512M"), Ok(512 << 20));
        assert_eq!(parse_ram_size("2G"), Ok(2 << 30));
        assert_eq!(parse_ram_size("64"), Ok(64 << 20));
        assert_eq!(parse_ram_size("1GiB"), Ok(1 << 30));
        assert!(parse_ram_size("0").is_err());
        assert!(parse_ram_size("1K").is_err());
        assert!(parse_ram_size("2T").is_err());
        assert!(parse_ram_size("99999999999999999999G").is_err());
        assert!(parse_ram_size("lots").is_err());
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("0xf4"), Ok(0xf4));
        assert_eq!(parse_port("1281"), Ok(1281));
        assert!(parse_port("0x10000").is_err());
    }

    #[test]
    fn qemu_style_options() {
        let a = normalize(["rx86", "run", "-kernel", "k", "-m", "64", "-no-reboot"].map(String::from)).unwrap();
        assert_eq!(a, ["rx86", "run", "--kernel", "k", "-m", "64", "--no-reboot"]);
        let cli = Cli::try_parse_from(a).unwrap();
        let Command::Run(r) = cli.command else { panic!("not a run") };
        assert_eq!(r.memory, 64 << 20);
        assert!(r.no_reboot);
        assert_eq!(r.display, DisplayArg::None);
    }

    #[test]
    fn display_screenshot_and_keys_options() {
        let args = ["rx86", "run", "-display", "none", "--screenshot", "s.png", "--text-dump", "t.txt"];
        let Command::Run(r) = Cli::try_parse_from(normalize(args.map(String::from)).unwrap()).unwrap().command else {
            panic!("not a run")
        };
        assert_eq!(r.display, DisplayArg::None);
        let capture = r.screen_capture();
        assert_eq!(capture.screenshot, Some(PathBuf::from("s.png")));
        assert_eq!(capture.text_dump, Some(PathBuf::from("t.txt")));
        let Command::Run(r) = Cli::try_parse_from(["rx86", "run", "--keys", "1s:enter"]).unwrap().command else {
            panic!("not a run")
        };
        assert_eq!(r.to_config().unwrap().keys.map(|k| k.events.len()), Some(1));
        let err = Cli::try_parse_from(["rx86", "run", "--keys", "1s:ctrl+nope"]).unwrap_err().to_string();
        assert!(err.contains("'nope' is not a key name"), "{err}");
        assert!(Cli::try_parse_from(["rx86", "run", "--display", "sdl"]).is_err());
        let Command::Run(r) = Cli::try_parse_from(["rx86", "run", "--display", "window"]).unwrap().command else {
            panic!("not a run")
        };
        assert_eq!(r.to_config().unwrap().clock, Some(ClockMode::Host), "a window runs on wall-clock time");
        let Command::Run(r) =
            Cli::try_parse_from(["rx86", "run", "--display", "window", "--clock", "virtual"]).unwrap().command
        else {
            panic!("not a run")
        };
        assert_eq!(r.to_config().unwrap().clock, Some(ClockMode::Virtual));
        let Command::Run(r) = Cli::try_parse_from(["rx86", "run", "--boot", "dc"]).unwrap().command else {
            panic!("not a run")
        };
        assert_eq!(r.boot.map(|b| b.len()), Some(2));
        let Command::Run(r) = Cli::try_parse_from(["rx86", "run", "--stop-at", "2.5s"]).unwrap().command else {
            panic!("not a run")
        };
        assert_eq!(r.to_config().unwrap().stop_at, Some(StopAt(Trigger::At(2_500_000_000))));
        assert!(Cli::try_parse_from(["rx86", "run", "--stop-at", "soon"]).is_err());
        let Command::Run(r) = Cli::try_parse_from(["rx86", "run", "--timeout", "2m"]).unwrap().command else {
            panic!("not a run")
        };
        assert_eq!(r.to_config().unwrap().timeout, Some(Duration::from_secs(120)));
    }

    #[test]
    fn wall_times() {
        assert_eq!(parse_wall_time("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_wall_time("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_wall_time("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_wall_time("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["", "0", "-5s", "soon", "1e3s", "inf", "5d"] {
            assert!(parse_wall_time(bad).is_err(), "{bad}");
        }
    }
}
