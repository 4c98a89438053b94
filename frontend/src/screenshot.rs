//! Headless views of the screen: a PNG of the rendered VGA frame and a UTF-8 dump of
//! the VGA text screen, written when a run ends (`--screenshot`, `--text-dump`).
//!
//! While the guest runs, `kill -USR1 <pid>` writes the same files at once
//! ([`CaptureOnSignal`]); they are written again when the run ends.
//!
//! Screenshots render frame 0 of the blink cycle (cursor and blinking characters
//! shown), so a deterministic run gives the same file every time.

use rx86_devices::vga::{Frame, SharedVga, TextScreen};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use thiserror::Error;

/// Why a screenshot or text dump could not be written.
#[derive(Debug, Error)]
pub enum ScreenshotError {
    /// The file could not be created or written.
    #[error("cannot write {what} '{path}': {source}")]
    Io {
        /// "screenshot" or "text dump".
        what: &'static str,
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The PNG encoder failed.
    #[error("cannot encode screenshot '{path}': {source}")]
    Encode {
        /// The path given.
        path: PathBuf,
        /// The encoder's error.
        source: png::EncodingError,
    },
    /// The display shows nothing a PNG can hold (no mode set).
    #[error("cannot write screenshot '{path}': the screen is {width}x{height} (no video mode set)")]
    EmptyScreen {
        /// The path given.
        path: PathBuf,
        /// Frame width.
        width: usize,
        /// Frame height.
        height: usize,
    },
}

/// The blink-cycle frame screenshots show (cursor and blinking text visible).
const SCREENSHOT_FRAME: u64 = 0;

/// Encodes `frame` as an 8-bit RGB PNG into `out`.
pub fn encode_png(frame: &Frame, out: impl Write) -> Result<(), png::EncodingError> {
    let (width, height) = (dimension(frame.width)?, dimension(frame.height)?);
    let mut encoder = png::Encoder::new(out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    let rgb: Vec<u8> = frame.pixels.iter().flat_map(|p| [(p >> 16) as u8, (p >> 8) as u8, *p as u8]).collect();
    writer.write_image_data(&rgb)?;
    writer.finish()
}

fn dimension(n: usize) -> Result<u32, png::EncodingError> {
    u32::try_from(n).map_err(|_| png::EncodingError::LimitsExceeded)
}

/// Writes `frame` as a PNG file at `path`.
pub fn write_png(frame: &Frame, path: &Path) -> Result<(), ScreenshotError> {
    if frame.width == 0 || frame.height == 0 {
        return Err(ScreenshotError::EmptyScreen { path: path.into(), width: frame.width, height: frame.height });
    }
    let io = |source| ScreenshotError::Io { what: "screenshot", path: path.into(), source };
    let mut out = BufWriter::new(File::create(path).map_err(io)?);
    encode_png(frame, &mut out).map_err(|source| match source {
        png::EncodingError::IoError(e) => io(e),
        source => ScreenshotError::Encode { path: path.into(), source },
    })?;
    out.flush().map_err(io)
}

/// The text screen as UTF-8 lines (trailing spaces trimmed, one `\n` after each row);
/// outside text mode, one line saying so.
pub fn text_dump(screen: Option<&TextScreen>) -> String {
    match screen {
        Some(screen) => screen.lines().iter().map(|l| format!("{l}\n")).collect(),
        None => "(the VGA is not in a text mode)\n".to_string(),
    }
}

/// Writes [`text_dump`] of `screen` to `path`.
pub fn write_text_dump(screen: Option<&TextScreen>, path: &Path) -> Result<(), ScreenshotError> {
    std::fs::write(path, text_dump(screen)).map_err(|source| ScreenshotError::Io {
        what: "text dump",
        path: path.into(),
        source,
    })
}

/// What to save of the screen when a run ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScreenCapture {
    /// PNG of the rendered screen.
    pub screenshot: Option<PathBuf>,
    /// UTF-8 dump of the text screen.
    pub text_dump: Option<PathBuf>,
}

impl ScreenCapture {
    /// Renders `vga` and writes the requested files; the first failure is returned
    /// after trying both.
    pub fn save(&self, vga: &SharedVga) -> Result<(), ScreenshotError> {
        let (frame, text) = {
            let vga = vga.lock().unwrap_or_else(|e| e.into_inner());
            let frame = self.screenshot.is_some().then(|| vga.render(SCREENSHOT_FRAME));
            (frame, self.text_dump.is_some().then(|| vga.text_snapshot()))
        };
        let png = match (&self.screenshot, &frame) {
            (Some(path), Some(frame)) => write_png(frame, path),
            _ => Ok(()),
        };
        let dump = match (&self.text_dump, &text) {
            (Some(path), Some(text)) => write_text_dump(text.as_ref(), path),
            _ => Ok(()),
        };
        png.and(dump)
    }
}

/// Writes a [`ScreenCapture`] whenever the process receives SIGUSR1 (checked by the run
/// loop between slices of guest time, through [`CaptureOnSignal::poll`]).
#[derive(Debug)]
pub struct CaptureOnSignal {
    requested: Arc<AtomicBool>,
    capture: ScreenCapture,
}

impl CaptureOnSignal {
    /// Installs the SIGUSR1 handler (it only sets a flag).
    pub fn register(capture: ScreenCapture) -> std::io::Result<Self> {
        let requested = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGUSR1, requested.clone())?;
        Ok(CaptureOnSignal { requested, capture })
    }

