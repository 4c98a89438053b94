//! Local APIC (xAPIC MMIO and x2APIC MSRs).
//!
//! Intel SDM vol. 3, chapter 11 (chapter 12 in newer editions), "Advanced Programmable
//! Interrupt Controller (APIC)": the xAPIC register page (11.4.1, table 11-1), the
//! x2APIC MSR interface (11.12), IA32_APIC_BASE (11.4.4, 11.12.5), priorities (11.8.3),
//! EOI (11.8.5), the local vector table (11.5.1), error handling (11.5.3), the timer
//! (11.5.4) and interprocessor interrupts (11.6).
//!
//! One [`LocalApic`] per CPU. It is a [`BusDevice`] for the 4 KiB xAPIC page (offsets
//! relative to [`LocalApic::base`]), answers the CPU's RDMSR/WRMSR of IA32_APIC_BASE,
//! IA32_TSC_DEADLINE and the x2APIC MSRs ([`LocalApic::msr_read`],
//! [`LocalApic::msr_write`]), and the CPU's interrupt questions
//! ([`LocalApic::pending_vector`], [`LocalApic::acknowledge`],
//! [`LocalApic::accepts_pic_interrupts`]).
//!
//! # Wiring rules for the board
//!
//! The local APIC never calls out to other chips, so it can sit in its own
//! `Arc<Mutex<_>>` without lock-order concerns:
//! - messages from the I/O APIC come in through [`LocalApic::deliver`];
//! - the EOI of a level-triggered vector (TMR bit set) is queued and must be drained
//!   with [`LocalApic::take_eoi_broadcast`] and handed to the I/O APIC's
//!   `end_of_interrupt` *after releasing the local APIC's lock*
//!   ([`crate::ioapic::route_apic_bus`] does exactly this);
//! - NMI, SMI, INIT, start-up and ExtINT messages are recorded for the board
//!   ([`LocalApic::take_nmi`] and friends);
//! - the timer is armed on the injected [`Timer`]; the board calls
//!   [`LocalApic::on_timer`] when it is due;
//! - after a WRMSR of IA32_APIC_BASE the board re-reads [`LocalApic::mmio_enabled`] and
//!   [`LocalApic::base`] to move or unmap the MMIO page (while it is not decoded the
//!   page reads as all-ones and drops writes, like an unmapped range).
//!
//! This machine has one CPU: IPIs that target other APICs are logged and dropped.

mod info;
mod ipi;
mod message;
mod msr;
mod registers;
#[cfg(test)]
mod tests;
mod timer;
mod vector_set;

pub use message::{DeliveryMode, InterruptMessage};
pub use msr::ApicFault;

use registers as reg;
use rx86_core::bus::{size_mask, BusDevice};
use rx86_core::time::{Clock, Timer};
use timer::{ApicTimer, TimerMode};
use vector_set::VectorSet;

/// Construction parameters of a local APIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalApicConfig {
    /// Initial APIC ID (the xAPIC ID register holds its low 8 bits).
    pub apic_id: u32,
    /// Bootstrap processor: sets IA32_APIC_BASE bit 8.
    pub bsp: bool,
    /// TSC frequency, for IA32_TSC_DEADLINE (1 GHz = one tick per clock nanosecond).
    pub tsc_hz: u64,
    /// Timer input clock before the divide configuration (QEMU and KVM use 1 GHz).
    pub timer_hz: u64,
    /// MAXPHYADDR reported by CPUID: IA32_APIC_BASE bits above it are reserved.
    pub phys_addr_bits: u8,
    /// CPUID reports x2APIC: IA32_APIC_BASE bit 10 may be set.
    pub x2apic: bool,
}

impl Default for LocalApicConfig {
    /// APIC ID 0, bootstrap processor, 1 GHz TSC and timer clock, 36 physical address
    /// bits, x2APIC supported.
    fn default() -> Self {
        LocalApicConfig {
            apic_id: 0,
            bsp: true,
            tsc_hz: 1_000_000_000,
            timer_hz: 1_000_000_000,
            phys_addr_bits: 36,
            x2apic: true,
        }
    }
}

/// Signals other than fixed interrupts, waiting for the board to take them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct PendingSignals {
    nmi: bool,
    smi: bool,
    init: bool,
    startup: Option<u8>,
    extint: bool,
}

