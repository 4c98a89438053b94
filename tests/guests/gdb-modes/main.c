/* gdb-modes, the 32-bit C part: a nested call for a backtrace in protected mode and the
 * variable the gdb tests watch. `noipa` keeps gcc from cloning or inlining the functions,
 * so gdb sees them under their own names. */

/* Written in protected mode (pm_inner: 42 * 3 = 126) and in long mode (long_inner: 100). */
volatile unsigned int watched;

static void outb(unsigned short port, unsigned char v) {
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

/* Writes a line to COM1 (the UART needs no set-up to transmit on rx86 or QEMU). */
void serial_puts(const char *s) {
    for (; *s; s++)
        outb(0x3f8, (unsigned char)*s);
}

__attribute__((noipa)) unsigned int pm_inner(unsigned int x) {
    watched = x * 3;
    return watched + 1;
}

__attribute__((noipa)) unsigned int pm_outer(unsigned int x) {
    return pm_inner(x + 1) + 2;
}

/* The local APIC's version register, read through its xAPIC MMIO page at the reset base
 * (paging is off): a memory-mapped I/O access for the trace test. */
#define LAPIC_VERSION ((volatile unsigned int *)0xfee00030)
unsigned int apic_version;

/* Called from boot.S in 32-bit protected mode. */
void pm_main(void) {
    apic_version = *LAPIC_VERSION;
    serial_puts("gdb-modes: protected mode\n");
    pm_outer(41);
}
