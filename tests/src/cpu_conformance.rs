//! Runner for the SingleStepTests 80286 real-mode suite (see the README beside the
//! data): loads each test's registers and RAM into the interpreter, runs the
//! instruction and the HLT after it, and compares registers, flags (masked as the suite
//! prescribes) and RAM.
//!
//! rx86 models a 386+ CPU, so forms (and single tests) where the 286 behaves
//! differently are excluded, each with its reason ([`EXCLUDED_FORMS`]).

use flate2::read::GzDecoder;
use rx86_core::platform::BasicPlatform;
use rx86_core::time::Clock;
use rx86_cpu::engine::Exit;
use rx86_cpu::interp::state::{Seg, Segment};
use rx86_cpu::interp::{Interpreter, Step};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Forms excluded from the pass rate, with the reason.
pub const EXCLUDED_FORMS: &[(&str, &str)] = &[
    ("D8", "x87 escape: the 286 test machine had no coprocessor; rx86 models a CPU with an x87"),
    ("0F", "286 system-instruction page (LOADALL, 286 SMSW/SGDT encodings) differs from 386+"),
    ("F1", "prefix/undefined on the 286; INT1 (ICEBP) on 386+"),
];

/// Tests excluded one by one: behaviour of single tests that differs between the 286
/// and the 386+ CPUs rx86 models.
pub const TEST_EXCLUSIONS: &[(Skip, &str)] = &[
    (Skip::Lock, "LOCK on a non-lockable instruction: #UD on 386+, ignored by the 286"),
    (Skip::Length, "instruction longer than 10 bytes: #GP on the 286, valid up to 15 bytes on 386+"),
    (Skip::FsGs, "MOV to/from sreg 4/5: FS/GS exist on 386+, #UD on the 286"),
    (Skip::StackOverrun, "stack-segment overrun: the 286 raises #13 (#GP), 386+ raise #12 (#SS)"),
    (
        Skip::StringWrap,
        "word string access at offset FFFFh: the 286 advances SI/DI before its #13, 386+ fault precisely",
    ),
    (Skip::PopFault, "POP m16 whose destination faults: the 286 keeps SP incremented, 386+ restore it"),
    (Skip::IdivOverflow, "IDIV quotient overflow the 286 misses (no #DE); 386+ raise #DE"),
    (Skip::AamZero, "AAM 0 (#DE): the flags the 286 microcode leaves behind are not architectural"),
    (Skip::Revoked, "listed in revocation_list.txt"),
];

/// Why a single test is excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Skip {
    /// LOCK on an instruction that is not lockable.
    Lock,
    /// More than 10 bytes.
    Length,
    /// FS or GS as a MOV segment operand.
    FsGs,
    /// SS-relative overrun: #13 on the 286, #12 on 386+.
    StackOverrun,
    /// Word string operation at offset FFFFh.
    StringWrap,
    /// POP to memory that faults.
    PopFault,
    /// IDIV overflow without #DE on the 286.
    IdivOverflow,
    /// AAM with a zero base.
    AamZero,
    /// Revoked by the suite.
    Revoked,
}

/// Registers in the order the suite names them, with their place in the CPU.
const REGS: [&str; 14] = ["ax", "bx", "cx", "dx", "cs", "ss", "ds", "es", "sp", "bp", "si", "di", "ip", "flags"];

/// FLAGS bits 12-15 are not compared in real mode (suite README).
const REAL_MODE_FLAGS_MASK: u64 = 0x0fff;

/// A HLT out of the suite's reach (above 1 MiB; tests address 20 bits), where the JIT
/// runs send exceptions whose vectors a test leaves unset.
const HLT_STUB: u64 = 0x10_0000;
/// `HLT_STUB` as an interrupt-vector entry, FFFF:0010.
const HLT_STUB_VECTOR: u32 = 0xffff_0010;

/// Steps a test may take before it is declared hung.
const MAX_STEPS: usize = 100_000;