/// One local APIC.
pub struct LocalApic {
    config: LocalApicConfig,
    clock: Clock,
    timer: Timer,
    apic_base: u64,
    xapic_id: u8,
    tpr: u8,
    ldr: u32,
    dfr_model: u32,
    svr: u32,
    irr: VectorSet,
    isr: VectorSet,
    tmr: VectorSet,
    esr: u32,
    esr_pending: u32,
    lvt: [u32; reg::LVT_COUNT],
    icr_low: u32,
    icr_high: u32,
    apic_timer: ApicTimer,
    signals: PendingSignals,
    eoi_broadcasts: VectorSet,
}

impl std::fmt::Debug for LocalApic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalApic")
            .field("apic_base", &format_args!("{:#x}", self.apic_base))
            .field("svr", &format_args!("{:#x}", self.svr))
            .field("tpr", &self.tpr)
            .field("irr", &self.irr.highest())
            .field("isr", &self.isr.highest())
            .finish_non_exhaustive()
    }
}

impl LocalApic {
    /// A local APIC in its power-on state, reading time from `clock` and arming
    /// `timer` for its LVT timer.
    pub fn new(config: LocalApicConfig, clock: Clock, timer: Timer) -> Self {
        let mut apic = LocalApic {
            config,
            clock,
            timer,
            apic_base: 0,
            xapic_id: 0,
            tpr: 0,
            ldr: 0,
            dfr_model: reg::DFR_MODEL_FLAT,
            svr: reg::SVR_RESET,
            irr: VectorSet::default(),
            isr: VectorSet::default(),
            tmr: VectorSet::default(),
            esr: 0,
            esr_pending: 0,
            lvt: [reg::LVT_MASKED; reg::LVT_COUNT],
            icr_low: 0,
            icr_high: 0,
            apic_timer: ApicTimer::new(config.timer_hz, config.tsc_hz),
            signals: PendingSignals::default(),
            eoi_broadcasts: VectorSet::default(),
        };
        apic.reset();
        apic
    }

    /// Power-on or RESET: IA32_APIC_BASE back to 0xFEE00000, enabled, xAPIC mode, and
    /// every register at its reset value (SDM 11.4.7.1).
    pub fn reset(&mut self) {
        let bsp = if self.config.bsp { reg::APIC_BASE_BSP } else { 0 };
        self.apic_base = reg::APIC_DEFAULT_BASE | reg::APIC_BASE_ENABLE | bsp;
        self.xapic_id = self.config.apic_id as u8;
        self.reset_registers();
        self.apic_timer.set_tsc_offset(0);
    }

    /// INIT: every register back to its reset value except IA32_APIC_BASE and the
    /// APIC ID (SDM 11.4.7.3).
    pub fn init(&mut self) {
        self.reset_registers();
    }

    fn reset_registers(&mut self) {
        self.tpr = 0;
        self.ldr = if self.x2apic_mode() { self.x2apic_ldr() } else { 0 };
        self.dfr_model = reg::DFR_MODEL_FLAT;
        self.svr = reg::SVR_RESET;
        self.irr = VectorSet::default();
        self.isr = VectorSet::default();
        self.tmr = VectorSet::default();
        self.esr = 0;
        self.esr_pending = 0;
        self.lvt = [reg::LVT_MASKED; reg::LVT_COUNT];
        self.icr_low = 0;
        self.icr_high = 0;
        self.apic_timer.reset();
        self.timer.cancel();
        self.signals = PendingSignals::default();
        self.eoi_broadcasts = VectorSet::default();
    }

    /// The IA32_APIC_BASE MSR value.
    pub fn apic_base(&self) -> u64 {
        self.apic_base
    }

    /// Physical address of the xAPIC register page.
    pub fn base(&self) -> u64 {
        self.apic_base & self.base_address_mask()
    }

    fn base_address_mask(&self) -> u64 {
        let bits = self.config.phys_addr_bits.clamp(32, 52);
        ((1u64 << bits) - 1) & !0xFFF
    }

    /// IA32_APIC_BASE bit 11: the APIC is globally enabled.
    pub fn hardware_enabled(&self) -> bool {
        self.apic_base & reg::APIC_BASE_ENABLE != 0
    }

    /// SVR bit 8: the APIC is software enabled.
    pub fn software_enabled(&self) -> bool {
        self.svr & reg::SVR_APIC_ENABLED != 0
    }

