/*
 * One entry stub per IDT vector (Intel SDM Vol. 3A, 6.14 "Exception and Interrupt Handling in
 * 64-Bit Mode"). Each stub is 16 bytes long, so stub n sits at isr_stubs + 16 * n. Vectors whose
 * exceptions push an error code (8, 10-14, 17, 21, 29, 30) skip the dummy push so the frame is
 * uniform: [vector, error, rip, cs, rflags, rsp, ss] above the general registers saved here.
 * The CPU aligns RSP to 16 bytes before pushing its 5 quadwords; with the 2 pushes of the stub and
 * the 15 registers, RSP is 16-byte aligned again at the call, as the System V ABI requires.
 */
    .section .text
    .code64
    .globl isr_stubs
    .align 16
isr_stubs:
    .set vector, 0
    .rept 256
    .org isr_stubs + vector * 16
    .if (vector == 8) || ((vector >= 10) && (vector <= 14)) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
    .else
    pushq $0
    .endif
    pushq $vector
    jmp isr_common
    .set vector, vector + 1
    .endr
    .org isr_stubs + 256 * 16    /* .org cannot move backwards: fails if a stub outgrew 16 bytes */

isr_common:
    pushq %rax
    pushq %rcx
    pushq %rdx
    pushq %rbx
    pushq %rbp
    pushq %rsi
    pushq %rdi
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    cld
    movq %rsp, %rdi              /* struct isr_frame * */
    call isr_dispatch
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rdi
    popq %rsi
    popq %rbp
    popq %rbx
    popq %rdx
    popq %rcx
    popq %rax
    addq $16, %rsp               /* drop vector and error code */
    iretq

    .section .note.GNU-stack, "", @progbits
