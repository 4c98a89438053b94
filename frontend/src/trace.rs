//! `--trace SPEC`: a log of executed instructions (disassembled with iced-x86's Intel
//! formatter), exceptions and interrupts, port I/O and memory-mapped I/O, on the software CPU.
//!
//! SPEC is a comma-separated list: `insn`, `int`, `io` (what to log; `io` is `port` and
//! `mmio` together; `all` for everything),
//! `range=START-END` (only instructions whose linear address is in START..END, hex or
//! decimal) and `file=PATH` (default: standard error). Example:
//! `--trace insn,int,range=0x100000-0x101000,file=trace.txt`.
//!
//! Each line starts with the instruction count: the number of instructions begun since
//! power-on (the tracer sees every one, whatever it logs; a REP string instruction counts
//! once, an instruction that faults counts), so an event's line carries the number of the
//! instruction it happened at or after. The output is buffered and flushed every
//! [`FLUSH_INTERVAL`] of host time by a helper thread, so a run that is killed keeps its
//! lines up to then; the end of the run flushes the rest.
use crate::machine::Machine;
use iced_x86::{Formatter, Instruction, IntelFormatter};
use rx86_cpu::debug::diagnose::exception_name;
use rx86_cpu::debug::trace::TraceSink;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

/// How often buffered trace lines reach the file.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(200);

/// The buffered output, shared with the flushing thread.
type SharedOutput = Arc<Mutex<BufWriter<Box<dyn Write + Send>>>>;

fn lock(out: &SharedOutput) -> MutexGuard<'_, BufWriter<Box<dyn Write + Send>>> {
    out.lock().unwrap_or_else(|e| e.into_inner())
}

/// What `--trace` asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TraceSpec {
    /// Log instructions.
    pub instructions: bool,
    /// Log exceptions and interrupts.
    pub events: bool,
    /// Log port I/O.
    pub ports: bool,
    /// Log memory-mapped I/O (data accesses outside RAM and ROM).
    pub mmio: bool,
    /// Only instructions in this linear range.
    pub range: Option<Range<u64>>,
    /// Output file (standard error when absent).
    pub file: Option<PathBuf>,
}

fn number(s: &str) -> Result<u64, String> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    }
    .map_err(|_| format!("'{s}' is not a number"))
}

/// Parses a `--trace` value.
pub fn parse_trace_spec(s: &str) -> Result<TraceSpec, String> {
    let mut spec = TraceSpec::default();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        match item.split_once('=') {
            Some(("file", path)) if !path.is_empty() => spec.file = Some(PathBuf::from(path)),
            Some(("range", r)) => {
                let (a, b) = r.split_once('-').ok_or(format!("range '{r}' is not START-END"))?;
                let (a, b) = (number(a)?, number(b)?);
                if a >= b {
                    return Err(format!("range '{r}' is empty"));
                }
                spec.range = Some(a..b);
            }
            None if item == "insn" => spec.instructions = true,
            None if item == "int" => spec.events = true,
            None if item == "io" => (spec.ports, spec.mmio) = (true, true),
            None if item == "port" => spec.ports = true,
            None if item == "mmio" => spec.mmio = true,
            None if item == "all" => (spec.instructions, spec.events, spec.ports, spec.mmio) = (true, true, true, true),
            _ => {
                return Err(format!(
                    "unknown trace item '{item}' (insn, int, io, port, mmio, all, range=A-B, file=PATH)"
                ))
            }
        }
    }
    if !(spec.instructions || spec.events || spec.ports || spec.mmio) {
        return Err("nothing to trace: name insn, int, io, port, mmio or all".into());
    }
    Ok(spec)
}

/// Writes trace lines.
pub struct TraceWriter {
    spec: TraceSpec,
    out: SharedOutput,
    formatter: IntelFormatter,
    text: String,
    /// The line being written.
    line: String,
    /// Instructions begun since the trace started (at power-on).
    instructions: u64,
    /// The first write error, reported once.
    failed: bool,
}

impl TraceWriter {
    /// A writer for `spec` (opens its file and starts the flushing thread).
    pub fn new(spec: TraceSpec) -> Result<Self, String> {
        let sink: Box<dyn Write + Send> = match &spec.file {
            Some(p) => {
                Box::new(File::create(p).map_err(|e| format!("cannot create trace file '{}': {e}", p.display()))?)
            }
            None => Box::new(std::io::stderr()),
        };
        let out = Arc::new(Mutex::new(BufWriter::new(sink)));
        spawn_flusher(Arc::downgrade(&out)).map_err(|e| format!("cannot start the trace flusher: {e}"))?;
        Ok(TraceWriter {
            spec,
            out,
            formatter: IntelFormatter::new(),
            text: String::new(),
            line: String::new(),
            instructions: 0,
            failed: false,
        })
    }

    fn line(&mut self, args: std::fmt::Arguments<'_>) {
        if self.failed {
            return;
        }
        // The whole line goes to the buffer in one write, so whatever reaches the file (when
        // the buffer fills, or at a flush) ends at a line's end.
        self.line.clear();
        let _ = writeln!(self.line, "{:>12} {args}", self.instructions);
        if let Err(e) = lock(&self.out).write_all(self.line.as_bytes()) {
            log::error!("trace output failed, tracing stops: {e}");
            self.failed = true;
        }
    }
}

