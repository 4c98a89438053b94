/* The ACPI power-management timer (3.579545 MHz, 24 or 32 bits). */
#ifndef PMTIMER_H
#define PMTIMER_H

#include "types.h"

#define PM_TIMER_HZ 3579545

/* 1 when the FADT gave a PM_TMR_BLK port. */
int pmtimer_present(void);
u32 pmtimer_read(void);
/* Ticks from `earlier` to `later`, modulo the counter width (24 or 32 bits). */
u32 pmtimer_elapsed(u32 earlier, u32 later);

#endif
