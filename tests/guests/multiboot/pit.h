/* 8254 PIT channel 0. */
#ifndef PIT_H
#define PIT_H

#include "types.h"

/* Programs channel 0 as a rate generator (mode 2) at about hz; returns the divisor used. */
u32 pit_start_periodic(u32 hz);
/* Reprograms channel 0 to mode 0 with a short count, so it stops producing periodic edges. */
void pit_stop(void);

#endif