/// Flushes `out` every [`FLUSH_INTERVAL`] until its writer is gone.
fn spawn_flusher(out: Weak<Mutex<BufWriter<Box<dyn Write + Send>>>>) -> std::io::Result<()> {
    std::thread::Builder::new().name("trace-flush".into()).spawn(move || loop {
        std::thread::sleep(FLUSH_INTERVAL);
        let Some(out) = out.upgrade() else { break };
        // A write error shows on the writer's next line; the flusher has no one to tell.
        let _ = lock(&out).flush();
    })?;
    Ok(())
}

impl TraceSink for TraceWriter {
    fn instruction(&mut self, cs: u16, rip: u64, lin: u64, ins: &Instruction) {
        self.instructions += 1;
        if !self.spec.instructions || self.spec.range.as_ref().is_some_and(|r| !r.contains(&lin)) {
            return;
        }
        self.text.clear();
        self.formatter.format(ins, &mut self.text);
        let text = std::mem::take(&mut self.text);
        self.line(format_args!("insn {cs:04x}:{rip:#010x} {text}"));
        self.text = text;
    }

    fn event(&mut self, vector: u8, error: Option<u32>, external: bool, cs: u16, rip: u64) {
        if !self.spec.events {
            return;
        }
        let what = if external { "interrupt".to_string() } else { exception_name(vector).0.to_string() };
        let error = error.map(|e| format!(" error={e:#x}")).unwrap_or_default();
        self.line(format_args!("int  vector {vector:#04x} ({what}){error} at {cs:04x}:{rip:#x}"));
    }

    fn port(&mut self, port: u16, size: u8, value: u32, write: bool) {
        if self.spec.ports {
            let dir = if write { "out" } else { "in " };
            self.line(format_args!("io   {dir} port {port:#06x} size {size} value {value:#x}"));
        }
    }

    fn mmio(&mut self, addr: u64, size: u8, value: u64, write: bool) {
        if self.spec.mmio {
            let dir = if write { "write" } else { "read " };
            self.line(format_args!("mmio {dir} {addr:#010x} size {size} value {value:#x}"));
        }
    }
}

impl Drop for TraceWriter {
    fn drop(&mut self) {
        let _ = lock(&self.out).flush();
    }
}

/// Starts tracing on `machine`'s engine.
pub fn install(machine: &mut Machine, spec: TraceSpec) -> Result<(), String> {
    let name = machine.engine_name();
    let writer = TraceWriter::new(spec)?;
    let traced = machine.debug_parts().0.is_some_and(|debug| debug.set_trace(Some(Box::new(writer))));
    if traced {
        Ok(())
    } else {
        Err(format!("--trace: the {name} engine cannot trace; use --accel interp"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Decoder, DecoderOptions};

    #[test]
    fn specs() {
        let s = parse_trace_spec("insn,int,range=0x1000-0x2000,file=/tmp/t").unwrap();
        assert!(s.instructions && s.events && !s.ports && !s.mmio);
        let io = parse_trace_spec("io").unwrap();
        assert!(io.ports && io.mmio);
        let mmio = parse_trace_spec("mmio").unwrap();
        assert!(mmio.mmio && !mmio.ports);
        assert!(parse_trace_spec("port").unwrap().ports);
        assert_eq!(s.range, Some(0x1000..0x2000));
        assert_eq!(s.file, Some(PathBuf::from("/tmp/t")));
        assert!(parse_trace_spec("all").unwrap().ports && parse_trace_spec("all").unwrap().mmio);
        assert!(parse_trace_spec("").is_err());
        assert!(parse_trace_spec("insn,range=5-5").is_err());
        assert!(parse_trace_spec("insn,bogus").is_err());
        assert!(parse_trace_spec("file=x").is_err(), "nothing to trace");
    }

    #[test]
    fn writer_formats_and_filters() {
        let path = std::env::temp_dir().join(format!("rx86-trace-test-{}", std::process::id()));
        let spec = parse_trace_spec(&format!("all,range=0x1000-0x1001,file={}", path.display())).unwrap();
        let mut w = TraceWriter::new(spec).unwrap();
        let ins = Decoder::with_ip(32, &[0x89, 0xd8], 0x1000, DecoderOptions::NONE).decode();
        w.instruction(8, 0x1000, 0x1000, &ins);
        w.instruction(8, 0x1002, 0x1002, &ins);
        w.event(14, Some(2), false, 8, 0x1000);
        w.port(0x3f8, 1, 0x41, true);
        w.mmio(0xfee0_00b0, 4, 0, true);
        w.mmio(0xfebf_0500, 2, 0xb0c5, false);
        drop(w);
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "           1 insn 0008:0x00001000 mov eax,ebx",
                "           2 int  vector 0x0e (#PF) error=0x2 at 0008:0x1000",
                "           2 io   out port 0x03f8 size 1 value 0x41",
                "           2 mmio write 0xfee000b0 size 4 value 0x0",
                "           2 mmio read  0xfebf0500 size 2 value 0xb0c5",
            ]
        );
    }

    #[test]
    fn lines_reach_the_file_while_the_writer_lives() {
        let path = std::env::temp_dir().join(format!("rx86-trace-flush-{}", std::process::id()));
        let mut w = TraceWriter::new(parse_trace_spec(&format!("port,file={}", path.display())).unwrap()).unwrap();
        w.port(0x80, 1, 0x12, true);
        let deadline = std::time::Instant::now() + 50 * FLUSH_INTERVAL;
        while std::fs::read_to_string(&path).unwrap_or_default().is_empty() {
            assert!(std::time::Instant::now() < deadline, "the line was never flushed");
            std::thread::sleep(FLUSH_INTERVAL / 4);
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "           0 io   out port 0x0080 size 1 value 0x12\n");
        drop(w);
        let _ = std::fs::remove_file(&path);
    }
}