/// Results of one form.
#[derive(Debug, Default, Clone)]
pub struct FormResult {
    /// Tests that passed.
    pub passed: usize,
    /// Tests that failed.
    pub failed: usize,
    /// Tests excluded one by one, by reason.
    pub skipped: BTreeMap<Skip, usize>,
    /// The first few failure descriptions.
    pub failures: Vec<String>,
    /// Why the whole form is excluded, if it is.
    pub excluded: Option<&'static str>,
}

/// Options for a run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only the first `limit` tests of each form.
    pub limit: Option<usize>,
    /// Only these forms (all when empty).
    pub forms: Vec<String>,
    /// Failure descriptions kept per form.
    pub keep_failures: usize,
    /// Run each test on the JIT tier (every block compiled at its first run) instead of
    /// stepping the interpreter.
    pub jit: bool,
}

/// The suite metadata: flag masks per form and revoked hashes.
pub struct Suite {
    dir: PathBuf,
    meta: Value,
    revoked: HashSet<String>,
}

fn gpr_index(name: &str) -> Option<usize> {
    Some(match name {
        "ax" => 0,
        "cx" => 1,
        "dx" => 2,
        "bx" => 3,
        "sp" => 4,
        "bp" => 5,
        "si" => 6,
        "di" => 7,
        _ => return None,
    })
}

fn seg_of(name: &str) -> Option<Seg> {
    Some(match name {
        "cs" => Seg::Cs,
        "ss" => Seg::Ss,
        "ds" => Seg::Ds,
        "es" => Seg::Es,
        _ => return None,
    })
}

impl Suite {
    /// Opens the suite in `dir` (reads `metadata.json` and `revocation_list.txt`).
    pub fn open(dir: &Path) -> Result<Suite, String> {
        let meta_text = std::fs::read_to_string(dir.join("metadata.json"))
            .map_err(|e| format!("{}: {e}", dir.join("metadata.json").display()))?;
        let meta: Value = serde_json::from_str(&meta_text).map_err(|e| format!("metadata.json: {e}"))?;
        let revoked = std::fs::read_to_string(dir.join("revocation_list.txt"))
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect();
        Ok(Suite { dir: dir.to_path_buf(), meta, revoked })
    }

    /// Form names present in the directory, sorted.
    pub fn forms(&self) -> Result<Vec<String>, String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.dir)
            .map_err(|e| format!("{}: {e}", self.dir.display()))?
            .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".jsonl.gz").map(String::from))
            .collect();
        v.sort();
        Ok(v)
    }

    /// The forms `opts` selects (all of them when `opts.forms` is empty).
    pub fn selected_forms(&self, opts: &Options) -> Result<Vec<String>, String> {
        Ok(self.forms()?.into_iter().filter(|f| opts.forms.is_empty() || opts.forms.contains(f)).collect())
    }

    /// The metadata entry of a form (`80.3` looks in `opcodes["80"].reg["3"]`).
    fn form_meta(&self, form: &str) -> Option<&Value> {
        let (op, reg) = match form.split_once('.') {
            Some((o, r)) => (o, Some(r)),
            None => (form, None),
        };
        let entry = self.meta.get("opcodes")?.get(op)?;
        match reg {
            Some(r) => entry.get("reg")?.get(r),
            None => Some(entry),
        }
    }

    /// Why a form is excluded, if it is.
    pub fn exclusion(&self, form: &str) -> Option<&'static str> {
        let op = form.split('.').next().unwrap_or(form);
        EXCLUDED_FORMS.iter().find(|(f, _)| *f == form || *f == op).map(|(_, r)| *r)
    }

    fn flags_mask(&self, form: &str) -> u64 {
        self.form_meta(form).and_then(|m| m.get("flags-mask")).and_then(Value::as_u64).unwrap_or(0xffff)
    }

    /// Runs one form.
    pub fn run_form(&self, form: &str, opts: &Options) -> Result<FormResult, String> {
        let mut res = FormResult { excluded: self.exclusion(form), ..FormResult::default() };
        let path = self.dir.join(format!("{form}.jsonl.gz"));
        let file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let reader = BufReader::new(GzDecoder::new(file));
        let platform = BasicPlatform::new(16 << 20).map_err(|e| e.to_string())?;
        let mut cpu = Interpreter::default();
        let clock = opts.jit.then(Clock::new_virtual);
        if opts.jit {
            platform.memory.write(HLT_STUB, &[0xf4]);
            cpu.set_tier(Box::new(rx86_jit::JitTier::new(4 << 20)?), 1, false);
        }
        let mask = self.flags_mask(form) & REAL_MODE_FLAGS_MASK;
        for (i, line) in reader.lines().enumerate() {
            if opts.limit.is_some_and(|l| i >= l) {
                break;
            }
            let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
            let t: Value = serde_json::from_str(&line).map_err(|e| format!("{form} line {}: {e}", i + 1))?;
            let ins = decode(&t);
            let skip = if t["hash"].as_str().is_some_and(|h| self.revoked.contains(h)) {
                Some(Skip::Revoked)
            } else {
                static_skip(&t, &ins)
            };
            if let Some(why) = skip {
                *res.skipped.entry(why).or_default() += 1;
                continue;
            }
            let (outcome, first_exception) = run_test(&mut cpu, &platform, clock.as_ref(), &t, mask);
            if let Some(why) = dynamic_skip(&t, &ins, first_exception) {
                *res.skipped.entry(why).or_default() += 1;
                continue;
            }
            match outcome {
                Ok(()) => res.passed += 1,
                Err(why) => {
                    res.failed += 1;
                    if res.failures.len() < opts.keep_failures {
                        res.failures.push(format!("{form} #{i} {}: {why}", t["name"].as_str().unwrap_or("?")));
                    }
                }
            }
        }
        Ok(res)
    }
}

