//! The keyboard: the IRQ 1 handler (INT 09h) turning scan code set 1 (the 8042
//! translates set 2) into BIOS key codes in the BDA's 16-entry ring buffer, and INT
//! 16h reading them (IBM PC/AT Technical Reference, keyboard BIOS).

use super::frame::{Frame, ZF};
use super::{bda, read_u16, read_u8, unsupported, write_u16, write_u8, Action};
use rx86_core::phys::PhysMemory;
use rx86_core::platform::Platform;

/// BDA keyboard flag 1 bits.
const RIGHT_SHIFT: u8 = 0x01;
const LEFT_SHIFT: u8 = 0x02;
const CTRL: u8 = 0x04;
const ALT: u8 = 0x08;
const NUM_LOCK: u8 = 0x20;
const CAPS_LOCK: u8 = 0x40;
/// BDA keyboard flag 3: the last code was the E0h prefix.
const E0_SEEN: u8 = 0x02;

/// (scan code, normal, shifted) ASCII for the main block of set 1 (0 = none).
const KEYS: [(u8, u8); 0x3a] = [
    (0, 0),
    (0x1b, 0x1b),
    (b'1', b'!'),
    (b'2', b'@'),
    (b'3', b'#'),
    (b'4', b'$'),
    (b'5', b'%'),
    (b'6', b'^'),
    (b'7', b'&'),
    (b'8', b'*'),
    (b'9', b'('),
    (b'0', b')'),
    (b'-', b'_'),
    (b'=', b'+'),
    (0x08, 0x08),
    (b'\t', 0),
    (b'q', b'Q'),
    (b'w', b'W'),
    (b'e', b'E'),
    (b'r', b'R'),
    (b't', b'T'),
    (b'y', b'Y'),
    (b'u', b'U'),
    (b'i', b'I'),
    (b'o', b'O'),
    (b'p', b'P'),
    (b'[', b'{'),
    (b']', b'}'),
    (b'\r', b'\r'),
    (0, 0),
    (b'a', b'A'),
    (b's', b'S'),
    (b'd', b'D'),
    (b'f', b'F'),
    (b'g', b'G'),
    (b'h', b'H'),
    (b'j', b'J'),
    (b'k', b'K'),
    (b'l', b'L'),
    (b';', b':'),
    (b'\'', b'"'),
    (b'`', b'~'),
    (0, 0),
    (b'\\', b'|'),
    (b'z', b'Z'),
    (b'x', b'X'),
    (b'c', b'C'),
    (b'v', b'V'),
    (b'b', b'B'),
    (b'n', b'N'),
    (b'm', b'M'),
    (b',', b'<'),
    (b'.', b'>'),
    (b'/', b'?'),
    (0, 0),
    (b'*', b'*'),
    (0, 0),
    (b' ', b' '),
];

/// The BIOS key code (scan << 8 | ASCII) for a make code, or `None` for keys that
/// only change state. `extended` is an E0-prefixed key (arrows etc. of the 101-key
/// keyboard), which reports ASCII E0h.
pub fn key_code(scan: u8, flags: u8, extended: bool) -> Option<u16> {
    let shift = flags & (LEFT_SHIFT | RIGHT_SHIFT) != 0;
    let code = |ascii: u8| Some((u16::from(scan) << 8) | u16::from(ascii));
    if extended {
        return match scan {
            0x1c => code(b'\r'),
            0x35 => code(b'/'),
            0x47..=0x53 => code(0xe0),
            _ => None,
        };
    }
    match scan {
        0x01..=0x39 => {
            let (normal, shifted) = KEYS[usize::from(scan)];
            if normal == 0 {
                return None;
            }
            if flags & ALT != 0 {
                return code(0);
            }
            if flags & CTRL != 0 {
                return match normal {
                    b'a'..=b'z' => code(normal - b'a' + 1),
                    b'\r' => code(b'\n'),
                    0x08 => code(0x7f),
                    b'[' | 0x1b => code(0x1b),
                    _ => None,
                };
            }
            let letter = normal.is_ascii_lowercase();
            let upper = shift ^ (letter && flags & CAPS_LOCK != 0);
            code(if upper { shifted } else { normal })
        }
        // F1-F10: scan codes 3Bh-44h, shifted 54h-5Dh, ctrl 5Eh-67h, alt 68h-71h.
        0x3b..=0x44 => {
            let s = if flags & ALT != 0 {
                scan + 0x2d
            } else if flags & CTRL != 0 {
                scan + 0x23
            } else if shift {
                scan + 0x19
            } else {
                scan
            };
            Some(u16::from(s) << 8)
        }
        // Keypad: digits with Num Lock (and no shift), cursor keys otherwise.
        0x47..=0x53 => {
            let digits = b"789-456+1230.";
            let d = digits[usize::from(scan - 0x47)];
            if (flags & NUM_LOCK != 0) != shift || d == b'-' || d == b'+' {
                code(d)
            } else {
                code(0)
            }
        }
        0x57 => Some(0x8500),
        0x58 => Some(0x8600),
        _ => None,
    }
}

