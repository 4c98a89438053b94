//! Monitor commands, served through gdb's `monitor` (qRcmd) and `--monitor BACKEND`:
//! registers with the hidden segment state, the GDT/IDT/LDT decoded, a page walk, physical
//! memory, the device list, `quit`.

use crate::chardev::{Chardev, Peer};
use crate::machine::Machine;
use rx86_core::phys::PhysMemory;
use rx86_cpu::debug::describe::{describe_gate, describe_segment_descriptor};
use rx86_cpu::debug::walk::walk;
use rx86_cpu::debug::{memory, seg, CpuMode, DebugRegs, SegmentReg, TlbView};
use std::fmt::Write;
use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::sync::mpsc::TryRecvError;

/// What a command printed, and whether it asked to end rx86.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Text for the user.
    pub text: String,
    /// `quit` was given.
    pub quit: bool,
}

impl Reply {
    fn text(text: String) -> Reply {
        Reply { text, quit: false }
    }
}

/// The command summary `help` prints.
pub const HELP: &str = "\
info registers      all registers, hidden segment parts, control registers, EFER
info gdt | info idt | info ldt   the descriptor table decoded
walk ADDR           page-table walk of a linear address (no A/D bits set)
info tlb            the software TLB's cached translations (interpreter)
xp ADDR [LEN]       physical memory (RAM/ROM) in hex, LEN bytes (default 64, at most 4096)
x ADDR [LEN]        virtual memory through the guest's page tables
info devices        the port and memory-mapped devices, and the physical memory map
info network        each NIC (model, MAC, link, ring positions) and its NAT's connections
info pic | info ioapic | info lapic   the interrupt controllers' registers
screendump FILE     write the screen as a PNG
quit                end rx86";

/// The monitor's prompt.
pub const PROMPT: &str = "(rx86) ";

/// The line that opens a monitor session.
pub const BANNER: &str = "rx86 monitor - type 'help' for more information";

/// The monitor on a character device (`--monitor BACKEND`, or a `mon:` serial port): it greets
/// each new connection, reads command lines (echoing and editing them for a terminal that
/// does not), and runs each between two turns of the machine loop.
pub struct MonitorConsole {
    device: Chardev,
    /// The line typed so far.
    line: Vec<u8>,
    /// Connections greeted so far.
    greeted: u64,
    /// Where in an escape sequence (arrow keys) the input is: 0 outside, 1 after ESC, 2 in
    /// a CSI sequence.
    escape: u8,
    /// The last byte ended a line with CR (a following LF belongs to it).
    after_cr: bool,
}

impl MonitorConsole {
    /// A monitor on `device`.
    pub fn new(device: Chardev) -> Self {
        MonitorConsole { device, line: Vec::new(), greeted: 0, escape: 0, after_cr: false }
    }

    /// True while commands may still arrive.
    pub fn has_input(&self) -> bool {
        self.device.input.is_some()
    }

    fn say(&mut self, text: &str) {
        let text = if self.device.peer == Peer::Raw { text.replace('\n', "\r\n") } else { text.to_string() };
        // The backend drops what it cannot deliver (no client connected).
        let _ = self.device.output.write_all(text.as_bytes());
    }

    /// Greets new connections and runs the command lines that arrived; true when the user
    /// asked to end rx86 (`quit`, or `Ctrl-A x` under `mon:`).
    pub fn poll(&mut self, machine: &mut Machine) -> bool {
        let connects = self.device.connects.load(Ordering::SeqCst);
        if connects != self.greeted {
            self.greeted = connects;
            self.line.clear();
            self.say(&format!("{BANNER}\n{PROMPT}"));
        }
        let mut typed = Vec::new();
        while let Some(rx) = &self.device.input {
            match rx.try_recv() {
                Ok(bytes) => typed.extend(bytes),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => self.device.input = None,
            }
        }
        for b in typed {
            if let Some(line) = self.edit(b) {
                if line.trim().is_empty() {
                    self.say(PROMPT);
                    continue;
                }
                let reply = execute(machine, line.trim());
                self.say(&format!("{}\n", reply.text.trim_end()));
                if reply.quit {
                    return true;
                }
                self.say(PROMPT);
            }
        }
        if self.device.quit.load(Ordering::SeqCst) {
            self.say("\nrx86: C-a x: the run ends\n");
            return true;
        }
        false
    }

