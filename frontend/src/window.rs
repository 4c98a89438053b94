//! `--display window`: the guest's screen in a `minifb` window, and the host keyboard
//! fed to the guest's PS/2 keyboard.
//!
//! The window shows the VGA's frame at the guest's resolution, scaled by the largest
//! integer factor minifb offers (1, 2 or 4) that keeps it within [`MAX_WINDOW`]; it is
//! reopened when the guest changes resolution. The loop runs the machine and redraws at
//! most [`REDRAW_HZ`] times a second of host time; the blink phase (cursor, blinking
//! characters) follows guest time at the VGA's 70 Hz refresh. Key presses and releases
//! become set-2 make and break codes through [`crate::keys`]; mouse motion over the
//! window (in guest pixels), its buttons and its wheel become PS/2 mouse packets.
//! Closing the window ends the run as a power-off.

use crate::error::RunError;
use crate::keys::{key_by_name, keys_for_char, Key};
use crate::machine::{Machine, Outcome};
use minifb::{Key as HostKey, KeyRepeat, MouseButton, MouseMode, Scale, Window, WindowOptions};
use rx86_devices::i8042::mouse_buttons;
use rx86_devices::vga::Frame;
use std::time::{Duration, Instant};

/// Largest window, in host pixels, that integer scaling may grow to.
pub const MAX_WINDOW: (usize, usize) = (1600, 1000);
/// Host redraws per second, at most.
pub const REDRAW_HZ: u64 = 60;
/// One VGA refresh at 70 Hz (the rate of the standard text and 13h modes), in ns.
const VGA_REFRESH_NS: u64 = 1_000_000_000 / 70;

/// The integer scale for a `width` x `height` screen: the largest of 4, 2 and 1 that
/// fits [`MAX_WINDOW`] (1 when even that does not fit).
pub fn integer_scale(width: usize, height: usize) -> usize {
    [4, 2, 1].into_iter().find(|s| width * s <= MAX_WINDOW.0 && height * s <= MAX_WINDOW.1).unwrap_or(1)
}

fn minifb_scale(scale: usize) -> Scale {
    match scale {
        4 => Scale::X4,
        2 => Scale::X2,
        _ => Scale::X1,
    }
}

/// The PS/2 key of a host key (US layout), if the guest keyboard has it.
pub fn guest_key(key: HostKey) -> Option<Key> {
    use HostKey::*;
    let character = match key {
        Key0 => '0',
        Key1 => '1',
        Key2 => '2',
        Key3 => '3',
        Key4 => '4',
        Key5 => '5',
        Key6 => '6',
        Key7 => '7',
        Key8 => '8',
        Key9 => '9',
        A => 'a',
        B => 'b',
        C => 'c',
        D => 'd',
        E => 'e',
        F => 'f',
        G => 'g',
        H => 'h',
        I => 'i',
        J => 'j',
        K => 'k',
        L => 'l',
        M => 'm',
        N => 'n',
        O => 'o',
        P => 'p',
        Q => 'q',
        R => 'r',
        S => 's',
        T => 't',
        U => 'u',
        V => 'v',
        W => 'w',
        X => 'x',
        Y => 'y',
        Z => 'z',
        Apostrophe => '\'',
        Backquote => '`',
        Backslash => '\\',
        Comma => ',',
        Equal => '=',
        LeftBracket => '[',
        Minus => '-',
        Period => '.',
        RightBracket => ']',
        Semicolon => ';',
        Slash => '/',
        Space => ' ',
        _ => return guest_key_by_name(key),
    };
    keys_for_char(character).and_then(|keys| keys.last().copied())
}

