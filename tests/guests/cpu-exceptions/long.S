/* Long-mode exceptions through the 64-bit IDT (SDM Vol. 3A §6.14): each test records the
 * vector, error code and RIP the CPU pushed (last_trap), copied to lm_vec/lm_err/lm_rip. */
#include "lib.h"

.macro LMTEST i, insn, pre=nop
    movl $9f, recover_rip(%rip)
    movl $0xffffffff, last_trap(%rip)
    movl $8f, lm_start + 4 * \i(%rip)
    movl $9f, lm_end + 4 * \i(%rip)
    \pre
8:  \insn
9:  movl last_trap(%rip), %eax
    movl %eax, lm_vec + 4 * \i(%rip)
    movl last_trap + 4(%rip), %eax
    movl %eax, lm_err + 4 * \i(%rip)
    movl last_trap + 8(%rip), %eax
    movl %eax, lm_rip + 4 * \i(%rip)
.endm

    .code64
    .globl long_exceptions
long_exceptions:
    pushq %rbx
    LMTEST 0, "divl %ecx", "xorl %ecx, %ecx"
    LMTEST 1, "ud2"
    LMTEST 2, "int3"
    LMTEST 3, "movw %ax, %ds", "movw $0x1000, %ax"
    LMTEST 4, "movq (%rax), %rax", "movabsq $0x8000000000000000, %rax"
    LMTEST 5, "movl (%rax), %eax", "movl $0x40000000, %eax"
    LMTEST 6, "nop", "pushfq; orq $0x100, (%rsp); popfq"
    LMTEST 7, ".byte 0xce"
    LMTEST 8, "movw %ax, %es", "movw $0x50, %ax"
    movw $0x10, %ax
    movw %ax, %es
    /* IRQ 0 through the 64-bit IDT vector 0x20 (main.c programmed the 8259). */
    leaq idt64(%rip), %rbx
    movl $lm_irq0, %eax
    movw %ax, 0x20 * 16(%rbx)
    movw $SEL_CODE64, 0x20 * 16 + 2(%rbx)
    movw $0x8e00, 0x20 * 16 + 4(%rbx)
    shrl $16, %eax
    movw %ax, 0x20 * 16 + 6(%rbx)
    movl $0, 0x20 * 16 + 8(%rbx)
    movb $0x30, %al
    outb %al, $0x43
    movw $1000, %ax
    outb %al, $0x40
    movb %ah, %al
    outb %al, $0x40
    movl $4000000, %ecx
    sti
1:  cmpl $0, lm_irq_count(%rip)
    jne 2f
    loop 1b
2:  cli
    movw $0x10, %ax
    movw %ax, %ds
    popq %rbx
    xorl %eax, %eax
    ret

lm_irq0:
    incl lm_irq_count(%rip)
    pushq %rax
    movb $0x20, %al
    outb %al, $0x20
    popq %rax
    iretq
    .code32

    .data
    .globl lm_vec, lm_err, lm_rip, lm_start, lm_end
    .globl lm_irq_count
lm_irq_count: .long 0
lm_vec: .fill 9, 4, 0
lm_err: .fill 9, 4, 0
lm_rip: .fill 9, 4, 0
lm_start: .fill 9, 4, 0
lm_end: .fill 9, 4, 0