    /// Takes one typed byte; a whole line when it ends one.
    fn edit(&mut self, b: u8) -> Option<String> {
        let echo = self.device.peer != Peer::Plain;
        let after_cr = std::mem::take(&mut self.after_cr);
        match (self.escape, b) {
            (1, b'[') => self.escape = 2,
            (1, _) => self.escape = 0,
            (2, 0x40..=0x7e) => self.escape = 0,
            (2, _) => {}
            (_, 0x1b) => self.escape = 1,
            (_, b'\n') if after_cr => {}
            (_, b'\r' | b'\n') => {
                self.after_cr = b == b'\r';
                if echo {
                    self.say("\n");
                }
                return Some(String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned());
            }
            (_, 0x08 | 0x7f) => {
                let erased = self.line.pop().is_some();
                if erased && echo {
                    self.say("\x08 \x08");
                }
            }
            (_, 0x20..=0x7e) => {
                self.line.push(b);
                if echo {
                    let _ = self.device.output.write_all(&[b]);
                }
            }
            // Other control keys mean nothing here.
            _ => {}
        }
        None
    }
}

/// Largest dump `xp`/`x` print.
const MAX_DUMP: u64 = 4096;
/// Most table entries printed.
const MAX_ENTRIES: u64 = 256;

/// Runs one monitor command line.
pub fn execute(machine: &mut Machine, line: &str) -> Reply {
    let words: Vec<&str> = line.split_whitespace().collect();
    let (debug, pc) = machine.debug_parts();
    let mem = pc.memory();
    let debug = debug.map(|d| &*d);
    let regs = debug.map(|d| d.registers());
    let need_regs = || format!("'{line}' needs the CPU state, which this engine does not expose");
    match words.as_slice() {
        [] | ["help"] => Reply::text(HELP.into()),
        ["quit" | "q"] => Reply { text: "rx86: quit".into(), quit: true },
        ["info", "registers" | "regs" | "r"] => Reply::text(regs.map_or_else(need_regs, |r| format_registers(&r))),
        ["info", table @ ("gdt" | "idt" | "ldt")] => {
            Reply::text(regs.map_or_else(need_regs, |r| format_table(mem, &r, table)))
        }
        ["info", "tlb"] => Reply::text(match debug.map(|d| d.tlb()) {
            Some(Some(entries)) => format_tlb(&entries),
            _ => "the engine keeps no software TLB to show (the interpreter does)".into(),
        }),
        ["walk", addr] | ["info", "tlb", addr] => match parse_num(addr) {
            Some(a) => Reply::text(regs.map_or_else(need_regs, |r| {
                let w = walk(&r.paging(), a, |at, size| memory::read_entry(mem, at, size));
                format!("{}:\n{}", r.paging().describe(), w.describe(a))
            })),
            None => Reply::text(format!("'{addr}' is not an address")),
        },
        ["xp", rest @ ..] | ["x", rest @ ..] => {
            let Some((addr, len)) = parse_range(rest) else {
                return Reply::text(format!("usage: {} ADDR [LEN]", words[0]));
            };
            let mut buf = vec![0u8; len as usize];
            let n = if words[0] == "xp" {
                memory::read_virtual(mem, &Default::default(), addr, &mut buf)
            } else {
                match &regs {
                    Some(r) => memory::read_virtual(mem, &r.paging(), addr, &mut buf),
                    None => return Reply::text(need_regs()),
                }
            };
            Reply::text(hex_dump(addr, &buf[..n], n < buf.len()))
        }
        ["info", "devices" | "mtree" | "qtree"] => Reply::text(format_devices(pc.ports(), mem)),
        ["info", "network"] => Reply::text(pc.network_info().join("\n")),
        ["info", "pic"] => {
            Reply::text(format!("{}{}", lock(&pc.interrupts().pic).info(), lock(&pc.interrupts().ioapic).info()))
        }
        ["info", "ioapic"] => Reply::text(lock(&pc.interrupts().ioapic).info()),
        ["info", "lapic"] => Reply::text(lock(&pc.interrupts().lapic).info()),
        ["screendump", file] => {
            let capture = crate::screenshot::ScreenCapture { screenshot: Some(file.into()), text_dump: None };
            Reply::text(match capture.save(pc.vga()) {
                Ok(()) => format!("wrote {file}"),
                Err(e) => e.to_string(),
            })
        }
        _ => Reply::text(format!("unknown command '{line}'; try 'help'")),
    }
}

