/* Protected-mode helpers: a ring 3 → ring 0 round trip through a DPL 3 interrupt gate (the
 * CPU switches to SS0:ESP0 of the TSS, SDM Vol. 3A §6.12.1) and IDT gates that report EFLAGS. */
#include "lib.h"

    .text
    .globl ring3_round_trip, ring0_from_ring3, if_probe
/* u32 ring3_round_trip(void): IRET to ring 3, run HLT there (#GP(0), recovered), INT 0x80;
 * ring0_from_ring3 stores the frame it received in r3_frame and its ESP in r3_handler_esp. */
ring3_round_trip:
    pushal
    movl %esp, r3_saved_esp
    pushl $SEL_UDATA32
    pushl $user_stack_top
    pushl $0x2                   /* EFLAGS: IF=0, IOPL=0 */
    pushl $SEL_UCODE32
    pushl $1f
    iretl
1:  movw $SEL_UDATA32, %ax
    movw %ax, %ds
    movw %ax, %es
    movl %cs, %eax
    movl %eax, r3_user_cs
    movl $2f, recover_eip
    hlt
2:  movl last_trap, %eax
    movl %eax, r3_faults
    movl last_trap + 4, %eax
    movl %eax, r3_faults + 4
    movl $3f, recover_eip
    int $0x83                    /* DPL 0 gate from CPL 3: #GP(0x83 * 8 + 2) */
3:  movl last_trap, %eax
    movl %eax, r3_faults + 8
    movl last_trap + 4, %eax
    movl %eax, r3_faults + 12
    int $0x80
ring0_from_ring3:
    movl %esp, %ss:r3_handler_esp
    movw $SEL_DATA32, %ax
    movw %ax, %ds
    movw %ax, %es
    movl (%esp), %eax
    movl %eax, r3_frame
    movl 4(%esp), %eax
    movl %eax, r3_frame + 4
    movl 8(%esp), %eax
    movl %eax, r3_frame + 8
    movl 12(%esp), %eax
    movl %eax, r3_frame + 12
    movl 16(%esp), %eax
    movl %eax, r3_frame + 16
    movl %cs, %eax
    movl %eax, r3_handler_cs
    movl r3_saved_esp, %esp
    popal
    ret

/* IRQ 0 (PIT) handler: counts and acknowledges at the 8259 (non-specific EOI). */
    .globl pm_irq0
pm_irq0:
    incl %ss:irq_count
    pushl %eax
    movb $0x20, %al
    outb %al, $0x20
    popl %eax
    iretl

/* Interrupt handler that stores its EFLAGS (IF tells an interrupt gate from a trap gate). */
if_probe:
    pushfl
    popl probe_flags
    iretl

    .data
    .globl r3_frame, r3_handler_esp, r3_handler_cs, r3_user_cs, probe_flags, user_stack_top
r3_saved_esp: .long 0
r3_handler_esp: .long 0
r3_handler_cs: .long 0
r3_user_cs: .long 0
r3_frame: .fill 5, 4, 0
probe_flags: .long 0
    .globl r3_faults, irq_count
r3_faults: .fill 4, 4, 0
irq_count: .long 0
    .bss
    .space 4096
user_stack_top:
