//! Golden screenshots: PNGs under `tests/golden/` that a run's `--screenshot` must match
//! pixel for pixel (runs on the virtual clock are deterministic).
//!
//! Regenerating after a deliberate change (BIOS, font, renderer): run the test with
//! `RX86_UPDATE_GOLDEN=1`, then look at the PNG before committing it.

use std::fs;
use std::path::{Path, PathBuf};

/// The path of golden image `name`.
pub fn golden_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden").join(name)
}

/// Decodes an 8-bit RGB PNG into (width, height, RGB bytes).
pub fn decode_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("PNG image data");
    assert_eq!((info.color_type, info.bit_depth), (png::ColorType::Rgb, png::BitDepth::Eight));
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// Compares the screenshot at `png` pixel by pixel with golden image `name` (first copying
/// it there when `RX86_UPDATE_GOLDEN` is set).
pub fn compare_with_golden(png: &Path, name: &str) {
    let golden = golden_path(name);
    if std::env::var_os("RX86_UPDATE_GOLDEN").is_some() {
        fs::create_dir_all(golden.parent().unwrap()).unwrap();
        fs::copy(png, &golden).unwrap();
        println!("wrote {}", golden.display());
    }
    let (got, want) = (decode_png(png), decode_png(&golden));
    assert_eq!((got.0, got.1), (want.0, want.1), "size");
    let differing = got.2.chunks(3).zip(want.2.chunks(3)).filter(|(a, b)| a != b).count();
    assert_eq!(differing, 0, "{differing} pixels differ from {} (see {})", golden.display(), png.display());
}
