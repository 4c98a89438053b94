/* Intel SDM Vol. 3A, 6.10 "Interrupt Descriptor Table" and 6.11 "IDT Descriptors". */
#include "idt.h"
#include "lapic.h"
#include "pic.h"
#include "report.h"

#define IDT_ENTRIES 256
#define ISR_STUB_SIZE 16
#define KERNEL_CS 0x08
#define GATE_INTERRUPT_32 0x8E /* present, DPL 0, 32-bit interrupt gate */
#define FIRST_IRQ_VECTOR 32

struct idt_gate {
    u16 offset_low;
    u16 selector;
    u8 zero;
    u8 type_attr;
    u16 offset_high;
} __attribute__((packed));

struct idt_pointer {
    u16 limit;
    u32 base;
} __attribute__((packed));

extern char isr_stubs[];
static struct idt_gate idt[IDT_ENTRIES] __attribute__((aligned(8)));
static irq_handler handlers[IDT_ENTRIES];
volatile u32 unexpected_interrupts;
volatile u32 last_unexpected_vector;

void idt_init(void) {
    for (u32 v = 0; v < IDT_ENTRIES; v++) {
        u32 stub = (u32)isr_stubs + v * ISR_STUB_SIZE;
        idt[v].offset_low = (u16)stub;
        idt[v].selector = KERNEL_CS;
        idt[v].zero = 0;
        idt[v].type_attr = GATE_INTERRUPT_32;
        idt[v].offset_high = (u16)(stub >> 16);
    }
    struct idt_pointer ptr = {sizeof(idt) - 1, (u32)idt};
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
    u32 vector = frame->vector;
    if (vector < FIRST_IRQ_VECTOR) report_exception(vector, frame->error, frame->eip);
    if (handlers[vector])
        handlers[vector](vector);
    else
        acknowledge_unexpected(vector);
}
