/* Real-mode exceptions through the IVT (SDM Vol. 3A §20.1.4): each test records the vector
 * taken and the IP the CPU pushed; main.c compares them with the test's start/end labels. */
#include "lib.h"
#define R(x) ((x) - real_chunk)

.macro RMTEST i, insn, pre=nop
    movw $R(9f), %cs:R(rm_recover)
    movb $0xff, %cs:R(rm_vec + \i)
    movw $R(8f), %cs:R(rm_start + 2 * \i)
    movw $R(9f), %cs:R(rm_end + 2 * \i)
    movb $\i, %cs:R(rm_cur)
    \pre
8:  \insn
9:
.endm

    .text
    .code16
    .globl real_chunk, real_chunk_end, real_exceptions
real_chunk:
real_exceptions:
    xorw %ax, %ax
    movw %ax, %es
    xorw %bx, %bx
    xorw %di, %di
1:  movw %cs:R(rm_isr_table)(%bx), %ax
    movw %ax, %es:(%di)
    movw $GUEST_SEG, %es:2(%di)
    addw $2, %bx
    addw $4, %di
    cmpw $32, %bx
    jne 1b
    RMTEST 0, "divb %bl", "xorb %bl, %bl"
    RMTEST 1, "ud2"
    RMTEST 2, "int3"
    RMTEST 3, "into", "movb $0x7f, %al; addb $1, %al"
    RMTEST 4, "boundw %ax, %cs:rm_bounds - real_chunk", "movw $5, %ax"
    RMTEST 5, "nop", "pushfw; popw %ax; orw $0x100, %ax; pushw %ax; popfw"
    RMTEST 6, "int $0x0b"
    /* IRQ 0 through IVT vector 0x20 (main.c programmed the 8259 and the PIT). */
    movw $R(rm_irq0), %es:0x80
    movw $GUEST_SEG, %es:0x82
    movw $0x30, %ax              /* PIT channel 0, mode 0, lobyte/hibyte, count 1000 */
    outb %al, $0x43
    movw $1000, %ax
    outb %al, $0x40
    movb %ah, %al
    outb %al, $0x40
    movl $4000000, %ecx
    sti
1:  cmpw $0, %cs:R(rm_irq_count)
    jne 2f
    addr32 loop 1b
2:  cli
    xorl %eax, %eax
    lretw

/* IVT handlers 0-15: record vector and pushed IP, resume at rm_recover with TF cleared. */
.macro RMISR v
rm_isr\v:
    pushw $\v
    jmp rm_common
.endm
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    RMISR \v
    .endr
rm_common:
    pushw %bp
    pushw %bx
    movw %sp, %bp
    movzbw %cs:R(rm_cur), %bx
    movw 4(%bp), %ax
    movb %al, %cs:R(rm_vec)(%bx)
    movw 6(%bp), %ax
    addw %bx, %bx
    movw %ax, %cs:R(rm_ip)(%bx)
    movw %cs:R(rm_recover), %ax
    movw %ax, 6(%bp)
    andw $~0x100, 10(%bp)
    popw %bx
    popw %bp
    addw $2, %sp
    iretw

rm_irq0:
    incw %cs:R(rm_irq_count)
    pushw %ax
    movb $0x20, %al
    outb %al, $0x20
    popw %ax
    iretw

rm_isr_table:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    .word R(rm_isr\v)
    .endr

    .globl rm_vec, rm_ip, rm_start, rm_end
rm_bounds: .word 10, 20
    .globl rm_irq_count
rm_irq_count: .word 0
rm_recover: .word 0
rm_cur: .byte 0
rm_vec: .fill 7, 1, 0
    .align 2
rm_ip: .fill 8, 2, 0
rm_start: .fill 8, 2, 0
rm_end: .fill 8, 2, 0
real_chunk_end:
    .code32
