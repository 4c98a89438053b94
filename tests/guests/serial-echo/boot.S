/*
 * rx86 character-device test guest: one 512-byte boot sector, loaded by the BIOS at 0:7C00
 * (tests/tests/chardev.rs builds it with tests/src/boot_media.rs::boot_sector_floppy).
 *
 * It sets COM1 and COM2 to 115200 8N1 (FIFOs on, interrupts off) and, polling:
 *   COM2: "COM2: kernel log\r\n"
 *   COM1: "RX86-ECHO READY\r\n"
 * then echoes every byte received on COM1 back to COM1, lower-case letters made upper-case
 * (so the test can tell the echo from its own bytes). On 'q' it writes "COM2: bye\r\n" to
 * COM2 and 0x21 to isa-debug-exit (port 0x501): rx86 and QEMU exit with status 0x43 (67).
 */
        .code16
        .text
        .globl _start

COM1            = 0x3f8
COM2            = 0x2f8
UART_LSR        = 5             /* line status register */
LSR_DR          = 0x01          /* data ready */
LSR_THRE        = 0x20          /* transmit holding register empty */
DEBUG_EXIT_PORT = 0x501
EXIT_VALUE      = 0x21

_start:
        cli
        xor     %ax, %ax
        mov     %ax, %ds
        mov     %ax, %ss
        mov     $0x7c00, %sp
        cld
        mov     $COM1, %bx
        call    uart_init
        mov     $COM2, %bx
        call    uart_init
        mov     $log_msg, %si
        call    puts
        mov     $COM1, %bx
        mov     $ready_msg, %si
        call    puts

echo:
        mov     $COM1 + UART_LSR, %dx
1:      in      %dx, %al
        test    $LSR_DR, %al
        jz      1b
        mov     $COM1, %dx
        in      %dx, %al
        cmp     $'q', %al
        je      quit
        cmp     $'a', %al
        jb      2f
        cmp     $'z', %al
        ja      2f
        sub     $0x20, %al
2:      call    putc
        jmp     echo

quit:
        mov     $COM2, %bx
        mov     $bye_msg, %si
        call    puts
        mov     $DEBUG_EXIT_PORT, %dx
        mov     $EXIT_VALUE, %al
        out     %al, %dx
3:      hlt
        jmp     3b

/* Programs the UART at BX: divisor 1 (115200 baud), 8N1, FIFOs on, no interrupts. */
uart_init:
        lea     3(%bx), %dx
        mov     $0x80, %al              /* LCR: DLAB */
        out     %al, %dx
        mov     %bx, %dx
        mov     $1, %al                 /* DLL */
        out     %al, %dx
        lea     1(%bx), %dx
        xor     %al, %al                /* DLM */
        out     %al, %dx
        lea     3(%bx), %dx
        mov     $0x03, %al              /* LCR: 8N1 */
        out     %al, %dx
        lea     1(%bx), %dx
        xor     %al, %al                /* IER: none */
        out     %al, %dx
        lea     2(%bx), %dx
        mov     $0x07, %al              /* FCR: enable and clear the FIFOs */
        out     %al, %dx
        ret

/* Sends AL on the UART at BX once its transmitter has room. */
putc:
        push    %ax
        lea     UART_LSR(%bx), %dx
1:      in      %dx, %al
        test    $LSR_THRE, %al
        jz      1b
        pop     %ax
        mov     %bx, %dx
        out     %al, %dx
        ret

/* Sends the NUL-terminated string at DS:SI on the UART at BX. */
puts:
        lodsb
        test    %al, %al
        jz      1f
        call    putc
        jmp     puts
1:      ret

ready_msg:      .asciz "RX86-ECHO READY\r\n"
log_msg:        .asciz "COM2: kernel log\r\n"
bye_msg:        .asciz "COM2: bye\r\n"

        .org    510
        .byte   0x55, 0xaa
