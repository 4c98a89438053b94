/* ACPI soft-off (S5) with an isa-debug-exit fallback. */
#ifndef POWER_H
#define POWER_H

/* Writes SLP_TYP(\_S5) | SLP_EN to PM1a_CNT; if the machine is still running, reports it,
 * writes 0x31 to the isa-debug-exit port and halts with interrupts off. Never returns. */
void power_off(void) __attribute__((noreturn));

#endif