    /// The APIC is in x2APIC mode (registers are MSRs, the MMIO page is off).
    pub fn x2apic_mode(&self) -> bool {
        self.hardware_enabled() && self.apic_base & reg::APIC_BASE_EXTD != 0
    }

    /// The xAPIC register page is decoded at [`LocalApic::base`].
    pub fn mmio_enabled(&self) -> bool {
        self.hardware_enabled() && !self.x2apic_mode()
    }

    fn apic_id(&self) -> u32 {
        if self.x2apic_mode() {
            self.config.apic_id
        } else {
            self.xapic_id.into()
        }
    }

    /// x2APIC logical ID (SDM 11.12.10.2): cluster ID[19:4] in bits 31:16, bit ID[3:0]
    /// set in bits 15:0.
    fn x2apic_ldr(&self) -> u32 {
        let id = self.config.apic_id;
        ((id >> 4) << 16) | (1 << (id & 0xF))
    }

    /// The task priority register (CR8 is bits 7:4 of it).
    pub fn tpr(&self) -> u8 {
        self.tpr
    }

    /// Writes the task priority register (MOV to CR8 writes `cr8 << 4`).
    pub fn set_tpr(&mut self, tpr: u8) {
        self.tpr = tpr;
    }

    /// The processor priority (SDM 11.8.3.1): the TPR, or the class of the highest
    /// in-service vector when that is higher.
    fn ppr(&self) -> u8 {
        let isrv = self.isr.highest().unwrap_or(0);
        if self.tpr >> 4 >= isrv >> 4 {
            self.tpr
        } else {
            isrv & 0xF0
        }
    }

    /// The arbitration priority (SDM 11.6.2.4), as the formula there states it.
    fn apr(&self) -> u8 {
        let tpr_class = self.tpr >> 4;
        let isrv_class = self.isr.highest().unwrap_or(0) >> 4;
        let irrv_class = self.irr.highest().unwrap_or(0) >> 4;
        if tpr_class >= irrv_class && tpr_class > isrv_class {
            self.tpr
        } else {
            (tpr_class & isrv_class).max(irrv_class) << 4
        }
    }

    fn timer_mode(&self) -> TimerMode {
        TimerMode::from_bits(self.lvt[reg::LVT_TIMER] >> reg::LVT_TIMER_MODE_SHIFT).unwrap_or(TimerMode::OneShot)
    }

    /// A fixed interrupt arrives (SDM 11.8.4): its IRR bit is set and its TMR bit set
    /// for level-triggered, cleared for edge-triggered. Vectors 0-15 are refused with
    /// the "receive illegal vector" error; a disabled APIC drops the interrupt.
    pub fn accept_interrupt(&mut self, vector: u8, trigger_level: bool) {
        if !self.hardware_enabled() || !self.software_enabled() {
            log::debug!("local APIC {}: disabled, dropping vector {vector:#x}", self.apic_id());
            return;
        }
        if vector < 16 {
            log::debug!("local APIC {}: illegal vector {vector:#x} received", self.apic_id());
            self.record_error(reg::ESR_RECEIVE_ILLEGAL_VECTOR);
            return;
        }
        self.irr.insert(vector);
        self.tmr.set(vector, trigger_level);
    }

    /// An interrupt message from the APIC bus (the I/O APIC, later MSIs): accepted
    /// when its destination names this APIC, then handled by delivery mode. Fixed and
    /// lowest-priority messages go to the IRR; the others are recorded for the board.
    pub fn deliver(&mut self, message: InterruptMessage) {
        if !self.hardware_enabled() {
            log::debug!("local APIC globally disabled, dropping {message:?}");
            return;
        }
        if !self.matches_destination(message.destination, message.logical) {
            log::debug!("local APIC {}: not a destination of {message:?}", self.apic_id());
            return;
        }
        self.accept_message(message);
    }

    fn accept_message(&mut self, message: InterruptMessage) {
        match message.delivery_mode {
            DeliveryMode::Fixed | DeliveryMode::LowestPriority => {
                self.accept_interrupt(message.vector, message.trigger_level)
            }
            DeliveryMode::Nmi => self.signals.nmi = true,
            DeliveryMode::Smi => self.signals.smi = true,
            DeliveryMode::Init => self.signals.init = true,
            DeliveryMode::StartUp => self.signals.startup = Some(message.vector),
            DeliveryMode::ExtInt => self.signals.extint = true,
        }
    }

