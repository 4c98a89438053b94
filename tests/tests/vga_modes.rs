//! Graphics modes through the BIOS: the VGA mode guest (`tests/guests/vga-modes`) sets mode
//! 13h, mode 12h or a VBE linear-framebuffer mode with INT 10h, draws a known pattern (and
//! in 12h/13h a title with the BIOS's glyphs) and exits; each screenshot must match its
//! golden PNG exactly (`tests/golden/vga-*.png`; `RX86_UPDATE_GOLDEN=1` regenerates them).

use rx86_tests::boot_media::bios_run_args;
use rx86_tests::golden::{compare_with_golden, decode_png};
use rx86_tests::rx86_bin::{run_rx86_with_limit, stderr_of};
use rx86_tests::vga_modes::{vga_mode_image, VgaModeGuest};
use std::time::Duration;

/// The guest's exit status when it drew its pattern (isa-debug-exit 0).
const DRAWN: i32 = 1;

fn screenshot_matches(guest: VgaModeGuest, size: (u32, u32)) {
    let image = vga_mode_image(guest).expect("build the VGA mode guest");
    let png = image.with_extension("png");
    let extra = ["--fda", image.to_str().unwrap(), "--debug-exit", "-m", "32M", "--screenshot", png.to_str().unwrap()];
    let args = bios_run_args("interp", &extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let limit = Duration::from_secs(120);
    let out = run_rx86_with_limit(&args, limit).unwrap_or_else(|| panic!("{guest:?} did not finish in {limit:?}"));
    assert_eq!(out.status.code(), Some(DRAWN), "{guest:?}: {}", stderr_of(&out));
    let (w, h, _) = decode_png(&png);
    assert_eq!((w, h), size, "{guest:?}: screenshot size is the mode's resolution");
    compare_with_golden(&png, &format!("vga-{}.png", guest.name()));
    std::fs::remove_file(&image).unwrap();
    std::fs::remove_file(&png).unwrap();
}

#[test]
fn mode_13h_pattern_and_bios_glyphs() {
    screenshot_matches(VgaModeGuest::Mode13h, (320, 200));
}

#[test]
fn mode_12h_planar_pattern_and_bios_glyphs() {
    screenshot_matches(VgaModeGuest::Mode12h, (640, 480));
}

#[test]
fn vbe_linear_framebuffer_pattern() {
    screenshot_matches(VgaModeGuest::VbeLinear, (640, 480));
}
