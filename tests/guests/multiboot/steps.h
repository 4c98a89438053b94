/* The test steps, in the order kmain runs them; each prints exactly one result line. */
#ifndef STEPS_H
#define STEPS_H

#include "multiboot.h"

#define VECTOR_PIT_PIC 0x20      /* PIC IRQ0 after the remap */
#define VECTOR_RTC_PIC 0x28      /* PIC IRQ8 after the remap */
#define VECTOR_PIT_IOAPIC 0x40   /* IRQ0 through the IOAPIC */
#define VECTOR_LAPIC_TIMER 0x41
#define TICKS_TO_COUNT 10        /* interrupts each timer step waits for */
#define TICKS_BUSY_POLLED 3      /* of which busy-polled before trusting HLT */

void step_multiboot(u32 magic, const struct multiboot_info *info);
/* True when the Multiboot command line contains `word`. */
int cmdline_has(const struct multiboot_info *info, const char *word);
void step_acpi(void);
void step_rtc(void);
void step_pit_pic(void);
void step_ioapic_lapic(void);
void step_lapic_timer(void);
void step_pmtimer(void);
/* Only when the command line asks for it (`timer-rates`). */
void step_timer_rates(void);

#endif