    /// The vector the CPU would take now: the highest IRR vector whose priority class
    /// is above the processor priority's (SDM 11.8.3.1). `None` while the APIC is
    /// disabled.
    pub fn pending_vector(&self) -> Option<u8> {
        if !self.hardware_enabled() || !self.software_enabled() {
            return None;
        }
        let vector = self.irr.highest()?;
        (vector >> 4 > self.ppr() >> 4).then_some(vector)
    }

    /// The interrupt-acknowledge cycle: moves [`LocalApic::pending_vector`] from the
    /// IRR to the ISR and returns it.
    pub fn acknowledge(&mut self) -> Option<u8> {
        let vector = self.pending_vector()?;
        self.irr.remove(vector);
        self.isr.insert(vector);
        Some(vector)
    }

    /// True when the 8259's INTR output may reach the CPU: the APIC is globally or
    /// software disabled, or LINT0 is unmasked in ExtINT mode (virtual wire).
    ///
    /// QEMU's `apic_accept_pic_intr` accepts when globally disabled or LINT0 is
    /// unmasked, and relies on firmware programming LINT0. Here LVT entries are
    /// forced masked while the APIC is software disabled (SDM 11.4.7.2), so the
    /// software-disabled reset state passes the PIC through, as QEMU's older BSP
    /// LINT0 = ExtINT preset did, until the guest enables the APIC and programs LINT0.
    pub fn accepts_pic_interrupts(&self) -> bool {
        let lint0 = self.lvt[reg::LVT_LINT0];
        let extint = (lint0 >> reg::DELIVERY_MODE_SHIFT) & 0b111 == u32::from(DeliveryMode::ExtInt.bits());
        !self.hardware_enabled() || !self.software_enabled() || (lint0 & reg::LVT_MASKED == 0 && extint)
    }

    /// Takes one queued EOI broadcast: the vector of a level-triggered interrupt the
    /// guest has ended, for the I/O APIC's `end_of_interrupt`. Call with the local
    /// APIC's lock released before locking the I/O APIC.
    pub fn take_eoi_broadcast(&mut self) -> Option<u8> {
        self.eoi_broadcasts.pop_highest()
    }

    /// Takes a pending NMI (NMI message or IPI).
    pub fn take_nmi(&mut self) -> bool {
        std::mem::take(&mut self.signals.nmi)
    }

    /// Takes a pending SMI (SMI message or IPI).
    pub fn take_smi(&mut self) -> bool {
        std::mem::take(&mut self.signals.smi)
    }

    /// Takes a pending INIT (INIT message or IPI); the board resets the CPU and calls
    /// [`LocalApic::init`].
    pub fn take_init(&mut self) -> bool {
        std::mem::take(&mut self.signals.init)
    }

    /// Takes a pending start-up IPI and its vector (start page = vector << 12).
    pub fn take_startup(&mut self) -> Option<u8> {
        self.signals.startup.take()
    }

    /// Takes a pending ExtINT message: the CPU should run an 8259 INTA cycle.
    pub fn take_extint(&mut self) -> bool {
        std::mem::take(&mut self.signals.extint)
    }

    /// The guest TSC now (the clock-derived count plus the offset).
    pub fn tsc(&self) -> u64 {
        self.apic_timer.tsc(self.clock.now_ns())
    }

    /// Sets the guest TSC offset (guest TSC = clock-derived TSC + `offset`, wrapping),
    /// so IA32_TSC_DEADLINE follows a TSC the CPU has rebased with WRMSR IA32_TSC.
    pub fn set_tsc_offset(&mut self, offset: u64) {
        self.apic_timer.set_tsc_offset(offset);
        self.rearm_timer();
    }

    /// The board calls this when the LVT timer's [`Timer`] is due: fires the timer
    /// interrupt if its time has come and arms the next expiry.
    pub fn on_timer(&mut self) {
        let now = self.clock.now_ns();
        if self.apic_timer.expire(self.timer_mode(), now) {
            self.deliver_lvt(reg::LVT_TIMER);
        }
        self.rearm_timer();
    }

    fn rearm_timer(&mut self) {
        match self.apic_timer.next_expiry_ns(self.timer_mode(), self.clock.now_ns()) {
            Some(deadline) => self.timer.arm_at(deadline),
            None => self.timer.cancel(),
        }
    }

