//! Local APIC behaviour from the SDM (vol. 3, chapter 11).

use super::*;
use rx86_core::time::Timer;

// xAPIC MMIO offsets (SDM table 11-1).
const ID_REG: u64 = 0x20;
const VERSION_REG: u64 = 0x30;
const TPR_REG: u64 = 0x80;
const APR_REG: u64 = 0x90;
const PPR_REG: u64 = 0xA0;
const EOI_REG: u64 = 0xB0;
const LDR_REG: u64 = 0xD0;
const DFR_REG: u64 = 0xE0;
const SVR_REG: u64 = 0xF0;
const ISR_REG0: u64 = 0x100;
const TMR_REG0: u64 = 0x180;
const IRR_REG0: u64 = 0x200;
const ESR_REG: u64 = 0x280;
const ICR_LOW_REG: u64 = 0x300;
const ICR_HIGH_REG: u64 = 0x310;
const LVT_TIMER_REG: u64 = 0x320;
const LVT_LINT0_REG: u64 = 0x350;
const LVT_ERROR_REG: u64 = 0x370;
const INITIAL_COUNT_REG: u64 = 0x380;
const CURRENT_COUNT_REG: u64 = 0x390;
const DIVIDE_REG: u64 = 0x3E0;

const EN: u64 = 1 << 11;
const EXTD: u64 = 1 << 10;

struct Rig {
    apic: LocalApic,
    clock: Clock,
    timer: Timer,
}

impl Rig {
    fn new() -> Self {
        Self::with(LocalApicConfig::default())
    }

    fn with(config: LocalApicConfig) -> Self {
        let clock = Clock::new_virtual();
        let timer = Timer::standalone("lapic");
        let apic = LocalApic::new(config, clock.clone(), timer.clone());
        Rig { apic, clock, timer }
    }

    /// Software-enabled with spurious vector 0xFF.
    fn enabled() -> Self {
        let mut rig = Self::new();
        rig.write(SVR_REG, 0x1FF);
        rig
    }

    fn read(&mut self, offset: u64) -> u32 {
        self.apic.read(offset, 4) as u32
    }

    fn write(&mut self, offset: u64, value: u32) {
        self.apic.write(offset, 4, value.into());
    }

    /// Bit `vector` of the ISR/TMR/IRR register block starting at `base`.
    fn bit(&mut self, base: u64, vector: u8) -> bool {
        self.read(base + u64::from(vector / 32) * 0x10) & (1 << (vector % 32)) != 0
    }

    /// Advances the clock to `ns` and lets the timer act if it is due.
    fn run_to(&mut self, ns: u64) {
        self.clock.advance_to(ns);
        if self.timer.deadline().is_some_and(|d| d <= ns) {
            self.apic.on_timer();
        }
    }

    fn enter_x2apic(&mut self) {
        let base = self.apic.apic_base();
        self.apic.msr_write(0x1B, base | EXTD).unwrap();
    }
}

#[test]
fn reset_state_matches_the_sdm() {
    let mut rig = Rig::new();
    assert_eq!(rig.apic.apic_base(), 0xFEE0_0900, "base, EN and BSP");
    assert_eq!(rig.apic.base(), 0xFEE0_0000);
    assert!(rig.apic.mmio_enabled() && !rig.apic.x2apic_mode());
    assert_eq!(rig.read(ID_REG), 0);
    assert_eq!(rig.read(VERSION_REG), 0x0005_0014);
    assert_eq!(rig.read(SVR_REG), 0xFF);
    assert_eq!(rig.read(DFR_REG), 0xFFFF_FFFF);
    assert_eq!(rig.read(TPR_REG), 0);
    for lvt in 0..6 {
        assert_eq!(rig.read(LVT_TIMER_REG + lvt * 0x10), 0x1_0000, "LVT {lvt} masked");
    }
    assert_eq!(rig.read(DIVIDE_REG), 0);

    let mut ap = Rig::with(LocalApicConfig { apic_id: 3, bsp: false, ..LocalApicConfig::default() });
    assert_eq!(ap.apic.apic_base(), 0xFEE0_0800);
    assert_eq!(ap.read(ID_REG), 0x0300_0000);
}

#[test]
fn init_keeps_apic_base_and_id() {
    let mut rig = Rig::enabled();
    rig.write(ID_REG, 0x0700_0000);
    rig.write(TPR_REG, 0x30);
    rig.apic.msr_write(0x1B, 0xFED0_0000 | EN).unwrap();
    rig.apic.init();
    assert_eq!(rig.apic.base(), 0xFED0_0000);
    assert_eq!(rig.read(ID_REG), 0x0700_0000);
    assert_eq!(rig.read(TPR_REG), 0);
    assert_eq!(rig.read(SVR_REG), 0xFF);
    rig.apic.reset();
    assert_eq!(rig.apic.apic_base(), 0xFEE0_0900);
    assert_eq!(rig.read(ID_REG), 0);
}

