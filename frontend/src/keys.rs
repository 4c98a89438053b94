//! Keys for the guest: the PS/2 scan code set 2 table of a US keyboard, the `--keys`
//! script that types into a headless guest at fixed guest times, and the feeder that
//! hands the script's keystrokes to the 8042 as the machine clock reaches them.
//!
//! Scan codes are set 2 (IBM PS/2 Keyboard Technical Reference, "Scan Code Set 2"): a
//! make code is one byte, or `E0` and one byte for the extended keys; its break code is
//! `F0` before the last byte (`E0 F0 xx` for extended keys). The keyboard sends set 2
//! and the 8042 translates to set 1 when its command byte's XLAT bit asks for it (see
//! `rx86_devices::i8042`), so the frontend always produces set 2.
//!
//! # `--keys` syntax
//!
//! ```text
//! SCRIPT := EVENT (';' EVENT)*
//! EVENT  := WHEN ':' ITEM (',' ITEM)*
//! WHEN   := NUMBER UNIT          a guest time; UNIT: ns | us | ms | s  (e.g. 5s, 1500ms, 2.5s)
//!         | '@' TEXT             as soon as the VGA text screen shows TEXT
//! ITEM   := KEY ('+' KEY)*       a named key or a chord, e.g. enter, f12, ctrl+alt+delete
//!         | KEYS '*' TIME        a key, chord or one character held down for TIME (e.g.
//!                                a*1s, down*2s), so the keyboard's typematic repeat runs
//!         | TEXT                 anything else: typed character by character
//! ```
//!
//! Events run in order. A timed event starts typing at its guest time (the machine
//! clock: virtual and deterministic under the interpreter, counted from power-on); an
//! `@TEXT` event starts when TEXT appears on the text screen (rows joined with
//! newlines; checked at every store into the screen that may have shown TEXT: the VGA's
//! text watch ends the CPU's run at that instruction, so deterministic too). Either waits
//! until the previous event has been typed. Keystrokes are [`KEYSTROKE_INTERVAL_NS`]
//! apart (a held one, that long after its release); a keystroke presses its keys in order
//! and releases them in reverse. Times of timed events must not decrease.
//!
//! An item is a key (or a chord of keys joined by `+`) when every part is a key name
//! from [`KEY_NAMES`] (case-insensitive, surrounding spaces ignored); otherwise it is
//! text. Text is typed as on a US keyboard (Shift for capitals and symbols) and may use
//! the escapes `\n` (Enter), `\t` (Tab), `\e` (Esc), `\b` (Backspace), `\\`, `\,`, `\;`,
//! `\:` and `\+`; only printable ASCII can be typed. A single letter or digit is text, so
//! `v` types v; to type a word that is also a key name, split it into two text items
//! (`ent,er` types the letters of "enter"). The TEXT of `@TEXT` may escape `\:`, `\;`
//! and `\\`.
//!
//! Examples: `--keys "5s:v,enter;10s:root\n"` types v and Enter 5 s after power-on, then
//! `root` and Enter at 10 s; `--keys "@automatically:down,enter"` picks a boot menu's
//! second entry once the menu's countdown line shows.
//!
//! A machine reset does not restart the script: it goes on with the machine clock.

use rx86_core::time::{Timer, TimerQueue};
use rx86_devices::i8042::I8042;
use rx86_devices::vga::SharedVga;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Mutex;

/// Guest time between two keystrokes of one event (a brisk typist: 100 keys a second).
pub const KEYSTROKE_INTERVAL_NS: u64 = 10_000_000;
/// Guest time between a keystroke's presses and its releases.
pub const KEY_HOLD_NS: u64 = 5_000_000;

/// Set-2 break prefix.
const BREAK_PREFIX: u8 = 0xf0;
/// Set-2 prefix of the extended keys.
const EXTENDED_PREFIX: u8 = 0xe0;

/// One key of the keyboard: its set-2 make code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The last byte of the make code.
    pub code: u8,
    /// True when the make code is `E0 code`.
    pub extended: bool,
}

impl Key {
    const fn plain(code: u8) -> Key {
        Key { code, extended: false }
    }

    const fn extended(code: u8) -> Key {
        Key { code, extended: true }
    }

    /// The set-2 bytes sent when the key goes down.
    pub fn make(self) -> Vec<u8> {
        if self.extended {
            vec![EXTENDED_PREFIX, self.code]
        } else {
            vec![self.code]
        }
    }

    /// The set-2 bytes sent when the key comes up.
    pub fn break_code(self) -> Vec<u8> {
        if self.extended {
            vec![EXTENDED_PREFIX, BREAK_PREFIX, self.code]
        } else {
            vec![BREAK_PREFIX, self.code]
        }
    }
}

/// Left Shift.
pub const LEFT_SHIFT: Key = Key::plain(0x12);

