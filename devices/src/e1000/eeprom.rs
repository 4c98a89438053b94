//! The 82540EM's serial EEPROM: 64 16-bit words behind a Microwire interface that software
//! bit-bangs through EECD (8254x SDM section 5.3; table 5-2 is the word map), or reads a word
//! at a time through EERD.
//!
//! Microwire read: with CS high, software clocks in a start bit, the opcode 10b and a 6-bit
//! word address on DI (one bit per rising SK edge); the EEPROM then drives a dummy 0 and the
//! word's 16 bits, most significant first, on DO, one bit per falling edge, and carries on
//! with the following words while CS stays high. Writes and erases are not modelled: the
//! words are fixed when the NIC is built.

use super::regs::{EECD_CS, EECD_DI, EECD_DO, EECD_SK};

/// Words in the EEPROM.
pub const EEPROM_WORDS: usize = 64;
/// Word that makes the sum of words 0x00-0x3F equal [`EEPROM_SUM`].
const CHECKSUM_WORD: usize = 0x3f;
/// What the words 0x00-0x3F add up to (modulo 2^16) in a valid image.
pub const EEPROM_SUM: u16 = 0xbaba;
/// Microwire READ opcode with its start bit: 1 10b.
const OPCODE_READ: u16 = 0b110;
/// Bits shifted in before data comes out: start bit, 2 opcode bits, 6 address bits.
const COMMAND_BITS: u32 = 9;

/// The default image (table 5-2 values as an 82540EM card ships them): the MAC address in
/// words 0-2 is filled in by [`Eeprom::new`], word 0x0B/0x0D are the subsystem and device IDs.
const TEMPLATE: [u16; EEPROM_WORDS] = [
    0x0000, 0x0000, 0x0000, 0x0000, 0xffff, 0x0000, 0x0000, 0x0000, //
    0x3000, 0x1000, 0x6403, 0x100e, 0x8086, 0x100e, 0x8086, 0x3040, //
    0x0008, 0x2000, 0x7e14, 0x0048, 0x1000, 0x00d8, 0x0000, 0x2700, //
    0x6cc9, 0x3150, 0x0722, 0x040b, 0x0984, 0x0000, 0xc000, 0x0706, //
    0x1008, 0x0000, 0x0f04, 0x7fff, 0x4d01, 0xffff, 0xffff, 0xffff, //
    0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, //
    0x0100, 0x4000, 0x121c, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, //
    0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0x0000, //
];

/// The EEPROM and the state of its Microwire interface.
#[derive(Clone)]
pub struct Eeprom {
    words: [u16; EEPROM_WORDS],
    /// The last SK/CS/DI levels software drove (EECD bits 0-2).
    pins: u32,
    /// Bits clocked in since CS rose.
    shift_in: u16,
    /// How many bits were clocked in.
    bits_in: u32,
    /// While reading: the bit position on DO, counted from the start of the addressed word
    /// (-1 is the dummy 0 before it).
    out_bit: Option<i64>,
}

impl Eeprom {
    /// An image holding `mac` in words 0-2 and a valid checksum.
    pub fn new(mac: [u8; 6]) -> Self {
        let mut words = TEMPLATE;
        for (i, pair) in mac.chunks_exact(2).enumerate() {
            words[i] = u16::from_le_bytes([pair[0], pair[1]]);
        }
        let sum = words[..CHECKSUM_WORD].iter().fold(0u16, |a, &w| a.wrapping_add(w));
        words[CHECKSUM_WORD] = EEPROM_SUM.wrapping_sub(sum);
        Eeprom { words, pins: 0, shift_in: 0, bits_in: 0, out_bit: None }
    }

    /// Word `index` (wrapping at the EEPROM size, as the 6 address bits do).
    pub fn word(&self, index: usize) -> u16 {
        self.words[index % EEPROM_WORDS]
    }

    /// Software drove EECD's SK, CS and DI bits to `value`.
    pub fn write_pins(&mut self, value: u32) {
        let old = self.pins;
        self.pins = value & (EECD_SK | EECD_CS | EECD_DI);
        if value & EECD_CS == 0 {
            self.out_bit = None;
            return;
        }
        if old & EECD_CS == 0 {
            // CS rising: a new command.
            self.shift_in = 0;
            self.bits_in = 0;
            self.out_bit = None;
        }
        let rising = old & EECD_SK == 0 && value & EECD_SK != 0;
        let falling = old & EECD_SK != 0 && value & EECD_SK == 0;
        if falling {
            if let Some(bit) = &mut self.out_bit {
                *bit += 1;
            }
            return;
        }
        if !rising || self.out_bit.is_some() || self.bits_in >= COMMAND_BITS {
            return;
        }
        self.shift_in = (self.shift_in << 1) | u16::from(value & EECD_DI != 0);
        self.bits_in += 1;
        if self.bits_in == COMMAND_BITS && self.shift_in >> 6 == OPCODE_READ {
            let address = i64::from(self.shift_in & 0x3f);
            self.out_bit = Some(address * 16 - 1);
        }
    }

    /// The EECD pin bits software reads back: its own SK/CS/DI and the EEPROM's DO.
    pub fn read_pins(&self) -> u32 {
        let data_out = match self.out_bit {
            Some(bit) if bit >= 0 => {
                let word = self.word((bit / 16) as usize);
                (word >> (15 - bit % 16)) & 1 != 0
            }
            Some(_) => false,
            // Microwire parts float DO high when idle.
            None => true,
        };
        self.pins | if data_out { EECD_DO } else { 0 }
    }
}
