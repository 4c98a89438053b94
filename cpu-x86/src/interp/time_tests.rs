//! Exact time: the clock, exit requests and device deadlines as the guest sees them are
//! exact per instruction and do not depend on where blocks end.

use super::cpu::Interpreter;
use super::test_util::Machine;
use crate::engine::Exit;
use iced_x86::code_asm::*;
use rx86_core::phys::PhysMemory;
use rx86_core::platform::{BasicPlatform, Platform};
use rx86_core::time::Clock;
use std::cell::{Cell, RefCell};

/// Port whose write requests an exit (as a debug-exit or power-off write does).
const EXIT_PORT: u16 = 0xf4;
/// Port whose write arms a device timer its value (in ns) ahead of the time of the write.
const TIMER_PORT: u16 = 0x40;

/// One port access: port, value, clock reading when the board saw it.
type IoRecord = (u16, u32, u64);

/// A board that logs every port access with the clock's reading, answers reads with the
/// clock's low 16 bits, requests an exit on a write to [`EXIT_PORT`] and arms a timer on
/// a write to [`TIMER_PORT`].
struct Board {
    inner: BasicPlatform,
    clock: Clock,
    log: RefCell<Vec<IoRecord>>,
    exit: Cell<bool>,
    timer: Cell<Option<u64>>,
}

impl Board {
    fn new(inner: BasicPlatform, clock: &Clock) -> Self {
        Board { inner, clock: clock.clone(), log: RefCell::default(), exit: Cell::new(false), timer: Cell::new(None) }
    }
}

impl Platform for Board {
    fn memory(&self) -> &PhysMemory {
        self.inner.memory()
    }
    fn io_read(&self, port: u16, _size: u8) -> u32 {
        let now = self.clock.now_ns();
        self.log.borrow_mut().push((port, 0, now));
        now as u32 & 0xffff
    }
    fn io_write(&self, port: u16, _size: u8, value: u32) {
        let now = self.clock.now_ns();
        self.log.borrow_mut().push((port, value, now));
        match port {
            EXIT_PORT => self.exit.set(true),
            TIMER_PORT => self.timer.set(Some(now + value as u64)),
            _ => {}
        }
    }
    fn exit_requested(&self) -> bool {
        self.exit.get()
    }
    fn next_deadline(&self) -> Option<u64> {
        self.timer.get()
    }
}

/// `a` in flat 32-bit protected mode on a [`Board`] with a virtual clock.
fn board(a: &mut CodeAssembler) -> (Interpreter, Board, Clock) {
    let m = Machine::protected32(a);
    let clock = Clock::new_virtual();
    let board = Board::new(m.p, &clock);
    (m.cpu, board, clock)
}

#[test]
fn rdtsc_twice_in_one_block_differs_by_the_instructions_between() {
    let mut a = CodeAssembler::new(32).unwrap();
    a.rdtsc().unwrap();
    a.mov(esi, eax).unwrap();
    a.nop().unwrap();
    a.nop().unwrap();
    a.nop().unwrap();
    a.rdtsc().unwrap();
    a.sub(eax, esi).unwrap();
    a.hlt().unwrap();
    let (mut cpu, board, clock) = board(&mut a);
    clock.advance_to(1000);
    assert_eq!(cpu.run_until(&board, &clock, u64::MAX), Exit::Halted);
    // The first RDTSC and the four instructions after it retired between the reads.
    assert_eq!(cpu.state().gpr[0], 5);
    assert_eq!(cpu.state().gpr[6], 1000, "the first read sees the time it executes at");
}

#[test]
fn an_exit_request_ends_the_run_before_the_next_instruction() {
    let mut a = CodeAssembler::new(32).unwrap();
    a.xor(ebx, ebx).unwrap();
    a.out(EXIT_PORT as u32, al).unwrap();
    a.inc(ebx).unwrap();
    a.inc(ebx).unwrap();
    a.hlt().unwrap();
    let (mut cpu, board, clock) = board(&mut a);
    assert_eq!(cpu.run_until(&board, &clock, u64::MAX), Exit::Deadline);
    assert_eq!(cpu.state().gpr[3], 0, "nothing after the OUT ran");
    assert_eq!(cpu.retired, 2);
    assert_eq!(cpu.state().rip, 0x10000 + 2 + 2);
    assert_eq!(clock.now_ns(), 2);
}

#[test]
fn a_timer_armed_for_earlier_than_the_deadline_ends_the_run_at_its_time() {
    let mut a = CodeAssembler::new(32).unwrap();
    let mut spin = a.create_label();
    a.mov(eax, 100).unwrap();
    a.out(TIMER_PORT as u32, eax).unwrap();
    a.set_label(&mut spin).unwrap();
    a.inc(ecx).unwrap();
    a.jmp(spin).unwrap();
    let (mut cpu, board, clock) = board(&mut a);
    assert_eq!(cpu.run_until(&board, &clock, 1_000_000), Exit::Deadline);
    // The OUT executed at 1 ns (after the MOV): the timer is due at 101 ns.
    assert_eq!(board.timer.get(), Some(101));
    assert_eq!(clock.now_ns(), 101);
    assert_eq!(cpu.retired, 101);
}

/// A guest mixing port reads (which return the clock), RDTSC, a REP STOSB and port
/// writes of what it computed, in a loop.
fn mixing_guest() -> CodeAssembler {
    let mut a = CodeAssembler::new(32).unwrap();
    let mut top = a.create_label();
    a.mov(ecx, 40).unwrap();
    a.xor(ebx, ebx).unwrap();
    a.set_label(&mut top).unwrap();
    a.in_(ax, 0x60).unwrap();
    a.add(ebx, eax).unwrap();
    a.rdtsc().unwrap();
    a.xor(ebx, eax).unwrap();
    a.push(ecx).unwrap();
    a.mov(edi, 0x20000).unwrap();
    a.mov(ecx, 37).unwrap();
    a.rep().stosb().unwrap();
    a.pop(ecx).unwrap();
    a.mov(eax, ebx).unwrap();
    a.out(0x80, eax).unwrap();
    a.dec(ecx).unwrap();
    a.jnz(top).unwrap();
    a.hlt().unwrap();
    a
}

#[test]
fn block_boundaries_do_not_change_what_the_guest_sees() {
    let run = |max_block: usize| {
        let (mut cpu, board, clock) = board(&mut mixing_guest());
        cpu.set_max_block(max_block);
        // Slices of 7 ns, as a machine loop with a frequent device timer would run them.
        loop {
            match cpu.run_until(&board, &clock, clock.now_ns() + 7) {
                Exit::Deadline => {}
                Exit::Halted => break,
                e => panic!("{e:?}"),
            }
        }
        (board.log.take(), cpu.retired, cpu.state().gpr[3], clock.now_ns())
    };
    let reference = run(32);
    assert_eq!(reference.0.len(), 80);
    for max_block in [1, 2, 3, 5, 13] {
        assert_eq!(run(max_block), reference, "blocks of at most {max_block}");
    }
}