fn test_bytes(t: &Value) -> Vec<u8> {
    t["bytes"].as_array().map(|a| a.iter().filter_map(|b| b.as_u64().map(|b| b as u8)).collect()).unwrap_or_default()
}

fn decode(t: &Value) -> iced_x86::Instruction {
    let bytes = test_bytes(t);
    iced_x86::Decoder::new(16, &bytes, iced_x86::DecoderOptions::NONE).decode()
}

/// Exclusions decided from the instruction alone.
fn static_skip(t: &Value, ins: &iced_x86::Instruction) -> Option<Skip> {
    let bytes = test_bytes(t);
    let prefixes = bytes.iter().take_while(|b| matches!(b, 0x26 | 0x2e | 0x36 | 0x3e | 0xf0 | 0xf2 | 0xf3));
    let locked = prefixes.clone().any(|&b| b == 0xf0);
    if locked && (ins.is_invalid() || !rx86_cpu::interp::lock_allowed(ins)) {
        return Some(Skip::Lock);
    }
    // Bytes up to the HLT the suite appends.
    if bytes.len().saturating_sub(1) > 10 {
        return Some(Skip::Length);
    }
    let op = bytes.get(prefixes.count()).copied();
    if matches!(op, Some(0x8c | 0x8e)) {
        let reg = (bytes.get(bytes.iter().position(|&b| b == op.unwrap_or(0))? + 1)? >> 3) & 7;
        if reg == 4 || reg == 5 {
            return Some(Skip::FsGs);
        }
    }
    None
}

/// Exclusions that show only in how the test ran: `ours` is the first exception this
/// CPU delivered.
fn dynamic_skip(t: &Value, ins: &iced_x86::Instruction, ours: Option<u8>) -> Option<Skip> {
    let theirs = t.get("exception").and_then(Value::as_u64);
    match (theirs, ours) {
        (Some(13), Some(12)) => Some(Skip::StackOverrun),
        (Some(13), _) if ins.is_string_instruction() => Some(Skip::StringWrap),
        (Some(13), _) if ins.mnemonic() == iced_x86::Mnemonic::Pop => Some(Skip::PopFault),
        (None, Some(0)) if ins.mnemonic() == iced_x86::Mnemonic::Idiv => Some(Skip::IdivOverflow),
        (Some(0), _) if ins.mnemonic() == iced_x86::Mnemonic::Aam && ins.immediate8() == 0 => Some(Skip::AamZero),
        _ => None,
    }
}

