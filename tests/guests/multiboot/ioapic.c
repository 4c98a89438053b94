/* Intel 82093AA I/O APIC datasheet, 3.0 "Register Description". */
#include "ioapic.h"
#include "io.h"

#define IOREGSEL 0x00
#define IOWIN 0x10
#define IOREDTBL_BASE 0x10 /* entry n: low dword at 0x10 + 2n, high dword at 0x11 + 2n */

static u32 base = 0xFEC00000;

void ioapic_set_base(u32 new_base) { base = new_base; }

u32 ioapic_read(u32 reg) {
    mmio_write32(base + IOREGSEL, reg);
    return mmio_read32(base + IOWIN);
}

void ioapic_write(u32 reg, u32 value) {
    mmio_write32(base + IOREGSEL, reg);
    mmio_write32(base + IOWIN, value);
}

u32 ioapic_pin_count(void) { return ((ioapic_read(IOAPIC_REG_VERSION) >> 16) & 0xFF) + 1; }

void ioapic_route(u32 pin, u32 low, u8 dest_apic_id) {
    ioapic_write(IOREDTBL_BASE + 2 * pin + 1, (u32)dest_apic_id << 24);
    ioapic_write(IOREDTBL_BASE + 2 * pin, low);
}

void ioapic_mask(u32 pin) {
    u32 reg = IOREDTBL_BASE + 2 * pin;
    ioapic_write(reg, ioapic_read(reg) | IOREDTBL_MASKED);
}
