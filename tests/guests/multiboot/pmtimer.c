/* ACPI 6.4, 4.8.3.3 "Power Management Timer (PM_TMR)". */
#include "pmtimer.h"
#include "acpi.h"
#include "io.h"

#define PM_TMR_24BIT_MASK 0x00FFFFFF

int pmtimer_present(void) { return acpi.pm_tmr != 0; }

u32 pmtimer_read(void) {
    u32 value = inl((u16)acpi.pm_tmr);
    return acpi.pm_tmr_32bit ? value : value & PM_TMR_24BIT_MASK;
}

u32 pmtimer_elapsed(u32 earlier, u32 later) {
    u32 delta = later - earlier;
    return acpi.pm_tmr_32bit ? delta : delta & PM_TMR_24BIT_MASK;
}