#[test]
fn software_disable_masks_lvts_and_drops_fixed_interrupts() {
    let mut rig = Rig::new();
    rig.write(LVT_TIMER_REG, 0x20);
    assert_eq!(rig.read(LVT_TIMER_REG), 0x1_0020, "mask cannot be cleared while disabled");
    rig.apic.accept_interrupt(0x40, false);
    assert!(!rig.bit(IRR_REG0, 0x40));

    rig.write(SVR_REG, 0x1FF);
    assert_eq!(rig.read(SVR_REG), 0x1FF);
    assert_eq!(rig.read(LVT_TIMER_REG), 0x1_0020, "enabling leaves the mask set");
    rig.write(LVT_TIMER_REG, 0x20);
    assert_eq!(rig.read(LVT_TIMER_REG), 0x20);
    rig.apic.accept_interrupt(0x40, false);
    assert_eq!(rig.apic.pending_vector(), Some(0x40));

    rig.write(SVR_REG, 0x0FF);
    assert_eq!(rig.read(LVT_TIMER_REG), 0x1_0020, "disabling masks every LVT");
    assert_eq!(rig.apic.pending_vector(), None, "no delivery while disabled");
    assert!(rig.bit(IRR_REG0, 0x40), "IRR is held");
}

#[test]
fn tpr_and_ppr_gate_delivery_by_priority_class() {
    let mut rig = Rig::enabled();
    rig.apic.accept_interrupt(0x45, false);
    rig.write(TPR_REG, 0x50);
    assert_eq!(rig.read(PPR_REG), 0x50);
    assert_eq!(rig.apic.pending_vector(), None);
    rig.write(TPR_REG, 0x4F);
    assert_eq!(rig.apic.pending_vector(), None, "same class as the PPR is held");
    rig.write(TPR_REG, 0x3F);
    assert_eq!(rig.apic.pending_vector(), Some(0x45));
    assert_eq!(rig.apic.acknowledge(), Some(0x45));
    assert!(rig.bit(ISR_REG0, 0x45) && !rig.bit(IRR_REG0, 0x45));
    assert_eq!(rig.read(PPR_REG), 0x40, "ISRV class above TPR class");
    rig.apic.accept_interrupt(0x41, false);
    assert_eq!(rig.apic.pending_vector(), None, "class 4 is in service");
    rig.apic.accept_interrupt(0x51, false);
    assert_eq!(rig.apic.acknowledge(), Some(0x51));
    rig.apic.set_tpr(0xE0);
    assert_eq!(rig.apic.tpr(), 0xE0);
    assert_eq!(rig.read(PPR_REG), 0xE0);
}

#[test]
fn eoi_retires_the_highest_in_service_vector_first() {
    let mut rig = Rig::enabled();
    rig.apic.accept_interrupt(0x30, false);
    assert_eq!(rig.apic.acknowledge(), Some(0x30));
    rig.apic.accept_interrupt(0x50, false);
    assert_eq!(rig.apic.acknowledge(), Some(0x50), "higher class nests");
    assert!(rig.bit(ISR_REG0, 0x30) && rig.bit(ISR_REG0, 0x50));
    rig.write(EOI_REG, 0);
    assert!(rig.bit(ISR_REG0, 0x30) && !rig.bit(ISR_REG0, 0x50));
    assert_eq!(rig.read(PPR_REG), 0x30);
    rig.write(EOI_REG, 0);
    assert!(!rig.bit(ISR_REG0, 0x30));
    rig.write(EOI_REG, 0);
    assert_eq!(rig.read(PPR_REG), 0);
    assert_eq!(rig.apic.take_eoi_broadcast(), None, "edge-triggered EOIs are not broadcast");
}

#[test]
fn level_triggered_eoi_is_broadcast() {
    let mut rig = Rig::enabled();
    rig.apic.accept_interrupt(0x61, true);
    rig.apic.accept_interrupt(0x62, false);
    assert!(rig.bit(TMR_REG0, 0x61) && !rig.bit(TMR_REG0, 0x62));
    assert_eq!(rig.apic.acknowledge(), Some(0x62));
    rig.write(EOI_REG, 0);
    assert_eq!(rig.apic.take_eoi_broadcast(), None);
    assert_eq!(rig.apic.acknowledge(), Some(0x61));
    rig.write(EOI_REG, 0);
    assert_eq!(rig.apic.take_eoi_broadcast(), Some(0x61));
    assert_eq!(rig.apic.take_eoi_broadcast(), None);
    // The same vector accepted edge-triggered later clears its TMR bit.
    rig.apic.accept_interrupt(0x61, false);
    assert!(!rig.bit(TMR_REG0, 0x61));
}

