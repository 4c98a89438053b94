/* 16550A UART on COM1, polled transmit only. */
#ifndef UART_H
#define UART_H

void uart_init(void);
void uart_putc(char c);

#endif
