//! A PS/2 (AT-compatible, MF2) keyboard as the 8042 sees it on its keyboard port.
//!
//! Commands from the IBM PS/2 Hardware Interface Technical Reference, "Keyboard and
//! Auxiliary Device Controller" / "Keyboard" (commands 0xED-0xFF). The frontend
//! supplies scan code set 2 bytes (the keyboard's native set); when the guest selects
//! set 1 the keyboard converts them, set 3 is not implemented (set 2 is sent, with a
//! warning). Responses to commands go out before any scan codes still waiting.
//!
//! Typematic: the keyboard remembers the last key pressed and not yet released (only
//! that key repeats, as on an MF2 keyboard) and decodes the rate/delay byte of command
//! 0xF3; the controller's timer asks for each repeat ([`Ps2Keyboard::repeat`]).

use super::translate::Set1Translator;
use std::collections::VecDeque;

/// Acknowledge.
pub const ACK: u8 = 0xfa;
/// Resend / unknown command.
pub const RESEND: u8 = 0xfe;
/// Basic assurance test passed.
pub const BAT_OK: u8 = 0xaa;

/// Set LEDs (parameter: bit 0 Scroll, 1 Num, 2 Caps Lock).
const SET_LEDS: u8 = 0xed;
/// Echo: answers 0xEE.
const ECHO: u8 = 0xee;
/// Get/set scan code set (parameter 0 = get, 1-3 = set).
const SCAN_CODE_SET: u8 = 0xf0;
/// Identify: ACK, 0xAB, 0x83 (MF2 keyboard).
const IDENTIFY: u8 = 0xf2;
/// Set typematic rate and delay (parameter).
const SET_TYPEMATIC: u8 = 0xf3;
/// Enable scanning.
const ENABLE: u8 = 0xf4;
/// Default parameters and disable scanning.
const DEFAULT_DISABLE: u8 = 0xf5;
/// Default parameters.
const SET_DEFAULT: u8 = 0xf6;
/// First of the set-3 "all keys" type commands (0xF7-0xFA), acknowledged and ignored.
const SET_ALL_KEYS_FIRST: u8 = 0xf7;
/// Last of the set-3 "all keys" type commands.
const SET_ALL_KEYS_LAST: u8 = 0xfa;
/// Resend the last byte.
const RESEND_COMMAND: u8 = 0xfe;
/// Reset and self-test.
const RESET: u8 = 0xff;
/// Second and third bytes of the identify answer.
const MF2_ID: [u8; 2] = [0xab, 0x83];
/// Typematic setting after reset: 10.9 characters/s, 500 ms delay.
const DEFAULT_TYPEMATIC: u8 = 0x2b;
/// Scan codes held while the host does not read (a real keyboard holds 16).
const SCANCODE_BUFFER: usize = 256;
/// Set-2 prefix of extended keys.
const EXTENDED: u8 = 0xe0;
/// Set-2 prefix of a break (release) code.
const BREAK: u8 = 0xf0;
/// Set-2 prefix of the Pause key's sequence (E1 14 77 E1 F0 14 F0 77), which never repeats.
const PAUSE: u8 = 0xe1;
/// Bytes of the Pause sequence after its first E1.
const PAUSE_TAIL: u8 = 7;
/// Typematic period unit: 4.17 ms (IBM: period = (8 + A) x 2^B x 0.00417 s).
const TYPEMATIC_UNIT_NS: u64 = 4_170_000;
/// Typematic delay unit: 250 ms (delay = (1 + D) x 250 ms).
const TYPEMATIC_DELAY_UNIT_NS: u64 = 250_000_000;

/// A key by its set-2 make code: (E0 prefix, code).
pub type HeldKey = (bool, u8);

/// Where the set-2 parser is inside a key's bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct KeyParser {
    extended: bool,
    release: bool,
    /// Pause-sequence bytes still to skip.
    skip: u8,
}