#[test]
fn illegal_vectors_set_esr_after_the_next_esr_write_and_raise_the_error_lvt() {
    let mut rig = Rig::enabled();
    rig.write(LVT_ERROR_REG, 0xEE);
    rig.apic.accept_interrupt(0x05, false);
    assert!(!rig.bit(IRR_REG0, 0x05));
    assert_eq!(rig.read(ESR_REG), 0, "errors show after an ESR write");
    rig.write(ESR_REG, 0);
    assert_eq!(rig.read(ESR_REG), 0x40, "receive illegal vector");
    assert_eq!(rig.apic.pending_vector(), Some(0xEE), "error LVT fired");
    rig.write(ESR_REG, 0);
    assert_eq!(rig.read(ESR_REG), 0);
    // Sending an IPI with vector 3 to self: send illegal vector.
    rig.write(ICR_LOW_REG, 0x4_0003);
    rig.write(ESR_REG, 0);
    assert_eq!(rig.read(ESR_REG), 0x20);
}

#[test]
fn one_shot_timer_fires_after_initial_count_times_divisor() {
    for (divide_config, divisor) in [(0b1011, 1), (0b0000, 2), (0b0011, 16), (0b1010, 128)] {
        let mut rig = Rig::enabled();
        rig.clock.advance_to(10_000);
        rig.write(LVT_TIMER_REG, 0x30);
        rig.write(DIVIDE_REG, divide_config);
        rig.write(INITIAL_COUNT_REG, 1000);
        let expiry = 10_000 + 1000 * divisor;
        assert_eq!(rig.timer.deadline(), Some(expiry), "divide by {divisor}");
        rig.clock.advance_to(10_000 + 500 * divisor);
        assert_eq!(rig.read(CURRENT_COUNT_REG), 500);
        rig.apic.on_timer();
        assert_eq!(rig.apic.pending_vector(), None, "early call does not fire");
        assert_eq!(rig.timer.deadline(), Some(expiry));
        rig.run_to(expiry);
        assert_eq!(rig.apic.pending_vector(), Some(0x30));
        assert_eq!(rig.read(CURRENT_COUNT_REG), 0);
        assert_eq!(rig.timer.deadline(), None, "one-shot stops");
        assert_eq!(rig.read(INITIAL_COUNT_REG), 1000);
    }
}

#[test]
fn periodic_timer_reloads_and_coalesces_missed_periods() {
    let mut rig = Rig::enabled();
    rig.write(LVT_TIMER_REG, 0x2_0031);
    rig.write(DIVIDE_REG, 0b1011);
    rig.write(INITIAL_COUNT_REG, 100);
    for period in 1..=3u64 {
        assert_eq!(rig.timer.deadline(), Some(100 * period));
        rig.run_to(100 * period);
        assert_eq!(rig.apic.acknowledge(), Some(0x31));
        rig.write(EOI_REG, 0);
    }
    rig.clock.advance_to(350);
    assert_eq!(rig.read(CURRENT_COUNT_REG), 50);
    rig.run_to(470);
    assert_eq!(rig.apic.acknowledge(), Some(0x31));
    assert_eq!(rig.apic.pending_vector(), None, "missed periods coalesce");
    assert_eq!(rig.timer.deadline(), Some(500));
    assert_eq!(rig.read(CURRENT_COUNT_REG), 30);
    rig.write(INITIAL_COUNT_REG, 0);
    assert_eq!(rig.timer.deadline(), None, "initial count 0 stops the timer");
}

#[test]
fn masked_timer_counts_without_interrupting() {
    let mut rig = Rig::enabled();
    rig.write(LVT_TIMER_REG, 0x1_0030);
    rig.write(DIVIDE_REG, 0b1011);
    rig.write(INITIAL_COUNT_REG, 10);
    rig.run_to(10);
    assert_eq!(rig.read(CURRENT_COUNT_REG), 0);
    assert_eq!(rig.read(IRR_REG0 + 0x10), 0);
}

#[test]
fn divide_change_keeps_the_count_and_slows_the_rest() {
    let mut rig = Rig::enabled();
    rig.write(LVT_TIMER_REG, 0x30);
    rig.write(DIVIDE_REG, 0b1011);
    rig.write(INITIAL_COUNT_REG, 1000);
    rig.clock.advance_to(400);
    rig.write(DIVIDE_REG, 0b0000);
    assert_eq!(rig.read(CURRENT_COUNT_REG), 600);
    assert_eq!(rig.timer.deadline(), Some(400 + 600 * 2));
}

