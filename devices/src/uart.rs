//! National Semiconductor PC16550D UART (the "16550A" of PC serial ports).
//!
//! Registers, bits and interrupt priorities follow the PC16550D datasheet (National
//! Semiconductor, June 1995): section 8 "Registers", Table II (register summary) and
//! Table IV (interrupt control functions).
//!
//! Model choices, all deterministic:
//! - **Transmit is instantaneous.** A byte written to THR goes to the injected output
//!   backend at once, so THR and the transmitter are empty again before the guest can
//!   look: LSR.THRE and LSR.TEMT always read 1 and the transmit FIFO never holds data
//!   (FCR's XMIT FIFO reset has nothing to clear). The THRE interrupt is still dropped
//!   by the THR write and re-raised when the byte has "left", which gives an
//!   edge-triggered interrupt controller the rising edge it needs per byte.
//! - **Receive** comes from the board through [`Uart16550::receive`]; in FIFO mode up to
//!   16 bytes wait, in 16450 mode one. Bytes that do not fit are lost and set LSR.OE.
//! - **Character timeout** (IIR = 0xCC) is scheduled on the injected [`Timer`]: whenever
//!   the receive FIFO gains or loses a byte, the timer is armed 4 character times
//!   later (character time from the divisor latch, the 1.8432 MHz PC clock and the LCR
//!   frame format). The board calls [`Uart16550::on_timer`] when it is due.
//! - **Modem inputs**: outside loopback CTS, DSR and DCD are asserted and RI is not
//!   (a terminal that is always there, as QEMU reports for non-tty backends).
//! - **IRQ gating**: as on every PC serial card, the interrupt output reaches the IRQ
//!   line only while MCR.OUT2 is set (Linux's 8250 driver sets OUT2 before enabling
//!   interrupts; QEMU ignores OUT2). In loopback mode the OUT2 pin is forced inactive
//!   (datasheet 8.6), so no interrupt reaches the line then either.

use rx86_core::bus::BusDevice;
use rx86_core::irq::SharedIrqLine;
use rx86_core::time::{Clock, Timer};
use std::collections::VecDeque;
use std::io::Write;

// Register offsets from the base port (Table II).
/// RBR (read) / THR (write) with DLAB = 0; DLL with DLAB = 1.
const RBR_THR_DLL: u64 = 0;
/// IER with DLAB = 0; DLM with DLAB = 1.
const IER_DLM: u64 = 1;
/// IIR (read) / FCR (write).
const IIR_FCR: u64 = 2;
/// Line Control Register.
const LCR: u64 = 3;
/// MODEM Control Register.
const MCR: u64 = 4;
/// Line Status Register.
const LSR: u64 = 5;
/// MODEM Status Register.
const MSR: u64 = 6;
/// Scratch Register.
const SCR: u64 = 7;
/// Number of registers (the decoded address range).
const REGISTER_COUNT: u64 = 8;

// Interrupt Enable Register (8.5).
/// ERBFI: enable Received Data Available (and character timeout) interrupt.
const IER_ERBFI: u8 = 0b0000_0001;
/// ETBEI: enable Transmitter Holding Register Empty interrupt.
const IER_ETBEI: u8 = 0b0000_0010;
/// ELSI: enable Receiver Line Status interrupt.
const IER_ELSI: u8 = 0b0000_0100;
/// EDSSI: enable MODEM Status interrupt.
const IER_EDSSI: u8 = 0b0000_1000;
/// Bits 4-7 are always 0 on the 16550.
const IER_WRITABLE: u8 = 0b0000_1111;

// Interrupt Identification Register (8.3, Table IV).
/// Bit 0 set: no interrupt pending.
const IIR_NO_INTERRUPT: u8 = 0b0000_0001;
/// Highest priority: Receiver Line Status (OE, PE, FE, BI).
const IIR_RECEIVER_LINE_STATUS: u8 = 0b0000_0110;
/// Second: Received Data Available (FIFO at trigger level, or RBR full in 16450 mode).
const IIR_RECEIVED_DATA_AVAILABLE: u8 = 0b0000_0100;
/// Second: Character Timeout Indication (FIFO mode only).
const IIR_CHARACTER_TIMEOUT: u8 = 0b0000_1100;
/// Third: Transmitter Holding Register Empty.
const IIR_THR_EMPTY: u8 = 0b0000_0010;
/// Fourth: MODEM Status.
const IIR_MODEM_STATUS: u8 = 0b0000_0000;
/// Bits 6-7 set when FCR0 = 1 (FIFO mode).
const IIR_FIFOS_ENABLED: u8 = 0b1100_0000;

