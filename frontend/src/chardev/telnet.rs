//! The telnet protocol of a `telnet:HOST:PORT,server` character device (RFC 854), as
//! QEMU's socket backend speaks it with `telnet=on`: at each connection the server offers
//! to echo and to suppress go-ahead (so the client sends each key at once instead of lines,
//! RFC 857 and 858) and to send binary (RFC 856); the client's commands are stripped from
//! what the guest reads, and the guest's 0xFF bytes are doubled so the client reads them
//! as data.

/// Interpret As Command: starts every telnet command.
const IAC: u8 = 255;
/// DONT option.
const DONT: u8 = 254;
/// DO option.
const DO: u8 = 253;
/// WONT option.
const WONT: u8 = 252;
/// WILL option.
const WILL: u8 = 251;
/// Subnegotiation begin (ends with IAC SE).
const SB: u8 = 250;
/// Subnegotiation end.
const SE: u8 = 240;
/// Option: binary transmission.
const OPT_BINARY: u8 = 0;
/// Option: echo.
const OPT_ECHO: u8 = 1;
/// Option: suppress go-ahead.
const OPT_SGA: u8 = 3;

/// What the server sends first: WILL ECHO, WILL SUPPRESS-GO-AHEAD, WILL BINARY and
/// DO BINARY, the options QEMU's telnet server asks for.
pub const NEGOTIATION: [u8; 12] = [IAC, WILL, OPT_ECHO, IAC, WILL, OPT_SGA, IAC, WILL, OPT_BINARY, IAC, DO, OPT_BINARY];

/// Where the input filter is inside a command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum State {
    /// Plain data.
    #[default]
    Data,
    /// After IAC.
    Command,
    /// After IAC WILL/WONT/DO/DONT: the option byte comes.
    Option,
    /// Inside IAC SB ... (until IAC SE).
    Sub,
    /// After IAC inside a subnegotiation.
    SubIac,
    /// After a CR: a NUL or LF that follows belongs to it (RFC 854's end of line).
    AfterCr,
}

/// Strips telnet commands from a client's bytes, keeping the data, across reads.
#[derive(Debug, Clone, Default)]
pub struct InputFilter {
    state: State,
}

impl InputFilter {
    /// The data in `bytes`: IAC IAC is one 0xFF, every other command is dropped, and
    /// the CR NUL or CR LF a client sends for Enter is one CR (as a terminal sends it).
    pub fn filter(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        for &b in bytes {
            self.state = match (self.state, b) {
                (State::Data | State::AfterCr, IAC) => State::Command,
                (State::AfterCr, 0 | b'\n') => State::Data,
                (State::Data | State::AfterCr, b) => {
                    out.push(b);
                    if b == b'\r' {
                        State::AfterCr
                    } else {
                        State::Data
                    }
                }
                (State::Command, IAC) => {
                    out.push(IAC);
                    State::Data
                }
                (State::Command, WILL | WONT | DO | DONT) => State::Option,
                (State::Command, SB) => State::Sub,
                // NOP, go-ahead, break, interrupt, ...: one byte, nothing for the guest.
                (State::Command, _) | (State::Option, _) => State::Data,
                (State::Sub, IAC) => State::SubIac,
                (State::Sub, _) => State::Sub,
                (State::SubIac, SE) => State::Data,
                (State::SubIac, _) => State::Sub,
            };
        }
        out
    }
}

/// `bytes` as telnet data: each 0xFF doubled.
pub fn escape(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !bytes.contains(&IAC) {
        return bytes.into();
    }
    let mut out = Vec::with_capacity(bytes.len() + 8);
    for &b in bytes {
        out.push(b);
        if b == IAC {
            out.push(IAC);
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_dropped_and_doubled_iac_is_data() {
        let mut f = InputFilter::default();
        // A client's answers to the negotiation, a window-size subnegotiation, then data.
        let mut input = vec![IAC, DO, OPT_ECHO, IAC, DO, OPT_SGA, IAC, WONT, 34];
        input.extend([IAC, SB, 31, 0, 80, 0, 24, IAC, SE]);
        input.extend(b"ab");
        input.extend([IAC, IAC, b'c', IAC, 241, b'd']);
        assert_eq!(f.filter(&input), b"ab\xffcd");
    }

    #[test]
    fn a_command_split_across_reads_is_still_dropped() {
        let mut f = InputFilter::default();
        assert_eq!(f.filter(&[b'x', IAC]), b"x");
        assert_eq!(f.filter(&[WILL]), b"");
        assert_eq!(f.filter(&[OPT_BINARY, b'y', IAC, SB, 24]), b"y");
        assert_eq!(f.filter(&[1, IAC, IAC, IAC]), b"", "IAC IAC inside a subnegotiation is not data");
        assert_eq!(f.filter(&[SE, b'z']), b"z");
    }

    #[test]
    fn enter_is_one_carriage_return() {
        let mut f = InputFilter::default();
        assert_eq!(f.filter(b"a\r\0b\r\nc\r"), b"a\rb\rc\r");
        assert_eq!(f.filter(b"\nd"), b"d", "the LF of a CR LF split across reads");
    }

    #[test]
    fn output_doubles_iac() {
        assert_eq!(&*escape(b"plain"), b"plain");
        assert_eq!(&*escape(&[1, IAC, 2]), &[1, IAC, IAC, 2]);
    }
}
