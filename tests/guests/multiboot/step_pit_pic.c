/* Step "pit-pic": 8254 channel 0 in mode 2 at 1 kHz, delivered as IRQ0 by the remapped 8259A. */
#include "idt.h"
#include "pic.h"
#include "pit.h"
#include "report.h"
#include "steps.h"
#include "wait.h"

#define PIT_IRQ 0
#define PIT_HZ 1000

static volatile u32 ticks;

static void pit_irq(u32 vector) {
    ticks++;
    pic_eoi((u8)(vector - PIC_VECTOR_BASE));
}

void step_pit_pic(void) {
    step_begin("pit-pic");
    pic_remap();
    ticks = 0;
    u32 unexpected_before = unexpected_interrupts;
    idt_set_handler(VECTOR_PIT_PIC, pit_irq);
    u32 divisor = pit_start_periodic(PIT_HZ);
    pic_unmask(PIT_IRQ);
    struct wait_stats stats;
    const char *why = wait_for_interrupts(&ticks, TICKS_BUSY_POLLED, TICKS_TO_COUNT, 16 * TICKS_TO_COUNT, &stats);
    pic_mask(PIT_IRQ);
    idt_clear_handler(VECTOR_PIT_PIC);
    u32 unexpected = unexpected_interrupts - unexpected_before;
    if (why) {
        step_fail("%s (ticks=%u busy_polls=%u hlt=%u)", why, ticks, stats.busy_polls, stats.hlt_wakeups);
    } else if (unexpected) {
        step_fail("%u unexpected interrupts, last vector 0x%x", unexpected, last_unexpected_vector);
    } else {
        step_ok("ticks=%u vector=0x%x pit_divisor=%u (%uHz) busy_polled=%u hlt_wakeups=%u", ticks, VECTOR_PIT_PIC,
                divisor, PIT_HZ, TICKS_BUSY_POLLED, stats.hlt_wakeups);
    }
}
