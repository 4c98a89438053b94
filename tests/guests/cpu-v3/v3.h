/* The x86-64-v3 workload of the cpu-v3 guest (v3-work.c), shared with its native twin
 * (tests/guests/cpu-v3-native): the harness enables the AVX state, calls v3_run(), and
 * provides v3_report(), which prints one "v3 NAME VALUE" line per result. */
#ifndef V3_H
#define V3_H

/* Runs every part of the workload, reporting each result. */
void v3_run(void);

/* Prints "v3 <name> 0x<value, 8 hex digits>\n". */
void v3_report(const char *name, unsigned int value);

#endif
