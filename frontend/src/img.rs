//! `rx86 img`: create, inspect, check and convert disk images (raw and qcow2), with
//! `qemu-img`'s option names and exit statuses.

use clap::{Args, Subcommand, ValueEnum};
use rx86_devices::block::qcow2::check::{check, CheckReport};
use rx86_devices::block::qcow2::create::{create, CreateOptions, DEFAULT_CLUSTER_BITS};
use rx86_devices::block::{open_image, BlockBackend, ImageFormat, ImageOptions, RawImage, SECTOR_SIZE};
use std::path::{Path, PathBuf};

/// `rx86 img` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImgCommand {
    /// Create an image: rx86 img create [-f qcow2|raw] [-b BACKING [-F FMT]] [-o cluster_size=N] FILE [SIZE]
    Create(CreateArgs),
    /// Show an image's format, sizes and backing file.
    Info(FileArg),
    /// Check a qcow2 image's refcounts and tables (exit 0: clean, 2: corrupt, 3: leaks only).
    Check(FileArg),
    /// Copy an image into a new one of the same or another format (unwritten parts stay sparse).
    Convert(ConvertArgs),
}

/// Image formats on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// A raw image.
    Raw,
    /// qcow2, version 3.
    Qcow2,
}

/// `rx86 img create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Format of the new image.
    #[arg(short = 'f', value_enum, default_value = "qcow2")]
    pub format: FormatArg,
    /// A backing file (qcow2 only): unwritten clusters read from it. Stored as given.
    #[arg(short = 'b', value_name = "BACKING")]
    pub backing: Option<String>,
    /// The backing file's format (detected when left out).
    #[arg(short = 'F', value_enum)]
    pub backing_format: Option<FormatArg>,
    /// Options: cluster_size=N (512 bytes to 2M, a power of two; default 64K).
    #[arg(short = 'o', value_name = "OPTIONS")]
    pub options: Option<String>,
    /// The new image (must not exist).
    pub file: PathBuf,
    /// Virtual size: bytes, or with K/M/G/T; with -b, the backing file's size by default.
    pub size: Option<String>,
}

/// A single image argument.
#[derive(Debug, Args)]
pub struct FileArg {
    /// The image.
    pub file: PathBuf,
}

/// `rx86 img convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The source's format (detected when left out).
    #[arg(short = 'f', value_enum)]
    pub source_format: Option<FormatArg>,
    /// The new image's format.
    #[arg(short = 'O', value_enum, default_value = "raw")]
    pub output_format: FormatArg,
    /// The source image.
    pub source: PathBuf,
    /// The new image (must not exist).
    pub output: PathBuf,
}

/// Runs an `rx86 img` command; the process exit status.
pub fn run(command: &ImgCommand) -> u8 {
    let result = match command {
        ImgCommand::Create(a) => create_image(a).map(|()| 0),
        ImgCommand::Info(a) => info(&a.file).map(|text| {
            print!("{text}");
            0
        }),
        ImgCommand::Check(a) => check_image(&a.file),
        ImgCommand::Convert(a) => convert(a).map(|()| 0),
    };
    result.unwrap_or_else(|e| {
        eprintln!("rx86 img: {e}");
        1
    })
}

/// A size as qemu-img takes it: bytes, or a number with K, M, G or T (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'B' => 0,
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("'{s}': unknown size suffix (K, M, G or T)")),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: u64 = digits.parse().map_err(|_| format!("'{s}' is not a size (e.g. 10G)"))?;
    n.checked_shl(shift).filter(|v| v >> shift == n).ok_or(format!("'{s}' is too large"))
}

fn format_name(f: FormatArg) -> &'static str {
    match f {
        FormatArg::Raw => "raw",
        FormatArg::Qcow2 => "qcow2",
    }
}

fn image_format(f: Option<FormatArg>) -> ImageFormat {
    match f {
        None => ImageFormat::Auto,
        Some(FormatArg::Raw) => ImageFormat::Raw,
        Some(FormatArg::Qcow2) => ImageFormat::Qcow2,
    }
}

fn read_only(format: ImageFormat) -> ImageOptions {
    ImageOptions { format, read_only: true, snapshot: false }
}

