/*
 * Step "timer-rates" (run only when the command line holds "timer-rates"): the PIT at
 * 1 kHz on IRQ0 and the RTC's periodic interrupt at 1024 Hz on IRQ8, both through the
 * PIC, counted over one second of PIT time while the CPU busy-polls (no HLT) a counter
 * that sits inside the polling function's own code, as firmware polls flags beside its
 * code (iPXE's entropy sampler). Each interrupt handler writes next to the code being
 * executed: an emulator must still deliver every interrupt on time and run the loop as
 * written. Over 1000 PIT ticks (0.99985 s at the 1193-count divisor) 1024 periodic
 * interrupts are due; the step wants 1023 or 1024.
 */
#include "cmos.h"
#include "idt.h"
#include "io.h"
#include "pic.h"
#include "pit.h"
#include "report.h"
#include "steps.h"

#define PIT_IRQ 0
#define RTC_IRQ 8
#define CASCADE_IRQ 2
#define PIT_HZ 1000
#define PIT_TICKS 1000                /* one second */
#define RATE_1024HZ 0x06              /* RS3-0: 32768 >> (6 - 1) = 1024 Hz */
#define POLL_LIMIT 400000000u         /* bounds the wait on a machine whose timers are dead */

/* The counters, inside the code of poll_counters (see there). */
extern volatile u32 timer_rates_counters[2];
/* Where the polling loop's code starts. */
extern const u8 timer_rates_loop[];

static void pit_irq(u32 vector) {
    timer_rates_counters[0]++;
    pic_eoi((u8)(vector - PIC_VECTOR_BASE));
}

static void rtc_irq(u32 vector) {
    if (cmos_read(RTC_REG_C) & RTC_C_PF) timer_rates_counters[1]++; /* reading C re-arms IRQ8 */
    pic_eoi((u8)(vector - PIC_VECTOR_BASE));
}

/* Busy-polls until the PIT counter reaches PIT_TICKS; returns the polls made. The
 * counters are data assembled into this function's code, 64 bytes before the loop. */
static u32 __attribute__((noinline)) poll_counters(void) {
    __asm__ volatile("jmp 1f\n"
                     ".balign 64\n"
                     ".globl timer_rates_counters\n"
                     "timer_rates_counters: .long 0, 0\n"
                     ".balign 64\n"
                     ".globl timer_rates_loop\n"
                     "timer_rates_loop:\n"
                     "1:\n" ::: "memory");
    u32 polls = 0;
    while (timer_rates_counters[0] < PIT_TICKS && polls < POLL_LIMIT) polls++;
    return polls;
}

void step_timer_rates(void) {
    step_begin("timer-rates");
    uptr flag_page = (uptr)timer_rates_counters >> 12, code_page = (uptr)timer_rates_loop >> 12;
    timer_rates_counters[0] = timer_rates_counters[1] = 0;
    u8 reg_a = cmos_read(RTC_REG_A), reg_b = cmos_read(RTC_REG_B);
    idt_set_handler(VECTOR_PIT_PIC, pit_irq);
    idt_set_handler(VECTOR_RTC_PIC, rtc_irq);
    cmos_write(RTC_REG_A, RTC_A_DV_32KHZ | RATE_1024HZ);
    cmos_read(RTC_REG_C);
    cmos_write(RTC_REG_B, (u8)((reg_b | RTC_B_PIE) & ~RTC_B_UIE));
    pit_start_periodic(PIT_HZ);
    pic_unmask(CASCADE_IRQ);
    pic_unmask(RTC_IRQ);
    pic_unmask(PIT_IRQ);
    cpu_sti();
    u32 polls = poll_counters();
    cpu_cli();
    u32 pit = timer_rates_counters[0], rtc = timer_rates_counters[1];
    pic_mask(PIT_IRQ);
    pic_mask(RTC_IRQ);
    pic_mask(CASCADE_IRQ);
    pit_stop();
    cmos_write(RTC_REG_B, reg_b);
    cmos_write(RTC_REG_A, reg_a);
    cmos_read(RTC_REG_C);
    idt_clear_handler(VECTOR_PIT_PIC);
    idt_clear_handler(VECTOR_RTC_PIC);
    if (flag_page != code_page) {
        step_fail("the counters (page 0x%x) are not on the polling loop's page (0x%x)", (u32)flag_page,
                  (u32)code_page);
    } else if (pit < PIT_TICKS) {
        step_fail("%u PIT interrupts in %u polls (rtc=%u)", pit, polls, rtc);
    } else if (rtc < 1023 || rtc > 1024) {
        step_fail("pit=%u rtc=%u, want rtc 1023 or 1024 (polls=%u)", pit, rtc, polls);
    } else {
        step_ok("pit=%u rtc=%u polls=%u", pit, rtc, polls);
    }
}
