/* CMOS RAM / MC146818 RTC registers through ports 0x70/0x71. */
#ifndef CMOS_H
#define CMOS_H

#include "types.h"

#define RTC_SECONDS 0x00
#define RTC_MINUTES 0x02
#define RTC_HOURS 0x04
#define RTC_DAY_OF_WEEK 0x06
#define RTC_DAY_OF_MONTH 0x07
#define RTC_MONTH 0x08
#define RTC_YEAR 0x09
#define RTC_REG_A 0x0A
#define RTC_REG_B 0x0B
#define RTC_REG_C 0x0C
#define RTC_REG_D 0x0D
#define CMOS_CENTURY 0x32      /* IBM PC/AT century byte (BCD) */
#define RTC_A_UIP 0x80         /* update in progress */
#define RTC_A_DV_32KHZ 0x20    /* DV2-0 = 010: 32.768 kHz time base, oscillator on */
#define RTC_B_SET 0x80
#define RTC_B_PIE 0x40         /* periodic interrupt enable */
#define RTC_B_UIE 0x10         /* update-ended interrupt enable */
#define RTC_B_DM_BINARY 0x04   /* data mode: 1 = binary, 0 = BCD */
#define RTC_B_24H 0x02         /* 1 = 24-hour mode */
#define RTC_C_IRQF 0x80
#define RTC_C_PF 0x40
#define RTC_C_UF 0x10
#define RTC_D_VRT 0x80         /* valid RAM and time */
#define RTC_HOUR_PM 0x80       /* 12-hour mode: PM flag in the hours register */

u8 cmos_read(u8 reg);
void cmos_write(u8 reg, u8 value);

#endif