fn create_image(a: &CreateArgs) -> Result<(), String> {
    let mut cluster_bits = DEFAULT_CLUSTER_BITS;
    for option in a.options.iter().flat_map(|o| o.split(',')) {
        match option.split_once('=') {
            Some(("cluster_size", v)) => {
                let bytes = parse_size(v)?;
                if !bytes.is_power_of_two() {
                    return Err(format!("cluster_size={v} is not a power of two"));
                }
                cluster_bits = bytes.trailing_zeros();
            }
            _ => return Err(format!("-o {option}: rx86 img create takes cluster_size=N")),
        }
    }
    // The backing file is found relative to the new image's folder, as QEMU does.
    let backing = match &a.backing {
        Some(name) => {
            let at = a.file.parent().unwrap_or(Path::new(".")).join(name);
            let image = open_image(&at, read_only(image_format(a.backing_format))).map_err(|e| e.to_string())?;
            let format = match a.backing_format {
                Some(f) => format_name(f),
                None if rx86_devices::block::Qcow2Image::open(&at).is_ok() => "qcow2",
                None => "raw",
            };
            Some((name.clone(), format.to_string(), image.len()))
        }
        None => None,
    };
    let size = match (&a.size, &backing) {
        (Some(s), _) => parse_size(s)?,
        (None, Some((_, _, len))) => *len,
        (None, None) => return Err("give the image's size (e.g. 10G)".into()),
    };
    if !size.is_multiple_of(SECTOR_SIZE) {
        return Err(format!("{size} bytes is not a multiple of 512"));
    }
    match a.format {
        FormatArg::Qcow2 => {
            let options = CreateOptions { size, cluster_bits, backing: backing.map(|(name, fmt, _)| (name, fmt)) };
            create(&a.file, &options).map_err(|e| e.to_string())?;
        }
        FormatArg::Raw => {
            if backing.is_some() {
                return Err("a raw image has no backing file; use -f qcow2".into());
            }
            let file = std::fs::File::options()
                .write(true)
                .create_new(true)
                .open(&a.file)
                .map_err(|e| format!("{}: {e}", a.file.display()))?;
            file.set_len(size).map_err(|e| format!("{}: {e}", a.file.display()))?;
        }
    }
    println!("Formatting '{}', fmt={} size={size}", a.file.display(), format_name(a.format));
    Ok(())
}

/// Bytes the file takes on disk.
fn disk_usage(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map(|m| m.blocks() * 512).unwrap_or(0)
}

fn info(path: &Path) -> Result<String, String> {
    use std::fmt::Write;
    let image = open_image(path, read_only(ImageFormat::Auto)).map_err(|e| e.to_string())?;
    let mut s = format!("image: {}\n", path.display());
    let qcow2 = rx86_devices::block::qcow2::has_magic(path).unwrap_or(false);
    let _ = writeln!(s, "file format: {}", if qcow2 { "qcow2" } else { "raw" });
    let _ = writeln!(s, "virtual size: {} ({} bytes)", human(image.len()), image.len());
    let _ = writeln!(s, "disk size: {}", human(disk_usage(path)));
    if qcow2 {
        let header = rx86_devices::block::qcow2::Header::read(path).map_err(|e| e.to_string())?;
        let _ = writeln!(s, "cluster_size: {}", 1u64 << header.cluster_bits);
        if let Some(backing) = header.backing {
            let _ = writeln!(s, "backing file: {backing}");
        }
        let _ = writeln!(
            s,
            "Format specific information:\n    compat: {}",
            if header.version == 3 { "1.1" } else { "0.10" }
        );
    }
    Ok(s)
}

/// `10 GiB`, `512 KiB`, `1.5 MiB`, as qemu-img prints sizes.
fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        let digits = format!("{value:.3}");
        format!("{} {}", digits.trim_end_matches('0').trim_end_matches('.'), units[unit])
    }
}

fn check_image(path: &Path) -> Result<u8, String> {
    if !rx86_devices::block::qcow2::has_magic(path).map_err(|e| e.to_string())? {
        println!("{}: a raw image has no metadata to check", path.display());
        return Ok(0);
    }
    let report: CheckReport = check(path).map_err(|e| e.to_string())?;
    for line in &report.messages {
        eprintln!("{line}");
    }
    if report.errors > 0 {
        println!("\n{} errors were found on the image.", report.errors);
        println!("Data may be corrupted, or further writes to the image may corrupt it.");
    }
    if report.leaks > 0 {
        println!("\n{} leaked clusters were found on the image.", report.leaks);
        println!("This means waste of disk space, but no harm to data.");
    }
    if report.is_clean() {
        println!("No errors were found on the image.");
    }
    let percent = if report.total == 0 { 0.0 } else { report.allocated as f64 * 100.0 / report.total as f64 };
    println!("{}/{} = {percent:.2}% allocated", report.allocated, report.total);
    Ok(match (report.errors, report.leaks) {
        (0, 0) => 0,
        (0, _) => 3,
        _ => 2,
    })
}

