//! INT 11h (equipment), INT 12h (memory size), INT 14h (serial), INT 15h (system
//! services: A20, memory maps E820/E801/88h, block move, configuration table) and
//! INT 17h (printer: none present).

use super::frame::Frame;
use super::{bda, read_u16, read_u32, read_u8, rom, unsupported, Action, Bios};
use crate::layout::{E820Entry, EXTENDED_START};
use rx86_core::platform::Platform;

/// The "SMAP" signature of E820 calls.
const SMAP: u32 = 0x534d_4150;
/// INT 15h status: function not supported.
const NOT_SUPPORTED: u8 = 0x86;
/// Port 0x92 bit 1: fast A20 gate.
const FAST_A20: u32 = 0x02;

/// Microseconds per timer tick: the PIT's 65536 counts at 1.193182 MHz.
const MICROS_PER_TICK: u64 = 54_925;
/// PIC master mask register (OCW1); bit 0 masks IRQ 0.
const PIC_MASTER_MASK: u16 = 0x21;

/// INT 15h AH=86h: wait CX:DX microseconds, with interrupts enabled. The stub halts until
/// the next interrupt and asks again until the BDA tick count (IRQ 0, 18.2 Hz) shows the
/// time has passed, so the wait is at least as long as asked, rounded up to whole ticks.
fn wait(bios: &mut Bios, hw: &dyn Platform, f: &mut Frame) -> Action {
    let micros = (u32::from(f.cx()) << 16) | u32::from(f.dx());
    if hw.io_read(PIC_MASTER_MASK, 1) & 1 != 0 {
        log::warn!("BIOS: INT 15h AH=86h wait of {micros} us with IRQ 0 masked: returning at once");
        bios.wait_start = None;
    } else if !wait_done(&mut bios.wait_start, read_u32(hw.memory(), bda::TICKS), micros) {
        return Action::Wait;
    }
    f.ok();
    f.set_ah(0);
    Action::Return
}

/// One check of a timed wait: notes the tick count when the wait starts, and is true (and
/// forgets the start) once enough ticks have passed for `micros`, across midnight too.
fn wait_done(start: &mut Option<u32>, now: u32, micros: u32) -> bool {
    let needed = u64::from(micros).div_ceil(MICROS_PER_TICK);
    let day = super::clock::TICKS_PER_DAY;
    // The count is guest memory: a value past midnight (the IRQ 0 handler wraps it to 0 at
    // the next tick) counts as the last tick of the day, and no arithmetic can overflow.
    let (now, began) = (u64::from(now), u64::from(*start.get_or_insert(now.min(day - 1))));
    let elapsed = if now >= began { now - began } else { (now + u64::from(day)).saturating_sub(began) };
    let done = elapsed >= needed;
    if done {
        *start = None;
    }
    done
}

/// INT 11h: equipment word.
pub fn int11(hw: &dyn Platform, f: &mut Frame) -> Action {
    f.set_ax(read_u16(hw.memory(), bda::EQUIPMENT));
    Action::Return
}

/// INT 12h: conventional memory in KiB.
pub fn int12(hw: &dyn Platform, f: &mut Frame) -> Action {
    f.set_ax(read_u16(hw.memory(), bda::MEMORY_KB));
    Action::Return
}

/// INT 14h: serial port services over the UART at the BDA's base address.
pub fn int14(f: &mut Frame) -> Action {
    // The UARTs are the guest's to drive; the BIOS reports "transmitter empty, no
    // data" so polling callers carry on.
    match f.ah() {
        0x00 | 0x03 => f.set_ax(0x6030),
        0x01 => f.set_ah(0x60),
        0x02 => f.set_ah(0x80),
        _ => unsupported("INT 14h", f),
    }
    Action::Return
}

/// INT 17h: printer services; there is no printer (time-out status).
pub fn int17(f: &mut Frame) -> Action {
    f.set_ah(0x01);
    Action::Return
}

