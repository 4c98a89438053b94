//! The suite's script (`tests/run-all.sh`, what CI and the README run) checks formatting and
//! lints before it builds and tests, so style drift and clippy warnings fail CI.

#[test]
fn run_all_checks_format_and_lints_before_the_tests() {
    let script = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/run-all.sh")).unwrap();
    let commands: Vec<&str> = script.lines().map(str::trim).filter(|l| l.starts_with("cargo ")).collect();
    let position = |prefix: &str| {
        commands.iter().position(|c| c.starts_with(prefix)).unwrap_or_else(|| panic!("no `{prefix}` in {commands:?}"))
    };
    let fmt = position("cargo fmt --all --check");
    let clippy = position("cargo clippy --workspace --all-targets");
    assert!(commands[clippy].ends_with("-- -D warnings"), "clippy warnings must fail: {}", commands[clippy]);
    let test = position("cargo test --workspace");
    assert!(fmt < test && clippy < test, "checks run before the tests: {commands:?}");
}