/// Appends `code` to the BDA ring buffer; false when it is full.
pub fn push_key(mem: &PhysMemory, code: u16) -> bool {
    let start = read_u16(mem, bda::KBD_BUFFER_START);
    let end = read_u16(mem, bda::KBD_BUFFER_END);
    let head = read_u16(mem, bda::KBD_HEAD);
    let tail = read_u16(mem, bda::KBD_TAIL);
    let mut next = tail + 2;
    if next >= end {
        next = start;
    }
    if next == head || start >= end {
        return false;
    }
    write_u16(mem, 0x400 + u64::from(tail), code);
    write_u16(mem, bda::KBD_TAIL, next);
    true
}

fn peek_key(mem: &PhysMemory) -> Option<u16> {
    let head = read_u16(mem, bda::KBD_HEAD);
    (head != read_u16(mem, bda::KBD_TAIL)).then(|| read_u16(mem, 0x400 + u64::from(head)))
}

fn pop_key(mem: &PhysMemory) -> Option<u16> {
    let code = peek_key(mem)?;
    let mut head = read_u16(mem, bda::KBD_HEAD) + 2;
    if head >= read_u16(mem, bda::KBD_BUFFER_END) {
        head = read_u16(mem, bda::KBD_BUFFER_START);
    }
    write_u16(mem, bda::KBD_HEAD, head);
    Some(code)
}

/// IRQ 1 (INT 09h): reads a scan code from the 8042 and updates the shift state or
/// the key buffer.
pub fn irq1(hw: &dyn Platform) -> Action {
    let mem = hw.memory();
    let status = hw.io_read(0x64, 1);
    if status & 1 != 0 {
        let code = hw.io_read(0x60, 1) as u8;
        handle_scan_code(mem, code);
    }
    hw.io_write(0x20, 1, 0x20);
    Action::Return
}

/// Applies one set-1 scan code to the BDA state.
pub fn handle_scan_code(mem: &PhysMemory, code: u8) {
    let mut flags = read_u8(mem, bda::KBD_FLAGS);
    let flags3 = read_u8(mem, bda::KBD_FLAGS3);
    if code == 0xe0 {
        write_u8(mem, bda::KBD_FLAGS3, flags3 | E0_SEEN);
        return;
    }
    let extended = flags3 & E0_SEEN != 0;
    write_u8(mem, bda::KBD_FLAGS3, flags3 & !E0_SEEN);
    let release = code & 0x80 != 0;
    let scan = code & 0x7f;
    let bit = match (scan, extended) {
        (0x2a, false) => LEFT_SHIFT,
        (0x36, false) => RIGHT_SHIFT,
        (0x1d, _) => CTRL,
        (0x38, _) => ALT,
        // E0 2A / E0 AA are fake shifts around some extended keys.
        (0x2a, true) => return,
        _ => 0,
    };
    if bit != 0 {
        flags = if release { flags & !bit } else { flags | bit };
        write_u8(mem, bda::KBD_FLAGS, flags);
        return;
    }
    if release {
        return;
    }
    match (scan, extended) {
        (0x3a, false) => write_u8(mem, bda::KBD_FLAGS, flags ^ CAPS_LOCK),
        (0x45, false) => write_u8(mem, bda::KBD_FLAGS, flags ^ NUM_LOCK),
        _ => {
            if let Some(k) = key_code(scan, flags, extended) {
                if !push_key(mem, k) {
                    log::debug!("BIOS: keyboard buffer full, key {k:#06x} dropped");
                }
            }
        }
    }
}

