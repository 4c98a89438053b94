//! Runner for the SingleStepTests 80286 real-mode suite (see the README beside the
//! data): loads each test's registers and RAM into the interpreter, runs the
//! instruction and the HLT after it, and compares registers, flags (masked as the suite
//! prescribes) and RAM.
//!
//! rx86 models a 386+ CPU, so forms (and single tests) where the 286 behaves
//! differently are excluded, each with its reason ([`EXCLUDED_FORMS`]).

use flate2::read::GzDecoder;
use rx86_core::platform::BasicPlatform;
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
    ("D6", "SALC is undocumented; kept out of the pass rate although rx86 implements it"),
    ("F1", "prefix/undefined on the 286; INT1 (ICEBP) on 386+"),
];

/// Per-test exclusion: a LOCK prefix on an instruction that is not lockable is
/// ignored by the 286 but raises #UD on the 386 and later.
pub const LOCK_REASON: &str = "LOCK on a non-lockable instruction (#UD on 386+, ignored by the 286)";

/// Registers in the order the suite names them, with their place in the CPU.
const REGS: [&str; 14] = ["ax", "bx", "cx", "dx", "cs", "ss", "ds", "es", "sp", "bp", "si", "di", "ip", "flags"];

/// FLAGS bits 12-15 are not compared in real mode (suite README).
const REAL_MODE_FLAGS_MASK: u64 = 0x0fff;

/// Steps a test may take before it is declared hung.
const MAX_STEPS: usize = 100_000;

/// Results of one form.
#[derive(Debug, Default, Clone)]
pub struct FormResult {
    /// Tests that passed.
    pub passed: usize,
    /// Tests that failed.
    pub failed: usize,
    /// Tests skipped (revoked, or excluded one by one).
    pub skipped: usize,
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
        let mask = self.flags_mask(form) & REAL_MODE_FLAGS_MASK;
        for (i, line) in reader.lines().enumerate() {
            if opts.limit.is_some_and(|l| i >= l) {
                break;
            }
            let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
            let t: Value = serde_json::from_str(&line).map_err(|e| format!("{form} line {}: {e}", i + 1))?;
            if t["hash"].as_str().is_some_and(|h| self.revoked.contains(h)) || lock_is_ud(&t) {
                res.skipped += 1;
                continue;
            }
            match run_test(&mut cpu, &platform, &t, mask) {
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

/// True when the test's instruction has a LOCK prefix that a 386+ rejects with #UD.
fn lock_is_ud(t: &Value) -> bool {
    let bytes: Vec<u8> =
        t["bytes"].as_array().map(|a| a.iter().filter_map(|b| b.as_u64().map(|b| b as u8)).collect()).unwrap_or_default();
    let locked = bytes.iter().take_while(|b| matches!(b, 0x26 | 0x2e | 0x36 | 0x3e | 0xf0 | 0xf2 | 0xf3)).any(|&b| b == 0xf0);
    let mut d = iced_x86::Decoder::new(16, &bytes, iced_x86::DecoderOptions::NONE);
    let ins = d.decode();
    locked && (ins.is_invalid() || !rx86_cpu::interp::lock_allowed(&ins))
}

fn ram_pairs(v: &Value) -> impl Iterator<Item = (u64, u8)> + '_ {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p.get(0)?.as_u64()?, p.get(1)?.as_u64()? as u8)))
}

fn reg_value(regs: &Value, name: &str) -> Option<u64> {
    regs.get(name).and_then(Value::as_u64)
}

/// Runs one test; `Err` describes the first mismatch.
fn run_test(cpu: &mut Interpreter, p: &BasicPlatform, t: &Value, flags_mask: u64) -> Result<(), String> {
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
        let v = reg_value(regs, name).ok_or_else(|| format!("init lacks {name}"))?;
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
    let mut outcome = Ok(());
    for steps in 0.. {
        match cpu.step(p) {
            Step::Retired => {}
            Step::Halted => break,
            Step::Exit(e) => {
                outcome = Err(format!("engine exit {e:?}"));
                break;
            }
        }
        if steps >= MAX_STEPS {
            outcome = Err("no HLT reached".into());
            break;
        }
    }
    let result = outcome.and_then(|()| compare(cpu, p, t, flags_mask));
    // Leave memory clean for the next test.
    for (a, _) in ram_pairs(&init["ram"]).chain(ram_pairs(&fin["ram"])) {
        mem.write(a, &[0]);
    }
    cpu.state_mut().halted = false;
    result
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
            tot.excluded += total + r.skipped;
            out.push_str(&format!("{form:<6} excluded ({} tests): {why}\n", total + r.skipped));
            continue;
        }
        tot.passed += r.passed;
        tot.failed += r.failed;
        tot.excluded += r.skipped;
        let pct = if total == 0 { 100.0 } else { 100.0 * r.passed as f64 / total as f64 };
        out.push_str(&format!("{form:<6} {:>5}/{:<5} {pct:7.2}%", r.passed, total));
        if r.skipped > 0 {
            out.push_str(&format!("  ({} skipped: {LOCK_REASON})", r.skipped));
        }
        out.push('\n');
    }
    (out, tot)
}
