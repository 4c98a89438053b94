/*
 * Step "rtc": MC146818A date and time (UIP, BCD/binary, 12/24 h per register B), register ranges,
 * then periodic interrupts on IRQ8 and one update-ended interrupt, proving the clock ticks.
 */
#include "cmos.h"
#include "idt.h"
#include "io.h"
#include "pic.h"
#include "report.h"
#include "steps.h"
#include "wait.h"

#define RTC_IRQ 8
#define CASCADE_IRQ 2
#define RATE_256HZ 0x08          /* RS3-0: 32768 >> (8 - 1) = 256 Hz */
#define PERIODIC_HZ 256
#define PERIODIC_PROOF 4         /* periodic interrupts busy-polled before HLT is used */
#define UIP_POLL_LIMIT 1000000   /* an update cycle lasts under 2 ms; this is far longer */
#define CONSISTENT_READ_TRIES 8

struct rtc_time {
    u32 sec, min, hour, wday, day, month, year, century;
};

static volatile u32 periodic_count, update_count;

static void rtc_irq(u32 vector) {
    u8 flags = cmos_read(RTC_REG_C); /* reading C acknowledges the RTC and re-arms IRQ8 */
    if (flags & RTC_C_PF) periodic_count++;
    if (flags & RTC_C_UF) update_count++;
    pic_eoi((u8)(vector - PIC_VECTOR_BASE));
}

static int wait_uip_clear(void) {
    for (u32 i = 0; i < UIP_POLL_LIMIT; i++)
        if (!(cmos_read(RTC_REG_A) & RTC_A_UIP)) return 1;
    return 0;
}

static void read_raw(struct rtc_time *t) {
    t->sec = cmos_read(RTC_SECONDS);
    t->min = cmos_read(RTC_MINUTES);
    t->hour = cmos_read(RTC_HOURS);
    t->wday = cmos_read(RTC_DAY_OF_WEEK);
    t->day = cmos_read(RTC_DAY_OF_MONTH);
    t->month = cmos_read(RTC_MONTH);
    t->year = cmos_read(RTC_YEAR);
    t->century = cmos_read(CMOS_CENTURY);
}

static int same_time(const struct rtc_time *a, const struct rtc_time *b) {
    return a->sec == b->sec && a->min == b->min && a->hour == b->hour && a->day == b->day && a->month == b->month &&
           a->year == b->year;
}

static int bcd_valid(u32 v) { return (v & 0x0F) <= 9 && (v >> 4) <= 9; }
static u32 bcd_to_bin(u32 v) { return (v >> 4) * 10 + (v & 0x0F); }

/* Reads until two consecutive reads outside an update agree, then converts to binary 24 h. */
static const char *read_time(struct rtc_time *t, u8 reg_b) {
    struct rtc_time again;
    int consistent = 0;
    for (u32 i = 0; i < CONSISTENT_READ_TRIES && !consistent; i++) {
        if (!wait_uip_clear()) return "register A UIP never cleared";
        read_raw(t);
        if (!wait_uip_clear()) return "register A UIP never cleared";
        read_raw(&again);
        consistent = same_time(t, &again);
    }
    if (!consistent) return "time changed on every double read";
    int pm = 0;
    if (!(reg_b & RTC_B_24H)) {
        pm = (t->hour & RTC_HOUR_PM) != 0;
        t->hour &= (u32)~RTC_HOUR_PM;
    }
    if (!(reg_b & RTC_B_DM_BINARY)) {
        u32 *fields[] = {&t->sec, &t->min, &t->hour, &t->wday, &t->day, &t->month, &t->year};
        for (u32 i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
            if (!bcd_valid(*fields[i])) return "a time register is not valid BCD";
            *fields[i] = bcd_to_bin(*fields[i]);
        }
    }
    /* The century byte is BCD by IBM PC/AT convention, whatever the data mode. */
    t->century = bcd_valid(t->century) ? bcd_to_bin(t->century) : 0;
    if (!(reg_b & RTC_B_24H)) {
        if (t->hour < 1 || t->hour > 12) return "12-hour mode hour outside 1-12";
        t->hour = (t->hour % 12) + (pm ? 12 : 0);
    }
    if (t->sec > 59 || t->min > 59 || t->hour > 23) return "time register out of range";
    if (t->day < 1 || t->day > 31 || t->month < 1 || t->month > 12 || t->year > 99) return "date register out of range";
    return NULL;
}

void step_rtc(void) {
    step_begin("rtc");
    u8 reg_a = cmos_read(RTC_REG_A), reg_b = cmos_read(RTC_REG_B), reg_d = cmos_read(RTC_REG_D);
    if (!(reg_d & RTC_D_VRT)) {
        step_fail("register D VRT clear (0x%x): RTC reports invalid time", reg_d);
        return;
    }
    if (reg_b & RTC_B_SET) {
        step_fail("register B SET bit is on (0x%x): clock updates are halted", reg_b);
        return;
    }
    struct rtc_time before, after;
    const char *why = read_time(&before, reg_b);
    if (why) {
        step_fail("%s (A=0x%x B=0x%x)", why, reg_a, reg_b);
        return;
    }

    periodic_count = update_count = 0;
    idt_set_handler(VECTOR_RTC_PIC, rtc_irq);
    cmos_write(RTC_REG_A, RTC_A_DV_32KHZ | RATE_256HZ);
    cmos_read(RTC_REG_C);
    cmos_write(RTC_REG_B, reg_b | RTC_B_PIE | RTC_B_UIE);
    pic_unmask(CASCADE_IRQ);
    pic_unmask(RTC_IRQ);
    struct wait_stats periodic_stats, update_stats;
    why = wait_for_interrupts(&periodic_count, PERIODIC_PROOF, PERIODIC_PROOF, 0, &periodic_stats);
    /* One update per second; each periodic interrupt wakes HLT, so 3 s of them bound the wait. */
    if (!why) why = wait_for_interrupts(&update_count, 0, 1, 3 * PERIODIC_HZ, &update_stats);
    u32 periodic_total = periodic_count;
    cmos_write(RTC_REG_B, reg_b);
    cmos_write(RTC_REG_A, reg_a);
    cmos_read(RTC_REG_C);
    pic_mask(RTC_IRQ);
    pic_mask(CASCADE_IRQ);
    idt_clear_handler(VECTOR_RTC_PIC);
    if (why) {
        step_fail("IRQ8: %s (periodic=%u update=%u)", why, periodic_count, update_count);
        return;
    }
    why = read_time(&after, reg_b);
    if (why) {
        step_fail("second read: %s", why);
        return;
    }
    if (same_time(&before, &after)) {
        step_fail("update-ended interrupt arrived but the time did not advance");
        return;
    }
    u32 year = (before.century >= 19 && before.century <= 21 ? before.century : 20) * 100 + before.year;
    step_ok("%04u-%02u-%02u %02u:%02u:%02u wday=%u %s %s, irq8 periodic=%u at %uHz (busy-polled %u), update-ended "
            "seen, then %02u:%02u:%02u",
            year, before.month, before.day, before.hour, before.min, before.sec, before.wday,
            reg_b & RTC_B_DM_BINARY ? "binary" : "bcd", reg_b & RTC_B_24H ? "24h" : "12h", periodic_total,
            PERIODIC_HZ, PERIODIC_PROOF, after.hour, after.min, after.sec);
}