fn guest_key_by_name(key: HostKey) -> Option<Key> {
    use HostKey::*;
    let name = match key {
        F1 => "f1",
        F2 => "f2",
        F3 => "f3",
        F4 => "f4",
        F5 => "f5",
        F6 => "f6",
        F7 => "f7",
        F8 => "f8",
        F9 => "f9",
        F10 => "f10",
        F11 => "f11",
        F12 => "f12",
        Down => "down",
        Left => "left",
        Right => "right",
        Up => "up",
        Backspace => "backspace",
        Delete => "delete",
        End => "end",
        Enter => "enter",
        Escape => "esc",
        Home => "home",
        Insert => "insert",
        Menu => "menu",
        PageDown => "pagedown",
        PageUp => "pageup",
        Tab => "tab",
        NumLock => "numlock",
        CapsLock => "capslock",
        ScrollLock => "scrolllock",
        LeftShift => "lshift",
        RightShift => "rshift",
        LeftCtrl => "lctrl",
        RightCtrl => "rctrl",
        LeftAlt => "lalt",
        RightAlt => "ralt",
        LeftSuper => "lwin",
        RightSuper => "rwin",
        NumPad0 => "kp0",
        NumPad1 => "kp1",
        NumPad2 => "kp2",
        NumPad3 => "kp3",
        NumPad4 => "kp4",
        NumPad5 => "kp5",
        NumPad6 => "kp6",
        NumPad7 => "kp7",
        NumPad8 => "kp8",
        NumPad9 => "kp9",
        NumPadDot => "kpdot",
        NumPadSlash => "kpslash",
        NumPadAsterisk => "kpstar",
        NumPadMinus => "kpminus",
        NumPadPlus => "kpplus",
        NumPadEnter => "kpenter",
        _ => return None,
    };
    key_by_name(name)
}

/// A PS/2 motion report `(dx, dy)` for the pointer moving from `from` to `to` (window
/// coordinates in guest pixels, y down): PS/2 counts y upwards.
pub fn mouse_motion(from: (f32, f32), to: (f32, f32)) -> (i32, i32) {
    ((to.0 - from.0).round() as i32, -((to.1 - from.1).round() as i32))
}

/// The PS/2 wheel count for a host scroll of `dy` (positive = away from the user):
/// IntelliMouse reports scrolling up as negative.
pub fn wheel_count(dy: f32) -> i32 {
    if dy > 0.0 {
        -1
    } else if dy < 0.0 {
        1
    } else {
        0
    }
}

/// What the mouse last reported.
#[derive(Debug, Default)]
struct MouseState {
    position: Option<(f32, f32)>,
    buttons: u8,
}

impl MouseState {
    /// Sends a packet to the guest when the pointer moved over the window, a button
    /// changed or the wheel turned.
    fn update(&mut self, window: &Window, machine: &Machine) {
        let position = window.get_mouse_pos(MouseMode::Discard);
        let (dx, dy) = match (self.position, position) {
            (Some(from), Some(to)) => mouse_motion(from, to),
            _ => (0, 0),
        };
        if position.is_some() {
            self.position = position;
        }
        let buttons = [
            (MouseButton::Left, mouse_buttons::LEFT),
            (MouseButton::Right, mouse_buttons::RIGHT),
            (MouseButton::Middle, mouse_buttons::MIDDLE),
        ]
        .into_iter()
        .filter(|&(b, _)| window.get_mouse_down(b))
        .fold(0, |acc, (_, bit)| acc | bit);
        let dz = window.get_scroll_wheel().map_or(0, |(_, dy)| wheel_count(dy));
        if (dx, dy, dz) == (0, 0, 0) && buttons == self.buttons {
            return;
        }
        self.buttons = buttons;
        machine
            .pc()
            .keyboard_controller()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_mouse_packet(dx, dy, dz, buttons);
    }
}

/// An open window showing frames of one size.
struct Screen {
    window: Window,
    width: usize,
    height: usize,
}

impl Screen {
    fn open(width: usize, height: usize) -> Result<Screen, RunError> {
        let options = WindowOptions { scale: minifb_scale(integer_scale(width, height)), ..WindowOptions::default() };
        let mut window = Window::new("rx86", width, height, options)
            .map_err(|e| RunError::Display(format!("cannot open a {width}x{height} window: {e}")))?;
        // The machine loop paces itself; minifb must not sleep in update.
        window.set_target_fps(0);
        Ok(Screen { window, width, height })
    }
}

