/* cpu-v3: an x86-64-v3 program on the interpreter. It enables SSE and the AVX state
 * (CR4.OSFXSR, CR4.OSXSAVE, XCR0 = x87|SSE|AVX) as an OS does, then runs the workload of
 * v3-work.c (compiled with -march=x86-64-v3: AVX2, FMA, F16C, BMI2 code), printing one
 * "v3 NAME VALUE" line per result; the test runs the same object code natively
 * (tests/guests/cpu-v3-native) and compares the lines. */
#include "lib.h"
#include "v3.h"

void v3_report(const char *name, u32 value) {
    puts("v3 ");
    puts(name);
    puts(" ");
    puthex(value);
    puts("\n");
}

static void cpuid(u32 leaf, u32 *a, u32 *b, u32 *c, u32 *d) {
    __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}

void main(void) {
    u32 a, b, c, d, leaf7_ebx;
    cpuid(1, &a, &b, &c, &d);
    cpuid(7, &a, &leaf7_ebx, &a, &d);
    /* AVX, FMA, F16C, XSAVE; AVX2, BMI1, BMI2. */
    u32 want1 = 1u << 28 | 1u << 12 | 1u << 29 | 1u << 26, want7 = 1u << 5 | 1u << 3 | 1u << 8;
    if (!check_true("cpuid-v3", (c & want1) == want1 && (leaf7_ebx & want7) == want7, "x86-64-v3 features missing"))
        return;
    u32 cr4;
    __asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
    __asm__ volatile("mov %0, %%cr4" : : "r"(cr4 | 1u << 9 | 1u << 10 | 1u << 18));
    __asm__ volatile("xsetbv" : : "a"(7), "d"(0), "c"(0));
    v3_run();
    check_true("v3-run", 1, "");
}