/// The piece `convert` checks for zeros (a qcow2 cluster at the default size).
const CONVERT_CHUNK: usize = 64 << 10;
/// Bytes `convert` reads at a time (and so the longest single write).
const CONVERT_READ: usize = 4 << 20;

fn convert(a: &ConvertArgs) -> Result<(), String> {
    let mut source = open_image(&a.source, read_only(image_format(a.source_format))).map_err(|e| e.to_string())?;
    let size = source.len();
    let mut output: Box<dyn BlockBackend> = match a.output_format {
        FormatArg::Qcow2 => {
            let options = CreateOptions { size, cluster_bits: DEFAULT_CLUSTER_BITS, backing: None };
            create(&a.output, &options).map_err(|e| e.to_string())?;
            Box::new(rx86_devices::block::Qcow2Image::open_writable(&a.output).map_err(|e| e.to_string())?)
        }
        FormatArg::Raw => {
            let file = std::fs::File::options()
                .write(true)
                .create_new(true)
                .open(&a.output)
                .map_err(|e| format!("{}: {e}", a.output.display()))?;
            file.set_len(size).map_err(|e| format!("{}: {e}", a.output.display()))?;
            drop(file);
            Box::new(RawImage::open(&a.output, false).map_err(|e| e.to_string())?)
        }
    };
    let mut buf = vec![0u8; CONVERT_READ];
    let mut at = 0;
    while at < size {
        let n = (size - at).min(CONVERT_READ as u64) as usize;
        source.read_at(at, &mut buf[..n]).map_err(|e| e.to_string())?;
        for (offset, run) in nonzero_runs(&buf[..n]) {
            output.write_at(at + offset as u64, run).map_err(|e| e.to_string())?;
        }
        at += n as u64;
    }
    output.flush().map_err(|e| e.to_string())
}

/// The stretches of `data` to write, as (offset, bytes): runs of [`CONVERT_CHUNK`] pieces
/// that are not all zero, joined. Zero pieces stay unwritten (a sparse raw file, unallocated
/// qcow2 clusters), and each run is one write, so a qcow2 output syncs once per run rather
/// than once per cluster.
fn nonzero_runs(data: &[u8]) -> Vec<(usize, &[u8])> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, piece) in data.chunks(CONVERT_CHUNK).enumerate() {
        let offset = i * CONVERT_CHUNK;
        match (piece.iter().any(|&b| b != 0), start) {
            (true, None) => start = Some(offset),
            (false, Some(s)) => {
                runs.push((s, &data[s..offset]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push((s, &data[s..]));
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn convert_writes_runs_of_nonzero_pieces() {
        let mut data = vec![0u8; 5 * CONVERT_CHUNK + 100];
        data[1] = 1;
        data[CONVERT_CHUNK + 5] = 2;
        data[3 * CONVERT_CHUNK] = 3;
        data[5 * CONVERT_CHUNK + 99] = 4;
        let runs: Vec<(usize, usize)> = nonzero_runs(&data).iter().map(|(o, r)| (*o, r.len())).collect();
        assert_eq!(
            runs,
            [(0, 2 * CONVERT_CHUNK), (3 * CONVERT_CHUNK, CONVERT_CHUNK), (5 * CONVERT_CHUNK, 100)],
            "pieces 0-1, 3 and the short last one; 2 and 4 are zero"
        );
        assert!(nonzero_runs(&[0u8; 3 * CONVERT_CHUNK]).is_empty());
    }

    #[test]
    fn sizes_and_human_sizes() {
        assert_eq!(parse_size("10G"), Ok(10 << 30));
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert!(parse_size("1X").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert_eq!(human(10 << 30), "10 GiB");
        assert_eq!(human(1536 << 10), "1.5 MiB");
        assert_eq!(human(100), "100 B");
    }
}
