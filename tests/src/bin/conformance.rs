//! `conformance DIR [--limit N] [--form F]... [--log FILE] [--failures N] [--jit]`: runs
//! the SingleStepTests 80286 real-mode suite in DIR on the interpreter (or, with `--jit`,
//! on the JIT tier), prints one line per form and ends with `N passed, M failed` over the
//! eligible forms.

#[path = "../cpu_conformance.rs"]
mod cpu_conformance;

use cpu_conformance::{report, Options, Suite, EXCLUDED_FORMS, TEST_EXCLUSIONS};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn usage() -> ! {
    eprintln!("usage: conformance DIR [--limit N] [--form FORM]... [--log FILE] [--failures N] [--jit]");
    std::process::exit(2);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut opts = Options { keep_failures: 3, ..Options::default() };
    let mut log_file: Option<PathBuf> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--limit" => opts.limit = Some(args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| usage())),
            "--form" => opts.forms.push(args.next().unwrap_or_else(|| usage())),
            "--log" => log_file = Some(args.next().unwrap_or_else(|| usage()).into()),
            "--failures" => opts.keep_failures = args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| usage()),
            "--jit" => opts.jit = true,
            "-h" | "--help" => usage(),
            _ if dir.is_none() => dir = Some(PathBuf::from(a)),
            _ => usage(),
        }
    }
    let dir = dir.unwrap_or_else(|| usage());
    let suite = Suite::open(&dir).unwrap_or_else(|e| {
        eprintln!("conformance: {e}");
        std::process::exit(2);
    });
    let forms = suite.selected_forms(&opts).unwrap_or_else(|e| {
        eprintln!("conformance: {e}");
        std::process::exit(2);
    });
    let mut results = BTreeMap::new();
    for form in &forms {
        match suite.run_form(form, &opts) {
            Ok(r) => {
                for f in &r.failures {
                    eprintln!("FAIL {f}");
                }
                results.insert(form.clone(), r);
            }
            Err(e) => {
                eprintln!("conformance: {e}");
                std::process::exit(2);
            }
        }
    }
    let (text, tot) = report(&results);
    print!("{text}");
    println!("excluded forms:");
    for (f, why) in EXCLUDED_FORMS {
        println!("  {f}: {why}");
    }
    println!("tests excluded one by one:");
    for (k, why) in TEST_EXCLUSIONS {
        println!("  {k:?}: {why}");
    }
    let eligible = tot.passed + tot.failed;
    let pct = if eligible == 0 { 100.0 } else { 100.0 * tot.passed as f64 / eligible as f64 };
    println!("eligible pass rate {pct:.3}% ({} tests excluded)", tot.excluded);
    if let Some(path) = log_file {
        let header = format!(
            "# rx86 interpreter on SingleStepTests 80286 real mode ({}).\n# form passed/total percent\n",
            opts.limit.map_or("all tests".to_string(), |l| format!("first {l} tests per form"))
        );
        let body = format!(
            "{header}{text}# eligible: {} passed, {} failed ({pct:.3}%), {} excluded\n",
            tot.passed, tot.failed, tot.excluded
        );
        if let Err(e) = std::fs::write(&path, body) {
            eprintln!("conformance: {}: {e}", path.display());
        }
    }
    println!("{} passed, {} failed", tot.passed, tot.failed);
}
