/* Memory helpers the compiler may call, byte-string helpers and 64-bit division without libgcc. */
#ifndef UTIL_H
#define UTIL_H

#include "types.h"

void *memset(void *dst, int value, usize len);
void *memcpy(void *dst, const void *src, usize len);
int memcmp(const void *a, const void *b, usize len);

/* Sum of `len` bytes modulo 256 (ACPI table checksums are valid when this is 0). */
u8 byte_sum(const void *data, u32 len);

/* 64-by-32 unsigned division; *rem gets the remainder when rem is not NULL. */
u64 udiv64(u64 dividend, u32 divisor, u32 *rem);

#endif
