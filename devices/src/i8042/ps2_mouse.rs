//! A PS/2 mouse (with the Microsoft IntelliMouse wheel extension) on the 8042's
//! auxiliary port.
//!
//! Commands and packet format from the IBM PS/2 Hardware Interface Technical
//! Reference ("Pointing Device") and the IntelliMouse extension: setting the sample
//! rate to 200, 100, 80 in a row switches the device ID to 3 and adds a fourth packet
//! byte carrying the wheel movement.

use std::collections::VecDeque;

/// Acknowledge.
pub const ACK: u8 = 0xfa;
/// Resend / invalid command or parameter.
pub const RESEND: u8 = 0xfe;
/// Self-test passed (after reset).
const BAT_OK: u8 = 0xaa;

/// Set scaling 1:1.
const SET_SCALING_1_1: u8 = 0xe6;
/// Set scaling 2:1.
const SET_SCALING_2_1: u8 = 0xe7;
/// Set resolution (parameter 0-3: 1, 2, 4, 8 counts/mm).
const SET_RESOLUTION: u8 = 0xe8;
/// Status request: ACK and three status bytes.
const STATUS_REQUEST: u8 = 0xe9;
/// Set stream mode.
const SET_STREAM_MODE: u8 = 0xea;
/// Read data: ACK and one movement packet.
const READ_DATA: u8 = 0xeb;
/// Leave wrap (echo) mode.
const RESET_WRAP_MODE: u8 = 0xec;
/// Enter wrap (echo) mode.
const SET_WRAP_MODE: u8 = 0xee;
/// Set remote mode.
const SET_REMOTE_MODE: u8 = 0xf0;
/// Get device ID.
const GET_DEVICE_ID: u8 = 0xf2;
/// Set sample rate (parameter).
const SET_SAMPLE_RATE: u8 = 0xf3;
/// Enable data reporting.
const ENABLE_REPORTING: u8 = 0xf4;
/// Disable data reporting.
const DISABLE_REPORTING: u8 = 0xf5;
/// Set defaults.
const SET_DEFAULTS: u8 = 0xf6;
/// Resend the last byte.
const RESEND_COMMAND: u8 = 0xfe;
/// Reset: ACK, 0xAA, device ID.
const RESET: u8 = 0xff;

/// Valid sample rates (reports per second).
const SAMPLE_RATES: [u8; 7] = [10, 20, 40, 60, 80, 100, 200];
/// The sample-rate sequence that turns on the wheel (device ID 3).
const INTELLIMOUSE_KNOCK: [u8; 3] = [200, 100, 80];
/// Standard PS/2 mouse ID.
const ID_STANDARD: u8 = 0x00;
/// IntelliMouse (wheel) ID.
const ID_INTELLIMOUSE: u8 = 0x03;
/// Default sample rate.
const DEFAULT_SAMPLE_RATE: u8 = 100;
/// Default resolution code (4 counts/mm).
const DEFAULT_RESOLUTION: u8 = 2;

// Packet byte 0.
/// Always 1.
const PACKET_ALWAYS_ONE: u8 = 0b0000_1000;
/// X movement negative.
const PACKET_X_SIGN: u8 = 0b0001_0000;
/// Y movement negative.
const PACKET_Y_SIGN: u8 = 0b0010_0000;
/// X movement beyond -256..=255.
const PACKET_X_OVERFLOW: u8 = 0b0100_0000;
/// Y movement beyond -256..=255.
const PACKET_Y_OVERFLOW: u8 = 0b1000_0000;

// Status byte 0.
/// Remote mode.
const STATUS_REMOTE: u8 = 0b0100_0000;
/// Reporting enabled.
const STATUS_ENABLED: u8 = 0b0010_0000;
/// Scaling 2:1.
const STATUS_SCALING_2_1: u8 = 0b0001_0000;

/// Button bits, as in packet byte 0.
pub mod buttons {
    /// Left button.
    pub const LEFT: u8 = 0b001;
    /// Right button.
    pub const RIGHT: u8 = 0b010;
    /// Middle button.
    pub const MIDDLE: u8 = 0b100;
}