/// Named keys (lower case) and their set-2 make codes.
pub const KEY_NAMES: &[(&str, Key)] = &[
    ("esc", Key::plain(0x76)),
    ("escape", Key::plain(0x76)),
    ("enter", Key::plain(0x5a)),
    ("return", Key::plain(0x5a)),
    ("tab", Key::plain(0x0d)),
    ("backspace", Key::plain(0x66)),
    ("space", Key::plain(0x29)),
    ("shift", LEFT_SHIFT),
    ("lshift", LEFT_SHIFT),
    ("rshift", Key::plain(0x59)),
    ("ctrl", Key::plain(0x14)),
    ("lctrl", Key::plain(0x14)),
    ("rctrl", Key::extended(0x14)),
    ("alt", Key::plain(0x11)),
    ("lalt", Key::plain(0x11)),
    ("ralt", Key::extended(0x11)),
    ("altgr", Key::extended(0x11)),
    ("lwin", Key::extended(0x1f)),
    ("rwin", Key::extended(0x27)),
    ("menu", Key::extended(0x2f)),
    ("capslock", Key::plain(0x58)),
    ("numlock", Key::plain(0x77)),
    ("scrolllock", Key::plain(0x7e)),
    ("f1", Key::plain(0x05)),
    ("f2", Key::plain(0x06)),
    ("f3", Key::plain(0x04)),
    ("f4", Key::plain(0x0c)),
    ("f5", Key::plain(0x03)),
    ("f6", Key::plain(0x0b)),
    ("f7", Key::plain(0x83)),
    ("f8", Key::plain(0x0a)),
    ("f9", Key::plain(0x01)),
    ("f10", Key::plain(0x09)),
    ("f11", Key::plain(0x78)),
    ("f12", Key::plain(0x07)),
    ("insert", Key::extended(0x70)),
    ("delete", Key::extended(0x71)),
    ("del", Key::extended(0x71)),
    ("home", Key::extended(0x6c)),
    ("end", Key::extended(0x69)),
    ("pageup", Key::extended(0x7d)),
    ("pgup", Key::extended(0x7d)),
    ("pagedown", Key::extended(0x7a)),
    ("pgdn", Key::extended(0x7a)),
    ("up", Key::extended(0x75)),
    ("down", Key::extended(0x72)),
    ("left", Key::extended(0x6b)),
    ("right", Key::extended(0x74)),
    ("kp0", Key::plain(0x70)),
    ("kp1", Key::plain(0x69)),
    ("kp2", Key::plain(0x72)),
    ("kp3", Key::plain(0x7a)),
    ("kp4", Key::plain(0x6b)),
    ("kp5", Key::plain(0x73)),
    ("kp6", Key::plain(0x74)),
    ("kp7", Key::plain(0x6c)),
    ("kp8", Key::plain(0x75)),
    ("kp9", Key::plain(0x7d)),
    ("kpdot", Key::plain(0x71)),
    ("kpplus", Key::plain(0x79)),
    ("kpminus", Key::plain(0x7b)),
    ("kpstar", Key::plain(0x7c)),
    ("kpslash", Key::extended(0x4a)),
    ("kpenter", Key::extended(0x5a)),
];

/// The key called `name` (case-insensitive), from [`KEY_NAMES`].
pub fn key_by_name(name: &str) -> Option<Key> {
    KEY_NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|&(_, k)| k)
}

/// Printable ASCII on a US keyboard: (unshifted, shifted) character and set-2 make code.
#[rustfmt::skip]
const CHARACTER_KEYS: &[(u8, u8, u8)] = &[
    (b'`', b'~', 0x0e), (b'1', b'!', 0x16), (b'2', b'@', 0x1e), (b'3', b'#', 0x26),
    (b'4', b'$', 0x25), (b'5', b'%', 0x2e), (b'6', b'^', 0x36), (b'7', b'&', 0x3d),
    (b'8', b'*', 0x3e), (b'9', b'(', 0x46), (b'0', b')', 0x45), (b'-', b'_', 0x4e),
    (b'=', b'+', 0x55),
    (b'q', b'Q', 0x15), (b'w', b'W', 0x1d), (b'e', b'E', 0x24), (b'r', b'R', 0x2d),
    (b't', b'T', 0x2c), (b'y', b'Y', 0x35), (b'u', b'U', 0x3c), (b'i', b'I', 0x43),
    (b'o', b'O', 0x44), (b'p', b'P', 0x4d), (b'[', b'{', 0x54), (b']', b'}', 0x5b),
    (b'\\', b'|', 0x5d),
    (b'a', b'A', 0x1c), (b's', b'S', 0x1b), (b'd', b'D', 0x23), (b'f', b'F', 0x2b),
    (b'g', b'G', 0x34), (b'h', b'H', 0x33), (b'j', b'J', 0x3b), (b'k', b'K', 0x42),
    (b'l', b'L', 0x4b), (b';', b':', 0x4c), (b'\'', b'"', 0x52),
    (b'z', b'Z', 0x1a), (b'x', b'X', 0x22), (b'c', b'C', 0x21), (b'v', b'V', 0x2a),
    (b'b', b'B', 0x32), (b'n', b'N', 0x31), (b'm', b'M', 0x3a), (b',', b'<', 0x41),
    (b'.', b'>', 0x49), (b'/', b'?', 0x4a),
    (b' ', b' ', 0x29),
];

