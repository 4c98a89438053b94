/* Intel SDM Vol. 3A, chapter 11 "Advanced Programmable Interrupt Controller (APIC)". */
#include "lapic.h"
#include "io.h"

#define LAPIC_DEFAULT_BASE 0xFEE00000
#define SVR_APIC_ENABLE (1 << 8)
#define CPUID_1_EDX_APIC (1 << 9)
#define IA32_APIC_BASE 0x1B
#define APIC_BASE_GLOBAL_ENABLE (1 << 11)
#define APIC_BASE_ADDRESS_MASK 0xFFFFF000u

static u32 base = LAPIC_DEFAULT_BASE;
static int enabled;

const char *lapic_check_cpu(u32 expected_base) {
    u32 a, b, c, d;
    cpu_cpuid(1, &a, &b, &c, &d);
    if (!(d & CPUID_1_EDX_APIC)) return "CPUID.1:EDX.APIC[bit 9] is clear";
    u32 msr = (u32)cpu_rdmsr(IA32_APIC_BASE);
    if (!(msr & APIC_BASE_GLOBAL_ENABLE)) return "IA32_APIC_BASE global enable bit is clear";
    if ((msr & APIC_BASE_ADDRESS_MASK) != expected_base) return "IA32_APIC_BASE disagrees with the MADT address";
    return NULL;
}

void lapic_set_base(u32 new_base) { base = new_base; }
u32 lapic_base(void) { return base; }
u32 lapic_read(u32 reg) { return mmio_read32(base + reg); }
void lapic_write(u32 reg, u32 value) { mmio_write32(base + reg, value); }

void lapic_enable(void) {
    lapic_write(LAPIC_TPR, 0);
    lapic_write(LAPIC_SVR, SVR_APIC_ENABLE | LAPIC_SPURIOUS_VECTOR);
    enabled = 1;
}

int lapic_enabled(void) { return enabled; }

void lapic_eoi(void) {
    if (enabled) lapic_write(LAPIC_EOI, 0);
}

#define DRAIN_ATTEMPTS 1000

static int lapic_requested(u32 vector) { return (lapic_read(LAPIC_IRR + 0x10 * (vector / 32)) >> (vector % 32)) & 1; }

void lapic_drain(u32 vector) {
    for (u32 i = 0; i < DRAIN_ATTEMPTS && lapic_requested(vector); i++) {
        cpu_sti();
        __asm__ volatile("nop");
        cpu_cli();
    }
}
