//! The first 100 tests of every form of the 80286 real-mode suite, run on the
//! interpreter, and the first 15 on the JIT tier: every eligible form must pass them all. The `conformance` binary runs
//! the whole suite and writes `tests/conformance/80286-real.txt`.

#[path = "../src/cpu_conformance.rs"]
mod cpu_conformance;

use cpu_conformance::{report, Options, Suite, TEST_EXCLUSIONS};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The suite lives in `shared/` beside the repository (or where RX86_CONFORMANCE_DIR says).
fn suite_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("RX86_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/80286-real"));
    dir.join("metadata.json").exists().then_some(dir)
}

#[test]
fn real_mode_single_step_subset_passes() {
    check(Options { limit: Some(100), keep_failures: 3, ..Options::default() }, 30_000);
}

/// Each test's code compiled at its first run: the inline register, memory, stack and
/// branch lowerings of 16-bit code against the suite's hardware results.
#[test]
fn real_mode_single_step_subset_passes_on_the_jit() {
    check(Options { limit: Some(15), keep_failures: 3, jit: true, ..Options::default() }, 4_000);
}

/// Runs the forms `opts` selects and asserts that more than `at_least` tests passed and none failed.
fn check(opts: Options, at_least: usize) {
    let Some(dir) = suite_dir() else {
        eprintln!("80286-real suite not found beside the repository; set RX86_CONFORMANCE_DIR");
        return;
    };
    let suite = Suite::open(&dir).expect("suite metadata");
    let mut results = BTreeMap::new();
    let mut failures = Vec::new();
    for form in suite.selected_forms(&opts).expect("suite directory") {
        let r = suite.run_form(&form, &opts).expect("readable form");
        if r.excluded.is_none() {
            failures.extend(r.failures.iter().cloned());
        }
        for why in r.skipped.keys() {
            assert!(TEST_EXCLUSIONS.iter().any(|(k, _)| k == why), "{why:?} has no documented reason");
        }
        results.insert(form, r);
    }
    let (_, totals) = report(&results);
    assert!(totals.passed > at_least, "only {} tests ran", totals.passed);
    assert!(failures.is_empty(), "conformance failures:\n{}", failures.join("\n"));
    assert_eq!(totals.failed, 0);
}