// FIFO Control Register (8.4).
/// FCR0: enable both FIFOs.
const FCR_FIFO_ENABLE: u8 = 0b0000_0001;
/// FCR1: clear the receive FIFO (self-clearing).
const FCR_RCVR_FIFO_RESET: u8 = 0b0000_0010;
/// FCR2: clear the transmit FIFO (self-clearing).
const FCR_XMIT_FIFO_RESET: u8 = 0b0000_0100;
/// FCR3: DMA mode select (stored; no DMA on the PC serial port).
const FCR_DMA_MODE_SELECT: u8 = 0b0000_1000;
/// FCR6-7: receive FIFO trigger level (1, 4, 8, 14 bytes).
const FCR_RCVR_TRIGGER: u8 = 0b1100_0000;

// Line Control Register (8.1).
/// WLS0-1: word length 5..8 bits.
const LCR_WORD_LENGTH: u8 = 0b0000_0011;
/// STB: 1.5 (5-bit words) or 2 stop bits.
const LCR_STOP_BITS: u8 = 0b0000_0100;
/// PEN: parity bit present.
const LCR_PARITY_ENABLE: u8 = 0b0000_1000;
/// DLAB: divisor latch access bit.
const LCR_DLAB: u8 = 0b1000_0000;

// MODEM Control Register (8.6).
/// DTR output.
const MCR_DTR: u8 = 0b0000_0001;
/// RTS output.
const MCR_RTS: u8 = 0b0000_0010;
/// OUT1 output.
const MCR_OUT1: u8 = 0b0000_0100;
/// OUT2 output (gates the IRQ on PCs).
const MCR_OUT2: u8 = 0b0000_1000;
/// LOOP: local loopback diagnostic mode.
const MCR_LOOP: u8 = 0b0001_0000;
/// Bits 5-7 are always 0.
const MCR_WRITABLE: u8 = 0b0001_1111;

// Line Status Register (8.2).
/// DR: data ready.
const LSR_DR: u8 = 0b0000_0001;
/// OE: overrun error.
const LSR_OE: u8 = 0b0000_0010;
/// THRE: transmitter holding register (or XMIT FIFO) empty.
const LSR_THRE: u8 = 0b0010_0000;
/// TEMT: transmitter (THR and shift register) empty.
const LSR_TEMT: u8 = 0b0100_0000;

// MODEM Status Register (8.7).
/// DCTS: CTS changed since the last MSR read.
const MSR_DCTS: u8 = 0b0000_0001;
/// DDSR: DSR changed since the last MSR read.
const MSR_DDSR: u8 = 0b0000_0010;
/// TERI: RI went from on to off.
const MSR_TERI: u8 = 0b0000_0100;
/// DDCD: DCD changed since the last MSR read.
const MSR_DDCD: u8 = 0b0000_1000;
/// CTS input (RTS in loopback).
const MSR_CTS: u8 = 0b0001_0000;
/// DSR input (DTR in loopback).
const MSR_DSR: u8 = 0b0010_0000;
/// RI input (OUT1 in loopback).
const MSR_RI: u8 = 0b0100_0000;
/// DCD input (OUT2 in loopback).
const MSR_DCD: u8 = 0b1000_0000;

/// Depth of the receive FIFO.
pub const FIFO_SIZE: usize = 16;
/// The UART input clock on PCs (XIN), in Hz: divisor 1 is 115200 baud.
const XIN_HZ: u64 = 1_843_200;
/// Character times without receive activity before the timeout indication.
const TIMEOUT_CHARACTERS: u64 = 4;
/// Divisor latch after power-on (9600 baud; the datasheet leaves it undefined).
const DEFAULT_DIVISOR: u16 = 12;
/// Modem inputs outside loopback: a terminal that is always there.
const ATTACHED_TERMINAL: u8 = MSR_CTS | MSR_DSR | MSR_DCD;

/// A 16550A UART with its registers, receive FIFO and interrupt logic.
pub struct Uart16550 {
    ier: u8,
    lcr: u8,
    mcr: u8,
    /// FCR as last programmed (FIFO enable, DMA mode, trigger level).
    fcr: u8,
    scr: u8,
    divisor: u16,
    /// Error bits of LSR (only OE is generated), cleared by an LSR read.
    lsr_errors: u8,
    /// MSR delta bits 0-3, cleared by an MSR read.
    msr_deltas: u8,
    rx: VecDeque<u8>,
    /// THRE interrupt source, cleared by an IIR read that reports it or a THR write.
    thr_interrupt: bool,
    /// Character timeout source, cleared by an RBR read or new receive activity.
    timeout_interrupt: bool,
    /// When the character timeout fires, if receive data is waiting in FIFO mode.
    timeout_deadline: Option<u64>,
    irq_level: bool,
    irq: SharedIrqLine,
    output: Box<dyn Write + Send>,
    output_failed: bool,
    clock: Clock,
    timer: Timer,
}

