/* Step "pmtimer": the ACPI PM timer advances across a busy loop and never runs backwards. */
#include "acpi.h"
#include "pmtimer.h"
#include "report.h"
#include "steps.h"

#define BUSY_LOOP_ITERATIONS 100000 /* ~0.1 ms on hardware; under kvm_pvm each iteration costs microseconds */
#define EXTRA_READ_LIMIT 50000000
#define MONOTONIC_READS 1000

void step_pmtimer(void) {
    step_begin("pmtimer");
    if (!pmtimer_present()) {
        step_skip("no PM_TMR_BLK in the FADT");
        return;
    }
    u32 t0 = pmtimer_read();
    for (volatile u32 i = 0; i < BUSY_LOOP_ITERATIONS; i++) {
    }
    u32 t1 = pmtimer_read(), extra_reads = 0;
    while (pmtimer_elapsed(t0, t1) == 0 && extra_reads++ < EXTRA_READ_LIMIT) t1 = pmtimer_read();
    u32 delta = pmtimer_elapsed(t0, t1);
    if (delta == 0) {
        step_fail("port 0x%x stuck at 0x%x", acpi.pm_tmr, t0);
        return;
    }
    /* Consecutive reads must move forward by less than half the counter range (no backwards step). */
    u32 half_range = acpi.pm_tmr_32bit ? 0x80000000u : 0x800000u, prev = t1;
    for (u32 i = 0; i < MONOTONIC_READS; i++) {
        u32 now = pmtimer_read();
        if (pmtimer_elapsed(prev, now) >= half_range) {
            step_fail("went backwards from 0x%x to 0x%x", prev, now);
            return;
        }
        prev = now;
    }
    step_ok("port=0x%x width=%ubit start=0x%x advanced_by=%u over %u busy iterations (+%u extra reads)", acpi.pm_tmr,
            acpi.pm_tmr_32bit ? 32 : 24, t0, delta, BUSY_LOOP_ITERATIONS, extra_reads);
}
