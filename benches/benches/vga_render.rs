//! Display benchmark (issue #5, "Measure"): frames per second of the VGA renderer for 80x25
//! text mode and for a 1024x768x32 Bochs VBE mode, the share of emulation time it costs when
//! the window redraws at 60 Hz, and, when an X display is available (`DISPLAY`, e.g. under
//! `xvfb-run`), the same through a `minifb` window (render + present).
//!
//! `cargo bench -p rx86-benches --bench vga_render [-- --seconds S]`
//!
//! The screens are filled the way a guest would: text cells in all 16 colours, and a
//! gradient written through the linear framebuffer.

use minifb::{Scale, Window, WindowOptions};
use rx86::window::{integer_scale, REDRAW_HZ};
use rx86_devices::vga::vbe::{
    VBE_DISPI_ENABLED, VBE_DISPI_INDEX_BPP, VBE_DISPI_INDEX_ENABLE, VBE_DISPI_INDEX_XRES, VBE_DISPI_INDEX_YRES,
    VBE_DISPI_LFB_ENABLED,
};
use rx86_devices::vga::{Frame, Vga, DEFAULT_VRAM_SIZE};
use std::time::Instant;

/// Start of the colour text buffer in the legacy window (B800:0000).
const TEXT_BUFFER: u64 = 0xb8000 - 0xa0000;

fn text_screen() -> Vga {
    let mut vga = Vga::new(DEFAULT_VRAM_SIZE);
    vga.init_text_console();
    for cell in 0..80 * 25u64 {
        let ch = b'!' + (cell % 90) as u8;
        let attribute = (cell % 127) as u8 + 1;
        vga.mem_write(TEXT_BUFFER + cell * 2, ch);
        vga.mem_write(TEXT_BUFFER + cell * 2 + 1, attribute);
    }
    vga
}

fn vbe_screen() -> Vga {
    let mut vga = Vga::new(DEFAULT_VRAM_SIZE);
    for (index, value) in [
        (VBE_DISPI_INDEX_XRES, 1024),
        (VBE_DISPI_INDEX_YRES, 768),
        (VBE_DISPI_INDEX_BPP, 32),
        (VBE_DISPI_INDEX_ENABLE, VBE_DISPI_ENABLED | VBE_DISPI_LFB_ENABLED),
    ] {
        vga.set_vbe_index(index);
        vga.vbe_write(value);
    }
    for y in 0..768u64 {
        for x in 0..1024u64 {
            let pixel = ((x * 255 / 1023) << 16) | ((y * 255 / 767) << 8) | ((x + y) & 0xff);
            vga.lfb_write((y * 1024 + x) * 4, 4, pixel);
        }
    }
    vga
}

/// Renders `vga` for `seconds`; frames per second.
fn render_fps(vga: &Vga, seconds: f64) -> (f64, Frame) {
    let mut frame = Frame::default();
    let start = Instant::now();
    let mut frames = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        vga.render_into(&mut frame, frames);
        frames += 1;
    }
    (frames as f64 / start.elapsed().as_secs_f64(), frame)
}

/// Renders and presents `vga` in a window for `seconds`; frames per second.
fn window_fps(vga: &Vga, seconds: f64) -> Result<f64, String> {
    let mut frame = Frame::default();
    vga.render_into(&mut frame, 0);
    let scale = match integer_scale(frame.width, frame.height) {
        4 => Scale::X4,
        2 => Scale::X2,
        _ => Scale::X1,
    };
    let mut window =
        Window::new("rx86 bench", frame.width, frame.height, WindowOptions { scale, ..Default::default() })
            .map_err(|e| e.to_string())?;
    window.set_target_fps(0);
    let start = Instant::now();
    let mut frames = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        vga.render_into(&mut frame, frames);
        window.update_with_buffer(&frame.pixels, frame.width, frame.height).map_err(|e| e.to_string())?;
        frames += 1;
    }
    Ok(frames as f64 / start.elapsed().as_secs_f64())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let display = std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty());
    println!("{:<22} {:>10} {:>12} {:>18} {:>14}", "screen", "size", "render fps", "cost at 60 Hz", "window fps");
    for (name, vga) in [("80x25 text (mode 03h)", text_screen()), ("VBE 1024x768x32", vbe_screen())] {
        let (fps, frame) = render_fps(&vga, seconds);
        let cost = REDRAW_HZ as f64 / fps * 100.0;
        let window = if display {
            window_fps(&vga, seconds).map_or_else(|e| format!("error: {e}"), |f| format!("{f:.0}"))
        } else {
            "no DISPLAY".to_string()
        };
        let size = format!("{}x{}", frame.width, frame.height);
        println!("{name:<22} {size:>10} {fps:>12.0} {:>17.2}% {window:>14}", cost);
    }
}