impl Uart16550 {
    /// A UART in its power-on state. `irq` is its interrupt line (driven as a level),
    /// `output` receives every transmitted byte at once, `clock` and `timer` drive the
    /// character timeout (the board calls [`Self::on_timer`] when `timer` is due).
    pub fn new(irq: SharedIrqLine, output: Box<dyn Write + Send>, clock: Clock, timer: Timer) -> Self {
        Uart16550 {
            ier: 0,
            lcr: 0,
            mcr: 0,
            fcr: 0,
            scr: 0,
            divisor: DEFAULT_DIVISOR,
            lsr_errors: 0,
            msr_deltas: 0,
            rx: VecDeque::with_capacity(FIFO_SIZE),
            thr_interrupt: false,
            timeout_interrupt: false,
            timeout_deadline: None,
            irq_level: false,
            irq,
            output,
            output_failed: false,
            clock,
            timer,
        }
    }

    /// Master reset (the MR pin): IER, IIR, FCR, LCR, MCR, LSR and the MSR deltas go
    /// to their reset values and the receive FIFO empties; the divisor latch and the
    /// scratch register keep their contents (datasheet Table III).
    pub fn reset(&mut self) {
        self.ier = 0;
        self.lcr = 0;
        self.mcr = 0;
        self.fcr = 0;
        self.lsr_errors = 0;
        self.msr_deltas = 0;
        self.rx.clear();
        self.thr_interrupt = false;
        self.cancel_timeout();
        self.update_irq();
    }

    /// Delivers bytes from the outside world to the serial input. Returns how many
    /// were taken (at most [`Self::rx_space`]); the rest are lost and set LSR.OE, as
    /// when a real line overruns the receiver. In loopback mode the serial input is
    /// disconnected and nothing is taken.
    pub fn receive(&mut self, bytes: &[u8]) -> usize {
        if self.loopback() {
            return 0;
        }
        let taken = bytes.len().min(self.rx_space());
        self.rx.extend(&bytes[..taken]);
        if taken < bytes.len() {
            log::debug!("uart: receive overrun, {} bytes lost", bytes.len() - taken);
            self.lsr_errors |= LSR_OE;
        }
        if taken > 0 {
            self.restart_timeout();
        }
        self.update_irq();
        taken
    }

    /// How many bytes [`Self::receive`] would take now without overrun.
    pub fn rx_space(&self) -> usize {
        if self.loopback() {
            0
        } else {
            self.rx_capacity() - self.rx.len()
        }
    }

    /// The character-timeout timer is due: raises the timeout indication if data
    /// has waited 4 character times with no receive activity. Spurious calls are
    /// harmless.
    pub fn on_timer(&mut self) {
        let Some(deadline) = self.timeout_deadline else { return };
        if self.clock.now_ns() < deadline {
            self.timer.arm_at(deadline);
            return;
        }
        self.timeout_deadline = None;
        if self.fifo_enabled() && !self.rx.is_empty() {
            self.timeout_interrupt = true;
            self.update_irq();
        }
    }

    fn loopback(&self) -> bool {
        self.mcr & MCR_LOOP != 0
    }

    fn fifo_enabled(&self) -> bool {
        self.fcr & FCR_FIFO_ENABLE != 0
    }

    fn rx_capacity(&self) -> usize {
        if self.fifo_enabled() {
            FIFO_SIZE
        } else {
            1
        }
    }

    /// Receive FIFO trigger level selected by FCR6-7.
    fn rx_trigger_level(&self) -> usize {
        match (self.fcr & FCR_RCVR_TRIGGER) >> 6 {
            0b00 => 1,
            0b01 => 4,
            0b10 => 8,
            _ => 14,
        }
    }

    /// Nanoseconds per character: start bit, data bits, parity and stop bits at the
    /// baud rate set by the divisor latch (a divisor of 0 is taken as 1).
    fn character_time_ns(&self) -> u64 {
        let data_bits = 5 + u64::from(self.lcr & LCR_WORD_LENGTH);
        let parity_bits = u64::from(self.lcr & LCR_PARITY_ENABLE != 0);
        let stop_half_bits = match (self.lcr & LCR_STOP_BITS != 0, data_bits) {
            (false, _) => 2,
            (true, 5) => 3,
            (true, _) => 4,
        };
        let half_bits = 2 * (1 + data_bits + parity_bits) + stop_half_bits;
        let clocks_per_bit = 16 * u64::from(self.divisor.max(1));
        half_bits * clocks_per_bit * 1_000_000_000 / (2 * XIN_HZ)
    }

    /// Receive activity (a byte in or out of the FIFO): the timeout indication
    /// clears and the 4-character countdown starts again while data waits.
    fn restart_timeout(&mut self) {
        self.timeout_interrupt = false;
        if self.fifo_enabled() && !self.rx.is_empty() {
            let deadline = self.clock.now_ns().saturating_add(TIMEOUT_CHARACTERS * self.character_time_ns());
            self.timeout_deadline = Some(deadline);
            self.timer.arm_at(deadline);
        } else {
            self.cancel_timeout();
        }
    }

