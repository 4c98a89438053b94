#include "kprintf.h"
#include "types.h"
#include "uart.h"
#include "util.h"

static void put_char(char c) {
    if (c == '\n') uart_putc('\r');
    uart_putc(c);
}

static void put_padded(const char *digits, u32 len, u32 width, char pad) {
    for (; width > len; width--) put_char(pad);
    while (len--) put_char(*digits++);
}

static void put_unsigned(u64 value, u32 base, int upper, u32 width, char pad) {
    const char *set = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char buf[24];
    u32 n = 0;
    do {
        u32 digit;
        value = udiv64(value, base, &digit);
        buf[sizeof(buf) - 1 - n++] = set[digit];
    } while (value);
    put_padded(&buf[sizeof(buf) - n], n, width, pad);
}

void vkprintf(const char *fmt, __builtin_va_list args) {
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            put_char(*fmt);
            continue;
        }
        fmt++;
        char pad = ' ';
        u32 width = 0;
        int is_long_long = 0;
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (u32)(*fmt++ - '0');
        if (fmt[0] == 'l' && fmt[1] == 'l') {
            is_long_long = 1;
            fmt += 2;
        }
        switch (*fmt) {
        case 's': {
            const char *s = __builtin_va_arg(args, const char *);
            if (!s) s = "(null)";
            u32 len = 0;
            while (s[len]) len++;
            put_padded(s, len, width, ' ');
            break;
        }
        case 'c':
            put_char((char)__builtin_va_arg(args, int));
            break;
        case 'd': {
            i32 v = __builtin_va_arg(args, i32);
            if (v < 0) {
                put_char('-');
                put_unsigned((u64)(0u - (u32)v), 10, 0, width, pad);
            } else {
                put_unsigned((u32)v, 10, 0, width, pad);
            }
            break;
        }
        case 'u':
        case 'x':
        case 'X': {
            u64 v = is_long_long ? __builtin_va_arg(args, u64) : __builtin_va_arg(args, u32);
            put_unsigned(v, *fmt == 'u' ? 10 : 16, *fmt == 'X', width, pad);
            break;
        }
        case 'p':
            put_char('0');
            put_char('x');
            put_unsigned((uptr)__builtin_va_arg(args, void *), 16, 0, 2 * sizeof(void *), '0');
            break;
        case '%':
            put_char('%');
            break;
        case '\0':
            fmt--;
            break;
        default:
            put_char('%');
            put_char(*fmt);
            break;
        }
    }
}

void kprintf(const char *fmt, ...) {
    __builtin_va_list args;
    __builtin_va_start(args, fmt);
    vkprintf(fmt, args);
    __builtin_va_end(args);
}