    /// A local interrupt source fires through LVT entry `index` (timer or error; these
    /// are fixed, edge-triggered). Masked entries deliver nothing.
    fn deliver_lvt(&mut self, index: usize) {
        let lvt = self.lvt[index];
        if lvt & reg::LVT_MASKED != 0 {
            return;
        }
        let vector = (lvt & reg::VECTOR_MASK) as u8;
        if index == reg::LVT_ERROR && vector < 16 {
            log::debug!("local APIC {}: error LVT has illegal vector {vector:#x}", self.apic_id());
            return;
        }
        self.accept_interrupt(vector, false);
    }

    /// Logs an error in the ESR (visible after the next ESR write) and signals it
    /// through the error LVT entry (SDM 11.5.3).
    fn record_error(&mut self, bits: u32) {
        self.esr_pending |= bits;
        self.deliver_lvt(reg::LVT_ERROR);
    }

    /// EOI (SDM 11.8.5): retires the highest in-service vector; a level-triggered one
    /// is queued for the I/O APIC EOI broadcast.
    fn end_of_interrupt(&mut self) {
        if let Some(vector) = self.isr.pop_highest() {
            if self.tmr.contains(vector) {
                self.eoi_broadcasts.insert(vector);
            }
        }
    }

    /// Reads the registers whose meaning is the same in xAPIC and x2APIC mode.
    fn read_common(&self, index: u32) -> Option<u32> {
        let now = self.clock.now_ns();
        Some(match index {
            reg::VERSION => reg::VERSION_VALUE,
            reg::TPR => self.tpr.into(),
            reg::PPR => self.ppr().into(),
            reg::SVR => self.svr,
            i if (reg::ISR_BASE..reg::ISR_BASE + 8).contains(&i) => self.isr.register((i - reg::ISR_BASE) as usize),
            i if (reg::TMR_BASE..reg::TMR_BASE + 8).contains(&i) => self.tmr.register((i - reg::TMR_BASE) as usize),
            i if (reg::IRR_BASE..reg::IRR_BASE + 8).contains(&i) => self.irr.register((i - reg::IRR_BASE) as usize),
            reg::ESR => self.esr,
            i if (reg::LVT_BASE..reg::LVT_BASE + reg::LVT_COUNT as u32).contains(&i) => {
                self.lvt[(i - reg::LVT_BASE) as usize]
            }
            reg::TIMER_INITIAL_COUNT => self.apic_timer.initial_count(),
            reg::TIMER_CURRENT_COUNT => self.apic_timer.current_count(self.timer_mode(), now),
            reg::TIMER_DIVIDE_CONFIG => self.apic_timer.divide_config(),
            _ => return None,
        })
    }

    /// Writes the registers whose meaning is the same in xAPIC and x2APIC mode;
    /// `false` when `index` is not one of them.
    fn write_common(&mut self, index: u32, value: u32) -> bool {
        let now = self.clock.now_ns();
        match index {
            reg::TPR => self.tpr = value as u8,
            reg::EOI => self.end_of_interrupt(),
            reg::SVR => self.write_svr(value),
            reg::ESR => self.esr = std::mem::take(&mut self.esr_pending),
            i if (reg::LVT_BASE..reg::LVT_BASE + reg::LVT_COUNT as u32).contains(&i) => {
                self.write_lvt((i - reg::LVT_BASE) as usize, value)
            }
            reg::TIMER_INITIAL_COUNT => {
                self.apic_timer.write_initial_count(self.timer_mode(), value, now);
                self.rearm_timer();
            }
            reg::TIMER_DIVIDE_CONFIG => {
                self.apic_timer.write_divide_config(self.timer_mode(), value & reg::DIVIDE_CONFIG_WRITABLE, now);
                self.rearm_timer();
            }
            _ => return false,
        }
        true
    }

    /// SVR write; clearing the software enable masks every LVT entry (SDM 11.4.7.2).
    fn write_svr(&mut self, value: u32) {
        self.svr = value & reg::SVR_WRITABLE;
        if !self.software_enabled() {
            for entry in &mut self.lvt {
                *entry |= reg::LVT_MASKED;
            }
        }
    }