    fn cancel_timeout(&mut self) {
        self.timeout_interrupt = false;
        if self.timeout_deadline.take().is_some() {
            self.timer.cancel();
        }
    }

    /// The modem inputs as MSR bits 4-7: the MCR outputs in loopback (RTS→CTS,
    /// DTR→DSR, OUT1→RI, OUT2→DCD), otherwise the attached terminal's lines.
    fn modem_inputs(&self) -> u8 {
        if !self.loopback() {
            return ATTACHED_TERMINAL;
        }
        let mut inputs = 0;
        for (output, input) in [(MCR_RTS, MSR_CTS), (MCR_DTR, MSR_DSR), (MCR_OUT1, MSR_RI), (MCR_OUT2, MSR_DCD)] {
            if self.mcr & output != 0 {
                inputs |= input;
            }
        }
        inputs
    }

    /// Records MSR delta bits for the input changes from `before` to now.
    fn note_modem_changes(&mut self, before: u8) {
        let after = self.modem_inputs();
        let changed = before ^ after;
        for (input, delta) in [(MSR_CTS, MSR_DCTS), (MSR_DSR, MSR_DDSR), (MSR_DCD, MSR_DDCD)] {
            if changed & input != 0 {
                self.msr_deltas |= delta;
            }
        }
        if before & MSR_RI != 0 && after & MSR_RI == 0 {
            self.msr_deltas |= MSR_TERI;
        }
    }

    /// The highest-priority pending and enabled interrupt, as IIR bits 0-3.
    fn identify_interrupt(&self) -> u8 {
        if self.ier & IER_ELSI != 0 && self.lsr_errors != 0 {
            IIR_RECEIVER_LINE_STATUS
        } else if self.ier & IER_ERBFI != 0 && self.timeout_interrupt && !self.rx.is_empty() {
            IIR_CHARACTER_TIMEOUT
        } else if self.ier & IER_ERBFI != 0 && self.rx_data_available() {
            IIR_RECEIVED_DATA_AVAILABLE
        } else if self.ier & IER_ETBEI != 0 && self.thr_interrupt {
            IIR_THR_EMPTY
        } else if self.ier & IER_EDSSI != 0 && self.msr_deltas != 0 {
            IIR_MODEM_STATUS
        } else {
            IIR_NO_INTERRUPT
        }
    }

    fn rx_data_available(&self) -> bool {
        if self.fifo_enabled() {
            self.rx.len() >= self.rx_trigger_level()
        } else {
            !self.rx.is_empty()
        }
    }

    /// Drives the IRQ line: an interrupt pending, OUT2 set and not in loopback.
    fn update_irq(&mut self) {
        let level = self.identify_interrupt() != IIR_NO_INTERRUPT && self.mcr & MCR_OUT2 != 0 && !self.loopback();
        if level != self.irq_level {
            self.irq_level = level;
            self.irq.set_level(level);
        }
    }

    fn transmit(&mut self, byte: u8) {
        self.thr_interrupt = false;
        self.update_irq();
        if self.loopback() {
            if self.rx.len() < self.rx_capacity() {
                self.rx.push_back(byte);
                self.restart_timeout();
            } else {
                self.lsr_errors |= LSR_OE;
            }
        } else if let Err(e) = self.output.write_all(&[byte]).and_then(|()| self.output.flush()) {
            if !self.output_failed {
                log::warn!("uart: output backend failed, transmitted bytes are dropped: {e}");
                self.output_failed = true;
            }
        }
        // The byte left THR at once: THR is empty again.
        self.thr_interrupt = self.ier & IER_ETBEI != 0;
        self.update_irq();
    }

    fn write_ier(&mut self, value: u8) {
        let before = self.ier;
        self.ier = value & IER_WRITABLE;
        if value & !IER_WRITABLE != 0 {
            log::debug!("uart: IER bits {value:#04x} beyond the 16550's four ignored");
        }
        // Enabling ETBEI with THR empty raises THRE at once (datasheet 8.3; Linux's
        // THRE test and Windows rely on it); disabling it drops the source.
        if (before ^ self.ier) & IER_ETBEI != 0 {
            self.thr_interrupt = self.ier & IER_ETBEI != 0;
        }
    }

    fn write_fcr(&mut self, value: u8) {
        let enable = value & FCR_FIFO_ENABLE != 0;
        if enable != self.fifo_enabled() {
            // Switching between FIFO and 16450 mode clears the FIFOs.
            self.rx.clear();
        }
        if !enable {
            // FCR0 must be 1 for the other bits to be programmed.
            self.fcr = 0;
        } else {
            if value & FCR_RCVR_FIFO_RESET != 0 {
                self.rx.clear();
            }
            if value & FCR_XMIT_FIFO_RESET != 0 {
                log::trace!("uart: XMIT FIFO reset: nothing to clear, transmit is instantaneous");
            }
            self.fcr = value & (FCR_FIFO_ENABLE | FCR_DMA_MODE_SELECT | FCR_RCVR_TRIGGER);
        }
        self.restart_timeout();
    }

