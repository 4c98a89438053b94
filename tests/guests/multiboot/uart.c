/* 16550A UART (PC16550D datasheet, "Register Description"): COM1 at 0x3F8, 115200 baud 8N1. */
#include "uart.h"
#include "io.h"

#define COM1 0x3F8
#define UART_THR 0     /* transmit holding register (DLAB=0) */
#define UART_DLL 0     /* divisor latch low (DLAB=1) */
#define UART_IER 1     /* interrupt enable register (DLAB=0) */
#define UART_DLM 1     /* divisor latch high (DLAB=1) */
#define UART_FCR 2     /* FIFO control register */
#define UART_LCR 3     /* line control register */
#define UART_MCR 4     /* modem control register */
#define UART_LSR 5     /* line status register */
#define LCR_DLAB 0x80  /* divisor latch access bit */
#define LCR_8N1 0x03   /* 8 data bits, no parity, 1 stop bit */
#define FCR_ENABLE_CLEAR 0x07 /* enable FIFOs, clear RX and TX FIFOs */
#define MCR_DTR_RTS 0x03 /* data terminal ready, request to send */
#define LSR_THRE 0x20  /* transmit holding register empty */
#define DIVISOR_115200 1 /* 1.8432 MHz / 16 / 115200 */
/* Polls of LSR before a byte is written anyway: a stuck THRE bit must not hang the kernel. */
#define THRE_POLL_LIMIT 100000

void uart_init(void) {
    outb(COM1 + UART_IER, 0x00);
    outb(COM1 + UART_LCR, LCR_DLAB);
    outb(COM1 + UART_DLL, DIVISOR_115200 & 0xFF);
    outb(COM1 + UART_DLM, DIVISOR_115200 >> 8);
    outb(COM1 + UART_LCR, LCR_8N1);
    outb(COM1 + UART_FCR, FCR_ENABLE_CLEAR);
    outb(COM1 + UART_MCR, MCR_DTR_RTS);
}

void uart_putc(char c) {
    for (u32 i = 0; i < THRE_POLL_LIMIT && !(inb(COM1 + UART_LSR) & LSR_THRE); i++) {
    }
    outb(COM1 + UART_THR, (u8)c);
}