#[test]
fn tsc_deadline_mode_fires_at_the_deadline_and_clears_the_msr() {
    let mut rig = Rig::enabled();
    rig.apic.msr_write(0x6E0, 5000).unwrap();
    assert_eq!(rig.apic.msr_read(0x6E0), Ok(0), "ignored outside TSC-deadline mode");
    rig.write(LVT_TIMER_REG, 0x4_0032);
    rig.clock.advance_to(1000);
    assert_eq!(rig.apic.tsc(), 1000);
    rig.apic.msr_write(0x6E0, 5000).unwrap();
    assert_eq!(rig.apic.msr_read(0x6E0), Ok(5000));
    assert_eq!(rig.timer.deadline(), Some(5000));
    rig.write(INITIAL_COUNT_REG, 7);
    assert_eq!(rig.read(INITIAL_COUNT_REG), 0, "initial count ignored in TSC-deadline mode");
    rig.run_to(4999);
    assert_eq!(rig.apic.pending_vector(), None);
    rig.run_to(5000);
    assert_eq!(rig.apic.pending_vector(), Some(0x32));
    assert_eq!(rig.apic.msr_read(0x6E0), Ok(0));
    assert_eq!(rig.timer.deadline(), None);
    // A deadline already passed fires at once.
    rig.apic.msr_write(0x6E0, 10).unwrap();
    assert_eq!(rig.timer.deadline(), Some(5000));
    // Zero disarms; leaving TSC-deadline mode disarms too.
    rig.apic.msr_write(0x6E0, 0).unwrap();
    assert_eq!(rig.timer.deadline(), None);
    rig.apic.msr_write(0x6E0, 9000).unwrap();
    rig.write(LVT_TIMER_REG, 0x32);
    assert_eq!(rig.timer.deadline(), None);
    rig.write(LVT_TIMER_REG, 0x4_0032);
    assert_eq!(rig.apic.msr_read(0x6E0), Ok(0));
}

#[test]
fn tsc_deadline_follows_the_tsc_rate_and_offset() {
    let mut rig = Rig::with(LocalApicConfig { tsc_hz: 2_000_000_000, ..LocalApicConfig::default() });
    rig.write(SVR_REG, 0x1FF);
    rig.write(LVT_TIMER_REG, 0x4_0032);
    rig.apic.msr_write(0x6E0, 5000).unwrap();
    assert_eq!(rig.timer.deadline(), Some(2500), "2 TSC ticks per ns");
    rig.apic.set_tsc_offset(1000);
    assert_eq!(rig.timer.deadline(), Some(2000));
    rig.run_to(2000);
    assert_eq!(rig.apic.pending_vector(), Some(0x32));
}

#[test]
fn reserved_timer_mode_reads_back_as_one_shot() {
    let mut rig = Rig::enabled();
    rig.write(LVT_TIMER_REG, 0x6_0030);
    assert_eq!(rig.read(LVT_TIMER_REG), 0x30);
}

#[test]
fn accepts_pic_interrupts_follows_lint0_and_enables() {
    let mut rig = Rig::new();
    assert!(rig.apic.accepts_pic_interrupts(), "software-disabled at reset");
    rig.write(SVR_REG, 0x1FF);
    assert!(!rig.apic.accepts_pic_interrupts(), "LINT0 masked");
    rig.write(LVT_LINT0_REG, 0x700);
    assert!(rig.apic.accepts_pic_interrupts(), "virtual wire");
    rig.write(LVT_LINT0_REG, 0x1_0700);
    assert!(!rig.apic.accepts_pic_interrupts());
    rig.write(LVT_LINT0_REG, 0x0030);
    assert!(!rig.apic.accepts_pic_interrupts(), "fixed mode is not ExtINT");
    rig.apic.msr_write(0x1B, 0xFEE0_0000).unwrap();
    assert!(rig.apic.accepts_pic_interrupts(), "globally disabled");
}

