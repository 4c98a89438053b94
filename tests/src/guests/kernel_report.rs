//! Parses what the Multiboot test kernel prints on COM1.
//!
//! The first line names the CPU mode the steps run in, `mode: 32 <description>` or
//! `mode: 64 <description>`. Result lines read `<step>: ok <details>`, `<step>: FAIL <why>` or
//! `<step>: SKIP <why>`; the command line the loader passed is echoed as `cmdline: <text>`; `info: ...` lines and anything
//! else (firmware chatter, blank lines) are ignored. A CPU exception adds a FAIL line for the step
//! that was running, and a failed power-off adds `poweroff: FAIL ...`.

/// Interrupts each timer step waits for (`tests/guests/multiboot/steps.h`).
pub const TICKS_TO_COUNT: u64 = 10;

/// The steps the kernel runs, in order; `done` carries the totals and comes last.
pub const MULTIBOOT_KERNEL_STEPS: &[&str] =
    &["multiboot", "acpi", "rtc", "pit-pic", "ioapic-lapic", "lapic-timer", "pmtimer", "done"];

/// The outcome of one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The step passed.
    Ok,
    /// The step found a fault.
    Fail,
    /// The step could not run on this machine (say, no MADT).
    Skip,
}

/// One result line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepResult {
    /// Step name, e.g. `pit-pic`.
    pub name: String,
    /// ok, FAIL or SKIP.
    pub verdict: Verdict,
    /// The rest of the line (measurements, or why it failed).
    pub details: String,
}

/// Everything the kernel reported, in output order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelReport {
    /// Result lines in the order printed (a step may appear twice if an exception followed it).
    pub steps: Vec<StepResult>,
    /// The `cmdline:` line's text, verbatim.
    pub cmdline: Option<String>,
    /// The operand size the steps ran in, from the `mode:` line: 32 or 64.
    pub mode: Option<u32>,
    /// The rest of the `mode:` line (e.g. `long mode, 4-level paging, ...`).
    pub mode_description: Option<String>,
}

impl KernelReport {
    /// Parses serial output (CR LF or LF line ends).
    pub fn parse(serial: &str) -> Self {
        let mut report = KernelReport::default();
        for line in serial.lines().map(|l| l.trim_end_matches('\r')) {
            if let Some(text) = line.strip_prefix("cmdline: ").or(if line == "cmdline:" { Some("") } else { None }) {
                report.cmdline = Some(text.to_string());
            } else if let Some((bits, description)) = parse_mode_line(line) {
                report.mode = Some(bits);
                report.mode_description = Some(description.to_string());
            } else if let Some(result) = parse_result_line(line) {
                report.steps.push(result);
            }
        }
        report
    }

    /// The last result printed for `name`.
    pub fn step(&self, name: &str) -> Option<&StepResult> {
        self.steps.iter().rev().find(|s| s.name == name)
    }

    /// Every FAIL line.
    pub fn failures(&self) -> Vec<&StepResult> {
        self.steps.iter().filter(|s| s.verdict == Verdict::Fail).collect()
    }

    /// True when every step of [`MULTIBOOT_KERNEL_STEPS`] printed ok and nothing printed FAIL.
    pub fn all_ok(&self) -> bool {
        self.failures().is_empty()
            && MULTIBOOT_KERNEL_STEPS.iter().all(|name| self.step(name).is_some_and(|s| s.verdict == Verdict::Ok))
    }

    /// The details of `step`'s last line, or an error naming the missing step.
    pub fn details(&self, step: &str) -> Result<&str, String> {
        self.step(step).map(|s| s.details.as_str()).ok_or_else(|| format!("no {step} line"))
    }

    /// Every step ok and nothing FAIL, in `mode` (32 or 64), with `cmdline` echoed and the totals
    /// line saying that nothing failed or was skipped; the error names the first problem.
    pub fn check_every_step_ok(&self, mode: u32, cmdline: &str) -> Result<(), String> {
        if self.mode != Some(mode) {
            return Err(format!("mode {:?}, expected {mode}", self.mode));
        }
        for name in MULTIBOOT_KERNEL_STEPS {
            let step = self.step(name).ok_or_else(|| format!("no {name} line"))?;
            if step.verdict != Verdict::Ok {
                return Err(format!("{name}: {:?} {}", step.verdict, step.details));
            }
        }
        if let Some(failure) = self.failures().first() {
            return Err(format!("{}: FAIL {}", failure.name, failure.details));
        }
        if self.cmdline.as_deref() != Some(cmdline) {
            return Err(format!("command line {:?}, expected {cmdline:?}", self.cmdline));
        }
        if !self.details("done")?.contains("steps_failed=0 steps_skipped=0") {
            return Err(format!("done: {}", self.details("done")?));
        }
        Ok(())
    }

