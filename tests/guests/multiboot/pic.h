/* The two cascaded 8259A PICs. */
#ifndef PIC_H
#define PIC_H

#include "types.h"

#define PIC_VECTOR_BASE 0x20 /* master IRQ0-7 -> 0x20-0x27, slave IRQ8-15 -> 0x28-0x2F */

/* Reinitialises both PICs with vectors at PIC_VECTOR_BASE and every IRQ masked. */
void pic_remap(void);
void pic_mask_all(void);
void pic_unmask(u8 irq);
void pic_mask(u8 irq);
/* Non-specific EOI to the PIC(s) that delivered irq. */
void pic_eoi(u8 irq);

#endif