#[test]
fn global_disable_resets_registers_and_unmaps_mmio() {
    let mut rig = Rig::enabled();
    rig.write(TPR_REG, 0x20);
    rig.apic.accept_interrupt(0x80, false);
    rig.apic.msr_write(0x1B, 0xFEE0_0000).unwrap();
    assert!(!rig.apic.hardware_enabled() && !rig.apic.mmio_enabled());
    assert_eq!(rig.apic.apic_base(), 0xFEE0_0100, "BSP is read only");
    assert_eq!(rig.apic.read(TPR_REG, 4), 0xFFFF_FFFF, "page not decoded");
    rig.apic.accept_interrupt(0x80, false);
    assert_eq!(rig.apic.pending_vector(), None);
    rig.apic.msr_write(0x1B, 0xFEE0_0000 | EN).unwrap();
    assert_eq!(rig.read(TPR_REG), 0);
    assert_eq!(rig.read(SVR_REG), 0xFF);
    assert!(!rig.bit(IRR_REG0, 0x80));
}

#[test]
fn apic_base_moves_and_rejects_reserved_bits() {
    let mut rig = Rig::new();
    rig.apic.msr_write(0x1B, 0xFED0_0000 | EN).unwrap();
    assert_eq!(rig.apic.base(), 0xFED0_0000);
    assert_eq!(rig.apic.apic_base(), 0xFED0_0900);
    for bad in [1 << 9, 1, 1 << 36] {
        assert_eq!(
            rig.apic.msr_write(0x1B, 0xFEE0_0000 | EN | bad),
            Err(ApicFault::ReservedBits { msr: 0x1B, value: 0xFEE0_0000 | EN | bad })
        );
    }
    assert!(matches!(rig.apic.msr_write(0x1B, 0xFEE0_0000 | EXTD), Err(ApicFault::IllegalModeTransition { .. })));
    assert_eq!(rig.apic.base(), 0xFED0_0000, "faulting writes change nothing");

    let mut no_x2 = Rig::with(LocalApicConfig { x2apic: false, ..LocalApicConfig::default() });
    assert!(matches!(no_x2.apic.msr_write(0x1B, 0xFEE0_0000 | EN | EXTD), Err(ApicFault::ReservedBits { .. })));
    assert_eq!(rig.apic.msr_read(0x10), Err(ApicFault::NotApicMsr(0x10)));
    assert_eq!(rig.apic.msr_write(0x10, 0), Err(ApicFault::NotApicMsr(0x10)));
}

#[test]
fn x2apic_msrs_fault_outside_x2apic_mode() {
    let mut rig = Rig::enabled();
    assert_eq!(rig.apic.msr_read(0x808), Err(ApicFault::NotX2ApicMode(0x808)));
    assert_eq!(rig.apic.msr_write(0x808, 0), Err(ApicFault::NotX2ApicMode(0x808)));
}

#[test]
fn x2apic_mode_transitions() {
    let mut rig = Rig::with(LocalApicConfig { apic_id: 0x12, ..LocalApicConfig::default() });
    rig.write(SVR_REG, 0x1FF);
    rig.write(TPR_REG, 0x20);
    rig.enter_x2apic();
    assert!(rig.apic.x2apic_mode() && !rig.apic.mmio_enabled());
    assert_eq!(rig.apic.read(TPR_REG, 4), 0xFFFF_FFFF, "MMIO page not decoded");
    assert_eq!(rig.apic.msr_read(0x808), Ok(0x20), "state kept across xAPIC -> x2APIC");
    assert_eq!(rig.apic.msr_read(0x802), Ok(0x12));
    assert_eq!(rig.apic.msr_read(0x80D), Ok(0x0001_0004), "cluster 1, bit 2");
    assert!(matches!(rig.apic.msr_write(0x1B, 0xFEE0_0000 | EN), Err(ApicFault::IllegalModeTransition { .. })));
    rig.apic.msr_write(0x1B, 0xFEE0_0000).unwrap();
    assert!(matches!(rig.apic.msr_write(0x1B, 0xFEE0_0000 | EN | EXTD), Err(ApicFault::IllegalModeTransition { .. })));
    rig.apic.msr_write(0x1B, 0xFEE0_0000 | EN).unwrap();
    assert!(rig.apic.mmio_enabled());
    assert_eq!(rig.read(ID_REG), 0x1200_0000);
    assert_eq!(rig.read(TPR_REG), 0, "x2APIC -> disabled resets");
}