    /// Checks that `step`'s details contain every one of `fields` (`name=value` words).
    pub fn check_fields(&self, step: &str, fields: &[&str]) -> Result<(), String> {
        let details = self.details(step)?;
        let words: Vec<&str> = details.split_whitespace().collect();
        match fields.iter().find(|field| !words.contains(field)) {
            Some(field) => Err(format!("{step}: expected {field} in {details:?}")),
            None => Ok(()),
        }
    }

    /// The values rx86's board defines, the same whichever engine runs the kernel, for a machine
    /// whose Multiboot `mem_upper` is `mem_upper_kib`.
    pub fn check_board_values(&self, mem_upper_kib: u64) -> Result<(), String> {
        let mem_upper = format!("mem_upper={mem_upper_kib}KiB");
        self.check_fields("multiboot", &["magic=0x2badb002", &mem_upper])?;
        // firmware/src/acpi: OEM_ID "RX86", IOAPIC_ID 1; board.md: PM1a_CNT 0x604, PM_TMR 0x608
        // with TMR_VAL_EXT (32 bit), SCI = IRQ 9, local APIC 0xFEE00000, IOAPIC 0xFEC00000, ISA
        // IRQ 0 overridden to GSI 2, \_S5 = Package(){0, 0, ...}.
        self.check_fields(
            "acpi",
            &[
                "oem=RX86",
                "pm1a_cnt=0x604",
                "pm_tmr=0x608/32bit",
                "sci=9",
                "lapic=0xfee00000",
                "cpus=1",
                "ioapic=0xfec00000",
                "ioapic_id=1",
                "irq0_gsi=2",
                "s5=0,0",
            ],
        )?;
        // The kernel waits for 10 interrupts per timer step (steps.h TICKS_TO_COUNT); on host
        // time more may have arrived by the time it looks (exactly 10 on the virtual clock).
        for step in ["pit-pic", "ioapic-lapic", "lapic-timer"] {
            self.check_at_least(step, "ticks", TICKS_TO_COUNT)?;
        }
        self.check_fields("pit-pic", &["vector=0x20"])?;
        self.check_fields("ioapic-lapic", &["ioapic_pin=2", "ioapic_id=1", "pins=24", "lapic_id=0"])?;
        self.check_fields("lapic-timer", &["vector=0x41"])?;
        self.check_fields("pmtimer", &["port=0x608", "width=32bit"])
    }

    /// Checks that `step`'s `name=value` field is a number of at least `min`.
    pub fn check_at_least(&self, step: &str, name: &str, min: u64) -> Result<(), String> {
        let details = self.details(step)?;
        let prefix = format!("{name}=");
        let value =
            details.split_whitespace().find_map(|w| w.strip_prefix(&prefix)).and_then(|v| v.parse::<u64>().ok());
        match value {
            Some(v) if v >= min => Ok(()),
            _ => Err(format!("{step}: expected {name} of at least {min} in {details:?}")),
        }
    }
}

/// `mode: <bits> <description>` with bits 32 or 64.
fn parse_mode_line(line: &str) -> Option<(u32, &str)> {
    let rest = line.strip_prefix("mode: ")?;
    let (bits, description) = rest.split_once(' ').unwrap_or((rest, ""));
    match bits {
        "32" => Some((32, description)),
        "64" => Some((64, description)),
        _ => None,
    }
}