/// The TLB's translations, one per line: linear page, physical page, what backs it, rights.
fn format_tlb(entries: &[TlbView]) -> String {
    let mut s = format!("{} cached translations (linear -> physical):\n", entries.len());
    for e in entries {
        let flag = |on: bool, c: char| if on { c } else { '-' };
        let _ = writeln!(
            s,
            "{:#018x} -> {:#014x} {} {}{}{}{}{}",
            e.linear,
            e.physical,
            if e.ram { "ram " } else { "bus " },
            flag(e.user, 'u'),
            flag(e.writable, 'w'),
            flag(e.dirty, 'd'),
            flag(e.no_execute, 'x'),
            flag(e.global, 'g'),
        );
    }
    s
}

/// A number in hex (`0x..`) or decimal.
fn parse_num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn parse_range(args: &[&str]) -> Option<(u64, u64)> {
    let addr = parse_num(args.first()?)?;
    let len = match args.get(1) {
        Some(l) => parse_num(l)?,
        None => 64,
    };
    (args.len() <= 2 && (1..=MAX_DUMP).contains(&len)).then_some((addr, len))
}

fn hex_dump(addr: u64, bytes: &[u8], short: bool) -> String {
    let mut s = String::new();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let _ = write!(s, "{:#018x}:", addr + i as u64 * 16);
        for b in chunk {
            let _ = write!(s, " {b:02x}");
        }
        s.push('\n');
    }
    if short {
        let _ = writeln!(s, "(stopped at {:#x}: not mapped, or not RAM/ROM)", addr + bytes.len() as u64);
    }
    s
}

fn format_segment(name: &str, s: &SegmentReg) -> String {
    format!("{name:<4} {:04x} base={:#018x} limit={:#010x} attrs={:#06x}", s.selector, s.base, s.limit, s.attrs)
}

/// `info registers`: everything the CPU holds, hidden parts included.
pub fn format_registers(r: &DebugRegs) -> String {
    const NAMES: [&str; 16] =
        ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];
    let mut s = format!("mode: {}, CPL {}\n", r.mode.describe(), r.cpl);
    for (i, name) in NAMES.iter().enumerate() {
        let _ = write!(s, "{name:<4}={:#018x}{}", r.gpr[i], if i % 4 == 3 { "\n" } else { " " });
    }
    let _ = writeln!(s, "rip ={:#018x} rflags={:#010x}", r.rip, r.rflags);
    for (i, name) in seg::NAMES.iter().enumerate() {
        let _ = writeln!(s, "{}", format_segment(name, &r.seg[i]));
    }
    let _ = writeln!(s, "{}", format_segment("ldtr", &r.ldtr));
    let _ = writeln!(s, "{}", format_segment("tr", &r.tr));
    let _ = writeln!(s, "gdtr base={:#018x} limit={:#06x}", r.gdtr.base, r.gdtr.limit);
    let _ = writeln!(s, "idtr base={:#018x} limit={:#06x}", r.idtr.base, r.idtr.limit);
    let _ =
        writeln!(s, "cr0={:#010x} cr2={:#018x} cr3={:#018x} cr4={:#010x} cr8={:#x}", r.cr0, r.cr2, r.cr3, r.cr4, r.cr8);
    let _ = writeln!(s, "efer={:#x} kernel_gs_base={:#x}", r.efer, r.kernel_gs_base);
    let _ = writeln!(
        s,
        "dr0={:#x} dr1={:#x} dr2={:#x} dr3={:#x} dr6={:#x} dr7={:#x}",
        r.dr[0], r.dr[1], r.dr[2], r.dr[3], r.dr[6], r.dr[7]
    );
    let _ = write!(s, "fcw={:#06x} fsw={:#06x} ftw={:#06x} mxcsr={:#010x}", r.fpu.fcw, r.fpu.fsw, r.fpu.ftw, r.mxcsr);
    s
}

