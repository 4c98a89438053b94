//! Intel 8042 keyboard controller, with a PS/2 keyboard and mouse behind it.
//!
//! References: IBM PS/2 Hardware Interface Technical Reference, "Keyboard and
//! Auxiliary Device Controller" (status register, command byte, controller commands,
//! output port); the Linux `i8042` driver's probe sequence for what guests rely on.
//!
//! # Board wiring
//!
//! The controller answers at two ports that are not adjacent (0x61 in between belongs
//! to system control port B), so it is shared and reached through two port devices:
//! [`I8042DataPort`] at 0x60 and [`I8042CommandPort`] at 0x64, both length 1. The
//! frontend feeds input through [`I8042::push_key_scancodes`] and
//! [`I8042::push_mouse_packet`] on the shared controller.
//!
//! # Typematic repeat
//!
//! With [`I8042::attach_typematic`] the board gives the controller a clock and a timer:
//! a key held past the keyboard's typematic delay repeats its make code at the typematic
//! rate the guest set (command 0xF3), until it is released or another key is pressed.
//! The board calls [`I8042::on_typematic_timer`] when the timer is due. Frontends send
//! one make code per press and one break code per release.
//!
//! # Interrupts
//!
//! IRQ1 is high while the output buffer holds keyboard data and command byte bit 0 is
//! set; IRQ12 likewise for mouse data and bit 1. Reading the data port drops the line
//! before the next byte is loaded, so every byte gives an edge-triggered controller a
//! fresh rising edge.

mod ps2_keyboard;
mod ps2_mouse;
mod translate;

pub use ps2_keyboard::{HeldKey, Ps2Keyboard};
pub use ps2_mouse::{buttons as mouse_buttons, Ps2Mouse};
pub use translate::Set1Translator;

use rx86_core::bus::{size_mask, BusDevice};
use rx86_core::irq::SharedIrqLine;
use rx86_core::phys::A20Gate;
use rx86_core::platform::{PowerControl, PowerEvent};
use rx86_core::time::{Clock, Timer};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

// Status register (read at 0x64).
/// OBF: output buffer full (data waiting at 0x60).
const STATUS_OBF: u8 = 0b0000_0001;
/// SYS: system flag (set by a passed self-test or command byte bit 2).
const STATUS_SYS: u8 = 0b0000_0100;
/// A2: the last write was a command (to 0x64) rather than data.
const STATUS_A2: u8 = 0b0000_1000;
/// INH: keyboard not inhibited by the key lock.
const STATUS_UNLOCKED: u8 = 0b0001_0000;
/// AUXB: the output buffer holds data from the auxiliary device.
const STATUS_AUXB: u8 = 0b0010_0000;

// Command byte (controller RAM byte 0).
/// Bit 0: interrupt on keyboard output buffer full (IRQ1).
const CMD_KBD_INT: u8 = 0b0000_0001;
/// Bit 1: interrupt on auxiliary output buffer full (IRQ12).
const CMD_AUX_INT: u8 = 0b0000_0010;
/// Bit 2: system flag.
const CMD_SYS: u8 = 0b0000_0100;
/// Bit 4: keyboard interface disabled.
const CMD_DISABLE_KBD: u8 = 0b0001_0000;
/// Bit 5: auxiliary interface disabled.
const CMD_DISABLE_AUX: u8 = 0b0010_0000;
/// Bit 6: translate keyboard scan codes from set 2 to set 1.
const CMD_XLAT: u8 = 0b0100_0000;
/// Command byte after power-on (as QEMU: both interrupts enabled, no translation).
const CMD_POWER_ON: u8 = CMD_KBD_INT | CMD_AUX_INT;

// Output port (commands 0xD0/0xD1).
/// Bit 0: system reset, active low.
const OUT_RESET_N: u8 = 0b0000_0001;
/// Bit 1: A20 gate.
const OUT_A20: u8 = 0b0000_0010;
/// Bit 4: keyboard output buffer full (reads only).
const OUT_KBD_OBF: u8 = 0b0001_0000;
/// Bit 5: auxiliary output buffer full (reads only).
const OUT_AUX_OBF: u8 = 0b0010_0000;
/// Bits 2-3 and 6-7 (unused, keyboard clock and data lines) idle high.
const OUT_IDLE_HIGH: u8 = 0b1100_1100;

