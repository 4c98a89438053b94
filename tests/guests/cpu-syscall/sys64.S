/* SYSCALL/SYSRET round trips in 64-bit mode with STAR/LSTAR/SFMASK, SWAPGS, and FS/GS base
 * through the MSRs and (when CPUID has FSGSBASE) RDFSBASE/WRFSBASE/RDGSBASE/WRGSBASE
 * (SDM Vol. 2B "SYSCALL", "SYSRET", "SWAPGS", "RDFSBASE/RDGSBASE", "WRFSBASE/WRGSBASE").
 * GDT: 0x50 kernel code64, 0x58 kernel data, 0x60 user code32, 0x68 user data, 0x70 user code64. */
#include "lib.h"
#define MSR_EFER 0xc0000080
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_SFMASK 0xc0000084
#define MSR_FS_BASE 0xc0000100
#define MSR_GS_BASE 0xc0000101
#define MSR_KERNEL_GS_BASE 0xc0000102

.macro WRMSR64 msr, lo, hi=0
    movl $\msr, %ecx
    movl \lo, %eax
    movl $\hi, %edx
    wrmsr
.endm
.macro RDMSR_TO msr, slot
    movl $\msr, %ecx
    rdmsr
    movl %eax, sc_out + 4 * \slot(%rip)
.endm

    .text
    .code64
    .globl syscall_round_trip, sc_after_first
syscall_round_trip:
    pushq %rbx
    pushq %rbp
    movq %rsp, sc_saved_rsp(%rip)
    movl $MSR_EFER, %ecx
    rdmsr
    orl $1, %eax                 /* SCE */
    wrmsr
    WRMSR64 MSR_STAR, $0, 0x00600050
    WRMSR64 MSR_LSTAR, $sc_kernel_entry
    WRMSR64 MSR_SFMASK, $0x40300   /* AC, IF, TF */
    movl $sc_user, %ecx
    movl $0x40202, %r11d         /* user RFLAGS: AC, IF */
    movl $sc_user_stack, %esp
    sysretq
sc_user:
    movl %cs, %eax
    movl %eax, sc_out(%rip)
    movl %ss, %eax
    movl %eax, sc_out + 4(%rip)
    pushfq
    popq %rax
    movl %eax, sc_out + 8(%rip)
    movl $1, %eax
    syscall
sc_after_first:
    movl $2, %eax
    syscall

sc_kernel_entry:
    cmpl $1, %eax
    jne sc_finish
    movl %cs, %eax
    movl %eax, sc_out + 12(%rip)
    movl %ss, %eax
    movl %eax, sc_out + 16(%rip)
    movl %ecx, sc_out + 20(%rip)     /* RCX: return RIP */
    movl %r11d, sc_out + 24(%rip)    /* R11: user RFLAGS */
    pushfq
    popq %rax
    movl %eax, sc_out + 28(%rip)     /* RFLAGS & ~SFMASK */
    movq %rcx, %rbx
    /* SWAPGS exchanges GS.base with IA32_KERNEL_GS_BASE. */
    WRMSR64 MSR_GS_BASE, $0x11110000
    WRMSR64 MSR_KERNEL_GS_BASE, $0x22220000
    swapgs
    RDMSR_TO MSR_GS_BASE, 8
    RDMSR_TO MSR_KERNEL_GS_BASE, 9
    swapgs
    RDMSR_TO MSR_GS_BASE, 10
    /* GS base applies to GS-relative accesses. */
    WRMSR64 MSR_GS_BASE, $0x320000
    movl $0x600d, %gs:0x10
    movq %rbx, %rcx
    sysretq

sc_finish:
    movq sc_saved_rsp(%rip), %rsp
    popq %rbp
    popq %rbx
    movl $0x64, %eax
    ret

/* RDFSBASE/WRFSBASE/RDGSBASE/WRGSBASE with CR4.FSGSBASE set (the caller checked CPUID). */
    .globl fsgsbase_probe
fsgsbase_probe:
    movq %cr4, %rax
    orq $0x10000, %rax
    movq %rax, %cr4
    movabsq $0x123456789a, %rax
    wrfsbase %rax
    rdfsbase %rdx
    movq %rdx, sc_out + 44(%rip)
    RDMSR_TO MSR_FS_BASE, 13
    movl $0x330000, %eax
    wrgsbase %rax
    movl $0xf5f5, %gs:4
    rdgsbase %rax
    movl %eax, sc_out + 56(%rip)
    movq %cr4, %rax
    andq $~0x10000, %rax
    movq %rax, %cr4
    movl $9f, recover_rip(%rip)
    movl $-1, last_trap(%rip)
    rdfsbase %rax
9:  movl last_trap(%rip), %eax
    movl %eax, sc_out + 60(%rip)
    movl $0x64, %eax
    ret

/* Without FSGSBASE in CPUID (so CR4.FSGSBASE cannot be set), RDFSBASE is #UD. */
    .globl fsgsbase_absent_probe
fsgsbase_absent_probe:
    movl $9f, recover_rip(%rip)
    movl $-1, last_trap(%rip)
    rdfsbase %rax
9:  movl last_trap(%rip), %eax
    ret
    .code32

    .data
    .align 8
    .globl sc_out
sc_saved_rsp: .quad 0
sc_out: .fill 16, 4, 0
    .bss
    .align 16
    .space 2048
sc_user_stack:
