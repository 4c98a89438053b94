//! National Semiconductor 16550A UART.
