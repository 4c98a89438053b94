/* Intel SDM Vol. 3A, 6.10 "Interrupt Descriptor Table"; the gate format is the variant's (arch.h). */
#include "idt.h"
#include "arch.h"
#include "lapic.h"
#include "pic.h"
#include "report.h"

#define IDT_ENTRIES 256
#define ISR_STUB_SIZE 16
#define FIRST_IRQ_VECTOR 32

extern char isr_stubs[];
static struct idt_gate idt[IDT_ENTRIES] __attribute__((aligned(8)));
static irq_handler handlers[IDT_ENTRIES];
volatile u32 unexpected_interrupts;
volatile u32 last_unexpected_vector;

void idt_init(void) {
    for (u32 v = 0; v < IDT_ENTRIES; v++) idt_gate_set(&idt[v], (uptr)isr_stubs + v * ISR_STUB_SIZE);
    struct idt_pointer ptr = {sizeof(idt) - 1, (uptr)idt};
    __asm__ volatile("lidt %0" : : "m"(ptr));
}

void idt_set_handler(u8 vector, irq_handler handler) { handlers[vector] = handler; }
void idt_clear_handler(u8 vector) { handlers[vector] = NULL; }

/* Acknowledges an interrupt nobody asked for, so it cannot block lower-priority ones. */
static void acknowledge_unexpected(u32 vector) {
    unexpected_interrupts++;
    last_unexpected_vector = vector;
    if (vector >= PIC_VECTOR_BASE && vector < PIC_VECTOR_BASE + 16) {
        pic_eoi((u8)(vector - PIC_VECTOR_BASE));
    } else if (vector != LAPIC_SPURIOUS_VECTOR) {
        lapic_eoi();
    }
}

void isr_dispatch(struct isr_frame *frame);
void isr_dispatch(struct isr_frame *frame) {
    u32 vector = (u32)frame->vector;
    if (vector < FIRST_IRQ_VECTOR) report_exception(vector, frame->error, frame->ip);
    if (handlers[vector])
        handlers[vector](vector);
    else
        acknowledge_unexpected(vector);
}