// Controller commands (written to 0x64).
/// 0x20-0x3F: read controller RAM byte (0x20 = command byte).
const READ_RAM_FIRST: u8 = 0x20;
/// Last read-RAM command.
const READ_RAM_LAST: u8 = 0x3f;
/// 0x60-0x7F: write controller RAM byte (0x60 = command byte).
const WRITE_RAM_FIRST: u8 = 0x60;
/// Last write-RAM command.
const WRITE_RAM_LAST: u8 = 0x7f;
/// Disable the auxiliary interface.
const DISABLE_AUX: u8 = 0xa7;
/// Enable the auxiliary interface.
const ENABLE_AUX: u8 = 0xa8;
/// Test the auxiliary interface: 0x00 = no error.
const TEST_AUX: u8 = 0xa9;
/// Controller self-test: 0x55 = passed.
const SELF_TEST: u8 = 0xaa;
/// Test the keyboard interface: 0x00 = no error.
const TEST_KBD: u8 = 0xab;
/// Disable the keyboard interface.
const DISABLE_KBD: u8 = 0xad;
/// Enable the keyboard interface.
const ENABLE_KBD: u8 = 0xae;
/// Read the output port.
const READ_OUTPUT_PORT: u8 = 0xd0;
/// Write the output port (next data byte).
const WRITE_OUTPUT_PORT: u8 = 0xd1;
/// Write the keyboard output buffer (next data byte comes back as keyboard data).
const WRITE_KBD_BUFFER: u8 = 0xd2;
/// Write the auxiliary output buffer (next data byte comes back as mouse data).
const WRITE_AUX_BUFFER: u8 = 0xd3;
/// Write to the auxiliary device (next data byte goes to the mouse).
const WRITE_AUX: u8 = 0xd4;
/// Disable A20 (HP Vectra extension, also in QEMU and Bochs).
const DISABLE_A20: u8 = 0xdd;
/// Enable A20.
const ENABLE_A20: u8 = 0xdf;
/// 0xF0-0xFF: pulse output port bits 0-3 low where the command's bit is 0.
const PULSE_FIRST: u8 = 0xf0;

/// Self-test passed.
const SELF_TEST_PASSED: u8 = 0x55;
/// Interface test: no error.
const INTERFACE_OK: u8 = 0x00;
/// Bytes of controller RAM reachable by 0x20-0x3F / 0x60-0x7F.
const RAM_SIZE: usize = 32;

/// Where a byte in the output buffer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Keyboard,
    Aux,
}

/// A command waiting for its data byte at 0x60.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PendingData {
    Ram(u8),
    OutputPort,
    KeyboardBuffer,
    AuxBuffer,
    AuxDevice,
}

/// The 8042 controller with its keyboard and mouse.
pub struct I8042 {
    /// Controller RAM; byte 0 is the command byte.
    ram: [u8; RAM_SIZE],
    sys_flag: bool,
    last_write_was_command: bool,
    output_port: u8,
    output_buffer: Option<(u8, Source)>,
    last_output: u8,
    /// Controller-generated bytes waiting for the output buffer.
    controller_output: VecDeque<(u8, Source)>,
    pending: Option<PendingData>,
    keyboard: Ps2Keyboard,
    mouse: Ps2Mouse,
    xlat: Set1Translator,
    kbd_irq: SharedIrqLine,
    aux_irq: SharedIrqLine,
    kbd_level: bool,
    aux_level: bool,
    a20: A20Gate,
    power: PowerControl,
    typematic: Option<Typematic>,
}

/// The repeat timer of the held key.
struct Typematic {
    clock: Clock,
    timer: Timer,
    /// The key the timer is armed for.
    key: Option<HeldKey>,
}

impl I8042 {
    /// A controller after power-on. `kbd_irq` is IRQ1, `aux_irq` IRQ12; the output
    /// port drives `a20` and posts resets on `power`.
    pub fn new(kbd_irq: SharedIrqLine, aux_irq: SharedIrqLine, a20: A20Gate, power: PowerControl) -> Self {
        let mut ram = [0; RAM_SIZE];
        ram[0] = CMD_POWER_ON;
        let a20_bit = if a20.enabled() { OUT_A20 } else { 0 };
        I8042 {
            ram,
            sys_flag: false,
            last_write_was_command: true,
            output_port: OUT_IDLE_HIGH | OUT_RESET_N | a20_bit,
            output_buffer: None,
            last_output: 0,
            controller_output: VecDeque::new(),
            pending: None,
            keyboard: Ps2Keyboard::new(),
            mouse: Ps2Mouse::new(),
            xlat: Set1Translator::default(),
            kbd_irq,
            aux_irq,
            kbd_level: false,
            aux_level: false,
            a20,
            power,
            typematic: None,
        }
    }

    /// Turns on typematic repeat, timed by `clock` with `timer` (see the module docs).
    pub fn attach_typematic(&mut self, clock: Clock, timer: Timer) {
        self.typematic = Some(Typematic { clock, timer, key: None });
    }

    /// Arms the repeat timer for a newly held key, or stops it when the key went up.
    fn follow_held_key(&mut self) {
        let held = self.keyboard.held();
        let delay = self.keyboard.typematic_delay_ns();
        let Some(t) = &mut self.typematic else { return };
        if t.key == held {
            return;
        }
        t.key = held;
        match held {
            Some(_) => t.timer.arm_at(t.clock.now_ns() + delay),
            None => t.timer.cancel(),
        }
    }

    /// The repeat timer is due: the held key's make code goes out again, and the timer
    /// is armed for the next repeat at the keyboard's typematic rate.
    pub fn on_typematic_timer(&mut self) {
        let period = self.keyboard.typematic_period_ns();
        let held = self.keyboard.held();
        let Some(t) = &mut self.typematic else { return };
        if held.is_none() || t.key != held {
            t.key = None;
            t.timer.cancel();
            return;
        }
        t.timer.arm_at(t.clock.now_ns() + period);
        self.keyboard.repeat();
        self.fill_output_buffer();
    }

    /// Machine reset: controller, keyboard and mouse return to power-on state; the
    /// system flag survives (a warm boot shows SYS = 1, as on real controllers whose
    /// power stays on).
    pub fn reset(&mut self) {
        let sys_flag = self.sys_flag;
        let fresh = I8042::new(self.kbd_irq.clone(), self.aux_irq.clone(), self.a20.clone(), self.power.clone());
        let (kbd_level, aux_level, typematic) = (self.kbd_level, self.aux_level, self.typematic.take());
        *self = I8042 { sys_flag, kbd_level, aux_level, typematic, ..fresh };
        self.update_irqs();
    }

    /// Key events from the frontend as scan code set 2 bytes (make codes, 0xF0
    /// break prefixes, 0xE0/0xE1 escapes).
    pub fn push_key_scancodes(&mut self, bytes: &[u8]) {
        self.keyboard.push_scancodes(bytes);
        self.follow_held_key();
        self.fill_output_buffer();
    }

    /// Mouse motion from the frontend: `dx` right, `dy` up, `dz` wheel, `buttons`
    /// from [`mouse_buttons`].
    pub fn push_mouse_packet(&mut self, dx: i32, dy: i32, dz: i32, buttons: u8) {
        self.mouse.push_packet(dx, dy, dz, buttons);
        self.fill_output_buffer();
    }

    /// The keyboard (to inspect LEDs or the scan code set).
    pub fn keyboard(&self) -> &Ps2Keyboard {
        &self.keyboard
    }

    /// The mouse.
    pub fn mouse(&self) -> &Ps2Mouse {
        &self.mouse
    }

    fn command_byte(&self) -> u8 {
        self.ram[0]
    }

    /// The status register (port 0x64).
    pub fn read_status(&self) -> u8 {
        let mut status = STATUS_UNLOCKED;
        match self.output_buffer {
            Some((_, Source::Keyboard)) => status |= STATUS_OBF,
            Some((_, Source::Aux)) => status |= STATUS_OBF | STATUS_AUXB,
            None => {}
        }
        if self.sys_flag {
            status |= STATUS_SYS;
        }
        if self.last_write_was_command {
            status |= STATUS_A2;
        }
        status
    }

    /// Reads the output buffer (port 0x60). An empty buffer returns the last byte
    /// again, as the real latch does.
    pub fn read_data(&mut self) -> u8 {
        if let Some((byte, _)) = self.output_buffer.take() {
            self.last_output = byte;
            // Drop the lines before the next byte loads: a fresh edge per byte.
            self.update_irqs();
            self.fill_output_buffer();
        }
        self.last_output
    }

    /// A data byte (port 0x60): a pending command's parameter, or a byte for the
    /// keyboard.
    pub fn write_data(&mut self, value: u8) {
        self.last_write_was_command = false;
        match self.pending.take() {
            Some(PendingData::Ram(index)) => self.write_ram(index, value),
            Some(PendingData::OutputPort) => self.write_output_port(value),
            Some(PendingData::KeyboardBuffer) => self.controller_output.push_back((value, Source::Keyboard)),
            Some(PendingData::AuxBuffer) => self.controller_output.push_back((value, Source::Aux)),
            Some(PendingData::AuxDevice) => self.mouse.write(value),
            None => {
                // Sending to the keyboard re-enables its interface (as QEMU does).
                self.ram[0] &= !CMD_DISABLE_KBD;
                self.keyboard.write(value);
            }
        }
        self.fill_output_buffer();
    }

    /// A controller command (port 0x64). A new command abandons one still waiting
    /// for its data byte.
    pub fn write_command(&mut self, command: u8) {
        self.last_write_was_command = true;
        self.pending = None;
        match command {
            READ_RAM_FIRST..=READ_RAM_LAST => {
                let byte = self.ram[usize::from(command - READ_RAM_FIRST)];
                self.reply(byte);
            }
            WRITE_RAM_FIRST..=WRITE_RAM_LAST => self.pending = Some(PendingData::Ram(command - WRITE_RAM_FIRST)),
            DISABLE_AUX => self.ram[0] |= CMD_DISABLE_AUX,
            ENABLE_AUX => self.ram[0] &= !CMD_DISABLE_AUX,
            TEST_AUX | TEST_KBD => self.reply(INTERFACE_OK),
            SELF_TEST => {
                self.sys_flag = true;
                self.reply(SELF_TEST_PASSED);
            }
            DISABLE_KBD => self.ram[0] |= CMD_DISABLE_KBD,
            ENABLE_KBD => self.ram[0] &= !CMD_DISABLE_KBD,
            READ_OUTPUT_PORT => {
                let mut port = self.output_port & !(OUT_KBD_OBF | OUT_AUX_OBF);
                match self.output_buffer {
                    Some((_, Source::Keyboard)) => port |= OUT_KBD_OBF,
                    Some((_, Source::Aux)) => port |= OUT_AUX_OBF,
                    None => {}
                }
                self.reply(port);
            }
            WRITE_OUTPUT_PORT => self.pending = Some(PendingData::OutputPort),
            WRITE_KBD_BUFFER => self.pending = Some(PendingData::KeyboardBuffer),
            WRITE_AUX_BUFFER => self.pending = Some(PendingData::AuxBuffer),
            WRITE_AUX => self.pending = Some(PendingData::AuxDevice),
            DISABLE_A20 => self.set_a20(false),
            ENABLE_A20 => self.set_a20(true),
            PULSE_FIRST..=0xff => {
                if command & OUT_RESET_N == 0 {
                    log::info!("i8042: reset pulsed on the output port (command {command:#04x})");
                    self.power.request(PowerEvent::Reset);
                }
            }
            _ => log::warn!("i8042: unsupported controller command {command:#04x} ignored"),
        }
        self.fill_output_buffer();
    }

    fn reply(&mut self, byte: u8) {
        self.controller_output.push_back((byte, Source::Keyboard));
    }