#[test]
fn x2apic_register_access_rules() {
    let mut rig = Rig::enabled();
    rig.enter_x2apic();
    for reserved in [0x801, 0x809, 0x80C, 0x80E, 0x82F, 0x831, 0x83A, 0x8FF] {
        assert_eq!(rig.apic.msr_read(reserved), Err(ApicFault::ReservedRegister(reserved)), "{reserved:#x}");
        assert_eq!(rig.apic.msr_write(reserved, 0), Err(ApicFault::ReservedRegister(reserved)), "{reserved:#x}");
    }
    for read_only in [0x802, 0x803, 0x80A, 0x80D, 0x810, 0x81F, 0x827, 0x839] {
        assert_eq!(rig.apic.msr_write(read_only, 0), Err(ApicFault::ReadOnly(read_only)), "{read_only:#x}");
    }
    assert_eq!(rig.apic.msr_read(0x80B), Err(ApicFault::WriteOnly(0x80B)));
    assert_eq!(rig.apic.msr_read(0x83F), Err(ApicFault::WriteOnly(0x83F)));
    assert_eq!(rig.apic.msr_write(0x80B, 1), Err(ApicFault::ReservedBits { msr: 0x80B, value: 1 }));
    assert_eq!(rig.apic.msr_write(0x828, 1), Err(ApicFault::ReservedBits { msr: 0x828, value: 1 }));
    assert_eq!(rig.apic.msr_write(0x808, 1 << 32), Err(ApicFault::ReservedBits { msr: 0x808, value: 1 << 32 }));
    rig.apic.msr_write(0x808, 0x20).unwrap();
    assert_eq!(rig.apic.msr_read(0x808), Ok(0x20));
    assert_eq!(rig.apic.msr_read(0x803), Ok(0x0005_0014));
    assert_eq!(rig.apic.msr_read(0x80F), Ok(0x1FF));
}

#[test]
fn x2apic_self_ipi_icr_and_eoi() {
    let mut rig = Rig::enabled();
    rig.enter_x2apic();
    rig.apic.msr_write(0x83F, 0x45).unwrap();
    assert_eq!(rig.apic.acknowledge(), Some(0x45));
    rig.apic.msr_write(0x80B, 0).unwrap();
    assert_eq!(rig.apic.msr_read(0x810 + 2), Ok(0), "EOI cleared ISR");
    // Physical IPI to ourselves (ID 0) with the full 64-bit ICR, level-triggered.
    rig.apic.msr_write(0x830, 0x8046).unwrap();
    assert_eq!(rig.apic.msr_read(0x830), Ok(0x8046));
    assert_eq!(rig.apic.acknowledge(), Some(0x46));
    rig.apic.msr_write(0x80B, 0).unwrap();
    assert_eq!(rig.apic.take_eoi_broadcast(), Some(0x46));
    // To APIC ID 7: nobody here.
    rig.apic.msr_write(0x830, (7 << 32) | 0x47).unwrap();
    assert_eq!(rig.apic.msr_read(0x830), Ok((7 << 32) | 0x47));
    assert_eq!(rig.apic.pending_vector(), None);
    // Timer registers through MSRs.
    rig.apic.msr_write(0x832, 0x33).unwrap();
    rig.apic.msr_write(0x83E, 0b1011).unwrap();
    rig.apic.msr_write(0x838, 50).unwrap();
    rig.clock.advance_to(20);
    assert_eq!(rig.apic.msr_read(0x839), Ok(30));
    rig.run_to(50);
    assert_eq!(rig.apic.pending_vector(), Some(0x33));
}

#[test]
fn ipi_shorthands_and_destinations() {
    let mut rig = Rig::enabled();
    rig.write(ICR_LOW_REG, 0x4_0050);
    assert_eq!(rig.apic.acknowledge(), Some(0x50), "self");
    rig.write(EOI_REG, 0);
    rig.write(ICR_LOW_REG, 0x8_0051);
    assert_eq!(rig.apic.acknowledge(), Some(0x51), "all including self");
    rig.write(EOI_REG, 0);
    rig.write(ICR_LOW_REG, 0xC_0052);
    assert_eq!(rig.apic.pending_vector(), None, "all excluding self");
    rig.write(ICR_HIGH_REG, 0x00FF_FFFF);
    assert_eq!(rig.read(ICR_HIGH_REG), 0, "only bits 31:24");
    rig.write(ICR_LOW_REG, 0x53);
    assert_eq!(rig.apic.acknowledge(), Some(0x53), "physical, our ID");
    rig.write(EOI_REG, 0);
    rig.write(ICR_HIGH_REG, 0x0500_0000);
    rig.write(ICR_LOW_REG, 0x54);
    assert_eq!(rig.apic.pending_vector(), None, "physical, absent ID");
    rig.write(ICR_HIGH_REG, 0xFF00_0000);
    rig.write(ICR_LOW_REG, 0x1055);
    assert_eq!(rig.read(ICR_LOW_REG), 0x55, "delivery status reads idle");
    assert_eq!(rig.apic.acknowledge(), Some(0x55), "broadcast");
    rig.write(ICR_LOW_REG, 0x4_0400);
    assert!(rig.apic.take_nmi() && !rig.apic.take_nmi(), "NMI to self");
    rig.write(ICR_LOW_REG, 0x8_0500 | 0x8000);
    assert!(!rig.apic.take_init(), "INIT level de-assert does nothing");
    rig.write(ICR_LOW_REG, 0x8_4500);
    assert!(rig.apic.take_init());
    rig.write(ICR_LOW_REG, 0x8_0608);
    assert_eq!(rig.apic.take_startup(), Some(8));
    assert_eq!(rig.apic.take_startup(), None);
}