/// Bytes of packets and responses held while the host does not read.
const OUTPUT_BUFFER: usize = 256;

/// A PS/2 mouse: command interpreter, settings and output queues.
#[derive(Debug, Clone)]
pub struct Ps2Mouse {
    responses: VecDeque<u8>,
    packets: VecDeque<u8>,
    awaiting_parameter: Option<u8>,
    reporting: bool,
    remote: bool,
    wrap: bool,
    scaling_2_1: bool,
    resolution: u8,
    sample_rate: u8,
    device_id: u8,
    recent_rates: [u8; 3],
    buttons: u8,
    last_sent: u8,
}

impl Default for Ps2Mouse {
    fn default() -> Self {
        Self::new()
    }
}

impl Ps2Mouse {
    /// A mouse after power-on: stream mode, reporting disabled, standard ID.
    pub fn new() -> Self {
        Ps2Mouse {
            responses: VecDeque::new(),
            packets: VecDeque::new(),
            awaiting_parameter: None,
            reporting: false,
            remote: false,
            wrap: false,
            scaling_2_1: false,
            resolution: DEFAULT_RESOLUTION,
            sample_rate: DEFAULT_SAMPLE_RATE,
            device_id: ID_STANDARD,
            recent_rates: [0; 3],
            buttons: 0,
            last_sent: 0,
        }
    }

    /// The device ID (0 standard, 3 with the wheel).
    pub fn device_id(&self) -> u8 {
        self.device_id
    }

    /// True when a byte waits for the controller.
    pub fn has_output(&self) -> bool {
        !self.responses.is_empty() || !self.packets.is_empty()
    }

    /// The next byte for the controller: responses first, then movement packets.
    pub fn read(&mut self) -> Option<u8> {
        let byte = self.responses.pop_front().or_else(|| self.packets.pop_front())?;
        self.last_sent = byte;
        Some(byte)
    }

    /// Mouse motion and buttons from the frontend: `dx` right, `dy` up (PS/2
    /// convention), `dz` wheel (positive = towards the user, as IntelliMouse reports
    /// scrolling down), `buttons` from [`buttons`]. Sent as a packet in stream mode
    /// with reporting on; whole packets are dropped when the buffer is full.
    pub fn push_packet(&mut self, dx: i32, dy: i32, dz: i32, buttons: u8) {
        self.buttons = buttons & (buttons::LEFT | buttons::RIGHT | buttons::MIDDLE);
        if !self.reporting || self.remote || self.wrap {
            return;
        }
        let (dx, dy) = if self.scaling_2_1 { (scale_2_1(dx), scale_2_1(dy)) } else { (dx, dy) };
        let packet = self.packet(dx, dy, dz);
        if self.packets.len() + packet.len() > OUTPUT_BUFFER {
            log::warn!("ps2 mouse: buffer full, packet dropped");
            return;
        }
        self.packets.extend(packet);
    }

    fn packet(&self, dx: i32, dy: i32, dz: i32) -> Vec<u8> {
        let mut first = PACKET_ALWAYS_ONE | self.buttons;
        if dx < 0 {
            first |= PACKET_X_SIGN;
        }
        if dy < 0 {
            first |= PACKET_Y_SIGN;
        }
        if !(-256..=255).contains(&dx) {
            first |= PACKET_X_OVERFLOW;
        }
        if !(-256..=255).contains(&dy) {
            first |= PACKET_Y_OVERFLOW;
        }
        let mut packet = vec![first, dx.clamp(-256, 255) as u8, dy.clamp(-256, 255) as u8];
        if self.device_id == ID_INTELLIMOUSE {
            packet.push(dz.clamp(-8, 7) as u8);
        }
        packet
    }

