/* Minimal printf to COM1: %s %c %d %u %x %X %p %%, width and '0' flag, 'll' for 64-bit %u/%x. */
#ifndef KPRINTF_H
#define KPRINTF_H

void vkprintf(const char *fmt, __builtin_va_list args);
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
