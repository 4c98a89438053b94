//! QEMU's spellings on rx86's command line, rewritten before clap parses it.
//!
//! QEMU spells long options with one dash (`-kernel`, `-smp`); clap would read `-smp 2` as the
//! short options `-s -m p`. So every argument is looked at first:
//!
//! - a QEMU option rx86 also has becomes rx86's double-dash form (`-kernel` → `--kernel`,
//!   `-smp` → `--smp`, `-nographic` → `--nographic`);
//! - a QEMU option rx86 answers another way is translated (`-enable-kvm` → `--accel kvm`,
//!   `-device isa-debug-exit,iobase=P` → `--debug-exit P`, `-machine pc,accel=kvm` →
//!   `--accel kvm`, `-net none` and `-monitor none` dropped, `-nic` → `--nic`);
//! - a QEMU option rx86 has no feature for (`-netdev`, other `-device`s) is refused with one
//!   line naming it and what rx86 offers instead;
//! - any other single-dash word that is not a cluster of rx86's short options is refused as
//!   an unknown option rather than misread letter by letter.

/// QEMU options that rx86 takes under the same name (with two dashes).
const SAME_NAME: &[&str] = &[
    "kernel",
    "initrd",
    "append",
    "serial",
    "no-reboot",
    "accel",
    "memory",
    "hda",
    "hdb",
    "hdc",
    "hdd",
    "cdrom",
    "fda",
    "fdb",
    "drive",
    "boot",
    "snapshot",
    "bios",
    "gdb",
    "display",
    "monitor",
    "smp",
    "cpu",
    "nographic",
    "rtc",
    "icount",
    "chardev",
    "mon",
    "help",
];

/// What the network options rx86 does not take get.
const NIC_ONLY: &str = "rx86 sets up its network with -nic user[,model=e1000|virtio-net-pci|ne2k_pci][,hostfwd=...], \
                        -nic tap,ifname=NAME[,model=...] or -nic none, not with -netdev/-device pairs";

/// Rewrites QEMU spellings in `args` (program name first) into rx86's; `Err` is the one-line
/// message for an option rx86 cannot take.
pub fn normalize(args: impl IntoIterator<Item = String>) -> Result<Vec<String>, String> {
    let mut args = args.into_iter().peekable();
    let mut out: Vec<String> = args.next().into_iter().collect();
    while let Some(arg) = args.next() {
        if arg == "--" {
            out.push(arg);
            out.extend(args.by_ref());
            break;
        }
        let Some(name) = option_name(&arg) else {
            out.push(arg);
            continue;
        };
        match name {
            "enable-kvm" => out.extend(["--accel".to_string(), "kvm".to_string()]),
            "nic" => out.push("--nic".to_string()),
            "net" => match args.next().as_deref() {
                Some("none") => {}
                _ => return Err(format!("-net: {NIC_ONLY}")),
            },
            "netdev" => return Err(format!("-netdev: {NIC_ONLY}")),
            "monitor" if args.peek().is_some_and(|v| v == "none") => {
                args.next();
            }
            "machine" | "M" => {
                let value = args.next().ok_or("-machine needs a machine type (rx86 has pc)")?;
                out.extend(machine_options(&value)?);
            }
            "device" => {
                let value = args.next().ok_or("-device needs a device name")?;
                out.extend(["--debug-exit".to_string(), debug_exit_port(&value)?]);
            }
            _ if SAME_NAME.contains(&name) => out.push(format!("--{name}")),
            _ if arg.starts_with("--") || is_short_cluster(name) => out.push(arg),
            _ => return Err(format!("unknown option '{arg}' (see rx86 run --help for the options rx86 takes)")),
        }
    }
    Ok(out)
}

/// The option name of a single- or double-dash argument (`-smp`, `--enable-kvm`); `None`
/// for values and for `--name=value` forms, which pass through unchanged.
fn option_name(arg: &str) -> Option<&str> {
    let rest = arg.strip_prefix('-')?;
    match rest.strip_prefix('-') {
        Some(long) if !long.contains('=') => Some(long),
        Some(_) => None,
        None if rest.is_empty() => None,
        None => Some(rest),
    }
}

/// True for what clap reads as rx86's own short options: one letter (`-m`, `-s`), a
/// cluster of flags (`-sS`), or `-m` with its value attached (`-m512M`, `-m=2G`).
fn is_short_cluster(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        _ if name.len() == 1 => true,
        Some('m') => chars.next().is_some_and(|c| c.is_ascii_digit() || c == '='),
        _ => name.chars().all(|c| matches!(c, 's' | 'S' | 'h')),
    }
}

