/* The I/O APIC (82093AA) through IOREGSEL/IOWIN. */
#ifndef IOAPIC_H
#define IOAPIC_H

#include "types.h"

#define IOAPIC_REG_ID 0x00
#define IOAPIC_REG_VERSION 0x01
#define IOREDTBL_MASKED (1 << 16)
#define IOREDTBL_LEVEL (1 << 15)
#define IOREDTBL_ACTIVE_LOW (1 << 13)

void ioapic_set_base(u32 base);
u32 ioapic_read(u32 reg);
void ioapic_write(u32 reg, u32 value);
/* Number of redirection entries (version register bits 23-16, plus one). */
u32 ioapic_pin_count(void);
/* Writes redirection entry `pin`: destination APIC ID in the high word first, then the low word. */
void ioapic_route(u32 pin, u32 low, u8 dest_apic_id);
void ioapic_mask(u32 pin);

#endif
