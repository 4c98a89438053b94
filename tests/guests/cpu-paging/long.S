/* 4-level paging in long mode: a 4 KiB mapping at 0x8000000000 (PML4 entry 1) built by
 * main.c, accessed here; a #PF on a not-present PML4 entry; NX on an executable-looking page. */
#include "lib.h"

    .text
    .code64
    .globl long_paging
long_paging:
    pushq %rbx
    movabsq $0x8000000000, %rbx
    movl $0x4c4c4c4c, (%rbx)          /* through PML4[1] → PDPT → PD → PT */
    movl 4(%rbx), %eax
    movl %eax, lp_out(%rip)
    movabsq $0x10000000000, %rbx       /* PML4[2]: not present */
    movl $1f, recover_rip(%rip)
    movl $-1, last_trap(%rip)
    movl $0, (%rbx)
1:  movl last_trap(%rip), %eax
    movl %eax, lp_out + 4(%rip)
    movl last_trap + 4(%rip), %eax
    movl %eax, lp_out + 8(%rip)
    movq %cr2, %rax
    movq %rax, lp_out + 12(%rip)
    movabsq $0x8000001000, %rbx        /* NX page holding RET */
    movl $2f, recover_rip(%rip)
    movl $-1, last_trap(%rip)
    movq %rsp, %r12                    /* CALL pushed before the fetch faulted */
    call *%rbx
2:  movq %r12, %rsp
    movl last_trap(%rip), %eax
    movl %eax, lp_out + 20(%rip)
    movl last_trap + 4(%rip), %eax
    movl %eax, lp_out + 24(%rip)
    movabsq $0x8000002000, %rbx        /* PTE with address bit 51 (reserved) */
    movl $3f, recover_rip(%rip)
    movl $-1, last_trap(%rip)
    movl (%rbx), %eax
3:  movl last_trap + 4(%rip), %eax
    movl %eax, lp_out + 28(%rip)
    movabsq $0x8000200000, %rbx        /* 2 MiB page with bit 13 (reserved) */
    movl $4f, recover_rip(%rip)
    movl $-1, last_trap(%rip)
    movl (%rbx), %eax
4:  movl last_trap + 4(%rip), %eax
    movl %eax, lp_out + 32(%rip)
    popq %rbx
    movl $0x64, %eax
    ret
    .code32

    .data
    .globl lp_out
lp_out: .fill 9, 4, 0