    /// LVT write: only the entry's writable bits; the mask stays set while the APIC
    /// is software disabled. Switching the timer between TSC-deadline and a
    /// count-based mode disarms it (SDM 11.5.4.1).
    fn write_lvt(&mut self, index: usize, value: u32) {
        let writable = match index {
            reg::LVT_TIMER => reg::LVT_TIMER_WRITABLE,
            reg::LVT_LINT0 | reg::LVT_LINT1 => reg::LVT_LINT_WRITABLE,
            reg::LVT_ERROR => reg::LVT_ERROR_WRITABLE,
            // Thermal sensor and performance counters.
            _ => reg::LVT_DELIVERY_WRITABLE,
        };
        let mut entry = value & writable;
        if !self.software_enabled() {
            entry |= reg::LVT_MASKED;
        }
        if index != reg::LVT_TIMER {
            self.lvt[index] = entry;
            return;
        }
        let old_mode = self.timer_mode();
        let new_mode = TimerMode::from_bits(entry >> reg::LVT_TIMER_MODE_SHIFT).unwrap_or_else(|| {
            log::warn!("local APIC {}: reserved timer mode 11 in LVT timer {value:#x}, using one-shot", self.apic_id());
            entry &= !(0b11 << reg::LVT_TIMER_MODE_SHIFT);
            TimerMode::OneShot
        });
        if (old_mode == TimerMode::TscDeadline) != (new_mode == TimerMode::TscDeadline) {
            self.apic_timer.disarm();
        }
        self.lvt[index] = entry;
        self.rearm_timer();
    }

    /// Reads an xAPIC register by index (MMIO offset / 16); reserved ones read 0.
    fn read_xapic_register(&self, index: u32) -> u32 {
        match index {
            reg::ID => u32::from(self.xapic_id) << 24,
            reg::APR => self.apr().into(),
            reg::EOI | reg::RRD => 0,
            reg::LDR => self.ldr,
            reg::DFR => (self.dfr_model << 28) | reg::DFR_RESERVED_ONES,
            reg::ICR_LOW => self.icr_low,
            reg::ICR_HIGH => self.icr_high,
            _ => self.read_common(index).unwrap_or_else(|| {
                log::debug!("local APIC {}: read of reserved register {:#x}", self.apic_id(), index << 4);
                0
            }),
        }
    }

    /// Writes an xAPIC register by index (MMIO offset / 16).
    fn write_xapic_register(&mut self, index: u32, value: u32) {
        match index {
            reg::ID => self.xapic_id = (value >> 24) as u8,
            reg::LDR => self.ldr = value & 0xFF00_0000,
            reg::DFR => self.dfr_model = value >> 28,
            reg::ICR_LOW => {
                self.icr_low = value & reg::ICR_LOW_WRITABLE;
                let destination = self.icr_high >> 24;
                self.send_ipi(self.icr_low, destination);
            }
            reg::ICR_HIGH => self.icr_high = value & reg::ICR_HIGH_WRITABLE,
            _ if self.write_common(index, value) => {}
            _ => log::debug!(
                "local APIC {}: write {value:#x} to read-only or reserved register {:#x} ignored",
                self.apic_id(),
                index << 4
            ),
        }
    }
}

/// The 4 KiB xAPIC page. Registers sit at 16-byte aligned offsets and are 32 bits
/// wide: reads of 1, 2, 4 or 8 bytes return the register's bytes from the offset's
/// position (bytes 4-15 of a slot read zero); writes must be 4 or 8 bytes at the
/// slot start (the low 32 bits count) and are otherwise dropped, as KVM does.
impl BusDevice for LocalApic {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        if !self.mmio_enabled() {
            log::debug!("local APIC MMIO read at {offset:#x} while the page is not decoded");
            return size_mask(size);
        }
        let byte = offset & 0xF;
        if offset >= 0x1000 || byte >= 4 {
            return 0;
        }
        let register = self.read_xapic_register((offset >> 4) as u32);
        (u64::from(register) >> (8 * byte)) & size_mask(size)
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if !self.mmio_enabled() {
            log::debug!("local APIC MMIO write at {offset:#x} while the page is not decoded");
            return;
        }
        if offset >= 0x1000 || offset & 0xF != 0 || size < 4 {
            log::warn!("local APIC: dropped {size}-byte write of {value:#x} at unaligned offset {offset:#x}");
            return;
        }
        self.write_xapic_register((offset >> 4) as u32, value as u32);
    }
}
