//! KVM engine tests with hand-assembled guests; each skips with a printed reason where
//! `/dev/kvm` cannot be used.

use super::engine::{probe, KvmEngine};
use crate::engine::{Engine, Exit};
use rx86_core::entry::EntryState;
use rx86_core::phys::PhysMemory;
use rx86_core::platform::{BasicPlatform, Platform};
use rx86_core::time::Clock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// A platform that records bytes written to port 0xE9 and offers one interrupt vector.
struct TestBoard {
    inner: BasicPlatform,
    out: Mutex<Vec<u8>>,
    irq: AtomicBool,
    acked: Mutex<Vec<u8>>,
}

impl TestBoard {
    fn new() -> Self {
        TestBoard {
            inner: BasicPlatform::new(0x10_0000).unwrap(),
            out: Mutex::new(Vec::new()),
            irq: AtomicBool::new(false),
            acked: Mutex::new(Vec::new()),
        }
    }
    fn output(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }
}

impl Platform for TestBoard {
    fn memory(&self) -> &PhysMemory {
        &self.inner.memory
    }
    fn io_read(&self, _port: u16, _size: u8) -> u32 {
        0xffff_ffff
    }
    fn io_write(&self, port: u16, _size: u8, value: u32) {
        if port == 0xe9 {
            self.out.lock().unwrap().push(value as u8);
        }
    }
    fn interrupt_pending(&self) -> bool {
        self.irq.load(Ordering::SeqCst)
    }
    fn acknowledge_interrupt(&self) -> Option<u8> {
        self.irq.store(false, Ordering::SeqCst);
        self.acked.lock().unwrap().push(0x20);
        Some(0x20)
    }
}

fn kvm_or_skip() -> bool {
    match probe() {
        Ok(_) => true,
        Err(why) => {
            println!("SKIP: {why}");
            false
        }
    }
}

/// Tests of guest code that nested paravirtual KVM (`kvm_pvm`) cannot run: protected
/// mode without 4-level paging goes through KVM's instruction emulator there, which
/// cannot emulate IRET or software INT. Hardware KVM (`kvm_intel`/`kvm_amd`) runs them.
fn hardware_kvm_or_skip() -> bool {
    if !kvm_or_skip() {
        return false;
    }
    let hw = super::hardware_virtualization();
    if !hw {
        println!("SKIP: the host's KVM is not hardware virtualization (kvm_intel/kvm_amd); PVM cannot run this guest");
    }
    hw
}

const FAR: u64 = 1_000_000_000_000;

#[test]
fn real_mode_port_io_hlt_and_interrupt_injection() {
    if !kvm_or_skip() {
        return;
    }
    let board = TestBoard::new();
    let mem = board.memory();
    // mov al,'A'; out 0xe9,al; sti; hlt; mov al,'B'; out 0xe9,al; hlt
    mem.write(0x1000, &[0xb0, b'A', 0xe6, 0xe9, 0xfb, 0xf4, 0xb0, b'B', 0xe6, 0xe9, 0xf4]);
    // Vector 0x20 -> 0000:2000: mov al,'I'; out 0xe9,al; iret
    mem.write(0x80, &[0x00, 0x20, 0x00, 0x00]);
    mem.write(0x2000, &[0xb0, b'I', 0xe6, 0xe9, 0xcf]);
    let clock = Clock::new_host();
    let mut kvm = KvmEngine::new(mem, &clock).unwrap();
    kvm.load_entry_state(&EntryState::real_mode(0, 0x1000, 0, 0, 0x8000)).unwrap();
    assert_eq!(kvm.run(&board, &clock, FAR).unwrap(), Exit::Halted);
    assert_eq!(board.output(), "A");
    board.irq.store(true, Ordering::SeqCst);
    assert_eq!(kvm.run(&board, &clock, FAR).unwrap(), Exit::Halted);
    assert_eq!(board.output(), "AIB");
    assert_eq!(board.acked.lock().unwrap().len(), 1);
}

#[test]
fn deadline_ends_a_spinning_guest() {
    if !kvm_or_skip() {
        return;
    }
    let board = TestBoard::new();
    board.memory().write(0x1000, &[0xeb, 0xfe]); // jmp $
    let clock = Clock::new_host();
    let mut kvm = KvmEngine::new(board.memory(), &clock).unwrap();
    kvm.load_entry_state(&EntryState::real_mode(0, 0x1000, 0, 0, 0x8000)).unwrap();
    let deadline = clock.now_ns() + 20_000_000;
    assert_eq!(kvm.run(&board, &clock, deadline).unwrap(), Exit::Deadline);
    assert!(clock.now_ns() >= deadline);
    assert_eq!(kvm.registers().rip, 0x1000);
}

