//! QEMU's spellings of character devices: the short form of `-serial` and `-monitor`
//! (`stdio`, `file:PATH`, `pty`, `tcp:HOST:PORT,server,nowait`, `unix:PATH,server`,
//! `mon:BACKEND`, `chardev:ID`, `null`, `none`), the `-chardev BACKEND,id=ID,...` form and
//! `-mon chardev=ID`, and how references between them resolve.

use std::fmt;
use std::path::PathBuf;

/// Where a character device's bytes go and come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CharBackend {
    /// Standard input and output (a terminal is put in raw mode, as QEMU does).
    Stdio,
    /// Output written to a file (created or truncated); no input.
    File(PathBuf),
    /// Output discarded; no input (`null`, and `none`).
    Null,
    /// A new pseudo-terminal; its name is printed at start.
    Pty,
    /// A TCP or Unix stream socket, listening or connecting.
    Socket(SocketSpec),
    /// QEMU's `mon:`: the backend shared by a serial port and the monitor; `Ctrl-A c`
    /// switches the input between them, `Ctrl-A x` ends rx86, `Ctrl-A h` lists the keys.
    Mux(Box<CharBackend>),
}

/// A stream socket backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketSpec {
    /// Where to listen or connect.
    pub address: SocketAddress,
    /// Listen for a client (`server`) rather than connect to one.
    pub server: bool,
    /// As a server, hold the machine until the first client connects (QEMU's default;
    /// `nowait` or `wait=off` start at once).
    pub wait: bool,
    /// Speak telnet to the client (`telnet:HOST:PORT`, `-chardev socket,...,telnet=on`):
    /// negotiate character mode, strip its commands, double 0xFF bytes.
    pub telnet: bool,
}

/// A socket address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketAddress {
    /// `HOST:PORT` (port 0 as a server picks a free port, printed at start).
    Tcp {
        /// Host name or address.
        host: String,
        /// Port number.
        port: u16,
    },
    /// A Unix domain socket's path.
    Unix(PathBuf),
}

impl fmt::Display for SocketAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketAddress::Tcp { host, port } if host.contains(':') => write!(f, "tcp:[{host}]:{port}"),
            SocketAddress::Tcp { host, port } => write!(f, "tcp:{host}:{port}"),
            SocketAddress::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl fmt::Display for CharBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CharBackend::Stdio => f.write_str("stdio"),
            CharBackend::File(path) => write!(f, "file:{}", path.display()),
            CharBackend::Null => f.write_str("null"),
            CharBackend::Pty => f.write_str("pty"),
            CharBackend::Socket(s) => {
                match (&s.address, s.telnet) {
                    (SocketAddress::Tcp { host, port }, true) if host.contains(':') => {
                        write!(f, "telnet:[{host}]:{port}")?
                    }
                    (SocketAddress::Tcp { host, port }, true) => write!(f, "telnet:{host}:{port}")?,
                    (address, _) => write!(f, "{address}")?,
                }
                match (s.server, s.wait) {
                    (true, true) => f.write_str(",server=on"),
                    (true, false) => f.write_str(",server=on,wait=off"),
                    (false, _) => Ok(()),
                }
            }
            CharBackend::Mux(inner) => write!(f, "mon:{inner}"),
        }
    }
}

impl CharBackend {
    /// True when the backend is standard input and output, alone or under `mon:`.
    pub fn is_stdio(&self) -> bool {
        match self {
            CharBackend::Stdio => true,
            CharBackend::Mux(inner) => inner.is_stdio(),
            _ => false,
        }
    }
}

/// What `-serial` or `-monitor` names: a backend, or a `-chardev` by its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CharArg {
    /// A backend spelled out.
    Backend(CharBackend),
    /// `chardev:ID`.
    Chardev(String),
}

/// Parses a `-serial`/`-monitor` value.
pub fn parse_char_arg(s: &str) -> Result<CharArg, String> {
    match s.strip_prefix("chardev:") {
        Some("") => Err("chardev: needs the id of a -chardev".into()),
        Some(id) => Ok(CharArg::Chardev(id.into())),
        None => parse_backend(s).map(CharArg::Backend),
    }
}