/// Runs `machine` with its screen in a window until the guest ends the run or the
/// window is closed; `after_step` runs after every turn of the machine loop.
pub fn run(machine: &mut Machine, after_step: &mut dyn FnMut(&Machine)) -> Result<Outcome, RunError> {
    let redraw = Duration::from_nanos(1_000_000_000 / REDRAW_HZ);
    let mut frame = Frame::default();
    let mut screen: Option<Screen> = None;
    // The window's title carries the progress line.
    let mut progress = crate::progress::Progress::new(machine);
    let mut last_redraw: Option<Instant> = None;
    let mut mouse = MouseState::default();
    loop {
        if let Some(outcome) = machine.step()? {
            return Ok(outcome);
        }
        after_step(machine);
        if last_redraw.is_some_and(|t| t.elapsed() < redraw) {
            continue;
        }
        last_redraw = Some(Instant::now());
        let blink_frame = machine.clock().now_ns() / VGA_REFRESH_NS;
        machine.pc().vga().lock().unwrap_or_else(|e| e.into_inner()).render_into(&mut frame, blink_frame);
        // A screen with no mode set yet shows as a small black window.
        let (width, height) = (frame.width.max(1), frame.height.max(1));
        if frame.pixels.len() != width * height {
            frame.pixels.resize(width * height, 0);
        }
        if screen.as_ref().is_none_or(|s| (s.width, s.height) != (width, height)) {
            // Close the old window before opening one of the new size.
            drop(screen.take());
            screen = Some(Screen::open(width, height)?);
        }
        let Some(screen) = screen.as_mut() else { continue };
        if let Some(status) = progress.update(machine) {
            screen.window.set_title(&format!("rx86 - {status}"));
        }
        screen
            .window
            .update_with_buffer(&frame.pixels, width, height)
            .map_err(|e| RunError::Display(format!("cannot draw the window: {e}")))?;
        if !screen.window.is_open() {
            log::info!("window closed: powering off");
            return Ok(Outcome::PowerOff);
        }
        send_keys(&screen.window, machine);
        mouse.update(&screen.window, machine);
    }
}

/// Sends the window's key presses and releases since the last update to the guest. Host
/// auto-repeat is not passed on: the guest's keyboard repeats a held key at the typematic
/// rate the guest chose.
fn send_keys(window: &Window, machine: &Machine) {
    let mut bytes = Vec::new();
    for key in window.get_keys_pressed(KeyRepeat::No) {
        match guest_key(key) {
            Some(k) => bytes.extend(k.make()),
            None => log::debug!("host key {key:?} has no PS/2 key"),
        }
    }
    for key in window.get_keys_released() {
        if let Some(k) = guest_key(key) {
            bytes.extend(k.break_code());
        }
    }
    if !bytes.is_empty() {
        machine.pc().keyboard_controller().lock().unwrap_or_else(|e| e.into_inner()).push_key_scancodes(&bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_is_the_largest_integer_that_fits() {
        assert_eq!(integer_scale(320, 200), 4, "mode 13h: 1280x800");
        assert_eq!(integer_scale(720, 400), 2, "80x25 text: 1440x800");
        assert_eq!(integer_scale(640, 480), 2, "mode 12h: 1280x960");
        assert_eq!(integer_scale(1024, 768), 1);
        assert_eq!(integer_scale(1920, 1080), 1, "too large even at 1: shown unscaled");
    }

    #[test]
    fn mouse_motion_counts_y_upwards_and_wheel_up_is_negative() {
        assert_eq!(mouse_motion((10.0, 10.0), (13.0, 15.0)), (3, -5), "right and down");
        assert_eq!(mouse_motion((10.0, 10.0), (8.4, 7.0)), (-2, 3), "left and up");
        assert_eq!((wheel_count(1.0), wheel_count(-2.5), wheel_count(0.0)), (-1, 1, 0));
    }

    #[test]
    fn host_keys_map_to_the_scripted_key_table() {
        assert_eq!(guest_key(HostKey::A), key_by_name("a").or(keys_for_char('a').map(|k| k[0])));
        assert_eq!(guest_key(HostKey::A).map(|k| k.make()), Some(vec![0x1c]));
        assert_eq!(guest_key(HostKey::Enter), key_by_name("enter"));
        assert_eq!(guest_key(HostKey::Up).map(|k| k.make()), Some(vec![0xe0, 0x75]));
        assert_eq!(guest_key(HostKey::F12), key_by_name("f12"));
        assert_eq!(guest_key(HostKey::Slash).map(|k| k.make()), Some(vec![0x4a]));
        assert_eq!(guest_key(HostKey::F13), None);
    }
}