fn parse_result_line(line: &str) -> Option<StepResult> {
    let (name, rest) = line.split_once(": ")?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return None;
    }
    let (word, details) = rest.split_once(' ').unwrap_or((rest, ""));
    let verdict = match word {
        "ok" => Verdict::Ok,
        "FAIL" => Verdict::Fail,
        "SKIP" => Verdict::Skip,
        _ => return None,
    };
    Some(StepResult { name: name.to_string(), verdict, details: details.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Output in the kernel's format (kprintf turns "\n" into "\r\n"), with firmware noise.
    const SAMPLE: &str = "SeaBIOS (version 1.16)\r\n\r\nmode: 64 long mode, 4-level paging\r\n\
        rx86 multiboot test kernel\r\n\
        multiboot: ok magic=0x2badb002 mem_lower=639KiB\r\n\
        cmdline: /k.elf hello  world\r\n\
        info: acpi isa overrides irq0->gsi2/0x0\r\n\
        acpi: ok rsdp=0xf59d0\r\n\
        rtc: SKIP no clock\r\n\
        pit-pic: FAIL no interrupt arrived while busy-polling (ticks=0)\r\n\
        ioapic-lapic: ok ticks=10\r\n\
        lapic-timer: ok ticks=10\r\n\
        pmtimer: ok port=0x608\r\n\
        pmtimer: FAIL exception 13 (#GP) error=0x0\r\n\
        done: FAIL steps_ok=5 steps_failed=2 steps_skipped=1\r\n\
        poweroff: FAIL PM1a_CNT=0x604 write 0x2000 did not power off\r\n";

    #[test]
    fn tick_counts_are_checked_as_lower_bounds() {
        let report = KernelReport::parse("pit-pic: ok ticks=12 vector=0x20\nrtc: ok ticks=9\n");
        assert_eq!(report.check_at_least("pit-pic", "ticks", 10), Ok(()));
        assert!(report.check_at_least("rtc", "ticks", 10).is_err());
        assert!(report.check_at_least("pit-pic", "vector", 10).is_err(), "not a number");
        assert!(report.check_at_least("pmtimer", "ticks", 1).is_err(), "no such step");
    }

    #[test]
    fn parses_verdicts_details_and_cmdline() {
        let report = KernelReport::parse(SAMPLE);
        assert_eq!(report.cmdline.as_deref(), Some("/k.elf hello  world"));
        assert_eq!(report.mode, Some(64));
        assert_eq!(report.mode_description.as_deref(), Some("long mode, 4-level paging"));
        let names: Vec<_> = report.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "multiboot",
                "acpi",
                "rtc",
                "pit-pic",
                "ioapic-lapic",
                "lapic-timer",
                "pmtimer",
                "pmtimer",
                "done",
                "poweroff"
            ]
        );
        let pit = report.step("pit-pic").unwrap();
        assert_eq!(pit.verdict, Verdict::Fail);
        assert_eq!(pit.details, "no interrupt arrived while busy-polling (ticks=0)");
        assert_eq!(report.step("rtc").unwrap().verdict, Verdict::Skip);
        assert_eq!(report.step("pmtimer").unwrap().verdict, Verdict::Fail, "the later line wins");
        assert_eq!(report.failures().len(), 4);
        assert!(!report.all_ok());
    }

    #[test]
    fn mode_line_of_the_32_bit_kernel() {
        let report = KernelReport::parse("\r\nmode: 32 protected mode, paging off\r\nmultiboot: ok x\r\n");
        assert_eq!(report.mode, Some(32));
        assert_eq!(report.mode_description.as_deref(), Some("protected mode, paging off"));
        assert_eq!(report.steps.len(), 1, "the mode line is not a step result");
        assert_eq!(KernelReport::parse("mode: FAIL no long mode\n").mode, None);
        assert_eq!(KernelReport::parse("mode: FAIL no long mode\n").failures().len(), 1);
    }

    #[test]
    fn all_ok_needs_every_step() {
        let mut text: String = MULTIBOOT_KERNEL_STEPS.iter().map(|s| format!("{s}: ok x\n")).collect();
        assert!(KernelReport::parse(&text).all_ok());
        text = text.replace("rtc: ok x\n", "");
        assert!(!KernelReport::parse(&text).all_ok());
    }

    #[test]
    fn ignores_lines_that_only_look_like_results() {
        let report = KernelReport::parse("Booting: ok\nacpi: okay\n[ 0.1] x: ok\ncmdline:\nmode: 16 real\n");
        assert!(report.steps.is_empty());
        assert_eq!(report.mode, None, "only 32 and 64 are modes");
        assert_eq!(report.cmdline.as_deref(), Some(""));
    }
}