/// Parses QEMU's short form of a backend: `stdio`, `null`, `none`, `file:PATH`, `pty`,
/// `tcp:[HOST]:PORT[,server[=on|off]][,wait=on|off|,nowait][,nodelay]`, `telnet:` with the
/// same options, `unix:PATH[,server][,nowait]`, `mon:BACKEND`.
pub fn parse_backend(s: &str) -> Result<CharBackend, String> {
    if let Some(inner) = s.strip_prefix("mon:") {
        return match parse_backend(inner)? {
            CharBackend::Mux(_) => Err(format!("'{s}': mon: once is enough")),
            inner => Ok(CharBackend::Mux(Box::new(inner))),
        };
    }
    match s {
        "stdio" => return Ok(CharBackend::Stdio),
        "null" | "none" => return Ok(CharBackend::Null),
        "pty" => return Ok(CharBackend::Pty),
        _ => {}
    }
    if let Some(path) = s.strip_prefix("file:") {
        return match path {
            "" => Err("file: needs a path (file:serial.log)".into()),
            p => Ok(CharBackend::File(p.into())),
        };
    }
    let telnet = s.starts_with("telnet:");
    let (address, options) = if let Some(rest) = s.strip_prefix("tcp:").or_else(|| s.strip_prefix("telnet:")) {
        let (addr, options) = rest.split_once(',').unwrap_or((rest, ""));
        (parse_tcp_address(addr).map_err(|e| format!("'{s}': {e}"))?, options)
    } else if let Some(rest) = s.strip_prefix("unix:") {
        let (path, options) = rest.split_once(',').unwrap_or((rest, ""));
        if path.is_empty() {
            return Err(format!("'{s}': unix: needs a socket path"));
        }
        (SocketAddress::Unix(path.into()), options)
    } else {
        let kind = s.split([':', ',']).next().unwrap_or(s);
        return Err(match kind {
            "vc" | "sdl" | "gtk" => format!("'{s}': rx86 has no virtual consoles; use stdio, pty or a socket"),
            "websocket" | "udp" | "pipe" | "msmouse" | "braille" | "spicevmc" | "ringbuf" => {
                format!("'{s}': the {kind} backend is not in rx86; it offers {OFFERED}")
            }
            _ if s.starts_with('/') => {
                format!("'{s}': host serial devices are not passed through; rx86 offers {OFFERED}")
            }
            _ => format!("unknown character device '{s}'; rx86 offers {OFFERED}"),
        });
    };
    let mut spec = SocketSpec { address, server: false, wait: true, telnet };
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option.split_once('=') {
            None if option == "server" => spec.server = true,
            None if option == "nowait" => spec.wait = false,
            // Nagle is off for every socket.
            None if option == "nodelay" => {}
            Some(("server", v)) => spec.server = on_off(v, option)?,
            Some(("wait", v)) => spec.wait = on_off(v, option)?,
            Some(("nodelay", v)) => {
                on_off(v, option)?;
            }
            _ => return Err(format!("'{s}': unknown socket option '{option}' (server, nowait, wait=off, nodelay)")),
        }
    }
    Ok(CharBackend::Socket(spec))
}

/// The backends rx86 has, for messages.
const OFFERED: &str = "stdio, file:PATH, pty, tcp:HOST:PORT[,server][,nowait], telnet:HOST:PORT[,server][,nowait], \
                       unix:PATH[,server][,nowait], mon:BACKEND, null";

fn on_off(value: &str, option: &str) -> Result<bool, String> {
    match value {
        "on" | "yes" | "true" => Ok(true),
        "off" | "no" | "false" => Ok(false),
        _ => Err(format!("'{option}': expected on or off")),
    }
}

/// `HOST:PORT`, `:PORT` (localhost) or `[V6]:PORT`.
fn parse_tcp_address(s: &str) -> Result<SocketAddress, String> {
    let (host, port) = s.rsplit_once(':').ok_or("expected HOST:PORT (e.g. tcp:127.0.0.1:4444)")?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let port: u16 = port.parse().map_err(|_| format!("'{port}' is not a port number"))?;
    // QEMU listens on every interface for an empty host; rx86 keeps to this machine.
    let host = if host.is_empty() { "127.0.0.1" } else { host };
    Ok(SocketAddress::Tcp { host: host.into(), port })
}

/// One `-chardev BACKEND,id=ID,...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChardevDef {
    /// Its id, for `chardev:ID` and `-mon chardev=ID`.
    pub id: String,
    /// The backend.
    pub backend: CharBackend,
    /// `mux=on`: a serial port and the monitor may share it.
    pub mux: bool,
}

