/* Intel 8259A datasheet: ICW1-ICW4 initialisation, OCW1 masks, OCW2 non-specific EOI. */
#include "pic.h"
#include "io.h"

#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xA0
#define PIC2_DATA 0xA1
#define ICW1_INIT_ICW4 0x11    /* ICW1: edge triggered, cascade, ICW4 needed */
#define ICW3_MASTER_SLAVE_ON_IR2 0x04
#define ICW3_SLAVE_ID_2 0x02
#define ICW4_8086 0x01         /* 8086/8088 mode, normal EOI */
#define OCW2_NON_SPECIFIC_EOI 0x20
#define CASCADE_IRQ 2

void pic_remap(void) {
    outb(PIC1_CMD, ICW1_INIT_ICW4);
    outb(PIC2_CMD, ICW1_INIT_ICW4);
    outb(PIC1_DATA, PIC_VECTOR_BASE);
    outb(PIC2_DATA, PIC_VECTOR_BASE + 8);
    outb(PIC1_DATA, ICW3_MASTER_SLAVE_ON_IR2);
    outb(PIC2_DATA, ICW3_SLAVE_ID_2);
    outb(PIC1_DATA, ICW4_8086);
    outb(PIC2_DATA, ICW4_8086);
    pic_mask_all();
}

void pic_mask_all(void) {
    outb(PIC1_DATA, 0xFF);
    outb(PIC2_DATA, 0xFF);
}

void pic_unmask(u8 irq) {
    if (irq >= 8) {
        outb(PIC2_DATA, inb(PIC2_DATA) & (u8)~(1 << (irq - 8)));
        irq = CASCADE_IRQ;
    }
    outb(PIC1_DATA, inb(PIC1_DATA) & (u8)~(1 << irq));
}

void pic_mask(u8 irq) {
    if (irq >= 8)
        outb(PIC2_DATA, inb(PIC2_DATA) | (u8)(1 << (irq - 8)));
    else
        outb(PIC1_DATA, inb(PIC1_DATA) | (u8)(1 << irq));
}

void pic_eoi(u8 irq) {
    if (irq >= 8) outb(PIC2_CMD, OCW2_NON_SPECIFIC_EOI);
    outb(PIC1_CMD, OCW2_NON_SPECIFIC_EOI);
}