/// The keys that type `ch` on a US keyboard (Shift first when needed), or `None` for
/// characters it cannot type. `\n` is Enter, `\t` Tab, `\x1b` Esc, `\x08` Backspace.
pub fn keys_for_char(ch: char) -> Option<Vec<Key>> {
    let named = match ch {
        '\n' | '\r' => Some("enter"),
        '\t' => Some("tab"),
        '\x1b' => Some("esc"),
        '\x08' => Some("backspace"),
        _ => None,
    };
    if let Some(name) = named {
        return key_by_name(name).map(|k| vec![k]);
    }
    let byte = u8::try_from(ch).ok()?;
    CHARACTER_KEYS.iter().find_map(|&(plain, shifted, code)| {
        if byte == plain {
            Some(vec![Key::plain(code)])
        } else if byte == shifted {
            Some(vec![LEFT_SHIFT, Key::plain(code)])
        } else {
            None
        }
    })
}

/// Keys pressed together, held, and released in reverse order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keystroke {
    /// The keys, in the order they go down.
    pub keys: Vec<Key>,
    /// How long they stay down.
    pub hold_ns: u64,
}

impl Keystroke {
    /// A normal keystroke: down for [`KEY_HOLD_NS`].
    pub fn tap(keys: Vec<Key>) -> Self {
        Keystroke { keys, hold_ns: KEY_HOLD_NS }
    }

    /// The set-2 bytes of pressing every key, in order.
    pub fn press_bytes(&self) -> Vec<u8> {
        self.keys.iter().flat_map(|k| k.make()).collect()
    }

    /// The set-2 bytes of releasing every key, last pressed first.
    pub fn release_bytes(&self) -> Vec<u8> {
        self.keys.iter().rev().flat_map(|k| k.break_code()).collect()
    }
}

/// When an event starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// At this guest time, in nanoseconds from power-on.
    At(u64),
    /// When the VGA text screen shows this text.
    ScreenShows(String),
}

/// One `WHEN:ITEMS` event of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEvent {
    /// When typing starts (at the earliest).
    pub when: Trigger,
    /// What to type, in order.
    pub strokes: Vec<Keystroke>,
}

impl KeyEvent {
    /// The set-2 bytes of the event typed from `start`: every press and release, paced
    /// [`KEYSTROKE_INTERVAL_NS`] apart; and the time the next event may start.
    pub fn timed_bytes(&self, start: u64) -> (Vec<(u64, Vec<u8>)>, u64) {
        let mut out = Vec::new();
        let mut t = start;
        for stroke in &self.strokes {
            out.push((t, stroke.press_bytes()));
            let up = t.saturating_add(stroke.hold_ns);
            out.push((up, stroke.release_bytes()));
            t = t.saturating_add(KEYSTROKE_INTERVAL_NS).max(up.saturating_add(KEYSTROKE_INTERVAL_NS - KEY_HOLD_NS));
        }
        (out, t)
    }
}

/// When `--stop-at` ends a run: at a guest time (`30s`) or once the text screen shows
/// some text (`@TEXT`, the same forms as a `--keys` event's WHEN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopAt(pub Trigger);

impl StopAt {
    /// Parses `TIME` or `@TEXT`.
    pub fn parse(s: &str) -> Result<Self, KeySpecError> {
        match s.trim_start().strip_prefix('@') {
            Some(text) => Ok(StopAt(Trigger::ScreenShows(parse_screen_text(text)?))),
            None => Ok(StopAt(Trigger::At(parse_time(s)?))),
        }
    }

    /// The text this condition waits for, if it is `@TEXT`.
    pub fn awaited_text(&self) -> Option<&str> {
        match &self.0 {
            Trigger::ScreenShows(text) => Some(text),
            Trigger::At(_) => None,
        }
    }

    /// True once the run should end: `now_ns` has reached the time, or `vga` shows the text.
    pub fn reached(&self, now_ns: u64, vga: &SharedVga) -> bool {
        match &self.0 {
            Trigger::At(t) => now_ns >= *t,
            Trigger::ScreenShows(text) => screen_text(vga).is_some_and(|s| s.contains(text.as_str())),
        }
    }
}

/// A parsed `--keys` script.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyScript {
    /// The events, in time order.
    pub events: Vec<KeyEvent>,
}

/// Why a `--keys` script was rejected; the message names the offending part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpecError(String);

impl fmt::Display for KeySpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeySpecError {}

fn error(msg: impl Into<String>) -> KeySpecError {
    KeySpecError(msg.into())
}

/// Splits `s` at every unescaped `sep`, keeping escapes in the pieces.
fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            c if c == sep => {
                pieces.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    pieces.push(&s[start..]);
    pieces
}

