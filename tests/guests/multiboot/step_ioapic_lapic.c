/*
 * Step "ioapic-lapic": the PIT's IRQ0 routed through the IOAPIC pin the MADT names (normally
 * GSI 2) to the local APIC, with the 8259A fully masked and an EOI to the local APIC per tick.
 */
#include "acpi.h"
#include "idt.h"
#include "io.h"
#include "ioapic.h"
#include "lapic.h"
#include "pic.h"
#include "pit.h"
#include "report.h"
#include "steps.h"
#include "wait.h"

#define MPS_POLARITY_MASK 0x3
#define MPS_POLARITY_ACTIVE_LOW 0x3
#define MPS_TRIGGER_MASK 0xC
#define MPS_TRIGGER_LEVEL 0xC
#define PIT_HZ 1000

static volatile u32 ticks;

static void ioapic_pit_irq(u32 vector) {
    (void)vector;
    ticks++;
    lapic_eoi();
}

static void spurious_irq(u32 vector) { (void)vector; }

void step_ioapic_lapic(void) {
    step_begin("ioapic-lapic");
    if (!acpi.madt || !acpi.ioapic_count) {
        step_skip("no MADT with an IOAPIC");
        return;
    }
    const char *why = lapic_check_cpu(acpi.lapic_addr);
    if (why) {
        step_fail("%s", why);
        return;
    }
    u32 ioapic_id = (ioapic_read(IOAPIC_REG_ID) >> 24) & 0x0F;
    u32 ioapic_version = ioapic_read(IOAPIC_REG_VERSION);
    u32 pins = ioapic_pin_count();
    if (ioapic_id != acpi.ioapic_id) {
        step_fail("IOAPIC ID register says %u, the MADT says %u", ioapic_id, acpi.ioapic_id);
        return;
    }
    u16 flags;
    u32 gsi = acpi_isa_irq_gsi(0, &flags);
    if (gsi < acpi.ioapic_gsi_base || gsi - acpi.ioapic_gsi_base >= pins) {
        step_fail("IRQ0 maps to GSI %u, outside the IOAPIC's %u pins from GSI %u", gsi, pins, acpi.ioapic_gsi_base);
        return;
    }
    u32 pin = gsi - acpi.ioapic_gsi_base;
    /* ISA interrupts default to edge-triggered, active high when the flags say "conforms to bus". */
    u32 low = VECTOR_PIT_IOAPIC;
    if ((flags & MPS_POLARITY_MASK) == MPS_POLARITY_ACTIVE_LOW) low |= IOREDTBL_ACTIVE_LOW;
    if ((flags & MPS_TRIGGER_MASK) == MPS_TRIGGER_LEVEL) low |= IOREDTBL_LEVEL;

    pic_mask_all();
    lapic_enable();
    u8 apic_id = (u8)(lapic_read(LAPIC_ID) >> 24);
    u32 lapic_version = lapic_read(LAPIC_VERSION);
    ticks = 0;
    u32 unexpected_before = unexpected_interrupts;
    idt_set_handler(LAPIC_SPURIOUS_VECTOR, spurious_irq);
    idt_set_handler(VECTOR_PIT_IOAPIC, ioapic_pit_irq);
    pit_start_periodic(PIT_HZ);
    ioapic_route(pin, low, apic_id);
    struct wait_stats stats;
    why = wait_for_interrupts(&ticks, TICKS_BUSY_POLLED, TICKS_TO_COUNT, 16 * TICKS_TO_COUNT, &stats);
    u32 counted = ticks; /* before lapic_drain, which may take one more */
    ioapic_mask(pin);
    pit_stop();
    lapic_drain(VECTOR_PIT_IOAPIC);
    idt_clear_handler(VECTOR_PIT_IOAPIC);
    u32 unexpected = unexpected_interrupts - unexpected_before;
    if (why) {
        step_fail("%s (ticks=%u pin=%u redirection=0x%x busy_polls=%u hlt=%u)", why, counted, pin, low,
                  stats.busy_polls, stats.hlt_wakeups);
    } else if (unexpected) {
        step_fail("%u unexpected interrupts, last vector 0x%x", unexpected, last_unexpected_vector);
    } else {
        step_ok("ticks=%u vector=0x%x ioapic_pin=%u redirection=0x%x ioapic_id=%u ioapic_version=0x%x pins=%u "
                "lapic_id=%u lapic_version=0x%x hlt_wakeups=%u",
                counted, VECTOR_PIT_IOAPIC, pin, low, ioapic_id, ioapic_version & 0xFF, pins, apic_id, lapic_version,
                stats.hlt_wakeups);
    }
}