#[test]
fn logical_destinations_flat_and_cluster() {
    let mut rig = Rig::enabled();
    let fixed = |destination| InterruptMessage {
        vector: 0x70,
        delivery_mode: DeliveryMode::Fixed,
        trigger_level: false,
        destination,
        logical: true,
    };
    rig.write(LDR_REG, 0x01FF_FFFF);
    assert_eq!(rig.read(LDR_REG), 0x0100_0000);
    rig.apic.deliver(fixed(0x02));
    assert_eq!(rig.apic.pending_vector(), None);
    rig.apic.deliver(fixed(0x03));
    assert_eq!(rig.apic.acknowledge(), Some(0x70), "flat: bitmap match");
    rig.write(EOI_REG, 0);

    rig.write(DFR_REG, 0x0FFF_FFFF);
    assert_eq!(rig.read(DFR_REG), 0x0FFF_FFFF);
    rig.write(LDR_REG, 0x2100_0000);
    rig.apic.deliver(fixed(0x11));
    rig.apic.deliver(fixed(0x22));
    assert_eq!(rig.apic.pending_vector(), None, "wrong cluster, wrong member");
    rig.apic.deliver(fixed(0x23));
    assert_eq!(rig.apic.acknowledge(), Some(0x70), "cluster 2, member 0");
    rig.write(EOI_REG, 0);
    rig.apic.deliver(fixed(0xFF));
    assert_eq!(rig.apic.acknowledge(), Some(0x70), "broadcast");
}

#[test]
fn non_fixed_messages_are_recorded_for_the_board() {
    let mut rig = Rig::enabled();
    let message = |delivery_mode| InterruptMessage {
        vector: 0x09,
        delivery_mode,
        trigger_level: false,
        destination: 0,
        logical: false,
    };
    rig.apic.deliver(message(DeliveryMode::Nmi));
    rig.apic.deliver(message(DeliveryMode::Smi));
    rig.apic.deliver(message(DeliveryMode::ExtInt));
    rig.apic.deliver(message(DeliveryMode::StartUp));
    rig.apic.deliver(message(DeliveryMode::Init));
    assert!(rig.apic.take_nmi() && rig.apic.take_smi() && rig.apic.take_extint() && rig.apic.take_init());
    assert_eq!(rig.apic.take_startup(), Some(0x09));
    assert!(!rig.apic.take_nmi() && !rig.apic.take_smi() && !rig.apic.take_extint() && !rig.apic.take_init());
    rig.apic.deliver(InterruptMessage { destination: 4, ..message(DeliveryMode::Nmi) });
    assert!(!rig.apic.take_nmi(), "another APIC's NMI");
}

#[test]
fn arbitration_priority_follows_the_sdm_formula() {
    let mut rig = Rig::enabled();
    rig.write(TPR_REG, 0x20);
    rig.apic.accept_interrupt(0x45, false);
    assert_eq!(rig.read(APR_REG), 0x40, "IRRV class above TPR class");
    rig.write(TPR_REG, 0x57);
    assert_eq!(rig.read(APR_REG), 0x57, "TPR dominates");
}

#[test]
fn mmio_access_widths() {
    let mut rig = Rig::new();
    assert_eq!(rig.apic.read(VERSION_REG, 1), 0x14);
    assert_eq!(rig.apic.read(VERSION_REG + 2, 1), 0x05);
    assert_eq!(rig.apic.read(VERSION_REG, 2), 0x14);
    assert_eq!(rig.apic.read(VERSION_REG, 8), 0x0005_0014);
    assert_eq!(rig.apic.read(VERSION_REG + 4, 4), 0);
    assert_eq!(rig.apic.read(0x1000, 4), 0);
    rig.apic.write(TPR_REG + 4, 4, 0x30);
    rig.apic.write(TPR_REG, 2, 0x30);
    rig.apic.write(TPR_REG, 1, 0x30);
    assert_eq!(rig.read(TPR_REG), 0, "sub-dword and unaligned writes are dropped");
    rig.apic.write(TPR_REG, 8, 0xFFFF_FFFF_0000_0030);
    assert_eq!(rig.read(TPR_REG), 0x30);
}

