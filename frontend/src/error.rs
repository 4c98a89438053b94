//! Errors that end an rx86 run, each with the one-line message the user sees.

use std::path::PathBuf;
use thiserror::Error;

/// Why a machine could not be built or run.
#[derive(Debug, Error)]
pub enum RunError {
    /// A file named on the command line cannot be read.
    #[error("cannot read {what} '{path}': {source}")]
    ReadFile {
        /// What the file was for ("kernel", "initrd").
        what: &'static str,
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Guest RAM size or layout rejected.
    #[error("invalid memory size: {0}")]
    Memory(String),
    /// The kernel or initrd could not be loaded.
    #[error("cannot load kernel: {0}")]
    Load(String),
    /// The board could not be assembled.
    #[error("cannot build the machine: {0}")]
    Board(String),
    /// The requested engine cannot run here.
    #[error("--accel {accel}: {reason}")]
    Accel {
        /// The engine asked for.
        accel: &'static str,
        /// Why it is unavailable.
        reason: String,
    },
    /// A serial port's or the monitor's character device could not be opened.
    #[error(transparent)]
    Chardev(#[from] crate::chardev::ChardevError),
    /// The engine failed on the host side.
    #[error("engine failure: {0}")]
    Engine(String),
    /// The guest did something rx86 does not emulate.
    #[error("unsupported guest behaviour: {0}")]
    Unsupported(String),
    /// The network backend could not be set up.
    #[error("cannot set up the network: {0}")]
    Network(String),
    /// A disk image could not be opened or placed.
    #[error("cannot attach drive: {0}")]
    Drive(String),
    /// The BIOS or a firmware image could not be set up.
    #[error("firmware: {0}")]
    Firmware(String),
    /// The display could not be opened or failed.
    #[error("display: {0}")]
    Display(String),
    /// Nothing to run.
    #[error("nothing to boot: give --kernel FILE, or a disk with --hda, --cdrom or --fda")]
    NothingToBoot,
}
