//! Comparison of the two outcomes, shrinking of a failing case and the reproducer text.

use super::emulated::EmulatedCpu;
use super::gen::{flag, Case};
use super::{Fault, Outcome, Reference};
use iced_x86::{Formatter, IntelFormatter};
use std::fmt::Write;

/// A divergence: the two outcomes and the flags that were masked.
#[derive(Debug, Clone)]
pub struct Divergence {
    /// What the host CPU did.
    pub native: Outcome,
    /// What the interpreter did.
    pub emulated: Outcome,
    /// Flags left undefined at the point compared (ignored).
    pub undefined: u64,
    /// The differences, one per line.
    pub what: Vec<String>,
}

/// Runs `case` on both CPUs. `Ok(Some(fault))` when both raised the same exception,
/// `Ok(None)` when both finished alike, `Err` on a divergence.
pub fn check(case: &Case, native: &mut dyn Reference, emu: &mut EmulatedCpu) -> Result<Option<Fault>, Box<Divergence>> {
    let enc = case.encode().expect("generated cases encode");
    let masks = case.undefined_flags().expect("generated cases read no undefined flag");
    let n = native.run(case, &enc.bytes, enc.end);
    let e = emu.run(case, &enc.bytes, enc.end);
    let at = |rip: u64| enc.starts.iter().position(|&s| s == rip).map_or(masks[masks.len() - 1], |i| masks[i]);
    let undefined = at(n.rip) | at(e.rip);
    let compared = flag::COMPARED & !undefined;
    let mut what = Vec::new();
    if let Some(s) = &n.stopped {
        what.push(format!("reference stopped: {s}"));
    }
    if let Some(s) = &e.stopped {
        what.push(format!("interpreter stopped: {s}"));
    }
    if n.fault != e.fault {
        what.push(format!("exception: host {:?}, interpreter {:?}", n.fault, e.fault));
    }
    if n.rip != e.rip {
        what.push(format!("rip: host {:#x}, interpreter {:#x}", n.rip, e.rip));
    }
    for (i, (a, b)) in n.gpr.iter().zip(&e.gpr).enumerate() {
        if a != b {
            what.push(format!("{}: host {a:#x}, interpreter {b:#x}", GPR_NAMES[i]));
        }
    }
    if (n.rflags ^ e.rflags) & compared != 0 {
        what.push(format!(
            "rflags: host {:#x}, interpreter {:#x} (differing {}; undefined {} masked)",
            n.rflags & compared,
            e.rflags & compared,
            flag_names((n.rflags ^ e.rflags) & compared),
            flag_names(undefined)
        ));
    }
    for (i, (a, b)) in n.data.iter().zip(&e.data).enumerate() {
        if a != b {
            what.push(format!(
                "data[{:#x}] (at {:#x}): host {a:#04x}, interpreter {b:#04x}",
                i,
                case.mode.data() + i as u64
            ));
            if what.len() > 24 {
                break;
            }
        }
    }
    if what.is_empty() {
        Ok(n.fault)
    } else {
        Err(Box::new(Divergence { native: n, emulated: e, undefined, what }))
    }
}

/// Removes units (then trailing instructions of the last unit's setup are kept) while
/// the case still diverges: the smallest sequence that shows the bug.
pub fn shrink(mut case: Case, native: &mut dyn Reference, emu: &mut EmulatedCpu) -> Case {
    let mut i = 0;
    while i < case.units.len() && case.units.len() > 1 {
        let mut smaller = case.clone();
        smaller.units.remove(i);
        let valid = smaller.undefined_flags().is_some() && smaller.encode().is_ok();
        if valid && check(&smaller, native, emu).is_err() {
            case = smaller;
        } else {
            i += 1;
        }
    }
    case
}

/// Names of RAX..R15.
const GPR_NAMES: [&str; 16] =
    ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];

/// Names of the flags set in `f`.
fn flag_names(f: u64) -> String {
    let names = [
        (flag::CF, "CF"),
        (flag::PF, "PF"),
        (flag::AF, "AF"),
        (flag::ZF, "ZF"),
        (flag::SF, "SF"),
        (flag::DF, "DF"),
        (flag::OF, "OF"),
    ];
    let v: Vec<&str> = names.iter().filter(|(b, _)| f & b != 0).map(|(_, n)| *n).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(" ")
    }
}

/// The reproducer of a diverging case: bytes, disassembly, initial state, both results.
pub fn reproducer(case: &Case, native: &mut dyn Reference, emu: &mut EmulatedCpu) -> String {
    let mut s = String::new();
    let enc = match case.encode() {
        Ok(e) => e,
        Err(e) => return format!("unencodable case: {e}"),
    };
    let _ = writeln!(s, "DIVERGENCE ({} mode)", case.mode);
    let _ = writeln!(s, "bytes: {}", hex(&enc.bytes));
    let mut fmt = IntelFormatter::new();
    let mut text = String::new();
    let ends = enc.starts.iter().skip(1).chain(std::iter::once(&enc.end));
    // Disassemble what was encoded (branch targets are only filled in by the encoder).
    let mut decoder = iced_x86::Decoder::with_ip(case.mode.bitness(), &enc.bytes, case.mode.code(), 0);
    for (start, end) in enc.starts.iter().zip(ends) {
        let ins = decoder.decode();
        text.clear();
        fmt.format(&ins, &mut text);
        let range = (start - case.mode.code()) as usize..(end - case.mode.code()) as usize;
        let bytes = enc.bytes.get(range).unwrap_or(&[]);
        let _ = writeln!(s, "  {start:#x}: {:<32} {text}", hex(bytes));
    }
    let _ = writeln!(s, "initial rflags {:#x}", case.rflags);
    for (i, v) in case.gpr.iter().enumerate().take(if case.mode == super::Mode::Long64 { 16 } else { 8 }) {
        let _ = write!(s, "{}={v:#x}{}", GPR_NAMES[i], if i % 4 == 3 { "\n" } else { " " });
    }
    let touched: Vec<usize> = case
        .instructions()
        .filter(|i| i.op_kinds().any(|k| k == iced_x86::OpKind::Memory) && i.mnemonic() != iced_x86::Mnemonic::Lea)
        .map(|i| (i.memory_displacement64().wrapping_sub(case.mode.data())) as usize)
        .filter(|&o| o < case.data.len())
        .collect();
    for o in touched {
        let end = (o + 16).min(case.data.len());
        let _ = writeln!(s, "data[{o:#x}..]: {}", hex(&case.data[o..end]));
    }
    match check(case, native, emu) {
        Ok(_) => {
            let _ = writeln!(s, "(the shrunk case no longer diverges)");
        }
        Err(d) => {
            for w in &d.what {
                let _ = writeln!(s, "  {w}");
            }
            let _ =
                writeln!(s, "host: rip={:#x} rflags={:#x} fault={:?}", d.native.rip, d.native.rflags, d.native.fault);
            let _ = writeln!(
                s,
                "interpreter: rip={:#x} rflags={:#x} fault={:?}",
                d.emulated.rip, d.emulated.rflags, d.emulated.fault
            );
        }
    }
    s
}

/// Bytes as space-separated hex.
fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ")
}