/// Splits `s` at its first unescaped `sep`.
fn split_once_unescaped(s: &str, sep: char) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            c if c == sep => return Some((&s[..i], &s[i + c.len_utf8()..])),
            _ => {}
        }
    }
    None
}

/// The text of an `@TEXT` trigger with its escapes resolved.
fn parse_screen_text(text: &str) -> Result<String, KeySpecError> {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(c @ ('\\' | ':' | ';')) => out.push(c),
            Some(c) => return Err(error(format!("'@{text}': unknown escape '\\{c}' (use \\: \\; \\\\)"))),
            None => return Err(error(format!("'@{text}': a lone '\\' at the end"))),
        }
    }
    if out.is_empty() {
        return Err(error("'@' needs the text to wait for, e.g. @login:"));
    }
    Ok(out)
}

/// Parses a guest time such as `5s`, `1500ms`, `2.5s` or `100us` into nanoseconds.
pub fn parse_time(s: &str) -> Result<u64, KeySpecError> {
    let t = s.trim();
    let unit_at = t
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(|| error(format!("time '{t}' has no unit (write e.g. 5s, 1500ms, 100us or 10ns)")))?;
    let (number, unit) = t.split_at(unit_at);
    let scale: u64 = match unit {
        "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        _ => return Err(error(format!("time '{t}': unknown unit '{unit}' (use ns, us, ms or s)"))),
    };
    let (whole, fraction) = number.split_once('.').map_or((number, None), |(w, f)| (w, Some(f)));
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !fraction.is_none_or(digits) {
        return Err(error(format!("time '{t}': '{number}' is not a number")));
    }
    let too_large = || error(format!("time '{t}' is too large"));
    let whole: u64 = whole.parse().map_err(|_| too_large())?;
    let mut ns = whole.checked_mul(scale).ok_or_else(too_large)?;
    let mut place = scale;
    for digit in fraction.unwrap_or_default().bytes() {
        place /= 10;
        if place == 0 {
            return Err(error(format!("time '{t}' is finer than a nanosecond")));
        }
        ns = ns.checked_add(u64::from(digit - b'0') * place).ok_or_else(too_large)?;
    }
    Ok(ns)
}

/// A chord (`ctrl+alt+delete`) or a single named key, if every part is a key name.
fn parse_chord(item: &str) -> Option<Keystroke> {
    let keys: Option<Vec<Key>> = item.split('+').map(|part| key_by_name(part.trim())).collect();
    keys.filter(|k| !k.is_empty()).map(Keystroke::tap)
}

/// A held key, `KEYS*TIME` (a key name, a chord or one character, held down for TIME so
/// the keyboard's typematic repeat runs); `None` when `item` is not of that form.
fn parse_hold(item: &str) -> Result<Option<Keystroke>, KeySpecError> {
    let Some((keys, time)) = item.rsplit_once('*') else { return Ok(None) };
    let (keys, time) = (keys.trim(), time.trim());
    let Ok(hold_ns) = parse_time(time) else { return Ok(None) };
    if keys.is_empty() || keys.ends_with('\\') {
        return Ok(None);
    }
    let mut chars = keys.chars();
    let stroke = match (parse_chord(keys), chars.next(), chars.next()) {
        (Some(chord), _, _) => chord,
        (None, Some(c), None) => {
            Keystroke::tap(keys_for_char(c).ok_or_else(|| error(format!("'{item}': cannot type {c:?}")))?)
        }
        _ => return Err(error(format!("'{item}': hold a key name, a chord or one character (e.g. a*1s)"))),
    };
    Ok(Some(Keystroke { hold_ns, ..stroke }))
}

/// Text with escapes, as keystrokes.
fn parse_text(item: &str) -> Result<Vec<Keystroke>, KeySpecError> {
    let mut strokes = Vec::new();
    let mut chars = item.chars();
    while let Some(c) = chars.next() {
        let ch = if c == '\\' {
            match chars.next() {
                Some('n') => '\n',
                Some('t') => '\t',
                Some('e') => '\x1b',
                Some('b') => '\x08',
                Some(c @ ('\\' | ',' | ';' | ':' | '+')) => c,
                Some(c) => {
                    return Err(error(format!(
                        "'{item}': unknown escape '\\{c}' (use \\n \\t \\e \\b \\\\ \\, \\; \\: \\+)"
                    )))
                }
                None => return Err(error(format!("'{item}': a lone '\\' at the end"))),
            }
        } else {
            c
        };
        let keys = keys_for_char(ch)
            .ok_or_else(|| error(format!("'{item}': cannot type {ch:?} (only printable ASCII, \\n, \\t, \\e, \\b)")))?;
        strokes.push(Keystroke::tap(keys));
    }
    Ok(strokes)
}

