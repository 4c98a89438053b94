#include "util.h"

void *memset(void *dst, int value, usize len) {
    u8 *d = dst;
    while (len--) *d++ = (u8)value;
    return dst;
}

void *memcpy(void *dst, const void *src, usize len) {
    u8 *d = dst;
    const u8 *s = src;
    while (len--) *d++ = *s++;
    return dst;
}

int memcmp(const void *a, const void *b, usize len) {
    const u8 *x = a, *y = b;
    for (; len; len--, x++, y++) {
        if (*x != *y) return *x < *y ? -1 : 1;
    }
    return 0;
}

u8 byte_sum(const void *data, u32 len) {
    const u8 *p = data;
    u8 sum = 0;
    while (len--) sum += *p++;
    return sum;
}

u64 udiv64(u64 dividend, u32 divisor, u32 *rem) {
    u32 hi = (u32)(dividend >> 32), lo = (u32)dividend;
    u32 q_hi = hi / divisor, r = hi % divisor, q_lo;
    /* r < divisor, so EDX:EAX / divisor fits in 32 bits and DIV cannot fault. */
    __asm__("divl %4" : "=a"(q_lo), "=d"(r) : "a"(lo), "d"(r), "rm"(divisor));
    if (rem) *rem = r;
    return ((u64)q_hi << 32) | q_lo;
}
