/* The IDT: 256 interrupt gates, exceptions reported as failures, IRQs dispatched to handlers. */
#ifndef IDT_H
#define IDT_H

#include "types.h"

/* An interrupt handler; it must acknowledge (EOI) its own interrupt controller. */
typedef void (*irq_handler)(u32 vector);

void idt_init(void);
void idt_set_handler(u8 vector, irq_handler handler);
void idt_clear_handler(u8 vector);

/* Interrupts on vectors without a handler since boot, and the last such vector. */
extern volatile u32 unexpected_interrupts;
extern volatile u32 last_unexpected_vector;

#endif
