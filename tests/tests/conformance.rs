//! The first 100 tests of every form of the 80286 real-mode suite, run on the
//! interpreter: every eligible form must pass them all. The `conformance` binary runs
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
    let Some(dir) = suite_dir() else {
        eprintln!("80286-real suite not found beside the repository; set RX86_CONFORMANCE_DIR");
        return;
    };
    let suite = Suite::open(&dir).expect("suite metadata");
    let opts = Options { limit: Some(100), keep_failures: 3, ..Options::default() };
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
    assert!(totals.passed > 30_000, "only {} tests ran", totals.passed);
    assert!(failures.is_empty(), "conformance failures:\n{}", failures.join("\n"));
    assert_eq!(totals.failed, 0);
}
