/* Bounded waits for interrupt counters: a broken machine gives a FAIL line, never a hang. */
#ifndef WAIT_H
#define WAIT_H

#include "types.h"

/* Busy-poll iterations allowed while waiting for the first interrupts of a source. */
#define WAIT_BUSY_POLL_LIMIT 200000000u

struct wait_stats {
    u32 busy_polls; /* loop iterations spent busy-polling */
    u32 hlt_wakeups; /* HLTs executed */
};

/*
 * Waits, with IF=1, until *counter reaches `target`. First busy-polls (bounded by
 * WAIT_BUSY_POLL_LIMIT) until it reaches `proof`: that proves the source fires and is acknowledged
 * without trusting HLT. Then "sti; hlt" until `target`, at most `hlt_limit` times. Returns with
 * IF=0: NULL on success, else why it gave up.
 */
const char *wait_for_interrupts(volatile u32 *counter, u32 proof, u32 target, u32 hlt_limit,
                                struct wait_stats *stats);

#endif
