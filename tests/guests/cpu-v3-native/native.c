/* The native twin of the cpu-v3 guest: the same workload (v3-work.c, the same flags and
 * so the same object code) run by the host CPU as an i386 Linux process, printing its
 * "v3 NAME VALUE" lines to standard output with write(2). */
#include "v3.h"

static void write_out(const char *s, unsigned int n) {
    int ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(4), "b"(1), "c"(s), "d"(n) : "memory");
    (void)ret;
}

static void put(const char *s) {
    unsigned int n = 0;
    while (s[n]) n++;
    write_out(s, n);
}

void v3_report(const char *name, unsigned int value) {
    char hex[11] = "0x";
    for (int i = 0; i < 8; i++) hex[2 + i] = "0123456789abcdef"[(value >> (28 - 4 * i)) & 15];
    hex[10] = 0;
    put("v3 ");
    put(name);
    put(" ");
    put(hex);
    put("\n");
}

int native_main(void) {
    v3_run();
    return 0;
}