/// INT 15h.
pub fn int15(bios: &mut Bios, hw: &dyn Platform, f: &mut Frame) -> Action {
    match (f.ah(), f.al()) {
        (0x24, 0x00 | 0x01) => {
            let v = hw.io_read(0x92, 1);
            let v = if f.al() == 1 { v | FAST_A20 } else { v & !FAST_A20 };
            hw.io_write(0x92, 1, v & !1);
            f.ok();
            f.set_ah(0);
        }
        (0x24, 0x02) => {
            f.set_al(u8::from(hw.io_read(0x92, 1) & FAST_A20 != 0));
            f.ok();
            f.set_ah(0);
        }
        (0x24, 0x03) => {
            f.set_bx(0x0003);
            f.ok();
            f.set_ah(0);
        }
        (0x4f, _) => f.set_flag(super::frame::CF, true),
        (0x86, _) => return wait(bios, hw, f),
        (0x90, _) | (0x91, _) => {
            f.ok();
            f.set_ah(0);
        }
        (0x87, _) => block_move(hw, f),
        (0x88, _) => {
            let kb = (bios.layout.usable_low_end() - EXTENDED_START) / 1024;
            f.set_ax(kb.min(0xfc00) as u16);
            f.ok();
        }
        (0xc0, _) => {
            f.es = rom::ROM_SEGMENT;
            f.set_bx(rom::CONFIG_TABLE_OFFSET);
            f.ok();
            f.set_ah(0);
        }
        (0xc1, _) => {
            f.es = rom::EBDA_SEGMENT;
            f.ok();
        }
        (0xe8, 0x01) => {
            let below_16m = (bios.layout.usable_low_end().min(16 << 20) - EXTENDED_START) / 1024;
            let above_16m = bios.layout.usable_low_end().saturating_sub(16 << 20) >> 16;
            f.set_ax(below_16m as u16);
            f.set_cx(below_16m as u16);
            f.set_bx(above_16m.min(0xffff) as u16);
            f.set_dx(above_16m.min(0xffff) as u16);
            f.ok();
        }
        (0xe8, 0x20) if f.edx == SMAP => e820(bios, hw, f),
        // APM, PS/2 mouse, EC00h (long-mode hint), SpeedStep: not provided; callers
        // probe these and cope.
        (0x53 | 0xc2 | 0xec | 0xe9, _) => f.fail(NOT_SUPPORTED),
        _ => {
            unsupported("INT 15h", f);
            f.fail(NOT_SUPPORTED);
        }
    }
    Action::Return
}

/// AX=E820h: the next entry of the memory map (EBX = continuation, 0 at the start and
/// after the last entry).
fn e820(bios: &Bios, hw: &dyn Platform, f: &mut Frame) {
    let map: Vec<E820Entry> = bios.layout.e820();
    let index = f.ebx as usize;
    if index >= map.len() || f.ecx < 20 {
        f.fail(NOT_SUPPORTED);
        return;
    }
    hw.memory().write(Frame::linear(f.es, f.di()), &map[index].to_bytes());
    f.eax = SMAP;
    f.ecx = 20;
    f.ebx = if index + 1 < map.len() { index as u32 + 1 } else { 0 };
    f.ok();
}

/// AH=87h: copy CX words between the addresses in the GDT at ES:SI (source descriptor
/// at +10h, destination at +18h), as 286 protected-mode callers expect.
fn block_move(hw: &dyn Platform, f: &mut Frame) {
    let mem = hw.memory();
    let gdt = Frame::linear(f.es, f.si());
    let base = |desc: u64| u64::from(read_u32(mem, desc + 2) & 0x00ff_ffff) | (u64::from(read_u8(mem, desc + 7)) << 24);
    let (src, dst) = (base(gdt + 0x10), base(gdt + 0x18));
    let bytes = usize::from(f.cx()) * 2;
    if bytes > 0x1_0000 {
        f.fail(0x01);
        return;
    }
    let mut buf = vec![0u8; bytes];
    mem.read(src, &mut buf);
    mem.write(dst, &buf);
    f.ok();
    f.set_ah(0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bios::clock::TICKS_PER_DAY;

    #[test]
    fn a_wait_lasts_the_ticks_its_microseconds_round_up_to() {
        let mut start = None;
        // 100 ms = 1.82 ticks: two ticks.
        assert!(!wait_done(&mut start, 500, 100_000));
        assert_eq!(start, Some(500));
        assert!(!wait_done(&mut start, 501, 100_000));
        assert!(wait_done(&mut start, 502, 100_000));
        assert_eq!(start, None, "the next wait starts afresh");
        assert!(wait_done(&mut start, 700, 0), "no time asked: no wait");
    }

    #[test]
    fn a_wait_spans_midnight() {
        let mut start = None;
        assert!(!wait_done(&mut start, TICKS_PER_DAY - 1, 3 * 54_925));
        assert!(!wait_done(&mut start, 1, 3 * 54_925));
        assert!(wait_done(&mut start, 2, 3 * 54_925));
        // Counts the guest wrote that no timer makes: no overflow, the wait still ends.
        let ended = wait_done(&mut start, u32::MAX, 54_925) || wait_done(&mut start, 0, 54_925);
        assert!(ended, "by the tick after, when the handler has wrapped the count");
    }
}
