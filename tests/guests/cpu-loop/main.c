/* CPU-bound guest loop for the interpreter benchmark (benches/benches/cpu_loop.rs):
 * integer mixing with no memory traffic beyond the stack, then the checksum on COM1 so
 * the benchmark can check that rx86 and QEMU computed the same thing. */
#include "lib.h"

#define ITERATIONS 20000000u

static u32 mix(u32 iterations) {
    u32 x = 0x12345678u, sum = 0;
    for (u32 i = 0; i < iterations; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        sum += x ^ i;
    }
    return sum;
}

void main(void) {
    u32 sum = mix(ITERATIONS);
    puts("cpu-loop: checksum=");
    puthex(sum);
    puts("\n");
    check_true("cpu-loop", sum != 0, "checksum is zero");
}