    fn write_mcr(&mut self, value: u8) {
        let before = self.modem_inputs();
        self.mcr = value & MCR_WRITABLE;
        self.note_modem_changes(before);
    }

    fn read_register(&mut self, offset: u64) -> u8 {
        let dlab = self.lcr & LCR_DLAB != 0;
        let value = match offset {
            RBR_THR_DLL if dlab => self.divisor as u8,
            RBR_THR_DLL => {
                let byte = self.rx.pop_front().unwrap_or(0);
                self.restart_timeout();
                byte
            }
            IER_DLM if dlab => (self.divisor >> 8) as u8,
            IER_DLM => self.ier,
            IIR_FCR => {
                let id = self.identify_interrupt();
                if id == IIR_THR_EMPTY {
                    self.thr_interrupt = false;
                }
                let fifo_bits = if self.fifo_enabled() { IIR_FIFOS_ENABLED } else { 0 };
                id | fifo_bits
            }
            LCR => self.lcr,
            MCR => self.mcr,
            LSR => {
                let data_ready = if self.rx.is_empty() { 0 } else { LSR_DR };
                let value = data_ready | self.lsr_errors | LSR_THRE | LSR_TEMT;
                self.lsr_errors = 0;
                value
            }
            MSR => {
                let value = self.modem_inputs() | self.msr_deltas;
                self.msr_deltas = 0;
                value
            }
            SCR => self.scr,
            _ => {
                log::warn!("uart: read of register offset {offset:#x} outside the 8 registers");
                0xff
            }
        };
        self.update_irq();
        value
    }

    fn write_register(&mut self, offset: u64, value: u8) {
        let dlab = self.lcr & LCR_DLAB != 0;
        match offset {
            RBR_THR_DLL if dlab => self.divisor = (self.divisor & 0xff00) | u16::from(value),
            RBR_THR_DLL => self.transmit(value),
            IER_DLM if dlab => self.divisor = (self.divisor & 0x00ff) | (u16::from(value) << 8),
            IER_DLM => self.write_ier(value),
            IIR_FCR => self.write_fcr(value),
            LCR => self.lcr = value,
            MCR => self.write_mcr(value),
            // LSR and MSR writes are reserved for factory test; a guest gets nothing.
            LSR | MSR => log::debug!("uart: write {value:#04x} to read-only status register {offset} ignored"),
            SCR => self.scr = value,
            _ => log::warn!("uart: write {value:#04x} to register offset {offset:#x} outside the 8 registers"),
        }
        self.update_irq();
    }
}

