/* rx86 Multiboot test kernel: runs each step, prints one result line per step on COM1, powers off. */
#include "arch.h"
#include "idt.h"
#include "kprintf.h"
#include "pic.h"
#include "power.h"
#include "report.h"
#include "steps.h"
#include "uart.h"

void kmain(u32 magic, const struct multiboot_info *info);
void kmain(u32 magic, const struct multiboot_info *info) {
    uart_init();
    kprintf("\nmode: %u %s\n", ARCH_MODE_BITS, ARCH_MODE_DESCRIPTION);
    kprintf("rx86 multiboot test kernel\n");
    idt_init();
    /* Move the PIC vectors off the exception vectors before anything can set IF. */
    pic_remap();
    step_multiboot(magic, info);
    step_acpi();
    step_rtc();
    step_pit_pic();
    /* Before the local APIC steps: they leave LINT0, the PIC's path to the CPU, masked. */
    if (cmdline_has(info, "timer-rates")) step_timer_rates();
    step_ioapic_lapic();
    step_lapic_timer();
    step_pmtimer();
    report_done();
    power_off();
}
