#include "wait.h"
#include "io.h"

const char *wait_for_interrupts(volatile u32 *counter, u32 proof, u32 target, u32 hlt_limit,
                                struct wait_stats *stats) {
    stats->busy_polls = 0;
    stats->hlt_wakeups = 0;
    cpu_sti();
    while (*counter < proof) {
        if (++stats->busy_polls >= WAIT_BUSY_POLL_LIMIT) {
            cpu_cli();
            return *counter ? "interrupts stopped arriving while busy-polling"
                            : "no interrupt arrived while busy-polling";
        }
    }
    for (;;) {
        cpu_cli();
        if (*counter >= target) return NULL;
        if (stats->hlt_wakeups >= hlt_limit) return "HLT wakeup limit reached before enough interrupts";
        stats->hlt_wakeups++;
        cpu_sti_hlt();
    }
}
