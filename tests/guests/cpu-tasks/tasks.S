/* The other tasks of cpu-tasks (SDM Vol. 3A ch. 7). Each records what it sees in t_out and
 * switches back: B with JMP to the main task's TSS, C and D (nested: CALL, task gate) with IRET.
 * After switching back they loop to their entry, so a later switch runs them again. */
#include "lib.h"

    .text
    .globl task_b, task_c, task_d
task_b:
    movl %eax, t_out             /* EAX from B's TSS */
    pushfl
    popl t_out + 4               /* NT stays 0 after JMP */
    strw %ax
    movzwl %ax, %eax
    movl %eax, t_out + 8
    movl 0x40000000, %eax        /* B's CR3 maps this elsewhere */
    movl %eax, t_out + 12
    sldtw %ax
    movzwl %ax, %eax
    movl %eax, t_out + 16
    movw $0x04, %ax              /* LDT entry 0: data, base 0x12000 */
    movw %ax, %fs
    movl %fs:0, %eax
    movl %eax, t_out + 20
    movl %cs, %eax
    movl %eax, t_out + 48
    ljmp $SEL_TSS, $0
    jmp task_b

task_c:
    pushfl
    popl t_out + 24              /* NT = 1 after CALL */
    movzwl tss_c, %eax           /* back-link = the caller's TSS */
    movl %eax, t_out + 28
    movl %ebx, t_out + 32
    iretl
    jmp task_c

task_d:
    pushfl
    popl t_out + 36
    movzwl tss_d, %eax
    movl %eax, t_out + 40
    movl %esp, t_out + 44
    iretl
    jmp task_d

/* #GP handler task (IDT task gate): takes the error code from its own stack and steps the
 * interrupted task (the back-link, the main task's tss32) over the 2-byte faulting MOV. */
    .globl task_e
task_e:
    popl t_out + 52
    movl tss32 + 0x20, %eax
    movl %eax, t_out + 56
    addl $2, tss32 + 0x20
    iretl
    jmp task_e

    .data
    .align 4
    .globl t_out
t_out: .fill 16, 4, 0
