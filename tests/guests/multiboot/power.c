/* ACPI 6.4, 4.8.3.2.1 "PM1 Control Registers" and 16.1.7 "Transitioning to the S5 state". */
#include "power.h"
#include "acpi.h"
#include "io.h"
#include "kprintf.h"

#define PM1_CNT_SLP_TYP_SHIFT 10       /* SLP_TYPx: bits 10-12 */
#define PM1_CNT_SLP_TYP_MASK (7 << 10)
#define PM1_CNT_SLP_EN (1 << 13)       /* SLP_EN: write-only, starts the sleep transition */
#define ISA_DEBUG_EXIT_PORT 0x501      /* QEMU isa-debug-exit: exit status (value << 1) | 1 */
#define ISA_DEBUG_EXIT_NO_POWEROFF 0x31
/* Iterations to give the machine time to act on SLP_EN before calling it a failure. */
#define POWER_OFF_GRACE_LOOPS 10000000

void power_off(void) {
    cpu_cli();
    if (acpi.pm1a_cnt && acpi.have_s5) {
        u16 port = (u16)acpi.pm1a_cnt;
        u16 value = (u16)(inw(port) & ~(PM1_CNT_SLP_TYP_MASK | PM1_CNT_SLP_EN));
        value |= (u16)((acpi.slp_typa & 7) << PM1_CNT_SLP_TYP_SHIFT);
        outw(port, value);
        outw(port, value | PM1_CNT_SLP_EN);
        for (volatile u32 i = 0; i < POWER_OFF_GRACE_LOOPS; i++) {
        }
        kprintf("poweroff: FAIL PM1a_CNT=0x%x write 0x%x did not power off\n", acpi.pm1a_cnt, value | PM1_CNT_SLP_EN);
    } else {
        kprintf("poweroff: FAIL no ACPI PM1a_CNT or \\_S5 to power off with\n");
    }
    outw(ISA_DEBUG_EXIT_PORT, ISA_DEBUG_EXIT_NO_POWEROFF);
    cpu_halt_forever();
}
