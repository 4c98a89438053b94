/*
 * Mode switches shared by the CPU test guests (SDM Vol. 3A §9.9 "Mode switching").
 *
 * call_real(start, end, entry): copies the guest's position-independent .code16 chunk
 *   [start, end) to 0x9000 and this file's switch code to 0x8000, goes protected → real mode by
 *   the architectural path (far jump to a 16-bit code segment based at 0x8000, load 64 KiB
 *   data segments, clear CR0.PE, far jump), far-calls 0x900:(entry - start) with DS=ES=0x900,
 *   SS:SP=0:0x7c00, FS/GS left with 4 GiB limits (unreal) and IDTR = the IVT at 0, then goes
 *   back to 32-bit protected mode and copies the chunk back (so its data holds the results).
 * call_long(fn): protected → long mode (PAE, identity-mapped 2 MiB pages of the first GiB,
 *   EFER.LME, CR0.PG, far jump to a 64-bit code segment), call the .code64 routine `fn` with the
 *   64-bit IDT of exception stubs, then back through compatibility mode with paging off.
 * Both return EAX of the routine, or (long) -1 after an exception the routine
 * did not expect.
 */
#define MODES_SEG 0x800 /* this file's real-mode code, copied to 0x8000 */
#define GUEST_SEG 0x900 /* the guest's real-mode chunk, copied to 0x9000 */
#define R(x) ((x) - rm_start)

    .text
    .globl call_real, call_long
call_real:
    pushal
    movl 36(%esp), %esi          /* guest chunk → GUEST_SEG:0 */
    movl 40(%esp), %ecx
    subl %esi, %ecx
    movl %ecx, chunk_len
    movl %esi, chunk_src
    movl $GUEST_SEG << 4, %edi
    rep movsb
    movl 44(%esp), %eax
    subl 36(%esp), %eax
    movw %ax, rm_target
    sgdt rm_gdtr
    movl $rm_start, %esi          /* our own chunk → MODES_SEG:0 */
    movl $MODES_SEG << 4, %edi
    movl $rm_end - rm_start, %ecx
    rep movsb
    movl %esp, saved_esp
    sidt saved_idtr
    ljmp $0x30, $R(1f)
    .code16
rm_start:
1:  movw $0x38, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw $0x10, %ax
    movw %ax, %fs
    movw %ax, %gs
    movl %cr0, %eax
    andl $~1, %eax
    movl %eax, %cr0
    ljmp $MODES_SEG, $R(2f)
2:  xorw %ax, %ax
    movw %ax, %ss
    movw $0x7c00, %sp
    movw $GUEST_SEG, %ax
    movw %ax, %ds
    movw %ax, %es
    lidt %cs:R(rm_ivt)
    lcall *%cs:R(rm_target)
    cli
    movl %eax, %cs:R(rm_result)
    lgdtl %cs:R(rm_gdtr)
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x08, $real_back32
rm_target: .word 0, GUEST_SEG
rm_ivt: .word 0x3ff
    .long 0
rm_gdtr: .word 0
    .long 0
rm_result: .long 0
rm_end:
    .code32
real_back32:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movl $GUEST_SEG << 4, %esi    /* results back into the image */
    movl chunk_src, %edi
    movl chunk_len, %ecx
    rep movsb
    movl (MODES_SEG << 4) + R(rm_result), %eax
    movl %eax, routine_result
    jmp back32

call_long:
    pushal
    movl 36(%esp), %eax
    movl %eax, long_fn
    movl %esp, saved_esp
    sidt saved_idtr
    call build_identity_tables
    movl %cr4, %eax
    orl $0x20, %eax              /* CR4.PAE */
    movl %eax, %cr4
    movl $lm_pml4, %eax
    movl %eax, %cr3
    movl $0xc0000080, %ecx       /* IA32_EFER */
    rdmsr
    orl $0x100, %eax             /* LME */
    wrmsr
    movl %cr0, %eax
    orl $0x80000000, %eax        /* PG */
    movl %eax, %cr0
    ljmp $0x28, $1f
    .code64