fn ram_pairs(v: &Value) -> impl Iterator<Item = (u64, u8)> + '_ {
    v.as_array().into_iter().flatten().filter_map(|p| Some((p.get(0)?.as_u64()?, p.get(1)?.as_u64()? as u8)))
}

fn reg_value(regs: &Value, name: &str) -> Option<u64> {
    regs.get(name).and_then(Value::as_u64)
}

/// Runs one test; `Err` describes the first mismatch. Also returns the vector of the
/// first exception the CPU delivered.
/// Runs test `t`: stepping the interpreter, or on `clock` with the CPU's tier (where the
/// last exception stands for the first: a test raises at most one).
fn run_test(
    cpu: &mut Interpreter,
    p: &BasicPlatform,
    clock: Option<&Clock>,
    t: &Value,
    flags_mask: u64,
) -> (Result<(), String>, Option<u8>) {
    let init = &t["init"];
    let fin = &t["final"];
    let mem = &p.memory;
    for (a, b) in ram_pairs(&init["ram"]) {
        mem.write(a, &[b]);
    }
    let st = cpu.state_mut();
    *st = Default::default();
    st.cr0 = 0x10;
    st.idtr.limit = 0x3ff;
    st.gdtr.limit = 0xffff;
    let regs = &init["regs"];
    for name in REGS {
        let Some(v) = reg_value(regs, name) else { return (Err(format!("init lacks {name}")), None) };
        if let Some(g) = gpr_index(name) {
            st.gpr[g] = v;
        } else if let Some(s) = seg_of(name) {
            st.seg[s as usize] = Segment::real(v as u16);
            if s == Seg::Cs {
                st.seg[s as usize].attrs = 0x9b;
            }
        } else if name == "ip" {
            st.rip = v;
        }
    }
    for s in [Seg::Fs, Seg::Gs] {
        st.seg[s as usize] = Segment::real(0);
    }
    let flags = reg_value(regs, "flags").unwrap_or(2);
    cpu.set_rflags((flags & REAL_MODE_FLAGS_MASK) | 2);
    cpu.flush_caches();
    cpu.last_exception = None;
    let (outcome, first_exception) = match clock {
        Some(clock) => {
            // An exception vector the test does not set leads to a HLT, so that the
            // first exception is the last one the run saw.
            let given: HashSet<u64> = ram_pairs(&init["ram"]).map(|(a, _)| a).collect();
            for v in 0..32u64 {
                if (4 * v..4 * v + 4).all(|a| !given.contains(&a)) {
                    mem.write(4 * v, &HLT_STUB_VECTOR.to_le_bytes());
                }
            }
            let outcome = match cpu.run_until(p, clock, clock.now_ns() + MAX_STEPS as u64) {
                Exit::Halted => Ok(()),
                e => Err(format!("engine exit {e:?}")),
            };
            (outcome, cpu.last_exception.map(|e| e.0))
        }
        None => step_to_hlt(cpu, p),
    };
    let result = outcome.and_then(|()| compare(cpu, p, t, flags_mask));
    // Leave memory clean for the next test.
    for (a, _) in ram_pairs(&init["ram"]).chain(ram_pairs(&fin["ram"])) {
        mem.write(a, &[0]);
    }
    cpu.state_mut().halted = false;
    (result, first_exception)
}

/// Steps `cpu` to its HLT; returns the outcome and the first exception raised.
fn step_to_hlt(cpu: &mut Interpreter, p: &BasicPlatform) -> (Result<(), String>, Option<u8>) {
    let mut first_exception = None;
    for steps in 0.. {
        let step = cpu.step(p);
        if first_exception.is_none() {
            first_exception = cpu.last_exception.map(|e| e.0);
        }
        match step {
            Step::Retired => {}
            Step::Halted => break,
            Step::Exit(e) => return (Err(format!("engine exit {e:?}")), first_exception),
        }
        if steps >= MAX_STEPS {
            return (Err("no HLT reached".into()), first_exception);
        }
    }
    (Ok(()), first_exception)
}

