/*
 * Step "lapic-timer": the local APIC timer in periodic mode (divide by 16), then one-shot mode with
 * the current-count register's decrease measured against the ACPI PM timer.
 */
#include "acpi.h"
#include "idt.h"
#include "lapic.h"
#include "pmtimer.h"
#include "report.h"
#include "steps.h"
#include "util.h"
#include "wait.h"

#define PERIODIC_INITIAL_COUNT 62500 /* 1 ms with a 1 GHz APIC bus and divide 16 */
#define DIVIDE_BY 16
#define MEASURE_PM_TICKS 3580        /* about 1 ms of PM timer */
#define MEASURE_POLL_LIMIT 50000000

static volatile u32 ticks;

static void lapic_timer_irq(u32 vector) {
    (void)vector;
    ticks++;
    lapic_eoi();
}

/* Busy-waits ~1 ms of PM timer in one-shot mode; returns NULL and the count decrease, or why not. */
static const char *measure_one_shot(u32 *decrease, u32 *pm_ticks) {
    lapic_write(LAPIC_LVT_TIMER, LAPIC_LVT_MASKED | VECTOR_LAPIC_TIMER);
    lapic_write(LAPIC_TIMER_DCR, LAPIC_DCR_DIVIDE_16);
    lapic_write(LAPIC_TIMER_ICR, 0xFFFFFFFF);
    u32 t0 = pmtimer_read(), c0 = lapic_read(LAPIC_TIMER_CCR), t1 = t0;
    u32 polls = 0;
    while (pmtimer_elapsed(t0, t1) < MEASURE_PM_TICKS && polls++ < MEASURE_POLL_LIMIT) t1 = pmtimer_read();
    u32 c1 = lapic_read(LAPIC_TIMER_CCR);
    lapic_write(LAPIC_TIMER_ICR, 0);
    *pm_ticks = pmtimer_elapsed(t0, t1);
    *decrease = c0 - c1;
    if (*pm_ticks < MEASURE_PM_TICKS) return "PM timer did not advance during the one-shot measurement";
    if (c1 >= c0) return "one-shot current count did not decrease";
    return NULL;
}

void step_lapic_timer(void) {
    step_begin("lapic-timer");
    if (!acpi.madt) {
        step_skip("no MADT");
        return;
    }
    const char *why = lapic_check_cpu(acpi.lapic_addr);
    if (why) {
        step_fail("%s", why);
        return;
    }
    lapic_enable();
    ticks = 0;
    u32 unexpected_before = unexpected_interrupts;
    idt_set_handler(VECTOR_LAPIC_TIMER, lapic_timer_irq);
    lapic_write(LAPIC_TIMER_DCR, LAPIC_DCR_DIVIDE_16);
    lapic_write(LAPIC_LVT_TIMER, LAPIC_TIMER_PERIODIC | VECTOR_LAPIC_TIMER);
    lapic_write(LAPIC_TIMER_ICR, PERIODIC_INITIAL_COUNT);
    struct wait_stats stats;
    why = wait_for_interrupts(&ticks, TICKS_BUSY_POLLED, TICKS_TO_COUNT, 16 * TICKS_TO_COUNT, &stats);
    u32 counted = ticks; /* before lapic_drain, which may take one more */
    lapic_write(LAPIC_LVT_TIMER, LAPIC_LVT_MASKED | VECTOR_LAPIC_TIMER);
    lapic_write(LAPIC_TIMER_ICR, 0);
    lapic_drain(VECTOR_LAPIC_TIMER);
    idt_clear_handler(VECTOR_LAPIC_TIMER);
    u32 unexpected = unexpected_interrupts - unexpected_before;
    if (why) {
        step_fail("periodic: %s (ticks=%u busy_polls=%u hlt=%u)", why, counted, stats.busy_polls, stats.hlt_wakeups);
        return;
    }
    if (unexpected) {
        step_fail("%u unexpected interrupts, last vector 0x%x", unexpected, last_unexpected_vector);
        return;
    }
    if (!pmtimer_present()) {
        step_ok("ticks=%u vector=0x%x initial_count=%u divide=%u (no PM timer: one-shot not measured)", counted,
                VECTOR_LAPIC_TIMER, PERIODIC_INITIAL_COUNT, DIVIDE_BY);
        return;
    }
    u32 decrease, pm_ticks;
    why = measure_one_shot(&decrease, &pm_ticks);
    if (why) {
        step_fail("%s (decrease=%u pm_ticks=%u)", why, decrease, pm_ticks);
        return;
    }
    u64 bus_hz = udiv64((u64)decrease * DIVIDE_BY * PM_TIMER_HZ, pm_ticks, NULL);
    step_ok("ticks=%u vector=0x%x initial_count=%u divide=%u hlt_wakeups=%u one_shot_decrease=%u over pm_ticks=%u "
            "(bus ~%uMHz)",
            counted, VECTOR_LAPIC_TIMER, PERIODIC_INITIAL_COUNT, DIVIDE_BY, stats.hlt_wakeups, decrease, pm_ticks,
            (u32)udiv64(bus_hz + 500000, 1000000, NULL));
}
