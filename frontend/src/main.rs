//! The `rx86` command.

use clap::Parser;
use rx86::cli::{normalize_args, Cli, Command, RunArgs};
use rx86::machine::{Machine, Outcome};
use std::process::ExitCode;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).format_timestamp(None).init();
    let cli = match Cli::try_parse_from(normalize_args(std::env::args())) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    match cli.command {
        Command::Run(args) => match Machine::new(args.to_config())
            .map_err(|e| e.to_string())
            .and_then(|mut m| run_with_stats(&mut m, &args))
        {
            Ok(outcome) => {
                match &outcome {
                    Outcome::TripleFault(diagnosis) => eprintln!("rx86: guest triple fault: {diagnosis}"),
                    Outcome::Hung(why) => eprintln!("rx86: guest stopped for good: {why}"),
                    Outcome::Reset => eprintln!("rx86: guest reset (--no-reboot)"),
                    Outcome::PowerOff | Outcome::DebugExit(_) | Outcome::Killed => {}
                }
                ExitCode::from(outcome.exit_status().clamp(0, 255) as u8)
            }
            Err(e) => {
                eprintln!("rx86: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Runs the machine (under the gdb stub when asked); with `--stats`, reports its speed
/// on stderr at the end.
fn run_with_stats(machine: &mut Machine, args: &RunArgs) -> Result<Outcome, String> {
    let start = std::time::Instant::now();
    if args.monitor.is_some() && args.serial == rx86::config::SerialBackend::Stdio {
        return Err("--monitor stdio reads standard input: give --serial file:PATH or --serial none".into());
    }
    if let Some(spec) = &args.trace {
        rx86::trace::install(machine, spec.clone())?;
    }
    let outcome = match (args.gdb_options(), &args.monitor) {
        (Some(gdb), _) => rx86::gdb::serve(machine, &gdb).map_err(|e| e.to_string()),
        (None, Some(_)) => rx86::monitor::run_with_monitor(machine).map_err(|e| e.to_string()),
        (None, None) => machine.run().map_err(|e| e.to_string()),
    };
    if args.stats {
        let host = start.elapsed().as_secs_f64();
        let guest = machine.clock().now_ns() as f64 / 1e9;
        match machine.instructions_retired() {
            Some(n) => eprintln!(
                "rx86 stats: {n} instructions retired in {host:.3} s host time ({:.1} MIPS), {guest:.3} s guest time",
                n as f64 / host / 1e6
            ),
            None => eprintln!("rx86 stats: {host:.3} s host time, {guest:.3} s guest time"),
        }
    }
    outcome
}