/// An 8-bit device: wider accesses are split into byte cycles at consecutive
/// registers, as the ISA bus does for an 8-bit card.
impl BusDevice for Uart16550 {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        (0..u64::from(size.min(8))).fold(0, |acc, i| {
            let byte = match offset.checked_add(i) {
                Some(reg) if reg < REGISTER_COUNT => self.read_register(reg),
                _ => 0xff,
            };
            acc | (u64::from(byte) << (8 * i))
        })
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        for i in 0..u64::from(size.min(8)) {
            match offset.checked_add(i) {
                Some(reg) if reg < REGISTER_COUNT => self.write_register(reg, (value >> (8 * i)) as u8),
                _ => log::warn!("uart: write beyond the 8 registers at offset {offset:#x}+{i} ignored"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rx86_core::irq::RecordingIrqLine;
    use std::sync::{Arc, Mutex};

    /// An output backend the test can inspect.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    struct Rig {
        uart: Uart16550,
        irq: Arc<RecordingIrqLine>,
        out: Capture,
        clock: Clock,
        timer: Timer,
    }

    fn rig() -> Rig {
        let irq = RecordingIrqLine::new();
        let out = Capture::default();
        let clock = Clock::new_virtual();
        let timer = Timer::standalone("uart");
        let uart = Uart16550::new(irq.clone(), Box::new(out.clone()), clock.clone(), timer.clone());
        Rig { uart, irq, out, clock, timer }
    }

    impl Rig {
        fn inb(&mut self, reg: u64) -> u8 {
            self.uart.read(reg, 1) as u8
        }
        fn outb(&mut self, reg: u64, value: u8) {
            self.uart.write(reg, 1, u64::from(value));
        }
    }

    #[test]
    fn power_on_registers() {
        let mut r = rig();
        assert_eq!(r.inb(IIR_FCR), IIR_NO_INTERRUPT);
        assert_eq!(r.inb(LSR), LSR_THRE | LSR_TEMT);
        assert_eq!(r.inb(IER_DLM), 0);
        assert_eq!(r.inb(MCR), 0);
        assert!(r.irq.events().is_empty());
    }

    /// drivers/tty/serial/8250/8250_port.c autoconfig(): IER scratch test, loopback
    /// test, then FIFO detection through IIR bits 6-7.
    #[test]
    fn linux_8250_probe_sequence() {
        let mut r = rig();
        // IER test: writes of 0 and 0x0F read back in the low nibble.
        r.outb(IER_DLM, 0);
        assert_eq!(r.inb(IER_DLM) & 0x0f, 0);
        r.outb(IER_DLM, 0x0f);
        assert_eq!(r.inb(IER_DLM) & 0x0f, 0x0f);
        r.outb(IER_DLM, 0);
        // Scratch register holds what is written.
        r.outb(SCR, 0xa5);
        assert_eq!(r.inb(SCR), 0xa5);
        // Loopback test: MCR = LOOP | OUT2 | RTS gives MSR inputs DCD | CTS = 0x90.
        r.outb(MCR, MCR_LOOP | 0x0a);
        assert_eq!(r.inb(MSR) & 0xf0, 0x90);
        r.outb(MCR, 0);
        // FIFO detection: IIR >> 6 == 3 means a 16550A.
        r.outb(IIR_FCR, FCR_FIFO_ENABLE);
        assert_eq!(r.inb(IIR_FCR) >> 6, 3);
        // 16750 test: FCR bit 5 does not set IIR bit 5, with or without DLAB.
        r.outb(IIR_FCR, FCR_FIFO_ENABLE | 0x20);
        assert_eq!(r.inb(IIR_FCR) >> 5, 6);
        r.outb(IIR_FCR, 0);
        assert_eq!(r.inb(IIR_FCR) >> 6, 0);
        // XScale test: IER bit 6 (UUE) does not stick.
        r.outb(IER_DLM, 0x40);
        assert_eq!(r.inb(IER_DLM) & 0x40, 0);
    }

    #[test]
    fn divisor_latch_shadows_rbr_and_ier() {
        let mut r = rig();
        r.outb(IER_DLM, IER_ERBFI);
        r.outb(LCR, LCR_DLAB | 0x03);
        r.outb(RBR_THR_DLL, 0x01);
        r.outb(IER_DLM, 0x02);
        assert_eq!(r.inb(RBR_THR_DLL), 0x01);
        assert_eq!(r.inb(IER_DLM), 0x02);
        assert!(r.out.0.lock().unwrap().is_empty(), "DLL write is not a transmit");
        r.outb(LCR, 0x03);
        assert_eq!(r.inb(IER_DLM), IER_ERBFI);
        assert_eq!(r.uart.divisor, 0x0201);
        // Word access to DLL/DLM writes both bytes.
        r.outb(LCR, LCR_DLAB);
        r.uart.write(RBR_THR_DLL, 2, 0x0003);
        assert_eq!(r.uart.read(RBR_THR_DLL, 2), 0x0003);
    }

    #[test]
    fn transmit_goes_to_backend_immediately() {
        let mut r = rig();
        for &b in b"hi\n" {
            r.outb(RBR_THR_DLL, b);
            assert_eq!(r.inb(LSR) & (LSR_THRE | LSR_TEMT), LSR_THRE | LSR_TEMT);
        }
        assert_eq!(*r.out.0.lock().unwrap(), b"hi\n");
    }

    #[test]
    fn thre_interrupt_semantics() {
        let mut r = rig();
        r.outb(MCR, MCR_OUT2);
        // Enabling ETBEI with THR empty interrupts at once.
        r.outb(IER_DLM, IER_ETBEI);
        assert_eq!(r.inb(IIR_FCR), IIR_THR_EMPTY);
        assert!(!r.irq.level(), "reading IIR that reports THRE clears it");
        assert_eq!(r.irq.events(), vec![true, false]);
        assert_eq!(r.inb(IIR_FCR), IIR_NO_INTERRUPT);
        // Re-enabling (0 then ETBEI) re-raises it: Linux's UART_BUG_THRE test.
        r.outb(IER_DLM, 0);
        r.outb(IER_DLM, IER_ETBEI);
        assert!(r.irq.level());
        // A THR write clears the source; the byte leaves at once and THRE returns
        // with a fresh rising edge.
        r.irq.clear();
        r.outb(RBR_THR_DLL, b'x');
        assert_eq!(r.irq.events(), vec![false, true]);
        // Writing IER with ETBEI already set does not re-raise a cleared THRE.
        assert_eq!(r.inb(IIR_FCR), IIR_THR_EMPTY);
        r.outb(IER_DLM, IER_ETBEI);
        assert_eq!(r.inb(IIR_FCR), IIR_NO_INTERRUPT);
        // Disabling ETBEI drops a pending THRE.
        r.outb(RBR_THR_DLL, b'y');
        r.outb(IER_DLM, 0);
        assert!(!r.irq.level());
        assert_eq!(r.inb(IIR_FCR), IIR_NO_INTERRUPT);
    }

    #[test]
    fn out2_gates_the_irq_line() {
        let mut r = rig();
        r.outb(IER_DLM, IER_ETBEI);
        assert_eq!(r.inb(IIR_FCR), IIR_THR_EMPTY, "IIR reports without OUT2");
        r.outb(IER_DLM, 0);
        r.outb(IER_DLM, IER_ETBEI);
        assert!(r.irq.events().is_empty(), "no OUT2, no IRQ");
        r.outb(MCR, MCR_OUT2);
        assert!(r.irq.level());
        r.outb(MCR, 0);
        assert!(!r.irq.level());
        // Loopback forces the OUT2 pin inactive.
        r.outb(MCR, MCR_LOOP | MCR_OUT2);
        assert!(!r.irq.level());
    }

    #[test]
    fn receive_in_16450_mode() {
        let mut r = rig();
        r.outb(MCR, MCR_OUT2);
        r.outb(IER_DLM, IER_ERBFI);
        assert_eq!(r.uart.rx_space(), 1);
        assert_eq!(r.uart.receive(b"a"), 1);
        assert!(r.irq.level());
        assert_eq!(r.inb(IIR_FCR), IIR_RECEIVED_DATA_AVAILABLE);
        assert_eq!(r.inb(LSR) & LSR_DR, LSR_DR);
        assert_eq!(r.inb(RBR_THR_DLL), b'a');
        assert!(!r.irq.level());
        assert_eq!(r.inb(LSR) & LSR_DR, 0);
    }

    #[test]
    fn rx_trigger_levels() {
        for (fcr_bits, level) in [(0x00u8, 1usize), (0x40, 4), (0x80, 8), (0xc0, 14)] {
            let mut r = rig();
            r.outb(MCR, MCR_OUT2);
            r.outb(IER_DLM, IER_ERBFI);
            r.outb(IIR_FCR, FCR_FIFO_ENABLE | fcr_bits);
            assert_eq!(r.uart.receive(&vec![0x55; level - 1]), level - 1);
            assert_eq!(r.inb(IIR_FCR) & 0x0f, IIR_NO_INTERRUPT, "below trigger level {level}");
            assert!(!r.irq.level());
            r.uart.receive(&[0x55]);
            assert_eq!(r.inb(IIR_FCR), IIR_FIFOS_ENABLED | IIR_RECEIVED_DATA_AVAILABLE, "at level {level}");
            assert!(r.irq.level());
            r.inb(RBR_THR_DLL);
            assert!(!r.irq.level(), "one byte below trigger level {level} again");
        }
    }

    #[test]
    fn overrun_sets_oe_and_line_status_interrupt() {
        let mut r = rig();
        r.outb(MCR, MCR_OUT2);
        r.outb(IER_DLM, IER_ELSI | IER_ERBFI);
        r.outb(IIR_FCR, FCR_FIFO_ENABLE | 0xc0);
        let data: Vec<u8> = (0..20).collect();
        assert_eq!(r.uart.receive(&data), FIFO_SIZE);
        assert_eq!(r.uart.rx_space(), 0);
        // Line status outranks received data.
        assert_eq!(r.inb(IIR_FCR) & 0x0f, IIR_RECEIVER_LINE_STATUS);
        assert_eq!(r.inb(LSR) & (LSR_OE | LSR_DR), LSR_OE | LSR_DR);
        assert_eq!(r.inb(LSR) & LSR_OE, 0, "reading LSR clears OE");
        assert_eq!(r.inb(IIR_FCR) & 0x0f, IIR_RECEIVED_DATA_AVAILABLE);
        // The FIFO kept the first 16 bytes in order.
        let got: Vec<u8> = (0..FIFO_SIZE).map(|_| r.inb(RBR_THR_DLL)).collect();
        assert_eq!(got, data[..FIFO_SIZE]);
        assert!(!r.irq.level());
    }

    #[test]
    fn fcr_resets_and_mode_change_clear_the_fifo() {
        let mut r = rig();
        r.outb(IIR_FCR, FCR_FIFO_ENABLE);
        r.uart.receive(b"abc");
        r.outb(IIR_FCR, FCR_FIFO_ENABLE | FCR_RCVR_FIFO_RESET);
        assert_eq!(r.inb(LSR) & LSR_DR, 0);
        r.uart.receive(b"abc");
        r.outb(IIR_FCR, 0);
        assert_eq!(r.inb(LSR) & LSR_DR, 0, "leaving FIFO mode clears the FIFO");
        // Other FCR bits need FCR0.
        r.outb(IIR_FCR, 0xc0);
        assert_eq!(r.inb(IIR_FCR) >> 6, 0);
    }

    #[test]
    fn character_timeout_after_four_character_times() {
        let mut r = rig();
        r.outb(MCR, MCR_OUT2);
        r.outb(LCR, LCR_DLAB);
        r.outb(RBR_THR_DLL, 1);
        r.outb(IER_DLM, 0);
        r.outb(LCR, 0x03); // 8N1: 10 bits a character, 86805 ns at 115200 baud.
        r.outb(IER_DLM, IER_ERBFI);
        r.outb(IIR_FCR, FCR_FIFO_ENABLE | 0x80);
        r.uart.receive(b"ab");
        let char_ns = 10 * 16 * 1_000_000_000 / XIN_HZ;
        assert_eq!(r.timer.deadline(), Some(4 * char_ns));
        // Early call: nothing yet, timer re-armed.
        r.clock.advance_to(4 * char_ns - 1);
        r.uart.on_timer();
        assert_eq!(r.inb(IIR_FCR) & 0x0f, IIR_NO_INTERRUPT);
        r.clock.advance_to(4 * char_ns);
        r.uart.on_timer();
        assert!(r.irq.level());
        assert_eq!(r.inb(IIR_FCR), IIR_FIFOS_ENABLED | IIR_CHARACTER_TIMEOUT);
        // Reading RBR clears the indication and restarts the countdown.
        assert_eq!(r.inb(RBR_THR_DLL), b'a');
        assert!(!r.irq.level());
        assert_eq!(r.timer.deadline(), Some(8 * char_ns));
        assert_eq!(r.inb(RBR_THR_DLL), b'b');
        assert_eq!(r.timer.deadline(), None, "empty FIFO: no timeout");
    }

    #[test]
    fn loopback_routes_tx_to_rx_and_outputs_to_inputs() {
        let mut r = rig();
        r.outb(MCR, MCR_LOOP);
        assert_eq!(r.uart.receive(b"z"), 0, "serial input disconnected in loopback");
        r.outb(RBR_THR_DLL, 0x42);
        assert!(r.out.0.lock().unwrap().is_empty());
        assert_eq!(r.inb(LSR) & LSR_DR, LSR_DR);
        assert_eq!(r.inb(RBR_THR_DLL), 0x42);
        // Entering loopback dropped CTS, DSR and DCD: their deltas are set.
        assert_eq!(r.inb(MSR), MSR_DCTS | MSR_DDSR | MSR_DDCD);
        r.outb(MCR, MCR_LOOP | MCR_DTR | MCR_OUT1);
        assert_eq!(r.inb(MSR), MSR_DSR | MSR_RI | MSR_DDSR);
        // RI on -> off is a trailing edge.
        r.outb(MCR, MCR_LOOP | MCR_DTR);
        assert_eq!(r.inb(MSR), MSR_DSR | MSR_TERI);
    }

    #[test]
    fn modem_status_interrupt_is_lowest_priority() {
        let mut r = rig();
        r.outb(IER_DLM, IER_EDSSI | IER_ETBEI);
        r.outb(MCR, MCR_LOOP | MCR_RTS);
        assert_eq!(r.inb(IIR_FCR), IIR_THR_EMPTY);
        assert_eq!(r.inb(IIR_FCR), IIR_MODEM_STATUS);
        r.inb(MSR);
        assert_eq!(r.inb(IIR_FCR), IIR_NO_INTERRUPT);
    }

    #[test]
    fn master_reset_keeps_divisor_and_scratch() {
        let mut r = rig();
        r.outb(SCR, 7);
        r.outb(MCR, MCR_OUT2);
        r.outb(IER_DLM, IER_ETBEI);
        assert!(r.irq.level());
        r.uart.reset();
        assert!(!r.irq.level());
        assert_eq!(r.inb(SCR), 7);
        assert_eq!(r.inb(IER_DLM), 0);
    }

    #[test]
    fn random_register_accesses_never_panic() {
        let mut r = rig();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..200_000 {
            let x = next();
            let offset = (x >> 8) % 10;
            let size = [1u8, 2, 4][(x >> 16) as usize % 3];
            match x % 8 {
                0..=2 => r.uart.write(offset, size, x >> 32),
                3..=5 => {
                    let v = r.uart.read(offset, size);
                    assert!(v <= rx86_core::bus::size_mask(size));
                }
                6 => {
                    let n = (x >> 24) as usize % 20;
                    let taken = r.uart.receive(&vec![x as u8; n]);
                    assert!(taken <= n);
                }
                _ => {
                    r.clock.advance_to(r.clock.now_ns() + (x >> 40) % 2_000_000);
                    r.uart.on_timer();
                }
            }
            assert!(r.uart.rx.len() <= FIFO_SIZE);
            let iir = r.uart.identify_interrupt();
            assert!(r.irq.level() == (iir != IIR_NO_INTERRUPT && r.uart.mcr & (MCR_OUT2 | MCR_LOOP) == MCR_OUT2));
        }
    }
}