1:  movl %esp, %esp
    lidt idt64r(%rip)
    movl long_fn(%rip), %eax
    movq $0, recover_rip(%rip)
    call *%rax
long_out:
    movl %eax, routine_result(%rip)
    lidt idt64r(%rip)
    pushq $0x08
    movl $2f, %ecx
    pushq %rcx
    lretq
    .code32
2:  movw $0x10, %ax
    movw %ax, %ss
    movl %cr0, %eax
    andl $0x7fffffff, %eax
    movl %eax, %cr0
    movl $0xc0000080, %ecx
    rdmsr
    andl $~0x100, %eax
    wrmsr
    movl %cr4, %eax
    andl $~0x20, %eax
    movl %eax, %cr4
back32:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    movl saved_esp, %esp
    lidt saved_idtr
    popal
    movl routine_result, %eax
    ret

/* Identity map of the first GiB with 2 MiB user pages (PML4[0] → PDPT[0] → PD). */
build_identity_tables:
    movl $lm_pdpt + 7, lm_pml4   /* P, RW, US */
    movl $lm_pd + 7, lm_pdpt
    xorl %ecx, %ecx
1:  movl %ecx, %eax
    shll $21, %eax
    orl $0x87, %eax              /* P, RW, US, PS */
    movl %eax, lm_pd(,%ecx,8)
    movl $0, lm_pd + 4(,%ecx,8)
    incl %ecx
    cmpl $512, %ecx
    jne 1b
    /* 64-bit IDT: stubs for vectors 0-31. */
    xorl %ecx, %ecx
2:  movl isr64_table(,%ecx,4), %eax
    movl %ecx, %edx
    shll $4, %edx
    movw %ax, idt64(%edx)
    movw $0x28, idt64 + 2(%edx)
    movw $0x8e00, idt64 + 4(%edx)
    shrl $16, %eax
    movw %ax, idt64 + 6(%edx)
    movl $0, idt64 + 8(%edx)
    incl %ecx
    cmpl $32, %ecx
    jne 2b
    ret

/* 64-bit exception stubs: record the trap in last_trap and resume at recover_rip (cleared);
 * without one, leave the routine with EAX = -1. */
    .code64
.macro STUB64 v
    .align 8
isr64_\v:
    .if (\v == 8) || (\v >= 10 && \v <= 14) || (\v == 17)
    .else
    pushq $0
    .endif
    pushq $\v
    jmp isr64_common
.endm
isr64_common:
    pushq %rax
    movl 8(%rsp), %eax
    movl %eax, last_trap(%rip)
    movl 16(%rsp), %eax
    movl %eax, last_trap + 4(%rip)
    movl 24(%rsp), %eax
    movl %eax, last_trap + 8(%rip)
    movl 32(%rsp), %eax
    movl %eax, last_trap + 12(%rip)
    movl 40(%rsp), %eax
    movl %eax, last_trap + 16(%rip)
    incl last_trap + 20(%rip)
    andq $~0x100, 40(%rsp)       /* TF off */
    movq recover_rip(%rip), %rax
    testq %rax, %rax
    jz 1f
    movq %rax, 24(%rsp)
    movq $0, recover_rip(%rip)
    popq %rax
    addq $16, %rsp
    iretq
1:  movl $-1, %eax
    movl saved_esp(%rip), %esp
    subl $4, %esp                /* as if inside call_long's call */
    movl %esp, %esp
    jmp long_out
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    STUB64 \v
    .endr
    .code32

    .section .rodata
    .align 4
isr64_table:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .long isr64_\v
    .endr

    .data
    .align 8
    .globl recover_rip, idt64, idt64r
recover_rip: .quad 0
saved_esp: .long 0
chunk_src: .long 0
chunk_len: .long 0
routine_result: .long 0
long_fn: .long 0
saved_idtr: .word 0
    .long 0
idt64r: .word 256 * 16 - 1
    .long idt64, 0

    .bss
    .align 4096
    .globl lm_pml4, lm_pdpt, lm_pd
lm_pml4: .space 4096
lm_pdpt: .space 4096
lm_pd: .space 4096
idt64: .space 4096