#[test]
fn protected_mode_entry_runs_flat_32_bit_code() {
    if !kvm_or_skip() {
        return;
    }
    let board = TestBoard::new();
    let mem = board.memory();
    let gdtr = write_gdt(mem, 3);
    // mov eax, 0x12345678; mov [0x3000], eax; mov al,'P'; out 0xe9,al; hlt
    mem.write(0x1_0000, &[0xb8, 0x78, 0x56, 0x34, 0x12, 0xa3, 0x00, 0x30, 0, 0, 0xb0, b'P', 0xe6, 0xe9, 0xf4]);
    let clock = Clock::new_host();
    let mut kvm = KvmEngine::new(mem, &clock).unwrap();
    kvm.load_entry_state(&EntryState::protected32(0x1_0000, 0x08, 0x10, gdtr)).unwrap();
    assert_eq!(kvm.run(&board, &clock, FAR).unwrap(), Exit::Halted);
    assert_eq!(board.output(), "P");
    assert_eq!(mem.ram().read_u32(0x3000).unwrap(), 0x1234_5678);
}

/// Assembles 32-bit code for address `ip` with iced-x86.
fn asm32(ip: u64, f: impl FnOnce(&mut iced_x86::code_asm::CodeAssembler)) -> Vec<u8> {
    let mut a = iced_x86::code_asm::CodeAssembler::new(32).unwrap();
    f(&mut a);
    a.assemble(ip).unwrap()
}

/// GDT entries: null, flat code32 0x08, flat data 0x10, code64 0x18.
const GDT: [u64; 4] = [0, 0x00cf_9b00_0000_ffff, 0x00cf_9300_0000_ffff, 0x00af_9b00_0000_ffff];

/// Writes the first `entries` descriptors of [`GDT`] at 0x500 and returns the GDTR.
fn write_gdt(mem: &PhysMemory, entries: usize) -> rx86_core::entry::TableInit {
    for (i, d) in GDT.iter().take(entries).enumerate() {
        mem.write(0x500 + 8 * i as u64, &d.to_le_bytes());
    }
    rx86_core::entry::TableInit { base: 0x500, limit: (8 * entries - 1) as u16 }
}

/// Writes an interrupt handler at `handler` that prints 'I' on port 0xE9 and returns
/// with IRETD (`bits` 32) or IRETQ (64).
fn write_printing_handler(mem: &PhysMemory, handler: u64, bits: u32) {
    let mut a = iced_x86::code_asm::CodeAssembler::new(bits).unwrap();
    a.mov(iced_x86::code_asm::al, b'I' as u32).unwrap();
    a.out(0xe9, iced_x86::code_asm::al).unwrap();
    if bits == 64 {
        a.iretq().unwrap();
    } else {
        a.iretd().unwrap();
    }
    mem.write(handler, &a.assemble(handler).unwrap());
}

/// Emits: print `marker` on port 0xE9, STI, HLT; after the interrupt, print 'E' and HLT.
fn print_then_wait_for_interrupt(a: &mut iced_x86::code_asm::CodeAssembler, marker: u8) {
    use iced_x86::code_asm::al;
    a.mov(al, marker as u32).unwrap();
    a.out(0xe9, al).unwrap();
    a.sti().unwrap();
    a.hlt().unwrap();
    a.mov(al, b'E' as u32).unwrap();
    a.out(0xe9, al).unwrap();
    a.hlt().unwrap();
}

/// Starts a KVM guest in `entry`, runs it until it halts and checks its output is
/// `before`; then raises the interrupt line, runs to the next halt and checks the
/// output is `after`.
fn halt_then_interrupt(board: &TestBoard, entry: &EntryState, before: &str, after: &str) {
    let clock = Clock::new_host();
    let mut kvm = KvmEngine::new(board.memory(), &clock).unwrap();
    kvm.load_entry_state(entry).unwrap();
    assert_eq!(kvm.run(board, &clock, FAR).unwrap(), Exit::Halted, "{}", kvm.registers());
    assert_eq!(board.output(), before);
    board.irq.store(true, Ordering::SeqCst);
    assert_eq!(kvm.run(board, &clock, FAR).unwrap(), Exit::Halted, "{}", kvm.registers());
    assert_eq!(board.output(), after);
}

/// Identity-maps the first 1 GiB with 2 MiB pages: PML4 0x8000, PDPT 0x9000, PD 0xA000.
fn identity_map_1g(mem: &PhysMemory) {
    mem.write(0x8000, &0x9003u64.to_le_bytes());
    mem.write(0x9000, &0xa003u64.to_le_bytes());
    for i in 0..512u64 {
        mem.write(0xa000 + 8 * i, &((i << 21) | 0x83).to_le_bytes());
    }
}

/// Writes a 64-bit interrupt gate for `vector` -> `handler` into the IDT at 0x600.
fn gate64(mem: &PhysMemory, vector: u64, handler: u64) {
    let lo = (handler & 0xffff) | (0x18 << 16) | (0x8e00u64 << 32) | (((handler >> 16) & 0xffff) << 48);
    mem.write(0x600 + vector * 16, &lo.to_le_bytes());
    mem.write(0x600 + vector * 16 + 8, &(handler >> 32).to_le_bytes());
}