/// A PS/2 keyboard: command interpreter, LEDs, scan code set and output queues.
#[derive(Debug, Clone)]
pub struct Ps2Keyboard {
    responses: VecDeque<u8>,
    scancodes: VecDeque<u8>,
    /// A command waiting for its parameter byte.
    awaiting_parameter: Option<u8>,
    scanning: bool,
    scan_code_set: u8,
    leds: u8,
    typematic: u8,
    last_sent: u8,
    to_set1: Set1Translator,
    warned_set3: bool,
    parser: KeyParser,
    held: Option<HeldKey>,
}

impl Default for Ps2Keyboard {
    fn default() -> Self {
        Self::new()
    }
}

impl Ps2Keyboard {
    /// A keyboard after power-on: scanning, set 2, LEDs off.
    pub fn new() -> Self {
        Ps2Keyboard {
            responses: VecDeque::new(),
            scancodes: VecDeque::new(),
            awaiting_parameter: None,
            scanning: true,
            scan_code_set: 2,
            leds: 0,
            typematic: DEFAULT_TYPEMATIC,
            last_sent: 0,
            to_set1: Set1Translator::default(),
            warned_set3: false,
            parser: KeyParser::default(),
            held: None,
        }
    }

    /// The key that repeats while it stays down: the last one pressed and not released.
    pub fn held(&self) -> Option<HeldKey> {
        self.held
    }

    /// Time from a key press to its first repeat (bits 6-5 of the typematic byte).
    pub fn typematic_delay_ns(&self) -> u64 {
        (u64::from((self.typematic >> 5) & 3) + 1) * TYPEMATIC_DELAY_UNIT_NS
    }

    /// Time between repeats: (8 + A) x 2^B x 4.17 ms with A = bits 2-0 and B = bits 4-3,
    /// from 33.4 ms (30 characters/s) to 500 ms (2 characters/s).
    pub fn typematic_period_ns(&self) -> u64 {
        let (a, b) = (u64::from(self.typematic & 7), u32::from((self.typematic >> 3) & 3));
        (8 + a) * (1 << b) * TYPEMATIC_UNIT_NS
    }

    /// Sends the held key's make code again (a typematic repeat).
    pub fn repeat(&mut self) {
        match self.held {
            Some((true, code)) => self.push_scancodes(&[EXTENDED, code]),
            Some((false, code)) => self.push_scancodes(&[code]),
            None => {}
        }
    }

    /// Follows the set-2 stream to know which key is down.
    fn track(&mut self, byte: u8) {
        let p = &mut self.parser;
        if p.skip > 0 {
            p.skip -= 1;
            return;
        }
        match byte {
            EXTENDED => p.extended = true,
            BREAK => p.release = true,
            PAUSE => p.skip = PAUSE_TAIL,
            code => {
                let key = (p.extended, code);
                if !p.release {
                    self.held = Some(key);
                } else if self.held == Some(key) {
                    self.held = None;
                }
                self.parser = KeyParser::default();
            }
        }
    }

    /// The LED bits the host set (bit 0 Scroll, 1 Num, 2 Caps Lock).
    pub fn leds(&self) -> u8 {
        self.leds
    }

    /// The selected scan code set (1, 2 or 3).
    pub fn scan_code_set(&self) -> u8 {
        self.scan_code_set
    }

    /// True when a byte waits for the controller.
    pub fn has_output(&self) -> bool {
        !self.responses.is_empty() || !self.scancodes.is_empty()
    }

    /// The next byte for the controller: command responses first, then scan codes.
    pub fn read(&mut self) -> Option<u8> {
        let byte = self.responses.pop_front().or_else(|| self.scancodes.pop_front())?;
        self.last_sent = byte;
        Some(byte)
    }