/// Parses `-chardev`: `null`, `stdio`, `pty`, `file,path=P`,
/// `socket,host=H,port=N|path=P[,server=on][,wait=off]`, each with `id=ID` and optionally
/// `mux=on`.
pub fn parse_chardev(s: &str) -> Result<ChardevDef, String> {
    let mut parts = s.split(',');
    let kind = parts.next().unwrap_or_default();
    let (mut id, mut mux, mut path, mut host, mut port) = (None, false, None, None, None);
    let (mut server, mut wait, mut telnet) = (false, true, false);
    for part in parts {
        let (key, value) = part.split_once('=').ok_or_else(|| format!("-chardev {s}: '{part}' is not key=value"))?;
        match key {
            "id" => id = Some(value.to_string()),
            "mux" => mux = on_off(value, part)?,
            "path" => path = Some(value.to_string()),
            "host" => host = Some(value.to_string()),
            "port" => port = Some(value.parse::<u16>().map_err(|_| format!("-chardev {s}: bad port '{value}'"))?),
            "server" => server = on_off(value, part)?,
            "wait" => wait = on_off(value, part)?,
            "telnet" => telnet = on_off(value, part)?,
            "nodelay" => {
                on_off(value, part)?;
            }
            _ => return Err(format!("-chardev {s}: rx86 does not take '{key}'")),
        }
    }
    let id = id.filter(|i| !i.is_empty()).ok_or_else(|| format!("-chardev {s}: needs id=NAME"))?;
    let no_address = |what: &str| match (&path, &host, &port) {
        (None, None, None) => Ok(()),
        _ => Err(format!("-chardev {what} takes no path, host or port")),
    };
    let backend = match kind {
        "null" => no_address(kind).map(|_| CharBackend::Null)?,
        "stdio" => no_address(kind).map(|_| CharBackend::Stdio)?,
        "pty" => no_address(kind).map(|_| CharBackend::Pty)?,
        "file" => CharBackend::File(path.ok_or("-chardev file needs path=FILE")?.into()),
        "socket" => {
            let address = match (path, port) {
                (Some(p), None) if host.is_none() => SocketAddress::Unix(p.into()),
                (None, Some(port)) => SocketAddress::Tcp {
                    host: host.filter(|h| !h.is_empty()).unwrap_or_else(|| "127.0.0.1".into()),
                    port,
                },
                _ => return Err(format!("-chardev {s}: give host=H,port=N or path=P")),
            };
            if telnet && matches!(address, SocketAddress::Unix(_)) {
                return Err(format!("-chardev {s}: telnet=on needs a TCP socket (host=H,port=N)"));
            }
            CharBackend::Socket(SocketSpec { address, server, wait, telnet })
        }
        _ => return Err(format!("-chardev {kind}: not in rx86 (null, stdio, file, pty, socket)")),
    };
    Ok(ChardevDef { id, backend, mux })
}

/// Parses `-mon [chardev=]ID[,mode=readline]` into the chardev's id (QMP, `mode=control`,
/// is not in rx86).
pub fn parse_mon(s: &str) -> Result<String, String> {
    let mut id = None;
    for (i, part) in s.split(',').enumerate() {
        match part.split_once('=') {
            None if i == 0 => id = Some(part.to_string()),
            Some(("chardev", v)) => id = Some(v.to_string()),
            Some(("mode", "readline")) | Some(("pretty", _)) => {}
            Some(("mode", m)) => return Err(format!("-mon mode={m}: rx86's monitor is the human one (mode=readline)")),
            _ => return Err(format!("-mon: unknown '{part}' (chardev=ID, mode=readline)")),
        }
    }
    id.filter(|i| !i.is_empty()).ok_or_else(|| "-mon needs chardev=ID".into())
}

/// The serial ports' and the monitor's backends once `chardev:ID` references are looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// COM1, COM2, ... in order.
    pub serial: Vec<CharBackend>,
    /// The monitor on a backend of its own (a monitor shared through `mon:` is in `serial`).
    pub monitor: Option<CharBackend>,
}

/// At most four serial ports (COM1-COM4).
pub const MAX_SERIAL: usize = 4;