#[test]
fn long_mode_switch_from_protected_mode_and_idt_delivery() {
    use iced_x86::code_asm::*;
    if !hardware_kvm_or_skip() {
        return;
    }
    let board = TestBoard::new();
    let mem = board.memory();
    let gdtr = write_gdt(mem, 4);
    identity_map_1g(mem);
    gate64(mem, 0x20, 0x12000);
    mem.write(0x7f0, &[0xff, 0x0f, 0x00, 0x06, 0x00, 0x00, 0, 0, 0, 0]); // IDTR: 256 gates at 0x600
    let enter = asm32(0x10000, |a| {
        a.mov(eax, cr4).unwrap();
        a.or(eax, 0x20).unwrap();
        a.mov(cr4, eax).unwrap();
        a.mov(eax, 0x8000).unwrap();
        a.mov(cr3, eax).unwrap();
        a.mov(ecx, 0xc000_0080u32).unwrap();
        a.rdmsr().unwrap();
        a.or(eax, 0x100).unwrap();
        a.wrmsr().unwrap();
        a.mov(eax, cr0).unwrap();
        a.or(eax, 0x8000_0000u32 as i32).unwrap();
        a.mov(cr0, eax).unwrap();
    });
    // code_asm has no direct far JMP; encode `jmp 0x18:0x11000` by hand.
    let enter = {
        let mut v = enter;
        v.extend_from_slice(&[0xea, 0x00, 0x10, 0x01, 0x00, 0x18, 0x00]);
        v
    };
    mem.write(0x10000, &enter);
    let mut a64 = CodeAssembler::new(64).unwrap();
    a64.lidt(ptr(0x7f0)).unwrap();
    a64.mov(rsp, 0x9_0000u64).unwrap();
    a64.int(0x20).unwrap();
    print_then_wait_for_interrupt(&mut a64, b'D');
    mem.write(0x11000, &a64.assemble(0x11000).unwrap());
    write_printing_handler(mem, 0x12000, 64);
    halt_then_interrupt(&board, &EntryState::protected32(0x10000, 0x08, 0x10, gdtr), "ID", "IDIE");
}

#[test]
fn paged_protected_mode_takes_interrupts_through_the_idt() {
    use iced_x86::code_asm::*;
    if !hardware_kvm_or_skip() {
        return;
    }
    let board = TestBoard::new();
    let mem = board.memory();
    let gdtr = write_gdt(mem, 3);
    // Page directory at 0x8000: one 4 MiB identity page.
    mem.write(0x8000, &0x83u32.to_le_bytes());
    // IDT at 0x600, vector 0x20 -> 0x11000 (32-bit interrupt gate, DPL 0).
    let handler = 0x11000u64;
    let gate = (handler & 0xffff) | (0x08 << 16) | (0x8e00u64 << 32) | ((handler >> 16) << 48);
    mem.write(0x600 + 0x20 * 8, &gate.to_le_bytes());
    mem.write(0x7f0, &[0xff, 0x01, 0x00, 0x06, 0x00, 0x00]); // IDTR: limit 0x1ff, base 0x600
    let main = asm32(0x10000, |a| {
        a.mov(eax, cr4).unwrap();
        a.or(eax, 0x10).unwrap();
        a.mov(cr4, eax).unwrap();
        a.mov(eax, 0x8000).unwrap();
        a.mov(cr3, eax).unwrap();
        a.mov(eax, cr0).unwrap();
        a.or(eax, 0x8000_0000u32 as i32).unwrap();
        a.mov(cr0, eax).unwrap();
        a.lidt(ptr(0x7f0)).unwrap();
        a.mov(esp, 0x9000).unwrap();
        a.int(0x20).unwrap();
        print_then_wait_for_interrupt(a, b'D');
    });
    mem.write(0x10000, &main);
    write_printing_handler(mem, handler, 32);
    halt_then_interrupt(&board, &EntryState::protected32(0x10000, 0x08, 0x10, gdtr), "ID", "IDIE");
}

#[test]
fn long_mode_entry_takes_an_injected_interrupt() {
    use iced_x86::code_asm::*;
    if !kvm_or_skip() {
        return;
    }
    let board = TestBoard::new();
    let mem = board.memory();
    let gdtr = write_gdt(mem, 4);
    identity_map_1g(mem);
    gate64(mem, 0x20, 0x12000);
    let mut a64 = CodeAssembler::new(64).unwrap();
    a64.mov(rsp, 0x9_0000u64).unwrap();
    print_then_wait_for_interrupt(&mut a64, b'S');
    mem.write(0x11000, &a64.assemble(0x11000).unwrap());
    write_printing_handler(mem, 0x12000, 64);
    let mut entry = EntryState::long64(0x11000, 0x18, 0x10, gdtr, 0x8000);
    entry.idt = rx86_core::entry::TableInit { base: 0x600, limit: 0xfff };
    halt_then_interrupt(&board, &entry, "S", "SIE");
}
