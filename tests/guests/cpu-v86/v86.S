/* Virtual-8086 mode (SDM Vol. 3A ch. 20): enter_v86(iopl) IRETs with EFLAGS.VM into the
 * position-independent 16-bit chunk v86_chunk (copied to 0x9000 = segment 0x900 by main.c).
 * INT 0x81 leaves: through its DPL 3 gate when IOPL = 3, through the #GP monitor otherwise. */
#include "lib.h"
#define V86_SEG 0x900
#define V86_LINEAR 0x9000
#define R(x) ((x) - v86_chunk)

    .text
    .globl enter_v86, v86_exit, v86_int_handler, v86_irq0
enter_v86:
    pushal
    movl %esp, v86_saved_esp
    movl 40(%esp), %ecx          /* entry: offset in the chunk */
    movl 36(%esp), %ebx          /* IOPL */
    shll $12, %ebx
    orl $0x20002, %ebx           /* VM | reserved bit 1 */
    pushl $0                     /* GS */
    pushl $0                     /* FS */
    pushl $0                     /* DS */
    pushl $0                     /* ES */
    pushl $0                     /* SS */
    pushl $0x7c00                /* ESP */
    pushl %ebx                   /* EFLAGS */
    pushl $V86_SEG               /* CS */
    pushl %ecx                   /* EIP */
    iretl
v86_exit:
    movw $SEL_DATA32, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movl v86_saved_esp, %esp
    popal
    ret

/* INT 0x82 from v8086 mode with IOPL 3: a ring 0 handler through a DPL 3 gate; the frame
 * holds EIP CS EFLAGS ESP SS ES DS FS GS (SDM Figure 20-5). DS is null here: use SS. */
v86_int_handler:
    pushl %eax
    pushl %ecx
    xorl %ecx, %ecx
1:  movl %ss:8(%esp, %ecx, 4), %eax
    movl %eax, %ss:v86_int_frame(, %ecx, 4)
    incl %ecx
    cmpl $9, %ecx
    jne 1b
    incl %ss:v86_int_count
    popl %ecx
    popl %eax
    iretl

/* IRQ 0 taken in v8086 mode: counts in the chunk's copy at 0x9000 and acknowledges. */
v86_irq0:
    incw %ss:V86_LINEAR + R(v86_irq_count)
    pushl %eax
    movb $0x20, %al
    outb %al, $0x20
    popl %eax
    iretl

    .code16
    .globl v86_chunk, v86_chunk_end, v86_out, v86_code, v86_irq_code, v86_irq_count
v86_chunk:
v86_code:
    movw %cs, %ax
    movw %ax, %ds
    movw %ax, R(v86_out)
    movw $0x1234, %bx
    int $0x82
    movw %bx, R(v86_out) + 2     /* the INT handler kept BX */
    inb $0x80, %al               /* allowed by the I/O bitmap */
    movw $1, R(v86_out) + 4
    inb $0x81, %al               /* denied: #GP(0) */
    outb %al, $0x80
    cli
    pushfw
    popw %ax
    movw %ax, R(v86_out) + 6
    int $0x81

/* With IOPL 3: STI, wait (bounded) for IRQ 0 from the PIT that main.c armed, CLI, leave. */
v86_irq_code:
    sti
    movl $4000000, %ecx
1:  cmpw $0, %cs:R(v86_irq_count)
    jne 2f
    addr32 loop 1b
2:  cli
    int $0x81
    .align 4
v86_out: .fill 4, 2, 0
v86_irq_count: .word 0
v86_chunk_end:
    .code32

    .data
    .globl v86_int_frame, v86_int_count
v86_saved_esp: .long 0
v86_int_count: .long 0
v86_int_frame: .fill 9, 4, 0