    fn write_ram(&mut self, index: u8, value: u8) {
        self.ram[usize::from(index)] = value;
        if index == 0 {
            self.sys_flag = value & CMD_SYS != 0;
            if value & CMD_XLAT == 0 {
                self.xlat.reset();
            }
        }
    }

    fn write_output_port(&mut self, value: u8) {
        self.output_port = value;
        self.a20.set(value & OUT_A20 != 0);
        if value & OUT_RESET_N == 0 {
            log::info!("i8042: reset through the output port ({value:#04x})");
            self.power.request(PowerEvent::Reset);
        }
    }

    fn set_a20(&mut self, enabled: bool) {
        self.output_port = (self.output_port & !OUT_A20) | if enabled { OUT_A20 } else { 0 };
        self.a20.set(enabled);
    }

    /// Loads the output buffer when empty: controller replies first, then the
    /// keyboard (translated when XLAT is set), then the mouse, each only while its
    /// interface is enabled. Then drives the IRQ lines.
    fn fill_output_buffer(&mut self) {
        if self.output_buffer.is_none() {
            self.output_buffer = self.controller_output.pop_front().or_else(|| self.next_device_byte());
        }
        self.update_irqs();
    }

    fn next_device_byte(&mut self) -> Option<(u8, Source)> {
        let command = self.command_byte();
        if command & CMD_DISABLE_KBD == 0 {
            while let Some(byte) = self.keyboard.read() {
                if command & CMD_XLAT == 0 {
                    return Some((byte, Source::Keyboard));
                }
                if let Some(translated) = self.xlat.translate(byte) {
                    return Some((translated, Source::Keyboard));
                }
            }
        }
        if command & CMD_DISABLE_AUX == 0 {
            if let Some(byte) = self.mouse.read() {
                return Some((byte, Source::Aux));
            }
        }
        None
    }

    fn update_irqs(&mut self) {
        let command = self.command_byte();
        let kbd = matches!(self.output_buffer, Some((_, Source::Keyboard))) && command & CMD_KBD_INT != 0;
        let aux = matches!(self.output_buffer, Some((_, Source::Aux))) && command & CMD_AUX_INT != 0;
        if kbd != self.kbd_level {
            self.kbd_level = kbd;
            self.kbd_irq.set_level(kbd);
        }
        if aux != self.aux_level {
            self.aux_level = aux;
            self.aux_irq.set_level(aux);
        }
    }
}

/// A byte register: wider accesses use the low byte and read 0xFF above it.
fn byte_access(offset: u64, size: u8, what: &str) -> bool {
    if offset != 0 {
        log::warn!("i8042: {what} at offset {offset} of a one-byte port ignored");
        return false;
    }
    if size != 1 {
        log::debug!("i8042: {size}-byte {what}, using the low byte");
    }
    true
}

fn lock(controller: &Mutex<I8042>) -> std::sync::MutexGuard<'_, I8042> {
    controller.lock().unwrap_or_else(|e| e.into_inner())
}

/// Port 0x60: the data port of a shared [`I8042`].
pub struct I8042DataPort(pub Arc<Mutex<I8042>>);

/// Port 0x64: the status (read) and command (write) port of a shared [`I8042`].
pub struct I8042CommandPort(pub Arc<Mutex<I8042>>);

impl BusDevice for I8042DataPort {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        if !byte_access(offset, size, "data read") {
            return size_mask(size);
        }
        size_mask(size) & ((u64::MAX << 8) | u64::from(lock(&self.0).read_data()))
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if byte_access(offset, size, "data write") {
            lock(&self.0).write_data(value as u8);
        }
    }
}

