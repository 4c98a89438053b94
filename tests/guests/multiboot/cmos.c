/* Motorola MC146818A datasheet: address/data port pair (PC ports 0x70/0x71). */
#include "cmos.h"
#include "io.h"

#define CMOS_INDEX 0x70
#define CMOS_DATA 0x71

u8 cmos_read(u8 reg) {
    outb(CMOS_INDEX, reg);
    return inb(CMOS_DATA);
}

void cmos_write(u8 reg, u8 value) {
    outb(CMOS_INDEX, reg);
    outb(CMOS_DATA, value);
}
