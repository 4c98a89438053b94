/* The local APIC through its xAPIC MMIO page. */
#ifndef LAPIC_H
#define LAPIC_H

#include "types.h"

#define LAPIC_SPURIOUS_VECTOR 0xFF
#define LAPIC_ID 0x20         /* local APIC ID, bits 31-24 */
#define LAPIC_VERSION 0x30
#define LAPIC_TPR 0x80        /* task priority */
#define LAPIC_EOI 0xB0
#define LAPIC_IRR 0x200       /* interrupt request register, 8 x 32 bits at 0x10 strides */
#define LAPIC_SVR 0xF0        /* spurious interrupt vector */
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_ICR 0x380 /* initial count */
#define LAPIC_TIMER_CCR 0x390 /* current count */
#define LAPIC_TIMER_DCR 0x3E0 /* divide configuration */
#define LAPIC_LVT_MASKED (1 << 16)
#define LAPIC_TIMER_PERIODIC (1 << 17)
#define LAPIC_DCR_DIVIDE_16 0x3

/* Checks CPUID.1:EDX.APIC and that IA32_APIC_BASE is enabled at `base`; NULL or why not. */
const char *lapic_check_cpu(u32 base);
void lapic_set_base(u32 base);
u32 lapic_base(void);
u32 lapic_read(u32 reg);
void lapic_write(u32 reg, u32 value);
/* Software-enables the APIC (SVR bit 8) with LAPIC_SPURIOUS_VECTOR and TPR 0. */
void lapic_enable(void);
int lapic_enabled(void);
void lapic_eoi(void);
/*
 * Takes, with IF briefly set, an interrupt of `vector` that the local APIC accepted before its
 * source was masked. Call with interrupts disabled, the source masked and the handler still
 * installed: a tick can land in the IRR between the last CLI and the mask, on hardware as on any
 * emulator, and would otherwise arrive at the next STI as an unexpected interrupt.
 */
void lapic_drain(u32 vector);

#endif
