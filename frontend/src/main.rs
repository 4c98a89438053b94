//! The `rx86` command.

use clap::Parser;
use rx86::cli::{normalize_args, Cli, Command};
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
        Command::Run(args) => match Machine::new(args.to_config()).and_then(|mut m| m.run()) {
            Ok(outcome) => {
                match &outcome {
                    Outcome::TripleFault(diagnosis) => eprintln!("rx86: guest triple fault: {diagnosis}"),
                    Outcome::Hung(why) => eprintln!("rx86: guest stopped for good: {why}"),
                    Outcome::Reset => eprintln!("rx86: guest reset (--no-reboot)"),
                    Outcome::PowerOff | Outcome::DebugExit(_) => {}
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