impl BusDevice for I8042CommandPort {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        if !byte_access(offset, size, "status read") {
            return size_mask(size);
        }
        size_mask(size) & ((u64::MAX << 8) | u64::from(lock(&self.0).read_status()))
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if byte_access(offset, size, "command write") {
            lock(&self.0).write_command(value as u8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rx86_core::irq::RecordingIrqLine;

    struct Rig {
        kbc: I8042,
        irq1: Arc<RecordingIrqLine>,
        irq12: Arc<RecordingIrqLine>,
        a20: A20Gate,
        power: PowerControl,
    }

    fn rig() -> Rig {
        let irq1 = RecordingIrqLine::new();
        let irq12 = RecordingIrqLine::new();
        let a20 = A20Gate::default();
        let power = PowerControl::new();
        let kbc = I8042::new(irq1.clone(), irq12.clone(), a20.clone(), power.clone());
        Rig { kbc, irq1, irq12, a20, power }
    }

    impl Rig {
        /// Command, then the byte it returns (checking OBF).
        fn query(&mut self, command: u8) -> u8 {
            self.kbc.write_command(command);
            assert_ne!(self.kbc.read_status() & STATUS_OBF, 0, "command {command:#x} answers");
            self.kbc.read_data()
        }
        fn drain(&mut self) -> Vec<u8> {
            std::iter::from_fn(|| (self.kbc.read_status() & STATUS_OBF != 0).then(|| self.kbc.read_data())).collect()
        }
        fn set_command_byte(&mut self, value: u8) {
            self.kbc.write_command(0x60);
            self.kbc.write_data(value);
        }
    }

    #[test]
    fn a_held_key_repeats_after_the_delay_at_the_rate_until_released() {
        use rx86_core::time::TimerQueue;
        let mut r = rig();
        let (clock, timers) = (Clock::new_virtual(), TimerQueue::new());
        r.kbc.attach_typematic(clock.clone(), timers.new_timer("typematic"));
        // Keyboard typematic byte 0x00: 250 ms delay, 33.36 ms period; translation off
        // (command byte without XLAT) so the set-2 bytes come through as they are.
        r.set_command_byte(0x01);
        r.kbc.write_data(0xf3);
        r.kbc.write_data(0x00);
        assert_eq!(r.drain(), vec![0xfa, 0xfa]);
        clock.advance_to(1_000);
        r.kbc.push_key_scancodes(&[0x1c]);
        assert_eq!(r.drain(), vec![0x1c]);
        let mut repeats = Vec::new();
        while let Some(due) = timers.next_deadline() {
            if repeats.len() == 3 {
                r.kbc.push_key_scancodes(&[0xf0, 0x1c]);
                assert_eq!(r.drain(), vec![0xf0, 0x1c]);
                continue;
            }
            timers.take_due(due);
            clock.advance_to(due);
            r.kbc.on_typematic_timer();
            repeats.push((due, r.drain()));
        }
        let period = 8 * 4_170_000;
        let first = 1_000 + 250_000_000;
        assert_eq!(
            repeats,
            vec![(first, vec![0x1c]), (first + period, vec![0x1c]), (first + 2 * period, vec![0x1c])],
            "the release stops the timer"
        );
    }

    #[test]
    fn power_on_status_and_command_byte() {
        let mut r = rig();
        assert_eq!(r.kbc.read_status(), STATUS_UNLOCKED | STATUS_A2);
        assert_eq!(r.query(0x20), CMD_POWER_ON);
        r.kbc.write_data(0xee);
        assert_eq!(r.kbc.read_status() & STATUS_A2, 0, "data write clears A2");
    }

    #[test]
    fn self_test_and_interface_tests() {
        let mut r = rig();
        assert_eq!(r.kbc.read_status() & STATUS_SYS, 0);
        assert_eq!(r.query(SELF_TEST), 0x55);
        assert_ne!(r.kbc.read_status() & STATUS_SYS, 0);
        assert_eq!(r.query(TEST_KBD), 0x00);
        assert_eq!(r.query(TEST_AUX), 0x00);
        // Command byte write sets SYS from bit 2, and RAM bytes work.
        r.set_command_byte(0x00);
        assert_eq!(r.kbc.read_status() & STATUS_SYS, 0);
        r.kbc.write_command(0x65);
        r.kbc.write_data(0x5a);
        assert_eq!(r.query(0x25), 0x5a);
    }

    /// Linux i8042_controller_check / i8042_check_aux: AUX loopback through 0xD3,
    /// and the aux-disable bit toggled by 0xA7/0xA8 shows in the command byte.
    #[test]
    fn linux_aux_probe() {
        let mut r = rig();
        r.kbc.write_command(WRITE_AUX_BUFFER);
        r.kbc.write_data(0x5a);
        assert_eq!(r.kbc.read_status() & (STATUS_OBF | STATUS_AUXB), STATUS_OBF | STATUS_AUXB);
        assert!(r.irq12.level());
        assert!(!r.irq1.level());
        assert_eq!(r.kbc.read_data(), 0x5a);
        assert!(!r.irq12.level());
        r.kbc.write_command(DISABLE_AUX);
        assert_ne!(r.query(0x20) & CMD_DISABLE_AUX, 0);
        r.kbc.write_command(ENABLE_AUX);
        assert_eq!(r.query(0x20) & CMD_DISABLE_AUX, 0);
        // 0xD2 echoes as keyboard data on IRQ1.
        r.kbc.write_command(WRITE_KBD_BUFFER);
        r.kbc.write_data(0x33);
        assert!(r.irq1.level());
        assert_eq!(r.kbc.read_status() & STATUS_AUXB, 0);
        assert_eq!(r.kbc.read_data(), 0x33);
    }

    #[test]
    fn output_port_a20_and_reset() {
        let mut r = rig();
        assert_eq!(r.query(READ_OUTPUT_PORT) & (OUT_RESET_N | OUT_A20), OUT_RESET_N | OUT_A20);
        r.kbc.write_command(WRITE_OUTPUT_PORT);
        r.kbc.write_data(0xdd);
        assert!(!r.a20.enabled());
        assert_eq!(r.power.pending(), None);
        assert_eq!(r.query(READ_OUTPUT_PORT) & 0x0f, 0x0d);
        r.kbc.write_command(WRITE_OUTPUT_PORT);
        r.kbc.write_data(0xdf);
        assert!(r.a20.enabled());
        r.kbc.write_command(DISABLE_A20);
        assert!(!r.a20.enabled());
        r.kbc.write_command(ENABLE_A20);
        assert!(r.a20.enabled());
        r.kbc.write_command(WRITE_OUTPUT_PORT);
        r.kbc.write_data(0xde);
        assert_eq!(r.power.take(), Some(PowerEvent::Reset));
    }

    #[test]
    fn pulse_output_port() {
        let mut r = rig();
        r.kbc.write_command(0xff);
        assert_eq!(r.power.take(), None, "0xFF pulses nothing");
        r.kbc.write_command(0xfd);
        assert_eq!(r.power.take(), None, "bit 1 pulse is not reset");
        r.kbc.write_command(0xfe);
        assert_eq!(r.power.take(), Some(PowerEvent::Reset));
        r.kbc.write_command(0xf0);
        assert_eq!(r.power.take(), Some(PowerEvent::Reset));
    }

    #[test]
    fn keyboard_commands_through_the_data_port() {
        let mut r = rig();
        r.kbc.write_data(0xff);
        assert_eq!(r.drain(), vec![0xfa, 0xaa]);
        r.kbc.write_data(0xf2);
        assert_eq!(r.drain(), vec![0xfa, 0xab, 0x83]);
        // With translation the ID reads 0xAB 0x41 (Linux atkbd expects it).
        r.set_command_byte(CMD_XLAT | CMD_KBD_INT);
        r.kbc.write_data(0xf2);
        assert_eq!(r.drain(), vec![0xfa, 0xab, 0x41]);
        r.kbc.write_data(0xed);
        r.kbc.write_data(0x02);
        assert_eq!(r.drain(), vec![0xfa, 0xfa]);
        assert_eq!(r.kbc.keyboard().leds(), 0x02);
    }

    #[test]
    fn scancodes_translated_and_one_edge_per_byte() {
        let mut r = rig();
        r.set_command_byte(CMD_XLAT | CMD_KBD_INT);
        r.irq1.clear();
        // 'A' press and release in set 2.
        r.kbc.push_key_scancodes(&[0x1c, 0xf0, 0x1c]);
        assert!(r.irq1.level());
        assert_eq!(r.drain(), vec![0x1e, 0x9e]);
        assert_eq!(r.irq1.rising_edges(), 2);
        assert!(!r.irq1.level());
        // Without translation the set-2 bytes pass through.
        r.set_command_byte(CMD_KBD_INT);
        r.kbc.push_key_scancodes(&[0x1c, 0xf0, 0x1c]);
        assert_eq!(r.drain(), vec![0x1c, 0xf0, 0x1c]);
    }

    #[test]
    fn interrupts_gated_by_command_byte() {
        let mut r = rig();
        r.set_command_byte(0);
        r.kbc.push_key_scancodes(&[0x1c]);
        assert!(!r.irq1.level());
        assert_ne!(r.kbc.read_status() & STATUS_OBF, 0, "polling still works");
        r.set_command_byte(CMD_KBD_INT);
        assert!(r.irq1.level(), "enabling the interrupt with data waiting raises IRQ1");
        r.kbc.read_data();
        // Mouse data on IRQ12 only with bit 1.
        r.kbc.write_command(WRITE_AUX);
        r.kbc.write_data(0xf4);
        assert_eq!(r.kbc.read_status() & STATUS_AUXB, STATUS_AUXB);
        assert!(!r.irq12.level());
        assert_eq!(r.kbc.read_data(), 0xfa);
        r.set_command_byte(CMD_AUX_INT);
        r.kbc.push_mouse_packet(1, 1, 0, 0);
        assert!(r.irq12.level());
        assert_eq!(r.drain(), vec![0x08, 1, 1]);
    }

    #[test]
    fn disabled_keyboard_interface_holds_data() {
        let mut r = rig();
        r.kbc.write_command(DISABLE_KBD);
        r.kbc.push_key_scancodes(&[0x1c]);
        assert_eq!(r.kbc.read_status() & STATUS_OBF, 0);
        r.kbc.write_command(ENABLE_KBD);
        assert_eq!(r.drain(), vec![0x1c]);
    }

    #[test]
    fn intellimouse_through_the_controller() {
        let mut r = rig();
        for byte in [0xf3, 200, 0xf3, 100, 0xf3, 80, 0xf2] {
            r.kbc.write_command(WRITE_AUX);
            r.kbc.write_data(byte);
        }
        assert_eq!(r.drain(), vec![0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0x03]);
    }

    #[test]
    fn reads_of_an_empty_buffer_repeat_the_last_byte() {
        let mut r = rig();
        r.kbc.write_command(SELF_TEST);
        assert_eq!(r.kbc.read_data(), 0x55);
        assert_eq!(r.kbc.read_data(), 0x55);
    }

    #[test]
    fn ports_share_the_controller() {
        let r = rig();
        let kbc = Arc::new(Mutex::new(r.kbc));
        let mut data = I8042DataPort(kbc.clone());
        let mut command = I8042CommandPort(kbc.clone());
        command.write(0, 1, u64::from(SELF_TEST));
        assert_eq!(command.read(0, 1) & u64::from(STATUS_OBF), 1);
        assert_eq!(data.read(0, 1), 0x55);
        assert_eq!(data.read(0, 2), 0xff55);
        assert_eq!(command.read(1, 1), 0xff);
    }

    #[test]
    fn random_accesses_never_panic() {
        let mut r = rig();
        let mut state = 0xdead_beef_cafe_f00du64;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let byte = (state >> 32) as u8;
            match state % 7 {
                // Avoid the pulse/reset commands dominating: any command is fine.
                0 | 1 => r.kbc.write_command(byte),
                2 | 3 => r.kbc.write_data(byte),
                4 => {
                    r.kbc.read_data();
                }
                5 => r.kbc.push_key_scancodes(&[byte, (state >> 40) as u8]),
                _ => r.kbc.push_mouse_packet(
                    (state >> 20) as i16 as i32,
                    (state >> 36) as i16 as i32,
                    byte as i8 as i32,
                    byte,
                ),
            }
            let status = r.kbc.read_status();
            assert_eq!(status & STATUS_AUXB != 0, matches!(r.kbc.output_buffer, Some((_, Source::Aux))));
            r.power.take();
        }
        r.kbc.reset();
        assert_eq!(r.query(0x20), CMD_POWER_ON);
    }
}