/// QEMU's `-machine [type=]pc[,accel=kvm|tcg]` as rx86 options: the board is QEMU's `pc`
/// (i440FX + PIIX3), so only that type is taken.
fn machine_options(spec: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (i, part) in spec.split(',').enumerate() {
        let (key, value) = match part.split_once('=') {
            Some(kv) => kv,
            None if i == 0 => ("type", part),
            None => return Err(format!("-machine: '{part}' is not key=value")),
        };
        match key {
            "type" if value == "pc" || value.starts_with("pc-i440fx") => {}
            "type" => {
                return Err(format!(
                    "-machine {value}: rx86's board is the i440FX PC (QEMU's 'pc'); use -machine pc or leave it out"
                ))
            }
            "accel" => out.extend(["--accel".to_string(), value.to_string()]),
            _ => return Err(format!("-machine: rx86's PC has no '{key}' property (type=pc and accel= only)")),
        }
    }
    Ok(out)
}

/// QEMU's `-device isa-debug-exit[,iobase=P][,iosize=N]` as the port for `--debug-exit`;
/// any other device is refused.
fn debug_exit_port(spec: &str) -> Result<String, String> {
    let mut parts = spec.split(',');
    let device = parts.next().unwrap_or_default();
    if device != "isa-debug-exit" {
        return Err(format!(
            "-device {device}: rx86's board is a fixed PC (IDE, floppy, VGA, serial ports; no network or USB); \
             drives attach with --drive, --hda or --cdrom, and isa-debug-exit is the one device -device adds"
        ));
    }
    let mut port = "0x501".to_string();
    for part in parts {
        match part.split_once('=') {
            Some(("iobase", value)) => port = value.to_string(),
            Some(("iosize", _)) => {}
            _ => return Err(format!("-device isa-debug-exit: unknown property '{part}' (iobase=PORT, iosize=N)")),
        }
    }
    Ok(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Result<Vec<String>, String> {
        normalize(["rx86", "run"].iter().chain(args).map(|s| s.to_string()))
    }

    #[test]
    fn single_dash_long_options_get_two_dashes() {
        let a = norm(&["-kernel", "k", "-smp", "1", "-nographic", "-cpu", "max", "-rtc", "base=utc"]).unwrap();
        assert_eq!(a[2..], ["--kernel", "k", "--smp", "1", "--nographic", "--cpu", "max", "--rtc", "base=utc"]);
    }

    #[test]
    fn short_options_and_values_pass_through() {
        let a = norm(&["-m", "64", "-m512M", "-sS", "-s", "--append", "x", "--trace=insn", "-", "--", "-smp"]);
        assert_eq!(
            a.unwrap()[2..],
            ["-m", "64", "-m512M", "-sS", "-s", "--append", "x", "--trace=insn", "-", "--", "-smp"]
        );
    }

    #[test]
    fn qemu_options_rx86_answers_another_way_are_translated() {
        assert_eq!(norm(&["-enable-kvm"]).unwrap()[2..], ["--accel", "kvm"]);
        assert_eq!(norm(&["--enable-kvm"]).unwrap()[2..], ["--accel", "kvm"]);
        assert_eq!(norm(&["-net", "none"]).unwrap().len(), 2);
        assert_eq!(norm(&["-nic", "user,model=e1000"]).unwrap()[2..], ["--nic", "user,model=e1000"]);
        let a = norm(&["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]).unwrap();
        assert_eq!(a[2..], ["--debug-exit", "0xf4"]);
        assert_eq!(norm(&["-device", "isa-debug-exit"]).unwrap()[2..], ["--debug-exit", "0x501"]);
        assert_eq!(norm(&["-machine", "pc", "-monitor", "none"]).unwrap().len(), 2);
        assert_eq!(norm(&["-M", "pc-i440fx-7.2,accel=kvm"]).unwrap()[2..], ["--accel", "kvm"]);
        assert_eq!(norm(&["-monitor", "stdio"]).unwrap()[2..], ["--monitor", "stdio"]);
    }

    #[test]
    fn options_without_a_feature_are_refused_by_name() {
        for (args, want) in [
            (&["-netdev", "user,id=n0"][..], "-netdev: rx86 sets up its network with -nic user"),
            (&["-net", "user"][..], "-net: rx86 sets up its network with -nic user"),
            (&["-device", "e1000"][..], "-device e1000: rx86's board is a fixed PC"),
            (&["-device", "isa-debug-exit,bogus=1"][..], "unknown property 'bogus=1'"),
            (&["-machine", "q35"][..], "-machine q35: rx86's board is the i440FX PC"),
            (&["-machine", "pc,smm=off"][..], "no 'smm' property"),
            (&["-frobnicate"][..], "unknown option '-frobnicate'"),
        ] {
            let err = norm(args).unwrap_err();
            assert!(err.contains(want), "{args:?}: {err}");
        }
    }
}