/// A deterministic xorshift64 generator (no crates).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn random_register_traffic_keeps_invariants() {
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let mut rig = Rig::new();
    let sizes = [1, 2, 4, 8];
    for step in 0..50_000 {
        match rng.below(12) {
            0 | 1 => {
                let offset = if rng.below(4) == 0 { rng.below(0x1100) } else { rng.below(0x40) << 4 };
                rig.apic.read(offset, sizes[rng.below(4) as usize]);
            }
            2..=4 => {
                let offset = if rng.below(4) == 0 { rng.below(0x1100) } else { rng.below(0x40) << 4 };
                let value = if rng.below(3) == 0 { rng.below(0x400) } else { rng.next() };
                rig.apic.write(offset, sizes[rng.below(4) as usize], value);
            }
            5 => {
                let msr = match rng.below(4) {
                    0 => 0x1B,
                    1 => 0x6E0,
                    2 => 0x800 + rng.below(0x100) as u32,
                    _ => rng.next() as u32,
                };
                if rng.below(2) == 0 {
                    let _ = rig.apic.msr_read(msr);
                } else {
                    let value = match msr {
                        0x1B => 0xFEE0_0000 | (rng.below(4) << 10) | (rng.below(64) << 6),
                        _ if rng.below(2) == 0 => rng.below(0x100),
                        _ => rng.next(),
                    };
                    let _ = rig.apic.msr_write(msr, value);
                }
            }
            6 => rig.apic.accept_interrupt(rng.next() as u8, rng.below(2) == 0),
            7 => rig.apic.deliver(InterruptMessage {
                vector: rng.next() as u8,
                delivery_mode: DeliveryMode::from_bits(rng.below(8) as u8).unwrap_or(DeliveryMode::Fixed),
                trigger_level: rng.below(2) == 0,
                destination: if rng.below(2) == 0 { rng.below(4) as u32 } else { rng.next() as u32 },
                logical: rng.below(2) == 0,
            }),
            8 => {
                let pending = rig.apic.pending_vector();
                assert_eq!(rig.apic.acknowledge(), pending);
            }
            9 => {
                let now = rig.clock.now_ns() + rng.below(5000);
                rig.run_to(now);
                assert!(rig.timer.deadline().is_none_or(|d| d > now), "step {step}: timer re-armed in the past");
            }
            10 => {
                rig.apic.take_eoi_broadcast();
                rig.apic.take_nmi();
                rig.apic.take_init();
            }
            _ => {
                if rng.below(500) == 0 {
                    rig.apic.reset();
                }
                rig.write(SVR_REG, 0x1FF);
            }
        }
        assert_eq!(rig.apic.irr.register(0) & 0xFFFF, 0, "step {step}: vectors 0-15 never enter the IRR");
        if let Some(vector) = rig.apic.pending_vector() {
            assert!(vector >> 4 > rig.apic.ppr() >> 4, "step {step}: vector {vector:#x} not above PPR");
        }
    }
}

#[test]
fn info_decodes_the_lvt_timer_icr_and_vector_registers() {
    let mut rig = Rig::enabled();
    rig.write(LVT_LINT0_REG, 0x0700);
    rig.write(LVT_TIMER_REG, 0x0002_00ec);
    rig.write(DIVIDE_REG, 0b1011);
    rig.write(INITIAL_COUNT_REG, 1000);
    rig.write(TPR_REG, 0x20);
    rig.apic.accept_interrupt(0x31, false);
    rig.apic.accept_interrupt(0x41, false);
    assert_eq!(rig.apic.acknowledge(), Some(0x41));
    rig.run_to(400);
    let info = rig.apic.info();
    for want in [
        "local APIC of CPU 0: base 0xfee00000, enabled, xAPIC mode",
        "LVT0    0x00000700 active-hi edge                           ExtINT (vec 0)",
        "LVTT    0x000200ec active-hi edge              periodic     Fixed  (vec 236)",
        "LVTERR  0x00010000 active-hi edge  masked                   Fixed  (vec 0)",
        "Timer   DCR=0xb (divide by 1) initial_count = 1000 current_count = 600",
        "SPIV    0x000001ff APIC enabled, focus=off, spurious vec 255",
        "ICR     0x00000000 physical edge de-assert no-shorthand idle (vec 0)",
        "ISR     65",
        "IRR     49",
        // APR as SDM 11.6.2.4 states it: max(TPR class AND ISRV class, IRRV class).
        "APR 0x30 TPR 0x20 DFR 0x0f LDR 0x00 PPR 0x40",
    ] {
        assert!(info.lines().any(|l| l.trim_end() == want), "missing {want:?} in:\n{info}");
    }
}