    /// A byte from the host (controller command 0xD4 then the data port).
    pub fn write(&mut self, byte: u8) {
        if let Some(command) = self.awaiting_parameter.take() {
            self.parameter(command, byte);
            return;
        }
        if self.wrap && byte != RESET_WRAP_MODE && byte != RESET {
            self.respond(&[byte]);
            return;
        }
        match byte {
            SET_SCALING_1_1 | SET_SCALING_2_1 => {
                self.scaling_2_1 = byte == SET_SCALING_2_1;
                self.respond(&[ACK]);
            }
            SET_RESOLUTION | SET_SAMPLE_RATE => {
                self.respond(&[ACK]);
                self.awaiting_parameter = Some(byte);
            }
            STATUS_REQUEST => {
                let mut status = self.status_buttons();
                if self.remote {
                    status |= STATUS_REMOTE;
                }
                if self.reporting {
                    status |= STATUS_ENABLED;
                }
                if self.scaling_2_1 {
                    status |= STATUS_SCALING_2_1;
                }
                let (resolution, rate) = (self.resolution, self.sample_rate);
                self.respond(&[ACK, status, resolution, rate]);
            }
            SET_STREAM_MODE | SET_REMOTE_MODE => {
                self.remote = byte == SET_REMOTE_MODE;
                self.packets.clear();
                self.respond(&[ACK]);
            }
            READ_DATA => {
                let packet = self.packet(0, 0, 0);
                self.respond(&[ACK]);
                self.respond(&packet);
            }
            RESET_WRAP_MODE | SET_WRAP_MODE => {
                self.wrap = byte == SET_WRAP_MODE;
                self.respond(&[ACK]);
            }
            GET_DEVICE_ID => {
                let id = self.device_id;
                self.respond(&[ACK, id]);
            }
            ENABLE_REPORTING | DISABLE_REPORTING => {
                self.reporting = byte == ENABLE_REPORTING;
                self.packets.clear();
                self.respond(&[ACK]);
            }
            SET_DEFAULTS => {
                self.set_defaults();
                self.respond(&[ACK]);
            }
            RESEND_COMMAND => {
                let last = self.last_sent;
                self.respond(&[last]);
            }
            RESET => {
                *self = Ps2Mouse::new();
                self.respond(&[ACK, BAT_OK, ID_STANDARD]);
            }
            _ => {
                log::warn!("ps2 mouse: unknown command {byte:#04x}");
                self.respond(&[RESEND]);
            }
        }
    }

    fn parameter(&mut self, command: u8, value: u8) {
        if command == SET_RESOLUTION {
            if value > 3 {
                log::warn!("ps2 mouse: resolution code {value:#04x} out of range");
                self.respond(&[RESEND]);
                return;
            }
            self.resolution = value;
        } else {
            if !SAMPLE_RATES.contains(&value) {
                log::warn!("ps2 mouse: sample rate {value} is not one of {SAMPLE_RATES:?}");
                self.respond(&[RESEND]);
                return;
            }
            self.sample_rate = value;
            self.recent_rates = [self.recent_rates[1], self.recent_rates[2], value];
            if self.recent_rates == INTELLIMOUSE_KNOCK {
                self.device_id = ID_INTELLIMOUSE;
            }
        }
        self.respond(&[ACK]);
    }

    /// Status byte 0 lists buttons right, middle, left in bits 0-2.
    fn status_buttons(&self) -> u8 {
        let mut bits = 0;
        for (button, bit) in [(buttons::RIGHT, 0b001), (buttons::MIDDLE, 0b010), (buttons::LEFT, 0b100)] {
            if self.buttons & button != 0 {
                bits |= bit;
            }
        }
        bits
    }

    fn set_defaults(&mut self) {
        self.sample_rate = DEFAULT_SAMPLE_RATE;
        self.resolution = DEFAULT_RESOLUTION;
        self.scaling_2_1 = false;
        self.reporting = false;
        self.packets.clear();
    }

    fn respond(&mut self, bytes: &[u8]) {
        self.responses.extend(bytes);
    }
}

