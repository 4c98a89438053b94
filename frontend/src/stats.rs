//! The `--stats` report of the compiled tier.

use rx86_cpu::interp::TierReport;

/// One line on how the JIT tier was used in a run of `host_s` seconds.
pub fn tier_line(r: &TierReport, host_s: f64) -> String {
    let t = &r.tier;
    let compile_s = t.compile_ns as f64 / 1e9;
    let share = if host_s > 0.0 { 100.0 * compile_s / host_s } else { 0.0 };
    let mut line = format!(
        "rx86 jit: {} units compiled in {compile_s:.3} s ({share:.1}% of the run), {} declined; {} unit runs \
         ({} entered from other units, {} of them through the jump cache), {} blocks interpreted; {} compiled blocks invalidated; code memory {} KiB of {} KiB, emptied {} times",
        t.units,
        t.failures,
        r.counters.unit_runs + r.counters.chained_runs,
        r.counters.chained_runs,
        r.counters.jumped_runs,
        r.counters.interpreted_blocks,
        r.invalidated_units,
        t.code_bytes / 1024,
        t.code_capacity / 1024,
        t.flushes
    );
    if let Some(n) = r.checked_units {
        line.push_str(&format!("; lock-step checker: {n} unit runs compared"));
    }
    line
}