/// Looks up references: `serial` as given to `-serial`, `monitor` to `-monitor` or `-mon`,
/// `chardevs` the `-chardev` definitions. A chardev serves one front end, or with `mux=on`
/// one serial port and the monitor; stdio serves one device (share it with `mon:stdio`).
pub fn resolve(serial: &[CharArg], monitor: Option<&CharArg>, chardevs: &[ChardevDef]) -> Result<Resolved, String> {
    if serial.len() > MAX_SERIAL {
        return Err(format!("{} serial ports given; the PC has {MAX_SERIAL} (COM1-COM4)", serial.len()));
    }
    for (i, c) in chardevs.iter().enumerate() {
        if chardevs[..i].iter().any(|d| d.id == c.id) {
            return Err(format!("-chardev id={} is defined twice", c.id));
        }
    }
    let find =
        |id: &str| chardevs.iter().find(|c| c.id == id).ok_or_else(|| format!("chardev:{id}: no -chardev has id={id}"));
    let monitor_id = match monitor {
        Some(CharArg::Chardev(id)) => Some(find(id)?),
        _ => None,
    };
    let mut used: Vec<&str> = Vec::new();
    let mut monitor_shared = false;
    let mut ports = Vec::new();
    for arg in serial {
        ports.push(match arg {
            CharArg::Backend(b) => b.clone(),
            CharArg::Chardev(id) => {
                let def = find(id)?;
                if used.contains(&id.as_str()) {
                    return Err(format!("chardev:{id} is given to two serial ports"));
                }
                used.push(id);
                if monitor_id.is_some_and(|m| m.id == def.id) {
                    if !def.mux {
                        return Err(format!("-chardev id={id} serves a serial port and the monitor: add mux=on"));
                    }
                    monitor_shared = true;
                    CharBackend::Mux(Box::new(def.backend.clone()))
                } else {
                    def.backend.clone()
                }
            }
        });
    }
    let monitor = match (monitor, monitor_id) {
        (_, Some(_)) if monitor_shared => None,
        (_, Some(def)) => Some(def.backend.clone()),
        (Some(CharArg::Backend(b)), None) => Some(b.clone()),
        _ => None,
    };
    let muxed = ports.iter().filter(|p| matches!(p, CharBackend::Mux(_))).count();
    if muxed > 1 || (muxed == 1 && monitor.is_some()) {
        return Err("one monitor only: mon: is given more than once, or with -monitor as well".into());
    }
    if matches!(monitor, Some(CharBackend::Mux(_))) {
        return Err("-monitor mon:...: mon: shares a serial port's backend with the monitor; give it to -serial".into());
    }
    let stdio_users = ports.iter().chain(monitor.iter()).filter(|b| b.is_stdio()).count();
    if stdio_users > 1 {
        return Err("stdio is given to more than one device: share it between the serial port and the monitor with \
                    -serial mon:stdio, or give one of them a file, socket or pty"
            .into());
    }
    Ok(Resolved { serial: ports, monitor })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16, server: bool, wait: bool) -> CharBackend {
        CharBackend::Socket(SocketSpec {
            address: SocketAddress::Tcp { host: host.into(), port },
            server,
            wait,
            telnet: false,
        })
    }

    #[test]
    fn short_forms_parse_as_qemu_spells_them() {
        assert_eq!(parse_backend("stdio"), Ok(CharBackend::Stdio));
        assert_eq!(parse_backend("none"), Ok(CharBackend::Null));
        assert_eq!(parse_backend("pty"), Ok(CharBackend::Pty));
        assert_eq!(parse_backend("file:/tmp/x"), Ok(CharBackend::File("/tmp/x".into())));
        assert_eq!(parse_backend("tcp:127.0.0.1:4444,server,nowait"), Ok(tcp("127.0.0.1", 4444, true, false)));
        assert_eq!(parse_backend("tcp::4444,server=on,wait=off"), Ok(tcp("127.0.0.1", 4444, true, false)));
        assert_eq!(parse_backend("tcp:localhost:23"), Ok(tcp("localhost", 23, false, true)));
        assert_eq!(parse_backend("tcp:[::1]:5,server,nodelay"), Ok(tcp("::1", 5, true, true)));
        assert_eq!(
            parse_backend("unix:/tmp/s.sock,server"),
            Ok(CharBackend::Socket(SocketSpec {
                address: SocketAddress::Unix("/tmp/s.sock".into()),
                server: true,
                wait: true,
                telnet: false,
            }))
        );
        assert_eq!(parse_backend("mon:stdio"), Ok(CharBackend::Mux(Box::new(CharBackend::Stdio))));
        let CharBackend::Socket(telnet) = parse_backend("telnet::4444,server,nowait").unwrap() else {
            panic!("telnet: is a socket");
        };
        assert!(telnet.telnet && telnet.server && !telnet.wait);
        assert_eq!(parse_char_arg("chardev:c0"), Ok(CharArg::Chardev("c0".into())));
    }

    #[test]
    fn bad_short_forms_say_what_is_offered() {
        for (bad, want) in [
            ("file:", "needs a path"),
            ("tcp:1234", "expected HOST:PORT"),
            ("tcp::99999", "not a port"),
            ("tcp::1,server=maybe", "expected on or off"),
            ("tcp::1,reconnect=2", "unknown socket option 'reconnect=2'"),
            ("unix:", "needs a socket path"),
            ("vc", "no virtual consoles"),
            ("websocket::4444,server", "websocket backend is not in rx86"),
            ("/dev/ttyS0", "host serial devices"),
            ("mon:mon:stdio", "once is enough"),
            ("chardev:", "needs the id"),
            ("bogus", "rx86 offers stdio"),
        ] {
            let e = parse_char_arg(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn round_trips_through_display() {
        for s in [
            "stdio",
            "null",
            "pty",
            "file:a.log",
            "tcp:1.2.3.4:5,server=on,wait=off",
            "telnet:127.0.0.1:23,server=on",
            "mon:unix:/s,server=on",
        ] {
            assert_eq!(parse_backend(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn chardev_and_mon_forms() {
        let d = parse_chardev("socket,id=s0,host=127.0.0.1,port=4000,server=on,wait=off").unwrap();
        assert_eq!(d, ChardevDef { id: "s0".into(), backend: tcp("127.0.0.1", 4000, true, false), mux: false });
        let d = parse_chardev("socket,id=u,path=/tmp/u.sock,server=on").unwrap();
        assert!(matches!(d.backend, CharBackend::Socket(SocketSpec { address: SocketAddress::Unix(_), .. })));
        assert!(parse_chardev("stdio,id=c,mux=on").unwrap().mux);
        let d = parse_chardev("socket,id=t,port=23,server=on,telnet=on").unwrap();
        assert!(matches!(d.backend, CharBackend::Socket(SocketSpec { telnet: true, .. })));
        assert_eq!(parse_chardev("file,id=f,path=x.log").unwrap().backend, CharBackend::File("x.log".into()));
        for (bad, want) in [
            ("pty", "needs id="),
            ("file,id=f", "needs path="),
            ("socket,id=s,port=1,path=/x", "host=H,port=N or path=P"),
            ("stdio,id=s,signal=off", "does not take 'signal'"),
            ("pty,id=p,path=/x", "takes no path"),
            ("socket,id=t,path=/x,telnet=on", "needs a TCP socket"),
            ("spice,id=x", "not in rx86"),
        ] {
            let e = parse_chardev(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
        assert_eq!(parse_mon("chardev=m0,mode=readline"), Ok("m0".into()));
        assert_eq!(parse_mon("m0"), Ok("m0".into()));
        assert!(parse_mon("chardev=m0,mode=control").unwrap_err().contains("readline"));
    }

    #[test]
    fn references_resolve_and_sharing_needs_mux() {
        let defs = [parse_chardev("stdio,id=c,mux=on").unwrap(), parse_chardev("pty,id=p").unwrap()];
        let c = CharArg::Chardev("c".into());
        let p = CharArg::Chardev("p".into());
        let r = resolve(std::slice::from_ref(&c), Some(&c), &defs).unwrap();
        assert_eq!(r.serial, [CharBackend::Mux(Box::new(CharBackend::Stdio))]);
        assert_eq!(r.monitor, None);
        let r = resolve(&[CharArg::Backend(CharBackend::Null), p.clone()], Some(&c), &defs).unwrap();
        assert_eq!(r.serial, [CharBackend::Null, CharBackend::Pty]);
        assert_eq!(r.monitor, Some(CharBackend::Stdio));
        assert!(resolve(std::slice::from_ref(&p), Some(&p), &defs).unwrap_err().contains("add mux=on"));
        assert!(resolve(&[p.clone(), p.clone()], None, &defs).unwrap_err().contains("two serial ports"));
        assert!(resolve(&[CharArg::Chardev("x".into())], None, &defs).unwrap_err().contains("no -chardev"));
        let stdio = CharArg::Backend(CharBackend::Stdio);
        assert!(resolve(std::slice::from_ref(&stdio), Some(&stdio), &[]).unwrap_err().contains("mon:stdio"));
        let mux = CharArg::Backend(parse_backend("mon:stdio").unwrap());
        assert!(resolve(&[mux.clone(), mux], None, &[]).unwrap_err().contains("one monitor"));
        let five = vec![CharArg::Backend(CharBackend::Null); 5];
        assert!(resolve(&five, None, &[]).unwrap_err().contains("COM1-COM4"));
        let twice = [parse_chardev("pty,id=p").unwrap(), parse_chardev("null,id=p").unwrap()];
        assert!(resolve(&[], None, &twice).unwrap_err().contains("defined twice"));
    }
}