    /// Key events as set-2 bytes. Dropped while scanning is disabled, and whole when
    /// the buffer cannot hold them.
    pub fn push_scancodes(&mut self, set2: &[u8]) {
        for &byte in set2 {
            self.track(byte);
        }
        if !self.scanning {
            log::debug!("ps2 keyboard: scanning disabled, {} scan code bytes dropped", set2.len());
            return;
        }
        if self.scancodes.len() + set2.len() > SCANCODE_BUFFER {
            log::warn!("ps2 keyboard: buffer full, {} scan code bytes dropped", set2.len());
            return;
        }
        match self.scan_code_set {
            1 => {
                let converted: Vec<u8> = set2.iter().filter_map(|&b| self.to_set1.translate(b)).collect();
                self.scancodes.extend(converted);
            }
            set => {
                if set == 3 && !self.warned_set3 {
                    log::warn!("ps2 keyboard: scan code set 3 is not implemented, sending set 2");
                    self.warned_set3 = true;
                }
                self.scancodes.extend(set2);
            }
        }
    }

    /// A byte from the host (through the controller's data port).
    pub fn write(&mut self, byte: u8) {
        if let Some(command) = self.awaiting_parameter.take() {
            self.parameter(command, byte);
            return;
        }
        match byte {
            SET_LEDS | SET_TYPEMATIC | SCAN_CODE_SET => {
                self.respond(&[ACK]);
                self.awaiting_parameter = Some(byte);
            }
            ECHO => self.respond(&[ECHO]),
            IDENTIFY => self.respond(&[ACK, MF2_ID[0], MF2_ID[1]]),
            ENABLE => {
                self.scancodes.clear();
                self.scanning = true;
                self.respond(&[ACK]);
            }
            DEFAULT_DISABLE => {
                self.set_defaults();
                self.scanning = false;
                self.respond(&[ACK]);
            }
            SET_DEFAULT => {
                self.set_defaults();
                self.respond(&[ACK]);
            }
            SET_ALL_KEYS_FIRST..=SET_ALL_KEYS_LAST => {
                log::debug!("ps2 keyboard: set-3 key type command {byte:#04x} acknowledged and ignored");
                self.respond(&[ACK]);
            }
            RESEND_COMMAND => {
                let last = self.last_sent;
                self.respond(&[last]);
            }
            RESET => {
                // The key matrix is not reset: a key still down stays down.
                *self = Ps2Keyboard { warned_set3: self.warned_set3, held: self.held, ..Ps2Keyboard::new() };
                self.respond(&[ACK, BAT_OK]);
            }
            _ => {
                log::warn!("ps2 keyboard: unknown command {byte:#04x}");
                self.respond(&[RESEND]);
            }
        }
    }

    fn parameter(&mut self, command: u8, value: u8) {
        match command {
            SET_LEDS => {
                self.leds = value & 0b111;
                self.respond(&[ACK]);
            }
            SET_TYPEMATIC => {
                self.typematic = value & 0x7f;
                self.respond(&[ACK]);
            }
            _ => match value {
                0 => {
                    let set = self.scan_code_set;
                    self.respond(&[ACK, set]);
                }
                1..=3 => {
                    self.scan_code_set = value;
                    self.to_set1.reset();
                    self.scancodes.clear();
                    self.respond(&[ACK]);
                }
                _ => {
                    log::warn!("ps2 keyboard: scan code set {value:#04x} does not exist");
                    self.respond(&[RESEND]);
                }
            },
        }
    }

    /// Default typematic rate, set 2 kept (the IBM reference), scan codes cleared.
    fn set_defaults(&mut self) {
        self.typematic = DEFAULT_TYPEMATIC;
        self.scancodes.clear();
    }

