/*
 * One entry stub per IDT vector (Intel SDM Vol. 3A, 6.12 "Exception and Interrupt Handling").
 * Each stub is 16 bytes long, so stub n sits at isr_stubs + 16 * n. Vectors whose exceptions
 * push an error code (8, 10-14, 17, 21, 29, 30) skip the dummy push so the frame is uniform:
 * [vector, error, eip, cs, eflags] above the registers saved by PUSHA.
 */
    .section .text
    .globl isr_stubs
    .align 16
isr_stubs:
    .set vector, 0
    .rept 256
    .org isr_stubs + vector * 16
    .if (vector == 8) || ((vector >= 10) && (vector <= 14)) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
    .else
    pushl $0
    .endif
    pushl $vector
    jmp isr_common
    .set vector, vector + 1
    .endr
    .org isr_stubs + 256 * 16    /* .org cannot move backwards: fails if a stub outgrew 16 bytes */

isr_common:
    pushal
    cld
    pushl %esp                   /* struct isr_frame * */
    call isr_dispatch
    addl $4, %esp
    popal
    addl $8, %esp                /* drop vector and error code */
    iretl

    .section .note.GNU-stack, "", @progbits