/// INT 16h.
pub fn int16(hw: &dyn Platform, f: &mut Frame) -> Action {
    let mem = hw.memory();
    match f.ah() {
        0x00 | 0x10 => match pop_key(mem) {
            Some(k) => f.set_ax(if f.ah() == 0x00 { compatible(k) } else { k }),
            None => return Action::Wait,
        },
        0x01 | 0x11 => match peek_key(mem) {
            Some(k) => {
                f.set_ax(if f.ah() == 0x01 { compatible(k) } else { k });
                f.set_flag(ZF, false);
            }
            None => f.set_flag(ZF, true),
        },
        0x02 => f.set_al(read_u8(mem, bda::KBD_FLAGS)),
        0x12 => {
            f.set_al(read_u8(mem, bda::KBD_FLAGS));
            f.set_ah(read_u8(mem, bda::KBD_FLAGS + 1));
        }
        0x03 => {}
        0x05 => f.set_al(u8::from(!push_key(mem, f.cx()))),
        0x09 => f.set_al(0x20),
        0x0a => f.set_bx(0x41ab),
        _ => unsupported("INT 16h", f),
    }
    Action::Return
}

/// The AH=00h/01h view of an enhanced key: E0h ASCII of the 101-key cursor keys
/// reads as 00h.
fn compatible(code: u16) -> u16 {
    if code & 0xff == 0xe0 && code >> 8 != 0 {
        code & 0xff00
    } else {
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_digits_and_shift() {
        assert_eq!(key_code(0x1e, 0, false), Some(0x1e61), "a");
        assert_eq!(key_code(0x1e, LEFT_SHIFT, false), Some(0x1e41), "A");
        assert_eq!(key_code(0x1e, CAPS_LOCK, false), Some(0x1e41), "caps A");
        assert_eq!(key_code(0x1e, CAPS_LOCK | RIGHT_SHIFT, false), Some(0x1e61));
        assert_eq!(key_code(0x02, LEFT_SHIFT, false), Some(0x0221), "!");
        assert_eq!(key_code(0x1c, 0, false), Some(0x1c0d), "enter");
        assert_eq!(key_code(0x2e, CTRL, false), Some(0x2e03), "ctrl-c");
        assert_eq!(key_code(0x3b, 0, false), Some(0x3b00), "F1");
        assert_eq!(key_code(0x48, 0, true), Some(0x48e0), "grey up arrow");
        assert_eq!(key_code(0x48, 0, false), Some(0x4800), "keypad up");
        assert_eq!(key_code(0x48, NUM_LOCK, false), Some(0x4838), "keypad 8");
        assert_eq!(key_code(0x2a, 0, false), None, "shift alone");
        assert_eq!(compatible(0x48e0), 0x4800);
        assert_eq!(compatible(0x1c0d), 0x1c0d);
    }

    fn bda_platform() -> rx86_core::platform::BasicPlatform {
        let p = rx86_core::platform::BasicPlatform::new(2 << 20).unwrap();
        for (at, v) in [(bda::KBD_BUFFER_START, 0x1e), (bda::KBD_BUFFER_END, 0x3e), (bda::KBD_HEAD, 0x1e)] {
            write_u16(&p.memory, at, v);
        }
        write_u16(&p.memory, bda::KBD_TAIL, 0x1e);
        p
    }

    #[test]
    fn scan_codes_fill_the_ring_and_int16_drains_it() {
        let p = bda_platform();
        let mem = &p.memory;
        // Shift down, 'a', shift up, 'b', E0 48 (grey up arrow).
        for code in [0x2a, 0x1e, 0x9e, 0xaa, 0x30, 0xe0, 0x48, 0xe0, 0xc8] {
            handle_scan_code(mem, code);
        }
        let mut f = Frame::from_bytes(&[0; super::super::frame::FRAME_BYTES]);
        let mut keys = Vec::new();
        for _ in 0..3 {
            f.set_ah(0x10);
            assert_eq!(int16(&p, &mut f), Action::Return);
            keys.push(f.ax());
        }
        assert_eq!(keys, [0x1e41, 0x3062, 0x48e0]);
        f.set_ah(0x01);
        int16(&p, &mut f);
        assert_ne!(f.flags & ZF, 0, "empty");
        f.set_ah(0x00);
        assert_eq!(int16(&p, &mut f), Action::Wait, "AH=00h waits for a key");
    }

    #[test]
    fn a_full_ring_drops_keys() {
        let p = bda_platform();
        let stored = (0..20).filter(|&i| push_key(&p.memory, 0x1e61 + i)).count();
        assert_eq!(stored, 15, "16 slots, one kept free to tell full from empty");
    }
}