/// One `WHEN:ITEMS` event.
fn parse_event(event: &str) -> Result<KeyEvent, KeySpecError> {
    let (when, items) = split_once_unescaped(event, ':')
        .ok_or_else(|| error(format!("'{event}': expected TIME:KEYS or @TEXT:KEYS (e.g. 5s:enter)")))?;
    let when = match when.trim_start().strip_prefix('@') {
        Some(text) => Trigger::ScreenShows(parse_screen_text(text)?),
        None => Trigger::At(parse_time(when)?),
    };
    let mut strokes = Vec::new();
    for item in split_unescaped(items, ',') {
        if item.trim().is_empty() {
            return Err(error(format!("'{event}': an empty item between commas")));
        }
        if let Some(held) = parse_hold(item)? {
            strokes.push(held);
            continue;
        }
        match parse_chord(item) {
            Some(chord) => strokes.push(chord),
            None if item.contains('+') && !item.contains("\\+") && item.trim().len() > 1 => {
                let unknown: Vec<&str> = item.split('+').filter(|p| key_by_name(p.trim()).is_none()).collect();
                return Err(error(format!(
                    "'{item}': '{}' is not a key name (to type a '+', write \\+)",
                    unknown.join("', '")
                )));
            }
            None => strokes.extend(parse_text(item)?),
        }
    }
    Ok(KeyEvent { when, strokes })
}

impl KeyScript {
    /// Parses a `--keys` script (syntax in the module documentation).
    pub fn parse(spec: &str) -> Result<Self, KeySpecError> {
        if spec.trim().is_empty() {
            return Err(error("the key script is empty"));
        }
        let mut events: Vec<KeyEvent> = Vec::new();
        let mut last_time: Option<(usize, u64)> = None;
        for (i, event) in split_unescaped(spec, ';').into_iter().enumerate() {
            if event.trim().is_empty() {
                return Err(error(format!("event {} is empty (two ';' in a row?)", i + 1)));
            }
            let parsed = parse_event(event)?;
            if let Trigger::At(t) = parsed.when {
                if let Some((j, previous)) = last_time.filter(|&(_, p)| t < p) {
                    return Err(error(format!(
                        "event {} ('{event}') comes before event {} ({previous} ns): times must not decrease",
                        i + 1,
                        j + 1
                    )));
                }
                last_time = Some((i, t));
            }
            events.push(parsed);
        }
        Ok(KeyScript { events })
    }
}

/// Feeds a script's scan codes to the keyboard controller as guest time reaches them
/// and as the screen shows what `@TEXT` events wait for. It owns a timer on the board's
/// queue so the machine loop stops (and a halted CPU wakes) at each send time.
#[derive(Debug)]
pub struct KeyFeeder {
    events: VecDeque<KeyEvent>,
    pending: VecDeque<(u64, Vec<u8>)>,
    /// When the last scheduled event has been typed.
    free_at: u64,
    timer: Timer,
}

impl KeyFeeder {
    /// A feeder for `script`, with its timer on `timers`, armed for the first send.
    pub fn new(script: &KeyScript, timers: &TimerQueue) -> Self {
        let mut feeder = KeyFeeder {
            events: script.events.iter().cloned().collect(),
            pending: VecDeque::new(),
            free_at: 0,
            timer: timers.new_timer("scripted-keys"),
        };
        feeder.schedule_ready(0, || None);
        feeder.arm();
        feeder
    }

    fn arm(&self) {
        match self.pending.front() {
            Some(&(at, _)) => self.timer.arm_at(at),
            None => self.timer.cancel(),
        }
    }

    /// Moves events whose trigger has fired (all typing before them scheduled) into the
    /// pending bytes. `screen` gives the text screen, read at most once.
    fn schedule_ready(&mut self, now: u64, mut screen: impl FnMut() -> Option<String>) {
        let mut text: Option<Option<String>> = None;
        while let Some(event) = self.events.front() {
            let start = match &event.when {
                Trigger::At(t) => (*t).max(self.free_at),
                Trigger::ScreenShows(wanted) => {
                    if !self.pending.is_empty() || now < self.free_at {
                        return;
                    }
                    let shown = text.get_or_insert_with(&mut screen);
                    if !shown.as_deref().is_some_and(|s| s.contains(wanted.as_str())) {
                        return;
                    }
                    log::info!("scripted keys: the screen shows {wanted:?} at {now} ns");
                    now
                }
            };
            let (bytes, end) = event.timed_bytes(start);
            self.pending.extend(bytes);
            self.free_at = end;
            self.events.pop_front();
        }
    }

    /// Moves the feeder's timer to `timers` (the rebuilt board's queue after a reset): the
    /// script goes on where it was rather than starting again.
    pub fn move_to(&mut self, timers: &TimerQueue) {
        self.timer.cancel();
        self.timer = timers.new_timer("scripted-keys");
        self.arm();
    }

    /// The text the next event waits for, if it is an `@TEXT` event.
    pub fn awaited_text(&self) -> Option<&str> {
        match &self.events.front()?.when {
            Trigger::ScreenShows(text) => Some(text),
            Trigger::At(_) => None,
        }
    }

    /// True when every event has been typed.
    pub fn is_done(&self) -> bool {
        self.events.is_empty() && self.pending.is_empty()
    }