    /// Writes the capture if SIGUSR1 arrived since the last call; failures are logged
    /// (the run goes on).
    pub fn poll(&self, vga: &SharedVga) {
        if !self.requested.swap(false, Ordering::Relaxed) {
            return;
        }
        if self.capture == ScreenCapture::default() {
            log::warn!("SIGUSR1: no --screenshot or --text-dump file to write");
            return;
        }
        match self.capture.save(vga) {
            Ok(()) => log::info!("SIGUSR1: screen saved"),
            Err(e) => log::error!("SIGUSR1: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rx86_devices::vga::{TextCell, Vga};

    fn decode(bytes: &[u8]) -> (png::OutputInfo, Vec<u8>) {
        let mut reader = png::Decoder::new(bytes).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info, buf)
    }

    #[test]
    fn a_frame_decodes_back_to_its_pixels() {
        let pixels: Vec<u32> = (0..12u32).map(|i| (i * 0x0010_2030) ^ 0x00ff_0000).collect();
        let frame = Frame { width: 4, height: 3, pixels: pixels.clone() };
        let mut bytes = Vec::new();
        encode_png(&frame, &mut bytes).unwrap();
        let (info, rgb) = decode(&bytes);
        assert_eq!((info.width, info.height), (4, 3));
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        let back: Vec<u32> =
            rgb.chunks(3).map(|c| u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2])).collect();
        assert_eq!(back, pixels);
    }

    #[test]
    fn text_mode_screenshot_is_720x400_and_dump_has_the_text() {
        let dir = std::env::temp_dir().join(format!("rx86-screenshot-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let vga: SharedVga = Vga::new_shared(rx86_devices::vga::DEFAULT_VRAM_SIZE);
        vga.lock().unwrap().init_text_console();
        let capture = ScreenCapture { screenshot: Some(dir.join("s.png")), text_dump: Some(dir.join("s.txt")) };
        capture.save(&vga).unwrap();
        let (info, _) = decode(&std::fs::read(dir.join("s.png")).unwrap());
        assert_eq!((info.width, info.height), (720, 400));
        let dump = std::fs::read_to_string(dir.join("s.txt")).unwrap();
        assert_eq!(dump.lines().count(), 25);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn text_dump_trims_rows_and_ends_each_with_a_newline() {
        let cell = |ch: char| TextCell { code: ch as u8, ch, attribute: 7 };
        let screen = TextScreen {
            cols: 3,
            rows: 2,
            cells: vec![cell('h'), cell('i'), cell(' '), cell(' '), cell('x'), cell(' ')],
            cursor: None,
        };
        assert_eq!(text_dump(Some(&screen)), "hi\n x\n");
        assert!(text_dump(None).contains("not in a text mode"));
    }

    #[test]
    fn sigusr1_writes_the_capture_while_running() {
        let dir = std::env::temp_dir().join(format!("rx86-sigusr1-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let vga: SharedVga = Vga::new_shared(rx86_devices::vga::DEFAULT_VRAM_SIZE);
        vga.lock().unwrap().init_text_console();
        let capture = ScreenCapture { screenshot: None, text_dump: Some(dir.join("t.txt")) };
        let on_signal = CaptureOnSignal::register(capture).unwrap();
        on_signal.poll(&vga);
        assert!(!dir.join("t.txt").exists(), "nothing written before the signal");
        signal_hook::low_level::raise(signal_hook::consts::SIGUSR1).unwrap();
        on_signal.poll(&vga);
        assert!(dir.join("t.txt").exists(), "written after SIGUSR1");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unwritable_paths_and_empty_screens_are_errors_naming_the_file() {
        let frame = Frame { width: 1, height: 1, pixels: vec![0] };
        let path = Path::new("/nonexistent-rx86-dir/shot.png");
        let err = write_png(&frame, path).unwrap_err().to_string();
        assert!(err.contains("cannot write screenshot '/nonexistent-rx86-dir/shot.png'"), "{err}");
        let err = write_text_dump(None, Path::new("/nonexistent-rx86-dir/t.txt")).unwrap_err().to_string();
        assert!(err.contains("cannot write text dump"), "{err}");
        let err = write_png(&Frame::default(), Path::new("x.png")).unwrap_err().to_string();
        assert!(err.contains("0x0"), "{err}");
    }
}