/// 2:1 scaling of a stream-mode movement count (IBM reference table).
fn scale_2_1(count: i32) -> i32 {
    let magnitude = match count.unsigned_abs() {
        m @ 0..=1 => m,
        2 => 1,
        3 => 3,
        4 => 6,
        5 => 9,
        m => m.saturating_mul(2),
    };
    let magnitude = i32::try_from(magnitude).unwrap_or(i32::MAX);
    if count < 0 {
        -magnitude
    } else {
        magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(m: &mut Ps2Mouse) -> Vec<u8> {
        std::iter::from_fn(|| m.read()).collect()
    }

    #[test]
    fn reset_id_and_intellimouse_knock() {
        let mut m = Ps2Mouse::new();
        m.write(RESET);
        assert_eq!(drain(&mut m), vec![ACK, BAT_OK, 0x00]);
        m.write(GET_DEVICE_ID);
        assert_eq!(drain(&mut m), vec![ACK, 0x00]);
        for rate in [200, 100, 80] {
            m.write(SET_SAMPLE_RATE);
            m.write(rate);
        }
        assert_eq!(drain(&mut m), vec![ACK; 6]);
        m.write(GET_DEVICE_ID);
        assert_eq!(drain(&mut m), vec![ACK, 0x03]);
        m.write(RESET);
        m.write(GET_DEVICE_ID);
        assert_eq!(drain(&mut m), vec![ACK, BAT_OK, 0x00, ACK, 0x00], "reset leaves wheel mode");
        // A different sequence does not switch.
        for rate in [200, 80, 100] {
            m.write(SET_SAMPLE_RATE);
            m.write(rate);
        }
        assert_eq!(m.device_id(), 0);
    }

    #[test]
    fn status_resolution_and_rate() {
        let mut m = Ps2Mouse::new();
        m.write(SET_RESOLUTION);
        m.write(3);
        m.write(SET_SAMPLE_RATE);
        m.write(40);
        m.write(ENABLE_REPORTING);
        m.write(SET_SCALING_2_1);
        m.push_packet(0, 0, 0, buttons::LEFT);
        drain(&mut m);
        m.write(STATUS_REQUEST);
        assert_eq!(drain(&mut m), vec![ACK, STATUS_ENABLED | STATUS_SCALING_2_1 | 0b100, 3, 40]);
        m.write(SET_SAMPLE_RATE);
        m.write(33);
        m.write(SET_RESOLUTION);
        m.write(9);
        assert_eq!(drain(&mut m), vec![ACK, RESEND, ACK, RESEND]);
    }

    #[test]
    fn packets() {
        let mut m = Ps2Mouse::new();
        m.push_packet(5, 5, 0, 0);
        assert!(!m.has_output(), "reporting disabled after power-on");
        m.write(ENABLE_REPORTING);
        drain(&mut m);
        m.push_packet(-3, 300, 0, buttons::RIGHT);
        assert_eq!(drain(&mut m), vec![0x08 | 0x02 | PACKET_X_SIGN | PACKET_Y_OVERFLOW, 0xfd, 0xff]);
        for rate in INTELLIMOUSE_KNOCK {
            m.write(SET_SAMPLE_RATE);
            m.write(rate);
        }
        drain(&mut m);
        m.push_packet(1, -1, -20, 0);
        assert_eq!(drain(&mut m), vec![0x08 | PACKET_Y_SIGN, 0x01, 0xff, 0xf8]);
        m.write(READ_DATA);
        assert_eq!(drain(&mut m), vec![ACK, 0x08, 0, 0, 0]);
    }

    #[test]
    fn wrap_mode_echoes() {
        let mut m = Ps2Mouse::new();
        m.write(SET_WRAP_MODE);
        m.write(0x12);
        m.write(GET_DEVICE_ID);
        m.write(RESET_WRAP_MODE);
        m.write(GET_DEVICE_ID);
        assert_eq!(drain(&mut m), vec![ACK, 0x12, GET_DEVICE_ID, ACK, ACK, 0x00]);
    }

    #[test]
    fn scaling_table() {
        let got: Vec<i32> = (0..=7).map(scale_2_1).collect();
        assert_eq!(got, vec![0, 1, 1, 3, 6, 9, 12, 14]);
        assert_eq!(scale_2_1(-4), -6);
        assert_eq!(scale_2_1(i32::MIN), -i32::MAX);
    }
}