    fn respond(&mut self, bytes: &[u8]) {
        self.responses.extend(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(k: &mut Ps2Keyboard) -> Vec<u8> {
        std::iter::from_fn(|| k.read()).collect()
    }

    #[test]
    fn reset_and_identify() {
        let mut k = Ps2Keyboard::new();
        k.write(RESET);
        assert_eq!(drain(&mut k), vec![ACK, BAT_OK]);
        k.write(IDENTIFY);
        assert_eq!(drain(&mut k), vec![ACK, 0xab, 0x83]);
        k.write(ECHO);
        assert_eq!(drain(&mut k), vec![ECHO]);
        k.write(0x42);
        assert_eq!(drain(&mut k), vec![RESEND], "unknown command");
    }

    #[test]
    fn typematic_byte_decodes_to_the_ibm_table() {
        let mut k = Ps2Keyboard::new();
        assert_eq!(k.typematic_delay_ns(), 500_000_000, "power-on: 500 ms");
        assert_eq!(k.typematic_period_ns(), 11 * 2 * 4_170_000, "power-on: 10.9 characters/s");
        for (byte, delay_ms, period_ns) in
            [(0x00, 250, 8 * 4_170_000), (0x1f, 250, 15 * 8 * 4_170_000), (0x60, 1000, 8 * 4_170_000)]
        {
            k.write(SET_TYPEMATIC);
            k.write(byte);
            assert_eq!((k.typematic_delay_ns(), k.typematic_period_ns()), (delay_ms * 1_000_000, period_ns));
        }
    }

    #[test]
    fn the_last_key_pressed_is_the_held_one() {
        let mut k = Ps2Keyboard::new();
        k.push_scancodes(&[0x1c]);
        assert_eq!(k.held(), Some((false, 0x1c)), "A down");
        k.push_scancodes(&[0xe0, 0x75]);
        assert_eq!(k.held(), Some((true, 0x75)), "then grey Up: only it repeats");
        k.push_scancodes(&[0xf0, 0x1c]);
        assert_eq!(k.held(), Some((true, 0x75)), "releasing A leaves Up held");
        k.push_scancodes(&[0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77]);
        assert_eq!(k.held(), Some((true, 0x75)), "Pause neither repeats nor releases");
        drain(&mut k);
        k.repeat();
        assert_eq!(drain(&mut k), vec![0xe0, 0x75]);
        k.push_scancodes(&[0xe0, 0xf0, 0x75]);
        assert_eq!(k.held(), None);
        drain(&mut k);
        k.repeat();
        assert_eq!(drain(&mut k), Vec::<u8>::new());
    }

    #[test]
    fn leds_typematic_and_scan_code_set() {
        let mut k = Ps2Keyboard::new();
        k.write(SET_LEDS);
        k.write(0xff);
        assert_eq!(k.leds(), 0b111);
        k.write(SET_TYPEMATIC);
        k.write(0x20);
        assert_eq!(k.typematic, 0x20);
        k.write(SCAN_CODE_SET);
        k.write(0);
        assert_eq!(drain(&mut k), vec![ACK, ACK, ACK, ACK, ACK, ACK, 2]);
        k.write(SCAN_CODE_SET);
        k.write(1);
        k.write(SCAN_CODE_SET);
        k.write(7);
        assert_eq!(drain(&mut k), vec![ACK, ACK, ACK, RESEND]);
        assert_eq!(k.scan_code_set(), 1);
        // Set 1: set-2 input is converted inside the keyboard.
        k.push_scancodes(&[0x1c, 0xf0, 0x1c]);
        assert_eq!(drain(&mut k), vec![0x1e, 0x9e]);
    }

    #[test]
    fn disable_enable_scanning_and_response_priority() {
        let mut k = Ps2Keyboard::new();
        k.push_scancodes(&[0x1c]);
        k.write(ECHO);
        assert_eq!(drain(&mut k), vec![ECHO, 0x1c], "responses jump the scan code queue");
        k.push_scancodes(&[0x1c]);
        k.write(DEFAULT_DISABLE);
        k.push_scancodes(&[0x32]);
        assert_eq!(drain(&mut k), vec![ACK], "F5 clears and stops scanning");
        k.write(ENABLE);
        k.push_scancodes(&[0x32]);
        assert_eq!(drain(&mut k), vec![ACK, 0x32]);
        k.write(RESEND_COMMAND);
        assert_eq!(drain(&mut k), vec![0x32]);
    }

    #[test]
    fn buffer_limit() {
        let mut k = Ps2Keyboard::new();
        for _ in 0..SCANCODE_BUFFER {
            k.push_scancodes(&[0x1c]);
        }
        k.push_scancodes(&[0x32]);
        let out = drain(&mut k);
        assert_eq!(out.len(), SCANCODE_BUFFER);
        assert!(!out.contains(&0x32));
    }
}