fn compare(cpu: &Interpreter, p: &BasicPlatform, t: &Value, flags_mask: u64) -> Result<(), String> {
    let init = &t["init"]["regs"];
    let fin = &t["final"]["regs"];
    let st = cpu.state();
    let mut diffs = Vec::new();
    for name in REGS {
        let want = reg_value(fin, name).or_else(|| reg_value(init, name)).unwrap_or(0);
        let (got, want) = if let Some(g) = gpr_index(name) {
            (st.gpr[g] & 0xffff, want)
        } else if let Some(s) = seg_of(name) {
            (st.seg[s as usize].selector as u64, want)
        } else if name == "ip" {
            (st.rip & 0xffff, want)
        } else {
            (cpu.rflags() & flags_mask, want & flags_mask)
        };
        if got != want {
            diffs.push(format!("{name}={got:#06x} want {want:#06x}"));
        }
    }
    let mut exception_frame = HashSet::new();
    if t.get("exception").is_some() {
        // The FLAGS image pushed by the exception holds the undefined flags of the
        // faulting instruction: compare it with the form's mask too.
        let sp = st.gpr[4] & 0xffff;
        let ss = st.seg[Seg::Ss as usize].base;
        exception_frame.insert(ss + ((sp + 4) & 0xffff));
        exception_frame.insert(ss + ((sp + 5) & 0xffff));
    }
    let mut pushed_flags = [None, None];
    for (a, want) in ram_pairs(&t["final"]["ram"]) {
        let mut b = [0u8];
        p.memory.read(a, &mut b);
        if exception_frame.contains(&a) {
            let idx = if exception_frame.iter().min() == Some(&a) { 0 } else { 1 };
            pushed_flags[idx] = Some((b[0], want));
            continue;
        }
        if b[0] != want {
            diffs.push(format!("[{a:#x}]={:#04x} want {want:#04x}", b[0]));
        }
    }
    if let [Some((gl, wl)), Some((gh, wh))] = pushed_flags {
        let got = u16::from_le_bytes([gl, gh]) as u64 & flags_mask;
        let want = u16::from_le_bytes([wl, wh]) as u64 & flags_mask;
        if got != want {
            diffs.push(format!("pushed flags={got:#06x} want {want:#06x}"));
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join(", "))
    }
}

/// Totals over eligible (non-excluded) forms and the excluded ones.
#[derive(Debug, Default)]
pub struct Totals {
    /// Passed tests in eligible forms.
    pub passed: usize,
    /// Failed tests in eligible forms.
    pub failed: usize,
    /// Tests in excluded forms plus tests skipped one by one.
    pub excluded: usize,
}

/// Formats the per-form log (one line per form, stable order) and the totals.
pub fn report(results: &BTreeMap<String, FormResult>) -> (String, Totals) {
    let mut out = String::new();
    let mut tot = Totals::default();
    for (form, r) in results {
        let total = r.passed + r.failed;
        if let Some(why) = r.excluded {
            let n = total + r.skipped.values().sum::<usize>();
            tot.excluded += n;
            out.push_str(&format!("{form:<6} excluded ({n} tests): {why}\n"));
            continue;
        }
        tot.passed += r.passed;
        tot.failed += r.failed;
        tot.excluded += r.skipped.values().sum::<usize>();
        let pct = if total == 0 { 100.0 } else { 100.0 * r.passed as f64 / total as f64 };
        out.push_str(&format!("{form:<6} {:>5}/{:<5} {pct:7.2}%", r.passed, total));
        for (why, n) in &r.skipped {
            out.push_str(&format!("  {n} excluded: {why:?}"));
        }
        out.push('\n');
    }
    (out, tot)
}
