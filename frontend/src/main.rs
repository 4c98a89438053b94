//! The `rx86` command.

use clap::Parser;
use rx86::cli::{Cli, Command, DisplayArg, RunArgs};
use rx86::machine::{Machine, Outcome};
use rx86::progress::StatusLine;
use rx86::screenshot::CaptureOnSignal;
use rx86::stop::{signal_name, ExternalStop, StopSignals};
use std::process::ExitCode;

fn main() -> ExitCode {
    // The interpreter logs the first line of a triple fault where it happens; the machine
    // loop reports the fault itself (once, then a count), so that line stays out by default.
    let filter = "warn,rx86_cpu::interp::interrupt=off";
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(filter)).format_timestamp(None).init();
    let args = match rx86::qemu_args::normalize(std::env::args()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("rx86: {e}");
            return ExitCode::from(OPTION_ERROR);
        }
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version print to stdout and succeed; every option error is status 1.
            return if e.use_stderr() { ExitCode::from(OPTION_ERROR) } else { ExitCode::SUCCESS };
        }
    };
    match cli.command {
        Command::Run(args) => run(&args),
        Command::Img(command) => ExitCode::from(rx86::img::run(&command)),
    }
}

/// Exit status for a bad option, as for every other error before the guest runs.
const OPTION_ERROR: u8 = 1;

/// Exit status when the run ended but its screenshot or text dump could not be written
/// (even, so it never collides with an isa-debug-exit status, which is odd).
const SCREEN_CAPTURE_FAILED: u8 = 4;

/// `rx86 run`: builds the machine, runs it (on the chosen display, or under the gdb stub
/// or the monitor), then saves the screen.
fn run(args: &RunArgs) -> ExitCode {
    if let Err(e) = args.check() {
        eprintln!("rx86: {e}");
        return ExitCode::from(OPTION_ERROR);
    }
    let config = match args.to_config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("rx86: {e}");
            return ExitCode::from(OPTION_ERROR);
        }
    };
    let mut machine = match Machine::new(config) {
        Ok(machine) => machine,
        Err(e) => {
            rx86::chardev::restore_terminal();
            eprintln!("rx86: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = run_with_stats(&mut machine, args);
    rx86::chardev::restore_terminal();
    let saved = args.screen_capture().save(machine.pc().vga());
    let status = match outcome {
        Ok(outcome) => {
            match &outcome {
                Outcome::TripleFault(diagnosis) => eprintln!("rx86: guest triple fault: {diagnosis}"),
                Outcome::Hung(why) => eprintln!("rx86: guest stopped for good: {why}"),
                Outcome::Reset => eprintln!("rx86: guest reset (--no-reboot)"),
                Outcome::External(ExternalStop::Signal(signal)) => {
                    eprintln!("rx86: {} received: the run ends as at power-off", signal_name(*signal))
                }
                Outcome::External(ExternalStop::Timeout(limit)) => {
                    eprintln!("rx86: --timeout: {:.1} s of host time passed; the run ends", limit.as_secs_f64())
                }
                Outcome::PowerOff | Outcome::DebugExit(_) | Outcome::Killed | Outcome::Stopped => {}
            }
            ExitCode::from(outcome.exit_status().clamp(0, 255) as u8)
        }
        Err(e) => {
            eprintln!("rx86: {e}");
            ExitCode::FAILURE
        }
    };
    match saved {
        Ok(()) => status,
        Err(e) => {
            eprintln!("rx86: {e}");
            ExitCode::from(SCREEN_CAPTURE_FAILED)
        }
    }
}

/// Runs the machine without a display, saving the screen whenever SIGUSR1 asks and keeping
/// the progress line (if any) up to date.
fn run_headless(
    machine: &mut Machine,
    on_signal: &CaptureOnSignal,
    status: &mut Option<StatusLine>,
) -> Result<Outcome, rx86::error::RunError> {
    loop {
        if let Some(outcome) = machine.step()? {
            return Ok(outcome);
        }
        on_signal.poll(machine.pc().vga());
        if let Some(status) = status {
            status.poll(machine);
        }
    }
}

/// Runs the machine under the gdb stub, the monitor or the display; with `--stats`,
/// reports its speed on stderr at the end.
fn run_with_stats(machine: &mut Machine, args: &RunArgs) -> Result<Outcome, String> {
    let start = std::time::Instant::now();
    if let Some(spec) = &args.trace {
        rx86::trace::install(machine, spec.clone())?;
    }
    let on_signal = CaptureOnSignal::register(args.screen_capture())
        .map_err(|e| format!("cannot install the SIGUSR1 handler: {e}"))?;
    machine.stop_on_signals(StopSignals::install().map_err(|e| format!("cannot install the signal handlers: {e}"))?);
    let outcome = match (args.gdb_options(), args.display) {
        (Some(gdb), _) => rx86::gdb::serve(machine, &gdb).map_err(|e| e.to_string()),
        (None, DisplayArg::None) => {
            let mut status = StatusLine::for_terminal(machine, args.quiet);
            let outcome = run_headless(machine, &on_signal, &mut status).map_err(|e| e.to_string());
            if let Some(status) = &status {
                status.clear();
            }
            outcome
        }
        #[cfg(feature = "window")]
        (None, DisplayArg::Window) => {
            rx86::window::run(machine, &mut |m: &Machine| on_signal.poll(m.pc().vga())).map_err(|e| e.to_string())
        }
        #[cfg(not(feature = "window"))]
        (None, DisplayArg::Window) => {
            Err("this rx86 was built without the `window` feature; use --display none".into())
        }
    };
    if args.stats {
        let host = start.elapsed().as_secs_f64();
        let guest = machine.clock().now_ns() as f64 / 1e9;
        let rtc = machine.pc().rtc_start();
        match machine.instructions_retired() {
            Some(n) => eprintln!(
                "rx86 stats: {n} instructions retired in {host:.3} s host time ({:.1} MIPS), {guest:.3} s guest time, \
                 RTC started at {rtc}",
                n as f64 / host / 1e6
            ),
            None => eprintln!("rx86 stats: {host:.3} s host time, {guest:.3} s guest time, RTC started at {rtc}"),
        }
        if let Some(r) = machine.tier_report() {
            eprintln!("{}", rx86::stats::tier_line(&r, host));
        }
    }
    outcome
}