    /// Sends every scan code due at `now_ns` to `kbc`, starts `@TEXT` events whose text
    /// `vga` shows, then arms the timer for the next send.
    pub fn feed(&mut self, now_ns: u64, kbc: &Mutex<I8042>, vga: &SharedVga) {
        self.schedule_ready(now_ns, || screen_text(vga));
        while self.pending.front().is_some_and(|&(at, _)| at <= now_ns) {
            if let Some((_, bytes)) = self.pending.pop_front() {
                log::debug!("scripted keys at {now_ns} ns: {bytes:02x?}");
                kbc.lock().unwrap_or_else(|e| e.into_inner()).push_key_scancodes(&bytes);
            }
        }
        self.arm();
    }
}

/// The text screen's rows joined with newlines, or `None` outside text mode.
fn screen_text(vga: &SharedVga) -> Option<String> {
    let screen = vga.lock().unwrap_or_else(|e| e.into_inner()).text_snapshot()?;
    Some(screen.lines().join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rx86_devices::i8042::Set1Translator;

    fn set1(bytes: &[u8]) -> Vec<u8> {
        let mut t = Set1Translator::default();
        bytes.iter().filter_map(|&b| t.translate(b)).collect()
    }

    /// Set-1 make codes follow the rows of the keyboard (IBM PC AT Technical Reference):
    /// the digit row from 02h, QWERTY from 10h, ASDF from 1Eh, ZXCV from 2Ch.
    #[test]
    fn characters_translate_to_the_set1_codes_of_their_keys() {
        let rows: [(&str, u8); 4] =
            [("1234567890-=", 0x02), ("qwertyuiop[]", 0x10), ("asdfghjkl;'`", 0x1e), ("zxcvbnm,./", 0x2c)];
        for (row, first) in rows {
            for (i, ch) in row.chars().enumerate() {
                let keys = keys_for_char(ch).unwrap();
                assert_eq!(keys.len(), 1, "{ch:?} needs no shift");
                assert_eq!(set1(&keys[0].make()), vec![first + i as u8], "{ch:?}");
            }
        }
        assert_eq!(set1(&keys_for_char('\\').unwrap()[0].make()), vec![0x2b]);
        assert_eq!(set1(&keys_for_char(' ').unwrap()[0].make()), vec![0x39]);
    }

    #[test]
    fn shifted_characters_press_left_shift_first() {
        let stroke = Keystroke::tap(keys_for_char('A').unwrap());
        // Set 2: Shift 12, A 1C; released A first: F0 1C F0 12.
        assert_eq!(stroke.press_bytes(), vec![0x12, 0x1c]);
        assert_eq!(stroke.release_bytes(), vec![0xf0, 0x1c, 0xf0, 0x12]);
        // Set 1: 2A 1E ... 9E AA.
        assert_eq!(set1(&stroke.press_bytes()), vec![0x2a, 0x1e]);
        assert_eq!(set1(&stroke.release_bytes()), vec![0x9e, 0xaa]);
        assert_eq!(keys_for_char('~').unwrap(), vec![LEFT_SHIFT, keys_for_char('`').unwrap()[0]]);
        assert!(keys_for_char('é').is_none());
        assert!(keys_for_char('\x07').is_none());
    }

    #[test]
    fn named_keys_translate_to_their_set1_codes() {
        // Set 1 (IBM): Esc 01, Enter 1C, Tab 0F, Backspace 0E, F1 3B, F10 44, F11 57,
        // F12 58, F7 41; cursor keys E0 48/50/4B/4D.
        let expect: [(&str, &[u8]); 11] = [
            ("esc", &[0x01]),
            ("enter", &[0x1c]),
            ("tab", &[0x0f]),
            ("backspace", &[0x0e]),
            ("f1", &[0x3b]),
            ("f7", &[0x41]),
            ("f10", &[0x44]),
            ("F11", &[0x57]),
            ("f12", &[0x58]),
            ("up", &[0xe0, 0x48]),
            ("Down", &[0xe0, 0x50]),
        ];
        for (name, codes) in expect {
            assert_eq!(set1(&key_by_name(name).unwrap().make()), codes, "{name}");
        }
        assert_eq!(set1(&key_by_name("left").unwrap().break_code()), vec![0xe0, 0xcb]);
        assert!(key_by_name("f13").is_none());
    }

    #[test]
    fn times_with_units() {
        assert_eq!(parse_time("5s"), Ok(5_000_000_000));
        assert_eq!(parse_time(" 1500ms "), Ok(1_500_000_000));
        assert_eq!(parse_time("2.5s"), Ok(2_500_000_000));
        assert_eq!(parse_time("100us"), Ok(100_000));
        assert_eq!(parse_time("7ns"), Ok(7));
        assert_eq!(parse_time("0.000000001s"), Ok(1));
        for bad in ["5", "s", "5 m", "5h", "-1s", "1.s", ".5s", "1.5ns", "99999999999999999999s", "1e3ms"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_briefs_example_parses_into_keys_and_text() {
        let script = KeyScript::parse("5s:v,enter;10s:root\\n").unwrap();
        assert_eq!(script.events.len(), 2);
        let first = &script.events[0];
        assert_eq!(first.when, Trigger::At(5_000_000_000));
        assert_eq!(
            first.strokes,
            vec![Keystroke::tap(keys_for_char('v').unwrap()), Keystroke::tap(vec![key_by_name("enter").unwrap()])]
        );
        let second = &script.events[1];
        assert_eq!(second.when, Trigger::At(10_000_000_000));
        let typed: Vec<Keystroke> = "root\n".chars().map(|c| Keystroke::tap(keys_for_char(c).unwrap())).collect();
        assert_eq!(second.strokes, typed);
    }

    #[test]
    fn chords_escapes_and_spaces() {
        let script = KeyScript::parse("1s:ctrl+alt+delete, f2 ,a\\,b\\;c\\+d\\:,Hi there").unwrap();
        let strokes = &script.events[0].strokes;
        let names = ["ctrl", "alt", "delete"].map(|n| key_by_name(n).unwrap());
        assert_eq!(strokes[0], Keystroke::tap(names.to_vec()));
        assert_eq!(strokes[0].release_bytes(), vec![0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14]);
        assert_eq!(strokes[1], Keystroke::tap(vec![key_by_name("f2").unwrap()]));
        let text: Vec<Keystroke> =
            "a,b;c+d:Hi there".chars().map(|c| Keystroke::tap(keys_for_char(c).unwrap())).collect();
        assert_eq!(strokes[2..], text[..]);
        // A lone '+' is text.
        assert_eq!(
            KeyScript::parse("1s:+").unwrap().events[0].strokes,
            vec![Keystroke::tap(keys_for_char('+').unwrap())]
        );
    }

    #[test]
    fn malformed_scripts_are_clear_errors() {
        let cases = [
            ("", "empty"),
            ("enter", "expected TIME:KEYS"),
            ("5:enter", "no unit"),
            ("5h:enter", "unknown unit"),
            ("5s:a,,b", "empty item"),
            ("5s:enter;;6s:a", "event 2 is empty"),
            ("5s:ctrl+foo", "'foo' is not a key name"),
            ("5s:caf\u{e9}", "cannot type"),
            ("5s:a\\q", "unknown escape"),
            ("5s:a\\", "lone"),
            ("10s:a;5s:b", "times must not decrease"),
        ];
        for (spec, message) in cases {
            let err = KeyScript::parse(spec).expect_err(spec).to_string();
            assert!(err.contains(message), "{spec:?}: {err}");
        }
    }

    fn machine_parts() -> (Mutex<I8042>, SharedVga, TimerQueue) {
        use rx86_core::irq::RecordingIrqLine;
        use rx86_core::phys::A20Gate;
        use rx86_core::platform::PowerControl;
        let kbc = I8042::new(RecordingIrqLine::new(), RecordingIrqLine::new(), A20Gate::default(), PowerControl::new());
        let vga = rx86_devices::vga::Vga::new_shared(rx86_devices::vga::DEFAULT_VRAM_SIZE);
        (Mutex::new(kbc), vga, TimerQueue::new())
    }

    /// Every (time, bytes) the feeder sends, stepping the clock through its deadlines.
    fn sends(script: &str) -> Vec<(u64, Vec<u8>)> {
        let (kbc, vga, timers) = machine_parts();
        let mut feeder = KeyFeeder::new(&KeyScript::parse(script).unwrap(), &timers);
        let mut out = Vec::new();
        while let Some(t) = timers.next_deadline() {
            timers.take_due(t);
            feeder.feed(t, &kbc, &vga);
            let mut kbc = kbc.lock().unwrap();
            let mut bytes = Vec::new();
            while kbc.read_status() & 1 != 0 {
                bytes.push(kbc.read_data());
            }
            out.push((t, bytes));
        }
        assert!(feeder.is_done());
        out
    }

    #[test]
    fn held_keys_stay_down_for_their_time() {
        let script = KeyScript::parse("1s:a*1s,b;3s:down*500ms").unwrap();
        let a = Keystroke { hold_ns: 1_000_000_000, ..Keystroke::tap(keys_for_char('a').unwrap()) };
        assert_eq!(script.events[0].strokes[0], a);
        let (bytes, free) = script.events[0].timed_bytes(1_000_000_000);
        assert_eq!(bytes[1], (2_000_000_000, vec![0xf0, 0x1c]), "a goes up a second later");
        assert_eq!(bytes[2].0, 2_000_000_000 + KEYSTROKE_INTERVAL_NS - KEY_HOLD_NS, "b waits for it");
        assert_eq!(free, bytes[2].0 + KEYSTROKE_INTERVAL_NS);
        assert_eq!(script.events[1].strokes[0].hold_ns, 500_000_000);
        let text = KeyScript::parse("1s:5*3").unwrap();
        assert_eq!(text.events[0].strokes.len(), 3, "no time after '*': typed as text");
        assert!(KeyScript::parse("1s:ab*1s").is_err(), "two characters cannot be held");
    }

    #[test]
    fn a_moved_feeder_goes_on_where_it_was_on_the_new_queue() {
        let (kbc, vga, old) = machine_parts();
        let mut feeder = KeyFeeder::new(&KeyScript::parse("1ms:ab").unwrap(), &old);
        let first = old.next_deadline().unwrap();
        old.take_due(first);
        feeder.feed(first, &kbc, &vga);
        let next = old.next_deadline().expect("more keys to send");
        let new = TimerQueue::new();
        feeder.move_to(&new);
        assert_eq!(old.next_deadline(), None, "nothing left on the old board's queue");
        assert_eq!(new.next_deadline(), Some(next), "the script is not restarted");
    }

    #[test]
    fn keystrokes_are_paced_and_overlapping_events_wait() {
        let (i, h) = (KEYSTROKE_INTERVAL_NS, KEY_HOLD_NS);
        let t0 = 1_000_000;
        // "c" at 2 ms waits until "ab" is done (1 ms + two intervals).
        let expected: Vec<(u64, Vec<u8>)> = vec![
            (t0, vec![0x1c]),
            (t0 + h, vec![0xf0, 0x1c]),
            (t0 + i, vec![0x32]),
            (t0 + i + h, vec![0xf0, 0x32]),
            (t0 + 2 * i, vec![0x21]),
            (t0 + 2 * i + h, vec![0xf0, 0x21]),
        ];
        assert_eq!(sends("1ms:ab;2ms:c"), expected);
    }

    #[test]
    fn screen_events_wait_for_their_text() {
        let script = KeyScript::parse("@boot\\: menu:enter;1ms:x").unwrap();
        assert_eq!(script.events[0].when, Trigger::ScreenShows("boot: menu".into()));
        let (kbc, vga, timers) = machine_parts();
        let mut feeder = KeyFeeder::new(&script, &timers);
        assert_eq!(timers.next_deadline(), None, "nothing timed before the text shows");
        feeder.feed(5_000_000, &kbc, &vga);
        assert_eq!(kbc.lock().unwrap().read_status() & 1, 0, "not in text mode yet: nothing sent");
        {
            let mut vga = vga.lock().unwrap();
            vga.init_text_console();
            for (i, b) in b"boot: menu".iter().enumerate() {
                vga.mem_write(0x18000 + 2 * i as u64, *b);
            }
        }
        feeder.feed(6_000_000, &kbc, &vga);
        assert_eq!(kbc.lock().unwrap().read_data(), 0x5a, "Enter pressed once the text shows");
        // The timed event after it starts when Enter has been typed, not at 1 ms.
        assert_eq!(timers.next_deadline(), Some(6_000_000 + KEY_HOLD_NS));
        feeder.feed(6_000_000 + KEY_HOLD_NS, &kbc, &vga);
        assert_eq!(timers.next_deadline(), Some(6_000_000 + KEYSTROKE_INTERVAL_NS));
        for bad in ["@:enter", "@a\\q:enter"] {
            assert!(KeyScript::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stop_at_a_time_or_when_the_screen_shows_text() {
        let (_, vga, _) = machine_parts();
        let at = StopAt::parse("2ms").unwrap();
        assert!(!at.reached(1_999_999, &vga));
        assert!(at.reached(2_000_000, &vga));
        let shows = StopAt::parse("@ready").unwrap();
        assert!(!shows.reached(u64::MAX, &vga), "no text mode, no text");
        vga.lock().unwrap().init_text_console();
        assert!(!shows.reached(0, &vga));
        for (i, b) in b"ready".iter().enumerate() {
            vga.lock().unwrap().mem_write(0x18000 + 160 + 2 * i as u64, *b);
        }
        assert!(shows.reached(0, &vga));
        assert!(StopAt::parse("@").is_err());
        assert!(StopAt::parse("soon").is_err());
    }

    #[test]
    fn feeder_sends_due_codes_and_arms_its_timer_for_the_next() {
        let (kbc, vga, timers) = machine_parts();
        let mut feeder = KeyFeeder::new(&KeyScript::parse("1ms:a").unwrap(), &timers);
        assert_eq!(timers.next_deadline(), Some(1_000_000));
        feeder.feed(999_999, &kbc, &vga);
        assert_eq!(kbc.lock().unwrap().read_status() & 1, 0, "nothing sent before its time");
        feeder.feed(1_000_000, &kbc, &vga);
        // Power-on command byte: no translation, so the set-2 make code arrives as is.
        assert_eq!(kbc.lock().unwrap().read_data(), 0x1c);
        assert_eq!(timers.next_deadline(), Some(1_000_000 + KEY_HOLD_NS));
        feeder.feed(2_000_000_000, &kbc, &vga);
        assert!(feeder.is_done());
        assert_eq!(timers.next_deadline(), None);
        assert_eq!(kbc.lock().unwrap().read_data(), 0xf0);
        assert_eq!(kbc.lock().unwrap().read_data(), 0x1c);
    }
}