/// `info gdt|idt|ldt`: each entry decoded.
fn format_table(mem: &PhysMemory, r: &DebugRegs, table: &str) -> String {
    let paging = r.paging();
    let read = |lin: u64| {
        let mut b = [0u8; 8];
        (memory::read_virtual(mem, &paging, lin, &mut b) == 8).then(|| u64::from_le_bytes(b))
    };
    let long = r.efer & (1 << 10) != 0;
    let (base, limit) = match table {
        "gdt" => (r.gdtr.base, r.gdtr.limit as u64),
        "idt" => (r.idtr.base, r.idtr.limit as u64),
        _ => (r.ldtr.base, r.ldtr.limit as u64),
    };
    let mut s = format!("{} at {base:#x}, limit {limit:#x}\n", table.to_uppercase());
    if table == "idt" && matches!(r.mode, CpuMode::Real) {
        // Real mode: the IVT, segment:offset pairs.
        for v in 0..=(limit / 4).min(MAX_ENTRIES - 1) {
            let mut b = [0u8; 4];
            if memory::read_virtual(mem, &paging, base + v * 4, &mut b) == 4 {
                let _ = writeln!(s, "  {v:3}: {:02x}{:02x}:{:02x}{:02x}", b[3], b[2], b[1], b[0]);
            }
        }
        return s;
    }
    let entry = if table == "idt" && long { 16 } else { 8 };
    let mut at = 0;
    while at + entry - 1 <= limit && at / entry < MAX_ENTRIES {
        let (Some(lo), hi) = (read(base + at), read(base + at + 8)) else {
            let _ = writeln!(s, "  (unreadable at {:#x})", base + at);
            break;
        };
        if table == "idt" {
            let _ = writeln!(s, "  {:3}: {}", at / entry, describe_gate(lo, hi.unwrap_or(0), long));
            at += entry;
        } else {
            let _ = writeln!(s, "  {:#06x}: {}", at, describe_segment_descriptor(lo, long));
            // In long mode, system descriptors (S = 0) other than null take 16 bytes.
            at += if long && lo != 0 && lo & (1 << 44) == 0 { 16 } else { 8 };
        }
    }
    s
}

/// `info devices`: port devices, MMIO devices, the physical map.
fn format_devices(ports: &rx86_core::bus::Bus, mem: &PhysMemory) -> String {
    let mut s = String::from("I/O ports:\n");
    for (name, base, len) in ports.devices() {
        let _ = writeln!(s, "  {base:#06x}-{:#06x} {name}", base + len - 1);
    }
    s.push_str("memory-mapped devices:\n");
    for (name, base, len) in mem.mmio().devices() {
        let _ = writeln!(s, "  {base:#010x}-{:#010x} {name}", base + len - 1);
    }
    s.push_str("physical memory map:\n");
    for r in mem.regions() {
        let _ = writeln!(s, "  {:#012x}-{:#012x} {} [{}]", r.base, r.base + r.len - 1, r.name, kind(&r.kind));
    }
    s
}

fn kind(k: &rx86_core::phys::RegionKind) -> &'static str {
    match k {
        rx86_core::phys::RegionKind::Ram { .. } => "RAM",
        rx86_core::phys::RegionKind::Rom { .. } => "ROM",
        rx86_core::phys::RegionKind::Shadow { .. } => "shadow RAM",
        rx86_core::phys::RegionKind::Mmio => "MMIO",
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_numbers() {
        assert_eq!(parse_num("0x10"), Some(16));
        assert_eq!(parse_num("10"), Some(10));
        assert_eq!(parse_range(&["0x1000"]), Some((0x1000, 64)));
        assert_eq!(parse_range(&["0x1000", "16"]), Some((0x1000, 16)));
        assert_eq!(parse_range(&["0x1000", "0"]), None);
        assert_eq!(parse_range(&["0x1000", "99999"]), None);
    }

    #[test]
    fn hex_dump_marks_a_short_read() {
        let d = hex_dump(0x10, &[1, 2, 3], true);
        assert!(d.starts_with("0x0000000000000010: 01 02 03\n"));
        assert!(d.contains("stopped at 0x13"));
    }

    #[test]
    fn registers_show_mode_and_hidden_bases() {
        let mut r = DebugRegs { mode: CpuMode::Protected32, ..DebugRegs::default() };
        r.seg[seg::FS].base = 0x12345;
        let s = format_registers(&r);
        assert!(s.starts_with("mode: 32-bit protected mode, CPL 0"));
        assert!(s.contains("fs   0000 base=0x0000000000012345"));
    }

    #[test]
    fn tlb_lines_show_backing_and_rights() {
        let e = TlbView {
            linear: 0xffff_8000_0000_0000,
            physical: 0x20_0000,
            ram: true,
            user: false,
            writable: true,
            dirty: true,
            no_execute: true,
            global: true,
        };
        let mmio = TlbView { linear: 0xfee0_0000, physical: 0xfee0_0000, ram: false, user: true, ..e };
        let s = format_tlb(&[e, mmio]);
        assert_eq!(
            s,
            "2 cached translations (linear -> physical):\n\
             0xffff800000000000 -> 0x000000200000 ram  -wdxg\n\
             0x00000000fee00000 -> 0x0000fee00000 bus  uwdxg\n"
        );
    }
}
