/* Intel 8254 datasheet: control word format and mode 2 (rate generator). */
#include "pit.h"
#include "io.h"

#define PIT_CH0 0x40
#define PIT_CMD 0x43
#define PIT_INPUT_HZ 1193182
#define CW_CH0_LOHI_MODE2 0x34 /* SC=00 channel 0, RW=11 LSB then MSB, M=010 rate generator, binary */
#define CW_CH0_LOHI_MODE0 0x30 /* SC=00 channel 0, RW=11 LSB then MSB, M=000 interrupt on terminal count */

u32 pit_start_periodic(u32 hz) {
    u32 divisor = (PIT_INPUT_HZ + hz / 2) / hz;
    if (divisor > 0xFFFF) divisor = 0xFFFF;
    if (divisor < 2) divisor = 2;
    outb(PIT_CMD, CW_CH0_LOHI_MODE2);
    outb(PIT_CH0, (u8)divisor);
    outb(PIT_CH0, (u8)(divisor >> 8));
    return divisor;
}

void pit_stop(void) {
    outb(PIT_CMD, CW_CH0_LOHI_MODE0);
    outb(PIT_CH0, 1);
    outb(PIT_CH0, 0);
}
